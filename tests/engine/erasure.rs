//! Erasure of a contact (UK GDPR's right to erasure): none of their personal data is left in any
//! table or in any file casewarden wrote, other people's data is untouched, and a case still open
//! is refused unless forced.

use casewarden::db::{Db, Sql, sql};
use casewarden::mail::MailSettings;
use casewarden::mail::settings::TransportKind;
use casewarden::privacy::EraseError;
use serde_json::{Value, json};

use crate::helpers::{Env, rtb_claim, rules_with};
use crate::on_both_backends;

/// Every value of every column of every table, as text, with where it is.
pub(crate) async fn every_value(db: &Db) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match db {
        Db::Sqlite(_) => {
            let tables: Vec<(String,)> = sql(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(db)
            .await
            .unwrap();
            for (table,) in tables {
                let columns: Vec<(String,)> = sql("SELECT name FROM pragma_table_info($1)")
                    .bind(&table)
                    .fetch_all(db)
                    .await
                    .unwrap();
                for (column,) in columns {
                    // As bytes: some columns hold binary (checksums, hashes).
                    let text = format!("SELECT CAST(\"{column}\" AS BLOB) FROM \"{table}\"");
                    let values: Vec<(Option<Vec<u8>>,)> =
                        Sql::built(text.clone(), text).fetch_all(db).await.unwrap();
                    out.extend(values.into_iter().filter_map(|(v,)| v).map(|v| {
                        (
                            format!("{table}.{column}"),
                            String::from_utf8_lossy(&v).into_owned(),
                        )
                    }));
                }
            }
        }
        _ => {
            let tables: Vec<(String,)> = sql(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            )
            .fetch_all(db).await.unwrap();
            for (table,) in tables {
                let text = format!("SELECT CAST(t AS TEXT) FROM \"{table}\" t");
                let rows: Vec<(String,)> =
                    Sql::built(text.clone(), text).fetch_all(db).await.unwrap();
                out.extend(rows.into_iter().map(|(v,)| (table.clone(), v)));
            }
        }
    }
    out
}

/// Every file under `dir`, with its text.
pub(crate) fn every_file(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(every_file(&path));
        } else {
            out.push((
                path.clone(),
                String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned(),
            ));
        }
    }
    out
}

/// The shipped rules, with the Right to Buy England definition marking one attribute personal.
pub(crate) fn rules_with_a_personal_attribute() -> (tempfile::TempDir, casewarden::rules::RuleSet) {
    let path = "definitions/home_buy/right_to_buy-england.toml";
    let shipped = std::fs::read_to_string(crate::common::repo_path("rules").join(path)).unwrap();
    let marked = shipped.replacen(
        "team_role = \"home_ownership\"",
        "team_role = \"home_ownership\"\npersonal_attributes = [\"date_of_birth\"]",
        1,
    );
    assert_ne!(marked, shipped);
    rules_with(&[(path, &marked)])
}

/// What Jane Example gave casewarden, directly or through her cases.
pub(crate) const JANE: [&str; 12] = [
    "Jane Example",
    "jane@example.net",
    "07700 900123",
    "7 Erasure Street, Leeds",
    "The Example household",
    "7 Erasure Street, Leeds LS1 1AA",
    "1961-04-01",
    "Jane rang about her valuation",
    "Jane is in hospital",
    "Jane has no other landlords",
    "Jane found the tenancy file",
    "Jane to ask her sister about a room",
];

/// Erases a contact through the test's engine: its rules, pack and mail directories.
pub(crate) async fn erase(
    env: &Env,
    contact: &str,
    why: (&str, bool),
    at: (chrono::DateTime<chrono::Utc>, &str),
) -> Result<casewarden::privacy::Erasure, casewarden::privacy::EraseError> {
    let places = casewarden::privacy::FilePlaces {
        packs: env.engine.packs_dir(),
        mail: env.engine.mail_dir(),
    };
    casewarden::privacy::erase_contact(&env.db, &env.engine.rules(), contact, why, places, at).await
}

/// Why Jane's prevention duty ended, as her officer recorded it.
pub(crate) const JANE_DUTY_END: &str = "Jane's tenancy ended early";

