//! Differential test against NSD.
//!
//! NSD and steerdns serve the same zones (`tests/data/diff/zones`) and get
//! the same queries (`tests/data/diff/queries.txt`). For every query the
//! two responses must agree on the rcode, the header flags, the question
//! (byte for byte, so the query's case must be kept), the OPT record's
//! presence, version, extended rcode and DO bit, and each section taken as
//! a multiset of records (owner compared case-insensitively; type, class,
//! TTL and RDATA exactly; order ignored). Each response is also checked
//! against the query: same id, QR set, same opcode.
//!
//! Where steerdns differs from NSD and is right per an RFC, the difference
//! is listed in [`ALLOWED`] with the RFC that allows it. Every difference
//! is printed, allowed or not, before the test fails on the ones that are
//! not allowed.
//!
//! Without `nsd` installed the test fails (see `common::skip` for
//! `STEERDNS_ALLOW_SKIP`).
//! `STEERDNS_DIFF_BASELINE=nsd` serves the "ours" side with a second NSD,
//! which must agree with the first on everything: a check of the harness.

mod common;

use std::fmt::{self, Write as _};

use common::{QueryOpts, ServerProcess};
use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::{Name, Record, RecordType};

/// The largest UDP response both servers are configured to send, so that
/// the `bufsize=4096` queries can be answered in full over UDP.
const MAX_UDP_PAYLOAD: u16 = 4096;

/// The query list must keep at least this many queries.
const MIN_QUERIES: usize = 200;

/// After this many queries in a row that steerdns does not answer, the run
/// stops instead of waiting for every remaining time-out.
const MAX_CONSECUTIVE_FAILURES: usize = 5;

/// One query of `queries.txt`.
#[derive(Debug)]
struct Case {
    /// 1-based line number in `queries.txt`.
    line: usize,
    /// The line as written.
    text: String,
    qname: Name,
    qtype: RecordType,
    opts: QueryOpts,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "queries.txt:{}: `{}`", self.line, self.text)
    }
}

/// Parses a type mnemonic or `TYPEnnn` (RFC 3597 §5).
fn parse_type(text: &str) -> Result<RecordType, String> {
    let upper = text.to_ascii_uppercase();
    if let Some(number) = upper.strip_prefix("TYPE") {
        if let Ok(n) = number.parse::<u16>() {
            return Ok(RecordType::from(n));
        }
    }
    upper.parse().map_err(|_| format!("unknown type {text:?}"))
}

/// Parses one `name type [flag ...]` line.
fn parse_case(line: usize, text: &str) -> Result<Case, String> {
    let mut words = text.split_whitespace();
    let (Some(qname), Some(qtype)) = (words.next(), words.next()) else {
        return Err("expected `name type [flag ...]`".into());
    };
    let fqdn = if qname.ends_with('.') {
        qname.to_string()
    } else {
        format!("{qname}.")
    };
    let qname = Name::from_ascii(&fqdn).map_err(|e| format!("bad name {qname:?}: {e}"))?;
    let mut opts = QueryOpts::default();
    for flag in words {
        match flag {
            "tcp" => opts.tcp = true,
            "noedns" => opts.edns = None,
            "do" => opts.dnssec_ok = true,
            "rd" => opts.rd = true,
            "cd" => opts.cd = true,
            _ => match flag.strip_prefix("bufsize=").map(str::parse::<u16>) {
                Some(Ok(size)) => opts.edns = Some(size),
                _ => return Err(format!("unknown flag {flag:?}")),
            },
        }
    }
    if opts.dnssec_ok && opts.edns.is_none() {
        return Err("`do` needs EDNS".into());
    }
    Ok(Case {
        line,
        text: text.to_string(),
        qname,
        qtype: parse_type(qtype)?,
        opts,
    })
}

/// Reads `queries.txt`, skipping blank lines and `#` comments.
fn load_cases() -> Vec<Case> {
    let path = common::data_dir().join("diff").join("queries.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut errors = String::new();
    let mut cases = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_case(index + 1, line) {
            Ok(case) => cases.push(case),
            Err(e) => {
                let _ = writeln!(errors, "queries.txt:{}: {e}", index + 1);
            }
        }
    }
    assert!(errors.is_empty(), "bad query list:\n{errors}");
    cases
}

/// A response section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Answer,
    Authority,
    Additional,
}

impl Section {
    const ALL: [Section; 3] = [Section::Answer, Section::Authority, Section::Additional];

