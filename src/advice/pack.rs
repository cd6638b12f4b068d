//! The personalised housing pack: the chosen statements, grouped by section, rendered to HTML and
//! plain text from `templates/pack/housing_pack.{html,txt}.j2` (by the engine's pack step). The same facts feed the
//! `housing_pack` notification that sends the pack to the applicant.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Advice, Choice};

/// The pack's templates, relative to templates/.
pub const HTML: &str = "pack/housing_pack.html.j2";
pub const TEXT: &str = "pack/housing_pack.txt.j2";

/// The notification that sends the pack to the applicant.
pub const NOTIFICATION: &str = "housing_pack";

/// A rendered pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub html: String,
    pub text: String,
}

/// What the pack's templates see: `case`, `applicant`, `officer`, `pack` and `sections` (each
/// with its chosen `statements`, each with `items`). The engine adds `plan`, the case's duties
/// and plan steps on record (`crate::duties::pack_facts`).
pub fn facts(
    advice: &Advice,
    choices: &[Choice],
    case: Value,
    applicant: Value,
    officer: Value,
    version: i64,
    made_at: DateTime<Utc>,
) -> Value {
    let sections: Vec<Value> = advice
        .sections
        .iter()
        .filter_map(|section| {
            let statements: Vec<Value> = choices
                .iter()
                .filter(|c| c.chosen && c.section == section.key)
                .filter_map(|c| advice.statement(&c.statement))
                .map(|s| json!({"id": s.id, "title": s.title, "because": s.because, "items": s.items}))
                .collect();
            (!statements.is_empty())
                .then(|| json!({"key": section.key, "title": section.title, "statements": statements}))
        })
        .collect();
    json!({
        "case": case,
        "applicant": applicant,
        "officer": officer,
        "pack": {"version": version, "made_at": made_at.to_rfc3339(),
                 "statements": choices.iter().filter(|c| c.chosen).count()},
        "sections": sections,
    })
}

/// Facts shaped like a real pack's, for `check`: the case as every rule sees it, with the
/// workflow's name, as the packs step gives it.
pub fn sample_facts() -> Value {
    let name = "Threatened with eviction: section 21 notice (England)";
    let mut case = crate::facts::CaseFacts {
        case_ref: "HO-0001".to_string(),
        kind: "housing_options".to_string(),
        scheme: None,
        workflow: Some("section_21".to_string()),
        definition: "section_21-england".to_string(),
        definition_name: Some(name.to_string()),
        team_role: Some("housing_options".to_string()),
        tenure: None,
        property_ref: None,
        received_at: "2026-03-02T09:30:00Z".parse().expect("a valid time"),
        target_at: Some("2026-05-19T08:00:00Z".parse().expect("a valid time")),
        applicant: Some("c-1".to_string()),
        attributes: json!({}),
        ..crate::facts::CaseFacts::sample()
    }
    .to_value();
    case["workflow_name"] = json!(name);
    json!({
        "case": case,
        "applicant": {"ref": "c-1", "name": "Sam Applicant", "address": "1 High Street"},
        "officer": {"ref": "off1", "name": "Olu Officer", "email": "olu@example.org"},
        "pack": {"version": 1, "made_at": "2026-03-09T10:00:00Z", "statements": 2},
        "plan": crate::duties::sample_pack_facts(),
        "sections": [
            {"key": "urgent", "title": "Do this now", "statements": [
                {"id": "s1", "title": "Stay in your home", "because": "You told us you have a notice.",
                 "items": [
                    {"type": "instruction", "text": "Do not leave before a court orders you to.", "name": null, "url": null, "phone": null},
                    {"type": "guidance", "text": "Only a bailiff can evict you.", "name": null, "url": null, "phone": null},
                    {"type": "agency", "text": "Free advice", "name": "Shelter", "url": "https://england.shelter.org.uk", "phone": "0808 800 4444"}
                 ]},
                {"id": "s2", "title": "Your plan", "because": null,
                 "items": [{"type": "guidance", "text": "We will agree steps with you.", "name": null, "url": null, "phone": null}]}
            ]}
        ],
    })
}
