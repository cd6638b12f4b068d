//! `casewarden webhooks`, `webhooks replay NAME --from ID` and `webhooks secret`.

use super::WebhooksAction;
use crate::output::{out, outln};
use crate::settings::Settings;
use crate::text::terminal_json;

pub async fn run(
    action: Option<WebhooksAction>,
    json: bool,
    settings: &Settings,
) -> anyhow::Result<()> {
    match action {
        None => {
            let db = crate::startup::connect_database(settings).await?;
            let ready = crate::db::sql("SELECT COUNT(*) FROM webhook_subscriptions")
                .scalar::<i64>(&db)
                .await;
            if ready.is_err() {
                anyhow::bail!(
                    "{} has no webhook tables yet: run `casewarden migrate` (or start the daemon) first",
                    settings.database.url
                );
            }
            let status =
                crate::webhooks::status(&db, &settings.webhooks, crate::clock::now()).await?;
            if json {
                outln!("{}", terminal_json(&serde_json::to_string_pretty(&status)?))?;
            } else {
                out!("{}", status.to_text())?;
            }
        }
        Some(WebhooksAction::Replay { name, from }) => {
            let db = crate::startup::open_database(settings).await?;
            let now = crate::clock::now();
            let done =
                crate::webhooks::replay(&db, &settings.webhooks, &name, from, "operator", now)
                    .await;
            db.close().await;
            let done = done?;
            let before = done.previous_delivered_through;
            outln!(
                "webhook {name} delivers from event {from} next (it had delivered through event {before}); a running daemon picks this up within seconds"
            )?;
            if let Some(id) = &done.abandoned_batch {
                eprintln!(
                    "the batch in flight ({id}) was abandoned: its events are sent again in new batches, with new webhook-ids"
                );
            }
            if from > before + 1 {
                eprintln!(
                    "events {} to {} are skipped: the receiver will not be sent them",
                    before + 1,
                    from - 1
                );
            }
        }
        Some(WebhooksAction::Secret) => {
            let secret = crate::webhooks::sign::new_secret()
                .map_err(|e| anyhow::anyhow!("no randomness for a secret: {e}"))?;
            eprintln!(
                "a new signing secret follows: store it where the subscription's secret_file or secret_env points, and give it to the receiver"
            );
            outln!("{secret}")?;
        }
    }
    Ok(())
}
