//! A case's amendments (`update_case`) as `show case` gives them: when, by whom, why, and each
//! fact's value before and after, from `case_updates`, where erasure reaches them (the
//! `case_updated` event names only the facts).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::{Db, sql};

#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct CaseUpdate {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub reason: String,
    /// One `{"fact", "from", "to"}` per fact that changed.
    #[schemars(with = "Vec<crate::events::kinds::FactChange>")]
    pub changes: sqlx::types::Json<serde_json::Value>,
}

/// Every amendment of the case, oldest first.
pub async fn amendments(db: &Db, case_id: i64) -> Result<Vec<CaseUpdate>, sqlx::Error> {
    sql("SELECT at, actor, reason, changes FROM case_updates WHERE case_id = $1 ORDER BY id")
        .bind(case_id)
        .fetch_all(db)
        .await
}
