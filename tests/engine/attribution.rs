//! What the log and the inbox say of a command: who its events name as their actor (the user in
//! its `by`, else the API client that submitted it, else `crm`), and which events it wrote (the
//! row's `first_event_id` and `last_event_id`).

use casewarden::db::{Backend, sql};
use casewarden::events::Event;
use serde_json::{Value, json};

use crate::helpers::{Env, rtb_claim};
use crate::on_both_backends;

const T: &str = "2026-01-06T09:00:00Z";

/// Inserts each command as `client` and runs a pass for it; each must be accepted.
async fn accepted_from(env: &Env, client: Option<&str>, commands: &[Value]) {
    for command in commands {
        let id = env.insert_from(client, command).await;
        env.tick(T).await;
        let (status, reason) = env.inbox(id).await;
        assert_eq!(status, "accepted", "{command} from {client:?}: {reason:?}");
    }
}

/// The events written after event `after`, as (kind, actor).
async fn written_after(env: &Env, after: i64) -> Vec<(String, String)> {
    env.all_events()
        .await
        .into_iter()
        .filter(|e| e.id > after)
        .map(|e| (e.kind, e.actor))
        .collect()
}

async fn last_event_id(env: &Env) -> i64 {
    env.all_events().await.last().map_or(0, |e: &Event| e.id)
}

/// The ids of the events inbox row `id` says it wrote, first to last; empty when it says none.
async fn events_of_row(env: &Env, id: i64) -> Vec<i64> {
    let (first, last): (Option<i64>, Option<i64>) =
        sql("SELECT first_event_id, last_event_id FROM inbox WHERE id = $1")
            .bind(id)
            .fetch_one(&env.db)
            .await
            .unwrap();
    match (first, last) {
        (Some(first), Some(last)) => (first..=last).collect(),
        (None, None) => Vec::new(),
        other => panic!("inbox #{id} has half a range: {other:?}"),
    }
}

/// The ids of the events that match, in order.
async fn ids_where(env: &Env, matches: impl Fn(&Event) -> bool) -> Vec<i64> {
    env.all_events()
        .await
        .into_iter()
        .filter(|e| matches(e))
        .map(|e| e.id)
        .collect()
}

fn hold(case_ref: &str, task: &str) -> Value {
    json!({"type": "hold_task", "case_ref": case_ref, "task": task, "until": "2026-02-02", "reason": "tenant in hospital"})
}

fn release(case_ref: &str, task: &str) -> Value {
    json!({"type": "release_task", "case_ref": case_ref, "task": task})
}

