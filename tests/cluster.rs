//! Cluster health across three real nodes: health rules, fallback and
//! signed pushes, end to end.
//!
//! The test builds its own network (`tests/lab/netns.rs`): three steerdns
//! nodes A, B and C (198.51.100.1-3) and an endpoint E (192.0.2.80, a
//! small HTTP payload) on one bridge. Every node runs one identical config
//! with a `[cluster]` of the three and two services over the same two
//! endpoints (E, probed over HTTP, and an unprobed F that keeps answers
//! from failing open): `quorum.example.test` with `health-rule = "quorum"`
//! and `local.example.test` with `"local"`. Then, asking each node over
//! DNS inside its namespace:
//!
//! 1. all up: E is in every node's answers for both services; C, whose
//!    config file differs by a comment, is flagged for its config digest;
//! 2. A's route to E blackholed: E leaves A's `local` answers only, and
//!    stays in every node's `quorum` answers (B and C outvote A);
//! 3. A's admin port cut off as well (an `ip rule` on TCP port 8053): A
//!    hears no peer, falls back to its own verdict (E leaves its `quorum`
//!    answers) and says so in `/api/v1/status` and `/metrics`; B and C,
//!    still hearing each other, keep E;
//! 4. a forged push (wrong secret), a tampered one, a stale one and a
//!    replayed one are refused by B with 401/409 and counted.
//!
//! Needs root and iproute2; without them it fails, unless
//! `STEERDNS_ALLOW_SKIP=1` (never under CI) lets it skip.

mod common;
#[path = "lab/netns.rs"]
mod netns;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::RecordType;

use common::{HttpPayload, QueryOpts, ServerProcess, TempDir};
use netns::{Netns, Network};
use steerdns::cluster::{Push, Secret, PUSH_PATH, SIGNATURE_HEADER};

/// The nodes' addresses, in `[cluster] nodes` order.
const NODES: [Ipv4Addr; 3] = [
    Ipv4Addr::new(198, 51, 100, 1),
    Ipv4Addr::new(198, 51, 100, 2),
    Ipv4Addr::new(198, 51, 100, 3),
];

/// The probed endpoint E, and the unprobed F.
const E: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
const F: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 81);

const ADMIN_PORT: u16 = 8053;
const TOKEN: &str = "operator-token-for-the-test";
const SECRET: &str = "cluster-secret-shared-by-the-three-nodes";

/// Long enough for a probe to notice (1 s interval, one failure
/// tolerated), a push to travel and a tick to apply it, many times over.
const SETTLE: Duration = Duration::from_secs(20);

/// How long a settled answer must hold to count as steady.
const HOLD: Duration = Duration::from_secs(3);

const ZONE: &str = "$TTL 300\n\
@ SOA ns1 hostmaster 1 7200 900 1209600 60\n\
@ NS ns1\n\
ns1 A 198.51.100.1\n";

fn config() -> String {
    let nodes: Vec<String> = NODES
        .iter()
        .map(|n| format!("\"{n}:{ADMIN_PORT}\""))
        .collect();
    let service = |name: &str, rule: &str| {
        format!(
            "[[service]]\nname = \"{name}.example.test.\"\nrouting = \"multivalue\"\nttl = 5\n\
             health-rule = \"{rule}\"\nendpoints = [\n\
             {{ name = \"e\", addresses = [\"{E}\"], monitor = \"web\" }},\n\
             {{ name = \"f\", addresses = [\"{F}\"] }},\n]\n"
        )
    };
    format!(
        "[server]\nlisten = [\"0.0.0.0:53\"]\nworkers = 1\n\
         [[zone]]\norigin = \"example.test.\"\nfile = \"example.test.zone\"\n\
         [admin]\nlisten = \"0.0.0.0:{ADMIN_PORT}\"\ntoken-file = \"token\"\n\
         [state]\ndir = \"state\"\n\
         [cluster]\nnodes = [{}]\nsecret-file = \"secret\"\nmax-age = \"4s\"\npush-interval = \"1s\"\n\
         [monitor.web]\nprotocol = \"http\"\nport = 8080\npath = \"/\"\ninterval = \"1s\"\n\
         timeout = \"500ms\"\ntolerated-failures = 1\n{}{}",
        nodes.join(", "),
        service("quorum", "quorum"),
        service("local", "local"),
    )
}

/// One node: its namespace and its steerdns.
struct Node {
    name: &'static str,
    ns: Netns,
    dns: ServerProcess,
}

