//! Routing policies: which records a service answers with.
//!
//! A service lists **endpoints** (addresses, a CNAME target, or another
//! service) and a **method** that picks among those fit to serve. In gdnsd's
//! terms these are the resolver plugins; in Azure Traffic Manager's and
//! Route 53's, the routing methods. Each method lives in its own file and
//! turns a per-query [`PolicyInput`] into a [`Decision`]: what to answer and
//! the ECS scope the choice depended on (RFC 7871 §7.2.1).
//!
//! Policies are pure: they read the health view and the query's input, and
//! decide. No I/O, no clock, no allocation; the engine writes what they
//! choose. The same code explains itself: every decision takes a
//! [`Trace`], which the answer path passes as `()` (compiled away) and
//! `steerdns explain` as an [`Explanation`] that records each step.

mod geographic;
mod multivalue;
mod performance;
mod priority;
mod self_address;
mod subnet;
mod trace;
mod weighted;

use std::net::IpAddr;

use crate::health::{HealthId, HealthView};
use crate::name::Name;

pub use geographic::{GeoChains, Geographic};
pub use multivalue::Multivalue;
pub use performance::Performance;
pub use priority::Priority;
pub use self_address::{Peer, SelfAddress, SelfChoice, WhenDown};
pub use subnet::Subnet;
pub use trace::{Explanation, Step, StepKind, Trace};
pub use weighted::Weighted;

/// Deepest chain of nested services; deeper configurations are refused at
/// load, so the answer path never recurses further.
pub const MAX_NESTING: u8 = 8;

/// Most endpoints one decision names (multivalue's `max-answers` cap).
pub const MAX_PICK: usize = 16;

/// The address family a question asks for: A or AAAA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4, type A.
    V4,
    /// IPv6, type AAAA.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(address: IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Whether `address` is of this family.
    pub fn has(self, address: IpAddr) -> bool {
        Family::of(address) == self
    }
}

/// What a decision may depend on, besides health: known per query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyInput {
    /// Where the client is: the ECS address when the query carried one,
    /// else the resolver's source address.
    pub client: IpAddr,
    /// How many leading bits of `client` are known: the ECS source prefix,
    /// or the full width for a source address. No scope exceeds it.
    pub source_prefix: u8,
    /// The local address the query arrived on (`self` answers with it).
    pub local: IpAddr,
    /// Per-query noise for choices meant to vary between queries (random
    /// weighted choice, multivalue rotation); taken from the query so that
    /// the decision stays a pure function of its input.
    pub entropy: u32,
}

/// The routing methods a service may name in its config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// `self`: the address the query arrived on.
    SelfAddress,
    /// `priority`: the fit endpoint with the lowest priority.
    Priority,
    /// `weighted`: endpoints by weight, sticky per client network.
    Weighted,
    /// `multivalue`: every fit endpoint, up to `max-answers`.
    Multivalue,
    /// `subnet`: client networks mapped to endpoints.
    Subnet,
    /// `geographic`: regions (from a MaxMind database) mapped to endpoints.
    Geographic,
    /// `performance`: the endpoint nearest the client.
    Performance,
}

impl Routing {
    /// Every method, by its config name.
    pub const ALL: [(&'static str, Routing); 7] = [
        ("self", Routing::SelfAddress),
        ("priority", Routing::Priority),
        ("weighted", Routing::Weighted),
        ("multivalue", Routing::Multivalue),
        ("subnet", Routing::Subnet),
        ("geographic", Routing::Geographic),
        ("performance", Routing::Performance),
    ];

    /// The config name.
    pub fn name(self) -> &'static str {
        Routing::ALL
            .iter()
            .find(|(_, r)| *r == self)
            .map_or("?", |(n, _)| n)
    }
}

impl std::str::FromStr for Routing {
    type Err = String;

    fn from_str(s: &str) -> Result<Routing, String> {
        Routing::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, r)| *r)
            .ok_or_else(|| {
                let known: Vec<String> =
                    Routing::ALL.iter().map(|(n, _)| format!("{n:?}")).collect();
                format!("unknown routing method {s:?} (known: {})", known.join(", "))
            })
    }
}

