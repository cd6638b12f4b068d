//! A Welsh housing options enquiry from its form to its pack: the Housing (Wales) Act 2014's
//! workflow, form, advice and duties, and none of England's law.

use serde_json::{Value, json};

use crate::helpers::complete;
use crate::housing::seed;
use crate::on_both_backends;

fn welsh(case_ref: &str) -> Value {
    json!({"type": "create_case", "case_ref": case_ref, "kind": "housing_options", "workflow": "homelessness_assistance",
           "country": "wales", "applicant": "tenant1", "received_at": "2026-03-02T09:30:00Z"})
}

fn answers() -> Value {
    json!({"safe_place_tonight": true, "household": "pregnant", "current_home": "rented_from_private_landlord",
           "date_must_leave": "2026-04-10", "landlord_notice": true, "experiencing_abuse": false,
           "income_sources": ["employment"], "support_needs": ["none"], "contact_by_email_ok": true})
}

on_both_backends! {
    async fn a_welsh_enquiry_runs_from_its_form_to_its_pack_under_the_welsh_act(env: Env) {
        seed(&env).await;
        env.ok("2026-03-02T10:00:00Z", welsh("HW-1")).await;
        let case = env.case("HW-1").await;
        assert_eq!(case.case.definition_id, "homelessness_assistance-wales");
        assert_eq!(case.case.owner.as_deref(), Some("ho1"));
        // England's section 21 stream is not Wales's, and its duty to refer is England's.
        let reason = env.rejected("2026-03-02T10:01:00Z", json!({"type": "create_case", "case_ref": "HW-2", "kind": "housing_options",
            "workflow": "section_21", "country": "wales", "applicant": "tenant1", "received_at": "2026-03-02T09:30:00Z"})).await;
        assert!(reason.contains("section_21 is not available in wales"), "{reason}");
        let reason = env.rejected("2026-03-02T10:02:00Z", json!({"type": "record_referral", "case_ref": "HW-1",
            "source": "duty_to_refer", "authority": "Jobcentre Plus", "referred_on": "2026-03-01"})).await;
        assert!(reason.contains("the duty to refer (Housing Act 1996 s.213B) applies in England, and case HW-1 is in wales; record an agency's referral as other_agency"), "{reason}");
        // The Welsh form's questions, not England's.
        let reason = env.rejected("2026-03-02T10:03:00Z", json!({"type": "submit_enquiry", "case_ref": "HW-1",
            "answers": {"has_section_21_notice": true}})).await;
        assert!(reason.contains("has_section_21_notice: not a question of form homelessness_assistance"), "{reason}");
        env.ok("2026-03-02T10:04:00Z", json!({"type": "submit_enquiry", "case_ref": "HW-1", "answers": answers()})).await;

        env.ok("2026-03-02T15:00:00Z", complete("HW-1", "triage", "ho1")).await;
        env.ok("2026-03-09T11:00:00Z", complete("HW-1", "assessment", "ho1")).await;
        assert_eq!(env.task_status("HW-1", "prevention_duty").await, "active");
        // The s.66 duty started at triage: its 56 days count from then.
        env.ok("2026-03-09T11:05:00Z", json!({"type": "record_duty", "case_ref": "HW-1", "duty": "prevention", "start_date": "2026-03-03"})).await;
        let case = env.case("HW-1").await;
        let task = case.stages.iter().flat_map(|s| &s.tasks).find(|t| t.task == "prevention_duty").unwrap();
        assert_eq!(task.target_at.map(|t| t.to_rfc3339()).as_deref(), Some("2026-04-28T08:00:00+00:00"));
        env.ok("2026-03-09T11:10:00Z", json!({"type": "record_referral", "case_ref": "HW-1", "source": "other_agency",
            "authority": "Cardiff Probation", "referred_on": "2026-03-01"})).await;
        env.ok("2026-03-10T09:00:00Z", json!({"type": "record_plan_step", "case_ref": "HW-1", "step_ref": "w1", "for": "applicant",
            "step": "Send us the notice from your landlord", "agreed_on": "2026-03-10", "review_on": "2026-03-17"})).await;
        env.ok("2026-03-10T09:05:00Z", complete("HW-1", "agree_housing_plan", "ho1")).await;
        assert_eq!(env.task_status("HW-1", "issue_housing_pack").await, "completed");

        let case = env.case("HW-1").await;
        let rendered = case.events.iter().find(|e| e.kind == "pack_rendered").unwrap();
        let chosen: Vec<String> = serde_json::from_value(rendered.data.0["statements"].clone()).unwrap();
        assert_eq!(chosen, ["wal_told_to_leave_within_56_days", "wal_what_happens_next", "wal_our_duties", "wal_your_part_in_the_plan",
                            "wal_asking_for_a_review", "wal_families_and_pregnancy", "wal_landlord_notice", "gen_check_benefits",
                            "wal_advice_contacts"]);
        let file = case.attachments.iter().find(|a| a.uri.ends_with(".txt")).unwrap();
        let text = std::fs::read_to_string(file.uri.strip_prefix("file://").unwrap()).unwrap();
        for expected in [
            "The steps agreed with you after we assessed your case (section 62 of the Housing (Wales) Act 2014), and the duties we owe you.",
            "- Duty to help to prevent homelessness (Housing (Wales) Act 2014, s.66): started Tuesday 3 March 2026",
            "- Send us the notice from your landlord (agreed Tuesday 10 March 2026; we will review it by Tuesday 17 March 2026; agreed)",
            "we must help to prevent you from becoming homeless (section 66 of the Housing (Wales) Act 2014)",
            "we must help to secure accommodation for you (section 73)",
            "Shelter Cymru",
        ] {
            assert!(text.contains(expected), "{expected:?} not in\n{text}");
        }
        for england in ["Housing Act 1996", "189A", "s.195", "england.shelter.org.uk"] {
            assert!(!text.contains(england), "{england:?} in a Welsh pack:\n{text}");
        }
        assert!(case.to_text().contains("prevention Duty to help to prevent homelessness (Housing (Wales) Act 2014, s.66)  started 2026-03-03  open"), "{}", case.to_text());
    }
}
