//! The append-only event log: every change of state writes one row, in the same transaction as
//! the change. CRMs follow it by id; it is each case's audit trail.

mod amend;
mod duties;
pub mod kinds;
mod system;
mod tasks;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::db::{Ex, HeldEvent, Sql, Tx, rows_per_statement, sql};

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

/// Records one event, its `kind` and `data` written from its type, in the transaction that made
/// the change: the one way the engine writes to the log, so every event fits the contract. A
/// transaction that holds its events back (see [`Tx::hold_events`]) keeps it, in order, until
/// [`write_held`] writes them all.
pub async fn record(
    tx: &mut Tx,
    case: Option<(i64, &str)>,
    at: DateTime<Utc>,
    actor: &str,
    event: kinds::Kind,
) -> Result<(), sqlx::Error> {
    if let Some(held) = tx.held_events() {
        held.push(Pending::new(case, at, actor, event).row());
        return Ok(());
    }
    let (kind, data) = split(&event);
    append(tx, case, at, &kind, actor, data).await
}

/// An event still to be appended: its case, time, actor and kind, as [`record`] takes them.
pub struct Pending<'a> {
    pub case: Option<(i64, &'a str)>,
    pub at: DateTime<Utc>,
    pub actor: &'a str,
    pub event: kinds::Kind,
}

impl<'a> Pending<'a> {
    pub fn new(
        case: Option<(i64, &'a str)>,
        at: DateTime<Utc>,
        actor: &'a str,
        event: kinds::Kind,
    ) -> Pending<'a> {
        Pending {
            case,
            at,
            actor,
            event,
        }
    }

    /// The row it is written as.
    fn row(&self) -> HeldEvent {
        let (kind, data) = split(&self.event);
        HeldEvent {
            case_id: self.case.map(|c| c.0),
            case_ref: self.case.map(|c| c.1.to_string()),
            at: self.at,
            kind,
            actor: self.actor.to_string(),
            data,
        }
    }
}

/// Records events in the order given, with ids ascending in that order: [`record`] for a batch,
/// in as few multi-row statements as the number of bound values allows.
pub async fn record_all(tx: &mut Tx, events: &[Pending<'_>]) -> Result<(), sqlx::Error> {
    let rows = events.iter().map(Pending::row);
    match tx.held_events() {
        Some(held) => held.extend(rows),
        None => {
            insert(tx, rows.collect(), false).await?;
        }
    }
    Ok(())
}

/// Writes the events `tx` holds back (see [`Tx::hold_events`]), in the order they were recorded,
/// in as few multi-row statements as the number of bound values allows; gives their ids, in the
/// same order. Each statement's ids ascend in the order of its rows, and the transaction holds
/// the writers' lock, so no other event comes between them.
pub async fn write_held(tx: &mut Tx) -> Result<Vec<i64>, sqlx::Error> {
    let held = tx.take_held();
    insert(tx, held, true).await
}

/// Inserts event rows in order, in as few multi-row statements as the number of bound values
/// allows; with `returning`, gives their ids in the same order.
async fn insert(
    tx: &mut Tx,
    mut rows: Vec<HeldEvent>,
    returning: bool,
) -> Result<Vec<i64>, sqlx::Error> {
    let mut ids = Vec::with_capacity(if returning { rows.len() } else { 0 });
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(rows_per_statement(6)));
        let chunk = std::mem::replace(&mut rows, rest);
        let mut insert = Sql::sized(|marks| {
            format!(
                "INSERT INTO events (case_id, case_ref, at, kind, actor, data) VALUES {}{}",
                marks.values(chunk.len(), 6, 1),
                if returning { " RETURNING id" } else { "" }
            )
        });
        for e in chunk {
            insert = insert
                .bind(e.case_id)
                .bind(e.case_ref)
                .bind(e.at)
                .bind(e.kind)
                .bind(e.actor)
                .bind(e.data);
        }
        if !returning {
            insert.execute(&mut *tx).await?;
            continue;
        }
        let mut written: Vec<(i64,)> = insert.fetch_all(&mut *tx).await?;
        // RETURNING promises no order; the ids themselves ascend in the order of the rows.
        written.sort_unstable();
        ids.extend(written.into_iter().map(|(id,)| id));
    }
    Ok(ids)
}

