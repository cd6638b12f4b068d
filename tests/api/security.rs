//! Transport security and limits: HTTPS with the certificate in `[api.tls]` and nothing but TLS
//! on its port, the certificate read again on reload, a start refused with both files named when
//! they cannot be used, each client held to its request rate and to its number of requests in
//! flight (429 before anything is written), and connections that stop sending closed.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use casewarden::api::settings::TlsSettings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api_on_both_backends;
use crate::common::{SelfSigned, self_signed, trusting};
use crate::harness::{self, Api};

/// A certificate as `[api.tls]` names it.
fn tls(certificate: &SelfSigned) -> TlsSettings {
    TlsSettings {
        cert_file: certificate.cert_file.clone(),
        key_file: certificate.key_file.clone(),
    }
}

async fn healthz(client: &reqwest::Client, address: SocketAddr) -> reqwest::Result<StatusCode> {
    let url = format!("https://localhost:{}/healthz", address.port());
    Ok(client.get(url).send().await?.status())
}

fn address_of(api: &Api) -> SocketAddr {
    let port = reqwest::Url::parse(&api.base).unwrap().port().unwrap();
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("cases.db").display())
}

/// What the server sends back to a plain HTTP request on its port, until it closes.
async fn plain_http_answer(address: SocketAddr) -> Vec<u8> {
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer));
    // A reset connection is as good a refusal as a closed one.
    let _ = read
        .await
        .expect("the server closes a plain HTTP connection");
    answer
}

