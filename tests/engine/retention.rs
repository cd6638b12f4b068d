//! Retention (rules/retention.toml): a closed case past its retention date is anonymised (or
//! deleted) by the pass and then holds none of its personal data in any table or file; a case
//! not yet due is untouched; `plan` shows what the next pass would do; `check` refuses a bad
//! file.

use casewarden::db::sql;
use casewarden::mail::MailSettings;
use casewarden::mail::settings::TransportKind;
use casewarden::rules::{Limits, RuleSet};
use serde_json::json;

use crate::erasure::{
    JANE, every_file, every_value, jane_and_her_cases, rules_with_a_personal_attribute,
};
use crate::helpers::{Env, rules_with};
use crate::on_both_backends;

/// The label (`retention.toml:LINE`) of the shipped file's `n`th rule.
fn shipped_rule(n: usize) -> String {
    let text = std::fs::read_to_string(crate::common::repo_path("rules/retention.toml")).unwrap();
    let line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == "[[rule]]")
        .nth(n)
        .unwrap()
        .0;
    format!("retention.toml:{}", line + 1)
}

async fn retention_of(
    env: &Env,
    case_ref: &str,
) -> (Option<String>, Option<String>, Option<String>) {
    let (rule, due, retained): (
        Option<String>,
        Option<chrono::DateTime<chrono::Utc>>,
        Option<chrono::DateTime<chrono::Utc>>,
    ) = sql("SELECT retention_rule, retention_due_at, retained_at FROM cases WHERE case_ref = $1")
        .bind(case_ref)
        .fetch_one(&env.db)
        .await
        .unwrap();
    (
        rule,
        due.map(|d| d.to_rfc3339()),
        retained.map(|d| d.to_rfc3339()),
    )
}

