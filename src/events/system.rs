//! The payloads of events about the organisation and the system rather than a case: reference
//! data (users, roles, contacts), the rule set, and the API's clients.

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
