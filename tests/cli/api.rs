//! `casewarden run`'s integration API as an operator meets it: refused on a public address
//! without TLS, served there once a TLS-terminating proxy is declared, its certificate renewed on
//! SIGHUP, and a log that holds neither a token nor SQL whatever the API was sent.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::{self_signed, trusting};
use super::{casewarden, run, signal, start_daemon, stop_daemon, text, workdir};

/// The daemon's JSON log, read as it is written.
struct Log {
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Log {
    fn follow(daemon: &mut Child) -> Log {
        let stderr = daemon.stderr.take().expect("the daemon's stderr is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Log {
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for an event with this message and returns its fields.
    fn wait_for(&mut self, message: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                panic!(
                    "the daemon never logged {message:?}:\n{}",
                    self.seen.join("\n")
                );
            };
            self.seen.push(line.clone());
            let event: Value = serde_json::from_str(&line).unwrap_or_default();
            if event["fields"]["message"] == message {
                return event["fields"].clone();
            }
        }
    }

    /// Everything it logged, once it has exited.
    fn all(mut self) -> String {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

/// Starts `casewarden run` with these settings and a JSON log; returns it, its log, and where
/// the API listens.
fn daemon_with_api(dir: &std::path::Path, env: &[(&str, &str)]) -> (Child, Log, SocketAddr) {
    let mut env = env.to_vec();
    env.push(("CASEWARDEN__LOG__FORMAT", "json"));
    let mut daemon = start_daemon(dir, &env, Stdio::piped());
    let mut log = Log::follow(&mut daemon);
    let listening = log.wait_for("API listening");
    let address: SocketAddr = listening["address"].as_str().unwrap().parse().unwrap();
    (daemon, log, address)
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn a_public_address_is_refused_without_tls_and_served_behind_a_declared_proxy() {
    let dir = workdir();
    let out = casewarden(dir.path())
        .args(["run"])
        .env("CASEWARDEN__API__LISTEN", "0.0.0.0:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("api.listen 0.0.0.0:0 is reachable from other machines, and without TLS bearer tokens would cross the network in the clear"),
        "{err}"
    );
    assert!(
        err.contains("[api.tls]") && err.contains("allow_plaintext"),
        "{err}"
    );
    assert!(
        !dir.path().join("casewarden.db").exists(),
        "refused before it opened the database"
    );

    let (mut daemon, _log, address) = daemon_with_api(
        dir.path(),
        &[
            ("CASEWARDEN__API__LISTEN", "0.0.0.0:0"),
            ("CASEWARDEN__API__ALLOW_PLAINTEXT", "true"),
        ],
    );
    assert!(address.ip().is_unspecified(), "{address}");
    let health = block_on(async {
        reqwest::get(format!("http://127.0.0.1:{}/healthz", address.port()))
            .await
            .unwrap()
            .status()
    });
    assert_eq!(health, reqwest::StatusCode::OK);
    assert_eq!(stop_daemon(&mut daemon).code(), Some(0));
}

#[test]
fn sighup_puts_a_renewed_certificate_on_new_connections() {
    let dir = workdir();
    let first = self_signed(dir.path(), "api");
    let (cert, key) = (
        first.cert_file.to_str().unwrap(),
        first.key_file.to_str().unwrap(),
    );
    let (mut daemon, mut log, address) = daemon_with_api(
        dir.path(),
        &[
            ("CASEWARDEN__API__TLS__CERT_FILE", cert),
            ("CASEWARDEN__API__TLS__KEY_FILE", key),
        ],
    );
    let health = |certificate| {
        block_on(async {
            let url = format!("https://localhost:{}/healthz", address.port());
            trusting(certificate, address)
                .get(url)
                .send()
                .await
                .map(|r| r.status())
        })
    };
    assert_eq!(health(&first).unwrap(), reqwest::StatusCode::OK);

    let renewed = self_signed(dir.path(), "renewed");
    std::fs::copy(&renewed.cert_file, &first.cert_file).unwrap();
    std::fs::copy(&renewed.key_file, &first.key_file).unwrap();
    signal(&daemon, "-HUP");
    log.wait_for("TLS certificate reloaded");
    assert_eq!(health(&renewed).unwrap(), reqwest::StatusCode::OK);
    assert!(
        health(&first).is_err(),
        "new connections still get the old certificate"
    );
    assert_eq!(stop_daemon(&mut daemon).code(), Some(0));
}

#[test]
fn the_log_of_hostile_requests_holds_no_token_and_no_sql() {
    let dir = workdir();
    let out = run(
        dir.path(),
        &["clients", "add", "log-crm", "--scopes", "commands:write"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_string();
    assert!(token.starts_with("cw_"), "{token}");
    let (mut daemon, log, address) =
        daemon_with_api(dir.path(), &[("CASEWARDEN__API__LISTEN", "127.0.0.1:0")]);

    let statuses = block_on(async {
        let http = reqwest::Client::new();
        let url = format!("http://{address}/v1/commands");
        let forged = format!("{token}0");
        let bodies: [(&str, &str, &[u8]); 5] = [
            (
                &token,
                "application/json",
                br#"{"type":"upsert_role","ref":"logged","name":"L"}"#,
            ),
            (
                &token,
                "application/x-ndjson",
                b"{\"type\":\"nope\"}\n{\"type\":\n\x00",
            ),
            (&token, "application/json", b"\xff\xfe"),
            (&forged, "application/json", b"{}"),
            (&token, "text/plain", b"{}"),
        ];
        let mut statuses = Vec::new();
        for (bearer, kind, body) in bodies {
            let response = http
                .post(&url)
                .bearer_auth(bearer)
                .header("content-type", kind)
                .body(body.to_vec())
                .send()
                .await
                .unwrap();
            statuses.push(response.status().as_u16());
        }
        let huge = format!("Bearer {token}{}", "A".repeat(50_000));
        let response = http.post(&url).header("authorization", huge).send().await;
        statuses.push(response.unwrap().status().as_u16());
        statuses
    });
    assert_eq!(statuses, [202, 422, 400, 401, 415, 401]);
    assert_eq!(stop_daemon(&mut daemon).code(), Some(0));

    let log = log.all();
    // The requests were logged (so the check below looks at something) …
    assert!(log.contains(r#""client":"log-crm""#), "{log}");
    assert!(log.contains(r#""route":"/v1/commands""#), "{log}");
    // … and nothing of a token, nor the daemon's SQL, went with them.
    for leak in [
        &token[3..],
        "Bearer",
        "SELECT ",
        "INSERT INTO",
        "token_hash",
    ] {
        assert!(!log.contains(leak), "the log holds {leak:?}:\n{log}");
    }
}
