use std::process::ExitCode;

use casewarden::cli::{self, Cli};
use casewarden::output;
use clap::Parser;

fn main() -> ExitCode {
    casewarden::allocator::tune();
    run()
}

#[tokio::main]
async fn run() -> ExitCode {
    // Everything casewarden creates holds personal data: the database and its -wal, -shm and
    // .lock files, housing packs, mail files. They are for its own user only, whatever umask it
    // was started with (an admin shell's 022 would make them world-readable).
    // SAFETY: umask only sets the process's file creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    let cli = Cli::parse();
    let json = cli.wants_json();
    let report = |e: anyhow::Error| {
        if json {
            eprintln!("{}", cli::error_json(&e));
        } else {
            eprintln!("error: {e:#}");
        }
        ExitCode::FAILURE
    };
    let settings = match cli.settings() {
        Ok(s) => s,
        Err(e) => return report(e),
    };
    let mut log = settings.log.clone();
    if matches!(cli.command, cli::Subcommand::Demo { .. }) {
        // The demo tells its own story on standard output; only trouble goes to the log.
        log.level = "warn".to_string();
    }
    casewarden::telemetry::init(&log);
    match cli::run(cli, settings).await {
        Ok(code) => code,
        // The reader of our output went away (`casewarden events | head`): it has what it wanted.
        Err(e) if output::is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => report(e),
    }
}
