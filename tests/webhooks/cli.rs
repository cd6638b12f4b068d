//! The real binary: `casewarden webhooks`, `webhooks replay`, `webhooks secret`, settings refused
//! at start, and a daemon killed (SIGKILL) mid-delivery and started again on the same database.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{copy_tree, repo_path};
use crate::receiver::{Answer, Receiver};
use crate::support::{acknowledged, deduplicated, role_events};

const SECRET_VAR: &str = "CRM_WEBHOOK_SECRET";

/// A working directory with the shipped rules and templates and a casewarden.toml for `url`,
/// with one subscription to `hook_url` (and `extra` lines in its table).
fn workdir(url: &str, hook_url: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo_path("rules"), &dir.path().join("rules"));
    copy_tree(&repo_path("templates"), &dir.path().join("templates"));
    let config = format!(
        "[database]\nurl = \"{url}\"\n\n[daemon]\nschedule = \"* * * * * *\"\nwatch_rules = false\n\n\
         [[webhooks]]\nname = \"crm\"\nurl = \"{hook_url}\"\nkinds = [\"role_upserted\"]\n\
         secret_env = \"{SECRET_VAR}\"\nbatch_size = 5\ntimeout_seconds = 2\nretry_base_seconds = 1\n\
         retry_max_seconds = 1\n{extra}\n"
    );
    std::fs::write(dir.path().join("casewarden.toml"), config).unwrap();
    dir
}

fn casewarden(dir: &Path, secret: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_casewarden"));
    c.current_dir(dir).env_remove("RUST_LOG");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CASEWARDEN__")) {
        c.env_remove(k);
    }
    c.env("CASEWARDEN__API__LISTEN", "127.0.0.1:0");
    c.env(SECRET_VAR, secret);
    c
}

