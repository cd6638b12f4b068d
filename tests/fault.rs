//! The fault test: the real binary killed with SIGKILL at random points over many passes, while
//! commands arrive and notifications go to a real SMTP server on loopback. Afterwards every
//! command was applied exactly once, no escalation fired twice, no notification was lost; the
//! messages that arrived twice (delivery is at-least-once) are counted, reported, and each must
//! be explained by a kill.
//!
//! Each round submits the CRM's commands with `casewarden submit`, then runs `casewarden tick
//! --now T` (simulated time a day further each round, so SLA clocks turn amber, pass their
//! targets and follow on) until a pass ends by itself, at most four times. Each pass is killed at
//! a point drawn from a seeded generator (`FAULT_SEED=N` replays a run): after a random delay,
//! just after its n-th command or escalation or message, or not at all. At the end, passes
//! without kills run until one is idle. Runs on SQLite and on a throwaway PostgreSQL (skipped
//! without one, except under CI=true). `cargo test --test fault -- --nocapture` shows the
//! figures.

#[path = "fault/checks.rs"]
mod checks;
#[path = "fault/child.rs"]
#[allow(dead_code)]
mod child;
#[path = "common/mod.rs"]
mod common;
#[path = "common/pg.rs"]
mod pg;
#[path = "fault/smtp.rs"]
mod smtp;
#[path = "fault/workload.rs"]
mod workload;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use casewarden::clock::parse_time;
use casewarden::db::Db;
use casewarden::engine::PassOutcome;
use child::Casewarden;
use smtp::Arrivals;
use workload::{Rng, Sent};

const ROUNDS: usize = 32;
/// A pass left to finish that takes longer than this has stalled.
const PASS_LIMIT: Duration = Duration::from_secs(60);
/// The backends take turns: the machine is small, and the kill delays follow measured passes.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn sqlite() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("casewarden.db").display());
    killed_passes_apply_every_command_once_fire_every_escalation_once_and_lose_no_mail(
        "sqlite", dir, &url,
    );
}

#[test]
fn postgres() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(url) = pg::fresh_database() else {
        return;
    };
    killed_passes_apply_every_command_once_fire_every_escalation_once_and_lose_no_mail(
        "postgres",
        tempfile::tempdir().unwrap(),
        &url,
    );
}

/// One started pass: where it was killed, if it was, and which arrivals (positions in
/// `Arrivals::log`) came while it ran.
struct Pass {
    cut: Option<Cut>,
    arrivals: std::ops::Range<usize>,
}

impl Pass {
    fn killed(&self) -> bool {
        self.cut.is_some()
    }
}

