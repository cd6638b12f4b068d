//! Officers' loads: the count of open cases each officer owns, which allocation rules see as
//! `open_cases`. It is kept as cases change, whatever changes them, and always equals a fresh
//! count; allocation shares a batch of new cases out as it would one case at a time.

use casewarden::db::sql;
use serde_json::json;

use crate::helpers::{Env, rtb_claim};
use crate::on_both_backends;

/// The kept loads and a fresh count of open cases by owner, each as (officer, open cases) for
/// every officer with any, in order.
async fn kept_and_counted(env: &Env) -> (Vec<(String, i64)>, Vec<(String, i64)>) {
    let kept = sql(
        "SELECT user_ref, open_cases FROM officer_loads WHERE open_cases <> 0 ORDER BY user_ref",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    let counted = sql(
        "SELECT owner, COUNT(*) FROM cases WHERE owner IS NOT NULL AND status IN ('open', 'awaiting_advance') \
         GROUP BY owner ORDER BY owner",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    (kept, counted)
}

async fn assert_loads_counted(env: &Env, after: &str) -> Vec<(String, i64)> {
    let (kept, counted) = kept_and_counted(env).await;
    assert_eq!(kept, counted, "the kept loads after {after}");
    kept
}

fn load(loads: &[(String, i64)], officer: &str) -> i64 {
    loads
        .iter()
        .find(|(o, _)| o == officer)
        .map_or(0, |(_, n)| *n)
}

on_both_backends! {
    async fn an_officers_load_equals_a_count_of_their_open_cases_after_every_kind_of_change(env: Env) {
        env.seed_organisation().await;
        let at = "2026-01-05T09:00:00Z";
        let claims: Vec<_> = (1..=4).map(|i| rtb_claim(&format!("L-{i}"), "tenant1", "freehold", "2026-01-05")).collect();
        env.submit(&claims).await;
        let outcome = env.tick(at).await;
        assert_eq!(outcome.allocated, 4, "{outcome}");
        let loads = assert_loads_counted(&env, "allocation").await;
        assert_eq!(load(&loads, "off1") + load(&loads, "off2"), 4, "{loads:?}");

        let case = env.case("L-1").await;
        let other = if case.case.owner.as_deref() == Some("off1") { "off2" } else { "off1" };
        env.ok(at, json!({"type": "reassign_case", "case_ref": "L-1", "owner": other})).await;
        let moved = assert_loads_counted(&env, "reassignment").await;
        assert_eq!(load(&moved, other), load(&loads, other) + 1);

        env.ok(at, json!({"type": "close_case", "case_ref": "L-2", "outcome": "withdrawn", "by": "off2"})).await;
        let closed = assert_loads_counted(&env, "closure").await;
        assert_eq!(closed.iter().map(|(_, n)| n).sum::<i64>(), 3);

        // Rows written by other means than the engine: a new case, a closure, a change of owner.
        sql("INSERT INTO cases (case_ref, kind, scheme, country, definition_id, definition_version, received_at, \
             created_at, calendar, allocation, owner) \
             VALUES ('RAW-1', 'home_buy', 'right_to_buy', 'england', 'right_to_buy-england', 'raw', $1, $1, \
             'england-and-wales', 'allocated', 'sol1')")
            .bind(casewarden::clock::parse_time(at).unwrap())
            .execute(&env.db)
            .await
            .unwrap();
        let raw = assert_loads_counted(&env, "a row written straight into the table").await;
        assert_eq!(load(&raw, "sol1"), 1);
        sql("UPDATE cases SET owner = 'mgr1' WHERE case_ref = 'RAW-1'").execute(&env.db).await.unwrap();
        assert_loads_counted(&env, "an owner changed straight in the table").await;
        sql("UPDATE cases SET status = 'awaiting_advance' WHERE case_ref = 'L-3'").execute(&env.db).await.unwrap();
        assert_loads_counted(&env, "a case awaiting advance").await;
        sql("UPDATE cases SET status = 'completed' WHERE case_ref IN ('L-3', 'RAW-1')").execute(&env.db).await.unwrap();
        let done = assert_loads_counted(&env, "cases completed straight in the table").await;
        assert_eq!((load(&done, "mgr1"), done.iter().map(|(_, n)| n).sum::<i64>()), (0, 2));
        sql("UPDATE cases SET status = 'open' WHERE case_ref = 'L-3'").execute(&env.db).await.unwrap();
        assert_loads_counted(&env, "a case reopened straight in the table").await;
    }

    async fn a_batch_shares_new_cases_out_evenly_between_equally_loaded_officers(env: Env) {
        let mut commands = vec![
            json!({"type": "upsert_role", "ref": "home_ownership", "name": "Home ownership team"}),
            json!({"type": "upsert_contact", "ref": "tenant1", "name": "Tenant 1", "email": "t1@example.net"}),
        ];
        for i in 1..=5 {
            commands.push(json!({"type": "upsert_user", "ref": format!("officer{i}"), "name": format!("Officer {i}"),
                "email": format!("officer{i}@example.org"), "roles": ["home_ownership"]}));
        }
        for i in 1..=10 {
            commands.push(rtb_claim(&format!("E-{i:02}"), "tenant1", "freehold", "2026-01-05"));
        }
        env.submit(&commands).await;
        let outcome = env.tick("2026-01-05T09:00:00Z").await;
        assert_eq!((outcome.accepted, outcome.allocated), (17, 10), "{outcome}");
        let loads = assert_loads_counted(&env, "a batch of ten").await;
        let expected: Vec<(String, i64)> = (1..=5).map(|i| (format!("officer{i}"), 2)).collect();
        assert_eq!(loads, expected);
        // In turn, as one case at a time would go: ties to the lower ref.
        let mut owners = Vec::new();
        for i in 1..=10 {
            owners.push(env.case(&format!("E-{i:02}")).await.case.owner.unwrap());
        }
        assert_eq!(owners[..5], ["officer1", "officer2", "officer3", "officer4", "officer5"]);
    }
}
