//! How the demo tells what happened: each event as a sentence a housing officer would say, day
//! by day, and the summary of every case at the end.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;

use crate::db::{Db, sql};
use crate::engine::Engine;
use crate::events::{self, Event};
use crate::output::outln;

#[derive(Default)]
pub(super) struct Story {
    last_event: i64,
}

impl Story {
    pub(super) async fn tell(&mut self, db: &Db, day: NaiveDate) -> anyhow::Result<()> {
        let new = events::since(db, self.last_event, 100_000).await?;
        let Some(last) = new.last() else {
            return Ok(());
        };
        self.last_event = last.id;
        let mut lines = Vec::new();
        let mut completed: BTreeMap<String, usize> = BTreeMap::new();
        for e in &new {
            match sentence(e) {
                Some(line) => lines.push(line),
                None if e.kind == "task_completed" => {
                    *completed.entry(e.actor.clone()).or_default() += 1
                }
                None => {}
            }
        }
        if lines.is_empty() && completed.is_empty() {
            return Ok(());
        }
        outln!("{}", day.format("%a %d %b %Y"))?;
        for l in lines {
            outln!("  {l}")?;
        }
        if !completed.is_empty() {
            let who: Vec<String> = completed
                .iter()
                .map(|(by, n)| format!("{by} {n}"))
                .collect();
            outln!("  tasks completed: {}", who.join(", "))?;
        }
        Ok(())
    }
}

fn sentence(e: &Event) -> Option<String> {
    let d = &e.data.0;
    let case = e.case_ref.as_deref().unwrap_or("-");
    let s = |k: &str| d[k].as_str().unwrap_or("-").to_string();
    Some(match e.kind.as_str() {
        "case_created" if d["kind"] == "housing_options" => format!(
            "{case}: housing options enquiry opened under {} (received {})",
            s("definition"),
            s("received_at")
        ),
        "case_created" => format!(
            "{case}: claim registered under {} (received {})",
            s("definition"),
            s("received_at")
        ),
        "command_rejected" => format!(
            "{} refused: {}",
            d["type"].as_str().unwrap_or("command"),
            s("reason")
        ),
        "allocated" => format!(
            "{case}: allocated to {} by {} ({})",
            s("owner"),
            s("rule"),
            s("reason")
        ),
        "allocation_needed" => format!(
            "{case}: needs allocating by hand, on the {} list ({})",
            s("queue_role"),
            s("reason")
        ),
        "stage_entered" if d["owner"].is_null() => format!("{case}: entered {}", s("stage")),
        "stage_entered" => format!(
            "{case}: entered {} (owner {}, line manager {})",
            s("stage"),
            s("owner"),
            s("line_manager")
        ),
        "advance_needed" => format!(
            "{case}: waits for the next stage to be chosen from {}",
            d["choices"]
        ),
        "stage_diverted" => format!("{case}: {} diverted to {}", s("from"), s("to")),
        // The reasons and texts people typed are kept in tables, not in the log the story reads.
        "task_held" => format!("{case}: {} on hold until {}", s("task"), s("until")),
        "task_released" => format!("{case}: {} released ({})", s("task"), s("reason")),
        "owner_changed" => format!("{case}: reassigned from {} to {}", s("from"), s("to")),
        "note_added" => format!("{case}: note #{} added by {}", d["note_id"], e.actor),
        "file_attached" => format!(
            "{case}: file #{} attached ({})",
            d["attachment_id"],
            s("media_type")
        ),
        "case_closed" => format!("{case}: closed ({})", s("outcome")),
        "enquiry_submitted" => format!(
            "{case}: enquiry answers recorded on form {} (submission {}, {} answer(s) changed)",
            s("form"),
            d["submission"],
            d["changed"].as_array().map_or(0, Vec::len)
        ),
        "pack_rendered" => format!(
            "{case}: personalised housing pack v{} made from {} advice statement(s){}",
            d["version"],
            d["statements"].as_array().map_or(0, Vec::len),
            match d["sent_to_applicant"].as_u64() {
                Some(n) if n > 0 => ", sent to the applicant".to_string(),
                _ => format!(", not e-mailed: {}", s("not_sent")),
            }
        ),
        "pack_waiting" => format!("{case}: housing pack waits for the enquiry answers"),
        "case_completed" => format!("{case}: COMPLETED"),
        "rule_error" => format!("{case}: rule error in {}: {}", s("rule"), s("message")),
        "sla_exceeded" => format!(
            "{case}: {} {} is past its target ({}); owner and line manager notified",
            s("item"),
            s("key"),
            s("target_at")
        ),
        "sla_follow_on" => format!(
            "{case}: {} {} still overdue: follow-on {} to the line manager and team",
            s("item"),
            s("key"),
            d["repetition"]
        ),
        _ => return None,
    })
}

