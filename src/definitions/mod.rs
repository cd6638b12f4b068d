//! Workflow definitions: the stages and tasks of each scheme in each country, read from TOML
//! files under `rules/definitions/`, checked as a whole, and compiled into the values the engine
//! runs on. Pure: no database, no clock.

pub mod model;
pub mod period;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDate;

pub use model::Activation;
pub use period::{Period, Unit};
pub use validate::{KnownNames, compile};

/// The property's address, a personal field of every case (`cases.property_address`).
pub const PROPERTY_ADDRESS: &str = "property.address";
/// A personal attribute's field is this followed by the attribute's name.
pub const ATTRIBUTE: &str = "case.attributes.";

/// The personal fields of the cases of a definition whose `personal_attributes` are these: what
/// its `notify_personal` may name (crate::personal).
pub fn personal_fields<'a>(
    personal_attributes: impl Iterator<Item = &'a String>,
) -> std::collections::BTreeSet<String> {
    let mut out: std::collections::BTreeSet<String> = personal_attributes
        .map(|a| format!("{ATTRIBUTE}{a}"))
        .collect();
    out.insert(PROPERTY_ADDRESS.to_string());
    out
}

/// A compiled definition.
#[derive(Debug, Clone)]
pub struct Definition {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// Home buy: the scheme (empty for housing options).
    pub scheme: String,
    /// Housing options: the advice stream.
    pub workflow: Option<String>,
    pub country: String,
    pub effective_from: NaiveDate,
    pub effective_to: Option<NaiveDate>,
    pub closed_reason: Option<String>,
    /// The allocation rule's name (a script under rules/), if any applies.
    pub allocation: Option<String>,
    pub team_role: String,
    /// The case attributes that are personal data.
    pub personal_attributes: Vec<String>,
    /// The personal fields officers' notifications may carry (crate::personal); empty for a
    /// sensitive definition.
    pub notify_personal: Vec<String>,
    /// Its notifications never carry personal data.
    pub sensitive: bool,
    pub calendar: String,
    pub stages: Vec<Stage>,
    /// Housing options: the personalised housing pack and the task that makes it.
    pub pack: Option<Pack>,
    /// Content hash of the file, recorded on each case created under it.
    pub version: String,
    pub file: PathBuf,
}

/// The personalised housing pack of a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    pub task: String,
    pub send_to_applicant: bool,
    /// The yes/no question that must be answered yes before the pack is e-mailed, and where the
    /// definition names it (line, column), for checks against the form.
    pub email_consent: Option<(String, (usize, usize))>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Successors {
    /// The case completes after this stage.
    Final,
    One(String),
    /// The CRM chooses with `advance_case`.
    Choice(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Stage {
    pub key: String,
    pub name: String,
    pub master: String,
    pub order: i64,
    pub next: Successors,
    pub diversions: Vec<String>,
    pub branch: bool,
    pub sla: Sla,
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub key: String,
    pub name: String,
    pub mandatory: bool,
    pub activation: Activation,
    pub depends_on: Vec<String>,
    pub role: Option<String>,
    pub sla: Sla,
    /// Housing options: this task makes the personalised housing pack when it becomes active.
    pub makes_pack: bool,
    /// Housing options: the duty (`prevention`, `relief`, `main`) whose clock this task runs:
    /// it starts at the duty's recorded start date where the case has one.
    pub duty: Option<String>,
}

/// Where an SLA clock starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClockFrom {
    /// When the task is activated, or the stage entered.
    #[default]
    Start,
    /// When the stage holding the task was entered.
    StageEntered,
    /// When the claim was received: statutory deadlines run from it.
    CaseReceived,
}

#[derive(Debug, Clone)]
pub struct Sla {
    pub target: Option<Target>,
    pub from: ClockFrom,
    pub amber: Option<Period>,
    pub follow_on: Option<Period>,
    pub follow_on_limit: u32,
    /// Whether a hold stops the clock. A task whose clock is not pausable can still be held (the
    /// work waits) but its target does not move; a stage whose clock is not pausable caps the
    /// target a hold moves on for any of its tasks at its own.
    pub pausable: bool,
    pub escalation: Escalation,
}

#[derive(Debug, Clone)]
pub enum Target {
    Fixed(Period),
    /// Chosen by a case fact (`tenure`, or an attribute), with a default for other values.
    ByFact {
        fact: String,
        values: BTreeMap<String, Period>,
        default: Option<Period>,
    },
    /// Decided by a Rhai expression over `case_facts`, evaluated in the sandbox.
    Expr {
        source: String,
        ast: std::sync::Arc<rhai::AST>,
    },
}

impl PartialEq for Target {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Target::Fixed(a), Target::Fixed(b)) => a == b,
            (
                Target::ByFact {
                    fact: f1,
                    values: v1,
                    default: d1,
                },
                Target::ByFact {
                    fact: f2,
                    values: v2,
                    default: d2,
                },
            ) => (f1, v1, d1) == (f2, v2, d2),
            (Target::Expr { source: a, .. }, Target::Expr { source: b, .. }) => a == b,
            _ => false,
        }
    }
}

