//! The immutable state every query reads.
//!
//! A [`Snapshot`] is built once from a [`Config`] and never changed; a reload
//! builds a new one and swaps it in atomically, so queries take no lock. The
//! one part that changes while a snapshot lives, endpoint health, sits in a
//! [`HealthView`] of atomics that probes write and queries read.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::cluster::HealthRule;
use crate::config::{Config, MaintenanceWindow};
use crate::config::{EndpointTarget, ServiceConfig};
use crate::geo::GeoTable;
use crate::health::{Health, HealthId, HealthView, HealthViewBuilder, Monitor};
use crate::identity::Identity;
use crate::last_sent::LastSent;
use crate::name::Name;
use crate::ns_health::NsHealth;
use crate::policy::{
    seed_of, Address, Endpoint, Geographic, Method, Multivalue, Peer, Performance, Priority,
    Routing, SelfAddress, ServiceRule, Subnet, Target, WhenAllDown,
};
use crate::prefix::Prefix;
use crate::zone::{Zone, ZoneError, ZoneSet};

/// Everything the answer engine needs, compiled at load time.
#[derive(Debug)]
pub struct Snapshot {
    /// The zones served, longest match first.
    pub zones: ZoneSet,
    /// Largest UDP response, from the config (RFC 6891 §6.2.5).
    pub max_udp_payload: u16,
    /// Services, indexed by [`crate::zone::Node::service`].
    pub services: Box<[ServiceRule]>,
    /// Health of every monitored thing, shared with the probes.
    pub health: HealthView,
    /// The probes that keep `health` current; started by the caller.
    pub probes: Vec<ProbePlan>,
    /// What this node answers NSID and CHAOS `id.server` with.
    pub identity: Identity,
    /// Per service, the number of its first endpoint when every service's
    /// endpoints are numbered in order: a small number per endpoint, fixed
    /// at load, that per-worker answer counters are indexed by (see
    /// [`Snapshot::endpoint_number`]).
    pub first_endpoint: Box<[u32]>,
    /// The `ns-health` rules of the zones that have one, indexed by
    /// [`Zone::ns_health`].
    pub ns_health: Box<[NsHealth]>,
    /// When answers last named each health slot, for safe-to-stop times
    /// of drains (written by the answer path).
    pub last_sent: LastSent,
    /// Scheduled maintenance windows, applied by `crate::maintenance`.
    pub maintenance: Box<[MaintenanceWindow]>,
}

/// One probe to run: what to probe, how, and which slot it feeds.
#[derive(Debug, Clone)]
pub struct ProbePlan {
    /// The address and port probed.
    pub target: SocketAddr,
    /// How to probe it.
    pub monitor: Arc<Monitor>,
    /// The health slot the verdicts go to.
    pub slot: HealthId,
    /// What is probed, for logs: a service's local payload or a peer.
    pub label: String,
    /// Which kind of slot the verdicts go to.
    pub kind: ProbeKind,
    /// Set when the cluster decides the slot's answered health: the
    /// verdicts go to the local bit, and are shared under this key.
    pub shared: Option<SharedVerdict>,
}

/// How a probe's verdict is shared with the other nodes of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedVerdict {
    /// The same on every node with the same config:
    /// `service/endpoint/address:port`.
    pub key: Arc<str>,
    /// The service's rule.
    pub rule: HealthRule,
}

/// What a probe watches. A reload carries a probe's health over only to a
/// probe of the same kind, target and monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// The payload beside this node, for one service.
    LocalPayload,
    /// Another node, shared by every service using the same monitor.
    Peer,
    /// An endpoint of a routed service (one of its addresses, or its
    /// separate probe target).
    Endpoint,
}

/// Why a configuration could not be turned into a snapshot: every zone that
/// failed, one error each.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct LoadError(pub Vec<LoadProblem>);

