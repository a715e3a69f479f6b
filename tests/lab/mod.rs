//! The failover lab: the "poor man's GTM" built on one machine out of
//! network namespaces, with real recursive resolvers in front.
//!
//! ```text
//!                          bridge br0 (namespace sdl<pid>-bridge)
//!       ┌──────────────────┬──────────────────┬──────────────────┐
//!     root               lb1                lb2               resolvers
//!     192.0.2.1          198.51.100.10      203.0.113.20      192.0.2.53 unbound
//!     2001:db8::1        2001:db8:1::10     2001:db8:2::20    192.0.2.54 kresd
//!     NSD: the fake      steerdns :53       steerdns :53      192.0.2.55 pdns
//!     root, delegating   busybox httpd      busybox httpd     192.0.2.56 bind
//!     api.example.com    :8080 /healthz     :8080 /healthz    2001:db8::53
//!     to lb1 and lb2
//! ```
//!
//! Both nodes run steerdns with one identical config (`steerdns.toml`): a
//! `self` service that answers with the node's own address, and with the
//! healthy peers' (or REFUSED) while the node's payload is down or the node
//! is drained. The resolvers know only the fake root. [`Lab::inject`] breaks
//! lb1 in one of the ways of [`Fault`], [`Lab::lookups`] sends fresh
//! lookups through each resolver in turn and counts the queries lb1 got
//! meanwhile, [`Lab::heal`] repairs lb1.
//!
//! Everything the lab starts is a [`ServerProcess`] killed on drop, and the
//! namespaces go when [`Network`] drops, also when a test panics. Set
//! `STEERDNS_TEST_KEEP=1` to keep the scratch folders (configs, logs).

mod kinds;
mod netns;
mod node;
mod resolvers;

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use crate::common::{self, QueryOpts, ServerProcess, TempDir};
use netns::{Netns, Network};
use node::Node;
use resolvers::{Resolver, ResolverKind, RESOLVERS};

/// The zone the nodes serve and the resolvers are asked about.
const ZONE: &str = "api.example.com.";

/// The root server's addresses, as in `root.zone` and `root.hints`.
const ROOT: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
];

/// The resolvers' namespace's IPv6 address (their IPv4 addresses are
/// per resolver), from which they may ask the nodes over IPv6.
const RESOLVERS_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53));

/// A lookup through a resolver is sent up to this many times, this long
/// apart, as a stub resolver would: 12 s in all, so that the failover
/// bound of `tests/failover.rs` (10 s) is a real limit and not the end of
/// the lookup. Resending matters: unbound drops a reply that took longer
/// than its `discard-timeout` (1.9 s) and answers the resend from its
/// cache.
const LOOKUP_ATTEMPTS: usize = 6;
const LOOKUP_RETRY_AFTER: Duration = Duration::from_secs(2);

/// The most lookups through each resolver while lb2 is frozen, to pin it
/// to lb1 (see [`Lab::pin_to_lb1`]).
const PIN_LOOKUPS: usize = 10;

/// The most lookups added after a scenario's own when a resolver has not
/// asked lb1 yet (see [`Lab::lookups`]).
const EXTRA_LOOKUPS: usize = 25;

/// How long a resolver or a payload may take to come up, and a node to
/// show the effect of a fault or a repair (its probe runs every second and
/// tolerates one failure, so about 2-3 s).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// A node of the service: its name and addresses, as in `root.zone`,
/// `api.example.com.zone` and the peers of `steerdns.toml`.
#[derive(Debug)]
pub struct NodeAddrs {
    /// The node's name, also its NS name's first label.
    pub name: &'static str,
    /// Its IPv4 address.
    pub v4: Ipv4Addr,
    /// Its IPv6 address.
    pub v6: Ipv6Addr,
}

impl NodeAddrs {
    /// Both addresses.
    pub fn addresses(&self) -> [IpAddr; 2] {
        [self.v4.into(), self.v6.into()]
    }
}

