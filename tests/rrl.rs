//! Response rate limiting seen from real clients: the steerdns binary is
//! flooded over loopback from one /24 (clients bound to 127.0.0.x) while a
//! client in another /24 (127.1.0.10) asks at a modest rate.
//!
//! Also: wildcard answers share one account, and a client presenting a
//! valid DNS server cookie is never limited.
//!
//! Every flood is bounded (a few thousand queries within about two
//! seconds) and stays on 127.0.0.0/8.

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use common::{with_cookie, QueryOpts, ServerProcess};

/// Starts steerdns on a free loopback port with two UDP workers (so the
/// shared table is really shared) and `rrl` as its `[rrl]` table.
fn start(rrl: &str) -> ServerProcess {
    common::start_steerdns(
        &common::diff_zones(),
        &format!("workers = 2\n\n[rrl]\n{rrl}"),
    )
}

/// A UDP client socket bound to `ip` (any 127.0.0.0/8 address is local on
/// Linux), connected to the server.
fn client(ip: &str, server: SocketAddr) -> UdpSocket {
    let socket = UdpSocket::bind((ip.parse::<IpAddr>().unwrap(), 0)).unwrap();
    socket.connect(server).unwrap();
    socket
}

/// The wire form of a query with message id `id`.
fn query(name: &str, rtype: RecordType, id: u16) -> Vec<u8> {
    let mut m = common::build_query(&common::name(name), rtype, &QueryOpts::default());
    m.set_id(id);
    m.to_vec().unwrap()
}

/// What came back for a flood.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    sent: usize,
    /// Replies with records (or the rcode asked about), TC clear.
    full: usize,
    /// Replies with TC set.
    truncated: usize,
    /// BADCOOKIE replies: how a limited reply slips to a cookie client.
    badcookie: usize,
}

impl Tally {
    fn limited(&self) -> usize {
        self.sent - self.full
    }
}

/// Sends `count` queries from each of `sockets` in turn, paced to about
/// `per_second` overall, while a thread per socket counts the replies;
/// returns the tally and the span from the first query sent to the last
/// reply received, which holds every moment the server counted a
/// response in, however late a loaded machine let it answer.
fn flood(
    sockets: Vec<UdpSocket>,
    count: usize,
    per_second: usize,
    make: impl Fn(usize) -> Vec<u8>,
    full: fn(&Message) -> bool,
) -> (Tally, Duration) {
    let done = Arc::new(AtomicBool::new(false));
    let sockets: Vec<Arc<UdpSocket>> = sockets.into_iter().map(Arc::new).collect();
    let readers: Vec<_> = sockets
        .iter()
        .map(|socket| {
            let socket = socket.clone();
            let done = done.clone();
            thread::spawn(move || {
                socket
                    .set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let mut tally = Tally::default();
                let mut buf = [0u8; 4096];
                let mut quiet_since = None;
                let mut last_reply = None;
                loop {
                    match socket.recv(&mut buf) {
                        Ok(n) => {
                            quiet_since = None;
                            last_reply = Some(Instant::now());
                            let m = Message::from_vec(&buf[..n]).expect("reply decodes");
                            if m.truncated() {
                                assert!(m.answers().is_empty(), "TC reply with records");
                                assert_eq!(m.queries().len(), 1, "TC reply keeps the question");
                                tally.truncated += 1;
                            } else if u16::from(m.response_code()) == BADCOOKIE {
                                assert!(m.answers().is_empty(), "BADCOOKIE with records");
                                tally.badcookie += 1;
                            } else if full(&m) {
                                tally.full += 1;
                            } else {
                                panic!("unexpected reply: {m:?}");
                            }
                        }
                        Err(_) if done.load(Ordering::Relaxed) => {
                            // Stop after a second without replies.
                            let since = *quiet_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > Duration::from_secs(1) {
                                return (tally, last_reply);
                            }
                        }
                        Err(_) => {}
                    }
                }
            })
        })
        .collect();

    let started = Instant::now();
    let pause = Duration::from_secs(1) / per_second.max(1) as u32;
    for i in 0..count {
        let socket = &sockets[i % sockets.len()];
        socket.send(&make(i)).unwrap();
        // Sleep in steps of ten queries; a sleep per query is too coarse.
        if i % 10 == 9 {
            let due = started + pause * (i as u32 + 1);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
        }
    }
    let mut last = Instant::now();
    done.store(true, Ordering::Relaxed);
    let mut total = Tally {
        sent: count,
        ..Tally::default()
    };
    for reader in readers {
        let (t, last_reply) = reader.join().unwrap();
        total.full += t.full;
        total.truncated += t.truncated;
        last = last.max(last_reply.unwrap_or(last));
        total.badcookie += t.badcookie;
    }
    (total, last - started)
}

