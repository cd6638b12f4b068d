//! The rows of a stage entry and its tasks, as entering the stage writes them: inserted at once,
//! or, for the first stage of a case a batch creates, kept back with the case's row and written
//! with the batch's others (see `db::new_rows`). Both ways write the same values; the rows given
//! back are what the database holds, or will.

use chrono::{DateTime, Utc};

use super::deadlines::Clock;
use crate::db::rows::{self, CaseRow, StageRow, TaskRow};
use crate::db::{NewStage, NewTask, Sql, Tx, rows_per_statement, sql};
use crate::definitions::{Activation, Definition, Stage, Task};
use crate::states::{SlaState, StageStatus, TaskStatus};

/// A stage to write: its case, its owner's line manager, its clock, and the clocks of the tasks
/// that start at once.
pub struct StageToWrite<'a> {
    pub def: &'a Definition,
    pub case: &'a CaseRow,
    pub stage: &'a Stage,
    pub line_manager: Option<&'a str>,
    pub clock: &'a Clock,
    pub starting: &'a [(&'a Task, Clock)],
    pub now: DateTime<Utc>,
}

impl StageToWrite<'_> {
    /// Writes the stage entry, numbered after the case's earlier entries of the same stage, and
    /// its tasks; gives their rows, the tasks in id order.
    pub async fn write(&self, tx: &mut Tx) -> Result<(StageRow, Vec<TaskRow>), sqlx::Error> {
        let count = self.stage.tasks.len();
        if let Some((stage_id, task_ids)) = tx.new_stage_ids(self.case.id, count).await? {
            // A new case's first stage: the first entry of any stage.
            let stage = NewStage {
                row: self.stage_row(stage_id, 1),
                next_check_at: self.clock.first_check,
                target_day: self.clock.target_day(),
            };
            let tasks: Vec<NewTask> = self
                .task_rows(stage_id)
                .into_iter()
                .zip(task_ids)
                .map(|(mut task, id)| {
                    task.row.id = id;
                    task
                })
                .collect();
            let written = (
                stage.row.clone(),
                tasks.iter().map(|t| t.row.clone()).collect(),
            );
            tx.add_stage(stage, tasks);
            return Ok(written);
        }
        let stage = self.insert_stage(tx).await?;
        let mut tasks = self.insert_tasks(tx, stage.id).await?;
        tasks.sort_by_key(|t| t.id);
        Ok((stage, tasks))
    }

    /// The stage's row as written, but for its id and entry number.
    fn stage_row(&self, id: i64, entry: i64) -> StageRow {
        StageRow {
            id,
            case_id: self.case.id,
            stage: self.stage.key.clone(),
            master_stage: self.stage.master.clone(),
            entry,
            status: StageStatus::Open,
            owner: self.case.owner.clone(),
            line_manager: self.line_manager.map(str::to_string),
            entered_at: self.now,
            completed_at: None,
            target_at: self.clock.dates.map(|d| d.target),
            amber_at: self.clock.dates.and_then(|d| d.amber),
            sla_state: self.clock.state(),
        }
    }

    async fn insert_stage(&self, tx: &mut Tx) -> Result<StageRow, sqlx::Error> {
        let row = self.stage_row(0, 0);
        sql(concat!(
            "INSERT INTO stages (case_id, stage, master_stage, entry, owner, line_manager, entered_at, \
             target_at, amber_at, sla_state, next_check_at, target_day) \
             VALUES ($1, $2, $3, (SELECT COUNT(*) + 1 FROM stages WHERE case_id = $1 AND stage = $2), \
             $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ",
            rows::stage_columns!()
        ))
        .bind(row.case_id)
        .bind(row.stage)
        .bind(row.master_stage)
        .bind(row.owner)
        .bind(row.line_manager)
        .bind(row.entered_at)
        .bind(row.target_at)
        .bind(row.amber_at)
        .bind(row.sla_state)
        .bind(self.clock.first_check)
        .bind(self.clock.target_day())
        .fetch_one(tx.inserting(Some(self.case.id)))
        .await
    }

    /// The stage's tasks in the definition's order, as written but for their ids: those that
    /// start at once active, with their clocks.
    fn task_rows(&self, stage_id: i64) -> Vec<NewTask> {
        self.stage
            .tasks
            .iter()
            .map(|task| {
                let clock = self
                    .starting
                    .iter()
                    .find(|(t, _)| t.key == task.key)
                    .map(|(_, c)| c);
                let row = TaskRow {
                    id: 0,
                    case_id: self.case.id,
                    stage_id,
                    task: task.key.clone(),
                    mandatory: task.mandatory,
                    activation: match task.activation {
                        Activation::Auto => "auto",
                        Activation::Manual => "manual",
                    }
                    .to_string(),
                    status: if clock.is_some() {
                        TaskStatus::Active
                    } else {
                        TaskStatus::Waiting
                    },
                    owner: self.case.owner.clone(),
                    line_manager: self.line_manager.map(str::to_string),
                    role_ref: Some(task.role.clone().unwrap_or(self.def.team_role.clone())),
                    activated_at: clock.map(|_| self.now),
                    completed_at: None,
                    completed_by: None,
                    outcome: None,
                    skip_reason: None,
                    hold_until: None,
                    hold_reason: None,
                    held_since: None,
                    held_seconds: 0,
                    target_at: clock.and_then(|c| c.dates).map(|d| d.target),
                    amber_at: clock.and_then(|c| c.dates).and_then(|d| d.amber),
                    sla_state: clock.map_or(SlaState::None, Clock::state),
                };
                NewTask {
                    row,
                    next_check_at: clock.and_then(|c| c.first_check),
                    target_day: clock.and_then(Clock::target_day),
                }
            })
            .collect()
    }

    /// Inserts the tasks with as few statements as the number of bound values allows.
    async fn insert_tasks(&self, tx: &mut Tx, stage_id: i64) -> Result<Vec<TaskRow>, sqlx::Error> {
        const COLUMNS: usize = 15;
        let tasks = self.task_rows(stage_id);
        let mut written = Vec::with_capacity(tasks.len());
        for chunk in tasks.chunks(rows_per_statement(COLUMNS)) {
            let mut insert = Sql::sized(|marks| {
                format!(
                    "INSERT INTO tasks (case_id, stage_id, task, mandatory, activation, owner, line_manager, role_ref, \
                     status, activated_at, target_at, amber_at, sla_state, next_check_at, target_day) VALUES {} RETURNING {}",
                    marks.values(chunk.len(), COLUMNS, 1),
                    *rows::TASK_RETURNING
                )
            });
            for task in chunk {
                insert = task.bind(insert);
            }
            let inserted = insert.fetch_all::<TaskRow>(tx.inserting(Some(self.case.id)));
            written.extend(inserted.await?);
        }
        Ok(written)
    }
}
