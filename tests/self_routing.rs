//! `self` routing over real sockets: one config, two addresses standing for
//! two nodes (127.0.0.1 is this node; 127.0.0.2 stands for a peer, since it
//! routes to loopback but is no interface address), payloads that are real
//! HTTP servers, and answers read with a real DNS client.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use common::{
    eventually, free_port, query, steerdns_bin, HttpPayload, QueryOpts, ServerProcess, TempDir,
};

const ZONE: &str =
    "$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n@ NS ns1\nns1 A 127.0.0.1\n";

/// The node under test: steerdns on 127.0.0.1 and 127.0.0.2, one service.
struct Node {
    server: Option<ServerProcess>,
    /// Config, zone and state folder; outlives restarts.
    _home: TempDir,
    config: std::path::PathBuf,
    port: u16,
}

impl Node {
    fn start(payload_port: u16, when_down: &str) -> Node {
        let dir = TempDir::new("self");
        let port = free_port();
        dir.write("zones/api.test.zone", ZONE);
        let config = dir.write(
            "steerdns.toml",
            &format!(
                "[server]\nlisten = [\"127.0.0.1:{port}\", \"127.0.0.2:{port}\", \"[::1]:{port}\"]\nworkers = 1\n\
                 [state]\ndir = \"state\"\n\
                 [[zone]]\norigin = \"api.test.\"\nfile = \"zones/api.test.zone\"\n\
                 [monitor.payload]\nprotocol = \"http\"\nport = {payload_port}\npath = \"/healthz\"\n\
                 interval = \"300ms\"\ntimeout = \"250ms\"\ntolerated-failures = 1\nsuccesses-before-up = 1\n\
                 [[service]]\nname = \"*.api.test.\"\nrouting = \"self\"\nttl = 5\nmonitor = \"payload\"\n\
                 peers = [\"127.0.0.1\", \"127.0.0.2\", \"::1\"]\nwhen-down = \"{when_down}\"\n"
            ),
        );
        let mut node = Node {
            server: None,
            _home: dir,
            config,
            port,
        };
        node.restart();
        node
    }

    /// Stops the server, if running, and starts it again (logs go to a
    /// fresh folder each time).
    fn restart(&mut self) {
        self.server = None;
        let dir = TempDir::new("self-logs");
        let mut command = Command::new(steerdns_bin());
        command.arg("serve").arg("--config").arg(&self.config);
        self.server = Some(ServerProcess::start(
            "steerdns",
            command,
            dir,
            self.port,
            "api.test.",
        ));
    }

    fn at(&self, ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), self.port)
    }

    fn drain(&self, drain: bool) {
        let verb = if drain { "drain" } else { "undrain" };
        let out = Command::new(steerdns_bin())
            .arg(verb)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{verb}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The addresses in the answer to `qname`/`rtype` sent to `server`.
fn addresses(server: SocketAddr, qname: &str, rtype: RecordType) -> (ResponseCode, Vec<IpAddr>) {
    let m = query(server, qname, rtype, &QueryOpts::default()).unwrap();
    let addrs = m
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    (m.response_code(), addrs)
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

/// Polls until the answer from `server` becomes `want`, for at most 10 s
/// (probes run every 300 ms, the second failure in a row marks a payload
/// down, and the drain file is read every second): ample on a loaded
/// machine.
fn wait_for(server: SocketAddr, want: &[&str]) {
    eventually(
        Duration::from_secs(10),
        &format!("answer from {server} is {want:?}"),
        || addresses(server, "www.api.test.", RecordType::A).1 == ips(want),
    );
}

#[test]
fn each_address_answers_with_itself_and_fails_over_to_healthy_peers() {
    let payload_port = free_port();
    let local = HttpPayload::start(SocketAddr::from(([127, 0, 0, 1], payload_port)));
    let peer = HttpPayload::start(SocketAddr::from(([127, 0, 0, 2], payload_port)));
    let node = Node::start(payload_port, "peers");
    let (v4, peer_addr, v6) = (node.at("127.0.0.1"), node.at("127.0.0.2"), node.at("::1"));

    // All up: the address the query came to, whatever the socket.
    assert_eq!(
        addresses(v4, "a.api.test.", RecordType::A),
        (ResponseCode::NoError, ips(&["127.0.0.1"]))
    );
    assert_eq!(
        addresses(peer_addr, "b.API.test.", RecordType::A).1,
        ips(&["127.0.0.2"])
    );
    assert_eq!(
        addresses(v6, "c.api.test.", RecordType::AAAA).1,
        ips(&["::1"])
    );
    // AAAA asked over IPv4: this node's configured IPv6 address.
    assert_eq!(
        addresses(v4, "d.api.test.", RecordType::AAAA).1,
        ips(&["::1"])
    );
    // Other types at the service name: NODATA, not NXDOMAIN.
    let m = query(v4, "e.api.test.", RecordType::TXT, &QueryOpts::default()).unwrap();
    assert_eq!(
        (m.response_code(), m.answers().len()),
        (ResponseCode::NoError, 0)
    );
    assert_eq!(m.name_servers()[0].record_type(), RecordType::SOA);
    // TCP answers with the connection's local address.
    let tcp = QueryOpts {
        tcp: true,
        ..QueryOpts::default()
    };
    let m = query(peer_addr, "f.api.test.", RecordType::A, &tcp).unwrap();
    assert_eq!(
        m.answers()[0].data(),
        &RData::A("127.0.0.2".parse::<std::net::Ipv4Addr>().unwrap().into())
    );

    // Local payload unhealthy: send resolvers to the healthy peer.
    local.set_healthy(false);
    wait_for(v4, &["127.0.0.2"]);
    // Peer's payload dies too: fail open with our own address.
    peer.set_healthy(false);
    wait_for(v4, &["127.0.0.1"]);
    // The peer comes back first, while the local payload is still down:
    // the answer is the peer again, not the fail-open one...
    peer.set_healthy(true);
    wait_for(v4, &["127.0.0.2"]);
    // ... and only the local payload's recovery brings our own address
    // back (the fail-open answer was the same address, so waiting for it
    // straight after "both down" would prove nothing).
    local.set_healthy(true);
    wait_for(v4, &["127.0.0.1"]);
}

#[test]
fn drain_survives_a_restart_and_refuse_mode_refuses() {
    let payload_port = free_port();
    let _local = HttpPayload::start(SocketAddr::from(([127, 0, 0, 1], payload_port)));
    let _peer = HttpPayload::start(SocketAddr::from(([127, 0, 0, 2], payload_port)));
    let mut node = Node::start(payload_port, "refuse");
    let v4 = node.at("127.0.0.1");
    assert_eq!(
        addresses(v4, "a.api.test.", RecordType::A).1,
        ips(&["127.0.0.1"])
    );

    node.drain(true);
    eventually(Duration::from_secs(10), "drain applied", || {
        addresses(v4, "a.api.test.", RecordType::A).0 == ResponseCode::Refused
    });
    let m = query(v4, "a.api.test.", RecordType::A, &QueryOpts::default()).unwrap();
    assert!(!m.authoritative() && m.answers().is_empty());

    // Restart while drained: the node comes back drained.
    node.restart();
    assert_eq!(
        addresses(v4, "a.api.test.", RecordType::A).0,
        ResponseCode::Refused
    );

    node.drain(false);
    wait_for(v4, &["127.0.0.1"]);
}
