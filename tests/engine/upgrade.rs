//! Upgrading a database: schema version 17 takes personal data out of events written before it
//! (note texts, file names and locations, typed reasons and outcomes, answers, the explanation
//! of a pack's advice), keeping every value in its table, and leaves each event valid against
//! the published schema.

use casewarden::db::{Db, sql};
use serde_json::{Value, json};

use crate::common::repo_path;

/// Migrates `db` up to, not including, `version`, with the migrations shipped in the repository.
async fn migrate_before(db: &Db, version: i64) {
    let dir = repo_path(match db {
        Db::Sqlite(_) => "migrations/sqlite",
        _ => "migrations/postgres",
    });
    let mut migrator = sqlx::migrate::Migrator::new(dir).await.expect("migrations");
    let kept: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version < version)
        .cloned()
        .collect();
    migrator.migrations = kept.into();
    match db {
        Db::Sqlite(pool) => migrator.run(pool).await.expect("migrate"),
        Db::Postgres(pool) => migrator.run(pool).await.expect("migrate"),
        Db::Pinned(_) => unreachable!("a test database is a pool"),
    }
}

/// Events as casewarden wrote them before schema version 17, about an applicant called Jane.
fn old_events() -> Vec<(&'static str, Value)> {
    vec![
        (
            "note_added",
            json!({"note_id": 1, "text": "Jane rang from 07700 900123"}),
        ),
        (
            "file_attached",
            json!({"attachment_id": 1, "name": "tenancy-jane.pdf", "media_type": "application/pdf",
            "uri": "https://dms.example.org/jane", "size": 10, "sha256": null}),
        ),
        (
            "task_skipped",
            json!({"stage": "application", "task": "request_previous_landlord_evidence", "reason": "Jane has lived here 30 years"}),
        ),
        (
            "task_skipped",
            json!({"stage": "application", "task": "check_signatories", "reason": null}),
        ),
        (
            "task_completed",
            json!({"stage": "application", "task": "check_property_address", "at": "2026-01-06T10:00:00Z", "outcome": "Jane's address confirmed"}),
        ),
        (
            "task_completed",
            json!({"stage": "application", "task": "check_previous_tenancies", "at": "2026-01-06T10:00:00Z", "outcome": null}),
        ),
        (
            "task_held",
            json!({"stage": "application", "task": "register_claim", "until": "2026-01-09T09:00:00Z", "reason": "Jane in hospital"}),
        ),
        (
            "enquiry_submitted",
            json!({"form": "private_renting", "form_version": "1", "submission": 2,
            "changes": [{"question": "household", "from": null, "to": "Jane and two children"}, {"question": "monthly_rent", "from": 900, "to": 950}]}),
        ),
        (
            "pack_rendered",
            json!({"version": 1, "requested_by": "ho1", "statements": ["a"],
            "advice": [{"statement": "a", "section": "s", "chosen": true, "why": "answers.household = \"Jane\""},
                       {"statement": "b", "section": "s", "chosen": false, "why": "failed", "error": "no Jane"}],
            "files": [{"attachment_id": 2, "name": "jane.html", "media_type": "text/html", "uri": "file:///packs/jane.html", "size": 1, "sha256": "ab"}],
            "sent_to_applicant": 0, "not_sent": null}),
        ),
    ]
}

async fn upgrade(db: Db) {
    migrate_before(&db, 17).await;
    let case: i64 = sql(
        "INSERT INTO cases (case_ref, kind, scheme, country, definition_id, definition_version, received_at, created_at, calendar) \
         VALUES ('OLD-1', 'home_buy', 'right_to_buy', 'england', 'right_to_buy-england', 'old', $1, $1, 'england-and-wales') RETURNING id",
    )
    .bind(chrono::Utc::now())
    .scalar(&db)
    .await
    .unwrap();
    let stage: i64 = sql("INSERT INTO stages (case_id, stage, master_stage, entered_at) VALUES ($1, 'application', 'application', $2) RETURNING id")
        .bind(case)
        .bind(chrono::Utc::now())
        .scalar(&db)
        .await
        .unwrap();
    for (task, status) in [
        ("request_previous_landlord_evidence", "skipped"),
        ("check_signatories", "skipped"),
        ("register_claim", "on_hold"),
    ] {
        sql("INSERT INTO tasks (case_id, stage_id, task, mandatory, activation, status) VALUES ($1, $2, $3, $4, 'manual', $5)")
            .bind(case)
            .bind(stage)
            .bind(task)
            .bind(false)
            .bind(status)
            .execute(&db)
            .await
            .unwrap();
    }
    for (kind, data) in old_events() {
        sql("INSERT INTO events (case_id, case_ref, at, kind, actor, data) VALUES ($1, 'OLD-1', $2, $3, 'off1', $4)")
            .bind(case)
            .bind(chrono::Utc::now())
            .bind(kind)
            .bind(data)
            .execute(&db)
            .await
            .unwrap();
    }

    db.migrate()
        .await
        .expect("the upgrade to the current schema");

    let events: Vec<(String, sqlx::types::Json<Value>)> =
        sql("SELECT kind, data FROM events ORDER BY id")
            .fetch_all(&db)
            .await
            .unwrap();
    for (kind, data) in &events {
        assert!(
            !data.0.to_string().contains("Jane") && !data.0.to_string().contains("jane"),
            "{kind}: {}",
            data.0
        );
    }
    let data: Vec<&Value> = events.iter().map(|(_, d)| &d.0).collect();
    assert_eq!(*data[0], json!({"note_id": 1}));
    assert_eq!(
        *data[1],
        json!({"attachment_id": 1, "media_type": "application/pdf", "size": 10, "sha256": null})
    );
    assert_eq!(data[2]["reason_given"], true);
    assert_eq!(data[3]["reason_given"], false);
    assert_eq!(data[4]["outcome_given"], true);
    assert_eq!(data[5]["outcome_given"], false);
    assert_eq!(
        *data[6],
        json!({"stage": "application", "task": "register_claim", "until": "2026-01-09T09:00:00Z"})
    );
    assert_eq!(data[7]["changed"], json!(["household", "monthly_rent"]));
    assert_eq!(
        data[8]["advice"],
        json!([{"statement": "a", "section": "s", "chosen": true, "failed": false},
               {"statement": "b", "section": "s", "chosen": false, "failed": true}])
    );
    assert_eq!(
        data[8]["files"],
        json!([{"attachment_id": 2, "media_type": "text/html", "size": 1, "sha256": "ab"}])
    );
    // The reason for a skip is kept on its task, where erasure reaches it.
    let reasons: Vec<(String, Option<String>)> =
        sql("SELECT task, skip_reason FROM tasks WHERE status = 'skipped' ORDER BY task")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        reasons,
        [
            ("check_signatories".to_string(), None),
            (
                "request_previous_landlord_evidence".to_string(),
                Some("Jane has lived here 30 years".to_string())
            )
        ]
    );
    crate::helpers::events_match_the_schema(&db).await;
    // And the log is append-only again.
    let refused = sql("UPDATE events SET actor = 'someone'")
        .execute(&db)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("events are append-only"),
        "{refused}"
    );
}

#[tokio::test]
async fn an_upgrade_takes_personal_data_out_of_old_events_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    upgrade(Db::connect(&url).await.unwrap()).await;
}

#[tokio::test]
async fn an_upgrade_takes_personal_data_out_of_old_events_on_postgres() {
    if let Some(url) = crate::pg::fresh_database() {
        upgrade(Db::connect(&url).await.unwrap()).await;
    }
}
