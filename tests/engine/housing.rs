//! Housing options cases: a section 21 enquiry from launch through its parallel tasks, with its
//! answers checked per question, its advice chosen and explained, its personalised housing pack
//! rendered, attached and sent, and its target date following its tasks along the longest path.

use casewarden::db::sql;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use casewarden::engine::pack_files::FileState;

use crate::helpers::{Env, complete};
use crate::on_both_backends;

impl Env {
    /// Submits one command and runs a pass.
    async fn tick_with(&self, command: Value, now: &str) -> casewarden::engine::PassOutcome {
        self.submit(&[command]).await;
        self.tick(now).await
    }
}

/// The housing options team and an applicant.
pub(crate) async fn seed(env: &Env) {
    env.seed_organisation().await;
    env.ok(
        "2026-03-02T08:00:00Z",
        json!({"type": "upsert_role", "ref": "housing_options", "name": "Housing options team"}),
    )
    .await;
    env.ok("2026-03-02T08:00:00Z", json!({"type": "upsert_user", "ref": "ho1", "name": "Hana Options", "email": "hana@example.org",
        "line_manager": "mgr1", "roles": ["housing_options"]}))
        .await;
}

pub(crate) fn launch(case_ref: &str, workflow: &str) -> Value {
    json!({"type": "create_case", "case_ref": case_ref, "kind": "housing_options", "workflow": workflow,
           "country": "england", "applicant": "tenant1", "received_at": "2026-03-02T09:30:00Z"})
}

async fn target(env: &Env, case_ref: &str) -> (String, Vec<String>) {
    let case = env.case(case_ref).await;
    let h = case
        .housing
        .expect("a housing options case reports its target");
    (
        case.case
            .target_at
            .map(|t| t.to_rfc3339())
            .unwrap_or_default(),
        h.target_path,
    )
}

pub(crate) fn valid_answers() -> Value {
    json!({
        "safe_place_tonight": true, "has_section_21_notice": true,
        "notice_served_date": "2026-02-20", "notice_expiry_date": "2026-04-24",
        "court_papers": "none", "deposit": "not_protected", "household": "family_with_children",
        "monthly_rent": 950, "rent_arrears": 0, "income_sources": ["employment", "universal_credit"],
        "support_needs": ["none"], "contact_by_email_ok": true
    })
}

