//! `GET /v1/events` and `GET /v1/events/stream`: every event once, in order, filtered, waited
//! for, streamed and resumed; each checked against the `events` table.

use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api_on_both_backends;
use crate::harness::Api;

fn role(r: &str) -> Value {
    json!({"type": "upsert_role", "ref": r, "name": format!("Role {r}")})
}

fn roles(prefix: &str, n: usize) -> Value {
    (0..n).map(|i| role(&format!("{prefix}{i}"))).collect()
}

fn claim(case_ref: &str, applicant: &str) -> Value {
    json!({
        "type": "create_case", "case_ref": case_ref, "kind": "home_buy", "scheme": "right_to_buy",
        "country": "england", "applicant": applicant,
        "property": {"ref": format!("P-{case_ref}"), "address": "1 Example Road, Leeds", "tenure": "freehold"},
        "received_at": "2025-06-02T09:00:00Z", "attributes": {"qualifying_period_all_with_landlord": true}
    })
}

/// Posts a batch as admin and asserts every command was accepted.
async fn accepted(api: &Api, commands: Value) {
    let (status, body) = api.commands(&api.admin, &commands).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    for r in body["results"].as_array().unwrap() {
        assert_eq!(r["status"], "accepted", "{body:#}");
    }
}

/// Ids in the `events` table, in order.
async fn logged(api: &Api) -> Vec<i64> {
    casewarden::db::sql("SELECT id FROM events ORDER BY id")
        .fetch_all::<(i64,)>(&api.db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.0)
        .collect()
}

async fn logged_where(api: &Api, column: &'static str, value: &str) -> Vec<i64> {
    let text = match column {
        "case_ref" => "SELECT id FROM events WHERE case_ref = $1 ORDER BY id",
        "kind" => "SELECT id FROM events WHERE kind = $1 ORDER BY id",
        _ => panic!("no query on {column}"),
    };
    casewarden::db::sql(text)
        .bind(value)
        .fetch_all::<(i64,)>(&api.db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.0)
        .collect()
}

fn ids(page: &Value) -> Vec<i64> {
    page["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {page:#}"))
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

/// Asserts a refusal is a problem document with status 400 whose detail says `says`.
async fn bad_request(api: &Api, token: &str, path: &str, says: &str) {
    let response = api.request(Method::GET, token, path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "{path}"
    );
    let body: Value = response.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(says), "{path}: {detail}");
}

/// An open event stream, read with a real SSE parser.
type Stream = BoxStream<
    'static,
    Result<eventsource_stream::Event, eventsource_stream::EventStreamError<reqwest::Error>>,
>;

async fn open_stream(api: &Api, token: &str, path: &str, last_event_id: Option<i64>) -> Stream {
    let mut request = api.request(Method::GET, token, path);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    response.bytes_stream().eventsource().boxed()
}

/// Reads events until one with id `until`, checking each frame; returns their ids.
async fn read_until(stream: &mut Stream, until: i64) -> Vec<i64> {
    let mut seen = Vec::new();
    while seen.last() != Some(&until) {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap_or_else(|_| panic!("event {until} did not come within 10 s; saw {seen:?}"))
            .expect("the stream stays open")
            .unwrap();
        let data: Value = serde_json::from_str(&next.data).unwrap();
        assert!(
            data["id"].as_i64().unwrap() <= until,
            "event {until} was passed over; saw {seen:?} then {data}"
        );
        assert_eq!(
            next.id,
            data["id"].to_string(),
            "the SSE id is the event's id"
        );
        assert_eq!(
            next.event,
            data["kind"].as_str().unwrap(),
            "the SSE event name is its kind"
        );
        seen.push(data["id"].as_i64().unwrap());
    }
    seen
}

