//! Metrics as a scrape sees them: the server runs in this process (as in
//! `tests/zero_alloc.rs`), with its reloader and probes as `serve` starts
//! them; known queries go over real UDP and TCP sockets, and the counters
//! in `Metrics::encode`'s text must match what was sent, summed over the
//! UDP workers.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use common::{query, query_ecs, QueryOpts};
use steerdns::config::Config;
use steerdns::reload::Reloader;
use steerdns::server::Server;
use steerdns::snapshot::Snapshot;

/// The value of the sample line `series` (name and labels exactly as
/// encoded) in `text`, or 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
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
    let config = Config::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::load(&config).unwrap()));
    let server = Server::bind(&config).unwrap();
    let addr: SocketAddr = server.local_addrs()[0];
    let metrics = server.metrics();
    metrics.loaded_now();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let background = {
        let (snapshot, metrics) = (snapshot.clone(), metrics.clone());
        async move {
            let mut reloader = Reloader::start(path, config, snapshot, metrics);
            let _ = stopped.await;
            reloader.stop();
        }
    };
    let running = std::thread::spawn(move || server.run_until(snapshot, background));

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

    let _ = stop.send(());
    running.join().unwrap().unwrap();
}
