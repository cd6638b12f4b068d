//! A running daemon for one test, and shorthand for calling its API.

use casewarden::db::Db;
use casewarden::settings::Settings;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::common::repo_path;

/// Declares each scenario once and runs it against a daemon on SQLite and on PostgreSQL. A
/// scenario that needs other settings says so first: `#[settings(|s| s.api.client_burst = 2)]`.
#[macro_export]
macro_rules! api_on_both_backends {
    (@settings) => { |_| {} };
    (@settings $tweak:expr) => { $tweak };
    ($($(#[settings($tweak:expr)])? async fn $name:ident($api:ident: Api) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn scenario($api: &$crate::harness::Api) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let api =
                    $crate::harness::Api::sqlite($crate::api_on_both_backends!(@settings $($tweak)?))
                        .await;
                scenario(&api).await;
                api.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let api =
                    $crate::harness::Api::postgres($crate::api_on_both_backends!(@settings $($tweak)?))
                        .await;
                if let Some(api) = api {
                    scenario(&api).await;
                    api.stop().await;
                }
            }
        }
    )*};
}

pub struct Api {
    /// `http://127.0.0.1:PORT` (or `https://localhost:PORT` with TLS).
    pub base: String,
    /// The database's URL, for a connection of a test's own.
    pub url: String,
    pub http: reqwest::Client,
    pub db: Db,
    /// A token with every scope.
    pub admin: String,
    /// The daemon's engine: its passes count into the metrics it serves.
    pub engine: casewarden::engine::Engine,
    /// `http://ADDRESS` of the metrics listener of its own, when `metrics.listen` is set.
    pub metrics: Option<String>,
    #[allow(dead_code)]
    pub dir: tempfile::TempDir,
    live: casewarden::live::Live,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Settings for a test daemon: the shipped rules, files under `dir`, an ephemeral port, and a
/// schedule that fires once an hour, so every pass a test sees was started by the API.
pub fn settings(url: &str, dir: &std::path::Path) -> Settings {
    let mut s = Settings::default();
    s.database.url = casewarden::settings::DatabaseUrl::new(url);
    s.rules.dir = repo_path("rules");
    s.templates.dir = repo_path("templates");
    s.packs.dir = dir.join("packs");
    s.mail.dir = dir.join("mail");
    s.daemon.schedule = "0 0 * * * *".into();
    s.daemon.watch_rules = false;
    s.api.listen = "127.0.0.1:0".into();
    s
}

impl Api {
    pub async fn sqlite(tweak: impl FnOnce(&mut Settings)) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("cases.db").display());
        Api::start(&url, dir, tweak)
            .await
            .expect("the daemon starts")
    }

    pub async fn postgres(tweak: impl FnOnce(&mut Settings)) -> Option<Api> {
        let url = crate::pg::fresh_database()?;
        let dir = tempfile::tempdir().unwrap();
        Some(
            Api::start(&url, dir, tweak)
                .await
                .expect("the daemon starts"),
        )
    }

    pub async fn start(
        url: &str,
        dir: tempfile::TempDir,
        tweak: impl FnOnce(&mut Settings),
    ) -> anyhow::Result<Api> {
        let mut s = settings(url, dir.path());
        tweak(&mut s);
        let tls = s.api.tls.is_some();
        let app = casewarden::startup::build(s, true).await?;
        let db = app.engine.db.clone();
        let engine = app.engine.clone();
        let daemon = casewarden::daemon::Daemon::start(app).await?;
        let address = daemon.api_address().expect("the API is enabled");
        let metrics = daemon.metrics_address().map(|a| format!("http://{a}"));
        let live = daemon.live().clone();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(daemon.run(shutdown.clone()));
        let base = match tls {
            true => format!("https://localhost:{}", address.port()),
            false => format!("http://{address}"),
        };
        // Named by port: several daemons can share one PostgreSQL database.
        let admin = casewarden::api::clients::add(
            &db,
            &format!("test-admin-{}", address.port()),
            &[casewarden::api::clients::Scope::Admin],
            casewarden::clock::now(),
        )
        .await?;
        Ok(Api {
            base,
            url: url.to_string(),
            http: reqwest::Client::new(),
            db,
            admin,
            engine,
            metrics,
            dir,
            live,
            shutdown,
            task,
        })
    }

    /// Issues a client a token with these scopes (comma-separated).
    pub async fn client(&self, name: &str, scopes: &str) -> String {
        let scopes = casewarden::api::clients::Scope::parse_list(scopes).unwrap();
        casewarden::api::clients::add(&self.db, name, &scopes, casewarden::clock::now())
            .await
            .unwrap()
    }

    pub fn request(&self, method: Method, token: &str, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
    }

    /// GETs a path and returns the status and JSON body.
    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let response = self.request(Method::GET, token, path).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs commands (a JSON value: one command or an array), waiting up to 10 s for their
    /// outcome; returns the status and JSON body.
    pub async fn commands(&self, token: &str, commands: &Value) -> (StatusCode, Value) {
        let response = self
            .request(Method::POST, token, "/v1/commands")
            .header("prefer", "wait=10")
            .json(commands)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs one command as the admin client and asserts it was accepted.
    #[allow(dead_code)]
    pub async fn ok(&self, command: Value) -> Value {
        let (status, body) = self.commands(&self.admin, &command).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        assert_eq!(body["results"][0]["status"], "accepted", "{body:#}");
        body["results"][0].clone()
    }

    /// Waits until every pass started so far has finished. A command is reported accepted once
    /// applied, but the pass that applied it goes on to allocate, make packs and sweep SLAs;
    /// after this, reads see all of that.
    pub async fn settled(&self) {
        let finished = self.live.state().passes;
        self.live.ring();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.live.state().passes <= finished {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no pass finished within 30 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Rows in a table, to show a refused request wrote nothing.
    pub async fn count(&self, table: &'static str) -> i64 {
        let text: &'static str = match table {
            "inbox" => "SELECT COUNT(*) FROM inbox",
            "events" => "SELECT COUNT(*) FROM events",
            "api_clients" => "SELECT COUNT(*) FROM api_clients",
            _ => panic!("no count for {table}"),
        };
        casewarden::db::sql(text).scalar(&self.db).await.unwrap()
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// An answer's Content-Type ("" when it has none).
pub fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// An answer's status, Content-Type and JSON body (null when it has none).
pub async fn answer(response: reqwest::Response) -> (StatusCode, String, Value) {
    let status = response.status();
    let kind = content_type(&response);
    (status, kind, response.json().await.unwrap_or(Value::Null))
}
