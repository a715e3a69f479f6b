//! Metrics as a scrape sees them: the server runs in this process (as in
//! `tests/zero_alloc.rs`), with its reloader and probes as `serve` starts
//! them; known queries go over real UDP and TCP sockets, and the counters
//! in `Metrics::encode`'s text must match what was sent, summed over the
//! UDP workers. Under a bounded UDP flood, `/metrics` is scraped over HTTP
//! from the admin listener: every scrape parses, no counter goes back, and
//! the totals at the end equal the queries sent.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use common::{query, query_ecs, QueryOpts};
use steerdns::admin::{AdminListener, AdminState};
use steerdns::config::Config;
use steerdns::metrics::Metrics;
use steerdns::reload::{ReloadHandle, Reloader};
use steerdns::server::{Server, ServerError};
use steerdns::snapshot::Snapshot;

/// The value of the sample line `series` (name and labels exactly as
/// encoded) in `text`, or 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// A server running in this process with its reloader, as `serve` runs
/// them, stopped on drop.
struct Running {
    addr: SocketAddr,
    /// The admin listener, when the config has `[admin]`.
    admin: Option<SocketAddr>,
    metrics: Arc<Metrics>,
    reload: ReloadHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServerError>>>,
}

impl Running {
    /// Starts the server the config file at `path` describes.
    fn start(path: PathBuf) -> Running {
        let config = Config::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::load(&config).unwrap()));
        let server = Server::bind(&config).unwrap();
        let addr: SocketAddr = server.local_addrs()[0];
        let metrics = server.metrics();
        metrics.loaded_now();
        let listener = config
            .admin
            .as_ref()
            .map(|admin| AdminListener::bind(admin).unwrap());
        let admin = listener.as_ref().map(|l| l.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let background = {
            let (snapshot, metrics) = (snapshot.clone(), metrics.clone());
            async move {
                let mut reloader = Reloader::start(path, config, snapshot.clone(), metrics.clone());
                let _ = handle_tx.send(reloader.handle());
                // The admin listener as `serve` runs it, for /metrics.
                let _admin = listener.map(|listener| {
                    let state = AdminState {
                        snapshot,
                        journal: reloader.journal(),
                        loaded: reloader.loaded(),
                        reload: reloader.handle(),
                        state_dir: None,
                        started: (std::time::Instant::now(), std::time::SystemTime::now()),
                        metrics: Some(metrics),
                        cluster: None,
                    };
                    AbortOnDrop(tokio::spawn(async move {
                        let _ = listener.serve(state).await;
                    }))
                });
                tokio::select! {
                    _ = stopped => {}
                    _ = reloader.run() => {}
                }
                reloader.stop();
            }
        };
        let thread = std::thread::spawn(move || server.run_until(snapshot, background));
        let reload = handle_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the reloader starts");
        Running {
            addr,
            admin,
            metrics,
            reload,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Reloads the config file as SIGHUP does; panics when refused.
    fn reload(&self) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), self.reload.reload()).await
        });
        outcome
            .expect("the reload finishes")
            .unwrap_or_else(|e| panic!("reload refused: {e}"));
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let result = thread.join();
            if !std::thread::panicking() {
                result.unwrap().unwrap();
            }
        }
    }
}

