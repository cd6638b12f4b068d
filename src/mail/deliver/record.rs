//! Recording what became of claimed rows: sent, held to working hours, retried or dead. Every
//! update holds only while the claim is still ours (`status = 'claimed'` and the claim's token
//! in `next_attempt_at`); a row whose claim ran out belongs to whoever claimed it next.

use chrono::{DateTime, Duration, Utc};

use super::{Claimed, seconds};
use crate::db::{Sql, Tx, sql};
use crate::events::kinds::{Kind, NotificationDead};
use crate::events::{self, ENGINE};
use crate::mail::{MailSettings, SendError};

/// What recording a failed attempt did.
pub enum Failed {
    Retried,
    Dead,
    /// The claim had run out: another worker has the row.
    Lost,
}

/// Holds an escalation to the next working hours.
pub async fn defer(tx: &mut Tx, row: &Claimed, later: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    sql(
        "UPDATE outbox SET status = 'pending', next_attempt_at = $1, claimed_until = NULL \
         WHERE id = $2 AND status = 'claimed' AND next_attempt_at = $3",
    )
    .bind(later)
    .bind(row.id)
    .bind(row.claimed_until)
    .execute(&mut *tx)
    .await
}

/// Marks rows of one claim sent; returns how many were still ours.
pub async fn sent(
    tx: &mut Tx,
    ids: &[i64],
    claimed_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    if ids.is_empty() {
        return Ok(0);
    }
    let text = format!(
        "UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, next_attempt_at = NULL, \
         claimed_until = NULL, last_error = NULL, first_failed_at = NULL \
         WHERE status = 'claimed' AND next_attempt_at = $2 AND id IN {}",
        crate::db::list(ids.len(), 3)
    );
    Sql::built(text.clone(), text)
        .bind(now)
        .bind(claimed_until)
        .bind_all(ids.iter().copied())
        .execute(&mut *tx)
        .await
}

/// Records a failed attempt: dead when permanent or failing for longer than
/// `give_up_after_hours`, otherwise pending again after the backoff.
pub async fn failed(
    tx: &mut Tx,
    settings: &MailSettings,
    row: &Claimed,
    error: &SendError,
    now: DateTime<Utc>,
) -> Result<Failed, sqlx::Error> {
    let attempts = row.attempts + 1;
    let first = row.first_failed_at.unwrap_or(now);
    let reason = crate::text::bounded(&error.to_string(), 1000);
    let give_up_why = match error {
        SendError::Permanent(r) => Some(format!("permanent failure: {r}")),
        _ if gives_up(settings, first, now) => {
            let hours = now.signed_duration_since(first).num_hours();
            Some(format!(
                "gave up after {attempts} attempts over {hours} hours: {reason}"
            ))
        }
        _ => None,
    };
    if let Some(why) = give_up_why {
        return Ok(match dead(tx, row, attempts, &why, now).await? {
            true => Failed::Dead,
            false => Failed::Lost,
        });
    }
    let next = now
        .checked_add_signed(backoff(settings, row.id, attempts))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let changed = sql("UPDATE outbox SET status = 'pending', attempts = $1, next_attempt_at = $2, claimed_until = NULL, \
         last_error = $3, first_failed_at = $4 WHERE id = $5 AND status = 'claimed' AND next_attempt_at = $6")
        .bind(attempts)
        .bind(next)
        .bind(&reason)
        .bind(first)
        .bind(row.id)
        .bind(row.claimed_until)
        .execute(&mut *tx)
        .await?;
    tracing::warn!(outbox_id = row.id, attempts, next = %next.to_rfc3339(), error = %reason, "notification failed; will retry");
    Ok(if changed > 0 {
        Failed::Retried
    } else {
        Failed::Lost
    })
}

/// Whether a temporary failure at `now` of a row failing since `first` is its last: the row has
/// been failing for `give_up_after_hours`.
pub fn gives_up(settings: &MailSettings, first: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    let give_up = Duration::try_hours(settings.give_up_after_hours.max(1)).unwrap_or(Duration::MAX);
    now.signed_duration_since(first) >= give_up
}

/// Marks the row dead with an event, if the claim is still ours; says whether it was.
async fn dead(
    tx: &mut Tx,
    row: &Claimed,
    attempts: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let changed = sql(
        "UPDATE outbox SET status = 'dead', attempts = $1, next_attempt_at = NULL, claimed_until = NULL, last_error = $2 \
         WHERE id = $3 AND status = 'claimed' AND next_attempt_at = $4",
    )
    .bind(attempts)
    .bind(reason)
    .bind(row.id)
    .bind(row.claimed_until)
    .execute(&mut *tx)
    .await?;
    if changed == 0 {
        // Our claim ran out and another worker has the row now: its outcome is theirs to record.
        return Ok(false);
    }
    let case = match row.case_id {
        Some(id) => {
            sql("SELECT id, case_ref FROM cases WHERE id = $1")
                .bind(id)
                .fetch_optional::<(i64, String)>(&mut *tx)
                .await?
        }
        None => None,
    };
    let dead = Kind::NotificationDead(NotificationDead {
        outbox_id: row.id,
        template: row.template.clone(),
        recipient: row.recipient_ref.clone(),
        attempts,
        // A server's answer may quote the address: the log names the recipient by ref only.
        reason: crate::text::redact_addresses(reason),
    });
    let at = case.as_ref().map(|(id, r)| (*id, r.as_str()));
    events::record(tx, at, now, ENGINE, dead).await?;
    tracing::warn!(outbox_id = row.id, attempts, reason, "notification dead");
    Ok(true)
}

/// Exponential backoff from `retry_base_seconds`, capped at `retry_max_seconds`, with ±20%
/// jitter derived from the row, so retries spread out but a test can predict them.
pub fn backoff(settings: &MailSettings, outbox_id: i64, attempts: i64) -> Duration {
    seconds(crate::backoff::seconds(
        settings.retry_base_seconds,
        settings.retry_max_seconds,
        &outbox_id.to_string(),
        attempts,
    ))
}