/// One problem found while loading.
#[derive(Debug, thiserror::Error)]
pub enum LoadProblem {
    /// A zone file is broken.
    #[error(transparent)]
    Zone(#[from] ZoneError),
    /// The `[geoip]` database cannot be used.
    #[error(transparent)]
    Geo(#[from] crate::geo::GeoError),
    /// A service cannot be placed in the zones.
    #[error("{file}:{line}: service {name}: {message}")]
    Service {
        /// The config file.
        file: String,
        /// Line of the service's `name`.
        line: usize,
        /// The service name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A zone's `ns-health` cannot be tied to its apex NS RRset.
    #[error("{file}:{line}: zone.ns-health: {message}")]
    NsHealth {
        /// The config file.
        file: String,
        /// Line of the zone's `ns-health`.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl Snapshot {
    /// Loads every zone and service of `config`. All zones are tried, so one
    /// run of `steerdns check` reports every broken file.
    pub fn load(config: &Config) -> Result<Snapshot, LoadError> {
        // Without the interface list no peer can be recognised as this
        // node; every peer is then treated as another node.
        let local = crate::sys::local_addresses().unwrap_or_default();
        Snapshot::load_with(config, &local)
    }

    /// Like [`Snapshot::load`], with this node's addresses given (tests).
    pub fn load_with(config: &Config, local_addresses: &[IpAddr]) -> Result<Snapshot, LoadError> {
        let mut zones = ZoneSet::default();
        let mut errors = Vec::new();
        for source in &config.zones {
            match Zone::load(&source.origin, &source.file) {
                Ok(zone) => zones.insert(zone),
                Err(e) => errors.push(LoadProblem::Zone(e)),
            }
        }
        if !errors.is_empty() {
            return Err(LoadError(errors));
        }

        let geo = match &config.geoip {
            Some(path) => match GeoTable::load(path) {
                Ok(table) => Some(Arc::new(table)),
                Err(e) => return Err(LoadError(vec![LoadProblem::Geo(e)])),
            },
            None => None,
        };
        let mut slots = Slots::default();
        let names: HashMap<&Name, u32> = config
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (&s.name, i as u32))
            .collect();
        let mut services = Vec::with_capacity(config.services.len());
        for (i, sc) in config.services.iter().enumerate() {
            let problem = |message: String| LoadProblem::Service {
                file: config.file.display().to_string(),
                line: sc.line,
                name: sc.name.to_string(),
                message,
            };
            let attached = match zones.find_mut(sc.name.wire()) {
                None => Err("is not inside any served zone".to_string()),
                Some(zone) => zone.attach_service(&sc.name, i as u32),
            };
            if let Err(message) = attached {
                errors.push(problem(message));
                continue;
            }
            let rule = match sc.routing {
                Routing::SelfAddress => self_rule(config, sc, local_addresses, &mut slots),
                _ => endpoint_rule(config, sc, &names, geo.as_ref(), &mut slots),
            };
            match rule {
                Ok(rule) => services.push(rule),
                Err(message) => errors.push(problem(message)),
            }
        }
        let Slots { health, probes, .. } = slots;
        if !errors.is_empty() {
            return Err(LoadError(errors));
        }
        let ns_health = ns_health_rules(config, &mut zones, &services, &names)?;
        let services: Box<[ServiceRule]> = services.into();
        let health = health.build();
        Ok(Snapshot {
            zones,
            max_udp_payload: config.max_udp_payload,
            first_endpoint: first_endpoints(&services),
            services,
            last_sent: LastSent::new(
                health.len(),
                config.workers * config.listen.len(),
                crate::last_sent::unix_now(),
            ),
            health,
            probes,
            identity: Identity::new(&config.identity, config.version.as_deref()),
            ns_health,
            maintenance: config.maintenance.clone().into(),
        })
    }
}

impl Snapshot {
    /// The number of endpoint `endpoint` of service `service` among every
    /// endpoint of the snapshot (services in order); `u32::MAX` for an
    /// index the snapshot does not have.
    pub fn endpoint_number(&self, service: u32, endpoint: usize) -> u32 {
        self.first_endpoint
            .get(service as usize)
            .and_then(|&first| first.checked_add(u32::try_from(endpoint).ok()?))
            .unwrap_or(u32::MAX)
    }

    /// The service and endpoint that `number` stands for (the inverse of
    /// [`Snapshot::endpoint_number`]), for naming counters at a scrape.
    pub fn endpoint_at(&self, number: u32) -> Option<(&ServiceRule, &Endpoint)> {
        // The last service whose first endpoint is at or before `number`
        // (services without endpoints share their successor's first).
        let service = self
            .first_endpoint
            .partition_point(|&first| first <= number)
            .checked_sub(1)?;
        let rule = self.services.get(service)?;
        let first = *self.first_endpoint.get(service)?;
        let endpoint = rule.endpoints.get((number - first) as usize)?;
        Some((rule, endpoint))
    }
}

/// [`Snapshot::first_endpoint`] for `services`.
fn first_endpoints(services: &[ServiceRule]) -> Box<[u32]> {
    let mut next = 0u32;
    services
        .iter()
        .map(|rule| {
            let first = next;
            let count = u32::try_from(rule.endpoints.len()).unwrap_or(u32::MAX);
            next = next.saturating_add(count);
            first
        })
        .collect()
}

/// Compiles the `ns-health` of every zone that has one and tells the zone
/// where its rule is.
fn ns_health_rules(
    config: &Config,
    zones: &mut ZoneSet,
    services: &[ServiceRule],
    names: &HashMap<&Name, u32>,
) -> Result<Box<[NsHealth]>, LoadError> {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for source in &config.zones {
        let Some(ns) = &source.ns_health else {
            continue;
        };
        let problem = |message: String| LoadProblem::NsHealth {
            file: config.file.display().to_string(),
            line: ns.line,
            message,
        };
        // The config checked that the service exists; zones loaded above.
        let apex = source.origin.to_lowercase();
        let rule = names
            .get(&ns.service)
            .and_then(|&i| services.get(i as usize));
        let (Some(rule), Some(zone)) = (rule, zones.find_mut(apex.wire())) else {
            errors.push(problem(format!("no service {}", ns.service)));
            continue;
        };
        match NsHealth::compile(zone, &ns.service, rule) {
            Ok(rule) => {
                zone.ns_health = Some(rules.len() as u32);
                rules.push(rule);
            }
            Err(message) => errors.push(problem(message)),
        }
    }
    if !errors.is_empty() {
        return Err(LoadError(errors));
    }
    Ok(rules.into())
}

/// Health slots and the probes that feed them, handed out while services
/// are compiled. A probe of the same monitor at the same target feeds one
/// slot, however many services or endpoints watch it.
#[derive(Default)]
struct Slots {
    health: HealthViewBuilder,
    probes: Vec<ProbePlan>,
    /// Keyed by kind, monitor, target and, for a shared verdict, the
    /// service and rule: an endpoint with a cluster rule never shares a
    /// slot with another service's, or with one under another rule.
    shared: HashMap<SlotKey, HealthId>,
}

/// What makes two probes one: kind, monitor name, target, and for a
/// shared verdict the service and its rule.
type SlotKey = (ProbeKind, String, SocketAddr, Option<(Name, HealthRule)>);

impl Slots {
    /// A slot nothing probes (drain only, or an unmonitored endpoint).
    fn plain(&mut self) -> Result<HealthId, String> {
        self.health
            .add(Health::Up)
            .ok_or_else(|| "too many monitored endpoints".to_string())
    }

    /// The slot fed by `monitor` probing `target`, shared when it exists.
    fn probed(
        &mut self,
        kind: ProbeKind,
        (name, monitor): (&str, &Arc<Monitor>),
        target: SocketAddr,
        label: impl FnOnce() -> String,
    ) -> Result<HealthId, String> {
        self.probed_shared(kind, (name, monitor), target, label, None)
    }

    /// [`Slots::probed`], for an endpoint of `shared`'s service (`None`:
    /// the rule is `local`) whose verdict key is made by `key`.
    fn probed_shared(
        &mut self,
        kind: ProbeKind,
        (name, monitor): (&str, &Arc<Monitor>),
        target: SocketAddr,
        label: impl FnOnce() -> String,
        shared: Option<(&Name, HealthRule, String)>,
    ) -> Result<HealthId, String> {
        let scope = shared
            .as_ref()
            .map(|(service, rule, _)| ((*service).clone(), *rule));
        let key = (kind, name.to_string(), target, scope);
        if let Some(&slot) = self.shared.get(&key) {
            return Ok(slot);
        }
        let slot = self.plain()?;
        self.shared.insert(key, slot);
        self.probes.push(ProbePlan {
            target,
            monitor: monitor.clone(),
            slot,
            label: label(),
            kind,
            shared: shared.map(|(_, rule, key)| SharedVerdict {
                key: key.into(),
                rule,
            }),
        });
        Ok(slot)
    }
}

/// The monitor a config names, with its name.
fn monitor<'c>(config: &'c Config, name: Option<&'c str>) -> Option<(&'c str, &'c Arc<Monitor>)> {
    name.and_then(|m| Some((m, config.monitors.get(m)?)))
}

/// Compiles a `self` service: this node's payload probe and its peers'.
fn self_rule(
    config: &Config,
    sc: &ServiceConfig,
    local_addresses: &[IpAddr],
    slots: &mut Slots,
) -> Result<ServiceRule, String> {
    let own: Box<[IpAddr]> = sc
        .peers
        .iter()
        .copied()
        .filter(|a| local_addresses.contains(a))
        .collect();
    let monitor = monitor(config, sc.monitor.as_deref());
    let local = match monitor {
        // The payload beside this node: where the monitor says, else this
        // node's own address, else loopback.
        Some(m) => {
            let at = own
                .first()
                .copied()
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            // Never shared: each service's payload has its own verdict and
            // its own drain.
            let slot = slots.plain()?;
            slots.probes.push(ProbePlan {
                target: m.1.target_for(at),
                monitor: m.1.clone(),
                slot,
                label: format!("{} local payload", sc.name),
                kind: ProbeKind::LocalPayload,
                shared: None,
            });
            slot
        }
        None => slots.plain()?,
    };
    let mut peers = Vec::new();
    for &address in sc.peers.iter().filter(|a| !own.contains(a)) {
        let health = match monitor {
            None => slots.plain()?,
            Some(m) => {
                let target = SocketAddr::new(address, m.1.port());
                slots.probed(ProbeKind::Peer, m, target, || format!("peer {address}"))?
            }
        };
        peers.push(Peer { address, health });
    }
    Ok(ServiceRule {
        name: sc.name.clone(),
        ttl: sc.ttl,
        degraded_ttl: None,
        method: Method::SelfAddress(SelfAddress {
            local,
            peers: peers.into(),
            own,
            when_down: sc.when_down,
        }),
        endpoints: Box::new([]),
        when_all_down: WhenAllDown::All,
        seed: seed_of(&sc.name.to_string()),
    })
}

/// Compiles a service with endpoints: their targets, health slots and
/// probes, and the method's tables.
fn endpoint_rule(
    config: &Config,
    sc: &ServiceConfig,
    names: &HashMap<&Name, u32>,
    geo: Option<&Arc<GeoTable>>,
    slots: &mut Slots,
) -> Result<ServiceRule, String> {
    let mut endpoints = Vec::with_capacity(sc.endpoints.len());
    for ec in &sc.endpoints {
        let label = |at: SocketAddr| format!("{} endpoint {} at {at}", sc.name, ec.name);
        // The key other nodes know the verdict by: names and the target,
        // never slot numbers, which depend on load order.
        // The endpoint's own rule, else the service's.
        let rule = ec.health_rule.unwrap_or(sc.health_rule);
        let shared = |at: SocketAddr| {
            (rule != HealthRule::Local)
                .then(|| (&sc.name, rule, format!("{}/{}/{at}", sc.name, ec.name)))
        };
        let monitor = monitor(config, ec.monitor.as_deref());
        // One probe for the whole endpoint: a separate probe target.
        let whole = match (monitor, ec.probe) {
            (Some(m), Some(probe)) => {
                let target = probe.socket(m.1.port());
                Some(slots.probed_shared(
                    ProbeKind::Endpoint,
                    m,
                    target,
                    || label(target),
                    shared(target),
                )?)
            }
            _ => None,
        };
        let slot = slots.plain()?;
        let target = match &ec.target {
            EndpointTarget::Addresses(list) => {
                let mut addresses = Vec::with_capacity(list.len());
                for &ip in list {
                    let slot = match (whole, monitor) {
                        (Some(whole), _) => whole,
                        (None, Some(m)) => {
                            let target = m.1.target_for(ip);
                            slots.probed_shared(
                                ProbeKind::Endpoint,
                                m,
                                target,
                                || label(target),
                                shared(target),
                            )?
                        }
                        (None, None) => slot,
                    };
                    addresses.push(Address { ip, slot });
                }
                Target::Addresses(addresses.into())
            }
            EndpointTarget::Cname(name) => Target::Cname(name.clone()),
            EndpointTarget::Service { name, min_healthy } => Target::Service {
                // Checked by the config: every nested service exists.
                index: *names
                    .get(name)
                    .ok_or_else(|| format!("no service {name}"))?,
                min_healthy: *min_healthy,
            },
        };
        // The endpoint's own slot carries its drain; a whole-endpoint
        // probe of a CNAME target needs it to carry the verdict too.
        let slot = match (&target, whole) {
            (Target::Cname(_), Some(whole)) => whole,
            _ => slot,
        };
        endpoints.push(Endpoint {
            name: ec.name.as_str().into(),
            target,
            slot,
            weight: ec.weight,
            priority: ec.priority,
            seed: seed_of(&ec.name),
        });
    }
    let method = match sc.routing {
        Routing::Priority => Method::Priority(Priority::new(&endpoints)),
        Routing::Weighted => Method::Weighted(sc.weighted.clone()),
        Routing::Multivalue => Method::Multivalue(Multivalue {
            max_answers: sc.max_answers,
        }),
        Routing::Subnet => {
            let ranges: Vec<(Prefix, u16)> = sc
                .endpoints
                .iter()
                .enumerate()
                .flat_map(|(i, e)| e.subnets.iter().map(move |&p| (p, i as u16)))
                .collect();
            let default = sc.endpoints.iter().position(|e| e.subnets.is_empty());
            Method::Subnet(Subnet::new(&ranges, default.map(|i| i as u16)))
        }
        Routing::Geographic | Routing::Performance => {
            // The config refuses these without a [geoip] database.
            let geo = geo.ok_or("needs a [geoip] database")?.clone();
            let index = |name: &String| {
                sc.endpoints
                    .iter()
                    .position(|e| &e.name == name)
                    .map(|i| i as u16)
            };
            // Regions' and prefixes' endpoint names as indexes.
            fn lists<K: Copy>(
                map: &[(K, Vec<String>)],
                index: impl Fn(&String) -> Option<u16> + Copy,
            ) -> Vec<(K, Vec<u16>)> {
                map.iter()
                    .map(|(k, names)| (*k, names.iter().filter_map(index).collect()))
                    .collect()
            }
            if sc.routing == Routing::Geographic {
                Method::Geographic(Geographic::new(geo, lists(&sc.regions, index)))
            } else {
                let locations = sc
                    .endpoints
                    .iter()
                    .map(|e| e.location.unwrap_or_default())
                    .collect();
                Method::Performance(Performance::new(
                    geo,
                    locations,
                    lists(&sc.overrides, index),
                    lists(&sc.prefix_overrides, index),
                    sc.default_endpoint.as_ref().and_then(index),
                    sc.answers,
                ))
            }
        }
        Routing::SelfAddress => unreachable!("self services are compiled by self_rule"),
    };
    Ok(ServiceRule {
        name: sc.name.clone(),
        ttl: sc.ttl,
        degraded_ttl: sc.degraded_ttl,
        method,
        endpoints: endpoints.into(),
        when_all_down: sc.when_all_down,
        seed: seed_of(&sc.name.to_string()),
    })
}

/// A snapshot of zone `z.test.` (SOA, NS and `ns1` only) with `tables`
/// (services, windows) after it, loaded from a scratch folder named by
/// `tag`: for unit tests of what runs beside the answer path.
#[cfg(test)]
pub(crate) fn test_snapshot(tag: &str, tables: &str) -> Snapshot {
    let dir = std::env::temp_dir().join(format!("steerdns-snap-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("z.zone"),
        "$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n",
    )
    .unwrap();
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:5353\"]\n[[zone]]\norigin = \"z.test.\"\nfile = \"z.zone\"\n{tables}"
    );
    let config = Config::from_str(&text, &dir.join("steerdns.toml")).unwrap();
    let snap = Snapshot::load_with(&config, &[]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    snap
}
