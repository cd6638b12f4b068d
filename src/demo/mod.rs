//! `casewarden demo`: a fresh SQLite database, a small home ownership team, a dozen claims
//! across schemes and nations, a housing options team with two homelessness enquiries, and twelve
//! simulated weeks of work driven through the real inbox and the real engine passes. It prints what happened, day by day, as a housing officer would
//! tell it.

use crate::output::outln;
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde_json::{Value, json};

use crate::clock;
use crate::db::{Db, sql};
use crate::engine::ingest;
use crate::events::{self};
use crate::settings::Settings;
use crate::startup;

mod story;

use story::{Story, summary};

const START: (i32, u32, u32) = (2026, 1, 5);
const WEEKS: i64 = 12;
/// Tasks each officer finishes on a working day.
const TASKS_PER_DAY: usize = 3;

pub async fn run(settings: &Settings, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = dir.join("casewarden.db");
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut p = file.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    let mut settings = settings.clone();
    settings.database.url =
        crate::settings::DatabaseUrl::new(format!("sqlite://{}", file.display()));
    // Mail goes to files in the demo directory, whatever the configuration says.
    let mail_dir = dir.join("mail");
    let _ = std::fs::remove_dir_all(&mail_dir);
    settings.mail.transport = crate::mail::settings::TransportKind::File;
    settings.mail.dir = mail_dir;
    // Housing packs too.
    let packs_dir = dir.join("packs");
    let _ = std::fs::remove_dir_all(&packs_dir);
    settings.packs.dir = packs_dir;
    let app = startup::build(settings, true).await?;
    let engine = &app.engine;
    outln!(
        "casewarden demo: a database at {}, rules from {}\n",
        file.display(),
        app.settings.rules.dir.display()
    )?;

    let start = NaiveDate::from_ymd_opt(START.0, START.1, START.2).expect("valid start date");
    submit(&engine.db, &organisation()).await?;
    submit(&engine.db, &claims()).await?;
    let mut story = Story::default();
    for offset in 0..WEEKS * 7 {
        let day = start + Duration::days(offset);
        let working = !matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        if working {
            let script = scripted(offset);
            let busy: Vec<&str> = script
                .iter()
                .filter_map(|c| c["case_ref"].as_str())
                .collect();
            let work = if offset > 0 {
                officers_work(&engine.db, &busy).await?
            } else {
                Vec::new()
            };
            submit(&engine.db, &script).await?;
            submit(&engine.db, &work).await?;
        }
        engine.run_pass(clock::start_of_working_day(day)).await?;
        if working {
            submit(&engine.db, &choices(&engine.db).await?).await?;
            engine
                .run_pass(clock::start_of_working_day(day) + Duration::hours(8))
                .await?;
        }
        story.tell(&engine.db, day).await?;
    }
    summary(engine, dir, WEEKS).await
}

async fn submit(db: &Db, commands: &[Value]) -> anyhow::Result<()> {
    let lines: Vec<String> = commands.iter().map(Value::to_string).collect();
    ingest::submit(db, &lines.join("\n"), crate::commands::MAX_COMMAND_BYTES).await?;
    Ok(())
}

fn organisation() -> Vec<Value> {
    let mut c = vec![
        json!({"type": "upsert_role", "ref": "home_ownership", "name": "Home ownership team"}),
        json!({"type": "upsert_role", "ref": "legal", "name": "Legal services"}),
        json!({"type": "upsert_role", "ref": "patch_north", "name": "North patch"}),
        json!({"type": "upsert_role", "ref": "patch_south", "name": "South patch"}),
        json!({"type": "upsert_role", "ref": "managers", "name": "Team managers"}),
        json!({"type": "upsert_role", "ref": "allocation_queue", "name": "Allocation queue"}),
        json!({"type": "upsert_user", "ref": "morag", "name": "Morag Macleod", "email": "morag@example.org", "roles": ["managers", "allocation_queue"]}),
        json!({"type": "upsert_user", "ref": "aisha", "name": "Aisha Khan", "email": "aisha@example.org", "line_manager": "morag", "roles": ["home_ownership", "patch_north"]}),
        json!({"type": "upsert_user", "ref": "ben", "name": "Ben Evans", "email": "ben@example.org", "line_manager": "morag", "roles": ["home_ownership", "patch_south"]}),
        json!({"type": "upsert_user", "ref": "carys", "name": "Carys Jones", "email": "carys@example.org", "line_manager": "morag", "roles": ["home_ownership"]}),
        json!({"type": "upsert_user", "ref": "dev", "name": "Dev Patel", "email": "dev@example.org", "line_manager": "morag", "roles": ["legal"]}),
        json!({"type": "upsert_role", "ref": "housing_options", "name": "Housing options team"}),
        json!({"type": "upsert_role", "ref": "domestic_abuse_specialist", "name": "Domestic abuse specialists"}),
        json!({"type": "upsert_user", "ref": "hana", "name": "Hana Osei", "email": "hana@example.org", "line_manager": "morag", "roles": ["housing_options", "domestic_abuse_specialist"]}),
    ];
    for i in 1..=14 {
        c.push(json!({"type": "upsert_contact", "ref": format!("tenant{i}"), "name": format!("Tenant {i}"),
            "email": format!("tenant{i}@example.net"), "address": format!("{i} Demo Street")}));
    }
    c
}

