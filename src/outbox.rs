//! The outbox: notifications to send, written in the same transaction as the change that asked
//! for them. Delivery reads it; nothing here sends anything.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::db::{Tx, sql};

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
    let mut written = 0;
    for a in to {
        let mut facts = facts.clone();
        facts["recipient"] = json!({"kind": a.kind, "ref": a.reference, "name": a.name});
        let status = if a.email.is_some() { "pending" } else { "dead" };
        sql("INSERT INTO outbox (case_id, escalation_id, template, recipient_kind, recipient_ref, recipient_email, \
             facts, status, next_attempt_at, last_error, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
            .bind(case_id)
            .bind(escalation_id)
            .bind(template)
            .bind(a.kind)
            .bind(a.reference.as_deref())
            .bind(a.email.as_deref())
            .bind(facts)
            .bind(status)
            .bind(a.email.is_some().then_some(now))
            .bind(a.problem.as_deref())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        written += 1;
    }
    Ok(written)
}