api_on_both_backends! {
    async fn paging_with_after_and_limit_gives_every_event_once_in_order(api: Api) {
        let token = api.client("follower", "events:read").await;
        accepted(api, roles("r", 23)).await;
        let mut after = 0;
        let mut seen = Vec::new();
        let mut documents = Vec::new();
        loop {
            let (status, page) = api.get(&token, &format!("/v1/events?after={after}&limit=7")).await;
            assert_eq!(status, StatusCode::OK, "{page:#}");
            let got = ids(&page);
            assert!(got.len() <= 7, "{page:#}");
            if got.is_empty() {
                assert_eq!(page["next_after"], after, "an empty page leaves the follower where it was");
                break;
            }
            assert_eq!(page["next_after"], *got.last().unwrap());
            after = page["next_after"].as_i64().unwrap();
            seen.extend(got);
            documents.extend(page["events"].as_array().unwrap().iter().cloned());
        }
        assert_eq!(seen, logged(api).await, "every event once, in order");
        // Each event as `casewarden events` prints it.
        let printed = serde_json::to_value(casewarden::events::since(&api.db, 0, 1000).await.unwrap()).unwrap();
        assert_eq!(Value::Array(documents), printed);
        // Without a limit, a page holds up to 100.
        let (_, page) = api.get(&token, "/v1/events").await;
        assert_eq!(ids(&page).len(), seen.len().min(100));
    }

    async fn filters_give_one_cases_or_one_kinds_events(api: Api) {
        let token = api.client("follower", "events:read").await;
        accepted(api, json!([
            {"type": "upsert_contact", "ref": "tenant1", "name": "Tenant 1", "email": "t1@example.net", "address": "1 Example Road"},
            {"type": "upsert_contact", "ref": "tenant2", "name": "Tenant 2", "email": "t2@example.net", "address": "2 Example Road"},
        ])).await;
        accepted(api, json!([claim("RTB-1", "tenant1"), claim("RTB-2", "tenant2")])).await;
        accepted(api, roles("late", 2)).await;

        let one = logged_where(api, "case_ref", "RTB-1").await;
        assert!(one.len() > 1, "a new case has more than one event: {one:?}");
        let (status, page) = api.get(&token, "/v1/events?case_ref=RTB-1").await;
        assert_eq!(status, StatusCode::OK, "{page:#}");
        assert_eq!(ids(&page), one);
        let (_, page) = api.get(&token, &format!("/v1/events?case_ref=RTB-1&after={}&limit=1", one[0])).await;
        assert_eq!(ids(&page), vec![one[1]]);

        let created = logged_where(api, "kind", "case_created").await;
        assert_eq!(created.len(), 2);
        let (_, page) = api.get(&token, "/v1/events?kind=case_created").await;
        assert_eq!(ids(&page), created);
        // Past the last match, a kind filter still moves the follower on: to the last event it
        // looked at, not back to `after`.
        let (_, page) = api.get(&token, &format!("/v1/events?kind=case_created&after={}", created[1])).await;
        assert_eq!(ids(&page), Vec::<i64>::new());
        assert_eq!(page["next_after"], *logged(api).await.last().unwrap());

        let (_, page) = api.get(&token, "/v1/events?case_ref=RTB-2&kind=case_created").await;
        assert_eq!(ids(&page), vec![created[1]]);
        assert_eq!(page["events"][0]["data"]["scheme"], "right_to_buy");

        // A case no one has created yet is no error: it has no events.
        let (status, page) = api.get(&token, "/v1/events?case_ref=RTB-9&after=3").await;
        assert_eq!(status, StatusCode::OK, "{page:#}");
        assert_eq!((ids(&page), page["next_after"].as_i64()), (vec![], Some(3)));
    }

    async fn bad_parameters_are_refused_with_a_problem_naming_them(api: Api) {
        let token = api.client("follower", "events:read").await;
        bad_request(api, &token, "/v1/events?kind=case_opened", "kind \"case_opened\" is not an event kind: use one of case_created,").await;
        bad_request(api, &token, "/v1/events?limit=ten", "the query string is not understood: limit: invalid digit").await;
        bad_request(api, &token, "/v1/events?after=-1", "the query string is not understood: after:").await;
        bad_request(api, &token, "/v1/events?limit=0", "limit 0 is out of range: ask for 1 to 1000").await;
        bad_request(api, &token, "/v1/events?limit=1001", "limit 1001 is out of range").await;
        bad_request(api, &token, "/v1/events?wait=31", "wait 31 is longer than this server holds a request: at most 30 seconds").await;
        bad_request(api, &token, "/v1/events?afer=5", "unknown field `afer`").await;
        bad_request(api, &token, "/v1/events/stream?kind=nope", "kind \"nope\" is not an event kind").await;
        bad_request(api, &token, "/v1/events/stream?limit=5", "unknown field `limit`").await;
    }

    async fn a_long_poll_answers_as_soon_as_a_command_is_applied(api: Api) {
        let token = api.client("follower", "events:read").await;
        let after = *logged(api).await.last().unwrap();
        let started = Instant::now();
        let poll = async {
            let page = api.get(&token, &format!("/v1/events?after={after}&kind=role_upserted&wait=20")).await;
            (page, started.elapsed())
        };
        let post = async {
            // Long enough for the poll to have looked once and be waiting.
            tokio::time::sleep(Duration::from_millis(300)).await;
            accepted(api, json!([role("late")])).await;
        };
        let (((status, page), took), ()) = tokio::join!(poll, post);
        assert_eq!(status, StatusCode::OK, "{page:#}");
        assert_eq!(ids(&page), logged_where(api, "kind", "role_upserted").await);
        assert_eq!(page["events"][0]["data"]["role"], "late");
        assert!(took >= Duration::from_millis(300), "the poll waited for the command: {took:?}");
        assert!(took < Duration::from_secs(5), "the poll answered long before its 20 s were up: {took:?}");
    }

    async fn a_long_poll_with_nothing_new_answers_empty_when_its_wait_is_over(api: Api) {
        let token = api.client("follower", "events:read").await;
        let after = *logged(api).await.last().unwrap();
        let started = Instant::now();
        let (status, page) = api.get(&token, &format!("/v1/events?after={after}&wait=1")).await;
        let took = started.elapsed();
        assert_eq!(status, StatusCode::OK, "{page:#}");
        assert_eq!((ids(&page), page["next_after"].as_i64()), (vec![], Some(after)));
        assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(5), "{took:?}");
    }

    async fn a_stream_resumed_from_last_event_id_loses_and_repeats_nothing(api: Api) {
        let token = api.client("follower", "events:read").await;
        accepted(api, roles("first", 6)).await;
        let before = logged(api).await;
        let cut = before[before.len() / 2];

        let mut stream = open_stream(api, &token, "/v1/events/stream", None).await;
        let mut seen = read_until(&mut stream, cut).await;
        drop(stream);

        accepted(api, roles("second", 4)).await;
        // `after` is overridden by Last-Event-ID: from 0 it would repeat everything.
        let mut stream = open_stream(api, &token, "/v1/events/stream?after=0", seen.last().copied()).await;
        let now = *logged(api).await.last().unwrap();
        seen.extend(read_until(&mut stream, now).await);
        // And an event committed while the stream is open arrives on it.
        accepted(api, json!([role("live")])).await;
        let live = *logged(api).await.last().unwrap();
        seen.extend(read_until(&mut stream, live).await);

        assert!(seen.windows(2).all(|w| w[0] < w[1]), "ids strictly increase: {seen:?}");
        assert_eq!(seen, logged(api).await, "the union of the two streams is the log");
    }

    async fn a_stream_follows_one_case(api: Api) {
        let token = api.client("follower", "events:read").await;
        accepted(api, json!([
            {"type": "upsert_contact", "ref": "tenant1", "name": "Tenant 1", "email": "t1@example.net", "address": "1 Example Road"},
        ])).await;
        // The case does not exist yet when the stream opens.
        let mut stream = open_stream(api, &token, "/v1/events/stream?case_ref=RTB-7", None).await;
        accepted(api, json!([claim("RTB-7", "tenant1"), role("other")])).await;
        let wanted = logged_where(api, "case_ref", "RTB-7").await;
        assert!(!wanted.is_empty());
        assert_eq!(read_until(&mut stream, *wanted.last().unwrap()).await, wanted);
    }

    async fn a_bad_last_event_id_is_refused_before_the_stream_starts(api: Api) {
        let token = api.client("follower", "events:read").await;
        let response = api
            .request(Method::GET, &token, "/v1/events/stream")
            .header("last-event-id", "latest")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().starts_with("Last-Event-ID \"latest\" is not an event id"), "{body:#}");
    }

    async fn the_feed_needs_the_events_read_scope(api: Api) {
        let writer = api.client("writer", "commands:write,cases:read").await;
        for path in ["/v1/events", "/v1/events/stream"] {
            let response = api.request(Method::GET, &writer, path).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
            let body: Value = response.json().await.unwrap();
            assert!(body["detail"].as_str().unwrap().contains("lacks the events:read scope"), "{body:#}");
        }
        let reader = api.client("reader", "events:read").await;
        assert_eq!(api.get(&reader, "/v1/events").await.0, StatusCode::OK);
    }
}

/// An open stream and a waiting poll end when the daemon shuts down, instead of holding the
/// API's graceful shutdown for its 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_and_polls_do_not_hold_up_shutdown() {
    let api = Api::sqlite(|_| {}).await;
    let token = api.client("follower", "events:read").await;
    let last = *logged(&api).await.last().unwrap();
    let mut stream = open_stream(&api, &token, "/v1/events/stream", None).await;
    assert_eq!(read_until(&mut stream, last).await.last(), Some(&last));
    let poll = api
        .request(
            Method::GET,
            &token,
            &format!("/v1/events?after={last}&wait=30"),
        )
        .send();
    let poll = tokio::spawn(poll);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    api.stop().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    let page: Value = poll.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(ids(&page), Vec::<i64>::new());
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
    assert!(
        matches!(end, Ok(None) | Ok(Some(Err(_)))),
        "the stream ended: {end:?}"
    );
}
