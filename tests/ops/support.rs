//! A working directory with the shipped rules and templates, the binary run in it, and the
//! organisation and cases the tests work on.

use std::time::Duration;

use serde_json::{Value, json};

use crate::child::{Casewarden, Guard};
use crate::common;

/// How long any one command may take before the test calls it stalled.
pub const LIMIT: Duration = Duration::from_secs(120);

pub struct Site {
    pub dir: tempfile::TempDir,
    pub cw: Casewarden,
}

impl Site {
    /// A site on `url` (a new SQLite file in the site's directory when `None`), with the API off
    /// and `env` on top.
    pub fn new(url: Option<&str>, env: &[(&str, &str)]) -> Site {
        let dir = tempfile::tempdir().unwrap();
        common::copy_tree(&common::repo_path("rules"), &dir.path().join("rules"));
        common::copy_tree(
            &common::repo_path("templates"),
            &dir.path().join("templates"),
        );
        let url = url.map_or_else(
            || format!("sqlite://{}", dir.path().join("casewarden.db").display()),
            str::to_string,
        );
        let mut vars = vec![("CASEWARDEN__API__ENABLED".to_string(), "false".to_string())];
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let cw = Casewarden::new(dir.path(), &url, vars);
        Site { dir, cw }
    }

    pub fn run(&self, args: &[&str]) -> String {
        self.cw.run(args, LIMIT)
    }

    pub fn spawn(&self, args: &[&str]) -> Guard {
        self.cw.spawn(args)
    }

    /// Queues commands with `casewarden submit`.
    pub fn submit(&self, commands: &[Value]) {
        let file = self.dir.path().join("commands.jsonl");
        let lines: Vec<String> = commands.iter().map(Value::to_string).collect();
        std::fs::write(&file, lines.join("\n")).unwrap();
        self.run(&["submit", file.to_str().unwrap()]);
    }

    pub fn status(&self) -> Value {
        serde_json::from_str(&self.run(&["status", "--json"])).unwrap()
    }
}

/// The same site's binary with more environment variables.
pub fn with_env(cw: &Casewarden, extra: &[(&str, &str)]) -> Casewarden {
    let mut env = cw.env.clone();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Casewarden::new(&cw.dir, &cw.database, env)
}

/// Sends SIGTERM to a running child.
pub fn terminate(child: &Guard) {
    // SAFETY: kill(2) with a pid of our own child and a valid signal number.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0, "SIGTERM could not be sent");
}

/// The organisation the fault test works in (roles, officers the shipped rules allocate to,
/// applicants), as commands.
pub fn organisation() -> Vec<Value> {
    crate::workload::organisation()
        .into_iter()
        .map(|sent| sent.body)
        .collect()
}

/// `n` Right to Buy claims received on `received` (a date), left alone so their clocks run out.
pub fn claims(n: usize, received: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({
                "type": "create_case", "case_ref": format!("OPS-{i}"), "kind": "home_buy",
                "scheme": "right_to_buy", "country": "england", "applicant": format!("tenant{}", i % 6 + 1),
                "property": {"ref": format!("P-{i}"), "address": "1 Example Road, Leeds", "tenure": "freehold"},
                "received_at": received, "attributes": {"qualifying_period_all_with_landlord": true}
            })
        })
        .collect()
}
