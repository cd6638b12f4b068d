//! The payloads of events about the organisation and the system rather than a case: reference
//! data (users, roles, contacts), the rule set, the API's clients and webhook subscriptions.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpserted {
    pub user: String,
    pub roles: Vec<String>,
    pub line_manager: Option<String>,
    pub active: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleUpserted {
    pub role: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactUpserted {
    pub contact: String,
}

/// A contact's personal data was erased (`casewarden erase contact`), with that of the cases
/// named here. The reason is kept in `erasures`, not in the log.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactErased {
    pub contact: String,
    /// The cases whose personal data went too: the contact was their applicant, or a member of
    /// their applicant group.
    pub cases: Vec<String>,
    /// The contact groups left without members, whose names went too.
    pub groups_emptied: Vec<String>,
}

/// A closed case's retention period ran out and its rule was applied (rules/retention.toml):
/// its personal data was removed (`anonymise`), and with `delete` the rows that only held its
/// content too. The event belongs to the case and carries no personal data.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionApplied {
    /// The rule, as `retention.toml:LINE`.
    pub rule: String,
    /// `anonymise` or `delete`.
    pub action: String,
    /// When the case closed, and when its period ran out.
    pub closed_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// The applicant contacts erased with it: those with no other case whose data is kept.
    pub contacts_erased: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactGroupUpserted {
    pub group: String,
    /// The number of members.
    pub members: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesLoaded {
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesRejected {
    /// `file:line:col: error: …` texts.
    pub problems: Vec<String>,
    /// The hash of the rule set still in force.
    pub kept: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiClientAdded {
    /// The client's name: the actor of the commands it submits.
    pub name: String,
    /// What it may do: `commands:write`, `cases:read`, `events:read`, `admin`.
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiClientRevoked {
    pub name: String,
}

/// A webhook subscription has kept failing for longer than its `failing_after_minutes`. Written
/// once per run of failures; delivery goes on retrying, in order, from where it stopped.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookFailing {
    /// The subscription's name.
    pub webhook: String,
    /// The first failed attempt of this run of failures.
    pub failing_since: DateTime<Utc>,
    /// Attempts at the batch in flight so far.
    pub attempts: i64,
    /// Every event it wants up to this id was acknowledged; delivery resumes after it.
    pub delivered_through: i64,
    /// The last failure, without the receiver's answer: `HTTP 503 Service Unavailable`,
    /// `no answer within 10 s`, `cannot connect: …`.
    pub error: String,
}

/// A webhook subscription that was reported failing has delivered again.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRecovered {
    pub webhook: String,
    /// When the run of failures began.
    pub failing_since: DateTime<Utc>,
    /// Every event it wants up to this id has now been acknowledged.
    pub delivered_through: i64,
}

/// An operator moved a webhook subscription's place in the log (`casewarden webhooks replay`):
/// its next batch starts at `from_event_id`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookReplayed {
    pub webhook: String,
    pub from_event_id: i64,
    /// Where it stood before: events after this id up to `from_event_id` are skipped when
    /// `from_event_id` is the later.
    pub previous_delivered_through: i64,
    /// The `webhook-id` of the batch that was in flight, abandoned unacknowledged; null if none.
    pub abandoned_batch: Option<String>,
}
