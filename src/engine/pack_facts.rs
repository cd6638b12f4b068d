//! What a housing pack says about the people and the plan of its case: the applicant, the
//! officer, and the plan and duties on record (`crate::duties`), which make the pack the written
//! personalised housing plan.

use serde_json::{Value, json};

use crate::db::rows::CaseRow;
use crate::db::{Tx, sql};

/// The case's plan, duties and referral as the pack's templates see them (`plan`).
pub async fn plan(tx: &mut Tx, case: &CaseRow) -> Result<Value, sqlx::Error> {
    let record = crate::duties::load(tx, case.id).await?;
    Ok(crate::duties::pack_facts(&case.country, &record))
}

pub async fn applicant(tx: &mut Tx, case: &CaseRow) -> Result<Value, sqlx::Error> {
    if let Some(c) = &case.applicant_contact {
        let row: Option<(String, Option<String>)> =
            sql("SELECT name, address FROM contacts WHERE ref = $1")
                .bind(c)
                .fetch_optional(&mut *tx)
                .await?;
        return Ok(row.map_or(
            Value::Null,
            |(name, address)| json!({"ref": c, "name": name, "address": address}),
        ));
    }
    if let Some(g) = &case.applicant_group {
        let row: Option<(String,)> = sql("SELECT name FROM contact_groups WHERE ref = $1")
            .bind(g)
            .fetch_optional(&mut *tx)
            .await?;
        return Ok(row.map_or(
            Value::Null,
            |(name,)| json!({"ref": g, "name": name, "address": null}),
        ));
    }
    Ok(Value::Null)
}

pub async fn officer(tx: &mut Tx, case: &CaseRow) -> Result<Value, sqlx::Error> {
    let Some(owner) = &case.owner else {
        return Ok(Value::Null);
    };
    let row: Option<(String, String)> = sql("SELECT name, email FROM users WHERE ref = $1")
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(row.map_or(
        Value::Null,
        |(name, email)| json!({"ref": owner, "name": name, "email": email}),
    ))
}
