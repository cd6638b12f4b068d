//! Moving open clocks after a case's facts change (`update_case`): every open stage and task
//! whose target depends on a fact that changed (a `target_by` fact, or an expression) gets the
//! target its clock would have had under the new facts, counted from the same start.
//!
//! What the move does to the clock's escalations:
//! - An escalation already fired stays fired: its row in `escalations` stays, so the same level
//!   and repetition never fires again, whatever the new dates say.
//! - A target moved later re-arms the checkpoints still to come: the item's state goes back to
//!   what the new dates give at the time of the change (never further on than it was), and its
//!   next check is the next checkpoint of that state.
//! - A target moved earlier keeps the item's state and schedules its next checkpoint from the
//!   new dates; a checkpoint now in the past fires at the next pass, and the ones after it in
//!   the same pass if they are due too.
//!
//! Time a task has been held before moves the new target on by the same working days, as it
//! moved the old one; a task's target is capped at its stage's, as when its clock started.

use super::deadlines::{self, ItemKind};
use crate::clock::london_date;
use crate::db::rows::{self, CaseRow};
use crate::db::{Tx, sql};
use crate::definitions::{ClockFrom, Definition, Period, Sla, Target};
use crate::events::kinds::{self, Kind, MovedTarget};
use crate::events::{self, ENGINE};
use crate::rules::RuleSet;
use crate::rules::target::{evaluate, fact};
use crate::sla::Calendar;
use crate::sla::checkpoint::{self, Dates};
use crate::states::{SlaState, StageStatus, TaskStatus};
use chrono::{DateTime, Utc};

/// One open clock: where it starts and what it has now.
struct Clock<'a> {
    kind: ItemKind,
    id: i64,
    stage: &'a str,
    key: &'a str,
    sla: &'a Sla,
    start: DateTime<Utc>,
    /// A held task's clock stands still until it is released.
    stopped: bool,
}

/// Moves every open clock of `after` (the case with its new facts) whose target differs from
/// the one `before` gave it. Returns the moves, stages first, in stage and task order.
pub async fn retarget(
    tx: &mut Tx,
    rules: &RuleSet,
    def: &Definition,
    (before, after): (&CaseRow, &CaseRow),
    now: DateTime<Utc>,
) -> Result<Vec<MovedTarget>, sqlx::Error> {
    let cal = rules.calendar(def);
    let mut moved = Vec::new();
    let stages = rows::stages_of(&mut *tx, after.id).await?;
    for row in stages.iter().filter(|s| s.status == StageStatus::Open) {
        let Some(stage) = def.stage(&row.stage) else {
            continue;
        };
        let start = match stage.sla.from {
            ClockFrom::CaseReceived => after.received_at,
            _ => row.entered_at,
        };
        let clock = Clock {
            kind: ItemKind::Stage,
            id: row.id,
            stage: &row.stage,
            key: &row.stage,
            sla: &stage.sla,
            start,
            stopped: false,
        };
        let stage_move =
            match periods_of(tx, rules, &stage.sla, (before, after), &row.stage, now).await? {
                Some(periods) if periods.0 != periods.1 => {
                    move_clock(tx, cal, &clock, periods, None, now).await?
                }
                _ => None,
            };
        let stage_target = stage_move.as_ref().map_or(row.target_at, |m| m.to);
        let stage_moved = stage_move.is_some();
        moved.extend(stage_move);
        let tasks = rows::tasks_of_stage(&mut *tx, row.id).await?;
        for task in tasks
            .iter()
            .filter(|t| matches!(t.status, TaskStatus::Active | TaskStatus::OnHold))
        {
            let Some(tdef) = stage.task(&task.task) else {
                continue;
            };
            let start = task_start(tx, tdef, task, row, after).await?;
            let Some(periods) =
                periods_of(tx, rules, &tdef.sla, (before, after), &task.task, now).await?
            else {
                continue;
            };
            // A task capped at its stage's old target, or over its new one, follows the stage.
            let capped_over = stage_moved
                && task.target_at.is_some_and(|t| {
                    Some(t) == row.target_at || stage_target.is_some_and(|limit| t > limit)
                });
            if periods.0 == periods.1 && !capped_over {
                continue;
            }
            let clock = Clock {
                kind: ItemKind::Task,
                id: task.id,
                stage: &row.stage,
                key: &task.task,
                sla: &tdef.sla,
                start,
                stopped: task.status == TaskStatus::OnHold && tdef.sla.pausable,
            };
            let limit = stage_target.map(|l| (l, after));
            moved.extend(move_clock(tx, cal, &clock, periods, limit, now).await?);
        }
    }
    Ok(moved)
}

