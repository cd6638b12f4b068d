//! The ingest step: pending inbox rows, oldest first, each applied in its own transaction and
//! then marked accepted, rejected (with the reason) or duplicate. Nothing is dropped, and nothing
//! stops the queue for long:
//!
//! - a body that is not UTF-8 JSON text, or is over the size limit, is rejected like any other
//!   malformed command (a large body is cut down to a prefix, with its size and SHA-256 kept in
//!   the reason);
//! - a command that fails for a reason of the engine's own (a database error, a defect) is tried
//!   in [`MAX_ATTEMPTS`] passes and then set aside as rejected, with the reason. Until then the
//!   step stops at it, so commands keep their order, and the other steps of the pass still run.
//!
//! Every change is conditional on the row still being pending, so two instances sharing a
//! PostgreSQL database never both decide the same command. A decided row keeps the range of the
//! events its decision wrote ([`event_range`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use sha2::{Digest, Sha256};

use super::apply::{ApplyError, CRM, apply};
use super::budget::Budget;
use super::error::StepError;
use super::event_range;
use super::guard;
use crate::clock::Now;
use crate::commands::{self, Envelope, Rejection};
use crate::db::Db;
use crate::db::{Tx, sql, sql2};
use crate::events::kinds::{self, Kind};
use crate::events::{self, ENGINE};
use crate::rules::RuleSet;
use crate::text;

pub use super::queue::{SubmitError, submit};

/// The oldest pending command, and the API client that submitted it, through `inbox_pending`.
pub const NEXT_COMMAND: &str =
    "SELECT id, attempts, client FROM inbox WHERE status = 'pending' ORDER BY id LIMIT 1";

/// Passes in which a command may fail for a reason of the engine's own before it is set aside.
pub const MAX_ATTEMPTS: i64 = 3;

/// The longest reason stored in the inbox, and in a `command_rejected` event.
const MAX_REASON_CHARS: usize = 2000;
const MAX_EVENT_REASON_CHARS: usize = 500;

/// What is kept of a body over the size limit.
const KEPT_PREFIX_BYTES: usize = 1024;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub accepted: u64,
    pub rejected: u64,
    pub duplicates: u64,
}

/// How one row ended.
enum Decided {
    Accepted,
    Rejected,
    Duplicate,
    /// Another instance decided it first.
    Gone,
}

/// Decides pending commands in order, batch after batch, until none is left or the step's
/// budget is spent.
pub async fn run_once(
    db: &Db,
    rules: &Arc<RuleSet>,
    clock: Now,
    batch: i64,
    max_bytes: usize,
    budget: &Budget,
) -> Result<Outcome, StepError> {
    let mut outcome = Outcome::default();
    loop {
        let taken = one_batch(db, rules, clock, batch, max_bytes, &mut outcome).await?;
        if taken < batch || budget.spent() {
            return Ok(outcome);
        }
    }
}

