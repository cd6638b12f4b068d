//! A working receiver: events in order, in batches, signed; what a subscription's filters let
//! through; `GET /v1/webhooks`; redirects and plain HTTP refused.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::receiver::{Answer, Receiver};
use crate::support::*;

on_both_backends! {
    async fn events_arrive_in_order_in_batches_signed_so_an_independent_check_accepts_them(backend: Backend) {
        let receiver = Receiver::start().await;
        let secret = secret();
        let hook = hook(&receiver.url, &secret);
        let api = backend.daemon(|s| s.webhooks = vec![hook.clone()]).await;
        let start = started(&api.db, &hook).await;

        for part in ["a", "b", "c"] {
            let (code, body) = api.commands(&api.admin, &roles(part, 9)).await;
            assert_eq!(code, StatusCode::OK, "{body:#}");
        }
        let expected = role_events(&api.db, start).await;
        assert_eq!(expected.len(), 27);
        receiver
            .wait_for(Duration::from_secs(20), "every event delivered", |r| acknowledged(r).len() >= 27)
            .await;

        let requests = receiver.requests();
        assert_eq!(acknowledged(&requests), expected, "in order, each once, none missing");
        for r in &requests {
            assert!(!r.events.is_empty() && r.events.len() <= 10, "batch of {}", r.events.len());
            assert_eq!(r.content_type, "application/json");
            assert!(r.user_agent.starts_with("casewarden/"), "{}", r.user_agent);
            assert!(r.id.starts_with("msg_"), "{}", r.id);
            assert!(r.signature.starts_with("v1,"), "{}", r.signature);
            let now = chrono::Utc::now().timestamp();
            let sent: i64 = r.timestamp.parse().unwrap();
            assert!((now - 60..=now).contains(&sent), "timestamp {sent} vs now {now}");
            // Each event as the API serves it.
            let batch: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
            for event in &batch {
                let mut keys: Vec<&str> = event.as_object().unwrap().keys().map(String::as_str).collect();
                keys.sort();
                assert_eq!(keys, ["actor", "at", "case_ref", "data", "id", "kind"], "{event}");
                assert_eq!(event["kind"], "role_upserted");
                assert!(event["data"]["role"].as_str().unwrap().contains('-'), "{event}");
            }
        }

        // Python's hmac, not ours, accepts every signature; a changed byte or another secret fails.
        let verified = python_verifies(&secret.text, &requests).unwrap();
        assert!(verified.contains(&format!("{} signatures verified", requests.len())), "{verified}");
        let mut tampered = requests[0].clone();
        tampered.body[1] ^= 1;
        let refused = python_verifies(&secret.text, &[tampered]).unwrap_err();
        assert!(refused.contains("no v1 signature matches"), "{refused}");
        let other = crate::support::secret();
        assert!(python_verifies(&other.text, &requests[..1]).is_err());

        let last = *expected.last().unwrap();
        let shown = settled(&api.db, &hook, "the last batch recorded", |s| s["delivered_through"].as_i64() >= Some(last)).await;
        assert_eq!((shown["lag_events"].as_i64(), shown["lag_seconds"].as_i64()), (Some(0), None), "{shown:#}");
        assert!(shown["in_flight"].is_null() && shown["last_error"].is_null(), "{shown:#}");
        assert!(shown["last_success_at"].is_string(), "{shown:#}");

        // The same, over the API, to admins only, and never the secret.
        let (code, listed) = api.get(&api.admin, "/v1/webhooks").await;
        assert_eq!(code, StatusCode::OK, "{listed:#}");
        assert_eq!(listed["webhooks"][0]["name"], "crm");
        assert_eq!(listed["webhooks"][0]["url"], json!(receiver.url));
        assert_eq!(listed["webhooks"][0]["delivered_through"], shown["delivered_through"]);
        assert_eq!(listed["webhooks"][0]["kinds"], json!(["role_upserted"]));
        let key = secret.text.trim_start_matches("whsec_");
        assert!(!listed.to_string().contains(key), "{listed:#}");
        let reader = api.client("reader", "commands:write,events:read").await;
        assert_eq!(api.get(&reader, "/v1/webhooks").await.0, StatusCode::FORBIDDEN);
        api.stop().await;
    }

    async fn case_filters_choose_among_case_events_and_let_events_with_no_case_through(backend: Backend) {
        let receiver = Receiver::start().await;
        let secret = secret();
        let mut hook = hook(&receiver.url, &secret);
        hook.kinds = vec!["case_created".into(), "role_upserted".into()];
        hook.case_kinds = vec!["housing_options".into()];
        let api = backend.daemon(|s| s.webhooks = vec![hook.clone()]).await;
        started(&api.db, &hook).await;
        let commands = json!([
            {"type": "upsert_role", "ref": "advisers", "name": "Advisers"},
            {"type": "upsert_contact", "ref": "tenant1", "name": "Tenant One", "email": "t1@example.net", "address": "1 Example Road"},
            {"type": "create_case", "case_ref": "RTB-1", "kind": "home_buy", "scheme": "right_to_buy", "country": "england",
             "applicant": "tenant1", "property": {"ref": "P-1", "address": "1 Example Road, Leeds", "tenure": "freehold"},
             "received_at": "2026-11-02", "attributes": {"qualifying_period_all_with_landlord": true, "patch": "north"}},
            {"type": "create_case", "case_ref": "HO-1", "kind": "housing_options", "workflow": "section_21",
             "country": "england", "applicant": "tenant1", "received_at": "2026-11-02T09:30:00Z"},
            {"type": "upsert_role", "ref": "legal", "name": "Legal"},
        ]);
        let (code, body) = api.commands(&api.admin, &commands).await;
        assert_eq!(code, StatusCode::OK, "{body:#}");
        assert!(body["results"].as_array().unwrap().iter().all(|r| r["status"] == "accepted"), "{body:#}");
        receiver
            .wait_for(Duration::from_secs(20), "the wanted events", |r| acknowledged(r).len() >= 3)
            .await;
        // Nothing more comes once the log is read to its end.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let got: Vec<(String, Value)> = receiver
            .requests()
            .iter()
            .flat_map(|r| serde_json::from_slice::<Vec<Value>>(&r.body).unwrap())
            .map(|e| (e["kind"].as_str().unwrap().to_string(), e["case_ref"].clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("role_upserted".to_string(), Value::Null),
                ("case_created".to_string(), json!("HO-1")),
                ("role_upserted".to_string(), Value::Null),
            ]
        );
        api.stop().await;
    }

    async fn a_redirect_is_not_followed_and_the_batch_waits_for_a_2xx(backend: Backend) {
        let receiver = Receiver::start().await;
        receiver.script([Answer::Redirect(307), Answer::Redirect(302)]);
        let secret = secret();
        let hook = hook(&receiver.url, &secret);
        let api = backend.daemon(|s| s.webhooks = vec![hook.clone()]).await;
        let start = started(&api.db, &hook).await;
        api.commands(&api.admin, &roles("r", 3)).await;
        let expected = role_events(&api.db, start).await;
        receiver
            .wait_for(Duration::from_secs(20), "delivery after the redirects", |r| acknowledged(r).len() >= 3)
            .await;
        let requests = receiver.requests();
        assert!(receiver.requests_to("/elsewhere").is_empty(), "a redirect was followed");
        assert_eq!(requests.len(), 3, "{:#?}", crate::receiver::summary(&requests));
        assert!(requests.iter().all(|r| r.id == requests[0].id), "the same batch each time");
        assert_eq!(acknowledged(&requests), expected);
        let last = *expected.last().unwrap();
        let shown = settled(&api.db, &hook, "the batch recorded", |s| s["delivered_through"].as_i64() >= Some(last)).await;
        assert_eq!(
            shown["last_error"],
            "HTTP 302 Found (redirects are not followed: point the subscription at the final URL)",
            "{shown:#}"
        );
        api.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_refuses_to_start_with_plain_http_a_missing_secret_or_a_bad_one() {
    let receiver = Receiver::start().await;
    let secret = secret();
    let backend = crate::Backend::Sqlite(tempfile::tempdir().unwrap());
    let start = |hook: casewarden::webhooks::WebhookSettings| {
        let url = backend.url();
        async move {
            let refused = crate::harness::Api::start(&url, tempfile::tempdir().unwrap(), |s| {
                s.webhooks = vec![hook]
            })
            .await;
            format!("{:#}", refused.err().expect("the daemon must not start"))
        }
    };

    let mut plain = hook(&receiver.url, &secret);
    plain.allow_plaintext = false;
    let error = start(plain).await;
    assert!(
        error.contains(&format!(
            "webhooks[0].url \"{}\" is plain HTTP",
            receiver.url
        )),
        "{error}"
    );
    assert!(error.contains("allow_plaintext = true"), "{error}");

    let mut unset = hook(&receiver.url, &secret);
    unset.secret_file = None;
    unset.secret_env = Some("CASEWARDEN_TEST_NO_SUCH_SECRET".into());
    let error = start(unset).await;
    assert!(
        error.contains(
            "webhooks[0].secret_env names CASEWARDEN_TEST_NO_SUCH_SECRET, which is not set"
        ),
        "{error}"
    );

    std::fs::write(&secret.path, "hunter2-not-a-standard-secret").unwrap();
    let error = start(hook(&receiver.url, &secret)).await;
    assert!(
        error.contains("the secret of webhooks[0] (from secret_file")
            && error.contains("must start with whsec_"),
        "{error}"
    );
    assert!(
        !error.contains("hunter2"),
        "the secret is never quoted: {error}"
    );
    assert!(receiver.requests().is_empty());
}
