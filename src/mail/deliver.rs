//! The delivery worker: claims due outbox rows in batches, renders and sends each, and records
//! the result. A claim lasts `claim_seconds`: a worker that dies between claim and completion
//! leaves the row to be claimed again after that, never lost. Temporary failures retry with
//! exponential backoff and jitter up to `max_attempts`; permanent ones are dead at once. Each
//! dead row writes a `notification_dead` event.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{MailSettings, Mailer, Renderer, SendError};
use crate::db::{Db, Tx, sql};
use crate::events::{self, ENGINE};
use crate::sla::Calendars;

/// Notifications due to be sent (or whose claim ran out), through `outbox_due`.
pub const DUE_NOTIFICATIONS: &str = "SELECT o.id, o.case_id, o.escalation_id, o.template, o.recipient_ref, o.recipient_email, o.facts, \
     o.attempts, c.calendar FROM outbox o LEFT JOIN cases c ON c.id = o.case_id \
     WHERE o.status IN ('pending', 'claimed') AND o.next_attempt_at <= $1 ORDER BY o.next_attempt_at, o.id LIMIT $2";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub sent: u64,
    pub retried: u64,
    pub dead: u64,
    pub deferred: u64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub case_id: Option<i64>,
    pub escalation_id: Option<i64>,
    pub template: String,
    pub recipient_ref: Option<String>,
    pub recipient_email: Option<String>,
    pub facts: sqlx::types::Json<Value>,
    pub attempts: i64,
    pub calendar: Option<String>,
    /// When this worker's claim runs out; a result is recorded only while the claim is ours.
    #[sqlx(skip)]
    pub claimed_until: Option<DateTime<Utc>>,
}

/// Claims up to `batch` due rows: pending ones whose time has come, and claimed ones whose claim
/// has run out.
pub async fn claim(
    db: &Db,
    settings: &MailSettings,
    now: DateTime<Utc>,
    batch: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let mut tx = db.begin().await?;
    tx.serialise(crate::engine::WRITER_LOCK).await?;
    let mut rows: Vec<Claimed> = sql(DUE_NOTIFICATIONS)
        .bind(now)
        .bind(batch)
        .fetch_all(&mut tx)
        .await?;
    let until = now + Duration::seconds(settings.claim_seconds.max(1));
    for r in &mut rows {
        sql("UPDATE outbox SET status = 'claimed', next_attempt_at = $1, claimed_until = $1 WHERE id = $2")
            .bind(until)
            .bind(r.id)
            .execute(&mut tx)
            .await?;
        r.claimed_until = Some(until);
    }
    tx.commit().await?;
    Ok(rows)
}

/// Sends every due notification, in batches.
pub async fn run_once(
    db: &Db,
    mailer: &Mailer,
    renderer: &Renderer,
    calendars: &Calendars,
    settings: &MailSettings,
    now: DateTime<Utc>,
    batch: i64,
) -> Result<Outcome, sqlx::Error> {
    let mut outcome = Outcome::default();
    loop {
        let rows = claim(db, settings, now, batch).await?;
        if rows.is_empty() {
            return Ok(outcome);
        }
        for row in rows {
            if let Some(later) = quiet_until(settings, calendars, &row, now) {
                sql("UPDATE outbox SET status = 'pending', next_attempt_at = $1, claimed_until = NULL WHERE id = $2 AND status = 'claimed'")
                    .bind(later)
                    .bind(row.id)
                    .execute(db)
                    .await?;
                outcome.deferred += 1;
                continue;
            }
            let result = attempt(mailer, renderer, settings, &row, now).await;
            let mut tx = db.begin().await?;
            tx.serialise(crate::engine::WRITER_LOCK).await?;
            let attempts = row.attempts + 1;
            match result {
                Ok(()) => {
                    sql("UPDATE outbox SET status = 'sent', sent_at = $1, attempts = $2, next_attempt_at = NULL, claimed_until = NULL, last_error = NULL \
                         WHERE id = $3 AND status = 'claimed' AND next_attempt_at = $4")
                        .bind(now)
                        .bind(attempts)
                        .bind(row.id)
                        .bind(row.claimed_until)
                        .execute(&mut tx)
                        .await?;
                    outcome.sent += 1;
                }
                Err(SendError::Temporary(reason)) if attempts < settings.max_attempts => {
                    let next = now + backoff(settings, row.id, attempts);
                    sql("UPDATE outbox SET status = 'pending', attempts = $1, next_attempt_at = $2, claimed_until = NULL, last_error = $3 \
                         WHERE id = $4 AND status = 'claimed' AND next_attempt_at = $5")
                        .bind(attempts)
                        .bind(next)
                        .bind(format!("temporary failure: {reason}"))
                        .bind(row.id)
                        .bind(row.claimed_until)
                        .execute(&mut tx)
                        .await?;
                    outcome.retried += 1;
                    tracing::warn!(outbox_id = row.id, attempts, next = %next.to_rfc3339(), "notification failed; will retry");
                }
                Err(e) => {
                    let reason = match e {
                        SendError::Temporary(r) => {
                            format!("gave up after {attempts} attempts: temporary failure: {r}")
                        }
                        SendError::Permanent(r) => format!("permanent failure: {r}"),
                    };
                    dead(&mut tx, &row, attempts, &reason, now).await?;
                    outcome.dead += 1;
                }
            }
            tx.commit().await?;
        }
    }
}

