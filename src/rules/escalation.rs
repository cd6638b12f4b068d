//! Escalation rules: `fn escalate(item)` decides what happens when a task or stage reaches an SLA
//! checkpoint (amber, exceeded, follow-on). It gets the item, its case, its SLA dates and the
//! people around it, and returns actions built with the host's helpers:
//! `notify(recipients, template)` and `reassign(user)`; an empty array does nothing.

use rhai::{Array, Dynamic, Map};
use serde::{Deserialize, Serialize};

use super::{RuleError, Sandbox, Script};

/// Who a notification goes to, as rules name them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "ref")]
pub enum Recipient {
    TaskOwner,
    StageOwner,
    CaseOwner,
    /// The item's line manager (the owner's line manager when the item was entered or activated).
    LineManager,
    /// Every member of the definition's team role.
    Team,
    /// The applicant contact, or every member of the applicant group.
    Applicant,
    Role(String),
    /// A stakeholder contact group.
    Group(String),
    User(String),
}

impl Recipient {
    pub fn parse(text: &str) -> Result<Recipient, String> {
        Ok(match text {
            "task_owner" => Recipient::TaskOwner,
            "stage_owner" => Recipient::StageOwner,
            "case_owner" => Recipient::CaseOwner,
            "line_manager" => Recipient::LineManager,
            "team" => Recipient::Team,
            "applicant" => Recipient::Applicant,
            _ => match text.split_once(':') {
                Some(("role", r)) if !r.is_empty() => Recipient::Role(r.to_string()),
                Some(("group", g)) if !g.is_empty() => Recipient::Group(g.to_string()),
                Some(("user", u)) if !u.is_empty() => Recipient::User(u.to_string()),
                _ => {
                    return Err(format!(
                        "unknown recipient {text:?}: use task_owner, stage_owner, case_owner, line_manager, \
                         team, applicant, role:REF, group:REF or user:REF"
                    ));
                }
            },
        })
    }
}

/// What a rule asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    Notify {
        to: Vec<Recipient>,
        template: String,
    },
    Reassign {
        to: String,
    },
}

/// Runs `escalate(item)`. Blocking: call from a blocking thread.
/// What a rule decided, and why when it says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decided {
    pub actions: Vec<Action>,
    pub reason: Option<String>,
}

pub fn escalate(
    sandbox: &Sandbox,
    script: &Script,
    item: &serde_json::Value,
) -> Result<Decided, RuleError> {
    let bad = |message: String| RuleError {
        script: script.name.clone(),
        path: script.path.display().to_string(),
        position: String::new(),
        message,
    };
    let mut result = sandbox.call(script, "escalate", (crate::script::from_json(item),))?;
    // `#{ actions: [...], reason: "..." }` explains itself; the reason is kept with the decision.
    let mut reason = None;
    if let Some(map) = result.clone().try_cast::<Map>()
        && map.contains_key("actions")
    {
        reason = match map.get("reason") {
            None => None,
            Some(r) if r.is_unit() => None,
            Some(r) => Some(
                r.clone()
                    .into_string()
                    .map_err(|t| bad(format!("reason must be text, not {t}")))?,
            ),
        };
        result = map.get("actions").cloned().unwrap_or(Dynamic::UNIT);
    }
    let items: Vec<Dynamic> = if result.is_unit() {
        Vec::new()
    } else if result.is_array() {
        result.cast::<Array>()
    } else if result.is_map() {
        vec![result]
    } else {
        return Err(bad(format!(
            "escalate returned {}; return an array of notify(...) and reassign(...) actions, or [], \
             optionally as #{{actions: [...], reason: \"why\"}}",
            result.type_name()
        )));
    };
    let actions = items
        .into_iter()
        .map(|d| action(d).map_err(&bad))
        .collect::<Result<_, _>>()?;
    Ok(Decided { actions, reason })
}

fn action(d: Dynamic) -> Result<Action, String> {
    let Some(map) = d.clone().try_cast::<Map>() else {
        return Err(format!(
            "an action must be notify(...) or reassign(...), not {}",
            d.type_name()
        ));
    };
    if let Some(to) = map.get("reassign") {
        let to = to
            .clone()
            .into_string()
            .map_err(|t| format!("reassign needs a user ref, not {t}"))?;
        return Ok(Action::Reassign { to });
    }
    let to = map
        .get("notify")
        .ok_or("an action must be notify(...) or reassign(...)")?;
    let to: Vec<Recipient> = to
        .clone()
        .into_typed_array::<rhai::ImmutableString>()
        .map_err(|t| format!("notify needs an array of recipients as text, not {t}"))?
        .iter()
        .map(|r| Recipient::parse(r))
        .collect::<Result<_, _>>()?;
    let template = map
        .get("template")
        .and_then(|t| t.clone().into_string().ok())
        .filter(|t| !t.is_empty())
        .ok_or("notify needs a template name")?;
    Ok(Action::Notify { to, template })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::rules::Limits;

    fn run(body: &str) -> Result<Vec<Action>, RuleError> {
        decide(body).map(|d| d.actions)
    }

    fn decide(body: &str) -> Result<Decided, RuleError> {
        let sandbox = Sandbox::new(&Limits::default());
        let script = sandbox
            .compile("escalation/t", Path::new("rules/escalation/t.rhai"), body)
            .unwrap();
        escalate(
            &sandbox,
            &script,
            &serde_json::json!({"level": "exceeded", "repetition": 0}),
        )
    }

    #[test]
    fn rules_build_actions_with_the_host_helpers() {
        let actions = run(r#"fn escalate(item) { [notify(["task_owner", "role:legal"], "sla_exceeded"), reassign("u2")] }"#).unwrap();
        assert_eq!(
            actions,
            vec![
                Action::Notify {
                    to: vec![Recipient::TaskOwner, Recipient::Role("legal".into())],
                    template: "sla_exceeded".into()
                },
                Action::Reassign { to: "u2".into() },
            ]
        );
        assert_eq!(run("fn escalate(item) { [] }").unwrap(), vec![]);
        assert_eq!(
            run(r#"fn escalate(item) { notify("line_manager", "x") }"#)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_rule_that_returns_nonsense_gets_an_error_that_says_what_to_return() {
        assert!(
            run("fn escalate(item) { 42 }")
                .unwrap_err()
                .message
                .contains("return an array")
        );
        let err = run(r#"fn escalate(item) { [notify(["the_boss"], "x")] }"#).unwrap_err();
        assert!(
            err.message.contains("unknown recipient \"the_boss\""),
            "{err}"
        );
        assert!(
            run(r#"fn escalate(item) { [notify(["team"], "")] }"#)
                .unwrap_err()
                .message
                .contains("template")
        );
    }
}
