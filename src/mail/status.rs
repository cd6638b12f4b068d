//! Whether delivery could reach its mail server, as the last pass found it: set when a pass
//! stopped because the server was unreachable, cleared by the next message it accepts. Shown by
//! `casewarden outbox`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::{Db, sql};

const SMTP: &str = "smtp";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct ServerStatus {
    pub unreachable_since: Option<DateTime<Utc>>,
    pub last_tried_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// Records that the server could not be reached at `now`, keeping when the outage began.
pub async fn unreachable(db: &Db, now: DateTime<Utc>, error: &str) -> Result<(), sqlx::Error> {
    sql("INSERT INTO mail_server_status (transport, unreachable_since, last_tried_at, last_error) VALUES ($1, $2, $2, $3) \
         ON CONFLICT (transport) DO UPDATE SET unreachable_since = COALESCE(mail_server_status.unreachable_since, excluded.unreachable_since), \
         last_tried_at = excluded.last_tried_at, last_error = excluded.last_error")
        .bind(SMTP)
        .bind(now)
        .bind(crate::text::bounded(error, 500))
        .execute(db)
        .await?;
    Ok(())
}

/// Records that the server accepted a message: any outage is over.
pub async fn reached(db: &Db, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sql("UPDATE mail_server_status SET unreachable_since = NULL, last_error = NULL, last_tried_at = $2 \
         WHERE transport = $1 AND unreachable_since IS NOT NULL")
        .bind(SMTP)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

/// The server's status while it is unreachable; `None` when it was reached last time.
pub async fn current(db: &Db) -> Result<Option<ServerStatus>, sqlx::Error> {
    sql(
        "SELECT unreachable_since, last_tried_at, last_error FROM mail_server_status \
         WHERE transport = $1 AND unreachable_since IS NOT NULL",
    )
    .bind(SMTP)
    .fetch_optional(db)
    .await
}

impl ServerStatus {
    /// One line for the outbox listing.
    pub fn to_text(&self) -> String {
        let at =
            |t: Option<DateTime<Utc>>| t.map(crate::clock::for_people_exact).unwrap_or_default();
        format!(
            "smtp_unreachable: the SMTP server has been unreachable since {} (last tried {}): {}\n",
            at(self.unreachable_since),
            crate::clock::for_people_exact(self.last_tried_at),
            self.last_error.as_deref().unwrap_or("no error recorded")
        )
    }
}