/// The BADCOOKIE rcode (RFC 7873 §8).
const BADCOOKIE: u16 = 23;

/// The 24-byte COOKIE option (client cookie `client`, then the server
/// cookie) found in the raw reply `reply`.
fn cookie_of(reply: &[u8], client: &[u8; 8]) -> Vec<u8> {
    let mut head = vec![0, 10, 0, 24];
    head.extend_from_slice(client);
    let at = (reply.windows(head.len()).position(|w| w == head))
        .unwrap_or_else(|| panic!("no COOKIE in {reply:02x?}"));
    reply[at + 4..at + 28].to_vec()
}

/// Asks one question from `ip` and waits for its reply.
fn ask_from(ip: &str, server: SocketAddr, name: &str, rtype: RecordType, id: u16) -> Message {
    let socket = client(ip, server);
    socket
        .set_read_timeout(Some(common::QUERY_TIMEOUT))
        .unwrap();
    socket.send(&query(name, rtype, id)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no reply from {ip}: {e}"));
    Message::from_vec(&buf[..n]).unwrap()
}

fn is_answer(m: &Message) -> bool {
    m.response_code() == ResponseCode::NoError && !m.answers().is_empty()
}

/// Responses allowed in `span` at `rate` a second: a one-second burst,
/// then `rate` for every second boundary crossed.
fn allowed(rate: usize, span: Duration) -> usize {
    rate * (span.as_secs() as usize + 2)
}

#[test]
fn a_flood_from_one_prefix_is_limited_and_others_are_served() {
    let server = start("exempt-clients = []\nresponses-per-second = 20\nslip = 2");
    let addr = server.addr();

    // Meanwhile a client in another /24 asks ten times a second, for the
    // very same name; it must get every answer in full.
    let stop = Arc::new(AtomicBool::new(false));
    let neighbour = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut asked = 0;
            while !stop.load(Ordering::Relaxed) {
                let m = ask_from(
                    "127.1.0.10",
                    addr,
                    "www.example.com.",
                    RecordType::A,
                    60_000 + asked,
                );
                assert!(is_answer(&m) && !m.truncated(), "neighbour limited: {m:?}");
                asked += 1;
                thread::sleep(Duration::from_millis(100));
            }
            asked
        })
    };

    // 2,000 queries in about 1.5 s from two addresses of 127.0.0.0/24.
    let sockets = vec![client("127.0.0.10", addr), client("127.0.0.11", addr)];
    let (tally, span) = flood(
        sockets,
        2000,
        1300,
        |i| query("www.example.com.", RecordType::A, i as u16),
        is_answer,
    );
    stop.store(true, Ordering::Relaxed);
    let asked = neighbour.join().unwrap();
    eprintln!("flood: {tally:?} in {span:?}; the neighbour asked {asked} times");
    // The flood must be far above the rate to test the limit: at most a
    // quarter of it may be allowed through, however long a loaded machine
    // stretched it (about 1.5 s unloaded, 100 s of the 2,000 allowed).
    assert!(
        allowed(20, span) * 4 <= tally.sent,
        "the flood took {span:?}: too slow to test the limit"
    );
    assert!(asked >= 5, "the neighbour asked only {asked} times");

    // Most were limited: at most the burst and the rate got through...
    assert!(tally.full >= 10, "{tally:?}");
    assert!(tally.full <= allowed(20, span), "{tally:?} in {span:?}");
    // ... and of the limited ones, about every second came back truncated.
    let limited = tally.limited();
    let share = tally.truncated as f64 / limited as f64;
    assert!(
        (0.4..=0.6).contains(&share),
        "slip share {share}: {tally:?}"
    );

    // TCP is never limited.
    let m = common::query(
        addr,
        "www.example.com.",
        RecordType::A,
        &QueryOpts {
            tcp: true,
            ..QueryOpts::default()
        },
    )
    .unwrap();
    assert!(is_answer(&m));
}

#[test]
fn with_slip_one_every_limited_reply_is_truncated() {
    let server = start("exempt-clients = []\nresponses-per-second = 10\nslip = 1");
    let addr = server.addr();
    let (tally, span) = flood(
        vec![client("127.0.0.20", addr)],
        500,
        1000,
        |i| query("mail.example.com.", RecordType::AAAA, i as u16),
        is_answer,
    );
    assert!(tally.full <= allowed(10, span), "{tally:?} in {span:?}");
    assert_eq!(
        tally.full + tally.truncated,
        500,
        "every query got a reply: {tally:?}"
    );
}