#[derive(sqlx::FromRow)]
struct CaseLine {
    case_ref: String,
    scheme: Option<String>,
    country: String,
    status: String,
    owner: Option<String>,
    open_stage: Option<String>,
}

pub(super) async fn summary(engine: &Engine, dir: &Path, weeks: i64) -> anyhow::Result<()> {
    let cases: Vec<CaseLine> = sql(
        "SELECT c.case_ref, COALESCE(c.scheme, c.workflow) AS scheme, c.country, c.status, c.owner, \
           (SELECT s.stage FROM stages s WHERE s.case_id = c.id AND s.status = 'open' ORDER BY s.id DESC LIMIT 1) AS open_stage \
         FROM cases c ORDER BY c.case_ref",
    )
    .fetch_all(&engine.db)
    .await?;
    outln!("\nAfter {weeks} weeks")?;
    outln!(
        "  case       scheme/workflow   country           status            owner    open stage"
    )?;
    for c in cases {
        outln!(
            "  {:<10} {:<17} {:<17} {:<17} {:<8} {}",
            c.case_ref,
            c.scheme.unwrap_or_default(),
            c.country,
            c.status,
            c.owner.unwrap_or_else(|| "-".into()),
            c.open_stage.unwrap_or_else(|| "-".into())
        )?;
    }
    let mail = dir.join("mail");
    let written = std::fs::read_dir(&mail).map(|d| d.count()).unwrap_or(0);
    outln!(
        "\n{written} notifications were written as .eml files to {}",
        mail.display()
    )?;
    let packs = dir.join("packs");
    let made = std::fs::read_dir(&packs)
        .map(|d| {
            d.flatten()
                .map(|c| std::fs::read_dir(c.path()).map(|f| f.count()).unwrap_or(0))
                .sum::<usize>()
        })
        .unwrap_or(0);
    outln!(
        "{made} housing pack files were written under {}",
        packs.display()
    )?;
    let url = format!("sqlite://{}", dir.join("casewarden.db").display());
    outln!("\nExplore it:")?;
    outln!("  casewarden --database {url} show case RTB-1002")?;
    outln!("  casewarden --database {url} inbox --rejected")?;
    outln!("  casewarden --database {url} worklist --user ben")?;
    outln!("  casewarden --database {url} show case HO-7001")?;
    outln!("  casewarden --database {url} advice HO-7001")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::sentence;
    use crate::events::Event;
    use serde_json::json;

    fn event(kind: &str, data: serde_json::Value) -> Event {
        Event {
            id: 1,
            case_ref: Some("RTB-1".into()),
            at: "2026-01-05T09:00:00Z".parse().unwrap(),
            kind: kind.into(),
            actor: "aisha".into(),
            data: sqlx::types::Json(data),
        }
    }

    #[test]
    fn the_story_tells_events_from_the_fields_they_carry() {
        let told = |kind: &str, data| sentence(&event(kind, data)).unwrap();
        assert_eq!(
            told("note_added", json!({"note_id": 7})),
            "RTB-1: note #7 added by aisha"
        );
        assert_eq!(
            told(
                "file_attached",
                json!({"attachment_id": 3, "media_type": "application/pdf", "size": 1, "sha256": null})
            ),
            "RTB-1: file #3 attached (application/pdf)"
        );
        assert_eq!(
            told(
                "enquiry_submitted",
                json!({"form": "f", "form_version": "1", "submission": 2, "changed": ["a", "b"]})
            ),
            "RTB-1: enquiry answers recorded on form f (submission 2, 2 answer(s) changed)"
        );
        assert_eq!(
            told(
                "task_held",
                json!({"stage": "s", "task": "t", "until": "2026-01-09T09:00:00Z", "clock_keeps_running": false})
            ),
            "RTB-1: t on hold until 2026-01-09T09:00:00Z"
        );
    }
}
