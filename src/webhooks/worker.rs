//! The delivery loop of one subscription: fix the next batch (or take up the one in flight),
//! lease it, send it with no transaction open, record the answer, and wait for more events, for
//! the retry time, or for the daemon to stop.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Subscription;
use super::send::{self, Attempt, Failure};
use super::store::{self, Batch, Lease};
use crate::db::Db;
use crate::events::kinds::{Kind, WebhookFailing, WebhookRecovered};
use crate::events::{self, ENGINE};

/// How often a subscription looks for events when nothing wakes it: events written by another
/// instance or process, and replays, are picked up within this.
const POLL: StdDuration = StdDuration::from_secs(5);

/// How long a lease lasts beyond the request's time limit: time to read the batch's events
/// before and to record the answer after. A daemon killed mid-request holds up its subscription
/// for at most the time limit and this.
pub const LEASE_MARGIN_SECONDS: i64 = 10;

/// What to do after one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Look again at once: a batch was acknowledged, or the row changed under us.
    Now,
    /// Nothing more is due before this time.
    At(DateTime<Utc>),
    /// Up to date: wait for a pass or the poll.
    Poll,
    /// The daemon is stopping.
    Stop,
}

pub(super) struct Worker {
    pub db: Db,
    /// This daemon's name on the leases it takes.
    pub owner: String,
    pub sub: Subscription,
}

impl Worker {
    pub async fn run(self, mut passes: watch::Receiver<u64>, stop: CancellationToken) {
        let name = self.sub.settings.name.clone();
        let mut passes_open = true;
        loop {
            if stop.is_cancelled() {
                break;
            }
            let next = match self.step(&stop).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(webhook = %name, error = %e, "webhook delivery could not read or record its state; it tries again in 5 s");
                    Next::At(crate::clock::now() + Duration::seconds(5))
                }
            };
            let wait = match next {
                Next::Now => continue,
                Next::Stop => break,
                Next::Poll => POLL,
                Next::At(at) => (at - Utc::now()).to_std().unwrap_or_default().min(POLL),
            };
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                changed = passes.changed(), if passes_open => passes_open = changed.is_ok(),
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::debug!(webhook = %name, "webhook delivery stopped");
    }

    /// One step: send the batch that is due, or move past events the subscription does not want.
    async fn step(&self, stop: &CancellationToken) -> Result<Next, sqlx::Error> {
        let (db, settings) = (&self.db, &self.sub.settings);
        let now = crate::clock::now();
        let row = store::ensure(db, &settings.name, now).await?;
        if let Some(until) = store::leased_to_another(&row, &self.owner, now) {
            return Ok(Next::At(until));
        }
        let lease = Lease {
            owner: self.owner.clone(),
            until: now + Duration::seconds(settings.timeout_seconds + LEASE_MARGIN_SECONDS),
        };
        // When the row changed between our read and our claim, someone else moved it: look again
        // shortly, not at once, so two instances never spin against each other.
        let shortly = Next::At(now + Duration::seconds(1));
        let batch = match Batch::of(&row) {
            Some(batch) => {
                if let Some(at) = row.next_attempt_at.filter(|at| *at > now) {
                    return Ok(Next::At(at));
                }
                if !store::claim_retry(db, &settings.name, &batch.id, &lease, now).await? {
                    return Ok(shortly);
                }
                batch
            }
            None => {
                let head = store::head(db).await?;
                if head <= row.delivered_through {
                    return Ok(Next::Poll);
                }
                let after = row.delivered_through;
                let size = settings.batch_size;
                let ids = store::matching_ids(db, &self.sub.filter, after, head, size).await?;
                let Some(&last) = ids.last() else {
                    store::pass_over(db, &row, head).await?;
                    return Ok(Next::Poll);
                };
                // A full batch ends at its last event; a short one covers every event up to the
                // head, so the cursor also moves past those the subscription does not want.
                let through = if ids.len() as i64 == size { last } else { head };
                let batch = Batch {
                    id: new_webhook_id(),
                    events: ids,
                    through,
                };
                if !store::claim_new(db, &row, &batch, &lease, now).await? {
                    return Ok(shortly);
                }
                batch
            }
        };
        self.send(&batch, &lease, stop).await
    }

    /// Sends a leased batch and records the answer.
    async fn send(
        &self,
        batch: &Batch,
        lease: &Lease,
        stop: &CancellationToken,
    ) -> Result<Next, sqlx::Error> {
        let (db, settings) = (&self.db, &self.sub.settings);
        let events = store::events(db, &batch.events).await?;
        let body = serde_json::to_vec(&events).expect("events serialise to JSON");
        let sent_at = Utc::now();
        // Finish a second before the lease runs out, so nobody else sends while this is on the
        // wire.
        let left = (lease.until - sent_at - Duration::seconds(1))
            .to_std()
            .unwrap_or_default();
        let limit = StdDuration::from_secs(settings.timeout_seconds.unsigned_abs()).min(left);
        if limit < StdDuration::from_millis(500) {
            store::release(db, &settings.name, &self.owner).await?;
            return Ok(Next::Now);
        }
        let attempt = Attempt {
            url: &settings.url,
            key: &self.sub.key,
            webhook_id: &batch.id,
            timestamp: sent_at.timestamp(),
            body: &body,
            limit,
        };
        tracing::debug!(webhook = %settings.name, webhook_id = %batch.id, events = batch.events.len(), "sending a batch");
        let result = tokio::select! {
            result = send::post(&self.sub.client, &attempt) => result,
            _ = stop.cancelled() => {
                // Not the receiver's failure: no attempt is counted, and the batch is sent
                // again, with the same webhook-id, by the next daemon to start.
                store::release(db, &settings.name, &self.owner).await?;
                tracing::info!(webhook = %settings.name, webhook_id = %batch.id, "stopping mid-request; the batch will be sent again");
                return Ok(Next::Stop);
            }
        };
        self.record(batch, result, crate::clock::now()).await
    }

    /// Records an answer, if the lease on this batch is still ours.
    async fn record(
        &self,
        batch: &Batch,
        result: Result<u16, Failure>,
        now: DateTime<Utc>,
    ) -> Result<Next, sqlx::Error> {
        let settings = &self.sub.settings;
        let name = settings.name.as_str();
        let mut tx = self.db.begin_write().await?;
        let Some(row) = store::held(&mut tx, name, &self.owner).await? else {
            tx.commit().await?;
            tracing::warn!(webhook = name, webhook_id = %batch.id, "the lease ran out during the request; another instance sends the batch again");
            return Ok(Next::Now);
        };
        if row.batch_id.as_deref() != Some(batch.id.as_str()) {
            store::release_in(&mut tx, name, &self.owner).await?;
            tx.commit().await?;
            tracing::info!(webhook = name, webhook_id = %batch.id, "the batch was abandoned by a replay while it was sent; its answer is not recorded");
            return Ok(Next::Now);
        }
        match result {
            Ok(status) => {
                store::acknowledged(&mut tx, name, batch, now).await?;
                if let (Some(since), Some(_)) = (row.failing_since, row.failing_reported_at) {
                    let recovered = Kind::WebhookRecovered(WebhookRecovered {
                        webhook: name.to_string(),
                        failing_since: since,
                        delivered_through: batch.through,
                    });
                    events::record(&mut tx, None, now, ENGINE, recovered).await?;
                    tracing::info!(webhook = name, failing_since = %since.to_rfc3339(), "webhook delivering again");
                }
                tx.commit().await?;
                tracing::debug!(webhook = name, webhook_id = %batch.id, status, through = batch.through, "batch acknowledged");
                Ok(Next::Now)
            }
            Err(failure) => {
                let attempts = row.attempts + 1;
                let since = row.failing_since.unwrap_or(now);
                let next_attempt_at = now + backoff(settings, &batch.id, attempts);
                let report = row.failing_reported_at.is_none()
                    && now - since >= Duration::minutes(settings.failing_after_minutes);
                let detail = failure.detail();
                let failed = store::Failed {
                    attempts,
                    next_attempt_at,
                    error: &detail,
                    failing_since: since,
                    reported_at: if report {
                        Some(now)
                    } else {
                        row.failing_reported_at
                    },
                };
                store::failed(&mut tx, name, batch, &failed, now).await?;
                if report {
                    let failing = Kind::WebhookFailing(WebhookFailing {
                        webhook: name.to_string(),
                        failing_since: since,
                        attempts,
                        delivered_through: row.delivered_through,
                        error: failure.summary(),
                    });
                    events::record(&mut tx, None, now, ENGINE, failing).await?;
                }
                tx.commit().await?;
                if report {
                    tracing::error!(webhook = name, url = %settings.shown_url(), failing_since = %since.to_rfc3339(), attempts, error = %failure.summary(),
                        "webhook failing: its receiver has not acknowledged a batch for longer than failing_after_minutes; delivery keeps its place and goes on retrying");
                } else {
                    tracing::warn!(webhook = name, webhook_id = %batch.id, attempts, next = %next_attempt_at.to_rfc3339(), error = %failure.summary(), "webhook batch not acknowledged; will retry");
                }
                Ok(Next::At(next_attempt_at))
            }
        }
    }
}

