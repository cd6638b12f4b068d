//! The SLA state machine of one task or stage, as pure functions: where its clock puts the amber
//! warning and the target, and which checkpoint comes next.
//!
//! ```text
//! on_track ──amber_at──▶ amber ──target_at──▶ exceeded ──every follow_on──▶ exceeded (follow-on 1, 2, … limit)
//! ```
//!
//! With no amber period the item goes straight from on track to exceeded. Completed, skipped,
//! cancelled and held items have no checkpoint: their clock is stopped.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Calendar, periods};
use crate::definitions::{Period, Sla};

/// The dates a clock sets when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dates {
    pub target: DateTime<Utc>,
    pub amber: Option<DateTime<Utc>>,
}

impl Dates {
    /// Starts a clock of `period` at `start`, with the amber warning `amber` before the target.
    pub fn start(
        cal: &Calendar,
        start: DateTime<Utc>,
        period: Period,
        amber: Option<Period>,
    ) -> Dates {
        let target = periods::add(cal, start, period);
        Dates {
            target,
            amber: amber.map(|a| periods::sub(cal, target, a).max(start).min(target)),
        }
    }

    /// Moves both dates on by `days` working days, as after a hold.
    pub fn shifted(&self, cal: &Calendar, days: u32) -> Dates {
        let by = Period {
            count: days,
            unit: crate::definitions::Unit::WorkingDays,
        };
        Dates {
            target: periods::add(cal, self.target, by),
            amber: self.amber.map(|a| periods::add(cal, a, by)),
        }
    }

    /// Caps the dates at `limit` (a task's target never ends after its stage's).
    pub fn capped(&self, limit: DateTime<Utc>) -> Dates {
        Dates {
            target: self.target.min(limit),
            amber: self.amber.map(|a| a.min(limit)),
        }
    }
}

/// The escalation levels.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Amber,
    Exceeded,
    FollowOn,
}

impl Level {
    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Amber => "amber",
            Level::Exceeded => "exceeded",
            Level::FollowOn => "follow_on",
        }
    }

    /// The state an item is in once this level has fired.
    pub fn state_after(&self) -> &'static str {
        match self {
            Level::Amber => "amber",
            Level::Exceeded | Level::FollowOn => "exceeded",
        }
    }
}

/// A checkpoint: a level, its repetition (0 for amber and exceeded, 1.. for follow-ons) and when
/// it falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub level: Level,
    pub repetition: u32,
    pub at: DateTime<Utc>,
}

/// The next checkpoint for an item in `state` that has had `follow_ons` follow-ons.
pub fn next(
    cal: &Calendar,
    sla: &Sla,
    state: &str,
    follow_ons: u32,
    dates: Dates,
) -> Option<Checkpoint> {
    match state {
        "on_track" => Some(match dates.amber {
            Some(at) => Checkpoint {
                level: Level::Amber,
                repetition: 0,
                at,
            },
            None => Checkpoint {
                level: Level::Exceeded,
                repetition: 0,
                at: dates.target,
            },
        }),
        "amber" => Some(Checkpoint {
            level: Level::Exceeded,
            repetition: 0,
            at: dates.target,
        }),
        "exceeded" => {
            let interval = sla.follow_on?;
            if follow_ons >= sla.follow_on_limit {
                return None;
            }
            let repetition = follow_ons + 1;
            let at = (0..repetition).fold(dates.target, |t, _| periods::add(cal, t, interval));
            Some(Checkpoint {
                level: Level::FollowOn,
                repetition,
                at,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::clock::parse_time;

    fn cal() -> Calendar {
        Calendar::from_closures("test", BTreeMap::new())
    }

    fn sla(follow_on: Option<&str>, limit: u32) -> Sla {
        Sla {
            follow_on: follow_on.map(|f| f.parse().unwrap()),
            follow_on_limit: limit,
            ..Sla::default()
        }
    }

    #[test]
    fn an_item_goes_amber_then_exceeded_then_follows_on_up_to_its_limit() {
        let start = parse_time("2026-01-05").unwrap();
        let dates = Dates::start(
            &cal(),
            start,
            "10 working days".parse().unwrap(),
            Some("3 working days".parse().unwrap()),
        );
        assert_eq!(dates.target, parse_time("2026-01-19").unwrap());
        assert_eq!(dates.amber, Some(parse_time("2026-01-14").unwrap()));
        let s = sla(Some("5 working days"), 2);
        let step = |state: &str, n: u32| {
            next(&cal(), &s, state, n, dates).map(|c| (c.level, c.repetition, c.at.to_rfc3339()))
        };
        assert_eq!(
            step("on_track", 0),
            Some((Level::Amber, 0, "2026-01-14T09:00:00+00:00".into()))
        );
        assert_eq!(
            step("amber", 0),
            Some((Level::Exceeded, 0, "2026-01-19T09:00:00+00:00".into()))
        );
        assert_eq!(
            step("exceeded", 0),
            Some((Level::FollowOn, 1, "2026-01-26T09:00:00+00:00".into()))
        );
        assert_eq!(
            step("exceeded", 1),
            Some((Level::FollowOn, 2, "2026-02-02T09:00:00+00:00".into()))
        );
        assert_eq!(step("exceeded", 2), None);
        assert_eq!(step("stopped", 0), None);
    }

    #[test]
    fn without_an_amber_period_the_first_checkpoint_is_the_target() {
        let start = parse_time("2026-01-05").unwrap();
        let dates = Dates::start(&cal(), start, "4 weeks".parse().unwrap(), None);
        let c = next(&cal(), &sla(None, 0), "on_track", 0, dates).unwrap();
        assert_eq!(
            (c.level, c.at.to_rfc3339()),
            (Level::Exceeded, "2026-02-02T09:00:00+00:00".into())
        );
        assert_eq!(next(&cal(), &sla(None, 0), "exceeded", 0, dates), None);
    }

    #[test]
    fn a_hold_moves_both_dates_on_and_a_stage_caps_them() {
        let start = parse_time("2026-01-05").unwrap();
        let dates = Dates::start(
            &cal(),
            start,
            "5 working days".parse().unwrap(),
            Some("2 working days".parse().unwrap()),
        );
        let moved = dates.shifted(&cal(), 3);
        assert_eq!(moved.target, parse_time("2026-01-15").unwrap());
        assert_eq!(moved.amber, Some(parse_time("2026-01-13").unwrap()));
        let limit = parse_time("2026-01-09").unwrap();
        assert_eq!(dates.capped(limit).target, limit);
    }
}
