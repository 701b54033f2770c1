use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use hermit_pex::cli::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default = match cli.verbose {
        0 => "warn",
        1 => "info,hermit_pex=info",
        _ => "info,hermit_pex=debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
    run(cli)
}
