//! Turns definition files into [`Definition`]s, or into every problem found, each with its file,
//! line and column and a hint. All files are checked as one set: ids and effective dates must not
//! clash across files.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use super::model::{
    self, CASEWORK_STAGE, COUNTRIES, DefinitionFile, KINDS, MASTER_STAGES, S, SCHEMES,
};
use super::{Definition, Escalation, Pack, Period, Sla, Stage, Successors, Target, Task};
use crate::problems::{Problem, Source};

mod duties;
mod notify;
mod pauses;
mod stages;
mod targets;

use targets::{Span, chain};

/// Names defined elsewhere in the rule set that definitions may refer to.
#[derive(Clone, Default)]
pub struct KnownNames {
    /// Rhai scripts by name relative to rules/ without extension: `allocation_right_to_buy`,
    /// `escalation/default_amber`.
    pub scripts: BTreeSet<String>,
    /// Calendar names (bank-holiday divisions and organisation calendars).
    pub calendars: BTreeSet<String>,
    /// Roles declared in `rules/roles.toml`; when given, every role a definition names must be
    /// one of them.
    pub roles: Option<BTreeSet<String>>,
    /// The sandbox that compiles target expressions; without it they are refused.
    pub sandbox: Option<std::sync::Arc<crate::script::Sandbox>>,
}

/// Compiles every definition file, or returns all the problems found in them.
pub fn compile(
    files: &[(PathBuf, String)],
    known: &KnownNames,
) -> Result<Vec<Definition>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut compiled = Vec::new();
    for (path, text) in files {
        let src = Source { path, text };
        match toml::from_str::<DefinitionFile>(text) {
            Err(e) => {
                let at = e.span().map_or(0, |s| s.start);
                problems.push(src.at(at, e.message().trim().to_string()));
            }
            Ok(file) => {
                let mut c = Compiler {
                    src: &src,
                    known,
                    problems: &mut problems,
                };
                if let Some(def) = c.definition(file) {
                    compiled.push((def, src.path.to_path_buf(), text));
                }
            }
        }
    }
    check_across_files(&compiled, &mut problems);
    if problems.is_empty() {
        Ok(compiled.into_iter().map(|(d, _, _)| d).collect())
    } else {
        Err(problems)
    }
}

struct Compiler<'a> {
    src: &'a Source<'a>,
    known: &'a KnownNames,
    problems: &'a mut Vec<Problem>,
}

fn one_of(value: &str, allowed: &[&str]) -> bool {
    allowed.contains(&value)
}

