//! Each running daemon's row in `instances`: who it is (host, process, version), the rule set it
//! runs, and its last pass (when, how long, how it ended). The daemon writes it at start, after
//! each pass and at a clean stop; `casewarden status` reads it, from any machine that reaches the
//! database. One small `UPDATE` per pass, outside the pass's own transactions: a failure to write
//! it is logged and never stops the pass loop.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::{Db, sql};

/// How long the row of a daemon that stopped (or died) is kept after it was last seen.
const KEPT_DAYS: i64 = 30;

/// A running daemon's handle on its own row.
#[derive(Debug, Clone)]
pub struct Instance {
    id: String,
}

/// A daemon as its row shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, schemars::JsonSchema)]
pub struct InstanceRow {
    /// `host:pid:start`, unique per start of a daemon.
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub version: String,
    pub started_at: DateTime<Utc>,
    /// When it last wrote its row: at start, after each pass, at a reload.
    pub seen_at: DateTime<Utc>,
    /// When it stopped cleanly; a daemon that died keeps `None` and stops being seen.
    pub stopped_at: Option<DateTime<Utc>>,
    pub rules_hash: String,
    pub rules_loaded_at: DateTime<Utc>,
    pub passes: i64,
    pub failed_passes: i64,
    pub last_pass_started_at: Option<DateTime<Utc>>,
    /// How long the last pass took, in microseconds.
    pub last_pass_us: Option<i64>,
    pub last_pass_ok: Option<bool>,
    /// What the last pass did (as `tick` prints it), or why it failed.
    pub last_pass_summary: Option<String>,
}

impl Instance {
    /// Writes this daemon's row, and removes those of daemons not seen for [`KEPT_DAYS`].
    pub async fn register(
        db: &Db,
        rules_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Instance, sqlx::Error> {
        let host = host_name();
        let pid = i64::from(std::process::id());
        let id = format!("{host}:{pid}:{}", now.timestamp());
        sql("DELETE FROM instances WHERE seen_at < $1")
            .bind(now - chrono::Duration::days(KEPT_DAYS))
            .execute(db)
            .await?;
        sql("INSERT INTO instances (id, host, pid, version, started_at, seen_at, rules_hash, rules_loaded_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, $5) \
             ON CONFLICT (id) DO UPDATE SET started_at = $5, seen_at = $5, stopped_at = NULL")
            .bind(&id)
            .bind(host)
            .bind(pid)
            .bind(env!("CARGO_PKG_VERSION"))
            .bind(now)
            .bind(rules_hash)
            .execute(db)
            .await?;
        Ok(Instance { id })
    }

    /// Records a pass that ended at `now`.
    pub async fn passed(
        &self,
        db: &Db,
        started_at: DateTime<Utc>,
        took: std::time::Duration,
        ok: bool,
        summary: &str,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        sql("UPDATE instances SET seen_at = $1, passes = passes + 1, \
             failed_passes = failed_passes + $2, last_pass_started_at = $3, last_pass_us = $4, \
             last_pass_ok = $5, last_pass_summary = $6 WHERE id = $7")
        .bind(now)
        .bind(i64::from(!ok))
        .bind(started_at)
        .bind(i64::try_from(took.as_micros()).unwrap_or(i64::MAX))
        .bind(ok)
        .bind(summary)
        .bind(&self.id)
        .execute(db)
        .await?;
        Ok(())
    }

    /// Records a new rule set in force.
    pub async fn rules_loaded(
        &self,
        db: &Db,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        sql("UPDATE instances SET seen_at = $1, rules_hash = $2, rules_loaded_at = $1 WHERE id = $3")
            .bind(now)
            .bind(hash)
            .bind(&self.id)
            .execute(db)
            .await?;
        Ok(())
    }

    /// Records a clean stop.
    pub async fn stopped(&self, db: &Db, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
        sql("UPDATE instances SET seen_at = $1, stopped_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&self.id)
            .execute(db)
            .await?;
        Ok(())
    }
}

/// The daemons seen most recently, newest first: at most `limit`.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<InstanceRow>, sqlx::Error> {
    sql("SELECT id, host, pid, version, started_at, seen_at, stopped_at, rules_hash, rules_loaded_at, \
         passes, failed_passes, last_pass_started_at, last_pass_us, last_pass_ok, last_pass_summary \
         FROM instances ORDER BY seen_at DESC, id LIMIT $1")
        .bind(limit)
        .fetch_all(db)
        .await
}

/// This machine's name, as `hostname` prints it; `unknown-host` if it cannot be read.
pub fn host_name() -> String {
    hostname::get()
        .ok()
        .map(|name| name.to_string_lossy().trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string())
}
