//! `casewarden backup`: a copy taken while a pass fires escalations is consistent, restores, and
//! a daemon on the restored copy carries on to the same end as the original, firing nothing
//! twice and missing nothing.

use std::time::{Duration, Instant};

use casewarden::db::{Db, sql};

use crate::support::{Site, claims, organisation};

/// What two databases must agree on after the same passes: every escalation (item, level,
/// repetition), the events by kind, the notifications by template and recipient.
#[derive(Debug, PartialEq, Eq)]
struct Fired {
    escalations: Vec<(String, i64, String, i64)>,
    events: Vec<(String, i64)>,
    outbox: Vec<(String, Option<String>, i64)>,
}

fn fired(url: &str) -> Fired {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = Db::connect_existing(url).await.unwrap();
        let fired = Fired {
            escalations: sql("SELECT item_kind, item_id, level, repetition FROM escalations ORDER BY item_kind, item_id, level, repetition")
                .fetch_all(&db)
                .await
                .unwrap(),
            events: sql("SELECT kind, COUNT(*) FROM events GROUP BY kind ORDER BY kind")
                .fetch_all(&db)
                .await
                .unwrap(),
            outbox: sql("SELECT template, recipient_ref, COUNT(*) FROM outbox GROUP BY template, recipient_ref ORDER BY template, recipient_ref")
                .fetch_all(&db)
                .await
                .unwrap(),
        };
        db.close().await;
        fired
    })
}

#[test]
fn a_backup_taken_while_a_pass_fires_restores_and_the_daemon_carries_on_firing_nothing_twice() {
    // Small batches: the pass commits many times, and the copy lands between two of them.
    let batches = [("CASEWARDEN__ENGINE__BATCH_SIZE", "5")];
    let site = Site::new(None, &batches);
    site.submit(&organisation());
    site.submit(&claims(120, "2026-01-05"));
    site.run(&["tick", "--now", "2026-01-05T10:00:00Z"]);
    let original = site.cw.database.clone();
    let before = fired(&original);

    // Weeks later every clock has run out: a long pass of escalations. The copy is taken as
    // soon as the first has fired, while the pass goes on.
    let late = "2026-04-01T10:00:00Z";
    let log = site.cw.log_len();
    let mut pass = site.spawn(&["tick", "--now", late]);
    let waited = pass.wait_until(Duration::from_secs(60), || {
        site.cw.log_count(log, "escalation fired") >= 1
    });
    assert!(
        matches!(waited, Ok(None)),
        "the pass ended or stalled before its first escalation: {waited:?}; log:\n{}",
        site.cw.log_tail()
    );
    let copy = site.dir.path().join("backup.db");
    let copied = Instant::now();
    let out = site.run(&["backup", copy.to_str().unwrap()]);
    assert!(out.contains("checked by SQLite's integrity check"), "{out}");
    let still_running = pass.wait_for(Duration::ZERO).is_none();
    let status = pass
        .wait_for(Duration::from_secs(120))
        .expect("the pass ended");
    assert!(status.success());
    eprintln!(
        "backup taken in {:?}, the pass {} running when it was done",
        copied.elapsed(),
        if still_running { "still" } else { "no longer" }
    );

    // The copy holds a moment inside the pass: some escalations, not all; each with its event
    // and its notifications, as one transaction wrote them.
    let after_pass = fired(&original);
    let in_copy = fired(&format!("sqlite://{}", copy.display()));
    assert!(
        in_copy.escalations.len() > before.escalations.len(),
        "the copy was taken before the first escalation was committed"
    );
    assert!(
        in_copy.escalations.len() < after_pass.escalations.len() || !still_running,
        "the copy holds the whole pass although it was taken during it"
    );
    // A backup never overwrites.
    let mut again = site.spawn(&["backup", copy.to_str().unwrap()]);
    assert!(!again.wait_for(Duration::from_secs(60)).unwrap().success());

    // Restore: the copy becomes the database of a second site, whose daemon runs the same
    // passes as the original from the moment the copy holds.
    let restored = Site::new(None, &batches);
    std::fs::copy(&copy, restored.dir.path().join("casewarden.db")).unwrap();
    for now in [
        late,
        "2026-06-01T10:00:00Z",
        "2026-10-01T10:00:00Z",
        "2027-03-01T10:00:00Z",
    ] {
        site.run(&["tick", "--now", now]);
        restored.run(&["tick", "--now", now]);
    }
    let carried_on = fired(&restored.cw.database);
    let went_on = fired(&original);
    // Every escalation, event and notification of the original, and no other: nothing the
    // copy already held fired again, nothing after it was missed.
    assert_eq!(
        carried_on, went_on,
        "the restored copy came to a different end than the original"
    );
}
