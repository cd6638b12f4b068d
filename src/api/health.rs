//! `GET /healthz` (the process answers) and `GET /readyz` (it can do its work: the database
//! answers and passes are keeping to the schedule). Both unauthenticated, for load balancers and
//! monitoring; they say nothing a caller could misuse.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::ApiState;
use super::problem::Problem;

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Health {
    pub status: &'static str,
}

pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

pub async fn readyz(State(state): State<ApiState>) -> Response {
    let database = crate::db::sql("SELECT 1").execute(&state.engine.db).await;
    if let Err(e) = database {
        tracing::warn!(error = %e, "readiness: the database does not answer");
        return Problem::unavailable("the database does not answer").into_response();
    }
    if let Err(why) = state.live.passes_are_recent(crate::clock::now()) {
        return Problem::unavailable(why).into_response();
    }
    (StatusCode::OK, Json(Health { status: "ready" })).into_response()
}
