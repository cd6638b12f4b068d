//! The integration API: HTTPS and JSON for CRMs, served by `casewarden run` from the process and
//! runtime that run the passes. Versioned under `/v1`; bearer tokens with scopes
//! ([`clients`]); errors as problem details ([`problem`]); described by an OpenAPI document
//! generated from the same types as the published JSON Schemas ([`openapi`]).

mod admin;
pub mod auth;
mod cases;
pub mod clients;
mod commands;
pub mod endpoints;
mod extract;
mod feed;
mod health;
mod metrics;
pub mod openapi;
pub mod problem;
mod server;
pub mod settings;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;

use crate::engine::Engine;
use crate::live::Live;
use problem::Problem;
pub use server::Server;
pub use settings::ApiSettings;

/// What every handler reaches: the engine (its database and rule set), the daemon's live state,
/// the settings, the per-client limits, and the webhook subscriptions (to report on).
#[derive(Clone)]
pub struct ApiState(Arc<Inner>);

pub struct Inner {
    pub engine: Engine,
    pub live: Live,
    pub settings: ApiSettings,
    pub limits: auth::Limits,
    pub webhooks: Vec<crate::webhooks::WebhookSettings>,
    /// Whether `GET /metrics` is served (`[metrics] on_api`).
    pub metrics: bool,
}

impl std::ops::Deref for ApiState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl ApiState {
    pub fn new(
        engine: Engine,
        live: Live,
        settings: ApiSettings,
        webhooks: Vec<crate::webhooks::WebhookSettings>,
    ) -> ApiState {
        let limits = auth::Limits::new(&settings);
        ApiState(Arc::new(Inner {
            engine,
            live,
            settings,
            limits,
            webhooks,
            metrics: false,
        }))
    }

    /// Serves `GET /metrics` too. Called before the state is shared.
    pub fn with_metrics(mut self, on: bool) -> ApiState {
        Arc::get_mut(&mut self.0)
            .expect("metrics are set before the API state is shared")
            .metrics = on;
        self
    }
}

/// Every route of the endpoint table, each behind the scope it needs.
pub fn router(state: ApiState) -> Router {
    let mut open = Router::new();
    let mut authenticated = Router::new();
    for e in endpoints::endpoints() {
        match e.scope {
            None => open = open.route(e.path, e.route),
            Some(scope) => {
                authenticated = authenticated.route(
                    e.path,
                    e.route
                        .route_layer(middleware::from_fn_with_state(scope, auth::require)),
                )
            }
        }
    }
    let authenticated = authenticated.route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::authenticate,
    ));
    open.merge(authenticated)
        .fallback(|| async {
            Problem::not_found("no such endpoint; the API is described at /v1/openapi.json")
        })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this endpoint does not take that method; see /v1/openapi.json",
            )
        })
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(server::access_log())
        .with_state(state)
}

/// The OpenAPI document, made once per process.
async fn openapi_json() -> axum::Json<serde_json::Value> {
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    axum::Json(DOCUMENT.get_or_init(openapi::document).clone())
}
