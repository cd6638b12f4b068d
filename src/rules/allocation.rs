//! Allocation rules: `fn allocate(case, officers)` picks an owner for a new case from the facts
//! the host gives it, and may say why.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rhai::{Array, Dynamic, Map};
use serde::Serialize;

use super::{RuleError, Sandbox, Script};
use crate::facts::CaseFacts;
use crate::script::Loads;

/// What the rule sees of each active officer.
#[derive(Debug, Clone, Serialize)]
pub struct Officer {
    #[serde(rename = "ref")]
    pub user_ref: String,
    pub roles: Vec<String>,
    pub open_cases: i64,
    pub line_manager: Option<String>,
}

/// A rule's decision, with the rule's identity so it can be explained later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub owner: Option<String>,
    pub reason: Option<String>,
    pub rule: String,
    pub version: String,
}

/// Runs the rule. Blocking: call from a blocking thread.
pub fn allocate(
    sandbox: &Sandbox,
    script: &Script,
    case: &CaseFacts,
    officers: &[Officer],
) -> Result<Decision, RuleError> {
    Roster::new(officers.to_vec())
        .map_err(|message| bad(script, message))?
        .allocate(sandbox, script, case)
}

/// The officers for a batch of allocations: converted once to what rules see, given to every
/// rule of the batch without a copy each, with each officer's `open_cases` kept up to date as the
/// batch allocates cases.
#[derive(Debug, Clone)]
pub struct Roster {
    officers: Vec<Officer>,
    /// The same officers as the maps a rule gets, in the same order: one shared, read-only array.
    shared: Dynamic,
    /// What `least_loaded` reads of that array, kept beside it.
    loads: Option<Arc<Loads>>,
    by_ref: HashMap<String, usize>,
    /// Rules found to change their officers in place: these get a copy each time.
    copying: HashSet<String>,
}

impl Roster {
    pub fn new(officers: Vec<Officer>) -> Result<Roster, String> {
        let maps = officers
            .iter()
            .map(rhai::serde::to_dynamic)
            .collect::<Result<Array, _>>()
            .map_err(|e| format!("cannot pass facts: {e}"))?;
        let by_ref = officers
            .iter()
            .enumerate()
            .map(|(i, o)| (o.user_ref.clone(), i))
            .collect();
        let shared = Dynamic::from_array(maps).into_read_only().into_shared();
        let loads = shared
            .read_lock::<Array>()
            .and_then(|maps| Loads::of(&maps))
            .map(Arc::new);
        Ok(Roster {
            officers,
            shared,
            loads,
            by_ref,
            copying: HashSet::new(),
        })
    }

    pub fn officers(&self) -> &[Officer] {
        &self.officers
    }

    /// Counts one more open case for `owner`, so the next rule in the batch sees it.
    pub fn count_case(&mut self, owner: &str) {
        let Some(&i) = self.by_ref.get(owner) else {
            return;
        };
        self.officers[i].open_cases += 1;
        let open_cases = self.officers[i].open_cases;
        if let Some(mut maps) = self.shared.write_lock::<Array>()
            && let Ok(mut map) = maps[i].as_map_mut()
        {
            map.insert("open_cases".into(), open_cases.into());
        }
        if let Some(loads) = &mut self.loads {
            Arc::make_mut(loads).set_open_cases(i, open_cases);
        }
    }

    /// Runs the rule for one case. Blocking: call from a blocking thread.
    pub fn allocate(
        &mut self,
        sandbox: &Sandbox,
        script: &Script,
        case: &CaseFacts,
    ) -> Result<Decision, RuleError> {
        if !self.copying.contains(&script.name) {
            let args = (case.to_dynamic(), self.shared.clone());
            let loads = self.loads.clone();
            if let Some(result) = sandbox.call_sharing(script, "allocate", args, loads)? {
                return decision(script, result, &self.by_ref);
            }
            // The rule changes the officers it is given: from now on it gets its own copy.
            self.copying.insert(script.name.clone());
        }
        let copy = Dynamic::from_array(
            self.shared
                .clone()
                .flatten()
                .into_array()
                .unwrap_or_default(),
        );
        let result = sandbox.call(script, "allocate", (case.to_dynamic(), copy))?;
        decision(script, result, &self.by_ref)
    }
}

fn bad(script: &Script, what: String) -> RuleError {
    RuleError {
        script: script.name.clone(),
        path: script.path.display().to_string(),
        position: String::new(),
        message: what,
    }
}

