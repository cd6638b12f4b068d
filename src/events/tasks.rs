//! The payloads of events about one task: activated, completed, skipped, held, released,
//! cancelled. Free text (outcomes, reasons typed by officers) is kept on the task or its hold,
//! not here.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskActivated {
    pub stage: String,
    pub task: String,
    pub activation: crate::definitions::model::Activation,
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskCompleted {
    pub stage: String,
    pub task: String,
    /// When it was done.
    pub at: DateTime<Utc>,
    /// Whether the completion gave an outcome. The outcome itself is free text, kept on the task
    /// (`tasks.outcome`), not in the log.
    pub outcome_given: bool,
}

/// `task_skipped`. The reason, free text, is kept on the task (`tasks.skip_reason`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSkipped {
    pub stage: String,
    pub task: String,
    pub reason_given: bool,
}

/// `task_cancelled`: the engine's reason (the stage ended, the case closed).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskCancelled {
    pub stage: String,
    pub task: String,
    pub reason: Option<String>,
}

/// The hold's reason, free text, is kept in `task_holds` (the row for the task held at the
/// event's time), not in the log.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskHeld {
    pub stage: String,
    pub task: String,
    pub until: DateTime<Utc>,
    /// True for a clock the law does not pause (`pausable = false`): the task leaves the active
    /// list until its release date, but its target stays and its escalations fire on time.
    /// Absent from events written before casewarden had such clocks, whose clocks all stopped.
    #[serde(default)]
    pub clock_keeps_running: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskReleased {
    pub stage: String,
    pub task: String,
    /// `released early` or `release date reached`.
    pub reason: String,
    pub held_seconds: i64,
    /// How many working days the task's dates moved on; null when it has no SLA clock.
    pub sla_moved_working_days: Option<i64>,
    pub owner: Option<String>,
}
