//! systemd's side of the daemon, through a notify socket of the test's own: more time asked for
//! while migrations run, READY, watchdog pings while passes complete and none while a pass is
//! stuck, STOPPING.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{Site, terminate, with_env};

/// The notify socket systemd would listen on.
struct Notify {
    socket: UnixDatagram,
}

impl Notify {
    fn bind(dir: &Path) -> (Notify, String) {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        (Notify { socket }, path.to_str().unwrap().to_string())
    }

    /// The next message within `limit`, if one comes.
    fn next(&self, limit: Duration) -> Option<String> {
        self.socket
            .set_read_timeout(Some(limit.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Every message until one contains `needle` (included), within `limit`.
    fn until(&self, needle: &str, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Some(message) = self.next(left) else {
                break;
            };
            let found = message.contains(needle);
            seen.push(message);
            if found {
                return seen;
            }
        }
        panic!("no {needle} within {limit:?}; received {seen:?}");
    }

    /// Every message received within `span`.
    fn during(&self, span: Duration) -> Vec<String> {
        let deadline = Instant::now() + span;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Some(message) = self.next(left) {
                seen.push(message);
            }
        }
        seen
    }
}

fn pings(messages: &[String]) -> usize {
    messages
        .iter()
        .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
        .count()
}

#[test]
fn the_daemon_asks_for_time_to_migrate_then_pings_the_watchdog_while_passes_complete() {
    let site = Site::new(None, &[("CASEWARDEN__DAEMON__SCHEDULE", "* * * * * *")]);
    let (notify, socket) = Notify::bind(site.dir.path());
    let mut cw = with_env(
        &site.cw,
        &[("NOTIFY_SOCKET", &socket), ("WATCHDOG_USEC", "1000000")],
    );

    // A new database: migrations run before READY, with more time asked for.
    let mut daemon = cw.spawn(&["run"]);
    let started = notify.until("READY=1", Duration::from_secs(60));
    assert!(
        started[..started.len() - 1]
            .iter()
            .any(|m| m.contains("EXTEND_TIMEOUT_USEC=")),
        "no EXTEND_TIMEOUT_USEC before READY while migrating: {started:?}"
    );
    // Half the watchdog interval between pings: about six in three seconds.
    let running = notify.during(Duration::from_secs(3));
    assert!(pings(&running) >= 4, "too few pings: {running:?}");
    assert!(
        running.iter().any(|m| m.contains("STATUS=last pass")),
        "no STATUS after a pass: {running:?}"
    );
    terminate(&daemon);
    notify.until("STOPPING=1", Duration::from_secs(30));
    assert!(
        daemon
            .wait_for(Duration::from_secs(30))
            .is_some_and(|s| s.success())
    );

    // Migrated already: nothing to ask more time for.
    cw = with_env(
        &site.cw,
        &[("NOTIFY_SOCKET", &socket), ("WATCHDOG_USEC", "1000000")],
    );
    let daemon = cw.spawn(&["run"]);
    let started = notify.until("READY=1", Duration::from_secs(60));
    assert!(
        !started.iter().any(|m| m.contains("EXTEND_TIMEOUT_USEC=")),
        "asked for more time with nothing to migrate: {started:?}"
    );
    terminate(&daemon);
    notify.until("STOPPING=1", Duration::from_secs(30));
}

#[test]
fn a_pass_stuck_longer_than_the_watchdog_stops_the_pings_until_it_ends() {
    let Some(url) = crate::pg::fresh_database() else {
        return;
    };
    let site = Site::new(
        Some(&url),
        &[("CASEWARDEN__DAEMON__SCHEDULE", "* * * * * *")],
    );
    let (notify, socket) = Notify::bind(site.dir.path());
    let cw = with_env(
        &site.cw,
        &[("NOTIFY_SOCKET", &socket), ("WATCHDOG_USEC", "2000000")],
    );
    let daemon = cw.spawn(&["run"]);
    notify.until("READY=1", Duration::from_secs(60));
    notify.until("WATCHDOG=1", Duration::from_secs(10));

    // Another session takes the inbox and keeps it: the next pass waits on the lock, for ever.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut locker = rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
        sqlx::query("LOCK TABLE inbox IN ACCESS EXCLUSIVE MODE")
            .execute(&mut conn)
            .await
            .unwrap();
        conn
    });
    let log = cw.log_len();
    let stuck = Instant::now();
    while cw.log_count(log, "longer than the watchdog allows") == 0 {
        assert!(
            stuck.elapsed() < Duration::from_secs(20),
            "the stuck pass was never reported; log:\n{}",
            cw.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // What was sent before the report is already queued; after it, nothing for longer than the
    // watchdog: systemd would have restarted the service.
    let _queued = notify.during(Duration::from_millis(200));
    let silent = notify.during(Duration::from_secs(3));
    assert_eq!(pings(&silent), 0, "pings during a stuck pass: {silent:?}");

    // The lock goes, the pass ends, the pings resume.
    rt.block_on(async {
        sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    });
    notify.until("WATCHDOG=1", Duration::from_secs(10));
    terminate(&daemon);
    notify.until("STOPPING=1", Duration::from_secs(30));
}
