//! Every command's happy path and its rejections, and hostile input that must be rejected line
//! by line without stopping anything else.

use casewarden::db::sql;
use serde_json::json;

use crate::helpers::{Env, complete, repo_path, rtb_claim};
use crate::on_both_backends;

const T: &str = "2026-01-05T09:00:00Z";

fn assert_has(reason: &str, needle: &str) {
    assert!(reason.contains(needle), "expected {needle:?} in {reason:?}");
}

on_both_backends! {
    async fn names_with_line_breaks_control_characters_or_ten_thousand_characters_are_refused_at_upsert(env: Env) {
        let long = "n".repeat(10_000);
        for bad in ["Boss\r\nBcc: someone@example.org", "Off\nX", "Off\rX", "nul\u{0}x", "esc\u{1b}[31m", "tab\tx", "\u{202e}evil", long.as_str()] {
            let commands = [
                json!({"type": "upsert_user", "ref": "u1", "name": bad, "email": "u1@example.org"}),
                json!({"type": "upsert_contact", "ref": "c1", "name": bad, "email": "c1@example.org"}),
                json!({"type": "upsert_contact_group", "ref": "g1", "name": bad, "members": []}),
                json!({"type": "upsert_role", "ref": "r1", "name": bad}),
            ];
            for command in commands {
                let reason = env.rejected(T, command.clone()).await;
                assert!(reason.contains(": name "), "{command}: {reason}");
                assert!(
                    reason.contains("contains the character") || reason.contains("characters long; the limit is 200"),
                    "{reason}"
                );
                assert!(!reason.chars().any(char::is_control), "the reason echoes the name escaped: {reason:?}");
                assert!(reason.chars().count() < 300, "the reason quotes a bounded part of the name");
            }
        }
        let (users,): (i64,) = sql("SELECT COUNT(*) FROM users").fetch_one(&env.db).await.unwrap();
        assert_eq!(users, 0, "no user was written");
        env.ok(T, json!({"type": "upsert_user", "ref": "u1", "name": "Siân O'Neil", "email": "u1@example.org"})).await;
    }

    async fn reference_data_commands_upsert_and_reject_unknown_references(env: Env) {
        env.ok(T, json!({"type": "upsert_role", "ref": "rtb", "name": "RTB team"})).await;
        env.ok(T, json!({"type": "upsert_role", "ref": "rtb", "name": "Right to Buy team"})).await;
        assert_has(&env.rejected(T, json!({"type": "upsert_user", "ref": "u1", "name": "A", "email": "a@example.org", "roles": ["nope"]})).await,
            "roles: unknown role \"nope\"; send upsert_role first");
        env.ok(T, json!({"type": "upsert_user", "ref": "u1", "name": "A", "email": "a@example.org", "roles": ["rtb"]})).await;
        env.ok(T, json!({"type": "upsert_user", "ref": "u2", "name": "B", "email": "b@example.org", "line_manager": "u1", "roles": []})).await;
        assert_has(&env.rejected(T, json!({"type": "upsert_user", "ref": "u3", "name": "C", "email": "c@example.org", "line_manager": "u3"})).await,
            "cannot be their own line manager");
        assert_has(&env.rejected(T, json!({"type": "upsert_user", "ref": "u3", "name": "C"})).await, "missing field `email`");

        env.ok(T, json!({"type": "upsert_contact", "ref": "c1", "name": "Tenant", "email": "t@example.net", "phone": "0113 496 0000", "address": "1 Road"})).await;
        env.ok(T, json!({"type": "upsert_contact", "ref": "c2", "name": "Joint tenant"})).await;
        assert_has(&env.rejected(T, json!({"type": "upsert_contact", "ref": "c3", "name": "X", "email": "not-an-email"})).await, "not an e-mail address");
        env.ok(T, json!({"type": "upsert_contact_group", "ref": "g1", "name": "Joint tenants", "members": ["c1", "c2"]})).await;
        assert_has(&env.rejected(T, json!({"type": "upsert_contact_group", "ref": "g2", "name": "G", "members": ["c1", "ghost"]})).await,
            "members: unknown contact \"ghost\"");

        let roles: Vec<(String,)> = casewarden::db::sql("SELECT role_ref FROM user_roles WHERE user_ref = 'u1'").fetch_all(&env.db).await.unwrap();
        assert_eq!(roles, vec![("rtb".to_string(),)]);
        let name: (String,) = casewarden::db::sql("SELECT name FROM roles WHERE ref = 'rtb'").fetch_one(&env.db).await.unwrap();
        assert_eq!(name.0, "Right to Buy team");
        let kinds: Vec<String> = env.all_events().await.into_iter().map(|e| e.kind).collect();
        for k in ["role_upserted", "user_upserted", "contact_upserted", "contact_group_upserted", "command_rejected"] {
            assert!(kinds.contains(&k.to_string()), "{k}");
        }
    }

    async fn create_case_is_checked_against_contacts_dates_and_definitions(env: Env) {
        env.seed_organisation().await;
        env.ok(T, json!({"type": "upsert_contact_group", "ref": "joint1", "name": "Joint", "members": ["tenant1", "tenant2"]})).await;
        assert_has(&env.rejected(T, rtb_claim("C-1", "ghost", "freehold", "2026-01-05")).await, "applicant: unknown contact \"ghost\"");
        assert_has(&env.rejected(T, rtb_claim("C-1", "tenant1", "freehold", "2026-02-01")).await, "is in the future");
        assert_has(&env.rejected(T, rtb_claim("C-1", "tenant1", "freehold", "05/01/2026")).await, "received_at: \"05/01/2026\" is not a time");
        assert_has(&env.rejected(T, rtb_claim("C-1", "tenant1", "semi", "2026-01-05")).await, "property.tenure \"semi\" is not one of: freehold, leasehold");
        let mut group_claim = rtb_claim("C-2", "tenant1", "leasehold", "2026-01-02");
        group_claim.as_object_mut().unwrap().remove("applicant");
        group_claim["applicant_group"] = json!("joint1");
        env.ok(T, group_claim).await;
        env.ok(T, rtb_claim("C-1", "tenant1", "freehold", "2026-01-05T08:30:00Z")).await;
        assert_has(&env.rejected(T, rtb_claim("C-1", "tenant1", "freehold", "2026-01-05")).await, "case C-1 already exists");
        let case = env.case("C-2").await;
        assert_eq!((case.case.applicant_group.as_deref(), case.case.tenure.as_deref()), (Some("joint1"), Some("leasehold")));
        assert_eq!(case.case.attributes.0["qualifying_period_all_with_landlord"], true);
    }

    async fn claims_are_taken_only_where_and_when_the_scheme_exists(env: Env) {
        env.seed_organisation().await;
        let claim = |r: &str, scheme: &str, country: &str, received: &str| {
            let mut c = rtb_claim(r, "tenant1", "freehold", received);
            c["scheme"] = json!(scheme);
            c["country"] = json!(country);
            c
        };
        // Wales: abolished from 26 January 2019.
        env.ok(T, claim("W-1", "right_to_buy", "wales", "2019-01-25")).await;
        assert_has(&env.rejected(T, claim("W-2", "right_to_buy", "wales", "2019-01-26")).await,
            "right_to_buy is not available in wales for a claim received on 2019-01-26: the last claims were accepted on 2019-01-25");
        // Scotland: applications up to 31 July 2016.
        env.ok(T, claim("S-1", "right_to_buy", "scotland", "2016-07-31")).await;
        let reason = env.rejected(T, claim("S-2", "right_to_buy", "scotland", "2016-08-01")).await;
        assert_has(&reason, "2016-07-31");
        // Northern Ireland: house sales continue; housing-association sales closed 28 August 2022.
        env.ok(T, claim("N-1", "right_to_buy", "northern_ireland", "2026-01-05")).await;
        assert_has(&env.rejected(T, claim("N-2", "right_to_acquire", "northern_ireland", "2022-08-28")).await, "2022-08-27");
        // England: all three schemes.
        env.ok(T, claim("E-1", "right_to_acquire", "england", "2026-01-05")).await;
        env.ok(T, claim("E-2", "social_homebuy", "england", "2026-01-05")).await;
        assert_has(&env.rejected(T, claim("S-3", "social_homebuy", "scotland", "2026-01-05")).await, "social_homebuy is not available in scotland");
        assert_eq!(env.case("S-1").await.case.definition_id, "right_to_buy-scotland");
    }

    async fn task_commands_check_the_task_and_its_state(env: Env) {
        env.seed_organisation().await;
        env.ok(T, rtb_claim("C-1", "tenant1", "freehold", "2026-01-05")).await;
        let at = "2026-01-06T09:00:00Z";
        // activate_task
        assert_has(&env.rejected(at, json!({"type": "activate_task", "case_ref": "C-9", "task": "register_claim"})).await, "unknown case \"C-9\"");
        assert_has(&env.rejected(at, json!({"type": "activate_task", "case_ref": "C-1", "task": "make_tea"})).await, "unknown task \"make_tea\"");
        assert_has(&env.rejected(at, json!({"type": "activate_task", "case_ref": "C-1", "task": "issue_rtb2"})).await, "belongs to stage eligibility, but case C-1 is in stage application");
        assert_has(&env.rejected(at, json!({"type": "activate_task", "case_ref": "C-1", "task": "register_claim"})).await, "starts automatically");
        assert_has(&env.rejected(at, json!({"type": "activate_task", "case_ref": "C-1", "task": "check_signatories"})).await, "is already active");
        env.ok(at, json!({"type": "activate_task", "case_ref": "C-1", "task": "request_previous_landlord_evidence"})).await;
        // complete_task
        assert_has(&env.rejected(at, complete("C-1", "register_claim", "off1")).await, "is not active yet");
        assert_has(&env.rejected(at, complete("C-1", "check_signatories", "nobody")).await, "by: unknown user \"nobody\"");
        let mut future = complete("C-1", "check_signatories", "off1");
        future["at"] = json!("2026-02-01T09:00:00Z");
        assert_has(&env.rejected(at, future).await, "is in the future");
        let mut early = complete("C-1", "check_signatories", "off1");
        early["at"] = json!("2026-01-01T09:00:00Z");
        assert_has(&env.rejected(at, early).await, "before the task was activated");
        let mut done = complete("C-1", "check_signatories", "off1");
        done["at"] = json!("2026-01-05T15:00:00Z");
        done["outcome"] = json!("all signed");
        env.ok(at, done).await;
        assert_has(&env.rejected(at, complete("C-1", "check_signatories", "off1")).await, "is not active (it is completed)");
        let task = env.case("C-1").await.stages[0].tasks.iter().find(|t| t.task == "check_signatories").cloned().unwrap();
        assert_eq!((task.completed_at.unwrap().to_rfc3339().as_str(), task.outcome.as_deref()), ("2026-01-05T15:00:00+00:00", Some("all signed")));
        // skip_task
        assert_has(&env.rejected(at, json!({"type": "skip_task", "case_ref": "C-1", "task": "check_property_address"})).await, "is mandatory; only optional tasks can be skipped");
        env.ok(at, json!({"type": "skip_task", "case_ref": "C-1", "task": "request_previous_landlord_evidence", "by": "off1", "reason": "single landlord"})).await;
        assert_eq!(env.task_status("C-1", "request_previous_landlord_evidence").await, "skipped");
        assert_has(&env.rejected(at, json!({"type": "skip_task", "case_ref": "C-1", "task": "request_previous_landlord_evidence"})).await, "is skipped");
        // hold_task and release_task
        let hold = |until: &str| json!({"type": "hold_task", "case_ref": "C-1", "task": "check_property_address", "until": until, "reason": "tenant in hospital"});
        assert_has(&env.rejected(at, hold("2026-01-06T08:00:00Z")).await, "is not in the future");
        assert_has(&env.rejected(at, json!({"type": "hold_task", "case_ref": "C-1", "task": "check_property_address", "until": "2026-02-01"})).await, "missing field `reason`");
        assert_has(&env.rejected(at, json!({"type": "release_task", "case_ref": "C-1", "task": "check_property_address"})).await, "is active, not on hold");
        env.ok(at, hold("2026-02-01")).await;
        assert_eq!(env.task_status("C-1", "check_property_address").await, "on_hold");
        assert_has(&env.rejected(at, complete("C-1", "check_property_address", "off1")).await, "is on hold until 2026-02-01T09:00:00+00:00; release it first");
        assert_has(&env.rejected(at, hold("2026-03-01")).await, "is on hold");
        env.ok("2026-01-08T09:00:00Z", json!({"type": "release_task", "case_ref": "C-1", "task": "check_property_address"})).await;
        let task = env.case("C-1").await.stages[0].tasks.iter().find(|t| t.task == "check_property_address").cloned().unwrap();
        assert_eq!((task.status.as_str(), task.held_seconds), ("active", 2 * 86400));
        let kinds = env.event_kinds("C-1").await;
        for k in ["task_activated", "task_completed", "task_skipped", "task_held", "task_released", "command_rejected"] {
            assert!(kinds.contains(&k.to_string()), "{k} in {kinds:?}");
        }
    }

    async fn case_commands_reassign_note_attach_advance_and_close(env: Env) {
        env.seed_organisation().await;
        env.ok(T, rtb_claim("C-1", "tenant1", "freehold", "2026-01-05")).await;
        let at = "2026-01-06T09:00:00Z";
        // reassign_case
        assert_has(&env.rejected(at, json!({"type": "reassign_case", "case_ref": "C-1", "owner": "ghost"})).await, "owner: \"ghost\" is not an active user");
        let owner = env.case("C-1").await.case.owner.unwrap();
        assert_has(&env.rejected(at, json!({"type": "reassign_case", "case_ref": "C-1", "owner": owner})).await, "is already owned by");
        let other = if owner == "off1" { "off2" } else { "off1" };
        env.ok(at, json!({"type": "reassign_case", "case_ref": "C-1", "owner": other})).await;
        let case = env.case("C-1").await;
        assert_eq!(case.case.owner.as_deref(), Some(other));
        assert!(case.stages[0].tasks.iter().all(|t| t.owner.as_deref() == Some(other) && t.line_manager.as_deref() == Some("mgr1")));
        let changed = case.events.iter().find(|e| e.kind == "owner_changed").unwrap();
        assert_eq!((changed.data.0["from"].as_str(), changed.data.0["to"].as_str()), (Some(owner.as_str()), Some(other)));
        // add_note
        env.ok(at, json!({"type": "add_note", "case_ref": "C-1", "by": "off1", "text": "Tenant phoned about the valuation."})).await;
        assert_has(&env.rejected(at, json!({"type": "add_note", "case_ref": "C-1", "by": "ghost", "text": "x"})).await, "by: unknown user");
        assert_has(&env.rejected(at, json!({"type": "add_note", "case_ref": "C-404", "by": "off1", "text": "x"})).await, "unknown case");
        // attach_file
        env.ok(at, json!({"type": "attach_file", "case_ref": "C-1", "name": "RTB1.pdf", "media_type": "application/pdf",
            "uri": "https://crm.example.org/docs/77", "size": 48213, "sha256": "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"})).await;
        assert_has(&env.rejected(at, json!({"type": "attach_file", "case_ref": "C-1", "name": "x", "media_type": "pdf", "uri": "https://x/y"})).await, "is not a media type");
        assert_has(&env.rejected(at, json!({"type": "attach_file", "case_ref": "C-1", "name": "x", "media_type": "application/pdf", "uri": "https://x/y", "sha256": "abc"})).await, "64 hexadecimal digits");
        assert_has(&env.rejected(at, json!({"type": "attach_file", "case_ref": "C-1", "name": "x", "media_type": "application/pdf", "uri": "https://x/y", "size": -1})).await, "must not be negative");
        let case = env.case("C-1").await;
        assert_eq!(case.notes.len(), 1);
        assert_eq!(case.attachments[0].sha256.as_deref(), Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"));
        // advance_case
        assert_has(&env.rejected(at, json!({"type": "advance_case", "case_ref": "C-1", "to_stage": "moon"})).await, "\"moon\" is not a stage of right_to_buy-england");
        assert_has(&env.rejected(at, json!({"type": "advance_case", "case_ref": "C-1", "to_stage": "valuation"})).await, "it allows no diversions");
        // close_case
        assert_has(&env.rejected(at, json!({"type": "close_case", "case_ref": "C-1"})).await, "missing field `outcome`");
        env.ok(at, json!({"type": "close_case", "case_ref": "C-1", "outcome": "withdrawn", "by": "off1"})).await;
        let case = env.case("C-1").await;
        assert_eq!((case.case.status.as_str(), case.case.outcome.as_deref()), ("closed", Some("withdrawn")));
        assert!(case.stages.iter().all(|s| s.stage.status.as_str() == "closed"));
        assert!(case.stages[0].tasks.iter().all(|t| !t.is_open()));
        assert_has(&env.rejected(at, json!({"type": "close_case", "case_ref": "C-1", "outcome": "again"})).await, "is closed (outcome: withdrawn)");
        // Notes and attachments are still accepted on a closed case: the file keeps its history.
        env.ok(at, json!({"type": "add_note", "case_ref": "C-1", "by": "off1", "text": "Withdrawal letter filed."})).await;
        let kinds = env.event_kinds("C-1").await;
        for k in ["owner_changed", "note_added", "file_attached", "case_closed"] {
            assert!(kinds.contains(&k.to_string()), "{k}");
        }
    }

    async fn a_repeated_command_id_has_no_second_effect(env: Env) {
        env.seed_organisation().await;
        let note = json!({"type": "add_note", "case_ref": "C-1", "by": "off1", "text": "once", "command_id": "crm-42"});
        let mut claim = rtb_claim("C-1", "tenant1", "freehold", "2026-01-05");
        claim["command_id"] = json!("crm-41");
        let ids = env.submit(&[claim.clone(), note.clone(), note.clone(), claim]).await;
        env.tick(T).await;
        let statuses: Vec<String> = futures_statuses(&env, &ids).await;
        assert_eq!(statuses, ["accepted", "accepted", "duplicate", "duplicate"]);
        let (_, reason) = env.inbox(ids[2]).await;
        assert_has(&reason.unwrap(), &format!("already processed as inbox #{}", ids[1]));
        assert_eq!(env.case("C-1").await.notes.len(), 1);
        // A rejected command's id is spent too: resending it changes nothing.
        let bad = json!({"type": "add_note", "case_ref": "C-404", "by": "off1", "text": "x", "command_id": "crm-43"});
        let ids = env.submit(&[bad.clone(), bad]).await;
        env.tick(T).await;
        assert_eq!(futures_statuses(&env, &ids).await, ["rejected", "duplicate"]);
    }

    async fn a_byte_order_mark_at_the_start_of_submitted_text_is_not_part_of_the_first_command(env: Env) {
        let text = "\u{FEFF}{\"type\":\"upsert_role\",\"ref\":\"legal\",\"name\":\"Legal\"}\n{\"type\":\"upsert_role\",\"ref\":\"housing\",\"name\":\"Housing\"}\n";
        let ids = env.submit_raw(text).await;
        env.tick(T).await;
        assert_eq!(futures_statuses(&env, &ids).await, ["accepted", "accepted"]);
        let (body,): (String,) = casewarden::db::sql("SELECT body FROM inbox WHERE id = $1").bind(ids[0]).fetch_one(&env.db).await.unwrap();
        assert!(body.starts_with('{'), "{body:?}");
    }

    async fn hostile_and_malformed_commands_are_rejected_line_by_line_and_the_rest_go_on(env: Env) {
        env.seed_organisation().await;
        let text = std::fs::read_to_string(repo_path("tests/fixtures/hostile.jsonl")).unwrap();
        let huge_note = json!({"type": "add_note", "case_ref": "C-1", "by": "off1", "text": "x".repeat(200_000)}).to_string();
        let bodies: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut ids = env.submit_raw(&text).await;
        // `submit` refuses a line over the limit; a CRM writing into the table is not stopped.
        ids.push(env.insert_raw(&huge_note).await);
        ids.extend(env.submit(&[rtb_claim("C-OK", "tenant1", "freehold", "2026-01-05")]).await);
        assert_eq!(ids.len(), bodies.len() + 2);
        let outcome = env.tick(T).await;
        assert_eq!((outcome.accepted, outcome.rejected), (1, bodies.len() as u64 + 1), "{outcome}");
        for (id, body) in ids.iter().zip(bodies.iter().copied().chain([huge_note.as_str()])) {
            let (status, reason) = env.inbox(*id).await;
            let reason = reason.unwrap_or_default();
            assert_eq!(status, "rejected", "{body:.80}");
            assert!(!reason.is_empty() && reason.len() < 600, "{body:.80} → {reason:.200}");
        }
        // The valid claim after them all went through.
        assert_eq!(env.case("C-OK").await.case.status.as_str(), "open");
        let rejected = env.all_events().await.into_iter().filter(|e| e.kind == "command_rejected").count();
        assert_eq!(rejected, bodies.len() + 1);
    }
}

async fn futures_statuses(env: &Env, ids: &[i64]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        out.push(env.inbox(*id).await.0);
    }
    out
}