/// Where a task's clock counts from: a duty's task from the duty's recorded start, where the
/// case has one (see `duty_clock`); any other from what its definition says.
async fn task_start(
    tx: &mut Tx,
    tdef: &crate::definitions::Task,
    task: &crate::db::rows::TaskRow,
    stage: &crate::db::rows::StageRow,
    case: &CaseRow,
) -> Result<DateTime<Utc>, sqlx::Error> {
    if let Some(duty) = &tdef.duty
        && let Some(start) = super::duty_clock::start_of(tx, case.id, duty).await?
    {
        return Ok(start);
    }
    Ok(match tdef.sla.from {
        ClockFrom::Start => task.activated_at.unwrap_or(stage.entered_at),
        ClockFrom::StageEntered => stage.entered_at,
        ClockFrom::CaseReceived => case.received_at,
    })
}

/// A clock's period under the old facts and under the new ones, as its clock would set it
/// (`None`: no target applies). `None` altogether when a target expression fails under the new
/// facts: a `rule_error` says so and the clock is left as it was.
async fn periods_of(
    tx: &mut Tx,
    rules: &RuleSet,
    sla: &Sla,
    (before, after): (&CaseRow, &CaseRow),
    item: &str,
    now: DateTime<Utc>,
) -> Result<Option<(Option<Period>, Option<Period>)>, sqlx::Error> {
    let Some(target) = &sla.target else {
        return Ok(Some((None, None)));
    };
    let Target::Expr { source, ast } = target else {
        return Ok(Some((
            target.period(fact(before)),
            target.period(fact(after)),
        )));
    };
    match evaluate(&rules.sandbox, ast, after) {
        Ok(new) => Ok(Some((
            evaluate(&rules.sandbox, ast, before).ok().flatten(),
            new,
        ))),
        Err(message) => {
            let failed = kinds::RuleError::target_expr(
                item,
                source,
                message,
                "the item's SLA clock was left as it was when the case's facts changed",
            );
            events::record(tx, after.event_target(), now, ENGINE, failed).await?;
            Ok(None)
        }
    }
}

