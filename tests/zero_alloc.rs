//! The answer path allocates nothing: a counting global allocator watches
//! the engine answer a mix of queries, then the real UDP server answer the
//! same mix sent over loopback by many clients at once.
//!
//! The mix covers static answers of every kind (positive, wildcard,
//! negative, referral, ANY, REFUSED, BADVERS, FORMERR), with and without
//! EDNS and EDNS Client Subnet, every routing method of [`METHODS`], an
//! apex NS RRset filtered by node health (`ns-health`), and the questions
//! about the server (NSID, CHAOS TXT).
//! The server runs two UDP workers on 127.0.0.1 and two on ::1; clients
//! on both families send bursts, so that `recvmmsg` returns several
//! datagrams at once, and the test checks that every worker answered.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};

use steerdns::config::{Config, RrlConfig};
use steerdns::cookie::CookieSecret;
use steerdns::engine::{respond, QueryContext, Transport};
use steerdns::rrl::RrlCounters;
use steerdns::server::{Server, ServerError};
use steerdns::snapshot::Snapshot;

/// Counts every allocation in the process.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Allocations made by this thread, immune to other tests' threads.
    static THREAD_ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    let _ = THREAD_ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: defers to the system allocator; counting has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A routing method under test: its `[[service]]` table (without the
/// header) and a name it answers. A new method joins the test by adding
/// one entry; its name is asked for A and AAAA, with and without ECS.
struct Method {
    service: &'static str,
    qname: &'static str,
}

/// Every routing method the answer path knows.
const METHODS: &[Method] = &[
    Method {
        service: "name = \"*.self.svc.test.\"\nrouting = \"self\"\nttl = 30\n\
                  peers = [\"127.0.0.1\", \"::1\", \"192.0.2.10\", \"2001:db8::10\"]\n",
        qname: "www.self.svc.test.",
    },
    Method {
        service: "name = \"priority.svc.test.\"\nrouting = \"priority\"\nendpoints = [\n\
                  { name = \"a\", addresses = [\"192.0.2.1\", \"2001:db8::1\"], priority = 1 },\n\
                  { name = \"b\", addresses = [\"192.0.2.2\"], priority = 2 },\n]\n",
        qname: "priority.svc.test.",
    },
    Method {
        service: "name = \"weighted.svc.test.\"\nrouting = \"weighted\"\ndegraded-ttl = 5\nendpoints = [\n\
                  { name = \"a\", addresses = [\"192.0.2.1\", \"2001:db8::1\"], weight = 3 },\n\
                  { name = \"b\", addresses = [\"192.0.2.2\", \"2001:db8::2\"], weight = 1 },\n\
                  { name = \"c\", addresses = [\"192.0.2.3\"], weight = 0 },\n]\n",
        qname: "weighted.svc.test.",
    },
    Method {
        service: "name = \"multi.svc.test.\"\nrouting = \"multivalue\"\nmax-answers = 3\nendpoints = [\n\
                  { name = \"a\", addresses = [\"192.0.2.1\", \"2001:db8::1\"] },\n\
                  { name = \"b\", addresses = [\"192.0.2.2\"] },\n\
                  { name = \"c\", addresses = [\"192.0.2.3\"] },\n\
                  { name = \"d\", addresses = [\"192.0.2.4\"] },\n]\n",
        qname: "multi.svc.test.",
    },
    Method {
        service: "name = \"subnet.svc.test.\"\nrouting = \"subnet\"\nendpoints = [\n\
                  { name = \"a\", addresses = [\"192.0.2.1\"], subnets = [\"127.0.0.0/8\", \"198.51.100.0/24\"] },\n\
                  { name = \"b\", addresses = [\"192.0.2.2\", \"2001:db8::2\"], subnets = [\"::1/128\", \"2001:db8::/32\"] },\n\
                  { name = \"c\", addresses = [\"192.0.2.3\", \"2001:db8::3\"] },\n]\n",
        qname: "subnet.svc.test.",
    },
    Method {
        service: "name = \"nested.svc.test.\"\nrouting = \"priority\"\nendpoints = [\n\
                  { name = \"w\", service = \"weighted.svc.test.\", priority = 1 },\n\
                  { name = \"s\", service = \"subnet.svc.test.\", priority = 2 },\n]\n",
        qname: "nested.svc.test.",
    },
    Method {
        service: "name = \"cname.svc.test.\"\nrouting = \"priority\"\nendpoints = [\n\
                  { name = \"in\", cname = \"www.example.com.\", priority = 1 },\n]\n",
        qname: "cname.svc.test.",
    },
    Method {
        service: "name = \"geo.svc.test.\"\nrouting = \"geographic\"\nendpoints = [\n\
                  { name = \"lon\", addresses = [\"192.0.2.1\", \"2001:db8::1\"] },\n\
                  { name = \"sfo\", addresses = [\"192.0.2.2\", \"2001:db8::2\"] },\n\
                  { name = \"fra\", addresses = [\"192.0.2.3\"] },\n\
                  { name = \"iad\", addresses = [\"192.0.2.4\", \"2001:db8::4\"] },\n]\n\
                  regions = { \"GB\" = [\"lon\", \"fra\"], \"US-CA\" = [\"sfo\"], \"EU\" = [\"fra\"], \"*\" = [\"iad\"] }\n",
        qname: "geo.svc.test.",
    },
    Method {
        service: "name = \"near.svc.test.\"\nrouting = \"performance\"\nanswers = 2\ndefault = \"iad\"\nendpoints = [\n\
                  { name = \"lon\", addresses = [\"192.0.2.1\", \"2001:db8::1\"], location = [51.51, -0.13] },\n\
                  { name = \"sfo\", addresses = [\"192.0.2.2\"], location = [37.62, -122.38] },\n\
                  { name = \"tyo\", addresses = [\"192.0.2.5\", \"2001:db8::5\"], location = [35.55, 139.78] },\n\
                  { name = \"iad\", addresses = [\"192.0.2.4\", \"2001:db8::4\"], location = [38.95, -77.45] },\n]\n\
                  overrides = { \"DE\" = [\"lon\"] }\n",
        qname: "near.svc.test.",
    },
];

/// The GeoIP database of the geographic and performance services: every
/// client address of the mix is in it (the ECS networks 198.51.100.0/24
/// and 2001:db8:42::/48, the engine test's clients 192.0.2.1 and
/// 2001:db8::1, the server test's 127.0.0.1), except ::1, which takes the
/// unknown-client path.
fn write_geo_database(path: &std::path::Path) {
    use common::geodb::{GeoDb, Place};
    GeoDb::default()
        .add(
            "198.51.100.0/24",
            Place::new("EU", "GB", Some("ENG"), Some((51.5, -0.12))),
        )
        .add(
            "2001:db8:42::/48",
            Place::new("NA", "US", Some("CA"), Some((37.77, -122.42))),
        )
        .add(
            "192.0.2.0/24",
            Place::new("EU", "DE", Some("HE"), Some((50.11, 8.68))),
        )
        .add(
            "2001:db8::/48",
            Place::new("AS", "JP", Some("13"), Some((35.68, 139.69))),
        )
        .add("127.0.0.0/8", Place::new("EU", "FR", None, None))
        .write(path);
}

/// The zone the services live in. Its name servers are nodes `a` and `b`
/// of the multivalue service, which its `ns-health` names.
const SERVICE_ZONE: &str = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n\
    @ NS ns1\n@ NS ns2\nns1 A 192.0.2.1\nns1 AAAA 2001:db8::1\nns2 A 192.0.2.2\n";

/// The config: the basic example's zone, the service zone and every
/// method's service, in `dir`. The listen addresses are set by the caller.
fn config(dir: &common::TempDir) -> Config {
    let basic = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/basic/zones/example.com.zone");
    dir.write("svc.test.zone", SERVICE_ZONE);
    write_geo_database(&dir.path().join("geo.mmdb"));
    let mut text = format!(
        "[server]\nlisten = [\"127.0.0.1:53\"]\nworkers = 2\nmax-udp-payload = 1232\n\
         identity = \"ns1.zero-alloc\"\nversion = \"steerdns test\"\n\n\
         [geoip]\ndatabase = \"geo.mmdb\"\n\n\
         [[zone]]\norigin = \"example.com.\"\nfile = \"{}\"\n\n\
         [[zone]]\norigin = \"svc.test.\"\nfile = \"svc.test.zone\"\n\
         ns-health = \"multi.svc.test.\"\n",
        basic.display()
    );
    for method in METHODS {
        text.push_str("\n[[service]]\n");
        text.push_str(method.service);
    }
    let path = dir.write("steerdns.toml", &text);
    Config::from_file(&path).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// How a query of the mix carries EDNS.
#[derive(Debug, Clone, Copy)]
enum Opt {
    None,
    Plain,
    /// With an EDNS Client Subnet option for this address and prefix.
    Ecs(IpAddr, u8),
}

/// The same options for each name of the mix.
const OPTS: [Opt; 4] = [
    Opt::None,
    Opt::Plain,
    Opt::Ecs(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 0)), 24),
    Opt::Ecs(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x42, 0, 0, 0, 0, 0)),
        56,
    ),
];

