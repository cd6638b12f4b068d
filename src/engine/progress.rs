//! Progression: entering stages, activating tasks, completing stages and cases. Each function
//! runs inside the caller's transaction and writes the events for what it changes, so a command
//! and everything it causes commit together.

use chrono::{DateTime, Utc};

use super::context::Ctx;
use super::deadlines;
use super::stage_rows::StageToWrite;
use crate::db::rows::{self, CaseRow, StageRow, TaskRow};
use crate::db::{Tx, sql};
use crate::definitions::{Activation, Definition, Stage, Successors};
use crate::events::kinds::{self, Kind};
use crate::events::{self, ENGINE};
use crate::states::TaskStatus;

/// Enters `stage` for the case: writes the stage with the case owner and their line manager and
/// its clock, and its tasks, those that start at once (automatic, waiting for nothing) already
/// active with theirs; then the events, `leading` first (those of the change that led into the
/// stage), in the order the changes happened.
pub async fn enter_stage(
    tx: &mut Tx,
    (def, case, stage): (&Definition, &CaseRow, &Stage),
    leading: Vec<events::Pending<'_>>,
    ctx: Ctx<'_>,
) -> Result<Entered, sqlx::Error> {
    let line_manager = rows::line_manager_of(&mut *tx, case.owner.as_deref()).await?;
    let clock = deadlines::stage_clock(ctx, case, stage);
    // Nothing of a new entry is done yet: what starts at once is what waits for nothing.
    let mut starting = Vec::new();
    for task in stage
        .tasks
        .iter()
        .filter(|t| t.activation == Activation::Auto && t.depends_on.is_empty())
    {
        let duty_start = match &task.duty {
            Some(duty) => super::duty_clock::start_of(tx, case.id, duty).await?,
            None => None,
        };
        let stage_dates = (ctx.now, clock.dates.map(|d| d.target));
        starting.push((
            task,
            deadlines::task_clock(ctx, case, task, stage_dates, duty_start),
        ));
    }
    let (stage_row, tasks) = StageToWrite {
        def,
        case,
        stage,
        line_manager: line_manager.as_deref(),
        clock: &clock,
        starting: &starting,
        now: ctx.now,
    }
    .write(tx)
    .await?;
    let entry = stage_row.entry;
    let as_of = tx.as_of();
    let at = case.event_target();
    let entered = Kind::StageEntered(kinds::StageEntered {
        stage: stage.key.clone(),
        master_stage: stage.master.clone(),
        entry,
        owner: case.owner.clone(),
        line_manager: line_manager.clone(),
    });
    let event = |actor, event| events::Pending::new(at, ctx.now, actor, event);
    let mut pending = leading;
    pending.extend(clock.events.iter().map(|e| event(ENGINE, e.clone())));
    pending.push(event(ctx.actor, entered));
    for (task, clock) in &starting {
        pending.extend(clock.events.iter().map(|e| event(ENGINE, e.clone())));
        let activated = activated(stage, &task.key, Activation::Auto, case.owner.clone());
        pending.push(event(ctx.actor, activated));
        if task.makes_pack {
            events::record_all(tx, &std::mem::take(&mut pending)).await?;
            let task_id = tasks.iter().find(|t| t.task == task.key).map(|t| t.id);
            super::pack_request::request(tx, case, task_id, ENGINE, ctx.now).await?;
        }
    }
    events::record_all(tx, &pending).await?;
    Ok(Entered {
        stage: stage_row,
        tasks,
        as_of,
    })
}

/// A stage entered: its row and its tasks' as written, current as of `as_of` (see
/// `Tx::remember`).
pub struct Entered {
    pub stage: StageRow,
    pub tasks: Vec<TaskRow>,
    pub as_of: crate::db::AsOf,
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
    let activated = activated(stage, &task.task, how, task.owner.clone());
    events::record(tx, case.event_target(), ctx.now, ctx.actor, activated).await?;
    if stage.task(&task.task).is_some_and(|d| d.makes_pack) {
        super::pack_request::request(tx, case, Some(task.id), ENGINE, ctx.now).await?;
    }
    Ok(())
}

/// The `task_activated` event of a task of `stage`.
fn activated(stage: &Stage, task: &str, how: Activation, owner: Option<String>) -> Kind {
    Kind::TaskActivated(kinds::TaskActivated {
        stage: stage.key.clone(),
        task: task.to_string(),
        activation: how,
        owner,
    })
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
/// `tasks` are the stage's tasks as they were read, this one among them.
pub async fn complete_task(
    tx: &mut Tx,
    (def, case): (&Definition, &CaseRow),
    (stage_row, mut tasks): (&StageRow, Vec<TaskRow>),
    task: &TaskRow,
    (at, outcome): (DateTime<Utc>, Option<&str>),
    ctx: Ctx<'_>,
) -> Result<(), sqlx::Error> {
    tx.complete_task(crate::db::Completion {
        task_id: task.id,
        at,
        by: ctx.actor.to_string(),
        outcome: outcome.map(str::to_string),
    })
    .await?;
    let completed = Kind::TaskCompleted(kinds::TaskCompleted {
        stage: stage_row.stage.clone(),
        task: task.task.clone(),
        at,
        outcome_given: outcome.is_some(),
    });
    events::record(tx, case.event_target(), ctx.now, ctx.actor, completed).await?;
    mark(&mut tasks, task.id, TaskStatus::Completed);
    after_task_done(tx, (def, case), (stage_row, tasks), ctx).await
}

/// Sets a task's status in rows read before the statement that changed it.
pub fn mark(tasks: &mut [TaskRow], id: i64, status: TaskStatus) {
    if let Some(row) = tasks.iter_mut().find(|t| t.id == id) {
        row.status = status;
    }
}

/// After a task of the stage finished: activate what now may start, and complete the stage (and
/// move the case on) once every mandatory task is done. `tasks` are the stage's tasks as they are
/// now, the finished one finished.
pub async fn after_task_done(
    tx: &mut Tx,
    (def, case): (&Definition, &CaseRow),
    (stage_row, tasks): (&StageRow, Vec<TaskRow>),
    ctx: Ctx<'_>,
) -> Result<(), sqlx::Error> {
    let Some(stage) = def.stage(&stage_row.stage) else {
        return Ok(());
    };
    for row in ready(stage, &tasks) {
        activate(tx, case, stage, row, Activation::Auto, ctx).await?;
    }
    // Activation starts tasks and finishes none, so the rows read before it still tell whether
    // every mandatory task is done.
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
    let completed = events::Pending::new(at, ctx.now, ctx.actor, completed);
    let by_engine = |event| events::Pending::new(at, ctx.now, ENGINE, event);
    match &stage.next {
        Successors::One(next) => {
            let next = def
                .stage(next)
                .expect("checked when the definition was compiled");
            let ctx = Ctx {
                actor: ENGINE,
                ..ctx
            };
            enter_stage(tx, (def, case, next), vec![completed], ctx).await?;
        }
        Successors::Final => {
            sql("UPDATE cases SET status = 'completed', outcome = 'completed', closed_at = $1 WHERE id = $2")
                .bind(ctx.now)
                .bind(case.id)
                .execute(&mut *tx)
                .await?;
            let closed = Kind::CaseCompleted(kinds::CaseCompleted {
                last_stage: stage.key.clone(),
            });
            events::record_all(tx, &[completed, by_engine(closed)]).await?;
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
            events::record_all(tx, &[completed, by_engine(needed)]).await?;
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
