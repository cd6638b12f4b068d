//! Homelessness duties on record: a duty, a referral and the personalised housing plan's steps
//! recorded, shown and printed in the housing pack as the written plan; the duty's clock counting
//! from its recorded start date; and bad records refused with their reasons.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::helpers::{Env, complete, rtb_claim, rules_with};
use crate::housing::{launch, seed, valid_answers};
use crate::on_both_backends;

fn duty(case_ref: &str, duty: &str, start: &str) -> Value {
    json!({"type": "record_duty", "case_ref": case_ref, "duty": duty, "start_date": start, "by": "ho1"})
}

fn step(case_ref: &str, step_ref: &str, owner: &str, text: &str, agreed: &str) -> Value {
    json!({"type": "record_plan_step", "case_ref": case_ref, "step_ref": step_ref, "for": owner,
           "step": text, "agreed_on": agreed, "by": "ho1"})
}

/// A task's SLA dates and state.
async fn clock(
    env: &Env,
    case_ref: &str,
    task: &str,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>, String) {
    let case = env.case(case_ref).await;
    let t = case
        .stages
        .iter()
        .flat_map(|s| &s.tasks)
        .find(|t| t.task == task)
        .unwrap()
        .clone();
    (t.target_at, t.amber_at, t.sla_state.as_str().to_string())
}

fn at(s: &str) -> Option<DateTime<Utc>> {
    Some(s.parse().unwrap())
}

/// The text file of the case's latest pack.
fn pack_text(case: &casewarden::report::CaseReport, ext: &str) -> String {
    let file = case
        .attachments
        .iter()
        .rev()
        .find(|a| a.uri.ends_with(ext))
        .unwrap();
    std::fs::read_to_string(file.uri.strip_prefix("file://").unwrap()).unwrap()
}

/// Launches a section 21 case whose assessment is done on 10 March, starting its prevention
/// duty's task then.
async fn assessed(env: &Env, case_ref: &str) {
    env.ok("2026-03-02T10:00:00Z", launch(case_ref, "section_21"))
        .await;
    env.ok("2026-03-02T15:00:00Z", complete(case_ref, "triage", "ho1"))
        .await;
    env.ok(
        "2026-03-10T11:00:00Z",
        complete(case_ref, "assessment", "ho1"),
    )
    .await;
}

