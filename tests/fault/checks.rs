//! What must hold after the kills, read from the database and the SMTP server.

use std::collections::BTreeMap;

use casewarden::db::{Db, sql};
use casewarden::events::Event;
use serde_json::Value;

use crate::smtp::Arrivals;
use crate::workload::{Effect, Sent};

/// What the run produced, to show it tested something.
#[derive(Debug)]
pub struct Report {
    pub escalations: usize,
    pub notifications: usize,
}

/// Every check; `sent[i]` went in as inbox row `inbox_ids[i]`.
pub async fn all(db: &Db, sent: &[Sent], inbox_ids: &[i64], arrivals: &Arrivals) -> Report {
    let events = casewarden::events::since(db, 0, 1_000_000).await.unwrap();
    every_command_applied_exactly_once(db, sent, inbox_ids, &events).await;
    let escalations = no_escalation_fired_twice(db, &events).await;
    let notifications = no_notification_lost(db, arrivals).await;
    Report {
        escalations,
        notifications,
    }
}

/// One inbox row per command, in the state expected of it, and exactly one effect each: a
/// `case_created` per claim, a `task_completed` per completion, a `command_rejected` per
/// rejection; a duplicate has none.
async fn every_command_applied_exactly_once(
    db: &Db,
    sent: &[Sent],
    inbox_ids: &[i64],
    events: &[Event],
) {
    let inbox: Vec<(i64, String, Option<String>, Option<String>)> =
        sql("SELECT id, status, reason, command_id FROM inbox ORDER BY id")
            .fetch_all(db)
            .await
            .unwrap();
    assert_eq!(inbox.len(), sent.len(), "inbox rows vs commands submitted");
    let by_id: BTreeMap<i64, _> = inbox.iter().map(|r| (r.0, r)).collect();
    for (s, id) in sent.iter().zip(inbox_ids) {
        let row = by_id[id];
        assert_eq!(
            (row.1.as_str(), row.3.as_deref()),
            (s.expect, Some(s.command_id.as_str())),
            "inbox #{id} ({}): reason {:?}",
            s.body,
            row.2
        );
    }
    let (processed,): (i64,) = sql("SELECT COUNT(*) FROM processed_commands")
        .fetch_one(db)
        .await
        .unwrap();
    let originals = sent.iter().filter(|s| s.expect != "duplicate").count();
    assert_eq!(processed as usize, originals, "processed_commands rows");

    let mut effects: BTreeMap<Effect, u32> = BTreeMap::new();
    let mut rejections: BTreeMap<i64, u32> = BTreeMap::new();
    for e in events {
        let case = e.case_ref.clone().unwrap_or_default();
        let data = &e.data.0;
        match e.kind.as_str() {
            "case_created" => *effects.entry(Effect::CaseCreated(case)).or_default() += 1,
            "task_completed" => {
                let task = data["task"].as_str().unwrap_or_default().to_string();
                *effects
                    .entry(Effect::TaskCompleted(case, task))
                    .or_default() += 1;
            }
            "command_rejected" => {
                *rejections
                    .entry(data["inbox_id"].as_i64().unwrap_or(-1))
                    .or_default() += 1
            }
            _ => {}
        }
    }
    let expected: BTreeMap<Effect, u32> = sent
        .iter()
        .filter_map(|s| s.effect.clone())
        .map(|e| (e, 1))
        .collect();
    let wrong: Vec<_> = expected
        .keys()
        .chain(effects.keys())
        .filter(|k| expected.get(*k) != effects.get(*k))
        .map(|k| (k, expected.get(k), effects.get(k)))
        .collect();
    assert!(
        wrong.is_empty(),
        "effects (expected, found) that differ: {wrong:?}"
    );
    let rejected: BTreeMap<i64, u32> = sent
        .iter()
        .zip(inbox_ids)
        .filter(|(s, _)| s.expect == "rejected")
        .map(|(_, id)| (*id, 1))
        .collect();
    assert_eq!(rejections, rejected, "command_rejected events by inbox id");
}

/// One `escalations` row per (item, level, repetition), one SLA event per row, and one
/// notification per addressee of each. Returns how many fired.
async fn no_escalation_fired_twice(db: &Db, events: &[Event]) -> usize {
    let escalations: Vec<(String, i64, String, i64)> =
        sql("SELECT item_kind, item_id, level, repetition FROM escalations ORDER BY id")
            .fetch_all(db)
            .await
            .unwrap();
    let mut fired: BTreeMap<&(String, i64, String, i64), u32> = BTreeMap::new();
    for e in &escalations {
        *fired.entry(e).or_default() += 1;
    }
    let twice: Vec<_> = fired.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "escalations fired twice: {twice:?}");
    let mut sla_events: BTreeMap<(String, String, String, String, String, i64), u32> =
        BTreeMap::new();
    let sla = ["sla_amber", "sla_exceeded", "sla_follow_on"];
    for e in events.iter().filter(|e| sla.contains(&e.kind.as_str())) {
        let d = &e.data.0;
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let key = (
            e.case_ref.clone().unwrap_or_default(),
            s(&d["item"]),
            s(&d["stage"]),
            s(&d["key"]),
            s(&d["level"]),
            d["repetition"].as_i64().unwrap_or(-1),
        );
        *sla_events.entry(key).or_default() += 1;
    }
    let repeated: Vec<_> = sla_events.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "SLA events written twice: {repeated:?}"
    );
    assert_eq!(
        sla_events.len(),
        escalations.len(),
        "one SLA event per escalation"
    );
    let per_addressee: Vec<(i64, String, String, i64)> = sql(
        "SELECT escalation_id, template, COALESCE(recipient_ref, ''), COUNT(*) FROM outbox \
         WHERE escalation_id IS NOT NULL GROUP BY escalation_id, template, recipient_ref HAVING COUNT(*) > 1",
    )
    .fetch_all(db)
    .await
    .unwrap();
    assert!(
        per_addressee.is_empty(),
        "an escalation notified someone twice: {per_addressee:?}"
    );
    escalations.len()
}

/// Every outbox row sent, its message arrived at the server at least once, and nothing arrived
/// that is no row's. Returns how many rows there are.
async fn no_notification_lost(db: &Db, arrivals: &Arrivals) -> usize {
    let outbox: Vec<(i64, String, String, i64, Option<String>)> =
        sql("SELECT id, template, status, attempts, last_error FROM outbox ORDER BY id")
            .fetch_all(db)
            .await
            .unwrap();
    let unsent: Vec<_> = outbox.iter().filter(|r| r.2 != "sent").collect();
    assert!(
        unsent.is_empty(),
        "outbox rows not sent (id, template, status, attempts, last error): {unsent:?}"
    );
    let lost: Vec<i64> = outbox
        .iter()
        .map(|r| r.0)
        .filter(|id| !arrivals.by_outbox_id.contains_key(id))
        .collect();
    assert!(
        lost.is_empty(),
        "sent but never arrived (outbox ids): {lost:?}"
    );
    let phantoms: Vec<_> = arrivals
        .by_outbox_id
        .keys()
        .filter(|id| !outbox.iter().any(|r| r.0 == **id))
        .collect();
    assert!(
        phantoms.is_empty() && arrivals.unrecognised.is_empty(),
        "messages for no outbox row: {phantoms:?} {:?}",
        arrivals.unrecognised
    );
    outbox.len()
}
