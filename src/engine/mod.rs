//! The engine: one pass runs each step once (ingest → allocate → release holds → housing
//! packs → SLA sweep → delivery), each step
//! finding its work by index and committing in small transactions. `run_pass(now)` is what the
//! scheduler, `tick --now` and the tests all call.

pub mod allocate;
pub mod apply;
pub mod case_target;
pub mod holds;
pub mod housing;
pub mod ingest;
pub mod plan;
pub mod progress;
pub mod recipients;
pub mod rows;
pub mod sla;

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

pub use crate::db::Db;
use crate::rules::RuleSet;

/// Key of the PostgreSQL advisory lock that admits one engine writer at a time.
pub const WRITER_LOCK: i64 = 0x6361_7365_7761_7264; // "caseward" in ASCII

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

/// Engine settings (`[engine]` in casewarden.toml).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// Rows a step takes per batch.
    pub batch_size: i64,
    /// The role whose worklist shows cases no rule could allocate.
    pub fallback_role: String,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            batch_size: 200,
            fallback_role: "allocation_queue".to_string(),
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PassOutcome {
    pub accepted: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub allocated: u64,
    pub allocation_needed: u64,
    pub holds_released: u64,
    /// Housing packs made, waiting for answers, and failed (to be retried).
    pub packs_made: u64,
    pub packs_waiting: u64,
    pub packs_failed: u64,
    pub escalations: u64,
    pub notifications: u64,
    pub sent: u64,
    pub retried: u64,
    pub dead: u64,
    /// Escalation mail held back to working hours (quiet hours).
    pub deferred: u64,
    /// Delivery stopped early: the SMTP server could not be reached.
    pub smtp_unreachable: bool,
}

impl PassOutcome {
    pub fn is_idle(&self) -> bool {
        *self == PassOutcome::default()
    }
}

impl std::fmt::Display for PassOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "commands: {} accepted, {} rejected, {} duplicate; allocation: {} allocated, {} needed; \
             holds released: {}; packs: {} made, {} waiting for answers, {} failed; escalations: {} ({} notifications); mail: {} sent, {} to retry, {} dead, {} held to working hours{}",
            self.accepted,
            self.rejected,
            self.duplicates,
            self.allocated,
            self.allocation_needed,
            self.holds_released,
            self.packs_made,
            self.packs_waiting,
            self.packs_failed,
            self.escalations,
            self.notifications,
            self.sent,
            self.retried,
            self.dead,
            self.deferred,
            if self.smtp_unreachable {
                " (stopped: SMTP server unreachable)"
            } else {
                ""
            }
        )
    }
}

/// The engine: a database and the rule set in force. Cloning shares both.
#[derive(Clone)]
pub struct Engine {
    pub db: Db,
    rules: Arc<RwLock<Arc<RuleSet>>>,
    pub settings: EngineSettings,
    /// Delivery: without a mailer, notifications wait in the outbox.
    mail: Option<(Arc<crate::mail::Mailer>, Arc<crate::mail::MailSettings>)>,
    /// Where housing packs are written, and the organisation named in them.
    packs: Arc<(housing::PackSettings, String)>,
}

impl Engine {
    pub fn new(db: Db, rules: RuleSet, settings: EngineSettings) -> Engine {
        Engine {
            db,
            rules: Arc::new(RwLock::new(Arc::new(rules))),
            settings,
            mail: None,
            packs: Arc::new((
                housing::PackSettings::default(),
                crate::mail::MailSettings::default().organisation,
            )),
        }
    }

    /// Writes housing packs under `settings.dir`, naming `organisation` in them.
    pub fn with_packs(mut self, settings: housing::PackSettings, organisation: &str) -> Engine {
        self.packs = Arc::new((settings, organisation.to_string()));
        self
    }

    /// Delivers notifications with `mailer` at the end of each pass.
    pub fn with_mailer(
        mut self,
        mailer: crate::mail::Mailer,
        settings: crate::mail::MailSettings,
    ) -> Engine {
        self.mail = Some((Arc::new(mailer), Arc::new(settings)));
        self
    }

    /// The rule set in force. A pass holds on to the set it started with.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.read().expect("rule set lock poisoned").clone()
    }

    /// Replaces the rule set between passes.
    pub fn swap_rules(&self, rules: RuleSet) {
        *self.rules.write().expect("rule set lock poisoned") = Arc::new(rules);
    }

    /// Runs every step once as if the time were `now`.
    pub async fn run_pass(&self, now: DateTime<Utc>) -> Result<PassOutcome, StepError> {
        let now = crate::clock::truncate(now);
        let rules = self.rules();
        let span = tracing::info_span!("pass", now = %now.to_rfc3339(), rules = %rules.hash);
        self.steps(&rules, now).instrument(span).await
    }

    async fn steps(
        &self,
        rules: &Arc<RuleSet>,
        now: DateTime<Utc>,
    ) -> Result<PassOutcome, StepError> {
        let batch = self.settings.batch_size.max(1);
        let rules = rules.clone();
        let ingest = ingest::run_once(&self.db, &rules, now, batch).await?;
        let allocation =
            allocate::run_once(&self.db, &rules, &self.settings.fallback_role, now, batch).await?;
        let holds_released = holds::run_once(&self.db, &rules, now, batch).await?;
        let (pack_settings, organisation) = &*self.packs;
        let packs =
            housing::run_once(&self.db, &rules, pack_settings, organisation, now, batch).await?;
        let sla = sla::run_once(&self.db, &rules, now, batch).await?;
        let delivery = match &self.mail {
            Some((mailer, settings)) => {
                crate::mail::deliver::run_once(
                    &self.db,
                    mailer,
                    &rules.templates,
                    &rules.calendars,
                    settings,
                    now,
                )
                .await?
            }
            None => crate::mail::deliver::Outcome::default(),
        };
        let outcome = PassOutcome {
            sent: delivery.sent,
            retried: delivery.retried,
            dead: delivery.dead,
            deferred: delivery.deferred,
            smtp_unreachable: delivery.unreachable,
            escalations: sla.escalations,
            notifications: sla.notifications,
            accepted: ingest.accepted,
            rejected: ingest.rejected,
            duplicates: ingest.duplicates,
            allocated: allocation.allocated,
            allocation_needed: allocation.needed,
            holds_released,
            packs_made: packs.made,
            packs_waiting: packs.waiting,
            packs_failed: packs.failed,
        };
        if !outcome.is_idle() {
            tracing::info!(%outcome, "pass finished");
        }
        Ok(outcome)
    }
}
