//! How the reports print a time and the working days left to it.

use chrono::{DateTime, Utc};

/// A time in a listing, in London time with its zone (see [`crate::clock::for_people`]).
pub(super) fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".to_string(), crate::clock::for_people)
}

pub(super) fn left(days: Option<i64>) -> String {
    match days {
        Some(d) if d < 0 => format!(" ({} working days over)", -d),
        Some(d) => format!(" ({d} working days left)"),
        None => String::new(),
    }
}