/// The node the lab breaks.
pub const LB1: NodeAddrs = NodeAddrs {
    name: "lb1",
    v4: Ipv4Addr::new(198, 51, 100, 10),
    v6: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10),
};

/// The node that stays healthy.
pub const LB2: NodeAddrs = NodeAddrs {
    name: "lb2",
    v4: Ipv4Addr::new(203, 0, 113, 20),
    v6: Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x20),
};

/// What a node answers for the service while its payload is down or it
/// is drained: the `when-down` key of `steerdns.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenDown {
    /// The addresses of the healthy peers.
    Peers,
    /// REFUSED, so the resolver asks the next NS.
    Refuse,
}

impl WhenDown {
    /// The value in the config file.
    fn config_value(self) -> &'static str {
        match self {
            WhenDown::Peers => "peers",
            WhenDown::Refuse => "refuse",
        }
    }
}

/// A way lb1 breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Its HTTP payload is killed; its steerdns keeps answering.
    PayloadDown,
    /// `steerdns drain` puts it in maintenance.
    Drained,
    /// Its steerdns is frozen with SIGSTOP: queries go unanswered.
    DnsFrozen,
    /// Its steerdns is killed: queries meet a closed port.
    DnsKilled,
}

/// What a DNS server said to one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// NOERROR with these A/AAAA addresses in the answer (none: NODATA).
    Addresses(Vec<IpAddr>),
    /// Another response code.
    Rcode(ResponseCode),
    /// No usable response.
    Silence(String),
}

/// One lookup through a resolver.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The name asked.
    pub qname: String,
    /// The type asked.
    pub rtype: RecordType,
    /// The resolver's response.
    pub outcome: Outcome,
    /// How long the resolver took.
    pub latency: Duration,
}

/// One resolver's lookups in a scenario.
#[derive(Debug, Clone)]
pub struct ResolverRun {
    /// The resolver's label.
    pub resolver: &'static str,
    /// Its lookups, in order.
    pub lookups: Vec<Lookup>,
    /// The DNS queries lb1 received meanwhile (UDP datagrams and TCP
    /// connections with new data; from this resolver only:
    /// the resolvers take turns): how often the fault was put to it.
    pub lb1_queries: u64,
}

/// How pinning one resolver to lb1 went (see [`Lab::pin_to_lb1`]).
#[derive(Debug, Default, Clone)]
pub struct Pin {
    /// The resolver's label.
    pub resolver: &'static str,
    /// Lookups sent, and those that got no address.
    pub lookups: usize,
    pub failed: usize,
    /// Queries lb1 and the frozen lb2 received meanwhile.
    pub lb1_queries: u64,
    pub lb2_queries: u64,
    /// Whether it met lb2's silence and its last lookup went to lb1.
    pub pinned: bool,
}

/// Fills a template's `{{key}}` placeholders; panics when one is left.
fn render(template: &str, values: &[(&str, &str)]) -> String {
    let text = values
        .iter()
        .fold(template.to_string(), |text, (key, value)| {
            text.replace(&format!("{{{{{key}}}}}"), value)
        });
    assert!(!text.contains("{{"), "unfilled placeholder in:\n{text}");
    text
}

