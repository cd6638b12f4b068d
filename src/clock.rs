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

/// Reads an RFC 3339 instant (`2026-03-02T10:30:00Z`, `2026-03-02T10:30:00+01:00`) or a date
/// (`2026-03-02`, meaning 09:00 that day in Europe/London).
///
/// ```
/// use casewarden::clock::parse_time;
/// assert_eq!(parse_time("2026-07-01").unwrap().to_rfc3339(), "2026-07-01T08:00:00+00:00");
/// assert!(parse_time("next tuesday").is_err());
/// ```
pub fn parse_time(input: &str) -> Result<DateTime<Utc>, String> {
    let input = input.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(input) {
        return Ok(truncate(t.with_timezone(&Utc)));
    }
    if let Ok(d) = NaiveDate::parse_from_str(input, "%Y-%m-%d") {
        return Ok(start_of_working_day(d));
    }
    Err(format!(
        "{input:?} is not a time: use RFC 3339 such as 2026-03-02T10:30:00Z, or a date such as \
         2026-03-02 (09:00 Europe/London)"
    ))
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

/// The London calendar date of an instant.
pub fn london_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&London).date_naive()
}

#[cfg(test)]
mod tests {
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
    fn london_dates_follow_british_summer_time() {
        let late = parse_time("2026-06-30T23:30:00Z").unwrap();
        assert_eq!(
            london_date(late),
            NaiveDate::from_ymd_opt(2026, 7, 1).unwrap()
        );
    }
}
