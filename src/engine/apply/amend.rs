//! Amending a case (`update_case`): its attributes, property and applicant change, with the
//! reason; the open clocks that depend on a changed fact move (`engine::retarget`); one
//! `case_updated` event records the old and new values and each moved target. Closed cases take
//! no amendment. Allocation runs again only when the command asks.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::lookup::{ApplyError, Handled, known_user, open_case};
use crate::commands::{self, Rejection, reject};
use crate::db::rows::CaseRow;
use crate::db::{Reference, Tx, sql};
use crate::engine::retarget;
use crate::events::{self, kinds, kinds::FactChange, kinds::Kind};
use crate::rules::RuleSet;

pub(super) async fn update_case(
    tx: &mut Tx,
    rules: &RuleSet,
    u: &commands::UpdateCase,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    let (case, def) = open_case(tx, rules, &u.case_ref).await?;
    if let Some(by) = &u.by {
        known_user(tx, "by", by).await?;
    }
    if let Some(a) = &u.applicant
        && !tx.found(Reference::Contact, a).await?
    {
        return reject(format!(
            "applicant: unknown contact {a:?}; send upsert_contact first"
        ))
        .map_err(Into::into);
    }
    if let Some(g) = &u.applicant_group
        && !tx.found(Reference::Group, g).await?
    {
        return reject(format!(
            "applicant_group: unknown contact group {g:?}; send upsert_contact_group first"
        ))
        .map_err(Into::into);
    }
    let after = amended(&case, u)?;
    let changes = changes(&case, &after);
    if changes.is_empty() && !u.reallocate {
        return reject(format!(
            "case {} already has these facts; nothing to change",
            case.case_ref
        ))
        .map_err(Into::into);
    }
    sql(
        "UPDATE cases SET attributes = $1, property_ref = $2, property_address = $3, tenure = $4, \
         applicant_contact = $5, applicant_group = $6 WHERE id = $7",
    )
    .bind(after.attributes.0.clone())
    .bind(after.property_ref.as_deref())
    .bind(after.property_address.as_deref())
    .bind(after.tenure.as_deref())
    .bind(after.applicant_contact.as_deref())
    .bind(after.applicant_group.as_deref())
    .bind(case.id)
    .execute(&mut *tx)
    .await?;
    let moved = retarget::retarget(tx, rules, &def, (&case, &after), now).await?;
    if u.reallocate {
        sql("UPDATE cases SET allocation = 'pending', queue_role = NULL WHERE id = $1")
            .bind(case.id)
            .execute(&mut *tx)
            .await?;
    }
    let actor = u.by.as_deref().unwrap_or(source);
    // The values and the reason may be personal data: kept where erasure reaches them.
    sql("INSERT INTO case_updates (case_id, at, actor, reason, changes) VALUES ($1, $2, $3, $4, $5)")
        .bind(case.id)
        .bind(now)
        .bind(actor)
        .bind(&u.reason)
        .bind(serde_json::json!(changes))
        .execute(&mut *tx)
        .await?;
    let updated = Kind::CaseUpdated(kinds::CaseUpdated {
        changed: changes.into_iter().map(|c| c.fact).collect(),
        moved,
        reallocate: u.reallocate,
    });
    events::record(tx, case.event_target(), now, actor, updated).await?;
    Ok(None)
}

/// The case with the command's facts in place of its own, or why they cannot be.
fn amended(case: &CaseRow, u: &commands::UpdateCase) -> Result<CaseRow, ApplyError> {
    let mut after = case.clone();
    if !u.attributes.is_empty() {
        let mut merged = match &case.attributes.0 {
            Value::Object(m) => m.clone(),
            _ => serde_json::Map::new(),
        };
        for (key, value) in &u.attributes {
            match value {
                Value::Null => merged.remove(key),
                v => merged.insert(key.clone(), v.clone()),
            };
        }
        commands::attributes(&merged)
            .map_err(|r| Rejection(format!("{} once merged with the case's", r.0)))?;
        after.attributes = sqlx::types::Json(Value::Object(merged));
    }
    if let Some(p) = &u.property {
        if case.property_ref.is_none()
            && (p.property_ref.is_none() || p.address.is_none() || p.tenure.is_none())
        {
            return reject(format!(
                "property: case {} has no property yet; give ref, address and tenure",
                case.case_ref
            ))
            .map_err(Into::into);
        }
        after.property_ref = p.property_ref.clone().or(after.property_ref);
        after.property_address = p.address.clone().or(after.property_address);
        after.tenure = p.tenure.clone().or(after.tenure);
    }
    if let Some(a) = &u.applicant {
        after.applicant_contact = Some(a.clone());
        after.applicant_group = None;
    }
    if let Some(g) = &u.applicant_group {
        after.applicant_group = Some(g.clone());
        after.applicant_contact = None;
    }
    Ok(after)
}

/// Each fact that differs between the two, attributes first in key order.
fn changes(before: &CaseRow, after: &CaseRow) -> Vec<FactChange> {
    let mut out = Vec::new();
    let empty = serde_json::Map::new();
    let object = |c: &CaseRow| {
        c.attributes
            .0
            .as_object()
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };
    let (old, new) = (object(before), object(after));
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        let (from, to) = (old.get(key), new.get(key));
        if from != to {
            out.push(FactChange {
                fact: format!("attributes.{key}"),
                from: from.cloned().unwrap_or(Value::Null),
                to: to.cloned().unwrap_or(Value::Null),
            });
        }
    }
    let text = |v: &Option<String>| v.as_ref().map_or(Value::Null, |s| json!(s));
    for (fact, from, to) in [
        ("property.ref", &before.property_ref, &after.property_ref),
        (
            "property.address",
            &before.property_address,
            &after.property_address,
        ),
        ("property.tenure", &before.tenure, &after.tenure),
        (
            "applicant",
            &before.applicant_contact,
            &after.applicant_contact,
        ),
        (
            "applicant_group",
            &before.applicant_group,
            &after.applicant_group,
        ),
    ] {
        if from != to {
            out.push(FactChange {
                fact: fact.into(),
                from: text(from),
                to: text(to),
            });
        }
    }
    out
}
