//! How fast notifications go out over SMTP, to a plaintext mailin-embedded server on loopback.
//!
//! `cargo bench --bench smtp` prints messages per second for one connection and for several
//! (`mail.smtp.pool_size`), twice: the transport alone (build and send, as a pass does per row),
//! and whole delivery passes over a SQLite outbox (claim, render, send, record each row).
//! Set CASEWARDEN_BENCH_MESSAGES (default 2000) and CASEWARDEN_BENCH_POOLS (default 1,4).

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use casewarden::clock::parse_time;
use casewarden::db::{Db, sql};
use casewarden::mail::settings::{Security, SmtpSettings, TransportKind};
use casewarden::mail::{MailSettings, Mailer, Rendered};
use casewarden::rules::{Limits, RuleSet};
use mailin_embedded::response::{self, Response};
use mailin_embedded::{Handler, Server, SslConfig};

#[derive(Clone)]
struct Counter(Arc<AtomicU64>);

impl Handler for Counter {
    fn data_end(&mut self) -> Response {
        self.0.fetch_add(1, Ordering::Relaxed);
        response::OK
    }
}

fn start_smtp() -> (u16, Arc<AtomicU64>) {
    let received = Arc::new(AtomicU64::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let handler = Counter(received.clone());
    std::thread::spawn(move || {
        let mut server = Server::new(handler);
        server
            .with_name("bench.test")
            .with_ssl(SslConfig::None)
            .expect("no TLS")
            .with_tcp_listener(listener);
        server.serve().expect("serve");
    });
    (port, received)
}

fn settings(port: u16, pool_size: u32) -> MailSettings {
    MailSettings {
        transport: TransportKind::Smtp,
        from: "Home Ownership <homeownership@example.org>".into(),
        smtp: SmtpSettings {
            host: "127.0.0.1".into(),
            port: Some(port),
            security: Security::Plaintext,
            pool_size,
            timeout_seconds: 10,
            ..SmtpSettings::default()
        },
        ..MailSettings::default()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let messages: u64 = std::env::var("CASEWARDEN_BENCH_MESSAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let pools: Vec<u32> = std::env::var("CASEWARDEN_BENCH_POOLS")
        .unwrap_or_else(|_| "1,4".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let (port, received) = start_smtp();
    println!(
        "{:>12} {:>10} {:>22} {:>22}",
        "connections", "messages", "transport (msg/s)", "delivery pass (msg/s)"
    );
    for pool in pools {
        let before = received.load(Ordering::Relaxed);
        let transport = transport(port, pool, messages).await;
        let pass = delivery_pass(port, pool, messages).await;
        assert_eq!(
            received.load(Ordering::Relaxed) - before,
            2 * messages,
            "every message arrived once"
        );
        println!("{pool:>12} {messages:>10} {transport:>22.0} {pass:>22.0}");
    }
}

/// Messages per second through `Mailer::build` and `Mailer::send` from `pool` tasks at once.
async fn transport(port: u16, pool: u32, messages: u64) -> f64 {
    let mailer = Arc::new(Mailer::new(&settings(port, pool)).expect("mailer"));
    let now = parse_time("2026-01-07T09:00:00Z").expect("time");
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..pool)
        .map(|_| {
            let (mailer, next) = (mailer.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= messages {
                        break;
                    }
                    let id = i64::try_from(n).expect("id");
                    let m = Rendered {
                        subject: format!("RTB-{id}: Serve the RTB2 notice is nearing its target"),
                        text: "This task is nearing its service-level target.\n".repeat(20),
                        html: None,
                    };
                    let message = mailer
                        .build(id, Some("Olu Officer"), "olu@example.org", &m, now)
                        .expect("build");
                    mailer
                        .send(id, &message, Duration::from_secs(10))
                        .await
                        .expect("send");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    messages as f64 / started.elapsed().as_secs_f64()
}

/// Messages per second through whole delivery passes over a SQLite outbox.
async fn delivery_pass(port: u16, pool: u32, messages: u64) -> f64 {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let rules = RuleSet::load(
        &root.join("rules"),
        &root.join("templates"),
        &Limits::default(),
    )
    .expect("rules");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::connect(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await
    .expect("connect");
    db.migrate().await.expect("migrate");
    let now = parse_time("2026-01-07T09:00:00Z").expect("time");
    let facts = casewarden::mail::render::sample_facts("sla_amber");
    sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO outbox (template, recipient_kind, recipient_ref, recipient_email, facts, status, next_attempt_at, created_at) \
         SELECT 'sla_amber', 'user', 'off1', 'olu@example.org', $2, 'pending', $3, $3 FROM n")
        .bind(i64::try_from(messages).expect("count"))
        .bind(facts)
        .bind(now)
        .execute(&db)
        .await
        .expect("outbox rows");
    let s = settings(port, pool);
    let mailer = std::sync::Arc::new(Mailer::new(&s).expect("mailer"));
    let started = Instant::now();
    let outcome = casewarden::mail::deliver::run_once(
        &db,
        &mailer,
        &rules.templates,
        &rules.calendars,
        &s,
        now,
    )
    .await
    .expect("pass");
    let elapsed = started.elapsed();
    assert_eq!(outcome.sent, messages, "{outcome:?}");
    db.close().await;
    messages as f64 / elapsed.as_secs_f64()
}
