//! Enquiry forms: typed questions linked to workflows, and the checking of answers against them.
//! An answer set is a JSON object keyed by question; a later submission is merged over the
//! earlier answers, and every bad answer is named with its reason.

use std::path::PathBuf;

use chrono::NaiveDate;
use serde_json::{Map, Value};

/// A compiled form.
#[derive(Debug, Clone)]
pub struct Form {
    pub id: String,
    pub name: String,
    pub workflows: Vec<String>,
    pub questions: Vec<Question>,
    /// Content hash, recorded with each case's answers.
    pub version: String,
    pub file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Question {
    pub key: String,
    pub text: String,
    pub help: Option<String>,
    pub required: bool,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    YesNo,
    SingleChoice(Vec<String>),
    MultipleChoice(Vec<String>),
    Number {
        min: Option<f64>,
        max: Option<f64>,
        whole: bool,
    },
    Date,
    Text {
        max_length: usize,
    },
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::YesNo => "yes_no",
            Kind::SingleChoice(_) => "single_choice",
            Kind::MultipleChoice(_) => "multiple_choice",
            Kind::Number { .. } => "number",
            Kind::Date => "date",
            Kind::Text { .. } => "text",
        }
    }
}

/// One answer that changed in a submission: its value before and after (null when unanswered).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Change {
    pub question: String,
    pub from: Value,
    pub to: Value,
}

/// A form as `casewarden form --json` and `GET /v1/forms/{workflow}` give it: what a CRM builds
/// its enquiry screen from.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Description {
    pub id: String,
    pub name: String,
    /// Content hash, recorded with each case's answers.
    pub version: String,
    /// The housing options workflows that use the form.
    pub workflows: Vec<String>,
    pub questions: Vec<QuestionDescription>,
}

#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct QuestionDescription {
    /// The answer's key in `submit_enquiry`'s `answers`.
    pub key: String,
    pub text: String,
    pub required: bool,
    pub help: Option<String>,
    #[serde(flatten)]
    pub answer: AnswerType,
}

/// What an answer must be: `type`, and the limits that type has.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AnswerType {
    /// `true` or `false`.
    YesNo,
    /// One of the choices, as a string.
    SingleChoice {
        choices: Vec<String>,
    },
    /// An array of choices.
    MultipleChoice {
        choices: Vec<String>,
    },
    Number {
        min: Option<f64>,
        max: Option<f64>,
        /// Whether only whole numbers are accepted.
        whole: bool,
    },
    /// `YYYY-MM-DD`.
    Date,
    Text {
        max_length: usize,
    },
}

/// Answers keyed by question.
pub type Answers = Map<String, Value>;

