//! Working-day calendars. A [`Calendar`] is one bank-holiday division (`england-and-wales`,
//! `scotland`, `northern-ireland`) with its closed days and why each is closed; it counts working
//! days over dates. [`Calendars::load`] builds all three from `rules/calendars/`:
//!
//! - `uk-bank-holidays.json`, required: GOV.UK's published file
//!   (<https://www.gov.uk/bank-holidays.json>), saved unchanged. Operators update bank holidays by
//!   replacing it with a fresh download; no rebuild. Fields other than each event's `title` and
//!   `date` are ignored, and so are divisions other than the three.
//! - every other `*.toml` file there: organisation closures, `[[closure]]` tables with `from`,
//!   optional `to` (inclusive), `reason` and optional `calendars` (default: all three). The
//!   shipped `closures.toml` documents the format.
//!
//! When two sources close the same day, the first keeps its reason: the bank holiday, then
//! closures files in name order, then closures in file order.

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included};

use chrono::{Datelike, NaiveDate, Weekday};

/// The bank-holiday divisions in GOV.UK's data, which are also the calendars' names.
pub const DIVISIONS: [&str; 3] = ["england-and-wales", "scotland", "northern-ireland"];

/// The GOV.UK file's name in the calendars directory.
pub const BANK_HOLIDAYS_FILE: &str = "uk-bank-holidays.json";

/// One calendar: its name and the days it closes (other than weekends), with the reason.
#[derive(Debug, Clone)]
pub struct Calendar {
    name: String,
    closed: BTreeMap<NaiveDate, String>,
}

impl Calendar {
    /// A calendar closed on exactly `closed` (plus weekends).
    pub fn from_closures(name: &str, closed: BTreeMap<NaiveDate, String>) -> Calendar {
        Calendar {
            name: name.to_string(),
            closed,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Monday to Friday, and not closed.
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        is_weekday(d) && !self.closed.contains_key(&d)
    }

    /// Why `d` is closed: the bank holiday's title or the closure's reason. `None` for a day the
    /// calendar does not close, including an ordinary weekend.
    pub fn closure(&self, d: NaiveDate) -> Option<&str> {
        self.closed.get(&d).map(String::as_str)
    }

    /// The last closed day the calendar knows of. Bank holidays after the end of the published
    /// data are unknown, so working days counted past it may need recounting after an update.
    pub fn listed_until(&self) -> Option<NaiveDate> {
        self.closed.keys().next_back().copied()
    }

    /// The `n`-th working day after `d`; `d` itself when `n` is 0.
    pub fn add_working_days(&self, d: NaiveDate, n: u32) -> NaiveDate {
        if n == 0 {
            return d;
        }
        let (start, n) = (day_number(d), i64::from(n));
        // Jump to the n-th weekday, then on by as many weekdays as closures swallowed, until none
        // were: each round costs one range query, and rounds are bounded by the closures passed.
        let mut t = nth_weekday(weekdays_through(start) + n);
        loop {
            let short = n - self.working_in(start, t);
            if short == 0 {
                return date_of(t);
            }
            t = nth_weekday(weekdays_through(t) + short);
        }
    }

    /// The `n`-th working day before `d`; `d` itself when `n` is 0.
    pub fn sub_working_days(&self, d: NaiveDate, n: u32) -> NaiveDate {
        if n == 0 {
            return d;
        }
        let (end, n) = (day_number(d), i64::from(n));
        let mut t = nth_weekday(weekdays_through(end - 1) - n + 1);
        loop {
            let short = n - self.working_in(t - 1, end - 1);
            if short == 0 {
                return date_of(t);
            }
            t = nth_weekday(weekdays_through(t) - short);
        }
    }

    /// Working days in `(from, to]`; when `to` is before `from`, minus the working days in
    /// `(to, from]`. So it is 0 for the same day, 1 from a Friday to the next Monday, and −1
    /// from that Monday back to the Friday.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        let (from, to) = (day_number(from), day_number(to));
        if to < from {
            -self.working_in(to, from)
        } else {
            self.working_in(from, to)
        }
    }

    /// Working days in `(lo, hi]`, as day numbers, `lo <= hi`.
    fn working_in(&self, lo: i64, hi: i64) -> i64 {
        let weekdays = weekdays_through(hi) - weekdays_through(lo);
        let closed = self
            .closed
            .range((Excluded(date_of(lo)), Included(date_of(hi))))
            .filter(|(d, _)| is_weekday(**d))
            .count();
        weekdays - i64::try_from(closed).unwrap_or(i64::MAX)
    }

    pub(super) fn close(&mut self, d: NaiveDate, reason: &str) {
        self.closed.entry(d).or_insert_with(|| reason.to_string());
    }
}

fn is_weekday(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

// Working-day arithmetic runs on day numbers (1 = Monday 1 January of year 1), which cannot
// overflow where dates could; results outside chrono's range saturate at its ends.

fn day_number(d: NaiveDate) -> i64 {
    i64::from(d.num_days_from_ce())
}

fn date_of(day: i64) -> NaiveDate {
    let clamped = day.clamp(day_number(NaiveDate::MIN), day_number(NaiveDate::MAX));
    i32::try_from(clamped)
        .ok()
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .unwrap_or(NaiveDate::MAX)
}

/// How many weekdays there are from day 1 to `day` inclusive (negative before day 1). Only
/// differences matter: `weekdays_through(b) - weekdays_through(a)` counts weekdays in `(a, b]`.
fn weekdays_through(day: i64) -> i64 {
    5 * day.div_euclid(7) + day.rem_euclid(7).min(5)
}

/// The weekday `w` with `weekdays_through(w) == count`.
fn nth_weekday(count: i64) -> i64 {
    7 * (count - 1).div_euclid(5) + (count - 1).rem_euclid(5) + 1
}

/// Every calendar, by name.
#[derive(Debug, Clone, Default)]
pub struct Calendars {
    pub(super) by_name: BTreeMap<String, Calendar>,
}

impl FromIterator<Calendar> for Calendars {
    fn from_iter<I: IntoIterator<Item = Calendar>>(calendars: I) -> Self {
        Calendars {
            by_name: calendars.into_iter().map(|c| (c.name.clone(), c)).collect(),
        }
    }
}

impl Calendars {
    pub fn get(&self, name: &str) -> Option<&Calendar> {
        self.by_name.get(name)
    }

    /// Calendar names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }
}

#[cfg(test)]
#[path = "calendar_tests.rs"]
mod tests;
