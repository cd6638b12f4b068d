//! `casewarden status` before, during and after a daemon's run, on both backends; `casewarden
//! config` naming where each setting came from.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Site, organisation, terminate};

#[test]
fn status_on_sqlite() {
    status_tells_the_backlog_the_daemon_its_last_pass_and_the_lock(Site::new(
        None,
        &[("CASEWARDEN__DAEMON__SCHEDULE", "* * * * * *")],
    ));
}

#[test]
fn status_on_postgres() {
    let Some(url) = crate::pg::fresh_database() else {
        return;
    };
    status_tells_the_backlog_the_daemon_its_last_pass_and_the_lock(Site::new(
        Some(&url),
        &[("CASEWARDEN__DAEMON__SCHEDULE", "* * * * * *")],
    ));
}

/// The newest schema version the repository has: the highest number of a migration file.
fn latest_migration() -> i64 {
    std::fs::read_dir(crate::common::repo_path("migrations/sqlite"))
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .split('_')
                .next()?
                .parse()
                .ok()
        })
        .max()
        .unwrap()
}

fn status_tells_the_backlog_the_daemon_its_last_pass_and_the_lock(site: Site) {
    let sqlite = site.cw.database.starts_with("sqlite:");
    site.run(&["migrate"]);
    site.submit(&organisation());

    // No daemon yet: the commands wait.
    let before = site.status();
    assert_eq!(before["schema_version"], latest_migration(), "{before:#}");
    assert_eq!(before["pending_migrations"], serde_json::json!([]));
    assert_eq!(
        before["backlog"]["inbox_pending"]["count"], 12,
        "{before:#}"
    );
    assert!(
        before["backlog"]["inbox_oldest_at"].is_string(),
        "{before:#}"
    );
    assert_eq!(before["instances"], serde_json::json!([]));
    assert_eq!(
        before["writer_lock"]["held"],
        if sqlite {
            Value::Bool(false)
        } else {
            Value::Null
        }
    );
    assert!(before["rules"]["on_disk"].is_string());
    assert!(before["rules"]["in_force"].is_null());

    // A daemon runs passes: it is seen, with its last pass, and the inbox is empty.
    let mut daemon = site.spawn(&["run"]);
    let started = Instant::now();
    let during = loop {
        let s = site.status();
        let first = &s["instances"][0];
        if first["state"] == "running"
            && first["passes"].as_i64() >= Some(1)
            && s["backlog"]["inbox_pending"]["count"] == 0
        {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the daemon never showed a pass: {s:#}\nlog:\n{}",
            site.cw.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let me = &during["instances"][0];
    assert_eq!(me["last_pass_ok"], true, "{during:#}");
    assert_eq!(me["pid"].as_u64(), Some(u64::from(daemon.id())));
    assert!(
        me["last_pass_summary"]
            .as_str()
            .unwrap()
            .contains("commands:")
    );
    assert_eq!(during["rules"]["in_force"], during["rules"]["on_disk"]);
    if sqlite {
        assert_eq!(during["writer_lock"]["held"], true, "{during:#}");
    }
    let text = site.run(&["status"]);
    assert!(text.contains("daemon:    running on"), "{text}");
    assert!(text.contains("the same as the files on disk"), "{text}");

    // Stopped cleanly: it says so, and the lock is free.
    terminate(&daemon);
    assert!(
        daemon
            .wait_for(Duration::from_secs(60))
            .is_some_and(|s| s.success())
    );
    let after = site.status();
    assert_eq!(after["instances"][0]["state"], "stopped", "{after:#}");
    assert!(after["instances"][0]["stopped_at"].is_string());
    if sqlite {
        assert_eq!(after["writer_lock"]["held"], false);
    }
}

#[test]
fn config_names_where_each_setting_came_from_and_hides_passwords() {
    let site = Site::new(
        None,
        &[
            ("CASEWARDEN__MAIL__TRANSPORT", "smtp"),
            ("CASEWARDEN__MAIL__SMTP__HOST", "smtp.example.org"),
        ],
    );
    let file = site.dir.path().join("site.toml");
    std::fs::write(
        &file,
        "[daemon]\nschedule = \"0 */5 * * * *\"\n\
         [[webhooks]]\nname = \"crm\"\nurl = \"https://crm:pa55@crm.example/hook?key=k3y\"\nkinds = [\"*\"]\nsecret_env = \"HOOK_SECRET\"\n",
    )
    .unwrap();
    let out = site.run(&[
        "--config",
        file.to_str().unwrap(),
        "--rules",
        "rules",
        "config",
        "--json",
    ]);
    let shown: Vec<Value> = serde_json::from_str(&out).unwrap();
    let source = |key: &str| {
        shown
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("no {key} in {out}"))["source"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        source("mail.transport"),
        "environment CASEWARDEN__MAIL__TRANSPORT"
    );
    assert_eq!(
        source("mail.smtp.host"),
        "environment CASEWARDEN__MAIL__SMTP__HOST"
    );
    assert_eq!(
        source("daemon.schedule"),
        format!("file {}", file.display())
    );
    assert_eq!(
        source("webhooks[0].secret_env"),
        format!("file {}", file.display())
    );
    assert_eq!(source("rules.dir"), "flag --rules");
    assert_eq!(source("database.url"), "flag --database");
    assert_eq!(source("daemon.watch_rules"), "default");
    for secret in ["pa55", "k3y"] {
        assert!(!out.contains(secret), "{secret} printed: {out}");
    }
    let text = site.run(&["--config", file.to_str().unwrap(), "config"]);
    assert!(text.contains("mail.transport"), "{text}");
    assert!(
        text.contains("# environment CASEWARDEN__MAIL__TRANSPORT"),
        "{text}"
    );
}
