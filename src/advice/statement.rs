//! Advice statements: instructions, guidance and agencies, grouped in sections, each chosen for a
//! case by a Rhai condition over the enquiry answers and the case's facts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::problems::{Problem, Source};
use crate::script::Sandbox;

type S<T> = Spanned<T>;

/// The variables a condition sees.
pub const CONDITION_SCOPE: &[&str] = &["answers", "case_facts", "today"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionsFile {
    #[serde(rename = "section", default)]
    sections: Vec<SectionDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionDef {
    key: S<String>,
    title: String,
    order: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementsFile {
    #[serde(rename = "statement", default)]
    statements: Vec<StatementDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementDef {
    id: S<String>,
    title: String,
    section: S<String>,
    order: i64,
    workflows: Option<Vec<S<String>>>,
    /// The countries whose cases it is for (its law is theirs); absent: every country.
    countries: Option<Vec<S<String>>>,
    condition: Option<S<String>>,
    because: Option<String>,
    #[serde(rename = "item", default)]
    items: Vec<S<ItemDef>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemDef {
    #[serde(rename = "type")]
    kind: S<String>,
    text: Option<String>,
    name: Option<String>,
    url: Option<String>,
    phone: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub key: String,
    pub title: String,
    pub order: i64,
}

/// One step of a statement, as templates see it: `{type, text, name, url, phone}`.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
    pub name: Option<String>,
    pub url: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Condition {
    pub source: String,
    pub ast: Arc<rhai::AST>,
    /// The answers the condition reads (`answers.<key>`), for the explanation.
    pub reads: Vec<String>,
    /// Where it is written, for checks that need the forms.
    pub at: (usize, usize),
}

#[derive(Debug, Clone)]
pub struct Statement {
    pub id: String,
    pub title: String,
    pub section: String,
    pub order: i64,
    /// Empty: a generic statement, offered in every workflow.
    pub workflows: Vec<String>,
    /// Empty: offered to cases in every country; else only to cases in these (a statement that
    /// states one nation's law).
    pub countries: Vec<String>,
    pub condition: Option<Condition>,
    pub because: Option<String>,
    pub items: Vec<Item>,
    pub file: PathBuf,
    pub line: usize,
    /// Where each workflow it names is written, for checks against the definitions.
    pub(super) workflow_at: Vec<(String, (usize, usize))>,
    pub(super) section_at: (usize, usize),
}

impl Statement {
    pub fn applies_to(&self, workflow: &str) -> bool {
        self.workflows.is_empty() || self.workflows.iter().any(|w| w == workflow)
    }

    /// Whether it is offered to a case in `country`.
    pub fn is_for_country(&self, country: &str) -> bool {
        self.countries.is_empty() || self.countries.iter().any(|c| c == country)
    }
}

/// A section and where it is defined (line, column).
pub type Placed<T> = (T, (usize, usize));

pub fn sections(path: &Path, text: &str) -> Result<Vec<Placed<Section>>, Vec<Problem>> {
    let src = Source { path, text };
    let file: SectionsFile = toml::from_str(text).map_err(|e| {
        vec![src.at(
            e.span().map_or(0, |s| s.start),
            e.message().trim().to_string(),
        )]
    })?;
    let mut problems = Vec::new();
    let mut out: Vec<Placed<Section>> = Vec::new();
    for s in file.sections {
        let at = src.position(s.key.span().start);
        if !super::is_key(s.key.get_ref()) {
            problems.push(
                Problem::new(
                    path,
                    at,
                    format!("section key {:?} is not a key", s.key.get_ref()),
                )
                .help(super::KEY_HELP),
            );
        }
        if out.iter().any(|(o, _)| &o.key == s.key.get_ref()) {
            problems.push(Problem::new(
                path,
                at,
                format!("section {:?} is defined twice", s.key.get_ref()),
            ));
        }
        out.push((
            Section {
                key: s.key.into_inner(),
                title: s.title,
                order: s.order,
            },
            at,
        ));
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Reads one statements file, compiling each condition in the sandbox.
pub fn statements(
    path: &Path,
    text: &str,
    sandbox: &Sandbox,
) -> Result<Vec<Statement>, Vec<Problem>> {
    let src = Source { path, text };
    let file: StatementsFile = toml::from_str(text).map_err(|e| {
        vec![src.at(
            e.span().map_or(0, |s| s.start),
            e.message().trim().to_string(),
        )]
    })?;
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for s in file.statements {
        let before = problems.len();
        let at = src.position(s.id.span().start);
        if !super::is_key(s.id.get_ref()) {
            problems.push(
                Problem::new(
                    path,
                    at,
                    format!("statement id {:?} is not a key", s.id.get_ref()),
                )
                .help(super::KEY_HELP),
            );
        }
        if s.items.is_empty() {
            problems.push(
                Problem::new(
                    path,
                    at,
                    format!("statement {:?} has no items", s.id.get_ref()),
                )
                .help("add [[statement.item]]s: instructions, guidance notes or agencies"),
            );
        }
        let mut items = Vec::new();
        for item in &s.items {
            let i = item.get_ref();
            let item_at = src.position(item.span().start);
            let mut bad = |message: String, help: &str| {
                problems.push(Problem::new(path, item_at, message).help(help.to_string()));
            };
            match i.kind.get_ref().as_str() {
                "instruction" | "guidance" => {
                    if i.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
                        bad(
                            format!("{} item has no text", i.kind.get_ref()),
                            "add text = \"...\"",
                        );
                    }
                    if i.name.is_some() || i.url.is_some() || i.phone.is_some() {
                        bad(
                            format!("{} item takes only text", i.kind.get_ref()),
                            "name, url and phone belong to agency items",
                        );
                    }
                }
                "agency" => {
                    if i.name.as_deref().is_none_or(|t| t.trim().is_empty()) {
                        bad("agency item has no name".into(), "add name = \"Shelter\"");
                    }
                    if let Some(url) = i
                        .url
                        .as_deref()
                        .filter(|u| !u.starts_with("https://") && !u.starts_with("http://"))
                    {
                        bad(
                            format!("agency url {url:?} is not a web address"),
                            "start it with https://",
                        );
                    }
                }
                other => bad(
                    format!("unknown item type {other:?}"),
                    "use one of: instruction, guidance, agency",
                ),
            }
            items.push(Item {
                kind: i.kind.get_ref().clone(),
                text: i.text.clone(),
                name: i.name.clone(),
                url: i.url.clone(),
                phone: i.phone.clone(),
            });
        }
        for c in s.countries.iter().flatten() {
            if !crate::definitions::model::COUNTRIES.contains(&c.get_ref().as_str()) {
                problems.push(
                    Problem::new(
                        path,
                        src.position(c.span().start),
                        format!(
                            "statement {:?} names unknown country {:?}",
                            s.id.get_ref(),
                            c.get_ref()
                        ),
                    )
                    .help(format!(
                        "countries: {}",
                        crate::definitions::model::COUNTRIES.join(", ")
                    )),
                );
            }
        }
        if s.workflows.as_ref().is_some_and(Vec::is_empty) {
            problems.push(
                Problem::new(
                    path,
                    at,
                    format!("statement {:?} lists no workflows", s.id.get_ref()),
                )
                .help("omit `workflows` for a statement offered in every workflow"),
            );
        }
        let condition = s.condition.as_ref().and_then(|c| {
            match sandbox.compile_expression_over(CONDITION_SCOPE, c.get_ref()) {
                Ok(ast) => Some(Condition {
                    source: c.get_ref().clone(),
                    ast: Arc::new(ast),
                    reads: reads(c.get_ref(), "answers"),
                    at: src.position(c.span().start),
                }),
                Err((line, col, message)) => {
                    problems.push(
                        Problem::new(path, src.inside_string(c.span().start, (line, col)), format!("condition: {message}"))
                            .help("write a Rhai expression over answers, case_facts and today that gives true or false, e.g. answers.has_section_21_notice == true"),
                    );
                    None
                }
            }
        });
        if problems.len() > before {
            continue;
        }
        out.push(Statement {
            id: s.id.get_ref().clone(),
            title: s.title,
            section: s.section.get_ref().clone(),
            order: s.order,
            workflows: s
                .workflows
                .iter()
                .flatten()
                .map(|w| w.get_ref().clone())
                .collect(),
            countries: s
                .countries
                .iter()
                .flatten()
                .map(|c| c.get_ref().clone())
                .collect(),
            workflow_at: s
                .workflows
                .iter()
                .flatten()
                .map(|w| (w.get_ref().clone(), src.position(w.span().start)))
                .collect(),
            section_at: src.position(s.section.span().start),
            condition,
            because: s.because,
            items,
            file: path.to_path_buf(),
            line: at.0,
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// The keys an expression reads from `map` (`map.key`), in order of first use.
pub fn reads(source: &str, map: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let pattern = format!("{map}.");
    let mut rest = source;
    while let Some(i) = rest.find(&pattern) {
        let preceded = rest[..i]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        let after = &rest[i + pattern.len()..];
        let key: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !preceded && !key.is_empty() && !out.contains(&key) {
            out.push(key);
        }
        rest = after;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_reads_the_answers_it_names_once_each() {
        assert_eq!(
            reads(
                "answers.a && days_between(today, answers.b_c) <= 56 || answers.a || my_answers.z",
                "answers"
            ),
            vec!["a", "b_c"]
        );
    }

    #[test]
    fn a_broken_condition_is_reported_inside_its_string() {
        let sandbox = Sandbox::new(&crate::script::Limits::default());
        let text = "[[statement]]\nid = \"s\"\ntitle = \"T\"\nsection = \"x\"\norder = 1\ncondition = \"answers.a &&& true\"\n[[statement.item]]\ntype = \"guidance\"\ntext = \"t\"\n";
        let problems = statements(Path::new("a.toml"), text, &sandbox).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(
            (problems[0].line, problems[0].column),
            (6, 26),
            "{}",
            problems[0]
        );
        assert!(
            problems[0].message.starts_with("condition:"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn a_statement_for_some_countries_is_offered_only_there_and_names_known_ones() {
        let sandbox = Sandbox::new(&crate::script::Limits::default());
        let text = |countries: &str| {
            format!(
                "[[statement]]\nid = \"s\"\ntitle = \"T\"\nsection = \"x\"\norder = 1\n{countries}\n[[statement.item]]\ntype = \"guidance\"\ntext = \"t\"\n"
            )
        };
        let s = statements(
            Path::new("a.toml"),
            &text("countries = [\"wales\"]"),
            &sandbox,
        )
        .unwrap();
        assert!(s[0].is_for_country("wales") && !s[0].is_for_country("england"));
        let s = statements(Path::new("a.toml"), &text(""), &sandbox).unwrap();
        assert!(s[0].is_for_country("wales") && s[0].is_for_country("england"));
        let problems = statements(
            Path::new("a.toml"),
            &text("countries = [\"cymru\"]"),
            &sandbox,
        )
        .unwrap_err();
        assert_eq!(
            (problems[0].line, problems[0].column),
            (6, 14),
            "{}",
            problems[0]
        );
        assert!(
            problems[0]
                .message
                .contains("names unknown country \"cymru\""),
            "{}",
            problems[0]
        );
    }
}
