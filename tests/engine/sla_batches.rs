//! The SLA sweep fires due checkpoints in batches: hundreds at once, each exactly once, each
//! case's events in the order the checkpoints fall due, oldest first, up to 200 tasks and 200
//! stages a batch. A rule that fails, an item that cannot be written or read, and a rule that
//! reassigns the case leave the rest of the batch as it would be one firing at a time.

use casewarden::clock::parse_time;
use casewarden::db::{Backend, sql};
use chrono::{DateTime, Duration, Utc};

use crate::helpers::{Env, rtb_claim, rules_with};
use crate::on_both_backends;

const NOW: &str = "2026-02-02T09:00:00Z";

/// A task or stage whose amber checkpoint is due at `NOW`.
#[derive(Debug, Clone)]
struct Due {
    is_task: bool,
    id: i64,
    case_ref: String,
    key: String,
    at: DateTime<Utc>,
}

/// Opens `n` Right to Buy cases (3 active tasks and an open stage each), then sets every open
/// task's and stage's clock so that its amber checkpoint, and only that, is due at `NOW`, each
/// at its own time in the hour before, in an order unlike the order of ids.
async fn cases_with_one_checkpoint_due_each(env: &Env, n: usize) -> Vec<Due> {
    env.seed_organisation().await;
    let claims: Vec<_> = (1..=n)
        .map(|i| {
            let applicant = format!("tenant{}", i % 6 + 1);
            rtb_claim(&format!("B-{i:03}"), &applicant, "freehold", "2026-01-05")
        })
        .collect();
    env.submit(&claims).await;
    env.tick("2026-01-05T09:00:00Z").await;
    let now = parse_time(NOW).unwrap();
    let mut due = Vec::new();
    for (is_task, items) in [
        (
            true,
            "SELECT t.id, c.case_ref, t.task FROM tasks t JOIN cases c ON c.id = t.case_id WHERE t.status = 'active'",
        ),
        (
            false,
            "SELECT s.id, c.case_ref, s.stage FROM stages s JOIN cases c ON c.id = s.case_id WHERE s.status = 'open'",
        ),
    ] {
        let rows: Vec<(i64, String, String)> = sql(items).fetch_all(&env.db).await.unwrap();
        for (id, case_ref, key) in rows {
            let at = now - Duration::minutes(1 + (id * 37) % 997);
            due.push(Due {
                is_task,
                id,
                case_ref,
                key,
                at,
            });
        }
    }
    assert_eq!(due.len(), 4 * n);
    let mut tx = env.db.begin().await.unwrap();
    for d in &due {
        let update = if d.is_task {
            "UPDATE tasks SET sla_state = 'on_track', follow_ons = 0, amber_at = $1, next_check_at = $1, target_at = $2 WHERE id = $3"
        } else {
            "UPDATE stages SET sla_state = 'on_track', follow_ons = 0, amber_at = $1, next_check_at = $1, target_at = $2 WHERE id = $3"
        };
        sql(update)
            .bind(d.at)
            .bind(now + Duration::days(30))
            .bind(d.id)
            .execute(&mut tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    due
}

/// The order the sweep fires them in: oldest first, in batches of the oldest 200 tasks and 200
/// stages, stages before tasks due at the same moment.
fn firing_order(left: Vec<Due>) -> Vec<Due> {
    firing_order_in(left, 200)
}

/// As [`firing_order`], in batches of `size` tasks and `size` stages.
fn firing_order_in(mut left: Vec<Due>, size: usize) -> Vec<Due> {
    let mut order = Vec::new();
    left.sort_by_key(|d| (d.at, d.id));
    while !left.is_empty() {
        let mut batch: Vec<Due> = Vec::new();
        for is_task in [true, false] {
            batch.extend(
                left.iter()
                    .filter(|d| d.is_task == is_task)
                    .take(size)
                    .cloned(),
            );
        }
        left.retain(|d| !batch.iter().any(|b| b.is_task == d.is_task && b.id == d.id));
        batch.sort_by_key(|d| (d.at, d.is_task, d.id));
        order.extend(batch);
    }
    order
}

/// The events a case was given after event `after`: kind, and the item's key for SLA events.
async fn events_of(env: &Env, case_ref: &str, after: i64) -> Vec<(String, String)> {
    let events: Vec<(String, sqlx::types::Json<serde_json::Value>)> =
        sql("SELECT kind, data FROM events WHERE case_ref = $1 AND id > $2 ORDER BY id")
            .bind(case_ref)
            .bind(after)
            .fetch_all(&env.db)
            .await
            .unwrap();
    events
        .into_iter()
        .map(|(kind, data)| {
            let key = data.0["key"].as_str().unwrap_or_default().to_string();
            (kind, key)
        })
        .collect()
}

async fn last_event(env: &Env) -> i64 {
    sql("SELECT COALESCE(MAX(id), 0) FROM events")
        .scalar(&env.db)
        .await
        .unwrap()
}

async fn count(env: &Env, query: &'static str) -> i64 {
    sql(query).scalar(&env.db).await.unwrap()
}

/// Each case's expected events: for each of its items in firing order, a `rule_error` first
/// where `broken` says its rule fails, then its `sla_amber`.
fn expected(order: &[Due], case_ref: &str, broken: impl Fn(&Due) -> bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for d in order.iter().filter(|d| d.case_ref == case_ref) {
        if broken(d) {
            out.push(("rule_error".to_string(), String::new()));
        }
        out.push(("sla_amber".to_string(), d.key.clone()));
    }
    out
}

const FAILS_FOR_CASES_ENDING_IN_7: &str = r#"
fn escalate(item) {
    if item.case_facts.case_ref.ends_with("7") { throw "this case's rule is broken"; }
    let owner = if item.kind == "task" { "task_owner" } else { "stage_owner" };
    #{
        actions: [notify([owner], "sla_amber")],
        reason: `the ${item.kind} is nearing its target; its owner is warned`,
    }
}
"#;

on_both_backends! {
    async fn five_hundred_checkpoints_due_at_once_fire_once_each_with_each_cases_events_in_order(env: Env) {
        let (_dir, rules) = rules_with(&[("escalation/default_amber.rhai", FAILS_FOR_CASES_ENDING_IN_7)]);
        env.use_rules(rules);
        let due = cases_with_one_checkpoint_due_each(&env, 125).await;
        let after = last_event(&env).await;

        let outcome = env.tick(NOW).await;

        assert_eq!((outcome.escalations, outcome.notifications), (500, 500), "{outcome}");
        assert_eq!(count(&env, "SELECT COUNT(*) FROM escalations").await, 500);
        assert_eq!(count(&env, "SELECT COUNT(DISTINCT escalation_id) FROM outbox").await, 500);
        let order = firing_order(due.clone());
        let broken = |d: &Due| d.case_ref.ends_with('7');
        for i in 1..=125 {
            let case_ref = format!("B-{i:03}");
            assert_eq!(events_of(&env, &case_ref, after).await, expected(&order, &case_ref, broken), "{case_ref}");
        }
        // A failed rule's firing falls back to telling the owner, and says so.
        let fallback = env.case("B-007").await.events.into_iter().rfind(|e| e.kind == "sla_amber").unwrap();
        assert_eq!(fallback.data.0["reason"], "the rule failed: the owner is told instead");
        let again = env.tick(NOW).await;
        assert_eq!((again.escalations, again.notifications), (0, 0));
    }

    async fn an_escalation_that_cannot_be_written_fails_alone_and_the_rest_of_its_batch_fires(env: Env) {
        let due = cases_with_one_checkpoint_due_each(&env, 25).await;
        let order = firing_order(due.clone());
        let poisoned = order.iter().filter(|d| d.is_task).nth(40).unwrap().clone();
        poison(&env, poisoned.id).await;
        let after = last_event(&env).await;

        let outcome = env.tick(NOW).await;

        assert_eq!(outcome.escalations, 99, "{outcome}");
        let rest: Vec<Due> = order.iter().filter(|d| !(d.is_task && d.id == poisoned.id)).cloned().collect();
        for i in 1..=25 {
            let case_ref = format!("B-{i:03}");
            assert_eq!(events_of(&env, &case_ref, after).await, expected(&rest, &case_ref, |_| false), "{case_ref}");
        }
        // Tried again in the next passes, then set aside; nothing else fires again.
        for later in ["2026-02-02T09:01:00Z", "2026-02-02T09:02:00Z"] {
            assert_eq!(env.tick(later).await.escalations, 0);
        }
        let aside = env.case(&poisoned.case_ref).await.events.into_iter().rfind(|e| e.kind == "item_set_aside").unwrap();
        assert_eq!(aside.data.0["step"], "sla_task");
        assert!(aside.data.0["error"].as_str().unwrap().contains("poisoned escalation"), "{:?}", aside.data);
        assert_eq!(count(&env, "SELECT COUNT(*) FROM escalations").await, 99);
        assert!(env.tick("2026-02-02T09:03:00Z").await.is_idle());
    }

    async fn a_reassignment_is_seen_by_the_cases_later_firings_in_the_same_pass(env: Env) {
        reassignment_seen_by_later_firings(&env, 200).await;
    }

    // While a batch is written the next is read, leaving out the items being written. An item
    // whose next checkpoint is due too (exceeded, right after amber) fires it in the same pass.
    async fn items_due_again_after_firing_fire_again_in_the_same_pass_in_batches_of_one(env: Env) {
        env.seed_organisation().await;
        let claims: Vec<_> = (1..=6).map(|i| rtb_claim(&format!("K-{i}"), &format!("tenant{i}"), "freehold", "2026-01-05")).collect();
        env.submit(&claims).await;
        env.tick("2026-01-05T09:00:00Z").await;
        let mut engine = env.engine.clone();
        engine.settings.batch_size = 1;

        // By 2 March every application task and stage is past both amber and its target.
        let pass = engine.run_pass(parse_time("2026-03-02T09:00:00Z").unwrap()).await.unwrap();

        assert_eq!(pass.escalations, 48, "{pass}");
        let per_level: Vec<(String, i64)> =
            sql("SELECT level, COUNT(DISTINCT item_kind || item_id) FROM escalations GROUP BY level ORDER BY level")
                .fetch_all(&env.db)
                .await
                .unwrap();
        assert_eq!(per_level, [("amber".to_string(), 24), ("exceeded".to_string(), 24)]);
        // Each item's amber before its exceeded.
        let out_of_order = count(
            &env,
            "SELECT COUNT(*) FROM escalations a JOIN escalations e ON e.item_kind = a.item_kind AND e.item_id = a.item_id \
             WHERE a.level = 'amber' AND e.level = 'exceeded' AND e.id < a.id",
        )
        .await;
        assert_eq!(out_of_order, 0);
        assert!(env.tick("2026-03-02T09:00:00Z").await.is_idle());
    }

    // While a batch is written the next is read: one that reassigns a case must be written
    // first, or the case's firings in the next batch would see the owner it had before.
    async fn a_reassignment_is_seen_by_the_cases_firings_in_later_batches(env: Env) {
        reassignment_seen_by_later_firings(&env, 1).await;
    }
}

/// Two cases with checkpoints due, fired in batches of `batch`: the rule for each case's first
/// task due reassigns the case to the other officer, and every later firing of the case sees it.
async fn reassignment_seen_by_later_firings(env: &Env, batch: i64) {
    // The rule for the first task due reassigns the case to the other officer.
    let rule = r#"
        fn escalate(item) {
            let owner = if item.kind == "task" { "task_owner" } else { "stage_owner" };
            if item.key == "check_property_address" {
                let other = if item.people.case_owner == "off1" { "off2" } else { "off1" };
                return [reassign(other), notify([owner], "sla_amber")];
            }
            [notify([owner], "sla_amber")]
        }
    "#;
    let (_dir, rules) = rules_with(&[("escalation/default_amber.rhai", rule)]);
    env.use_rules(rules);
    let mut engine = env.engine.clone();
    engine.settings.batch_size = batch;
    let mut due = cases_with_one_checkpoint_due_each(env, 2).await;
    // In each case the address check falls due first.
    let now = parse_time(NOW).unwrap();
    for d in due.iter_mut().filter(|d| d.key == "check_property_address") {
        d.at = now - Duration::days(1);
        sql("UPDATE tasks SET amber_at = $1, next_check_at = $1 WHERE id = $2")
            .bind(d.at)
            .bind(d.id)
            .execute(&env.db)
            .await
            .unwrap();
    }
    let owner: String = sql("SELECT owner FROM cases WHERE case_ref = 'B-001'")
        .scalar(&env.db)
        .await
        .unwrap();
    let after = last_event(env).await;

    engine.run_pass(parse_time(NOW).unwrap()).await.unwrap();

    let order = firing_order_in(due, batch as usize);
    let mut want = vec![("owner_changed".to_string(), String::new())];
    want.extend(expected(&order, "B-001", |_| false));
    assert_eq!(events_of(env, "B-001", after).await, want);
    let other = if owner == "off1" { "off2" } else { "off1" };
    let mails: Vec<(String,)> = sql(
        "SELECT o.recipient_ref FROM outbox o JOIN cases c ON c.id = o.case_id WHERE c.case_ref = 'B-001' \
         AND o.template = 'sla_amber' ORDER BY o.id",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    // The address check's own notice went to the owner its rule saw; the later ones to the new owner.
    let to: Vec<&str> = mails.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(to, [owner.as_str(), other, other, other]);
}

/// Makes writing the escalation of one task fail, as a broken row or a constraint would.
async fn poison(env: &Env, task_id: i64) {
    let statements = match env.db.backend() {
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER poison BEFORE INSERT ON escalations WHEN NEW.item_kind = 'task' AND NEW.item_id = {task_id} \
             BEGIN SELECT RAISE(ABORT, 'poisoned escalation'); END"
        )],
        Backend::Postgres => vec![
            format!(
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.item_kind = 'task' AND NEW.item_id = {task_id} THEN RAISE EXCEPTION 'poisoned escalation'; END IF; \
                 RETURN NEW; END $$"
            ),
            "CREATE TRIGGER poison BEFORE INSERT ON escalations FOR EACH ROW EXECUTE FUNCTION poison()".to_string(),
        ],
    };
    for statement in statements {
        match &env.db {
            casewarden::db::Db::Sqlite(pool) => {
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(pool)
                    .await
                    .unwrap();
            }
            casewarden::db::Db::Postgres(pool) => {
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(pool)
                    .await
                    .unwrap();
            }
            casewarden::db::Db::Pinned(_) => unreachable!("tests run on a pool"),
        };
    }
}

