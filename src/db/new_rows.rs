//! The rows of the cases a batch creates, kept back and written together (see `memory`): a new
//! case, its first stage and that stage's tasks cost three inserts each when written at once,
//! and three inserts for the whole batch when kept back.
//!
//! Kept-back rows need their ids before they are written: the events that name the case, the
//! tasks that name the stage, and a later command of the batch that completes a task all use
//! them. The batch takes them itself:
//!
//! - on SQLite, from the largest id each table has had (`sqlite_sequence`, as `AUTOINCREMENT`
//!   does): the transaction holds the database's one write lock, so no one else can take the
//!   same ids meanwhile. Any statement but the write of the kept-back rows may insert rows of its
//!   own, so it makes the batch read them again;
//! - on PostgreSQL, from each table's sequence (`nextval`), which never gives an id twice,
//!   whoever asks: as many as the cases the batch still expects to create need, so that one
//!   statement serves the batch. Ids taken and not used are gaps, as a rolled-back insert leaves.
//!
//! A case is created this way only when the batch has looked it up and found it absent (see
//! [`Tx::expect_new_cases`]); any other goes through its insert, which finds a case that exists.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, NaiveDate, Utc};

use super::query::{Conn, Marks};
use super::rows::{CaseRow, StageRow, TaskRow};
use super::{Backend, Sql, Tx, rows_per_statement};

/// A new case's row, and the column its row type leaves out.
pub struct NewCase {
    pub row: CaseRow,
    pub calendar: String,
}

impl NewCase {
    /// Binds the columns a new case's insert writes, in this order: `case_ref, kind, scheme,
    /// workflow, country, definition_id, definition_version, applicant_contact, applicant_group,
    /// property_ref, property_address, tenure, received_at, attributes, created_at, calendar`.
    pub fn bind(&self, sql: Sql) -> Sql {
        let r = &self.row;
        sql.bind(r.case_ref.as_str())
            .bind(r.kind.as_str())
            .bind(r.scheme.as_deref())
            .bind(r.workflow.as_deref())
            .bind(r.country.as_str())
            .bind(r.definition_id.as_str())
            .bind(r.definition_version.as_str())
            .bind(r.applicant_contact.as_deref())
            .bind(r.applicant_group.as_deref())
            .bind(r.property_ref.as_deref())
            .bind(r.property_address.as_deref())
            .bind(r.tenure.as_deref())
            .bind(r.received_at)
            .bind(r.attributes.0.clone())
            .bind(r.created_at)
            .bind(self.calendar.as_str())
    }
}

/// A new stage entry's row, and the columns its row type leaves out.
pub struct NewStage {
    pub row: StageRow,
    pub next_check_at: Option<DateTime<Utc>>,
    pub target_day: Option<NaiveDate>,
}

/// A new task's row, and the columns its row type leaves out.
pub struct NewTask {
    pub row: TaskRow,
    pub next_check_at: Option<DateTime<Utc>>,
    pub target_day: Option<NaiveDate>,
}

impl NewTask {
    /// Binds the columns a new task's insert writes, in this order: `case_id, stage_id, task,
    /// mandatory, activation, owner, line_manager, role_ref, status, activated_at, target_at,
    /// amber_at, sla_state, next_check_at, target_day`.
    pub fn bind(&self, sql: Sql) -> Sql {
        let r = &self.row;
        sql.bind(r.case_id)
            .bind(r.stage_id)
            .bind(r.task.as_str())
            .bind(r.mandatory)
            .bind(r.activation.as_str())
            .bind(r.owner.as_deref())
            .bind(r.line_manager.as_deref())
            .bind(r.role_ref.as_deref())
            .bind(r.status)
            .bind(r.activated_at)
            .bind(r.target_at)
            .bind(r.amber_at)
            .bind(r.sla_state)
            .bind(self.next_check_at)
            .bind(self.target_day)
    }
}

/// The tables whose rows are kept back.
#[derive(Debug, Clone, Copy)]
enum Table {
    Cases,
    Stages,
    Tasks,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Cases => "cases",
            Table::Stages => "stages",
            Table::Tasks => "tasks",
        }
    }
}

/// Ids the batch has taken for one table and not used yet.
#[derive(Default)]
struct Ids {
    /// SQLite: the next free id, while no other statement has run.
    next: Option<i64>,
    /// PostgreSQL: ids taken from the sequence.
    taken: VecDeque<i64>,
}

/// The kept-back rows of new cases, and what the batch knows to create them.
#[derive(Default)]
pub(super) struct NewRows {
    cases: Vec<NewCase>,
    stages: Vec<NewStage>,
    tasks: Vec<NewTask>,
    /// The kept-back cases' ids, those with their stage kept back too, and where each kept-back
    /// task is in `tasks`: looked up, not scanned, however many the batch creates.
    case_ids: HashSet<i64>,
    staged: HashSet<i64>,
    task_at: HashMap<i64, usize>,
    /// Cases the batch looked up and found absent, and has not created yet.
    absent: HashSet<String>,
    ids: [Ids; 3],
}

