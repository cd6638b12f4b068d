//! The rule set: every definition, script and template under `rules/` and `templates/`, loaded
//! and checked as one. A set either loads whole or not at all, so a broken edit never replaces a
//! good set.

pub mod allocation;
pub mod escalation;
pub mod retention;
mod roles;
pub mod target;
pub mod testing;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::definitions::{self, Definition, KnownNames};
use crate::mail::Renderer;
use crate::problems::{Problem, Problems};
pub use crate::script::{Limits, RuleError, Sandbox, Script};
use crate::sla::{Calendar, Calendars};

/// Functions the host calls, by script family, with their arity.
const EXPECTED_FUNCTIONS: &[(&str, &str, usize, &str)] = &[
    (
        "allocation",
        "allocate",
        2,
        "fn allocate(case_facts, officers) { ... }",
    ),
    ("escalation/", "escalate", 1, "fn escalate(item) { ... }"),
];

pub struct RuleSet {
    pub definitions: Vec<Arc<Definition>>,
    /// Housing options: enquiry forms, advice sections and statements.
    pub advice: crate::advice::Advice,
    /// Working-day calendars: the bank-holiday divisions and the organisation's closures.
    pub calendars: Calendars,
    /// Notification templates, checked by rendering each with sample facts.
    pub templates: Renderer,
    /// How long closed cases' personal data is kept (`rules/retention.toml`).
    pub retention: retention::Retention,
    /// The sandbox limits the set was loaded with (rule tests run under the same).
    pub limits: Limits,
    pub scripts: BTreeMap<String, Arc<Script>>,
    pub sandbox: Arc<Sandbox>,
    /// Content hash of every file in the set.
    pub hash: String,
    pub rules_dir: PathBuf,
    pub templates_dir: PathBuf,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("hash", &self.hash)
            .field("definitions", &self.definitions.len())
            .finish()
    }
}

/// Why a claim cannot be taken under any definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCovered(pub String);

impl RuleSet {
    /// Loads and checks everything; on failure returns every problem found.
    pub fn load(
        rules_dir: &Path,
        templates_dir: &Path,
        limits: &Limits,
    ) -> Result<RuleSet, Problems> {
        let mut problems = Vec::new();
        let mut hasher = Sha256::new();
        let files = match crate::files::read_tree(rules_dir, &["toml", "rhai", "json"]) {
            Ok(files) => files,
            Err(p) => return Err(Problems(vec![p])),
        };
        let sandbox = Arc::new(Sandbox::new(limits));
        let mut scripts = BTreeMap::new();
        let mut definition_files = Vec::new();
        let mut advice_files = Vec::new();
        for (rel, path, text) in files {
            hasher.update(rel.as_bytes());
            hasher.update(text.as_bytes());
            if rel.starts_with("tests/") || rel.starts_with("calendars/") || rel == "roles.toml" {
                continue;
            }
            if let Some(name) = rel.strip_suffix(".rhai") {
                match sandbox.compile(name, &path, &text) {
                    Ok(script) => {
                        problems.extend(expected_functions(&script));
                        scripts.insert(name.to_string(), Arc::new(script));
                    }
                    Err(p) => problems.push(p),
                }
            } else if rel.starts_with("definitions/") {
                definition_files.push((path, text));
            } else if crate::advice::is_advice_file(&rel) {
                advice_files.push((rel, path, text));
            }
        }
        let calendars = Calendars::load(&rules_dir.join("calendars")).unwrap_or_else(|p| {
            problems.extend(p);
            Calendars::default()
        });
        let roles = match roles::load(rules_dir) {
            Ok(r) => r,
            Err(p) => {
                problems.push(p);
                None
            }
        };
        let known = KnownNames {
            scripts: scripts.keys().cloned().collect(),
            calendars: calendars.names().into_iter().collect::<BTreeSet<_>>(),
            roles: roles.clone(),
            sandbox: Some(sandbox.clone()),
        };
        let compiled = definitions::compile(&definition_files, &known);
        let advice = crate::advice::Advice::load(&advice_files, &sandbox, compiled.as_deref().ok())
            .unwrap_or_else(|p| {
                problems.extend(p);
                crate::advice::Advice::default()
            });
        let definitions = compiled.unwrap_or_else(|p| {
            problems.extend(p);
            Vec::new()
        });
        // Checked against the definitions: when they are broken, their problems are enough.
        let retention = match definitions.is_empty() {
            true => retention::Retention::default(),
            false => retention::load(rules_dir, &definitions).unwrap_or_else(|p| {
                problems.extend(p);
                retention::Retention::default()
            }),
        };
        let packs = definitions.iter().any(|d| d.pack.is_some());
        if definition_files.is_empty() {
            problems.push(Problem::new(rules_dir, (1, 1), "no definitions found under definitions/").help(
                "each scheme and country needs a TOML file under rules/definitions/, see docs/definitions.md",
            ));
        }
        let templates = match crate::templates::read_dir(templates_dir) {
            Ok(files) => {
                for (rel, text) in &files {
                    hasher.update(rel.as_bytes());
                    hasher.update(text.as_bytes());
                }
                let (renderer, found) = Renderer::new(templates_dir, &files);
                problems.extend(found);
                problems.extend(renderer.check(templates_dir, &files));
                problems.extend(crate::personal::check_templates(
                    templates_dir,
                    &renderer,
                    &files,
                    &definitions,
                ));
                if packs {
                    problems.extend(renderer.check_pack(templates_dir, &files));
                }
                problems.extend(roles::check_escalations(
                    &sandbox,
                    &scripts,
                    &renderer,
                    roles.as_ref(),
                ));
                Some(renderer)
            }
            Err(p) => {
                problems.extend(p);
                None
            }
        };
        let Some(templates) = templates.filter(|_| problems.is_empty()) else {
            problems.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
            return Err(Problems(problems));
        };
        if !problems.is_empty() {
            problems.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
            return Err(Problems(problems));
        }
        Ok(RuleSet {
            definitions: definitions.into_iter().map(Arc::new).collect(),
            advice,
            calendars,
            templates,
            retention,
            limits: limits.clone(),
            scripts,
            sandbox,
            hash: hex::encode(&hasher.finalize()[..8]),
            rules_dir: rules_dir.to_path_buf(),
            templates_dir: templates_dir.to_path_buf(),
        })
    }

