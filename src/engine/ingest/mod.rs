//! The ingest step: pending inbox rows, oldest first, each marked accepted, rejected (with the
//! reason) or duplicate. Rows are taken a batch at a time and decided together in one write
//! transaction (`batch`, `decide`), first with no savepoints; a batch in which a command is
//! rejected is decided again with each command inside a savepoint of its own, so a rejected
//! command leaves only its rejection, and the others in the batch apply. Nothing is dropped, and
//! nothing stops the queue for long:
//!
//! - a command that makes the engine fail (a database error, a panic) gives up its batch: the
//!   commands before it are decided again, as a batch of their own, and it is tried alone, in a
//!   transaction of its own (`alone`), where its failure is counted against it and, after
//!   [`MAX_ATTEMPTS`] passes, it is set aside as rejected with the reason;
//! - a decided row keeps the range of the events its decision wrote (`event_range`); in a batch
//!   without savepoints, the events and the decisions are written together when it ends
//!   (`marks`);
//! - a command id already processed makes a repeat a duplicate (`processed`).

mod alone;
mod batch;
mod decide;
mod latest;
mod marks;
mod processed;

use std::sync::Arc;

use super::budget::Budget;
use super::error::StepError;
use crate::clock::Now;
use crate::db::Db;
use crate::rules::RuleSet;
use alone::{Alone, decide_alone};
use batch::{Batch, decide_together};
use decide::{Decided, Savepoint};

pub use super::queue::{SubmitError, submit};
pub use alone::{MAX_ATTEMPTS, NEXT_COMMAND};
pub use batch::PENDING_COMMANDS;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub accepted: u64,
    pub rejected: u64,
    pub duplicates: u64,
}

impl Outcome {
    fn count(&mut self, decided: Option<Decided>) {
        match decided {
            Some(Decided::Accepted) => self.accepted += 1,
            Some(Decided::Rejected) => self.rejected += 1,
            Some(Decided::Duplicate) => self.duplicates += 1,
            // Another instance decided it first.
            None => {}
        }
    }
}

/// Decides pending commands in order, batch after batch, until none is left or the step's
/// budget is spent.
pub async fn run_once(
    db: &Db,
    rules: &Arc<RuleSet>,
    clock: Now,
    batch: i64,
    max_bytes: usize,
    budget: &Budget,
) -> Result<Outcome, StepError> {
    let mut outcome = Outcome::default();
    let batch = usize::try_from(batch.max(1)).unwrap_or(1);
    loop {
        let taken = one_batch(db, rules, clock, batch, max_bytes, &mut outcome).await?;
        if taken < batch || budget.spent() {
            return Ok(outcome);
        }
    }
}

/// Decides up to `batch` pending commands, together in one transaction unless one of them makes
/// the engine fail; returns how many it took.
async fn one_batch(
    db: &Db,
    rules: &RuleSet,
    clock: Now,
    batch: usize,
    max_bytes: usize,
    outcome: &mut Outcome,
) -> Result<usize, StepError> {
    let mut taken = 0;
    // After a command failed inside a batch: how many commands before it to decide again, as a
    // batch of their own, before it is tried alone.
    let mut before_failure: Option<usize> = None;
    // Savepoints cost two statements a command: a batch goes without until a command needs one.
    let mut savepoint = Savepoint::None;
    while taken < batch {
        let cap = before_failure.unwrap_or(batch - taken);
        if cap == 0 {
            before_failure = None;
            match decide_alone(db, rules, clock, max_bytes).await? {
                Alone::Nothing => break,
                Alone::Taken(decided) => outcome.count(decided),
            }
            taken += 1;
            continue;
        }
        match decide_together(db, rules, (clock, savepoint), cap, max_bytes).await? {
            Batch::Decided(decided) => {
                savepoint = Savepoint::None;
                let n = decided.len();
                taken += n;
                decided.into_iter().for_each(|d| outcome.count(d));
                if before_failure.is_some() {
                    before_failure = Some(0);
                } else if n < cap {
                    break;
                }
            }
            Batch::FailedAt(at) => before_failure = Some(at),
            Batch::NeedsSavepoints => savepoint = Savepoint::Each,
        }
    }
    Ok(taken)
}
