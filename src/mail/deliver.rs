//! The delivery worker: claims one due outbox row at a time, just before sending it, sends it,
//! and records the result at once (a send is recorded as soon as the server's reply arrives, in
//! its own transaction). A claim lasts `claim_seconds` of real time and the send is cut short
//! before it runs out, so a claim never expires while its holder is still working on the row; a
//! worker that dies leaves the row to be claimed again after that, never lost. Results are
//! recorded only while the claim is still ours.
//!
//! `pool_size` workers send at once over SMTP. Temporary failures retry with exponential backoff
//! and jitter until the row has been failing for `give_up_after_hours`; permanent ones are dead at
//! once, with a `notification_dead` event. When the server cannot be reached, or a connection
//! breaks under a message, the pass stops: only the messages being sent are charged an attempt,
//! the rest wait untouched for the next pass, and the outage is recorded for `casewarden outbox`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::{MailSettings, Mailer, Renderer, SendError, status};
use crate::db::{Db, Tx, sql, sql2};
use crate::events::kinds::{Kind, NotificationDead};
use crate::events::{self, ENGINE};
use crate::sla::Calendars;

macro_rules! due_notification {
    () => {
        "SELECT o.id FROM outbox o WHERE o.status IN ('pending', 'claimed') AND o.next_attempt_at <= $1 \
         ORDER BY o.next_attempt_at, o.id LIMIT $2"
    };
}

/// Notifications due to be sent (or whose claim ran out), through `outbox_due`.
pub const DUE_NOTIFICATIONS: &str = due_notification!();

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub sent: u64,
    pub retried: u64,
    pub dead: u64,
    pub deferred: u64,
    /// The pass stopped because the SMTP server could not be reached (or dropped a message).
    pub unreachable: bool,
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
    pub first_failed_at: Option<DateTime<Utc>>,
    pub calendar: Option<String>,
    /// When this worker's claim runs out; a result is recorded only while the claim is ours.
    #[sqlx(skip)]
    pub claimed_until: Option<DateTime<Utc>>,
}

/// A duration of whole seconds from a value that may come from configuration, never panicking.
fn seconds(n: i64) -> Duration {
    Duration::try_seconds(n).unwrap_or(Duration::MAX)
}

