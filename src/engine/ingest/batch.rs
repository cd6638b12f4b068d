//! A batch of commands decided together: the oldest pending rows, read with one query (their
//! bodies with a second, and the command ids they carry looked up with a third, see `processed`),
//! decided one after another in one write transaction, and committed at once. A batch is first
//! decided with no savepoints; if one of its commands is rejected it is decided again, each
//! command inside its own savepoint (see `decide`), so a rejection is a decision like any other.
//! A database error or a panic on one command gives up the whole transaction and says where it
//! happened, so the caller can decide the commands before it again and try that one alone.

use std::collections::HashMap;

use super::decide::{Body, Decided, InBatch, Pending, Savepoint, Step, decide, parse_body};
use super::latest::Latest;
use super::marks::{self, Mark};
use super::processed::Processed;
use crate::clock::Now;
use crate::commands::Command;
use crate::db::{Db, Reference, Tx, sql, sql2};
use crate::engine::{event_range, guard};
use crate::rules::RuleSet;

/// The oldest pending commands, at most `$1`, and the API clients that submitted them, through
/// `inbox_pending`.
pub const PENDING_COMMANDS: &str =
    "SELECT id, client FROM inbox WHERE status = 'pending' ORDER BY id LIMIT $1";

/// The largest body a batch reads with the others: a larger one (commands are rarely over a
/// kilobyte or two) is read by its own row's decision, so a batch of large bodies cannot hold
/// `engine.batch_size` times `engine.max_command_bytes` in memory.
const READ_TOGETHER_BYTES: usize = 8 * 1024;

/// How a batch went.
pub enum Batch {
    /// Committed: how each of its commands was decided, in order (`None`: another instance
    /// decided it first). Fewer than asked for when fewer were pending.
    Decided(Vec<Option<Decided>>),
    /// Rolled back, nothing kept: the command at this position failed (or, at 0, the commit did).
    FailedAt(usize),
    /// Rolled back, nothing kept: decided with no savepoints, a command needed one. Decide the
    /// batch again with [`Savepoint::Each`].
    NeedsSavepoints,
}

/// Decides up to `cap` pending commands in one transaction, their rows guarded by `savepoint`.
pub async fn decide_together(
    db: &Db,
    rules: &RuleSet,
    (clock, savepoint): (Now, Savepoint),
    cap: usize,
    max_bytes: usize,
) -> Result<Batch, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let pending: Vec<(i64, Option<String>)> = sql(PENDING_COMMANDS)
        .bind(i64::try_from(cap).unwrap_or(i64::MAX))
        .fetch_all(&mut tx)
        .await?;
    let (Some((first, _)), Some((last, _))) = (pending.first(), pending.last()) else {
        return Ok(Batch::Decided(Vec::new()));
    };
    let mut bodies = read_bodies(&mut tx, (*first, *last), max_bytes).await?;
    // Without savepoints, the rows' events and decisions are written together when the batch
    // ends (see `marks`); with them, each row's as it is decided, after the newest event before
    // it.
    let mut before = match savepoint {
        Savepoint::None => {
            tx.hold_events();
            0
        }
        Savepoint::Each => event_range::newest(&mut tx).await?,
    };
    let (mut processed, mut latest) = known(&mut tx, &bodies, clock).await?;
    let mut marks = Vec::with_capacity(pending.len());
    let mut decided = Vec::with_capacity(pending.len());
    for (at, (id, client)) in pending.into_iter().enumerate() {
        let row = Pending {
            id,
            client,
            body: bodies.remove(&id).unwrap_or(Body::Unread),
        };
        let deciding = decide(
            &mut tx,
            rules,
            clock,
            row,
            max_bytes,
            before,
            Some(InBatch {
                processed: &mut processed,
                marks: &mut marks,
                latest: &mut latest,
                savepoint,
            }),
        );
        match guard::catch_in_place(deciding).await {
            Ok(Step::Decided(how, newest)) => {
                decided.push(how);
                before = newest;
            }
            Ok(Step::NeedsSavepoint) => return Ok(Batch::NeedsSavepoints),
            Err(error) => {
                tracing::warn!(
                    inbox_id = id,
                    error,
                    "a command failed inside a batch: the batch is rolled back, the commands before it are decided again, and it is tried alone"
                );
                return Ok(Batch::FailedAt(at));
            }
        }
    }
    Ok(finish(tx, &marks, processed, decided).await)
}

/// What a batch knows before it decides its rows: the command ids they carry that were processed
/// already, and, for a live clock, the newest event's time of the cases they name. It also finds
/// the references they name (see [`find_references`]), and which of the cases they create do not
/// exist yet (see `Tx::expect_new_cases`).
async fn known(
    tx: &mut Tx,
    bodies: &HashMap<i64, Body>,
    clock: Now,
) -> Result<(Processed, Latest), sqlx::Error> {
    let ids: Vec<&str> = bodies
        .values()
        .filter_map(|body| match body {
            Body::Parsed(parsed) => parsed.as_ref().as_ref().ok()?.command_id.as_deref(),
            Body::Unread => None,
        })
        .collect();
    let processed = Processed::read(&mut *tx, &ids).await?;
    find_references(&mut *tx, bodies).await?;
    tx.expect_new_cases(&creations(bodies)).await?;
    let latest = match clock {
        Now::Live => Latest::read(&mut *tx, &case_refs(bodies)).await?,
        Now::At(_) => Latest::default(),
    };
    Ok((processed, latest))
}

