//! Deciding one pending inbox row inside the caller's write transaction: read its body, parse it,
//! apply it, and record the decision (accepted, rejected with the reason, or duplicate) on the row
//! with the range of events it wrote. All of it happens inside a savepoint of the row's own, so a
//! rejected command leaves nothing behind but its rejection, and the rows before and after it in
//! the same transaction keep what they did; or, in a batch's first try, with no savepoint, where
//! a rejected command gives up the batch instead (see [`Savepoint`]).
//!
//! - a body that is not UTF-8 JSON text, or is over the size limit, is rejected like any other
//!   malformed command (a large body is cut down to a prefix, with its size and SHA-256 kept in
//!   the reason);
//! - a database error or a panic is not a decision: it comes back to the caller, which gives up
//!   the whole transaction (see `ingest`).
//!
//! Every change is conditional on the row still being pending, so two instances sharing a
//! PostgreSQL database never both decide the same command; a row found decided is rolled back to
//! its savepoint and left alone.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::latest::Latest;
use super::marks::{Mark, Named};
use super::processed::{self, Processed};
use crate::clock::Now;
use crate::commands::{self, Envelope, Rejection};
use crate::db::{Tx, sql, sql2};
use crate::engine::apply::{ApplyError, CRM, apply};
use crate::events::kinds::{self, Kind};
use crate::events::{self, ENGINE};
use crate::rules::RuleSet;
use crate::text;

/// The longest reason stored in the inbox, and in a `command_rejected` event.
const MAX_REASON_CHARS: usize = 2000;
const MAX_EVENT_REASON_CHARS: usize = 500;

/// What is kept of a body over the size limit.
const KEPT_PREFIX_BYTES: usize = 1024;

/// How a row was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    Accepted,
    Rejected,
    Duplicate,
}

impl Decided {
    /// The inbox status it writes.
    pub fn status(self) -> &'static str {
        match self {
            Decided::Accepted => "accepted",
            Decided::Rejected => "rejected",
            Decided::Duplicate => "duplicate",
        }
    }
}

/// A pending row to decide.
pub struct Pending {
    pub id: i64,
    /// The API client that submitted it (`None`: written into the table, or by `submit`).
    pub client: Option<String>,
    pub body: Body,
}

/// A pending row's body.
pub enum Body {
    /// Not read yet: the row's decision reads it (and cuts down one over the size limit).
    Unread,
    /// Read by its batch, within the size limit, and parsed (see [`parse_body`]).
    Parsed(Box<Result<Envelope, Rejection>>),
}

/// What a row's decision records on it.
struct Verdict {
    decided: Decided,
    reason: Option<String>,
    /// `None` for a body that is not a command: its `command_id`, `command_type` and `case_ref`
    /// stay as they are.
    envelope: Option<Envelope>,
    now: DateTime<Utc>,
}

/// Whether a row is decided inside a savepoint of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Savepoint {
    /// Each row in its own: a rejection rolls back to it, and the rows around it keep theirs.
    Each,
    /// None, two statements fewer per row while every command applies. A row that would need
    /// one (a rejected command, which may have changed something before it was refused, or a
    /// row another instance decided first) gives up the whole transaction:
    /// [`Step::NeedsSavepoint`], and its batch is decided again with [`Savepoint::Each`].
    None,
}

/// What a batch knows while it decides its rows, and how it guards them.
pub struct InBatch<'a> {
    /// The command ids it knows.
    pub processed: &'a mut Processed,
    /// Without savepoints: the decisions to write on the rows when the batch ends (see `marks`).
    pub marks: &'a mut Vec<Mark>,
    /// The newest event's time of the cases it names (for a live clock).
    pub latest: &'a mut Latest,
    pub savepoint: Savepoint,
}

/// How deciding a row went.
pub enum Step {
    /// How it was decided (`None`: another instance decided it first) and the newest event id
    /// after it, the `before` of the row that follows in the same transaction.
    Decided(Option<Decided>, i64),
    /// Without a savepoint, it needed one: the transaction must not be committed.
    NeedsSavepoint,
}

