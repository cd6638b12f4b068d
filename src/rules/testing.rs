//! `casewarden rules test`: rule authors' tests, kept beside the rules in `rules/tests/*.toml`.
//! Each `[[test]]` gives facts and expects a decision from one rule: an allocation, the SLA dates
//! a definition sets, or the actions of an escalation rule. The runner reports each result with
//! a readable difference, and which rules and fact-based targets no test exercised.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use toml::Spanned;

use super::RuleSet;
use super::allocation::{self, CaseFacts, Officer};
use super::escalation::{self, Action};
use crate::db::rows::CaseRow;
use crate::definitions::{ClockFrom, Target};
use crate::problems::{Problem, Source};
use crate::sla::checkpoint::Dates;

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

/// Advice statements the tests chose and left out.
#[derive(Default)]
struct AdviceSeen {
    chosen: BTreeSet<String>,
    left_out: BTreeSet<String>,
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

/// Chooses the advice of `workflow` for the test's answers, and compares the choice with
/// `expect.selected` (the exact list, in pack order) or `expect.includes` / `expect.excludes`.
fn advice_test(
    rules: &RuleSet,
    sandbox: &super::Sandbox,
    workflow: &str,
    t: &Test,
    seen: &mut AdviceSeen,
) -> Result<Vec<String>, String> {
    let def = rules
        .definitions
        .iter()
        .find(|d| d.workflow.as_deref() == Some(workflow))
        .ok_or_else(|| format!("advice: no housing options workflow {workflow:?}"))?;
    let form = rules
        .advice
        .form_for(workflow)
        .ok_or_else(|| format!("advice: workflow {workflow:?} has no form"))?;
    let (answers, _) = form
        .merge(&serde_json::Map::new(), &t.answers)
        .map_err(|reasons| {
            format!(
                "answers rejected by form {}: {}",
                form.id,
                reasons.join("; ")
            )
        })?;
    let today = match &t.today {
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| format!("today {d:?} is not a date (YYYY-MM-DD)"))?,
        None => return Err("an advice test needs today = \"YYYY-MM-DD\"".to_string()),
    };
    let received = today
        .and_hms_opt(9, 0, 0)
        .expect("nine o'clock exists")
        .and_utc();
    let case = test_case(def, &t.case, received);
    let choices = rules.advice.select(
        sandbox,
        workflow,
        &answers,
        &crate::advice::case_facts(&case),
        today,
    );
    let mut failures: Vec<String> = choices
        .iter()
        .filter_map(|c| c.error.as_ref().map(|e| format!("{}: {e}", c.statement)))
        .collect();
    for c in &choices {
        if c.chosen {
            seen.chosen.insert(c.statement.clone());
        } else if c.error.is_none() {
            seen.left_out.insert(c.statement.clone());
        }
    }
    let chosen: Vec<&str> = choices
        .iter()
        .filter(|c| c.chosen)
        .map(|c| c.statement.as_str())
        .collect();
    let why = |id: &str| {
        choices
            .iter()
            .find(|c| c.statement == id)
            .map_or("not offered in this workflow".to_string(), |c| {
                c.why.clone()
            })
    };
    let list = |key: &str| -> Result<Option<Vec<String>>, String> {
        match t.expect.get(key) {
            None => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|_| format!("expect.{key} must be a list of statement ids")),
        }
    };
    for key in t.expect.as_object().into_iter().flat_map(|m| m.keys()) {
        if !["selected", "includes", "excludes"].contains(&key.as_str()) {
            return Err(format!(
                "expect.{key}: advice tests expect selected, includes or excludes"
            ));
        }
    }
    for id in list("selected")?
        .iter()
        .chain(list("includes")?.iter())
        .chain(list("excludes")?.iter())
        .flatten()
    {
        if rules.advice.statement(id).is_none() {
            failures.push(format!("{id}: no such advice statement"));
        }
    }
    if let Some(expected) = list("selected")?
        && expected != chosen
    {
        failures.push(format!(
            "selected: expected [{}], got [{}]",
            expected.join(", "),
            chosen.join(", ")
        ));
        for id in expected.iter().filter(|id| !chosen.contains(&id.as_str())) {
            failures.push(format!("  {id} left out: {}", why(id)));
        }
        for id in chosen
            .iter()
            .filter(|id| !expected.iter().any(|e| e == *id))
        {
            failures.push(format!("  {id} chosen: {}", why(id)));
        }
    }
    for id in list("includes")?.into_iter().flatten() {
        if !chosen.contains(&id.as_str()) {
            failures.push(format!("expected {id} to be chosen: {}", why(&id)));
        }
    }
    for id in list("excludes")?.into_iter().flatten() {
        if chosen.contains(&id.as_str()) {
            failures.push(format!("expected {id} to be left out: {}", why(&id)));
        }
    }
    Ok(failures)
}

