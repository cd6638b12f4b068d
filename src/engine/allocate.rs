//! The allocation step: new cases get an owner from their scheme's allocation rule. A rule that
//! decides nothing, or fails, leaves the case on the fallback role's worklist with an event that
//! says why; other cases carry on.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::error::StepError;
use super::guard;
use super::progress;
use crate::db::Db;
use crate::db::rows::{self, CaseRow};
use crate::db::sql;
use crate::events::kinds::{self, Kind};
use crate::events::{self, ENGINE};
use crate::rules::RuleSet;
use crate::rules::allocation::{self, Decision, Officer};

/// New cases awaiting allocation, through the partial index `cases_allocation_pending`.
pub const DUE_ALLOCATIONS: &str = "SELECT id FROM cases WHERE allocation = 'pending' AND status IN ('open', 'awaiting_advance') ORDER BY id LIMIT $1";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub allocated: u64,
    pub needed: u64,
}

enum Verdict {
    Owner(Decision),
    Nobody {
        reason: String,
        rule: Option<(String, String)>,
    },
    Failed {
        rule: String,
        version: String,
        message: String,
    },
}

pub async fn run_once(
    db: &Db,
    rules: &Arc<RuleSet>,
    fallback_role: &str,
    now: DateTime<Utc>,
    batch: i64,
    budget: &super::budget::Budget,
) -> Result<Outcome, StepError> {
    let mut outcome = Outcome::default();
    let mut skipped = guard::Skipped::default();
    loop {
        let mut due: Vec<(i64,)> = sql(DUE_ALLOCATIONS).bind(batch).fetch_all(db).await?;
        due.retain(|(id,)| !skipped.has(0, *id));
        if due.is_empty() {
            return Ok(outcome);
        }
        if budget.spent() {
            return Ok(outcome);
        }
        for (id,) in due {
            match guard::catch(one(db, rules, fallback_role, id, now)).await {
                Ok(Some(true)) => outcome.allocated += 1,
                Ok(Some(false)) => outcome.needed += 1,
                Ok(None) => {}
                Err(error) => {
                    skipped.add(0, id);
                    guard::count_failure(db, set_aside(fallback_role, id), &error, now).await?;
                }
            }
        }
    }
}

