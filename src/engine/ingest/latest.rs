//! The time of each case's newest event, which a live clock never goes back before: an instance
//! whose clock is behind another's cannot record a change before one already made. A command
//! decided alone asks the table (its `Latest` knows no case); a batch reads the times of the
//! cases its commands name with one query, and keeps them up to date as it decides them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::db::{Sql, Tx, rows_per_statement, sql};

/// The newest event's time of the cases a batch knows about (`None`: the case has none, or does
/// not exist yet).
#[derive(Debug, Default)]
pub struct Latest {
    known: HashMap<String, Option<DateTime<Utc>>>,
}

impl Latest {
    /// Reads the newest event's time of each of `cases`.
    pub async fn read(tx: &mut Tx, cases: &[&str]) -> Result<Latest, sqlx::Error> {
        let mut latest = Latest::default();
        for chunk in cases.chunks(rows_per_statement(1)) {
            let found: Vec<(String, Option<DateTime<Utc>>)> = Sql::sized(|marks| {
                format!(
                    "SELECT c.case_ref, (SELECT e.at FROM events e WHERE e.case_id = c.id ORDER BY e.id DESC LIMIT 1) \
                     FROM cases c WHERE c.case_ref IN {}",
                    marks.list(chunk.len(), 1)
                )
            })
            .bind_all(chunk.iter().copied())
            .fetch_all(&mut *tx)
            .await?;
            latest
                .known
                .extend(chunk.iter().map(|case| (case.to_string(), None)));
            latest.known.extend(found);
        }
        Ok(latest)
    }

    /// The wall clock for a command on `case_ref`, never before the case's newest event (asked
    /// of the table when the batch has not read it); what a change at that time leaves newest.
    pub async fn now(&mut self, tx: &mut Tx, case_ref: &str) -> Result<DateTime<Utc>, sqlx::Error> {
        let newest = match self.known.get(case_ref) {
            Some(at) => *at,
            None => newest_of(tx, case_ref).await?,
        };
        let now = newest.map_or(crate::clock::now(), |at| crate::clock::now().max(at));
        self.known.insert(case_ref.to_string(), Some(now));
        Ok(now)
    }
}

/// The time of the case's newest event, asked of the table.
async fn newest_of(tx: &mut Tx, case_ref: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let last: Option<(DateTime<Utc>,)> = sql(
        "SELECT e.at FROM events e WHERE e.case_id = (SELECT id FROM cases WHERE case_ref = $1) ORDER BY e.id DESC LIMIT 1",
    )
    .bind(case_ref)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(last.map(|(at,)| at))
}
