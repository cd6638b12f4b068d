//! SLA firings: checkpoints due at once, each firing an escalation row, an `sla_amber` event and
//! a notification to the task's owner; and the peak memory of the pass.

use casewarden::db::{Db, sql};
use casewarden::engine::{Engine, EngineSettings};
use casewarden::rules::{Limits, RuleSet};
use serde_json::Value;

use crate::baseline::{execute_in, insert, int, json, text, time};
use crate::seed::{self, TASKS_PER_CASE};
use crate::{Goal, Row, fresh, rate, sized, timed};

const BATCH: i64 = 200;

pub fn rules() -> RuleSet {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    RuleSet::load(
        &root.join("rules"),
        &root.join("templates"),
        &Limits::default(),
    )
    .expect("rules")
}

/// The engine as the daemon runs it, with room to finish the work in one pass.
pub fn engine(db: &Db) -> Engine {
    let settings = EngineSettings {
        step_budget_seconds: 3600,
        ..EngineSettings::default()
    };
    Engine::new(db.clone(), rules(), settings)
}

pub async fn run(key: &str, backend: &'static str, rows: &mut Vec<Row>) {
    for due in [sized(10_000), sized(100_000)] {
        let open = due as i64 * TASKS_PER_CASE;
        let fresh_db = fresh(key).await.expect("database");
        seed::organisation(&fresh_db.db).await;
        seed::open_work(&fresh_db.db, open, due as i64).await;
        let engine = engine(&fresh_db.db);
        let peak = memory::reset();
        let (outcome, took) = timed(engine.run_pass(seed::now())).await;
        let outcome = outcome.expect("pass");
        let peak_mb = memory::peak_mb(peak);
        assert_eq!(outcome.escalations, due, "{outcome}");
        let per_firing = outcome.notifications / outcome.escalations;
        let idle_took = idle_pass(&engine).await;
        let sample = samples(&fresh_db.db).await;
        let base = baseline(key, open, due, per_firing as usize, &sample).await;
        let label = |what: &str| format!("{what}, {due} due among {open} open tasks");
        rows.push(Row {
            work: label("SLA firings"),
            backend,
            engine: rate(due, took),
            baseline: Some(base),
            unit: "/s",
            goal: match key {
                "sqlite" => Goal::RateAndRatio(20_000.0, 1.5),
                _ => Goal::Rate(10_000.0),
            },
        });
        rows.push(Row {
            work: label("peak memory of the pass (MB)"),
            backend,
            engine: peak_mb,
            baseline: None,
            unit: "MB",
            goal: Goal::AtMost(64.0),
        });
        rows.push(Row {
            work: format!("idle pass among {open} open tasks (ms, median of {IDLE_PASSES})"),
            backend,
            engine: idle_took.as_secs_f64() * 1e3,
            baseline: None,
            unit: "ms",
            goal: match key {
                "sqlite" => Goal::AtMost(1.0),
                _ => Goal::None,
            },
        });
    }
}

/// How long a pass with nothing due takes: the median of [`IDLE_PASSES`], as the daemon runs
/// one after another (a single pass of a millisecond or so is at the mercy of the scheduler).
async fn idle_pass(engine: &Engine) -> std::time::Duration {
    let mut took = Vec::with_capacity(IDLE_PASSES);
    for _ in 0..IDLE_PASSES {
        let (idle, one) = timed(engine.run_pass(seed::now())).await;
        assert!(idle.expect("idle pass").is_idle());
        took.push(one);
    }
    took.sort_unstable();
    eprintln!(
        "idle pass: fastest {:?}, median {:?}, slowest {:?} of {IDLE_PASSES}",
        took[0],
        took[IDLE_PASSES / 2],
        took[IDLE_PASSES - 1]
    );
    took[IDLE_PASSES / 2]
}

const IDLE_PASSES: usize = 21;

/// An event's data and a notification's facts as the engine wrote them, for the baseline to
/// write rows of the same size.
pub struct Samples {
    event: Value,
    facts: Value,
}

