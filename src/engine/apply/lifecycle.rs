//! Case lifecycle commands: create a case, advance or divert it, reassign it, add to its record
//! (notes, attachments), close it.

use chrono::{DateTime, Utc};

use super::lookup::{
    Applied, ApplyError, Handled, case_to_add_to, known_user, open_case, stage_def,
};
use crate::clock;
use crate::commands::{self, Rejection, reject};
use crate::db::case_stage::CaseStage;
use crate::db::rows::{self, CaseRow};
use crate::db::{NewCase, Reference, Tx, sql};
use crate::definitions::{Definition, Stage};
use crate::engine::context::Ctx;
use crate::engine::progress;
use crate::events::{self, kinds, kinds::Kind};
use crate::rules::RuleSet;
use crate::states::{Allocation, CaseStatus};

pub(super) async fn create_case(
    tx: &mut Tx,
    rules: &RuleSet,
    c: &commands::CreateCase,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    let checked = match check_new_case(tx, rules, c, now).await {
        Err(ApplyError::Rejected(why)) => {
            return Err(already_exists(tx, c).await?.unwrap_or(why).into());
        }
        other => other?,
    };
    let (received, def) = checked;
    let mut new = NewCase {
        row: new_case_row(c, &def, received, now),
        calendar: def.calendar.clone(),
    };
    let case = match tx.new_case_id(&c.case_ref).await? {
        // Kept back, written with the batch's other new cases (see `db::new_rows`).
        Some(id) => {
            new.row.id = id;
            let case = new.row.clone();
            tx.add_case(new);
            case
        }
        None => match insert_case(tx, &new).await? {
            Some(case) => case,
            None => {
                let exists = already_exists(tx, c).await?;
                return Err(exists
                    .unwrap_or_else(|| Rejection(format!("case {} already exists", c.case_ref)))
                    .into());
            }
        },
    };
    let created = Kind::CaseCreated(kinds::CaseCreated {
        kind: c.kind.clone(),
        scheme: c.scheme.clone(),
        workflow: c.workflow.clone(),
        country: c.country.clone(),
        received_at: received,
        definition: def.id.clone(),
        definition_version: def.version.clone(),
    });
    let created = events::Pending::new(case.event_target(), now, source, created);
    let ctx = Ctx::new(rules, &def, now, events::ENGINE);
    let entered =
        progress::enter_stage(tx, (&def, &case, def.first_stage()), vec![created], ctx).await?;
    // As a later command of the same batch would read the new case.
    let open = Some((entered.stage, entered.tasks));
    tx.remember(
        entered.as_of,
        CaseStage {
            case: case.clone(),
            open,
        },
    );
    Ok(Some(case))
}

/// A new case's row as its insert writes it, but for its id: open, not yet allocated.
fn new_case_row(
    c: &commands::CreateCase,
    def: &Definition,
    received: DateTime<Utc>,
    now: DateTime<Utc>,
) -> CaseRow {
    let property = c.property.as_ref();
    CaseRow {
        id: 0,
        case_ref: c.case_ref.clone(),
        kind: c.kind.clone(),
        scheme: c.scheme.clone(),
        workflow: c.workflow.clone(),
        country: c.country.clone(),
        definition_id: def.id.clone(),
        definition_version: def.version.clone(),
        applicant_contact: c.applicant.clone(),
        applicant_group: c.applicant_group.clone(),
        property_ref: property.map(|p| p.property_ref.clone()),
        property_address: property.map(|p| p.address.clone()),
        tenure: property.map(|p| p.tenure.clone()),
        received_at: received,
        attributes: sqlx::types::Json(serde_json::to_value(&c.attributes).unwrap_or_default()),
        status: CaseStatus::Open,
        outcome: None,
        owner: None,
        allocation: Allocation::Pending,
        queue_role: None,
        created_at: now,
        closed_at: None,
        target_at: None,
    }
}

/// Inserts a new case's row and gives it as written; `None` when the case exists already, which
/// is left as it is.
async fn insert_case(tx: &mut Tx, new: &NewCase) -> Result<Option<CaseRow>, sqlx::Error> {
    let insert = sql(concat!(
        "INSERT INTO cases (case_ref, kind, scheme, workflow, country, definition_id, definition_version, \
         applicant_contact, applicant_group, property_ref, property_address, tenure, received_at, attributes, \
         created_at, calendar) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (case_ref) DO NOTHING RETURNING ",
        rows::case_columns!()
    ));
    new.bind(insert).fetch_optional(tx.inserting(None)).await
}

/// The checks a new case must pass before anything is written, but for whether it exists
/// already (its insert finds that): gives its received time and its definition. The applicant and
/// group are looked up once per transaction (see `Tx::found`).
async fn check_new_case(
    tx: &mut Tx,
    rules: &RuleSet,
    c: &commands::CreateCase,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, std::sync::Arc<Definition>), ApplyError> {
    if let Some(a) = &c.applicant
        && !tx.found(Reference::Contact, a).await?
    {
        return reject(format!(
            "applicant: unknown contact {a:?}; send upsert_contact first"
        ))
        .map_err(Into::into);
    }
    if let Some(g) = &c.applicant_group
        && !tx.found(Reference::Group, g).await?
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
    Ok((received, def))
}

