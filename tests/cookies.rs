//! DNS cookies (RFC 7873) with a real resolver: BIND's named, which sends
//! cookies to the servers it asks by default, forwards to steerdns on the
//! loopback. steerdns rate-limits loopback here, one answer a second per
//! account and nothing slipped, so a resolver asking thirty names under
//! one wildcard is answered at once only if it presents the server cookie
//! steerdns gave it, which exempts it from rate limiting. Without cookies
//! named gets there too, but only through its retries (timeouts, then
//! TCP), which takes seconds per name: the control test shows it.
//!
//! Last, interoperability (RFC 9018 §6): given the cookie secret named
//! has, steerdns accepts the server cookies named makes. (The other way
//! round cannot be seen from outside: named 9.18 makes a new cookie for
//! every reply, valid or not.)

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use common::{QueryOpts, ServerProcess, TempDir};

/// Starts named on 127.0.0.1 and a free port, forwarding everything to
/// `upstream_port` on 127.0.0.1; `send_cookie` is its `send-cookie`.
fn start_named(named: &std::path::Path, upstream_port: u16, send_cookie: bool) -> ServerProcess {
    let dir = TempDir::new("named");
    let port = common::free_port();
    let send_cookie = if send_cookie { "yes" } else { "no" };
    let config = dir.write(
        "named.conf",
        &format!(
            "options {{\n\
             directory \"{dir}\";\n\
             pid-file none;\n\
             session-keyfile none;\n\
             listen-on port {port} {{ 127.0.0.1; }};\n\
             listen-on-v6 {{ none; }};\n\
             recursion yes;\n\
             allow-query {{ any; }};\n\
             allow-recursion {{ any; }};\n\
             dnssec-validation no;\n\
             forward only;\n\
             forwarders {{ 127.0.0.1 port {upstream_port}; }};\n\
             send-cookie {send_cookie};\n\
             }};\n\
             controls {{ }};\n",
            dir = dir.path().display()
        ),
    );
    let mut command = Command::new(named);
    command.arg("-g").arg("-c").arg(&config);
    ServerProcess::start("named", command, dir, port, "example.com.")
}

/// Asks `resolver` for `count` names under `*.wild.example.com`, one after
/// the other, until `deadline`; returns how many were answered with the
/// wildcard's address, and the time taken.
fn resolve_wildcards(
    resolver: &ServerProcess,
    count: usize,
    deadline: Duration,
) -> (usize, Duration) {
    let opts = QueryOpts {
        rd: true,
        ..QueryOpts::default()
    };
    let started = Instant::now();
    let mut answered = 0;
    for i in 0..count {
        if started.elapsed() > deadline {
            break;
        }
        let name = format!("c{i}.wild.example.com.");
        let Ok(m) = common::query(resolver.addr(), &name, RecordType::A, &opts) else {
            continue;
        };
        let wild = "192.0.2.100".parse().unwrap();
        if m.response_code() == ResponseCode::NoError
            && m.answers()
                .iter()
                .any(|r| r.data() == &RData::A(hickory_proto::rr::rdata::A(wild)))
        {
            answered += 1;
        }
    }
    (answered, started.elapsed())
}

#[test]
fn named_with_cookies_is_not_rate_limited() {
    let Some(named) = common::require_tool("named", "bind9") else {
        return;
    };
    let steerdns = common::start_steerdns(
        &common::diff_zones(),
        "\n[rrl]\nexempt-clients = []\nresponses-per-second = 1\nslip = 0",
    );
    let resolver = start_named(&named, steerdns.port(), true);
    let (answered, took) = resolve_wildcards(&resolver, 30, Duration::from_secs(20));
    eprintln!("with cookies: {answered} of 30 names in {took:?}");
    assert_eq!(answered, 30, "{}", resolver.logs());
    // Without cookies three names take over ten seconds (see below).
    assert!(
        took < Duration::from_secs(5),
        "named was limited although it sends cookies: {took:?}\n{}",
        resolver.logs()
    );
}

