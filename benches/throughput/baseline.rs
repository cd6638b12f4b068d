//! The raw-SQL baselines' building blocks: multi-row statements over the same driver the engine
//! uses, with every value bound.

use casewarden::db::{Arg, Sql, Tx};

/// `INSERT INTO table (columns) VALUES (...), (...)` for `rows`, each a list of values in column
/// order, with `suffix` (e.g. `RETURNING id`) after.
pub fn insert(table: &str, columns: &[&str], rows: Vec<Vec<Arg>>, suffix: &str) -> Sql {
    let text = format!(
        "INSERT INTO {table} ({}) VALUES {} {suffix}",
        columns.join(", "),
        casewarden::db::values(rows.len(), columns.len(), 1)
    );
    let mut q = Sql::built(text.clone(), text);
    for row in rows {
        for value in row {
            q = q.bind_arg(value);
        }
    }
    q
}

/// `text` with ` IN (...)` of `ids` appended, its other values bound first by the caller in
/// `$1..$first-1`.
pub fn with_ids(text: &str, first: usize, ids: &[i64]) -> (String, Vec<Arg>) {
    (
        format!("{text} IN {}", casewarden::db::list(ids.len(), first)),
        ids.iter().map(|id| Arg::Int(Some(*id))).collect(),
    )
}

/// Runs `text` with `head` values then `ids` bound.
pub async fn execute_in(tx: &mut Tx, text: &str, head: Vec<Arg>, ids: &[i64]) -> u64 {
    let (text, tail) = with_ids(text, head.len() + 1, ids);
    let mut q = Sql::built(text.clone(), text);
    for value in head.into_iter().chain(tail) {
        q = q.bind_arg(value);
    }
    q.execute(tx).await.expect("baseline statement")
}

pub fn text(s: &str) -> Arg {
    Arg::Text(Some(s.to_string()))
}

pub fn int(n: i64) -> Arg {
    Arg::Int(Some(n))
}

pub fn time(t: chrono::DateTime<chrono::Utc>) -> Arg {
    Arg::Time(Some(t))
}

pub fn json(v: &serde_json::Value) -> Arg {
    Arg::Json(Some(v.clone()))
}
