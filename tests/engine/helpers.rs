//! Shared test helpers: an isolated database per test (SQLite file or a fresh PostgreSQL
//! database), the shipped rules, and shorthand for submitting commands and running passes.

use casewarden::db::{Db, sql};
use casewarden::engine::{Engine, EngineSettings, PassOutcome, ingest};
use casewarden::report::{self, CaseReport};
use casewarden::rules::{Limits, RuleSet};
use casewarden::{clock, events};
use serde_json::{Value, json};

pub struct Env {
    pub engine: Engine,
    pub db: Db,
    #[allow(dead_code)]
    pub url: String,
    _dir: Option<std::sync::Arc<tempfile::TempDir>>,
    /// Where housing packs are written.
    pub packs: tempfile::TempDir,
}

/// Declares each scenario once and runs it on both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($env:ident: Env) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn scenario($env: $crate::helpers::Env) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let env = $crate::helpers::Env::sqlite().await;
                let log = env.log();
                scenario(env).await;
                log.matches_the_event_schema().await;
                log.holds_no_personal_data().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(env) = $crate::helpers::Env::postgres().await {
                    let log = env.log();
                    scenario(env).await;
                    log.matches_the_event_schema().await;
                    log.holds_no_personal_data().await;
                log.holds_no_personal_data().await;
                }
            }
        }
    )*};
}

pub use crate::common::{copy_tree, repo_path};

pub fn shipped_rules() -> RuleSet {
    RuleSet::load(
        &repo_path("rules"),
        &repo_path("templates"),
        &Limits::default(),
    )
    .expect("shipped rules load")
}

