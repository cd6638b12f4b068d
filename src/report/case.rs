//! `show case`: a case with its stages, tasks, notes, attachments, housing options record and
//! events.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::format::{left, when};
use crate::db::rows::{self, CaseRow, StageRow, TaskRow};
use crate::db::{Db, sql};
use crate::engine::pack_files::{FileState, verify as verify_file};
use crate::events::{self, Event};
use crate::text::{terminal as t, terminal_json};

#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct Note {
    pub id: i64,
    pub author: String,
    pub body: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct Attachment {
    pub id: i64,
    pub name: String,
    pub media_type: String,
    pub uri: String,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    pub at: DateTime<Utc>,
    /// For a housing pack's files: whether the file still has the recorded SHA-256. A pack file
    /// that is not `intact` is reported and never served or sent.
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileState>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CaseReport {
    pub case: CaseRow,
    /// Housing options: the case's target path, answers and packs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub housing: Option<HousingReport>,
    pub stages: Vec<StageReport>,
    pub notes: Vec<Note>,
    pub attachments: Vec<Attachment>,
    /// Each `update_case`, with the facts' values before and after, and why.
    pub updates: Vec<super::CaseUpdate>,
    #[schemars(with = "Vec<crate::events::kinds::Record>")]
    pub events: Vec<Event>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct HousingReport {
    /// Working days from today to the case's target, while it has open tasks.
    pub days_remaining: Option<i64>,
    /// The tasks on the longest path, which set the target.
    pub target_path: Vec<String>,
    pub enquiry: Option<Enquiry>,
    pub packs: Vec<Pack>,
    /// The homelessness duties, referral and personalised housing plan on record.
    pub duties: crate::duties::Record,
}

#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct Enquiry {
    pub form_id: String,
    pub form_version: String,
    pub submissions: i64,
    #[schemars(with = "serde_json::Value")]
    pub answers: sqlx::types::Json<serde_json::Value>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct Pack {
    pub version: i64,
    #[schemars(with = "serde_json::Value")]
    pub statements: sqlx::types::Json<serde_json::Value>,
    pub html_attachment_id: i64,
    pub text_attachment_id: i64,
    pub sent_to_applicant: bool,
    pub rendered_at: DateTime<Utc>,
    /// Every statement the workflow offered, whether it was chosen and why (the explanation
    /// quotes the answers it read): `{"statement", "section", "chosen", "why"}`, with `error`.
    #[schemars(with = "Vec<crate::advice::Choice>")]
    pub advice: sqlx::types::Json<serde_json::Value>,
}

async fn housing(db: &Db, case: &CaseRow) -> Result<Option<HousingReport>, sqlx::Error> {
    if case.kind != "housing_options" {
        return Ok(None);
    }
    let path: Option<(Option<sqlx::types::Json<Vec<String>>>,)> =
        sql("SELECT target_path FROM cases WHERE id = $1")
            .bind(case.id)
            .fetch_optional(db)
            .await?;
    // The worklist view counts the working days left, as it does for each open task.
    let days_remaining: Option<(Option<i64>,)> =
        sql("SELECT case_days_remaining FROM worklist_tasks WHERE case_ref = $1 LIMIT 1")
            .bind(&case.case_ref)
            .fetch_optional(db)
            .await?;
    let days_remaining = days_remaining.and_then(|(d,)| d);
    let enquiry = sql("SELECT form_id, form_version, submissions, answers, updated_at FROM enquiries WHERE case_id = $1")
        .bind(case.id)
        .fetch_optional(db)
        .await?;
    let packs = sql("SELECT version, statements, html_attachment_id, text_attachment_id, sent_to_applicant, rendered_at, \
                     advice FROM packs WHERE case_id = $1 ORDER BY version")
        .bind(case.id)
        .fetch_all(db)
        .await?;
    Ok(Some(HousingReport {
        days_remaining,
        target_path: path.and_then(|(p,)| p).map(|p| p.0).unwrap_or_default(),
        enquiry,
        packs,
        duties: crate::duties::read(db, case.id).await?,
    }))
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct StageReport {
    #[serde(flatten)]
    pub stage: StageRow,
    /// Working days from today to the stage's target, while it is open.
    pub days_remaining: Option<i64>,
    pub tasks: Vec<TaskReport>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TaskReport {
    #[serde(flatten)]
    pub row: TaskRow,
    /// Working days from today to the task's target, while it is open.
    pub days_remaining: Option<i64>,
    /// While the task is on hold: whether its clock keeps running (a clock the law does not
    /// pause: its target stays) or stopped (its dates move on when it is released). Null when
    /// the task is not on hold.
    pub hold_clock: Option<HoldClock>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldClock {
    Running,
    Stopped,
}

/// What the last `task_held` event of each (stage, task) said of its clock.
fn hold_clocks(events: &[Event]) -> BTreeMap<(String, String), HoldClock> {
    let mut clocks = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == "task_held") {
        let text = |k: &str| e.data.0[k].as_str().unwrap_or_default().to_string();
        let running = e.data.0["clock_keeps_running"].as_bool() == Some(true);
        clocks.insert(
            (text("stage"), text("task")),
            if running {
                HoldClock::Running
            } else {
                HoldClock::Stopped
            },
        );
    }
    clocks
}

impl std::ops::Deref for TaskReport {
    type Target = TaskRow;
    fn deref(&self) -> &TaskRow {
        &self.row
    }
}

pub async fn case(db: &Db, case_ref: &str) -> Result<Option<CaseReport>, sqlx::Error> {
    let Some(case) = rows::case_by_ref(db, case_ref).await? else {
        return Ok(None);
    };
    let task_left: BTreeMap<i64, Option<i64>> =
        sql("SELECT task_id, days_remaining FROM worklist_tasks WHERE case_ref = $1")
            .bind(case_ref)
            .fetch_all::<(i64, Option<i64>)>(db)
            .await?
            .into_iter()
            .collect();
    let stage_left: BTreeMap<i64, Option<i64>> =
        sql("SELECT stage_id, days_remaining FROM worklist_stages WHERE case_ref = $1")
            .bind(case_ref)
            .fetch_all::<(i64, Option<i64>)>(db)
            .await?
            .into_iter()
            .collect();
    let events = events::for_case(db, case.id).await?;
    let clocks = hold_clocks(&events);
    let mut tasks = rows::tasks_of_case(db, case.id).await?;
    let stages = rows::stages_of(db, case.id)
        .await?
        .into_iter()
        .map(|stage| {
            let (mine, rest): (Vec<_>, Vec<_>) =
                tasks.drain(..).partition(|t| t.stage_id == stage.id);
            tasks = rest;
            let tasks = mine
                .into_iter()
                .map(|row| TaskReport {
                    days_remaining: task_left.get(&row.id).copied().flatten(),
                    hold_clock: (row.status == crate::states::TaskStatus::OnHold)
                        .then(|| {
                            clocks
                                .get(&(stage.stage.clone(), row.task.clone()))
                                .copied()
                        })
                        .flatten(),
                    row,
                })
                .collect();
            StageReport {
                days_remaining: stage_left.get(&stage.id).copied().flatten(),
                stage,
                tasks,
            }
        })
        .collect();
    let notes = sql("SELECT id, author, body, at FROM notes WHERE case_id = $1 ORDER BY id")
        .bind(case.id)
        .fetch_all(db)
        .await?;
    let mut attachments: Vec<Attachment> = sql("SELECT id, name, media_type, uri, size, sha256, at FROM attachments WHERE case_id = $1 ORDER BY id")
        .bind(case.id)
        .fetch_all(db)
        .await?;
    let housing = housing(db, &case).await?;
    let updates = super::amendments(db, case.id).await?;
    // Pack files are casewarden's own: each is checked against the SHA-256 it was made with.
    let pack_files: Vec<i64> = housing
        .iter()
        .flat_map(|h| &h.packs)
        .flat_map(|p| [p.html_attachment_id, p.text_attachment_id])
        .collect();
    for a in attachments
        .iter_mut()
        .filter(|a| pack_files.contains(&a.id))
    {
        if let Some(sha256) = &a.sha256 {
            a.file = Some(verify_file(&a.uri, a.size, sha256));
        }
    }
    Ok(Some(CaseReport {
        housing,
        case,
        stages,
        notes,
        attachments,
        updates,
        events,
    }))
}

impl CaseReport {
    pub fn to_text(&self) -> String {
        let c = &self.case;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Case {}  ({} {} {}, definition {} @{})",
            t(&c.case_ref),
            t(&c.kind),
            t(c.scheme.as_deref().or(c.workflow.as_deref()).unwrap_or("-")),
            t(&c.country),
            t(&c.definition_id),
            t(&c.definition_version)
        );
        let _ = writeln!(
            out,
            "  status:     {}{}",
            t(c.status.as_str()),
            c.outcome
                .as_deref()
                .map(|o| format!(" ({})", t(o)))
                .unwrap_or_default()
        );
        let owner = match (&c.owner, c.allocation.as_str()) {
            (Some(o), _) => t(o).into_owned(),
            (None, "needed") => format!(
                "unallocated, on the {} worklist",
                t(c.queue_role.as_deref().unwrap_or("-"))
            ),
            (None, _) => "awaiting allocation".to_string(),
        };
        let _ = writeln!(out, "  owner:      {owner}");
        let _ = writeln!(out, "  received:   {}", when(Some(c.received_at)));
        if let (Some(p), Some(t_)) = (&c.property_ref, &c.tenure) {
            let _ = writeln!(out, "  property:   {} ({})", t(p), t(t_));
        }
        if let Some(a) = c.applicant_contact.as_ref().or(c.applicant_group.as_ref()) {
            let _ = writeln!(out, "  applicant:  {}", t(a));
        }
        if c.attributes.0.as_object().is_some_and(|a| !a.is_empty()) {
            let _ = writeln!(
                out,
                "  attributes: {}",
                terminal_json(&c.attributes.0.to_string())
            );
        }
        // The facts were amended (`update_case`): how often, and the last time and why.
        if let Some(last) = self.updates.last() {
            let _ = writeln!(
                out,
                "  amended:    {} time(s), last {} by {}: {}",
                self.updates.len(),
                when(Some(last.at)),
                t(&last.actor),
                t(&last.reason)
            );
        }
        if let Some(h) = &self.housing {
            let _ = writeln!(
                out,
                "  target:     {}{}  (longest path: {})",
                when(c.target_at),
                left(h.days_remaining),
                if h.target_path.is_empty() {
                    "-".to_string()
                } else {
                    t(&h.target_path.join(" → ")).into_owned()
                }
            );
            match &h.enquiry {
                Some(e) => {
                    let _ = writeln!(
                        out,
                        "\nEnquiry (form {} @{}, {} submission(s), last {})",
                        t(&e.form_id),
                        t(&e.form_version),
                        e.submissions,
                        when(Some(e.updated_at))
                    );
                    for (k, v) in e.answers.0.as_object().into_iter().flatten() {
                        let _ = writeln!(out, "  {:<32} {}", t(k), terminal_json(&v.to_string()));
                    }
                }
                None => {
                    let _ = writeln!(out, "\nEnquiry: no answers submitted yet");
                }
            }
            super::duties::write_text(&mut out, &c.country, &h.duties);
            if !h.packs.is_empty() {
                let _ = writeln!(out, "\nHousing packs");
                for p in &h.packs {
                    let _ = writeln!(
                        out,
                        "  v{} {}  {} statement(s)  attachments #{} (HTML) #{} (text){}",
                        p.version,
                        when(Some(p.rendered_at)),
                        p.statements.0.as_array().map_or(0, Vec::len),
                        p.html_attachment_id,
                        p.text_attachment_id,
                        if p.sent_to_applicant {
                            "  sent to the applicant"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
        let _ = writeln!(out, "\nStages");
        for s in &self.stages {
            let st = &s.stage;
            let _ = writeln!(
                out,
                "  {} [{}] #{} {}  entered {}  completed {}  owner {}  line manager {}",
                t(&st.stage),
                t(&st.master_stage),
                st.entry,
                t(st.status.as_str()),
                when(Some(st.entered_at)),
                when(st.completed_at),
                t(st.owner.as_deref().unwrap_or("-")),
                t(st.line_manager.as_deref().unwrap_or("-"))
            );
            if st.target_at.is_some() {
                let _ = writeln!(
                    out,
                    "      sla {}  amber {}  target {}{}",
                    t(st.sla_state.as_str()),
                    when(st.amber_at),
                    when(st.target_at),
                    left(s.days_remaining)
                );
            }
            for task in &s.tasks {
                let _ = write!(
                    out,
                    "    - {:<32} {:<9} {}{}  activated {}  done {}",
                    t(&task.task),
                    t(task.status.as_str()),
                    if task.mandatory {
                        "mandatory"
                    } else {
                        "optional "
                    },
                    if task.activation == "manual" {
                        " manual"
                    } else {
                        "       "
                    },
                    when(task.activated_at),
                    when(task.completed_at)
                );
                if let Some(by) = &task.completed_by {
                    let _ = write!(out, " by {}", t(by));
                }
                if let Some(u) = task.hold_until {
                    let _ = write!(out, "  held until {}", when(Some(u)));
                    if task.hold_clock == Some(HoldClock::Running) {
                        let _ = write!(out, " (clock keeps running: the law does not pause it)");
                    }
                }
                if task.target_at.is_some() {
                    let _ = write!(
                        out,
                        "  sla {} amber {} target {}{}",
                        t(task.sla_state.as_str()),
                        when(task.amber_at),
                        when(task.target_at),
                        left(task.days_remaining)
                    );
                }
                let _ = writeln!(out);
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\nNotes");
            for n in &self.notes {
                let _ = writeln!(
                    out,
                    "  {} {}: {}",
                    when(Some(n.at)),
                    t(&n.author),
                    t(&n.body)
                );
            }
        }
        if !self.attachments.is_empty() {
            let _ = writeln!(out, "\nAttachments");
            for a in &self.attachments {
                let _ = writeln!(
                    out,
                    "  #{} {} {} ({}) {}{}",
                    a.id,
                    when(Some(a.at)),
                    t(&a.name),
                    t(&a.media_type),
                    t(&a.uri),
                    a.sha256
                        .as_deref()
                        .map(|h| format!("  sha256 {}", t(h)))
                        .unwrap_or_default()
                );
                if let Some(state) = a.file.filter(|s| *s != FileState::Intact) {
                    let _ = writeln!(out, "      file {}", state.describe());
                }
            }
        }
        let _ = writeln!(out, "\nEvents");
        for e in &self.events {
            let _ = writeln!(
                out,
                "  #{:<5} {} {:<18} {:<12} {}",
                e.id,
                when(Some(e.at)),
                t(&e.kind),
                t(&e.actor),
                terminal_json(&e.data.0.to_string())
            );
        }
        out
    }
}
