//! The outbox: notifications to send, written in the same transaction as the change that asked
//! for them. Delivery reads it; nothing here sends anything.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::{RawValue, to_raw_value};
use serde_json::{Value, json};

use crate::db::{Sql, Tx, rows_per_statement};

/// One addressee of a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Addressee {
    /// `user` or `contact`; `none` when the recipient named nobody.
    pub kind: &'static str,
    pub reference: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Why there is no address, when there is none.
    pub problem: Option<String>,
}

/// Writes one notification per addressee. An addressee without an e-mail address is written as
/// `dead` with the reason, so it is on record rather than skipped.
pub async fn enqueue(
    tx: &mut Tx,
    case_id: i64,
    escalation_id: Option<i64>,
    template: &str,
    to: &[Addressee],
    facts: &Value,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let rows = notifications(case_id, escalation_id, template, to, facts, now);
    insert(tx, rows).await
}

/// One outbox row, as [`enqueue`] writes it.
#[derive(Debug, Clone)]
pub struct Notification {
    case_id: i64,
    escalation_id: Option<i64>,
    template: String,
    recipient_kind: &'static str,
    recipient_ref: Option<String>,
    recipient_email: Option<String>,
    /// Encoded when the row is made: a batch makes its rows before its write transaction.
    facts: Box<RawValue>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
}

/// The rows of a notification to `to`: one per addressee, its facts naming the recipient.
pub fn notifications(
    case_id: i64,
    escalation_id: Option<i64>,
    template: &str,
    to: &[Addressee],
    facts: &Value,
    now: DateTime<Utc>,
) -> Vec<Notification> {
    match to {
        [] => Vec::new(),
        _ => notifications_from(case_id, escalation_id, template, to, facts.clone(), now),
    }
}

/// [`notifications`], taking the facts: the last addressee's row gets them, not a copy.
pub fn notifications_from(
    case_id: i64,
    escalation_id: Option<i64>,
    template: &str,
    to: &[Addressee],
    facts: Value,
    now: DateTime<Utc>,
) -> Vec<Notification> {
    let mut facts = facts;
    to.iter()
        .enumerate()
        .map(|(i, a)| {
            let mut facts = match i + 1 == to.len() {
                true => std::mem::take(&mut facts),
                false => facts.clone(),
            };
            facts["recipient"] = json!({"kind": a.kind, "ref": a.reference, "name": a.name});
            let facts = to_raw_value(&facts).expect("a JSON value encodes");
            Notification {
                case_id,
                escalation_id,
                template: template.to_string(),
                recipient_kind: a.kind,
                recipient_ref: a.reference.clone(),
                recipient_email: a.email.clone(),
                facts,
                last_error: a.problem.clone(),
                created_at: now,
            }
        })
        .collect()
}

impl Notification {
    /// The row, as the notification of escalation `id`.
    pub fn of_escalation(self, id: i64) -> Notification {
        Notification {
            escalation_id: Some(id),
            ..self
        }
    }
}

/// Writes notification rows in the order given, in as few multi-row statements as the number
/// of bound values allows; returns how many.
pub async fn insert(tx: &mut Tx, rows: Vec<Notification>) -> Result<u64, sqlx::Error> {
    let written = rows.len() as u64;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Notification> = rows.by_ref().take(rows_per_statement(11)).collect();
        let mut insert = Sql::sized(|marks| {
            format!(
                "INSERT INTO outbox (case_id, escalation_id, template, recipient_kind, recipient_ref, recipient_email, \
                 facts, status, next_attempt_at, last_error, created_at) VALUES {}",
                marks.values(chunk.len(), 11, 1)
            )
        });
        for n in chunk {
            let sendable = n.recipient_email.is_some();
            insert = insert
                .bind(n.case_id)
                .bind(n.escalation_id)
                .bind(n.template)
                .bind(n.recipient_kind)
                .bind(n.recipient_ref)
                .bind(n.recipient_email)
                .bind(n.facts)
                .bind(if sendable { "pending" } else { "dead" })
                .bind(sendable.then_some(n.created_at))
                .bind(n.last_error)
                .bind(n.created_at);
        }
        insert.execute(&mut *tx).await?;
    }
    Ok(written)
}
