//! Minimal notifications: officers' notifications carry the case's reference, task and dates,
//! not the applicant's name, address or answers; a personal field only where the definition
//! allows it and a template reads it; the domestic abuse workflow's never.

use casewarden::db::sql;
use casewarden::mail::MailSettings;
use casewarden::mail::settings::TransportKind;
use serde_json::{Value, json};

use crate::common::{copy_tree, repo_path};
use crate::helpers::{Env, rtb_claim};
use crate::on_both_backends;

/// What Jane Example gave casewarden: her name, contact details, her home's address, her date of
/// birth (an attribute the definition marks personal).
const JANE: [&str; 6] = [
    "Jane Example",
    "jane@example.net",
    "07700 900123",
    "9 Contact Road, Leeds",
    "7 Minimal Street, Leeds LS1 1AA",
    "1961-04-01",
];

/// The shipped rules and templates, with `edit` applied to each definition file's text and
/// `templates` files replaced.
fn rules_where(
    edit: impl Fn(&str, &str) -> String,
    templates: &[(&str, &str)],
) -> (tempfile::TempDir, casewarden::rules::RuleSet) {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo_path("rules"), &dir.path().join("rules"));
    copy_tree(&repo_path("templates"), &dir.path().join("templates"));
    for kind in ["home_buy", "housing_options"] {
        let defs = dir.path().join("rules/definitions").join(kind);
        for entry in std::fs::read_dir(&defs).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            std::fs::write(&path, edit(&name, &text)).unwrap();
        }
    }
    for (name, text) in templates {
        std::fs::write(dir.path().join("templates").join(name), text).unwrap();
    }
    let rules = casewarden::rules::RuleSet::load(
        &dir.path().join("rules"),
        &dir.path().join("templates"),
        &casewarden::rules::Limits::default(),
    )
    .expect("the edited rules load");
    (dir, rules)
}

/// Adds `lines` after a definition's `team_role`.
fn after_team_role(text: &str, lines: &str) -> String {
    let at = text.find("\nteam_role = ").expect("a team_role") + 1;
    let end = at + text[at..].find('\n').unwrap();
    format!("{}\n{lines}{}", &text[..end], &text[end..])
}

async fn jane_claims(env: &Env, case: Value) {
    crate::housing::seed(env).await;
    env.ok("2026-03-02T08:00:00Z", json!({"type": "upsert_contact", "ref": "jane", "name": JANE[0], "email": JANE[1], "phone": JANE[2], "address": JANE[3]})).await;
    env.ok("2026-03-02T09:00:00Z", case).await;
}

fn rtb_for_jane() -> Value {
    let mut claim = rtb_claim("E-1", "jane", "freehold", "2026-03-02");
    claim["property"]["address"] = json!(JANE[4]);
    claim["attributes"]["date_of_birth"] = json!(JANE[5]);
    claim
}

/// Every officers' notification's template and facts.
async fn officers_notifications(env: &Env) -> Vec<(String, Value)> {
    let rows: Vec<(String, sqlx::types::Json<Value>)> =
        sql("SELECT template, facts FROM outbox WHERE template <> 'housing_pack' ORDER BY id")
            .fetch_all(&env.db)
            .await
            .unwrap();
    rows.into_iter().map(|(t, f)| (t, f.0)).collect()
}

/// The text of every `.eml` file under `dir`.
fn emails(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| String::from_utf8_lossy(&std::fs::read(e.unwrap().path()).unwrap()).into_owned())
        .collect()
}

/// The engine on these rules, with mail written to files: the engine, and the directories the
/// rules and the mail are in.
fn with_mail(
    env: Env,
    (dir, rules): (tempfile::TempDir, casewarden::rules::RuleSet),
) -> (Env, tempfile::TempDir, tempfile::TempDir) {
    env.use_rules(rules);
    let mut env = env;
    let mail = file_mail(&mut env);
    (env, dir, mail)
}

fn file_mail(env: &mut Env) -> tempfile::TempDir {
    let mail = tempfile::tempdir().unwrap();
    env.deliver_with(MailSettings {
        transport: TransportKind::File,
        dir: mail.path().to_path_buf(),
        ..MailSettings::default()
    });
    mail
}

