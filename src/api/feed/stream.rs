//! `GET /v1/events/stream`: the log as Server-Sent Events, each with the event's id, its kind as
//! the SSE event name, and the event on one line as data. A client that reconnects sends the
//! last id it received as `Last-Event-ID` and carries on from the next event: none lost, none
//! repeated. The stream ends when the daemon shuts down.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{self, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;

use super::{Filter, SCAN, Wake, look};
use crate::api::ApiState;
use crate::api::extract::Query;
use crate::api::problem::{ApiResult, Problem};
use crate::events::Event;

/// Most events read from the log at a time.
const BATCH: i64 = 100;

/// A comment this often on a quiet stream keeps proxies and load balancers from closing it.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The query string of `GET /v1/events/stream`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Start after this event id; 0 (the default) for the whole log. A `Last-Event-ID` header
    /// takes precedence.
    #[serde(default)]
    pub after: u64,
    /// Only this case's events.
    pub case_ref: Option<String>,
    /// Only events of this kind.
    pub kind: Option<String>,
}

pub async fn stream(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<sse::Event, Infallible>>>> {
    let after = match headers.get("last-event-id") {
        Some(value) => last_event_id(value)?,
        None => query.after,
    };
    let follower = Follower {
        filter: Filter::new(query.case_ref, query.kind)?,
        after: i64::try_from(after).unwrap_or(i64::MAX),
        pending: VecDeque::new(),
        wake: Wake::new(&state),
        state,
    };
    let events = futures_util::stream::unfold(follower, |mut follower| async move {
        let frame = follower.next().await?;
        Some((Ok(frame), follower))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive")))
}

/// `Last-Event-ID`: the id of the last event the client received.
fn last_event_id(value: &HeaderValue) -> Result<u64, Problem> {
    let text = value.to_str().unwrap_or_default();
    text.trim().parse().map_err(|_| {
        Problem::bad_request(format!(
            "Last-Event-ID {} is not an event id: send the id of the last event received, a whole number, or no Last-Event-ID to start from `after`",
            crate::text::quote(&String::from_utf8_lossy(value.as_bytes()))
        ))
    })
}

/// One client's place in the log.
struct Follower {
    state: ApiState,
    filter: Filter,
    /// The last id looked at: every event up to it has been sent or left out by the filter.
    after: i64,
    /// Events read and not yet sent.
    pending: VecDeque<Event>,
    wake: Wake,
}

impl Follower {
    /// The next event to send, waiting for one if need be; `None` ends the stream.
    async fn next(&mut self) -> Option<sse::Event> {
        loop {
            if self.wake.stopping() {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                return Some(frame(&event));
            }
            let page = match look(
                &self.state.engine.db,
                &mut self.filter,
                self.after,
                BATCH,
                SCAN,
            )
            .await
            {
                Ok(page) => page,
                Err(e) => {
                    // The client reconnects with the last id it received and loses nothing.
                    tracing::error!(error = %e, after = self.after, "event stream ended: the log could not be read");
                    return None;
                }
            };
            self.after = page.next_after;
            self.pending.extend(page.events);
            if self.pending.is_empty() && !page.more && !self.wake.next().await {
                return None;
            }
        }
    }
}

/// An event as one SSE frame: `id`, `event` (its kind) and the event's JSON on one `data` line.
fn frame(event: &Event) -> sse::Event {
    let data = serde_json::to_string(event).expect("an event serialises to JSON");
    sse::Event::default()
        .id(event.id.to_string())
        .event(&event.kind)
        .data(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_id_is_a_whole_number_and_anything_else_is_named() {
        assert_eq!(
            last_event_id(&HeaderValue::from_static(" 42 ")).unwrap(),
            42
        );
        let bad = last_event_id(&HeaderValue::from_static("abc")).unwrap_err();
        assert_eq!(bad.status, 400);
        assert!(
            bad.detail
                .starts_with("Last-Event-ID \"abc\" is not an event id"),
            "{}",
            bad.detail
        );
        assert!(last_event_id(&HeaderValue::from_static("-1")).is_err());
    }
}
