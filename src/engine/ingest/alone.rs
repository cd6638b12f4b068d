//! One command alone, in a transaction of its own: the way a command that failed inside a batch
//! (a database error, a panic) is tried again, so that its failure is its own. A command that
//! fails for a reason of the engine's own is tried in [`MAX_ATTEMPTS`] passes and then set aside
//! as rejected, with the reason; until then the step stops at it, so commands keep their order,
//! and the other steps of the pass still run. A panic is a defect, not a passing fault: the
//! command is set aside at once.

use chrono::{DateTime, Utc};
use futures_util::FutureExt;

use super::decide::{Body, Decided, Pending, Step, decide, reject_set_aside};
use crate::clock::Now;
use crate::db::{Db, sql};
use crate::engine::error::StepError;
use crate::engine::event_range;
use crate::engine::guard;
use crate::rules::RuleSet;

/// The oldest pending command, its failed attempts, and the API client that submitted it, through
/// `inbox_pending`.
pub const NEXT_COMMAND: &str =
    "SELECT id, attempts, client FROM inbox WHERE status = 'pending' ORDER BY id LIMIT 1";

/// Passes in which a command may fail for a reason of the engine's own before it is set aside.
pub const MAX_ATTEMPTS: i64 = 3;

/// What [`decide_alone`] took.
pub enum Alone {
    /// No command was pending.
    Nothing,
    /// The oldest pending command, and how it was decided (`None`: another instance decided it
    /// first). A command set aside counts as rejected.
    Taken(Option<Decided>),
}

enum Failure {
    Db(sqlx::Error),
    Panic(String),
}

/// Decides the oldest pending command in a transaction of its own. A failure that may pass is
/// counted on the row and returned: the commands after it wait for the next pass.
pub async fn decide_alone(
    db: &Db,
    rules: &RuleSet,
    clock: Now,
    max_bytes: usize,
) -> Result<Alone, StepError> {
    let mut tx = db.begin_write().await?;
    let Some((id, attempts, client)) = sql(NEXT_COMMAND)
        .fetch_optional::<(i64, i64, Option<String>)>(&mut tx)
        .await?
    else {
        return Ok(Alone::Nothing);
    };
    let before = event_range::newest(&mut tx).await?;
    let row = Pending {
        id,
        client,
        body: Body::Unread,
    };
    let decided = std::panic::AssertUnwindSafe(Box::pin(decide(
        &mut tx, rules, clock, row, max_bytes, before, None,
    )))
    .catch_unwind()
    .await;
    let failure = match decided {
        Ok(Ok(Step::Decided(decided, _))) => match tx.commit().await {
            Ok(()) => return Ok(Alone::Taken(decided)),
            Err(e) => Failure::Db(e),
        },
        Ok(Ok(Step::NeedsSavepoint)) => {
            unreachable!("a row decided alone has a savepoint of its own")
        }
        Ok(Err(e)) => {
            drop(tx);
            Failure::Db(e)
        }
        Err(panic) => {
            drop(tx);
            Failure::Panic(guard::panic_message(&panic))
        }
    };
    failed(db, id, attempts, failure, clock.get()).await?;
    Ok(Alone::Taken(Some(Decided::Rejected)))
}

/// Handles a command's failure: sets it aside (a panic, or the last attempt), or counts the
/// attempt and returns the error, so the step stops at it.
async fn failed(
    db: &Db,
    id: i64,
    attempts: i64,
    failure: Failure,
    now: DateTime<Utc>,
) -> Result<(), StepError> {
    match failure {
        Failure::Panic(message) => {
            tracing::error!(inbox_id = id, panic = %message, "the engine failed on a command; it is set aside");
            let reason = format!(
                "casewarden failed on this command (internal error: {message}); it was set aside so the queue moves on: please report it"
            );
            set_aside(db, id, &reason, now).await?;
            Ok(())
        }
        Failure::Db(e) => {
            let attempts = attempts + 1;
            if attempts >= MAX_ATTEMPTS {
                tracing::error!(inbox_id = id, attempts, error = %e, "command set aside after repeated failures");
                let reason = format!(
                    "could not be applied in {attempts} passes, each failing with a database error; set aside so the queue moves on. Last error: {e}"
                );
                set_aside(db, id, &reason, now).await?;
                return Ok(());
            }
            let mut tx = db.begin_write().await?;
            sql("UPDATE inbox SET attempts = $1 WHERE id = $2 AND status = 'pending'")
                .bind(attempts)
                .bind(id)
                .execute(&mut tx)
                .await?;
            tx.commit().await?;
            // Commands keep their order: the rest wait for the next pass.
            Err(StepError::Db(e))
        }
    }
}

/// Sets a row aside as rejected for a reason of the engine's own, in a transaction of its own.
/// If even the event cannot be written, the row is still set aside, with the reason alone.
async fn set_aside(db: &Db, id: i64, reason: &str, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let recorded = match event_range::newest(&mut tx).await {
        Ok(before) => reject_set_aside(&mut tx, id, reason, now, before).await,
        Err(e) => Err(e),
    };
    match recorded {
        Ok(true) => tx.commit().await,
        // Decided meanwhile by another instance: its decision stands.
        Ok(false) => Ok(()),
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