/// Writes a clock's new dates and state; `None` when its dates stay as they are. `limit` is its
/// stage's target (and the case, for the `sla_capped` event), for a task.
async fn move_clock(
    tx: &mut Tx,
    cal: &Calendar,
    clock: &Clock<'_>,
    (old, new): (Option<Period>, Option<Period>),
    limit: Option<(DateTime<Utc>, &CaseRow)>,
    now: DateTime<Utc>,
) -> Result<Option<MovedTarget>, sqlx::Error> {
    let Some(item) = deadlines::load(&mut *tx, clock.kind, clock.id).await? else {
        return Ok(None);
    };
    let own = new.map(|p| own_dates(cal, clock, (old, p), item.target_at));
    let capped_at = match (own, limit) {
        (Some(d), Some((limit, _))) if d.target > limit => Some(limit),
        _ => None,
    };
    let dates = own.map(|d| capped_at.map_or(d, |limit| d.capped(limit)));
    if dates.map(|d| (d.target, d.amber)) == item.target_at.map(|t| (t, item.amber_at)) {
        return Ok(None);
    }
    if let (Some(stage_target), Some(d), Some((_, case))) = (capped_at, own, limit) {
        let capped = Kind::SlaCapped(kinds::SlaCapped {
            task: clock.key.to_string(),
            own_target: d.target,
            stage_target,
            reason: "a task's target never ends after its stage's".into(),
        });
        events::record(tx, case.event_target(), now, ENGINE, capped).await?;
    }
    let (state, follow_ons, next) = match dates {
        None => (SlaState::None, 0, None),
        Some(d) => {
            let state = earlier_state(item.sla_state, state_at(d, now));
            let follow_ons = if state == SlaState::Exceeded {
                item.follow_ons
            } else {
                0
            };
            let next = checkpoint::next(cal, clock.sla, state.as_str(), follow_ons as u32, d)
                .map(|c| c.at)
                .filter(|_| !clock.stopped);
            (state, follow_ons, next)
        }
    };
    let table = match clock.kind {
        ItemKind::Task => {
            "UPDATE tasks SET target_at = $1, amber_at = $2, target_day = $3, sla_state = $4, follow_ons = $5, next_check_at = $6 WHERE id = $7"
        }
        ItemKind::Stage => {
            "UPDATE stages SET target_at = $1, amber_at = $2, target_day = $3, sla_state = $4, follow_ons = $5, next_check_at = $6 WHERE id = $7"
        }
    };
    sql(table)
        .bind(dates.map(|d| d.target))
        .bind(dates.and_then(|d| d.amber))
        .bind(dates.map(|d| london_date(d.target)))
        .bind(state.as_str())
        .bind(follow_ons)
        .bind(next)
        .bind(clock.id)
        .execute(&mut *tx)
        .await?;
    Ok(Some(MovedTarget {
        item: clock.kind.as_str().to_string(),
        stage: clock.stage.to_string(),
        task: (clock.kind == ItemKind::Task).then(|| clock.key.to_string()),
        from: item.target_at,
        to: dates.map(|d| d.target),
        sla_state: state,
    }))
}

/// A clock's dates for its new period, counted from its start, moved on by the working days
/// earlier holds added to its old target (a task's).
fn own_dates(
    cal: &Calendar,
    clock: &Clock<'_>,
    (old, new): (Option<Period>, Period),
    stored: Option<DateTime<Utc>>,
) -> Dates {
    let fresh = Dates::start(cal, clock.start, new, clock.sla.amber);
    let held = match (old, stored) {
        (Some(o), Some(stored)) if clock.kind == ItemKind::Task => {
            let was = Dates::start(cal, clock.start, o, clock.sla.amber).target;
            u32::try_from(cal.working_days_between(london_date(was), london_date(stored)))
                .unwrap_or(0)
        }
        _ => 0,
    };
    fresh.shifted(cal, held)
}

/// The state a clock with these dates is in at `now`.
fn state_at(dates: Dates, now: DateTime<Utc>) -> SlaState {
    if now >= dates.target {
        SlaState::Exceeded
    } else if dates.amber.is_some_and(|a| now >= a) {
        SlaState::Amber
    } else {
        SlaState::OnTrack
    }
}

/// The state after a move: never further on than the clock had got (what is now due fires at
/// the next pass), and back to what the new dates say where they put it behind. A clock that
/// had no target starts on track.
fn earlier_state(current: SlaState, by_dates: SlaState) -> SlaState {
    let rank = |s: SlaState| match s {
        SlaState::OnTrack | SlaState::None | SlaState::Stopped => 0,
        SlaState::Amber => 1,
        SlaState::Exceeded => 2,
    };
    match current {
        SlaState::None | SlaState::Stopped => SlaState::OnTrack,
        _ if rank(by_dates) < rank(current) => by_dates,
        _ => current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_never_takes_a_clock_further_on_than_it_had_got_but_takes_it_back() {
        use SlaState::{Amber, Exceeded, OnTrack};
        // Moved earlier: what is now due fires at the next pass, from the state it had.
        assert_eq!(earlier_state(OnTrack, Exceeded), OnTrack);
        assert_eq!(earlier_state(Amber, Exceeded), Amber);
        // Moved later: back to what the new dates give.
        assert_eq!(earlier_state(Exceeded, OnTrack), OnTrack);
        assert_eq!(earlier_state(Exceeded, Amber), Amber);
        assert_eq!(earlier_state(Amber, Amber), Amber);
        // A clock that had no target starts on track.
        assert_eq!(earlier_state(SlaState::None, Exceeded), OnTrack);
    }
}
