//! `casewarden rules test`: rule authors' tests, kept beside the rules in `rules/tests/*.toml`.
//! Each `[[test]]` gives facts and expects a decision from one rule: an allocation, the SLA dates
//! a definition sets, or the actions of an escalation rule. The runner reports each result with
//! a readable difference, and which rules and fact-based targets no test exercised.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use super::RuleSet;
use crate::definitions::Target;
use crate::problems::{Problem, Source};

mod kinds;

use kinds::{AdviceSeen, advice_test, allocation_test, escalation_test, sla_test};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(rename = "test", default)]
    tests: Vec<Spanned<Test>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Test {
    name: String,
    /// An allocation rule to run.
    allocation: Option<String>,
    /// An escalation rule to run, e.g. `escalation/default_exceeded`.
    escalation: Option<String>,
    /// A definition whose SLA dates to compute, with `stage` or `task`.
    definition: Option<String>,
    /// A housing options workflow whose advice to choose for `answers` on `today`.
    advice: Option<String>,
    today: Option<String>,
    #[serde(default)]
    answers: serde_json::Map<String, Value>,
    stage: Option<String>,
    task: Option<String>,
    /// When the claim was received, and when the clock starts (RFC 3339 or a date).
    received: Option<String>,
    start: Option<String>,
    #[serde(default)]
    case: Value,
    #[serde(default)]
    officers: Vec<TestOfficer>,
    #[serde(default)]
    item: Value,
    expect: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestOfficer {
    #[serde(rename = "ref")]
    user_ref: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    open_cases: i64,
    line_manager: Option<String>,
}

/// One test's result.
#[derive(Debug)]
pub struct Outcome {
    pub file: PathBuf,
    pub line: usize,
    pub name: String,
    /// Empty when the test passed; otherwise each line of the difference.
    pub failures: Vec<String>,
}

/// Everything a run found.
#[derive(Debug, Default)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
    /// Scripts no test ran.
    pub untested_rules: Vec<String>,
    /// Values of fact-based targets no test chose, as "definition stage/task: fact=value", and
    /// branches of `if`s in scripts no test took, as "rules/x.rhai:LINE:COL: then/else branch".
    pub untested_branches: Vec<String>,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| !o.failures.is_empty())
            .count()
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for o in &self.outcomes {
            let verdict = if o.failures.is_empty() {
                "PASS"
            } else {
                "FAIL"
            };
            out.push_str(&format!(
                "{verdict} {}:{} {}\n",
                o.file.display(),
                o.line,
                o.name
            ));
            for f in &o.failures {
                out.push_str(&format!("     {f}\n"));
            }
        }
        let passed = self.outcomes.len() - self.failed();
        out.push_str(&format!("\n{passed} passed, {} failed\n", self.failed()));
        if !self.untested_rules.is_empty() {
            out.push_str(&format!(
                "rules no test exercised: {}\n",
                self.untested_rules.join(", ")
            ));
        }
        if !self.untested_branches.is_empty() {
            out.push_str("branches no test exercised:\n");
            for b in &self.untested_branches {
                out.push_str(&format!("  {b}\n"));
            }
        }
        out
    }
}

