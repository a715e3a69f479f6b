//! The configuration file: one TOML document.
//!
//! Three layers, as in NLnet Labs' daemons: [`Spec`] mirrors the file
//! (serde, unknown keys refused), [`Config`] is the validated form with
//! defaults applied and paths resolved, and the run-time form is the
//! [`Snapshot`](crate::snapshot::Snapshot) compiled from it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::health::{Monitor, MonitorSpec};
use crate::name::Name;
use crate::policy::{Routing, WhenDown};

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to answer on, UDP and TCP alike.
    pub listen: Vec<SocketAddr>,
    /// Number of UDP worker threads per listen address.
    pub workers: usize,
    /// Largest UDP response we send, whatever the client offers (RFC 6891 §6.2.5).
    pub max_udp_payload: u16,
    /// Limits on TCP clients.
    pub tcp: TcpLimits,
    /// Zones to serve.
    pub zones: Vec<ZoneSource>,
    /// Where drain state is kept across restarts; the only place steerdns
    /// writes to.
    pub state_dir: Option<PathBuf>,
    /// Health monitors, by name.
    pub monitors: BTreeMap<String, Arc<Monitor>>,
    /// Services answered by a routing policy instead of static records.
    pub services: Vec<ServiceConfig>,
    /// The config file, for errors found later (at snapshot load).
    pub file: PathBuf,
}

/// One `[[service]]`: a name answered by a routing policy.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The name (or `*.` wildcard) answered, inside a served zone.
    pub name: Name,
    /// How answers are chosen.
    pub routing: Routing,
    /// TTL of the answers.
    pub ttl: u32,
    /// The monitor watching this node's payload (and the peers'), by name.
    pub monitor: Option<String>,
    /// The nodes serving this service, this node included: one identical
    /// list on every node.
    pub peers: Vec<IpAddr>,
    /// What to answer while this node's payload is down or drained.
    pub when_down: WhenDown,
    /// Line of the `name` key, for errors found at load.
    pub line: usize,
}

/// Limits on TCP service (RFC 7766 §6.2).
#[derive(Debug, Clone)]
pub struct TcpLimits {
    /// Connections open at once; further ones are closed at accept.
    pub max_connections: usize,
    /// A connection with no complete query for this long is closed.
    pub idle_timeout: Duration,
    /// Queries answered on one connection before it is closed.
    pub max_queries_per_connection: u32,
}

