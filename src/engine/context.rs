//! The context a change runs in, passed down through progression and the SLA clocks: the time,
//! who is acting, and the case's calendar and rule sandbox. The transaction itself travels
//! beside it as `&mut Tx`.

use chrono::{DateTime, Utc};

/// Who and when, for the events a change writes.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub now: DateTime<Utc>,
    pub actor: &'a str,
    /// The working-day calendar of the case.
    pub cal: &'a crate::sla::Calendar,
    /// The rule sandbox, for targets decided by an expression.
    pub sandbox: &'a crate::script::Sandbox,
}

impl<'a> Ctx<'a> {
    /// The context of a change to a case under `definition`, with the rule set's calendar for it
    /// and its sandbox.
    pub fn new(
        rules: &'a crate::rules::RuleSet,
        definition: &crate::definitions::Definition,
        now: DateTime<Utc>,
        actor: &'a str,
    ) -> Ctx<'a> {
        Ctx {
            now,
            actor,
            cal: rules.calendar(definition),
            sandbox: &rules.sandbox,
        }
    }
}
