//! The payload of `case_updated`: a case's facts amended (`update_case`), what changed and which
//! clocks moved because of it.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::states::SlaState;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseUpdated {
    /// Each fact that changed. Its values before and after, which may be personal data (an
    /// address), and the command's reason are kept in `case_updates`, not in the log.
    pub changed: Vec<String>,
    /// Each open stage or task clock whose target moved because of the change.
    pub moved: Vec<MovedTarget>,
    /// Whether the allocation rule runs again at the next pass.
    pub reallocate: bool,
}

/// One fact of a case: `attributes.<key>`, `property.ref`, `property.address`,
/// `property.tenure`, `applicant` or `applicant_group`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FactChange {
    pub fact: String,
    pub from: Value,
    pub to: Value,
}

/// A clock whose target moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MovedTarget {
    /// `stage` or `task`.
    pub item: String,
    pub stage: String,
    /// Null for a stage.
    pub task: Option<String>,
    /// Null when the clock had no target.
    pub from: Option<DateTime<Utc>>,
    /// Null when no target applies any more: the clock stops.
    pub to: Option<DateTime<Utc>>,
    /// The item's SLA state after the move.
    pub sla_state: SlaState,
}
