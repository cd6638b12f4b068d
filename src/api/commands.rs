//! `POST /v1/commands` and `GET /v1/commands/{id}`: commands in, outcomes out.
//!
//! Each command of a request is checked against the contract at once, as the engine would check
//! it; a command that fails is answered with its reason and never queued. The rest are queued in
//! one transaction, under the caller's name, and the engine is woken for a pass. With
//! `Prefer: wait=N` the answer waits (up to N seconds) for the engine's decision on each.

use std::time::Duration;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use tower_http::timeout::TimeoutError;

use super::ApiState;
use super::clients::{Caller, Scope};
use super::extract::Path;
use super::problem::{ApiResult, LineError, Problem};
use crate::db::sql;
use crate::events::Event;
use crate::states::InboxStatus;

/// The answer to `POST /v1/commands`: one result per command, in the order sent.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Submitted {
    pub results: Vec<LineResult>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LineResult {
    /// The command's position in the request, from 1.
    pub line: usize,
    /// Its inbox id, to ask `GET /v1/commands/{id}` about; absent when it was not queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbox_id: Option<i64>,
    pub status: LineStatus,
    /// Why it was invalid or rejected, or why it was a duplicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The ids of the events its application wrote, once decided (with `Prefer: wait`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_ids: Option<Vec<i64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    /// Failed the contract; not queued.
    Invalid,
    /// Queued; the engine has not decided it yet.
    Pending,
    Accepted,
    Rejected,
    Duplicate,
}

impl From<InboxStatus> for LineStatus {
    fn from(s: InboxStatus) -> LineStatus {
        match s {
            InboxStatus::Pending => LineStatus::Pending,
            InboxStatus::Accepted => LineStatus::Accepted,
            InboxStatus::Rejected => LineStatus::Rejected,
            InboxStatus::Duplicate => LineStatus::Duplicate,
        }
    }
}

/// How the body carries commands.
enum Framing {
    /// One command, or a JSON array of them.
    Json,
    /// One command per line.
    Lines,
}

fn framing(headers: &HeaderMap) -> Result<Framing, Problem> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = given
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(Framing::Json),
        "application/x-ndjson" | "application/jsonl" => Ok(Framing::Lines),
        _ => Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!(
                "Content-Type {} is not accepted: send application/json (one command or an array) or application/x-ndjson (one command per line)",
                crate::text::quote(given)
            ),
        )),
    }
}

/// The commands of a body, each as its own JSON text.
fn split(body: &str, framing: Framing) -> Result<Vec<&str>, Problem> {
    let body = body.strip_prefix('\u{FEFF}').unwrap_or(body);
    match framing {
        Framing::Lines => Ok(body.lines().filter(|l| !l.trim().is_empty()).collect()),
        Framing::Json if body.trim_start().starts_with('[') => {
            let items: Vec<&RawValue> = serde_json::from_str(body).map_err(|e| {
                Problem::bad_request(format!("the body is not a JSON array of commands: {e}"))
            })?;
            Ok(items.into_iter().map(RawValue::get).collect())
        }
        Framing::Json => Ok(vec![body.trim()]),
    }
}

/// The request's body, refused with a problem document (axum's own refusals are plain text): at
/// once when its Content-Length is over the limit, so the client need not send it all first;
/// as soon as a chunked body passes the limit; and when it stops arriving (the server's body
/// timeout).
async fn read_body(state: &ApiState, request: Request) -> Result<Bytes, Problem> {
    let limit = state.settings.max_body_bytes;
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            format!(
                "the body is over the {limit} bytes a request may carry (api.max_body_bytes): split the batch"
            ),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection: BytesRejection| {
            let stalled = std::iter::successors(std::error::Error::source(&rejection), |e| {
                e.source()
            })
            .any(|e| e.is::<TimeoutError>());
            match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => too_large(),
                _ if stalled => Problem::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request-timeout",
                    format!(
                        "the body stopped arriving for {} s (api.read_timeout_seconds); send the request again",
                        state.settings.read_timeout_seconds
                    ),
                ),
                _ => Problem::bad_request(
                    "the body could not be read to its end: the connection broke or its chunked framing is malformed",
                ),
            }
        })
}

