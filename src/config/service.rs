//! The `[[service]]` tables: names answered by a routing policy instead of
//! static records, and their endpoints.
//!
//! Each method takes only the keys it uses: a key of another method (a
//! `weight` under priority routing, `peers` under weighted) is refused with
//! its line, since a key that silently does nothing is a misconfiguration
//! waiting to surprise someone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use super::value::{duration, within, Invalid};
use super::Lines;
use crate::cluster::HealthRule;
use crate::geo::Region;
use crate::health::Monitor;
use crate::name::Name;
use crate::policy::{Routing, Weighted, WhenAllDown, WhenDown, MAX_NESTING, MAX_PICK};
use crate::prefix::Prefix;

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
    /// TTL while any endpoint is unfit.
    pub degraded_ttl: Option<u32>,
    /// What to answer when no endpoint is fit.
    pub when_all_down: WhenAllDown,
    /// Weighted routing's settings (defaults for other methods).
    pub weighted: Weighted,
    /// Multivalue routing's most records per answer.
    pub max_answers: u8,
    /// The endpoints (none for `self`).
    pub endpoints: Vec<EndpointConfig>,
    /// Geographic routing: each region's endpoints, in order of preference.
    pub regions: Vec<(Region, Vec<String>)>,
    /// Performance routing: regions whose endpoint order the operator
    /// measured, overriding distance.
    pub overrides: Vec<(Region, Vec<String>)>,
    /// Performance routing: client prefixes whose endpoint order the
    /// operator measured; they win over region overrides and distance.
    pub prefix_overrides: Vec<(Prefix, Vec<String>)>,
    /// Performance routing: the endpoint for clients the database cannot
    /// place.
    pub default_endpoint: Option<String>,
    /// Performance routing: how many of the nearest fit endpoints answer.
    pub answers: u8,
    /// How this node's probe verdicts and its peers' combine into the
    /// health answered with (`health-rule`, `local` by default).
    pub health_rule: HealthRule,
    /// Where `health-rule` is written, if it is.
    pub health_rule_span: Option<std::ops::Range<usize>>,
    /// Where `routing` is written, for errors found once the whole file is
    /// read.
    pub routing_span: std::ops::Range<usize>,
    /// Line of the `name` key, for errors found at load.
    pub line: usize,
}

/// One endpoint of a service.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Unique within its service.
    pub name: String,
    /// What it answers with.
    pub target: EndpointTarget,
    /// The monitor probing it, by name.
    pub monitor: Option<String>,
    /// Where to probe instead of its addresses (e.g. the internal address
    /// behind a public NAT address); the port defaults to the monitor's.
    pub probe: Option<ProbeTarget>,
    /// Weighted routing's share.
    pub weight: u32,
    /// Priority routing's order.
    pub priority: u32,
    /// Subnet routing's client networks.
    pub subnets: Vec<Prefix>,
    /// Performance routing: latitude and longitude in degrees.
    pub location: Option<(f64, f64)>,
    /// This endpoint's own `health-rule`, overriding the service's.
    pub health_rule: Option<HealthRule>,
    /// Where that `health-rule` is written, if it is.
    pub health_rule_span: Option<std::ops::Range<usize>>,
    /// Line of the endpoint, for errors found at load.
    pub line: usize,
}

/// What an endpoint answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointTarget {
    /// A and/or AAAA records.
    Addresses(Vec<IpAddr>),
    /// A CNAME to this name.
    Cname(Name),
    /// Another service decides.
    Service {
        /// The child service's name.
        name: Name,
        /// Fit endpoints the child needs to count as fit.
        min_healthy: u16,
    },
}

/// Where a separate probe goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The address probed.
    pub address: IpAddr,
    /// The port, when not the monitor's.
    pub port: Option<u16>,
}

impl ProbeTarget {
    /// The socket address to probe, with `default_port` when none is set.
    pub fn socket(&self, default_port: u16) -> SocketAddr {
        SocketAddr::new(self.address, self.port.unwrap_or(default_port))
    }
}

impl std::str::FromStr for ProbeTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<ProbeTarget, String> {
        if let Ok(address) = s.parse::<IpAddr>() {
            return Ok(ProbeTarget {
                address,
                port: None,
            });
        }
        s.parse::<SocketAddr>()
            .map(|a| ProbeTarget {
                address: a.ip(),
                port: Some(a.port()),
            })
            .map_err(|_| format!("{s:?} is not ADDRESS or ADDRESS:PORT ([v6]:port for IPv6)"))
    }
}

/// Multivalue's default: eight records, as Route 53 answers.
fn default_max_answers() -> u8 {
    8
}

