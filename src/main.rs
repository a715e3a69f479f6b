//! The `steerdns` command: a thin shell over the library.

#![deny(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use clap::{Parser, Subcommand};

use steerdns::admin::{AdminListener, AdminState};
use steerdns::config::Config;
use steerdns::drain::{self, DrainState, DrainTarget};
use steerdns::maintenance;
use steerdns::reload::{self, load, Reloader};
use steerdns::server::Server;

/// A global traffic manager that is just an authoritative DNS server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// How log lines are written to standard error: `human` (one readable
    /// line per event) or `json` (one JSON object per line, for log
    /// collectors).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// The `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
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
    /// Put this node (or one service on it, or one endpoint of a service)
    /// in maintenance: it answers as if its payload (or the endpoint) were
    /// down. Survives restarts; undo with `undrain`. With an `[admin]`
    /// listener, asks the running server when the target is safe to stop:
    /// the last answer naming it plus that answer's TTL.
    Drain {
        /// The TOML configuration file (its `[state] dir` holds the state).
        #[arg(long, short)]
        config: PathBuf,
        /// Only this service (its `name` in the config); default: the node.
        #[arg(long)]
        service: Option<String>,
        /// Only this endpoint of `--service`.
        #[arg(long, requires = "service")]
        endpoint: Option<String>,
        /// Block until the target is safe to stop (needs `[admin]`).
        #[arg(long)]
        wait: bool,
        /// Longest `--wait` (e.g. `90s`, `10m`); exits non-zero when the
        /// target is not safe to stop by then.
        #[arg(long, default_value = "10m", value_parser = parse_timeout, requires = "wait")]
        timeout: std::time::Duration,
    },
    /// Take this node (or one service, or one endpoint) out of maintenance.
    Undrain {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Only this service; default: the node.
        #[arg(long)]
        service: Option<String>,
        /// Only this endpoint of `--service`.
        #[arg(long, requires = "service")]
        endpoint: Option<String>,
    },
    /// Show the running server's services, endpoints, health, drains and
    /// config digest, as a table, from its admin API (`[admin]` in the
    /// config says where; its token file, if any, is read).
    Status {
        /// The TOML configuration file of the running server.
        #[arg(long, short)]
        config: PathBuf,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show how the answer to a question is chosen: zone, service, method,
    /// each endpoint considered, the decision, its ECS scope and the
    /// records. Every endpoint counts as up unless `--down` names it.
    Explain {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The client: an address (the query's source) or ADDR/LEN (sent as
        /// EDNS Client Subnet).
        #[arg(long)]
        client: String,
        /// The local address the query arrives on (what `self` answers).
        #[arg(long, default_value = "127.0.0.1")]
        via: std::net::IpAddr,
        /// Endpoints to take as down: ENDPOINT or SERVICE/ENDPOINT, comma
        /// separated.
        #[arg(long, value_delimiter = ',')]
        down: Vec<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The name asked.
        name: String,
        /// The type asked.
        #[arg(default_value = "A")]
        qtype: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Human => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // Fields at the top level, as collectors expect.
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let result = match cli.command {
        Command::Serve { config } => serve(&config),
        Command::Check { config } => check(&config),
        Command::Drain {
            config,
            service,
            endpoint,
            wait,
            timeout,
        } => set_drain(&config, service.as_deref(), endpoint.as_deref(), true)
            .and_then(|(config, target)| safe_to_stop(&config, &target, wait.then_some(timeout))),
        Command::Undrain {
            config,
            service,
            endpoint,
        } => set_drain(&config, service.as_deref(), endpoint.as_deref(), false).map(|_| ()),
        Command::Status { config, json } => status(&config, json),
        Command::Explain {
            config,
            client,
            via,
            down,
            json,
            name,
            qtype,
        } => explain(&config, &client, via, &down, json, &name, &qtype),
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
    // A window open at start drains before the first answer.
    maintenance::apply(&snapshot, steerdns::last_sent::unix_now());
    let started = (std::time::Instant::now(), std::time::SystemTime::now());
    let server = Server::bind(&config).context("cannot listen")?;
    // Bound with the DNS sockets, before privileges are dropped.
    let admin = match &config.admin {
        Some(a) => Some(
            AdminListener::bind(a)
                .with_context(|| format!("cannot listen for the admin API on {}", a.listen))?,
        ),
        None => None,
    };
    // Which `[cluster] nodes` entry this node is, found before serving so
    // a config that names no node here stops the start.
    let this_node = match (&config.cluster, &config.admin) {
        (Some(c), Some(a)) => Some(
            steerdns::cluster::node::find_self(c, a.listen)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        ),
        _ => None,
    };
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
    // What the admin listener serves at /metrics (`metrics.encode()`).
    let metrics = server.metrics();
    metrics.loaded_now();
    let background = {
        let snapshot = snapshot.clone();
        let path = path.to_path_buf();
        async move {
            // Probes, reloads and the drain watcher live as long as this
            // future: the server polls it on its runtime until a signal
            // arrives.
            let state_dir = config.state_dir.clone();
            let cluster_config = config.cluster.clone();
            let mut reloader = Reloader::start(path, config, snapshot.clone(), metrics.clone());
            let drain = state_dir
                .clone()
                .map(|dir| tokio::spawn(drain::watch(dir, snapshot.clone())));
            let windows = tokio::spawn(maintenance::watch(snapshot.clone()));
            let ramps = tokio::spawn(steerdns::ramp::watch(snapshot.clone()));
            let cluster = match (cluster_config, this_node) {
                (Some(c), Some(this)) => Some(Arc::new(steerdns::cluster::ClusterNode::new(
                    c,
                    this,
                    snapshot.clone(),
                    reloader.loaded(),
                    metrics.cluster(),
                    state_dir.clone(),
                ))),
                _ => None,
            };
            let sharing = cluster.clone().map(|c| tokio::spawn(c.run()));
            let admin = admin.map(|listener| {
                let state = AdminState {
                    snapshot: snapshot.clone(),
                    journal: reloader.journal(),
                    loaded: reloader.loaded(),
                    reload: reloader.handle(),
                    state_dir,
                    started,
                    metrics: Some(metrics),
                    cluster,
                };
                tokio::spawn(async move {
                    if let Err(e) = listener.serve(state).await {
                        tracing::error!("admin API stopped: {e}");
                    }
                })
            });
            // This runs once before the first query is answered, every
            // socket bound: ready (systemd Type=notify; nothing without
            // NOTIFY_SOCKET).
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
            tokio::select! {
                () = reloader.run() => {}
                () = shutdown_signal() => {}
            }
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
            tracing::info!("shutting down");
            reloader.stop();
            windows.abort();
            ramps.abort();
            for task in [drain, admin, sharing].into_iter().flatten() {
                task.abort();
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

fn status(path: &Path, json: bool) -> anyhow::Result<()> {
    let config = Config::from_file(path)?;
    let Some(admin) = &config.admin else {
        anyhow::bail!(
            "{}: no [admin] table, so the server has no admin API to ask",
            path.display()
        );
    };
    let body = admin_get(&client_runtime()?, admin, "/api/v1/status")?;
    if json {
        print!("{}", String::from_utf8_lossy(&body));
    } else {
        let status: steerdns::admin::status::Status =
            serde_json::from_slice(&body).context("the admin API's answer is not a status")?;
        print!("{}", steerdns::admin::render_table(&status));
    }
    Ok(())
}

/// A runtime for one command's requests to the admin API.
fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime")
}

/// `GET path` from the running server's admin API (`admin` says where,
/// and its token); the body of a successful answer.
fn admin_get(
    runtime: &tokio::runtime::Runtime,
    admin: &steerdns::config::AdminConfig,
    path: &str,
) -> anyhow::Result<hyper::body::Bytes> {
    let addr = steerdns::admin::status::reachable(admin.listen);
    let (code, body) = runtime.block_on(steerdns::admin::client::get(
        addr,
        path,
        admin.token.as_deref(),
        std::time::Duration::from_secs(10),
    ))?;
    if !code.is_success() {
        anyhow::bail!("{addr}: {code}: {}", String::from_utf8_lossy(&body).trim());
    }
    Ok(body)
}

fn explain(
    path: &Path,
    client: &str,
    via: std::net::IpAddr,
    down: &[String],
    json: bool,
    name: &str,
    qtype: &str,
) -> anyhow::Result<()> {
    let (_, snapshot) = load(path)?;
    for spec in down {
        steerdns::explain::mark_down(&snapshot, spec)?;
    }
    let question = steerdns::explain::Question::from_text(name, qtype, client, via)?;
    let report = steerdns::explain::explain(&snapshot, &question)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

/// Writes the drain (or undrain) of the target named to the drain file;
/// returns the config read and the target.
fn set_drain(
    path: &Path,
    service: Option<&str>,
    endpoint: Option<&str>,
    drained: bool,
) -> anyhow::Result<(Config, DrainTarget)> {
    let config = Config::from_file(path)?;
    let dir = config.state_dir.as_deref().with_context(|| {
        format!(
            "{}: drain needs a [state] dir to keep its state in",
            path.display()
        )
    })?;
    let target = DrainTarget::find(
        service,
        endpoint,
        config.services.iter().map(|s| {
            (
                &s.name,
                s.endpoints.iter().map(|e| e.name.as_str()).collect(),
            )
        }),
    )
    .with_context(|| path.display().to_string())?;
    DrainState::update(dir, &target, drained)?;
    let what = target.to_string();
    println!("{what}: {}", if drained { "drained" } else { "undrained" });
    Ok((config, target))
}

/// `--timeout`'s values.
fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    steerdns::duration::parse_positive(text, "10m").map_err(|e| e.to_string())
}

/// How long the server may take to apply a drain file it polls every
/// second, before `steerdns drain` reports the target as not in force.
const APPLY_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// How often `--wait` asks the server.
const WAIT_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Asks the running server (its admin API) when `target` is safe to stop
/// and prints it; with `wait`, asks until it is, for at most that long.
fn safe_to_stop(
    config: &Config,
    target: &DrainTarget,
    wait: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    use std::time::Instant;
    use steerdns::admin::status::DrainStatus;

    #[derive(serde::Deserialize)]
    struct Reply {
        safe: Vec<DrainStatus>,
    }

    let Some(admin) = &config.admin else {
        if wait.is_some() {
            anyhow::bail!(
                "{}: --wait asks the server over its admin API, and there is no [admin] table",
                config.file.display()
            );
        }
        println!("{target}: no [admin] listener to ask when it is safe to stop");
        return Ok(());
    };
    let runtime = client_runtime()?;
    let ask = || -> anyhow::Result<Option<DrainStatus>> {
        let body = admin_get(&runtime, admin, "/api/v1/drain")?;
        let reply: Reply =
            serde_json::from_slice(&body).context("the admin API's answer is not a drain state")?;
        let what = target.to_string();
        Ok(reply
            .safe
            .into_iter()
            .find(|d| d.reason == "drain" && d.target == what))
    };
    let started = Instant::now();
    let deadline = wait.map(|w| started + w);
    let mut announced = String::new();
    loop {
        let status = match ask() {
            Ok(status) => status,
            // The drain file is the truth and needs no running server;
            // only the safe time does.
            Err(e) if deadline.is_none() => {
                println!("{target}: cannot ask the server when it is safe to stop: {e:#}");
                return Ok(());
            }
            // A restarting server may answer again before the deadline.
            Err(e) if deadline.is_some_and(|d| Instant::now() >= d) => return Err(e),
            Err(_) => {
                std::thread::sleep(WAIT_POLL);
                continue;
            }
        };
        let ready = status.as_ref().is_some_and(|d| d.in_force);
        // In a cluster, --wait waits for every node (see DrainStatus::cluster).
        let everywhere = status.as_ref().and_then(|d| d.cluster.as_ref());
        let safe = ready
            && status.as_ref().is_some_and(|d| match everywhere {
                Some(c) => c.safe_in_seconds == Some(0),
                None => d.safe_in_seconds == 0,
            });
        if let (Some(d), Some(_), false) = (&status, deadline, safe || !ready) {
            let line = match everywhere {
                Some(c) if !c.waiting_for.is_empty() => format!(
                    "{target}: safe here at {} (in {} s); waiting for {} to drain it too",
                    d.safe_at,
                    d.safe_in_seconds,
                    c.waiting_for.join(", ")
                ),
                Some(c) => format!(
                    "{target}: waiting until {} on every node (in {} s)",
                    c.safe_at.as_deref().unwrap_or(""),
                    c.safe_in_seconds.unwrap_or(0)
                ),
                None => format!(
                    "{target}: waiting until {} (in {} s; last answer {}, TTL {} s)",
                    d.safe_at, d.safe_in_seconds, d.last_sent, d.ttl
                ),
            };
            if line != announced {
                println!("{line}");
                announced = line;
            }
        }
        match (&status, deadline) {
            // Without --wait: report once the server applied the drain,
            // or after the grace period, saying it has not.
            (Some(d), None) if ready || started.elapsed() >= APPLY_GRACE => {
                let pending = if ready { "" } else { " (not in force yet)" };
                match d.safe_in_seconds {
                    0 => println!("{target}: safe to stop now{pending}"),
                    n => println!(
                        "{target}: safe to stop at {} (in {n} s; last answer {}, TTL {} s){pending}",
                        d.safe_at, d.last_sent, d.ttl
                    ),
                }
                match everywhere {
                    Some(c) if !c.waiting_for.is_empty() => println!(
                        "{target}: on every node once {} drain it too",
                        c.waiting_for.join(", ")
                    ),
                    Some(c) => println!(
                        "{target}: on every node from {}",
                        c.safe_at.as_deref().unwrap_or("")
                    ),
                    None => {}
                }
                return Ok(());
            }
            (None, None) if started.elapsed() >= APPLY_GRACE => {
                anyhow::bail!("the server does not report {target} as drained");
            }
            (Some(d), Some(_)) if safe => {
                let nodes = if d.cluster.is_some() {
                    " on every node"
                } else {
                    ""
                };
                println!("{target}: safe to stop now{nodes}");
                return Ok(());
            }
            (_, Some(deadline)) if Instant::now() >= deadline => {
                let left = status.map_or("not drained on the server".to_string(), |d| {
                    format!("safe at {}, in {} s", d.safe_at, d.safe_in_seconds)
                });
                anyhow::bail!("{target}: not safe to stop within the timeout ({left})");
            }
            _ => std::thread::sleep(WAIT_POLL),
        }
    }
}
