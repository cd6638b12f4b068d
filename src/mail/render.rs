//! Rendering a notification from its templates: `<kind>.subject.j2` and `<kind>.txt.j2` are
//! required, `<kind>.html.j2` optional (HTML autoescaped, usually extending `layout.html.j2`).
//! Templates see the outbox row's facts (case, stage, task, sla, recipient, ...) and
//! `organisation`. Undefined names are errors, so a typo is caught by `check`, not sent.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Value, json};

use crate::problems::Problem;

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Renderer {
    pub(super) env: Environment<'static>,
    kinds: BTreeSet<String>,
}

impl Renderer {
    /// Builds a renderer from (name, text) pairs, with the problems found: syntax errors and
    /// kinds that lack a text body. The renderer holds every template that parsed, so the rest can
    /// still be checked. `dir` names the directory in problems.
    pub fn new(dir: &std::path::Path, files: &[(String, String)]) -> (Renderer, Vec<Problem>) {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html.j2") || name.ends_with(".html") {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        env.set_keep_trailing_newline(true);
        env.add_filter("date", london_date);
        let mut problems = Vec::new();
        let mut kinds = BTreeSet::new();
        for (name, text) in files {
            if let Err(e) = env.add_template_owned(name.clone(), text.clone()) {
                problems.push(problem(dir, name, text, &e));
            }
            if let Some(kind) = name.strip_suffix(".subject.j2") {
                kinds.insert(kind.to_string());
            }
        }
        for kind in &kinds {
            if !files.iter().any(|(n, _)| n == &format!("{kind}.txt.j2")) {
                problems.push(
                    Problem::new(
                        &dir.join(format!("{kind}.subject.j2")),
                        (1, 1),
                        format!("notification {kind} has a subject but no {kind}.txt.j2"),
                    )
                    .help("every notification needs a plain-text body; the HTML one is optional"),
                );
            }
        }
        (Renderer { env, kinds }, problems)
    }

    pub fn kinds(&self) -> &BTreeSet<String> {
        &self.kinds
    }

    /// Renders one notification. The error says which template failed and why.
    pub fn render(
        &self,
        kind: &str,
        facts: &Value,
        organisation: &str,
    ) -> Result<Rendered, String> {
        if !self.kinds.contains(kind) {
            return Err(format!(
                "no template for notification {kind:?}: add templates/{kind}.subject.j2 and {kind}.txt.j2"
            ));
        }
        let mut ctx = facts.clone();
        if let Some(map) = ctx.as_object_mut() {
            map.insert("organisation".into(), json!({"name": organisation}));
        }
        let one = |name: String| -> Result<String, String> {
            let template = self
                .env
                .get_template(&name)
                .map_err(|e| format!("{name}: {e}"))?;
            template
                .render(&ctx)
                .map_err(|e| format!("{name}: {}", describe(&e)))
        };
        let subject = one(format!("{kind}.subject.j2"))?
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ")
            .trim()
            .to_string();
        let text = one(format!("{kind}.txt.j2"))?;
        let html_name = format!("{kind}.html.j2");
        let html = if self.env.get_template(&html_name).is_ok() {
            Some(one(html_name)?)
        } else {
            None
        };
        Ok(Rendered {
            subject,
            text,
            html,
        })
    }

    /// Renders one document template (not a notification), e.g. the housing pack.
    pub fn render_document(
        &self,
        name: &str,
        facts: &Value,
        organisation: &str,
    ) -> Result<String, String> {
        let template = self
            .env
            .get_template(name)
            .map_err(|_| format!("no template {name:?}: add templates/{name}"))?;
        let mut ctx = facts.clone();
        if let Some(map) = ctx.as_object_mut() {
            map.insert("organisation".into(), json!({"name": organisation}));
        }
        template
            .render(&ctx)
            .map_err(|e| format!("{name}: {}", describe(&e)))
    }

    /// Renders the housing pack's document templates with sample facts, as `check` does.
    pub fn check_pack(&self, dir: &std::path::Path, files: &[(String, String)]) -> Vec<Problem> {
        let facts = crate::advice::pack::sample_facts();
        [crate::advice::pack::HTML, crate::advice::pack::TEXT]
            .iter()
            .filter_map(|name| {
                let message = match self.env.get_template(name) {
                    Err(_) if files.iter().any(|(n, _)| n == name) => return None,
                    Err(_) => {
                        return Some(
                            Problem::new(&dir.join(name), (1, 1), format!("the housing pack needs templates/{name}"))
                                .help("housing options workflows with a [pack] render it from pack/housing_pack.html.j2 and pack/housing_pack.txt.j2"),
                        );
                    }
                    Ok(_) => self.render_document(name, &facts, "Example Housing").err()?,
                };
                let line = message
                    .rsplit_once(&format!("{name}:"))
                    .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
                    .unwrap_or(1);
                Some(
                    Problem::new(&dir.join(name), (line, 1), format!("rendering the housing pack with sample facts: {message}"))
                        .help("pack templates see: case, applicant, officer, pack, sections (title, statements: title, because, items: type, text, name, url, phone), organisation"),
                )
            })
            .collect()
    }