impl NewRows {
    pub(super) fn is_empty(&self) -> bool {
        self.cases.is_empty() && self.stages.is_empty() && self.tasks.is_empty()
    }

    /// After a statement other than their own write: SQLite's next ids must be read again.
    pub(super) fn statement_ran(&mut self) {
        for ids in &mut self.ids {
            ids.next = None;
        }
    }

    /// Completes a kept-back task, if it is one: it is written completed.
    pub(super) fn complete(&mut self, done: &super::Completion) -> bool {
        let Some(task) = (self.task_at.get(&done.task_id)).map(|&at| &mut self.tasks[at]) else {
            return false;
        };
        task.row.status = crate::states::TaskStatus::Completed;
        task.row.completed_at = Some(done.at);
        task.row.completed_by = Some(done.by.clone());
        task.row.outcome = done.outcome.clone();
        task.next_check_at = None;
        true
    }

    /// Writes the kept-back rows, cases first, then stages, then tasks.
    pub(super) async fn write(
        &mut self,
        backend: Backend,
        mut on: Conn<'_>,
    ) -> Result<(), sqlx::Error> {
        let overriding = match backend {
            Backend::Postgres => " OVERRIDING SYSTEM VALUE",
            Backend::Sqlite => "",
        };
        let cases = (CASE_INSERT, CASE_COLUMNS);
        insert_all(&mut on, &self.cases, cases, overriding, |sql, c| {
            c.bind(sql.bind(c.row.id))
        })
        .await?;
        let stages = (STAGE_INSERT, STAGE_COLUMNS);
        insert_all(&mut on, &self.stages, stages, overriding, |sql, s| {
            let r = &s.row;
            sql.bind(r.id)
                .bind(r.case_id)
                .bind(r.stage.as_str())
                .bind(r.master_stage.as_str())
                .bind(r.entry)
                .bind(r.owner.as_deref())
                .bind(r.line_manager.as_deref())
                .bind(r.entered_at)
                .bind(r.target_at)
                .bind(r.amber_at)
                .bind(r.sla_state)
                .bind(s.next_check_at)
                .bind(s.target_day)
        })
        .await?;
        let tasks = (TASK_INSERT, TASK_COLUMNS);
        insert_all(&mut on, &self.tasks, tasks, overriding, |sql, t| {
            let r = &t.row;
            t.bind(sql.bind(r.id))
                .bind(r.completed_at)
                .bind(r.completed_by.as_deref())
                .bind(r.outcome.as_deref())
        })
        .await?;
        self.cases.clear();
        self.stages.clear();
        self.tasks.clear();
        self.case_ids.clear();
        self.staged.clear();
        self.task_at.clear();
        Ok(())
    }
}

const CASE_INSERT: &str = "INSERT INTO cases (id, case_ref, kind, scheme, workflow, country, definition_id, \
     definition_version, applicant_contact, applicant_group, property_ref, property_address, tenure, received_at, \
     attributes, created_at, calendar)";
const CASE_COLUMNS: usize = 17;
const STAGE_INSERT: &str = "INSERT INTO stages (id, case_id, stage, master_stage, entry, owner, line_manager, \
     entered_at, target_at, amber_at, sla_state, next_check_at, target_day)";
const STAGE_COLUMNS: usize = 13;
const TASK_INSERT: &str = "INSERT INTO tasks (id, case_id, stage_id, task, mandatory, activation, owner, \
     line_manager, role_ref, status, activated_at, target_at, amber_at, sla_state, next_check_at, target_day, \
     completed_at, completed_by, outcome)";
const TASK_COLUMNS: usize = 19;

/// Inserts `rows` with as few statements of `head` as the bound values allow, each row's
/// `columns` values bound by `bind`.
async fn insert_all<T>(
    on: &mut Conn<'_>,
    rows: &[T],
    (head, columns): (&str, usize),
    overriding: &str,
    bind: impl Fn(Sql, &T) -> Sql,
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(rows_per_statement(columns)) {
        let statement = chunk
            .iter()
            .fold(insert(head, overriding, chunk.len(), columns), &bind);
        statement.execute_on(on.reborrow()).await?;
    }
    Ok(())
}

/// A multi-row insert of `rows` rows with their ids given (PostgreSQL's identity columns take
/// them only when told to).
fn insert(head: &str, overriding: &str, rows: usize, columns: usize) -> Sql {
    let text = |marks: Marks| {
        format!(
            "{head}{overriding} VALUES {}",
            marks.values(rows, columns, 1)
        )
    };
    Sql::built(text(Marks::Anonymous), text(Marks::Numbered))
}

impl Tx {
    /// Looks up the cases a batch's commands would create, one statement for all: those found
    /// absent are created with their rows kept back (see the module's documentation).
    pub async fn expect_new_cases(&mut self, case_refs: &[&str]) -> Result<(), sqlx::Error> {
        if !self.memory.on || case_refs.is_empty() {
            return Ok(());
        }
        let mut absent: HashSet<String> = case_refs.iter().map(|r| r.to_string()).collect();
        for case_ref in self.existing(("cases", "case_ref"), case_refs).await? {
            absent.remove(&case_ref);
        }
        self.new_rows.absent = absent;
        Ok(())
    }

