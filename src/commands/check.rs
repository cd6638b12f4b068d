//! The checks a command gets before it touches the database: text and names, the reference
//! format, e-mail addresses, enumerations and times, each naming the field that is wrong.

use chrono::{DateTime, Utc};

use super::{Command, MAX_NAME, MAX_REF, MAX_TEXT, Rejection, reject};
use crate::clock;

pub(super) fn text(field: &str, value: &str, max: usize) -> Result<(), Rejection> {
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
pub(super) fn name(field: &str, value: &str, max: usize) -> Result<(), Rejection> {
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
pub(super) fn named(field: &str, value: &str) -> Result<(), Rejection> {
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

pub(super) fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<(), Rejection> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        reject(format!(
            "{field} {value:?} is not one of: {}",
            allowed.join(", ")
        ))
    }
}

/// Case attributes, as `create_case` stores them and `update_case` merges them: at most 200
/// keys in the format of references, at most 16 KiB as JSON, no NUL in any text.
pub fn attributes<'a>(
    map: impl IntoIterator<Item = (&'a String, &'a serde_json::Value)> + Clone,
) -> Result<(), Rejection> {
    let count = map.clone().into_iter().count();
    if count > MAX_ATTRIBUTES {
        return reject(format!(
            "attributes: {count} entries; the limit is {MAX_ATTRIBUTES}"
        ));
    }
    let object: serde_json::Map<String, serde_json::Value> = map
        .clone()
        .into_iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let json = serde_json::to_string(&object).unwrap_or_default();
    if json.len() > MAX_ATTRIBUTES_BYTES {
        return reject(format!(
            "attributes: {} bytes as JSON; the limit is 16 KiB",
            json.len()
        ));
    }
    if json.contains("\\u0000") {
        return reject("attributes: text may not contain NUL characters");
    }
    object
        .keys()
        .try_for_each(|k| reference("attributes key", k))
}

const MAX_ATTRIBUTES: usize = 200;
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;

fn update_case(u: &super::UpdateCase) -> Result<(), Rejection> {
    text("reason", &u.reason, MAX_TEXT)?;
    if let Some(by) = &u.by {
        named("by", by)?;
    }
    match (&u.applicant, &u.applicant_group) {
        (Some(_), Some(_)) => return reject("give applicant or applicant_group, not both"),
        (Some(a), None) => named("applicant", a)?,
        (None, Some(g)) => named("applicant_group", g)?,
        (None, None) => {}
    }
    if let Some(p) = &u.property {
        if let Some(r) = &p.property_ref {
            reference("property.ref", r)?;
        }
        if let Some(a) = &p.address {
            text("property.address", a, 1000)?;
        }
        if let Some(t) = &p.tenure {
            one_of("property.tenure", t, &["freehold", "leasehold"])?;
        }
        if p.property_ref.is_none() && p.address.is_none() && p.tenure.is_none() {
            return reject("property: give at least one of ref, address and tenure");
        }
    }
    let nothing = u.attributes.is_empty()
        && u.property.is_none()
        && u.applicant.is_none()
        && u.applicant_group.is_none();
    if nothing && !u.reallocate {
        return reject(
            "nothing to change: give attributes, property, applicant or applicant_group (or reallocate: true)",
        );
    }
    attributes(&u.attributes)
}

/// Reads a time field, naming the field if it is malformed.
pub fn time(field: &str, value: &str) -> Result<DateTime<Utc>, Rejection> {
    clock::parse_time(value).map_err(|e| Rejection(format!("{field}: {e}")))
}

impl Command {
    /// Checks what can be checked without the database.
    pub(super) fn check(&self) -> Result<(), Rejection> {
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
                attributes(&c.attributes)
            }
            Command::UpdateCase(u) => update_case(u),
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
            Command::RecordDuty(d) => d.check(),
            Command::RecordReferral(r) => r.check(),
            Command::RecordPlanStep(s) => s.check(),
        }
    }
}
