//! Retention: the step that applies `rules/retention.toml` to closed cases, found by index.
//!
//! A closed case is given its retention date once (`cases.retention_due_at`, with the rule and
//! its action), through `cases_retention_unscheduled`, which holds only closed cases not yet
//! given one; when the retention rules change, every closed case still kept is given its date
//! afresh (one statement, once per change). Cases whose date has come are found through
//! `cases_retention_due`, so a pass costs what is due, not the number of closed cases. Each case
//! is retained in its own write transaction with its `retention_applied` event; its files go
//! after the commit.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::budget::Budget;
use super::error::StepError;
use super::guard::{self, Aside, Skipped};
use crate::db::rows;
use crate::db::{Db, sql};
use crate::events::kinds::{self, Kind};
use crate::events::{self, ENGINE};
use crate::rules::RuleSet;
use crate::rules::retention::{Action, ClosedCase, Retention};

/// Closed cases not yet given a retention date, through `cases_retention_unscheduled`.
pub const UNSCHEDULED: &str = "SELECT c.id, c.kind, COALESCE(c.scheme, c.workflow), c.outcome, c.closed_at, \
     EXISTS (SELECT 1 FROM duties d WHERE d.case_id = c.id) FROM cases c \
     WHERE c.closed_at IS NOT NULL AND c.retention_rule IS NULL AND c.retained_at IS NULL \
     ORDER BY c.id LIMIT $1";

/// Cases whose retention date has come, through `cases_retention_due`.
pub const DUE: &str =
    "SELECT id FROM cases WHERE retention_due_at <= $1 ORDER BY retention_due_at, id LIMIT $2";

/// What the step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub anonymised: u64,
    pub deleted: u64,
}

/// Where the files of a retained case are, and whether to remove them (not in a dry run).
#[derive(Debug, Clone, Copy)]
pub struct Files<'a> {
    pub packs: &'a Path,
    pub mail: Option<&'a Path>,
    pub remove: bool,
}

/// The fingerprint of the retention rules an engine last found the dates worked out with, so
/// its passes read `retention_schedule` only when its rules are not those (a start, a reload).
#[derive(Debug, Default)]
pub struct InPlace(std::sync::Mutex<Option<String>>);

impl InPlace {
    fn holds(&self, fingerprint: &str) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).as_deref() == Some(fingerprint)
    }

    fn set(&self, fingerprint: &str) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(fingerprint.to_string());
    }
}

/// Gives closed cases their retention dates, then retains the cases due, batch by batch.
pub async fn run_once(
    db: &Db,
    (rules, in_place): (&RuleSet, &InPlace),
    files: Files<'_>,
    now: DateTime<Utc>,
    batch: i64,
    budget: &Budget,
) -> Result<Outcome, StepError> {
    let retention = &rules.retention;
    if !in_place.holds(&retention.fingerprint) {
        restart_if_changed(db, retention).await?;
        in_place.set(&retention.fingerprint);
    }
    while schedule(db, retention, batch).await? == batch {
        if budget.spent() {
            return Ok(Outcome::default());
        }
    }
    let mut done = Outcome::default();
    let mut skipped = Skipped::default();
    loop {
        let mut due: Vec<(i64,)> = sql(DUE).bind(now).bind(batch).fetch_all(db).await?;
        due.retain(|(id,)| !skipped.has(0, *id));
        if due.is_empty() || budget.spent() {
            return Ok(done);
        }
        for (id,) in due {
            match guard::catch(retain(db, rules, files, id, now)).await {
                Ok(Some(Action::Anonymise)) => done.anonymised += 1,
                Ok(Some(Action::Delete)) => done.deleted += 1,
                Ok(None) => {}
                Err(error) => {
                    skipped.add(0, id);
                    guard::count_failure(db, set_aside(id), &error, now).await?;
                }
            }
        }
    }
}

