//! What the integration API takes, end to end: a real daemon, a real HTTP client on loopback.
//!
//! `cargo bench --bench api` starts the daemon as `casewarden run` does (the test harness's
//! daemon: the shipped rules, mail to files, the schedule hourly, so every pass is one the API
//! rang for), on SQLite and on a throwaway PostgreSQL cluster (skipped, with a message, when no
//! server is installed). It seeds an organisation, then submits a realistic mix (per case:
//! `create_case` for a Right to Buy claim, `add_note`, two `complete_task`) and prints:
//!
//! - requests and commands per second for `POST /v1/commands` without `Prefer: wait` (202), one
//!   command per request and in batches of 100 and 1000 (JSON array and NDJSON), from several
//!   clients at once, and how fast the engine applied them (queue start to the inbox drained);
//! - the latency of one command with `Prefer: wait=10`, from sending it to its applied outcome
//!   (200, `accepted`), one client at a time and several at once, against the goal of a p99
//!   under 250 ms on SQLite.
//!
//! Every answer is checked (status and each line's status), and every queued command must end
//! accepted; anything else stops the run. The per-client rate and concurrency limits are raised,
//! so that the daemon is measured and not its limits. Client and daemon share the machine.
//!
//! Set CASEWARDEN_BENCH_BACKENDS (default sqlite,postgres), CASEWARDEN_BENCH_CLIENTS (concurrent
//! clients, default 8), CASEWARDEN_BENCH_COMMANDS (commands per throughput row, default 2000)
//! and CASEWARDEN_BENCH_REQUESTS (waited requests per latency row, default 300).

#[path = "../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../tests/api/harness.rs"]
mod harness;
#[path = "../tests/common/pg.rs"]
mod pg;

use std::time::{Duration, Instant};

use casewarden::db::sql;
use harness::Api;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The goal for one waited command on SQLite.
const GOAL_P99: Duration = Duration::from_millis(250);

struct Options {
    clients: usize,
    commands: usize,
    requests: usize,
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let backends =
        std::env::var("CASEWARDEN_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let options = Options {
        clients: env_number("CASEWARDEN_BENCH_CLIENTS", 8),
        commands: env_number("CASEWARDEN_BENCH_COMMANDS", 2000),
        requests: env_number("CASEWARDEN_BENCH_REQUESTS", 300),
    };
    let mut goal = None;
    for backend in backends.split(',').map(str::trim) {
        let api = match backend {
            "sqlite" => Api::sqlite(unlimited).await,
            "postgres" => match Api::postgres(unlimited).await {
                Some(api) => api,
                None => {
                    println!("postgres: skipped (no PostgreSQL server; see above)\n");
                    continue;
                }
            },
            other => panic!("CASEWARDEN_BENCH_BACKENDS: unknown backend {other:?}"),
        };
        let p99 = run(backend, &api, &options).await;
        if backend == "sqlite" {
            goal = Some(p99);
        }
        api.stop().await;
    }
    if let Some(p99) = goal {
        println!(
            "goal: p99 under {} ms for one waited command on SQLite, one client: {} ({:.1} ms)",
            GOAL_P99.as_millis(),
            if p99 < GOAL_P99 { "met" } else { "MISSED" },
            ms(p99)
        );
    }
}

/// Lifts the per-client rate and concurrency limits out of the way of the measurement.
fn unlimited(s: &mut casewarden::settings::Settings) {
    s.api.client_requests_per_second = 1_000_000;
    s.api.client_burst = 1_000_000;
    s.api.client_concurrency = 10_000;
}

/// Every row for one backend; returns the one-client p99 of a waited command.
async fn run(backend: &str, api: &Api, options: &Options) -> Duration {
    seed(api).await;
    let token = api.client("bench-crm", "commands:write").await;
    println!(
        "{backend}: POST /v1/commands without Prefer: wait (202), {} clients",
        options.clients
    );
    println!(
        "{:>24} {:>9} {:>9} {:>10} {:>10} {:>15}",
        "commands per request", "requests", "commands", "req/s", "cmd/s", "applied (cmd/s)"
    );
    let shapes = [
        (1, Framing::Json),
        (100, Framing::Json),
        (100, Framing::Lines),
        (1000, Framing::Json),
        (1000, Framing::Lines),
    ];
    for (round, (size, framing)) in shapes.into_iter().enumerate() {
        let requests = options.commands.div_ceil(size);
        let row = queued(api, &token, round, size, framing, requests, options.clients).await;
        println!(
            "{:>24} {requests:>9} {:>9} {:>10.0} {:>10.0} {:>15.0}",
            format!("{size} ({})", framing.name()),
            row.commands,
            requests as f64 / row.answered.as_secs_f64(),
            row.commands as f64 / row.answered.as_secs_f64(),
            row.commands as f64 / row.applied.as_secs_f64(),
        );
    }
    println!("{backend}: one command with Prefer: wait=10, sent to applied (200, accepted), in ms");
    println!(
        "{:>24} {:>9} {:>9} {:>10} {:>10}",
        "clients", "requests", "median", "p99", "max"
    );
    let mut one_client = Duration::ZERO;
    for (round, clients) in [(10, 1), (11, options.clients.min(4))] {
        let times = waited(api, &token, round, options.requests, clients).await;
        let p99 = percentile(&times, 99);
        if clients == 1 {
            one_client = p99;
        }
        println!(
            "{clients:>24} {:>9} {:>9.1} {:>10.1} {:>10.1}",
            times.len(),
            ms(percentile(&times, 50)),
            ms(p99),
            ms(*times.last().expect("a time"))
        );
    }
    println!();
    one_client
}