on_both_backends! {
    async fn commands_without_by_are_recorded_as_the_api_client_that_submitted_them(env: Env) {
        env.seed_organisation().await;
        let after = last_event_id(&env).await;

        accepted_from(&env, Some("dynamics"), &[
            json!({"type": "upsert_role", "ref": "rtb", "name": "RTB team"}),
            rtb_claim("C-1", "tenant1", "freehold", "2026-01-05"),
            json!({"type": "activate_task", "case_ref": "C-1", "task": "request_previous_landlord_evidence"}),
            hold("C-1", "check_property_address"),
            release("C-1", "check_property_address"),
        ]).await;
        let owner = env.case("C-1").await.case.owner.expect("the case was allocated");
        let other = if owner == "off1" { "off2" } else { "off1" };
        accepted_from(&env, Some("dynamics"), &[json!({"type": "reassign_case", "case_ref": "C-1", "owner": other})]).await;

        let by_commands: Vec<_> = written_after(&env, after).await.into_iter().filter(|(_, actor)| actor != "casewarden").collect();
        let want = ["role_upserted", "case_created", "task_activated", "task_held", "task_released", "owner_changed"];
        assert_eq!(
            by_commands,
            want.map(|k| (k.to_string(), "dynamics".to_string())).to_vec(),
            "every event a command wrote names the client that sent it, and nothing names crm"
        );
    }

    async fn a_user_named_in_by_is_the_actor_whichever_client_submitted_the_command(env: Env) {
        env.seed_organisation().await;
        accepted_from(&env, Some("dynamics"), &[rtb_claim("C-1", "tenant1", "freehold", "2026-01-05")]).await;
        let after = last_event_id(&env).await;
        let attach = |by: Option<&str>| {
            let mut file = json!({"type": "attach_file", "case_ref": "C-1", "name": "RTB1.pdf", "media_type": "application/pdf",
                "uri": "https://dms.example.org/docs/1", "size": 1000});
            if let Some(by) = by {
                file["by"] = json!(by);
            }
            file
        };

        accepted_from(&env, Some("dynamics"), &[
            attach(None),
            attach(Some("off2")),
            json!({"type": "close_case", "case_ref": "C-1", "outcome": "withdrawn", "by": "off2"}),
        ]).await;

        let written = written_after(&env, after).await;
        let attached: Vec<_> = written.iter().filter(|(k, _)| k == "file_attached").map(|(_, a)| a.as_str()).collect();
        assert_eq!(attached, ["dynamics", "off2"], "by wins over the client; without by the client is the actor");
        let closing: Vec<_> = written.iter().skip_while(|(k, _)| k == "file_attached").collect();
        assert!(closing.iter().any(|(k, _)| k == "case_closed"), "{closing:?}");
        assert!(closing.iter().any(|(k, _)| k == "task_cancelled"), "closing cancels the open tasks: {closing:?}");
        assert!(closing.iter().all(|(_, a)| a == "off2"), "everything the close caused is by off2: {closing:?}");
    }

    async fn commands_no_client_submitted_are_recorded_as_the_crm_even_between_a_clients_commands(env: Env) {
        let roles = |r: &str| json!({"type": "upsert_role", "ref": r, "name": format!("Role {r}")});
        // One pass, so a client's name cannot carry over from one row to the next.
        env.submit(&[roles("r1")]).await;
        env.insert_from(Some("dynamics"), &roles("r2")).await;
        env.insert_raw(&roles("r3").to_string()).await;
        env.insert_from(None, &roles("r4")).await;
        env.tick(T).await;

        let actors: Vec<(String, String)> = env.all_events().await.into_iter()
            .map(|e| (e.data.0["role"].as_str().unwrap_or_default().to_string(), e.actor))
            .collect();
        let want = [("r1", "crm"), ("r2", "dynamics"), ("r3", "crm"), ("r4", "crm")];
        assert_eq!(actors, want.map(|(r, a)| (r.to_string(), a.to_string())).to_vec());
    }

    async fn a_release_task_from_a_client_named_casewarden_is_an_early_release_not_the_daemons(env: Env) {
        env.seed_organisation().await;
        env.ok(T, rtb_claim("C-1", "tenant1", "freehold", "2026-01-05")).await;
        env.ok(T, hold("C-1", "check_property_address")).await;

        accepted_from(&env, Some("casewarden"), &[release("C-1", "check_property_address")]).await;

        let released = env.case("C-1").await.events.into_iter().rfind(|e| e.kind == "task_released").unwrap();
        assert_eq!((released.actor.as_str(), released.data.0["reason"].as_str()), ("casewarden", Some("released early")));
        let told: i64 = sql("SELECT COUNT(*) FROM outbox WHERE template = 'task_released'")
            .scalar(&env.db).await.unwrap();
        assert_eq!(told, 0, "only the daemon's release at the date tells the owner");
    }

    async fn an_accepted_command_records_the_range_of_exactly_the_events_it_wrote(env: Env) {
        env.seed_organisation().await;
        // One pass: each command's range must stop where the next command's starts, and leave
        // out what the pass's allocation step writes after all of them.
        let role = env.insert_from(Some("dynamics"), &json!({"type": "upsert_role", "ref": "r1", "name": "Role 1"})).await;
        let first = env.insert_from(Some("dynamics"), &rtb_claim("C-1", "tenant1", "freehold", "2026-01-05")).await;
        let second = env.insert_from(None, &rtb_claim("C-2", "tenant2", "freehold", "2026-01-05")).await;
        env.tick(T).await;

        let of_role = ids_where(&env, |e| e.kind == "role_upserted" && e.data.0["role"] == "r1").await;
        assert_eq!(events_of_row(&env, role).await, of_role);
        for (id, case_ref) in [(first, "C-1"), (second, "C-2")] {
            let allocation = |e: &Event| e.kind == "allocated" || e.kind == "allocation_needed";
            let of_case = ids_where(&env, |e| e.case_ref.as_deref() == Some(case_ref) && !allocation(e)).await;
            assert!(of_case.len() > 2, "creating {case_ref} wrote its case, stage and tasks: {of_case:?}");
            assert_eq!(events_of_row(&env, id).await, of_case, "{case_ref}");
            let allocated = ids_where(&env, |e| e.case_ref.as_deref() == Some(case_ref) && allocation(e)).await;
            assert_eq!(allocated.len(), 1, "the pass allocated {case_ref} after its commands");
        }
    }

    async fn a_rejection_records_its_command_rejected_event_and_a_duplicate_records_none(env: Env) {
        env.seed_organisation().await;
        let mut claim = rtb_claim("C-1", "tenant1", "freehold", "2026-01-05");
        claim["command_id"] = json!("crm-1");
        let original = env.insert_from(Some("dynamics"), &claim).await;
        let repeat = env.insert_from(Some("dynamics"), &claim).await;
        let unknown_case = env.insert_from(Some("dynamics"), &json!({"type": "release_task", "case_ref": "C-9", "task": "t"})).await;
        let not_json = env.insert_raw("{not json").await;
        env.tick(T).await;

        assert_eq!(env.inbox(repeat).await.0, "duplicate");
        assert_eq!(events_of_row(&env, repeat).await, Vec::<i64>::new(), "a duplicate writes no event");
        assert!(!events_of_row(&env, original).await.is_empty(), "the command it repeats wrote events");
        for id in [unknown_case, not_json] {
            assert_eq!(env.inbox(id).await.0, "rejected");
            let rejection = ids_where(&env, |e| e.kind == "command_rejected" && e.data.0["inbox_id"] == id).await;
            assert_eq!(rejection.len(), 1);
            assert_eq!(events_of_row(&env, id).await, rejection, "inbox #{id}");
        }
    }

    async fn a_command_set_aside_after_failing_passes_records_its_command_rejected_event(env: Env) {
        env.seed_organisation().await;
        env.ok(T, rtb_claim("C-1", "tenant1", "freehold", "2026-01-05")).await;
        // Every write of a note fails, as a database fault would.
        match env.db.backend() {
            Backend::Sqlite => {
                sql("CREATE TRIGGER notes_fail BEFORE INSERT ON notes BEGIN SELECT RAISE(ABORT, 'notes are failing'); END")
                    .execute(&env.db).await.unwrap();
            }
            Backend::Postgres => {
                sql("CREATE FUNCTION notes_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'notes are failing'; END $$")
                    .execute(&env.db).await.unwrap();
                sql("CREATE TRIGGER notes_fail BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION notes_fail()")
                    .execute(&env.db).await.unwrap();
            }
        }
        let note = env.insert_from(Some("dynamics"), &json!({"type": "add_note", "case_ref": "C-1", "by": "off1", "text": "hello"})).await;

        let at = casewarden::clock::parse_time(T).unwrap();
        for pass in 1..casewarden::engine::ingest::MAX_ATTEMPTS {
            assert!(env.engine.run_pass(at).await.is_err(), "pass {pass} reports the failing step");
        }
        env.engine.run_pass(at).await.expect("the last pass sets the command aside and goes on");

        let (status, reason) = env.inbox(note).await;
        assert_eq!(status, "rejected");
        assert!(reason.unwrap_or_default().contains("set aside so the queue moves on"));
        let rejection = ids_where(&env, |e| e.kind == "command_rejected" && e.data.0["inbox_id"] == note).await;
        assert_eq!(rejection.len(), 1);
        assert_eq!(events_of_row(&env, note).await, rejection);
    }

    async fn the_inbox_listing_shows_each_rows_client_and_the_events_it_wrote(env: Env) {
        let role = |r: &str| json!({"type": "upsert_role", "ref": r, "name": format!("Role {r}")});
        let mut repeated = role("r2");
        repeated["command_id"] = json!("crm-2");
        let from_client = env.insert_from(Some("dynamics"), &role("r1")).await;
        let first = env.insert_from(None, &repeated).await;
        let duplicate = env.insert_from(None, &repeated).await;
        env.tick(T).await;
        let event = |r: &str| {
            let r = r.to_string();
            move |e: &Event| e.data.0["role"] == r.as_str()
        };
        let (r1, r2) = (ids_where(&env, event("r1")).await[0], ids_where(&env, event("r2")).await[0]);

        let rows = casewarden::report::inbox(&env.db, false, 10).await.unwrap();
        let json = serde_json::to_value(&rows).unwrap();
        let fields = |row: &Value| (row["id"].clone(), row["client"].clone(), row["first_event_id"].clone(), row["last_event_id"].clone());
        assert_eq!(
            json.as_array().unwrap().iter().map(fields).collect::<Vec<_>>(),
            vec![
                (json!(from_client), json!("dynamics"), json!(r1), json!(r1)),
                (json!(first), Value::Null, json!(r2), json!(r2)),
                (json!(duplicate), Value::Null, Value::Null, Value::Null),
            ]
        );
        let text = casewarden::report::inbox_text(&rows);
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
        assert!(lines[0].contains(" dynamics ") && lines[0].ends_with(&format!("  event {r1}")), "{text}");
        assert!(lines[1].ends_with(&format!("  event {r2}")), "{text}");
        assert!(!lines[2].contains("event"), "a duplicate wrote none: {text}");
    }
}
