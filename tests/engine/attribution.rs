//! Who a command's events name as their actor: the user in its `by`, else the API client that
//! submitted it, else `crm`.

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
        let told: i64 = casewarden::db::sql("SELECT COUNT(*) FROM outbox WHERE template = 'task_released'")
            .scalar(&env.db).await.unwrap();
        assert_eq!(told, 0, "only the daemon's release at the date tells the owner");
    }
}
