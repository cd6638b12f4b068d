//! The housing options pack step of the pass: for each pack request that is due, choose the
//! advice statements, render them, write the files, attach them with their checksums, complete
//! the pack task and, where the workflow says so, send the pack to the applicant. The commands
//! that feed it are in `apply/housing_options.rs`, the request in `pack_request.rs`, the files in
//! `pack_files.rs`.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::context::Ctx;
use super::error::StepError;
use super::pack_facts;
use super::pack_files::{PackSettings, Written, write_free};
use super::progress;
use crate::advice::{self, Choice, pack};
use crate::db::rows::{self, CaseRow, TaskRow};
use crate::db::{Db, Tx, sql};
use crate::definitions::Definition;
use crate::events::kinds::{self, Kind};
use crate::events::{self, ENGINE};
use crate::rules::RuleSet;

/// Pack requests whose time has come, through `pack_requests_due`.
pub const DUE_PACKS: &str =
    "SELECT id FROM pack_requests WHERE due_at <= $1 ORDER BY due_at, id LIMIT $2";

/// What one pass's pack step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub made: u64,
    pub waiting: u64,
    pub failed: u64,
}

/// Makes every pack that is due, one transaction each.
pub async fn run_once(
    db: &Db,
    rules: &Arc<RuleSet>,
    settings: &PackSettings,
    organisation: &str,
    now: DateTime<Utc>,
    batch: i64,
    budget: &super::budget::Budget,
) -> Result<Outcome, StepError> {
    let mut outcome = Outcome::default();
    loop {
        let due: Vec<(i64,)> = sql(DUE_PACKS).bind(now).bind(batch).fetch_all(db).await?;
        if due.is_empty() || budget.spent() {
            return Ok(outcome);
        }
        for (id,) in due {
            let mut tx = db.begin_write().await?;
            match make(&mut tx, rules, settings, organisation, id, now).await? {
                Made::Pack => outcome.made += 1,
                Made::Waiting => outcome.waiting += 1,
                Made::Failed => outcome.failed += 1,
                Made::Nothing => {}
            }
            tx.commit().await?;
        }
    }
}

enum Made {
    Pack,
    Waiting,
    Failed,
    Nothing,
}

#[derive(sqlx::FromRow)]
struct Request {
    case_id: i64,
    task_id: Option<i64>,
    requested_by: String,
    attempts: i64,
}

