//! The append-only event log: every change of state writes one row, in the same transaction as
//! the change. CRMs follow it by id; it is each case's audit trail.

pub mod kinds;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::db::{Ex, Tx, sql};

/// The actor for changes casewarden makes by itself.
pub const ENGINE: &str = "casewarden";

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    pub case_ref: Option<String>,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub actor: String,
    pub data: sqlx::types::Json<Value>,
}

/// Appends one event.
pub async fn append(
    tx: &mut Tx,
    case: Option<(i64, &str)>,
    at: DateTime<Utc>,
    kind: &str,
    actor: &str,
    data: Value,
) -> Result<i64, sqlx::Error> {
    sql("INSERT INTO events (case_id, case_ref, at, kind, actor, data) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id")
        .bind(case.map(|c| c.0))
        .bind(case.map(|c| c.1))
        .bind(at)
        .bind(kind)
        .bind(actor)
        .bind(data)
        .scalar(tx)
        .await
}

/// A case's events in order.
pub async fn for_case<'a>(on: impl Into<Ex<'a>>, case_id: i64) -> Result<Vec<Event>, sqlx::Error> {
    sql("SELECT id, case_ref, at, kind, actor, data FROM events WHERE case_id = $1 ORDER BY id")
        .bind(case_id)
        .fetch_all(on)
        .await
}

/// Events after `after_id`, at most `limit`, for a follower of the whole log.
pub async fn since<'a>(
    on: impl Into<Ex<'a>>,
    after_id: i64,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    sql("SELECT id, case_ref, at, kind, actor, data FROM events WHERE id > $1 ORDER BY id LIMIT $2")
        .bind(after_id)
        .bind(limit)
        .fetch_all(on)
        .await
}
