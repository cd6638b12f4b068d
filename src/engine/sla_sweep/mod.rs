//! The SLA sweep: each pass finds the stages and tasks whose next checkpoint is due and fires
//! each escalation once.
//!
//! Every open item carries `next_check_at`, the time of its next checkpoint. The sweep selects
//! due items through the partial index on that column, in batches, so its cost follows the work
//! that is due, not the work that is open. Each escalation is a row in `escalations` whose unique
//! key (item, level, repetition) makes it fire once, whatever passes repeat, overlap or die; its
//! events and outbox rows are written in the same transaction.
//!
//! Due items are fired a batch at a time (`batch`): read together, their rules run together,
//! written in one transaction (`write`); `firing` is what one firing decides, as values. If a
//! batch fails, its items are fired one at a time, so one bad item holds up none of the others.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::task::AbortOnDropHandle;

use super::deadlines::ItemKind;
use super::error::StepError;
use super::guard;
use crate::db::{Db, sql};
use crate::events::kinds;
use crate::rules::RuleSet;

mod batch;
mod firing;
mod write;

/// Stages whose next SLA checkpoint is due, through `stages_sla_due`.
pub const DUE_STAGE_CHECKPOINTS: &str = "SELECT next_check_at, id FROM stages WHERE next_check_at <= $1 ORDER BY next_check_at, id LIMIT $2";

/// Tasks whose next SLA checkpoint is due, through `tasks_sla_due`.
pub const DUE_TASK_CHECKPOINTS: &str = "SELECT next_check_at, id FROM tasks WHERE next_check_at <= $1 ORDER BY next_check_at, id LIMIT $2";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub escalations: u64,
    /// By level: amber, exceeded, follow-on.
    pub by_level: [u64; 3],
    pub notifications: u64,
    /// Firings whose escalation rule failed (a `rule_error` each; the owner was notified).
    pub rule_errors: u64,
}

/// Fires every checkpoint that is due at `now`, oldest first, in batches.
///
/// While a batch is written, the next is read and its rules run, where the database can read
/// beside a write (not on `plan`'s pinned connection, which does the same in turn). That next
/// batch leaves out the items being written, so what it reads is the same whether it reads
/// before or after they are committed: firing changes nothing else another item's firing reads,
/// except a reassignment, and a batch with one (or with a failure) is written before the next
/// is read.
pub async fn run_once(
    db: &Db,
    rules: &Arc<RuleSet>,
    now: DateTime<Utc>,
    batch: i64,
    budget: &super::budget::Budget,
) -> Result<Outcome, StepError> {
    let mut outcome = Outcome::default();
    let mut skipped = guard::Skipped::default();
    let mut ahead: Option<Ahead> = None;
    loop {
        let Ahead { due, ready } = match ahead.take() {
            Some(ahead) => ahead,
            None => match make_ready(db, rules, now, batch, &skipped, (&[], false)).await? {
                Some(ahead) => ahead,
                None => return Ok(outcome),
            },
        };
        if budget.spent() {
            return Ok(outcome);
        }
        let written = match ready {
            Ok(ready) => {
                let settled = ready.settled();
                let write = guard::catch(batch::write(db, rules, ready, now));
                let (written, next) = match (settled, db.reads_beside_writes()) {
                    (false, _) => (write.await, Ok(None)),
                    (true, true) => {
                        tokio::join!(write, read_ahead(db, rules, now, batch, &skipped, &due))
                    }
                    // One connection: the same next batch, read before this one is written.
                    (true, false) => {
                        let next = make_ready(db, rules, now, batch, &skipped, (&due, false));
                        let next = next.await;
                        (write.await, next)
                    }
                };
                written.map(|fired| (fired, next))
            }
            Err(error) => Err(error),
        };
        match written {
            Ok((fired, next)) => {
                tally(db, fired, &mut outcome, &mut skipped, now).await?;
                ahead = next?;
            }
            Err(error) => {
                tracing::warn!(items = due.len(), %error, "a batch of SLA checkpoints failed; its items are fired one at a time");
                for item in &due {
                    let fired =
                        guard::catch(batch::fire(db, rules, std::slice::from_ref(item), now))
                            .await
                            .unwrap_or_else(|error| batch::Fired::failure(item.0, item.1, error));
                    tally(db, fired, &mut outcome, &mut skipped, now).await?;
                }
            }
        }
    }
}

/// A batch of due items, read and its rules run (or why that failed).
struct Ahead {
    due: Vec<(ItemKind, i64)>,
    ready: Result<batch::Ready, String>,
}

