//! Transports: a directory of `.eml` files (the default), or SMTP through our own pool of lettre
//! connections (`smtp.rs`). Errors are sorted into what the delivery worker acts on: retry this
//! message later, give it up now, or stop the pass because the server cannot be reached.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;

use super::Rendered;
use super::message::{self, Outgoing, Parts};
use super::settings::{MailSettings, TransportKind};
use super::smtp::SmtpPool;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: connection refused, timeouts, 4xx replies.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Trying again will not help: 5xx replies, a bad address, a message that cannot be built.
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// The server could not be reached at all (refused, timed out, TLS handshake, greeting,
    /// authentication): nothing was sent, and the next messages would meet the same.
    #[error("SMTP server unreachable: {0}")]
    Unreachable(String),
    /// The connection broke or went silent while this message was on it: it may or may not have
    /// arrived, and the server is in doubt.
    #[error("connection lost while sending: {0}")]
    Interrupted(String),
}

impl SendError {
    /// Whether the failure is the server's rather than this message's: the pass stops there.
    pub fn is_connection(&self) -> bool {
        matches!(self, SendError::Unreachable(_) | SendError::Interrupted(_))
    }
}

/// A password, never printed.
#[derive(Clone)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error(
        "mail.from {0:?} is not an address such as \"Home Ownership <homeownership@example.org>\""
    )]
    From(String),
    #[error("mail.reply_to {0:?} is not an address")]
    ReplyTo(String),
    #[error("mail.smtp.password_env names {0}, which is not set")]
    PasswordEnv(String),
    // The cause is in the message and not also a source, so a printed chain names it once.
    #[error("cannot read mail.smtp.password_file {}: {cause}", path.display())]
    PasswordFile {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("mail.smtp: {0}")]
    Smtp(String),
}

enum Transport {
    File(PathBuf),
    Smtp(Box<SmtpPool>),
}

/// Builds messages and sends them.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    domain: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.transport {
            Transport::File(dir) => format!("file {}", dir.display()),
            Transport::Smtp(_) => "smtp".to_string(),
        };
        f.debug_struct("Mailer")
            .field("transport", &kind)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    pub fn new(settings: &MailSettings) -> Result<Mailer, MailerError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|_| MailerError::From(settings.from.clone()))?;
        let reply_to = match &settings.reply_to {
            Some(r) => Some(r.parse().map_err(|_| MailerError::ReplyTo(r.clone()))?),
            None => None,
        };
        let domain = from.email.domain().to_string();
        let transport = match settings.transport {
            TransportKind::File => Transport::File(settings.dir.clone()),
            TransportKind::Smtp => {
                let credentials = match &settings.smtp.username {
                    Some(user) => Some(Credentials::new(user.clone(), password(settings)?.0)),
                    None => None,
                };
                Transport::Smtp(Box::new(
                    SmtpPool::new(&settings.smtp, credentials).map_err(MailerError::Smtp)?,
                ))
            }
        };
        Ok(Mailer {
            transport,
            from,
            reply_to,
            domain,
        })
    }

    /// How many workers send at once: the SMTP pool's size; for files, one per core (up to
    /// four), since rendering, not writing, bounds them.
    pub fn concurrency(&self) -> usize {
        match &self.transport {
            Transport::File(_) => {
                std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
            }
            Transport::Smtp(pool) => pool.size(),
        }
    }

    /// A Message-ID that stays the same for every attempt at one outbox row, so a retry after an
    /// unknown outcome can be recognised downstream.
    pub fn message_id(&self, outbox_id: i64) -> String {
        format!("<casewarden.outbox.{outbox_id}@{}>", self.domain)
    }

    /// Builds the message for one outbox row. Never panics; never lets a value add a header.
    pub fn build(
        &self,
        outbox_id: i64,
        to_name: Option<&str>,
        to_email: &str,
        m: &Rendered,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Outgoing, SendError> {
        message::build(
            &Parts {
                from: &self.from,
                reply_to: self.reply_to.as_ref(),
                to_name,
                to_email,
                message_id: self.message_id(outbox_id),
                date: now,
            },
            m,
        )
    }

    /// Whether messages are written to files (sent in batches) rather than over SMTP.
    pub fn writes_files(&self) -> bool {
        matches!(self.transport, Transport::File(_))
    }

    /// Sends each message in turn, each taking at most `limit`; one result per message. Files
    /// are written together on one blocking thread, not one hand-off per file operation.
    pub async fn send_all<T>(
        &self,
        messages: &[(T, Outgoing)],
        ids: impl Fn(&T) -> i64,
        limit: Duration,
    ) -> Vec<Result<(), SendError>> {
        match &self.transport {
            Transport::File(dir) => {
                let dir = dir.clone();
                let files: Vec<(i64, Vec<u8>)> = messages
                    .iter()
                    .map(|(row, m)| (ids(row), m.bytes.clone()))
                    .collect();
                let n = files.len();
                tokio::task::spawn_blocking(move || write_files(&dir, &files))
                    .await
                    .unwrap_or_else(|e| {
                        let e = format!("the file writer thread failed: {e}");
                        (0..n)
                            .map(|_| Err(SendError::Temporary(e.clone())))
                            .collect()
                    })
            }
            Transport::Smtp(_) => {
                let mut results = Vec::with_capacity(messages.len());
                for (row, message) in messages {
                    results.push(self.send(ids(row), message, limit).await);
                }
                results
            }
        }
    }

    /// Sends one message, taking at most `limit` over it.
    pub async fn send(
        &self,
        outbox_id: i64,
        message: &Outgoing,
        limit: Duration,
    ) -> Result<(), SendError> {
        match &self.transport {
            Transport::File(dir) => {
                let (dir, files) = (dir.clone(), vec![(outbox_id, message.bytes.clone())]);
                tokio::task::spawn_blocking(move || write_files(&dir, &files).remove(0))
                    .await
                    .unwrap_or_else(|e| {
                        Err(SendError::Temporary(format!(
                            "the file writer thread failed: {e}"
                        )))
                    })
            }
            Transport::Smtp(pool) => pool.send(&message.envelope, &message.bytes, limit).await,
        }
    }
}

