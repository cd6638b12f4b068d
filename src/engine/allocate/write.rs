//! Writing a decided batch in one transaction, with set-based statements: the new owners of the
//! cases, their open stages and open tasks; the cases left for the fallback role's worklist; the
//! events in case order, as allocating the cases one at a time would have written them; and the
//! notifications to the fallback role.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::decide::{Decided, Verdict};
use crate::db::rows::{self, CaseRow};
use crate::db::{Db, Sql, Tx, rows_per_statement};
use crate::engine::error::StepError;
use crate::engine::recipients::{self, People};
use crate::events::kinds::{self, Kind};
use crate::events::{self, ENGINE, Pending};
use crate::rules::RuleSet;
use crate::rules::escalation::Recipient;

/// What a step or a batch did: cases allocated, and cases left for the fallback role's worklist.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub allocated: u64,
    pub needed: u64,
    /// Cases whose allocation rule failed (a `rule_error` each; they went to the queue).
    pub rule_errors: u64,
}

impl std::ops::AddAssign for Outcome {
    fn add_assign(&mut self, other: Outcome) {
        self.allocated += other.allocated;
        self.needed += other.needed;
        self.rule_errors += other.rule_errors;
    }
}

/// Writes the verdicts of the cases still awaiting allocation; those another writer allocated
/// since they were read are left alone and not counted.
pub(super) async fn batch(
    db: &Db,
    rules: &RuleSet,
    fallback_role: &str,
    decided: Decided,
    now: DateTime<Utc>,
) -> Result<Outcome, StepError> {
    if decided.is_empty() {
        return Ok(Outcome::default());
    }
    let (cases, verdicts): (Vec<CaseRow>, Vec<Verdict>) = decided.into_iter().unzip();
    let mut tx = db.begin_write().await?;
    let pending = still_pending(&mut tx, &cases).await?;
    // A case for the worklist is read again under the lock: its notification shows it as it is.
    let queued_ids: Vec<i64> = cases
        .iter()
        .zip(&verdicts)
        .filter(|(c, v)| pending.contains(&c.id) && !matches!(v, Verdict::Owner(_)))
        .map(|(c, _)| c.id)
        .collect();
    let mut fresh: HashMap<i64, CaseRow> = HashMap::new();
    for chunk in queued_ids.chunks(rows_per_statement(1)) {
        let rows = rows::awaiting_allocation(&mut tx, chunk).await?;
        fresh.extend(rows.into_iter().map(|c| (c.id, c)));
    }
    let mut owners: Vec<(i64, String)> = Vec::new();
    let mut queued: Vec<(&CaseRow, Value)> = Vec::new();
    let mut written: Vec<Pending> = Vec::new();
    let mut rule_errors = 0;
    for (case, verdict) in cases.iter().zip(verdicts) {
        if !pending.contains(&case.id) {
            continue;
        }
        let case = fresh.get(&case.id).unwrap_or(case);
        let event = |event| Pending {
            case: case.event_target(),
            at: now,
            actor: ENGINE,
            event,
        };
        let needed = match verdict {
            Verdict::Owner(d) => {
                let owner = d.owner.unwrap_or_default();
                owners.push((case.id, owner.clone()));
                written.push(event(Kind::Allocated(kinds::Allocated {
                    owner,
                    rule: d.rule,
                    rule_version: d.version,
                    reason: d.reason,
                })));
                continue;
            }
            Verdict::Nobody { reason, rule } => needed(fallback_role, reason, rule),
            Verdict::Failed {
                rule,
                version,
                message,
            } => {
                written.push(event(rule_error(&rule, &version, message)));
                rule_errors += 1;
                let reason = format!("allocation rule {rule} failed");
                needed(fallback_role, reason, Some((rule, version)))
            }
        };
        queued.push((case, json!(needed)));
        written.push(event(Kind::AllocationNeeded(needed)));
    }
    set_owners(&mut tx, &owners).await?;
    to_queue(&mut tx, fallback_role, &queued_ids).await?;
    events::record_all(&mut tx, &written).await?;
    notify_queue(&mut tx, rules, fallback_role, &queued, now).await?;
    tx.commit().await?;
    Ok(Outcome {
        allocated: owners.len() as u64,
        needed: queued.len() as u64,
        rule_errors,
    })
}

