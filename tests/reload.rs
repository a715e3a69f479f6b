//! Hot reload over real sockets: the real binary, its config and zone
//! files rewritten, `SIGHUP` sent, answers read with a real DNS client.
//! Completion of a reload is read from the server's log ("reload done").

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use common::{
    eventually, free_port, query, steerdns_bin, HttpPayload, QueryOpts, ServerProcess, TempDir,
};

/// How long a reload of these tiny configs may take, signal to log line.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The zone; line 7 is `www`'s A record.
fn zone(www: &str) -> String {
    format!(
        "$TTL 300\n\
         @ SOA ns1 hostmaster 1 7200 900 1209600 60\n\
         @ NS ns1\n\
         ns1 A 127.0.0.1\n\
         ; line 5\n\
         ; line 6\n\
         www A {www}\n"
    )
}

/// A steerdns process with its config folder, which tests rewrite.
struct Node {
    server: ServerProcess,
    home: TempDir,
    port: u16,
}

impl Node {
    /// Writes `config` (with `{port}` replaced) and the zone, and starts
    /// the server.
    fn start(config: &str, zone_text: &str) -> Node {
        let home = TempDir::new("reload");
        let port = free_port();
        home.write("zones/z.test.zone", zone_text);
        home.write(
            "steerdns.toml",
            &config.replace("{port}", &port.to_string()),
        );
        let mut command = Command::new(steerdns_bin());
        command
            .arg("serve")
            .arg("--config")
            .arg(home.path().join("steerdns.toml"));
        let server = ServerProcess::start(
            "steerdns",
            command,
            TempDir::new("reload-logs"),
            port,
            "z.test.",
        );
        Node { server, home, port }
    }

