//! Allocation rules: `fn allocate(case, officers)` picks an owner for a new case from the facts
//! the host gives it, and may say why.

use rhai::{Dynamic, Map};
use serde::Serialize;

use super::{RuleError, Sandbox, Script};
use crate::facts::CaseFacts;

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
    let bad = |what: String| RuleError {
        script: script.name.clone(),
        path: script.path.display().to_string(),
        position: String::new(),
        message: what,
    };
    let facts = |v: Result<Dynamic, Box<rhai::EvalAltResult>>| {
        v.map_err(|e| bad(format!("cannot pass facts: {e}")))
    };
    let args = (
        facts(rhai::serde::to_dynamic(case))?,
        facts(rhai::serde::to_dynamic(officers))?,
    );
    let result = sandbox.call(script, "allocate", args)?;
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
        && !officers.iter().any(|off| &off.user_ref == o)
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