fn query(name: &str, qtype: RecordType, opt: Opt) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(7).set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    match opt {
        Opt::None => {}
        Opt::Plain => {
            m.set_edns(Edns::new());
        }
        Opt::Ecs(addr, prefix) => {
            let mut edns = Edns::new();
            edns.options_mut()
                .insert(EdnsOption::Subnet(ClientSubnet::new(addr, prefix, 0)));
            m.set_edns(edns);
        }
    }
    m.to_vec().unwrap()
}

/// The allocation counter is process-wide, so the tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

/// A mix of queries: positive, wildcard, negative, referral, ANY, REFUSED,
/// each routing method, each without EDNS, with EDNS and with ECS; then
/// BADVERS and FORMERR, DNS cookies (client cookie alone, a bad server
/// cookie, no question), NSID and CHAOS TXT.
fn query_mix() -> Vec<Vec<u8>> {
    let mut questions = vec![
        ("www.example.com.", RecordType::A),
        ("API.example.com.", RecordType::AAAA),
        ("x.y.apps.example.com.", RecordType::A),
        ("nope.example.com.", RecordType::A),
        ("www.example.com.", RecordType::MX),
        ("host.lab.example.com.", RecordType::A),
        ("example.com.", RecordType::ANY),
        ("example.com.", RecordType::MX),
        ("example.org.", RecordType::A),
        // The apex NS RRset filtered by node health, and ANY beside it.
        ("svc.test.", RecordType::NS),
        ("svc.test.", RecordType::ANY),
    ];
    for method in METHODS {
        questions.push((method.qname, RecordType::A));
        questions.push((method.qname, RecordType::AAAA));
    }
    let mut queries = Vec::new();
    for opt in OPTS {
        for &(name, t) in &questions {
            queries.push(query(name, t, opt));
        }
    }
    let mut bad_version = query("www.example.com.", RecordType::A, Opt::Plain);
    let at = bad_version.len() - 5;
    bad_version[at] = 1;
    queries.push(bad_version);
    queries.push(vec![0; 12]);
    // COOKIE options: 8 bytes (client cookie), then 24 (and a server
    // cookie that is not ours), appended to an empty OPT record.
    for cookie in [&[1u8; 8][..], &[2; 24]] {
        let mut q = query("www.example.com.", RecordType::A, Opt::Plain);
        let rdlen = q.len() - 2;
        q[rdlen..].copy_from_slice(&(4 + cookie.len() as u16).to_be_bytes());
        q.extend([0, 10, 0, cookie.len() as u8]);
        q.extend(cookie);
        let mut bare = q.clone();
        queries.push(q);
        // The same without its question: asks for a server cookie only.
        let question = "www.example.com.".len() + 1 + 4;
        bare.drain(12..12 + question);
        bare[5] = 0;
        queries.push(bare);
    }
    // Which node answered: an empty NSID option, and CHAOS TXT at the
    // identity, the version and a name that is REFUSED.
    let mut nsid = query("www.example.com.", RecordType::A, Opt::Plain);
    let rdlen = nsid.len() - 2;
    nsid[rdlen..].copy_from_slice(&4u16.to_be_bytes());
    nsid.extend([0, 3, 0, 0]);
    queries.push(nsid);
    for name in ["id.server.", "VERSION.bind.", "authors.bind."] {
        let mut q = query(name, RecordType::TXT, Opt::None);
        let class = q.len() - 1;
        q[class] = 3;
        queries.push(q);
    }
    queries
}

