//! The answer path allocates nothing: a counting global allocator watches
//! the engine answer a mix of queries, then the real UDP server answer
//! queries sent over loopback.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::UdpSocket;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use hickory_proto::op::{Edns, Message, Query};
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

fn query(name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(7).set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if edns {
        m.set_edns(Edns::new());
    }
    m.to_vec().unwrap()
}

/// The allocation counter is process-wide, so the tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

/// A mix of queries: positive, wildcard, negative, referral, ANY, REFUSED,
/// with and without EDNS, BADVERS and FORMERR, DNS cookies (client cookie
/// alone, a bad server cookie, no question).
fn query_mix() -> Vec<Vec<u8>> {
    let mut queries = Vec::new();
    for edns in [false, true] {
        for (name, t) in [
            ("www.example.com.", RecordType::A),
            ("API.example.com.", RecordType::AAAA),
            ("x.y.apps.example.com.", RecordType::A),
            ("nope.example.com.", RecordType::A),
            ("www.example.com.", RecordType::MX),
            ("host.lab.example.com.", RecordType::A),
            ("example.com.", RecordType::ANY),
            ("example.com.", RecordType::MX),
            ("example.org.", RecordType::A),
        ] {
            queries.push(query(name, t, edns));
        }
    }
    let mut bad_version = query("www.example.com.", RecordType::A, true);
    let at = bad_version.len() - 5;
    bad_version[at] = 1;
    queries.push(bad_version);
    queries.push(vec![0; 12]);
    // COOKIE options: 8 bytes (client cookie), then 24 (and a server
    // cookie that is not ours), appended to an empty OPT record.
    for cookie in [&[1u8; 8][..], &[2; 24]] {
        let mut q = query("www.example.com.", RecordType::A, true);
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
    queries
}

#[test]
fn engine_answers_without_allocating() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let config = Config::from_file(Path::new("examples/basic/steerdns.toml")).unwrap();
    let snap = Snapshot::load(&config).unwrap();
    let queries = query_mix();
    let ctx = QueryContext {
        client: "192.0.2.1:5300".parse().unwrap(),
        local: "127.0.0.1".parse().unwrap(),
        transport: Transport::Udp,
        now: 1_700_000_000,
        cookie_keys: CookieSecret::Shared([9; 16]).keys(0),
    };
    let mut out = vec![0u8; 4096];
    let mut answered = 0;
    let before = THREAD_ALLOCATIONS.with(Cell::get);
    for _ in 0..1000 {
        for q in &queries {
            answered += respond(q, &ctx, &snap, &mut out).is_some() as usize;
        }
    }
    let allocations = THREAD_ALLOCATIONS.with(Cell::get) - before;
    assert_eq!(answered, 1000 * queries.len());
    assert_eq!(
        allocations, 0,
        "the engine allocated {allocations} times for {answered} queries"
    );
}

/// A server running in this process on a free loopback port, and a UDP
/// client connected to it.
struct Running {
    client: UdpSocket,
    counters: Arc<RrlCounters>,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: std::thread::JoinHandle<Result<(), ServerError>>,
}

impl Running {
    /// Serves `config` on 127.0.0.1 with two UDP workers.
    fn start(mut config: Config) -> Running {
        config.listen = vec!["127.0.0.1:0".parse().unwrap()];
        config.workers = 2;
        let snap = Arc::new(ArcSwap::from_pointee(Snapshot::load(&config).unwrap()));
        let server = Server::bind(&config).unwrap();
        let addr = server.local_addrs()[0];
        let counters = server.rrl_counters();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = std::thread::spawn(move || {
            server.run_until(snap, async move {
                let _ = stopped.await;
            })
        });
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        client.connect(addr).unwrap();
        Running {
            client,
            counters,
            stop,
            handle,
        }
    }

    /// Sends every query `rounds` times, each waiting for its one reply;
    /// returns how many replies were truncated, or BADCOOKIE: how a
    /// limited reply slips to a client with a DNS cookie.
    fn exchange(&self, queries: &[Vec<u8>], rounds: usize) -> usize {
        let mut reply = [0u8; 4096];
        let mut truncated = 0;
        for _ in 0..rounds {
            for q in queries {
                self.client.send(q).unwrap();
                self.client
                    .recv(&mut reply)
                    .expect("every query is answered");
                assert_eq!(reply[..2], q[..2], "reply to the query just sent");
                // BADCOOKIE is 23: 7 in the header, the rest in OPT.
                truncated += usize::from(reply[2] & 0x02 != 0 || reply[3] & 0xf == 7);
            }
        }
        truncated
    }

    /// Allocations made while `rounds` rounds of `queries` are answered,
    /// after a warm-up in which workers and runtime finish their set-up;
    /// also the truncated replies of all rounds, warm-up included.
    fn count_allocations(&self, queries: &[Vec<u8>], rounds: usize) -> (usize, usize) {
        let warm_up = self.exchange(queries, 20);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let measured = self.exchange(queries, rounds);
        (
            ALLOCATIONS.load(Ordering::Relaxed) - before,
            warm_up + measured,
        )
    }

    fn stop(self) {
        let _ = self.stop.send(());
        self.handle.join().unwrap().unwrap();
    }
}

#[test]
fn udp_server_answers_without_allocating() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let config = Config::from_file(Path::new("examples/basic/steerdns.toml")).unwrap();
    let server = Running::start(config);
    // The FORMERR probe of twelve zero bytes is a valid query header; every
    // query in the mix gets exactly one reply.
    let queries = query_mix();
    let (allocations, _) = server.count_allocations(&queries, 200);
    server.stop();
    assert_eq!(
        allocations,
        0,
        "the UDP path allocated {allocations} times for {} queries",
        200 * queries.len()
    );
}

/// The same through response rate limiting: loopback is exempt by default,
/// so here it is not, and every rate is 1 a second with slip 1, so nearly
/// every reply goes through the limiter's table and comes back truncated,
/// and still exactly one reply per query.
#[test]
fn rate_limited_udp_server_answers_without_allocating() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut config = Config::from_file(Path::new("examples/basic/steerdns.toml")).unwrap();
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
    let (allocations, truncated) = server.count_allocations(&queries, 200);
    let totals = server.counters.totals();
    server.stop();
    assert_eq!(
        allocations,
        0,
        "the rate-limited UDP path allocated {allocations} times for {} queries",
        200 * queries.len()
    );
    assert!(truncated > 200 * queries.len() / 2, "{truncated} truncated");
    assert_eq!(totals.limited, totals.slipped, "slip 1 drops nothing");
    assert_eq!(
        totals.slipped as usize, truncated,
        "no reply of the mix is too big"
    );
}