/// Decides up to `batch` pending commands; returns how many it took.
async fn one_batch(
    db: &Db,
    rules: &Arc<RuleSet>,
    clock: Now,
    batch: i64,
    max_bytes: usize,
    outcome: &mut Outcome,
) -> Result<i64, StepError> {
    let mut taken = 0;
    for _ in 0..batch {
        let mut tx = db.begin_write().await?;
        let Some((id, attempts, client)) = sql(NEXT_COMMAND)
            .fetch_optional::<(i64, i64, Option<String>)>(&mut tx)
            .await?
        else {
            break;
        };
        taken += 1;
        let source = client.as_deref().unwrap_or(CRM);
        let decided = std::panic::AssertUnwindSafe(Box::pin(decide(
            &mut tx, rules, clock, id, source, max_bytes,
        )))
        .catch_unwind()
        .await;
        let failure = match decided {
            Ok(Ok(decided)) => match tx.commit().await {
                Ok(()) => {
                    match decided {
                        Decided::Accepted => outcome.accepted += 1,
                        Decided::Rejected => outcome.rejected += 1,
                        Decided::Duplicate => outcome.duplicates += 1,
                        Decided::Gone => {}
                    }
                    continue;
                }
                Err(e) => Failure::Db(e),
            },
            Ok(Err(e)) => {
                drop(tx);
                Failure::Db(e)
            }
            Err(panic) => {
                drop(tx);
                Failure::Panic(guard::panic_message(&panic))
            }
        };
        let now = clock.get();
        match failure {
            Failure::Panic(message) => {
                // A defect, not a passing fault: trying again would fail again.
                tracing::error!(inbox_id = id, panic = %message, "the engine failed on a command; it is set aside");
                let reason = format!(
                    "casewarden failed on this command (internal error: {message}); it was set aside so the queue moves on: please report it"
                );
                set_aside(db, id, &reason, now).await?;
                outcome.rejected += 1;
            }
            Failure::Db(e) => {
                let attempts = attempts + 1;
                if attempts >= MAX_ATTEMPTS {
                    tracing::error!(inbox_id = id, attempts, error = %e, "command set aside after repeated failures");
                    let reason = format!(
                        "could not be applied in {attempts} passes, each failing with a database error; set aside so the queue moves on. Last error: {e}"
                    );
                    set_aside(db, id, &reason, now).await?;
                    outcome.rejected += 1;
                } else {
                    let mut tx = db.begin_write().await?;
                    sql("UPDATE inbox SET attempts = $1 WHERE id = $2 AND status = 'pending'")
                        .bind(attempts)
                        .bind(id)
                        .execute(&mut tx)
                        .await?;
                    tx.commit().await?;
                    // Commands keep their order: the rest wait for the next pass.
                    return Err(StepError::Db(e));
                }
            }
        }
    }
    Ok(taken)
}

enum Failure {
    Db(sqlx::Error),
    Panic(String),
}

/// Decides one pending row inside `tx`, on behalf of `source` (see [`apply`]), and records on it
/// the range of events that wrote.
async fn decide(
    tx: &mut Tx,
    rules: &RuleSet,
    clock: Now,
    id: i64,
    source: &str,
    max_bytes: usize,
) -> Result<Decided, sqlx::Error> {
    let before = event_range::newest(tx).await?;
    let decided = read_and_apply(tx, rules, clock, id, source, max_bytes).await?;
    if !matches!(decided, Decided::Gone) {
        event_range::record(tx, id, before).await?;
    }
    Ok(decided)
}

/// Reads, parses and applies one pending row, all inside `tx`.
async fn read_and_apply(
    tx: &mut Tx,
    rules: &RuleSet,
    clock: Now,
    id: i64,
    source: &str,
    max_bytes: usize,
) -> Result<Decided, sqlx::Error> {
    let body = match read_body(tx, id, max_bytes).await? {
        Ok(body) => body,
        Err(rejection) => {
            let now = clock.get();
            return rejected(tx, id, None, &rejection, now).await;
        }
    };
    let envelope = match commands::parse_with_limit(&body, max_bytes) {
        Ok(e) => e,
        Err(rejection) => {
            let now = clock.get();
            return rejected(tx, id, None, &rejection, now).await;
        }
    };
    let now = match clock {
        Now::At(t) => t,
        Now::Live => live_now(tx, &envelope).await?,
    };
    if let Some(command_id) = &envelope.command_id
        && let Some((first,)) = sql("SELECT inbox_id FROM processed_commands WHERE command_id = $1")
            .bind(command_id)
            .fetch_optional::<(i64,)>(&mut *tx)
            .await?
    {
        let reason = format!(
            "command_id {} was already processed as inbox #{first}; this repeat has no effect",
            text::quote(command_id)
        );
        return Ok(
            match mark(tx, id, &envelope, "duplicate", Some(&reason), now).await? {
                true => Decided::Duplicate,
                false => Decided::Gone,
            },
        );
    }
    // A rejected command leaves nothing behind: its changes go back to the savepoint, and the
    // rejection is recorded in the same transaction, so no other writer comes between.
    sql("SAVEPOINT command").execute(&mut *tx).await?;
    match apply(tx, rules, &envelope.command, now, source).await {
        Ok(()) => {
            sql("RELEASE SAVEPOINT command").execute(&mut *tx).await?;
            if !mark(tx, id, &envelope, "accepted", None, now).await? {
                return Ok(Decided::Gone);
            }
            remember(tx, &envelope, id).await?;
            tracing::info!(
                inbox_id = id,
                command = envelope.command.type_name(),
                case_ref = envelope.command.case_ref(),
                "command accepted"
            );
            Ok(Decided::Accepted)
        }
        Err(ApplyError::Rejected(rejection)) => {
            sql("ROLLBACK TO SAVEPOINT command")
                .execute(&mut *tx)
                .await?;
            let decided = rejected(tx, id, Some(&envelope), &rejection, now).await?;
            if matches!(decided, Decided::Rejected) {
                remember(tx, &envelope, id).await?;
            }
            Ok(decided)
        }
        Err(ApplyError::Db(e)) => Err(e),
    }
}

