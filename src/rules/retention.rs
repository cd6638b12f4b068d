//! `rules/retention.toml`: how long after a case closes its personal data is kept, and what then
//! happens to it. Each rule names a case kind and, optionally, a scheme (home buy) or workflow
//! (housing options), an outcome and whether a homelessness duty was recorded; a closed case
//! takes the most specific rule that matches it (the one naming the most of these; of equally
//! specific rules, the first in the file). Without the file, or without a matching rule, a
//! case's data is kept until it is erased.
//!
//! The pure core: parsing, checking against the definitions, matching, and the due date.

use std::path::Path;

use chrono::{DateTime, Days, Months, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::definitions::Definition;
use crate::problems::{Problem, Source};

pub const FILE: &str = "retention.toml";

/// What happens when a case's retention period has run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The case's personal data is removed (`privacy::scrub_case`); its shell stays.
    Anonymise,
    /// As anonymise, and the rows that only held the case's content go too.
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Anonymise => "anonymise",
            Action::Delete => "delete",
        }
    }
}

/// A period after closure, in calendar years, months or days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Months(u32),
    Days(u64),
}

impl Keep {
    /// Parses "6 years", "24 months", "90 days" (also the singular).
    pub fn parse(text: &str) -> Option<Keep> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let [count, unit] = words[..] else {
            return None;
        };
        let count: u32 = count.parse().ok().filter(|n| (1..=1200).contains(n))?;
        match unit {
            "year" | "years" if count <= 100 => Some(Keep::Months(count * 12)),
            "month" | "months" => Some(Keep::Months(count)),
            "day" | "days" => Some(Keep::Days(u64::from(count))),
            _ => None,
        }
    }

    /// The time the period ends for a case closed at `closed`.
    pub fn after(self, closed: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Keep::Months(n) => closed.checked_add_months(Months::new(n)),
            Keep::Days(n) => closed.checked_add_days(Days::new(n)),
        }
    }
}

/// One rule, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub kind: String,
    /// A home buy scheme or a housing options workflow.
    pub stream: Option<String>,
    pub outcome: Option<String>,
    pub duty: Option<bool>,
    pub keep: Keep,
    pub action: Action,
    /// Where it is, `retention.toml:LINE`, which the event and the case name.
    pub label: String,
}

impl Rule {
    fn specificity(&self) -> usize {
        usize::from(self.stream.is_some())
            + usize::from(self.outcome.is_some())
            + usize::from(self.duty.is_some())
    }

    fn matches(&self, case: &ClosedCase) -> bool {
        self.kind == case.kind
            && self.stream.as_ref().is_none_or(|s| Some(s) == case.stream)
            && self
                .outcome
                .as_ref()
                .is_none_or(|o| Some(o) == case.outcome)
            && self.duty.is_none_or(|d| d == case.duty)
    }
}

/// What a rule looks at of a closed case.
#[derive(Debug)]
pub struct ClosedCase<'a> {
    pub kind: &'a str,
    pub stream: Option<&'a String>,
    pub outcome: Option<&'a String>,
    /// A homelessness duty was recorded on the case.
    pub duty: bool,
}

/// The retention rules in force, most specific first.
#[derive(Debug, Clone, Default)]
pub struct Retention {
    pub rules: Vec<Rule>,
    /// Changes when the rules do: the step works every closed case's date out again then.
    pub fingerprint: String,
}

impl Retention {
    /// The rule for a closed case, if any.
    pub fn rule_for(&self, case: &ClosedCase) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(case))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionFile {
    #[serde(default)]
    rule: Vec<Spanned<RuleFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    kind: Spanned<String>,
    scheme: Option<Spanned<String>>,
    workflow: Option<Spanned<String>>,
    outcome: Option<Spanned<String>>,
    duty: Option<bool>,
    keep_for: Spanned<String>,
    then: Spanned<String>,
}

