//! `[mail]` settings: the transport, the sender, retries, and SMTP with its secret kept out of
//! every log and every command's output.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// One `.eml` file per message in `mail.dir`: the zero-configuration default.
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Upgrade with STARTTLS, and refuse to send if the server cannot (the default).
    Starttls,
    /// Implicit TLS from the first byte (usually port 465).
    Tls,
    /// No encryption: only for a relay on the same host, and only when set explicitly.
    Plaintext,
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
    pub pool_size: u32,
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
    /// Attempts before a notification that keeps failing temporarily is marked dead.
    pub max_attempts: i64,
    /// First retry delay; each further one doubles, up to `retry_max_seconds`, with ±20% jitter.
    pub retry_base_seconds: i64,
    pub retry_max_seconds: i64,
    /// How long a claim on a row lasts: a worker that dies leaves it to the next after this.
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
            max_attempts: 12,
            retry_base_seconds: 60,
            retry_max_seconds: 6 * 3600,
            claim_seconds: 300,
            quiet_hours: false,
            working_hours: "09:00-17:00".to_string(),
        }
    }
}

impl MailSettings {
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