/// Records that Jane's prevention duty started and ended (a duty changes which retention rule
/// applies, so it is not part of her cases' common story).
pub(crate) async fn record_janes_duty(env: &Env) {
    env.ok("2026-03-02T09:55:00Z", json!({"type": "record_duty", "case_ref": "HO-1", "duty": "prevention",
        "start_date": "2026-03-02", "end_date": "2026-03-02", "end_reason": JANE_DUTY_END, "by": "ho1"})).await;
}

/// Jane's cases, with the rules that mark her date of birth personal and mail written to files:
/// the engine, and the directories the rules and the mail are in.
pub(crate) async fn jane_on_record(env: Env) -> (Env, tempfile::TempDir, tempfile::TempDir) {
    let (rules_dir, rules) = rules_with_a_personal_attribute();
    env.use_rules(rules);
    let mail = tempfile::tempdir().unwrap();
    let mut env = env;
    env.deliver_with(MailSettings {
        transport: TransportKind::File,
        dir: mail.path().to_path_buf(),
        ..MailSettings::default()
    });
    jane_and_her_cases(&env).await;
    (env, rules_dir, mail)
}

pub(crate) async fn jane_and_her_cases(env: &Env) {
    crate::housing::seed(env).await;
    env.ok("2026-03-02T08:00:00Z", json!({"type": "upsert_contact", "ref": "jane", "name": JANE[0], "email": JANE[1], "phone": JANE[2], "address": JANE[3]})).await;
    env.ok("2026-03-02T08:00:00Z", json!({"type": "upsert_contact_group", "ref": "jane-household", "name": JANE[4], "members": ["jane"]})).await;
    let mut claim = rtb_claim("E-1", "jane", "freehold", "2026-03-02");
    claim["property"]["address"] = json!(JANE[5]);
    claim["attributes"]["date_of_birth"] = json!(JANE[6]);
    env.ok("2026-03-02T09:00:00Z", claim).await;
    env.ok(
        "2026-03-02T09:10:00Z",
        json!({"type": "add_note", "case_ref": "E-1", "by": "off1", "text": JANE[7]}),
    )
    .await;
    env.ok(
        "2026-03-02T09:20:00Z",
        json!({"type": "hold_task", "case_ref": "E-1", "task": "check_signatories",
        "until": "2026-03-09T09:00:00Z", "reason": JANE[8]}),
    )
    .await;
    env.ok("2026-03-02T09:30:00Z", json!({"type": "create_case", "case_ref": "HO-1", "kind": "housing_options", "workflow": "section_21",
        "country": "england", "applicant": "jane", "received_at": "2026-03-02T09:30:00Z"})).await;
    env.ok("2026-03-02T09:40:00Z", json!({"type": "submit_enquiry", "case_ref": "HO-1", "by": "ho1", "answers": {
        "safe_place_tonight": true, "has_section_21_notice": true, "notice_served_date": "2026-02-20", "notice_expiry_date": "2026-04-24",
        "court_papers": "none", "deposit": "not_protected", "household": "family_with_children", "monthly_rent": 950, "rent_arrears": 0,
        "income_sources": ["employment"], "support_needs": ["none"], "contact_by_email_ok": true}})).await;
    env.ok(
        "2026-03-02T09:45:00Z",
        json!({"type": "skip_task", "case_ref": "E-1", "task": "request_previous_landlord_evidence",
        "by": "off1", "reason": JANE[9]}),
    )
    .await;
    env.ok("2026-03-02T09:50:00Z", json!({"type": "update_case", "case_ref": "E-1", "attributes": {"qualifying_period_all_with_landlord": false},
        "reason": JANE[10], "by": "off1"})).await;
    env.ok(
        "2026-03-02T09:56:00Z",
        json!({"type": "record_plan_step", "case_ref": "HO-1", "step_ref": "S1", "for": "applicant",
        "step": JANE[11], "agreed_on": "2026-03-02", "by": "ho1"}),
    )
    .await;
    env.ok(
        "2026-03-02T10:00:00Z",
        json!({"type": "render_pack", "case_ref": "HO-1", "by": "ho1"}),
    )
    .await;
    // Someone else's case, which erasure must leave alone.
    env.ok(
        "2026-03-02T10:05:00Z",
        rtb_claim("E-2", "tenant2", "freehold", "2026-03-02"),
    )
    .await;
}

