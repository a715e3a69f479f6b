//! The immutable state every query reads.
//!
//! A [`Snapshot`] is built once from a [`Config`] and never changed; a reload
//! builds a new one and swaps it in atomically, so queries take no lock. The
//! one part that changes while a snapshot lives, endpoint health, sits in a
//! [`HealthView`] of atomics that probes write and queries read.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::config::Config;
use crate::health::{Health, HealthId, HealthView, HealthViewBuilder, Monitor};
use crate::policy::{seed_of, Method, Peer, SelfAddress, ServiceRule, WhenAllDown};
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
}

/// What a probe watches. A reload carries a probe's health over only to a
/// probe of the same kind, target and monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// The payload beside this node, for one service.
    LocalPayload,
    /// Another node, shared by every service using the same monitor.
    Peer,
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

        let mut health = HealthViewBuilder::default();
        let mut probes = Vec::new();
        // Peer probes are shared by every service using the same monitor.
        let mut peer_slots: Vec<(&str, IpAddr, HealthId)> = Vec::new();
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
            let Some(local) = health.add(Health::Up) else {
                errors.push(problem("too many monitored endpoints".into()));
                continue;
            };
            let own: Box<[IpAddr]> = sc
                .peers
                .iter()
                .copied()
                .filter(|a| local_addresses.contains(a))
                .collect();
            let monitor = sc
                .monitor
                .as_deref()
                .and_then(|m| Some((m, config.monitors.get(m)?)));
            if let Some((_, monitor)) = monitor {
                // The payload beside this node: where the monitor says, else
                // this node's own address, else loopback.
                let at = own
                    .first()
                    .copied()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
                probes.push(ProbePlan {
                    target: monitor.target_for(at),
                    monitor: monitor.clone(),
                    slot: local,
                    label: format!("{} local payload", sc.name),
                    kind: ProbeKind::LocalPayload,
                });
            }
            let mut peers = Vec::new();
            for &address in sc.peers.iter().filter(|a| !own.contains(a)) {
                let slot = match monitor {
                    None => health.add(Health::Up),
                    Some((name, monitor)) => {
                        match peer_slots
                            .iter()
                            .find(|(m, a, _)| *m == name && *a == address)
                        {
                            Some(&(_, _, slot)) => Some(slot),
                            None => {
                                let slot = health.add(Health::Up);
                                if let Some(slot) = slot {
                                    peer_slots.push((name, address, slot));
                                    probes.push(ProbePlan {
                                        target: SocketAddr::new(address, monitor.port()),
                                        monitor: monitor.clone(),
                                        slot,
                                        label: format!("peer {address}"),
                                        kind: ProbeKind::Peer,
                                    });
                                }
                                slot
                            }
                        }
                    }
                };
                match slot {
                    Some(health) => peers.push(Peer { address, health }),
                    None => errors.push(problem("too many monitored endpoints".into())),
                }
            }
            services.push(ServiceRule {
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
            });
        }
        if !errors.is_empty() {
            return Err(LoadError(errors));
        }
        Ok(Snapshot {
            zones,
            max_udp_payload: config.max_udp_payload,
            services: services.into(),
            health: health.build(),
            probes,
        })
    }
}
