//! Delivery through a real SMTP server on loopback (mailin-embedded): headers and parts as
//! received, an outage that loses nothing and sends nothing twice, a worker that dies between
//! claim and completion, permanent refusals, and template errors that fail only their own row.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use casewarden::clock::parse_time;
use casewarden::db::sql;
use casewarden::mail::MailSettings;
use casewarden::mail::settings::{Security, SmtpSettings, TransportKind};
use mailin_embedded::response::{self, Response};
use mailin_embedded::{Handler, Server, SslConfig};
use serde_json::json;

use crate::helpers::{Env, rtb_claim};
use crate::on_both_backends;

#[derive(Debug, Clone, Default)]
struct Received {
    to: Vec<String>,
    data: String,
}

/// Records every message; refuses recipients with "reject" (550) or "later" (451) in the address.
#[derive(Clone, Default)]
struct Recorder {
    received: Arc<Mutex<Vec<Received>>>,
    current: Option<Received>,
}

impl Handler for Recorder {
    fn rcpt(&mut self, to: &str) -> Response {
        if to.contains("reject") {
            response::NO_MAILBOX
        } else if to.contains("later") {
            response::INTERNAL_ERROR
        } else {
            response::OK
        }
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some(Received {
            to: to.to_vec(),
            data: String::new(),
        });
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(c) = self.current.as_mut() {
            c.data.push_str(&String::from_utf8_lossy(buf));
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Some(c) = self.current.take() {
            self.received.lock().unwrap().push(c);
        }
        response::OK
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the SMTP server on `port`; it runs until the test process ends.
fn start_smtp(port: u16) -> Arc<Mutex<Vec<Received>>> {
    let recorder = Recorder::default();
    let received = recorder.received.clone();
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        let mut server = Server::new(recorder);
        server
            .with_name("smtp.test")
            .with_ssl(SslConfig::None)
            .unwrap()
            .with_tcp_listener(listener);
        server.serve().unwrap();
    });
    received
}

fn settings(port: u16) -> MailSettings {
    MailSettings {
        transport: TransportKind::Smtp,
        from: "Home Ownership <homeownership@example.org>".into(),
        reply_to: Some("Home Ownership Enquiries <enquiries@example.org>".into()),
        organisation: "Example Homes".into(),
        smtp: SmtpSettings {
            host: "127.0.0.1".into(),
            port: Some(port),
            security: Security::Plaintext,
            timeout_seconds: 5,
            ..SmtpSettings::default()
        },
        max_attempts: 4,
        retry_base_seconds: 60,
        ..MailSettings::default()
    }
}

/// (status, attempts, next attempt, last error) for every outbox row, in id order.
async fn rows(
    env: &Env,
) -> Vec<(
    i64,
    String,
    i64,
    Option<chrono::DateTime<chrono::Utc>>,
    Option<String>,
)> {
    sql("SELECT id, status, attempts, next_attempt_at, last_error FROM outbox ORDER BY id")
        .fetch_all(&env.db)
        .await
        .unwrap()
}

fn header<'a>(data: &'a str, name: &str) -> Option<&'a str> {
    data.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

/// (status, attempts, last error) of the rows to one address.
async fn by_email(env: &Env, email: &str) -> Vec<(String, i64, Option<String>)> {
    sql("SELECT status, attempts, last_error FROM outbox WHERE recipient_email = $1 ORDER BY id")
        .bind(email)
        .fetch_all(&env.db)
        .await
        .unwrap()
}

/// A case whose two quick checks go amber at 09:00 on 7 January.
async fn case_with_two_ambers(env: &Env) {
    env.seed_organisation().await;
    env.ok(
        "2026-01-05T09:00:00Z",
        rtb_claim("M-1", "tenant1", "freehold", "2026-01-05"),
    )
    .await;
}

