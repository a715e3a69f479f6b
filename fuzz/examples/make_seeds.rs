//! Writes the seed corpora of the fuzz targets into `fuzz/seeds/<target>/`.
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example make_seeds
//! ```
//!
//! * `engine`: every query of `tests/data/diff/queries.txt` (the NSD
//!   differential test), built as that test builds it with hickory-proto;
//!   queries for the fixture's services and the basic example's zone; and
//!   hand-built edge cases: the ISC EDNS compliance probes, ECS options
//!   good and bad, other opcodes, QDCOUNT 0 and 2, cut-off messages, two
//!   OPTs, compression in the question.
//! * `zone_parser`: the committed zone files and snippets of every syntax
//!   the parser knows, `$INCLUDE` of the includable files among them.
//! * `config`: the example config and configs using every table and key.
//! * `ecs`: ECS option bodies, valid and not.
//!
//! The folders are emptied first, so the output depends only on the inputs.

use std::fs;
use std::path::{Path, PathBuf};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let seeds = repo.join("fuzz").join("seeds");
    let mut total = 0;
    for (target, files) in [
        ("engine", engine_seeds(&repo)),
        ("zone_parser", zone_seeds(&repo)),
        ("config", config_seeds(&repo)),
        ("ecs", ecs_seeds()),
    ] {
        let dir = seeds.join(target);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create a seed folder");
        let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
        for (name, data) in &files {
            fs::write(dir.join(file_name(name)), data).expect("write a seed");
        }
        println!("{target}: {} seeds, {bytes} bytes", files.len());
        total += bytes;
    }
    println!("total: {total} bytes");
}

/// A seed: a descriptive name and its bytes.
type Seed = (String, Vec<u8>);

/// `name` made safe as a file name.
fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Reads a file of the repository.
fn read(path: PathBuf) -> Vec<u8> {
    fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// engine

/// How one query of `queries.txt` is sent (the flags of that file).
#[derive(Default)]
struct Flags {
    edns: Option<u16>,
    dnssec_ok: bool,
    rd: bool,
    cd: bool,
}

/// A query built as `tests/common::build_query` builds it.
fn hickory_query(id: u16, qname: &str, rtype: RecordType, flags: &Flags) -> Vec<u8> {
    let mut message = Message::new();
    message
        .set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(flags.rd)
        .set_checking_disabled(flags.cd);
    let name = Name::from_ascii(qname).unwrap_or_else(|e| panic!("bad name {qname}: {e}"));
    let mut query = Query::query(name, rtype);
    query.set_query_class(DNSClass::IN);
    message.add_query(query);
    if let Some(size) = flags.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(size)
            .set_version(0)
            .set_dnssec_ok(flags.dnssec_ok);
        message.set_edns(edns);
    }
    message.to_vec().expect("encode a query")
}

/// Parses a type mnemonic or `TYPEnnn`.
fn parse_type(text: &str) -> RecordType {
    let upper = text.to_ascii_uppercase();
    if let Some(n) = upper
        .strip_prefix("TYPE")
        .and_then(|n| n.parse::<u16>().ok())
    {
        return RecordType::from(n);
    }
    upper
        .parse()
        .unwrap_or_else(|_| panic!("unknown type {text}"))
}

/// The queries of the differential test, one seed per line.
fn diff_queries(repo: &Path) -> Vec<Seed> {
    let text = String::from_utf8(read(repo.join("tests/data/diff/queries.txt"))).unwrap();
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(name), Some(rtype)) = (words.next(), words.next()) else {
            panic!("queries.txt:{}: bad line", index + 1);
        };
        let mut flags = Flags {
            edns: Some(1232),
            ..Flags::default()
        };
        for flag in words {
            match flag {
                "tcp" => {}
                "noedns" => flags.edns = None,
                "do" => flags.dnssec_ok = true,
                "rd" => flags.rd = true,
                "cd" => flags.cd = true,
                other => {
                    let size = other.strip_prefix("bufsize=").and_then(|s| s.parse().ok());
                    flags.edns = Some(size.unwrap_or_else(|| panic!("unknown flag {other}")));
                }
            }
        }
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let id = (index as u16).wrapping_mul(7919);
        let wire = hickory_query(id, &fqdn, parse_type(rtype), &flags);
        out.push((format!("diff-line{:03}", index + 1), wire));
    }
    out
}

