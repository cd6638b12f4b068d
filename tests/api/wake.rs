//! Passes that start when work arrives: a command another process writes straight into the inbox
//! is applied within a second, although the schedule (in these tests) fires once an hour.

use std::time::{Duration, Instant};

use casewarden::db::{Db, sql};

use crate::api_on_both_backends;
use crate::harness::Api;

/// Inserts a command through a connection of its own, as another process would, and returns how
/// long it took the daemon to decide it.
async fn applied_after(other: &Db, n: usize) -> Duration {
    let body = format!(r#"{{"type":"upsert_role","ref":"r{n}","name":"Role {n}"}}"#);
    let start = Instant::now();
    let id: i64 = sql("INSERT INTO inbox (body, received_at) VALUES ($1, $2) RETURNING id")
        .bind(body)
        .bind(casewarden::clock::now())
        .scalar(other)
        .await
        .unwrap();
    loop {
        let (status,): (String,) = sql("SELECT status FROM inbox WHERE id = $1")
            .bind(id)
            .fetch_one(other)
            .await
            .unwrap();
        if status != "pending" {
            assert_eq!(status, "accepted");
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "inbox #{id} still pending after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

api_on_both_backends! {
    async fn a_command_inserted_by_another_process_is_applied_within_a_second(api: Api) {
        let url = api.url.clone();
        let other = Db::connect(&url).await.unwrap();
        // Let the daemon's first pass (at start) finish, so each insert is timed on its own.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut times = Vec::new();
        for n in 0..20 {
            times.push(applied_after(&other, n).await);
        }
        times.sort();
        let worst = *times.last().unwrap();
        assert!(worst < Duration::from_secs(1), "slowest of 20: {worst:?} (all: {times:?})");

        // A burst from another process is applied too, however it coalesces into passes.
        let mut tx = other.begin().await.unwrap();
        for n in 100..150 {
            sql("INSERT INTO inbox (body, received_at) VALUES ($1, $2)")
                .bind(format!(r#"{{"type":"upsert_role","ref":"r{n}","name":"Role"}}"#))
                .bind(casewarden::clock::now())
                .execute(&mut tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let start = Instant::now();
        loop {
            let (pending,): (i64,) = sql("SELECT COUNT(*) FROM inbox WHERE status = 'pending'")
                .fetch_one(&other)
                .await
                .unwrap();
            if pending == 0 {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "{pending} still pending");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        other.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_the_engine_keeps_failing_on_is_retried_on_the_schedule_not_at_once() {
    // SQLite: the watcher sees every commit, including the engine's own record of a failed
    // attempt; only a new command may ring, or three attempts would be spent in a second.
    let api = Api::sqlite(|_| {}).await;
    let other = Db::connect(&api.url).await.unwrap();
    sql("CREATE TRIGGER roles_fail BEFORE INSERT ON roles BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
        .execute(&other)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id: i64 = sql("INSERT INTO inbox (body, received_at) VALUES ($1, $2) RETURNING id")
        .bind(r#"{"type":"upsert_role","ref":"r1","name":"Role"}"#)
        .bind(casewarden::clock::now())
        .scalar(&other)
        .await
        .unwrap();
    // Tried once, at once; then left for the (hourly) schedule.
    let start = Instant::now();
    loop {
        let (attempts,): (i64,) = sql("SELECT attempts FROM inbox WHERE id = $1")
            .bind(id)
            .fetch_one(&other)
            .await
            .unwrap();
        if attempts >= 1 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "never tried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, attempts): (String, i64) = sql("SELECT status, attempts FROM inbox WHERE id = $1")
        .bind(id)
        .fetch_one(&other)
        .await
        .unwrap();
    assert_eq!((status.as_str(), attempts), ("pending", 1));
    other.close().await;
    api.stop().await;
}
