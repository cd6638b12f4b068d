//! Faults found by running the daemon under hostile input and two instances: rows no step can
//! read, NULs where PostgreSQL refuses them, bodies too large to keep, times past year 9999, ids
//! that collide across tables, and two engines racing on one database. In each case the bad item
//! is set aside with a reason and everything else in the pass still happens.

use casewarden::db::sql;
use casewarden::engine::ingest;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::{Env, complete, rtb_claim, rules_with};
use crate::on_both_backends;

const T: &str = "2026-01-05T09:00:00Z";

async fn event_reasons(env: &Env, kind: &str) -> Vec<String> {
    env.all_events()
        .await
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.data.0["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// SQLite lets any writer store a BLOB or bytes that are not UTF-8 in a TEXT column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_inbox_row_is_rejected_and_every_other_step_of_the_pass_still_runs() {
    let env = Env::sqlite().await;
    env.seed_organisation().await;
    env.ok(T, rtb_claim("S-1", "tenant1", "freehold", "2026-01-05"))
        .await;
    let not_utf8: i64 = sql("INSERT INTO inbox (body, received_at) VALUES (CAST(X'7B2274797065223A2280FF227D' AS TEXT), $1) RETURNING id")
        .bind(casewarden::clock::now())
        .scalar(&env.db)
        .await
        .unwrap();
    let note =
        json!({"type": "add_note", "case_ref": "S-1", "by": "off1", "text": "written as a BLOB"})
            .to_string();
    let blob: i64 =
        sql("INSERT INTO inbox (body, received_at) VALUES (CAST($1 AS BLOB), $2) RETURNING id")
            .bind(note.as_str())
            .bind(casewarden::clock::now())
            .scalar(&env.db)
            .await
            .unwrap();
    let typeof_blob: String = sql("SELECT typeof(body) FROM inbox WHERE id = $1")
        .bind(blob)
        .scalar(&env.db)
        .await
        .unwrap();
    assert_eq!(typeof_blob, "blob", "the test must really store a BLOB");
    let after = env
        .submit(&[complete("S-1", "check_signatories", "off1")])
        .await[0];

    // The amber checkpoint of check_property_address is due on 7 January.
    let outcome = env.tick("2026-01-07T09:00:00Z").await;

    let (status, reason) = env.inbox(not_utf8).await;
    assert_eq!(status, "rejected");
    assert!(
        reason
            .unwrap()
            .contains("the body is not UTF-8 text (invalid byte at offset 9)")
    );
    assert_eq!(
        env.inbox(blob).await.0,
        "accepted",
        "a BLOB holding UTF-8 JSON is read as text"
    );
    assert_eq!(
        env.inbox(after).await.0,
        "accepted",
        "the command behind the bad row ran"
    );
    assert!(
        outcome.escalations >= 1,
        "the SLA sweep ran in the same pass: {outcome}"
    );
}

on_both_backends! {
    async fn a_nul_or_line_break_in_a_type_or_field_name_is_rejected_and_nothing_behind_it_waits(env: Env) {
        env.seed_organisation().await;
        env.ok(T, rtb_claim("S-1", "tenant1", "freehold", "2026-01-05")).await;
        let nul_type = env.insert_raw(r#"{"type":"\u0000"}"#).await;
        let nul_field = env.insert_raw(r#"{"type":"add_note","case_ref":"S-1","by":"off1","text":"t","\u0000":1}"#).await;
        let crlf_type = env.insert_raw(r#"{"type":"add\r\nnote"}"#).await;
        let after = env.submit(&[complete("S-1", "check_signatories", "off1")]).await[0];
        let outcome = env.tick("2026-01-07T09:00:00Z").await;
        for id in [nul_type, nul_field, crlf_type] {
            let (status, reason) = env.inbox(id).await;
            let reason = reason.unwrap();
            assert_eq!(status, "rejected", "#{id}");
            assert!(!reason.chars().any(char::is_control), "#{id}: {reason:?}");
        }
        assert!(env.inbox(nul_field).await.1.unwrap().contains("unknown field `\\u{0}`"));
        assert_eq!(env.inbox(after).await.0, "accepted");
        assert_eq!(event_reasons(&env, "command_rejected").await.len(), 3);
        assert!(outcome.escalations >= 1, "{outcome}");
    }

    async fn a_body_over_the_limit_is_cut_to_a_prefix_with_its_size_and_hash_and_submit_refuses_it(env: Env) {
        env.seed_organisation().await;
        let huge = json!({"type": "add_note", "case_ref": "S-1", "by": "off1", "text": "é".repeat(300_000)}).to_string();
        let digest = hex::encode(Sha256::digest(huge.as_bytes()));
        let id = env.insert_raw(&huge).await;
        env.tick(T).await;
        let (status, reason) = env.inbox(id).await;
        let reason = reason.unwrap();
        assert_eq!(status, "rejected");
        assert!(reason.contains(&format!("command is {} bytes; the limit is 65536 bytes", huge.len())), "{reason}");
        assert!(reason.contains(&digest), "{reason}");
        let kept: String = sql("SELECT body FROM inbox WHERE id = $1").bind(id).scalar(&env.db).await.unwrap();
        assert!(kept.len() <= 1024 && huge.starts_with(&kept) && kept.len() > 1000, "{}", kept.len());

        let before: i64 = sql("SELECT COUNT(*) FROM inbox").scalar(&env.db).await.unwrap();
        let lines = format!("{}\n{huge}\n", json!({"type": "upsert_role", "ref": "r", "name": "R"}));
        let err = ingest::submit(&env.db, &lines, 65536).await.unwrap_err().to_string();
        assert!(err.contains("line 2: the command is"), "{err}");
        let after: i64 = sql("SELECT COUNT(*) FROM inbox").scalar(&env.db).await.unwrap();
        assert_eq!(before, after, "nothing of a refused submission is added");
    }

    async fn a_rejection_keeps_personal_data_in_the_inbox_and_out_of_the_event_log(env: Env) {
        let reason = env.rejected(T, json!({"type": "upsert_contact", "ref": "c9", "name": "Priya Shah",
            "email": "priya.shah at home@example.net"})).await;
        assert!(reason.contains("priya.shah at home@example.net"), "{reason}");
        let logged = event_reasons(&env, "command_rejected").await;
        assert_eq!(logged.len(), 1);
        assert!(logged[0].contains("email") && !logged[0].contains("priya"), "{logged:?}");
    }

    async fn a_hold_past_the_year_9999_is_refused_and_one_at_the_edge_is_kept(env: Env) {
        env.seed_organisation().await;
        env.ok(T, rtb_claim("S-1", "tenant1", "freehold", "2026-01-05")).await;
        let hold = |until: &str| json!({"type": "hold_task", "case_ref": "S-1", "task": "check_signatories",
            "until": until, "reason": "indefinite"});
        for beyond in ["9999-12-31T23:59:59-05:00", "+99999-01-01", "+10000-01-01T00:00:00Z"] {
            let reason = env.rejected(T, hold(beyond)).await;
            assert!(reason.contains("until:") && (reason.contains("outside the times casewarden accepts") || reason.contains("is not a time")), "{beyond}: {reason}");
        }
        env.ok(T, hold("9999-12-31T23:59:59Z")).await;
        env.tick("2026-01-20T09:00:00Z").await;
        assert_eq!(env.task_status("S-1", "check_signatories").await, "on_hold");
        let held = env.all_events().await.into_iter().rfind(|e| e.kind == "task_held").unwrap();
        assert_eq!(held.data.0["until"], "9999-12-31T23:59:59Z");
    }

    async fn a_task_whose_row_id_equals_its_stages_keeps_its_own_escalation_rule(env: Env) {
        let original = std::fs::read_to_string(crate::helpers::repo_path("rules/definitions/home_buy/right_to_buy-england.toml")).unwrap();
        let own = original.replacen(
            "key = \"check_property_address\"\n  name = \"Check the property address against the tenancy record\"\n  sla = { target = \"3 working days\", amber = \"1 working day\" }",
            "key = \"check_property_address\"\n  name = \"Check the property address against the tenancy record\"\n  sla = { target = \"3 working days\", amber = \"1 working day\", escalation = { amber = \"task_only_amber\" } }",
            1,
        );
        assert_ne!(own, original);
        let rule = "fn escalate(item) { #{ actions: [notify([\"task_owner\"], \"sla_amber\")], reason: \"the task's own rule\" } }";
        let (_dir, rules) = rules_with(&[
            ("definitions/home_buy/right_to_buy-england.toml", own.as_str()),
            ("escalation/task_only_amber.rhai", rule),
        ]);
        env.use_rules(rules);
        env.seed_organisation().await;
        env.ok(T, rtb_claim("S-1", "tenant1", "freehold", "2026-01-05")).await;
        let (task_id, stage_id): (i64, i64) = sql("SELECT t.id, t.stage_id FROM tasks t WHERE t.task = 'check_property_address'")
            .fetch_one(&env.db).await.unwrap();
        assert_eq!((task_id, stage_id), (1, 1), "the ids must collide for this test to mean anything");
        env.tick("2026-01-07T09:00:00Z").await;
        let amber = env.all_events().await.into_iter()
            .find(|e| e.kind == "sla_amber" && e.data.0["key"] == "check_property_address").expect("the task went amber");
        assert_eq!(amber.data.0["rule"], "escalation/task_only_amber");
        assert_eq!(amber.data.0["reason"], "the task's own rule");
    }
}

/// Two engines on one PostgreSQL database, passes interleaved: every command decided once, with
/// one event, and no pass failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_postgres_decide_each_command_once() {
    let Some(first) = Env::postgres().await else {
        return;
    };
    let second = Env::open(first.url.clone(), None, crate::helpers::shipped_rules()).await;
    first.seed_organisation().await;
    let mut claims = Vec::new();
    for i in 0..6 {
        claims.push(rtb_claim(
            &format!("R-{i}"),
            "tenant1",
            "freehold",
            "2026-01-05",
        ));
    }
    first.submit(&claims).await;
    first.tick(T).await;
    let mut commands = Vec::new();
    for i in 0..6 {
        let case = format!("R-{i}");
        let mut ok = complete(&case, "check_signatories", "off1");
        ok["command_id"] = json!(format!("ok-{i}"));
        let mut bad = json!({"type": "complete_task", "case_ref": format!("NOPE-{i}"), "task": "t", "by": "off1"});
        bad["command_id"] = json!(format!("bad-{i}"));
        let mut repeat = ok.clone();
        repeat["command_id"] = json!(format!("ok-{i}"));
        commands.extend([ok, bad, repeat]);
    }
    for _ in 0..5 {
        commands.push(json!({"type": "add_note", "case_ref": "NOPE", "by": "off1", "text": "x"}));
    }
    let ids = first.submit(&commands).await;
    for _ in 0..4 {
        let (a, b) = tokio::join!(first.engine.run_live_pass(), second.engine.run_live_pass());
        a.expect("first instance's pass");
        b.expect("second instance's pass");
    }
    let pending: i64 = sql("SELECT COUNT(*) FROM inbox WHERE status = 'pending'")
        .scalar(&first.db)
        .await
        .unwrap();
    assert_eq!(pending, 0);
    let mut rejected_ids = Vec::new();
    for e in first
        .all_events()
        .await
        .into_iter()
        .filter(|e| e.kind == "command_rejected")
    {
        rejected_ids.push(e.data.0["inbox_id"].as_i64().unwrap());
    }
    let mut unique = rejected_ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        rejected_ids.len(),
        unique.len(),
        "a command was rejected twice: {rejected_ids:?}"
    );
    assert_eq!(unique.len(), 6 + 5);
    let completed = first
        .all_events()
        .await
        .into_iter()
        .filter(|e| e.kind == "task_completed")
        .count();
    assert_eq!(completed, 6, "each completion applied once");
    let statuses: Vec<(String,)> = sql("SELECT status FROM inbox WHERE id >= $1 ORDER BY id")
        .bind(ids[0])
        .fetch_all(&first.db)
        .await
        .unwrap();
    assert_eq!(statuses.iter().filter(|(s,)| s == "duplicate").count(), 6);
}

/// Rows a step cannot read (SQLite stores whatever a writer gives it): each is skipped, counted,
/// and after three failing passes set aside with an event, while every other item and step goes
/// on in every pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_cases_and_tasks_are_set_aside_after_three_passes_and_the_rest_go_on() {
    let env = Env::sqlite().await;
    env.seed_organisation().await;
    env.ok(T, rtb_claim("GOOD", "tenant1", "freehold", "2026-01-05"))
        .await;
    env.ok(
        T,
        rtb_claim("BAD-CASE", "tenant2", "freehold", "2026-01-05"),
    )
    .await;
    env.ok(
        T,
        rtb_claim("BAD-TASK", "tenant3", "freehold", "2026-01-05"),
    )
    .await;
    sql("UPDATE cases SET allocation = 'pending', received_at = 'not a time' WHERE case_ref = 'BAD-CASE'")
        .execute(&env.db)
        .await
        .unwrap();
    sql(
        "UPDATE tasks SET target_at = 'not a time' WHERE task = 'check_property_address' \
         AND case_id = (SELECT id FROM cases WHERE case_ref = 'BAD-TASK')",
    )
    .execute(&env.db)
    .await
    .unwrap();
    let ambers = |env: &Env| {
        let db = env.db.clone();
        async move {
            sql("SELECT COUNT(*) FROM escalations WHERE level = 'amber'")
                .scalar::<i64>(&db)
                .await
                .unwrap()
        }
    };
    for (n, now) in [
        "2026-01-07T09:00:00Z",
        "2026-01-07T09:01:00Z",
        "2026-01-07T09:02:00Z",
    ]
    .into_iter()
    .enumerate()
    {
        let outcome = env.tick(now).await;
        if n == 0 {
            // GOOD's check_property_address goes amber in the first pass, despite the bad rows.
            assert!(outcome.escalations >= 1, "{outcome}");
            assert!(ambers(&env).await >= 1);
        }
        let set_aside = env
            .all_events()
            .await
            .into_iter()
            .filter(|e| e.kind == "item_set_aside")
            .count();
        if n < 2 {
            assert_eq!(set_aside, 0, "after pass {}", n + 1);
        }
    }
    let (allocation,): (String,) = sql("SELECT allocation FROM cases WHERE case_ref = 'BAD-CASE'")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert_eq!(allocation, "needed");
    let (next,): (Option<String>,) =
        sql("SELECT next_check_at FROM tasks WHERE target_at = 'not a time'")
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!(
        next, None,
        "the unreadable task's clock is no longer checked"
    );
    let events = env.all_events().await;
    // The bad case itself, its due tasks (their case cannot be read either), and the bad task.
    let aside: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.kind == "item_set_aside")
        .map(|e| {
            let step = e.data.0["step"].as_str().unwrap().to_string();
            (step, e.data.0["error"].as_str().unwrap().to_string())
        })
        .collect();
    let read = |column: &str| format!("decoding column \"{column}\"");
    assert!(
        aside
            .iter()
            .any(|(s, e)| s == "allocation" && e.contains(&read("received_at"))),
        "{aside:?}"
    );
    assert!(
        aside
            .iter()
            .any(|(s, e)| s == "sla_task" && e.contains(&read("target_at"))),
        "{aside:?}"
    );
    assert!(
        aside
            .iter()
            .all(|(s, _)| s == "allocation" || s == "sla_task"),
        "{aside:?}"
    );
    let good = env.event_kinds("GOOD").await;
    assert!(!good.iter().any(|k| k == "item_set_aside"), "{good:?}");
    // A fourth pass is quiet: nothing set aside is tried again.
    let quiet = env.tick("2026-01-07T09:03:00Z").await;
    assert!(quiet.is_idle(), "{quiet}");
}

