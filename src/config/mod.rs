//! The configuration file: one TOML document.
//!
//! Three layers, as in NLnet Labs' daemons: a `*Spec` per table mirrors
//! the file (serde, unknown keys refused), [`Config`] is the validated form
//! with defaults applied and paths resolved, and the run-time form is the
//! [`Snapshot`](crate::snapshot::Snapshot) compiled from it.
//!
//! One file per table: `server`, `tcp`, `rrl`, `zone`, `monitor`,
//! `service`, `admin`. Each validates its table into a value or an `Invalid` (a
//! message and the byte span it is about); this file reads the document,
//! calls them in order and turns the first span refused into `file:line`.

mod admin;
mod cluster;
mod maintenance;
mod monitor;
mod rrl;
mod server;
mod service;
mod tcp;
mod value;
mod zone;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use admin::AdminConfig;
pub use cluster::ClusterConfig;
pub use maintenance::MaintenanceWindow;
pub(crate) use rrl::{v4_mask, v6_mask};
pub use rrl::{ClientPrefix, RrlConfig, MAX_RRL_RATE, MAX_RRL_SLIP, MAX_RRL_WINDOW};
pub use server::{RunAs, MAX_IDENTITY_LEN, MAX_UDP_PAYLOAD_LIMIT};
pub use service::{EndpointConfig, EndpointTarget, ProbeTarget, ServiceConfig};
pub use tcp::TcpLimits;
pub use zone::{NsHealthSource, ZoneSource};

use crate::health::{Monitor, MonitorSpec};
use server::{Server, ServerSpec};
use value::Invalid;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to answer on, UDP and TCP alike.
    pub listen: Vec<SocketAddr>,
    /// Number of UDP worker threads per listen address.
    pub workers: usize,
    /// Largest UDP response we send, whatever the client offers (RFC 6891 §6.2.5).
    pub max_udp_payload: u16,
    /// Whether UDP workers count their queries and answers for `/metrics`
    /// (`[server] count-queries`, default on). Off saves the per-query
    /// counter updates and leaves the UDP query, answer and rate figures
    /// at zero; TCP, probe and RRL metrics stay.
    pub count_queries: bool,
    /// Limits on TCP clients.
    pub tcp: TcpLimits,
    /// Response rate limiting of UDP answers.
    pub rrl: RrlConfig,
    /// The account to switch to once every socket is bound.
    pub run_as: Option<RunAs>,
    /// `[server] cookie-secret`: a DNS cookie secret shared by anycast
    /// nodes (RFC 9018 §6); without it, each server draws its own.
    pub cookie_secret: Option<crate::cookie::CookieSecret>,
    /// `[server] identity`: the name this node gives in NSID (RFC 5001) and
    /// CHAOS `id.server` answers; the host name by default, empty to hide.
    pub identity: String,
    /// `[server] version`: the CHAOS `version.server` answer; hidden
    /// (REFUSED) by default.
    pub version: Option<String>,
    /// Zones to serve.
    pub zones: Vec<ZoneSource>,
    /// Where drain state is kept across restarts; the only place steerdns
    /// writes to.
    pub state_dir: Option<PathBuf>,
    /// Health monitors, by name.
    pub monitors: BTreeMap<String, Arc<Monitor>>,
    /// Services answered by a routing policy instead of static records.
    pub services: Vec<ServiceConfig>,
    /// The MaxMind database geographic and performance routing read
    /// (`[geoip] database`), relative paths resolved.
    pub geoip: Option<PathBuf>,
    /// The admin HTTP listener (`[admin]`), if any.
    pub admin: Option<AdminConfig>,
    /// The nodes sharing probe verdicts and config digests (`[cluster]`),
    /// if any.
    pub cluster: Option<ClusterConfig>,
    /// `[log] query-sample`: each UDP worker logs 1 in this many queries
    /// (client, question, rcode, ECS scope, service); 0 logs none.
    pub query_sample: u32,
    /// `[[maintenance]]`: scheduled windows that drain a target.
    pub maintenance: Vec<MaintenanceWindow>,
    /// The config file, for errors found later (at snapshot load).
    pub file: PathBuf,
}