/// The route a service's method takes.
#[derive(Debug, Clone)]
pub enum Method {
    /// Answer with the address the query arrived on (the poor man's GTM).
    SelfAddress(SelfAddress),
    /// The healthy endpoint with the lowest priority.
    Priority(Priority),
    /// Endpoints by weight, sticky per client network.
    Weighted(Weighted),
    /// Every healthy endpoint, up to a maximum, rotated.
    Multivalue(Multivalue),
    /// Client networks mapped to endpoints, longest prefix first.
    Subnet(Subnet),
    /// Regions mapped to ordered endpoint lists.
    Geographic(Geographic),
    /// The nearest fit endpoint.
    Performance(Performance),
}

impl Method {
    /// Which method this is.
    pub fn routing(&self) -> Routing {
        match self {
            Method::SelfAddress(_) => Routing::SelfAddress,
            Method::Priority(_) => Routing::Priority,
            Method::Weighted(_) => Routing::Weighted,
            Method::Multivalue(_) => Routing::Multivalue,
            Method::Subnet(_) => Routing::Subnet,
            Method::Geographic(_) => Routing::Geographic,
            Method::Performance(_) => Routing::Performance,
        }
    }

    /// The method's configuration name.
    pub fn name(&self) -> &'static str {
        self.routing().name()
    }
}

/// What a service answers when none of its endpoints is fit to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenAllDown {
    /// Answer as if every endpoint were up (fail open, as Azure Traffic
    /// Manager and Route 53 do): a guess beats no answer when the probes
    /// themselves may be what failed.
    #[default]
    All,
    /// SERVFAIL, so the resolver tries again later or elsewhere.
    ServFail,
    /// NODATA: the name exists but has no address now.
    NoData,
}

impl std::str::FromStr for WhenAllDown {
    type Err = String;

    fn from_str(s: &str) -> Result<WhenAllDown, String> {
        match s {
            "all" => Ok(WhenAllDown::All),
            "servfail" => Ok(WhenAllDown::ServFail),
            "nodata" => Ok(WhenAllDown::NoData),
            other => Err(format!(
                "unknown value {other:?} (known: \"all\", \"servfail\", \"nodata\")"
            )),
        }
    }
}

/// One address of an endpoint and the slot its probe writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// The address answered.
    pub ip: IpAddr,
    /// Its probe's verdict (the endpoint's own slot when one probe target
    /// stands for all its addresses, or when nothing probes it).
    pub slot: HealthId,
}

/// What an endpoint answers with.
#[derive(Debug, Clone)]
pub enum Target {
    /// A and/or AAAA records.
    Addresses(Box<[Address]>),
    /// A CNAME record; the engine follows it when it lies in our zones.
    Cname(Name),
    /// Another service decides (nesting).
    Service {
        /// The service's index in the snapshot.
        index: u32,
        /// How many of the child's endpoints must be fit for the parent to
        /// count the child as fit.
        min_healthy: u16,
    },
}

/// One endpoint of a service, compiled.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Unique within its service.
    pub name: Box<str>,
    /// What it answers with.
    pub target: Target,
    /// Drain flag, and the verdict of a probe that stands for the whole
    /// endpoint (a separate probe target, or a CNAME endpoint's probe).
    pub slot: HealthId,
    /// Share in weighted routing; 0 marks a backup.
    pub weight: u32,
    /// Order in priority routing, lowest first.
    pub priority: u32,
    /// A hash of the endpoint's name: its identity in rendezvous hashing,
    /// so reordering the config moves no client.
    pub seed: u64,
}