/// One endpoint as written (an inline table in `endpoints = [...]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct EndpointSpec {
    name: Spanned<String>,
    addresses: Option<Spanned<Vec<IpAddr>>>,
    cname: Option<Spanned<String>>,
    service: Option<Spanned<String>>,
    min_healthy: Option<Spanned<u16>>,
    monitor: Option<Spanned<String>>,
    probe: Option<Spanned<String>>,
    weight: Option<Spanned<u32>>,
    priority: Option<Spanned<u32>>,
    subnets: Option<Spanned<Vec<String>>>,
    location: Option<Spanned<Vec<f64>>>,
    enabled: Option<bool>,
    health_rule: Option<Spanned<String>>,
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
    peers: Option<Spanned<Vec<IpAddr>>>,
    when_down: Option<Spanned<String>>,
    degraded_ttl: Option<Spanned<u32>>,
    when_all_down: Option<Spanned<String>>,
    sticky: Option<Spanned<bool>>,
    ramp_up: Option<Spanned<String>>,
    hash_prefix_v4: Option<Spanned<u8>>,
    hash_prefix_v6: Option<Spanned<u8>>,
    max_answers: Option<Spanned<u8>>,
    endpoints: Option<Spanned<Vec<EndpointSpec>>>,
    regions: Option<Spanned<BTreeMap<String, Spanned<Vec<String>>>>>,
    overrides: Option<Spanned<BTreeMap<String, Spanned<Vec<String>>>>>,
    default: Option<Spanned<String>>,
    answers: Option<Spanned<u8>>,
    health_rule: Option<Spanned<String>>,
}

/// Where the first service (or endpoint) with a `health-rule` other than
/// `local` writes it, for the error when no `[cluster]` shares verdicts.
pub(super) fn shared_rule(services: &[ServiceConfig]) -> Option<std::ops::Range<usize>> {
    services.iter().find_map(|s| {
        let endpoint = s
            .endpoints
            .iter()
            .find(|e| e.health_rule.is_some_and(|r| r != HealthRule::Local));
        match endpoint {
            Some(e) => e.health_rule_span.clone(),
            None if s.health_rule != HealthRule::Local => s.health_rule_span.clone(),
            None => None,
        }
    })
}

/// The first service that needs a `[geoip]` database, for the error when
/// none is configured.
pub(super) fn needing_geoip(
    services: &[ServiceConfig],
) -> Option<(std::ops::Range<usize>, &'static str)> {
    services
        .iter()
        .find(|s| matches!(s.routing, Routing::Geographic | Routing::Performance))
        .map(|s| (s.routing_span.clone(), s.routing.name()))
}

/// A `regions` table: each key a region (refused when it is not one, or
/// when two keys name the same region), each value endpoint names of
/// `endpoints` (refused when unknown).
fn region_map(
    table: Spanned<BTreeMap<String, Spanned<Vec<String>>>>,
    key: &str,
    endpoints: &[EndpointConfig],
    disabled: &HashSet<String>,
) -> Result<Vec<(Region, Vec<String>)>, Invalid> {
    let span = table.span();
    let out = keyed_lists(table.into_inner(), key, "region", endpoints, disabled)?;
    if out.is_empty() {
        return Err(Invalid::new(span, format!("{key}: is empty")));
    }
    Ok(out)
}

/// Performance routing's `overrides`: keys with a `/` are client prefixes
/// (`203.0.113.0/24`), the others regions; each gets a measured endpoint
/// order.
type Overrides = (Vec<(Region, Vec<String>)>, Vec<(Prefix, Vec<String>)>);

/// Reads an `overrides` table (see [`Overrides`]).
fn override_map(
    table: Spanned<BTreeMap<String, Spanned<Vec<String>>>>,
    key: &str,
    endpoints: &[EndpointConfig],
    disabled: &HashSet<String>,
) -> Result<Overrides, Invalid> {
    let span = table.span();
    let (prefixes, regions): (BTreeMap<_, _>, BTreeMap<_, _>) = table
        .into_inner()
        .into_iter()
        .partition(|(k, _)| k.contains('/'));
    let regions = keyed_lists(regions, key, "region", endpoints, disabled)?;
    let prefixes = keyed_lists(prefixes, key, "prefix", endpoints, disabled)?;
    if regions.is_empty() && prefixes.is_empty() {
        return Err(Invalid::new(span, format!("{key}: is empty")));
    }
    Ok((regions, prefixes))
}

/// Lists of endpoint names keyed by a region or a prefix: each key read as
/// a `K` (refused when it is not one, or when two keys name the same `K`:
/// one key, one list), each name one of `endpoints` (a disabled endpoint
/// stays named in the file but leaves the list).
fn keyed_lists<K>(
    table: BTreeMap<String, Spanned<Vec<String>>>,
    key: &str,
    what: &str,
    endpoints: &[EndpointConfig],
    disabled: &HashSet<String>,
) -> Result<Vec<(K, Vec<String>)>, Invalid>
where
    K: std::str::FromStr<Err: std::fmt::Display> + PartialEq + std::fmt::Display,
{
    let mut out: Vec<(K, Vec<String>)> = Vec::new();
    for (name, list) in table {
        let k: K = name
            .parse()
            .map_err(|e| Invalid::at(&list, format!("{key}: {e}")))?;
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(Invalid::at(
                &list,
                format!("{key}: {what} {k} is listed twice (one {what}, one list)"),
            ));
        }
        if list.get_ref().is_empty() {
            return Err(Invalid::at(&list, format!("{key}.{name}: is empty")));
        }
        let mut names = Vec::new();
        for e in list.get_ref() {
            if !endpoints.iter().any(|ec| &ec.name == e) && !disabled.contains(e) {
                return Err(Invalid::at(
                    &list,
                    format!("{key}.{name}: no endpoint named {e:?}"),
                ));
            }
            if !disabled.contains(e) {
                names.push(e.clone());
            }
        }
        out.push((k, names));
    }
    Ok(out)
}

