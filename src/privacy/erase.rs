//! Erasing a contact (`casewarden erase contact REF`, `POST /v1/contacts/{ref}/erasure`): their
//! name, e-mail, phone and address, their place in contact groups, and the personal data of
//! every case they are the applicant of (or of whose applicant group they are a member), in one
//! transaction; then the files casewarden wrote for those cases and for notifications to them.
//! A case still open is refused unless forced. What remains is a tombstone: the contact's ref,
//! `erased_at`, an `erasures` row with the reason, and a `contact_erased` event that names the
//! contact and cases by reference only.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{ERASED, Leftovers, scrub_case};
use crate::db::{Db, sql, sql2};
use crate::events::{self, kinds::Kind};
use crate::rules::RuleSet;

/// What an erasure did.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Erasure {
    pub contact: String,
    pub at: DateTime<Utc>,
    /// The cases whose personal data went with the contact's.
    pub cases: Vec<String>,
    /// The contact groups left without members, whose names went too.
    pub groups_emptied: Vec<String>,
    /// The files removed: pack files and `.eml` files.
    pub files_removed: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("there is no contact {0:?}")]
    Unknown(String),
    #[error("contact {contact:?} is the applicant of open cases ({}); close them first, or erase with --force (the API's \"force\": true)", cases.join(", "))]
    OpenCases { contact: String, cases: Vec<String> },
    #[error(
        "the reason is empty: say why the data is erased (for example the request's reference)"
    )]
    NoReason,
    #[error("the contact's data is erased, but a file could not be removed: {0}")]
    Files(std::io::Error),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Where the files casewarden writes are.
pub struct FilePlaces<'a> {
    pub packs: &'a Path,
    /// The file transport's directory, when mail goes to files.
    pub mail: Option<&'a Path>,
}

/// Erases `contact`'s personal data everywhere casewarden holds it.
pub async fn erase_contact(
    db: &Db,
    rules: &RuleSet,
    contact: &str,
    (reason, force): (&str, bool),
    places: FilePlaces<'_>,
    (now, actor): (DateTime<Utc>, &str),
) -> Result<Erasure, EraseError> {
    if reason.trim().is_empty() {
        return Err(EraseError::NoReason);
    }
    let mut tx = db.begin_write().await?;
    let known: Option<(String,)> = sql("SELECT ref FROM contacts WHERE ref = $1")
        .bind(contact)
        .fetch_optional(&mut tx)
        .await?;
    if known.is_none() {
        return Err(EraseError::Unknown(contact.to_string()));
    }
    let cases: Vec<(i64, String, String)> = sql(
        "SELECT id, case_ref, status FROM cases WHERE applicant_contact = $1 OR applicant_group IN \
         (SELECT group_ref FROM contact_group_members WHERE contact_ref = $1) ORDER BY id",
    )
    .bind(contact)
    .fetch_all(&mut tx)
    .await?;
    let open: Vec<String> = cases
        .iter()
        .filter(|(_, _, status)| matches!(status.as_str(), "open" | "awaiting_advance"))
        .map(|(_, r, _)| r.clone())
        .collect();
    if !open.is_empty() && !force {
        return Err(EraseError::OpenCases {
            contact: contact.to_string(),
            cases: open,
        });
    }
    let mut left = Leftovers::default();
    for (id, _, _) in &cases {
        let scrubbed = scrub_case(&mut tx, rules, *id).await?;
        left.pack_files.extend(scrubbed.pack_files);
        left.outbox_ids.extend(scrubbed.outbox_ids);
    }
    left.outbox_ids
        .extend(erase_person(&mut tx, contact, now).await?);
    let groups_emptied = leave_groups(&mut tx, contact).await?;
    let refs: Vec<String> = cases.into_iter().map(|(_, r, _)| r).collect();
    sql("INSERT INTO erasures (contact_ref, at, actor, reason, cases) VALUES ($1, $2, $3, $4, $5)")
        .bind(contact)
        .bind(now)
        .bind(actor)
        .bind(reason)
        .bind(serde_json::json!(refs))
        .execute(&mut tx)
        .await?;
    let erased = Kind::ContactErased(events::kinds::ContactErased {
        contact: contact.to_string(),
        cases: refs.clone(),
        groups_emptied: groups_emptied.clone(),
    });
    events::record(&mut tx, None, now, actor, erased).await?;
    tx.commit().await?;
    let files_removed = left
        .remove(places.packs, places.mail)
        .map_err(EraseError::Files)?;
    Ok(Erasure {
        contact: contact.to_string(),
        at: now,
        cases: refs,
        groups_emptied,
        files_removed,
    })
}

/// The contact's own record, the commands that carried it, and notifications to it on any case;
/// gives those notifications' ids, whose files go too.
pub(super) async fn erase_person(
    tx: &mut crate::db::Tx,
    contact: &str,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, sqlx::Error> {
    sql("UPDATE contacts SET name = $2, email = NULL, phone = NULL, address = NULL, erased_at = $3, updated_at = $3 WHERE ref = $1")
        .bind(contact)
        .bind(ERASED)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    // The commands that upserted the contact (or a group naming it) held what was just erased.
    let quoted = serde_json::to_string(contact).unwrap_or_default();
    let (sqlite, postgres) = scrub_inbox!(
        "command_type IN ('upsert_contact', 'upsert_contact_group') AND instr(body, $1) > 0",
        "command_type IN ('upsert_contact', 'upsert_contact_group') AND strpos(body, $1) > 0"
    );
    sql2(sqlite, postgres)
        .bind(&quoted)
        .execute(&mut *tx)
        .await?;
    let sent: Vec<(i64,)> =
        sql("SELECT id FROM outbox WHERE recipient_kind = 'contact' AND recipient_ref = $1")
            .bind(contact)
            .fetch_all(&mut *tx)
            .await?;
    sql(scrub_outbox!(
        "recipient_kind = 'contact' AND recipient_ref = $1"
    ))
    .bind(contact)
    .execute(&mut *tx)
    .await?;
    Ok(sent.into_iter().map(|(id,)| id).collect())
}

/// Takes the contact out of its groups; a group left empty loses its name (often a family's).
pub(super) async fn leave_groups(
    tx: &mut crate::db::Tx,
    contact: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let groups: Vec<(String,)> = sql(
        "SELECT group_ref FROM contact_group_members WHERE contact_ref = $1 ORDER BY group_ref",
    )
    .bind(contact)
    .fetch_all(&mut *tx)
    .await?;
    sql("DELETE FROM contact_group_members WHERE contact_ref = $1")
        .bind(contact)
        .execute(&mut *tx)
        .await?;
    let mut emptied = Vec::new();
    for (group,) in groups {
        let changed = sql("UPDATE contact_groups SET name = $2 WHERE ref = $1 \
             AND NOT EXISTS (SELECT 1 FROM contact_group_members WHERE group_ref = $1)")
        .bind(&group)
        .bind(ERASED)
        .execute(&mut *tx)
        .await?;
        if changed > 0 {
            emptied.push(group);
        }
    }
    Ok(emptied)
}
