//! A housing options case's homelessness duties as recorded (`record_duty`, `record_referral`,
//! `record_plan_step`): read back for `show case`, for the personalised housing pack, which
//! prints the applicant's own plan and duty dates as the written plan, and for the quarterly
//! extract. The law each duty is owed under depends on the case's country.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::db::{Db, Tx, sql};

/// A duty on record.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct Duty {
    pub id: i64,
    /// `prevention`, `relief` or `main`.
    pub duty: String,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub end_reason: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// How the applicant came to the council.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct Referral {
    /// `self`, `duty_to_refer` or `other_agency`.
    pub source: String,
    pub authority: Option<String>,
    pub referred_on: NaiveDate,
}

/// A step of the personalised housing plan.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct PlanStep {
    pub step_ref: String,
    /// `applicant` or `council`.
    #[serde(rename = "for")]
    pub owner: String,
    pub step: String,
    pub agreed_on: NaiveDate,
    pub review_on: Option<NaiveDate>,
    /// `agreed`, `done`, `not_done` or `withdrawn`.
    pub status: String,
    pub updated_at: DateTime<Utc>,
}

/// Everything on record about a case's duties.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Record {
    /// In the order the law has them: prevention, relief, main.
    pub duties: Vec<Duty>,
    pub referral: Option<Referral>,
    /// In the order they were agreed.
    pub plan: Vec<PlanStep>,
}

impl Record {
    pub fn is_empty(&self) -> bool {
        self.duties.is_empty() && self.referral.is_none() && self.plan.is_empty()
    }
}

const DUTIES: &str = "SELECT id, duty, start_date, end_date, end_reason, updated_at FROM duties WHERE case_id = $1 \
     ORDER BY CASE duty WHEN 'prevention' THEN 1 WHEN 'relief' THEN 2 ELSE 3 END";
const REFERRAL: &str = "SELECT source, authority, referred_on FROM referrals WHERE case_id = $1";
const PLAN: &str = "SELECT step_ref, owner, step, agreed_on, review_on, status, updated_at FROM plan_steps \
     WHERE case_id = $1 ORDER BY agreed_on, id";

/// The record of a case, inside a transaction (the pack step).
pub async fn load(tx: &mut Tx, case_id: i64) -> Result<Record, sqlx::Error> {
    Ok(Record {
        duties: sql(DUTIES).bind(case_id).fetch_all(&mut *tx).await?,
        referral: sql(REFERRAL).bind(case_id).fetch_optional(&mut *tx).await?,
        plan: sql(PLAN).bind(case_id).fetch_all(&mut *tx).await?,
    })
}

/// The record of a case, read on a pooled connection (the reports).
pub async fn read(db: &Db, case_id: i64) -> Result<Record, sqlx::Error> {
    Ok(Record {
        duties: sql(DUTIES).bind(case_id).fetch_all(db).await?,
        referral: sql(REFERRAL).bind(case_id).fetch_optional(db).await?,
        plan: sql(PLAN).bind(case_id).fetch_all(db).await?,
    })
}

/// The duty's name and the law it is owed under, in the case's country.
pub fn title(country: &str, duty: &str) -> String {
    let (name, section) = match (country, duty) {
        ("wales", "prevention") => ("Duty to help to prevent homelessness", "s.66"),
        ("wales", "relief") => ("Duty to help to secure accommodation", "s.73"),
        ("wales", _) => ("Duty to secure accommodation", "s.75"),
        (_, "prevention") => ("Prevention duty", "s.195"),
        (_, "relief") => ("Relief duty", "s.189B"),
        _ => ("Main housing duty", "s.193"),
    };
    format!("{name} ({}, {section})", act(country))
}

/// The Act a country's homelessness duties are in.
pub fn act(country: &str) -> &'static str {
    match country {
        "wales" => "Housing (Wales) Act 2014",
        _ => "Housing Act 1996",
    }
}

/// A date as the pack prints it: `Wednesday 1 April 2026`.
fn day(d: NaiveDate) -> String {
    d.format("%A %-d %B %Y").to_string()
}

fn status(s: &str) -> &'static str {
    match s {
        "done" => "done",
        "not_done" => "not done",
        "withdrawn" => "no longer needed",
        _ => "agreed",
    }
}

/// What the pack's templates see as `plan`: the law, the duties with their dates, the referral,
/// and the applicant's and the council's steps (withdrawn steps are left out of the written
/// plan; they stay on record).
pub fn pack_facts(country: &str, record: &Record) -> Value {
    let steps = |owner: &str| -> Vec<Value> {
        record
            .plan
            .iter()
            .filter(|s| s.owner == owner && s.status != "withdrawn")
            .map(|s| {
                json!({"ref": s.step_ref, "step": s.step, "agreed": day(s.agreed_on),
                       "review": s.review_on.map(day), "status": status(&s.status)})
            })
            .collect()
    };
    let duties: Vec<Value> = record
        .duties
        .iter()
        .map(|d| {
            json!({"duty": d.duty, "title": title(country, &d.duty), "started": day(d.start_date),
                   "ended": d.end_date.map(day), "end_reason": d.end_reason})
        })
        .collect();
    let referral = record.referral.as_ref().map(
        |r| json!({"source": r.source, "authority": r.authority, "referred": day(r.referred_on)}),
    );
    json!({
        "act": act(country),
        "duties": duties,
        "referral": referral,
        "applicant_steps": steps("applicant"),
        "council_steps": steps("council"),
    })
}

/// A plan like a real one, for `check` to render the pack's templates with.
pub fn sample_pack_facts() -> Value {
    let on = |s: &str| s.parse::<NaiveDate>().expect("a valid date");
    let at = "2026-03-10T10:00:00Z".parse().expect("a valid time");
    let record = Record {
        duties: vec![Duty {
            id: 1,
            duty: "prevention".into(),
            start_date: on("2026-03-10"),
            end_date: Some(on("2026-05-05")),
            end_reason: Some("Secured accommodation for 6 months or more".into()),
            updated_at: at,
        }],
        referral: Some(Referral {
            source: "duty_to_refer".into(),
            authority: Some("Jobcentre Plus".into()),
            referred_on: on("2026-03-02"),
        }),
        plan: ["applicant", "council"]
            .iter()
            .map(|owner| PlanStep {
                step_ref: format!("{owner}-1"),
                owner: owner.to_string(),
                step: "Ask the landlord for more time".into(),
                agreed_on: on("2026-03-11"),
                review_on: Some(on("2026-04-01")),
                status: "agreed".into(),
                updated_at: at,
            })
            .collect(),
    };
    pack_facts("england", &record)
}
