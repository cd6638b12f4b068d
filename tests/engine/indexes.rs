//! Work is found by index, never by scanning every open case: each step's "what is due" query is
//! planned through its partial index. On PostgreSQL sequential scans are priced out first, since
//! on small test tables the planner would rightly prefer them; what the test shows is that the
//! index serves the query.

use casewarden::db::{Backend, sql};
use casewarden::engine::{allocate, due, holds, housing_options, ingest, retention, sla_sweep};
use casewarden::mail::MailSettings;
use casewarden::mail::deliver;
use casewarden::mail::settings::TransportKind;
use casewarden::metrics::database as backlog;
use serde_json::json;

use crate::erasure::jane_and_her_cases;
use crate::helpers::{Env, rtb_claim};
use crate::on_both_backends;

const QUERIES: &[(&str, &str, usize)] = &[
    (ingest::NEXT_COMMAND, "inbox_pending", 0),
    (ingest::PENDING_COMMANDS, "inbox_pending", 1),
    (allocate::DUE_ALLOCATIONS, "cases_allocation_pending", 1),
    (holds::DUE_RELEASES, "tasks_hold_due", 2),
    (retention::UNSCHEDULED, "cases_retention_unscheduled", 1),
    (retention::DUE, "cases_retention_due", 2),
    (housing_options::DUE_PACKS, "pack_requests_due", 2),
    (sla_sweep::DUE_TASK_CHECKPOINTS, "tasks_sla_due", 2),
    (sla_sweep::DUE_STAGE_CHECKPOINTS, "stages_sla_due", 2),
    (deliver::DUE_NOTIFICATIONS, "outbox_due", 2),
    // What a metrics scrape reads.
    (backlog::INBOX_WAITING, "inbox_pending", 1),
    (backlog::INBOX_OLDEST, "inbox_pending", 0),
    (backlog::OUTBOX_WAITING, "outbox_waiting_since", 1),
    (backlog::OUTBOX_OLDEST, "outbox_waiting_since", 0),
    (backlog::OUTBOX_DEAD, "outbox_dead", 1),
];

on_both_backends! {
    async fn every_step_finds_its_due_work_through_an_index(env: Env) {
        let mut conn = env.db.begin().await.unwrap();
        if env.db.backend() == Backend::Postgres {
            sql("SET LOCAL enable_seqscan = off").execute(&mut conn).await.unwrap();
        }
        for (query, index, params) in QUERIES {
            let plan: Vec<String> = match env.db.backend() {
                Backend::Sqlite => {
                    let text = format!("EXPLAIN QUERY PLAN {query}");
                    let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(text));
                    for _ in 0..*params {
                        q = q.bind("2026-01-01T00:00:00+00:00");
                    }
                    let casewarden::db::TxConn::Sqlite(tx) = &mut conn.conn else { unreachable!() };
                    q.fetch_all(&mut **tx).await.unwrap().into_iter().map(|r| r.3).collect()
                }
                Backend::Postgres => {
                    // Two parameters are a time and a batch size; one alone is a batch size.
                    let bound = match params {
                        2 => query.replace("$1", "'2026-01-01T00:00:00Z'").replace("$2", "10"),
                        _ => query.replace("$1", "10"),
                    };
                    let text = format!("EXPLAIN {bound}");
                    let casewarden::db::TxConn::Postgres(tx) = &mut conn.conn else { unreachable!() };
                    sqlx::query_as::<_, (String,)>(sqlx::AssertSqlSafe(text)).fetch_all(&mut **tx).await.unwrap().into_iter().map(|r| r.0).collect()
                }
            };
            let plan = plan.join("\n");
            assert!(plan.contains(index), "{query}\nis not planned through {index}:\n{plan}");
            assert!(!plan.contains("Seq Scan") && !plan.contains("SCAN tasks\n") && !plan.lines().any(|l| l.trim() == "SCAN tasks"), "{plan}");
        }
    }
}

on_both_backends! {
    async fn whether_anything_is_due_is_asked_through_every_steps_index(env: Env) {
        let question = due::question(&[due::STEP_QUERIES, &[deliver::DUE_NOTIFICATIONS]].concat());
        let mut conn = env.db.begin().await.unwrap();
        let plan: String = match env.db.backend() {
            Backend::Sqlite => {
                let text = format!("EXPLAIN QUERY PLAN {question}");
                let q = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(text)).bind("2026-01-01T00:00:00+00:00");
                let casewarden::db::TxConn::Sqlite(tx) = &mut conn.conn else { unreachable!() };
                q.fetch_all(&mut **tx).await.unwrap().into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
            }
            Backend::Postgres => {
                // The plan the daemon gets once PostgreSQL has stopped planning for each time it
                // is given: one that does not know the time.
                sql("SET LOCAL enable_seqscan = off").execute(&mut conn).await.unwrap();
                sql("SET LOCAL plan_cache_mode = force_generic_plan").execute(&mut conn).await.unwrap();
                let casewarden::db::TxConn::Postgres(tx) = &mut conn.conn else { unreachable!() };
                let prepare = format!("PREPARE due (timestamptz) AS {question}");
                sqlx::raw_sql(sqlx::AssertSqlSafe(prepare)).execute(&mut **tx).await.unwrap();
                let text = "EXPLAIN EXECUTE due ('2026-01-01T00:00:00Z')";
                let plan = sqlx::query_as::<_, (String,)>(text).fetch_all(&mut **tx).await.unwrap();
                sqlx::raw_sql("DEALLOCATE due").execute(&mut **tx).await.unwrap();
                let plan = plan.into_iter().map(|r| r.0).collect::<Vec<_>>().join("\n");
                // Each query keeps its order and limit, and so reads its index from the first
                // due row: an `EXISTS` that lost them would read the whole table when nothing is.
                let limits = plan.lines().filter(|l| l.contains("Limit")).count();
                assert_eq!(limits, QUERIES[1..10].len(), "{plan}");
                plan
            }
        };
        for (_, index, _) in &QUERIES[1..10] {
            assert!(plan.contains(index), "the question is not planned through {index}:\n{plan}");
        }
        let scan = |l: &str| l.starts_with("SCAN ") && !l.contains(" USING ") && !["SCAN CONSTANT ROW", "SCAN found"].contains(&l);
        assert!(!plan.contains("Seq Scan") && !plan.lines().any(|l| scan(l.trim())), "{plan}");
    }
}