on_both_backends! {
    async fn a_section_21_enquiry_runs_from_launch_to_its_housing_pack(env: Env) {
        seed(&env).await;
        env.ok("2026-03-02T10:00:00Z", launch("HO-1", "section_21")).await;
        let case = env.case("HO-1").await;
        assert_eq!(case.case.workflow.as_deref(), Some("section_21"));
        assert_eq!(case.case.owner.as_deref(), Some("ho1"), "allocated to the housing options team");
        assert_eq!(env.task_status("HO-1", "triage").await, "active");
        assert_eq!(env.task_status("HO-1", "assessment").await, "waiting");
        // The longest path: triage (1 wd), assessment (10 wd), the prevention duty (56 days),
        // closing the duty (5 wd). Clocks keep London time, so May's 10:00 BST is 09:00 UTC.
        let (launched, path) = target(&env, "HO-1").await;
        assert_eq!(path, ["triage", "assessment", "prevention_duty", "close_duty"]);
        assert_eq!(launched, "2026-05-19T09:00:00+00:00");

        // Triage done the same afternoon: four tasks start in parallel and the target comes
        // forward with them.
        env.ok("2026-03-02T15:00:00Z", complete("HO-1", "triage", "ho1")).await;
        for t in ["check_notice_validity", "contact_landlord", "affordability_check", "assessment"] {
            assert_eq!(env.task_status("HO-1", t).await, "active", "{t}");
        }
        let (after_triage, _) = target(&env, "HO-1").await;
        assert_eq!(after_triage, "2026-05-18T14:00:00+00:00");

        // Holding the assessment moves the target on by the working days held...
        env.ok("2026-03-04T10:00:00Z", json!({"type": "hold_task", "case_ref": "HO-1", "task": "assessment",
            "until": "2026-03-09T10:00:00Z", "reason": "waiting for the tenancy agreement"})).await;
        let (held, _) = target(&env, "HO-1").await;
        assert_eq!(held, "2026-05-21T14:00:00+00:00");
        // ...and the daemon's release at the release date keeps it there.
        assert_eq!(env.tick("2026-03-09T10:00:00Z").await.holds_released, 1);
        assert_eq!(target(&env, "HO-1").await.0, held);

        // The assessment done early brings the target forward: the prevention duty starts now.
        env.ok("2026-03-10T11:00:00Z", complete("HO-1", "assessment", "ho1")).await;
        assert_eq!(env.task_status("HO-1", "prevention_duty").await, "active");
        assert_eq!(env.task_status("HO-1", "agree_personalised_housing_plan").await, "active");
        let (assessed, path) = target(&env, "HO-1").await;
        assert_eq!(assessed, "2026-05-12T10:00:00+00:00");
        assert_eq!(path, ["triage", "assessment", "prevention_duty", "close_duty"]);

        // The plan agreed: the pack task starts, but there are no answers yet, so it waits.
        env.ok("2026-03-11T09:00:00Z", complete("HO-1", "agree_personalised_housing_plan", "ho1")).await;
        assert_eq!(env.task_status("HO-1", "issue_housing_pack").await, "active");
        assert!(env.event_kinds("HO-1").await.contains(&"pack_waiting".to_string()));

        // Bad answers are refused, each with its reason, and change nothing.
        let mut bad = valid_answers();
        bad["household"] = json!("hotel");
        bad["notice_expiry_date"] = json!("31/04/2026");
        bad["monthly_rent"] = json!("nine hundred");
        bad["pets"] = json!(true);
        bad.as_object_mut().unwrap().remove("deposit");
        let reason = env.rejected("2026-03-11T10:00:00Z", json!({"type": "submit_enquiry", "case_ref": "HO-1", "answers": bad, "by": "ho1"})).await;
        for expected in [
            "pets: not a question of form private_renting",
            "notice_expiry_date: \"31/04/2026\" is not a date (YYYY-MM-DD)",
            "deposit: required",
            "household: \"hotel\" is not one of: single, couple, family_with_children, pregnant",
            "monthly_rent: expected a number, got \"nine hundred\"",
        ] {
            assert!(reason.contains(expected), "{expected:?} not in {reason}");
        }
        assert!(env.case("HO-1").await.housing.unwrap().enquiry.is_none());
        assert_eq!(env.task_status("HO-1", "issue_housing_pack").await, "active");

        // Good answers: the same pass makes the pack.
        env.ok("2026-03-11T10:05:00Z", json!({"type": "submit_enquiry", "case_ref": "HO-1", "answers": valid_answers(), "by": "ho1"})).await;
        assert_eq!(env.task_status("HO-1", "issue_housing_pack").await, "completed");
        assert_eq!(env.task_status("HO-1", "review_plan").await, "active");
        let case = env.case("HO-1").await;
        let housing = case.housing.as_ref().unwrap();
        assert_eq!(housing.packs.len(), 1);
        let rendered = case.events.iter().find(|e| e.kind == "pack_rendered").expect("pack_rendered");
        let chosen: Vec<String> = serde_json::from_value(rendered.data.0["statements"].clone()).unwrap();
        // Advice that fits these answers, with the reason for each choice and each omission.
        assert!(chosen.contains(&"s21_deposit_not_protected".to_string()), "{chosen:?}");
        assert!(!chosen.contains(&"s21_no_notice_yet".to_string()), "{chosen:?}");
        // The log says what was chosen; why, which quotes the answers, is kept with the pack.
        let logged = rendered.data.0["advice"].as_array().unwrap();
        assert!(logged.iter().all(|c| c.get("why").is_none() && c["failed"] == false), "{logged:?}");
        assert_eq!(logged.iter().filter(|c| c["chosen"] == true).count(), chosen.len());
        let advice = housing.packs[0].advice.0.as_array().unwrap();
        let why = |id: &str| advice.iter().find(|c| c["statement"] == id).unwrap()["why"].as_str().unwrap().to_string();
        assert!(why("s21_deposit_not_protected").contains("answers.deposit = \"not_protected\""), "{}", why("s21_deposit_not_protected"));
        assert!(why("s21_no_notice_yet").contains("is false"), "{}", why("s21_no_notice_yet"));
        // Two files, attached with their checksums, which match what is on disk.
        assert_eq!(case.attachments.len(), 2);
        for a in &case.attachments {
            let path = a.uri.strip_prefix("file://").unwrap();
            assert!(path.starts_with(env.packs.path().canonicalize().unwrap().to_str().unwrap()) || path.starts_with(env.packs.path().to_str().unwrap()), "{path}");
            let bytes = std::fs::read(path).unwrap();
            assert_eq!(a.sha256.as_deref(), Some(hex::encode(Sha256::digest(&bytes)).as_str()));
            assert_eq!(a.size, Some(bytes.len() as i64));
        }
        let text = std::fs::read_to_string(case.attachments.iter().find(|a| a.media_type == "text/plain").unwrap().uri.strip_prefix("file://").unwrap()).unwrap();
        assert!(text.contains("YOUR PERSONALISED HOUSING PACK"), "{text}");
        assert!(text.contains("Dear Tenant 1"), "{text}");
        let html = std::fs::read_to_string(case.attachments.iter().find(|a| a.media_type == "text/html").unwrap().uri.strip_prefix("file://").unwrap()).unwrap();
        assert!(html.contains("<h1>Your personalised housing pack</h1>"), "{html}");
        // Sent to the applicant, and the pack task completed by casewarden.
        let mail: Vec<(String, Option<String>)> = sql("SELECT template, recipient_ref FROM outbox WHERE template = 'housing_pack'")
            .fetch_all(&env.db).await.unwrap();
        assert_eq!(mail, vec![("housing_pack".to_string(), Some("tenant1".to_string()))]);
        assert!(housing.packs[0].sent_to_applicant);

        // Amended answers: the log names the questions that changed, the answers stay in the
        // enquiry; render_pack makes version 2.
        env.ok("2026-03-12T09:00:00Z", json!({"type": "submit_enquiry", "case_ref": "HO-1",
            "answers": {"deposit": "protected", "rent_arrears": 1200}})).await;
        env.ok("2026-03-12T09:05:00Z", json!({"type": "render_pack", "case_ref": "HO-1", "by": "ho1"})).await;
        let case = env.case("HO-1").await;
        let housing = case.housing.as_ref().unwrap();
        assert_eq!(housing.enquiry.as_ref().unwrap().submissions, 2);
        assert_eq!(housing.packs.len(), 2);
        let second = case.events.iter().filter(|e| e.kind == "enquiry_submitted").nth(1).unwrap();
        assert_eq!(second.data.0["changed"], json!(["deposit", "rent_arrears"]));
        let answers = &housing.enquiry.as_ref().unwrap().answers.0;
        assert_eq!((&answers["deposit"], &answers["rent_arrears"]), (&json!("protected"), &json!(1200)));
        let v2: Vec<String> = serde_json::from_value(case.events.iter().rev().find(|e| e.kind == "pack_rendered").unwrap().data.0["statements"].clone()).unwrap();
        assert!(!v2.contains(&"s21_deposit_not_protected".to_string()), "{v2:?}");
        assert!(v2.contains(&"s21_rent_arrears".to_string()), "{v2:?}");

        // The applicant becomes homeless: the relief duty, activated, now sets the target.
        env.ok("2026-03-20T10:00:00Z", json!({"type": "activate_task", "case_ref": "HO-1", "task": "relief_duty"})).await;
        let (relief, path) = target(&env, "HO-1").await;
        assert_eq!(path, ["relief_duty", "close_duty"]);
        assert_eq!(relief, "2026-05-22T09:00:00+00:00");
        let moves: Vec<DateTime<Utc>> = env.case("HO-1").await.events.iter()
            .filter(|e| e.kind == "case_target_changed")
            .map(|e| serde_json::from_value(e.data.0["target_at"].clone()).unwrap())
            .collect();
        assert!(moves.len() >= 5, "every move is on record: {moves:?}");

        // Everything done: the case completes.
        for (at, t) in [("2026-03-23T10:00:00Z", "check_notice_validity"), ("2026-03-23T10:01:00Z", "contact_landlord"),
                        ("2026-03-23T10:02:00Z", "affordability_check"), ("2026-04-20T10:00:00Z", "review_plan"),
                        ("2026-04-28T10:00:00Z", "prevention_duty"), ("2026-05-05T10:00:00Z", "relief_duty")] {
            env.ok(at, complete("HO-1", t, "ho1")).await;
        }
        env.ok("2026-05-05T11:00:00Z", json!({"type": "skip_task", "case_ref": "HO-1", "task": "refer_debt_advice", "reason": "no debts"})).await;
        // The reason for skipping is kept on the task; the log says only that one was given.
        let case = env.case("HO-1").await;
        let skipped = case.events.iter().find(|e| e.kind == "task_skipped").unwrap();
        assert_eq!(skipped.data.0, json!({"stage": "casework", "task": "refer_debt_advice", "reason_given": true}));
        let debt = case.stages[0].tasks.iter().find(|t| t.task == "refer_debt_advice").unwrap();
        assert_eq!(debt.skip_reason.as_deref(), Some("no debts"));
        env.ok("2026-05-06T10:00:00Z", complete("HO-1", "close_duty", "ho1")).await;
        assert_eq!(env.case("HO-1").await.case.status.as_str(), "completed");
        // Its tasks were on the worklists with the case's target beside them while open.
    }

    async fn housing_options_tasks_are_on_the_worklists_with_the_case_target(env: Env) {
        seed(&env).await;
        env.ok("2026-03-02T10:00:00Z", launch("HO-2", "domestic_abuse")).await;
        let rows: Vec<(String, Option<String>, Option<DateTime<Utc>>)> = sql(
            "SELECT task, workflow, case_target_at FROM worklist_by_user WHERE user_ref = 'ho1' AND case_ref = 'HO-2'",
        )
        .fetch_all(&env.db)
        .await
        .unwrap();
        assert!(!rows.is_empty());
        let case = env.case("HO-2").await;
        for (task, workflow, target) in &rows {
            assert_eq!(workflow.as_deref(), Some("domestic_abuse"), "{task}");
            assert_eq!(*target, case.case.target_at, "{task}");
        }
        assert!(case.case.target_at.is_some());
        // A home buy command that names a workflow, and a housing options case without one, are
        // refused with the reason.
        let reason = env.rejected("2026-03-02T10:05:00Z", json!({"type": "create_case", "case_ref": "HO-3", "kind": "housing_options",
            "country": "england", "applicant": "tenant1", "received_at": "2026-03-02T09:30:00Z"})).await;
        assert!(reason.contains("missing field `workflow`"), "{reason}");
        let reason = env.rejected("2026-03-02T10:05:00Z", launch("HO-4", "rough_sleeping")).await;
        assert!(reason.contains("rough_sleeping is not available in england"), "{reason}");
        let reason = env.rejected("2026-03-02T10:06:00Z", json!({"type": "submit_enquiry", "case_ref": "HO-2", "answers": {"x": 1}})).await;
        assert!(reason.contains("x: not a question of form"), "{reason}");
    }

    async fn a_plan_renders_the_pack_the_next_pass_would_make_but_writes_no_file(env: Env) {
        seed(&env).await;
        env.ok("2026-03-02T10:00:00Z", launch("HO-5", "section_21")).await;
        let mut answers = valid_answers();
        answers["contact_by_email_ok"] = json!(false);
        env.ok("2026-03-02T10:05:00Z", json!({"type": "submit_enquiry", "case_ref": "HO-5", "answers": answers})).await;
        env.ok("2026-03-02T10:10:00Z", json!({"type": "render_pack", "case_ref": "HO-5"})).await;
        // render_pack was applied in that pass and the pack made in the same pass: ask again
        // and plan the pass that would make version 2.
        env.submit(&[json!({"type": "render_pack", "case_ref": "HO-5"})]).await;
        let files = || walk(env.packs.path());
        let before = files();
        let planned = casewarden::engine::plan::plan(&env.engine, chrono::DateTime::parse_from_rfc3339("2026-03-02T11:00:00Z").unwrap().into()).await.unwrap();
        assert_eq!(planned.outcome.packs_made, 1);
        assert!(planned.events.iter().any(|e| e.kind == "pack_rendered" && e.data.0["version"] == 2));
        assert_eq!(files(), before, "a plan writes no pack file");
        assert_eq!(env.tick("2026-03-02T11:00:00Z").await.packs_made, 1);
        assert_eq!(files().len(), before.len() + 2);
        // No consent to e-mail: neither version was sent, and the event says why.
        let case = env.case("HO-5").await;
        let rendered: Vec<_> = case.events.iter().filter(|e| e.kind == "pack_rendered").collect();
        assert_eq!(rendered.len(), 2);
        for e in rendered {
            assert_eq!(e.data.0["sent_to_applicant"], 0);
            assert!(e.data.0["not_sent"].as_str().unwrap().contains("contact_by_email_ok"), "{}", e.data.0);
        }
    }

    async fn a_pack_that_cannot_be_written_is_kept_and_tried_again(env: Env) {
        seed(&env).await;
        env.ok("2026-03-02T10:00:00Z", launch("HO-6", "section_21")).await;
        env.ok("2026-03-02T10:05:00Z", json!({"type": "submit_enquiry", "case_ref": "HO-6", "answers": valid_answers()})).await;
        // A file stands where the case's pack directory should be.
        let id = env.case("HO-6").await.case.id;
        let blocker = env.packs.path().join(format!("case-{id}"));
        std::fs::write(&blocker, "not a directory").unwrap();
        let outcome = env.tick_with(json!({"type": "render_pack", "case_ref": "HO-6"}), "2026-03-02T10:10:00Z").await;
        assert_eq!((outcome.packs_made, outcome.packs_failed), (0, 1));
        let failed = env.case("HO-6").await.events.into_iter().find(|e| e.kind == "pack_failed").unwrap();
        assert!(failed.data.0["error"].as_str().unwrap().starts_with("writing "), "{}", failed.data.0);
        assert_eq!(failed.data.0["retry_at"], json!("2026-03-02T10:25:00Z"));
        // Not before its retry time; then, with the way clear, the pack is made.
        assert_eq!(env.tick("2026-03-02T10:20:00Z").await.packs_failed, 0);
        std::fs::remove_file(&blocker).unwrap();
        assert_eq!(env.tick("2026-03-02T10:25:00Z").await.packs_made, 1);
        assert_eq!(env.case("HO-6").await.housing.unwrap().packs.len(), 1);
    }
}

