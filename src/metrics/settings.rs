//! `[metrics]` in casewarden.toml: where `casewarden run` serves its metrics, if anywhere. Off
//! unless asked for. Two places, either or both:
//!
//! - `listen`: a listener of its own, plain HTTP, `GET /metrics` with no authentication, as a
//!   Prometheus exporter is usually scraped (node_exporter and the like). It serves nothing
//!   else, so it can be opened to the monitoring network without opening the API. A site
//!   without the API can still be scraped.
//! - `on_api`: `GET /metrics` on the API listener too, with its TLS, for a bearer token with the
//!   `metrics:read` scope (or `admin`): for a Prometheus that reaches the daemon only through
//!   the API's port (Prometheus sends the token with `authorization` in its scrape config).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The port suggested for `listen` (not assigned by IANA; beside the API's 8725).
pub const SUGGESTED_PORT: u16 = 9725;

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Address and port of a listener that serves only `GET /metrics`, unauthenticated, such as
    /// "127.0.0.1:9725". Empty: none.
    pub listen: String,
    /// Serve `GET /metrics` on the API listener as well, to the `metrics:read` scope.
    pub on_api: bool,
}

impl MetricsSettings {
    /// Whether `casewarden run` serves metrics anywhere.
    pub fn enabled(&self) -> bool {
        !self.listen.is_empty() || self.on_api
    }

    /// The listener's address, if one is set.
    pub fn address(&self) -> Result<Option<SocketAddr>, String> {
        if self.listen.is_empty() {
            return Ok(None);
        }
        self.listen.parse().map(Some).map_err(|_| {
            format!(
                "metrics.listen {} is not an address and port such as \"127.0.0.1:{SUGGESTED_PORT}\" or \"[::]:{SUGGESTED_PORT}\" (leave it empty for no metrics listener)",
                crate::text::quote(&self.listen)
            )
        })
    }

    /// The listener's address must parse and differ from the API's (`api`: where the API
    /// listens, `None` when it is off); metrics on the API need the API.
    pub fn check(&self, api: Option<SocketAddr>) -> Result<(), String> {
        let address = self.address()?;
        if self.on_api && api.is_none() {
            return Err("metrics.on_api is set but the API is off (api.enabled = false): set api.enabled, or serve metrics on a listener of their own with metrics.listen".to_string());
        }
        if let (Some(address), Some(api)) = (address, api)
            && address.port() != 0
            && address.port() == api.port()
            && (address.ip() == api.ip()
                || address.ip().is_unspecified()
                || api.ip().is_unspecified())
        {
            return Err(format!(
                "metrics.listen {address} is the API's address too (api.listen {api}): give metrics a port of their own, such as {SUGGESTED_PORT}, or serve them on the API with metrics.on_api"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> Option<SocketAddr> {
        Some("127.0.0.1:8725".parse().unwrap())
    }

    fn with(listen: &str, on_api: bool) -> MetricsSettings {
        MetricsSettings {
            listen: listen.to_string(),
            on_api,
        }
    }

    #[test]
    fn metrics_are_off_unless_a_place_is_given() {
        assert!(!MetricsSettings::default().enabled());
        assert!(MetricsSettings::default().check(api()).is_ok());
        assert!(with("127.0.0.1:9725", false).enabled());
        assert!(with("", true).enabled());
    }

    #[test]
    fn a_listen_address_that_is_not_one_is_refused_with_its_name() {
        let err = with("localhost", false).check(api()).unwrap_err();
        assert!(
            err.starts_with("metrics.listen \"localhost\" is not an address"),
            "{err}"
        );
    }

    #[test]
    fn metrics_on_the_api_need_the_api() {
        let err = with("", true).check(None).unwrap_err();
        assert!(err.contains("api.enabled = false"), "{err}");
        assert!(with("127.0.0.1:9725", false).check(None).is_ok());
    }

    #[test]
    fn the_metrics_listener_cannot_take_the_api_port() {
        let err = with("127.0.0.1:8725", false).check(api()).unwrap_err();
        assert!(err.contains("is the API's address too"), "{err}");
        let err = with("0.0.0.0:8725", false).check(api()).unwrap_err();
        assert!(err.contains("is the API's address too"), "{err}");
        assert!(with("127.0.0.1:9725", false).check(api()).is_ok());
    }
}
