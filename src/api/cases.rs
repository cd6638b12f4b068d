//! The `cases:read` endpoints: cases in full and in pages, their advice and housing pack files,
//! worklists, and enquiry forms. Each answers with the document the matching CLI command prints
//! with `--json`, from the same library function.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::extract::{Path, Query, limit, positive, reference, time};
use super::problem::{ApiResult, Problem};
use crate::advice::Choice;
use crate::advice::form::Description;
use crate::db::rows;
use crate::report::{
    self, AdviceError, CaseFilter, CaseReport, CaseSummary, DecisionRow, PackFileError, PackFormat,
    WaitingCase, WorklistRow,
};
use crate::states::{CaseStatus, SlaState};

/// `GET /v1/cases/{ref}`: the case as `casewarden show case REF --json` prints it.
pub async fn show(
    State(state): State<ApiState>,
    Path(case_ref): Path<String>,
) -> ApiResult<Json<CaseReport>> {
    reference("ref", &case_ref)?;
    report::case(&state.engine.db, &case_ref)
        .await?
        .map(Json)
        .ok_or_else(|| no_case(&case_ref))
}

fn no_case(case_ref: &str) -> Problem {
    Problem::not_found(format!("no case {}", crate::text::quote(case_ref)))
}

/// The filters and page of `GET /v1/cases`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseQuery {
    pub status: Option<CaseStatus>,
    pub owner: Option<String>,
    pub scheme: Option<String>,
    pub workflow: Option<String>,
    /// The SLA state of the case's open stage.
    pub sla_state: Option<SlaState>,
    /// Cases per page: 1 to 500, default 50.
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub after: Option<String>,
}

/// A page of cases, in the order they were created.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CasePage {
    pub cases: Vec<CaseSummary>,
    /// Pass as `after` for the next page; null when this page is the last.
    pub next: Option<String>,
}

/// `GET /v1/cases`: case summaries matching the filters, a page at a time.
pub async fn list(
    State(state): State<ApiState>,
    Query(query): Query<CaseQuery>,
) -> ApiResult<Json<CasePage>> {
    for (name, value) in [
        ("owner", &query.owner),
        ("scheme", &query.scheme),
        ("workflow", &query.workflow),
    ] {
        if let Some(value) = value {
            reference(name, value)?;
        }
    }
    let limit = limit(query.limit, 50, 500)?;
    let after = query.after.as_deref().map(cursor_id).transpose()?;
    let filter = CaseFilter {
        status: query.status,
        owner: query.owner,
        scheme: query.scheme,
        workflow: query.workflow,
        sla_state: query.sla_state,
    };
    // One more than the page, to know whether another page follows.
    let mut cases = report::cases(&state.engine.db, &filter, after.unwrap_or(0), limit + 1).await?;
    let next = if cases.len() as i64 > limit {
        cases.truncate(limit as usize);
        cases.last().map(|c| cursor(c.id))
    } else {
        None
    };
    Ok(Json(CasePage { cases, next }))
}

/// The cursor after a case: opaque to callers, so the order it encodes may change.
fn cursor(id: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("case:{id}"))
}

fn cursor_id(text: &str) -> Result<i64, Problem> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|t| t.strip_prefix("case:")?.parse::<i64>().ok())
        .filter(|id| *id >= 0)
        .ok_or_else(|| {
            Problem::bad_request(format!(
                "after {} is not a cursor this API gave: pass the `next` of the previous page",
                crate::text::quote(text)
            ))
        })
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdviceQuery {
    /// Decide as of this time (RFC 3339, or a date meaning 09:00 Europe/London); default now.
    pub now: Option<String>,
}

/// `GET /v1/cases/{ref}/advice`: as `casewarden advice REF --json`, with the rules in force.
pub async fn advice(
    State(state): State<ApiState>,
    Path(case_ref): Path<String>,
    Query(query): Query<AdviceQuery>,
) -> ApiResult<Json<Vec<Choice>>> {
    reference("ref", &case_ref)?;
    let now = time("now", query.now.as_deref())?;
    let rules = state.engine.rules();
    match report::advice(&state.engine.db, &rules, &case_ref, now).await {
        Ok(choices) => Ok(Json(choices)),
        Err(AdviceError::UnknownCase(_)) => Err(no_case(&case_ref)),
        Err(e @ AdviceError::NotHousingOptions { .. }) => Err(Problem::new(
            StatusCode::CONFLICT,
            "not-housing-options",
            e.to_string(),
        )),
        Err(e @ AdviceError::NoAnswers(_)) => Err(Problem::new(
            StatusCode::CONFLICT,
            "no-answers",
            e.to_string(),
        )),
        Err(AdviceError::Db(e)) => Err(e.into()),
    }
}

