//! Storage: one handle over SQLite or PostgreSQL, transactions, and a small query type that binds
//! the same SQL (with `$1` placeholders, which both backends accept) to either backend.
//!
//! Queries stay plain SQL strings inline in the modules that own them; this module only carries
//! them to the right driver. Rows are decoded with `FromRow` derives, which sqlx generates for any
//! row type, so one struct serves both backends.

pub mod case_stage;
mod lock;
mod memory;
mod new_rows;
mod pinned;
mod query;
pub mod rows;
pub mod statistics;
mod url;

pub use lock::{DatabaseLock, LockError, held_by_another};
pub use memory::{AsOf, Completion};
pub use new_rows::{NewCase, NewStage, NewTask};
pub use pinned::Pinned;
pub use query::{Arg, Ex, IntoArg, Marks, Sql, list, rows_per_statement, sql, sql2, values};
pub use url::redact;

/// The migrations built into this binary, one set per backend.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

/// Key of the PostgreSQL advisory lock that admits one engine writer at a time.
pub const WRITER_LOCK: i64 = 0x6361_7365_7761_7264; // "caseward" in ASCII

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "unsupported database URL scheme in {0:?}: use sqlite://PATH or postgres://USER@HOST/DB"
    )]
    UnsupportedUrl(String),
    // Each message carries its cause, and no variant also reports it as a source, so a printed
    // chain (`{:#}`) names each cause once.
    #[error("cannot open database {url}: {cause}")]
    Connect { url: String, cause: sqlx::Error },
    #[error(
        "cannot open database {0}: there is no such file; run `casewarden migrate` to create it, \
         or point --database (database.url) at the right one"
    )]
    NoFile(String),
    #[error("cannot apply migrations: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// A connection pool on one of the two backends. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    /// One connection in a transaction that is rolled back: for dry runs.
    Pinned(std::sync::Arc<Pinned>),
}

/// An open transaction. Dropped without `commit` it rolls back.
pub struct Tx {
    pub conn: TxConn,
    /// Events held back to be written together (see [`Tx::hold_events`]); `None`: each event is
    /// written when it is recorded.
    held: Option<Vec<HeldEvent>>,
    /// Reference data this transaction has found in its table (see [`Tx::found`]).
    found: std::collections::HashSet<(Reference, String)>,
    /// Cases and writes kept between statements (see `memory`).
    memory: memory::Memory,
    /// New cases' rows kept back (see `new_rows`).
    new_rows: new_rows::NewRows,
    /// On PostgreSQL, the pool, to keep its statistics up to date after a commit (`statistics`).
    pool: Option<PgPool>,
}

/// The connection a transaction runs on.
pub enum TxConn {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
    Pinned(pinned::PinnedTx),
}

/// Reference data a command may name, which [`Tx::found`] remembers once found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reference {
    Role,
    User,
    Contact,
    Group,
}

impl Reference {
    /// The table that holds it, keyed by `ref`.
    fn table(self) -> &'static str {
        match self {
            Reference::Role => "roles",
            Reference::User => "users",
            Reference::Contact => "contacts",
            Reference::Group => "contact_groups",
        }
    }
}

/// An event row recorded in a transaction that holds its events back: written, with the others,
/// in as few multi-row statements as possible before the transaction commits.
#[derive(Debug, Clone)]
pub struct HeldEvent {
    pub case_id: Option<i64>,
    pub case_ref: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
    pub kind: String,
    pub actor: String,
    pub data: serde_json::Value,
}

/// Tells the backend of a URL without opening it.
pub fn backend_of(url: &str) -> Result<Backend, DbError> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Backend::Postgres)
    } else {
        Err(DbError::UnsupportedUrl(url.to_string()))
    }
}

/// The file behind a SQLite URL, if it names one (not `:memory:`).
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

