//! The allocation step: new cases get an owner from their scheme's allocation rule. A rule that
//! decides nothing, or fails, leaves the case on the fallback role's worklist with an event that
//! says why; other cases carry on.
//!
//! Cases go in batches. Each batch reads the officers and their loads once (the loads are counts
//! that triggers on `cases` keep in `officer_loads`, so reading them costs the same at any number
//! of open cases), runs the rules for the whole batch in one blocking task, each allocation
//! counting towards its officer's load for the cases after it, and writes the batch in one
//! transaction with set-based statements. A batch that fails is done again case by case, so a
//! case that cannot be allocated fails alone.

mod decide;
mod write;

pub use write::Outcome;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::error::StepError;
use super::guard;
use crate::db::rows;
use crate::db::{Db, rows_per_statement, sql};
use crate::events::kinds;
use crate::rules::RuleSet;
use crate::rules::allocation::{Officer, Roster};

/// New cases awaiting allocation, through the partial index `cases_allocation_pending`.
pub const DUE_ALLOCATIONS: &str = "SELECT id FROM cases WHERE allocation = 'pending' AND status IN ('open', 'awaiting_advance') ORDER BY id LIMIT $1";

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
        let due: Vec<(i64,)> = sql(DUE_ALLOCATIONS).bind(batch).fetch_all(db).await?;
        let ids: Vec<i64> = due
            .into_iter()
            .map(|(id,)| id)
            .filter(|id| !skipped.has(0, *id))
            .collect();
        if ids.is_empty() || budget.spent() {
            return Ok(outcome);
        }
        match guard::catch(allocate(db, rules, fallback_role, &ids, now)).await {
            Ok(done) => outcome += done,
            Err(error) => {
                tracing::warn!(
                    cases = ids.len(),
                    error,
                    "an allocation batch failed; its cases are tried one by one"
                );
                for id in ids {
                    match guard::catch(allocate(db, rules, fallback_role, &[id], now)).await {
                        Ok(done) => outcome += done,
                        Err(error) => {
                            skipped.add(0, id);
                            let aside = set_aside(fallback_role, id);
                            guard::count_failure(db, aside, &error, now).await?;
                        }
                    }
                }
            }
        }
    }
}

/// Allocates a batch of cases: reads them and the officers, runs the rules, writes the outcome.
/// Cases another writer allocated first are left alone and not counted.
async fn allocate(
    db: &Db,
    rules: &Arc<RuleSet>,
    fallback_role: &str,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<Outcome, StepError> {
    let mut cases = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(rows_per_statement(1)) {
        cases.extend(rows::awaiting_allocation(db, chunk).await?);
    }
    let roster = Roster::new(officers(db).await?).map_err(StepError::Internal)?;
    let verdicts = decide::batch(rules, cases, roster).await?;
    write::batch(db, rules, fallback_role, verdicts, now).await
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
