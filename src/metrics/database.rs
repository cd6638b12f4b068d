//! What a scrape reads as it is now: the backlog from the database and the daemon's own state
//! (the rule set in force, the last pass). Every query finds its rows through a partial index
//! and counts at most [`COUNT_LIMIT`] of them, so a scrape costs the same with ten open cases or
//! a million, and with an inbox of ten commands or a flood: the age of the oldest waiting row
//! says how far behind it is once the count saturates.

use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::db::{Db, sql};
use crate::live::Live;
use crate::webhooks::WebhookSettings;

/// The most rows a backlog gauge counts.
pub const COUNT_LIMIT: i64 = 10_000;

/// Commands waiting, counted up to `$1`, through `inbox_pending`.
pub const INBOX_WAITING: &str =
    "SELECT COUNT(*) FROM (SELECT 1 FROM inbox WHERE status = 'pending' LIMIT $1) p";
/// When the oldest waiting command arrived, through `inbox_pending`.
pub const INBOX_OLDEST: &str =
    "SELECT received_at FROM inbox WHERE status = 'pending' ORDER BY id LIMIT 1";
/// Notifications waiting, counted up to `$1`, through `outbox_waiting_since`.
pub const OUTBOX_WAITING: &str =
    "SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE status IN ('pending', 'claimed') LIMIT $1) p";
/// When the oldest waiting notification was written, through `outbox_waiting_since`.
pub const OUTBOX_OLDEST: &str = "SELECT created_at FROM outbox WHERE status IN ('pending', 'claimed') ORDER BY created_at LIMIT 1";
/// Dead notifications, counted up to `$1`, through `outbox_dead`.
pub const OUTBOX_DEAD: &str =
    "SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE status = 'dead' LIMIT $1) d";

/// How long a scrape waits for the database before it answers without the backlog.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The backlog as read from the database.
#[derive(Debug, Default)]
pub struct Backlog {
    inbox_pending: i64,
    inbox_oldest: Option<DateTime<Utc>>,
    outbox_pending: i64,
    outbox_oldest: Option<DateTime<Utc>>,
    outbox_dead: i64,
    webhooks: Vec<crate::webhooks::WebhookStatus>,
}

/// Reads the backlog; `None` if the database did not answer (logged).
pub async fn read(db: &Db, webhooks: &[WebhookSettings], now: DateTime<Utc>) -> Option<Backlog> {
    match tokio::time::timeout(TIMEOUT, backlog(db, webhooks, now)).await {
        Ok(Ok(b)) => Some(b),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: could not read the backlog; the scrape reports the database down");
            None
        }
        Err(_) => {
            tracing::warn!(
                "metrics: the database took longer than 5 s; the scrape reports it down"
            );
            None
        }
    }
}

async fn backlog(
    db: &Db,
    webhooks: &[WebhookSettings],
    now: DateTime<Utc>,
) -> Result<Backlog, sqlx::Error> {
    let inbox_pending: i64 = sql(INBOX_WAITING).bind(COUNT_LIMIT).scalar(db).await?;
    let inbox_oldest: Option<(DateTime<Utc>,)> = sql(INBOX_OLDEST).fetch_optional(db).await?;
    let outbox_pending: i64 = sql(OUTBOX_WAITING).bind(COUNT_LIMIT).scalar(db).await?;
    let outbox_oldest: Option<(DateTime<Utc>,)> = sql(OUTBOX_OLDEST).fetch_optional(db).await?;
    let outbox_dead: i64 = sql(OUTBOX_DEAD).bind(COUNT_LIMIT).scalar(db).await?;
    // Each subscription's lag as `casewarden webhooks` shows it: counted up to its own limit.
    let webhooks = crate::webhooks::status(db, webhooks, now).await?.webhooks;
    Ok(Backlog {
        inbox_pending,
        inbox_oldest: inbox_oldest.map(|r| r.0),
        outbox_pending,
        outbox_oldest: outbox_oldest.map(|r| r.0),
        outbox_dead,
        webhooks,
    })
}

fn age(now: DateTime<Utc>, since: Option<DateTime<Utc>>) -> f64 {
    since.map_or(0.0, |t| {
        ((now - t).num_milliseconds().max(0) as f64) / 1000.0
    })
}

fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

type Real = Gauge<f64, std::sync::atomic::AtomicU64>;

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g: Gauge = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn real(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let g = Real::default();
    g.set(value);
    registry.register(name, help, g);
}

