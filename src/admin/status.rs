//! The server's state as the admin API reports it: services with their
//! endpoints and health, recent health changes, drains, version, uptime
//! and the config digest.
//!
//! One model for the JSON answers, the status page and `steerdns status`,
//! so the three cannot disagree. Built from the live snapshot's health
//! view, the probes' [`Journal`] and what the reloader published; it reads
//! atomics and takes the journal's lock briefly, never anything the UDP
//! workers wait on.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::cluster::ClusterStatus;
use crate::digest::FileDigest;
use crate::drain::{DrainTarget, Named};
use crate::health::{HealthId, Journal, SlotStatus};
use crate::maintenance::Phase;
use crate::policy::{Family, Method, ServiceRule, Target};
use crate::reload::Loaded;
use crate::snapshot::Snapshot;

/// Everything `GET /api/v1/status` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// The steerdns version.
    pub version: String,
    /// When the server started (RFC 3339, UTC).
    pub started: String,
    /// Seconds since the start.
    pub uptime_seconds: u64,
    /// The configuration in force.
    pub config: ConfigStatus,
    /// Whether the whole node is drained (from the drain file).
    pub node_drained: bool,
    /// Every service, in configuration order.
    pub services: Vec<ServiceStatus>,
    /// Recent health changes, newest first.
    pub changes: Vec<Change>,
    /// Everything drained now, by an operator or a maintenance window,
    /// with when it is safe to stop.
    #[serde(default)]
    pub drains: Vec<DrainStatus>,
    /// Every scheduled maintenance window, in configuration order.
    #[serde(default)]
    pub maintenance: Vec<WindowStatus>,
    /// The cluster as this node sees it (`[cluster]`), if configured.
    #[serde(default)]
    pub cluster: Option<ClusterStatus>,
}

/// Something drained, and when it is safe to stop: no resolver holds an
/// answer naming it any more (`crate::last_sent`). Per node: a cluster
/// waits for the latest `safe_at` over its nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrainStatus {
    /// What is drained, in words: `node`, a service name, or `SERVICE
    /// endpoint NAME`.
    pub target: String,
    /// The service, for service and endpoint drains.
    pub service: Option<String>,
    /// The endpoint, for endpoint drains.
    pub endpoint: Option<String>,
    /// `drain` (an operator's) or `maintenance` (a window's).
    pub reason: String,
    /// This node's identity (`[server] identity`), empty when hidden.
    pub node: String,
    /// Whether the answer path already leaves it out: false for a moment
    /// after a drain (the server applies the drain file within a second),
    /// and for a drained service whose method has no local payload.
    pub in_force: bool,
    /// The last second an answer named it (RFC 3339); the server's start
    /// when none did since.
    pub last_sent: String,
    /// The longest TTL of those answers.
    pub ttl: u32,
    /// From when it is safe to stop (RFC 3339): `last_sent` + 1 s + `ttl`.
    pub safe_at: String,
    /// `safe_at` in Unix seconds.
    pub safe_at_unix: u64,
    /// Seconds until `safe_at`; 0 once it is safe.
    pub safe_in_seconds: u64,
    /// With `[cluster]`, for service and endpoint drains: when it is safe
    /// to stop on every node.
    #[serde(default)]
    pub cluster: Option<ClusterSafe>,
}

/// When a drained service or endpoint is safe to stop on every node of the
/// cluster: once every other node has reported it drained (and no longer
/// answered with) within `max-age`, the latest of their safe-to-stop times
/// and this node's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSafe {
    /// Nodes that have not reported it drained: they may still answer
    /// with it, so it is not safe anywhere yet.
    pub waiting_for: Vec<String>,
    /// From when it is safe to stop on every node (RFC 3339), once no node
    /// is waited for.
    pub safe_at: Option<String>,
    /// `safe_at` in Unix seconds.
    pub safe_at_unix: Option<u64>,
    /// Seconds until `safe_at`; 0 once it is safe everywhere.
    pub safe_in_seconds: Option<u64>,
}

