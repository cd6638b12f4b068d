//! A webhook receiver on loopback: a real HTTP server (axum) that records every request it is
//! sent, answers as the test scripts it, and notices two requests with the same webhook-id
//! being handled at the same time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::{Notify, watch};

/// How the receiver answers a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 204 No Content.
    Ok,
    /// This status, with a short body.
    Status(u16),
    /// Waits this long, then 503: longer than the sender's time limit, it is a timeout.
    Hang(Duration),
    /// Waits until [`Receiver::release`], then 200.
    Hold,
    /// A redirect to `/elsewhere` on the same server.
    Redirect(u16),
    /// Waits this long, then answers 204 (a slow but working receiver).
    Slow(Duration),
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub content_type: String,
    pub user_agent: String,
    pub body: Vec<u8>,
    /// The event ids of the batch, in the order sent.
    pub events: Vec<i64>,
    pub answer: Answer,
}

impl Request {
    /// Whether the receiver acknowledged it (and so the sender may move on).
    pub fn acknowledged(&self) -> bool {
        matches!(self.answer, Answer::Ok | Answer::Slow(_))
    }
}

#[derive(Default)]
struct Inner {
    log: Mutex<Vec<Request>>,
    /// Answers for the next requests, in order; then `default`.
    script: Mutex<VecDeque<Answer>>,
    default: Mutex<Option<Answer>>,
    /// Requests being handled, per webhook-id, and in all.
    handling: Mutex<HashMap<String, usize>>,
    concurrent: Mutex<(usize, usize)>,
    /// Webhook-ids seen handled twice at once.
    overlaps: Mutex<Vec<String>>,
    arrived: Notify,
}

pub struct Receiver {
    /// Where to point a subscription: `http://127.0.0.1:PORT/hook`.
    pub url: String,
    inner: Arc<Inner>,
    released: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Inner>,
    released: watch::Receiver<bool>,
}

/// Counts a request in while it is handled, and out when its handler ends or is dropped.
struct Handling {
    inner: Arc<Inner>,
    id: String,
}

impl Drop for Handling {
    fn drop(&mut self) {
        if let Some(n) = self.inner.handling.lock().unwrap().get_mut(&self.id) {
            *n -= 1;
        }
        self.inner.concurrent.lock().unwrap().0 -= 1;
    }
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Inner::default());
        let (released, watch_released) = watch::channel(false);
        let shared = Shared {
            inner: inner.clone(),
            released: watch_released,
        };
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .route("/elsewhere", post(receive))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url: format!("http://{address}/hook"),
            inner,
            released,
            task,
        }
    }

    /// Answers the next requests so, one each, in order.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.inner.script.lock().unwrap().extend(answers);
    }

    /// Answers every request after the script so (204 until told otherwise).
    pub fn answer(&self, answer: Answer) {
        *self.inner.default.lock().unwrap() = Some(answer);
    }

    /// Lets held requests go (answered 200), and every later `Hold` at once.
    pub fn release(&self) {
        let _ = self.released.send(true);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.inner.log.lock().unwrap().clone()
    }

    /// Requests to `path` only.
    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Webhook-ids that were being handled twice at once, and the most requests handled at once.
    pub fn overlaps(&self) -> (Vec<String>, usize) {
        (
            self.inner.overlaps.lock().unwrap().clone(),
            self.inner.concurrent.lock().unwrap().1,
        )
    }

    /// Waits until `done` holds for the requests so far, failing the test after `within`.
    pub async fn wait_for(&self, within: Duration, what: &str, done: impl Fn(&[Request]) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            let notified = self.inner.arrived.notified();
            if done(&self.requests()) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{what}: not within {within:?}; requests so far: {:#?}",
                summary(&self.requests())
            );
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The requests as (webhook-id, events, answer), for failure messages.
pub fn summary(requests: &[Request]) -> Vec<(String, Vec<i64>, Answer)> {
    requests
        .iter()
        .map(|r| (r.id.clone(), r.events.clone(), r.answer.clone()))
        .collect()
}

fn text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn receive(
    State(shared): State<Shared>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inner = &shared.inner;
    let id = text(&headers, "webhook-id");
    let answer = {
        let scripted = inner.script.lock().unwrap().pop_front();
        scripted
            .or_else(|| inner.default.lock().unwrap().clone())
            .unwrap_or(Answer::Ok)
    };
    let _handling = {
        let mut handling = inner.handling.lock().unwrap();
        let n = handling.entry(id.clone()).or_default();
        if *n > 0 {
            inner.overlaps.lock().unwrap().push(id.clone());
        }
        *n += 1;
        let mut concurrent = inner.concurrent.lock().unwrap();
        concurrent.0 += 1;
        concurrent.1 = concurrent.1.max(concurrent.0);
        Handling {
            inner: inner.clone(),
            id: id.clone(),
        }
    };
    let events = serde_json::from_slice::<Vec<serde_json::Value>>(&body)
        .map(|batch| batch.iter().filter_map(|e| e["id"].as_i64()).collect())
        .unwrap_or_default();
    inner.log.lock().unwrap().push(Request {
        path: uri.path().to_string(),
        id,
        timestamp: text(&headers, "webhook-timestamp"),
        signature: text(&headers, "webhook-signature"),
        content_type: text(&headers, header::CONTENT_TYPE.as_str()),
        user_agent: text(&headers, header::USER_AGENT.as_str()),
        body: body.to_vec(),
        events,
        answer: answer.clone(),
    });
    inner.arrived.notify_waiters();
    match answer {
        Answer::Ok => StatusCode::NO_CONTENT.into_response(),
        Answer::Status(code) => (
            StatusCode::from_u16(code).unwrap(),
            "receiver says no".repeat(200),
        )
            .into_response(),
        Answer::Hang(d) => {
            tokio::time::sleep(d).await;
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Answer::Slow(d) => {
            tokio::time::sleep(d).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Answer::Hold => {
            let mut released = shared.released.clone();
            let _ = released.wait_for(|r| *r).await;
            StatusCode::OK.into_response()
        }
        Answer::Redirect(code) => (
            StatusCode::from_u16(code).unwrap(),
            [(header::LOCATION, "/elsewhere")],
        )
            .into_response(),
    }
}
