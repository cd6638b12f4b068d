//! Homelessness duties on record: `record_duty`, `record_referral` and `record_plan_step`, each
//! checked against the case (open, housing options, dates no later than today) and written with
//! its event. A duty's start date restarts the clock of the task that runs it.

use chrono::{DateTime, NaiveDate, Utc};

use super::housing_options::housing_case;
use super::lookup::{ApplyError, Handled, known_user};
use crate::commands::{RecordDuty, RecordPlanStep, RecordReferral, Rejection, date};
use crate::db::rows::CaseRow;
use crate::db::{Tx, sql};
use crate::engine::context::Ctx;
use crate::engine::duty_clock;
use crate::events::{self, kinds, kinds::Kind};
use crate::rules::RuleSet;

/// A date the command gives, which must not be later than today in London.
fn not_after_today(
    field: &str,
    day: NaiveDate,
    now: DateTime<Utc>,
    what: &str,
) -> Result<(), ApplyError> {
    let today = crate::clock::london_date(now);
    if day > today {
        return Err(Rejection(format!("{field} {day} is after today ({today}): {what}")).into());
    }
    Ok(())
}

fn parsed(field: &str, value: &Option<String>) -> Result<Option<NaiveDate>, ApplyError> {
    Ok(value.as_deref().map(|v| date(field, v)).transpose()?)
}

#[derive(sqlx::FromRow)]
struct DutyRow {
    start_date: NaiveDate,
    end_date: Option<NaiveDate>,
    end_reason: Option<String>,
}

pub(super) async fn record_duty(
    tx: &mut Tx,
    rules: &RuleSet,
    d: &RecordDuty,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    let (case, def) = housing_case(tx, rules, &d.case_ref, "record_duty").await?;
    if let Some(by) = &d.by {
        known_user(tx, "by", by).await?;
    }
    let before: Option<DutyRow> =
        sql("SELECT start_date, end_date, end_reason FROM duties WHERE case_id = $1 AND duty = $2")
            .bind(case.id)
            .bind(&d.duty)
            .fetch_optional(&mut *tx)
            .await?;
    let start = match (parsed("start_date", &d.start_date)?, &before) {
        (Some(s), _) => s,
        (None, Some(b)) => b.start_date,
        (None, None) => {
            return Err(Rejection(format!(
                "missing field `start_date`: the {} duty is not on record for case {} yet; give the day it started",
                d.duty, case.case_ref
            ))
            .into());
        }
    };
    let end = parsed("end_date", &d.end_date)?.or(before.as_ref().and_then(|b| b.end_date));
    let end_reason = d
        .end_reason
        .clone()
        .or(before.as_ref().and_then(|b| b.end_reason.clone()));
    check_duty_dates(&case, start, end, now)?;
    let by = d.by.as_deref().unwrap_or(source);
    let duty_id: i64 = sql(
        "INSERT INTO duties (case_id, duty, start_date, end_date, end_reason, recorded_at, recorded_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $6) ON CONFLICT (case_id, duty) DO UPDATE SET \
         start_date = excluded.start_date, end_date = excluded.end_date, end_reason = excluded.end_reason, \
         updated_at = excluded.updated_at RETURNING id",
    )
    .bind(case.id)
    .bind(&d.duty)
    .bind(start)
    .bind(end)
    .bind(end_reason.as_deref())
    .bind(now)
    .bind(by)
    .scalar(&mut *tx)
    .await?;
    let clock = if before.as_ref().map(|b| b.start_date) == Some(start) {
        None
    } else {
        let ctx = Ctx::new(rules, &def, now, by);
        duty_clock::restart(tx, &def, &case, &d.duty, start, ctx).await?
    };
    let recorded = Kind::DutyRecorded(kinds::DutyRecorded {
        duty_id,
        duty: d.duty.clone(),
        start_date: start,
        end_date: end,
        end_reason_changed: d.end_reason.is_some()
            && before.as_ref().and_then(|b| b.end_reason.as_ref()) != d.end_reason.as_ref(),
        previous_start_date: before.as_ref().map(|b| b.start_date),
        previous_end_date: before.as_ref().and_then(|b| b.end_date),
        clock,
    });
    events::record(tx, case.event_target(), now, by, recorded).await?;
    Ok(Some(case))
}

