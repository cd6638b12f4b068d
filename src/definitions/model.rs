//! The shape of a definition file under `rules/`, as TOML. Fields whose value a later check may
//! point at are `Spanned`, so every error can name its line and column.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

/// Master stages: the fixed vocabulary CRMs report on. Sub-stages name one of these.
pub const MASTER_STAGES: &[&str] = &[
    "application",
    "eligibility",
    "valuation",
    "offer",
    "offer_accepted",
    "completion",
    "delay",
    "appeal",
];

pub const KINDS: &[&str] = &["home_buy", "housing_options"];

/// The one stage a housing options workflow runs in: its tasks form a single dependency graph.
pub const CASEWORK_STAGE: &str = "casework";
pub const SCHEMES: &[&str] = &["right_to_buy", "right_to_acquire", "social_homebuy"];
pub const COUNTRIES: &[&str] = &["england", "wales", "scotland", "northern_ireland"];

/// The homelessness duties a housing options case records (`record_duty`): prevention (England
/// s.195, Wales s.66), relief (s.189B; s.73) and the main duty (s.193; s.75).
pub const DUTIES: &[&str] = &["prevention", "relief", "main"];

/// One workflow definition: a home buy scheme in a country, or a housing options advice stream,
/// for cases received between two dates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefinitionFile {
    pub id: S<String>,
    pub name: String,
    pub kind: S<String>,
    /// Home buy: the scheme.
    pub scheme: Option<S<String>>,
    /// Housing options: the advice stream's key, as `create_case` names it.
    pub workflow: Option<S<String>>,
    pub country: S<String>,
    /// First day (local date) a claim may be received under this definition.
    pub effective_from: S<toml::value::Datetime>,
    /// Last day (inclusive); open-ended when absent.
    pub effective_to: Option<S<toml::value::Datetime>>,
    /// Why claims outside the dates are refused, quoted in the rejection.
    pub closed_reason: Option<String>,
    /// Allocation rule: `rules/<name>.rhai`. Default `allocation_<scheme>`, then `allocation`.
    pub allocation: Option<S<String>>,
    /// The team whose worklist gets tasks that name no role of their own.
    pub team_role: S<String>,
    /// The case attributes that are personal data (a name, a date of birth, a support need):
    /// erasure and retention remove them, and officers' notifications carry them only where
    /// `notify_personal` allows it.
    #[serde(default)]
    pub personal_attributes: Vec<S<String>>,
    /// The personal fields officers' notifications may carry (`property.address`,
    /// `case.attributes.<a personal attribute>`); none by default.
    #[serde(default)]
    pub notify_personal: Vec<S<String>>,
    /// The workflow's notifications never carry personal data, whatever `notify_personal` says:
    /// `check` refuses the two together. Set on the domestic abuse workflow.
    #[serde(default)]
    pub sensitive: Option<S<bool>>,
    /// Bank-holiday division: england-and-wales, scotland or northern-ireland.
    pub calendar: Option<S<String>>,
    #[serde(default, rename = "stage")]
    pub stages: Vec<StageDef>,
    /// Housing options: the workflow's tasks, one dependency graph (no stages).
    #[serde(default, rename = "task")]
    pub tasks: Vec<TaskDef>,
    /// Housing options: the personalised housing pack.
    pub pack: Option<S<PackDef>>,
    /// Housing options: the task whose clock each duty runs on (`prevention = "prevention_duty"`):
    /// it counts from the duty's recorded start date where there is one.
    pub duties: Option<S<BTreeMap<String, S<String>>>>,
}

/// The personalised housing pack of a housing options workflow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackDef {
    /// The task that makes the pack: when it becomes active, casewarden renders the pack,
    /// attaches it and completes the task.
    pub task: S<String>,
    /// Also send the pack to the applicant (notification `housing_pack`).
    #[serde(default)]
    pub send_to_applicant: bool,
    /// A yes/no question of the workflow's form that must be answered yes before the pack is
    /// e-mailed (e.g. `contact_by_email_ok`); without it, send_to_applicant alone decides.
    pub email_consent: Option<S<String>>,
}

/// SLA fields shared by stages and tasks, written as an `sla = { ... }` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaDef {
    /// "20 working days", "8 weeks", "28 days".
    pub target: Option<S<String>>,
    /// Where the target depends on a case fact: a value of the fact → a period.
    pub target_by: Option<TargetBy>,
    /// Where a small rule decides: a Rhai expression over `case_facts` that gives a period, e.g.
    /// `if case_facts.tenure == "leasehold" { "12 weeks" } else { "8 weeks" }`.
    pub target_expr: Option<S<String>>,
    /// Warning period before the target.
    pub amber: Option<S<String>>,
    /// When the clock starts: `activation` (tasks, the default), `stage_entered` (the default for
    /// stages) or `case_received`, for statutory deadlines counted from the claim.
    pub from: Option<S<String>>,
    /// Interval between follow-on escalations after the target.
    pub follow_on: Option<S<String>>,
    /// How many follow-ons at most.
    pub follow_on_limit: Option<u32>,
    /// Whether a hold stops this clock (the default). `false` for deadlines the law does not
    /// pause: a held task leaves the active list but its target stays where it is.
    pub pausable: Option<bool>,
    pub escalation: Option<EscalationRefs>,
}

/// A target chosen by a case fact, e.g. tenure: freehold → 8 weeks, leasehold → 12 weeks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetBy {
    pub fact: S<String>,
    pub values: BTreeMap<String, S<String>>,
    pub default: Option<S<String>>,
}

/// Escalation rules (`rules/escalation/<name>.rhai`) per level.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationRefs {
    pub amber: Option<S<String>>,
    pub exceeded: Option<S<String>>,
    pub follow_on: Option<S<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageDef {
    pub key: S<String>,
    pub name: String,
    pub master: S<String>,
    pub order: i64,
    /// Stages that may follow. Absent: the next stage by order that is not a branch. Empty: the
    /// case completes after this stage. Several: the CRM chooses with `advance_case`.
    pub next: Option<Vec<S<String>>>,
    /// Branch stages (delay, appeal) that `advance_case` may divert an open stage to.
    #[serde(default)]
    pub diversions: Vec<S<String>>,
    /// A branch is entered only by `advance_case`, never by order.
    #[serde(default)]
    pub branch: bool,
    #[serde(default)]
    pub sla: SlaDef,
    #[serde(default, rename = "task")]
    pub tasks: Vec<TaskDef>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Auto,
    Manual,
}

impl Activation {
    pub fn as_str(self) -> &'static str {
        match self {
            Activation::Auto => "auto",
            Activation::Manual => "manual",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDef {
    pub key: S<String>,
    pub name: String,
    #[serde(default = "yes")]
    pub mandatory: bool,
    #[serde(default = "auto")]
    pub activation: Activation,
    #[serde(default)]
    pub depends_on: Vec<S<String>>,
    /// The role whose worklist shows this task; default the definition's team role.
    pub role: Option<S<String>>,
    #[serde(default)]
    pub sla: SlaDef,
}

fn yes() -> bool {
    true
}

fn auto() -> Activation {
    Activation::Auto
}
