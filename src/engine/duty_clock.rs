//! The clocks of homelessness duties: a workflow's `[duties]` name the task whose clock runs
//! each duty, and that clock counts from the duty's recorded start date where the case has one
//! (09:00 London time that day, as every date casewarden reads). A duty recorded after its task
//! started moves the task's dates; the SLA state and the escalations already fired stay as they
//! are, and the next checkpoint is the one the new dates give, so what is now due fires at the
//! next pass and what moved later waits.

use chrono::{DateTime, NaiveDate, Utc};

use super::context::Ctx;
use crate::db::rows::CaseRow;
use crate::db::{Tx, sql};
use crate::definitions::{Definition, Target, Task};
use crate::events::kinds::DutyClock;
use crate::rules::target::{evaluate, fact};
use crate::sla::checkpoint::{self, Dates};

/// When the recorded `duty` of a case started, as the instant its clock counts from.
pub async fn start_of(
    tx: &mut Tx,
    case_id: i64,
    duty: &str,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let start: Option<(NaiveDate,)> =
        sql("SELECT start_date FROM duties WHERE case_id = $1 AND duty = $2")
            .bind(case_id)
            .bind(duty)
            .fetch_optional(&mut *tx)
            .await?;
    Ok(start.map(|(d,)| crate::clock::start_of_working_day(d)))
}

#[derive(sqlx::FromRow)]
struct Clock {
    id: i64,
    status: String,
    sla_state: String,
    follow_ons: i64,
    target_at: Option<DateTime<Utc>>,
}

/// Restarts the clock of the task that runs `duty` at `start`, if that task is running (active
/// or on hold): the dates it then has, or None where no task runs the duty, it is not running,
/// or its target is the one it had.
pub async fn restart(
    tx: &mut Tx,
    def: &Definition,
    case: &CaseRow,
    duty: &str,
    start: NaiveDate,
    ctx: Ctx<'_>,
) -> Result<Option<DutyClock>, sqlx::Error> {
    let Some(task) = def
        .stages
        .iter()
        .flat_map(|s| &s.tasks)
        .find(|t| t.duty.as_deref() == Some(duty))
    else {
        return Ok(None);
    };
    let row: Option<Clock> = sql(
        "SELECT id, status, sla_state, follow_ons, target_at FROM tasks \
         WHERE case_id = $1 AND task = $2 AND status IN ('active', 'on_hold') ORDER BY id DESC LIMIT 1",
    )
    .bind(case.id)
    .bind(&task.key)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let Some(dates) = dates(task, case, crate::clock::start_of_working_day(start), ctx) else {
        return Ok(None);
    };
    if row.target_at == Some(dates.target) {
        return Ok(None);
    }
    // A held clock has no checkpoint until it is released, which moves these dates on by the
    // time held; one the law does not pause keeps its checkpoints while held.
    let next = (row.status == "active" || !task.sla.pausable)
        .then(|| {
            let follow_ons = u32::try_from(row.follow_ons).unwrap_or(0);
            checkpoint::next(ctx.cal, &task.sla, &row.sla_state, follow_ons, dates)
        })
        .flatten()
        .map(|c| c.at);
    sql("UPDATE tasks SET target_at = $1, amber_at = $2, target_day = $3, next_check_at = $4 WHERE id = $5")
        .bind(dates.target)
        .bind(dates.amber)
        .bind(crate::clock::london_date(dates.target))
        .bind(next)
        .bind(row.id)
        .execute(&mut *tx)
        .await?;
    Ok(Some(DutyClock {
        task: task.key.clone(),
        target_at: dates.target,
        amber_at: dates.amber,
        previous_target_at: row.target_at,
    }))
}

/// The dates of `task`'s clock started at `start`, for this case; None where no target applies.
fn dates(task: &Task, case: &CaseRow, start: DateTime<Utc>, ctx: Ctx<'_>) -> Option<Dates> {
    let period = match task.sla.target.as_ref()? {
        Target::Expr { ast, .. } => evaluate(ctx.sandbox, ast, case).ok().flatten(),
        other => other.period(fact(case)),
    }?;
    Some(Dates::start(ctx.cal, start, period, task.sla.amber))
}
