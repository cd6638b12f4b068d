//! Progression: entering stages, activating tasks, completing stages and cases. Each function
//! runs inside the caller's transaction and writes the events for what it changes, so a command
//! and everything it causes commit together.

use chrono::{DateTime, Utc};

use super::context::Ctx;
use crate::db::rows::{self, CaseRow, StageRow, TaskRow};
use crate::db::{Tx, sql};
use crate::definitions::{Activation, Definition, Stage, Successors};
use crate::events::kinds::{self, Kind};
use crate::events::{self, ENGINE};

/// Enters `stage` for the case: writes the stage with the case owner and their line manager,
/// creates its tasks and activates those that start at once.
pub async fn enter_stage(
    tx: &mut Tx,
    def: &Definition,
    case: &CaseRow,
    stage: &Stage,
    ctx: Ctx<'_>,
) -> Result<i64, sqlx::Error> {
    let entry: i64 = sql("SELECT COUNT(*) + 1 FROM stages WHERE case_id = $1 AND stage = $2")
        .bind(case.id)
        .bind(&stage.key)
        .scalar(&mut *tx)
        .await?;
    let line_manager = rows::line_manager_of(&mut *tx, case.owner.as_deref()).await?;
    let stage_id: i64 = sql(
        "INSERT INTO stages (case_id, stage, master_stage, entry, owner, line_manager, entered_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(case.id)
    .bind(&stage.key)
    .bind(&stage.master)
    .bind(entry)
    .bind(case.owner.as_deref())
    .bind(line_manager.as_deref())
    .bind(ctx.now)
    .scalar(&mut *tx)
    .await?;
    super::deadlines::start_stage_clock(tx, case, stage, stage_id, ctx).await?;
    let entered = Kind::StageEntered(kinds::StageEntered {
        stage: stage.key.clone(),
        master_stage: stage.master.clone(),
        entry,
        owner: case.owner.clone(),
        line_manager: line_manager.clone(),
    });
    events::record(tx, case.event_target(), ctx.now, ctx.actor, entered).await?;
    for task in &stage.tasks {
        sql(
            "INSERT INTO tasks (case_id, stage_id, task, mandatory, activation, owner, line_manager, role_ref) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(case.id)
        .bind(stage_id)
        .bind(&task.key)
        .bind(task.mandatory)
        .bind(match task.activation {
            Activation::Auto => "auto",
            Activation::Manual => "manual",
        })
        .bind(case.owner.as_deref())
        .bind(line_manager.as_deref())
        .bind(task.role.as_deref().unwrap_or(&def.team_role))
        .execute(&mut *tx)
        .await?;
    }
    activate_ready(tx, case, stage, stage_id, ctx).await?;
    Ok(stage_id)
}

/// Activates a waiting task.
pub async fn activate(
    tx: &mut Tx,
    case: &CaseRow,
    stage: &Stage,
    task: &TaskRow,
    how: Activation,
    ctx: Ctx<'_>,
) -> Result<(), sqlx::Error> {
    sql("UPDATE tasks SET status = 'active', activated_at = $1 WHERE id = $2 AND status = 'waiting'")
        .bind(ctx.now)
        .bind(task.id)
        .execute(&mut *tx)
        .await?;
    if let Some(def) = stage.task(&task.task) {
        super::deadlines::start_task_clock(tx, case, def, task.id, task.stage_id, ctx).await?;
    }
    let activated = Kind::TaskActivated(kinds::TaskActivated {
        stage: stage.key.clone(),
        task: task.task.clone(),
        activation: how,
        owner: task.owner.clone(),
    });
    events::record(tx, case.event_target(), ctx.now, ctx.actor, activated).await?;
    if stage.task(&task.task).is_some_and(|d| d.makes_pack) {
        super::pack_request::request(tx, case, Some(task.id), ENGINE, ctx.now).await?;
    }
    Ok(())
}

/// Activates every automatic task of the stage whose dependencies are all done.
async fn activate_ready(
    tx: &mut Tx,
    case: &CaseRow,
    stage: &Stage,
    stage_id: i64,
    ctx: Ctx<'_>,
) -> Result<(), sqlx::Error> {
    let tasks = rows::tasks_of_stage(&mut *tx, stage_id).await?;
    for row in ready(stage, &tasks) {
        activate(tx, case, stage, row, Activation::Auto, ctx).await?;
    }
    Ok(())
}

/// Waiting automatic tasks whose dependencies are all completed or skipped.
pub fn ready<'t>(stage: &Stage, tasks: &'t [TaskRow]) -> Vec<&'t TaskRow> {
    tasks
        .iter()
        .filter(|t| t.status == crate::states::TaskStatus::Waiting)
        .filter(|t| {
            stage
                .task(&t.task)
                .is_some_and(|d| d.activation == Activation::Auto)
        })
        .filter(|t| unmet_dependencies(stage, tasks, &t.task).is_empty())
        .collect()
}

