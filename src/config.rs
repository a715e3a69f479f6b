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

use crate::cookie::CookieSecret;
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
    /// Response rate limiting of UDP answers.
    pub rrl: RrlConfig,
    /// The account to switch to once every socket is bound.
    pub run_as: Option<RunAs>,
    /// `[server] cookie-secret`: a DNS cookie secret shared by anycast
    /// nodes (RFC 9018 §6); without it, each server draws its own.
    pub cookie_secret: Option<CookieSecret>,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpLimits {
    /// Connections open at once; further ones are closed at accept.
    pub max_connections: usize,
    /// A connection with no complete query for this long is closed.
    pub idle_timeout: Duration,
    /// Queries answered on one connection before it is closed.
    pub max_queries_per_connection: u32,
    /// Connections open at once from one client address.
    pub max_connections_per_client: usize,
    /// A new connection whose first query is not complete within this
    /// long is closed: a shorter leash than `idle_timeout` for clients that
    /// connect and then send nothing, or one byte at a time.
    pub initial_timeout: Duration,
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
    #[serde(default)]
    rrl: hardening::RrlSpec,
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
    user: Option<toml::Spanned<String>>,
    group: Option<toml::Spanned<String>>,
    cookie_secret: Option<toml::Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct TcpSpec {
    max_connections: Option<toml::Spanned<usize>>,
    idle_timeout: Option<toml::Spanned<String>>,
    max_queries_per_connection: Option<toml::Spanned<u32>>,
    max_connections_per_client: Option<toml::Spanned<usize>>,
    initial_timeout: Option<toml::Spanned<String>>,
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
        let lines = Lines::new(text);
        let invalid = |span: std::ops::Range<usize>, message: String| ConfigError::Invalid {
            file: path.to_path_buf(),
            line: lines.line_of(span.start),
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
            max_connections_per_client: 0,
            initial_timeout: Duration::ZERO,
        };
        let tcp = hardening::tcp_limits(
            tcp,
            spec.tcp.max_connections_per_client,
            spec.tcp.initial_timeout,
        )
        .map_err(|(span, m)| invalid(span, m))?;
        let rrl = hardening::rrl(&spec.rrl).map_err(|(span, m)| invalid(span, m))?;
        let run_as = hardening::run_as(spec.server.user, spec.server.group)
            .map_err(|(span, m)| invalid(span, m))?;
        let cookie_secret = match &spec.server.cookie_secret {
            None => None,
            Some(hex) => Some(CookieSecret::from_hex(hex.get_ref()).ok_or_else(|| {
                let m = "server.cookie-secret: must be 32 hexadecimal digits (16 bytes)";
                invalid(hex.span(), m.to_string())
            })?),
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
        // A set, not a scan of `services`: configs with 10,000 services load
        // in linear time.
        let mut service_names = std::collections::HashSet::new();
        for sv in spec.services {
            let line = lines.line_of(sv.name.span().start);
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
            if !service_names.insert(name.clone()) {
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
            rrl,
            run_as,
            cookie_secret,
            zones,
            state_dir: spec.state.map(|s| base.join(s.dir)),
            monitors,
            services,
            file: path.to_path_buf(),
        })
    }
}

// ---- Hardening: `[rrl]`, the TCP client limits and `[server] user` ----

/// Response rate limiting (the `[rrl]` table), in the style of BIND 9's
/// `rate-limit`: see [`crate::rrl`] for how responses are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlConfig {
    /// Whether UDP responses are limited at all.
    pub enabled: bool,
    /// Limit per second for answers, NODATA and referrals, per client
    /// prefix and name (0: no limit).
    pub responses_per_second: u32,
    /// Limit per second for NXDOMAIN answers, per client prefix and zone
    /// (0: no limit).
    pub nxdomains_per_second: u32,
    /// Limit per second for error responses (REFUSED, FORMERR, NOTIMP,
    /// ...), per client prefix (0: no limit).
    pub errors_per_second: u32,
    /// Every `slip`-th limited response is sent truncated instead of being
    /// dropped (0: never, 1: always).
    pub slip: u8,
    /// Seconds of excess a client must pay back before it is answered
    /// again; also how long an idle account is remembered.
    pub window: u32,
    /// IPv4 clients are grouped by this prefix length.
    pub ipv4_prefix: u8,
    /// IPv6 clients are grouped by this prefix length.
    pub ipv6_prefix: u8,
    /// Accounts in the shared table (a power of two).
    pub table_size: usize,
    /// Clients never limited.
    pub exempt_clients: Vec<ClientPrefix>,
}