/// Asks `server` for `qname`/`rtype` (with RD when `recursive`) up to
/// `attempts` times, `timeout` apart, and returns the first response.
fn ask(
    server: SocketAddr,
    qname: &str,
    rtype: RecordType,
    recursive: bool,
    timeout: Duration,
    attempts: usize,
) -> Outcome {
    let opts = QueryOpts {
        rd: recursive,
        ..QueryOpts::default()
    };
    let query = common::build_query(&common::name(qname), rtype, &opts);
    let wire = query.to_vec().expect("encode a query");
    let response = match common::exchange_udp(server, &wire, timeout, attempts)
        .and_then(|bytes| common::decode_response(&bytes))
    {
        Ok(response) => response,
        Err(e) => return Outcome::Silence(e),
    };
    if response.response_code() != ResponseCode::NoError {
        return Outcome::Rcode(response.response_code());
    }
    let addresses = response
        .answers()
        .iter()
        .filter_map(|record| match record.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    Outcome::Addresses(addresses)
}

/// Calls `attempt` until it succeeds or `timeout` passes; then returns
/// the last error.
fn poll<T>(timeout: Duration, mut attempt: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match attempt() {
            Ok(value) => return Ok(value),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A fresh name under the service's wildcard, so no cache holds it.
fn fresh_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}.{ZONE}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The external programs the lab runs.
#[derive(Debug)]
struct Tools {
    nsd: PathBuf,
    busybox: PathBuf,
    resolvers: Vec<(&'static ResolverKind, PathBuf)>,
}

impl Tools {
    /// Finds every program; a missing one fails the test unless skipping
    /// is allowed (see [`common::skip`]), and then a missing resolver other
    /// than unbound is left out and any other missing program skips the lab.
    fn find() -> Option<Tools> {
        common::require_tool("ip", "iproute2")?;
        let nsd = common::require_tool("nsd", "nsd")?;
        let busybox = common::require_tool("busybox", "busybox")?;
        let mut resolvers = Vec::new();
        for kind in &RESOLVERS {
            match common::require_tool(kind.program, kind.package) {
                Some(path) => resolvers.push((kind, path)),
                None if kind.required => return None,
                None => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "SKIPPED: resolver {} left out of the lab",
                        kind.label
                    );
                }
            }
        }
        Some(Tools {
            nsd,
            busybox,
            resolvers,
        })
    }
}

/// The whole lab. Fields drop in order: processes first, then the
/// namespaces, then the scratch folder.
#[derive(Debug)]
pub struct Lab {
    resolvers: Vec<Resolver>,
    nodes: [Node; 2],
    /// Held only to be dropped: NSD with the fake root.
    _root: ServerProcess,
    resolver_ns: Netns,
    /// What the nodes' config says now.
    when_down: WhenDown,
    tools: Tools,
    /// The root hints file every resolver reads.
    hints: PathBuf,
    /// Held only to be dropped: deletes the namespaces.
    _network: Network,
    /// Held only to be dropped: the root hints and the nodes' configs.
    _dir: TempDir,
}

impl Lab {
    /// Builds the lab and waits until both nodes answer; the resolvers
    /// start with [`Lab::start_fresh_resolvers`]. When the machine cannot
    /// host the lab (not root, no network namespaces, programs missing) the
    /// test fails, or, where skipping is allowed (see [`common::skip`]),
    /// this returns `None`.
    pub fn start(when_down: WhenDown) -> Option<Lab> {
        if !common::is_root() {
            common::skip("the failover lab needs root (it creates network namespaces)");
            return None;
        }
        let tools = Tools::find()?;
        netns::remove_stale();
        let mut network = match Network::new() {
            Ok(network) => network,
            Err(e) => {
                common::skip(&format!("network namespaces are not available here: {e}"));
                return None;
            }
        };
        let dir = TempDir::new("lab");
        let hints = dir.write("root.hints", include_str!("root.hints"));

        let root_ns = network.add_host("root", &ROOT);
        let root = start_root(&root_ns, &tools.nsd);
        let nodes = [&LB1, &LB2].map(|addrs| {
            let ns = network.add_host(addrs.name, &addrs.addresses());
            let mut node = Node::new(addrs, ns, &dir, &tools.busybox);
            node.write_config(when_down);
            node.start_payload();
            node.start_dns();
            node.wait_until_serving();
            node
        });

        let mut resolver_addresses: Vec<IpAddr> = tools
            .resolvers
            .iter()
            .map(|(kind, _)| kind.address.into())
            .collect();
        resolver_addresses.push(RESOLVERS_V6);
        let resolver_ns = network.add_host("resolvers", &resolver_addresses);
        Some(Lab {
            resolvers: Vec::new(),
            nodes,
            _root: root,
            resolver_ns,
            when_down,
            tools,
            hints,
            _network: network,
            _dir: dir,
        })
    }

    /// Starts every resolver (again), with empty caches, and waits until
    /// each resolves. Fresh resolvers for each scenario: what one learnt
    /// about lb1 in a scenario (that it times out, say) would otherwise
    /// spare it the next scenario's fault.
    pub fn start_fresh_resolvers(&mut self) {
        self.resolvers.clear();
        self.resolvers = self.resolver_ns.run(|| {
            let started: Vec<Resolver> = self
                .tools
                .resolvers
                .iter()
                .map(|(kind, program)| Resolver::spawn(kind, program, &self.hints))
                .collect();
            started.iter().for_each(Resolver::wait_until_resolving);
            started
        });
    }

    /// Gives both nodes `when_down` (the same config file on each) and
    /// restarts them if it changed.
    pub fn set_when_down(&mut self, when_down: WhenDown) {
        if self.when_down == when_down {
            return;
        }
        self.when_down = when_down;
        for node in &mut self.nodes {
            node.write_config(when_down);
            node.stop_dns();
            node.start_dns();
            node.wait_until_serving();
        }
    }

    /// Pins every resolver to lb1 before a fault: while lb2's steerdns is
    /// frozen, each resolver looks up fresh names, one at a time, until it
    /// has met lb2's silence at least once and its last lookup went to
    /// lb1 (at most [`PIN_LOOKUPS`] lookups). Resolvers that pick the
    /// fastest node (BIND, PowerDNS Recursor) would otherwise stay on lb2
    /// and never meet lb1's fault.
    pub fn pin_to_lb1(&mut self, scenario: &str) -> Vec<Pin> {
        let [lb1, lb2] = &self.nodes;
        lb2.freeze_dns(true);
        let pins = self
            .resolvers
            .iter()
            .map(|resolver| {
                let mut pin = Pin {
                    resolver: resolver.label(),
                    ..Pin::default()
                };
                for i in 0..PIN_LOOKUPS {
                    let (lb1_before, lb2_before) = (lb1.dns_traffic(), lb2.dns_traffic());
                    let prefix = format!("pin{i}-{scenario}");
                    let lookups = self
                        .resolver_ns
                        .run(|| resolver.lookups(&prefix, &[RecordType::A]));
                    let asked_lb1 = lb1.dns_traffic().queries_since(&lb1_before);
                    pin.lb1_queries += asked_lb1;
                    pin.lb2_queries += lb2.dns_traffic().queries_since(&lb2_before);
                    pin.lookups += 1;
                    pin.failed += lookups
                        .iter()
                        .filter(|l| !matches!(&l.outcome, Outcome::Addresses(a) if !a.is_empty()))
                        .count();
                    pin.pinned = pin.lb2_queries > 0 && asked_lb1 > 0;
                    if pin.pinned && pin.lookups >= 2 {
                        break;
                    }
                }
                pin
            })
            .collect();
        lb2.freeze_dns(false);
        lb2.wait_until_serving();
        pins
    }

    /// Breaks lb1 and, for the faults its steerdns survives, waits until
    /// lb1 answers as a node whose payload is down.
    pub fn inject(&mut self, fault: Fault) {
        let down_answer = match self.when_down {
            WhenDown::Peers => Outcome::Addresses(vec![LB2.v4.into()]),
            WhenDown::Refuse => Outcome::Rcode(ResponseCode::Refused),
        };
        let lb1 = &mut self.nodes[0];
        match fault {
            Fault::PayloadDown => lb1.stop_payload(),
            Fault::Drained => lb1.set_drained(true),
            Fault::DnsFrozen => lb1.freeze_dns(true),
            Fault::DnsKilled => lb1.stop_dns(),
        }
        if matches!(fault, Fault::PayloadDown | Fault::Drained) {
            lb1.wait_until_answering(&down_answer, &format!("{fault:?}"));
        }
        if fault == Fault::DnsFrozen {
            if let Err(e) = poll(SETTLE_TIMEOUT, || {
                lb1.dns_stopped()
                    .then_some(())
                    .ok_or_else(|| "some thread still runs".to_string())
            }) {
                panic!("lb1's steerdns did not stop: {e}");
            }
        }
    }

    /// Repairs what [`Lab::inject`] broke and waits until lb1 answers with
    /// its own address again. A frozen lb1 must still be frozen: a thread
    /// that ran meanwhile would have made the scenario's answers
    /// meaningless.
    pub fn heal(&mut self, fault: Fault) {
        let lb1 = &mut self.nodes[0];
        assert!(
            fault != Fault::DnsFrozen || lb1.dns_stopped(),
            "lb1's steerdns ran while it should have been frozen"
        );
        match fault {
            Fault::PayloadDown => lb1.start_payload(),
            Fault::Drained => lb1.set_drained(false),
            Fault::DnsFrozen => lb1.freeze_dns(false),
            Fault::DnsKilled => lb1.start_dns(),
        }
        lb1.wait_until_serving();
    }

    /// The resolvers the lab runs, by label.
    pub fn resolver_labels(&self) -> Vec<&'static str> {
        self.tools
            .resolvers
            .iter()
            .map(|(kind, _)| kind.label)
            .collect()
    }

    /// Sends `a` A and `aaaa` AAAA lookups of fresh names
    /// (`<scenario>-<resolver>-<i>.api.example.com`) through each resolver
    /// in turn, one lookup after the other, and counts the queries lb1
    /// received during each resolver's turn. With `until_lb1_asked`, a
    /// resolver that has not asked lb1 by then gets up to
    /// [`EXTRA_LOOKUPS`] more A lookups, one at a time, until it does:
    /// every lookup counts, and one that never asked lb1 tested nothing.
    pub fn lookups(
        &self,
        scenario: &str,
        a: usize,
        aaaa: usize,
        until_lb1_asked: bool,
    ) -> Vec<ResolverRun> {
        let types: Vec<RecordType> = std::iter::repeat_n(RecordType::A, a)
            .chain(std::iter::repeat_n(RecordType::AAAA, aaaa))
            .collect();
        let lb1 = &self.nodes[0];
        self.resolvers
            .iter()
            .map(|resolver| {
                let before = lb1.dns_traffic();
                let mut lookups = self.resolver_ns.run(|| resolver.lookups(scenario, &types));
                for i in 0..EXTRA_LOOKUPS {
                    if !until_lb1_asked || lb1.dns_traffic().queries_since(&before) > 0 {
                        break;
                    }
                    let prefix = format!("{scenario}-more{i}");
                    lookups.extend(
                        self.resolver_ns
                            .run(|| resolver.lookups(&prefix, &[RecordType::A])),
                    );
                }
                ResolverRun {
                    resolver: resolver.label(),
                    lookups,
                    lb1_queries: lb1.dns_traffic().queries_since(&before),
                }
            })
            .collect()
    }
}

/// Starts NSD with the fake root in `ns` and waits until it answers.
fn start_root(ns: &Netns, nsd: &Path) -> ServerProcess {
    let dir = TempDir::new("lab-root");
    let root = dir.path().display().to_string();
    dir.write("root.zone", include_str!("root.zone"));
    let conf = dir.write(
        "nsd.conf",
        &render(include_str!("nsd.conf"), &[("dir", &root)]),
    );
    let mut command = Command::new(nsd);
    command.arg("-d").arg("-c").arg(conf);
    ns.run(|| ServerProcess::start("nsd", command, dir, 53, "."))
}