/// The wall clock, but never earlier than the last event of the case the command is about: an
/// instance whose clock is behind another's cannot record a change before one already made.
async fn live_now(tx: &mut Tx, envelope: &Envelope) -> Result<DateTime<Utc>, sqlx::Error> {
    let now = crate::clock::now();
    let Some(case_ref) = envelope.command.case_ref() else {
        return Ok(now);
    };
    let last: Option<(DateTime<Utc>,)> = sql(
        "SELECT e.at FROM events e WHERE e.case_id = (SELECT id FROM cases WHERE case_ref = $1) ORDER BY e.id DESC LIMIT 1",
    )
    .bind(case_ref)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(last.map_or(now, |(at,)| now.max(at)))
}

/// The row's body as UTF-8 text, or the reason it cannot be a command. Read as bytes, so a BLOB
/// or text that is not UTF-8 (which SQLite lets any writer store) is rejected, not a failed
/// pass. A BLOB holding UTF-8 text is read as that text.
async fn read_body(
    tx: &mut Tx,
    id: i64,
    max_bytes: usize,
) -> Result<Result<String, Rejection>, sqlx::Error> {
    let (bytes,): (Option<Vec<u8>>,) = sql2(
        "SELECT CAST(body AS BLOB) FROM inbox WHERE id = $1",
        "SELECT convert_to(body, 'UTF8') FROM inbox WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let Some(bytes) = bytes else {
        return Ok(Err(Rejection(
            "the body is NULL: write the command as JSON text".into(),
        )));
    };
    if bytes.len() > max_bytes {
        // Keep a prefix, the size and the hash, so a hostile client cannot grow the database.
        let digest = hex::encode(Sha256::digest(&bytes));
        let size = bytes.len();
        let mut keep = KEPT_PREFIX_BYTES.min(size);
        let prefix = loop {
            match std::str::from_utf8(&bytes[..keep]) {
                Ok(p) => break p.to_string(),
                Err(e) if e.valid_up_to() > 0 || keep == 0 => {
                    break String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned();
                }
                Err(_) => keep -= 1,
            }
        };
        sql("UPDATE inbox SET body = $1 WHERE id = $2")
            .bind(prefix)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        return Ok(Err(Rejection(format!(
            "command is {size} bytes; the limit is {max_bytes} bytes. Only its first \
             {KEPT_PREFIX_BYTES} bytes are kept; the whole body had SHA-256 {digest}"
        ))));
    }
    Ok(String::from_utf8(bytes).map_err(|e| {
        Rejection(format!(
            "the body is not UTF-8 text (invalid byte at offset {}): write the command as UTF-8 JSON text",
            e.utf8_error().valid_up_to()
        ))
    }))
}

async fn remember(tx: &mut Tx, envelope: &Envelope, inbox_id: i64) -> Result<(), sqlx::Error> {
    if let Some(id) = &envelope.command_id {
        sql("INSERT INTO processed_commands (command_id, inbox_id) VALUES ($1, $2) ON CONFLICT (command_id) DO NOTHING")
            .bind(id)
            .bind(inbox_id)
            .execute(tx)
            .await?;
    }
    Ok(())
}

