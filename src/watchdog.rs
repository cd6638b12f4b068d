//! systemd's watchdog, and more time to start while migrations run.
//!
//! With `WatchdogSec=` in the unit, systemd gives the daemon `WATCHDOG_USEC` and restarts it if
//! `WATCHDOG=1` does not arrive within that time. The daemon sends it at half the interval for as
//! long as the pass loop is healthy: between passes, or during a pass that has run for less than
//! the interval. A pass stuck longer (a lock that is never released, a query that never
//! returns) stops the pings, and systemd restarts the service; nothing is lost, as after any kill.
//! The pings come from a task of their own, so a pass that blocks its thread cannot keep them
//! going by accident: they depend on how long the pass has run, not on the task being scheduled.
//!
//! A start that applies migrations may take longer than `TimeoutStartSec=` on a large database,
//! so while they run the daemon sends `EXTEND_TIMEOUT_USEC` every so often.

use std::future::Future;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::live::Live;

/// Starts the pings if systemd asked for them; returns the watchdog interval if so.
pub fn start(live: Live, stop: CancellationToken) -> Option<Duration> {
    let limit = interval(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )?;
    if limit < Duration::from_secs(60) {
        tracing::warn!(
            watchdog = ?limit,
            "WatchdogSec is under a minute: a long pass (a large import) may be taken for a stuck one"
        );
    }
    tokio::spawn(ping(live, stop, limit));
    Some(limit)
}

/// The watchdog interval systemd asks for, read as `sd_watchdog_enabled(3)` reads it: set and
/// non-zero, and meant for this process unless `WATCHDOG_PID` names another. (`sd_notify`'s own
/// reading also refuses an unset `WATCHDOG_PID`, which libsystemd accepts.)
fn interval(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
    match pid.map(|p| p.trim().parse::<u32>()) {
        Some(Ok(p)) if p != me => None,
        Some(Err(_)) => None,
        _ => Some(Duration::from_micros(usec)),
    }
}

async fn ping(live: Live, stop: CancellationToken, limit: Duration) {
    let mut tick = tokio::time::interval(limit / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stuck = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match live.pass_running_for() {
            Some(running) if running >= limit => {
                if !stuck {
                    tracing::error!(
                        running = ?running,
                        watchdog = ?limit,
                        "a pass has run for longer than the watchdog allows; systemd will restart casewarden"
                    );
                    stuck = true;
                }
            }
            _ => {
                stuck = false;
                let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
            }
        }
    }
}

/// How much more time each `EXTEND_TIMEOUT_USEC` asks for, and how often it is sent.
const EXTEND_BY: Duration = Duration::from_secs(90);
const EXTEND_EVERY: Duration = Duration::from_secs(30);

/// Runs `work` (the migrations), asking systemd for more time to start while it runs. Outside
/// systemd (no `NOTIFY_SOCKET`) the messages go nowhere.
pub async fn extending_start<T>(work: impl Future<Output = T>) -> T {
    let usec = u32::try_from(EXTEND_BY.as_micros()).unwrap_or(u32::MAX);
    let extend = async {
        let mut tick = tokio::time::interval(EXTEND_EVERY);
        loop {
            tick.tick().await;
            let _ = sd_notify::notify(
                false,
                &[
                    NotifyState::ExtendTimeoutUsec(usec),
                    NotifyState::Status("applying database migrations"),
                ],
            );
        }
    };
    tokio::select! {
        out = work => out,
        () = extend => unreachable!("the extender never ends"),
    }
}

/// Tells systemd (`systemctl status`) how the last pass went.
pub fn status(text: &str) {
    let _ = sd_notify::notify(false, &[NotifyState::Status(text)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_interval_is_read_as_libsystemd_reads_it() {
        let two = Some(Duration::from_secs(2));
        assert_eq!(interval(Some("2000000"), None, 7), two);
        assert_eq!(interval(Some("2000000"), Some("7"), 7), two);
        assert_eq!(interval(Some("2000000"), Some("8"), 7), None);
        assert_eq!(interval(Some("2000000"), Some("x"), 7), None);
        assert_eq!(interval(Some("0"), None, 7), None);
        assert_eq!(interval(Some("soon"), None, 7), None);
        assert_eq!(interval(None, Some("7"), 7), None);
    }
}
