//! Minimal notifications: what personal data officers' notifications carry. Every notification
//! except the applicant's own `housing_pack` is an officers' one (`sla_amber`, `sla_exceeded`,
//! `sla_follow_on`, `task_released`, `allocation_needed` and whatever kinds escalation rules name).
//! Their facts hold the case's reference, its task and its dates, never the applicant's name,
//! contact details or enquiry answers; the case's personal fields (the property's address and
//! the attributes its definition lists in `personal_attributes`) only where the definition names
//! them in `notify_personal`, and never for a `sensitive` definition. `check` refuses a template
//! that reads a personal field a definition does not allow. Pure: no database, no clock.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};

use crate::definitions::Definition;
use crate::mail::Renderer;
use crate::mail::reads::ANYTHING;
use crate::problems::Problem;

pub use crate::definitions::{ATTRIBUTE, PROPERTY_ADDRESS, personal_fields as fields};

/// What officers' notifications never carry, whatever a definition says: the applicant's name
/// and address (the housing pack's `applicant`) and the enquiry's answers.
pub const NEVER: &[&str] = &["applicant", "answers"];

/// Whether officers' notifications of `def`'s cases may carry `field`.
pub fn allowed(def: &Definition, field: &str) -> bool {
    !def.sensitive && def.notify_personal.iter().any(|f| f == field)
}

/// The facts of an officers' notification made minimal: the personal attributes go from `case`
/// (and `case_facts`, the escalation rules' name for it) unless `def` allows them, and the
/// property's address is added as `property.address` only where `def` allows it. Without the
/// definition (the rule set in force no longer has it) which attributes are personal is not
/// known, so none is kept.
pub fn minimise(def: Option<&Definition>, property_address: Option<&str>, facts: Value) -> Value {
    let mut facts = facts;
    for key in ["case", "case_facts"] {
        let attributes = facts
            .get_mut(key)
            .and_then(|c| c.get_mut("attributes"))
            .and_then(Value::as_object_mut);
        if let Some(attributes) = attributes {
            attributes.retain(|name, _| {
                def.is_some_and(|d| {
                    !d.personal_attributes.contains(name)
                        || allowed(d, &format!("{ATTRIBUTE}{name}"))
                })
            });
        }
    }
    if def.is_some_and(|d| allowed(d, PROPERTY_ADDRESS)) {
        facts["property"] = json!({"address": property_address});
    }
    facts
}

/// Whether a template that reads `read` (a dotted path, as [`Renderer::reads`] gives it) reads
/// `field`: the same path, a part of it, or all of it (`case.attributes` holds every attribute).
fn reads_field(read: &str, field: &str) -> bool {
    let read = match read.strip_prefix("case_facts") {
        Some(rest) if rest.is_empty() || rest.starts_with('.') => format!("case{rest}"),
        _ => read.to_string(),
    };
    read == ANYTHING
        || read == field
        || field.starts_with(&format!("{read}."))
        || read.starts_with(&format!("{field}."))
}

/// The problems of officers' notifications' templates: each (template, path read, field) where
/// the path reads a personal field that some definition does not allow, or one never carried.
pub fn check_templates(
    dir: &Path,
    renderer: &Renderer,
    files: &[(String, String)],
    definitions: &[Definition],
) -> Vec<Problem> {
    // (template, path read, field) -> the definitions that do not allow it; empty for NEVER.
    let mut found: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
    let officers = renderer
        .kinds()
        .iter()
        .filter(|k| k.as_str() != crate::advice::pack::NOTIFICATION);
    for kind in officers {
        for (template, reads) in renderer.reads(kind) {
            for read in reads {
                for field in NEVER.iter().filter(|f| reads_field(&read, f)) {
                    found
                        .entry((template.clone(), read.clone(), field.to_string()))
                        .or_default();
                }
                for d in definitions {
                    for field in fields(d.personal_attributes.iter()) {
                        if reads_field(&read, &field) && !allowed(d, &field) {
                            found
                                .entry((template.clone(), read.clone(), field))
                                .or_default()
                                .insert(d.id.clone());
                        }
                    }
                }
            }
        }
    }
    found
        .into_iter()
        .map(|((template, read, field), ids)| {
            let text = files.iter().find(|(n, _)| *n == template).map(|(_, t)| t.as_str());
            let at = text.map_or((1, 1), |t| position(t, &read));
            let what = match read.as_str() {
                ANYTHING => "includes a template by a computed name, so it may read".to_string(),
                r if r == field => "reads".to_string(),
                r if r.starts_with(&format!("{field}.")) => format!("reads {r}, part of"),
                r => format!("reads {r}, which holds"),
            };
            let problem = Problem::new(&dir.join(&template), at, match ids.is_empty() {
                true => match read.as_str() {
                    ANYTHING => format!("{template} includes a template by a computed name, which may read {field}: officers' notifications never carry the applicant's name, address or enquiry answers"),
                    r => format!("{template} reads {r}: officers' notifications never carry the applicant's name, address or enquiry answers"),
                },
                false => format!(
                    "{template} {what} the personal field {field}, which officers' notifications may not carry for {}",
                    ids.into_iter().collect::<Vec<_>>().join(", ")
                ),
            });
            problem.help(match NEVER.contains(&field.as_str()) {
                true => "take it out of the template; officers open the case in the CRM for the applicant's details".to_string(),
                false => format!("take it out of the template, or allow it with notify_personal = [\"{field}\"] in each of those definitions (never in a sensitive one); see docs/notifications.md#personal-data-in-officers-notifications"),
            })
        })
        .collect()
}

/// Where `read` first appears in a template's text, as (line, column); 1:1 when it does not.
fn position(text: &str, read: &str) -> (usize, usize) {
    match text.find(read).filter(|_| !read.is_empty()) {
        Some(at) => {
            let before = &text[..at];
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            (
                before.matches('\n').count() + 1,
                before[line_start..].chars().count() + 1,
            )
        }
        None => (1, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_reads_a_field_when_it_is_the_field_or_holds_it_or_lies_inside_it() {
        assert!(reads_field("property.address", PROPERTY_ADDRESS));
        assert!(reads_field("property", PROPERTY_ADDRESS));
        assert!(reads_field("case.attributes", "case.attributes.dob"));
        assert!(reads_field(
            "case_facts.attributes.dob",
            "case.attributes.dob"
        ));
        assert!(reads_field("case", "case.attributes.dob"));
        assert!(reads_field("applicant.name", "applicant"));
        assert!(reads_field(ANYTHING, "applicant"));
        assert!(!reads_field("case.attributes.dobby", "case.attributes.dob"));
        assert!(!reads_field("people.applicant", "applicant"));
        assert!(!reads_field("case.case_ref", "case.attributes.dob"));
    }

    #[test]
    fn a_field_is_found_at_its_line_and_column() {
        assert_eq!(
            position("a\n  {{ property.address }}", "property.address"),
            (2, 6)
        );
        assert_eq!(position("a", "b"), (1, 1));
    }
}