impl Node {
    /// The A records this node answers for `service`, sorted.
    fn answers(&self, service: &str) -> Vec<String> {
        let qname = format!("{service}.example.test.");
        self.ns.run(|| {
            let dns = SocketAddr::from((Ipv4Addr::LOCALHOST, 53));
            match common::query(dns, &qname, RecordType::A, &QueryOpts::default()) {
                Ok(m) => common::addresses(&m),
                Err(e) => vec![format!("error: {e}")],
            }
        })
    }

    /// Whether E is in this node's answers for `service`.
    fn has_e(&self, service: &str) -> bool {
        let answers = self.answers(service);
        assert!(
            answers.contains(&F.to_string()),
            "{}: {service} answers {answers:?}, without the unprobed F\n{}",
            self.name,
            self.dns.logs()
        );
        answers.contains(&E.to_string())
    }

    /// An HTTP request to this node's admin listener, from inside its
    /// namespace: (status, body).
    fn http(&self, request: &str) -> (u16, String) {
        let request = request.to_string();
        self.ns.run(move || {
            http(
                SocketAddr::from((Ipv4Addr::LOCALHOST, ADMIN_PORT)),
                &request,
            )
        })
    }

    fn get(&self, path: &str) -> String {
        let (status, body) = self.http(&format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(status, 200, "{}: GET {path}: {body}", self.name);
        body
    }

    fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/api/v1/status")).expect("status JSON")
    }