impl Default for RrlConfig {
    fn default() -> RrlConfig {
        RrlConfig {
            enabled: true,
            responses_per_second: default_rrl_rate(),
            nxdomains_per_second: default_rrl_rate(),
            errors_per_second: default_rrl_rate(),
            slip: default_rrl_slip(),
            window: default_rrl_window(),
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            table_size: default_rrl_table_size(),
            exempt_clients: default_rrl_exempt(),
        }
    }
}

/// An address prefix such as `192.0.2.0/24`; the address is stored with
/// its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientPrefix {
    /// The network address.
    pub addr: IpAddr,
    /// The prefix length: up to 32 for IPv4, 128 for IPv6.
    pub len: u8,
}

impl ClientPrefix {
    /// Parses `addr/len`, or a bare address (a host prefix).
    pub fn parse(text: &str) -> Option<ClientPrefix> {
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr.parse::<IpAddr>().ok()?, Some(len.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        if len > max {
            return None;
        }
        Some(ClientPrefix {
            addr: mask_addr(addr, len),
            len,
        })
    }

    /// Whether `ip` lies inside the prefix. An IPv4-mapped IPv6 address
    /// counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(a) => {
                (self.v4_network()).is_some_and(|(net, mask)| u32::from(a) & mask == net)
            }
            IpAddr::V6(a) => {
                (self.v6_network()).is_some_and(|(net, mask)| u128::from(a) & mask == net)
            }
        }
    }

    /// An IPv4 prefix as its network and netmask, for matching many
    /// addresses with an AND and a compare each; `None` for IPv6.
    pub(crate) fn v4_network(&self) -> Option<(u32, u32)> {
        match self.addr {
            IpAddr::V4(a) => Some((u32::from(a), v4_mask(self.len))),
            IpAddr::V6(_) => None,
        }
    }

    /// An IPv6 prefix as its network and netmask; `None` for IPv4.
    pub(crate) fn v6_network(&self) -> Option<(u128, u128)> {
        match self.addr {
            IpAddr::V6(a) => Some((u128::from(a), v6_mask(self.len))),
            IpAddr::V4(_) => None,
        }
    }
}

/// `addr` with every bit past `len` cleared.
fn mask_addr(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) & v4_mask(len)).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) & v6_mask(len)).into()),
    }
}

