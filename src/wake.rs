//! Passes that start when work arrives. A command written into the inbox by another process (a
//! CRM sharing the database, `casewarden submit`, another instance's API) rings the daemon's
//! doorbell within a fraction of a second, so it is applied at once rather than at the next
//! scheduled pass; the schedule keeps running the time-driven steps as before.
//!
//! - PostgreSQL: a trigger on `inbox` (migration 0008) sends `NOTIFY casewarden_inbox` when a
//!   row is inserted; the daemon `LISTEN`s on a connection of its own. A lost connection is
//!   opened again, and the doorbell rung once in case a notification was missed meanwhile.
//! - SQLite has no notifications: the daemon reads `PRAGMA data_version` on a connection of its
//!   own every [`SQLITE_INTERVAL`]. The value changes only when another connection has committed,
//!   and reading it costs no I/O, so an idle database costs nothing; after a change, one indexed
//!   query gives the newest pending command. Only a command newer than any seen before rings: a
//!   command the engine keeps failing on stays pending, and ringing for it would spend its
//!   retries in a second instead of over passes on the schedule.
//!
//! A burst of inserts rings many times; rings coalesce into one pass (see [`Live::ring`]).

use std::time::Duration;

use futures_util::TryStreamExt;
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::live::Live;

/// The PostgreSQL channel the inbox trigger notifies.
pub const CHANNEL: &str = "casewarden_inbox";

/// How often SQLite's `data_version` is read.
pub const SQLITE_INTERVAL: Duration = Duration::from_millis(200);

/// Watches for new inbox rows until `stop` is cancelled.
pub async fn watch(db: Db, live: Live, stop: CancellationToken) {
    let watching = async {
        match &db {
            Db::Sqlite(pool) => sqlite(pool, &live).await,
            Db::Postgres(pool) => postgres(pool, &live).await,
            Db::Pinned(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = stop.cancelled() => {}
        () = watching => {}
    }
}

async fn sqlite(pool: &sqlx::SqlitePool, live: &Live) {
    let mut backoff = Backoff::default();
    loop {
        let options = pool.connect_options().as_ref().clone();
        match sqlx::SqliteConnection::connect_with(&options).await {
            Ok(mut conn) => {
                let result = sqlite_watch(&mut conn, live).await;
                if let Err(e) = result {
                    tracing::warn!(error = %e, "watching the SQLite database for new commands failed; opening a new connection");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot open a connection to watch for new commands; trying again");
            }
        }
        backoff.wait().await;
    }
}

async fn sqlite_watch(conn: &mut sqlx::SqliteConnection, live: &Live) -> Result<(), sqlx::Error> {
    let mut seen: i64 = sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(&mut *conn)
        .await?;
    // Pending when the watch began: the pass at start takes those.
    let mut newest = newest_pending(conn).await?.unwrap_or(0);
    let mut tick = tokio::time::interval(SQLITE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now: i64 = sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut *conn)
            .await?;
        if now == seen {
            continue;
        }
        seen = now;
        if let Some(id) = newest_pending(conn).await?
            && id > newest
        {
            newest = id;
            live.ring();
        }
    }
}

/// The newest pending command's id, through the `inbox_pending` index: one step, whatever the
/// inbox holds.
async fn newest_pending(conn: &mut sqlx::SqliteConnection) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT MAX(id) FROM inbox WHERE status = 'pending'")
        .fetch_one(&mut *conn)
        .await
}

async fn postgres(pool: &sqlx::PgPool, live: &Live) {
    let mut backoff = Backoff::default();
    loop {
        match sqlx::postgres::PgListener::connect_with(pool).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(CHANNEL).await {
                    tracing::warn!(error = %e, "cannot LISTEN for new commands; trying again");
                } else {
                    backoff = Backoff::default();
                    // Anything inserted while no one listened is found by this pass.
                    live.ring();
                    let mut stream = listener.into_stream();
                    loop {
                        match stream.try_next().await {
                            Ok(Some(_)) => live.ring(),
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(error = %e, "the connection listening for new commands failed; opening a new one");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect to listen for new commands; trying again");
            }
        }
        backoff.wait().await;
    }
}

/// From 200 ms, doubling to 30 s, while connecting fails.
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Duration::from_millis(200))
    }
}

impl Backoff {
    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(30));
    }
}
