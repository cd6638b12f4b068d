//! Who is calling, and how much: bearer tokens checked against the clients table, scopes checked
//! per group of routes, and each client held to a request rate and a number of requests in
//! flight. A refused request is answered before its handler runs, so it writes nothing.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;

use super::ApiState;
use super::clients::{self, Caller, Scope};
use super::problem::Problem;
use super::settings::ApiSettings;

/// The per-client limits.
pub struct Limits {
    rate: DefaultKeyedRateLimiter<String>,
    in_flight: Mutex<HashMap<String, Arc<Semaphore>>>,
    concurrency: u32,
}

impl Limits {
    pub fn new(settings: &ApiSettings) -> Limits {
        let per_second =
            NonZeroU32::new(settings.client_requests_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.client_burst).unwrap_or(NonZeroU32::MIN);
        Limits {
            rate: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            in_flight: Mutex::new(HashMap::new()),
            concurrency: settings.client_concurrency.max(1),
        }
    }

    fn admit(&self, client: &str) -> Result<tokio::sync::OwnedSemaphorePermit, Problem> {
        if let Err(not_until) = self.rate.check_key(&client.to_string()) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(Problem::too_many(
                format!(
                    "client {client} is over its request rate (api.client_requests_per_second); try again later"
                ),
                wait.as_secs_f64().ceil() as u64,
            ));
        }
        let semaphore = self
            .in_flight
            .lock()
            .expect("in-flight map lock poisoned")
            .entry(client.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.concurrency as usize)))
            .clone();
        semaphore.try_acquire_owned().map_err(|_| {
            Problem::too_many(
                format!(
                    "client {client} already has {} requests in flight (api.client_concurrency); wait for one to finish",
                    self.concurrency
                ),
                1,
            )
        })
    }
}

/// Authenticates the bearer token and applies the client's limits; the handler finds the
/// [`Caller`] in the request's extensions.
pub async fn authenticate(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match caller(&state, request.headers()).await {
        Ok(c) => c,
        Err(problem) => return problem.into_response(),
    };
    let permit = match state.limits.admit(&caller.name) {
        Ok(p) => p,
        Err(problem) => return problem.into_response(),
    };
    tracing::Span::current().record("client", caller.name.as_str());
    request.extensions_mut().insert(caller);
    let response = next.run(request).await;
    drop(permit);
    response
}

async fn caller(state: &ApiState, headers: &HeaderMap) -> Result<Caller, Problem> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Problem::unauthorized(
            "no Authorization header: send `Authorization: Bearer <token>` with a token from `casewarden clients add`",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Problem::unauthorized("the Authorization header is not `Bearer <token>`"))?;
    clients::authenticate(&state.engine.db, token)
        .await?
        .ok_or_else(|| {
            Problem::unauthorized(
                "the token is not one casewarden issued, or its client was revoked",
            )
        })
}

/// Refuses a caller without `scope` (admin has every scope).
pub async fn require(State(scope): State<Scope>, request: Request, next: Next) -> Response {
    let allowed = request
        .extensions()
        .get::<Caller>()
        .map(|c| (c.may(scope), c.name.clone()));
    match allowed {
        Some((true, _)) => next.run(request).await,
        Some((false, name)) => Problem::forbidden(format!(
            "client {name} lacks the {} scope this endpoint needs; an operator can issue a token with it (`casewarden clients add NAME --scopes {}`)",
            scope.name(),
            scope.name()
        ))
        .into_response(),
        None => Problem::unauthorized("this endpoint needs a bearer token").into_response(),
    }
}
