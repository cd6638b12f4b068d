//! One bad item never stops a step. Each step runs an item's work through [`catch`], which turns
//! a database error or a panic into that item's failure; [`failed`] counts the failures in
//! `item_failures`, and after [`MAX_FAILURES`] of them (within a day of each other) the step sets
//! the item aside in its own way (see each step) and writes an `item_set_aside` event. Until
//! then the item is skipped for the rest of the pass and tried again in the next one.

use std::collections::HashSet;
use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use futures_util::FutureExt;
use serde_json::json;

use super::error::StepError;
use crate::db::{Db, Sql, sql};
use crate::events::kinds::{self, Kind};
use crate::events::{self, ENGINE};
use crate::text;

/// Failures (in passes within a day of each other) before an item is set aside.
pub const MAX_FAILURES: i64 = 3;

/// Runs one item's work; an error or a panic comes back as the failure's message.
pub async fn catch<T, E: std::fmt::Display>(
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    // Boxed: a pass's futures nest deeply, and each step's belongs on the heap, not the stack.
    catch_in_place(Box::pin(work)).await
}

/// [`catch`] for one item of many inside a step that is itself caught: `work` is kept in the
/// caller's future, which is on the heap already, instead of a box of its own for each item.
pub async fn catch_in_place<T, E: std::fmt::Display>(
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(e)) => Err(text::bounded(&e.to_string(), 1000)),
        Err(panic) => Err(format!("internal error: {}", panic_message(&panic))),
    }
}

/// What to do with an item that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Skip it for the rest of this pass; try again in the next.
    Retry,
    /// Set it aside now: it has failed too often.
    SetAside { attempts: i64 },
}

/// Counts a failure of `item_id` in `step`.
pub async fn failed(
    db: &Db,
    step: &str,
    item_id: i64,
    error: &str,
    now: DateTime<Utc>,
) -> Result<Verdict, StepError> {
    tracing::warn!(
        step,
        item_id,
        error,
        "an item failed; the step goes on without it"
    );
    let mut tx = db.begin_write().await?;
    let attempts: i64 = sql(
        "INSERT INTO item_failures (step, item_id, attempts, last_error, first_failed_at, last_failed_at) \
         VALUES ($1, $2, 1, $3, $4, $4) \
         ON CONFLICT (step, item_id) DO UPDATE SET \
           attempts = CASE WHEN item_failures.last_failed_at < $5 THEN 1 ELSE item_failures.attempts + 1 END, \
           first_failed_at = CASE WHEN item_failures.last_failed_at < $5 THEN $4 ELSE item_failures.first_failed_at END, \
           last_error = $3, last_failed_at = $4, set_aside_at = NULL \
         RETURNING attempts",
    )
    .bind(step)
    .bind(item_id)
    .bind(error)
    .bind(now)
    .bind(now - Duration::days(1))
    .scalar(&mut tx)
    .await?;
    let verdict = if attempts >= MAX_FAILURES {
        sql("UPDATE item_failures SET set_aside_at = $1 WHERE step = $2 AND item_id = $3")
            .bind(now)
            .bind(step)
            .bind(item_id)
            .execute(&mut tx)
            .await?;
        Verdict::SetAside { attempts }
    } else {
        Verdict::Retry
    };
    tx.commit().await?;
    Ok(verdict)
}

/// How a step sets one of its items aside.
pub struct Aside {
    pub step: crate::events::kinds::Step,
    /// What the item is: `case`, `task` or `stage`.
    pub kind: &'static str,
    pub id: i64,
    /// What setting it aside means for it, for the event and the log.
    pub consequence: String,
    /// The statement, with its values bound, that takes the item out of the step's way.
    pub take_out: Sql,
    /// The query, with its values bound, for the item's case id (one column).
    pub case_of: Sql,
}

/// Counts a failure of an item; once it has failed [`MAX_FAILURES`] times, takes it out of the
/// step's way and writes the `item_set_aside` event (on the case's log when the case can be
/// read), in one transaction.
pub async fn count_failure(
    db: &Db,
    aside: Aside,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), StepError> {
    let Verdict::SetAside { attempts } =
        failed(db, aside.step.as_str(), aside.id, error, now).await?
    else {
        return Ok(());
    };
    let Aside {
        step,
        kind,
        id,
        consequence,
        take_out,
        case_of,
    } = aside;
    let mut tx = db.begin_write().await?;
    take_out.execute(&mut tx).await?;
    let case: Option<(i64, String)> = match case_of.fetch_optional::<(i64,)>(&mut tx).await {
        Ok(Some((case_id,))) => sql("SELECT id, case_ref FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_optional(&mut tx)
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    let item = json!({"kind": kind, "id": id});
    tracing::error!(step = step.as_str(), %item, attempts, error, consequence, "an item was set aside");
    let set_aside = Kind::ItemSetAside(kinds::ItemSetAside {
        step,
        item,
        attempts,
        error: error.into(),
        consequence,
    });
    let at = case.as_ref().map(|(id, r)| (*id, r.as_str()));
    events::record(&mut tx, at, now, ENGINE, set_aside).await?;
    tx.commit().await?;
    Ok(())
}

/// The items of one pass that failed, so the step goes on without them.
#[derive(Debug, Default, Clone)]
pub struct Skipped(HashSet<(u8, i64)>);

impl Skipped {
    pub fn add(&mut self, kind: u8, id: i64) {
        self.0.insert((kind, id));
    }

    pub fn has(&self, kind: u8, id: i64) -> bool {
        self.0.contains(&(kind, id))
    }
}

/// The text of a caught panic.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with no message".to_string());
    text::bounded(&text, 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_or_an_error_in_one_item_comes_back_as_its_failure() {
        let panicked = catch(async {
            if true {
                panic!("row 7 is odd");
            }
            Ok::<u8, String>(1)
        })
        .await;
        assert_eq!(panicked, Err("internal error: row 7 is odd".to_string()));
        let failed = catch(async { Err::<u8, _>("no such column\0") }).await;
        assert_eq!(failed, Err("no such column\\u{0}".to_string()));
        assert_eq!(catch(async { Ok::<u8, String>(3) }).await, Ok(3));
    }
}
