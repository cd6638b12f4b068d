//! What the webhook scenarios share: a subscription's settings and secret, commands that make
//! events, waiting for delivery, and the independent signature check.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use casewarden::db::Db;
use casewarden::webhooks::WebhookSettings;
use serde_json::{Value, json};

use crate::receiver::Request;

/// A signing secret in a file of its own, as a systemd credential would be.
pub struct Secret {
    pub text: String,
    pub path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

pub fn secret() -> Secret {
    let dir = tempfile::tempdir().unwrap();
    let text = casewarden::webhooks::sign::new_secret().unwrap();
    let path = dir.path().join("webhook-secret");
    std::fs::write(&path, format!("{text}\n")).unwrap();
    Secret {
        text,
        path,
        _dir: dir,
    }
}

/// A subscription to `url` for role events, with quick retries for a test.
pub fn hook(url: &str, secret: &Secret) -> WebhookSettings {
    WebhookSettings {
        name: "crm".into(),
        url: url.into(),
        allow_plaintext: true,
        kinds: vec!["role_upserted".into()],
        secret_file: Some(secret.path.clone()),
        batch_size: 10,
        timeout_seconds: 1,
        retry_base_seconds: 1,
        retry_max_seconds: 1,
        ..WebhookSettings::default()
    }
}

/// `n` upsert_role commands, `{prefix}-1` and on, each writing one `role_upserted` event.
pub fn roles(prefix: &str, n: usize) -> Value {
    Value::Array(
        (1..=n)
            .map(|i| json!({"type": "upsert_role", "ref": format!("{prefix}-{i}"), "name": "Role"}))
            .collect(),
    )
}

/// Waits until a daemon has started the subscription (made its row at the end of the log), so
/// the events written after are all for it; returns where it starts.
pub async fn started(db: &Db, hook: &WebhookSettings) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = casewarden::webhooks::status(db, std::slice::from_ref(hook), now())
            .await
            .unwrap();
        if let Some(through) = status.webhooks[0].delivered_through {
            return through;
        }
        assert!(Instant::now() < deadline, "the subscription never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn now() -> chrono::DateTime<chrono::Utc> {
    casewarden::clock::now()
}

/// The ids of the `role_upserted` events after `after`, in order.
pub async fn role_events(db: &Db, after: i64) -> Vec<i64> {
    let rows: Vec<(i64,)> = casewarden::db::sql(
        "SELECT id FROM events WHERE kind = 'role_upserted' AND id > $1 ORDER BY id",
    )
    .bind(after)
    .fetch_all(db)
    .await
    .unwrap();
    rows.into_iter().map(|r| r.0).collect()
}

/// How many events of a kind the log holds.
pub async fn count_kind(db: &Db, kind: &str) -> i64 {
    casewarden::db::sql("SELECT COUNT(*) FROM events WHERE kind = $1")
        .bind(kind)
        .scalar(db)
        .await
        .unwrap()
}

/// The events of the acknowledged requests, in the order they arrived.
pub fn acknowledged(requests: &[Request]) -> Vec<i64> {
    requests
        .iter()
        .filter(|r| r.acknowledged())
        .flat_map(|r| r.events.clone())
        .collect()
}

/// The batches as a receiver de-duplicating by webhook-id keeps them: each id once, in the order
/// first seen. Asserts every repeat of an id is byte for byte the batch first sent under it, and
/// that no event came in two different batches.
pub fn deduplicated(requests: &[Request]) -> Vec<i64> {
    let mut seen: Vec<(&str, &[u8])> = Vec::new();
    let mut events = Vec::new();
    for r in requests {
        match seen.iter().find(|(id, _)| *id == r.id) {
            Some((_, body)) => assert_eq!(
                *body,
                r.body.as_slice(),
                "a retry of {} changed the batch",
                r.id
            ),
            None => {
                seen.push((&r.id, &r.body));
                events.extend(&r.events);
            }
        }
    }
    let mut sorted = events.clone();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        events.len(),
        "an event came in two batches: {events:?}"
    );
    events
}

/// Checks the signatures of `requests` with the Python script: `Ok` with its report, or `Err`.
pub fn python_verifies(secret: &str, requests: &[Request]) -> Result<String, String> {
    let docs: Vec<Value> = requests
        .iter()
        .map(|r| {
            json!({"id": r.id, "timestamp": r.timestamp, "signature": r.signature,
                   "body": base64::engine::general_purpose::STANDARD.encode(&r.body)})
        })
        .collect();
    let script = crate::common::repo_path("tests/webhooks/verify_signatures.py");
    let mut child = Command::new("python3")
        .arg(script)
        .env("WEBHOOK_SECRET", secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::Array(docs).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// The subscription's row as `casewarden webhooks --json` shows it.
pub async fn status(db: &Db, hook: &WebhookSettings) -> Value {
    let status = casewarden::webhooks::status(db, std::slice::from_ref(hook), now())
        .await
        .unwrap();
    serde_json::to_value(&status.webhooks[0]).unwrap()
}

/// Waits until the subscription's status satisfies `done` (the daemon records an answer just
/// after the receiver gives it), failing the test after 20 s; returns that status.
pub async fn settled(
    db: &Db,
    hook: &WebhookSettings,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shown = status(db, hook).await;
        if done(&shown) {
            return shown;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within 20 s: {shown:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
