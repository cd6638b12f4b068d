//! What a transaction deciding a batch of commands keeps between its statements, so that a
//! command does not ask the database what the commands before it in the batch just wrote, and
//! so that its simplest writes go together:
//!
//! - the cases its commands created or looked up, each with its open stage and that stage's
//!   tasks (see `case_stage`): a later command on the same case finds them here;
//! - the task completions not written yet: written with one multi-row update before the next
//!   statement of any kind runs, and at the latest before the transaction commits;
//! - the rows of the cases it creates, written the same way (see `new_rows`), before the
//!   completions.
//!
//! Both are kept only while nothing else touches the database (but for statements that only
//! insert rows no kept-back write or remembered case concerns, see [`Tx::inserting`]). Every statement run in a
//! transaction goes through [`Tx::before_statement`] first (see `query::Ex`), which writes the
//! completions kept back, then forgets the cases. So whatever code runs a statement that changes
//! a case, no stale copy of it is left behind; the writes keep the order they were made in; and a
//! deferred completion updates the remembered task in the same step, so the copy stays the same
//! as the database would read.
//!
//! Only a transaction that holds its events back keeps anything here (a batch decided without
//! savepoints, see [`Tx::hold_events`]). There any failure gives up the whole batch, so a deferred
//! write that fails can never be counted against another command's savepoint.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::case_stage::CaseStage;
use super::query::Conn;
use super::{Sql, Tx, rows_per_statement, sql};
use crate::states::TaskStatus;

/// What a transaction keeps (see the module's documentation).
#[derive(Default)]
pub(super) struct Memory {
    /// Whether it keeps anything: it holds its events back.
    pub(super) on: bool,
    cases: HashMap<String, CaseStage>,
    /// The remembered cases by id, and each remembered task's case, so that a completion or an
    /// insert finds its case without a scan of them all (a batch may remember thousands).
    case_refs: HashMap<i64, String>,
    task_cases: HashMap<i64, String>,
    completions: Vec<Completion>,
    /// Statements run so far in the transaction.
    statements: u64,
}

/// A task completed, as `complete_task` writes it.
#[derive(Debug, Clone)]
pub struct Completion {
    pub task_id: i64,
    pub at: DateTime<Utc>,
    pub by: String,
    pub outcome: Option<String>,
}

/// A point in a transaction's statements: rows read at it are current while no other statement
/// has run (see [`Tx::as_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsOf(u64);

/// The columns of one completion's `VALUES` entry.
const COMPLETION_COLUMNS: usize = 4;

impl Tx {
    /// Where the transaction is in its statements now: rows just read or written are current
    /// as of this point.
    pub fn as_of(&self) -> AsOf {
        AsOf(self.memory.statements)
    }

    /// Remembers a case with its open stage and that stage's tasks, as they were `as_of`: kept
    /// only in a transaction that keeps anything, and only when no statement ran since.
    pub fn remember(&mut self, as_of: AsOf, case: CaseStage) {
        if self.memory.on && as_of == self.as_of() {
            let case_ref = &case.case.case_ref;
            let memory = &mut self.memory;
            memory.case_refs.insert(case.case.id, case_ref.clone());
            for task in case.open.iter().flat_map(|(_, tasks)| tasks) {
                memory.task_cases.insert(task.id, case_ref.clone());
            }
            memory.cases.insert(case_ref.clone(), case);
        }
    }

    /// Whether this transaction remembers the cases it reads (see [`Tx::remember`]).
    pub fn keeps_cases(&self) -> bool {
        self.memory.on
    }

    /// The case `case_ref` with its open stage and tasks, as the database holds them now, if
    /// this transaction remembers it.
    pub fn remembered(&self, case_ref: &str) -> Option<CaseStage> {
        self.memory.cases.get(case_ref).cloned()
    }

