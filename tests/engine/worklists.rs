//! Worklists that miss no case: a case with no task to work on (waiting for the CRM's choice of
//! next stage, or for a manual task to be activated) is on its owner's and roles' lists with
//! what it waits for, and working days left count from the day asked for.

use casewarden::db::sql;
use casewarden::report::{self, WaitingCase};
use chrono::NaiveDate;
use serde_json::json;

use crate::helpers::{Env, complete, rtb_claim, rules_with};
use crate::on_both_backends;

/// The shipped rules, with the Right to Buy tenant reply stage's default notice made mandatory:
/// once the reply task is done, the stage is left with one manual task nobody has activated.
fn rules_with_a_mandatory_manual_task() -> (tempfile::TempDir, casewarden::rules::RuleSet) {
    let path = "definitions/home_buy/right_to_buy-england.toml";
    let shipped = std::fs::read_to_string(crate::common::repo_path("rules").join(path)).unwrap();
    let from = "key = \"serve_s125e_default_notice\"\n  name = \"Serve the s.125E default notice (no reply received)\"\n  mandatory = false";
    assert!(
        shipped.contains(from),
        "the shipped definition changed: update this test"
    );
    rules_with(&[(path, &shipped.replace(from, &from.replace("false", "true")))])
}

/// Runs a claim through every task up to and including the tenant's reply.
async fn to_the_tenant_reply(env: &Env, case_ref: &str) {
    let mut claim = rtb_claim(case_ref, "tenant1", "freehold", "2026-01-05");
    claim["attributes"]["patch"] = json!("north");
    env.ok("2026-01-05T09:00:00Z", claim).await;
    let stages: [(&str, &[&str]); 5] = [
        (
            "2026-01-07T10:00:00Z",
            &[
                "check_property_address",
                "check_signatories",
                "check_previous_tenancies",
                "register_claim",
            ],
        ),
        (
            "2026-01-12T10:00:00Z",
            &[
                "check_exclusions",
                "confirm_qualifying_period",
                "issue_rtb2",
            ],
        ),
        (
            "2026-01-19T10:00:00Z",
            &["instruct_valuer", "inspect_property", "receive_valuation"],
        ),
        (
            "2026-02-02T10:00:00Z",
            &[
                "calculate_discount",
                "prepare_s125_offer",
                "serve_s125_offer",
            ],
        ),
        ("2026-03-02T10:00:00Z", &["await_tenant_reply"]),
    ];
    for (at, tasks) in stages {
        for task in tasks {
            env.ok(at, complete(case_ref, task, "off1")).await;
        }
    }
}