/// The organisation the commands refer to: teams, officers, tenants.
async fn seed(api: &Api) {
    let mut commands = vec![
        json!({"type": "upsert_role", "ref": "home_ownership", "name": "Home ownership team"}),
        json!({"type": "upsert_role", "ref": "legal", "name": "Legal services"}),
        json!({"type": "upsert_role", "ref": "patch_north", "name": "North patch"}),
        json!({"type": "upsert_role", "ref": "managers", "name": "Team managers"}),
        json!({"type": "upsert_user", "ref": "mgr1", "name": "Morag Manager", "email": "morag@example.org", "roles": ["managers"]}),
        json!({"type": "upsert_user", "ref": "off1", "name": "Olu Officer", "email": "olu@example.org", "line_manager": "mgr1", "roles": ["home_ownership", "patch_north"]}),
        json!({"type": "upsert_user", "ref": "off2", "name": "Ola Officer", "email": "ola@example.org", "line_manager": "mgr1", "roles": ["home_ownership"]}),
        json!({"type": "upsert_user", "ref": "sol1", "name": "Sam Solicitor", "email": "sam@example.org", "line_manager": "mgr1", "roles": ["legal"]}),
    ];
    for i in 1..=6 {
        commands.push(json!({"type": "upsert_contact", "ref": format!("tenant{i}"), "name": format!("Tenant {i}"),
            "email": format!("tenant{i}@example.net"), "address": format!("{i} Example Road")}));
    }
    let (status, body) = api.commands(&api.admin, &Value::Array(commands)).await;
    assert_eq!(status, StatusCode::OK, "seeding: {body:#}");
    let results = body["results"].as_array().expect("results");
    assert!(
        results.iter().all(|r| r["status"] == "accepted"),
        "seeding: {body:#}"
    );
}

/// The commands one client sends, in order: per case, its creation, a note and two tasks
/// completed. Each client has its own cases, so its commands never wait on another's.
struct Workload {
    prefix: String,
    received: String,
    next: usize,
}

impl Workload {
    fn new(round: usize, client: usize) -> Workload {
        Workload {
            prefix: format!("B{round}-{client}"),
            // A date is read as 09:00 that day: yesterday's is never in the future.
            received: (chrono::Utc::now() - chrono::Duration::days(1))
                .format("%Y-%m-%d")
                .to_string(),
            next: 0,
        }
    }

    fn take(&mut self, n: usize) -> Vec<Value> {
        (0..n).map(|_| self.command()).collect()
    }