/// A duty starts no earlier than the day its case was received and no later than today, and
/// ends on or after the day it started, and no later than today.
fn check_duty_dates(
    case: &CaseRow,
    start: NaiveDate,
    end: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> Result<(), ApplyError> {
    not_after_today(
        "start_date",
        start,
        now,
        "record a duty once it has started",
    )?;
    let received = crate::clock::london_date(case.received_at);
    if start < received {
        return Err(Rejection(format!(
            "start_date {start} is before case {} was received ({received})",
            case.case_ref
        ))
        .into());
    }
    if let Some(end) = end {
        if end < start {
            return Err(Rejection(format!(
                "end_date {end} is before start_date {start}: a duty ends on or after the day it starts"
            ))
            .into());
        }
        not_after_today(
            "end_date",
            end,
            now,
            "record the end once the duty has ended",
        )?;
    }
    Ok(())
}

pub(super) async fn record_referral(
    tx: &mut Tx,
    rules: &RuleSet,
    r: &RecordReferral,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    let (case, _) = housing_case(tx, rules, &r.case_ref, "record_referral").await?;
    if let Some(by) = &r.by {
        known_user(tx, "by", by).await?;
    }
    if r.source == "duty_to_refer" && case.country != "england" {
        return Err(Rejection(format!(
            "source duty_to_refer: the duty to refer (Housing Act 1996 s.213B) applies in England, and case {} is in {}; record an agency's referral as other_agency",
            case.case_ref, case.country
        ))
        .into());
    }
    let referred_on = date("referred_on", &r.referred_on)?;
    not_after_today(
        "referred_on",
        referred_on,
        now,
        "record a referral once it is made",
    )?;
    let replaced: i64 = sql("SELECT COUNT(*) FROM referrals WHERE case_id = $1")
        .bind(case.id)
        .scalar(&mut *tx)
        .await?;
    let by = r.by.as_deref().unwrap_or(source);
    let referral_id: i64 = sql(
        "INSERT INTO referrals (case_id, source, authority, referred_on, recorded_at, recorded_by) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (case_id) DO UPDATE SET source = excluded.source, \
         authority = excluded.authority, referred_on = excluded.referred_on, recorded_at = excluded.recorded_at, \
         recorded_by = excluded.recorded_by RETURNING id",
    )
    .bind(case.id)
    .bind(&r.source)
    .bind(r.authority.as_deref())
    .bind(referred_on)
    .bind(now)
    .bind(by)
    .scalar(&mut *tx)
    .await?;
    let recorded = Kind::ReferralRecorded(kinds::ReferralRecorded {
        referral_id,
        source: r.source.clone(),
        referred_on,
        replaced: replaced > 0,
    });
    events::record(tx, case.event_target(), now, by, recorded).await?;
    Ok(Some(case))
}

#[derive(sqlx::FromRow)]
struct StepRow {
    owner: String,
    step: String,
    agreed_on: NaiveDate,
    review_on: Option<NaiveDate>,
    status: String,
}

pub(super) async fn record_plan_step(
    tx: &mut Tx,
    rules: &RuleSet,
    s: &RecordPlanStep,
    now: DateTime<Utc>,
    source: &str,
) -> Handled {
    let (case, _) = housing_case(tx, rules, &s.case_ref, "record_plan_step").await?;
    if let Some(by) = &s.by {
        known_user(tx, "by", by).await?;
    }
    let before: Option<StepRow> = sql(
        "SELECT owner, step, agreed_on, review_on, status FROM plan_steps WHERE case_id = $1 AND step_ref = $2",
    )
    .bind(case.id)
    .bind(&s.step_ref)
    .fetch_optional(&mut *tx)
    .await?;
    let step = merged(&case, s, before.as_ref())?;
    not_after_today(
        "agreed_on",
        step.agreed_on,
        now,
        "record a step once it is agreed",
    )?;
    if let Some(review) = step.review_on.filter(|r| *r < step.agreed_on) {
        return Err(Rejection(format!(
            "review_on {review} is before agreed_on {}: a step is reviewed after it is agreed",
            step.agreed_on
        ))
        .into());
    }
    let by = s.by.as_deref().unwrap_or(source);
    let step_id: i64 = sql(
        "INSERT INTO plan_steps (case_id, step_ref, owner, step, agreed_on, review_on, status, recorded_at, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) ON CONFLICT (case_id, step_ref) DO UPDATE SET \
         owner = excluded.owner, step = excluded.step, agreed_on = excluded.agreed_on, review_on = excluded.review_on, \
         status = excluded.status, updated_at = excluded.updated_at, updated_by = excluded.updated_by RETURNING id",
    )
    .bind(case.id)
    .bind(&s.step_ref)
    .bind(&step.owner)
    .bind(&step.step)
    .bind(step.agreed_on)
    .bind(step.review_on)
    .bind(&step.status)
    .bind(now)
    .bind(by)
    .scalar(&mut *tx)
    .await?;
    let recorded = Kind::PlanStepRecorded(kinds::PlanStepRecorded {
        step_id,
        step_ref: s.step_ref.clone(),
        owner: step.owner.clone(),
        agreed_on: step.agreed_on,
        review_on: step.review_on,
        status: step.status.clone(),
        previous_status: before.as_ref().map(|b| b.status.clone()),
        created: before.is_none(),
        text_changed: before.as_ref().is_none_or(|b| b.step != step.step),
    });
    events::record(tx, case.event_target(), now, by, recorded).await?;
    Ok(Some(case))
}

/// The step as it will stand: the command's fields over the one recorded. A new step needs
/// `for`, `step` and `agreed_on`.
fn merged(
    case: &CaseRow,
    s: &RecordPlanStep,
    before: Option<&StepRow>,
) -> Result<StepRow, ApplyError> {
    let parsed_agreed = parsed("agreed_on", &s.agreed_on)?;
    let review_on = match &s.review_on {
        Some(_) => parsed("review_on", &s.review_on)?,
        None => before.and_then(|b| b.review_on),
    };
    let fields = (
        s.owner.clone().or(before.map(|b| b.owner.clone())),
        s.step.clone().or(before.map(|b| b.step.clone())),
        parsed_agreed.or(before.map(|b| b.agreed_on)),
    );
    let (Some(owner), Some(step), Some(agreed_on)) = fields else {
        let missing: Vec<&str> = [
            ("for", s.owner.is_none()),
            ("step", s.step.is_none()),
            ("agreed_on", s.agreed_on.is_none()),
        ]
        .into_iter()
        .filter(|(_, m)| *m)
        .map(|(f, _)| f)
        .collect();
        return Err(Rejection(format!(
            "step_ref {} is a new step of case {}: give {} (missing: {})",
            crate::text::quote(&s.step_ref),
            case.case_ref,
            "for, step and agreed_on",
            missing.join(", ")
        ))
        .into());
    };
    Ok(StepRow {
        owner,
        step,
        agreed_on,
        review_on,
        status: s
            .status
            .clone()
            .or(before.map(|b| b.status.clone()))
            .unwrap_or_else(|| "agreed".to_string()),
    })
}