impl ClusterSafe {
    /// The cluster's view of a drain safe here from `own`, at `now`, given
    /// what the other nodes reported (see
    /// [`crate::cluster::PeerTable::safe_everywhere`]).
    pub fn new(everywhere: Result<u64, Vec<String>>, now: u64) -> ClusterSafe {
        match everywhere {
            Ok(at) => ClusterSafe {
                waiting_for: Vec::new(),
                safe_at: Some(rfc3339(at_unix(at))),
                safe_at_unix: Some(at),
                safe_in_seconds: Some(at.saturating_sub(now)),
            },
            Err(waiting_for) => ClusterSafe {
                waiting_for,
                safe_at: None,
                safe_at_unix: None,
                safe_in_seconds: None,
            },
        }
    }
}

/// One scheduled maintenance window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowStatus {
    /// What it drains, in words.
    pub target: String,
    /// When it starts (RFC 3339).
    pub start: String,
    /// When it ends (RFC 3339).
    pub end: String,
    /// `upcoming`, `active` or `over`.
    pub phase: String,
    /// Seconds until it starts; 0 once it has.
    pub starts_in_seconds: u64,
    /// Why, as the config says.
    pub note: Option<String>,
}

/// The configuration in force.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigStatus {
    /// The config file.
    pub file: String,
    /// SHA-256 over the config file and every zone file: equal on nodes
    /// that run the same configuration. `None` for a moment after the
    /// start, while it is computed.
    pub sha256: Option<String>,
    /// Each file with its own SHA-256.
    pub files: Vec<FileStatus>,
    /// When it was loaded (RFC 3339).
    pub loaded: String,
    /// The last reload attempt, if any.
    pub last_reload: Option<ReloadStatus>,
}

/// One loaded file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileStatus {
    /// `config`, or the zone's origin.
    pub role: String,
    /// The path.
    pub path: String,
    /// Its SHA-256, `null` if it could not be read.
    pub sha256: Option<String>,
}

/// The last reload attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// When (RFC 3339).
    pub at: String,
    /// Whether the new configuration went into force.
    pub ok: bool,
    /// Why it was refused: `file:line: message`, one per line.
    pub error: Option<String>,
}

/// One service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Its name (lowercase, with the final dot).
    pub name: String,
    /// The routing method.
    pub method: String,
    /// TTL of its answers.
    pub ttl: u32,
    /// `up` (every endpoint serving), `degraded` (some) or `down` (none).
    pub health: String,
    /// Whether the service itself is drained (`self` services; endpoint
    /// drains are on the endpoints).
    pub drained: bool,
    /// Whether a maintenance window drains the service itself (`self`
    /// services) now.
    #[serde(default)]
    pub maintenance: bool,
    /// Queries per second answered for the service over the last minute
    /// or so (`super::rates`); `null` when unknown (no metrics, or no
    /// reading yet). The page shows a column as soon as any service has a
    /// rate.
    pub queries_per_second: Option<f64>,
    /// Its endpoints; for a `self` service this node's payload and the
    /// peers.
    pub endpoints: Vec<EndpointStatus>,
}

/// One endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointStatus {
    /// Its name.
    pub name: String,
    /// What it answers with, in words: addresses, `CNAME target`,
    /// `service name`.
    pub target: String,
    /// Whether it may appear in answers now (fit for A or AAAA: not
    /// drained, probe up).
    pub serving: bool,
    /// `up`, `down`, or `partial` (some addresses down).
    pub health: String,
    /// Whether an operator drained it.
    pub drained: bool,
    /// Whether a maintenance window drains it now.
    #[serde(default)]
    pub maintenance: bool,
    /// Weight (weighted routing).
    pub weight: Option<u32>,
    /// Priority (priority routing).
    pub priority: Option<u32>,
    /// Its probes, one per probed address (or one for the endpoint).
    pub probes: Vec<ProbeStatus>,
}

