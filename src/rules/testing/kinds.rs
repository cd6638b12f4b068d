//! Each kind of rule test: an allocation rule, an escalation rule, a definition's SLA targets,
//! and a workflow's advice choice, each compared with what the test expects.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Test;
use crate::db::rows::CaseRow;
use crate::definitions::{ClockFrom, Target};
use crate::facts::CaseFacts;
use crate::rules::RuleSet;
use crate::rules::allocation::{self, Officer};
use crate::rules::escalation::{self, Action};
use crate::sla::checkpoint::Dates;

/// Advice statements the tests chose and left out.
#[derive(Default)]
pub(super) struct AdviceSeen {
    pub(super) chosen: BTreeSet<String>,
    pub(super) left_out: BTreeSet<String>,
}

/// Chooses the advice of `workflow` for the test's answers, and compares the choice with
/// `expect.selected` (the exact list, in pack order) or `expect.includes` / `expect.excludes`.
pub(super) fn advice_test(
    rules: &RuleSet,
    sandbox: &crate::script::Sandbox,
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
        &case.facts(Some(def)).to_value(),
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

pub(super) fn allocation_test(
    rules: &RuleSet,
    sandbox: &crate::script::Sandbox,
    rule: &str,
    t: &Test,
) -> Result<Vec<String>, String> {
    let script = rules
        .scripts
        .get(rule)
        .ok_or_else(|| format!("there is no rule {rule:?} (rules/{rule}.rhai)"))?;
    let facts = test_facts(&t.case)?;
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

pub(super) fn escalation_test(
    rules: &RuleSet,
    sandbox: &crate::script::Sandbox,
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

pub(super) fn sla_test(
    rules: &RuleSet,
    sandbox: &crate::script::Sandbox,
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
        Some(Target::Expr { ast, .. }) => crate::rules::target::evaluate(sandbox, ast, &case)?,
        Some(target) => {
            if let Target::ByFact { fact, values, .. } = target {
                let v = crate::rules::target::fact(&case)(fact);
                let chosen = v
                    .filter(|v| values.contains_key(v))
                    .unwrap_or_else(|| "(default)".into());
                branches.insert(format!("{} {label}: {fact}={chosen}", def.id));
            }
            target.period(crate::rules::target::fact(&case))
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
        status: crate::states::CaseStatus::Open,
        outcome: None,
        owner: None,
        allocation: crate::states::Allocation::Allocated,
        queue_role: None,
        created_at: received,
        closed_at: None,
        target_at: None,
    }
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

/// The case an allocation test describes: its `case` table over a Right to Buy case in England,
/// received 5 January 2026, for the home ownership team.
fn test_facts(case: &Value) -> Result<CaseFacts, String> {
    let mut facts = json!({
        "case_ref": "TEST-1", "kind": "home_buy", "scheme": null, "workflow": null, "country": "england",
        "definition": "test", "definition_version": "test", "definition_name": null,
        "team_role": "home_ownership", "tenure": null, "property_ref": null,
        "received_at": "2026-01-05T09:00:00Z", "status": "open", "owner": null, "target_at": null,
        "applicant": null, "applicant_group": null, "attributes": {},
    });
    for (key, value) in case.as_object().into_iter().flatten() {
        if facts.get(key).is_none() {
            return Err(format!(
                "case.{key} is not a case fact; see docs/rules.md for the facts a rule sees"
            ));
        }
        facts[key] = value.clone();
    }
    serde_json::from_value(facts).map_err(|e| format!("case: {e}"))
}
