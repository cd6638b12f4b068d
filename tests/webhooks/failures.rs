//! A receiver that fails: every event still arrives once acknowledged, in order, with no gap;
//! retries resend the same batch under the same webhook-id; a long failure is reported once; a
//! daemon stopped mid-request leaves the batch to the next.

use std::time::Duration;

use casewarden::db::sql;
use reqwest::StatusCode;
use serde_json::Value;

use crate::on_both_backends;
use crate::receiver::{Answer, Receiver};
use crate::support::*;

/// The data of the events of a kind, in order.
async fn event_data(db: &casewarden::db::Db, kind: &str) -> Vec<Value> {
    let rows: Vec<(sqlx::types::Json<Value>,)> =
        sql("SELECT data FROM events WHERE kind = $1 ORDER BY id")
            .bind(kind)
            .fetch_all(db)
            .await
            .unwrap();
    rows.into_iter().map(|r| r.0.0).collect()
}

on_both_backends! {
    async fn a_receiver_that_fails_then_recovers_gets_every_event_once_in_order(backend: Backend) {
        let receiver = Receiver::start().await;
        let hang = Answer::Hang(Duration::from_secs(3));
        receiver.script([Answer::Status(500), Answer::Status(500), Answer::Status(500), hang.clone(), hang]);
        let secret = secret();
        let mut hook = hook(&receiver.url, &secret);
        hook.failing_after_minutes = 0;
        let api = backend.daemon(|s| s.webhooks = vec![hook.clone()]).await;
        let start = started(&api.db, &hook).await;
        let (code, body) = api.commands(&api.admin, &roles("r", 25)).await;
        assert_eq!(code, StatusCode::OK, "{body:#}");
        let expected = role_events(&api.db, start).await;
        receiver
            .wait_for(Duration::from_secs(40), "every event after the outage", |r| acknowledged(r).len() >= 25)
            .await;

        let requests = receiver.requests();
        let first = &requests[0].id;
        assert!(requests[..6].iter().all(|r| &r.id == first), "five failures and a success of one batch: {:#?}", crate::receiver::summary(&requests));
        assert!(requests[..5].iter().all(|r| !r.acknowledged()) && requests[5].acknowledged());
        assert_eq!(acknowledged(&requests), expected, "each event once, in order, no gap");
        assert_eq!(deduplicated(&requests), expected);
        python_verifies(&secret.text, &requests).unwrap();

        // Reported once, with the first failure and not the receiver's words; recovered once.
        let failing = event_data(&api.db, "webhook_failing").await;
        assert_eq!(failing.len(), 1, "{failing:#?}");
        assert_eq!(failing[0]["webhook"], "crm");
        assert_eq!(failing[0]["error"], "HTTP 500 Internal Server Error");
        assert_eq!(failing[0]["attempts"], 1);
        assert!(failing[0]["delivered_through"].as_i64().unwrap() < expected[0], "{failing:#?}");
        let recovered = event_data(&api.db, "webhook_recovered").await;
        assert_eq!(recovered.len(), 1, "{recovered:#?}");
        assert_eq!(recovered[0]["failing_since"], failing[0]["failing_since"]);

        let last = *expected.last().unwrap();
        let shown = settled(&api.db, &hook, "the last batch recorded", |s| s["delivered_through"].as_i64() >= Some(last)).await;
        assert_eq!(shown["last_error"], "no answer within 1 s", "{shown:#}");
        assert!(shown["failing_since"].is_null() && shown["failing_reported_at"].is_null(), "{shown:#}");
        assert_eq!(shown["lag_events"], 0, "{shown:#}");
        api.stop().await;
    }

    async fn failing_is_reported_once_and_only_after_failing_after_minutes(backend: Backend) {
        let receiver = Receiver::start().await;
        receiver.answer(Answer::Status(500));
        let secret = secret();
        let hook = hook(&receiver.url, &secret);
        assert_eq!(hook.failing_after_minutes, 60);
        let api = backend.daemon(|s| s.webhooks = vec![hook.clone()]).await;
        let start = started(&api.db, &hook).await;
        api.commands(&api.admin, &roles("r", 3)).await;
        let expected = role_events(&api.db, start).await;
        receiver.wait_for(Duration::from_secs(20), "two failed attempts", |r| r.len() >= 2).await;
        let shown = settled(&api.db, &hook, "two failures recorded", |s| s["in_flight"]["attempts"].as_i64() >= Some(2)).await;
        assert_eq!(count_kind(&api.db, "webhook_failing").await, 0, "not failing for an hour yet");
        assert!(shown["failing_since"].is_string(), "{shown:#}");
        let through = shown["delivered_through"].as_i64().unwrap();
        assert!(through < expected[0], "the cursor waits before the first role event: {shown:#}");
        // The receiver's answer is kept for the operator, cut to its first KiB.
        let error = shown["last_error"].as_str().unwrap();
        assert!(error.starts_with("HTTP 500 Internal Server Error: receiver says no"), "{error}");
        assert!(error.chars().count() < 1100, "{} characters", error.chars().count());

        // An hour passes (the stored start of the failures moves back; writers take turns).
        let mut tx = api.db.begin_write().await.unwrap();
        sql("UPDATE webhook_subscriptions SET failing_since = $1 WHERE name = 'crm'")
            .bind(now() - chrono::Duration::minutes(61))
            .execute(&mut tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let seen = receiver.requests().len();
        receiver.wait_for(Duration::from_secs(20), "three more attempts", |r| r.len() >= seen + 3).await;
        settled(&api.db, &hook, "the report", |s| s["failing_reported_at"].is_string()).await;
        let failing = event_data(&api.db, "webhook_failing").await;
        assert_eq!(failing.len(), 1, "reported once: {failing:#?}");
        assert_eq!(failing[0]["error"], "HTTP 500 Internal Server Error");
        assert!(!failing[0].to_string().contains("receiver says no"));

        receiver.answer(Answer::Ok);
        receiver.wait_for(Duration::from_secs(20), "delivery again", |r| acknowledged(r).len() >= 3).await;
        assert_eq!(acknowledged(&receiver.requests()), expected);
        let last = *expected.last().unwrap();
        let shown = settled(&api.db, &hook, "the success recorded", |s| s["delivered_through"].as_i64() >= Some(last)).await;
        assert!(shown["failing_since"].is_null() && shown["failing_reported_at"].is_null(), "{shown:#}");
        assert_eq!(count_kind(&api.db, "webhook_recovered").await, 1);
        assert_eq!(count_kind(&api.db, "webhook_failing").await, 1);
        api.stop().await;
    }

    async fn a_daemon_stopped_mid_request_leaves_the_batch_to_the_next_which_sends_it_again(backend: Backend) {
        let receiver = Receiver::start().await;
        receiver.script([Answer::Hold]);
        let secret = secret();
        let mut hook = hook(&receiver.url, &secret);
        hook.batch_size = 5;
        hook.timeout_seconds = 30;
        let api = backend.daemon(|s| s.webhooks = vec![hook.clone()]).await;
        let start = started(&api.db, &hook).await;
        api.commands(&api.admin, &roles("r", 12)).await;
        let expected = role_events(&api.db, start).await;
        receiver.wait_for(Duration::from_secs(20), "the first request", |r| !r.is_empty()).await;
        api.stop().await;
        receiver.release();

        // The batch stays in flight, not charged an attempt, for whoever starts next.
        let first = receiver.requests()[0].clone();
        let db = casewarden::db::Db::connect(&backend.url()).await.unwrap();
        let shown = status(&db, &hook).await;
        db.close().await;
        assert_eq!(shown["in_flight"]["webhook_id"], first.id.as_str(), "{shown:#}");
        assert_eq!(shown["in_flight"]["attempts"], 0, "{shown:#}");
        assert!(shown["delivered_through"].as_i64().unwrap() < expected[0], "{shown:#}");

        let next = backend.daemon(|s| s.webhooks = vec![hook.clone()]).await;
        receiver
            .wait_for(Duration::from_secs(20), "every event after the restart", |r| acknowledged(r).len() >= 12)
            .await;
        let requests = receiver.requests();
        assert_eq!(requests[1].id, first.id, "the interrupted batch again, under its webhook-id");
        assert_eq!(requests[1].body, first.body);
        assert_eq!(deduplicated(&requests), expected, "nothing skipped");
        assert_eq!(acknowledged(&requests), expected);
        next.stop().await;
    }
}
