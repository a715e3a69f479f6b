//! Routing methods over real sockets: one steerdns with a service per
//! method, real HTTP payloads behind monitored endpoints, and queries with
//! and without EDNS Client Subnet read by an independent DNS decoder
//! (hickory). Unit tests of `policy` cover every rule; these show that the
//! running server answers, scopes, probes and drains as those rules say.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use common::{
    addresses, eventually, free_port, query_ecs, steerdns_bin, HttpPayload, ServerProcess, TempDir,
};

const ZONE: &str = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n@ NS ns1\n\
                    ns1 A 127.0.0.1\norigin A 192.0.2.200\n";

/// The server under test, its config folder and the payloads it probes.
struct Lab {
    server: ServerProcess,
    home: TempDir,
    config: std::path::PathBuf,
    primary: HttpPayload,
    _secondary: HttpPayload,
}

impl Lab {
    fn start() -> Lab {
        let home = TempDir::new("routing");
        let port = free_port();
        let (p1, p2) = (free_port(), free_port());
        let primary = HttpPayload::start(SocketAddr::from(([127, 0, 0, 1], p1)));
        let secondary = HttpPayload::start(SocketAddr::from(([127, 0, 0, 1], p2)));
        home.write("zones/example.com.zone", ZONE);
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
path = "/healthz"
interval = "300ms"
timeout = "250ms"
tolerated-failures = 0
successes-before-up = 1

[[service]]
name = "www.example.com."
routing = "weighted"
endpoints = [
  {{ name = "fra", addresses = ["192.0.2.10", "2001:db8::10"], weight = 1 }},
  {{ name = "iad", addresses = ["198.51.100.10", "2001:db8:1::10"], weight = 1 }},
]

[[service]]
name = "api.example.com."
routing = "priority"
ttl = 60
degraded-ttl = 7
endpoints = [
  {{ name = "primary", addresses = ["192.0.2.20"], priority = 1, monitor = "web", probe = "127.0.0.1:{p1}" }},
  {{ name = "secondary", addresses = ["198.51.100.20"], priority = 2, monitor = "web", probe = "127.0.0.1:{p2}" }},
]

[[service]]
name = "strict.example.com."
routing = "priority"
when-all-down = "servfail"
endpoints = [
  {{ name = "only", addresses = ["192.0.2.30"], priority = 1, monitor = "web", probe = "127.0.0.1:{p1}" }},
]

[[service]]
name = "office.example.com."
routing = "subnet"
endpoints = [
  {{ name = "berlin", addresses = ["192.0.2.41"], subnets = ["10.1.0.0/16", "2001:db8:b::/48"] }},
  {{ name = "corp", addresses = ["192.0.2.42"], subnets = ["10.0.0.0/8"] }},
  {{ name = "internet", addresses = ["192.0.2.43"] }},
]

[[service]]
name = "pool.example.com."
routing = "multivalue"
max-answers = 2
endpoints = [
  {{ name = "a", addresses = ["192.0.2.31"] }},
  {{ name = "b", addresses = ["192.0.2.32"] }},
  {{ name = "c", addresses = ["192.0.2.33"] }},
]

[[service]]
name = "assets.example.com."
routing = "priority"
endpoints = [
  {{ name = "origin", cname = "origin.example.com.", priority = 1 }},
]

[[service]]
name = "app.example.com."
routing = "priority"
endpoints = [
  {{ name = "eu", service = "www.example.com.", priority = 1 }},
]
"#
            ),
        );
        let logs = TempDir::new("routing-logs");
        let mut command = Command::new(steerdns_bin());
        command.arg("serve").arg("--config").arg(&config);
        let server = ServerProcess::start("steerdns", command, logs, port, "example.com.");
        Lab {
            server,
            home,
            config,
            primary,
            _secondary: secondary,
        }
    }

    /// Asks `qname`, with an ECS option for `subnet` when given.
    fn ask(
        &self,
        qname: &str,
        rtype: RecordType,
        subnet: Option<(&str, u8)>,
    ) -> (Message, Option<u8>) {
        query_ecs(self.server.addr(), qname, rtype, subnet)
    }

    fn steerdns(&self, args: &[&str]) -> String {
        let out = Command::new(steerdns_bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

#[test]
fn each_method_answers_with_its_scope() {
    let lab = Lab::start();

    // Weighted: sticky per /24, scope /24; the same network keeps its
    // endpoint; AAAA comes from the same family of endpoints.
    let (m, scope) = lab.ask("www.example.com.", RecordType::A, Some(("203.0.113.0", 24)));
    let first = addresses(&m);
    assert_eq!((first.len(), scope), (1, Some(24)), "{m}");
    for _ in 0..5 {
        let (m, _) = lab.ask("www.example.com.", RecordType::A, Some(("203.0.113.0", 24)));
        assert_eq!(addresses(&m), first, "sticky per client network");
    }
    let (_, scope) = lab.ask("www.example.com.", RecordType::A, Some(("203.0.112.0", 20)));
    assert_eq!(scope, Some(20), "never past the source prefix");
    let (m, scope) = lab.ask(
        "www.example.com.",
        RecordType::AAAA,
        Some(("2001:db8:77::", 48)),
    );
    assert!(addresses(&m)[0].starts_with("2001:db8:"), "{m}");
    assert_eq!(scope, Some(48));
    // Over many networks both endpoints get clients.
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..64u8 {
        let net = format!("198.18.{i}.0");
        seen.extend(addresses(
            &lab.ask("www.example.com.", RecordType::A, Some((&net, 24)))
                .0,
        ));
    }
    assert_eq!(seen.len(), 2, "{seen:?}");

    // Subnet: the matched range's length, and for the rest a scope no
    // range splits.
    for (client, len, want, want_scope) in [
        ("10.1.2.0", 24, "192.0.2.41", 16),
        ("10.9.0.0", 24, "192.0.2.42", 13),
        ("192.0.2.0", 24, "192.0.2.43", 1),
        ("2001:db8:b:1::", 64, "192.0.2.41", 48),
    ] {
        let (m, scope) = lab.ask("office.example.com.", RecordType::A, Some((client, len)));
        assert_eq!(
            (addresses(&m), scope),
            (vec![want.to_string()], Some(want_scope)),
            "{client}/{len}"
        );
    }
    // Without ECS the resolver's own address decides, and no ECS comes back.
    let (m, scope) = lab.ask("office.example.com.", RecordType::A, None);
    assert_eq!(
        (addresses(&m), scope),
        (vec!["192.0.2.43".to_string()], None)
    );

    // Multivalue: two of three, scope 0, rotated between queries.
    let mut firsts = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (m, scope) = lab.ask(
            "pool.example.com.",
            RecordType::A,
            Some(("203.0.113.0", 24)),
        );
        assert_eq!((m.answers().len(), scope), (2, Some(0)));
        firsts.insert(m.answers()[0].data().to_string());
    }
    assert!(firsts.len() > 1, "rotation: {firsts:?}");

    // A CNAME endpoint into our own zone is followed in the answer.
    let (m, _) = lab.ask("assets.example.com.", RecordType::A, None);
    assert_eq!(m.answers()[0].record_type(), RecordType::CNAME);
    assert_eq!(addresses(&m), ["192.0.2.200"]);

    // Nested: the child (weighted) decides, and its scope comes back.
    let (m, scope) = lab.ask("app.example.com.", RecordType::A, Some(("203.0.113.0", 24)));
    assert_eq!((addresses(&m), scope), (first.clone(), Some(24)));

    // Priority: the primary, scope 0, normal TTL.
    let (m, scope) = lab.ask("api.example.com.", RecordType::A, Some(("203.0.113.0", 24)));
    assert_eq!(
        (addresses(&m), scope),
        (vec!["192.0.2.20".to_string()], Some(0))
    );
    assert_eq!(m.answers()[0].ttl(), 60);
}

#[test]
fn probes_and_drains_steer_answers() {
    let lab = Lab::start();
    let api = || lab.ask("api.example.com.", RecordType::A, None).0;
    eventually(Duration::from_secs(10), "primary answers", || {
        addresses(&api()) == ["192.0.2.20"]
    });

    // The primary's payload fails its probe: the secondary answers, with
    // the degraded TTL; `strict` has nothing left and says SERVFAIL.
    lab.primary.set_healthy(false);
    eventually(
        Duration::from_secs(10),
        "secondary after the probe fails",
        || addresses(&api()) == ["198.51.100.20"],
    );
    assert_eq!(api().answers()[0].ttl(), 7, "degraded TTL");
    let (m, _) = lab.ask("strict.example.com.", RecordType::A, None);
    assert_eq!(m.response_code(), ResponseCode::ServFail);
    lab.primary.set_healthy(true);
    eventually(Duration::from_secs(10), "primary back", || {
        addresses(&api()) == ["192.0.2.20"]
    });
    assert_eq!(api().answers()[0].ttl(), 60);

    // Draining an endpoint from the CLI takes it out within a second or
    // two (the server re-reads the drain file every second), and persists.
    let out = lab.steerdns(&[
        "drain",
        "--service",
        "api.example.com",
        "--endpoint",
        "primary",
    ]);
    assert!(out.contains("drained"), "{out}");
    assert!(
        std::fs::read_to_string(lab.home.path().join("state/drain.toml"))
            .unwrap()
            .contains("primary")
    );
    eventually(
        Duration::from_secs(5),
        "secondary while primary is drained",
        || addresses(&api()) == ["198.51.100.20"],
    );
    lab.steerdns(&[
        "undrain",
        "--service",
        "api.example.com",
        "--endpoint",
        "primary",
    ]);
    eventually(Duration::from_secs(5), "primary after undrain", || {
        addresses(&api()) == ["192.0.2.20"]
    });
}

#[test]
fn explain_shows_the_decision_and_the_records() {
    let lab = Lab::start();
    let text = lab.steerdns(&[
        "explain",
        "--client",
        "10.1.2.0/24",
        "office.example.com",
        "A",
    ]);
    for want in [
        "service   office.example.com. (subnet routing)",
        "fallback chain [berlin, corp, internet], holds for /16",
        "endpoint berlin: fit: chosen",
        "ECS scope /16",
        "office.example.com.\t30\tIN\tA\t192.0.2.41",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // What if the primary were down: offline, without touching the server.
    let json = lab.steerdns(&[
        "explain",
        "--client",
        "192.0.2.1",
        "--down",
        "primary",
        "--json",
        "api.example.com",
        "A",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["method"], "priority");
    assert_eq!(v["records"].as_array().unwrap().len(), 1);
    assert!(
        v["records"][0].as_str().unwrap().contains("198.51.100.20"),
        "{json}"
    );
    assert!(
        v["decisions"][0]["decision"]
            .as_str()
            .unwrap()
            .contains("[secondary]"),
        "{json}"
    );
    // The live server still answers with the primary.
    assert_eq!(
        addresses(&lab.ask("api.example.com.", RecordType::A, None).0),
        ["192.0.2.20"]
    );
    // An unknown endpoint is an error, not a silent no-op.
    let out = Command::new(steerdns_bin())
        .args([
            "explain",
            "--client",
            "192.0.2.1",
            "--down",
            "nope",
            "api.example.com",
        ])
        .arg("--config")
        .arg(&lab.config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no endpoint of that name"));
}
