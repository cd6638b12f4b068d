//! Delivery through a real SMTP server on loopback (mailin-embedded): headers and parts as
//! received, an outage that charges only the message being sent and sends nothing twice, giving
//! up by time, a worker that dies between claim and completion, two workers with slow sends,
//! permanent refusals, and rows that fail alone (template errors, unsafe stored names).

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
    /// How long the server takes over each message before replying.
    slow: std::time::Duration,
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
        std::thread::sleep(self.slow);
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
    start_slow_smtp(port, std::time::Duration::ZERO)
}

/// Starts an SMTP server that takes `slow` over each message.
fn start_slow_smtp(port: u16, slow: std::time::Duration) -> Arc<Mutex<Vec<Received>>> {
    let recorder = Recorder {
        slow,
        ..Recorder::default()
    };
    let received = recorder.received.clone();
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        let mut server = Server::new(recorder);
        server
            .with_name("smtp.test")
            .with_ssl(SslConfig::None)
            .unwrap()
            .with_num_threads(8)
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

/// (status, attempts, last error, first failure) of one row.
async fn by_id(
    env: &Env,
    id: i64,
) -> (
    String,
    i64,
    Option<String>,
    Option<chrono::DateTime<chrono::Utc>>,
) {
    sql("SELECT status, attempts, last_error, first_failed_at FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(&env.db)
        .await
        .unwrap()
}

/// (status, attempts, last error) of the rows to one address.
async fn by_email(env: &Env, email: &str) -> Vec<(String, i64, Option<String>)> {
    sql("SELECT status, attempts, last_error FROM outbox WHERE recipient_email = $1 ORDER BY id")
        .bind(email)
        .fetch_all(&env.db)
        .await
        .unwrap()
}

/// Queues `n` notifications to `email` straight into the outbox, due at `at`; returns their ids.
async fn queue(env: &Env, n: usize, email: &str, name: &str, at: &str) -> Vec<i64> {
    let mut facts = casewarden::mail::render::sample_facts("sla_amber");
    facts["recipient"]["name"] = json!(name);
    let mut ids = Vec::new();
    for _ in 0..n {
        let id: (i64,) = sql("INSERT INTO outbox (template, recipient_kind, recipient_ref, recipient_email, facts, status, next_attempt_at, created_at) \
             VALUES ('sla_amber', 'user', 'off1', $1, $2, 'pending', $3, $3) RETURNING id")
            .bind(email)
            .bind(facts.clone())
            .bind(parse_time(at).unwrap())
            .fetch_one(&env.db)
            .await
            .unwrap();
        ids.push(id.0);
    }
    ids
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

    async fn an_smtp_outage_charges_only_the_message_being_sent_and_loses_nothing(env: Env) {
        let port = free_port();
        let mut env = env;
        env.deliver_with(settings(port));
        case_with_two_ambers(&env).await;
        // The server is down: the first message is charged an attempt, the pass stops, and the
        // second is not tried at all.
        let t1 = parse_time("2026-01-07T09:00:00Z").unwrap();
        let outcome = env.tick("2026-01-07T09:00:00Z").await;
        assert_eq!((outcome.sent, outcome.retried, outcome.smtp_unreachable), (0, 1, true), "{outcome}");
        assert!(outcome.to_string().contains("SMTP server unreachable"), "{outcome}");
        let r = rows(&env).await;
        assert_eq!((r[0].1.as_str(), r[0].2), ("pending", 1));
        let wait = (r[0].3.unwrap() - t1).num_seconds();
        assert!((48..=72).contains(&wait), "first retry after about a minute, not {wait}s");
        assert!(r[0].4.as_deref().unwrap().contains("SMTP server unreachable"), "{r:?}");
        assert_eq!((r[1].1.as_str(), r[1].2, r[1].3, r[1].4.clone()), ("pending", 0, Some(t1), None), "not tried, not charged");
        let server = casewarden::mail::status::current(&env.db).await.unwrap().expect("the outage is on record");
        assert_eq!(server.unreachable_since, Some(t1));
        assert!(server.to_text().starts_with("smtp_unreachable: the SMTP server has been unreachable since 2026-01-07 09:00:00 GMT"), "{}", server.to_text());
        assert!(server.to_text().contains(&format!("127.0.0.1:{port}")), "{}", server.to_text());

        // The next pass tries the message that was not tried; the first waits for its retry.
        let outcome = env.tick("2026-01-07T09:00:30Z").await;
        assert_eq!(outcome.retried, 1, "{outcome}");
        assert!(rows(&env).await.iter().all(|r| r.2 == 1), "each charged once");
        let t2 = parse_time("2026-01-07T09:05:00Z").unwrap();
        env.tick("2026-01-07T09:05:00Z").await;
        let r = rows(&env).await;
        assert_eq!((r[0].2, r[1].2), (2, 1), "only the message being sent is charged: {r:?}");
        let wait = (r[0].3.unwrap() - t2).num_seconds();
        assert!((96..=144).contains(&wait), "the second retry waits about twice as long, not {wait}s");
        assert_eq!(casewarden::mail::status::current(&env.db).await.unwrap().unwrap().unreachable_since, Some(t1), "the outage began at the first failure");

        // The server comes back: each message is delivered once, and the outage is over.
        let received = start_smtp(port);
        let outcome = env.tick("2026-01-07T10:00:00Z").await;
        assert_eq!((outcome.sent, outcome.smtp_unreachable), (2, false), "{outcome}");
        env.tick("2026-01-07T11:00:00Z").await;
        env.tick("2026-01-07T16:00:00Z").await;
        assert_eq!(casewarden::mail::status::current(&env.db).await.unwrap(), None);
        let got = received.lock().unwrap().clone();
        let ids: std::collections::BTreeSet<_> = got.iter().map(|m| header(&m.data, "Message-ID").unwrap().to_string()).collect();
        let expected: std::collections::BTreeSet<_> = rows(&env).await.iter().map(|r| format!("<casewarden.outbox.{}@example.org>", r.0)).collect();
        assert_eq!(ids, expected, "each row's message arrived under its own stable id");
        assert_eq!(got.len(), 2, "a message was sent twice");
        let r = rows(&env).await;
        assert!(r.iter().all(|r| r.1 == "sent" && r.4.is_none()), "{r:?}");
        assert_eq!((r[0].2, r[1].2), (3, 2), "attempts count the tries that were made");
    }

    async fn a_blip_during_a_large_pass_leaves_the_untried_rows_as_they_were(env: Env) {
        let port = free_port();
        let mut env = env;
        env.deliver_with(MailSettings { smtp: SmtpSettings { pool_size: 4, ..settings(port).smtp }, ..settings(port) });
        let ids = queue(&env, 20, "olu@example.org", "Olu Officer", "2026-01-07T09:00:00Z").await;
        let outcome = env.tick("2026-01-07T09:00:00Z").await;
        assert!(outcome.smtp_unreachable, "{outcome}");
        let charged: Vec<_> = rows(&env).await.into_iter().filter(|r| r.2 > 0).collect();
        assert_eq!(charged.len(), 1, "one attempt for the whole pass, not one per row or per connection: {charged:?}");
        let untouched = rows(&env).await.into_iter().filter(|r| r.1 == "pending" && r.2 == 0 && r.4.is_none()).count();
        assert_eq!(untouched, 19);
        let received = start_smtp(port);
        let outcome = env.tick("2026-01-07T09:00:10Z").await;
        assert_eq!(outcome.sent, 19, "{outcome}");
        env.tick("2026-01-07T09:10:00Z").await;
        assert_eq!(received.lock().unwrap().len(), ids.len());
        assert!(rows(&env).await.iter().all(|r| r.1 == "sent"));
    }

    async fn a_notification_is_given_up_after_failing_for_the_configured_hours_not_after_a_count(env: Env) {
        let port = free_port();
        let mut env = env;
        env.deliver_with(MailSettings { give_up_after_hours: 2, retry_max_seconds: 1800, ..settings(port) });
        let id = queue(&env, 1, "olu@example.org", "Olu Officer", "2026-01-07T09:00:00Z").await[0];
        // Many failed passes within the two hours: still pending.
        let mut t = parse_time("2026-01-07T09:00:00Z").unwrap();
        let mut ticks = 0;
        while t < parse_time("2026-01-07T10:59:00Z").unwrap() {
            env.tick(&t.to_rfc3339()).await;
            ticks += 1;
            t += chrono::Duration::minutes(5);
        }
        let (status, attempts, _, _) = by_id(&env, id).await;
        assert_eq!(status, "pending");
        assert!(attempts >= 5, "{attempts} attempts in {ticks} passes");
        // The first attempt after two hours of failing gives up.
        let outcome = env.tick("2026-01-07T12:00:00Z").await;
        assert_eq!(outcome.dead, 1, "{outcome}");
        let (status, attempts2, error, _) = by_id(&env, id).await;
        assert_eq!((status.as_str(), attempts2), ("dead", attempts + 1));
        let error = error.unwrap();
        assert!(error.starts_with(&format!("gave up after {} attempts over 3 hours: SMTP server unreachable", attempts + 1)), "{error}");
        let events: Vec<_> = env.all_events().await.into_iter().filter(|e| e.kind == "notification_dead").collect();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data["reason"], json!(error));
    }

    async fn a_stored_recipient_name_with_a_line_break_fails_its_own_message_and_the_rest_are_delivered(env: Env) {
        let port = free_port();
        let received = start_smtp(port);
        let mut env = env;
        env.deliver_with(settings(port));
        let before = queue(&env, 2, "olu@example.org", "Olu Officer", "2026-01-07T09:00:00Z").await;
        let bad = queue(&env, 1, "boss@example.org", "Boss\r\nBcc: someone@example.org", "2026-01-07T09:00:00Z").await[0];
        let bell = queue(&env, 1, "boss@example.org", "Off\u{7}X\u{202e}", "2026-01-07T09:00:00Z").await[0];
        let after = queue(&env, 2, "olu@example.org", "Olu Officer", "2026-01-07T09:00:00Z").await;
        let outcome = env.tick("2026-01-07T09:00:00Z").await;
        assert_eq!((outcome.sent, outcome.dead), (4, 2), "{outcome}");
        for id in [bad, bell] {
            let (status, _, error, _) = by_id(&env, id).await;
            assert_eq!(status, "dead");
            let error = error.unwrap();
            assert!(error.contains("recipient name") && error.contains("not one line of visible text"), "{error}");
            assert!(!error.chars().any(char::is_control), "{error:?}");
        }
        for id in before.into_iter().chain(after) {
            assert_eq!(by_id(&env, id).await.0, "sent");
        }
        let dead_events = env.all_events().await.into_iter().filter(|e| e.kind == "notification_dead").count();
        assert_eq!(dead_events, 2);
        let got = received.lock().unwrap().clone();
        assert_eq!(got.len(), 4);
        for m in &got {
            assert_eq!(m.to, vec!["olu@example.org".to_string()]);
            assert!(!m.data.contains("Bcc:") && !m.data.contains("someone@example.org"), "{}", m.data);
        }
    }

    async fn files_are_written_in_batches_and_a_broken_row_fails_alone(env: Env) {
        let dir = tempfile::tempdir().unwrap();
        let mut env = env;
        env.deliver_with(MailSettings {
            transport: TransportKind::File,
            dir: dir.path().to_path_buf(),
            ..settings(1)
        });
        // More than one batch of claims, with broken rows in the first and the last batch.
        let first = queue(&env, 60, "olu@example.org", "Olu Officer", "2026-01-07T09:00:00Z").await;
        let bad = queue(&env, 1, "boss@example.org", "Boss\r\nBcc: someone@example.org", "2026-01-07T09:00:00Z").await[0];
        let rest = queue(&env, 180, "olu@example.org", "Olu Officer", "2026-01-07T09:00:00Z").await;
        let unknown = queue(&env, 1, "olu@example.org", "Olu Officer", "2026-01-07T09:00:00Z").await[0];
        sql("UPDATE outbox SET template = 'no_such_template' WHERE id = $1").bind(unknown).execute(&env.db).await.unwrap();
        let outcome = env.tick("2026-01-07T09:00:00Z").await;
        assert_eq!((outcome.sent, outcome.dead, outcome.retried), (240, 2, 0), "{outcome}");
        for id in first.iter().chain(&rest) {
            assert_eq!(by_id(&env, *id).await.0, "sent");
            let file = std::fs::read_to_string(dir.path().join(format!("outbox-{id}.eml"))).unwrap();
            assert!(file.contains(&format!("<casewarden.outbox.{id}@")), "{file}");
        }
        assert!(by_id(&env, unknown).await.2.unwrap().contains("template"));
        assert!(by_id(&env, bad).await.2.unwrap().contains("recipient name"));
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 240, "one file per message sent, no temporary files left");
        assert!(env.tick("2026-01-07T09:01:00Z").await.is_idle(), "each message is written once");
    }

    async fn two_delivery_workers_with_slow_sends_and_a_short_claim_send_each_message_once(env: Env) {
        let port = free_port();
        let received = start_slow_smtp(port, std::time::Duration::from_millis(250));
        let s = MailSettings { claim_seconds: 3, smtp: SmtpSettings { pool_size: 1, ..settings(port).smtp }, ..settings(port) };
        let ids = queue(&env, 24, "olu@example.org", "Olu Officer", "2026-01-07T09:00:00Z").await;
        let rules = crate::helpers::shipped_rules();
        let t0 = parse_time("2026-01-07T09:00:00Z").unwrap();
        let started = std::time::Instant::now();
        // Two workers, each with its own database pool and mailer, as two instances would be.
        // Each pass's clock is the shared simulated start plus the real time gone by, as two
        // daemons on one wall clock would see it; the second starts after the first one's
        // claims would have run out had it claimed the whole batch up front.
        let worker = |delay: u64| {
            let (url, s, rules) = (env.url.clone(), s.clone(), &rules);
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                let db = casewarden::db::Db::connect(&url).await.unwrap();
                let mailer = casewarden::mail::Mailer::new(&s).unwrap();
                let now = t0 + chrono::Duration::from_std(started.elapsed()).unwrap();
                casewarden::mail::deliver::run_once(&db, &std::sync::Arc::new(mailer), &rules.templates, &rules.calendars, &s, now).await.unwrap()
            }
        };
        let (a, b) = tokio::join!(worker(0), worker(4_300));
        assert_eq!(a.sent + b.sent, 24, "{a:?} {b:?}");
        assert!(b.sent > 0, "the second worker took its share: {a:?} {b:?}");
        let got = received.lock().unwrap().clone();
        let mut message_ids: Vec<_> = got.iter().map(|m| header(&m.data, "Message-ID").unwrap().to_string()).collect();
        message_ids.sort();
        let before = message_ids.len();
        message_ids.dedup();
        assert_eq!(before, message_ids.len(), "a message was sent twice");
        assert_eq!(message_ids.len(), ids.len());
        assert!(rows(&env).await.iter().all(|r| r.1 == "sent" && r.2 == 1));
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
        let first = casewarden::mail::deliver::claim(&env.db, &s, now).await.unwrap();
        let second = casewarden::mail::deliver::claim(&env.db, &s, now).await.unwrap();
        assert!(first.is_some() && second.is_some());
        assert!(casewarden::mail::deliver::claim(&env.db, &s, now).await.unwrap().is_none(), "a claimed row is not claimed twice");
        drop((first, second));
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
        casewarden::report::retry_notification(&env.db, id, parse_time("2026-01-08T10:00:00Z").unwrap(), "operator").await.unwrap();
        assert!(casewarden::report::retry_notification(&env.db, id, parse_time("2026-01-08T10:00:00Z").unwrap(), "operator").await.is_err());
        env.tick("2026-01-08T10:00:00Z").await;
        let (status, attempts): (String, i64) = sql("SELECT status, attempts FROM outbox WHERE id = $1").bind(id).fetch_one(&env.db).await.unwrap();
        assert_eq!((status.as_str(), attempts), ("dead", 1));
    }
}

