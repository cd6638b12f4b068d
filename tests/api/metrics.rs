//! Metrics as Prometheus scrapes them: from the listener of their own without a token, and from
//! the API for the `metrics:read` scope; the counters move with the work a daemon does; the
//! backlog gauges read the database; the shipped dashboard and alerts use only exported names,
//! and docs/operations.md describes every one.

use reqwest::StatusCode;
use serde_json::json;

use crate::api_on_both_backends;
use crate::common::repo_path;
use crate::exposition::Exposition;
use crate::harness::{Api, content_type};
use crate::seed;

/// Metrics on both places, and a webhook subscription (to a port nobody answers) so that every
/// family has a series.
fn both(s: &mut casewarden::settings::Settings) {
    s.metrics.listen = "127.0.0.1:0".into();
    s.metrics.on_api = true;
    let secret = s.packs.dir.with_file_name("webhook-secret");
    std::fs::write(&secret, casewarden::webhooks::sign::new_secret().unwrap()).unwrap();
    s.webhooks = vec![casewarden::webhooks::WebhookSettings {
        name: "crm".into(),
        url: "http://127.0.0.1:9/events".into(),
        allow_plaintext: true,
        kinds: vec!["*".into()],
        secret_file: Some(secret),
        ..casewarden::webhooks::WebhookSettings::default()
    }];
}

/// Scrapes the listener of its own and reads the text strictly and with `prometheus-parse`,
/// which must agree on every plain sample.
async fn scrape(api: &Api) -> Exposition {
    let base = api.metrics.as_ref().expect("metrics.listen is set");
    let response = api
        .http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), casewarden::metrics::CONTENT_TYPE);
    read(&response.text().await.unwrap())
}

fn read(text: &str) -> Exposition {
    let strict = Exposition::parse(text);
    let lenient = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let mut plain = 0;
    for s in &lenient.samples {
        let value = match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => continue,
        };
        let labels: Vec<(&str, &str)> = s
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            strict.value(&s.metric, &labels),
            Some(value),
            "{} {labels:?}",
            s.metric
        );
        plain += 1;
    }
    assert!(
        plain > 20,
        "prometheus-parse read {plain} samples of:\n{text}"
    );
    strict
}

fn count(e: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    e.value(name, labels)
        .unwrap_or_else(|| panic!("no {name} {labels:?} in {:#?}", e.samples))
}