impl Form {
    pub fn question(&self, key: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.key == key)
    }

    /// Merges `submitted` over `current`: each key sets its answer, `null` clears it. Returns
    /// the merged answers and what changed, or one reason per bad answer, in the form's order.
    pub fn merge(
        &self,
        current: &Answers,
        submitted: &Answers,
    ) -> Result<(Answers, Vec<Change>), Vec<String>> {
        let mut reasons = Vec::new();
        for key in submitted.keys() {
            if self.question(key).is_none() {
                reasons.push(format!(
                    "{key}: not a question of form {} (its questions: {})",
                    self.id,
                    self.questions
                        .iter()
                        .map(|q| q.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        let mut merged = current.clone();
        let mut changes = Vec::new();
        for q in &self.questions {
            match submitted.get(&q.key) {
                Some(Value::Null) => {
                    if let Some(before) = merged.remove(&q.key) {
                        changes.push(Change {
                            question: q.key.clone(),
                            from: before,
                            to: Value::Null,
                        });
                    }
                }
                Some(value) => match q.check(value) {
                    Ok(value) => {
                        let before = merged.insert(q.key.clone(), value.clone());
                        if before.as_ref() != Some(&value) {
                            changes.push(Change {
                                question: q.key.clone(),
                                from: before.unwrap_or(Value::Null),
                                to: value,
                            });
                        }
                    }
                    Err(why) => reasons.push(format!("{}: {why}", q.key)),
                },
                None => {}
            }
            let answered = merged.get(&q.key).is_some_and(|v| match v {
                Value::Array(a) => !a.is_empty(),
                _ => true,
            });
            if q.required
                && !answered
                && !reasons
                    .iter()
                    .any(|r| r.starts_with(&format!("{}:", q.key)))
            {
                reasons.push(format!("{}: required (\"{}\")", q.key, q.text));
            }
        }
        if reasons.is_empty() {
            Ok((merged, changes))
        } else {
            Err(reasons)
        }
    }

    /// The answers as conditions see them: every question present, unanswered ones as null.
    pub fn complete(&self, answers: &Map<String, Value>) -> Value {
        let mut all = Map::new();
        for q in &self.questions {
            all.insert(
                q.key.clone(),
                answers.get(&q.key).cloned().unwrap_or(Value::Null),
            );
        }
        Value::Object(all)
    }

    /// The form as a CRM builds its screen from it: each question with its type and options.
    pub fn describe(&self) -> Description {
        let questions = self
            .questions
            .iter()
            .map(|q| QuestionDescription {
                key: q.key.clone(),
                text: q.text.clone(),
                required: q.required,
                help: q.help.clone(),
                answer: match &q.kind {
                    Kind::YesNo => AnswerType::YesNo,
                    Kind::SingleChoice(c) => AnswerType::SingleChoice { choices: c.clone() },
                    Kind::MultipleChoice(c) => AnswerType::MultipleChoice { choices: c.clone() },
                    Kind::Number { min, max, whole } => AnswerType::Number {
                        min: *min,
                        max: *max,
                        whole: *whole,
                    },
                    Kind::Date => AnswerType::Date,
                    Kind::Text { max_length } => AnswerType::Text {
                        max_length: *max_length,
                    },
                },
            })
            .collect();
        Description {
            id: self.id.clone(),
            name: self.name.clone(),
            version: self.version.clone(),
            workflows: self.workflows.clone(),
            questions,
        }
    }

    /// The form as text, one question a paragraph.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "Form {} @{}: {} (workflows: {})\n",
            self.id,
            self.version,
            self.name,
            self.workflows.join(", ")
        );
        for q in &self.questions {
            let detail = match &q.kind {
                Kind::SingleChoice(c) => format!("one of: {}", c.join(", ")),
                Kind::MultipleChoice(c) => format!("any of: {}", c.join(", ")),
                Kind::Number { min, max, whole } => {
                    let mut d = if *whole {
                        "a whole number".to_string()
                    } else {
                        "a number".to_string()
                    };
                    if let Some(lo) = min {
                        d.push_str(&format!(", at least {lo}"));
                    }
                    if let Some(hi) = max {
                        d.push_str(&format!(", at most {hi}"));
                    }
                    d
                }
                Kind::YesNo => "true or false".to_string(),
                Kind::Date => "a date, YYYY-MM-DD".to_string(),
                Kind::Text { max_length } => format!("text, at most {max_length} characters"),
            };
            out.push_str(&format!(
                "\n  {}{}\n    {}\n    {detail}\n",
                q.key,
                if q.required { " (required)" } else { "" },
                q.text
            ));
            if let Some(h) = &q.help {
                out.push_str(&format!("    help: {h}\n"));
            }
        }
        out
    }
}

impl Question {
    /// Checks one answer, giving it back in its stored form, or why it is wrong.
    pub fn check(&self, value: &Value) -> Result<Value, String> {
        match &self.kind {
            Kind::YesNo => match value {
                Value::Bool(_) => Ok(value.clone()),
                other => Err(format!("expected yes or no (true or false), got {other}")),
            },
            Kind::SingleChoice(choices) => match value {
                Value::String(s) if choices.contains(s) => Ok(value.clone()),
                Value::String(s) => Err(format!("{s:?} is not one of: {}", choices.join(", "))),
                other => Err(format!(
                    "expected one of: {} (as text), got {other}",
                    choices.join(", ")
                )),
            },
            Kind::MultipleChoice(choices) => {
                let Value::Array(items) = value else {
                    return Err(format!(
                        "expected a list of choices from: {}, got {value}",
                        choices.join(", ")
                    ));
                };
                let mut seen: Vec<&str> = Vec::new();
                for item in items {
                    match item {
                        Value::String(s) if !choices.contains(s) => {
                            return Err(format!("{s:?} is not one of: {}", choices.join(", ")));
                        }
                        Value::String(s) if seen.contains(&s.as_str()) => {
                            return Err(format!("{s:?} is chosen twice"));
                        }
                        Value::String(s) => seen.push(s),
                        other => return Err(format!("expected choices as text, got {other}")),
                    }
                }
                Ok(value.clone())
            }
            Kind::Number { min, max, whole } => {
                let Some(n) = value.as_f64() else {
                    return Err(format!("expected a number, got {value}"));
                };
                if *whole && n.fract() != 0.0 {
                    return Err(format!("expected a whole number, got {n}"));
                }
                if let Some(lo) = min.filter(|lo| n < *lo) {
                    return Err(format!("{n} is below the minimum, {lo}"));
                }
                if let Some(hi) = max.filter(|hi| n > *hi) {
                    return Err(format!("{n} is above the maximum, {hi}"));
                }
                Ok(value.clone())
            }
            Kind::Date => match value {
                Value::String(s)
                    if NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10 =>
                {
                    Ok(value.clone())
                }
                Value::String(s) => Err(format!("{s:?} is not a date (YYYY-MM-DD)")),
                other => Err(format!("expected a date as \"YYYY-MM-DD\", got {other}")),
            },
            Kind::Text { max_length } => match value {
                Value::String(s) if s.contains('\0') => {
                    Err("text may not contain NUL characters".into())
                }
                Value::String(s) if s.chars().count() > *max_length => Err(format!(
                    "{} characters; the limit is {max_length}",
                    s.chars().count()
                )),
                Value::String(s) if s.trim().is_empty() => {
                    Err("empty text: send null to clear an answer".into())
                }
                Value::String(_) => Ok(value.clone()),
                other => Err(format!("expected text, got {other}")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::advice::form_file::compile;
    use serde_json::json;

    fn form() -> Form {
        let text = r#"
id = "f"
name = "F"
workflows = ["w"]
[[question]]
key = "notice"
text = "Notice?"
type = "yes_no"
required = true
[[question]]
key = "household"
text = "Household"
type = "single_choice"
choices = ["single", "family"]
[[question]]
key = "needs"
text = "Needs"
type = "multiple_choice"
choices = ["mental_health", "physical"]
[[question]]
key = "arrears"
text = "Arrears"
type = "number"
min = 0
whole = true
[[question]]
key = "expiry"
text = "Expiry"
type = "date"
[[question]]
key = "notes"
text = "Notes"
type = "text"
max_length = 5
"#;
        compile(std::path::Path::new("f.toml"), text).unwrap().0
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn every_bad_answer_is_named_with_its_reason_in_the_forms_order() {
        let f = form();
        let bad = map(
            json!({"household": "hotel", "needs": ["mental_health", "x"], "arrears": 1.5,
            "expiry": "31/04/2026", "notes": "too long", "pets": true}),
        );
        let reasons = f.merge(&Map::new(), &bad).unwrap_err();
        assert_eq!(
            reasons,
            vec![
                "pets: not a question of form f (its questions: notice, household, needs, arrears, expiry, notes)",
                "notice: required (\"Notice?\")",
                "household: \"hotel\" is not one of: single, family",
                "needs: \"x\" is not one of: mental_health, physical",
                "arrears: expected a whole number, got 1.5",
                "expiry: \"31/04/2026\" is not a date (YYYY-MM-DD)",
                "notes: 8 characters; the limit is 5",
            ]
        );
    }

    #[test]
    fn a_later_submission_amends_and_clears_answers_and_says_what_changed() {
        let f = form();
        let (first, _) = f
            .merge(
                &Map::new(),
                &map(json!({"notice": true, "household": "single", "arrears": 300})),
            )
            .unwrap();
        let (second, changes) = f
            .merge(
                &first,
                &map(json!({"household": "family", "arrears": null, "notice": true})),
            )
            .unwrap();
        assert_eq!(second, map(json!({"notice": true, "household": "family"})));
        assert_eq!(
            changes,
            vec![
                Change {
                    question: "household".into(),
                    from: json!("single"),
                    to: json!("family")
                },
                Change {
                    question: "arrears".into(),
                    from: json!(300),
                    to: Value::Null
                },
            ]
        );
        assert_eq!(
            f.merge(&second, &map(json!({"notice": null}))).unwrap_err(),
            vec!["notice: required (\"Notice?\")"]
        );
        assert_eq!(f.complete(&second)["expiry"], Value::Null);
    }

    #[test]
    fn a_form_with_a_bad_question_is_refused_at_its_line() {
        let text = "id = \"f\"\nname = \"F\"\nworkflows = [\"w\"]\n[[question]]\nkey = \"q\"\ntext = \"Q\"\ntype = \"single_choice\"\nchoices = [\"only\"]\nmax_length = 3\n";
        let problems = compile(std::path::Path::new("f.toml"), text).unwrap_err();
        let found: Vec<_> = problems
            .iter()
            .map(|p| (p.line, p.message.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    9,
                    "question \"q\": `max_length` does not apply to a single_choice question"
                ),
                (8, "question \"q\" needs at least two choices"),
            ]
        );
    }

    #[test]
    fn a_described_question_carries_its_type_and_only_that_types_limits() {
        let described = serde_json::to_value(form().describe()).unwrap();
        assert_eq!(described["id"], "f");
        assert_eq!(described["workflows"], json!(["w"]));
        let q = &described["questions"];
        assert_eq!(
            q[0],
            json!({"key": "notice", "text": "Notice?", "type": "yes_no", "required": true, "help": null})
        );
        assert_eq!(q[1]["type"], "single_choice");
        assert_eq!(q[1]["choices"], json!(["single", "family"]));
        assert_eq!(
            (&q[3]["type"], &q[3]["min"], &q[3]["max"], &q[3]["whole"]),
            (&json!("number"), &json!(0.0), &Value::Null, &json!(true))
        );
        assert!(q[3].get("choices").is_none(), "{}", q[3]);
        assert_eq!(
            (&q[5]["type"], &q[5]["max_length"]),
            (&json!("text"), &json!(5))
        );
    }
}
