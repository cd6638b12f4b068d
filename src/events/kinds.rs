//! The event kinds of the contract, each with its payload as a type: what a CRM reads in the
//! `data` of an event with that `kind`. The JSON Schema of events (`docs/schema/
//! events.schema.json`) is generated from these types, and the engine tests check every event
//! they produce against it, so the documented contract and the written events cannot drift.
//!
//! Times are RFC 3339 in UTC. `Option` fields are `null` when they have no value; every field is
//! always present.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::amend::*;
pub use super::duties::*;
pub use super::system::*;
pub use super::tasks::*;

/// One row of the event log as a CRM reads it (the `events` table, `casewarden events`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Record {
    /// Monotonic: follow the log by id.
    pub id: i64,
    /// The case the event belongs to; null for events of the whole system.
    pub case_ref: Option<String>,
    pub at: DateTime<Utc>,
    /// Who did it: a user's ref, the name of the API client that sent the command, `crm`,
    /// `casewarden` or `operator`.
    pub actor: String,
    #[serde(flatten)]
    pub event: Kind,
}

/// An event's `kind` and its `data`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Kind {
    CaseCreated(CaseCreated),
    Allocated(Allocated),
    AllocationNeeded(AllocationNeeded),
    RuleError(RuleError),
    OwnerChanged(OwnerChanged),
    StageEntered(StageEntered),
    StageCompleted(StageCompleted),
    StageDiverted(FromTo),
    AdvanceNeeded(AdvanceNeeded),
    CaseAdvanced(FromTo),
    CaseCompleted(CaseCompleted),
    CaseClosed(CaseClosed),
    TaskActivated(TaskActivated),
    TaskCompleted(TaskCompleted),
    TaskSkipped(TaskSkipped),
    TaskHeld(TaskHeld),
    TaskReleased(TaskReleased),
    TaskCancelled(TaskCancelled),
    NoteAdded(NoteAdded),
    FileAttached(FileAttached),
    CaseTargetChanged(CaseTargetChanged),
    CaseUpdated(CaseUpdated),
    EnquirySubmitted(EnquirySubmitted),
    PackRequested(PackRequested),
    PackWaiting(PackWaiting),
    PackRendered(PackRendered),
    PackFailed(PackFailed),
    DutyRecorded(DutyRecorded),
    ReferralRecorded(ReferralRecorded),
    PlanStepRecorded(PlanStepRecorded),
    CommandRejected(CommandRejected),
    ItemSetAside(ItemSetAside),
    SlaAmber(Sla),
    SlaExceeded(Sla),
    SlaFollowOn(Sla),
    SlaCapped(SlaCapped),
    NotificationDead(NotificationDead),
    NotificationRequeued(NotificationRequeued),
    UserUpserted(UserUpserted),
    RoleUpserted(RoleUpserted),
    ContactUpserted(ContactUpserted),
    ContactGroupUpserted(ContactGroupUpserted),
    ContactErased(ContactErased),
    RetentionApplied(RetentionApplied),
    RulesLoaded(RulesLoaded),
    RulesRejected(RulesRejected),
    ApiClientAdded(ApiClientAdded),
    ApiClientRevoked(ApiClientRevoked),
    WebhookFailing(WebhookFailing),
    WebhookRecovered(WebhookRecovered),
    WebhookReplayed(WebhookReplayed),
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseCreated {
    pub kind: String,
    /// Null for housing options.
    pub scheme: Option<String>,
    /// Null for home buy.
    pub workflow: Option<String>,
    pub country: String,
    pub received_at: DateTime<Utc>,
    /// The definition's id.
    pub definition: String,
    pub definition_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Allocated {
    pub owner: String,
    pub rule: String,
    pub rule_version: String,
    /// The rule's explanation, if it gave one.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocationNeeded {
    /// The fallback role whose worklist now shows the case.
    pub queue_role: String,
    pub reason: String,
    /// Null when no rule applied.
    pub rule: Option<String>,
    pub rule_version: Option<String>,
}

/// A rule failed. For a definition's `target_expr`, `rule` and `during` are `target_expr` and
/// `item`, `expression` and `consequence` are given instead of `rule_version`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleError {
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_version: Option<Option<String>>,
    pub message: String,
    pub during: During,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consequence: Option<String>,
}

impl RuleError {
    /// A definition's `target_expr` for `item` failed with `message`, and what was done instead.
    pub fn target_expr(item: &str, expression: &str, message: String, consequence: &str) -> Kind {
        Kind::RuleError(RuleError {
            rule: Some("target_expr".into()),
            rule_version: None,
            message,
            during: During::TargetExpr,
            fallback: None,
            item: Some(item.into()),
            expression: Some(expression.into()),
            consequence: Some(consequence.into()),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnerChanged {
    pub from: Option<String>,
    pub to: String,
    /// From an escalation rule: `exceeded escalation` and so on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageEntered {
    pub stage: String,
    pub master_stage: String,
    /// 1 the first time, 2 on re-entry…
    pub entry: i64,
    pub owner: Option<String>,
    pub line_manager: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageCompleted {
    pub stage: String,
    pub master_stage: String,
    pub entry: i64,
}

/// What a rule was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum During {
    #[serde(rename = "allocation")]
    Allocation,
    #[serde(rename = "amber escalation")]
    AmberEscalation,
    #[serde(rename = "exceeded escalation")]
    ExceededEscalation,
    #[serde(rename = "follow_on escalation")]
    FollowOnEscalation,
    #[serde(rename = "target_expr")]
    TargetExpr,
}

impl During {
    /// The escalation at a level.
    pub fn escalation(level: crate::sla::checkpoint::Level) -> During {
        use crate::sla::checkpoint::Level;
        match level {
            Level::Amber => During::AmberEscalation,
            Level::Exceeded => During::ExceededEscalation,
            Level::FollowOn => During::FollowOnEscalation,
        }
    }
}

/// The pass step that set an item aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Allocation,
    SlaTask,
    SlaStage,
    HoldRelease,
    Retention,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Allocation => "allocation",
            Step::SlaTask => "sla_task",
            Step::SlaStage => "sla_stage",
            Step::HoldRelease => "hold_release",
            Step::Retention => "retention",
        }
    }
}

/// What an SLA event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlaItem {
    Task,
    Stage,
}

