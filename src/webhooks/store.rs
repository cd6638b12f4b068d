//! Where each subscription stands (`webhook_subscriptions`), and the events it wants.
//!
//! Every change of a row is a conditional UPDATE in a short transaction of the engine's writers
//! ([`Db::begin_write`]): a batch is fixed and leased only if the row is still as its reader saw
//! it, and a result is recorded only while its sender still holds the lease on that batch. The
//! reads that choose a batch, and the send, happen with no transaction open.
//!
//! Event ids become visible in order (every event is written under the writer lock), so the
//! events up to the log's last id, read first, are all there is up to it: a subscription whose
//! filter matches none of them moves past them without a request.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::WebhookSettings;
use crate::db::{Db, Tx, sql, sql2};
use crate::events::Event;

/// A subscription's row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub name: String,
    pub delivered_through: i64,
    pub batch_id: Option<String>,
    pub batch_events: Option<String>,
    pub batch_first: Option<i64>,
    pub batch_last: Option<i64>,
    pub batch_through: Option<i64>,
    pub batch_first_tried_at: Option<DateTime<Utc>>,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub failing_reported_at: Option<DateTime<Utc>>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
}

macro_rules! columns {
    () => {
        "name, delivered_through, batch_id, batch_events, batch_first, batch_last, batch_through, \
         batch_first_tried_at, attempts, next_attempt_at, last_success_at, last_error, last_error_at, \
         failing_since, failing_reported_at, lease_owner, lease_until"
    };
}

/// The events a subscription wants among those with ids in `($1, $2]`, given `$3` (kinds),
/// `$4` (case kinds) and `$5` (schemes) as JSON arrays, each null for "any". Case filters pass
/// events with no case.
macro_rules! matching {
    (sqlite) => {
        " FROM events e LEFT JOIN cases c ON c.id = e.case_id WHERE e.id > $1 AND e.id <= $2 \
         AND ($3 IS NULL OR e.kind IN (SELECT value FROM json_each($3))) \
         AND (e.case_id IS NULL OR $4 IS NULL OR c.kind IN (SELECT value FROM json_each($4))) \
         AND (e.case_id IS NULL OR $5 IS NULL OR c.scheme IN (SELECT value FROM json_each($5)))"
    };
    (postgres) => {
        " FROM events e LEFT JOIN cases c ON c.id = e.case_id WHERE e.id > $1 AND e.id <= $2 \
         AND ($3::jsonb IS NULL OR e.kind IN (SELECT jsonb_array_elements_text($3::jsonb))) \
         AND (e.case_id IS NULL OR $4::jsonb IS NULL OR c.kind IN (SELECT jsonb_array_elements_text($4::jsonb))) \
         AND (e.case_id IS NULL OR $5::jsonb IS NULL OR c.scheme IN (SELECT jsonb_array_elements_text($5::jsonb)))"
    };
}

/// A subscription's filters as the matching SQL binds them.
#[derive(Debug, Clone)]
pub struct Filter {
    kinds: Option<Value>,
    case_kinds: Option<Value>,
    schemes: Option<Value>,
}

impl Filter {
    pub fn of(settings: &WebhookSettings) -> Filter {
        let list = |values: &[String]| (!values.is_empty()).then(|| Value::from(values.to_vec()));
        Filter {
            kinds: (!settings.all_kinds()).then(|| Value::from(settings.kinds.clone())),
            case_kinds: list(&settings.case_kinds),
            schemes: list(&settings.schemes),
        }
    }

    fn bind(&self, query: crate::db::Sql) -> crate::db::Sql {
        query
            .bind(self.kinds.clone())
            .bind(self.case_kinds.clone())
            .bind(self.schemes.clone())
    }
}

