//! Worklists (`worklist`): an officer's or a role's open tasks, and the cases on the same list
//! that have no task to work on but still wait for someone (a choice of next stage, or a manual
//! task to activate), through the views CRMs read. Working days left count from a given day,
//! the London date of now unless a simulated time is asked for (`worklist --now`).

use std::fmt::Write;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::format::when;
use crate::db::{Db, sql};
use crate::text::terminal as t;

/// The working days from `$1` (today) to a target day in a case's calendar, negative once it
/// has passed: the views' `days_remaining`, counted from a day the caller gives.
macro_rules! days_left {
    ($day:literal, $calendar:literal) => {
        concat!(
            "CASE WHEN ",
            $day,
            " IS NULL THEN NULL WHEN ",
            $day,
            " >= $1 ",
            "THEN (SELECT COUNT(*) FROM working_days wd WHERE wd.calendar = ",
            $calendar,
            " AND wd.day > $1 AND wd.day <= ",
            $day,
            ") ",
            "ELSE -(SELECT COUNT(*) FROM working_days wd WHERE wd.calendar = ",
            $calendar,
            " AND wd.day > ",
            $day,
            " AND wd.day <= $1) END"
        )
    };
}

macro_rules! tasks_from {
    ($view:literal, $filter:literal) => {
        concat!(
            "SELECT w.task_id, w.case_ref, w.stage, w.task, w.status, w.owner, w.role, w.activated_at, \
             w.hold_until, w.sla_state, w.amber_at, w.target_at, ",
            days_left!("t.target_day", "c.calendar"),
            " AS days_remaining FROM ", $view, " w JOIN tasks t ON t.id = w.task_id \
             JOIN cases c ON c.id = t.case_id ", $filter, " ORDER BY w.case_ref, w.task_id"
        )
    };
}

macro_rules! cases_from {
    ($view:literal, $filter:literal) => {
        concat!(
            "SELECT case_ref, case_kind, scheme, workflow, country, owner, queue_role, waits_for, \
             stage, since, choices, tasks_to_activate, case_target_at, ",
            days_left!("case_target_day", "calendar"),
            " AS case_days_remaining FROM ",
            $view,
            " ",
            $filter,
            " ORDER BY since, case_ref"
        )
    };
}

#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct WorklistRow {
    pub task_id: i64,
    pub case_ref: String,
    pub stage: String,
    pub task: String,
    pub status: crate::states::TaskStatus,
    pub owner: Option<String>,
    pub role: Option<String>,
    pub activated_at: Option<DateTime<Utc>>,
    pub hold_until: Option<DateTime<Utc>>,
    pub sla_state: crate::states::SlaState,
    pub amber_at: Option<DateTime<Utc>>,
    pub target_at: Option<DateTime<Utc>>,
    /// Working days from today to the target; negative once it has passed.
    pub days_remaining: Option<i64>,
}

/// A case on a worklist with no task to work on, and what it waits for.
#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct WaitingCase {
    pub case_ref: String,
    pub case_kind: String,
    pub scheme: Option<String>,
    pub workflow: Option<String>,
    pub country: String,
    pub owner: Option<String>,
    /// The role whose queue holds the case when it could not be allocated.
    pub queue_role: Option<String>,
    /// `advance_case`: the CRM must choose the next stage (one of `choices`); `activate_task`:
    /// only manual tasks are left in the open stage, none activated (`tasks_to_activate`).
    pub waits_for: String,
    /// The open stage, or for `advance_case` the stage the case completed last.
    pub stage: String,
    /// Since when: the stage's completion (`advance_case`), else the last task completed in the
    /// stage or, if none, its entry.
    pub since: Option<DateTime<Utc>>,
    #[schemars(with = "Option<Vec<String>>")]
    pub choices: Option<sqlx::types::Json<Vec<String>>>,
    #[schemars(with = "Option<Vec<String>>")]
    pub tasks_to_activate: Option<sqlx::types::Json<Vec<String>>>,
    /// A housing options case's target.
    pub case_target_at: Option<DateTime<Utc>>,
    /// Working days from today to the case's target; negative once it has passed.
    pub case_days_remaining: Option<i64>,
}

/// A whole worklist: the open tasks, and the cases waiting with no task to work on.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Worklist {
    pub tasks: Vec<WorklistRow>,
    pub cases: Vec<WaitingCase>,
}

