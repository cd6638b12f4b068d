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
