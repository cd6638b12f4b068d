//! What one pass did, step by step: the counts `tick` prints and the daemon logs.

use serde::Serialize;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PassOutcome {
    pub accepted: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub allocated: u64,
    pub allocation_needed: u64,
    pub holds_released: u64,
    /// Housing packs made, waiting for answers, and failed (to be retried).
    pub packs_made: u64,
    pub packs_waiting: u64,
    pub packs_failed: u64,
    /// Closed cases whose retention period ran out: anonymised, and deleted.
    pub retained_anonymised: u64,
    pub retained_deleted: u64,
    pub escalations: u64,
    /// The escalations by level: amber, exceeded, follow-on.
    pub escalations_by_level: [u64; 3],
    pub notifications: u64,
    /// Allocation and escalation rules that failed (each recorded as a `rule_error` event).
    pub allocation_rule_errors: u64,
    pub escalation_rule_errors: u64,
    pub sent: u64,
    pub retried: u64,
    pub dead: u64,
    /// Escalation mail held back to working hours (quiet hours).
    pub deferred: u64,
    /// Delivery stopped early: the SMTP server could not be reached.
    pub smtp_unreachable: bool,
    /// A step spent its time budget with work still due: the next pass takes up the rest.
    pub more_due: bool,
}

impl PassOutcome {
    pub fn is_idle(&self) -> bool {
        *self == PassOutcome::default()
    }
}

impl std::fmt::Display for PassOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "commands: {} accepted, {} rejected, {} duplicate; allocation: {} allocated, {} needed; \
             holds released: {}; retention: {} anonymised, {} deleted; packs: {} made, {} waiting for answers, {} failed; escalations: {} ({} notifications); mail: {} sent, {} to retry, {} dead, {} held to working hours{}",
            self.accepted,
            self.rejected,
            self.duplicates,
            self.allocated,
            self.allocation_needed,
            self.holds_released,
            self.retained_anonymised,
            self.retained_deleted,
            self.packs_made,
            self.packs_waiting,
            self.packs_failed,
            self.escalations,
            self.notifications,
            self.sent,
            self.retried,
            self.dead,
            self.deferred,
            if self.smtp_unreachable {
                " (stopped: SMTP server unreachable)"
            } else {
                ""
            }
        )
    }
}