/// `GET /v1/cases/{ref}/packs/{version}/{format}`: one file of a housing pack, as the engine
/// wrote it. Packs hold an applicant's circumstances: the HTML may load nothing and run
/// nothing, no browser may guess another type, and nothing on the way may keep a copy.
pub async fn pack(
    State(state): State<ApiState>,
    Path((case_ref, version, format)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    reference("ref", &case_ref)?;
    let version = positive("version", &version)?;
    let Some(format) = PackFormat::parse(&format) else {
        return Err(Problem::bad_request(format!(
            "format {} is not one of: html, txt",
            crate::text::quote(&format)
        )));
    };
    let body = match report::pack_file(&state.engine.db, &case_ref, version, format).await {
        Ok(body) => body,
        Err(PackFileError::UnknownCase(_)) => return Err(no_case(&case_ref)),
        Err(e @ PackFileError::NotMade { .. }) => return Err(Problem::not_found(e.to_string())),
        Err(e @ PackFileError::NotIntact { .. }) => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "pack-file-not-intact",
                format!("{e}; render_pack makes a new version"),
            ));
        }
        Err(PackFileError::Db(e)) => return Err(e.into()),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    let content_type = match format {
        PackFormat::Html => "text/html; charset=utf-8",
        PackFormat::Text => "text/plain; charset=utf-8",
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if format == PackFormat::Html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
        );
    }
    Ok(response)
}

/// `GET /v1/worklists/users/{ref}`: as `casewarden worklist --user REF --json`.
pub async fn user_worklist(
    State(state): State<ApiState>,
    Path(user): Path<String>,
) -> ApiResult<Json<Vec<WorklistRow>>> {
    let db = &state.engine.db;
    known_user(db, &user).await?;
    Ok(Json(report::worklist(db, Some(&user), None).await?))
}

/// `GET /v1/worklists/roles/{ref}`: as `casewarden worklist --role REF --json`.
pub async fn role_worklist(
    State(state): State<ApiState>,
    Path(role): Path<String>,
) -> ApiResult<Json<Vec<WorklistRow>>> {
    let db = &state.engine.db;
    known_role(db, &role).await?;
    Ok(Json(report::worklist(db, None, Some(&role)).await?))
}

/// `GET /v1/worklists/users/{ref}/cases`: as the `cases` of `casewarden worklist --user REF
/// --json`.
pub async fn user_waiting_cases(
    State(state): State<ApiState>,
    Path(user): Path<String>,
) -> ApiResult<Json<Vec<WaitingCase>>> {
    let db = &state.engine.db;
    known_user(db, &user).await?;
    Ok(Json(
        report::waiting_cases(db, Some(&user), None, today()).await?,
    ))
}

/// `GET /v1/worklists/roles/{ref}/cases`: as the `cases` of `casewarden worklist --role REF
/// --json`.
pub async fn role_waiting_cases(
    State(state): State<ApiState>,
    Path(role): Path<String>,
) -> ApiResult<Json<Vec<WaitingCase>>> {
    let db = &state.engine.db;
    known_role(db, &role).await?;
    Ok(Json(
        report::waiting_cases(db, None, Some(&role), today()).await?,
    ))
}

/// A worklist's user must exist: an empty list would not tell a mistyped user from one with
/// nothing to do.
async fn known_user(db: &crate::db::Db, user: &str) -> ApiResult<()> {
    reference("ref", user)?;
    if !rows::user_exists(db, user, false).await? {
        return Err(Problem::not_found(format!(
            "no user {}",
            crate::text::quote(user)
        )));
    }
    Ok(())
}

/// A worklist's role must exist, as its user must.
async fn known_role(db: &crate::db::Db, role: &str) -> ApiResult<()> {
    reference("ref", role)?;
    if !rows::role_exists(db, role).await? {
        return Err(Problem::not_found(format!(
            "no role {}",
            crate::text::quote(role)
        )));
    }
    Ok(())
}

fn today() -> chrono::NaiveDate {
    crate::clock::london_date(crate::clock::now())
}

/// `GET /v1/worklists/decisions`: cases waiting for `advance_case`.
pub async fn decisions(State(state): State<ApiState>) -> ApiResult<Json<Vec<DecisionRow>>> {
    Ok(Json(report::decisions(&state.engine.db).await?))
}

/// `GET /v1/forms/{workflow}`: as `casewarden form WORKFLOW --json`, from the rules in force.
pub async fn form(
    State(state): State<ApiState>,
    Path(workflow): Path<String>,
) -> ApiResult<Json<Description>> {
    let rules = state.engine.rules();
    let form = rules.form_for(&workflow).map_err(Problem::not_found)?;
    Ok(Json(form.describe()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_anything_else_is_refused_by_name() {
        assert_eq!(cursor_id(&cursor(42)).unwrap(), 42);
        for bad in ["42", "", "Y2FzZTot", "!!", &cursor(0).replace('Y', "Z")] {
            let problem = cursor_id(bad).unwrap_err();
            assert_eq!(problem.status, 400, "{bad}");
            assert!(problem.detail.starts_with("after "), "{}", problem.detail);
        }
    }
}
