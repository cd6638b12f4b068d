//! `[[webhooks]]` in casewarden.toml: one table per subscription, each with its receiver's URL,
//! the events it wants, where its signing secret comes from, and its delivery limits.
//!
//! The shape is checked with the rest of the settings, by every command; the secret itself is
//! read only by the daemon, when delivery starts, so `casewarden webhooks` works for an operator
//! whose shell does not hold it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::range::in_range;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// The subscription's name, a reference such as `crm`: its stored place in the log and the
    /// name `casewarden webhooks replay` takes.
    pub name: String,
    /// Where batches are POSTed: `https://…` (`http://` only with `allow_plaintext`).
    pub url: String,
    /// Event kinds to send (`case_created`, …), or `"*"` for every kind.
    pub kinds: Vec<String>,
    /// Only events of cases of these kinds (`home_buy`, `housing_options`); empty: any.
    /// Events with no case (users, roles, rule sets, webhooks) are not held back by it.
    pub case_kinds: Vec<String>,
    /// Only events of home buy cases of these schemes; empty: any. Like `case_kinds`, it applies
    /// to events that have a case.
    pub schemes: Vec<String>,
    /// A file holding the signing secret (`whsec_…`), e.g. a systemd credential.
    pub secret_file: Option<PathBuf>,
    /// An environment variable holding the signing secret.
    pub secret_env: Option<String>,
    /// Send to an `http://` URL: for a receiver on the same host or a trusted network only.
    pub allow_plaintext: bool,
    /// Most events in one request (1 to 1000).
    pub batch_size: i64,
    /// Longest wait for the receiver's answer to one request (1 to 300 s).
    pub timeout_seconds: i64,
    /// How long a subscription may keep failing before a `webhook_failing` event is written
    /// and an error logged (0 to 10080 minutes; 0: at the first failure).
    pub failing_after_minutes: i64,
    /// First retry delay; each further one doubles, with ±20% jitter (1 to 3600 s).
    pub retry_base_seconds: i64,
    /// Longest retry delay (from `retry_base_seconds` to 86400 s).
    pub retry_max_seconds: i64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            name: String::new(),
            url: String::new(),
            kinds: vec![ALL_KINDS.to_string()],
            case_kinds: Vec::new(),
            schemes: Vec::new(),
            secret_file: None,
            secret_env: None,
            allow_plaintext: false,
            batch_size: 100,
            timeout_seconds: 10,
            failing_after_minutes: 60,
            retry_base_seconds: 5,
            retry_max_seconds: 300,
        }
    }
}

/// The `kinds` entry that stands for every event kind.
pub const ALL_KINDS: &str = "*";

impl WebhookSettings {
    /// Whether every event kind is wanted.
    pub fn all_kinds(&self) -> bool {
        self.kinds.iter().any(|k| k == ALL_KINDS)
    }

    /// The URL as messages, logs and status show it: a password in it and the values of its
    /// query (a receiver's key often travels there, `?code=…`) replaced by `***`.
    pub fn shown_url(&self) -> String {
        shown_url(&self.url)
    }

