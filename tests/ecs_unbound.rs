//! EDNS Client Subnet end to end: a real unbound with its `subnetcache`
//! module in front of steerdns, asked by clients of different networks.
//!
//! ```text
//!   clients 127.1.2.3, 127.2.0.9, ...  ──►  unbound 127.0.0.1:U
//!   (sockets bound to those sources)        subnetcache iterator,
//!                                           stub-zone example.com.
//!                                                │ ECS 127.1.2.0/24
//!                                                ▼
//!                                           counting proxy 127.0.0.1:P
//!                                                │ (logs each query's name,
//!                                                ▼  ECS, and the scope back)
//!                                           steerdns 127.0.0.1:S
//! ```
//!
//! Why this shape. What a resolver's ECS cache does depends on one thing:
//! the client address it sees. The faithful client is therefore a real
//! socket with its own source address whose query carries no ECS, so that
//! unbound derives the option itself (truncated to its
//! `max-client-subnet-ipv4`, /24) as it does for the stub resolvers of a
//! real network. On Linux all of 127.0.0.0/8 is local, so a socket bound
//! to 127.1.2.3 is such a client and needs no root, no network namespace
//! and no address added to any interface: namespaces would change nothing
//! unbound sees, only add ways for the test to fail that are not about
//! ECS. The ranges of the subnet service are therefore 127.x networks, and
//! the test GeoIP database of the geographic service places 127.x networks
//! in different countries.
//! IPv6 has one loopback address, so the IPv6 test uses the other way ECS
//! reaches a resolver: the client (standing for a forwarder) sends the
//! option, which unbound honours with `client-subnet-always-forward`.
//!
//! "Answered from cache" is proved at the authority's door: a UDP proxy
//! between unbound and steerdns (unbound's `stub-addr` and
//! `send-client-subnet` point at it) logs every query unbound sends, so a
//! lookup that adds no entry for its name never reached steerdns. The log
//! also holds the ECS option unbound sent and the scope steerdns returned.
//!
//! Every assertion about a cache hit has a twin that fails if steerdns got
//! the scope wrong: a scope of 0 would let unbound serve the first
//! network's answer to the second; a scope equal to the source prefix
//! (/24) would make a client of another /24 inside the same /16 range miss
//! the cache.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{RData, RecordType};

use common::geodb::{GeoDb, Place};
use common::{client_subnet, free_port, QueryOpts, ServerProcess, TempDir, LOOPBACK};

/// The zone steerdns serves; its services are in [`STEERDNS_SERVICES`].
const ZONE: &str =
    "$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n@ NS ns1\nns1 A 127.0.0.1\n";

/// The subnet-routed name.
const OFFICE: &str = "office.example.com.";

/// The weighted (sticky) service: every name under it is a fresh name for
/// unbound's cache, while steerdns hashes the client network and the
/// service, never the name.
const STICKY: &str = "sticky.example.com.";

/// Two /16 ranges, so a scope of /16 is neither 0 nor unbound's /24 (and
/// for IPv6 /48 under unbound's /56); everything else is `internet`.
const STEERDNS_SERVICES: &str = r#"
[[service]]
name = "office.example.com."
routing = "subnet"
ttl = 300
endpoints = [
  { name = "one", addresses = ["192.0.2.41"], subnets = ["127.1.0.0/16", "2001:db8:b::/48"] },
  { name = "two", addresses = ["192.0.2.42"], subnets = ["127.2.0.0/16", "2001:db8:c::/48"] },
  { name = "internet", addresses = ["192.0.2.43"] },
]

[[service]]
name = "geo.example.com."
routing = "geographic"
ttl = 300
endpoints = [
  { name = "lon", addresses = ["192.0.2.51"] },
  { name = "fra", addresses = ["192.0.2.52"] },
  { name = "sfo", addresses = ["192.0.2.53"] },
  { name = "iad", addresses = ["192.0.2.54"] },
]
regions = { "GB" = ["lon", "fra"], "EU" = ["fra"], "US-CA" = ["sfo", "iad"], "*" = ["iad"] }