/// The dependencies of `task` that are not yet completed or skipped.
pub fn unmet_dependencies<'s>(stage: &'s Stage, tasks: &[TaskRow], task: &str) -> Vec<&'s str> {
    let Some(def) = stage.task(task) else {
        return Vec::new();
    };
    def.depends_on
        .iter()
        .filter(|dep| !tasks.iter().any(|t| &t.task == *dep && t.is_done()))
        .map(String::as_str)
        .collect()
}

/// Completes an active task at `at` (by `ctx.actor`), then lets what it held back go ahead: the
/// one way a task is completed, whether a person did it or the engine (a housing pack).
#[allow(clippy::too_many_arguments)]
pub async fn complete_task(
    tx: &mut Tx,
    def: &Definition,
    case: &CaseRow,
    stage_row: &StageRow,
    task: &TaskRow,
    at: DateTime<Utc>,
    outcome: Option<&str>,
    ctx: Ctx<'_>,
) -> Result<(), sqlx::Error> {
    sql("UPDATE tasks SET status = 'completed', completed_at = $1, completed_by = $2, outcome = $3, next_check_at = NULL WHERE id = $4")
        .bind(at)
        .bind(ctx.actor)
        .bind(outcome)
        .bind(task.id)
        .execute(&mut *tx)
        .await?;
    let completed = Kind::TaskCompleted(kinds::TaskCompleted {
        stage: stage_row.stage.clone(),
        task: task.task.clone(),
        at,
        outcome_given: outcome.is_some(),
    });
    events::record(tx, case.event_target(), ctx.now, ctx.actor, completed).await?;
    after_task_done(tx, def, case, stage_row, ctx).await
}

/// After a task of the stage finished: activate what now may start, and complete the stage (and
/// move the case on) once every mandatory task is done.
pub async fn after_task_done(
    tx: &mut Tx,
    def: &Definition,
    case: &CaseRow,
    stage_row: &StageRow,
    ctx: Ctx<'_>,
) -> Result<(), sqlx::Error> {
    let Some(stage) = def.stage(&stage_row.stage) else {
        return Ok(());
    };
    activate_ready(tx, case, stage, stage_row.id, ctx).await?;
    let tasks = rows::tasks_of_stage(&mut *tx, stage_row.id).await?;
    if tasks.iter().any(|t| t.mandatory && !t.is_done()) {
        return Ok(());
    }
    finish_stage(tx, case, stage_row, "completed", "stage completed", ctx).await?;
    let at = case.event_target();
    let completed = Kind::StageCompleted(kinds::StageCompleted {
        stage: stage.key.clone(),
        master_stage: stage.master.clone(),
        entry: stage_row.entry,
    });
    events::record(tx, at, ctx.now, ctx.actor, completed).await?;
    match &stage.next {
        Successors::Final => {
            sql("UPDATE cases SET status = 'completed', outcome = 'completed', closed_at = $1 WHERE id = $2")
                .bind(ctx.now)
                .bind(case.id)
                .execute(&mut *tx)
                .await?;
            let completed = Kind::CaseCompleted(kinds::CaseCompleted {
                last_stage: stage.key.clone(),
            });
            events::record(tx, at, ctx.now, ENGINE, completed).await?;
        }
        Successors::One(next) => {
            let next = def
                .stage(next)
                .expect("checked when the definition was compiled");
            enter_stage(
                tx,
                def,
                case,
                next,
                Ctx {
                    actor: ENGINE,
                    ..ctx
                },
            )
            .await?;
        }
        Successors::Choice(choices) => {
            sql("UPDATE cases SET status = 'awaiting_advance' WHERE id = $1")
                .bind(case.id)
                .execute(&mut *tx)
                .await?;
            let needed = Kind::AdvanceNeeded(kinds::AdvanceNeeded {
                after_stage: stage.key.clone(),
                choices: choices.clone(),
            });
            events::record(tx, at, ctx.now, ENGINE, needed).await?;
        }
    }
    Ok(())
}

