//! One firing as values: which checkpoint of an item is due, what its rule and its templates
//! see of it, what the rule decided (or why it could not), where its clock goes next, and the
//! events that record it. No database and no async here: `batch` reads around it and `write`
//! writes what it decides.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::db::rows::CaseRow;
use crate::definitions::{Definition, Sla};
use crate::engine::deadlines::{Item, ItemKind, item_sla};
use crate::engine::guard::panic_message;
use crate::engine::recipients::People;
use crate::events::kinds::{self, Kind};
use crate::rules::escalation::{self, Action, Recipient};
use crate::rules::{RuleSet, Sandbox, Script};
use crate::sla::Calendar;
use crate::sla::checkpoint::{self, Checkpoint, Dates, Level};

/// A due item whose checkpoint is to fire, with what governs its clock.
pub(super) struct Due {
    pub kind: ItemKind,
    pub item: Item,
    pub def: Arc<Definition>,
    pub sla: Sla,
    pub dates: Dates,
    pub cp: Checkpoint,
}

/// What a due item needs: a checkpoint fired, or only its clock looked at again later (`None`:
/// never, for a clock with nothing more to check).
pub(super) enum Next {
    Fire(Box<Due>),
    Recheck(Option<DateTime<Utc>>),
}

/// The item's next checkpoint, if it is due at `now`.
pub(super) fn next(
    rules: &RuleSet,
    case: &CaseRow,
    kind: ItemKind,
    item: Item,
    now: DateTime<Utc>,
) -> Next {
    let governs = item_sla(rules, case, kind, &item);
    // A held task's clock stops, unless the law does not pause it.
    let open = match kind {
        ItemKind::Task => {
            item.status == "active"
                || (item.status == "on_hold"
                    && governs.as_ref().is_some_and(|(_, sla)| !sla.pausable))
        }
        ItemKind::Stage => item.status == "open",
    };
    // The next checkpoint, or none when the clock has nothing more to check (closed, no SLA, no
    // target, or every level fired).
    let (def, sla, dates, cp) = match (open, governs, item.target_at) {
        (true, Some((def, sla)), Some(target)) => {
            let dates = Dates {
                target,
                amber: item.amber_at,
            };
            let state = item.sla_state.as_str();
            match checkpoint::next(
                rules.calendar(&def),
                &sla,
                state,
                item.follow_ons as u32,
                dates,
            ) {
                Some(cp) => (def, sla, dates, cp),
                None => return Next::Recheck(None),
            }
        }
        _ => return Next::Recheck(None),
    };
    if cp.at > now {
        return Next::Recheck(Some(cp.at));
    }
    Next::Fire(Box::new(Due {
        kind,
        item,
        def,
        sla,
        dates,
        cp,
    }))
}

impl Due {
    /// The item's clock once the checkpoint has fired: its SLA state, follow-ons counted, and
    /// its next checkpoint.
    pub fn clock_after(&self, cal: &Calendar) -> (&'static str, i64, Option<DateTime<Utc>>) {
        let state = self.cp.level.state_after();
        let follow_ons = if self.cp.level == Level::FollowOn {
            i64::from(self.cp.repetition)
        } else {
            self.item.follow_ons
        };
        let next = checkpoint::next(cal, &self.sla, state, follow_ons as u32, self.dates);
        (state, follow_ons, next.map(|c| c.at))
    }

    /// What the escalation rule and the notification templates see of the item, and the people
    /// around it. `case_facts` is `case.facts(Some(def))` as a value, shared by a case's items.
    pub fn facts(&self, case: &CaseRow, case_facts: &Value) -> (Value, People) {
        let (kind, item, def, cp) = (self.kind, &self.item, &self.def, &self.cp);
        let stage = def.stage(&item.stage_key);
        let task = (kind == ItemKind::Task)
            .then(|| stage.and_then(|s| s.task(&item.key)))
            .flatten();
        // The people around the item: what rules see, and whom notifications resolve to.
        let people = People {
            task_owner: (kind == ItemKind::Task)
                .then(|| item.owner.clone())
                .flatten(),
            stage_owner: item.stage_owner.clone(),
            case_owner: case.owner.clone(),
            line_manager: item.line_manager.clone(),
            team_role: def.team_role.clone(),
            applicant: case.applicant_contact.clone(),
            applicant_group: case.applicant_group.clone(),
        };
        let mut facts = json!({
            "kind": kind.as_str(),
            "key": item.key,
            "level": cp.level.as_str(),
            "repetition": cp.repetition,
            "sla": {"state": item.sla_state, "amber_at": item.amber_at, "target_at": item.target_at, "due_at": cp.at, "follow_ons": item.follow_ons},
            "stage": {"key": item.stage_key, "name": stage.map(|s| s.name.clone()), "master": stage.map(|s| s.master.clone()),
                      "owner": item.stage_owner, "line_manager": item.stage_line_manager},
            "task": match task {
                Some(t) => json!({"key": t.key, "name": t.name, "owner": item.owner, "line_manager": item.line_manager,
                                  "mandatory": t.mandatory, "role": t.role.clone().unwrap_or_else(|| def.team_role.clone())}),
                None => Value::Null,
            },
            "people": people,
        });
        // `case` is a reserved word in Rhai, so rules read the same facts as `item.case_facts`.
        // (Copied in rather than written into `json!`, which would serialise them again.)
        facts["case_facts"] = case_facts.clone();
        facts["case"] = case_facts.clone();
        (facts, people)
    }