/// Reads what the rule returned.
fn decision(
    script: &Script,
    result: Dynamic,
    officers: &HashMap<String, usize>,
) -> Result<Decision, RuleError> {
    let bad = |what: String| bad(script, what);
    let (owner, reason) = if result.is_unit() {
        (None, None)
    } else if result.is_string() {
        (Some(result.into_string().unwrap_or_default()), None)
    } else if result.is_map() {
        let map: Map = result.cast();
        if let Some(unknown) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "owner" | "reason"))
        {
            return Err(bad(format!(
                "allocate returned a map with the unknown key {unknown:?}; use owner and reason"
            )));
        }
        let text = |key: &str| -> Result<Option<String>, RuleError> {
            match map.get(key) {
                None => Ok(None),
                Some(v) if v.is_unit() => Ok(None),
                Some(v) if v.is_string() => Ok(Some(v.clone().into_string().unwrap_or_default())),
                Some(v) => Err(bad(format!(
                    "`{key}` in the returned map must be a string, not {}",
                    v.type_name()
                ))),
            }
        };
        (text("owner")?, text("reason")?)
    } else {
        return Err(bad(format!(
            "allocate returned {}; return an officer's ref, #{{owner: ref, reason: text}}, or () for none",
            result.type_name()
        )));
    };
    if let Some(o) = &owner
        && !officers.contains_key(o)
    {
        return Err(bad(format!(
            "allocate returned {o:?}, which is not an active officer"
        )));
    }
    Ok(Decision {
        owner,
        reason,
        rule: script.name.clone(),
        version: script.version.clone(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::script::Limits;

    fn officer(r: &str, open_cases: i64) -> Officer {
        Officer {
            user_ref: r.into(),
            roles: vec!["home_ownership".into()],
            open_cases,
            line_manager: None,
        }
    }

    fn rule(sandbox: &Sandbox, text: &str) -> Script {
        sandbox
            .compile("rule", Path::new("rules/rule.rhai"), text)
            .unwrap()
    }

    #[test]
    fn each_case_counted_in_a_batch_is_seen_by_the_next_rule() {
        let sandbox = Sandbox::new(&Limits::default());
        let script = rule(
            &sandbox,
            "fn allocate(c, officers) {\n\
               let o = ();\n\
               for x in officers { if o == () || x.open_cases < o.open_cases { o = x; } }\n\
               #{owner: o.ref, reason: `${o.open_cases}`}\n\
             }",
        );
        let mut roster = Roster::new(vec![officer("a", 1), officer("b", 1)]).unwrap();
        let chosen = allocate_in_turn(&mut roster, &sandbox, &script, 4);
        assert_eq!(chosen, ["a:1", "b:1", "a:2", "b:2"]);
        let loads: Vec<i64> = roster.officers().iter().map(|o| o.open_cases).collect();
        assert_eq!(loads, [3, 3]);
    }

    #[test]
    fn least_loaded_sees_each_case_counted_in_a_batch() {
        let sandbox = Sandbox::new(&Limits::default());
        let script = rule(
            &sandbox,
            "fn allocate(c, officers) {\n\
               let o = officers.least_loaded(c.team_role);\n\
               #{owner: o.ref, reason: `${o.open_cases}`}\n\
             }",
        );
        let mut roster =
            Roster::new(vec![officer("b", 2), officer("c", 0), officer("a", 1)]).unwrap();
        let chosen = allocate_in_turn(&mut roster, &sandbox, &script, 5);
        assert_eq!(chosen, ["c:0", "a:1", "c:1", "a:2", "b:2"]);
    }

    /// Allocates `n` cases one after another, each owner counted before the next: "owner:reason".
    fn allocate_in_turn(
        roster: &mut Roster,
        sandbox: &Sandbox,
        script: &Script,
        n: usize,
    ) -> Vec<String> {
        (0..n)
            .map(|_| {
                let d = roster
                    .allocate(sandbox, script, &CaseFacts::sample())
                    .unwrap();
                let owner = d.owner.unwrap();
                roster.count_case(&owner);
                format!("{owner}:{}", d.reason.unwrap())
            })
            .collect()
    }

    #[test]
    fn a_rule_that_changes_its_officers_changes_only_its_own_copy() {
        let sandbox = Sandbox::new(&Limits::default());
        let script = rule(
            &sandbox,
            "fn allocate(c, officers) {\n\
               let seen = officers[0].open_cases;\n\
               officers[0].open_cases = 100;\n\
               officers.sort(|x, y| y.open_cases - x.open_cases);\n\
               #{owner: officers[0].ref, reason: `${seen}`}\n\
             }",
        );
        let mut roster = Roster::new(vec![officer("a", 1), officer("b", 5)]).unwrap();
        for _ in 0..2 {
            let d = roster
                .allocate(&sandbox, &script, &CaseFacts::sample())
                .unwrap();
            assert_eq!(
                (d.owner.as_deref(), d.reason.as_deref()),
                (Some("a"), Some("1"))
            );
        }
        let loads: Vec<i64> = roster.officers().iter().map(|o| o.open_cases).collect();
        assert_eq!(loads, [1, 5]);
    }
}