impl Env {
    pub async fn sqlite() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("cases.db").display());
        Env::open(url, Some(dir), shipped_rules()).await
    }

    pub async fn postgres() -> Option<Env> {
        let url = crate::pg::fresh_database()?;
        Some(Env::open(url, None, shipped_rules()).await)
    }

    pub async fn open(url: String, dir: Option<tempfile::TempDir>, rules: RuleSet) -> Env {
        let db = Db::connect(&url).await.expect("connect");
        db.migrate().await.expect("migrate");
        casewarden::engine::deadlines::publish_calendars(&db, &rules.calendars)
            .await
            .expect("publish calendars");
        let packs = tempfile::tempdir().unwrap();
        let engine = Engine::new(db.clone(), rules, EngineSettings::default()).with_packs(
            casewarden::engine::pack_files::PackSettings {
                dir: packs.path().to_path_buf(),
                dry_run: false,
            },
            "Example Borough Council",
        );
        Env {
            engine,
            db,
            url,
            _dir: dir.map(std::sync::Arc::new),
            packs,
        }
    }

    /// Submits commands; returns their inbox ids.
    pub async fn submit(&self, commands: &[Value]) -> Vec<i64> {
        let lines: Vec<String> = commands.iter().map(Value::to_string).collect();
        ingest::submit(
            &self.db,
            &lines.join("\n"),
            casewarden::commands::MAX_COMMAND_BYTES,
        )
        .await
        .unwrap()
    }

    /// Submits raw lines as they are.
    pub async fn submit_raw(&self, text: &str) -> Vec<i64> {
        ingest::submit(&self.db, text, casewarden::commands::MAX_COMMAND_BYTES)
            .await
            .unwrap()
    }

    /// Writes a body straight into the inbox table, as a CRM sharing the database does.
    pub async fn insert_raw(&self, body: &str) -> i64 {
        sql("INSERT INTO inbox (body, received_at) VALUES ($1, $2) RETURNING id")
            .bind(body)
            .bind(clock::now())
            .scalar(&self.db)
            .await
            .unwrap()
    }

    /// Writes a command into the inbox as the API does, naming the client that submitted it
    /// (`None`: as a CRM writing into the table does).
    pub async fn insert_from(&self, client: Option<&str>, command: &Value) -> i64 {
        sql("INSERT INTO inbox (body, received_at, client) VALUES ($1, $2, $3) RETURNING id")
            .bind(command.to_string())
            .bind(clock::now())
            .bind(client)
            .scalar(&self.db)
            .await
            .unwrap()
    }

    pub async fn tick(&self, now: &str) -> PassOutcome {
        self.engine
            .run_pass(clock::parse_time(now).unwrap())
            .await
            .unwrap()
    }

    /// Submits one command, runs a pass at `now`, and returns (status, reason).
    pub async fn apply(&self, now: &str, command: Value) -> (String, Option<String>) {
        let id = self.submit(&[command]).await[0];
        self.tick(now).await;
        self.inbox(id).await
    }

    /// Applies a command that must be accepted.
    pub async fn ok(&self, now: &str, command: Value) {
        let (status, reason) = self.apply(now, command.clone()).await;
        assert_eq!(status, "accepted", "{command} was {status}: {reason:?}");
    }

    /// Applies a command that must be rejected, and returns the reason.
    pub async fn rejected(&self, now: &str, command: Value) -> String {
        let (status, reason) = self.apply(now, command.clone()).await;
        assert_eq!(status, "rejected", "{command} was {status}");
        reason.expect("a rejection has a reason")
    }

    pub async fn inbox(&self, id: i64) -> (String, Option<String>) {
        sql("SELECT status, reason FROM inbox WHERE id = $1")
            .bind(id)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    pub async fn case(&self, case_ref: &str) -> CaseReport {
        report::case(&self.db, case_ref)
            .await
            .unwrap()
            .expect("case exists")
    }

    /// Event kinds of a case, in order.
    pub async fn event_kinds(&self, case_ref: &str) -> Vec<String> {
        self.case(case_ref)
            .await
            .events
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    pub async fn all_events(&self) -> Vec<events::Event> {
        events::since(&self.db, 0, 100_000).await.unwrap()
    }

    /// The status of a task in the case's latest entry of its stage.
    pub async fn task_status(&self, case_ref: &str, task: &str) -> String {
        let case = self.case(case_ref).await;
        case.stages
            .iter()
            .rev()
            .flat_map(|s| &s.tasks)
            .find(|t| t.task == task)
            .map(|t| t.status.to_string())
            .unwrap_or_else(|| "absent".into())
    }

    /// The case's open stage, if any.
    pub async fn open_stage(&self, case_ref: &str) -> Option<String> {
        self.case(case_ref)
            .await
            .stages
            .iter()
            .find(|s| s.stage.status.as_str() == "open")
            .map(|s| s.stage.stage.clone())
    }

    /// A small organisation: two teams, officers with line managers, applicants.
    pub async fn seed_organisation(&self) {
        let now = "2026-01-05T08:00:00Z";
        let mut commands = vec![
            json!({"type": "upsert_role", "ref": "home_ownership", "name": "Home ownership team"}),
            json!({"type": "upsert_role", "ref": "legal", "name": "Legal services"}),
            json!({"type": "upsert_role", "ref": "patch_north", "name": "North patch"}),
            json!({"type": "upsert_role", "ref": "managers", "name": "Team managers"}),
            json!({"type": "upsert_user", "ref": "mgr1", "name": "Morag Manager", "email": "morag@example.org", "roles": ["managers"]}),
            json!({"type": "upsert_user", "ref": "off1", "name": "Olu Officer", "email": "olu@example.org", "line_manager": "mgr1", "roles": ["home_ownership", "patch_north"]}),
            json!({"type": "upsert_user", "ref": "off2", "name": "Ola Officer", "email": "ola@example.org", "line_manager": "mgr1", "roles": ["home_ownership"]}),
            json!({"type": "upsert_user", "ref": "sol1", "name": "Sam Solicitor", "email": "sam@example.org", "line_manager": "mgr1", "roles": ["legal"]}),
        ];
        for i in 1..=6 {
            commands.push(json!({"type": "upsert_contact", "ref": format!("tenant{i}"), "name": format!("Tenant {i}"),
                "email": format!("tenant{i}@example.net"), "address": format!("{i} Example Road")}));
        }
        let ids = self.submit(&commands).await;
        self.tick(now).await;
        for id in ids {
            assert_eq!(self.inbox(id).await.0, "accepted", "seeding command #{id}");
        }
    }
}

/// A Right to Buy England claim.
pub fn rtb_claim(case_ref: &str, applicant: &str, tenure: &str, received: &str) -> Value {
    json!({
        "type": "create_case", "case_ref": case_ref, "kind": "home_buy", "scheme": "right_to_buy",
        "country": "england", "applicant": applicant,
        "property": {"ref": format!("P-{case_ref}"), "address": "1 Example Road, Leeds", "tenure": tenure},
        "received_at": received, "attributes": {"qualifying_period_all_with_landlord": true}
    })
}

pub fn complete(case_ref: &str, task: &str, by: &str) -> Value {
    json!({"type": "complete_task", "case_ref": case_ref, "task": task, "by": by})
}

/// The shipped rules and templates copied to a temporary directory, with some files replaced.
pub fn rules_with(replacements: &[(&str, &str)]) -> (tempfile::TempDir, RuleSet) {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo_path("rules"), &dir.path().join("rules"));
    copy_tree(&repo_path("templates"), &dir.path().join("templates"));
    for (rel, text) in replacements {
        std::fs::write(dir.path().join("rules").join(rel), text).unwrap();
    }
    let rules = RuleSet::load(
        &dir.path().join("rules"),
        &dir.path().join("templates"),
        &Limits {
            deadline_ms: 2_000,
            ..Limits::default()
        },
    )
    .expect("replaced rules load");
    (dir, rules)
}

