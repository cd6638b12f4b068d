//! The integration API: HTTPS and JSON for CRMs, served by `casewarden run` from the process and
//! runtime that run the passes. Versioned under `/v1`; bearer tokens with scopes
//! ([`clients`]); errors as problem details ([`problem`]); described by an OpenAPI document
//! generated from the same types as the published JSON Schemas ([`openapi`]).

pub mod auth;
pub mod clients;
mod commands;
mod feed;
mod health;
pub mod problem;
mod server;
pub mod settings;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};

use crate::engine::Engine;
use crate::live::Live;
use clients::Scope;
use problem::Problem;
pub use server::Server;
pub use settings::ApiSettings;

/// What every handler reaches: the engine (its database and rule set), the daemon's live state,
/// the settings and the per-client limits.
#[derive(Clone)]
pub struct ApiState(Arc<Inner>);

pub struct Inner {
    pub engine: Engine,
    pub live: Live,
    pub settings: ApiSettings,
    pub limits: auth::Limits,
}

impl std::ops::Deref for ApiState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl ApiState {
    pub fn new(engine: Engine, live: Live, settings: ApiSettings) -> ApiState {
        let limits = auth::Limits::new(&settings);
        ApiState(Arc::new(Inner {
            engine,
            live,
            settings,
            limits,
        }))
    }
}

/// Every route, each group behind the scope it needs.
pub fn router(state: ApiState) -> Router {
    let scoped = |scope: Scope, routes: Router<ApiState>| {
        routes.route_layer(middleware::from_fn_with_state(scope, auth::require))
    };
    let commands = scoped(
        Scope::CommandsWrite,
        Router::new()
            .route("/v1/commands", post(commands::submit))
            .route("/v1/commands/{id}", get(commands::outcome)),
    );
    let events = scoped(
        Scope::EventsRead,
        Router::new()
            .route("/v1/events", get(feed::events))
            .route("/v1/events/stream", get(feed::stream)),
    );
    let authenticated =
        Router::new()
            .merge(commands)
            .merge(events)
            .route_layer(middleware::from_fn_with_state(
                state.clone(),
                auth::authenticate,
            ));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(authenticated)
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
