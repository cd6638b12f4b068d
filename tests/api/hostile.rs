//! Hostile input over HTTP: malformed and oversized bodies, wrong media types, ten thousand bad
//! lines with valid commands among them, and abusive headers. Whatever comes in, every answer is
//! problem+json or the API's own JSON and says nothing of tokens or SQL, only valid commands are
//! queued, each once, and the server goes on answering.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api_on_both_backends;
use crate::harness::Api;

/// What no answer may hold: a token, SQL, or a database's or Rust's own words.
const LEAKS: [&str; 9] = [
    "cw_",
    "SELECT ",
    "INSERT INTO",
    "UPDATE inbox",
    "sqlx",
    "error returned from database",
    "SQLITE_",
    "panicked",
    "Failed to buffer",
];

/// Checks an answer's type and text, and returns its status and JSON body: refusals are problem
/// documents whose status matches, successes the API's JSON.
async fn checked(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let kind = crate::harness::content_type(&response);
    let text = response.text().await.unwrap();
    let expected = match status.is_success() {
        true => "application/json",
        false => "application/problem+json",
    };
    assert_eq!(kind, expected, "{status}: {text}");
    for leak in LEAKS {
        assert!(!text.contains(leak), "the answer holds {leak:?}: {text}");
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    if !status.is_success() {
        assert_eq!(body["status"], status.as_u16(), "{body:#}");
        assert!(
            body["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:casewarden:problem:")
        );
        assert!(!body["detail"].as_str().unwrap().is_empty());
    }
    (status, body)
}

fn post(
    api: &Api,
    token: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> RequestBuilder {
    api.request(Method::POST, token, "/v1/commands")
        .header("content-type", content_type)
        .body(body)
}

/// The server still answers: health, and a command there and back.
async fn still_serving(api: &Api, r: &str) {
    let (status, _) = checked(api.http.get(format!("{}/healthz", api.base))).await;
    assert_eq!(status, StatusCode::OK);
    api.ok(json!({"type": "upsert_role", "ref": r, "name": "Still here"}))
        .await;
}

/// Inbox rows by status.
async fn inbox(api: &Api) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> =
        casewarden::db::sql("SELECT status, COUNT(*) FROM inbox GROUP BY status")
            .fetch_all(&api.db)
            .await
            .unwrap();
    rows.into_iter().collect()
}

/// Sends bytes no HTTP client library would and returns the status the server answered with
/// (0 if it closed without one), its headers and its body.
async fn raw(api: &Api, request: &[u8]) -> (u16, String, Vec<u8>) {
    let address = api.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    // The server may answer and close before it has read everything: that is an answer too.
    let _ = socket.write_all(request).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer));
    let _ = read.await.expect("the server answers or closes");
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, String::new(), answer);
    };
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, answer[end + 4..].to_vec())
}

