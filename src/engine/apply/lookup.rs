//! What every command handler shares: the rejection type, and the lookups that turn a command's
//! references into rows or a rejection a person can act on.

use crate::commands::Rejection;
use crate::db::case_stage::{self, CaseStage};
use crate::db::rows::{self, CaseRow, StageRow, TaskRow};
use crate::db::{Reference, Tx};
use crate::definitions::Definition;
use crate::rules::RuleSet;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Rejected(#[from] Rejection),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

pub type Applied = Result<(), ApplyError>;

/// What a command's handler gives back: the case it is about, as the handler read it before the
/// change, for what follows every command (a housing options case's target, which reads the
/// case's kind, definition, dates and facts); `None` for a command about no case, or one that
/// changed those facts, so the case is read again.
pub type Handled = Result<Option<CaseRow>, ApplyError>;

/// The source of a command that no API client submitted (written into the inbox table, or by
/// `casewarden submit`): the actor of its events unless it names a user in `by`.
pub const CRM: &str = "crm";

/// A case by reference, in any state.
pub(super) async fn any_case(tx: &mut Tx, case_ref: &str) -> Result<CaseRow, ApplyError> {
    rows::case_by_ref(&mut *tx, case_ref)
        .await?
        .ok_or_else(|| Rejection(format!("unknown case {case_ref:?}")).into())
}

/// A case that may still be added to: any case, open or closed, but not one whose personal data
/// the retention schedule has removed (a note or file added then would outlive it).
pub(super) async fn case_to_add_to(tx: &mut Tx, case_ref: &str) -> Result<CaseRow, ApplyError> {
    let case = any_case(tx, case_ref).await?;
    let retained: Option<(Option<chrono::DateTime<chrono::Utc>>,)> =
        crate::db::sql("SELECT retained_at FROM cases WHERE id = $1")
            .bind(case.id)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some((Some(at),)) = retained {
        return Err(Rejection(format!(
            "case {case_ref}'s personal data was removed under the retention schedule on {}; it takes no more notes or files",
            at.format("%Y-%m-%d")
        ))
        .into());
    }
    Ok(case)
}

/// An open case and its definition.
pub async fn open_case(
    tx: &mut Tx,
    rules: &RuleSet,
    case_ref: &str,
) -> Result<(CaseRow, std::sync::Arc<Definition>), ApplyError> {
    let case = any_case(tx, case_ref).await?;
    let def = definition_of_open(rules, &case)?;
    Ok((case, def))
}

/// The definition of a case that is open, or why the case takes no changes.
fn definition_of_open(
    rules: &RuleSet,
    case: &CaseRow,
) -> Result<std::sync::Arc<Definition>, ApplyError> {
    let case_ref = &case.case_ref;
    if !case.is_open() {
        let outcome = case.outcome.as_deref().unwrap_or(case.status.as_str());
        return Err(Rejection(format!(
            "case {case_ref} is {} (outcome: {outcome}); it takes no more changes",
            case.status
        ))
        .into());
    }
    rules.definition(&case.definition_id).cloned().ok_or_else(|| {
        Rejection(format!(
            "case {case_ref} follows definition {:?}, which is not in the loaded rule set; restore it under rules/definitions/",
            case.definition_id
        ))
        .into()
    })
}

/// A task of the case's open stage, the stage, and all the stage's tasks (the task among them).
pub(super) struct InOpenStage {
    pub task: TaskRow,
    pub stage: StageRow,
    pub tasks: Vec<TaskRow>,
}

/// An open case, its definition, and the named task in its open stage, read with one statement
/// (see `db::case_stage`); with a reason when the case is unknown or closed, the task's name is
/// unknown, or the task belongs to a stage the case is not in.
pub(super) async fn open_case_task(
    tx: &mut Tx,
    rules: &RuleSet,
    case_ref: &str,
    task: &str,
) -> Result<(CaseRow, std::sync::Arc<Definition>, InOpenStage), ApplyError> {
    let Some(CaseStage { case, open }) = case_stage::case_and_open_stage(tx, case_ref).await?
    else {
        return Err(Rejection(format!("unknown case {case_ref:?}")).into());
    };
    let def = definition_of_open(rules, &case)?;
    let Some(stage_def) = def.stages.iter().find(|s| s.task(task).is_some()) else {
        return Err(Rejection(format!(
            "unknown task {task:?}: definition {} has no such task",
            def.id
        ))
        .into());
    };
    let Some((open, tasks)) = open else {
        return Err(Rejection(format!(
            "case {} has no open stage (it is {}); task {task:?} cannot change now",
            case.case_ref, case.status
        ))
        .into());
    };
    match tasks.iter().find(|t| t.task == task) {
        Some(row) => {
            let in_stage = InOpenStage {
                task: row.clone(),
                stage: open,
                tasks,
            };
            Ok((case, def, in_stage))
        }
        None => Err(Rejection(format!(
            "task {task:?} belongs to stage {}, but case {} is in stage {}",
            stage_def.key, case.case_ref, open.stage
        ))
        .into()),
    }
}

/// A stage of the case's definition. A rule set that dropped or renamed the stage a case is in
/// makes the command fail for that case only, with a reason that says what to restore.
pub(super) fn stage_def<'d>(
    def: &'d Definition,
    case: &CaseRow,
    key: &str,
) -> Result<&'d crate::definitions::Stage, ApplyError> {
    def.stage(key).ok_or_else(|| {
        Rejection(format!(
            "case {} is in stage {key:?}, which definition {} no longer has; restore the stage in {}",
            case.case_ref,
            def.id,
            def.file.display()
        ))
        .into()
    })
}

pub async fn known_user(tx: &mut Tx, field: &str, user: &str) -> Result<(), ApplyError> {
    if tx.found(Reference::User, user).await? {
        Ok(())
    } else {
        Err(Rejection(format!(
            "{field}: unknown user {user:?}; send upsert_user first"
        ))
        .into())
    }
}

pub(super) fn must_be_active(case: &CaseRow, task: &TaskRow) -> Result<(), ApplyError> {
    match task.status.as_str() {
        "active" => Ok(()),
        "on_hold" => reject_task(
            case,
            task,
            &format!(
                "is on hold until {}; release it first",
                task.hold_until.map(|t| t.to_rfc3339()).unwrap_or_default()
            ),
        ),
        "waiting" => reject_task(
            case,
            task,
            "is not active yet (waiting for its dependencies or for activate_task)",
        ),
        other => reject_task(case, task, &format!("is not active (it is {other})")),
    }
}

pub(super) fn reject_task<T>(case: &CaseRow, task: &TaskRow, why: &str) -> Result<T, ApplyError> {
    Err(Rejection(format!(
        "task {} on case {} {why}",
        task.task, case.case_ref
    ))
    .into())
}