/// Loads `rules/retention.toml` and checks it against the definitions; no file, no rules.
pub fn load(rules_dir: &Path, definitions: &[Definition]) -> Result<Retention, Vec<Problem>> {
    let path = rules_dir.join(FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Retention::default());
    };
    let src = Source {
        path: &path,
        text: &text,
    };
    let file: RetentionFile = toml::from_str(&text).map_err(|e| {
        vec![src.at(e.span().map_or(0, |s| s.start), e.message().trim().to_string())
            .help("write one [[rule]] per case kind, with kind, keep_for and then; see docs/data-protection.md#retention")]
    })?;
    let mut problems = Vec::new();
    let mut rules: Vec<Rule> = Vec::new();
    for spanned in &file.rule {
        let line = src.position(spanned.span().start).0;
        if let Some(rule) = check(&src, spanned.get_ref(), line, definitions, &mut problems) {
            if let Some(same) = rules.iter().find(|r| {
                (&r.kind, &r.stream, &r.outcome, r.duty)
                    == (&rule.kind, &rule.stream, &rule.outcome, rule.duty)
            }) {
                problems.push(
                    src.at(spanned.span().start, format!("this rule matches the same cases as the rule at {}", same.label))
                        .help("give each rule a different kind, scheme or workflow, outcome or duty; or remove one"),
                );
                continue;
            }
            rules.push(rule);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // Stable: of equally specific rules, the first in the file comes first.
    rules.sort_by_key(|r| std::cmp::Reverse(r.specificity()));
    Ok(Retention {
        rules,
        fingerprint: hex::encode(&Sha256::digest(text.as_bytes())[..8]),
    })
}

fn check(
    src: &Source,
    f: &RuleFile,
    line: usize,
    definitions: &[Definition],
    problems: &mut Vec<Problem>,
) -> Option<Rule> {
    let before = problems.len();
    let kind = f.kind.get_ref();
    let of_kind: Vec<&Definition> = definitions.iter().filter(|d| &d.kind == kind).collect();
    if of_kind.is_empty() {
        problems.push(
            src.at(f.kind.span().start, format!("unknown case kind {kind:?}"))
                .help("kind is home_buy or housing_options"),
        );
    }
    let (wanted, unwanted) = match kind.as_str() {
        "housing_options" => (("workflow", &f.workflow), ("scheme", &f.scheme)),
        _ => (("scheme", &f.scheme), ("workflow", &f.workflow)),
    };
    if let Some(u) = unwanted.1 {
        problems.push(
            src.at(
                u.span().start,
                format!("a {kind} case has no {}", unwanted.0),
            )
            .help(format!("name the {} instead", wanted.0)),
        );
    }
    if let Some(s) = wanted.1
        && !of_kind.is_empty()
        && !of_kind.iter().any(|d| d.stream() == s.get_ref())
    {
        let mut known: Vec<&str> = of_kind.iter().map(|d| d.stream()).collect();
        known.sort_unstable();
        known.dedup();
        problems.push(
            src.at(
                s.span().start,
                format!("unknown {} {:?}", wanted.0, s.get_ref()),
            )
            .help(format!("one of: {}", known.join(", "))),
        );
    }
    if let Some(o) = &f.outcome
        && (o.get_ref().trim().is_empty() || o.get_ref().chars().any(char::is_control))
    {
        problems.push(src.at(
            o.span().start,
            "outcome is empty or holds control characters",
        ));
    }
    let keep = Keep::parse(f.keep_for.get_ref());
    if keep.is_none() {
        problems.push(
            src.at(f.keep_for.span().start, format!("keep_for {:?} is not a period", f.keep_for.get_ref()))
                .help("write a whole number from 1 and years (up to 100), months or days, e.g. \"6 years\", \"24 months\""),
        );
    }
    let action = match f.then.get_ref().as_str() {
        "anonymise" => Some(Action::Anonymise),
        "delete" => Some(Action::Delete),
        other => {
            problems.push(
                src.at(
                    f.then.span().start,
                    format!("then {other:?} is not an action"),
                )
                .help("then is \"anonymise\" or \"delete\""),
            );
            None
        }
    };
    if problems.len() > before {
        return None;
    }
    Some(Rule {
        kind: kind.clone(),
        stream: wanted.1.as_ref().map(|s| s.get_ref().clone()),
        outcome: f.outcome.as_ref().map(|o| o.get_ref().clone()),
        duty: f.duty,
        keep: keep?,
        action: action?,
        label: format!("{FILE}:{line}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_whole_years_months_or_days() {
        assert_eq!(Keep::parse("6 years"), Some(Keep::Months(72)));
        assert_eq!(Keep::parse("1 month"), Some(Keep::Months(1)));
        assert_eq!(Keep::parse(" 90  days "), Some(Keep::Days(90)));
        for bad in [
            "",
            "6",
            "years",
            "0 years",
            "-1 years",
            "6 weeks",
            "1.5 years",
            "101 years",
            "6 years ago",
        ] {
            assert_eq!(Keep::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_period_in_months_ends_on_the_same_day_of_the_month_or_the_last_day() {
        let closed: DateTime<Utc> = "2020-02-29T10:00:00Z".parse().unwrap();
        let due = Keep::Months(12).after(closed).unwrap();
        assert_eq!(due.to_rfc3339(), "2021-02-28T10:00:00+00:00");
    }

    #[test]
    fn the_most_specific_rule_that_matches_wins() {
        let rule = |stream: Option<&str>, duty: Option<bool>, label: &str| Rule {
            kind: "housing_options".into(),
            stream: stream.map(String::from),
            outcome: None,
            duty,
            keep: Keep::Months(24),
            action: Action::Anonymise,
            label: label.into(),
        };
        let mut rules = vec![
            rule(None, None, "any"),
            rule(None, Some(true), "duty"),
            rule(Some("section_21"), Some(true), "s21"),
        ];
        rules.sort_by_key(|r| std::cmp::Reverse(r.specificity()));
        let retention = Retention {
            rules,
            fingerprint: String::new(),
        };
        let workflow = "section_21".to_string();
        let other = "leaving_care".to_string();
        let case = |stream, duty| ClosedCase {
            kind: "housing_options",
            stream,
            outcome: None,
            duty,
        };
        assert_eq!(
            retention
                .rule_for(&case(Some(&workflow), true))
                .unwrap()
                .label,
            "s21"
        );
        assert_eq!(
            retention.rule_for(&case(Some(&other), true)).unwrap().label,
            "duty"
        );
        assert_eq!(
            retention
                .rule_for(&case(Some(&other), false))
                .unwrap()
                .label,
            "any"
        );
        let home_buy = ClosedCase {
            kind: "home_buy",
            stream: None,
            outcome: None,
            duty: false,
        };
        assert!(retention.rule_for(&home_buy).is_none());
    }
}
