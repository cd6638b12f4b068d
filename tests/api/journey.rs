//! A Right to Buy case from claim to completion entirely over HTTP: the organisation, the claim,
//! every task, the CRM's choice of stage, read back through the API and the event feed.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_on_both_backends;
use crate::harness::Api;

fn complete(task: &str, by: &str) -> Value {
    json!({"type": "complete_task", "case_ref": "RTB-1", "task": task, "by": by})
}

/// Completes tasks in one batch and checks each was accepted.
async fn complete_all(api: &Api, token: &str, tasks: &[&str], by: &str) {
    let batch: Vec<Value> = tasks.iter().map(|t| complete(t, by)).collect();
    let (status, body) = api.commands(token, &Value::Array(batch)).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    for r in body["results"].as_array().unwrap() {
        assert_eq!(r["status"], "accepted", "{body:#}");
    }
}

async fn case(api: &Api, token: &str) -> Value {
    let (status, body) = api.get(token, "/v1/cases/RTB-1").await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    body
}

fn open_stage(case: &Value) -> Option<String> {
    case["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == "open")
        .map(|s| s["stage"].as_str().unwrap().to_string())
}

api_on_both_backends! {
    async fn a_right_to_buy_case_goes_from_claim_to_completion_over_http(api: Api) {
        let crm = api.client("housing-crm", "commands:write,cases:read,events:read").await;
        let mut organisation = vec![
            json!({"type": "upsert_role", "ref": "home_ownership", "name": "Home ownership team"}),
            json!({"type": "upsert_role", "ref": "legal", "name": "Legal services"}),
            json!({"type": "upsert_role", "ref": "patch_north", "name": "North patch"}),
            json!({"type": "upsert_role", "ref": "managers", "name": "Team managers"}),
            json!({"type": "upsert_user", "ref": "mgr1", "name": "Morag Manager", "email": "morag@example.org", "roles": ["managers"]}),
            json!({"type": "upsert_user", "ref": "off1", "name": "Olu Officer", "email": "olu@example.org", "line_manager": "mgr1", "roles": ["home_ownership", "patch_north"]}),
            json!({"type": "upsert_user", "ref": "sol1", "name": "Sam Solicitor", "email": "sam@example.org", "line_manager": "mgr1", "roles": ["legal"]}),
        ];
        organisation.push(json!({"type": "upsert_contact", "ref": "tenant1", "name": "Tenant One", "email": "tenant1@example.net", "address": "1 Example Road"}));
        let (status, body) = api.commands(&crm, &Value::Array(organisation)).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");

        let claim = json!({
            "type": "create_case", "case_ref": "RTB-1", "kind": "home_buy", "scheme": "right_to_buy",
            "country": "england", "applicant": "tenant1", "command_id": "claim-RTB-1",
            "property": {"ref": "P-1", "address": "1 Example Road, Leeds", "tenure": "freehold"},
            "received_at": "2026-11-02", "attributes": {"qualifying_period_all_with_landlord": true, "patch": "north"}
        });
        let (status, body) = api.commands(&crm, &claim).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        assert_eq!(body["results"][0]["status"], "accepted", "{body:#}");
        // The claim's events include its allocation, made in the same pass.
        let created = case(api, &crm).await;
        assert_eq!(created["case"]["owner"], "off1", "{created:#}");
        assert_eq!(open_stage(&created).as_deref(), Some("application"));
        // Sending the claim again (a retry after a lost answer) has no second effect.
        let (_, again) = api.commands(&crm, &claim).await;
        assert_eq!(again["results"][0]["status"], "duplicate", "{again:#}");

        complete_all(api, &crm, &["check_property_address", "check_signatories", "check_previous_tenancies", "register_claim"], "off1").await;
        complete_all(api, &crm, &["check_exclusions", "confirm_qualifying_period", "issue_rtb2"], "off1").await;
        complete_all(api, &crm, &["instruct_valuer", "inspect_property", "receive_valuation"], "off1").await;
        complete_all(api, &crm, &["calculate_discount", "prepare_s125_offer", "serve_s125_offer"], "off1").await;
        complete_all(api, &crm, &["await_tenant_reply"], "off1").await;

        // The case waits for the CRM's choice of stage, on the decisions worklist.
        let waiting = case(api, &crm).await;
        assert_eq!(waiting["case"]["status"], "awaiting_advance", "{waiting:#}");
        let (status, decisions) = api.get(&crm, "/v1/worklists/decisions").await;
        assert_eq!(status, StatusCode::OK, "{decisions:#}");
        assert!(decisions.to_string().contains("RTB-1"), "{decisions:#}");
        api.commands(&crm, &json!({"type": "advance_case", "case_ref": "RTB-1", "to_stage": "offer_accepted"})).await;

        complete_all(api, &crm, &["record_acceptance", "instruct_legal"], "sol1").await;
        complete_all(api, &crm, &["agree_completion_date", "complete_sale"], "sol1").await;
        complete_all(api, &crm, &["register_discount_charge", "close_rent_account"], "sol1").await;

        let done = case(api, &crm).await;
        assert_eq!(done["case"]["status"], "completed", "{done:#}");
        // A completed case takes no more work: the rejection comes back with its reason.
        let (_, late) = api.commands(&crm, &complete("close_rent_account", "off1")).await;
        assert_eq!(late["results"][0]["status"], "rejected");
        assert!(late["results"][0]["reason"].as_str().unwrap().contains("is completed"), "{late:#}");

        // The feed gives the whole case's story in order, the commands' actor being the officer
        // or, where no officer was named, the CRM's client.
        let (status, feed) = api.get(&crm, "/v1/events?case_ref=RTB-1&limit=1000").await;
        assert_eq!(status, StatusCode::OK, "{feed:#}");
        let events = feed["events"].as_array().unwrap();
        assert_eq!(events.first().unwrap()["kind"], "case_created");
        assert_eq!(events.first().unwrap()["actor"], "housing-crm");
        assert!(events.iter().any(|e| e["kind"] == "case_completed"));
        assert!(events.iter().any(|e| e["kind"] == "task_completed" && e["actor"] == "sol1"));
        let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
