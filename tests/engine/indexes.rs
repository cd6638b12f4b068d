//! Work is found by index, never by scanning every open case: each step's "what is due" query is
//! planned through its partial index. On PostgreSQL sequential scans are priced out first, since
//! on small test tables the planner would rightly prefer them; what the test shows is that the
//! index serves the query.

use casewarden::db::{Backend, sql};
use casewarden::engine::{allocate, holds, housing_options, ingest, retention, sla_sweep};
use casewarden::mail::deliver;
use casewarden::metrics::database as backlog;

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
