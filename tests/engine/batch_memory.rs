//! A batch decided without savepoints remembers the cases its commands touch and keeps its task
//! completions back until the next statement (`db::memory`). What it decides must be exactly what
//! the same commands decide each in a savepoint of its own, where nothing is kept back, and what
//! it remembers must never be a stale copy.

use casewarden::db::case_stage::{CaseStage, case_and_open_stage};
use casewarden::db::{Backend, Completion, sql};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::helpers::{Env, complete, rtb_claim};
use crate::on_both_backends;

const T: &str = "2026-01-05T09:00:00Z";

/// Every command a case goes through in its first two stages: completions that free a task
/// waiting on them, one that ends the stage, a manual task activated then skipped or completed,
/// and a task held and released before it is completed.
fn case_commands(i: usize) -> Vec<Value> {
    let case = format!("M-{i}");
    let c = case.as_str();
    let optional = "request_previous_landlord_evidence";
    let mut out = vec![
        rtb_claim(c, &format!("tenant{}", i % 3 + 1), "freehold", "2026-01-05"),
        json!({"type": "activate_task", "case_ref": c, "task": optional}),
        json!({"type": "complete_task", "case_ref": c, "task": "check_property_address", "by": "off1",
               "outcome": format!("checked {i}")}),
        complete(c, "check_signatories", "off2"),
        // Frees the registration, which waits on the three checks.
        complete(c, "check_previous_tenancies", "off1"),
    ];
    out.push(if i.is_multiple_of(2) {
        json!({"type": "skip_task", "case_ref": c, "task": optional, "by": "off1", "reason": "not needed"})
    } else {
        complete(c, optional, "off1")
    });
    out.extend([
        complete(c, "register_claim", "off2"),
        complete(c, "check_exclusions", "off1"),
        json!({"type": "hold_task", "case_ref": c, "task": "confirm_qualifying_period",
               "until": "2026-01-20T09:00:00Z", "reason": "waiting for the tenant"}),
        json!({"type": "release_task", "case_ref": c, "task": "confirm_qualifying_period"}),
        complete(c, "confirm_qualifying_period", "off1"),
    ]);
    out
}

/// Six cases' commands, the first three interleaved step by step, the others one case after
/// another; then two cases that stay in their first stage.
fn stream() -> Vec<Value> {
    let per_case: Vec<Vec<Value>> = (0..6).map(case_commands).collect();
    let mut out = Vec::new();
    for step in 0..per_case[0].len() {
        out.extend(per_case[..3].iter().map(|c| c[step].clone()));
    }
    out.extend(per_case[3..].iter().flatten().cloned());
    // Cases whose first stage stays open, their clocks running.
    out.push(rtb_claim("M-6", "tenant1", "leasehold", "2026-01-02"));
    out.push(rtb_claim("M-7", "tenant2", "freehold", "2026-01-05"));
    out.push(complete("M-7", "check_signatories", "off1"));
    out
}

/// A task as the commands left it.
#[derive(Debug, PartialEq, sqlx::FromRow)]
struct TaskState {
    case_ref: String,
    stage: String,
    task: String,
    status: String,
    activated_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    completed_by: Option<String>,
    outcome: Option<String>,
    target_at: Option<DateTime<Utc>>,
    sla_state: String,
    next_check_at: Option<DateTime<Utc>>,
    hold_until: Option<DateTime<Utc>>,
    skip_reason: Option<String>,
    target_day: Option<String>,
    stage_status: String,
    stage_next_check_at: Option<DateTime<Utc>>,
    stage_target_day: Option<String>,
}