    /// An id for a new case `case_ref` whose rows are kept back, or `None` when it must be
    /// inserted at once (the batch did not find it absent, or it was created already).
    pub async fn new_case_id(&mut self, case_ref: &str) -> Result<Option<i64>, sqlx::Error> {
        if !self.memory.on || !self.new_rows.absent.contains(case_ref) {
            return Ok(None);
        }
        let expected = self.new_rows.absent.len();
        let id = self.take_ids(Table::Cases, 1, expected).await?[0];
        self.new_rows.absent.remove(case_ref);
        Ok(Some(id))
    }

    /// Keeps back a new case's row (with an id from [`Tx::new_case_id`]).
    pub fn add_case(&mut self, case: NewCase) {
        self.new_rows.case_ids.insert(case.row.id);
        // Room for the cases the batch still expects to create, as for their tasks below.
        self.new_rows.cases.reserve(self.new_rows.absent.len() + 1);
        self.new_rows.cases.push(case);
    }

    /// Ids for the first stage of case `case_id` and its `tasks` tasks, when the case's rows
    /// are kept back and it has no stage yet; `None`: they are inserted at once.
    pub async fn new_stage_ids(
        &mut self,
        case_id: i64,
        tasks: usize,
    ) -> Result<Option<(i64, Vec<i64>)>, sqlx::Error> {
        let rows = &self.new_rows;
        if !rows.case_ids.contains(&case_id) || rows.staged.contains(&case_id) {
            return Ok(None);
        }
        // This case and those the batch still expects to create.
        let expected = self.new_rows.absent.len() + 1;
        let stage = self.take_ids(Table::Stages, 1, expected).await?[0];
        let tasks = self.take_ids(Table::Tasks, tasks, expected).await?;
        Ok(Some((stage, tasks)))
    }

    /// Keeps back a new case's first stage and its tasks (with ids from [`Tx::new_stage_ids`]).
    pub fn add_stage(&mut self, stage: NewStage, tasks: Vec<NewTask>) {
        let rows = &mut self.new_rows;
        rows.staged.insert(stage.row.case_id);
        // Room for the tasks of the cases the batch still expects to create as well: the rows
        // kept back for a batch run to hundreds, copied each time the list would double.
        rows.tasks.reserve(tasks.len() * (rows.absent.len() + 1));
        rows.stages.push(stage);
        for task in tasks {
            rows.task_at.insert(task.row.id, rows.tasks.len());
            rows.tasks.push(task);
        }
    }

    /// `n` unused ids of `table`; on PostgreSQL, enough for `expected` such needs are taken at
    /// once.
    async fn take_ids(
        &mut self,
        table: Table,
        n: usize,
        expected: usize,
    ) -> Result<Vec<i64>, sqlx::Error> {
        let slot = table as usize;
        if self.backend() == Backend::Sqlite {
            let next = match self.new_rows.ids[slot].next {
                Some(next) => next,
                None => {
                    // The three tables' at once: all are read again after the same statements.
                    let largest = largest_ids(Conn::from(&mut self.conn)).await?;
                    for (ids, largest) in self.new_rows.ids.iter_mut().zip(largest) {
                        ids.next = Some(largest + 1);
                    }
                    largest[slot] + 1
                }
            };
            let end = next + i64::try_from(n).unwrap_or(i64::MAX);
            self.new_rows.ids[slot].next = Some(end);
            return Ok((next..end).collect());
        }
        if self.new_rows.ids[slot].taken.len() < n {
            let want = i64::try_from(n * expected.max(1)).unwrap_or(i64::MAX);
            let taken: Vec<(i64,)> = Sql::built(
                String::new(),
                format!(
                    "SELECT nextval(pg_get_serial_sequence('{}', 'id')) FROM generate_series(1, $1)",
                    table.name()
                ),
            )
            .bind(want)
            .fetch_all(Conn::from(&mut self.conn))
            .await?;
            let ids = &mut self.new_rows.ids[slot].taken;
            ids.extend(taken.into_iter().map(|(id,)| id));
            // In order, so that rows written together are numbered in the order they were made.
            ids.make_contiguous().sort_unstable();
        }
        Ok(self.new_rows.ids[slot].taken.drain(..n).collect())
    }
}

/// The largest id each table has had (cases, stages, tasks), as SQLite's `AUTOINCREMENT` counts
/// it: one that was deleted counts too.
async fn largest_ids(on: Conn<'_>) -> Result<[i64; 3], sqlx::Error> {
    let largest = |table: Table| {
        format!(
            "MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '{0}'), 0), \
             COALESCE((SELECT MAX(id) FROM {0}), 0))",
            table.name()
        )
    };
    let text = format!(
        "SELECT {}, {}, {}",
        largest(Table::Cases),
        largest(Table::Stages),
        largest(Table::Tasks)
    );
    let (cases, stages, tasks): (i64, i64, i64) =
        Sql::built(text, String::new()).fetch_one(on).await?;
    Ok([cases, stages, tasks])
}