impl Eq for Target {}

impl Target {
    /// The period for a case, from its facts (`tenure`, `scheme`, `country` or an attribute);
    /// `None` when the fact has a value the definition does not list and there is no default.
    /// Expressions are evaluated by the engine, which holds the sandbox: `None` here.
    pub fn period(&self, fact: impl Fn(&str) -> Option<String>) -> Option<Period> {
        match self {
            Target::Fixed(p) => Some(*p),
            Target::ByFact {
                fact: name,
                values,
                default,
            } => fact(name)
                .and_then(|v| values.get(&v).copied())
                .or(*default),
            Target::Expr { .. } => None,
        }
    }

    /// Every period this target can take.
    pub fn periods(&self) -> Vec<Period> {
        match self {
            Target::Fixed(p) => vec![*p],
            Target::ByFact {
                values, default, ..
            } => values
                .values()
                .copied()
                .chain(default.iter().copied())
                .collect(),
            // Known only at run time; the stage's target caps it there.
            Target::Expr { .. } => Vec::new(),
        }
    }
}

impl Default for Sla {
    fn default() -> Self {
        Sla {
            target: None,
            from: ClockFrom::default(),
            amber: None,
            follow_on: None,
            follow_on_limit: 0,
            pausable: true,
            escalation: Escalation::default(),
        }
    }
}

/// Escalation rule names per level (scripts under `rules/escalation/`).
#[derive(Debug, Clone, Default)]
pub struct Escalation {
    pub amber: Option<String>,
    pub exceeded: Option<String>,
    pub follow_on: Option<String>,
}

impl Definition {
    /// What a case names to fall under this definition: the scheme, or the workflow.
    pub fn stream(&self) -> &str {
        self.workflow.as_deref().unwrap_or(&self.scheme)
    }

    pub fn is_housing_options(&self) -> bool {
        self.kind == "housing_options"
    }

    pub fn stage(&self, key: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.key == key)
    }

    /// The stage a new case enters: the lowest order that is not a branch.
    pub fn first_stage(&self) -> &Stage {
        self.stages
            .iter()
            .filter(|s| !s.branch)
            .min_by_key(|s| s.order)
            .expect("a compiled definition has a non-branch stage")
    }

    /// Whether a claim received on `date` falls under this definition.
    pub fn covers(&self, date: NaiveDate) -> bool {
        date >= self.effective_from && self.effective_to.is_none_or(|to| date <= to)
    }
}

impl Stage {
    pub fn task(&self, key: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.key == key)
    }
}

/// The bank-holiday division a country's working days follow.
pub fn default_calendar(country: &str) -> &'static str {
    match country {
        "scotland" => "scotland",
        "northern_ireland" => "northern-ireland",
        _ => "england-and-wales",
    }
}