/// One probe and its last result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeStatus {
    /// The address and port probed.
    pub target: String,
    /// `tcp`, `http` or `https`.
    pub protocol: String,
    /// The verdict in force.
    pub health: String,
    /// Since when the verdict holds (RFC 3339), once the probe ran.
    pub since: Option<String>,
    /// The last run, once the probe ran.
    pub last: Option<LastRun>,
}

/// A probe's last run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastRun {
    /// When it finished (RFC 3339).
    pub at: String,
    /// `ok` or `failed`.
    pub status: String,
    /// How long it took, in milliseconds.
    pub latency_ms: f64,
    /// Why it failed.
    pub error: Option<String>,
}

/// One change of a probe's verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    /// When (RFC 3339).
    pub at: String,
    /// What is probed.
    pub probe: String,
    /// The address probed.
    pub target: String,
    /// `up` or `down`.
    pub to: String,
    /// Why it went down.
    pub reason: Option<String>,
}

/// Queries per second answered for the service named by the argument.
pub type QueryRates = dyn Fn(&str) -> Option<f64> + Sync;

/// What [`Status::build`] reads.
pub struct Sources<'a> {
    /// The snapshot in force.
    pub snapshot: &'a Snapshot,
    /// The probes' journal.
    pub journal: &'a Journal,
    /// What the reloader published.
    pub loaded: &'a Loaded,
    /// Whether the drain file drains the node.
    pub node_drained: bool,
    /// When the server started.
    pub started: SystemTime,
    /// Time since the start.
    pub uptime: Duration,
    /// Queries per second answered for a service, by its name, from the
    /// metrics module's per-service counters (`super::rates`). `None`:
    /// rates unknown, shown as `null` and left off the page.
    pub rates: Option<&'a QueryRates>,
    /// What the drain file drains.
    pub drains: &'a [DrainTarget],
    /// The time the status is for (Unix seconds).
    pub now: u64,
    /// The cluster's state, when `[cluster]` is configured.
    pub cluster: Option<ClusterStatus>,
}

impl Status {
    /// Builds the status from its sources.
    pub fn build(s: &Sources<'_>) -> Status {
        let snap = s.snapshot;
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            started: rfc3339(s.started),
            uptime_seconds: s.uptime.as_secs(),
            config: config_status(s.loaded),
            node_drained: s.node_drained,
            services: snap
                .services
                .iter()
                .map(|rule| {
                    let mut service = service_status(snap, s.journal, rule);
                    service.queries_per_second = s.rates.and_then(|rate| rate(&service.name));
                    service
                })
                .collect(),
            changes: s
                .journal
                .changes()
                .into_iter()
                .map(|c| Change {
                    at: rfc3339(c.at),
                    probe: c.probe.to_string(),
                    target: c.target.to_string(),
                    to: c.to.to_string(),
                    reason: c.reason,
                })
                .collect(),
            drains: drains_of(snap, s.drains, s.now),
            maintenance: snap
                .maintenance
                .iter()
                .map(|w| WindowStatus {
                    target: w.target.to_string(),
                    start: rfc3339(at_unix(w.start)),
                    end: rfc3339(at_unix(w.end)),
                    phase: Phase::of(w, s.now).as_str().to_string(),
                    starts_in_seconds: w.start.saturating_sub(s.now),
                    note: w.note.clone(),
                })
                .collect(),
            cluster: s.cluster.clone(),
        }
    }
}

