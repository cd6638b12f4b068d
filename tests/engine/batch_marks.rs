//! A batch in which no command is rejected writes its events and its rows' decisions together
//! when it ends. Each row still records the range of exactly the events its decision wrote, a
//! body that is not a command is rejected without holding up the others, and a row that a writer
//! outside the engine changes while the batch runs is left as that writer left it.

use casewarden::db::{Backend, Sql, sql};
use serde_json::{Value, json};

use crate::helpers::{Env, complete, rtb_claim};
use crate::on_both_backends;

const T: &str = "2026-01-05T09:00:00Z";

/// (id, status, first and last event id) of each inbox row, in id order.
async fn rows(env: &Env) -> Vec<(i64, String, Option<i64>, Option<i64>)> {
    sql("SELECT id, status, first_event_id, last_event_id FROM inbox ORDER BY id")
        .fetch_all(&env.db)
        .await
        .unwrap()
}

fn claim(case: &str) -> Value {
    let mut claim = rtb_claim(case, "tenant1", "freehold", "2026-01-05");
    claim["command_id"] = json!(format!("crm-{case}"));
    claim
}

on_both_backends! {
    async fn each_row_of_a_batch_written_at_its_end_records_exactly_its_own_events(env: Env) {
        env.seed_organisation().await;
        let mut first: Vec<Value> = Vec::new();
        for i in 0..10 {
            first.push(claim(&format!("D-{i}")));
            first.push(complete(&format!("D-{i}"), "check_signatories", "off1"));
        }
        env.submit(&first).await;
        let not_json = env.insert_raw("{not json").await;
        // A repeat of the first claim's command id: a duplicate, which writes no event.
        let repeat = env.insert_from(None, &claim("D-0")).await;
        let mut second: Vec<Value> = Vec::new();
        for i in 10..20 {
            second.push(claim(&format!("D-{i}")));
            second.push(complete(&format!("D-{i}"), "check_signatories", "off1"));
        }
        env.submit(&second).await;

        let outcome = env.tick(T).await;

        assert_eq!((outcome.accepted, outcome.rejected, outcome.duplicates), (40, 1, 1), "{outcome}");
        let events = env.all_events().await;
        let rows = rows(&env).await;
        let mut last_seen = 0;
        let mut covered = 0;
        for (id, status, first, last) in &rows {
            if *id == repeat {
                assert_eq!((status.as_str(), first, last), ("duplicate", &None, &None));
                continue;
            }
            let (Some(first), Some(last)) = (first, last) else {
                panic!("inbox #{id} ({status}) records no events");
            };
            assert!(*first > last_seen && first <= last, "inbox #{id}: {first}..={last} after {last_seen}");
            last_seen = *last;
            let own: Vec<_> = events.iter().filter(|e| e.id >= *first && e.id <= *last).collect();
            covered += own.len();
            if *id == not_json {
                assert_eq!(status, "rejected");
                assert_eq!(own.len(), 1);
                assert_eq!(own[0].kind, "command_rejected");
                assert_eq!(own[0].data.0["inbox_id"], json!(not_json));
                continue;
            }
            assert_eq!(status, "accepted", "inbox #{id}");
            let cases: Vec<_> = own.iter().map(|e| e.case_ref.clone()).collect();
            assert!(cases.windows(2).all(|w| w[0] == w[1]), "inbox #{id} wrote events of two cases: {cases:?}");
        }
        let first_row = rows[0].2.unwrap();
        let commands_wrote = events.iter().filter(|e| e.id >= first_row && e.id <= last_seen).count();
        assert_eq!(covered, commands_wrote, "an event outside every row's range");
        // The creations and completions, in the order of the commands.
        let created: Vec<_> = events.iter().filter(|e| e.kind == "case_created").map(|e| e.case_ref.clone().unwrap()).collect();
        assert_eq!(created, (0..20).map(|i| format!("D-{i}")).collect::<Vec<_>>());
        assert_eq!(env.task_status("D-19", "check_signatories").await, "completed");
    }

    async fn a_row_changed_by_another_writer_during_its_batch_is_left_as_that_writer_left_it(env: Env) {
        env.seed_organisation().await;
        let ids = env.submit(&[claim("E-1"), claim("E-2"), claim("E-3")]).await;
        // Creating E-2 withdraws E-3's row, as a CRM updating the inbox by hand might, in the
        // batch's own transaction (the engine's lock keeps real writers out).
        let withdraw = format!(
            "UPDATE inbox SET status = 'rejected', reason = 'withdrawn by the CRM' WHERE id = {}",
            ids[2]
        );
        let trigger = match env.db.backend() {
            Backend::Sqlite => vec![format!(
                "CREATE TRIGGER withdraw AFTER INSERT ON cases WHEN NEW.case_ref = 'E-2' BEGIN {withdraw}; END"
            )],
            Backend::Postgres => vec![
                format!(
                    "CREATE FUNCTION withdraw() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                     IF NEW.case_ref = 'E-2' THEN {withdraw}; END IF; RETURN NEW; END $$"
                ),
                "CREATE TRIGGER withdraw AFTER INSERT ON cases FOR EACH ROW EXECUTE FUNCTION withdraw()".into(),
            ],
        };
        for statement in trigger {
            Sql::built(statement.clone(), statement).execute(&env.db).await.unwrap();
        }

        let outcome = env.tick(T).await;

        assert_eq!((outcome.accepted, outcome.rejected), (2, 0), "{outcome}");
        assert_eq!(env.inbox(ids[0]).await, ("accepted".into(), None));
        assert_eq!(env.inbox(ids[1]).await, ("accepted".into(), None));
        assert_eq!(env.inbox(ids[2]).await, ("rejected".into(), Some("withdrawn by the CRM".into())));
        let events = env.all_events().await;
        assert!(events.iter().all(|e| e.case_ref.as_deref() != Some("E-3")), "E-3 was applied after all");
        let created: Vec<_> = events.iter().filter(|e| e.kind == "case_created").map(|e| e.case_ref.clone().unwrap()).collect();
        assert_eq!(created, ["E-1", "E-2"], "each claim applied once");
    }

    async fn a_second_claim_for_a_case_in_the_same_batch_is_rejected_as_existing_before_any_other_reason(env: Env) {
        env.seed_organisation().await;
        let mut ghost = rtb_claim("C-1", "ghost", "freehold", "2026-01-05");
        ghost["command_id"] = json!("crm-ghost");
        let ids = env.submit(&[claim("C-1"), ghost, rtb_claim("C-1", "tenant2", "freehold", "2026-01-05")]).await;

        let outcome = env.tick(T).await;

        assert_eq!((outcome.accepted, outcome.rejected), (1, 2), "{outcome}");
        assert_eq!(env.inbox(ids[0]).await.0, "accepted");
        for id in &ids[1..] {
            let (status, reason) = env.inbox(*id).await;
            assert_eq!(status, "rejected");
            let reason = reason.unwrap();
            assert!(reason.starts_with("case C-1 already exists (created "), "inbox #{id}: {reason}");
        }
        let events = env.all_events().await;
        let created = events.iter().filter(|e| e.kind == "case_created").count();
        assert_eq!(created, 1, "the case was created once");
        let applicant: String = sql("SELECT applicant_contact FROM cases WHERE case_ref = 'C-1'")
            .scalar(&env.db)
            .await
            .unwrap();
        assert_eq!(applicant, "tenant1", "the first claim's case stands");
    }
}