on_both_backends! {
    async fn notifications_arrive_through_smtp_with_headers_and_both_parts(env: Env) {
        let port = free_port();
        let received = start_smtp(port);
        let mut env = env;
        env.deliver_with(settings(port));
        case_with_two_ambers(&env).await;
        let owner = env.case("M-1").await.case.owner.unwrap();
        let outcome = env.tick("2026-01-07T09:00:00Z").await;
        assert_eq!((outcome.notifications, outcome.sent), (2, 2), "{outcome}");

        let got = received.lock().unwrap().clone();
        assert_eq!(got.len(), 2);
        let email = if owner == "off1" { "olu@example.org" } else { "ola@example.org" };
        for m in &got {
            assert_eq!(m.to, vec![email.to_string()]);
            assert_eq!(header(&m.data, "From"), Some("\"Home Ownership\" <homeownership@example.org>"));
            assert_eq!(header(&m.data, "Reply-To"), Some("\"Home Ownership Enquiries\" <enquiries@example.org>"));
            assert!(header(&m.data, "To").unwrap().contains(email));
            assert!(header(&m.data, "Subject").unwrap().starts_with("M-1: Check "), "{}", m.data);
            assert!(header(&m.data, "Message-ID").unwrap().starts_with("<casewarden.outbox."), "{}", m.data);
            assert!(header(&m.data, "Date").unwrap().contains("7 Jan 2026 09:00:00"), "{}", m.data);
            assert!(m.data.contains("Content-Type: multipart/alternative"));
            assert!(m.data.contains("Content-Type: text/plain; charset=utf-8"));
            assert!(m.data.contains("Content-Type: text/html; charset=utf-8"));
            assert!(m.data.contains("This task is nearing its service-level target."));
            assert!(m.data.contains("Thursday 8 January 2026 at 09:00"));
        }
        let ids: std::collections::BTreeSet<_> = got.iter().map(|m| header(&m.data, "Message-ID").unwrap().to_string()).collect();
        assert_eq!(ids.len(), 2);
        assert!(rows(&env).await.iter().all(|r| r.1 == "sent" && r.2 == 1));
    }

    async fn an_smtp_outage_loses_nothing_and_sends_nothing_twice(env: Env) {
        let port = free_port();
        let mut env = env;
        env.deliver_with(settings(port));
        case_with_two_ambers(&env).await;
        // The server is down: both notifications wait, with their retry schedule on view.
        let t1 = parse_time("2026-01-07T09:00:00Z").unwrap();
        let outcome = env.tick("2026-01-07T09:00:00Z").await;
        assert_eq!((outcome.sent, outcome.retried), (0, 2), "{outcome}");
        for (_, status, attempts, next, error) in rows(&env).await {
            assert_eq!((status.as_str(), attempts), ("pending", 1));
            let wait = (next.unwrap() - t1).num_seconds();
            assert!((48..=72).contains(&wait), "first retry after about a minute, not {wait}s");
            assert!(error.unwrap().contains("temporary failure"));
        }
        // Too early for the retry: nothing is tried.
        assert_eq!(env.tick("2026-01-07T09:00:30Z").await.retried, 0);
        let t2 = parse_time("2026-01-07T09:05:00Z").unwrap();
        env.tick("2026-01-07T09:05:00Z").await;
        for (_, _, attempts, next, _) in rows(&env).await {
            assert_eq!(attempts, 2);
            let wait = (next.unwrap() - t2).num_seconds();
            assert!((96..=144).contains(&wait), "the second retry waits about twice as long, not {wait}s");
        }
        // The server comes back: each message is delivered once.
        let received = start_smtp(port);
        let outcome = env.tick("2026-01-07T10:00:00Z").await;
        assert_eq!(outcome.sent, 2, "{outcome}");
        env.tick("2026-01-07T11:00:00Z").await;
        env.tick("2026-01-07T16:00:00Z").await;
        let got = received.lock().unwrap().clone();
        let ids: std::collections::BTreeSet<_> = got.iter().map(|m| header(&m.data, "Message-ID").unwrap().to_string()).collect();
        let expected: std::collections::BTreeSet<_> = rows(&env).await.iter().map(|r| format!("<casewarden.outbox.{}@example.org>", r.0)).collect();
        assert_eq!(ids, expected, "each row's message arrived under its own stable id");
        assert_eq!(got.len(), 2, "a message was sent twice");
        assert!(rows(&env).await.iter().all(|r| r.1 == "sent" && r.2 == 3), "sent on the third attempt");
    }

    async fn a_worker_that_dies_after_claiming_leaves_the_row_to_the_next_once_the_claim_runs_out(env: Env) {
        case_with_two_ambers(&env).await;
        // No mailer yet: the escalations write their rows and nothing is sent.
        env.tick("2026-01-07T09:00:00Z").await;
        let port = free_port();
        let received = start_smtp(port);
        let s = settings(port);
        let now = parse_time("2026-01-07T09:00:00Z").unwrap();
        // A worker claims both rows and dies before sending.
        let claimed = casewarden::mail::deliver::claim(&env.db, &s, now, 10).await.unwrap();
        assert_eq!(claimed.len(), 2);
        drop(claimed);
        let mut env = env;
        env.deliver_with(s);
        // While the claim lasts, nobody else takes the rows.
        assert_eq!(env.tick("2026-01-07T09:04:00Z").await.sent, 0);
        assert!(received.lock().unwrap().is_empty());
        // After it runs out, the next pass sends each once.
        assert_eq!(env.tick("2026-01-07T09:06:00Z").await.sent, 2);
        assert_eq!(env.tick("2026-01-07T09:20:00Z").await.sent, 0);
        assert_eq!(received.lock().unwrap().len(), 2);
    }

    async fn refused_recipients_and_broken_rows_fail_alone_with_their_reasons(env: Env) {
        let port = free_port();
        let received = start_smtp(port);
        let mut env = env;
        env.deliver_with(settings(port));
        env.seed_organisation().await;
        // The owner's mailbox is refused permanently; the line manager's server says "later".
        env.ok("2026-01-05T08:00:00Z", json!({"type": "upsert_user", "ref": "mgr1", "name": "Morag", "email": "later@example.org", "roles": ["managers"]})).await;
        env.ok("2026-01-05T08:00:00Z", json!({"type": "upsert_user", "ref": "off1", "name": "Olu", "email": "reject@example.org", "line_manager": "mgr1", "roles": ["home_ownership", "patch_north"]})).await;
        let mut claim = rtb_claim("M-2", "tenant1", "freehold", "2026-01-05");
        claim["attributes"]["patch"] = json!("north");
        env.ok("2026-01-05T09:00:00Z", claim).await;
        // A row whose facts its template cannot render.
        let (case_id,): (i64,) = sql("SELECT id FROM cases WHERE case_ref = 'M-2'").fetch_one(&env.db).await.unwrap();
        sql("INSERT INTO outbox (case_id, template, recipient_kind, recipient_ref, recipient_email, facts, status, next_attempt_at, created_at) \
             VALUES ($1, 'sla_amber', 'user', 'off2', 'ola@example.org', $2, 'pending', $3, $3)")
            .bind(case_id).bind(json!({"case": {}})).bind(parse_time("2026-01-05T09:00:00Z").unwrap())
            .execute(&env.db).await.unwrap();

        let outcome = env.tick("2026-01-08T09:00:00Z").await;
        let all = rows(&env).await;
        let rejected = by_email(&env, "reject@example.org").await;
        assert!(!rejected.is_empty() && rejected.iter().all(|r| r.0 == "dead" && r.1 == 1), "{rejected:?}");
        assert!(rejected[0].2.as_deref().unwrap().contains("permanent failure"), "{rejected:?}");
        let later = by_email(&env, "later@example.org").await;
        assert!(!later.is_empty() && later.iter().all(|r| r.0 == "pending" && r.1 == 1), "{later:?}");
        let broken = by_email(&env, "ola@example.org").await;
        assert_eq!(broken[0].0, "dead");
        assert!(broken[0].2.as_deref().unwrap().contains("template error"), "{broken:?}");
        assert!(outcome.dead >= 2, "{outcome} {all:?}");
        let dead_events = env.all_events().await.into_iter().filter(|e| e.kind == "notification_dead").count();
        assert_eq!(dead_events as u64, outcome.dead);
        assert!(received.lock().unwrap().is_empty(), "nothing reached a mailbox");

        // An operator requeues a dead one: it is tried again at the next pass.
        let id = sql("SELECT id FROM outbox WHERE recipient_email = 'reject@example.org' ORDER BY id LIMIT 1")
            .fetch_one::<(i64,)>(&env.db).await.unwrap().0;
        casewarden::report::retry_notification(&env.db, id, parse_time("2026-01-08T10:00:00Z").unwrap()).await.unwrap();
        assert!(casewarden::report::retry_notification(&env.db, id, parse_time("2026-01-08T10:00:00Z").unwrap()).await.is_err());
        env.tick("2026-01-08T10:00:00Z").await;
        let (status, attempts): (String, i64) = sql("SELECT status, attempts FROM outbox WHERE id = $1").bind(id).fetch_one(&env.db).await.unwrap();
        assert_eq!((status.as_str(), attempts), ("dead", 1));
    }
}