/// The IPv4 netmask of a `len`-bit prefix (lengths past 32 count as 32).
pub(crate) fn v4_mask(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

/// The IPv6 netmask of a `len`-bit prefix (lengths past 128 count as 128).
pub(crate) fn v6_mask(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

/// The account the server switches to after binding its sockets
/// (`[server] user` and `group`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// A user name from the user database, or a numeric uid.
    pub user: String,
    /// A group name or numeric gid; `None`: the user's primary group.
    pub group: Option<String>,
}

/// 20 identical responses a second per client prefix. A caching resolver
/// asks for a name once per TTL per cache, so even a /24 of a big public
/// resolver with hundreds of caches stays far below it at our 30-second
/// TTLs, while a reflection attack gets 20 responses a second per victim
/// prefix and name. Between BIND's ARM examples (5-10) and NSD's default
/// (200); limited clients are still served over TCP thanks to `slip`.
fn default_rrl_rate() -> u32 {
    20
}

/// BIND's, NSD's and Knot's default: every other limited response is sent
/// truncated, so a real resolver retries over TCP within a round trip or
/// two, and a spoofed victim gets at most half the (tiny) TC packets.
fn default_rrl_slip() -> u8 {
    2
}

/// BIND's default `window`.
fn default_rrl_window() -> u32 {
    15
}

/// 2^18 accounts (2 MiB): few collisions with tens of thousands of clients
/// active in one window.
fn default_rrl_table_size() -> usize {
    1 << 18
}

/// Loopback is exempt: a packet from 127.0.0.0/8 or ::1 cannot arrive
/// from outside the host (RFC 1122 §3.2.1.3, RFC 4291 §2.5.3; Linux drops
/// such "martians"), so it cannot be a spoofed reflection, and local
/// monitoring must not be throttled.
fn default_rrl_exempt() -> Vec<ClientPrefix> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|p| ClientPrefix::parse(p))
        .collect()
}

/// Largest `*-per-second` value: keeps a full window of debt within the
/// 32-bit balance of an account (see `crate::rrl`).
pub const MAX_RRL_RATE: u32 = 100_000;

/// Largest `window`, as in BIND.
pub const MAX_RRL_WINDOW: u32 = 3600;

/// Largest `slip`, as in BIND.
pub const MAX_RRL_SLIP: u8 = 10;

/// Default connections per client address: a resolver needs a few
/// (RFC 7766 §6.2.2 asks clients to reuse one); a flood from one address
/// cannot take more than a sliver of `max-connections`.
fn default_tcp_max_per_client() -> usize {
    16
}

/// Default time for the first query of a connection, when shorter than
/// `idle-timeout`: a real client sends its query right after the
/// handshake, so five seconds is generous, and a slowloris client holds a
/// slot half as long as under the idle timeout.
fn default_tcp_initial_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Validation of the hardening keys, kept apart from the rest of
/// [`Config::from_str`].
mod hardening {
    use super::*;

    type Invalid = (std::ops::Range<usize>, String);

    /// The `[rrl]` table as written.
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    pub(super) struct RrlSpec {
        enabled: Option<bool>,
        responses_per_second: Option<toml::Spanned<u32>>,
        nxdomains_per_second: Option<toml::Spanned<u32>>,
        errors_per_second: Option<toml::Spanned<u32>>,
        slip: Option<toml::Spanned<u8>>,
        window: Option<toml::Spanned<String>>,
        ipv4_prefix: Option<toml::Spanned<u8>>,
        ipv6_prefix: Option<toml::Spanned<u8>>,
        table_size: Option<toml::Spanned<usize>>,
        exempt_clients: Option<Vec<toml::Spanned<String>>>,
    }

    /// A value that must lie in `range`, or `default` when absent.
    fn within<T: Copy + PartialOrd + std::fmt::Display>(
        value: &Option<toml::Spanned<T>>,
        field: &str,
        range: std::ops::RangeInclusive<T>,
        default: T,
    ) -> Result<T, Invalid> {
        match value {
            Some(v) if !range.contains(v.get_ref()) => Err((
                v.span(),
                format!(
                    "{field}: must be between {} and {}",
                    range.start(),
                    range.end()
                ),
            )),
            Some(v) => Ok(*v.get_ref()),
            None => Ok(default),
        }
    }

