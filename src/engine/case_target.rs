//! A housing options case's target: the end of the longest path through its tasks' dependency
//! graph. A done task ends when it was done; an active one at its target; a held one at its
//! target moved on by the working days until its release date; a waiting one starts when the
//! last of its dependencies ends (or when the case was launched) and runs its own SLA period,
//! a duty's task from the duty's recorded start date where there is one.
//! Optional tasks count only once they are activated. The target is a plan, not a forecast: it
//! moves when tasks are activated, completed, skipped, held or released, never with the clock.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::db::rows::{self, CaseRow, TaskRow};
use crate::db::{Tx, sql};
use crate::definitions::{ClockFrom, Stage};
use crate::events::kinds::{self, Kind};
use crate::events::{self, ENGINE};
use crate::rules::RuleSet;
use crate::sla::{Calendar, checkpoint::Dates, periods};

/// The kind of case whose target follows its tasks.
pub const KIND: &str = "housing_options";

/// The case's target and the tasks on the path that sets it, first to last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    pub target: Option<DateTime<Utc>>,
    pub path: Vec<String>,
}

/// How a task's clock is set for this case: its period, and the recorded start of the duty it
/// runs, if any (a waiting duty task is projected from that start).
pub struct Clocks<'a> {
    pub period: &'a dyn Fn(&crate::definitions::Task) -> Option<crate::definitions::Period>,
    pub duty_start: &'a dyn Fn(&crate::definitions::Task) -> Option<DateTime<Utc>>,
}

/// Projects the end of every task of `stage` from its row, and takes the latest.
pub fn project(
    stage: &Stage,
    tasks: &[TaskRow],
    entered: DateTime<Utc>,
    cal: &Calendar,
    clocks: &Clocks<'_>,
    received: DateTime<Utc>,
) -> Projection {
    // (end, the dependency whose end started it)
    let mut ends: BTreeMap<&str, (DateTime<Utc>, Option<&str>)> = BTreeMap::new();
    // The definition lists dependencies before use is not guaranteed: settle in rounds (the
    // graph is acyclic, so at most one round per task).
    for _ in 0..=stage.tasks.len() {
        let mut changed = false;
        for def in &stage.tasks {
            if ends.contains_key(def.key.as_str()) {
                continue;
            }
            let Some(row) = tasks.iter().find(|t| t.task == def.key) else {
                continue;
            };
            let deps: Option<Vec<(DateTime<Utc>, &str)>> = def
                .depends_on
                .iter()
                .map(|d| {
                    ends.get(d.as_str())
                        .map(|(end, _)| (*end, d.as_str()))
                        .or_else(|| counts_not(stage, tasks, d).then_some((entered, "")))
                })
                .collect();
            let Some(deps) = deps else { continue };
            let after = deps.iter().max_by_key(|(end, _)| *end).copied();
            let start = after.map_or(entered, |(end, _)| end.max(entered));
            let via = after.map(|(_, d)| d).filter(|d| !d.is_empty());
            let Some(end) = task_end(def, row, start, entered, received, cal, clocks) else {
                continue;
            };
            ends.insert(&def.key, (end, via));
            changed = true;
        }
        if !changed {
            break;
        }
    }
    critical_path(&ends, tasks)
}

/// When a task ends, or is expected to: done tasks when they were done, active and held ones at
/// their (held-over) target, mandatory waiting ones a full period after they can start. None for
/// an optional task not started, which the case does not wait for.
fn task_end(
    def: &crate::definitions::Task,
    row: &TaskRow,
    start: DateTime<Utc>,
    entered: DateTime<Utc>,
    received: DateTime<Utc>,
    cal: &Calendar,
    clocks: &Clocks<'_>,
) -> Option<DateTime<Utc>> {
    let end = match row.status.as_str() {
        "completed" | "skipped" | "cancelled" => row.completed_at.unwrap_or(start),
        "active" => row.target_at.unwrap_or(row.activated_at.unwrap_or(start)),
        "on_hold" => match (row.target_at, row.held_since, row.hold_until) {
            // A clock the law does not pause ends where it always would.
            (Some(target), ..) if !def.sla.pausable => target,
            (Some(target), Some(since), Some(until)) => {
                Dates {
                    target,
                    amber: None,
                }
                .shifted(cal, periods::working_days_held(cal, since, until))
                .target
            }
            (Some(target), ..) => target,
            _ => row.activated_at.unwrap_or(start),
        },
        _ if !row.mandatory => return None,
        _ => {
            let from = (clocks.duty_start)(def).unwrap_or(match def.sla.from {
                ClockFrom::Start => start,
                ClockFrom::StageEntered => entered,
                ClockFrom::CaseReceived => received,
            });
            match (clocks.period)(def) {
                Some(p) => Dates::start(cal, from, p, None).target.max(start),
                None => start,
            }
        }
    };
    Some(end)
}