/// An event's `kind` name and its `data`, as serde writes the adjacently tagged [`kinds::Kind`].
fn split(event: &kinds::Kind) -> (String, Value) {
    let Ok(Value::Object(mut tagged)) = serde_json::to_value(event) else {
        unreachable!("an event kind serialises to an object");
    };
    let Some(Value::String(kind)) = tagged.remove("kind") else {
        unreachable!("an event kind has its tag");
    };
    (kind, tagged.remove("data").unwrap_or(Value::Null))
}

/// Appends one event.
async fn append(
    tx: &mut Tx,
    case: Option<(i64, &str)>,
    at: DateTime<Utc>,
    kind: &str,
    actor: &str,
    data: Value,
) -> Result<(), sqlx::Error> {
    sql("INSERT INTO events (case_id, case_ref, at, kind, actor, data) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(case.map(|c| c.0))
        .bind(case.map(|c| c.1))
        .bind(at)
        .bind(kind)
        .bind(actor)
        .bind(data)
        .execute(tx)
        .await?;
    Ok(())
}

/// A case's events in order.
pub async fn for_case<'a>(on: impl Into<Ex<'a>>, case_id: i64) -> Result<Vec<Event>, sqlx::Error> {
    sql("SELECT id, case_ref, at, kind, actor, data FROM events WHERE case_id = $1 ORDER BY id")
        .bind(case_id)
        .fetch_all(on)
        .await
}

/// Events with ids from `first` to `last`, in order: a command's, from its inbox row's range.
pub async fn between<'a>(
    on: impl Into<Ex<'a>>,
    first: i64,
    last: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    sql("SELECT id, case_ref, at, kind, actor, data FROM events WHERE id >= $1 AND id <= $2 ORDER BY id")
        .bind(first)
        .bind(last)
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

#[cfg(test)]
mod tests {
    use super::kinds::{CommandRejected, Kind, RuleError};
    use super::split;
    use serde_json::json;

    #[test]
    fn an_event_splits_into_its_kind_name_and_its_data_as_written() {
        let rejected = Kind::CommandRejected(CommandRejected {
            inbox_id: 7,
            command_type: None,
            command_id: Some("c1".into()),
            case_ref: None,
            reason: "bad".into(),
        });
        assert_eq!(
            split(&rejected),
            (
                "command_rejected".to_string(),
                json!({"inbox_id": 7, "type": null, "command_id": "c1", "case_ref": null, "reason": "bad"})
            )
        );
    }

    #[test]
    fn the_kind_names_are_those_events_are_written_with_and_no_others() {
        let names = super::kinds::names();
        let rejected = Kind::CommandRejected(CommandRejected {
            inbox_id: 1,
            command_type: None,
            command_id: None,
            case_ref: None,
            reason: "r".into(),
        });
        assert!(names.contains(&split(&rejected).0));
        for name in ["case_created", "sla_follow_on", "api_client_revoked"] {
            assert!(
                names.iter().any(|n| n == name),
                "{name} missing from {names:?}"
            );
        }
        assert!(!names.iter().any(|n| n == "CaseCreated" || n == "kind"));
        let mut distinct = names.to_vec();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), names.len());
    }

    #[test]
    fn an_absent_optional_field_stays_absent_and_a_null_one_stays_null() {
        let error = |rule_version| {
            Kind::RuleError(RuleError {
                rule: Some("r".into()),
                rule_version,
                message: "m".into(),
                during: super::kinds::During::Allocation,
                fallback: None,
                item: None,
                expression: None,
                consequence: None,
            })
        };
        let (kind, absent) = split(&error(None));
        assert_eq!(kind, "rule_error");
        assert_eq!(
            absent,
            json!({"rule": "r", "message": "m", "during": "allocation"})
        );
        let (_, null) = split(&error(Some(None)));
        assert_eq!(null["rule_version"], json!(null));
    }
}
