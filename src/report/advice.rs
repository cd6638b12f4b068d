//! `advice`: which statements a housing options case's answers choose now, and why, with the
//! rule set the caller holds. Writes nothing; the CLI and the API both ask here, so they refuse
//! the same cases for the same reasons.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::advice::Choice;
use crate::db::{Db, rows, sql};
use crate::rules::RuleSet;

/// Why there is no advice to show for a case.
#[derive(Debug, thiserror::Error)]
pub enum AdviceError {
    #[error("no case {0:?}")]
    UnknownCase(String),
    #[error("case {case_ref} is a {kind} case; advice is chosen for housing options cases")]
    NotHousingOptions { case_ref: String, kind: String },
    #[error("case {0} has no enquiry answers yet; send submit_enquiry first")]
    NoAnswers(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// The choice for every statement the case's workflow offers, as of `now`.
pub async fn advice(
    db: &Db,
    rules: &Arc<RuleSet>,
    case_ref: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Choice>, AdviceError> {
    let Some(case) = rows::case_by_ref(db, case_ref).await? else {
        return Err(AdviceError::UnknownCase(case_ref.to_string()));
    };
    if case.kind != "housing_options" {
        return Err(AdviceError::NotHousingOptions {
            case_ref: case.case_ref,
            kind: case.kind,
        });
    }
    let answers: Option<(sqlx::types::Json<serde_json::Value>,)> =
        sql("SELECT answers FROM enquiries WHERE case_id = $1")
            .bind(case.id)
            .fetch_optional(db)
            .await?;
    let Some((answers,)) = answers else {
        return Err(AdviceError::NoAnswers(case.case_ref));
    };
    let answers = answers.0.as_object().cloned().unwrap_or_default();
    Ok(crate::engine::housing_options::choose(rules, &case, &answers, now).await)
}
