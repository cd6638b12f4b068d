//! Shell completions and man pages, generated from the clap definitions in this module's parent,
//! so a subcommand added there is completed and documented without anything else to change.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// The completion script for `shell`, as the package installs it for bash, zsh and fish.
pub fn completions(shell: Shell, out: &mut dyn Write) {
    let mut command = Cli::command();
    let name = command.get_name().to_string();
    clap_complete::generate(shell, &mut command, name, out);
}

/// Writes `casewarden.1` and one page per subcommand at every depth (`casewarden-run.1`,
/// `casewarden-rules-test.1`, ...) into `dir`, creating it; a hidden subcommand gets none.
/// Returns the files written.
pub fn man_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // `help` is clap's, not ours: its page would only say how to ask for the others.
    let mut command = Cli::command().disable_help_subcommand(true);
    // Building gives each subcommand its display name, `casewarden-rules-test`, and the global
    // options, so every page lists --config, --database, --rules and --templates.
    command.build();
    let mut written = Vec::new();
    write_pages(command, dir, &mut written)?;
    Ok(written)
}

fn write_pages(
    command: clap::Command,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir, written)?;
    }
    let page = clap_mangen::Man::new(command)
        .source(concat!("casewarden ", env!("CARGO_PKG_VERSION")))
        .manual("casewarden");
    let path = dir.join(page.get_filename());
    let mut text = Vec::new();
    page.render(&mut text)?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    Ok(())
}