    /// Renders every notification with sample facts, as `check` does.
    pub fn check(&self, dir: &std::path::Path, files: &[(String, String)]) -> Vec<Problem> {
        let mut problems = Vec::new();
        for kind in &self.kinds {
            let parsed = |suffix: &str| {
                self.env
                    .get_template(&format!("{kind}.{suffix}.j2"))
                    .is_ok()
            };
            if !parsed("subject") || !parsed("txt") {
                continue;
            }
            let mut facts = sample_facts(kind);
            // Officers' notifications have it only where their definition allows it
            // (crate::personal), which `check` has made sure of: a template may read it then.
            if kind != crate::advice::pack::NOTIFICATION {
                facts["property"] = json!({"address": "1 Sample Street"});
            }
            if let Err(message) = self.render(kind, &facts, "Example Housing") {
                // "(in NAME:LINE)" names the template that failed, which may be an included one.
                let (name, line) = message
                    .rsplit_once("(in ")
                    .and_then(|(_, rest)| rest.trim_end_matches(')').rsplit_once(':'))
                    .and_then(|(n, l)| Some((n.to_string(), l.parse::<usize>().ok()?)))
                    .unwrap_or_else(|| {
                        (message.split(':').next().unwrap_or_default().to_string(), 1)
                    });
                let source = files
                    .iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, t)| t.lines().nth(line.saturating_sub(1)))
                    .map(|l| format!(" in `{}`", l.trim()))
                    .unwrap_or_default();
                let keys: Vec<String> = facts
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                problems.push(
                    Problem::new(
                        &dir.join(&name),
                        (line, 1),
                        format!("rendering {kind} with sample facts: {message}{source}"),
                    )
                    .help(format!(
                        "{kind} templates see: {}, organisation",
                        keys.join(", ")
                    )),
                );
            }
        }
        problems
    }
}

/// `{{ sla.target_at | date }}`: an RFC 3339 instant as people read it, in London time.
fn london_date(value: String) -> Result<String, minijinja::Error> {
    let t = chrono::DateTime::parse_from_rfc3339(&value).map_err(|_| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("{value:?} is not an RFC 3339 time"),
        )
    })?;
    Ok(t.with_timezone(&chrono_tz::Europe::London)
        .format("%A %-d %B %Y at %H:%M")
        .to_string())
}

fn describe(e: &minijinja::Error) -> String {
    let mut out = e
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| e.kind().to_string());
    if let (Some(name), Some(line)) = (e.name(), e.line()) {
        out.push_str(&format!(" (in {name}:{line})"));
    }
    out
}

fn problem(dir: &std::path::Path, name: &str, text: &str, e: &minijinja::Error) -> Problem {
    let src = crate::problems::Source {
        path: &dir.join(name),
        text,
    };
    let (line, column) = match (e.range(), e.line()) {
        (Some(r), _) => src.position(r.start),
        (None, Some(line)) => (line, 1),
        _ => (1, 1),
    };
    Problem::new(
        &dir.join(name),
        (line, column),
        format!("template syntax: {}", e.detail().unwrap_or("error")),
    )
}

/// Facts shaped like the ones the engine writes for each kind of notification, for checking
/// templates.
pub fn sample_facts(kind: &str) -> Value {
    // Every notification's `case` is the one model rules see (crate::facts).
    let case = crate::facts::CaseFacts::sample().to_value();
    let recipient = json!({"kind": "user", "ref": "off1", "name": "Olu Officer"});
    match kind {
        "housing_pack" => {
            let mut facts = crate::advice::pack::sample_facts();
            facts["recipient"] = json!({"kind": "contact", "ref": "c-1", "name": "Sam Applicant"});
            facts
        }
        "task_released" => json!({
            "case": case,
            "stage": {"key": "eligibility"}, "task": {"key": "issue_rtb2", "owner": "off1"},
            "release": {"task": "issue_rtb2", "stage": "eligibility", "reason": "release date reached",
                        "held_seconds": 86400, "sla_moved_working_days": 1, "owner": "off1"},
            "recipient": recipient,
        }),
        "allocation_needed" => json!({
            "case": case,
            "allocation": {"queue_role": "allocation_queue", "reason": "nobody holds the home_ownership role",
                           "rule": "allocation_right_to_buy", "rule_version": "0123456789abcdef"},
            "recipient": recipient,
        }),
        _ => json!({
            "kind": "task", "key": "issue_rtb2", "level": "exceeded", "repetition": 0,
            "sla": {"state": "amber", "amber_at": "2026-01-26T09:00:00Z", "target_at": "2026-02-02T09:00:00Z",
                    "due_at": "2026-02-02T09:00:00Z", "follow_ons": 0},
            "case_facts": case,
            "case": case,
            "stage": {"key": "eligibility", "name": "Eligibility and RTB2 notice", "master": "eligibility",
                      "owner": "off1", "line_manager": "mgr1"},
            "task": {"key": "issue_rtb2", "name": "Serve the RTB2 notice", "owner": "off1", "line_manager": "mgr1",
                     "mandatory": true, "role": "home_ownership"},
            "people": {"task_owner": "off1", "stage_owner": "off1", "case_owner": "off1", "line_manager": "mgr1",
                       "team_role": "home_ownership", "applicant": "T-1", "applicant_group": null},
            "recipient": recipient,
        }),
    }
}
