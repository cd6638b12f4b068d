//! The command line: what each subcommand takes and what it does with the library.

mod clients;
mod manuals;
mod privacy;
mod run;
mod webhooks;

use std::path::PathBuf;

use clap::Parser;

use crate::settings::Settings;
pub use run::run;

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
    /// Show times in UTC instead of London time (GMT or BST) in text output. JSON output is
    /// always RFC 3339 UTC.
    #[arg(long, global = true)]
    pub utc: bool,
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
    /// Statutory returns from the records casewarden holds.
    Report {
        #[command(subcommand)]
        what: ReportWhat,
    },
    /// Open tasks for a user or a role (the "cases and tasks" list), and the cases on the same
    /// list with no task to work on (waiting for `advance_case` or a manual task's activation),
    /// as the worklist views give them to CRMs.
    Worklist {
        #[arg(long, value_name = "USER", conflicts_with = "role")]
        user: Option<String>,
        #[arg(long, value_name = "ROLE")]
        role: Option<String>,
        /// Count working days left from this time's London date, as `tick --now` simulates it
        /// (RFC 3339 instant or a date). Default: now.
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
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
    /// API clients: the systems that may call the integration API, each with a bearer token.
    Clients {
        #[command(subcommand)]
        action: ClientsAction,
    },
    /// Webhook subscriptions: where each stands in the event log, how many events wait and how
    /// old the oldest is, the batch in flight, the last success and the last error.
    Webhooks {
        #[command(subcommand)]
        action: Option<WebhooksAction>,
        #[arg(long)]
        json: bool,
    },
    /// What an operator asks first: version, database and schema, whether a daemon is running
    /// and how its last pass went, the backlog, the rule set, and who holds the writer lock.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The settings in force and where each came from (default, file, environment, flag);
    /// passwords in URLs are shown as ***.
    Config {
        #[arg(long)]
        json: bool,
    },
    /// Erase a person's data (UK GDPR right to erasure): `erase contact REF --reason TEXT`.
    Erase {
        #[command(subcommand)]
        what: privacy::EraseWhat,
    },
    /// Write everything held about a person (UK GDPR subject access): `export contact REF --to
    /// DIR`.
    Export {
        #[command(subcommand)]
        what: privacy::ExportWhat,
    },
    /// Write a consistent copy of a SQLite database to FILE while the daemon runs (never
    /// overwriting FILE). For PostgreSQL, use pg_dump: see docs/operations.md.
    Backup {
        /// Where to write the copy; it must not exist.
        file: PathBuf,
    },
    /// Build a demonstration database, run the real engine over simulated weeks, and tell the
    /// story.
    Demo {
        /// Directory for the demo database (created; any old demo database in it is replaced).
        #[arg(long, default_value = "casewarden-demo", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print the completion script for SHELL.
    ///
    /// For bash: `source <(casewarden completions bash)`. The Debian package installs the
    /// scripts for bash, zsh and fish.
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Write the man pages of casewarden and every subcommand into DIR.
    ///
    /// casewarden.1, and a page for each subcommand at every depth (casewarden-run.1,
    /// casewarden-rules-test.1, ...). DIR is for example /usr/local/share/man/man1; the Debian
    /// package installs them.
    Manpages {
        #[arg(value_name = "DIR")]
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
pub enum ClientsAction {
    /// Issue a client a token, printed once: only its hash is kept. Record it in the CRM's
    /// secret store now.
    Add {
        /// The client's name, a reference such as `dynamics-crm`: the actor of its commands.
        name: String,
        /// What it may do, comma-separated: commands:write, cases:read, events:read, admin
        /// (admin includes the rest).
        #[arg(long, value_name = "SCOPES")]
        scopes: String,
    },
    /// Every client, live and revoked, with its scopes; never a token.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a client's token: its next request is refused.
    Revoke { name: String },
}

#[derive(Debug, clap::Subcommand)]
pub enum WebhooksAction {
    /// Make the next delivery of a subscription start at an event: to send events again after a
    /// receiver lost them, or (forwards) to skip a batch it can never take. Any batch in flight
    /// is abandoned; a `webhook_replayed` event records the move.
    Replay {
        /// The subscription's name, as in casewarden.toml.
        name: String,
        /// The first event id to send.
        #[arg(long, value_name = "EVENT_ID")]
        from: i64,
    },
    /// Print a new signing secret (`whsec_…`) for a subscription, to store where its
    /// secret_file or secret_env points and to give to the receiver.
    Secret,
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
pub enum ReportWhat {
    /// The homelessness duty records of a quarter as CSV on standard output: one row per
    /// housing options case with a duty open at any time in the quarter, with the fields of the
    /// case-level return (H-CLIC) that casewarden holds (docs/housing-options.md lists them).
    Duties {
        /// The calendar quarter: 2026Q2 is April to June 2026.
        #[arg(long, value_name = "YYYYQN", value_parser = clap::value_parser!(crate::report::Quarter))]
        quarter: crate::report::Quarter,
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
            | Subcommand::Webhooks { json, .. }
            | Subcommand::Status { json }
            | Subcommand::Erase {
                what: privacy::EraseWhat::Contact { json, .. },
            }
            | Subcommand::Config { json }
            | Subcommand::Clients {
                action: ClientsAction::List { json },
            }
            | Subcommand::Show {
                what: ShowWhat::Case { json, .. },
            } => *json,
            _ => false,
        }
    }

    /// The settings the command line overrides, with their flags (`casewarden config`).
    pub fn flags(&self) -> Vec<(&'static str, &'static str)> {
        [
            ("database.url", "--database", self.database.is_some()),
            ("rules.dir", "--rules", self.rules.is_some()),
            ("templates.dir", "--templates", self.templates.is_some()),
        ]
        .into_iter()
        .filter(|(_, _, given)| *given)
        .map(|(key, flag, _)| (key, flag))
        .collect()
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
