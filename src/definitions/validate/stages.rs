//! Checking a definition's stages and tasks: keys, successors, dependencies without circles,
//! and that a stage's target covers the chains of its tasks.

use super::*;

impl Compiler<'_> {
    /// A housing options workflow: one dependency graph of tasks, run as a single stage.
    pub(super) fn workflow(&mut self, f: &DefinitionFile) -> (Option<Vec<Stage>>, Option<Pack>) {
        if let Some(s) = f.stages.first() {
            self.err(
                &s.key,
                "a housing options workflow has no stages",
                "write its tasks as top-level [[task]]s; their depends_on lists order them",
            );
        }
        if f.tasks.is_empty() {
            self.err(&f.id, "a workflow needs at least one [[task]]", "");
        } else if !f.tasks.iter().any(|t| t.mandatory) {
            self.err(
                &f.tasks[0].key,
                "the workflow has no mandatory task, so its case would complete the moment it is created",
                "make at least one task mandatory",
            );
        }
        let tasks = self.tasks(CASEWORK_STAGE, &f.tasks);
        let pack = f.pack.as_ref().and_then(|p| {
            let def = p.get_ref();
            match f
                .tasks
                .iter()
                .find(|t| t.key.get_ref() == def.task.get_ref())
            {
                Some(_) => Some(Pack {
                    task: def.task.get_ref().clone(),
                    send_to_applicant: def.send_to_applicant,
                    email_consent: def
                        .email_consent
                        .as_ref()
                        .map(|q| (q.get_ref().clone(), self.src.position(q.span().start))),
                }),
                None => {
                    self.err(
                        &def.task,
                        format!(
                            "pack task {:?} is not a task of this workflow",
                            def.task.get_ref()
                        ),
                        tasks_help(f),
                    );
                    None
                }
            }
        });
        let duties = self.duties(f);
        let stage = tasks.map(|mut tasks| {
            for t in &mut tasks {
                t.makes_pack = pack.as_ref().is_some_and(|p| p.task == t.key);
                t.duty = duties
                    .iter()
                    .find(|(_, task)| *task == t.key)
                    .map(|(duty, _)| duty.clone());
            }
            vec![Stage {
                key: CASEWORK_STAGE.to_string(),
                name: f.name.clone(),
                master: CASEWORK_STAGE.to_string(),
                order: 10,
                next: Successors::Final,
                diversions: Vec::new(),
                branch: false,
                sla: Sla::default(),
                tasks,
            }]
        });
        (stage, pack)
    }

    pub(super) fn stages(&mut self, defs: &[model::StageDef]) -> Option<Vec<Stage>> {
        let before = self.problems.len();
        let mut seen: HashMap<&str, &S<String>> = HashMap::new();
        let mut orders: HashMap<i64, &str> = HashMap::new();
        for s in defs {
            self.key("stage", &s.key);
            if !s.branch
                && let Some(other) = orders.insert(s.order, s.key.get_ref())
            {
                self.err(
                    &s.key,
                    format!(
                        "stage {:?} has the same order ({}) as stage {other:?}",
                        s.key.get_ref(),
                        s.order
                    ),
                    "give each stage that is not a branch its own order",
                );
            }
            if seen.insert(s.key.get_ref(), &s.key).is_some() {
                self.err(
                    &s.key,
                    format!("stage {:?} is defined twice", s.key.get_ref()),
                    "",
                );
            }
            self.enumerated("master stage", &s.master, MASTER_STAGES);
        }
        if !defs.is_empty() && defs.iter().all(|s| s.branch) {
            self.err(
                &defs[0].key,
                "every stage is a branch, so no stage can come first",
                "",
            );
        }
        let mut by_order: Vec<&model::StageDef> = defs.iter().filter(|s| !s.branch).collect();
        by_order.sort_by_key(|s| s.order);
        let mut out = Vec::new();
        for s in defs {
            let key = s.key.get_ref();
            for n in s.next.iter().flatten().chain(&s.diversions) {
                if !seen.contains_key(n.get_ref().as_str()) {
                    self.err(
                        n,
                        format!("stage {key:?} refers to unknown stage {:?}", n.get_ref()),
                        format!(
                            "known stages: {}",
                            defs.iter()
                                .map(|d| d.key.get_ref().as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                } else if n.get_ref() == key {
                    self.err(n, format!("stage {key:?} cannot follow itself"), "");
                }
            }
            for d in &s.diversions {
                if defs
                    .iter()
                    .any(|o| o.key.get_ref() == d.get_ref() && !o.branch)
                {
                    self.err(
                        d,
                        format!(
                            "{:?} is a diversion of {key:?} but not a branch stage",
                            d.get_ref()
                        ),
                        format!("add `branch = true` to stage {:?}", d.get_ref()),
                    );
                }
            }
            let next = match &s.next {
                Some(list) if list.is_empty() => Successors::Final,
                Some(list) if list.len() == 1 => Successors::One(list[0].get_ref().clone()),
                Some(list) => {
                    Successors::Choice(list.iter().map(|n| n.get_ref().clone()).collect())
                }
                None if s.branch => {
                    self.err(
                        &s.key,
                        format!("branch stage {key:?} must say which stages may follow it"),
                        "add `next = [...]` (an empty list ends the case)",
                    );
                    Successors::Final
                }
                None => by_order
                    .iter()
                    .find(|o| o.order > s.order)
                    .map_or(Successors::Final, |o| {
                        Successors::One(o.key.get_ref().clone())
                    }),
            };
            let sla = self.sla(&s.sla);
            let tasks = self.tasks(key, &s.tasks);
            if !s.tasks.is_empty() && !s.tasks.iter().any(|t| t.mandatory) {
                self.err(&s.key, format!("stage {key:?} has no mandatory task, so it would complete the moment it is entered"), "make at least one task mandatory");
            }
            if s.tasks.is_empty() {
                self.err(
                    &s.key,
                    format!("stage {key:?} has no tasks"),
                    "add a [[stage.task]]",
                );
            }
            if let (Some(sla), Some(tasks)) = (&sla, &tasks) {
                self.covers(s, sla, tasks);
                self.pauses(s, sla, tasks);
            }
            if let (Some(sla), Some(tasks)) = (sla, tasks) {
                out.push(Stage {
                    key: key.clone(),
                    name: s.name.clone(),
                    master: s.master.get_ref().clone(),
                    order: s.order,
                    next,
                    diversions: s.diversions.iter().map(|d| d.get_ref().clone()).collect(),
                    branch: s.branch,
                    sla,
                    tasks,
                });
            }
        }
        (self.problems.len() == before).then_some(out)
    }

    pub(super) fn tasks(&mut self, stage: &str, defs: &[model::TaskDef]) -> Option<Vec<Task>> {
        let before = self.problems.len();
        let mut seen = BTreeSet::new();
        for t in defs {
            self.key("task", &t.key);
            if let Some(r) = &t.role {
                self.role(r);
            }
            if !seen.insert(t.key.get_ref().as_str()) {
                self.err(
                    &t.key,
                    format!(
                        "task {:?} appears twice in stage {stage:?}",
                        t.key.get_ref()
                    ),
                    "a task may appear at most once per stage",
                );
            }
        }
        for t in defs {
            for d in &t.depends_on {
                if !seen.contains(d.get_ref().as_str()) {
                    self.err(
                        d,
                        format!(
                            "task {:?} depends on {:?}, which is not a task of stage {stage:?}",
                            t.key.get_ref(),
                            d.get_ref()
                        ),
                        format!(
                            "tasks of {stage:?}: {}",
                            seen.iter().copied().collect::<Vec<_>>().join(", ")
                        ),
                    );
                } else if d.get_ref() == t.key.get_ref() {
                    self.err(
                        d,
                        format!("task {:?} depends on itself", t.key.get_ref()),
                        "",
                    );
                }
            }
        }
        if self.problems.len() == before {
            self.cycles(defs);
        }
        let mut out = Vec::new();
        for t in defs {
            if let Some(sla) = self.sla(&t.sla) {
                out.push(Task {
                    key: t.key.get_ref().clone(),
                    name: t.name.clone(),
                    mandatory: t.mandatory,
                    activation: t.activation,
                    depends_on: t.depends_on.iter().map(|d| d.get_ref().clone()).collect(),
                    role: t.role.as_ref().map(|r| r.get_ref().clone()),
                    sla,
                    makes_pack: false,
                    duty: None,
                });
            }
        }
        (self.problems.len() == before).then_some(out)
    }

    /// A stage's target must cover its tasks': no task's own target, started after the longest
    /// chain of automatic tasks it depends on, may end after the stage's target. Clocks counted
    /// from the claim have another anchor and are capped at run time instead.
    pub(super) fn covers(&mut self, def: &model::StageDef, stage: &Sla, tasks: &[Task]) {
        use crate::definitions::ClockFrom;
        let Some(stage_target) = &stage.target else {
            return;
        };
        if stage.from == ClockFrom::CaseReceived {
            return;
        }
        let shortest = stage_target
            .periods()
            .into_iter()
            .min_by_key(Period::min_calendar_days);
        let Some(shortest) = shortest else { return };
        let longest = |t: &Task| {
            t.sla.target.as_ref().and_then(|x| {
                x.periods()
                    .into_iter()
                    .max_by_key(Period::max_calendar_days)
            })
        };
        for (i, task) in tasks.iter().enumerate() {
            if task.sla.from == ClockFrom::CaseReceived {
                continue;
            }
            let Some(own) = longest(task) else { continue };
            let lead = if task.sla.from == ClockFrom::StageEntered
                || task.activation == crate::definitions::Activation::Manual
            {
                Span::default()
            } else {
                chain(tasks, &task.depends_on, &longest)
            };
            let total = lead.plus(own);
            if !total.fits_within(shortest) {
                let span = def.tasks[i]
                    .sla
                    .target
                    .as_ref()
                    .map(|t| t.span())
                    .or_else(|| def.tasks[i].sla.target_by.as_ref().map(|t| t.fact.span()));
                let at = span.map_or(def.tasks[i].key.span().start, |s| s.start);
                let after = if lead.is_zero() {
                    String::new()
                } else {
                    format!(" after {} of tasks it depends on", lead)
                };
                self.problems.push(
                    self.src
                        .at(at, format!(
                            "task {:?} has a target of {own}{after}, which can end after its stage {:?}'s target of {shortest}",
                            task.key, def.key.get_ref()
                        ))
                        .help("lengthen the stage's target or shorten the task's; at run time a task's target is capped at its stage's"),
                );
            }
        }
    }

    /// Reports each dependency cycle once, at the dependency that closes it.
    pub(super) fn cycles(&mut self, defs: &[model::TaskDef]) {
        let index: HashMap<&str, &model::TaskDef> =
            defs.iter().map(|t| (t.key.get_ref().as_str(), t)).collect();
        let mut done: BTreeSet<&str> = BTreeSet::new();
        for start in defs {
            let mut path: Vec<&str> = Vec::new();
            self.visit(start.key.get_ref(), &index, &mut path, &mut done);
        }
    }

    pub(super) fn visit<'d>(
        &mut self,
        key: &'d str,
        index: &HashMap<&str, &'d model::TaskDef>,
        path: &mut Vec<&'d str>,
        done: &mut BTreeSet<&'d str>,
    ) {
        if done.contains(key) {
            return;
        }
        path.push(key);
        for dep in &index[key].depends_on {
            let d = dep.get_ref().as_str();
            if let Some(pos) = path.iter().position(|p| *p == d) {
                let mut cycle: Vec<&str> = path[pos..].to_vec();
                cycle.push(d);
                self.err(
                    dep,
                    format!("task dependency cycle: {}", cycle.join(" → ")),
                    "remove one of these depends_on entries; tasks must form a directed acyclic graph",
                );
            } else {
                self.visit(d, index, path, done);
            }
        }
        path.pop();
        done.insert(key);
    }
}

/// The help line naming a workflow's tasks, for a reference to one it does not have.
pub(super) fn tasks_help(f: &DefinitionFile) -> String {
    let keys: Vec<&str> = f.tasks.iter().map(|t| t.key.get_ref().as_str()).collect();
    format!("tasks: {}", keys.join(", "))
}
