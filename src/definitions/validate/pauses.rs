//! Clocks the law does not pause: a stage whose clock a hold may carry past (a pausable one)
//! must not hold a task whose clock cannot be paused but can be starved by holds on the work it
//! waits for.

use super::*;

impl Compiler<'_> {
    /// Reports a stage with a pausable clock that covers a task whose clock is not pausable, is
    /// counted from before the task starts (the claim, or the stage's entry), and waits for tasks
    /// whose clocks are pausable. A hold on one of those moves its target on as far as the hold
    /// lasts, so nothing escalates before the work that must come first runs past the
    /// non-pausable task's target. A stage that is not pausable caps every target a hold moves
    /// at its own, which bounds that.
    pub(super) fn pauses(&mut self, def: &model::StageDef, stage: &Sla, tasks: &[Task]) {
        use crate::definitions::ClockFrom;
        if stage.target.is_none() || !stage.pausable {
            return;
        }
        for (i, task) in tasks.iter().enumerate() {
            if task.sla.pausable || task.sla.target.is_none() || task.sla.from == ClockFrom::Start {
                continue;
            }
            let mut waits_for = Vec::new();
            pausable_before(tasks, &task.depends_on, &mut waits_for);
            if waits_for.is_empty() {
                continue;
            }
            let anchor = match task.sla.from {
                ClockFrom::CaseReceived => "the claim",
                _ => "the stage's entry",
            };
            self.problems.push(
                self.src
                    .at(def.tasks[i].key.span().start, format!(
                        "stage {:?} has a pausable clock but covers task {:?}, whose clock is not pausable: it counts from {anchor} and waits for {}, whose clocks a hold moves on, so a hold on them can carry the work past {:?}'s target with nothing escalating before it",
                        def.key.get_ref(), task.key, waits_for.join(", "), task.key
                    ))
                    .help("mark the stage's clock not pausable (`pausable = false` in its sla: no hold then moves a task's target past the stage's), or the clocks of the tasks it waits for"),
            );
        }
    }
}

/// The tasks among `deps` and everything they wait for whose clocks a hold can move: a target,
/// and pausable. In the order first met, each once.
fn pausable_before(tasks: &[Task], deps: &[String], out: &mut Vec<String>) {
    for d in deps {
        let Some(t) = tasks.iter().find(|t| &t.key == d) else {
            continue;
        };
        if t.sla.pausable && t.sla.target.is_some() && !out.contains(&t.key) {
            out.push(t.key.clone());
        }
        pausable_before(tasks, &t.depends_on, out);
    }
}
