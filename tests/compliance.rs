//! Protocol compliance of the real server, probe by probe.
//!
//! Two tables, each row a named case sent to `steerdns serve` over real
//! sockets (the zone is `tests/data/compliance/compliance.example.zone`):
//!
//! * [`ISC_PROBES`]: the queries of ISC's DNS compliance tool (`genreport`,
//!   behind ednscomp.isc.org) and RFC 8906 §8, built byte for byte as
//!   `genreport` builds them, and judged by [`isc_verdict`], a transcription
//!   of the checks of `genreport`'s `process()`. A probe passes when the
//!   verdict is exactly the expected list of tags (`ok` plus informational
//!   tags such as `subnet`), as `genreport` would print it.
//! * [`CASES`]: what the ISC tool does not send: large answers against small
//!   and large EDNS buffers (TC), QDCOUNT 0 and 2, cut-off questions, a
//!   message with QR set (no reply), and the EDNS Client Subnet
//!   malformations of RFC 7871 §7.1 (FORMERR with an OPT record), and a
//!   valid ECS option echoed with scope 0 (RFC 7871 §7.2.1); DNS cookies
//!   (RFC 7873, RFC 9018): malformed lengths, a client cookie alone, one
//!   without a question, a server cookie not ours over UDP and TCP.
//! * `dig +cookie` against the server: the COOKIE it gets, and that
//!   presenting it back is accepted.
//!
//! Every failing row is named in the panic message, after all rows ran.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{ServerProcess, ZoneFile};

/// The zone every probe asks about, as `genreport` writes names.
const ZONE: &str = "compliance.example";

/// The largest UDP reply the server is configured for, so the 4096-octet
/// probes can get a whole large answer over UDP.
const MAX_UDP_PAYLOAD: u16 = 4096;

/// How long to wait for a reply that must not come.
const SILENCE: Duration = Duration::from_millis(600);

/// Record types and classes used here.
mod rr {
    pub const SOA: u16 = 6;
    pub const TXT: u16 = 16;
    pub const OPT: u16 = 41;
    pub const RRSIG: u16 = 46;
    pub const DNSKEY: u16 = 48;
    pub const IN: u16 = 1;
}

/// Response codes, extended ones included.
mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const NOTIMP: u16 = 4;
    pub const BADVERS: u16 = 16;
    pub const BADCOOKIE: u16 = 23;
}

/// EDNS option codes `genreport` looks at.
mod option {
    pub const NSID: u16 = 3;
    pub const ECS: u16 = 8;
    pub const EXPIRE: u16 = 9;
    pub const COOKIE: u16 = 10;
    /// The unassigned code of the `ednsopt` probes; it must not be echoed.
    pub const UNKNOWN: u16 = 100;
}

/// Header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2).
const AA: u16 = 0x0400;
const TC: u16 = 0x0200;
const RD: u16 = 0x0100;
const RA: u16 = 0x0080;
const Z: u16 = 0x0040;
const AD: u16 = 0x0020;
const CD: u16 = 0x0010;

/// The DO bit of the EDNS flags (RFC 3225).
const DO: u16 = 0x8000;

/// The client cookie of the `optlist` and cookie probes.
const CLIENT_COOKIE: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

// ---------------------------------------------------------------------------
// The server.

/// Starts steerdns on the compliance zone.
fn start_server() -> ServerProcess {
    let zone = ZoneFile {
        origin: format!("{ZONE}."),
        source: common::data_dir()
            .join("compliance")
            .join("compliance.example.zone"),
    };
    common::start_steerdns(&[zone], &format!("max-udp-payload = {MAX_UDP_PAYLOAD}"))
}

/// A fresh message id for each query, so stray replies cannot match.
fn next_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static ID: AtomicU16 = AtomicU16::new(0x5a00);
    ID.fetch_add(1, Ordering::Relaxed)
}

/// Sends `wire` and returns the reply's bytes.
fn send(addr: SocketAddr, wire: &[u8], tcp: bool) -> Result<Vec<u8>, String> {
    if tcp {
        common::exchange_tcp(addr, wire, common::QUERY_TIMEOUT)
    } else {
        common::exchange_udp(addr, wire, common::QUERY_TIMEOUT, 3)
    }
}

// ---------------------------------------------------------------------------
// Building queries.

/// `name` (dotted, without the final dot) in uncompressed wire format.
fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// An OPT pseudo-record (RFC 6891 §6.1.2).
#[derive(Debug, Clone, Copy)]
struct Opt {
    /// Requestor's UDP payload size (the CLASS field).
    udp_size: u16,
    /// EDNS version.
    version: u8,
    /// The 16 flag bits of the TTL field: DO is 0x8000.
    flags: u16,
    /// The RDATA: options, already encoded.
    options: &'static [u8],
}

impl Opt {
    /// EDNS 0 with a 4096-octet buffer and no flags or options.
    const PLAIN: Opt = Opt {
        udp_size: 4096,
        version: 0,
        flags: 0,
        options: &[],
    };

    /// Appends the record to `msg` and counts it in ARCOUNT.
    fn append_to(&self, msg: &mut Vec<u8>) {
        msg.push(0);
        msg.extend_from_slice(&rr::OPT.to_be_bytes());
        msg.extend_from_slice(&self.udp_size.to_be_bytes());
        let ttl = (u32::from(self.version) << 16) | u32::from(self.flags);
        msg.extend_from_slice(&ttl.to_be_bytes());
        msg.extend_from_slice(&(self.options.len() as u16).to_be_bytes());
        msg.extend_from_slice(self.options);
        let arcount = u16::from_be_bytes([msg[10], msg[11]]) + 1;
        msg[10..12].copy_from_slice(&arcount.to_be_bytes());
    }
}

/// A query: header with `flags` (the second and third octets of the
/// header, opcode included), one question for `qname`/`qtype` in class IN,
/// and `opt` when given.
fn query(id: u16, flags: [u8; 2], qname: &str, qtype: u16, opt: Option<Opt>) -> Vec<u8> {
    let mut msg = id.to_be_bytes().to_vec();
    msg.extend_from_slice(&flags);
    msg.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    msg.extend_from_slice(&wire_name(qname));
    msg.extend_from_slice(&qtype.to_be_bytes());
    msg.extend_from_slice(&rr::IN.to_be_bytes());
    if let Some(opt) = opt {
        opt.append_to(&mut msg);
    }
    msg
}

// ---------------------------------------------------------------------------
// Reading replies.

/// One resource record of a reply, as far as the checks need it.
#[derive(Debug, Clone)]
struct Record {
    /// Owner name, dotted, without the final dot (the root is "").
    owner: String,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: Vec<u8>,
}