/// `stage_diverted` and `case_advanced`: from one stage to another.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FromTo {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceNeeded {
    pub after_stage: String,
    /// The stage keys the CRM may choose from.
    pub choices: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseCompleted {
    pub last_stage: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseClosed {
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
/// The note's text is in `notes`, not in the log.
pub struct NoteAdded {
    pub note_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
/// The file's name and URI (which may name a person) are in `attachments`, not in the log.
pub struct FileAttached {
    pub attachment_id: i64,
    pub media_type: String,
    pub size: Option<i64>,
    /// Lower case.
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseTargetChanged {
    /// Null when no task counts.
    pub target_at: Option<DateTime<Utc>>,
    /// Null the first time.
    pub previous: Option<DateTime<Utc>>,
    /// The task keys along the longest path, which set the target, first to last.
    pub path: Vec<String>,
    /// The type of the command (or the step) that moved it.
    pub because: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnquirySubmitted {
    pub form: String,
    pub form_version: String,
    pub submission: i64,
    /// The questions whose answers changed, in the form's order. The answers are in
    /// `enquiries`, not in the log.
    pub changed: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackRequested {
    /// The pack task's internal id; null for `render_pack`.
    pub task_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackWaiting {
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackRendered {
    pub version: i64,
    pub requested_by: String,
    /// The statement ids chosen, in pack order.
    pub statements: Vec<String>,
    /// Every statement the workflow offers: `{"statement", "section", "chosen", "failed"}`
    /// (`failed`: its condition could not be evaluated). Why each was chosen or not, which
    /// quotes the answers, is kept with the pack (`packs.advice`), not in the log.
    pub advice: Vec<Value>,
    /// The two attachments, with the fields of `file_attached`.
    pub files: Vec<Value>,
    /// How many notifications to the applicant were written.
    pub sent_to_applicant: i64,
    /// Why the pack was not sent to the applicant, when it was not.
    pub not_sent: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackFailed {
    pub error: String,
    pub attempt: i64,
    pub retry_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRejected {
    pub inbox_id: i64,
    /// Null when the command failed the shape checks.
    #[serde(rename = "type")]
    pub command_type: Option<String>,
    pub command_id: Option<String>,
    pub case_ref: Option<String>,
    /// The reason with every quoted value replaced by `"…"`; the inbox row keeps it whole.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemSetAside {
    pub step: Step,
    /// `{"kind", "id"}`.
    pub item: Value,
    pub attempts: i64,
    pub error: String,
    pub consequence: String,
}

/// `sla_amber`, `sla_exceeded` and `sla_follow_on`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    pub item: SlaItem,
    pub key: String,
    pub stage: String,
    pub level: crate::sla::checkpoint::Level,
    /// 0 for amber and exceeded; 1, 2… for follow-ons.
    pub repetition: i64,
    pub due_at: DateTime<Utc>,
    pub amber_at: Option<DateTime<Utc>>,
    pub target_at: Option<DateTime<Utc>>,
    pub rule: Option<String>,
    pub rule_version: Option<String>,
    pub reason: Option<String>,
    /// What was done, in order: `{"action": "notify", "template", "to", "addressees"}` or
    /// `{"action": "reassign", "to"}` (with `skipped` when it was not done).
    pub actions: Vec<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaCapped {
    pub task: String,
    pub own_target: DateTime<Utc>,
    pub stage_target: DateTime<Utc>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationDead {
    pub outbox_id: i64,
    pub template: String,
    /// The recipient's ref, if any.
    pub recipient: Option<String>,
    pub attempts: i64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationRequeued {
    pub outbox_id: i64,
}

/// The events' JSON Schema (draft 2020-12): one event as [`Record`]. Published as
/// `docs/schema/events.schema.json`.
pub fn json_schema() -> Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(Record)).expect("a generated schema is JSON");
    schema["title"] = serde_json::json!("casewarden event");
    schema["description"] = serde_json::json!(
        "One event of casewarden's append-only log: its id, case, time, actor, kind and data."
    );
    schema
}

/// Every event `kind` of the contract (`case_created`, …), read from the schema derived from
/// [`Kind`]: the names serde writes, and none missing when a kind is added.
pub fn names() -> &'static [String] {
    static NAMES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        let schema =
            serde_json::to_value(schemars::schema_for!(Kind)).expect("a generated schema is JSON");
        let variants = schema["oneOf"]
            .as_array()
            .expect("an adjacently tagged enum's schema is a oneOf");
        variants
            .iter()
            .map(|v| {
                v["properties"]["kind"]["const"]
                    .as_str()
                    .expect("each variant's schema names its kind")
                    .to_string()
            })
            .collect()
    });
    &NAMES
}
