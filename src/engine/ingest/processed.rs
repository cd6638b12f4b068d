//! The command ids already processed (`processed_commands`): a command whose `command_id` is
//! there is a duplicate. A command decided alone asks the table; a batch reads the ids of the
//! commands it has parsed with one query (asking the table for any other), keeps the map up to
//! date as it decides them (so a repeat within the batch is found too), and writes the new ones
//! with one statement before it commits.

use std::collections::HashMap;

use crate::db::{Sql, Tx, rows_per_statement, sql};

/// The ids a batch knows about: those of its commands, and whether they were processed.
#[derive(Debug, Default)]
pub struct Processed {
    /// Command id → the inbox row that carried it first, or `None`: not processed.
    known: HashMap<String, Option<i64>>,
    /// Decided in this batch, in order, to be written when it ends.
    new: Vec<(String, i64)>,
}

impl Processed {
    /// Reads which of `ids` were processed before.
    pub async fn read(tx: &mut Tx, ids: &[&str]) -> Result<Processed, sqlx::Error> {
        let mut processed = Processed::default();
        if ids.is_empty() {
            return Ok(processed);
        }
        let mut rows: Vec<(String, i64)> = Vec::new();
        for chunk in ids.chunks(rows_per_statement(1)) {
            let found: Vec<(String, i64)> = Sql::sized(|marks| {
                format!(
                    "SELECT command_id, inbox_id FROM processed_commands WHERE command_id IN {}",
                    marks.list(chunk.len(), 1)
                )
            })
            .bind_all(chunk.iter().copied())
            .fetch_all(&mut *tx)
            .await?;
            rows.extend(found);
        }
        processed
            .known
            .extend(ids.iter().map(|id| (id.to_string(), None)));
        processed
            .known
            .extend(rows.into_iter().map(|(id, inbox)| (id, Some(inbox))));
        Ok(processed)
    }

    /// The inbox row that carried `command_id` first, if any did; asked of the table when the
    /// batch has not read it.
    pub async fn first(
        &mut self,
        tx: &mut Tx,
        command_id: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        if let Some(known) = self.known.get(command_id) {
            return Ok(*known);
        }
        let found = first(tx, command_id).await?;
        self.known.insert(command_id.to_string(), found);
        Ok(found)
    }

    /// Notes a command decided in this batch (accepted or rejected).
    pub fn add(&mut self, command_id: &str, inbox_id: i64) {
        let known = self.known.entry(command_id.to_string()).or_default();
        if known.is_none() {
            *known = Some(inbox_id);
            self.new.push((command_id.to_string(), inbox_id));
        }
    }

    /// Writes the ids decided in this batch.
    pub async fn write(self, tx: &mut Tx) -> Result<(), sqlx::Error> {
        for chunk in self.new.chunks(rows_per_statement(2)) {
            let mut insert = Sql::sized(|marks| {
                format!(
                    "INSERT INTO processed_commands (command_id, inbox_id) VALUES {} ON CONFLICT (command_id) DO NOTHING",
                    marks.values(chunk.len(), 2, 1)
                )
            });
            for (command_id, inbox_id) in chunk {
                insert = insert.bind(command_id).bind(*inbox_id);
            }
            insert.execute(&mut *tx).await?;
        }
        Ok(())
    }
}

/// The inbox row that carried `command_id` first, asked of the table: for a command decided alone.
pub async fn first(tx: &mut Tx, command_id: &str) -> Result<Option<i64>, sqlx::Error> {
    let row: Option<(i64,)> = sql("SELECT inbox_id FROM processed_commands WHERE command_id = $1")
        .bind(command_id)
        .fetch_optional(tx)
        .await?;
    Ok(row.map(|(id,)| id))
}

/// Remembers one decided command's id at once: for a command decided alone.
pub async fn remember(tx: &mut Tx, command_id: &str, inbox_id: i64) -> Result<(), sqlx::Error> {
    sql("INSERT INTO processed_commands (command_id, inbox_id) VALUES ($1, $2) ON CONFLICT (command_id) DO NOTHING")
        .bind(command_id)
        .bind(inbox_id)
        .execute(tx)
        .await?;
    Ok(())
}