/// A reply taken apart the way `genreport` reads it: names expanded, every
/// RDATA within its message, nothing left over at the end.
#[derive(Debug)]
struct Reply {
    /// The whole message length.
    len: usize,
    id: u16,
    /// The 16-bit flags word (QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode).
    flags: u16,
    questions: Vec<(String, u16, u16)>,
    answers: Vec<Record>,
    authority: Vec<Record>,
    additional: Vec<Record>,
}

impl Reply {
    /// Parses `msg`; an error means `genreport` would tag it `malformed`.
    fn parse(msg: &[u8]) -> Result<Reply, String> {
        let word = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
        if msg.len() < 12 {
            return Err(format!("{} octets: shorter than a header", msg.len()));
        }
        let mut pos = 12;
        let mut questions = Vec::new();
        for _ in 0..word(4) {
            let name = read_name(msg, &mut pos)?;
            let fixed = msg.get(pos..pos + 4).ok_or("question cut short")?;
            questions.push((
                name,
                u16::from_be_bytes([fixed[0], fixed[1]]),
                u16::from_be_bytes([fixed[2], fixed[3]]),
            ));
            pos += 4;
        }
        let mut sections = [Vec::new(), Vec::new(), Vec::new()];
        for (i, section) in sections.iter_mut().enumerate() {
            for _ in 0..word(6 + 2 * i) {
                section.push(read_record(msg, &mut pos)?);
            }
        }
        if pos != msg.len() {
            return Err(format!("{} octets after the last record", msg.len() - pos));
        }
        let [answers, authority, additional] = sections;
        Ok(Reply {
            len: msg.len(),
            id: word(0),
            flags: word(2),
            questions,
            answers,
            authority,
            additional,
        })
    }

    fn bit(&self, mask: u16) -> bool {
        self.flags & mask != 0
    }

    fn qr(&self) -> bool {
        self.bit(0x8000)
    }

    fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }

    fn aa(&self) -> bool {
        self.bit(AA)
    }

    fn tc(&self) -> bool {
        self.bit(TC)
    }

    /// The OPT record, if any.
    fn opt(&self) -> Option<&Record> {
        self.additional.iter().find(|r| r.rtype == rr::OPT)
    }

    /// The full response code: header rcode plus the OPT's extended bits.
    fn rcode(&self) -> u16 {
        let ext = self.opt().map_or(0, |o| (o.ttl >> 24) as u16);
        (ext << 4) | (self.flags & 0xf)
    }

    /// The EDNS options of the OPT record, in order.
    fn options(&self) -> Result<Vec<(u16, Vec<u8>)>, String> {
        self.opt()
            .map_or(Ok(Vec::new()), |o| split_options(&o.rdata))
    }
}

/// Splits OPT RDATA into `(code, data)` options; every octet must belong
/// to one.
fn split_options(mut rdata: &[u8]) -> Result<Vec<(u16, Vec<u8>)>, String> {
    let mut out = Vec::new();
    while !rdata.is_empty() {
        let [c0, c1, l0, l1, rest @ ..] = rdata else {
            return Err("OPT RDATA ends inside an option header".into());
        };
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let data = rest.get(..len).ok_or("EDNS option overruns its OPT")?;
        out.push((u16::from_be_bytes([*c0, *c1]), data.to_vec()));
        rdata = &rest[len..];
    }
    Ok(out)
}

/// Reads a possibly compressed name at `*pos` and moves past it.
fn read_name(msg: &[u8], pos: &mut usize) -> Result<String, String> {
    let mut labels: Vec<String> = Vec::new();
    let mut at = *pos;
    let mut end = None;
    let mut wire_len = 1;
    for _ in 0..256 {
        let len = *msg.get(at).ok_or("name runs past the message")?;
        match len {
            0 => {
                *pos = end.unwrap_or(at + 1);
                return Ok(labels.join("."));
            }
            1..=63 => {
                let label = msg
                    .get(at + 1..at + 1 + usize::from(len))
                    .ok_or("label runs past the message")?;
                wire_len += 1 + label.len();
                if wire_len > 255 {
                    return Err("name longer than 255 octets".into());
                }
                labels.push(String::from_utf8_lossy(label).into_owned());
                at += 1 + usize::from(len);
            }
            0xc0..=0xff => {
                let low = *msg.get(at + 1).ok_or("pointer cut short")?;
                end.get_or_insert(at + 2);
                let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                if target >= at {
                    return Err(format!("pointer at {at} does not point backwards"));
                }
                at = target;
            }
            _ => return Err(format!("label type {len:#04x}")),
        }
    }
    Err("name with more than 255 labels or pointers".into())
}

/// Reads one resource record at `*pos` and moves past it.
fn read_record(msg: &[u8], pos: &mut usize) -> Result<Record, String> {
    let owner = read_name(msg, pos)?;
    let fixed = msg.get(*pos..*pos + 10).ok_or("record header cut short")?;
    let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let record = Record {
        owner,
        rtype: u16::from_be_bytes([fixed[0], fixed[1]]),
        class: u16::from_be_bytes([fixed[2], fixed[3]]),
        ttl: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        rdata: msg
            .get(*pos + 10..*pos + 10 + rdlen)
            .ok_or("RDATA runs past the message")?
            .to_vec(),
    };
    *pos += 10 + rdlen;
    Ok(record)
}

// ---------------------------------------------------------------------------
// The ISC probes.

/// One row of `genreport`'s test table (`opts[]` in genreport.c): the
/// query it sends and the parameters its checks read.
#[derive(Debug, Clone, Copy)]
struct IscProbe {
    /// The test mnemonic, as `genreport` prints it.
    name: &'static str,
    /// The OPT RDATA (options) of the query.
    options: &'static [u8],
    /// EDNS UDP size; 0 means no OPT record.
    udp_size: u16,
    /// EDNS flags (the low 16 bits of the OPT TTL).
    flags: u16,
    /// EDNS version.
    version: u8,
    /// Sent over TCP.
    tcp: bool,
    /// The OPT record carries a client cookie.
    cookie: bool,
    /// TC in the reply is not followed up over TCP; the UDP reply must then
    /// fit in `udp_size` (or 512).
    ignore_tc: bool,
    /// Header bits set in the query: [`AA`], [`TC`], [`RD`], [`RA`], [`Z`],
    /// [`AD`], [`CD`].
    header: u16,
    /// The opcode; genreport's only non-query opcode is 15, sent header-only
    /// with QDCOUNT 0.
    opcode: u8,
    /// The question type.
    qtype: u16,
}