    fn at(&self, ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), self.port)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        self.home
            .write(name, &text.replace("{port}", &self.port.to_string()))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.server.dir().join("stderr.log")).unwrap_or_default()
    }

    /// Sends SIGHUP and waits until the log shows one more reload outcome
    /// than before: `"reload done"` or `"reload failed"`, which is returned.
    fn reload(&mut self) -> &'static str {
        let count =
            |log: &str| log.matches("reload done").count() + log.matches("reload failed").count();
        let before = count(&self.log());
        self.server.signal_group(libc::SIGHUP);
        let deadline = Instant::now() + RELOAD_TIMEOUT;
        loop {
            let log = self.log();
            if count(&log) > before {
                assert!(
                    self.server.is_running(),
                    "server exited on SIGHUP\n{}",
                    self.server.logs()
                );
                let done = log.rfind("reload done");
                return if done.is_some() && done > log.rfind("reload failed") {
                    "reload done"
                } else {
                    "reload failed"
                };
            }
            assert!(
                Instant::now() < deadline && self.server.is_running(),
                "no reload outcome logged\n{}",
                self.server.logs()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// `steerdns drain`/`undrain` against the node's config.
    fn drain(&self, drained: bool) {
        let verb = if drained { "drain" } else { "undrain" };
        let out = Command::new(steerdns_bin())
            .arg(verb)
            .arg("--config")
            .arg(self.home.path().join("steerdns.toml"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{verb}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Rcode, addresses and TTLs in the answer to `qname`/`rtype`.
fn answer(server: SocketAddr, qname: &str) -> (ResponseCode, Vec<IpAddr>, Vec<u32>) {
    let m = query(server, qname, RecordType::A, &QueryOpts::default()).unwrap();
    let addrs = m
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect();
    let ttls = m.answers().iter().map(|r| r.ttl()).collect();
    (m.response_code(), addrs, ttls)
}

fn addrs(server: SocketAddr, qname: &str) -> Vec<IpAddr> {
    answer(server, qname).1
}

fn ip(s: &str) -> Vec<IpAddr> {
    vec![s.parse().unwrap()]
}

const STATIC: &str = "[server]\nlisten = [\"127.0.0.1:{port}\"]\nworkers = 1\n\
                      [[zone]]\norigin = \"z.test.\"\nfile = \"zones/z.test.zone\"\n";

#[test]
fn sighup_reloads_a_changed_zone() {
    let mut node = Node::start(STATIC, &zone("192.0.2.1"));
    let at = node.at("127.0.0.1");
    assert_eq!(addrs(at, "www.z.test."), ip("192.0.2.1"));

    // A changed file is not read until the signal.
    node.write("zones/z.test.zone", &zone("192.0.2.2"));
    thread::sleep(Duration::from_millis(200));
    assert_eq!(addrs(at, "www.z.test."), ip("192.0.2.1"));

    node.server.signal_group(libc::SIGHUP);
    eventually(RELOAD_TIMEOUT, "new answer", || {
        addrs(at, "www.z.test.") == ip("192.0.2.2")
    });
    let tcp = QueryOpts {
        tcp: true,
        ..QueryOpts::default()
    };
    let m = query(at, "www.z.test.", RecordType::A, &tcp).unwrap();
    assert_eq!(
        m.answers()[0].data(),
        &RData::A("192.0.2.2".parse::<std::net::Ipv4Addr>().unwrap().into())
    );
    assert!(node.log().contains("reload done"), "{}", node.log());
    // A second reload works as well.
    node.write("zones/z.test.zone", &zone("192.0.2.3"));
    assert_eq!(node.reload(), "reload done");
    assert_eq!(addrs(at, "www.z.test."), ip("192.0.2.3"));
}

#[test]
fn a_broken_zone_or_config_is_refused_and_the_old_one_served() {
    let mut node = Node::start(STATIC, &zone("192.0.2.1"));
    let at = node.at("127.0.0.1");

    // A bad record on line 7.
    node.write("zones/z.test.zone", &zone("192.0.2.999"));
    assert_eq!(node.reload(), "reload failed");
    assert!(
        node.log().contains("z.test.zone:7:"),
        "no file:line in\n{}",
        node.log()
    );
    assert_eq!(addrs(at, "www.z.test."), ip("192.0.2.1"));

    // A config with a bad key on line 4, and a good zone.
    node.write("zones/z.test.zone", &zone("192.0.2.2"));
    node.write(
        "steerdns.toml",
        &STATIC.replace("workers = 1\n", "workers = 1\nwrokers = 2\n"),
    );
    assert_eq!(node.reload(), "reload failed");
    assert!(
        node.log().contains("steerdns.toml:4:"),
        "no file:line in\n{}",
        node.log()
    );
    assert_eq!(addrs(at, "www.z.test."), ip("192.0.2.1"));

    // Fixed: the next signal loads it.
    node.write("steerdns.toml", STATIC);
    assert_eq!(node.reload(), "reload done");
    assert_eq!(addrs(at, "www.z.test."), ip("192.0.2.2"));
}

#[test]
fn settings_that_need_a_restart_are_named_and_the_rest_applied() {
    let mut node = Node::start(STATIC, &zone("192.0.2.1"));
    let at = node.at("127.0.0.1");
    node.write(
        "steerdns.toml",
        &STATIC.replace("workers = 1\n", "workers = 3\n[rrl]\nenabled = false\n"),
    );
    node.write("zones/z.test.zone", &zone("192.0.2.2"));
    assert_eq!(node.reload(), "reload done");
    let log = node.log();
    for setting in ["[server] workers", "[rrl]"] {
        assert!(
            log.lines()
                .any(|l| l.contains(setting) && l.contains("needs a restart")),
            "no warning for {setting}:\n{log}"
        );
    }
    assert_eq!(addrs(at, "www.z.test."), ip("192.0.2.2"));
}

/// A `self` service on 127.0.0.1 (this node) with a peer at 127.0.0.2,
/// probed every 300 ms; the 3rd failure in a row marks a payload down, so
/// a probe that restarted "up" would be wrong for about 600 ms.
fn self_config(payload_port: u16, when_down: &str, ttl: u32) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{{port}}\", \"127.0.0.2:{{port}}\"]\nworkers = 1\n\
         [state]\ndir = \"state\"\n\
         [[zone]]\norigin = \"z.test.\"\nfile = \"zones/z.test.zone\"\n\
         [monitor.payload]\nprotocol = \"http\"\nport = {payload_port}\npath = \"/healthz\"\n\
         interval = \"300ms\"\ntimeout = \"200ms\"\ntolerated-failures = 2\nsuccesses-before-up = 1\n\
         [[service]]\nname = \"api.z.test.\"\nrouting = \"self\"\nttl = {ttl}\nmonitor = \"payload\"\n\
         peers = [\"127.0.0.1\", \"127.0.0.2\"]\nwhen-down = \"{when_down}\"\n"
    )
}

/// Queries `api.z.test.` for `period` and fails on any answer but `want`.
fn stays(at: SocketAddr, want: &(ResponseCode, Vec<IpAddr>), period: Duration) {
    let end = Instant::now() + period;
    while Instant::now() < end {
        let (rcode, got, _) = answer(at, "api.z.test.");
        assert_eq!(&(rcode, got), want, "answer changed after the reload");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_down_payload_stays_down_across_reload() {
    let payload_port = free_port();
    let local = HttpPayload::start(SocketAddr::from(([127, 0, 0, 1], payload_port)));
    let _peer = HttpPayload::start(SocketAddr::from(([127, 0, 0, 2], payload_port)));
    let mut node = Node::start(&self_config(payload_port, "peers", 5), &zone("192.0.2.1"));
    let at = node.at("127.0.0.1");
    eventually(RELOAD_TIMEOUT, "self answer", || {
        addrs(at, "api.z.test.") == ip("127.0.0.1")
    });

    // Local payload down: the when-down rule sends resolvers to the peer.
    local.set_healthy(false);
    eventually(RELOAD_TIMEOUT, "failover to the peer", || {
        addrs(at, "api.z.test.") == ip("127.0.0.2")
    });

    // Reload with another TTL, so the new snapshot is visibly in use.
    node.write("steerdns.toml", &self_config(payload_port, "peers", 7));
    assert_eq!(node.reload(), "reload done");
    let (rcode, got, ttls) = answer(at, "api.z.test.");
    assert_eq!(
        (rcode, got, ttls),
        (ResponseCode::NoError, ip("127.0.0.2"), vec![7])
    );
    // Longer than the ~600 ms a fresh "up" probe would need to fail.
    stays(
        at,
        &(ResponseCode::NoError, ip("127.0.0.2")),
        Duration::from_millis(1500),
    );

    // And the new probes still work: back up, back to self.
    local.set_healthy(true);
    eventually(RELOAD_TIMEOUT, "payload up again", || {
        addrs(at, "api.z.test.") == ip("127.0.0.1")
    });
}

#[test]
fn a_drained_service_stays_drained_across_reload() {
    let payload_port = free_port();
    let _local = HttpPayload::start(SocketAddr::from(([127, 0, 0, 1], payload_port)));
    let _peer = HttpPayload::start(SocketAddr::from(([127, 0, 0, 2], payload_port)));
    let mut node = Node::start(&self_config(payload_port, "refuse", 5), &zone("192.0.2.1"));
    let at = node.at("127.0.0.1");
    assert_eq!(addrs(at, "api.z.test."), ip("127.0.0.1"));

    node.drain(true);
    eventually(RELOAD_TIMEOUT, "drain applied", || {
        answer(at, "api.z.test.").0 == ResponseCode::Refused
    });

    node.write("steerdns.toml", &self_config(payload_port, "refuse", 7));
    assert_eq!(node.reload(), "reload done");
    // Longer than the drain watcher's poll interval (1 s), which would
    // otherwise mend a new snapshot that came in undrained.
    stays(
        at,
        &(ResponseCode::Refused, Vec::new()),
        Duration::from_millis(1500),
    );

    node.drain(false);
    eventually(RELOAD_TIMEOUT, "undrained", || {
        answer(at, "api.z.test.").2 == vec![7]
    });
}

#[test]
fn a_sighup_while_starting_is_not_fatal() {
    // A zone large enough that the first load takes a while, so the signal
    // arrives before the reload handler exists.
    let mut text = zone("192.0.2.1");
    for i in 0..200_000 {
        text.push_str(&format!(
            "h{i} A 10.{}.{}.{}\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
    }
    let home = TempDir::new("reload-early");
    let port = free_port();
    home.write("zones/z.test.zone", &text);
    let config = home.write(
        "steerdns.toml",
        &STATIC.replace("{port}", &port.to_string()),
    );
    let mut command = Command::new(steerdns_bin());
    command.arg("serve").arg("--config").arg(config);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut server =
        ServerProcess::spawn("steerdns", command, TempDir::new("reload-early-logs"), addr);
    // The signal must come after the server's first act, ignoring SIGHUP
    // (before that the kernel's default, termination, applies to any
    // process), and before the reload handler exists: wait for that
    // window instead of guessing it with a sleep, which a loaded machine
    // would overrun either way.
    let deadline = Instant::now() + RELOAD_TIMEOUT;
    let (ignored, caught) = loop {
        let state = sighup_disposition(server.pid());
        if state != (false, false) || Instant::now() >= deadline {
            break state;
        }
        thread::sleep(Duration::from_millis(1));
    };
    assert!(
        ignored && !caught,
        "SIGHUP ignored: {ignored}, caught: {caught}; expected ignored during the load\n{}",
        server.logs()
    );
    server.signal_group(libc::SIGHUP);
    // Loading 200,000 names in a debug build takes seconds, many more on a
    // loaded machine.
    if let Err(why) = server.wait_until_answers_within("z.test.", Duration::from_secs(60)) {
        panic!(
            "an early SIGHUP stopped the server: {why}\n{}",
            server.logs()
        );
    }
    assert_eq!(addrs(addr, "h199999.z.test."), ip("10.3.13.63"));
}

/// Whether process `pid` ignores SIGHUP and whether it catches it, from
/// the `SigIgn` and `SigCgt` masks of /proc/PID/status (bit 0 is signal 1,
/// SIGHUP). Both false while it still has the default action.
fn sighup_disposition(pid: u32) -> (bool, bool) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let has_sighup = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & 1 != 0)
    };
    (has_sighup("SigIgn:"), has_sighup("SigCgt:"))
}
