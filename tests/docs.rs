//! The documentation against the binary. The command examples of docs/integration.md and
//! docs/housing-options.md, run in order on a new database as `casewarden submit` and `tick`
//! run them, get the outcomes and the rejection reasons the documents give them; the facts the
//! documents show for notifications have the fields real ones have; and the shipped example
//! configuration starts the daemon under the documented layout.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{DateTime, Utc};

#[path = "common/mod.rs"]
mod common;

#[path = "docs/examples.rs"]
mod examples;

#[path = "docs/install.rs"]
mod install;

#[path = "docs/grants.rs"]
mod grants;

#[path = "common/pg.rs"]
mod pg;

use examples::Expected;

const DOCUMENTS: [&str; 2] = ["docs/integration.md", "docs/housing-options.md"];

/// When the sequence of examples starts, as docs/integration.md says.
const START: &str = "2026-03-02T10:00:00Z";

fn casewarden(dir: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_casewarden"));
    c.current_dir(dir).env_remove("RUST_LOG").args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CASEWARDEN__")) {
        c.env_remove(k);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "casewarden {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A working directory with the shipped rules and templates, and no database yet.
fn workdir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    common::copy_tree(&common::repo_path("rules"), &dir.join("rules"));
    common::copy_tree(&common::repo_path("templates"), &dir.join("templates"));
    dir
}

/// The latest time a command documented as accepted names as when something happened: the
/// examples' clock moves on to it, as docs/integration.md says.
fn named_time(example: &examples::Example) -> Option<DateTime<Utc>> {
    let command: serde_json::Value = serde_json::from_str(&example.command).ok()?;
    ["received_at", "at"]
        .iter()
        .filter_map(|k| command[k].as_str())
        .filter_map(|t| casewarden::clock::parse_time(t).ok())
        .max()
}