/// Launches a case, answers its form and runs the pass that makes its first pack.
async fn pack_for(env: &Env, case_ref: &str, at: &str) {
    env.ok(at, launch(case_ref, "section_21")).await;
    env.ok(
        at,
        json!({"type": "submit_enquiry", "case_ref": case_ref, "answers": valid_answers()}),
    )
    .await;
    env.ok(at, json!({"type": "render_pack", "case_ref": case_ref}))
        .await;
}

/// A case's attachments: (path, what the report says of the file).
async fn pack_files(env: &Env, case_ref: &str) -> Vec<(std::path::PathBuf, Option<FileState>)> {
    env.case(case_ref)
        .await
        .attachments
        .iter()
        .map(|a| (a.uri.strip_prefix("file://").unwrap().into(), a.file))
        .collect()
}

on_both_backends! {
    async fn references_that_once_shared_a_pack_directory_each_keep_their_own_pack(env: Env) {
        seed(&env).await;
        // A/B and A_B were both written to A_B/; a and A are one name on a file system that
        // folds case.
        let refs = ["A/B", "A_B", "ho-a", "HO-A"];
        for r in refs {
            pack_for(&env, r, "2026-03-02T10:00:00Z").await;
        }
        let mut all = Vec::new();
        for r in refs {
            let files = pack_files(&env, r).await;
            assert_eq!(files.len(), 2, "{r}");
            let id = env.case(r).await.case.id;
            for (path, state) in files {
                assert_eq!(state, Some(FileState::Intact), "{r}: {}", path.display());
                // Personal data: only casewarden's user may read it, whatever the umask.
                use std::os::unix::fs::PermissionsExt;
                let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                assert_eq!(mode(path.parent().unwrap()), 0o700, "{}", path.display());
                assert!(path.parent().unwrap().ends_with(format!("case-{id}")), "{}", path.display());
                // Each file is its own case's pack.
                if path.extension().unwrap() == "txt" {
                    let text = std::fs::read_to_string(&path).unwrap();
                    assert!(text.contains(&format!("case {r} - ")), "{r}: {text}");
                }
                all.push(path.to_string_lossy().to_lowercase());
            }
        }
        let distinct: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), 8, "no two packs share a path, even with case folded: {all:?}");
    }

    async fn a_case_reference_that_could_name_a_path_or_hide_a_character_is_refused(env: Env) {
        seed(&env).await;
        let long = "R".repeat(300);
        for bad in ["..", "A/../B", "/etc", "A/", "A\u{0}B", "A\nB", long.as_str(), "RTB-1\u{200B}", "\u{FEFF}RTB-1", "RTB\u{202E}1"] {
            let reason = env.rejected("2026-03-02T10:00:00Z", launch(bad, "section_21")).await;
            assert!(reason.starts_with("create_case: case_ref "), "{bad:?}: {reason}");
            assert!(!reason.contains('\0') && !reason.contains('\n'), "{reason:?}");
        }
        let (cases,): (i64,) = sql("SELECT COUNT(*) FROM cases").fetch_one(&env.db).await.unwrap();
        assert_eq!(cases, 0);
    }

    async fn a_pack_is_never_written_over_a_file_casewarden_did_not_make(env: Env) {
        seed(&env).await;
        env.ok("2026-03-02T10:00:00Z", launch("HO-B", "section_21")).await;
        env.ok("2026-03-02T10:00:00Z", json!({"type": "submit_enquiry", "case_ref": "HO-B", "answers": valid_answers()})).await;
        // Another file already has this pack's name: someone else's (on a file system that folds
        // case, another name can be this one), or one left by an attempt killed before it
        // committed. It is left as it is, and the pack takes the next free name.
        let id = env.case("HO-B").await.case.id;
        let dir = env.packs.path().join(format!("case-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let theirs = dir.join(format!("case-{id}-housing-pack-v1.txt"));
        std::fs::write(&theirs, "another applicant's plan").unwrap();
        let outcome = env.tick_with(json!({"type": "render_pack", "case_ref": "HO-B"}), "2026-03-02T10:10:00Z").await;
        assert_eq!((outcome.packs_made, outcome.packs_failed), (1, 0));
        assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "another applicant's plan");
        let ours = [format!("case-{id}-housing-pack-v1-2.html"), format!("case-{id}-housing-pack-v1-2.txt")];
        let mut expected: Vec<_> = ours.iter().map(|n| dir.join(n)).collect();
        expected.push(theirs.clone());
        expected.sort();
        assert_eq!(walk(&dir), expected, "the half-made v1 HTML went, and v1-2 holds the pack");
        let files = pack_files(&env, "HO-B").await;
        assert_eq!(files.len(), 2);
        assert!(files.iter().all(|(p, s)| *s == Some(FileState::Intact) && p.to_string_lossy().contains("-v1-2.")), "{files:?}");
    }

    async fn a_pack_file_that_changed_after_it_was_made_is_reported_and_not_served(env: Env) {
        seed(&env).await;
        pack_for(&env, "HO-C", "2026-03-02T10:00:00Z").await;
        let files = pack_files(&env, "HO-C").await;
        let html = files.iter().find(|(p, _)| p.extension().unwrap() == "html").unwrap().0.clone();
        let txt = files.iter().find(|(p, _)| p.extension().unwrap() == "txt").unwrap().0.clone();
        // The same size, one letter different: only the checksum tells.
        let mut bytes = std::fs::read(&html).unwrap();
        let at = bytes.iter().position(|b| *b == b'h').unwrap();
        bytes[at] = b'H';
        std::fs::write(&html, &bytes).unwrap();
        std::fs::remove_file(&txt).unwrap();
        let report = env.case("HO-C").await;
        let state = |ext: &str| report.attachments.iter().find(|a| a.uri.ends_with(ext)).unwrap().file;
        assert_eq!(state(".html"), Some(FileState::Changed));
        assert_eq!(state(".txt"), Some(FileState::Missing));
        let text = report.to_text();
        assert!(text.contains("file changed since it was made: not to be served or sent"), "{text}");
        assert!(text.contains("file missing"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["attachments"][0]["file"], "changed");
    }
}

/// Every file under a directory.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}