/// Refuses a key that `routing` does not use.
fn only_for<T>(
    value: &Option<Spanned<T>>,
    key: &str,
    routing: Routing,
    allowed: &[Routing],
) -> Result<(), Invalid> {
    match value {
        Some(v) if !allowed.contains(&routing) => {
            let names: Vec<String> = allowed.iter().map(|r| format!("{:?}", r.name())).collect();
            Err(Invalid::at(
                v,
                format!(
                    "{key}: not used by routing = {:?} (only by {})",
                    routing.name(),
                    names.join(", ")
                ),
            ))
        }
        _ => Ok(()),
    }
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
    // Where each nesting endpoint names its child: (service, endpoint,
    // span), for errors found once every service is known.
    let mut nested_spans: Vec<(usize, usize, std::ops::Range<usize>)> = Vec::new();
    for sv in specs {
        let line = lines.line_of(sv.name.span().start);
        let name = name_key(&sv.name, "service.name")?;
        if !service_names.insert(name.clone()) {
            return Err(Invalid::at(
                &sv.name,
                format!("service.name: {name} is listed twice"),
            ));
        }
        let routing: Routing = sv
            .routing
            .get_ref()
            .parse()
            .map_err(|e| Invalid::at(&sv.routing, format!("service.routing: {e}")))?;
        let known_monitor = |m: &Spanned<String>, key: &str| {
            if monitors.contains_key(m.get_ref()) {
                Ok(())
            } else {
                Err(Invalid::at(
                    m,
                    format!("{key}: no [monitor.{}] is defined", m.get_ref()),
                ))
            }
        };
        if let Some(m) = &sv.monitor {
            known_monitor(m, "service.monitor")?;
        }
        use Routing::*;
        let is_self = routing == SelfAddress;
        only_for(&sv.monitor, "service.monitor", routing, &[SelfAddress])?;
        only_for(&sv.peers, "service.peers", routing, &[SelfAddress])?;
        only_for(&sv.when_down, "service.when-down", routing, &[SelfAddress])?;
        let algorithmic = [
            Priority,
            Weighted,
            Multivalue,
            Subnet,
            Geographic,
            Performance,
        ];
        only_for(
            &sv.degraded_ttl,
            "service.degraded-ttl",
            routing,
            &algorithmic,
        )?;
        only_for(
            &sv.when_all_down,
            "service.when-all-down",
            routing,
            &algorithmic,
        )?;
        only_for(&sv.sticky, "service.sticky", routing, &[Weighted])?;
        only_for(&sv.ramp_up, "service.ramp-up", routing, &[Weighted])?;
        only_for(
            &sv.hash_prefix_v4,
            "service.hash-prefix-v4",
            routing,
            &[Weighted],
        )?;
        only_for(
            &sv.hash_prefix_v6,
            "service.hash-prefix-v6",
            routing,
            &[Weighted],
        )?;
        only_for(
            &sv.max_answers,
            "service.max-answers",
            routing,
            &[Multivalue],
        )?;
        only_for(&sv.endpoints, "service.endpoints", routing, &algorithmic)?;
        only_for(&sv.regions, "service.regions", routing, &[Geographic])?;
        only_for(&sv.overrides, "service.overrides", routing, &[Performance])?;
        only_for(&sv.default, "service.default", routing, &[Performance])?;
        only_for(&sv.answers, "service.answers", routing, &[Performance])?;
        // A `self` service's verdict is about this node's own payload,
        // which no other node can see.
        only_for(
            &sv.health_rule,
            "service.health-rule",
            routing,
            &algorithmic,
        )?;
        let health_rule = match &sv.health_rule {
            Some(r) => r
                .get_ref()
                .parse()
                .map_err(|e| Invalid::at(r, format!("service.health-rule: {e}")))?,
            None => HealthRule::Local,
        };

        let peers = sv.peers.map(|p| p.into_inner()).unwrap_or_default();
        let when_down = match &sv.when_down {
            Some(w) => w
                .get_ref()
                .parse()
                .map_err(|e| Invalid::at(w, format!("service.when-down: {e}")))?,
            None if peers.is_empty() => WhenDown::Refuse,
            None => WhenDown::Peers,
        };
        if is_self && when_down == WhenDown::Peers && peers.is_empty() {
            let span = sv.when_down.as_ref().map_or(sv.name.span(), |w| w.span());
            return Err(Invalid::new(
                span,
                "service.when-down: \"peers\" needs a peers list",
            ));
        }
        let when_all_down = match &sv.when_all_down {
            Some(w) => w
                .get_ref()
                .parse()
                .map_err(|e| Invalid::at(w, format!("service.when-all-down: {e}")))?,
            None => WhenAllDown::default(),
        };
        let defaults = crate::policy::Weighted::default();
        let weighted = crate::policy::Weighted {
            sticky: sv.sticky.map_or(defaults.sticky, |s| s.into_inner()),
            ramp_up: sv
                .ramp_up
                .as_ref()
                .map(|r| duration(r, "service.ramp-up", "5m"))
                .transpose()?,
            v4_prefix: within(
                &sv.hash_prefix_v4,
                "service.hash-prefix-v4",
                0..=32,
                defaults.v4_prefix,
            )?,
            v6_prefix: within(
                &sv.hash_prefix_v6,
                "service.hash-prefix-v6",
                0..=128,
                defaults.v6_prefix,
            )?,
        };
        let max_answers = within(
            &sv.max_answers,
            "service.max-answers",
            1..=MAX_PICK as u8,
            default_max_answers(),
        )?;
        let mut disabled = HashSet::new();
        let endpoints = match sv.endpoints {
            Some(list) => {
                let (list, spans) = endpoints(list, routing, &known_monitor, lines)?;
                disabled = list.1;
                let list = list.0;
                let at = services.len();
                nested_spans.extend(spans.into_iter().map(|(e, span)| (at, e, span)));
                list
            }
            None if is_self => Vec::new(),
            None => {
                return Err(Invalid::at(
                    &sv.routing,
                    format!(
                        "service.endpoints: routing = {:?} needs an endpoints list",
                        routing.name()
                    ),
                ))
            }
        };
        let regions = match sv.regions {
            Some(t) => region_map(t, "service.regions", &endpoints, &disabled)?,
            None if routing == Geographic => {
                return Err(Invalid::at(
                    &sv.routing,
                    "service.regions: geographic routing needs a regions table",
                ))
            }
            None => Vec::new(),
        };
        let (overrides, prefix_overrides) = match sv.overrides {
            Some(t) => override_map(t, "service.overrides", &endpoints, &disabled)?,
            None => (Vec::new(), Vec::new()),
        };
        let default_endpoint = match &sv.default {
            Some(d) if !endpoints.iter().any(|e| &e.name == d.get_ref()) => {
                return Err(Invalid::at(
                    d,
                    format!(
                        "service.default: no enabled endpoint named {:?}",
                        d.get_ref()
                    ),
                ))
            }
            Some(d) => Some(d.get_ref().clone()),
            None => None,
        };
        let answers = within(&sv.answers, "service.answers", 1..=MAX_PICK as u8, 1)?;
        let ttl = sv.ttl.unwrap_or_else(default_service_ttl);
        services.push(ServiceConfig {
            name,
            routing,
            ttl,
            monitor: sv.monitor.map(|m| m.into_inner()),
            peers,
            when_down,
            degraded_ttl: sv.degraded_ttl.map(|t| t.into_inner()),
            when_all_down,
            weighted,
            max_answers,
            endpoints,
            regions,
            overrides,
            prefix_overrides,
            default_endpoint,
            answers,
            health_rule,
            health_rule_span: sv.health_rule.as_ref().map(|r| r.span()),
            routing_span: sv.routing.span(),
            line,
        });
    }
    check_nesting(&services, &nested_spans)?;
    Ok(services)
}

