//! How long one step of a pass may keep taking batches. A step with more due work than one
//! batch takes batch after batch until its work is done or its budget is spent; then it
//! finishes the batch in hand and leaves the rest, so one step cannot starve the others. The
//! pass reports that work was left, and the daemon starts another pass at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A step's time budget in one pass. Clones share the record of whether any step ran out.
#[derive(Debug, Clone)]
pub struct Budget {
    deadline: Option<Instant>,
    ran_out: Arc<AtomicBool>,
}

impl Budget {
    /// A budget of `limit` from now.
    pub fn new(limit: Duration) -> Budget {
        Budget {
            deadline: Instant::now().checked_add(limit),
            ran_out: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The same limit again, from now, for the next step; sharing this budget's record.
    pub fn next_step(&self, limit: Duration) -> Budget {
        Budget {
            deadline: Instant::now().checked_add(limit),
            ran_out: self.ran_out.clone(),
        }
    }

    /// Whether the step must stop taking batches. Asked only when more work is due, so a true
    /// answer is recorded: work was left for the next pass.
    pub fn spent(&self) -> bool {
        let spent = self.deadline.is_some_and(|d| Instant::now() >= d);
        if spent {
            self.ran_out.store(true, Ordering::Relaxed);
        }
        spent
    }

    /// Whether any step sharing this record stopped with work still due.
    pub fn ran_out(&self) -> bool {
        self.ran_out.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_budget_is_recorded_for_every_step_that_shares_it() {
        let first = Budget::new(Duration::ZERO);
        let second = first.next_step(Duration::from_secs(3600));
        assert!(!second.spent());
        assert!(!first.ran_out());
        assert!(first.spent());
        assert!(second.ran_out());
    }
}
