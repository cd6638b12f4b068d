//! The metrics listener of its own (`metrics.listen`): plain HTTP, `GET /metrics` and nothing
//! else, no authentication, as Prometheus scrapes an exporter. It stops with the daemon.

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::live::Live;
use crate::webhooks::WebhookSettings;

/// What a scrape reads: the engine's counters, the daemon's state, the subscriptions.
#[derive(Clone)]
pub struct Source {
    pub engine: Engine,
    pub live: Live,
    pub webhooks: std::sync::Arc<[WebhookSettings]>,
}

impl Source {
    /// The metrics text, with its content type.
    pub async fn response(&self) -> axum::response::Response {
        let body = super::render(&self.engine, &self.live, &self.webhooks).await;
        ([(header::CONTENT_TYPE, super::CONTENT_TYPE)], body).into_response()
    }
}

pub struct Server {
    /// Where it listens (with the port the system chose, for `:0`).
    pub address: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Binds `address` and serves; a port already taken is an error here, before READY.
    pub async fn start(address: SocketAddr, source: Source) -> anyhow::Result<Server> {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address} (metrics.listen)"))?;
        let local = listener.local_addr()?;
        let app = Router::new()
            .route("/metrics", get(scrape))
            .with_state(source);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await
        });
        tracing::info!(address = %local, "metrics listening");
        Ok(Server {
            address: local,
            stop,
            task,
        })
    }

    /// Stops listening; a scrape under way gets a few seconds to finish.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let waited = tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await;
        if let Ok(Ok(Err(e))) = waited {
            tracing::warn!(error = %e, "the metrics listener stopped with an error");
        }
    }
}

async fn scrape(State(source): State<Source>) -> axum::response::Response {
    source.response().await
}
