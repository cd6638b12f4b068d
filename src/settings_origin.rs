//! `casewarden config`: every setting in force, and where it came from: the built-in default,
//! the configuration file, a `CASEWARDEN__...` environment variable, or a command-line flag.
//! Secrets never print: a URL shows any password and the values of its query as `***` (a
//! secret itself is never a setting; settings name the file or variable that holds it).

use std::fmt::Write as _;
use std::path::PathBuf;

use config::Config;
use serde::Serialize;
use serde_json::Value;

use crate::settings::Settings;
use crate::text::{terminal, terminal_json};

/// One setting: its dotted key (`mail.smtp.host`, `webhooks[0].url`), its value and its source.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Setting {
    pub key: String,
    pub value: Value,
    /// `default`, `file PATH`, `environment CASEWARDEN__...` or `flag --NAME`.
    pub source: String,
}

/// Where settings came from besides the defaults: the file read (its path and what it sets), the
/// environment (what it sets), and the keys the command line overrode, with their flags.
pub struct Sources<'a> {
    pub file: Option<(PathBuf, Config)>,
    pub env: Config,
    pub flags: &'a [(&'a str, &'a str)],
}

/// The settings in force, in the order of the configuration's sections, each with its source.
pub fn in_force(settings: &Settings, sources: &Sources) -> anyhow::Result<Vec<Setting>> {
    let mut leaves = Vec::new();
    leaves_of(String::new(), serde_json::to_value(settings)?, &mut leaves);
    Ok(leaves
        .into_iter()
        .map(|(key, value)| {
            let source = sources.of(&key);
            Setting {
                value: shown(value),
                key,
                source,
            }
        })
        .collect())
}

/// Every leaf of a settings tree: tables are walked, lists of tables are walked by index, any
/// other list is one value.
fn leaves_of(key: String, value: Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (name, v) in map {
                let key = if key.is_empty() {
                    name
                } else {
                    format!("{key}.{name}")
                };
                leaves_of(key, v, out);
            }
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            for (i, v) in items.into_iter().enumerate() {
                leaves_of(format!("{key}[{i}]"), v, out);
            }
        }
        other => out.push((key, other)),
    }
}

impl Sources<'_> {
    /// The last layer that sets `key`: a flag, then the environment, then the file.
    fn of(&self, key: &str) -> String {
        let sets = |layer: &Config| layer.get::<config::Value>(key).is_ok();
        if let Some((_, flag)) = self.flags.iter().find(|(k, _)| *k == key) {
            format!("flag {flag}")
        } else if sets(&self.env) {
            let name = key.to_ascii_uppercase().replace('.', "__");
            format!("environment CASEWARDEN__{name}")
        } else if let Some((path, file)) = &self.file
            && sets(file)
        {
            format!("file {}", path.display())
        } else {
            "default".to_string()
        }
    }
}

/// A value fit to print: URLs lose their passwords and the values of their queries.
fn shown(value: Value) -> Value {
    match value {
        Value::String(s) if s.contains("://") && !s.starts_with("sqlite:") => {
            Value::String(crate::webhooks::settings::shown_url(&s))
        }
        other => other,
    }
}

/// One line per setting: `key = value    # source`, values as TOML would write them.
pub fn to_text(settings: &[Setting]) -> String {
    let width = settings.iter().map(|s| s.key.len()).max().unwrap_or(0);
    let mut out = String::new();
    for s in settings {
        let value = match &s.value {
            Value::Null => "(unset)".to_string(),
            v => terminal_json(&v.to_string()).into_owned(),
        };
        let key = terminal(&s.key);
        let _ = writeln!(out, "{key:width$} = {value}  # {}", terminal(&s.source));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_setting_names_its_source_and_no_password_prints() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("casewarden.toml");
        std::fs::write(
            &file,
            "[database]\nurl = \"postgres://cw:hunter2@db.example/cw?password=hunter3\"\n\
             [daemon]\nschedule = \"0 * * * * *\"\n\
             [[webhooks]]\nname = \"crm\"\nurl = \"https://crm.example/hook?token=s3cret\"\nkinds = [\"*\"]\nsecret_env = \"HOOK_SECRET\"\n",
        )
        .unwrap();
        let settings = Settings::load(Some(&file)).unwrap();
        let (file_layer, env) = Settings::sources(Some(&file)).unwrap();
        let sources = Sources {
            file: file_layer,
            env,
            flags: &[("rules.dir", "--rules")],
        };
        let shown = in_force(&settings, &sources).unwrap();
        let find = |key: &str| shown.iter().find(|s| s.key == key).unwrap().clone();
        let origin = format!("file {}", file.display());
        assert_eq!(find("daemon.schedule").source, origin);
        assert_eq!(find("daemon.watch_rules").source, "default");
        assert_eq!(find("rules.dir").source, "flag --rules");
        assert_eq!(find("webhooks[0].name").source, origin);
        assert_eq!(find("webhooks[0].kinds").value, serde_json::json!(["*"]));
        let text = to_text(&shown);
        for secret in ["hunter2", "hunter3", "s3cret"] {
            assert!(!text.contains(secret), "{secret} printed:\n{text}");
        }
        assert!(
            text.contains("postgres://cw:***@db.example/cw?password=***"),
            "{text}"
        );
    }
}
