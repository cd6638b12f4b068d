//! The raw-SQL baselines' building blocks: multi-row statements over the same driver the engine
//! uses, with every value bound, and placeholders written as the engine writes them (anonymous
//! `?` on SQLite, numbered on PostgreSQL, through [`Sql::sized`]), so a baseline is not slower
//! than the engine's own statements for a reason that is not the engine's work.

use casewarden::db::{Arg, Marks, Sql, Tx, rows_per_statement};

/// `INSERT INTO table (columns) VALUES (...), (...)` for `rows`, each a list of values in column
/// order, with `suffix` (e.g. `RETURNING id`) after. One statement: the caller's batches stay
/// within [`rows_per_statement`].
pub fn insert(table: &str, columns: &[&str], rows: Vec<Vec<Arg>>, suffix: &str) -> Sql {
    assert!(rows.len() <= rows_per_statement(columns.len()));
    let mut q = Sql::sized(|marks| {
        format!(
            "INSERT INTO {table} ({}) VALUES {} {suffix}",
            columns.join(", "),
            marks.values(rows.len(), columns.len(), 1)
        )
    });
    for row in rows {
        for value in row {
            q = q.bind_arg(value);
        }
    }
    q
}

/// Runs `text` with ` IN (...)` of `ids` appended, its `head` values bound first: `text` numbers
/// them `$1..` in the order they appear.
pub async fn execute_in(tx: &mut Tx, text: &str, head: Vec<Arg>, ids: &[i64]) -> u64 {
    let first = head.len() + 1;
    let mut q = Sql::sized(|marks| {
        let text = match marks {
            Marks::Numbered => text.to_string(),
            Marks::Anonymous => anonymous(text),
        };
        format!("{text} IN {}", marks.list(ids.len(), first))
    });
    let tail = ids.iter().map(|id| Arg::Int(Some(*id)));
    for value in head.into_iter().chain(tail) {
        q = q.bind_arg(value);
    }
    q.execute(tx).await.expect("baseline statement")
}

/// `text` with each numbered placeholder `$n` written `?`: the caller numbers them in the order
/// they appear, so binding in that order binds the same values.
fn anonymous(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
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