#[test]
fn engine_answers_without_allocating() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = common::TempDir::new("zero-alloc");
    let snap = Snapshot::load(&config(&dir)).unwrap();
    let queries = query_mix();
    let mut out = vec![0u8; 4096];
    // Node `b` down: NS answers of svc.test. take the filtering path and
    // keep ns1 alone.
    let multi = snap
        .services
        .iter()
        .find(|s| s.name.to_string() == "multi.svc.test.")
        .unwrap();
    snap.health
        .set_health(multi.endpoints[1].slot, steerdns::health::Health::Down);
    let ns = query("svc.test.", RecordType::NS, Opt::None);
    let ctx = QueryContext {
        client: "192.0.2.1:5300".parse().unwrap(),
        local: "127.0.0.1".parse().unwrap(),
        transport: Transport::Udp,
        now: 1_700_000_000,
        cookie_keys: CookieSecret::Shared([9; 16]).keys(0),
    };
    let len = respond(&ns, &ctx, &snap, &mut out).unwrap().len;
    let reply = Message::from_vec(&out[..len]).unwrap();
    assert_eq!(reply.answers().len(), 1, "{reply:?}");
    let mut answered = 0;
    let mut rounds = 0;
    let before = THREAD_ALLOCATIONS.with(Cell::get);
    for (client, local) in [
        ("192.0.2.1:5300", "127.0.0.1"),
        ("[2001:db8::1]:5300", "::1"),
    ] {
        let ctx = QueryContext {
            client: client.parse().unwrap(),
            local: local.parse().unwrap(),
            transport: Transport::Udp,
            now: 1_700_000_000,
            cookie_keys: CookieSecret::Shared([9; 16]).keys(0),
        };
        for _ in 0..500 {
            rounds += 1;
            for q in &queries {
                answered += respond(q, &ctx, &snap, &mut out).is_some() as usize;
            }
        }
    }
    let allocations = THREAD_ALLOCATIONS.with(Cell::get) - before;
    assert_eq!(answered, rounds * queries.len());
    assert_eq!(
        allocations, 0,
        "the engine allocated {allocations} times for {answered} queries"
    );
}

