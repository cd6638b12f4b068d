//! One pass of the engine, read top to bottom as the pipeline in `Engine::steps`: ingest
//! commands → allocate → release holds → retention → make housing packs → SLA sweep and escalation →
//! deliver mail. Also the engine and its settings.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::budget::Budget;
use super::error::StepError;
use super::outcome::PassOutcome;
use super::{
    allocate, due, guard, holds, housing_options, ingest, pack_files, retention, sla_sweep,
};
use crate::clock::Now;
use crate::db::Db;
use crate::rules::RuleSet;

/// Engine settings (`[engine]` in casewarden.toml).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// Rows a step takes per batch.
    pub batch_size: i64,
    /// How long one step may keep taking batches in a pass, in seconds. A step with more due
    /// work stops there and the next pass, started at once, takes up the rest. 0: one batch.
    pub step_budget_seconds: i64,
    /// The role whose worklist shows cases no rule could allocate.
    pub fallback_role: String,
    /// The largest command accepted, in bytes of JSON. A larger inbox row is rejected and cut
    /// down to a prefix (its size and SHA-256 kept in the reason); `submit` refuses it at once.
    pub max_command_bytes: usize,
}

impl EngineSettings {
    /// How long one step may keep taking batches in a pass.
    pub fn step_budget(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.step_budget_seconds.max(0).unsigned_abs())
    }

    /// Checks every setting against its documented range.
    pub fn check(&self) -> Result<(), String> {
        crate::range::in_range("engine.batch_size", self.batch_size, 1, 10_000)?;
        crate::range::in_range(
            "engine.step_budget_seconds",
            self.step_budget_seconds,
            0,
            3600,
        )?;
        crate::range::in_range(
            "engine.max_command_bytes",
            self.max_command_bytes as i64,
            1024,
            16 * 1024 * 1024,
        )?;
        crate::commands::reference("engine.fallback_role", &self.fallback_role).map_err(|r| r.0)
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            batch_size: 200,
            step_budget_seconds: 10,
            fallback_role: "allocation_queue".to_string(),
            max_command_bytes: crate::commands::MAX_COMMAND_BYTES,
        }
    }
}

/// The engine: a database and the rule set in force. Cloning shares both.
#[derive(Clone)]
pub struct Engine {
    pub db: Db,
    pub(super) rules: Arc<RwLock<Arc<RuleSet>>>,
    pub settings: EngineSettings,
    /// Delivery: without a mailer, notifications wait in the outbox.
    pub(super) mail: Option<(Arc<crate::mail::Mailer>, Arc<crate::mail::MailSettings>)>,
    /// Where housing packs are written, and the organisation named in them.
    pub(super) packs: Arc<(pack_files::PackSettings, String)>,
    /// Counts the passes whose ingest step decided a command, for callers waiting on one.
    pub(super) ingested: Arc<tokio::sync::watch::Sender<u64>>,
    /// What the passes did, for a scrape.
    pub(super) metrics: Arc<super::metrics::Metrics>,
    /// The retention rules the closed cases' dates were last found worked out with.
    pub(super) retention: Arc<retention::InPlace>,
}

impl Engine {
    pub fn new(db: Db, rules: RuleSet, settings: EngineSettings) -> Engine {
        Engine {
            db,
            rules: Arc::new(RwLock::new(Arc::new(rules))),
            settings,
            mail: None,
            packs: Arc::new((
                pack_files::PackSettings::default(),
                crate::mail::MailSettings::default().organisation,
            )),
            ingested: Arc::new(tokio::sync::watch::Sender::new(0)),
            metrics: Arc::new(super::metrics::Metrics::new()),
            retention: Arc::default(),
        }
    }

    /// What this engine's passes have done, for `/metrics`.
    pub fn metrics(&self) -> &super::metrics::Metrics {
        &self.metrics
    }

    /// Writes housing packs under `settings.dir`, naming `organisation` in them.
    pub fn with_packs(mut self, settings: pack_files::PackSettings, organisation: &str) -> Engine {
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
    /// Where this engine writes housing packs.
    pub fn packs_dir(&self) -> &std::path::Path {
        &self.packs.0.dir
    }

    /// Where this engine's mail goes as `.eml` files, when the file transport sends it.
    pub fn mail_dir(&self) -> Option<&std::path::Path> {
        self.mail
            .as_ref()
            .filter(|(mailer, _)| mailer.writes_files())
            .map(|(_, settings)| settings.dir.as_path())
    }

    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.read().expect("rule set lock poisoned").clone()
    }

    /// Replaces the rule set between passes.
    pub fn swap_rules(&self, rules: RuleSet) {
        *self.rules.write().expect("rule set lock poisoned") = Arc::new(rules);
    }

    /// Changes each time a pass has decided commands: wait on it, then look at the inbox rows.
    pub fn ingested(&self) -> tokio::sync::watch::Receiver<u64> {
        self.ingested.subscribe()
    }

    /// Runs every step once as if the time were `now`.
    pub async fn run_pass(&self, now: DateTime<Utc>) -> Result<PassOutcome, StepError> {
        self.pass(Now::At(crate::clock::truncate(now))).await
    }

    /// Runs every step once on the wall clock, as the daemon does: each command takes the time
    /// at which it is applied.
    pub async fn run_live_pass(&self) -> Result<PassOutcome, StepError> {
        self.pass(Now::Live).await
    }

