//! The `[[service]]` tables: names answered by a routing policy instead of
//! static records.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use super::value::Invalid;
use super::Lines;
use crate::health::Monitor;
use crate::name::Name;
use crate::policy::{Routing, WhenDown};

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

/// Short enough that resolvers notice a failover within half a minute,
/// long enough to keep most lookups cached.
fn default_service_ttl() -> u32 {
    30
}

/// One `[[service]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct ServiceSpec {
    name: Spanned<String>,
    routing: Spanned<String>,
    ttl: Option<u32>,
    monitor: Option<Spanned<String>>,
    peers: Option<Vec<IpAddr>>,
    when_down: Option<Spanned<String>>,
}

/// Validates the `[[service]]` tables against the validated `monitors`;
/// `lines` gives each service the line of its `name`.
pub(super) fn services(
    specs: Vec<ServiceSpec>,
    monitors: &BTreeMap<String, Arc<Monitor>>,
    lines: &Lines,
) -> Result<Vec<ServiceConfig>, Invalid> {
    let mut services: Vec<ServiceConfig> = Vec::new();
    // A set, not a scan of `services`: configs with 10,000 services load
    // in linear time.
    let mut service_names = HashSet::new();
    for sv in specs {
        let line = lines.line_of(sv.name.span().start);
        let name = Name::from_absolute_text(sv.name.get_ref())
            .map_err(|e| {
                Invalid::at(
                    &sv.name,
                    format!("service.name: {:?}: {e}", sv.name.get_ref()),
                )
            })?
            .to_lowercase();
        if !service_names.insert(name.clone()) {
            return Err(Invalid::at(
                &sv.name,
                format!("service.name: {name} is listed twice"),
            ));
        }
        let routing = sv
            .routing
            .get_ref()
            .parse()
            .map_err(|e| Invalid::at(&sv.routing, format!("service.routing: {e}")))?;
        if let Some(m) = &sv.monitor {
            if !monitors.contains_key(m.get_ref()) {
                return Err(Invalid::at(
                    m,
                    format!("service.monitor: no [monitor.{}] is defined", m.get_ref()),
                ));
            }
        }
        let peers = sv.peers.unwrap_or_default();
        let when_down = match &sv.when_down {
            Some(w) => w
                .get_ref()
                .parse()
                .map_err(|e| Invalid::at(w, format!("service.when-down: {e}")))?,
            None if peers.is_empty() => WhenDown::Refuse,
            None => WhenDown::Peers,
        };
        if when_down == WhenDown::Peers && peers.is_empty() {
            let span = sv.when_down.as_ref().map_or(sv.name.span(), |w| w.span());
            return Err(Invalid::new(
                span,
                "service.when-down: \"peers\" needs a peers list",
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
    Ok(services)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::tests::parse_with;

    #[test]
    fn services_and_monitors() {
        let text =
            "[state]\ndir = \"state\"\n[monitor.payload]\nprotocol = \"http\"\nport = 8080\n\
             [[service]]\nname = \"*.API.example.com\"\nrouting = \"self\"\nmonitor = \"payload\"\n\
             peers = [\"198.51.100.10\", \"2001:db8::10\"]\n";
        let c = parse_with(text).unwrap();
        let s = &c.services[0];
        assert_eq!(s.name.to_string(), "*.api.example.com.");
        assert_eq!((s.ttl, s.when_down, s.line), (30, WhenDown::Peers, 12));
        assert_eq!(c.state_dir.as_deref(), Some(Path::new("conf/state")));
        assert_eq!(c.monitors["payload"].port(), 8080);

        let bad = text.replace("monitor = \"payload\"", "monitor = \"other\"");
        let e = parse_with(&bad).unwrap_err();
        assert!(
            e.contains(":14: service.monitor: no [monitor.other]"),
            "{e}"
        );
        let bad = text.replace("routing = \"self\"", "routing = \"random\"");
        let e = parse_with(&bad).unwrap_err();
        assert!(
            e.contains(":13: service.routing: unknown routing method"),
            "{e}"
        );
        let bad = text.replace("port = 8080", "port = 8080\ncolour = 1");
        let e = parse_with(&bad).unwrap_err();
        assert!(e.contains(":11:") && e.contains("colour"), "{e}");
    }
}
