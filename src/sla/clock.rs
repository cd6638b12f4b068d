//! Periods over instants. Instants are UTC; every date and wall-clock time is reasoned about in
//! Europe/London, so a period keeps its London time of day across clock changes. The counting
//! rules are set out in the [module documentation](super). Pure functions: the caller supplies
//! every instant, nothing here reads the clock.
//!
//! Results that would fall outside chrono's range (periods of millions of years) saturate at its
//! ends instead of panicking.

use chrono::{DateTime, Days, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::London;

use super::Calendar;
use crate::clock::london_date;
use crate::definitions::{Period, Unit};

/// `start` plus `p`, at the same London wall-clock time.
///
/// Days and weeks count calendar days; working days count the calendar's working days after the
/// start's London date (from that date even when it is not a working day).
pub fn add(cal: &Calendar, start: DateTime<Utc>, p: Period) -> DateTime<Utc> {
    let local = start.with_timezone(&London).naive_local();
    let moved = match p.unit {
        Unit::WorkingDays => Some(cal.add_working_days(local.date(), p.count)),
        Unit::Days | Unit::Weeks => local.date().checked_add_days(calendar_days(p)),
    };
    moved.map_or(DateTime::<Utc>::MAX_UTC, |d| {
        in_london(d.and_time(local.time()))
    })
}

/// `end` minus `p`: the mirror image of [`add`], used to place an amber warning before a target.
pub fn sub(cal: &Calendar, end: DateTime<Utc>, p: Period) -> DateTime<Utc> {
    let local = end.with_timezone(&London).naive_local();
    let moved = match p.unit {
        Unit::WorkingDays => Some(cal.sub_working_days(local.date(), p.count)),
        Unit::Days | Unit::Weeks => local.date().checked_sub_days(calendar_days(p)),
    };
    moved.map_or(DateTime::<Utc>::MIN_UTC, |d| {
        in_london(d.and_time(local.time()))
    })
}

/// Working days from `now`'s London date to `due`'s: after today, up to and including the due
/// date. 0 on the due date, negative once it has passed.
pub fn working_days_remaining(cal: &Calendar, now: DateTime<Utc>, due: DateTime<Utc>) -> i64 {
    cal.working_days_between(london_date(now), london_date(due))
}

/// Working days a hold lasted: working days from the London date it started up to, not
/// including, the London date it was released. 0 for a same-day hold, or a release before the
/// start.
pub fn working_days_held(cal: &Calendar, held_from: DateTime<Utc>, released: DateTime<Utc>) -> u32 {
    let (from, to) = (london_date(held_from), london_date(released));
    if to <= from {
        return 0;
    }
    // [from, to) holds the working days of (from, to], less `to` and plus `from`.
    let days = cal.working_days_between(from, to) - i64::from(cal.is_working_day(to))
        + i64::from(cal.is_working_day(from));
    u32::try_from(days).unwrap_or(u32::MAX)
}

fn calendar_days(p: Period) -> Days {
    let per_unit = if p.unit == Unit::Weeks { 7 } else { 1 };
    Days::new(u64::from(p.count) * per_unit)
}

/// The instant London clocks read `local`. A time the clocks skipped when they went forward is
/// the moment they went forward; a time they showed twice when they went back is the first.
fn in_london(local: NaiveDateTime) -> DateTime<Utc> {
    match London.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => first_instant_reading(local),
    }
}

/// The first instant at which London clocks read `local` or later, to the second. Searches the
/// hours around `local`, which hold the whole of any gap.
fn first_instant_reading(local: NaiveDateTime) -> DateTime<Utc> {
    let reads = |t: DateTime<Utc>| t.with_timezone(&London).naive_local();
    let window = TimeDelta::hours(3);
    let guess = local.and_utc();
    let mut before = guess
        .checked_sub_signed(window)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut after = guess
        .checked_add_signed(window)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    while (after - before).num_seconds() > 1 {
        let mid = before + TimeDelta::seconds((after - before).num_seconds() / 2);
        if reads(mid) >= local {
            after = mid;
        } else {
            before = mid;
        }
    }
    after
}