/// The row of a subscription, if a daemon has started with it.
pub async fn load(db: &Db, name: &str) -> Result<Option<Row>, sqlx::Error> {
    sql(concat!(
        "SELECT ",
        columns!(),
        " FROM webhook_subscriptions WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(db)
    .await
}

/// Every subscription's row.
pub async fn load_all(db: &Db) -> Result<Vec<Row>, sqlx::Error> {
    sql(concat!(
        "SELECT ",
        columns!(),
        " FROM webhook_subscriptions ORDER BY name"
    ))
    .fetch_all(db)
    .await
}

/// The row of a subscription, made at the end of the log if it has none yet.
pub async fn ensure(db: &Db, name: &str, now: DateTime<Utc>) -> Result<Row, sqlx::Error> {
    if let Some(row) = load(db, name).await? {
        return Ok(row);
    }
    let mut tx = db.begin_write().await?;
    // `WHERE true` tells SQLite's parser the ON CONFLICT belongs to the INSERT.
    sql(
        "INSERT INTO webhook_subscriptions (name, delivered_through, created_at) \
         SELECT $1, COALESCE(MAX(id), 0), $2 FROM events WHERE true ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(now)
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    let row = load(db, name).await?;
    row.ok_or_else(|| sqlx::Error::RowNotFound)
}

/// The last event id written.
pub async fn head(db: &Db) -> Result<i64, sqlx::Error> {
    sql("SELECT COALESCE(MAX(id), 0) FROM events")
        .scalar(db)
        .await
}

/// The ids of the first `limit` events after `after` and up to `upto` that the filter wants.
pub async fn matching_ids(
    db: &Db,
    filter: &Filter,
    after: i64,
    upto: i64,
    limit: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    let query = sql2(
        concat!("SELECT e.id", matching!(sqlite), " ORDER BY e.id LIMIT $6"),
        concat!(
            "SELECT e.id",
            matching!(postgres),
            " ORDER BY e.id LIMIT $6"
        ),
    )
    .bind(after)
    .bind(upto);
    let rows: Vec<(i64,)> = filter.bind(query).bind(limit).fetch_all(db).await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// How many events after `after` the filter wants, counting at most `limit`, and when the first
/// of them was written.
pub async fn lag(
    db: &Db,
    filter: &Filter,
    after: i64,
    limit: i64,
) -> Result<(i64, Option<DateTime<Utc>>), sqlx::Error> {
    let count = sql2(
        concat!(
            "SELECT COUNT(*) FROM (SELECT 1",
            matching!(sqlite),
            " LIMIT $6) w"
        ),
        concat!(
            "SELECT COUNT(*) FROM (SELECT 1",
            matching!(postgres),
            " LIMIT $6) w"
        ),
    )
    .bind(after)
    .bind(i64::MAX);
    let count: i64 = filter.bind(count).bind(limit).scalar(db).await?;
    let first = sql2(
        concat!("SELECT e.at", matching!(sqlite), " ORDER BY e.id LIMIT 1"),
        concat!("SELECT e.at", matching!(postgres), " ORDER BY e.id LIMIT 1"),
    )
    .bind(after)
    .bind(i64::MAX);
    let first: Option<(DateTime<Utc>,)> = filter.bind(first).fetch_optional(db).await?;
    Ok((count, first.map(|f| f.0)))
}

/// The events with these ids, in id order, as the API serves them.
pub async fn events(db: &Db, ids: &[i64]) -> Result<Vec<Event>, sqlx::Error> {
    sql2(
        "SELECT id, case_ref, at, kind, actor, data FROM events \
         WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id",
        "SELECT id, case_ref, at, kind, actor, data FROM events \
         WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)::bigint) ORDER BY id",
    )
    .bind(Value::from(ids.to_vec()))
    .fetch_all(db)
    .await
}

/// Moves a subscription with nothing in flight past events it does not want; false if the row
/// changed since it was read.
pub async fn pass_over(db: &Db, row: &Row, through: i64) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let changed = sql("UPDATE webhook_subscriptions SET delivered_through = $1 \
         WHERE name = $2 AND delivered_through = $3 AND batch_id IS NULL")
    .bind(through)
    .bind(&row.name)
    .bind(row.delivered_through)
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(changed > 0)
}

/// A batch: its webhook-id and events, and where the cursor goes once it is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub id: String,
    pub events: Vec<i64>,
    pub through: i64,
}

impl Batch {
    /// The batch in flight of a row, if any.
    pub fn of(row: &Row) -> Option<Batch> {
        let events = serde_json::from_str(row.batch_events.as_deref()?).ok()?;
        Some(Batch {
            id: row.batch_id.clone()?,
            events,
            through: row.batch_through?,
        })
    }
}

/// A lease: who holds a subscription's batch, and until when.
#[derive(Debug, Clone)]
pub struct Lease {
    pub owner: String,
    pub until: DateTime<Utc>,
}

/// Whether a lease held by someone else is still running at `now`.
pub fn leased_to_another(row: &Row, owner: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match (&row.lease_owner, row.lease_until) {
        (Some(o), Some(until)) if o != owner && until > now => Some(until),
        _ => None,
    }
}

/// Fixes a new batch and leases it, if the row still has nothing in flight at the cursor read.
pub async fn claim_new(
    db: &Db,
    row: &Row,
    batch: &Batch,
    lease: &Lease,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let changed = sql(
        "UPDATE webhook_subscriptions SET batch_id = $1, batch_events = $2, batch_first = $3, batch_last = $4, \
         batch_through = $5, batch_first_tried_at = $6, attempts = 0, next_attempt_at = NULL, \
         lease_owner = $7, lease_until = $8 \
         WHERE name = $9 AND delivered_through = $10 AND batch_id IS NULL \
         AND (lease_owner IS NULL OR lease_owner = $7 OR lease_until <= $6)",
    )
    .bind(&batch.id)
    .bind(Value::from(batch.events.clone()).to_string())
    .bind(batch.events.first().copied())
    .bind(batch.events.last().copied())
    .bind(batch.through)
    .bind(now)
    .bind(&lease.owner)
    .bind(lease.until)
    .bind(&row.name)
    .bind(row.delivered_through)
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(changed > 0)
}

/// Leases the batch in flight for another attempt, if it is due and nobody else holds it.
pub async fn claim_retry(
    db: &Db,
    name: &str,
    batch_id: &str,
    lease: &Lease,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let changed = sql(
        "UPDATE webhook_subscriptions SET lease_owner = $1, lease_until = $2 \
         WHERE name = $3 AND batch_id = $4 AND (next_attempt_at IS NULL OR next_attempt_at <= $5) \
         AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until <= $5)",
    )
    .bind(&lease.owner)
    .bind(lease.until)
    .bind(name)
    .bind(batch_id)
    .bind(now)
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(changed > 0)
}

/// Gives up a lease without recording an attempt (the daemon is stopping, or the lease ran too
/// short to send in).
pub async fn release(db: &Db, name: &str, owner: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    release_in(&mut tx, name, owner).await?;
    tx.commit().await
}

/// [`release`] inside a transaction.
pub async fn release_in(tx: &mut Tx, name: &str, owner: &str) -> Result<(), sqlx::Error> {
    sql(
        "UPDATE webhook_subscriptions SET lease_owner = NULL, lease_until = NULL \
         WHERE name = $1 AND lease_owner = $2",
    )
    .bind(name)
    .bind(owner)
    .execute(tx)
    .await
    .map(|_| ())
}

/// In a result's transaction: the row, if `owner` still holds its lease. The caller then
/// checks the batch is still the one it sent (a replay may have replaced it).
pub async fn held(tx: &mut Tx, name: &str, owner: &str) -> Result<Option<Row>, sqlx::Error> {
    sql(concat!(
        "SELECT ",
        columns!(),
        " FROM webhook_subscriptions WHERE name = $1 AND lease_owner = $2"
    ))
    .bind(name)
    .bind(owner)
    .fetch_optional(tx)
    .await
}

/// Records an acknowledged batch: the cursor moves past it and the run of failures ends.
pub async fn acknowledged(
    tx: &mut Tx,
    name: &str,
    batch: &Batch,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sql(
        "UPDATE webhook_subscriptions SET delivered_through = $1, batch_id = NULL, batch_events = NULL, \
         batch_first = NULL, batch_last = NULL, batch_through = NULL, batch_first_tried_at = NULL, \
         attempts = 0, next_attempt_at = NULL, last_success_at = $2, failing_since = NULL, \
         failing_reported_at = NULL, lease_owner = NULL, lease_until = NULL \
         WHERE name = $3 AND batch_id = $4",
    )
    .bind(batch.through)
    .bind(now)
    .bind(name)
    .bind(&batch.id)
    .execute(tx)
    .await
    .map(|_| ())
}

/// What a failed attempt leaves on the row.
pub struct Failed<'a> {
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub error: &'a str,
    pub failing_since: DateTime<Utc>,
    pub reported_at: Option<DateTime<Utc>>,
}

/// Records a failed attempt: the batch stays, due again at `next_attempt_at`.
pub async fn failed(
    tx: &mut Tx,
    name: &str,
    batch: &Batch,
    failed: &Failed<'_>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sql(
        "UPDATE webhook_subscriptions SET attempts = $1, next_attempt_at = $2, last_error = $3, \
         last_error_at = $4, failing_since = $5, failing_reported_at = $6, lease_owner = NULL, \
         lease_until = NULL WHERE name = $7 AND batch_id = $8",
    )
    .bind(failed.attempts)
    .bind(failed.next_attempt_at)
    .bind(failed.error)
    .bind(now)
    .bind(failed.failing_since)
    .bind(failed.reported_at)
    .bind(name)
    .bind(&batch.id)
    .execute(tx)
    .await
    .map(|_| ())
}

/// Puts a subscription's cursor just before `from` and abandons its batch in flight; returns
/// the row as it was. A sender still holding the lease finds its batch gone and records
/// nothing; the next batch waits for its lease to be given up or to run out.
pub async fn replay(
    tx: &mut Tx,
    name: &str,
    from: i64,
    now: DateTime<Utc>,
) -> Result<Row, sqlx::Error> {
    sql(
        "INSERT INTO webhook_subscriptions (name, delivered_through, created_at) \
         SELECT $1, COALESCE(MAX(id), 0), $2 FROM events WHERE true ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let before: Row = sql(concat!(
        "SELECT ",
        columns!(),
        " FROM webhook_subscriptions WHERE name = $1"
    ))
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    sql(
        "UPDATE webhook_subscriptions SET delivered_through = $1, batch_id = NULL, batch_events = NULL, \
         batch_first = NULL, batch_last = NULL, batch_through = NULL, batch_first_tried_at = NULL, \
         attempts = 0, next_attempt_at = NULL WHERE name = $2",
    )
    .bind(from - 1)
    .bind(name)
    .execute(&mut *tx)
    .await?;
    Ok(before)
}