/// Allocates one case: `Some(true)` when a rule chose an owner, `Some(false)` when the case went
/// to the fallback role's queue, `None` when another writer allocated it first.
async fn one(
    db: &Db,
    rules: &Arc<RuleSet>,
    fallback_role: &str,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<bool>, StepError> {
    let case = rows::case_by_id(db, id).await?;
    let verdict = decide(db, rules, &case).await?;
    let mut tx = db.begin_write().await?;
    let case = rows::case_by_id(&mut tx, id).await?;
    if case.allocation != crate::states::Allocation::Pending {
        return Ok(None);
    }
    let at = case.event_target();
    let facts = case.facts(rules.definition(&case.definition_id).map(|d| &**d));
    let allocated = match verdict {
        Verdict::Owner(d) => {
            let owner = d.owner.clone().unwrap_or_default();
            progress::set_owner(&mut tx, &case, &owner).await?;
            let allocated = Kind::Allocated(kinds::Allocated {
                owner,
                rule: d.rule,
                rule_version: d.version,
                reason: d.reason,
            });
            events::record(&mut tx, at, now, ENGINE, allocated).await?;
            true
        }
        Verdict::Nobody { reason, rule } => {
            needed(&mut tx, &case, fallback_role, now, &reason, rule, &facts).await?;
            false
        }
        Verdict::Failed {
            rule,
            version,
            message,
        } => {
            let failed = Kind::RuleError(kinds::RuleError {
                rule: Some(rule.clone()),
                rule_version: Some(Some(version.clone())),
                message,
                during: kinds::During::Allocation,
                fallback: None,
                item: None,
                expression: None,
                consequence: None,
            });
            events::record(&mut tx, at, now, ENGINE, failed).await?;
            let reason = format!("allocation rule {rule} failed");
            needed(
                &mut tx,
                &case,
                fallback_role,
                now,
                &reason,
                Some((rule, version)),
                &facts,
            )
            .await?;
            false
        }
    };
    tx.commit().await?;
    Ok(Some(allocated))
}

/// A case that cannot be allocated (its row cannot be read, or allocating it keeps failing) goes
/// to the fallback role's queue after repeated failures.
fn set_aside(fallback_role: &str, id: i64) -> guard::Aside {
    guard::Aside {
        step: kinds::Step::Allocation,
        kind: "case",
        id,
        consequence: format!("the case waits on the {fallback_role} worklist to be allocated by hand"),
        take_out: sql("UPDATE cases SET allocation = 'needed', queue_role = $1 WHERE id = $2 AND allocation = 'pending'")
            .bind(fallback_role)
            .bind(id),
        case_of: sql("SELECT id FROM cases WHERE id = $1").bind(id),
    }
}

async fn needed(
    tx: &mut crate::db::Tx,
    case: &CaseRow,
    fallback_role: &str,
    now: DateTime<Utc>,
    reason: &str,
    rule: Option<(String, String)>,
    facts: &crate::facts::CaseFacts,
) -> Result<(), sqlx::Error> {
    sql("UPDATE cases SET allocation = 'needed', queue_role = $1 WHERE id = $2")
        .bind(fallback_role)
        .bind(case.id)
        .execute(&mut *tx)
        .await?;
    let (rule, version) = rule.unzip();
    let needed = kinds::AllocationNeeded {
        queue_role: fallback_role.into(),
        reason: reason.into(),
        rule,
        rule_version: version,
    };
    let data = json!(needed);
    events::record(
        tx,
        case.event_target(),
        now,
        ENGINE,
        Kind::AllocationNeeded(needed),
    )
    .await?;
    // Whoever works the queue is told there is a case to allocate by hand.
    let queue = [crate::rules::escalation::Recipient::Role(
        fallback_role.to_string(),
    )];
    let to = super::recipients::resolve(tx, &queue, &super::recipients::People::default()).await?;
    let facts = json!({"case": facts.to_value(), "allocation": data});
    crate::outbox::enqueue(tx, case.id, None, "allocation_needed", &to, &facts, now).await?;
    Ok(())
}

/// Gathers the facts and runs the rule off the async threads.
async fn decide(db: &Db, rules: &Arc<RuleSet>, case: &CaseRow) -> Result<Verdict, StepError> {
    let Some(def) = rules.definition(&case.definition_id).cloned() else {
        return Ok(Verdict::Nobody {
            reason: format!(
                "definition {} is not in the loaded rule set",
                case.definition_id
            ),
            rule: None,
        });
    };
    let Some(script) = def
        .allocation
        .as_ref()
        .and_then(|n| rules.scripts.get(n))
        .cloned()
    else {
        return Ok(Verdict::Nobody {
            reason: format!("no allocation rule applies to definition {}", def.id),
            rule: None,
        });
    };
    let facts = case.facts(Some(&def));
    let officers = officers(db).await?;
    let sandbox = rules.sandbox.clone();
    let result = tokio::task::spawn_blocking(move || {
        allocation::allocate(&sandbox, &script, &facts, &officers)
    })
    .await
    .map_err(|e| StepError::Internal(format!("allocation rule thread failed: {e}")))?;
    Ok(match result {
        Ok(d) if d.owner.is_some() => Verdict::Owner(d),
        Ok(d) => Verdict::Nobody {
            reason: d
                .reason
                .clone()
                .unwrap_or_else(|| format!("allocation rule {} chose nobody", d.rule)),
            rule: Some((d.rule, d.version)),
        },
        Err(e) => {
            let version = rules
                .scripts
                .get(&e.script)
                .map(|s| s.version.clone())
                .unwrap_or_default();
            Verdict::Failed {
                rule: e.script.clone(),
                version,
                message: e.to_string(),
            }
        }
    })
}

/// Every active user with their roles and open case count (kept in `officer_loads`).
pub async fn officers(db: &Db) -> Result<Vec<Officer>, sqlx::Error> {
    let users: Vec<(String, Option<String>, i64)> = sql(
        "SELECT u.ref, u.line_manager, COALESCE(l.open_cases, 0) \
         FROM users u LEFT JOIN officer_loads l ON l.user_ref = u.ref WHERE u.active ORDER BY u.ref",
    )
    .fetch_all(db)
    .await?;
    let rows: Vec<(String, String)> =
        sql("SELECT ur.user_ref, ur.role_ref FROM user_roles ur JOIN users u ON u.ref = ur.user_ref WHERE u.active ORDER BY ur.user_ref, ur.role_ref")
            .fetch_all(db)
            .await?;
    let mut roles: HashMap<String, Vec<String>> = HashMap::new();
    for (user, role) in rows {
        roles.entry(user).or_default().push(role);
    }
    Ok(users
        .into_iter()
        .map(|(user_ref, line_manager, open_cases)| Officer {
            roles: roles.remove(&user_ref).unwrap_or_default(),
            user_ref,
            open_cases,
            line_manager,
        })
        .collect())
}
