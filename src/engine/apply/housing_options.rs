//! Housing options commands: submit the answers to a case's enquiry form, and ask for its
//! housing pack (made later by the pack step).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::lookup::{ApplyError, Handled, known_user, open_case};
use crate::commands::{Rejection, RenderPack, SubmitEnquiry};
use crate::db::rows::CaseRow;
use crate::db::{Tx, sql};
use crate::definitions::Definition;
use crate::engine::pack_request;
use crate::events::{self, kinds, kinds::Kind};
use crate::rules::RuleSet;

/// A housing options case and its workflow, or a rejection saying why this is not one.
pub(super) async fn housing_case(
    tx: &mut Tx,
    rules: &RuleSet,
    case_ref: &str,
    command: &str,
) -> Result<(CaseRow, Arc<Definition>), ApplyError> {
    let (case, def) = open_case(tx, rules, case_ref).await?;
    if !def.is_housing_options() {
        return Err(Rejection(format!(
            "case {case_ref} is a {} case; {command} is for housing options cases",
            case.kind
        ))
        .into());
    }
    Ok((case, def))
}

pub(super) async fn submit_enquiry(
    tx: &mut Tx,
    rules: &RuleSet,
    e: &SubmitEnquiry,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    let (case, def) = housing_case(tx, rules, &e.case_ref, "submit_enquiry").await?;
    if let Some(by) = &e.by {
        known_user(tx, "by", by).await?;
    }
    let workflow = def.stream();
    let form = rules.advice.form_for(workflow).ok_or_else(|| {
        Rejection(format!(
            "workflow {workflow} has no enquiry form in this rule set"
        ))
    })?;
    let current: Option<(sqlx::types::Json<Value>, i64)> =
        sql("SELECT answers, submissions FROM enquiries WHERE case_id = $1")
            .bind(case.id)
            .fetch_optional(&mut *tx)
            .await?;
    let (before, submissions) = match current {
        // Answers to questions the form no longer asks are dropped, not carried on.
        Some((answers, n)) => (
            answers
                .0
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| form.question(k).is_some())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            n,
        ),
        None => (Map::new(), 0),
    };
    let (answers, changes) = form.merge(&before, &e.answers).map_err(|reasons| {
        Rejection(format!(
            "answers rejected by form {}: {}",
            form.id,
            reasons.join("; ")
        ))
    })?;
    let submission = submissions + 1;
    sql("INSERT INTO enquiries (case_id, form_id, form_version, answers, submissions, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (case_id) DO UPDATE SET form_id = excluded.form_id, \
         form_version = excluded.form_version, answers = excluded.answers, submissions = excluded.submissions, \
         updated_at = excluded.updated_at, updated_by = excluded.updated_by")
        .bind(case.id)
        .bind(&form.id)
        .bind(&form.version)
        .bind(Value::Object(answers))
        .bind(submission)
        .bind(now)
        .bind(e.by.as_deref())
        .execute(&mut *tx)
        .await?;
    let submitted = Kind::EnquirySubmitted(kinds::EnquirySubmitted {
        form: form.id.clone(),
        form_version: form.version.clone(),
        submission,
        changed: changes.into_iter().map(|c| c.question).collect(),
    });
    let by = e.by.as_deref().unwrap_or(source);
    events::record(tx, case.event_target(), now, by, submitted).await?;
    // A pack that waited for answers can be made now.
    sql("UPDATE pack_requests SET due_at = $1 WHERE case_id = $2 AND due_at IS NULL")
        .bind(now)
        .bind(case.id)
        .execute(&mut *tx)
        .await?;
    Ok(Some(case))
}

pub(super) async fn render_pack(
    tx: &mut Tx,
    rules: &RuleSet,
    r: &RenderPack,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    let (case, def) = housing_case(tx, rules, &r.case_ref, "render_pack").await?;
    if def.pack.is_none() {
        return Err(Rejection(format!(
            "workflow {} ({}) has no [pack]; add one to {}",
            def.stream(),
            def.id,
            def.file.display()
        ))
        .into());
    }
    if let Some(by) = &r.by {
        known_user(tx, "by", by).await?;
    }
    pack_request::request(tx, &case, None, r.by.as_deref().unwrap_or(source), now).await?;
    Ok(Some(case))
}
