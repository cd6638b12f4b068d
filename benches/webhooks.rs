//! How quickly work that arrives is applied, and how quickly the CRM hears of it.
//!
//! `cargo bench --bench webhooks` starts a real daemon (the API suite's harness: the shipped
//! rules, the schedule hourly, so every pass is one that work arriving started) with one webhook
//! subscription to a real HTTP receiver on loopback, on SQLite and on a throwaway PostgreSQL
//! cluster (skipped, with a message, when no server is installed), and prints:
//!
//! - the latency from a command inserted into the inbox by another connection (as a CRM sharing
//!   the database, or `casewarden submit`, would) to the command applied (its row decided
//!   `accepted`), median and p99 over sequential inserts; the goal is under a second at p99;
//! - the latency from that moment to its event arriving at the webhook receiver, signed, and
//!   from the insert to the receiver (the whole way);
//! - webhook events delivered per second, for a burst of commands written at once.
//!
//! Every command must be accepted and every event must arrive exactly once; anything else stops
//! the run. Set CASEWARDEN_BENCH_BACKENDS (default sqlite,postgres), CASEWARDEN_BENCH_REQUESTS
//! (sequential inserts, default 200) and CASEWARDEN_BENCH_BURST (commands in the burst, default
//! 5000).

#[path = "../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../tests/api/harness.rs"]
mod harness;
#[path = "../tests/common/pg.rs"]
mod pg;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use casewarden::db::{Db, sql};
use casewarden::webhooks::WebhookSettings;
use harness::Api;

/// When each event id arrived at the receiver.
type Arrivals = Arc<Mutex<HashMap<i64, Instant>>>;

/// A receiver that acknowledges every batch and notes when each event arrived.
async fn receiver() -> (String, Arrivals) {
    let arrivals: Arrivals = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(|State(arrivals): State<Arrivals>, body: Bytes| async move {
                let now = Instant::now();
                let events: Vec<serde_json::Value> =
                    serde_json::from_slice(&body).expect("a batch is a JSON array");
                let mut seen = arrivals.lock().unwrap();
                for e in events {
                    let id = e["id"].as_i64().expect("each event has an id");
                    assert!(seen.insert(id, now).is_none(), "event {id} arrived twice");
                }
                axum::http::StatusCode::NO_CONTENT
            }),
        )
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, arrivals)
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let backends =
        std::env::var("CASEWARDEN_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let requests = env_number("CASEWARDEN_BENCH_REQUESTS", 200);
    let burst = env_number("CASEWARDEN_BENCH_BURST", 5000);
    println!(
        "casewarden work arriving and webhooks: {requests} sequential inserts, a burst of {burst}"
    );
    for backend in backends.split(',').map(str::trim) {
        let url = match backend {
            "sqlite" => None,
            "postgres" => match pg::fresh_database() {
                Some(url) => Some(url),
                None => {
                    println!("\npostgres: skipped (no PostgreSQL server here)");
                    continue;
                }
            },
            other => panic!("unknown backend {other:?}: use sqlite and/or postgres"),
        };
        run(backend, url, requests, burst).await;
    }
}

async fn run(backend: &str, url: Option<String>, requests: usize, burst: usize) {
    let (hook_url, arrivals) = receiver().await;
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("secret");
    std::fs::write(&secret, casewarden::webhooks::sign::new_secret().unwrap()).unwrap();
    let hook = WebhookSettings {
        name: "bench".into(),
        url: hook_url,
        allow_plaintext: true,
        kinds: vec!["role_upserted".into()],
        secret_file: Some(secret),
        batch_size: 100,
        ..WebhookSettings::default()
    };
    let tweak = |s: &mut casewarden::settings::Settings| s.webhooks = vec![hook];
    let api = match url {
        Some(url) => Api::start(&url, tempfile::tempdir().unwrap(), tweak).await,
        None => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("cases.db").display());
            Api::start(&url, dir, tweak).await
        }
    }
    .expect("the daemon starts");
    // Another process's connection, as a CRM sharing the database would have.
    let other = Db::connect(&api.url).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut applied = Vec::new();
    let mut heard = Vec::new();
    let mut whole = Vec::new();
    for n in 0..requests {
        let body = format!(r#"{{"type":"upsert_role","ref":"seq-{n}","name":"Role"}}"#);
        let start = Instant::now();
        let id: i64 = sql("INSERT INTO inbox (body, received_at) VALUES ($1, $2) RETURNING id")
            .bind(body)
            .bind(casewarden::clock::now())
            .scalar(&other)
            .await
            .unwrap();
        let (event, decided) = decided(&other, id).await;
        applied.push(decided - start);
        let arrived = arrival(&arrivals, event).await;
        heard.push(arrived.saturating_duration_since(decided));
        whole.push(arrived - start);
    }
    println!("\n{backend}:");
    report(
        "inbox insert → command applied",
        &mut applied,
        Some(Duration::from_secs(1)),
    );
    report(
        "command applied → event at the webhook receiver",
        &mut heard,
        None,
    );
    report(
        "inbox insert → event at the webhook receiver",
        &mut whole,
        None,
    );

    let before = arrivals.lock().unwrap().len();
    let bodies: Vec<String> = (0..burst)
        .map(|n| format!(r#"{{"type":"upsert_role","ref":"burst-{n}","name":"Role"}}"#))
        .collect();
    let start = Instant::now();
    casewarden::engine::queue::queue(&other, &bodies, None)
        .await
        .unwrap();
    let deadline = start + Duration::from_secs(300);
    while arrivals.lock().unwrap().len() < before + burst {
        assert!(
            Instant::now() < deadline,
            "the burst did not arrive within 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = start.elapsed();
    println!(
        "  a burst of {burst} commands written at once: applied and every event at the receiver in {:.2} s: {:.0} webhook events/s",
        took.as_secs_f64(),
        burst as f64 / took.as_secs_f64()
    );
    other.close().await;
    api.stop().await;
}

/// Waits for an inbox row to be decided; returns its first event's id and when it was seen.
async fn decided(db: &Db, id: i64) -> (i64, Instant) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, event): (String, Option<i64>) =
            sql("SELECT status, first_event_id FROM inbox WHERE id = $1")
                .bind(id)
                .fetch_one(db)
                .await
                .unwrap();
        if status != "pending" {
            let seen = Instant::now();
            assert_eq!(status, "accepted", "inbox #{id}");
            return (
                event.expect("an accepted upsert_role writes its event"),
                seen,
            );
        }
        assert!(
            Instant::now() < deadline,
            "inbox #{id} still pending after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits for an event to arrive at the receiver; returns when it did.
async fn arrival(arrivals: &Arrivals, event: i64) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(at) = arrivals.lock().unwrap().get(&event) {
            return *at;
        }
        assert!(
            Instant::now() < deadline,
            "event {event} never reached the receiver"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn report(what: &str, times: &mut [Duration], goal: Option<Duration>) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    let (median, p99) = (at(0.5), at(0.99));
    let verdict = match goal {
        Some(goal) if p99 <= goal => format!("  (goal p99 ≤ {} ms: met)", goal.as_millis()),
        Some(goal) => format!("  (goal p99 ≤ {} ms: NOT met)", goal.as_millis()),
        None => String::new(),
    };
    println!(
        "  {what}: median {:.1} ms, p99 {:.1} ms, max {:.1} ms{verdict}",
        median.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
        times.last().unwrap().as_secs_f64() * 1000.0
    );
}