/// A name key: absolute, lowercased, a missing final dot added.
fn name_key(value: &Spanned<String>, key: &str) -> Result<Name, Invalid> {
    Name::from_absolute_text(value.get_ref())
        .map(|n| n.to_lowercase())
        .map_err(|e| Invalid::at(value, format!("{key}: {:?}: {e}", value.get_ref())))
}

/// An endpoint list checked against its service's method; returns the
/// endpoints that are enabled and the spans of their `service` keys.
#[allow(clippy::type_complexity)]
fn endpoints(
    list: Spanned<Vec<EndpointSpec>>,
    routing: Routing,
    known_monitor: &impl Fn(&Spanned<String>, &str) -> Result<(), Invalid>,
    lines: &Lines,
) -> Result<
    (
        (Vec<EndpointConfig>, HashSet<String>),
        Vec<(usize, std::ops::Range<usize>)>,
    ),
    Invalid,
> {
    use Routing::*;
    let list_span = list.span();
    if list.get_ref().is_empty() {
        return Err(Invalid::at(&list, "service.endpoints: is empty"));
    }
    let mut out: Vec<EndpointConfig> = Vec::new();
    let mut spans = Vec::new();
    let mut names = HashSet::new();
    let mut priorities: HashMap<u32, String> = HashMap::new();
    let mut subnets: HashMap<Prefix, String> = HashMap::new();
    let mut default: Option<String> = None;
    let mut disabled = HashSet::new();
    for spec in list.into_inner() {
        let name = spec.name.get_ref().clone();
        let key = |k: &str| format!("endpoint {name:?}: {k}");
        if name.is_empty() || !names.insert(name.clone()) {
            return Err(Invalid::at(
                &spec.name,
                format!("endpoint.name: {name:?} is empty or listed twice in this service"),
            ));
        }
        only_for(&spec.weight, &key("weight"), routing, &[Weighted])?;
        only_for(&spec.priority, &key("priority"), routing, &[Priority])?;
        only_for(&spec.subnets, &key("subnets"), routing, &[Subnet])?;
        if let (Some(v), None) = (&spec.min_healthy, &spec.service) {
            return Err(Invalid::at(
                v,
                key("min-healthy: only for an endpoint with service ="),
            ));
        }
        let targets = [
            spec.addresses.is_some(),
            spec.cname.is_some(),
            spec.service.is_some(),
        ];
        let target = match (&spec.addresses, &spec.cname, &spec.service) {
            _ if targets.iter().filter(|&&t| t).count() != 1 => {
                return Err(Invalid::at(
                    &spec.name,
                    key("needs exactly one of addresses, cname or service"),
                ))
            }
            (Some(a), _, _) if a.get_ref().is_empty() => {
                return Err(Invalid::at(a, key("addresses: is empty")))
            }
            (Some(a), _, _) => EndpointTarget::Addresses(a.get_ref().clone()),
            (_, Some(c), _) => EndpointTarget::Cname(name_key(c, &key("cname"))?),
            (_, _, Some(svc)) => EndpointTarget::Service {
                name: name_key(svc, &key("service"))?,
                min_healthy: spec.min_healthy.as_ref().map_or(1, |m| *m.get_ref()),
            },
            _ => unreachable!("exactly one target is set"),
        };
        if routing == Multivalue && !matches!(target, EndpointTarget::Addresses(_)) {
            return Err(Invalid::at(
                &spec.name,
                key("multivalue answers addresses only; cname and service endpoints need another method"),
            ));
        }
        if let Some(m) = &spec.monitor {
            known_monitor(m, &key("monitor"))?;
        }
        let probe = match &spec.probe {
            None => None,
            Some(p) if spec.monitor.is_none() => {
                return Err(Invalid::at(p, key("probe: needs a monitor")))
            }
            Some(p) => Some(
                p.get_ref()
                    .parse::<ProbeTarget>()
                    .map_err(|e| Invalid::at(p, key(&format!("probe: {e}"))))?,
            ),
        };
        match (&target, &spec.monitor, &probe) {
            (EndpointTarget::Cname(_), Some(m), None) => {
                return Err(Invalid::at(
                    m,
                    key("monitor: a cname endpoint has no address to probe; set probe = \"ADDRESS[:PORT]\""),
                ))
            }
            (EndpointTarget::Service { .. }, Some(m), _) => {
                return Err(Invalid::at(
                    m,
                    key("monitor: a service endpoint's health comes from its service's endpoints (see min-healthy)"),
                ))
            }
            _ => {}
        }
        if routing == Priority {
            let Some(p) = &spec.priority else {
                return Err(Invalid::at(
                    &spec.name,
                    key("priority: required by priority routing"),
                ));
            };
            if let Some(other) = priorities.insert(*p.get_ref(), name.clone()) {
                return Err(Invalid::at(
                    p,
                    key(&format!(
                        "priority: {} is also endpoint {other:?}'s",
                        p.get_ref()
                    )),
                ));
            }
        }
        let mut prefixes = Vec::new();
        if let Some(list) = &spec.subnets {
            for text in list.get_ref() {
                let prefix: Prefix = text
                    .parse()
                    .map_err(|e| Invalid::at(list, key(&format!("subnets: {e}"))))?;
                if let Some(other) = subnets.insert(prefix, name.clone()) {
                    return Err(Invalid::at(
                        list,
                        key(&format!(
                            "subnets: {prefix} is listed twice (also in {other:?})"
                        )),
                    ));
                }
                prefixes.push(prefix);
            }
        }
        if routing == Subnet && prefixes.is_empty() {
            if let Some(other) = default.replace(name.clone()) {
                return Err(Invalid::at(
                    &spec.name,
                    key(&format!(
                        "has no subnets, and neither has {other:?}: only one endpoint may be the default"
                    )),
                ));
            }
        }
        only_for(&spec.location, &key("location"), routing, &[Performance])?;
        let location = match &spec.location {
            None if routing == Performance => {
                return Err(Invalid::at(
                    &spec.name,
                    key("location: performance routing needs [latitude, longitude]"),
                ))
            }
            None => None,
            Some(l) => match l.get_ref()[..] {
                [lat, lon] if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) => {
                    Some((lat, lon))
                }
                _ => return Err(Invalid::at(
                    l,
                    key("location: must be [latitude, longitude] in degrees (-90..90, -180..180)"),
                )),
            },
        };
        let health_rule = match &spec.health_rule {
            Some(r) => Some(
                r.get_ref()
                    .parse::<HealthRule>()
                    .map_err(|e| Invalid::at(r, key(&format!("health-rule: {e}"))))?,
            ),
            None => None,
        };
        if spec.enabled == Some(false) {
            disabled.insert(name);
            continue;
        }
        if let Some(svc) = &spec.service {
            spans.push((out.len(), svc.span()));
        }
        out.push(EndpointConfig {
            name,
            target,
            monitor: spec.monitor.map(|m| m.into_inner()),
            probe,
            weight: spec.weight.map_or(1, |w| w.into_inner()),
            priority: spec.priority.map_or(0, |p| p.into_inner()),
            subnets: prefixes,
            location,
            health_rule,
            health_rule_span: spec.health_rule.as_ref().map(|r| r.span()),
            line: lines.line_of(spec.name.span().start),
        });
    }
    if out.is_empty() {
        return Err(Invalid::new(
            list_span,
            "service.endpoints: every endpoint is disabled",
        ));
    }
    Ok(((out, disabled), spans))
}