/// A service compiled for answering.
#[derive(Debug, Clone)]
pub struct ServiceRule {
    /// The name the service answers for (lowercase; may be a wildcard).
    pub name: Name,
    /// TTL of the records it answers with.
    pub ttl: u32,
    /// TTL while any endpoint is unfit, so resolvers come back sooner (as
    /// gdnsd does); `None` keeps `ttl`.
    pub degraded_ttl: Option<u32>,
    /// How the answer is chosen.
    pub method: Method,
    /// The endpoints, in configured order (empty for `self`).
    pub endpoints: Box<[Endpoint]>,
    /// What to answer when no endpoint is fit.
    pub when_all_down: WhenAllDown,
    /// A hash of the service's name, mixed into rendezvous hashing so that
    /// two services with the same endpoints split clients independently.
    pub seed: u64,
}

/// A small set of endpoint indexes, in answer order, kept on the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointSet {
    items: [u16; MAX_PICK],
    len: u8,
}

impl EndpointSet {
    /// An empty set.
    pub const fn new() -> EndpointSet {
        EndpointSet {
            items: [0; MAX_PICK],
            len: 0,
        }
    }

    /// A set of one.
    pub fn one(index: usize) -> EndpointSet {
        let mut set = EndpointSet::new();
        set.push(index);
        set
    }

    /// Adds an index; returns false when full.
    pub fn push(&mut self, index: usize) -> bool {
        if usize::from(self.len) == MAX_PICK {
            return false;
        }
        self.items[usize::from(self.len)] = index as u16;
        self.len += 1;
        true
    }

    /// Adds `index` unless the set holds it already; an index past
    /// `u16::MAX` is kept as `u16::MAX`. Returns false when full. For sets
    /// of numbers that may repeat, such as [`crate::engine::Report`]'s
    /// endpoints.
    pub fn insert(&mut self, index: u32) -> bool {
        let index = u16::try_from(index).unwrap_or(u16::MAX);
        // A loop, not `contains`: that is a call to a search built for long
        // slices, and answers hold one or a few endpoints (18 instructions
        // a query less in callgrind).
        #[allow(clippy::manual_contains)]
        if self.items[..usize::from(self.len)]
            .iter()
            .any(|&i| i == index)
        {
            return true;
        }
        self.push(usize::from(index))
    }

    /// The indexes in answer order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.items[..usize::from(self.len)]
            .iter()
            .map(|&i| usize::from(i))
    }

    /// How many indexes it holds.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for EndpointSet {
    fn default() -> Self {
        EndpointSet::new()
    }
}

/// What to answer for one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The records of these endpoints of service `service` (never a nested
    /// service: nesting is resolved before the engine sees a pick).
    Endpoints {
        /// Index of the service that owns the endpoints.
        service: u32,
        /// Which endpoints, in answer order.
        set: EndpointSet,
        /// Answer unfit addresses too (fail open).
        all: bool,
        /// Most address records to write.
        limit: u8,
    },
    /// `self`: this node's address.
    Local {
        /// The address.
        address: IpAddr,
        /// The slot of the `self` service's local payload, which the
        /// answer names (for [`crate::last_sent`]).
        slot: HealthId,
    },
    /// `self`: the healthy peers of the family, from service `service`.
    Peers {
        /// Index of the `self` service.
        service: u32,
    },
    /// REFUSED, so the resolver asks another server.
    Refuse,
    /// SERVFAIL.
    ServFail,
    /// No record of that family: NODATA.
    Nothing,
}

/// A method's choice: what to answer, and what it depended on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// What to answer.
    pub pick: Pick,
    /// ECS scope prefix length: how many leading bits of the client
    /// address the choice depended on (RFC 7871 §7.2.1).
    pub scope: u8,
    /// TTL of the records written.
    pub ttl: u32,
}

/// The services of a snapshot, as policies see them (for nesting).
pub type Services = [ServiceRule];

impl ServiceRule {
    /// The slot of this node's own payload, for `self` services (drains of
    /// the node or the service apply to it).
    pub fn local_slot(&self) -> Option<HealthId> {
        match &self.method {
            Method::SelfAddress(s) => Some(s.local),
            _ => None,
        }
    }

