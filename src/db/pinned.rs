//! A pinned handle: one connection inside an outer transaction that is always rolled back. The
//! engine's own transactions become savepoints on it, and its reads go through it too, so a whole
//! pass can run against the live database, see its own writes, and leave nothing behind. This is
//! what `casewarden plan` runs on.

use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Postgres, Sqlite};
use tokio::sync::{Mutex, OwnedMutexGuard};

const SAVEPOINT: &str = "SAVEPOINT casewarden_step";
const RELEASE: &str = "RELEASE SAVEPOINT casewarden_step";
const ROLLBACK_TO: &str = "ROLLBACK TO SAVEPOINT casewarden_step";

pub(crate) enum Conn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

pub(crate) struct State {
    pub(crate) conn: Conn,
    /// A step's savepoint was dropped without commit: undo it before the next statement.
    rollback_pending: bool,
}

/// The shared connection. Steps take turns on it; a step never holds it while asking again.
pub struct Pinned {
    state: Arc<Mutex<State>>,
    sqlite: bool,
}

impl std::fmt::Debug for Pinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pinned")
    }
}

/// A step's transaction on the pinned connection: a savepoint.
pub struct PinnedTx {
    pub(crate) guard: OwnedMutexGuard<State>,
    done: bool,
}

impl Drop for PinnedTx {
    fn drop(&mut self) {
        if !self.done {
            self.guard.rollback_pending = true;
        }
    }
}

async fn raw(conn: &mut Conn, statement: &'static str) -> Result<(), sqlx::Error> {
    match conn {
        Conn::Sqlite(c) => sqlx::query(statement).execute(&mut **c).await.map(|_| ()),
        Conn::Postgres(c) => sqlx::query(statement).execute(&mut **c).await.map(|_| ()),
    }
}

impl State {
    /// Undoes a step that was dropped without commit.
    pub(crate) async fn settle(&mut self) -> Result<(), sqlx::Error> {
        if self.rollback_pending {
            raw(&mut self.conn, ROLLBACK_TO).await?;
            raw(&mut self.conn, RELEASE).await?;
            self.rollback_pending = false;
        }
        Ok(())
    }
}

impl Pinned {
    /// Opens the outer transaction on `conn`.
    pub(crate) async fn open(mut conn: Conn) -> Result<Pinned, sqlx::Error> {
        let begin = match conn {
            Conn::Sqlite(_) => "BEGIN IMMEDIATE",
            Conn::Postgres(_) => "BEGIN",
        };
        raw(&mut conn, begin).await?;
        let sqlite = matches!(conn, Conn::Sqlite(_));
        Ok(Pinned {
            state: Arc::new(Mutex::new(State {
                conn,
                rollback_pending: false,
            })),
            sqlite,
        })
    }

    pub(crate) fn is_sqlite(&self) -> bool {
        self.sqlite
    }

    /// The connection, for one statement outside any step transaction.
    pub(crate) async fn lock(&self) -> Result<tokio::sync::MutexGuard<'_, State>, sqlx::Error> {
        let mut guard = self.state.lock().await;
        guard.settle().await?;
        Ok(guard)
    }

    pub(crate) async fn begin(&self) -> Result<PinnedTx, sqlx::Error> {
        let mut guard = self.state.clone().lock_owned().await;
        guard.settle().await?;
        raw(&mut guard.conn, SAVEPOINT).await?;
        Ok(PinnedTx { guard, done: false })
    }

    /// Rolls back everything done on the pinned connection.
    pub(crate) async fn rollback(&self) -> Result<(), sqlx::Error> {
        let mut guard = self.state.lock().await;
        raw(&mut guard.conn, "ROLLBACK").await
    }
}

impl PinnedTx {
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        raw(&mut self.guard.conn, RELEASE).await?;
        self.done = true;
        Ok(())
    }
}
