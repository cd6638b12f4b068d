//! The payloads of the events that put a housing options case's homelessness duties on record.
//! They carry ids, references, codes and dates; the free text (a plan step, the reason a duty
//! ended, the referring authority's name) stays in its table, where erasure reaches it.

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A duty recorded or updated (`record_duty`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DutyRecorded {
    /// The duty's row in `duties`.
    pub duty_id: i64,
    /// `prevention`, `relief` or `main`.
    pub duty: String,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    /// Whether the end reason was recorded or changed by this command (the reason itself is in
    /// `duties.end_reason`).
    pub end_reason_changed: bool,
    /// What was on record before; both null when the duty is new.
    pub previous_start_date: Option<NaiveDate>,
    pub previous_end_date: Option<NaiveDate>,
    /// The task whose clock runs this duty, when its dates moved to count from the start date.
    pub clock: Option<DutyClock>,
}

/// A duty task's clock, moved to count from the duty's start date.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DutyClock {
    pub task: String,
    pub target_at: DateTime<Utc>,
    pub amber_at: Option<DateTime<Utc>>,
    pub previous_target_at: Option<DateTime<Utc>>,
}

/// How the applicant came to the council, recorded or replaced (`record_referral`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralRecorded {
    pub referral_id: i64,
    /// `self`, `duty_to_refer` or `other_agency`; the authority's name is in `referrals`.
    pub source: String,
    pub referred_on: NaiveDate,
    /// Whether it replaced a referral recorded before.
    pub replaced: bool,
}

/// A step of the personalised housing plan recorded or updated (`record_plan_step`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanStepRecorded {
    /// The step's row in `plan_steps`.
    pub step_id: i64,
    /// The CRM's reference for the step.
    pub step_ref: String,
    /// `applicant` or `council`.
    #[serde(rename = "for")]
    pub owner: String,
    pub agreed_on: NaiveDate,
    pub review_on: Option<NaiveDate>,
    pub status: String,
    /// Null for a new step.
    pub previous_status: Option<String>,
    pub created: bool,
    /// Whether the step's text was changed (the text is in `plan_steps.step`).
    pub text_changed: bool,
}
