//! API clients: the systems allowed to call the API. Each has a name (the actor of the commands
//! it submits), scopes, and a bearer token that is shown once when the client is added. Only the
//! token's SHA-256 is stored: the token is 256 random bits, so a fast hash is enough (there is
//! nothing to guess from it), and a database backup never holds a usable token.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::{Db, sql};
use crate::events::kinds::{ApiClientAdded, ApiClientRevoked, Kind};
use crate::events::{self};

/// What a client may do. `admin` includes every other scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
pub enum Scope {
    /// Submit commands and read their outcome.
    #[serde(rename = "commands:write")]
    CommandsWrite,
    /// Read cases, worklists, forms, advice and packs.
    #[serde(rename = "cases:read")]
    CasesRead,
    /// Follow the event feed.
    #[serde(rename = "events:read")]
    EventsRead,
    /// Scrape `GET /metrics` (when `[metrics] on_api` is set).
    #[serde(rename = "metrics:read")]
    MetricsRead,
    /// The outbox, the rule set's state, and everything above.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::CommandsWrite,
        Scope::CasesRead,
        Scope::EventsRead,
        Scope::MetricsRead,
        Scope::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scope::CommandsWrite => "commands:write",
            Scope::CasesRead => "cases:read",
            Scope::EventsRead => "events:read",
            Scope::MetricsRead => "metrics:read",
            Scope::Admin => "admin",
        }
    }

    /// A comma-separated list such as `commands:write,cases:read`.
    pub fn parse_list(text: &str) -> Result<Vec<Scope>, String> {
        let mut scopes = Vec::new();
        for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let scope = Scope::ALL
                .into_iter()
                .find(|s| s.name() == name)
                .ok_or_else(|| {
                    format!(
                        "unknown scope {}: use {}",
                        crate::text::quote(name),
                        Scope::ALL.map(Scope::name).join(", ")
                    )
                })?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.is_empty() {
            return Err(format!(
                "no scopes given: use one or more of {}, comma-separated",
                Scope::ALL.map(Scope::name).join(", ")
            ));
        }
        scopes.sort();
        Ok(scopes)
    }

    fn join(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A client that presented a valid token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub scopes: Vec<Scope>,
}

impl Caller {
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }
}

/// A client as `clients list` shows it; never its token.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Client {
    pub name: String,
    pub scopes: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Invalid(String),
    #[error("a client named {0} already exists; revoke it first to issue a new token")]
    Exists(String),
    #[error("no client named {0} holds a token (see `casewarden clients list`)")]
    Unknown(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Names the engine already uses as actors: a client may not pose as them.
const RESERVED: [&str; 3] = [events::ENGINE, crate::engine::apply::CRM, "operator"];

/// Adds a client and returns its token, which is not stored and cannot be shown again.
pub async fn add(
    db: &Db,
    name: &str,
    scopes: &[Scope],
    now: DateTime<Utc>,
) -> Result<String, ClientError> {
    crate::commands::reference("client name", name).map_err(|r| ClientError::Invalid(r.0))?;
    if RESERVED.contains(&name) {
        return Err(ClientError::Invalid(format!(
            "client name {name:?} is the actor casewarden uses for its own changes; choose another"
        )));
    }
    let token = new_token();
    let mut tx = db.begin_write().await?;
    let live: Option<(i64,)> =
        sql("SELECT id FROM api_clients WHERE name = $1 AND revoked_at IS NULL")
            .bind(name)
            .fetch_optional(&mut tx)
            .await?;
    if live.is_some() {
        return Err(ClientError::Exists(crate::text::quote(name)));
    }
    sql("INSERT INTO api_clients (name, token_hash, scopes, created_at) VALUES ($1, $2, $3, $4)")
        .bind(name)
        .bind(hash(&token))
        .bind(Scope::join(scopes))
        .bind(now)
        .execute(&mut tx)
        .await?;
    let added = Kind::ApiClientAdded(ApiClientAdded {
        name: name.to_string(),
        scopes: scopes.iter().map(|s| s.name().to_string()).collect(),
    });
    events::record(&mut tx, None, now, "operator", added).await?;
    tx.commit().await?;
    Ok(token)
}

/// Revokes a client's token at once: its next request is refused.
pub async fn revoke(db: &Db, name: &str, now: DateTime<Utc>) -> Result<(), ClientError> {
    let mut tx = db.begin_write().await?;
    let changed =
        sql("UPDATE api_clients SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(name)
            .execute(&mut tx)
            .await?;
    if changed == 0 {
        return Err(ClientError::Unknown(crate::text::quote(name)));
    }
    let revoked = Kind::ApiClientRevoked(ApiClientRevoked {
        name: name.to_string(),
    });
    events::record(&mut tx, None, now, "operator", revoked).await?;
    tx.commit().await?;
    Ok(())
}

/// Every client, live and revoked, by name.
pub async fn list(db: &Db) -> Result<Vec<Client>, sqlx::Error> {
    sql("SELECT name, scopes, created_at, revoked_at FROM api_clients ORDER BY name, id")
        .fetch_all(db)
        .await
}

/// The live client whose token this is.
pub async fn authenticate(db: &Db, token: &str) -> Result<Option<Caller>, sqlx::Error> {
    let found: Option<(String, String)> =
        sql("SELECT name, scopes FROM api_clients WHERE token_hash = $1 AND revoked_at IS NULL")
            .bind(hash(token))
            .fetch_optional(db)
            .await?;
    Ok(found.map(|(name, scopes)| Caller {
        name,
        // Scopes were checked when the client was added; one the binary no longer knows is
        // simply not granted.
        scopes: scopes
            .split(',')
            .filter_map(|s| Scope::ALL.into_iter().find(|k| k.name() == s))
            .collect(),
    }))
}

/// `cw_` and 256 random bits, URL-safe base64: recognisable in a secret scanner, safe in a
/// header.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    format!(
        "cw_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_from_a_comma_list_and_unknown_ones_are_named() {
        assert_eq!(
            Scope::parse_list("cases:read, commands:write,cases:read").unwrap(),
            vec![Scope::CommandsWrite, Scope::CasesRead]
        );
        let err = Scope::parse_list("cases:read,cases:write").unwrap_err();
        assert!(
            err.starts_with("unknown scope \"cases:write\": use commands:write"),
            "{err}"
        );
        assert!(
            Scope::parse_list(" , ")
                .unwrap_err()
                .starts_with("no scopes given")
        );
    }

    #[test]
    fn tokens_are_long_random_and_header_safe() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"_-".contains(&c)),
            "{a}"
        );
        assert_eq!(hash(&a).len(), 64);
    }

    #[test]
    fn admin_may_do_everything_and_others_only_their_scopes() {
        let admin = Caller {
            name: "ops".into(),
            scopes: vec![Scope::Admin],
        };
        let crm = Caller {
            name: "crm1".into(),
            scopes: vec![Scope::CommandsWrite],
        };
        assert!(Scope::ALL.into_iter().all(|s| admin.may(s)));
        assert!(crm.may(Scope::CommandsWrite) && !crm.may(Scope::EventsRead));
    }
}
