//! Whether a pass has anything to do, asked in one statement.
//!
//! In a running daemon most passes find nothing due. Each step's "what is due" query is a round
//! trip (to SQLite's own thread, or over the network to PostgreSQL), so asking them one after
//! another made an idle pass cost eight or nine round trips, most of its time. The pass asks
//! first whether any of those queries would find a row, in one statement, and only then runs its
//! steps. When anything is due it runs every step, as before: what one step writes for a later
//! one (a case a command created, then allocated; a notification an escalation queued, then
//! sent) is still done in the same pass.
//!
//! The question is built from the steps' own queries, each cut to its first row, so it cannot
//! drift from what the steps look for. Each is answered through the step's partial index
//! (`tests/engine/indexes.rs` checks it).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};

use super::{allocate, holds, housing_options, ingest, retention, sla_sweep};
use crate::db::{Db, sql};
use crate::mail::deliver::DUE_NOTIFICATIONS;

/// What the steps look for, in pass order, before delivery. Each binds the pass's time as `$1`
/// when it takes one, and a batch size as its `LIMIT` after it.
pub const STEP_QUERIES: &[&str] = &[
    ingest::PENDING_COMMANDS,
    allocate::DUE_ALLOCATIONS,
    holds::DUE_RELEASES,
    retention::UNSCHEDULED,
    retention::DUE,
    housing_options::DUE_PACKS,
    sla_sweep::DUE_TASK_CHECKPOINTS,
    sla_sweep::DUE_STAGE_CHECKPOINTS,
];

/// The question for an engine without a mailer, and for one with (which also sends mail).
static WITHOUT_MAIL: LazyLock<String> = LazyLock::new(|| question(STEP_QUERIES));
static WITH_MAIL: LazyLock<String> = LazyLock::new(|| {
    let mut queries = STEP_QUERIES.to_vec();
    queries.push(DUE_NOTIFICATIONS);
    question(&queries)
});

/// The statement asking whether any of `queries` finds a row: one row if so, none if not.
pub fn question(queries: &[&str]) -> String {
    let exists: Vec<String> = queries
        .iter()
        .map(|q| format!("EXISTS ({})", first_row(q)))
        .collect();
    format!("SELECT 1 WHERE {}", exists.join(" OR "))
}

/// `query` with its batch size, the `LIMIT` that ends it, replaced by 1, as a table of its own.
///
/// As a table, not as the `EXISTS` subquery itself: PostgreSQL drops the `ORDER BY` and `LIMIT`
/// of an `EXISTS` subquery, and then, planning for the first row of what its estimates take to be
/// many, reads the table from the start (a generic plan does not know the time bound to `$1`).
/// With nothing due that is every row: 250 ms at a million open tasks. Kept in a table of its own,
/// the query keeps its order and limit, and so the index that gives that order.
fn first_row(query: &str) -> String {
    let head = ["LIMIT $1", "LIMIT $2"]
        .iter()
        .find_map(|limit| query.strip_suffix(limit))
        .unwrap_or_else(|| panic!("a step's due query ends with its batch size: {query}"));
    format!("SELECT 1 FROM ({head}LIMIT 1) AS found")
}

/// Whether anything is due at `now`, mail included when the engine sends it. A failure to ask
/// counts as yes: the steps then run and each reports what went wrong with its own work.
pub async fn anything(db: &Db, now: DateTime<Utc>, mail: bool) -> bool {
    let question: &'static str = match mail {
        true => &WITH_MAIL,
        false => &WITHOUT_MAIL,
    };
    match sql(question).bind(now).fetch_optional::<(i32,)>(db).await {
        Ok(row) => row.is_some(),
        Err(e) => {
            tracing::debug!(error = %e, "could not ask whether anything is due; running every step");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_query_is_cut_to_its_first_row_and_takes_the_time_as_its_only_parameter() {
        let question = question(STEP_QUERIES);
        assert!(!question.contains("LIMIT $"), "{question}");
        assert!(!question.contains("$2"), "{question}");
        assert_eq!(
            question.matches("LIMIT 1) AS found").count(),
            STEP_QUERIES.len()
        );
        assert!(WITH_MAIL.contains("FROM outbox"));
        assert!(!WITHOUT_MAIL.contains("FROM outbox"));
    }
}
