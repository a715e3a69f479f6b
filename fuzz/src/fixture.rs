//! The snapshot the `engine` target answers from, loaded once per process.
//!
//! The zones are the differential test's (`example.com.`, its child
//! `sub.example.com.` and `example.net.`: delegations, glue, wildcards,
//! CNAME chains, every served type), the basic example's zone served as
//! `example.org.`, and `svc.example.`, whose services use `self` routing
//! in each of its states, and weighted, subnet (with nesting) and
//! multivalue routing:
//!
//! | name | state | answers |
//! |---|---|---|
//! | `www.svc.example.` | up | the local address |
//! | `*.pool.svc.example.` | down, peers up | the healthy peers |
//! | `refuse.svc.example.` | drained, peers up | REFUSED |
//! | `open.svc.example.` | down, peer down | the local address (fail open) |
//! | `*.w.svc.example.` | weighted, endpoint `a` down | `b` or `c` by the client's /24 |
//! | `subnet.svc.example.` | subnet, nesting `*.w` as default | by the client's network |
//! | `multi.svc.example.` | multivalue, two of three | rotated addresses |

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::OnceLock;

use steerdns::config::Config;
use steerdns::cookie::CookieSecret;
use steerdns::engine::{QueryContext, Transport};
use steerdns::health::Health;
use steerdns::policy::Method;
use steerdns::snapshot::Snapshot;

/// The largest UDP reply the fixture is configured for.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// The zone files, by origin. The first three are the differential test's.
const ZONES: &[(&str, &str)] = &[
    (
        "example.com.",
        include_str!("../../tests/data/diff/zones/example.com.zone"),
    ),
    (
        "sub.example.com.",
        include_str!("../../tests/data/diff/zones/sub.example.com.zone"),
    ),
    (
        "example.net.",
        include_str!("../../tests/data/diff/zones/example.net.zone"),
    ),
    (
        "example.org.",
        // `$ORIGIN example.com.` in the file is replaced when written.
        include_str!("../../examples/basic/zones/example.com.zone"),
    ),
    ("svc.example.", SVC_ZONE),
];

/// The zone of the `self` services: the services' names hold no records.
const SVC_ZONE: &str = "$TTL 300
@ SOA ns1 hostmaster 1 7200 900 1209600 60
@ NS ns1
@ NS ns2
ns1 A 127.0.0.1
ns2 AAAA ::1
static A 192.0.2.10
alias CNAME www
";

/// The services of `svc.example.`; see the module documentation.
const SERVICES: &str = r#"
[[service]]
name = "www.svc.example."
routing = "self"
ttl = 30
peers = ["127.0.0.1", "::1", "192.0.2.7", "2001:db8::7"]

[[service]]
name = "*.pool.svc.example."
routing = "self"
peers = ["127.0.0.1", "192.0.2.8", "192.0.2.9", "2001:db8::8"]
when-down = "peers"

[[service]]
name = "refuse.svc.example."
routing = "self"
peers = ["127.0.0.1", "192.0.2.11"]
when-down = "refuse"

[[service]]
name = "open.svc.example."
routing = "self"
peers = ["127.0.0.1", "192.0.2.12"]
when-down = "peers"

[[service]]
name = "*.w.svc.example."
routing = "weighted"
degraded-ttl = 5
endpoints = [
  { name = "a", addresses = ["192.0.2.21", "2001:db8::21"], weight = 3 },
  { name = "b", addresses = ["192.0.2.22"], weight = 1 },
  { name = "c", cname = "www.svc.example.", weight = 0 },
]

[[service]]
name = "subnet.svc.example."
routing = "subnet"
when-all-down = "servfail"
endpoints = [
  { name = "a", addresses = ["192.0.2.31"], subnets = ["10.0.0.0/8", "2001:db8::/32"] },
  { name = "b", addresses = ["192.0.2.32", "2001:db8::32"], subnets = ["10.1.0.0/16", "127.0.0.0/8"] },
  { name = "rest", service = "*.w.svc.example." },
]

[[service]]
name = "multi.svc.example."
routing = "multivalue"
max-answers = 2
endpoints = [
  { name = "a", addresses = ["192.0.2.41"] },
  { name = "b", addresses = ["192.0.2.42", "2001:db8::42"] },
  { name = "c", addresses = ["192.0.2.43"] },
]
"#;

/// This node's addresses, as the snapshot sees them.
const LOCAL_ADDRESSES: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

/// The snapshot, built on first use. Panics if the fixture does not load:
/// that is a broken fixture, not a finding.
pub fn snapshot() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(load)
}

/// The time queries are answered at, for server cookies.
const NOW: u32 = 1_700_000_000;

/// The contexts every input is answered in: UDP from an IPv4 client to
/// 127.0.0.1, and TCP from an IPv6 client to ::1.
pub fn contexts() -> [QueryContext; 2] {
    [
        QueryContext {
            client: SocketAddr::from(([198, 51, 100, 7], 40000)),
            local: LOCAL_ADDRESSES[0],
            transport: Transport::Udp,
            now: NOW,
            cookie_keys: CookieSecret::Shared([9; 16]).keys(NOW),
        },
        QueryContext {
            client: SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53), 40001)),
            local: LOCAL_ADDRESSES[1],
            transport: Transport::Tcp,
            now: NOW,
            cookie_keys: CookieSecret::Shared([9; 16]).keys(NOW),
        },
    ]
}

/// Writes the zone files to a scratch folder, loads the config, removes
/// the folder, and puts the services in their states.
fn load() -> Snapshot {
    let dir = scratch_dir();
    std::fs::create_dir_all(&dir).expect("create the fixture folder");
    let mut config =
        format!("[server]\nlisten = [\"127.0.0.1:5353\"]\nmax-udp-payload = {MAX_UDP_PAYLOAD}\n");
    for (i, (origin, text)) in ZONES.iter().enumerate() {
        let file = format!("zone{i}.zone");
        let text = text.replace("$ORIGIN example.com.", &format!("$ORIGIN {origin}"));
        std::fs::write(dir.join(&file), text).expect("write a fixture zone");
        config.push_str(&format!(
            "\n[[zone]]\norigin = \"{origin}\"\nfile = \"{file}\"\n"
        ));
    }
    config.push_str(SERVICES);
    let loaded = Config::from_str(&config, &dir.join("steerdns.toml"))
        .map_err(|e| e.to_string())
        .and_then(|c| Snapshot::load_with(&c, &LOCAL_ADDRESSES).map_err(|e| e.to_string()));
    let _ = std::fs::remove_dir_all(&dir);
    let snapshot = loaded.unwrap_or_else(|e| panic!("the engine fixture does not load: {e}"));
    set_states(&snapshot);
    snapshot
}

/// Puts each service's local payload and peers in the state the module
/// documentation gives.
fn set_states(snap: &Snapshot) {
    let health = &snap.health;
    let [_, pool, refuse, open, weighted, ..] = &snap.services[..] else {
        panic!("the fixture has {} services, not 7", snap.services.len());
    };
    let local = |rule: &steerdns::policy::ServiceRule| {
        rule.local_slot().expect("the first four services are `self`")
    };
    health.set_health(local(pool), Health::Down);
    health.set_drained(local(refuse), true);
    health.set_health(local(open), Health::Down);
    if let Method::SelfAddress(s) = &open.method {
        for peer in s.peers.iter() {
            health.set_health(peer.health, Health::Down);
        }
    }
    // One weighted endpoint down: the others share its clients.
    health.set_health(weighted.endpoints[0].slot, Health::Down);
}

/// A folder of its own for this process.
fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(format!("steerdns-fuzz-fixture-{}", std::process::id()))
}
