//! What a running daemon knows about itself, shared between the pass loop that updates it and
//! the API that reports it (`/readyz`, `/v1/rules`): the rule set in force and when it was
//! loaded, the last refused set, the last pass. And the doorbell: anything that queues work (an
//! API request, the schedule) rings it, and the pass loop answers with a pass. Rings while a
//! pass runs coalesce into one more pass. The other way round, followers of the event log wait
//! on [`Live::passes`], which moves after every pass, and stop at [`Live::stopping`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct Live(Arc<Shared>);

struct Shared {
    started_at: DateTime<Utc>,
    state: Mutex<State>,
    doorbell: Notify,
    /// How many passes have finished: a pass is when the engine writes events.
    passes: watch::Sender<u64>,
    /// Cancelled when the daemon begins to shut down.
    stopping: CancellationToken,
}

/// A snapshot of the daemon's state.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct State {
    /// The hash of the rule set in force.
    pub rules_hash: String,
    pub rules_loaded_at: DateTime<Utc>,
    /// The last rule set refused at a reload, if any since start; the set in force stayed.
    pub last_rejected: Option<Rejected>,
    pub last_pass: Option<Pass>,
    /// Passes finished since the daemon started: a caller that reads it, rings, and waits for it
    /// to grow knows that every pass started before it read has finished.
    pub passes: u64,
    /// Whether a pass is running now.
    pub pass_running: bool,
    /// When the pass running now began, on the monotonic clock: the watchdog's measure of a
    /// stuck pass.
    #[serde(skip)]
    #[schemars(skip)]
    pub pass_began: Option<std::time::Instant>,
    /// How long a gap between passes the schedule allows: a pass older than this means the
    /// pass loop is stuck.
    #[serde(skip)]
    #[schemars(skip)]
    pub pass_interval: Duration,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Rejected {
    pub at: DateTime<Utc>,
    /// Each problem as `file:line:col: message`.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Pass {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Whether every step succeeded.
    pub ok: bool,
}

impl Live {
    pub fn new(rules_hash: String, now: DateTime<Utc>, pass_interval: Duration) -> Live {
        Live(Arc::new(Shared {
            started_at: now,
            state: Mutex::new(State {
                rules_hash,
                rules_loaded_at: now,
                last_rejected: None,
                last_pass: None,
                passes: 0,
                pass_running: false,
                pass_began: None,
                pass_interval,
            }),
            doorbell: Notify::new(),
            passes: watch::Sender::new(0),
            stopping: CancellationToken::new(),
        }))
    }

