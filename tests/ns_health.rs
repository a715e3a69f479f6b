//! Health-aware NS answers over real sockets: steerdns serves a zone whose
//! `ns-health` names a service of three nodes, each with an HTTP payload
//! on its own loopback address that a monitor probes. `dig` asks for the
//! apex NS RRset over UDP and TCP while one payload fails and recovers,
//! and sees that node's NS record and glue go and come back; `steerdns
//! explain --down` shows the same set.
//!
//! Then through real recursors: a network namespace holds a fake root
//! (NSD), two steerdns nodes and a recursor.
//!
//! ```text
//!   namespace sdl<pid>-nsh / -nsr (one eth0, all addresses local)
//!   192.0.2.1      NSD: the root, delegating nsh.lab to ns1 and ns2
//!   198.51.100.11  steerdns ns1 ┐ ns-health service: each node probes
//!   198.51.100.12  steerdns ns2 ┘ both nodes' TCP port 53 (or 8053)
//!   192.0.2.53     the recursor, root hints = 192.0.2.1
//! ```
//!
//! - A node dies: unbound, fetching the child's NS set again once its TTL
//!   ran out, gets the live node alone and sends it every later query,
//!   also after forgetting what it learnt of the dead node's silence.
//! - A node stays alive but is judged down (its probed port closes): a
//!   recursor that uses the child's NS set stops asking it although it
//!   would answer. Asserted for unbound; Knot Resolver, PowerDNS Recursor
//!   and BIND are run the same way and what they did is printed, not
//!   asserted (their server choice varied between runs).

mod common;
#[path = "lab/kinds.rs"]
mod kinds;
#[path = "lab/netns.rs"]
mod netns;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use common::{HttpPayload, QueryOpts, ServerProcess, TempDir};

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

/// The fake root's address.
const ROOT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The nodes' addresses, as in [`LAB_ZONE`] and [`LAB_ROOT_ZONE`].
const NS1: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);
const NS2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 12);
/// unbound's address (as in the failover lab's [`kinds::RESOLVERS`]).
const RESOLVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);

/// The root zone: `nsh.lab` delegated to both nodes with glue, TTL 5 like
/// the child's NS set, so neither outlives a phase of the test.
const LAB_ROOT_ZONE: &str = "$ORIGIN .\n$TTL 86400\n\
    . SOA a.root-servers.net. hostmaster.example.com. 1 1800 900 604800 86400\n\
    . NS a.root-servers.net.\n\
    a.root-servers.net. A 192.0.2.1\n\
    nsh.lab. 5 NS ns1.nsh.lab.\n\
    nsh.lab. 5 NS ns2.nsh.lab.\n\
    ns1.nsh.lab. 5 A 198.51.100.11\n\
    ns2.nsh.lab. 5 A 198.51.100.12\n";

/// The child zone both nodes serve; every other name answers 192.0.2.80.
const LAB_ZONE: &str = "$TTL 5\n\
    @ SOA ns1 hostmaster 1 7200 900 1209600 5\n\
    @ NS ns1\n@ NS ns2\n\
    ns1 A 198.51.100.11\nns2 A 198.51.100.12\n* A 192.0.2.80\n";

/// The nodes' config; `{listen}` is each node's own address. Each node
/// probes both nodes' DNS port over TCP (its own too); one failed probe is
/// forgiven, so a slow moment of a loaded machine does not make ns1 drop
/// itself, leave no node alive and answer the full set.
const LAB_CONFIG: &str = "[server]\nlisten = [\"{listen}:53\"]\nworkers = 1\n\n\
    [rrl]\nresponses-per-second = 1000\n\n\
    [[zone]]\norigin = \"nsh.lab.\"\nfile = \"nsh.lab.zone\"\nns-health = \"nodes.nsh.lab.\"\n\n\
    [monitor.dns]\nprotocol = \"tcp\"\nport = 53\ninterval = \"300ms\"\ntimeout = \"250ms\"\n\
    tolerated-failures = 1\nsuccesses-before-up = 1\n\n\
    [[service]]\nname = \"nodes.nsh.lab.\"\nrouting = \"multivalue\"\nttl = 5\n\
    endpoints = [\n\
      { name = \"ns1\", addresses = [\"198.51.100.11\"], monitor = \"dns\" },\n\
      { name = \"ns2\", addresses = [\"198.51.100.12\"], monitor = \"dns\" },\n\
    ]\n";

