//! Rows of the case tables as the engine reads them, and the queries that load them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use crate::db::{Db, Ex, Sql, rows_per_statement, sql};
use crate::facts::CaseFacts;
use crate::states::{Allocation, CaseStatus, SlaState, StageStatus, TaskStatus};

pub const OPEN_CASE: &[&str] = &["open", "awaiting_advance"];

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct CaseRow {
    pub id: i64,
    pub case_ref: String,
    pub kind: String,
    pub scheme: Option<String>,
    /// Housing options: the advice stream.
    pub workflow: Option<String>,
    pub country: String,
    pub definition_id: String,
    pub definition_version: String,
    pub applicant_contact: Option<String>,
    pub applicant_group: Option<String>,
    pub property_ref: Option<String>,
    pub property_address: Option<String>,
    pub tenure: Option<String>,
    pub received_at: DateTime<Utc>,
    #[schemars(with = "serde_json::Value")]
    pub attributes: Json<serde_json::Value>,
    pub status: CaseStatus,
    pub outcome: Option<String>,
    pub owner: Option<String>,
    pub allocation: Allocation,
    pub queue_role: Option<String>,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Housing options: the case's target, the end of the longest path through its tasks.
    pub target_at: Option<DateTime<Utc>>,
}

impl CaseRow {
    /// The case as events name it: (id, reference).
    pub fn event_target(&self) -> Option<(i64, &str)> {
        Some((self.id, &self.case_ref))
    }

    pub fn is_open(&self) -> bool {
        OPEN_CASE.contains(&self.status.as_str())
    }

    /// What rules and templates see of this case. `definition` is the case's definition in the
    /// rule set in force, when it has it: it gives `definition_name` and `team_role`.
    pub fn facts(&self, definition: Option<&crate::definitions::Definition>) -> CaseFacts {
        CaseFacts {
            case_ref: self.case_ref.clone(),
            kind: self.kind.clone(),
            scheme: self.scheme.clone(),
            workflow: self.workflow.clone(),
            country: self.country.clone(),
            definition: self.definition_id.clone(),
            definition_version: self.definition_version.clone(),
            definition_name: definition.map(|d| d.name.clone()),
            team_role: definition.map(|d| d.team_role.clone()),
            tenure: self.tenure.clone(),
            property_ref: self.property_ref.clone(),
            received_at: self.received_at,
            status: self.status,
            owner: self.owner.clone(),
            target_at: self.target_at,
            applicant: self.applicant_contact.clone(),
            applicant_group: self.applicant_group.clone(),
            attributes: self.attributes.0.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct StageRow {
    pub id: i64,
    pub case_id: i64,
    pub stage: String,
    pub master_stage: String,
    pub entry: i64,
    pub status: StageStatus,
    pub owner: Option<String>,
    pub line_manager: Option<String>,
    pub entered_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub target_at: Option<DateTime<Utc>>,
    pub amber_at: Option<DateTime<Utc>>,
    pub sla_state: SlaState,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct TaskRow {
    pub id: i64,
    pub case_id: i64,
    pub stage_id: i64,
    pub task: String,
    pub mandatory: bool,
    pub activation: String,
    pub status: TaskStatus,
    pub owner: Option<String>,
    pub line_manager: Option<String>,
    pub role_ref: Option<String>,
    pub activated_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub completed_by: Option<String>,
    pub outcome: Option<String>,
    /// Why it was skipped, as `skip_task` gave it.
    pub skip_reason: Option<String>,
    pub hold_until: Option<DateTime<Utc>>,
    pub hold_reason: Option<String>,
    pub held_since: Option<DateTime<Utc>>,
    pub held_seconds: i64,
    pub target_at: Option<DateTime<Utc>>,
    pub amber_at: Option<DateTime<Utc>>,
    pub sla_state: SlaState,
}

impl TaskRow {
    /// Completed or skipped: it no longer holds its stage back.
    pub fn is_done(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "skipped")
    }

    pub fn is_open(&self) -> bool {
        matches!(self.status.as_str(), "waiting" | "active" | "on_hold")
    }
}

/// The columns of a [`CaseRow`]: what a query selects, or an insert returns, to read one.
macro_rules! case_columns {
    () => {
        "id, case_ref, kind, scheme, workflow, country, definition_id, definition_version, \
         applicant_contact, applicant_group, property_ref, property_address, tenure, received_at, \
         attributes, status, outcome, owner, allocation, queue_role, created_at, closed_at, target_at"
    };
}
pub(crate) use case_columns;

macro_rules! case_select {
    ($where:literal) => {
        concat!("SELECT ", case_columns!(), " FROM cases ", $where)
    };
}

/// The columns of a [`StageRow`].
macro_rules! stage_columns {
    () => {
        "id, case_id, stage, master_stage, entry, status, owner, line_manager, entered_at, \
         completed_at, target_at, amber_at, sla_state"
    };
}
pub(crate) use stage_columns;

macro_rules! stage_select {
    ($where:literal) => {
        concat!("SELECT ", stage_columns!(), " FROM stages ", $where)
    };
}

macro_rules! task_columns {
    () => {
        "t.id, t.case_id, t.stage_id, t.task, t.mandatory, t.activation, t.status, t.owner, \
         t.line_manager, t.role_ref, t.activated_at, t.completed_at, t.completed_by, t.outcome, \
         t.skip_reason, t.hold_until, t.hold_reason, t.held_since, t.held_seconds, t.target_at, t.amber_at, \
         t.sla_state"
    };
}

pub(crate) use task_columns;

/// The columns of a [`TaskRow`] unqualified, as an insert into `tasks` returns them.
pub static TASK_RETURNING: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| task_columns!().replace("t.", ""));

macro_rules! task_select {
    ($where:literal) => {
        concat!("SELECT ", task_columns!(), " FROM tasks t ", $where)
    };
}

pub async fn case_by_ref<'a>(
    on: impl Into<Ex<'a>>,
    case_ref: &str,
) -> Result<Option<CaseRow>, sqlx::Error> {
    sql(case_select!("WHERE case_ref = $1"))
        .bind(case_ref)
        .fetch_optional(on)
        .await
}

pub async fn case_by_id<'a>(on: impl Into<Ex<'a>>, id: i64) -> Result<CaseRow, sqlx::Error> {
    sql(case_select!("WHERE id = $1"))
        .bind(id)
        .fetch_one(on)
        .await
}