api_on_both_backends! {
    #[settings(both)]
    async fn a_scrape_after_passes_shows_the_commands_escalations_and_mail_they_made(api: Api) {
        let before = scrape(api).await;
        for outcome in ["accepted", "rejected", "duplicate"] {
            assert_eq!(count(&before, "casewarden_commands_total", &[("outcome", outcome)]), 0.0);
        }
        assert_eq!(count(&before, "casewarden_escalations_total", &[("level", "amber")]), 0.0);
        assert_eq!(count(&before, "casewarden_database_up", &[]), 1.0);
        let version = env!("CARGO_PKG_VERSION");
        let build = before.samples.iter().find(|s| s.0 == "casewarden_build_info").expect("build info");
        assert_eq!(build.1["version"], version);
        assert_eq!(build.2, 1.0);
        let rules = before.samples.iter().find(|s| s.0 == "casewarden_rules_info").expect("rules info");
        assert_eq!(rules.1["hash"], api.engine.rules().hash);

        seed::organisation(api).await; // 14 commands
        let claim = {
            let mut c = seed::rtb_claim("M-1", "tenant1", true);
            c["command_id"] = json!("claim-M-1");
            c
        };
        api.ok(claim.clone()).await;
        let (_, again) = api.commands(&api.admin, &claim).await;
        assert_eq!(again["results"][0]["status"], "duplicate", "{again:#}");
        let (_, refused) = api.commands(&api.admin, &json!({"type": "advance_case", "case_ref": "NOPE", "to_stage": "offer"})).await;
        assert_eq!(refused["results"][0]["status"], "rejected", "{refused:#}");
        api.settled().await;
        // Months later every task of the claim is past amber and target.
        let later = casewarden::clock::now() + chrono::Duration::days(120);
        let outcome = api.engine.run_pass(later).await.unwrap();
        assert!(outcome.escalations > 0, "{outcome}");

        let after = scrape(api).await;
        assert_eq!(count(&after, "casewarden_commands_total", &[("outcome", "accepted")]), 15.0);
        assert_eq!(count(&after, "casewarden_commands_total", &[("outcome", "duplicate")]), 1.0);
        assert_eq!(count(&after, "casewarden_commands_total", &[("outcome", "rejected")]), 1.0);
        assert_eq!(count(&after, "casewarden_allocations_total", &[("outcome", "allocated")]), 1.0);
        let levels: Vec<f64> = ["amber", "exceeded", "follow_on"]
            .iter()
            .map(|l| count(&after, "casewarden_escalations_total", &[("level", l)]))
            .collect();
        assert_eq!(levels.iter().sum::<f64>(), outcome.escalations as f64, "{levels:?}");
        assert!(levels[0] > 0.0 && levels[1] > 0.0, "amber and exceeded both fired: {levels:?}");
        assert!(count(&after, "casewarden_notifications_total", &[("outcome", "sent")]) >= outcome.sent as f64);
        assert!(outcome.sent > 0, "{outcome}");
        assert_eq!(count(&after, "casewarden_rule_errors_total", &[("rule", "escalation")]), 0.0);
        // A pass the watcher rang for may be under way: its steps counted, the pass not yet.
        let passes = count(&after, "casewarden_passes_total", &[]);
        assert!(passes >= 4.0, "{passes}");
        assert_eq!(count(&after, "casewarden_passes_failed_total", &[]), 0.0);
        let timed = count(&after, "casewarden_pass_duration_seconds_count", &[]);
        assert!((passes..=passes + 1.0).contains(&timed), "{timed} {passes}");
        // A pass with nothing due runs no step; one with anything due runs them all.
        let steps = |scrape: &Exposition| -> Vec<f64> {
            ["ingest", "allocation", "holds", "packs", "sla", "delivery"]
                .iter()
                .map(|step| count(scrape, "casewarden_pass_step_duration_seconds_count", &[("step", step)]))
                .collect()
        };
        let ran = steps(&after);
        let (least, most) = ran.iter().fold((f64::MAX, 0.0_f64), |(l, m), n| (l.min(*n), m.max(*n)));
        assert!(least >= 3.0 && most <= least + 1.0 && most <= passes + 1.0, "{ran:?} in {passes} passes");
        let outcome = api.engine.run_pass(later).await.unwrap();
        assert!(outcome.is_idle(), "{outcome}");
        let idle = scrape(api).await;
        assert!(count(&idle, "casewarden_passes_total", &[]) > passes);
        assert_eq!(steps(&idle), ran, "an idle pass runs no step");
        assert!(count(&after, "casewarden_last_pass_timestamp_seconds", &[]) >= count(&after, "casewarden_start_timestamp_seconds", &[]));
        assert_eq!(count(&after, "casewarden_inbox_pending", &[]), 0.0);
        assert_eq!(count(&after, "casewarden_outbox_dead", &[]), 0.0);
        assert!(count(&after, "casewarden_webhook_lag_events", &[("subscription", "crm")]) > 0.0);
        assert_eq!(count(&after, "casewarden_webhook_failing", &[("subscription", "crm")]), 0.0);

        shipped_dashboard_and_alerts_use_only_exported_names(&after);
        every_family_is_documented(&after);
    }

    #[settings(both)]
    async fn the_api_serves_metrics_to_the_metrics_scope_only(api: Api) {
        let reader = api.client("prometheus", "metrics:read").await;
        let other = api.client("crm-app", "cases:read,events:read,commands:write").await;
        let response = api.request(reqwest::Method::GET, &reader, "/metrics").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(content_type(&response), casewarden::metrics::CONTENT_TYPE);
        let served = read(&response.text().await.unwrap());
        assert_eq!(count(&served, "casewarden_database_up", &[]), 1.0);
        let (status, body) = api.get(&other, "/metrics").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body:#}");
        assert!(body["detail"].as_str().unwrap().contains("metrics:read"), "{body:#}");
        let anonymous = api.http.get(format!("{}/metrics", api.base)).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        let (status, _) = api.get(&api.admin, "/metrics").await;
        assert_eq!(status, StatusCode::OK, "admin has every scope");
    }

    async fn without_metrics_settings_nothing_serves_them(api: Api) {
        assert!(api.metrics.is_none());
        let (status, body) = api.get(&api.admin, "/metrics").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body:#}");
        assert!(body["detail"].as_str().unwrap().contains("on_api"), "{body:#}");
    }
}