/// How long the whole namespace may take to show one change: a probe
/// (about 1 s), then the NS set's TTL in unbound's cache (5 s).
const LAB_SETTLE: Duration = Duration::from_secs(30);

/// Fresh lookups sent through unbound once it holds the filtered NS set.
const LOOKUPS: usize = 20;

/// What a DNS server answered for `name`/`rtype`: the NS targets or
/// addresses of the answer section, sorted, or why there is none.
fn ask(server: IpAddr, name: &str, rtype: RecordType, rd: bool) -> Result<Vec<String>, String> {
    ask_with_ttl(server, name, rtype, rd).map(|(found, _)| found)
}

/// [`ask`], with the lowest TTL of the records it returns (0 for none).
fn ask_with_ttl(
    server: IpAddr,
    name: &str,
    rtype: RecordType,
    rd: bool,
) -> Result<(Vec<String>, u32), String> {
    let opts = QueryOpts {
        rd,
        ..QueryOpts::default()
    };
    let wire = common::build_query(&common::name(name), rtype, &opts)
        .to_vec()
        .map_err(|e| e.to_string())?;
    let bytes = common::exchange_udp(
        SocketAddr::new(server, 53),
        &wire,
        Duration::from_secs(3),
        2,
    )?;
    let m = common::decode_response(&bytes)?;
    if m.response_code() != ResponseCode::NoError {
        return Err(format!("{:?}", m.response_code()));
    }
    let mut found: Vec<String> = m
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::NS(ns) => Some(ns.0.to_string()),
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    found.sort();
    let ttl = m.answers().iter().map(|r| r.ttl()).min().unwrap_or(0);
    Ok((found, ttl))
}

