//! Resource records as loaded from zone files (RFC 1035 §3.2, RFC 3597).
//!
//! A [`Record`] holds its RDATA already in uncompressed wire format, so the
//! answer path never re-encodes anything: it copies these bytes and, for the
//! types RFC 3597 §4 allows, compresses the embedded names.

use crate::name::Name;

/// Record type numbers used by the server (IANA "Resource Record (RR) TYPEs").
pub mod rtype {
    /// IPv4 address (RFC 1035).
    pub const A: u16 = 1;
    /// Authoritative name server (RFC 1035).
    pub const NS: u16 = 2;
    /// Canonical name (RFC 1035).
    pub const CNAME: u16 = 5;
    /// Start of authority (RFC 1035).
    pub const SOA: u16 = 6;
    /// Domain name pointer (RFC 1035).
    pub const PTR: u16 = 12;
    /// Host information (RFC 1035, RFC 8482).
    pub const HINFO: u16 = 13;
    /// Mail exchange (RFC 1035).
    pub const MX: u16 = 15;
    /// Text strings (RFC 1035).
    pub const TXT: u16 = 16;
    /// IPv6 address (RFC 3596).
    pub const AAAA: u16 = 28;
    /// Service location (RFC 2782).
    pub const SRV: u16 = 33;
    /// Naming authority pointer (RFC 3403).
    pub const NAPTR: u16 = 35;
    /// Delegation name (RFC 6672).
    pub const DNAME: u16 = 39;
    /// Delegation signer (RFC 4034).
    pub const DS: u16 = 43;
    /// EDNS pseudo-record (RFC 6891).
    pub const OPT: u16 = 41;
    /// Incremental zone transfer (RFC 1995).
    pub const IXFR: u16 = 251;
    /// Zone transfer (RFC 5936).
    pub const AXFR: u16 = 252;
    /// Mailbox-related records, obsolete (RFC 1035).
    pub const MAILB: u16 = 253;
    /// Mail agent records, obsolete (RFC 1035).
    pub const MAILA: u16 = 254;
    /// Any type (RFC 1035, RFC 8482).
    pub const ANY: u16 = 255;
    /// Certification authority authorization (RFC 8659).
    pub const CAA: u16 = 257;
}

/// Class IN, the only class zones are served in (RFC 1035 §3.2.4).
pub const CLASS_IN: u16 = 1;

/// Class CH (CHAOS), in which servers answer questions about themselves
/// (`crate::identity`).
pub const CLASS_CH: u16 = 3;

/// Mnemonics of the types the zone parser knows by name.
const MNEMONICS: &[(&str, u16)] = &[
    ("A", rtype::A),
    ("NS", rtype::NS),
    ("CNAME", rtype::CNAME),
    ("SOA", rtype::SOA),
    ("PTR", rtype::PTR),
    ("HINFO", rtype::HINFO),
    ("MX", rtype::MX),
    ("TXT", rtype::TXT),
    ("AAAA", rtype::AAAA),
    ("SRV", rtype::SRV),
    ("NAPTR", rtype::NAPTR),
    ("DNAME", rtype::DNAME),
    ("CAA", rtype::CAA),
];

/// The type number for a mnemonic (`AAAA`) or RFC 3597 form (`TYPE65280`),
/// case-insensitively.
pub fn type_from_str(s: &str) -> Option<u16> {
    if let Some((_, t)) = MNEMONICS.iter().find(|(m, _)| m.eq_ignore_ascii_case(s)) {
        return Some(*t);
    }
    let digits = s
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("TYPE"))
        .map(|_| &s[4..])?;
    digits.parse().ok()
}

/// The mnemonic of a type, or `TYPEnnn` (RFC 3597 §5) for one without a name.
pub fn type_to_string(t: u16) -> String {
    match MNEMONICS.iter().find(|(_, n)| *n == t) {
        Some((m, _)) => (*m).to_string(),
        None => format!("TYPE{t}"),
    }
}

/// One resource record from a zone file, RDATA in uncompressed wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner name, case as written in the zone file.
    pub owner: Name,
    /// Record type.
    pub rtype: u16,
    /// Time to live in seconds.
    pub ttl: u32,
    /// RDATA in uncompressed wire format; embedded names keep their case.
    pub rdata: Box<[u8]>,
    /// Where the record was written, for error messages at load time.
    pub origin: Location,
}

/// A place in a zone file, for errors that name file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as given in the config or `$INCLUDE`.
    pub file: std::sync::Arc<std::path::Path>,
    /// 1-based line number.
    pub line: u32,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}
