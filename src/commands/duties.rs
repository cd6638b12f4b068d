//! The commands that put a housing options case's homelessness duties on record: a duty with its
//! dates (`record_duty`), how the applicant came to the council (`record_referral`) and the steps
//! of the personalised housing plan (`record_plan_step`). What needs the case (is it open, is the
//! date after it was received, is the duty already recorded) is checked when they are applied.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::check::{name, named, one_of, reference, text};
use super::{MAX_NAME, Rejection, reject};

/// The ways an applicant comes to the council (`record_referral`'s `source`).
pub const REFERRAL_SOURCES: &[&str] = &["self", "duty_to_refer", "other_agency"];
/// Whose step a plan step is.
pub const STEP_OWNERS: &[&str] = &["applicant", "council"];
/// Where a plan step stands.
pub const STEP_STATUSES: &[&str] = &["agreed", "done", "not_done", "withdrawn"];
/// The longest plan step, in characters.
pub const MAX_STEP: usize = 2000;

/// Records a homelessness duty owed to the applicant of a housing options case, or updates the
/// one recorded: its start date and, once it has ended, its end date and the reason. Each duty
/// is recorded once per case; sending it again corrects its start or ends it. The task that runs
/// the duty's clock (the workflow's `[duties]`) counts from the start date.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordDuty {
    pub case_ref: String,
    /// `prevention`, `relief` or `main`.
    pub duty: String,
    /// The day the duty started (YYYY-MM-DD). Required the first time; later, absent keeps it.
    pub start_date: Option<String>,
    /// The day the duty ended (YYYY-MM-DD), with `end_reason`.
    pub end_date: Option<String>,
    /// Why it ended (one line, at most 200 characters), as the decision letter gives it.
    pub end_reason: Option<String>,
    pub by: Option<String>,
}

/// Records how the applicant came to the council: by themselves, or referred by a public
/// authority under the duty to refer (Housing Act 1996 s.213B, England) or by another agency.
/// A case has one referral; sending it again replaces it.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordReferral {
    pub case_ref: String,
    /// `self`, `duty_to_refer` or `other_agency`.
    pub source: String,
    /// The referring authority or agency, by name; not for `self`.
    pub authority: Option<String>,
    /// The day of the referral, or of the applicant's own approach (YYYY-MM-DD).
    pub referred_on: String,
    pub by: Option<String>,
}

/// Records a step of the personalised housing plan, or updates one, by the CRM's own reference
/// for it. A new step needs `for`, `step` and `agreed_on`; its status starts as `agreed`. An
/// update changes only the fields it gives.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordPlanStep {
    pub case_ref: String,
    /// The CRM's reference for the step, unique within the case.
    pub step_ref: String,
    /// Whose step it is: `applicant` or `council`.
    #[serde(rename = "for")]
    pub owner: Option<String>,
    /// The step, as agreed with the applicant (at most 2,000 characters).
    pub step: Option<String>,
    /// The day it was agreed (YYYY-MM-DD).
    pub agreed_on: Option<String>,
    /// The day it is to be reviewed (YYYY-MM-DD), on or after `agreed_on`.
    pub review_on: Option<String>,
    /// `agreed`, `done`, `not_done` or `withdrawn`.
    pub status: Option<String>,
    pub by: Option<String>,
}

/// Reads a date field (YYYY-MM-DD), naming the field if it is malformed.
pub fn date(field: &str, value: &str) -> Result<NaiveDate, Rejection> {
    let plain = value.len() == 10 && value.as_bytes()[0].is_ascii_digit();
    match NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        Ok(d) if plain && (1900..=9999).contains(&chrono::Datelike::year(&d)) => Ok(d),
        _ => reject(format!(
            "{field} {} is not a date: use YYYY-MM-DD, e.g. 2026-04-01",
            crate::text::quote(value)
        )),
    }
}

fn by(value: &Option<String>) -> Result<(), Rejection> {
    value.as_deref().map_or(Ok(()), |b| named("by", b))
}

impl RecordDuty {
    pub(super) fn check(&self) -> Result<(), Rejection> {
        one_of("duty", &self.duty, crate::definitions::model::DUTIES)?;
        let start = self
            .start_date
            .as_deref()
            .map(|d| date("start_date", d))
            .transpose()?;
        let end = self
            .end_date
            .as_deref()
            .map(|d| date("end_date", d))
            .transpose()?;
        match (&end, &self.end_reason) {
            (Some(_), None) => {
                return reject("end_reason: an ended duty needs the reason it ended");
            }
            (None, Some(_)) => {
                return reject("end_reason given without end_date: give the day the duty ended");
            }
            (_, Some(r)) => name("end_reason", r, MAX_NAME)?,
            (None, None) => {}
        }
        if let (Some(s), Some(e)) = (start, end)
            && e < s
        {
            return reject(format!(
                "end_date {e} is before start_date {s}: a duty ends on or after the day it starts"
            ));
        }
        by(&self.by)
    }
}

impl RecordReferral {
    pub(super) fn check(&self) -> Result<(), Rejection> {
        one_of("source", &self.source, REFERRAL_SOURCES)?;
        match (self.source.as_str(), &self.authority) {
            ("self", Some(_)) => {
                return reject("authority: a self-referral names no referring authority");
            }
            ("self", None) => {}
            (source, None) => {
                return reject(format!(
                    "missing field `authority`: a {source} referral names the authority or agency that referred"
                ));
            }
            (_, Some(a)) => name("authority", a, MAX_NAME)?,
        }
        date("referred_on", &self.referred_on)?;
        by(&self.by)
    }
}

impl RecordPlanStep {
    pub(super) fn check(&self) -> Result<(), Rejection> {
        reference("step_ref", &self.step_ref)?;
        if let Some(o) = &self.owner {
            one_of("for", o, STEP_OWNERS)?;
        }
        if let Some(s) = &self.step {
            text("step", s, MAX_STEP)?;
        }
        let agreed = self
            .agreed_on
            .as_deref()
            .map(|d| date("agreed_on", d))
            .transpose()?;
        let review = self
            .review_on
            .as_deref()
            .map(|d| date("review_on", d))
            .transpose()?;
        if let (Some(a), Some(r)) = (agreed, review)
            && r < a
        {
            return reject(format!(
                "review_on {r} is before agreed_on {a}: a step is reviewed after it is agreed"
            ));
        }
        if let Some(s) = &self.status {
            one_of("status", s, STEP_STATUSES)?;
        }
        by(&self.by)
    }
}