[[service]]
name = "*.sticky.example.com."
routing = "weighted"
ttl = 300
endpoints = [
  { name = "fra", addresses = ["192.0.2.10"], weight = 1 },
  { name = "iad", addresses = ["198.51.100.10"], weight = 1 },
]
"#;

/// The geographically routed name; the test database places its clients
/// (see [`write_geo_database`]).
const GEO: &str = "geo.example.com.";

/// The endpoints' addresses.
const LON: &str = "192.0.2.51";
const GEO_FRA: &str = "192.0.2.52";
const SFO: &str = "192.0.2.53";
const GEO_IAD: &str = "192.0.2.54";
const ONE: &str = "192.0.2.41";
const TWO: &str = "192.0.2.42";
const INTERNET: &str = "192.0.2.43";
const FRA: &str = "192.0.2.10";
const IAD: &str = "198.51.100.10";

/// unbound: an iterator with the ECS cache whose only way to example.com.
/// is the stub (the proxy); placeholders in braces. Why each setting:
/// - `module-config: "subnetcache iterator"`: the ECS module, no validator
///   (the zone is unsigned and there is no root).
/// - `send-client-subnet`: the authority that gets ECS (the proxy's
///   address; unbound compares addresses, not ports).
/// - `client-subnet-always-forward: yes`: forward a client's own ECS
///   option (the IPv6 test) and skip the regular cache, so only the ECS
///   cache can answer.
/// - `max-client-subnet-ipv4: 24`, `max-client-subnet-ipv6: 56`: unbound's
///   defaults, spelled out because the assertions rely on them.
/// - `do-not-query-localhost: no`: the stub is on 127.0.0.1.
/// - `qname-minimisation: no`, `target-fetch-policy: "0 0 0 0 0"`: only
///   the asked name goes upstream, so the proxy's log is all lookups.
/// - foreground, no privileges to drop, no chroot, no control socket,
///   logging to stderr.
const UNBOUND_CONF: &str = r#"server:
    interface: 127.0.0.1
    port: {port}
    access-control: 127.0.0.0/8 allow
    module-config: "subnetcache iterator"
    send-client-subnet: 127.0.0.1
    client-subnet-always-forward: yes
    max-client-subnet-ipv4: 24
    max-client-subnet-ipv6: 56
    do-not-query-localhost: no
    qname-minimisation: no
    target-fetch-policy: "0 0 0 0 0"
    directory: "{dir}"
    do-daemonize: no
    username: ""
    chroot: ""
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 1
remote-control:
    control-enable: no
stub-zone:
    name: "example.com."
    stub-addr: 127.0.0.1@{stub_port}
"#;

/// How long steerdns may take to answer the proxy.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// A client lookup is sent up to this many times, this far apart.
const CLIENT_ATTEMPTS: usize = 3;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// One query unbound sent to steerdns, as the proxy saw it.
#[derive(Debug, Clone)]
struct Relayed {
    /// The name, lowercased, with the final dot.
    qname: String,
    qtype: RecordType,
    /// The ECS option unbound sent: address and source prefix.
    ecs: Option<(IpAddr, u8)>,
    /// The scope of steerdns's ECS option, once it answered.
    scope: Option<u8>,
}

/// A UDP relay from unbound to steerdns that logs each query; it stops
/// when dropped.
struct CountingProxy {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Relayed>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CountingProxy {
    /// Relays datagrams arriving on a free loopback port to `upstream`,
    /// each on a thread of its own so a slow answer holds up no other.
    fn start(upstream: SocketAddr) -> CountingProxy {
        let socket = UdpSocket::bind((LOOPBACK, free_port())).expect("bind the proxy");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("proxy read timeout");
        let addr = socket.local_addr().expect("proxy address");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_log, thread_stop) = (log.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65535];
            while !thread_stop.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue; // the read timeout: look at the stop flag
                };
                let query = buf[..n].to_vec();
                let downstream = socket.try_clone().expect("clone the proxy socket");
                let log = thread_log.clone();
                std::thread::spawn(move || relay(&query, from, &downstream, upstream, &log));
            }
        });
        CountingProxy {
            addr,
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// What was relayed for `qname`/`rtype` so far.
    fn relayed(&self, qname: &str, rtype: RecordType) -> Vec<Relayed> {
        let qname = qname.to_ascii_lowercase();
        self.log
            .lock()
            .expect("proxy log")
            .iter()
            .filter(|r| r.qname == qname && r.qtype == rtype)
            .cloned()
            .collect()
    }

    /// How many A queries for `qname` reached steerdns so far.
    fn count(&self, qname: &str) -> usize {
        self.relayed(qname, RecordType::A).len()
    }

    /// Everything relayed, for failure messages.
    fn dump(&self) -> String {
        format!("{:#?}", self.log.lock().expect("proxy log"))
    }
}

