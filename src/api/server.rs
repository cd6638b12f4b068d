//! Listening: plain HTTP on loopback (or behind a TLS-terminating proxy), HTTPS with rustls
//! otherwise, the certificate read again on SIGHUP. Shut down gracefully with the engine.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::extract::MatchedPath;
use axum::http::Request;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use tokio::task::JoinHandle;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

use super::settings::TlsSettings;
use super::{ApiState, router};

pub struct Server {
    /// Where it listens (with the port the system chose, for `:0`).
    pub address: SocketAddr,
    handle: Handle<SocketAddr>,
    tls: Option<(RustlsConfig, TlsSettings)>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Binds and starts serving; a port already taken or a certificate that cannot be read is an
    /// error here, before the daemon says it is ready.
    pub async fn start(state: ApiState) -> anyhow::Result<Server> {
        let settings = &state.settings;
        settings.check().map_err(anyhow::Error::msg)?;
        let address = settings.address().map_err(anyhow::Error::msg)?;
        let listener = std::net::TcpListener::bind(address)
            .with_context(|| format!("cannot listen on {address} (api.listen)"))?;
        let local = listener.local_addr()?;
        // A connection gets this long to send its request's head, and to send each next part of
        // its body; an HTTP/2 one, to answer a ping when it is idle. Otherwise one that sends
        // nothing holds a socket and a task for ever (axum-server turns hyper's own 30 s head
        // timeout off, nothing times a body out, and HTTP/2 pings are off by default).
        let read_timeout = Duration::from_secs(settings.read_timeout_seconds);
        let app = router(state.clone())
            .layer(RequestBodyTimeoutLayer::new(read_timeout))
            .into_make_service();
        let handle = Handle::new();
        let (task, tls) = match &settings.tls {
            Some(tls) => {
                // The crypto provider is chosen once per process; a second call is harmless.
                let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
                let config = load(tls).await?;
                let mut server =
                    axum_server::from_tcp_rustls(listener, config.clone())?.handle(handle.clone());
                let builder = server.http_builder();
                builder.http1().header_read_timeout(read_timeout);
                builder
                    .http2()
                    .keep_alive_interval(read_timeout)
                    .keep_alive_timeout(read_timeout);
                (tokio::spawn(server.serve(app)), Some((config, tls.clone())))
            }
            None => {
                let mut server = axum_server::from_tcp(listener)?.handle(handle.clone());
                let builder = server.http_builder();
                builder.http1().header_read_timeout(read_timeout);
                builder
                    .http2()
                    .keep_alive_interval(read_timeout)
                    .keep_alive_timeout(read_timeout);
                (tokio::spawn(server.serve(app)), None)
            }
        };
        tracing::info!(address = %local, tls = tls.is_some(), "API listening");
        Ok(Server {
            address: local,
            handle,
            tls,
            task,
        })
    }

    /// Reads the certificate and key again (after a renewal); on failure the old ones stay.
    pub async fn reload_tls(&self) -> anyhow::Result<()> {
        let Some((config, files)) = &self.tls else {
            return Ok(());
        };
        config
            .reload_from_pem_file(&files.cert_file, &files.key_file)
            .await
            .with_context(|| tls_files(files))?;
        tracing::info!(cert = %files.cert_file.display(), "TLS certificate reloaded");
        Ok(())
    }

    /// Stops taking connections and lets requests under way finish (for up to 10 s).
    pub async fn shutdown(self) {
        self.handle.graceful_shutdown(Some(Duration::from_secs(10)));
        match self.task.await {
            Ok(Err(e)) => tracing::error!(error = %e, "the API server stopped with an error"),
            Err(e) => tracing::error!(error = %e, "the API server task failed"),
            Ok(Ok(())) => {}
        }
    }
}

async fn load(tls: &TlsSettings) -> anyhow::Result<RustlsConfig> {
    RustlsConfig::from_pem_file(&tls.cert_file, &tls.key_file)
        .await
        .with_context(|| tls_files(tls))
}

fn tls_files(tls: &TlsSettings) -> String {
    format!(
        "cannot load the TLS certificate {} and key {} ([api.tls]): each must be PEM, the key unencrypted and the certificate's own",
        tls.cert_file.display(),
        tls.key_file.display()
    )
}

/// One log line per request: method, the route's template (never the URI, which carries
/// references, nor any header, which carries the token), the client, status and time.
pub fn access_log() -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    impl Fn(&Request<axum::body::Body>) -> tracing::Span + Clone,
    tower_http::trace::DefaultOnRequest,
    tower_http::trace::DefaultOnResponse,
> {
    TraceLayer::new_for_http()
        .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO))
        .make_span_with(|request: &Request<axum::body::Body>| {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            tracing::info_span!(
                "request",
                method = %request.method(),
                route,
                client = tracing::field::Empty
            )
        })
}
