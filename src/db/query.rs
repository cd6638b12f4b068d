//! The query type: SQL text plus bound values, run on whichever backend the caller holds.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, FromRow, PgConnection, PgPool, SqliteConnection, SqlitePool};

use super::{Db, Tx, TxConn};

/// A value to bind. Each variant carries an `Option` so a NULL keeps its SQL type, which
/// PostgreSQL needs to accept it in a typed column.
#[derive(Clone, Debug)]
pub enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(Option<bool>),
    Time(Option<DateTime<Utc>>),
    Date(Option<NaiveDate>),
    Json(Option<serde_json::Value>),
    /// JSON encoded already (see [`serde_json::value::to_raw_value`]).
    RawJson(Option<Box<serde_json::value::RawValue>>),
}

pub trait IntoArg {
    fn into_arg(self) -> Arg;
}

macro_rules! into_arg {
    ($variant:ident: $($t:ty => $conv:expr),* $(,)?) => {$(
        impl IntoArg for $t {
            fn into_arg(self) -> Arg {
                #[allow(clippy::redundant_closure_call)]
                Arg::$variant(($conv)(self))
            }
        }
    )*};
}

into_arg!(Text:
    String => Some,
    &String => |s: &String| Some(s.clone()),
    &str => |s: &str| Some(s.to_string()),
    Option<String> => |s| s,
    Option<&str> => |s: Option<&str>| s.map(str::to_string),
    Option<&String> => |s: Option<&String>| s.cloned(),
);
into_arg!(Int:
    i64 => Some,
    i32 => |v| Some(i64::from(v)),
    Option<i64> => |v| v,
);
into_arg!(Bool: bool => Some, Option<bool> => |v| v);
into_arg!(Time:
    DateTime<Utc> => Some,
    Option<DateTime<Utc>> => |v| v,
);
into_arg!(Date:
    NaiveDate => Some,
    Option<NaiveDate> => |v| v,
);
into_arg!(Json:
    serde_json::Value => Some,
    &serde_json::Value => |v: &serde_json::Value| Some(v.clone()),
    Option<serde_json::Value> => |v| v,
);
into_arg!(RawJson: Box<serde_json::value::RawValue> => Some);

// States bind as the text their columns hold.
macro_rules! state_args {
    ($($t:ident),*) => {$(
        impl IntoArg for crate::states::$t {
            fn into_arg(self) -> Arg {
                Arg::Text(Some(self.as_str().to_string()))
            }
        }
    )*};
}

state_args!(
    CaseStatus,
    Allocation,
    StageStatus,
    TaskStatus,
    SlaState,
    InboxStatus,
    OutboxStatus
);

/// Where a query runs: inside a transaction, or on a pooled connection for a one-off read. A
/// statement run inside a transaction first lets it settle what it kept back (see `memory`).
pub enum Ex<'a> {
    Tx(&'a mut Tx),
    /// In a transaction, a statement that only inserts rows (see `Tx::inserting`).
    Inserting(&'a mut Tx, Option<i64>),
    Conn(Conn<'a>),
}

/// The connection a statement runs on.
pub enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Pg(&'a mut PgConnection),
    SqlitePool(&'a SqlitePool),
    PgPool(&'a PgPool),
    Pinned(&'a super::Pinned),
}

impl<'a> From<&'a mut Tx> for Ex<'a> {
    fn from(tx: &'a mut Tx) -> Self {
        Ex::Tx(tx)
    }
}

impl<'a> From<&'a mut TxConn> for Conn<'a> {
    fn from(conn: &'a mut TxConn) -> Self {
        match conn {
            TxConn::Sqlite(tx) => Conn::Sqlite(tx),
            TxConn::Postgres(tx) => Conn::Pg(tx),
            TxConn::Pinned(tx) => match &mut tx.guard.conn {
                super::pinned::Conn::Sqlite(c) => Conn::Sqlite(c),
                super::pinned::Conn::Postgres(c) => Conn::Pg(c),
            },
        }
    }
}

impl<'a> From<&'a Db> for Ex<'a> {
    fn from(db: &'a Db) -> Self {
        Ex::Conn(match db {
            Db::Sqlite(pool) => Conn::SqlitePool(pool),
            Db::Postgres(pool) => Conn::PgPool(pool),
            Db::Pinned(p) => Conn::Pinned(p),
        })
    }
}

impl<'a> From<Conn<'a>> for Ex<'a> {
    fn from(conn: Conn<'a>) -> Self {
        Ex::Conn(conn)
    }
}

impl<'a> Ex<'a> {
    /// The same executor for one more statement, so a function given one can run several.
    pub fn reborrow(&mut self) -> Ex<'_> {
        match self {
            Ex::Tx(tx) => Ex::Tx(tx),
            Ex::Inserting(tx, case) => Ex::Inserting(tx, *case),
            Ex::Conn(c) => Ex::Conn(c.reborrow()),
        }
    }

    /// The connection to run the next statement on: in a transaction, once what it kept back
    /// is written (see `memory`).
    async fn conn(self) -> Result<Conn<'a>, sqlx::Error> {
        match self {
            Ex::Tx(tx) => tx.before_statement().await,
            Ex::Inserting(tx, case) => tx.before_insert(case).await,
            Ex::Conn(conn) => Ok(conn),
        }
    }
}