    /// Whether endpoint `e` may be answered for `family` now: enabled, not
    /// drained, its probe (if any) up, and it has something of the family
    /// (for a nested service: enough fit endpoints).
    pub fn fit(
        &self,
        services: &Services,
        e: &Endpoint,
        health: &HealthView,
        family: Family,
    ) -> bool {
        fit(services, e, health, family, 0)
    }

    /// Whether endpoint `e` has anything to answer for `family`, fit or not.
    pub fn serves_family(services: &Services, e: &Endpoint, family: Family) -> bool {
        serves_family(services, e, family, 0)
    }

    /// The TTL to answer with: the degraded TTL while any endpoint is unfit.
    fn current_ttl(&self, services: &Services, health: &HealthView, family: Family) -> u32 {
        match self.degraded_ttl {
            Some(ttl)
                if self.endpoints.iter().any(|e| {
                    serves_family(services, e, family, 0) && !fit(services, e, health, family, 0)
                }) =>
            {
                ttl
            }
            _ => self.ttl,
        }
    }
}

fn serves_family(services: &Services, e: &Endpoint, family: Family, depth: u8) -> bool {
    match &e.target {
        Target::Addresses(list) => list.iter().any(|a| family.has(a.ip)),
        Target::Cname(_) => true,
        Target::Service { index, .. } => {
            depth < MAX_NESTING
                && services.get(*index as usize).is_some_and(|child| {
                    child
                        .endpoints
                        .iter()
                        .any(|c| serves_family(services, c, family, depth + 1))
                        || matches!(child.method, Method::SelfAddress(_))
                })
        }
    }
}

fn fit(services: &Services, e: &Endpoint, health: &HealthView, family: Family, depth: u8) -> bool {
    if !health.is_serving(e.slot) {
        return false;
    }
    match &e.target {
        Target::Addresses(list) => list
            .iter()
            .any(|a| family.has(a.ip) && health.is_serving(a.slot)),
        Target::Cname(_) => true,
        Target::Service { index, min_healthy } => {
            depth < MAX_NESTING
                && services.get(*index as usize).is_some_and(|child| {
                    let fit_children = child
                        .endpoints
                        .iter()
                        .filter(|c| fit(services, c, health, family, depth + 1))
                        .count();
                    match &child.method {
                        // A `self` child is fit while this node's payload is.
                        Method::SelfAddress(s) => health.is_serving(s.local),
                        _ => fit_children >= usize::from(*min_healthy),
                    }
                })
        }
    }
}

/// Decides what service `index` answers for `family`.
///
/// Nested services are followed here (at most [`MAX_NESTING`] deep), so the
/// engine only ever sees addresses, a CNAME, or a `self` answer. The scope
/// of a nested answer is the longest scope along the way: the answer
/// depended on every choice made to reach it.
pub fn decide<T: Trace>(
    services: &Services,
    index: u32,
    input: &PolicyInput,
    health: &HealthView,
    family: Family,
    trace: &mut T,
) -> Decision {
    let mut index = index;
    let mut scope = 0;
    let mut ttl = u32::MAX;
    for depth in 0..=MAX_NESTING {
        let Some(rule) = services.get(index as usize) else {
            break;
        };
        trace.step(|| Step::service(index, depth, rule));
        ttl = ttl.min(rule.current_ttl(services, health, family));
        let ask = Ask {
            services,
            rule,
            input,
            health,
            family,
        };
        let choice = match &rule.method {
            Method::SelfAddress(s) => s.decide(index, input, health, family, trace),
            Method::Priority(p) => p.decide(&ask, trace),
            Method::Weighted(w) => w.decide(&ask, trace),
            Method::Multivalue(m) => m.decide(&ask, trace),
            Method::Subnet(s) => s.decide(&ask, trace),
            Method::Geographic(g) => g.decide(&ask, trace),
            Method::Performance(p) => p.decide(&ask, trace),
        };
        scope = scope.max(choice.scope);
        let pick = match choice.pick {
            Chosen::Endpoints { set, all, limit } => {
                // One nested endpoint: its service decides.
                let nested = set
                    .iter()
                    .next()
                    .and_then(|i| match rule.endpoints[i].target {
                        Target::Service { index, .. } if set.len() == 1 => Some(index),
                        _ => None,
                    });
                if let Some(child) = nested {
                    index = child;
                    continue;
                }
                Pick::Endpoints {
                    service: index,
                    set,
                    all,
                    limit,
                }
            }
            Chosen::AllDown => {
                trace
                    .step(|| Step::note(index, format!("when-all-down: {:?}", rule.when_all_down)));
                match rule.when_all_down {
                    // Methods answer `All` themselves; reaching here means the
                    // service has nothing of the family at all.
                    WhenAllDown::All | WhenAllDown::NoData => Pick::Nothing,
                    WhenAllDown::ServFail => Pick::ServFail,
                }
            }
            Chosen::Other(pick) => pick,
        };
        return Decision {
            pick,
            scope: scope.min(input.source_prefix),
            ttl,
        };
    }
    // Unreachable with a configuration that passed load-time checks.
    Decision {
        pick: Pick::ServFail,
        scope: 0,
        ttl: 0,
    }
}

