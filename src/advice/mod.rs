//! Housing options advice: enquiry forms (`rules/forms/`), advice sections and statements
//! (`rules/advice/`), the choice of statements for a case with the reason for each, and the
//! personalised housing pack made from them. Pure: no database, no clock.

pub mod form;
pub mod form_file;
pub mod pack;
pub mod statement;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Map, Value};

pub use form::Form;
pub use statement::{Section, Statement};

use crate::definitions::Definition;
use crate::problems::Problem;
use crate::script::Sandbox;

pub(crate) const KEY_HELP: &str =
    "use 1 to 64 lowercase ASCII letters, digits or `_`, e.g. \"has_section_21_notice\"";

pub(crate) fn is_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && k.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Every form, section and statement of the rule set.
#[derive(Debug, Clone, Default)]
pub struct Advice {
    pub forms: Vec<Arc<Form>>,
    pub sections: Vec<Section>,
    /// In pack order: by section, then order, then id.
    pub statements: Vec<Statement>,
}

/// Whether one statement goes into a case's pack, and why.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Choice {
    pub statement: String,
    pub section: String,
    pub chosen: bool,
    /// In words: "no condition: in every section_21 pack", or the condition with the values of
    /// the answers it read.
    pub why: String,
    /// The condition failed: the pack cannot be made until the rule is mended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Advice {
    /// Reads forms and advice from (path relative to rules/, path, text), checking them against
    /// the definitions: every housing options workflow has exactly one form, statements name
    /// known workflows and sections, and conditions read only questions their forms ask. With
    /// no definitions (they had problems of their own) only the files themselves are checked,
    /// so one mistake is not reported again as a dozen unknown workflows.
    pub fn load(
        files: &[(String, PathBuf, String)],
        sandbox: &Sandbox,
        definitions: Option<&[Definition]>,
    ) -> Result<Advice, Vec<Problem>> {
        let linked = definitions.is_some();
        let definitions = definitions.unwrap_or_default();
        let mut problems = Vec::new();
        let mut forms: Vec<(Form, Vec<toml::Spanned<String>>, &str)> = Vec::new();
        let mut sections = Vec::new();
        let mut statements = Vec::new();
        for (rel, path, text) in files {
            if rel.starts_with("forms/") {
                match form_file::compile(path, text) {
                    Ok((f, workflows)) => forms.push((f, workflows, text)),
                    Err(p) => problems.extend(p),
                }
            } else if rel == "advice/sections.toml" {
                match statement::sections(path, text) {
                    Ok(s) => sections.extend(s.into_iter().map(|(s, at)| (s, path.clone(), at))),
                    Err(p) => problems.extend(p),
                }
            } else if rel.starts_with("advice/") {
                match statement::statements(path, text, sandbox) {
                    Ok(s) => statements.extend(s),
                    Err(p) => problems.extend(p),
                }
            }
        }
        let workflows: BTreeMap<&str, &Definition> = definitions
            .iter()
            .filter(|d| d.is_housing_options())
            .filter_map(|d| Some((d.workflow.as_deref()?, d)))
            .collect();
        let known_workflows = || workflows.keys().copied().collect::<Vec<_>>().join(", ");
        // Forms: ids unique, workflows known, each workflow on exactly one form.
        let mut form_of: BTreeMap<&str, &Form> = BTreeMap::new();
        for (i, (f, workflows_named, text)) in forms.iter().enumerate() {
            let src = crate::problems::Source {
                path: &f.file,
                text,
            };
            if let Some((other, ..)) = forms[..i].iter().find(|(o, ..)| o.id == f.id) {
                problems.push(Problem::new(
                    &f.file,
                    (1, 1),
                    format!(
                        "form id {:?} is also used by {}",
                        f.id,
                        other.file.display()
                    ),
                ));
            }
            for w in workflows_named.iter().filter(|_| linked) {
                if !workflows.contains_key(w.get_ref().as_str()) {
                    problems.push(
                        src.at(
                            w.span().start,
                            format!("form {:?} names unknown workflow {:?}", f.id, w.get_ref()),
                        )
                        .help(format!("housing options workflows: {}", known_workflows())),
                    );
                } else if let Some(other) = form_of.insert(w.get_ref(), f) {
                    problems.push(
                        src.at(
                            w.span().start,
                            format!(
                                "workflow {:?} is linked to form {:?} and to form {:?}",
                                w.get_ref(),
                                other.id,
                                f.id
                            ),
                        )
                        .help("each workflow has one enquiry form; take it out of one of them"),
                    );
                }
            }
        }
        for (w, d) in workflows.iter().filter(|_| linked) {
            if !form_of.contains_key(w) {
                problems.push(
                    Problem::new(
                        &d.file,
                        (1, 1),
                        format!("workflow {w:?} has no enquiry form"),
                    )
                    .help(format!(
                        "add {w:?} to the workflows of a form under rules/forms/"
                    )),
                );
            }
        }
        // Sections and statements.
        let mut seen_sections: BTreeMap<&str, ()> = BTreeMap::new();
        for (s, path, at) in &sections {
            if seen_sections.insert(&s.key, ()).is_some() {
                problems.push(Problem::new(
                    path,
                    *at,
                    format!("section {:?} is defined twice", s.key),
                ));
            }
        }
        for (i, s) in statements.iter().enumerate() {
            if let Some(other) = statements[..i].iter().find(|o| o.id == s.id) {
                problems.push(Problem::new(
                    &s.file,
                    (s.line, 1),
                    format!(
                        "statement id {:?} is also used at {}:{}",
                        s.id,
                        other.file.display(),
                        other.line
                    ),
                ));
            }
            if !sections.iter().any(|(sec, ..)| sec.key == s.section) {
                problems.push(
                    Problem::new(
                        &s.file,
                        s.section_at,
                        format!("statement {:?} is in unknown section {:?}", s.id, s.section),
                    )
                    .help(format!(
                        "sections in rules/advice/sections.toml: {}",
                        sections
                            .iter()
                            .map(|(sec, ..)| sec.key.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
            }
            for (w, at) in s.workflow_at.iter().filter(|_| linked) {
                if !workflows.contains_key(w.as_str()) {
                    problems.push(
                        Problem::new(
                            &s.file,
                            *at,
                            format!("statement {:?} names unknown workflow {w:?}", s.id),
                        )
                        .help(format!("housing options workflows: {}", known_workflows())),
                    );
                }
            }
            // A condition may read only what every form it can meet asks.
            if let Some(c) = &s.condition {
                for (w, f) in form_of.iter().filter(|(w, _)| s.applies_to(w)) {
                    for key in c.reads.iter().filter(|k| f.question(k).is_none()) {
                        problems.push(
                            Problem::new(&s.file, c.at, format!(
                                "statement {:?}: condition reads answers.{key}, but form {:?} (workflow {w:?}) has no question {key:?}",
                                s.id, f.id
                            ))
                            .help(if s.workflows.is_empty() {
                                "a generic statement meets every form: ask the question on each, or name the statement's workflows"
                            } else {
                                "add the question to the form, or correct the key"
                            }),
                        );
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut sections: Vec<Section> = sections.into_iter().map(|(s, ..)| s).collect();
        sections.sort_by(|a, b| (a.order, &a.key).cmp(&(b.order, &b.key)));
        let rank = |key: &str| {
            sections
                .iter()
                .position(|s| s.key == key)
                .unwrap_or(usize::MAX)
        };
        statements.sort_by(|a, b| {
            (rank(&a.section), a.order, &a.id).cmp(&(rank(&b.section), b.order, &b.id))
        });
        Ok(Advice {
            forms: forms.into_iter().map(|(f, ..)| Arc::new(f)).collect(),
            sections,
            statements,
        })
    }

    /// The enquiry form of a workflow. Every loaded workflow has one.
    pub fn form_for(&self, workflow: &str) -> Option<&Arc<Form>> {
        self.forms
            .iter()
            .find(|f| f.workflows.iter().any(|w| w == workflow))
    }

    pub fn statement(&self, id: &str) -> Option<&Statement> {
        self.statements.iter().find(|s| s.id == id)
    }

    /// Decides, for every statement a workflow offers, whether it goes into the pack and why.
    /// `answers` are the case's merged answers; `case_facts` what conditions see as such.
    /// Blocking (it runs Rhai): call it off the async threads.
    pub fn select(
        &self,
        sandbox: &Sandbox,
        workflow: &str,
        answers: &Map<String, Value>,
        case_facts: &Value,
        today: NaiveDate,
    ) -> Vec<Choice> {
        let Some(form) = self.form_for(workflow) else {
            return Vec::new();
        };
        let all = form.complete(answers);
        let to_dynamic = |v: &Value| rhai::serde::to_dynamic(v).map_err(|e| e.to_string());
        let scope =
            (|| -> Result<_, String> { Ok((to_dynamic(&all)?, to_dynamic(case_facts)?)) })();
        // A statement of one nation's law is offered only to cases in that nation.
        let country = case_facts["country"].as_str().unwrap_or_default();
        self.statements
            .iter()
            .filter(|s| s.applies_to(workflow) && s.is_for_country(country))
            .map(|s| {
                let Some(c) = &s.condition else {
                    return Choice {
                        statement: s.id.clone(),
                        section: s.section.clone(),
                        chosen: true,
                        why: if s.workflows.is_empty() {
                            "no condition: in every pack".to_string()
                        } else {
                            format!("no condition: in every {workflow} pack")
                        },
                        error: None,
                    };
                };
                let read: Vec<String> = c
                    .reads
                    .iter()
                    .map(|k| format!("answers.{k} = {}", shown(&all[k])))
                    .collect();
                let with = if read.is_empty() {
                    String::new()
                } else {
                    format!(" with {}", read.join(", "))
                };
                let outcome = scope.clone().and_then(|(answers, facts)| {
                    sandbox.eval_expression_over(
                        &c.ast,
                        vec![
                            ("answers", answers),
                            ("case_facts", facts),
                            ("today", today.format("%Y-%m-%d").to_string().into()),
                        ],
                    )
                });
                let (chosen, error) = match outcome.map(|v| v.as_bool().map_err(|t| t.to_string()))
                {
                    Ok(Ok(b)) => (b, None),
                    Ok(Err(t)) => (
                        false,
                        Some(format!("condition gave {t}, not true or false")),
                    ),
                    Err(e) => (false, Some(e)),
                };
                Choice {
                    statement: s.id.clone(),
                    section: s.section.clone(),
                    chosen,
                    why: match &error {
                        Some(e) => format!("condition `{}` failed{with}: {e}", c.source),
                        None => format!("condition `{}` is {chosen}{with}", c.source),
                    },
                    error,
                }
            })
            .collect()
    }
}

/// An answer as the explanation shows it.
fn shown(v: &Value) -> String {
    match v {
        Value::Null => "(not answered)".to_string(),
        other => other.to_string(),
    }
}

/// The choices as a plain-text explanation, one statement per line.
pub fn explain(choices: &[Choice]) -> String {
    let mut out = String::new();
    for c in choices {
        let mark = match (&c.error, c.chosen) {
            (Some(_), _) => "ERROR ",
            (None, true) => "chosen",
            (None, false) => "left  ",
        };
        out.push_str(&format!(
            "{mark} {:<36} {:<14} {}\n",
            c.statement, c.section, c.why
        ));
    }
    let chosen = choices.iter().filter(|c| c.chosen).count();
    out.push_str(&format!(
        "\n{chosen} of {} statements chosen\n",
        choices.len()
    ));
    out
}

/// Where advice is read from, relative to rules/.
pub fn is_advice_file(rel: &str) -> bool {
    rel.starts_with("forms/") || rel.starts_with("advice/")
}

/// The pack directory for a case: named by the case's id, never by its reference, so two
/// references (`A/B` and `A_B`, or `a` and `A` on a file system that folds case) can never share
/// a directory, and no reference can name a path.
pub fn case_dir(root: &Path, case_id: i64) -> PathBuf {
    root.join(format!("case-{case_id}"))
}