/// A gauge of value 1 whose labels carry the information.
fn info(registry: &mut Registry, name: &str, help: &str, labels: Vec<(&'static str, String)>) {
    let family = Family::<Vec<(&'static str, String)>, Gauge>::default();
    family.get_or_create(&labels).set(1);
    registry.register(name, help, family);
}

/// Registers the gauges of the moment: the build, the daemon's state, and the backlog (or the
/// database as down).
pub fn register(r: &mut Registry, backlog: &Option<Backlog>, live: &Live, now: DateTime<Utc>) {
    let (version, git) = super::build_info();
    let build = vec![("version", version.to_string()), ("git", git.to_string())];
    info(
        r,
        "build_info",
        "The running build: version and git commit",
        build,
    );
    let state = live.state();
    let rules = vec![("hash", state.rules_hash.clone())];
    info(r, "rules_info", "The rule set in force, by hash", rules);
    let loaded = seconds(state.rules_loaded_at);
    real(
        r,
        "rules_loaded_timestamp_seconds",
        "When the rule set in force was loaded",
        loaded,
    );
    // 0 until a set is refused, so that an alert can compare it with the time of loading.
    let rejected = state.last_rejected.as_ref().map_or(0.0, |r| seconds(r.at));
    real(
        r,
        "rules_last_rejected_timestamp_seconds",
        "When a reload last refused a rule set with problems (the set in force stayed); 0 if none was since the start",
        rejected,
    );
    let started = seconds(live.started_at());
    real(
        r,
        "start_timestamp_seconds",
        "When the daemon started",
        started,
    );
    if let Some(pass) = &state.last_pass {
        let at = seconds(pass.finished_at);
        real(
            r,
            "last_pass_timestamp_seconds",
            "When the last pass finished",
            at,
        );
    }
    let running = i64::from(state.pass_running);
    gauge(r, "pass_running", "1 while a pass runs", running);
    let Some(b) = backlog else {
        gauge(
            r,
            "database_up",
            "1 if the scrape could read the backlog from the database",
            0,
        );
        return;
    };
    gauge(
        r,
        "database_up",
        "1 if the scrape could read the backlog from the database",
        1,
    );
    gauge(
        r,
        "inbox_pending",
        "Commands waiting in the inbox (counted up to 10000)",
        b.inbox_pending,
    );
    let oldest = age(now, b.inbox_oldest);
    real(
        r,
        "inbox_oldest_pending_age_seconds",
        "How long the oldest waiting command has waited; 0 when none waits",
        oldest,
    );
    gauge(
        r,
        "outbox_pending",
        "Notifications waiting to be sent (counted up to 10000)",
        b.outbox_pending,
    );
    let oldest = age(now, b.outbox_oldest);
    real(
        r,
        "outbox_oldest_pending_age_seconds",
        "How long ago the oldest waiting notification was written; 0 when none waits",
        oldest,
    );
    gauge(
        r,
        "outbox_dead",
        "Notifications given up after their last attempt (counted up to 10000)",
        b.outbox_dead,
    );
    webhooks(r, &b.webhooks);
}

fn webhooks(r: &mut Registry, statuses: &[crate::webhooks::WebhookStatus]) {
    type BySubscription<M> = Family<[(&'static str, String); 1], M>;
    let events = BySubscription::<Gauge>::default();
    let seconds = BySubscription::<Gauge>::default();
    let failing = BySubscription::<Gauge>::default();
    for s in statuses {
        let labels = [("subscription", s.name.clone())];
        let waiting = match s.lag_events_more {
            true => crate::webhooks::LAG_COUNT_LIMIT + 1,
            false => s.lag_events,
        };
        events.get_or_create(&labels).set(waiting);
        seconds
            .get_or_create(&labels)
            .set(s.lag_seconds.unwrap_or(0));
        failing
            .get_or_create(&labels)
            .set(i64::from(s.failing_reported_at.is_some()));
    }
    r.register(
        "webhook_lag_events",
        "Events a subscription wants that its receiver has not acknowledged (counted up to 10001)",
        events,
    );
    r.register(
        "webhook_lag_seconds",
        "How old the oldest unacknowledged event of a subscription is; 0 when none waits",
        seconds,
    );
    r.register("webhook_failing", "1 while a subscription has been failing for longer than its failing_after_minutes (webhook_failing was reported)", failing);
}
