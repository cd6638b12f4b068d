//! The range of event ids a decision on an inbox row wrote, kept on the row (`first_event_id`,
//! `last_event_id`) so whoever submitted the command can find what it caused.
//!
//! A batch decided without savepoints holds its events back and writes them when it ends, so each
//! row's range is known from the order they were recorded in (see `ingest::marks`). Otherwise
//! (a row decided in a savepoint of its own, or alone) the range is read, not collected from each
//! writer of an event: the newest event id before the row is decided, then the smallest and
//! largest id above it once it is (written with the decision, see `ingest::decide`). The rows of a batch are decided one after another in one
//! transaction, so the newest event after one row is the "before" of the next. That is exact
//! because rows are decided in a write transaction (`Db::begin_write`), and every writer of events
//! holds that lock until it ends (`BEGIN IMMEDIATE` on SQLite, a transaction-level advisory lock
//! on PostgreSQL): no other transaction's event can come between the reads, and every event
//! written before the first is committed and seen by it.

use crate::db::{Tx, sql};

/// The newest event id, 0 when there is none: read in the writer's transaction before it
/// decides a row.
pub async fn newest(tx: &mut Tx) -> Result<i64, sqlx::Error> {
    sql("SELECT COALESCE(MAX(id), 0) FROM events")
        .scalar(tx)
        .await
}