impl Compiler<'_> {
    fn err<T>(&mut self, at: &S<T>, message: impl Into<String>, help: impl Into<String>) {
        let help: String = help.into();
        let mut p = self.src.at(at.span().start, message);
        if !help.is_empty() {
            p = p.help(help);
        }
        self.problems.push(p);
    }

    fn enumerated(&mut self, field: &str, value: &S<String>, allowed: &[&str]) {
        if !one_of(value.get_ref(), allowed) {
            self.err(
                value,
                format!("unknown {field} {:?}", value.get_ref()),
                format!("use one of: {}", allowed.join(", ")),
            );
        }
    }

    fn date(&mut self, field: &str, value: &S<toml::value::Datetime>) -> Option<NaiveDate> {
        let dt = value.get_ref();
        let date = match (dt.date, dt.time) {
            (Some(d), None) => NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into()),
            _ => None,
        };
        if date.is_none() {
            self.err(
                value,
                format!("{field} must be a date without a time, not {dt}"),
                format!("write it as a bare TOML date: {field} = 2019-01-25"),
            );
        }
        date
    }

    fn period(&mut self, value: &S<String>) -> Option<Period> {
        match value.get_ref().parse::<Period>() {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(value, e.to_string(), "");
                None
            }
        }
    }

    /// Compiles a target expression, reporting a Rhai error at its place inside the string.
    fn expression(&mut self, text: &S<String>) -> Option<Target> {
        let Some(sandbox) = self.known.sandbox.clone() else {
            self.err(text, "target_expr needs the rule sandbox", "");
            return None;
        };
        match sandbox.compile_expression(text.get_ref()) {
            Ok(ast) => Some(Target::Expr {
                source: text.get_ref().clone(),
                ast: std::sync::Arc::new(ast),
            }),
            Err((line, col, message)) => {
                let at = self.src.inside_string(text.span().start, (line, col));
                self.problems.push(
                    Problem::new(self.src.path, at, format!("target_expr: {message}"))
                        .help("write a Rhai expression over case_facts that gives a period, e.g. if case_facts.tenure == \"leasehold\" { \"12 weeks\" } else { \"8 weeks\" }"),
                );
                None
            }
        }
    }

    fn script(&mut self, what: &str, name: &S<String>, prefix: &str) -> Option<String> {
        let full = format!("{prefix}{}", name.get_ref());
        if self.known.scripts.contains(&full) {
            Some(full)
        } else {
            let have: Vec<_> = self
                .known
                .scripts
                .iter()
                .filter_map(|s| s.strip_prefix(prefix))
                .filter(|s| !s.contains('/'))
                .collect();
            self.err(
                name,
                format!(
                    "{what} {:?} does not exist: there is no rules/{full}.rhai",
                    name.get_ref()
                ),
                if have.is_empty() {
                    format!("add rules/{full}.rhai")
                } else {
                    format!("known {what}s: {}", have.join(", "))
                },
            );
            None
        }
    }

    /// Stage and task keys are what CRMs send in commands: one word, letters, digits, `_`, `-`.
    fn key(&mut self, what: &str, key: &S<String>) {
        let k = key.get_ref();
        let ok = !k.is_empty()
            && k.len() <= 64
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            self.err(
                key,
                format!("{what} key {k:?} is not usable in commands"),
                "use 1 to 64 ASCII letters, digits, `_` or `-`, e.g. \"issue_rtb2\"",
            );
        }
    }

    /// A role reference, checked against `rules/roles.toml` when there is one.
    fn role(&mut self, role: &S<String>) {
        let Some(known) = &self.known.roles else {
            return;
        };
        if !known.contains(role.get_ref()) {
            let list: Vec<&str> = known.iter().map(String::as_str).collect();
            self.err(
                role,
                format!("unknown role {:?}", role.get_ref()),
                format!(
                    "declare it in rules/roles.toml (known roles: {})",
                    list.join(", ")
                ),
            );
        }
    }

    fn definition(&mut self, f: DefinitionFile) -> Option<Definition> {
        let before = self.problems.len();
        self.key("definition", &f.id);
        self.role(&f.team_role);
        self.enumerated("kind", &f.kind, KINDS);
        self.enumerated("country", &f.country, COUNTRIES);
        let housing_options = f.kind.get_ref() == "housing_options";
        let stream = self.stream(&f, housing_options);
        let from = self.date("effective_from", &f.effective_from);
        let to = f
            .effective_to
            .as_ref()
            .and_then(|t| self.date("effective_to", t));
        if let (Some(from), Some(to), Some(at)) = (from, to, &f.effective_to)
            && to < from
        {
            self.err(
                at,
                format!("effective_to {to} is before effective_from {from}"),
                "",
            );
        }
        let allocation = match &f.allocation {
            Some(name) if !name.get_ref().starts_with("allocation") => {
                self.err(
                    name,
                    format!("allocation rule {:?} must be a script named allocation*", name.get_ref()),
                    "name it rules/allocation_<something>.rhai, so check knows it must define allocate",
                );
                None
            }
            Some(name) => self.script("allocation rule", name, ""),
            None => [
                format!("allocation_{}", stream.as_deref().unwrap_or_default()),
                format!("allocation_{}", f.kind.get_ref()),
                "allocation".to_string(),
            ]
            .into_iter()
            .find(|n| self.known.scripts.contains(n)),
        };
        let calendar = match &f.calendar {
            Some(c) if self.known.calendars.contains(c.get_ref()) => c.get_ref().clone(),
            Some(c) => {
                let known: Vec<_> = self.known.calendars.iter().cloned().collect();
                self.err(
                    c,
                    format!("unknown calendar {:?}", c.get_ref()),
                    format!("use one of: {}", known.join(", ")),
                );
                String::new()
            }
            None => super::default_calendar(f.country.get_ref()).to_string(),
        };
        let (notify_personal, sensitive) = self.notify_personal(&f);
        let (stages, pack) = if housing_options {
            self.workflow(&f)
        } else {
            if let Some(t) = f.tasks.first() {
                self.err(
                    &t.key,
                    "home buy definitions put their tasks in stages",
                    "write [[stage.task]] under a [[stage]]; top-level [[task]]s are for housing options workflows",
                );
            }
            if let Some(d) = &f.duties {
                self.err(d, "only housing options workflows have [duties]", "");
            }
            if let Some(p) = &f.pack {
                self.err(p, "only housing options workflows have a [pack]", "");
            }
            if f.stages.is_empty() {
                self.err(&f.id, "a definition needs at least one [[stage]]", "");
            }
            (self.stages(&f.stages), None)
        };
        if self.problems.len() > before {
            return None;
        }
        Some(Definition {
            id: f.id.into_inner(),
            name: f.name,
            kind: f.kind.into_inner(),
            scheme: f.scheme.map(S::into_inner).unwrap_or_default(),
            workflow: f.workflow.map(S::into_inner),
            country: f.country.into_inner(),
            effective_from: from?,
            effective_to: to,
            closed_reason: f.closed_reason,
            allocation,
            team_role: f.team_role.into_inner(),
            personal_attributes: f
                .personal_attributes
                .into_iter()
                .map(S::into_inner)
                .collect(),
            notify_personal,
            sensitive,
            calendar,
            stages: stages?,
            pack,
            version: hex::encode(&Sha256::digest(self.src.text.as_bytes())[..8]),
            file: self.src.path.to_path_buf(),
        })
    }

    /// The scheme of a home buy definition or the workflow of a housing options one: each kind
    /// names its stream its own way, and only that way.
    fn stream(&mut self, f: &DefinitionFile, housing_options: bool) -> Option<String> {
        let (wanted, unwanted) = if housing_options {
            (("workflow", &f.workflow), ("scheme", &f.scheme))
        } else {
            (("scheme", &f.scheme), ("workflow", &f.workflow))
        };
        if let Some(u) = unwanted.1 {
            self.err(
                u,
                format!("a {} definition has no {}", f.kind.get_ref(), unwanted.0),
                format!("name its {} instead", wanted.0),
            );
        }
        let Some(value) = wanted.1 else {
            self.err(
                &f.id,
                format!("missing field `{}`", wanted.0),
                if housing_options {
                    "name the advice stream, e.g. workflow = \"section_21\"; CRMs give it in create_case"
                } else {
                    "name the scheme, e.g. scheme = \"right_to_buy\""
                },
            );
            return None;
        };
        if housing_options {
            self.key("workflow", value);
        } else {
            self.enumerated("scheme", value, SCHEMES);
        }
        Some(value.get_ref().clone())
    }
}
/// A compiled definition with its file and text, for problems that span files.
type Compiled<'a> = (Definition, PathBuf, &'a String);

