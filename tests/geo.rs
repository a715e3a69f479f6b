//! Geographic and closest-endpoint routing over real sockets: a database
//! written by the test, steerdns answering ECS queries from clients placed
//! in different countries, `explain` showing the record that decided, and
//! SIGHUP picking up a new database while a broken one is refused.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use common::geodb::world;
use common::{addresses, free_port, query_ecs, steerdns_bin, ServerProcess, TempDir};

const ZONE: &str =
    "$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n@ NS ns1\nns1 A 127.0.0.1\n";

struct Geo {
    server: ServerProcess,
    home: TempDir,
    config: std::path::PathBuf,
}

impl Geo {
    fn start() -> Geo {
        let home = TempDir::new("geo");
        let port = free_port();
        home.write("zones/example.com.zone", ZONE);
        world("GB").write(&home.path().join("city.mmdb"));
        let config = home.write(
            "steerdns.toml",
            &format!(
                r#"[server]
listen = ["127.0.0.1:{port}"]
workers = 1
[geoip]
database = "city.mmdb"
[[zone]]
origin = "example.com."
file = "zones/example.com.zone"

[[service]]
name = "geo.example.com."
routing = "geographic"
endpoints = [
  {{ name = "lon", addresses = ["192.0.2.1", "2001:db8::1"] }},
  {{ name = "fra", addresses = ["192.0.2.2"] }},
  {{ name = "sfo", addresses = ["192.0.2.3", "2001:db8::3"] }},
  {{ name = "iad", addresses = ["192.0.2.4"] }},
]
regions = {{ "GB" = ["lon", "fra"], "EU" = ["fra"], "US-CA" = ["sfo"], "NA" = ["iad"], "*" = ["iad"] }}

[[service]]
name = "near.example.com."
routing = "performance"
default = "iad"
endpoints = [
  {{ name = "lon", addresses = ["192.0.2.1"], location = [51.5, -0.1] }},
  {{ name = "fra", addresses = ["192.0.2.2"], location = [50.1, 8.7] }},
  {{ name = "sfo", addresses = ["192.0.2.3"], location = [37.8, -122.4] }},
  {{ name = "iad", addresses = ["192.0.2.4"], location = [38.9, -77.0] }},
]
overrides = {{ "81.2.69.128/25" = ["sfo"] }}
"#
            ),
        );
        let logs = TempDir::new("geo-logs");
        let mut command = Command::new(steerdns_bin());
        command.arg("serve").arg("--config").arg(&config);
        let server = ServerProcess::start("steerdns", command, logs, port, "example.com.");
        Geo {
            server,
            home,
            config,
        }
    }

    fn ask(
        &self,
        qname: &str,
        rtype: RecordType,
        addr: &str,
        len: u8,
    ) -> (Vec<String>, Option<u8>) {
        let (m, scope) = query_ecs(self.server.addr(), qname, rtype, Some((addr, len)));
        (addresses(&m), scope)
    }