on_both_backends! {
    async fn a_duty_a_referral_and_plan_steps_are_recorded_shown_and_printed_in_the_pack(env: Env) {
        seed(&env).await;
        assessed(&env, "HO-D1").await;
        // Activated at the assessment: 56 days from 10 March, 11:00 GMT.
        assert_eq!(clock(&env, "HO-D1", "prevention_duty").await.0, at("2026-05-05T10:00:00Z"));

        // The duty started on 6 March: its clock now counts from that day (09:00 London).
        env.ok("2026-03-10T12:00:00Z", duty("HO-D1", "prevention", "2026-03-06")).await;
        let (target, amber, state) = clock(&env, "HO-D1", "prevention_duty").await;
        assert_eq!((target, amber, state.as_str()), (at("2026-05-01T08:00:00Z"), at("2026-04-17T08:00:00Z"), "on_track"));
        let case = env.case("HO-D1").await;
        let recorded = case.events.iter().find(|e| e.kind == "duty_recorded").unwrap();
        assert_eq!(recorded.actor, "ho1");
        assert_eq!(recorded.data.0, json!({"duty_id": recorded.data.0["duty_id"], "duty": "prevention",
            "start_date": "2026-03-06", "end_date": null, "end_reason_changed": false,
            "previous_start_date": null, "previous_end_date": null,
            "clock": {"task": "prevention_duty", "target_at": "2026-05-01T08:00:00Z", "amber_at": "2026-04-17T08:00:00Z",
                      "previous_target_at": "2026-05-05T10:00:00Z"}}));
        let moved = case.events.iter().rev().find(|e| e.kind == "case_target_changed").unwrap();
        assert_eq!(moved.data.0["because"], "record_duty");

        env.ok("2026-03-10T12:05:00Z", json!({"type": "record_referral", "case_ref": "HO-D1", "source": "duty_to_refer",
            "authority": "Jobcentre Plus", "referred_on": "2026-02-27"})).await;
        env.ok("2026-03-11T09:00:00Z", step("HO-D1", "s1", "applicant", "Ask the landlord for two more months", "2026-03-11")).await;
        env.ok("2026-03-11T09:01:00Z", step("HO-D1", "s2", "council", "Check that the section 21 notice is valid", "2026-03-11")).await;
        env.ok("2026-03-11T09:02:00Z", step("HO-D1", "s3", "applicant", "Apply to the housing register", "2026-03-11")).await;
        // An update by the CRM's reference changes only what it gives.
        env.ok("2026-03-11T09:03:00Z", json!({"type": "record_plan_step", "case_ref": "HO-D1", "step_ref": "s1", "review_on": "2026-03-25"})).await;
        env.ok("2026-03-11T09:04:00Z", json!({"type": "record_plan_step", "case_ref": "HO-D1", "step_ref": "s3", "status": "withdrawn"})).await;

        // The plan agreed with answers on record: the same pass makes the pack, which prints the
        // applicant's duties and steps.
        env.ok("2026-03-11T10:00:00Z", json!({"type": "submit_enquiry", "case_ref": "HO-D1", "answers": valid_answers()})).await;
        env.ok("2026-03-11T10:05:00Z", complete("HO-D1", "agree_personalised_housing_plan", "ho1")).await;
        let case = env.case("HO-D1").await;
        assert_eq!(case.housing.as_ref().unwrap().packs.len(), 1);
        let text = pack_text(&case, ".txt");
        let plan = "== YOUR PERSONALISED HOUSING PLAN ==\n\
            Your personalised housing plan (section 189A of the Housing Act 1996): the steps you and we have agreed to take, and the duties we owe you. We keep it under review with you.\n\n\
            Our duties to you\n\
            - Prevention duty (Housing Act 1996, s.195): started Friday 6 March 2026\n\n\
            Steps you will take\n\
            - Ask the landlord for two more months (agreed Wednesday 11 March 2026; we will review it by Wednesday 25 March 2026; agreed)\n\n\
            Steps we will take\n\
            - Check that the section 21 notice is valid (agreed Wednesday 11 March 2026; agreed)\n";
        assert!(text.contains(plan), "{text}");
        assert!(!text.contains("Apply to the housing register"), "a withdrawn step is not in the written plan: {text}");
        let html = pack_text(&case, ".html");
        assert!(html.contains("<h3>Steps you will take</h3>") && html.contains("<li>Check that the section 21 notice is valid"), "{html}");

        // A step done, then the duty ended: its start is kept, its clock left alone.
        env.ok("2026-03-20T10:00:00Z", json!({"type": "record_plan_step", "case_ref": "HO-D1", "step_ref": "s1", "status": "done"})).await;
        env.ok("2026-04-21T10:00:00Z", json!({"type": "record_duty", "case_ref": "HO-D1", "duty": "prevention",
            "end_date": "2026-04-20", "end_reason": "Secured accommodation for 6 months or more"})).await;
        let case = env.case("HO-D1").await;
        let last = |kind: &str| case.events.iter().rev().find(|e| e.kind == kind).unwrap().data.0.clone();
        let step_event = last("plan_step_recorded");
        assert_eq!((step_event["status"].clone(), step_event["previous_status"].clone(), step_event["created"].clone(), step_event["text_changed"].clone()),
                   (json!("done"), json!("agreed"), json!(false), json!(false)));
        let ended = last("duty_recorded");
        assert_eq!((ended["start_date"].clone(), ended["end_date"].clone(), ended["previous_start_date"].clone(), ended["clock"].clone(), ended["end_reason_changed"].clone()),
                   (json!("2026-03-06"), json!("2026-04-20"), json!("2026-03-06"), Value::Null, json!(true)));
        assert_eq!(clock(&env, "HO-D1", "prevention_duty").await.0, at("2026-05-01T08:00:00Z"));

        // show case, as text and as JSON.
        let shown = case.to_text();
        for line in [
            "  prevention Prevention duty (Housing Act 1996, s.195)  started 2026-03-06  ended 2026-04-20: Secured accommodation for 6 months or more",
            "  referral   duty_to_refer on 2026-02-27 by Jobcentre Plus",
            "  [s1] applicant done      agreed 2026-03-11  review 2026-03-25",
            "      Ask the landlord for two more months",
            "  [s3] applicant withdrawn agreed 2026-03-11  review -",
        ] {
            assert!(shown.contains(line), "{line:?} not in\n{shown}");
        }
        let json = serde_json::to_value(&case).unwrap();
        let record = &json["housing"]["duties"];
        assert_eq!(record["duties"][0]["end_reason"], "Secured accommodation for 6 months or more");
        assert_eq!(record["referral"], json!({"source": "duty_to_refer", "authority": "Jobcentre Plus", "referred_on": "2026-02-27"}));
        assert_eq!(record["plan"].as_array().unwrap().iter().map(|s| (s["step_ref"].clone(), s["for"].clone(), s["status"].clone())).collect::<Vec<_>>(),
                   vec![(json!("s1"), json!("applicant"), json!("done")), (json!("s2"), json!("council"), json!("agreed")), (json!("s3"), json!("applicant"), json!("withdrawn"))]);
        // The free text stays in the tables: no event carries it.
        for e in env.all_events().await {
            let data = e.data.0.to_string();
            for text in ["Jobcentre", "Ask the landlord", "Secured accommodation", "section 21 notice is valid"] {
                assert!(!data.contains(text), "event #{} ({}) carries {text:?}: {data}", e.id, e.kind);
            }
        }
    }

    async fn a_duty_clock_counts_from_the_recorded_start_and_fires_what_is_then_due(env: Env) {
        seed(&env).await;
        assessed(&env, "HO-D2").await;
        let (target, amber, _) = clock(&env, "HO-D2", "prevention_duty").await;
        assert_eq!((target, amber), (at("2026-05-05T10:00:00Z"), at("2026-04-21T10:00:00Z")));
        let amber_events = || async {
            env.case("HO-D2").await.events.into_iter()
                .filter(|e| e.kind == "sla_amber" && e.data.0["key"] == "prevention_duty").count()
        };
        env.tick("2026-04-14T09:00:00Z").await;
        assert_eq!(amber_events().await, 0);
        // Recorded late: the duty started on 2 March, so its amber warning (13 April) is already
        // due, and the pass that records it fires it, once.
        env.ok("2026-04-14T10:00:00Z", duty("HO-D2", "prevention", "2026-03-02")).await;
        let (target, amber, state) = clock(&env, "HO-D2", "prevention_duty").await;
        assert_eq!((target, amber, state.as_str()), (at("2026-04-27T08:00:00Z"), at("2026-04-13T08:00:00Z"), "amber"));
        assert_eq!(amber_events().await, 1);
        env.tick("2026-04-14T11:00:00Z").await;
        assert_eq!(amber_events().await, 1, "fired once");
        // The target itself comes on the new date.
        env.tick("2026-04-27T08:00:00Z").await;
        assert_eq!(clock(&env, "HO-D2", "prevention_duty").await.2, "exceeded");

        // A duty recorded before its task starts sets the task's clock when it starts.
        env.ok("2026-04-14T12:00:00Z", duty("HO-D2", "relief", "2026-04-14")).await;
        env.ok("2026-04-16T10:00:00Z", json!({"type": "activate_task", "case_ref": "HO-D2", "task": "relief_duty"})).await;
        let (target, amber, _) = clock(&env, "HO-D2", "relief_duty").await;
        assert_eq!((target, amber), (at("2026-06-09T08:00:00Z"), at("2026-05-26T08:00:00Z")));
        // Correcting the start moves the running clock again, and says from where.
        env.ok("2026-04-16T11:00:00Z", duty("HO-D2", "relief", "2026-04-15")).await;
        assert_eq!(clock(&env, "HO-D2", "relief_duty").await.0, at("2026-06-10T08:00:00Z"));
        let last = env.case("HO-D2").await.events.into_iter().rev().find(|e| e.kind == "duty_recorded").unwrap();
        assert_eq!(last.data.0["previous_start_date"], "2026-04-14");
        assert_eq!(last.data.0["clock"]["previous_target_at"], "2026-06-09T08:00:00Z");
    }

    async fn a_held_duty_task_recorded_late_keeps_its_clock_running_and_fires_on_time(env: Env) {
        seed(&env).await;
        assessed(&env, "HO-D5").await;
        // The duty's clock is one the law does not pause: held, it still runs.
        env.ok("2026-04-01T10:00:00Z", json!({"type": "hold_task", "case_ref": "HO-D5", "task": "prevention_duty",
            "until": "2026-05-20T10:00:00Z", "reason": "waiting for the landlord"})).await;
        // Recorded late while held: its amber warning (13 April) is due, and fires at once.
        env.ok("2026-04-14T10:00:00Z", duty("HO-D5", "prevention", "2026-03-02")).await;
        let (target, amber, state) = clock(&env, "HO-D5", "prevention_duty").await;
        assert_eq!((target, amber, state.as_str()), (at("2026-04-27T08:00:00Z"), at("2026-04-13T08:00:00Z"), "amber"));
        assert_eq!(env.task_status("HO-D5", "prevention_duty").await, "on_hold");
        // And the target passes while it is still held.
        env.tick("2026-04-27T08:00:00Z").await;
        assert_eq!(clock(&env, "HO-D5", "prevention_duty").await.2, "exceeded");
    }

    async fn amending_a_fact_a_duty_clock_depends_on_counts_from_the_recorded_start(env: Env) {
        // A workflow whose prevention duty runs longer for a case the authority marks complex.
        let path = "definitions/housing_options/section_21-england.toml";
        let shipped = std::fs::read_to_string(crate::common::repo_path("rules").join(path)).unwrap();
        let from = "sla = { target = \"56 days\", amber = \"14 days\", follow_on = \"7 days\", follow_on_limit = 4, pausable = false }";
        assert!(shipped.contains(from), "the shipped definition changed: update this test");
        let by_fact = "sla = { target_by = { fact = \"complex\", values = { \"true\" = \"70 days\" }, default = \"56 days\" }, amber = \"14 days\", pausable = false }";
        let (_dir, rules) = rules_with(&[(path, &shipped.replacen(from, by_fact, 1))]);
        env.use_rules(rules);
        seed(&env).await;
        assessed(&env, "HO-D6").await;
        env.ok("2026-03-12T10:00:00Z", duty("HO-D6", "prevention", "2026-03-02")).await;
        assert_eq!(clock(&env, "HO-D6", "prevention_duty").await.0, at("2026-04-27T08:00:00Z"), "56 days from 2 March");
        // Marked complex: 70 days, still from the duty's start, not from the task's activation.
        env.ok("2026-03-13T10:00:00Z", json!({"type": "update_case", "case_ref": "HO-D6", "attributes": {"complex": true},
            "reason": "two households", "by": "ho1"})).await;
        assert_eq!(clock(&env, "HO-D6", "prevention_duty").await.0, at("2026-05-11T08:00:00Z"), "70 days from 2 March");
    }

    async fn a_duty_recorded_before_its_task_starts_moves_the_case_target_from_its_start(env: Env) {
        seed(&env).await;
        env.ok("2026-03-02T10:00:00Z", launch("HO-D4", "section_21")).await;
        env.ok("2026-03-02T15:00:00Z", complete("HO-D4", "triage", "ho1")).await;
        let target = |case: casewarden::report::CaseReport| {
            (case.case.target_at.map(|t| t.to_rfc3339()).unwrap_or_default(), case.housing.unwrap().target_path)
        };
        // The prevention duty waits for the assessment (10 working days), then runs 56 days.
        assert_eq!(target(env.case("HO-D4").await), ("2026-05-18T14:00:00+00:00".to_string(),
            vec!["triage".to_string(), "assessment".into(), "prevention_duty".into(), "close_duty".into()]));
        // Accepted at triage: its 56 days run from 3 March, so the plan's review sets the target.
        env.ok("2026-03-03T10:00:00Z", duty("HO-D4", "prevention", "2026-03-03")).await;
        let case = env.case("HO-D4").await;
        assert_eq!(case.events.iter().rev().find(|e| e.kind == "case_target_changed").unwrap().data.0["because"], "record_duty");
        assert_eq!(target(case), ("2026-05-11T14:00:00+00:00".to_string(),
            vec!["triage".to_string(), "assessment".into(), "agree_personalised_housing_plan".into(), "review_plan".into(), "close_duty".into()]));
    }

    async fn bad_duty_records_are_refused_with_their_reasons_and_change_nothing(env: Env) {
        seed(&env).await;
        env.ok("2026-03-02T10:00:00Z", launch("HO-D3", "section_21")).await;
        let refused = |command: Value, now: &'static str| {
            let env = &env;
            async move { env.rejected(now, command).await }
        };
        for (command, expected) in [
            (json!({"type": "record_duty", "case_ref": "HO-D3", "duty": "interim", "start_date": "2026-03-05"}),
             "record_duty: duty \"interim\" is not one of: prevention, relief, main"),
            (json!({"type": "record_duty", "case_ref": "HO-D3", "duty": "relief", "start_date": "2026-03-06", "end_date": "2026-03-05", "end_reason": "x"}),
             "record_duty: end_date 2026-03-05 is before start_date 2026-03-06: a duty ends on or after the day it starts"),
            (json!({"type": "record_duty", "case_ref": "HO-D3", "duty": "relief", "end_date": "2026-03-09", "end_reason": "Homelessness relieved"}),
             "missing field `start_date`: the relief duty is not on record for case HO-D3 yet; give the day it started"),
            (duty("HO-D3", "prevention", "2026-03-11"), "start_date 2026-03-11 is after today (2026-03-10): record a duty once it has started"),
            (duty("HO-D3", "prevention", "2026-03-01"), "start_date 2026-03-01 is before case HO-D3 was received (2026-03-02)"),
            (json!({"type": "record_duty", "case_ref": "HO-D3", "duty": "main", "start_date": "2026-03-05", "by": "nobody"}),
             "by: unknown user \"nobody\"; send upsert_user first"),
            (json!({"type": "record_duty", "case_ref": "HO-D9", "duty": "main", "start_date": "2026-03-05"}), "unknown case \"HO-D9\""),
            (json!({"type": "record_plan_step", "case_ref": "HO-D3", "step_ref": "s9", "for": "council"}),
             "step_ref \"s9\" is a new step of case HO-D3: give for, step and agreed_on (missing: step, agreed_on)"),
            (step("HO-D3", "s9", "council", "Call the landlord", "2026-03-12"), "agreed_on 2026-03-12 is after today (2026-03-10)"),
            (json!({"type": "record_referral", "case_ref": "HO-D3", "source": "self", "referred_on": "2026-03-11"}),
             "referred_on 2026-03-11 is after today (2026-03-10)"),
        ] {
            let reason = refused(command.clone(), "2026-03-10T10:00:00Z").await;
            assert!(reason.contains(expected), "{command}: {reason}");
        }
        // An end before the start on record is refused too.
        env.ok("2026-03-10T10:00:00Z", duty("HO-D3", "prevention", "2026-03-06")).await;
        let reason = refused(json!({"type": "record_duty", "case_ref": "HO-D3", "duty": "prevention",
            "end_date": "2026-03-05", "end_reason": "Homelessness prevented"}), "2026-03-10T10:05:00Z").await;
        assert!(reason.contains("end_date 2026-03-05 is before start_date 2026-03-06"), "{reason}");
        // Not for home buy cases, and not once the case is closed.
        env.ok("2026-03-10T11:00:00Z", rtb_claim("RTB-D1", "tenant2", "freehold", "2026-03-02T09:00:00Z")).await;
        let reason = refused(duty("RTB-D1", "prevention", "2026-03-06"), "2026-03-10T11:05:00Z").await;
        assert!(reason.contains("case RTB-D1 is a home_buy case; record_duty is for housing options cases"), "{reason}");
        env.ok("2026-03-10T12:00:00Z", json!({"type": "close_case", "case_ref": "HO-D3", "outcome": "withdrawn"})).await;
        for command in [
            duty("HO-D3", "relief", "2026-03-06"),
            step("HO-D3", "s1", "council", "Call the landlord", "2026-03-10"),
            json!({"type": "record_referral", "case_ref": "HO-D3", "source": "self", "referred_on": "2026-03-02"}),
        ] {
            let reason = refused(command.clone(), "2026-03-10T12:05:00Z").await;
            assert!(reason.contains("case HO-D3 is closed (outcome: withdrawn); it takes no more changes"), "{command}: {reason}");
        }
        let (duties,): (i64,) = casewarden::db::sql("SELECT COUNT(*) FROM duties").fetch_one(&env.db).await.unwrap();
        let (steps,): (i64,) = casewarden::db::sql("SELECT COUNT(*) FROM plan_steps").fetch_one(&env.db).await.unwrap();
        assert_eq!((duties, steps), (1, 0));
    }
}
