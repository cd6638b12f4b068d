//! Applying one command inside a transaction: check it against the database, change state,
//! write the events. A rejection leaves nothing behind, because the caller rolls back.
//!
//! Each family of commands has its own file; this one routes a command to its handler and then
//! lets a housing options case's target follow whatever changed.

mod amend;
mod duties;
mod housing_options;
mod lifecycle;
pub mod lookup;
mod reference;
mod tasks;

use chrono::{DateTime, Utc};

use crate::commands::Command;
use crate::db::Tx;
use crate::db::rows;
use crate::engine::case_target;
use crate::rules::RuleSet;

pub use lookup::{Applied, ApplyError, CRM, Handled};

/// Applies `command` at `now`. `source` is who sent it, the actor of its events unless it names a
/// user in `by`: the API client that submitted it, else [`CRM`]. It is passed down, not looked up,
/// so every handler that records an event names the same source.
pub async fn apply(
    tx: &mut Tx,
    rules: &RuleSet,
    command: &Command,
    now: DateTime<Utc>,
    source: &str,
) -> Applied {
    let handled = one(tx, rules, command, now, source).await?;
    // A housing options case's target follows its tasks: whatever the command changed, see
    // whether the target moved.
    let case = match (handled, command.case_ref()) {
        (Some(case), _) => Some(case),
        (None, Some(case_ref)) => rows::case_by_ref(&mut *tx, case_ref).await?,
        (None, None) => None,
    };
    if let Some(case) = case {
        case_target::refresh(tx, rules, &case, command.type_name(), now).await?;
    }
    Ok(())
}

async fn one(
    tx: &mut Tx,
    rules: &RuleSet,
    command: &Command,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    match command {
        Command::UpsertUser(u) => reference::upsert_user(tx, u, now, source).await,
        Command::UpsertRole(r) => reference::upsert_role(tx, r, now, source).await,
        Command::UpsertContact(c) => reference::upsert_contact(tx, c, now, source).await,
        Command::UpsertContactGroup(g) => reference::upsert_contact_group(tx, g, now, source).await,
        Command::CreateCase(c) => lifecycle::create_case(tx, rules, c, now, source).await,
        Command::AdvanceCase(a) => {
            lifecycle::advance_case(tx, rules, &a.case_ref, &a.to_stage, now, source).await
        }
        Command::ReassignCase(r) => lifecycle::reassign_case(tx, rules, r, now, source).await,
        Command::AddNote(n) => lifecycle::add_note(tx, n, now).await,
        Command::AttachFile(f) => lifecycle::attach_file(tx, f, now, source).await,
        Command::CloseCase(c) => lifecycle::close_case(tx, rules, c, now, source).await,
        Command::ActivateTask(t) => tasks::activate_task(tx, rules, t, now, source).await,
        Command::CompleteTask(t) => tasks::complete_task(tx, rules, t, now).await,
        Command::SkipTask(t) => tasks::skip_task(tx, rules, t, now, source).await,
        Command::HoldTask(h) => tasks::hold_task(tx, rules, h, now, source).await,
        Command::ReleaseTask(t) => tasks::release_task(tx, rules, t, now, source).await,
        Command::SubmitEnquiry(e) => {
            housing_options::submit_enquiry(tx, rules, e, now, source).await
        }
        Command::RenderPack(r) => housing_options::render_pack(tx, rules, r, now, source).await,
        Command::UpdateCase(u) => amend::update_case(tx, rules, u, now, source).await,
        Command::RecordDuty(d) => duties::record_duty(tx, rules, d, now, source).await,
        Command::RecordReferral(r) => duties::record_referral(tx, rules, r, now, source).await,
        Command::RecordPlanStep(s) => duties::record_plan_step(tx, rules, s, now, source).await,
    }
}
