//! The binary as a user runs it: `steerdns serve` queried with `dig`, and
//! `steerdns check` on good and broken configurations.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{TempDir, ZoneFile};

/// How long `steerdns check` or one `dig` run may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `steerdns check --config <config>` and returns its output.
fn run_check(config: &Path) -> Output {
    let mut command = Command::new(common::steerdns_bin());
    command.arg("check").arg("--config").arg(config);
    common::output_within(command, COMMAND_TIMEOUT)
}

/// Describes a finished command for assertion messages.
fn describe(output: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// What `dig` printed for one query, split into the parts tests look at.
struct DigAnswer {
    /// dig's whole output, for failure messages.
    text: String,
}

impl DigAnswer {
    /// The `status:` of the `->>HEADER<<-` line, e.g. `NOERROR`.
    fn status(&self) -> &str {
        self.text
            .split_once("status: ")
            .and_then(|(_, rest)| rest.split(',').next())
            .unwrap_or("")
    }

    /// The header flags, e.g. `["qr", "aa"]`.
    fn flags(&self) -> Vec<&str> {
        self.text
            .lines()
            .find_map(|line| line.strip_prefix(";; flags: "))
            .and_then(|rest| rest.split(';').next())
            .map(|flags| flags.split_whitespace().collect())
            .unwrap_or_default()
    }

    /// The record lines of a section (`"ANSWER"`, `"AUTHORITY"`, `"QUESTION"`,
    /// `"ADDITIONAL"`), whitespace collapsed to single spaces.
    fn section(&self, name: &str) -> Vec<String> {
        let header = format!(";; {name} SECTION:");
        self.text
            .lines()
            .skip_while(|line| *line != header)
            .skip(1)
            .take_while(|line| !line.trim().is_empty())
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// Panics with dig's output unless `condition` holds.
    fn expect(&self, condition: bool, what: &str) {
        assert!(condition, "{what}; dig printed:\n{}", self.text);
    }
}

/// Queries 127.0.0.1 on `port` with `dig +norec` and the given arguments.
fn dig(dig: &Path, port: u16, args: &[&str]) -> DigAnswer {
    let mut command = Command::new(dig);
    command
        .arg(format!("@{}", common::LOOPBACK))
        .args(["-p", &port.to_string(), "+norec", "+time=2", "+tries=2"])
        .args(args);
    let output = common::output_within(command, COMMAND_TIMEOUT);
    assert!(
        output.status.success(),
        "dig {args:?} failed: {}",
        describe(&output)
    );
    DigAnswer {
        text: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

#[test]
fn serve_answers_dig() {
    let Some(dig_bin) = common::require_tool("dig", "dnsutils") else {
        return;
    };
    let server = common::start_steerdns(&common::diff_zones(), "");
    let port = server.port();

    let www = dig(&dig_bin, port, &["www.example.com", "A"]);
    www.expect(www.status() == "NOERROR", "www.example.com A is NOERROR");
    www.expect(www.flags().contains(&"aa"), "the answer is authoritative");
    www.expect(!www.flags().contains(&"ra"), "no recursion is offered");
    let answer = www.section("ANSWER");
    for address in ["192.0.2.80", "192.0.2.81"] {
        let line = format!("www.example.com. 300 IN A {address}");
        www.expect(
            answer.contains(&line),
            &format!("the answer holds `{line}`"),
        );
    }
    www.expect(
        answer.len() == 2,
        "the answer holds exactly the two A records",
    );

    let mixed = dig(&dig_bin, port, &["MixedCase.EXAMPLE.com", "A"]);
    mixed.expect(
        mixed.section("QUESTION") == [";MixedCase.EXAMPLE.com. IN A"],
        "the question keeps the query's case",
    );
    mixed.expect(
        mixed.section("ANSWER").len() == 1
            && mixed.section("ANSWER")[0].ends_with("IN A 192.0.2.99"),
        "the answer holds the one A record",
    );

    let missing = dig(&dig_bin, port, &["nonexistent.example.com", "A"]);
    missing.expect(missing.status() == "NXDOMAIN", "a missing name is NXDOMAIN");
    missing.expect(
        missing
            .section("AUTHORITY")
            .iter()
            .any(|l| l.starts_with("example.com. 300 IN SOA ")),
        "the authority section holds the SOA with the negative TTL (RFC 2308)",
    );

    let mx = dig(&dig_bin, port, &["example.com", "MX"]);
    mx.expect(
        mx.section("ANSWER").len() == 2,
        "the apex has two MX records",
    );
    mx.expect(
        mx.section("ADDITIONAL")
            .iter()
            .any(|l| l == "mail.example.com. 3600 IN A 192.0.2.25"),
        "the in-zone MX target's address is in the additional section",
    );

    let referral = dig(&dig_bin, port, &["host.deleg.example.com", "A"]);
    referral.expect(referral.status() == "NOERROR", "a referral is NOERROR");
    referral.expect(
        !referral.flags().contains(&"aa"),
        "a referral is not authoritative",
    );
    referral.expect(
        referral.section("ANSWER").is_empty(),
        "a referral has no answer",
    );
    referral.expect(
        referral.section("AUTHORITY").len() == 3,
        "the referral holds the three NS records of the cut",
    );

    let refused = dig(&dig_bin, port, &["www.example.org", "A"]);
    refused.expect(
        refused.status() == "REFUSED",
        "a name outside every zone is REFUSED",
    );

    let truncated = dig(
        &dig_bin,
        port,
        &["bigtxt.example.com", "TXT", "+bufsize=1232", "+ignore"],
    );
    truncated.expect(
        truncated.flags().contains(&"tc"),
        "15 x 200 bytes of TXT do not fit in 1232",
    );

    let tcp = dig(&dig_bin, port, &["bigtxt.example.com", "TXT", "+tcp"]);
    tcp.expect(
        tcp.section("ANSWER").len() == 15,
        "over TCP the whole TXT RRset comes back",
    );
}

/// The README's first command: the traffic-manager example, served on a
/// free port instead of 5353, routes what `dig` asks as its header says.
#[test]
fn traffic_manager_example_routes_for_dig() {
    let Some(dig_bin) = common::require_tool("dig", "dnsutils") else {
        return;
    };
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/traffic-manager");
    let dir = TempDir::new("example-tm");
    let port = common::free_port();
    let text = std::fs::read_to_string(example.join("steerdns.toml")).unwrap();
    let zone = std::fs::read_to_string(example.join("zones/example.com.zone")).unwrap();
    dir.write("zones/example.com.zone", &zone);
    let listen = "listen = [\"127.0.0.1:5353\", \"[::1]:5353\"]";
    assert!(text.contains(listen), "the example's listen line changed");
    let config = dir.write(
        "steerdns.toml",
        &text.replace(listen, &format!("listen = [\"127.0.0.1:{port}\"]")),
    );
    let logs = TempDir::new("example-tm-logs");
    let mut command = Command::new(common::steerdns_bin());
    command.arg("serve").arg("--config").arg(&config);
    let _server = common::ServerProcess::start("steerdns", command, logs, port, "example.com.");

    let www = dig(
        &dig_bin,
        port,
        &["www.example.com", "A", "+subnet=203.0.113.0/24"],
    );
    www.expect(
        www.text.contains("CLIENT-SUBNET: 203.0.113.0/24/24"),
        "weighted: scope /24",
    );
    www.expect(www.section("ANSWER").len() == 1, "weighted: one endpoint");
    let office = dig(
        &dig_bin,
        port,
        &["office.example.com", "A", "+subnet=10.1.2.0/24"],
    );
    office.expect(
        office.text.contains("CLIENT-SUBNET: 10.1.2.0/24/16"),
        "subnet: scope /16",
    );
    office.expect(
        office
            .section("ANSWER")
            .iter()
            .any(|r| r.ends_with("192.0.2.41")),
        "subnet: berlin",
    );
    let pool = dig(&dig_bin, port, &["pool.example.com", "A"]);
    pool.expect(
        pool.section("ANSWER").len() == 3,
        "multivalue: max-answers 3",
    );
    let assets = dig(&dig_bin, port, &["assets.example.com", "A"]);
    assets.expect(
        assets.section("ANSWER").iter().any(|r| r.contains("CNAME")),
        "cname endpoint",
    );
}

#[test]
fn check_accepts_the_test_zones() {
    let dir = TempDir::new("check-ok");
    let config =
        common::write_steerdns_config(&dir, common::free_port(), &common::diff_zones(), "");
    let output = run_check(&config);
    assert!(
        output.status.success(),
        "check failed on good zones: {}",
        describe(&output)
    );
}

#[test]
fn example_configs_are_valid() {
    for config in [
        "examples/basic/steerdns.toml",
        "examples/traffic-manager/steerdns.toml",
        "examples/poor-mans-gtm/steerdns.toml",
        "examples/poor-mans-gtm/try-locally.toml",
    ] {
        let output = run_check(Path::new(config));
        assert!(output.status.success(), "{config}: {}", describe(&output));
    }
}

#[test]
fn check_reports_file_and_line_of_a_zone_error() {
    let sources = TempDir::new("check-broken-src");
    let broken = sources.write(
        "example.com.zone",
        "$ORIGIN example.com.\n\
         $TTL 3600\n\
         @    IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n\
         \x20    IN NS  ns1\n\
         ns1  IN A   192.0.2.53\n\
         www  IN A   192.0.2.300\n",
    );
    let zones = [ZoneFile {
        origin: "example.com.".into(),
        source: broken,
    }];
    let dir = TempDir::new("check-broken");
    let config = common::write_steerdns_config(&dir, common::free_port(), &zones, "");
    let output = run_check(&config);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "check accepted a bad address: {}",
        describe(&output)
    );
    assert!(
        stderr.contains("example.com.zone:6:"),
        "stderr does not point at `example.com.zone:6:`: {}",
        describe(&output)
    );
}

#[test]
fn check_rejects_an_unknown_config_key() {
    let dir = TempDir::new("check-key");
    let config = common::write_steerdns_config(
        &dir,
        common::free_port(),
        &common::diff_zones(),
        "no-such-key = 1",
    );
    let output = run_check(&config);
    assert!(
        !output.status.success(),
        "check accepted an unknown key: {}",
        describe(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no-such-key"),
        "stderr does not name the unknown key: {}",
        describe(&output)
    );
}

#[test]
fn dig_gets_a_server_cookie_and_is_answered_when_it_returns_it() {
    let Some(dig_bin) = common::require_tool("dig", "dnsutils") else {
        return;
    };
    let server = common::start_steerdns(&common::diff_zones(), "");
    let port = server.port();
    // dig prints `; COOKIE: <client><server> (good)` when the reply's
    // COOKIE echoes its client cookie.
    let cookie_of = |answer: &DigAnswer| {
        let line = answer
            .text
            .lines()
            .find(|l| l.starts_with("; COOKIE:"))
            .unwrap_or_default()
            .to_string();
        answer.expect(line.ends_with("(good)"), "dig calls the COOKIE good");
        line.split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_string()
    };

    let first = dig(&dig_bin, port, &["+cookie", "www.example.com", "A"]);
    first.expect(first.status() == "NOERROR", "NOERROR");
    let cookie = cookie_of(&first);
    first.expect(
        cookie.len() == 48,
        "a client cookie and a 16-octet server cookie",
    );
    first.expect(
        cookie[16..18] == *"01",
        "an RFC 9018 server cookie (version 1)",
    );

    // Presenting it: answered, and the cookie, still fresh, comes back
    // unchanged. A rejected one would be BADCOOKIE and a new cookie.
    let again = dig(
        &dig_bin,
        port,
        &[&format!("+cookie={cookie}"), "www.example.com", "A"],
    );
    again.expect(again.status() == "NOERROR", "NOERROR with the cookie");
    again.expect(!again.text.contains("BADCOOKIE"), "no BADCOOKIE");
    again.expect(cookie_of(&again) == cookie, "the same cookie back");
    again.expect(
        again.section("ANSWER").len() == 2,
        "the answer holds the two A records",
    );

    // A server cookie we did not make counts as none (RFC 7873 §5.2.4):
    // answered, with a fresh cookie.
    let mut forged = cookie.clone();
    let last = if forged.ends_with('0') { "1" } else { "0" };
    forged.replace_range(47.., last);
    let bad = dig(
        &dig_bin,
        port,
        &[
            &format!("+cookie={forged}"),
            "+nobadcookie",
            "www.example.com",
            "A",
        ],
    );
    bad.expect(bad.status() == "NOERROR", "a forged cookie is answered");
    bad.expect(cookie_of(&bad) != forged, "a fresh cookie");
    bad.expect(
        cookie_of(&bad)[..16] == cookie[..16],
        "for our client cookie",
    );
}

#[test]
fn dig_learns_which_node_answered() {
    let Some(dig_bin) = common::require_tool("dig", "dnsutils") else {
        return;
    };
    let server = common::start_steerdns(
        &common::diff_zones(),
        "identity = \"ns1.fra.example\"\nversion = \"steerdns 9\"\n",
    );
    let port = server.port();

    // NSID (RFC 5001) beside an ordinary answer, over UDP and TCP.
    for transport in ["+notcp", "+tcp"] {
        let www = dig(
            &dig_bin,
            port,
            &["+nsid", transport, "www.example.com", "A"],
        );
        www.expect(www.status() == "NOERROR", "the answer is unchanged");
        www.expect(
            www.text.contains("(\"ns1.fra.example\")"),
            "the OPT record names the node",
        );
    }
    let plain = dig(&dig_bin, port, &["www.example.com", "A"]);
    plain.expect(!plain.text.contains("NSID"), "no NSID unless asked");

    for name in ["id.server", "hostname.bind"] {
        let id = dig(&dig_bin, port, &["CH", "TXT", name]);
        id.expect(id.status() == "NOERROR", "id.server is answered");
        id.expect(id.flags().contains(&"aa"), "the answer is authoritative");
        id.expect(
            id.section("ANSWER") == [format!("{name}. 0 CH TXT \"ns1.fra.example\"")],
            "the answer is the identity",
        );
    }
    let version = dig(&dig_bin, port, &["CH", "TXT", "version.bind", "+tcp"]);
    version.expect(
        version.section("ANSWER") == ["version.bind. 0 CH TXT \"steerdns 9\""],
        "the answer is the version",
    );
    let other = dig(&dig_bin, port, &["CH", "TXT", "authors.bind"]);
    other.expect(other.status() == "REFUSED", "other CHAOS names are refused");

    // Defaults: the host name, and the version hidden.
    let server = common::start_steerdns(&common::diff_zones(), "");
    let port = server.port();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let id = dig(&dig_bin, port, &["CH", "TXT", "id.server"]);
    id.expect(
        id.section("ANSWER") == [format!("id.server. 0 CH TXT \"{}\"", host.trim())],
        "the identity is the host name",
    );
    let version = dig(&dig_bin, port, &["CH", "TXT", "version.server"]);
    version.expect(version.status() == "REFUSED", "the version is hidden");
}