impl Conn<'_> {
    /// The same connection for one more statement.
    pub fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Conn::Sqlite(c) => Conn::Sqlite(c),
            Conn::Pg(c) => Conn::Pg(c),
            Conn::SqlitePool(p) => Conn::SqlitePool(p),
            Conn::PgPool(p) => Conn::PgPool(p),
            Conn::Pinned(p) => Conn::Pinned(p),
        }
    }
}

/// SQL and its arguments. Built by [`sql`] (one text for both backends) or [`sql2`] (where the
/// dialects differ).
#[must_use = "a query does nothing until it is executed or fetched"]
pub struct Sql {
    sqlite: Text,
    postgres: Text,
    args: Vec<Arg>,
}

/// SQL text: a literal, or text assembled by [`Sql::built`] from literal fragments and
/// placeholders (never from values, which are always bound).
type Text = std::borrow::Cow<'static, str>;

pub fn sql(text: &'static str) -> Sql {
    sql2(text, text)
}

pub fn sql2(sqlite: &'static str, postgres: &'static str) -> Sql {
    Sql {
        sqlite: Text::Borrowed(sqlite),
        postgres: Text::Borrowed(postgres),
        args: Vec::new(),
    }
}

fn sqlite_args(args: Vec<Arg>) -> Result<SqliteArguments, sqlx::Error> {
    let mut out = SqliteArguments::default();
    // A batch statement binds thousands: grown one at a time, the list would be copied over
    // and over as it doubled.
    out.reserve(args.len(), 0);
    for arg in args {
        match arg {
            Arg::Text(v) => out.add(v),
            Arg::Int(v) => out.add(v),
            Arg::Bool(v) => out.add(v),
            Arg::Time(v) => out.add(v),
            Arg::Date(v) => out.add(v),
            Arg::Json(v) => out.add(v.map(sqlx::types::Json)),
            Arg::RawJson(v) => out.add(v.map(sqlx::types::Json)),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

fn pg_args(args: Vec<Arg>) -> Result<PgArguments, sqlx::Error> {
    let mut out = PgArguments::default();
    // Room for the encoded values too, at 8 bytes each: an id or a time, the most common; a
    // text value longer than that only makes the buffer grow.
    out.reserve(args.len(), args.len() * 8);
    for arg in args {
        match arg {
            Arg::Text(v) => out.add(v),
            Arg::Int(v) => out.add(v),
            Arg::Bool(v) => out.add(v),
            Arg::Time(v) => out.add(v),
            Arg::Date(v) => out.add(v),
            Arg::Json(v) => out.add(v.map(sqlx::types::Json)),
            Arg::RawJson(v) => out.add(v.map(sqlx::types::Json)),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

/// Rows that decode on both backends. `#[derive(sqlx::FromRow)]` structs and tuples qualify.
pub trait Row: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{}

macro_rules! run {
    ($self:ident, $on:ident, |$q:ident, $e:ident| $body:expr, $qf:path) => {{
        let Sql {
            sqlite,
            postgres,
            args,
        } = $self;
        match $on {
            Conn::Sqlite(c) => {
                let $q = $qf(sqlx::AssertSqlSafe(sqlite), sqlite_args(args)?);
                let $e = &mut *c;
                $body
            }
            Conn::SqlitePool(p) => {
                let $q = $qf(sqlx::AssertSqlSafe(sqlite), sqlite_args(args)?);
                let $e = p;
                $body
            }
            Conn::Pg(c) => {
                let $q = $qf(sqlx::AssertSqlSafe(postgres), pg_args(args)?);
                let $e = &mut *c;
                $body
            }
            Conn::PgPool(p) => {
                let $q = $qf(sqlx::AssertSqlSafe(postgres), pg_args(args)?);
                let $e = p;
                $body
            }
            Conn::Pinned(p) => {
                let mut guard = p.lock().await?;
                match &mut guard.conn {
                    super::pinned::Conn::Sqlite(c) => {
                        let $q = $qf(sqlx::AssertSqlSafe(sqlite), sqlite_args(args)?);
                        let $e = &mut **c;
                        $body
                    }
                    super::pinned::Conn::Postgres(c) => {
                        let $q = $qf(sqlx::AssertSqlSafe(postgres), pg_args(args)?);
                        let $e = &mut **c;
                        $body
                    }
                }
            }
        }
    }};
}

impl Sql {
    /// SQL whose shape depends on the size of a batch (`VALUES` rows, `IN` lists), built by the
    /// caller from literal fragments and [`values`] or [`list`]. Values are bound, never spliced.
    pub fn built(sqlite: String, postgres: String) -> Sql {
        // Room for a value per anonymous placeholder, so the thousands of a batch statement
        // are not copied each time the list would double.
        let marks = sqlite.bytes().filter(|b| *b == b'?').count();
        Sql {
            sqlite: Text::Owned(sqlite),
            postgres: Text::Owned(postgres),
            args: Vec::with_capacity(marks),
        }
    }

    /// SQL whose shape depends on the size of a batch, each of its placeholders made by
    /// [`Marks`], in the order its values are bound: `text` writes it once for each backend.
    pub fn sized(text: impl Fn(Marks) -> String) -> Sql {
        Sql::built(text(Marks::Anonymous), text(Marks::Numbered))
    }

    /// Binds each value in turn.
    pub fn bind_all<T: IntoArg>(mut self, values: impl IntoIterator<Item = T>) -> Self {
        self.args.extend(values.into_iter().map(IntoArg::into_arg));
        self
    }

    /// Binds an already converted value.
    pub fn bind_arg(mut self, value: Arg) -> Self {
        self.args.push(value);
        self
    }

    pub fn bind(mut self, value: impl IntoArg) -> Self {
        self.args.push(value.into_arg());
        self
    }

    /// Runs a statement; returns the number of rows it changed.
    pub async fn execute<'a>(self, on: impl Into<Ex<'a>>) -> Result<u64, sqlx::Error> {
        self.execute_on(on.into().conn().await?).await
    }

    /// Runs a statement on a connection as it is, with nothing kept back written first.
    pub(super) async fn execute_on(self, conn: Conn<'_>) -> Result<u64, sqlx::Error> {
        run!(
            self,
            conn,
            |q, e| Ok(q.execute(e).await?.rows_affected()),
            sqlx::query_with
        )
    }

    pub async fn fetch_all<'a, T: Row>(self, on: impl Into<Ex<'a>>) -> Result<Vec<T>, sqlx::Error> {
        let conn = on.into().conn().await?;
        run!(self, conn, |q, e| q.fetch_all(e).await, sqlx::query_as_with)
    }

    pub async fn fetch_optional<'a, T: Row>(
        self,
        on: impl Into<Ex<'a>>,
    ) -> Result<Option<T>, sqlx::Error> {
        let conn = on.into().conn().await?;
        run!(
            self,
            conn,
            |q, e| q.fetch_optional(e).await,
            sqlx::query_as_with
        )
    }

    pub async fn fetch_one<'a, T: Row>(self, on: impl Into<Ex<'a>>) -> Result<T, sqlx::Error> {
        let conn = on.into().conn().await?;
        run!(self, conn, |q, e| q.fetch_one(e).await, sqlx::query_as_with)
    }

    /// The first column of the first row, for counts and `RETURNING id`.
    pub async fn scalar<'a, T>(self, on: impl Into<Ex<'a>>) -> Result<T, sqlx::Error>
    where
        (T,): Row,
    {
        Ok(self.fetch_one::<(T,)>(on).await?.0)
    }
}

/// Placeholders for a multi-row `VALUES`: `rows` tuples of `columns` each, numbered from
/// `$first`. `values(2, 3, 1)` is `($1, $2, $3), ($4, $5, $6)`.
pub fn values(rows: usize, columns: usize, first: usize) -> String {
    Marks::Numbered.values(rows, columns, first)
}

/// Placeholders for an `IN` list of `n` values numbered from `$first`: `($1, $2, $3)`.
pub fn list(n: usize, first: usize) -> String {
    Marks::Numbered.list(n, first)
}

/// How the placeholders of SQL built for a batch are written. PostgreSQL needs them numbered
/// (`$1`). SQLite is given them anonymous (`?`, bound in the order they appear): sqlx looks each
/// numbered one up by its name, in a list SQLite searches from the start, so binding the
/// thousands of a large batch statement would cost their number squared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marks {
    Numbered,
    Anonymous,
}