fn claim(
    case_ref: &str,
    scheme: &str,
    country: &str,
    tenant: u32,
    tenure: &str,
    received: &str,
    attributes: Value,
) -> Value {
    json!({"type": "create_case", "case_ref": case_ref, "kind": "home_buy", "scheme": scheme, "country": country,
        "applicant": format!("tenant{tenant}"),
        "property": {"ref": format!("PROP-{case_ref}"), "address": format!("{tenant} Demo Street"), "tenure": tenure},
        "received_at": received, "attributes": attributes, "command_id": format!("demo-create-{case_ref}")})
}

fn claims() -> Vec<Value> {
    let d = "2026-01-02";
    vec![
        claim(
            "RTB-1001",
            "right_to_buy",
            "england",
            1,
            "freehold",
            d,
            json!({"patch": "north", "qualifying_period_all_with_landlord": true}),
        ),
        claim(
            "RTB-1002",
            "right_to_buy",
            "england",
            2,
            "leasehold",
            d,
            json!({"patch": "south", "qualifying_period_all_with_landlord": false}),
        ),
        claim(
            "RTB-1003",
            "right_to_buy",
            "england",
            3,
            "freehold",
            d,
            json!({}),
        ),
        claim(
            "RTB-1004",
            "right_to_buy",
            "england",
            4,
            "leasehold",
            d,
            json!({"patch": "north"}),
        ),
        claim(
            "RTA-2001",
            "right_to_acquire",
            "england",
            5,
            "freehold",
            d,
            json!({}),
        ),
        claim(
            "RTA-2002",
            "right_to_acquire",
            "england",
            6,
            "leasehold",
            d,
            json!({}),
        ),
        claim(
            "SHB-3001",
            "social_homebuy",
            "england",
            7,
            "leasehold",
            d,
            json!({"share_percent": 40}),
        ),
        claim(
            "SHB-3002",
            "social_homebuy",
            "england",
            8,
            "leasehold",
            d,
            json!({"share_percent": 25}),
        ),
        claim(
            "NI-4001",
            "right_to_buy",
            "northern_ireland",
            9,
            "freehold",
            d,
            json!({}),
        ),
        claim(
            "WAL-5001",
            "right_to_buy",
            "wales",
            10,
            "freehold",
            "2019-01-21",
            json!({}),
        ),
        claim(
            "WAL-5002",
            "right_to_buy",
            "wales",
            11,
            "freehold",
            d,
            json!({}),
        ),
        claim(
            "SCO-6001",
            "right_to_buy",
            "scotland",
            12,
            "freehold",
            "2016-07-29",
            json!({}),
        ),
        enquiry("HO-7001", "section_21", 13),
        enquiry("HO-7002", "domestic_abuse", 14),
    ]
}

/// A housing options enquiry received on the demo's first day.
fn enquiry(case_ref: &str, workflow: &str, tenant: u32) -> Value {
    json!({"type": "create_case", "case_ref": case_ref, "kind": "housing_options", "workflow": workflow,
        "country": "england", "applicant": format!("tenant{tenant}"), "received_at": "2026-01-05T08:30:00Z",
        "command_id": format!("demo-create-{case_ref}")})
}

