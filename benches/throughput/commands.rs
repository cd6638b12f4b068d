//! Commands applied: per case, `create_case` for a Right to Buy claim and two `complete_task`.

use std::sync::Arc;

use casewarden::clock::Now;
use casewarden::db::{Arg, Db, sql};
use casewarden::engine::budget::Budget;
use serde_json::{Value, json};

use crate::baseline::{execute_in, insert, int, json as json_arg, text, time};
use crate::{Goal, Row, fresh, rate, seed, sized, timed};

const BATCH: i64 = 200;

pub async fn run(key: &str, backend: &'static str, rows: &mut Vec<Row>) {
    for n in [sized(10_000), sized(100_000)] {
        let cases = (n / 3).max(1) as usize;
        let bodies = workload(cases);
        let fresh_db = fresh(key).await.expect("database");
        let db = &fresh_db.db;
        seed::organisation(db).await;
        casewarden::engine::queue::queue(db, &bodies, None)
            .await
            .expect("queue");
        let rules = Arc::new(crate::firings::rules());
        let budget = Budget::new(std::time::Duration::from_secs(3600));
        let (outcome, took) = timed(casewarden::engine::ingest::run_once(
            db,
            &rules,
            Now::Live,
            BATCH,
            casewarden::commands::MAX_COMMAND_BYTES,
            &budget,
        ))
        .await;
        let outcome = outcome.expect("ingest");
        assert_eq!(
            (outcome.accepted, outcome.rejected),
            (bodies.len() as u64, 0),
            "every command is accepted"
        );
        let shape = Shape::of(db, bodies.len()).await;
        let base = baseline(key, &bodies, &shape).await;
        rows.push(Row {
            work: format!(
                "commands applied, {} (create_case + 2 complete_task per case)",
                bodies.len()
            ),
            backend,
            engine: rate(bodies.len() as u64, took),
            baseline: Some(base),
            unit: "/s",
            goal: match key {
                "sqlite" => Goal::Rate(10_000.0),
                _ => Goal::Rate(5_000.0),
            },
        });
    }
}

/// The commands, in order: per case, its creation and two tasks completed.
fn workload(cases: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(cases * 3);
    for case in 0..cases {
        let case_ref = format!("C-{case}");
        let by = format!("off{}", case % 48 + 1);
        out.push(json!({
            "type": "create_case", "command_id": format!("{case_ref}-create"), "case_ref": case_ref, "kind": "home_buy",
            "scheme": "right_to_buy", "country": "england", "applicant": format!("tenant{}", case % 6 + 1),
            "property": {"ref": format!("P-{case_ref}"), "address": "1 Example Road, Leeds", "tenure": "freehold"},
            "received_at": "2026-01-05",
            "attributes": {"qualifying_period_all_with_landlord": true, "patch": "north"}
        }));
        for task in ["check_property_address", "check_signatories"] {
            out.push(json!({"type": "complete_task", "command_id": format!("{case_ref}-{task}"), "case_ref": case_ref,
                "task": task, "by": by}));
        }
    }
    out.into_iter().map(|v: Value| v.to_string()).collect()
}

/// What the engine wrote, per command, for the baseline to write the same.
struct Shape {
    tasks_per_case: usize,
    events_per_command: usize,
    event: Value,
    attributes: Value,
}

impl Shape {
    async fn of(db: &Db, commands: usize) -> Shape {
        let count = |table: &'static str| async move {
            let text = format!("SELECT COUNT(*) FROM {table}");
            casewarden::db::Sql::built(text.clone(), text)
                .scalar::<i64>(db)
                .await
                .expect("count") as usize
        };
        let (cases, tasks, events) = (
            count("cases").await,
            count("tasks").await,
            count("events").await,
        );
        let (event,): (sqlx::types::Json<Value>,) =
            sql("SELECT data FROM events WHERE kind = 'task_activated' LIMIT 1")
                .fetch_one(db)
                .await
                .expect("an event");
        let (attributes,): (sqlx::types::Json<Value>,) =
            sql("SELECT attributes FROM cases LIMIT 1")
                .fetch_one(db)
                .await
                .expect("a case");
        Shape {
            tasks_per_case: tasks / cases.max(1),
            events_per_command: events.div_ceil(commands.max(1)),
            event: event.0,
            attributes: attributes.0,
        }
    }
}

/// The same writes with raw SQL, per batch of 200 inbox rows in one transaction: the cases, their
/// stages and tasks, the completed tasks, the events, the command ids and the inbox rows marked.
async fn baseline(key: &str, bodies: &[String], shape: &Shape) -> f64 {
    let fresh_db = fresh(key).await.expect("database");
    let db = &fresh_db.db;
    seed::organisation(db).await;
    casewarden::engine::queue::queue(db, bodies, None)
        .await
        .expect("queue");
    let now = seed::now();
    let (done, took) = timed(async {
        let mut done = 0;
        loop {
            let rows: Vec<(i64, String)> =
                sql("SELECT id, body FROM inbox WHERE status = 'pending' ORDER BY id LIMIT $1")
                    .bind(BATCH)
                    .fetch_all(db)
                    .await
                    .expect("pending");
            if rows.is_empty() {
                return done;
            }
            let commands: Vec<(i64, Value)> = rows
                .iter()
                .map(|(id, b)| (*id, serde_json::from_str(b).expect("json")))
                .collect();
            let mut tx = db.begin_write().await.expect("begin");
            write_batch(&mut tx, &commands, shape, now).await;
            tx.commit().await.expect("commit");
            done += rows.len();
        }
    })
    .await;
    assert_eq!(done, bodies.len());
    rate(done as u64, took)
}

