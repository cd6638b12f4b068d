//! SLA dates in the database: a stage's clock started when it is entered, a task's when it is
//! activated, moved on after a hold; the calendars published for the worklist views; and a stage
//! or task row as the SLA code reads it (`Item`). The arithmetic itself is `crate::sla`'s and
//! a target's facts `rules::target`'s; this module writes their answers into the rows.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::Digest;

use super::context::Ctx;
use crate::db::Db;
use crate::db::rows::{self, CaseRow};
use crate::db::{Sql, Tx, rows_per_statement, sql, sql2};
use crate::definitions::{ClockFrom, Definition, Sla, Stage, Task};
use crate::events::kinds::{self, Kind};
use crate::events::{self, ENGINE};
use crate::rules::RuleSet;
use crate::rules::target::{evaluate, fact};
use crate::sla::checkpoint::{self, Dates};
use crate::sla::periods;

/// Publishes every calendar's working days into `working_days`, so the worklist views can count
/// the working days left to a target. From 2015 to two years past the published bank holidays.
/// A calendar whose days hash to what `calendar_versions` records is left as it is: starts and
/// rule reloads rewrite nothing unless the calendars changed. Returns the calendars rewritten.
pub async fn publish_calendars(
    db: &Db,
    calendars: &crate::sla::Calendars,
) -> Result<Vec<String>, sqlx::Error> {
    let published: Vec<(String, String)> = sql("SELECT calendar, hash FROM calendar_versions")
        .fetch_all(db)
        .await?;
    let mut changed = Vec::new();
    for name in calendars.names() {
        let Some(cal) = calendars.get(&name) else {
            continue;
        };
        let days = published_days(cal);
        let hash = hex::encode(sha2::Sha256::digest(days.join(",").as_bytes()));
        if published.iter().any(|(c, h)| *c == name && *h == hash) {
            continue;
        }
        let mut tx = db.begin_write().await?;
        sql("DELETE FROM working_days WHERE calendar = $1")
            .bind(&name)
            .execute(&mut tx)
            .await?;
        sql2(
            "INSERT INTO working_days (calendar, day) SELECT $1, value FROM json_each($2)",
            "INSERT INTO working_days (calendar, day) SELECT $1, value::date FROM jsonb_array_elements_text($2)",
        )
        .bind(&name)
        .bind(json!(days))
        .execute(&mut tx)
        .await?;
        sql(
            "INSERT INTO calendar_versions (calendar, hash) VALUES ($1, $2) \
             ON CONFLICT (calendar) DO UPDATE SET hash = excluded.hash",
        )
        .bind(&name)
        .bind(&hash)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        changed.push(name);
    }
    Ok(changed)
}

/// A calendar's working days, as ISO dates, from 2015 to two years past the later of its last
/// listed bank holiday and today.
fn published_days(cal: &crate::sla::Calendar) -> Vec<String> {
    let first = chrono::NaiveDate::from_ymd_opt(2015, 1, 1).expect("valid date");
    let last = cal
        .listed_until()
        .unwrap_or(first)
        .max(crate::clock::london_date(crate::clock::now()));
    let last = last
        .checked_add_days(chrono::Days::new(2 * 366))
        .unwrap_or(last);
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .filter(|d| cal.is_working_day(*d))
        .map(|d| d.to_string())
        .collect()
}

/// A stage's clock at its entry (or at the claim, for statutory clocks): its dates and first
/// checkpoint, or the `rule_error` of a target expression that failed (and no clock).
pub fn stage_clock(ctx: Ctx<'_>, case: &CaseRow, stage: &Stage) -> Clock {
    let start = match stage.sla.from {
        ClockFrom::CaseReceived => case.received_at,
        _ => ctx.now,
    };
    let mut events = Vec::new();
    let dates = clock_dates(ctx, &stage.sla, case, &stage.key, start).unwrap_or_else(|failed| {
        events.push(*failed);
        None
    });
    Clock::of(ctx, &stage.sla, dates, events)
}

