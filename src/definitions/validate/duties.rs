//! Checking a workflow's `[duties]`: each names a known duty and a task of the workflow, and no
//! task runs two duties' clocks.

use super::*;

impl Compiler<'_> {
    /// The workflow's duties and the tasks whose clocks they run on, as (duty, task key).
    pub(super) fn duties(&mut self, f: &DefinitionFile) -> Vec<(String, String)> {
        let Some(duties) = &f.duties else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = Vec::new();
        for (duty, task) in duties.get_ref() {
            if !super::super::model::DUTIES.contains(&duty.as_str()) {
                self.err(
                    duties,
                    format!("[duties] names unknown duty {duty:?}"),
                    format!("duties: {}", super::super::model::DUTIES.join(", ")),
                );
                continue;
            }
            if !f.tasks.iter().any(|t| t.key.get_ref() == task.get_ref()) {
                self.err(
                    task,
                    format!(
                        "duty {duty:?} runs on task {:?}, which is not a task of this workflow",
                        task.get_ref()
                    ),
                    super::stages::tasks_help(f),
                );
                continue;
            }
            if let Some((other, _)) = out.iter().find(|(_, t)| t == task.get_ref()) {
                self.err(
                    task,
                    format!(
                        "task {:?} already runs the {other} duty's clock",
                        task.get_ref()
                    ),
                    "give each duty its own task",
                );
                continue;
            }
            out.push((duty.clone(), task.get_ref().clone()));
        }
        out
    }
}
