//! `casewarden run`: passes on a cron schedule, and at once when a command arrives (queued by the
//! API, or written into the inbox by another process: see [`crate::wake`]), until
//! SIGTERM or SIGINT, which let the pass under way finish. The integration API is served from
//! the same process. SIGHUP reloads rules and templates between passes, keeping the running set
//! if the new one has problems, and the API's TLS certificate. systemd hears READY once
//! migrations and rules are loaded and the API listens, and STOPPING at shutdown. Webhook
//! delivery runs beside the passes, woken after each, and stops with them.

use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::events::kinds::{Kind, RulesLoaded, RulesRejected};
use crate::events::{self, ENGINE};
use crate::instances::Instance;
use crate::live::Live;
use crate::startup::{self, App};

/// Runs until `shutdown` is cancelled (the signal handlers cancel it).
pub async fn run(app: App, shutdown: CancellationToken) -> anyhow::Result<()> {
    Daemon::start(app).await?.run(shutdown).await
}

/// A daemon that has started: the API listens, the schedule runs, the first pass is due.
pub struct Daemon {
    app: App,
    live: Live,
    api: Option<crate::api::Server>,
    /// The metrics listener of its own (`metrics.listen`), if any.
    metrics: Option<crate::metrics::server::Server>,
    scheduler: JobScheduler,
    /// Stops the tasks started beside the pass loop (the inbox watcher).
    beside: CancellationToken,
    delivery: crate::webhooks::Delivery,
    /// This daemon's row in `instances`, for `casewarden status`.
    instance: Instance,
}

impl Daemon {
    pub async fn start(app: App) -> anyhow::Result<Daemon> {
        let engine = app.engine.clone();
        let schedule = app.settings.daemon.schedule.clone();
        let instance = Instance::register(&engine.db, &engine.rules().hash, crate::clock::now())
            .await
            .context("recording this daemon in the instances table")?;
        let live = Live::new(
            engine.rules().hash.clone(),
            crate::clock::now(),
            interval(&app.settings.daemon),
        );
        // Secrets are read now, so a missing one stops the start, named, before READY.
        let subscriptions = crate::webhooks::Subscription::load_all(&app.settings.webhooks)?;
        let api = if app.settings.api.enabled {
            let state = crate::api::ApiState::new(
                engine.clone(),
                live.clone(),
                app.settings.api.clone(),
                app.settings.webhooks.clone(),
            )
            .with_metrics(app.settings.metrics.on_api);
            Some(crate::api::Server::start(state).await?)
        } else {
            None
        };
        let metrics = start_metrics(&app, &live).await?;
        let scheduler = JobScheduler::new()
            .await
            .context("starting the scheduler")?;
        let job_live = live.clone();
        let job = Job::new_async(schedule.as_str(), move |_, _| {
            // Rings coalesce: a pass already due is not run twice, and passes never overlap.
            job_live.ring();
            Box::pin(async {})
        })
        // The settings' check has read the schedule as the scheduler does; were it refused here
        // anyway, the scheduler's own error (`ParseSchedule`) would add nothing for a person.
        .map_err(|_| {
            anyhow::anyhow!(
                "daemon.schedule {} is not a 6-field cron expression (seconds first)",
                crate::text::quote(&schedule)
            )
        })?;
        scheduler.add(job).await?;
        scheduler.start().await?;
        live.ring();
        let beside = CancellationToken::new();
        tokio::spawn(crate::wake::watch(
            engine.db.clone(),
            live.clone(),
            beside.clone(),
        ));
        let delivery = crate::webhooks::start(
            engine.db.clone(),
            subscriptions,
            live.passes(),
            live.stopping(),
        );
        Ok(Daemon {
            app,
            live,
            api,
            metrics,
            scheduler,
            beside,
            delivery,
            instance,
        })
    }

    /// Where the API listens, if it is enabled.
    pub fn api_address(&self) -> Option<std::net::SocketAddr> {
        self.api.as_ref().map(|a| a.address)
    }