/// The backlog as the database holds it, read with no daemon running: a command waiting an
/// hour, a notification waiting two, one dead.
async fn the_backlog_gauges_read_the_inbox_and_outbox(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let settings = crate::harness::settings(url, dir.path());
    let app = casewarden::startup::build(settings, true).await.unwrap();
    let (db, now) = (&app.engine.db, casewarden::clock::now());
    let hour = chrono::Duration::hours(1);
    casewarden::db::sql("INSERT INTO inbox (body, received_at) VALUES ('{}', $1), ('{}', $2)")
        .bind(now - hour)
        .bind(now - chrono::Duration::minutes(5))
        .execute(db)
        .await
        .unwrap();
    let mail = "INSERT INTO outbox (template, recipient_kind, status, created_at) VALUES ('t', 'user', $1, $2)";
    for (status, age) in [("pending", 2), ("claimed", 1), ("dead", 5), ("sent", 9)] {
        casewarden::db::sql(mail)
            .bind(status)
            .bind(now - hour * age)
            .execute(db)
            .await
            .unwrap();
    }
    let live = casewarden::live::Live::new(
        app.engine.rules().hash.clone(),
        now,
        std::time::Duration::from_secs(30),
    );
    let text = casewarden::metrics::render(&app.engine, &live, &[]).await;
    let e = read(&text);
    assert_eq!(count(&e, "casewarden_inbox_pending", &[]), 2.0);
    let waited = count(&e, "casewarden_inbox_oldest_pending_age_seconds", &[]);
    assert!((3600.0..3700.0).contains(&waited), "{waited}");
    assert_eq!(count(&e, "casewarden_outbox_pending", &[]), 2.0);
    let waited = count(&e, "casewarden_outbox_oldest_pending_age_seconds", &[]);
    assert!((7200.0..7300.0).contains(&waited), "{waited}");
    assert_eq!(count(&e, "casewarden_outbox_dead", &[]), 1.0);
    assert!(
        e.value("casewarden_last_pass_timestamp_seconds", &[])
            .is_none(),
        "no pass yet"
    );
    assert_eq!(
        count(&e, "casewarden_rules_last_rejected_timestamp_seconds", &[]),
        0.0
    );
    app.engine.db.close().await;
}

#[tokio::test]
async fn the_backlog_gauges_read_the_inbox_and_outbox_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    the_backlog_gauges_read_the_inbox_and_outbox(&format!(
        "sqlite://{}",
        dir.path().join("cases.db").display()
    ))
    .await;
}

#[tokio::test]
async fn the_backlog_gauges_read_the_inbox_and_outbox_on_postgres() {
    if let Some(url) = crate::pg::fresh_database() {
        the_backlog_gauges_read_the_inbox_and_outbox(&url).await;
    }
}

/// A site without the API is scraped from the listener of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_without_the_api_serves_metrics_on_their_own_listener() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cases.db").display());
    let mut settings = crate::harness::settings(&url, dir.path());
    settings.api.enabled = false;
    settings.metrics.listen = "127.0.0.1:0".into();
    let app = casewarden::startup::build(settings, true).await.unwrap();
    let daemon = casewarden::daemon::Daemon::start(app).await.unwrap();
    assert!(daemon.api_address().is_none());
    let address = daemon.metrics_address().expect("metrics.listen is set");
    let live = daemon.live().clone();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(daemon.run(shutdown.clone()));
    // The first pass runs at start.
    while live.state().passes == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let text = reqwest::get(format!("http://{address}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let e = read(&text);
    assert!(count(&e, "casewarden_passes_total", &[]) >= 1.0);
    assert!(
        e.value("casewarden_last_pass_timestamp_seconds", &[])
            .is_some()
    );
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let gone = reqwest::get(format!("http://{address}/metrics")).await;
    assert!(gone.is_err(), "the listener stops with the daemon");
}

/// Every `casewarden_…` name in the dashboard and the alert rules is one a scrape shows.
fn shipped_dashboard_and_alerts_use_only_exported_names(scraped: &Exposition) {
    let exported = scraped.names();
    for file in ["docs/grafana/casewarden.json", "docs/prometheus/alerts.yml"] {
        let text = std::fs::read_to_string(repo_path(file)).unwrap();
        let used = metric_names(&text);
        assert!(used.len() >= 4, "{file} uses {used:?}");
        let unknown: Vec<_> = used.iter().filter(|n| !exported.contains(*n)).collect();
        assert!(
            unknown.is_empty(),
            "{file} uses names the daemon does not export: {unknown:?}; exported: {exported:#?}"
        );
    }
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("docs/grafana/casewarden.json")).unwrap(),
    )
    .unwrap();
    assert!(
        dashboard["panels"].as_array().is_some_and(|p| p.len() >= 8),
        "a dashboard with panels"
    );
}

/// Each family a scrape shows has its row in docs/operations.md.
fn every_family_is_documented(scraped: &Exposition) {
    let doc = std::fs::read_to_string(repo_path("docs/operations.md")).unwrap();
    let documented = metric_names(&doc);
    for (family, kind) in &scraped.families {
        let shown = match kind.as_str() {
            "counter" => format!("{family}_total"),
            _ => family.clone(),
        };
        assert!(
            documented.contains(&shown),
            "docs/operations.md does not describe {shown}"
        );
    }
}

/// Every word of `text` that starts with `casewarden_`.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("casewarden_") && w.len() > "casewarden_".len())
        .map(str::to_string)
        .collect()
}