on_both_backends! {
    async fn erasing_a_contact_leaves_none_of_their_data_in_any_table_or_file(env: Env) {
        let (env, _rules_dir, mail) = jane_on_record(env).await;
        record_janes_duty(&env).await;
        let files = || every_file(env.packs.path()).into_iter().chain(every_file(mail.path())).collect::<Vec<_>>();
        let before = files();
        assert!(before.iter().any(|(_, text)| text.contains("Jane Example")), "the pack and its e-mail name her: {before:?}");
        let values = every_value(&env.db).await;
        for jane in JANE.into_iter().chain([JANE_DUTY_END]) {
            assert!(values.iter().any(|(_, v)| v.contains(jane)), "{jane:?} is held before the erasure");
        }

        // Her cases are open: refused, naming them, and nothing changes.
        let now = "2026-03-03T09:00:00Z".parse().unwrap();
        let refused = erase(&env, "jane", ("SAR-2026-17", false), (now, "operator")).await.unwrap_err();
        assert!(matches!(&refused, EraseError::OpenCases { cases, .. } if cases == &["E-1", "HO-1"]), "{refused}");
        assert!(refused.to_string().contains("E-1, HO-1"), "{refused}");
        assert_eq!(every_value(&env.db).await.len(), values.len());
        assert!(matches!(erase(&env, "nobody", ("x", true), (now, "operator")).await, Err(EraseError::Unknown(_))));
        assert!(matches!(erase(&env, "jane", ("  ", true), (now, "operator")).await, Err(EraseError::NoReason)));

        for case in ["E-1", "HO-1"] {
            env.ok("2026-03-03T09:00:00Z", json!({"type": "close_case", "case_ref": case, "outcome": "withdrawn"})).await;
        }
        let erased = erase(&env, "jane", ("SAR-2026-17", false), (now, "operator")).await.unwrap();
        assert_eq!(erased.cases, ["E-1", "HO-1"]);
        assert_eq!(erased.groups_emptied, ["jane-household"]);
        assert!(erased.files_removed.len() >= 3, "two pack files and the e-mail: {:?}", erased.files_removed);

        // None of her data anywhere casewarden keeps it.
        for (place, value) in every_value(&env.db).await {
            for jane in JANE.into_iter().chain([JANE_DUTY_END]) {
                assert!(!value.contains(jane), "{place} still holds {jane:?}: {value}");
            }
        }
        for (path, text) in files() {
            assert!(!text.contains("Jane"), "{} still holds her data", path.display());
        }
        let (answers,): (sqlx::types::Json<Value>,) = sql("SELECT answers FROM enquiries").fetch_one(&env.db).await.unwrap();
        assert_eq!(answers.0, json!({}));
        // The shells stay for statistics: references, dates, decisions, the other attributes.
        let case = env.case("E-1").await;
        assert_eq!((case.case.status.as_str(), case.case.outcome.as_deref()), ("closed", Some("withdrawn")));
        assert_eq!(case.case.attributes.0, json!({"qualifying_period_all_with_landlord": false}));
        assert_eq!(case.case.applicant_contact.as_deref(), Some("jane"));
        // Someone else's data is untouched.
        let other = env.case("E-2").await;
        assert_eq!(other.case.property_address.as_deref(), Some("1 Example Road, Leeds"));
        let (tenant2,): (String,) = sql("SELECT name FROM contacts WHERE ref = 'tenant2'").fetch_one(&env.db).await.unwrap();
        assert_eq!(tenant2, "Tenant 2");
        // The log says it happened, by reference only; the reason is kept with the erasure.
        let event = env.all_events().await.into_iter().rfind(|e| e.kind == "contact_erased").unwrap();
        assert_eq!(event.data.0, json!({"contact": "jane", "cases": ["E-1", "HO-1"], "groups_emptied": ["jane-household"]}));
        let (reason,): (String,) = sql("SELECT reason FROM erasures WHERE contact_ref = 'jane'").fetch_one(&env.db).await.unwrap();
        assert_eq!(reason, "SAR-2026-17");
    }
}