/// Clients per address family; the kernel spreads them over the two
/// workers of each address by their source port (`SO_REUSEPORT` hashes
/// the 4-tuple), so with 24 the chance that a worker gets fewer than three
/// is below one in a million.
const CLIENTS_PER_FAMILY: usize = 24;

/// Queries each client sends at once before reading the replies: with
/// all clients doing so, datagrams queue and `recvmmsg` returns several.
/// 2 x 24 x 4 datagrams in flight per address stay well within a
/// socket's receive buffer, so none is dropped.
const BURST: usize = 4;

/// How long a client waits for a reply: generous, for a loaded machine.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the clients saw in one phase.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    /// Queries sent.
    sent: usize,
    /// Replies that matched an outstanding query.
    replies: usize,
    /// Replies with TC set, or BADCOOKIE: how a limited reply slips.
    truncated: usize,
    /// Waits for a reply that timed out, and replies matching nothing.
    missing: usize,
    stray: usize,
}

impl Seen {
    fn add(&mut self, other: Seen) {
        self.sent += other.sent;
        self.replies += other.replies;
        self.truncated += other.truncated;
        self.missing += other.missing;
        self.stray += other.stray;
    }
}

/// One client: a socket and its copy of the mix, ids rewritten so that the
/// queries of one burst differ.
struct Client {
    socket: UdpSocket,
    queries: Vec<Vec<u8>>,
}

impl Client {
    fn new(server: SocketAddr, mix: &[Vec<u8>]) -> Client {
        let local: IpAddr = if server.is_ipv6() {
            Ipv6Addr::LOCALHOST.into()
        } else {
            Ipv4Addr::LOCALHOST.into()
        };
        let socket = UdpSocket::bind((local, 0)).unwrap();
        socket.connect(server).unwrap();
        socket.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
        let queries = mix
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let mut q = q.clone();
                q[..2].copy_from_slice(&(i as u16).to_be_bytes());
                q
            })
            .collect();
        Client { socket, queries }
    }

    /// Sends the mix `rounds` times, `BURST` queries at a time, each burst
    /// followed by reading its replies. Allocates nothing.
    fn run(&self, rounds: usize) -> Seen {
        let mut seen = Seen::default();
        let mut reply = [0u8; 4096];
        let mut next = 0;
        for _ in 0..rounds * self.queries.len() / BURST {
            let mut outstanding = [0u16; BURST];
            for slot in &mut outstanding {
                let q = &self.queries[next % self.queries.len()];
                next += 1;
                *slot = u16::from_be_bytes([q[0], q[1]]);
                if self.socket.send(q).is_ok() {
                    seen.sent += 1;
                }
            }
            let mut waiting = BURST;
            while waiting > 0 {
                let Ok(n) = self.socket.recv(&mut reply) else {
                    seen.missing += waiting;
                    break;
                };
                let id = u16::from_be_bytes([reply[0], reply[1]]);
                match outstanding[..waiting].iter().position(|&o| o == id) {
                    Some(at) if n >= 12 => {
                        outstanding.swap(at, waiting - 1);
                        waiting -= 1;
                        seen.replies += 1;
                        // A limited reply slips as TC, or as BADCOOKIE (23:
                        // 7 in the header, the rest in OPT) to a client
                        // with a DNS cookie.
                        seen.truncated += usize::from(reply[2] & 0x02 != 0 || reply[3] & 0xf == 7);
                    }
                    _ => seen.stray += 1,
                }
            }
        }
        seen
    }
}