/// What starting a clock decides: its dates and first checkpoint (`None`: no clock for this
/// case), and the events that go before the change that started it (a target expression that
/// failed, a task's target capped at its stage's), all by the engine.
pub struct Clock {
    pub dates: Option<Dates>,
    pub first_check: Option<DateTime<Utc>>,
    pub events: Vec<Kind>,
}

impl Clock {
    fn of(ctx: Ctx<'_>, sla: &Sla, dates: Option<Dates>, events: Vec<Kind>) -> Clock {
        let first_check =
            dates.and_then(|d| checkpoint::next(ctx.cal, sla, "on_track", 0, d).map(|c| c.at));
        Clock {
            dates,
            first_check,
            events,
        }
    }

    /// The `sla_state` a row starts with: on track with a clock, none without.
    pub fn state(&self) -> crate::states::SlaState {
        if self.dates.is_some() {
            crate::states::SlaState::OnTrack
        } else {
            crate::states::SlaState::None
        }
    }

    /// The London date of the target, which the worklist views count working days to.
    pub fn target_day(&self) -> Option<chrono::NaiveDate> {
        self.dates.map(|d| crate::clock::london_date(d.target))
    }
}

/// A task's clock at its activation (or its stage's entry, or the claim; a duty's task at the
/// duty's recorded start date, `duty_start`), in a stage entered at `entered` whose target is
/// `stage_target`. A task's target never ends after its stage's: where it would, the stage's
/// target wins and an event says so.
pub fn task_clock(
    ctx: Ctx<'_>,
    case: &CaseRow,
    task: &Task,
    (entered, stage_target): (DateTime<Utc>, Option<DateTime<Utc>>),
    duty_start: Option<DateTime<Utc>>,
) -> Clock {
    let start = duty_start.unwrap_or(match task.sla.from {
        ClockFrom::Start => ctx.now,
        ClockFrom::StageEntered => entered,
        ClockFrom::CaseReceived => case.received_at,
    });
    let mut events = Vec::new();
    let mut dates = clock_dates(ctx, &task.sla, case, &task.key, start).unwrap_or_else(|failed| {
        events.push(*failed);
        None
    });
    if let Some(own) = dates
        && let Some(limit) = stage_target.filter(|l| own.target > *l)
    {
        events.push(Kind::SlaCapped(kinds::SlaCapped {
            task: task.key.clone(),
            own_target: own.target,
            stage_target: limit,
            reason: "a task's target never ends after its stage's".into(),
        }));
        dates = Some(own.capped(limit));
    }
    Clock::of(ctx, &task.sla, dates, events)
}

