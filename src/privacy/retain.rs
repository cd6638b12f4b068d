//! Applying a retention rule to one closed case (rules/retention.toml, the engine's retention
//! step): its personal data is scrubbed as erasure scrubs it; with `delete` the rows that held
//! only the case's content are removed as well. The case row itself, its stages, tasks, duties
//! and decisions stay in both cases: the append-only event log refers to them, and they are the
//! statistics (H-CLIC returns, service levels) that outlive the personal data. An applicant with
//! no other case whose data is still kept is erased too, as `erase contact` would.

use chrono::{DateTime, Utc};

use super::{Leftovers, erase, scrub_case};
use crate::db::{Tx, sql};
use crate::rules::RuleSet;
use crate::rules::retention::Action;

/// The rows `delete` removes, each statement taking the case's id. Packs before the attachments
/// they point at; nothing else refers to these rows (events name notes and files by id only).
const DELETED: [&str; 8] = [
    "DELETE FROM packs WHERE case_id = $1",
    "DELETE FROM attachments WHERE case_id = $1",
    "DELETE FROM notes WHERE case_id = $1",
    "DELETE FROM pack_requests WHERE case_id = $1",
    "DELETE FROM enquiries WHERE case_id = $1",
    "DELETE FROM case_updates WHERE case_id = $1",
    "DELETE FROM task_holds WHERE case_id = $1",
    "DELETE FROM outbox WHERE case_id = $1",
];

/// Applies `action` to case `case_id` inside `tx`; gives the files to remove after commit and
/// the applicant contacts erased with it.
pub async fn retain_case(
    tx: &mut Tx,
    rules: &RuleSet,
    case_id: i64,
    action: Action,
    now: DateTime<Utc>,
) -> Result<(Leftovers, Vec<String>), sqlx::Error> {
    let mut left = scrub_case(tx, rules, case_id).await?;
    if action == Action::Delete {
        for statement in DELETED {
            sql(statement).bind(case_id).execute(&mut *tx).await?;
        }
    }
    // The applicant, or the members of the applicant group, whose every other case has been
    // retained already: nothing they gave casewarden is still kept for a purpose.
    let done: Vec<(String,)> = sql("SELECT ct.ref FROM contacts ct JOIN cases c ON c.id = $1 \
         WHERE ct.erased_at IS NULL AND (ct.ref = c.applicant_contact OR ct.ref IN \
           (SELECT contact_ref FROM contact_group_members WHERE group_ref = c.applicant_group)) \
         AND NOT EXISTS (SELECT 1 FROM cases o WHERE o.id <> $1 AND o.retained_at IS NULL \
           AND (o.applicant_contact = ct.ref OR o.applicant_group IN \
             (SELECT group_ref FROM contact_group_members WHERE contact_ref = ct.ref))) \
         ORDER BY ct.ref")
    .bind(case_id)
    .fetch_all(&mut *tx)
    .await?;
    let mut erased = Vec::new();
    for (contact,) in done {
        left.outbox_ids
            .extend(erase::erase_person(tx, &contact, now).await?);
        erase::leave_groups(tx, &contact).await?;
        erased.push(contact);
    }
    Ok((left, erased))
}
