//! Commands decided in batches: a batch of 200 goes in one transaction, and still each command
//! succeeds or fails alone. A rejected command is rejected with its reason and the other 199
//! apply; a command that makes the database fail holds up the ones after it for the passes it is
//! retried in, as it did when each command had a transaction of its own, and then is set aside
//! while the others apply. The events of each command come in the order of the commands, each
//! within the range its inbox row records.

use casewarden::db::{Backend, sql};
use casewarden::events::Event;
use serde_json::{Value, json};

use crate::helpers::{Env, complete, rtb_claim};
use crate::on_both_backends;

const T: &str = "2026-01-05T09:00:00Z";

/// Each inbox row from `from` on, in id order: (id, status, reason, first and last event id).
type Row = (i64, String, Option<String>, Option<i64>, Option<i64>);

async fn rows_from(env: &Env, from: i64) -> Vec<Row> {
    sql("SELECT id, status, reason, first_event_id, last_event_id FROM inbox WHERE id >= $1 ORDER BY id")
        .bind(from)
        .fetch_all(&env.db)
        .await
        .unwrap()
}

/// Every row's events lie in its range, in the order of the rows, and every event between the
/// first row's first and the last row's last belongs to exactly one row: the row whose command
/// wrote it. Gives each row's events.
async fn events_by_row(env: &Env, rows: &[Row]) -> Vec<Vec<Event>> {
    let events = env.all_events().await;
    let mut by_row = Vec::new();
    let mut last_seen = 0;
    for (id, _, _, first, last) in rows {
        let (Some(first), Some(last)) = (first, last) else {
            panic!("inbox #{id} records no events");
        };
        assert!(
            *first > last_seen && first <= last,
            "inbox #{id}: {first}..={last} after {last_seen}"
        );
        last_seen = *last;
        by_row.push(
            events
                .iter()
                .filter(|e| e.id >= *first && e.id <= *last)
                .cloned()
                .collect::<Vec<_>>(),
        );
    }
    let (low, high) = (rows[0].3.unwrap(), rows.last().unwrap().4.unwrap());
    let covered: usize = by_row.iter().map(Vec::len).sum();
    assert_eq!(
        covered,
        events
            .iter()
            .filter(|e| e.id >= low && e.id <= high)
            .count(),
        "an event outside every row's range"
    );
    by_row
}