async fn make(
    tx: &mut Tx,
    rules: &Arc<RuleSet>,
    settings: &PackSettings,
    organisation: &str,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Made, sqlx::Error> {
    let Some(req): Option<Request> = sql(
        "SELECT case_id, task_id, requested_by, attempts FROM pack_requests WHERE id = $1 AND due_at <= $2",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(Made::Nothing);
    };
    let case = rows::case_by_id(&mut *tx, req.case_id).await?;
    let task = match req.task_id {
        Some(t) => Some(rows::task_by_id(&mut *tx, t).await?),
        None => None,
    };
    // The pack task was finished or cancelled by other means, or the case closed: nothing to do.
    if !case.is_open() || task.as_ref().is_some_and(|t| !t.is_open()) {
        forget(tx, id).await?;
        return Ok(Made::Nothing);
    }
    if let Some(t) = task
        .as_ref()
        .filter(|t| t.status == crate::states::TaskStatus::OnHold)
    {
        sql("UPDATE pack_requests SET due_at = $1 WHERE id = $2")
            .bind(t.hold_until)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        return Ok(Made::Waiting);
    }
    let Some(def) = rules.definition(&case.definition_id).cloned() else {
        return fail(
            tx,
            &case,
            id,
            req.attempts,
            &format!("definition {} is not in the rule set", case.definition_id),
            now,
        )
        .await;
    };
    let answers: Option<(sqlx::types::Json<Value>,)> =
        sql("SELECT answers FROM enquiries WHERE case_id = $1")
            .bind(case.id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((answers,)) = answers else {
        sql("UPDATE pack_requests SET due_at = NULL WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let waiting = Kind::PackWaiting(kinds::PackWaiting {
            reason: "no enquiry answers yet; the pack is made in the pass that applies the first submit_enquiry".into(),
        });
        events::record(tx, case.event_target(), now, ENGINE, waiting).await?;
        return Ok(Made::Waiting);
    };
    let answers = answers.0.as_object().cloned().unwrap_or_default();
    let ready = Ready {
        id,
        req,
        case,
        task,
        def,
        answers,
    };
    build(tx, rules, settings, organisation, ready, now).await
}

/// A pack request with everything its pack needs.
struct Ready {
    id: i64,
    req: Request,
    case: CaseRow,
    task: Option<TaskRow>,
    def: Arc<Definition>,
    answers: Map<String, Value>,
}

/// Chooses, renders, writes, attaches and (where the workflow says so) sends the pack, then
/// completes the pack task.
async fn build(
    tx: &mut Tx,
    rules: &Arc<RuleSet>,
    settings: &PackSettings,
    organisation: &str,
    ready: Ready,
    now: DateTime<Utc>,
) -> Result<Made, sqlx::Error> {
    let Ready {
        id,
        req,
        case,
        task,
        def,
        answers,
    } = ready;
    let choices = choose(rules, &case, &answers, now).await;
    if let Some(bad) = choices.iter().find(|c| c.error.is_some()) {
        let message = format!("advice statement {}: {}", bad.statement, bad.why);
        return fail(tx, &case, id, req.attempts, &message, now).await;
    }
    let (version, facts) = numbered_facts(tx, rules, &def, &case, &choices, now).await?;
    let document = match render(&rules.templates, &facts, organisation) {
        Ok(d) => d,
        Err(e) => return fail(tx, &case, id, req.attempts, &format!("rendering: {e}"), now).await,
    };
    let dir = advice::case_dir(&settings.dir, case.id);
    let stem = format!("case-{}-housing-pack-v{version}", case.id);
    let files = match write_free(&dir, &stem, &document, settings.dry_run) {
        Ok(files) => files,
        Err(message) => return fail(tx, &case, id, req.attempts, &message, now).await,
    };
    let (attachment_ids, described) = attach(tx, &case, &files, now).await?;
    let (send, sent_to, not_sent) =
        send_to_applicant(tx, &def, &case, &answers, &facts, now).await?;
    let chosen: Vec<&str> = choices
        .iter()
        .filter(|c| c.chosen)
        .map(|c| c.statement.as_str())
        .collect();
    sql("INSERT INTO packs (case_id, version, task_id, statements, html_attachment_id, text_attachment_id, sent_to_applicant, rendered_at, advice) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(case.id)
        .bind(version)
        .bind(req.task_id)
        .bind(json!(chosen))
        .bind(attachment_ids[0])
        .bind(attachment_ids[1])
        .bind(send)
        .bind(now)
        // Why each statement was chosen quotes the answers: kept here, not in the log.
        .bind(json!(choices))
        .execute(&mut *tx)
        .await?;
    let rendered = Kind::PackRendered(kinds::PackRendered {
        version,
        requested_by: req.requested_by.clone(),
        statements: chosen.iter().map(|s| s.to_string()).collect(),
        advice: choices
            .iter()
            .map(|c| json!({"statement": c.statement, "section": c.section, "chosen": c.chosen, "failed": c.error.is_some()}))
            .collect(),
        files: described,
        sent_to_applicant: sent_to as i64,
        not_sent,
    });
    events::record(tx, case.event_target(), now, ENGINE, rendered).await?;
    if let Some(task) = task {
        complete_pack_task(tx, rules, &def, &case, &task, version, now).await?;
    }
    forget(tx, id).await?;
    super::case_target::refresh(tx, rules, &case, "the housing pack was made", now).await?;
    Ok(Made::Pack)
}

/// The next version number of the case's pack, and the facts its templates see.
async fn numbered_facts(
    tx: &mut Tx,
    rules: &RuleSet,
    def: &Definition,
    case: &CaseRow,
    choices: &[Choice],
    now: DateTime<Utc>,
) -> Result<(i64, Value), sqlx::Error> {
    let version: i64 = sql("SELECT COALESCE(MAX(version), 0) + 1 FROM packs WHERE case_id = $1")
        .bind(case.id)
        .scalar(&mut *tx)
        .await?;
    let facts = pack::facts(
        &rules.advice,
        choices,
        {
            // The pack's templates name the advice stream as `case.workflow_name`.
            let mut facts = case.facts(Some(def)).to_value();
            facts["workflow_name"] = json!(def.name);
            facts
        },
        pack_facts::applicant(tx, case).await?,
        pack_facts::officer(tx, case).await?,
        version,
        now,
    );
    let mut facts = facts;
    // The applicant's own plan and duty dates: the pack is the written plan.
    facts["plan"] = pack_facts::plan(tx, case).await?;
    Ok((version, facts))
}

/// Records the pack's files as attachments of the case, each with its event.
async fn attach(
    tx: &mut Tx,
    case: &CaseRow,
    files: &Written<'_>,
    now: DateTime<Utc>,
) -> Result<(Vec<i64>, Vec<Value>), sqlx::Error> {
    let mut attachment_ids = Vec::new();
    let mut described = Vec::new();
    for (path, uri, media_type, body) in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let sha256 = hex::encode(Sha256::digest(body.as_bytes()));
        let size = body.len() as i64;
        let attachment: i64 = sql("INSERT INTO attachments (case_id, name, media_type, uri, size, sha256, at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id")
            .bind(case.id)
            .bind(&name)
            .bind(*media_type)
            .bind(uri)
            .bind(size)
            .bind(&sha256)
            .bind(now)
            .scalar(&mut *tx)
            .await?;
        let attached = kinds::FileAttached {
            attachment_id: attachment,
            media_type: media_type.to_string(),
            size: Some(size),
            sha256: Some(sha256),
        };
        described.push(json!(attached));
        events::record(
            tx,
            case.event_target(),
            now,
            ENGINE,
            Kind::FileAttached(attached),
        )
        .await?;
        attachment_ids.push(attachment);
    }
    Ok((attachment_ids, described))
}

/// Sends the pack to the applicant when the workflow does and the applicant agreed to e-mail:
/// whether it is sent, to how many, and why not when it is not.
async fn send_to_applicant(
    tx: &mut Tx,
    def: &Definition,
    case: &CaseRow,
    answers: &Map<String, Value>,
    facts: &Value,
    now: DateTime<Utc>,
) -> Result<(bool, u64, Option<String>), sqlx::Error> {
    let (send, not_sent) = match def.pack.as_ref() {
        Some(p) if p.send_to_applicant => match &p.email_consent {
            Some((q, _)) if answers.get(q) != Some(&Value::Bool(true)) => (
                false,
                Some(format!(
                    "the applicant has not agreed to e-mail ({q} is not yes)"
                )),
            ),
            _ => (true, None),
        },
        _ => (false, Some("the workflow does not send packs".to_string())),
    };
    let mut sent_to = 0;
    if send {
        let people = super::recipients::People {
            applicant: case.applicant_contact.clone(),
            applicant_group: case.applicant_group.clone(),
            ..Default::default()
        };
        let to = super::recipients::resolve(
            tx,
            &[crate::rules::escalation::Recipient::Applicant],
            &people,
        )
        .await?;
        sent_to =
            crate::outbox::enqueue(tx, case.id, None, pack::NOTIFICATION, &to, facts, now).await?;
    }
    Ok((send, sent_to, not_sent))
}

/// Completes the task that asked for the pack, naming the pack's version as its outcome.
async fn complete_pack_task(
    tx: &mut Tx,
    rules: &RuleSet,
    def: &Definition,
    case: &CaseRow,
    task: &TaskRow,
    version: i64,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let stage_row = rows::open_stage(&mut *tx, case.id)
        .await?
        .filter(|s| s.id == task.stage_id)
        .ok_or(sqlx::Error::RowNotFound)?;
    let ctx = Ctx::new(rules, def, now, ENGINE);
    let outcome = format!("housing pack v{version}");
    let tasks = rows::tasks_of_stage(&mut *tx, stage_row.id).await?;
    progress::complete_task(
        tx,
        (def, case),
        (&stage_row, tasks),
        task,
        (now, Some(&outcome)),
        ctx,
    )
    .await?;
    Ok(())
}

/// The statements for a case and why, decided off the async threads.
pub async fn choose(
    rules: &Arc<RuleSet>,
    case: &CaseRow,
    answers: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Vec<Choice> {
    let rules = rules.clone();
    let workflow = case.workflow.clone().unwrap_or_default();
    let facts = case
        .facts(rules.definition(&case.definition_id).map(|d| &**d))
        .to_value();
    let answers = answers.clone();
    let today = crate::clock::london_date(now);
    tokio::task::spawn_blocking(move || {
        rules
            .advice
            .select(&rules.sandbox, &workflow, &answers, &facts, today)
    })
    .await
    .unwrap_or_else(|e| {
        vec![Choice {
            statement: "-".into(),
            section: "-".into(),
            chosen: false,
            why: format!("the advice rules panicked: {e}"),
            error: Some(e.to_string()),
        }]
    })
}

/// Records a failed attempt and when the next is due: 15 minutes, doubling, at most a day.
async fn fail(
    tx: &mut Tx,
    case: &CaseRow,
    id: i64,
    attempts: i64,
    message: &str,
    now: DateTime<Utc>,
) -> Result<Made, sqlx::Error> {
    let wait = Duration::minutes(15 * (1i64 << attempts.clamp(0, 7))).min(Duration::days(1));
    let retry = now + wait;
    sql("UPDATE pack_requests SET attempts = attempts + 1, last_error = $1, due_at = $2 WHERE id = $3")
        .bind(message)
        .bind(retry)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let failed = Kind::PackFailed(kinds::PackFailed {
        error: message.into(),
        attempt: attempts + 1,
        retry_at: retry,
    });
    events::record(tx, case.event_target(), now, ENGINE, failed).await?;
    tracing::warn!(case_ref = %case.case_ref, retry_at = %retry, "housing pack failed: {message}");
    Ok(Made::Failed)
}

async fn forget(tx: &mut Tx, id: i64) -> Result<(), sqlx::Error> {
    sql("DELETE FROM pack_requests WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Renders the pack's HTML and text.
fn render(
    renderer: &crate::mail::Renderer,
    facts: &Value,
    organisation: &str,
) -> Result<pack::Document, String> {
    Ok(pack::Document {
        html: renderer.render_document(pack::HTML, facts, organisation)?,
        text: renderer.render_document(pack::TEXT, facts, organisation)?,
    })
}
