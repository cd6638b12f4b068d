//! The decisions of a batch decided without savepoints, written together when the batch ends:
//! the events its commands recorded (held back by the transaction, see `Tx::hold_events`) in a
//! few multi-row inserts, then every inbox row marked in one `UPDATE ... FROM (VALUES ...)` per
//! thousand rows. That is two statements a command fewer than writing each row's events and
//! decision as it is decided.
//!
//! Each row still gets the range of the events its decision wrote: the events are held in the
//! order they were recorded, so a row's are those recorded between the end of the row before it
//! and its own end, and their ids ascend in that order (see `events::write_held`).
//!
//! A row is marked only while it is still pending. Rows are read in the writers' transaction, so
//! none can be decided by another instance meanwhile; should one be changed by a writer that does
//! not take the lock (a CRM updating the table by hand), the count of rows marked falls short,
//! and the batch is rolled back and decided again row by row (see `Savepoint`).

use chrono::{DateTime, Utc};

use crate::db::{Sql, Tx, rows_per_statement};
use crate::events;

/// The columns of one row's `VALUES` entry.
const COLUMNS: usize = 10;

/// How one row was decided, to be written on it when the batch ends.
pub struct Mark {
    pub inbox_id: i64,
    /// The inbox status the decision writes.
    pub status: &'static str,
    /// Already cut down to what the inbox keeps.
    pub reason: Option<String>,
    pub now: DateTime<Utc>,
    /// `None` for a body that is not a command: the row's `command_id`, `command_type` and
    /// `case_ref` stay as they are.
    pub command: Option<Named>,
    /// How many events the transaction held once the row was decided: its own are those after
    /// the row before it.
    pub held_upto: usize,
}

/// What a command names, recorded on its row.
pub struct Named {
    pub command_id: Option<String>,
    pub command_type: &'static str,
    pub case_ref: Option<String>,
}

/// Writes the held events and then marks each row with its decision and its events' range.
/// `false`: a row was no longer pending, and the transaction must not be committed.
pub async fn write(tx: &mut Tx, marks: &[Mark]) -> Result<bool, sqlx::Error> {
    let ids = events::write_held(tx).await?;
    let mut from = 0;
    let ranges: Vec<(Option<i64>, Option<i64>)> = marks
        .iter()
        .map(|mark| {
            let own = ids.get(from..mark.held_upto).unwrap_or_default();
            from = mark.held_upto;
            (own.first().copied(), own.last().copied())
        })
        .collect();
    let mut marked = 0;
    for (chunk, ranges) in marks
        .chunks(rows_per_statement(COLUMNS))
        .zip(ranges.chunks(rows_per_statement(COLUMNS)))
    {
        let mut update = Sql::sized(|m| {
            format!(
                "UPDATE inbox SET status = v.column2, reason = v.column3, processed_at = v.column4, \
                 command_id = CASE WHEN v.column5 THEN v.column6 ELSE inbox.command_id END, \
                 command_type = CASE WHEN v.column5 THEN v.column7 ELSE inbox.command_type END, \
                 case_ref = CASE WHEN v.column5 THEN v.column8 ELSE inbox.case_ref END, \
                 first_event_id = v.column9, last_event_id = v.column10 \
                 FROM (VALUES {}) AS v WHERE inbox.id = v.column1 AND inbox.status = 'pending'",
                m.values(chunk.len(), COLUMNS, 1)
            )
        });
        for (mark, (first, last)) in chunk.iter().zip(ranges) {
            let named = mark.command.as_ref();
            update = update
                .bind(mark.inbox_id)
                .bind(mark.status)
                .bind(mark.reason.as_deref())
                .bind(mark.now)
                .bind(named.is_some())
                .bind(named.and_then(|n| n.command_id.as_deref()))
                .bind(named.map(|n| n.command_type))
                .bind(named.and_then(|n| n.case_ref.as_deref()))
                .bind(*first)
                .bind(*last);
        }
        marked += update.execute(&mut *tx).await?;
    }
    Ok(marked == marks.len() as u64)
}