/// Writes what a batch held back to the end (its rows' events and decisions, see `marks`, and
/// the command ids it processed) and commits. A row no longer pending sends the batch back to
/// savepoints; a failure, its first command to be tried alone.
async fn finish(
    mut tx: Tx,
    marks: &[Mark],
    processed: Processed,
    decided: Vec<Option<Decided>>,
) -> Batch {
    let written = match marks::write(&mut tx, marks).await {
        Ok(true) => processed.write(&mut tx).await,
        Ok(false) => return Batch::NeedsSavepoints,
        Err(e) => Err(e),
    };
    let committed = match written {
        Ok(()) => tx.commit().await,
        Err(e) => Err(e),
    };
    match committed {
        Ok(()) => Batch::Decided(decided),
        Err(e) => {
            tracing::warn!(error = %e, "a batch of commands could not be committed: its first command is tried alone");
            Batch::FailedAt(0)
        }
    }
}

/// Looks up the users, contacts and groups the parsed commands name, one statement for each kind,
/// so each command finds them remembered by the transaction (see `Tx::found`) instead of asking
/// one by one.
async fn find_references(tx: &mut Tx, bodies: &HashMap<i64, Body>) -> Result<(), sqlx::Error> {
    let mut named: HashMap<Reference, Vec<&str>> = HashMap::new();
    for body in bodies.values() {
        let Body::Parsed(parsed) = body else { continue };
        let Ok(envelope) = parsed.as_ref() else {
            continue;
        };
        for (what, reference) in references(&envelope.command) {
            named.entry(what).or_default().push(reference);
        }
    }
    for (what, mut references) in named {
        references.sort_unstable();
        references.dedup();
        tx.find_all(what, &references).await?;
    }
    Ok(())
}

/// The users a command names in `by`, and the applicant and group of a new case.
fn references(command: &Command) -> Vec<(Reference, &str)> {
    let mut named: Vec<(Reference, &str)> = command
        .by()
        .map(|u| (Reference::User, u))
        .into_iter()
        .collect();
    if let Command::CreateCase(c) = command {
        named.extend(c.applicant.as_deref().map(|a| (Reference::Contact, a)));
        named.extend(c.applicant_group.as_deref().map(|g| (Reference::Group, g)));
    }
    named
}

/// The cases the parsed commands create, each once.
fn creations(bodies: &HashMap<i64, Body>) -> Vec<&str> {
    let mut refs: Vec<&str> = bodies
        .values()
        .filter_map(|body| match body {
            Body::Parsed(parsed) => match &parsed.as_ref().as_ref().ok()?.command {
                Command::CreateCase(c) => Some(c.case_ref.as_str()),
                _ => None,
            },
            Body::Unread => None,
        })
        .collect();
    refs.sort_unstable();
    refs.dedup();
    refs
}

/// The cases the parsed commands name, each once.
fn case_refs(bodies: &HashMap<i64, Body>) -> Vec<&str> {
    let mut refs: Vec<&str> = bodies
        .values()
        .filter_map(|body| match body {
            Body::Parsed(parsed) => parsed.as_ref().as_ref().ok()?.command.case_ref(),
            Body::Unread => None,
        })
        .collect();
    refs.sort_unstable();
    refs.dedup();
    refs
}

/// The bodies of the pending rows from `first` to `last` that are within the size limit and
/// [`READ_TOGETHER_BYTES`], read with one query and parsed; any other (larger, or NULL) is read,
/// and one over the limit cut down, by its own row's decision.
async fn read_bodies(
    tx: &mut Tx,
    (first, last): (i64, i64),
    max_bytes: usize,
) -> Result<HashMap<i64, Body>, sqlx::Error> {
    let rows: Vec<(i64, Vec<u8>)> = sql2(
        "SELECT id, CAST(body AS BLOB) FROM inbox \
         WHERE id >= $1 AND id <= $2 AND status = 'pending' AND length(CAST(body AS BLOB)) <= $3",
        "SELECT id, convert_to(body, 'UTF8') FROM inbox \
         WHERE id >= $1 AND id <= $2 AND status = 'pending' AND octet_length(body) <= $3",
    )
    .bind(first)
    .bind(last)
    .bind(i64::try_from(max_bytes.min(READ_TOGETHER_BYTES)).unwrap_or(i64::MAX))
    .fetch_all(tx)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, bytes)| bytes.len() <= max_bytes.min(READ_TOGETHER_BYTES))
        .map(|(id, bytes)| (id, Body::Parsed(Box::new(parse_body(bytes, max_bytes)))))
        .collect())
}