pub async fn submit(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> ApiResult<Response> {
    let headers = request.headers().clone();
    let framing = framing(&headers)?;
    let body = read_body(&state, request).await?;
    let text = std::str::from_utf8(&body).map_err(|e| {
        Problem::bad_request(format!(
            "the body is not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let commands = split(text, framing)?;
    let limit = state.settings.max_commands_per_request;
    if commands.is_empty() {
        return Err(Problem::bad_request("the body holds no command"));
    }
    if commands.len() > limit {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-many-commands",
            format!(
                "{} commands in one request; the limit is {limit} (api.max_commands_per_request): split the batch",
                commands.len()
            ),
        ));
    }
    let max_bytes = state.engine.settings.max_command_bytes;
    let mut results = Vec::with_capacity(commands.len());
    let mut valid = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        match crate::commands::parse_with_limit(command, max_bytes) {
            Ok(_) => valid.push(i),
            Err(rejection) => results.push(LineResult {
                line: i + 1,
                inbox_id: None,
                status: LineStatus::Invalid,
                reason: Some(rejection.0),
                event_ids: None,
            }),
        }
    }
    if valid.is_empty() {
        let mut problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-commands",
            "no command in the request fits the contract; nothing was queued (see errors)",
        );
        problem.errors = results
            .into_iter()
            .map(|r| LineError {
                line: r.line,
                reason: r.reason.unwrap_or_default(),
            })
            .collect();
        return Err(problem);
    }
    let bodies: Vec<&str> = valid.iter().map(|&i| commands[i]).collect();
    let ids = crate::engine::queue::queue(&state.engine.db, &bodies, Some(&caller.name)).await?;
    state.live.ring();
    for (&i, id) in valid.iter().zip(&ids) {
        results.push(LineResult {
            line: i + 1,
            inbox_id: Some(*id),
            status: LineStatus::Pending,
            reason: None,
            event_ids: None,
        });
    }
    results.sort_by_key(|r| r.line);
    let wait = preferred_wait(&headers).map(|w| w.min(state.settings.max_wait_seconds));
    if let Some(seconds) = wait.filter(|s| *s > 0) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
        let decided = wait_for(&state, &ids, deadline).await?;
        for r in &mut results {
            if let Some(d) = r
                .inbox_id
                .and_then(|id| decided.iter().find(|d| d.id == id))
            {
                r.status = d.status.into();
                r.reason = d.reason.clone();
                r.event_ids = (r.status != LineStatus::Pending).then(|| d.event_ids.clone());
            }
        }
    }
    let all_decided = results.iter().all(|r| r.status != LineStatus::Pending);
    let status = if wait.is_some() && all_decided {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, axum::Json(Submitted { results })).into_response())
}

/// `Prefer: wait=N` (RFC 7240), among any other preferences.
fn preferred_wait(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .find_map(|p| {
            let (name, value) = p.split_once('=')?;
            (name.trim().eq_ignore_ascii_case("wait"))
                .then(|| value.trim().trim_matches('"').parse().ok())
                .flatten()
        })
}

/// Where a queued command stands.
#[derive(Debug, Clone)]
struct Decided {
    id: i64,
    status: InboxStatus,
    reason: Option<String>,
    event_ids: Vec<i64>,
}