impl Db {
    /// Opens a pool. SQLite files are created on first use, in WAL mode with a busy timeout and
    /// foreign keys on.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        Db::open(url, true).await
    }

    /// Opens a pool on a database that must exist already: a SQLite file is never created, so a
    /// command that only reads (or needs the tables `migrate` makes) leaves no empty file behind.
    pub async fn connect_existing(url: &str) -> Result<Db, DbError> {
        Db::open(url, false).await
    }

    async fn open(url: &str, create: bool) -> Result<Db, DbError> {
        let connect_err = |cause| DbError::Connect {
            url: redact(url),
            cause,
        };
        match backend_of(url)? {
            Backend::Sqlite => {
                if !create && sqlite_path(url).is_some_and(|path| !path.exists()) {
                    return Err(DbError::NoFile(redact(url)));
                }
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(connect_err)?
                    .create_if_missing(create)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true);
                // No ping before each use: a SQLite connection is a thread in this process, not
                // a socket that can go dead while idle, and sqlx pings every connection when it
                // is released, closing any that is broken. The ping cost a round trip to the
                // connection's thread for every statement run on the pool (half of an idle pass).
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await
                    .map_err(connect_err)?;
                Ok(Db::Sqlite(pool))
            }
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url).map_err(connect_err)?;
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .map_err(connect_err)?;
                Ok(Db::Postgres(pool))
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
            Db::Pinned(p) if p.is_sqlite() => Backend::Sqlite,
            Db::Pinned(_) => Backend::Postgres,
        }
    }

    /// Whether a read can run beside an open write transaction, on a connection of its own. A
    /// pinned handle has one connection: its reads wait for the transaction to end.
    pub fn reads_beside_writes(&self) -> bool {
        !matches!(self, Db::Pinned(_))
    }

    /// A handle on one connection of this pool inside a transaction that [`Db::discard`] rolls
    /// back: everything done through it, reads and writes, sees its own changes and leaves none.
    pub async fn pinned(&self) -> Result<Db, sqlx::Error> {
        let conn = match self {
            Db::Sqlite(pool) => pinned::Conn::Sqlite(pool.acquire().await?),
            Db::Postgres(pool) => pinned::Conn::Postgres(pool.acquire().await?),
            Db::Pinned(_) => return Ok(self.clone()),
        };
        Ok(Db::Pinned(std::sync::Arc::new(Pinned::open(conn).await?)))
    }

    /// Rolls back a pinned handle's work.
    pub async fn discard(&self) -> Result<(), sqlx::Error> {
        match self {
            Db::Pinned(p) => p.rollback().await,
            _ => Ok(()),
        }
    }

    /// Applies the migrations of this backend that have not been applied yet.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Db::Sqlite(pool) => SQLITE_MIGRATIONS
                .run(pool)
                .await
                .map_err(DbError::Migrate)?,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS
                .run(pool)
                .await
                .map_err(DbError::Migrate)?,
            // A dry run works on a database that is already migrated.
            Db::Pinned(_) => {}
        }
        Ok(())
    }

    /// The schema versions this binary has that the database lacks, oldest first: all of them
    /// for a database casewarden has never migrated.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, sqlx::Error> {
        let migrator = match self {
            Db::Sqlite(_) => &SQLITE_MIGRATIONS,
            Db::Postgres(_) => &POSTGRES_MIGRATIONS,
            Db::Pinned(_) => return Ok(Vec::new()),
        };
        let applied = self.applied_migrations().await?;
        Ok(migrator
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect())
    }

    /// The schema versions applied to the database: none before the first migration.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, sqlx::Error> {
        let table = match self.backend() {
            Backend::Postgres => {
                sql("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '_sqlx_migrations' AND table_schema = current_schema()")
                    .scalar::<i64>(self)
                    .await?
            }
            Backend::Sqlite => {
                sql("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
                    .scalar::<i64>(self)
                    .await?
            }
        };
        if table == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64,)> =
            sql("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(self)
                .await?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }

    /// Begins a transaction of the engine's writers: [`Db::begin`], holding [`WRITER_LOCK`] until
    /// it ends, so instances sharing a PostgreSQL database apply their changes one at a time.
    /// Every engine write goes through here, so none can forget the lock.
    pub async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        let mut tx = self.begin().await?;
        tx.serialise(WRITER_LOCK).await?;
        Ok(tx)
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so two writers queue on the busy timeout instead of failing on upgrade.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        let conn = match self {
            Db::Sqlite(pool) => TxConn::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => TxConn::Postgres(pool.begin().await?),
            Db::Pinned(p) => TxConn::Pinned(p.begin().await?),
        };
        Ok(Tx {
            conn,
            held: None,
            found: std::collections::HashSet::new(),
            memory: memory::Memory::default(),
            new_rows: new_rows::NewRows::default(),
            pool: match self {
                Db::Postgres(pool) => Some(pool.clone()),
                _ => None,
            },
        })
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
            Db::Pinned(_) => {}
        }
    }
}