/// Logs one query (before it goes on, so a client that got its answer
/// finds it logged), relays it and its answer, and adds the answer's scope.
fn relay(
    query: &[u8],
    from: SocketAddr,
    downstream: &UdpSocket,
    upstream: SocketAddr,
    log: &Mutex<Vec<Relayed>>,
) {
    let Ok(message) = Message::from_vec(query) else {
        return;
    };
    let Some(question) = message.queries().first() else {
        return;
    };
    let index = {
        let mut log = log.lock().expect("proxy log");
        log.push(Relayed {
            qname: question.name().to_ascii().to_ascii_lowercase(),
            qtype: question.query_type(),
            ecs: client_subnet(&message).map(|s| (s.addr(), s.source_prefix())),
            scope: None,
        });
        log.len() - 1
    };
    let Ok(answer) = common::exchange_udp(upstream, query, UPSTREAM_TIMEOUT, 1) else {
        return; // unbound retries or gives up, as with a lost datagram
    };
    if let Ok(decoded) = Message::from_vec(&answer) {
        log.lock().expect("proxy log")[index].scope =
            client_subnet(&decoded).map(|s| s.scope_prefix());
    }
    let _ = downstream.send_to(&answer, from);
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// steerdns, the proxy and unbound. Fields drop in order: unbound first.
struct Lab {
    unbound: ServerProcess,
    proxy: CountingProxy,
    _steerdns: ServerProcess,
}

impl Lab {
    /// Starts all three, or returns `None` when unbound is missing and
    /// skipping is allowed (see [`common::skip`]); under CI that fails.
    fn start() -> Option<Lab> {
        let unbound = common::require_tool("unbound", "unbound")?;
        let steerdns = start_steerdns();
        let proxy = CountingProxy::start(steerdns.addr());

        let dir = TempDir::new("ecs-unbound");
        let port = free_port();
        let conf = UNBOUND_CONF
            .replace("{port}", &port.to_string())
            .replace("{dir}", &dir.path().display().to_string())
            .replace("{stub_port}", &proxy.addr.port().to_string());
        let conf = dir.write("unbound.conf", &conf);
        let mut command = Command::new(unbound);
        command.arg("-d").arg("-c").arg(conf);
        // It answers (from its cache: RD is off) once it listens.
        let unbound = ServerProcess::start("unbound", command, dir, port, "example.com.");
        Some(Lab {
            unbound,
            proxy,
            _steerdns: steerdns,
        })
    }

    /// A recursive lookup of `qname` A through unbound by a client at
    /// `client`, with the ECS option `ecs` when given; returns the
    /// addresses of the answer and the ECS option of the response.
    fn lookup(
        &self,
        client: IpAddr,
        ecs: Option<ClientSubnet>,
        qname: &str,
    ) -> (Vec<IpAddr>, Option<ClientSubnet>) {
        let opts = QueryOpts {
            rd: true,
            ..QueryOpts::default()
        };
        let mut query = common::build_query(&common::name(qname), RecordType::A, &opts);
        if let (Some(ecs), Some(edns)) = (ecs, query.extensions_mut().as_mut()) {
            edns.options_mut().insert(EdnsOption::Subnet(ecs));
        }
        let wire = query.to_vec().expect("encode a query");
        let response = common::exchange_udp_from(
            client,
            self.unbound.addr(),
            &wire,
            CLIENT_TIMEOUT,
            CLIENT_ATTEMPTS,
        )
        .and_then(|bytes| common::decode_response(&bytes))
        .unwrap_or_else(|e| panic!("{qname} from {client}: {e}\n{}", self.unbound.logs()));
        assert_eq!(
            response.response_code(),
            ResponseCode::NoError,
            "{qname} from {client}\n{}",
            self.unbound.logs()
        );
        let addresses = response
            .answers()
            .iter()
            .filter_map(|record| match record.data() {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            })
            .collect();
        (addresses, client_subnet(&response))
    }

    /// A lookup of [`OFFICE`] by the client at `client` (no ECS of its
    /// own): checks it is answered with `expected` and whether it reached
    /// steerdns (`from_cache` false) or not, and returns the queries it
    /// caused there.
    fn office_from(&self, client: &str, expected: &str, from_cache: bool) -> Vec<Relayed> {
        self.name_from(OFFICE, client, expected, from_cache)
    }

    /// [`Lab::office_from`] for any routed name.
    fn name_from(
        &self,
        qname: &str,
        client: &str,
        expected: &str,
        from_cache: bool,
    ) -> Vec<Relayed> {
        let client: IpAddr = client.parse().expect("client address");
        self.routed(
            qname,
            client,
            None,
            expected,
            from_cache,
            &client.to_string(),
        )
    }

    /// [`Lab::office_from`] for any client and ECS option; `who` names the
    /// client in messages.
    fn office(
        &self,
        client: IpAddr,
        ecs: Option<ClientSubnet>,
        expected: &str,
        from_cache: bool,
        who: &str,
    ) -> Vec<Relayed> {
        self.routed(OFFICE, client, ecs, expected, from_cache, who)
    }

    /// [`Lab::office`] for any routed name.
    fn routed(
        &self,
        qname: &str,
        client: IpAddr,
        ecs: Option<ClientSubnet>,
        expected: &str,
        from_cache: bool,
        who: &str,
    ) -> Vec<Relayed> {
        let before = self.proxy.count(qname);
        let (answer, _) = self.lookup(client, ecs, qname);
        let caused = self.proxy.relayed(qname, RecordType::A)[before..].to_vec();
        assert_eq!(
            answer,
            [expected.parse::<IpAddr>().expect("endpoint address")],
            "{qname} for {who}; steerdns saw:\n{}",
            self.proxy.dump()
        );
        assert_eq!(
            caused.is_empty(),
            from_cache,
            "{qname} for {who}: expected {}; it caused these queries to steerdns: {caused:#?}",
            if from_cache {
                "an answer from unbound's cache"
            } else {
                "a query to steerdns"
            }
        );
        caused
    }
}

/// Writes the GeoIP database of [`GEO`]: unbound's clients are 127.x
/// sources, so this test database puts 127.x networks in different
/// countries. 127.64/16 is in Great Britain, 127.65/16 in California,
/// 127.66/16 in Germany as two /17 networks, 127.67/16 in France; the rest
/// of 127/8 is not in the database.
fn write_geo_database(path: &std::path::Path) {
    let gb = Place::new("EU", "GB", Some("ENG"), Some((51.5, -0.12)));
    let ca = Place::new("NA", "US", Some("CA"), Some((37.77, -122.42)));
    let de = Place::new("EU", "DE", Some("HE"), Some((50.11, 8.68)));
    let fr = Place::new("EU", "FR", Some("IDF"), Some((48.86, 2.35)));
    GeoDb::default()
        .add("127.64.0.0/16", gb)
        .add("127.65.0.0/16", ca)
        .add("127.66.0.0/17", de.clone())
        .add("127.66.128.0/17", de)
        .add("127.67.0.0/16", fr)
        .write(path);
}

/// Starts steerdns for [`ZONE`] and [`STEERDNS_SERVICES`] on a free port.
fn start_steerdns() -> ServerProcess {
    let dir = TempDir::new("ecs-steerdns");
    let port = free_port();
    dir.write("zones/example.com.zone", ZONE);
    write_geo_database(&dir.path().join("geo.mmdb"));
    let config = dir.write(
        "steerdns.toml",
        &format!(
            "[server]\nlisten = [\"{LOOPBACK}:{port}\"]\nworkers = 1\n\n\
             [geoip]\ndatabase = \"geo.mmdb\"\n\n\
             [[zone]]\norigin = \"example.com.\"\nfile = \"zones/example.com.zone\"\n\
             {STEERDNS_SERVICES}"
        ),
    );
    let mut command = Command::new(common::steerdns_bin());
    command.arg("serve").arg("--config").arg(&config);
    ServerProcess::start("steerdns", command, dir, port, "example.com.")
}

/// Asserts that steerdns got ECS `network`/`source` and answered `scope`.
fn assert_relayed(caused: &[Relayed], network: &str, source: u8, scope: u8) {
    let network: IpAddr = network.parse().expect("network");
    for r in caused {
        assert_eq!(
            (r.ecs, r.scope),
            (Some((network, source)), Some(scope)),
            "ECS sent to steerdns and the scope it answered, for {}",
            r.qname
        );
    }
}

#[test]
fn subnet_answers_are_cached_by_unbound_for_the_scope_steerdns_returns() {
    let Some(lab) = Lab::start() else { return };

    // Two networks, two endpoints: unbound sends each client's /24, and
    // steerdns answers for the whole /16 range it matched.
    let caused = lab.office_from("127.1.2.3", ONE, false);
    assert_relayed(&caused, "127.1.2.0", 24, 16);
    // With a scope of 0 unbound would answer this from its cache with ONE.
    let caused = lab.office_from("127.2.0.9", TWO, false);
    assert_relayed(&caused, "127.2.0.0", 24, 16);

    // A third client in the first /24: the first answer, from the cache.
    lab.office_from("127.1.2.200", ONE, true);
    // Another /24 inside the same /16: still the cache, because the scope
    // was /16; a scope of /24 (the whole source prefix) would miss here.
    lab.office_from("127.1.99.5", ONE, true);
    lab.office_from("127.2.255.1", TWO, true);

    // Outside both ranges: the default endpoint, for the largest block
    // around the client that no range splits: 127.8.0.0/13 here.
    let caused = lab.office_from("127.10.5.1", INTERNET, false);
    assert_relayed(&caused, "127.10.5.0", 24, 13);
    lab.office_from("127.15.0.1", INTERNET, true);
    // Just outside that block: the same endpoint, but not from the cache.
    let caused = lab.office_from("127.16.0.1", INTERNET, false);
    assert_relayed(&caused, "127.16.0.0", 24, 12);
    // And the ranges' answers were not overwritten meanwhile.
    lab.office_from("127.1.0.1", ONE, true);
    lab.office_from("127.2.0.1", TWO, true);
}

#[test]
fn geographic_answers_follow_each_client_country_through_one_resolver() {
    let Some(lab) = Lab::start() else { return };

    // Two countries, two endpoints, one resolver: unbound sends each
    // client's /24 and caches the answer for the database network (/16).
    let caused = lab.name_from(GEO, "127.64.1.2", LON, false);
    assert_relayed(&caused, "127.64.1.0", 24, 16);
    // With a scope of 0 unbound would answer this from its cache with LON.
    let caused = lab.name_from(GEO, "127.65.3.4", SFO, false);
    assert_relayed(&caused, "127.65.3.0", 24, 16);
    // Other /24s of the same networks: from the cache, each its own answer;
    // a scope of /24 would miss here.
    lab.name_from(GEO, "127.64.200.9", LON, true);
    lab.name_from(GEO, "127.65.77.1", SFO, true);

    // Germany (two /17 networks) and France (a /16) both get region EU's
    // list: one answer for 127.66.0.0/15, so after one German client the
    // other /17 and France are answered from the cache. A scope per
    // network (/17, /16) would send each to steerdns again.
    let caused = lab.name_from(GEO, "127.66.5.5", GEO_FRA, false);
    assert_relayed(&caused, "127.66.5.0", 24, 15);
    lab.name_from(GEO, "127.66.200.1", GEO_FRA, true);
    lab.name_from(GEO, "127.67.0.1", GEO_FRA, true);

    // Outside the database: `*`, for the widest block that reaches no
    // network (127.0.0.0/10 leaves out 127.64/14).
    let caused = lab.name_from(GEO, "127.1.2.3", GEO_IAD, false);
    assert_relayed(&caused, "127.1.2.0", 24, 10);
    lab.name_from(GEO, "127.33.0.1", GEO_IAD, true);
    // And the countries' entries are still there.
    lab.name_from(GEO, "127.64.9.9", LON, true);
    lab.name_from(GEO, "127.65.9.9", SFO, true);
}

#[test]
fn client_subnets_forwarded_by_unbound_are_cached_for_their_scope() {
    let Some(lab) = Lab::start() else { return };
    let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
    // A forwarder downstream of unbound sends its clients' networks: IPv6
    // here. unbound passes at most /56 on, steerdns's ranges are /48.
    let subnet =
        |network: &str, prefix| ClientSubnet::new(network.parse().expect("network"), prefix, 0);
    let ask = |network: &str, prefix, expected, from_cache| {
        let ecs = subnet(network, prefix);
        let who = format!("ECS {network}/{prefix}");
        lab.office(client, Some(ecs), expected, from_cache, &who)
    };

    let caused = ask("2001:db8:b:100::", 56, ONE, false);
    assert_relayed(&caused, "2001:db8:b:100::", 56, 48);
    let caused = ask("2001:db8:c:100::", 56, TWO, false);
    assert_relayed(&caused, "2001:db8:c:100::", 56, 48);
    // Another /56 of the first /48, and a longer prefix unbound cuts to
    // /56: both from the cache.
    ask("2001:db8:b:ff00::", 56, ONE, true);
    ask("2001:db8:b:100:1::", 64, ONE, true);

    // unbound tells its client the scope it cached for.
    let (_, echoed) = lab.lookup(client, Some(subnet("2001:db8:b:200::", 56)), OFFICE);
    let echoed = echoed.expect("unbound echoes the client's ECS option");
    assert_eq!(
        (echoed.addr(), echoed.source_prefix(), echoed.scope_prefix()),
        ("2001:db8:b:200::".parse().expect("network"), 56, 48)
    );
}

#[test]
fn weighted_answers_stay_with_the_client_network_through_unbound() {
    let Some(lab) = Lab::start() else { return };
    static FRESH: AtomicU32 = AtomicU32::new(0);
    let mut seen = Vec::new();
    for network in 0..16u8 {
        // Several clients of the network, each asking a name unbound has
        // not cached (so steerdns decides again), and one name that every
        // network asks (cached per network: with a scope of 0, one
        // network's answer would be served to all).
        let mut answers = Vec::new();
        for host in [1u8, 77, 254] {
            let client = IpAddr::V4(Ipv4Addr::new(127, 20, network, host));
            for qname in [
                format!("n{}.{STICKY}", FRESH.fetch_add(1, Ordering::Relaxed)),
                format!("shared.{STICKY}"),
            ] {
                let (answer, _) = lab.lookup(client, None, &qname);
                answers.push((client, qname, answer));
            }
        }
        let first = answers[0].2.clone();
        assert!(
            first == [FRA.parse::<IpAddr>().expect("fra")]
                || first == [IAD.parse::<IpAddr>().expect("iad")],
            "127.20.{network}.0/24 got {first:?}"
        );
        for (client, qname, answer) in &answers {
            assert_eq!(
                answer, &first,
                "{qname} from {client}, network 127.20.{network}.0/24"
            );
        }
        // Each fresh name did reach steerdns, with the network and
        // answered for the network: the /24 hashed, nothing more.
        let fresh = answers.iter().filter(|(_, q, _)| q.starts_with('n'));
        for (_, qname, _) in fresh {
            let caused = lab.proxy.relayed(qname, RecordType::A);
            assert!(!caused.is_empty(), "{qname} never reached steerdns");
            assert_relayed(&caused, &format!("127.20.{network}.0"), 24, 24);
        }
        seen.push(first);
    }
    // Both endpoints serve some network: stickiness is not a constant.
    let fra = seen
        .iter()
        .filter(|a| **a == [FRA.parse::<IpAddr>().expect("fra")])
        .count();
    assert!(
        (1..seen.len()).contains(&fra),
        "fra served {fra} of {} networks",
        seen.len()
    );
}
