//! What rules and templates see of a case: one model, [`CaseFacts`], built in one place
//! (`CaseRow::facts`) and given the same to allocation rules, escalation rules, target
//! expressions, advice conditions and notification templates. docs/rules.md lists every field.

use chrono::{DateTime, SecondsFormat, Utc};
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

    /// As rules get them: the value `rhai::serde::to_dynamic` makes of the facts, made directly
    /// (allocation makes it for every case, and serde costs more than the rule).
    pub fn to_dynamic(&self) -> rhai::Dynamic {
        use rhai::Dynamic;
        // Every field, so that one added to the facts cannot be left out here.
        let CaseFacts {
            case_ref,
            kind,
            scheme,
            workflow,
            country,
            definition,
            definition_version,
            definition_name,
            team_role,
            tenure,
            property_ref,
            received_at,
            status,
            owner,
            target_at,
            applicant,
            applicant_group,
            attributes,
        } = self;
        let text = |s: &str| -> Dynamic { s.into() };
        let maybe = |s: &Option<String>| s.as_deref().map_or(Dynamic::UNIT, text);
        // As chrono's `Serialize` writes a time.
        let time = |t: &DateTime<Utc>| text(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        // In the order of their names, so that the map is built without sorting them.
        let fields = [
            ("applicant", maybe(applicant)),
            ("applicant_group", maybe(applicant_group)),
            ("attributes", crate::script::from_json(attributes)),
            ("case_ref", text(case_ref)),
            ("country", text(country)),
            ("definition", text(definition)),
            ("definition_name", maybe(definition_name)),
            ("definition_version", text(definition_version)),
            ("kind", text(kind)),
            ("owner", maybe(owner)),
            ("property_ref", maybe(property_ref)),
            ("received_at", time(received_at)),
            ("scheme", maybe(scheme)),
            ("status", text(status.as_str())),
            ("target_at", target_at.as_ref().map_or(Dynamic::UNIT, time)),
            ("team_role", maybe(team_role)),
            ("tenure", maybe(tenure)),
            ("workflow", maybe(workflow)),
        ];
        Dynamic::from_map(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_get_the_facts_as_serde_would_give_them() {
        let full = CaseFacts {
            target_at: Some("2026-02-03T04:05:06.789Z".parse().unwrap()),
            workflow: Some("homeless_prevention".into()),
            applicant_group: Some("G-1".into()),
            attributes: serde_json::json!({"patch": "north", "n": [1, 2.5, null], "big": u64::MAX}),
            ..CaseFacts::sample()
        };
        let bare = CaseFacts {
            scheme: None,
            definition_name: None,
            team_role: None,
            tenure: None,
            property_ref: None,
            received_at: "2026-01-05T09:00:00.000001Z".parse().unwrap(),
            status: crate::states::CaseStatus::Closed,
            owner: None,
            applicant: None,
            attributes: serde_json::json!({}),
            ..CaseFacts::sample()
        };
        for facts in [CaseFacts::sample(), full, bare] {
            let serde = rhai::serde::to_dynamic(&facts).unwrap();
            assert_eq!(format!("{:?}", facts.to_dynamic()), format!("{serde:?}"));
        }
    }
}