    fn records(self, message: &Message) -> &[Record] {
        match self {
            Section::Answer => message.answers(),
            Section::Authority => message.name_servers(),
            Section::Additional => message.additionals(),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Section::Answer => "answer",
            Section::Authority => "authority",
            Section::Additional => "additional",
        }
    }
}

/// One way in which the two responses to a query differ.
#[derive(Debug)]
enum Delta {
    /// A header field, the question or the OPT record, shown as text.
    Value {
        field: &'static str,
        nsd: String,
        ours: String,
    },
    /// A section: the records found on one side only.
    Records {
        section: Section,
        nsd_only: Vec<Record>,
        ours_only: Vec<Record>,
    },
}

impl fmt::Display for Delta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Delta::Value { field, nsd, ours } => write!(f, "{field}: nsd={nsd} ours={ours}"),
            Delta::Records {
                section,
                nsd_only,
                ours_only,
            } => {
                write!(f, "{} section differs:", section.label())?;
                for record in nsd_only {
                    write!(f, "\n        only nsd:  {record}")?;
                }
                for record in ours_only {
                    write!(f, "\n        only ours: {record}")?;
                }
                Ok(())
            }
        }
    }
}

/// Whether two records are the same RR: owner name (case-insensitive,
/// RFC 4343), type, class, TTL and RDATA.
fn same_record(a: &Record, b: &Record) -> bool {
    a.name() == b.name()
        && a.record_type() == b.record_type()
        && a.dns_class() == b.dns_class()
        && a.ttl() == b.ttl()
        && a.data() == b.data()
}

/// The records of `a` without a partner in `b`, as multisets.
fn multiset_minus(a: &[Record], b: &[Record]) -> Vec<Record> {
    let mut unmatched: Vec<&Record> = b.iter().collect();
    a.iter()
        .filter(|record| {
            match unmatched
                .iter()
                .position(|other| same_record(record, other))
            {
                Some(found) => {
                    unmatched.swap_remove(found);
                    false
                }
                None => true,
            }
        })
        .cloned()
        .collect()
}

/// Reads one header flag.
type FlagGetter = fn(&Message) -> bool;

/// The header flags compared, with their accessors.
const FLAGS: [(&str, FlagGetter); 6] = [
    ("flag AA", Message::authoritative),
    ("flag TC", Message::truncated),
    ("flag RD", Message::recursion_desired),
    ("flag RA", Message::recursion_available),
    ("flag AD", Message::authentic_data),
    ("flag CD", Message::checking_disabled),
];

/// The question section as text, case preserved.
fn question_text(message: &Message) -> String {
    let questions: Vec<String> = message
        .queries()
        .iter()
        .map(|q| {
            format!(
                "{} {} {}",
                q.name().to_ascii(),
                q.query_class(),
                q.query_type()
            )
        })
        .collect();
    format!("[{}]", questions.join(", "))
}

/// The compared parts of the OPT record (the payload size is each
/// server's own and is not compared).
fn opt_text(message: &Message) -> String {
    match message.extensions() {
        None => "absent".into(),
        Some(edns) => format!(
            "version={} do={} ext-rcode={}",
            edns.version(),
            u8::from(edns.flags().dnssec_ok),
            edns.rcode_high()
        ),
    }
}

/// What is wrong with `response` as an answer to `query`: id, QR, opcode.
fn header_problems(query: &Message, response: &Message) -> String {
    let mut problems = Vec::new();
    if response.id() != query.id() {
        problems.push(format!("id {} for query id {}", response.id(), query.id()));
    }
    if response.message_type() != MessageType::Response {
        problems.push("QR clear".to_string());
    }
    if response.op_code() != OpCode::Query {
        problems.push(format!("opcode {:?}", response.op_code()));
    }
    if problems.is_empty() {
        "ok".into()
    } else {
        problems.join(", ")
    }
}

/// Every difference between the two responses to `query`.
fn compare(query: &Message, nsd: &Message, ours: &Message) -> Vec<Delta> {
    let mut deltas = Vec::new();
    let mut value = |field: &'static str, f: &dyn Fn(&Message) -> String| {
        let (nsd, ours) = (f(nsd), f(ours));
        if nsd != ours {
            deltas.push(Delta::Value { field, nsd, ours });
        }
    };
    value("header vs query", &|m| header_problems(query, m));
    value("rcode", &|m| m.response_code().to_string());
    for (field, flag) in FLAGS {
        value(field, &|m| u8::from(flag(m)).to_string());
    }
    value("question", &question_text);
    value("opt", &opt_text);
    let sent = question_text(query);
    value("question vs query", &|m| {
        if question_text(m) == sent {
            "same".into()
        } else {
            format!("{} for {sent}", question_text(m))
        }
    });
    for section in Section::ALL {
        let (a, b) = (section.records(nsd), section.records(ours));
        let nsd_only = multiset_minus(a, b);
        let ours_only = multiset_minus(b, a);
        if !nsd_only.is_empty() || !ours_only.is_empty() {
            deltas.push(Delta::Records {
                section,
                nsd_only,
                ours_only,
            });
        }
    }
    deltas
}

