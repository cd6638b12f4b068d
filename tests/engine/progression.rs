//! Cases moving through their stages: allocation, stage entry, automatic and manual activation,
//! dependencies, ownership carried to each stage, branches, and passes that change nothing twice.

use casewarden::db::sql;
use serde_json::json;

use crate::helpers::{Env, complete, rtb_claim};
use crate::on_both_backends;

async fn complete_all(env: &Env, now: &str, case_ref: &str, tasks: &[&str], by: &str) {
    let ids = env
        .submit(
            &tasks
                .iter()
                .map(|t| complete(case_ref, t, by))
                .collect::<Vec<_>>(),
        )
        .await;
    env.tick(now).await;
    for (id, task) in ids.into_iter().zip(tasks) {
        let (status, reason) = env.inbox(id).await;
        assert_eq!(status, "accepted", "completing {task}: {reason:?}");
    }
}

/// Counts and states that a repeated pass must leave as they were.
async fn snapshot(env: &Env) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = sql(
        "SELECT 'task ' || CAST(id AS TEXT), status || ' ' || COALESCE(owner, '-') FROM tasks \
         UNION ALL SELECT 'stage ' || CAST(id AS TEXT), status || ' ' || COALESCE(owner, '-') FROM stages \
         UNION ALL SELECT 'case ' || case_ref, status || ' ' || allocation || ' ' || COALESCE(owner, '-') FROM cases \
         UNION ALL SELECT 'inbox ' || CAST(id AS TEXT), status FROM inbox \
         UNION ALL SELECT 'events', CAST(COUNT(*) AS TEXT) FROM events \
         UNION ALL SELECT 'outbox', CAST(COUNT(*) AS TEXT) FROM outbox",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    out.sort();
    out
}