fn role(r: &str) -> Value {
    json!({"type": "upsert_role", "ref": r, "name": format!("Role {r}")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_certificate_the_api_answers_https_and_never_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let certificate = self_signed(dir.path(), "api");
    let url = sqlite_url(dir.path());
    let files = tls(&certificate);
    let mut api = Api::start(&url, dir, |s| s.api.tls = Some(files))
        .await
        .expect("the daemon starts with TLS");
    let address = address_of(&api);
    assert!(api.base.starts_with("https://localhost:"), "{}", api.base);

    api.http = trusting(&certificate, address);
    assert_eq!(healthz(&api.http, address).await.unwrap(), StatusCode::OK);
    // A command goes there and back with its bearer token inside TLS.
    api.ok(role("tls-officers")).await;

    // A client that does not trust the certificate gets no answer: it is really checked.
    let strict = reqwest::Client::builder()
        .resolve("localhost", address)
        .build()
        .unwrap();
    assert!(healthz(&strict, address).await.is_err());

    // Plain HTTP on the same port gets no HTTP answer at all, so no token is ever read from it.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", address.port()))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    let answer = plain_http_answer(address).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    api.stop().await;
}

/// A server started the way the daemon starts it, on a database of its own.
async fn server(dir: &Path, tls: TlsSettings) -> anyhow::Result<casewarden::api::Server> {
    let mut settings = harness::settings(&sqlite_url(dir), dir);
    settings.api.tls = Some(tls);
    let app = casewarden::startup::build(settings, true).await?;
    let live = casewarden::live::Live::new(
        app.engine.rules().hash.clone(),
        casewarden::clock::now(),
        Duration::from_secs(3600),
    );
    let state = casewarden::api::ApiState::new(
        app.engine.clone(),
        live,
        app.settings.api.clone(),
        Vec::new(),
    );
    casewarden::api::Server::start(state).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_puts_the_renewed_certificate_on_new_connections_and_a_broken_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let old = self_signed(dir.path(), "old");
    let server = server(dir.path(), tls(&old)).await.unwrap();
    let address = server.address;
    assert_eq!(
        healthz(&trusting(&old, address), address).await.unwrap(),
        StatusCode::OK
    );

    // The renewal is written over the same files, as certbot or an operator would.
    let renewed = self_signed(dir.path(), "renewed");
    std::fs::copy(&renewed.cert_file, &old.cert_file).unwrap();
    std::fs::copy(&renewed.key_file, &old.key_file).unwrap();
    server.reload_tls().await.expect("the renewal loads");
    assert_eq!(
        healthz(&trusting(&renewed, address), address)
            .await
            .unwrap(),
        StatusCode::OK
    );
    assert!(
        healthz(&trusting(&old, address), address).await.is_err(),
        "new connections still present the old certificate"
    );

    // A half-written renewal is refused with the files named, and the good certificate stays.
    std::fs::write(&old.key_file, "-----BEGIN PRIVATE KEY-----\ntruncated").unwrap();
    let refused = format!("{:#}", server.reload_tls().await.unwrap_err());
    assert!(
        refused.contains(&format!(
            "cannot load the TLS certificate {} and key {}",
            old.cert_file.display(),
            old.key_file.display()
        )),
        "{refused}"
    );
    assert_eq!(
        healthz(&trusting(&renewed, address), address)
            .await
            .unwrap(),
        StatusCode::OK
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_cannot_be_used_stops_the_daemon_starting_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let good = self_signed(dir.path(), "good");
    let other = self_signed(dir.path(), "other");
    let garbage = dir.path().join("garbage.key");
    std::fs::write(&garbage, "not a key\n").unwrap();
    let missing = dir.path().join("missing.key");
    let cases = [
        (garbage, "contained no keys"),
        (missing, "No such file or directory"),
        // A key of another certificate: every handshake would fail, so the start must.
        (other.key_file.clone(), "KeyMismatch"),
    ];
    for (key_file, cause) in cases {
        let tls = TlsSettings {
            cert_file: good.cert_file.clone(),
            key_file,
        };
        let database = tempfile::tempdir().unwrap();
        let url = sqlite_url(database.path());
        let files = tls.clone();
        let error = match Api::start(&url, database, |s| s.api.tls = Some(files)).await {
            Ok(_) => panic!("the daemon started with key {}", tls.key_file.display()),
            Err(e) => format!("{e:#}"),
        };
        let named = format!(
            "cannot load the TLS certificate {} and key {} ([api.tls])",
            tls.cert_file.display(),
            tls.key_file.display()
        );
        assert!(error.contains(&named), "{error}");
        assert!(error.contains(cause), "{error}");
    }
}

/// A request body whose parts the test sends when it chooses; it ends when the sender is dropped.
fn body_sent_by_hand() -> (tokio::sync::mpsc::Sender<&'static [u8]>, reqwest::Body) {
    let (chunks, rx) = tokio::sync::mpsc::channel::<&'static [u8]>(1);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| (Ok::<_, std::io::Error>(c), rx))
    });
    (chunks, reqwest::Body::wrap_stream(body))
}

/// Starts a POST whose body has begun and waits for the rest; returns the sender of the rest
/// and the request under way.
async fn begin_slow_request(
    api: &Api,
    token: &str,
) -> (
    tokio::sync::mpsc::Sender<&'static [u8]>,
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
) {
    let (chunks, body) = body_sent_by_hand();
    let in_flight = tokio::spawn(
        api.request(Method::POST, token, "/v1/commands")
            .header("content-type", "application/json")
            .body(body)
            .send(),
    );
    chunks.send(b"{\"type\": \"upsert_role\", ").await.unwrap();
    (chunks, in_flight)
}

/// A problem document's status, `Retry-After` and body.
async fn problem(response: reqwest::Response) -> (StatusCode, Option<u64>, Value) {
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry, response.json().await.unwrap())
}