/// A query and the two responses it got.
struct Observed<'a> {
    case: &'a Case,
    nsd: &'a Message,
    ours: &'a Message,
    /// For an ANY query: every record NSD holds at the name (see
    /// [`records_at`]), what a full ANY answer must be; empty otherwise.
    at_name: &'a [Record],
}

/// Every record type that occurs in the diff zones' master files (a word
/// of a line that parses as a type), ANY and the meta types left out.
fn zone_types() -> Vec<RecordType> {
    let mut types = Vec::new();
    for zone in common::diff_zones() {
        let text = std::fs::read_to_string(&zone.source)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", zone.source.display()));
        let words = text
            .lines()
            .map(|line| line.split(';').next().unwrap_or_default())
            .flat_map(str::split_whitespace);
        for rtype in words.filter_map(|word| parse_type(word).ok()) {
            let meta = matches!(
                rtype,
                RecordType::ANY | RecordType::AXFR | RecordType::IXFR | RecordType::OPT
            );
            if !meta && !types.contains(&rtype) {
                types.push(rtype);
            }
        }
    }
    types
}

/// Every record NSD serves at `qname` itself (wildcard answers included),
/// asked type by type over TCP so that nothing is truncated; records of
/// other owners (a CNAME's target, glue) are left out.
fn records_at(nsd: std::net::SocketAddr, qname: &Name, types: &[RecordType]) -> Vec<Record> {
    let opts = QueryOpts {
        tcp: true,
        ..QueryOpts::default()
    };
    let mut records = Vec::new();
    for &rtype in types {
        let query = common::build_query(qname, rtype, &opts);
        let response = common::exchange(nsd, &query, true)
            .unwrap_or_else(|e| panic!("NSD gave no answer to {qname} {rtype}: {e}"));
        records.extend(
            response
                .answers()
                .iter()
                .filter(|r| r.name() == qname && r.record_type() == rtype)
                .cloned(),
        );
    }
    records
}

/// Whether `records` and `expected` are the same multiset of records.
fn same_records(records: &[Record], expected: &[Record]) -> bool {
    multiset_minus(records, expected).is_empty() && multiset_minus(expected, records).is_empty()
}

/// A kind of difference that is correct on our side, with its reason.
struct Allowance {
    /// Short name shown next to each difference it covers.
    id: &'static str,
    /// Why our answer is right, with the RFC.
    reason: &'static str,
    /// Whether this allowance covers `delta` in `observed`.
    applies: fn(&Observed<'_>, &Delta) -> bool,
}

/// The differences from NSD that are correct on our side.
const ALLOWED: &[Allowance] = &[
    Allowance {
        id: "no-apex-ns-in-authority",
        reason: "NSD (minimal-responses: no, its default) copies the zone's NS RRset into \
                 the authority section of positive answers. RFC 1034 §4.3.2 step 3a makes only \
                 the answer mandatory there; the NS RRset is optional extra data, which we \
                 leave out as NSD's minimal-responses: yes does.",
        applies: apex_ns_only_in_nsd,
    },
    Allowance {
        id: "no-addresses-of-those-ns",
        reason: "NSD adds the addresses of the name servers of that optional NS RRset to the \
                 additional section. Without the NS RRset they are not 'useful' additional \
                 data (RFC 1034 §4.3.2 step 6); addresses of NS, MX and SRV targets we do \
                 send still have to match.",
        applies: addresses_of_nsd_only_ns,
    },
    Allowance {
        id: "cd-copied",
        reason: "RFC 4035 §3.1.6: a name server MUST copy the CD bit from a query into \
                 the corresponding response. We do; NSD 4.6 clears it.",
        applies: cd_copied,
    },
    Allowance {
        id: "any-udp-other-rrset",
        reason: "RFC 8482 §4.1: an ANY query over UDP gets one RRset of the responder's \
                 choosing. NSD picks the SOA at an apex; we pick another RRset of the name, \
                 which must be that RRset whole, as NSD serves it to a query for its type.",
        applies: any_udp_one_rrset,
    },
    Allowance {
        id: "any-tcp-full",
        reason: "RFC 8482 §4 lets a responder give a conventional ANY answer over TCP \
                 (no amplification there) while minimizing over UDP; NSD minimizes on TCP \
                 too. Our answer must hold exactly the records at the name (RFC 1035 \
                 §3.2.3), as NSD serves them to a query for each type.",
        applies: any_tcp_superset,
    },
];

/// Whether `name` is the apex of one of the served zones.
fn is_served_apex(name: &Name) -> bool {
    common::diff_zones()
        .iter()
        .any(|zone| common::name(&zone.origin) == *name)
}

/// The target names of the NS records among `records`.
fn ns_targets<'a>(records: impl IntoIterator<Item = &'a Record>) -> Vec<Name> {
    records
        .into_iter()
        .filter_map(|record| record.data().as_ns().map(|ns| ns.0.clone()))
        .collect()
}