/// SQLite stores whatever a writer gives it: an item the batch cannot read sends the batch one
/// item at a time, and every other item in it fires, once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_item_in_a_batch_fails_alone_and_the_others_fire_in_order() {
    let env = Env::sqlite().await;
    let due = cases_with_one_checkpoint_due_each(&env, 25).await;
    let order = firing_order(due);
    let broken = order.iter().filter(|d| d.is_task).nth(10).unwrap().clone();
    sql("UPDATE tasks SET target_at = 'not a time' WHERE id = $1")
        .bind(broken.id)
        .execute(&env.db)
        .await
        .unwrap();
    let after = last_event(&env).await;

    let outcome = env.tick(NOW).await;

    assert_eq!(outcome.escalations, 99, "{outcome}");
    let rest: Vec<Due> = order
        .iter()
        .filter(|d| !(d.is_task && d.id == broken.id))
        .cloned()
        .collect();
    for i in 1..=25 {
        let case_ref = format!("B-{i:03}");
        assert_eq!(
            events_of(&env, &case_ref, after).await,
            expected(&rest, &case_ref, |_| false),
            "{case_ref}"
        );
    }
    let (attempts, error): (i64, String) = sql(
        "SELECT attempts, last_error FROM item_failures WHERE step = 'sla_task' AND item_id = $1",
    )
    .bind(broken.id)
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert_eq!(attempts, 1);
    assert!(error.contains("decoding column \"target_at\""), "{error}");
}
