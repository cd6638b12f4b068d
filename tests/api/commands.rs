//! `POST /v1/commands` and `GET /v1/commands/{id}`: queued, decided, refused.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api_on_both_backends;
use crate::harness::Api;

fn role(r: &str) -> Value {
    json!({"type": "upsert_role", "ref": r, "name": format!("Role {r}")})
}

/// Sends a raw body and returns status, content type and JSON body.
async fn raw(
    api: &Api,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, String, Value) {
    let response = api
        .request(Method::POST, token, "/v1/commands")
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    crate::harness::answer(response).await
}

api_on_both_backends! {
    async fn a_waited_command_comes_back_applied_with_its_events_and_actor(api: Api) {
        let token = api.client("dynamics-crm", "commands:write").await;
        let (status, body) = api.commands(&token, &json!([role("officers"), {"type": "nope"}, role("legal")])).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        let results = body["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!((results[0]["line"].as_u64(), results[0]["status"].as_str()), (Some(1), Some("accepted")));
        assert_eq!(results[1]["status"], "invalid");
        assert!(results[1].get("inbox_id").is_none(), "an invalid line is not queued");
        assert!(results[1]["reason"].as_str().unwrap().contains("\"nope\" is not a command"), "{body:#}");
        assert_eq!(results[2]["status"], "accepted");
        let events = results[0]["event_ids"].as_array().unwrap();
        assert_eq!(events.len(), 1, "{body:#}");

        // The command's own record: its client, and its event as the feed gives it.
        let id = results[0]["inbox_id"].as_i64().unwrap();
        let (status, outcome) = api.get(&token, &format!("/v1/commands/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{outcome:#}");
        assert_eq!(outcome["client"], "dynamics-crm");
        assert_eq!(outcome["type"], "upsert_role");
        assert_eq!(outcome["events"][0]["kind"], "role_upserted");
        assert_eq!(outcome["events"][0]["actor"], "dynamics-crm");
        assert_eq!(outcome["events"][0]["id"], events[0]);

        // Another client does not see it; admin does.
        let other = api.client("other-crm", "commands:write").await;
        assert_eq!(api.get(&other, &format!("/v1/commands/{id}")).await.0, StatusCode::NOT_FOUND);
        assert_eq!(api.get(&api.admin, &format!("/v1/commands/{id}")).await.0, StatusCode::OK);
    }

    async fn without_wait_commands_are_queued_and_answered_with_202(api: Api) {
        let token = api.client("crm-one", "commands:write").await;
        let response = api
            .request(Method::POST, &token, "/v1/commands")
            .header("content-type", "application/x-ndjson")
            .body(format!("{}\n\n{}\n", role("a"), role("b")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["results"][0]["status"], "pending");
        assert_eq!(body["results"][1]["line"], 2);
        assert!(body["results"][1]["inbox_id"].as_i64().is_some());
    }

    async fn refused_requests_write_nothing(api: Api) {
        let writer = api.client("writer", "commands:write").await;
        let reader = api.client("reader", "cases:read").await;
        let inbox = api.count("inbox").await;
        let one = serde_json::to_vec(&role("x")).unwrap();
        // 401: no token, an unknown token, a revoked one.
        let none = api.http.post(format!("{}/v1/commands", api.base)).json(&role("x")).send().await.unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(none.headers()["content-type"], "application/problem+json");
        assert_eq!(raw(api, "cw_not-a-token", "application/json", one.clone()).await.0, StatusCode::UNAUTHORIZED);
        let revoked = api.client("gone", "commands:write").await;
        casewarden::api::clients::revoke(&api.db, "gone", casewarden::clock::now()).await.unwrap();
        assert_eq!(raw(api, &revoked, "application/json", one.clone()).await.0, StatusCode::UNAUTHORIZED);
        // 403: a token without the scope.
        let (status, kind, body) = raw(api, &reader, "application/json", one.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body:#}");
        assert_eq!(kind, "application/problem+json");
        assert!(body["detail"].as_str().unwrap().contains("lacks the commands:write scope"), "{body:#}");
        // 415: not JSON.
        let (status, _, body) = raw(api, &writer, "text/plain", one.clone()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body:#}");
        // 413: a body over the limit, and more commands than a request may carry.
        let (status, _, body) = raw(api, &writer, "application/json", vec![b' '; 2 * 1024 * 1024]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body:#}");
        let many: Vec<Value> = (0..1001).map(|i| role(&format!("r{i}"))).collect();
        let (status, _, body) = raw(api, &writer, "application/json", serde_json::to_vec(&many).unwrap()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body:#}");
        assert!(body["detail"].as_str().unwrap().contains("1001 commands in one request; the limit is 1000"), "{body:#}");
        // 422: nothing fits the contract; each line has its reason.
        let (status, _, body) = raw(api, &writer, "application/x-ndjson", b"{\"type\":\"nope\"}\n[1]\n{\"type\":\"add_note\"}\n".to_vec()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:#}");
        let lines: Vec<u64> = body["errors"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
        assert_eq!(lines, vec![1, 2, 3]);
        // 400: malformed JSON, and text that is not UTF-8.
        assert_eq!(raw(api, &writer, "application/json", b"[{\"type\":".to_vec()).await.0, StatusCode::BAD_REQUEST);
        assert_eq!(raw(api, &writer, "application/json", vec![0xff, 0xfe]).await.0, StatusCode::BAD_REQUEST);
        assert_eq!(api.count("inbox").await, inbox, "a refused request queued nothing");
    }
}

/// With no time budget a pass applies one batch (`engine.batch_size`) of commands; the rest of a
/// larger request are applied by the passes that follow at once, not left for the schedule
/// (hourly here).
mod a_request_of_more_commands_than_a_pass_takes_is_applied_within_its_wait {
    use super::*;

    async fn scenario(api: &Api) {
        let token = api.client("bulk-crm", "commands:write").await;
        let many: Vec<Value> = (0..12).map(|i| role(&format!("r{i}"))).collect();
        let (status, body) = api.commands(&token, &Value::Array(many)).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        let results = body["results"].as_array().unwrap();
        assert!(
            results.iter().all(|r| r["status"] == "accepted"),
            "{body:#}"
        );
    }

    fn batches_of_five(s: &mut casewarden::settings::Settings) {
        s.engine.batch_size = 5;
        s.engine.step_budget_seconds = 0;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let api = Api::sqlite(batches_of_five).await;
        scenario(&api).await;
        api.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(api) = Api::postgres(batches_of_five).await {
            scenario(&api).await;
            api.stop().await;
        }
    }
}