async fn samples(db: &Db) -> Samples {
    let (event,): (sqlx::types::Json<Value>,) =
        sql("SELECT data FROM events WHERE kind = 'sla_amber' ORDER BY id LIMIT 1")
            .fetch_one(db)
            .await
            .expect("an sla_amber event");
    let (facts,): (sqlx::types::Json<Value>,) = sql("SELECT facts FROM outbox ORDER BY id LIMIT 1")
        .fetch_one(db)
        .await
        .expect("a notification");
    Samples {
        event: event.0,
        facts: facts.0,
    }
}

/// A due task: id, case id, case reference, owner and the owner's address.
type DueTask = (i64, i64, String, Option<String>, Option<String>);

/// The same writes with raw SQL: per batch of 200 due tasks, one transaction with a multi-row
/// insert each of escalations, events and outbox rows, and one update of the tasks' clocks.
async fn baseline(key: &str, open: i64, due: u64, per_firing: usize, sample: &Samples) -> f64 {
    let fresh_db = fresh(key).await.expect("database");
    let db = &fresh_db.db;
    seed::organisation(db).await;
    seed::open_work(db, open, due as i64).await;
    let now = seed::now();
    let (fired, took) = timed(async {
        let mut fired = 0;
        loop {
            let items: Vec<DueTask> = sql(
                "SELECT t.id, t.case_id, c.case_ref, t.owner, u.email FROM tasks t JOIN cases c ON c.id = t.case_id \
                 LEFT JOIN users u ON u.ref = t.owner WHERE t.next_check_at <= $1 ORDER BY t.next_check_at, t.id LIMIT $2",
            )
            .bind(now)
            .bind(BATCH)
            .fetch_all(db)
            .await
            .expect("due");
            if items.is_empty() {
                return fired;
            }
            let mut tx = db.begin_write().await.expect("begin");
            let escalations: Vec<(i64, i64)> = insert(
                "escalations",
                &["item_kind", "item_id", "level", "repetition", "case_id", "fired_at"],
                items.iter().map(|(id, case, ..)| vec![text("task"), int(*id), text("amber"), int(0), int(*case), time(now)]).collect(),
                "RETURNING item_id, id",
            )
            .fetch_all(&mut tx)
            .await
            .expect("escalations");
            let escalation = |task: i64| escalations.iter().find(|(t, _)| *t == task).map(|(_, id)| *id);
            insert(
                "events",
                &["case_id", "case_ref", "at", "kind", "actor", "data"],
                items.iter().map(|(_, case, r, ..)| vec![int(*case), text(r), time(now), text("sla_amber"), text("casewarden"), json(&sample.event)]).collect(),
                "",
            )
            .execute(&mut tx)
            .await
            .expect("events");
            let outbox = items.iter().flat_map(|(id, case, _, owner, email)| {
                (0..per_firing).map(move |_| {
                    vec![int(*case), casewarden::db::Arg::Int(escalation(*id)), text("sla_amber"), text("user"),
                         casewarden::db::Arg::Text(owner.clone()), casewarden::db::Arg::Text(email.clone()),
                         json(&sample.facts), text("pending"), time(now), time(now)]
                })
            });
            insert(
                "outbox",
                &["case_id", "escalation_id", "template", "recipient_kind", "recipient_ref", "recipient_email", "facts", "status", "next_attempt_at", "created_at"],
                outbox.collect(),
                "",
            )
            .execute(&mut tx)
            .await
            .expect("outbox");
            let ids: Vec<i64> = items.iter().map(|(id, ..)| *id).collect();
            execute_in(&mut tx, "UPDATE tasks SET sla_state = 'amber', next_check_at = target_at WHERE id", vec![], &ids).await;
            tx.commit().await.expect("commit");
            fired += items.len() as u64;
        }
    })
    .await;
    assert_eq!(fired, due);
    rate(fired, took)
}

/// The process's peak resident memory, reset before a measurement.
pub mod memory {
    /// Returns memory to the system and resets the peak to what is resident now.
    pub fn reset() -> bool {
        // SAFETY: malloc_trim only releases free memory held by the allocator.
        unsafe { libc::malloc_trim(0) };
        std::fs::write("/proc/self/clear_refs", "5").is_ok()
    }

    /// The peak resident memory since the reset, in MB (NaN when it could not be reset).
    pub fn peak_mb(reset: bool) -> f64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
        match (reset, kb) {
            (true, Some(kb)) => kb / 1024.0,
            _ => f64::NAN,
        }
    }
}