/// What happens on particular days, beyond officers working their lists.
fn scripted(day: i64) -> Vec<Value> {
    match day {
        1 => vec![
            json!({"type": "submit_enquiry", "case_ref": "HO-7001", "by": "hana", "answers": {
                "safe_place_tonight": true, "has_section_21_notice": true, "notice_served_date": "2025-12-19",
                "notice_expiry_date": "2026-02-20", "court_papers": "none", "deposit": "not_protected",
                "household": "family_with_children", "monthly_rent": 1100, "rent_arrears": 650,
                "income_sources": ["employment", "universal_credit"], "support_needs": ["none"],
                "contact_by_email_ok": true}}),
            json!({"type": "submit_enquiry", "case_ref": "HO-7002", "by": "hana", "answers": {
                "safe_place_tonight": false, "age": 34, "household": "family_with_children",
                "current_accommodation": "private_tenancy", "experiencing_abuse": true, "living_with_abuser": true,
                "unsafe_in_this_area": true, "been_in_care": "no", "income_sources": ["employment"],
                "support_needs": ["mental_health"], "contact_by_email_ok": false}}),
            json!({"type": "activate_task", "case_ref": "HO-7002", "task": "interim_accommodation"}),
            json!({"type": "activate_task", "case_ref": "RTB-1002", "task": "request_previous_landlord_evidence"}),
            json!({"type": "hold_task", "case_ref": "RTB-1003", "task": "check_previous_tenancies",
                "until": "2026-01-14", "reason": "waiting for the previous landlord's tenancy record"}),
            json!({"type": "attach_file", "case_ref": "RTB-1001", "name": "RTB1 claim form.pdf", "media_type": "application/pdf",
                "uri": "https://crm.example.org/documents/1001-rtb1", "size": 482133}),
        ],
        3 => vec![
            json!({"type": "close_case", "case_ref": "RTB-1004", "outcome": "withdrawn", "by": "aisha"}),
            json!({"type": "add_note", "case_ref": "RTB-1004", "by": "aisha", "text": "Tenant withdrew the claim by letter."}),
        ],
        8 => vec![
            json!({"type": "submit_enquiry", "case_ref": "HO-7001", "by": "hana",
            "answers": {"deposit": "protected", "anything_else": "Landlord has now shown the deposit certificate."}}),
        ],
        9 => vec![json!({"type": "render_pack", "case_ref": "HO-7001", "by": "hana"})],
        15 => vec![json!({"type": "advance_case", "case_ref": "RTB-1002", "to_stage": "delay"})],
        // The prevention duty succeeded for both: neither applicant became homeless.
        29 => vec![
            json!({"type": "skip_task", "case_ref": "HO-7001", "task": "relief_duty", "by": "hana", "reason": "homelessness prevented"}),
            json!({"type": "skip_task", "case_ref": "HO-7002", "task": "relief_duty", "by": "hana", "reason": "homelessness prevented"}),
        ],
        22 => vec![json!({"type": "reassign_case", "case_ref": "RTA-2001", "owner": "carys"})],
        _ => Vec::new(),
    }
}

/// Each officer completes the oldest few active tasks on their list (legal tasks go to legal),
/// leaving alone the cases that something else happens to today.
async fn officers_work(db: &Db, busy: &[&str]) -> anyhow::Result<Vec<Value>> {
    let rows: Vec<(String, String, Option<String>, Option<String>)> = sql(
        "SELECT case_ref, task, owner, role FROM worklist_tasks WHERE status = 'active' ORDER BY activated_at, task_id",
    )
    .fetch_all(db)
    .await?;
    let mut done: BTreeMap<String, usize> = BTreeMap::new();
    let mut commands = Vec::new();
    for (case_ref, task, owner, role) in rows {
        let by = if role.as_deref() == Some("legal") {
            Some("dev".to_string())
        } else {
            owner
        };
        let Some(by) = by else { continue };
        if busy.contains(&case_ref.as_str()) {
            continue;
        }
        let count = done.entry(by.clone()).or_default();
        if *count < TASKS_PER_DAY {
            *count += 1;
            commands.push(
                json!({"type": "complete_task", "case_ref": case_ref, "task": task, "by": by}),
            );
        }
    }
    Ok(commands)
}

/// Where a case waits for a choice of next stage, the CRM returns it to the stage a diversion
/// interrupted, or else takes the usual path: the first choice.
async fn choices(db: &Db) -> anyhow::Result<Vec<Value>> {
    let waiting: Vec<(i64, String)> =
        sql("SELECT id, case_ref FROM cases WHERE status = 'awaiting_advance' ORDER BY id")
            .fetch_all(db)
            .await?;
    let mut commands = Vec::new();
    for (id, case_ref) in waiting {
        let history = events::for_case(db, id).await?;
        let latest = |kind: &str| {
            history
                .iter()
                .rfind(|e| e.kind == kind)
                .map(|e| e.data.0.clone())
        };
        let Some(needed) = latest("advance_needed") else {
            continue;
        };
        let options: Vec<&str> = needed["choices"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let diverted_from =
            latest("stage_diverted").and_then(|d| d["from"].as_str().map(str::to_string));
        let to = match diverted_from {
            Some(from) if options.contains(&from.as_str()) => from,
            _ => options.first().map(|s| s.to_string()).unwrap_or_default(),
        };
        commands.push(json!({"type": "advance_case", "case_ref": case_ref, "to_stage": to}));
    }
    Ok(commands)
}