/// The cases with these ids, in no particular order; an id that names no case is left out.
pub async fn cases_by_ids(db: &Db, ids: &[i64]) -> Result<Vec<CaseRow>, sqlx::Error> {
    let mut cases = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(rows_per_statement(1)) {
        let select =
            Sql::sized(|marks| format!(case_select!("WHERE id IN {}"), marks.list(chunk.len(), 1)));
        let found: Vec<CaseRow> = select.bind_all(chunk.iter().copied()).fetch_all(db).await?;
        cases.extend(found);
    }
    Ok(cases)
}

/// The cases with these ids that still await allocation, in id order. One statement: give it
/// at most [`crate::db::rows_per_statement`]`(1)` ids at a time.
pub async fn awaiting_allocation<'a>(
    on: impl Into<Ex<'a>>,
    ids: &[i64],
) -> Result<Vec<CaseRow>, sqlx::Error> {
    Sql::sized(|marks| {
        format!(
            case_select!("WHERE allocation = 'pending' AND id IN {} ORDER BY id"),
            marks.list(ids.len(), 1)
        )
    })
    .bind_all(ids.iter().copied())
    .fetch_all(on)
    .await
}

pub async fn stages_of<'a>(
    on: impl Into<Ex<'a>>,
    case_id: i64,
) -> Result<Vec<StageRow>, sqlx::Error> {
    sql(stage_select!("WHERE case_id = $1 ORDER BY id"))
        .bind(case_id)
        .fetch_all(on)
        .await
}

pub async fn open_stage<'a>(
    on: impl Into<Ex<'a>>,
    case_id: i64,
) -> Result<Option<StageRow>, sqlx::Error> {
    sql(stage_select!(
        "WHERE case_id = $1 AND status = 'open' ORDER BY id DESC LIMIT 1"
    ))
    .bind(case_id)
    .fetch_optional(on)
    .await
}

pub async fn latest_stage<'a>(
    on: impl Into<Ex<'a>>,
    case_id: i64,
) -> Result<Option<StageRow>, sqlx::Error> {
    sql(stage_select!("WHERE case_id = $1 ORDER BY id DESC LIMIT 1"))
        .bind(case_id)
        .fetch_optional(on)
        .await
}

pub async fn tasks_of_case<'a>(
    on: impl Into<Ex<'a>>,
    case_id: i64,
) -> Result<Vec<TaskRow>, sqlx::Error> {
    sql(task_select!("WHERE t.case_id = $1 ORDER BY t.id"))
        .bind(case_id)
        .fetch_all(on)
        .await
}

pub async fn tasks_of_stage<'a>(
    on: impl Into<Ex<'a>>,
    stage_id: i64,
) -> Result<Vec<TaskRow>, sqlx::Error> {
    sql(task_select!("WHERE t.stage_id = $1 ORDER BY t.id"))
        .bind(stage_id)
        .fetch_all(on)
        .await
}

/// The task of that name in the case's most recent entry of the stage that holds it.
pub async fn task_by_key<'a>(
    on: impl Into<Ex<'a>>,
    case_id: i64,
    task: &str,
) -> Result<Option<TaskRow>, sqlx::Error> {
    sql(task_select!(
        "WHERE t.case_id = $1 AND t.task = $2 ORDER BY t.id DESC LIMIT 1"
    ))
    .bind(case_id)
    .bind(task)
    .fetch_optional(on)
    .await
}

pub async fn task_by_id<'a>(on: impl Into<Ex<'a>>, id: i64) -> Result<TaskRow, sqlx::Error> {
    sql(task_select!("WHERE t.id = $1"))
        .bind(id)
        .fetch_one(on)
        .await
}

/// Whether a user exists (and, if `active_only`, is active).
pub async fn user_exists<'a>(
    on: impl Into<Ex<'a>>,
    user: &str,
    active_only: bool,
) -> Result<bool, sqlx::Error> {
    let n: i64 = sql("SELECT COUNT(*) FROM users WHERE ref = $1 AND (active OR NOT $2)")
        .bind(user)
        .bind(active_only)
        .scalar(on)
        .await?;
    Ok(n > 0)
}

/// Whether a role exists.
pub async fn role_exists<'a>(on: impl Into<Ex<'a>>, role: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = sql("SELECT COUNT(*) FROM roles WHERE ref = $1")
        .bind(role)
        .scalar(on)
        .await?;
    Ok(n > 0)
}

/// A user's line manager, if the line manager is a known user.
pub async fn line_manager_of<'a>(
    on: impl Into<Ex<'a>>,
    user: Option<&str>,
) -> Result<Option<String>, sqlx::Error> {
    let Some(user) = user else { return Ok(None) };
    sql("SELECT m.ref FROM users u JOIN users m ON m.ref = u.line_manager WHERE u.ref = $1")
        .bind(user)
        .fetch_optional::<(String,)>(on)
        .await
        .map(|r| r.map(|r| r.0))
}