/// One question to one service's method: everything a decision may read.
#[derive(Clone, Copy)]
pub(crate) struct Ask<'a> {
    /// Every service, for nested endpoints' health.
    pub(crate) services: &'a Services,
    /// The service deciding.
    pub(crate) rule: &'a ServiceRule,
    /// Where the client is, and the query's noise.
    pub(crate) input: &'a PolicyInput,
    /// Probe verdicts and drains.
    pub(crate) health: &'a HealthView,
    /// A or AAAA.
    pub(crate) family: Family,
}

/// What one method chose, before nesting is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Choice {
    pub(crate) pick: Chosen,
    pub(crate) scope: u8,
}

/// A method's raw choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chosen {
    /// Endpoints of the service being decided.
    Endpoints {
        set: EndpointSet,
        all: bool,
        limit: u8,
    },
    /// Nothing fit, and the service does not fail open.
    AllDown,
    /// A final answer.
    Other(Pick),
}

impl Choice {
    /// One endpoint, fit (or answered as if fit when `all`).
    pub(crate) fn one(index: usize, all: bool, scope: u8) -> Choice {
        Choice {
            pick: Chosen::Endpoints {
                set: EndpointSet::one(index),
                all,
                limit: u8::MAX,
            },
            scope,
        }
    }

    /// Nothing of the family is configured: NODATA, whatever the client.
    pub(crate) fn nothing() -> Choice {
        Choice {
            pick: Chosen::Other(Pick::Nothing),
            scope: 0,
        }
    }
}

/// Picks the first of `candidates` fit to serve; when none is, applies the
/// service's `when-all-down` (fail open picks the first that serves the
/// family at all). Priority and subnet routing share this rule.
///
/// `scope` is what the candidates depended on; it holds for NODATA too
/// (no candidate of the family) when the candidates came from the client.
pub(crate) fn first_fit<T: Trace>(
    ask: &Ask<'_>,
    candidates: impl Iterator<Item = usize> + Clone,
    scope: u8,
    trace: &mut T,
) -> Choice {
    let Ask {
        services,
        rule,
        health,
        family,
        ..
    } = *ask;
    let mut any = None;
    for i in candidates {
        let e = &rule.endpoints[i];
        if !serves_family(services, e, family, 0) {
            trace.endpoint(rule, i, || "nothing of this family".into());
            continue;
        }
        any = any.or(Some(i));
        if fit(services, e, health, family, 0) {
            trace.endpoint(rule, i, || "fit: chosen".into());
            return Choice::one(i, false, scope);
        }
        trace.endpoint(rule, i, || "unfit: skipped".into());
    }
    match (any, rule.when_all_down) {
        (None, _) => Choice {
            pick: Chosen::Other(Pick::Nothing),
            scope,
        },
        (Some(i), WhenAllDown::All) => {
            trace.endpoint(rule, i, || "none fit; failing open with the first".into());
            Choice::one(i, true, scope)
        }
        (Some(_), _) => Choice {
            pick: Chosen::AllDown,
            scope,
        },
    }
}

