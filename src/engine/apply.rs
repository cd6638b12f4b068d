//! Applying one command inside a transaction: check it against the database, change state,
//! write the events. A rejection leaves nothing behind, because the caller rolls back.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::context::Ctx;
use super::progress;
use super::rows::{self, CaseRow, StageRow, TaskRow};
use crate::clock;
use crate::commands::{self, Command, Rejection, reject};
use crate::db::{Tx, sql};
use crate::definitions::{Activation, Definition};
use crate::events;
use crate::rules::RuleSet;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Rejected(#[from] Rejection),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

type Applied = Result<(), ApplyError>;

/// The actor of a command: who the CRM says did it, else the CRM itself.
pub(super) const CRM: &str = "crm";

pub async fn apply(tx: &mut Tx, rules: &RuleSet, command: &Command, now: DateTime<Utc>) -> Applied {
    one(tx, rules, command, now).await?;
    // A housing options case's target follows its tasks: whatever the command changed, see
    // whether the target moved.
    if let Some(case_ref) = command.case_ref()
        && let Some(case) = rows::case_by_ref(&mut *tx, case_ref).await?
    {
        super::case_target::refresh(tx, rules, &case, command.type_name(), now).await?;
    }
    Ok(())
}

async fn one(tx: &mut Tx, rules: &RuleSet, command: &Command, now: DateTime<Utc>) -> Applied {
    match command {
        Command::SubmitEnquiry(e) => super::housing::submit_enquiry(tx, rules, e, now).await,
        Command::RenderPack(r) => super::housing::render_pack(tx, rules, r, now).await,
        Command::UpsertUser(u) => upsert_user(tx, u, now).await,
        Command::UpsertRole(r) => {
            sql("INSERT INTO roles (ref, name) VALUES ($1, $2) ON CONFLICT (ref) DO UPDATE SET name = excluded.name")
                .bind(&r.role_ref)
                .bind(&r.name)
                .execute(&mut *tx)
                .await?;
            events::append(
                tx,
                None,
                now,
                "role_upserted",
                CRM,
                json!({"role": r.role_ref}),
            )
            .await?;
            Ok(())
        }
        Command::UpsertContact(c) => {
            sql("INSERT INTO contacts (ref, name, email, phone, address, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (ref) DO UPDATE SET name = excluded.name, email = excluded.email, \
                 phone = excluded.phone, address = excluded.address, updated_at = excluded.updated_at")
                .bind(&c.contact_ref)
                .bind(&c.name)
                .bind(c.email.as_deref())
                .bind(c.phone.as_deref())
                .bind(c.address.as_deref())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            events::append(
                tx,
                None,
                now,
                "contact_upserted",
                CRM,
                json!({"contact": c.contact_ref}),
            )
            .await?;
            Ok(())
        }
        Command::UpsertContactGroup(g) => {
            for m in &g.members {
                if !known(tx, Known::Contact, m).await? {
                    return Err(Rejection(format!(
                        "members: unknown contact {m:?}; send upsert_contact first"
                    ))
                    .into());
                }
            }
            sql("INSERT INTO contact_groups (ref, name) VALUES ($1, $2) ON CONFLICT (ref) DO UPDATE SET name = excluded.name")
                .bind(&g.group_ref)
                .bind(&g.name)
                .execute(&mut *tx)
                .await?;
            sql("DELETE FROM contact_group_members WHERE group_ref = $1")
                .bind(&g.group_ref)
                .execute(&mut *tx)
                .await?;
            for m in &g.members {
                sql("INSERT INTO contact_group_members (group_ref, contact_ref) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(&g.group_ref)
                    .bind(m)
                    .execute(&mut *tx)
                    .await?;
            }
            events::append(
                tx,
                None,
                now,
                "contact_group_upserted",
                CRM,
                json!({"group": g.group_ref, "members": g.members.len()}),
            )
            .await?;
            Ok(())
        }
        Command::CreateCase(c) => create_case(tx, rules, c, now).await,
        Command::ActivateTask(t) => {
            let (case, def) = open_case(tx, rules, &t.case_ref).await?;
            let (task, stage_row) = task_in_open_stage(tx, &def, &case, &t.task).await?;
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
            let unmet = progress::unmet_dependencies(
                stage,
                &rows::tasks_of_stage(&mut *tx, stage_row.id).await?,
                &task.task,
            );
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
                "manual",
                Ctx {
                    now,
                    actor: CRM,
                    cal: rules.calendar(&def),
                    sandbox: &rules.sandbox,
                },
            )
            .await?;
            Ok(())
        }
        Command::CompleteTask(t) => {
            let (case, def) = open_case(tx, rules, &t.case_ref).await?;
            let (task, stage_row) = task_in_open_stage(tx, &def, &case, &t.task).await?;
            known_user(tx, "by", &t.by).await?;
            must_be_active(&case, &task)?;
            let at = match &t.at {
                Some(at) => commands::time("at", at)?,
                None => now,
            };
            if at > now {
                return reject(format!("at {at} is in the future (now is {now})"))
                    .map_err(Into::into);
            }
            if task.activated_at.is_some_and(|a| at < a) {
                return reject(format!("at {at} is before the task was activated"))
                    .map_err(Into::into);
            }
            progress::complete_task(
                tx,
                &def,
                &case,
                &stage_row,
                &task,
                at,
                t.outcome.as_deref(),
                Ctx {
                    now,
                    actor: &t.by,
                    cal: rules.calendar(&def),
                    sandbox: &rules.sandbox,
                },
            )
            .await?;
            Ok(())
        }
        Command::SkipTask(t) => {
            let (case, def) = open_case(tx, rules, &t.case_ref).await?;
            let (task, stage_row) = task_in_open_stage(tx, &def, &case, &t.task).await?;
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
            let actor = t.by.as_deref().unwrap_or(CRM);
            sql("UPDATE tasks SET status = 'skipped', completed_at = $1, completed_by = $2, next_check_at = NULL, hold_until = NULL WHERE id = $3")
                .bind(now)
                .bind(t.by.as_deref())
                .bind(task.id)
                .execute(&mut *tx)
                .await?;
            events::append(
                tx,
                case.event_target(),
                now,
                "task_skipped",
                actor,
                json!({"stage": stage_row.stage, "task": task.task, "reason": t.reason}),
            )
            .await?;
            progress::after_task_done(
                tx,
                &def,
                &case,
                &stage_row,
                Ctx {
                    now,
                    actor,
                    cal: rules.calendar(&def),
                    sandbox: &rules.sandbox,
                },
            )
            .await?;
            Ok(())
        }
        Command::HoldTask(h) => {
            let (case, def) = open_case(tx, rules, &h.case_ref).await?;
            let (task, stage_row) = task_in_open_stage(tx, &def, &case, &h.task).await?;
            must_be_active(&case, &task)?;
            let until = commands::time("until", &h.until)?;
            if until <= now {
                return reject(format!("until {until} is not in the future (now is {now}); a hold needs a release date to come")).map_err(Into::into);
            }
            sql("UPDATE tasks SET status = 'on_hold', hold_until = $1, hold_reason = $2, held_since = $3, next_check_at = NULL WHERE id = $4")
                .bind(until)
                .bind(&h.reason)
                .bind(now)
                .bind(task.id)
                .execute(&mut *tx)
                .await?;
            events::append(tx, case.event_target(), now, "task_held", CRM,
                json!({"stage": stage_row.stage, "task": task.task, "until": until, "reason": h.reason})).await?;
            Ok(())
        }
        Command::ReleaseTask(t) => {
            let (case, def) = open_case(tx, rules, &t.case_ref).await?;
            let (task, _) = task_in_open_stage(tx, &def, &case, &t.task).await?;
            if task.status != "on_hold" {
                return reject_task(&case, &task, &format!("is {}, not on hold", task.status));
            }
            super::holds::release(tx, rules, &case, &task, "released early", CRM, now).await?;
            Ok(())
        }
        Command::AdvanceCase(a) => advance_case(tx, rules, &a.case_ref, &a.to_stage, now).await,
        Command::ReassignCase(r) => {
            let (case, _) = open_case(tx, rules, &r.case_ref).await?;
            if !rows::user_exists(&mut *tx, &r.owner, true).await? {
                return reject(format!(
                    "owner: {:?} is not an active user; send upsert_user first",
                    r.owner
                ))
                .map_err(Into::into);
            }
            if case.owner.as_deref() == Some(r.owner.as_str()) {
                return reject(format!(
                    "case {} is already owned by {}",
                    case.case_ref, r.owner
                ))
                .map_err(Into::into);
            }
            progress::set_owner(tx, &case, &r.owner).await?;
            events::append(
                tx,
                case.event_target(),
                now,
                "owner_changed",
                CRM,
                json!({"from": case.owner, "to": r.owner}),
            )
            .await?;
            Ok(())
        }
        Command::AddNote(n) => {
            let case = any_case(tx, &n.case_ref).await?;
            known_user(tx, "by", &n.by).await?;
            let id: i64 = sql("INSERT INTO notes (case_id, author, body, at) VALUES ($1, $2, $3, $4) RETURNING id")
                .bind(case.id)
                .bind(&n.by)
                .bind(&n.text)
                .bind(now)
                .scalar(&mut *tx)
                .await?;
            events::append(
                tx,
                case.event_target(),
                now,
                "note_added",
                &n.by,
                json!({"note_id": id, "text": n.text}),
            )
            .await?;
            Ok(())
        }
        Command::AttachFile(f) => {
            let case = any_case(tx, &f.case_ref).await?;
            if let Some(by) = &f.by {
                known_user(tx, "by", by).await?;
            }
            let id: i64 = sql("INSERT INTO attachments (case_id, name, media_type, uri, size, sha256, at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id")
                .bind(case.id)
                .bind(&f.name)
                .bind(&f.media_type)
                .bind(&f.uri)
                .bind(f.size)
                .bind(f.sha256.as_deref().map(str::to_lowercase))
                .bind(now)
                .scalar(&mut *tx)
                .await?;
            events::append(tx, case.event_target(), now, "file_attached", f.by.as_deref().unwrap_or(CRM),
                json!({"attachment_id": id, "name": f.name, "media_type": f.media_type, "uri": f.uri, "size": f.size, "sha256": f.sha256.as_deref().map(str::to_lowercase)})).await?;
            Ok(())
        }
        Command::CloseCase(c) => {
            let (case, def) = open_case(tx, rules, &c.case_ref).await?;
            if let Some(by) = &c.by {
                known_user(tx, "by", by).await?;
            }
            let actor = c.by.as_deref().unwrap_or(CRM);
            let ctx = Ctx {
                now,
                actor,
                cal: rules.calendar(&def),
                sandbox: &rules.sandbox,
            };
            for s in rows::stages_of(&mut *tx, case.id)
                .await?
                .iter()
                .filter(|s| s.status == "open")
            {
                progress::finish_stage(tx, &case, s, "closed", "case closed", ctx).await?;
            }
            sql("UPDATE cases SET status = 'closed', outcome = $1, closed_at = $2 WHERE id = $3")
                .bind(&c.outcome)
                .bind(now)
                .bind(case.id)
                .execute(&mut *tx)
                .await?;
            events::append(
                tx,
                case.event_target(),
                now,
                "case_closed",
                actor,
                json!({"outcome": c.outcome}),
            )
            .await?;
            Ok(())
        }
    }
}

async fn upsert_user(tx: &mut Tx, u: &commands::UpsertUser, now: DateTime<Utc>) -> Applied {
    for r in &u.roles {
        if !known(tx, Known::Role, r).await? {
            return Err(
                Rejection(format!("roles: unknown role {r:?}; send upsert_role first")).into(),
            );
        }
    }
    sql("INSERT INTO users (ref, name, email, line_manager, active, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (ref) DO UPDATE SET name = excluded.name, email = excluded.email, \
         line_manager = excluded.line_manager, active = excluded.active, updated_at = excluded.updated_at")
        .bind(&u.user_ref)
        .bind(&u.name)
        .bind(&u.email)
        .bind(u.line_manager.as_deref())
        .bind(u.active)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sql("DELETE FROM user_roles WHERE user_ref = $1")
        .bind(&u.user_ref)
        .execute(&mut *tx)
        .await?;
    for r in &u.roles {
        sql("INSERT INTO user_roles (user_ref, role_ref) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&u.user_ref)
            .bind(r)
            .execute(&mut *tx)
            .await?;
    }
    events::append(tx, None, now, "user_upserted", CRM,
        json!({"user": u.user_ref, "roles": u.roles, "line_manager": u.line_manager, "active": u.active})).await?;
    Ok(())
}

async fn create_case(
    tx: &mut Tx,
    rules: &RuleSet,
    c: &commands::CreateCase,
    now: DateTime<Utc>,
) -> Applied {
    if let Some(existing) = rows::case_by_ref(&mut *tx, &c.case_ref).await? {
        return reject(format!(
            "case {} already exists (created {})",
            c.case_ref, existing.created_at
        ))
        .map_err(Into::into);
    }
    if let Some(a) = &c.applicant
        && !known(tx, Known::Contact, a).await?
    {
        return reject(format!(
            "applicant: unknown contact {a:?}; send upsert_contact first"
        ))
        .map_err(Into::into);
    }
    if let Some(g) = &c.applicant_group
        && !known(tx, Known::Group, g).await?
    {
        return reject(format!(
            "applicant_group: unknown contact group {g:?}; send upsert_contact_group first"
        ))
        .map_err(Into::into);
    }
    let received = commands::time("received_at", &c.received_at)?;
    if received > now {
        return reject(format!(
            "received_at {received} is in the future (now is {now})"
        ))
        .map_err(Into::into);
    }
    let stream = c
        .scheme
        .as_deref()
        .or(c.workflow.as_deref())
        .unwrap_or_default();
    let def = rules
        .definition_for(&c.kind, stream, &c.country, clock::london_date(received))
        .map_err(|e| Rejection(e.0))?
        .clone();
    let property = c.property.as_ref();
    let id: i64 = sql(
        "INSERT INTO cases (case_ref, kind, scheme, country, definition_id, definition_version, applicant_contact, \
         applicant_group, property_ref, property_address, tenure, received_at, attributes, created_at, calendar, workflow) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
    )
    .bind(&c.case_ref)
    .bind(&c.kind)
    .bind(c.scheme.as_deref())
    .bind(&c.country)
    .bind(&def.id)
    .bind(&def.version)
    .bind(c.applicant.as_deref())
    .bind(c.applicant_group.as_deref())
    .bind(property.map(|p| p.property_ref.as_str()))
    .bind(property.map(|p| p.address.as_str()))
    .bind(property.map(|p| p.tenure.as_str()))
    .bind(received)
    .bind(serde_json::to_value(&c.attributes).unwrap_or_default())
    .bind(now)
    .bind(&def.calendar)
    .bind(c.workflow.as_deref())
    .scalar(&mut *tx)
    .await?;
    let case = rows::case_by_id(&mut *tx, id).await?;
    events::append(
        tx,
        Some((id, &case.case_ref)),
        now,
        "case_created",
        CRM,
        json!({
            "kind": c.kind, "scheme": c.scheme, "workflow": c.workflow, "country": c.country, "received_at": received,
            "definition": def.id, "definition_version": def.version,
        }),
    )
    .await?;
    progress::enter_stage(
        tx,
        &def,
        &case,
        def.first_stage(),
        Ctx {
            now,
            actor: events::ENGINE,
            cal: rules.calendar(&def),
            sandbox: &rules.sandbox,
        },
    )
    .await?;
    Ok(())
}

async fn advance_case(
    tx: &mut Tx,
    rules: &RuleSet,
    case_ref: &str,
    to: &str,
    now: DateTime<Utc>,
) -> Applied {
    let (case, def) = open_case(tx, rules, case_ref).await?;
    let Some(target) = def.stage(to) else {
        let known: Vec<_> = def.stages.iter().map(|s| s.key.as_str()).collect();
        return reject(format!(
            "to_stage: {to:?} is not a stage of {} (stages: {})",
            def.id,
            known.join(", ")
        ))
        .map_err(Into::into);
    };
    let ctx = Ctx {
        now,
        actor: CRM,
        cal: rules.calendar(&def),
        sandbox: &rules.sandbox,
    };
    if case.status == "awaiting_advance" {
        let Some(last) = rows::latest_stage(&mut *tx, case.id).await? else {
            return reject(format!("case {case_ref} has no stage to advance from"))
                .map_err(Into::into);
        };
        let choices = match &stage_def(&def, &case, &last.stage)?.next {
            crate::definitions::Successors::Choice(c) => c.clone(),
            _ => Vec::new(),
        };
        if !choices.iter().any(|c| c == to) {
            return reject(format!(
                "to_stage: {to:?} cannot follow {}; choose one of: {}",
                last.stage,
                choices.join(", ")
            ))
            .map_err(Into::into);
        }
        sql("UPDATE cases SET status = 'open' WHERE id = $1")
            .bind(case.id)
            .execute(&mut *tx)
            .await?;
        events::append(
            tx,
            case.event_target(),
            now,
            "case_advanced",
            CRM,
            json!({"from": last.stage, "to": to}),
        )
        .await?;
        progress::enter_stage(tx, &def, &case, target, ctx).await?;
        return Ok(());
    }
    let Some(open) = rows::open_stage(&mut *tx, case.id).await? else {
        return reject(format!("case {case_ref} has no open stage to advance from"))
            .map_err(Into::into);
    };
    let current = stage_def(&def, &case, &open.stage)?;
    if !current.diversions.iter().any(|d| d == to) {
        let allowed = if current.diversions.is_empty() {
            "it allows no diversions".to_string()
        } else {
            format!("it may divert to: {}", current.diversions.join(", "))
        };
        return reject(format!(
            "to_stage: case {case_ref} is in stage {}, which moves on by itself when its mandatory tasks are done; {allowed}",
            open.stage
        ))
        .map_err(Into::into);
    }
    progress::finish_stage(
        tx,
        &case,
        &open,
        "diverted",
        &format!("diverted to {to}"),
        ctx,
    )
    .await?;
    events::append(
        tx,
        case.event_target(),
        now,
        "stage_diverted",
        CRM,
        json!({"from": open.stage, "to": to}),
    )
    .await?;
    progress::enter_stage(tx, &def, &case, target, ctx).await?;
    Ok(())
}

/// A case by reference, in any state.
async fn any_case(tx: &mut Tx, case_ref: &str) -> Result<CaseRow, ApplyError> {
    rows::case_by_ref(&mut *tx, case_ref)
        .await?
        .ok_or_else(|| Rejection(format!("unknown case {case_ref:?}")).into())
}

/// An open case and its definition.
pub(super) async fn open_case(
    tx: &mut Tx,
    rules: &RuleSet,
    case_ref: &str,
) -> Result<(CaseRow, std::sync::Arc<Definition>), ApplyError> {
    let case = any_case(tx, case_ref).await?;
    if !case.is_open() {
        let outcome = case.outcome.as_deref().unwrap_or(&case.status);
        return Err(Rejection(format!(
            "case {case_ref} is {} (outcome: {outcome}); it takes no more changes",
            case.status
        ))
        .into());
    }
    let def = rules.definition(&case.definition_id).cloned().ok_or_else(|| {
        Rejection(format!(
            "case {case_ref} follows definition {:?}, which is not in the loaded rule set; restore it under rules/definitions/",
            case.definition_id
        ))
    })?;
    Ok((case, def))
}

/// The named task in the case's open stage, with a reason when the name is unknown or the task
/// belongs to a stage the case is not in.
async fn task_in_open_stage(
    tx: &mut Tx,
    def: &Definition,
    case: &CaseRow,
    task: &str,
) -> Result<(TaskRow, StageRow), ApplyError> {
    let Some(stage_def) = def.stages.iter().find(|s| s.task(task).is_some()) else {
        return Err(Rejection(format!(
            "unknown task {task:?}: definition {} has no such task",
            def.id
        ))
        .into());
    };
    let open = rows::open_stage(&mut *tx, case.id).await?;
    let row = rows::task_by_key(&mut *tx, case.id, task).await?;
    match (open, row) {
        (Some(open), Some(row)) if row.stage_id == open.id => Ok((row, open)),
        (Some(open), _) => Err(Rejection(format!(
            "task {task:?} belongs to stage {}, but case {} is in stage {}",
            stage_def.key, case.case_ref, open.stage
        ))
        .into()),
        (None, _) => Err(Rejection(format!(
            "case {} has no open stage (it is {}); task {task:?} cannot change now",
            case.case_ref, case.status
        ))
        .into()),
    }
}

/// A stage of the case's definition. A rule set that dropped or renamed the stage a case is in
/// makes the command fail for that case only, with a reason that says what to restore.
fn stage_def<'d>(
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

/// Reference data a command may name.
enum Known {
    Role,
    Contact,
    Group,
}

async fn known(tx: &mut Tx, what: Known, reference: &str) -> Result<bool, sqlx::Error> {
    let query = match what {
        Known::Role => sql("SELECT COUNT(*) FROM roles WHERE ref = $1"),
        Known::Contact => sql("SELECT COUNT(*) FROM contacts WHERE ref = $1"),
        Known::Group => sql("SELECT COUNT(*) FROM contact_groups WHERE ref = $1"),
    };
    Ok(query.bind(reference).scalar::<i64>(&mut *tx).await? > 0)
}

pub(super) async fn known_user(tx: &mut Tx, field: &str, user: &str) -> Result<(), ApplyError> {
    if rows::user_exists(&mut *tx, user, false).await? {
        Ok(())
    } else {
        Err(Rejection(format!(
            "{field}: unknown user {user:?}; send upsert_user first"
        ))
        .into())
    }
}

fn must_be_active(case: &CaseRow, task: &TaskRow) -> Result<(), ApplyError> {
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

fn reject_task(case: &CaseRow, task: &TaskRow, why: &str) -> Result<(), ApplyError> {
    Err(Rejection(format!(
        "task {} on case {} {why}",
        task.task, case.case_ref
    ))
    .into())
}
