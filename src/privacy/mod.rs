//! Personal data as UK GDPR expects it handled. casewarden holds tenants' and applicants'
//! personal data, some of it special category (support needs, domestic abuse), in these places
//! and nowhere else (the event log holds references only; see docs/data-protection.md):
//!
//! - `contacts` (name, e-mail, phone, address) and `contact_groups` (name);
//! - on each case: `cases.property_address`, the attributes its definition marks personal,
//!   `enquiries.answers`, `notes.body`, `attachments` (name, URI) and the pack files on disk,
//!   `packs.advice` (which quotes answers), the reasons and outcomes officers type
//!   (`tasks.outcome`, `tasks.skip_reason`, `tasks.hold_reason`, `task_holds.reason`,
//!   `case_updates`, `duties.end_reason`, `plan_steps.step`), `pack_requests.last_error`;
//! - `outbox` (the recipient's address and the facts a message was rendered from) and the `.eml`
//!   files the file transport wrote;
//! - `inbox` (the commands as the CRM sent them, and why any was refused).
//!
//! [`scrub`] removes a case's share of it; [`erase`] a contact's, across its cases; [`retain`]
//! applies a retention rule to a closed case. A contact's subject access document, which reads
//! like `show case`, is in `report::subject_access`.

/// Erases the notifications `$where` selects: address, facts and error go; one not yet sent is
/// given up. Their template, recipient's ref and dates stay.
macro_rules! scrub_outbox {
    ($where:literal) => {
        concat!(
            "UPDATE outbox SET recipient_email = NULL, facts = '{}', last_error = NULL, \
             status = CASE WHEN status IN ('pending', 'claimed') THEN 'dead' ELSE status END, \
             next_attempt_at = CASE WHEN status IN ('pending', 'claimed') THEN NULL ELSE next_attempt_at END, \
             claimed_until = NULL WHERE ",
            $where
        )
    };
}

/// Erases the bodies of the decided commands `$where` selects, keeping their type: the SQLite
/// statement, then the PostgreSQL one, for `sql2`.
macro_rules! scrub_inbox {
    ($sqlite_where:literal, $postgres_where:literal) => {
        (
            concat!(
                "UPDATE inbox SET body = json_object('type', command_type, 'erased', json('true')), \
                 reason = NULL WHERE status <> 'pending' AND ",
                $sqlite_where
            ),
            concat!(
                "UPDATE inbox SET body = json_build_object('type', command_type, 'erased', true)::text, \
                 reason = NULL WHERE status <> 'pending' AND ",
                $postgres_where
            ),
        )
    };
}

mod erase;
mod retain;
mod scrub;

pub use erase::{EraseError, Erasure, FilePlaces, erase_contact};
pub use retain::retain_case;
pub use scrub::{Leftovers, scrub_case};

/// What erased text reads as.
pub const ERASED: &str = "(erased)";
