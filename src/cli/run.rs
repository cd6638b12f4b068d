//! What each subcommand does with the library.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::{Cli, OutboxAction, ReportWhat, RulesAction, ShowWhat, Subcommand};
use crate::output::{out, outln};
use crate::settings::Settings;
use crate::text::terminal_json;
use crate::{clock, daemon, demo, engine::ingest, report, startup};

pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<ExitCode> {
    let flags = cli.flags();
    clock::show_utc(cli.utc);
    match cli.command {
        Subcommand::Run => {
            let shutdown = daemon::on_shutdown_signals()?;
            let app = startup::build(settings, true).await?;
            daemon::run(app, shutdown).await?;
        }
        Subcommand::Tick { now } => {
            let now = now_arg(now)?;
            let app = startup::build(settings, true).await?;
            let outcome = app.engine.run_pass(now).await?;
            outln!("pass at {}: {outcome}", clock::for_people(now))?;
        }
        Subcommand::Plan { now, json } => {
            let now = now_arg(now)?;
            let app = startup::build(settings, false).await?;
            let plan = crate::engine::plan::plan(&app.engine, now).await?;
            if json {
                outln!("{}", terminal_json(&serde_json::to_string_pretty(&plan)?))?;
            } else {
                out!("{}", plan.to_text())?;
            }
        }
        Subcommand::Migrate => {
            let db = startup::open_database(&settings).await?;
            outln!("database {} is up to date", settings.database.url)?;
            db.close().await;
        }
        Subcommand::Check { json } => {
            let result = startup::load_rules(&settings);
            let problems = result
                .as_ref()
                .err()
                .map(|p| p.0.clone())
                .unwrap_or_default();
            if json {
                outln!(
                    "{}",
                    terminal_json(&serde_json::to_string_pretty(&problems)?)
                )?;
            } else {
                for p in &problems {
                    eprintln!("{p}");
                }
            }
            return Ok(match result {
                Ok(rules) => {
                    if !json {
                        outln!(
                            "ok: {} definitions, {} scripts (rule set {})",
                            rules.definitions.len(),
                            rules.scripts.len(),
                            rules.hash
                        )?;
                    }
                    ExitCode::SUCCESS
                }
                Err(p) => {
                    if !json {
                        eprintln!("{} problem(s) found", p.0.len());
                    }
                    ExitCode::FAILURE
                }
            });
        }
        Subcommand::Rules {
            action: RulesAction::Test { path },
        } => {
            let rules = startup::load_rules(&settings)
                .map_err(|p| anyhow::anyhow!("the rule set has problems:\n{p}"))?;
            let path = path.unwrap_or_else(|| settings.rules.dir.join("tests"));
            match crate::rules::testing::run(&rules, &path) {
                Ok(report) => {
                    out!("{}", report.to_text())?;
                    return Ok(if report.failed() > 0 {
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    });
                }
                Err(problems) => {
                    for p in &problems {
                        eprintln!("{p}");
                    }
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        Subcommand::Submit { file } => {
            let mut text = String::new();
            match file.as_deref() {
                None => std::io::stdin().read_to_string(&mut text)?,
                Some(p) if p.as_os_str() == "-" => std::io::stdin().read_to_string(&mut text)?,
                Some(p) => {
                    text = std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?;
                    0
                }
            };
            let db = startup::open_database(&settings).await?;
            for id in ingest::submit(&db, &text, settings.engine.max_command_bytes).await? {
                outln!("{id}")?;
            }
        }
        Subcommand::Inbox {
            rejected,
            json,
            limit,
        } => {
            let db = startup::connect_database(&settings).await?;
            let rows = report::inbox(&db, rejected, limit).await?;
            if json {
                outln!("{}", terminal_json(&serde_json::to_string_pretty(&rows)?))?;
            } else {
                out!("{}", report::inbox_text(&rows))?;
            }
        }
        Subcommand::Form { workflow, json } => {
            let rules = startup::load_rules(&settings)
                .map_err(|p| anyhow::anyhow!("the rule set has problems:\n{p}"))?;
            let form = rules.form_for(&workflow).map_err(anyhow::Error::msg)?;
            if json {
                outln!(
                    "{}",
                    terminal_json(&serde_json::to_string_pretty(&form.describe())?)
                )?;
            } else {
                out!("{}", form.to_text())?;
            }
        }
        Subcommand::Advice {
            case_ref,
            now,
            json,
        } => {
            let now = now_arg(now)?;
            let rules = std::sync::Arc::new(
                startup::load_rules(&settings)
                    .map_err(|p| anyhow::anyhow!("the rule set has problems:\n{p}"))?,
            );
            let db = startup::connect_database(&settings).await?;
            let choices = match report::advice(&db, &rules, &case_ref, now).await {
                Ok(choices) => choices,
                // The database is named, as `show case` names it, for an operator with several.
                Err(e @ report::AdviceError::UnknownCase(_)) => {
                    bail!("{e} in {}", settings.database.url)
                }
                Err(e) => return Err(e.into()),
            };
            if json {
                outln!(
                    "{}",
                    terminal_json(&serde_json::to_string_pretty(&choices)?)
                )?;
            } else {
                out!("{}", crate::advice::explain(&choices))?;
            }
            if choices.iter().any(|c| c.error.is_some()) {
                return Ok(ExitCode::FAILURE);
            }
        }
        Subcommand::Show {
            what: ShowWhat::Case { case_ref, json },
        } => {
            let db = startup::connect_database(&settings).await?;
            let Some(case) = report::case(&db, &case_ref).await? else {
                bail!("no case {case_ref:?} in {}", settings.database.url);
            };
            if json {
                outln!("{}", terminal_json(&serde_json::to_string_pretty(&case)?))?;
            } else {
                out!("{}", case.to_text())?;
            }
        }
        Subcommand::Report {
            what: ReportWhat::Duties { quarter },
        } => {
            let db = startup::connect_database(&settings).await?;
            out!("{}", report::duties_csv(&db, quarter).await?)?;
        }
        Subcommand::Worklist {
            user,
            role,
            now,
            json,
        } => {
            let now = now_arg(now)?;
            let db = startup::connect_database(&settings).await?;
            let list = report::full_worklist(&db, user.as_deref(), role.as_deref(), now).await?;
            if json {
                outln!("{}", terminal_json(&serde_json::to_string_pretty(&list)?))?;
            } else {
                out!("{}", report::full_worklist_text(&list))?;
            }
        }
        Subcommand::Outbox {
            action: Some(OutboxAction::Retry { id, now }),
            ..
        } => {
            let now = now_arg(now)?;
            let db = startup::connect_database(&settings).await?;
            report::retry_notification(&db, id, now, "operator").await?;
            outln!(
                "notification {id} requeued for {}; the next pass from then will send it",
                clock::for_people(now)
            )?;
        }
        Subcommand::Outbox {
            action: None,
            status,
            json,
            limit,
        } => {
            let db = startup::connect_database(&settings).await?;
            let rows = report::outbox(&db, status.as_deref(), limit).await?;
            if json {
                outln!("{}", terminal_json(&serde_json::to_string_pretty(&rows)?))?;
            } else {
                if let Some(server) = crate::mail::status::current(&db).await? {
                    outln!("{}", crate::text::terminal(server.to_text().trim_end()))?;
                }
                out!("{}", report::outbox_text(&rows))?;
            }
        }
        Subcommand::Events { after, limit } => {
            let db = startup::connect_database(&settings).await?;
            for e in crate::events::since(&db, after, limit).await? {
                outln!("{}", terminal_json(&serde_json::to_string(&e)?))?;
            }
        }
        Subcommand::Clients { action } => super::clients::run(action, &settings).await?,
        Subcommand::Webhooks { action, json } => {
            super::webhooks::run(action, json, &settings).await?
        }
        Subcommand::Demo { dir } => demo::run(&settings, &dir).await?,
        Subcommand::Status { json } => {
            let db = startup::connect_database(&settings).await?;
            let status = crate::status::gather(&settings, &db, clock::now()).await;
            db.close().await;
            let status = status?;
            if json {
                outln!("{}", terminal_json(&serde_json::to_string_pretty(&status)?))?;
            } else {
                out!("{}", status.to_text())?;
            }
        }
        Subcommand::Config { json } => {
            let (file, env) = Settings::sources(cli.config.as_deref())?;
            let sources = crate::settings_origin::Sources {
                file,
                env,
                flags: &flags,
            };
            let shown = crate::settings_origin::in_force(&settings, &sources)?;
            if json {
                outln!("{}", terminal_json(&serde_json::to_string_pretty(&shown)?))?;
            } else {
                out!("{}", crate::settings_origin::to_text(&shown))?;
            }
        }
        Subcommand::Erase { what } => super::privacy::run(&settings, what).await?,
        Subcommand::Export { what } => super::privacy::export(&settings, what).await?,
        Subcommand::Backup { file } => {
            let db = startup::connect_database(&settings).await?;
            let url = settings.database.url.to_string();
            let backup = crate::backup::sqlite(&db, &url, &file).await;
            db.close().await;
            out!("{}", backup?.to_text())?;
        }
        Subcommand::Completions { shell } => {
            let mut script = Vec::new();
            super::manuals::completions(shell, &mut script);
            out!("{}", String::from_utf8(script)?)?;
        }
        Subcommand::Manpages { dir } => {
            for page in super::manuals::man_pages(&dir)? {
                outln!("{}", page.display())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--now TIME` as `tick`, `plan`, `advice` and `outbox retry` take it; the wall clock when absent.
fn now_arg(given: Option<String>) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    match given {
        Some(t) => clock::parse_time(&t)
            .map_err(anyhow::Error::msg)
            .context("--now"),
        None => Ok(clock::now()),
    }
}