/// Everything the commands wrote but for a rejection, without the ids: on PostgreSQL a batch takes the ids of its
/// new cases' rows ahead (see `db::new_rows`), so they are in another order across cases.
async fn written(env: &Env) -> (Vec<TaskState>, Vec<Value>) {
    let tasks: Vec<TaskState> = sql(
        "SELECT c.case_ref, s.stage, t.task, t.status, t.activated_at, t.completed_at, t.completed_by, t.outcome, \
         t.target_at, t.sla_state, t.next_check_at, t.hold_until, t.skip_reason, CAST(t.target_day AS TEXT) AS target_day, \
         s.status AS stage_status, s.next_check_at AS stage_next_check_at, CAST(s.target_day AS TEXT) AS stage_target_day \
         FROM tasks t JOIN stages s ON s.id = t.stage_id JOIN cases c ON c.id = t.case_id \
         ORDER BY c.case_ref, s.id, t.id",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    let mut log: Vec<Value> = env
        .all_events()
        .await
        .into_iter()
        .filter(|e| e.kind != "command_rejected")
        .map(|e| json!([e.case_ref, e.kind, e.actor, e.data.0]))
        .collect();
    let inbox: Vec<(String, Option<String>, i64)> = sql(
        "SELECT status, reason, last_event_id - first_event_id FROM inbox WHERE status <> 'rejected' ORDER BY id",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    log.extend(inbox.into_iter().map(|row| json!(row)));
    (tasks, log)
}

async fn another(env: &Env) -> Env {
    match env.db.backend() {
        Backend::Sqlite => Env::sqlite().await,
        Backend::Postgres => Env::postgres().await.expect("a second PostgreSQL database"),
    }
}

/// The first task of the case's open stage named `task`, as the transaction reads it.
fn task_id(case: &CaseStage, task: &str) -> i64 {
    let (_, tasks) = case.open.as_ref().expect("an open stage");
    tasks.iter().find(|t| t.task == task).expect("the task").id
}

on_both_backends! {
    async fn a_batch_decides_exactly_what_its_commands_decide_each_in_a_savepoint(env: Env) {
        let alone = another(&env).await;
        for env in [&env, &alone] {
            env.seed_organisation().await;
        }
        // A command rejected in a batch sends it back to be decided with a savepoint for each
        // command, where nothing is remembered or kept back.
        alone.submit(&[complete("Z-0", "check_signatories", "off1")]).await;
        for env in [&env, &alone] {
            env.submit(&stream()).await;
        }

        let together = env.tick(T).await;
        let each = alone.tick(T).await;

        assert_eq!((together.accepted, together.rejected), (69, 0), "{together}");
        assert_eq!((each.accepted, each.rejected), (69, 1), "{each}");
        let (tasks, log) = written(&env).await;
        assert_eq!(tasks.len(), 6 * 8 + 2 * 5, "five tasks of the first stage and three of the second, per case");
        assert!(tasks.iter().all(|t| t.case_ref.starts_with("M-")));
        let open: Vec<_> = tasks.iter().filter(|t| t.case_ref == "M-6" && t.next_check_at.is_some()).collect();
        assert_eq!(open.len(), 3, "the new case's clocks running: {open:?}");
        let issued: Vec<_> = tasks.iter().filter(|t| t.task == "issue_rtb2").map(|t| t.status.as_str()).collect();
        assert_eq!(issued, ["active"; 6], "each case's notice freed by the completions before it");
        let (tasks_alone, log_alone) = written(&alone).await;
        for (together, alone) in tasks.iter().zip(&tasks_alone) {
            assert_eq!(together, alone);
        }
        for (at, (together, alone)) in log.iter().zip(&log_alone).enumerate() {
            assert_eq!(together, alone, "event or inbox row {at}");
        }
        assert_eq!((tasks.len(), log.len()), (tasks_alone.len(), log_alone.len()));
    }

    async fn what_a_batch_remembers_is_never_a_stale_copy(env: Env) {
        env.seed_organisation().await;
        env.submit(&[
            rtb_claim("N-1", "tenant1", "freehold", "2026-01-05"),
            rtb_claim("N-2", "tenant2", "freehold", "2026-01-05"),
        ])
        .await;
        env.tick(T).await;
        let other: i64 = sql("SELECT id FROM cases WHERE case_ref = 'N-2'").scalar(&env.db).await.unwrap();
        let at: DateTime<Utc> = casewarden::clock::parse_time(T).unwrap();
        let done = |task_id| Completion { task_id, at, by: "off1".into(), outcome: None };
        let status = |id: i64| sql("SELECT status FROM tasks WHERE id = $1").bind(id);

        let mut tx = env.db.begin_write().await.unwrap();
        tx.hold_events();
        let read = case_and_open_stage(&mut tx, "N-1").await.unwrap().unwrap();
        let (address, signatories) = (task_id(&read, "check_property_address"), task_id(&read, "check_signatories"));
        assert!(tx.remembered("N-1").is_some(), "a batch remembers the case it read");

        // A completion kept back shows in the remembered copy at once, and in the table before
        // any statement reads it.
        tx.complete_task(done(address)).await.unwrap();
        let copy = case_and_open_stage(&mut tx, "N-1").await.unwrap().unwrap();
        let (_, tasks) = copy.open.as_ref().unwrap();
        let remembered = tasks.iter().find(|t| t.id == address).unwrap();
        assert_eq!((remembered.status.as_str(), remembered.completed_by.as_deref()), ("completed", Some("off1")));

        // Rows inserted for another case leave it remembered; rows for this case do not.
        let before = tx.as_of();
        sql("SELECT 1").execute(tx.inserting(Some(other))).await.unwrap();
        assert!(tx.remembered("N-1").is_some(), "rows added to another case leave this one remembered");
        assert_ne!(tx.as_of(), before, "rows read before the insert are not current after it");
        sql("SELECT 1").execute(tx.inserting(Some(read.case.id))).await.unwrap();
        assert!(tx.remembered("N-1").is_none(), "rows added to a remembered case make it forgotten");
        assert_eq!(status(address).scalar::<String>(&mut tx).await.unwrap(), "completed");

        // Any statement, whatever it changes, makes the transaction forget what it remembered.
        assert!(tx.remembered("N-1").is_none());
        case_and_open_stage(&mut tx, "N-1").await.unwrap();
        sql("UPDATE tasks SET status = 'skipped' WHERE id = $1").bind(signatories).execute(&mut tx).await.unwrap();
        assert!(tx.remembered("N-1").is_none());
        let again = case_and_open_stage(&mut tx, "N-1").await.unwrap().unwrap();
        let (_, tasks) = again.open.as_ref().unwrap();
        assert_eq!(tasks.iter().find(|t| t.id == signatories).unwrap().status.as_str(), "skipped");

        // Rows read before a statement are not remembered after it.
        let as_of = tx.as_of();
        sql("SELECT 1").execute(&mut tx).await.unwrap();
        tx.remember(as_of, again);
        assert!(tx.remembered("N-1").is_none());

        // A completion still kept back when the transaction commits is written first.
        let previous = task_id(&read, "check_previous_tenancies");
        tx.complete_task(done(previous)).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(status(previous).scalar::<String>(&env.db).await.unwrap(), "completed");
    }
    async fn a_batch_never_gives_a_new_row_the_id_of_a_deleted_one(env: Env) {
        env.seed_organisation().await;
        env.submit(&[rtb_claim("P-1", "tenant1", "freehold", "2026-01-05")]).await;
        env.tick(T).await;
        // The newest task's row taken away by hand, as an operator might.
        let deleted: i64 = sql("SELECT MAX(id) FROM tasks").scalar(&env.db).await.unwrap();
        sql("DELETE FROM tasks WHERE id = $1").bind(deleted).execute(&env.db).await.unwrap();

        env.submit(&[rtb_claim("P-2", "tenant2", "freehold", "2026-01-05")]).await;
        assert_eq!(env.tick(T).await.accepted, 1);

        let ids: Vec<(i64,)> = sql("SELECT t.id FROM tasks t JOIN cases c ON c.id = t.case_id WHERE c.case_ref = 'P-2'")
            .fetch_all(&env.db)
            .await
            .unwrap();
        assert_eq!(ids.len(), 5);
        assert!(ids.iter().all(|(id,)| *id > deleted), "{ids:?} reuse {deleted}");
    }
}
