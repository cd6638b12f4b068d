//! Deciding a batch: each case's allocation rule, run for the whole batch in one blocking task.
//! Each case allocated counts at once towards its officer's load, so the next case of the batch
//! sees it, as it would had the cases been allocated one at a time.

use std::sync::Arc;

use crate::db::rows::CaseRow;
use crate::engine::error::StepError;
use crate::rules::RuleSet;
use crate::rules::allocation::{Decision, Roster};

/// What the rule decided for one case.
pub(super) enum Verdict {
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

/// The batch's cases, in the order given, each with its verdict.
pub(super) type Decided = Vec<(CaseRow, Verdict)>;

/// Runs the rules for `cases` in order, off the async threads.
pub(super) async fn batch(
    rules: &Arc<RuleSet>,
    cases: Vec<CaseRow>,
    mut roster: Roster,
) -> Result<Decided, StepError> {
    let rules = Arc::clone(rules);
    tokio::task::spawn_blocking(move || {
        cases
            .into_iter()
            .map(|case| {
                let verdict = decide(&rules, &mut roster, &case);
                (case, verdict)
            })
            .collect()
    })
    .await
    .map_err(|e| StepError::Internal(format!("allocation rule thread failed: {e}")))
}

/// Runs the case's allocation rule; an owner it chooses has one more open case from now on.
fn decide(rules: &RuleSet, roster: &mut Roster, case: &CaseRow) -> Verdict {
    let Some(def) = rules.definition(&case.definition_id) else {
        return Verdict::Nobody {
            reason: format!(
                "definition {} is not in the loaded rule set",
                case.definition_id
            ),
            rule: None,
        };
    };
    let Some(script) = def.allocation.as_ref().and_then(|n| rules.scripts.get(n)) else {
        return Verdict::Nobody {
            reason: format!("no allocation rule applies to definition {}", def.id),
            rule: None,
        };
    };
    let facts = case.facts(Some(def));
    match roster.allocate(&rules.sandbox, script, &facts) {
        Ok(d) => match &d.owner {
            Some(owner) => {
                roster.count_case(owner);
                Verdict::Owner(d)
            }
            None => Verdict::Nobody {
                reason: d
                    .reason
                    .clone()
                    .unwrap_or_else(|| format!("allocation rule {} chose nobody", d.rule)),
                rule: Some((d.rule, d.version)),
            },
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
    }
}