    /// Where the metrics listener of its own listens, if there is one.
    pub fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().map(|m| m.address)
    }

    pub fn live(&self) -> &Live {
        &self.live
    }

    /// Answers rings, signals and rule edits until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Daemon {
            app,
            live,
            api,
            metrics,
            mut scheduler,
            beside,
            delivery,
            instance,
        } = self;
        let engine = app.engine.clone();
        let schedule = app.settings.daemon.schedule.clone();
        let mut hangup = signal(SignalKind::hangup())?;
        // Rule edits are picked up by polling a fingerprint of the files; a change is loaded once the
        // files have stopped changing for one interval, so a half-saved edit is not tried.
        let watched = [
            app.settings.rules.dir.clone(),
            app.settings.templates.dir.clone(),
        ];
        let mut watch = tokio::time::interval(Duration::from_millis(
            app.settings.daemon.watch_interval_ms.max(100),
        ));
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut loaded = fingerprint(&watched);
        // Whether the last reload was refused: then the next good set is always announced, even if
        // it is the set already running.
        let mut refused = false;
        let mut seen = loaded;
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        let watchdog = crate::watchdog::start(live.clone(), beside.clone());
        tracing::info!(rules = %engine.rules().hash, schedule = %schedule, watchdog = ?watchdog, "casewarden is running");
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = hangup.recv() => {
                    loaded = fingerprint(&watched);
                    seen = loaded;
                    refused = reload(&app, &live, &instance, "SIGHUP", refused).await;
                    if let Some(api) = &api
                        && let Err(e) = api.reload_tls().await
                    {
                        tracing::error!(error = format!("{e:#}"), "TLS certificate not reloaded; the old one stays in use");
                    }
                }
                _ = watch.tick(), if app.settings.daemon.watch_rules => {
                    let now = fingerprint(&watched);
                    if now != loaded && now == seen {
                        loaded = now;
                        refused = reload(&app, &live, &instance, "files changed", refused).await;
                    }
                    seen = now;
                }
                () = live.rung() => {
                    let started = crate::clock::now();
                    let timer = std::time::Instant::now();
                    live.pass_started();
                    let result = engine.run_live_pass().await;
                    let took = timer.elapsed();
                    match &result {
                        Err(e) => {
                            tracing::error!(error = %e, "pass failed; the next pass will retry");
                        }
                        // A step that spent its time budget left due work, and nothing else
                        // would ring for it before the schedule: commands would wait a whole
                        // interval, and a `Prefer: wait` would run out.
                        Ok(o) if o.more_due => live.ring(),
                        Ok(_) => {}
                    }
                    let finished = crate::clock::now();
                    live.passed(started, finished, result.is_ok());
                    let summary = match &result {
                        Ok(o) => o.to_string(),
                        Err(e) => format!("failed: {e}"),
                    };
                    crate::watchdog::status(&format!("last pass {} took {took:.1?}: {summary}", finished.to_rfc3339()));
                    if let Err(e) = instance.passed(&engine.db, started, took, result.is_ok(), &summary, finished).await {
                        tracing::warn!(error = %e, "could not record the pass in the instances table");
                    }
                }
            }
        }
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        tracing::info!("shutting down");
        if let Err(e) = instance.stopped(&engine.db, crate::clock::now()).await {
            tracing::warn!(error = %e, "could not record the stop in the instances table");
        }
        beside.cancel();
        live.stop();
        if let Some(api) = api {
            api.shutdown().await;
        }
        if let Some(metrics) = metrics {
            metrics.shutdown().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), scheduler.shutdown()).await;
        delivery.stopped(Duration::from_secs(5)).await;
        engine.db.close().await;
        Ok(())
    }
}