/// Open tasks for a user, or for a role (everyone's without either), as of today in London.
pub async fn worklist(
    db: &Db,
    user: Option<&str>,
    role: Option<&str>,
) -> Result<Vec<WorklistRow>, sqlx::Error> {
    tasks_as_of(
        db,
        user,
        role,
        crate::clock::london_date(crate::clock::now()),
    )
    .await
}

/// Open tasks for a user, or for a role, with working days left counted from `today`.
pub async fn tasks_as_of(
    db: &Db,
    user: Option<&str>,
    role: Option<&str>,
    today: NaiveDate,
) -> Result<Vec<WorklistRow>, sqlx::Error> {
    let query = match (user, role) {
        (Some(u), _) => sql(tasks_from!("worklist_by_user", "WHERE w.user_ref = $2"))
            .bind(today)
            .bind(u),
        (None, Some(r)) => sql(tasks_from!("worklist_by_role", "WHERE w.role_ref = $2"))
            .bind(today)
            .bind(r),
        (None, None) => sql(tasks_from!("worklist_tasks", "")).bind(today),
    };
    query.fetch_all(db).await
}

/// The cases on a user's, or a role's, worklist (everyone's without either) that have no task
/// to work on, with working days left counted from `today`.
pub async fn waiting_cases(
    db: &Db,
    user: Option<&str>,
    role: Option<&str>,
    today: NaiveDate,
) -> Result<Vec<WaitingCase>, sqlx::Error> {
    let query = match (user, role) {
        (Some(u), _) => sql(cases_from!("worklist_cases_by_user", "WHERE user_ref = $2"))
            .bind(today)
            .bind(u),
        (None, Some(r)) => sql(cases_from!("worklist_cases_by_role", "WHERE role_ref = $2"))
            .bind(today)
            .bind(r),
        (None, None) => sql(cases_from!("worklist_cases", "")).bind(today),
    };
    query.fetch_all(db).await
}

/// The whole worklist of a user or a role, as of `now` (its London date).
pub async fn full_worklist(
    db: &Db,
    user: Option<&str>,
    role: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Worklist, sqlx::Error> {
    let today = crate::clock::london_date(now);
    Ok(Worklist {
        tasks: tasks_as_of(db, user, role, today).await?,
        cases: waiting_cases(db, user, role, today).await?,
    })
}

pub fn worklist_text(rows: &[WorklistRow]) -> String {
    let mut out = String::from(
        "case           stage            task                             status   owner        role             sla        amber             target            left\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<14} {:<16} {:<32} {:<8} {:<12} {:<16} {:<10} {:<17} {:<17} {}",
            t(&r.case_ref),
            t(&r.stage),
            t(&r.task),
            t(r.status.as_str()),
            t(r.owner.as_deref().unwrap_or("-")),
            t(r.role.as_deref().unwrap_or("-")),
            t(r.sla_state.as_str()),
            when(r.amber_at),
            when(r.target_at),
            days(r.days_remaining),
        );
    }
    out
}

/// The whole worklist as text: the tasks, then the cases waiting with no task to work on.
pub fn full_worklist_text(list: &Worklist) -> String {
    let mut out = worklist_text(&list.tasks);
    if list.cases.is_empty() {
        return out;
    }
    out.push_str(
        "\ncases with no task to work on\ncase           stage            owner        since             case target       left     waits for\n",
    );
    for c in &list.cases {
        let _ = writeln!(
            out,
            "{:<14} {:<16} {:<12} {:<17} {:<16} {:<8} {}",
            t(&c.case_ref),
            t(&c.stage),
            t(c.owner
                .as_deref()
                .or(c.queue_role.as_deref())
                .unwrap_or("-")),
            when(c.since),
            when(c.case_target_at),
            days(c.case_days_remaining),
            waits_for(c),
        );
    }
    out
}

fn days(d: Option<i64>) -> String {
    d.map_or_else(|| "-".to_string(), |d| format!("{d} wd"))
}

/// What a waiting case needs, in words.
fn waits_for(c: &WaitingCase) -> String {
    let names = |list: &Option<sqlx::types::Json<Vec<String>>>| {
        list.as_ref()
            .map(|l| l.iter().map(|n| t(n)).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    match c.waits_for.as_str() {
        "advance_case" => format!("advance_case: choose one of {}", names(&c.choices)),
        _ => format!("activate_task: {}", names(&c.tasks_to_activate)),
    }
}
