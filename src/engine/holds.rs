//! Held tasks: the step that releases tasks whose release date has come, found by index.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::error::StepError;
use crate::db::Db;
use crate::db::rows::{self, CaseRow, TaskRow};
use crate::db::{Tx, sql};
use crate::events::kinds::{self, Kind};
use crate::events::{self, ENGINE};
use crate::rules::RuleSet;

/// Held tasks whose release date has come, through `tasks_hold_due`.
pub const DUE_RELEASES: &str = "SELECT id FROM tasks WHERE status = 'on_hold' AND hold_until <= $1 ORDER BY hold_until, id LIMIT $2";

/// Who releases a held task. A type, not the event's actor, decides what follows a release:
/// actors come from outside (a user's ref, an API client's name), and one that happened to read
/// `casewarden` must not make a command's release look like the daemon's.
#[derive(Debug, Clone, Copy)]
pub enum Releaser<'a> {
    /// The daemon, because the release date has come.
    Date,
    /// A `release_task` command, on behalf of this actor.
    Command(&'a str),
}

/// Releases a held task: active again, with the time held added to its tally and its SLA dates
/// moved on by the working days held. The owner is told when the daemon releases it.
pub async fn release(
    tx: &mut Tx,
    rules: &RuleSet,
    case: &CaseRow,
    task: &TaskRow,
    by: Releaser<'_>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let (why, actor) = match by {
        Releaser::Date => ("release date reached", ENGINE),
        Releaser::Command(actor) => ("released early", actor),
    };
    let held = task
        .held_since
        .map_or(0, |since| (now - since).num_seconds().max(0));
    let (stage,): (String,) = sql("SELECT stage FROM stages WHERE id = $1")
        .bind(task.stage_id)
        .fetch_one(&mut *tx)
        .await?;
    sql("UPDATE tasks SET status = 'active', hold_until = NULL, hold_reason = NULL, held_since = NULL, \
         held_seconds = held_seconds + $1 WHERE id = $2 AND status = 'on_hold'")
        .bind(held)
        .bind(task.id)
        .execute(&mut *tx)
        .await?;
    let moved = match task.held_since {
        Some(since) => super::deadlines::resume_task_clock(tx, rules, task.id, since, now).await?,
        None => None,
    };
    let released = kinds::TaskReleased {
        stage: stage.clone(),
        task: task.task.clone(),
        reason: why.into(),
        held_seconds: held,
        sla_moved_working_days: moved.map(i64::from),
        owner: task.owner.clone(),
    };
    let data = json!(released);
    events::record(
        tx,
        case.event_target(),
        now,
        actor,
        Kind::TaskReleased(released),
    )
    .await?;
    if let Releaser::Date = by {
        let people = super::recipients::People {
            task_owner: task.owner.clone(),
            ..Default::default()
        };
        let to = super::recipients::resolve(
            tx,
            &[crate::rules::escalation::Recipient::TaskOwner],
            &people,
        )
        .await?;
        let definition = rules.definition(&case.definition_id);
        let facts = json!({"case": case.facts(definition.map(|d| &**d)).to_value(),
            "stage": {"key": stage}, "task": {"key": task.task, "owner": task.owner}, "release": data});
        let facts = crate::personal::minimise(
            definition.map(|d| &**d),
            case.property_address.as_deref(),
            facts,
        );
        crate::outbox::enqueue(tx, case.id, None, "task_released", &to, &facts, now).await?;
        super::case_target::refresh(tx, rules, case, "release date reached", now).await?;
    }
    Ok(())
}

/// Releases every task whose release date is due, in batches of `batch`, each in its own
/// transaction. A task that cannot be released is skipped for the pass; after repeated failures
/// its release date is cleared (it stays held until the CRM releases it), with an event.
pub async fn run_once(
    db: &Db,
    rules: &RuleSet,
    now: DateTime<Utc>,
    batch: i64,
    budget: &super::budget::Budget,
) -> Result<u64, StepError> {
    let mut released = 0;
    let mut skipped = super::guard::Skipped::default();
    loop {
        let mut due: Vec<(i64,)> = sql(DUE_RELEASES)
            .bind(now)
            .bind(batch)
            .fetch_all(db)
            .await?;
        due.retain(|(id,)| !skipped.has(0, *id));
        if due.is_empty() || budget.spent() {
            return Ok(released);
        }
        for (id,) in due {
            match super::guard::catch(release_due(db, rules, id, now)).await {
                Ok(done) => released += u64::from(done),
                Err(error) => {
                    skipped.add(0, id);
                    super::guard::count_failure(db, set_aside(id), &error, now).await?;
                }
            }
        }
    }
}

async fn release_due(
    db: &Db,
    rules: &RuleSet,
    id: i64,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let task = rows::task_by_id(&mut tx, id).await?;
    if task.status != crate::states::TaskStatus::OnHold {
        // Another writer released it since we looked.
        return Ok(false);
    }
    let case = rows::case_by_id(&mut tx, task.case_id).await?;
    release(&mut tx, rules, &case, &task, Releaser::Date, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// A task that cannot be released keeps its hold but loses its release date after repeated
/// failures: it stays on hold until the CRM releases it.
fn set_aside(id: i64) -> super::guard::Aside {
    super::guard::Aside {
        step: crate::events::kinds::Step::HoldRelease,
        kind: "task",
        id,
        consequence: "the task stays on hold until the CRM releases it".to_string(),
        take_out: sql("UPDATE tasks SET hold_until = NULL WHERE id = $1 AND status = 'on_hold'")
            .bind(id),
        case_of: sql("SELECT case_id FROM tasks WHERE id = $1").bind(id),
    }
}