/// Whether `query`, a step's due query, finds a row at `now`.
async fn finds(
    db: &casewarden::db::Db,
    query: &'static str,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    let count: &'static str =
        Box::leak(format!("SELECT COUNT(*) FROM ({query}) q").into_boxed_str());
    let q = sql(count);
    let q = match query.ends_with("LIMIT $2") {
        true => q.bind(now).bind(1_i64),
        false => q.bind(1_i64),
    };
    q.scalar::<i64>(db).await.unwrap() > 0
}

/// What each step's due query (`QUERIES[1..10]`, listed apart from the engine's own list so
/// that a step left out of it is caught) looks for.
const FOR: [&str; 9] = [
    "commands",
    "allocations",
    "holds",
    "unscheduled retention",
    "retention",
    "packs",
    "task checkpoints",
    "stage checkpoints",
    "mail",
];

/// Asks whether anything is due at `now` and checks the answer against each step's own query;
/// returns what the steps would find.
async fn agrees(env: &Env, now: &str) -> Vec<&'static str> {
    let now = casewarden::clock::parse_time(now).unwrap();
    let mut found = Vec::new();
    for ((query, ..), what) in QUERIES[1..10].iter().zip(FOR) {
        if finds(&env.db, query, now).await {
            found.push(what);
        }
    }
    let answer = due::anything(&env.db, now, true).await;
    assert_eq!(
        answer,
        !found.is_empty(),
        "at {now} the steps would find {found:?}"
    );
    found
}

on_both_backends! {
    async fn a_pass_runs_its_steps_exactly_when_one_of_them_has_something_due(env: Env) {
        let mail = tempfile::tempdir().unwrap();
        let mut env = env;
        env.deliver_with(MailSettings { transport: TransportKind::File, dir: mail.path().to_path_buf(), ..MailSettings::default() });
        jane_and_her_cases(&env).await;
        let mut seen: Vec<&'static str> = Vec::new();
        let mut idle = 0;
        let mut step = async |env: &Env, now: &str, commands: &[serde_json::Value]| {
            env.submit(commands).await;
            let found = agrees(env, now).await;
            idle += usize::from(found.is_empty());
            seen.extend(found);
            env.tick(now).await;
        };
        step(&env, "2026-03-02T11:00:00Z", &[rtb_claim("E-2", "jane", "freehold", "2026-03-02")]).await;
        step(&env, "2026-03-02T11:00:00Z", &[]).await;
        for day in 3..=31 {
            step(&env, &format!("2026-03-{day:02}T09:00:00Z"), &[]).await;
        }
        // Rows written straight into the tables: a case left pending allocation, a pack asked
        // for, a notification waiting for its retry, a closed case without a retention date.
        sql("UPDATE cases SET allocation = 'pending', owner = NULL WHERE case_ref = 'E-2'").execute(&env.db).await.unwrap();
        sql("INSERT INTO pack_requests (case_id, requested_at, requested_by, due_at) SELECT id, $1, 'ho1', $1 FROM cases WHERE case_ref = 'HO-1'")
            .bind(casewarden::clock::parse_time("2026-04-01T08:00:00Z").unwrap()).execute(&env.db).await.unwrap();
        sql("UPDATE outbox SET status = 'pending', sent_at = NULL, next_attempt_at = $1 WHERE id = (SELECT MIN(id) FROM outbox)")
            .bind(casewarden::clock::parse_time("2026-04-01T08:00:00Z").unwrap()).execute(&env.db).await.unwrap();
        step(&env, "2026-04-01T09:00:00Z", &[]).await;
        step(&env, "2026-04-02T09:00:00Z", &[json!({"type": "close_case", "case_ref": "E-1", "outcome": "withdrawn"})]).await;
        sql("UPDATE cases SET retention_rule = NULL, retention_due_at = NULL WHERE case_ref = 'E-1'").execute(&env.db).await.unwrap();
        step(&env, "2026-04-03T09:00:00Z", &[]).await;
        for year in 2027..=2040 {
            step(&env, &format!("{year}-06-01T09:00:00Z"), &[]).await;
            step(&env, &format!("{year}-06-01T09:00:00Z"), &[]).await;
        }
        assert!(idle > 0, "some pass had nothing due");
        seen.sort_unstable();
        seen.dedup();
        let mut every = FOR.to_vec();
        every.sort_unstable();
        assert_eq!(seen, every, "each step had something due at some point");
    }
}