/// A fresh webhook-id: `msg_` and 128 random bits.
fn new_webhook_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Without the system's randomness the id need only be unique: time and a counter are.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        bytes[..8].copy_from_slice(&t.to_be_bytes());
        bytes[8..].copy_from_slice(&n.to_be_bytes());
    }
    format!("msg_{}", hex::encode(bytes))
}

/// Exponential backoff from `retry_base_seconds`, capped at `retry_max_seconds`, with ±20%
/// jitter derived from the batch and attempt, so instances and subscriptions spread out.
pub fn backoff(settings: &super::WebhookSettings, batch_id: &str, attempts: i64) -> Duration {
    Duration::seconds(crate::backoff::seconds(
        settings.retry_base_seconds,
        settings.retry_max_seconds,
        batch_id,
        attempts,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_with_bounded_jitter_up_to_the_cap() {
        let s = super::super::WebhookSettings {
            retry_base_seconds: 5,
            retry_max_seconds: 300,
            ..Default::default()
        };
        for (attempt, nominal) in [(1, 5), (2, 10), (3, 20), (5, 80), (7, 300), (30, 300)] {
            let d = backoff(&s, "msg_1", attempt).num_seconds();
            assert!(
                d >= nominal * 80 / 100 && d <= nominal * 120 / 100,
                "attempt {attempt}: {d}s vs {nominal}s"
            );
        }
        assert_eq!(backoff(&s, "msg_1", 3), backoff(&s, "msg_1", 3));
    }

    #[test]
    fn webhook_ids_are_fresh_for_each_batch() {
        let (a, b) = (new_webhook_id(), new_webhook_id());
        assert!(a.starts_with("msg_") && a.len() == 36, "{a}");
        assert_ne!(a, b);
    }
}