fn kinds(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

/// Makes every note saying "poison" fail to insert, as a database fault would.
async fn poison_notes(env: &Env) {
    match env.db.backend() {
        Backend::Sqlite => {
            sql(
                "CREATE TRIGGER notes_fail BEFORE INSERT ON notes WHEN NEW.body = 'poison' \
                 BEGIN SELECT RAISE(ABORT, 'notes are failing'); END",
            )
            .execute(&env.db)
            .await
            .unwrap();
        }
        Backend::Postgres => {
            sql("CREATE FUNCTION notes_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.body = 'poison' THEN RAISE EXCEPTION 'notes are failing'; END IF; RETURN NEW; END $$")
                .execute(&env.db).await.unwrap();
            sql("CREATE TRIGGER notes_fail BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION notes_fail()")
                .execute(&env.db).await.unwrap();
        }
    }
}

on_both_backends! {
    async fn one_rejected_command_in_a_batch_of_200_leaves_the_other_199_applied_in_order(env: Env) {
        env.seed_organisation().await;
        let mut commands: Vec<Value> = Vec::new();
        for i in 0..100 {
            let case = format!("B-{i}");
            commands.push(rtb_claim(&case, "tenant1", "freehold", "2026-01-05"));
            commands.push(complete(&case, "check_signatories", "off1"));
        }
        // The 102nd: a completion dated in the future, which validation rejects.
        commands[101]["at"] = json!("2030-01-01T00:00:00Z");
        let ids = env.submit(&commands).await;
        assert_eq!(ids.len(), 200);

        let outcome = env.tick(T).await;

        assert_eq!((outcome.accepted, outcome.rejected), (199, 1), "{outcome}");
        let rows = rows_from(&env, ids[0]).await;
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), ids);
        for (n, (id, status, reason, ..)) in rows.iter().enumerate() {
            if n == 101 {
                assert_eq!(status, "rejected");
                assert!(reason.as_deref().unwrap().contains("is in the future"), "{reason:?}");
            } else {
                assert_eq!((status.as_str(), reason), ("accepted", &None), "inbox #{id}");
            }
        }
        let by_row = events_by_row(&env, &rows).await;
        let created = kinds(&by_row[0]);
        let completed = kinds(&by_row[1]);
        assert_eq!(created[..2], ["case_created", "stage_entered"]);
        assert_eq!(completed[0], "task_completed");
        for (n, events) in by_row.iter().enumerate() {
            let case = format!("B-{}", n / 2);
            if n == 101 {
                assert_eq!(kinds(events), ["command_rejected"]);
                assert_eq!(events[0].data.0["inbox_id"], json!(ids[101]));
                assert_eq!(events[0].case_ref.as_deref(), Some("B-50"));
                continue;
            }
            assert_eq!(&kinds(events), if n % 2 == 0 { &created } else { &completed }, "inbox #{}", ids[n]);
            assert!(events.iter().all(|e| e.case_ref.as_deref() == Some(case.as_str())), "inbox #{}", ids[n]);
        }
        assert_eq!(env.task_status("B-50", "check_signatories").await, "active");
        assert_eq!(env.task_status("B-51", "check_signatories").await, "completed");
    }

    async fn a_command_the_database_fails_on_holds_up_the_rest_of_its_batch_until_it_is_set_aside(env: Env) {
        env.seed_organisation().await;
        env.ok(T, rtb_claim("N-1", "tenant1", "freehold", "2026-01-05")).await;
        poison_notes(&env).await;
        let note = |text: String| json!({"type": "add_note", "case_ref": "N-1", "by": "off1", "text": text});
        let mut commands: Vec<Value> = (0..200).map(|i| note(format!("note {i}"))).collect();
        commands[120] = note("poison".into());
        let ids = env.submit(&commands).await;
        let at = casewarden::clock::parse_time(T).unwrap();
        let status = |env: &Env| {
            let (db, from) = (env.db.clone(), ids[0]);
            async move {
                let rows: Vec<(String, i64)> = sql("SELECT status, attempts FROM inbox WHERE id >= $1 ORDER BY id")
                    .bind(from).fetch_all(&db).await.unwrap();
                rows
            }
        };

        for pass in 1..casewarden::engine::ingest::MAX_ATTEMPTS {
            assert!(env.engine.run_pass(at).await.is_err(), "pass {pass} reports the failing command");
            let rows = status(&env).await;
            assert!(rows[..120].iter().all(|(s, a)| s == "accepted" && *a == 0), "pass {pass}: {:?}", &rows[..120]);
            assert_eq!(rows[120], ("pending".to_string(), pass));
            assert!(rows[121..].iter().all(|(s, _)| s == "pending"), "the commands after it wait, in order");
        }
        env.engine.run_pass(at).await.expect("the last pass sets the command aside and goes on");

        let rows = rows_from(&env, ids[0]).await;
        for (n, (id, status, reason, ..)) in rows.iter().enumerate() {
            if n == 120 {
                assert_eq!(status, "rejected");
                assert!(reason.as_deref().unwrap().contains("could not be applied in 3 passes"), "{reason:?}");
                assert!(reason.as_deref().unwrap().contains("notes are failing"), "{reason:?}");
            } else {
                assert_eq!(status, "accepted", "inbox #{id}");
            }
        }
        let by_row = events_by_row(&env, &rows).await;
        for (n, events) in by_row.iter().enumerate() {
            if n == 120 {
                assert_eq!(kinds(events), ["command_rejected"]);
                continue;
            }
            assert_eq!(kinds(events), ["note_added"], "inbox #{}", ids[n]);
        }
        let bodies: Vec<(String,)> = sql("SELECT body FROM notes ORDER BY id").fetch_all(&env.db).await.unwrap();
        let expected: Vec<String> = (0..200).filter(|i| *i != 120).map(|i| format!("note {i}")).collect();
        assert_eq!(bodies.into_iter().map(|(b,)| b).collect::<Vec<_>>(), expected, "notes in the order of their commands");
    }

    async fn command_ids_are_known_to_a_batch_whether_processed_before_it_or_in_it(env: Env) {
        let role = |r: &str, id: &str| json!({"type": "upsert_role", "ref": r, "name": "R", "command_id": id});
        let first = env.submit(&[role("a", "crm-a")]).await[0];
        env.tick(T).await;
        let ids = env.submit(&[role("a2", "crm-a"), role("b", "crm-b"), role("b2", "crm-b")]).await;
        env.tick(T).await;
        let later = env.submit(&[role("b3", "crm-b")]).await[0];
        env.tick(T).await;

        let mut statuses = Vec::new();
        for id in ids.iter().chain([&later]) {
            statuses.push(env.inbox(*id).await);
        }
        let repeat = |of: i64| Some(format!("command_id \"crm-{}\" was already processed as inbox #{of}; this repeat has no effect", if of == first { "a" } else { "b" }));
        assert_eq!(statuses, [
            ("duplicate".to_string(), repeat(first)),
            ("accepted".to_string(), None),
            ("duplicate".to_string(), repeat(ids[1])),
            ("duplicate".to_string(), repeat(ids[1])),
        ]);
        let remembered: Vec<(String, i64)> = sql("SELECT command_id, inbox_id FROM processed_commands ORDER BY command_id")
            .fetch_all(&env.db).await.unwrap();
        assert_eq!(remembered, [("crm-a".to_string(), first), ("crm-b".to_string(), ids[1])]);
    }

    async fn a_command_too_long_to_be_read_with_its_batch_has_its_command_id_checked_all_the_same(env: Env) {
        env.seed_organisation().await;
        env.ok(T, rtb_claim("L-1", "tenant1", "freehold", "2026-01-05")).await;
        let long = json!({"type": "add_note", "case_ref": "L-1", "by": "off1", "text": "x".repeat(12_000), "command_id": "crm-long"});
        let first = env.submit(&[long.clone(), long.clone()]).await;
        env.tick(T).await;
        let again = env.submit(&[long]).await[0];
        env.tick(T).await;

        assert_eq!(env.inbox(first[0]).await.0, "accepted");
        let repeat = Some(format!("command_id \"crm-long\" was already processed as inbox #{}; this repeat has no effect", first[0]));
        assert_eq!(env.inbox(first[1]).await, ("duplicate".to_string(), repeat.clone()));
        assert_eq!(env.inbox(again).await, ("duplicate".to_string(), repeat));
        assert_eq!(env.case("L-1").await.notes.len(), 1);
    }

    async fn a_large_submission_keeps_the_order_of_its_lines(env: Env) {
        let lines: Vec<String> = (0..1234)
            .map(|i| json!({"type": "upsert_role", "ref": format!("r{i}"), "name": format!("Role {i}")}).to_string())
            .collect();
        let ids = env.submit_raw(&lines.join("\n")).await;
        assert_eq!(ids.len(), lines.len());
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids ascend in the order of the lines");
        let stored: Vec<(i64, String)> = sql("SELECT id, body FROM inbox ORDER BY id").fetch_all(&env.db).await.unwrap();
        assert_eq!(stored.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
        assert_eq!(stored.into_iter().map(|(_, body)| body).collect::<Vec<_>>(), lines);
    }
    async fn a_live_pass_never_records_a_change_before_the_newest_event_of_its_case(env: Env) {
        env.seed_organisation().await;
        // An instance whose clock ran years ahead wrote A-1's events; B-1's are in the past.
        let ahead = "2031-03-02T09:00:00Z";
        env.ok(ahead, rtb_claim("A-1", "tenant1", "freehold", "2031-03-02")).await;
        env.ok(T, rtb_claim("B-1", "tenant1", "freehold", "2026-01-05")).await;
        let note = |case: &str| json!({"type": "add_note", "case_ref": case, "by": "off1", "text": "n"});
        // Together in one batch: the case created in it, noted, then each older case noted twice.
        let ids = env.submit(&[rtb_claim("C-1", "tenant1", "freehold", "2026-01-05"), note("C-1"),
            note("A-1"), note("B-1"), note("A-1"), note("B-1")]).await;
        let before = casewarden::clock::now();
        env.engine.run_live_pass().await.unwrap();
        let after = casewarden::clock::now();

        let mut last: std::collections::HashMap<String, chrono::DateTime<chrono::Utc>> = Default::default();
        for id in ids {
            let (status, reason) = env.inbox(id).await;
            assert_eq!(status, "accepted", "#{id}: {reason:?}");
        }
        for event in env.all_events().await.iter().filter(|e| e.kind == "note_added" || e.kind == "case_created") {
            let case = event.case_ref.clone().unwrap();
            if let Some(previous) = last.get(&case) {
                assert!(event.at >= *previous, "{case}: {} went back before {previous}", event.at);
            }
            last.insert(case, event.at);
        }
        let ahead = casewarden::clock::parse_time(ahead).unwrap();
        assert_eq!(last["A-1"], ahead, "A-1's notes wait for its newest event's time");
        for case in ["B-1", "C-1"] {
            assert!(last[case] >= before && last[case] <= after, "{case} is noted at the wall clock: {}", last[case]);
        }
    }
}
