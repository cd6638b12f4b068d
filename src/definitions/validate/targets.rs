//! Checking an SLA: its target, warning and follow-on periods and where its clock starts, and the
//! spans of time used to compare one target with another.

use super::*;

impl Compiler<'_> {
    pub(super) fn sla(&mut self, s: &model::SlaDef) -> Option<Sla> {
        let before = self.problems.len();
        let given = [
            s.target.is_some(),
            s.target_by.is_some(),
            s.target_expr.is_some(),
        ]
        .iter()
        .filter(|g| **g)
        .count();
        if given > 1 {
            let at = s
                .target_expr
                .as_ref()
                .or(s.target.as_ref())
                .map_or(0, |t| t.span().start);
            self.problems.push(
                self.src
                    .at(at, "give one of target, target_by or target_expr")
                    .help("they are three ways to set the same target"),
            );
            return None;
        }
        let target = match (&s.target, &s.target_by) {
            _ if s.target_expr.is_some() => s.target_expr.as_ref().and_then(|e| self.expression(e)),
            (Some(t), None) => self.period(t).map(Target::Fixed),
            (None, Some(by)) => {
                let mut values = BTreeMap::new();
                for (k, v) in &by.values {
                    if let Some(p) = self.period(v) {
                        values.insert(k.clone(), p);
                    }
                }
                let default = by.default.as_ref().and_then(|d| self.period(d));
                if by.values.is_empty() {
                    self.err(&by.fact, "target_by needs at least one value", "");
                }
                Some(Target::ByFact {
                    fact: by.fact.get_ref().clone(),
                    values,
                    default,
                })
            }
            (Some(t), Some(_)) => {
                self.err(t, "give either target or target_by, not both", "");
                None
            }
            (None, None) => None,
        };
        let amber = s.amber.as_ref().and_then(|a| self.period(a));
        if let (Some(a), Some(at)) = (amber, &s.amber) {
            match &target {
                None => self.err(
                    at,
                    "an amber warning needs a target",
                    "add `target = \"...\"` to this sla",
                ),
                Some(t) if t.periods().iter().any(|p| !a.shorter_than(p)) => self.err(
                    at,
                    format!("the amber warning ({a}) is not shorter than the target"),
                    "amber is the warning period before the target; make it shorter",
                ),
                _ => {}
            }
        }
        let follow_on = s.follow_on.as_ref().and_then(|f| self.period(f));
        if let Some(f) = &s.follow_on
            && target.is_none()
        {
            self.err(f, "follow-on escalations need a target", "");
        }
        let from = match s.from.as_ref() {
            None => crate::definitions::ClockFrom::Start,
            Some(f) => match f.get_ref().as_str() {
                "activation" => crate::definitions::ClockFrom::Start,
                "stage_entered" => crate::definitions::ClockFrom::StageEntered,
                "case_received" => crate::definitions::ClockFrom::CaseReceived,
                other => {
                    self.err(
                        f,
                        format!("unknown clock start {other:?}"),
                        "use activation, stage_entered or case_received",
                    );
                    crate::definitions::ClockFrom::Start
                }
            },
        };
        let esc = s.escalation.clone().unwrap_or_default();
        let escalation = Escalation {
            amber: esc
                .amber
                .as_ref()
                .and_then(|n| self.script("escalation rule", n, "escalation/")),
            exceeded: esc
                .exceeded
                .as_ref()
                .and_then(|n| self.script("escalation rule", n, "escalation/")),
            follow_on: esc
                .follow_on
                .as_ref()
                .and_then(|n| self.script("escalation rule", n, "escalation/")),
        };
        (self.problems.len() == before).then(|| Sla {
            target,
            from,
            amber,
            follow_on,
            follow_on_limit: s
                .follow_on_limit
                .unwrap_or(if follow_on.is_some() { 3 } else { 0 }),
            pausable: s.pausable.unwrap_or(true),
            escalation,
        })
    }
}

/// A length of time built from working days and calendar days, for comparing targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Span {
    working_days: u32,
    days: u32,
}

impl Span {
    pub(super) fn plus(self, p: Period) -> Span {
        match p.unit {
            crate::definitions::Unit::WorkingDays => Span {
                working_days: self.working_days + p.count,
                ..self
            },
            _ => Span {
                days: self.days + p.min_calendar_days(),
                ..self
            },
        }
    }

    pub(super) fn is_zero(&self) -> bool {
        *self == Span::default()
    }

    /// Whether this span surely ends no later than `limit` from the same start.
    pub(super) fn fits_within(&self, limit: Period) -> bool {
        match limit.unit {
            // Each calendar day may be a working day.
            crate::definitions::Unit::WorkingDays => self.working_days + self.days <= limit.count,
            _ => {
                let wd = Period {
                    count: self.working_days,
                    unit: crate::definitions::Unit::WorkingDays,
                };
                let wd_days = if self.working_days == 0 {
                    0
                } else {
                    wd.max_calendar_days()
                };
                wd_days + self.days <= limit.min_calendar_days()
            }
        }
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.working_days, self.days) {
            (w, 0) => write!(f, "{w} working day(s)"),
            (0, d) => write!(f, "{d} day(s)"),
            (w, d) => write!(f, "{w} working day(s) and {d} day(s)"),
        }
    }
}

/// The longest chain of targets through `deps` and their own automatic dependencies.
pub(super) fn chain(
    tasks: &[Task],
    deps: &[String],
    longest: &dyn Fn(&Task) -> Option<Period>,
) -> Span {
    deps.iter()
        .filter_map(|d| tasks.iter().find(|t| &t.key == d))
        .map(|t| {
            let before = if t.activation == crate::definitions::Activation::Manual {
                Span::default()
            } else {
                chain(tasks, &t.depends_on, longest)
            };
            longest(t).map_or(before, |p| before.plus(p))
        })
        .max_by_key(|s| {
            let wd = Period {
                count: s.working_days,
                unit: crate::definitions::Unit::WorkingDays,
            };
            (if s.working_days == 0 {
                0
            } else {
                wd.max_calendar_days()
            }) + s.days
        })
        .unwrap_or_default()
}