/// Decides `row` inside `tx`, given the newest event id before it (`before`). A batch passes what
/// it knows and whether its rows have savepoints; a row decided alone asks the table, and has
/// one.
pub async fn decide(
    tx: &mut Tx,
    rules: &RuleSet,
    clock: Now,
    row: Pending,
    max_bytes: usize,
    before: i64,
    mut batch: Option<InBatch<'_>>,
) -> Result<Step, sqlx::Error> {
    let id = row.id;
    let savepoint = batch.as_ref().map_or(Savepoint::Each, |b| b.savepoint);
    if savepoint == Savepoint::Each {
        sql("SAVEPOINT command").execute(&mut *tx).await?;
    }
    let judged = judge(tx, rules, clock, row, max_bytes, batch.as_mut());
    let Some(verdict) = judged.await? else {
        return Ok(Step::NeedsSavepoint);
    };
    if let (Savepoint::None, Some(batch)) = (savepoint, batch.as_mut()) {
        // Written with the batch's other decisions when it ends.
        if let (Decided::Accepted | Decided::Rejected, Some(command_id)) =
            (verdict.decided, command_id(&verdict))
        {
            batch.processed.add(command_id, id);
        }
        log(id, &verdict);
        let decided = verdict.decided;
        batch.marks.push(mark(tx, id, verdict));
        return Ok(Step::Decided(Some(decided), before));
    }
    let Some(last_event) = record(tx, id, &verdict, before).await? else {
        if savepoint == Savepoint::None {
            return Ok(Step::NeedsSavepoint);
        }
        // Decided elsewhere: nothing of this attempt stays, so the newest event is `before` again.
        rollback_to_savepoint(tx).await?;
        sql("RELEASE SAVEPOINT command").execute(&mut *tx).await?;
        return Ok(Step::Decided(None, before));
    };
    if let (Decided::Accepted | Decided::Rejected, Some(command_id)) =
        (verdict.decided, command_id(&verdict))
    {
        match batch {
            Some(batch) => batch.processed.add(command_id, id),
            None => processed::remember(tx, command_id, id).await?,
        }
    }
    if savepoint == Savepoint::Each {
        sql("RELEASE SAVEPOINT command").execute(&mut *tx).await?;
    }
    log(id, &verdict);
    Ok(Step::Decided(
        Some(verdict.decided),
        last_event.unwrap_or(before),
    ))
}

/// Undoes what the row did since its savepoint. What the transaction found of the reference
/// data is forgotten too, since the row may have found what it wrote.
async fn rollback_to_savepoint(tx: &mut Tx) -> Result<(), sqlx::Error> {
    sql("ROLLBACK TO SAVEPOINT command")
        .execute(&mut *tx)
        .await?;
    tx.forget_found();
    Ok(())
}

fn command_id(verdict: &Verdict) -> Option<&str> {
    verdict.envelope.as_ref()?.command_id.as_deref()
}

/// A row's decision, to be written when its batch ends, after the events `tx` holds so far.
fn mark(tx: &Tx, inbox_id: i64, verdict: Verdict) -> Mark {
    Mark {
        inbox_id,
        status: verdict.decided.status(),
        reason: verdict
            .reason
            .as_deref()
            .map(|r| text::bounded(r, MAX_REASON_CHARS)),
        now: verdict.now,
        command: verdict.envelope.map(|e| Named {
            command_type: e.command.type_name(),
            case_ref: e.command.case_ref().map(str::to_string),
            command_id: e.command_id,
        }),
        held_upto: tx.held_count(),
    }
}

fn log(inbox_id: i64, verdict: &Verdict) {
    let command = verdict.envelope.as_ref().map(|e| &e.command);
    let case_ref = command.and_then(|c| c.case_ref());
    match verdict.decided {
        Decided::Accepted => tracing::info!(
            inbox_id,
            command = command.map(|c| c.type_name()),
            case_ref,
            "command accepted"
        ),
        Decided::Rejected => tracing::info!(
            inbox_id,
            command = command.map(|c| c.type_name()),
            case_ref,
            "command rejected (the reason is in the inbox)"
        ),
        Decided::Duplicate => {}
    }
}