/// Why the configuration file was refused. Displays as `file:line: message`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {error}", file.display())]
    Read {
        /// The config file.
        file: PathBuf,
        /// The I/O error (shown in the message, so not a `source`).
        error: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a bad value.
    #[error("{}:{line}: {message}", file.display())]
    Invalid {
        /// The config file.
        file: PathBuf,
        /// 1-based line of the offending key or value.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// The config file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Spec {
    server: ServerSpec,
    #[serde(default)]
    tcp: tcp::TcpSpec,
    #[serde(default)]
    rrl: rrl::RrlSpec,
    #[serde(default, rename = "zone")]
    zones: Vec<zone::ZoneSpec>,
    state: Option<StateSpec>,
    #[serde(default, rename = "monitor")]
    monitors: BTreeMap<String, MonitorSpec>,
    #[serde(default, rename = "service")]
    services: Vec<service::ServiceSpec>,
    geoip: Option<GeoipSpec>,
    admin: Option<admin::AdminSpec>,
    cluster: Option<cluster::ClusterSpec>,
    log: Option<LogSpec>,
    #[serde(default)]
    maintenance: Vec<maintenance::MaintenanceSpec>,
}

/// The `[log]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct LogSpec {
    /// 1 in how many UDP queries is logged; 0: none.
    #[serde(default)]
    query_sample: u32,
}

/// The `[geoip]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct GeoipSpec {
    database: toml::Spanned<String>,
}

/// The `[state]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct StateSpec {
    dir: String,
}

impl Config {
    /// Reads and validates a config file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            file: path.to_path_buf(),
            error,
        })?;
        Config::from_str(&text, path)
    }

    /// Validates config text; `path` names the file in errors and anchors
    /// relative zone file paths.
    pub fn from_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let lines = Lines::new(text);
        let invalid = |e: Invalid| ConfigError::Invalid {
            file: path.to_path_buf(),
            line: lines.line_of(e.span.start),
            message: e.message,
        };
        let spec: Spec = toml::from_str(text).map_err(|e| {
            invalid(Invalid::new(
                e.span().unwrap_or(0..0),
                e.message().to_string(),
            ))
        })?;
        Config::from_spec(spec, path, &lines).map_err(invalid)
    }

    /// Validates each table in turn; the first mistake found is reported.
    fn from_spec(spec: Spec, path: &Path, lines: &Lines) -> Result<Config, Invalid> {
        let base = path.parent().unwrap_or(Path::new("."));
        let server = Server::from_spec(spec.server)?;
        let tcp = TcpLimits::from_spec(spec.tcp)?;
        let rrl = RrlConfig::from_spec(&spec.rrl)?;
        let run_as = server.run_as.validate()?;
        let monitors = monitor::monitors(&spec.monitors)?;
        let services = service::services(spec.services, &monitors, lines)?;
        let zones = zone::zones(spec.zones, base, &services, lines)?;
        let geoip = spec.geoip.map(|g| base.join(g.database.get_ref()));
        if geoip.is_none() {
            if let Some((span, routing)) = service::needing_geoip(&services) {
                return Err(Invalid::new(
                    span,
                    format!("service.routing: {routing:?} needs a [geoip] database"),
                ));
            }
        }
        let maintenance =
            maintenance::windows(spec.maintenance, &services, |at| lines.line_of(at))?;
        let admin = spec
            .admin
            .map(|a| AdminConfig::from_spec(a, base))
            .transpose()?;
        let cluster_span = spec.cluster.as_ref().map(|c| c.span());
        let cluster = spec
            .cluster
            .map(|c| ClusterConfig::from_spec(c, base))
            .transpose()?;
        if let (Some(span), None) = (&cluster_span, &admin) {
            // Pushes arrive at the admin listener.
            return Err(Invalid::new(
                span.clone(),
                "cluster.nodes: the cluster talks through the admin listener: add an [admin] table",
            ));
        }
        if cluster.is_none() {
            if let Some(span) = service::shared_rule(&services) {
                return Err(Invalid::new(
                    span,
                    "service.health-rule: only \"local\" without a [cluster] table",
                ));
            }
        }
        Ok(Config {
            listen: server.listen,
            workers: server.workers,
            max_udp_payload: server.max_udp_payload,
            cookie_secret: server.cookie_secret,
            identity: server.identity,
            version: server.version,
            count_queries: server.count_queries,
            tcp,
            rrl,
            run_as,
            zones,
            state_dir: spec.state.map(|s| base.join(s.dir)),
            monitors,
            services,
            geoip,
            admin,
            cluster,
            query_sample: spec.log.map_or(0, |l| l.query_sample),
            maintenance,
            file: path.to_path_buf(),
        })
    }
}

