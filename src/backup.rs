//! `casewarden backup FILE`: a consistent copy of a SQLite database, taken while the daemon
//! runs. SQLite's `VACUUM INTO` writes the database as one read transaction saw it, so a pass
//! under way is in the copy wholly or not at all, and the daemon's writes carry on meanwhile
//! (write-ahead logging lets readers and the writer work at once). The copy goes to a hidden
//! file beside FILE, is checked (`PRAGMA integrity_check`), flushed to disk and only then renamed
//! to FILE: a backup cut short by a crash or a full disk never looks like a good one. An
//! existing FILE is never overwritten.
//!
//! PostgreSQL has its own tools (`pg_dump`, or base backups with WAL archiving); the command
//! names them instead of doing worse.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::db::{Backend, Db, sql};

/// The longest file name the file systems casewarden runs on take, in bytes.
const NAME_MAX: usize = 255;
/// Room for `.partial-PID` after the hidden copy's name.
const PARTIAL_SUFFIX: usize = ".partial-4294967295".len();

/// What a backup holds, as the command reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    pub file: PathBuf,
    pub bytes: u64,
    pub schema_version: Option<i64>,
    /// The newest event in the copy: a CRM following the log has seen at most this far of it.
    pub last_event_id: Option<i64>,
}

/// Copies the database `db` (at `url`, for messages) to `to`.
pub async fn sqlite(db: &Db, url: &str, to: &Path) -> anyhow::Result<Backup> {
    if db.backend() == Backend::Postgres {
        bail!(
            "{url} is a PostgreSQL database: back it up with PostgreSQL's tools, for example \
             `pg_dump --format=custom --file=casewarden.dump DBNAME` (see docs/operations.md, Backups)"
        );
    }
    let Some(name) = to.file_name() else {
        bail!("{} names no file to write the backup to", to.display());
    };
    if to.is_dir() {
        bail!(
            "{} is a directory: give the name of a new file, such as {}",
            to.display(),
            to.join("casewarden-backup.db").display()
        );
    }
    if to.symlink_metadata().is_ok() {
        bail!(
            "{} exists: a backup never overwrites a file; choose a new name or remove it first",
            to.display()
        );
    }
    // The copy is first written under a longer hidden name (see PARTIAL_SUFFIX).
    if name.len() + 1 + PARTIAL_SUFFIX > NAME_MAX {
        bail!(
            "the file name {:?} is too long: at most {} bytes",
            name,
            NAME_MAX - 1 - PARTIAL_SUFFIX
        );
    }
    let dir = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        bail!(
            "{} does not exist: create it first, or choose another directory",
            dir.display()
        );
    }
    if !dir.is_dir() {
        bail!(
            "{} is not a directory: the backup cannot be written there",
            dir.display()
        );
    }
    let mut hidden = std::ffi::OsString::from(".");
    hidden.push(name);
    hidden.push(format!(".partial-{}", std::process::id()));
    let partial = dir.join(hidden);
    let _ = std::fs::remove_file(&partial);
    let written = copy_and_check(db, &partial).await;
    let backup = match written {
        Ok(backup) => backup,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("flushing {}", partial.display()))?;
    // A hard link fails if `to` appeared meanwhile, where a rename would replace it.
    std::fs::hard_link(&partial, to)
        .with_context(|| format!("writing the backup to {}", to.display()))?;
    let _ = std::fs::remove_file(&partial);
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(Backup {
        file: to.to_path_buf(),
        ..backup
    })
}

async fn copy_and_check(db: &Db, partial: &Path) -> anyhow::Result<Backup> {
    let Some(target) = partial.to_str() else {
        bail!(
            "{} is not valid UTF-8: SQLite cannot be given it as a file name",
            partial.display()
        );
    };
    sql("VACUUM INTO $1")
        .bind(target)
        .execute(db)
        .await
        .with_context(|| format!("copying the database to {}", partial.display()))?;
    let options = SqliteConnectOptions::new()
        .filename(partial)
        .read_only(true);
    let mut copy = options
        .connect()
        .await
        .with_context(|| format!("opening the copy {}", partial.display()))?;
    let integrity: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
        .fetch_all(&mut copy)
        .await?;
    if integrity.len() != 1 || integrity[0].0 != "ok" {
        let problems: Vec<String> = integrity.into_iter().map(|(p,)| p).take(5).collect();
        bail!(
            "the copy failed SQLite's integrity check: {}",
            problems.join("; ")
        );
    }
    let schema_version: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&mut copy)
            .await?;
    let last_event_id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events")
        .fetch_one(&mut copy)
        .await?;
    copy.close().await?;
    let bytes = std::fs::metadata(partial)?.len();
    Ok(Backup {
        file: partial.to_path_buf(),
        bytes,
        schema_version,
        last_event_id,
    })
}

impl Backup {
    pub fn to_text(&self) -> String {
        format!(
            "backup written to {}: {} bytes, schema version {}, events up to id {}; \
             checked by SQLite's integrity check\n",
            crate::text::terminal(&self.file.display().to_string()),
            self.bytes,
            self.schema_version
                .map_or("-".to_string(), |v| v.to_string()),
            self.last_event_id
                .map_or("-".to_string(), |v| v.to_string()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_backup_refuses_a_directory_an_existing_file_a_missing_directory_and_a_long_name() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("cases.db").display());
        let db = Db::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        let refused = |to: PathBuf| {
            let db = db.clone();
            let url = url.clone();
            async move { sqlite(&db, &url, &to).await.unwrap_err().to_string() }
        };
        assert!(
            refused(dir.path().to_path_buf())
                .await
                .contains("is a directory")
        );
        assert!(
            refused(dir.path().join("cases.db"))
                .await
                .contains("never overwrites")
        );
        assert!(
            refused(dir.path().join("no/such/b.db"))
                .await
                .contains("does not exist")
        );
        assert!(
            refused(dir.path().join("a".repeat(240)))
                .await
                .contains("too long")
        );
        let made = sqlite(&db, &url, &dir.path().join("b.db")).await.unwrap();
        assert!(made.bytes > 0);
        // Nothing is left behind but the database (with its -wal and -shm) and the backup.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("cases.db"))
            .collect();
        names.sort();
        assert_eq!(names, ["b.db"]);
    }
}