/// What the UDP worker threads (`udpN`) of this process did so far: CPU
/// time in nanoseconds and voluntary context switches (each a wait for a
/// datagram), by thread name. Read from /proc, which allocates: only
/// outside the measured window.
fn udp_workers() -> Vec<(String, u64, u64)> {
    let mut workers = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let read = |file: &str| std::fs::read_to_string(task.path().join(file)).unwrap_or_default();
        let name = read("comm").trim().to_string();
        // Test threads are named after their test, some of which start
        // with "udp" too.
        let is_worker = name
            .strip_prefix("udp")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !is_worker {
            continue;
        }
        let runtime = read("schedstat")
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let switches = read("status")
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        workers.push((name, runtime, switches));
    }
    workers.sort();
    workers
}

/// A server running in this process on free ports of 127.0.0.1 and ::1,
/// two UDP workers each.
struct Running {
    addrs: Vec<SocketAddr>,
    counters: Arc<RrlCounters>,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: std::thread::JoinHandle<Result<(), ServerError>>,
}

/// What one measured run showed.
#[derive(Debug)]
struct Measured {
    allocations: usize,
    /// What the clients saw while measured, and in the warm-up before.
    seen: Seen,
    warm_up: Seen,
    /// Per worker: name, CPU time (ns) and waits for datagrams while
    /// measured.
    workers: Vec<(String, u64, u64)>,
}

impl Running {
    fn start(mut config: Config) -> Running {
        config.listen = vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
        config.workers = 2;
        let snap = Arc::new(ArcSwap::from_pointee(Snapshot::load(&config).unwrap()));
        let server = Server::bind(&config).unwrap();
        let addrs = server.local_addrs();
        let counters = server.rrl_counters();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = std::thread::spawn(move || {
            server.run_until(snap, async move {
                let _ = stopped.await;
            })
        });
        Running {
            addrs,
            counters,
            stop,
            handle,
        }
    }

    /// Runs `CLIENTS_PER_FAMILY` clients per address, all at once: a
    /// warm-up in which workers and runtime finish their set-up, then
    /// `rounds` rounds of `mix` each, during which every allocation in
    /// the process is counted.
    fn measure(&self, mix: &[Vec<u8>], rounds: usize) -> Measured {
        let clients: Vec<Client> = self
            .addrs
            .iter()
            .flat_map(|&addr| (0..CLIENTS_PER_FAMILY).map(move |_| addr))
            .map(|addr| Client::new(addr, mix))
            .collect();
        let parties = clients.len() + 1;
        let (warm, go, done) = (
            Arc::new(Barrier::new(parties)),
            Arc::new(Barrier::new(parties)),
            Arc::new(Barrier::new(parties)),
        );
        let threads: Vec<_> = clients
            .into_iter()
            .map(|client| {
                let (warm, go, done) = (warm.clone(), go.clone(), done.clone());
                std::thread::spawn(move || {
                    let warm_up = client.run(2);
                    warm.wait();
                    go.wait();
                    let measured = client.run(rounds);
                    done.wait();
                    (warm_up, measured)
                })
            })
            .collect();
        warm.wait();
        let workers_before = udp_workers();
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        go.wait();
        done.wait();
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
        let workers_after = udp_workers();
        let (mut seen, mut warm_up) = (Seen::default(), Seen::default());
        for thread in threads {
            let (warm, measured) = thread.join().unwrap();
            warm_up.add(warm);
            seen.add(measured);
        }
        let workers = workers_after
            .into_iter()
            .map(|(name, runtime, switches)| {
                let (_, runtime0, switches0) = workers_before
                    .iter()
                    .find(|(n, _, _)| *n == name)
                    .cloned()
                    .unwrap_or_default();
                (name, runtime - runtime0, switches - switches0)
            })
            .collect();
        Measured {
            allocations,
            seen,
            warm_up,
            workers,
        }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        self.handle.join().unwrap().unwrap();
    }
}

