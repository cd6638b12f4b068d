//! One request to a receiver: a signed POST of a batch, its answer classified. Redirects are not
//! followed (a signed request goes only where the operator pointed it), the whole exchange has a
//! time limit, and at most the first KiB of an answer is read, for the error text.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue};

use super::sign::{Key, signature};

/// How much of a receiver's answer an error keeps.
pub const ANSWER_BYTES: usize = 1024;

/// Why a receiver did not acknowledge a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// It answered with a status other than 2xx (a redirect included).
    #[error("HTTP {status}{}", answer_text(.answer))]
    Status { status: u16, answer: String },
    /// It did not answer in time.
    #[error("no answer within {0} s")]
    Timeout(u64),
    /// It could not be reached.
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("request failed: {0}")]
    Other(String),
}

fn answer_text(answer: &str) -> String {
    if answer.is_empty() {
        String::new()
    } else {
        format!(": {answer}")
    }
}

impl Failure {
    /// The failure without the receiver's words, for the event log (which keeps references, not
    /// whatever a receiver chose to say).
    pub fn summary(&self) -> String {
        match self {
            Failure::Status { status, .. } => format!("HTTP {}", status_text(*status)),
            other => other.to_string(),
        }
    }

    /// The failure as stored for operators: the status with its reason phrase, and the start of
    /// the answer, made safe to store and show.
    pub fn detail(&self) -> String {
        let text = match self {
            Failure::Status { status, answer } => {
                let redirect = if (300..400).contains(status) {
                    " (redirects are not followed: point the subscription at the final URL)"
                } else {
                    ""
                };
                format!(
                    "HTTP {}{redirect}{}",
                    status_text(*status),
                    answer_text(answer)
                )
            }
            other => other.to_string(),
        };
        crate::text::bounded(&text, ANSWER_BYTES + 200)
    }
}

fn status_text(status: u16) -> String {
    match StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// An HTTP client for one subscription: no redirects, the subscription's time limit.
pub fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("casewarden/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()
}

/// One attempt: what is sent, and the clock second it is sent at.
pub struct Attempt<'a> {
    pub url: &'a str,
    pub key: &'a Key,
    pub webhook_id: &'a str,
    pub timestamp: i64,
    pub body: &'a [u8],
    /// The limit for this request: the subscription's, or less if its lease runs out sooner.
    pub limit: Duration,
}

/// POSTs a batch; `Ok` with the status if the receiver acknowledged it with a 2xx.
pub async fn post(client: &reqwest::Client, attempt: &Attempt<'_>) -> Result<u16, Failure> {
    let sig = signature(
        attempt.key,
        attempt.webhook_id,
        attempt.timestamp,
        attempt.body,
    );
    let request = client
        .post(attempt.url)
        .timeout(attempt.limit)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header("webhook-id", attempt.webhook_id)
        .header("webhook-timestamp", attempt.timestamp.to_string())
        .header("webhook-signature", sig)
        .body(attempt.body.to_vec());
    let seconds = attempt.limit.as_secs().max(1);
    let mut response = request.send().await.map_err(|e| classify(e, seconds))?;
    let status = response.status();
    if status.is_success() {
        return Ok(status.as_u16());
    }
    let mut answer = Vec::new();
    while answer.len() < ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
            // The status is the failure; an answer cut short only shortens its text.
            Ok(None) | Err(_) => break,
        }
    }
    answer.truncate(ANSWER_BYTES);
    Err(Failure::Status {
        status: status.as_u16(),
        answer: crate::text::bounded(String::from_utf8_lossy(&answer).trim(), ANSWER_BYTES),
    })
}

/// A transport error as a failure, its text without the URL (which may carry a key) and with
/// its causes, which say what happened (refused, reset, no route, a certificate).
fn classify(error: reqwest::Error, seconds: u64) -> Failure {
    if error.is_timeout() {
        return Failure::Timeout(seconds);
    }
    let connect = error.is_connect();
    let error = error.without_url();
    let mut parts = vec![error.to_string()];
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    let text = crate::text::bounded(&parts.join(": "), 500);
    if connect {
        Failure::Connect(text)
    } else {
        Failure::Other(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_for_the_log_leaves_out_the_receivers_words_and_the_stored_one_keeps_them() {
        let failure = Failure::Status {
            status: 503,
            answer: "maintenance until 18:00 for Priya".into(),
        };
        assert_eq!(failure.summary(), "HTTP 503 Service Unavailable");
        assert_eq!(
            failure.detail(),
            "HTTP 503 Service Unavailable: maintenance until 18:00 for Priya"
        );
        let moved = Failure::Status {
            status: 302,
            answer: String::new(),
        };
        assert_eq!(
            moved.detail(),
            "HTTP 302 Found (redirects are not followed: point the subscription at the final URL)"
        );
        assert_eq!(Failure::Timeout(10).summary(), "no answer within 10 s");
    }
}
