//! The documented install (README.md "Install", docs/operations.md), as far as a test machine
//! allows: no root, no systemd. The layout is built under a temporary directory standing for `/`:
//! the shipped rules and templates in `<root>/etc/casewarden/`, `systemd/casewarden.toml` copied
//! there with every absolute path it names (`/etc/casewarden`, `/var/lib/casewarden`,
//! `/run/credentials/casewarden.service`) moved under `<root>`, and the state directory that
//! systemd makes for the unit (`StateDirectory=`) as the working directory (`WorkingDirectory=`).
//! The daemon is started with the unit's `ExecStart=` arguments, on an ephemeral API port.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::common;

/// The absolute paths of the shipped configuration and unit, moved under the test's root.
const MOVED: [&str; 3] = [
    "/etc/casewarden",
    "/var/lib/casewarden",
    "/run/credentials/casewarden.service",
];

struct Layout {
    _root: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    state: PathBuf,
}

impl Layout {
    /// A path the unit or the configuration names, under the test's root.
    fn moved(&self, path: &str) -> String {
        let mut path = path.to_string();
        for from in MOVED {
            path = path.replace(from, &format!("{}{from}", self.root.display()));
        }
        path
    }

    fn casewarden(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_casewarden"));
        c.current_dir(&self.state).env_remove("RUST_LOG").args(args);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CASEWARDEN__")) {
            c.env_remove(k);
        }
        // The only change to the shipped settings: tests running side by side each need a port.
        c.env("CASEWARDEN__API__LISTEN", "127.0.0.1:0");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.casewarden(args).output().unwrap()
    }
}

/// A line of the shipped unit, such as `WorkingDirectory=`, without its key.
fn unit(key: &str) -> String {
    let unit = std::fs::read_to_string(common::repo_path("systemd/casewarden.service")).unwrap();
    unit.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("casewarden.service has no {key}"))
        .to_string()
}

/// The README's install under a temporary root, with `config` as /etc/casewarden/casewarden.toml.
fn install(config: &str) -> Layout {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let mut layout = Layout {
        _root: dir,
        config: PathBuf::new(),
        state: PathBuf::new(),
        root,
    };
    let etc = PathBuf::from(layout.moved("/etc/casewarden"));
    common::copy_tree(&common::repo_path("rules"), &etc.join("rules"));
    common::copy_tree(&common::repo_path("templates"), &etc.join("templates"));
    layout.config = etc.join("casewarden.toml");
    std::fs::write(&layout.config, layout.moved(config)).unwrap();
    layout.state = PathBuf::from(layout.moved(&unit("WorkingDirectory=")));
    std::fs::create_dir_all(&layout.state).unwrap();
    layout
}

fn shipped() -> String {
    std::fs::read_to_string(common::repo_path("systemd/casewarden.toml")).unwrap()
}