api_on_both_backends! {
    #[settings(|s| {
        s.api.client_requests_per_second = 1;
        s.api.client_burst = 2;
    })]
    async fn a_client_over_its_rate_gets_429_and_writes_nothing_while_others_go_on(api: Api) {
        let busy = api.client("busy-crm", "commands:write").await;
        let quiet = api.client("quiet-crm", "commands:write").await;
        let inbox = api.count("inbox").await;
        for _ in 0..2 {
            assert_eq!(api.get(&busy, "/v1/commands/999999").await.0, StatusCode::NOT_FOUND);
        }
        let third = api.request(Method::POST, &busy, "/v1/commands").json(&role("x")).send().await.unwrap();
        let (status, retry, body) = problem(third).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body:#}");
        assert_eq!(retry, Some(1));
        assert_eq!(body["retry_after"], 1);
        assert_eq!(body["type"], "urn:casewarden:problem:rate-limited");
        assert!(body["detail"].as_str().unwrap().contains("client busy-crm is over its request rate (api.client_requests_per_second)"), "{body:#}");
        assert_eq!(api.count("inbox").await, inbox, "a refused request queued nothing");

        let (status, body) = api.commands(&quiet, &role("y")).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        assert_eq!(body["results"][0]["status"], "accepted");
    }

    #[settings(|s| {
        s.api.client_concurrency = 1;
        s.api.client_requests_per_second = 1000;
        s.api.client_burst = 1000;
    })]
    async fn a_client_with_a_request_in_flight_gets_429_for_the_next_until_it_ends(api: Api) {
        let slow = api.client("slow-crm", "commands:write").await;
        let inbox = api.count("inbox").await;
        // A request whose body comes slowly holds its client's one place until the body ends. It
        // races the probes below for that place: when a probe wins, it is refused; start it again.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let (mut chunks, mut in_flight) = begin_slow_request(api, &slow).await;
        let refused = loop {
            let response = api.request(Method::GET, &slow, "/v1/commands/999999").send().await.unwrap();
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                break problem(response).await;
            }
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
            if in_flight.is_finished() {
                // Refused before its body was sent: answered 429, or cut off while sending.
                if let Ok(lost) = in_flight.await.unwrap() {
                    assert_eq!(lost.status(), StatusCode::TOO_MANY_REQUESTS);
                }
                (chunks, in_flight) = begin_slow_request(api, &slow).await;
            }
            assert!(tokio::time::Instant::now() < deadline, "a second request in flight was never refused");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(refused.1, Some(1));
        assert!(refused.2["detail"].as_str().unwrap().contains("client slow-crm already has 1 requests in flight (api.client_concurrency)"), "{:#}", refused.2);
        let post = api.request(Method::POST, &slow, "/v1/commands").json(&role("refused")).send().await.unwrap();
        assert_eq!(post.status(), StatusCode::TOO_MANY_REQUESTS);
        // Another client is not held up by this one.
        assert_eq!(api.get(&api.admin, "/v1/commands/999999").await.0, StatusCode::NOT_FOUND);

        chunks.send(b"\"ref\": \"slow\", \"name\": \"Slow\"}").await.unwrap();
        drop(chunks);
        let done = in_flight.await.unwrap().unwrap();
        assert_eq!(done.status(), StatusCode::ACCEPTED);
        // Its place is free again.
        assert_eq!(api.get(&slow, "/v1/commands/999999").await.0, StatusCode::NOT_FOUND);
        assert_eq!(api.count("inbox").await, inbox + 1, "only the slow request queued its command");
    }
}

api_on_both_backends! {
    #[settings(|s| s.api.read_timeout_seconds = 1)]
    async fn a_connection_that_stops_sending_is_closed_and_a_stalled_body_answered_408(api: Api) {
        let token = api.client("stalling-crm", "commands:write").await;
        let inbox = api.count("inbox").await;
        // A head that never ends holds nothing for long.
        let address = api.base.trim_start_matches("http://");
        let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
        socket.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
        assert!(closed.is_ok(), "a connection that never finished its head is still open");
        assert!(!answer.starts_with(b"HTTP/1.1 2"), "{}", String::from_utf8_lossy(&answer));
        // Nor an HTTP/2 connection (prior knowledge, no TLS) that says hello and no more.
        let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
        socket.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
        assert!(closed.is_ok(), "an HTTP/2 connection that answers no ping is still open");

        // A body that stops half way is answered 408 and queues nothing.
        let (chunks, body) = body_sent_by_hand();
        chunks.send(b"{\"type\": \"upsert_role\", ").await.unwrap();
        let sent = api.request(Method::POST, &token, "/v1/commands")
            .header("content-type", "application/json")
            .body(body)
            .send();
        let response = tokio::time::timeout(Duration::from_secs(10), sent).await.expect("a stalled body is answered").unwrap();
        let (status, _, body) = problem(response).await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body:#}");
        assert!(body["detail"].as_str().unwrap().contains("api.read_timeout_seconds"), "{body:#}");
        drop(chunks);
        assert_eq!(api.count("inbox").await, inbox);
        api.ok(role("after-stall")).await;
    }
}
