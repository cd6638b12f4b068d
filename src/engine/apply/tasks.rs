//! Task commands: activate, complete, skip, hold and release a task of the case's open stage.

use chrono::{DateTime, Utc};

use super::lookup::{
    Handled, InOpenStage, known_user, must_be_active, open_case_task, reject_task, stage_def,
};
use crate::commands::{self, reject};
use crate::db::Tx;
use crate::db::sql;
use crate::definitions::Activation;
use crate::engine::context::Ctx;
use crate::engine::{holds, progress};
use crate::events::{self, kinds, kinds::Kind};
use crate::rules::RuleSet;
use crate::states::TaskStatus;

pub(super) async fn activate_task(
    tx: &mut Tx,
    rules: &RuleSet,
    t: &commands::TaskRef,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    let (case, def, in_stage) = open_case_task(tx, rules, &t.case_ref, &t.task).await?;
    let InOpenStage {
        task,
        stage: stage_row,
        tasks,
    } = in_stage;
    let stage = stage_def(&def, &case, &stage_row.stage)?;
    match task.status.as_str() {
        "waiting" => {}
        "active" | "on_hold" => return reject_task(&case, &task, "is already active"),
        _ => return reject_task(&case, &task, &format!("is {}", task.status)),
    }
    if stage
        .task(&task.task)
        .is_some_and(|d| d.activation == Activation::Auto)
    {
        return reject_task(
            &case,
            &task,
            "starts automatically when its dependencies are done; it cannot be activated by hand",
        );
    }
    let unmet = progress::unmet_dependencies(stage, &tasks, &task.task);
    if !unmet.is_empty() {
        return reject_task(
            &case,
            &task,
            &format!(
                "depends on {} which {} not done yet",
                unmet.join(", "),
                if unmet.len() == 1 { "is" } else { "are" }
            ),
        );
    }
    progress::activate(
        tx,
        &case,
        stage,
        &task,
        crate::definitions::model::Activation::Manual,
        Ctx::new(rules, &def, now, source),
    )
    .await?;
    Ok(Some(case))
}

pub(super) async fn complete_task(
    tx: &mut Tx,
    rules: &RuleSet,
    t: &commands::CompleteTask,
    now: DateTime<Utc>,
) -> Handled {
    let (case, def, in_stage) = open_case_task(tx, rules, &t.case_ref, &t.task).await?;
    let InOpenStage {
        task,
        stage: stage_row,
        tasks,
    } = in_stage;
    known_user(tx, "by", &t.by).await?;
    must_be_active(&case, &task)?;
    let at = match &t.at {
        Some(at) => commands::time("at", at)?,
        None => now,
    };
    if at > now {
        return reject(format!("at {at} is in the future (now is {now})")).map_err(Into::into);
    }
    if task.activated_at.is_some_and(|a| at < a) {
        return reject(format!("at {at} is before the task was activated")).map_err(Into::into);
    }
    progress::complete_task(
        tx,
        (&def, &case),
        (&stage_row, tasks),
        &task,
        (at, t.outcome.as_deref()),
        Ctx::new(rules, &def, now, &t.by),
    )
    .await?;
    Ok(Some(case))
}

pub(super) async fn skip_task(
    tx: &mut Tx,
    rules: &RuleSet,
    t: &commands::SkipTask,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    let (case, def, in_stage) = open_case_task(tx, rules, &t.case_ref, &t.task).await?;
    let InOpenStage {
        task,
        stage: stage_row,
        mut tasks,
    } = in_stage;
    if let Some(by) = &t.by {
        known_user(tx, "by", by).await?;
    }
    if task.mandatory {
        return reject_task(
            &case,
            &task,
            "is mandatory; only optional tasks can be skipped",
        );
    }
    if !task.is_open() {
        return reject_task(&case, &task, &format!("is {}", task.status));
    }
    let actor = t.by.as_deref().unwrap_or(source);
    sql("UPDATE tasks SET status = 'skipped', completed_at = $1, completed_by = $2, next_check_at = NULL, hold_until = NULL, \
         skip_reason = $3 WHERE id = $4")
        .bind(now)
        .bind(t.by.as_deref())
        .bind(t.reason.as_deref())
        .bind(task.id)
        .execute(&mut *tx)
        .await?;
    let skipped = Kind::TaskSkipped(kinds::TaskSkipped {
        stage: stage_row.stage.clone(),
        task: task.task.clone(),
        reason_given: t.reason.is_some(),
    });
    events::record(tx, case.event_target(), now, actor, skipped).await?;
    progress::mark(&mut tasks, task.id, TaskStatus::Skipped);
    progress::after_task_done(
        tx,
        (&def, &case),
        (&stage_row, tasks),
        Ctx::new(rules, &def, now, actor),
    )
    .await?;
    Ok(Some(case))
}

pub(super) async fn hold_task(
    tx: &mut Tx,
    rules: &RuleSet,
    h: &commands::HoldTask,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    let (case, def, in_stage) = open_case_task(tx, rules, &h.case_ref, &h.task).await?;
    let InOpenStage {
        task,
        stage: stage_row,
        ..
    } = in_stage;
    must_be_active(&case, &task)?;
    let until = commands::time("until", &h.until)?;
    if until <= now {
        return reject(format!(
            "until {until} is not in the future (now is {now}); a hold needs a release date to come"
        ))
        .map_err(Into::into);
    }
    // A clock the law does not pause keeps its checkpoints: the work waits, the deadline not.
    let clock_keeps_running = stage_def(&def, &case, &stage_row.stage)?
        .task(&task.task)
        .is_some_and(|d| !d.sla.pausable);
    sql(
        "UPDATE tasks SET status = 'on_hold', hold_until = $1, hold_reason = $2, held_since = $3, \
         next_check_at = CASE WHEN $5 THEN next_check_at ELSE NULL END WHERE id = $4",
    )
    .bind(until)
    .bind(&h.reason)
    .bind(now)
    .bind(task.id)
    .bind(clock_keeps_running)
    .execute(&mut *tx)
    .await?;
    // The reason is free text: kept with the hold, where erasure reaches it, not in the log.
    sql("INSERT INTO task_holds (case_id, task_id, held_at, until, reason) VALUES ($1, $2, $3, $4, $5)")
        .bind(case.id)
        .bind(task.id)
        .bind(now)
        .bind(until)
        .bind(&h.reason)
        .execute(&mut *tx)
        .await?;
    let held = Kind::TaskHeld(kinds::TaskHeld {
        stage: stage_row.stage.clone(),
        task: task.task.clone(),
        until,
        clock_keeps_running,
    });
    events::record(tx, case.event_target(), now, source, held).await?;
    Ok(Some(case))
}

pub(super) async fn release_task(
    tx: &mut Tx,
    rules: &RuleSet,
    t: &commands::TaskRef,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    let (case, _, in_stage) = open_case_task(tx, rules, &t.case_ref, &t.task).await?;
    let InOpenStage { task, .. } = in_stage;
    if task.status != crate::states::TaskStatus::OnHold {
        return reject_task(&case, &task, &format!("is {}, not on hold", task.status));
    }
    let by = holds::Releaser::Command(source);
    holds::release(tx, rules, &case, &task, by, now).await?;
    Ok(Some(case))
}
