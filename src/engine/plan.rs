//! `casewarden plan`: what the next pass would do, worked out by running it on a pinned handle
//! whose transaction is rolled back, so it writes nothing. It reports the pass's outcome, every
//! event it would write (allocations, activations, releases, escalations, each with its reason),
//! the notifications it would queue, and those it would try to send.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::StepError;
use super::outcome::PassOutcome;
use super::pass::Engine;
use crate::db::{Db, sql};
use crate::events::{self, Event};

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct PlannedMail {
    pub id: i64,
    pub case_ref: Option<String>,
    pub template: String,
    pub recipient_ref: Option<String>,
    pub status: String,
}

#[derive(Debug, Serialize)]
pub struct Plan {
    pub now: DateTime<Utc>,
    pub outcome: PassOutcome,
    pub events: Vec<Event>,
    /// Notifications the pass would write.
    pub queued: Vec<PlannedMail>,
    /// Notifications due to be sent at the end of the pass.
    pub to_send: Vec<PlannedMail>,
}

/// Runs the next pass at `now` on a rolled-back transaction of `engine`'s database.
pub async fn plan(engine: &Engine, now: DateTime<Utc>) -> Result<Plan, StepError> {
    let db = engine.db.pinned().await?;
    let result = run(engine, &db, now).await;
    db.discard().await?;
    result
}

async fn run(engine: &Engine, db: &Db, now: DateTime<Utc>) -> Result<Plan, StepError> {
    let (last_event,): (Option<i64>,) = sql("SELECT MAX(id) FROM events").fetch_one(db).await?;
    let (last_mail,): (Option<i64>,) = sql("SELECT MAX(id) FROM outbox").fetch_one(db).await?;
    // The same rules and settings, on the pinned handle, and with no mailer: nothing is sent.
    let dry = Engine {
        db: db.clone(),
        rules: Arc::clone(&engine.rules),
        settings: engine.settings.clone(),
        mail: None,
        // Packs are rendered and checked but not written.
        packs: Arc::new((
            super::pack_files::PackSettings {
                dry_run: true,
                ..engine.packs.0.clone()
            },
            engine.packs.1.clone(),
        )),
        ingested: Arc::default(),
        // A dry run is not a pass: it counts into metrics nobody reads.
        metrics: Arc::default(),
        // What a dry run finds or rewrites is not the database's: it learns it afresh.
        retention: Arc::default(),
    };
    let outcome = dry.run_pass(now).await?;
    let events = events::since(db, last_event.unwrap_or(0), 1_000_000).await?;
    let queued = sql(
        "SELECT o.id, c.case_ref, o.template, o.recipient_ref, o.status FROM outbox o \
         LEFT JOIN cases c ON c.id = o.case_id WHERE o.id > $1 ORDER BY o.id",
    )
    .bind(last_mail.unwrap_or(0))
    .fetch_all(db)
    .await?;
    let to_send = if engine.mail.is_some() {
        sql(
            "SELECT o.id, c.case_ref, o.template, o.recipient_ref, o.status FROM outbox o \
             LEFT JOIN cases c ON c.id = o.case_id \
             WHERE o.status IN ('pending', 'claimed') AND o.next_attempt_at <= $1 ORDER BY o.id",
        )
        .bind(now)
        .fetch_all(db)
        .await?
    } else {
        Vec::new()
    };
    Ok(Plan {
        now,
        outcome,
        events,
        queued,
        to_send,
    })
}

impl Plan {
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "Plan for a pass at {} (nothing has been written)\n  {}\n",
            crate::clock::for_people(self.now),
            self.outcome
        );
        if self.events.is_empty() {
            out.push_str("\nThe pass would change nothing.\n");
        } else {
            out.push_str("\nWhat it would do:\n");
            for e in &self.events {
                let case = e.case_ref.as_deref().unwrap_or("-");
                out.push_str(&format!(
                    "  {case:<12} {:<20} by {:<10} {}\n",
                    e.kind, e.actor, e.data.0
                ));
            }
        }
        if !self.queued.is_empty() {
            out.push_str("\nNotifications it would queue:\n");
            for m in &self.queued {
                out.push_str(&format!(
                    "  {:<12} {:<18} to {} ({})\n",
                    m.case_ref.as_deref().unwrap_or("-"),
                    m.template,
                    m.recipient_ref.as_deref().unwrap_or("nobody"),
                    m.status
                ));
            }
        }
        if !self.to_send.is_empty() {
            out.push_str("\nNotifications it would send:\n");
            for m in &self.to_send {
                out.push_str(&format!(
                    "  #{:<6} {:<12} {:<18} to {}\n",
                    m.id,
                    m.case_ref.as_deref().unwrap_or("-"),
                    m.template,
                    m.recipient_ref.as_deref().unwrap_or("nobody")
                ));
            }
        }
        out
    }
}