/// The next batch, made ready beside the writing of `writing` on a task of its own, so that its
/// work runs beside the write's rather than between its statements.
async fn read_ahead(
    db: &Db,
    rules: &Arc<RuleSet>,
    now: DateTime<Utc>,
    batch: i64,
    skipped: &guard::Skipped,
    writing: &[(ItemKind, i64)],
) -> Result<Option<Ahead>, StepError> {
    let (db, rules) = (db.clone(), rules.clone());
    let (skipped, writing) = (skipped.clone(), writing.to_vec());
    let task = AbortOnDropHandle::new(tokio::spawn(async move {
        make_ready(&db, &rules, now, batch, &skipped, (&writing, true)).await
    }));
    task.await.unwrap_or_else(|e| {
        Err(StepError::Internal(format!(
            "reading the next batch of SLA checkpoints failed: {e}"
        )))
    })
}

/// The next batch of due items, leaving out those `skipped` and those of `writing` (the batch
/// being written, if any), made ready (`beside_write`: while that batch is written); `None` when
/// no other item is due.
async fn make_ready(
    db: &Db,
    rules: &Arc<RuleSet>,
    now: DateTime<Utc>,
    batch: i64,
    skipped: &guard::Skipped,
    (writing, beside_write): (&[(ItemKind, i64)], bool),
) -> Result<Option<Ahead>, StepError> {
    let due = due(db, now, batch, skipped, writing).await?;
    if due.is_empty() {
        return Ok(None);
    }
    let ready = guard::catch(batch::ready(db, rules, &due, now, beside_write)).await;
    Ok(Some(Ahead { due, ready }))
}

/// The oldest due items, at most `batch` tasks and `batch` stages, in the order they fall due,
/// leaving out those `skipped` and those of `writing`. The items being written come back from
/// the query or not depending on whether their batch has committed yet; asking for as many more
/// rows as there are of them makes the others the same either way.
async fn due(
    db: &Db,
    now: DateTime<Utc>,
    batch: i64,
    skipped: &guard::Skipped,
    writing: &[(ItemKind, i64)],
) -> Result<Vec<(ItemKind, i64)>, sqlx::Error> {
    let writing: HashSet<(ItemKind, i64)> = writing.iter().copied().collect();
    let mut due: Vec<(DateTime<Utc>, ItemKind, i64)> = Vec::new();
    for (kind, query) in [
        (ItemKind::Task, DUE_TASK_CHECKPOINTS),
        (ItemKind::Stage, DUE_STAGE_CHECKPOINTS),
    ] {
        let more = writing.iter().filter(|(k, _)| *k == kind).count();
        let found: Vec<(DateTime<Utc>, i64)> = sql(query)
            .bind(now)
            .bind(batch.saturating_add(more as i64))
            .fetch_all(db)
            .await?;
        due.extend(
            found
                .into_iter()
                .filter(|(_, id)| !writing.contains(&(kind, *id)))
                .take(usize::try_from(batch).unwrap_or(usize::MAX))
                .map(|(at, id)| (at, kind, id)),
        );
    }
    due.retain(|(_, kind, id)| !skipped.has(*kind as u8, *id));
    due.sort_by_key(|(at, kind, id)| (*at, *kind == ItemKind::Task, *id));
    Ok(due.into_iter().map(|(_, kind, id)| (kind, id)).collect())
}

/// Adds what a batch fired to the outcome, and counts each of its failures: the item is
/// skipped for the rest of the pass, and set aside once it has failed too often.
async fn tally(
    db: &Db,
    fired: batch::Fired,
    outcome: &mut Outcome,
    skipped: &mut guard::Skipped,
    now: DateTime<Utc>,
) -> Result<(), StepError> {
    outcome.escalations += fired.escalations;
    outcome.notifications += fired.notifications;
    outcome.rule_errors += fired.rule_errors;
    for (total, n) in outcome.by_level.iter_mut().zip(fired.by_level) {
        *total += n;
    }
    for (kind, id, error) in fired.failed {
        skipped.add(kind as u8, id);
        guard::count_failure(db, set_aside(kind, id), &error, now).await?;
    }
    Ok(())
}

/// An item whose checkpoint cannot be fired: after repeated failures its clock is no longer
/// checked (`next_check_at` cleared). A later change to the item (a hold and release, a
/// completion) takes it on again.
fn set_aside(kind: ItemKind, id: i64) -> guard::Aside {
    let (step, take_out, case_of) = match kind {
        ItemKind::Task => (
            kinds::Step::SlaTask,
            sql("UPDATE tasks SET next_check_at = NULL WHERE id = $1"),
            sql("SELECT case_id FROM tasks WHERE id = $1"),
        ),
        ItemKind::Stage => (
            kinds::Step::SlaStage,
            sql("UPDATE stages SET next_check_at = NULL WHERE id = $1"),
            sql("SELECT case_id FROM stages WHERE id = $1"),
        ),
    };
    guard::Aside {
        step,
        kind: kind.as_str(),
        id,
        consequence: "its SLA clock is no longer checked until the item changes".to_string(),
        take_out: take_out.bind(id),
        case_of: case_of.bind(id),
    }
}
