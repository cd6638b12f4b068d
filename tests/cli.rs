//! The command line as operators and rule authors use it: `check` with file:line:col, the
//! zero-config default in a working directory, `tick --now`, `show case`, and the daemon's
//! one-writer lock and graceful shutdown. Runs on SQLite, in temporary directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "common/mod.rs"]
mod common;

#[path = "cli/api.rs"]
mod api;

#[path = "cli/manuals.rs"]
mod manuals;
#[path = "cli/privacy.rs"]
mod privacy;

#[path = "cli/duties.rs"]
mod duties;

use common::copy_tree;

fn repo(rel: &str) -> PathBuf {
    common::repo_path(rel)
}

/// A working directory with the shipped rules and templates, as an operator would set one up.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo("rules"), &dir.path().join("rules"));
    copy_tree(&repo("templates"), &dir.path().join("templates"));
    dir
}

fn casewarden(dir: &Path) -> Command {
    in_workdir(Command::new(env!("CARGO_BIN_EXE_casewarden")), dir)
}

/// Runs `c` in `dir` with none of this process's casewarden settings or log filter.
fn in_workdir(mut c: Command, dir: &Path) -> Command {
    c.current_dir(dir).env_remove("RUST_LOG");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CASEWARDEN__")) {
        c.env_remove(k);
    }
    // Daemons of tests running at once each serve the API on a port of their own.
    c.env("CASEWARDEN__API__LISTEN", "127.0.0.1:0");
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    casewarden(dir).args(args).output().unwrap()
}

/// Submits one command line through the CLI.
fn submit(dir: &Path, line: &str) {
    let file = dir.join("commands.jsonl");
    std::fs::write(&file, line).unwrap();
    assert!(
        run(dir, &["submit", file.to_str().unwrap()])
            .status
            .success()
    );
}

/// Starts `casewarden run` with a pass every second.
fn start_daemon(dir: &Path, env: &[(&str, &str)], stderr: Stdio) -> std::process::Child {
    let mut c = casewarden(dir);
    // An ephemeral API port: daemons of tests running side by side would otherwise all ask for
    // the default one, and all but the first would fail to start.
    c.args(["run"])
        .env("CASEWARDEN__DAEMON__SCHEDULE", "* * * * * *")
        .env("CASEWARDEN__API__LISTEN", "127.0.0.1:0");
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdout(Stdio::null()).stderr(stderr).spawn().unwrap()
}

