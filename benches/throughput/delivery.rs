//! Notifications delivered by the file transport, as `.eml` files.

use casewarden::db::{Arg, Db, sql};
use casewarden::mail::MailSettings;
use casewarden::mail::settings::TransportKind;

use crate::baseline::{execute_in, time};
use crate::{Goal, Row, fresh, rate, seed, sized, timed};

const BATCH: i64 = 100;

pub async fn run(key: &str, backend: &'static str, rows: &mut Vec<Row>) {
    let n = sized(20_000);
    let fresh_db = fresh(key).await.expect("database");
    let db = &fresh_db.db;
    queue(db, n as i64).await;
    let dir = tempfile::tempdir().expect("mail dir");
    let settings = MailSettings {
        transport: TransportKind::File,
        dir: dir.path().to_path_buf(),
        ..MailSettings::default()
    };
    let mailer = std::sync::Arc::new(casewarden::mail::Mailer::new(&settings).expect("mailer"));
    let rules = crate::firings::rules();
    settle_disk();
    let (outcome, took) = timed(casewarden::mail::deliver::run_once(
        db,
        &mailer,
        &rules.templates,
        &rules.calendars,
        &settings,
        seed::now(),
    ))
    .await;
    let outcome = outcome.expect("delivery");
    assert_eq!(outcome.sent, n, "every notification is sent");
    let files: Vec<_> = std::fs::read_dir(dir.path()).expect("mail dir").collect();
    assert_eq!(files.len() as u64, n, "one file each");
    let sample =
        std::sync::Arc::new(std::fs::read(dir.path().join("outbox-1.eml")).expect("a message"));
    let base = baseline(key, n, sample.clone()).await;
    let alone = files_alone(n, mailer.concurrency(), sample).await;
    rows.push(Row {
        work: format!("notifications delivered, {n}, file transport"),
        backend,
        engine: rate(n, took),
        baseline: Some(base),
        unit: "/s",
        goal: Goal::Rate(10_000.0),
    });
    rows.push(Row {
        work: format!(
            "the same {n} files written alone, on {} threads, no database (the file system's rate)",
            mailer.concurrency()
        ),
        backend: "-",
        engine: alone,
        baseline: None,
        unit: "/s",
        goal: Goal::None,
    });
}

/// Writes back every file written so far, so that a timed part starts with none of the part
/// before it still waiting to reach the disk: without it, each part paid for the writing back of
/// the one before, and the figures depended on the order they ran in.
fn settle_disk() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() }
}

/// How fast this machine's file system takes the messages' files alone: the same files written
/// the same way, on as many threads as the file transport writes on (`threads`), with no
/// database. It bounds delivery by file; but it moves from one minute to the next, so the rows
/// timed a minute before it can come out above it as well as below.
async fn files_alone(n: u64, threads: usize, message: std::sync::Arc<Vec<u8>>) -> f64 {
    let dir = tempfile::tempdir().expect("mail dir");
    let per_thread = n.div_ceil(threads as u64) as i64;
    settle_disk();
    let ((), took) = timed(async {
        let writers: Vec<_> = (0..threads as i64)
            .map(|t| {
                let (path, message) = (dir.path().to_path_buf(), message.clone());
                let ids = (t * per_thread + 1)..=((t + 1) * per_thread).min(n as i64);
                tokio::task::spawn_blocking(move || write_files(&path, ids, &message))
            })
            .collect();
        for writer in writers {
            writer.await.expect("writer");
        }
    })
    .await;
    rate(n, took)
}

/// Writes `message` to `outbox-<id>.eml` in `dir` for each id, as the file transport does:
/// through a temporary file renamed into place.
fn write_files(dir: &std::path::Path, ids: impl IntoIterator<Item = i64>, message: &[u8]) {
    for id in ids {
        let tmp = dir.join(format!(".outbox-{id}.eml.tmp"));
        std::fs::write(&tmp, message).expect("write");
        std::fs::rename(&tmp, dir.join(format!("outbox-{id}.eml"))).expect("rename");
    }
}

/// `n` amber notifications to an officer, due now.
async fn queue(db: &Db, n: i64) {
    let facts = casewarden::mail::render::sample_facts("sla_amber");
    sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO outbox (template, recipient_kind, recipient_ref, recipient_email, facts, status, next_attempt_at, created_at) \
         SELECT 'sla_amber', 'user', 'off1', 'olu@example.org', $2, 'pending', $3, $3 FROM n")
        .bind(n)
        .bind(facts)
        .bind(seed::now())
        .execute(db)
        .await
        .expect("outbox");
}

/// The same writes with raw SQL and the same files: per batch of 100, a transaction claiming the
/// rows, their files written on one blocking thread, and a transaction marking them sent.
async fn baseline(key: &str, n: u64, message: std::sync::Arc<Vec<u8>>) -> f64 {
    let fresh_db = fresh(key).await.expect("database");
    let db = &fresh_db.db;
    queue(db, n as i64).await;
    let dir = tempfile::tempdir().expect("mail dir");
    let now = seed::now();
    settle_disk();
    let (done, took) = timed(async {
        let mut done = 0_u64;
        loop {
            let mut tx = db.begin().await.expect("begin");
            let ids: Vec<(i64,)> = sql("SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2")
                .bind(now).bind(BATCH).fetch_all(&mut tx).await.expect("due");
            let ids: Vec<i64> = ids.into_iter().map(|(id,)| id).collect();
            if ids.is_empty() {
                return done;
            }
            execute_in(&mut tx, "UPDATE outbox SET status = 'claimed', claimed_until = $1 WHERE id", vec![time(now)], &ids).await;
            tx.commit().await.expect("commit");
            let (path, bytes, batch) = (dir.path().to_path_buf(), message.clone(), ids.clone());
            tokio::task::spawn_blocking(move || write_files(&path, batch, &bytes))
                .await
                .expect("writer");
            let mut tx = db.begin_write().await.expect("begin");
            execute_in(&mut tx, "UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, claimed_until = NULL WHERE id",
                vec![Arg::Time(Some(now))], &ids).await;
            tx.commit().await.expect("commit");
            done += ids.len() as u64;
        }
    })
    .await;
    assert_eq!(done, n);
    rate(done, took)
}