/// See the allowance `no-apex-ns-in-authority`.
fn apex_ns_only_in_nsd(seen: &Observed<'_>, delta: &Delta) -> bool {
    match delta {
        Delta::Records {
            section: Section::Authority,
            nsd_only,
            ours_only,
        } => {
            seen.ours.authoritative()
                && !seen.ours.answers().is_empty()
                && ours_only.is_empty()
                && nsd_only
                    .iter()
                    .all(|r| r.record_type() == RecordType::NS && is_served_apex(r.name()))
        }
        _ => false,
    }
}

/// See the allowance `no-addresses-of-those-ns`.
fn addresses_of_nsd_only_ns(seen: &Observed<'_>, delta: &Delta) -> bool {
    let Delta::Records {
        section: Section::Additional,
        nsd_only,
        ours_only,
    } = delta
    else {
        return false;
    };
    let nsd_only_ns = multiset_minus(seen.nsd.name_servers(), seen.ours.name_servers());
    let targets = ns_targets(&nsd_only_ns);
    ours_only.is_empty()
        && nsd_only.iter().all(|r| {
            matches!(r.record_type(), RecordType::A | RecordType::AAAA)
                && targets.contains(r.name())
        })
}

/// See the allowance `cd-copied`.
fn cd_copied(seen: &Observed<'_>, delta: &Delta) -> bool {
    matches!(delta, Delta::Value { field: "flag CD", nsd, ours } if nsd == "0" && ours == "1")
        && seen.case.opts.cd
}

/// Whether `records` are one whole RRset at the name: every record NSD
/// holds there of the first record's type, and nothing else.
fn is_one_whole_rrset(records: &[Record], at_name: &[Record]) -> bool {
    records.first().is_some_and(|first| {
        let rrset: Vec<Record> = at_name
            .iter()
            .filter(|r| r.record_type() == first.record_type())
            .cloned()
            .collect();
        same_records(records, &rrset)
    })
}

/// Whether `delta` is in the answer to an ANY query over TCP (`tcp`) or
/// UDP, to which NSD answered with one whole RRset of the name.
fn any_answer_delta(seen: &Observed<'_>, delta: &Delta, tcp: bool) -> bool {
    seen.case.qtype == RecordType::ANY
        && seen.case.opts.tcp == tcp
        && matches!(
            delta,
            Delta::Records {
                section: Section::Answer,
                ..
            }
        )
        && is_one_whole_rrset(seen.nsd.answers(), seen.at_name)
}

/// See the allowance `any-udp-other-rrset`.
fn any_udp_one_rrset(seen: &Observed<'_>, delta: &Delta) -> bool {
    any_answer_delta(seen, delta, false) && is_one_whole_rrset(seen.ours.answers(), seen.at_name)
}

/// See the allowance `any-tcp-full`.
fn any_tcp_superset(seen: &Observed<'_>, delta: &Delta) -> bool {
    any_answer_delta(seen, delta, true) && same_records(seen.ours.answers(), seen.at_name)
}

/// The outcome of one query on one server.
type Outcome = Result<Message, String>;

/// The verdict on one query.
struct Report<'a> {
    case: &'a Case,
    /// Differences with the allowance covering them, if any.
    deltas: Vec<(Delta, Option<&'static Allowance>)>,
}

