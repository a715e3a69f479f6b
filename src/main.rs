//! The `steerdns` command: a thin shell over the library.

#![deny(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use clap::{Parser, Subcommand};

use steerdns::config::Config;
use steerdns::drain::{self, DrainState};
use steerdns::name::Name;
use steerdns::reload::{self, load, Reloader};
use steerdns::server::Server;

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
    /// Put this node (or one service on it) in maintenance: it answers as
    /// if its payload were down. Survives restarts; undo with `undrain`.
    Drain {
        /// The TOML configuration file (its `[state] dir` holds the state).
        #[arg(long, short)]
        config: PathBuf,
        /// Only this service (its `name` in the config); default: the node.
        #[arg(long)]
        service: Option<String>,
    },
    /// Take this node (or one service) out of maintenance.
    Undrain {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Only this service; default: the node.
        #[arg(long)]
        service: Option<String>,
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
        Command::Drain { config, service } => set_drain(&config, service.as_deref(), true),
        Command::Undrain { config, service } => set_drain(&config, service.as_deref(), false),
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
    // Before the (possibly long) first load: a reload asked for meanwhile
    // must not kill the server.
    reload::ignore_hangups_until_ready().context("cannot set up SIGHUP")?;
    let (config, snapshot) = load(path)?;
    if let Some(dir) = &config.state_dir {
        // Start drained if the node was drained before a restart.
        DrainState::load(dir)?.apply(&snapshot);
    }
    let server = Server::bind(&config).context("cannot listen")?;
    // Port 53 needs root (or CAP_NET_BIND_SERVICE) to bind; nothing after
    // it does, so no query is answered with more rights than a nobody.
    server
        .drop_privileges(config.run_as.as_ref())
        .context("cannot drop privileges")?;
    tracing::info!(
        zones = config.zones.len(),
        services = config.services.len(),
        listen = ?config.listen,
        workers = config.workers,
        "serving"
    );
    let snapshot = Arc::new(ArcSwap::from_pointee(snapshot));
    let background = {
        let snapshot = snapshot.clone();
        let path = path.to_path_buf();
        async move {
            // Probes, reloads and the drain watcher live as long as this
            // future: the server polls it on its runtime until a signal
            // arrives.
            let state_dir = config.state_dir.clone();
            let mut reloader = Reloader::start(path, config, snapshot.clone());
            let drain = state_dir.map(|dir| tokio::spawn(drain::watch(dir, snapshot.clone())));
            tokio::select! {
                () = reloader.run() => {}
                () = shutdown_signal() => {}
            }
            tracing::info!("shutting down");
            reloader.stop();
            if let Some(d) = drain {
                d.abort();
            }
        }
    };
    server.run_until(snapshot, background)?;
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn set_drain(path: &Path, service: Option<&str>, drained: bool) -> anyhow::Result<()> {
    let config = Config::from_file(path)?;
    let dir = config.state_dir.as_deref().with_context(|| {
        format!(
            "{}: drain needs a [state] dir to keep its state in",
            path.display()
        )
    })?;
    let mut state = DrainState::load(dir)?;
    match service {
        None => state.node = drained,
        Some(name) => {
            let name = Name::from_absolute_text(name.trim_end_matches('.'))
                .with_context(|| format!("bad service name {name:?}"))?
                .to_lowercase()
                .to_string();
            if !config.services.iter().any(|s| s.name.to_string() == name) {
                anyhow::bail!("{}: no service named {name}", path.display());
            }
            if drained {
                state.services.insert(name);
            } else {
                state.services.remove(&name);
            }
        }
    }
    state.save(dir)?;
    let what = service.unwrap_or("node");
    println!("{what}: {}", if drained { "drained" } else { "undrained" });
    Ok(())
}
