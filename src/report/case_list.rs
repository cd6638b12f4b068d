//! Cases in summary, filtered and a page at a time, for a CRM that lists or syncs them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::{Db, sql};
use crate::states::{CaseStatus, SlaState};

/// One case in a list: what it is, where it stands and who has it.
#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct CaseSummary {
    /// The position the next page starts after; callers page with their own cursor, not this.
    #[serde(skip)]
    #[schemars(skip)]
    pub id: i64,
    pub case_ref: String,
    pub kind: String,
    pub scheme: Option<String>,
    /// Housing options: the advice stream.
    pub workflow: Option<String>,
    pub country: String,
    pub status: CaseStatus,
    pub owner: Option<String>,
    /// The stage the case is in; null when it has none open (awaiting a decision, or closed).
    pub open_stage: Option<String>,
    /// The open stage's SLA clock; null when the case has no open stage.
    pub sla_state: Option<SlaState>,
    pub received_at: DateTime<Utc>,
    /// The case's own target (housing options), else its open stage's.
    pub target_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// Which cases to list; `None` matches every value.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub status: Option<CaseStatus>,
    pub owner: Option<String>,
    pub scheme: Option<String>,
    pub workflow: Option<String>,
    pub sla_state: Option<SlaState>,
}

/// Up to `limit` cases matching `filter`, in id order, starting after case id `after` (0: from
/// the first). One statement whatever the filter: an absent filter binds NULL and matches all.
/// The open stage is the newest open entry, found through `stages_open_by_case`.
pub async fn cases(
    db: &Db,
    filter: &CaseFilter,
    after: i64,
    limit: i64,
) -> Result<Vec<CaseSummary>, sqlx::Error> {
    sql("SELECT c.id, c.case_ref, c.kind, c.scheme, c.workflow, c.country, c.status, c.owner, \
         s.stage AS open_stage, s.sla_state, c.received_at, COALESCE(c.target_at, s.target_at) AS target_at, c.closed_at \
         FROM cases c \
         LEFT JOIN stages s ON s.id = (SELECT MAX(o.id) FROM stages o WHERE o.case_id = c.id AND o.status = 'open') \
         WHERE c.id > $1 \
         AND ($2 IS NULL OR c.status = $2) \
         AND ($3 IS NULL OR c.owner = $3) \
         AND ($4 IS NULL OR c.scheme = $4) \
         AND ($5 IS NULL OR c.workflow = $5) \
         AND ($6 IS NULL OR s.sla_state = $6) \
         ORDER BY c.id LIMIT $7")
    .bind(after)
    .bind(filter.status.map(CaseStatus::as_str))
    .bind(filter.owner.as_deref())
    .bind(filter.scheme.as_deref())
    .bind(filter.workflow.as_deref())
    .bind(filter.sla_state.map(SlaState::as_str))
    .bind(limit)
    .fetch_all(db)
    .await
}
