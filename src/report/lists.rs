//! The lists the read-only commands show: the inbox (`inbox`), the cases waiting for a decision
//! and the outbox (`outbox`), and retrying a dead notification from it.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::format::when;
use crate::db::{Db, sql};
use crate::events::kinds::{Kind, NotificationRequeued};
use crate::states::OutboxStatus;
use crate::text::terminal as t;

#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct InboxRow {
    pub id: i64,
    pub status: crate::states::InboxStatus,
    pub command_type: Option<String>,
    pub command_id: Option<String>,
    pub case_ref: Option<String>,
    pub reason: Option<String>,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    /// The API client that submitted the command; none for the table or `submit`.
    pub client: Option<String>,
    /// The events processing the row wrote, first to last id; none when it wrote none.
    pub first_event_id: Option<i64>,
    pub last_event_id: Option<i64>,
}

/// The most recent inbox rows (only rejected ones if asked), oldest first.
pub async fn inbox(db: &Db, rejected_only: bool, limit: i64) -> Result<Vec<InboxRow>, sqlx::Error> {
    let mut rows: Vec<InboxRow> = sql(
        "SELECT id, status, command_type, command_id, case_ref, reason, received_at, processed_at, client, \
         first_event_id, last_event_id FROM inbox WHERE (status = 'rejected' OR NOT $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(rejected_only)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.reverse();
    Ok(rows)
}

pub fn inbox_text(rows: &[InboxRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let _ = write!(
            out,
            "#{:<6} {:<9} {:<21} {:<14} {:<12} {}{}",
            r.id,
            t(r.status.as_str()),
            t(r.command_type.as_deref().unwrap_or("?")),
            t(r.case_ref.as_deref().unwrap_or("-")),
            t(r.client.as_deref().unwrap_or("-")),
            when(Some(r.received_at)),
            events_written(r.first_event_id, r.last_event_id)
        );
        if let Some(reason) = &r.reason {
            let _ = write!(out, "\n        reason: {}", t(reason));
        }
        let _ = writeln!(out);
    }
    if rows.is_empty() {
        out.push_str("(no commands)\n");
    }
    out
}

/// The events a row's processing wrote, as the text listing ends it.
fn events_written(first: Option<i64>, last: Option<i64>) -> String {
    match (first, last) {
        (Some(first), Some(last)) if first == last => format!("  event {first}"),
        (Some(first), Some(last)) => format!("  events {first}-{last}"),
        _ => String::new(),
    }
}

/// A case waiting for the CRM to choose its next stage (`advance_case`).
#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct DecisionRow {
    pub case_ref: String,
    pub case_kind: String,
    pub scheme: Option<String>,
    pub country: String,
    pub owner: Option<String>,
    pub queue_role: Option<String>,
    /// The stage the case completed last.
    pub after_stage: String,
    /// When that stage was completed.
    pub since: Option<DateTime<Utc>>,
    /// The `advance_needed` event's data: the stages the case may go to.
    #[schemars(with = "Option<crate::events::kinds::AdvanceNeeded>")]
    pub decision: Option<sqlx::types::Json<serde_json::Value>>,
}

/// Every case waiting for a decision, through the `worklist_decisions` view, longest waiting
/// first.
pub async fn decisions(db: &Db) -> Result<Vec<DecisionRow>, sqlx::Error> {
    sql("SELECT case_ref, case_kind, scheme, country, owner, queue_role, after_stage, since, decision          FROM worklist_decisions ORDER BY since, case_ref")
    .fetch_all(db)
    .await
}

#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub case_ref: Option<String>,
    pub template: String,
    pub recipient_ref: Option<String>,
    pub recipient_email: Option<String>,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// The most recent notifications, optionally in one state, oldest first.
pub async fn outbox(
    db: &Db,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    let mut rows: Vec<OutboxRow> = sql(
        "SELECT o.id, c.case_ref, o.template, o.recipient_ref, o.recipient_email, o.status, o.attempts, \
         o.next_attempt_at, o.last_error, o.created_at, o.sent_at FROM outbox o LEFT JOIN cases c ON c.id = o.case_id \
         WHERE (o.status = $1 OR $1 IS NULL) ORDER BY o.id DESC LIMIT $2",
    )
    .bind(status)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.reverse();
    Ok(rows)
}

pub fn outbox_text(rows: &[OutboxRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let when = match r.status.as_str() {
            "sent" => format!("sent {}", when(r.sent_at)),
            "dead" => "dead".to_string(),
            _ => format!("next attempt {}", when(r.next_attempt_at)),
        };
        let _ = write!(
            out,
            "#{:<6} {:<8} {:<18} {:<12} {:<12} attempts {:<2} {when}",
            r.id,
            t(r.status.as_str()),
            t(&r.template),
            t(r.case_ref.as_deref().unwrap_or("-")),
            t(r.recipient_ref.as_deref().unwrap_or("-")),
            r.attempts
        );
        if let Some(e) = &r.last_error {
            let _ = write!(out, "\n        last error: {}", t(e));
        }
        let _ = writeln!(out);
    }
    if rows.is_empty() {
        out.push_str("(no notifications)\n");
    }
    out
}

/// Why a notification could not be requeued.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("there is no notification {0}")]
    Unknown(i64),
    #[error("notification {id} is {status}, not dead; only dead ones can be retried")]
    NotDead { id: i64, status: OutboxStatus },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Puts a dead notification back in the queue, due at `now`, with an event saying who did so.
pub async fn retry_notification(
    db: &Db,
    id: i64,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<(), RetryError> {
    let mut tx = db.begin_write().await?;
    let row: Option<(OutboxStatus, Option<i64>, Option<String>)> = sql(
        "SELECT o.status, o.case_id, c.case_ref FROM outbox o LEFT JOIN cases c ON c.id = o.case_id WHERE o.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut tx)
    .await?;
    match row {
        None => return Err(RetryError::Unknown(id)),
        Some((status, _, _)) if status != OutboxStatus::Dead => {
            return Err(RetryError::NotDead { id, status });
        }
        Some((_, case_id, case_ref)) => {
            sql("UPDATE outbox SET status = 'pending', attempts = 0, first_failed_at = NULL, next_attempt_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut tx)
                .await?;
            let case = case_id.zip(case_ref);
            let requeued = Kind::NotificationRequeued(NotificationRequeued { outbox_id: id });
            let at = case.as_ref().map(|(i, r)| (*i, r.as_str()));
            crate::events::record(&mut tx, at, now, actor, requeued).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::events_written;

    #[test]
    fn an_inbox_line_ends_with_the_event_its_row_wrote_the_range_of_them_or_nothing() {
        assert_eq!(events_written(Some(7), Some(7)), "  event 7");
        assert_eq!(events_written(Some(7), Some(12)), "  events 7-12");
        assert_eq!(events_written(None, None), "");
    }
}
