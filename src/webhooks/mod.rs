//! Webhooks: the events each subscription wants, POSTed to its receiver in event-id order, in
//! batches, signed the Standard Webhooks way ([`sign`]).
//!
//! A subscription's place in the log is stored (`webhook_subscriptions`); it moves only when the
//! receiver acknowledges a batch with a 2xx, so nothing is skipped or dropped. A batch is fixed
//! when first tried and resent unchanged, with the same `webhook-id`, until it is acknowledged;
//! failures retry with exponential backoff and jitter, and a subscription failing for longer
//! than its `failing_after_minutes` is reported once (event `webhook_failing`, an error in the
//! log) and keeps its place. Several instances on one PostgreSQL database share the work
//! through leases: a batch is sent by one instance at a time.
//!
//! Delivery runs beside the pass ([`start`]), woken after each pass, by its retry times and by a
//! short poll, and stops with the daemon. It never holds a transaction open across a request.

mod send;
pub mod settings;
pub mod sign;
mod status;
mod store;
mod worker;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::events::kinds::{Kind, WebhookReplayed};
pub use settings::{WebhookSettings, check_all};
pub use status::{LAG_COUNT_LIMIT, WebhookBatch, WebhookStatus, Webhooks, status};
pub use worker::LEASE_MARGIN_SECONDS;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("webhooks[{index}].secret_env names {var}, which is not set")]
    SecretEnv { index: usize, var: String },
    #[error("cannot read webhooks[{index}].secret_file {}: {source}", .path.display())]
    SecretFile {
        index: usize,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the secret of webhooks[{index}] (from {from}) {why}")]
    Secret {
        index: usize,
        from: String,
        why: String,
    },
    #[error("webhooks[{index}]: cannot set up its HTTP client: {cause}")]
    Client { index: usize, cause: String },
    #[error("no [[webhooks]] subscription is named {name}; the configuration has {known}")]
    Unknown { name: String, known: String },
    #[error("{0}")]
    Replay(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A subscription ready to deliver: its settings, its key, its HTTP client and its filter.
pub struct Subscription {
    settings: WebhookSettings,
    key: sign::Key,
    client: reqwest::Client,
    filter: store::Filter,
}

impl Subscription {
    /// Checks the subscriptions, reads the secret of each and sets up its client: what the daemon
    /// does at start, so a bad setting or a missing or malformed secret stops it there, named,
    /// however its settings were made.
    pub fn load_all(webhooks: &[WebhookSettings]) -> Result<Vec<Subscription>, WebhookError> {
        check_all(webhooks).map_err(WebhookError::Invalid)?;
        webhooks
            .iter()
            .enumerate()
            .map(|(index, s)| Subscription::load(index, s))
            .collect()
    }

    fn load(index: usize, settings: &WebhookSettings) -> Result<Subscription, WebhookError> {
        let (text, from) = match (&settings.secret_env, &settings.secret_file) {
            (Some(var), _) => {
                let text = std::env::var(var).map_err(|_| WebhookError::SecretEnv {
                    index,
                    var: var.clone(),
                })?;
                (text, format!("secret_env {var}"))
            }
            (None, Some(path)) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| WebhookError::SecretFile {
                        index,
                        path: path.clone(),
                        source,
                    })?;
                (text, format!("secret_file {}", path.display()))
            }
            (None, None) => {
                return Err(WebhookError::Secret {
                    index,
                    from: "nowhere".into(),
                    why: "is not configured: set secret_file or secret_env".into(),
                });
            }
        };
        let key =
            sign::Key::parse(&text).map_err(|why| WebhookError::Secret { index, from, why })?;
        let timeout = std::time::Duration::from_secs(settings.timeout_seconds.unsigned_abs());
        let client = send::client(timeout).map_err(|e| WebhookError::Client {
            index,
            cause: e.to_string(),
        })?;
        Ok(Subscription {
            filter: store::Filter::of(settings),
            settings: settings.clone(),
            key,
            client,
        })
    }
}

/// The delivery task: one loop per subscription. Dropped, it stops them; [`Delivery::stopped`]
/// waits for them to finish after the stop token is cancelled.
pub struct Delivery {
    task: Option<JoinHandle<()>>,
}

/// Starts delivering for each subscription, woken by `passes` and stopped by `stop`.
pub fn start(
    db: Db,
    subscriptions: Vec<Subscription>,
    passes: watch::Receiver<u64>,
    stop: CancellationToken,
) -> Delivery {
    if subscriptions.is_empty() {
        return Delivery { task: None };
    }
    let owner = lease_owner();
    let loops: Vec<_> = subscriptions
        .into_iter()
        .map(|sub| {
            tracing::info!(webhook = %sub.settings.name, url = %sub.settings.shown_url(), "webhook delivery started");
            let worker = worker::Worker {
                db: db.clone(),
                owner: owner.clone(),
                sub,
            };
            worker.run(passes.clone(), stop.clone())
        })
        .collect();
    let task = tokio::spawn(async move {
        futures_util::future::join_all(loops).await;
    });
    Delivery { task: Some(task) }
}

impl Delivery {
    /// Waits up to `grace` for the loops to finish once stopped; a request still under way then
    /// is abandoned (its lease runs out and the batch is sent again).
    pub async fn stopped(mut self, grace: std::time::Duration) {
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(grace, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// This process's name on the leases it takes: its pid, for an operator, and random bits, so two
/// hosts with the same pid differ.
fn lease_owner() -> String {
    let mut bits = [0u8; 6];
    let _ = getrandom::fill(&mut bits);
    format!("pid{}-{}", std::process::id(), hex::encode(bits))
}

/// What a replay changed.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub previous_delivered_through: i64,
    /// The webhook-id of the batch in flight that was abandoned.
    pub abandoned_batch: Option<String>,
    /// The last event id of the log when it was done.
    pub head: i64,
}

/// Makes the next delivery of subscription `name` start at event `from`, abandoning any batch in
/// flight, and records a `webhook_replayed` event with `actor`.
pub async fn replay(
    db: &Db,
    webhooks: &[WebhookSettings],
    name: &str,
    from: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Replayed, WebhookError> {
    if !webhooks.iter().any(|w| w.name == name) {
        let known: Vec<&str> = webhooks.iter().map(|w| w.name.as_str()).collect();
        return Err(WebhookError::Unknown {
            name: crate::text::quote(name),
            known: if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            },
        });
    }
    if from < 1 {
        return Err(WebhookError::Replay(format!(
            "--from {from}: event ids start at 1"
        )));
    }
    let mut tx = db.begin_write().await?;
    let head: i64 = crate::db::sql("SELECT COALESCE(MAX(id), 0) FROM events")
        .scalar(&mut tx)
        .await?;
    if from > head + 1 {
        return Err(WebhookError::Replay(format!(
            "--from {from} is past the end of the log, whose last event is {head}: use {} to send only events still to come",
            head + 1
        )));
    }
    let before = store::replay(&mut tx, name, from, now).await?;
    let replayed = Kind::WebhookReplayed(WebhookReplayed {
        webhook: name.to_string(),
        from_event_id: from,
        previous_delivered_through: before.delivered_through,
        abandoned_batch: before.batch_id.clone(),
    });
    crate::events::record(&mut tx, None, now, actor, replayed).await?;
    tx.commit().await?;
    tracing::info!(
        webhook = name,
        from,
        previous = before.delivered_through,
        "webhook replay set"
    );
    Ok(Replayed {
        previous_delivered_through: before.delivered_through,
        abandoned_batch: before.batch_id,
        head,
    })
}
