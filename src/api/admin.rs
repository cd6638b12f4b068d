//! The `admin` endpoints: the outbox and its mail server, requeueing a dead notification, and
//! the rule set in force.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::clients::Caller;
use super::extract::{Path, Query, limit, positive};
use super::problem::{ApiResult, Problem};
use crate::live::Rejected;
use crate::mail::status::ServerStatus;
use crate::report::{self, OutboxRow, RetryError};
use crate::states::OutboxStatus;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    /// Only notifications in this state.
    pub status: Option<OutboxStatus>,
    /// How many of the most recent: 1 to 1000, default 100.
    pub limit: Option<u32>,
}

/// The outbox as `casewarden outbox` shows it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Outbox {
    /// The most recent notifications, oldest first.
    pub notifications: Vec<OutboxRow>,
    /// Set while the last pass could not reach the mail server; null when it could.
    pub mail_server: Option<ServerStatus>,
}

/// `GET /v1/outbox`: as `casewarden outbox --json`, with the mail server's state.
pub async fn outbox(
    State(state): State<ApiState>,
    Query(query): Query<OutboxQuery>,
) -> ApiResult<Json<Outbox>> {
    let limit = limit(query.limit, 100, 1000)?;
    let db = &state.engine.db;
    let status = query.status.map(OutboxStatus::as_str);
    Ok(Json(Outbox {
        notifications: report::outbox(db, status, limit).await?,
        mail_server: crate::mail::status::current(db).await?,
    }))
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Requeued {
    pub id: i64,
    /// When it became due: now. The pass this request started sends it.
    pub next_attempt_at: DateTime<Utc>,
}

/// `POST /v1/outbox/{id}/retry`: requeues a dead notification, due now, under the caller's name.
pub async fn retry(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Requeued>> {
    let id = positive("id", &id)?;
    let now = crate::clock::now();
    match report::retry_notification(&state.engine.db, id, now, &caller.name).await {
        Ok(()) => {
            state.live.ring();
            Ok(Json(Requeued {
                id,
                next_attempt_at: now,
            }))
        }
        Err(e @ RetryError::Unknown(_)) => Err(Problem::not_found(e.to_string())),
        Err(e @ RetryError::NotDead { .. }) => Err(Problem::new(
            StatusCode::CONFLICT,
            "not-dead",
            e.to_string(),
        )),
        Err(RetryError::Db(e)) => Err(e.into()),
    }
}

/// What `POST /v1/contacts/{ref}/erasure` takes.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    /// Why (for example the request's reference): kept in the `erasures` table, not in the log.
    pub reason: String,
    /// Erase even when the contact is the applicant of a case still open.
    #[serde(default)]
    pub force: bool,
}

/// Erases a contact's personal data everywhere casewarden holds it, as `casewarden erase
/// contact` does; the `contact_erased` event names the client.
pub async fn erase_contact(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(contact): Path<String>,
    body: Result<Json<EraseRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<crate::privacy::Erasure>> {
    super::extract::reference("ref", &contact)?;
    let Json(request) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    let now = crate::clock::now();
    let engine = &state.engine;
    // The rule set in force, and the engine's own pack and mail directories.
    let places = crate::privacy::FilePlaces {
        packs: engine.packs_dir(),
        mail: engine.mail_dir(),
    };
    let erased = crate::privacy::erase_contact(
        &engine.db,
        &engine.rules(),
        &contact,
        (&request.reason, request.force),
        places,
        (now, &caller.name),
    )
    .await;
    match erased {
        Ok(done) => Ok(Json(done)),
        Err(e @ crate::privacy::EraseError::Unknown(_)) => Err(Problem::not_found(e.to_string())),
        Err(e @ crate::privacy::EraseError::OpenCases { .. }) => Err(Problem::new(
            StatusCode::CONFLICT,
            "open-cases",
            e.to_string(),
        )),
        Err(e @ crate::privacy::EraseError::NoReason) => Err(Problem::bad_request(e.to_string())),
        Err(e @ crate::privacy::EraseError::Files(_)) => Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "files-left",
            e.to_string(),
        )),
        Err(crate::privacy::EraseError::Db(e)) => Err(e.into()),
    }
}

/// Everything held about a contact (subject access), as `casewarden export contact` writes it;
/// the pack files are served by `GET /v1/cases/{ref}/packs/{version}/{format}`.
pub async fn export_contact(
    State(state): State<ApiState>,
    Path(contact): Path<String>,
) -> ApiResult<Json<crate::report::SubjectAccess>> {
    super::extract::reference("ref", &contact)?;
    crate::report::export_contact(&state.engine.db, &contact, crate::clock::now())
        .await?
        .map(Json)
        .ok_or_else(|| {
            Problem::not_found(format!(
                "there is no contact {}",
                crate::text::quote(&contact)
            ))
        })
}

/// The rule set in force, and the last one refused.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Rules {
    /// The content hash of every file of the set in force.
    pub hash: String,
    pub loaded_at: DateTime<Utc>,
    /// The last set refused at a reload since the daemon started; the set in force stayed.
    pub last_rejected: Option<Rejected>,
}

/// `GET /v1/rules`.
pub async fn rules(State(state): State<ApiState>) -> Json<Rules> {
    let live = state.live.state();
    Json(Rules {
        hash: live.rules_hash,
        loaded_at: live.rules_loaded_at,
        last_rejected: live.last_rejected,
    })
}
