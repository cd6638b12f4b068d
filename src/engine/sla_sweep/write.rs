//! The transaction that writes a batch of firings: a few multi-row statements for the whole
//! batch. Items another writer has fired or changed since the batch read them are left out (the
//! statements check each item's state); the unique key on `escalations` makes each escalation
//! fire once, and an item whose escalation exists already only has its clock moved on. Events are
//! written in the batch's order, each firing's `rule_error` before its SLA event; a reassignment
//! (rare) is applied where it falls, through `progress::change_owner`.
//!
//! A batch's notifications are addressed (`directory`, `address`) before its transaction, when
//! the batch is read, so that work runs beside the writing of the batch before it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::firing::{self, Decision, Due};
use crate::db::rows::{self, CaseRow};
use crate::db::{Db, Sql, Tx, rows_per_statement};
use crate::engine::deadlines::ItemKind;
use crate::engine::progress;
use crate::engine::recipients::{Directory, People, Wanted};
use crate::events::{self, ENGINE, Pending};
use crate::outbox::{self, Notification};
use crate::personal;
use crate::rules::RuleSet;
use crate::rules::escalation::Action;

/// A checkpoint to fire, with what its rule saw and decided.
pub(super) struct Decided {
    pub due: Due,
    pub people: People,
    pub facts: Value,
    pub decision: Decision,
}

/// A checkpoint to fire: what its rule decided, and the rows of each notification it asked for,
/// addressed (without their escalation, which is known once it is written).
pub(super) struct Firing {
    pub due: Due,
    pub decision: Decision,
    /// For each of the decision's actions in turn, its rows (none for a reassignment).
    pub mail: Vec<Vec<Notification>>,
}

/// Reads whom the notifications of a batch's firings name, with a query per sort of recipient
/// for the whole batch.
pub(super) async fn directory(db: &Db, decided: &[Decided]) -> Result<Directory, sqlx::Error> {
    let mut wanted = Wanted::default();
    for d in decided {
        for action in &d.decision.actions {
            if let Action::Notify { to, .. } = action {
                wanted.add(to, &d.people);
            }
        }
    }
    Directory::load(db, &wanted).await
}

/// Addresses a firing's notifications: one row per addressee, each with what the rule saw, less
/// what officers' notifications may not carry.
pub(super) fn address(
    directory: &Directory,
    case: &CaseRow,
    decided: Decided,
    now: DateTime<Utc>,
) -> Firing {
    let Decided {
        due,
        people,
        facts,
        decision,
    } = decided;
    // The last notification's rows take the facts; the others copy them.
    let last = decision
        .actions
        .iter()
        .rposition(|a| matches!(a, Action::Notify { .. }));
    let mut facts = personal::minimise(Some(&due.def), case.property_address.as_deref(), facts);
    let mail = decision
        .actions
        .iter()
        .enumerate()
        .map(|(i, action)| match action {
            Action::Notify { to, template } => {
                let addressees = directory.resolve(to, &people);
                let facts = match Some(i) == last {
                    true => std::mem::take(&mut facts),
                    false => facts.clone(),
                };
                outbox::notifications_from(case.id, None, template, &addressees, facts, now)
            }
            Action::Reassign { .. } => Vec::new(),
        })
        .collect();
    Firing {
        due,
        decision,
        mail,
    }
}

/// An item with nothing to fire now, whose next check moves to `at` (none: never) unless
/// another writer has moved it from `was` since.
pub(super) struct Recheck {
    pub kind: ItemKind,
    pub id: i64,
    pub was: Option<DateTime<Utc>>,
    pub at: Option<DateTime<Utc>>,
}

