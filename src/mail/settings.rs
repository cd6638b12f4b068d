//! `[mail]` settings: the transport, the sender, retries, and SMTP with its secret kept out of
//! every log and every command's output.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// One `.eml` file per message in `mail.dir`: the zero-configuration default.
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Upgrade with STARTTLS, and refuse to send if the server cannot (the default).
    Starttls,
    /// Implicit TLS from the first byte (usually port 465).
    Tls,
    /// No encryption: only for a relay on the same host, and only when set explicitly.
    Plaintext,
}

impl<'de> Deserialize<'de> for TransportKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::range::one_of(d, &[("file", Self::File), ("smtp", Self::Smtp)])
    }
}

impl<'de> Deserialize<'de> for Security {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let choices = [
            ("starttls", Self::Starttls),
            ("tls", Self::Tls),
            ("plaintext", Self::Plaintext),
        ];
        crate::range::one_of(d, &choices)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    /// Default: 587 for STARTTLS, 465 for TLS, 25 for plaintext.
    pub port: Option<u16>,
    pub security: Security,
    pub username: Option<String>,
    /// Name of the environment variable holding the password.
    pub password_env: Option<String>,
    /// File holding the password, e.g. a systemd credential
    /// (`/run/credentials/casewarden.service/smtp-password`).
    pub password_file: Option<PathBuf>,
    /// SMTP connections kept open and used at once (1 to 64).
    pub pool_size: u32,
    /// Limit for connecting and for each message's exchange with the server (1 to 600).
    pub timeout_seconds: u64,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: "localhost".to_string(),
            port: None,
            security: Security::Starttls,
            username: None,
            password_env: None,
            password_file: None,
            pool_size: 4,
            timeout_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    pub transport: TransportKind,
    /// Where the file transport writes `.eml` files.
    pub dir: PathBuf,
    /// The From address, e.g. `Home Ownership Team <homeownership@example.org>`.
    pub from: String,
    pub reply_to: Option<String>,
    /// The organisation's name, for templates.
    pub organisation: String,
    pub smtp: SmtpSettings,
    /// How long a notification may keep failing for a temporary reason, counted from its first
    /// failure, before it is marked dead (1 to 720 hours).
    pub give_up_after_hours: i64,
    /// First retry delay; each further one doubles, up to `retry_max_seconds`, with ±20% jitter
    /// (1 to 86400).
    pub retry_base_seconds: i64,
    /// Longest retry delay (from `retry_base_seconds` to 7 days).
    pub retry_max_seconds: i64,
    /// How long a claim on a row lasts: a worker that dies leaves it to the next after this. A
    /// send is cut short before its claim runs out (5 to 86400).
    pub claim_seconds: i64,
    /// Hold escalation mail back to the working hours of the case's calendar.
    pub quiet_hours: bool,
    /// Working hours for quiet hours, London time: "09:00-17:00".
    pub working_hours: String,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            transport: TransportKind::File,
            dir: PathBuf::from("mail"),
            from: "casewarden <casewarden@localhost>".to_string(),
            reply_to: None,
            organisation: "Housing services".to_string(),
            smtp: SmtpSettings::default(),
            give_up_after_hours: 24,
            retry_base_seconds: 60,
            retry_max_seconds: 6 * 3600,
            claim_seconds: 300,
            quiet_hours: false,
            working_hours: "09:00-17:00".to_string(),
        }
    }
}

/// The ranges `MailSettings::check` enforces, as (setting, lowest, highest).
pub const RANGES: &[(&str, i64, i64)] = &[
    ("mail.give_up_after_hours", 1, 720),
    ("mail.retry_base_seconds", 1, 86_400),
    ("mail.retry_max_seconds", 1, 7 * 86_400),
    ("mail.claim_seconds", 5, 86_400),
    ("mail.smtp.pool_size", 1, 64),
    ("mail.smtp.timeout_seconds", 1, 600),
];

impl MailSettings {
    /// Checks every numeric setting against its documented range, so no configured value can
    /// overflow the time arithmetic of delivery.
    pub fn check(&self) -> Result<(), String> {
        let values: [i128; 6] = [
            self.give_up_after_hours.into(),
            self.retry_base_seconds.into(),
            self.retry_max_seconds.into(),
            self.claim_seconds.into(),
            self.smtp.pool_size.into(),
            self.smtp.timeout_seconds.into(),
        ];
        for ((name, low, high), value) in RANGES.iter().zip(values) {
            if !(i128::from(*low)..=i128::from(*high)).contains(&value) {
                return Err(format!(
                    "{name} = {value} is out of range: use {low} to {high}"
                ));
            }
        }
        if self.retry_max_seconds < self.retry_base_seconds {
            return Err(format!(
                "mail.retry_max_seconds = {} is out of range: use mail.retry_base_seconds ({}) to {}",
                self.retry_max_seconds,
                self.retry_base_seconds,
                7 * 86_400
            ));
        }
        self.hours().map(|_| ())
    }

    /// The working hours as (start, end) London times.
    pub fn hours(&self) -> Result<(chrono::NaiveTime, chrono::NaiveTime), String> {
        let bad = || {
            format!(
                "mail.working_hours {:?} must look like \"09:00-17:00\"",
                self.working_hours
            )
        };
        let (a, b) = self.working_hours.split_once('-').ok_or_else(bad)?;
        let t = |s: &str| chrono::NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| bad());
        let (start, end) = (t(a)?, t(b)?);
        if start >= end {
            return Err(bad());
        }
        Ok((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_numeric_mail_setting_is_checked_against_its_range() {
        assert_eq!(MailSettings::default().check(), Ok(()));
        let huge = MailSettings {
            claim_seconds: i64::MAX,
            ..MailSettings::default()
        };
        assert_eq!(
            huge.check().unwrap_err(),
            "mail.claim_seconds = 9223372036854775807 is out of range: use 5 to 86400"
        );
        type Change = fn(&mut MailSettings);
        let cases: [(Change, &str); 8] = [
            (
                |s| s.give_up_after_hours = 0,
                "mail.give_up_after_hours = 0",
            ),
            (
                |s| s.give_up_after_hours = 721,
                "mail.give_up_after_hours = 721",
            ),
            (
                |s| s.retry_base_seconds = -1,
                "mail.retry_base_seconds = -1",
            ),
            (
                |s| s.retry_max_seconds = 8 * 86_400,
                "mail.retry_max_seconds = 691200",
            ),
            (
                |s| s.retry_max_seconds = 30,
                "use mail.retry_base_seconds (60) to 604800",
            ),
            (|s| s.smtp.pool_size = 0, "mail.smtp.pool_size = 0"),
            (
                |s| s.smtp.timeout_seconds = u64::MAX,
                "mail.smtp.timeout_seconds = 18446744073709551615 is out of range: use 1 to 600",
            ),
            (
                |s| s.working_hours = "17:00-09:00".into(),
                "mail.working_hours",
            ),
        ];
        for (change, expected) in cases {
            let mut s = MailSettings::default();
            change(&mut s);
            let err = s.check().unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }
}
