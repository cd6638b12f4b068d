//! Data for the read endpoints to read, sent as a CRM sends it: commands through the API.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::Api;

/// Sends commands in one request, asserts every one was accepted, and waits for the pass that
/// applied them to finish (allocating, making packs).
pub async fn all_ok(api: &Api, commands: Vec<Value>) {
    let (status, body) = api.commands(&api.admin, &Value::Array(commands)).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    for result in body["results"].as_array().unwrap() {
        assert_eq!(result["status"], "accepted", "{body:#}");
    }
    api.settled().await;
}

/// Roles, officers, a housing options officer, and applicants: tenant1 to tenant3 with e-mail
/// addresses, `nomail` without one.
pub async fn organisation(api: &Api) {
    let mut commands = vec![
        json!({"type": "upsert_role", "ref": "home_ownership", "name": "Home ownership team"}),
        json!({"type": "upsert_role", "ref": "legal", "name": "Legal services"}),
        json!({"type": "upsert_role", "ref": "patch_north", "name": "North patch"}),
        json!({"type": "upsert_role", "ref": "managers", "name": "Team managers"}),
        json!({"type": "upsert_role", "ref": "housing_options", "name": "Housing options team"}),
        json!({"type": "upsert_user", "ref": "mgr1", "name": "Morag Manager", "email": "morag@example.org", "roles": ["managers"]}),
        json!({"type": "upsert_user", "ref": "off1", "name": "Olu Officer", "email": "olu@example.org", "line_manager": "mgr1", "roles": ["home_ownership", "patch_north"]}),
        json!({"type": "upsert_user", "ref": "off2", "name": "Ola Officer", "email": "ola@example.org", "line_manager": "mgr1", "roles": ["home_ownership"]}),
        json!({"type": "upsert_user", "ref": "sol1", "name": "Sam Solicitor", "email": "sam@example.org", "line_manager": "mgr1", "roles": ["legal"]}),
        json!({"type": "upsert_user", "ref": "ho1", "name": "Hana Options", "email": "hana@example.org", "line_manager": "mgr1", "roles": ["housing_options"]}),
        json!({"type": "upsert_contact", "ref": "nomail", "name": "Nadia Nomail", "address": "9 Example Road"}),
    ];
    for i in 1..=3 {
        commands.push(json!({"type": "upsert_contact", "ref": format!("tenant{i}"), "name": format!("Tenant {i}"),
            "email": format!("tenant{i}@example.net"), "address": format!("{i} Example Road")}));
    }
    all_ok(api, commands).await;
}

/// A Right to Buy England claim; `north` puts it on the north patch, which off1 covers.
pub fn rtb_claim(case_ref: &str, applicant: &str, north: bool) -> Value {
    let mut claim = json!({
        "type": "create_case", "case_ref": case_ref, "kind": "home_buy", "scheme": "right_to_buy",
        "country": "england", "applicant": applicant,
        "property": {"ref": format!("P-{case_ref}"), "address": "1 Example Road, Leeds", "tenure": "freehold"},
        "received_at": "2026-01-05T09:00:00Z", "attributes": {"qualifying_period_all_with_landlord": true}
    });
    if north {
        claim["attributes"]["patch"] = json!("north");
    }
    claim
}

/// A housing options case on a workflow.
pub fn launch(case_ref: &str, workflow: &str, applicant: &str) -> Value {
    json!({"type": "create_case", "case_ref": case_ref, "kind": "housing_options", "workflow": workflow,
           "country": "england", "applicant": applicant, "received_at": "2026-03-02T09:30:00Z"})
}

/// Answers to the section 21 form that choose the unprotected-deposit advice.
pub fn section_21_answers() -> Value {
    json!({
        "safe_place_tonight": true, "has_section_21_notice": true,
        "notice_served_date": "2026-02-20", "notice_expiry_date": "2026-04-24",
        "court_papers": "none", "deposit": "not_protected", "household": "family_with_children",
        "monthly_rent": 950, "rent_arrears": 0, "income_sources": ["employment", "universal_credit"],
        "support_needs": ["none"], "contact_by_email_ok": true
    })
}

/// A housing options case with answers and its first pack made.
pub async fn housing_case_with_pack(api: &Api, case_ref: &str, applicant: &str) {
    all_ok(
        api,
        vec![
            launch(case_ref, "section_21", applicant),
            json!({"type": "submit_enquiry", "case_ref": case_ref, "answers": section_21_answers(), "by": "ho1"}),
            json!({"type": "render_pack", "case_ref": case_ref, "by": "ho1"}),
        ],
    )
    .await;
}

/// GETs a path and returns the status, the Content-Type and the JSON body (null if none).
pub async fn get(api: &Api, token: &str, path: &str) -> (StatusCode, String, Value) {
    let response = api
        .request(reqwest::Method::GET, token, path)
        .send()
        .await
        .unwrap();
    crate::harness::answer(response).await
}

/// Asserts that a request was refused with `status` as a problem document whose detail holds
/// `needle`, and returns the detail.
pub async fn refused(
    api: &Api,
    token: &str,
    path: &str,
    status: StatusCode,
    needle: &str,
) -> String {
    let (got, kind, body) = get(api, token, path).await;
    assert_eq!(got, status, "GET {path}: {body:#}");
    assert_eq!(kind, "application/problem+json", "GET {path}");
    let detail = body["detail"].as_str().unwrap_or_default().to_string();
    assert!(
        detail.contains(needle),
        "GET {path}: {needle:?} not in {detail:?}"
    );
    detail
}