/// Where a pass is killed. Kills timed from the start mostly land in start-up, so most are
/// aimed at the work instead: just after a command is applied, an escalation fires or a message
/// reaches the server, plus a few milliseconds, which lands inside the next one.
#[derive(Debug, Clone, Copy)]
enum Cut {
    Never,
    After(Duration),
    AfterLog(&'static str, usize, Duration),
    AfterMail(usize, Duration),
}

impl Cut {
    fn choose(rng: &mut Rng, typical: Duration) -> Cut {
        let jitter = Duration::from_micros(rng.below(5_000));
        match rng.below(8) {
            0 => Cut::Never,
            1..=3 => Cut::After(Duration::from_millis(
                rng.below(typical.as_millis().max(50) as u64),
            )),
            4 | 5 => Cut::AfterLog("command accepted", 1 + rng.below(6) as usize, jitter),
            6 => Cut::AfterLog("escalation fired", 1 + rng.below(4) as usize, jitter),
            _ => Cut::AfterMail(1 + rng.below(4) as usize, jitter),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Cut::Never => "never",
            Cut::After(_) => "timed",
            Cut::AfterLog("command accepted", ..) => "after a command",
            Cut::AfterLog(..) => "after an escalation",
            Cut::AfterMail(..) => "after a message",
        }
    }
}

/// Runs one pass at `now` and kills it at `cut`; returns whether it was killed (a pass that
/// ends first is not). `mails` counts the messages that arrived since the pass started.
fn run_and_cut(cw: &Casewarden, now: &str, cut: &Cut, mails: impl Fn() -> usize) -> bool {
    let args = ["tick", "--now", now];
    let log = cw.log_len();
    let mut child = cw.spawn(&args);
    let started = Instant::now();
    let waited = match *cut {
        Cut::Never => child.wait_until(PASS_LIMIT, || false),
        Cut::After(d) => child.wait_until(PASS_LIMIT, || started.elapsed() >= d),
        Cut::AfterLog(needle, n, _) => {
            child.wait_until(PASS_LIMIT, || cw.log_count(log, needle) >= n)
        }
        Cut::AfterMail(n, _) => child.wait_until(PASS_LIMIT, || mails() >= n),
    };
    let status = match waited {
        Err(()) => {
            child.kill();
            panic!(
                "a pass at {now} did not finish within {PASS_LIMIT:?} (stalled); log:\n{}",
                cw.log_tail()
            );
        }
        Ok(Some(status)) => Some(status),
        Ok(None) => match *cut {
            Cut::AfterLog(_, _, jitter) | Cut::AfterMail(_, jitter) => child.wait_for(jitter),
            _ => None,
        },
    };
    if let Some(status) = status {
        cw.expect_success(&args, status);
        return false;
    }
    child.kill();
    // Let the server finish reading what the child wrote before it died.
    std::thread::sleep(Duration::from_millis(20));
    true
}

fn killed_passes_apply_every_command_once_fire_every_escalation_once_and_lose_no_mail(
    backend: &str,
    dir: tempfile::TempDir,
    url: &str,
) {
    let started = Instant::now();
    let seed = std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_ca5e);
    let mut rng = Rng::new(seed);

    // Arrange: a working directory with the shipped rules and templates, and mail by SMTP.
    common::copy_tree(&common::repo_path("rules"), &dir.path().join("rules"));
    common::copy_tree(
        &common::repo_path("templates"),
        &dir.path().join("templates"),
    );
    let (port, arrivals) = smtp::start();
    let env = [
        ("CASEWARDEN__MAIL__TRANSPORT", "smtp".to_string()),
        ("CASEWARDEN__MAIL__SMTP__HOST", "127.0.0.1".to_string()),
        ("CASEWARDEN__MAIL__SMTP__PORT", port.to_string()),
        ("CASEWARDEN__MAIL__SMTP__SECURITY", "plaintext".to_string()),
        ("CASEWARDEN__MAIL__SMTP__TIMEOUT_SECONDS", "10".to_string()),
        ("CASEWARDEN__MAIL__SMTP__POOL_SIZE", CONNECTIONS.to_string()),
    ];
    let cw = Casewarden::new(
        dir.path(),
        url,
        env.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    );
    let start = parse_time("2026-01-05T09:00:00Z").unwrap();
    let mut sent: Vec<Sent> = Vec::new();
    let mut inbox_ids: Vec<i64> = Vec::new();
    let seeded = workload::organisation();
    inbox_ids.extend(submit(&cw, &seeded));
    sent.extend(seeded);
    let t0 = Instant::now();
    cw.run(&["tick", "--now", "2026-01-05T08:00:00Z"], PASS_LIMIT);
    let mut typical = t0.elapsed();

    // Act: rounds of commands and passes, most of them killed part-way.
    let mut passes: Vec<Pass> = Vec::new();
    let arrived = || arrivals.lock().unwrap().log.len();
    for r in 0..ROUNDS {
        let now = start + chrono::Duration::days(r as i64);
        let commands = workload::round(r, now, &sent, &mut rng);
        inbox_ids.extend(submit(&cw, &commands));
        sent.extend(commands);
        let now = now.to_rfc3339();
        // Passes at this time until one ends by itself, at most four.
        for _ in 0..4 {
            let cut = Cut::choose(&mut rng, typical);
            let from = arrived();
            let t = Instant::now();
            let killed = run_and_cut(&cw, &now, &cut, || arrived() - from);
            if !killed && matches!(cut, Cut::Never) {
                typical = t.elapsed();
            }
            passes.push(Pass {
                cut: killed.then_some(cut),
                arrivals: from..arrived(),
            });
            if !killed {
                break;
            }
        }
    }