/// Reads, parses and applies one row, or writes its rejection; all inside the row's savepoint,
/// where it has one. `None`: a command was rejected with no savepoint to roll it back to.
async fn judge(
    tx: &mut Tx,
    rules: &RuleSet,
    clock: Now,
    row: Pending,
    max_bytes: usize,
    mut batch: Option<&mut InBatch<'_>>,
) -> Result<Option<Verdict>, sqlx::Error> {
    let savepoint = batch.as_ref().map_or(Savepoint::Each, |b| b.savepoint);
    let id = row.id;
    let parsed = match row.body {
        Body::Parsed(parsed) => *parsed,
        Body::Unread => match read_body(tx, id, max_bytes).await? {
            Ok(bytes) => parse_body(bytes, max_bytes),
            Err(rejection) => Err(rejection),
        },
    };
    let envelope = match parsed {
        Ok(e) => e,
        Err(rejection) => {
            return rejected(tx, id, None, &rejection, clock.get())
                .await
                .map(Some);
        }
    };
    // A live clock never goes back before the case's newest event: an instance whose clock is
    // behind another's cannot record a change before one already made.
    // A row decided alone knows no case's time: its empty `Latest` asks the table.
    let mut alone = Latest::default();
    let now = match (clock, envelope.command.case_ref()) {
        (Now::At(t), _) => t,
        (Now::Live, None) => crate::clock::now(),
        (Now::Live, Some(case_ref)) => {
            let latest = match &mut batch {
                Some(batch) => &mut *batch.latest,
                None => &mut alone,
            };
            latest.now(tx, case_ref).await?
        }
    };
    let repeats = match (&envelope.command_id, batch) {
        (None, _) => None,
        (Some(command_id), Some(batch)) => batch.processed.first(tx, command_id).await?,
        (Some(command_id), None) => processed::first(tx, command_id).await?,
    };
    if let (Some(command_id), Some(first)) = (&envelope.command_id, repeats) {
        let reason = format!(
            "command_id {} was already processed as inbox #{first}; this repeat has no effect",
            text::quote(command_id)
        );
        return Ok(Some(Verdict {
            decided: Decided::Duplicate,
            reason: Some(reason),
            envelope: Some(envelope),
            now,
        }));
    }
    let source = row.client.as_deref().unwrap_or(CRM);
    match apply(tx, rules, &envelope.command, now, source).await {
        Ok(()) => Ok(Some(Verdict {
            decided: Decided::Accepted,
            reason: None,
            envelope: Some(envelope),
            now,
        })),
        Err(ApplyError::Rejected(_)) if savepoint == Savepoint::None => Ok(None),
        Err(ApplyError::Rejected(rejection)) => {
            // A rejected command leaves nothing behind: its changes go back to the savepoint, and
            // the rejection is recorded in the same transaction, so no other writer comes between.
            rollback_to_savepoint(tx).await?;
            rejected(tx, id, Some(envelope), &rejection, now)
                .await
                .map(Some)
        }
        Err(ApplyError::Db(e)) => Err(e),
    }
}

/// The row's body as bytes, or the reason it cannot be a command (NULL, or over the size limit,
/// in which case the row keeps only a prefix). Read as bytes, so a BLOB or text that is not UTF-8
/// (which SQLite lets any writer store) is rejected by [`parse_body`], not a failed pass.
async fn read_body(
    tx: &mut Tx,
    id: i64,
    max_bytes: usize,
) -> Result<Result<Vec<u8>, Rejection>, sqlx::Error> {
    let bytes: Option<Vec<u8>> = sql2(
        "SELECT CAST(body AS BLOB) FROM inbox WHERE id = $1",
        "SELECT convert_to(body, 'UTF8') FROM inbox WHERE id = $1",
    )
    .bind(id)
    .scalar(&mut *tx)
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
    Ok(Ok(bytes))
}

