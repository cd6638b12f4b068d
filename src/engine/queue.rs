//! Adding commands to the inbox: `casewarden submit` (JSON lines) and the API
//! (`POST /v1/commands`) both queue through here. A running daemon notices the new rows at once
//! (see `crate::wake`).

use crate::db::{Db, Sql, rows_per_statement};

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(
        "line {line}: the command is {size} bytes; the limit is {limit} bytes (engine.max_command_bytes)"
    )]
    TooLarge {
        line: usize,
        size: usize,
        limit: usize,
    },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Adds commands to the inbox, one per line of JSON; returns each new row's id. Blank lines are
/// skipped; a line over `max_bytes` refuses the whole submission (nothing is added); every other
/// line is stored as it is, to be accepted or rejected by the next pass, except that NUL bytes
/// (which PostgreSQL cannot store, and JSON never has raw) become the text `\u0000`. A UTF-8
/// byte-order mark at the start (as some Windows tools write) is skipped: it is not part of the
/// first command.
pub async fn submit(db: &Db, lines: &str, max_bytes: usize) -> Result<Vec<i64>, SubmitError> {
    let lines = lines.strip_prefix('\u{FEFF}').unwrap_or(lines);
    let lines: Vec<(usize, &str)> = lines
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    if let Some((n, l)) = lines.iter().find(|(_, l)| l.len() > max_bytes) {
        return Err(SubmitError::TooLarge {
            line: n + 1,
            size: l.len(),
            limit: max_bytes,
        });
    }
    let bodies: Vec<String> = lines
        .into_iter()
        .map(|(_, line)| line.replace('\0', "\\u0000"))
        .collect();
    Ok(queue(db, &bodies, None).await?)
}

/// Adds commands to the inbox in order, in one transaction (all or none), under the API client
/// that sent them (`None` for `submit`); returns their ids, in the order of `bodies`. The commands
/// are not checked here: the pass does that, as for any row.
pub async fn queue(
    db: &Db,
    bodies: &[impl AsRef<str>],
    client: Option<&str>,
) -> Result<Vec<i64>, sqlx::Error> {
    let now = crate::clock::now();
    let mut ids = Vec::with_capacity(bodies.len());
    let mut tx = db.begin().await?;
    for chunk in bodies.chunks(rows_per_statement(3)) {
        let mut insert = Sql::sized(|marks| {
            format!(
                "INSERT INTO inbox (body, received_at, client) VALUES {} RETURNING id",
                marks.values(chunk.len(), 3, 1)
            )
        });
        for body in chunk {
            insert = insert.bind(body.as_ref()).bind(now).bind(client);
        }
        let mut inserted: Vec<(i64,)> = insert.fetch_all(&mut tx).await?;
        // Both backends number the rows of one VALUES list in its order (SQLite inserts them one
        // after another; PostgreSQL takes each row's id from the sequence in turn), and that order
        // is the order commands are applied in; RETURNING promises no order of its own.
        inserted.sort_unstable();
        ids.extend(inserted.into_iter().map(|(id,)| id));
    }
    tx.commit().await?;
    Ok(ids)
}
