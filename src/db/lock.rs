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
}
