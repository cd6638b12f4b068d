//! `GET /v1/events`: a page of the log after an id, optionally one case's or one kind's; with
//! `wait`, a long poll that answers as soon as a matching event is committed.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use tokio::time::Instant;

use super::{Feed, Filter, SCAN, Wake, look};
use crate::api::ApiState;
use crate::api::extract::{Query, limit};
use crate::api::problem::{ApiResult, Problem};

/// The query string of `GET /v1/events`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// Give events with ids above this: the `next_after` of the previous page, or 0 (the
    /// default) for the whole log.
    #[serde(default)]
    pub after: u64,
    /// Most events to give, 1 to 1000; 100 unless given.
    pub limit: Option<u32>,
    /// Only this case's events. A reference no case has gives none, until such a case exists.
    pub case_ref: Option<String>,
    /// Only events of this kind (`case_created`, …; see the events schema).
    pub kind: Option<String>,
    /// When nothing matches yet, wait up to this many seconds for an event that does, then
    /// answer with none. At most `api.max_wait_seconds`; 0 (the default) answers at once.
    #[serde(default)]
    pub wait: u64,
}

pub async fn events(
    State(state): State<ApiState>,
    Query(query): Query<FeedQuery>,
) -> ApiResult<Json<Feed>> {
    let limit = limit(query.limit, 100, 1000)?;
    let longest = state.settings.max_wait_seconds;
    if query.wait > longest {
        return Err(Problem::bad_request(format!(
            "wait {} is longer than this server holds a request: at most {longest} seconds (api.max_wait_seconds)",
            query.wait
        )));
    }
    let mut filter = Filter::new(query.case_ref, query.kind)?;
    // An id past any the log can hold simply finds nothing.
    let mut after = i64::try_from(query.after).unwrap_or(i64::MAX);
    let deadline = Instant::now() + Duration::from_secs(query.wait);
    let mut wake = Wake::new(&state);
    let mut budget = SCAN;
    loop {
        let page = look(&state.engine.db, &mut filter, after, limit, budget).await?;
        budget -= page.looked;
        after = page.next_after;
        // A page that stopped at its bound answers at once, even empty: the follower carries on
        // from `next_after`, and no request goes through more than SCAN rows.
        if !page.events.is_empty() || page.more || Instant::now() >= deadline {
            return Ok(Json(Feed {
                events: page.events,
                next_after: after,
            }));
        }
        let woken = tokio::select! {
            woken = wake.next() => woken,
            () = tokio::time::sleep_until(deadline) => false,
        };
        if !woken {
            return Ok(Json(Feed {
                events: Vec::new(),
                next_after: after,
            }));
        }
    }
}
