//! The `rauta` binary: parse the command line, set up logging, run.

#![forbid(unsafe_code)]

use clap::Parser;
use rauta_proxy::cli::{Cli, Command};
use std::process::ExitCode;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = matches!(&cli.command, Command::Serve(a) if a.log_json);
    let level = match &cli.command {
        Command::Serve(a) => a.log_level.clone(),
        Command::Check(_) => None,
    };
    let filter = match level {
        Some(level) => tracing_subscriber::EnvFilter::new(level),
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
    };
    // Colour only for a person at a terminal; logs collected by Kubernetes or
    // a file stay plain.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    match cli.command {
        Command::Check(args) => ExitCode::from(rauta_proxy::serve::check(&args)),
        Command::Serve(args) => match rauta_proxy::serve::serve(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