/// Queries for the names only the fuzz fixture has: the `self` services of
/// `svc.example.` and the basic example's zone served as `example.org.`.
fn fixture_queries() -> Vec<Seed> {
    let names = [
        ("www.svc.example.", &["A", "AAAA", "ANY", "TXT"][..]),
        ("x.pool.svc.example.", &["A", "AAAA", "ANY"]),
        ("refuse.svc.example.", &["A", "AAAA"]),
        ("open.svc.example.", &["A", "AAAA"]),
        ("alias.svc.example.", &["A"]),
        ("svc.example.", &["SOA", "NS"]),
        ("www.example.org.", &["A", "AAAA"]),
        ("api.example.org.", &["A"]),
        ("x.apps.example.org.", &["A"]),
        ("a.lab.example.org.", &["A"]),
        ("_sip._udp.example.org.", &["SRV"]),
    ];
    let mut out = Vec::new();
    for (name, types) in names {
        for (i, t) in types.iter().enumerate() {
            let flags = Flags {
                edns: (i % 2 == 0).then_some(1232),
                ..Flags::default()
            };
            let wire = hickory_query(0x4000 + out.len() as u16, name, parse_type(t), &flags);
            out.push((format!("fixture-{name}{t}"), wire));
        }
    }
    out
}

/// `name` (dotted) in uncompressed wire format.
fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A query with header octets 2 and 3 set to `flags`, one question, and an
/// OPT record with `opt = (udp size, version, EDNS flags, options)`.
fn raw_query(
    flags: [u8; 2],
    qname: &str,
    qtype: u16,
    opt: Option<(u16, u8, u16, &[u8])>,
) -> Vec<u8> {
    let mut m = vec![0xab, 0xcd, flags[0], flags[1], 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&wire_name(qname));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if let Some((size, version, eflags, options)) = opt {
        append_opt(&mut m, size, version, eflags, options);
    }
    m
}

/// Appends an OPT record and counts it.
fn append_opt(m: &mut Vec<u8>, size: u16, version: u8, flags: u16, options: &[u8]) {
    m.push(0);
    m.extend_from_slice(&41u16.to_be_bytes());
    m.extend_from_slice(&size.to_be_bytes());
    m.extend_from_slice(&((u32::from(version) << 16) | u32::from(flags)).to_be_bytes());
    m.extend_from_slice(&(options.len() as u16).to_be_bytes());
    m.extend_from_slice(options);
    m[11] += 1;
}

/// An ECS option (code 8) around `body`.
fn ecs_option(body: &[u8]) -> Vec<u8> {
    let mut o = vec![0, 8];
    o.extend_from_slice(&(body.len() as u16).to_be_bytes());
    o.extend_from_slice(body);
    o
}

