//! The one-writer guard for SQLite: a daemon (or a `tick`) holds an exclusive lock on a file
//! beside the database for as long as it runs, so a second one on the same file refuses to start
//! instead of racing the first.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another casewarden process is already running passes on {database} (it holds {lock}); \
         stop it first, or point this one at another database with --database"
    )]
    Held { database: PathBuf, lock: PathBuf },
    #[error("cannot create lock file {lock}: {cause}")]
    Io {
        lock: PathBuf,
        cause: std::io::Error,
    },
}

/// Held for the life of the process; the operating system releases it if the process dies.
#[derive(Debug)]
pub struct DatabaseLock {
    _file: File,
}

impl DatabaseLock {
    pub fn acquire(database: &Path) -> Result<DatabaseLock, LockError> {
        let mut lock = database.as_os_str().to_owned();
        lock.push(".lock");
        let lock = PathBuf::from(lock);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|cause| LockError::Io {
                lock: lock.clone(),
                cause,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(DatabaseLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(LockError::Held {
                database: database.to_path_buf(),
                lock,
            }),
            Err(TryLockError::Error(cause)) => Err(LockError::Io { lock, cause }),
        }
    }
}

/// Whether another process holds the lock of `database` now, found without creating or
/// keeping anything: a lock file that is not there is held by nobody (a holder creates it), and
/// one that is is opened read-only and its lock tried and let go at once. For `status`, which
/// may run as another user than the daemon: a lock file it created would be that user's, and a
/// daemon could then not open it.
pub fn held_by_another(database: &Path) -> Result<bool, LockError> {
    let mut lock = database.as_os_str().to_owned();
    lock.push(".lock");
    let lock = PathBuf::from(lock);
    let file = match File::open(&lock) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(cause) => return Err(LockError::Io { lock, cause }),
    };
    match file.try_lock() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(cause)) => Err(LockError::Io { lock, cause }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_of_the_same_database_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cases.db");
        let _first = DatabaseLock::acquire(&db).unwrap();
        let err = DatabaseLock::acquire(&db).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }));
        assert!(
            err.to_string().contains("already running passes on"),
            "{err}"
        );
    }

    #[test]
    fn probing_the_lock_creates_nothing_and_sees_a_holder() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cases.db");
        assert!(!held_by_another(&db).unwrap());
        assert!(
            !dir.path().join("cases.db.lock").exists(),
            "the probe created the lock file"
        );
        let first = DatabaseLock::acquire(&db).unwrap();
        assert!(held_by_another(&db).unwrap());
        drop(first);
        assert!(!held_by_another(&db).unwrap());
        // The probe let go: a daemon can take the lock.
        let _again = DatabaseLock::acquire(&db).unwrap();
    }
}
