//! The event feed, for systems that follow the log by id: pages with an optional long poll
//! (`GET /v1/events`, [`poll`]) and Server-Sent Events (`GET /v1/events/stream`, [`stream`]).
//! Both read the log the same way ([`look`]) and wait for new events the same way ([`Wake`]).
//!
//! Why a follower that reads by id misses nothing: the only writer of the events table is
//! `events::record`, and every caller of it writes in a transaction from `Db::begin_write`,
//! which holds the writer lock (`BEGIN IMMEDIATE` on SQLite, an advisory lock on PostgreSQL)
//! from before its first insert until it commits. So ids are handed out and committed in the same
//! order: once a reader sees event N, every event below N that will ever exist is already
//! visible (ids of transactions that rolled back are simply never used). A follower may
//! therefore move past every id it has looked at, matched or not, and never see a smaller id
//! appear later.

mod poll;
mod stream;

use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::ApiState;
use super::problem::Problem;
use crate::db::{Db, sql};
use crate::events::Event;

pub use poll::{FeedQuery, events};
pub use stream::{StreamQuery, stream};

/// Most rows one look at the log goes through past `after`. A filter may leave all of them out;
/// the follower is then told to carry on from the last one, so it progresses through a long
/// log a bounded step at a time instead of one request reading the whole of it.
const SCAN: i64 = 10_000;

/// How often a waiting follower looks at the log without being woken: events written by another
/// instance on the same PostgreSQL database, or outside a pass (a client added by the CLI),
/// raise no wake-up here.
const RECHECK: Duration = Duration::from_millis(250);

/// A page of the feed.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Feed {
    /// The events after `after` that match the filters, oldest first: each as `casewarden
    /// events` prints it.
    #[schemars(with = "Vec<crate::events::kinds::Record>")]
    pub events: Vec<Event>,
    /// The `after` of the next request. It can be past the last event given, when a filter left
    /// out the events after it; it is `after` itself when there was nothing new.
    pub next_after: i64,
}

/// Which events a follower wants.
pub struct Filter {
    case_ref: Option<String>,
    /// The row id of the case named by `case_ref`, once such a case exists.
    case_id: Option<i64>,
    kind: Option<String>,
}

impl Filter {
    /// A filter on a case (which need not exist yet) and on a kind, which must be one of the
    /// contract's.
    pub fn new(case_ref: Option<String>, kind: Option<String>) -> Result<Filter, Problem> {
        let names = crate::events::kinds::names();
        if let Some(k) = &kind
            && !names.contains(k)
        {
            return Err(Problem::bad_request(format!(
                "kind {} is not an event kind: use one of {}",
                crate::text::quote(k),
                names.join(", ")
            )));
        }
        Ok(Filter {
            case_ref,
            case_id: None,
            kind,
        })
    }

    /// Whether there can be events to read: not while no case has the reference asked for. A
    /// case is looked up again at each look until it exists (it may be created while a follower
    /// waits); its id never changes after.
    async fn resolve(&mut self, db: &Db) -> Result<bool, sqlx::Error> {
        let Some(case_ref) = &self.case_ref else {
            return Ok(true);
        };
        if self.case_id.is_none() {
            self.case_id = sql("SELECT id FROM cases WHERE case_ref = $1")
                .bind(case_ref)
                .fetch_optional::<(i64,)>(db)
                .await?
                .map(|(id,)| id);
        }
        Ok(self.case_id.is_some())
    }
}

/// What one look at the log found.
pub struct Page {
    pub events: Vec<Event>,
    pub next_after: i64,
    /// How many rows past `after` were looked at.
    pub looked: i64,
    /// Whether the look stopped at its bound rather than at the end of the log: there may be
    /// more to read at once.
    pub more: bool,
}

/// The events after `after` that match `filter`, oldest first, at most `limit` of them, among at
/// most `scan` rows (`limit` rows without a kind filter, which leaves none out).
///
/// First the window: the highest id among the next rows. Every event up to it is already
/// committed (see the module docs), so the second query, bounded by it, sees exactly the rows of
/// the window even if others were committed in between.
pub async fn look(
    db: &Db,
    filter: &mut Filter,
    after: i64,
    limit: i64,
    scan: i64,
) -> Result<Page, sqlx::Error> {
    let nothing = Page {
        events: Vec::new(),
        next_after: after,
        looked: 0,
        more: false,
    };
    if !filter.resolve(db).await? {
        return Ok(nothing);
    }
    let window = if filter.kind.is_some() { scan } else { limit };
    let (upto, looked): (Option<i64>, i64) = match filter.case_id {
        None => sql(
            "SELECT MAX(id), COUNT(*) FROM (SELECT id FROM events WHERE id > $1 ORDER BY id LIMIT $2) AS window_rows",
        )
        .bind(after)
        .bind(window),
        Some(case) => sql(
            "SELECT MAX(id), COUNT(*) FROM (SELECT id FROM events WHERE case_id = $3 AND id > $1 ORDER BY id LIMIT $2) AS window_rows",
        )
        .bind(after)
        .bind(window)
        .bind(case),
    }
    .fetch_one(db)
    .await?;
    let Some(upto) = upto else {
        return Ok(nothing);
    };
    let text = match (filter.case_id, &filter.kind) {
        (None, None) => {
            "SELECT id, case_ref, at, kind, actor, data FROM events WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3"
        }
        (Some(_), None) => {
            "SELECT id, case_ref, at, kind, actor, data FROM events WHERE case_id = $4 AND id > $1 AND id <= $2 ORDER BY id LIMIT $3"
        }
        (None, Some(_)) => {
            "SELECT id, case_ref, at, kind, actor, data FROM events WHERE kind = $4 AND id > $1 AND id <= $2 ORDER BY id LIMIT $3"
        }
        (Some(_), Some(_)) => {
            "SELECT id, case_ref, at, kind, actor, data FROM events WHERE case_id = $4 AND kind = $5 AND id > $1 AND id <= $2 ORDER BY id LIMIT $3"
        }
    };
    let mut query = sql(text).bind(after).bind(upto).bind(limit);
    if let Some(case) = filter.case_id {
        query = query.bind(case);
    }
    if let Some(kind) = &filter.kind {
        query = query.bind(kind);
    }
    let events: Vec<Event> = query.fetch_all(db).await?;
    // A full page may stop short of the window's end: the rest of the window comes next time.
    let next_after = match events.last() {
        Some(last) if events.len() as i64 >= limit => last.id,
        _ => upto,
    };
    Ok(Page {
        more: looked >= window || events.len() as i64 >= limit,
        events,
        next_after,
        looked,
    })
}

/// What a waiting follower wakes on.
pub struct Wake {
    passes: watch::Receiver<u64>,
    stopping: CancellationToken,
}

impl Wake {
    /// Subscribes before the first look, so a pass that ends between a look and the wait after
    /// it still wakes the follower.
    pub fn new(state: &ApiState) -> Wake {
        Wake {
            passes: state.live.passes(),
            stopping: state.live.stopping(),
        }
    }

    /// Whether the daemon is shutting down.
    pub fn stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Returns when new events may have been committed: a pass of this daemon ended, or it is
    /// time to look again anyway. `false` once the daemon is shutting down.
    pub async fn next(&mut self) -> bool {
        tokio::select! {
            biased;
            () = self.stopping.cancelled() => false,
            Ok(()) = self.passes.changed() => true,
            () = tokio::time::sleep(RECHECK) => true,
        }
    }
}

#[cfg(test)]
mod tests;
