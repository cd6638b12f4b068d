//! How the cost of a pass grows: with the work that is due, not with the work that is open.
//!
//! `cargo bench --bench sweep` builds SQLite databases holding 1,000 to 100,000 open tasks whose
//! SLA checkpoints lie in the future, makes 100 of them due, and times a pass (which fires those
//! 100 amber escalations) and then idle passes (the median of 21). Both should stay roughly flat
//! as the open work grows a hundredfold. Set CASEWARDEN_BENCH_SIZES=1000,10000 to choose the
//! sizes.

use std::time::Instant;

use casewarden::clock::parse_time;
use casewarden::db::{Db, sql};
use casewarden::engine::{Engine, EngineSettings};
use casewarden::rules::{Limits, RuleSet};

const DUE: i64 = 100;
const TASKS_PER_CASE: i64 = 10;
const IDLE_PASSES: usize = 21;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let sizes: Vec<i64> = std::env::var("CASEWARDEN_BENCH_SIZES")
        .unwrap_or_else(|_| "1000,10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!(
        "{:>12} {:>6} {:>14} {:>14}",
        "open tasks", "due", "pass (ms)", "idle pass (ms)"
    );
    for open in sizes {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::connect(&format!(
            "sqlite://{}",
            dir.path().join("bench.db").display()
        ))
        .await
        .expect("connect");
        db.migrate().await.expect("migrate");
        let rules = RuleSet::load(
            &root.join("rules"),
            &root.join("templates"),
            &Limits::default(),
        )
        .expect("rules");
        seed(&db, open).await;
        let engine = Engine::new(db.clone(), rules, EngineSettings::default());
        let now = parse_time("2026-01-07T09:00:00Z").expect("time");
        let started = Instant::now();
        let outcome = engine.run_pass(now).await.expect("pass");
        let pass = started.elapsed();
        assert_eq!(outcome.escalations, DUE as u64, "{outcome}");
        // The median of several idle passes run one after another, as the daemon runs them: a
        // single pass of well under a millisecond is at the mercy of the scheduler.
        let mut idle_times = Vec::with_capacity(IDLE_PASSES);
        for _ in 0..IDLE_PASSES {
            let started = Instant::now();
            let idle = engine.run_pass(now).await.expect("idle pass");
            idle_times.push(started.elapsed());
            assert!(idle.is_idle(), "{idle}");
        }
        idle_times.sort_unstable();
        println!(
            "{open:>12} {DUE:>6} {:>14.1} {:>14.2}",
            pass.as_secs_f64() * 1e3,
            idle_times[IDLE_PASSES / 2].as_secs_f64() * 1e3
        );
        db.close().await;
    }
}

/// `open` active tasks on open cases, all with checkpoints in 2030, then `DUE` of them due now.
async fn seed(db: &Db, open: i64) {
    let cases = (open / TASKS_PER_CASE).max(DUE);
    let mut tx = db.begin().await.expect("begin");
    sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO cases (case_ref, kind, scheme, country, definition_id, definition_version, received_at, \
           created_at, calendar, allocation) \
         SELECT 'B-' || i, 'home_buy', 'right_to_buy', 'england', 'right_to_buy-england', 'bench', \
           '2026-01-05T09:00:00+00:00', '2026-01-05T09:00:00+00:00', 'england-and-wales', 'allocated' FROM n")
        .bind(cases)
        .execute(&mut tx)
        .await
        .expect("cases");
    sql(
        "INSERT INTO stages (case_id, stage, master_stage, entered_at) \
         SELECT id, 'application', 'application', '2026-01-05T09:00:00+00:00' FROM cases",
    )
    .execute(&mut tx)
    .await
    .expect("stages");
    sql("WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < $1 - 1) \
         INSERT INTO tasks (case_id, stage_id, task, mandatory, activation, status, activated_at, \
           target_at, amber_at, sla_state, next_check_at) \
         SELECT s.case_id, s.id, CASE WHEN k.j = 0 THEN 'check_property_address' ELSE 'other_' || k.j END, \
           1, 'auto', 'active', '2026-01-05T09:00:00+00:00', '2030-01-10T09:00:00+00:00', \
           '2030-01-09T09:00:00+00:00', 'on_track', '2030-01-09T09:00:00+00:00' \
         FROM stages s, k")
        .bind(TASKS_PER_CASE)
        .execute(&mut tx)
        .await
        .expect("tasks");
    sql("UPDATE tasks SET amber_at = '2026-01-07T09:00:00+00:00', target_at = '2026-01-08T09:00:00+00:00', \
           next_check_at = '2026-01-07T09:00:00+00:00' \
         WHERE task = 'check_property_address' AND case_id <= $1")
        .bind(DUE)
        .execute(&mut tx)
        .await
        .expect("due");
    tx.commit().await.expect("commit");
}
