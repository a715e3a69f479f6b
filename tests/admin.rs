//! The admin API over real HTTP against the running binary: auth, every
//! route, drains seen in DNS answers, reloads refused with `file:line`,
//! the listener's limits, a flood of API requests beside DNS queries, and
//! the status page rendered by headless Chromium.
//!
//! Requests go over a raw `TcpStream` (HTTP/1.1, one request per
//! connection), so the test does not share the server's HTTP stack.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::{RData, RecordType};
use serde_json::Value;

use common::{
    eventually, free_port, output_within, query, require_tool, steerdns_bin, HttpPayload,
    QueryOpts, ServerProcess, TempDir,
};

const ZONE: &str = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n@ NS ns1\n\
                    ns1 A 127.0.0.1\n";

/// The token in every node's `admin.token` file (used when the config
/// names it).
const TOKEN: &str = "t0ken-of-the-test";

/// Runs the tests of this file one at a time: the flood test compares
/// latencies, and another test's server or browser beside it would make
/// that comparison noise.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// One HTTP exchange's outcome.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends one request and reads the reply to the end (the server closes
/// every connection after one request).
fn http(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> Reply {
    try_http(addr, method, path, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn try_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> Result<Reply, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("receive: {e}"))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of head in {text:?}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok(Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

/// A steerdns with an admin listener, two monitored endpoints of a
/// priority service (real HTTP payloads) and a `[state]` folder.
struct Node {
    server: ServerProcess,
    home: TempDir,
    config: PathBuf,
    admin: SocketAddr,
    primary: Option<HttpPayload>,
    _secondary: HttpPayload,
}

impl Node {
    /// Starts it; `admin_extra` goes into the `[admin]` table.
    fn start(admin_extra: &str) -> Node {
        let home = TempDir::new("admin");
        let (port, admin_port) = (free_port(), free_port());
        let (p1, p2) = (free_port(), free_port());
        let primary = HttpPayload::start(SocketAddr::from(([127, 0, 0, 1], p1)));
        let secondary = HttpPayload::start(SocketAddr::from(([127, 0, 0, 1], p2)));
        home.write("zones/example.com.zone", ZONE);
        home.write("admin.token", &format!("{TOKEN}\n"));
        let config = home.write(
            "steerdns.toml",
            &format!(
                r#"[server]
listen = ["127.0.0.1:{port}"]
workers = 1
[state]
dir = "state"
[[zone]]
origin = "example.com."
file = "zones/example.com.zone"
[monitor.web]
protocol = "http"
port = 80
interval = "300ms"
timeout = "250ms"
tolerated-failures = 0
successes-before-up = 1

[[service]]
name = "api.example.com."
routing = "priority"
endpoints = [
  {{ name = "primary", addresses = ["192.0.2.20"], priority = 1, monitor = "web", probe = "127.0.0.1:{p1}" }},
  {{ name = "secondary", addresses = ["198.51.100.20"], priority = 2, monitor = "web", probe = "127.0.0.1:{p2}" }},
]

[[service]]
name = "www.example.com."
routing = "weighted"
endpoints = [
  {{ name = "fra", addresses = ["192.0.2.10"], weight = 3 }},
  {{ name = "iad", addresses = ["198.51.100.10"], weight = 1 }},
]

[admin]
listen = "127.0.0.1:{admin_port}"
{admin_extra}
"#
            ),
        );
        let logs = TempDir::new("admin-logs");
        let mut command = Command::new(steerdns_bin());
        command.arg("serve").arg("--config").arg(&config);
        let server = ServerProcess::start("steerdns", command, logs, port, "example.com.");
        let node = Node {
            server,
            home,
            config,
            admin: SocketAddr::from(([127, 0, 0, 1], admin_port)),
            primary: Some(primary),
            _secondary: secondary,
        };
        let auth = format!("Authorization: Bearer {TOKEN}");
        // The first digests are computed beside the start.
        eventually(Duration::from_secs(5), "config digest", || {
            http(node.admin, "GET", "/api/v1/version", &[&auth], "").json()["config_sha256"]
                .is_string()
        });
        node
    }

    fn get(&self, path: &str) -> Reply {
        http(self.admin, "GET", path, &[], "")
    }

    fn post(&self, path: &str, body: &str) -> Reply {
        http(self.admin, "POST", path, &[], body)
    }

    /// The A records answered for `name`.
    fn answers(&self, name: &str) -> Vec<String> {
        let m = query(
            self.server.addr(),
            name,
            RecordType::A,
            &QueryOpts::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}\n{}", self.server.logs()));
        m.answers()
            .iter()
            .filter_map(|r| match r.data() {
                RData::A(a) => Some(a.0.to_string()),
                _ => None,
            })
            .collect()
    }

    /// The status of endpoint `endpoint` of service `service` from the API.
    fn endpoint(&self, service: &str, endpoint: &str) -> Value {
        let services = self.get("/api/v1/services").json();
        services
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == service)
            .and_then(|s| {
                s["endpoints"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["name"] == endpoint)
                    .cloned()
            })
            .unwrap_or_else(|| panic!("no {service} {endpoint} in {services}"))
    }

    /// Stops the primary's payload and waits until the API reports it down.
    fn stop_primary(&mut self) {
        self.primary = None;
        eventually(Duration::from_secs(10), "primary reported down", || {
            self.endpoint("api.example.com.", "primary")["health"] == "down"
        });
    }
}

/// `sha256sum FILE`'s digest: an implementation other than ours.
fn sha256sum(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn every_route_answers_over_loopback_without_a_token() {
    let _serial = serial();
    let mut node = Node::start("");

    let version = node.get("/api/v1/version");
    assert_eq!(version.status, 200, "{version:?}");
    assert!(version.head.contains("content-type: application/json"));
    let v = version.json();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["config_sha256"].as_str().unwrap().len(), 64);

    // Prometheus metrics: the DNS queries sent so far are counted, and
    // the zone's serial is there.
    let metrics = node.get("/metrics");
    assert_eq!(metrics.status, 200, "{metrics:?}");
    assert!(
        metrics
            .head
            .contains("content-type: application/openmetrics-text")
            || metrics.head.contains("content-type: text/plain"),
        "{}",
        metrics.head
    );
    assert!(
        metrics
            .body
            .contains("steerdns_queries_total{transport=\"udp\""),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("steerdns_zone_serial{zone=\"example.com.\"}"),
        "{}",
        metrics.body
    );

    let status = node.get("/api/v1/status").json();
    assert_eq!(status["config"]["sha256"], v["config_sha256"]);
    let files = status["config"]["files"].as_array().unwrap();
    assert_eq!(files[0]["role"], "config");
    assert_eq!(files[0]["sha256"], sha256sum(&node.config).as_str());
    let zone = node.home.path().join("zones/example.com.zone");
    assert_eq!(files[1]["role"], "example.com.");
    assert_eq!(files[1]["sha256"], sha256sum(&zone).as_str());
    let names: Vec<&str> = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api.example.com.", "www.example.com."]);

    // Probes ran: the primary's probe reports ok with a latency.
    eventually(Duration::from_secs(10), "a probe result", || {
        node.endpoint("api.example.com.", "primary")["probes"][0]["last"]["status"] == "ok"
    });
    let primary = node.endpoint("api.example.com.", "primary");
    assert_eq!(primary["serving"], true);
    assert_eq!(primary["probes"][0]["protocol"], "http");
    assert!(primary["probes"][0]["last"]["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(node.endpoint("www.example.com.", "fra")["weight"], 3);

    // The payload stops: the endpoint goes down, the change is recorded
    // with its reason, and explain (on the live health) skips it.
    node.stop_primary();
    let primary = node.endpoint("api.example.com.", "primary");
    assert_eq!(primary["serving"], false);
    assert_eq!(primary["probes"][0]["last"]["status"], "failed");
    assert_eq!(primary["probes"][0]["last"]["error"], "connect refused");
    let changes = node.get("/api/v1/health/changes").json();
    let change = &changes[0];
    assert_eq!(change["to"], "down", "{changes}");
    assert!(change["probe"]
        .as_str()
        .unwrap()
        .contains("api.example.com. endpoint primary"));
    assert_eq!(change["reason"], "connect refused");
    let explained = node
        .get("/api/v1/explain?name=api.example.com&type=A&client=192.0.2.99")
        .json();
    assert_eq!(explained["service"], "api.example.com.");
    let decision = explained["decisions"][0]["decision"].as_str().unwrap();
    assert!(decision.contains("[secondary]"), "{explained}");
    assert!(explained["records"][0]
        .as_str()
        .unwrap()
        .contains("198.51.100.20"));
    // What explain said is what DNS answers.
    assert_eq!(node.answers("api.example.com."), ["198.51.100.20"]);
    let bad = node.get("/api/v1/explain?name=api.example.com&client=nowhere");
    assert_eq!(bad.status, 400, "{bad:?}");

    assert_eq!(node.get("/api/v1/drain").json()["node"], false);

    let page = node.get("/");
    assert_eq!(page.status, 200);
    assert!(page.head.contains("content-type: text/html"));
    assert!(page.body.contains("<meta http-equiv=\"refresh\""));

    let missing = node.get("/api/v1/nothing");
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"].is_string());
    let wrong = http(node.admin, "DELETE", "/api/v1/reload", &[], "");
    assert_eq!(wrong.status, 405);
    assert!(wrong.head.contains("allow: POST"), "{}", wrong.head);
}

#[test]
fn drains_through_the_api_show_in_dns_answers_within_a_second() {
    let _serial = serial();
    let node = Node::start("");
    assert_eq!(node.answers("api.example.com."), ["192.0.2.20"]);

    let asked = Instant::now();
    let r = node.post(
        "/api/v1/drain",
        r#"{"service": "API.example.com", "endpoint": "primary"}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["target"], "api.example.com. endpoint primary");
    eventually(Duration::from_secs(1), "drain in DNS answers", || {
        node.answers("api.example.com.") == ["198.51.100.20"]
    });
    println!("drain visible in DNS after {:?}", asked.elapsed());
    // Through the same file as `steerdns drain`.
    let file = std::fs::read_to_string(node.home.path().join("state/drain.toml")).unwrap();
    assert!(file.contains("primary"), "{file}");
    assert_eq!(
        node.endpoint("api.example.com.", "primary")["drained"],
        true
    );
    assert_eq!(
        node.get("/api/v1/drain").json()["endpoints"]["api.example.com."][0],
        "primary"
    );

    let asked = Instant::now();
    let r = node.post(
        "/api/v1/undrain",
        r#"{"service": "api.example.com.", "endpoint": "primary"}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    eventually(Duration::from_secs(1), "undrain in DNS answers", || {
        node.answers("api.example.com.") == ["192.0.2.20"]
    });
    println!("undrain visible in DNS after {:?}", asked.elapsed());

    // The whole service's weighted answers are untouched by an endpoint
    // drain elsewhere; an unknown name is refused and changes nothing.
    let r = node.post("/api/v1/drain", r#"{"service": "nope.example.com"}"#);
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.json()["error"], "no service named nope.example.com.");
    let r = node.post(
        "/api/v1/drain",
        r#"{"service": "api.example.com", "endpoint": "tertiary"}"#,
    );
    assert_eq!(r.status, 404, "{r:?}");
    let r = node.post("/api/v1/drain", r#"{"endpoint": "primary"}"#);
    assert_eq!(r.status, 400, "{r:?}");
    let r = node.post("/api/v1/drain", "{not json");
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(node.answers("api.example.com."), ["192.0.2.20"]);
}

/// `queries_per_second` of service `name` in a status or services answer.
fn rate_of(services: &Value, name: &str) -> Value {
    services
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {services}"))["queries_per_second"]
        .clone()
}

#[test]
fn query_rates_per_service_show_in_the_api_and_on_the_page() {
    let _serial = serial();
    let node = Node::start("");
    // Node::start already asked a few questions (at the apex); the
    // services had none.
    const QUERIES: usize = 40;
    let started = Instant::now();
    for _ in 0..QUERIES {
        assert_eq!(node.answers("api.example.com."), ["192.0.2.20"]);
    }
    let status = node.get("/api/v1/status").json();
    let took = started.elapsed();
    let api = rate_of(&status["services"], "api.example.com.");
    let www = rate_of(&status["services"], "www.example.com.");
    let api = api
        .as_f64()
        .unwrap_or_else(|| panic!("no api rate in {status}"));
    // The rate spans from the sampler's first reading (at the start) to
    // now, at most a minute, and at least a second: 40 answers in that
    // span, and none for www.
    assert!(api > 0.0, "{status}");
    assert!(
        api <= QUERIES as f64,
        "{api} per second for {QUERIES} answers in {took:?}"
    );
    assert!(api >= QUERIES as f64 / 61.0, "{api}");
    assert_eq!(www.as_f64(), Some(0.0), "{status}");

    // The page shows the column and each service's rate in its heading.
    let page = node.get("/").body;
    assert!(page.contains("<th>queries/s</th>"), "{page}");
    let page_rate = |service: &str| -> f64 {
        let heading = page
            .lines()
            .find(|l| l.starts_with(&format!("<h3 id=\"{service}\">")))
            .unwrap_or_else(|| panic!("no heading for {service} in {page}"));
        let (before, _) = heading
            .split_once(" queries/s")
            .unwrap_or_else(|| panic!("no rate in {heading}"));
        before.rsplit(", ").next().unwrap().parse().unwrap()
    };
    assert!(page_rate("api.example.com.") > 0.0, "{page}");
    assert_eq!(page_rate("www.example.com."), 0.0, "{page}");

    // `steerdns status` shows them on each service's line.
    let mut c = Command::new(steerdns_bin());
    c.arg("status").arg("--config").arg(&node.config);
    let out = output_within(c, Duration::from_secs(20));
    let table = String::from_utf8_lossy(&out.stdout);
    let table_rate = |service: &str| -> f64 {
        let line = table
            .lines()
            .find(|l| l.starts_with(service))
            .unwrap_or_else(|| panic!("no line for {service} in {table}"));
        let (before, _) = line
            .split_once(" queries/s")
            .unwrap_or_else(|| panic!("no rate in {line}"));
        before.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(table_rate("api.example.com.") > 0.0, "{table}");
    assert_eq!(table_rate("www.example.com."), 0.0, "{table}");
}

#[test]
fn reload_through_the_api_reports_errors_with_file_and_line() {
    let _serial = serial();
    let node = Node::start("");
    let before = node.get("/api/v1/version").json()["config_sha256"].clone();

    // A broken config: refused, with file:line, and the old one serves.
    let good = std::fs::read_to_string(&node.config).unwrap();
    let lines = good.lines().count();
    std::fs::write(&node.config, format!("{good}colour = 1\n")).unwrap();
    let r = node.post("/api/v1/reload", "");
    assert_eq!(r.status, 422, "{r:?}");
    let errors = r.json()["errors"].clone();
    let first = errors[0].as_str().unwrap();
    let want = format!("{}:{}: ", node.config.display(), lines + 1);
    assert!(first.starts_with(&want), "{first} (want {want})");
    assert_eq!(node.answers("api.example.com."), ["192.0.2.20"]);
    let last = node.get("/api/v1/status").json()["config"]["last_reload"].clone();
    assert_eq!(last["ok"], false, "{last}");

    // A broken zone file: its own file:line.
    std::fs::write(&node.config, &good).unwrap();
    let zone = node.home.write(
        "zones/example.com.zone",
        &format!("{ZONE}www A 300.1.2.3\n"),
    );
    let r = node.post("/api/v1/reload", "");
    assert_eq!(r.status, 422, "{r:?}");
    let first = r.json()["errors"][0].as_str().unwrap().to_string();
    assert!(
        first.starts_with(&format!("{}:5:", zone.display())),
        "{first}"
    );

    // Fixed: reloaded, and the digest follows the new zone file.
    node.home.write(
        "zones/example.com.zone",
        &format!("{ZONE}extra A 192.0.2.99\n"),
    );
    let r = node.post("/api/v1/reload", "");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["reloaded"], true);
    let after = node.get("/api/v1/status").json();
    assert_eq!(after["config"]["last_reload"]["ok"], true);
    assert_ne!(after["config"]["sha256"], before);
    assert_eq!(node.answers("extra.example.com."), ["192.0.2.99"]);
}

#[test]
fn a_listener_for_other_hosts_needs_a_token_file() {
    let _serial = serial();
    let home = TempDir::new("admin-open");
    home.write("zones/example.com.zone", ZONE);
    let config = home.write(
        "steerdns.toml",
        &format!(
            "[server]\nlisten = [\"127.0.0.1:{}\"]\n[[zone]]\norigin = \"example.com.\"\n\
             file = \"zones/example.com.zone\"\n[admin]\nlisten = \"0.0.0.0:{}\"\n",
            free_port(),
            free_port()
        ),
    );
    for command in ["serve", "check"] {
        let mut c = Command::new(steerdns_bin());
        c.arg(command).arg("--config").arg(&config);
        let out = output_within(c, Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command} started: {stderr}");
        let want = format!("{}:7: admin.listen: 0.0.0.0:", config.display());
        assert!(stderr.contains(&want), "{command}: {stderr}");
        assert!(stderr.contains("set admin.token-file"), "{stderr}");
    }
}

#[test]
fn a_configured_token_is_required_and_status_uses_it() {
    let _serial = serial();
    let node = Node::start("token-file = \"admin.token\"");
    let token = TOKEN;
    let none = node.get("/api/v1/status");
    assert_eq!(none.status, 401, "{none:?}");
    assert!(
        none.head.contains("www-authenticate: Bearer"),
        "{}",
        none.head
    );
    let wrong = http(
        node.admin,
        "GET",
        "/",
        &["Authorization: Bearer t0ken-of-the-tesT"],
        "",
    );
    assert_eq!(wrong.status, 401);
    let right = http(
        node.admin,
        "GET",
        "/api/v1/status",
        &[&format!("Authorization: Bearer {token}")],
        "",
    );
    assert_eq!(right.status, 200, "{right:?}");
    // Not even a drain goes through without it.
    assert_eq!(node.post("/api/v1/drain", "").status, 401);
    assert_eq!(node.answers("api.example.com."), ["192.0.2.20"]);

    // `steerdns status` finds the listener and the token in the config.
    let mut c = Command::new(steerdns_bin());
    c.arg("status").arg("--config").arg(&node.config);
    let out = output_within(c, Duration::from_secs(20));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table.contains("api.example.com."), "{table}");
    let primary = table.lines().find(|l| l.contains("primary")).unwrap();
    assert!(
        primary.contains("192.0.2.20") && primary.contains(" up "),
        "{table}"
    );
    assert!(table.contains(
        &right.json()["config"]["sha256"]
            .as_str()
            .unwrap()
            .to_string()
    ));
}

#[test]
fn limits_refuse_big_bodies_many_headers_slow_clients_and_floods() {
    let _serial = serial();
    let node = Node::start(
        "max-body = 100\nmax-headers = 8\nheader-timeout = \"1s\"\nmax-connections = 4",
    );
    let big = format!("{{\"service\": \"{}\"}}", "a".repeat(200));
    assert_eq!(node.post("/api/v1/drain", &big).status, 413);
    let headers: Vec<String> = (0..20).map(|i| format!("X-Filler-{i}: {i}")).collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    assert_eq!(
        http(node.admin, "GET", "/api/v1/version", &headers, "").status,
        431
    );
    let long = format!("X-Long: {}", "a".repeat(20_000));
    assert_eq!(
        http(node.admin, "GET", "/api/v1/version", &[&long], "").status,
        431
    );
    assert_eq!(
        http(node.admin, "GET", "/api/v1/version", &[], "").status,
        200
    );

    // Four slow clients take every place; a fifth is closed at once.
    let slow: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(node.admin).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let refused = Instant::now();
    let r = try_http(node.admin, "GET", "/api/v1/version", &[], "");
    assert!(r.is_err(), "a fifth connection was served: {r:?}");
    assert!(refused.elapsed() < Duration::from_secs(1));

    // The header timeout closes the slow ones, and places come back.
    let mut first = slow.into_iter().next().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let waited = Instant::now();
    let mut buf = [0u8; 512];
    let _ = first.read(&mut buf);
    let took = waited.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(4),
        "slow client closed after {took:?}"
    );
    eventually(Duration::from_secs(3), "places freed", || {
        try_http(node.admin, "GET", "/api/v1/version", &[], "").is_ok_and(|r| r.status == 200)
    });
}

/// Latencies of UDP queries sent one at a time, one every
/// [`QUERY_PACE`], for [`WINDOW`] (so a stall anywhere in the window is
/// sampled), sorted; each must be answered on the first attempt within a
/// second.
fn dns_latencies(addr: SocketAddr) -> Vec<Duration> {
    let message = common::build_query(
        &common::name("www.example.com."),
        RecordType::A,
        &QueryOpts::default(),
    );
    let wire = message.to_vec().unwrap();
    let started = Instant::now();
    let mut times = Vec::new();
    // Bounded in count and time.
    for i in 0..(WINDOW.as_millis() / QUERY_PACE.as_millis()) {
        let sent = Instant::now();
        if sent.duration_since(started) > WINDOW {
            break;
        }
        common::exchange_udp(addr, &wire, Duration::from_secs(1), 1)
            .unwrap_or_else(|e| panic!("query {i}: {e}"));
        times.push(sent.elapsed());
        std::thread::sleep(QUERY_PACE.saturating_sub(sent.elapsed()));
    }
    times.sort();
    times
}

/// How long each measurement runs.
const WINDOW: Duration = Duration::from_secs(2);

/// Time between two queries' starts.
const QUERY_PACE: Duration = Duration::from_millis(2);

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// Sends `GET path` to `target` from three threads, one request per
/// connection, while `measure` runs; returns what it measured and the
/// rate of requests answered with 200 meanwhile.
fn during_flood<T>(target: SocketAddr, path: &str, measure: impl FnOnce() -> T) -> (T, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let flooders: Vec<_> = (0..3)
        .map(|_| {
            let (stop, served, path) = (stop.clone(), served.clone(), path.to_string());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                // Bounded in count and time.
                for _ in 0..100_000 {
                    if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                        break;
                    }
                    if try_http(target, "GET", &path, &[], "").is_ok_and(|r| r.status == 200) {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    // Until the flood is in full swing.
    eventually(Duration::from_secs(10), "flood under way", || {
        served.load(Ordering::Relaxed) >= 50
    });
    let (started, before) = (Instant::now(), served.load(Ordering::Relaxed));
    let measured = measure();
    let rate = (served.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.join().unwrap();
    }
    (measured, rate)
}

/// A stand-in for the admin listener in the test process: one thread
/// answering every request with the same body, so that a baseline carries
/// the same client load and a like server load as the real flood, and
/// what differs is only where that server runs.
struct Decoy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Decoy {
    fn start(body: String) -> Decoy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16_384 {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Decoy {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Decoy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn an_api_flood_does_not_slow_dns_answers() {
    let _serial = serial();
    let node = Node::start("");
    let dns = node.server.addr();
    // The baseline: the same flood, at a decoy serving the same answer.
    // Two rounds each, alternating, and the better round of each is
    // compared: a stall the API causes shows in both of its rounds, while
    // the machine's own hiccups (other processes) seldom last across two.
    let decoy = Decoy::start(node.get("/api/v1/status").body);
    let mut decoy_rounds = Vec::new();
    let mut api_rounds = Vec::new();
    for _ in 0..2 {
        decoy_rounds.push(Round::of(during_flood(decoy.addr, "/", || {
            dns_latencies(dns)
        })));
        api_rounds.push(Round::of(during_flood(
            node.admin,
            "/api/v1/status",
            || dns_latencies(dns),
        )));
    }
    drop(decoy);
    for (who, rounds) in [("decoy", &decoy_rounds), ("API", &api_rounds)] {
        for r in rounds {
            println!(
                "DNS over UDP, a query every {QUERY_PACE:?} for {WINDOW:?}, beside {:.0} {who} \
                 requests/s: {} queries, median {:?} p99 {:?}, {:.1}% over {SLOW:?}",
                r.rate, r.queries, r.p50, r.p99, r.slow
            );
        }
    }
    let worst =
        |rounds: &[Round], key: fn(&Round) -> f64| rounds.iter().map(key).fold(f64::MIN, f64::max);
    let best =
        |rounds: &[Round], key: fn(&Round) -> f64| rounds.iter().map(key).fold(f64::MAX, f64::min);
    let rate = best(&api_rounds, |r| r.rate);
    assert!(rate > 20.0, "the flood was no flood: {rate:.0} requests/s");
    // The bounds leave room for noise and catch queries that wait behind
    // API requests: a 2 ms lock shared by the API and the answer path
    // (tried on purpose) put 37-51% of the queries over 1 ms in the API's
    // better round (0.1-0.2% beside the decoy) and failed 4 runs of 4.
    let (decoy_slow, api_slow) = (
        best(&decoy_rounds, |r| r.slow),
        best(&api_rounds, |r| r.slow),
    );
    assert!(
        api_slow <= decoy_slow * 2.0 + 15.0,
        "{api_slow:.1}% of queries over {SLOW:?} beside the API flood, {decoy_slow:.1}% beside the decoy"
    );
    let (decoy_p50, api_p50) = (
        best(&decoy_rounds, |r| r.p50.as_secs_f64() * 1e6),
        best(&api_rounds, |r| r.p50.as_secs_f64() * 1e6),
    );
    assert!(
        api_p50 <= decoy_p50 * 3.0 + 300.0,
        "median {api_p50:.0} µs beside the API flood, {decoy_p50:.0} µs beside the decoy"
    );
    let (decoy_p99, api_p99) = (
        worst(&decoy_rounds, |r| r.p99.as_secs_f64() * 1e6),
        best(&api_rounds, |r| r.p99.as_secs_f64() * 1e6),
    );
    // p99 is noisy: the worse decoy round, and a wide margin.
    assert!(
        api_p99 <= decoy_p99 * 3.0 + 5000.0,
        "p99 {api_p99:.0} µs beside the API flood, {decoy_p99:.0} µs beside the decoy"
    );
}

/// One measurement: query latencies beside a flood.
struct Round {
    rate: f64,
    queries: usize,
    p50: Duration,
    p99: Duration,
    /// Percentage of queries over [`SLOW`].
    slow: f64,
}

impl Round {
    fn of((sorted, rate): (Vec<Duration>, f64)) -> Round {
        Round {
            rate,
            queries: sorted.len(),
            p50: percentile(&sorted, 50),
            p99: percentile(&sorted, 99),
            slow: slow_share(&sorted),
        }
    }
}

/// A query slower than this counts as stalled.
const SLOW: Duration = Duration::from_millis(1);

/// The percentage of `times` over [`SLOW`].
fn slow_share(times: &[Duration]) -> f64 {
    let slow = times.iter().filter(|&&t| t > SLOW).count();
    slow as f64 * 100.0 / times.len().max(1) as f64
}

#[test]
fn the_status_page_in_headless_chromium_shows_services_and_health() {
    let _serial = serial();
    let Some(chromium) = require_tool("chromium", "chromium") else {
        return;
    };
    let mut node = Node::start("");
    node.stop_primary();
    let scratch = node.home.path().to_path_buf();
    let url = format!("http://{}/", node.admin);
    let browse = |args: &[&str]| {
        let mut c = Command::new(&chromium);
        c.args([
            "--no-sandbox",
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--window-size=1200,1000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            scratch.join("chromium").display()
        ))
        .args(args)
        .arg(&url);
        output_within(c, Duration::from_secs(90))
    };

    let dom = browse(&["--dump-dom"]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("api.example.com.") && dom.contains("www.example.com."),
        "{dom}"
    );
    // The primary's row says down; the secondary's up.
    let row = |name: &str| {
        dom.split("<tr>")
            .find(|r| r.starts_with(&format!("<td>{name} ")))
            .unwrap_or_else(|| panic!("no row for {name} in {dom}"))
            .to_string()
    };
    assert!(
        row("primary").contains("badge down\">down<"),
        "{}",
        row("primary")
    );
    assert!(
        row("primary").contains("connect refused"),
        "{}",
        row("primary")
    );
    assert!(
        row("secondary").contains("badge up\">up<"),
        "{}",
        row("secondary")
    );
    assert!(dom.contains("degraded"), "the service is degraded: {dom}");

    let shot = scratch.join("status-page.png");
    let out = browse(&[&format!("--screenshot={}", shot.display())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    println!(
        "status page screenshot: {} (kept with STEERDNS_TEST_KEEP=1)",
        shot.display()
    );
}
