//! The quarterly extract of duty records (`report duties --quarter`): one row per case with a
//! duty open at some time in the quarter, with the H-CLIC fields casewarden holds, exactly.

use serde_json::json;

use crate::helpers::{Env, complete};
use crate::housing::{launch, seed, valid_answers};
use crate::on_both_backends;

fn launched(case_ref: &str, workflow: &str, country: &str, received: &str) -> serde_json::Value {
    let mut c = launch(case_ref, workflow);
    c["country"] = json!(country);
    c["received_at"] = json!(received);
    c
}

fn duty(case_ref: &str, duty: &str, start: &str) -> serde_json::Value {
    json!({"type": "record_duty", "case_ref": case_ref, "duty": duty, "start_date": start})
}

async fn extract(env: &Env, quarter: &str) -> String {
    casewarden::report::duties_csv(&env.db, quarter.parse().unwrap())
        .await
        .unwrap()
}

on_both_backends! {
    async fn the_quarterly_extract_lists_each_case_with_a_duty_open_in_the_quarter(env: Env) {
        seed(&env).await;
        // HO-Q2: a prevention duty that ended in the first quarter.
        env.ok("2026-01-05T10:00:00Z", launched("HO-Q2", "domestic_abuse", "england", "2026-01-05T09:00:00Z")).await;
        env.ok("2026-03-21T10:00:00Z", duty("HO-Q2", "prevention", "2026-01-06")).await;
        env.ok("2026-03-21T10:01:00Z", json!({"type": "record_duty", "case_ref": "HO-Q2", "duty": "prevention",
            "end_date": "2026-03-20", "end_reason": "Secured accommodation for 6 months or more"})).await;
        // HO-Q1: referred, assessed, answers on record, a plan, prevention ended in April and
        // relief open since.
        env.ok("2026-03-02T10:00:00Z", launch("HO-Q1", "section_21")).await;
        env.ok("2026-03-02T15:00:00Z", complete("HO-Q1", "triage", "ho1")).await;
        env.ok("2026-03-10T11:00:00Z", complete("HO-Q1", "assessment", "ho1")).await;
        env.ok("2026-03-10T11:05:00Z", json!({"type": "submit_enquiry", "case_ref": "HO-Q1", "answers": valid_answers()})).await;
        env.ok("2026-03-10T11:10:00Z", json!({"type": "record_referral", "case_ref": "HO-Q1", "source": "duty_to_refer",
            "authority": "Probation Service, Leeds", "referred_on": "2026-03-01"})).await;
        env.ok("2026-03-10T11:15:00Z", duty("HO-Q1", "prevention", "2026-03-10")).await;
        for (r, owner, status) in [("a1", "applicant", "agreed"), ("a2", "applicant", "done"), ("c1", "council", "agreed"), ("c2", "council", "withdrawn")] {
            env.ok("2026-03-11T09:00:00Z", json!({"type": "record_plan_step", "case_ref": "HO-Q1", "step_ref": r, "for": owner,
                "step": format!("step {r}"), "agreed_on": "2026-03-11", "status": status})).await;
        }
        env.ok("2026-04-21T10:00:00Z", json!({"type": "record_duty", "case_ref": "HO-Q1", "duty": "prevention",
            "end_date": "2026-04-20", "end_reason": "Homeless: relief duty owed"})).await;
        env.ok("2026-04-21T10:01:00Z", duty("HO-Q1", "relief", "2026-04-20")).await;
        // HO-Q3, in Wales: its duty starts on the quarter's last day; an agency's name that a
        // spreadsheet would run as a formula is kept as text.
        env.ok("2026-06-30T10:00:00Z", launched("HO-Q3", "homelessness_assistance", "wales", "2026-06-29T09:00:00Z")).await;
        env.ok("2026-06-30T10:01:00Z", json!({"type": "record_referral", "case_ref": "HO-Q3", "source": "other_agency",
            "authority": "=cmd|' /C calc'!A0", "referred_on": "2026-06-29"})).await;
        env.ok("2026-06-30T10:02:00Z", duty("HO-Q3", "prevention", "2026-06-30")).await;
        // HO-Q4: a duty from the third quarter only.
        env.ok("2026-07-01T10:00:00Z", launched("HO-Q4", "section_21", "england", "2026-07-01T09:00:00Z")).await;
        env.ok("2026-07-01T10:01:00Z", duty("HO-Q4", "prevention", "2026-07-01")).await;

        let header = "case_ref,country,workflow,approach_date,referral_source,referral_authority,referral_date,assessment_date,\
            household_type,support_needs,prevention_duty_start,prevention_duty_end,prevention_duty_end_reason,\
            relief_duty_start,relief_duty_end,relief_duty_end_reason,main_duty_start,main_duty_end,main_duty_end_reason,\
            plan_steps_applicant,plan_steps_council\n";
        assert_eq!(
            extract(&env, "2026Q2").await,
            format!("{header}\
                HO-Q1,england,section_21,2026-03-02,duty_to_refer,\"Probation Service, Leeds\",2026-03-01,2026-03-10,family_with_children,none,\
                2026-03-10,2026-04-20,Homeless: relief duty owed,2026-04-20,,,,,,2,1\n\
                HO-Q3,wales,homelessness_assistance,2026-06-29,other_agency,'=cmd|' /C calc'!A0,2026-06-29,,,,2026-06-30,,,,,,,,,0,0\n")
        );
        let cases = |csv: String| -> Vec<String> {
            csv.lines().skip(1).map(|l| l.split(',').next().unwrap().to_string()).collect()
        };
        assert_eq!(cases(extract(&env, "2026Q1").await), ["HO-Q1", "HO-Q2"]);
        assert_eq!(cases(extract(&env, "2026Q3").await), ["HO-Q1", "HO-Q3", "HO-Q4"]);
        assert_eq!(extract(&env, "2025Q4").await, header);
        assert_eq!(
            casewarden::report::DUTY_RETURN_COLUMNS.join(",") + "\n",
            header
        );
    }
}