/// Refuses nesting that names no service, loops, or goes deeper than
/// [`MAX_NESTING`]: the answer path follows nesting without checks.
fn check_nesting(
    services: &[ServiceConfig],
    spans: &[(usize, usize, std::ops::Range<usize>)],
) -> Result<(), Invalid> {
    let index: HashMap<&Name, usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (&s.name, i))
        .collect();
    let children = |i: usize| {
        services[i]
            .endpoints
            .iter()
            .filter_map(|e| match &e.target {
                EndpointTarget::Service { name, .. } => Some(name),
                _ => None,
            })
    };
    for (s, e, span) in spans {
        let EndpointTarget::Service { name, .. } = &services[*s].endpoints[*e].target else {
            continue;
        };
        let endpoint = &services[*s].endpoints[*e].name;
        let Some(&child) = index.get(name) else {
            return Err(Invalid::new(
                span.clone(),
                format!("endpoint {endpoint:?}: service: no [[service]] is named {name}"),
            ));
        };
        // Depth-first from the child, bounded: a path longer than the limit
        // is either a loop or too deep, and both are refused.
        let mut stack = vec![(child, 1u8)];
        while let Some((at, depth)) = stack.pop() {
            if at == *s || depth > MAX_NESTING {
                let what = if at == *s {
                    "nesting loops back to this service"
                } else {
                    "nesting is deeper than 8 services"
                };
                return Err(Invalid::new(
                    span.clone(),
                    format!("endpoint {endpoint:?}: service: {name}: {what}"),
                ));
            }
            for c in children(at) {
                if let Some(&ci) = index.get(c) {
                    stack.push((ci, depth + 1));
                }
            }
        }
    }
    Ok(())
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

    /// The line of the first line of `text` past `MINIMAL`, plus `n`.
    fn at(n: usize) -> String {
        let base = crate::config::tests::MINIMAL.lines().count();
        format!(":{}:", base + n)
    }

    #[test]
    fn routed_services_and_their_endpoints() {
        let text = "[monitor.web]\nprotocol = \"tcp\"\nport = 443\n\
            [[service]]\nname = \"www.example.com\"\nrouting = \"weighted\"\n\
            hash-prefix-v4 = 20\ndegraded-ttl = 5\nendpoints = [\n\
            { name = \"fra\", addresses = [\"192.0.2.10\", \"2001:db8::10\"], weight = 3, monitor = \"web\" },\n\
            { name = \"nat\", addresses = [\"203.0.113.10\"], monitor = \"web\", probe = \"10.0.0.10:8443\" },\n\
            { name = \"off\", addresses = [\"203.0.113.11\"], enabled = false },\n\
            { name = \"spare\", cname = \"spare.cdn.example.net\", weight = 0 },\n]\n";
        let c = parse_with(text).unwrap();
        let s = &c.services[0];
        assert_eq!(s.routing, Routing::Weighted);
        assert_eq!(
            (s.weighted.v4_prefix, s.weighted.v6_prefix, s.degraded_ttl),
            (20, 56, Some(5))
        );
        let names: Vec<&str> = s.endpoints.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["fra", "nat", "spare"],
            "disabled endpoints are left out"
        );
        assert_eq!(s.endpoints[0].weight, 3);
        assert_eq!(
            s.endpoints[1].probe.unwrap().socket(1),
            "10.0.0.10:8443".parse().unwrap()
        );
        assert_eq!(
            s.endpoints[2].target,
            EndpointTarget::Cname(Name::from_text("spare.cdn.example.net.", None).unwrap())
        );
        assert_eq!(s.endpoints[2].weight, 0);
    }

    #[test]
    fn refused_endpoint_configs_name_line_and_key() {
        let head = |routing: &str| {
            format!("[monitor.web]\nprotocol = \"tcp\"\nport = 80\n[[service]]\nname = \"s.example.com\"\nrouting = \"{routing}\"\n")
        };
        // (routing, rest of the service, line of the error past MINIMAL, text)
        let cases: &[(&str, &str, usize, &str)] = &[
            ("priority", "endpoints = [\n{ name = \"a\", addresses = [\"192.0.2.1\"], priority = 1, weight = 2 },\n]\n", 8, "weight: not used by routing = \"priority\""),
            ("weighted", "peers = [\"192.0.2.1\"]\nendpoints = [{ name = \"a\", addresses = [\"192.0.2.1\"] }]\n", 7, "service.peers: not used by routing = \"weighted\""),
            ("weighted", "", 6, "needs an endpoints list"),
            ("self", "endpoints = [{ name = \"a\", addresses = [\"192.0.2.1\"] }]\n", 7, "service.endpoints: not used by routing = \"self\""),
            ("weighted", "endpoints = [\n{ name = \"a\", addresses = [\"192.0.2.1\"], cname = \"x.example.net\" },\n]\n", 8, "exactly one of addresses, cname or service"),
            ("weighted", "endpoints = [\n{ name = \"a\", addresses = [\"192.0.2.1\"] },\n{ name = \"a\", addresses = [\"192.0.2.2\"] },\n]\n", 9, "listed twice"),
            ("weighted", "endpoints = [\n{ name = \"a\", addresses = [\"192.0.2.1\"], colour = 1 },\n]\n", 8, "colour"),
            ("priority", "endpoints = [\n{ name = \"a\", addresses = [\"192.0.2.1\"], priority = 1 },\n{ name = \"b\", addresses = [\"192.0.2.2\"], priority = 1 },\n]\n", 9, "priority: 1 is also endpoint \"a\"'s"),
            ("priority", "endpoints = [\n{ name = \"a\", addresses = [\"192.0.2.1\"] },\n]\n", 8, "priority: required"),
            ("subnet", "endpoints = [\n{ name = \"a\", addresses = [\"192.0.2.1\"], subnets = [\"10.0.0.0/8\"] },\n{ name = \"b\", addresses = [\"192.0.2.2\"], subnets = [\"10.0.0.0/8\"] },\n]\n", 9, "10.0.0.0/8 is listed twice (also in \"a\")"),
            ("subnet", "endpoints = [\n{ name = \"a\", addresses = [\"192.0.2.1\"] },\n{ name = \"b\", addresses = [\"192.0.2.2\"] },\n]\n", 9, "only one endpoint may be the default"),
            ("subnet", "endpoints = [\n{ name = \"a\", addresses = [\"192.0.2.1\"], subnets = [\"10.0.0.1/8\"] },\n]\n", 8, "bits set past its prefix length"),
            ("multivalue", "max-answers = 17\nendpoints = [{ name = \"a\", addresses = [\"192.0.2.1\"] }]\n", 7, "max-answers: must be between 1 and 16"),
            ("multivalue", "endpoints = [\n{ name = \"a\", cname = \"x.example.net\" },\n]\n", 8, "multivalue answers addresses only"),
            ("weighted", "endpoints = [\n{ name = \"a\", cname = \"x.example.net\", monitor = \"web\" },\n]\n", 8, "set probe"),
            ("weighted", "endpoints = [\n{ name = \"a\", addresses = [\"192.0.2.1\"], probe = \"10.0.0.1\" },\n]\n", 8, "probe: needs a monitor"),
            ("weighted", "endpoints = [\n{ name = \"a\", addresses = [\"192.0.2.1\"], monitor = \"nope\" },\n]\n", 8, "no [monitor.nope]"),
            ("weighted", "when-all-down = \"maybe\"\nendpoints = [{ name = \"a\", addresses = [\"192.0.2.1\"] }]\n", 7, "when-all-down: unknown value"),
            ("weighted", "endpoints = [\n{ name = \"a\", service = \"nowhere.example.com\" },\n]\n", 8, "no [[service]] is named nowhere.example.com."),
            ("weighted", "endpoints = [\n{ name = \"a\", service = \"s.example.com\" },\n]\n", 8, "nesting loops back to this service"),
            ("weighted", "endpoints = [\n{ name = \"a\", addresses = [\"192.0.2.1\"], min-healthy = 2 },\n]\n", 8, "min-healthy: only for an endpoint with service"),
        ];
        for &(routing, rest, line, want) in cases {
            let e = parse_with(&format!("{}{rest}", head(routing))).unwrap_err();
            assert!(
                e.contains(&at(line)) && e.contains(want),
                "{routing} {rest:?}: {e}"
            );
        }
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        let chain = |n: usize| -> String {
            (0..n)
                .map(|i| {
                    format!(
                        "[[service]]\nname = \"s{i}.example.com\"\nrouting = \"weighted\"\nendpoints = [{{ name = \"next\", service = \"s{}.example.com\" }}]\n",
                        i + 1
                    )
                })
                .collect::<String>()
                + &format!("[[service]]\nname = \"s{n}.example.com\"\nrouting = \"weighted\"\nendpoints = [{{ name = \"a\", addresses = [\"192.0.2.1\"] }}]\n")
        };
        parse_with(&chain(8)).unwrap();
        let e = parse_with(&chain(9)).unwrap_err();
        assert!(e.contains(&at(4)) && e.contains("deeper than 8"), "{e}");
    }

    #[test]
    fn geographic_and_performance_configs() {
        let geo = "[geoip]\ndatabase = \"geo/city.mmdb\"\n[[service]]\nname = \"g.example.com\"\n";
        // 4 lines of `geo`; the service's own lines follow from line 5.
        let ok = format!(
            "{geo}routing = \"geographic\"\nendpoints = [\n\
             {{ name = \"lon\", addresses = [\"192.0.2.1\"] }},\n\
             {{ name = \"fra\", addresses = [\"192.0.2.2\"] }},\n]\n\
             regions = {{ \"EU\" = [\"fra\", \"lon\"], \"gb\" = [\"lon\"], \"*\" = [\"fra\"] }}\n"
        );
        let c = parse_with(&ok).unwrap();
        assert_eq!(c.geoip.as_deref(), Some(Path::new("conf/geo/city.mmdb")));
        let regions: Vec<String> = c.services[0]
            .regions
            .iter()
            .map(|(r, _)| r.to_string())
            .collect();
        assert_eq!(regions, ["*", "EU", "GB"]);
        // Performance overrides: region keys and prefix keys, apart.
        let perf = format!(
            "{geo}routing = \"performance\"\nendpoints = [\n\
             {{ name = \"lon\", addresses = [\"192.0.2.1\"], location = [51.5, -0.1] }},\n\
             {{ name = \"fra\", addresses = [\"192.0.2.2\"], location = [50.1, 8.7] }},\n]\n\
             overrides = {{ \"GB\" = [\"fra\"], \"203.0.113.0/24\" = [\"lon\", \"fra\"] }}\n"
        );
        let c = parse_with(&perf).unwrap();
        assert_eq!(c.services[0].overrides.len(), 1);
        assert_eq!(
            c.services[0].prefix_overrides,
            [(
                "203.0.113.0/24".parse().unwrap(),
                vec!["lon".to_string(), "fra".to_string()]
            )]
        );

        let cases: &[(&str, usize, &str)] = &[
            (
                "routing = \"geographic\"\nendpoints = [{ name = \"a\", addresses = [\"192.0.2.1\"] }]\n\
                 regions = { \"XX\" = [\"a\"] }\n",
                7,
                "service.regions: \"XX\" is not a region",
            ),
            (
                "routing = \"geographic\"\nendpoints = [{ name = \"a\", addresses = [\"192.0.2.1\"] }]\n\
                 regions = { \"GB\" = [\"a\"], \"gb\" = [\"a\"] }\n",
                7,
                "region GB is listed twice",
            ),
            (
                "routing = \"geographic\"\nendpoints = [{ name = \"a\", addresses = [\"192.0.2.1\"] }]\n\
                 regions = { \"GB\" = [\"b\"] }\n",
                7,
                "no endpoint named \"b\"",
            ),
            (
                "routing = \"geographic\"\nendpoints = [{ name = \"a\", addresses = [\"192.0.2.1\"] }]\n",
                5,
                "geographic routing needs a regions table",
            ),
            (
                "routing = \"performance\"\nendpoints = [\n{ name = \"a\", addresses = [\"192.0.2.1\"] },\n]\n",
                7,
                "location: performance routing needs [latitude, longitude]",
            ),
            (
                "routing = \"performance\"\nendpoints = [\n{ name = \"a\", addresses = [\"192.0.2.1\"], location = [91.0, 0.0] },\n]\n",
                7,
                "location: must be [latitude, longitude]",
            ),
            (
                "routing = \"performance\"\ndefault = \"b\"\nendpoints = [{ name = \"a\", addresses = [\"192.0.2.1\"], location = [1.0, 2.0] }]\n",
                6,
                "service.default: no enabled endpoint named \"b\"",
            ),
            (
                "routing = \"performance\"\nendpoints = [{ name = \"a\", addresses = [\"192.0.2.1\"], location = [1.0, 2.0] }]\n\
                 overrides = { \"203.0.113.1/24\" = [\"a\"] }\n",
                7,
                "service.overrides: 203.0.113.1/24 has bits set past its prefix length (did you mean 203.0.113.0/24?)",
            ),
            (
                "routing = \"performance\"\nendpoints = [{ name = \"a\", addresses = [\"192.0.2.1\"], location = [1.0, 2.0] }]\n\
                 overrides = { \"2001:db8::/32\" = [\"a\"], \"2001:DB8::/32\" = [\"a\"] }\n",
                7,
                "prefix 2001:db8::/32 is listed twice",
            ),
            (
                "routing = \"performance\"\nendpoints = [{ name = \"a\", addresses = [\"192.0.2.1\"], location = [1.0, 2.0] }]\n\
                 overrides = { \"10.0.0.0/8\" = [\"b\"] }\n",
                7,
                "service.overrides.10.0.0.0/8: no endpoint named \"b\"",
            ),
            (
                "routing = \"weighted\"\nregions = { \"GB\" = [\"a\"] }\nendpoints = [{ name = \"a\", addresses = [\"192.0.2.1\"] }]\n",
                6,
                "service.regions: not used by routing = \"weighted\"",
            ),
        ];
        for &(rest, line, want) in cases {
            let e = parse_with(&format!("{geo}{rest}")).unwrap_err();
            assert!(e.contains(&at(line)) && e.contains(want), "{rest:?}: {e}");
        }
        // Without a [geoip] database, geographic routing is refused.
        let e = parse_with(&ok.replace("[geoip]\ndatabase = \"geo/city.mmdb\"\n", "")).unwrap_err();
        assert!(
            e.contains(&at(3)) && e.contains("needs a [geoip] database"),
            "{e}"
        );
    }
}
