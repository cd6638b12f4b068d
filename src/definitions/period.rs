//! Service-level periods as rule authors write them: "20 working days", "8 weeks", "28 days",
//! "2 months".

use std::fmt;
use std::str::FromStr;

/// The unit a period counts in. Working days skip weekends and the calendar's holidays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    WorkingDays,
    Days,
    Weeks,
    /// Calendar months, to the same day of the month (or the last day of a shorter month).
    Months,
}

/// A period as written in definitions.
///
/// ```
/// use casewarden::definitions::{Period, Unit};
/// let p: Period = "20 working days".parse().unwrap();
/// assert_eq!((p.count, p.unit), (20, Unit::WorkingDays));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    pub count: u32,
    pub unit: Unit,
}

impl Period {
    /// Length in calendar days where the unit allows it (working days depend on a calendar).
    pub fn calendar_days(&self) -> Option<u32> {
        match self.unit {
            Unit::Days => Some(self.count),
            Unit::Weeks => Some(self.count * 7),
            Unit::WorkingDays | Unit::Months => None,
        }
    }

    /// The most calendar days this period can span. Working days are bounded by assuming a
    /// five-day week plus up to 4 consecutive closure days in any run of 5 working days, which
    /// covers Christmas and Easter in every UK calendar.
    pub fn max_calendar_days(&self) -> u32 {
        match self.unit {
            Unit::WorkingDays => self.count.div_ceil(5) * 7 + 4 * self.count.div_ceil(5),
            // Every run of 12 months has 365 or 366 days; fewer months, at most 31 each.
            Unit::Months => self.count / 12 * 366 + self.count % 12 * 31,
            _ => self.calendar_days().unwrap_or_default(),
        }
    }

    /// Whether this period always ends before `other` when both start together.
    pub fn shorter_than(&self, other: &Period) -> bool {
        if self.unit == other.unit {
            self.count < other.count
        } else {
            self.max_calendar_days() < other.min_calendar_days()
        }
    }

    /// The fewest calendar days this period can span.
    pub fn min_calendar_days(&self) -> u32 {
        match self.unit {
            Unit::WorkingDays => self.count + (self.count.saturating_sub(1) / 5) * 2,
            Unit::Months => self.count / 12 * 365 + self.count % 12 * 28,
            _ => self.calendar_days().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a period: write a whole number and a unit, such as \"20 working days\", \
     \"28 days\", \"8 weeks\" or \"2 months\""
)]
pub struct PeriodError {
    pub input: String,
}

impl FromStr for Period {
    type Err = PeriodError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || PeriodError {
            input: input.to_string(),
        };
        let words: Vec<String> = input.split_whitespace().map(str::to_lowercase).collect();
        let (count, unit) = match words.as_slice() {
            [n, unit] => (n, vec![unit.as_str()]),
            [n, a, b] => (n, vec![a.as_str(), b.as_str()]),
            _ => return Err(err()),
        };
        let count: u32 = count.parse().map_err(|_| err())?;
        let unit = match unit.as_slice() {
            ["working", "day" | "days"] => Unit::WorkingDays,
            ["day" | "days"] | ["calendar", "day" | "days"] => Unit::Days,
            ["week" | "weeks"] => Unit::Weeks,
            ["month" | "months"] | ["calendar", "month" | "months"] => Unit::Months,
            _ => return Err(err()),
        };
        Ok(Period { count, unit })
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.count == 1 { "" } else { "s" };
        let unit = match self.unit {
            Unit::WorkingDays => "working day",
            Unit::Days => "day",
            Unit::Weeks => "week",
            Unit::Months => "month",
        };
        write!(f, "{} {unit}{plural}", self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_as_rule_authors_write_them() {
        let p = |s: &str| s.parse::<Period>().unwrap();
        assert_eq!(
            p("20 working days"),
            Period {
                count: 20,
                unit: Unit::WorkingDays
            }
        );
        assert_eq!(
            p("1 Working Day"),
            Period {
                count: 1,
                unit: Unit::WorkingDays
            }
        );
        assert_eq!(
            p("28 days"),
            Period {
                count: 28,
                unit: Unit::Days
            }
        );
        assert_eq!(
            p("28 calendar days"),
            Period {
                count: 28,
                unit: Unit::Days
            }
        );
        assert_eq!(
            p("8 weeks"),
            Period {
                count: 8,
                unit: Unit::Weeks
            }
        );
        assert_eq!(p("8 weeks").to_string(), "8 weeks");
        assert_eq!(p("1 working day").to_string(), "1 working day");
    }

    #[test]
    fn a_malformed_period_says_how_to_write_one() {
        for bad in [
            "",
            "eight weeks",
            "8",
            "8 fortnights",
            "-2 days",
            "2.5 days",
            "8 weeks ago x",
        ] {
            let err = bad.parse::<Period>().unwrap_err();
            assert!(err.to_string().contains("20 working days"), "{bad}: {err}");
        }
    }

    #[test]
    fn working_day_bounds_bracket_every_real_span() {
        let p: Period = "5 working days".parse().unwrap();
        assert_eq!(p.min_calendar_days(), 5);
        assert!(p.max_calendar_days() >= 11);
        let w: Period = "8 weeks".parse().unwrap();
        assert_eq!((w.min_calendar_days(), w.max_calendar_days()), (56, 56));
        assert!(p.shorter_than(&"6 working days".parse().unwrap()));
        assert!(!p.shorter_than(&"5 working days".parse().unwrap()));
        assert!(p.shorter_than(&"2 weeks".parse().unwrap()));
        assert!(!p.shorter_than(&"1 week".parse().unwrap()));
    }
}