/// The rejection of a new case whose reference is taken, which comes before any other reason
/// to reject it; `None` when there is no such case.
async fn already_exists(
    tx: &mut Tx,
    c: &commands::CreateCase,
) -> Result<Option<Rejection>, sqlx::Error> {
    let created: Option<(DateTime<Utc>,)> = sql("SELECT created_at FROM cases WHERE case_ref = $1")
        .bind(&c.case_ref)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(created.map(|(created,)| {
        Rejection(format!(
            "case {} already exists (created {created})",
            c.case_ref
        ))
    }))
}

pub(super) async fn advance_case(
    tx: &mut Tx,
    rules: &RuleSet,
    case_ref: &str,
    to: &str,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
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
    let ctx = Ctx::new(rules, &def, now, source);
    if case.status == crate::states::CaseStatus::AwaitingAdvance {
        choose_next_stage(tx, &def, &case, (to, target), ctx).await?;
        return Ok(Some(case));
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
    let diverted = Kind::StageDiverted(kinds::FromTo {
        from: open.stage.clone(),
        to: to.into(),
    });
    let diverted = events::Pending::new(case.event_target(), now, source, diverted);
    progress::enter_stage(tx, (&def, &case, target), vec![diverted], ctx).await?;
    Ok(Some(case))
}

/// Advances a case that waits for the CRM to choose its next stage.
async fn choose_next_stage(
    tx: &mut Tx,
    def: &Definition,
    case: &CaseRow,
    (to, target): (&str, &Stage),
    ctx: Ctx<'_>,
) -> Applied {
    let Some(last) = rows::latest_stage(&mut *tx, case.id).await? else {
        return reject(format!(
            "case {} has no stage to advance from",
            case.case_ref
        ))
        .map_err(Into::into);
    };
    let choices = match &stage_def(def, case, &last.stage)?.next {
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
    let advanced = Kind::CaseAdvanced(kinds::FromTo {
        from: last.stage.clone(),
        to: to.into(),
    });
    let advanced = events::Pending::new(case.event_target(), ctx.now, ctx.actor, advanced);
    progress::enter_stage(tx, (def, case, target), vec![advanced], ctx).await?;
    Ok(())
}

pub(super) async fn reassign_case(
    tx: &mut Tx,
    rules: &RuleSet,
    r: &commands::ReassignCase,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
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
    progress::change_owner(tx, &case, &r.owner, None, source, now).await?;
    Ok(Some(case))
}

pub(super) async fn add_note(tx: &mut Tx, n: &commands::AddNote, now: DateTime<Utc>) -> Handled {
    let case = case_to_add_to(tx, &n.case_ref).await?;
    known_user(tx, "by", &n.by).await?;
    let id: i64 =
        sql("INSERT INTO notes (case_id, author, body, at) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(case.id)
            .bind(&n.by)
            .bind(&n.text)
            .bind(now)
            .scalar(&mut *tx)
            .await?;
    let note = Kind::NoteAdded(kinds::NoteAdded { note_id: id });
    events::record(tx, case.event_target(), now, &n.by, note).await?;
    Ok(Some(case))
}

pub(super) async fn attach_file(
    tx: &mut Tx,
    f: &commands::AttachFile,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    let case = case_to_add_to(tx, &f.case_ref).await?;
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
    let attached = Kind::FileAttached(kinds::FileAttached {
        attachment_id: id,
        media_type: f.media_type.clone(),
        size: f.size,
        sha256: f.sha256.as_deref().map(str::to_lowercase),
    });
    let by = f.by.as_deref().unwrap_or(source);
    events::record(tx, case.event_target(), now, by, attached).await?;
    Ok(Some(case))
}

pub(super) async fn close_case(
    tx: &mut Tx,
    rules: &RuleSet,
    c: &commands::CloseCase,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    let (case, def) = open_case(tx, rules, &c.case_ref).await?;
    if let Some(by) = &c.by {
        known_user(tx, "by", by).await?;
    }
    let actor = c.by.as_deref().unwrap_or(source);
    let ctx = Ctx::new(rules, &def, now, actor);
    for s in rows::stages_of(&mut *tx, case.id)
        .await?
        .iter()
        .filter(|s| s.status == crate::states::StageStatus::Open)
    {
        progress::finish_stage(tx, &case, s, "closed", "case closed", ctx).await?;
    }
    sql("UPDATE cases SET status = 'closed', outcome = $1, closed_at = $2 WHERE id = $3")
        .bind(&c.outcome)
        .bind(now)
        .bind(case.id)
        .execute(&mut *tx)
        .await?;
    let closed = Kind::CaseClosed(kinds::CaseClosed {
        outcome: c.outcome.clone(),
    });
    events::record(tx, case.event_target(), now, actor, closed).await?;
    Ok(Some(case))
}
