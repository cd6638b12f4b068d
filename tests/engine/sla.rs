//! SLA clocks through weeks of simulated time: exact amber, exceeded and follow-on dates, the
//! events and outbox rows each writes, holds that stop the clock, and passes that repeat, overlap
//! or die half-way without any escalation firing twice or being lost.

use casewarden::clock::parse_time;
use casewarden::db::sql;
use serde_json::json;

use crate::helpers::{Env, complete, rtb_claim};
use crate::on_both_backends;

type Escalation = (String, String, String, i64);
type Mail = (String, String);

async fn escalations(env: &Env) -> Vec<Escalation> {
    let mut rows: Vec<Escalation> = sql(
        "SELECT e.item_kind, COALESCE(t.task, s.stage), e.level, e.repetition FROM escalations e \
         LEFT JOIN tasks t ON e.item_kind = 'task' AND t.id = e.item_id \
         LEFT JOIN stages s ON e.item_kind = 'stage' AND s.id = e.item_id ORDER BY e.id",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    rows.sort();
    rows
}

async fn mails(env: &Env) -> Vec<Mail> {
    let mut rows: Vec<Mail> =
        sql("SELECT template, COALESCE(recipient_ref, '-') FROM outbox ORDER BY id")
            .fetch_all(&env.db)
            .await
            .unwrap();
    rows.sort();
    rows
}

fn esc(kind: &str, key: &str, level: &str, rep: i64) -> Escalation {
    (kind.into(), key.into(), level.into(), rep)
}

fn mail(template: &str, to: &str) -> Mail {
    (template.into(), to.into())
}

/// Ticks at `now`, checks exactly which escalations and notifications are new, then ticks again
/// at the same moment and checks nothing more happens.
async fn step(env: &Env, now: &str, new_escalations: &[Escalation], new_mails: &[Mail]) {
    let (before_e, before_m) = (escalations(env).await, mails(env).await);
    env.tick(now).await;
    let (after_e, after_m) = (escalations(env).await, mails(env).await);
    let mut added_e: Vec<Escalation> = after_e.clone();
    for e in &before_e {
        let i = added_e.iter().position(|x| x == e).unwrap();
        added_e.remove(i);
    }
    let mut added_m: Vec<Mail> = after_m.clone();
    for m in &before_m {
        let i = added_m.iter().position(|x| x == m).unwrap();
        added_m.remove(i);
    }
    let (mut want_e, mut want_m) = (new_escalations.to_vec(), new_mails.to_vec());
    want_e.sort();
    want_m.sort();
    assert_eq!(added_e, want_e, "escalations at {now}");
    assert_eq!(added_m, want_m, "notifications at {now}");
    let again = env.tick(now).await;
    assert_eq!(
        (again.escalations, again.notifications),
        (0, 0),
        "a repeated pass at {now} fired again"
    );
}

async fn dates(env: &Env, case_ref: &str, task: &str) -> (String, String, String) {
    let case = env.case(case_ref).await;
    let t = case
        .stages
        .iter()
        .rev()
        .flat_map(|s| &s.tasks)
        .find(|t| t.task == task)
        .unwrap()
        .clone();
    let f =
        |d: Option<chrono::DateTime<chrono::Utc>>| d.map(|d| d.to_rfc3339()).unwrap_or_default();
    (t.sla_state.to_string(), f(t.amber_at), f(t.target_at))
}

async fn stage_dates(env: &Env, case_ref: &str, stage: &str) -> (String, String, String) {
    let case = env.case(case_ref).await;
    let s = case
        .stages
        .iter()
        .rev()
        .find(|s| s.stage.stage == stage)
        .unwrap()
        .stage
        .clone();
    let f =
        |d: Option<chrono::DateTime<chrono::Utc>>| d.map(|d| d.to_rfc3339()).unwrap_or_default();
    (s.sla_state.to_string(), f(s.amber_at), f(s.target_at))
}

fn at(d: &str) -> String {
    parse_time(d).unwrap().to_rfc3339()
}

on_both_backends! {
    async fn a_right_to_buy_case_walks_through_weeks_of_sla_checkpoints(env: Env) {
        env.seed_organisation().await;
        let mut claim = rtb_claim("S-1", "tenant1", "freehold", "2026-01-05");
        claim["attributes"]["patch"] = json!("north");
        env.ok("2026-01-05T09:00:00Z", claim).await;

        // Clocks start at entry and activation: working days skip the weekend.
        assert_eq!(stage_dates(&env, "S-1", "application").await, ("on_track".into(), at("2026-01-14"), at("2026-01-19")));
        assert_eq!(dates(&env, "S-1", "check_property_address").await, ("on_track".into(), at("2026-01-07"), at("2026-01-08")));
        assert_eq!(dates(&env, "S-1", "check_previous_tenancies").await, ("on_track".into(), at("2026-01-08"), at("2026-01-12")));

        env.ok("2026-01-06T09:00:00Z", complete("S-1", "check_signatories", "off1")).await;
        step(&env, "2026-01-06T09:00:00Z", &[], &[]).await;
        // Amber: the owner is told. A completed task has no clock left to warn about.
        step(&env, "2026-01-07T09:00:00Z", &[esc("task", "check_property_address", "amber", 0)], &[mail("sla_amber", "off1")]).await;
        let amber = env.case("S-1").await.events.into_iter().rfind(|e| e.kind == "sla_amber").unwrap();
        assert_eq!(amber.data.0["key"], "check_property_address");
        assert_eq!(amber.data.0["rule"], "escalation/default_amber");
        assert_eq!(amber.data.0["rule_version"].as_str().map(str::len), Some(16));
        assert_eq!(amber.data.0["reason"], "the task is nearing its target; its owner is warned");
        // Exceeded: owner and line manager; another task goes amber at the same time.
        step(&env, "2026-01-08T09:00:00Z",
            &[esc("task", "check_property_address", "exceeded", 0), esc("task", "check_previous_tenancies", "amber", 0)],
            &[mail("sla_exceeded", "off1"), mail("sla_exceeded", "mgr1"), mail("sla_amber", "off1")]).await;
        assert_eq!(dates(&env, "S-1", "check_property_address").await.0, "exceeded");

        // A held task does not escalate; released at its date, its dates move on by the working
        // days held (Thu 8, Fri 9, Mon 12 January) and its owner is told.
        env.ok("2026-01-08T10:00:00Z", json!({"type": "hold_task", "case_ref": "S-1", "task": "check_previous_tenancies",
            "until": "2026-01-13", "reason": "awaiting the previous landlord"})).await;
        step(&env, "2026-01-12T09:00:00Z", &[], &[]).await;
        step(&env, "2026-01-13T09:00:00Z", &[], &[mail("task_released", "off1")]).await;
        assert_eq!(dates(&env, "S-1", "check_previous_tenancies").await, ("amber".into(), at("2026-01-13"), at("2026-01-15")));
        let released = env.case("S-1").await.events.into_iter().rfind(|e| e.kind == "task_released").unwrap();
        assert_eq!((released.actor.as_str(), released.data.0["sla_moved_working_days"].as_i64()), ("casewarden", Some(3)));

        // The stage has its own clock.
        step(&env, "2026-01-14T09:00:00Z", &[esc("stage", "application", "amber", 0)], &[mail("sla_amber", "off1")]).await;
        env.ok("2026-01-14T10:00:00Z", complete("S-1", "check_property_address", "off1")).await;
        step(&env, "2026-01-15T09:00:00Z", &[esc("task", "check_previous_tenancies", "exceeded", 0)],
            &[mail("sla_exceeded", "off1"), mail("sla_exceeded", "mgr1")]).await;

        // The RTB2 runs from the claim: 4 weeks from 5 January, amber 5 working days before.
        env.submit(&[complete("S-1", "check_previous_tenancies", "off1"), complete("S-1", "register_claim", "off1")]).await;
        step(&env, "2026-01-15T10:00:00Z", &[], &[]).await;
        assert_eq!(stage_dates(&env, "S-1", "application").await.0, "amber", "a finished stage keeps the state it ended in");
        assert_eq!(stage_dates(&env, "S-1", "eligibility").await, ("on_track".into(), at("2026-01-26"), at("2026-02-02")));
        env.submit(&[complete("S-1", "check_exclusions", "off1"), complete("S-1", "confirm_qualifying_period", "off1")]).await;
        step(&env, "2026-01-16T09:00:00Z", &[], &[]).await;
        assert_eq!(dates(&env, "S-1", "issue_rtb2").await, ("on_track".into(), at("2026-01-26"), at("2026-02-02")));

        step(&env, "2026-01-26T09:00:00Z", &[esc("stage", "eligibility", "amber", 0), esc("task", "issue_rtb2", "amber", 0)],
            &[mail("sla_amber", "off1"), mail("sla_amber", "off1")]).await;
        step(&env, "2026-02-02T09:00:00Z", &[esc("stage", "eligibility", "exceeded", 0), esc("task", "issue_rtb2", "exceeded", 0)],
            &[mail("sla_exceeded", "off1"), mail("sla_exceeded", "mgr1"), mail("sla_exceeded", "off1"), mail("sla_exceeded", "mgr1")]).await;
        // Follow-ons every 5 working days go to the line manager and the whole team.
        let team = |n: usize| -> Vec<Mail> { ["mgr1", "off1", "off2"].iter().cycle().take(3 * n).map(|r| mail("sla_follow_on", r)).collect() };
        step(&env, "2026-02-06T09:00:00Z", &[], &[]).await;
        step(&env, "2026-02-09T09:00:00Z", &[esc("stage", "eligibility", "follow_on", 1), esc("task", "issue_rtb2", "follow_on", 1)], &team(2)).await;
        // A pass after a long gap fires every checkpoint it missed, once each, up to the limit.
        step(&env, "2026-03-02T09:00:00Z", &[
            esc("stage", "eligibility", "follow_on", 2), esc("task", "issue_rtb2", "follow_on", 2),
            esc("stage", "eligibility", "follow_on", 3), esc("task", "issue_rtb2", "follow_on", 3),
        ], &team(4)).await;
        step(&env, "2026-04-01T09:00:00Z", &[], &[]).await;
        let follow = env.case("S-1").await.events.into_iter().rfind(|e| e.kind == "sla_follow_on").unwrap();
        assert_eq!((follow.data.0["repetition"].as_i64(), follow.data.0["due_at"].as_str()), (Some(3), Some("2026-02-23T09:00:00Z")));

        // Outbox rows carry what a template needs.
        let (facts,): (sqlx::types::Json<serde_json::Value>,) = sql("SELECT facts FROM outbox WHERE template = 'sla_exceeded' ORDER BY id DESC LIMIT 1")
            .fetch_one(&env.db).await.unwrap();
        assert_eq!(facts.0["case"]["case_ref"], "S-1");
        assert_eq!(facts.0["sla"]["target_at"], "2026-02-02T09:00:00Z");
        assert!(facts.0["recipient"]["name"].is_string());

        // Completing the work stops its clock: nothing more fires, whatever the date.
        env.ok("2026-04-01T10:00:00Z", complete("S-1", "issue_rtb2", "off1")).await;
        assert_eq!(env.open_stage("S-1").await.as_deref(), Some("valuation"));
        env.tick("2026-06-01T09:00:00Z").await;
        let rtb2: Vec<_> = escalations(&env).await.into_iter().filter(|e| e.1 == "issue_rtb2" || e.1 == "eligibility").collect();
        assert_eq!(rtb2.len(), 2 * (1 + 1 + 3), "amber, exceeded and three follow-ons each, and no more");
    }

    async fn worklists_show_each_tasks_sla_state_dates_and_working_days_left(env: Env) {
        env.seed_organisation().await;
        // The views count from the real today, so the case starts now.
        let now = casewarden::clock::now();
        env.ok(&now.to_rfc3339(), rtb_claim("W-1", "tenant1", "freehold", &now.to_rfc3339())).await;
        let rows = casewarden::report::worklist(&env.db, Some("off1"), None).await.unwrap();
        let row = |task: &str| rows.iter().find(|r| r.task == task).unwrap_or_else(|| panic!("{task} on the worklist"));
        let address = row("check_property_address");
        assert_eq!((address.sla_state.as_str(), address.days_remaining), ("on_track", Some(3)));
        assert!(address.amber_at.unwrap() < address.target_at.unwrap());
        assert_eq!(row("check_previous_tenancies").days_remaining, Some(5));
        let stages: Vec<(String, Option<i64>)> = sql("SELECT stage, days_remaining FROM worklist_stages WHERE case_ref = 'W-1'")
            .fetch_all(&env.db).await.unwrap();
        assert_eq!(stages, vec![("application".to_string(), Some(10))]);
        let text = casewarden::report::worklist_text(&rows);
        assert!(text.contains("3 wd") && text.contains("on_track"), "{text}");
    }

    async fn working_days_are_rewritten_only_when_the_calendars_change(env: Env) {
        use casewarden::engine::deadlines::publish_calendars;
        let dir = tempfile::tempdir().unwrap();
        let shipped = crate::helpers::repo_path("rules/calendars");
        std::fs::copy(shipped.join("uk-bank-holidays.json"), dir.path().join("uk-bank-holidays.json")).unwrap();
        let load = || casewarden::sla::Calendars::load(dir.path()).unwrap();
        // The environment published the shipped calendars: the same again rewrites nothing.
        assert_eq!(publish_calendars(&env.db, &load()).await.unwrap(), Vec::<String>::new());
        let count = || async {
            sql("SELECT COUNT(*) FROM working_days WHERE calendar = 'scotland' AND day = '2026-12-29'")
                .scalar::<i64>(&env.db).await.unwrap()
        };
        assert_eq!(count().await, 1);
        std::fs::write(dir.path().join("closures.toml"),
            "[[closure]]\nfrom = 2026-12-29\nreason = \"Offices closed\"\ncalendars = [\"scotland\"]\n").unwrap();
        assert_eq!(publish_calendars(&env.db, &load()).await.unwrap(), vec!["scotland".to_string()]);
        assert_eq!(count().await, 0, "the closed day is no longer a working day");
        assert_eq!(publish_calendars(&env.db, &load()).await.unwrap(), Vec::<String>::new());
    }

    async fn a_target_can_be_decided_by_a_small_rhai_expression(env: Env) {
        env.seed_organisation().await;
        let def = std::fs::read_to_string(crate::helpers::repo_path("rules/definitions/home_buy/right_to_buy-england.toml")).unwrap();
        let line = "sla = { target = \"10 working days\", amber = \"3 working days\" }";
        assert!(def.contains(line));
        let by_expr = def.replacen(line, r#"sla = { target_expr = 'if case_facts.tenure == "leasehold" { "15 working days" } else if "broken" in case_facts.attributes { case_facts.nope } else { "10 working days" }', amber = "3 working days" }"#, 1);
        let (_dir, rules) = crate::helpers::rules_with(&[("definitions/home_buy/right_to_buy-england.toml", by_expr.as_str())]);
        env.use_rules(rules);
        env.ok("2026-01-05T09:00:00Z", rtb_claim("X-1", "tenant1", "leasehold", "2026-01-05")).await;
        env.ok("2026-01-05T09:00:00Z", rtb_claim("X-2", "tenant2", "freehold", "2026-01-05")).await;
        assert_eq!(stage_dates(&env, "X-1", "application").await.2, at("2026-01-26"));
        assert_eq!(stage_dates(&env, "X-2", "application").await.2, at("2026-01-19"));
        // An expression that fails starts no clock, and says why on the case.
        let mut broken = rtb_claim("X-3", "tenant3", "freehold", "2026-01-05");
        broken["attributes"]["broken"] = json!(true);
        env.ok("2026-01-05T09:00:00Z", broken).await;
        assert_eq!(stage_dates(&env, "X-3", "application").await, ("none".into(), String::new(), String::new()));
        let error = env.case("X-3").await.events.into_iter().find(|e| e.kind == "rule_error").unwrap();
        assert_eq!(error.data.0["during"], "target_expr");
        assert!(error.data.0["message"].as_str().unwrap().contains("nope"), "{:?}", error.data);
    }

    async fn passes_that_overlap_or_die_half_way_fire_each_escalation_exactly_once(env: Env) {
        env.seed_organisation().await;
        let claims: Vec<_> = (1..=6).map(|i| rtb_claim(&format!("K-{i}"), &format!("tenant{i}"), "freehold", "2026-01-05")).collect();
        env.submit(&claims).await;
        env.tick("2026-01-05T09:00:00Z").await;
        // By 2 March every application task is long overdue: amber and exceeded for each task
        // and stage. Passes are cut off at random points, then two run at once.
        let now = parse_time("2026-03-02T09:00:00Z").unwrap();
        for cut in [1u64, 2, 3, 5, 8, 13, 21] {
            let pass = env.engine.run_pass(now);
            let _ = tokio::time::timeout(std::time::Duration::from_millis(cut), pass).await;
        }
        let (a, b) = tokio::join!(env.engine.run_pass(now), env.engine.run_pass(now));
        a.unwrap();
        b.unwrap();
        env.tick("2026-03-02T09:00:00Z").await;

        // Each case: 3 active tasks and the application stage, each amber then exceeded, once.
        let per_item: Vec<(String, i64, String, i64)> = sql(
            "SELECT item_kind, item_id, level, COUNT(*) FROM escalations GROUP BY item_kind, item_id, level ORDER BY item_kind, item_id, level",
        )
        .fetch_all(&env.db)
        .await
        .unwrap();
        assert_eq!(per_item.len(), 48, "{per_item:?}");
        assert!(per_item.iter().all(|r| r.3 == 1), "an escalation fired twice: {per_item:?}");
        let states: Vec<(String,)> = sql("SELECT DISTINCT sla_state FROM tasks WHERE status = 'active'").fetch_all(&env.db).await.unwrap();
        assert_eq!(states, vec![("exceeded".to_string(),)]);
        // One notification per addressee per escalation: amber to the owner, exceeded to owner and manager.
        let (rows,): (i64,) = sql("SELECT COUNT(*) FROM outbox").fetch_one(&env.db).await.unwrap();
        assert_eq!(rows, 24 + 24 * 2);
        let (events,): (i64,) = sql("SELECT COUNT(*) FROM events WHERE kind IN ('sla_amber', 'sla_exceeded')").fetch_one(&env.db).await.unwrap();
        assert_eq!(events, 48);
    }
}