    /// The value of the metric line starting with `prefix`, or 0.
    fn metric(&self, prefix: &str) -> f64 {
        self.get("/metrics")
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    /// Posts `body` as a push with `signature`: the status code.
    fn push(&self, body: &[u8], signature: &str) -> u16 {
        let mut request = format!(
            "POST {PUSH_PATH} HTTP/1.1\r\nHost: x\r\n{SIGNATURE_HEADER}: {signature}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        request.push_str(std::str::from_utf8(body).expect("JSON"));
        self.http(&request).0
    }
}

/// One HTTP/1.1 exchange over a fresh connection: (status, body).
fn http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request.as_bytes()).expect("send request");
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {reply:?}"));
    let body = reply
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// Waits until `check` holds, then until it has held for [`HOLD`]; panics
/// with `what` when it does not within [`SETTLE`].
fn settle(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + SETTLE;
    let mut since: Option<Instant> = None;
    loop {
        if check() {
            let start = *since.get_or_insert_with(Instant::now);
            if start.elapsed() >= HOLD {
                return;
            }
        } else {
            since = None;
        }
        assert!(Instant::now() < deadline, "not within {SETTLE:?}: {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Runs `ip -n <ns> args`, panicking on failure.
fn ip(ns: &Netns, args: &str) {
    if let Err(e) = ns.try_ip(args) {
        panic!("{e}");
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn quorum_keeps_an_endpoint_one_node_cannot_reach_and_fallback_shows() {
    if !common::is_root() {
        common::skip("the cluster lab needs root (it creates network namespaces)");
        return;
    }
    if common::require_tool("ip", "iproute2").is_none() {
        return;
    }
    netns::remove_stale();
    let mut network = match Network::new() {
        Ok(network) => network,
        Err(e) => {
            common::skip(&format!("network namespaces are not available here: {e}"));
            return;
        }
    };
    // Each node its own folder (its own drain state), as on real hosts;
    // A's and B's files are the same bytes, C's differs by one comment:
    // another config digest.
    let text = config();
    let folders: Vec<(TempDir, std::path::PathBuf)> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let dir = TempDir::new(&format!("cluster-lab-{name}-conf"));
            dir.write("example.test.zone", ZONE);
            dir.write("token", TOKEN);
            dir.write("secret", SECRET);
            let text = match name {
                "c" => format!("{text}# C differs\n"),
                _ => text.clone(),
            };
            let config = dir.write("steerdns.toml", &text);
            (dir, config)
        })
        .collect();

    let e_ns = network.add_host("e", &[IpAddr::V4(E)]);
    let _payload = e_ns.run(|| HttpPayload::start(SocketAddr::from((E, 8080))));
    let nodes: Vec<Node> = ["a", "b", "c"]
        .into_iter()
        .zip(NODES)
        .zip(&folders)
        .map(|((name, address), (_, file))| {
            let ns = network.add_host(name, &[IpAddr::V4(address)]);
            let mut command = Command::new(common::steerdns_bin());
            command.arg("serve").arg("--config").arg(file);
            let logs = TempDir::new(&format!("cluster-lab-{name}"));
            let dns =
                ns.run(|| ServerProcess::start("steerdns", command, logs, 53, "example.test."));
            Node { name, ns, dns }
        })
        .collect();
    let [a, b, c] = &nodes[..] else {
        unreachable!("three nodes")
    };

    // 1. Everything up, and every node hearing both others.
    for node in &nodes {
        settle(
            &format!("{} sees E up and hears both peers", node.name),
            || {
                let s = node.status();
                let peers = s["cluster"]["peers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                node.has_e("quorum")
                    && node.has_e("local")
                    && peers.len() == 2
                    && peers.iter().all(|p| p["fresh"] == true)
                    && s["cluster"]["fallback"] == false
            },
        );
    }
    // A and B run one config, C another: C alone is flagged, and A and B
    // see which peer differs.
    let c_name = format!("{}:{ADMIN_PORT}", NODES[2]);
    for node in [a, b] {
        let s = node.status();
        assert_eq!(s["cluster"]["digest_mismatch"], false, "{}: {s}", node.name);
        assert_eq!(node.metric("steerdns_cluster_config_digest_mismatch "), 0.0);
        for p in s["cluster"]["peers"].as_array().unwrap() {
            assert_eq!(p["same_digest"], p["node"] != c_name, "{}: {s}", node.name);
        }
    }
    let s = c.status();
    assert_eq!(s["cluster"]["digest_mismatch"], true, "{s}");
    assert_eq!(c.metric("steerdns_cluster_config_digest_mismatch "), 1.0);
    assert!(c
        .get("/")
        .contains("<span class=\"badge down\">config digest differs</span>"));
    assert!(!a.get("/").contains("config digest differs"));

    // 2. A drain is safe to stop only once every node has drained it and
    // the last answer any node gave with it has expired: `drain --wait`
    // on A waits for B and C.
    let f_target = "local.example.test. endpoint f";
    let drain_args = |config: &std::path::Path| {
        let mut command = Command::new(common::steerdns_bin());
        command.arg("drain").arg("--config").arg(config).args([
            "--service",
            "local.example.test.",
            "--endpoint",
            "f",
        ]);
        command
    };
    let a_config = folders[0].1.clone();
    let mut waiting = a.ns.run(|| {
        drain_args(&a_config)
            .args(["--wait", "--timeout", "60s"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("steerdns drain --wait")
    });
    let drained_on_a = || -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&a.get("/api/v1/drain")).unwrap();
        v["safe"]
            .as_array()
            .and_then(|s| s.iter().find(|d| d["target"] == f_target).cloned())
            .unwrap_or_default()
    };
    settle("A reports F drained here and waits for B and C", || {
        let d = drained_on_a();
        d["in_force"] == true && d["cluster"]["waiting_for"].as_array().map(Vec::len) == Some(2)
    });
    std::thread::sleep(HOLD);
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "drain --wait on A returned while B and C still answer with F"
    );
    let started = std::time::Instant::now();
    for (node, (_, config)) in [b, c].into_iter().zip(&folders[1..]) {
        let out = node.ns.run(|| drain_args(config).output().unwrap());
        assert!(out.status.success(), "{}: {out:?}", node.name);
    }
    let d = {
        let mut last = serde_json::Value::Null;
        settle("every node reported F drained", || {
            last = drained_on_a();
            last["cluster"]["waiting_for"]
                .as_array()
                .is_some_and(Vec::is_empty)
        });
        last
    };
    // The latest of the three nodes' times, never before A's own.
    let everywhere = d["cluster"]["safe_at_unix"].as_u64().unwrap();
    assert!(everywhere >= d["safe_at_unix"].as_u64().unwrap(), "{d}");
    let status = loop {
        if let Some(status) = waiting.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "drain --wait on A did not return"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = waiting.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.success(),
        "drain --wait: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("waiting for"), "{text}");
    assert!(text.contains("safe to stop now on every node"), "{text}");
    // Not before the cluster's time: B's and C's last answers with F plus
    // its TTL (5 s).
    assert!(
        unix_ms() / 1000 >= everywhere,
        "returned before {everywhere}"
    );
    for (node, (_, config)) in nodes.iter().zip(&folders) {
        let out = node.ns.run(|| {
            let mut undrain = Command::new(common::steerdns_bin());
            undrain.arg("undrain").arg("--config").arg(config).args([
                "--service",
                "local.example.test.",
                "--endpoint",
                "f",
            ]);
            undrain.output().unwrap()
        });
        assert!(out.status.success(), "{}: undrain: {out:?}", node.name);
    }
    for node in &nodes {
        settle(&format!("{} answers with F again", node.name), || {
            node.answers("local").contains(&F.to_string())
        });
    }

    // 3. A cannot reach E any more; B and C can.
    ip(&a.ns, &format!("route add blackhole {E}/32"));
    settle("E leaves A's local answers", || !a.has_e("local"));
    for node in &nodes {
        assert!(
            node.has_e("quorum"),
            "{}: quorum dropped E\n{}",
            node.name,
            node.dns.logs()
        );
    }
    settle(
        "B, C keep E under local and every node under quorum",
        || b.has_e("local") && c.has_e("local") && nodes.iter().all(|n| n.has_e("quorum")),
    );
    assert!(!a.has_e("local"));

    // 4. A's cluster channel cut: no TCP to or from the admin port.
    assert_eq!(a.metric("steerdns_cluster_fallback "), 0.0);
    // To and from the peers' subnet only, so A's own admin listener
    // stays reachable over loopback for the test to read.
    for port in ["dport", "sport"] {
        ip(
            &a.ns,
            &format!("rule add to 198.51.100.0/24 ipproto tcp {port} {ADMIN_PORT} prohibit"),
        );
    }
    settle(
        "A falls back to its own verdict: E leaves its quorum answers",
        || !a.has_e("quorum"),
    );
    let s = a.status();
    assert_eq!(s["cluster"]["fallback"], true, "{s}");
    assert_eq!(a.metric("steerdns_cluster_fallback "), 1.0);
    assert_eq!(a.metric("steerdns_cluster_peers_fresh "), 0.0);
    assert!(
        a.get("/")
            .contains("<span class=\"badge down\">fallback</span>"),
        "the status page says so"
    );
    // B and C hear each other: no fallback, E stays.
    settle("B and C keep E under quorum without A", || {
        b.has_e("quorum") && c.has_e("quorum")
    });
    for node in [b, c] {
        let s = node.status();
        assert_eq!(s["cluster"]["fallback"], false, "{}: {s}", node.name);
        assert_eq!(node.metric("steerdns_cluster_fallback "), 0.0);
        let a_peer = s["cluster"]["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["node"] == format!("{}:{ADMIN_PORT}", NODES[0]))
            .cloned()
            .unwrap();
        assert_eq!(a_peer["fresh"], false, "{}: {s}", node.name);
    }

    // 5. Forged, tampered, stale and replayed pushes, posted to B as C.
    let secret = Secret::new(SECRET.as_bytes());
    let signed = |seq: u64, time_ms: u64| {
        let push = Push {
            node: format!("{}:{ADMIN_PORT}", NODES[2]),
            time_ms,
            seq,
            digest: None,
            verdicts: BTreeMap::from([("quorum.example.test./e/192.0.2.80:8080".into(), false)]),
            drained: BTreeMap::new(),
        };
        let body = serde_json::to_vec(&push).unwrap();
        let signature = secret.sign(&body);
        (body, signature)
    };
    // Far above C's own sequence numbers (microseconds since the epoch).
    let seq = u64::MAX / 2;
    let (body, signature) = signed(seq, unix_ms());
    let forged = Secret::new(*b"some other secret, not the one").sign(&body);
    assert_eq!(b.push(&body, &forged), 401, "forged signature");
    let tampered = String::from_utf8(body.clone())
        .unwrap()
        .replace("false", "true ");
    assert_eq!(
        b.push(tampered.as_bytes(), &signature),
        401,
        "tampered body"
    );
    let (old, old_signature) = signed(seq, unix_ms() - 60_000);
    assert_eq!(b.push(&old, &old_signature), 409, "stale timestamp");
    assert_eq!(b.push(&body, &signature), 200, "the genuine push");
    assert_eq!(b.push(&body, &signature), 409, "the same push again");
    // A push larger than `[admin] max-body` (16 KiB) is taken: pushes
    // carry every verdict of their sender.
    let (mut big, _) = signed(seq + 1, unix_ms());
    let padding: String = (0..600)
        .map(|i| format!("\"x.example.test./e{i}/192.0.2.1:80\":true,"))
        .collect();
    let at = big.iter().position(|&b| b == b'{').unwrap();
    let at = at + 1 + big[at + 1..].iter().position(|&b| b == b'{').unwrap() + 1;
    big.splice(at..at, padding.bytes());
    assert!(big.len() > 16 * 1024);
    let big_signature = secret.sign(&big);
    assert_eq!(b.push(&big, &big_signature), 200, "a large push");
    let (lower, lower_signature) = signed(seq - 1, unix_ms());
    assert_eq!(
        b.push(&lower, &lower_signature),
        409,
        "a lower sequence number"
    );
    let refused = |reason: &str| {
        b.metric(&format!(
            "steerdns_cluster_pushes_received_total{{result=\"{reason}\"}}"
        ))
    };
    assert_eq!(refused("signature"), 2.0);
    assert_eq!(refused("stale"), 1.0);
    // C's own pushes, now below the forged sequence number, are refused
    // as replays too: at least ours.
    assert!(refused("replay") >= 2.0);
    let s = b.status();
    assert!(s["cluster"]["refused"]["replay"].as_u64() >= Some(2), "{s}");

    drop(nodes);
}