/// One zone: its apex and the master file holding it.
#[derive(Debug, Clone)]
pub struct ZoneSource {
    /// The zone's apex, also the initial `$ORIGIN` of its file.
    pub origin: Name,
    /// The master file, resolved against the config file's folder.
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

/// Default largest UDP response: the 2020 DNS flag day value, which avoids
/// IP fragmentation on common paths.
fn default_max_udp_payload() -> u16 {
    1232
}

/// Largest value accepted for `max-udp-payload`; the UDP workers' buffers
/// are this big.
pub const MAX_UDP_PAYLOAD_LIMIT: u16 = 4096;

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn default_tcp_max_connections() -> usize {
    1024
}

/// RFC 7766 §6.2.3 suggests a few seconds for idle TCP connections.
fn default_tcp_idle_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_tcp_max_queries() -> u32 {
    10_000
}

/// Short enough that resolvers notice a failover within half a minute,
/// long enough to keep most lookups cached.
fn default_service_ttl() -> u32 {
    30
}

/// The config file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Spec {
    server: ServerSpec,
    #[serde(default)]
    tcp: TcpSpec,
    #[serde(default, rename = "zone")]
    zones: Vec<ZoneSpec>,
    state: Option<StateSpec>,
    #[serde(default, rename = "monitor")]
    monitors: BTreeMap<String, MonitorSpec>,
    #[serde(default, rename = "service")]
    services: Vec<ServiceSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct StateSpec {
    dir: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ServiceSpec {
    name: toml::Spanned<String>,
    routing: toml::Spanned<String>,
    ttl: Option<u32>,
    monitor: Option<toml::Spanned<String>>,
    peers: Option<Vec<IpAddr>>,
    when_down: Option<toml::Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ServerSpec {
    listen: toml::Spanned<Vec<SocketAddr>>,
    workers: Option<toml::Spanned<usize>>,
    max_udp_payload: Option<toml::Spanned<u16>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct TcpSpec {
    max_connections: Option<toml::Spanned<usize>>,
    idle_timeout: Option<toml::Spanned<String>>,
    max_queries_per_connection: Option<toml::Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ZoneSpec {
    origin: toml::Spanned<String>,
    file: toml::Spanned<String>,
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
        let invalid = |span: std::ops::Range<usize>, message: String| ConfigError::Invalid {
            file: path.to_path_buf(),
            line: line_of(text, span.start),
            message,
        };
        let spec: Spec = toml::from_str(text)
            .map_err(|e| invalid(e.span().unwrap_or(0..0), e.message().to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));

        if spec.server.listen.get_ref().is_empty() {
            return Err(invalid(
                spec.server.listen.span(),
                "server.listen: no address to listen on".into(),
            ));
        }
        let workers = positive(spec.server.workers, "server.workers", default_workers())
            .map_err(|(span, m)| invalid(span, m))?;
        let max_udp_payload = match spec.server.max_udp_payload {
            Some(p) if !(512..=MAX_UDP_PAYLOAD_LIMIT).contains(p.get_ref()) => {
                let message = format!(
                    "server.max-udp-payload: must be between 512 and {MAX_UDP_PAYLOAD_LIMIT}"
                );
                return Err(invalid(p.span(), message));
            }
            Some(p) => p.into_inner(),
            None => default_max_udp_payload(),
        };

        let tcp = TcpLimits {
            max_connections: positive(
                spec.tcp.max_connections,
                "tcp.max-connections",
                default_tcp_max_connections(),
            )
            .map_err(|(span, m)| invalid(span, m))?,
            idle_timeout: match spec.tcp.idle_timeout {
                Some(t) => parse_duration(t.get_ref())
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        invalid(
                            t.span(),
                            format!(
                                "tcp.idle-timeout: bad duration {:?} (e.g. \"10s\", \"500ms\")",
                                t.get_ref()
                            ),
                        )
                    })?,
                None => default_tcp_idle_timeout(),
            },
            max_queries_per_connection: positive(
                spec.tcp.max_queries_per_connection,
                "tcp.max-queries-per-connection",
                default_tcp_max_queries(),
            )
            .map_err(|(span, m)| invalid(span, m))?,
        };

        let mut zones: Vec<ZoneSource> = Vec::new();
        for z in spec.zones {
            let mut origin_text = z.origin.get_ref().clone();
            if !origin_text.ends_with('.') {
                origin_text.push('.');
            }
            let origin = Name::from_text(&origin_text, None).map_err(|e| {
                invalid(
                    z.origin.span(),
                    format!("zone.origin: {:?}: {e}", z.origin.get_ref()),
                )
            })?;
            if zones
                .iter()
                .any(|known| known.origin.eq_ignore_case(&origin))
            {
                return Err(invalid(
                    z.origin.span(),
                    format!("zone.origin: {origin} is listed twice"),
                ));
            }
            zones.push(ZoneSource {
                origin,
                file: base.join(z.file.get_ref()),
            });
        }
        if zones.is_empty() {
            return Err(invalid(0..0, "no [[zone]] to serve".into()));
        }

        let mut monitors = BTreeMap::new();
        for (name, m) in &spec.monitors {
            let monitor = Monitor::from_spec(m).map_err(|e| {
                invalid(
                    e.span.clone().unwrap_or(0..0),
                    format!("monitor.{name}.{e}"),
                )
            })?;
            monitors.insert(name.clone(), Arc::new(monitor));
        }

        let mut services: Vec<ServiceConfig> = Vec::new();
        for sv in spec.services {
            let line = line_of(text, sv.name.span().start);
            let mut name_text = sv.name.get_ref().clone();
            if !name_text.ends_with('.') {
                name_text.push('.');
            }
            let name = Name::from_text(&name_text, None)
                .map_err(|e| {
                    invalid(
                        sv.name.span(),
                        format!("service.name: {:?}: {e}", sv.name.get_ref()),
                    )
                })?
                .to_lowercase();
            if services.iter().any(|known| known.name == name) {
                return Err(invalid(
                    sv.name.span(),
                    format!("service.name: {name} is listed twice"),
                ));
            }
            let routing = sv
                .routing
                .get_ref()
                .parse()
                .map_err(|e| invalid(sv.routing.span(), format!("service.routing: {e}")))?;
            if let Some(m) = &sv.monitor {
                if !monitors.contains_key(m.get_ref()) {
                    return Err(invalid(
                        m.span(),
                        format!("service.monitor: no [monitor.{}] is defined", m.get_ref()),
                    ));
                }
            }
            let peers = sv.peers.unwrap_or_default();
            let when_down = match &sv.when_down {
                Some(w) => w
                    .get_ref()
                    .parse()
                    .map_err(|e| invalid(w.span(), format!("service.when-down: {e}")))?,
                None if peers.is_empty() => WhenDown::Refuse,
                None => WhenDown::Peers,
            };
            if when_down == WhenDown::Peers && peers.is_empty() {
                let span = sv.when_down.as_ref().map_or(sv.name.span(), |w| w.span());
                return Err(invalid(
                    span,
                    "service.when-down: \"peers\" needs a peers list".into(),
                ));
            }
            let ttl = sv.ttl.unwrap_or_else(default_service_ttl);
            services.push(ServiceConfig {
                name,
                routing,
                ttl,
                monitor: sv.monitor.map(|m| m.into_inner()),
                peers,
                when_down,
                line,
            });
        }

        Ok(Config {
            listen: spec.server.listen.into_inner(),
            workers,
            max_udp_payload,
            tcp,
            zones,
            state_dir: spec.state.map(|s| base.join(s.dir)),
            monitors,
            services,
            file: path.to_path_buf(),
        })
    }
}

/// A count that must be at least 1, or `default` when the key is absent.
fn positive<T: Copy + PartialOrd + From<u8>>(
    value: Option<toml::Spanned<T>>,
    field: &str,
    default: T,
) -> Result<T, (std::ops::Range<usize>, String)> {
    match value {
        Some(v) if *v.get_ref() < T::from(1) => {
            Err((v.span(), format!("{field}: must be at least 1")))
        }
        Some(v) => Ok(v.into_inner()),
        None => Ok(default),
    }
}

/// Parses durations like `10s`, `500ms`, `2m`, `1h`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// 1-based line number of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_str(text, Path::new("conf/steerdns.toml"))
    }

