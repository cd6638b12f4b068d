//! `[api]` in casewarden.toml: where the integration API listens, its TLS, and the limits each
//! client is held to.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::range::in_range;

/// The port the API listens on unless told otherwise (not assigned by IANA).
pub const DEFAULT_PORT: u16 = 8725;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// Serve the API from `casewarden run`.
    pub enabled: bool,
    /// Address and port. A non-loopback address needs `[api.tls]` or `allow_plaintext`.
    pub listen: String,
    /// Serve plain HTTP on a non-loopback address, for a TLS-terminating reverse proxy in front.
    pub allow_plaintext: bool,
    pub tls: Option<TlsSettings>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most commands in one `POST /v1/commands`.
    pub max_commands_per_request: usize,
    /// Longest `Prefer: wait=N` and `GET /v1/events?wait=S` honoured, in seconds.
    pub max_wait_seconds: u64,
    /// Requests per second each client may make on average …
    pub client_requests_per_second: u32,
    /// … and in a burst.
    pub client_burst: u32,
    /// Requests one client may have in flight at once.
    pub client_concurrency: u32,
    /// Seconds a connection may take to send a request's head, and may pause within its body,
    /// before it is closed (the body answered with 408).
    pub read_timeout_seconds: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first. Read again on SIGHUP.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1). Read again on SIGHUP.
    pub key_file: PathBuf,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            enabled: true,
            listen: format!("127.0.0.1:{DEFAULT_PORT}"),
            allow_plaintext: false,
            tls: None,
            max_body_bytes: 1024 * 1024,
            max_commands_per_request: 1000,
            max_wait_seconds: 30,
            client_requests_per_second: 50,
            client_burst: 200,
            client_concurrency: 16,
            read_timeout_seconds: 30,
        }
    }
}

impl ApiSettings {
    /// The listen address, parsed.
    pub fn address(&self) -> Result<SocketAddr, String> {
        self.listen.parse().map_err(|_| {
            format!(
                "api.listen {} is not an address and port such as \"127.0.0.1:{DEFAULT_PORT}\" or \"[::]:{DEFAULT_PORT}\"",
                crate::text::quote(&self.listen)
            )
        })
    }

    /// Where the API listens, or `None` when it is off.
    pub fn listening(&self) -> Result<Option<SocketAddr>, String> {
        match self.enabled {
            true => self.address().map(Some),
            false => Ok(None),
        }
    }

    /// Refuses plain HTTP on an address other machines can reach: bearer tokens would cross the
    /// network in the clear.
    pub fn check(&self) -> Result<(), String> {
        let address = self.address()?;
        in_range(
            "api.max_body_bytes",
            self.max_body_bytes as i64,
            1024,
            64 * 1024 * 1024,
        )?;
        in_range(
            "api.max_commands_per_request",
            self.max_commands_per_request as i64,
            1,
            10_000,
        )?;
        in_range("api.max_wait_seconds", self.max_wait_seconds as i64, 0, 300)?;
        in_range(
            "api.client_requests_per_second",
            self.client_requests_per_second.into(),
            1,
            1_000_000,
        )?;
        in_range("api.client_burst", self.client_burst.into(), 1, 1_000_000)?;
        in_range(
            "api.client_concurrency",
            self.client_concurrency.into(),
            1,
            10_000,
        )?;
        in_range(
            "api.read_timeout_seconds",
            self.read_timeout_seconds as i64,
            1,
            300,
        )?;
        if self.enabled
            && self.tls.is_none()
            && !self.allow_plaintext
            && !address.ip().is_loopback()
        {
            return Err(format!(
                "api.listen {address} is reachable from other machines, and without TLS bearer tokens would cross the network in the clear: \
                 set [api.tls] cert_file and key_file, or set api.allow_plaintext = true if a TLS-terminating reverse proxy is in front"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_listens_on_loopback_port_8725_in_plain_http() {
        let s = ApiSettings::default();
        assert_eq!(s.address().unwrap().to_string(), "127.0.0.1:8725");
        assert!(s.check().is_ok());
    }

    #[test]
    fn a_public_address_needs_tls_or_a_declared_proxy() {
        let mut s = ApiSettings {
            listen: "0.0.0.0:8725".into(),
            ..ApiSettings::default()
        };
        let err = s.check().unwrap_err();
        assert!(
            err.contains("api.listen 0.0.0.0:8725 is reachable from other machines"),
            "{err}"
        );
        assert!(
            err.contains("[api.tls]") && err.contains("allow_plaintext"),
            "{err}"
        );
        s.allow_plaintext = true;
        assert!(s.check().is_ok());
        s.allow_plaintext = false;
        s.tls = Some(TlsSettings {
            cert_file: "c.pem".into(),
            key_file: "k.pem".into(),
        });
        assert!(s.check().is_ok());
    }

    #[test]
    fn a_listen_value_that_is_not_an_address_is_named() {
        let s = ApiSettings {
            listen: "localhost:\u{1b}[31m".into(),
            ..ApiSettings::default()
        };
        let err = s.check().unwrap_err();
        assert!(
            err.starts_with("api.listen \"localhost:\\u{1b}[31m\" is not an address"),
            "{err}"
        );
    }
}