/// Compares the outcomes of `case` and attaches allowances.
fn judge<'a>(
    case: &'a Case,
    query: &Message,
    nsd: &Outcome,
    ours: &Outcome,
    at_name: &[Record],
) -> Report<'a> {
    let deltas = match (nsd, ours) {
        (Ok(nsd), Ok(ours)) => {
            let observed = Observed {
                case,
                nsd,
                ours,
                at_name,
            };
            compare(query, nsd, ours)
                .into_iter()
                .map(|delta| {
                    let allowance = ALLOWED.iter().find(|a| (a.applies)(&observed, &delta));
                    (delta, allowance)
                })
                .collect()
        }
        _ => {
            let show = |o: &Outcome| match o {
                Ok(m) => format!("{} response", m.response_code()),
                Err(e) => format!("error: {e}"),
            };
            vec![(
                Delta::Value {
                    field: "response",
                    nsd: show(nsd),
                    ours: show(ours),
                },
                None,
            )]
        }
    };
    Report { case, deltas }
}

/// Starts the "ours" side: steerdns, or a second NSD for a harness check.
fn start_ours(nsd: &std::path::Path, zones: &[common::ZoneFile]) -> ServerProcess {
    match std::env::var("STEERDNS_DIFF_BASELINE").as_deref() {
        Ok("nsd") => common::start_nsd(nsd, zones, MAX_UDP_PAYLOAD),
        _ => common::start_steerdns(zones, &format!("max-udp-payload = {MAX_UDP_PAYLOAD}")),
    }
}

/// Prints every difference, grouped into not allowed and allowed, then
/// the reasons of the allowances used; returns the count not allowed.
fn print_summary(reports: &[Report<'_>], queries: usize) -> usize {
    let count = |allowed: bool| {
        reports
            .iter()
            .flat_map(|r| &r.deltas)
            .filter(|(_, a)| a.is_some() == allowed)
            .count()
    };
    let (bad, good) = (count(false), count(true));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "NSD differential test: {queries} queries, {} with differences; \
         {bad} differences not allowed, {good} allowed",
        reports.iter().filter(|r| !r.deltas.is_empty()).count()
    );
    for (title, allowed) in [("NOT ALLOWED", false), ("ALLOWED", true)] {
        let _ = writeln!(out, "=== {title} ===");
        for report in reports {
            let deltas: Vec<_> = report
                .deltas
                .iter()
                .filter(|(_, a)| a.is_some() == allowed)
                .collect();
            if deltas.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{}", report.case);
            for (delta, allowance) in deltas {
                let tag = allowance
                    .map(|a| format!("[{}] ", a.id))
                    .unwrap_or_default();
                let _ = writeln!(out, "    {tag}{delta}");
            }
        }
    }
    let _ = writeln!(out, "=== ALLOWANCES ===");
    for allowance in ALLOWED {
        let used = reports
            .iter()
            .flat_map(|r| &r.deltas)
            .filter(|(_, a)| a.is_some_and(|a| a.id == allowance.id))
            .count();
        let _ = writeln!(out, "[{}] used {used}x: {}", allowance.id, allowance.reason);
    }
    eprint!("{out}");
    bad
}

#[test]
fn steerdns_answers_like_nsd() {
    let Some(nsd_bin) = common::require_tool("nsd", "nsd") else {
        return;
    };
    let cases = load_cases();
    assert!(
        cases.len() >= MIN_QUERIES,
        "queries.txt holds {} queries; keep at least {MIN_QUERIES}",
        cases.len()
    );
    let zones = common::diff_zones();
    let nsd = common::start_nsd(&nsd_bin, &zones, MAX_UDP_PAYLOAD);
    let mut ours = start_ours(&nsd_bin, &zones);

    let types = zone_types();
    let mut reports = Vec::new();
    let mut failures_in_a_row = 0;
    for case in &cases {
        let at_name = if case.qtype == RecordType::ANY {
            records_at(nsd.addr(), &case.qname, &types)
        } else {
            Vec::new()
        };
        let query = common::build_query(&case.qname, case.qtype, &case.opts);
        let nsd_outcome = common::exchange(nsd.addr(), &query, case.opts.tcp);
        let our_outcome = common::exchange(ours.addr(), &query, case.opts.tcp);
        failures_in_a_row = if our_outcome.is_ok() {
            0
        } else {
            failures_in_a_row + 1
        };
        reports.push(judge(case, &query, &nsd_outcome, &our_outcome, &at_name));
        if !ours.is_running() || failures_in_a_row >= MAX_CONSECUTIVE_FAILURES {
            print_summary(&reports, reports.len());
            panic!(
                "steerdns stopped answering at {case} (running: {})\n{}",
                ours.is_running(),
                ours.logs()
            );
        }
    }
    let bad = print_summary(&reports, cases.len());
    assert_eq!(
        bad, 0,
        "{bad} differences from NSD are not allowed; see the summary above"
    );
}