on_both_backends! {
    async fn a_right_to_buy_case_goes_from_claim_to_completion(env: Env) {
        env.seed_organisation().await;
        let mut claim = rtb_claim("RTB-1", "tenant1", "freehold", "2026-01-05");
        claim["attributes"]["patch"] = json!("north");
        env.ok("2026-01-05T09:00:00Z", claim).await;

        // Created, allocated by the patch rule, first stage entered with its automatic tasks.
        let case = env.case("RTB-1").await;
        assert_eq!(case.case.owner.as_deref(), Some("off1"));
        assert_eq!(case.case.definition_id, "right_to_buy-england");
        let allocated = case.events.iter().find(|e| e.kind == "allocated").expect("allocated event");
        assert_eq!(allocated.data.0["rule"], "allocation_right_to_buy");
        assert!(allocated.data.0["reason"].as_str().unwrap().contains("patch north"), "{:?}", allocated.data);
        assert_eq!(env.open_stage("RTB-1").await.as_deref(), Some("application"));
        for t in ["check_property_address", "check_signatories", "check_previous_tenancies"] {
            assert_eq!(env.task_status("RTB-1", t).await, "active", "{t}");
        }
        assert_eq!(env.task_status("RTB-1", "register_claim").await, "waiting");
        assert_eq!(env.task_status("RTB-1", "request_previous_landlord_evidence").await, "waiting");
        let application = &case.stages[0];
        assert_eq!(application.stage.owner.as_deref(), Some("off1"));
        assert!(application.tasks.iter().all(|t| t.owner.as_deref() == Some("off1") && t.line_manager.as_deref() == Some("mgr1")));

        // A manual task is activated by hand; a dependent task waits for all it depends on.
        env.ok("2026-01-06T10:00:00Z", json!({"type": "activate_task", "case_ref": "RTB-1", "task": "request_previous_landlord_evidence"})).await;
        assert_eq!(env.task_status("RTB-1", "request_previous_landlord_evidence").await, "active");
        complete_all(&env, "2026-01-07T10:00:00Z", "RTB-1", &["check_property_address", "check_signatories"], "off1").await;
        assert_eq!(env.task_status("RTB-1", "register_claim").await, "waiting");
        complete_all(&env, "2026-01-08T10:00:00Z", "RTB-1", &["check_previous_tenancies"], "off1").await;
        assert_eq!(env.task_status("RTB-1", "register_claim").await, "active");

        // The stage completes on its last mandatory task; the optional one still open is cancelled.
        complete_all(&env, "2026-01-09T10:00:00Z", "RTB-1", &["register_claim"], "off1").await;
        assert_eq!(env.task_status("RTB-1", "request_previous_landlord_evidence").await, "cancelled");
        assert_eq!(env.open_stage("RTB-1").await.as_deref(), Some("eligibility"));

        complete_all(&env, "2026-01-12T10:00:00Z", "RTB-1", &["check_exclusions", "confirm_qualifying_period", "issue_rtb2"], "off2").await;
        complete_all(&env, "2026-01-19T10:00:00Z", "RTB-1", &["instruct_valuer", "inspect_property", "receive_valuation"], "off1").await;
        complete_all(&env, "2026-02-02T10:00:00Z", "RTB-1", &["calculate_discount", "prepare_s125_offer", "serve_s125_offer"], "off1").await;
        assert_eq!(env.open_stage("RTB-1").await.as_deref(), Some("tenant_reply"));

        // The tenant's reply stage has two possible successors: the CRM chooses.
        complete_all(&env, "2026-03-02T10:00:00Z", "RTB-1", &["await_tenant_reply"], "off1").await;
        let case = env.case("RTB-1").await;
        assert_eq!(case.case.status.as_str(), "awaiting_advance");
        assert_eq!(env.open_stage("RTB-1").await, None);
        let needed = case.events.iter().rfind(|e| e.kind == "advance_needed").unwrap();
        assert_eq!(needed.data.0["choices"], json!(["offer_accepted", "dv_determination"]));
        // The CRM sees the decision waiting on its own list.
        let waiting: Vec<(String, Option<String>, String, sqlx::types::Json<serde_json::Value>)> =
            sql("SELECT case_ref, owner, after_stage, decision FROM worklist_decisions").fetch_all(&env.db).await.unwrap();
        assert_eq!(waiting.len(), 1);
        assert_eq!((waiting[0].0.as_str(), waiting[0].1.as_deref(), waiting[0].2.as_str()), ("RTB-1", Some("off1"), "tenant_reply"));
        assert_eq!(waiting[0].3.0["choices"], json!(["offer_accepted", "dv_determination"]));
        env.ok("2026-03-02T11:00:00Z", json!({"type": "advance_case", "case_ref": "RTB-1", "to_stage": "offer_accepted"})).await;
        assert_eq!(env.case("RTB-1").await.case.status.as_str(), "open");
        let (left,): (i64,) = sql("SELECT COUNT(*) FROM worklist_decisions").fetch_one(&env.db).await.unwrap();
        assert_eq!(left, 0);

        complete_all(&env, "2026-03-03T10:00:00Z", "RTB-1", &["record_acceptance", "instruct_legal"], "sol1").await;
        complete_all(&env, "2026-04-01T10:00:00Z", "RTB-1", &["agree_completion_date", "complete_sale"], "sol1").await;
        assert_eq!(env.case("RTB-1").await.case.status.as_str(), "open");
        complete_all(&env, "2026-04-02T10:00:00Z", "RTB-1", &["register_discount_charge", "close_rent_account"], "sol1").await;

        let case = env.case("RTB-1").await;
        assert_eq!(case.case.status.as_str(), "completed");
        assert_eq!(case.case.closed_at.unwrap().to_rfc3339(), "2026-04-02T10:00:00+00:00");
        let stages: Vec<_> = case.stages.iter().map(|s| (s.stage.stage.as_str(), s.stage.status.as_str())).collect();
        assert_eq!(stages, vec![
            ("application", "completed"), ("eligibility", "completed"), ("valuation", "completed"),
            ("offer", "completed"), ("tenant_reply", "completed"), ("offer_accepted", "completed"),
            ("completion", "completed"),
        ]);
        // Every stage was entered carrying the case owner and their line manager.
        for s in &case.stages {
            assert_eq!((s.stage.owner.as_deref(), s.stage.line_manager.as_deref()), (Some("off1"), Some("mgr1")), "{}", s.stage.stage);
        }
        let entered: Vec<_> = case.events.iter().filter(|e| e.kind == "stage_entered").skip(1).collect();
        assert!(entered.iter().all(|e| e.data.0["owner"] == "off1" && e.data.0["line_manager"] == "mgr1"));
        // Tasks record who completed them; legal tasks sit on the legal role's list.
        let completion = case.stages.last().unwrap();
        let sale = completion.tasks.iter().find(|t| t.task == "complete_sale").unwrap();
        assert_eq!((sale.completed_by.as_deref(), sale.role_ref.as_deref()), (Some("sol1"), Some("legal")));
        let kinds = env.event_kinds("RTB-1").await;
        assert_eq!(kinds.first().map(String::as_str), Some("case_created"));
        assert_eq!(kinds.last().map(String::as_str), Some("case_completed"));
        for k in ["allocated", "stage_entered", "task_activated", "task_completed", "task_cancelled", "stage_completed", "advance_needed", "case_advanced"] {
            assert!(kinds.iter().any(|x| x == k), "no {k} event in {kinds:?}");
        }
        // Event ids rise with time: the log can be followed by id.
        let ids: Vec<i64> = case.events.iter().map(|e| e.id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        // A completed case takes no more work.
        let reason = env.rejected("2026-04-03T10:00:00Z", complete("RTB-1", "close_rent_account", "off1")).await;
        assert!(reason.contains("is completed"), "{reason}");
    }

    async fn running_the_same_pass_twice_changes_nothing_the_second_time(env: Env) {
        env.seed_organisation().await;
        env.submit(&[
            rtb_claim("RTB-2", "tenant2", "leasehold", "2026-01-05"),
            complete("RTB-2", "check_signatories", "off1"),
            json!({"type": "hold_task", "case_ref": "RTB-2", "task": "check_property_address", "until": "2026-01-07", "reason": "awaiting plans"}),
            json!({"type": "create_case", "broken": true}),
        ]).await;
        let first = env.tick("2026-01-05T10:00:00Z").await;
        assert_eq!((first.accepted, first.rejected, first.allocated), (3, 1, 1), "{first}");
        let before = snapshot(&env).await;
        let second = env.tick("2026-01-05T10:00:00Z").await;
        assert!(second.is_idle(), "second pass did {second}");
        assert_eq!(snapshot(&env).await, before);

        // The hold's release date comes: released once, and not again.
        let third = env.tick("2026-01-07T09:00:00Z").await;
        assert_eq!(third.holds_released, 1);
        assert_eq!(env.task_status("RTB-2", "check_property_address").await, "active");
        let after_release = snapshot(&env).await;
        assert!(env.tick("2026-01-07T09:00:00Z").await.is_idle());
        assert_eq!(snapshot(&env).await, after_release);
    }

    async fn a_delay_diverts_an_open_stage_and_the_case_returns_to_a_chosen_stage(env: Env) {
        env.seed_organisation().await;
        env.ok("2026-01-05T09:00:00Z", rtb_claim("RTB-3", "tenant3", "freehold", "2026-01-05")).await;
        complete_all(&env, "2026-01-06T09:00:00Z", "RTB-3", &["check_property_address", "check_signatories", "check_previous_tenancies", "register_claim"], "off1").await;
        complete_all(&env, "2026-01-07T09:00:00Z", "RTB-3", &["check_exclusions"], "off1").await;

        // Valuation is not a diversion of eligibility.
        let reason = env.rejected("2026-02-09T09:00:00Z", json!({"type": "advance_case", "case_ref": "RTB-3", "to_stage": "valuation"})).await;
        assert!(reason.contains("moves on by itself") && reason.contains("delay, appeal"), "{reason}");
        // The tenant serves an RTB6: the case goes into the delay procedure.
        env.ok("2026-02-09T09:00:00Z", json!({"type": "advance_case", "case_ref": "RTB-3", "to_stage": "delay"})).await;
        let case = env.case("RTB-3").await;
        let eligibility = case.stages.iter().find(|s| s.stage.stage == "eligibility").unwrap();
        assert_eq!(eligibility.stage.status.as_str(), "diverted");
        assert!(eligibility.tasks.iter().filter(|t| t.task != "check_exclusions").all(|t| t.status.as_str() == "cancelled"));
        assert_eq!(env.open_stage("RTB-3").await.as_deref(), Some("delay"));

        complete_all(&env, "2026-02-09T10:00:00Z", "RTB-3", &["record_rtb6", "serve_rtb7_counter_notice"], "off1").await;
        assert_eq!(env.case("RTB-3").await.case.status.as_str(), "awaiting_advance");
        let reason = env.rejected("2026-02-10T09:00:00Z", json!({"type": "advance_case", "case_ref": "RTB-3", "to_stage": "completion"})).await;
        assert!(reason.contains("choose one of: eligibility, offer"), "{reason}");
        env.ok("2026-02-10T09:00:00Z", json!({"type": "advance_case", "case_ref": "RTB-3", "to_stage": "eligibility"})).await;

        // The stage is entered a second time, with fresh tasks.
        let case = env.case("RTB-3").await;
        let entries: Vec<_> = case.stages.iter().filter(|s| s.stage.stage == "eligibility").map(|s| (s.stage.entry, s.stage.status.as_str())).collect();
        assert_eq!(entries, vec![(1, "diverted"), (2, "open")]);
        assert_eq!(env.task_status("RTB-3", "check_exclusions").await, "active");
    }

    async fn a_case_no_rule_can_allocate_waits_on_the_fallback_role_until_reassigned(env: Env) {
        // No officers at all: the rule finds nobody.
        env.ok("2026-01-05T08:00:00Z", json!({"type": "upsert_contact", "ref": "tenant1", "name": "Tenant One"})).await;
        env.ok("2026-01-05T09:00:00Z", rtb_claim("RTB-4", "tenant1", "freehold", "2026-01-05")).await;
        let case = env.case("RTB-4").await;
        assert_eq!((case.case.allocation.as_str(), case.case.owner.as_deref()), ("needed", None));
        assert_eq!(case.case.queue_role.as_deref(), Some("allocation_queue"));
        let needed = case.events.iter().find(|e| e.kind == "allocation_needed").unwrap();
        assert!(needed.data.0["reason"].as_str().unwrap().contains("nobody holds the home_ownership role"), "{:?}", needed.data);
        let queue = casewarden::report::worklist(&env.db, None, Some("allocation_queue")).await.unwrap();
        assert_eq!(queue.len(), 3, "the three active application tasks wait on the queue");

        env.ok("2026-01-05T10:00:00Z", json!({"type": "upsert_role", "ref": "home_ownership", "name": "Home ownership"})).await;
        env.ok("2026-01-05T10:00:00Z", json!({"type": "upsert_user", "ref": "off9", "name": "New Officer", "email": "new@example.org", "roles": ["home_ownership"]})).await;
        env.ok("2026-01-05T11:00:00Z", json!({"type": "reassign_case", "case_ref": "RTB-4", "owner": "off9"})).await;
        let case = env.case("RTB-4").await;
        assert_eq!((case.case.allocation.as_str(), case.case.owner.as_deref()), ("allocated", Some("off9")));
        assert!(casewarden::report::worklist(&env.db, None, Some("allocation_queue")).await.unwrap().is_empty());
        let mine = casewarden::report::worklist(&env.db, Some("off9"), None).await.unwrap();
        assert_eq!(mine.len(), 3);
        let by_role = casewarden::report::worklist(&env.db, None, Some("home_ownership")).await.unwrap();
        assert_eq!(by_role.len(), 3);
        assert!(env.event_kinds("RTB-4").await.contains(&"owner_changed".to_string()));
    }
}

mod plan {
    use super::*;
    use casewarden::engine::plan::plan;

    /// What an event says, without its id.
    fn said(e: &casewarden::events::Event) -> (Option<String>, String, String, String) {
        (
            e.case_ref.clone(),
            e.kind.clone(),
            e.actor.clone(),
            e.data.0.to_string(),
        )
    }

    on_both_backends! {
        async fn a_plan_shows_what_the_next_tick_does_and_writes_nothing(env: Env) {
            env.seed_organisation().await;
            env.ok("2026-01-05T09:00:00Z", rtb_claim("P-1", "tenant1", "freehold", "2026-01-05")).await;
            env.submit(&[
                rtb_claim("P-2", "tenant2", "leasehold", "2026-01-06"),
                complete("P-1", "check_signatories", "off1"),
                json!({"type": "hold_task", "case_ref": "P-1", "task": "check_previous_tenancies", "until": "2026-01-09", "reason": "waiting"}),
                complete("P-1", "no_such_task", "off1"),
            ]).await;
            let now = casewarden::clock::parse_time("2026-01-07T09:00:00Z").unwrap();
            let before = snapshot(&env).await;

            let planned = plan(&env.engine, now).await.unwrap();
            assert_eq!(snapshot(&env).await, before, "the plan wrote something");
            // It foresees commands, an allocation, activations and an amber escalation.
            let kinds: Vec<&str> = planned.events.iter().map(|e| e.kind.as_str()).collect();
            for k in ["case_created", "allocated", "task_completed", "task_held", "command_rejected", "sla_amber"] {
                assert!(kinds.contains(&k), "{k} missing from the plan: {kinds:?}");
            }
            assert!(!planned.queued.is_empty());
            assert!(planned.to_text().contains("nothing has been written"));

            // The tick then does exactly that.
            let last: (i64,) = sql("SELECT MAX(id) FROM events").fetch_one(&env.db).await.unwrap();
            let outcome = env.tick("2026-01-07T09:00:00Z").await;
            assert_eq!(outcome, planned.outcome);
            let done: Vec<_> = env.all_events().await.into_iter().filter(|e| e.id > last.0).map(|e| said(&e)).collect();
            let foreseen: Vec<_> = planned.events.iter().map(said).collect();
            assert_eq!(done, foreseen);
            // And a plan after it foresees nothing more.
            let idle = plan(&env.engine, now).await.unwrap();
            assert!(idle.events.is_empty() && idle.outcome.is_idle(), "{}", idle.to_text());
        }
    }
}