on_both_backends! {
    async fn an_officers_sla_notification_holds_none_of_the_applicants_personal_data(env: Env) {
        let (env, _dir, mail) = with_mail(env, rules_where(
            |name, text| match name {
                "right_to_buy-england" => after_team_role(text, "personal_attributes = [\"date_of_birth\"]"),
                _ => text.to_string(),
            },
            &[],
        ));
        jane_claims(&env, rtb_for_jane()).await;
        env.tick("2026-06-01T09:00:00Z").await;

        let sent = officers_notifications(&env).await;
        assert!(sent.iter().any(|(t, _)| t == "sla_exceeded"), "{sent:?}");
        for (template, facts) in &sent {
            let text = facts.to_string();
            for jane in JANE {
                assert!(!text.contains(jane), "{template}'s facts hold {jane:?}: {text}");
            }
            assert!(facts.get("property").is_none(), "{text}");
            // What is not personal stays: the reference, the other attributes.
            assert_eq!(facts["case"]["case_ref"], "E-1");
            assert_eq!(facts["case"]["attributes"], json!({"qualifying_period_all_with_landlord": true}), "{template}");
        }
        let emails = emails(mail.path());
        assert!(emails.iter().any(|e| e.contains("E-1")), "{emails:?}");
        for email in &emails {
            for jane in JANE {
                assert!(!email.contains(jane), "an e-mail holds {jane:?}: {email}");
            }
        }
        // The case itself still holds them: only the notifications go without.
        let case = env.case("E-1").await;
        assert_eq!(case.case.property_address.as_deref(), Some(JANE[4]));
        assert_eq!(case.case.attributes.0["date_of_birth"], JANE[5]);
    }

    async fn a_definition_that_allows_a_personal_field_gets_it_in_its_officers_notifications(env: Env) {
        // Every definition allows the property's address (the domestic abuse one stops being
        // sensitive, which check would otherwise refuse), Right to Buy England its date of birth.
        let (env, _dir, mail) = with_mail(env, rules_where(
            |name, text| {
                let text = text.replace("sensitive = true\n", "");
                match name {
                    "right_to_buy-england" => after_team_role(&text, "personal_attributes = [\"date_of_birth\"]\nnotify_personal = [\"property.address\", \"case.attributes.date_of_birth\"]"),
                    _ => after_team_role(&text, "notify_personal = [\"property.address\"]"),
                }
            },
            &[("sla_exceeded.txt.j2", "Case {{ case.case_ref }} at {{ property.address }}, born {{ case.attributes.date_of_birth | default(\"unknown\") }}, is overdue.\n")],
        ));
        jane_claims(&env, rtb_for_jane()).await;
        env.tick("2026-06-01T09:00:00Z").await;

        let sent = officers_notifications(&env).await;
        let (_, exceeded) = sent.iter().find(|(t, _)| t == "sla_exceeded").expect("an sla_exceeded notification");
        assert_eq!(exceeded["property"], json!({"address": JANE[4]}));
        assert_eq!(exceeded["case"]["attributes"]["date_of_birth"], JANE[5]);
        // Never her name or contact details: no definition can allow those.
        for jane in [JANE[0], JANE[1], JANE[2], JANE[3]] {
            assert!(!exceeded.to_string().contains(jane), "{exceeded}");
        }
        let emails = emails(mail.path());
        let line = format!("Case E-1 at {}, born {}, is overdue.", JANE[4], JANE[5]);
        assert!(emails.iter().any(|e| e.contains(&line)), "{emails:?}");
    }

    async fn the_domestic_abuse_workflows_notifications_never_carry_personal_data(env: Env) {
        let (env, _dir, mail) = with_mail(env, rules_where(
            |name, text| match name {
                "domestic_abuse-england" => after_team_role(text, "personal_attributes = [\"safe_contact_times\"]"),
                _ => text.to_string(),
            },
            &[],
        ));
        jane_claims(&env, json!({"type": "create_case", "case_ref": "HO-1", "kind": "housing_options", "workflow": "domestic_abuse",
            "country": "england", "applicant": "jane", "received_at": "2026-03-02T09:00:00Z",
            "property": {"ref": "P-9", "address": JANE[4], "tenure": "leasehold"}, "attributes": {"safe_contact_times": JANE[5], "referred_by": "police"}})).await;
        env.tick("2026-03-20T09:00:00Z").await;

        let sent = officers_notifications(&env).await;
        assert!(sent.iter().any(|(t, f)| t == "sla_exceeded" && f["case"]["case_ref"] == "HO-1"), "{sent:?}");
        for (template, facts) in &sent {
            let text = facts.to_string();
            for jane in JANE {
                assert!(!text.contains(jane), "{template}'s facts hold {jane:?}: {text}");
            }
            assert_eq!(facts["case"]["attributes"], json!({"referred_by": "police"}), "{template}");
        }
        for email in emails(mail.path()) {
            for jane in JANE {
                assert!(!email.contains(jane), "an e-mail holds {jane:?}: {email}");
            }
        }
    }
}