/// Where the newlines of a text are, for turning byte offsets into line
/// numbers. Counting newlines per lookup instead made a config with 10,000
/// services take quadratic time (1.6 s) to read.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        Lines(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i)
                .collect(),
        )
    }

    /// 1-based line number of byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.0.partition_point(|&newline| newline < offset) + 1
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;

    /// The smallest valid config: five lines, so a table added after it
    /// starts on line 6.
    pub(crate) const MINIMAL: &str = "[server]\nlisten = [\"127.0.0.1:5353\"]\n[[zone]]\norigin = \"example.com\"\nfile = \"example.com.zone\"\n";

    /// Reads [`MINIMAL`] followed by `extra` as `conf/steerdns.toml`.
    pub(crate) fn parse_with(extra: &str) -> Result<Config, String> {
        let text = format!("{MINIMAL}{extra}");
        parse(&text).map_err(|e| e.to_string())
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_str(text, Path::new("conf/steerdns.toml"))
    }

    #[test]
    fn byte_offsets_become_line_numbers() {
        let lines = Lines::new("a\nbc\n\nd");
        let got: Vec<usize> = (0..8).map(|o| lines.line_of(o)).collect();
        // a \n b c \n \n d, and one past the end
        assert_eq!(got, [1, 1, 2, 2, 2, 3, 4, 4]);
    }

    #[test]
    fn applies_defaults_and_resolves_paths() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.max_udp_payload, 1232);
        assert_eq!(c.tcp.idle_timeout, Duration::from_secs(10));
        assert!(c.workers >= 1);
        assert_eq!(c.zones[0].origin.to_string(), "example.com.");
        assert_eq!(c.zones[0].file, Path::new("conf/example.com.zone"));
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let text = MINIMAL.replace("[[zone]]", "colour = 1\n[[zone]]");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.starts_with("conf/steerdns.toml:3:"), "{e}");
        assert!(e.contains("colour"), "{e}");

        let text = MINIMAL.replace("[[zone]]", "max-udp-payload = 100\n[[zone]]");
        let e = parse(&text).unwrap_err().to_string();
        assert!(
            e.starts_with("conf/steerdns.toml:3: server.max-udp-payload"),
            "{e}"
        );

        let text = MINIMAL.replace("127.0.0.1:5353", "127.0.0.1");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.starts_with("conf/steerdns.toml:2:"), "{e}");

        let text = format!("{MINIMAL}[tcp]\nidle-timeout = \"soon\"\n");
        let e = parse(&text).unwrap_err().to_string();
        assert!(
            e.starts_with("conf/steerdns.toml:7: tcp.idle-timeout"),
            "{e}"
        );

        let text = format!("{MINIMAL}[[zone]]\norigin = \"Example.com.\"\nfile = \"x\"\n");
        let e = parse(&text).unwrap_err().to_string();
        assert!(
            e.contains(":7: zone.origin: Example.com. is listed twice"),
            "{e}"
        );
    }
}