/// A 64-bit hash of a name for rendezvous seeds (FNV-1a: stable across
/// releases and platforms, unlike std's `DefaultHasher`).
pub fn seed_of(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::health::{Health, HealthViewBuilder};

    /// parent (priority) -> [eu: child weighted (2 endpoints), us: cname]
    fn nested(min_healthy: u16) -> (Vec<ServiceRule>, HealthView) {
        let mut b = HealthViewBuilder::default();
        let mut parent_eps = endpoints(
            &mut b,
            &[
                E {
                    name: "eu",
                    addrs: &[],
                    weight: 1,
                    priority: 1,
                },
                E {
                    name: "us",
                    addrs: &[],
                    weight: 1,
                    priority: 2,
                },
            ],
        );
        parent_eps[0].target = Target::Service {
            index: 1,
            min_healthy,
        };
        parent_eps[1].target = Target::Cname(Name::from_text("us.cdn.example.net.", None).unwrap());
        let parent = rule(
            "app.example.com.",
            Method::Priority(Priority::new(&parent_eps)),
            parent_eps,
        );
        let child_eps = endpoints(
            &mut b,
            &[
                E {
                    name: "fra",
                    addrs: &["192.0.2.1"],
                    weight: 1,
                    priority: 0,
                },
                E {
                    name: "ams",
                    addrs: &["192.0.2.2"],
                    weight: 1,
                    priority: 0,
                },
            ],
        );
        let mut child = rule(
            "eu.example.com.",
            Method::Weighted(Weighted::default()),
            child_eps,
        );
        child.ttl = 10;
        (vec![parent, child], b.build())
    }

    #[test]
    fn nesting_follows_the_child_and_keeps_its_scope_and_ttl() {
        let (s, h) = nested(1);
        let d = decide(&s, 0, &input("198.51.100.7"), &h, Family::V4, &mut ());
        assert!(
            matches!(d.pick, Pick::Endpoints { service: 1, .. }),
            "{d:?}"
        );
        assert_eq!(
            (d.scope, d.ttl),
            (24, 10),
            "child's scope, lowest TTL on the way"
        );
        // AAAA: the child has no IPv6 address; the CNAME endpoint serves both.
        let d = decide(&s, 0, &input("198.51.100.7"), &h, Family::V6, &mut ());
        assert_eq!(names(&s, &d), ["us"]);
    }

    #[test]
    fn a_child_below_min_healthy_counts_as_unfit() {
        let (s, h) = nested(2);
        h.set_health(s[1].endpoints[0].slot, Health::Down);
        let d = decide(&s, 0, &input("198.51.100.7"), &h, Family::V4, &mut ());
        assert_eq!(names(&s, &d), ["us"], "one of two fit, two needed");
        let (s, h) = nested(1);
        h.set_health(s[1].endpoints[0].slot, Health::Down);
        let d = decide(&s, 0, &input("198.51.100.7"), &h, Family::V4, &mut ());
        assert_eq!((names(&s, &d), d.scope), (vec!["ams".to_string()], 0));
    }

    #[test]
    fn explanation_records_every_step() {
        let (s, h) = nested(1);
        let mut trace = Explanation::default();
        decide(&s, 0, &input("198.51.100.7"), &h, Family::V4, &mut trace);
        let kinds: Vec<(u32, u8, &StepKind)> = trace
            .steps
            .iter()
            .map(|st| (st.service, st.depth, &st.kind))
            .collect();
        assert_eq!(kinds[0], (0, 0, &StepKind::Service));
        assert_eq!(kinds[1], (0, 0, &StepKind::Endpoint("eu".into())));
        assert!(kinds.contains(&(1, 1, &StepKind::Service)));
        assert!(trace.steps.last().unwrap().text.contains("chosen"));
    }
}