/// Claims the next due row, pending or with a claim that has run out, for at least
/// `claim_seconds` from `now` (to the next whole second after). On PostgreSQL rows another
/// worker is claiming at this moment are skipped, not waited for.
pub async fn claim(
    db: &Db,
    settings: &MailSettings,
    now: DateTime<Utc>,
) -> Result<Option<Claimed>, sqlx::Error> {
    // Whole seconds, so the claim token compares equal on both backends; the extra second makes
    // up for the part of a second cut off `now`.
    let until = crate::clock::truncate(now)
        .checked_add_signed(seconds(settings.claim_seconds.max(1).saturating_add(1)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let mut tx = db.begin().await?;
    let id: Option<(i64,)> = sql2(
        concat!(
            "UPDATE outbox SET status = 'claimed', next_attempt_at = $3, claimed_until = $3 WHERE id = (",
            due_notification!(),
            ") RETURNING id"
        ),
        concat!(
            "UPDATE outbox SET status = 'claimed', next_attempt_at = $3, claimed_until = $3 WHERE id = (",
            due_notification!(),
            " FOR UPDATE SKIP LOCKED) RETURNING id"
        ),
    )
    .bind(now)
    .bind(1_i64)
    .bind(until)
    .fetch_optional(&mut tx)
    .await?;
    let Some((id,)) = id else {
        tx.commit().await?;
        return Ok(None);
    };
    let mut row: Claimed = sql(
        "SELECT o.id, o.case_id, o.escalation_id, o.template, o.recipient_ref, o.recipient_email, o.facts, \
         o.attempts, o.first_failed_at, c.calendar FROM outbox o LEFT JOIN cases c ON c.id = o.case_id WHERE o.id = $1",
    )
    .bind(id)
    .fetch_one(&mut tx)
    .await?;
    tx.commit().await?;
    row.claimed_until = Some(until);
    Ok(Some(row))
}

/// What the workers of one pass share.
struct Pass<'a> {
    db: &'a Db,
    mailer: &'a Mailer,
    renderer: &'a Renderer,
    calendars: &'a Calendars,
    settings: &'a MailSettings,
    /// The pass's time, and the real instant it stands for: claims are made at `now` plus the
    /// time the pass has taken, so they last `claim_seconds` of real time however long it runs.
    now: DateTime<Utc>,
    started: std::time::Instant,
    stop: AtomicBool,
    reached: AtomicBool,
    outcome: Mutex<Outcome>,
}

impl Pass<'_> {
    fn clock(&self) -> DateTime<Utc> {
        let elapsed = Duration::from_std(self.started.elapsed()).unwrap_or(Duration::zero());
        crate::clock::truncate(self.now.checked_add_signed(elapsed).unwrap_or(self.now))
    }

    fn count(&self, f: impl FnOnce(&mut Outcome)) {
        if let Ok(mut o) = self.outcome.lock() {
            f(&mut o);
        }
    }

    /// One worker: claim, send, record, until nothing is due or the pass stops; with `solo`, only
    /// until a message has reached the server.
    async fn work(&self, solo: bool) -> Result<(), sqlx::Error> {
        loop {
            let stopped = self.stop.load(Ordering::SeqCst);
            if stopped || (solo && self.reached.load(Ordering::SeqCst)) {
                return Ok(());
            }
            let Some(row) = claim(self.db, self.settings, self.clock()).await? else {
                return Ok(());
            };
            self.one(row).await?;
        }
    }

    async fn one(&self, row: Claimed) -> Result<(), sqlx::Error> {
        let now = self.clock();
        if let Some(later) = quiet_until(self.settings, self.calendars, &row, now) {
            sql(
                "UPDATE outbox SET status = 'pending', next_attempt_at = $1, claimed_until = NULL \
                 WHERE id = $2 AND status = 'claimed' AND next_attempt_at = $3",
            )
            .bind(later)
            .bind(row.id)
            .bind(row.claimed_until)
            .execute(self.db)
            .await?;
            self.count(|o| o.deferred += 1);
            return Ok(());
        }
        // Finish (or give up) a second before the claim runs out, so nobody else takes the row
        // while it is on the wire.
        let limit = seconds(self.settings.claim_seconds.max(2) - 1)
            .to_std()
            .unwrap_or_default();
        let result = attempt(
            self.mailer,
            self.renderer,
            self.settings,
            &row,
            self.now,
            limit,
        )
        .await;
        let now = self.clock();
        let attempts = row.attempts + 1;
        let mut tx = self.db.begin_write().await?;
        match result {
            Ok(()) => {
                let changed = sql("UPDATE outbox SET status = 'sent', sent_at = $1, attempts = $2, next_attempt_at = NULL, claimed_until = NULL, \
                     last_error = NULL, first_failed_at = NULL WHERE id = $3 AND status = 'claimed' AND next_attempt_at = $4")
                    .bind(now)
                    .bind(attempts)
                    .bind(row.id)
                    .bind(row.claimed_until)
                    .execute(&mut tx)
                    .await?;
                tx.commit().await?;
                if changed > 0 {
                    self.count(|o| o.sent += 1);
                } else {
                    tracing::warn!(
                        outbox_id = row.id,
                        "notification sent after its claim ran out; another worker has the row"
                    );
                }
                if !self.reached.swap(true, Ordering::SeqCst) {
                    status::reached(self.db, now).await?;
                }
            }
            Err(SendError::Permanent(r)) => {
                if dead(
                    &mut tx,
                    &row,
                    attempts,
                    &format!("permanent failure: {r}"),
                    now,
                )
                .await?
                {
                    self.count(|o| o.dead += 1);
                }
                tx.commit().await?;
            }
            Err(e) => {
                let first = row.first_failed_at.unwrap_or(now);
                let give_up = Duration::try_hours(self.settings.give_up_after_hours.max(1))
                    .unwrap_or(Duration::MAX);
                let reason = crate::text::bounded(&e.to_string(), 1000);
                if now.signed_duration_since(first) >= give_up {
                    let hours = now.signed_duration_since(first).num_hours();
                    let why =
                        format!("gave up after {attempts} attempts over {hours} hours: {reason}");
                    if dead(&mut tx, &row, attempts, &why, now).await? {
                        self.count(|o| o.dead += 1);
                    }
                } else {
                    let next = now
                        .checked_add_signed(backoff(self.settings, row.id, attempts))
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                    let changed = sql("UPDATE outbox SET status = 'pending', attempts = $1, next_attempt_at = $2, claimed_until = NULL, \
                         last_error = $3, first_failed_at = $4 WHERE id = $5 AND status = 'claimed' AND next_attempt_at = $6")
                        .bind(attempts)
                        .bind(next)
                        .bind(&reason)
                        .bind(first)
                        .bind(row.id)
                        .bind(row.claimed_until)
                        .execute(&mut tx)
                        .await?;
                    if changed > 0 {
                        self.count(|o| o.retried += 1);
                    }
                    tracing::warn!(outbox_id = row.id, attempts, next = %next.to_rfc3339(), error = %reason, "notification failed; will retry");
                }
                tx.commit().await?;
                if e.is_connection() && !self.stop.swap(true, Ordering::SeqCst) {
                    self.count(|o| o.unreachable = true);
                    tracing::warn!(error = %reason, "SMTP server unreachable: delivery stops for this pass; the messages not tried wait for the next");
                    status::unreachable(self.db, now, &reason).await?;
                }
            }
        }
        Ok(())
    }
}