on_both_backends! {
    async fn in_run_mode_a_command_is_never_timed_before_the_last_event_of_its_case(env: Env) {
        // Another instance, its clock ahead of ours, created the case and activated its tasks.
        let ahead = "2090-06-05T09:00:00Z";
        env.seed_organisation().await;
        env.ok(ahead, rtb_claim("L-1", "tenant1", "freehold", "2090-06-05")).await;
        let id = env.submit(&[complete("L-1", "check_signatories", "off1")]).await[0];
        env.engine.run_live_pass().await.unwrap();
        assert_eq!(env.inbox(id).await, ("accepted".to_string(), None));
        let done = env.all_events().await.into_iter().rfind(|e| e.kind == "task_completed").unwrap();
        assert!(done.at >= casewarden::clock::parse_time(ahead).unwrap(), "{}", done.at);
    }
}

on_both_backends! {
    async fn a_step_takes_batch_after_batch_until_its_time_budget_is_spent(env: Env) {
        let roles: Vec<serde_json::Value> = (0..12)
            .map(|i| serde_json::json!({"type": "upsert_role", "command_id": format!("budget-{i}"), "ref": format!("r{i}"), "name": "Role"}))
            .collect();
        env.submit(&roles).await;
        let mut engine = env.engine.clone();
        engine.settings.batch_size = 5;
        // No budget: one batch a pass, and the pass says that work was left.
        engine.settings.step_budget_seconds = 0;
        let first = engine.run_pass(casewarden::clock::parse_time("2026-01-05T09:00:00Z").unwrap()).await.unwrap();
        assert_eq!((first.accepted, first.more_due), (5, true), "{first}");
        // The default budget: batch after batch until the inbox is empty.
        engine.settings.step_budget_seconds = 10;
        let second = engine.run_pass(casewarden::clock::parse_time("2026-01-05T09:01:00Z").unwrap()).await.unwrap();
        assert_eq!((second.accepted, second.more_due), (7, false), "{second}");
    }
}
