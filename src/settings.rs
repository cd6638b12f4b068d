//! Configuration: built-in defaults, then an optional `casewarden.toml` (or `--config FILE`),
//! then `CASEWARDEN__SECTION__KEY` environment variables. Each component owns its section.

use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Serialize};

use crate::engine::EngineSettings;
pub use crate::range::in_range;
use crate::script::Limits;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub rules: RulesSettings,
    pub templates: TemplatesSettings,
    pub engine: EngineSettings,
    pub mail: crate::mail::MailSettings,
    pub packs: crate::engine::pack_files::PackSettings,
    pub daemon: DaemonSettings,
    pub api: crate::api::ApiSettings,
    /// `[metrics]`: where `casewarden run` serves Prometheus metrics, if anywhere.
    pub metrics: crate::metrics::MetricsSettings,
    pub log: LogSettings,
    /// `[[webhooks]]`: the subscriptions events are pushed to.
    pub webhooks: Vec<crate::webhooks::WebhookSettings>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://casewarden.db` (created on first start) or `postgres://user@host/db`.
    pub url: DatabaseUrl,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: DatabaseUrl::new("sqlite://casewarden.db"),
        }
    }
}

/// A database URL. It may carry a password, so it never prints one: `Debug` and `Display` show
/// it with the password replaced by `***`, and only [`DatabaseUrl::expose`] gives the URL itself,
/// for connecting.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }

    /// The URL with its password, to connect with. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::db::redact(&self.0))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesSettings {
    pub dir: PathBuf,
    #[serde(skip_serializing)]
    pub limits: Limits,
}