/// Runs every test file under `path` (a file or a directory) against `rules`.
pub fn run(rules: &RuleSet, path: &Path) -> Result<Report, Vec<Problem>> {
    let files = if path.is_dir() {
        crate::files::read_tree(path, &["toml"])
            .map_err(|p| vec![p])?
            .into_iter()
            .map(|(_, p, t)| (p, t))
            .collect()
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![Problem::new(
                path,
                (1, 1),
                format!("cannot read test file: {e}"),
            )]
        })?;
        vec![(path.to_path_buf(), text)]
    };
    let mut report = Report::default();
    let mut problems = Vec::new();
    let sandbox = super::Sandbox::with_coverage(&rules.limits);
    let mut used_rules = BTreeSet::new();
    let mut used_branches = BTreeSet::new();
    let mut advice_seen = AdviceSeen::default();
    for (file, text) in &files {
        let src = Source { path: file, text };
        let parsed: File = match toml::from_str(text) {
            Ok(f) => f,
            Err(e) => {
                problems.push(src.at(
                    e.span().map_or(0, |s| s.start),
                    e.message().trim().to_string(),
                ));
                continue;
            }
        };
        for spanned in parsed.tests {
            let (line, _) = src.position(spanned.span().start);
            let test = spanned.into_inner();
            let failures = match one(
                rules,
                &sandbox,
                &test,
                &mut used_rules,
                &mut used_branches,
                &mut advice_seen,
            ) {
                Ok(f) => f,
                Err(e) => vec![e],
            };
            report.outcomes.push(Outcome {
                file: file.clone(),
                line,
                name: test.name,
                failures,
            });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    report.untested_rules = rules
        .scripts
        .keys()
        .filter(|k| !used_rules.contains(*k))
        .cloned()
        .collect();
    report.untested_branches = branches(rules)
        .into_iter()
        .filter(|b| !used_branches.contains(b))
        .collect();
    // Advice statements: each should be chosen by some test, and each conditional one also
    // left out by some test.
    for s in &rules.advice.statements {
        let at = format!("{}:{}", s.file.display(), s.line);
        if !advice_seen.chosen.contains(&s.id) {
            report.untested_branches.push(format!(
                "{at}: advice statement {} never chosen by a test",
                s.id
            ));
        }
        if s.condition.is_some() && !advice_seen.left_out.contains(&s.id) {
            report.untested_branches.push(format!(
                "{at}: advice statement {} never left out by a test",
                s.id
            ));
        }
    }
    // Branches of `if`s in the scripts the tests ran that no test took.
    let hits = sandbox.hits();
    for script in rules
        .scripts
        .values()
        .filter(|s| used_rules.contains(&s.name))
    {
        for b in crate::script::branches(script) {
            let taken = hits
                .iter()
                .any(|(n, l, c)| *n == b.script && (*l, *c) > b.start && (*l, *c) < b.end);
            if !taken {
                report.untested_branches.push(format!(
                    "{}:{}:{}: {} branch",
                    b.path.display(),
                    b.start.0,
                    b.start.1,
                    b.arm
                ));
            }
        }
    }
    Ok(report)
}

fn one(
    rules: &RuleSet,
    sandbox: &super::Sandbox,
    t: &Test,
    used: &mut BTreeSet<String>,
    branches: &mut BTreeSet<String>,
    advice: &mut AdviceSeen,
) -> Result<Vec<String>, String> {
    match (&t.allocation, &t.escalation, &t.definition, &t.advice) {
        (Some(rule), None, None, None) => {
            used.insert(rule.clone());
            allocation_test(rules, sandbox, rule, t)
        }
        (None, Some(rule), None, None) => {
            used.insert(rule.clone());
            escalation_test(rules, sandbox, rule, t)
        }
        (None, None, Some(def), None) => sla_test(rules, sandbox, def, t, branches),
        (None, None, None, Some(workflow)) => advice_test(rules, sandbox, workflow, t, advice),
        _ => Err(
            "a test names exactly one of allocation, escalation, definition or advice".to_string(),
        ),
    }
}

/// Every value of every fact-based target in the rule set, for the coverage report.
fn branches(rules: &RuleSet) -> Vec<String> {
    let mut out = Vec::new();
    for def in &rules.definitions {
        for stage in &def.stages {
            let items = std::iter::once((stage.key.clone(), &stage.sla))
                .chain(stage.tasks.iter().map(|t| (t.key.clone(), &t.sla)));
            for (label, sla) in items {
                if let Some(Target::ByFact {
                    fact,
                    values,
                    default,
                }) = &sla.target
                {
                    for v in values.keys() {
                        out.push(format!("{} {label}: {fact}={v}", def.id));
                    }
                    if default.is_some() {
                        out.push(format!("{} {label}: {fact}=(default)", def.id));
                    }
                }
            }
        }
    }
    out
}