    const MINIMAL: &str = "[server]\nlisten = [\"127.0.0.1:5353\"]\n[[zone]]\norigin = \"example.com\"\nfile = \"example.com.zone\"\n";

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

    #[test]
    fn services_and_monitors() {
        let text = format!(
            "{MINIMAL}[state]\ndir = \"state\"\n[monitor.payload]\nprotocol = \"http\"\nport = 8080\n\
             [[service]]\nname = \"*.API.example.com\"\nrouting = \"self\"\nmonitor = \"payload\"\n\
             peers = [\"198.51.100.10\", \"2001:db8::10\"]\n"
        );
        let c = parse(&text).unwrap();
        let s = &c.services[0];
        assert_eq!(s.name.to_string(), "*.api.example.com.");
        assert_eq!((s.ttl, s.when_down, s.line), (30, WhenDown::Peers, 12));
        assert_eq!(c.state_dir.as_deref(), Some(Path::new("conf/state")));
        assert_eq!(c.monitors["payload"].port(), 8080);

        let bad = text.replace("monitor = \"payload\"", "monitor = \"other\"");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(
            e.contains(":14: service.monitor: no [monitor.other]"),
            "{e}"
        );
        let bad = text.replace("routing = \"self\"", "routing = \"random\"");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(
            e.contains(":13: service.routing: unknown routing method"),
            "{e}"
        );
        let bad = text.replace("port = 8080", "port = 8080\ncolour = 1");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.contains(":11:") && e.contains("colour"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("s"), None);
    }
}
