//! A batch of due checkpoints fired together. The items (with their stages' owners) and their
//! cases are read with a query or two for the whole batch, and the rules of every firing run
//! together, off the async threads (`ready`); `write` then writes the batch in one transaction.
//! Making a batch ready writes nothing, so the sweep can make the next batch ready while this
//! one is written. Each case's firings keep their order: after a firing that reassigns the case
//! (which changes what the case's later firings see) or that fails, the case's later items wait
//! for a batch read after this one is written.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};

use super::firing::{self, Due, Next, Prepared};
use super::write::{self, Decided, Firing, Recheck};
use crate::db::Db;
use crate::db::rows::{self, CaseRow};
use crate::engine::deadlines::{self, Item, ItemKind};
use crate::engine::error::StepError;
use crate::rules::RuleSet;

/// What a batch did.
#[derive(Debug, Default)]
pub(super) struct Fired {
    pub escalations: u64,
    /// By level: amber, exceeded, follow-on.
    pub by_level: [u64; 3],
    pub notifications: u64,
    /// Firings whose rule failed: the owner was notified instead.
    pub rule_errors: u64,
    /// Items whose firing failed (their rule panicked), with the failure, for the caller to
    /// count; nothing was written for them.
    pub failed: Vec<(ItemKind, i64, String)>,
}

impl Fired {
    /// A batch that failed as a whole: of one item, that item's failure.
    pub fn failure(kind: ItemKind, id: i64, error: String) -> Fired {
        Fired {
            failed: vec![(kind, id, error)],
            ..Fired::default()
        }
    }
}

/// A batch read and its rules run, ready to be written.
pub(super) struct Ready {
    cases: Arc<HashMap<i64, CaseRow>>,
    rechecks: Vec<Recheck>,
    firings: Vec<Firing>,
    /// Items whose rule panicked: nothing is written for them.
    failed: Vec<(ItemKind, i64, String)>,
    /// Whether writing the batch changes nothing that another batch's items read: no firing
    /// reassigns its case (which changes the owners the case's other items see) or fails (after
    /// which the case's later items wait for a batch read after this one is written).
    settled: bool,
}

impl Ready {
    /// Whether the next batch may be read and prepared while this one is written (see the
    /// field).
    pub fn settled(&self) -> bool {
        self.settled
    }
}

/// Fires the checkpoints of `due` (in that order) that are due at `now`. An error means
/// nothing was written: the caller then fires the items one at a time.
pub(super) async fn fire(
    db: &Db,
    rules: &Arc<RuleSet>,
    due: &[(ItemKind, i64)],
    now: DateTime<Utc>,
) -> Result<Fired, StepError> {
    let ready = ready(db, rules, due, now, false).await?;
    write(db, rules, ready, now).await
}

/// Reads the items of `due` (in that order) and their cases, and runs the rules of those whose
/// checkpoint is due at `now` (`beside_write`: while another batch is written). Nothing is
/// written.
pub(super) async fn ready(
    db: &Db,
    rules: &Arc<RuleSet>,
    due: &[(ItemKind, i64)],
    now: DateTime<Utc>,
    beside_write: bool,
) -> Result<Ready, StepError> {
    let (items, cases) = read(db, due).await?;
    let cases = Arc::new(cases);
    let mut rechecks = Vec::new();
    let mut dues = Vec::new();
    for (kind, item) in items {
        let (id, was) = (item.id, item.next_check_at);
        match firing::next(rules, &cases[&item.case_id], kind, item, now) {
            Next::Recheck(at) => rechecks.push(Recheck { kind, id, was, at }),
            Next::Fire(due) => dues.push(*due),
        }
    }
    let mut failed = Vec::new();
    let mut decided = Vec::new();
    // Cases whose later items wait for the next batch.
    let mut held_back: HashSet<i64> = HashSet::new();
    for prepared in prepare(rules, &cases, dues, beside_write).await? {
        let Prepared {
            due,
            people,
            facts,
            decision,
        } = prepared;
        let case_id = due.item.case_id;
        if held_back.contains(&case_id) {
            continue;
        }
        match decision {
            Err(error) => {
                held_back.insert(case_id);
                failed.push((due.kind, due.item.id, error));
            }
            Ok(decision) => {
                if decision.reassigns() {
                    held_back.insert(case_id);
                }
                decided.push(Decided {
                    due,
                    people,
                    facts,
                    decision,
                });
            }
        }
    }
    let directory = write::directory(db, &decided).await?;
    let firings = decided
        .into_iter()
        .map(|d| {
            let case = &cases[&d.due.item.case_id];
            write::address(&directory, case, d, now)
        })
        .collect();
    Ok(Ready {
        cases,
        rechecks,
        firings,
        failed,
        settled: held_back.is_empty(),
    })
}

