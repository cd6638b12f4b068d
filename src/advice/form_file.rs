//! An enquiry form's TOML file: its format, and compiling it into a [`Form`], with a problem
//! (file, line, column) for every question that is wrong.

use serde::Deserialize;
use toml::Spanned;

use crate::problems::{Problem, Source};

use super::form::{Form, Kind, Question};

type S<T> = Spanned<T>;

/// Free-text answers are at most this long unless a question says otherwise.
const DEFAULT_MAX_TEXT: usize = 4000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FormFile {
    id: S<String>,
    name: String,
    /// Workflows (housing options advice streams) that use this form.
    workflows: Vec<S<String>>,
    #[serde(rename = "question", default)]
    questions: Vec<QuestionDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuestionDef {
    key: S<String>,
    text: String,
    #[serde(rename = "type")]
    kind: S<String>,
    #[serde(default)]
    required: bool,
    help: Option<String>,
    choices: Option<S<Vec<S<String>>>>,
    min: Option<S<f64>>,
    max: Option<S<f64>>,
    whole: Option<S<bool>>,
    max_length: Option<S<usize>>,
}

const TYPES: &[&str] = &[
    "yes_no",
    "single_choice",
    "multiple_choice",
    "number",
    "date",
    "text",
];

/// Reads one form file; the keys of its workflows are checked later, against the definitions.
pub fn compile(path: &std::path::Path, text: &str) -> Result<(Form, Vec<S<String>>), Vec<Problem>> {
    let src = Source { path, text };
    let file: FormFile = toml::from_str(text).map_err(|e| {
        vec![src.at(
            e.span().map_or(0, |s| s.start),
            e.message().trim().to_string(),
        )]
    })?;
    let mut problems = Vec::new();
    let mut err = |at: usize, message: String, help: &str| {
        let mut p = src.at(at, message);
        if !help.is_empty() {
            p = p.help(help.to_string());
        }
        problems.push(p);
    };
    if !super::is_key(file.id.get_ref()) {
        err(
            file.id.span().start,
            format!("form id {:?} is not a key", file.id.get_ref()),
            super::KEY_HELP,
        );
    }
    if file.workflows.is_empty() {
        err(
            file.id.span().start,
            format!("form {:?} is linked to no workflow", file.id.get_ref()),
            "list the workflows that use it: workflows = [\"section_21\"]",
        );
    }
    if file.questions.is_empty() {
        err(
            file.id.span().start,
            format!("form {:?} has no questions", file.id.get_ref()),
            "add a [[question]]",
        );
    }
    let mut questions: Vec<Question> = Vec::new();
    for q in &file.questions {
        let key = q.key.get_ref();
        if !super::is_key(key) {
            err(
                q.key.span().start,
                format!("question key {key:?} is not a key"),
                super::KEY_HELP,
            );
        }
        if questions.iter().any(|o| &o.key == key) {
            err(
                q.key.span().start,
                format!("question {key:?} appears twice"),
                "",
            );
        }
        let kind_name = q.kind.get_ref().as_str();
        if !TYPES.contains(&kind_name) {
            err(
                q.kind.span().start,
                format!("question {key:?} has unknown type {kind_name:?}"),
                &format!("use one of: {}", TYPES.join(", ")),
            );
            continue;
        }
        // Options that belong to other types are mistakes worth naming.
        let stray: Vec<(&str, usize)> = [
            (
                "choices",
                q.choices.as_ref().map(|c| c.span().start),
                ["single_choice", "multiple_choice"].as_slice(),
            ),
            (
                "min",
                q.min.as_ref().map(|c| c.span().start),
                ["number"].as_slice(),
            ),
            (
                "max",
                q.max.as_ref().map(|c| c.span().start),
                ["number"].as_slice(),
            ),
            (
                "whole",
                q.whole.as_ref().map(|c| c.span().start),
                ["number"].as_slice(),
            ),
            (
                "max_length",
                q.max_length.as_ref().map(|c| c.span().start),
                ["text"].as_slice(),
            ),
        ]
        .into_iter()
        .filter_map(|(name, at, types)| {
            at.filter(|_| !types.contains(&kind_name))
                .map(|a| (name, a))
        })
        .collect();
        for (name, at) in stray {
            err(
                at,
                format!("question {key:?}: `{name}` does not apply to a {kind_name} question"),
                "",
            );
        }
        let kind = match kind_name {
            "yes_no" => Kind::YesNo,
            "single_choice" | "multiple_choice" => {
                let Some(choices) = &q.choices else {
                    err(
                        q.kind.span().start,
                        format!("question {key:?} is a {kind_name} question with no choices"),
                        "add choices = [\"first\", \"second\"]",
                    );
                    continue;
                };
                let mut list: Vec<String> = Vec::new();
                for c in choices.get_ref() {
                    if !super::is_key(c.get_ref()) {
                        err(
                            c.span().start,
                            format!("choice {:?} is not a key", c.get_ref()),
                            super::KEY_HELP,
                        );
                    } else if list.contains(c.get_ref()) {
                        err(
                            c.span().start,
                            format!("choice {:?} appears twice", c.get_ref()),
                            "",
                        );
                    }
                    list.push(c.get_ref().clone());
                }
                if list.len() < 2 {
                    err(
                        choices.span().start,
                        format!("question {key:?} needs at least two choices"),
                        "",
                    );
                }
                if kind_name == "single_choice" {
                    Kind::SingleChoice(list)
                } else {
                    Kind::MultipleChoice(list)
                }
            }
            "number" => {
                let (min, max) = (
                    q.min.as_ref().map(|m| *m.get_ref()),
                    q.max.as_ref().map(|m| *m.get_ref()),
                );
                if let (Some(lo), Some(hi), Some(at)) = (min, max, &q.max)
                    && hi < lo
                {
                    err(
                        at.span().start,
                        format!("question {key:?}: max {hi} is below min {lo}"),
                        "",
                    );
                }
                Kind::Number {
                    min,
                    max,
                    whole: q.whole.as_ref().is_some_and(|w| *w.get_ref()),
                }
            }
            "date" => Kind::Date,
            _ => Kind::Text {
                max_length: q
                    .max_length
                    .as_ref()
                    .map_or(DEFAULT_MAX_TEXT, |m| *m.get_ref()),
            },
        };
        questions.push(Question {
            key: key.clone(),
            text: q.text.clone(),
            help: q.help.clone(),
            required: q.required,
            kind,
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    use sha2::Digest;
    Ok((
        Form {
            id: file.id.get_ref().clone(),
            name: file.name,
            workflows: file.workflows.iter().map(|w| w.get_ref().clone()).collect(),
            questions,
            version: hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8]),
            file: path.to_path_buf(),
        },
        file.workflows,
    ))
}
