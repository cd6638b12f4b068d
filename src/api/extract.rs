//! Query strings and path parameters read so that a bad one is answered with a problem document
//! naming the parameter, like every other refusal, instead of axum's plain-text rejection; and
//! the checks the read endpoints share (references, page sizes, times).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use super::problem::Problem;

/// axum's `Query`, refusing with a problem. The fields' names appear in the reason, since axum
/// reports the path to the value that failed.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => {
                // The cause alone (`limit: invalid digit found in string`), without axum's
                // "Failed to deserialize query string" before it.
                let why = std::error::Error::source(&rejection)
                    .map_or_else(|| rejection.body_text(), ToString::to_string);
                Err(Problem::bad_request(format!(
                    "the query string is not understood: {why}"
                )))
            }
        }
    }
}

/// axum's `Path`, refusing with a problem. Handlers take parameters as text and check each with
/// the functions below, which name the parameter.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(Problem::bad_request(format!(
                "the path is not understood: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// A reference given as the parameter `name`, checked as commands check references.
pub fn reference(name: &str, value: &str) -> Result<(), Problem> {
    crate::commands::reference(name, value).map_err(|r| Problem::bad_request(r.0))
}

/// The `limit` parameter: `default` when absent, otherwise 1 to `max`.
pub fn limit(given: Option<u32>, default: u32, max: u32) -> Result<i64, Problem> {
    match given.unwrap_or(default) {
        n @ 1.. if n <= max => Ok(i64::from(n)),
        n => Err(Problem::bad_request(format!(
            "limit {n} is out of range: ask for 1 to {max} (default {default})"
        ))),
    }
}

/// A time parameter such as `now`, as `tick --now` takes it; the current time when absent.
pub fn time(name: &str, given: Option<&str>) -> Result<DateTime<Utc>, Problem> {
    match given {
        None => Ok(crate::clock::now()),
        Some(text) => crate::clock::parse_time(text)
            .map_err(|why| Problem::bad_request(format!("{name}: {why}"))),
    }
}

/// A path parameter that is an id or a version: a whole number from 1.
pub fn positive(name: &str, text: &str) -> Result<i64, Problem> {
    text.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
        Problem::bad_request(format!(
            "{name} {} is not a whole number from 1",
            crate::text::quote(text)
        ))
    })
}