/// Writes a batch made ready, in one transaction.
pub(super) async fn write(
    db: &Db,
    rules: &Arc<RuleSet>,
    ready: Ready,
    now: DateTime<Utc>,
) -> Result<Fired, StepError> {
    let Ready {
        cases,
        rechecks,
        firings,
        failed,
        ..
    } = ready;
    let mut fired = Fired {
        failed,
        ..Fired::default()
    };
    let written = write::write(db, rules, &cases, rechecks, firings, now).await?;
    for (due, notifications, rule_failed) in written {
        let case = &cases[&due.item.case_id];
        tracing::info!(case_ref = %case.case_ref, item = due.kind.as_str(), key = %due.item.key,
            level = due.cp.level.as_str(), repetition = due.cp.repetition, notifications, "escalation fired");
        fired.escalations += 1;
        fired.by_level[due.cp.level as usize] += 1;
        fired.rule_errors += u64::from(rule_failed);
        fired.notifications += notifications;
    }
    Ok(fired)
}

/// The items of `due` that still exist, in its order, and their cases by id.
async fn read(
    db: &Db,
    due: &[(ItemKind, i64)],
) -> Result<(Vec<(ItemKind, Item)>, HashMap<i64, CaseRow>), sqlx::Error> {
    let mut found: HashMap<(ItemKind, i64), Item> = HashMap::new();
    for kind in [ItemKind::Task, ItemKind::Stage] {
        let ids: Vec<i64> = due.iter().filter(|d| d.0 == kind).map(|d| d.1).collect();
        for item in deadlines::load_many(db, kind, &ids).await? {
            found.insert((kind, item.id), item);
        }
    }
    let items: Vec<(ItemKind, Item)> = due
        .iter()
        .filter_map(|key| found.remove(key).map(|item| (key.0, item)))
        .collect();
    let mut case_ids: Vec<i64> = items.iter().map(|(_, item)| item.case_id).collect();
    case_ids.sort_unstable();
    case_ids.dedup();
    let cases: HashMap<i64, CaseRow> = rows::cases_by_ids(db, &case_ids)
        .await?
        .into_iter()
        .map(|case| (case.id, case))
        .collect();
    if cases.len() < case_ids.len() {
        // As reading one item's case would: the batch fails, and each item alone says why.
        return Err(sqlx::Error::RowNotFound);
    }
    Ok((items, cases))
}

/// Works out the facts and runs the rules of a batch's firings off the async threads, in order:
/// in one blocking task, or where the batch is large and the machine has the cores, in a few
/// that each take an equal part of it. Beside a write, one core is left to the writer: on two
/// cores, rules on both slowed the write, which is what bounds the sweep, more than they gained.
async fn prepare(
    rules: &Arc<RuleSet>,
    cases: &Arc<HashMap<i64, CaseRow>>,
    dues: Vec<Due>,
    beside_write: bool,
) -> Result<Vec<Prepared>, StepError> {
    static CORES: OnceLock<usize> = OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let cores = match beside_write {
        true => cores - 1,
        false => cores,
    };
    let parts = cores.min(dues.len() / MIN_PART).max(1);
    let size = dues.len().div_ceil(parts).max(1);
    let mut dues = dues.into_iter().peekable();
    let mut tasks = Vec::with_capacity(parts);
    while dues.peek().is_some() {
        let part: Vec<Due> = dues.by_ref().take(size).collect();
        let (rules, cases) = (rules.clone(), cases.clone());
        tasks.push(tokio::task::spawn_blocking(move || {
            firing::prepare(&rules, &cases, part)
        }));
    }
    let mut prepared = Vec::new();
    for task in tasks {
        let part = task
            .await
            .map_err(|e| StepError::Internal(format!("escalation rule thread failed: {e}")))?;
        prepared.extend(part);
    }
    Ok(prepared)
}

/// The fewest firings worth a blocking task of their own.
const MIN_PART: usize = 32;
