//! TTL-aware drain against the running binary: an endpoint with a TTL of
//! 2 s answers one query, is drained, and `steerdns drain --wait` returns
//! once the last answer naming it has expired: not before the query's
//! time plus the TTL, and within a bounded margin after it. A `--wait`
//! whose `--timeout` is too short exits non-zero, as does one with no
//! server to ask; maintenance windows in the config show on the API.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::rr::{RData, RecordType};

use common::{free_port, output_within, query, steerdns_bin, QueryOpts, ServerProcess, TempDir};

const ZONE: &str = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n@ NS ns1\n\
                    ns1 A 127.0.0.1\n";

/// The TTL of the drained endpoint's answers.
const TTL: u64 = 2;

/// The A records answered for `name`.
fn addresses(server: &ServerProcess, name: &str) -> Vec<IpAddr> {
    let m = query(server.addr(), name, RecordType::A, &QueryOpts::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect()
}

/// Runs `steerdns drain` with `args`; its exit success, output and how
/// long it took.
fn drain(config: &Path, args: &[&str]) -> (bool, String, Duration) {
    let mut command = Command::new(steerdns_bin());
    command
        .arg("drain")
        .arg("--config")
        .arg(config)
        .args(["--service", "api.example.com", "--endpoint", "a"])
        .args(args);
    let started = Instant::now();
    let out = output_within(command, Duration::from_secs(30));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text, started.elapsed())
}