on_both_backends! {
    async fn a_case_past_its_retention_date_is_anonymised_by_the_pass_and_one_not_yet_due_is_untouched(env: Env) {
        let (_rules_dir, rules) = rules_with_a_personal_attribute();
        env.use_rules(rules);
        let mail = tempfile::tempdir().unwrap();
        let mut env = env;
        env.deliver_with(MailSettings { transport: TransportKind::File, dir: mail.path().to_path_buf(), ..MailSettings::default() });
        jane_and_her_cases(&env).await;
        for case in ["E-1", "HO-1"] {
            env.ok("2026-03-03T09:00:00Z", json!({"type": "close_case", "case_ref": case, "outcome": "withdrawn"})).await;
        }
        // Someone else's claim closes later: not yet due when Jane's are.
        env.ok("2027-06-01T09:00:00Z", json!({"type": "close_case", "case_ref": "E-2", "outcome": "withdrawn"})).await;
        let files = || every_file(env.packs.path()).into_iter().chain(every_file(mail.path())).collect::<Vec<_>>();
        assert!(files().iter().any(|(_, text)| text.contains("Jane Example")), "the pack and its e-mail name her");

        // The pass gave each closed case its rule and date: no duty on HO-1, no sale on E-1.
        assert_eq!(retention_of(&env, "E-1").await, (Some(shipped_rule(1)), Some("2028-03-03T09:00:00+00:00".into()), None));
        assert_eq!(retention_of(&env, "HO-1").await, (Some(shipped_rule(3)), Some("2028-03-03T09:00:00+00:00".into()), None));
        assert_eq!(retention_of(&env, "E-2").await, (Some(shipped_rule(1)), Some("2029-06-01T09:00:00+00:00".into()), None));
        // A day before the date, nothing is done.
        let before = env.tick("2028-03-02T09:00:00Z").await;
        assert_eq!((before.retained_anonymised, before.retained_deleted), (0, 0));
        let values = every_value(&env.db).await;
        for jane in JANE {
            assert!(values.iter().any(|(_, v)| v.contains(jane)), "{jane:?} is still held before the date");
        }

        // plan shows what the next pass would do, and writes nothing.
        let at = "2028-03-04T09:00:00Z".parse().unwrap();
        let planned = casewarden::engine::plan::plan(&env.engine, at).await.unwrap();
        assert_eq!(planned.outcome.retained_anonymised, 2);
        let planned_cases: Vec<_> = planned.events.iter().filter(|e| e.kind == "retention_applied").map(|e| e.case_ref.clone().unwrap()).collect();
        assert_eq!(planned_cases, ["E-1", "HO-1"]);
        assert!(planned.to_text().contains("retention_applied"), "{}", planned.to_text());
        assert_eq!(every_value(&env.db).await, values, "a plan writes nothing");
        assert!(files().iter().any(|(_, text)| text.contains("Jane Example")), "a plan removes no file");

        let done = env.tick("2028-03-04T09:00:00Z").await;
        assert_eq!((done.retained_anonymised, done.retained_deleted), (2, 0));
        for (place, value) in every_value(&env.db).await {
            for jane in JANE {
                assert!(!value.contains(jane), "{place} still holds {jane:?}: {value}");
            }
        }
        for (path, text) in files() {
            assert!(!text.contains("Jane"), "{} still holds her data", path.display());
        }
        // The shells stay for statistics.
        let case = env.case("E-1").await;
        assert_eq!((case.case.status.as_str(), case.case.outcome.as_deref()), ("closed", Some("withdrawn")));
        assert_eq!(case.case.attributes.0, json!({"qualifying_period_all_with_landlord": false}));
        assert_eq!(retention_of(&env, "E-1").await, (Some(shipped_rule(1)), None, Some("2028-03-04T09:00:00+00:00".into())));
        // The case not yet due is untouched, and so is its applicant.
        let other = env.case("E-2").await;
        assert_eq!(other.case.property_address.as_deref(), Some("1 Example Road, Leeds"));
        let (tenant2,): (String,) = sql("SELECT name FROM contacts WHERE ref = 'tenant2'").fetch_one(&env.db).await.unwrap();
        assert_eq!(tenant2, "Tenant 2");
        assert_eq!(retention_of(&env, "E-2").await.2, None);
        // The log says what was done, by reference only.
        let applied: Vec<_> = env.all_events().await.into_iter().filter(|e| e.kind == "retention_applied").collect();
        assert_eq!(applied.len(), 2);
        assert_eq!(applied[0].case_ref.as_deref(), Some("E-1"));
        assert_eq!(applied[0].data.0, json!({"rule": shipped_rule(1), "action": "anonymise",
            "closed_at": "2026-03-03T09:00:00Z", "due_at": "2028-03-03T09:00:00Z", "contacts_erased": []}));
        assert_eq!(applied[1].data.0["contacts_erased"], json!(["jane"]), "her last case retained, she goes too");
        // Done once: the next pass has nothing to do.
        let again = env.tick("2028-03-05T09:00:00Z").await;
        assert_eq!((again.retained_anonymised, again.retained_deleted), (0, 0));
        // A retained case takes no more notes or files, which would outlive its retention; one
        // not yet retained still does.
        let reason = env.rejected("2028-03-05T10:00:00Z", json!({"type": "add_note", "case_ref": "E-1", "by": "off1", "text": "late note"})).await;
        assert_eq!(reason, "case E-1's personal data was removed under the retention schedule on 2028-03-04; it takes no more notes or files");
        let reason = env.rejected("2028-03-05T10:00:00Z", json!({"type": "attach_file", "case_ref": "HO-1", "name": "late.pdf",
            "media_type": "application/pdf", "uri": "https://dms.example.org/late"})).await;
        assert!(reason.contains("it takes no more notes or files"), "{reason}");
        env.ok("2028-03-05T10:00:00Z", json!({"type": "add_note", "case_ref": "E-2", "by": "off1", "text": "still kept"})).await;
    }

    async fn delete_removes_the_rows_that_held_only_the_cases_content(env: Env) {
        let (_dir, rules) = rules_with(&[("retention.toml",
            "[[rule]]\nkind = \"housing_options\"\nworkflow = \"section_21\"\nkeep_for = \"30 days\"\nthen = \"delete\"\n")]);
        env.use_rules(rules);
        jane_and_her_cases(&env).await;
        env.ok("2026-03-03T09:00:00Z", json!({"type": "add_note", "case_ref": "HO-1", "by": "ho1", "text": "Jane moved in with her sister"})).await;
        env.ok("2026-03-03T09:00:00Z", json!({"type": "close_case", "case_ref": "HO-1", "outcome": "advice_given"})).await;
        let count = |table: &'static str| {
            let db = env.db.clone();
            async move {
                let (n,): (i64,) = casewarden::db::Sql::built(format!("SELECT COUNT(*) FROM {table}"), format!("SELECT COUNT(*) FROM {table}"))
                    .fetch_one(&db).await.unwrap();
                n
            }
        };
        assert_eq!(count("enquiries").await, 1);
        assert_eq!(env.tick("2026-04-01T09:00:00Z").await.retained_deleted, 0);
        assert_eq!(env.tick("2026-04-02T09:00:00Z").await.retained_deleted, 1);
        for table in ["enquiries", "packs", "pack_requests"] {
            assert_eq!(count(table).await, 0, "{table}");
        }
        let (notes,): (i64,) = sql("SELECT COUNT(*) FROM notes n JOIN cases c ON c.id = n.case_id WHERE c.case_ref = 'HO-1'").fetch_one(&env.db).await.unwrap();
        assert_eq!(notes, 0);
        // E-1, no rule for home buy here, keeps its note; Jane still has a case, so her record stays.
        let (notes,): (i64,) = sql("SELECT COUNT(*) FROM notes n JOIN cases c ON c.id = n.case_id WHERE c.case_ref = 'E-1'").fetch_one(&env.db).await.unwrap();
        assert_eq!(notes, 1);
        let (name,): (String,) = sql("SELECT name FROM contacts WHERE ref = 'jane'").fetch_one(&env.db).await.unwrap();
        assert_eq!(name, "Jane Example");
        let values = every_value(&env.db).await;
        assert!(!values.iter().any(|(_, v)| v.contains("moved in with her sister")));
        let event = env.all_events().await.into_iter().rfind(|e| e.kind == "retention_applied").unwrap();
        assert_eq!((event.case_ref.as_deref(), event.data.0["action"].as_str()), (Some("HO-1"), Some("delete")));
    }

    async fn a_changed_retention_file_gives_closed_cases_their_dates_afresh(env: Env) {
        jane_and_her_cases(&env).await;
        env.ok("2026-03-03T09:00:00Z", json!({"type": "close_case", "case_ref": "E-1", "outcome": "withdrawn"})).await;
        assert_eq!(retention_of(&env, "E-1").await.1.as_deref(), Some("2028-03-03T09:00:00+00:00"));
        let (_dir, rules) = rules_with(&[("retention.toml",
            "[[rule]]\nkind = \"home_buy\"\nscheme = \"right_to_buy\"\noutcome = \"withdrawn\"\nkeep_for = \"3 months\"\nthen = \"anonymise\"\n")]);
        env.use_rules(rules);
        // The shorter period has already run: the next pass gives the new date and applies it.
        let done = env.tick("2026-07-01T09:00:00Z").await;
        assert_eq!(done.retained_anonymised, 1);
        assert_eq!(retention_of(&env, "E-1").await, (Some("retention.toml:1".into()), None, Some("2026-07-01T09:00:00+00:00".into())));
        assert_eq!(env.case("E-1").await.case.property_address, None);
        // HO-1 and E-2 are open: no date.
        assert_eq!(retention_of(&env, "HO-1").await, (None, None, None));
    }
}

