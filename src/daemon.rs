//! `casewarden run`: passes on a cron schedule until SIGTERM or SIGINT, which let the pass under
//! way finish. SIGHUP reloads rules and templates between passes, keeping the running set if the
//! new one has problems. systemd hears READY once migrations and rules are loaded, and STOPPING
//! at shutdown.

use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::events::{self, ENGINE};
use crate::startup::{self, App};

/// Runs until `shutdown` is cancelled (the signal handlers cancel it).
pub async fn run(app: App, shutdown: CancellationToken) -> anyhow::Result<()> {
    let engine = app.engine.clone();
    let (trigger, mut triggered) = mpsc::channel::<()>(1);
    let mut scheduler = JobScheduler::new()
        .await
        .context("starting the scheduler")?;
    let schedule = app.settings.daemon.schedule.clone();
    let job_trigger = trigger.clone();
    let job = Job::new_async(schedule.as_str(), move |_, _| {
        // A full channel means a pass is already due: triggers coalesce, passes never overlap.
        let _ = job_trigger.try_send(());
        Box::pin(async {})
    })
    .with_context(|| {
        format!("daemon.schedule {schedule:?} is not a 6-field cron expression (seconds first)")
    })?;
    scheduler.add(job).await?;
    scheduler.start().await?;
    let _ = trigger.try_send(());

    let mut hangup = signal(SignalKind::hangup())?;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    tracing::info!(rules = %engine.rules().hash, schedule = %schedule, "casewarden is running");
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = hangup.recv() => reload(&app).await,
            Some(()) = triggered.recv() => {
                if let Err(e) = engine.run_pass(crate::clock::now()).await {
                    tracing::error!(error = %e, "pass failed; the next pass will retry");
                }
            }
        }
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    tracing::info!("shutting down");
    let _ = tokio::time::timeout(Duration::from_secs(5), scheduler.shutdown()).await;
    engine.db.close().await;
    Ok(())
}

/// Loads the rule set again; swaps it in only if it has no problems.
async fn reload(app: &App) {
    let db: &Db = &app.engine.db;
    let now = crate::clock::now();
    let result = match startup::load_rules(&app.settings) {
        Ok(rules) => {
            let hash = rules.hash.clone();
            if let Err(e) = crate::engine::sla::publish_calendars(db, &rules.calendars).await {
                tracing::error!(error = %e, "could not publish the new working days; the worklists keep the old ones");
            }
            app.engine.swap_rules(rules);
            tracing::info!(rules = %hash, "rules reloaded");
            record(db, now, "rules_loaded", json!({"hash": hash})).await
        }
        Err(problems) => {
            for p in &problems.0 {
                tracing::error!(problem = %p, "rule set refused; the running rules stay in force");
            }
            let list: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
            record(
                db,
                now,
                "rules_rejected",
                json!({"problems": list, "kept": app.engine.rules().hash}),
            )
            .await
        }
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "could not record the reload");
    }
}

async fn record(
    db: &Db,
    now: chrono::DateTime<chrono::Utc>,
    kind: &str,
    data: serde_json::Value,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    tx.serialise(crate::engine::WRITER_LOCK).await?;
    events::append(&mut tx, None, now, kind, ENGINE, data).await?;
    tx.commit().await
}

/// Cancels the token on SIGTERM or SIGINT.
pub fn on_shutdown_signals() -> anyhow::Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing the current pass"),
            _ = int.recv() => tracing::info!("SIGINT: finishing the current pass"),
        }
        cancel.cancel();
    });
    Ok(token)
}
