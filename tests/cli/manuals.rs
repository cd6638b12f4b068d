//! Shell completions and man pages, checked against the clap definitions themselves: a
//! subcommand added to the command line without a completion or a man page fails here.

use std::collections::BTreeSet;
use std::process::Command;

use casewarden::cli::Cli;
use clap::CommandFactory;

/// Every subcommand at every depth, as the words typed after `casewarden` (`["rules", "test"]`),
/// with its about text; clap's own `help` and hidden subcommands left out.
fn subcommands() -> Vec<(Vec<String>, String)> {
    fn walk(command: &clap::Command, path: &[String], found: &mut Vec<(Vec<String>, String)>) {
        for sub in command.get_subcommands() {
            if sub.is_hide_set() || sub.get_name() == "help" {
                continue;
            }
            let mut words = path.to_vec();
            words.push(sub.get_name().to_string());
            let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
            found.push((words.clone(), about));
            walk(sub, &words, found);
        }
    }
    let mut found = Vec::new();
    walk(&Cli::command(), &[], &mut found);
    found
}

fn casewarden(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_casewarden"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "casewarden {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The words a bash completion script offers once `parent` has been typed: the `opts` of the
/// state it is in then.
fn bash_offers(script: &str, parent: &[String]) -> Vec<String> {
    let state = std::iter::once("casewarden")
        .chain(parent.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("__subcmd__");
    let mut lines = script.lines();
    lines.find(|l| l.trim() == format!("{state})"));
    let opts = lines.next().and_then(|l| l.trim().strip_prefix("opts=\""));
    let opts = opts.unwrap_or_else(|| panic!("bash completion has no state {state}"));
    opts.trim_end_matches('"')
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// The words zsh offers once `parent` has been typed: its `_…_commands` function's list.
fn zsh_offers(script: &str, parent: &[String]) -> Vec<String> {
    let function = std::iter::once("_casewarden")
        .chain(parent.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("__subcmd__");
    let mut lines = script.lines();
    lines.find(|l| *l == format!("{function}_commands() {{"));
    lines
        .take_while(|l| l.trim() != ")")
        .filter_map(|l| l.strip_prefix('\'')?.split_once(':'))
        .map(|(word, _)| word.to_string())
        .collect()
}

/// Whether fish offers `leaf` once `parent` has been typed.
fn fish_offers(script: &str, parent: &[String], leaf: &str) -> bool {
    let condition = match parent {
        [] => "__fish_casewarden_needs_command".to_string(),
        parent => format!("__fish_casewarden_using_subcommand {}", parent.join(" ")),
    };
    let word = format!("-a \"{leaf}\"");
    script
        .lines()
        .any(|l| l.contains(&condition) && l.contains(&word))
}

#[test]
fn completions_for_bash_zsh_and_fish_offer_every_subcommand() {
    let subcommands = subcommands();
    assert!(subcommands.len() > 20, "{subcommands:?}");
    for shell in ["bash", "zsh", "fish"] {
        let script = String::from_utf8(casewarden(&["completions", shell]).stdout).unwrap();
        for (words, _) in &subcommands {
            let (leaf, parent) = words.split_last().unwrap();
            let offered = match shell {
                "bash" => bash_offers(&script, parent).contains(leaf),
                "zsh" => zsh_offers(&script, parent).contains(leaf),
                _ => fish_offers(&script, parent, leaf),
            };
            assert!(
                offered,
                "{shell} completion does not offer `{}`",
                words.join(" ")
            );
        }
    }
}

#[test]
fn an_unknown_shell_is_refused_with_the_ones_there_are() {
    let out = Command::new(env!("CARGO_BIN_EXE_casewarden"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bash") && stderr.contains("zsh") && stderr.contains("fish"),
        "{stderr}"
    );
}

#[test]
fn a_man_page_is_written_for_casewarden_and_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = casewarden(&["manpages", dir.path().to_str().unwrap()]);

    let subcommands = subcommands();
    let mut expected: BTreeSet<String> = ["casewarden.1".to_string()].into();
    expected.extend(
        subcommands
            .iter()
            .map(|(words, _)| format!("casewarden-{}.1", words.join("-"))),
    );
    let written: BTreeSet<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(written, expected);
    // Each path written is printed, for a packaging script to pick up.
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().count(),
        expected.len()
    );

    for (words, about) in &subcommands {
        let name = format!("casewarden-{}", words.join("-"));
        let page = std::fs::read_to_string(dir.path().join(format!("{name}.1"))).unwrap();
        let version = env!("CARGO_PKG_VERSION");
        assert!(
            page.contains(&format!(
                ".TH {name} 1  \"casewarden {version}\" casewarden\n"
            )),
            "{page}"
        );
        // roff escapes hyphens; the synopsis is the command as typed.
        let synopsis = format!("\\fBcasewarden {}\\fR", words.join(" ")).replace('-', "\\-");
        // The about text up to the first character roff escapes or quotes.
        let first: String = about
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == ' ')
            .collect();
        assert!(first.len() > 3, "{name}: {about:?}");
        assert!(
            page.contains(&synopsis),
            "{name}: no synopsis {synopsis}\n{page}"
        );
        assert!(page.contains(&first), "{name}: no {first:?}\n{page}");
    }
    let main = std::fs::read_to_string(dir.path().join("casewarden.1")).unwrap();
    assert!(main.contains(".SH SUBCOMMANDS"), "{main}");
    assert!(main.contains("\\-\\-config"), "{main}");
}