    // Passes without kills, late enough for every clock, until one is idle.
    let idle = format!("{}", PassOutcome::default());
    let late = start + chrono::Duration::days(ROUNDS as i64 + 120);
    let mut quiet = false;
    for hour in 0..8 {
        let at = (late + chrono::Duration::hours(hour)).to_rfc3339();
        let from = arrived();
        let out = cw.run(&["tick", "--now", &at], PASS_LIMIT);
        std::thread::sleep(Duration::from_millis(20));
        passes.push(Pass {
            cut: None,
            arrivals: from..arrived(),
        });
        if out.contains(&idle) {
            quiet = true;
            break;
        }
    }
    assert!(
        quiet,
        "no pass was idle after 8 passes without kills; last:\n{}",
        cw.last_stdout()
    );
    let arrivals = arrivals.lock().unwrap().clone();

    // Assert.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(async {
        let db = Db::connect(url).await.expect("connect");
        let report = checks::all(&db, &sent, &inbox_ids, &arrivals).await;
        db.close().await;
        report
    });
    let kills = passes.iter().filter(|p| p.killed()).count();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for p in passes.iter().filter_map(|p| p.cut) {
        *kinds.entry(p.kind()).or_default() += 1;
    }
    assert!(
        kills >= ROUNDS / 2,
        "too few passes were killed to test anything: {kills}"
    );
    assert!(
        report.escalations >= 100 && report.notifications >= 200,
        "the workload escalated too little to test delivery: {report:?}"
    );
    let twice = duplicates_each_explained_by_a_kill(&passes, &arrivals);
    eprintln!(
        "fault test ({backend}, seed {seed:#x}): {kills} kills {kinds:?} in {} passes, {} commands, {} escalations, \
         {} notifications, {} arrived twice {twice:?} ({:.1} s)",
        passes.len(),
        sent.len(),
        report.escalations,
        report.notifications,
        twice.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Connections delivery uses at once.
const CONNECTIONS: usize = 4;

/// The outbox ids whose message arrived more than once. Each connection marks a message sent as
/// soon as the server accepts it, so a message can arrive again only when a pass was killed
/// between the server accepting it and the mark being committed. While one connection waits to
/// commit its mark, the others go on sending, so that message need not be among the last of its
/// pass: what matters is that its pass was killed. Each arrival but the last must therefore come
/// in a killed pass (or, read by the server just after the kill, be among the first
/// [`CONNECTIONS`] of the next). A repeat from a pass nobody killed is a defect, and fails here.
fn duplicates_each_explained_by_a_kill(passes: &[Pass], arrivals: &Arrivals) -> Vec<i64> {
    let twice: Vec<i64> = arrivals
        .by_outbox_id
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| *id)
        .collect();
    for id in &twice {
        let at: Vec<usize> = (0..arrivals.log.len())
            .filter(|i| arrivals.log[*i] == *id)
            .collect();
        for &i in &at[..at.len() - 1] {
            let p = passes
                .iter()
                .position(|p| p.arrivals.contains(&i))
                .expect("every arrival falls in a pass");
            let in_flight_when_killed = passes[p].killed();
            let read_late =
                p > 0 && passes[p - 1].killed() && i < passes[p].arrivals.start + CONNECTIONS;
            assert!(
                in_flight_when_killed || read_late,
                "outbox row {id}'s message arrived {} times; arrival {i} came in pass #{p} \
                 (killed: {:?}, arrivals {:?}), where no kill explains a repeat",
                at.len(),
                passes[p].cut,
                passes[p].arrivals
            );
        }
    }
    twice
}

/// Submits commands through the CLI; returns their inbox ids.
fn submit(cw: &Casewarden, commands: &[Sent]) -> Vec<i64> {
    let lines: Vec<String> = commands.iter().map(|c| c.body.to_string()).collect();
    std::fs::write(cw.dir.join("commands.jsonl"), lines.join("\n")).unwrap();
    let out = cw.run(&["submit", "commands.jsonl"], Duration::from_secs(30));
    let ids: Vec<i64> = out.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(ids.len(), commands.len(), "{out}");
    ids
}
