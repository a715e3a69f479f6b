//! A steerdns node of the lab: steerdns and its HTTP payload in the node's
//! namespace, and the means to break, repair and observe them.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hickory_proto::rr::RecordType;

use super::netns::Netns;
use super::{ask, fresh_name, poll, render, NodeAddrs, Outcome, WhenDown, SETTLE_TIMEOUT, ZONE};
use crate::common::{self, ServerProcess, TempDir};

/// The port of the HTTP payload, as in `steerdns.toml`.
const PAYLOAD_PORT: u16 = 8080;

/// How long `steerdns drain` may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// One steerdns node: its namespace, its config folder (which outlives
/// restarts), its DNS server and its HTTP payload.
#[derive(Debug)]
pub struct Node {
    addrs: &'static NodeAddrs,
    ns: Netns,
    /// `steerdns.toml`, beside the zone file and the `state` folder
    /// (`steerdns drain` creates it).
    config: PathBuf,
    busybox: PathBuf,
    dns: Option<ServerProcess>,
    payload: Option<ServerProcess>,
}

impl Node {
    /// Prepares the node's config folder in `lab_dir`; starts nothing.
    pub fn new(addrs: &'static NodeAddrs, ns: Netns, lab_dir: &TempDir, busybox: &Path) -> Node {
        let folder = addrs.name;
        lab_dir.write(
            &format!("{folder}/api.example.com.zone"),
            include_str!("api.example.com.zone"),
        );
        Node {
            addrs,
            ns,
            config: lab_dir.path().join(folder).join("steerdns.toml"),
            busybox: busybox.to_path_buf(),
            dns: None,
            payload: None,
        }
    }

    /// Writes the lab's config with `when_down` (a running steerdns reads
    /// it at its next start).
    pub fn write_config(&self, when_down: WhenDown) {
        let text = render(
            include_str!("steerdns.toml"),
            &[("when-down", when_down.config_value())],
        );
        std::fs::write(&self.config, text).expect("write steerdns.toml");
    }

    /// Starts steerdns and waits until it answers on port 53.
    pub fn start_dns(&mut self) {
        let mut command = Command::new(common::steerdns_bin());
        command.arg("serve").arg("--config").arg(&self.config);
        let logs = TempDir::new(&format!("lab-{}-steerdns", self.addrs.name));
        self.dns = Some(
            self.ns
                .run(|| ServerProcess::start("steerdns", command, logs, 53, ZONE)),
        );
    }

    /// Stops steerdns: it is killed, and queries meet a closed port.
    pub fn stop_dns(&mut self) {
        self.dns = None;
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) steerdns: while frozen,
    /// queries queue unanswered.
    pub fn freeze_dns(&self, frozen: bool) {
        let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        self.dns
            .as_ref()
            .expect("steerdns runs on the node")
            .signal_group(signal);
    }