/// The projection from each task's end: the latest end that counts, and the chain of
/// dependencies that leads to it.
fn critical_path(
    ends: &BTreeMap<&str, (DateTime<Utc>, Option<&str>)>,
    tasks: &[TaskRow],
) -> Projection {
    let Some((last, _)) = ends
        .iter()
        .filter(|(k, _)| counts(tasks, k))
        .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.0.cmp(a.0)))
    else {
        return Projection {
            target: None,
            path: Vec::new(),
        };
    };
    let target = ends[last].0;
    let mut path = vec![last.to_string()];
    let mut at: &str = last;
    while let Some((_, Some(prev))) = ends.get(at) {
        path.push(prev.to_string());
        at = prev;
    }
    path.reverse();
    Projection {
        target: Some(target),
        path,
    }
}

/// Whether a task's end counts towards the case's: mandatory ones always, optional ones once
/// activated.
fn counts(tasks: &[TaskRow], key: &str) -> bool {
    tasks
        .iter()
        .find(|t| t.task == key)
        .is_some_and(|t| t.mandatory || t.status != crate::states::TaskStatus::Waiting)
}

/// An optional dependency that was never activated holds nothing back in the projection.
fn counts_not(stage: &Stage, tasks: &[TaskRow], key: &str) -> bool {
    stage.task(key).is_some() && !counts(tasks, key)
}

/// Recomputes a housing options case's target; when it moved, records it with a
/// `case_target_changed` event naming the path and what moved it. Other cases are left alone.
/// `case` may have been read before the change: only this function writes the target, and what
/// else it reads of the case never changes.
pub async fn refresh(
    tx: &mut Tx,
    rules: &RuleSet,
    case: &CaseRow,
    because: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if case.kind != KIND {
        return Ok(());
    }
    let Some(def) = rules.definition(&case.definition_id) else {
        return Ok(());
    };
    let Some(stage_row) = rows::latest_stage(&mut *tx, case.id).await? else {
        return Ok(());
    };
    let Some(stage) = def.stage(&stage_row.stage) else {
        return Ok(());
    };
    let tasks = rows::tasks_of_stage(&mut *tx, stage_row.id).await?;
    let cal = rules.calendar(def);
    // Only a waiting duty task is projected from its duty's start: read them only then.
    let waiting_duty = stage.tasks.iter().any(|t| {
        t.duty.is_some()
            && tasks
                .iter()
                .any(|r| r.task == t.key && r.status == crate::states::TaskStatus::Waiting)
    });
    let duty_starts: Vec<(String, chrono::NaiveDate)> = if waiting_duty {
        sql("SELECT duty, start_date FROM duties WHERE case_id = $1")
            .bind(case.id)
            .fetch_all(&mut *tx)
            .await?
    } else {
        Vec::new()
    };
    // The clocks borrow closures that are not Sync: keep them out of the awaits below.
    let projection = {
        let duty_start = |t: &crate::definitions::Task| {
            let (_, day) = duty_starts
                .iter()
                .find(|(d, _)| t.duty.as_deref() == Some(d.as_str()))?;
            Some(crate::clock::start_of_working_day(*day))
        };
        let clocks = Clocks {
            period: &|t| period_of(rules, case, t),
            duty_start: &duty_start,
        };
        project(
            stage,
            &tasks,
            stage_row.entered_at,
            cal,
            &clocks,
            case.received_at,
        )
    };
    if projection.target == case.target_at {
        return Ok(());
    }
    sql("UPDATE cases SET target_at = $1, target_day = $2, target_path = $3 WHERE id = $4")
        .bind(projection.target)
        .bind(projection.target.map(crate::clock::london_date))
        .bind(json!(projection.path))
        .bind(case.id)
        .execute(&mut *tx)
        .await?;
    let changed = Kind::CaseTargetChanged(kinds::CaseTargetChanged {
        target_at: projection.target,
        previous: case.target_at,
        path: projection.path.clone(),
        because: because.into(),
    });
    events::record(tx, case.event_target(), now, ENGINE, changed).await?;
    Ok(())
}

