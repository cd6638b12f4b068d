//! Webhook delivery as a receiver sees it: a real daemon (engine, API and delivery) on SQLite and
//! on PostgreSQL, a real HTTP receiver on loopback (axum), signatures checked by an independent
//! implementation (Python's standard library), and the real binary for the command line and for
//! a daemon killed mid-delivery.

#[path = "../common/mod.rs"]
mod common;
// The strict reader of /metrics; the API suite uses all of it.
#[allow(dead_code)]
#[path = "../common/exposition.rs"]
mod exposition;
// The API suite's daemon harness; not every helper of it is used here.
#[allow(dead_code)]
#[path = "../api/harness.rs"]
mod harness;
#[path = "../common/pg.rs"]
mod pg;

mod receiver;
mod support;

mod cli;
mod delivery;
mod failures;
mod instances;
mod metrics;

/// The database a scenario runs on; a second daemon can be started on it after the first stops.
pub enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Backend {
    pub fn url(&self) -> String {
        match self {
            Backend::Sqlite(dir) => format!("sqlite://{}", dir.path().join("cases.db").display()),
            Backend::Postgres(url) => url.clone(),
        }
    }

    /// Starts a daemon on this database with the test settings, changed by `tweak`.
    pub async fn daemon(
        &self,
        tweak: impl FnOnce(&mut casewarden::settings::Settings),
    ) -> harness::Api {
        harness::Api::start(&self.url(), tempfile::tempdir().unwrap(), tweak)
            .await
            .expect("the daemon starts")
    }
}

/// Declares each scenario once and runs it on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($backend:ident: Backend) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn scenario($backend: $crate::Backend) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                scenario($crate::Backend::Sqlite(tempfile::tempdir().unwrap())).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(url) = $crate::pg::fresh_database() {
                    scenario($crate::Backend::Postgres(url)).await;
                }
            }
        }
    )*};
}
