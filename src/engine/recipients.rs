//! Turning the recipients a rule names (task owner, line manager, a role, a contact group...)
//! into people with addresses, at the moment a notification is written. Roles and groups expand
//! to their members; duplicates within one notification go; a recipient with no address is kept,
//! with the reason, so nobody is skipped silently.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::db::{Tx, sql};
use crate::outbox::Addressee;
use crate::rules::escalation::Recipient;

/// The people around an item, by user ref.
#[derive(Debug, Clone, Default, Serialize)]
pub struct People {
    pub task_owner: Option<String>,
    pub stage_owner: Option<String>,
    pub case_owner: Option<String>,
    pub line_manager: Option<String>,
    pub team_role: String,
    pub applicant: Option<String>,
    pub applicant_group: Option<String>,
}

type Person = (String, String, Option<String>);

pub async fn resolve(
    tx: &mut Tx,
    to: &[Recipient],
    people: &People,
) -> Result<Vec<Addressee>, sqlx::Error> {
    let mut out: Vec<Addressee> = Vec::new();
    let mut seen = BTreeSet::new();
    for r in to {
        let (kind, found): (&'static str, Result<Vec<Person>, String>) = match r {
            Recipient::TaskOwner => (
                "user",
                user(tx, people.task_owner.as_deref(), "the task has no owner").await?,
            ),
            Recipient::StageOwner => (
                "user",
                user(tx, people.stage_owner.as_deref(), "the stage has no owner").await?,
            ),
            Recipient::CaseOwner => (
                "user",
                user(tx, people.case_owner.as_deref(), "the case has no owner").await?,
            ),
            Recipient::LineManager => (
                "user",
                user(
                    tx,
                    people.line_manager.as_deref(),
                    "the owner has no line manager",
                )
                .await?,
            ),
            Recipient::User(u) => ("user", user(tx, Some(u), "").await?),
            Recipient::Team => ("user", role(tx, &people.team_role).await?),
            Recipient::Role(r) => ("user", role(tx, r).await?),
            Recipient::Group(g) => ("contact", group(tx, g).await?),
            Recipient::Applicant => match (&people.applicant, &people.applicant_group) {
                (Some(c), _) => ("contact", contact(tx, c).await?),
                (None, Some(g)) => ("contact", group(tx, g).await?),
                (None, None) => ("contact", Err("the case has no applicant".to_string())),
            },
        };
        match found {
            Ok(list) => {
                for (reference, name, email) in list {
                    if seen.insert((kind, reference.clone())) {
                        let problem = email
                            .is_none()
                            .then(|| format!("{kind} {reference} has no e-mail address"));
                        out.push(Addressee {
                            kind,
                            reference: Some(reference),
                            name: Some(name),
                            email,
                            problem,
                        });
                    }
                }
            }
            Err(problem) => out.push(Addressee {
                kind: "none",
                reference: None,
                name: None,
                email: None,
                problem: Some(problem),
            }),
        }
    }
    Ok(out)
}

async fn user(
    tx: &mut Tx,
    user: Option<&str>,
    none: &str,
) -> Result<Result<Vec<Person>, String>, sqlx::Error> {
    let Some(user) = user else {
        return Ok(Err(none.to_string()));
    };
    let found: Option<Person> = sql("SELECT ref, name, email FROM users WHERE ref = $1 AND active")
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(found
        .map(|p| vec![p])
        .ok_or_else(|| format!("user {user} is unknown or inactive")))
}

async fn role(tx: &mut Tx, role: &str) -> Result<Result<Vec<Person>, String>, sqlx::Error> {
    let members: Vec<Person> = sql(
        "SELECT u.ref, u.name, u.email FROM users u JOIN user_roles ur ON ur.user_ref = u.ref \
         WHERE ur.role_ref = $1 AND u.active ORDER BY u.ref",
    )
    .bind(role)
    .fetch_all(&mut *tx)
    .await?;
    Ok(if members.is_empty() {
        Err(format!("role {role} has no active members"))
    } else {
        Ok(members)
    })
}

async fn contact(tx: &mut Tx, contact: &str) -> Result<Result<Vec<Person>, String>, sqlx::Error> {
    let found: Option<Person> = sql("SELECT ref, name, email FROM contacts WHERE ref = $1")
        .bind(contact)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(found
        .map(|p| vec![p])
        .ok_or_else(|| format!("contact {contact} is unknown")))
}

async fn group(tx: &mut Tx, group: &str) -> Result<Result<Vec<Person>, String>, sqlx::Error> {
    let members: Vec<Person> = sql(
        "SELECT c.ref, c.name, c.email FROM contacts c JOIN contact_group_members m ON m.contact_ref = c.ref \
         WHERE m.group_ref = $1 ORDER BY c.ref",
    )
    .bind(group)
    .fetch_all(&mut *tx)
    .await?;
    Ok(if members.is_empty() {
        Err(format!("contact group {group} has no members"))
    } else {
        Ok(members)
    })
}
