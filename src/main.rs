//! The `steerdns` command: a thin shell over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use clap::{Parser, Subcommand};

use steerdns::config::Config;
use steerdns::snapshot::Snapshot;

/// A global traffic manager that is just an authoritative DNS server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load the configuration and answer queries until stopped.
    Serve {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate the configuration and every zone file, then exit.
    Check {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => serve(&config),
        Command::Check { config } => check(&config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Config and zone errors already read `file:line: message`;
            // print them bare so editors and CI can jump to them.
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &Path) -> anyhow::Result<(Config, Snapshot)> {
    let config = Config::from_file(path)?;
    let snapshot = Snapshot::load(&config)?;
    Ok((config, snapshot))
}

fn check(path: &Path) -> anyhow::Result<()> {
    let (config, snapshot) = load(path)?;
    let names: usize = snapshot.zones.iter().map(|z| z.len()).sum();
    println!(
        "{}: ok: {} zones, {names} names",
        path.display(),
        config.zones.len()
    );
    Ok(())
}

fn serve(path: &Path) -> anyhow::Result<()> {
    let (config, snapshot) = load(path)?;
    let server = steerdns::server::Server::bind(&config).context("cannot listen")?;
    tracing::info!(zones = config.zones.len(), listen = ?config.listen, workers = config.workers, "serving");
    server.run(Arc::new(ArcSwap::from_pointee(snapshot)))?;
    Ok(())
}
