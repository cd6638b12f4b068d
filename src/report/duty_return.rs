//! The quarterly extract of homelessness duty records (`casewarden report duties --quarter
//! 2026Q2`): one CSV row per housing options case with a duty open at any time in the quarter,
//! with the fields of the statutory case-level return (H-CLIC) that casewarden holds. Which
//! fields it covers, and which it does not, is in docs/housing-options.md. Read with a handful
//! of set-based queries, whatever the number of cases.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};

use crate::db::{Db, sql};

/// A calendar quarter: `2026Q2` is April to June 2026.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quarter {
    pub year: i32,
    pub number: u32,
}

impl FromStr for Quarter {
    type Err = String;

    fn from_str(s: &str) -> Result<Quarter, String> {
        let shape = || {
            format!(
                "{} is not a quarter: write the year, Q and the quarter's number, e.g. 2026Q2 for April to June 2026",
                crate::text::quote(s)
            )
        };
        let (year, number) = s.split_once(['Q', 'q']).ok_or_else(shape)?;
        if year.len() != 4 || number.len() != 1 || !s.is_ascii() {
            return Err(shape());
        }
        let year: i32 = year.parse().map_err(|_| shape())?;
        let number: u32 = number.parse().map_err(|_| shape())?;
        if year < 1900 {
            return Err(format!("{s}: the year must be 1900 or later"));
        }
        if !(1..=4).contains(&number) {
            return Err(format!(
                "{s}: a year has quarters 1 to 4 (Q1 January to March, Q2 April to June, Q3 July to September, Q4 October to December)"
            ));
        }
        Ok(Quarter { year, number })
    }
}

impl Quarter {
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.number * 3 - 2, 1).expect("a valid quarter")
    }

    pub fn last_day(self) -> NaiveDate {
        let next = if self.number == 4 {
            NaiveDate::from_ymd_opt(self.year + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(self.year, self.number * 3 + 1, 1)
        };
        next.and_then(|d| d.pred_opt()).expect("a valid quarter")
    }
}

/// The columns, in order.
pub const COLUMNS: &[&str] = &[
    "case_ref",
    "country",
    "workflow",
    "approach_date",
    "referral_source",
    "referral_authority",
    "referral_date",
    "assessment_date",
    "household_type",
    "support_needs",
    "prevention_duty_start",
    "prevention_duty_end",
    "prevention_duty_end_reason",
    "relief_duty_start",
    "relief_duty_end",
    "relief_duty_end_reason",
    "main_duty_start",
    "main_duty_end",
    "main_duty_end_reason",
    "plan_steps_applicant",
    "plan_steps_council",
];

/// A query over the cases with a duty open at some time between $1 and $2 (the quarter's first
/// and last days), as one SQL literal.
macro_rules! in_quarter {
    ($head:literal) => {
        concat!(
            $head,
            " (SELECT case_id FROM duties WHERE start_date <= $2 AND (end_date IS NULL OR end_date >= $1))"
        )
    };
    ($head:literal, $tail:literal) => {
        concat!(in_quarter!($head), $tail)
    };
}

