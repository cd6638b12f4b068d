//! The `admin` endpoints: the outbox with its mail server, requeueing a dead notification, and
//! the rule set in force.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api_on_both_backends;
use crate::harness::Api;
use crate::seed::{self, get, refused};

/// POSTs to a path and returns the status, the Content-Type and the JSON body.
async fn post(api: &Api, token: &str, path: &str) -> (StatusCode, String, Value) {
    let response = api.request(Method::POST, token, path).send().await.unwrap();
    crate::harness::answer(response).await
}

fn notification<'a>(outbox: &'a Value, case_ref: &str) -> &'a Value {
    outbox["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["case_ref"] == case_ref)
        .unwrap_or_else(|| panic!("no notification for {case_ref} in {outbox:#}"))
}

api_on_both_backends! {
    async fn the_outbox_shows_notifications_and_a_dead_one_is_requeued_by_its_client(api: Api) {
        seed::organisation(api).await;
        // Each pack goes to its applicant: tenant1 has an address, nomail has none, so that
        // notification is dead from the start.
        seed::housing_case_with_pack(api, "HO-1", "tenant1").await;
        seed::housing_case_with_pack(api, "HO-2", "nomail").await;
        let ops = api.client("ops-console", "admin").await;

        let (status, _, outbox) = get(api, &ops, "/v1/outbox").await;
        assert_eq!(status, StatusCode::OK, "{outbox:#}");
        let expected = casewarden::report::outbox(&api.db, None, 100).await.unwrap();
        assert_eq!(outbox["notifications"], serde_json::to_value(&expected).unwrap(), "as `outbox --json`");
        assert_eq!(outbox["mail_server"], Value::Null, "the file transport is always reachable");
        let dead = notification(&outbox, "HO-2");
        assert_eq!((&dead["status"], &dead["template"]), (&json!("dead"), &json!("housing_pack")));
        let dead_id = dead["id"].as_i64().unwrap();
        let live_id = notification(&outbox, "HO-1")["id"].as_i64().unwrap();

        let (_, _, only_dead) = get(api, &ops, "/v1/outbox?status=dead&limit=1").await;
        let ids: Vec<&Value> = only_dead["notifications"].as_array().unwrap().iter().map(|n| &n["id"]).collect();
        assert_eq!(ids, [&json!(dead_id)]);
        refused(api, &ops, "/v1/outbox?status=lost", StatusCode::BAD_REQUEST, "status: unknown variant `lost`").await;
        refused(api, &ops, "/v1/outbox?limit=1001", StatusCode::BAD_REQUEST, "limit 1001 is out of range: ask for 1 to 1000").await;

        // An outage the last pass recorded is shown beside the rows.
        let at = casewarden::clock::parse_time("2026-11-02T09:00:00Z").unwrap();
        casewarden::mail::status::unreachable(&api.db, at, "connection refused").await.unwrap();
        let (_, _, outbox) = get(api, &ops, "/v1/outbox").await;
        assert_eq!(outbox["mail_server"]["unreachable_since"], "2026-11-02T09:00:00Z");
        assert_eq!(outbox["mail_server"]["last_error"], "connection refused");

        // Requeued under the client's name; one that is not dead, or not there, is refused.
        let (status, _, requeued) = post(api, &ops, &format!("/v1/outbox/{dead_id}/retry")).await;
        assert_eq!(status, StatusCode::OK, "{requeued:#}");
        assert_eq!(requeued["id"], dead_id);
        api.settled().await;
        let (_, _, case) = get(api, &ops, "/v1/cases/HO-2").await;
        let event = case["events"].as_array().unwrap().iter().find(|e| e["kind"] == "notification_requeued").expect("requeued event");
        assert_eq!((&event["actor"], &event["data"]["outbox_id"]), (&json!("ops-console"), &json!(dead_id)));
        let (status, kind, body) = post(api, &ops, &format!("/v1/outbox/{live_id}/retry")).await;
        assert_eq!((status, kind.as_str()), (StatusCode::CONFLICT, "application/problem+json"), "{body:#}");
        assert!(body["detail"].as_str().unwrap().contains(&format!("notification {live_id} is ")), "{body:#}");
        let (status, _, body) = post(api, &ops, "/v1/outbox/999999/retry").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body:#}");
        assert_eq!(body["detail"], "there is no notification 999999");
        let (status, _, body) = post(api, &ops, "/v1/outbox/first/retry").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
        assert!(body["detail"].as_str().unwrap().contains("id \"first\" is not a whole number"), "{body:#}");
    }

    async fn the_rules_endpoint_names_the_set_in_force(api: Api) {
        let ops = api.client("ops-console", "admin").await;
        let (status, _, rules) = get(api, &ops, "/v1/rules").await;
        assert_eq!(status, StatusCode::OK, "{rules:#}");
        let settings = crate::harness::settings("sqlite::memory:", api.dir.path());
        let loaded = casewarden::startup::load_rules(&settings).unwrap();
        assert_eq!(rules["hash"], loaded.hash.as_str());
        let loaded_at = casewarden::clock::parse_time(rules["loaded_at"].as_str().unwrap()).unwrap();
        assert!(loaded_at <= casewarden::clock::now());
        assert_eq!(rules["last_rejected"], Value::Null);
    }

    async fn admin_endpoints_refuse_clients_without_the_admin_scope(api: Api) {
        let reader = api.client("crm-reader", "cases:read,commands:write,events:read").await;
        for path in ["/v1/outbox", "/v1/rules"] {
            refused(api, &reader, path, StatusCode::FORBIDDEN, "lacks the admin scope").await;
        }
        let (status, kind, body) = post(api, &reader, "/v1/outbox/1/retry").await;
        assert_eq!((status, kind.as_str()), (StatusCode::FORBIDDEN, "application/problem+json"), "{body:#}");
    }
}