    /// What `steerdns explain` prints for `name` (type A) asked by `client`.
    fn explain(&self, client: &str, name: &str) -> String {
        let out = Command::new(steerdns_bin())
            .args(["explain", "--client", client, name, "A", "--config"])
            .arg(&self.config)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends SIGHUP and waits for the logged outcome.
    fn reload(&mut self) -> &'static str {
        let log =
            || std::fs::read_to_string(self.server.dir().join("stderr.log")).unwrap_or_default();
        let count = |l: &str| l.matches("reload done").count() + l.matches("reload failed").count();
        let before = count(&log());
        self.server.signal_group(libc::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let l = log();
            if count(&l) > before {
                let done = l.rfind("reload done");
                return if done.is_some() && done > l.rfind("reload failed") {
                    "reload done"
                } else {
                    "reload failed"
                };
            }
            assert!(Instant::now() < deadline, "no reload outcome:\n{l}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn clients_in_different_places_get_their_own_endpoint_and_scope() {
    let geo = Geo::start();
    let a = |ip: &str| vec![ip.to_string()];
    for (client, len, want, scope) in [
        ("81.2.69.0", 24, "192.0.2.1", 24),    // GB: lon
        ("2.125.170.0", 24, "192.0.2.2", 19),  // DE: EU's fra, the /19 of the record
        ("216.160.83.0", 24, "192.0.2.3", 24), // US-CA: sfo
        ("216.160.84.0", 24, "192.0.2.4", 22), // US-NY: NA's iad, as all of /22
        ("1.130.0.0", 16, "192.0.2.4", 7),     // AU: `*`, as all of 0/7
    ] {
        assert_eq!(
            geo.ask("geo.example.com.", RecordType::A, client, len),
            (a(want), Some(scope)),
            "{client}/{len}"
        );
    }
    // IPv6 client in California, AAAA.
    assert_eq!(
        geo.ask(
            "geo.example.com.",
            RecordType::AAAA,
            "2001:db8:aa:100::",
            56
        ),
        (a("2001:db8::3"), Some(48))
    );
    // IPv4 written in IPv6 (mapped, 6to4) is placed as that IPv4 client;
    // the scope counts the IPv6 bits above it.
    assert_eq!(
        geo.ask("geo.example.com.", RecordType::A, "::ffff:81.2.69.0", 120),
        (a("192.0.2.1"), Some(120))
    );
    assert_eq!(
        geo.ask("geo.example.com.", RecordType::A, "2002:d8a0:5300::", 40),
        (a("192.0.2.3"), Some(40)),
        "6to4 of 216.160.83.0/24 (US-CA)"
    );
    // Never longer than the source prefix.
    assert_eq!(
        geo.ask("geo.example.com.", RecordType::A, "81.2.0.0", 16).1,
        Some(16)
    );
    // Performance: nearest; New York's nearest is Washington.
    assert_eq!(
        geo.ask("near.example.com.", RecordType::A, "216.160.84.0", 24)
            .0,
        a("192.0.2.4")
    );
    assert_eq!(
        geo.ask("near.example.com.", RecordType::A, "2.125.170.0", 24)
            .0,
        a("192.0.2.2")
    );
    // An operator's prefix override: half of London's /24 goes to sfo;
    // each half is its own scope.
    assert_eq!(
        geo.ask("near.example.com.", RecordType::A, "81.2.69.128", 25),
        (a("192.0.2.3"), Some(25))
    );
    assert_eq!(
        geo.ask("near.example.com.", RecordType::A, "81.2.69.0", 25),
        (a("192.0.2.1"), Some(25))
    );
    // Unplaced: the default.
    assert_eq!(
        geo.ask("near.example.com.", RecordType::A, "192.0.2.0", 24)
            .0,
        a("192.0.2.4")
    );

    // explain shows the record, the region that matched and the scope.
    let text = geo.explain("81.2.69.0/24", "geo.example.com");
    for want in [
        "database  81.2.69.0/24: continent EU, country GB, subdivision ENG, at 51.5100, -0.1300",
        "region GB matches: [lon, fra]",
        "endpoint lon: fit: chosen",
        "ECS scope /24",
    ] {
        assert!(text.contains(want), "missing {want:?}:\n{text}");
    }
    let text = geo.explain("216.160.84.0/24", "near.example.com");
    assert!(
        text.contains("iad: 3") && text.contains("km away"),
        "{text}"
    );
    let text = geo.explain("81.2.69.200/32", "near.example.com");
    for want in [
        "override 81.2.69.128/25 matches: [sfo] first",
        "ECS scope /25",
    ] {
        assert!(
            text.contains(want),
            "missing {want:?}:
{text}"
        );
    }
}

#[test]
fn sighup_takes_a_new_database_and_refuses_a_broken_one() {
    let mut geo = Geo::start();
    let db = geo.home.path().join("city.mmdb");
    let lon = (vec!["192.0.2.1".to_string()], Some(24));
    assert_eq!(
        geo.ask("geo.example.com.", RecordType::A, "81.2.69.0", 24),
        lon
    );
    // The network moves to Ireland (EU, not GB): EU's list answers.
    world("IE").write(&db);
    assert_eq!(geo.reload(), "reload done");
    assert_eq!(
        geo.ask("geo.example.com.", RecordType::A, "81.2.69.0", 24)
            .0,
        ["192.0.2.2"]
    );
    // A broken file is refused; the table loaded before keeps answering.
    std::fs::write(&db, b"not a database").unwrap();
    assert_eq!(geo.reload(), "reload failed");
    let log = std::fs::read_to_string(geo.server.dir().join("stderr.log")).unwrap();
    assert!(log.contains("city.mmdb: not a usable MaxMind DB"), "{log}");
    assert_eq!(
        geo.ask("geo.example.com.", RecordType::A, "81.2.69.0", 24)
            .0,
        ["192.0.2.2"]
    );
}