#[test]
fn a_scrape_counts_what_was_answered() {
    let dir = common::TempDir::new("metrics");
    // A payload the probe finds up, and a port nothing listens on.
    let payload = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = payload.local_addr().unwrap().port();
    let down = common::free_port();
    dir.write(
        "svc.test.zone",
        "$TTL 300\n@ SOA ns1 hostmaster 2026120101 7200 900 1209600 60\n@ NS ns1\nns1 A 192.0.2.53\n",
    );
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 3\n\
         [[zone]]\norigin = \"svc.test.\"\nfile = \"svc.test.zone\"\n\
         [monitor.up]\nprotocol = \"tcp\"\nport = {up}\ninterval = \"1s\"\ntimeout = \"500ms\"\n\
         tolerated-failures = 0\n\
         [monitor.down]\nprotocol = \"tcp\"\nport = {down}\ninterval = \"1s\"\ntimeout = \"500ms\"\n\
         tolerated-failures = 0\n\
         [[service]]\nname = \"www.svc.test.\"\nrouting = \"priority\"\nendpoints = [\n\
         {{ name = \"a\", addresses = [\"127.0.0.1\"], priority = 1, monitor = \"up\" }},\n\
         {{ name = \"b\", addresses = [\"127.0.0.2\"], priority = 2, monitor = \"down\" }},\n]\n"
    );
    let path = dir.write("steerdns.toml", &text);
    let running = Running::start(path);
    let (addr, metrics) = (running.addr, running.metrics.clone());

    // Known traffic: 30 A over UDP (three workers share them), 4 with
    // ECS, 5 NXDOMAIN, 2 REFUSED; 3 A over TCP.
    let udp = QueryOpts::default();
    let tcp = QueryOpts {
        tcp: true,
        ..QueryOpts::default()
    };
    for _ in 0..30 {
        let m = query(addr, "www.svc.test.", RecordType::A, &udp).unwrap();
        assert_eq!(m.response_code(), ResponseCode::NoError);
    }
    for _ in 0..4 {
        let (m, _) = query_ecs(
            addr,
            "www.svc.test.",
            RecordType::AAAA,
            Some(("198.51.100.0", 24)),
        );
        assert_eq!(m.response_code(), ResponseCode::NoError);
    }
    for _ in 0..5 {
        let m = query(addr, "nope.svc.test.", RecordType::TXT, &udp).unwrap();
        assert_eq!(m.response_code(), ResponseCode::NXDomain);
    }
    for _ in 0..2 {
        query(addr, "example.org.", RecordType::MX, &udp).unwrap();
    }
    for _ in 0..3 {
        query(addr, "www.svc.test.", RecordType::A, &tcp).unwrap();
    }

    // Probes run once a second; wait for a verdict on both.
    let mut text = String::new();
    common::eventually(Duration::from_secs(10), "both probes report", || {
        text = metrics.encode();
        text.contains("steerdns_probes_total{probe=") && text.matches("result=").count() >= 2
    });
    let udp_a = "steerdns_queries_total{transport=\"udp\",type=\"A\",rcode=\"NOERROR\"}";
    for (series, want) in [
        (udp_a, 30.0),
        (
            "steerdns_queries_total{transport=\"udp\",type=\"AAAA\",rcode=\"NOERROR\"}",
            4.0,
        ),
        (
            "steerdns_queries_total{transport=\"udp\",type=\"TXT\",rcode=\"NXDOMAIN\"}",
            5.0,
        ),
        (
            "steerdns_queries_total{transport=\"udp\",type=\"MX\",rcode=\"REFUSED\"}",
            2.0,
        ),
        (
            "steerdns_queries_total{transport=\"tcp\",type=\"A\",rcode=\"NOERROR\"}",
            3.0,
        ),
        ("steerdns_ecs_queries_total{transport=\"udp\"}", 4.0),
        ("steerdns_truncated_total{transport=\"udp\"}", 0.0),
        ("steerdns_tcp_connections_total", 3.0),
        (
            "steerdns_service_answers_total{service=\"www.svc.test.\"}",
            37.0,
        ),
        ("steerdns_zone_serial{zone=\"svc.test.\"}", 2026120101.0),
    ] {
        assert_eq!(sample(&text, series), want, "{series} in:\n{text}");
    }
    let up_target = format!("target=\"127.0.0.1:{up}\"");
    let down_target = format!("target=\"127.0.0.2:{down}\"");
    common::eventually(Duration::from_secs(10), "health settles", || {
        text = metrics.encode();
        text.lines().any(|l| {
            l.starts_with("steerdns_endpoint_up{") && l.contains(&down_target) && l.ends_with(" 0")
        })
    });
    let line = |prefix: &str, target: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix) && l.contains(target))
            .unwrap_or_else(|| panic!("no {prefix}..{target} in:\n{text}"))
            .to_string()
    };
    assert!(line("steerdns_endpoint_up{", &up_target).ends_with(" 1"));
    assert!(line("steerdns_probes_total{", &up_target).contains("result=\"ok\""));
    assert!(line("steerdns_probes_total{", &down_target).contains("result=\"failed\""));
    assert!(line("steerdns_probe_changes_total{", &down_target).contains("to=\"down\""));
    assert!(text.contains("steerdns_probe_duration_seconds_bucket{"));
    assert!(sample(&text, "steerdns_config_age_seconds") < 60.0);
}