/// A task's SLA period for this case, as its clock would set it.
fn period_of(
    rules: &RuleSet,
    case: &CaseRow,
    task: &crate::definitions::Task,
) -> Option<crate::definitions::Period> {
    match task.sla.target.as_ref()? {
        crate::definitions::Target::Expr { ast, .. } => {
            crate::rules::target::evaluate(&rules.sandbox, ast, case)
                .ok()
                .flatten()
        }
        other => other.period(crate::rules::target::fact(case)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definitions::{Activation, Period, Sla, Successors, Target, Task, Unit};
    use chrono::TimeZone;

    fn task(key: &str, deps: &[&str], days: u32, mandatory: bool) -> Task {
        Task {
            key: key.into(),
            name: key.into(),
            mandatory,
            activation: if mandatory {
                Activation::Auto
            } else {
                Activation::Manual
            },
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            role: None,
            makes_pack: false,
            duty: None,
            sla: Sla {
                target: Some(Target::Fixed(Period {
                    count: days,
                    unit: Unit::Days,
                })),
                ..Sla::default()
            },
        }
    }

    fn row(key: &str, status: &str, mandatory: bool) -> TaskRow {
        TaskRow {
            id: 0,
            case_id: 1,
            stage_id: 1,
            task: key.into(),
            mandatory,
            activation: "auto".into(),
            status: status.parse().unwrap(),
            owner: None,
            line_manager: None,
            role_ref: None,
            activated_at: None,
            completed_at: None,
            completed_by: None,
            outcome: None,
            hold_until: None,
            skip_reason: None,
            hold_reason: None,
            held_since: None,
            held_seconds: 0,
            target_at: None,
            amber_at: None,
            sla_state: crate::states::SlaState::None,
        }
    }

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, 10, 0, 0).unwrap()
    }

    #[test]
    fn the_longest_path_sets_the_target_and_moves_as_tasks_finish_and_wait() {
        // a (2 days) → b (10 days) and a → c (3 days) → d (4 days); optional e (20 days) after a.
        let stage = Stage {
            key: "casework".into(),
            name: "w".into(),
            master: "casework".into(),
            order: 10,
            next: Successors::Final,
            diversions: vec![],
            branch: false,
            sla: Sla::default(),
            tasks: vec![
                task("d", &["c"], 4, true),
                task("a", &[], 2, true),
                task("b", &["a"], 10, true),
                task("c", &["a"], 3, true),
                task("e", &["a"], 20, false),
            ],
        };
        let cal = Calendar::from_closures("test", BTreeMap::new());
        let period = |t: &Task| t.sla.target.as_ref().and_then(|x| x.period(|_| None));
        let clocks = Clocks {
            period: &period,
            duty_start: &|_| None,
        };
        let mut rows = vec![
            row("a", "active", true),
            row("b", "waiting", true),
            row("c", "waiting", true),
            row("d", "waiting", true),
            row("e", "waiting", false),
        ];
        rows[0].target_at = Some(day(3));
        let p = project(&stage, &rows, day(1), &cal, &clocks, day(1));
        assert_eq!(p.target, Some(day(13)));
        assert_eq!(p.path, vec!["a", "b"]);
        // a done early: everything after it moves forward.
        rows[0].status = "completed".parse().unwrap();
        rows[0].completed_at = Some(day(2));
        rows[1].status = "active".parse().unwrap();
        rows[1].target_at = Some(day(12));
        rows[2].status = "active".parse().unwrap();
        rows[2].target_at = Some(day(5));
        let p = project(&stage, &rows, day(1), &cal, &clocks, day(1));
        assert_eq!(
            (p.target, p.path.clone()),
            (Some(day(12)), vec!["a".into(), "b".into()])
        );
        // The optional task counts once it is activated.
        rows[4].status = "active".parse().unwrap();
        rows[4].target_at = Some(day(22));
        let p = project(&stage, &rows, day(1), &cal, &clocks, day(1));
        assert_eq!(
            (p.target, p.path),
            (Some(day(22)), vec!["a".into(), "e".into()])
        );
        // A hold until a date moves its task's end on by the days held.
        rows[4].status = "on_hold".parse().unwrap();
        rows[4].held_since = Some(day(10));
        rows[4].hold_until = Some(day(13));
        let p = project(&stage, &rows, day(1), &cal, &clocks, day(1));
        assert_eq!(p.target, Some(day(25)));
    }
}
