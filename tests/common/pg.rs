//! A throwaway PostgreSQL cluster for the test binary: started on first use on a free loopback
//! port, one fresh database per test, and stopped by a watchdog when the test process exits.
//! Without PostgreSQL the tests on it are skipped, except under CI=true, where that fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub struct Cluster {
    port: u16,
    bin: PathBuf,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(1);
static DURABLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs the cluster with PostgreSQL's default durability settings (fsync, synchronous commit,
/// full page writes), as a production server has them, instead of the tests' faster ones. Call
/// it before the first [`fresh_database`]: benchmarks do.
#[allow(dead_code)]
pub fn keep_default_settings() {
    DURABLE.store(true, Ordering::SeqCst);
}

fn find_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a PostgreSQL program, as the `postgres` user when we are root (initdb refuses root).
fn pg_command(bin: &Path, program: &str) -> Command {
    let exe = bin.join(program);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(exe);
        c
    } else {
        Command::new(exe)
    }
}

fn start() -> Result<Cluster, String> {
    let bin =
        find_bin().ok_or("no PostgreSQL server found under /usr/lib/postgresql (set PG_BIN)")?;
    let root = std::env::temp_dir().join(format!("casewarden-pg-{}", std::process::id()));
    let data = root.join("data");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    if is_root() {
        let status = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&root)
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("cannot chown the cluster directory to postgres".into());
        }
    }
    let out = pg_command(&bin, "initdb")
        .args(["-D"])
        .arg(&data)
        .args(["--auth=trust", "-U", "postgres", "--no-sync"])
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| e.to_string())?
        .local_addr()
        .map_err(|e| e.to_string())?
        .port();
    // The watchdog stops the server and removes its files once this test process has gone.
    let script = r#"
        "$1/postgres" -D "$2/data" -k "$2" -p "$3" -c listen_addresses=127.0.0.1 $5 \
            -c max_connections=200 >"$2/log" 2>&1 &
        pg=$!
        while [ -d "/proc/$4" ]; do sleep 0.5; done
        kill -INT "$pg"; wait "$pg"; rm -rf "$2"
    "#;
    let mut watchdog = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", script, "sh"]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", script, "sh"]);
        c
    };
    watchdog
        .arg(&bin)
        .arg(&root)
        .arg(port.to_string())
        .arg(std::process::id().to_string())
        .arg(match DURABLE.load(Ordering::SeqCst) {
            true => "",
            false => "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
        })
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting postgres: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return Ok(Cluster { port, bin });
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(root.join("log")).unwrap_or_default();
            return Err(format!("postgres did not become ready in 60 s: {log}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A URL to a new, empty database; `None` when PostgreSQL is not available outside CI.
pub fn fresh_database() -> Option<String> {
    let cluster = match CLUSTER.get_or_init(start) {
        Ok(c) => c,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and PostgreSQL could not be started: {e}")
        }
        Err(e) => {
            eprintln!("skipping the PostgreSQL run: {e}");
            return None;
        }
    };
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    );
    let status = Command::new(cluster.bin.join("psql"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &cluster.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-q",
            "-c",
        ])
        .arg(format!("CREATE DATABASE {name}"))
        .stdout(Stdio::null())
        .status()
        .expect("psql runs");
    assert!(status.success(), "CREATE DATABASE {name} failed");
    Some(format!(
        "postgres://postgres@127.0.0.1:{}/{name}",
        cluster.port
    ))
}