/// The time `secs` Unix seconds after the epoch.
fn at_unix(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// `target`, drained for `reason`, with when it is safe to stop at `now`;
/// `None` when the snapshot does not have it.
pub fn drain_status(
    snap: &Snapshot,
    target: &DrainTarget,
    reason: &str,
    now: u64,
) -> Option<DrainStatus> {
    let named = Named::find(snap, target)?;
    let safe = named.safe_to_stop(snap, now);
    let (service, endpoint) = match target {
        DrainTarget::Node => (None, None),
        DrainTarget::Service(s) => (Some(s.clone()), None),
        DrainTarget::Endpoint { service, endpoint } => {
            (Some(service.clone()), Some(endpoint.clone()))
        }
    };
    Some(DrainStatus {
        target: target.to_string(),
        service,
        endpoint,
        reason: reason.to_string(),
        node: snap
            .identity
            .nsid()
            .map_or(String::new(), |n| String::from_utf8_lossy(n).into_owned()),
        in_force: named.in_force(snap),
        last_sent: rfc3339(at_unix(safe.last_sent)),
        ttl: safe.ttl,
        safe_at: rfc3339(at_unix(safe.safe_at)),
        safe_at_unix: safe.safe_at,
        safe_in_seconds: safe.safe_in,
        cluster: None,
    })
}

/// The operator's `drains`, then the targets of the windows active at
/// `now`, each with when it is safe to stop.
pub fn drains_of(snap: &Snapshot, drains: &[DrainTarget], now: u64) -> Vec<DrainStatus> {
    let windows = snap
        .maintenance
        .iter()
        .filter(|w| Phase::of(w, now) == Phase::Active)
        .map(|w| (&w.target, "maintenance"));
    drains
        .iter()
        .map(|t| (t, "drain"))
        .chain(windows)
        .filter_map(|(target, reason)| drain_status(snap, target, reason, now))
        .collect()
}

fn config_status(loaded: &Loaded) -> ConfigStatus {
    let file = |role: &str, d: &FileDigest| FileStatus {
        role: role.to_string(),
        path: d.path.display().to_string(),
        sha256: d.sha256.clone(),
    };
    let digest = loaded.digest.as_deref();
    ConfigStatus {
        file: digest.map_or(String::new(), |d| d.config.path.display().to_string()),
        sha256: digest.map(|d| d.sha256.clone()),
        files: digest.map_or(Vec::new(), |d| {
            std::iter::once(file("config", &d.config))
                .chain(d.zones.iter().map(|(origin, z)| file(origin, z)))
                .collect()
        }),
        loaded: rfc3339(loaded.at),
        last_reload: loaded
            .last_attempt
            .as_ref()
            .map(|(at, error)| ReloadStatus {
                at: rfc3339(*at),
                ok: error.is_none(),
                error: error.clone(),
            }),
    }
}

fn service_status(snap: &Snapshot, journal: &Journal, rule: &ServiceRule) -> ServiceStatus {
    let endpoints: Vec<EndpointStatus> = match &rule.method {
        Method::SelfAddress(s) => {
            let mut list = vec![slot_endpoint(
                snap,
                journal,
                "this node",
                "the address asked".into(),
                s.local,
            )];
            for p in s.peers.iter() {
                list.push(slot_endpoint(
                    snap,
                    journal,
                    &format!("peer {}", p.address),
                    p.address.to_string(),
                    p.health,
                ));
            }
            list
        }
        _ => rule
            .endpoints
            .iter()
            .map(|e| {
                let own = status_of(snap, e.slot);
                let mut slots = vec![e.slot];
                let target = match &e.target {
                    Target::Addresses(list) => {
                        slots.extend(list.iter().map(|a| a.slot));
                        let ips: Vec<String> = list.iter().map(|a| a.ip.to_string()).collect();
                        ips.join(", ")
                    }
                    Target::Cname(name) => format!("CNAME {name}"),
                    Target::Service { index, .. } => match snap.services.get(*index as usize) {
                        Some(child) => format!("service {}", child.name),
                        None => "service ?".into(),
                    },
                };
                slots.dedup();
                // The endpoint's own slot carries its drain; its verdict
                // counts only when a probe writes it.
                let probed: Vec<HealthId> = slots
                    .iter()
                    .copied()
                    .filter(|&id| snap.probes.iter().any(|p| p.slot == id))
                    .collect();
                let judged = if probed.is_empty() {
                    &slots[..1]
                } else {
                    &probed[..]
                };
                let serving = [Family::V4, Family::V6]
                    .into_iter()
                    .any(|f| rule.fit(&snap.services, e, &snap.health, f));
                let weighted = matches!(rule.method, Method::Weighted(_));
                let prioritised = matches!(rule.method, Method::Priority(_));
                EndpointStatus {
                    name: e.name.to_string(),
                    target,
                    serving,
                    health: health_word(judged.iter().map(|&id| status_of(snap, id))),
                    drained: own.drained,
                    maintenance: own.maintenance,
                    weight: weighted.then_some(e.weight),
                    priority: prioritised.then_some(e.priority),
                    probes: probes_of(snap, journal, &slots),
                }
            })
            .collect(),
    };
    let serving = endpoints.iter().filter(|e| e.serving).count();
    let health = match serving {
        n if n == endpoints.len() => "up",
        0 => "down",
        _ => "degraded",
    };
    // A `self` service stands or falls with this node's payload.
    let (health, drained, maintenance) = match rule.local_slot() {
        Some(id) => {
            let st = status_of(snap, id);
            let word = if st.is_serving() { "up" } else { "down" };
            (word, st.drained, st.maintenance)
        }
        None => (health, false, false),
    };
    ServiceStatus {
        name: rule.name.to_string(),
        method: rule.method.name().to_string(),
        ttl: rule.ttl,
        health: health.to_string(),
        drained,
        maintenance,
        queries_per_second: None,
        endpoints,
    }
}

/// A `self` service's payload or peer: one slot.
fn slot_endpoint(
    snap: &Snapshot,
    journal: &Journal,
    name: &str,
    target: String,
    id: HealthId,
) -> EndpointStatus {
    let st = status_of(snap, id);
    EndpointStatus {
        name: name.to_string(),
        target,
        serving: st.is_serving(),
        health: st.health.to_string(),
        drained: st.drained,
        maintenance: st.maintenance,
        weight: None,
        priority: None,
        probes: probes_of(snap, journal, &[id]),
    }
}

/// A slot's status; a slot outside the view reads as serving, as on the
/// answer path.
fn status_of(snap: &Snapshot, id: HealthId) -> SlotStatus {
    snap.health.status(id).unwrap_or(SlotStatus {
        health: crate::health::Health::Up,
        drained: false,
        maintenance: false,
        local: crate::health::Health::Up,
    })
}

/// `up`, `down` or `partial` over the probe verdicts of some slots.
fn health_word(statuses: impl Iterator<Item = SlotStatus>) -> String {
    let (mut up, mut down) = (0, 0);
    for s in statuses {
        if s.health.is_up() {
            up += 1;
        } else {
            down += 1;
        }
    }
    match (up, down) {
        (_, 0) => "up",
        (0, _) => "down",
        _ => "partial",
    }
    .to_string()
}

/// The probes feeding `slots`, with their last runs.
fn probes_of(snap: &Snapshot, journal: &Journal, slots: &[HealthId]) -> Vec<ProbeStatus> {
    snap.probes
        .iter()
        .filter(|p| slots.contains(&p.slot))
        .map(|p| {
            let last = journal.last(&p.label, p.target);
            ProbeStatus {
                target: p.target.to_string(),
                protocol: p.monitor.protocol().to_string(),
                health: status_of(snap, p.slot).health.to_string(),
                since: last.as_ref().map(|l| rfc3339(l.since)),
                last: last.map(|l| LastRun {
                    at: rfc3339(l.at),
                    status: if l.error.is_none() { "ok" } else { "failed" }.into(),
                    latency_ms: l.latency.as_secs_f64() * 1000.0,
                    error: l.error,
                }),
            }
        })
        .collect()
}

/// `t` as RFC 3339 in UTC with whole seconds, e.g. `2026-12-01T06:52:01Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Year, month and day of a count of days since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The address to reach a listener from this host: loopback in place of
/// a wildcard address.
pub fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;

    use crate::config::Config;
    use crate::health::Health;

    /// A snapshot of a `self` service and a priority service with a
    /// monitored endpoint and an unmonitored one; nothing probes yet.
    fn snapshot(tag: &str) -> Snapshot {
        snapshot_with(tag, "")
    }

    /// [`snapshot`] with `extra` (more tables) at the end of the config.
    fn snapshot_with(tag: &str, extra: &str) -> Snapshot {
        let dir = std::env::temp_dir().join(format!(
            "steerdns-admin-status-{tag}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("z.zone"),
            "$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n",
        )
        .unwrap();
        let text = r#"[server]
listen = ["127.0.0.1:5353"]
[[zone]]
origin = "z.test."
file = "z.zone"
[monitor.m]
protocol = "tcp"
port = 80
[[service]]
name = "lb.z.test."
routing = "self"
monitor = "m"
peers = ["192.0.2.10"]
[[service]]
name = "api.z.test."
routing = "priority"
endpoints = [
  { name = "a", addresses = ["192.0.2.20", "192.0.2.21"], priority = 1, monitor = "m" },
  { name = "b", addresses = ["192.0.2.30"], priority = 2 },
]
"#;
        let text = format!("{text}{extra}");
        let config = Config::from_str(&text, &dir.join("steerdns.toml")).unwrap();
        let snap = Snapshot::load_with(&config, &[]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        snap
    }

    fn build(snap: &Snapshot, journal: &Journal) -> Status {
        let loaded = Loaded {
            digest: None,
            at: UNIX_EPOCH,
            last_attempt: Some((UNIX_EPOCH, Some("x.toml:3: bad".into()))),
        };
        Status::build(&Sources {
            snapshot: snap,
            journal,
            loaded: &loaded,
            node_drained: false,
            started: UNIX_EPOCH,
            uptime: Duration::from_secs(61),
            rates: None,
            drains: &[],
            now: 0,
            cluster: None,
        })
    }

    #[test]
    fn drains_say_when_they_are_safe_to_stop() {
        let snap = snapshot("safe");
        let journal = Journal::new();
        let loaded = Loaded {
            digest: None,
            at: UNIX_EPOCH,
            last_attempt: None,
        };
        let b = snap.services[1].endpoints[1].slot;
        let target = DrainTarget::Endpoint {
            service: "api.z.test.".into(),
            endpoint: "b".into(),
        };
        // A fake clock: the last answer naming b went out in second
        // `sent`, with the service's TTL of 30 s.
        let sent = snap.last_sent.since() + 100;
        snap.last_sent.mark(b, sent as u32);
        let build = |now: u64| {
            Status::build(&Sources {
                snapshot: &snap,
                journal: &journal,
                loaded: &loaded,
                node_drained: false,
                started: UNIX_EPOCH,
                uptime: Duration::ZERO,
                rates: None,
                drains: std::slice::from_ref(&target),
                now,
                cluster: None,
            })
        };
        let s = build(sent + 5);
        let d = &s.drains[0];
        assert_eq!(
            (
                d.reason.as_str(),
                d.in_force,
                d.ttl,
                d.safe_at_unix,
                d.safe_in_seconds
            ),
            ("drain", false, 30, sent + 31, 26)
        );
        assert_eq!(d.endpoint.as_deref(), Some("b"));
        snap.health.set_drained(b, true);
        let s = build(sent + 31);
        assert!(s.drains[0].in_force);
        assert_eq!(s.drains[0].safe_in_seconds, 0);
        let page = super::super::page::render(&build(sent + 20));
        assert!(page.contains("<h2>Drains</h2>"), "{page}");
        assert!(page.contains("(in 11 s)"), "{page}");
        let table = super::super::page::render_table(&build(sent + 31));
        assert!(table.contains("api.z.test. endpoint b (drain): safe to stop now"));
    }

    #[test]
    fn windows_are_listed_ahead_and_active_ones_are_drains() {
        let snap = snapshot_with(
            "windows",
            "[[maintenance]]\nstart = \"2026-12-01T02:00:00Z\"\nend = \"2026-12-01T03:00:00Z\"\n\
             service = \"api.z.test\"\nendpoint = \"a\"\nnote = \"disk swap\"\n\
             [[maintenance]]\nstart = \"2026-12-01T02:30:00Z\"\nend = \"2026-12-01T03:00:00Z\"\nnode = true\n",
        );
        let journal = Journal::new();
        let loaded = Loaded {
            digest: None,
            at: UNIX_EPOCH,
            last_attempt: None,
        };
        // 2026-12-01T02:00:00Z, on a fake clock.
        let start = 1_796_090_400;
        let build = |now: u64| {
            crate::maintenance::apply(&snap, now);
            Status::build(&Sources {
                snapshot: &snap,
                journal: &journal,
                loaded: &loaded,
                node_drained: false,
                started: UNIX_EPOCH,
                uptime: Duration::ZERO,
                rates: None,
                drains: &[],
                now,
                cluster: None,
            })
        };
        let s = build(start - 7200);
        let w = &s.maintenance[0];
        assert_eq!(
            (w.phase.as_str(), w.starts_in_seconds, w.start.as_str()),
            ("upcoming", 7200, "2026-12-01T02:00:00Z")
        );
        assert!(s.drains.is_empty());
        let page = super::super::page::render(&s);
        assert!(page.contains("upcoming, in 2h 0m"), "{page}");
        assert!(page.contains("disk swap"), "{page}");

        let s = build(start + 60);
        assert_eq!(s.maintenance[0].phase, "active");
        let a = &s.services[1].endpoints[0];
        assert_eq!((a.maintenance, a.drained, a.serving), (true, false, false));
        let d = &s.drains[0];
        assert_eq!((d.reason.as_str(), d.in_force), ("maintenance", true));
        assert!(super::super::page::render(&s).contains(">maintenance</span>"));
        assert_eq!(s.drains.len(), 1);
        assert!(!s.services[0].maintenance);

        // The node's window too: the `self` service is down for it.
        let s = build(start + 1800);
        assert_eq!(s.drains[1].target, "node");
        let lb = &s.services[0];
        assert_eq!(
            (lb.health.as_str(), lb.drained, lb.maintenance),
            ("down", false, true)
        );
        assert!(super::super::page::render_table(&s).contains("lb.z.test."));

        let s = build(start + 3600);
        assert_eq!(s.maintenance[0].phase, "over");
        assert!(s.drains.is_empty() && s.services[1].endpoints[0].serving);
    }

    #[test]
    fn services_endpoints_and_health_words() {
        let snap = snapshot("words");
        let journal = Journal::new();
        let s = build(&snap, &journal);
        assert_eq!(s.uptime_seconds, 61);
        assert_eq!(s.config.sha256, None);
        let reload = s.config.last_reload.as_ref().unwrap();
        assert_eq!(
            (reload.ok, reload.error.as_deref()),
            (false, Some("x.toml:3: bad"))
        );
        let [lb, api] = &s.services[..] else {
            panic!("{:?}", s.services)
        };
        assert_eq!((lb.method.as_str(), lb.health.as_str()), ("self", "up"));
        let names: Vec<&str> = lb.endpoints.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["this node", "peer 192.0.2.10"]);
        assert_eq!(api.endpoints[0].target, "192.0.2.20, 192.0.2.21");
        assert_eq!(api.endpoints[0].probes.len(), 2);
        assert_eq!(api.endpoints[0].priority, Some(1));
        assert!(api.endpoints[1].probes.is_empty());

        // One address of `a` down: partial, still serving; both: down.
        let a = &snap.services[1].endpoints[0];
        let crate::policy::Target::Addresses(list) = &a.target else {
            panic!()
        };
        snap.health.set_health(list[0].slot, Health::Down);
        let s = build(&snap, &journal);
        let ep = &s.services[1].endpoints[0];
        assert_eq!((ep.health.as_str(), ep.serving), ("partial", true));
        assert_eq!(s.services[1].health, "up");
        snap.health.set_health(list[1].slot, Health::Down);
        let s = build(&snap, &journal);
        let ep = &s.services[1].endpoints[0];
        assert_eq!((ep.health.as_str(), ep.serving), ("down", false));
        assert_eq!(s.services[1].health, "degraded");

        // A drained endpoint is up but not serving; a drained self
        // service is down and drained.
        snap.health
            .set_drained(snap.services[1].endpoints[1].slot, true);
        snap.health
            .set_drained(snap.services[0].local_slot().unwrap(), true);
        let s = build(&snap, &journal);
        let b = &s.services[1].endpoints[1];
        assert_eq!(
            (b.health.as_str(), b.drained, b.serving),
            ("up", true, false)
        );
        assert_eq!(s.services[1].health, "down");
        assert_eq!(
            (s.services[0].health.as_str(), s.services[0].drained),
            ("down", true)
        );

        // The journal's results show on the probe they belong to.
        let plan = snap.probes.iter().find(|p| p.slot == list[1].slot).unwrap();
        let label: Arc<str> = Arc::from(plan.label.as_str());
        let at = UNIX_EPOCH + Duration::from_secs(86_400);
        let failed = Err(crate::health::ProbeFailure::Refused);
        journal.record(
            &label,
            plan.target,
            at,
            &Ok(()),
            Duration::from_millis(2),
            Health::Up,
        );
        journal.record(
            &label,
            plan.target,
            at,
            &failed,
            Duration::from_millis(3),
            Health::Down,
        );
        let s = build(&snap, &journal);
        let probe = &s.services[1].endpoints[0].probes[1];
        assert_eq!(probe.target, "192.0.2.21:80");
        let last = probe.last.as_ref().unwrap();
        assert_eq!((last.status.as_str(), last.latency_ms), ("failed", 3.0));
        assert_eq!(probe.since.as_deref(), Some("1970-01-02T00:00:00Z"));
        assert_eq!(s.changes[0].reason.as_deref(), Some("connect refused"));

        // Rates, when given, land on their service and on the page.
        let rates = |name: &str| (name == "api.z.test.").then_some(12.5);
        let loaded = Loaded {
            digest: None,
            at: UNIX_EPOCH,
            last_attempt: None,
        };
        let s = Status::build(&Sources {
            snapshot: &snap,
            journal: &journal,
            loaded: &loaded,
            node_drained: false,
            started: UNIX_EPOCH,
            uptime: Duration::ZERO,
            rates: Some(&rates),
            drains: &[],
            now: 0,
            cluster: None,
        });
        assert_eq!(s.services[1].queries_per_second, Some(12.5));
        assert_eq!(s.services[0].queries_per_second, None);
        assert!(super::super::page::render(&s).contains("<td>12.5</td>"));
    }

    #[test]
    fn rfc3339_dates() {
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        // `date -u -d @951782400`: a leap day.
        assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(at(1796107921)), "2026-12-01T06:52:01Z");
    }

    #[test]
    fn wildcards_are_reached_on_loopback() {
        let r = |a: &str| reachable(a.parse().unwrap()).to_string();
        assert_eq!(r("0.0.0.0:8053"), "127.0.0.1:8053");
        assert_eq!(r("[::]:8053"), "[::1]:8053");
        assert_eq!(r("192.0.2.1:8053"), "192.0.2.1:8053");
    }
}
