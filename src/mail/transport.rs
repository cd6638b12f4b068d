//! Transports: a directory of `.eml` files (the default), or SMTP through lettre with a
//! connection pool and TLS. Errors are sorted into temporary (retry later) and permanent (give
//! up now), which is what the delivery worker acts on.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::Rendered;
use super::settings::{MailSettings, Security, TransportKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: connection refused, timeouts, 4xx replies.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Trying again will not help: 5xx replies, a bad address.
    #[error("permanent failure: {0}")]
    Permanent(String),
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
    #[error("cannot read mail.smtp.password_file {path}: {source}")]
    PasswordFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mail.smtp: {0}")]
    Smtp(String),
}

enum Transport {
    File(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
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
            TransportKind::Smtp => Transport::Smtp(smtp(settings)?),
        };
        Ok(Mailer {
            transport,
            from,
            reply_to,
            domain,
        })
    }

    /// A Message-ID that stays the same for every attempt at one outbox row, so a retry after an
    /// unknown outcome can be recognised downstream.
    pub fn message_id(&self, outbox_id: i64) -> String {
        format!("<casewarden.outbox.{outbox_id}@{}>", self.domain)
    }

    /// Builds the message for one outbox row.
    pub fn build(
        &self,
        outbox_id: i64,
        to_name: Option<&str>,
        to_email: &str,
        m: &Rendered,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Message, SendError> {
        let address = to_email
            .parse()
            .map_err(|_| SendError::Permanent(format!("{to_email:?} is not an e-mail address")))?;
        let to = Mailbox::new(to_name.map(str::to_string), address);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .date(std::time::SystemTime::from(now))
            .message_id(Some(self.message_id(outbox_id)));
        if let Some(r) = &self.reply_to {
            builder = builder.reply_to(r.clone());
        }
        let built = match &m.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                m.text.clone(),
                html.clone(),
            )),
            None => builder.header(ContentType::TEXT_PLAIN).body(m.text.clone()),
        };
        built.map_err(|e| SendError::Permanent(format!("cannot build the message: {e}")))
    }

    pub async fn send(&self, outbox_id: i64, message: Message) -> Result<(), SendError> {
        match &self.transport {
            Transport::File(dir) => {
                tokio::fs::create_dir_all(dir).await.map_err(|e| {
                    SendError::Temporary(format!("cannot create {}: {e}", dir.display()))
                })?;
                let path = dir.join(format!("outbox-{outbox_id}.eml"));
                let tmp = dir.join(format!(".outbox-{outbox_id}.eml.tmp"));
                tokio::fs::write(&tmp, message.formatted())
                    .await
                    .map_err(|e| {
                        SendError::Temporary(format!("cannot write {}: {e}", tmp.display()))
                    })?;
                tokio::fs::rename(&tmp, &path).await.map_err(|e| {
                    SendError::Temporary(format!("cannot write {}: {e}", path.display()))
                })
            }
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| classify(&e)),
        }
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let text = e.to_string();
    if e.is_permanent() {
        SendError::Permanent(text)
    } else {
        SendError::Temporary(text)
    }
}

fn smtp(settings: &MailSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailerError> {
    let s = &settings.smtp;
    let err = |e: lettre::transport::smtp::Error| MailerError::Smtp(e.to_string());
    let mut builder = match s.security {
        Security::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host).map_err(err)?
        }
        Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host).map_err(err)?,
        Security::Plaintext => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
    };
    let default_port = match s.security {
        Security::Starttls => 587,
        Security::Tls => 465,
        Security::Plaintext => 25,
    };
    builder = builder
        .port(s.port.unwrap_or(default_port))
        .timeout(Some(Duration::from_secs(s.timeout_seconds)))
        .pool_config(PoolConfig::new().max_size(s.pool_size.max(1)));
    if let Some(user) = &s.username {
        let password = password(settings)?;
        builder = builder.credentials(Credentials::new(user.clone(), password.0));
    }
    Ok(builder.build())
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
            .map_err(|source| MailerError::PasswordFile {
                path: path.clone(),
                source,
            });
    }
    Err(MailerError::Smtp(
        "mail.smtp.username is set but no password source: set mail.smtp.password_env or mail.smtp.password_file".into(),
    ))
}
