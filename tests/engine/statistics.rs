//! Planner statistics kept up to date for the tables casewarden fills in batches, so that
//! PostgreSQL's foreign key checks look rows up by index however fast a table grew (see
//! `casewarden::db::statistics`). PostgreSQL only: SQLite needs none of it.

use std::time::{Duration, Instant};

use casewarden::db::{Db, sql, statistics};

use crate::helpers::Env;

/// The pages PostgreSQL's statistics say `table` has: 0 until it is first analysed.
async fn pages_known(db: &Db, table: &str) -> i64 {
    sql("SELECT relpages::bigint FROM pg_class WHERE oid = to_regclass($1)")
        .bind(table)
        .scalar(db)
        .await
        .expect("relpages")
}

/// A case to hang escalations on.
async fn a_case(db: &Db) -> i64 {
    sql("INSERT INTO cases (case_ref, kind, scheme, country, definition_id, definition_version, received_at, \
         created_at, calendar) VALUES ('STATS-1', 'home_buy', 'right_to_buy', 'england', 'right_to_buy-england', \
         'test', now(), now(), 'england-and-wales') RETURNING id")
    .scalar(db)
    .await
    .expect("case")
}

/// Escalations of tasks `from` to `to` (about 90 to a page).
fn escalations(case_id: i64, from: i64, to: i64) -> casewarden::db::Sql {
    sql(
        "INSERT INTO escalations (item_kind, item_id, level, case_id, fired_at) \
         SELECT 'task', g, 'amber', $1, now() FROM generate_series($2::bigint, $3::bigint) AS g",
    )
    .bind(case_id)
    .bind(from)
    .bind(to)
}

#[tokio::test]
async fn a_table_is_analysed_each_time_it_has_doubled() {
    let Some(env) = Env::postgres().await else {
        return;
    };
    let db = &env.db;
    assert_eq!(statistics::settle(db).await.unwrap(), Vec::<String>::new());
    let case_id = a_case(db).await;
    escalations(case_id, 1, 3_000).execute(db).await.unwrap();
    assert_eq!(pages_known(db, "escalations").await, 0);

    assert_eq!(statistics::settle(db).await.unwrap(), ["escalations"]);
    let analysed = pages_known(db, "escalations").await;
    assert!(analysed > statistics::MIN_PAGES, "{analysed} pages known");
    assert_eq!(
        statistics::settle(db).await.unwrap(),
        Vec::<String>::new(),
        "not doubled since"
    );

    // Grown by two thirds, not yet doubled: left alone; then more than doubled: analysed.
    escalations(case_id, 3_001, 5_000)
        .execute(db)
        .await
        .unwrap();
    assert_eq!(statistics::settle(db).await.unwrap(), Vec::<String>::new());
    escalations(case_id, 5_001, 8_000)
        .execute(db)
        .await
        .unwrap();
    assert_eq!(statistics::settle(db).await.unwrap(), ["escalations"]);
    assert!(pages_known(db, "escalations").await > 2 * analysed);
}

#[tokio::test]
async fn a_commit_is_followed_by_the_analysis_of_a_table_that_grew() {
    let Some(env) = Env::postgres().await else {
        return;
    };
    let db = &env.db;
    let case_id = a_case(db).await;
    let mut tx = db.begin_write().await.unwrap();
    escalations(case_id, 1, 3_000)
        .execute(&mut tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // A database is looked at once a second at most; each commit after that looks again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while pages_known(db, "escalations").await == 0 {
        assert!(
            Instant::now() < deadline,
            "escalations was never analysed after commits"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        db.begin_write().await.unwrap().commit().await.unwrap();
    }
}