async fn write_batch(
    tx: &mut casewarden::db::Tx,
    commands: &[(i64, Value)],
    shape: &Shape,
    now: chrono::DateTime<chrono::Utc>,
) {
    let creates: Vec<&Value> = commands
        .iter()
        .map(|(_, c)| c)
        .filter(|c| c["type"] == "create_case")
        .collect();
    if !creates.is_empty() {
        let cases: Vec<(i64, String)> = insert(
            "cases",
            &[
                "case_ref",
                "kind",
                "scheme",
                "country",
                "definition_id",
                "definition_version",
                "applicant_contact",
                "property_ref",
                "property_address",
                "tenure",
                "received_at",
                "attributes",
                "created_at",
                "calendar",
            ],
            creates
                .iter()
                .map(|c| {
                    vec![
                        text(c["case_ref"].as_str().unwrap()),
                        text("home_buy"),
                        text("right_to_buy"),
                        text("england"),
                        text("right_to_buy-england"),
                        text("bench"),
                        text(c["applicant"].as_str().unwrap()),
                        text(c["property"]["ref"].as_str().unwrap()),
                        text(c["property"]["address"].as_str().unwrap()),
                        text("freehold"),
                        time(now),
                        json_arg(&shape.attributes),
                        time(now),
                        text("england-and-wales"),
                    ]
                })
                .collect(),
            "RETURNING id, case_ref",
        )
        .fetch_all(&mut *tx)
        .await
        .expect("cases");
        let stages: Vec<(i64, i64)> = insert(
            "stages",
            &["case_id", "stage", "master_stage", "entered_at"],
            cases
                .iter()
                .map(|(id, _)| {
                    vec![
                        int(*id),
                        text("application"),
                        text("application"),
                        time(now),
                    ]
                })
                .collect(),
            "RETURNING id, case_id",
        )
        .fetch_all(&mut *tx)
        .await
        .expect("stages");
        let tasks: Vec<Vec<Arg>> = stages
            .iter()
            .flat_map(|(stage, case)| {
                (0..shape.tasks_per_case).map(move |k| {
                    let task = ["check_property_address", "check_signatories"]
                        .get(k)
                        .map_or(format!("task_{k}"), |t| t.to_string());
                    vec![
                        int(*case),
                        int(*stage),
                        text(&task),
                        Arg::Bool(Some(true)),
                        text("auto"),
                        text("active"),
                        time(now),
                    ]
                })
            })
            .collect();
        insert(
            "tasks",
            &[
                "case_id",
                "stage_id",
                "task",
                "mandatory",
                "activation",
                "status",
                "activated_at",
            ],
            tasks,
            "",
        )
        .execute(&mut *tx)
        .await
        .expect("tasks");
    }
    let completes: Vec<&Value> = commands
        .iter()
        .map(|(_, c)| c)
        .filter(|c| c["type"] == "complete_task")
        .collect();
    if !completes.is_empty() {
        let text_sql = format!(
            "UPDATE tasks SET status = 'completed', completed_at = $1 WHERE id IN (SELECT t.id FROM tasks t JOIN cases c ON c.id = t.case_id \
             WHERE (c.case_ref, t.task) IN ({}))",
            (0..completes.len())
                .map(|i| format!("(${}, ${})", 2 + 2 * i, 3 + 2 * i))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut q = casewarden::db::Sql::built(text_sql.clone(), text_sql).bind(now);
        for c in &completes {
            q = q
                .bind(c["case_ref"].as_str().unwrap())
                .bind(c["task"].as_str().unwrap());
        }
        q.execute(&mut *tx).await.expect("complete");
    }
    let events: Vec<Vec<Arg>> = commands
        .iter()
        .flat_map(|(_, c)| {
            (0..shape.events_per_command).map(move |_| {
                vec![
                    text(c["case_ref"].as_str().unwrap()),
                    time(now),
                    text("task_activated"),
                    text("crm"),
                    json_arg(&shape.event),
                ]
            })
        })
        .collect();
    for chunk in events.chunks(1000) {
        insert(
            "events",
            &["case_ref", "at", "kind", "actor", "data"],
            chunk.to_vec(),
            "",
        )
        .execute(&mut *tx)
        .await
        .expect("events");
    }
    insert(
        "processed_commands",
        &["command_id", "inbox_id"],
        commands
            .iter()
            .map(|(id, c)| vec![text(c["command_id"].as_str().unwrap()), int(*id)])
            .collect(),
        "",
    )
    .execute(&mut *tx)
    .await
    .expect("processed");
    let ids: Vec<i64> = commands.iter().map(|(id, _)| *id).collect();
    execute_in(
        tx,
        "UPDATE inbox SET status = 'accepted', processed_at = $1 WHERE id",
        vec![time(now)],
        &ids,
    )
    .await;
}