impl IscProbe {
    /// A plain `dig +noedns +norec SOA <zone>` row to start from.
    const BASE: IscProbe = IscProbe {
        name: "",
        options: &[],
        udp_size: 0,
        flags: 0,
        version: 0,
        tcp: false,
        cookie: false,
        ignore_tc: false,
        header: 0,
        opcode: 0,
        qtype: rr::SOA,
    };

    /// `BASE` with EDNS 0 and a 4096-octet buffer.
    const EDNS: IscProbe = IscProbe {
        udp_size: 4096,
        ..IscProbe::BASE
    };

    /// Whether the query has header bit `bit`.
    fn has(&self, bit: u16) -> bool {
        self.header & bit != 0
    }

    /// With `options` as the OPT RDATA.
    const fn options(self, options: &'static [u8]) -> Self {
        IscProbe { options, ..self }
    }

    /// With an EDNS UDP size of `udp_size`.
    const fn udp(self, udp_size: u16) -> Self {
        IscProbe { udp_size, ..self }
    }

    /// With EDNS flags `flags`.
    const fn flags(self, flags: u16) -> Self {
        IscProbe { flags, ..self }
    }

    /// With EDNS version `version`.
    const fn version(self, version: u8) -> Self {
        IscProbe { version, ..self }
    }

    /// Sent over TCP.
    const fn tcp(self) -> Self {
        IscProbe { tcp: true, ..self }
    }

    /// Carrying a client cookie.
    const fn cookie(self) -> Self {
        IscProbe {
            cookie: true,
            ..self
        }
    }

    /// Not following TC up over TCP.
    const fn ignore_tc(self) -> Self {
        IscProbe {
            ignore_tc: true,
            ..self
        }
    }

    /// With header bits `bits` set.
    const fn header(self, bits: u16) -> Self {
        IscProbe {
            header: self.header | bits,
            ..self
        }
    }

    /// With opcode `opcode` (a header alone, see [`IscProbe::query`]).
    const fn opcode(self, opcode: u8) -> Self {
        IscProbe {
            opcode,
            qtype: 0,
            ..self
        }
    }

    /// Asking for `qtype`.
    const fn qtype(self, qtype: u16) -> Self {
        IscProbe { qtype, ..self }
    }

    /// The query, built as genreport's `dotest()` builds it.
    fn query(&self, id: u16) -> Vec<u8> {
        let [b2, b3] = self.header.to_be_bytes();
        let opt = (self.udp_size > 0).then_some(Opt {
            udp_size: self.udp_size,
            version: self.version,
            flags: self.flags,
            options: self.options,
        });
        if self.opcode == 0 {
            return query(id, [b2, b3], ZONE, self.qtype, opt);
        }
        // A header alone, with the opcode and (for opcode 15) QDCOUNT 0.
        let mut msg = query(id, [b2 | (self.opcode << 3), b3], ZONE, 0, None);
        msg.truncate(12);
        if self.opcode == 15 {
            msg[4..6].fill(0);
        }
        if let Some(opt) = opt {
            opt.append_to(&mut msg);
        }
        msg
    }
}

