//! The command line: what each subcommand takes and what it does with the library.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;

use crate::output::{out, outln};
use crate::settings::Settings;
use crate::text::terminal_json;
use crate::{clock, daemon, demo, engine::ingest, report, startup};

#[derive(Debug, Parser)]
#[command(
    name = "casewarden",
    version,
    about = "Case workflow daemon for UK social housing: allocates cases, runs stages and tasks, keeps SLA clocks",
    long_about = "casewarden runs beside a housing CRM. The CRM writes commands into the inbox table (or pipes \
                  JSON lines into `casewarden submit`); each pass of the engine applies them, allocates new \
                  cases, activates tasks and moves cases from stage to stage, recording every change as an \
                  event the CRM reads back.\n\nWith no configuration it uses sqlite://casewarden.db, ./rules \
                  and ./templates in the working directory."
)]
pub struct Cli {
    /// Configuration file (TOML). Default: ./casewarden.toml if it exists.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL, overriding the configuration: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, global = true, value_name = "URL")]
    pub database: Option<String>,
    /// Rules directory, overriding the configuration.
    #[arg(long, global = true, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Templates directory, overriding the configuration.
    #[arg(long, global = true, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Subcommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum Subcommand {
    /// Run the daemon: passes on the configured schedule (default every 30 s) until SIGTERM or
    /// SIGINT, which let the current pass finish. SIGHUP reloads rules and templates.
    Run,
    /// Run one pass of every step as if the time were TIME, then exit.
    Tick {
        /// RFC 3339 instant (2026-03-02T10:30:00Z) or a date (2026-03-02 means 09:00
        /// Europe/London). Default: now.
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
    },
    /// Show what the next pass would do at TIME, against the live database, writing nothing: the
    /// commands it would apply or reject, allocations, activations, releases, escalations with
    /// their reasons, and notifications.
    Plan {
        /// RFC 3339 instant or a date (09:00 Europe/London). Default: now.
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Validate every definition, script and template; print each problem as file:line:col.
    Check {
        /// Print the problems as a JSON array, for editors and CI.
        #[arg(long)]
        json: bool,
    },
    /// Rule authors' tools.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Add commands (one JSON object per line) to the inbox and print each one's inbox id.
    Submit {
        /// File of JSON lines; `-` or nothing reads standard input.
        #[arg(value_name = "FILE|-")]
        file: Option<PathBuf>,
    },
    /// List recent inbox commands with their status and, for rejected ones, the reason.
    Inbox {
        /// Only rejected commands.
        #[arg(long)]
        rejected: bool,
        #[arg(long)]
        json: bool,
        /// How many of the most recent commands.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// The enquiry form of a housing options workflow: its questions, their types, choices and
    /// limits, as submit_enquiry checks answers against them.
    Form {
        workflow: String,
        #[arg(long)]
        json: bool,
    },
    /// Which advice statements a housing options case's answers choose, and why each was
    /// chosen or left out, with the rules as they are now (writes nothing).
    Advice {
        case_ref: String,
        /// Decide as of this time (RFC 3339 or a date; default now): conditions see its date as
        /// `today`.
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show a record in full.
    Show {
        #[command(subcommand)]
        what: ShowWhat,
    },
    /// Open tasks for a user or a role (the "cases and tasks" list), as the worklist views give
    /// them to CRMs.
    Worklist {
        #[arg(long, value_name = "USER", conflicts_with = "role")]
        user: Option<String>,
        #[arg(long, value_name = "ROLE")]
        role: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Notifications: what is pending, sent or dead, and why; `outbox retry ID` requeues a dead one.
    Outbox {
        #[command(subcommand)]
        action: Option<OutboxAction>,
        /// Only rows in this state.
        #[arg(long, value_parser = ["pending", "claimed", "sent", "dead"])]
        status: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Follow the event log: events after an id, oldest first, as JSON lines.
    Events {
        /// Print events with an id greater than this.
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Build a demonstration database, run the real engine over simulated weeks, and tell the
    /// story.
    Demo {
        /// Directory for the demo database (created; any old demo database in it is replaced).
        #[arg(long, default_value = "casewarden-demo", value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum RulesAction {
    /// Run the rule tests (default: rules/tests/), print each result with a difference, and list
    /// the rules and target branches no test exercised. Exits non-zero if any test fails.
    Test {
        #[arg(value_name = "PATH")]
        path: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum OutboxAction {
    /// Requeue a dead notification for delivery at the next pass at or after TIME.
    Retry {
        #[arg(value_name = "ID")]
        id: i64,
        /// When it becomes due: RFC 3339 instant or a date (09:00 Europe/London), as for
        /// `tick --now`. Default: now.
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ShowWhat {
    /// A case: its stages, tasks with their dates and states, notes, attachments and events.
    Case {
        #[arg(value_name = "REF")]
        case_ref: String,
        #[arg(long)]
        json: bool,
    },
}

/// An error as a `--json` command prints it on standard error: `{"error": "…", "causes": […]}`,
/// the message and then each cause, outermost first, each once.
pub fn error_json(error: &anyhow::Error) -> String {
    let causes: Vec<String> = error.chain().skip(1).map(ToString::to_string).collect();
    serde_json::json!({"error": error.to_string(), "causes": causes}).to_string()
}

impl Cli {
    /// Whether the command was asked for JSON: then its errors are JSON too.
    pub fn wants_json(&self) -> bool {
        match &self.command {
            Subcommand::Plan { json, .. }
            | Subcommand::Check { json }
            | Subcommand::Inbox { json, .. }
            | Subcommand::Form { json, .. }
            | Subcommand::Advice { json, .. }
            | Subcommand::Worklist { json, .. }
            | Subcommand::Outbox { json, .. }
            | Subcommand::Show {
                what: ShowWhat::Case { json, .. },
            } => *json,
            _ => false,
        }
    }

    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut settings = Settings::load(self.config.as_deref())?;
        if let Some(url) = &self.database {
            settings.database.url = crate::settings::DatabaseUrl::new(url.clone());
        }
        if let Some(dir) = &self.rules {
            settings.rules.dir = dir.clone();
        }
        if let Some(dir) = &self.templates {
            settings.templates.dir = dir.clone();
        }
        Ok(settings)
    }
}

pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<ExitCode> {
    match cli.command {
        Subcommand::Run => {
            let shutdown = daemon::on_shutdown_signals()?;
            let app = startup::build(settings, true).await?;
            daemon::run(app, shutdown).await?;
        }
        Subcommand::Tick { now } => {
            let now = match now {
                Some(t) => clock::parse_time(&t)
                    .map_err(anyhow::Error::msg)
                    .context("--now")?,
                None => clock::now(),
            };
            let app = startup::build(settings, true).await?;
            let outcome = app.engine.run_pass(now).await?;
            outln!("pass at {}: {outcome}", now.to_rfc3339())?;
        }
        Subcommand::Plan { now, json } => {
            let now = match now {
                Some(t) => clock::parse_time(&t)
                    .map_err(anyhow::Error::msg)
                    .context("--now")?,
                None => clock::now(),
            };
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
            let Some(form) = rules.advice.form_for(&workflow) else {
                let known: Vec<&str> = rules
                    .definitions
                    .iter()
                    .filter_map(|d| d.workflow.as_deref())
                    .collect();
                bail!(
                    "no housing options workflow {workflow:?} has a form (workflows: {})",
                    known.join(", ")
                );
            };
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
            let now = match now {
                Some(t) => clock::parse_time(&t)
                    .map_err(anyhow::Error::msg)
                    .context("--now")?,
                None => clock::now(),
            };
            let rules = std::sync::Arc::new(
                startup::load_rules(&settings)
                    .map_err(|p| anyhow::anyhow!("the rule set has problems:\n{p}"))?,
            );
            let db = startup::connect_database(&settings).await?;
            let Some(case) = crate::db::rows::case_by_ref(&db, &case_ref).await? else {
                bail!("no case {case_ref:?} in {}", settings.database.url);
            };
            if case.kind != "housing_options" {
                bail!(
                    "case {case_ref} is a {} case; advice is chosen for housing options cases",
                    case.kind
                );
            }
            let answers: Option<(sqlx::types::Json<serde_json::Value>,)> =
                crate::db::sql("SELECT answers FROM enquiries WHERE case_id = $1")
                    .bind(case.id)
                    .fetch_optional(&db)
                    .await?;
            let Some((answers,)) = answers else {
                bail!("case {case_ref} has no enquiry answers yet; send submit_enquiry first");
            };
            let answers = answers.0.as_object().cloned().unwrap_or_default();
            let choices =
                crate::engine::housing_options::choose(&rules, &case, &answers, now).await;
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
        Subcommand::Worklist { user, role, json } => {
            let db = startup::connect_database(&settings).await?;
            let rows = report::worklist(&db, user.as_deref(), role.as_deref()).await?;
            if json {
                outln!("{}", terminal_json(&serde_json::to_string_pretty(&rows)?))?;
            } else {
                out!("{}", report::worklist_text(&rows))?;
            }
        }
        Subcommand::Outbox {
            action: Some(OutboxAction::Retry { id, now }),
            ..
        } => {
            let now = match now {
                Some(t) => clock::parse_time(&t)
                    .map_err(anyhow::Error::msg)
                    .context("--now")?,
                None => clock::now(),
            };
            let db = startup::connect_database(&settings).await?;
            report::retry_notification(&db, id, now).await?;
            outln!(
                "notification {id} requeued for {}; the next pass from then will send it",
                now.to_rfc3339()
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
        Subcommand::Demo { dir } => demo::run(&settings, &dir).await?,
    }
    Ok(ExitCode::SUCCESS)
}
