//! Several daemons: on PostgreSQL each serves the API and every command is decided once; on
//! SQLite a second daemon on the same file refuses to start.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::Api;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgresql_each_serve_and_decide_each_command_once() {
    let Some(url) = crate::pg::fresh_database() else {
        return;
    };
    let roomy = |s: &mut casewarden::settings::Settings| s.api.client_concurrency = 64;
    let one = Api::start(&url, tempfile::tempdir().unwrap(), roomy)
        .await
        .unwrap();
    let two = Api::start(&url, tempfile::tempdir().unwrap(), roomy)
        .await
        .unwrap();
    let mut waiting = Vec::new();
    for i in 0..40 {
        let api = if i % 2 == 0 { &one } else { &two };
        let role = json!({"type": "upsert_role", "ref": format!("r{i}"), "name": "R", "command_id": format!("c{i}")});
        waiting.push(async move { api.commands(&api.admin, &role).await });
    }
    for (status, body) in futures_util::future::join_all(waiting).await {
        assert_eq!(status, StatusCode::OK, "{body:#}");
        assert_eq!(body["results"][0]["status"], "accepted", "{body:#}");
        assert_eq!(
            body["results"][0]["event_ids"].as_array().unwrap().len(),
            1,
            "{body:#}"
        );
    }
    let (decided,): (i64,) =
        casewarden::db::sql("SELECT COUNT(*) FROM inbox WHERE status = 'accepted'")
            .fetch_one(&one.db)
            .await
            .unwrap();
    assert_eq!(decided, 40);
    let (events,): (i64,) =
        casewarden::db::sql("SELECT COUNT(*) FROM events WHERE kind = 'role_upserted'")
            .fetch_one(&one.db)
            .await
            .unwrap();
    assert_eq!(events, 40, "each command applied once");
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_sqlite_file_refuses_to_start() {
    let first = Api::sqlite(|_| {}).await;
    let url = format!("sqlite://{}", first.dir.path().join("cases.db").display());
    let refused = Api::start(&url, tempfile::tempdir().unwrap(), |_| {}).await;
    let error = format!(
        "{:#}",
        refused.err().expect("the second daemon must not start")
    );
    assert!(
        error.contains("another casewarden process is already running"),
        "{error}"
    );
    assert_eq!(
        first.get(&first.admin, "/v1/commands/999").await.0,
        StatusCode::NOT_FOUND
    );
    first.stop().await;
}