    /// A non-zero duration key.
    fn duration(value: &toml::Spanned<String>, field: &str) -> Result<Duration, Invalid> {
        parse_duration(value.get_ref())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                (
                    value.span(),
                    format!(
                        "{field}: bad duration {:?} (e.g. \"5s\", \"500ms\")",
                        value.get_ref()
                    ),
                )
            })
    }

    pub(super) fn rrl(spec: &RrlSpec) -> Result<RrlConfig, Invalid> {
        let defaults = RrlConfig::default();
        let responses = within(
            &spec.responses_per_second,
            "rrl.responses-per-second",
            0..=MAX_RRL_RATE,
            defaults.responses_per_second,
        )?;
        let window = match &spec.window {
            Some(w) => {
                let d = duration(w, "rrl.window")?;
                let secs = d.as_secs();
                if d.subsec_nanos() != 0 || !(1..=u64::from(MAX_RRL_WINDOW)).contains(&secs) {
                    return Err((
                        w.span(),
                        format!("rrl.window: whole seconds from 1s to {MAX_RRL_WINDOW}s"),
                    ));
                }
                secs as u32
            }
            None => defaults.window,
        };
        let table_size = within(
            &spec.table_size,
            "rrl.table-size",
            1024..=1 << 26,
            defaults.table_size,
        )?;
        let mut exempt_clients = Vec::new();
        match &spec.exempt_clients {
            None => exempt_clients = defaults.exempt_clients,
            Some(list) => {
                for item in list {
                    let prefix = ClientPrefix::parse(item.get_ref()).ok_or_else(|| {
                        (
                            item.span(),
                            format!(
                                "rrl.exempt-clients: bad prefix {:?} (e.g. \"192.0.2.0/24\")",
                                item.get_ref()
                            ),
                        )
                    })?;
                    exempt_clients.push(prefix);
                }
            }
        }
        Ok(RrlConfig {
            enabled: spec.enabled.unwrap_or(defaults.enabled),
            responses_per_second: responses,
            // As in BIND, the other rates default to responses-per-second.
            nxdomains_per_second: within(
                &spec.nxdomains_per_second,
                "rrl.nxdomains-per-second",
                0..=MAX_RRL_RATE,
                responses,
            )?,
            errors_per_second: within(
                &spec.errors_per_second,
                "rrl.errors-per-second",
                0..=MAX_RRL_RATE,
                responses,
            )?,
            slip: within(&spec.slip, "rrl.slip", 0..=MAX_RRL_SLIP, defaults.slip)?,
            window,
            ipv4_prefix: within(&spec.ipv4_prefix, "rrl.ipv4-prefix", 1..=32, 24)?,
            ipv6_prefix: within(&spec.ipv6_prefix, "rrl.ipv6-prefix", 1..=128, 56)?,
            table_size: table_size.next_power_of_two(),
            exempt_clients,
        })
    }

    /// Adds the per-client cap and the initial timeout to `tcp`.
    pub(super) fn tcp_limits(
        mut tcp: TcpLimits,
        max_per_client: Option<toml::Spanned<usize>>,
        initial_timeout: Option<toml::Spanned<String>>,
    ) -> Result<TcpLimits, Invalid> {
        tcp.max_connections_per_client = positive(
            max_per_client,
            "tcp.max-connections-per-client",
            default_tcp_max_per_client(),
        )?;
        tcp.initial_timeout = match &initial_timeout {
            Some(t) => {
                let d = duration(t, "tcp.initial-timeout")?;
                if d > tcp.idle_timeout {
                    return Err((
                        t.span(),
                        "tcp.initial-timeout: must not exceed tcp.idle-timeout".into(),
                    ));
                }
                d
            }
            None => default_tcp_initial_timeout().min(tcp.idle_timeout),
        };
        Ok(tcp)
    }

    pub(super) fn run_as(
        user: Option<toml::Spanned<String>>,
        group: Option<toml::Spanned<String>>,
    ) -> Result<Option<RunAs>, Invalid> {
        let nonempty = |v: &toml::Spanned<String>, field: &str| {
            if v.get_ref().trim().is_empty() {
                Err((v.span(), format!("{field}: must not be empty")))
            } else {
                Ok(v.get_ref().clone())
            }
        };
        match (&user, &group) {
            (None, None) => Ok(None),
            (None, Some(g)) => Err((g.span(), "server.group: needs server.user".into())),
            (Some(u), group) => Ok(Some(RunAs {
                user: nonempty(u, "server.user")?,
                group: group
                    .as_ref()
                    .map(|g| nonempty(g, "server.group"))
                    .transpose()?,
            })),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const MINIMAL: &str = "[server]\nlisten = [\"127.0.0.1:5353\"]\n[[zone]]\norigin = \"example.com\"\nfile = \"example.com.zone\"\n";

        fn parse(extra: &str) -> Result<Config, String> {
            let text = format!("{MINIMAL}{extra}");
            Config::from_str(&text, Path::new("steerdns.toml")).map_err(|e| e.to_string())
        }

        #[test]
        fn defaults() {
            let c = parse("").unwrap();
            assert_eq!(c.rrl, RrlConfig::default());
            assert!(c.rrl.enabled);
            assert_eq!(
                (c.rrl.responses_per_second, c.rrl.slip, c.rrl.window),
                (20, 2, 15)
            );
            assert_eq!((c.rrl.ipv4_prefix, c.rrl.ipv6_prefix), (24, 56));
            assert!(c.rrl.exempt_clients[0].contains("127.1.2.3".parse().unwrap()));
            assert!(c.rrl.exempt_clients[1].contains("::1".parse().unwrap()));
            assert_eq!(c.tcp.max_connections_per_client, 16);
            assert_eq!(c.tcp.initial_timeout, Duration::from_secs(5));
            assert_eq!(c.run_as, None);
            // A short idle timeout shortens the default initial one.
            let c = parse("[tcp]\nidle-timeout = \"2s\"\n").unwrap();
            assert_eq!(c.tcp.initial_timeout, Duration::from_secs(2));
        }

        #[test]
        fn every_key() {
            let c = parse(
                "[rrl]\nenabled = false\nresponses-per-second = 50\nslip = 1\nwindow = \"5s\"\n\
                 ipv4-prefix = 32\nipv6-prefix = 64\ntable-size = 5000\n\
                 exempt-clients = [\"192.0.2.0/24\", \"2001:db8::1\"]\n\
                 [tcp]\nmax-connections-per-client = 3\ninitial-timeout = \"500ms\"\n",
            )
            .unwrap();
            let rrl = &c.rrl;
            assert!(!rrl.enabled);
            // The other rates follow responses-per-second, as in BIND.
            assert_eq!(
                (
                    rrl.responses_per_second,
                    rrl.nxdomains_per_second,
                    rrl.errors_per_second
                ),
                (50, 50, 50)
            );
            assert_eq!((rrl.slip, rrl.window, rrl.table_size), (1, 5, 8192));
            assert_eq!((rrl.ipv4_prefix, rrl.ipv6_prefix), (32, 64));
            assert_eq!(
                rrl.exempt_clients,
                [
                    ClientPrefix::parse("192.0.2.0/24").unwrap(),
                    ClientPrefix::parse("2001:db8::1/128").unwrap()
                ]
            );
            assert_eq!(c.tcp.max_connections_per_client, 3);
            assert_eq!(c.tcp.initial_timeout, Duration::from_millis(500));

            let c = parse("[rrl]\nerrors-per-second = 0\nnxdomains-per-second = 7\n").unwrap();
            assert_eq!(
                (c.rrl.errors_per_second, c.rrl.nxdomains_per_second),
                (0, 7)
            );

            let text = MINIMAL.replace(
                "[[zone]]",
                "user = \"nobody\"\ngroup = \"nogroup\"\n[[zone]]",
            );
            let with_user = Config::from_str(&text, Path::new("x.toml")).unwrap();
            assert_eq!(
                with_user.run_as,
                Some(RunAs {
                    user: "nobody".into(),
                    group: Some("nogroup".into())
                })
            );

            assert_eq!(parse("").unwrap().cookie_secret, None);
            let secret = |value: &str| {
                let line = format!("cookie-secret = \"{value}\"\n[[zone]]");
                Config::from_str(&MINIMAL.replace("[[zone]]", &line), Path::new("x.toml"))
                    .map(|c| c.cookie_secret)
                    .map_err(|e| e.to_string())
            };
            assert_eq!(
                secret("E5E973E5A6B2A43F48E7DC849E37BFCF"),
                Ok(CookieSecret::from_hex("e5e973e5a6b2a43f48e7dc849e37bfcf"))
            );
            let e = secret("e5e973e5").unwrap_err();
            assert!(e.contains(":3: server.cookie-secret: must be 32"), "{e}");
        }

        #[test]
        fn bad_values_name_line_and_key() {
            for (extra, want) in [
                (
                    "[rrl]\nslip = 11\n",
                    ":7: rrl.slip: must be between 0 and 10",
                ),
                (
                    "[rrl]\nwindow = \"1500ms\"\n",
                    ":7: rrl.window: whole seconds",
                ),
                ("[rrl]\nwindow = \"2h\"\n", ":7: rrl.window: whole seconds"),
                (
                    "[rrl]\nresponses-per-second = 100001\n",
                    ":7: rrl.responses-per-second",
                ),
                ("[rrl]\nipv4-prefix = 33\n", ":7: rrl.ipv4-prefix"),
                ("[rrl]\nipv6-prefix = 0\n", ":7: rrl.ipv6-prefix"),
                ("[rrl]\ntable-size = 10\n", ":7: rrl.table-size"),
                (
                    "[rrl]\nexempt-clients = [\"10.0.0.0/33\"]\n",
                    ":7: rrl.exempt-clients: bad prefix",
                ),
                ("[rrl]\nrate = 5\n", ":7:"),
                (
                    "[tcp]\nmax-connections-per-client = 0\n",
                    ":7: tcp.max-connections-per-client",
                ),
                (
                    "[tcp]\ninitial-timeout = \"11s\"\n",
                    ":7: tcp.initial-timeout: must not exceed",
                ),
                (
                    "[tcp]\ninitial-timeout = \"0s\"\n",
                    ":7: tcp.initial-timeout: bad duration",
                ),
            ] {
                let e = parse(extra).unwrap_err();
                assert!(e.contains(want), "{extra:?}: {e}");
            }
            let text = MINIMAL.replace("[[zone]]", "group = \"nogroup\"\n[[zone]]");
            let e = Config::from_str(&text, Path::new("x.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(":3: server.group: needs server.user"), "{e}");
            let text = MINIMAL.replace("[[zone]]", "user = \" \"\n[[zone]]");
            let e = Config::from_str(&text, Path::new("x.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(":3: server.user: must not be empty"), "{e}");
        }

        #[test]
        fn prefixes() {
            let p = ClientPrefix::parse("192.0.2.77/24").unwrap();
            assert_eq!(p.addr.to_string(), "192.0.2.0");
            assert!(p.contains("192.0.2.1".parse().unwrap()));
            assert!(p.contains("::ffff:192.0.2.1".parse().unwrap()));
            assert!(!p.contains("192.0.3.1".parse().unwrap()));
            assert!(!p.contains("2001:db8::".parse().unwrap()));
            let all = ClientPrefix::parse("::/0").unwrap();
            assert!(all.contains("2001:db8::1".parse().unwrap()));
            assert!(!all.contains("192.0.2.1".parse().unwrap()));
            for bad in ["", "192.0.2.1/", "192.0.2.1/x", "::/129", "host/8"] {
                assert_eq!(ClientPrefix::parse(bad), None, "{bad}");
            }
        }
    }
}

// ---- end of hardening ----

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
mod tests {
    use super::*;

    #[test]
    fn byte_offsets_become_line_numbers() {
        let lines = Lines::new("a\nbc\n\nd");
        let got: Vec<usize> = (0..8).map(|o| lines.line_of(o)).collect();
        // a \n b c \n \n d, and one past the end
        assert_eq!(got, [1, 1, 2, 2, 2, 3, 4, 4]);
    }

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
