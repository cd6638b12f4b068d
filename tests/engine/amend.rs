//! Amending a case's facts (`update_case`) and clocks the law does not pause: a Right to Buy
//! notice whose 4 or 8 weeks follow the qualifying period found out during the checks, a target
//! moved later that re-arms what is still to come, closed cases that take no amendment, a held
//! prevention duty whose 56 days keep running, and `check` on a stage that would let holds
//! starve a statutory notice.

use casewarden::clock::parse_time;
use casewarden::db::sql;
use casewarden::report::HoldClock;
use serde_json::{Value, json};

use crate::helpers::{Env, complete, copy_tree, repo_path, rtb_claim, rules_with};
use crate::on_both_backends;

/// The levels fired for one stage or task, in the order they fired.
async fn fired(env: &Env, key: &str) -> Vec<String> {
    let rows: Vec<(String, i64)> = sql("SELECT e.level, e.repetition FROM escalations e \
         LEFT JOIN tasks t ON e.item_kind = 'task' AND t.id = e.item_id \
         LEFT JOIN stages s ON e.item_kind = 'stage' AND s.id = e.item_id \
         WHERE COALESCE(t.task, s.stage) = $1 ORDER BY e.id")
    .bind(key)
    .fetch_all(&env.db)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(l, r)| if r == 0 { l } else { format!("{l} {r}") })
        .collect()
}

/// (state, amber, target) of a stage or task of the case, by key.
async fn clock(env: &Env, case_ref: &str, key: &str) -> (String, String, String) {
    let case = env.case(case_ref).await;
    let f =
        |d: Option<chrono::DateTime<chrono::Utc>>| d.map(|d| d.to_rfc3339()).unwrap_or_default();
    for s in case.stages.iter().rev() {
        if s.stage.stage == key {
            return (
                s.stage.sla_state.to_string(),
                f(s.stage.amber_at),
                f(s.stage.target_at),
            );
        }
        if let Some(t) = s.tasks.iter().find(|t| t.task == key) {
            return (t.sla_state.to_string(), f(t.amber_at), f(t.target_at));
        }
    }
    panic!("{key} is not on case {case_ref}")
}

fn at(d: &str) -> String {
    parse_time(d).unwrap().to_rfc3339()
}

fn qualifying(case_ref: &str, all_with_landlord: bool) -> Value {
    json!({"type": "update_case", "case_ref": case_ref, "attributes": {"qualifying_period_all_with_landlord": all_with_landlord},
           "reason": "the previous landlord confirmed the tenancies", "by": "off1"})
}

/// A Right to Buy claim of 5 January 2026 taken through its application stage on the 6th: the
/// case is in eligibility, its checks active.
async fn in_the_checks(env: &Env, case_ref: &str, all_with_landlord: bool) {
    env.seed_organisation().await;
    let mut claim = rtb_claim(case_ref, "tenant1", "freehold", "2026-01-05");
    claim["attributes"]["qualifying_period_all_with_landlord"] = json!(all_with_landlord);
    env.ok("2026-01-05T09:00:00Z", claim).await;
    let tasks = [
        "check_property_address",
        "check_signatories",
        "check_previous_tenancies",
        "register_claim",
    ];
    env.submit(&tasks.map(|t| complete(case_ref, t, "off1")))
        .await;
    env.tick("2026-01-06T10:00:00Z").await;
    assert_eq!(
        env.open_stage(case_ref).await.as_deref(),
        Some("eligibility")
    );
}