#[test]
fn query_lines_parse() {
    let case = parse_case(7, "WWW.Example.com TYPE65280 tcp noedns rd cd").expect("valid line");
    assert_eq!(case.qname.to_ascii(), "WWW.Example.com.");
    assert_eq!(case.qtype, RecordType::Unknown(65280));
    let expected = QueryOpts {
        tcp: true,
        edns: None,
        dnssec_ok: false,
        rd: true,
        cd: true,
    };
    assert_eq!(case.opts, expected);
    let sized = parse_case(1, ". ns bufsize=512 do").expect("valid line");
    assert!(sized.qname.is_root());
    assert_eq!(
        (sized.qtype, sized.opts.edns, sized.opts.dnssec_ok),
        (RecordType::NS, Some(512), true)
    );
    for bad in [
        "www.example.com",
        "www.example.com A udp",
        "x A do noedns",
        "x NOTATYPE",
    ] {
        assert!(parse_case(1, bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn sections_compare_as_multisets() {
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::RData;
    let a = |owner: &str, ttl: u32, last: u8| {
        Record::from_rdata(common::name(owner), ttl, RData::A(A::new(192, 0, 2, last)))
    };
    let nsd = [
        a("www.example.com.", 300, 1),
        a("www.example.com.", 300, 2),
        a("www.example.com.", 300, 2),
    ];
    let reordered = [
        a("WWW.example.COM.", 300, 2),
        a("www.example.com.", 300, 1),
        a("www.example.com.", 300, 2),
    ];
    assert!(multiset_minus(&nsd, &reordered).is_empty());
    assert!(multiset_minus(&reordered, &nsd).is_empty());
    let other_ttl = [
        a("www.example.com.", 300, 1),
        a("www.example.com.", 60, 2),
        a("www.example.com.", 300, 2),
    ];
    assert_eq!(
        multiset_minus(&nsd, &other_ttl).len(),
        1,
        "a TTL difference counts"
    );
    assert_eq!(
        multiset_minus(&nsd, &nsd[..2]).len(),
        1,
        "a duplicate counts"
    );
}

#[test]
fn any_allowances_take_only_whole_rrsets_at_the_name() {
    use hickory_proto::rr::rdata::{A, TXT};
    use hickory_proto::rr::RData;
    let owner = common::name("x.example.com.");
    let a = |last: u8| Record::from_rdata(owner.clone(), 300, RData::A(A::new(192, 0, 2, last)));
    let txt = Record::from_rdata(owner.clone(), 300, RData::TXT(TXT::new(vec!["t".into()])));
    let at_name = [a(1), a(2), txt.clone()];
    let message = |records: &[Record]| {
        let mut m = Message::new();
        m.add_answers(records.iter().cloned());
        m
    };
    let judge_any = |tcp: bool, nsd: &[Record], ours: &[Record]| {
        let case = parse_case(
            1,
            &format!("x.example.com ANY{}", if tcp { " tcp" } else { "" }),
        )
        .unwrap();
        let (nsd, ours) = (message(nsd), message(ours));
        let seen = Observed {
            case: &case,
            nsd: &nsd,
            ours: &ours,
            at_name: &at_name,
        };
        let delta = Delta::Records {
            section: Section::Answer,
            nsd_only: multiset_minus(nsd.answers(), ours.answers()),
            ours_only: multiset_minus(ours.answers(), nsd.answers()),
        };
        (
            any_udp_one_rrset(&seen, &delta),
            any_tcp_superset(&seen, &delta),
        )
    };
    let nsd = [txt.clone()];
    // UDP: another whole RRset is fine; half of one, or one plus a stray
    // record, is not.
    assert!(judge_any(false, &nsd, &[a(1), a(2)]).0);
    assert!(!judge_any(false, &nsd, &[a(1)]).0);
    assert!(!judge_any(false, &nsd, &[a(1), a(2), a(3)]).0);
    // TCP: exactly the records at the name; one missing or one too many
    // is a difference.
    assert!(judge_any(true, &nsd, &at_name).1);
    assert!(!judge_any(true, &nsd, &[a(1), txt.clone()]).1);
    assert!(!judge_any(true, &nsd, &[a(1), a(2), a(3), txt.clone()]).1);
}