impl Default for RulesSettings {
    fn default() -> Self {
        RulesSettings {
            dir: PathBuf::from("rules"),
            limits: Limits::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplatesSettings {
    pub dir: PathBuf,
}

impl Default for TemplatesSettings {
    fn default() -> Self {
        TemplatesSettings {
            dir: PathBuf::from("templates"),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonSettings {
    /// When passes run: a 6-field cron expression, seconds first.
    pub schedule: String,
    /// Reload rules and templates when their files change (as well as on SIGHUP).
    pub watch_rules: bool,
    /// How often to look for changed files; a change is loaded once stable for one interval.
    pub watch_interval_ms: u64,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        DaemonSettings {
            schedule: "*/30 * * * * *".to_string(),
            watch_rules: true,
            watch_interval_ms: 2000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
    /// Straight to the systemd journal, falling back to pretty where there is none.
    Journald,
}

impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let choices = [
            ("pretty", Self::Pretty),
            ("json", Self::Json),
            ("journald", Self::Journald),
        ];
        crate::range::one_of(d, &choices)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter such as `info` or `casewarden=debug`; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Pretty,
            level: "info".to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
    // The cause is in the message and not also a source, so a printed chain names it once.
    #[error("invalid configuration: {0}")]
    Invalid(config::ConfigError),
    #[error("invalid configuration: {0}")]
    Limit(String),
}

impl From<config::ConfigError> for SettingsError {
    fn from(e: config::ConfigError) -> Self {
        SettingsError::Invalid(e)
    }
}

/// A configuration file as a source of the layers.
type TomlFile = File<config::FileSourceFile, FileFormat>;

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_FILE: &str = "casewarden.toml";

impl Settings {
    /// Loads settings from the layers. `file` must exist when given; otherwise
    /// `./casewarden.toml` is read if present.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        let settings: Settings = Settings::layers(file)?.try_deserialize()?;
        settings.check().map_err(SettingsError::Limit)?;
        Ok(settings)
    }

    /// The layers merged, before they are read as settings.
    fn layers(file: Option<&Path>) -> Result<Config, SettingsError> {
        let defaults = Config::try_from(&Settings::default())?;
        let mut builder = Config::builder().add_source(defaults);
        if let Some((_, source)) = Settings::file_source(file)? {
            builder = builder.add_source(source);
        }
        Ok(builder.add_source(Settings::env_source()).build()?)
    }

    /// The configuration file that is read, if any: `file`, which must exist, or else
    /// `./casewarden.toml` if it exists.
    fn file_source(file: Option<&Path>) -> Result<Option<(PathBuf, TomlFile)>, SettingsError> {
        match file {
            Some(path) if !path.exists() => Err(SettingsError::Missing(path.to_path_buf())),
            Some(path) => Ok(Some((
                path.to_path_buf(),
                File::from(path).format(FileFormat::Toml),
            ))),
            None if Path::new(DEFAULT_FILE).exists() => Ok(Some((
                PathBuf::from(DEFAULT_FILE),
                File::new(DEFAULT_FILE, FileFormat::Toml),
            ))),
            None => Ok(None),
        }
    }

    fn env_source() -> Environment {
        Environment::with_prefix("CASEWARDEN")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
    }

    /// The configuration file and the environment, each read alone, so `casewarden config` can
    /// tell which keys each one sets: the file's path and keys, if a file is read, and the
    /// environment's keys.
    pub fn sources(
        file: Option<&Path>,
    ) -> Result<(Option<(PathBuf, Config)>, Config), SettingsError> {
        let file = match Settings::file_source(file)? {
            Some((path, source)) => Some((path, Config::builder().add_source(source).build()?)),
            None => None,
        };
        let env = Config::builder()
            .add_source(Settings::env_source())
            .build()?;
        Ok((file, env))
    }

    /// Checks every numeric setting against its documented range, and the schedule: what
    /// `load` does at start and at reload, so a slip is refused with its name, never a panic.
    pub fn check(&self) -> Result<(), String> {
        self.rules.limits.check()?;
        self.engine.check()?;
        self.mail.check()?;
        self.api.check()?;
        self.metrics.check(self.api.listening()?)?;
        crate::webhooks::check_all(&self.webhooks)?;
        self.daemon.check(crate::clock::now())
    }
}

impl DaemonSettings {
    /// The schedule read as the scheduler reads it: seconds first, and a day of the month and a
    /// day of the week both given must both match (`0 0 9 13 * FRI` is Friday the 13th only).
    pub fn cron(&self) -> Result<croner::Cron, croner::errors::CronError> {
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&self.schedule)
    }

    /// The schedule must be a 6-field cron expression that fires within a year of `now`.
    pub fn check(&self, now: chrono::DateTime<chrono::Utc>) -> Result<(), String> {
        in_range(
            "daemon.watch_interval_ms",
            i64::try_from(self.watch_interval_ms).unwrap_or(i64::MAX),
            100,
            3_600_000,
        )?;
        let quoted = crate::text::quote(&self.schedule);
        let cron = self.cron().map_err(|e| {
            format!(
                "daemon.schedule {quoted} is not a 6-field cron expression (seconds first, e.g. \"*/30 * * * * *\"): {e}"
            )
        })?;
        let within = now + chrono::Duration::days(366);
        match cron.find_next_occurrence(&now, false) {
            Ok(next) if next <= within => Ok(()),
            Ok(next) => Err(format!(
                "daemon.schedule {quoted} next fires at {}, more than a year away: passes would stop; use a schedule such as \"*/30 * * * * *\"",
                next.to_rfc3339()
            )),
            Err(_) => Err(format!(
                "daemon.schedule {quoted} never fires: passes would stop; use a schedule such as \"*/30 * * * * *\""
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_that_never_fires_or_is_not_cron_is_refused_with_its_name() {
        let now = crate::clock::parse_time("2026-11-28T10:00:00Z").unwrap();
        let with = |schedule: &str| DaemonSettings {
            schedule: schedule.to_string(),
            ..DaemonSettings::default()
        };
        assert!(with("*/30 * * * * *").check(now).is_ok());
        let leap = with("0 0 9 29 2 *").check(now).unwrap_err();
        assert!(
            leap.contains("next fires at 2028-02-29T09:00:00+00:00, more than a year away"),
            "{leap}"
        );
        let never = with("0 0 0 31 2 *").check(now).unwrap_err();
        assert!(
            never.contains("daemon.schedule \"0 0 0 31 2 *\" never fires"),
            "{never}"
        );
        let five = with("*/5 * * * *").check(now).unwrap_err();
        assert_eq!(
            five,
            "daemon.schedule \"*/5 * * * *\" is not a 6-field cron expression (seconds first, \
             e.g. \"*/30 * * * * *\"): Invalid pattern: Pattern must have 6 or 7 fields when \
             seconds are required and years are optional."
        );
        // A day of the month and a day of the week must both match, as the scheduler reads
        // them: 31 February is never a Monday, though Mondays come every week.
        let and = with("0 0 9 31 2 MON").check(now).unwrap_err();
        assert!(
            and.contains("daemon.schedule \"0 0 9 31 2 MON\" never fires"),
            "{and}"
        );
        let friday_13th = with("0 0 9 13 * FRI").cron().unwrap();
        let next = friday_13th.find_next_occurrence(&now, false).unwrap();
        assert_eq!(next.to_rfc3339(), "2027-08-13T09:00:00+00:00");
    }

    #[test]
    fn a_setting_of_the_wrong_word_is_named_once_with_its_choices() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        let refused = |toml: &str| {
            std::fs::write(&file, toml).unwrap();
            let err = anyhow::Error::from(Settings::load(Some(&file)).unwrap_err());
            format!("{err:#}")
        };
        assert_eq!(
            refused("[mail]\ntransport = \"pigeon\"\n"),
            "invalid configuration: unknown value \"pigeon\", expected `file` or `smtp` \
             for key `mail.transport`"
        );
        assert_eq!(
            refused("[mail.smtp]\nsecurity = \"ssl\"\n"),
            "invalid configuration: unknown value \"ssl\", expected `starttls`, `tls` or \
             `plaintext` for key `mail.smtp.security`"
        );
        assert_eq!(
            refused("[log]\nformat = \"xml\"\n"),
            "invalid configuration: unknown value \"xml\", expected `pretty`, `json` or \
             `journald` for key `log.format`"
        );
        // Any other slip of the file is named once too, not again as its own cause.
        let slip = refused("[engine]\nbatch_size = \"lots\"\n");
        assert!(
            slip.starts_with(
                "invalid configuration: invalid type: string \"lots\", expected an integer \
                 for key `engine.batch_size` in "
            ) && slip.ends_with("c.toml")
                && slip.matches("lots").count() == 1,
            "{slip}"
        );
        std::fs::write(
            &file,
            "[mail]\ntransport = \"smtp\"\n[log]\nformat = \"journald\"\n",
        )
        .unwrap();
        let s = Settings::load(Some(&file)).unwrap();
        assert_eq!(s.mail.transport, crate::mail::settings::TransportKind::Smtp);
        assert_eq!(s.log.format, LogFormat::Journald);
    }

    #[test]
    fn with_no_config_at_all_it_runs_on_sqlite_in_the_working_directory() {
        let s = Settings::default();
        assert_eq!(s.database.url.expose(), "sqlite://casewarden.db");
        assert_eq!(s.rules.dir, PathBuf::from("rules"));
        assert_eq!(s.templates.dir, PathBuf::from("templates"));
        assert_eq!(s.daemon.schedule.split_whitespace().count(), 6);
    }

    #[test]
    fn a_database_password_never_prints() {
        let mut s = Settings::default();
        s.database.url = DatabaseUrl::new("postgres://app:s3cret@db/cases");
        for shown in [format!("{s:?}"), s.database.url.to_string()] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("postgres://app:***@db/cases"), "{shown}");
        }
        assert_eq!(s.database.url.expose(), "postgres://app:s3cret@db/cases");
    }

    #[test]
    fn a_config_file_overrides_the_defaults_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[engine]\nfallback_role = \"triage\"\n[log]\nformat = \"json\"\n",
        )
        .unwrap();
        let s = Settings::load(Some(&file)).unwrap();
        assert_eq!(s.engine.fallback_role, "triage");
        assert_eq!(s.log.format, LogFormat::Json);
        assert_eq!(s.engine.batch_size, 200);

        std::fs::write(&file, "[engine]\nfallback_rol = \"triage\"\n").unwrap();
        let err = Settings::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("fallback_rol"), "{err}");
        assert!(Settings::load(Some(&dir.path().join("missing.toml"))).is_err());

        std::fs::write(&file, "[engine]\nbatch_size = 9223372036854775807\n").unwrap();
        let err = Settings::load(Some(&file)).unwrap_err().to_string();
        assert!(
            err.contains("engine.batch_size = 9223372036854775807 is out of range: use 1 to 10000"),
            "{err}"
        );

        std::fs::write(&file, "[rules.limits]\ndeadline_ms = 0\n").unwrap();
        let err = Settings::load(Some(&file)).unwrap_err().to_string();
        assert!(
            err.contains("rules.limits.deadline_ms must be greater than 0"),
            "{err}"
        );
    }

    #[test]
    fn webhooks_tables_are_read_in_order_and_a_slip_names_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        let hooks = "[[webhooks]]\nname = \"crm\"\nurl = \"https://crm.example.org/hook\"\n\
                     kinds = [\"case_created\", \"case_closed\"]\nsecret_env = \"CRM_SECRET\"\n\
                     [[webhooks]]\nname = \"audit\"\nurl = \"http://127.0.0.1:9000/\"\n\
                     allow_plaintext = true\nsecret_file = \"/run/credentials/audit\"\nbatch_size = 500\n";
        std::fs::write(&file, hooks).unwrap();
        let s = Settings::load(Some(&file)).unwrap();
        assert_eq!(s.webhooks.len(), 2);
        assert_eq!(s.webhooks[0].name, "crm");
        assert_eq!(s.webhooks[0].kinds, ["case_created", "case_closed"]);
        assert_eq!(s.webhooks[0].batch_size, 100);
        assert_eq!(s.webhooks[1].batch_size, 500);
        assert_eq!(s.webhooks[1].kinds, ["*"]);

        std::fs::write(
            &file,
            hooks.replace("batch_size = 500", "batch_size = 5000"),
        )
        .unwrap();
        let err = Settings::load(Some(&file)).unwrap_err().to_string();
        assert!(
            err.contains("webhooks[1].batch_size = 5000 is out of range: use 1 to 1000"),
            "{err}"
        );
        std::fs::write(&file, hooks.replace("allow_plaintext = true\n", "")).unwrap();
        let err = Settings::load(Some(&file)).unwrap_err().to_string();
        assert!(
            err.contains("webhooks[1].url \"http://127.0.0.1:9000/\" is plain HTTP"),
            "{err}"
        );
        std::fs::write(&file, hooks.replace("kinds = ", "kind = ")).unwrap();
        let err = Settings::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("kind"), "{err}");
    }
}
