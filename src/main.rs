use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use hermit_pex::cli::{Cli, LogFormat, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default = match cli.verbose {
        0 => "warn",
        1 => "info,hermit_pex=info",
        _ => "info,hermit_pex=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    run(cli)
}
