//! Claiming due outbox rows: one at a time for SMTP, a batch at a time for the file transport.

use chrono::{DateTime, Utc};

use super::{Claimed, seconds};
use crate::db::{Db, Sql, sql2};
use crate::mail::MailSettings;

macro_rules! due_notification {
    () => {
        "SELECT o.id FROM outbox o WHERE o.status IN ('pending', 'claimed') AND o.next_attempt_at <= $1 \
         ORDER BY o.next_attempt_at, o.id LIMIT $2"
    };
}

/// Notifications due to be sent (or whose claim ran out), through `outbox_due`.
pub const DUE_NOTIFICATIONS: &str = due_notification!();

const CLAIMED: &str = "SELECT o.id, o.case_id, o.escalation_id, o.template, o.recipient_ref, o.recipient_email, o.facts, \
     o.attempts, o.first_failed_at, c.calendar FROM outbox o LEFT JOIN cases c ON c.id = o.case_id WHERE o.id IN ";

/// Claims the next due row, pending or with a claim that has run out, for at least
/// `claim_seconds` from `now` (to the next whole second after). On PostgreSQL rows another
/// worker is claiming at this moment are skipped, not waited for.
pub async fn claim(
    db: &Db,
    settings: &MailSettings,
    now: DateTime<Utc>,
) -> Result<Option<Claimed>, sqlx::Error> {
    Ok(claim_batch(db, settings, now, 1).await?.pop())
}

/// Claims up to `n` due rows, oldest first, as [`claim`] claims one: they share one claim, which
/// runs out at the same time for all of them.
pub async fn claim_batch(
    db: &Db,
    settings: &MailSettings,
    now: DateTime<Utc>,
    n: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    // Whole seconds, so the claim token compares equal on both backends; the extra second makes
    // up for the part of a second cut off `now`.
    let until = crate::clock::truncate(now)
        .checked_add_signed(seconds(settings.claim_seconds.max(1).saturating_add(1)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    // Not the writers' lock: claims never wait for a pass's writes on PostgreSQL.
    let mut tx = db.begin().await?;
    let ids: Vec<(i64,)> = sql2(
        due_notification!(),
        concat!(due_notification!(), " FOR UPDATE SKIP LOCKED"),
    )
    .bind(now)
    .bind(n.max(1))
    .fetch_all(&mut tx)
    .await?;
    if ids.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = ids.into_iter().map(|(id,)| id).collect();
    let set = format!(
        "UPDATE outbox SET status = 'claimed', next_attempt_at = $1, claimed_until = $1 WHERE id IN {}",
        crate::db::list(ids.len(), 2)
    );
    Sql::built(set.clone(), set)
        .bind(until)
        .bind_all(ids.iter().copied())
        .execute(&mut tx)
        .await?;
    let read = format!("{CLAIMED}{}", crate::db::list(ids.len(), 1));
    let mut rows: Vec<Claimed> = Sql::built(read.clone(), read)
        .bind_all(ids.iter().copied())
        .fetch_all(&mut tx)
        .await?;
    tx.commit().await?;
    // Sent in the order they fell due.
    rows.sort_by_key(|r| ids.iter().position(|id| *id == r.id));
    for row in &mut rows {
        row.claimed_until = Some(until);
    }
    Ok(rows)
}