    fn command(&mut self) -> Value {
        let (case, step) = (self.next / 4, self.next % 4);
        self.next += 1;
        let case_ref = format!("{}-{case}", self.prefix);
        let by = ["off1", "off2"][case % 2];
        match step {
            0 => json!({
                "type": "create_case", "case_ref": case_ref, "kind": "home_buy",
                "scheme": "right_to_buy", "country": "england",
                "applicant": format!("tenant{}", case % 6 + 1),
                "property": {"ref": format!("P-{case_ref}"), "address": "1 Example Road, Leeds", "tenure": "freehold"},
                "received_at": self.received,
                "attributes": {"qualifying_period_all_with_landlord": true, "patch": "north"}
            }),
            1 => json!({"type": "add_note", "case_ref": case_ref, "by": by,
                "text": "Tenant phoned to ask how long the valuation will take."}),
            2 => {
                json!({"type": "complete_task", "case_ref": case_ref, "task": "check_property_address", "by": by})
            }
            _ => {
                json!({"type": "complete_task", "case_ref": case_ref, "task": "check_signatories", "by": by})
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Framing {
    Json,
    Lines,
}

impl Framing {
    fn name(self) -> &'static str {
        match self {
            Framing::Json => "JSON",
            Framing::Lines => "NDJSON",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Framing::Json => "application/json",
            Framing::Lines => "application/x-ndjson",
        }
    }

    /// One command is sent as itself, several as an array or as lines.
    fn body(self, commands: &[Value]) -> Vec<u8> {
        match (self, commands) {
            (Framing::Json, [one]) => serde_json::to_vec(one).expect("JSON"),
            (Framing::Json, many) => serde_json::to_vec(many).expect("JSON"),
            (Framing::Lines, many) => many
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes(),
        }
    }
}

struct Row {
    commands: usize,
    /// From the first request sent to the last answer.
    answered: Duration,
    /// From the first request sent to the last command applied.
    applied: Duration,
}

/// `requests` requests of `size` commands each, from `clients` clients at once, none waiting.
async fn queued(
    api: &Api,
    token: &str,
    round: usize,
    size: usize,
    framing: Framing,
    requests: usize,
    clients: usize,
) -> Row {
    let clients = clients.min(requests);
    let before = last_inbox_id(api).await;
    // Bodies are made before the clock starts: the client's JSON is not the daemon's cost.
    let bodies: Vec<Vec<Vec<u8>>> = (0..clients)
        .map(|c| {
            let mut work = Workload::new(round, c);
            (c..requests)
                .step_by(clients)
                .map(|_| framing.body(&work.take(size)))
                .collect()
        })
        .collect();
    let started = Instant::now();
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|bodies| {
            let request = api
                .request(Method::POST, token, "/v1/commands")
                .header("content-type", framing.content_type());
            tokio::spawn(async move {
                for body in bodies {
                    let response = request
                        .try_clone()
                        .expect("a request with a byte body clones")
                        .body(body)
                        .send()
                        .await
                        .expect("the daemon answers");
                    let status = response.status();
                    let answer: Value = response.json().await.unwrap_or(Value::Null);
                    assert_eq!(status, StatusCode::ACCEPTED, "{answer:#}");
                    let results = answer["results"].as_array().expect("results");
                    assert_eq!(results.len(), size, "{answer:#}");
                    assert!(
                        results.iter().all(|r| r["status"] == "pending"),
                        "{answer:#}"
                    );
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a client failed (see its panic above)");
    }
    let answered = started.elapsed();
    let commands = size * requests;
    drained(api, before, commands).await;
    Row {
        commands,
        answered,
        applied: started.elapsed(),
    }
}

/// `requests` single commands with `Prefer: wait=10`, from `clients` clients each sending its
/// next as soon as the last is answered; each one's time from send to applied, sorted.
async fn waited(
    api: &Api,
    token: &str,
    round: usize,
    requests: usize,
    clients: usize,
) -> Vec<Duration> {
    let before = last_inbox_id(api).await;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let mut work = Workload::new(round, c);
            let bodies: Vec<Vec<u8>> = (c..requests)
                .step_by(clients)
                .map(|_| Framing::Json.body(&work.take(1)))
                .collect();
            let request = api
                .request(Method::POST, token, "/v1/commands")
                .header("content-type", "application/json")
                .header("prefer", "wait=10");
            tokio::spawn(async move {
                let mut times = Vec::with_capacity(bodies.len());
                for body in bodies {
                    let started = Instant::now();
                    let response = request
                        .try_clone()
                        .expect("a request with a byte body clones")
                        .body(body)
                        .send()
                        .await
                        .expect("the daemon answers");
                    let status = response.status();
                    let answer: Value = response.json().await.unwrap_or(Value::Null);
                    times.push(started.elapsed());
                    assert_eq!(status, StatusCode::OK, "{answer:#}");
                    assert_eq!(answer["results"][0]["status"], "accepted", "{answer:#}");
                }
                times
            })
        })
        .collect();
    let mut times = Vec::with_capacity(requests);
    for task in tasks {
        times.extend(task.await.expect("a client failed (see its panic above)"));
    }
    drained(api, before, requests).await;
    times.sort();
    times
}

async fn last_inbox_id(api: &Api) -> i64 {
    sql("SELECT COALESCE(MAX(id), 0) FROM inbox")
        .scalar(&api.db)
        .await
        .expect("inbox")
}

/// Waits until the engine has decided every command after inbox row `after`, and stops the run
/// unless there are `expected` of them and all were accepted.
async fn drained(api: &Api, after: i64, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let pending: i64 = sql("SELECT COUNT(*) FROM inbox WHERE id > $1 AND status = 'pending'")
            .bind(after)
            .scalar(&api.db)
            .await
            .expect("inbox");
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} commands still pending after 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (accepted, total): (i64, i64) = sql(
        "SELECT COALESCE(SUM(CASE WHEN status = 'accepted' THEN 1 ELSE 0 END), 0), COUNT(*) \
         FROM inbox WHERE id > $1",
    )
    .bind(after)
    .fetch_one(&api.db)
    .await
    .expect("inbox");
    if accepted != total || total != expected as i64 {
        let refused: Vec<(i64, String, Option<String>)> = sql(
            "SELECT id, status, reason FROM inbox WHERE id > $1 AND status <> 'accepted' ORDER BY id LIMIT 5",
        )
        .bind(after)
        .fetch_all(&api.db)
        .await
        .expect("inbox");
        panic!(
            "{accepted} of {total} commands accepted, {expected} sent; for example {refused:#?}"
        );
    }
}

/// The nearest-rank percentile of sorted times.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
