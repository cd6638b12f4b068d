//! `GET /v1/webhooks`: where each webhook subscription stands, for monitoring (admin scope).

use axum::Json;
use axum::extract::State;

use super::ApiState;
use super::problem::ApiResult;
use crate::webhooks::Webhooks;

pub async fn list(State(state): State<ApiState>) -> ApiResult<Json<Webhooks>> {
    let now = crate::clock::now();
    let status = crate::webhooks::status(&state.engine.db, &state.webhooks, now).await?;
    Ok(Json(status))
}