    pub fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }

    pub fn state(&self) -> State {
        self.0
            .state
            .lock()
            .expect("live state lock poisoned")
            .clone()
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.0.state.lock().expect("live state lock poisoned"));
    }

    pub fn rules_loaded(&self, hash: String, at: DateTime<Utc>) {
        self.update(|s| {
            s.rules_hash = hash;
            s.rules_loaded_at = at;
        });
    }

    pub fn rules_rejected(&self, problems: Vec<String>, at: DateTime<Utc>) {
        self.update(|s| s.last_rejected = Some(Rejected { at, problems }));
    }

    /// A pass begins.
    pub fn pass_started(&self) {
        self.update(|s| {
            s.pass_running = true;
            s.pass_began = Some(std::time::Instant::now());
        });
    }

    /// How long the pass under way has been running; `None` between passes.
    pub fn pass_running_for(&self) -> Option<Duration> {
        self.state().pass_began.map(|began| began.elapsed())
    }

    pub fn passed(&self, started_at: DateTime<Utc>, finished_at: DateTime<Utc>, ok: bool) {
        self.update(|s| {
            s.pass_running = false;
            s.pass_began = None;
            s.last_pass = Some(Pass {
                started_at,
                finished_at,
                ok,
            });
            s.passes += 1;
        });
        self.0.passes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Sees each pass that finishes after this call: what a follower of the event log waits on
    /// for the events this daemon writes.
    pub fn passes(&self) -> watch::Receiver<u64> {
        self.0.passes.subscribe()
    }

    /// Says the daemon is shutting down, so that requests waiting for events end now instead of
    /// holding the API's graceful shutdown for its whole grace period.
    pub fn stop(&self) {
        self.0.stopping.cancel();
    }

    /// Cancelled once [`Live::stop`] is called.
    pub fn stopping(&self) -> CancellationToken {
        self.0.stopping.clone()
    }

    /// Asks for a pass as soon as the one under way (if any) is done.
    pub fn ring(&self) {
        self.0.doorbell.notify_one();
    }

    /// Waits for a ring; rings since the last wait are answered at once, as one.
    pub async fn rung(&self) {
        self.0.doorbell.notified().await;
    }

    /// Whether passes are keeping up: one has finished within twice the schedule's interval
    /// (plus a minute's grace for a long pass), or the daemon started less than that ago.
    pub fn passes_are_recent(&self, now: DateTime<Utc>) -> Result<(), String> {
        let state = self.state();
        let allowed = chrono::Duration::from_std(state.pass_interval * 2)
            .unwrap_or(chrono::Duration::MAX)
            + chrono::Duration::minutes(1);
        let since = state
            .last_pass
            .as_ref()
            .map_or(self.0.started_at, |p| p.finished_at);
        if now - since <= allowed {
            return Ok(());
        }
        Err(match state.last_pass {
            Some(p) => format!(
                "the last pass finished at {}, longer ago than the schedule allows",
                p.finished_at.to_rfc3339()
            ),
            None => format!(
                "no pass has finished since the start at {}",
                self.0.started_at.to_rfc3339()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rings_coalesce_into_one_answer() {
        let live = Live::new("h".into(), Utc::now(), Duration::from_secs(30));
        live.ring();
        live.ring();
        tokio::time::timeout(Duration::from_millis(100), live.rung())
            .await
            .expect("a ring before the wait is answered");
        let second = tokio::time::timeout(Duration::from_millis(50), live.rung()).await;
        assert!(second.is_err(), "two rings made one pass, not two");
    }

    #[tokio::test]
    async fn a_finished_pass_wakes_whoever_follows_the_passes() {
        let live = Live::new("h".into(), Utc::now(), Duration::from_secs(30));
        let mut passes = live.passes();
        let before = tokio::time::timeout(Duration::from_millis(50), passes.changed()).await;
        assert!(before.is_err(), "no pass yet, so no wake-up");
        live.passed(Utc::now(), Utc::now(), false);
        tokio::time::timeout(Duration::from_millis(100), passes.changed())
            .await
            .expect("a pass wakes the follower")
            .expect("the sender lives as long as Live");
    }

    #[tokio::test]
    async fn stop_cancels_every_holder_of_stopping() {
        let live = Live::new("h".into(), Utc::now(), Duration::from_secs(30));
        let stopping = live.stopping();
        assert!(!stopping.is_cancelled());
        live.clone().stop();
        tokio::time::timeout(Duration::from_millis(100), stopping.cancelled())
            .await
            .expect("stop cancels the token already handed out");
    }

    #[test]
    fn a_pass_older_than_twice_the_interval_and_a_minute_is_stale() {
        let start = crate::clock::parse_time("2026-11-28T10:00:00Z").unwrap();
        let live = Live::new("h".into(), start, Duration::from_secs(30));
        assert!(
            live.passes_are_recent(start + chrono::Duration::seconds(119))
                .is_ok()
        );
        let err = live
            .passes_are_recent(start + chrono::Duration::seconds(121))
            .unwrap_err();
        assert!(
            err.contains("no pass has finished since the start"),
            "{err}"
        );
        live.passed(start, start + chrono::Duration::seconds(200), true);
        assert_eq!(live.state().passes, 1);
        assert!(
            live.passes_are_recent(start + chrono::Duration::seconds(300))
                .is_ok()
        );
        let err = live
            .passes_are_recent(start + chrono::Duration::seconds(400))
            .unwrap_err();
        assert!(
            err.contains("the last pass finished at 2026-11-28T10:03:20+00:00"),
            "{err}"
        );
    }
}