/// The shipped configuration with its SMTP block enabled as its comments say: every setting from
/// `# transport = "smtp"` down to `# timeout_seconds`, with the `[mail.smtp]` line, uncommented.
fn with_smtp(config: &str) -> String {
    let mut inside = false;
    let mut out = String::new();
    for line in config.lines() {
        inside |= line.starts_with("# transport = \"smtp\"");
        let setting = line.strip_prefix("# ").filter(|rest| {
            inside
                && (rest.starts_with("[mail.smtp]")
                    || rest.split_once(" = ").is_some_and(|(key, _)| {
                        key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    }))
        });
        out.push_str(setting.unwrap_or(line));
        out.push('\n');
        inside &= !line.starts_with("# timeout_seconds");
    }
    assert!(
        out.contains("\ntransport = \"smtp\"\n[mail.smtp]\nhost = ")
            && out.contains(
                "\npassword_file = \"/run/credentials/casewarden.service/smtp-password\"\n"
            )
            && out.contains("\ntimeout_seconds = 30\n"),
        "the SMTP block of systemd/casewarden.toml is not where the test looks for it"
    );
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_shipped_configuration_moves_only_the_paths_the_test_moves() {
    // Were the example to name another absolute path, the layout below would not stand for it.
    let config = shipped();
    let settings = config.lines().filter(|l| !l.trim_start().starts_with('#'));
    for line in settings.chain(with_smtp(&config).lines().filter(|l| l.contains("smtp"))) {
        for (at, _) in line.match_indices('/') {
            let absolute = line[..at].ends_with('"') || line[..at].ends_with("sqlite://");
            assert!(
                !absolute || MOVED.iter().any(|m| line[at..].starts_with(m)),
                "systemd/casewarden.toml names {line:?}, which the install test does not move"
            );
        }
    }
    let exec = unit("ExecStart=");
    assert_eq!(
        exec,
        "/usr/bin/casewarden --config /etc/casewarden/casewarden.toml run"
    );
    assert_eq!(unit("WorkingDirectory="), "/var/lib/casewarden");
}

#[test]
fn the_shipped_configuration_starts_the_daemon_under_the_documented_layout() {
    let layout = install(&shipped());
    let config = layout.config.to_str().unwrap();
    let out = layout.run(&["--config", config, "check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ok: "),
        "{}",
        text(&out.stdout)
    );

    // A case nobody can be allocated: the fallback role's member is told, by mail.
    let commands = [
        r#"{"type":"upsert_role","ref":"home_ownership","name":"Home ownership team"}"#,
        r#"{"type":"upsert_role","ref":"allocation_queue","name":"Allocation queue"}"#,
        r#"{"type":"upsert_user","ref":"mgr1","name":"Morgan Hale","email":"morgan.hale@example.org","roles":["allocation_queue"]}"#,
        r#"{"type":"upsert_contact","ref":"T-10442","name":"Priya Shah"}"#,
        r#"{"type":"create_case","case_ref":"RTB-2026-0001","kind":"home_buy","scheme":"right_to_buy","country":"england","applicant":"T-10442","property":{"ref":"PR-88120","address":"14 Alder Road, Leeds LS6 2AB","tenure":"freehold"},"received_at":"2026-03-02"}"#,
    ];
    let file = layout.root.join("commands.jsonl");
    std::fs::write(&file, commands.join("\n")).unwrap();
    let out = layout.run(&["--config", config, "submit", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let exec = unit("ExecStart=");
    let args: Vec<String> = exec
        .split_whitespace()
        .skip(1)
        .map(|a| layout.moved(a))
        .collect();
    let mut daemon = layout
        .casewarden(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Out of the box, mail is written as .eml files under the state directory.
    let mail = layout.state.join("mail").join("outbox-1.eml");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !mail.exists() && daemon.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let running = daemon.try_wait().unwrap().is_none();
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let exit = daemon.wait_with_output().unwrap();
    assert!(running, "the daemon stopped: {}", text(&exit.stderr));
    assert_eq!(exit.status.code(), Some(0), "{}", text(&exit.stderr));
    let message = std::fs::read_to_string(&mail)
        .unwrap_or_else(|e| panic!("no mail at {}: {e}", mail.display()));
    assert!(message.contains("morgan.hale@example.org"), "{message}");
    assert!(layout.state.join("casewarden.db").exists());
}

#[test]
fn the_smtp_block_starts_with_its_credential_and_stops_without_it_naming_the_file() {
    let layout = install(&with_smtp(&shipped()));
    let config = layout.config.to_str().unwrap();
    let password = layout.moved("/run/credentials/casewarden.service/smtp-password");
    // `check` reads no secrets: it passes either way.
    assert!(layout.run(&["--config", config, "check"]).status.success());

    // The SMTP settings without the unit's LoadCredential= line: no credential.
    let out = layout.run(&["--config", config, "tick", "--now", "2026-03-02"]);
    assert_eq!(out.status.code(), Some(1));
    // The last line; a line before it may say there is no journal to log to.
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.lines().last(),
        Some(format!(
            "error: cannot read mail.smtp.password_file {password}: No such file or directory (os error 2)"
        ))
        .as_deref(),
        "{stderr}"
    );

    // Both halves: systemd has put the credential in place.
    std::fs::create_dir_all(Path::new(&password).parent().unwrap()).unwrap();
    std::fs::write(&password, "s3cret\n").unwrap();
    let out = layout.run(&["--config", config, "tick", "--now", "2026-03-02"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("s3cret") && !text(&out.stdout).contains("s3cret"));
}

/// The Debian package's assets (Cargo.toml `[package.metadata.deb]`) as (source, destination).
fn package_assets() -> Vec<(String, String)> {
    let manifest = std::fs::read_to_string(common::repo_path("Cargo.toml")).unwrap();
    let manifest: toml::Value = toml::from_str(&manifest).unwrap();
    let assets = manifest["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .expect("Cargo.toml has no [package.metadata.deb] assets");
    assets
        .iter()
        .map(|a| {
            let a = a.as_array().unwrap();
            (
                a[0].as_str().unwrap().to_string(),
                format!("/{}", a[1].as_str().unwrap()),
            )
        })
        .collect()
}

#[test]
fn the_package_puts_the_binary_and_configuration_where_the_unit_runs_them() {
    let assets = package_assets();
    let destination = |source: &str| {
        assets
            .iter()
            .find(|(s, _)| s == source)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| panic!("the package does not ship {source}"))
    };
    let binary = format!("{}casewarden", destination("target/release/casewarden"));
    let config = destination("systemd/casewarden.toml");
    assert_eq!(
        unit("ExecStart="),
        format!("{binary} --config {config} run")
    );
    // debian/postinst copies these to where the shipped configuration points.
    assert_eq!(destination("rules/**/*"), "/usr/share/casewarden/rules/");
    assert_eq!(
        destination("templates/**/*"),
        "/usr/share/casewarden/templates/"
    );
    let postinst = std::fs::read_to_string(common::repo_path("debian/postinst")).unwrap();
    assert!(postinst.contains(r#"cp -R "/usr/share/casewarden/$dir" "/etc/casewarden/$dir""#));
    let shipped = shipped();
    assert!(shipped.contains("\ndir = \"/etc/casewarden/rules\"\n"));
    assert!(shipped.contains("\ndir = \"/etc/casewarden/templates\"\n"));
}

#[test]
fn an_install_by_hand_points_the_unit_at_the_binary_it_installs() {
    // The package's unit runs /usr/bin/casewarden; by hand the binary goes to /usr/local/bin
    // and the unit is rewritten on the way to /etc/systemd/system.
    let install = "install -m 0755 target/release/casewarden /usr/local/bin/";
    let rewrite =
        "sed 's|^ExecStart=/usr/bin/|ExecStart=/usr/local/bin/|' systemd/casewarden.service";
    for doc in ["README.md", "docs/operations.md"] {
        let text = std::fs::read_to_string(common::repo_path(doc)).unwrap();
        assert!(
            text.contains(install),
            "{doc} does not install the binary in /usr/local/bin"
        );
        assert!(
            text.contains(rewrite),
            "{doc} does not rewrite the unit's ExecStart="
        );
    }
    let exec = unit("ExecStart=");
    let rewritten = exec.replacen("/usr/bin/", "/usr/local/bin/", 1);
    assert!(exec.starts_with("/usr/bin/casewarden "), "{exec}");
    assert!(
        rewritten.starts_with("/usr/local/bin/casewarden "),
        "{rewritten}"
    );
}