/// Starts the clock of a task activated after its stage's entry: reads the stage's dates and the
/// duty's start, then writes [`task_clock`]'s answer.
pub async fn start_task_clock(
    tx: &mut Tx,
    case: &CaseRow,
    task: &Task,
    task_id: i64,
    stage_id: i64,
    ctx: Ctx<'_>,
) -> Result<(), sqlx::Error> {
    let stage: (DateTime<Utc>, Option<DateTime<Utc>>) =
        sql("SELECT entered_at, target_at FROM stages WHERE id = $1")
            .bind(stage_id)
            .fetch_one(&mut *tx)
            .await?;
    // A duty's task counts from the duty's recorded start date, where the case has one.
    let duty_start = match &task.duty {
        Some(duty) => super::duty_clock::start_of(tx, case.id, duty).await?,
        None => None,
    };
    let clock = task_clock(ctx, case, task, stage, duty_start);
    let before: Vec<events::Pending> = clock
        .events
        .iter()
        .map(|e| events::Pending::new(case.event_target(), ctx.now, ENGINE, e.clone()))
        .collect();
    events::record_all(tx, &before).await?;
    let Some(dates) = clock.dates else {
        return Ok(());
    };
    sql("UPDATE tasks SET target_at = $1, amber_at = $2, sla_state = 'on_track', next_check_at = $3, target_day = $5 WHERE id = $4")
        .bind(dates.target)
        .bind(dates.amber)
        .bind(clock.first_check)
        .bind(task_id)
        .bind(clock.target_day())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The dates of a clock starting at `start`; `None` where no target applies to this case. A
/// target expression that fails gives the `rule_error` to record, and no clock.
fn clock_dates(
    ctx: Ctx<'_>,
    sla: &Sla,
    case: &CaseRow,
    item: &str,
    start: DateTime<Utc>,
) -> Result<Option<Dates>, Box<Kind>> {
    let Some(target) = &sla.target else {
        return Ok(None);
    };
    let period = match target {
        crate::definitions::Target::Expr { source, ast } => {
            match evaluate(ctx.sandbox, ast, case) {
                Ok(p) => p,
                Err(message) => {
                    return Err(Box::new(kinds::RuleError::target_expr(
                        item,
                        source,
                        message,
                        "no SLA clock was started for this item",
                    )));
                }
            }
        }
        other => other.period(fact(case)),
    };
    Ok(period.map(|p| Dates::start(ctx.cal, start, p, sla.amber)))
}

/// After a hold: both dates move on by the working days held, and the clock runs again. A clock
/// the law does not pause has run all along and stays where it is (0 days). Where the task's
/// stage has a clock that is not pausable, the moved dates never end after the stage's target:
/// they are capped there, with an `sla_capped` event.
pub async fn resume_task_clock(
    tx: &mut Tx,
    rules: &RuleSet,
    task_id: i64,
    held_from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<u32>, sqlx::Error> {
    let Some(item) = load(&mut *tx, ItemKind::Task, task_id).await? else {
        return Ok(None);
    };
    let case = rows::case_by_id(&mut *tx, item.case_id).await?;
    let Some((def, sla)) = item_sla(rules, &case, ItemKind::Task, &item) else {
        return Ok(None);
    };
    let Some(target) = item.target_at else {
        return Ok(None);
    };
    let cal = rules.calendar(&def);
    let days = if sla.pausable {
        periods::working_days_held(cal, held_from, now)
    } else {
        0
    };
    let mut dates = Dates {
        target,
        amber: item.amber_at,
    }
    .shifted(cal, days);
    if days > 0 {
        dates = capped_by_stage(tx, &def, &case, &item, dates, now).await?;
    }
    let next = checkpoint::next(
        cal,
        &sla,
        item.sla_state.as_str(),
        item.follow_ons as u32,
        dates,
    )
    .map(|c| c.at);
    sql("UPDATE tasks SET target_at = $1, amber_at = $2, next_check_at = $3, target_day = $5 WHERE id = $4")
        .bind(dates.target)
        .bind(dates.amber)
        .bind(next)
        .bind(task_id)
        .bind(crate::clock::london_date(dates.target))
        .execute(&mut *tx)
        .await?;
    Ok(Some(days))
}

/// A held task's moved dates, capped at its stage's target where the stage's clock is not
/// pausable.
async fn capped_by_stage(
    tx: &mut Tx,
    def: &Definition,
    case: &CaseRow,
    item: &Item,
    dates: Dates,
    now: DateTime<Utc>,
) -> Result<Dates, sqlx::Error> {
    if def.stage(&item.stage_key).is_none_or(|s| s.sla.pausable) {
        return Ok(dates);
    }
    let (limit,): (Option<DateTime<Utc>>,) =
        sql("SELECT s.target_at FROM stages s JOIN tasks t ON t.stage_id = s.id WHERE t.id = $1")
            .bind(item.id)
            .fetch_one(&mut *tx)
            .await?;
    let Some(limit) = limit.filter(|l| dates.target > *l) else {
        return Ok(dates);
    };
    let capped = Kind::SlaCapped(kinds::SlaCapped {
        task: item.key.clone(),
        own_target: dates.target,
        stage_target: limit,
        reason: "a hold never moves a task's target past its stage's, whose clock is not pausable"
            .into(),
    });
    events::record(tx, case.event_target(), now, ENGINE, capped).await?;
    Ok(dates.capped(limit))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    Task,
    Stage,
}

impl ItemKind {
    pub(super) fn as_str(&self) -> &'static str {
        match self {
            ItemKind::Task => "task",
            ItemKind::Stage => "stage",
        }
    }
}

/// A task or a stage, as the sweep sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Item {
    pub(super) id: i64,
    pub(super) case_id: i64,
    pub(super) stage_key: String,
    pub(super) key: String,
    /// A task's or a stage's status, as text: the sweep reads both kinds of row into one type.
    pub(super) status: String,
    pub(super) owner: Option<String>,
    pub(super) line_manager: Option<String>,
    pub(super) target_at: Option<DateTime<Utc>>,
    pub(super) amber_at: Option<DateTime<Utc>>,
    pub(super) sla_state: crate::states::SlaState,
    pub(super) follow_ons: i64,
    pub(super) next_check_at: Option<DateTime<Utc>>,
    /// The owner and line manager of the item's stage (of the stage itself, for a stage).
    pub(super) stage_owner: Option<String>,
    pub(super) stage_line_manager: Option<String>,
}