    /// Completes a task: at once, or, in a transaction that keeps its writes back, with the
    /// completions around it (the remembered task completed at the same time).
    pub async fn complete_task(&mut self, done: Completion) -> Result<(), sqlx::Error> {
        if !self.memory.on {
            let conn = self.before_statement().await?;
            return write_completions(conn, std::slice::from_ref(&done)).await;
        }
        let kept_back = self.new_rows.complete(&done);
        if !kept_back
            && self
                .memory
                .completions
                .iter()
                .any(|c| c.task_id == done.task_id)
        {
            // One row per task in an update: the earlier completion goes first.
            self.before_statement().await?;
        }
        let memory = &mut self.memory;
        let case = (memory.task_cases.get(&done.task_id)).and_then(|r| memory.cases.get_mut(r));
        if let Some((_, tasks)) = case.and_then(|c| c.open.as_mut())
            && let Some(task) = tasks.iter_mut().find(|t| t.id == done.task_id)
        {
            task.status = TaskStatus::Completed;
            task.completed_at = Some(done.at);
            task.completed_by = Some(done.by.clone());
            task.outcome = done.outcome.clone();
        }
        if !kept_back {
            self.memory.completions.push(done);
        }
        Ok(())
    }

    /// Where to run a statement that only inserts rows: a new case's own row (`None`, with
    /// `ON CONFLICT DO NOTHING`, so that it changes nothing when the case exists), or rows of the
    /// case with this id (a stage, its tasks). New rows change no row a kept-back completion
    /// writes, nor any remembered case but their own: so, unless their case is remembered, such
    /// a statement runs with the completions still kept back and the other cases still
    /// remembered. A new case's three inserts then cost no write of the completions before them.
    pub fn inserting(&mut self, case: Option<i64>) -> super::Ex<'_> {
        super::Ex::Inserting(self, case)
    }

    /// Before a statement that only inserts rows of `case` (see [`Tx::inserting`]).
    pub(super) async fn before_insert(
        &mut self,
        case: Option<i64>,
    ) -> Result<Conn<'_>, sqlx::Error> {
        let remembered = case.is_some_and(|id| self.memory.case_refs.contains_key(&id));
        // A new case's kept-back row must be there for its insert to find it.
        if remembered || !self.new_rows.is_empty() {
            return self.before_statement().await;
        }
        // Rows read before it are not taken for current after it (see `remember`).
        self.memory.statements += 1;
        self.new_rows.statement_ran();
        Ok(Conn::from(&mut self.conn))
    }

    /// Before a statement runs in this transaction: writes the completions kept back, forgets
    /// the cases remembered, and gives the connection.
    pub(super) async fn before_statement(&mut self) -> Result<Conn<'_>, sqlx::Error> {
        self.memory.cases.clear();
        self.memory.case_refs.clear();
        self.memory.task_cases.clear();
        self.memory.statements += 1;
        if !self.new_rows.is_empty() {
            let backend = self.backend();
            self.new_rows
                .write(backend, Conn::from(&mut self.conn))
                .await?;
        }
        self.new_rows.statement_ran();
        if !self.memory.completions.is_empty() {
            let done = std::mem::take(&mut self.memory.completions);
            write_completions(Conn::from(&mut self.conn), &done).await?;
        }
        Ok(Conn::from(&mut self.conn))
    }
}

/// Writes completions, as many to a statement as the bound values allow.
async fn write_completions(mut on: Conn<'_>, done: &[Completion]) -> Result<(), sqlx::Error> {
    if let [one] = done {
        sql("UPDATE tasks SET status = 'completed', completed_at = $1, completed_by = $2, outcome = $3, \
             next_check_at = NULL WHERE id = $4")
            .bind(one.at)
            .bind(one.by.as_str())
            .bind(one.outcome.as_deref())
            .bind(one.task_id)
            .execute_on(on)
            .await?;
        return Ok(());
    }
    for chunk in done.chunks(rows_per_statement(COMPLETION_COLUMNS)) {
        let mut update = Sql::sized(|m| {
            format!(
                "UPDATE tasks SET status = 'completed', completed_at = v.column2, completed_by = v.column3, \
                 outcome = v.column4, next_check_at = NULL FROM (VALUES {}) AS v WHERE tasks.id = v.column1",
                m.values(chunk.len(), COMPLETION_COLUMNS, 1)
            )
        });
        for c in chunk {
            update = update
                .bind(c.task_id)
                .bind(c.at)
                .bind(c.by.as_str())
                .bind(c.outcome.as_deref());
        }
        update.execute_on(on.reborrow()).await?;
    }
    Ok(())
}