/// A node's steerdns with `config` (see [`LAB_CONFIG`]), started in `ns`
/// on `address`; waits until it answers.
fn start_node(ns: &netns::Netns, address: Ipv4Addr, config: &str) -> ServerProcess {
    let node = TempDir::new(&format!("nsh-{address}"));
    node.write("nsh.lab.zone", LAB_ZONE);
    let config = node.write(
        "steerdns.toml",
        &config.replace("{listen}", &address.to_string()),
    );
    let mut command = Command::new(common::steerdns_bin());
    command.arg("serve").arg("--config").arg(config);
    let addr = SocketAddr::from((address, 53));
    ns.run(|| {
        let mut node = ServerProcess::spawn("steerdns", command, node, addr);
        let deadline = Instant::now() + LAB_SETTLE;
        while ask(address.into(), "nsh.lab.", RecordType::SOA, false).is_err() {
            assert!(node.is_running(), "steerdns exited:\n{}", node.logs());
            assert!(
                Instant::now() < deadline,
                "steerdns on {address} silent:\n{}",
                node.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    })
}

/// A thread that runs one step again and again until dropped.
struct Looping {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Looping {
    /// Runs `step` until dropped; each step must return within a moment
    /// (a read timeout, a short sleep), as the drop waits for it.
    fn start(mut step: impl FnMut() + Send + 'static) -> Looping {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                step();
            }
        });
        Looping {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Looping {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A dead node that still counts what is sent to it: a UDP socket on its
/// port 53 that reads queries and never answers (TCP stays closed, so the
/// other node's probe fails).
struct BlackHole {
    queries: Arc<AtomicU64>,
    _reader: Looping,
}

impl BlackHole {
    fn open(ns: &netns::Netns, address: Ipv4Addr) -> BlackHole {
        let socket = ns.run(|| UdpSocket::bind((address, 53)).expect("bind the dead node's port"));
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let queries = Arc::new(AtomicU64::new(0));
        let q = queries.clone();
        let mut buf = [0u8; 512];
        let reader = Looping::start(move || {
            if socket.recv(&mut buf).is_ok() {
                q.fetch_add(1, Ordering::Relaxed);
            }
        });
        BlackHole {
            queries,
            _reader: reader,
        }
    }
}

/// Polls `ask` until it returns `want`, for at most [`LAB_SETTLE`].
fn settle(what: &str, want: &[&str], ask: impl FnMut() -> Result<Vec<String>, String>) {
    if let Err(got) = settled(want, ask) {
        panic!("{what}: still {got}, want {want:?}");
    }
}

/// Polls `ask` until it returns `want`, for at most [`LAB_SETTLE`]; `Err`
/// holds the last thing it returned.
fn settled(
    want: &[&str],
    mut ask: impl FnMut() -> Result<Vec<String>, String>,
) -> Result<(), String> {
    let deadline = Instant::now() + LAB_SETTLE;
    loop {
        let got = ask();
        if got.as_deref().is_ok_and(|g| g == want) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("{got:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Polls `resolver` for the child's NS set until it holds a copy with ns1
/// alone that it fetched at most a second before, and returns until when
/// that copy is valid; `Err` holds the last answer when none comes within
/// [`LAB_SETTLE`].
fn fresh_ns_set(ns: &netns::Netns, resolver: Ipv4Addr) -> Result<Instant, String> {
    let deadline = Instant::now() + LAB_SETTLE;
    loop {
        let asked = Instant::now();
        let got = ns.run(|| ask_with_ttl(resolver.into(), "nsh.lab.", RecordType::NS, true));
        // The recursor counts the TTL down in whole seconds from the
        // zone's.
        if let Ok((set, ttl)) = &got {
            if set == &["ns1.nsh.lab."] && *ttl + 1 >= LAB_NS_TTL {
                return Ok(asked + Duration::from_secs(u64::from(*ttl)));
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("{got:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until `count` holds still for half a second (for at most 3 s),
/// and returns it.
fn quiet(count: &impl Fn() -> u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = count();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = count();
        if now == last || Instant::now() >= deadline {
            return now;
        }
        last = now;
    }
}

/// How many of the queries `asked_ns2` counts come during [`LOOKUPS`]
/// fresh lookups through `resolver`, all made while the resolver holds a
/// copy of the child's NS set with ns1 alone, fetched just before.
/// `before_lookups` runs between the fetch and the lookups. Up to three
/// tries, as a slow moment can outlast the copy; `Err` says why none
/// counted.
///
/// Once the copy expires, the resolver goes back to the parent's
/// delegation, which lists both nodes, and may ask ns2 on its way to the
/// child's set again: a count then would mean nothing.
fn asked_while_unlisted(
    ns: &netns::Netns,
    resolver: Ipv4Addr,
    prefix: &str,
    mut before_lookups: impl FnMut(),
    asked_ns2: impl Fn() -> u64,
) -> Result<u64, String> {
    let mut why = String::new();
    for attempt in 0..3 {
        let valid_until =
            fresh_ns_set(ns, resolver).map_err(|got| format!("kept the NS set with ns2: {got}"))?;
        before_lookups();
        // The resolver answers the NS query before its follow-ups end:
        // having refetched the set through the parent's delegation, it
        // also asks there for both nodes' IPv6 addresses, ns2 included.
        let before = quiet(&asked_ns2);
        lookups(ns, resolver, &format!("{prefix}-{attempt}"));
        let asked = asked_ns2() - before;
        let late = Instant::now().saturating_duration_since(valid_until);
        if late.is_zero() {
            return Ok(asked);
        }
        why = format!("the lookups outlasted the NS set's copy by {late:?}, three times");
    }
    Err(why)
}

/// The TTL of the lab zone's records (`LAB_ZONE`), its NS set's included.
const LAB_NS_TTL: u32 = 5;

/// The namespaced tests take turns: their namespaces carry this process's
/// id, and each start removes what an earlier one left.
static LAB_SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A namespace with every address of the lab and the fake root in it.
/// Fields drop in order: the root first, then the namespace.
struct NsLab {
    ns: netns::Netns,
    _root: ServerProcess,
    _network: netns::Network,
}

impl NsLab {
    /// Builds the namespace (named after `role`) and starts the root; `None`
    /// when the machine cannot (see [`common::skip`]).
    fn start(role: &str) -> Option<NsLab> {
        if !common::is_root() {
            common::skip("the NS lab needs root (it creates a network namespace)");
            return None;
        }
        let nsd = common::require_tool("nsd", "nsd")?;
        netns::remove_stale();
        let mut network = match netns::Network::new() {
            Ok(network) => network,
            Err(e) => {
                common::skip(&format!("network namespaces are not available here: {e}"));
                return None;
            }
        };
        let addresses: Vec<IpAddr> = [ROOT, NS1, NS2]
            .into_iter()
            .chain(kinds::RESOLVERS.iter().map(|k| k.address))
            .map(IpAddr::from)
            .collect();
        let ns = network.add_host(role, &addresses);
        let root_dir = TempDir::new(&format!("{role}-root"));
        let folder = root_dir.path().display().to_string();
        root_dir.write("root.zone", LAB_ROOT_ZONE);
        let conf = root_dir.write(
            "nsd.conf",
            &format!(
                "server:\n    ip-address: {ROOT}\n    port: 53\n    username: \"\"\n    chroot: \"\"\n\
                 \x20   zonesdir: \"{folder}\"\n    database: \"\"\n    pidfile: \"{folder}/nsd.pid\"\n\
                 \x20   xfrdfile: \"{folder}/xfrd.state\"\n    xfrdir: \"{folder}\"\n\
                 \x20   zonelistfile: \"{folder}/zone.list\"\n    server-count: 1\n    rrl-ratelimit: 0\n\
                 remote-control:\n    control-enable: no\nzone:\n    name: \".\"\n    zonefile: \"root.zone\"\n"
            ),
        );
        let mut command = Command::new(&nsd);
        command.arg("-d").arg("-c").arg(conf);
        let root = ns.run(|| {
            let root = ServerProcess::spawn("nsd", command, root_dir, SocketAddr::from((ROOT, 53)));
            settle("the root answers", &["a.root-servers.net."], || {
                ask(ROOT.into(), ".", RecordType::NS, false)
            });
            root
        });
        Some(NsLab {
            ns,
            _root: root,
            _network: network,
        })
    }
}

#[test]
fn unbound_refetching_the_ns_set_stops_asking_the_dead_node() {
    let _serial = LAB_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(unbound) = common::require_tool("unbound", "unbound") else {
        return;
    };
    let Some(control) = common::require_tool("unbound-control", "unbound") else {
        return;
    };
    let Some(lab) = NsLab::start("nsh") else {
        return;
    };
    let ns = &lab.ns;

    let ns1 = start_node(ns, NS1, LAB_CONFIG);
    let ns2 = start_node(ns, NS2, LAB_CONFIG);

    // unbound, with a control socket to forget what it learnt of servers.
    let resolver_dir = TempDir::new("nsh-unbound");
    let folder = resolver_dir.path().display().to_string();
    let hints = resolver_dir.write(
        "root.hints",
        ". 3600000 NS a.root-servers.net.\na.root-servers.net. 3600000 A 192.0.2.1\n",
    );
    let conf = resolver_dir.write(
        "unbound.conf",
        &format!(
            "server:\n    interface: {RESOLVER}\n    port: 53\n    access-control: 0.0.0.0/0 allow\n\
             \x20   module-config: \"iterator\"\n    root-hints: \"{}\"\n    directory: \"{folder}\"\n\
             \x20   do-daemonize: no\n    username: \"\"\n    chroot: \"\"\n    pidfile: \"\"\n\
             \x20   use-syslog: no\n    logfile: \"\"\n    verbosity: 1\n    qname-minimisation: no\n\
             \x20   harden-referral-path: no\n    do-ip6: no\n\
             remote-control:\n    control-enable: yes\n    control-interface: \"{folder}/control.sock\"\n\
             \x20   control-use-cert: no\n",
            hints.display()
        ),
    );
    let mut command = Command::new(&unbound);
    command.arg("-d").arg("-c").arg(&conf);
    let resolver = RESOLVER.into();
    let _unbound = ns.run(|| {
        let process = ServerProcess::spawn(
            "unbound",
            command,
            resolver_dir,
            SocketAddr::from((RESOLVER, 53)),
        );
        settle("unbound resolves", &["192.0.2.80"], || {
            ask(resolver, "ready.nsh.lab.", RecordType::A, true)
        });
        process
    });
    let through_unbound = |name: &str, rtype| ns.run(|| ask(resolver, name, rtype, true));
    let from_ns1 = || ns.run(|| ask(NS1.into(), "nsh.lab.", RecordType::NS, false));
    let both = ["ns1.nsh.lab.", "ns2.nsh.lab."];

    // Each node saw the other down while it started.
    settle("ns1 lists both nodes", &both, from_ns1);
    settle("unbound's NS set with both nodes", &both, || {
        through_unbound("nsh.lab.", RecordType::NS)
    });

    // ns2 dies; ns1's probe of it fails, and ns1 lists itself alone.
    drop(ns2);
    let hole = BlackHole::open(ns, NS2);
    settle("ns1 drops ns2 from its NS set", &["ns1.nsh.lab."], from_ns1);
    // Once the cached set (TTL 5) runs out, unbound fetches it again, and
    // gets the filtered one. What unbound learnt of ns2's silence
    // meanwhile goes before the lookups: only the NS set keeps it from
    // asking ns2 then.
    let flush_infra = || {
        let mut command = Command::new(&control);
        command.arg("-c").arg(&conf).arg("flush_infra").arg("all");
        let output = common::output_within(command, Duration::from_secs(10));
        assert!(output.status.success(), "unbound-control: {output:?}");
    };
    let asked_ns2 = || hole.queries.load(Ordering::Relaxed);
    let asked = asked_while_unlisted(ns, RESOLVER, "after", flush_infra, asked_ns2);
    assert_eq!(
        asked,
        Ok(0),
        "{LOOKUPS} lookups through unbound asked the dead ns2"
    );

    // ns2 comes back: ns1 lists both again, and so does unbound once its
    // copy runs out.
    drop(hole);
    let _ns2 = start_node(ns, NS2, LAB_CONFIG);
    settle("ns1 lists ns2 again", &both, from_ns1);
    settle("unbound's NS set with ns2 again", &both, || {
        through_unbound("nsh.lab.", RecordType::NS)
    });
    drop(ns1);
}

#[test]
fn explain_shows_the_ns_set_a_down_node_leaves() {
    let dir = TempDir::new("ns-health-explain");
    dir.write("ns.test.zone", ZONE);
    let config = dir.write(
        "steerdns.toml",
        "[server]\nlisten = [\"127.0.0.1:53\"]\n\n\
         [[zone]]\norigin = \"ns.test.\"\nfile = \"ns.test.zone\"\nns-health = \"nodes.ns.test.\"\n\n\
         [[service]]\nname = \"nodes.ns.test.\"\nrouting = \"multivalue\"\nttl = 5\n\
         endpoints = [\n\
           { name = \"ns1\", addresses = [\"127.0.0.11\"] },\n\
           { name = \"ns2\", addresses = [\"127.0.0.12\", \"2001:db8::12\"] },\n\
           { name = \"ns3\", addresses = [\"127.0.0.13\"] },\n\
         ]\n",
    );
    let explain = |down: &[&str]| {
        let mut command = Command::new(common::steerdns_bin());
        command.arg("explain").arg("--config").arg(&config).args([
            "--client",
            "192.0.2.9",
            "ns.test.",
            "NS",
        ]);
        if !down.is_empty() {
            command.args(["--down", &down.join(",")]);
        }
        let out = common::output_within(command, Duration::from_secs(10));
        assert!(out.status.success(), "explain failed: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut records: Vec<String> = text
            .lines()
            .filter(|l| l.contains("\tIN\t"))
            .map(|l| {
                l.split('\t')
                    .filter(|f| !f.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        records.sort();
        records
    };
    assert_eq!(explain(&[]).len(), 7, "three NS records and four glue");
    assert_eq!(
        explain(&["ns2"]),
        [
            "ns.test. 5 IN NS ns1.ns.test. ; answer",
            "ns.test. 5 IN NS ns3.ns.test. ; answer",
            "ns1.ns.test. 300 IN A 127.0.0.11 ; additional",
            "ns3.ns.test. 300 IN A 127.0.0.13 ; additional",
        ]
    );
    // Every node down: the full set.
    assert_eq!(explain(&["ns1", "ns2", "ns3"]), explain(&[]));
}

/// Where each node's "health port" is: what the nodes' `ns-health` probes
/// in [`recursors_use_the_child_ns_set_of_live_nodes`], held open by the
/// test, so a node can be judged down while its DNS still answers.
const HEALTH_PORT: u16 = 8053;

/// The queries node `admin_port`'s steerdns has answered, from its
/// Prometheus metrics.
fn answered(ns: &netns::Netns, admin_port: u16) -> u64 {
    use std::io::{Read, Write};
    let text = ns.run(|| {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", admin_port)).expect("admin");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("metrics");
        text
    });
    text.lines()
        .filter(|l| l.starts_with("steerdns_queries_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Sends [`LOOKUPS`] fresh lookups through `resolver`, each answered.
fn lookups(ns: &netns::Netns, resolver: Ipv4Addr, prefix: &str) {
    for i in 0..LOOKUPS {
        let name = format!("{prefix}-{i}.nsh.lab.");
        let got = ns.run(|| ask(resolver.into(), &name, RecordType::A, true));
        assert_eq!(got, Ok(strings(&["192.0.2.80"])), "{name}");
    }
}

#[test]
fn recursors_use_the_child_ns_set_of_live_nodes() {
    let _serial = LAB_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lab) = NsLab::start("nsr") else {
        return;
    };
    let ns = &lab.ns;
    let health_port = |address| HealthPort::open(ns, address);
    let _ns1_health = health_port(NS1);
    let mut ns2_health = Some(health_port(NS2));
    let config = |admin: u16| {
        LAB_CONFIG
            .replace("port = 53\n", &format!("port = {HEALTH_PORT}\n"))
            .replace(
                "[rrl]",
                &format!("[admin]\nlisten = \"127.0.0.1:{admin}\"\n\n[rrl]"),
            )
    };
    let _ns1 = start_node(ns, NS1, &config(9001));
    let _ns2 = start_node(ns, NS2, &config(9002));
    let from_ns1 = || ns.run(|| ask(NS1.into(), "nsh.lab.", RecordType::NS, false));
    let both = ["ns1.nsh.lab.", "ns2.nsh.lab."];
    let hints_dir = TempDir::new("nsr-hints");
    let hints = hints_dir.write(
        "root.hints",
        ". 3600000 NS a.root-servers.net.\na.root-servers.net. 3600000 A 192.0.2.1\n",
    );

    let mut outcomes = Vec::new();
    for recursor in &kinds::RESOLVERS {
        let program = match common::find_tool(recursor.program) {
            Some(program) => program,
            // A missing unbound fails the test (or skips it, where allowed).
            None if recursor.required => {
                common::require_tool(recursor.program, recursor.package);
                return;
            }
            None => {
                let _ = std::io::Write::write_fmt(
                    &mut std::io::stderr(),
                    format_args!(
                        "SKIPPED: {} ({}) not installed\n",
                        recursor.label, recursor.package
                    ),
                );
                continue;
            }
        };
        settle("ns1 lists both nodes", &both, from_ns1);
        let address = recursor.address;
        let dir = TempDir::new(&format!("nsr-{}", recursor.label));
        let folder = dir.path().display().to_string();
        let text = recursor
            .config_template
            .replace("{{address}}", &address.to_string())
            .replace("{{dir}}", &folder)
            .replace("{{hints}}", &hints.display().to_string());
        let config = dir.write(recursor.config_name, &text);
        let mut command = Command::new(program);
        command.args((recursor.args)(dir.path(), &config));
        let through = || ns.run(|| ask(address.into(), "nsh.lab.", RecordType::NS, true));
        let process = ns.run(|| {
            let process = ServerProcess::spawn(
                recursor.label,
                command,
                dir,
                SocketAddr::from((address, 53)),
            );
            settle(
                &format!("{} resolves", recursor.label),
                &["192.0.2.80"],
                || ask(address.into(), "ready.nsh.lab.", RecordType::A, true),
            );
            process
        });
        // Only unbound's behaviour is asserted (see the test's comment);
        // the others' is reported.
        let asserted = recursor.label == "unbound";
        let mut outcome = Outcome {
            recursor: recursor.label,
            ..Outcome::default()
        };
        if let Err(got) = settled(&both, through) {
            assert!(!asserted, "{}: NS set with both: {got}", recursor.label);
            outcome.note = format!("kept another NS set with both up: {got}");
        }
        let asked_ns2 = || answered(ns, 9002);
        let before = asked_ns2();
        lookups(ns, address, &format!("{}-both", recursor.label));
        outcome.listed = asked_ns2() - before;

        // ns2's health port closes: both nodes leave it out of the NS set,
        // while its DNS answers as before.
        drop(ns2_health.take());
        settle("ns1 drops ns2", &["ns1.nsh.lab."], from_ns1);
        let prefix = format!("{}-one", recursor.label);
        match asked_while_unlisted(ns, address, &prefix, || {}, asked_ns2) {
            Ok(asked) => outcome.unlisted = Some(asked),
            Err(why) => outcome.note = why,
        }
        if asserted {
            assert!(
                outcome.listed > 0,
                "unbound never asked ns2 while listed: {outcome:?}"
            );
            assert_eq!(outcome.unlisted, Some(0), "unbound asked the unlisted ns2");
        }
        outcomes.push(outcome);
        drop(process);
        ns2_health = Some(health_port(NS2));
    }
    drop(ns2_health);
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr(),
        format_args!("NS sets through recursors: {outcomes:#?}\n"),
    );
    assert!(outcomes.iter().any(|o| o.recursor == "unbound"));
}

/// A node's health port: a TCP listener that a thread keeps accepting
/// and closing connections on, until dropped. Were they left unaccepted,
/// 128 probes (about 20 s of both nodes' probing) would fill its backlog,
/// and later probes would time out as if the port were closed.
struct HealthPort {
    _accepter: Looping,
}

impl HealthPort {
    fn open(ns: &netns::Netns, address: Ipv4Addr) -> HealthPort {
        let listener = ns.run(|| TcpListener::bind((address, HEALTH_PORT)).expect("health port"));
        listener.set_nonblocking(true).unwrap();
        let accepter = Looping::start(move || {
            if listener.accept().is_err() {
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        HealthPort {
            _accepter: accepter,
        }
    }
}

/// What one recursor did in [`recursors_use_the_child_ns_set_of_live_nodes`].
#[derive(Debug, Default)]
struct Outcome {
    recursor: &'static str,
    /// Queries ns2 answered during [`LOOKUPS`] lookups while listed.
    listed: u64,
    /// The same once left out of the NS set the recursor fetched, if it
    /// got that far in time.
    unlisted: Option<u64>,
    /// Why `unlisted` is missing, or what else went differently.
    note: String,
}