    /// The working-day calendar of a definition. `check` made sure it exists.
    pub fn calendar(&self, def: &Definition) -> &Calendar {
        self.calendars
            .get(&def.calendar)
            .or_else(|| {
                self.calendars
                    .get(crate::definitions::default_calendar(&def.country))
            })
            .expect("a loaded rule set has every calendar its definitions name")
    }

    pub fn definition(&self, id: &str) -> Option<&Arc<Definition>> {
        self.definitions.iter().find(|d| d.id == id)
    }

    /// The enquiry form of a housing options workflow, or why there is none, naming the
    /// workflows there are.
    pub fn form_for(&self, workflow: &str) -> Result<&Arc<crate::advice::Form>, String> {
        self.advice.form_for(workflow).ok_or_else(|| {
            let known: Vec<&str> = self
                .definitions
                .iter()
                .filter_map(|d| d.workflow.as_deref())
                .collect();
            format!(
                "no housing options workflow {workflow:?} has a form (workflows: {})",
                known.join(", ")
            )
        })
    }

    /// The definition a claim falls under, or why none does.
    pub fn definition_for(
        &self,
        kind: &str,
        scheme: &str,
        country: &str,
        received: NaiveDate,
    ) -> Result<&Arc<Definition>, NotCovered> {
        let candidates: Vec<_> = self
            .definitions
            .iter()
            .filter(|d| d.kind == kind && d.stream() == scheme && d.country == country)
            .collect();
        if let Some(d) = candidates.iter().find(|d| d.covers(received)) {
            return Ok(d);
        }
        // The nearest definition: the last to end before the date, else the first to start after.
        let ended = candidates
            .iter()
            .filter(|d| d.effective_to.is_some_and(|to| to < received))
            .max_by_key(|d| d.effective_to);
        let starts = candidates
            .iter()
            .filter(|d| d.effective_from > received)
            .min_by_key(|d| d.effective_from);
        let (nearest, why) = match (ended, starts) {
            (Some(d), _) => {
                let to = d.effective_to.unwrap_or(received);
                (d, format!("the last claims were accepted on {to}"))
            }
            (None, Some(d)) => (d, format!("the scheme starts on {}", d.effective_from)),
            (None, None) => {
                return Err(NotCovered(format!(
                    "{scheme} is not available in {country}: no definition covers it in this rule set"
                )));
            }
        };
        let reason = nearest
            .closed_reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        Err(NotCovered(format!(
            "{scheme} is not available in {country} for a claim received on {received}: {why}{reason}"
        )))
    }
}

fn expected_functions(script: &Script) -> Vec<Problem> {
    let have = crate::script::functions(script);
    EXPECTED_FUNCTIONS
        .iter()
        .filter(|(family, ..)| script.name.starts_with(family))
        .filter(|(_, f, arity, _)| !have.iter().any(|(n, a)| n == f && a == arity))
        .map(|(family, f, arity, example)| {
            let found = have.iter().find(|(n, _)| n == f);
            let message = match found {
                Some((_, a)) => format!(
                    "{family} rule function `{f}` takes {a} parameter(s); the host passes {arity}"
                ),
                None => format!("{family} rule has no function `{f}` with {arity} parameter(s)"),
            };
            Problem::new(&script.path, (1, 1), message).help(format!("define {example}"))
        })
        .collect()
}
