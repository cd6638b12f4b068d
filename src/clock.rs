//! Time as casewarden reads and writes it. Every step takes `now` from its caller, so tests,
//! demos and `tick --now` can put the engine at any moment. Instants are UTC, whole seconds;
//! dates people write mean 09:00 in Europe/London, the start of the working day.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Europe::London;

/// The current instant, truncated to whole seconds so every stored time compares cleanly.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// Where a pass takes its time from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Now {
    /// One instant for the whole pass: `tick --now`, tests and demos walk time on their own.
    At(DateTime<Utc>),
    /// The wall clock, read afresh for each command and each transaction: the daemon. Instances
    /// sharing a database then never apply a command at a time earlier than one another has
    /// already recorded.
    Live,
}

impl Now {
    pub fn get(self) -> DateTime<Utc> {
        match self {
            Now::At(t) => t,
            Now::Live => now(),
        }
    }
}

/// The earliest and latest instants the contract accepts: years 1900 to 9999 in UTC. Inside this
/// range every stored time has a four-digit year, so SQLite's text order is time order.
pub fn earliest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(1900, 1, 1, 0, 0, 0)
        .single()
        .expect("valid time")
}

pub fn latest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
        .single()
        .expect("valid time")
}

/// Reads an RFC 3339 instant (`2026-03-02T10:30:00Z`, `2026-03-02T10:30:00+01:00`) or a date
/// (`2026-03-02`, meaning 09:00 that day in Europe/London).
///
/// ```
/// use casewarden::clock::parse_time;
/// assert_eq!(parse_time("2026-07-01").unwrap().to_rfc3339(), "2026-07-01T08:00:00+00:00");
/// assert!(parse_time("next tuesday").is_err());
/// ```
/// Times outside [`earliest`]..=[`latest`] are refused.
pub fn parse_time(input: &str) -> Result<DateTime<Utc>, String> {
    let input = input.trim();
    let parsed = DateTime::parse_from_rfc3339(input)
        .ok()
        .map(|t| truncate(t.with_timezone(&Utc)))
        .or_else(|| {
            // Four digits and nothing else: chrono's %Y also takes "+99999".
            let plain = input.len() == 10 && input.as_bytes()[0].is_ascii_digit();
            plain
                .then(|| NaiveDate::parse_from_str(input, "%Y-%m-%d").ok())
                .flatten()
                .map(start_of_working_day)
        });
    let Some(t) = parsed else {
        return Err(format!(
            "{} is not a time: use RFC 3339 such as 2026-03-02T10:30:00Z, or a date such as \
             2026-03-02 (09:00 Europe/London)",
            crate::text::quote(input)
        ));
    };
    if t < earliest() || t > latest() {
        return Err(format!(
            "{} is outside the times casewarden accepts: 1900-01-01T00:00:00Z to \
             9999-12-31T23:59:59Z",
            crate::text::quote(input)
        ));
    }
    Ok(t)
}

/// 09:00 London time on `date`, as UTC (08:00Z in summer, 09:00Z in winter).
pub fn start_of_working_day(date: NaiveDate) -> DateTime<Utc> {
    let nine = date.and_time(NaiveTime::from_hms_opt(9, 0, 0).expect("valid time"));
    London
        .from_local_datetime(&nine)
        .earliest()
        .expect("09:00 exists on every day in Europe/London")
        .with_timezone(&Utc)
}

/// Whether human-readable output shows times in UTC (`--utc`) rather than London time.
static SHOW_UTC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Shows times for people in UTC from now on (the command line's `--utc`), or in London time.
pub fn show_utc(utc: bool) {
    SHOW_UTC.store(utc, std::sync::atomic::Ordering::Relaxed);
}

/// A time as a person reads it in a listing: London local time with its zone, `2026-07-01 10:00
/// BST` or `2026-01-07 09:00 GMT`; under `--utc`, `2026-07-01 09:00 UTC`. JSON output, the
/// event log and the database keep RFC 3339 UTC.
pub fn for_people(t: DateTime<Utc>) -> String {
    shown(t, "%Y-%m-%d %H:%M %Z")
}

/// [`for_people`] to the second, for what happened moments ago (`status`).
pub fn for_people_exact(t: DateTime<Utc>) -> String {
    shown(t, "%Y-%m-%d %H:%M:%S %Z")
}

fn shown(t: DateTime<Utc>, format: &str) -> String {
    if SHOW_UTC.load(std::sync::atomic::Ordering::Relaxed) {
        t.format(format).to_string()
    } else {
        t.with_timezone(&London).format(format).to_string()
    }
}

/// The London calendar date of an instant.
pub fn london_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&London).date_naive()
}

#[cfg(test)]
mod tests {
    #[test]
    fn people_read_london_time_with_its_zone() {
        let winter = parse_time("2026-01-07T09:00:00Z").unwrap();
        let summer = parse_time("2026-07-01T09:00:00Z").unwrap();
        assert_eq!(super::for_people(winter), "2026-01-07 09:00 GMT");
        assert_eq!(super::for_people(summer), "2026-07-01 10:00 BST");
        assert_eq!(super::for_people_exact(summer), "2026-07-01 10:00:00 BST");
    }

    use super::*;

    #[test]
    fn a_date_means_nine_in_the_morning_london_time_in_winter_and_summer() {
        assert_eq!(
            parse_time("2026-01-15").unwrap().to_rfc3339(),
            "2026-01-15T09:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-07-15").unwrap().to_rfc3339(),
            "2026-07-15T08:00:00+00:00"
        );
    }

    #[test]
    fn rfc3339_instants_are_kept_in_utc_to_the_second() {
        let t = parse_time("2026-03-29T01:30:00.750+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-29T00:30:00+00:00");
    }

    #[test]
    fn anything_else_is_refused_with_the_accepted_forms() {
        for bad in [
            "",
            "tomorrow",
            "2026-02-30",
            "15/01/2026",
            "2026-01-15 10:00",
        ] {
            let err = parse_time(bad).unwrap_err();
            assert!(err.contains("RFC 3339"), "{bad}: {err}");
        }
    }

    #[test]
    fn times_outside_years_1900_to_9999_utc_are_refused_at_both_edges() {
        assert!(parse_time("1900-01-01T00:00:00Z").is_ok());
        assert!(parse_time("9999-12-31T23:59:59Z").is_ok());
        assert!(parse_time("9999-12-31").is_ok());
        for outside in [
            "1899-12-31T23:59:59Z",
            "9999-12-31T23:59:59-05:00",
            "+99999-01-01",
            "+10000-01-01",
            "0001-01-01",
        ] {
            let err = parse_time(outside).unwrap_err();
            assert!(
                err.contains("outside") || err.contains("is not a time"),
                "{outside}: {err}"
            );
        }
        assert!(
            parse_time("9999-12-31T23:59:59-05:00")
                .unwrap_err()
                .contains("outside the times casewarden accepts")
        );
    }

    #[test]
    fn london_dates_follow_british_summer_time() {
        let late = parse_time("2026-06-30T23:30:00Z").unwrap();
        assert_eq!(
            london_date(late),
            NaiveDate::from_ymd_opt(2026, 7, 1).unwrap()
        );
    }
}
