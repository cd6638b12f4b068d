//! Turning the recipients a rule names (task owner, line manager, a role, a contact group...)
//! into people with addresses, when a notification is made (for the SLA sweep, as its batch is
//! read, just before the batch is written). Roles and groups expand to their members;
//! duplicates within one notification go; a recipient with no address is kept, with the reason,
//! so nobody is skipped silently.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::db::{Ex, Sql, Tx, rows_per_statement};
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

/// Resolves the recipients of one notification, reading whom they name in `tx`.
pub async fn resolve(
    tx: &mut Tx,
    to: &[Recipient],
    people: &People,
) -> Result<Vec<Addressee>, sqlx::Error> {
    let mut wanted = Wanted::default();
    wanted.add(to, people);
    Ok(Directory::load(&mut *tx, &wanted)
        .await?
        .resolve(to, people))
}

/// The users, roles, contacts and groups some notifications name, gathered before a
/// [`Directory`] reads them all at once.
#[derive(Debug, Default)]
pub struct Wanted {
    users: BTreeSet<String>,
    roles: BTreeSet<String>,
    contacts: BTreeSet<String>,
    groups: BTreeSet<String>,
}

impl Wanted {
    /// Adds whom `to` names among `people`.
    pub fn add(&mut self, to: &[Recipient], people: &People) {
        let mut user = |u: &Option<String>| self.users.extend(u.iter().cloned());
        for r in to {
            match r {
                Recipient::TaskOwner => user(&people.task_owner),
                Recipient::StageOwner => user(&people.stage_owner),
                Recipient::CaseOwner => user(&people.case_owner),
                Recipient::LineManager => user(&people.line_manager),
                Recipient::User(u) => user(&Some(u.clone())),
                Recipient::Team => {
                    self.roles.insert(people.team_role.clone());
                }
                Recipient::Role(r) => {
                    self.roles.insert(r.clone());
                }
                Recipient::Group(g) => {
                    self.groups.insert(g.clone());
                }
                Recipient::Applicant => match (&people.applicant, &people.applicant_group) {
                    (Some(c), _) => {
                        self.contacts.insert(c.clone());
                    }
                    (None, Some(g)) => {
                        self.groups.insert(g.clone());
                    }
                    (None, None) => {}
                },
            }
        }
    }
}

/// Whom recipients name, read with one query per sort of recipient for a whole batch of
/// notifications: active users by ref, the active members of roles, contacts by ref and the
/// members of contact groups, members in the order of their refs.
#[derive(Debug, Default)]
pub struct Directory {
    users: HashMap<String, Person>,
    roles: HashMap<String, Vec<Person>>,
    contacts: HashMap<String, Person>,
    groups: HashMap<String, Vec<Person>>,
}

