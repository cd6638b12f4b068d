//! Allocation rules: an error or a runaway loop in a rule fails that case only, with an event
//! that says why, and the case waits on the fallback role's worklist.

use serde_json::json;

use crate::helpers::{rtb_claim, rules_with};
use crate::on_both_backends;

const PICKY_RULE: &str = r#"
fn allocate(case_facts, officers) {
    if case_facts.attributes.patch == "south" {
        throw "no officer map for the south patch";
    }
    if case_facts.attributes.patch == "loop" {
        let n = 0;
        loop { n += 1; }
    }
    #{ owner: "off2", reason: "fixed choice for the test" }
}
"#;

on_both_backends! {
    async fn a_rule_that_throws_or_loops_fails_only_its_own_case(env: Env) {
        env.seed_organisation().await;
        let (_dir, rules) = rules_with(&[("allocation_right_to_buy.rhai", PICKY_RULE)]);
        env.use_rules(rules);
        let claim = |r: &str, patch: &str| {
            let mut c = rtb_claim(r, "tenant1", "freehold", "2026-01-05");
            c["attributes"]["patch"] = json!(patch);
            c
        };
        env.submit(&[claim("A-1", "south"), claim("A-2", "loop"), claim("A-3", "north")]).await;
        let outcome = env.tick("2026-01-05T09:00:00Z").await;
        assert_eq!((outcome.accepted, outcome.allocated, outcome.allocation_needed), (3, 1, 2), "{outcome}");

        let thrown = env.case("A-1").await;
        let error = thrown.events.iter().find(|e| e.kind == "rule_error").expect("rule_error event");
        let message = error.data.0["message"].as_str().unwrap();
        assert!(message.contains("no officer map for the south patch"), "{message}");
        assert!(message.contains("allocation_right_to_buy.rhai:4:"), "the position is given: {message}");
        assert_eq!(error.data.0["rule"], "allocation_right_to_buy");
        assert_eq!(thrown.case.allocation.as_str(), "needed");
        assert!(thrown.events.iter().any(|e| e.kind == "allocation_needed"));

        let looped = env.case("A-2").await;
        let error = looped.events.iter().find(|e| e.kind == "rule_error").expect("rule_error event");
        let message = error.data.0["message"].as_str().unwrap();
        assert!(message.contains("too many operations") || message.contains("deadline"), "{message}");

        let fine = env.case("A-3").await;
        assert_eq!(fine.case.owner.as_deref(), Some("off2"));
        let allocated = fine.events.iter().find(|e| e.kind == "allocated").unwrap();
        assert_eq!(allocated.data.0["reason"], "fixed choice for the test");
        assert_eq!(allocated.data.0["rule_version"].as_str().map(str::len), Some(16));
    }

    async fn a_rule_set_that_drops_a_stage_in_use_fails_commands_for_those_cases_only(env: Env) {
        env.seed_organisation().await;
        env.ok("2026-01-05T09:00:00Z", rtb_claim("A-5", "tenant1", "freehold", "2026-01-05")).await;
        let original = std::fs::read_to_string(crate::helpers::repo_path("rules/definitions/home_buy/right_to_buy-england.toml")).unwrap();
        let renamed = original.replacen("key = \"application\"", "key = \"claim_received\"", 1);
        let (_dir, rules) = rules_with(&[("definitions/home_buy/right_to_buy-england.toml", renamed.as_str())]);
        env.use_rules(rules);
        let reason = env.rejected("2026-01-06T09:00:00Z", json!({"type": "activate_task", "case_ref": "A-5", "task": "request_previous_landlord_evidence"})).await;
        assert!(reason.contains("is in stage \"application\", which definition right_to_buy-england no longer has"), "{reason}");
        // New cases under the new set go on as normal.
        env.ok("2026-01-06T09:00:00Z", rtb_claim("A-6", "tenant2", "freehold", "2026-01-06")).await;
        assert_eq!(env.open_stage("A-6").await.as_deref(), Some("claim_received"));
    }

    async fn a_rule_that_names_someone_unknown_is_an_error_not_an_allocation(env: Env) {
        env.seed_organisation().await;
        let (_dir, rules) = rules_with(&[("allocation_right_to_buy.rhai", "fn allocate(case_facts, officers) { \"ghost\" }")]);
        env.use_rules(rules);
        env.ok("2026-01-05T09:00:00Z", rtb_claim("A-4", "tenant1", "freehold", "2026-01-05")).await;
        let case = env.case("A-4").await;
        assert_eq!(case.case.owner, None);
        let error = case.events.iter().find(|e| e.kind == "rule_error").unwrap();
        assert!(error.data.0["message"].as_str().unwrap().contains("\"ghost\", which is not an active officer"));
    }
}