#[test]
fn count_queries_off_leaves_udp_counters_alone() {
    let dir = common::TempDir::new("metrics-off");
    dir.write("svc.test.zone", SVC_ZONE);
    let path = dir.write(
        "steerdns.toml",
        "[server]\nlisten = [\"127.0.0.1:0\"]\ncount-queries = false\n\
         [[zone]]\norigin = \"svc.test.\"\nfile = \"svc.test.zone\"\n",
    );
    let running = Running::start(path);
    let udp = QueryOpts::default();
    let tcp = QueryOpts {
        tcp: true,
        ..QueryOpts::default()
    };
    for _ in 0..10 {
        let m = query(running.addr, "ns1.svc.test.", RecordType::A, &udp).unwrap();
        assert_eq!(m.response_code(), ResponseCode::NoError);
    }
    query(running.addr, "ns1.svc.test.", RecordType::A, &tcp).unwrap();
    let text = running.metrics.encode();
    let series = |t: &str| {
        format!("steerdns_queries_total{{transport=\"{t}\",type=\"A\",rcode=\"NOERROR\"}}")
    };
    // UDP answers go uncounted; TCP is counted as before.
    assert_eq!(sample(&text, &series("udp")), 0.0, "{text}");
    assert_eq!(sample(&text, &series("tcp")), 1.0, "{text}");
}

/// The zone of the endpoint tests.
const SVC_ZONE: &str =
    "$TTL 300\n@ SOA ns1 hostmaster 2026120101 7200 900 1209600 60\n@ NS ns1\nns1 A 192.0.2.53\n";

/// The `steerdns_endpoint_answers_total` series of `service` and
/// `endpoint`.
fn endpoint_series(service: &str, endpoint: &str) -> String {
    format!("steerdns_endpoint_answers_total{{service=\"{service}\",endpoint=\"{endpoint}\"}}")
}

/// `steerdns_endpoint_answers_total` for `service` and `endpoint`.
fn endpoint_answers(text: &str, service: &str, endpoint: &str) -> f64 {
    sample(text, &endpoint_series(service, endpoint))
}

/// Checks `steerdns_endpoint_answers_total` for each (service, endpoint,
/// count) of `want`.
fn assert_endpoint_answers(text: &str, want: &[(&str, &str, f64)]) {
    for &(service, endpoint, n) in want {
        assert_eq!(
            endpoint_answers(text, service, endpoint),
            n,
            "{service} {endpoint} in:\n{text}"
        );
    }
}