/// A body (within the size limit) as a command, or the reason it is not one. A BLOB holding UTF-8
/// text is read as that text.
pub fn parse_body(bytes: Vec<u8>, max_bytes: usize) -> Result<Envelope, Rejection> {
    let body = String::from_utf8(bytes).map_err(|e| {
        Rejection(format!(
            "the body is not UTF-8 text (invalid byte at offset {}): write the command as UTF-8 JSON text",
            e.utf8_error().valid_up_to()
        ))
    })?;
    commands::parse_with_limit(&body, max_bytes)
}

/// Records a verdict on a row that is still pending, with the range of the events written after
/// event `before` (see `event_range`), in one statement. Gives the row's last event id (`None`
/// when it wrote none), or `None` when the row was no longer pending.
async fn record(
    tx: &mut Tx,
    inbox_id: i64,
    verdict: &Verdict,
    before: i64,
) -> Result<Option<Option<i64>>, sqlx::Error> {
    let status = verdict.decided.status();
    let reason = verdict
        .reason
        .as_deref()
        .map(|r| text::bounded(r, MAX_REASON_CHARS));
    let query = match &verdict.envelope {
        Some(envelope) => sql(
            "UPDATE inbox SET status = $1, reason = $2, processed_at = $3, command_id = $4, command_type = $5, case_ref = $6, \
             first_event_id = (SELECT MIN(id) FROM events WHERE id > $7), last_event_id = (SELECT MAX(id) FROM events WHERE id > $7) \
             WHERE id = $8 AND status = 'pending' RETURNING last_event_id",
        )
        .bind(status)
        .bind(reason)
        .bind(verdict.now)
        .bind(envelope.command_id.as_deref())
        .bind(envelope.command.type_name())
        .bind(envelope.command.case_ref()),
        None => sql(
            "UPDATE inbox SET status = $1, reason = $2, processed_at = $3, \
             first_event_id = (SELECT MIN(id) FROM events WHERE id > $4), last_event_id = (SELECT MAX(id) FROM events WHERE id > $4) \
             WHERE id = $5 AND status = 'pending' RETURNING last_event_id",
        )
        .bind(status)
        .bind(reason)
        .bind(verdict.now),
    };
    let row: Option<(Option<i64>,)> = query.bind(before).bind(inbox_id).fetch_optional(tx).await?;
    Ok(row.map(|(last,)| last))
}

/// Writes `command_rejected` for a row, on the case's log when the case exists. The inbox keeps
/// the whole reason; the event, which can never be erased, keeps it with every quoted value
/// taken out.
async fn rejected(
    tx: &mut Tx,
    inbox_id: i64,
    envelope: Option<Envelope>,
    rejection: &Rejection,
    now: DateTime<Utc>,
) -> Result<Verdict, sqlx::Error> {
    let reason = &rejection.0;
    let case_ref = envelope.as_ref().and_then(|e| e.command.case_ref());
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
        command_type: envelope.as_ref().map(|e| e.command.type_name().into()),
        command_id: envelope.as_ref().and_then(|e| e.command_id.clone()),
        case_ref: case_ref.map(Into::into),
        reason: text::bounded(&text::redact_quoted(reason), MAX_EVENT_REASON_CHARS),
    });
    let at = case.map(|(id,)| (id, case_ref.unwrap_or_default()));
    events::record(tx, at, now, ENGINE, rejected).await?;
    Ok(Verdict {
        decided: Decided::Rejected,
        reason: Some(reason.clone()),
        envelope,
        now,
    })
}

/// Rejects a row for a reason of the engine's own (it was set aside), with its
/// `command_rejected` event and that event's range, inside `tx`. Says whether the row was still
/// pending; when it was not, the event is written all the same, and `tx` must not be committed.
pub async fn reject_set_aside(
    tx: &mut Tx,
    id: i64,
    reason: &str,
    now: DateTime<Utc>,
    before: i64,
) -> Result<bool, sqlx::Error> {
    let verdict = rejected(tx, id, None, &Rejection(reason.to_string()), now).await?;
    let pending = record(tx, id, &verdict, before).await?.is_some();
    if pending {
        log(id, &verdict);
    }
    Ok(pending)
}