/// Starts the metrics listener of its own, if `metrics.listen` asks for one.
async fn start_metrics(
    app: &App,
    live: &Live,
) -> anyhow::Result<Option<crate::metrics::server::Server>> {
    let settings = &app.settings.metrics;
    let api = app.settings.api.listening().map_err(anyhow::Error::msg)?;
    settings.check(api).map_err(anyhow::Error::msg)?;
    let Some(address) = settings.address().map_err(anyhow::Error::msg)? else {
        return Ok(None);
    };
    let source = crate::metrics::server::Source {
        engine: app.engine.clone(),
        live: live.clone(),
        webhooks: app.settings.webhooks.clone().into(),
    };
    Ok(Some(
        crate::metrics::server::Server::start(address, source).await?,
    ))
}

/// The longest gap between two passes the schedule makes (over its next few firings): how
/// stale the last pass may be before the daemon is not ready.
pub fn interval(daemon: &crate::settings::DaemonSettings) -> Duration {
    let Ok(cron) = daemon.cron() else {
        return Duration::from_secs(3600);
    };
    let times: Vec<_> = cron.iter_after(crate::clock::now()).take(8).collect();
    times
        .windows(2)
        .filter_map(|w| (w[1] - w[0]).to_std().ok())
        .max()
        .unwrap_or(Duration::from_secs(3600))
}

/// A hash of every file's path, size and modification time under `dirs`.
fn fingerprint(dirs: &[std::path::PathBuf]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut stack: Vec<std::path::PathBuf> = dirs.to_vec();
    let mut entries = Vec::new();
    while let Some(dir) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in read.flatten() {
            let path = entry.path();
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(path),
                Ok(m) => entries.push((path, m.len(), m.modified().ok())),
                Err(_) => {}
            }
        }
    }
    entries.sort();
    entries.hash(&mut hasher);
    hasher.finish()
}

/// Reloads the rule set; returns whether it was refused.
async fn reload(
    app: &App,
    live: &Live,
    instance: &Instance,
    why: &str,
    after_refusal: bool,
) -> bool {
    tracing::info!(trigger = why, "reloading rules and templates");
    let db: &Db = &app.engine.db;
    let now = crate::clock::now();
    let loaded = startup::load_rules(&app.settings);
    let refused = loaded.is_err();
    let result = match loaded {
        Ok(rules) if !after_refusal && why != "SIGHUP" && rules.hash == app.engine.rules().hash => {
            // An editor's swap file, or a save that changed nothing: no new set, no event. An
            // operator's SIGHUP is always answered.
            tracing::debug!(rules = %rules.hash, "rules unchanged");
            Ok(())
        }
        Ok(rules) => {
            let hash = rules.hash.clone();
            match crate::engine::deadlines::publish_calendars(db, &rules.calendars).await {
                Ok(changed) if !changed.is_empty() => {
                    tracing::info!(calendars = ?changed, "published the changed calendars' working days");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "could not publish the new working days; the worklists keep the old ones");
                }
            }
            app.engine.swap_rules(rules);
            live.rules_loaded(hash.clone(), now);
            if let Err(e) = instance.rules_loaded(db, &hash, now).await {
                tracing::warn!(error = %e, "could not record the new rule set in the instances table");
            }
            tracing::info!(rules = %hash, "rules reloaded");
            record(db, now, Kind::RulesLoaded(RulesLoaded { hash })).await
        }
        Err(problems) => {
            for p in &problems.0 {
                tracing::error!(problem = %p, "rule set refused; the running rules stay in force");
            }
            let list: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
            live.rules_rejected(list.clone(), now);
            let rejected = RulesRejected {
                problems: list,
                kept: app.engine.rules().hash.clone(),
            };
            record(db, now, Kind::RulesRejected(rejected)).await
        }
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "could not record the reload");
    }
    refused
}

async fn record(
    db: &Db,
    now: chrono::DateTime<chrono::Utc>,
    event: Kind,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    events::record(&mut tx, None, now, ENGINE, event).await?;
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