impl Marks {
    /// A multi-row `VALUES`: `rows` tuples of `columns` placeholders, numbered from `$first`.
    pub fn values(self, rows: usize, columns: usize, first: usize) -> String {
        let mut out = String::with_capacity(rows * (columns * 7 + 2));
        for r in 0..rows {
            if r > 0 {
                out.push_str(", ");
            }
            self.push_list(&mut out, columns, first + r * columns);
        }
        out
    }

    /// An `IN` list of `n` placeholders, numbered from `$first`.
    pub fn list(self, n: usize, first: usize) -> String {
        let mut out = String::with_capacity(n * 7 + 2);
        self.push_list(&mut out, n, first);
        out
    }

    /// One placeholder, the `n`th bound value: `$n`, or `?` bound in order.
    pub fn one(self, n: usize) -> String {
        match self {
            Marks::Numbered => format!("${n}"),
            Marks::Anonymous => "?".to_string(),
        }
    }

    fn push_list(self, out: &mut String, n: usize, first: usize) {
        use std::fmt::Write;
        out.push('(');
        for i in 0..n {
            if i > 0 {
                out.push_str(", ");
            }
            match self {
                Marks::Numbered => {
                    let _ = write!(out, "${}", first + i);
                }
                Marks::Anonymous => out.push('?'),
            }
        }
        out.push(')');
    }
}

/// Values bound in one multi-row statement at most: far under the limits of both backends
/// (PostgreSQL 65,535, SQLite 32,766), and past the size where larger statements stop paying.
const MAX_VALUES: usize = 10_000;

/// How many rows of `columns` values one multi-row statement takes: longer lists of rows are
/// written in several statements of this many.
pub fn rows_per_statement(columns: usize) -> usize {
    (MAX_VALUES / columns.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_rows_in_order() {
        assert_eq!(super::values(2, 3, 1), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::values(1, 2, 4), "($4, $5)");
        assert_eq!(super::list(3, 2), "($2, $3, $4)");
        assert_eq!(super::Marks::Anonymous.values(2, 2, 5), "(?, ?), (?, ?)");
        assert_eq!(super::rows_per_statement(11), 909);
        assert_eq!(super::rows_per_statement(20_000), 1);
    }
}