api_on_both_backends! {
    async fn malformed_bodies_and_wrong_media_types_get_problems_and_write_nothing(api: Api) {
        let token = api.client("intake-crm", "commands:write").await;
        let before = inbox(api).await;
        let malformed: [&[u8]; 8] = [
            b"", b"   \n", b"{", b"[{\"type\":", b"[1,]", b"{\"type\":\"upsert_role\",}", b"nul", b"[[[[[[",
        ];
        for body in malformed {
            let (status, _) = checked(post(api, &token, "application/json", body)).await;
            assert!(matches!(status, StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY), "{status}");
        }
        let one = br#"{"type":"upsert_role","ref":"x","name":"X"}"#;
        for kind in ["text/plain", "application/xml", "application/jsonx", "application/json-patch+json",
                     "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "", "json"] {
            let (status, body) = checked(post(api, &token, kind, &one[..])).await;
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{kind}: {body:#}");
        }
        let (status, _) = checked(api.request(Method::POST, &token, "/v1/commands").body(&one[..])).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "no content type");
        let latin1 = reqwest::header::HeaderValue::from_bytes(b"application/json\xff").unwrap();
        let (status, _) = checked(api.request(Method::POST, &token, "/v1/commands").header("content-type", latin1).body(&one[..])).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

        // Over the limit in chunks, with no Content-Length to refuse it by: 17 × 64 KiB > 1 MiB.
        let chunks = futures_util::stream::iter((0..17).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])));
        let (status, body) = checked(post(api, &token, "application/x-ndjson", reqwest::Body::wrap_stream(chunks))).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body:#}");
        // The same told by a Content-Length far over the limit, before any body.
        let (status, head, body) = raw(api, format!(
            "POST /v1/commands HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n{{"
        ).as_bytes()).await;
        assert_eq!(status, 413, "{head}");
        assert!(head.contains("content-type: application/problem+json"), "{head}");
        assert!(!String::from_utf8_lossy(&body).contains("cw_"));

        // A path parameter that is not an id, and routes and methods that do not exist.
        for path in ["/v1/commands/abc", "/v1/commands/99999999999999999999999", "/v1/commands/-0x1"] {
            let (status, body) = checked(api.request(Method::GET, &token, path)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body:#}");
        }
        assert_eq!(checked(api.request(Method::GET, &token, "/v1/nothing")).await.0, StatusCode::NOT_FOUND);
        assert_eq!(checked(api.request(Method::PUT, &token, "/v1/commands")).await.0, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(checked(api.request(Method::DELETE, &token, "/healthz")).await.0, StatusCode::METHOD_NOT_ALLOWED);

        assert_eq!(inbox(api).await, before, "a refused request queued nothing");
        still_serving(api, "after-malformed").await;
    }

    async fn ten_thousand_hostile_lines_queue_each_valid_command_once_and_nothing_else(api: Api) {
        let token = api.client("hostile-crm", "commands:write").await;
        assert!(inbox(api).await.is_empty());
        let mut valid = 0;
        for request in 0..10 {
            let lines: Vec<usize> = (request * 1000..(request + 1) * 1000).collect();
            let body = frame(&lines, request);
            if request == 9 {
                // One line that is not UTF-8 makes the whole body unreadable: nothing of it is queued.
                let mut spoiled = b"{\"type\":\"upsert_role\",\"ref\":\"latin\",\"name\":\"caf\xe9\"}\n\xc0\xaf\xff\n".to_vec();
                spoiled.extend_from_slice(&body);
                let (status, problem) = checked(post(api, &token, "application/x-ndjson", spoiled).header("prefer", "wait=30")).await;
                assert_eq!(status, StatusCode::BAD_REQUEST, "{problem:#}");
                assert!(problem["detail"].as_str().unwrap().contains("not UTF-8"), "{problem:#}");
                assert_eq!(inbox(api).await.values().sum::<i64>(), valid as i64);
            }
            assert!(body.len() < 1024 * 1024, "request {request} is {} bytes", body.len());
            let (status, answer) = checked(post(api, &token, "application/x-ndjson", body).header("prefer", "wait=30")).await;
            assert_eq!(status, StatusCode::OK, "request {request}");
            let results = answer["results"].as_array().unwrap();
            assert_eq!(results.len(), 1000);
            for (result, &n) in results.iter().zip(&lines) {
                assert_eq!(result["line"], n % 1000 + 1);
                match is_valid(n) {
                    true => {
                        valid += 1;
                        assert_eq!(result["status"], "accepted", "line {n}: {result:#}");
                    }
                    false => {
                        assert_eq!(result["status"], "invalid", "line {n}: {result:#}");
                        assert!(result.get("inbox_id").is_none(), "line {n}: {result:#}");
                        assert!(!result["reason"].as_str().unwrap().is_empty());
                    }
                }
            }
        }
        // A JSON array carries only JSON, so its bad items are the well-formed kinds.
        let items: Vec<Value> = (0..300).map(|n| serde_json::from_str(&array_item(n)).unwrap()).collect();
        let (status, answer) = checked(post(api, &token, "application/json", serde_json::to_vec(&items).unwrap()).header("prefer", "wait=30")).await;
        assert_eq!(status, StatusCode::OK);
        let statuses: Vec<&str> = answer["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
        let expected: Vec<&str> = (0..300).map(|n| if n % 10 == 0 { "accepted" } else { "invalid" }).collect();
        assert_eq!(statuses, expected, "{answer:#}");
        valid += 30;

        let rows = inbox(api).await;
        assert_eq!(rows, BTreeMap::from([("accepted".to_string(), valid as i64)]), "only the valid commands were queued, and each was applied");
        let roles: i64 = casewarden::db::sql("SELECT COUNT(*) FROM roles WHERE ref LIKE 'hostile-%'").scalar(&api.db).await.unwrap();
        let ids: i64 = casewarden::db::sql("SELECT COUNT(DISTINCT command_id) FROM inbox WHERE command_id LIKE 'hostile-%'").scalar(&api.db).await.unwrap();
        assert_eq!((roles, ids), (valid as i64, valid as i64), "each valid command applied once");
        still_serving(api, "after-hostile-lines").await;
    }

    async fn abusive_headers_are_refused_without_echo_and_the_server_carries_on(api: Api) {
        let token = api.client("header-crm", "commands:write").await;
        let before = inbox(api).await;
        let one = br#"{"type":"upsert_role","ref":"h","name":"H"}"#;
        let refused = |auth: reqwest::header::HeaderValue| {
            api.http.post(format!("{}/v1/commands", api.base)).header("authorization", auth)
                .header("content-type", "application/json").body(&one[..])
        };
        let header = |bytes: &[u8]| reqwest::header::HeaderValue::from_bytes(bytes).unwrap();
        let huge = format!("Bearer {}{}", &token, "A".repeat(60_000));
        for auth in [
            header(huge.as_bytes()),
            header(format!("Bearer {token}\u{e9}").as_bytes()),
            header(b"Bearer cw_\xff\xfe"),
            header(b"Bearer"),
            header(b"Bearer    "),
            header(format!("Basic {token}").as_bytes()),
            header(format!("Bearer {token} {token}").as_bytes()),
            header(format!("Bearer\t{token}").as_bytes()),
        ] {
            let (status, body) = checked(refused(auth.clone())).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}: {body:#}");
        }
        // Control characters and an oversized head never reach casewarden: the HTTP layer refuses
        // them, and says nothing back but a status.
        let control = format!("POST /v1/commands HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\x01\x1b[31m\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", one.len());
        let mut control = control.into_bytes();
        control.extend_from_slice(one);
        let text = String::from_utf8(control.clone()).unwrap();
        let (nul, delete) = (text.replace("\x01\x1b[31m", "\0"), text.replace("\x01\x1b[31m", "\x7f"));
        let oversized = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n", "A".repeat(600_000));
        let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
        for i in 0..150 {
            many.push_str(&format!("Prefer: p{i}=1\r\n"));
        }
        many.push_str("Connection: close\r\n\r\n");
        let refusals = [
            (control, 400),
            (nul.into_bytes(), 400),
            (delete.into_bytes(), 400),
            (oversized.into_bytes(), 431),
            (many.into_bytes(), 431),
        ];
        for (request, expected) in refusals {
            let (status, head, body) = raw(api, &request).await;
            assert_eq!(status, expected, "{head}");
            assert!(body.is_empty(), "{}", String::from_utf8_lossy(&body));
        }

        // Prefer: many of them, one absurd, one over the longest wait honoured.
        let command = |r: &str| json!({"type": "upsert_role", "ref": r, "name": "P"});
        let mut request = api.request(Method::POST, &token, "/v1/commands").json(&command("many-prefers"));
        for i in 0..60 {
            request = request.header("prefer", format!("handling=lenient, x{i}=\"{}\"", "y".repeat(100)));
        }
        let (status, body) = checked(request.header("prefer", "wait=99999999999999999999")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "an unreadable wait is no wait: {body:#}");
        let started = tokio::time::Instant::now();
        let (status, body) = checked(api.request(Method::POST, &token, "/v1/commands").json(&command("longest-wait")).header("prefer", "wait=18446744073709551615")).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        assert!(started.elapsed() < Duration::from_secs(31));

        let after = inbox(api).await;
        assert_eq!(after.values().sum::<i64>(), before.values().sum::<i64>() + 2, "only the two well-sent commands were queued");
        still_serving(api, "after-headers").await;
    }
}

/// Lines `n` with `n % 37 == 0` are valid commands; the rest are each of a kind of bad line.
fn is_valid(n: usize) -> bool {
    n.is_multiple_of(37)
}

/// Request `request`'s NDJSON body: a byte-order mark first on the first, CRLF line endings on
/// the odd ones.
fn frame(lines: &[usize], request: usize) -> Vec<u8> {
    let end = if request % 2 == 1 { "\r\n" } else { "\n" };
    let mut body = if request == 0 {
        "\u{FEFF}".to_string()
    } else {
        String::new()
    };
    for &n in lines {
        body.push_str(&line(n));
        body.push_str(end);
    }
    body.into_bytes()
}

fn line(n: usize) -> String {
    if is_valid(n) {
        return format!(
            r#"{{"type":"upsert_role","ref":"hostile-{n}","name":"Caf\u00e9 {n}","command_id":"hostile-{n}"}}"#
        );
    }
    let role = |fields: &str| format!(r#"{{"type":"upsert_role",{fields}}}"#);
    match n % 16 {
        0 => role(&format!("\"ref\":\"ctl-{n}\u{1}\u{7}\",\"name\":\"x\"")),
        1 => role(&format!(r#""ref":"nul\u0000{n}","name":"Role""#)),
        2 => role(&format!(r#""ref":"nul-name-{n}","name":"a\u0000b""#)),
        3 => role(&format!(r#""ref":"nul-key-{n}","name":"n","\u0000":1"#)),
        // Over the 64 KiB a command may be, twice a request; otherwise over a name's 200 characters.
        4 if n % 500 == 4 => role(&format!(
            r#""ref":"huge-{n}","name":"{}""#,
            "x".repeat(70_000)
        )),
        4 => role(&format!(r#""ref":"long-{n}","name":"{}""#, "é".repeat(300))),
        5 => format!("{}{}", "[".repeat(1000), "]".repeat(1000)),
        6 => role(&format!(
            r#""ref":"deep-{n}","name":{}{}"#,
            "[".repeat(100),
            "]".repeat(100)
        )),
        7 => role(r#""ref":7,"name":true"#),
        8 => r#"{"type":["upsert_role"]}"#.to_string(),
        9 => ["null", "42", "\"upsert_role\"", "[]", "{}", "true"][n % 6].to_string(),
        10 => role(&format!(
            r#""ref":"unknown-field-{n}","name":"n","admin":true"#
        )),
        11 => format!(r#"{{"type":"upsert_role","ref":"trunc-{n}"#),
        12 => format!(
            "\u{FEFF}{}",
            role(&format!(r#""ref":"bom-{n}","name":"n""#))
        ),
        13 => format!("{} x", role(&format!(r#""ref":"trailing-{n}","name":"n""#))),
        14 => role(&format!(r#""ref":"surrogate-{n}","name":"\ud800""#)),
        _ => role(&format!(
            r#""ref":"bidi\u202e{n}","name":"n","command_id":"{}""#,
            "i".repeat(150)
        )),
    }
}

/// Item `n` of the JSON array: valid every tenth, otherwise a well-formed bad kind.
fn array_item(n: usize) -> String {
    match n % 10 {
        0 => format!(
            r#"{{"type":"upsert_role","ref":"hostile-array-{n}","name":"A {n}","command_id":"hostile-array-{n}"}}"#
        ),
        1 => line(1),
        2 => line(2),
        3 => line(3),
        4 => line(20),
        5 => line(6),
        6 => line(7),
        7 => line(10),
        8 => line(9 + n % 6 * 16),
        _ => line(15),
    }
}
