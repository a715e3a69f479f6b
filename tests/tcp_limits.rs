//! TCP limits seen from real clients of the steerdns binary: the initial
//! timeout against idle and slowloris connections, the per-client and
//! overall connection caps, and UDP service while TCP is at its cap.
//!
//! Clients bind to different 127.0.0.x addresses to look like different
//! hosts; every connection is on the loopback and closed by the end.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use socket2::{Domain, Socket, Type};

use common::{QueryOpts, ServerProcess};

/// Starts steerdns on a free loopback port with `tcp` as its `[tcp]`
/// table.
fn start(tcp: &str) -> ServerProcess {
    common::start_steerdns(&common::diff_zones(), &format!("\n[tcp]\n{tcp}"))
}

/// A TCP connection to `server` from source address `from`. A connection
/// the server resets at once may already fail here.
fn try_connect_from(from: &str, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    let local = SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0);
    socket.bind(&local.into())?;
    socket.connect_timeout(&server.into(), common::QUERY_TIMEOUT)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(common::QUERY_TIMEOUT))?;
    Ok(stream)
}

/// A TCP connection the server accepts.
fn connect_from(from: &str, server: SocketAddr) -> TcpStream {
    try_connect_from(from, server).unwrap_or_else(|e| panic!("connect from {from}: {e}"))
}

/// Asserts the server turns a connection from `from` away: reset during
/// the handshake's aftermath, or closed without an answer. (An answer
/// fails the test at once; the wait only bounds a server that does
/// neither, and is long so that a loaded machine does not fail it.)
fn assert_refused(from: &str, server: SocketAddr) {
    let Ok(mut stream) = try_connect_from(from, server) else {
        return;
    };
    let _ = stream.write_all(&framed_query());
    assert!(
        closed_within(&mut stream, Duration::from_secs(5)).is_some(),
        "a connection from {from} was neither served nor closed"
    );
}

/// A framed query for www.example.com A.
fn framed_query() -> Vec<u8> {
    let m = common::build_query(
        &common::name("www.example.com."),
        RecordType::A,
        &QueryOpts::default(),
    );
    let wire = m.to_vec().unwrap();
    let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
    framed.extend(wire);
    framed
}

/// Sends one query on `stream` and checks the answer.
fn assert_served(stream: &mut TcpStream) {
    stream.write_all(&framed_query()).unwrap();
    let reply = common::read_tcp_message(stream).expect("an answer");
    let m = common::decode_response(&reply).unwrap();
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert_eq!(m.answers().len(), 2);
}

/// Waits up to `within` for the server to close `stream` (end of stream
/// or reset); returns how long it took, or `None` if it stayed open.
fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 512];
    loop {
        let left = within.checked_sub(started.elapsed())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => panic!("the connection was served"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
}

/// A UDP question answered in full, on the first attempt (no resend).
fn assert_udp_served(server: SocketAddr) {
    let m = common::build_query(
        &common::name("www.example.com."),
        RecordType::A,
        &QueryOpts::default(),
    );
    let reply = common::exchange_udp(server, &m.to_vec().unwrap(), common::QUERY_TIMEOUT, 1)
        .expect("UDP answer to the first attempt");
    let m = common::decode_response(&reply).unwrap();
    assert_eq!(m.answers().len(), 2);
}

#[test]
fn silent_and_trickling_connections_are_closed_by_the_initial_timeout() {
    // The idle timeout is long: only the initial timeout can close them.
    let server = start("initial-timeout = \"1s\"\nidle-timeout = \"60s\"");
    let addr = server.addr();
    let opened = Instant::now();
    let mut silent = connect_from("127.0.0.2", addr);
    let mut trickle = connect_from("127.0.0.3", addr);
    // A prompt client's connection outlives the initial timeout.
    let mut prompt = connect_from("127.0.0.4", addr);
    assert_served(&mut prompt);

    // One byte every 500 ms: the query (46 bytes framed) would take 23 s
    // to arrive.
    let writer = {
        let mut trickle = trickle.try_clone().unwrap();
        thread::spawn(move || {
            for byte in framed_query() {
                if trickle.write_all(&[byte]).is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(500));
            }
        })
    };
    // Others are served meanwhile, over TCP and UDP.
    thread::sleep(Duration::from_millis(300));
    assert_served(&mut connect_from("127.0.0.5", addr));
    assert_udp_served(addr);

    // Both close about one second after they opened: never before, and
    // long before the idle timeout (60 s) or the trickled query's end
    // (23 s). The upper bound leaves a loaded machine 9 s of slack.
    let deadline = Duration::from_secs(10);
    closed_within(&mut silent, deadline).expect("silent connection closed");
    let silent_at = opened.elapsed();
    closed_within(&mut trickle, deadline).expect("trickling connection closed");
    let trickle_at = opened.elapsed();
    for (what, at) in [("silent", silent_at), ("trickling", trickle_at)] {
        assert!(
            (Duration::from_millis(900)..Duration::from_secs(10)).contains(&at),
            "{what} connection closed {at:?} after it opened"
        );
    }
    writer.join().unwrap();

    // Past the initial timeout, the prompt client is still served.
    assert!(opened.elapsed() > Duration::from_millis(1200));
    assert_served(&mut prompt);
}

#[test]
fn per_client_cap_refuses_one_address_but_not_another() {
    let server = start("max-connections-per-client = 2");
    let addr = server.addr();
    let mut first = connect_from("127.0.0.50", addr);
    let mut second = connect_from("127.0.0.50", addr);
    assert_served(&mut first);
    assert_served(&mut second);
    // The third from that address is reset at once.
    assert_refused("127.0.0.50", addr);
    // Another address still gets in.
    assert_served(&mut connect_from("127.0.0.51", addr));
    // A freed place can be taken again, once the server has seen the
    // close (no fixed sleep: that is a guess at how busy the machine is).
    drop(first);
    common::eventually(
        Duration::from_secs(10),
        "a place freed for 127.0.0.50",
        || {
            try_connect_from("127.0.0.50", addr).is_ok_and(|mut stream| {
                stream.write_all(&framed_query()).is_ok()
                    && common::read_tcp_message(&mut stream).is_ok()
            })
        },
    );
    assert_served(&mut second);
}

#[test]
fn udp_answers_while_tcp_is_at_its_cap() {
    let server = start("max-connections = 4\nmax-connections-per-client = 2");
    let addr = server.addr();
    let mut held = Vec::new();
    for from in ["127.0.0.60", "127.0.0.60", "127.0.0.61", "127.0.0.61"] {
        let mut stream = connect_from(from, addr);
        assert_served(&mut stream);
        held.push(stream);
    }
    // At the cap: a new client is refused at once...
    assert_refused("127.0.0.62", addr);
    // ... and a stream of refused connections does not slow UDP down:
    // every UDP question among them is answered on its first attempt.
    for i in 0..100 {
        let from = format!("127.0.1.{}", 1 + i % 50);
        let _ = try_connect_from(&from, addr);
        if i % 10 == 0 {
            assert_udp_served(addr);
        }
    }
    // The held connections are still served.
    for stream in &mut held {
        assert_served(stream);
    }
}