/// When the retention rules are not those the dates were worked out with, every closed case
/// still kept is to be given its date again.
async fn restart_if_changed(db: &Db, retention: &Retention) -> Result<(), sqlx::Error> {
    let current: Option<(String,)> = sql("SELECT fingerprint FROM retention_schedule WHERE id = 1")
        .fetch_optional(db)
        .await?;
    if current.is_some_and(|(f,)| f == retention.fingerprint) {
        return Ok(());
    }
    let mut tx = db.begin_write().await?;
    sql(
        "UPDATE cases SET retention_rule = NULL, retention_action = NULL, retention_due_at = NULL \
         WHERE closed_at IS NOT NULL AND retained_at IS NULL",
    )
    .execute(&mut tx)
    .await?;
    sql(
        "INSERT INTO retention_schedule (id, fingerprint) VALUES (1, $1) \
         ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint",
    )
    .bind(&retention.fingerprint)
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

type Unscheduled = (
    i64,
    String,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
    bool,
);

/// Gives one batch of closed cases their rule and date ('' and none when no rule matches);
/// gives how many.
async fn schedule(db: &Db, retention: &Retention, batch: i64) -> Result<i64, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let cases: Vec<Unscheduled> = sql(UNSCHEDULED).bind(batch).fetch_all(&mut tx).await?;
    for (id, kind, stream, outcome, closed, duty) in &cases {
        let case = ClosedCase {
            kind,
            stream: stream.as_ref(),
            outcome: outcome.as_ref(),
            duty: *duty,
        };
        let rule = retention.rule_for(&case);
        let (label, action, due) = match rule {
            Some(r) => (
                r.label.as_str(),
                Some(r.action.as_str()),
                r.keep.after(*closed),
            ),
            None => ("", None, None),
        };
        sql("UPDATE cases SET retention_rule = $2, retention_action = $3, retention_due_at = $4 WHERE id = $1")
            .bind(*id)
            .bind(label)
            .bind(action)
            .bind(due)
            .execute(&mut tx)
            .await?;
    }
    tx.commit().await?;
    Ok(cases.len() as i64)
}

type Due = (String, String, DateTime<Utc>, DateTime<Utc>);

/// Retains one case whose date has come; `None` when another writer did first.
async fn retain(
    db: &Db,
    rules: &RuleSet,
    files: Files<'_>,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<Action>, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let due: Option<Due> = sql(
        "SELECT retention_rule, retention_action, closed_at, retention_due_at FROM cases \
         WHERE id = $1 AND retention_due_at <= $2",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(&mut tx)
    .await?;
    let Some((rule, action, closed_at, due_at)) = due else {
        return Ok(None);
    };
    let action = match action.as_str() {
        "delete" => Action::Delete,
        _ => Action::Anonymise,
    };
    sql("UPDATE cases SET retention_due_at = NULL, retained_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(&mut tx)
        .await?;
    let (left, contacts_erased) =
        crate::privacy::retain_case(&mut tx, rules, id, action, now).await?;
    let case = rows::case_by_id(&mut tx, id).await?;
    let applied = Kind::RetentionApplied(kinds::RetentionApplied {
        rule,
        action: action.as_str().to_string(),
        closed_at,
        due_at,
        contacts_erased,
    });
    events::record(&mut tx, case.event_target(), now, ENGINE, applied).await?;
    tx.commit().await?;
    if files.remove
        && let Err(e) = left.remove(files.packs, files.mail)
    {
        // The rows are gone and committed; a file left behind is the operator's to remove.
        tracing::error!(case = %case.case_ref, error = %e, "retention: a file of the case could not be removed");
    }
    Ok(Some(action))
}

/// A case that cannot be retained loses its date after repeated failures: its data is kept
/// until the retention rules change or it is erased.
fn set_aside(id: i64) -> Aside {
    Aside {
        step: kinds::Step::Retention,
        kind: "case",
        id,
        consequence: "the case's retention date is cleared: its data is kept until the retention rules change or it is erased".to_string(),
        take_out: sql("UPDATE cases SET retention_due_at = NULL WHERE id = $1").bind(id),
        case_of: sql("SELECT id FROM cases WHERE id = $1").bind(id),
    }
}