    /// The rule that decides this checkpoint: the one the definition names for its level, else
    /// `escalation/default_<level>`; none when the rule set has neither.
    pub fn rule(&self, rules: &RuleSet) -> Option<Arc<Script>> {
        let named = match self.cp.level {
            Level::Amber => &self.sla.escalation.amber,
            Level::Exceeded => &self.sla.escalation.exceeded,
            Level::FollowOn => &self.sla.escalation.follow_on,
        };
        let name = named
            .clone()
            .unwrap_or_else(|| format!("escalation/default_{}", self.cp.level.as_str()));
        rules.scripts.get(&name).cloned()
    }
}

/// What the rule decided, or why it could not decide.
pub(super) struct Decision {
    pub rule: Option<(String, String)>,
    pub actions: Vec<Action>,
    pub reason: Option<String>,
    pub error: Option<String>,
}

impl Decision {
    pub fn reassigns(&self) -> bool {
        self.actions
            .iter()
            .any(|a| matches!(a, Action::Reassign { .. }))
    }
}

/// A due checkpoint made ready to fire: what its rule and templates see, and what the rule
/// decided, or the failure of a rule that panicked.
pub(super) struct Prepared {
    pub due: Due,
    pub people: People,
    pub facts: Value,
    pub decision: Result<Decision, String>,
}

/// Works out each due checkpoint's facts and runs its rule, in order. Blocking: call it off the
/// async threads. A rule that fails gives the fallback decision with the error, as the firing's
/// `rule_error` event records it; one that panics gives that firing's failure.
pub(super) fn prepare(
    rules: &RuleSet,
    cases: &HashMap<i64, CaseRow>,
    dues: Vec<Due>,
) -> Vec<Prepared> {
    // A case's facts are worked out once for all its items.
    let mut case_facts: HashMap<i64, Value> = HashMap::new();
    dues.into_iter()
        .map(|due| {
            let case = &cases[&due.item.case_id];
            let shared = case_facts
                .entry(case.id)
                .or_insert_with(|| case.facts(Some(&due.def)).to_value());
            let (facts, people) = due.facts(case, shared);
            let script = due.rule(rules);
            let decide = || {
                decide(
                    &rules.sandbox,
                    script.as_deref(),
                    due.kind,
                    due.cp.level,
                    &facts,
                )
            };
            let decision =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(decide)).map_err(|panic| {
                    format!("escalation rule thread failed: {}", panic_message(&panic))
                });
            Prepared {
                due,
                people,
                facts,
                decision,
            }
        })
        .collect()
}

fn decide(
    sandbox: &Sandbox,
    script: Option<&Script>,
    kind: ItemKind,
    level: Level,
    facts: &Value,
) -> Decision {
    let Some(script) = script else {
        return Decision {
            rule: None,
            actions: fallback(kind, level),
            reason: Some(format!(
                "no {} escalation rule: the owner is told",
                level.as_str()
            )),
            error: None,
        };
    };
    let rule = Some((script.name.clone(), script.version.clone()));
    match escalation::escalate(sandbox, script, facts) {
        Ok(decided) => Decision {
            rule,
            actions: decided.actions,
            reason: decided.reason,
            error: None,
        },
        Err(e) => Decision {
            rule,
            actions: fallback(kind, level),
            reason: Some("the rule failed: the owner is told instead".to_string()),
            error: Some(e.to_string()),
        },
    }
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

/// The `rule_error` event of a rule that failed, written before the checkpoint's own event.
pub(super) fn rule_error(decision: &Decision, level: Level) -> Option<Kind> {
    let error = decision.error.as_ref()?;
    let (rule, version) = decision.rule.clone().unzip();
    Some(Kind::RuleError(kinds::RuleError {
        rule,
        rule_version: Some(version),
        message: error.clone(),
        during: kinds::During::escalation(level),
        fallback: Some("the item's owner is notified".into()),
        item: None,
        expression: None,
        consequence: None,
    }))
}

/// The `sla_amber`, `sla_exceeded` or `sla_follow_on` event of a checkpoint, with what was done.
pub(super) fn reached(due: &Due, decision: Decision, actions: Vec<Value>) -> Kind {
    let (rule, rule_version) = decision.rule.unzip();
    let (item, cp) = (&due.item, due.cp);
    let sla = kinds::Sla {
        item: match due.kind {
            ItemKind::Task => kinds::SlaItem::Task,
            ItemKind::Stage => kinds::SlaItem::Stage,
        },
        key: item.key.clone(),
        // The stage's key, as the facts give it.
        stage: item.stage_key.clone(),
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