impl Directory {
    pub async fn load<'a>(
        on: impl Into<Ex<'a>>,
        wanted: &Wanted,
    ) -> Result<Directory, sqlx::Error> {
        let mut on = on.into();
        Ok(Directory {
            users: one_each(on.reborrow(), USERS, &wanted.users).await?,
            roles: members(on.reborrow(), ROLE_MEMBERS, &wanted.roles).await?,
            contacts: one_each(on.reborrow(), CONTACTS, &wanted.contacts).await?,
            groups: members(on.reborrow(), GROUP_MEMBERS, &wanted.groups).await?,
        })
    }

    /// The addressees of a notification to `to`: duplicates go, and a recipient who names
    /// nobody, or nobody with an address, is kept with the reason.
    pub fn resolve(&self, to: &[Recipient], people: &People) -> Vec<Addressee> {
        let mut out: Vec<Addressee> = Vec::new();
        let mut seen = BTreeSet::new();
        for r in to {
            let (kind, found): (&'static str, Result<Vec<Person>, String>) = match r {
                Recipient::TaskOwner => (
                    "user",
                    self.user(&people.task_owner, "the task has no owner"),
                ),
                Recipient::StageOwner => (
                    "user",
                    self.user(&people.stage_owner, "the stage has no owner"),
                ),
                Recipient::CaseOwner => (
                    "user",
                    self.user(&people.case_owner, "the case has no owner"),
                ),
                Recipient::LineManager => (
                    "user",
                    self.user(&people.line_manager, "the owner has no line manager"),
                ),
                Recipient::User(u) => ("user", self.user(&Some(u.clone()), "")),
                Recipient::Team => ("user", self.role(&people.team_role)),
                Recipient::Role(r) => ("user", self.role(r)),
                Recipient::Group(g) => ("contact", self.group(g)),
                Recipient::Applicant => match (&people.applicant, &people.applicant_group) {
                    (Some(c), _) => ("contact", self.contact(c)),
                    (None, Some(g)) => ("contact", self.group(g)),
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
        out
    }

    fn user(&self, user: &Option<String>, none: &str) -> Result<Vec<Person>, String> {
        let Some(user) = user else {
            return Err(none.to_string());
        };
        self.users
            .get(user)
            .map(|p| vec![p.clone()])
            .ok_or_else(|| format!("user {user} is unknown or inactive"))
    }

    fn role(&self, role: &str) -> Result<Vec<Person>, String> {
        self.roles
            .get(role)
            .cloned()
            .ok_or_else(|| format!("role {role} has no active members"))
    }

    fn contact(&self, contact: &str) -> Result<Vec<Person>, String> {
        self.contacts
            .get(contact)
            .map(|p| vec![p.clone()])
            .ok_or_else(|| format!("contact {contact} is unknown"))
    }

    fn group(&self, group: &str) -> Result<Vec<Person>, String> {
        self.groups
            .get(group)
            .cloned()
            .ok_or_else(|| format!("contact group {group} has no members"))
    }
}

const USERS: &str = "SELECT ref, name, email FROM users WHERE active AND ref IN ";
const CONTACTS: &str = "SELECT ref, name, email FROM contacts WHERE ref IN ";
// Ordered by the list, then as the members of one list always were: by ref.
const ROLE_MEMBERS: (&str, &str) = (
    "SELECT ur.role_ref, u.ref, u.name, u.email FROM users u JOIN user_roles ur ON ur.user_ref = u.ref \
     WHERE u.active AND ur.role_ref IN ",
    " ORDER BY ur.role_ref, u.ref",
);
const GROUP_MEMBERS: (&str, &str) = (
    "SELECT m.group_ref, c.ref, c.name, c.email FROM contacts c JOIN contact_group_members m ON m.contact_ref = c.ref \
     WHERE m.group_ref IN ",
    " ORDER BY m.group_ref, c.ref",
);

/// The rows named by `refs`, by ref.
async fn one_each(
    mut on: Ex<'_>,
    select: &'static str,
    refs: &BTreeSet<String>,
) -> Result<HashMap<String, Person>, sqlx::Error> {
    let mut out = HashMap::new();
    let refs: Vec<&String> = refs.iter().collect();
    for chunk in refs.chunks(rows_per_statement(1)) {
        let found: Vec<Person> =
            Sql::sized(|marks| format!("{select}{}", marks.list(chunk.len(), 1)))
                .bind_all(chunk.iter().copied())
                .fetch_all(on.reborrow())
                .await?;
        out.extend(found.into_iter().map(|p| (p.0.clone(), p)));
    }
    Ok(out)
}

/// The members of each list named by `refs`, by list; a list without members is absent.
async fn members(
    mut on: Ex<'_>,
    (select, order): (&'static str, &'static str),
    refs: &BTreeSet<String>,
) -> Result<HashMap<String, Vec<Person>>, sqlx::Error> {
    let mut out: HashMap<String, Vec<Person>> = HashMap::new();
    let refs: Vec<&String> = refs.iter().collect();
    for chunk in refs.chunks(rows_per_statement(1)) {
        let found: Vec<(String, String, String, Option<String>)> =
            Sql::sized(|marks| format!("{select}{}{order}", marks.list(chunk.len(), 1)))
                .bind_all(chunk.iter().copied())
                .fetch_all(on.reborrow())
                .await?;
        for (of, reference, name, email) in found {
            out.entry(of).or_default().push((reference, name, email));
        }
    }
    Ok(out)
}