/// Writes the batch in one transaction. Returns each firing that fired, in order, with the
/// notifications it wrote and whether its rule failed.
pub(super) async fn write(
    db: &Db,
    rules: &RuleSet,
    cases: &HashMap<i64, CaseRow>,
    rechecks: Vec<Recheck>,
    firings: Vec<Firing>,
    now: DateTime<Utc>,
) -> Result<Vec<(Due, u64, bool)>, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    reschedule(&mut tx, &rechecks).await?;
    let escalations = insert_escalations(&mut tx, &firings, now).await?;
    advance_clocks(&mut tx, rules, &firings).await?;
    let firings: Vec<(Firing, i64)> = firings
        .into_iter()
        .filter_map(|f| {
            let id = escalations.get(&(f.due.kind, f.due.item.id))?;
            Some((f, *id))
        })
        .collect();
    let mut batch = Written::default();
    let mut fired = Vec::with_capacity(firings.len());
    for (firing, escalation_id) in firings {
        let case = &cases[&firing.due.item.case_id];
        let rule_failed = firing.decision.error.is_some();
        let (due, notifications) =
            act(&mut tx, case, firing, escalation_id, &mut batch, now).await?;
        fired.push((due, notifications, rule_failed));
    }
    batch.flush(&mut tx).await?;
    tx.commit().await?;
    Ok(fired)
}

/// Events and notifications waiting to be written together.
#[derive(Default)]
struct Written<'c> {
    events: Vec<Pending<'c>>,
    mail: Vec<Notification>,
}

impl Written<'_> {
    async fn flush(&mut self, tx: &mut Tx) -> Result<(), sqlx::Error> {
        events::record_all(tx, &self.events).await?;
        outbox::insert(tx, std::mem::take(&mut self.mail)).await?;
        self.events.clear();
        Ok(())
    }
}

/// What a fired checkpoint writes: the `rule_error` of a rule that failed, each action (a
/// notification per addressee; a reassignment), and the checkpoint's SLA event.
async fn act<'c>(
    tx: &mut Tx,
    case: &'c CaseRow,
    firing: Firing,
    escalation_id: i64,
    batch: &mut Written<'c>,
    now: DateTime<Utc>,
) -> Result<(Due, u64), sqlx::Error> {
    let Firing {
        due,
        decision,
        mail,
    } = firing;
    let at = case.event_target();
    let pending = |event| Pending {
        case: at,
        at: now,
        actor: ENGINE,
        event,
    };
    if let Some(failed) = firing::rule_error(&decision, due.cp.level) {
        batch.events.push(pending(failed));
    }
    let mut written = 0;
    let mut done = Vec::new();
    for (action, rows) in decision.actions.iter().zip(mail) {
        match action {
            Action::Notify { to, template } => {
                written += rows.len() as u64;
                done.push(json!({"action": "notify", "template": template, "to": to, "addressees": rows.len()}));
                batch
                    .mail
                    .extend(rows.into_iter().map(|n| n.of_escalation(escalation_id)));
            }
            Action::Reassign { to } => {
                // The owner's change and its event fall between what was written before and after.
                batch.flush(tx).await?;
                if rows::user_exists(&mut *tx, to, true).await? && case.owner.as_deref() != Some(to)
                {
                    let why = Some(format!("{} escalation", due.cp.level.as_str()));
                    progress::change_owner(tx, case, to, why, ENGINE, now).await?;
                    done.push(json!({"action": "reassign", "to": to}));
                } else {
                    done.push(json!({"action": "reassign", "to": to, "skipped": "not an active user, or already the owner"}));
                }
            }
        }
    }
    batch
        .events
        .push(pending(firing::reached(&due, decision, done)));
    Ok((due, written))
}

/// The table of an item kind.
fn table(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::Task => "tasks",
        ItemKind::Stage => "stages",
    }
}

