//! Allocation: new Right to Buy cases allocated by the shipped rules among 49 officers, with
//! little and with much open work; and the rule's evaluations alone.

use std::sync::Arc;

use casewarden::db::{Db, sql};
use casewarden::engine::budget::Budget;
use casewarden::rules::allocation::Roster;
use serde_json::Value;

use crate::baseline::{execute_in, insert, int, json, text, time};
use crate::seed::{self, OFFICERS};
use crate::{Goal, Row, fresh, rate, sized, timed};

const BATCH: i64 = 200;

pub async fn run(key: &str, backend: &'static str, rows: &mut Vec<Row>) {
    let new = sized(20_000);
    for open in [sized(10_000), sized(1_000_000)] {
        let fresh_db = fresh(key).await.expect("database");
        let db = &fresh_db.db;
        seed::organisation(db).await;
        seed::open_work(db, open as i64, 0).await;
        seed::pending_cases(db, new as i64).await;
        let rules = Arc::new(crate::firings::rules());
        let budget = Budget::new(std::time::Duration::from_secs(3600));
        let (outcome, took) = timed(casewarden::engine::allocate::run_once(
            db,
            &rules,
            "allocation_queue",
            seed::now(),
            BATCH,
            &budget,
        ))
        .await;
        let outcome = outcome.expect("allocation");
        assert_eq!(
            (outcome.allocated, outcome.needed),
            (new, 0),
            "every case is allocated"
        );
        let (event,): (sqlx::types::Json<Value>,) =
            sql("SELECT data FROM events WHERE kind = 'allocated' LIMIT 1")
                .fetch_one(db)
                .await
                .expect("an event");
        let base = baseline(key, open as i64, new, &event.0).await;
        rows.push(Row {
            work: format!("new cases allocated, {new} among {open} open tasks"),
            backend,
            engine: rate(new, took),
            baseline: Some(base),
            unit: "/s",
            goal: Goal::Rate(10_000.0),
        });
    }
    if key == "sqlite" {
        rows.push(evaluations().await);
    }
}

/// The shipped allocation rule evaluated for many cases on one thread, with nothing else, as the
/// allocation step evaluates it: the officers given to the rules of a batch of 200 cases are
/// converted once for that batch, each case's facts are built from its row, and each owner
/// chosen counts towards that officer's load for the cases after it.
async fn evaluations() -> Row {
    let fresh_db = fresh("sqlite").await.expect("database");
    let db = &fresh_db.db;
    seed::organisation(db).await;
    seed::pending_cases(db, 1).await;
    let rules = crate::firings::rules();
    let (id,): (i64,) = sql("SELECT id FROM cases LIMIT 1")
        .fetch_one(db)
        .await
        .expect("case");
    let case = casewarden::db::rows::case_by_id(db, id)
        .await
        .expect("case row");
    let def = rules
        .definition(&case.definition_id)
        .expect("definition")
        .clone();
    let script = rules
        .scripts
        .get(def.allocation.as_ref().expect("an allocation rule"))
        .expect("script")
        .clone();
    let officers = casewarden::engine::allocate::officers(db)
        .await
        .expect("officers");
    let n = sized(100_000);
    let sandbox = rules.sandbox.clone();
    let took = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let mut done = 0;
        while done < n {
            let mut roster = Roster::new(officers.clone()).expect("officers");
            for _ in 0..(BATCH as u64).min(n - done) {
                let facts = case.facts(Some(&def));
                let d = roster
                    .allocate(&sandbox, &script, &facts)
                    .expect("decision");
                roster.count_case(d.owner.as_deref().expect("an owner"));
                done += 1;
            }
        }
        started.elapsed()
    })
    .await
    .expect("thread");
    Row {
        work: format!(
            "allocation rule evaluations alone, {n} on one core ({OFFICERS} officers + manager)"
        ),
        backend: "-",
        engine: rate(n, took),
        baseline: None,
        unit: "/s",
        goal: Goal::Rate(100_000.0),
    }
}

/// The same writes with raw SQL, per batch of 200 pending cases in one transaction: each case's
/// owner (round robin), its stage's and tasks' owners, and its `allocated` event.
async fn baseline(key: &str, open: i64, new: u64, event: &Value) -> f64 {
    let fresh_db = fresh(key).await.expect("database");
    let db: &Db = &fresh_db.db;
    seed::organisation(db).await;
    seed::open_work(db, open, 0).await;
    seed::pending_cases(db, new as i64).await;
    let now = seed::now();
    let (done, took) = timed(async {
        let mut done = 0_u64;
        loop {
            let cases: Vec<(i64, String)> = sql(
                "SELECT id, case_ref FROM cases WHERE allocation = 'pending' ORDER BY id LIMIT $1",
            )
            .bind(BATCH)
            .fetch_all(db)
            .await
            .expect("pending");
            if cases.is_empty() {
                return done;
            }
            let owner = |i: usize| format!("off{}", (done as usize + i) % OFFICERS as usize + 1);
            let ids: Vec<i64> = cases.iter().map(|(id, _)| *id).collect();
            let mut tx = db.begin_write().await.expect("begin");
            let when = (0..cases.len())
                .map(|i| format!("WHEN ${} THEN ${}", 2 * i + 1, 2 * i + 2))
                .collect::<Vec<_>>()
                .join(" ");
            let set = format!(
                "UPDATE cases SET allocation = 'allocated', owner = CASE id {when} END WHERE id"
            );
            let head = cases
                .iter()
                .enumerate()
                .flat_map(|(i, (id, _))| [int(*id), text(&owner(i))])
                .collect();
            execute_in(&mut tx, &set, head, &ids).await;
            let copy = "= (SELECT c.owner FROM cases c WHERE c.id = case_id) WHERE case_id";
            execute_in(
                &mut tx,
                &format!("UPDATE stages SET owner {copy}"),
                vec![],
                &ids,
            )
            .await;
            execute_in(
                &mut tx,
                &format!("UPDATE tasks SET owner {copy}"),
                vec![],
                &ids,
            )
            .await;
            insert(
                "events",
                &["case_id", "case_ref", "at", "kind", "actor", "data"],
                cases
                    .iter()
                    .map(|(id, r)| {
                        vec![
                            int(*id),
                            text(r),
                            time(now),
                            text("allocated"),
                            text("casewarden"),
                            json(event),
                        ]
                    })
                    .collect(),
                "",
            )
            .execute(&mut tx)
            .await
            .expect("events");
            tx.commit().await.expect("commit");
            done += cases.len() as u64;
        }
    })
    .await;
    assert_eq!(done, new);
    rate(done, took)
}