/// A TCP relay in front of the SMTP server, standing in for a server that restarts: `cut` drops
/// every open connection, `stop` closes the port as well.
struct Relay {
    port: u16,
    accept: tokio::task::JoinHandle<()>,
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn start(port: u16, upstream: u16) -> Relay {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let open: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let conns = open.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns.lock().unwrap().push(task.abort_handle());
            }
        });
        Relay { port, accept, open }
    }

    fn cut(&self) {
        for c in self.open.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    async fn stop(self) -> u16 {
        self.cut();
        self.accept.abort();
        let _ = self.accept.await;
        self.port
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_server_dropped_is_replaced_and_a_closed_port_is_reported_unreachable() {
    use casewarden::mail::{Rendered, SendError};
    let upstream = free_port();
    let received = start_smtp(upstream);
    let relay = Relay::start(free_port(), upstream).await;
    let mailer = casewarden::mail::Mailer::new(&MailSettings {
        smtp: SmtpSettings {
            pool_size: 1,
            ..settings(relay.port).smtp
        },
        ..settings(relay.port)
    })
    .unwrap();
    let now = parse_time("2026-01-07T09:00:00Z").unwrap();
    let limit = std::time::Duration::from_secs(5);
    let m = Rendered {
        subject: "s".into(),
        text: "t".into(),
        html: None,
    };
    let send = |id: i64| {
        let message = mailer
            .build(id, Some("Olu"), "olu@example.org", &m, now)
            .unwrap();
        let mailer = &mailer;
        async move { mailer.send(id, &message, limit).await }
    };

    assert_eq!(send(1).await, Ok(()));
    // The server drops the pooled connection: the next message goes over a new one, once.
    relay.cut();
    assert_eq!(send(2).await, Ok(()));
    // The server is down: nothing is sent, and the failure says it was unreachable.
    let port = relay.stop().await;
    let err = send(3).await.unwrap_err();
    assert!(
        matches!(&err, SendError::Unreachable(e) if e.contains(&format!("127.0.0.1:{port}"))),
        "{err:?}"
    );
    assert!(err.is_connection());
    // Back again: the message goes.
    let _relay = Relay::start(port, upstream).await;
    assert_eq!(send(3).await, Ok(()));

    let got = received.lock().unwrap().clone();
    let ids: Vec<_> = got
        .iter()
        .map(|m| header(&m.data, "Message-ID").unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        [
            "<casewarden.outbox.1@example.org>",
            "<casewarden.outbox.2@example.org>",
            "<casewarden.outbox.3@example.org>"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_starttls_or_tls_is_unreachable_under_those_settings_and_nothing_is_sent_in_clear()
 {
    use casewarden::mail::{Rendered, SendError};
    let port = free_port();
    let received = start_smtp(port);
    let now = parse_time("2026-01-07T09:00:00Z").unwrap();
    let m = Rendered {
        subject: "s".into(),
        text: "t".into(),
        html: None,
    };
    for (security, expected) in [
        (Security::Starttls, "STARTTLS is not offered by 127.0.0.1"),
        (Security::Tls, "TLS handshake failed with 127.0.0.1"),
    ] {
        let s = MailSettings {
            smtp: SmtpSettings {
                security,
                ..settings(port).smtp
            },
            ..settings(port)
        };
        let mailer = casewarden::mail::Mailer::new(&s).unwrap();
        let message = mailer.build(1, None, "olu@example.org", &m, now).unwrap();
        let err = mailer
            .send(1, &message, std::time::Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SendError::Unreachable(e) if e.contains(expected)),
            "{security:?}: {err:?}"
        );
    }
    assert!(received.lock().unwrap().is_empty());
}