/// Loads the shipped rules with `retention` as rules/retention.toml; gives the problems.
fn problems_with(retention: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    crate::common::copy_tree(
        &crate::common::repo_path("rules"),
        &dir.path().join("rules"),
    );
    std::fs::write(dir.path().join("rules/retention.toml"), retention).unwrap();
    let loaded = RuleSet::load(
        &dir.path().join("rules"),
        &crate::common::repo_path("templates"),
        &Limits::default(),
    );
    loaded
        .unwrap_err()
        .0
        .iter()
        .map(|p| {
            format!(
                "{}:{}:{}: {}",
                p.file.file_name().unwrap().to_string_lossy(),
                p.line,
                p.column,
                p.message
            )
        })
        .collect()
}

#[test]
fn check_refuses_a_bad_retention_file_naming_file_and_line() {
    let problems = problems_with(
        "[[rule]]\nkind = \"home_buy\"\nscheme = \"right_to_rent\"\nkeep_for = \"6 weeks\"\nthen = \"shred\"\n\n\
         [[rule]]\nkind = \"tenancy\"\nkeep_for = \"1 year\"\nthen = \"delete\"\n\n\
         [[rule]]\nkind = \"housing_options\"\nscheme = \"right_to_buy\"\nkeep_for = \"1 year\"\nthen = \"delete\"\n\n\
         [[rule]]\nkind = \"home_buy\"\nkeep_for = \"2 years\"\nthen = \"anonymise\"\n\n\
         [[rule]]\nkind = \"home_buy\"\nkeep_for = \"3 years\"\nthen = \"anonymise\"\n",
    );
    assert_eq!(
        problems,
        [
            "retention.toml:3:10: unknown scheme \"right_to_rent\"",
            "retention.toml:4:12: keep_for \"6 weeks\" is not a period",
            "retention.toml:5:8: then \"shred\" is not an action",
            "retention.toml:8:8: unknown case kind \"tenancy\"",
            "retention.toml:14:10: a housing_options case has no scheme",
            "retention.toml:23:1: this rule matches the same cases as the rule at retention.toml:18",
        ]
    );
    let syntax = problems_with(
        "[[rule]]\nkind = \"home_buy\"\nkeep_for = \"6 years\"\nthen = \"anonymise\"\ncolour = \"red\"\n",
    );
    assert_eq!(syntax.len(), 1);
    assert!(syntax[0].starts_with("retention.toml:5:"), "{syntax:?}");
}
