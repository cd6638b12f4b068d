//! Metrics in the Prometheus exposition format: what the daemon counts as it works (passes and
//! the time each step takes, commands, escalations, rule errors, packs, mail) and what a scrape
//! reads cheaply from the database (the inbox's and the outbox's backlog, webhook lag), served
//! by `casewarden run` when `[metrics]` asks for it ([`settings`], [`server`]).
//!
//! Built on `prometheus-client` (the Prometheus project's own Rust client): each engine owns a
//! [`Registry`] instead of a process-wide recorder such as the `metrics` crate's, so two daemons
//! in one process (the tests start many) never count into each other, and a dry run (`plan`)
//! counts into a registry nobody reads. It only encodes: serving is axum's, as for the API, so
//! there is no second HTTP stack (as `metrics-exporter-prometheus`'s listener would be). It
//! writes OpenMetrics text, which Prometheus accepts and parses natively.

pub mod database;
pub mod server;
pub mod settings;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::registry::Registry;

pub use crate::engine::metrics::{LEVELS, PREFIX};
use crate::live::Live;
pub use settings::MetricsSettings;

/// The media type of what [`render`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The build: version and, when it was built from a git checkout, the commit.
pub fn build_info() -> (&'static str, &'static str) {
    (
        env!("CARGO_PKG_VERSION"),
        option_env!("CASEWARDEN_GIT_HASH").unwrap_or("unknown"),
    )
}

/// What a scrape answers: the engine's counters, then the daemon's state and the database's
/// backlog as they are now.
pub async fn render(
    engine: &crate::engine::Engine,
    live: &Live,
    webhooks: &[crate::webhooks::WebhookSettings],
) -> String {
    let now = crate::clock::now();
    let current = database::read(&engine.db, webhooks, now).await;
    let mut state = Registry::with_prefix(PREFIX);
    database::register(&mut state, &current, live, now);
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode_registry(&mut out, &engine.metrics().registry);
    let _ = encode_registry(&mut out, &state);
    let _ = encode_eof(&mut out);
    out
}
