//! Periods over instants. Instants are UTC; every date and wall-clock time is reasoned about in
//! Europe/London, so a period keeps its London time of day across clock changes. The counting
//! rules are set out in the [module documentation](super). Pure functions: the caller supplies
//! every instant, nothing here reads the clock.
//!
//! Results that would fall outside chrono's range (periods of hundreds of thousands of years)
//! saturate on its first or last day instead of panicking.

use chrono::{DateTime, Days, LocalResult, Months, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::London;

use super::Calendar;
use crate::clock::london_date;
use crate::definitions::{Period, Unit};

/// `start` plus `p`, at the same London wall-clock time.
///
/// Days and weeks count calendar days; months are calendar months, to the same day of the month
/// (the last day of a shorter month: a month from 31 January is 28 or 29 February), as the law
/// counts "one month" and "two months"; working days count the calendar's working days after
/// the start's London date (from that date even when it is not a working day).
pub fn add(cal: &Calendar, start: DateTime<Utc>, p: Period) -> DateTime<Utc> {
    let local = start.with_timezone(&London).naive_local();
    let moved = match p.unit {
        Unit::WorkingDays => Some(cal.add_working_days(local.date(), p.count)),
        Unit::Days | Unit::Weeks => local.date().checked_add_days(calendar_days(p)),
        Unit::Months => local.date().checked_add_months(Months::new(p.count)),
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
        Unit::Months => local.date().checked_sub_months(Months::new(p.count)),
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::OnceLock;

    use chrono::NaiveDate;

    use super::*;
    use crate::sla::Calendars;

    fn ew() -> &'static Calendar {
        static SHIPPED: OnceLock<Calendars> = OnceLock::new();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/calendars");
        SHIPPED
            .get_or_init(|| Calendars::load(&dir).expect("shipped calendars load"))
            .get("england-and-wales")
            .expect("england-and-wales")
    }

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("test instant")
            .with_timezone(&Utc)
    }

    fn p(period: &str) -> Period {
        period.parse().expect("test period")
    }

    #[test]
    fn a_week_from_09_00_before_the_spring_change_is_09_00_bst() {
        let start = at("2026-03-26T09:00:00Z"); // 09:00 GMT, Thursday
        assert_eq!(add(ew(), start, p("1 week")), at("2026-04-02T08:00:00Z"));
        assert_eq!(add(ew(), start, p("7 days")), at("2026-04-02T08:00:00Z"));
    }

    #[test]
    fn a_week_from_09_00_bst_before_the_autumn_change_is_09_00_gmt() {
        let start = at("2026-10-22T08:00:00Z"); // 09:00 BST, Thursday
        assert_eq!(add(ew(), start, p("1 week")), at("2026-10-29T09:00:00Z"));
    }

    #[test]
    fn five_working_days_across_a_clock_change_keep_09_00_london_time() {
        // Thursday to Thursday: no bank holiday in either week.
        let spring = at("2026-03-26T09:00:00Z");
        assert_eq!(
            add(ew(), spring, p("5 working days")),
            at("2026-04-02T08:00:00Z")
        );
        let autumn = at("2026-10-22T08:00:00Z");
        assert_eq!(
            add(ew(), autumn, p("5 working days")),
            at("2026-10-29T09:00:00Z")
        );
    }

    #[test]
    fn subtracting_across_a_clock_change_keeps_the_london_time_too() {
        assert_eq!(
            sub(ew(), at("2026-04-02T08:00:00Z"), p("1 week")),
            at("2026-03-26T09:00:00Z")
        );
        assert_eq!(
            sub(ew(), at("2026-10-29T09:00:00Z"), p("5 working days")),
            at("2026-10-22T08:00:00Z")
        );
    }

    #[test]
    fn working_days_skip_the_bank_holidays_at_the_same_time_of_day() {
        let start = at("2025-12-15T14:30:00Z"); // Monday 14:30 GMT
        assert_eq!(
            add(ew(), start, p("20 working days")),
            at("2026-01-15T14:30:00Z")
        );
        let easter = at("2026-04-02T13:00:00Z"); // Thursday 14:00 BST before Good Friday
        assert_eq!(
            add(ew(), easter, p("1 working day")),
            at("2026-04-07T13:00:00Z")
        );
    }

    #[test]
    fn working_days_count_from_the_london_date_not_the_utc_date() {
        // 23:30 UTC on Tuesday 30 June 2026 is 00:30 BST on Wednesday 1 July.
        let start = at("2026-06-30T23:30:00Z");
        assert_eq!(
            add(ew(), start, p("1 working day")),
            at("2026-07-01T23:30:00Z")
        );
    }

    #[test]
    fn the_first_working_day_after_a_saturday_is_monday() {
        let saturday = at("2026-01-10T11:00:00Z");
        assert_eq!(
            add(ew(), saturday, p("1 working day")),
            at("2026-01-12T11:00:00Z")
        );
        assert_eq!(add(ew(), saturday, p("0 working days")), saturday);
    }

    #[test]
    fn calendar_days_ignore_weekends_and_bank_holidays() {
        let start = at("2025-12-22T09:00:00Z");
        assert_eq!(add(ew(), start, p("28 days")), at("2026-01-19T09:00:00Z"));
        assert_eq!(add(ew(), start, p("4 weeks")), at("2026-01-19T09:00:00Z"));
        assert_eq!(sub(ew(), at("2026-01-19T09:00:00Z"), p("28 days")), start);
    }

    #[test]
    fn a_month_is_a_calendar_month_to_the_same_day_or_the_last_day_of_a_shorter_month() {
        assert_eq!(
            add(ew(), at("2016-01-15T09:00:00Z"), p("1 month")),
            at("2016-02-15T09:00:00Z")
        );
        // 2016 is a leap year; 2015 is not.
        assert_eq!(
            add(ew(), at("2016-01-31T09:00:00Z"), p("1 month")),
            at("2016-02-29T09:00:00Z")
        );
        assert_eq!(
            add(ew(), at("2015-01-31T09:00:00Z"), p("1 month")),
            at("2015-02-28T09:00:00Z")
        );
        // Across the spring change of the clocks, at the same London time.
        assert_eq!(
            add(ew(), at("2016-02-10T09:00:00Z"), p("2 months")),
            at("2016-04-10T08:00:00Z")
        );
        assert_eq!(
            sub(ew(), at("2016-04-10T08:00:00Z"), p("2 months")),
            at("2016-02-10T09:00:00Z")
        );
        let two = p("2 calendar months");
        assert!(two.min_calendar_days() <= 59 && two.max_calendar_days() >= 62);
        assert_eq!(two.to_string(), "2 months");
    }

    #[test]
    fn a_time_skipped_when_the_clocks_go_forward_is_the_moment_they_go_forward() {
        // 01:30 GMT the day before; 01:30 on 29 March 2026 never happens (01:00 GMT → 02:00 BST).
        let start = at("2026-03-28T01:30:00Z");
        assert_eq!(add(ew(), start, p("1 day")), at("2026-03-29T01:00:00Z"));
        let after = at("2026-03-30T00:30:00Z"); // 01:30 BST the day after
        assert_eq!(sub(ew(), after, p("1 day")), at("2026-03-29T01:00:00Z"));
    }

    #[test]
    fn a_time_repeated_when_the_clocks_go_back_is_its_first_occurrence() {
        // 01:30 on 25 October 2026 happens at 00:30 UTC (BST) and again at 01:30 UTC (GMT).
        let start = at("2026-10-24T00:30:00Z"); // 01:30 BST the day before
        assert_eq!(add(ew(), start, p("1 day")), at("2026-10-25T00:30:00Z"));
    }

    #[test]
    fn subtracting_working_days_undoes_adding_them_from_a_working_day() {
        let starts = [
            "2025-12-15T09:00:00Z",
            "2026-03-26T09:00:00Z",
            "2026-04-02T16:45:00Z",
            "2026-10-22T08:00:00Z",
            "2026-12-24T10:00:00Z",
        ];
        for start in starts.map(at) {
            for n in [0, 1, 3, 5, 10, 20, 60] {
                let period = Period {
                    count: n,
                    unit: Unit::WorkingDays,
                };
                assert_eq!(
                    sub(ew(), add(ew(), start, period), period),
                    start,
                    "{start} {n}"
                );
            }
            for period in ["1 day", "10 days", "1 week", "8 weeks"].map(p) {
                assert_eq!(
                    sub(ew(), add(ew(), start, period), period),
                    start,
                    "{start} {period}"
                );
            }
        }
    }

    #[test]
    fn amber_is_the_target_less_the_warning_in_working_days() {
        // Target Monday 5 January 2026 09:00; 5 working days earlier skips New Year and Christmas.
        let target = at("2026-01-05T09:00:00Z");
        assert_eq!(
            sub(ew(), target, p("5 working days")),
            at("2025-12-24T09:00:00Z")
        );
    }

    #[test]
    fn working_days_remaining_count_london_dates_and_go_negative_when_overdue() {
        let due = at("2026-01-15T09:00:00Z"); // Thursday
        assert_eq!(
            working_days_remaining(ew(), at("2026-01-12T17:00:00Z"), due),
            3
        );
        assert_eq!(
            working_days_remaining(ew(), at("2026-01-15T23:59:00Z"), due),
            0
        );
        assert_eq!(
            working_days_remaining(ew(), at("2026-01-16T08:00:00Z"), due),
            -1
        );
        assert_eq!(
            working_days_remaining(ew(), at("2026-01-19T08:00:00Z"), due),
            -2
        );
        // Christmas week: 24, 29, 30, 31 December and 2 January.
        let after_new_year = at("2026-01-02T09:00:00Z");
        assert_eq!(
            working_days_remaining(ew(), at("2025-12-23T09:00:00Z"), after_new_year),
            5
        );
    }

    #[test]
    fn working_days_remaining_use_the_london_date_of_each_instant() {
        // Due Monday 13 July 2026 09:00 BST. 22:30 UTC on Thursday 9 July is 23:30 BST, still
        // Thursday (Friday and Monday remain); 23:30 UTC is 00:30 BST on Friday (Monday remains).
        let due = at("2026-07-13T08:00:00Z");
        assert_eq!(
            working_days_remaining(ew(), at("2026-07-09T22:30:00Z"), due),
            2
        );
        assert_eq!(
            working_days_remaining(ew(), at("2026-07-09T23:30:00Z"), due),
            1
        );
        // Due 23:30 UTC on Sunday 12 July is 00:30 BST on Monday 13 July.
        let late = at("2026-07-12T23:30:00Z");
        assert_eq!(
            working_days_remaining(ew(), at("2026-07-10T12:00:00Z"), late),
            1
        );
    }

    #[test]
    fn a_hold_from_monday_morning_to_wednesday_morning_held_two_working_days() {
        let held = at("2026-01-12T10:00:00Z");
        let released = at("2026-01-14T09:00:00Z");
        assert_eq!(working_days_held(ew(), held, released), 2);
    }

    #[test]
    fn a_hold_released_the_same_day_held_no_working_days() {
        let held = at("2026-01-12T10:00:00Z");
        assert_eq!(working_days_held(ew(), held, at("2026-01-12T16:00:00Z")), 0);
        assert_eq!(working_days_held(ew(), held, held), 0);
        assert_eq!(
            working_days_held(ew(), held, at("2026-01-09T10:00:00Z")),
            0,
            "backwards"
        );
    }

    #[test]
    fn a_hold_counts_only_the_working_days_it_covered() {
        // Friday to Monday: only the Friday.
        assert_eq!(
            working_days_held(ew(), at("2026-01-09T15:00:00Z"), at("2026-01-12T09:00:00Z")),
            1
        );
        // Saturday to Monday: none.
        assert_eq!(
            working_days_held(ew(), at("2026-01-10T15:00:00Z"), at("2026-01-12T09:00:00Z")),
            0
        );
        // Thursday before Easter to the Tuesday after: only the Thursday.
        assert_eq!(
            working_days_held(ew(), at("2026-04-02T09:00:00Z"), at("2026-04-07T09:00:00Z")),
            1
        );
        // Over Christmas and New Year: 24, 29, 30, 31 December and 2 January.
        assert_eq!(
            working_days_held(ew(), at("2025-12-24T09:00:00Z"), at("2026-01-05T09:00:00Z")),
            5
        );
    }

    #[test]
    fn a_hold_ending_after_midnight_london_time_counts_the_london_dates() {
        // Monday 10:00 BST to 00:30 BST on Wednesday (23:30 UTC on Tuesday).
        let held = at("2026-07-06T09:00:00Z");
        assert_eq!(working_days_held(ew(), held, at("2026-07-07T23:30:00Z")), 2);
    }

    #[test]
    fn absurdly_long_periods_saturate_instead_of_panicking() {
        let start = at("2026-01-14T09:00:00Z");
        for period in [
            "4294967295 days",
            "4294967295 weeks",
            "4294967295 working days",
        ] {
            let (later, earlier) = (add(ew(), start, p(period)), sub(ew(), start, p(period)));
            assert_eq!(later.date_naive(), NaiveDate::MAX, "{period}");
            assert_eq!(earlier.date_naive(), NaiveDate::MIN, "{period}");
        }
    }
}
