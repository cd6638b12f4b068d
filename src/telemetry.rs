//! Logging with tracing: pretty on a terminal, JSON lines on request, or the systemd journal.
//! Spans and events carry case references and counts, never names, e-mail addresses or free text
//! from cases.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::settings::{LogFormat, LogSettings};

/// Installs the global subscriber. Logs go to standard error so command output stays clean.
pub fn init(settings: &LogSettings) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let registry = tracing_subscriber::registry().with(filter);
    let pretty = || {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
    };
    let result = match settings.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(pretty()).try_init(),
        LogFormat::Journald => match tracing_journald::layer() {
            Ok(journal) => registry.with(journal).try_init(),
            Err(e) => {
                let result = registry.with(pretty()).try_init();
                tracing::warn!("no systemd journal here ({e}); logging to standard error instead");
                result
            }
        },
    };
    // A second init (in tests) keeps the first subscriber.
    let _ = result;
}