/// Inserts the escalation of each firing whose item is still as the batch read it (same state,
/// same follow-ons): another writer may have fired or changed it since. Returns the ids of those
/// inserted, by item. One that exists already (fired by a pass that died after committing it)
/// is left as it is.
async fn insert_escalations(
    tx: &mut Tx,
    firings: &[Firing],
    now: DateTime<Utc>,
) -> Result<HashMap<(ItemKind, i64), i64>, sqlx::Error> {
    let mut inserted = HashMap::new();
    for kind in [ItemKind::Task, ItemKind::Stage] {
        let of_kind: Vec<&Firing> = firings.iter().filter(|f| f.due.kind == kind).collect();
        for chunk in of_kind.chunks(rows_per_statement(8)) {
            let mut insert = Sql::sized(|marks| {
                format!(
                    "WITH v (ord, id, level, repetition, case_id, fired_at, was_state, was_follow_ons) AS (VALUES {}) \
                     INSERT INTO escalations (item_kind, item_id, level, repetition, case_id, fired_at) \
                     SELECT '{kind}', v.id, v.level, v.repetition, v.case_id, v.fired_at FROM v JOIN {table} i ON i.id = v.id \
                     WHERE i.sla_state = v.was_state AND i.follow_ons = v.was_follow_ons ORDER BY v.ord \
                     ON CONFLICT (item_kind, item_id, level, repetition) DO NOTHING RETURNING item_id, id",
                    marks.values(chunk.len(), 8, 1),
                    kind = kind.as_str(),
                    table = table(kind)
                )
            });
            for (ord, f) in chunk.iter().enumerate() {
                let (item, cp) = (&f.due.item, &f.due.cp);
                insert = insert
                    .bind(ord as i64)
                    .bind(item.id)
                    .bind(cp.level.as_str())
                    .bind(i64::from(cp.repetition))
                    .bind(item.case_id)
                    .bind(now)
                    .bind(item.sla_state)
                    .bind(item.follow_ons);
            }
            let rows: Vec<(i64, i64)> = insert.fetch_all(&mut *tx).await?;
            inserted.extend(rows.into_iter().map(|(item_id, id)| ((kind, item_id), id)));
        }
    }
    Ok(inserted)
}

/// Moves each item's SLA state on past the checkpoint that fires and schedules its next one,
/// where the item is still as the batch read it.
async fn advance_clocks(
    tx: &mut Tx,
    rules: &RuleSet,
    firings: &[Firing],
) -> Result<(), sqlx::Error> {
    for kind in [ItemKind::Task, ItemKind::Stage] {
        let of_kind: Vec<&Firing> = firings.iter().filter(|f| f.due.kind == kind).collect();
        for chunk in of_kind.chunks(rows_per_statement(6)) {
            let mut update = Sql::sized(|marks| {
                format!(
                    "WITH v (id, sla_state, follow_ons, next_check_at, was_state, was_follow_ons) AS (VALUES {}) \
                     UPDATE {table} SET sla_state = v.sla_state, follow_ons = v.follow_ons, next_check_at = v.next_check_at \
                     FROM v WHERE {table}.id = v.id AND {table}.sla_state = v.was_state AND {table}.follow_ons = v.was_follow_ons",
                    marks.values(chunk.len(), 6, 1),
                    table = table(kind)
                )
            });
            for f in chunk {
                let (item, cal) = (&f.due.item, rules.calendar(&f.due.def));
                let (state, follow_ons, next) = f.due.clock_after(cal);
                update = update
                    .bind(item.id)
                    .bind(state)
                    .bind(follow_ons)
                    .bind(next)
                    .bind(item.sla_state)
                    .bind(item.follow_ons);
            }
            update.execute(&mut *tx).await?;
        }
    }
    Ok(())
}

/// Moves the next check of items with nothing to fire, where no other writer has moved it.
async fn reschedule(tx: &mut Tx, rechecks: &[Recheck]) -> Result<(), sqlx::Error> {
    for kind in [ItemKind::Task, ItemKind::Stage] {
        let of_kind: Vec<&Recheck> = rechecks.iter().filter(|r| r.kind == kind).collect();
        for chunk in of_kind.chunks(rows_per_statement(3)) {
            let mut update = Sql::sized(|marks| {
                format!(
                    "WITH v (id, next_check_at, was) AS (VALUES {}) \
                     UPDATE {table} SET next_check_at = v.next_check_at \
                     FROM v WHERE {table}.id = v.id AND {table}.next_check_at = v.was",
                    marks.values(chunk.len(), 3, 1),
                    table = table(kind)
                )
            });
            for r in chunk {
                update = update.bind(r.id).bind(r.at).bind(r.was);
            }
            update.execute(&mut *tx).await?;
        }
    }
    Ok(())
}