fn allocation_test(
    rules: &RuleSet,
    sandbox: &super::Sandbox,
    rule: &str,
    t: &Test,
) -> Result<Vec<String>, String> {
    let script = rules
        .scripts
        .get(rule)
        .ok_or_else(|| format!("there is no rule {rule:?} (rules/{rule}.rhai)"))?;
    let c = &t.case;
    let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
    let facts = CaseFacts {
        case_ref: s("case_ref").unwrap_or_else(|| "TEST-1".into()),
        kind: s("kind").unwrap_or_else(|| "home_buy".into()),
        scheme: s("scheme"),
        workflow: s("workflow"),
        country: s("country").unwrap_or_else(|| "england".into()),
        tenure: s("tenure"),
        property_ref: s("property_ref"),
        received_at: s("received_at").unwrap_or_else(|| "2026-01-05T09:00:00+00:00".into()),
        team_role: s("team_role").unwrap_or_else(|| "home_ownership".into()),
        attributes: c.get("attributes").cloned().unwrap_or_else(|| json!({})),
    };
    let officers: Vec<Officer> = t
        .officers
        .iter()
        .map(|o| Officer {
            user_ref: o.user_ref.clone(),
            roles: o.roles.clone(),
            open_cases: o.open_cases,
            line_manager: o.line_manager.clone(),
        })
        .collect();
    let decision = allocation::allocate(sandbox, script, &facts, &officers)
        .map_err(|e| format!("the rule failed: {e}"))?;
    // TOML has no null: an empty owner means the rule chose nobody.
    let got = json!({"owner": decision.owner.unwrap_or_default(), "reason": decision.reason});
    Ok(compare(&t.expect, &got))
}

fn escalation_test(
    rules: &RuleSet,
    sandbox: &super::Sandbox,
    rule: &str,
    t: &Test,
) -> Result<Vec<String>, String> {
    let script = rules
        .scripts
        .get(rule)
        .ok_or_else(|| format!("there is no rule {rule:?} (rules/{rule}.rhai)"))?;
    let level = t
        .item
        .get("level")
        .and_then(Value::as_str)
        .unwrap_or("exceeded");
    let mut item = crate::mail::render::sample_facts(&format!("sla_{level}"));
    merge(&mut item, &t.item);
    let decided = escalation::escalate(sandbox, script, &item)
        .map_err(|e| format!("the rule failed: {e}"))?;
    let actions: Vec<Value> = decided.actions.iter().map(action_json).collect();
    let got = json!({"actions": actions, "reason": decided.reason.unwrap_or_default()});
    Ok(compare(&t.expect, &got))
}

fn action_json(a: &Action) -> Value {
    match a {
        Action::Notify { to, template } => {
            let to: Vec<String> = to
                .iter()
                .map(|r| {
                    serde_json::to_value(r)
                        .map(recipient_text)
                        .unwrap_or_default()
                })
                .collect();
            json!({"action": "notify", "to": to, "template": template})
        }
        Action::Reassign { to } => json!({"action": "reassign", "to": to}),
    }
}

/// A recipient as rules write it: `task_owner`, `role:legal`.
fn recipient_text(v: Value) -> String {
    match (v["kind"].as_str(), v["ref"].as_str()) {
        (Some(kind), Some(r)) => format!("{kind}:{r}"),
        (Some(kind), None) => kind.to_string(),
        _ => v.to_string(),
    }
}

