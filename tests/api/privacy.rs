//! `GET /v1/contacts/{ref}/export` and `POST /v1/contacts/{ref}/erasure`: an admin reads
//! everything held about a contact and erases it as `casewarden export contact` and `erase
//! contact` do; an open case is a conflict unless forced, and every refusal names its reason.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::api_on_both_backends;
use crate::harness::answer;
use crate::seed::{self, all_ok};

api_on_both_backends! {
    async fn an_admin_exports_and_erases_a_contact_and_an_open_case_needs_force(api: Api) {
        seed::organisation(api).await;
        all_ok(api, vec![seed::rtb_claim("RTB-X1", "tenant1", true)]).await;
        let admin = api.client("dpo-console", "admin").await;
        let reader = api.client("crm-reader", "cases:read").await;
        let erase = |token: &str, contact: &str, body: serde_json::Value| {
            api.request(Method::POST, token, &format!("/v1/contacts/{contact}/erasure")).json(&body).send()
        };

        // Subject access: everything held about them, to an admin only.
        let (status, export) = api.get(&admin, "/v1/contacts/tenant1/export").await;
        assert_eq!(status, StatusCode::OK, "{export:#}");
        assert_eq!((&export["contact"]["ref"], &export["contact"]["name"]), (&json!("tenant1"), &json!("Tenant 1")));
        assert_eq!(export["cases"][0]["case"]["case_ref"], "RTB-X1");
        assert!(export["cases"][0]["events"].as_array().is_some_and(|e| !e.is_empty()), "{export:#}");
        assert_eq!(api.get(&reader, "/v1/contacts/tenant1/export").await.0, StatusCode::FORBIDDEN);
        assert_eq!(api.get(&admin, "/v1/contacts/nobody/export").await.0, StatusCode::NOT_FOUND);

        let (status, _, body) = answer(erase(&admin, "tenant1", json!({"reason": "SAR-2026-17"})).await.unwrap()).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body:#}");
        assert!(body["detail"].as_str().unwrap().contains("open cases (RTB-X1)"), "{body:#}");
        let (status, _, body) = answer(erase(&reader, "tenant1", json!({"reason": "x"})).await.unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body:#}");
        let (status, _, body) = answer(erase(&admin, "nobody", json!({"reason": "x"})).await.unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body:#}");
        let (status, _, body) = answer(erase(&admin, "tenant1", json!({"because": "x"})).await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
        assert!(body["detail"].as_str().unwrap().contains("reason"), "{body:#}");
        let (status, _, body) = answer(erase(&admin, "tenant1", json!({"reason": ""})).await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
        let (status, _, body) = answer(erase(&admin, "a%0Ab", json!({"reason": "x"})).await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");

        let (status, _, body) = answer(erase(&admin, "tenant1", json!({"reason": "SAR-2026-17", "force": true})).await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        assert_eq!((&body["contact"], &body["cases"]), (&json!("tenant1"), &json!(["RTB-X1"])));
        let (_, case) = api.get(&reader, "/v1/cases/RTB-X1").await;
        assert_eq!(case["case"]["property_address"], serde_json::Value::Null);
        let (name,): (String,) = casewarden::db::sql("SELECT name FROM contacts WHERE ref = 'tenant1'").fetch_one(&api.db).await.unwrap();
        assert_eq!(name, "(erased)");
        let (actor,): (String,) = casewarden::db::sql("SELECT actor FROM events WHERE kind = 'contact_erased'").fetch_one(&api.db).await.unwrap();
        assert_eq!(actor, "dpo-console");
    }
}