    /// One pass. Each step runs whatever the others did: a step that fails (a database error)
    /// or panics (a defect) is logged with its name, and the pass goes on to the next step. The
    /// pass fails, after all steps have run, if any step did.
    async fn pass(&self, clock: Now) -> Result<PassOutcome, StepError> {
        let rules = self.rules();
        let now = clock.get();
        let span = tracing::info_span!("pass", now = %now.to_rfc3339(), rules = %rules.hash);
        async {
            let mut failed = Vec::new();
            let started = std::time::Instant::now();
            let outcome = self.steps(&rules, clock, &mut failed).await;
            let took = started.elapsed();
            self.metrics.pass(&outcome, took, failed.is_empty());
            if !outcome.is_idle() {
                tracing::info!(%outcome, "pass finished");
            }
            match failed.len() {
                0 => Ok(outcome),
                _ => Err(StepError::Internal(format!(
                    "these steps failed and will be tried again next pass: {}",
                    failed.join("; ")
                ))),
            }
        }
        .instrument(span)
        .await
    }

    async fn steps(
        &self,
        rules: &Arc<RuleSet>,
        clock: Now,
        failed: &mut Vec<String>,
    ) -> PassOutcome {
        let batch = self.settings.batch_size.max(1);
        let db = &self.db;
        let now = clock.get();
        let (max_bytes, limit) = (self.settings.max_command_bytes, self.settings.step_budget());
        if !due::anything(db, now, self.mail.is_some()).await {
            return PassOutcome::default();
        }
        let budget = Budget::new(limit);
        let ingest = step(&self.metrics, "ingest", failed, async {
            ingest::run_once(db, rules, clock, batch, max_bytes, &budget).await
        })
        .await;
        if ingest.accepted + ingest.rejected + ingest.duplicates > 0 {
            self.ingested.send_modify(|n| *n += 1);
        }
        // The other steps run at the pass's time, or, live, at the time they start.
        let now = match clock {
            Now::At(_) => now,
            Now::Live => crate::clock::now(),
        };
        let allocation = step(&self.metrics, "allocation", failed, async {
            let budget = budget.next_step(limit);
            allocate::run_once(db, rules, &self.settings.fallback_role, now, batch, &budget).await
        })
        .await;
        let holds_released = step(&self.metrics, "holds", failed, async {
            holds::run_once(db, rules, now, batch, &budget.next_step(limit)).await
        })
        .await;
        let (pack_settings, organisation) = &*self.packs;
        let retained = step(&self.metrics, "retention", failed, async {
            let files = self.retention_files();
            let rules = (&**rules, &*self.retention);
            retention::run_once(db, rules, files, now, batch, &budget.next_step(limit)).await
        })
        .await;
        let packs = step(&self.metrics, "packs", failed, async {
            let budget = budget.next_step(limit);
            housing_options::run_once(db, rules, pack_settings, organisation, now, batch, &budget)
                .await
        })
        .await;
        let sla = step(&self.metrics, "sla", failed, async {
            sla_sweep::run_once(db, rules, now, batch, &budget.next_step(limit)).await
        })
        .await;
        let delivery = self.deliver(rules, now, failed).await;
        PassOutcome {
            sent: delivery.sent,
            retried: delivery.retried,
            dead: delivery.dead,
            deferred: delivery.deferred,
            smtp_unreachable: delivery.unreachable,
            escalations: sla.escalations,
            escalations_by_level: sla.by_level,
            notifications: sla.notifications,
            allocation_rule_errors: allocation.rule_errors,
            escalation_rule_errors: sla.rule_errors,
            accepted: ingest.accepted,
            rejected: ingest.rejected,
            duplicates: ingest.duplicates,
            allocated: allocation.allocated,
            allocation_needed: allocation.needed,
            holds_released,
            retained_anonymised: retained.anonymised,
            retained_deleted: retained.deleted,
            packs_made: packs.made,
            packs_waiting: packs.waiting,
            packs_failed: packs.failed,
            more_due: budget.ran_out(),
        }
    }

    /// Where a retained case's files are; a dry run (`plan`) removes none.
    fn retention_files(&self) -> retention::Files<'_> {
        let mail = self
            .mail
            .as_ref()
            .filter(|(mailer, _)| mailer.writes_files())
            .map(|(_, settings)| settings.dir.as_path());
        retention::Files {
            packs: &self.packs.0.dir,
            mail,
            remove: !self.packs.0.dry_run,
        }
    }

    /// Delivers the notifications due, when the engine has a mailer.
    async fn deliver(
        &self,
        rules: &RuleSet,
        now: DateTime<Utc>,
        failed: &mut Vec<String>,
    ) -> crate::mail::deliver::Outcome {
        match &self.mail {
            Some((mailer, settings)) => {
                step(&self.metrics, "delivery", failed, async {
                    crate::mail::deliver::run_once(
                        &self.db,
                        mailer,
                        &rules.templates,
                        &rules.calendars,
                        settings,
                        now,
                    )
                    .await
                    .map_err(StepError::from)
                })
                .await
            }
            None => crate::mail::deliver::Outcome::default(),
        }
    }
}

/// Runs one step, catching its error or panic: logged, named in `failed`, and an empty outcome
/// in its place, so the steps after it still run.
async fn step<T: Default>(
    metrics: &super::metrics::Metrics,
    name: &'static str,
    failed: &mut Vec<String>,
    work: impl std::future::Future<Output = Result<T, StepError>>,
) -> T {
    let started = std::time::Instant::now();
    // Boxed: a pass's futures nest deeply, and each step's belongs on the heap, not the stack.
    let result = std::panic::AssertUnwindSafe(Box::pin(work))
        .catch_unwind()
        .await;
    metrics.step(name, started.elapsed());
    match result {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => {
            tracing::error!(step = name, error = %e, "step failed; the other steps still run");
            failed.push(format!("{name}: {e}"));
            T::default()
        }
        Err(panic) => {
            let message = guard::panic_message(&panic);
            tracing::error!(step = name, panic = %message, "step panicked; the other steps still run");
            failed.push(format!("{name}: internal error: {message}"));
            T::default()
        }
    }
}