fn sla_test(
    rules: &RuleSet,
    sandbox: &super::Sandbox,
    def_id: &str,
    t: &Test,
    branches: &mut BTreeSet<String>,
) -> Result<Vec<String>, String> {
    let def = rules
        .definition(def_id)
        .ok_or_else(|| format!("there is no definition {def_id:?}"))?;
    let (sla, label) = match (&t.stage, &t.task) {
        (Some(s), None) => {
            let stage = def
                .stage(s)
                .ok_or_else(|| format!("{def_id} has no stage {s:?}"))?;
            (stage.sla.clone(), s.clone())
        }
        (None, Some(k)) => {
            let task = def
                .stages
                .iter()
                .find_map(|s| s.task(k))
                .ok_or_else(|| format!("{def_id} has no task {k:?}"))?;
            (task.sla.clone(), k.clone())
        }
        _ => return Err("an SLA test names exactly one of stage or task".to_string()),
    };
    let time = |field: &str, v: &Option<String>| -> Result<DateTime<Utc>, String> {
        crate::clock::parse_time(
            v.as_deref()
                .ok_or_else(|| format!("an SLA test needs {field}"))?,
        )
        .map_err(|e| format!("{field}: {e}"))
    };
    let received = time("received", &t.received)?;
    let start = match &t.start {
        Some(_) => time("start", &t.start)?,
        None => received,
    };
    let case = test_case(def, &t.case, received);
    let period = match &sla.target {
        None => return Ok(compare(&t.expect, &json!({"target": null, "amber": null}))),
        Some(Target::Expr { ast, .. }) => super::target::evaluate(sandbox, ast, &case)?,
        Some(target) => {
            if let Target::ByFact { fact, values, .. } = target {
                let v = super::target::fact(&case)(fact);
                let chosen = v
                    .filter(|v| values.contains_key(v))
                    .unwrap_or_else(|| "(default)".into());
                branches.insert(format!("{} {label}: {fact}={chosen}", def.id));
            }
            target.period(super::target::fact(&case))
        }
    };
    let Some(period) = period else {
        return Ok(compare(&t.expect, &json!({"target": null, "amber": null})));
    };
    let clock_start = if sla.from == ClockFrom::CaseReceived {
        received
    } else {
        start
    };
    let dates = Dates::start(rules.calendar(def), clock_start, period, sla.amber);
    let got =
        json!({"target": dates.target.to_rfc3339(), "amber": dates.amber.map(|a| a.to_rfc3339())});
    let mut expect = t.expect.clone();
    for key in ["target", "amber"] {
        if let Some(v) = expect.get(key).and_then(Value::as_str) {
            let normalised = crate::clock::parse_time(v)
                .map(|t| t.to_rfc3339())
                .map_err(|e| format!("expect.{key}: {e}"))?;
            expect[key] = json!(normalised);
        }
    }
    Ok(compare(&expect, &got))
}

fn test_case(def: &crate::definitions::Definition, c: &Value, received: DateTime<Utc>) -> CaseRow {
    let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
    CaseRow {
        id: 0,
        case_ref: s("case_ref").unwrap_or_else(|| "TEST-1".into()),
        kind: def.kind.clone(),
        scheme: (!def.scheme.is_empty()).then(|| def.scheme.clone()),
        workflow: def.workflow.clone(),
        country: def.country.clone(),
        definition_id: def.id.clone(),
        definition_version: def.version.clone(),
        applicant_contact: None,
        applicant_group: None,
        property_ref: None,
        property_address: None,
        tenure: s("tenure"),
        received_at: received,
        attributes: sqlx::types::Json(c.get("attributes").cloned().unwrap_or_else(|| json!({}))),
        status: "open".into(),
        outcome: None,
        owner: None,
        allocation: "allocated".into(),
        queue_role: None,
        created_at: received,
        closed_at: None,
        target_at: None,
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

/// Overlays `patch` on `base`, map by map.
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        // A test that gives no item keeps the sample as it is.
        (_, Value::Null) => {}
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// Each expected key against what the rule gave: only the keys a test names are compared.
fn compare(expect: &Value, got: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(expect) = expect.as_object() else {
        return vec!["expect must be a table, e.g. expect = { owner = \"ben\" }".into()];
    };
    let got: BTreeMap<String, Value> = got
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    for (key, want) in expect {
        let (key, contains) = match key.strip_suffix("_contains") {
            Some(k) => (k.to_string(), true),
            None => (key.clone(), false),
        };
        let actual = got.get(&key).cloned().unwrap_or(Value::Null);
        let ok = if contains {
            actual
                .as_str()
                .zip(want.as_str())
                .is_some_and(|(a, w)| a.contains(w))
        } else {
            &actual == want
        };
        if !ok {
            let how = if contains { "to contain" } else { "expected" };
            out.push(format!("{key}: {how} {want}"));
            out.push(format!("{}      got {actual}", " ".repeat(key.len())));
        }
    }
    out
}