/// Records a decision on a row that is still pending; says whether it was.
async fn mark(
    tx: &mut Tx,
    inbox_id: i64,
    envelope: &Envelope,
    status: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let changed = sql("UPDATE inbox SET status = $1, reason = $2, processed_at = $3, command_id = $4, command_type = $5, case_ref = $6 \
                       WHERE id = $7 AND status = 'pending'")
        .bind(status)
        .bind(reason.map(|r| text::bounded(r, MAX_REASON_CHARS)))
        .bind(now)
        .bind(envelope.command_id.as_deref())
        .bind(envelope.command.type_name())
        .bind(envelope.command.case_ref())
        .bind(inbox_id)
        .execute(tx)
        .await?;
    Ok(changed == 1)
}

/// Marks a command rejected and writes `command_rejected`, on the case's log when the case
/// exists. The inbox keeps the whole reason; the event, which can never be erased, keeps it with
/// every quoted value taken out.
async fn rejected(
    tx: &mut Tx,
    inbox_id: i64,
    envelope: Option<&Envelope>,
    rejection: &Rejection,
    now: DateTime<Utc>,
) -> Result<Decided, sqlx::Error> {
    let reason = &rejection.0;
    let still_pending = match envelope {
        Some(e) => mark(tx, inbox_id, e, "rejected", Some(reason), now).await?,
        None => {
            sql("UPDATE inbox SET status = 'rejected', reason = $1, processed_at = $2 WHERE id = $3 AND status = 'pending'")
                .bind(text::bounded(reason, MAX_REASON_CHARS))
                .bind(now)
                .bind(inbox_id)
                .execute(&mut *tx)
                .await?
                == 1
        }
    };
    if !still_pending {
        return Ok(Decided::Gone);
    }
    let case_ref = envelope.and_then(|e| e.command.case_ref());
    let case = match case_ref {
        Some(r) => {
            sql("SELECT id FROM cases WHERE case_ref = $1")
                .bind(r)
                .fetch_optional::<(i64,)>(&mut *tx)
                .await?
        }
        None => None,
    };
    let rejected = Kind::CommandRejected(kinds::CommandRejected {
        inbox_id,
        command_type: envelope.map(|e| e.command.type_name().into()),
        command_id: envelope.and_then(|e| e.command_id.clone()),
        case_ref: case_ref.map(Into::into),
        reason: text::bounded(&text::redact_quoted(reason), MAX_EVENT_REASON_CHARS),
    });
    let at = case.map(|(id,)| (id, case_ref.unwrap_or_default()));
    events::record(tx, at, now, ENGINE, rejected).await?;
    tracing::info!(
        inbox_id,
        command = envelope.map(|e| e.command.type_name()),
        case_ref,
        "command rejected (the reason is in the inbox)"
    );
    Ok(Decided::Rejected)
}

/// Sets a row aside as rejected for a reason of the engine's own, in a transaction of its own.
/// If even the event cannot be written, the row is still set aside, with the reason alone.
async fn set_aside(db: &Db, id: i64, reason: &str, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let recorded = reject_set_aside(&mut tx, id, reason, now).await;
    match recorded {
        Ok(_) => tx.commit().await,
        Err(e) => {
            drop(tx);
            tracing::error!(inbox_id = id, error = %e, "could not record why a command was set aside; recording a generic reason");
            let mut tx = db.begin_write().await?;
            sql("UPDATE inbox SET status = 'rejected', reason = $1, processed_at = $2 WHERE id = $3 AND status = 'pending'")
                .bind("set aside: casewarden could not apply or record this command; see the daemon's log")
                .bind(now)
                .bind(id)
                .execute(&mut tx)
                .await?;
            tx.commit().await
        }
    }
}

/// Marks a row set aside as rejected, with its `command_rejected` event and that event's range.
async fn reject_set_aside(
    tx: &mut Tx,
    id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let before = event_range::newest(tx).await?;
    let rejection = Rejection(reason.to_string());
    if let Decided::Rejected = rejected(tx, id, None, &rejection, now).await? {
        event_range::record(tx, id, before).await?;
    }
    Ok(())
}