// The columns of an item, with its stage's owner and line manager (a stage's own, for a stage).
macro_rules! task_item {
    () => {
        "SELECT t.id, t.case_id, s.stage AS stage_key, t.task AS key, t.status, t.owner, t.line_manager, \
         t.target_at, t.amber_at, t.sla_state, t.follow_ons, t.next_check_at, \
         s.owner AS stage_owner, s.line_manager AS stage_line_manager \
         FROM tasks t JOIN stages s ON s.id = t.stage_id "
    };
}

macro_rules! stage_item {
    () => {
        "SELECT id, case_id, stage AS stage_key, stage AS key, status, owner, line_manager, \
         target_at, amber_at, sla_state, follow_ons, next_check_at, \
         owner AS stage_owner, line_manager AS stage_line_manager FROM stages "
    };
}

pub(super) async fn load<'a>(
    on: impl Into<crate::db::Ex<'a>>,
    kind: ItemKind,
    id: i64,
) -> Result<Option<Item>, sqlx::Error> {
    match kind {
        ItemKind::Task => sql(concat!(task_item!(), "WHERE t.id = $1")),
        ItemKind::Stage => sql(concat!(stage_item!(), "WHERE id = $1")),
    }
    .bind(id)
    .fetch_optional(on)
    .await
}

/// The items of one kind with these ids, in no particular order; an id that names no row is
/// left out.
pub(super) async fn load_many(
    db: &Db,
    kind: ItemKind,
    ids: &[i64],
) -> Result<Vec<Item>, sqlx::Error> {
    let mut items = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(rows_per_statement(1)) {
        let select = Sql::sized(|marks| match kind {
            ItemKind::Task => format!(
                concat!(task_item!(), "WHERE t.id IN {}"),
                marks.list(chunk.len(), 1)
            ),
            ItemKind::Stage => format!(
                concat!(stage_item!(), "WHERE id IN {}"),
                marks.list(chunk.len(), 1)
            ),
        });
        let found: Vec<Item> = select.bind_all(chunk.iter().copied()).fetch_all(db).await?;
        items.extend(found);
    }
    Ok(items)
}

/// The definition and SLA that govern an item, if the rule set still has them.
/// The kind is passed in, never guessed from ids: a task's row id may equal its stage's.
pub(super) fn item_sla(
    rules: &RuleSet,
    case: &CaseRow,
    kind: ItemKind,
    item: &Item,
) -> Option<(Arc<Definition>, Sla)> {
    let def = rules.definition(&case.definition_id)?.clone();
    let stage = def.stage(&item.stage_key)?;
    let sla = match kind {
        ItemKind::Stage => stage.sla.clone(),
        ItemKind::Task => stage.task(&item.key)?.sla.clone(),
    };
    Some((def, sla))
}
