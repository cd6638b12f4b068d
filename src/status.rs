//! `casewarden status`: what an operator asks first. Which binary and database, whether the
//! schema is up to date, whether a daemon is running on it and how its last pass went, how much
//! work waits, and whether the rule files on disk are the set in force. Read from the database
//! (each daemon keeps its row in `instances`), so it answers the same from any machine; every
//! count is bounded, so it stays quick at any size.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::{self, Backend, Db, Sql, sql};
use crate::instances::{self, InstanceRow};
use crate::settings::Settings;
use crate::text::terminal;

/// Counts stop here and say "more".
const COUNT_LIMIT: i64 = 100_000;

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Status {
    pub version: String,
    /// The database URL, any password shown as `***`.
    pub database: String,
    pub backend: String,
    /// The newest schema version applied.
    pub schema_version: Option<i64>,
    /// Schema versions this binary has that the database lacks: a daemon of this version
    /// applies them at start.
    pub pending_migrations: Vec<i64>,
    pub writer_lock: WriterLock,
    /// The daemons seen on this database, newest first, at most five.
    pub instances: Vec<Instance>,
    pub backlog: Backlog,
    pub rules: Rules,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct WriterLock {
    /// On SQLite, whether another process (a daemon or a `tick`) holds the one-writer lock now;
    /// null on PostgreSQL, where instances share the database.
    pub held: Option<bool>,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Instance {
    /// `running`, `stopped`, or `silent` (not seen for longer than its schedule allows: it died,
    /// or its pass loop is stuck).
    pub state: String,
    #[serde(flatten)]
    pub row: InstanceRow,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Backlog {
    /// Commands waiting in the inbox.
    pub inbox_pending: Count,
    /// When the oldest waiting command was received.
    pub inbox_oldest_at: Option<DateTime<Utc>>,
    /// Notifications waiting to be sent (or being sent).
    pub outbox_pending: Count,
    /// When the oldest waiting notification was written.
    pub outbox_oldest_at: Option<DateTime<Utc>>,
    /// Notifications that gave up: `casewarden outbox --status dead`.
    pub outbox_dead: Count,
    /// Task and stage SLA checkpoints due now and not yet fired.
    pub checkpoints_due: Count,
    /// New cases not yet allocated.
    pub cases_awaiting_allocation: Count,
}

/// A count that stops at a limit.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
pub struct Count {
    pub count: i64,
    /// Whether there are more than `count`.
    pub more: bool,
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.count, if self.more { "+" } else { "" })
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Rules {
    /// The hash of the rule set in the rules and templates directories now; null if it has
    /// problems (`casewarden check` lists them).
    pub on_disk: Option<String>,
    /// How many problems the files on disk have.
    pub problems: usize,
    /// The hash of the set the newest running daemon has in force.
    pub in_force: Option<String>,
}

/// Reads the status of the database `settings` name, as of `now`.
pub async fn gather(settings: &Settings, db: &Db, now: DateTime<Utc>) -> anyhow::Result<Status> {
    let applied = db.applied_migrations().await?;
    let pending_migrations = db.pending_migrations().await?;
    let allowed = chrono::Duration::from_std(crate::daemon::interval(&settings.daemon) * 2)
        .unwrap_or(chrono::Duration::MAX)
        + chrono::Duration::minutes(1);
    let instances: Vec<Instance> = instances::recent(db, 5)
        .await?
        .into_iter()
        .map(|row| Instance {
            state: if row.stopped_at.is_some() {
                "stopped"
            } else if now - row.seen_at > allowed {
                "silent"
            } else {
                "running"
            }
            .to_string(),
            row,
        })
        .collect();
    let loaded = crate::startup::load_rules(settings);
    let rules = Rules {
        on_disk: loaded.as_ref().ok().map(|r| r.hash.clone()),
        problems: loaded.as_ref().err().map_or(0, |p| p.0.len()),
        in_force: instances
            .iter()
            .find(|i| i.state == "running")
            .map(|i| i.row.rules_hash.clone()),
    };
    Ok(Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        database: settings.database.url.to_string(),
        backend: match db.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
        .to_string(),
        schema_version: applied.last().copied(),
        pending_migrations,
        writer_lock: writer_lock(settings, db),
        instances,
        backlog: backlog(db, now).await?,
        rules,
    })
}

fn writer_lock(settings: &Settings, db: &Db) -> WriterLock {
    if db.backend() == Backend::Postgres {
        return WriterLock {
            held: None,
            detail: "PostgreSQL: several daemons may share the database; their writes take turns \
                     on an advisory lock, one transaction at a time"
                .to_string(),
        };
    }
    let Some(path) = db::sqlite_path(settings.database.url.expose()) else {
        return WriterLock {
            held: None,
            detail: "an in-memory database has no lock".to_string(),
        };
    };
    match db::held_by_another(&path) {
        Ok(false) => WriterLock {
            held: Some(false),
            detail: "free: no daemon or tick is running passes on this file".to_string(),
        },
        Ok(true) => WriterLock {
            held: Some(true),
            detail: format!(
                "held: a daemon or a tick is running passes on this file (it holds {}.lock)",
                path.display()
            ),
        },
        Err(e) => WriterLock {
            held: None,
            detail: format!("unknown: {e}"),
        },
    }
}

/// The backlog, read with the statements a metrics scrape uses (through the same partial
/// indexes), counted further, plus the work due now that only `status` shows.
async fn backlog(db: &Db, now: DateTime<Utc>) -> Result<Backlog, sqlx::Error> {
    use crate::metrics::database::{
        INBOX_OLDEST, INBOX_WAITING, OUTBOX_DEAD, OUTBOX_OLDEST, OUTBOX_WAITING,
    };
    let oldest = |select| async move {
        let row: Option<(DateTime<Utc>,)> = sql(select).fetch_optional(db).await?;
        Ok::<_, sqlx::Error>(row.map(|(t,)| t))
    };
    let rows = |select| count(db, sql(select).bind(COUNT_LIMIT + 1));
    let due = |select| count(db, sql(select).bind(now).bind(COUNT_LIMIT + 1));
    let tasks_due =
        due("SELECT COUNT(*) FROM (SELECT 1 FROM tasks WHERE next_check_at <= $1 LIMIT $2) AS c")
            .await?;
    let stages_due =
        due("SELECT COUNT(*) FROM (SELECT 1 FROM stages WHERE next_check_at <= $1 LIMIT $2) AS c")
            .await?;
    Ok(Backlog {
        inbox_pending: rows(INBOX_WAITING).await?,
        inbox_oldest_at: oldest(INBOX_OLDEST).await?,
        outbox_pending: rows(OUTBOX_WAITING).await?,
        outbox_oldest_at: oldest(OUTBOX_OLDEST).await?,
        outbox_dead: rows(OUTBOX_DEAD).await?,
        checkpoints_due: Count {
            count: tasks_due.count + stages_due.count,
            more: tasks_due.more || stages_due.more,
        },
        cases_awaiting_allocation: rows(
            "SELECT COUNT(*) FROM (SELECT 1 FROM cases WHERE allocation = 'pending' LIMIT $1) AS c",
        )
        .await?,
    })
}

/// Counts the rows `select` gives, bound to one more than [`COUNT_LIMIT`]: a count that stops.
async fn count(db: &Db, select: Sql) -> Result<Count, sqlx::Error> {
    let n: i64 = select.scalar(db).await?;
    Ok(Count {
        count: n.min(COUNT_LIMIT),
        more: n > COUNT_LIMIT,
    })
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".to_string(), crate::clock::for_people_exact)
}

impl Status {
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "casewarden {}", self.version);
        let schema = match (self.schema_version, self.pending_migrations.as_slice()) {
            (None, _) => "no schema yet: run `casewarden migrate` or start the daemon".to_string(),
            (Some(v), []) => format!("schema version {v}, up to date"),
            (Some(v), pending) => {
                format!("schema version {v}; this binary would apply {pending:?} at start")
            }
        };
        let _ = writeln!(
            out,
            "database:  {} ({}; {schema})",
            terminal(&self.database),
            self.backend
        );
        let _ = writeln!(out, "writer:    {}", terminal(&self.writer_lock.detail));
        if self.instances.is_empty() {
            let _ = writeln!(out, "daemons:   none has run on this database");
        }
        for i in &self.instances {
            self.instance_text(&mut out, i);
        }
        let b = &self.backlog;
        let _ = writeln!(
            out,
            "backlog:   inbox {} pending (oldest received {}); outbox {} pending (oldest written {}), {} dead; \
             {} SLA checkpoints due; {} cases awaiting allocation",
            b.inbox_pending,
            time(b.inbox_oldest_at),
            b.outbox_pending,
            time(b.outbox_oldest_at),
            b.outbox_dead,
            b.checkpoints_due,
            b.cases_awaiting_allocation
        );
        let disk = match (&self.rules.on_disk, self.rules.problems) {
            (Some(h), _) => h.clone(),
            (None, n) => format!("{n} problem(s): run `casewarden check`"),
        };
        let _ = match &self.rules.in_force {
            Some(f) if Some(f) == self.rules.on_disk.as_ref() => {
                writeln!(
                    out,
                    "rules:     {f} in force, the same as the files on disk"
                )
            }
            Some(f) => writeln!(
                out,
                "rules:     {f} in force; the files on disk are {disk} (a reload is due: \
                 `systemctl reload casewarden`, or the file watcher picks them up)"
            ),
            None => writeln!(out, "rules:     files on disk {disk}; no daemon running"),
        };
        out
    }

    fn instance_text(&self, out: &mut String, i: &Instance) {
        let r = &i.row;
        let _ = writeln!(
            out,
            "daemon:    {} on {} (pid {}), version {}, started {}, last seen {}{}",
            i.state,
            terminal(&r.host),
            r.pid,
            terminal(&r.version),
            time(Some(r.started_at)),
            time(Some(r.seen_at)),
            r.stopped_at
                .map(|t| format!(", stopped {}", time(Some(t))))
                .unwrap_or_default()
        );
        let _ = match (r.last_pass_started_at, r.last_pass_us, r.last_pass_ok) {
            (Some(at), Some(us), Some(ok)) => writeln!(
                out,
                "last pass: {} took {:.1} ms, {}: {}; {} passes, {} failed",
                time(Some(at)),
                us as f64 / 1000.0,
                if ok { "ok" } else { "FAILED" },
                terminal(r.last_pass_summary.as_deref().unwrap_or("")),
                r.passes,
                r.failed_passes
            ),
            _ => writeln!(out, "last pass: none yet"),
        };
    }
}
