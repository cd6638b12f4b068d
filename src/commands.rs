//! The integration contract's commands: JSON objects with a `type`, as a CRM writes them into
//! the inbox. This module parses and checks each one on its own (shape, lengths, formats); what
//! needs the database (does the case exist, is the task active) is checked when it is applied.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock;

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

fn text(field: &str, value: &str, max: usize) -> Result<(), Rejection> {
    if value.trim().is_empty() {
        return reject(format!("{field} is empty"));
    }
    let len = value.chars().count();
    if len > max {
        return reject(format!(
            "{field} is {len} characters long; the limit is {max}"
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return reject(format!("{field} contains control characters"));
    }
    Ok(())
}

/// The characters a reference may hold besides ASCII letters and digits.
pub const REFERENCE_PUNCTUATION: &str = "-_./:@";

/// What a reference may be, as rejections say it.
pub const REFERENCE_FORMAT: &str = "1 to 100 ASCII letters, digits and - _ . / : @, starting with a letter or digit, \
     with no empty, `.` or `..` part between slashes and no `/` at the end";

/// The one check of the reference format (docs/integration.md, "References"), for every door a
/// reference comes in by: ASCII letters, digits and `- _ . / : @`, 1 to 100 characters, starting
/// with a letter or digit, no empty, `.` or `..` segment between slashes, no trailing `/`. So a
/// reference cannot hide characters (zero-width, bidi overrides, look-alike letters), cannot
/// climb out of a directory, and reads the same on every terminal.
pub fn reference(field: &str, value: &str) -> Result<(), Rejection> {
    let bad = |why: &str| {
        reject(format!(
            "{field} {} {why}; a reference is {REFERENCE_FORMAT}",
            crate::text::quote(value)
        ))
    };
    let len = value.chars().count();
    if len == 0 {
        return reject(format!(
            "{field} is empty; a reference is {REFERENCE_FORMAT}"
        ));
    }
    if len > MAX_REF {
        return reject(format!(
            "{field} is {len} characters long; the limit is {MAX_REF}"
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !REFERENCE_PUNCTUATION.contains(*c))
    {
        return bad(&format!("contains {}", describe(c)));
    }
    if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("does not start with a letter or digit");
    }
    if value.ends_with('/') {
        return bad("ends with `/`");
    }
    if value.split('/').any(|s| matches!(s, "" | "." | "..")) {
        return bad("has an empty, `.` or `..` part between slashes");
    }
    Ok(())
}

/// A name that may reach an e-mail header (a recipient's display name) or a one-line label: no
/// control characters at all (so no line breaks, tabs or NUL) and no invisible format
/// characters, which `text` lets through for notes.
fn name(field: &str, value: &str, max: usize) -> Result<(), Rejection> {
    if let Some(c) = value
        .chars()
        .find(|&c| c.is_control() || crate::text::is_format(c))
    {
        return reject(format!(
            "{field} {} contains the character {}; names are one line of visible text",
            crate::text::quote(value),
            c.escape_unicode()
        ));
    }
    text(field, value, max)
}

/// A character a reference may not hold, named so a person can find it.
fn describe(c: char) -> String {
    if c.is_whitespace() {
        format!("whitespace ({})", c.escape_unicode())
    } else if c.is_control() {
        format!("a control character ({})", c.escape_unicode())
    } else if crate::text::is_format(c) {
        format!("an invisible format character ({})", c.escape_unicode())
    } else if c.is_ascii() {
        format!("`{c}`")
    } else {
        format!("the non-ASCII character {c:?} ({})", c.escape_unicode())
    }
}

/// A field that only names something casewarden already has (a case, a user, a contact, a
/// task). New references must be in the format ([`reference`]); a name is also accepted in the
/// looser form earlier releases stored (no whitespace, no control characters), so records made
/// before the format keep being worked. It must still match a stored record exactly, and it may
/// never hold an invisible format character.
fn named(field: &str, value: &str) -> Result<(), Rejection> {
    let format = reference(field, value);
    let stored_before = text(field, value, MAX_REF).is_ok()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || crate::text::is_format(c));
    if format.is_ok() || stored_before {
        Ok(())
    } else {
        format
    }
}

fn optional(field: &str, value: &Option<String>, max: usize) -> Result<(), Rejection> {
    value.as_deref().map_or(Ok(()), |v| text(field, v, max))
}

/// An e-mail address as delivery will parse it (lettre's `Address`), so an address that passes
/// here cannot fail at delivery for its form.
fn email(field: &str, value: &str) -> Result<(), Rejection> {
    text(field, value, 254)?;
    match value.parse::<lettre::Address>() {
        Ok(_) => Ok(()),
        Err(_) => reject(format!(
            "{field} {} is not an e-mail address",
            crate::text::quote(value)
        )),
    }
}

fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<(), Rejection> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        reject(format!(
            "{field} {value:?} is not one of: {}",
            allowed.join(", ")
        ))
    }
}