/// The OPT RDATA of genreport's `optlist` probe: NSID, ECS 0.0.0.0/0,
/// EXPIRE and a client COOKIE.
const OPTLIST: &[u8] = &[
    0, 3, 0, 0, // NSID, empty
    0, 8, 0, 4, 0, 1, 0, 0, // ECS: IPv4, source 0, scope 0
    0, 9, 0, 0, // EXPIRE, empty
    0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, // COOKIE: client cookie only
];
const OPT_UNKNOWN_100: &[u8] = &[0, 100, 0, 0];
const OPT_NSID: &[u8] = &[0, 3, 0, 0];
const OPT_COOKIE: &[u8] = &[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
const OPT_EXPIRE: &[u8] = &[0, 9, 0, 0];
const OPT_ECS_ZERO: &[u8] = &[0, 8, 0, 4, 0, 1, 0, 0];

/// Shorthand for a table row: a probe and the tags genreport must print.
const fn isc(name: &'static str, probe: IscProbe, tags: &'static [&'static str]) -> IscCase {
    IscCase {
        probe: IscProbe { name, ..probe },
        tags,
    }
}

/// A probe and the exact verdict expected of steerdns.
struct IscCase {
    probe: IscProbe,
    tags: &'static [&'static str],
}

/// genreport's EDNS tests (its default set) and its FULL set (`-f`), less
/// `dnswkk` (TSIG, which steerdns does not implement) and `icmp`, in the
/// order of genreport's table.
const ISC_PROBES: &[IscCase] = &[
    // --- the default (EDNS) set, as ednscomp.isc.org runs it ---
    isc("dns", IscProbe::BASE, &["ok"]),
    isc("edns", IscProbe::EDNS, &["ok"]),
    isc("edns1", IscProbe::EDNS.version(1), &["ok"]),
    isc(
        "edns@512",
        IscProbe::EDNS
            .udp(512)
            .flags(DO)
            .ignore_tc()
            .qtype(rr::DNSKEY),
        &["ok"],
    ),
    isc("ednsopt", IscProbe::EDNS.options(OPT_UNKNOWN_100), &["ok"]),
    isc(
        "edns1opt",
        IscProbe::EDNS.options(OPT_UNKNOWN_100).version(1),
        &["ok"],
    ),
    isc("do", IscProbe::EDNS.flags(DO), &["ok"]),
    isc("ednsflags", IscProbe::EDNS.flags(0x0080), &["ok"]),
    isc(
        "optlist",
        IscProbe::EDNS.options(OPTLIST).cookie(),
        &["ok", "nsid", "cookie", "subnet"],
    ),
    isc(
        "ednstcp",
        IscProbe::EDNS.udp(512).flags(DO).tcp().qtype(rr::DNSKEY),
        &["ok"],
    ),
    // --- the FULL set (`genreport -f`) ---
    isc("aa", IscProbe::BASE.header(AA), &["ok"]),
    isc("ad", IscProbe::BASE.header(AD), &["ok"]),
    isc("cd", IscProbe::BASE.header(CD), &["ok"]),
    isc("ra", IscProbe::BASE.header(RA), &["ok"]),
    isc("rd", IscProbe::BASE.header(RD), &["ok"]),
    isc("tc", IscProbe::BASE.header(TC), &["ok"]),
    isc("zflag", IscProbe::BASE.header(Z), &["ok"]),
    isc("opcode", IscProbe::BASE.opcode(15), &["ok"]),
    isc(
        "opcodeflg",
        IscProbe::BASE
            .opcode(15)
            .header(TC | RD | RA | CD | AD | AA | Z),
        &["ok"],
    ),
    isc("type666", IscProbe::BASE.qtype(666), &["ok"]),
    isc("tcp", IscProbe::BASE.tcp(), &["ok"]),
    isc("docd", IscProbe::EDNS.flags(DO).header(CD), &["ok"]),
    isc("edns1do", IscProbe::EDNS.flags(DO).version(1), &["ok"]),
    // NSID is answered with the identity, the host name by default.
    isc(
        "ednsnsid",
        IscProbe::EDNS.options(OPT_NSID),
        &["ok", "nsid"],
    ),
    isc(
        "ednscookie",
        IscProbe::EDNS.options(OPT_COOKIE).cookie(),
        &["ok", "cookie"],
    ),
    isc("ednsexpire", IscProbe::EDNS.options(OPT_EXPIRE), &["ok"]),
    isc(
        "ednssubnet",
        IscProbe::EDNS.options(OPT_ECS_ZERO),
        &["ok", "subnet"],
    ),
    isc(
        "edns1nsid",
        IscProbe::EDNS.options(OPT_NSID).version(1),
        &["ok", "nsid"],
    ),
    isc(
        "edns1cookie",
        IscProbe::EDNS.options(OPT_COOKIE).cookie().version(1),
        &["ok", "cookie"],
    ),
    isc(
        "edns1expire",
        IscProbe::EDNS.options(OPT_EXPIRE).version(1),
        &["ok"],
    ),
    isc(
        "edns1subnet",
        IscProbe::EDNS.options(OPT_ECS_ZERO).version(1),
        &["ok"],
    ),
    // --- the COMM set (what BIND 9.11 and its dig send) ---
    isc(
        "bind11",
        IscProbe::EDNS.options(OPT_COOKIE).cookie().flags(DO),
        &["ok", "cookie"],
    ),
    isc(
        "dig11",
        IscProbe::EDNS.options(OPT_COOKIE).cookie().header(RD | AD),
        &["ok", "cookie"],
    ),
];

/// The tags genreport's `process()` gives `reply` to `probe`, in its order:
/// failure tags, then `ok` when there were none, then informational tags.
/// `genreport` runs non-recursively here (no `-R`).
fn isc_verdict(probe: &IscProbe, reply: &Reply) -> Vec<String> {
    let mut v = Verdict::default();

    let non_query = probe.opcode != 0;
    if non_query && !reply.questions.is_empty() {
        v.fail("non-empty-question-section");
    }
    for (name, qtype, _) in &reply.questions {
        if !non_query && (!name.eq_ignore_ascii_case(ZONE) || *qtype != probe.qtype) {
            // genreport drops such a reply and waits for a matching one.
            v.fail("mismatch");
        }
    }
    if non_query && !reply.answers.is_empty() {
        v.fail("non-empty-answer-section");
    }
    let seen_soa = reply
        .answers
        .iter()
        .any(|r| r.rtype == rr::SOA && r.owner.eq_ignore_ascii_case(ZONE));
    let seen_rrsig = reply.answers.iter().any(|r| r.rtype == rr::RRSIG);
    if non_query && !reply.authority.is_empty() {
        v.fail("non-empty-authority-section");
    }
    if non_query && !reply.additional.is_empty() {
        v.fail("non-empty-additional-section");
    }

    let opts = reply.opt();
    let seen_opt = opts.is_some();
    let edns_ttl = opts.map_or(0, |o| o.ttl);
    let options = match reply.options() {
        Ok(o) => o,
        Err(_) => return vec!["malformed".into()],
    };
    if reply
        .additional
        .iter()
        .filter(|r| r.rtype == rr::OPT)
        .count()
        > 1
    {
        return vec!["malformed".into()];
    }
    let seen = |code: u16, len: fn(usize) -> bool| {
        options
            .iter()
            .any(|(c, data)| *c == code && len(data.len()))
    };
    let seen_nsid = seen(option::NSID, |n| n > 0);
    let seen_ecs = seen(option::ECS, |_| true);
    let seen_expire = seen(option::EXPIRE, |n| n == 4);
    let cookies: Vec<&Vec<u8>> = options
        .iter()
        .filter(|(c, d)| *c == option::COOKIE && (16..=40).contains(&d.len()))
        .map(|(_, d)| d)
        .collect();
    let seen_cookie = !cookies.is_empty();
    let good_cookie = cookies.iter().any(|d| d[..8] == CLIENT_COOKIE);
    if probe.cookie && cookies.iter().any(|d| d[..8] != CLIENT_COOKIE) {
        // genreport fails such a probe without a tag of its own.
        v.ok = false;
    }
    let seen_echo = seen(option::UNKNOWN, |_| true);

    let rcode = reply.rcode();
    if probe.opcode != reply.opcode() {
        let text = match reply.opcode() {
            0 => "query".to_string(),
            1 => "iquery".to_string(),
            2 => "status".to_string(),
            4 => "notify".to_string(),
            5 => "update".to_string(),
            n => format!("opcode{n}"),
        };
        v.fail(&text);
    }
    if probe.version == 0 {
        let bad_query_rcode = !non_query
            && rcode != rcode::NOERROR
            && (!probe.cookie || rcode != rcode::BADCOOKIE || !seen_cookie);
        if bad_query_rcode || (non_query && rcode != rcode::NOTIMP) {
            v.fail(&rcode_text(rcode));
        }
    } else if rcode != rcode::BADVERS {
        v.fail(&rcode_text(rcode));
    }

    let edns_version = ((edns_ttl >> 16) & 0xff) as u8;
    if seen_opt && edns_version != 0 {
        v.fail("version-not-zero");
    }
    if seen_opt
        && ((edns_version < probe.version && rcode != rcode::BADVERS)
            || (edns_version >= probe.version && rcode == rcode::BADVERS))
    {
        v.fail("badversion");
    }
    if !seen_opt && probe.udp_size != 0 {
        v.fail("noopt");
    }
    if seen_opt && probe.udp_size == 0 {
        v.fail("opt");
    }
    if probe.qtype == rr::SOA
        && probe.version == 0
        && !probe.ignore_tc
        && !seen_soa
        && rcode == rcode::NOERROR
    {
        v.fail("nosoa");
    }
    if probe.qtype == rr::SOA && seen_soa && (probe.version != 0 || rcode != rcode::NOERROR) {
        v.fail("soa");
    }
    if seen_echo {
        v.fail("echoed");
    }
    let probe_do = probe.flags & DO != 0;
    let reply_do = edns_ttl & u32::from(DO) != 0;
    if seen_opt && probe_do && !reply_do && seen_rrsig {
        v.fail("nodo");
    }
    if seen_opt && probe_do && probe.has(CD) && reply_do && !reply.bit(CD) && seen_rrsig {
        v.fail("nocd");
    }
    if !reply.aa() && probe.version == 0 && rcode == rcode::NOERROR && !non_query {
        v.fail("noaa");
    }
    if reply.aa() && non_query {
        v.fail("aa");
    }
    if reply.bit(RA) && non_query {
        v.fail("ra");
    }
    let rd = reply.bit(RD);
    if rd && (non_query || !probe.has(RD)) {
        v.fail("rd");
    }
    if !rd && probe.has(RD) && !non_query {
        v.fail("nord");
    }
    if reply.bit(AD) && (non_query || (!probe.has(AD) && !probe_do)) {
        v.fail("ad");
    }
    if reply.bit(CD) && (non_query || !probe.has(CD)) {
        v.fail("cd");
    }
    if reply.bit(Z) {
        v.fail("z");
    }
    if edns_ttl & 0x7fff != 0 {
        v.fail("mbz");
    }
    let limit = if probe.udp_size > 0 {
        probe.udp_size
    } else {
        512
    };
    if probe.ignore_tc && reply.len > usize::from(limit) {
        v.fail("toobig");
    }

    if v.ok {
        v.tags.push("ok".into());
    }
    let mut info = |seen: bool, tag: &str| {
        if seen {
            v.tags.push(tag.into());
        }
    };
    info(seen_nsid, "nsid");
    info(seen_expire, "expire");
    let bad_cookie = rcode == rcode::BADCOOKIE;
    let cookie_tag = match (good_cookie, probe.cookie, bad_cookie) {
        (true, true, true) => "cookie+badcookie",
        (false, true, true) => "cookie-mismatch+badcookie",
        (false, true, false) => "cookie-mismatch",
        _ => "cookie",
    };
    info(seen_cookie, cookie_tag);
    info(seen_ecs, "subnet");
    v.tags
}

/// genreport's tags for one reply, and whether a failure tag is among them.
struct Verdict {
    tags: Vec<String>,
    ok: bool,
}

impl Default for Verdict {
    fn default() -> Self {
        Verdict {
            tags: Vec::new(),
            ok: true,
        }
    }
}

impl Verdict {
    /// Adds a failure tag.
    fn fail(&mut self, tag: &str) {
        self.tags.push(tag.to_string());
        self.ok = false;
    }
}

/// genreport's names for response codes.
fn rcode_text(rcode: u16) -> String {
    let known = [
        "noerror", "formerr", "servfail", "nxdomain", "notimp", "refused", "yxdomain", "yxrrset",
        "nxrrset", "notauth", "notzone",
    ];
    match rcode {
        0..=10 => known[usize::from(rcode)].to_string(),
        16 => "badvers".into(),
        23 => "badcookie".into(),
        n => format!("rcode{n}"),
    }
}

/// Sends one ISC probe as genreport does (falling back to TCP on TC unless
/// the probe ignores TC) and returns its verdict.
fn run_isc_probe(addr: SocketAddr, probe: &IscProbe) -> Result<Vec<String>, String> {
    let wire = probe.query(next_id());
    let mut bytes = send(addr, &wire, probe.tcp)?;
    let mut reply = Reply::parse(&bytes).map_err(|e| format!("malformed reply: {e}"))?;
    if reply.tc() && !probe.tcp && !probe.ignore_tc {
        bytes = send(addr, &wire, true)?;
        reply = Reply::parse(&bytes).map_err(|e| format!("malformed TCP reply: {e}"))?;
    }
    check_envelope(&wire, &bytes, &reply)?;
    Ok(isc_verdict(probe, &reply))
}

/// What every reply must satisfy whatever the case: same id, QR set, and
/// decodable by an independent implementation (hickory-proto).
fn check_envelope(query: &[u8], bytes: &[u8], reply: &Reply) -> Result<(), String> {
    let id = u16::from_be_bytes([query[0], query[1]]);
    if reply.id != id {
        return Err(format!("reply id {} for query id {id}", reply.id));
    }
    if !reply.qr() {
        return Err("reply without QR".into());
    }
    common::decode_response(bytes).map(|_| ())
}

#[test]
fn isc_compliance_probes() {
    let server = start_server();
    let mut failures = Vec::new();
    for case in ISC_PROBES {
        let probe = &case.probe;
        match run_isc_probe(server.addr(), probe) {
            Ok(tags) if tags == case.tags => println!("{:<12} {}", probe.name, tags.join(",")),
            Ok(tags) => failures.push(format!(
                "{}: genreport would print `{}`, expected `{}`",
                probe.name,
                tags.join(","),
                case.tags.join(",")
            )),
            Err(e) => failures.push(format!("{}: {e}", probe.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} ISC probes failed:\n  {}\n{}",
        failures.len(),
        ISC_PROBES.len(),
        failures.join("\n  "),
        server.logs()
    );
}

// ---------------------------------------------------------------------------
// The other cases.

/// What a case expects.
enum Expect {
    /// A reply that passes the check.
    Reply(fn(&Reply) -> Result<(), String>),
    /// No reply at all.
    Silence,
}

/// One named case: a query builder, the transport, and the expectation.
struct Case {
    name: &'static str,
    tcp: bool,
    query: fn(u16) -> Vec<u8>,
    expect: Expect,
}

/// A query for `name` in the zone (`""` for the apex).
fn zone_query(id: u16, name: &str, qtype: u16, opt: Option<Opt>) -> Vec<u8> {
    let qname = if name.is_empty() {
        ZONE.to_string()
    } else {
        format!("{name}.{ZONE}")
    };
    query(id, [0, 0], &qname, qtype, opt)
}

/// An SOA query at the apex with EDNS 0 carrying `options`.
fn soa_with_options(id: u16, options: &'static [u8]) -> Vec<u8> {
    zone_query(
        id,
        "",
        rr::SOA,
        Some(Opt {
            options,
            ..Opt::PLAIN
        }),
    )
}

/// Fails with `what` unless `cond` holds.
fn require(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

/// The rcode must be `want`.
fn rcode_is(reply: &Reply, want: u16) -> Result<(), String> {
    require(
        reply.rcode() == want,
        &format!(
            "rcode {} instead of {}",
            rcode_text(reply.rcode()),
            rcode_text(want)
        ),
    )
}

/// A truncated reply to the `big` TXT query: TC set, no records, at most
/// `limit` octets, with an OPT record when `edns`.
fn truncated(reply: &Reply, limit: usize, edns: bool) -> Result<(), String> {
    rcode_is(reply, rcode::NOERROR)?;
    require(reply.tc(), "TC is not set")?;
    require(
        reply.len <= limit,
        &format!("{} octets > {limit}", reply.len),
    )?;
    require(
        reply.answers.is_empty(),
        "answer records in a truncated reply",
    )?;
    require(
        reply.opt().is_some() == edns,
        "OPT presence differs from the query",
    )
}

/// The whole `big` TXT RRset: 16 records, TC clear.
fn whole_big(reply: &Reply) -> Result<(), String> {
    rcode_is(reply, rcode::NOERROR)?;
    require(!reply.tc(), "TC is set")?;
    let txt = reply
        .answers
        .iter()
        .filter(|r| r.rtype == rr::TXT && r.class == rr::IN)
        .count();
    require(
        txt == 16,
        &format!("{txt} TXT records of class IN instead of 16"),
    )
}

/// FORMERR answered with an OPT record (RFC 6891 §7) and no answer: what a
/// malformed ECS option gets (RFC 7871 §7.1).
fn formerr_with_opt(reply: &Reply) -> Result<(), String> {
    rcode_is(reply, rcode::FORMERR)?;
    let opt = reply.opt().ok_or("no OPT record")?;
    require((opt.ttl >> 16) & 0xff == 0, "OPT version is not 0")?;
    require(opt.owner.is_empty(), "OPT owner is not the root")?;
    require(reply.answers.is_empty(), "answer records with FORMERR")
}

/// FORMERR, whatever else.
fn formerr(reply: &Reply) -> Result<(), String> {
    rcode_is(reply, rcode::FORMERR)
}

/// An SOA answer at the apex whose OPT echoes exactly one ECS option with
/// the query's family, source prefix and address and scope 0.
fn ecs_echoed(reply: &Reply, query_ecs: &[u8]) -> Result<(), String> {
    rcode_is(reply, rcode::NOERROR)?;
    require(
        reply.answers.iter().any(|r| r.rtype == rr::SOA),
        "no SOA answer",
    )?;
    let ecs: Vec<Vec<u8>> = reply
        .options()?
        .into_iter()
        .filter(|(code, _)| *code == option::ECS)
        .map(|(_, data)| data)
        .collect();
    let [echo] = ecs.as_slice() else {
        return Err(format!("{} ECS options instead of 1", ecs.len()));
    };
    // Family and source prefix as sent, scope 0, the same address octets.
    let mut want = query_ecs.to_vec();
    want[3] = 0;
    require(
        *echo == want,
        &format!("ECS echoed as {echo:02x?}, expected {want:02x?}"),
    )
}

/// ECS options of the cases below (option code 8, then the length).
const ECS_V4_24: &[u8] = &[0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2];
const ECS_V6_56: &[u8] = &[
    0, 8, 0, 11, 0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56,
];
const ECS_V4_0: &[u8] = &[0, 8, 0, 4, 0, 1, 0, 0];
const ECS_FAMILY_3: &[u8] = &[0, 8, 0, 7, 0, 3, 24, 0, 192, 0, 2];
const ECS_V4_PREFIX_33: &[u8] = &[0, 8, 0, 9, 0, 1, 33, 0, 192, 0, 2, 1, 0];
const ECS_V6_PREFIX_129: &[u8] = &[
    0, 8, 0, 21, 0, 2, 129, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0,
];
const ECS_ADDRESS_TOO_LONG: &[u8] = &[0, 8, 0, 8, 0, 1, 24, 0, 192, 0, 2, 0];
const ECS_ADDRESS_TOO_SHORT: &[u8] = &[0, 8, 0, 6, 0, 1, 24, 0, 192, 0];
const ECS_BITS_PAST_PREFIX: &[u8] = &[0, 8, 0, 7, 0, 1, 20, 0, 192, 0, 0x1f];
const ECS_SCOPE_NONZERO: &[u8] = &[0, 8, 0, 7, 0, 1, 24, 24, 192, 0, 2];
const ECS_SHORT: &[u8] = &[0, 8, 0, 3, 0, 1, 24];
const ECS_TWICE: &[u8] = &[
    0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2, 0, 8, 0, 7, 0, 1, 24, 0, 198, 51, 100,
];

/// COOKIE options (code 10, then the length) of the cases below: client
/// cookies of malformed lengths (RFC 7873 §5.2.2), and a client cookie
/// with a well-formed server cookie this server never made.
const COOKIE_7: &[u8] = &[0, 10, 0, 7, 1, 2, 3, 4, 5, 6, 7];
const COOKIE_9: &[u8] = &[0, 10, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9];
const COOKIE_41: &[u8] = &[
    0, 10, 0, 41, 1, 2, 3, 4, 5, 6, 7, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];
const COOKIE_FORGED: &[u8] = &[
    0, 10, 0, 24, 1, 2, 3, 4, 5, 6, 7, 8, 1, 0, 0, 0, 0x5c, 0xf7, 0x9f, 0x11, 0x1f, 0x81, 0x30,
    0xc3, 0xee, 0xe2, 0x94, 0x80,
];

/// `query` with its question taken out (QDCOUNT 0).
fn without_question(mut query: Vec<u8>) -> Vec<u8> {
    let question = wire_name(ZONE).len() + 4;
    query.drain(12..12 + question);
    query[4..6].fill(0);
    query
}

/// The reply carries a server cookie for our client cookie: a 24-octet
/// COOKIE (RFC 9018), the client cookie echoed, version 1, and not the
/// forged one.
fn fresh_cookie(reply: &Reply) -> Result<(), String> {
    let options = reply.options()?;
    let cookies: Vec<&Vec<u8>> = (options.iter())
        .filter(|(code, _)| *code == option::COOKIE)
        .map(|(_, data)| data)
        .collect();
    let [cookie] = cookies.as_slice() else {
        return Err(format!("{} COOKIE options instead of 1", cookies.len()));
    };
    require(
        cookie.len() == 24,
        &format!("a COOKIE of {} octets", cookie.len()),
    )?;
    require(
        cookie[..8] == CLIENT_COOKIE,
        "the client cookie is not echoed",
    )?;
    require(cookie[8] == 1, "server cookie version is not 1")?;
    require(
        cookie[..] != COOKIE_FORGED[4..],
        "the forged cookie came back",
    )
}

/// The cases beyond genreport's probes.
const CASES: &[Case] = &[
    // --- TC behaviour with an answer of about 2,000 octets ---
    Case {
        name: "bufsize512-large-answer",
        tcp: false,
        query: |id| {
            zone_query(
                id,
                "big",
                rr::TXT,
                Some(Opt {
                    udp_size: 512,
                    ..Opt::PLAIN
                }),
            )
        },
        expect: Expect::Reply(|r| truncated(r, 512, true)),
    },
    Case {
        name: "bufsize4096-large-answer",
        tcp: false,
        query: |id| zone_query(id, "big", rr::TXT, Some(Opt::PLAIN)),
        expect: Expect::Reply(|r| {
            whole_big(r)?;
            require(r.len > 1232 && r.len <= 4096, &format!("{} octets", r.len))
        }),
    },
    Case {
        name: "noedns-large-answer",
        tcp: false,
        query: |id| zone_query(id, "big", rr::TXT, None),
        expect: Expect::Reply(|r| truncated(r, 512, false)),
    },
    Case {
        name: "tcp-large-answer",
        tcp: true,
        query: |id| {
            zone_query(
                id,
                "big",
                rr::TXT,
                Some(Opt {
                    udp_size: 512,
                    ..Opt::PLAIN
                }),
            )
        },
        expect: Expect::Reply(whole_big),
    },
    // --- RFC 8906 §3.1 and RFC 1035: malformed queries ---
    Case {
        name: "qdcount0",
        tcp: false,
        query: |id| {
            let mut q = zone_query(id, "", rr::SOA, None);
            q.truncate(12);
            q[4..6].fill(0);
            q
        },
        expect: Expect::Reply(|r| {
            formerr(r)?;
            require(r.questions.is_empty(), "a question in the reply")
        }),
    },
    Case {
        name: "qdcount0-edns-keeps-opt",
        tcp: false,
        query: |id| without_question(zone_query(id, "", rr::SOA, Some(Opt::PLAIN))),
        expect: Expect::Reply(|r| {
            formerr_with_opt(r)?;
            require(r.questions.is_empty(), "a question in the reply")
        }),
    },
    Case {
        name: "qdcount0-cookie-gets-a-server-cookie",
        tcp: false,
        query: |id| without_question(soa_with_options(id, OPT_COOKIE)),
        expect: Expect::Reply(|r| {
            rcode_is(r, rcode::NOERROR)?;
            require(r.questions.is_empty(), "a question in the reply")?;
            fresh_cookie(r)
        }),
    },
    Case {
        name: "qdcount2",
        tcp: false,
        query: |id| {
            let mut q = zone_query(id, "", rr::SOA, None);
            let question = q[12..].to_vec();
            q.extend_from_slice(&question);
            q[5] = 2;
            q
        },
        expect: Expect::Reply(formerr),
    },
    Case {
        name: "truncated-question-name",
        tcp: false,
        query: |id| {
            let mut q = zone_query(id, "", rr::SOA, None);
            q.truncate(12 + 6);
            q
        },
        expect: Expect::Reply(formerr),
    },
    Case {
        name: "truncated-question-type",
        tcp: false,
        query: |id| {
            let mut q = zone_query(id, "", rr::SOA, None);
            q.truncate(q.len() - 3);
            q
        },
        expect: Expect::Reply(formerr),
    },
    Case {
        name: "qr-set-no-reply",
        tcp: false,
        query: |id| {
            let mut q = zone_query(id, "", rr::SOA, None);
            q[2] |= 0x80;
            q
        },
        expect: Expect::Silence,
    },
    Case {
        name: "z-bit-cleared",
        tcp: false,
        query: |id| {
            let mut q = zone_query(id, "", rr::SOA, Some(Opt::PLAIN));
            q[3] |= 0x40;
            q
        },
        expect: Expect::Reply(|r| {
            rcode_is(r, rcode::NOERROR)?;
            require(!r.bit(Z), "Z is set in the reply")
        }),
    },
    Case {
        name: "opcode15-notimp",
        tcp: false,
        query: |id| {
            let mut q = zone_query(id, "", rr::SOA, None);
            q[2] |= 15 << 3;
            q
        },
        expect: Expect::Reply(|r| {
            rcode_is(r, rcode::NOTIMP)?;
            require(r.opcode() == 15, "opcode not echoed")
        }),
    },
    Case {
        name: "opcode15-edns-keeps-opt",
        tcp: false,
        query: |id| {
            let mut q = zone_query(id, "", rr::SOA, Some(Opt::PLAIN));
            q[2] |= 15 << 3;
            q
        },
        expect: Expect::Reply(|r| {
            rcode_is(r, rcode::NOTIMP)?;
            // RFC 6891 §6.1.1: "If an OPT record is present in a received
            // request, compliant responders MUST include an OPT record".
            require(r.opt().is_some(), "no OPT record in the reply")
        }),
    },
    // --- RFC 7871 §7.1: malformed ECS options get FORMERR with OPT ---
    Case {
        name: "ecs-family-3",
        tcp: false,
        query: |id| soa_with_options(id, ECS_FAMILY_3),
        expect: Expect::Reply(formerr_with_opt),
    },
    Case {
        name: "ecs-ipv4-source-prefix-33",
        tcp: false,
        query: |id| soa_with_options(id, ECS_V4_PREFIX_33),
        expect: Expect::Reply(formerr_with_opt),
    },
    Case {
        name: "ecs-ipv6-source-prefix-129",
        tcp: false,
        query: |id| soa_with_options(id, ECS_V6_PREFIX_129),
        expect: Expect::Reply(formerr_with_opt),
    },
    Case {
        name: "ecs-address-longer-than-prefix",
        tcp: false,
        query: |id| soa_with_options(id, ECS_ADDRESS_TOO_LONG),
        expect: Expect::Reply(formerr_with_opt),
    },
    Case {
        name: "ecs-address-shorter-than-prefix",
        tcp: false,
        query: |id| soa_with_options(id, ECS_ADDRESS_TOO_SHORT),
        expect: Expect::Reply(formerr_with_opt),
    },
    Case {
        name: "ecs-bits-past-prefix",
        tcp: false,
        query: |id| soa_with_options(id, ECS_BITS_PAST_PREFIX),
        expect: Expect::Reply(formerr_with_opt),
    },
    Case {
        name: "ecs-scope-prefix-in-query",
        tcp: false,
        query: |id| soa_with_options(id, ECS_SCOPE_NONZERO),
        expect: Expect::Reply(formerr_with_opt),
    },
    Case {
        name: "ecs-short-option",
        tcp: false,
        query: |id| soa_with_options(id, ECS_SHORT),
        expect: Expect::Reply(formerr_with_opt),
    },
    Case {
        name: "ecs-twice",
        tcp: false,
        query: |id| soa_with_options(id, ECS_TWICE),
        expect: Expect::Reply(formerr_with_opt),
    },
    // --- RFC 7873: DNS cookies ---
    Case {
        name: "cookie-7-octets-formerr",
        tcp: false,
        query: |id| soa_with_options(id, COOKIE_7),
        expect: Expect::Reply(formerr_with_opt),
    },
    Case {
        name: "cookie-9-octets-formerr",
        tcp: false,
        query: |id| soa_with_options(id, COOKIE_9),
        expect: Expect::Reply(formerr_with_opt),
    },
    Case {
        name: "cookie-41-octets-formerr",
        tcp: false,
        query: |id| soa_with_options(id, COOKIE_41),
        expect: Expect::Reply(formerr_with_opt),
    },
    Case {
        name: "cookie-client-only-answered-with-server-cookie",
        tcp: false,
        query: |id| soa_with_options(id, OPT_COOKIE),
        expect: Expect::Reply(|r| {
            rcode_is(r, rcode::NOERROR)?;
            require(r.answers.len() == 1, "no SOA answer")?;
            fresh_cookie(r)
        }),
    },
    // RFC 7873 §5.2.4: a server cookie not ours counts as a client cookie
    // alone, over UDP as over TCP (as BIND 9.18 does).
    Case {
        name: "cookie-bad-server-cookie-udp-answered",
        tcp: false,
        query: |id| soa_with_options(id, COOKIE_FORGED),
        expect: Expect::Reply(|r| {
            rcode_is(r, rcode::NOERROR)?;
            require(r.answers.len() == 1, "no SOA answer")?;
            fresh_cookie(r)
        }),
    },
    Case {
        name: "cookie-bad-server-cookie-tcp-answered",
        tcp: true,
        query: |id| soa_with_options(id, COOKIE_FORGED),
        expect: Expect::Reply(|r| {
            rcode_is(r, rcode::NOERROR)?;
            require(r.answers.len() == 1, "no SOA answer")?;
            fresh_cookie(r)
        }),
    },
    // --- RFC 7871 §7.2.1: a valid ECS is echoed with scope 0 ---
    Case {
        name: "ecs-valid-ipv4-24",
        tcp: false,
        query: |id| soa_with_options(id, ECS_V4_24),
        expect: Expect::Reply(|r| ecs_echoed(r, &ECS_V4_24[4..])),
    },
    Case {
        name: "ecs-valid-ipv6-56",
        tcp: false,
        query: |id| soa_with_options(id, ECS_V6_56),
        expect: Expect::Reply(|r| ecs_echoed(r, &ECS_V6_56[4..])),
    },
    Case {
        name: "ecs-valid-ipv4-0",
        tcp: false,
        query: |id| soa_with_options(id, ECS_V4_0),
        expect: Expect::Reply(|r| ecs_echoed(r, &ECS_V4_0[4..])),
    },
    Case {
        name: "ecs-valid-ipv4-24-tcp",
        tcp: true,
        query: |id| soa_with_options(id, ECS_V4_24),
        expect: Expect::Reply(|r| ecs_echoed(r, &ECS_V4_24[4..])),
    },
];

/// Runs one case and says what went wrong, if anything.
fn run_case(addr: SocketAddr, case: &Case) -> Result<(), String> {
    let wire = (case.query)(next_id());
    match case.expect {
        Expect::Silence => {
            if let Ok(bytes) = common::exchange_udp(addr, &wire, SILENCE, 1) {
                return Err(format!("got a reply of {} octets", bytes.len()));
            }
            // Silence must not come from a dead server.
            let alive = zone_query(next_id(), "", rr::SOA, None);
            send(addr, &alive, false)
                .map(|_| ())
                .map_err(|e| format!("no answer to a good query afterwards: {e}"))
        }
        Expect::Reply(check) => {
            let bytes = send(addr, &wire, case.tcp)?;
            let reply = Reply::parse(&bytes).map_err(|e| format!("malformed reply: {e}"))?;
            check_envelope(&wire, &bytes, &reply)?;
            check(&reply)
        }
    }
}

#[test]
fn rfc8906_and_ecs_cases() {
    let server = start_server();
    let mut failures = Vec::new();
    for case in CASES {
        match run_case(server.addr(), case) {
            Ok(()) => println!("{:<32} ok", case.name),
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n  {}\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n  "),
        server.logs()
    );
}

#[test]
fn isc_probe_queries_are_built_like_genreport() {
    // `dig +edns=0 +nocookie +noad +norec +ednsopt=100 SOA compliance.example`.
    let probe = IscProbe {
        options: OPT_UNKNOWN_100,
        ..IscProbe::EDNS
    };
    let q = probe.query(0x1234);
    let mut want = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    want.extend_from_slice(b"\x0acompliance\x07example\x00\x00\x06\x00\x01");
    want.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 4, 0, 100, 0, 0]);
    assert_eq!(q, want);

    // `opcode`: a bare header with opcode 15 and QDCOUNT 0.
    let probe = IscProbe {
        opcode: 15,
        qtype: 0,
        ..IscProbe::BASE
    };
    assert_eq!(probe.query(1), vec![0, 1, 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn reply_parser_is_strict() {
    // A header claiming one answer that is not there.
    assert!(Reply::parse(&[0, 1, 0x80, 0, 0, 0, 0, 1, 0, 0, 0, 0]).is_err());
    // A trailing octet.
    assert!(Reply::parse(&[0, 1, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    // A forward compression pointer in the question.
    let msg = [
        0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 14, 0, 0, 1, 0, 1,
    ];
    assert!(Reply::parse(&msg).is_err());
    // A good one.
    let ok = [0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1];
    let reply = Reply::parse(&ok).unwrap();
    assert_eq!(reply.questions, vec![(String::new(), 1, 1)]);
}

#[test]
fn isc_verdict_flags_what_genreport_flags() {
    // A NOERROR reply to `ednsopt` that has no SOA, echoes option 100 and
    // sets an EDNS flag other than DO.
    let mut msg = vec![0, 1, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    msg.extend_from_slice(&wire_name(ZONE));
    msg.extend_from_slice(&[0, 6, 0, 1]);
    msg.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0x80, 0, 4, 0, 100, 0, 0]);
    let reply = Reply::parse(&msg).unwrap();
    let probe = IscProbe {
        options: OPT_UNKNOWN_100,
        ..IscProbe::EDNS
    };
    assert_eq!(isc_verdict(&probe, &reply), ["nosoa", "echoed", "mbz"]);
    // The same reply to `edns1` lacks BADVERS and answers with version 0.
    let probe = IscProbe {
        version: 1,
        ..IscProbe::EDNS
    };
    assert_eq!(
        isc_verdict(&probe, &reply),
        ["noerror", "badversion", "echoed", "mbz"]
    );
}
