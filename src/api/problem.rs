//! Errors as RFC 9457 problem details (`application/problem+json`): a status, a title, and a
//! detail a person can act on. Nothing internal leaves: a database error or a defect is logged
//! with a request id and answered with that id only, never with SQL, a backtrace or a value.

use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:casewarden:problem:<slug>`, listed in docs/api.md.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What was wrong and what to do about it.
    pub detail: String,
    /// For a batch of commands: the reason for each line that failed the contract.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<LineError>,
    /// Seconds to wait before trying again (also sent as `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// Why one command of a batch was not queued.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LineError {
    /// Its position in the request, from 1: the line of NDJSON, or the item of a JSON array.
    pub line: usize,
    pub reason: String,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("urn:casewarden:problem:{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn too_many(detail: impl Into<String>, retry_after: u64) -> Problem {
        Problem {
            retry_after: Some(retry_after.max(1)),
            ..Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", detail)
        }
    }

    pub fn unavailable(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// An internal failure: logged in full under a fresh request id; the caller gets the id.
    pub fn internal(error: &dyn std::fmt::Display) -> Problem {
        let mut id = [0u8; 8];
        let _ = getrandom::fill(&mut id);
        let id = hex::encode(id);
        tracing::error!(request_id = %id, error = %error, "API request failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!(
                "casewarden could not answer this request; nothing was changed by the failed step. The operator can find request {id} in the daemon's log"
            ),
        )
    }
}

impl From<sqlx::Error> for Problem {
    fn from(e: sqlx::Error) -> Problem {
        Problem::internal(&e)
    }
}

/// A query string that does not fit the endpoint's parameters: axum answers plain text, the API
/// answers a problem naming the parameter (`limit: invalid digit found in string`).
impl From<QueryRejection> for Problem {
    fn from(rejection: QueryRejection) -> Problem {
        let why = match std::error::Error::source(&rejection) {
            Some(cause) => cause.to_string(),
            None => rejection.body_text(),
        };
        Problem::bad_request(format!(
            "bad query parameter: {why}; see /v1/openapi.json for this endpoint's parameters"
        ))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).expect("a problem serialises");
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"casewarden\""),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, Problem>;