impl Tx {
    /// Commits. Events still held back are never dropped in silence: the commit is refused, and
    /// the transaction rolled back.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        // Writes kept back go first.
        self.before_statement().await?;
        if self.held.as_ref().is_some_and(|held| !held.is_empty()) {
            return Err(sqlx::Error::Protocol(
                "a transaction was committed with events still held back; nothing was kept".into(),
            ));
        }
        match self.conn {
            TxConn::Sqlite(tx) => tx.commit().await,
            TxConn::Postgres(tx) => {
                tx.commit().await?;
                if let Some(pool) = &self.pool {
                    statistics::after_commit(pool).await;
                }
                Ok(())
            }
            TxConn::Pinned(tx) => tx.commit().await,
        }
    }

    /// From now on, events recorded in this transaction are held back, in order, until
    /// [`Tx::take_held`] takes them to be written together; and the transaction remembers the
    /// cases its commands touch and keeps its task completions back (see `memory`).
    pub fn hold_events(&mut self) {
        self.held.get_or_insert_with(Vec::new);
        self.memory.on = true;
    }

    /// Where recorded events go while they are held back (`None`: they are written at once).
    pub fn held_events(&mut self) -> Option<&mut Vec<HeldEvent>> {
        self.held.as_mut()
    }

    /// How many events are held back so far.
    pub fn held_count(&self) -> usize {
        self.held.as_ref().map_or(0, Vec::len)
    }

    /// The events held back, in the order recorded; later ones are held back again.
    pub fn take_held(&mut self) -> Vec<HeldEvent> {
        self.held.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Whether the reference data `what` names `reference` (a role; a user, active or not; a
    /// contact; a contact group). Asked of the table once per transaction for one found there:
    /// the engine never deletes them while it applies commands, so one found stays found until
    /// the transaction ends, or until a rollback to a savepoint, which may take away a row found
    /// after it was written (see [`Tx::forget_found`]).
    pub async fn found(&mut self, what: Reference, reference: &str) -> Result<bool, sqlx::Error> {
        if !self.found.contains(&(what, reference.to_string())) {
            self.find_all(what, &[reference]).await?;
        }
        Ok(self.found.contains(&(what, reference.to_string())))
    }

    /// Looks up many references of one kind at once, as [`Tx::found`] would one by one, and
    /// remembers those found: a batch of commands asks once for all the references it names.
    pub async fn find_all(
        &mut self,
        what: Reference,
        references: &[&str],
    ) -> Result<(), sqlx::Error> {
        let found = self.existing((what.table(), "ref"), references).await?;
        self.found.extend(found.into_iter().map(|r| (what, r)));
        Ok(())
    }

    /// Those of `values` that `column` of `table` holds, asked with as few statements as the
    /// bound values allow.
    async fn existing(
        &mut self,
        (table, column): (&str, &str),
        values: &[&str],
    ) -> Result<Vec<String>, sqlx::Error> {
        let mut found = Vec::new();
        for chunk in values.chunks(rows_per_statement(1)) {
            let rows: Vec<(String,)> = Sql::sized(|marks| {
                format!(
                    "SELECT {column} FROM {table} WHERE {column} IN {}",
                    marks.list(chunk.len(), 1)
                )
            })
            .bind_all(chunk.iter().copied())
            .fetch_all(&mut *self)
            .await?;
            found.extend(rows.into_iter().map(|(v,)| v));
        }
        Ok(found)
    }

    /// Forgets what [`Tx::found`] found: after a rollback to a savepoint.
    pub fn forget_found(&mut self) {
        self.found.clear();
    }

    pub fn backend(&self) -> Backend {
        match &self.conn {
            TxConn::Sqlite(_) => Backend::Sqlite,
            TxConn::Postgres(_) => Backend::Postgres,
            TxConn::Pinned(tx) => match tx.guard.conn {
                pinned::Conn::Sqlite(_) => Backend::Sqlite,
                pinned::Conn::Postgres(_) => Backend::Postgres,
            },
        }
    }

    /// Serialises the engine's writers across daemon instances sharing one PostgreSQL database:
    /// the transaction holds a lock on `key` until it ends. SQLite needs nothing here, since
    /// `BEGIN IMMEDIATE` already admits one writer at a time.
    pub async fn serialise(&mut self, key: i64) -> Result<(), sqlx::Error> {
        if self.backend() == Backend::Postgres {
            sql("SELECT pg_advisory_xact_lock($1)")
                .bind(key)
                .execute(self)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_printed_error_chain_names_each_cause_once() {
        let err = anyhow::Error::from(DbError::Connect {
            url: "sqlite://x.db".into(),
            cause: sqlx::Error::PoolTimedOut,
        });
        let printed = format!("{err:#}");
        assert_eq!(printed.matches("pool timed out").count(), 1, "{printed}");
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite://x/y.db?mode=rwc"),
            Some("x/y.db".into())
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }
}