async fn attempt(
    mailer: &Mailer,
    renderer: &Renderer,
    settings: &MailSettings,
    row: &Claimed,
    now: DateTime<Utc>,
) -> Result<(), SendError> {
    let Some(email) = &row.recipient_email else {
        return Err(SendError::Permanent(
            "the recipient has no e-mail address".to_string(),
        ));
    };
    let rendered = renderer
        .render(&row.template, &row.facts.0, &settings.organisation)
        .map_err(|e| SendError::Permanent(format!("template error: {e}")))?;
    let name = row.facts.0["recipient"]["name"].as_str();
    let message = mailer.build(row.id, name, email, &rendered, now)?;
    mailer.send(row.id, message).await
}

async fn dead(
    tx: &mut Tx,
    row: &Claimed,
    attempts: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
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
        return Ok(());
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
    events::append(tx, case.as_ref().map(|(id, r)| (*id, r.as_str())), now, "notification_dead", ENGINE, json!({
        "outbox_id": row.id, "template": row.template, "recipient": row.recipient_ref, "attempts": attempts, "reason": reason,
    }))
    .await?;
    tracing::warn!(outbox_id = row.id, attempts, "notification dead");
    Ok(())
}

/// Exponential backoff from `retry_base_seconds`, capped at `retry_max_seconds`, with ±20%
/// jitter derived from the row, so retries spread out but a test can predict them.
pub fn backoff(settings: &MailSettings, outbox_id: i64, attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 30) - 1).unwrap_or(0);
    let base = settings
        .retry_base_seconds
        .max(1)
        .saturating_mul(1_i64 << exp)
        .min(settings.retry_max_seconds.max(1));
    let hash = Sha256::digest(format!("{outbox_id}:{attempts}").as_bytes());
    let jitter = i64::from(hash[0]) * 40 / 255 - 20; // -20..=20 percent
    Duration::seconds((base + base * jitter / 100).max(1))
}

/// When quiet hours are on, escalation mail waits for the next working hours of the case's
/// calendar.
fn quiet_until(
    settings: &MailSettings,
    calendars: &Calendars,
    row: &Claimed,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if !settings.quiet_hours || row.escalation_id.is_none() {
        return None;
    }
    let (start, end) = settings.hours().ok()?;
    let cal = calendars.get(row.calendar.as_deref().unwrap_or("england-and-wales"))?;
    let local = now.with_timezone(&chrono_tz::Europe::London);
    let today = local.date_naive();
    if cal.is_working_day(today) && local.time() >= start && local.time() < end {
        return None;
    }
    let day = if cal.is_working_day(today) && local.time() < start {
        today
    } else {
        cal.add_working_days(today, 1)
    };
    let at = day.and_time(start);
    use chrono::TimeZone;
    chrono_tz::Europe::London
        .from_local_datetime(&at)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_with_bounded_jitter_up_to_the_cap() {
        let s = MailSettings {
            retry_base_seconds: 60,
            retry_max_seconds: 3600,
            ..MailSettings::default()
        };
        for (attempt, nominal) in [(1, 60), (2, 120), (3, 240), (4, 480), (7, 3600), (20, 3600)] {
            let d = backoff(&s, 42, attempt).num_seconds();
            assert!(
                d >= nominal * 80 / 100 && d <= nominal * 120 / 100,
                "attempt {attempt}: {d}s vs {nominal}s"
            );
        }
        assert_eq!(
            backoff(&s, 42, 3),
            backoff(&s, 42, 3),
            "the same row and attempt give the same delay"
        );
    }

    #[test]
    fn quiet_hours_hold_escalations_to_the_next_working_morning() {
        let s = MailSettings {
            quiet_hours: true,
            ..MailSettings::default()
        };
        let cals: Calendars = [crate::sla::Calendar::from_closures(
            "england-and-wales",
            Default::default(),
        )]
        .into_iter()
        .collect();
        let row = Claimed {
            id: 1,
            case_id: None,
            escalation_id: Some(1),
            template: "t".into(),
            recipient_ref: None,
            recipient_email: None,
            facts: sqlx::types::Json(json!({})),
            attempts: 0,
            calendar: Some("england-and-wales".into()),
            claimed_until: None,
        };
        let at = |t: &str| crate::clock::parse_time(t).unwrap();
        // Friday evening waits for Monday 09:00; a weekday afternoon goes now.
        assert_eq!(
            quiet_until(&s, &cals, &row, at("2026-01-09T18:00:00Z")),
            Some(at("2026-01-12"))
        );
        assert_eq!(
            quiet_until(&s, &cals, &row, at("2026-01-08T07:00:00Z")),
            Some(at("2026-01-08"))
        );
        assert_eq!(
            quiet_until(&s, &cals, &row, at("2026-01-08T14:00:00Z")),
            None
        );
        let off = MailSettings::default();
        assert_eq!(
            quiet_until(&off, &cals, &row, at("2026-01-09T18:00:00Z")),
            None
        );
    }
}