/// Writes each message to `outbox-<id>.eml` in `dir`, through a temporary file renamed into
/// place, so a reader never sees half a message and writing one again replaces it whole.
fn write_files(dir: &std::path::Path, files: &[(i64, Vec<u8>)]) -> Vec<Result<(), SendError>> {
    if let Err(e) = std::fs::create_dir_all(dir) {
        let e = format!("cannot create {}: {e}", dir.display());
        return files
            .iter()
            .map(|_| Err(SendError::Temporary(e.clone())))
            .collect();
    }
    files
        .iter()
        .map(|(id, bytes)| {
            let path = dir.join(format!("outbox-{id}.eml"));
            let tmp = dir.join(format!(".outbox-{id}.eml.tmp"));
            std::fs::write(&tmp, bytes).map_err(|e| {
                SendError::Temporary(format!("cannot write {}: {e}", tmp.display()))
            })?;
            std::fs::rename(&tmp, &path)
                .map_err(|e| SendError::Temporary(format!("cannot write {}: {e}", path.display())))
        })
        .collect()
}

fn password(settings: &MailSettings) -> Result<Secret, MailerError> {
    let s = &settings.smtp;
    if let Some(var) = &s.password_env {
        return std::env::var(var)
            .map(Secret)
            .map_err(|_| MailerError::PasswordEnv(var.clone()));
    }
    if let Some(path) = &s.password_file {
        return std::fs::read_to_string(path)
            .map(|p| Secret(p.trim_end_matches(['\n', '\r']).to_string()))
            .map_err(|cause| MailerError::PasswordFile {
                path: path.clone(),
                cause,
            });
    }
    Err(MailerError::Smtp(
        "mail.smtp.username is set but no password source: set mail.smtp.password_env or mail.smtp.password_file".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_file_that_cannot_be_read_is_named_with_its_cause_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smtp-password");
        let mut settings = MailSettings {
            transport: TransportKind::Smtp,
            ..MailSettings::default()
        };
        settings.smtp.username = Some("casewarden".to_string());
        settings.smtp.password_file = Some(path.clone());
        let err = anyhow::Error::from(Mailer::new(&settings).err().unwrap());
        assert_eq!(
            format!("{err:#}"),
            format!(
                "cannot read mail.smtp.password_file {}: No such file or directory (os error 2)",
                path.display()
            )
        );
        std::fs::write(&path, "s3cret\n").unwrap();
        assert!(Mailer::new(&settings).is_ok());
    }
}