/// Waits until every command is decided or the deadline passes. The engine says when it has
/// decided commands; another instance (on PostgreSQL) does not, so the rows are also looked at
/// every 200 ms. Once they are decided it also waits for the pass that decided them to finish
/// (it goes on to allocate new cases, activate tasks and make packs), so that what the caller
/// reads next shows all a command caused.
async fn wait_for(
    state: &ApiState,
    ids: &[i64],
    deadline: tokio::time::Instant,
) -> Result<Vec<Decided>, Problem> {
    let mut ingested = state.engine.ingested();
    loop {
        let decided = look_up(state, ids).await?;
        if tokio::time::Instant::now() >= deadline {
            return Ok(decided);
        }
        if decided.iter().all(|d| d.status != InboxStatus::Pending) {
            let mut passes = state.live.passes();
            if state.live.state().pass_running {
                tokio::select! {
                    _ = passes.changed() => {}
                    _ = tokio::time::sleep_until(deadline) => {}
                }
            }
            return Ok(decided);
        }
        tokio::select! {
            _ = ingested.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

async fn look_up(state: &ApiState, ids: &[i64]) -> Result<Vec<Decided>, Problem> {
    let (Some(&low), Some(&high)) = (ids.iter().min(), ids.iter().max()) else {
        return Ok(Vec::new());
    };
    let db = &state.engine.db;
    /// id, status, reason, first and last event id.
    type Row = (i64, InboxStatus, Option<String>, Option<i64>, Option<i64>);
    let rows: Vec<Row> = sql(
        "SELECT id, status, reason, first_event_id, last_event_id FROM inbox WHERE id >= $1 AND id <= $2 ORDER BY id",
    )
    .bind(low)
    .bind(high)
    .fetch_all(db)
    .await?;
    let rows: Vec<_> = rows.into_iter().filter(|r| ids.contains(&r.0)).collect();
    let first = rows.iter().filter_map(|r| r.3).min();
    let last = rows.iter().filter_map(|r| r.4).max();
    let events: Vec<(i64,)> = match (first, last) {
        (Some(first), Some(last)) => {
            sql("SELECT id FROM events WHERE id >= $1 AND id <= $2 ORDER BY id")
                .bind(first)
                .bind(last)
                .fetch_all(db)
                .await?
        }
        _ => Vec::new(),
    };
    Ok(rows
        .into_iter()
        .map(|(id, status, reason, first, last)| Decided {
            id,
            status,
            reason,
            event_ids: match (first, last) {
                (Some(f), Some(l)) => events
                    .iter()
                    .map(|e| e.0)
                    .filter(|e| (f..=l).contains(e))
                    .collect(),
                _ => Vec::new(),
            },
        })
        .collect())
}

/// A queued command as `GET /v1/commands/{id}` gives it.
#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct CommandOutcome {
    pub id: i64,
    pub status: String,
    pub reason: Option<String>,
    #[serde(rename = "type")]
    pub command_type: Option<String>,
    pub command_id: Option<String>,
    pub case_ref: Option<String>,
    /// The client that submitted it; null when written straight into the inbox table.
    pub client: Option<String>,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    #[sqlx(skip)]
    #[schemars(with = "Vec<crate::events::kinds::Record>")]
    pub events: Vec<Event>,
    #[serde(skip)]
    #[schemars(skip)]
    first_event_id: Option<i64>,
    #[serde(skip)]
    #[schemars(skip)]
    last_event_id: Option<i64>,
}

pub async fn outcome(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<CommandOutcome>> {
    let id = super::extract::positive("id", &id)?;
    let db = &state.engine.db;
    let found: Option<CommandOutcome> = sql(
        "SELECT id, status, reason, command_type, command_id, case_ref, client, received_at, processed_at, first_event_id, last_event_id \
         FROM inbox WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    // A client sees its own commands; only admin sees every client's, and rows written
    // straight into the table.
    let Some(mut found) = found
        .filter(|c| caller.may(Scope::Admin) || c.client.as_deref() == Some(caller.name.as_str()))
    else {
        return Err(Problem::not_found(format!(
            "no command {id} submitted by client {}",
            caller.name
        )));
    };
    if let (Some(first), Some(last)) = (found.first_event_id, found.last_event_id) {
        found.events = crate::events::between(db, first, last).await?;
    }
    Ok(axum::Json(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefer(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("prefer", value.parse().unwrap());
        h
    }

    #[test]
    fn wait_is_read_among_other_preferences() {
        assert_eq!(preferred_wait(&prefer("wait=5")), Some(5));
        assert_eq!(preferred_wait(&prefer("respond-async, wait=10")), Some(10));
        assert_eq!(
            preferred_wait(&prefer("handling=strict; WAIT=\"3\"")),
            Some(3)
        );
        assert_eq!(preferred_wait(&prefer("wait=soon")), None);
        assert_eq!(preferred_wait(&HeaderMap::new()), None);
    }

    #[test]
    fn a_body_splits_into_commands_by_its_framing() {
        let lines = split("{\"a\":1}\n\n  \n{\"b\":2}\r\n", Framing::Lines).unwrap();
        assert_eq!(lines, vec!["{\"a\":1}", "{\"b\":2}"]);
        let array = split(" [ {\"a\": [1,2]} , {\"b\":2} ]", Framing::Json).unwrap();
        assert_eq!(array, vec!["{\"a\": [1,2]}", "{\"b\":2}"]);
        assert_eq!(
            split("\u{FEFF}{\"a\":1}\n", Framing::Json).unwrap(),
            vec!["{\"a\":1}"]
        );
        let bad = split("[{\"a\":1},", Framing::Json).unwrap_err();
        assert!(
            bad.detail
                .starts_with("the body is not a JSON array of commands"),
            "{}",
            bad.detail
        );
    }
}
