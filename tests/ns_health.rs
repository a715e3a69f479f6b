//! Health-aware NS answers over real sockets: steerdns serves a zone whose
//! `ns-health` names a service of three nodes, each with an HTTP payload
//! on its own loopback address that a monitor probes. `dig` asks for the
//! apex NS RRset over UDP and TCP while one payload fails and recovers,
//! and sees that node's NS record and glue go and come back.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{HttpPayload, ServerProcess, TempDir};

/// The zone: three name servers, glue of both families for ns2.
const ZONE: &str = "$TTL 300\n\
    @ SOA ns1 hostmaster 1 7200 900 1209600 60\n\
    @ 5 NS ns1\n@ 5 NS ns2\n@ 5 NS ns3\n\
    ns1 A 127.0.0.11\nns2 A 127.0.0.12\nns2 AAAA 2001:db8::12\nns3 A 127.0.0.13\n";

/// How long a probe takes to notice a change (300 ms interval, no failure
/// tolerated), with room for a loaded machine.
const SETTLE: Duration = Duration::from_secs(10);

/// The NS targets and the additional section of `dig NS ns.test` (over TCP
/// with `tcp`), as dig prints them.
fn dig_ns(dig: &Path, port: u16, tcp: bool) -> (Vec<String>, Vec<String>) {
    let mut command = Command::new(dig);
    command.args([
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "ns.test.",
        "NS",
        "+norecurse",
        "+noall",
        "+answer",
        "+additional",
        "+nottlid",
        "+time=2",
        "+tries=2",
    ]);
    if tcp {
        command.arg("+tcp");
    }
    let out = common::output_within(command, Duration::from_secs(10));
    assert!(out.status.success(), "dig failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (mut ns, mut glue) = (Vec::new(), Vec::new());
    for line in text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.is_empty())
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, "IN", "NS", target] => ns.push(target.to_string()),
            [owner, "IN", kind, _] => glue.push(format!("{owner} {kind}")),
            _ => panic!("unexpected line from dig: {line}"),
        }
    }
    (ns, glue)
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn dig_sees_the_ns_set_shrink_and_grow_with_a_node_payload() {
    let Some(dig) = common::require_tool("dig", "dnsutils") else {
        return;
    };
    let payload_port = common::free_port();
    let payloads: Vec<HttpPayload> = (11..=13)
        .map(|i| HttpPayload::start(SocketAddr::from(([127, 0, 0, i], payload_port))))
        .collect();
    let dir = TempDir::new("ns-health");
    dir.write("ns.test.zone", ZONE);
    let port = common::free_port();
    dir.write(
        "steerdns.toml",
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nworkers = 1\n\n\
             [[zone]]\norigin = \"ns.test.\"\nfile = \"ns.test.zone\"\nns-health = \"nodes.ns.test.\"\n\n\
             [monitor.node]\nprotocol = \"http\"\nport = {payload_port}\npath = \"/\"\n\
             interval = \"300ms\"\ntimeout = \"250ms\"\ntolerated-failures = 0\n\
             successes-before-up = 1\n\n\
             [[service]]\nname = \"nodes.ns.test.\"\nrouting = \"multivalue\"\nttl = 5\n\
             endpoints = [\n\
               {{ name = \"ns1\", addresses = [\"127.0.0.11\"], monitor = \"node\" }},\n\
               {{ name = \"ns2\", addresses = [\"127.0.0.12\"], monitor = \"node\" }},\n\
               {{ name = \"ns3\", addresses = [\"127.0.0.13\"], monitor = \"node\" }},\n\
             ]\n"
        ),
    );
    let mut command = Command::new(common::steerdns_bin());
    command
        .arg("serve")
        .arg("--config")
        .arg(dir.path().join("steerdns.toml"));
    let server = ServerProcess::start("steerdns", command, dir, port, "ns.test.");

    let all = (
        strings(&["ns1.ns.test.", "ns2.ns.test.", "ns3.ns.test."]),
        strings(&[
            "ns1.ns.test. A",
            "ns2.ns.test. A",
            "ns2.ns.test. AAAA",
            "ns3.ns.test. A",
        ]),
    );
    let without_ns2 = (
        strings(&["ns1.ns.test.", "ns3.ns.test."]),
        strings(&["ns1.ns.test. A", "ns3.ns.test. A"]),
    );
    let settle = |want: &(Vec<String>, Vec<String>), what: &str| {
        common::eventually(SETTLE, what, || dig_ns(&dig, port, false) == *want);
        assert_eq!(dig_ns(&dig, port, true), *want, "{what}, over TCP");
    };
    settle(&all, "every node up: the full NS set");
    payloads[1].set_healthy(false);
    settle(&without_ns2, "ns2's payload failing: ns2 and its glue gone");
    // Every payload failing: the full set (fail open), never an empty one.
    payloads[0].set_healthy(false);
    payloads[2].set_healthy(false);
    settle(&all, "every node down: the full NS set");
    payloads[0].set_healthy(true);
    settle(
        &(strings(&["ns1.ns.test."]), strings(&["ns1.ns.test. A"])),
        "ns1 back alone",
    );
    payloads[1].set_healthy(true);
    payloads[2].set_healthy(true);
    settle(&all, "every node back: the full NS set");
    drop(server);
}
