//! Running as a service: the systemd unit in `dist/` passes
//! `systemd-analyze verify`, the server tells systemd (through
//! NOTIFY_SOCKET) when it is ready, reloading and stopping, and SIGTERM
//! lets in-flight TCP answers out before it exits 0.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use common::{build_query, name, QueryOpts, ServerProcess, TempDir};

#[test]
fn the_systemd_unit_verifies() {
    let Some(analyze) = common::require_tool("systemd-analyze", "systemd") else {
        return;
    };
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/steerdns.service"),
    )
    .unwrap();
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    // verify checks that the programs exist: point it at the one built.
    let dir = TempDir::new("unit");
    let bin = common::steerdns_bin();
    let path = dir.write(
        "steerdns.service",
        &unit.replace("/usr/bin/steerdns", &bin.display().to_string()),
    );
    let mut command = Command::new(analyze);
    command.arg("verify").arg(&path);
    let output = common::output_within(command, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // verify exits 0 on unknown keys and bad values too, with a warning.
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        output.status
    );
}

/// Starts `steerdns serve` for the test zones with NOTIFY_SOCKET set to a
/// socket in its folder; returns the server and that socket.
fn start_notified() -> (ServerProcess, UnixDatagram) {
    let dir = TempDir::new("notify");
    let port = common::free_port();
    let zones = common::diff_zones();
    let config = common::write_steerdns_config(&dir, port, &zones, "");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut command = Command::new(common::steerdns_bin());
    command
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path);
    let server = ServerProcess::start("steerdns", command, dir, port, &zones[0].origin);
    (server, socket)
}

/// The next notification, one `KEY=value` per line.
fn next_notification(socket: &UnixDatagram, server: &ServerProcess) -> String {
    let mut buf = [0; 1024];
    let n = socket
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no notification: {e}\n{}", server.logs()));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn tells_systemd_when_ready_reloading_and_stopping() {
    let (mut server, socket) = start_notified();
    assert_eq!(next_notification(&socket, &server), "READY=1\n");
    server.signal_group(libc::SIGHUP);
    let reloading = next_notification(&socket, &server);
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading}"
    );
    assert_eq!(next_notification(&socket, &server), "READY=1\n");
    server.signal_group(libc::SIGTERM);
    assert_eq!(next_notification(&socket, &server), "STOPPING=1\n");
    let status = server.exit_within(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        server.logs()
    );
}

/// `message` with the two-byte TCP length prefix.
fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = (message.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(message);
    out
}

#[test]
fn sigterm_lets_pipelined_tcp_answers_out_and_exits_0() {
    // 2,000 answers of about 3 KB each (more than the 4 MB a send buffer
    // grows to) to a client with a small receive buffer, which reads
    // nothing until half a second after SIGTERM: the server is still
    // writing them when it is told to stop. (Without the drain, the
    // answers stop short: checked by disabling it.)
    const PIPELINED: u16 = 2000;
    let mut server = common::start_steerdns(&common::diff_zones(), "");
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.addr().into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let query = |id: u16| {
        let mut q = build_query(
            &name("bigtxt.example.com."),
            RecordType::TXT,
            &QueryOpts::default(),
        );
        q.set_id(id);
        framed(&q.to_vec().unwrap())
    };
    let read_answer = |stream: &mut TcpStream| -> Option<u16> {
        let mut prefix = [0; 2];
        stream.read_exact(&mut prefix).ok()?;
        let mut message = vec![0; usize::from(u16::from_be_bytes(prefix))];
        stream.read_exact(&mut message).ok()?;
        Some(u16::from_be_bytes([message[0], message[1]]))
    };
    // One round trip first: the connection is accepted and being served.
    stream.write_all(&query(0)).unwrap();
    assert_eq!(read_answer(&mut stream), Some(0));

    let burst: Vec<u8> = (1..=PIPELINED).flat_map(query).collect();
    stream.write_all(&burst).unwrap();
    let signalled = Instant::now();
    server.signal_group(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(500));
    let mut ids = Vec::new();
    while let Some(id) = read_answer(&mut stream) {
        ids.push(id);
    }
    assert_eq!(
        ids,
        (1..=PIPELINED).collect::<Vec<_>>(),
        "every pipelined query is answered, in order, before the close\n{}",
        server.logs()
    );
    let status = server.exit_within(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?} {:?} after SIGTERM\n{}",
        signalled.elapsed(),
        server.logs()
    );
    // The listener is closed: a new connection is refused.
    assert!(TcpStream::connect(server.addr()).is_err());
}

/// Starts `steerdns --log-format json serve` for the test zones with
/// `extra_server` in its config (one worker).
fn start_json_logging(tag: &str, extra_server: &str) -> ServerProcess {
    let dir = TempDir::new(tag);
    let port = common::free_port();
    let zones = common::diff_zones();
    let config = common::write_steerdns_config(&dir, port, &zones, extra_server);
    let mut command = Command::new(common::steerdns_bin());
    command
        .args(["--log-format", "json", "serve", "--config"])
        .arg(&config);
    ServerProcess::start("steerdns", command, dir, port, &zones[0].origin)
}

/// The server's log so far, one JSON object per line (every line must be
/// one).
fn json_events(server: &ServerProcess) -> Vec<serde_json::Value> {
    std::fs::read_to_string(server.dir().join("stderr.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn json_logs_are_one_object_per_line() {
    let mut server = start_json_logging("json-logs", "");
    server.signal_group(libc::SIGTERM);
    assert!(server.exit_within(Duration::from_secs(5)).is_some());
    let events = json_events(&server);
    let stderr = server.logs();
    let serving = events
        .iter()
        .find(|e| e["message"] == "serving")
        .unwrap_or_else(|| panic!("no `serving` event in:\n{stderr}"));
    assert_eq!(serving["level"], "INFO", "{serving}");
    assert_eq!(serving["zones"], 3, "fields are top-level: {serving}");
    assert!(
        events.iter().any(|e| e["message"] == "shutting down"),
        "{stderr}"
    );
}

#[test]
fn sampled_query_log_names_client_and_question() {
    // One worker, so "1 in 2" is exact.
    let mut server = start_json_logging("query-log", "[log]\nquery-sample = 2\n");
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut reply = [0; 4096];
    for i in 0..10 {
        let q = build_query(
            &name(&format!("q{i}.example.com.")),
            RecordType::AAAA,
            &QueryOpts::default(),
        );
        client.send_to(&q.to_vec().unwrap(), server.addr()).unwrap();
        client.recv(&mut reply).unwrap();
    }
    // The writer polls every 50 ms.
    let logged = || -> Vec<serde_json::Value> {
        json_events(&server)
            .into_iter()
            .filter(|e| e["message"] == "query" && e["qtype"] == 28)
            .collect()
    };
    common::eventually(Duration::from_secs(5), "five queries logged", || {
        logged().len() == 5
    });
    let me = client.local_addr().unwrap().to_string();
    for event in logged() {
        assert_eq!(event["client"], me.as_str(), "{event}");
        assert_eq!(event["rcode"], 3, "NXDOMAIN: {event}");
        let qname = event["qname"].as_str().unwrap();
        assert!(qname.ends_with(".example.com."), "{event}");
    }
    server.signal_group(libc::SIGTERM);
    assert!(server.exit_within(Duration::from_secs(5)).is_some());
}
