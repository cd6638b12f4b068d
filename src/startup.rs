//! Startup in one place: the database (migrated), the rule set and the engine, built the same
//! way for the daemon, `tick`, the other commands and the tests.

use anyhow::Context;

use crate::db::{self, DatabaseLock, Db};
use crate::engine::Engine;
use crate::problems::Problems;
use crate::rules::RuleSet;
use crate::settings::Settings;

/// A running engine and, on SQLite, the lock that keeps a second one off the same file.
pub struct App {
    pub settings: Settings,
    pub engine: Engine,
    _lock: Option<DatabaseLock>,
}

/// Opens the database and applies any migrations it lacks.
pub async fn open_database(settings: &Settings) -> anyhow::Result<Db> {
    let url = &settings.database.url;
    let db = Db::connect(url.expose()).await?;
    let pending = db
        .pending_migrations()
        .await
        .with_context(|| format!("reading the schema version of {url}"))?;
    // Migrating also checks the applied migrations against the binary's, so it runs every time;
    // under systemd, one that has work to do asks for more time to start instead of being killed.
    let migrated = if pending.is_empty() {
        db.migrate().await
    } else {
        tracing::info!(migrations = ?pending, "applying database migrations");
        crate::watchdog::extending_start(db.migrate()).await
    };
    migrated.with_context(|| format!("migrating {url}"))?;
    Ok(db)
}

/// Opens the database for the commands that do not migrate it: no migrations, so a diagnostic
/// run of a newer binary never changes the schema under a running daemon, and no new SQLite
/// file, so a command run in the wrong directory leaves nothing behind.
pub async fn connect_database(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect_existing(settings.database.url.expose()).await?;
    let migrated: Result<(i64,), _> = db::sql("SELECT COUNT(*) FROM inbox").fetch_one(&db).await;
    if migrated.is_err() {
        anyhow::bail!(
            "{} has no casewarden tables yet; run `casewarden migrate` first",
            settings.database.url
        );
    }
    Ok(db)
}

pub fn load_rules(settings: &Settings) -> Result<RuleSet, Problems> {
    RuleSet::load(
        &settings.rules.dir,
        &settings.templates.dir,
        &settings.rules.limits,
    )
}

/// Builds the engine. `exclusive` is for writers (the daemon, `tick`, `demo`): it takes the
/// one-writer lock of a SQLite database first, creates and migrates the database as need be,
/// and publishes the calendars' working days. A dry run (`plan`) changes none of that: it needs
/// a database `migrate` has made.
pub async fn build(settings: Settings, exclusive: bool) -> anyhow::Result<App> {
    let lock = match (exclusive, db::sqlite_path(settings.database.url.expose())) {
        (true, Some(path)) => Some(DatabaseLock::acquire(&path)?),
        _ => None,
    };
    let rules =
        load_rules(&settings).map_err(|p| anyhow::anyhow!("the rule set has problems:\n{p}"))?;
    let db = match exclusive {
        true => open_database(&settings).await?,
        false => connect_database(&settings).await?,
    };
    if exclusive {
        // Writers publish the working days the worklist views count; a dry run writes nothing.
        crate::engine::deadlines::publish_calendars(&db, &rules.calendars)
            .await
            .context("publishing working days")?;
    }
    let mailer = crate::mail::Mailer::new(&settings.mail)?;
    let engine = Engine::new(db, rules, settings.engine.clone())
        .with_mailer(mailer, settings.mail.clone())
        .with_packs(settings.packs.clone(), &settings.mail.organisation);
    Ok(App {
        settings,
        engine,
        _lock: lock,
    })
}