fn names(list: &Option<sqlx::types::Json<Vec<String>>>) -> Vec<String> {
    list.as_ref().map(|l| l.0.clone()).unwrap_or_default()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

on_both_backends! {
    async fn a_case_with_only_a_manual_task_left_and_then_a_decision_stays_on_its_owners_list(env: Env) {
        env.seed_organisation().await;
        let (_dir, rules) = rules_with_a_mandatory_manual_task();
        env.use_rules(rules);
        to_the_tenant_reply(&env, "RTB-W").await;
        assert_eq!(env.task_status("RTB-W", "serve_s125e_default_notice").await, "waiting");
        let today = day("2026-03-02");

        // No task to work on, yet the case is on its owner's list, and its roles', with what it
        // waits for.
        let tasks = report::tasks_as_of(&env.db, Some("off1"), None, today).await.unwrap();
        assert!(tasks.iter().all(|t| t.case_ref != "RTB-W"), "{tasks:?}");
        let mine = report::waiting_cases(&env.db, Some("off1"), None, today).await.unwrap();
        assert_eq!(mine.len(), 1, "{mine:?}");
        let waiting: &WaitingCase = &mine[0];
        assert_eq!((waiting.case_ref.as_str(), waiting.waits_for.as_str(), waiting.stage.as_str()), ("RTB-W", "activate_task", "tenant_reply"));
        assert_eq!(names(&waiting.tasks_to_activate), ["serve_s125e_default_notice"]);
        assert!(waiting.choices.is_none());
        assert_eq!(waiting.since.unwrap().to_rfc3339(), "2026-03-02T10:00:00+00:00");
        for role in ["home_ownership", "patch_north"] {
            let listed = report::waiting_cases(&env.db, None, Some(role), today).await.unwrap();
            assert_eq!(listed.iter().map(|c| c.case_ref.as_str()).collect::<Vec<_>>(), ["RTB-W"], "{role}");
        }
        assert!(report::waiting_cases(&env.db, Some("off2"), None, today).await.unwrap().is_empty());
        assert!(report::waiting_cases(&env.db, None, Some("legal"), today).await.unwrap().is_empty());
        let text = report::full_worklist_text(&report::full_worklist(&env.db, Some("off1"), None, "2026-03-02T12:00:00Z".parse().unwrap()).await.unwrap());
        assert!(text.contains("cases with no task to work on"), "{text}");
        assert!(text.contains("activate_task: serve_s125e_default_notice"), "{text}");

        // Activated, it is a task on the list again, and the case row goes.
        env.ok("2026-03-03T09:00:00Z", json!({"type": "activate_task", "case_ref": "RTB-W", "task": "serve_s125e_default_notice"})).await;
        assert!(report::waiting_cases(&env.db, Some("off1"), None, today).await.unwrap().is_empty());
        let tasks = report::tasks_as_of(&env.db, Some("off1"), None, today).await.unwrap();
        assert!(tasks.iter().any(|t| t.case_ref == "RTB-W" && t.task == "serve_s125e_default_notice"), "{tasks:?}");

        // Done, the stage ends and the case waits for the CRM to choose what follows.
        env.ok("2026-03-04T09:00:00Z", complete("RTB-W", "serve_s125e_default_notice", "off1")).await;
        assert_eq!(env.case("RTB-W").await.case.status.as_str(), "awaiting_advance");
        let mine = report::waiting_cases(&env.db, Some("off1"), None, today).await.unwrap();
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!((mine[0].waits_for.as_str(), mine[0].stage.as_str()), ("advance_case", "tenant_reply"));
        assert_eq!(names(&mine[0].choices), ["offer_accepted", "dv_determination"]);
        assert!(mine[0].tasks_to_activate.is_none());
        assert_eq!(mine[0].since.unwrap().to_rfc3339(), "2026-03-04T09:00:00+00:00");
        let text = report::full_worklist_text(&report::full_worklist(&env.db, None, Some("home_ownership"), "2026-03-04T12:00:00Z".parse().unwrap()).await.unwrap());
        assert!(text.contains("advance_case: choose one of offer_accepted, dv_determination"), "{text}");

        // Chosen, nothing waits.
        env.ok("2026-03-04T10:00:00Z", json!({"type": "advance_case", "case_ref": "RTB-W", "to_stage": "offer_accepted"})).await;
        assert!(report::waiting_cases(&env.db, Some("off1"), None, today).await.unwrap().is_empty());
        let (views,): (i64,) = sql("SELECT COUNT(*) FROM worklist_cases").fetch_one(&env.db).await.unwrap();
        assert_eq!(views, 0);
    }

    async fn working_days_left_count_from_the_day_asked_for_and_today_as_the_views_do(env: Env) {
        env.seed_organisation().await;
        env.ok("2026-01-05T09:00:00Z", rtb_claim("RTB-D", "tenant1", "freehold", "2026-01-05")).await;
        let (target_day,): (NaiveDate,) = sql(
            "SELECT t.target_day FROM tasks t JOIN cases c ON c.id = t.case_id \
             WHERE c.case_ref = 'RTB-D' AND t.task = 'check_signatories'",
        )
        .fetch_one(&env.db)
        .await
        .unwrap();
        let left_on = |today: NaiveDate| {
            let db = env.db.clone();
            async move {
                let rows = report::tasks_as_of(&db, None, None, today).await.unwrap();
                rows.into_iter().find(|r| r.case_ref == "RTB-D" && r.task == "check_signatories").unwrap().days_remaining
            }
        };
        assert_eq!(left_on(target_day).await, Some(0));
        // Two working days before the target, and the working day after it.
        let rules = env.engine.rules();
        let calendar = rules.calendars.get("england-and-wales").expect("the England and Wales calendar");
        let before = calendar.sub_working_days(target_day, 2);
        assert_eq!(left_on(before).await, Some(2), "from {before} to {target_day}");
        let after = calendar.add_working_days(target_day, 1);
        assert_eq!(left_on(after).await, Some(-1), "from {after} to {target_day}");
        // Against the views, which count from London's today, the default agrees.
        let by_view: Vec<(i64, Option<i64>)> = sql("SELECT task_id, days_remaining FROM worklist_tasks ORDER BY task_id").fetch_all(&env.db).await.unwrap();
        let by_default: Vec<(i64, Option<i64>)> = report::worklist(&env.db, None, None).await.unwrap().into_iter().map(|r| (r.task_id, r.days_remaining)).collect();
        assert_eq!(by_default, by_view);
    }
}
