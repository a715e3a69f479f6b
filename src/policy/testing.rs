//! Builders for policy unit tests.

use std::net::IpAddr;

use super::*;
use crate::health::{Health, HealthViewBuilder};

/// An endpoint spec for tests: name, addresses, weight, priority.
pub(crate) struct E<'a> {
    pub name: &'a str,
    pub addrs: &'a [&'a str],
    pub weight: u32,
    pub priority: u32,
}

/// Endpoints with one health slot each (addresses share it).
pub(crate) fn endpoints(b: &mut HealthViewBuilder, specs: &[E<'_>]) -> Box<[Endpoint]> {
    specs
        .iter()
        .map(|s| {
            let slot = b.add(Health::Up).unwrap();
            let addresses = s
                .addrs
                .iter()
                .map(|a| Address {
                    ip: a.parse::<IpAddr>().unwrap(),
                    slot,
                })
                .collect();
            Endpoint {
                name: s.name.into(),
                target: Target::Addresses(addresses),
                slot,
                weight: s.weight,
                priority: s.priority,
                seed: seed_of(s.name),
            }
        })
        .collect()
}

/// A service rule around a method.
pub(crate) fn rule(name: &str, method: Method, endpoints: Box<[Endpoint]>) -> ServiceRule {
    ServiceRule {
        name: Name::from_text(name, None).unwrap(),
        ttl: 30,
        degraded_ttl: None,
        method,
        endpoints,
        when_all_down: WhenAllDown::All,
        seed: seed_of(name),
    }
}

/// An input from a client address with a full-length source prefix.
pub(crate) fn input(client: &str) -> PolicyInput {
    let client: IpAddr = client.parse().unwrap();
    PolicyInput {
        client,
        source_prefix: crate::prefix::width(client),
        local: "192.0.2.53".parse().unwrap(),
        entropy: 0,
    }
}

/// The endpoint names a decision answers with.
pub(crate) fn names(services: &Services, d: &Decision) -> Vec<String> {
    match d.pick {
        Pick::Endpoints { service, set, .. } => set
            .iter()
            .map(|i| services[service as usize].endpoints[i].name.to_string())
            .collect(),
        other => vec![format!("{other:?}")],
    }
}