    /// Checks one subscription; `at` is its place in the file, `webhooks[0]`.
    fn check(&self, at: &str) -> Result<(), String> {
        crate::commands::reference(&format!("{at}.name"), &self.name).map_err(|r| r.0)?;
        self.check_url(at)?;
        if self.kinds.is_empty() {
            return Err(format!(
                "{at}.kinds is empty: list the event kinds to send, or [\"*\"] for all"
            ));
        }
        let known = crate::events::kinds::names();
        for kind in &self.kinds {
            if kind != ALL_KINDS && !known.iter().any(|k| k == kind) {
                return Err(format!(
                    "{at}.kinds: {} is not an event kind; use \"*\" or kinds such as \"case_created\" (docs/schema/events.schema.json lists them all)",
                    crate::text::quote(kind)
                ));
            }
        }
        one_of(
            at,
            "case_kinds",
            &self.case_kinds,
            crate::definitions::model::KINDS,
        )?;
        one_of(
            at,
            "schemes",
            &self.schemes,
            crate::definitions::model::SCHEMES,
        )?;
        match (&self.secret_file, &self.secret_env) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{at} sets both secret_file and secret_env: keep the one the secret is in"
                ));
            }
            (None, None) => {
                return Err(format!(
                    "{at} has no secret: set secret_file or secret_env to where its whsec_… secret is (`casewarden webhooks secret` makes one)"
                ));
            }
            (None, Some(var)) if var.is_empty() => {
                return Err(format!("{at}.secret_env is empty: name a variable"));
            }
            _ => {}
        }
        in_range(&format!("{at}.batch_size"), self.batch_size, 1, 1000)?;
        in_range(
            &format!("{at}.timeout_seconds"),
            self.timeout_seconds,
            1,
            300,
        )?;
        in_range(
            &format!("{at}.failing_after_minutes"),
            self.failing_after_minutes,
            0,
            7 * 24 * 60,
        )?;
        in_range(
            &format!("{at}.retry_base_seconds"),
            self.retry_base_seconds,
            1,
            3600,
        )?;
        in_range(
            &format!("{at}.retry_max_seconds"),
            self.retry_max_seconds,
            self.retry_base_seconds,
            86_400,
        )
    }

    fn check_url(&self, at: &str) -> Result<(), String> {
        let shown = crate::text::quote(&self.shown_url());
        let url = reqwest::Url::parse(&self.url).map_err(|e| {
            format!(
                "{at}.url {shown} is not a URL such as \"https://crm.example.org/casewarden\": {e}"
            )
        })?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_plaintext => {}
            "http" => {
                return Err(format!(
                    "{at}.url {shown} is plain HTTP: events and their signatures would cross the network in the clear. \
                     Use https://, or set allow_plaintext = true in this [[webhooks]] table for a receiver on the same host or a trusted network"
                ));
            }
            other => {
                return Err(format!(
                    "{at}.url {shown} has the scheme {}: use https://",
                    crate::text::quote(other)
                ));
            }
        }
        if url.host().is_none() {
            return Err(format!("{at}.url {shown} names no host"));
        }
        if url.fragment().is_some() {
            return Err(format!(
                "{at}.url {shown} has a #fragment, which is never sent: remove it"
            ));
        }
        Ok(())
    }
}

/// Each value of a filter must be one of `known`.
fn one_of(at: &str, field: &str, values: &[String], known: &[&str]) -> Result<(), String> {
    match values.iter().find(|v| !known.contains(&v.as_str())) {
        Some(v) => Err(format!(
            "{at}.{field}: {} is not one of {}",
            crate::text::quote(v),
            known.join(", ")
        )),
        None => Ok(()),
    }
}

/// Checks every subscription, and that no two share a name (each keeps its own place).
pub fn check_all(webhooks: &[WebhookSettings]) -> Result<(), String> {
    for (i, hook) in webhooks.iter().enumerate() {
        let at = format!("webhooks[{i}]");
        hook.check(&at)?;
        if let Some(j) = webhooks[..i].iter().position(|h| h.name == hook.name) {
            return Err(format!(
                "{at}.name {} is also the name of webhooks[{j}]: each subscription needs its own name, since the name keeps its place in the log",
                crate::text::quote(&hook.name)
            ));
        }
    }
    Ok(())
}