/// Which of the cases still await allocation: another writer may have allocated some since
/// they were read.
async fn still_pending(tx: &mut Tx, cases: &[CaseRow]) -> Result<HashSet<i64>, sqlx::Error> {
    let mut pending = HashSet::new();
    for chunk in cases.chunks(rows_per_statement(1)) {
        let rows: Vec<(i64,)> = Sql::sized(|marks| {
            format!(
                "SELECT id FROM cases WHERE allocation = 'pending' AND id IN {}",
                marks.list(chunk.len(), 1)
            )
        })
        .bind_all(chunk.iter().map(|c| c.id))
        .fetch_all(&mut *tx)
        .await?;
        pending.extend(rows.into_iter().map(|(id,)| id));
    }
    Ok(pending)
}

fn needed(
    fallback_role: &str,
    reason: String,
    rule: Option<(String, String)>,
) -> kinds::AllocationNeeded {
    let (rule, rule_version) = rule.unzip();
    kinds::AllocationNeeded {
        queue_role: fallback_role.into(),
        reason,
        rule,
        rule_version,
    }
}

fn rule_error(rule: &str, version: &str, message: String) -> Kind {
    Kind::RuleError(kinds::RuleError {
        rule: Some(rule.into()),
        rule_version: Some(Some(version.into())),
        message,
        during: kinds::During::Allocation,
        fallback: None,
        item: None,
        expression: None,
        consequence: None,
    })
}

/// Gives each case, its open stages and its open tasks their new owner (and the owner's line
/// manager), as `progress::set_owner` does for one case.
async fn set_owners(tx: &mut Tx, owners: &[(i64, String)]) -> Result<(), sqlx::Error> {
    const CASES: &str = "UPDATE cases SET owner = v.owner, allocation = 'allocated', queue_role = NULL \
         FROM v WHERE cases.id = v.case_id";
    const STAGES: &str = "UPDATE stages SET owner = v.owner, line_manager = \
         (SELECT m.ref FROM users u JOIN users m ON m.ref = u.line_manager WHERE u.ref = v.owner) \
         FROM v WHERE stages.case_id = v.case_id AND stages.status = 'open'";
    const TASKS: &str = "UPDATE tasks SET owner = v.owner, line_manager = \
         (SELECT m.ref FROM users u JOIN users m ON m.ref = u.line_manager WHERE u.ref = v.owner) \
         FROM v WHERE tasks.case_id = v.case_id AND tasks.status IN ('waiting', 'active', 'on_hold')";
    for chunk in owners.chunks(rows_per_statement(2)) {
        for update in [CASES, STAGES, TASKS] {
            let mut statement = Sql::sized(|marks| {
                format!(
                    "WITH v (case_id, owner) AS (VALUES {}) {update}",
                    marks.values(chunk.len(), 2, 1)
                )
            });
            for (id, owner) in chunk {
                statement = statement.bind(*id).bind(owner);
            }
            statement.execute(&mut *tx).await?;
        }
    }
    Ok(())
}

/// Puts the cases on the fallback role's worklist.
async fn to_queue(tx: &mut Tx, fallback_role: &str, ids: &[i64]) -> Result<(), sqlx::Error> {
    for chunk in ids.chunks(rows_per_statement(1)) {
        Sql::sized(|marks| {
            format!(
                "UPDATE cases SET allocation = 'needed', queue_role = {} WHERE id IN {}",
                marks.one(1),
                marks.list(chunk.len(), 2)
            )
        })
        .bind(fallback_role)
        .bind_all(chunk.iter().copied())
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Whoever works the queue is told there is a case to allocate by hand, for each case.
async fn notify_queue(
    tx: &mut Tx,
    rules: &RuleSet,
    fallback_role: &str,
    queued: &[(&CaseRow, Value)],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if queued.is_empty() {
        return Ok(());
    }
    let queue = [Recipient::Role(fallback_role.to_string())];
    let to = recipients::resolve(tx, &queue, &People::default()).await?;
    for (case, allocation) in queued {
        let definition = rules.definition(&case.definition_id).map(|d| &**d);
        let facts = json!({"case": case.facts(definition).to_value(), "allocation": allocation});
        let facts = crate::personal::minimise(definition, case.property_address.as_deref(), facts);
        crate::outbox::enqueue(tx, case.id, None, "allocation_needed", &to, &facts, now).await?;
    }
    Ok(())
}
