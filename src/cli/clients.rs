//! `casewarden clients add|list|revoke`.

use super::ClientsAction;
use crate::api::clients::{self, Scope};
use crate::output::{out, outln};
use crate::settings::Settings;
use crate::text::{terminal, terminal_json};

pub async fn run(action: ClientsAction, settings: &Settings) -> anyhow::Result<()> {
    match action {
        ClientsAction::Add { name, scopes } => {
            let scopes =
                Scope::parse_list(&scopes).map_err(|e| anyhow::anyhow!("--scopes: {e}"))?;
            let db = crate::startup::open_database(settings).await?;
            let token = clients::add(&db, &name, &scopes, crate::clock::now()).await?;
            db.close().await;
            eprintln!(
                "client {name} added; its token follows. It is shown only this once: store it in the client's secret store now."
            );
            outln!("{token}")?;
        }
        ClientsAction::List { json } => {
            let db = crate::startup::connect_database(settings).await?;
            let list = clients::list(&db).await?;
            if json {
                outln!("{}", terminal_json(&serde_json::to_string_pretty(&list)?))?;
            } else if list.is_empty() {
                outln!(
                    "no API clients yet; add one with `casewarden clients add NAME --scopes …`"
                )?;
            } else {
                for c in &list {
                    let state = match c.revoked_at {
                        Some(at) => format!("revoked {}", crate::clock::for_people(at)),
                        None => "live".to_string(),
                    };
                    out!(
                        "{}\n",
                        terminal(&format!(
                            "{:<30} {:<45} added {}  {state}",
                            c.name,
                            c.scopes,
                            crate::clock::for_people(c.created_at)
                        ))
                    )?;
                }
            }
        }
        ClientsAction::Revoke { name } => {
            let db = crate::startup::open_database(settings).await?;
            clients::revoke(&db, &name, crate::clock::now()).await?;
            db.close().await;
            outln!("client {name} revoked; its token is refused from now on")?;
        }
    }
    Ok(())
}
