//! Subject access (UK GDPR article 15): everything casewarden holds about one contact, as one
//! JSON document (`casewarden export contact REF`, `GET /v1/contacts/{ref}/export`): their
//! record and groups, every case they are the applicant of (directly or through a group) in full
//! as `show case` gives it (stages, tasks, notes, attachments, answers, packs, duties and plan
//! steps, amendments, events) with each hold and its reason, the notifications sent to them, and
//! any erasure of their data. The CLI also copies the cases' pack files beside the document.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{CaseReport, PackFormat};
use crate::db::{Db, sql};
use crate::report;

#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct ContactRecord {
    #[serde(rename = "ref")]
    #[sqlx(rename = "ref")]
    pub contact_ref: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// When the contact's data was erased, if it was.
    pub erased_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct GroupRecord {
    #[serde(rename = "ref")]
    #[sqlx(rename = "ref")]
    pub group_ref: String,
    pub name: String,
}

/// One hold of a task, with the reason given for it.
#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct HoldRecord {
    pub task: String,
    pub held_at: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub reason: String,
}

/// A notification to the contact, as the outbox keeps it.
#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct NotificationRecord {
    pub id: i64,
    pub case_ref: Option<String>,
    pub template: String,
    pub recipient_email: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The facts the message was rendered from.
    #[schemars(with = "serde_json::Value")]
    pub facts: sqlx::types::Json<serde_json::Value>,
}

#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct ErasureRecord {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub reason: String,
    #[schemars(with = "Vec<String>")]
    pub cases: sqlx::types::Json<Vec<String>>,
}

/// A case of the contact's, with every hold of its tasks.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CaseRecord {
    #[serde(flatten)]
    pub report: CaseReport,
    pub holds: Vec<HoldRecord>,
}

/// Everything casewarden holds about one contact.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SubjectAccess {
    pub generated_at: DateTime<Utc>,
    pub contact: ContactRecord,
    pub groups: Vec<GroupRecord>,
    pub cases: Vec<CaseRecord>,
    pub notifications: Vec<NotificationRecord>,
    pub erasures: Vec<ErasureRecord>,
}

/// The contact's subject access document; None when there is no such contact.
pub async fn export_contact(
    db: &Db,
    contact: &str,
    now: DateTime<Utc>,
) -> Result<Option<SubjectAccess>, sqlx::Error> {
    let record: Option<ContactRecord> = sql(
        "SELECT ref, name, email, phone, address, updated_at, erased_at FROM contacts WHERE ref = $1",
    )
    .bind(contact)
    .fetch_optional(db)
    .await?;
    let Some(record) = record else {
        return Ok(None);
    };
    let groups = sql(
        "SELECT g.ref, g.name FROM contact_groups g JOIN contact_group_members m ON m.group_ref = g.ref \
         WHERE m.contact_ref = $1 ORDER BY g.ref",
    )
    .bind(contact)
    .fetch_all(db)
    .await?;
    let refs: Vec<(String,)> = sql(
        "SELECT case_ref FROM cases WHERE applicant_contact = $1 OR applicant_group IN \
         (SELECT group_ref FROM contact_group_members WHERE contact_ref = $1) ORDER BY id",
    )
    .bind(contact)
    .fetch_all(db)
    .await?;
    let mut cases = Vec::new();
    for (case_ref,) in refs {
        if let Some(report) = report::case(db, &case_ref).await? {
            let holds = sql(
                "SELECT t.task, h.held_at, h.until, h.reason FROM task_holds h JOIN tasks t ON t.id = h.task_id \
                 WHERE h.case_id = $1 ORDER BY h.id",
            )
            .bind(report.case.id)
            .fetch_all(db)
            .await?;
            cases.push(CaseRecord { report, holds });
        }
    }
    let notifications = sql(
        "SELECT o.id, c.case_ref, o.template, o.recipient_email, o.status, o.created_at, o.sent_at, o.facts \
         FROM outbox o LEFT JOIN cases c ON c.id = o.case_id \
         WHERE o.recipient_kind = 'contact' AND o.recipient_ref = $1 ORDER BY o.id",
    )
    .bind(contact)
    .fetch_all(db)
    .await?;
    let erasures =
        sql("SELECT at, actor, reason, cases FROM erasures WHERE contact_ref = $1 ORDER BY id")
            .bind(contact)
            .fetch_all(db)
            .await?;
    Ok(Some(SubjectAccess {
        generated_at: now,
        contact: record,
        groups,
        cases,
        notifications,
        erasures,
    }))
}

/// Copies the pack files of the document's cases into `dir` (`case-<id>/housing-pack-v<N>.html`
/// and `.txt`, by the case's internal id as the pack directory names it: two references that
/// differ only in case would share a directory on some file systems), each checked against the
/// SHA-256 it was made with; gives the files written.
pub async fn copy_packs(
    db: &Db,
    access: &SubjectAccess,
    dir: &Path,
) -> Result<Vec<PathBuf>, ExportError> {
    let mut written = Vec::new();
    for case in &access.cases {
        let Some(housing) = &case.report.housing else {
            continue;
        };
        for pack in &housing.packs {
            for format in [PackFormat::Html, PackFormat::Text] {
                let bytes = report::pack_file(db, &case.report.case.case_ref, pack.version, format)
                    .await
                    .map_err(|e| ExportError::Pack(e.to_string()))?;
                let case_dir = dir.join(format!("case-{}", case.report.case.id));
                std::fs::create_dir_all(&case_dir).map_err(ExportError::Write)?;
                let path = case_dir.join(format!(
                    "housing-pack-v{}.{}",
                    pack.version,
                    format.extension()
                ));
                std::fs::write(&path, bytes).map_err(ExportError::Write)?;
                written.push(path);
            }
        }
    }
    Ok(written)
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("a pack file cannot be exported: {0}")]
    Pack(String),
    #[error("cannot write the export: {0}")]
    Write(std::io::Error),
}