on_both_backends! {
    async fn a_qualifying_period_found_to_be_all_with_the_landlord_brings_the_rtb2_forward_to_4_weeks(env: Env) {
        in_the_checks(&env, "A-1", false).await;
        // 8 weeks from the claim: 2 March, amber 5 working days before.
        assert_eq!(clock(&env, "A-1", "eligibility").await, ("on_track".into(), at("2026-02-23"), at("2026-03-02")));
        env.tick("2026-01-26T12:00:00Z").await;
        assert!(fired(&env, "eligibility").await.is_empty());

        // During the checks the whole period turns out to be with this landlord: 4 weeks, whose
        // amber (26 January) has passed, so the next pass fires it.
        env.ok("2026-01-27T10:00:00Z", qualifying("A-1", true)).await;
        let case = env.case("A-1").await;
        assert_eq!(case.case.attributes.0["qualifying_period_all_with_landlord"], true);
        let updated = case.events.iter().rfind(|e| e.kind == "case_updated").expect("case_updated");
        assert_eq!(updated.actor, "off1");
        assert_eq!(updated.data.0["changed"], json!(["attributes.qualifying_period_all_with_landlord"]));
        assert_eq!(updated.data.0["moved"], json!([{"item": "stage", "stage": "eligibility", "task": null,
            "from": "2026-03-02T09:00:00Z", "to": "2026-02-02T09:00:00Z", "sla_state": "on_track"}]));
        // The values and the reason are kept with the case's amendments, not in the log.
        let amended = case.updates.last().expect("the amendment on record");
        assert_eq!(amended.changes.0, json!([{"fact": "attributes.qualifying_period_all_with_landlord", "from": false, "to": true}]));
        assert_eq!((amended.reason.as_str(), amended.actor.as_str()), ("the previous landlord confirmed the tenancies", "off1"));
        assert!(case.to_text().contains("amended:    1 time(s)"), "{}", case.to_text());
        assert_eq!(fired(&env, "eligibility").await, ["amber"]);
        assert_eq!(clock(&env, "A-1", "eligibility").await, ("amber".into(), at("2026-01-26"), at("2026-02-02")));
        // The checks' own clocks depend on no fact and stay where they were.
        assert_eq!(clock(&env, "A-1", "check_exclusions").await.2, at("2026-01-13T10:00:00Z"));

        // The RTB2 task starts after the checks with the new facts' 4 weeks.
        env.submit(&[complete("A-1", "check_exclusions", "off1"), complete("A-1", "confirm_qualifying_period", "off1")]).await;
        env.tick("2026-01-28T10:00:00Z").await;
        assert_eq!(clock(&env, "A-1", "issue_rtb2").await, ("amber".into(), at("2026-01-26"), at("2026-02-02")));
        env.tick("2026-02-02T09:00:00Z").await;
        assert_eq!(fired(&env, "eligibility").await, ["amber", "exceeded"]);
        assert_eq!(fired(&env, "issue_rtb2").await, ["amber", "exceeded"]);
    }

    async fn a_notice_target_moved_later_re_arms_what_is_still_to_come_and_fires_nothing_twice(env: Env) {
        in_the_checks(&env, "B-1", true).await;
        env.submit(&[complete("B-1", "check_exclusions", "off1"), complete("B-1", "confirm_qualifying_period", "off1")]).await;
        env.tick("2026-01-07T10:00:00Z").await;
        assert_eq!(clock(&env, "B-1", "issue_rtb2").await, ("on_track".into(), at("2026-01-26"), at("2026-02-02")));
        env.tick("2026-01-26T10:00:00Z").await;
        assert_eq!(fired(&env, "issue_rtb2").await, ["amber"]);

        // 8 weeks after all: both clocks go back on track for 2 March.
        env.ok("2026-01-27T10:00:00Z", qualifying("B-1", false)).await;
        let updated = env.case("B-1").await.events.into_iter().rfind(|e| e.kind == "case_updated").unwrap();
        let moved: Vec<(String, String, String)> = updated.data.0["moved"].as_array().unwrap().iter()
            .map(|m| (m["task"].as_str().unwrap_or("-").into(), m["to"].as_str().unwrap().into(), m["sla_state"].as_str().unwrap().into()))
            .collect();
        assert_eq!(moved, [("-".into(), "2026-03-02T09:00:00Z".into(), "on_track".into()),
                           ("issue_rtb2".into(), "2026-03-02T09:00:00Z".into(), "on_track".into())]);
        assert_eq!(clock(&env, "B-1", "issue_rtb2").await, ("on_track".into(), at("2026-02-23"), at("2026-03-02")));

        // The old target passes quietly; the amber already fired does not fire again; the new
        // target fires.
        env.tick("2026-02-02T10:00:00Z").await;
        assert_eq!(fired(&env, "issue_rtb2").await, ["amber"]);
        env.tick("2026-02-23T10:00:00Z").await;
        assert_eq!(fired(&env, "issue_rtb2").await, ["amber"]);
        assert_eq!(clock(&env, "B-1", "issue_rtb2").await.0, "amber");
        env.tick("2026-03-02T10:00:00Z").await;
        assert_eq!(fired(&env, "issue_rtb2").await, ["amber", "exceeded"]);
        assert_eq!(fired(&env, "eligibility").await, ["amber", "exceeded"]);
    }

    async fn update_case_checks_what_it_is_given_and_a_closed_case_refuses_it(env: Env) {
        in_the_checks(&env, "C-1", true).await;
        let update = |extra: Value| {
            let mut u = json!({"type": "update_case", "case_ref": "C-1", "reason": "corrected from the tenancy file"});
            u.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            u
        };
        let now = "2026-01-07T10:00:00Z";
        let reasons = [
            (json!({}), "update_case: nothing to change: give attributes, property, applicant or applicant_group (or reallocate: true)"),
            (json!({"applicant": "tenant9"}), "applicant: unknown contact \"tenant9\"; send upsert_contact first"),
            (json!({"applicant": "tenant2", "applicant_group": "HH-1"}), "update_case: give applicant or applicant_group, not both"),
            (json!({"attributes": {"qualifying_period_all_with_landlord": true}}), "case C-1 already has these facts; nothing to change"),
            (json!({"attributes": {"bad key": 1}}), "update_case: attributes key \"bad key\" contains whitespace"),
            (json!({"attributes": {"note": "a\u{0}b"}}), "update_case: attributes: text may not contain NUL characters"),
            (json!({"property": {"tenure": "commonhold"}}), "update_case: property.tenure \"commonhold\" is not one of: freehold, leasehold"),
            (json!({"property": {}}), "update_case: property: give at least one of ref, address and tenure"),
            (json!({"reason": "line one\u{7}", "applicant": "tenant2"}), "update_case: reason contains control characters"),
            (json!({"by": "nobody", "applicant": "tenant2"}), "by: unknown user"),
        ];
        for (extra, reason) in reasons {
            let got = env.rejected(now, update(extra.clone())).await;
            assert!(got.starts_with(reason), "{extra}: {got}");
        }
        // More than 200 attributes once merged with the case's.
        let many: serde_json::Map<String, Value> = (0..150).map(|i| (format!("a{i}"), json!(i))).collect();
        env.ok(now, update(json!({"attributes": many}))).await;
        let more: serde_json::Map<String, Value> = (0..60).map(|i| (format!("b{i}"), json!(i))).collect();
        let got = env.rejected(now, update(json!({"attributes": more}))).await;
        assert!(got.contains("attributes: 211 entries; the limit is 200 once merged with the case's"), "{got}");
        // null removes a key; the property and applicant change, without a new allocation.
        env.ok(now, update(json!({"attributes": {"a0": null}, "property": {"address": "1a Example Road, Leeds"}, "applicant": "tenant2"}))).await;
        let case = env.case("C-1").await;
        assert!(case.case.attributes.0.get("a0").is_none());
        assert_eq!(case.case.property_address.as_deref(), Some("1a Example Road, Leeds"));
        assert_eq!((case.case.applicant_contact.as_deref(), case.case.allocation.as_str()), (Some("tenant2"), "allocated"));
        let logged = &case.events.iter().rfind(|e| e.kind == "case_updated").unwrap().data.0["changed"];
        assert_eq!(*logged, json!(["attributes.a0", "property.address", "applicant"]));
        let changes = &case.updates.last().unwrap().changes.0;
        assert_eq!(changes[0], json!({"fact": "attributes.a0", "from": 0, "to": null}));
        assert_eq!(changes[1], json!({"fact": "property.address", "from": "1 Example Road, Leeds", "to": "1a Example Road, Leeds"}));
        assert_eq!(changes[2], json!({"fact": "applicant", "from": "tenant1", "to": "tenant2"}));
        // reallocate: true runs the allocation rule again at the same pass.
        env.ok(now, update(json!({"reallocate": true}))).await;
        let case = env.case("C-1").await;
        assert_eq!(case.events.last().unwrap().kind, "allocated");
        let text = case.to_text();
        assert!(text.contains("  applicant:  tenant2\n"), "{text}");
        assert!(text.contains("  amended:    3 time(s), last ") && text.contains(" by crm: corrected from the tenancy file\n"), "{text}");

        env.ok(now, json!({"type": "close_case", "case_ref": "C-1", "outcome": "withdrawn"})).await;
        let got = env.rejected(now, update(json!({"applicant": "tenant3"}))).await;
        assert_eq!(got, "case C-1 is closed (outcome: withdrawn); it takes no more changes");
        assert_eq!(env.case("C-1").await.case.applicant_contact.as_deref(), Some("tenant2"));
    }

    async fn a_held_prevention_duty_leaves_the_active_list_but_keeps_its_56_days(env: Env) {
        env.seed_organisation().await;
        env.ok("2026-03-02T08:00:00Z", json!({"type": "upsert_role", "ref": "housing_options", "name": "Housing options team"})).await;
        env.ok("2026-03-02T08:00:00Z", json!({"type": "upsert_user", "ref": "ho1", "name": "Hana Options", "email": "hana@example.org",
            "line_manager": "mgr1", "roles": ["housing_options"]})).await;
        env.ok("2026-03-02T09:30:00Z", json!({"type": "create_case", "case_ref": "HO-1", "kind": "housing_options", "workflow": "section_21",
            "country": "england", "applicant": "tenant1", "received_at": "2026-03-02T09:30:00Z"})).await;
        env.ok("2026-03-02T15:00:00Z", complete("HO-1", "triage", "ho1")).await;
        env.ok("2026-03-03T10:00:00Z", complete("HO-1", "assessment", "ho1")).await;
        // 56 calendar days from activation, amber 14 days before (London time: BST by then).
        let duty = clock(&env, "HO-1", "prevention_duty").await;
        assert_eq!(duty, ("on_track".into(), at("2026-04-14T09:00:00Z"), at("2026-04-28T09:00:00Z")));
        let case_target = env.case("HO-1").await.case.target_at;

        env.ok("2026-03-04T10:00:00Z", json!({"type": "hold_task", "case_ref": "HO-1", "task": "prevention_duty",
            "until": "2026-04-20T09:00:00Z", "reason": "applicant abroad for a family funeral"})).await;
        let case = env.case("HO-1").await;
        let held = case.events.iter().rfind(|e| e.kind == "task_held").unwrap();
        assert_eq!(held.data.0["clock_keeps_running"], true);
        let task = case.stages[0].tasks.iter().find(|t| t.task == "prevention_duty").unwrap();
        assert_eq!((task.status.as_str(), task.hold_clock), ("on_hold", Some(HoldClock::Running)));
        assert!(case.to_text().contains("(clock keeps running: the law does not pause it)"), "{}", case.to_text());
        assert_eq!(case.case.target_at, case_target, "the case's target does not move either");
        assert_eq!(clock(&env, "HO-1", "prevention_duty").await, duty);
        // Off the officer's active list until its release date: on their list as on hold.
        let list = casewarden::report::worklist(&env.db, Some("ho1"), None).await.unwrap();
        let row = list.iter().find(|r| r.task == "prevention_duty").unwrap();
        assert_eq!((row.status.as_str(), row.hold_until.map(|u| u.to_rfc3339())), ("on_hold", Some(at("2026-04-20T09:00:00Z"))));

        // The clock runs on while held: its amber fires on time.
        env.tick("2026-04-14T09:00:00Z").await;
        assert_eq!(fired(&env, "prevention_duty").await, ["amber"]);
        assert_eq!(env.task_status("HO-1", "prevention_duty").await, "on_hold");
        // Released at its date, the duty's dates have not moved.
        env.tick("2026-04-20T09:00:00Z").await;
        assert_eq!(env.task_status("HO-1", "prevention_duty").await, "active");
        let released = env.case("HO-1").await.events.into_iter().rfind(|e| e.kind == "task_released").unwrap();
        assert_eq!(released.data.0["sla_moved_working_days"], 0);
        assert_eq!(clock(&env, "HO-1", "prevention_duty").await, ("amber".into(), duty.1, duty.2));
        assert_eq!(env.case("HO-1").await.case.target_at, case_target);

        // A pausable task's hold still stops its clock and says so.
        env.ok("2026-04-20T10:00:00Z", json!({"type": "hold_task", "case_ref": "HO-1", "task": "agree_personalised_housing_plan",
            "until": "2026-04-27T09:00:00Z", "reason": "interpreter needed"})).await;
        let case = env.case("HO-1").await;
        assert_eq!(case.events.iter().rfind(|e| e.kind == "task_held").unwrap().data.0["clock_keeps_running"], false);
        let plan = case.stages[0].tasks.iter().find(|t| t.task == "agree_personalised_housing_plan").unwrap();
        assert_eq!(plan.hold_clock, Some(HoldClock::Stopped));
    }

    async fn a_target_expression_follows_the_new_facts_and_one_that_fails_leaves_the_clock(env: Env) {
        // check_exclusions' target decided by an expression over an attribute.
        let file = "definitions/home_buy/right_to_buy-england.toml";
        let text = std::fs::read_to_string(repo_path("rules").join(file)).unwrap();
        let at_task = text.find("key = \"check_exclusions\"").unwrap();
        let expr = r#"sla = { target_expr = 'if case_facts.attributes.pace == "broken" { 1 / 0 } else if case_facts.attributes.pace == "slow" { "10 working days" } else { "5 working days" }' }"#;
        let changed = format!("{}{}", &text[..at_task], text[at_task..].replacen(r#"sla = { target = "5 working days", amber = "2 working days" }"#, expr, 1));
        let (_dir, rules) = rules_with(&[(file, &changed)]);
        env.use_rules(rules);
        env.seed_organisation().await;
        let mut claim = rtb_claim("E-1", "tenant1", "freehold", "2026-01-05");
        claim["attributes"]["pace"] = json!("normal");
        env.ok("2026-01-05T09:00:00Z", claim).await;
        let tasks = ["check_property_address", "check_signatories", "check_previous_tenancies", "register_claim"];
        env.submit(&tasks.map(|t| complete("E-1", t, "off1"))).await;
        env.tick("2026-01-06T10:00:00Z").await;
        assert_eq!(clock(&env, "E-1", "check_exclusions").await.2, at("2026-01-13T10:00:00Z"));

        let pace = |p: &str| json!({"type": "update_case", "case_ref": "E-1", "attributes": {"pace": p}, "reason": "workload"});
        env.ok("2026-01-07T10:00:00Z", pace("slow")).await;
        assert_eq!(clock(&env, "E-1", "check_exclusions").await.2, at("2026-01-20T10:00:00Z"));
        // The expression fails under the next facts: the facts change, the clock stays, and a
        // rule_error says why.
        env.ok("2026-01-08T10:00:00Z", pace("broken")).await;
        assert_eq!(clock(&env, "E-1", "check_exclusions").await.2, at("2026-01-20T10:00:00Z"));
        let events = env.case("E-1").await.events;
        let failed = events.iter().rfind(|e| e.kind == "rule_error").expect("rule_error");
        assert_eq!(failed.data.0["item"], "check_exclusions");
        assert_eq!(failed.data.0["consequence"], "the item's SLA clock was left as it was when the case's facts changed");
        let updated = events.iter().rfind(|e| e.kind == "case_updated").unwrap();
        assert_eq!(updated.data.0["moved"], json!([]));
        assert_eq!(updated.data.0["changed"], json!(["attributes.pace"]));
        assert_eq!(env.case("E-1").await.updates.last().unwrap().changes.0[0]["to"], "broken");
    }
}

#[test]
fn check_reports_a_pausable_stage_over_a_statutory_notice_that_waits_for_pausable_checks() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo_path("rules"), &dir.path().join("rules"));
    copy_tree(&repo_path("templates"), &dir.path().join("templates"));
    let file = dir
        .path()
        .join("rules/definitions/home_buy/right_to_buy-england.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    // The first `pausable = false` is the eligibility stage's.
    std::fs::write(&file, text.replacen(", pausable = false }", " }", 1)).unwrap();
    let loaded = casewarden::rules::RuleSet::load(
        &dir.path().join("rules"),
        &dir.path().join("templates"),
        &casewarden::rules::Limits::default(),
    );
    let Err(problems) = loaded else {
        panic!("the rule set is refused");
    };
    let problems = problems.0;
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = &problems[0];
    assert!(p.file.ends_with("right_to_buy-england.toml"), "{p}");
    assert!(
        p.message.starts_with("stage \"eligibility\" has a pausable clock but covers task \"issue_rtb2\", whose clock is not pausable: it counts from the claim and waits for check_exclusions, confirm_qualifying_period"),
        "{p}"
    );
}