#[test]
fn nxdomains_are_counted_per_zone() {
    // Random names are free to invent: they must not escape the limit.
    let server = start("exempt-clients = []\nnxdomains-per-second = 5\nslip = 0");
    let addr = server.addr();
    let (tally, span) = flood(
        vec![client("127.0.0.30", addr)],
        300,
        1000,
        |i| query(&format!("nx{i}.example.com."), RecordType::A, i as u16),
        |m| m.response_code() == ResponseCode::NXDomain,
    );
    assert!(tally.full <= allowed(5, span), "{tally:?} in {span:?}");
    assert_eq!(tally.truncated, 0, "slip = 0 never truncates: {tally:?}");
    // Answers for existing names have accounts of their own.
    let m = ask_from("127.0.0.30", addr, "www.example.com.", RecordType::A, 1);
    assert!(is_answer(&m) && !m.truncated());
}

#[test]
fn loopback_is_exempt_by_default() {
    let server = start("");
    let addr = server.addr();
    let (tally, _) = flood(
        vec![client("127.0.0.40", addr)],
        400,
        2000,
        |i| query("www.example.com.", RecordType::A, i as u16),
        is_answer,
    );
    assert_eq!(tally.full, 400, "{tally:?}");
}

#[test]
fn a_valid_server_cookie_is_never_limited() {
    let server = start("exempt-clients = []\nresponses-per-second = 5\nslip = 2");
    let addr = server.addr();
    let client_cookie = [0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57];

    // A client cookie alone earns a server cookie.
    let socket = client("127.0.0.50", addr);
    socket
        .set_read_timeout(Some(common::QUERY_TIMEOUT))
        .unwrap();
    socket
        .send(&with_cookie(
            query("www.example.com.", RecordType::A, 1),
            &client_cookie,
        ))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).unwrap();
    let reply = Message::from_vec(&buf[..n]).unwrap();
    assert!(is_answer(&reply), "{reply:?}");
    let cookie = cookie_of(&buf[..n], &client_cookie);
    assert_eq!((cookie.len(), &cookie[..8]), (24, &client_cookie[..]));
    drop(socket);

    // Presenting it, the client is answered in full however fast it asks.
    let (tally, _) = flood(
        vec![client("127.0.0.50", addr)],
        300,
        1000,
        |i| with_cookie(query("www.example.com.", RecordType::A, i as u16), &cookie),
        is_answer,
    );
    assert_eq!(tally.full, 300, "{tally:?}");

    // Without a cookie the same flood, from the same network, is limited.
    let (tally, took) = flood(
        vec![client("127.0.0.51", addr)],
        300,
        1000,
        |i| query("www.example.com.", RecordType::A, i as u16),
        is_answer,
    );
    assert!(tally.full <= allowed(5, took), "{tally:?}");
    assert!(tally.truncated > 50, "{tally:?}");

    // With a client cookie alone it is limited too, and what slips is
    // BADCOOKIE with a server cookie rather than TC.
    let (tally, took) = flood(
        vec![client("127.0.0.52", addr)],
        300,
        1000,
        |i| {
            with_cookie(
                query("mail.example.com.", RecordType::A, i as u16),
                &client_cookie,
            )
        },
        is_answer,
    );
    assert!(tally.full <= allowed(5, took), "{tally:?}");
    assert_eq!(tally.truncated, 0, "{tally:?}");
    assert!(tally.badcookie > 50, "{tally:?}");
}

#[test]
fn wildcard_answers_are_counted_per_wildcard() {
    // Names under a wildcard are free to invent, as NXDOMAIN names are:
    // one account for the wildcard, as in BIND and Knot.
    let server = start("exempt-clients = []\nresponses-per-second = 5\nslip = 0");
    let addr = server.addr();
    let (tally, took) = flood(
        vec![client("127.0.0.70", addr)],
        300,
        1000,
        |i| query(&format!("n{i}.wild.example.com."), RecordType::A, i as u16),
        is_answer,
    );
    assert!(tally.full <= allowed(5, took), "{tally:?}");
    // A name of its own has an account of its own.
    let m = ask_from("127.0.0.70", addr, "www.example.com.", RecordType::A, 1);
    assert!(is_answer(&m) && !m.truncated());
}