    /// Whether every thread of steerdns is stopped (state `T` in
    /// /proc/PID/task/*/stat): SIGSTOP takes effect on each thread only
    /// when it next runs.
    pub fn dns_stopped(&self) -> bool {
        let Some(dns) = &self.dns else {
            return false;
        };
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", dns.pid())) else {
            return false;
        };
        let states: Vec<char> = tasks
            .flatten()
            .filter_map(|task| {
                let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                // The state follows the command name in parentheses.
                stat.rsplit_once(") ")?.1.chars().next()
            })
            .collect();
        !states.is_empty() && states.iter().all(|&state| state == 'T' || state == 't')
    }

    /// Starts the HTTP payload (`/healthz` answers 200) and waits until it
    /// does.
    pub fn start_payload(&mut self) {
        let dir = TempDir::new(&format!("lab-{}-payload", self.addrs.name));
        dir.write("www/healthz", "ok\n");
        let mut command = Command::new(&self.busybox);
        command.args(["httpd", "-f", "-p", &PAYLOAD_PORT.to_string(), "-h", "www"]);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, PAYLOAD_PORT));
        let payload = self.ns.run(|| {
            let payload = ServerProcess::spawn("httpd", command, dir, addr);
            if let Err(e) = poll(SETTLE_TIMEOUT, || healthz(addr)) {
                panic!(
                    "the payload of {} did not start: {e}\n{}",
                    self.addrs.name,
                    payload.logs()
                );
            }
            payload
        });
        self.payload = Some(payload);
    }

    /// Stops the HTTP payload.
    pub fn stop_payload(&mut self) {
        self.payload = None;
    }

    /// Runs `steerdns drain` or `steerdns undrain` on the node's config.
    pub fn set_drained(&self, drained: bool) {
        let verb = if drained { "drain" } else { "undrain" };
        let mut command = Command::new(common::steerdns_bin());
        command.arg(verb).arg("--config").arg(&self.config);
        let output = common::output_within(command, COMMAND_TIMEOUT);
        assert!(
            output.status.success(),
            "steerdns {verb} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The UDP datagrams delivered in the node's namespace so far, IPv4 and
    /// IPv6, counted as they arrive: also while steerdns is frozen (they
    /// queue) or dead (they meet a closed port). The kernel has no such
    /// counter, but its IP deliveries minus TCP segments and ICMP messages
    /// are exactly that. Only DNS comes over UDP here: probes are HTTP.
    pub fn udp_delivered(&self) -> u64 {
        let counters = self.ns.run(|| {
            let read = |file: &str| {
                std::fs::read_to_string(format!("/proc/thread-self/net/{file}"))
                    .unwrap_or_else(|e| panic!("cannot read {file}: {e}"))
            };
            snmp_counters(&read("snmp"), &read("snmp6"))
        });
        let get = |name: &str| {
            *counters
                .get(name)
                .unwrap_or_else(|| panic!("no counter {name} in /proc/net/snmp{{,6}}"))
        };
        // Only the difference of two readings means something; wrapping
        // keeps it right even if this partial sum dipped below zero.
        get("Ip:InDelivers")
            .wrapping_add(get("Ip6InDelivers"))
            .wrapping_sub(get("Tcp:InSegs"))
            .wrapping_sub(get("Icmp:InMsgs"))
            .wrapping_sub(get("Icmp6InMsgs"))
    }

    /// What DNS traffic the node has received so far: UDP datagrams (see
    /// [`Node::udp_delivered`]) and its DNS-over-TCP connections. Resolvers
    /// switch to TCP for a server whose RTT they measured high (Knot
    /// Resolver does, on a loaded machine), so UDP alone can miss that a
    /// resolver asked the node.
    pub fn dns_traffic(&self) -> DnsTraffic {
        let output = self.ns.run(|| {
            let mut command = Command::new(common::find_tool("ss").unwrap_or_else(|| "ss".into()));
            // All states, numeric, with TCP info: bytes received per socket.
            command.args(["-Htain", "sport = :53"]);
            common::output_within(command, COMMAND_TIMEOUT)
        });
        assert!(output.status.success(), "ss failed: {output:?}");
        DnsTraffic {
            udp: self.udp_delivered(),
            tcp: tcp_connections(&String::from_utf8_lossy(&output.stdout)),
        }
    }

    /// Waits until the node answers a fresh A query with its own address.
    pub fn wait_until_serving(&self) {
        let own = Outcome::Addresses(vec![self.addrs.v4.into()]);
        self.wait_until_answering(&own, "serving");
    }

    /// Asks the node itself (on its IPv4 address, from inside its
    /// namespace) for fresh names until it answers `expected`; `state`
    /// names what that means, for the panic message.
    pub fn wait_until_answering(&self, expected: &Outcome, state: &str) {
        let server = SocketAddr::from((self.addrs.v4, 53));
        let result = self.ns.run(|| {
            poll(SETTLE_TIMEOUT, || {
                match ask(
                    server,
                    &fresh_name("probe"),
                    RecordType::A,
                    false,
                    Duration::from_secs(1),
                    1,
                ) {
                    outcome if outcome == *expected => Ok(()),
                    outcome => Err(format!("it answers {outcome:?}")),
                }
            })
        });
        if let Err(e) = result {
            let logs = self
                .dns
                .as_ref()
                .map(ServerProcess::logs)
                .unwrap_or_default();
            panic!(
                "{} did not reach state {state} (answering {expected:?}) within {SETTLE_TIMEOUT:?}: {e}\n{logs}",
                self.addrs.name
            );
        }
    }
}

/// A node's DNS traffic at one moment (see [`Node::dns_traffic`]).
#[derive(Debug, Clone, Default)]
pub struct DnsTraffic {
    /// UDP datagrams delivered so far.
    udp: u64,
    /// TCP connections to port 53, by peer, with the bytes received.
    tcp: HashMap<String, u64>,
}

impl DnsTraffic {
    /// The queries received since `before`: UDP datagrams, plus each TCP
    /// connection that is new or received more bytes since.
    pub fn queries_since(&self, before: &DnsTraffic) -> u64 {
        let tcp = self
            .tcp
            .iter()
            .filter(|(peer, bytes)| before.tcp.get(*peer).is_none_or(|b| *bytes > b))
            .count();
        // The UDP figure is a difference of counters read one after the
        // other while probes run, so it can dip a few below the truth; a
        // "negative" count (a wrapped one) means none.
        let udp = self.udp.wrapping_sub(before.udp);
        let udp = if udp > u64::MAX / 2 { 0 } else { udp };
        udp + tcp as u64
    }
}

/// The sockets of `ss -Htain` output other than listeners, by peer
/// address, with their `bytes_received` (0 when absent, as for TIME-WAIT).
/// Each socket is a line (state, queues, local and peer address), its TCP
/// information an indented line after it.
fn tcp_connections(ss: &str) -> HashMap<String, u64> {
    let mut sockets = HashMap::new();
    let mut current = None;
    for line in ss.lines() {
        if line.starts_with(char::is_whitespace) {
            let received = line
                .split_whitespace()
                .find_map(|word| word.strip_prefix("bytes_received:"))
                .and_then(|n| n.parse().ok());
            if let (Some(peer), Some(received)) = (&current, received) {
                sockets.insert(String::clone(peer), received);
            }
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        current = match words.as_slice() {
            [state, _, _, _, peer, ..] if *state != "LISTEN" => Some(peer.to_string()),
            _ => None,
        };
        if let Some(peer) = &current {
            sockets.insert(peer.clone(), 0);
        }
    }
    sockets
}

/// The counters of `/proc/net/snmp` (pairs of lines, `Ip: InDelivers ...`
/// then `Ip: 12 ...`, named here `Ip:InDelivers`) and `/proc/net/snmp6`
/// (`Ip6InDelivers 12` lines). Negative values (`Tcp:MaxConn`) are left out.
fn snmp_counters(snmp: &str, snmp6: &str) -> HashMap<String, u64> {
    let lines: Vec<&str> = snmp.lines().collect();
    let v4 = lines.chunks(2).flat_map(|pair| {
        let (names, values) = match pair {
            [names, values] => (*names, *values),
            _ => ("", ""),
        };
        let mut names = names.split_whitespace();
        let prefix = names.next().unwrap_or_default();
        names
            .zip(values.split_whitespace().skip(1))
            .map(move |(name, value)| (format!("{prefix}{name}"), value))
    });
    let v6 = snmp6.lines().filter_map(|line| {
        let (name, value) = line.split_once(char::is_whitespace)?;
        Some((name.to_string(), value.trim()))
    });
    v4.chain(v6)
        .filter_map(|(name, value)| Some((name, value.parse().ok()?)))
        .collect()
}

/// Whether the payload at `addr` answers `GET /healthz` with 200.
fn healthz(addr: SocketAddr) -> Result<(), String> {
    let timeout = Duration::from_secs(1);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: lab\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let status = response.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(format!("status line {status:?}"))
    }
}

#[test]
fn tcp_connections_and_new_queries() {
    let before = "LISTEN 0 4096 0.0.0.0:53 0.0.0.0:*\n\
                  ESTAB 0 0 198.51.100.10:53 192.0.2.54:4000\n\
                  \t cubic rto:204 bytes_sent:90 bytes_received:45 segs_in:3\n";
    let after = "LISTEN 0 4096 0.0.0.0:53 0.0.0.0:*\n\
                 ESTAB 0 0 198.51.100.10:53 192.0.2.54:4000\n\
                 \t cubic rto:204 bytes_sent:180 bytes_received:90 segs_in:5\n\
                 TIME-WAIT 0 0 198.51.100.10:53 192.0.2.54:4001\n";
    let (before, after) = (tcp_connections(before), tcp_connections(after));
    assert_eq!(before.len(), 1);
    assert_eq!(after["192.0.2.54:4000"], 90);
    assert_eq!(after["192.0.2.54:4001"], 0);
    let traffic = |udp, tcp| DnsTraffic { udp, tcp };
    // One more query on the open connection, one on a connection opened
    // and closed meanwhile, and two datagrams.
    let (before, after) = (traffic(10, before), traffic(12, after));
    assert_eq!(after.queries_since(&before), 4);
    assert_eq!(before.queries_since(&before), 0);
}

#[test]
fn snmp_counters_read_both_formats() {
    let snmp = "Ip: Forwarding InDelivers\nIp: 2 40\nTcp: MaxConn InSegs\nTcp: -1 25\n";
    let snmp6 = "Ip6InDelivers                   \t7\nIcmp6InMsgs 3\n";
    let counters = snmp_counters(snmp, snmp6);
    assert_eq!(counters["Ip:InDelivers"], 40);
    assert_eq!(counters["Tcp:InSegs"], 25);
    assert!(!counters.contains_key("Tcp:MaxConn"));
    assert_eq!(counters["Ip6InDelivers"], 7);
    assert_eq!(counters["Icmp6InMsgs"], 3);
}