#[derive(sqlx::FromRow)]
struct CaseLine {
    id: i64,
    case_ref: String,
    country: String,
    workflow: Option<String>,
    received_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct DutyLine {
    case_id: i64,
    duty: String,
    start_date: NaiveDate,
    end_date: Option<NaiveDate>,
    end_reason: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ReferralLine {
    case_id: i64,
    source: String,
    authority: Option<String>,
    referred_on: NaiveDate,
}

/// Everything the extract prints about the quarter's cases, read in one query each.
struct Records {
    cases: Vec<CaseLine>,
    duties: BTreeMap<(i64, String), DutyLine>,
    referrals: BTreeMap<i64, ReferralLine>,
    assessed: BTreeMap<i64, DateTime<Utc>>,
    answers: BTreeMap<i64, serde_json::Value>,
    /// (case, whose) → steps not withdrawn.
    steps: BTreeMap<(i64, String), i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("reading the duty records: {0}")]
    Db(#[from] sqlx::Error),
    #[error("writing the CSV: {0}")]
    Csv(#[from] csv::Error),
}

/// The extract of `quarter` as CSV text, with a header row; cases in reference order.
pub async fn duties_csv(db: &Db, quarter: Quarter) -> Result<String, ExtractError> {
    let records = read(db, quarter.first_day(), quarter.last_day()).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(COLUMNS)?;
    for case in &records.cases {
        out.write_record(records.row(case))?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8(bytes).expect("CSV of UTF-8 text is UTF-8"))
}

async fn read(db: &Db, from: NaiveDate, to: NaiveDate) -> Result<Records, sqlx::Error> {
    let cases: Vec<CaseLine> = sql(in_quarter!(
        "SELECT id, case_ref, country, workflow, received_at FROM cases WHERE id IN",
        " ORDER BY case_ref"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    let duties: Vec<DutyLine> = sql(in_quarter!(
        "SELECT case_id, duty, start_date, end_date, end_reason FROM duties WHERE case_id IN"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    let referrals: Vec<ReferralLine> = sql(in_quarter!(
        "SELECT case_id, source, authority, referred_on FROM referrals WHERE case_id IN"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    // The shipped workflows call their assessment task `assessment`.
    let assessed: Vec<(i64, DateTime<Utc>)> = sql(in_quarter!(
        "SELECT case_id, completed_at FROM tasks WHERE task = 'assessment' AND status = 'completed' AND case_id IN"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    let answers: Vec<(i64, sqlx::types::Json<serde_json::Value>)> = sql(in_quarter!(
        "SELECT case_id, answers FROM enquiries WHERE case_id IN"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    let steps: Vec<(i64, String, i64)> = sql(in_quarter!(
        "SELECT case_id, owner, COUNT(*) FROM plan_steps WHERE status <> 'withdrawn' AND case_id IN",
        " GROUP BY case_id, owner"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    Ok(Records {
        cases,
        duties: duties
            .into_iter()
            .map(|d| ((d.case_id, d.duty.clone()), d))
            .collect(),
        referrals: referrals.into_iter().map(|r| (r.case_id, r)).collect(),
        assessed: assessed.into_iter().collect(),
        answers: answers.into_iter().map(|(c, a)| (c, a.0)).collect(),
        steps: steps.into_iter().map(|(c, o, n)| ((c, o), n)).collect(),
    })
}

impl Records {
    /// One case's row, in the order of [`COLUMNS`].
    fn row(&self, case: &CaseLine) -> Vec<String> {
        let mut row: Vec<String> = vec![
            case.case_ref.clone(),
            case.country.clone(),
            case.workflow.clone().unwrap_or_default(),
            crate::clock::london_date(case.received_at).to_string(),
        ];
        match self.referrals.get(&case.id) {
            Some(r) => row.extend([
                r.source.clone(),
                inert(r.authority.as_deref().unwrap_or_default()),
                r.referred_on.to_string(),
            ]),
            None => row.extend([String::new(), String::new(), String::new()]),
        }
        row.push(
            self.assessed
                .get(&case.id)
                .map(|t| crate::clock::london_date(*t).to_string())
                .unwrap_or_default(),
        );
        let answer = |key: &str| self.answers.get(&case.id).map(|a| &a[key]);
        row.push(
            answer("household")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string(),
        );
        row.push(
            answer("support_needs")
                .and_then(|v| v.as_array())
                .map(|needs| {
                    needs
                        .iter()
                        .filter_map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(";")
                })
                .unwrap_or_default(),
        );
        for duty in crate::definitions::model::DUTIES {
            match self.duties.get(&(case.id, duty.to_string())) {
                Some(d) => row.extend([
                    d.start_date.to_string(),
                    d.end_date.map(|e| e.to_string()).unwrap_or_default(),
                    inert(d.end_reason.as_deref().unwrap_or_default()),
                ]),
                None => row.extend([String::new(), String::new(), String::new()]),
            }
        }
        for owner in ["applicant", "council"] {
            let n = self
                .steps
                .get(&(case.id, owner.to_string()))
                .copied()
                .unwrap_or(0);
            row.push(n.to_string());
        }
        row
    }
}

/// Free text as a spreadsheet will not run it: a cell starting `=`, `+`, `-` or `@` is read as
/// a formula by Excel and its kin, so it gets a leading `'`, which they show as text.
fn inert(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_is_a_year_and_a_number_from_one_to_four() {
        let q: Quarter = "2026Q2".parse().unwrap();
        assert_eq!(
            (q.first_day().to_string(), q.last_day().to_string()),
            ("2026-04-01".into(), "2026-06-30".into())
        );
        let q: Quarter = "2024q4".parse().unwrap();
        assert_eq!(
            (q.first_day().to_string(), q.last_day().to_string()),
            ("2024-10-01".into(), "2024-12-31".into())
        );
        assert_eq!(
            "2028Q1".parse::<Quarter>().unwrap().last_day().to_string(),
            "2028-03-31"
        );
        for bad in [
            "", "2026", "2026Q", "2026-Q2", "26Q2", "2026Q22", "Q2 2026", "2026Q２", "２026Q2",
        ] {
            let e = bad.parse::<Quarter>().unwrap_err();
            assert!(
                e.contains(
                    "is not a quarter: write the year, Q and the quarter's number, e.g. 2026Q2"
                ),
                "{bad:?}: {e}"
            );
        }
        assert!(
            "2026Q5"
                .parse::<Quarter>()
                .unwrap_err()
                .contains("a year has quarters 1 to 4")
        );
        assert!(
            "2026Q0"
                .parse::<Quarter>()
                .unwrap_err()
                .contains("a year has quarters 1 to 4")
        );
        assert!(
            "1800Q1"
                .parse::<Quarter>()
                .unwrap_err()
                .contains("1900 or later")
        );
    }

    #[test]
    fn free_text_that_a_spreadsheet_would_run_as_a_formula_is_kept_as_text() {
        assert_eq!(
            inert("=HYPERLINK(\"http://x\")"),
            "'=HYPERLINK(\"http://x\")"
        );
        assert_eq!(inert("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(inert("Jobcentre Plus"), "Jobcentre Plus");
        assert_eq!(inert(""), "");
    }
}