fn check_across_files(defs: &[Compiled<'_>], problems: &mut Vec<Problem>) {
    let locate = |path: &Path, text: &str, needle: &str| {
        let src = Source { path, text };
        src.position(text.find(needle).unwrap_or(0))
    };
    for (i, (a, pa, ta)) in defs.iter().enumerate() {
        for (b, pb, _) in &defs[..i] {
            if a.id == b.id {
                problems.push(
                    Problem::new(
                        pa,
                        locate(pa, ta, "id"),
                        format!("definition id {:?} is also used by {}", a.id, pb.display()),
                    )
                    .help("give each definition its own id"),
                );
            } else if (&a.kind, a.stream(), &a.country) == (&b.kind, b.stream(), &b.country)
                && a.effective_from <= b.effective_to.unwrap_or(NaiveDate::MAX)
                && b.effective_from <= a.effective_to.unwrap_or(NaiveDate::MAX)
            {
                problems.push(
                    Problem::new(
                        pa,
                        locate(pa, ta, "effective_from"),
                        format!(
                            "{} {} in {}: effective dates overlap those of {:?} in {}",
                            a.kind,
                            a.stream(),
                            a.country,
                            b.id,
                            pb.display()
                        ),
                    )
                    .help("end one definition (effective_to) the day before the other starts"),
                );
            }
        }
    }
    // Gaps: a scheme that closes and opens again must say why claims in between are refused.
    let mut groups: BTreeMap<(&str, &str, &str), Vec<&Compiled<'_>>> = BTreeMap::new();
    for d in defs {
        groups
            .entry((d.0.kind.as_str(), d.0.stream(), d.0.country.as_str()))
            .or_default()
            .push(d);
    }
    for list in groups.values_mut() {
        list.sort_by_key(|d| d.0.effective_from);
        for pair in list.windows(2) {
            let ((a, _, _), (b, pb, tb)) = (pair[0], pair[1]);
            let Some(to) = a.effective_to else { continue };
            let Some(day_after) = to.succ_opt() else {
                continue;
            };
            if b.effective_from > day_after && a.closed_reason.is_none() {
                let last_gap_day = b.effective_from.pred_opt().unwrap_or(b.effective_from);
                problems.push(
                    Problem::new(pb, locate(pb, tb, "effective_from"), format!(
                        "{} {} in {}: no definition covers claims received from {day_after} to {last_gap_day}, between {:?} and {:?}",
                        b.kind, b.stream(), b.country, a.id, b.id
                    ))
                    .help(format!(
                        "start this definition on {day_after}, or give {:?} a closed_reason saying why claims were refused in between",
                        a.id
                    )),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