/// A URL fit to show: any password and the values of its query replaced by `***`. Text that is
/// not a URL is shown only up to where a secret could start.
pub fn shown_url(text: &str) -> String {
    let Ok(mut url) = reqwest::Url::parse(text) else {
        let end = text.find(['@', '?']).unwrap_or(text.len());
        return text[..end].to_string();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        let names: Vec<String> = url
            .query_pairs()
            .map(|(name, _)| format!("{name}=***"))
            .collect();
        url.set_query(Some(&names.join("&")));
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> WebhookSettings {
        WebhookSettings {
            name: "crm".into(),
            url: "https://crm.example.org/hooks/casewarden".into(),
            secret_env: Some("CRM_WEBHOOK_SECRET".into()),
            ..WebhookSettings::default()
        }
    }

    fn refused(change: impl FnOnce(&mut WebhookSettings)) -> String {
        let mut h = hook();
        change(&mut h);
        check_all(&[h]).unwrap_err()
    }

    #[test]
    fn a_subscription_with_a_secret_and_an_https_url_is_accepted() {
        assert_eq!(check_all(&[hook()]), Ok(()));
    }

    #[test]
    fn plain_http_is_refused_unless_allowed_and_the_message_says_how() {
        let err = refused(|h| h.url = "http://crm.example.org/hook".into());
        assert!(
            err.starts_with("webhooks[0].url \"http://crm.example.org/hook\" is plain HTTP"),
            "{err}"
        );
        assert!(err.contains("allow_plaintext = true"), "{err}");
        let mut allowed = hook();
        allowed.url = "http://127.0.0.1:9000/hook".into();
        allowed.allow_plaintext = true;
        assert_eq!(check_all(&[allowed]), Ok(()));
        let err = refused(|h| h.url = "ftp://crm.example.org/".into());
        assert!(err.contains("has the scheme \"ftp\""), "{err}");
        let err = refused(|h| h.url = "crm.example.org/hook".into());
        assert!(
            err.starts_with("webhooks[0].url \"crm.example.org/hook\" is not a URL"),
            "{err}"
        );
    }

    #[test]
    fn each_field_error_names_the_field() {
        type Change = fn(&mut WebhookSettings);
        let cases: [(Change, &str); 12] = [
            (|h| h.name = String::new(), "webhooks[0].name is empty"),
            (
                |h| h.name = "crm hook".into(),
                "webhooks[0].name \"crm hook\" contains",
            ),
            (|h| h.kinds = vec![], "webhooks[0].kinds is empty"),
            (
                |h| h.kinds = vec!["case_created".into(), "case_vanished".into()],
                "webhooks[0].kinds: \"case_vanished\" is not an event kind",
            ),
            (
                |h| h.case_kinds = vec!["homebuy".into()],
                "webhooks[0].case_kinds: \"homebuy\" is not one of home_buy, housing_options",
            ),
            (
                |h| h.schemes = vec!["help_to_buy".into()],
                "webhooks[0].schemes: \"help_to_buy\" is not one of right_to_buy",
            ),
            (|h| h.secret_env = None, "webhooks[0] has no secret"),
            (
                |h| h.secret_file = Some("/run/credentials/x".into()),
                "webhooks[0] sets both secret_file and secret_env",
            ),
            (
                |h| h.batch_size = 1001,
                "webhooks[0].batch_size = 1001 is out of range: use 1 to 1000",
            ),
            (
                |h| h.timeout_seconds = 0,
                "webhooks[0].timeout_seconds = 0 is out of range",
            ),
            (
                |h| h.failing_after_minutes = -1,
                "webhooks[0].failing_after_minutes = -1 is out of range",
            ),
            (
                |h| h.retry_max_seconds = 2,
                "webhooks[0].retry_max_seconds = 2 is out of range: use 5 to 86400",
            ),
        ];
        for (change, expected) in cases {
            let err = refused(change);
            assert!(err.starts_with(expected), "{err}\nexpected: {expected}");
        }
    }

    #[test]
    fn two_subscriptions_may_not_share_a_name() {
        let mut second = hook();
        second.url = "https://other.example.org/".into();
        let err = check_all(&[hook(), second]).unwrap_err();
        assert!(
            err.starts_with("webhooks[1].name \"crm\" is also the name of webhooks[0]"),
            "{err}"
        );
    }

    #[test]
    fn a_shown_url_keeps_no_password_or_query_value() {
        assert_eq!(
            shown_url("https://u:pa55@crm.example.org/api/hook?code=k3y&x=1"),
            "https://u:***@crm.example.org/api/hook?code=***&x=***"
        );
        assert_eq!(
            shown_url("https://crm.example.org/hook"),
            "https://crm.example.org/hook"
        );
        assert_eq!(shown_url("not a url?code=k3y"), "not a url");
        let err = refused(|h| h.url = "gopher://u:pa55@crm/?code=k3y".into());
        assert!(!err.contains("pa55") && !err.contains("k3y"), "{err}");
    }
}
