//! SMTP through our own small pool of lettre connections. We open each TCP stream ourselves so
//! that Nagle's algorithm is off (`set_nodelay`): with it on, the end of every message waits for
//! the server's delayed ACK (~40 ms) and sending tops out near 21 messages a second. Connections
//! stay open across messages (at most `pool_size`), are upgraded with STARTTLS or opened with
//! implicit TLS as configured, authenticate once, and are replaced when they break.
//!
//! Failures are sorted for the delivery worker: the server could not be reached at all
//! ([`SendError::Unreachable`]), the connection broke while a message was on it
//! ([`SendError::Interrupted`]), the server said "later" (4xx, [`SendError::Temporary`]) or
//! "never" (5xx, [`SendError::Permanent`]).

#![allow(deprecated)] // lettre marks AsyncNetworkStream "not meant to be public"; it is the only way to hand it a stream we opened.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncNetworkStream, AsyncSmtpConnection, AsyncTokioStream, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

use super::SendError;
use super::settings::{Security, SmtpSettings};

/// Where and how to connect; built once from the settings.
pub struct SmtpPool {
    host: String,
    port: u16,
    security: Security,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    slots: tokio::sync::Semaphore,
    size: usize,
}

impl SmtpPool {
    pub fn new(s: &SmtpSettings, credentials: Option<Credentials>) -> Result<SmtpPool, String> {
        let tls = match s.security {
            Security::Plaintext => None,
            Security::Starttls | Security::Tls => {
                Some(TlsParameters::new(s.host.clone()).map_err(|e| e.to_string())?)
            }
        };
        let port = s.port.unwrap_or(match s.security {
            Security::Starttls => 587,
            Security::Tls => 465,
            Security::Plaintext => 25,
        });
        let size = usize::try_from(s.pool_size.clamp(1, 64)).unwrap_or(1);
        Ok(SmtpPool {
            host: s.host.clone(),
            port,
            security: s.security,
            tls,
            credentials,
            timeout: Duration::from_secs(s.timeout_seconds.clamp(1, 600)),
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(size),
            size,
        })
    }

    /// How many connections may be used at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Sends one message, within `limit` at most. A connection taken from the pool that turns
    /// out to be broken (the server closed it while idle) is replaced once before giving up.
    pub async fn send(
        &self,
        envelope: &Envelope,
        bytes: &[u8],
        limit: Duration,
    ) -> Result<(), SendError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| SendError::Unreachable("the SMTP pool is closed".into()))?;
        let deadline = tokio::time::Instant::now() + limit.max(Duration::from_millis(100));
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        let pooled = self.idle.lock().map(|mut idle| idle.pop()).unwrap_or(None);
        let (mut conn, mut reused) = match pooled {
            Some(c) if !c.has_broken() => (c, true),
            _ => (self.connect(left()).await?, false),
        };
        loop {
            let limit = left().min(self.timeout);
            match tokio::time::timeout(limit, conn.send(envelope, bytes)).await {
                Ok(Ok(_)) => {
                    if let Ok(mut idle) = self.idle.lock() {
                        idle.push(conn);
                    }
                    return Ok(());
                }
                Ok(Err(e)) if e.is_permanent() => return Err(SendError::Permanent(e.to_string())),
                Ok(Err(e)) if e.is_transient() => return Err(SendError::Temporary(e.to_string())),
                // Refused before a byte was sent, e.g. 8-bit text to a server without 8BITMIME.
                Ok(Err(e)) if e.is_client() => return Err(SendError::Permanent(e.to_string())),
                outcome => {
                    let why = match outcome {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("no reply within {} s", limit.as_secs_f64()),
                    };
                    conn.abort().await;
                    if reused {
                        tracing::debug!(error = %why, "pooled SMTP connection broken; reconnecting");
                        reused = false;
                        conn = self.connect(left()).await?;
                        continue;
                    }
                    return Err(SendError::Interrupted(why));
                }
            }
        }
    }

    /// Opens, secures and authenticates a new connection within `within` (and the configured
    /// timeout); any failure means the server could not be reached.
    async fn connect(&self, within: Duration) -> Result<AsyncSmtpConnection, SendError> {
        let within = within.min(self.timeout);
        let unreachable = |what: &str, e: &dyn std::fmt::Display| {
            SendError::Unreachable(format!("{what} {}:{}: {e}", self.host, self.port))
        };
        let opened = tokio::time::timeout(within, async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| unreachable("cannot connect to", &e))?;
            tcp.set_nodelay(true)
                .map_err(|e| unreachable("cannot set TCP_NODELAY for", &e))?;
            let mut conn = match (self.security, &self.tls) {
                (Security::Tls, Some(tls)) => {
                    let peer = tcp
                        .peer_addr()
                        .map_err(|e| unreachable("cannot connect to", &e))?;
                    let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
                    stream
                        .upgrade_tls(tls.clone())
                        .await
                        .map_err(|e| unreachable("TLS handshake failed with", &e))?;
                    let stream = ImplicitTls {
                        inner: stream.compat(),
                        peer,
                    };
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                        .await
                        .map_err(|e| unreachable("no SMTP greeting from", &e))?
                }
                _ => AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                    .await
                    .map_err(|e| unreachable("no SMTP greeting from", &e))?,
            };
            if let (Security::Starttls, Some(tls)) = (self.security, &self.tls) {
                if !conn.can_starttls() {
                    conn.abort().await;
                    return Err(unreachable(
                        "STARTTLS is not offered by",
                        &"set mail.smtp.security = \"plaintext\" only for a relay on this host",
                    ));
                }
                conn.starttls(tls.clone(), &self.hello)
                    .await
                    .map_err(|e| unreachable("STARTTLS failed with", &e))?;
            }
            if let Some(credentials) = &self.credentials {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                    .await
                    .map_err(|e| unreachable("authentication refused by", &e))?;
            }
            Ok(conn)
        })
        .await;
        match opened {
            Ok(result) => result,
            Err(_) => Err(unreachable(
                "timed out connecting to",
                &format!("no answer within {} s", within.as_secs_f64()),
            )),
        }
    }
}

/// A TLS stream lettre made over our socket, handed back to lettre as a plain stream so that the
/// SMTP conversation starts after the handshake.
#[derive(Debug)]
struct ImplicitTls {
    inner: Compat<AsyncNetworkStream>,
    peer: SocketAddr,
}

impl AsyncRead for ImplicitTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}
