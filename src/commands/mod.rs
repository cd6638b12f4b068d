//! The integration contract's commands: JSON objects with a `type`, as a CRM writes them into
//! the inbox. This module parses and checks each one on its own (shape, lengths, formats); what
//! needs the database (does the case exist, is the task active) is checked when it is applied.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod check;
mod duties;

use check::text;
pub use check::{REFERENCE_FORMAT, REFERENCE_PUNCTUATION, attributes, reference, time};
pub use duties::{
    MAX_STEP, REFERRAL_SOURCES, RecordDuty, RecordPlanStep, RecordReferral, STEP_OWNERS,
    STEP_STATUSES, date,
};

/// Largest command accepted, in bytes of JSON.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;
const MAX_REF: usize = 100;
const MAX_NAME: usize = 200;
const MAX_TEXT: usize = 20_000;

/// A reason a person can act on. Applying a command either succeeds or is rejected with one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

pub fn reject<T>(reason: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection(reason.into()))
}

/// A parsed command and the CRM's own id for it.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub command_id: Option<String>,
    pub command: Command,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    UpsertUser(UpsertUser),
    UpsertRole(UpsertRole),
    UpsertContact(UpsertContact),
    UpsertContactGroup(UpsertContactGroup),
    CreateCase(CreateCase),
    ActivateTask(TaskRef),
    CompleteTask(CompleteTask),
    SkipTask(SkipTask),
    HoldTask(HoldTask),
    ReleaseTask(TaskRef),
    AdvanceCase(AdvanceCase),
    ReassignCase(ReassignCase),
    AddNote(AddNote),
    AttachFile(AttachFile),
    CloseCase(CloseCase),
    SubmitEnquiry(SubmitEnquiry),
    RenderPack(RenderPack),
    UpdateCase(UpdateCase),
    RecordDuty(RecordDuty),
    RecordReferral(RecordReferral),
    RecordPlanStep(RecordPlanStep),
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertUser {
    #[serde(rename = "ref")]
    pub user_ref: String,
    pub name: String,
    pub email: String,
    pub line_manager: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// An inactive user keeps their history but is offered to no allocation rule.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertRole {
    #[serde(rename = "ref")]
    pub role_ref: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertContact {
    #[serde(rename = "ref")]
    pub contact_ref: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertContactGroup {
    #[serde(rename = "ref")]
    pub group_ref: String,
    pub name: String,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Property {
    #[serde(rename = "ref")]
    pub property_ref: String,
    pub address: String,
    pub tenure: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCase {
    pub case_ref: String,
    pub kind: String,
    /// Home buy: the scheme.
    pub scheme: Option<String>,
    /// Housing options: the advice stream's workflow.
    pub workflow: Option<String>,
    pub country: String,
    pub applicant: Option<String>,
    pub applicant_group: Option<String>,
    pub property: Option<Property>,
    pub received_at: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// Amends an open case's facts: its attributes (merged; `null` removes a key), its property and
/// its applicant, with the reason. Every open clock whose target depends on a changed fact is
/// recomputed.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCase {
    pub case_ref: String,
    /// Merged over the case's attributes; a key whose value is `null` is removed.
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// The fields of the property to change; a case without a property needs all three.
    pub property: Option<PropertyChange>,
    /// A contact ref: the case's applicant from now on, in place of any applicant group.
    pub applicant: Option<String>,
    /// A contact group ref: the case's applicants from now on, in place of any applicant.
    pub applicant_group: Option<String>,
    /// Why the facts changed, for the record.
    pub reason: String,
    pub by: Option<String>,
    /// Run the allocation rule again at the next pass (default: the owner stays).
    #[serde(default)]
    pub reallocate: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PropertyChange {
    #[serde(rename = "ref")]
    pub property_ref: Option<String>,
    pub address: Option<String>,
    pub tenure: Option<String>,
}

/// Answers to a housing options case's enquiry form, merged over any given before; `null`
/// clears an answer.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitEnquiry {
    pub case_ref: String,
    pub answers: serde_json::Map<String, serde_json::Value>,
    pub by: Option<String>,
}

/// Makes a new version of a housing options case's personalised housing pack.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderPack {
    pub case_ref: String,
    pub by: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskRef {
    pub case_ref: String,
    pub task: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteTask {
    pub case_ref: String,
    pub task: String,
    pub by: String,
    pub at: Option<String>,
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SkipTask {
    pub case_ref: String,
    pub task: String,
    pub by: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldTask {
    pub case_ref: String,
    pub task: String,
    pub until: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceCase {
    pub case_ref: String,
    pub to_stage: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignCase {
    pub case_ref: String,
    pub owner: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddNote {
    pub case_ref: String,
    pub by: String,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachFile {
    pub case_ref: String,
    pub name: String,
    pub media_type: String,
    pub uri: String,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    pub by: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseCase {
    pub case_ref: String,
    pub outcome: String,
    pub by: Option<String>,
}

/// The commands' JSON Schema (draft 2020-12), generated from the types above: one of the
/// commands, each an object with its `type` and, on every command, an optional `command_id`.
/// The checks beyond shape (reference format, lengths, times) are in [`parse`]; the schema says
/// what a command looks like, `parse` has the last word on what is accepted. Published as
/// `docs/schema/commands.schema.json`.
pub fn json_schema() -> serde_json::Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(Command)).expect("a generated schema is JSON");
    schema["title"] = serde_json::json!("casewarden command");
    schema["description"] = serde_json::json!(
        "A command as a CRM writes it into casewarden's inbox (one JSON object, one line) or sends it over the API."
    );
    // `command_id` is taken out of every command before the command itself is read, so the
    // generated variants do not name it: add it to each.
    let command_id = serde_json::json!({
        "type": ["string", "null"],
        "description": "The CRM's own id for this command: sending the same id twice has no second effect. 1 to 100 characters.",
    });
    if let Some(variants) = schema["oneOf"].as_array_mut() {
        for variant in variants {
            if let Some(properties) = variant["properties"].as_object_mut() {
                properties.insert("command_id".to_string(), command_id.clone());
            }
        }
    }
    schema
}

/// Every command's `type`, as the contract spells it.
pub const TYPES: &[&str] = &[
    "upsert_user",
    "upsert_role",
    "upsert_contact",
    "upsert_contact_group",
    "create_case",
    "activate_task",
    "complete_task",
    "skip_task",
    "hold_task",
    "release_task",
    "advance_case",
    "reassign_case",
    "add_note",
    "attach_file",
    "close_case",
    "submit_enquiry",
    "render_pack",
    "update_case",
    "record_duty",
    "record_referral",
    "record_plan_step",
];

/// Parses one command from its JSON text, or says what is wrong with it.
pub fn parse(body: &str) -> Result<Envelope, Rejection> {
    parse_with_limit(body, MAX_COMMAND_BYTES)
}

/// [`parse`] with a size limit of the caller's (`engine.max_command_bytes`). Every value a
/// rejection echoes is quoted with [`text::quote`](crate::text::quote): escaped and bounded.
pub fn parse_with_limit(body: &str, max_bytes: usize) -> Result<Envelope, Rejection> {
    if body.len() > max_bytes {
        return reject(format!(
            "command is {} bytes; the limit is {max_bytes} bytes",
            body.len()
        ));
    }
    let mut value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| Rejection(format!("malformed JSON: {e}")))?;
    let Some(object) = value.as_object_mut() else {
        return reject("a command must be a JSON object with a \"type\"");
    };
    let command_id = match object.remove("command_id") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(id)) => Some(id),
        Some(other) => {
            return reject(format!(
                "command_id must be a string, not {}",
                crate::text::quote(&other.to_string())
            ));
        }
    };
    let type_name = match object.get("type") {
        Some(serde_json::Value::String(t)) => match TYPES.iter().find(|known| *known == t) {
            Some(known) => *known,
            None => {
                return reject(format!(
                    "\"type\" {} is not a command; use one of: {}",
                    crate::text::quote(t),
                    TYPES.join(", ")
                ));
            }
        },
        Some(other) => {
            return reject(format!(
                "\"type\" must be a string, not {}",
                crate::text::quote(&other.to_string())
            ));
        }
        None => {
            return reject(
                "missing field `type`: say which command this is, e.g. \"type\": \"create_case\"",
            );
        }
    };
    // serde's messages quote names and values raw (a NUL, a line break): escape and bound them.
    let command: Command = serde_json::from_value(value).map_err(|e| {
        Rejection(format!(
            "{type_name}: {}",
            crate::text::bounded(&e.to_string(), 500)
        ))
    })?;
    if let Some(id) = &command_id {
        text("command_id", id, MAX_REF)?;
    }
    command
        .check()
        .map_err(|r| Rejection(format!("{type_name}: {}", r.0)))?;
    Ok(Envelope {
        command_id,
        command,
    })
}

impl Command {
    pub fn type_name(&self) -> &'static str {
        match self {
            Command::UpsertUser(_) => "upsert_user",
            Command::UpsertRole(_) => "upsert_role",
            Command::UpsertContact(_) => "upsert_contact",
            Command::UpsertContactGroup(_) => "upsert_contact_group",
            Command::CreateCase(_) => "create_case",
            Command::ActivateTask(_) => "activate_task",
            Command::CompleteTask(_) => "complete_task",
            Command::SkipTask(_) => "skip_task",
            Command::HoldTask(_) => "hold_task",
            Command::ReleaseTask(_) => "release_task",
            Command::AdvanceCase(_) => "advance_case",
            Command::ReassignCase(_) => "reassign_case",
            Command::AddNote(_) => "add_note",
            Command::AttachFile(_) => "attach_file",
            Command::CloseCase(_) => "close_case",
            Command::SubmitEnquiry(_) => "submit_enquiry",
            Command::RenderPack(_) => "render_pack",
            Command::UpdateCase(_) => "update_case",
            Command::RecordDuty(_) => "record_duty",
            Command::RecordReferral(_) => "record_referral",
            Command::RecordPlanStep(_) => "record_plan_step",
        }
    }

    /// The user a command names in `by`, if any.
    pub fn by(&self) -> Option<&str> {
        match self {
            Command::CompleteTask(c) => Some(&c.by),
            Command::AddNote(c) => Some(&c.by),
            Command::SkipTask(c) => c.by.as_deref(),
            Command::AttachFile(c) => c.by.as_deref(),
            Command::CloseCase(c) => c.by.as_deref(),
            Command::SubmitEnquiry(c) => c.by.as_deref(),
            Command::RenderPack(c) => c.by.as_deref(),
            Command::UpdateCase(c) => c.by.as_deref(),
            Command::RecordDuty(c) => c.by.as_deref(),
            Command::RecordReferral(c) => c.by.as_deref(),
            Command::RecordPlanStep(c) => c.by.as_deref(),
            Command::UpsertUser(_)
            | Command::UpsertRole(_)
            | Command::UpsertContact(_)
            | Command::UpsertContactGroup(_)
            | Command::CreateCase(_)
            | Command::ActivateTask(_)
            | Command::HoldTask(_)
            | Command::ReleaseTask(_)
            | Command::AdvanceCase(_)
            | Command::ReassignCase(_) => None,
        }
    }

    /// The case a command is about, for the inbox listing and the event log.
    pub fn case_ref(&self) -> Option<&str> {
        match self {
            Command::UpsertUser(_)
            | Command::UpsertRole(_)
            | Command::UpsertContact(_)
            | Command::UpsertContactGroup(_) => None,
            Command::CreateCase(c) => Some(&c.case_ref),
            Command::ActivateTask(c) | Command::ReleaseTask(c) => Some(&c.case_ref),
            Command::CompleteTask(c) => Some(&c.case_ref),
            Command::SkipTask(c) => Some(&c.case_ref),
            Command::HoldTask(c) => Some(&c.case_ref),
            Command::AdvanceCase(c) => Some(&c.case_ref),
            Command::ReassignCase(c) => Some(&c.case_ref),
            Command::AddNote(c) => Some(&c.case_ref),
            Command::AttachFile(c) => Some(&c.case_ref),
            Command::CloseCase(c) => Some(&c.case_ref),
            Command::SubmitEnquiry(c) => Some(&c.case_ref),
            Command::RenderPack(c) => Some(&c.case_ref),
            Command::UpdateCase(c) => Some(&c.case_ref),
            Command::RecordDuty(c) => Some(&c.case_ref),
            Command::RecordReferral(c) => Some(&c.case_ref),
            Command::RecordPlanStep(c) => Some(&c.case_ref),
        }
    }
}

#[cfg(test)]
mod tests;
