//! The data protection commands: `casewarden erase contact REF --reason TEXT [--force]` erases a
//! contact's personal data everywhere casewarden holds it (see `privacy::erase`); `casewarden
//! export contact REF --to DIR` writes everything held about them (subject access).

use std::fmt::Write;

use clap::Subcommand;

use crate::output::outln;
use crate::privacy::{self, Erasure, FilePlaces};
use crate::settings::Settings;
use crate::text::{terminal as t, terminal_json};
use crate::{clock, startup};

#[derive(Debug, Subcommand)]
pub enum EraseWhat {
    /// Erase a contact's name, e-mail, phone and address, their place in contact groups, and the
    /// personal data of every case they are the applicant of: answers, notes, attachments' names,
    /// typed reasons, pack files and the notifications' addresses and `.eml` files. The cases'
    /// shells (references, dates, stages and decisions) and the event log stay.
    Contact {
        /// The contact's ref.
        contact_ref: String,
        /// Why (for example the request's reference): kept in the `erasures` table.
        #[arg(long)]
        reason: String,
        /// Erase even when the contact is the applicant of a case still open.
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportWhat {
    /// Write everything casewarden holds about a contact to DIR, for a subject access request:
    /// `subject-access.json` (their record and groups, their cases in full with answers, notes,
    /// holds, packs, duties and plan steps, the notifications sent to them, any erasure) and the
    /// housing pack files, under `case-<id>/`.
    Contact {
        /// The contact's ref.
        contact_ref: String,
        /// A directory to create (or an empty one) for the document and the files.
        #[arg(long, value_name = "DIR")]
        to: std::path::PathBuf,
    },
}

pub async fn export(settings: &Settings, what: ExportWhat) -> anyhow::Result<()> {
    let ExportWhat::Contact { contact_ref, to } = what;
    if to.exists() && std::fs::read_dir(&to).map_or(true, |mut d| d.next().is_some()) {
        anyhow::bail!(
            "{} exists and is not an empty directory: give a new directory for the export",
            to.display()
        );
    }
    let db = startup::connect_database(settings).await?;
    let access = crate::report::export_contact(&db, &contact_ref, clock::now()).await;
    let access = match access {
        Ok(Some(a)) => a,
        Ok(None) => {
            db.close().await;
            anyhow::bail!("there is no contact {:?}", contact_ref);
        }
        Err(e) => {
            db.close().await;
            return Err(e.into());
        }
    };
    std::fs::create_dir_all(&to)?;
    let packs = crate::report::copy_packs(&db, &access, &to).await;
    db.close().await;
    let packs = packs?;
    let document = to.join("subject-access.json");
    std::fs::write(&document, serde_json::to_vec_pretty(&access)?)?;
    outln!(
        "{}: contact {}, {} case(s), {} notification(s), {} pack file(s)",
        document.display(),
        t(&contact_ref),
        access.cases.len(),
        access.notifications.len(),
        packs.len()
    )?;
    Ok(())
}

pub async fn run(settings: &Settings, what: EraseWhat) -> anyhow::Result<()> {
    let EraseWhat::Contact {
        contact_ref,
        reason,
        force,
        json,
    } = what;
    let rules = startup::load_rules(settings)
        .map_err(|p| anyhow::anyhow!("the rule set has problems:\n{p}"))?;
    let db = startup::connect_database(settings).await?;
    let mail = (settings.mail.transport == crate::mail::settings::TransportKind::File)
        .then_some(settings.mail.dir.as_path());
    let places = FilePlaces {
        packs: &settings.packs.dir,
        mail,
    };
    let erased = privacy::erase_contact(
        &db,
        &rules,
        &contact_ref,
        (&reason, force),
        places,
        (clock::now(), "operator"),
    )
    .await;
    db.close().await;
    let erased = erased?;
    if json {
        outln!("{}", terminal_json(&serde_json::to_string_pretty(&erased)?))?;
    } else {
        outln!("{}", text(&erased))?;
    }
    Ok(())
}

fn text(e: &Erasure) -> String {
    let mut out = format!(
        "contact {} erased at {}",
        t(&e.contact),
        clock::for_people(e.at)
    );
    let list = |v: &[String]| {
        v.iter()
            .map(|r| t(r).into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if e.cases.is_empty() {
        out.push_str("\n  cases: none");
    } else {
        let _ = write!(out, "\n  cases: {}", list(&e.cases));
    }
    if !e.groups_emptied.is_empty() {
        let _ = write!(
            out,
            "\n  contact groups left empty: {}",
            list(&e.groups_emptied)
        );
    }
    let _ = write!(out, "\n  files removed: {}", e.files_removed.len());
    out
}
