//! What rules and templates see of a case: one model, [`CaseFacts`], built in one place
//! (`CaseRow::facts`) and given the same to allocation rules, escalation rules, target
//! expressions, advice conditions and notification templates. docs/rules.md lists every field.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A case as rules and templates see it. Every field is always present; `Option` fields are
/// `null` (`()` in Rhai) when the case has no such value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CaseFacts {
    pub case_ref: String,
    /// `home_buy` or `housing_options`.
    pub kind: String,
    /// Home buy: `right_to_buy`, `right_to_acquire` or `social_homebuy`.
    pub scheme: Option<String>,
    /// Housing options: the advice stream's workflow.
    pub workflow: Option<String>,
    /// `england`, `wales`, `scotland` or `northern_ireland`.
    pub country: String,
    /// The id of the definition the case runs under.
    pub definition: String,
    pub definition_version: String,
    /// The definition's name; null where the rule set in force no longer has the definition.
    pub definition_name: Option<String>,
    /// The role of the team that works the definition's cases; null as for `definition_name`.
    pub team_role: Option<String>,
    /// `freehold` or `leasehold`; null without a property.
    pub tenure: Option<String>,
    pub property_ref: Option<String>,
    pub received_at: DateTime<Utc>,
    pub status: crate::states::CaseStatus,
    /// The officer who owns the case; null until it is allocated.
    pub owner: Option<String>,
    /// Housing options: the case's target date; null for home buy, or when no task counts.
    pub target_at: Option<DateTime<Utc>>,
    /// The applicant's contact ref, or null when the case names a group.
    pub applicant: Option<String>,
    /// The applicant group's ref, or null when the case names one contact.
    pub applicant_group: Option<String>,
    /// The CRM's own facts about the case, as given in `create_case`.
    pub attributes: Value,
}

impl CaseFacts {
    /// As JSON, for templates and for Rhai (through `rhai::serde::to_dynamic`).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("case facts are JSON")
    }

    /// Facts shaped like a real Right to Buy case's, for `check` and rule tests.
    pub fn sample() -> CaseFacts {
        CaseFacts {
            case_ref: "RTB-0001".to_string(),
            kind: "home_buy".to_string(),
            scheme: Some("right_to_buy".to_string()),
            workflow: None,
            country: "england".to_string(),
            definition: "right_to_buy-england".to_string(),
            definition_version: "2026-01".to_string(),
            definition_name: Some("Right to Buy (England)".to_string()),
            team_role: Some("home_ownership".to_string()),
            tenure: Some("freehold".to_string()),
            property_ref: Some("P-1".to_string()),
            received_at: "2026-01-05T09:00:00Z".parse().expect("a valid time"),
            status: crate::states::CaseStatus::Open,
            owner: Some("off1".to_string()),
            target_at: None,
            applicant: Some("T-1".to_string()),
            applicant_group: None,
            attributes: serde_json::json!({"qualifying_period_all_with_landlord": true}),
        }
    }
}
