//! Planner statistics kept in step with the tables casewarden fills in batches (PostgreSQL).
//!
//! PostgreSQL checks a foreign key with a query it plans once per connection and then keeps.
//! Planned while the table it looks in was small (a new installation, an empty `escalations`
//! table before the first pass that fires), that query reads the whole table, which is cheapest
//! for a page or two; and it goes on doing so as the table grows, until the table's statistics
//! change. Autovacuum gathers them only after a minute or more. So one pass that fired
//! thousands of checkpoints, or applied thousands of commands, made each row it inserted read
//! every row the pass had inserted before it: a 200-row batch of notifications spent 140 ms
//! checking that their escalations existed, and more with each batch (see docs/performance.md).
//!
//! After a write transaction commits, at most once a second for each database, casewarden
//! looks at the tables that other tables' foreign keys refer to, and analyses each one that is
//! now more than twice the size it had when its statistics were last gathered (and more than
//! [`MIN_PAGES`]). `ANALYZE` reads a sample of at most 30,000 rows, takes no lock that keeps
//! anyone from reading or writing, and makes every connection plan its queries on the table
//! afresh: a table's foreign key checks then look its rows up by index. Since a table is
//! analysed each time it doubles, a table filled from empty is analysed a handful of times, and
//! a table that grows slowly is left to autovacuum.
//!
//! The look is one query of the catalogue; the sizes come from the files, so they are current.
//! A failure to look or to analyse is logged and changes nothing else: the commit has happened.
//! SQLite checks a foreign key through the referenced table's primary key always, so it needs
//! none of this.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::{Db, Sql, sql};

/// The tables other tables' foreign keys refer to (see the migrations).
const REFERENCED: &[&str] = &[
    "attachments",
    "cases",
    "contact_groups",
    "contacts",
    "escalations",
    "inbox",
    "roles",
    "stages",
    "tasks",
    "users",
];

/// The size, in pages of 8 kB, up to which a table is not analysed for having grown: well past
/// the two or three pages at which a lookup by index starts to cost less than reading the table.
pub const MIN_PAGES: i64 = 16;

/// The tables among [`REFERENCED`] that are more than twice the size they had when their
/// statistics were last gathered, and over `$1` pages.
static GROWN: LazyLock<String> = LazyLock::new(|| {
    let names: Vec<String> = REFERENCED.iter().map(|t| format!("'{t}'")).collect();
    format!(
        "SELECT c.relname::text FROM pg_class c \
         WHERE c.oid IN (SELECT to_regclass(t) FROM unnest(ARRAY[{}]) AS t) \
         AND pg_relation_size(c.oid) / current_setting('block_size')::bigint > GREATEST(2 * c.relpages::bigint, $1) \
         ORDER BY 1",
        names.join(", ")
    )
});

/// How often a process looks, at most.
const EVERY: Duration = Duration::from_secs(1);

/// When this process last looked, for each pool (told apart by where its settings are kept).
static LAST_LOOK: Mutex<BTreeMap<usize, Instant>> = Mutex::new(BTreeMap::new());

/// After a write transaction on `pool` committed: looks, unless this process looked at the same
/// pool less than [`EVERY`] ago, and analyses the tables that have doubled.
pub(super) async fn after_commit(pool: &PgPool) {
    {
        let key = std::sync::Arc::as_ptr(&pool.connect_options()) as usize;
        let mut looked = LAST_LOOK.lock().unwrap_or_else(|e| e.into_inner());
        if looked.get(&key).is_some_and(|at| at.elapsed() < EVERY) {
            return;
        }
        looked.insert(key, Instant::now());
    }
    if let Err(e) = settle(&Db::Postgres(pool.clone())).await {
        tracing::warn!(
            error = %e,
            "could not bring the planner statistics of fast-growing tables up to date; autovacuum will, later"
        );
    }
}

/// Analyses each table foreign keys refer to that is more than twice the size it had when its
/// statistics were last gathered, and more than [`MIN_PAGES`]; gives their names.
pub async fn settle(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    let grown: Vec<(String,)> = sql(GROWN.as_str()).bind(MIN_PAGES).fetch_all(db).await?;
    let tables: Vec<String> = grown.into_iter().map(|(t,)| t).collect();
    if tables.is_empty() {
        return Ok(tables);
    }
    // The names are the constants above, as the catalogue spells them.
    let analyse = format!("ANALYZE (SKIP_LOCKED) {}", tables.join(", "));
    Sql::built(analyse.clone(), analyse).execute(db).await?;
    tracing::info!(
        tables = %tables.join(", "),
        "analysed tables that had more than doubled since their statistics were gathered"
    );
    Ok(tables)
}

#[cfg(test)]
mod tests {
    /// Every table a foreign key refers to is looked at.
    #[test]
    fn every_referenced_table_is_looked_at() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
        for entry in std::fs::read_dir(dir).expect("migrations") {
            let text = std::fs::read_to_string(entry.expect("entry").path()).expect("migration");
            for rest in text.split("REFERENCES ").skip(1) {
                let table: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    super::REFERENCED.contains(&table.as_str()),
                    "{table} is referred to by a foreign key but not in REFERENCED"
                );
            }
        }
    }
}