/// Unix time now, in seconds (fractional).
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn a_maintenance_window_drains_and_returns_on_time() {
    let home = TempDir::new("window");
    let port = free_port();
    home.write("zones/example.com.zone", ZONE);
    // A window of 3 s starting 4 whole seconds from now.
    let start = unix_now().ceil() as u64 + 4;
    let end = start + 3;
    let at =
        |t: u64| steerdns::admin::status::rfc3339(std::time::UNIX_EPOCH + Duration::from_secs(t));
    let config = home.write(
        "steerdns.toml",
        &format!(
            r#"[server]
listen = ["127.0.0.1:{port}"]
workers = 1
[[zone]]
origin = "example.com."
file = "zones/example.com.zone"

[[service]]
name = "api.example.com."
routing = "priority"
endpoints = [
  {{ name = "a", addresses = ["192.0.2.20"], priority = 1 }},
  {{ name = "b", addresses = ["198.51.100.20"], priority = 2 }},
]

[[maintenance]]
start = "{}"
end = "{}"
service = "api.example.com."
endpoint = "a"
"#,
            at(start),
            at(end)
        ),
    );
    let logs = TempDir::new("window-logs");
    let mut command = Command::new(steerdns_bin());
    command.arg("serve").arg("--config").arg(&config);
    let server = ServerProcess::start("steerdns", command, logs, port, "example.com.");
    let a: IpAddr = "192.0.2.20".parse().unwrap();
    // Where the answers switch: (time, answered a), every 100 ms until a
    // second and a half after the end.
    let mut seen: Vec<(f64, bool)> = Vec::new();
    while unix_now() < end as f64 + 1.5 {
        let on_a = addresses(&server, "api.example.com.") == [a];
        if seen.last().is_none_or(|&(_, last)| last != on_a) {
            seen.push((unix_now(), on_a));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs = server.logs();
    assert_eq!(seen.len(), 3, "a, then b, then a again: {seen:?}\n{logs}");
    let (off, on) = (seen[1].0, seen[2].0);
    assert!(seen[0].1 && !seen[1].1 && seen[2].1, "{seen:?}");
    // Applied once a second: at most a tick and a query late (with room
    // for a loaded machine).
    let (start, end) = (start as f64, end as f64);
    assert!(
        off >= start && off <= start + 1.3,
        "drained at {off}, window from {start}"
    );
    assert!(
        on >= end && on <= end + 1.3,
        "back at {on}, window until {end}"
    );
    assert!(logs.contains("maintenance window started"), "{logs}");
    assert!(logs.contains("maintenance window ended"), "{logs}");
}

#[test]
fn drain_wait_returns_once_the_last_answer_has_expired() {
    let home = TempDir::new("drain-wait");
    let (port, admin_port) = (free_port(), free_port());
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

[[service]]
name = "api.example.com."
routing = "priority"
ttl = {TTL}
endpoints = [
  {{ name = "a", addresses = ["192.0.2.20"], priority = 1 }},
  {{ name = "b", addresses = ["198.51.100.20"], priority = 2 }},
]

[[maintenance]]
start = "2000-01-01T00:00:00Z"
end = "2000-01-01T01:00:00Z"
node = true
note = "long over"

[[maintenance]]
start = "2099-01-01T00:00:00Z"
end = "2099-01-01T01:00:00Z"
service = "api.example.com."
endpoint = "b"
note = "planned"

[admin]
listen = "127.0.0.1:{admin_port}"
"#
        ),
    );
    let logs = TempDir::new("drain-wait-logs");
    let mut command = Command::new(steerdns_bin());
    command.arg("serve").arg("--config").arg(&config);
    let server = ServerProcess::start("steerdns", command, logs, port, "example.com.");
    let a: IpAddr = "192.0.2.20".parse().unwrap();
    let b: IpAddr = "198.51.100.20".parse().unwrap();

    // Past the server's start plus the TTL: the server counts its start as
    // the last answer of anything it has not answered since (an earlier
    // process may have), so only the query below can make a not safe.
    std::thread::sleep(Duration::from_secs(TTL + 1));
    // The last answer naming a, just before the drain.
    assert_eq!(addresses(&server, "api.example.com."), [a]);
    let answered = Instant::now();

    // Too short a timeout: not safe yet, so it fails, after the timeout.
    let (ok, text, took) = drain(&config, &["--wait", "--timeout", "1s"]);
    assert!(!ok, "a 1 s wait on a 2 s TTL succeeded: {text}");
    assert!(
        text.contains("not safe to stop within the timeout"),
        "{text}"
    );
    assert!(took >= Duration::from_secs(1), "gave up after {took:?}");

    // Long enough: it returns once the answer has expired.
    let (ok, text, _) = drain(&config, &["--wait", "--timeout", "20s"]);
    let waited = answered.elapsed();
    assert!(ok, "{text}\n{}", server.logs());
    assert!(text.contains("safe to stop now"), "{text}");
    // Never before the answer's expiry; the server knows whole seconds
    // (up to 1 s late) and is asked every 250 ms.
    let ttl = Duration::from_secs(TTL);
    assert!(
        waited >= ttl,
        "returned {waited:?} after the answer, TTL {ttl:?}"
    );
    assert!(
        waited <= ttl + Duration::from_millis(1800),
        "returned {waited:?} after the answer, TTL {ttl:?}: {text}"
    );
    // Drained: b answers now.
    assert_eq!(addresses(&server, "api.example.com."), [b]);

    // The API says the same, and shows the windows, the future one
    // upcoming.
    let api = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let get = |path: &str| -> serde_json::Value {
        let (code, body) = rt
            .block_on(steerdns::admin::client::get(
                api,
                path,
                None,
                Duration::from_secs(5),
            ))
            .unwrap();
        assert!(code.is_success(), "{path}: {code}");
        serde_json::from_slice(&body).unwrap()
    };
    let drains = get("/api/v1/drain");
    let safe = &drains["safe"][0];
    assert_eq!(safe["target"], "api.example.com. endpoint a", "{drains}");
    assert_eq!(
        (safe["in_force"].as_bool(), safe["ttl"].as_u64()),
        (Some(true), Some(TTL))
    );
    assert_eq!(safe["safe_in_seconds"], 0, "{drains}");
    let status = get("/api/v1/status");
    let windows = status["maintenance"].as_array().unwrap();
    let phases: Vec<_> = windows
        .iter()
        .map(|w| w["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["over", "upcoming"], "{status}");
    assert_eq!(windows[1]["target"], "api.example.com. endpoint b");

    // Without --wait, a drain reports the safe time and returns.
    let (ok, text, _) = drain(&config, &[]);
    assert!(ok && text.contains("safe to stop now"), "{text}");

    // With the server stopped, a drain is still written (the file is the
    // truth); only --wait, which needs the server, fails.
    drop(server);
    let (ok, text, _) = drain(&config, &[]);
    assert!(ok && text.contains("cannot ask the server"), "{text}");
    let (ok, text, took) = drain(&config, &["--wait", "--timeout", "1s"]);
    assert!(!ok && text.contains("cannot reach the admin API"), "{text}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}
