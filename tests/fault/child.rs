//! The real `casewarden` binary as a child process in a working directory: every wait has a
//! limit, and a guard kills the child if the test panics or returns while it runs.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running child that is killed (SIGKILL) and reaped when dropped.
pub struct Guard {
    child: Child,
}

impl Guard {
    /// Waits up to `limit`; `None` if the child is still running.
    pub fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.wait_until(limit, || false).ok().flatten()
    }

    /// Waits until the child exits (`Ok(Some)`), `ready` says so (`Ok(None)`), or `limit` passes
    /// (`Err`). Polls every millisecond.
    pub fn wait_until(
        &mut self,
        limit: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<Option<ExitStatus>, ()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Ok(Some(status));
            }
            if ready() {
                return Ok(None);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(());
            }
            std::thread::sleep(left.min(Duration::from_millis(1)));
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        assert!(
            self.wait_for(Duration::from_secs(10)).is_some(),
            "a child did not die within 10 s of SIGKILL"
        );
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How tests run the binary: in `dir`, on `database`, with `env`, its stderr appended to a log.
pub struct Casewarden {
    pub dir: PathBuf,
    pub database: String,
    pub env: Vec<(String, String)>,
    log: PathBuf,
    stdout: PathBuf,
}

impl Casewarden {
    pub fn new(dir: &Path, database: &str, env: Vec<(String, String)>) -> Casewarden {
        Casewarden {
            dir: dir.to_path_buf(),
            database: database.to_string(),
            env,
            log: dir.join("casewarden.log"),
            stdout: dir.join("stdout.txt"),
        }
    }

    /// Starts `casewarden ARGS`; its stdout replaces the last child's (children run one at a time).
    pub fn spawn(&self, args: &[&str]) -> Guard {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        writeln!(log, "== casewarden {}", args.join(" ")).unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_casewarden"));
        c.current_dir(&self.dir).env_remove("RUST_LOG");
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CASEWARDEN__")) {
            c.env_remove(k);
        }
        c.envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(["--database", &self.database])
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&self.stdout).unwrap())
            .stderr(log);
        Guard {
            child: c.spawn().unwrap(),
        }
    }

    /// Runs `casewarden ARGS` to its end and returns its stdout; a child that runs past `limit`
    /// (a stalled pass) or fails panics with the end of the log.
    pub fn run(&self, args: &[&str], limit: Duration) -> String {
        let mut child = self.spawn(args);
        let Some(status) = child.wait_for(limit) else {
            child.kill();
            panic!(
                "casewarden {} did not finish within {limit:?} (stalled); log:\n{}",
                args.join(" "),
                self.log_tail()
            );
        };
        self.expect_success(args, status);
        self.last_stdout()
    }

    pub fn expect_success(&self, args: &[&str], status: ExitStatus) {
        assert!(
            status.success(),
            "casewarden {} exited with {status}; log:\n{}",
            args.join(" "),
            self.log_tail()
        );
    }

    /// How long the children's log is: where the next child's lines start.
    pub fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    /// Lines containing `needle` written to the log after `offset`.
    pub fn log_count(&self, offset: u64, needle: &str) -> usize {
        use std::io::{Read, Seek, SeekFrom};
        let mut new = Vec::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.seek(SeekFrom::Start(offset));
            let _ = f.read_to_end(&mut new);
        }
        String::from_utf8_lossy(&new).matches(needle).count()
    }

    pub fn last_stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// The last lines of the children's stderr, for a failure message.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}
