//! Where each configured subscription stands, as `casewarden webhooks` and `GET /v1/webhooks`
//! show it: its place in the log, how far behind it is, the batch in flight, and its last
//! success and failure. Read from the database, so every instance shows the same.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::WebhookSettings;
use super::store::{self, Filter};
use crate::db::Db;

/// How many waiting events the lag counts before it says "more".
pub const LAG_COUNT_LIMIT: i64 = 10_000;

/// Every configured subscription, in the order of the configuration.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Webhooks {
    pub webhooks: Vec<WebhookStatus>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct WebhookStatus {
    pub name: String,
    /// The receiver's URL, with any password and the values of its query shown as `***`.
    pub url: String,
    /// The event kinds it wants; `*` for all.
    pub kinds: Vec<String>,
    /// Only events of cases of these kinds (events with no case pass); empty for any.
    pub case_kinds: Vec<String>,
    /// Only events of cases of these schemes (events with no case pass); empty for any.
    pub schemes: Vec<String>,
    /// Every event it wants up to this id has been acknowledged by its receiver. Null until a
    /// daemon has started with the subscription (it then starts at the end of the log).
    pub delivered_through: Option<i64>,
    /// Events it wants that its receiver has not acknowledged yet, counted up to 10,000.
    pub lag_events: i64,
    /// Whether more events than `lag_events` are waiting.
    pub lag_events_more: bool,
    /// How old the oldest of those events is, in seconds; null when none is waiting.
    pub lag_seconds: Option<i64>,
    /// The batch being delivered, if any: resent unchanged, with the same webhook-id, until the
    /// receiver acknowledges it.
    pub in_flight: Option<WebhookBatch>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// The last failure, with the start of the receiver's answer.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// When the current run of failures began; null while it delivers.
    pub failing_since: Option<DateTime<Utc>>,
    /// When `webhook_failing` was written for the current run of failures.
    pub failing_reported_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct WebhookBatch {
    pub webhook_id: String,
    pub first_event_id: i64,
    pub last_event_id: i64,
    /// How many events it holds.
    pub events: i64,
    pub first_tried_at: Option<DateTime<Utc>>,
    /// Attempts that failed so far.
    pub attempts: i64,
    /// When it is tried again; null when it is due now.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The status of every subscription in `webhooks`.
pub async fn status(
    db: &Db,
    webhooks: &[WebhookSettings],
    now: DateTime<Utc>,
) -> Result<Webhooks, sqlx::Error> {
    let rows = store::load_all(db).await?;
    let mut out = Vec::with_capacity(webhooks.len());
    for hook in webhooks {
        let row = rows.iter().find(|r| r.name == hook.name);
        let (waiting, oldest) = match row {
            Some(r) => {
                let filter = Filter::of(hook);
                store::lag(db, &filter, r.delivered_through, LAG_COUNT_LIMIT + 1).await?
            }
            None => (0, None),
        };
        let in_flight = row.and_then(|r| {
            let batch = store::Batch::of(r)?;
            Some(WebhookBatch {
                webhook_id: batch.id,
                first_event_id: r.batch_first?,
                last_event_id: r.batch_last?,
                events: batch.events.len() as i64,
                first_tried_at: r.batch_first_tried_at,
                attempts: r.attempts,
                next_attempt_at: r.next_attempt_at.filter(|t| *t > now),
            })
        });
        out.push(WebhookStatus {
            name: hook.name.clone(),
            url: hook.shown_url(),
            kinds: hook.kinds.clone(),
            case_kinds: hook.case_kinds.clone(),
            schemes: hook.schemes.clone(),
            delivered_through: row.map(|r| r.delivered_through),
            lag_events: waiting.min(LAG_COUNT_LIMIT),
            lag_events_more: waiting > LAG_COUNT_LIMIT,
            lag_seconds: oldest.map(|t| (now - t).num_seconds().max(0)),
            in_flight,
            last_success_at: row.and_then(|r| r.last_success_at),
            last_error: row.and_then(|r| r.last_error.clone()),
            last_error_at: row.and_then(|r| r.last_error_at),
            failing_since: row.and_then(|r| r.failing_since),
            failing_reported_at: row.and_then(|r| r.failing_reported_at),
        });
    }
    Ok(Webhooks { webhooks: out })
}

impl Webhooks {
    /// As `casewarden webhooks` prints it; values from outside escaped for the terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if self.webhooks.is_empty() {
            out.push_str("no webhook subscriptions: add a [[webhooks]] table to casewarden.toml (see docs/webhooks.md)\n");
        }
        for s in &self.webhooks {
            let _ = write!(out, "{}", s.to_text());
        }
        out
    }
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "never".to_string(), crate::clock::for_people_exact)
}

impl WebhookStatus {
    fn to_text(&self) -> String {
        let t = |s: &str| crate::text::terminal(s).into_owned();
        let mut out = format!("{}  {}\n", t(&self.name), t(&self.url));
        let any = |v: &[String]| {
            if v.is_empty() {
                "any".to_string()
            } else {
                t(&v.join(", "))
            }
        };
        let _ = writeln!(
            out,
            "  kinds: {}; case kinds: {}; schemes: {}",
            t(&self.kinds.join(", ")),
            any(&self.case_kinds),
            any(&self.schemes)
        );
        match self.delivered_through {
            None => out.push_str("  not started yet: the first daemon to run with it starts it at the end of the log\n"),
            Some(through) => {
                let more = if self.lag_events_more { "more than " } else { "" };
                let age = self
                    .lag_seconds
                    .map_or(String::new(), |s| format!(", the oldest {s} s old"));
                let _ = writeln!(
                    out,
                    "  delivered through event {through}; waiting: {more}{} events{age}",
                    self.lag_events
                );
            }
        }
        if let Some(f) = &self.in_flight {
            let next = f.next_attempt_at.map_or("due now".to_string(), |n| {
                format!("next try {}", crate::clock::for_people_exact(n))
            });
            let _ = writeln!(
                out,
                "  in flight: events {} to {} ({}), webhook-id {}, {} failed attempts, {next}",
                f.first_event_id, f.last_event_id, f.events, f.webhook_id, f.attempts
            );
        }
        let _ = writeln!(out, "  last success: {}", time(self.last_success_at));
        if let Some(e) = &self.last_error {
            let _ = writeln!(
                out,
                "  last error: {} at {}",
                t(e),
                time(self.last_error_at)
            );
        }
        if let Some(since) = self.failing_since {
            let reported = self.failing_reported_at.map_or(String::new(), |r| {
                format!(" (reported {})", crate::clock::for_people_exact(r))
            });
            let _ = writeln!(
                out,
                "  FAILING since {}{reported}",
                crate::clock::for_people_exact(since)
            );
        }
        out
    }
}