#[test]
fn answers_are_counted_by_endpoint_across_nesting_and_reloads() {
    let dir = common::TempDir::new("metrics-endpoints");
    dir.write("svc.test.zone", SVC_ZONE);
    let head = "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 2\n\
                [[zone]]\norigin = \"svc.test.\"\nfile = \"svc.test.zone\"\n";
    let multivalue = |y: &str| {
        format!(
            "[[service]]\nname = \"mv.svc.test.\"\nrouting = \"multivalue\"\nendpoints = [\n\
             {{ name = \"x\", addresses = [\"192.0.2.11\", \"2001:db8::11\"] }},\n\
             {{ name = \"{y}\", addresses = [\"192.0.2.12\"] }},\n]\n"
        )
    };
    let nested = "[[service]]\nname = \"top.svc.test.\"\nrouting = \"priority\"\nendpoints = [\n\
                  { name = \"inner\", service = \"mv.svc.test.\", priority = 1 },\n\
                  { name = \"backup\", addresses = [\"192.0.2.99\"], priority = 2 },\n]\n";
    let alias = "[[service]]\nname = \"alias.svc.test.\"\nrouting = \"priority\"\nendpoints = [\n\
                 { name = \"c\", cname = \"www.example.org.\", priority = 1 },\n]\n";
    // A `self` service has no endpoints: the numbering skips it.
    let itself = "[[service]]\nname = \"self.svc.test.\"\nrouting = \"self\"\n";
    let path = dir.write(
        "steerdns.toml",
        &format!("{head}{itself}{}{nested}{alias}", multivalue("y")),
    );
    let running = Running::start(path);
    let addr = running.addr;
    let udp = QueryOpts::default();
    let ask = |name: &str, rtype: RecordType, times: usize| {
        for _ in 0..times {
            let m = query(addr, name, rtype, &udp).unwrap();
            assert_eq!(m.response_code(), ResponseCode::NoError, "{name} {rtype}");
        }
    };
    // Multivalue answers every endpoint with an address of the family;
    // a nested answer counts for the endpoints of the service that
    // decided it; ANY over UDP answers both families but counts an
    // endpoint once; a CNAME endpoint counts too.
    ask("mv.svc.test.", RecordType::A, 5);
    ask("mv.svc.test.", RecordType::AAAA, 3);
    ask("top.svc.test.", RecordType::A, 4);
    ask("mv.svc.test.", RecordType::ANY, 2);
    ask("alias.svc.test.", RecordType::A, 2);
    // NODATA answers no endpoint.
    ask("alias.svc.test.", RecordType::TXT, 1);

    let text = running.metrics.encode();
    assert_endpoint_answers(
        &text,
        &[
            ("mv.svc.test.", "x", 5.0 + 3.0 + 4.0 + 2.0),
            ("mv.svc.test.", "y", 5.0 + 4.0 + 2.0),
            ("top.svc.test.", "inner", 0.0),
            ("top.svc.test.", "backup", 0.0),
            ("alias.svc.test.", "c", 2.0),
        ],
    );
    assert_eq!(
        sample(
            &text,
            "steerdns_service_answers_total{service=\"top.svc.test.\"}"
        ),
        4.0
    );

    // Answers after that scrape and before the reload are named at the
    // reload, by the snapshot they were made under.
    ask("mv.svc.test.", RecordType::A, 2);
    // The reload moves every service and endpoint to another index and
    // renames y to z: counts stay with the names they were made under.
    dir.write(
        "steerdns.toml",
        &format!("{head}{alias}{itself}{nested}{}", multivalue("z")),
    );
    running.reload();
    ask("mv.svc.test.", RecordType::A, 3);
    ask("alias.svc.test.", RecordType::A, 1);
    ask("self.svc.test.", RecordType::A, 1);
    let text = running.metrics.encode();
    assert_endpoint_answers(
        &text,
        &[
            ("mv.svc.test.", "x", 14.0 + 2.0 + 3.0),
            ("mv.svc.test.", "y", 11.0 + 2.0),
            ("mv.svc.test.", "z", 3.0),
            ("alias.svc.test.", "c", 3.0),
            ("top.svc.test.", "inner", 0.0),
            ("other", "other", 0.0),
        ],
    );
}

/// `GET path` from the admin listener at `admin`: the body of a 200.
fn http_get(admin: SocketAddr, path: &str) -> String {
    let mut tcp = std::net::TcpStream::connect(admin).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").expect("a whole reply");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    body.to_string()
}

/// Parses a scrape in the Prometheus text format: every line a comment
/// (`# HELP`, `# TYPE`, `# UNIT`, `# EOF`) or `series value` with a
/// number, no series twice. Returns the value of each series.
fn parse_scrape(text: &str) -> BTreeMap<String, f64> {
    let mut series = BTreeMap::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(
                ["HELP ", "TYPE ", "UNIT "]
                    .iter()
                    .any(|k| comment.starts_with(k))
                    || comment == "EOF",
                "bad comment {line:?}"
            );
            continue;
        }
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert!(
            series.insert(name.to_string(), value).is_none(),
            "{name} twice"
        );
    }
    assert!(text.ends_with('\n'), "cut short: {text:?}");
    series
}

