//! What the engine counts as it works, for `/metrics` ([`crate::metrics`] serves it): passes and
//! the time each step takes, commands, allocations, holds, retention, escalations, rule errors, packs and
//! mail. Each engine owns its registry (see `crate::metrics` for why `prometheus-client`);
//! counters start at zero with the process, as Prometheus expects of a counter.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::outcome::PassOutcome;

/// Every metric's name starts with this.
pub const PREFIX: &str = "casewarden";

type Labelled<M> = Family<[(&'static str, &'static str); 1], M>;
type Timings = Family<[(&'static str, &'static str); 1], Histogram, fn() -> Histogram>;

/// From 5 ms to about 10 minutes: a pass of an idle daemon takes milliseconds; one that works
/// through a backlog runs each step up to its budget (`engine.step_budget_seconds`).
fn seconds() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
        600.0,
    ])
}

/// What the engine counts as it works.
pub struct Metrics {
    pub(crate) registry: Registry,
    passes: Counter,
    passes_failed: Counter,
    pass_seconds: Histogram,
    step_seconds: Timings,
    commands: Labelled<Counter>,
    allocations: Labelled<Counter>,
    holds_released: Counter,
    retained: Labelled<Counter>,
    escalations: Labelled<Counter>,
    rule_errors: Labelled<Counter>,
    packs: Labelled<Counter>,
    notifications: Labelled<Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix(PREFIX);
        let m = Metrics {
            registry: Registry::default(),
            passes: Counter::default(),
            passes_failed: Counter::default(),
            pass_seconds: seconds(),
            step_seconds: Timings::new_with_constructor(seconds),
            commands: Labelled::default(),
            allocations: Labelled::default(),
            holds_released: Counter::default(),
            retained: Labelled::default(),
            escalations: Labelled::default(),
            rule_errors: Labelled::default(),
            packs: Labelled::default(),
            notifications: Labelled::default(),
        };
        let r = &mut registry;
        r.register("passes", "Passes finished", m.passes.clone());
        r.register(
            "passes_failed",
            "Passes in which a step failed (the next pass retries)",
            m.passes_failed.clone(),
        );
        r.register(
            "pass_duration_seconds",
            "How long a whole pass took",
            m.pass_seconds.clone(),
        );
        r.register(
            "pass_step_duration_seconds",
            "How long each step of a pass took, by step",
            m.step_seconds.clone(),
        );
        r.register(
            "commands",
            "Commands decided, by outcome (accepted, rejected, duplicate)",
            m.commands.clone(),
        );
        r.register(
            "allocations",
            "Cases allocated by a rule (allocated) or sent to the fallback role's queue (needed)",
            m.allocations.clone(),
        );
        r.register(
            "holds_released",
            "Tasks released from hold at their release date",
            m.holds_released.clone(),
        );
        r.register(
            "cases_retained",
            "Closed cases whose retention period ran out, by action (anonymise, delete)",
            m.retained.clone(),
        );
        r.register(
            "escalations",
            "SLA escalations fired, by level (amber, exceeded, follow_on)",
            m.escalations.clone(),
        );
        r.register(
            "rule_errors",
            "Allocation and escalation rules that failed (a rule_error event each), by rule kind",
            m.rule_errors.clone(),
        );
        r.register(
            "packs",
            "Housing packs made, and attempts that failed (retried next pass), by outcome",
            m.packs.clone(),
        );
        r.register(
            "notifications",
            "Notification deliveries, by outcome (sent, retried, dead)",
            m.notifications.clone(),
        );
        let m = Metrics { registry, ..m };
        // Every labelled series exists from the start at zero, so `rate()` and `increase()` see
        // the first command or escalation instead of a series that appears already counted.
        m.count(&PassOutcome::default());
        m
    }

    /// Times one step of a pass.
    pub fn step(&self, step: &'static str, took: Duration) {
        self.step_seconds
            .get_or_create(&[("step", step)])
            .observe(took.as_secs_f64());
    }

    /// Counts a finished pass and what it did.
    pub fn pass(&self, outcome: &PassOutcome, took: Duration, ok: bool) {
        self.passes.inc();
        if !ok {
            self.passes_failed.inc();
        }
        self.pass_seconds.observe(took.as_secs_f64());
        self.count(outcome);
    }

    fn count(&self, outcome: &PassOutcome) {
        let add = |family: &Labelled<Counter>, label: &'static str, value: &'static str, n: u64| {
            family.get_or_create(&[(label, value)]).inc_by(n);
        };
        add(&self.commands, "outcome", "accepted", outcome.accepted);
        add(&self.commands, "outcome", "rejected", outcome.rejected);
        add(&self.commands, "outcome", "duplicate", outcome.duplicates);
        add(&self.allocations, "outcome", "allocated", outcome.allocated);
        add(
            &self.allocations,
            "outcome",
            "needed",
            outcome.allocation_needed,
        );
        self.holds_released.inc_by(outcome.holds_released);
        add(
            &self.retained,
            "action",
            "anonymise",
            outcome.retained_anonymised,
        );
        add(&self.retained, "action", "delete", outcome.retained_deleted);
        for (level, n) in LEVELS.iter().zip(outcome.escalations_by_level) {
            add(&self.escalations, "level", level, n);
        }
        add(
            &self.rule_errors,
            "rule",
            "allocation",
            outcome.allocation_rule_errors,
        );
        add(
            &self.rule_errors,
            "rule",
            "escalation",
            outcome.escalation_rule_errors,
        );
        add(&self.packs, "outcome", "made", outcome.packs_made);
        add(&self.packs, "outcome", "failed", outcome.packs_failed);
        add(&self.notifications, "outcome", "sent", outcome.sent);
        add(&self.notifications, "outcome", "retried", outcome.retried);
        add(&self.notifications, "outcome", "dead", outcome.dead);
    }
}

/// The escalation levels in the order of [`PassOutcome::escalations_by_level`].
pub const LEVELS: [&str; 3] = ["amber", "exceeded", "follow_on"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::checkpoint::Level;

    #[test]
    fn the_level_labels_follow_the_levels_order() {
        for level in [Level::Amber, Level::Exceeded, Level::FollowOn] {
            assert_eq!(LEVELS[level as usize], level.as_str());
        }
    }

    #[test]
    fn a_failed_pass_counts_as_a_pass_and_as_a_failure() {
        let metrics = Metrics::new();
        let outcome = PassOutcome {
            accepted: 2,
            escalations_by_level: [1, 0, 3],
            ..PassOutcome::default()
        };
        metrics.pass(&outcome, Duration::from_millis(20), false);
        metrics.pass(&PassOutcome::default(), Duration::from_millis(5), true);
        assert_eq!((metrics.passes.get(), metrics.passes_failed.get()), (2, 1));
        let got = |f: &Labelled<Counter>, label, value| f.get_or_create(&[(label, value)]).get();
        assert_eq!(got(&metrics.commands, "outcome", "accepted"), 2);
        assert_eq!(got(&metrics.escalations, "level", "follow_on"), 3);
        assert_eq!(got(&metrics.escalations, "level", "exceeded"), 0);
    }
}