/// Asserts what every measured run must show: one reply per query, every
/// worker answering, datagrams arriving in batches, and no allocation.
fn assert_measured(what: &str, m: &Measured) {
    eprintln!("{what}: {m:?}");
    for seen in [m.warm_up, m.seen] {
        assert!(
            seen.sent > 0 && seen.replies == seen.sent && seen.missing == 0 && seen.stray == 0,
            "{what}: not one reply per query: {seen:?}"
        );
    }
    let seen = m.seen;
    // Four workers (udp0, udp1 on 127.0.0.1; udp2, udp3 on ::1), each of
    // which did real work: at least 3 % of the CPU time of the busiest.
    // An idle worker only wakes twice a second to check for a stop.
    assert_eq!(m.workers.len(), 4, "{what}: {:?}", m.workers);
    let busiest = m.workers.iter().map(|w| w.1).max().unwrap_or(0);
    for (name, runtime, _) in &m.workers {
        assert!(
            *runtime * 100 >= busiest * 3,
            "{what}: worker {name} answered (next to) nothing: {:?}",
            m.workers
        );
    }
    // Fewer waits for a datagram than datagrams: on average a wake-up
    // found more than one queued, so `recvmmsg` returned batches.
    let waits: u64 = m.workers.iter().map(|w| w.2).sum();
    assert!(
        (waits as usize) < seen.replies,
        "{what}: {waits} waits for {} datagrams: no batches",
        seen.replies
    );
    assert_eq!(
        m.allocations, 0,
        "{what}: the UDP path allocated {} times for {} queries",
        m.allocations, seen.sent
    );
}

#[test]
fn udp_server_answers_without_allocating() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = common::TempDir::new("zero-alloc");
    let server = Running::start(config(&dir));
    // The FORMERR probe of twelve zero bytes is a valid query header; every
    // query in the mix gets exactly one reply.
    let measured = server.measure(&query_mix(), 10);
    server.stop();
    assert_measured("plain", &measured);
    assert_eq!(measured.seen.truncated, 0, "nothing in the mix is too big");
}

/// The same through response rate limiting: loopback is exempt by default,
/// so here it is not, and every rate is 1 a second with slip 1, so nearly
/// every reply goes through the limiter's table and comes back truncated,
/// and still exactly one reply per query.
#[test]
fn rate_limited_udp_server_answers_without_allocating() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = common::TempDir::new("zero-alloc");
    let mut config = config(&dir);
    config.rrl = RrlConfig {
        responses_per_second: 1,
        nxdomains_per_second: 1,
        errors_per_second: 1,
        slip: 1,
        exempt_clients: Vec::new(),
        ..RrlConfig::default()
    };
    let server = Running::start(config);
    // A reply without a question cannot be truncated for a retry, so a
    // limited one is dropped: leave the queries without one out.
    let queries: Vec<Vec<u8>> = query_mix().into_iter().filter(|q| q[5] == 1).collect();
    let before = server.counters.totals();
    let measured = server.measure(&queries, 10);
    let totals = server.counters.totals();
    server.stop();
    assert_measured("rate-limited", &measured);
    let seen = measured.seen;
    assert!(seen.truncated > seen.sent / 2, "{seen:?}");
    let slipped = totals.slipped - before.slipped;
    assert_eq!(totals.limited, totals.slipped, "slip 1 drops nothing");
    assert_eq!(
        slipped as usize,
        measured.warm_up.truncated + seen.truncated,
        "no reply of the mix is too big"
    );
}

/// The same with every query offered to the query log (`[log]
/// query-sample = 1`): workers copy samples into a preallocated queue and
/// drop what does not fit. (No log subscriber is installed here, so the
/// writer thread formats nothing; with one, it allocates as it formats,
/// on its own thread.)
#[test]
fn sampled_udp_server_answers_without_allocating() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = common::TempDir::new("zero-alloc");
    let mut config = config(&dir);
    config.query_sample = 1;
    let server = Running::start(config);
    let measured = server.measure(&query_mix(), 10);
    server.stop();
    assert_measured("sampled", &measured);
}