/// A scenario's event log, kept past the scenario's end to be checked.
pub struct Log {
    db: Db,
    _dir: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl Env {
    pub fn log(&self) -> Log {
        Log {
            db: self.db.clone(),
            _dir: self._dir.clone(),
        }
    }
}

/// The personal data a scenario gave casewarden, wherever it keeps it: people's names, e-mail
/// addresses, phone numbers and addresses, the property's address, and the free text officers
/// type (notes, hold and skip reasons, amendments' reasons, plan steps, why a duty ended, why an
/// erasure was made, file names and locations). Values under five characters
/// are left out: they would match by chance.
const PERSONAL_VALUES: &str = "\
    SELECT name FROM contacts UNION SELECT email FROM contacts UNION SELECT phone FROM contacts \
    UNION SELECT address FROM contacts UNION SELECT name FROM contact_groups \
    UNION SELECT name FROM users UNION SELECT email FROM users \
    UNION SELECT property_address FROM cases UNION SELECT body FROM notes \
    UNION SELECT reason FROM task_holds UNION SELECT skip_reason FROM tasks \
    UNION SELECT name FROM attachments UNION SELECT uri FROM attachments \
    UNION SELECT reason FROM case_updates UNION SELECT step FROM plan_steps \
    UNION SELECT end_reason FROM duties UNION SELECT reason FROM erasures";

impl Log {
    /// No event the scenario wrote holds any of the personal data it gave: events name people
    /// by reference only, and free text stays in tables that erasure can reach.
    pub async fn holds_no_personal_data(&self) {
        let values: Vec<(Option<String>,)> =
            sql(PERSONAL_VALUES).fetch_all(&self.db).await.unwrap();
        let values: Vec<String> = values
            .into_iter()
            .filter_map(|(v,)| v)
            .filter(|v| v.chars().count() >= 5)
            .collect();
        for event in events::since(&self.db, 0, 1_000_000).await.unwrap() {
            let logged = format!("{} {}", event.actor, event.data.0);
            for value in &values {
                // As the JSON text holds it, escapes and all.
                let json = serde_json::to_string(value).unwrap();
                let escaped = &json[1..json.len() - 1];
                assert!(
                    !logged.contains(value.as_str()) && !logged.contains(escaped),
                    "event #{} ({}) holds personal data {value:?}: {logged}",
                    event.id,
                    event.kind
                );
            }
        }
    }

    /// Every event the scenario wrote is valid against the published events schema.
    pub async fn matches_the_event_schema(&self) {
        events_match_the_schema(&self.db).await;
    }
}

/// Every event in the database is valid against the published events schema.
pub async fn events_match_the_schema(db: &Db) {
    static VALIDATOR: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        jsonschema::validator_for(&casewarden::events::kinds::json_schema())
            .expect("the events schema compiles")
    });
    for event in events::since(db, 0, 1_000_000).await.unwrap() {
        let value = serde_json::to_value(&event).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "event #{} ({}) does not match the events schema: {errors:#?}\n{value}",
            event.id,
            event.kind
        );
    }
}

impl Env {
    /// Replaces the engine's rule set, as a reload does.
    pub fn use_rules(&self, rules: RuleSet) {
        self.engine.swap_rules(rules);
    }
}

impl Env {
    /// Delivers notifications with these settings at the end of each pass.
    pub fn deliver_with(&mut self, settings: casewarden::mail::MailSettings) {
        let mailer = casewarden::mail::Mailer::new(&settings).expect("mailer");
        self.engine = self.engine.clone().with_mailer(mailer, settings);
    }
}