/// Whether `series` (a metric name with labels) is a counter or part of a
/// histogram: values that may only grow.
fn grows(series: &str) -> bool {
    let name = series.split('{').next().unwrap_or(series);
    ["_total", "_bucket", "_count", "_sum"]
        .iter()
        .any(|s| name.ends_with(s))
}

#[test]
fn scrapes_under_a_udp_flood_parse_grow_and_add_up() {
    const THREADS: usize = 3;
    const PER_THREAD: usize = 4000;
    let dir = common::TempDir::new("metrics-flood");
    dir.write("svc.test.zone", SVC_ZONE);
    let path = dir.write(
        "steerdns.toml",
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 2\n[rrl]\nenabled = false\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [[zone]]\norigin = \"svc.test.\"\nfile = \"svc.test.zone\"\n\
         [[service]]\nname = \"www.svc.test.\"\nrouting = \"weighted\"\nendpoints = [\n\
         { name = \"a\", addresses = [\"192.0.2.1\"] },\n\
         { name = \"b\", addresses = [\"192.0.2.2\"] },\n]\n",
    );
    let running = Running::start(path);
    let (addr, admin) = (running.addr, running.admin.unwrap());

    // The flood: a fixed number of A queries per thread, each sent once
    // (a retry would count twice) and its reply awaited, so no queue
    // overflows and every query reaches a worker.
    let query = common::build_query(
        &common::name("www.svc.test."),
        RecordType::A,
        &QueryOpts::default(),
    )
    .to_vec()
    .unwrap();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flood: Vec<_> = (0..THREADS)
        .map(|t| {
            let (query, done) = (query.clone(), done.clone());
            std::thread::spawn(move || {
                let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                socket.connect(addr).unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                let mut query = query;
                let mut reply = [0u8; 512];
                let mut lost = 0;
                for i in 0..PER_THREAD {
                    let id = (t * PER_THREAD + i) as u16;
                    query[..2].copy_from_slice(&id.to_be_bytes());
                    socket.send(&query).unwrap();
                    match socket.recv(&mut reply) {
                        Ok(n) if n >= 2 && reply[..2] == id.to_be_bytes() => {}
                        _ => lost += 1,
                    }
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                lost
            })
        })
        .collect();

    // Scrape over HTTP while it runs (bounded in count and time).
    let udp_a = "steerdns_queries_total{transport=\"udp\",type=\"A\",rcode=\"NOERROR\"}";
    let total = (THREADS * PER_THREAD) as f64;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut previous: BTreeMap<String, f64> = BTreeMap::new();
    let (mut scrapes, mut mid_flood) = (0, 0);
    while done.load(std::sync::atomic::Ordering::SeqCst) < THREADS && scrapes < 100_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the flood does not end"
        );
        let now = parse_scrape(&http_get(admin, "/metrics"));
        for (series, &before) in previous.iter().filter(|(s, _)| grows(s.as_str())) {
            let after = now.get(series).copied().unwrap_or(0.0);
            assert!(after >= before, "{series} went from {before} to {after}");
        }
        let seen = now.get(udp_a).copied().unwrap_or(0.0);
        assert!(seen <= total, "{seen} queries counted of {total} sent");
        if seen > 0.0 && seen < total {
            mid_flood += 1;
        }
        previous = now;
        scrapes += 1;
    }
    let lost: usize = flood.into_iter().map(|t| t.join().unwrap()).sum();

    let last = parse_scrape(&http_get(admin, "/metrics"));
    println!("{scrapes} scrapes, {mid_flood} during the flood; {lost} replies lost");
    assert!(mid_flood > 0, "no scrape ran during the flood");
    assert_eq!(lost, 0, "replies lost");
    assert_eq!(last.get(udp_a), Some(&total));
    assert_eq!(
        last.get("steerdns_service_answers_total{service=\"www.svc.test.\"}"),
        Some(&total)
    );
    // Weighted answers name one endpoint each.
    let by_endpoint: f64 = ["a", "b"]
        .iter()
        .map(|e| {
            last.get(&endpoint_series("www.svc.test.", e))
                .copied()
                .unwrap_or(0.0)
        })
        .sum();
    assert_eq!(by_endpoint, total);
}
