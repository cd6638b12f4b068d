//! The SLA sweep: each pass finds the stages and tasks whose next checkpoint is due and fires
//! each escalation once.
//!
//! Every open item carries `next_check_at`, the time of its next checkpoint. The sweep selects
//! due items through the partial index on that column, in batches, so its cost follows the work
//! that is due, not the work that is open. Each escalation is a row in `escalations` whose unique
//! key (item, level, repetition) makes it fire once, whatever passes repeat, overlap or die; its
//! events and outbox rows are written in the same transaction.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::deadlines::{Item, ItemKind, item_sla, load};
use super::error::StepError;
use super::guard;
use super::recipients::{self, People};
use crate::db::Db;
use crate::db::rows::{self, CaseRow};
use crate::db::{Tx, sql, sql2};
use crate::definitions::{Definition, Sla};
use crate::events::kinds::{self, Kind};
use crate::events::{self, ENGINE};
use crate::rules::RuleSet;
use crate::rules::escalation::{self, Action, Recipient};
use crate::sla::Calendar;
use crate::sla::checkpoint::{self, Checkpoint, Dates, Level};

/// Stages whose next SLA checkpoint is due, through `stages_sla_due`.
pub const DUE_STAGE_CHECKPOINTS: &str = "SELECT next_check_at, id FROM stages WHERE next_check_at <= $1 ORDER BY next_check_at, id LIMIT $2";

/// Tasks whose next SLA checkpoint is due, through `tasks_sla_due`.
pub const DUE_TASK_CHECKPOINTS: &str = "SELECT next_check_at, id FROM tasks WHERE next_check_at <= $1 ORDER BY next_check_at, id LIMIT $2";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub escalations: u64,
    pub notifications: u64,
}

/// Fires every checkpoint that is due at `now`, oldest first, in batches.
pub async fn run_once(
    db: &Db,
    rules: &Arc<RuleSet>,
    now: DateTime<Utc>,
    batch: i64,
    budget: &super::budget::Budget,
) -> Result<Outcome, StepError> {
    let mut outcome = Outcome::default();
    let mut skipped = guard::Skipped::default();
    loop {
        let mut due: Vec<(DateTime<Utc>, ItemKind, i64)> = Vec::new();
        let tasks: Vec<(DateTime<Utc>, i64)> = sql(DUE_TASK_CHECKPOINTS)
            .bind(now)
            .bind(batch)
            .fetch_all(db)
            .await?;
        let stages: Vec<(DateTime<Utc>, i64)> = sql(DUE_STAGE_CHECKPOINTS)
            .bind(now)
            .bind(batch)
            .fetch_all(db)
            .await?;
        due.extend(tasks.into_iter().map(|(at, id)| (at, ItemKind::Task, id)));
        due.extend(stages.into_iter().map(|(at, id)| (at, ItemKind::Stage, id)));
        due.retain(|(_, kind, id)| !skipped.has(*kind as u8, *id));
        if due.is_empty() {
            return Ok(outcome);
        }
        if budget.spent() {
            return Ok(outcome);
        }
        due.sort_by_key(|(at, kind, id)| (*at, *kind == ItemKind::Task, *id));
        for (_, kind, id) in due {
            match guard::catch(fire(db, rules, kind, id, now)).await {
                Ok(fired) => {
                    outcome.escalations += u64::from(fired.is_some());
                    outcome.notifications += fired.unwrap_or(0);
                }
                Err(error) => {
                    skipped.add(kind as u8, id);
                    guard::count_failure(db, set_aside(kind, id), &error, now).await?;
                }
            }
        }
    }
}

/// An item whose checkpoint cannot be fired: after repeated failures its clock is no longer
/// checked (`next_check_at` cleared). A later change to the item (a hold and release, a
/// completion) takes it on again.
fn set_aside(kind: ItemKind, id: i64) -> guard::Aside {
    let (step, take_out, case_of) = match kind {
        ItemKind::Task => (
            kinds::Step::SlaTask,
            sql("UPDATE tasks SET next_check_at = NULL WHERE id = $1"),
            sql("SELECT case_id FROM tasks WHERE id = $1"),
        ),
        ItemKind::Stage => (
            kinds::Step::SlaStage,
            sql("UPDATE stages SET next_check_at = NULL WHERE id = $1"),
            sql("SELECT case_id FROM stages WHERE id = $1"),
        ),
    };
    guard::Aside {
        step,
        kind: kind.as_str(),
        id,
        consequence: "its SLA clock is no longer checked until the item changes".to_string(),
        take_out: take_out.bind(id),
        case_of: case_of.bind(id),
    }
}