#[test]
fn named_without_cookies_is_rate_limited() {
    // The control: the same resolver with `send-cookie no` is charged to
    // the wildcard's account, and most of its queries are dropped, so it
    // waits for its retries. Few names, so the test stays short.
    let Some(named) = common::require_tool("named", "bind9") else {
        return;
    };
    let steerdns = common::start_steerdns(
        &common::diff_zones(),
        "\n[rrl]\nexempt-clients = []\nresponses-per-second = 1\nslip = 0",
    );
    let resolver = start_named(&named, steerdns.port(), false);
    let (answered, took) = resolve_wildcards(&resolver, 3, Duration::from_secs(20));
    eprintln!("without cookies: {answered} of 3 names in {took:?}");
    assert!(
        answered < 3 || took > Duration::from_secs(5),
        "named was answered at once without cookies: {took:?}"
    );
}

/// The secret of RFC 9018's examples, shared by named and steerdns below.
const SHARED_SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";

/// The 24-byte COOKIE option after `client` in the raw reply `reply`.
fn cookie_in(reply: &[u8], client: &[u8; 8]) -> Vec<u8> {
    let mut head = vec![0, 10, 0, 24];
    head.extend_from_slice(client);
    let at = (reply.windows(head.len()).position(|w| w == head))
        .unwrap_or_else(|| panic!("no COOKIE in {reply:02x?}"));
    reply[at + 4..at + 28].to_vec()
}

/// Sends an A query for `name` with the COOKIE `cookie` to `server` over
/// UDP and returns the raw reply.
fn ask_with_cookie(server: &ServerProcess, name: &str, cookie: &[u8]) -> Vec<u8> {
    let message = common::build_query(&common::name(name), RecordType::A, &QueryOpts::default());
    let query = common::with_cookie(message.to_vec().unwrap(), cookie);
    common::exchange_udp(server.addr(), &query, common::QUERY_TIMEOUT, 3).unwrap()
}

#[test]
fn a_cookie_from_named_with_the_shared_secret_is_valid_at_steerdns() {
    // RFC 9018 §6: an anycast set of several implementations sharing one
    // secret accepts each other's cookies.
    let Some(named) = common::require_tool("named", "bind9") else {
        return;
    };
    let dir = TempDir::new("named-auth");
    let port = common::free_port();
    dir.write(
        "shared.zone",
        "$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n@ NS ns1\nns1 A 192.0.2.53\n",
    );
    let config = dir.write(
        "named.conf",
        &format!(
            "options {{\n\
             directory \"{dir}\";\n\
             pid-file none;\n\
             session-keyfile none;\n\
             listen-on port {port} {{ 127.0.0.1; }};\n\
             listen-on-v6 {{ none; }};\n\
             recursion no;\n\
             cookie-algorithm siphash24;\n\
             cookie-secret \"{SHARED_SECRET}\";\n\
             }};\n\
             controls {{ }};\n\
             zone \"shared.example\" {{ type primary; file \"shared.zone\"; }};\n",
            dir = dir.path().display()
        ),
    );
    let mut command = Command::new(named);
    command.arg("-g").arg("-c").arg(&config);
    let named = ServerProcess::start("named", command, dir, port, "shared.example.");
    let steerdns = common::start_steerdns(
        &common::diff_zones(),
        &format!("cookie-secret = \"{SHARED_SECRET}\""),
    );

    let client = [0x22, 0x68, 0x1a, 0xb9, 0x7d, 0x52, 0xc2, 0x98];
    let from_named = cookie_in(
        &ask_with_cookie(&named, "ns1.shared.example.", &client),
        &client,
    );
    // steerdns echoes a valid, fresh cookie unchanged...
    let reply = ask_with_cookie(&steerdns, "www.example.com.", &from_named);
    assert_eq!(
        cookie_in(&reply, &client),
        from_named,
        "named's cookie was not valid"
    );
    // ... and replaces one it cannot validate.
    let mut tampered = from_named.clone();
    tampered[23] ^= 1;
    let reply = ask_with_cookie(&steerdns, "www.example.com.", &tampered);
    assert_ne!(cookie_in(&reply, &client), tampered);
}