fn run(dir: &Path, secret: &str, args: &[&str]) -> Output {
    casewarden(dir, secret).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed; returns its standard output.
fn ok(dir: &Path, secret: &str, args: &[&str]) -> String {
    let out = run(dir, secret, args);
    assert!(
        out.status.success(),
        "casewarden {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs a command that must fail; returns its standard error.
fn fails(dir: &Path, secret: &str, args: &[&str]) -> String {
    let out = run(dir, secret, args);
    assert!(!out.status.success(), "casewarden {args:?} succeeded");
    text(&out.stderr)
}

fn status(dir: &Path, secret: &str) -> Value {
    let json: Value = serde_json::from_str(&ok(dir, secret, &["webhooks", "--json"])).unwrap();
    json["webhooks"][0].clone()
}

/// Waits until `casewarden webhooks --json` shows what `done` wants, failing after 20 s.
async fn settled(dir: &Path, secret: &str, done: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shown = status(dir, secret);
        if done(&shown) {
            return;
        }
        assert!(Instant::now() < deadline, "not within 20 s: {shown:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn start(dir: &Path, secret: &str) -> Child {
    casewarden(dir, secret)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, which: &str) {
    let sent = Command::new("kill")
        .args([which, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

fn stop(mut child: Child) {
    signal(&child, "-TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the daemon did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `n` upsert_role command lines, submitted through the binary.
fn submit_roles(dir: &Path, secret: &str, prefix: &str, n: usize) {
    let lines: Vec<String> = (1..=n)
        .map(|i| format!(r#"{{"type":"upsert_role","ref":"{prefix}-{i}","name":"Role"}}"#))
        .collect();
    let file = dir.join(format!("{prefix}.jsonl"));
    std::fs::write(&file, lines.join("\n")).unwrap();
    ok(dir, secret, &["submit", file.to_str().unwrap()]);
}

async fn killed_mid_delivery_and_restarted_skips_nothing(url: String) {
    let receiver = Receiver::start().await;
    receiver.script([Answer::Hold]);
    let secret = casewarden::webhooks::sign::new_secret().unwrap();
    let dir = workdir(&url, &receiver.url, "allow_plaintext = true");
    let dir = dir.path();
    submit_roles(dir, &secret, "r", 12);
    // The subscription starts at the beginning of the log, not at its end.
    let replayed = ok(dir, &secret, &["webhooks", "replay", "crm", "--from", "1"]);
    assert!(
        replayed.starts_with("webhook crm delivers from event 1 next"),
        "{replayed}"
    );

    let daemon = start(dir, &secret);
    receiver
        .wait_for(Duration::from_secs(30), "the first request", |r| {
            !r.is_empty()
        })
        .await;
    signal(&daemon, "-KILL");
    let mut daemon = daemon;
    daemon.wait().unwrap();
    receiver.release();
    let first = receiver.requests()[0].clone();
    let shown = status(dir, &secret);
    assert_eq!(
        shown["in_flight"]["webhook_id"],
        first.id.as_str(),
        "{shown:#}"
    );
    assert_eq!(shown["in_flight"]["attempts"], 0, "{shown:#}");

    // The next daemon waits out the dead one's lease, then sends the same batch again.
    let daemon = start(dir, &secret);
    receiver
        .wait_for(
            Duration::from_secs(60),
            "every event after the restart",
            |r| acknowledged(r).len() >= 12,
        )
        .await;
    let db = casewarden::db::Db::connect(&url).await.unwrap();
    let expected = role_events(&db, 0).await;
    db.close().await;
    assert_eq!(expected.len(), 12);
    let requests = receiver.requests();
    assert_eq!(
        requests[1].id, first.id,
        "the interrupted batch again, under its webhook-id"
    );
    assert_eq!(deduplicated(&requests), expected, "nothing skipped");
    assert_eq!(acknowledged(&requests), expected);
    let line = format!(
        "delivered through event {}; waiting: 0 events",
        expected.last().unwrap()
    );
    settled(dir, &secret, |_| {
        ok(dir, &secret, &["webhooks"]).contains(&line)
    })
    .await;
    stop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_delivery_and_started_again_skips_nothing_on_sqlite() {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("cases.db").display());
    killed_mid_delivery_and_restarted_skips_nothing(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_delivery_and_started_again_skips_nothing_on_postgresql() {
    if let Some(url) = crate::pg::fresh_database() {
        killed_mid_delivery_and_restarted_skips_nothing(url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_shows_each_subscription_and_replay_sends_again_from_an_event() {
    let receiver = Receiver::start().await;
    let secret = casewarden::webhooks::sign::new_secret().unwrap();
    let db_dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db_dir.path().join("cases.db").display());
    let work = workdir(&url, &receiver.url, "allow_plaintext = true");
    let dir = work.path();
    ok(dir, &secret, &["migrate"]);
    let shown = ok(dir, &secret, &["webhooks"]);
    assert!(shown.contains(&format!("crm  {}", receiver.url)), "{shown}");
    assert!(shown.contains("not started yet"), "{shown}");
    assert!(status(dir, &secret)["delivered_through"].is_null());

    let error = fails(
        dir,
        &secret,
        &["webhooks", "replay", "nosuch", "--from", "1"],
    );
    assert!(
        error.contains(
            "no [[webhooks]] subscription is named \"nosuch\"; the configuration has crm"
        ),
        "{error}"
    );
    let error = fails(dir, &secret, &["webhooks", "replay", "crm", "--from", "0"]);
    assert!(error.contains("--from 0: event ids start at 1"), "{error}");
    let error = fails(dir, &secret, &["webhooks", "replay", "crm", "--from", "99"]);
    assert!(
        error.contains("--from 99 is past the end of the log, whose last event is 0: use 1"),
        "{error}"
    );

    let daemon = start(dir, &secret);
    settled(dir, &secret, |s| !s["delivered_through"].is_null()).await;
    submit_roles(dir, &secret, "r", 6);
    receiver
        .wait_for(Duration::from_secs(20), "six events", |r| {
            acknowledged(r).len() >= 6
        })
        .await;
    let db = casewarden::db::Db::connect(&url).await.unwrap();
    let events = role_events(&db, 0).await;
    settled(dir, &secret, |s| {
        s["delivered_through"].as_i64() >= Some(events[5])
    })
    .await;
    let shown = status(dir, &secret);
    let before = shown["delivered_through"].as_i64().unwrap();
    assert_eq!(shown["lag_events"], 0, "{shown:#}");
    assert_eq!(shown["url"], receiver.url.as_str());
    assert!(shown["last_success_at"].is_string(), "{shown:#}");
    assert!(
        !serde_json::to_string(&shown)
            .unwrap()
            .contains(&secret[6..])
    );

    let from = events[2].to_string();
    let said = ok(
        dir,
        &secret,
        &["webhooks", "replay", "crm", "--from", &from],
    );
    assert!(
        said.starts_with(&format!(
            "webhook crm delivers from event {from} next (it had delivered through event {before})"
        )),
        "{said}"
    );
    receiver
        .wait_for(Duration::from_secs(20), "the replay", |r| {
            acknowledged(r).len() >= 10
        })
        .await;
    let requests = receiver.requests();
    assert_eq!(acknowledged(&requests)[6..], events[2..]);
    let log = ok(dir, &secret, &["events", "--after", &before.to_string()]);
    let replay: Value = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["kind"] == "webhook_replayed")
        .expect("the replay is in the log");
    assert_eq!(replay["actor"], "operator");
    assert_eq!(replay["data"]["webhook"], "crm");
    assert_eq!(replay["data"]["from_event_id"], events[2]);
    assert_eq!(replay["data"]["previous_delivered_through"], before);
    db.close().await;
    stop(daemon);
}

#[test]
fn webhooks_secret_prints_a_new_standard_secret_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let one = ok(dir.path(), "", &["webhooks", "secret"]);
    let two = ok(dir.path(), "", &["webhooks", "secret"]);
    assert_ne!(one, two);
    for secret in [&one, &two] {
        assert!(secret.starts_with("whsec_"), "{secret}");
        casewarden::webhooks::sign::Key::parse(secret).unwrap();
    }
}

#[test]
fn run_refuses_plain_http_an_unset_secret_and_a_slip_naming_the_field() {
    let url = |dir: &tempfile::TempDir| format!("sqlite://{}", dir.path().join("c.db").display());
    let db = tempfile::tempdir().unwrap();
    let plain = workdir(&url(&db), "http://127.0.0.1:9/hook", "");
    let error = fails(plain.path(), "whsec_x", &["run"]);
    assert!(
        error.contains("webhooks[0].url \"http://127.0.0.1:9/hook\" is plain HTTP"),
        "{error}"
    );
    assert!(error.contains("allow_plaintext = true"), "{error}");

    let slip = workdir(
        &url(&db),
        "https://crm.example.org/hook",
        "failing_after_minutes = -5",
    );
    let error = fails(slip.path(), "whsec_x", &["webhooks"]);
    assert!(
        error.contains("webhooks[0].failing_after_minutes = -5 is out of range: use 0 to 10080"),
        "{error}"
    );

    let unset = workdir(&url(&db), "https://crm.example.org/hook", "");
    let mut c = casewarden(unset.path(), "");
    c.env_remove(SECRET_VAR).arg("run");
    let out = c.output().unwrap();
    assert!(!out.status.success());
    let error = text(&out.stderr);
    assert!(
        error.contains("webhooks[0].secret_env names CRM_WEBHOOK_SECRET, which is not set"),
        "{error}"
    );
}