/// Fires the due checkpoint of one item. Returns the notifications written, or `None` when
/// nothing fired (the checkpoint was not due after all, or another pass fired it first).
async fn fire(
    db: &Db,
    rules: &Arc<RuleSet>,
    kind: ItemKind,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<u64>, StepError> {
    let Some(item) = load(db, kind, id).await? else {
        return Ok(None);
    };
    let case = rows::case_by_id(db, item.case_id).await?;
    let plan = due_checkpoint(rules, &case, kind, &item);
    let Some((def, sla, dates, cp)) = plan else {
        // A clock with nothing more to check: stop looking at it.
        reschedule(db, kind, &item, None).await?;
        return Ok(None);
    };
    if cp.at > now {
        reschedule(db, kind, &item, Some(cp.at)).await?;
        return Ok(None);
    }
    let (facts, people) = item_facts(db, &def, &case, kind, &item, &cp).await?;
    let decision = decide(rules, kind, &sla, &cp, &facts).await?;

    let mut tx = db.begin_write().await?;
    // Another writer may have fired this checkpoint since we read the item.
    match load(&mut tx, kind, id).await? {
        Some(now_item)
            if now_item.sla_state == item.sla_state && now_item.follow_ons == item.follow_ons => {}
        _ => return Ok(None),
    }
    let escalation_id: Option<(i64,)> = sql2(
        "INSERT INTO escalations (item_kind, item_id, level, repetition, case_id, fired_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (item_kind, item_id, level, repetition) DO NOTHING RETURNING id",
        "INSERT INTO escalations (item_kind, item_id, level, repetition, case_id, fired_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (item_kind, item_id, level, repetition) DO NOTHING RETURNING id",
    )
    .bind(kind.as_str())
    .bind(item.id)
    .bind(cp.level.as_str())
    .bind(i64::from(cp.repetition))
    .bind(case.id)
    .bind(now)
    .fetch_optional(&mut tx)
    .await?;
    advance_item_clock(&mut tx, rules.calendar(&def), &sla, kind, &item, &cp, dates).await?;
    let Some((escalation_id,)) = escalation_id else {
        // Fired before, by a pass that died after committing it: only the schedule was stale.
        tx.commit().await?;
        return Ok(None);
    };
    let written = act(
        &mut tx,
        &people,
        &case,
        kind,
        &item,
        &cp,
        &facts,
        escalation_id,
        decision,
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(case_ref = %case.case_ref, item = kind.as_str(), key = %item.key, level = cp.level.as_str(),
        repetition = cp.repetition, notifications = written, "escalation fired");
    Ok(Some(written))
}

/// The item's next checkpoint with what it is counted from, or None when its clock has nothing
/// more to check (closed, no SLA, no target, or every level fired).
fn due_checkpoint(
    rules: &RuleSet,
    case: &CaseRow,
    kind: ItemKind,
    item: &Item,
) -> Option<(Arc<Definition>, Sla, Dates, Checkpoint)> {
    let open = match kind {
        ItemKind::Task => item.status == "active",
        ItemKind::Stage => item.status == "open",
    };
    match (open, item_sla(rules, case, kind, item), item.target_at) {
        (true, Some((def, sla)), Some(target)) => {
            let cal = rules.calendar(&def);
            let dates = Dates {
                target,
                amber: item.amber_at,
            };
            checkpoint::next(
                cal,
                &sla,
                item.sla_state.as_str(),
                item.follow_ons as u32,
                dates,
            )
            .map(|cp| (def, sla, dates, cp))
        }
        _ => None,
    }
}

/// Moves the item's SLA state on past the checkpoint that fired, and schedules its next one.
async fn advance_item_clock(
    tx: &mut Tx,
    cal: &Calendar,
    sla: &Sla,
    kind: ItemKind,
    item: &Item,
    cp: &Checkpoint,
    dates: Dates,
) -> Result<(), sqlx::Error> {
    let state = cp.level.state_after();
    let follow_ons = if cp.level == Level::FollowOn {
        i64::from(cp.repetition)
    } else {
        item.follow_ons
    };
    let next = checkpoint::next(cal, sla, state, follow_ons as u32, dates).map(|c| c.at);
    let update = match kind {
        ItemKind::Task => sql(
            "UPDATE tasks SET sla_state = $1, follow_ons = $2, next_check_at = $3 WHERE id = $4",
        ),
        ItemKind::Stage => sql(
            "UPDATE stages SET sla_state = $1, follow_ons = $2, next_check_at = $3 WHERE id = $4",
        ),
    };
    update
        .bind(state)
        .bind(follow_ons)
        .bind(next)
        .bind(item.id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn reschedule(
    db: &Db,
    kind: ItemKind,
    item: &Item,
    at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let update = match kind {
        ItemKind::Task => {
            sql("UPDATE tasks SET next_check_at = $1 WHERE id = $2 AND next_check_at = $3")
        }
        ItemKind::Stage => {
            sql("UPDATE stages SET next_check_at = $1 WHERE id = $2 AND next_check_at = $3")
        }
    };
    update
        .bind(at)
        .bind(item.id)
        .bind(item.next_check_at)
        .execute(&mut tx)
        .await?;
    tx.commit().await
}

/// What the rule decided, or why it could not decide.
struct Decision {
    rule: Option<(String, String)>,
    actions: Vec<Action>,
    reason: Option<String>,
    error: Option<String>,
}

/// The escalation rule for a level: the one the definition names, else `escalation/default_<level>`.
fn rule_for<'r>(
    rules: &'r RuleSet,
    sla: &Sla,
    level: Level,
) -> Option<&'r Arc<crate::script::Script>> {
    let named = match level {
        Level::Amber => &sla.escalation.amber,
        Level::Exceeded => &sla.escalation.exceeded,
        Level::FollowOn => &sla.escalation.follow_on,
    };
    let name = named
        .clone()
        .unwrap_or_else(|| format!("escalation/default_{}", level.as_str()));
    rules.scripts.get(&name)
}

async fn decide(
    rules: &Arc<RuleSet>,
    kind: ItemKind,
    sla: &Sla,
    cp: &Checkpoint,
    facts: &Value,
) -> Result<Decision, StepError> {
    let Some(script) = rule_for(rules, sla, cp.level).cloned() else {
        return Ok(Decision {
            rule: None,
            actions: fallback(kind, cp.level),
            reason: Some(format!(
                "no {} escalation rule: the owner is told",
                cp.level.as_str()
            )),
            error: None,
        });
    };
    let sandbox = rules.sandbox.clone();
    let facts = facts.clone();
    let rule = Some((script.name.clone(), script.version.clone()));
    let result =
        tokio::task::spawn_blocking(move || escalation::escalate(&sandbox, &script, &facts))
            .await
            .map_err(|e| StepError::Internal(format!("escalation rule thread failed: {e}")))?;
    Ok(match result {
        Ok(decided) => Decision {
            rule,
            actions: decided.actions,
            reason: decided.reason,
            error: None,
        },
        Err(e) => Decision {
            rule,
            actions: fallback(kind, cp.level),
            reason: Some("the rule failed: the owner is told instead".to_string()),
            error: Some(e.to_string()),
        },
    })
}

/// Where no rule decides, or the rule fails, the item's owner is still told.
fn fallback(kind: ItemKind, level: Level) -> Vec<Action> {
    let owner = match kind {
        ItemKind::Task => Recipient::TaskOwner,
        ItemKind::Stage => Recipient::StageOwner,
    };
    vec![Action::Notify {
        to: vec![owner],
        template: format!("sla_{}", level.as_str()),
    }]
}

#[allow(clippy::too_many_arguments)]
async fn act(
    tx: &mut Tx,
    people: &People,
    case: &CaseRow,
    kind: ItemKind,
    item: &Item,
    cp: &Checkpoint,
    facts: &Value,
    escalation_id: i64,
    decision: Decision,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let at = case.event_target();
    if let Some(error) = &decision.error {
        let (rule, version) = decision.rule.clone().unzip();
        let failed = Kind::RuleError(kinds::RuleError {
            rule,
            rule_version: Some(version),
            message: error.clone(),
            during: kinds::During::escalation(cp.level),
            fallback: Some("the item's owner is notified".into()),
            item: None,
            expression: None,
            consequence: None,
        });
        events::record(tx, at, now, ENGINE, failed).await?;
    }
    let mut written = 0;
    let mut done = Vec::new();
    for action in &decision.actions {
        match action {
            Action::Notify { to, template } => {
                let to = to.clone();
                let addressees = recipients::resolve(tx, &to, people).await?;
                written += crate::outbox::enqueue(
                    tx,
                    case.id,
                    Some(escalation_id),
                    template,
                    &addressees,
                    facts,
                    now,
                )
                .await?;
                done.push(json!({"action": "notify", "template": template, "to": to, "addressees": addressees.len()}));
            }
            Action::Reassign { to } => {
                if rows::user_exists(&mut *tx, to, true).await? && case.owner.as_deref() != Some(to)
                {
                    let why = Some(format!("{} escalation", cp.level.as_str()));
                    super::progress::change_owner(tx, case, to, why, ENGINE, now).await?;
                    done.push(json!({"action": "reassign", "to": to}));
                } else {
                    done.push(json!({"action": "reassign", "to": to, "skipped": "not an active user, or already the owner"}));
                }
            }
        }
    }
    let reached = reached(kind, item, cp, facts, decision, done);
    events::record(tx, at, now, ENGINE, reached).await?;
    Ok(written)
}

/// The `sla_amber`, `sla_exceeded` or `sla_follow_on` event of a checkpoint, with what was done.
fn reached(
    kind: ItemKind,
    item: &Item,
    cp: &Checkpoint,
    facts: &Value,
    decision: Decision,
    actions: Vec<Value>,
) -> Kind {
    let (rule, rule_version) = decision.rule.unzip();
    let sla = kinds::Sla {
        item: match kind {
            ItemKind::Task => kinds::SlaItem::Task,
            ItemKind::Stage => kinds::SlaItem::Stage,
        },
        key: item.key.clone(),
        stage: facts["stage"]["key"].as_str().unwrap_or_default().into(),
        level: cp.level,
        repetition: cp.repetition.into(),
        due_at: cp.at,
        amber_at: item.amber_at,
        target_at: item.target_at,
        rule,
        rule_version,
        reason: decision.reason,
        actions,
    };
    match cp.level {
        Level::Amber => Kind::SlaAmber(sla),
        Level::Exceeded => Kind::SlaExceeded(sla),
        Level::FollowOn => Kind::SlaFollowOn(sla),
    }
}

/// What an escalation rule and a notification template see of the item.
async fn item_facts(
    db: &Db,
    def: &Definition,
    case: &CaseRow,
    kind: ItemKind,
    item: &Item,
    cp: &Checkpoint,
) -> Result<(Value, People), sqlx::Error> {
    let (stage_key, stage_owner, stage_lm): (String, Option<String>, Option<String>) =
        sql("SELECT stage, owner, line_manager FROM stages WHERE id = $1")
            .bind(item.stage_id)
            .fetch_one(db)
            .await?;
    let stage = def.stage(&stage_key);
    let task = (kind == ItemKind::Task)
        .then(|| stage.and_then(|s| s.task(&item.key)))
        .flatten();
    let case_facts = case.facts(Some(def)).to_value();
    // The people around the item: what rules see, and whom notifications resolve to.
    let people = People {
        task_owner: (kind == ItemKind::Task)
            .then(|| item.owner.clone())
            .flatten(),
        stage_owner: stage_owner.clone(),
        case_owner: case.owner.clone(),
        line_manager: item.line_manager.clone(),
        team_role: def.team_role.clone(),
        applicant: case.applicant_contact.clone(),
        applicant_group: case.applicant_group.clone(),
    };
    let facts = json!({
        "kind": kind.as_str(),
        "key": item.key,
        "level": cp.level.as_str(),
        "repetition": cp.repetition,
        "sla": {"state": item.sla_state, "amber_at": item.amber_at, "target_at": item.target_at, "due_at": cp.at, "follow_ons": item.follow_ons},
        // `case` is a reserved word in Rhai, so rules read the same facts as `item.case_facts`.
        "case_facts": case_facts,
        "case": case_facts,
        "stage": {"key": stage_key, "name": stage.map(|s| s.name.clone()), "master": stage.map(|s| s.master.clone()),
                  "owner": stage_owner, "line_manager": stage_lm},
        "task": match task {
            Some(t) => json!({"key": t.key, "name": t.name, "owner": item.owner, "line_manager": item.line_manager,
                              "mandatory": t.mandatory, "role": t.role.clone().unwrap_or_else(|| def.team_role.clone())}),
            None => Value::Null,
        },
        "people": people,
    });
    Ok((facts, people))
}