/// Sends every due notification, `mailer.concurrency()` at a time. Messages go one by one until
/// the server has accepted one, so a server that cannot be reached costs one attempt, not one
/// per connection.
pub async fn run_once(
    db: &Db,
    mailer: &Mailer,
    renderer: &Renderer,
    calendars: &Calendars,
    settings: &MailSettings,
    now: DateTime<Utc>,
) -> Result<Outcome, sqlx::Error> {
    let pass = Pass {
        db,
        mailer,
        renderer,
        calendars,
        settings,
        now,
        started: std::time::Instant::now(),
        stop: AtomicBool::new(false),
        reached: AtomicBool::new(false),
        outcome: Mutex::new(Outcome::default()),
    };
    pass.work(true).await?;
    let workers = (0..mailer.concurrency()).map(|_| pass.work(false));
    for result in futures_util::future::join_all(workers).await {
        result?;
    }
    let outcome = *pass.outcome.lock().unwrap_or_else(|p| p.into_inner());
    Ok(outcome)
}

async fn attempt(
    mailer: &Mailer,
    renderer: &Renderer,
    settings: &MailSettings,
    row: &Claimed,
    now: DateTime<Utc>,
    limit: std::time::Duration,
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
    if let Some(n) = name
        && n.chars()
            .any(|c| c.is_control() || crate::text::is_format(c))
    {
        // Names are checked where they enter; one that is not was written some other way, and
        // is set aside rather than guessed at.
        return Err(SendError::Permanent(format!(
            "the stored recipient name {} is not one line of visible text",
            crate::text::quote(n)
        )));
    }
    let message = mailer.build(row.id, name, email, &rendered, now)?;
    mailer.send(row.id, &message, limit).await
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
        reason: reason.into(),
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
            facts: sqlx::types::Json(serde_json::json!({})),
            attempts: 0,
            first_failed_at: None,
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
