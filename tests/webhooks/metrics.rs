//! Webhooks as a scrape shows them: each subscription's lag while its receiver fails, and
//! `casewarden_webhook_failing` on once the failures have lasted longer than
//! `failing_after_minutes` (when `webhook_failing` is reported), off again once it delivers.

use std::time::Duration;

use casewarden::db::sql;

use crate::exposition::Exposition;
use crate::on_both_backends;
use crate::receiver::{Answer, Receiver};
use crate::support::*;

async fn scrape(api: &crate::harness::Api) -> Exposition {
    let base = api.metrics.as_ref().expect("metrics.listen is set");
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    Exposition::parse(&text)
}

fn value(e: &Exposition, name: &str) -> f64 {
    e.value(name, &[("subscription", "crm")])
        .unwrap_or_else(|| panic!("no {name} for crm in {:#?}", e.samples))
}

on_both_backends! {
    async fn the_failing_metric_turns_on_past_the_threshold_and_off_on_recovery(backend: Backend) {
        let receiver = Receiver::start().await;
        receiver.answer(Answer::Status(500));
        let secret = secret();
        let hook = hook(&receiver.url, &secret);
        assert_eq!(hook.failing_after_minutes, 60);
        let api = backend
            .daemon(|s| {
                s.webhooks = vec![hook.clone()];
                s.metrics.listen = "127.0.0.1:0".into();
            })
            .await;
        let start = started(&api.db, &hook).await;
        api.commands(&api.admin, &roles("r", 3)).await;
        let expected = role_events(&api.db, start).await;
        receiver.wait_for(Duration::from_secs(20), "two failed attempts", |r| r.len() >= 2).await;
        settled(&api.db, &hook, "two failures recorded", |s| s["in_flight"]["attempts"].as_i64() >= Some(2)).await;
        let failing = scrape(&api).await;
        assert_eq!(value(&failing, "casewarden_webhook_failing"), 0.0, "failing, but not for an hour yet");
        assert!(value(&failing, "casewarden_webhook_lag_events") >= expected.len() as f64);

        // An hour passes (the stored start of the failures moves back; writers take turns).
        let mut tx = api.db.begin_write().await.unwrap();
        sql("UPDATE webhook_subscriptions SET failing_since = $1 WHERE name = 'crm'")
            .bind(now() - chrono::Duration::minutes(61))
            .execute(&mut tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        settled(&api.db, &hook, "the report", |s| s["failing_reported_at"].is_string()).await;
        let reported = scrape(&api).await;
        assert_eq!(value(&reported, "casewarden_webhook_failing"), 1.0);
        assert!(value(&reported, "casewarden_webhook_lag_seconds") >= 0.0);

        receiver.answer(Answer::Ok);
        receiver.wait_for(Duration::from_secs(20), "delivery again", |r| acknowledged(r).len() >= 3).await;
        let last = *expected.last().unwrap();
        settled(&api.db, &hook, "everything delivered", |s| s["delivered_through"].as_i64() >= Some(last) && s["lag_events"] == 0).await;
        let recovered = scrape(&api).await;
        assert_eq!(value(&recovered, "casewarden_webhook_failing"), 0.0);
        assert_eq!(value(&recovered, "casewarden_webhook_lag_events"), 0.0);
        assert_eq!(value(&recovered, "casewarden_webhook_lag_seconds"), 0.0);
        api.stop().await;
    }
}
