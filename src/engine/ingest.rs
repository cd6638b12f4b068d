//! The ingest step: pending inbox rows, oldest first, each applied in its own transaction and
//! then marked accepted, rejected (with the reason) or duplicate. Nothing is dropped: a command
//! that cannot even be parsed is rejected like any other.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::apply::{ApplyError, apply};
use super::{Db, StepError};
use crate::commands::{self, Envelope};
use crate::db::{Tx, sql};
use crate::events::{self, ENGINE};
use crate::rules::RuleSet;

/// The oldest pending command, through `inbox_pending`.
pub const NEXT_COMMAND: &str =
    "SELECT id, body, attempts FROM inbox WHERE status = 'pending' ORDER BY id LIMIT 1";

/// After this many database failures applying one command, it is rejected so the queue moves.
const MAX_ATTEMPTS: i64 = 3;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub accepted: u64,
    pub rejected: u64,
    pub duplicates: u64,
}

#[derive(sqlx::FromRow)]
struct Pending {
    id: i64,
    body: String,
    attempts: i64,
}

pub async fn run_once(
    db: &Db,
    rules: &Arc<RuleSet>,
    now: DateTime<Utc>,
    batch: i64,
) -> Result<Outcome, StepError> {
    let mut outcome = Outcome::default();
    for _ in 0..batch {
        let mut tx = db.begin().await?;
        tx.serialise(super::WRITER_LOCK).await?;
        let Some(row) = sql(NEXT_COMMAND).fetch_optional::<Pending>(&mut tx).await? else {
            break;
        };
        let envelope = match commands::parse(&row.body) {
            Ok(e) => e,
            Err(rejection) => {
                mark_rejected(&mut tx, row.id, None, None, &rejection.0, now).await?;
                tx.commit().await?;
                outcome.rejected += 1;
                continue;
            }
        };
        if let Some(id) = &envelope.command_id
            && let Some((first,)) =
                sql("SELECT inbox_id FROM processed_commands WHERE command_id = $1")
                    .bind(id)
                    .fetch_optional::<(i64,)>(&mut tx)
                    .await?
        {
            let reason = format!(
                "command_id {id:?} was already processed as inbox #{first}; this repeat has no effect"
            );
            mark(&mut tx, row.id, &envelope, "duplicate", Some(&reason), now).await?;
            tx.commit().await?;
            outcome.duplicates += 1;
            continue;
        }
        match apply(&mut tx, rules, &envelope.command, now).await {
            Ok(()) => {
                remember(&mut tx, &envelope, row.id).await?;
                mark(&mut tx, row.id, &envelope, "accepted", None, now).await?;
                tx.commit().await?;
                outcome.accepted += 1;
                tracing::info!(
                    inbox_id = row.id,
                    command = envelope.command.type_name(),
                    case_ref = envelope.command.case_ref(),
                    "command accepted"
                );
            }
            Err(ApplyError::Rejected(rejection)) => {
                drop(tx);
                let mut tx = db.begin().await?;
                tx.serialise(super::WRITER_LOCK).await?;
                mark_rejected(
                    &mut tx,
                    row.id,
                    Some(&envelope),
                    envelope.command.case_ref(),
                    &rejection.0,
                    now,
                )
                .await?;
                remember(&mut tx, &envelope, row.id).await?;
                tx.commit().await?;
                outcome.rejected += 1;
                tracing::info!(
                    inbox_id = row.id,
                    command = envelope.command.type_name(),
                    case_ref = envelope.command.case_ref(),
                    "command rejected (the reason is in the inbox)"
                );
            }
            Err(ApplyError::Db(e)) => {
                drop(tx);
                let attempts = row.attempts + 1;
                let mut tx = db.begin().await?;
                tx.serialise(super::WRITER_LOCK).await?;
                if attempts >= MAX_ATTEMPTS {
                    let reason = format!("could not be applied after {attempts} attempts: {e}");
                    mark_rejected(
                        &mut tx,
                        row.id,
                        Some(&envelope),
                        envelope.command.case_ref(),
                        &reason,
                        now,
                    )
                    .await?;
                } else {
                    sql("UPDATE inbox SET attempts = $1 WHERE id = $2")
                        .bind(attempts)
                        .bind(row.id)
                        .execute(&mut tx)
                        .await?;
                }
                tx.commit().await?;
                return Err(StepError::Db(e));
            }
        }
    }
    Ok(outcome)
}

async fn remember(tx: &mut Tx, envelope: &Envelope, inbox_id: i64) -> Result<(), sqlx::Error> {
    if let Some(id) = &envelope.command_id {
        sql("INSERT INTO processed_commands (command_id, inbox_id) VALUES ($1, $2)")
            .bind(id)
            .bind(inbox_id)
            .execute(tx)
            .await?;
    }
    Ok(())
}

async fn mark(
    tx: &mut Tx,
    inbox_id: i64,
    envelope: &Envelope,
    status: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sql("UPDATE inbox SET status = $1, reason = $2, processed_at = $3, command_id = $4, command_type = $5, case_ref = $6 WHERE id = $7")
        .bind(status)
        .bind(reason)
        .bind(now)
        .bind(envelope.command_id.as_deref())
        .bind(envelope.command.type_name())
        .bind(envelope.command.case_ref())
        .bind(inbox_id)
        .execute(tx)
        .await?;
    Ok(())
}

/// Marks a command rejected and writes `command_rejected`, on the case's log when the case exists.
async fn mark_rejected(
    tx: &mut Tx,
    inbox_id: i64,
    envelope: Option<&Envelope>,
    case_ref: Option<&str>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    match envelope {
        Some(e) => mark(tx, inbox_id, e, "rejected", Some(reason), now).await?,
        None => {
            sql("UPDATE inbox SET status = 'rejected', reason = $1, processed_at = $2 WHERE id = $3")
                .bind(reason)
                .bind(now)
                .bind(inbox_id)
                .execute(&mut *tx)
                .await?;
        }
    }
    let case = match case_ref {
        Some(r) => {
            sql("SELECT id FROM cases WHERE case_ref = $1")
                .bind(r)
                .fetch_optional::<(i64,)>(&mut *tx)
                .await?
        }
        None => None,
    };
    let data = json!({
        "inbox_id": inbox_id,
        "type": envelope.map(|e| e.command.type_name()),
        "command_id": envelope.and_then(|e| e.command_id.as_deref()),
        "case_ref": case_ref,
        "reason": reason,
    });
    let at = case.map(|(id,)| (id, case_ref.unwrap_or_default()));
    events::append(tx, at, now, "command_rejected", ENGINE, data).await?;
    Ok(())
}

/// Adds commands to the inbox, one per line of JSON; returns each new row's id. Blank lines are
/// skipped; every other line is stored as it is, to be accepted or rejected by the next pass,
/// except that NUL bytes (which PostgreSQL cannot store, and JSON never has raw) become the text
/// `\u0000`. A UTF-8 byte-order mark at the start (as some Windows tools write) is skipped: it
/// is not part of the first command.
pub async fn submit(db: &Db, lines: &str) -> Result<Vec<i64>, sqlx::Error> {
    let lines = lines.strip_prefix('\u{FEFF}').unwrap_or(lines);
    let mut ids = Vec::new();
    let mut tx = db.begin().await?;
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        let id: i64 = sql("INSERT INTO inbox (body, received_at) VALUES ($1, $2) RETURNING id")
            .bind(line.replace('\0', "\\u0000"))
            .bind(crate::clock::now())
            .scalar(&mut tx)
            .await?;
        ids.push(id);
    }
    tx.commit().await?;
    Ok(ids)
}
