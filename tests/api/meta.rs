//! The endpoints about the API itself: its description and its health.

use reqwest::StatusCode;
use serde_json::Value;

use crate::api_on_both_backends;
use crate::common::repo_path;

api_on_both_backends! {
    async fn the_served_description_is_the_published_one_and_needs_no_token(api: Api) {
        let response = api.http.get(format!("{}/v1/openapi.json", api.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let served: Value = response.json().await.unwrap();
        let published: Value =
            serde_json::from_str(&std::fs::read_to_string(repo_path("docs/openapi.json")).unwrap()).unwrap();
        assert!(served == published, "the served document differs from docs/openapi.json: run `UPDATE_SCHEMA=1 cargo test --test contract`");
        assert_eq!(served["openapi"], "3.1.0");
    }

    async fn health_and_readiness_answer_without_a_token(api: Api) {
        let get = |path: &str| api.http.get(format!("{}{path}", api.base)).send();
        let health = get("/healthz").await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let ready = get("/readyz").await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
        assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
        let unknown = get("/v1/nothing-here").await.unwrap();
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        assert_eq!(unknown.headers()["content-type"], "application/problem+json");
        let wrong = api.http.delete(format!("{}/healthz", api.base)).send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
