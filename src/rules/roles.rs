//! `rules/roles.toml`: the roles the rules refer to, which the CRM creates with `upsert_role`.
//! When the file is there, `check` refuses a definition or an escalation rule that names a role
//! it does not declare; and every escalation rule is run on sample items to make sure the
//! templates and roles it names exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::escalation::{self, Action, Recipient};
use super::{Sandbox, Script};
use crate::mail::Renderer;
use crate::problems::{Problem, Source};

pub const FILE: &str = "roles.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesFile {
    roles: BTreeMap<String, String>,
}

/// The declared role refs, or `None` without a roles file.
pub fn load(rules_dir: &Path) -> Result<Option<BTreeSet<String>>, Problem> {
    let path = rules_dir.join(FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let src = Source {
        path: &path,
        text: &text,
    };
    let file: RolesFile = toml::from_str(&text).map_err(|e| {
        src.at(
            e.span().map_or(0, |s| s.start),
            e.message().trim().to_string(),
        )
        .help("write [roles] then one line per role: ref = \"name\"")
    })?;
    Ok(Some(file.roles.into_keys().collect()))
}

/// Runs each escalation rule on a sample task and stage at every level, and reports templates
/// and roles it names that do not exist. A rule that fails on the samples is left to its tests.
pub fn check_escalations(
    sandbox: &Sandbox,
    scripts: &BTreeMap<String, Arc<Script>>,
    renderer: &Renderer,
    roles: Option<&BTreeSet<String>>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut reported = BTreeSet::new();
    for script in scripts
        .values()
        .filter(|s| s.name.starts_with("escalation/"))
    {
        let text = std::fs::read_to_string(&script.path).unwrap_or_default();
        let src = Source {
            path: &script.path,
            text: &text,
        };
        let at = |needle: &str| src.position(text.find(needle).unwrap_or(0));
        for kind in ["task", "stage"] {
            for level in ["amber", "exceeded", "follow_on"] {
                let mut item = crate::mail::render::sample_facts(&format!("sla_{level}"));
                item["kind"] = kind.into();
                item["level"] = level.into();
                if kind == "stage" {
                    item["task"] = serde_json::Value::Null;
                }
                let Ok(decided) = escalation::escalate(sandbox, script, &item) else {
                    continue;
                };
                for action in decided.actions {
                    let Action::Notify { to, template } = action else {
                        continue;
                    };
                    if !renderer.kinds().contains(&template)
                        && reported.insert((script.name.clone(), template.clone()))
                    {
                        problems.push(
                            Problem::new(&script.path, at(&format!("\"{template}\"")), format!("notify names template {template:?}, which does not exist"))
                                .help(format!("add templates/{template}.subject.j2 and {template}.txt.j2, or use one of: {}",
                                    renderer.kinds().iter().cloned().collect::<Vec<_>>().join(", "))),
                        );
                    }
                    for r in to {
                        if let (Recipient::Role(role), Some(known)) = (&r, roles)
                            && !known.contains(role)
                            && reported.insert((script.name.clone(), format!("role:{role}")))
                        {
                            problems.push(
                                Problem::new(
                                    &script.path,
                                    at(&format!("role:{role}")),
                                    format!("notify names unknown role {role:?}"),
                                )
                                .help("declare it in rules/roles.toml"),
                            );
                        }
                    }
                }
            }
        }
    }
    problems
}