/// Ends a stage entry with `status` and cancels its tasks that are still open.
pub async fn finish_stage(
    tx: &mut Tx,
    case: &CaseRow,
    stage_row: &StageRow,
    status: &str,
    why: &str,
    ctx: Ctx<'_>,
) -> Result<(), sqlx::Error> {
    sql("UPDATE stages SET status = $1, completed_at = $2, next_check_at = NULL WHERE id = $3")
        .bind(status)
        .bind(ctx.now)
        .bind(stage_row.id)
        .execute(&mut *tx)
        .await?;
    for t in rows::tasks_of_stage(&mut *tx, stage_row.id)
        .await?
        .iter()
        .filter(|t| t.is_open())
    {
        sql("UPDATE tasks SET status = 'cancelled', completed_at = $1, next_check_at = NULL WHERE id = $2")
            .bind(ctx.now)
            .bind(t.id)
            .execute(&mut *tx)
            .await?;
        let cancelled = Kind::TaskCancelled(kinds::TaskCancelled {
            stage: stage_row.stage.clone(),
            task: t.task.clone(),
            reason: Some(why.into()),
        });
        events::record(tx, case.event_target(), ctx.now, ctx.actor, cancelled).await?;
    }
    Ok(())
}

/// Reassigns the case and records `owner_changed`: the one reassignment, whether the CRM asks for
/// it or an escalation rule does (with its `reason`). Allocation sets the first owner instead.
pub async fn change_owner(
    tx: &mut Tx,
    case: &CaseRow,
    to: &str,
    reason: Option<String>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    set_owner(tx, case, to).await?;
    let changed = Kind::OwnerChanged(kinds::OwnerChanged {
        from: case.owner.clone(),
        to: to.into(),
        reason,
    });
    events::record(tx, case.event_target(), now, actor, changed).await?;
    Ok(())
}

/// Gives the case, its open stages and its open tasks a new owner (and the owner's line manager).
pub async fn set_owner(tx: &mut Tx, case: &CaseRow, owner: &str) -> Result<(), sqlx::Error> {
    let line_manager = rows::line_manager_of(&mut *tx, Some(owner)).await?;
    sql("UPDATE cases SET owner = $1, allocation = 'allocated', queue_role = NULL WHERE id = $2")
        .bind(owner)
        .bind(case.id)
        .execute(&mut *tx)
        .await?;
    sql("UPDATE stages SET owner = $1, line_manager = $2 WHERE case_id = $3 AND status = 'open'")
        .bind(owner)
        .bind(line_manager.as_deref())
        .bind(case.id)
        .execute(&mut *tx)
        .await?;
    sql("UPDATE tasks SET owner = $1, line_manager = $2 WHERE case_id = $3 AND status IN ('waiting', 'active', 'on_hold')")
        .bind(owner)
        .bind(line_manager.as_deref())
        .bind(case.id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
