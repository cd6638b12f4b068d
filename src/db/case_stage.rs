//! A case, its open stage and the stage's tasks, read in one statement: what every task command
//! looks up before it changes anything. Each lookup is a round trip to the database (on SQLite,
//! to its connection's thread), so one join instead of three reads makes a task command two
//! statements cheaper.
//!
//! The case's columns come as they are; the stage's and the task's, which share many names with
//! the case's, are prefixed (`s_`, `t_`) and may be NULL (a case with no open stage, a stage
//! with no tasks).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};

use super::rows::{CaseRow, StageRow, TaskRow, case_columns, task_columns};
use super::{Tx, sql};
use crate::states::{SlaState, StageStatus, TaskStatus};

/// The case's columns, each named by the `c.` of the join.
static CASE_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    case_columns!()
        .split(", ")
        .map(|c| format!("c.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
});

/// The task's columns, each as `t_<name>`.
static TASK_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    task_columns!()
        .split(", ")
        .map(|c| {
            let c = c.trim();
            format!("{c} AS t_{}", c.trim_start_matches("t."))
        })
        .collect::<Vec<_>>()
        .join(", ")
});

/// The statement: every task of the case's open stage (the latest, should there be two), in id
/// order, each row with the case and the stage; one row with no stage or task when there is none.
static SELECT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {}, s.id AS s_id, s.stage AS s_stage, s.master_stage AS s_master_stage, \
         s.entry AS s_entry, s.status AS s_status, s.owner AS s_owner, s.line_manager AS s_line_manager, \
         s.entered_at AS s_entered_at, s.completed_at AS s_completed_at, s.target_at AS s_target_at, \
         s.amber_at AS s_amber_at, s.sla_state AS s_sla_state, {} \
         FROM cases c \
         LEFT JOIN stages s ON s.id = (SELECT id FROM stages WHERE case_id = c.id AND status = 'open' ORDER BY id DESC LIMIT 1) \
         LEFT JOIN tasks t ON t.stage_id = s.id \
         WHERE c.case_ref = $1 ORDER BY t.id",
        *CASE_COLUMNS, *TASK_COLUMNS
    )
});

/// A case with its open stage and its tasks.
#[derive(Debug, Clone)]
pub struct CaseStage {
    pub case: CaseRow,
    /// The open stage and its tasks in id order; `None` when the case has no open stage.
    pub open: Option<(StageRow, Vec<TaskRow>)>,
}

/// The case `case_ref` with its open stage and that stage's tasks; `None` when there is no such
/// case. Asked of the transaction's memory first (a batch remembers the cases its commands
/// touch, see `Tx::remember`), and remembered there.
pub async fn case_and_open_stage(
    tx: &mut Tx,
    case_ref: &str,
) -> Result<Option<CaseStage>, sqlx::Error> {
    if let Some(remembered) = tx.remembered(case_ref) {
        return Ok(Some(remembered));
    }
    let rows: Vec<Joined> = sql(SELECT.as_str())
        .bind(case_ref)
        .fetch_all(&mut *tx)
        .await?;
    let mut rows = rows.into_iter();
    let Some(first) = rows.next() else {
        return Ok(None);
    };
    let stage = first.stage.row(first.case.id);
    let mut tasks: Vec<TaskRow> = first.task.row().into_iter().collect();
    tasks.extend(rows.filter_map(|r| r.task.row()));
    let found = CaseStage {
        case: first.case,
        open: stage.map(|s| (s, tasks)),
    };
    if tx.keeps_cases() {
        tx.remember(tx.as_of(), found.clone());
    }
    Ok(Some(found))
}

#[derive(sqlx::FromRow)]
struct Joined {
    #[sqlx(flatten)]
    case: CaseRow,
    #[sqlx(flatten)]
    stage: StageColumns,
    #[sqlx(flatten)]
    task: TaskColumns,
}

#[derive(sqlx::FromRow)]
struct StageColumns {
    s_id: Option<i64>,
    s_stage: Option<String>,
    s_master_stage: Option<String>,
    s_entry: Option<i64>,
    s_status: Option<StageStatus>,
    s_owner: Option<String>,
    s_line_manager: Option<String>,
    s_entered_at: Option<DateTime<Utc>>,
    s_completed_at: Option<DateTime<Utc>>,
    s_target_at: Option<DateTime<Utc>>,
    s_amber_at: Option<DateTime<Utc>>,
    s_sla_state: Option<SlaState>,
}

impl StageColumns {
    fn row(self, case_id: i64) -> Option<StageRow> {
        Some(StageRow {
            id: self.s_id?,
            case_id,
            stage: self.s_stage?,
            master_stage: self.s_master_stage?,
            entry: self.s_entry?,
            status: self.s_status?,
            owner: self.s_owner,
            line_manager: self.s_line_manager,
            entered_at: self.s_entered_at?,
            completed_at: self.s_completed_at,
            target_at: self.s_target_at,
            amber_at: self.s_amber_at,
            sla_state: self.s_sla_state?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct TaskColumns {
    t_id: Option<i64>,
    t_case_id: Option<i64>,
    t_stage_id: Option<i64>,
    t_task: Option<String>,
    t_mandatory: Option<bool>,
    t_activation: Option<String>,
    t_status: Option<TaskStatus>,
    t_owner: Option<String>,
    t_line_manager: Option<String>,
    t_role_ref: Option<String>,
    t_activated_at: Option<DateTime<Utc>>,
    t_completed_at: Option<DateTime<Utc>>,
    t_completed_by: Option<String>,
    t_outcome: Option<String>,
    t_skip_reason: Option<String>,
    t_hold_until: Option<DateTime<Utc>>,
    t_hold_reason: Option<String>,
    t_held_since: Option<DateTime<Utc>>,
    t_held_seconds: Option<i64>,
    t_target_at: Option<DateTime<Utc>>,
    t_amber_at: Option<DateTime<Utc>>,
    t_sla_state: Option<SlaState>,
}

impl TaskColumns {
    fn row(self) -> Option<TaskRow> {
        Some(TaskRow {
            id: self.t_id?,
            case_id: self.t_case_id?,
            stage_id: self.t_stage_id?,
            task: self.t_task?,
            mandatory: self.t_mandatory?,
            activation: self.t_activation?,
            status: self.t_status?,
            owner: self.t_owner,
            line_manager: self.t_line_manager,
            role_ref: self.t_role_ref,
            activated_at: self.t_activated_at,
            completed_at: self.t_completed_at,
            completed_by: self.t_completed_by,
            outcome: self.t_outcome,
            skip_reason: self.t_skip_reason,
            hold_until: self.t_hold_until,
            hold_reason: self.t_hold_reason,
            held_since: self.t_held_since,
            held_seconds: self.t_held_seconds?,
            target_at: self.t_target_at,
            amber_at: self.t_amber_at,
            sla_state: self.t_sla_state?,
        })
    }
}
