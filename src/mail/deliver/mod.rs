//! The delivery workers. Over SMTP a worker claims one due outbox row at a time, just before
//! sending it, sends it, and records the result at once (a send is recorded as soon as the
//! server's reply arrives, in its own transaction). Into files (the file transport) a worker
//! claims a batch of rows, writes their files together and records the batch in one
//! transaction. A claim lasts `claim_seconds` of real time and the send is cut short before it
//! runs out, so a claim never expires while its holder is still working on the row; a worker
//! that dies leaves its rows to be claimed again after that, never lost. Results are recorded
//! only while the claim is still ours.
//!
//! `pool_size` workers send at once over SMTP. Temporary failures retry with exponential backoff
//! and jitter until the row has been failing for `give_up_after_hours`; permanent ones are dead at
//! once, with a `notification_dead` event. When the server cannot be reached, or a connection
//! breaks under a message, the pass stops: only the messages being sent are charged an attempt,
//! the rest wait untouched for the next pass, and the outage is recorded for `casewarden outbox`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

mod claim;
mod record;

pub use claim::{DUE_NOTIFICATIONS, claim, claim_batch};
pub use record::{backoff, gives_up};

use super::message::Outgoing;
use super::{MailSettings, Mailer, Renderer, SendError, status};
use crate::db::Db;
use crate::sla::Calendars;

/// Rows a worker claims at a time when the transport writes files.
const FILE_BATCH: i64 = 100;

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

/// What the workers of one pass share.
struct Pass<'a> {
    db: &'a Db,
    mailer: &'a Arc<Mailer>,
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
    /// until a message has reached the server. Over SMTP a worker claims one row at a time and
    /// records each result as soon as the server answers, so a crash re-sends nothing already
    /// accepted. Into files a worker claims a batch, writes its files at once and records the
    /// batch in one transaction: a crash before that re-writes the same files, harmlessly.
    async fn work(&self, solo: bool) -> Result<(), sqlx::Error> {
        let batch = match self.mailer.writes_files() {
            true => FILE_BATCH,
            false => 1,
        };
        loop {
            let stopped = self.stop.load(Ordering::SeqCst);
            if stopped || (solo && self.reached.load(Ordering::SeqCst)) {
                return Ok(());
            }
            let rows = claim_batch(self.db, self.settings, self.clock(), batch).await?;
            if rows.is_empty() {
                return Ok(());
            }
            self.send(rows).await?;
        }
    }

    /// Renders and builds each row's message off the async threads: rendering is what bounds a
    /// batch written to files, and workers on other cores render theirs at the same time.
    async fn prepare_all(&self, rows: Vec<Claimed>) -> Vec<(Claimed, Result<Outgoing, SendError>)> {
        let (mailer, renderer) = (self.mailer.clone(), self.renderer.clone());
        let (organisation, now) = (self.settings.organisation.clone(), self.now);
        tokio::task::spawn_blocking(move || {
            rows.into_iter()
                .map(|row| {
                    // A defect in rendering fails its own message, not the batch.
                    let message = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        prepare(&mailer, &renderer, &organisation, &row, now)
                    }))
                    .unwrap_or_else(|_| {
                        Err(SendError::Permanent(
                            "casewarden failed while rendering this message (internal error); please report it".into(),
                        ))
                    });
                    (row, message)
                })
                .collect()
        })
        .await
        .expect("the rendering thread is never cancelled")
    }

    /// Sends a claimed batch and records what became of each row in one transaction.
    async fn send(&self, rows: Vec<Claimed>) -> Result<(), sqlx::Error> {
        let now = self.clock();
        let mut deferred = Vec::new();
        let mut ready = Vec::new();
        let mut failures = Vec::new();
        let mut to_send = Vec::new();
        for row in rows {
            match quiet_until(self.settings, self.calendars, &row, now) {
                Some(later) => deferred.push((row, later)),
                None => to_send.push(row),
            }
        }
        for (row, message) in self.prepare_all(to_send).await {
            match message {
                Ok(message) => ready.push((row, message)),
                Err(e) => failures.push((row, e)),
            }
        }
        // Finish (or give up) a second before the claim runs out, so nobody else takes the rows
        // while they are on the wire.
        let limit = seconds(self.settings.claim_seconds.max(2) - 1)
            .to_std()
            .unwrap_or_default();
        let results = self.mailer.send_all(&ready, |r| r.id, limit).await;
        let mut sent = Vec::new();
        for ((row, _), result) in ready.into_iter().zip(results) {
            match result {
                Ok(()) => sent.push(row),
                Err(e) => failures.push((row, e)),
            }
        }
        let now = self.clock();
        let mut tx = self.db.begin_write().await?;
        for (row, later) in &deferred {
            record::defer(&mut tx, row, *later).await?;
        }
        let ids: Vec<i64> = sent.iter().map(|r| r.id).collect();
        let claim = sent.first().and_then(|r| r.claimed_until);
        let recorded = record::sent(&mut tx, &ids, claim, now).await?;
        let mut unreachable = None;
        for (row, error) in &failures {
            match record::failed(&mut tx, self.settings, row, error, now).await? {
                record::Failed::Retried => self.count(|o| o.retried += 1),
                record::Failed::Dead => self.count(|o| o.dead += 1),
                record::Failed::Lost => {}
            }
            if error.is_connection() {
                unreachable = Some(crate::text::bounded(&error.to_string(), 1000));
            }
        }
        tx.commit().await?;
        self.count(|o| {
            o.deferred += deferred.len() as u64;
            o.sent += recorded;
        });
        if recorded < ids.len() as u64 {
            tracing::warn!(
                lost = ids.len() as u64 - recorded,
                "notifications sent after their claim ran out; another worker has the rows"
            );
        }
        if !sent.is_empty() && !self.reached.swap(true, Ordering::SeqCst) {
            status::reached(self.db, now).await?;
        }
        if let Some(reason) = unreachable
            && !self.stop.swap(true, Ordering::SeqCst)
        {
            self.count(|o| o.unreachable = true);
            tracing::warn!(error = %reason, "SMTP server unreachable: delivery stops for this pass; the messages not tried wait for the next");
            status::unreachable(self.db, now, &reason).await?;
        }
        Ok(())
    }
}

/// Sends every due notification, `mailer.concurrency()` at a time. Messages go one by one until
/// the server has accepted one, so a server that cannot be reached costs one attempt, not one
/// per connection.
pub async fn run_once(
    db: &Db,
    mailer: &Arc<Mailer>,
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

/// Renders and builds the message for one row.
fn prepare(
    mailer: &Mailer,
    renderer: &Renderer,
    organisation: &str,
    row: &Claimed,
    now: DateTime<Utc>,
) -> Result<Outgoing, SendError> {
    let Some(email) = &row.recipient_email else {
        return Err(SendError::Permanent(
            "the recipient has no e-mail address".to_string(),
        ));
    };
    let rendered = renderer
        .render(&row.template, &row.facts.0, organisation)
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
    mailer.build(row.id, name, email, &rendered, now)
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
mod tests;