/// Sends each block of examples with `casewarden submit` and applies it with one `tick`, in
/// order, and returns each example with the inbox row it became.
fn run_in_order(
    dir: &Path,
    blocks: &[examples::Block],
) -> Vec<(examples::Example, serde_json::Value)> {
    let mut now = casewarden::clock::parse_time(START).unwrap();
    let mut sent = Vec::new();
    for block in blocks {
        for example in block.iter().filter(|e| e.expected == Expected::Accepted) {
            now = now.max(named_time(example).unwrap_or(now));
        }
        let lines: Vec<&str> = block.iter().map(|e| e.command.as_str()).collect();
        std::fs::write(dir.join("commands.jsonl"), lines.join("\n")).unwrap();
        let out = casewarden(dir, &["submit", "commands.jsonl"]);
        let ids: Vec<i64> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        assert_eq!(ids.len(), block.len(), "{}", block[0].place);
        casewarden(dir, &["tick", "--now", &now.to_rfc3339()]);
        sent.extend(block.iter().cloned().zip(ids));
    }
    let out = casewarden(dir, &["inbox", "--json", "--limit", "100000"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    sent.into_iter()
        .map(|(example, id)| {
            let row = rows.iter().find(|r| r["id"] == id).unwrap().clone();
            (example, row)
        })
        .collect()
}

/// How the outcome of one example differs from what its document says, if it does.
fn difference(example: &examples::Example, row: &serde_json::Value) -> Option<String> {
    let status = row["status"].as_str().unwrap_or_default();
    let reason = row["reason"].as_str().unwrap_or_default();
    let given_id = serde_json::from_str::<serde_json::Value>(&example.command)
        .ok()
        .and_then(|c| c["command_id"].as_str().map(str::to_string));
    let differs = match &example.expected {
        Expected::Accepted if status == "accepted" => return None,
        Expected::Accepted => format!("documented as accepted; casewarden says {status}: {reason}"),
        Expected::Rejected { .. } if status != "rejected" => {
            format!("documented as rejected; casewarden says {status} {reason}")
        }
        Expected::Rejected {
            reason: documented, ..
        } if !examples::matches(documented, reason) => {
            format!("documented reason:\n    {documented}\n  casewarden's:\n    {reason}")
        }
        Expected::Rejected { id_used_up, .. } => {
            let recorded = row["command_id"].as_str().map(str::to_string);
            match (given_id, id_used_up) {
                (Some(id), true) if recorded.as_deref() != Some(id.as_str()) => {
                    format!("documented as using up command_id {id}; casewarden did not record it")
                }
                (Some(id), false) if recorded.is_some() => {
                    format!("documented as not using up command_id {id}; casewarden recorded it")
                }
                _ => return None,
            }
        }
    };
    Some(format!(
        "{}: {}\n  {differs}",
        example.place, example.command
    ))
}

/// The examples of both documents, run once in this test binary and shared by its tests.
struct Story {
    dir: PathBuf,
    outcomes: Vec<(examples::Example, serde_json::Value)>,
}

fn story() -> &'static Story {
    static STORY: std::sync::OnceLock<Story> = std::sync::OnceLock::new();
    STORY.get_or_init(|| {
        let root = common::repo_path("");
        let blocks: Vec<examples::Block> = DOCUMENTS
            .iter()
            .flat_map(|doc| examples::blocks(&root, doc))
            .collect();
        let dir = workdir("docs-examples");
        let outcomes = run_in_order(&dir, &blocks);
        Story { dir, outcomes }
    })
}

#[test]
fn the_command_examples_of_the_docs_run_in_order_have_the_outcomes_the_docs_give_them() {
    let story = story();
    let count = story.outcomes.len();
    // The extraction is part of what is tested: if it stops finding examples, say so.
    assert!(
        count >= 80,
        "only {count} examples found: is the markup still right?"
    );
    let differences: Vec<String> = story
        .outcomes
        .iter()
        .filter_map(|(example, row)| difference(example, row))
        .collect();
    assert!(
        differences.is_empty(),
        "{} of {count} examples do not do what their documents say:\n\n{}",
        differences.len(),
        differences.join("\n\n")
    );
}

/// The notification `facts` the documents show: JSON objects with a `recipient`, each with the
/// kind of notification it is for and, for docs/notifications.md, whether it is the sample
/// `check` renders templates with.
fn documented_facts() -> Vec<(String, String, serde_json::Value)> {
    let mut out = Vec::new();
    for doc in ["docs/integration.md", "docs/notifications.md"] {
        let text = std::fs::read_to_string(common::repo_path(doc)).unwrap();
        for (n, block) in text.split("```json\n").enumerate().skip(1) {
            let body = block.split("```").next().unwrap();
            let Ok(facts) = serde_json::from_str::<serde_json::Value>(body) else {
                continue;
            };
            if facts.get("recipient").is_none() {
                continue;
            }
            let kind = if let Some(level) = facts["level"].as_str() {
                format!("sla_{level}")
            } else if facts.get("release").is_some() {
                "task_released".to_string()
            } else if facts.get("allocation").is_some() {
                "allocation_needed".to_string()
            } else if facts.get("pack").is_some() {
                "housing_pack".to_string()
            } else {
                panic!("{doc}: facts for which notification? {facts}")
            };
            out.push((format!("{doc}, json block {n}"), kind, facts));
        }
    }
    out
}

/// Where `documented` and `real` differ in their fields, object by object. A documented string
/// beginning `…` stands for any value; the items of arrays are not compared.
fn field_differences(
    documented: &serde_json::Value,
    real: &serde_json::Value,
    at: &str,
) -> Vec<String> {
    use serde_json::Value;
    match (documented, real) {
        (Value::String(s), _) if s.starts_with('…') => Vec::new(),
        (Value::Object(d), Value::Object(r)) => {
            let mut out = Vec::new();
            for key in r.keys().filter(|k| !d.contains_key(*k)) {
                out.push(format!(
                    "{at}{key}: written by casewarden, missing from the docs"
                ));
            }
            for key in d.keys().filter(|k| !r.contains_key(*k)) {
                out.push(format!("{at}{key}: in the docs, not written by casewarden"));
            }
            // `attributes` are the CRM's own, whatever it sent.
            let compared = d
                .iter()
                .filter(|(k, _)| r.contains_key(*k) && *k != "attributes");
            for (key, value) in compared {
                out.extend(field_differences(value, &r[key], &format!("{at}{key}.")));
            }
            out
        }
        _ => Vec::new(),
    }
}

/// Whether `documented` is `sample`, a documented string beginning `…` standing for any value.
fn same_sample(documented: &serde_json::Value, sample: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (documented, sample) {
        (Value::String(s), _) if s.starts_with('…') => true,
        (Value::Object(d), Value::Object(r)) => {
            d.len() == r.len()
                && d.iter()
                    .all(|(k, v)| r.get(k).is_some_and(|other| same_sample(v, other)))
        }
        (Value::Array(d), Value::Array(r)) => {
            d.len() == r.len() && d.iter().zip(r).all(|(a, b)| same_sample(a, b))
        }
        _ => documented == sample,
    }
}

#[test]
fn the_facts_the_docs_show_for_notifications_have_the_fields_casewarden_writes() {
    let story = story();
    // The examples release no task by its date; hold one of the last case's tasks and let the
    // date come, for a task_released notification to compare with.
    let hold = r#"{"type":"hold_task","case_ref":"HO-2026-0002","task":"triage","until":"2026-03-16","reason":"waiting for the applicant to call back"}"#;
    std::fs::write(story.dir.join("hold.jsonl"), hold).unwrap();
    casewarden(&story.dir, &["submit", "hold.jsonl"]);
    casewarden(&story.dir, &["tick", "--now", "2026-03-09T10:00:00Z"]);
    casewarden(&story.dir, &["tick", "--now", "2026-03-16T10:00:00Z"]);

    let real: Vec<(String, String)> = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let url = format!("sqlite://{}", story.dir.join("casewarden.db").display());
            let db = casewarden::db::Db::connect_existing(&url).await.unwrap();
            casewarden::db::sql("SELECT template, facts FROM outbox ORDER BY id")
                .fetch_all(&db)
                .await
                .unwrap()
        });
    let documented = documented_facts();
    assert!(
        documented.len() >= 7,
        "only {} facts examples found",
        documented.len()
    );
    let mut differences = Vec::new();
    for (place, kind, facts) in &documented {
        let Some((_, written)) = real.iter().find(|(template, _)| template == kind) else {
            differences.push(format!(
                "{place}: the examples wrote no {kind} notification"
            ));
            continue;
        };
        let written: serde_json::Value = serde_json::from_str(written).unwrap();
        for d in field_differences(facts, &written, "") {
            differences.push(format!("{place} ({kind}): {d}"));
        }
        // docs/notifications.md shows the facts `check` renders templates with.
        if place.starts_with("docs/notifications.md") {
            let sample = casewarden::mail::render::sample_facts(kind);
            if !same_sample(facts, &sample) {
                differences.push(format!(
                    "{place} ({kind}): not the sample check renders with:\n{sample:#}"
                ));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