/// Hand-built edge cases.
fn edge_queries() -> Vec<Seed> {
    let apex = "example.com.";
    let soa = 6;
    let edns = |options: &[u8]| raw_query([0, 0], apex, soa, Some((4096, 0, 0, options)));
    let mut out: Vec<Seed> = vec![
        // The ISC EDNS compliance probes (genreport).
        ("isc-dns".into(), raw_query([0, 0], apex, soa, None)),
        ("isc-edns".into(), edns(&[])),
        (
            "isc-edns1".into(),
            raw_query([0, 0], apex, soa, Some((4096, 1, 0, &[]))),
        ),
        ("isc-ednsopt".into(), edns(&[0, 100, 0, 0])),
        (
            "isc-do".into(),
            raw_query([0, 0], apex, soa, Some((4096, 0, 0x8000, &[]))),
        ),
        (
            "isc-ednsflags".into(),
            raw_query([0, 0], apex, soa, Some((4096, 0, 0x0080, &[]))),
        ),
        (
            "isc-optlist".into(),
            edns(&[
                0, 3, 0, 0, 0, 8, 0, 4, 0, 1, 0, 0, 0, 9, 0, 0, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,
            ]),
        ),
        (
            "isc-edns512-dnskey".into(),
            raw_query([0, 0], apex, 48, Some((512, 0, 0x8000, &[]))),
        ),
        ("isc-zflag".into(), raw_query([0, 0x40], apex, soa, None)),
        (
            "isc-opcode15".into(),
            vec![0xab, 0xcd, 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        (
            "isc-opcodeflg".into(),
            vec![0xab, 0xcd, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        ("isc-type666".into(), raw_query([0, 0], apex, 666, None)),
        // ECS, good and bad (RFC 7871 §6, §7.1).
        (
            "ecs-v4-24".into(),
            edns(&ecs_option(&[0, 1, 24, 0, 192, 0, 2])),
        ),
        (
            "ecs-v6-56".into(),
            edns(&ecs_option(&[0, 2, 56, 0, 0x20, 1, 0xd, 0xb8, 0, 0, 0])),
        ),
        ("ecs-v4-0".into(), edns(&ecs_option(&[0, 1, 0, 0]))),
        (
            "ecs-family3".into(),
            edns(&ecs_option(&[0, 3, 24, 0, 192, 0, 2])),
        ),
        (
            "ecs-scope".into(),
            edns(&ecs_option(&[0, 1, 24, 24, 192, 0, 2])),
        ),
        (
            "ecs-bits-past".into(),
            edns(&ecs_option(&[0, 1, 20, 0, 192, 0, 0x1f])),
        ),
        ("ecs-short".into(), edns(&ecs_option(&[0, 1, 24]))),
        ("ecs-overrun".into(), edns(&[0, 8, 0, 9, 0, 1, 24, 0])),
        // Other opcodes, with and without a question and EDNS.
        (
            "opcode-iquery".into(),
            raw_query([0x08, 0], apex, soa, None),
        ),
        (
            "opcode-notify".into(),
            raw_query([0x20, 0], apex, soa, None),
        ),
        (
            "opcode-update-edns".into(),
            raw_query([0x28, 0], apex, soa, Some((1232, 0, 0, &[]))),
        ),
        // Question trouble.
        (
            "qdcount0".into(),
            vec![0xab, 0xcd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        (
            "header-short".into(),
            vec![0xab, 0xcd, 0, 0, 0, 1, 0, 0, 0, 0, 0],
        ),
        ("qr-set".into(), raw_query([0x80, 0], apex, soa, None)),
        ("axfr".into(), raw_query([0, 0], apex, 252, None)),
        ("ixfr".into(), raw_query([0, 0], apex, 251, None)),
        ("maila".into(), raw_query([0, 0], apex, 254, None)),
        ("qtype-opt".into(), raw_query([0, 0], apex, 41, None)),
        (
            "ds-at-child-apex".into(),
            raw_query([0, 0], "sub.example.com.", 43, None),
        ),
        (
            "wildcard-any".into(),
            raw_query([0, 0], "x.wild.example.com.", 255, Some((512, 0, 0, &[]))),
        ),
        (
            "mixed-case".into(),
            raw_query(
                [1, 0x10],
                "WwW.ExAmPlE.CoM.",
                1,
                Some((1232, 0, 0x8000, &[])),
            ),
        ),
    ];
    let mut q = raw_query([0, 0], apex, soa, None);
    let question = q[12..].to_vec();
    q.extend_from_slice(&question);
    q[5] = 2;
    out.push(("qdcount2".into(), q));

    let q = raw_query([0, 0], apex, soa, None);
    out.push(("question-cut".into(), q[..q.len() - 3].to_vec()));

    // A pointer in the question; a bad label type.
    let mut q = vec![
        0xab, 0xcd, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1,
    ];
    out.push(("question-pointer".into(), q.clone()));
    q[12] = 0x40;
    out.push(("question-label-0x40".into(), q));

    // A 255-octet name: four labels of 63, 61 and the root.
    let long = [
        &"a".repeat(63)[..],
        &"b".repeat(63),
        &"c".repeat(63),
        &"d".repeat(61),
    ]
    .join(".");
    out.push(("name-255".into(), raw_query([0, 0], &long, 1, None)));

    // Two OPT records; an OPT owned by a name; a TSIG-like record after OPT.
    let mut q = raw_query([0, 0], apex, soa, Some((1232, 0, 0, &[])));
    append_opt(&mut q, 1232, 0, 0, &[]);
    out.push(("two-opts".into(), q));
    let mut q = raw_query([0, 0], apex, soa, None);
    q.extend_from_slice(&[1, b'x', 0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
    q[11] = 1;
    out.push(("opt-not-root".into(), q));
    let mut q = raw_query([0, 0], apex, soa, Some((1232, 0, 0, &[])));
    q.extend_from_slice(&[0xc0, 12, 0, 250, 0, 255, 0, 0, 0, 0, 0, 2, 0, 0]);
    q[11] = 2;
    out.push(("tsig-like".into(), q));
    out
}

fn engine_seeds(repo: &Path) -> Vec<Seed> {
    let mut out = diff_queries(repo);
    out.extend(fixture_queries());
    out.extend(edge_queries());
    out
}

// ---------------------------------------------------------------------------
// zone_parser

fn zone_seeds(repo: &Path) -> Vec<Seed> {
    let mut out: Vec<Seed> = [
        "tests/data/diff/zones/example.com.zone",
        "tests/data/diff/zones/sub.example.com.zone",
        "tests/data/diff/zones/example.net.zone",
        "tests/data/compliance/compliance.example.zone",
        "examples/basic/zones/example.com.zone",
    ]
    .iter()
    .map(|path| (format!("file-{path}"), read(repo.join(path))))
    .collect();
    let snippets: &[(&str, &str)] = &[
        ("minimal", "@ 300 IN SOA ns1 host 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"),
        ("ttl-class-order", "$TTL 1h\nwww IN 60 A 192.0.2.1\nwww 1w2d IN AAAA 2001:db8::1\n"),
        ("origin", "$ORIGIN sub.example.com.\nwww A 192.0.2.1\n$ORIGIN @\n@ MX 10 mail\n"),
        ("include", "$TTL 60\n$INCLUDE hosts inc\n$INCLUDE \"hosts\"\nafter A 192.0.2.9\n"),
        ("include-loop", "$INCLUDE loop\n"),
        ("include-bad", "$INCLUDE bad\n$INCLUDE binary\n$INCLUDE empty\n$INCLUDE missing\n"),
        ("parentheses", "@ SOA ns1 host (\n 1 ; serial\n 2 3\n 4 5 )\n"),
        ("escapes", "a\\.b\\065 TXT \"q\\\"uote\" \\# 0\nc\\032d A 192.0.2.1\n"),
        ("generic", "x TYPE65280 \\# 4 deadbeef\ny CLASS1 TYPE1 \\# 4 c0000201\nz TYPE99 \\# 0\n"),
        ("types", "m MX 0 .\ns SRV 1 2 3 t\nn NAPTR 1 2 \"S\" \"x\" \"\" .\nh HINFO a b\nc CAA 0 issue \"ca\"\np PTR www\n"),
        ("txt-long", "t TXT \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" bbb \"\" \\255\n"),
        ("blank-owner", "www A 192.0.2.1\n\tAAAA 2001:db8::2\n  TXT x\n"),
        ("wildcard-cname", "*.w CNAME www\nwww CNAME *.w\n"),
        ("delegation", "child NS ns.child\nns.child A 192.0.2.5\nchild DS 1 2 3 abcd\n"),
        ("dname", "d DNAME example.net.\n"),
        ("generate", "$GENERATE 1-10 h$ A 192.0.2.$\n"),
        ("bom-crlf", "\u{feff}www A 192.0.2.1\r\nwww2 A 192.0.2.2\r\n"),
        ("unbalanced", "@ SOA ns1 host ( 1 2 3 4 5\n"),
        ("ttl-max", "$TTL 2147483647\nx 2147483648 A 192.0.2.1\n"),
    ];
    out.extend(
        snippets
            .iter()
            .map(|(name, text)| (format!("snippet-{name}"), text.as_bytes().to_vec())),
    );
    out
}

// ---------------------------------------------------------------------------
// config

fn config_seeds(repo: &Path) -> Vec<Seed> {
    let mut out = vec![(
        "example-basic".to_string(),
        read(repo.join("examples/basic/steerdns.toml")),
    )];
    let texts: &[(&str, &str)] = &[
        (
            "minimal",
            "[server]\nlisten = [\"127.0.0.1:53\"]\n[[zone]]\norigin = \"example.com\"\nfile = \"z\"\n",
        ),
        (
            "everything",
            r#"[server]
listen = ["127.0.0.1:5353", "[::1]:5353"]
workers = 2
max-udp-payload = 4096

[tcp]
max-connections = 10
idle-timeout = "500ms"
max-queries-per-connection = 5

[state]
dir = "state"

[[zone]]
origin = "api.test."
file = "zones/api.test.zone"

[monitor.web]
protocol = "https"
port = 8443
address = "127.0.0.1"
path = "/healthz"
host = "api.test"
headers = { "X-Probe" = "steerdns" }
expected-status = [200, "300-399", "2xx"]
body-contains = "ok"
interval = "2s"
timeout = "1s"
tolerated-failures = 0
successes-before-up = 1
insecure = true

[monitor.port]
protocol = "tcp"
port = 22

[[service]]
name = "*.api.test."
routing = "self"
ttl = 5
monitor = "web"
peers = ["127.0.0.1", "127.0.0.2", "::1"]
when-down = "peers"

[[service]]
name = "www.api.test"
routing = "self"
monitor = "port"
when-down = "refuse"
"#,
        ),
        (
            "errors",
            "[server]\nlisten = []\nworkers = 0\nmax-udp-payload = 100\n[tcp]\nidle-timeout = \"0s\"\n[[zone]]\norigin = \"a..b\"\nfile = \"z\"\n[[zone]]\norigin = \"A.B.\"\nfile = \"y\"\n",
        ),
        (
            "unknown-keys",
            "[server]\nlisten = [\"127.0.0.1:53\"]\nbogus = 1\n[[zone]]\norigin = \"x.\"\nfile = \"z\"\n[[service]]\nname = \"x.\"\nrouting = \"weighted\"\nmonitor = \"none\"\n",
        ),
    ];
    out.extend(
        texts
            .iter()
            .map(|(name, text)| (format!("config-{name}"), text.as_bytes().to_vec())),
    );
    out
}

// ---------------------------------------------------------------------------
// ecs

fn ecs_seeds() -> Vec<Seed> {
    let bodies: &[(&str, &[u8])] = &[
        ("v4-24", &[0, 1, 24, 0, 192, 0, 2]),
        ("v4-32", &[0, 1, 32, 0, 192, 0, 2, 1]),
        ("v4-0", &[0, 1, 0, 0]),
        ("v4-20", &[0, 1, 20, 0, 192, 0, 0x10]),
        (
            "v6-56",
            &[0, 2, 56, 0, 0x20, 1, 0xd, 0xb8, 0x12, 0x34, 0x56],
        ),
        (
            "v6-128",
            &[
                0, 2, 128, 0, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
            ],
        ),
        ("v4-33", &[0, 1, 33, 0, 192, 0, 2, 1, 0]),
        ("family-3", &[0, 3, 24, 0, 192, 0, 2]),
        ("scope", &[0, 1, 24, 24, 192, 0, 2]),
        ("bits-past", &[0, 1, 20, 0, 192, 0, 0x1f]),
        ("too-long", &[0, 1, 24, 0, 192, 0, 2, 0]),
        ("short", &[0, 1, 24]),
    ];
    bodies
        .iter()
        .map(|(name, body)| (format!("ecs-{name}"), body.to_vec()))
        .collect()
}