fn signal(daemon: &std::process::Child, which: &str) {
    assert!(
        Command::new("kill")
            .args([which, &daemon.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// Sends SIGTERM and waits for the daemon to exit.
fn stop_daemon(daemon: &mut std::process::Child) -> std::process::ExitStatus {
    signal(daemon, "-TERM");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(exit) = daemon.try_wait().unwrap() {
            return exit;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_passes_on_the_shipped_rules() {
    let out = run(&repo("."), &["check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ok: "),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn check_reports_each_problem_with_file_line_and_column() {
    let dir = workdir();
    let rules = dir.path().join("rules");
    let def = rules.join("definitions/home_buy/right_to_buy-england.toml");
    let original = std::fs::read_to_string(&def).unwrap();
    // An unknown stage reference and a dependency cycle in the definition...
    let broken = original
        .replacen("next = [\"offer_accepted\", \"dv_determination\"]", "next = [\"offer_accepted\", \"dv_determinaton\"]", 1)
        .replacen("key = \"check_property_address\"\n  name = \"Check the property address against the tenancy record\"",
            "key = \"check_property_address\"\n  name = \"Check the property address against the tenancy record\"\n  depends_on = [\"register_claim\"]", 1);
    std::fs::write(&def, &broken).unwrap();
    // ...and a syntax error in a script.
    std::fs::write(
        rules.join("allocation.rhai"),
        "fn allocate(case_facts, officers) {\n    let x = ;\n}\n",
    )
    .unwrap();

    let out = run(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let line_of = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let file = "rules/definitions/home_buy/right_to_buy-england.toml";
    let next_line = line_of("dv_determinaton");
    let next_col = broken
        .lines()
        .nth(next_line - 1)
        .unwrap()
        .find("\"dv_determinaton\"")
        .unwrap()
        + 1;
    assert!(stderr.contains(&format!("{file}:{next_line}:{next_col}: error: stage \"tenant_reply\" refers to unknown stage \"dv_determinaton\"")), "{stderr}");
    // The cycle is reported at the dependency that closes it: register_claim's first entry.
    let cycle_line = line_of("depends_on = [\"check_property_address\", \"check_signatories\"");
    assert!(
        stderr.contains(&format!(
            "{file}:{cycle_line}:17: error: task dependency cycle"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("task dependency cycle: check_property_address → register_claim → check_property_address"), "{stderr}");
    assert!(
        stderr.contains("rules/allocation.rhai:2:13: error:"),
        "{stderr}"
    );
    assert!(stderr.contains("3 problem(s) found"), "{stderr}");

    let json = run(dir.path(), &["check", "--json"]);
    let problems: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(problems.as_array().unwrap().len(), 3);
    assert!(
        problems
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["line"] == 2 && p["column"] == 13)
    );
}

#[test]
fn with_no_configuration_it_runs_on_sqlite_in_the_working_directory() {
    let dir = workdir();
    let commands = [
        r#"{"type":"upsert_role","ref":"home_ownership","name":"Home ownership"}"#,
        r#"{"type":"upsert_user","ref":"off1","name":"Officer","email":"o@example.org","roles":["home_ownership"]}"#,
        r#"{"type":"upsert_contact","ref":"t1","name":"Tenant"}"#,
        r#"{"type":"create_case","case_ref":"RTB-9","kind":"home_buy","scheme":"right_to_buy","country":"england","applicant":"t1","property":{"ref":"P9","address":"9 Road","tenure":"freehold"},"received_at":"2026-03-02"}"#,
        r#"{"type":"complete_task","case_ref":"RTB-9","task":"nope","by":"off1"}"#,
    ];
    std::fs::write(dir.path().join("commands.jsonl"), commands.join("\n")).unwrap();
    let out = run(dir.path(), &["submit", "commands.jsonl"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).lines().collect::<Vec<_>>(),
        ["1", "2", "3", "4", "5"]
    );
    assert!(dir.path().join("casewarden.db").exists());

    let out = run(dir.path(), &["tick", "--now", "2026-03-02"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .contains("pass at 2026-03-02 09:00 GMT: commands: 4 accepted, 1 rejected"),
        "{}",
        text(&out.stdout)
    );
    // People read London time with its zone; --utc shows UTC (in summer, an hour apart).
    let out = run(dir.path(), &["plan", "--now", "2026-07-01"]);
    assert!(
        text(&out.stdout).contains("Plan for a pass at 2026-07-01 09:00 BST"),
        "{}",
        text(&out.stdout)
    );
    let out = run(dir.path(), &["--utc", "plan", "--now", "2026-07-01"]);
    assert!(
        text(&out.stdout).contains("Plan for a pass at 2026-07-01 08:00 UTC"),
        "{}",
        text(&out.stdout)
    );

    let out = run(dir.path(), &["inbox", "--rejected"]);
    assert!(
        text(&out.stdout).contains("unknown task \"nope\""),
        "{}",
        text(&out.stdout)
    );

    let out = run(dir.path(), &["show", "case", "RTB-9", "--json"]);
    let case: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(case["case"]["owner"], "off1");
    assert_eq!(case["stages"][0]["stage"], "application");
    assert_eq!(case["stages"][0]["tasks"].as_array().unwrap().len(), 5);
    let out = run(dir.path(), &["show", "case", "RTB-9"]);
    assert!(
        text(&out.stdout).contains("check_property_address"),
        "{}",
        text(&out.stdout)
    );

    let out = run(dir.path(), &["show", "case", "RTB-404"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no case \"RTB-404\""));

    let out = run(dir.path(), &["tick", "--now", "next tuesday"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--now"), "{}", text(&out.stderr));
}

#[test]
fn the_daemon_runs_passes_refuses_a_second_writer_and_stops_cleanly_on_sigterm() {
    let dir = workdir();
    submit(
        dir.path(),
        r#"{"type":"upsert_role","ref":"home_ownership","name":"Home ownership"}"#,
    );
    let mut daemon = start_daemon(dir.path(), &[], Stdio::piped());
    // The first pass runs at start: the command is accepted.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = run(dir.path(), &["inbox", "--json"]);
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if rows[0]["status"] == "accepted" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not apply the command"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let second = run(dir.path(), &["tick"]);
    assert_eq!(second.status.code(), Some(1));
    assert!(
        text(&second.stderr).contains("another casewarden process is already running passes on"),
        "{}",
        text(&second.stderr)
    );

    let exit = stop_daemon(&mut daemon);
    assert_eq!(exit.code(), Some(0));
    let mut log = String::new();
    std::io::Read::read_to_string(daemon.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(log.contains("SIGTERM"), "{log}");
    // The lock went with the daemon: a tick may run now.
    assert!(run(dir.path(), &["tick"]).status.success());
}

#[test]
fn the_demo_tells_a_story_of_claims_taken_refused_and_completed() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&repo("."), &["demo", "--dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let story = text(&out.stdout);
    assert!(story.contains("create_case refused: right_to_buy is not available in wales for a claim received on 2026-01-02"), "{story}");
    assert!(
        story.contains("RTB-1001: allocated to aisha by allocation_right_to_buy"),
        "{story}"
    );
    assert!(
        story
            .lines()
            .any(|l| l.starts_with("  RTB-1002:") && l.ends_with("diverted to delay")),
        "{story}"
    );
    assert!(
        story.contains("RTB-1003: check_previous_tenancies released (release date reached)"),
        "{story}"
    );
    assert!(story.contains("RTB-1001: COMPLETED"), "{story}");
    assert!(
        !story.contains("complete_task refused"),
        "the simulated officers only do work that is theirs: {story}"
    );
    // Notifications were written as readable .eml files.
    let mail: Vec<_> = std::fs::read_dir(dir.path().join("mail"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        mail.iter()
            .any(|p| p.extension().is_some_and(|e| e == "eml")),
        "{mail:?}"
    );
    let eml = std::fs::read_to_string(
        mail.iter()
            .find(|p| p.extension().is_some_and(|e| e == "eml"))
            .unwrap(),
    )
    .unwrap();
    assert!(
        eml.contains("Subject: ") && eml.contains("Message-ID: <casewarden.outbox."),
        "{eml}"
    );
    assert!(
        story.contains("notifications were written as .eml files"),
        "{story}"
    );
    // The database is left for exploring.
    let url = format!("sqlite://{}", dir.path().join("casewarden.db").display());
    let show = run(
        &repo("."),
        &["--database", &url, "show", "case", "RTB-1002"],
    );
    assert!(
        text(&show.stdout).contains("delay"),
        "{}",
        text(&show.stdout)
    );
}

#[test]
fn check_renders_every_template_and_reports_errors_with_file_and_line() {
    let dir = workdir();
    let templates = dir.path().join("templates");
    std::fs::write(
        templates.join("sla_exceeded.txt.j2"),
        "Dear {{ recipient.name }},\n\nCase {{ case.case_ref }}\nTarget {{ sla.taget_at }}\n",
    )
    .unwrap();
    std::fs::write(templates.join("sla_amber.html.j2"), "{% extends \"layout.html.j2\" %}\n{% block content %}\n<p>{{ case.case_ref }</p>\n{% endblock %}\n").unwrap();
    std::fs::write(
        templates.join("chaser.subject.j2"),
        "A subject without a body\n",
    )
    .unwrap();
    let out = run(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("templates/sla_amber.html.j2:3:"),
        "a syntax error names its line: {stderr}"
    );
    assert!(
        stderr.contains("templates/sla_exceeded.txt.j2:4:"),
        "an undefined name names its line: {stderr}"
    );
    assert!(stderr.contains("taget_at"), "{stderr}");
    assert!(
        stderr.contains("notification chaser has a subject but no chaser.txt.j2"),
        "{stderr}"
    );
}

/// Polls `casewarden events` until an event of `kind` appears after `after`; returns it.
fn wait_for_event(dir: &Path, kind: &str, after: i64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = run(
            dir,
            &["events", "--after", &after.to_string(), "--limit", "1000"],
        );
        let found = text(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["kind"] == kind);
        if let Some(e) = found {
            return e;
        }
        assert!(Instant::now() < deadline, "no {kind} event after #{after}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_daemon_reloads_rules_when_files_change_and_keeps_the_old_set_when_the_new_one_is_broken() {
    let dir = workdir();
    submit(
        dir.path(),
        r#"{"type":"upsert_role","ref":"home_ownership","name":"Home ownership"}"#,
    );
    let mut daemon = start_daemon(
        dir.path(),
        &[("CASEWARDEN__DAEMON__WATCH_INTERVAL_MS", "200")],
        Stdio::null(),
    );
    let first = wait_for_event(dir.path(), "role_upserted", 0);
    let script = dir.path().join("rules/allocation.rhai");
    let good = std::fs::read_to_string(&script).unwrap();

    // A broken edit is refused, with its problem, and the running rules keep working.
    std::fs::write(
        &script,
        "fn allocate(case_facts, officers) {\n    let x = ;\n}\n",
    )
    .unwrap();
    let rejected = wait_for_event(dir.path(), "rules_rejected", first["id"].as_i64().unwrap());
    let problems = rejected["data"]["problems"].to_string();
    assert!(
        problems.contains("rules/allocation.rhai:2:13"),
        "{problems}"
    );
    submit(
        dir.path(),
        r#"{"type":"upsert_role","ref":"legal","name":"Legal"}"#,
    );
    let after_reject = rejected["id"].as_i64().unwrap();
    let accepted = wait_for_event(dir.path(), "role_upserted", after_reject);
    assert_eq!(accepted["data"]["role"], "legal");

    // The fix is loaded.
    std::fs::write(&script, &good).unwrap();
    let loaded = wait_for_event(dir.path(), "rules_loaded", after_reject);
    assert_eq!(loaded["data"]["hash"].as_str().map(str::len), Some(16));

    // SIGHUP reloads too.
    signal(&daemon, "-HUP");
    wait_for_event(dir.path(), "rules_loaded", loaded["id"].as_i64().unwrap());
    assert_eq!(stop_daemon(&mut daemon).code(), Some(0));
}

#[test]
fn rules_test_passes_on_the_shipped_rules_and_leaves_nothing_unexercised() {
    let out = run(&repo("."), &["rules", "test"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    assert!(!stdout.contains("no test exercised"), "{stdout}");
}

#[test]
fn a_failing_rule_test_shows_what_was_expected_and_what_came_and_fails_the_run() {
    let dir = workdir();
    std::fs::write(
        dir.path().join("rules/tests/extra.toml"),
        "[[test]]\nname = \"wrong on purpose\"\nallocation = \"allocation\"\ncase = { team_role = \"home_ownership\" }\n\
         officers = [{ ref = \"ben\", roles = [\"home_ownership\"] }]\nexpect = { owner = \"aisha\" }\n",
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("rules/tests/escalation.toml")).unwrap();
    std::fs::remove_file(dir.path().join("rules/tests/allocation.toml")).unwrap();
    let out = run(dir.path(), &["rules", "test"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL rules/tests/extra.toml:1 wrong on purpose"),
        "{stdout}"
    );
    assert!(
        stdout.contains("owner: expected \"aisha\"") && stdout.contains("got \"ben\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("rules no test exercised: allocation_right_to_buy, escalation/default_amber, escalation/default_exceeded, escalation/default_follow_on"),
        "{stdout}"
    );
    // The only test of the default rule never meets an officer outside the team.
    assert!(
        stdout.contains("branches no test exercised:")
            && stdout.contains("rules/allocation.rhai:")
            && stdout.contains("then branch"),
        "{stdout}"
    );
    // A test file that is not valid is a problem with its position.
    std::fs::write(
        dir.path().join("rules/tests/extra.toml"),
        "[[test]]\nname = \"x\"\nexpect = 5\nbogus = 1\n",
    )
    .unwrap();
    let out = run(dir.path(), &["rules", "test"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("rules/tests/extra.toml:4:1"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn plan_on_the_command_line_leaves_the_inbox_as_it_was() {
    let dir = workdir();
    submit(
        dir.path(),
        r#"{"type":"upsert_role","ref":"home_ownership","name":"Home ownership"}"#,
    );
    let out = run(dir.path(), &["plan", "--now", "2026-03-02"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("nothing has been written") && stdout.contains("role_upserted"),
        "{stdout}"
    );
    let inbox = run(dir.path(), &["inbox", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&inbox.stdout).unwrap();
    assert_eq!(rows[0]["status"], "pending", "the plan applied the command");
}

#[test]
fn check_refuses_roles_and_templates_that_do_not_exist() {
    let dir = workdir();
    let rules = dir.path().join("rules");
    std::fs::write(
        rules.join("escalation/default_follow_on.rhai"),
        "fn escalate(item) {\n    [notify([\"line_manager\", \"role:finance\"], \"sla_chase\")]\n}\n",
    )
    .unwrap();
    let def = rules.join("definitions/home_buy/social_homebuy-england.toml");
    let edited = std::fs::read_to_string(&def).unwrap().replacen(
        "team_role = \"home_ownership\"",
        "team_role = \"home_owner\"",
        1,
    );
    std::fs::write(&def, &edited).unwrap();
    let out = run(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("rules/escalation/default_follow_on.rhai:2:47: error: notify names template \"sla_chase\", which does not exist"), "{stderr}");
    assert!(stderr.contains("rules/escalation/default_follow_on.rhai:2:31: error: notify names unknown role \"finance\""), "{stderr}");
    let line = edited
        .lines()
        .position(|l| l.starts_with("team_role"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!(
            "social_homebuy-england.toml:{line}:13: error: unknown role \"home_owner\""
        )),
        "{stderr}"
    );
}

#[test]
fn check_refuses_a_workflow_whose_tasks_form_a_cycle_or_name_unknown_tasks() {
    let dir = workdir();
    let def = dir
        .path()
        .join("rules/definitions/housing_options/section_21-england.toml");
    let original = std::fs::read_to_string(&def).unwrap();
    // Triage made to wait for the end of the case, and a dependency on a misspelt task.
    let broken = original
        .replacen(
            "key = \"triage\"\n",
            "key = \"triage\"\ndepends_on = [\"close_duty\"]\n",
            1,
        )
        .replacen(
            "depends_on = [\"assessment\"]",
            "depends_on = [\"asessment\"]",
            1,
        );
    assert_ne!(
        broken, original,
        "the workflow has the tasks this test edits"
    );
    std::fs::write(&def, &broken).unwrap();
    let out = run(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let file = "rules/definitions/housing_options/section_21-england.toml";
    let line_of = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let unknown = line_of("\"asessment\"");
    assert!(
        stderr.contains(&format!("{file}:{unknown}:"))
            && stderr
                .contains("depends on \"asessment\", which is not a task of stage \"casework\""),
        "{stderr}"
    );
    std::fs::write(
        &def,
        original.replacen(
            "key = \"triage\"\n",
            "key = \"triage\"\ndepends_on = [\"close_duty\"]\n",
            1,
        ),
    )
    .unwrap();
    let out = run(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("{file}:")), "{stderr}");
    assert!(stderr.contains("task dependency cycle: "), "{stderr}");
    assert!(stderr.contains("triage"), "{stderr}");
}

/// A housing options team, an applicant, and case HO-9 from enquiry to its pack.
const HOUSING_OPTIONS_CASE: [&str; 6] = [
    r#"{"type":"upsert_role","ref":"housing_options","name":"Housing options"}"#,
    r#"{"type":"upsert_user","ref":"ho1","name":"Hana Options","email":"hana@example.org","roles":["housing_options"]}"#,
    r#"{"type":"upsert_contact","ref":"a1","name":"Alex Applicant","email":"alex@example.net"}"#,
    r#"{"type":"create_case","case_ref":"HO-9","kind":"housing_options","workflow":"section_21","country":"england","applicant":"a1","received_at":"2026-03-02T09:30:00Z"}"#,
    r#"{"type":"submit_enquiry","case_ref":"HO-9","by":"ho1","answers":{"safe_place_tonight":true,"has_section_21_notice":true,"notice_expiry_date":"2026-04-24","court_papers":"none","deposit":"protected","household":"single","income_sources":["employment"],"support_needs":["none"],"contact_by_email_ok":true}}"#,
    r#"{"type":"render_pack","case_ref":"HO-9","by":"ho1"}"#,
];

#[test]
fn a_housing_options_case_shows_its_target_answers_advice_and_pack() {
    let dir = workdir();
    std::fs::write(
        dir.path().join("commands.jsonl"),
        HOUSING_OPTIONS_CASE.join("\n"),
    )
    .unwrap();
    assert!(
        run(dir.path(), &["submit", "commands.jsonl"])
            .status
            .success()
    );
    let out = run(dir.path(), &["tick", "--now", "2026-03-02T10:00:00Z"]);
    assert!(
        text(&out.stdout).contains("6 accepted, 0 rejected")
            && text(&out.stdout).contains("packs: 1 made"),
        "{}",
        text(&out.stdout)
    );

    let out = run(
        dir.path(),
        &["advice", "HO-9", "--now", "2026-03-02T10:00:00Z"],
    );
    let advice = text(&out.stdout);
    assert!(out.status.success(), "{advice}{}", text(&out.stderr));
    assert!(advice.contains("chosen"), "{advice}");
    assert!(
        advice.contains("answers.deposit = \"protected\""),
        "{advice}"
    );
    assert!(advice.contains("statements chosen"), "{advice}");

    let out = run(dir.path(), &["show", "case", "HO-9"]);
    let shown = text(&out.stdout);
    assert!(shown.contains("target:     2026-05-19"), "{shown}");
    assert!(
        shown.contains("triage → assessment → prevention_duty → close_duty"),
        "{shown}"
    );
    assert!(shown.contains("Enquiry (form private_renting"), "{shown}");
    assert!(shown.contains("v1 "), "{shown}");
    // With no configuration, packs go under ./packs, one directory per case, named by its id.
    let out = run(dir.path(), &["show", "case", "HO-9", "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = shown["case"]["id"].as_i64().unwrap();
    assert_eq!(shown["attachments"][1]["file"], "intact");
    let pack = dir
        .path()
        .join(format!("packs/case-{id}/case-{id}-housing-pack-v1.txt"));
    assert!(
        std::fs::read_to_string(&pack)
            .unwrap()
            .contains("Alex Applicant")
    );

    let out = run(dir.path(), &["form", "section_21", "--json"]);
    let form: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(form["id"], "private_renting");
    let household = form["questions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["key"] == "household")
        .unwrap();
    assert_eq!(household["choices"][0], "single");
    let out = run(dir.path(), &["form", "rough_sleeping"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("workflows: "),
        "{}",
        text(&out.stderr)
    );

    let out = run(dir.path(), &["advice", "RTB-1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no case \"RTB-1\""),
        "{}",
        text(&out.stderr)
    );
}

/// casewarden started from a shell whose umask is 022, as an administrator's usually is.
fn casewarden_under_umask_022(dir: &Path) -> Command {
    let mut c = Command::new("sh");
    c.args([
        "-c",
        "umask 022; exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_casewarden"),
    ]);
    in_workdir(c, dir)
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file under a directory, but for the hidden temporary files a writer renames into place
/// (one may vanish between listing and reading).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            out.extend(files_under(&entry.path()));
        } else if !entry.file_name().to_string_lossy().ends_with(".tmp") {
            out.push(entry.path());
        }
    }
    out
}

#[test]
fn files_holding_personal_data_are_for_casewardens_user_only_whatever_the_umask() {
    let dir = workdir();
    std::fs::write(
        dir.path().join("commands.jsonl"),
        HOUSING_OPTIONS_CASE.join("\n"),
    )
    .unwrap();
    let out = casewarden_under_umask_022(dir.path())
        .args(["submit", "commands.jsonl"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The daemon, while it runs, holds the lock and the -wal and -shm files open; its first
    // pass makes the pack and writes the mail that sends it.
    let mut daemon = casewarden_under_umask_022(dir.path())
        .arg("run")
        .env("CASEWARDEN__DAEMON__SCHEDULE", "* * * * * *")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (pack, mail) = loop {
        let packs = files_under(&dir.path().join("packs"));
        let mail = files_under(&dir.path().join("mail"));
        if let (Some(p), Some(m)) = (packs.first(), mail.first()) {
            break (p.clone(), m.clone());
        }
        assert!(
            Instant::now() < deadline,
            "no pack or mail file was written"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let db = dir.path().join("casewarden.db");
    let mut private = vec![
        pack.clone(),
        mail.clone(),
        db.clone(),
        dir.path().join("casewarden.db-wal"),
        dir.path().join("casewarden.db-shm"),
        dir.path().join("casewarden.db.lock"),
    ];
    private.extend(files_under(&dir.path().join("packs")));
    let modes: Vec<(String, u32)> = private
        .iter()
        .map(|p| (p.display().to_string(), mode(p)))
        .collect();
    let dirs = [pack.parent().unwrap(), mail.parent().unwrap()].map(mode);
    assert_eq!(stop_daemon(&mut daemon).code(), Some(0));
    for (path, m) in &modes {
        assert_eq!(*m, 0o600, "{path} is {m:o}");
    }
    assert_eq!(dirs, [0o700, 0o700], "pack and mail directories");
}

#[test]
fn a_command_whose_reader_goes_away_ends_quietly() {
    let dir = workdir();
    let commands: Vec<String> = (0..50)
        .map(|i| format!(r#"{{"type":"upsert_role","ref":"role{i}","name":"Role {i}"}}"#))
        .chain([
            r#"{"type":"upsert_contact","ref":"t1","name":"Tenant"}"#.to_string(),
            r#"{"type":"upsert_user","ref":"off1","name":"Officer","email":"o@example.org","roles":["role1"]}"#.to_string(),
        ])
        .collect();
    std::fs::write(dir.path().join("commands.jsonl"), commands.join("\n")).unwrap();
    assert!(
        run(dir.path(), &["submit", "commands.jsonl"])
            .status
            .success()
    );
    assert!(
        run(dir.path(), &["tick", "--now", "2026-03-02"])
            .status
            .success()
    );
    for args in [
        &["events"][..],
        &["inbox"],
        &["inbox", "--json"],
        &["outbox"],
        &["worklist"],
        &["check"],
    ] {
        // A reader that has gone before the first line is written, as `| head` is by the time
        // a long listing reaches its end.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = casewarden(dir.path())
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stderr), "", "{args:?}");
    }
}

#[test]
fn outside_text_is_printed_with_its_hidden_characters_escaped() {
    let dir = workdir();
    let note = "Rent paid in full\rNOT paid: arrears \u{202E}0003\u{200B}";
    let commands = [
        r#"{"type":"upsert_role","ref":"home_ownership","name":"Home ownership"}"#.to_string(),
        r#"{"type":"upsert_user","ref":"off1","name":"Officer","email":"o@example.org","roles":["home_ownership"]}"#.to_string(),
        r#"{"type":"upsert_contact","ref":"t1","name":"Tenant"}"#.to_string(),
        r#"{"type":"create_case","case_ref":"RTB-9","kind":"home_buy","scheme":"right_to_buy","country":"england","applicant":"t1","property":{"ref":"P9","address":"9 Road","tenure":"freehold"},"received_at":"2026-03-02"}"#.to_string(),
        serde_json::json!({"type": "add_note", "case_ref": "RTB-9", "by": "off1", "text": note}).to_string(),
        serde_json::json!({"type": "add_note", "case_ref": "RTB-9\u{200B}", "by": "off1", "text": "look-alike"}).to_string(),
    ];
    // Saved by a Windows tool: a byte-order mark before the first command.
    std::fs::write(
        dir.path().join("commands.jsonl"),
        format!("\u{FEFF}{}", commands.join("\n")),
    )
    .unwrap();
    assert!(
        run(dir.path(), &["submit", "commands.jsonl"])
            .status
            .success()
    );
    let out = run(dir.path(), &["tick", "--now", "2026-03-02"]);
    assert!(
        text(&out.stdout).contains("5 accepted, 1 rejected"),
        "{}",
        text(&out.stdout)
    );
    let hidden = |s: &str| {
        s.chars()
            .any(|c| (c.is_control() && c != '\n') || casewarden::text::is_format(c))
    };
    for args in [
        &["show", "case", "RTB-9"][..],
        &["show", "case", "RTB-9", "--json"],
        &["events"],
        &["inbox"],
        &["inbox", "--json"],
    ] {
        let out = run(dir.path(), args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let shown = text(&out.stdout);
        assert!(
            !hidden(&shown),
            "{args:?} printed a hidden character: {shown:?}"
        );
    }
    let shown = text(&run(dir.path(), &["show", "case", "RTB-9"]).stdout);
    assert!(
        shown.contains(r"Rent paid in full\rNOT paid: arrears \u{202e}0003\u{200b}"),
        "{shown}"
    );
    // JSON stays JSON, with the note as it was written.
    let events = text(&run(dir.path(), &["events"]).stdout);
    let noted = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["kind"] == "note_added")
        .unwrap();
    let out = run(dir.path(), &["show", "case", "RTB-9", "--json"]);
    let case: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(case["notes"][0]["body"], note, "{noted}");
    let inbox = text(&run(dir.path(), &["inbox", "--rejected"]).stdout);
    assert!(
        inbox.contains(
            r#"add_note: case_ref "RTB-9\u{200b}" contains an invisible format character"#
        ),
        "{inbox}"
    );
}

#[test]
fn outbox_retry_schedules_by_the_time_given_so_a_simulated_tick_sends_it() {
    let dir = workdir();
    assert!(run(dir.path(), &["migrate"]).status.success());
    let url = format!("sqlite://{}", dir.path().join("casewarden.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let db = casewarden::db::Db::connect(&url).await.unwrap();
        casewarden::db::sql(
            "INSERT INTO outbox (template, recipient_kind, recipient_ref, recipient_email, facts, status, attempts, last_error, created_at) \
             VALUES ('sla_amber', 'user', 'off1', 'o@example.org', $1, 'dead', 1, 'permanent failure: 550 no mailbox', $2)",
        )
        .bind(casewarden::mail::render::sample_facts("sla_amber"))
        .bind(casewarden::clock::parse_time("2026-03-02").unwrap())
        .execute(&db)
        .await
        .unwrap();
        db.close().await;
    });

    let out = run(
        dir.path(),
        &["outbox", "retry", "1", "--now", "2026-03-02T10:00:00Z"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("notification 1 requeued for 2026-03-02 10:00 GMT"),
        "{}",
        text(&out.stdout)
    );
    let eml = dir.path().join("mail").join("outbox-1.eml");
    let out = run(dir.path(), &["tick", "--now", "2026-03-02T09:59:00Z"]);
    assert!(
        text(&out.stdout).contains("mail: 0 sent"),
        "{}",
        text(&out.stdout)
    );
    assert!(!eml.exists(), "not due before the time it was requeued for");
    let out = run(dir.path(), &["tick", "--now", "2026-03-02T10:00:00Z"]);
    assert!(
        text(&out.stdout).contains("mail: 1 sent"),
        "{}",
        text(&out.stdout)
    );
    assert!(eml.exists());

    let out = run(dir.path(), &["outbox", "retry", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is sent, not dead"),
        "{}",
        text(&out.stderr)
    );
    let out = run(dir.path(), &["outbox", "retry", "1", "--now", "soon"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--now"), "{}", text(&out.stderr));
}

#[test]
fn a_command_asked_for_json_reports_its_error_as_json_naming_each_cause_once() {
    let dir = workdir();
    let out = run(
        dir.path(),
        &[
            "--database",
            "sqlite:///no/such/dir/cases.db",
            "inbox",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stderr)));
    let message = error["error"].as_str().unwrap();
    assert!(
        message.starts_with("cannot open database sqlite:///no/such/dir/cases.db"),
        "{error}"
    );
    assert!(error["causes"].is_array(), "{error}");
    // Without --json, the same error is a line for people.
    let out = run(
        dir.path(),
        &["--database", "sqlite:///no/such/dir/cases.db", "inbox"],
    );
    assert!(
        text(&out.stderr).starts_with("error: cannot open database"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn commands_that_only_read_leave_no_database_behind_and_say_to_migrate_first() {
    let dir = workdir();
    let readers: [&[&str]; 10] = [
        &["worklist", "--user", "off1"],
        &["show", "case", "RTB-1"],
        &["events"],
        &["inbox"],
        &["outbox"],
        &["outbox", "retry", "1"],
        &["plan", "--now", "2026-03-02"],
        &["advice", "HO-1"],
        &["webhooks"],
        &["clients", "list"],
    ];
    for args in readers {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            text(&out.stderr),
            "error: cannot open database sqlite://casewarden.db: there is no such file; run \
             `casewarden migrate` to create it, or point --database (database.url) at the right \
             one\n",
            "{args:?}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("casewarden.db"))
            .collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
    // An empty file (made by an older release, or by hand) is named for what it lacks.
    std::fs::write(dir.path().join("casewarden.db"), "").unwrap();
    let out = run(dir.path(), &["worklist", "--user", "off1"]);
    assert_eq!(
        text(&out.stderr),
        "error: sqlite://casewarden.db has no casewarden tables yet; run `casewarden migrate` first\n"
    );
    std::fs::remove_file(dir.path().join("casewarden.db")).unwrap();
    // The commands that write make the database as before.
    let out = run(dir.path(), &["migrate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(dir.path(), &["worklist", "--user", "off1", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list, serde_json::json!({"tasks": [], "cases": []}));
    // A simulated time is read as `tick --now` reads it, and a bad one is named.
    let out = run(dir.path(), &["worklist", "--now", "2026-03-02", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(dir.path(), &["worklist", "--now", "yesterday"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--now"), "{}", text(&out.stderr));
}

#[test]
fn clients_are_added_listed_and_revoked_and_a_token_is_shown_once() {
    let dir = workdir();
    assert!(run(dir.path(), &["migrate"]).status.success());
    let added = run(
        dir.path(),
        &[
            "clients",
            "add",
            "dynamics-crm",
            "--scopes",
            "commands:write,cases:read",
        ],
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    let token = text(&added.stdout).trim().to_string();
    assert!(token.starts_with("cw_") && token.len() == 46, "{token}");
    assert!(text(&added.stderr).contains("shown only this once"));

    // The list shows the client and its scopes, never the token.
    let list = run(dir.path(), &["clients", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed[0]["name"], "dynamics-crm");
    assert_eq!(listed[0]["scopes"], "commands:write,cases:read");
    assert!(listed[0]["revoked_at"].is_null());
    assert!(!text(&list.stdout).contains(&token[3..]));

    // Mistakes are refused with what was wrong.
    let again = run(
        dir.path(),
        &["clients", "add", "dynamics-crm", "--scopes", "admin"],
    );
    assert!(
        text(&again.stderr).contains("a client named \"dynamics-crm\" already exists"),
        "{}",
        text(&again.stderr)
    );
    let scope = run(
        dir.path(),
        &["clients", "add", "other", "--scopes", "cases:write"],
    );
    assert!(
        text(&scope.stderr).contains("--scopes: unknown scope \"cases:write\""),
        "{}",
        text(&scope.stderr)
    );
    let reserved = run(
        dir.path(),
        &["clients", "add", "casewarden", "--scopes", "admin"],
    );
    assert!(
        text(&reserved.stderr).contains("the actor casewarden uses"),
        "{}",
        text(&reserved.stderr)
    );
    let name = run(
        dir.path(),
        &["clients", "add", "bad\u{1b}name", "--scopes", "admin"],
    );
    assert!(
        text(&name.stderr).contains("client name \"bad\\u{1b}name\""),
        "{}",
        text(&name.stderr)
    );

    let revoked = run(dir.path(), &["clients", "revoke", "dynamics-crm"]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let unknown = run(dir.path(), &["clients", "revoke", "dynamics-crm"]);
    assert!(!unknown.status.success());
    assert!(text(&unknown.stderr).contains("no client named \"dynamics-crm\" holds a token"));
    // Both are in the event log, without the token.
    let events = text(&run(dir.path(), &["events"]).stdout);
    assert!(
        events.contains("\"kind\":\"api_client_added\"")
            && events.contains("\"kind\":\"api_client_revoked\""),
        "{events}"
    );
    assert!(!events.contains(&token[3..]));
    // The name can be issued again once revoked.
    assert!(
        run(
            dir.path(),
            &["clients", "add", "dynamics-crm", "--scopes", "admin"]
        )
        .status
        .success()
    );
}
