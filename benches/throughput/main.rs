//! Throughput: how fast the engine does work that is due, against raw SQL doing the same writes.
//!
//! `cargo bench --bench throughput` measures, on SQLite and on a throwaway PostgreSQL cluster
//! (with PostgreSQL's default durability settings; skipped, with a message, when no server is
//! installed), in a release build:
//!
//! - SLA firings (escalation row, event and notification each), 10,000 and 100,000 due at once;
//! - commands applied (`create_case` and two `complete_task` per case), 10,000 and 100,000;
//! - new cases allocated by the shipped Rhai rules among 49 officers, with 10,000 and with
//!   1,000,000 open tasks, and the allocation rule's evaluations alone;
//! - notifications delivered by the file transport, and the same files written alone, with no
//!   database (the file system's own rate, which bounds delivery by file);
//! - the working days published at start, when the calendars changed and when they did not;
//! - the peak memory of a pass firing 100,000 checkpoints among 1,000,000 open tasks.
//!
//! Beside each engine figure it runs a baseline written in Rust with the same driver, doing the
//! same writes in the same batches (200 rows, one transaction per batch; delivery 100) on a
//! database seeded the same way, and prints the ratio. Every engine run is checked (every
//! checkpoint fired once, every command accepted, every case allocated, every message written);
//! anything else stops the run. The table goes to stdout, with the machine it ran on.
//!
//! Set CASEWARDEN_BENCH_BACKENDS (default sqlite,postgres), CASEWARDEN_BENCH_SCALE (a divisor
//! for every size, default 1; 10 gives a quick run) and CASEWARDEN_BENCH_ONLY (some of firings,
//! commands, allocation, delivery, calendars; default all).

#[path = "../../tests/common/pg.rs"]
mod pg;

mod allocation;
mod baseline;
mod commands;
mod delivery;
mod firings;
mod seed;

use std::time::{Duration, Instant};

use casewarden::db::Db;

/// One line of the table.
pub struct Row {
    pub work: String,
    pub backend: &'static str,
    /// Items per second by the engine, and by the raw-SQL baseline.
    pub engine: f64,
    pub baseline: Option<f64>,
    pub unit: &'static str,
    pub goal: Goal,
}

/// What a figure must reach.
pub enum Goal {
    /// At least this many per second.
    Rate(f64),
    /// At least this many per second, and within this factor of the baseline.
    RateAndRatio(f64, f64),
    /// At most this much (for memory, in MB, and times, in ms).
    AtMost(f64),
    None,
}

impl Row {
    fn met(&self) -> Option<bool> {
        let ratio_ok = |r: f64| self.baseline.is_some_and(|b| b / self.engine <= r);
        match self.goal {
            Goal::Rate(r) => Some(self.engine >= r),
            Goal::RateAndRatio(r, x) => Some(self.engine >= r && ratio_ok(x)),
            Goal::AtMost(m) => Some(self.engine <= m),
            Goal::None => None,
        }
    }

    fn goal_text(&self) -> String {
        match self.goal {
            Goal::Rate(r) => format!("≥ {r:.0}/s"),
            Goal::RateAndRatio(r, x) => format!("≥ {r:.0}/s, ≤ {x}×"),
            Goal::AtMost(m) => format!("≤ {m:.0} {}", self.unit),
            Goal::None => String::new(),
        }
    }
}

/// A database to measure on.
pub struct Fresh {
    pub db: Db,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// A new, migrated database on `backend`; None when PostgreSQL is not available.
pub async fn fresh(backend: &str) -> Option<Fresh> {
    let (url, dir) = match backend {
        "sqlite" => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            (url, Some(dir))
        }
        _ => (pg::fresh_database()?, None),
    };
    let db = Db::connect(&url).await.expect("connect");
    db.migrate().await.expect("migrate");
    Some(Fresh { db, url, _dir: dir })
}

/// Runs `work`, returning its result and how long it took.
pub async fn timed<T>(work: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = work.await;
    (out, started.elapsed())
}

pub fn rate(n: u64, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64().max(1e-9)
}

/// A size divided by CASEWARDEN_BENCH_SCALE.
pub fn sized(n: u64) -> u64 {
    let scale: u64 = std::env::var("CASEWARDEN_BENCH_SCALE")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1);
    (n / scale).max(1)
}

/// Whether CASEWARDEN_BENCH_ONLY asks for this part of the benchmark (all of them when unset).
fn only(part: &str) -> bool {
    let Ok(parts) = std::env::var("CASEWARDEN_BENCH_ONLY") else {
        return true;
    };
    let known = ["firings", "commands", "allocation", "delivery", "calendars"];
    let asked: Vec<&str> = parts.split(',').map(str::trim).collect();
    if let Some(unknown) = asked.iter().find(|p| !known.contains(p)) {
        panic!(
            "CASEWARDEN_BENCH_ONLY: unknown part {unknown:?}; use some of {}",
            known.join(", ")
        );
    }
    asked.contains(&part)
}

fn main() {
    // As the daemon starts (see `casewarden::allocator`).
    casewarden::allocator::tune();
    run();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn run() {
    pg::keep_default_settings();
    // RUST_LOG=sqlx::query=debug lists every statement the engine runs, to count them per item.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let backends =
        std::env::var("CASEWARDEN_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let mut rows = Vec::new();
    for backend in backends.split(',').map(str::trim) {
        let backend: &'static str = match backend {
            "sqlite" => "SQLite",
            "postgres" => "PostgreSQL",
            other => panic!("unknown backend {other:?}: use sqlite or postgres"),
        };
        let key = if backend == "SQLite" {
            "sqlite"
        } else {
            "postgres"
        };
        if key == "postgres" && fresh(key).await.is_none() {
            continue;
        }
        eprintln!("== {backend}");
        if only("firings") {
            firings::run(key, backend, &mut rows).await;
        }
        if only("commands") {
            commands::run(key, backend, &mut rows).await;
        }
        if only("allocation") {
            allocation::run(key, backend, &mut rows).await;
        }
        if only("delivery") {
            delivery::run(key, backend, &mut rows).await;
        }
        if only("calendars") {
            seed::calendars(key, backend, &mut rows).await;
        }
    }
    print(&rows);
}

fn print(rows: &[Row]) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("\nMachine: {cores} cores, {cpu}\n");
    println!(
        "| work | backend | engine | raw SQL | ratio | goal | met |\n|---|---|---:|---:|---:|---|---|"
    );
    for r in rows {
        let (engine, baseline, ratio) = match r.unit {
            "/s" => (
                format!("{:.0}/s", r.engine),
                r.baseline.map_or(String::new(), |b| format!("{b:.0}/s")),
                r.baseline
                    .map_or(String::new(), |b| format!("{:.2}×", b / r.engine)),
            ),
            unit => (
                format!("{:.1} {unit}", r.engine),
                String::new(),
                String::new(),
            ),
        };
        let met = match r.met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        println!(
            "| {} | {} | {engine} | {baseline} | {ratio} | {} | {met} |",
            r.work,
            r.backend,
            r.goal_text()
        );
    }
}
