//! Removing a case's personal data, leaving its shell: references, dates, stages, tasks, their
//! states and the decisions made, for statistics and the audit trail of the event log.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::ERASED;
use crate::db::{Tx, sql, sql2};
use crate::rules::RuleSet;

/// Files to remove once the transaction that scrubbed their rows has committed: the case's pack
/// files and the `.eml` files of its notifications.
#[derive(Debug, Default)]
pub struct Leftovers {
    pub pack_files: Vec<PathBuf>,
    pub outbox_ids: Vec<i64>,
}

impl Leftovers {
    /// Removes the files, those under `packs` and `mail` only (a URI elsewhere is the CRM's
    /// document, which casewarden only pointed at); gives those removed.
    pub fn remove(&self, packs: &Path, mail: Option<&Path>) -> std::io::Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        let packs = packs.canonicalize().unwrap_or_else(|_| packs.to_path_buf());
        for path in &self.pack_files {
            let Ok(real) = path.canonicalize() else {
                continue;
            };
            if real.starts_with(&packs) {
                std::fs::remove_file(&real)?;
                removed.push(real);
            }
        }
        if let Some(mail) = mail {
            for id in &self.outbox_ids {
                let path = mail.join(format!("outbox-{id}.eml"));
                match std::fs::remove_file(&path) {
                    Ok(()) => removed.push(path),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(removed)
    }

    fn add(&mut self, other: Leftovers) {
        self.pack_files.extend(other.pack_files);
        self.outbox_ids.extend(other.outbox_ids);
    }
}

/// Scrubs the personal data of case `case_id` inside `tx`: the property's address, the
/// attributes its definition marks personal (all of them when the rule set in force no longer
/// has the definition), enquiry answers, notes, attachments' names and URIs, the typed reasons
/// and outcomes, the amendments' values, the advice explanations, its notifications' addresses
/// and facts (a notification not yet sent is given up), and the bodies of the commands that
/// named the case. Gives the files to remove after commit.
pub async fn scrub_case(
    tx: &mut Tx,
    rules: &RuleSet,
    case_id: i64,
) -> Result<Leftovers, sqlx::Error> {
    let mut left = Leftovers::default();
    scrub_facts(tx, rules, case_id).await?;
    for statement in CASE_TEXT {
        sql(statement)
            .bind(case_id)
            .bind(ERASED)
            .execute(&mut *tx)
            .await?;
    }
    for statement in CASE_CLEARED {
        sql(statement).bind(case_id).execute(&mut *tx).await?;
    }
    left.add(scrub_files(tx, case_id).await?);
    let outbox: Vec<(i64,)> = sql("SELECT id FROM outbox WHERE case_id = $1")
        .bind(case_id)
        .fetch_all(&mut *tx)
        .await?;
    left.outbox_ids.extend(outbox.into_iter().map(|(id,)| id));
    sql(scrub_outbox!("case_id = $1"))
        .bind(case_id)
        .execute(&mut *tx)
        .await?;
    let (sqlite, postgres) = scrub_inbox!(
        "case_ref = (SELECT case_ref FROM cases WHERE id = $1)",
        "case_ref = (SELECT case_ref FROM cases WHERE id = $1)"
    );
    sql2(sqlite, postgres)
        .bind(case_id)
        .execute(&mut *tx)
        .await?;
    Ok(left)
}

/// The case's free text that an officer typed: each statement takes the case's id and the
/// erased marker, which shows where something was.
const CASE_TEXT: [&str; 6] = [
    "UPDATE notes SET body = $2 WHERE case_id = $1",
    "UPDATE tasks SET outcome = CASE WHEN outcome IS NULL THEN NULL ELSE $2 END, \
     skip_reason = CASE WHEN skip_reason IS NULL THEN NULL ELSE $2 END, \
     hold_reason = CASE WHEN hold_reason IS NULL THEN NULL ELSE $2 END WHERE case_id = $1",
    "UPDATE task_holds SET reason = $2 WHERE case_id = $1",
    "UPDATE case_updates SET reason = $2, changes = '[]' WHERE case_id = $1",
    "UPDATE plan_steps SET step = $2 WHERE case_id = $1",
    "UPDATE duties SET end_reason = CASE WHEN end_reason IS NULL THEN NULL ELSE $2 END WHERE case_id = $1",
];

/// What is cleared outright: each statement takes the case's id.
const CASE_CLEARED: [&str; 3] = [
    "UPDATE enquiries SET answers = '{}', updated_by = NULL WHERE case_id = $1",
    "UPDATE packs SET advice = '[]' WHERE case_id = $1",
    "UPDATE pack_requests SET last_error = NULL WHERE case_id = $1",
];

/// The property's address and the personal attributes.
async fn scrub_facts(tx: &mut Tx, rules: &RuleSet, case_id: i64) -> Result<(), sqlx::Error> {
    let (definition, attributes): (String, sqlx::types::Json<Value>) =
        sql("SELECT definition_id, attributes FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_one(&mut *tx)
            .await?;
    let kept = match (rules.definition(&definition), attributes.0) {
        (Some(def), Value::Object(mut map)) => {
            map.retain(|k, _| !def.personal_attributes.contains(k));
            Value::Object(map)
        }
        // Without its definition there is no telling which are personal.
        _ => Value::Object(serde_json::Map::new()),
    };
    sql("UPDATE cases SET property_address = NULL, attributes = $2 WHERE id = $1")
        .bind(case_id)
        .bind(kept)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Attachments' names and URIs, and the pack files among them to remove.
async fn scrub_files(tx: &mut Tx, case_id: i64) -> Result<Leftovers, sqlx::Error> {
    let packs: Vec<(String,)> = sql(
        "SELECT a.uri FROM attachments a JOIN packs p ON a.id IN (p.html_attachment_id, p.text_attachment_id) \
         WHERE p.case_id = $1",
    )
    .bind(case_id)
    .fetch_all(&mut *tx)
    .await?;
    sql("UPDATE attachments SET name = $2, uri = 'erased:' WHERE case_id = $1")
        .bind(case_id)
        .bind(ERASED)
        .execute(&mut *tx)
        .await?;
    Ok(Leftovers {
        pack_files: packs
            .into_iter()
            .filter_map(|(uri,)| uri.strip_prefix("file://").map(PathBuf::from))
            .collect(),
        outbox_ids: Vec::new(),
    })
}
