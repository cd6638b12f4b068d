//! `GET /metrics` on the API listener (`[metrics] on_api`), for the `metrics:read` scope.

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::problem::Problem;

pub async fn scrape(State(state): State<ApiState>) -> Response {
    if !state.metrics {
        return Problem::not_found(
            "metrics are not served on the API: set `on_api = true` under [metrics] in casewarden.toml",
        )
        .into_response();
    }
    let source = crate::metrics::server::Source {
        engine: state.engine.clone(),
        live: state.live.clone(),
        webhooks: state.webhooks.clone().into(),
    };
    source.response().await
}
