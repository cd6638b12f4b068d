use std::process::ExitCode;

use casewarden::cli::{self, Cli};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match cli.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut log = settings.log.clone();
    if matches!(cli.command, cli::Command::Demo { .. }) {
        // The demo tells its own story on standard output; only trouble goes to the log.
        log.level = "warn".to_string();
    }
    casewarden::telemetry::init(&log);
    match cli::run(cli, settings).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