/// Reads a time field, naming the field if it is malformed.
pub fn time(field: &str, value: &str) -> Result<DateTime<Utc>, Rejection> {
    clock::parse_time(value).map_err(|e| Rejection(format!("{field}: {e}")))
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
        }
    }

    /// Checks what can be checked without the database.
    fn check(&self) -> Result<(), Rejection> {
        match (self, self.case_ref()) {
            // A new case's reference is in the format; other commands name a stored case.
            (Command::CreateCase(c), _) => reference("case_ref", &c.case_ref)?,
            (_, Some(case_ref)) => named("case_ref", case_ref)?,
            (_, None) => {}
        }
        match self {
            Command::UpsertUser(u) => {
                reference("ref", &u.user_ref)?;
                name("name", &u.name, MAX_NAME)?;
                email("email", &u.email)?;
                if let Some(m) = &u.line_manager {
                    named("line_manager", m)?;
                    if m == &u.user_ref {
                        return reject("line_manager: a user cannot be their own line manager");
                    }
                }
                u.roles.iter().try_for_each(|r| named("roles[]", r))
            }
            Command::UpsertRole(r) => {
                reference("ref", &r.role_ref)?;
                name("name", &r.name, MAX_NAME)
            }
            Command::UpsertContact(c) => {
                reference("ref", &c.contact_ref)?;
                name("name", &c.name, MAX_NAME)?;
                if let Some(e) = &c.email {
                    email("email", e)?;
                }
                optional("phone", &c.phone, 40)?;
                optional("address", &c.address, 1000)
            }
            Command::UpsertContactGroup(g) => {
                reference("ref", &g.group_ref)?;
                name("name", &g.name, MAX_NAME)?;
                if g.members.len() > 1000 {
                    return reject(format!(
                        "members: {} members; the limit is 1000",
                        g.members.len()
                    ));
                }
                g.members.iter().try_for_each(|m| named("members[]", m))
            }
            Command::CreateCase(c) => {
                one_of("kind", &c.kind, crate::definitions::model::KINDS)?;
                one_of("country", &c.country, crate::definitions::model::COUNTRIES)?;
                let housing_options = c.kind == "housing_options";
                match (&c.scheme, &c.workflow, housing_options) {
                    (Some(s), None, false) => {
                        one_of("scheme", s, crate::definitions::model::SCHEMES)?
                    }
                    (None, None, false) => {
                        return reject("missing field `scheme`: home buy cases name their scheme");
                    }
                    (_, Some(_), false) => {
                        return reject(
                            "workflow: home buy cases name a scheme, not a workflow; workflows are for kind housing_options",
                        );
                    }
                    (None, Some(w), true) => named("workflow", w)?,
                    (None, None, true) => {
                        return reject(
                            "missing field `workflow`: housing options cases name their advice stream's workflow, e.g. \"section_21\"",
                        );
                    }
                    (Some(_), _, true) => {
                        return reject(
                            "scheme: housing options cases name a workflow, not a scheme",
                        );
                    }
                }
                match (&c.applicant, &c.applicant_group) {
                    (Some(a), None) => named("applicant", a)?,
                    (None, Some(g)) => named("applicant_group", g)?,
                    (Some(_), Some(_)) => {
                        return reject("give applicant or applicant_group, not both");
                    }
                    (None, None) => {
                        return reject(
                            "missing field `applicant` (a contact ref) or `applicant_group` (a contact group ref)",
                        );
                    }
                }
                match &c.property {
                    None if !housing_options => {
                        return reject(
                            "missing field `property`: home buy cases need {ref, address, tenure}",
                        );
                    }
                    None => {}
                    Some(p) => {
                        reference("property.ref", &p.property_ref)?;
                        text("property.address", &p.address, 1000)?;
                        one_of("property.tenure", &p.tenure, &["freehold", "leasehold"])?;
                    }
                }
                time("received_at", &c.received_at)?;
                if c.attributes.len() > 200 {
                    return reject("attributes: more than 200 entries");
                }
                let json = serde_json::to_string(&c.attributes).unwrap_or_default();
                if json.len() > 16 * 1024 {
                    return reject("attributes: larger than 16 KiB");
                }
                if json.contains("\\u0000") {
                    return reject("attributes: text may not contain NUL characters");
                }
                c.attributes
                    .keys()
                    .try_for_each(|k| reference("attributes key", k))
            }
            Command::ActivateTask(t) | Command::ReleaseTask(t) => named("task", &t.task),
            Command::CompleteTask(t) => {
                named("task", &t.task)?;
                named("by", &t.by)?;
                if let Some(at) = &t.at {
                    time("at", at)?;
                }
                optional("outcome", &t.outcome, MAX_NAME)
            }
            Command::SkipTask(t) => {
                named("task", &t.task)?;
                if let Some(by) = &t.by {
                    named("by", by)?;
                }
                optional("reason", &t.reason, MAX_TEXT)
            }
            Command::HoldTask(t) => {
                named("task", &t.task)?;
                time("until", &t.until)?;
                text("reason", &t.reason, MAX_TEXT)
            }
            Command::AdvanceCase(a) => named("to_stage", &a.to_stage),
            Command::ReassignCase(r) => named("owner", &r.owner),
            Command::AddNote(n) => {
                named("by", &n.by)?;
                text("text", &n.text, MAX_TEXT)
            }
            Command::AttachFile(f) => {
                text("name", &f.name, 255)?;
                text("media_type", &f.media_type, 127)?;
                if !f.media_type.contains('/') {
                    return reject(format!(
                        "media_type {:?} is not a media type such as application/pdf",
                        f.media_type
                    ));
                }
                text("uri", &f.uri, 2000)?;
                if !f.uri.contains(':') {
                    return reject(format!(
                        "uri {:?} is not a URI: give the scheme, e.g. https:// or file://",
                        f.uri
                    ));
                }
                if f.size.is_some_and(|s| s < 0) {
                    return reject("size must not be negative");
                }
                if let Some(h) = &f.sha256
                    && (h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()))
                {
                    return reject("sha256 must be 64 hexadecimal digits");
                }
                if let Some(by) = &f.by {
                    named("by", by)?;
                }
                Ok(())
            }
            Command::CloseCase(c) => {
                text("outcome", &c.outcome, MAX_NAME)?;
                if let Some(by) = &c.by {
                    named("by", by)?;
                }
                Ok(())
            }
            Command::SubmitEnquiry(e) => {
                if let Some(by) = &e.by {
                    named("by", by)?;
                }
                if e.answers.is_empty() {
                    return reject("answers: no answers given");
                }
                e.answers
                    .keys()
                    .try_for_each(|k| reference("answers key", k))
            }
            Command::RenderPack(r) => match &r.by {
                Some(by) => named("by", by),
                None => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(body: &str) -> String {
        parse(body).unwrap_err().0
    }

    #[test]
    fn a_command_id_is_taken_out_of_any_command() {
        let e = parse(r#"{"type":"upsert_role","ref":"rtb","name":"RTB team","command_id":"c-1"}"#)
            .unwrap();
        assert_eq!(e.command_id.as_deref(), Some("c-1"));
        assert_eq!(e.command.type_name(), "upsert_role");
    }

    #[test]
    fn malformed_input_is_rejected_with_what_was_wrong() {
        assert!(rejected("{not json").starts_with("malformed JSON"));
        assert!(rejected("[1,2]").contains("JSON object"));
        assert!(rejected(r#"{"ref":"x"}"#).contains("missing field `type`"));
        assert!(rejected(r#"{"type":7}"#).contains("must be a string"));
        assert!(
            rejected(r#"{"type":"launch_rocket"}"#)
                .contains("\"type\" \"launch_rocket\" is not a command; use one of: upsert_user,")
        );
        assert!(
            rejected(r#"{"type":"upsert_role","ref":"r"}"#)
                .contains("upsert_role: missing field `name`")
        );
        assert!(rejected(r#"{"type":"upsert_role","ref":5,"name":"n"}"#).contains("invalid type"));
        assert!(
            rejected(r#"{"type":"upsert_role","ref":"r","name":"n","colour":"red"}"#)
                .contains("unknown field `colour`")
        );
        assert!(
            rejected(r#"{"type":"add_note","case_ref":"C1","by":"u1","text":"   "}"#)
                .contains("text is empty")
        );
        assert!(
            rejected(r#"{"type":"upsert_user","ref":"u1","name":"A","email":"nope"}"#)
                .contains("not an e-mail address")
        );
        assert!(
            rejected(
                r#"{"type":"hold_task","case_ref":"C1","task":"t","until":"soon","reason":"r"}"#
            )
            .contains("until: \"soon\" is not a time")
        );
    }

    #[test]
    fn an_email_address_is_one_delivery_can_send_to() {
        let user = |email: &str| {
            parse(
                &serde_json::json!({"type": "upsert_user", "ref": "u1", "name": "U", "email": email})
                    .to_string(),
            )
        };
        for ok in ["olu@example.org", "o.l+u@mail.example.co.uk"] {
            assert!(user(ok).is_ok(), "{ok}");
        }
        for bad in [
            "nope",
            "a b@example.org",
            "priya.shah at home@example.net",
            "x@",
            "@x.org",
            "a@b@c.org",
        ] {
            let reason = user(bad).unwrap_err().0;
            assert!(
                reason.contains("is not an e-mail address"),
                "{bad}: {reason}"
            );
            assert!(
                bad.parse::<lettre::Address>().is_err(),
                "{bad} must also fail delivery's parse"
            );
        }
    }

    #[test]
    fn every_listed_type_is_a_command_and_every_command_is_listed() {
        for t in TYPES {
            let reason = rejected(&format!(r#"{{"type":"{t}"}}"#));
            assert!(
                reason.starts_with(&format!("{t}: missing field")),
                "{t}: {reason}"
            );
        }
        assert_eq!(TYPES.len(), 17);
    }

    #[test]
    fn a_nul_or_line_break_in_a_type_or_field_name_is_escaped_in_the_reason() {
        for body in [
            "{\"type\":\"\\u0000\"}",
            "{\"type\":\"add_note\",\"case_ref\":\"C1\",\"by\":\"u\",\"text\":\"t\",\"\\u0000\":1}",
            "{\"type\":\"a\\r\\nb\"}",
        ] {
            let reason = rejected(body);
            assert!(!reason.chars().any(char::is_control), "{body}: {reason:?}");
        }
        let long = format!(r#"{{"type":"{}"}}"#, "t".repeat(10_000));
        assert!(rejected(&long).len() < 1_000);
    }

    #[test]
    fn huge_commands_and_fields_are_refused_by_size() {
        let huge = format!(
            r#"{{"type":"add_note","case_ref":"C1","by":"u1","text":"{}"}}"#,
            "x".repeat(MAX_COMMAND_BYTES)
        );
        assert!(rejected(&huge).contains("the limit is"));
        let long = format!(
            r#"{{"type":"add_note","case_ref":"C1","by":"u1","text":"{}"}}"#,
            "x".repeat(MAX_TEXT + 1)
        );
        assert!(rejected(&long).contains("text is 20001 characters long"));
        let long_ref = format!(
            r#"{{"type":"upsert_role","ref":"{}","name":"n"}}"#,
            "r".repeat(101)
        );
        assert!(rejected(&long_ref).contains("ref is 101 characters"));
    }

    #[test]
    fn a_home_buy_case_needs_an_applicant_a_property_and_a_known_scheme() {
        let base = r#""type":"create_case","case_ref":"C1","kind":"home_buy","country":"england","received_at":"2026-01-05""#;
        assert!(
            rejected(&format!("{{{base},\"scheme\":\"right_to_rent\"}}"))
                .contains("scheme \"right_to_rent\" is not one of")
        );
        assert!(
            rejected(&format!("{{{base},\"scheme\":\"right_to_buy\"}}"))
                .contains("missing field `applicant`")
        );
        let with_applicant = format!("{{{base},\"scheme\":\"right_to_buy\",\"applicant\":\"p1\"}}");
        assert!(rejected(&with_applicant).contains("missing field `property`"));
        let ok = format!(
            "{{{base},\"scheme\":\"right_to_buy\",\"applicant\":\"p1\",\"property\":{{\"ref\":\"P1\",\"address\":\"1 High St\",\"tenure\":\"freehold\"}}}}"
        );
        assert!(parse(&ok).is_ok());
    }

    fn role(reference: &str) -> Result<Envelope, Rejection> {
        parse(
            &serde_json::json!({"type": "upsert_role", "ref": reference, "name": "n"}).to_string(),
        )
    }

    #[test]
    fn references_take_the_characters_housing_crms_use() {
        for ok in [
            "RTB/2026/0001",
            "HO-2026-0001",
            "T_10442",
            "crm:case:17",
            "olu@example.org",
            "v1.2",
            "7",
            &"r".repeat(100),
        ] {
            assert!(role(ok).is_ok(), "{ok:?} was refused: {:?}", role(ok).err());
        }
    }

    #[test]
    fn a_reference_outside_the_format_is_refused_naming_the_field_and_the_characters() {
        for (bad, why) in [
            ("..", "does not start with a letter or digit"),
            ("A/../B", "`..` part"),
            ("A/./B", "`.` or `..` part"),
            ("A//B", "empty"),
            ("/A", "does not start"),
            ("A/", "ends with `/`"),
            ("A B", "whitespace"),
            ("A\0B", "control character"),
            ("A\nB", "whitespace"),
            ("RTB-1\u{200B}", "invisible format character (\\u{200b})"),
            ("\u{FEFF}RTB-1", "invisible format character (\\u{feff})"),
            ("RTB\u{202E}-1", "invisible format character (\\u{202e})"),
            ("Zoë", "non-ASCII character"),
            ("A#1", "`#`"),
            ("", "empty"),
        ] {
            let reason = role(bad).unwrap_err().0;
            assert!(reason.starts_with("upsert_role: ref "), "{bad:?}: {reason}");
            assert!(reason.contains(why), "{bad:?}: {reason}");
            assert!(
                reason.contains("ASCII letters, digits and - _ . / : @"),
                "{bad:?}: {reason}"
            );
            assert!(
                !reason
                    .chars()
                    .any(|c| c.is_control() || crate::text::is_format(c)),
                "the reason echoes the value escaped: {reason:?}"
            );
        }
        let reason = role(&"r".repeat(300)).unwrap_err().0;
        assert!(
            reason.contains("ref is 300 characters long; the limit is 100"),
            "{reason}"
        );
        let case = |case_ref: &str| {
            parse(&serde_json::json!({"type": "create_case", "case_ref": case_ref, "kind": "housing_options",
                "workflow": "section_21", "country": "england", "applicant": "c1",
                "received_at": "2026-03-02"}).to_string())
        };
        assert!(case("A/B").is_ok() && case("A_B").is_ok());
        assert!(
            case("A/../B")
                .unwrap_err()
                .0
                .contains("create_case: case_ref")
        );
    }

    #[test]
    fn a_command_naming_a_stored_reference_accepts_one_made_before_the_format() {
        let note = |case_ref: &str| {
            parse(&serde_json::json!({"type": "add_note", "case_ref": case_ref, "by": "off#1", "text": "t"}).to_string())
        };
        // Made under the earlier rule (no whitespace): still named, so the case can be worked.
        assert!(note("RTB#7").is_ok());
        assert!(note("Zoë-1").is_ok());
        // Never a look-alike: format characters, whitespace and control characters are refused.
        for bad in [
            "RTB-1\u{200B}",
            "\u{FEFF}RTB-1",
            "RTB\u{202E}-1",
            "RTB 1",
            "RTB\r1",
        ] {
            let reason = note(bad).unwrap_err().0;
            assert!(
                reason.starts_with("add_note: case_ref "),
                "{bad:?}: {reason}"
            );
        }
        // A new record's reference is always in the format.
        assert!(role("RTB#7").is_err());
    }
    #[test]
    fn names_that_could_reach_a_mail_header_are_one_line_of_visible_text() {
        for (kind, extra) in [
            ("upsert_user", r#","email":"a@example.org""#),
            ("upsert_role", ""),
            ("upsert_contact", ""),
            ("upsert_contact_group", r#","members":[]"#),
        ] {
            for bad in [
                r"Boss\r\nBcc: someone@example.org",
                r"Off\nX",
                r"Off\rX",
                r"tab\there",
                r"nul\u0000",
                r"bell\u0007",
                r"del\u007f",
                r"next\u0085line",
                r"rtl\u202eevil",
                r"zero\u200bwidth",
            ] {
                let body = format!(r#"{{"type":"{kind}","ref":"r1","name":"{bad}"{extra}}}"#);
                let reason = rejected(&body);
                assert!(
                    reason.starts_with(&format!("{kind}: name "))
                        && reason.contains("contains the character"),
                    "{body}: {reason}"
                );
                assert!(!reason.chars().any(|c| c.is_control()), "{reason:?}");
            }
            let long = format!(
                r#"{{"type":"{kind}","ref":"r1","name":"{}"{extra}}}"#,
                "n".repeat(10_000)
            );
            assert!(rejected(&long).contains("name is 10000 characters long; the limit is 200"));
            let fine =
                format!(r#"{{"type":"{kind}","ref":"r1","name":"Siân O'Neil-Ødegård"{extra}}}"#);
            assert!(parse(&fine).is_ok(), "{fine}");
        }
    }
}
