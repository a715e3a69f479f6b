//! DNS messages on the wire (RFC 1035 §4): a query view and a response writer.
//!
//! [`Query::parse`] reads a query in place: every field borrows the receive
//! buffer and errors are small `Copy` values, so a malformed packet costs no
//! allocation. [`Writer`] builds a response in a caller-owned buffer with name
//! compression (RFC 1035 §4.1.4) and refuses, rather than overflows, any write
//! past the size the client can take.

use std::net::IpAddr;
use std::ptr;

use crate::cookie::{self, Cookie};
use crate::name::MAX_NAME_LEN;
use crate::rr::rtype;

/// Size of the fixed message header (RFC 1035 §4.1.1).
pub const HEADER_LEN: usize = 12;

/// Response codes (RFC 1035 §4.1.1, RFC 6891 §9).
pub mod rcode {
    /// No error.
    pub const NOERROR: u16 = 0;
    /// The query could not be interpreted.
    pub const FORMERR: u16 = 1;
    /// The server failed internally.
    pub const SERVFAIL: u16 = 2;
    /// The name does not exist (RFC 8020: nothing below it either).
    pub const NXDOMAIN: u16 = 3;
    /// The kind of query is not implemented.
    pub const NOTIMP: u16 = 4;
    /// The server will not answer this query (e.g. not authoritative).
    pub const REFUSED: u16 = 5;
    /// The EDNS version is not supported (extended rcode 16, RFC 6891 §6.1.3).
    pub const BADVERS: u16 = 16;
    /// The server cookie is missing or not valid (extended rcode 23,
    /// RFC 7873 §8).
    pub const BADCOOKIE: u16 = 23;
}

/// Header flag bits in the second 16-bit word (RFC 1035 §4.1.1, RFC 4035 §3.1.4).
pub mod flag {
    /// This message is a response.
    pub const QR: u16 = 0x8000;
    /// Authoritative answer.
    pub const AA: u16 = 0x0400;
    /// Truncated: retry over TCP.
    pub const TC: u16 = 0x0200;
    /// Recursion desired (copied from the query).
    pub const RD: u16 = 0x0100;
    /// Checking disabled (copied from the query, RFC 4035 §3.1.6).
    pub const CD: u16 = 0x0010;
}

/// The EDNS option code of Client Subnet (RFC 7871 §6).
pub const OPTION_ECS: u16 = 8;

/// The EDNS option code of COOKIE (RFC 7873 §4).
pub const OPTION_COOKIE: u16 = 10;

/// The EDNS option code of the Name Server Identifier (RFC 5001 §2.3).
pub const OPTION_NSID: u16 = 3;

/// The standard query opcode; every other opcode gets NOTIMP (RFC 8906 §3.1.5).
pub const OPCODE_QUERY: u8 = 0;

/// Smallest payload size a client may advertise (RFC 6891 §6.2.5).
const MIN_UDP_PAYLOAD: u16 = 512;

/// Why a message could not be read as a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not even the header is there, or the message is a response: drop it
    /// (RFC 8906 §3.1.1 only asks for a reply to what can be read as a query).
    Drop,
    /// The header is readable but the rest is not: answer FORMERR.
    Form(&'static str),
    /// The question is fine but the OPT record or one of its options is not:
    /// answer FORMERR with an OPT record (RFC 6891 §7).
    BadEdns(&'static str),
    /// No question, but otherwise readable, with the EDNS record if there
    /// is one: FORMERR, except for a query that only asks for a server
    /// cookie (RFC 7873 §5.4).
    NoQuestion(Option<Edns>),
}

/// Fields of a query header needed to answer it, even when the rest fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Message ID, echoed.
    pub id: u16,
    /// The flags word as received.
    pub flags: u16,
    /// Number of questions.
    pub qdcount: u16,
    /// Number of answer records.
    pub ancount: u16,
    /// Number of authority records.
    pub nscount: u16,
    /// Number of additional records.
    pub arcount: u16,
}

impl Header {
    /// Reads the header; `None` when the message is shorter than one.
    pub fn parse(msg: &[u8]) -> Option<Header> {
        let h = msg.get(..HEADER_LEN)?;
        let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        Some(Header {
            id: word(0),
            flags: word(2),
            qdcount: word(4),
            ancount: word(6),
            nscount: word(8),
            arcount: word(10),
        })
    }

    /// The 4-bit opcode.
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }
}

/// The EDNS(0) pseudo-record of a query (RFC 6891 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// Requestor's UDP payload size, raised to 512 if lower (RFC 6891 §6.2.5).
    pub udp_payload: u16,
    /// EDNS version; only 0 is implemented.
    pub version: u8,
    /// DNSSEC OK bit (RFC 3225), echoed.
    pub dnssec_ok: bool,
    /// The Client Subnet option, if present and well-formed.
    pub client_subnet: Option<ClientSubnet>,
    /// The first COOKIE option, if present and well-formed (RFC 7873 §5.2).
    pub cookie: Option<Cookie>,
    /// The query asks who answers: it carries an empty NSID option
    /// (RFC 5001 §2.1).
    pub nsid: bool,
}

/// An EDNS Client Subnet option from a query (RFC 7871 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSubnet {
    /// The client's network, bits past `source_prefix` zero.
    pub address: IpAddr,
    /// How many leading bits of `address` the resolver disclosed.
    pub source_prefix: u8,
}

/// A query read in place from the receive buffer.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// The header.
    pub header: Header,
    /// The question name in uncompressed wire format, case as sent.
    pub qname: &'a [u8],
    /// The question type.
    pub qtype: u16,
    /// The question class.
    pub qclass: u16,
    /// The EDNS record, when the query has one.
    pub edns: Option<Edns>,
}

impl<'a> Query<'a> {
    /// Reads a query. The caller answers FORMERR for [`ParseError::Form`],
    /// after checking the opcode (an unknown opcode is NOTIMP whatever follows).
    #[inline]
    pub fn parse(msg: &'a [u8]) -> Result<Query<'a>, ParseError> {
        Query::parse_with(msg, None)
    }

    /// [`Query::parse`], for a message whose question [`question`] read
    /// already, finding a name `qname_len` bytes long: the name's labels
    /// are not walked again. A wrong length gives a wrong question or an
    /// error, never more.
    pub fn parse_with(msg: &'a [u8], qname_len: Option<usize>) -> Result<Query<'a>, ParseError> {
        let header = Header::parse(msg).ok_or(ParseError::Drop)?;
        if header.flags & flag::QR != 0 {
            return Err(ParseError::Drop);
        }
        if header.qdcount > 1 {
            return Err(ParseError::Form("QDCOUNT is not 1"));
        }
        // Filled in place: the query is returned through two layers of
        // results on every answer, and the fewer copies of it the better.
        let mut q = Query {
            header,
            qname: &[],
            qtype: 0,
            qclass: 0,
            edns: None,
        };
        let mut pos = HEADER_LEN;
        if header.qdcount == 1 {
            (q.qname, q.qtype, q.qclass) = match qname_len {
                None => read_question(msg, &mut pos)?,
                Some(len) => {
                    let qname = msg
                        .get(pos..pos + len)
                        .ok_or(ParseError::Form("short question"))?;
                    pos += len;
                    let (qtype, qclass) = read_type_class(msg, &mut pos)?;
                    (qname, qtype, qclass)
                }
            };
        }
        // A query carries nothing in the answer and authority sections; NSD
        // and Knot reject such messages the same way.
        if header.ancount != 0 || header.nscount != 0 {
            return Err(ParseError::Form("records in answer or authority section"));
        }
        read_edns(msg, pos, header.arcount, &mut q.edns)?;
        if header.qdcount == 0 {
            return Err(ParseError::NoQuestion(q.edns));
        }
        Ok(q)
    }
}

/// Reads the additional section from `pos` into `edns`: its OPT record.
fn read_edns(
    msg: &[u8],
    mut pos: usize,
    arcount: u16,
    edns: &mut Option<Edns>,
) -> Result<(), ParseError> {
    for _ in 0..arcount {
        let owner_is_root = msg.get(pos) == Some(&0);
        skip_name(msg, &mut pos)?;
        // Type, class, TTL and RDLENGTH, read after one bounds check.
        let [t0, t1, c0, c1, l0, l1, l2, l3, r0, r1] = *msg
            .get(pos..)
            .and_then(<[u8]>::first_chunk)
            .ok_or(ParseError::Form("short message"))?;
        pos += 10;
        let rr_type = u16::from_be_bytes([t0, t1]);
        let class = u16::from_be_bytes([c0, c1]);
        let ttl = u32::from_be_bytes([l0, l1, l2, l3]);
        let rdlen = usize::from(u16::from_be_bytes([r0, r1]));
        let rdata = msg
            .get(pos..pos + rdlen)
            .ok_or(ParseError::Form("short RDATA"))?;
        pos += rdlen;
        if rr_type != rtype::OPT {
            // TSIG and friends are not implemented; RFC 8906 §3.1 asks us
            // to answer rather than drop, so the record is ignored.
            continue;
        }
        // RFC 6891 §6.1.1: more than one OPT, or one not owned by the
        // root, is a FORMERR.
        if edns.is_some() {
            return Err(ParseError::BadEdns("more than one OPT record"));
        }
        if !owner_is_root {
            return Err(ParseError::BadEdns("OPT owner is not the root"));
        }
        let opt = edns.insert(Edns {
            udp_payload: class.max(MIN_UDP_PAYLOAD),
            version: (ttl >> 16) as u8,
            dnssec_ok: ttl & 0x8000 != 0,
            client_subnet: None,
            cookie: None,
            nsid: false,
        });
        read_options(rdata, opt)?;
    }
    Ok(())
}

/// The question of a message whose header says it has exactly one, for
/// responses to queries that fail later on (FORMERR for EDNS, NOTIMP).
pub fn question(msg: &[u8]) -> Option<(&[u8], u16, u16)> {
    if Header::parse(msg)?.qdcount != 1 {
        return None;
    }
    let mut pos = HEADER_LEN;
    read_question(msg, &mut pos).ok()
}

/// Reads the question at `pos`: name, type and class.
fn read_question<'a>(msg: &'a [u8], pos: &mut usize) -> Result<(&'a [u8], u16, u16), ParseError> {
    let qname = read_question_name(msg, pos)?;
    let (qtype, qclass) = read_type_class(msg, pos)?;
    Ok((qname, qtype, qclass))
}

/// Reads the question's type and class at `pos`.
fn read_type_class(msg: &[u8], pos: &mut usize) -> Result<(u16, u16), ParseError> {
    let [t0, t1, c0, c1] = *msg
        .get(*pos..)
        .and_then(<[u8]>::first_chunk)
        .ok_or(ParseError::Form("short message"))?;
    *pos += 4;
    Ok((u16::from_be_bytes([t0, t1]), u16::from_be_bytes([c0, c1])))
}

/// Walks the EDNS options, checking their framing, and records the Client
/// Subnet and COOKIE options and the NSID request in `edns`. Unknown
/// options are ignored (RFC 6891 §6.1.2).
fn read_options(mut rdata: &[u8], edns: &mut Edns) -> Result<(), ParseError> {
    while !rdata.is_empty() {
        let [c0, c1, l0, l1, rest @ ..] = rdata else {
            return Err(ParseError::BadEdns("short EDNS option header"));
        };
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let data = rest
            .get(..len)
            .ok_or(ParseError::BadEdns("EDNS option overruns OPT"))?;
        match u16::from_be_bytes([*c0, *c1]) {
            OPTION_ECS => {
                if edns.client_subnet.is_some() {
                    return Err(ParseError::BadEdns("more than one ECS option"));
                }
                edns.client_subnet = Some(parse_client_subnet(data)?);
            }
            // RFC 7873 §5.2.2: a malformed COOKIE is a FORMERR; of several,
            // the first counts, as in BIND.
            OPTION_COOKIE if edns.cookie.is_none() => {
                edns.cookie =
                    Some(Cookie::parse(data).ok_or(ParseError::BadEdns("COOKIE option length"))?);
            }
            // RFC 5001 §2.1: a request is an empty NSID option; one with
            // data is not a request, and is ignored as NSD and Knot do.
            OPTION_NSID => edns.nsid |= data.is_empty(),
            _ => {}
        }
        rdata = &rest[len..];
    }
    Ok(())
}

/// An EDNS option's code and length (RFC 6891 §6.1.2), ahead of its data.
fn option_head(code: u16, len: usize) -> [u8; 4] {
    let [c0, c1] = code.to_be_bytes();
    let [l0, l1] = (len as u16).to_be_bytes();
    [c0, c1, l0, l1]
}

/// Reads an ECS option body, applying the checks of RFC 7871 §6 and §7.1.
pub fn parse_client_subnet(data: &[u8]) -> Result<ClientSubnet, ParseError> {
    let [f0, f1, source_prefix, scope_prefix, address @ ..] = data else {
        return Err(ParseError::BadEdns("short ECS option"));
    };
    let family = u16::from_be_bytes([*f0, *f1]);
    let max_prefix = match family {
        1 => 32,
        2 => 128,
        _ => return Err(ParseError::BadEdns("ECS family is not IPv4 or IPv6")),
    };
    let source_prefix = *source_prefix;
    if source_prefix > max_prefix {
        return Err(ParseError::BadEdns(
            "ECS source prefix longer than the address",
        ));
    }
    // RFC 7871 §6: "SCOPE PREFIX-LENGTH ... MUST be set to 0 in queries".
    if *scope_prefix != 0 {
        return Err(ParseError::BadEdns("ECS scope prefix is not 0 in a query"));
    }
    // RFC 7871 §6: the address is truncated to whole octets of the source
    // prefix, and the bits past the prefix MUST be zero.
    let octets = usize::from(source_prefix).div_ceil(8);
    if address.len() != octets {
        return Err(ParseError::BadEdns(
            "ECS address length does not match its prefix",
        ));
    }
    let spare_bits = octets * 8 - usize::from(source_prefix);
    if spare_bits > 0 && address[octets - 1] & ((1u8 << spare_bits) - 1) != 0 {
        return Err(ParseError::BadEdns(
            "ECS address has bits set past its prefix",
        ));
    }
    let address = if family == 1 {
        let mut a = [0u8; 4];
        a[..octets].copy_from_slice(address);
        IpAddr::from(a)
    } else {
        let mut a = [0u8; 16];
        a[..octets].copy_from_slice(address);
        IpAddr::from(a)
    };
    Ok(ClientSubnet {
        address,
        source_prefix,
    })
}

/// Reads the question name, which must be uncompressed: a pointer could only
/// point into the header.
fn read_question_name<'a>(msg: &'a [u8], pos: &mut usize) -> Result<&'a [u8], ParseError> {
    let start = *pos;
    loop {
        let len = *msg.get(*pos).ok_or(ParseError::Form("short question"))?;
        match len {
            0 => {
                *pos += 1;
                let name = &msg[start..*pos];
                if name.len() > MAX_NAME_LEN {
                    return Err(ParseError::Form("question name too long"));
                }
                return Ok(name);
            }
            1..=63 => *pos += 1 + usize::from(len),
            _ => return Err(ParseError::Form("compressed or bad label in question")),
        }
    }
}

/// Skips a possibly compressed name in a record we do not otherwise read.
pub(crate) fn skip_name(msg: &[u8], pos: &mut usize) -> Result<(), ParseError> {
    loop {
        let len = *msg.get(*pos).ok_or(ParseError::Form("short record name"))?;
        match len {
            0 => {
                *pos += 1;
                return Ok(());
            }
            1..=63 => *pos += 1 + usize::from(len),
            0xc0..=0xff => {
                *pos += 2;
                return Ok(());
            }
            _ => return Err(ParseError::Form("bad label type")),
        }
    }
}

/// A write did not fit in the space the client can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// The message sections records are written to, in the order they must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// The answer section.
    Answer = 0,
    /// The authority section.
    Authority = 1,
    /// The additional section.
    Additional = 2,
}

/// How many earlier name positions compression remembers. Responses that
/// write more distinct labels than this still compress, only less well.
const COMPRESSION_SLOTS: usize = 64;

/// Builds a response in a caller-owned buffer.
///
/// Records must be written section by section, in order. Every write either
/// fits below the limit or leaves the message exactly as it was.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
    limit: usize,
    counts: [u16; 3],
    /// Offsets of label starts written uncompressed after the question,
    /// candidates for pointers.
    labels: [u16; COMPRESSION_SLOTS],
    nlabels: usize,
    /// The question name, written at offset 12 (empty without a question),
    /// as the slice it was copied from: borrowed for the writer's life, so
    /// it cannot change. Most names written are it or a suffix of it, so it
    /// is tried first; answers are usually owned by that very slice (the
    /// engine passes the query's name back), which is then known to be at
    /// offset 12 without comparing a byte.
    question: &'a [u8],
    /// Where the OPT record starts, once written.
    opt_at: Option<usize>,
}

impl<'a> Writer<'a> {
    /// Starts a response with `header` fields and the question copied from
    /// the query, limited to `limit` bytes (and the buffer's size).
    pub fn new(buf: &'a mut [u8], limit: usize) -> Writer<'a> {
        let limit = limit.min(buf.len()).min(usize::from(u16::MAX));
        Writer {
            buf,
            len: 0,
            limit,
            counts: [0; 3],
            labels: [0; COMPRESSION_SLOTS],
            nlabels: 0,
            question: &[],
            opt_at: None,
        }
    }

    /// Writes the header (all counts zero for now) and, when given, the
    /// question. Returns `Full` only if the limit is below a bare header.
    pub fn start(
        &mut self,
        id: u16,
        flags: u16,
        question: Option<(&'a [u8], u16, u16)>,
    ) -> Result<(), Full> {
        self.len = 0;
        self.counts = [0; 3];
        self.nlabels = 0;
        self.question = &[];
        self.opt_at = None;
        if self.limit < HEADER_LEN {
            return Err(Full);
        }
        let [id0, id1] = id.to_be_bytes();
        let [f0, f1] = flags.to_be_bytes();
        self.buf[..HEADER_LEN].copy_from_slice(&[id0, id1, f0, f1, 0, 0, 0, 0, 0, 0, 0, 0]);
        self.len = HEADER_LEN;
        if let Some((qname, qtype, qclass)) = question {
            let end = HEADER_LEN + qname.len() + 4;
            if end > self.limit {
                return Err(Full);
            }
            // The question's labels are not remembered: `question_suffix`
            // finds its suffixes without them.
            let [t0, t1] = qtype.to_be_bytes();
            let [c0, c1] = qclass.to_be_bytes();
            let out = &mut self.buf[HEADER_LEN..end];
            let (name, tail) = out.split_at_mut(qname.len());
            name.copy_from_slice(qname);
            tail.copy_from_slice(&[t0, t1, c0, c1]);
            self.len = end;
            self.question = qname;
            self.buf[5] = 1; // QDCOUNT
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the question ends: past the header, and the question if any.
    pub fn question_end(&self) -> usize {
        match self.question.len() {
            0 => HEADER_LEN,
            n => HEADER_LEN + n + 4,
        }
    }

    /// Where the OPT record starts, once [`Writer::opt`] has written it.
    pub fn opt_at(&self) -> Option<usize> {
        self.opt_at
    }

    /// Records written to `section` so far.
    pub fn count(&self, section: Section) -> u16 {
        self.counts[section as usize]
    }

    /// Lowers the limit, e.g. to keep room for the OPT record.
    pub fn reserve(&mut self, bytes: usize) {
        self.limit = self.limit.saturating_sub(bytes);
    }

    /// Gives back room taken by [`Writer::reserve`].
    pub fn unreserve(&mut self, bytes: usize) {
        self.limit = (self.limit + bytes)
            .min(self.buf.len())
            .min(usize::from(u16::MAX));
    }

    /// Sets bits in the flags word.
    pub fn set_flags(&mut self, bits: u16) {
        let flags = u16::from_be_bytes([self.buf[2], self.buf[3]]) | bits;
        self.buf[2..4].copy_from_slice(&flags.to_be_bytes());
    }

    /// The flags word as written so far.
    pub fn flags(&self) -> u16 {
        u16::from_be_bytes([self.buf[2], self.buf[3]])
    }

    /// Clears bits in the flags word.
    pub fn clear_flags(&mut self, bits: u16) {
        let flags = u16::from_be_bytes([self.buf[2], self.buf[3]]) & !bits;
        self.buf[2..4].copy_from_slice(&flags.to_be_bytes());
    }

    /// Sets the 4-bit rcode in the header (the low bits of an extended rcode).
    pub fn set_rcode(&mut self, rcode: u16) {
        self.buf[3] = (self.buf[3] & 0xf0) | (rcode & 0xf) as u8;
    }

    /// Appends one record of class IN. `owner` and names inside `rdata`
    /// are compressed where RFC 3597 §4 allows it (the RFC 1035 types only).
    pub fn record(
        &mut self,
        section: Section,
        owner: &[u8],
        rr_type: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> Result<(), Full> {
        self.record_in(section, owner, crate::rr::CLASS_IN, rr_type, ttl, rdata)
    }

    /// Appends one record of `class`: [`Writer::record`] for the CHAOS
    /// answers of `crate::identity`.
    pub fn record_in(
        &mut self,
        section: Section,
        owner: &[u8],
        class: u16,
        rr_type: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> Result<(), Full> {
        let mark = (self.len, self.nlabels);
        let result = self.try_record(owner, class, rr_type, ttl, rdata);
        match result {
            Ok(()) => {
                self.counts[section as usize] += 1;
                Ok(())
            }
            Err(Full) => {
                (self.len, self.nlabels) = mark;
                Err(Full)
            }
        }
    }

    fn try_record(
        &mut self,
        owner: &[u8],
        class: u16,
        rr_type: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> Result<(), Full> {
        self.name(owner)?;
        // Type, class, TTL and a placeholder RDLENGTH in one write.
        let [t0, t1] = rr_type.to_be_bytes();
        let [c0, c1] = class.to_be_bytes();
        let [l0, l1, l2, l3] = ttl.to_be_bytes();
        self.bytes(&[t0, t1, c0, c1, l0, l1, l2, l3, 0, 0])?;
        let rdlen_at = self.len - 2;
        match rr_type {
            rtype::NS | rtype::CNAME | rtype::PTR => self.name(rdata)?,
            rtype::MX => {
                let (pref, exchange) = rdata.split_at(2.min(rdata.len()));
                self.bytes(pref)?;
                self.name(exchange)?;
            }
            rtype::SOA => {
                let mname_len = name_len(rdata);
                let rname_len = name_len(&rdata[mname_len..]);
                self.name(&rdata[..mname_len])?;
                self.name(&rdata[mname_len..mname_len + rname_len])?;
                self.bytes(&rdata[mname_len + rname_len..])?;
            }
            _ => self.bytes(rdata)?,
        }
        let rdlen = (self.len - rdlen_at - 2) as u16;
        self.buf[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        Ok(())
    }

    /// Appends an A or AAAA record to the answer section. Routing answers
    /// are these, owned by the question name itself, and those are written
    /// in one piece: a pointer to the question, then type, class, TTL,
    /// length and address, after one check of the room, with none of a
    /// general record's name compression. Other owners go through
    /// [`Writer::record`].
    pub fn address(&mut self, owner: &[u8], ttl: u32, address: IpAddr) -> Result<(), Full> {
        // Same address and length, and borrowed unchanged since: same name.
        if owner.is_empty() || !ptr::eq(owner, self.question) {
            return match address {
                IpAddr::V4(a) => self.record(Section::Answer, owner, rtype::A, ttl, &a.octets()),
                IpAddr::V6(a) => self.record(Section::Answer, owner, rtype::AAAA, ttl, &a.octets()),
            };
        }
        let [p0, p1] = (0xc000 | HEADER_LEN as u16).to_be_bytes();
        let [l0, l1, l2, l3] = ttl.to_be_bytes();
        let [c0, c1] = crate::rr::CLASS_IN.to_be_bytes();
        let head = |rr_type: u16, len: u8| {
            let [t0, t1] = rr_type.to_be_bytes();
            [p0, p1, t0, t1, c0, c1, l0, l1, l2, l3, 0, len]
        };
        match address {
            IpAddr::V4(a) => {
                let mut rr = [0; 16];
                rr[..12].copy_from_slice(&head(rtype::A, 4));
                rr[12..].copy_from_slice(&a.octets());
                self.put(rr)?;
            }
            IpAddr::V6(a) => {
                let mut rr = [0; 28];
                rr[..12].copy_from_slice(&head(rtype::AAAA, 16));
                rr[12..].copy_from_slice(&a.octets());
                self.put(rr)?;
            }
        }
        self.counts[Section::Answer as usize] += 1;
        Ok(())
    }

    /// Appends `bytes` when they fit, with a copy of fixed size.
    #[inline]
    fn put<const N: usize>(&mut self, bytes: [u8; N]) -> Result<(), Full> {
        let end = self.len + N;
        match self.buf.get_mut(self.len..end) {
            Some(room) if end <= self.limit => room.copy_from_slice(&bytes),
            _ => return Err(Full),
        }
        self.len = end;
        Ok(())
    }

    /// Appends the OPT record of a response (RFC 6891 §6.1.2), echoing the
    /// Client Subnet option with its scope when the query had one, the
    /// COOKIE option (client and server cookie) and the NSID option
    /// (RFC 5001 §2.2) when given. Bytes of the buffer past the record
    /// may be overwritten: they are not part of the message.
    pub fn opt(
        &mut self,
        udp_payload: u16,
        ext_rcode: u8,
        dnssec_ok: bool,
        ecs: Option<(ClientSubnet, u8)>,
        cookie: Option<&[u8; cookie::OPTION_LEN]>,
        nsid: Option<&[u8]>,
    ) -> Result<(), Full> {
        // One check of the length, then stores of fixed size: this runs
        // for every EDNS query, where a dozen small appends, or a call to
        // memcpy for a few bytes, cost several times more.
        let len = Writer::opt_len(ecs.as_ref().map(|(s, _)| s), cookie.is_some(), nsid);
        let start = self.len;
        let end = start + len;
        if end > self.limit {
            return Err(Full);
        }
        let ttl = (u32::from(ext_rcode) << 24) | if dnssec_ok { 0x8000 } else { 0 };
        let [t0, t1] = rtype::OPT.to_be_bytes();
        let [p0, p1] = udp_payload.to_be_bytes();
        let [l0, l1, l2, l3] = ttl.to_be_bytes();
        let [r0, r1] = ((len - 11) as u16).to_be_bytes();
        // The root owner, then type, class (our payload size), TTL (the
        // extended rcode and flags) and RDLENGTH.
        self.buf[start..start + 11].copy_from_slice(&[0, t0, t1, p0, p1, l0, l1, l2, l3, r0, r1]);
        let mut at = start + 11;
        if let Some(cookie) = cookie {
            at = self.option_at(at, OPTION_COOKIE, cookie);
        }
        if let Some(nsid) = nsid {
            at = self.option_at(at, OPTION_NSID, nsid);
        }
        if let Some((subnet, scope)) = ecs {
            let octets = usize::from(subnet.source_prefix).div_ceil(8);
            let (family, addr): (u8, [u8; 16]) = match subnet.address {
                IpAddr::V4(a) => {
                    let mut b = [0; 16];
                    b[..4].copy_from_slice(&a.octets());
                    (1, b)
                }
                IpAddr::V6(a) => (2, a.octets()),
            };
            let [h0, h1, h2, h3] = option_head(OPTION_ECS, 4 + octets);
            self.buf[at..at + 8].copy_from_slice(&[
                h0,
                h1,
                h2,
                h3,
                0,
                family,
                subnet.source_prefix,
                scope,
            ]);
            at += 8;
            // The whole address when the buffer has room for it: a copy of
            // fixed size, whose bytes past the prefix's octets lie past the
            // message's end and are never sent.
            match self.buf[at..].first_chunk_mut() {
                Some(room) => *room = addr,
                None => self.buf[at..at + octets].copy_from_slice(&addr[..octets]),
            }
        }
        self.len = end;
        self.counts[Section::Additional as usize] += 1;
        self.opt_at = Some(start);
        Ok(())
    }

    /// Writes an EDNS option at `at`, inside room [`Writer::opt`] checked,
    /// and returns where the next one starts. Inlined, so that a cookie's
    /// fixed length makes its copy one of fixed size.
    #[inline]
    fn option_at(&mut self, at: usize, code: u16, data: &[u8]) -> usize {
        self.buf[at..at + 4].copy_from_slice(&option_head(code, data.len()));
        self.buf[at + 4..at + 4 + data.len()].copy_from_slice(data);
        at + 4 + data.len()
    }

    /// The size of the OPT record [`Writer::opt`] would write.
    pub fn opt_len(ecs: Option<&ClientSubnet>, cookie: bool, nsid: Option<&[u8]>) -> usize {
        let cookie_len = if cookie { 4 + cookie::OPTION_LEN } else { 0 };
        let nsid_len = nsid.map_or(0, |n| 4 + n.len());
        11 + cookie_len + nsid_len + ecs.map_or(0, |s| 8 + usize::from(s.source_prefix).div_ceil(8))
    }

    /// Writes the section counts and returns the message length.
    pub fn finish(self) -> usize {
        if self.len >= HEADER_LEN {
            for (i, count) in self.counts.iter().enumerate() {
                let at = 6 + 2 * i;
                self.buf[at..at + 2].copy_from_slice(&count.to_be_bytes());
            }
        }
        self.len
    }

    #[inline]
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), Full> {
        let end = self.len + bytes.len();
        if end > self.limit {
            return Err(Full);
        }
        self.buf[self.len..end].copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Writes an uncompressed wire name, replacing its longest suffix already
    /// in the message by a pointer (RFC 1035 §4.1.4).
    fn name(&mut self, name: &[u8]) -> Result<(), Full> {
        // Same address and length, and borrowed unchanged since: same name.
        if !name.is_empty() && ptr::eq(name, self.question) {
            return self.bytes(&(0xc000 | HEADER_LEN as u16).to_be_bytes());
        }
        let mut suffix = 0;
        while suffix < name.len() && name[suffix] != 0 {
            let tail = &name[suffix..];
            let found = (self.question_suffix(tail)).or_else(|| self.find_suffix(tail));
            if let Some(target) = found {
                self.bytes(&name[..suffix])?;
                let start = self.len - suffix;
                self.remember_labels(start, &name[..suffix]);
                return self.bytes(&(0xc000 | target).to_be_bytes());
            }
            suffix += 1 + usize::from(name[suffix]);
        }
        let start = self.len;
        self.bytes(name)?;
        self.remember_labels(start, name);
        Ok(())
    }

    /// Where `name` stands in the question name, if it is that name or one
    /// of its label-aligned suffixes: the fast path for owners, the SOA of
    /// negative answers and the NS of referrals.
    fn question_suffix(&self, name: &[u8]) -> Option<u16> {
        // The root is one byte, shorter than any pointer.
        if name.len() < 2 {
            return None;
        }
        let skip = self.question.len().checked_sub(name.len())?;
        let qname = &self.buf[HEADER_LEN..HEADER_LEN + self.question.len()];
        let tail = &qname[skip..];
        if tail != name && !tail.eq_ignore_ascii_case(name) {
            return None;
        }
        // Equal bytes, but they must also start at a label boundary.
        let mut at = 0;
        while at < skip {
            at += 1 + usize::from(qname[at]);
        }
        (at == skip).then_some((HEADER_LEN + skip) as u16)
    }

    /// Finds an earlier position where `tail` was written.
    fn find_suffix(&self, tail: &[u8]) -> Option<u16> {
        self.labels[..self.nlabels]
            .iter()
            .copied()
            .find(|&at| self.name_at_equals(usize::from(at), tail))
    }

    /// Compares the (possibly compressed) name at `at` with `name`, ignoring
    /// ASCII case.
    fn name_at_equals(&self, mut at: usize, name: &[u8]) -> bool {
        let mut i = 0;
        // Pointers written by this writer always point backwards, but bound
        // the walk anyway.
        for _ in 0..128 {
            let len = usize::from(self.buf[at]);
            if len >= 0xc0 {
                at = (usize::from(self.buf[at] & 0x3f) << 8) | usize::from(self.buf[at + 1]);
                continue;
            }
            let Some(label) = name.get(i..i + 1 + len) else {
                return false;
            };
            let written = &self.buf[at..at + 1 + len];
            if label != written && !label.eq_ignore_ascii_case(written) {
                return false;
            }
            if len == 0 {
                return true;
            }
            i += 1 + len;
            at += 1 + len;
        }
        false
    }

    /// Records where each label of `name` (written at `start`) begins, up to
    /// the root label or the first pointer.
    fn remember_labels(&mut self, start: usize, name: &[u8]) {
        let mut i = 0;
        while let Some(&len) = name.get(i) {
            if len == 0 || len >= 0xc0 || self.nlabels == COMPRESSION_SLOTS || start + i > 0x3fff {
                return;
            }
            self.labels[self.nlabels] = (start + i) as u16;
            self.nlabels += 1;
            i += 1 + usize::from(len);
        }
    }
}

/// Length of the uncompressed wire name at the start of `wire`.
fn name_len(wire: &[u8]) -> usize {
    let mut i = 0;
    while let Some(&len) = wire.get(i) {
        i += 1 + usize::from(len);
        if len == 0 {
            return i;
        }
    }
    wire.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(qname: &[u8], qtype: u16, additional: &[u8], arcount: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&arcount.to_be_bytes());
        m.extend_from_slice(qname);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(additional);
        m
    }

    fn opt(payload: u16, version: u8, options: &[u8]) -> Vec<u8> {
        let mut o = vec![0, 0, 41];
        o.extend_from_slice(&payload.to_be_bytes());
        o.extend_from_slice(&[0, version, 0x80, 0]);
        o.extend_from_slice(&(options.len() as u16).to_be_bytes());
        o.extend_from_slice(options);
        o
    }

    #[test]
    fn a_known_question_length_reads_as_the_walk_does() {
        let name = b"\x03www\x07example\x00";
        let ecs = [0, 8, 0, 7, 0, 1, 24, 0, 198, 51, 100];
        for m in [
            query(name, 1, &[], 0),
            query(name, 28, &opt(1232, 0, &ecs), 1),
        ] {
            let walked = Query::parse(&m).unwrap();
            let known = Query::parse_with(&m, Some(name.len())).unwrap();
            assert_eq!(
                (known.qname, known.qtype, known.qclass, known.edns),
                (walked.qname, walked.qtype, walked.qclass, walked.edns)
            );
            // A length past the message is an error, not a panic.
            assert!(Query::parse_with(&m, Some(m.len())).is_err());
        }
    }

    #[test]
    fn parses_plain_and_edns_queries() {
        let m = query(b"\x03www\x07example\x00", 1, &[], 0);
        let q = Query::parse(&m).unwrap();
        assert_eq!(q.qname, b"\x03www\x07example\x00");
        assert_eq!((q.qtype, q.qclass, q.header.id), (1, 1, 0x1234));
        assert!(q.edns.is_none());

        let m = query(b"\x00", 6, &opt(100, 0, &[0, 99, 0, 1, 7]), 1);
        let e = Query::parse(&m).unwrap().edns.unwrap();
        assert_eq!(e.udp_payload, 512, "payload below 512 counts as 512");
        assert!(e.dnssec_ok);
        assert_eq!(e.client_subnet, None, "unknown options are ignored");
    }

    #[test]
    fn rejects_malformed_queries() {
        assert_eq!(Query::parse(&[0; 5]).unwrap_err(), ParseError::Drop);
        let mut response = query(b"\x00", 1, &[], 0);
        response[2] |= 0x80;
        assert_eq!(Query::parse(&response).unwrap_err(), ParseError::Drop);
        let mut two = query(b"\x00", 1, &[], 0);
        two[5] = 2;
        assert!(matches!(Query::parse(&two), Err(ParseError::Form(_))));
        let short = query(b"\x03www\x00", 1, &[], 0);
        assert!(matches!(
            Query::parse(&short[..16]),
            Err(ParseError::Form(_))
        ));
        let pointer = query(b"\xc0\x0c", 1, &[], 0);
        assert!(matches!(Query::parse(&pointer), Err(ParseError::Form(_))));
        let mut two_opts = opt(1232, 0, &[]);
        two_opts.extend(opt(1232, 0, &[]));
        assert!(matches!(
            Query::parse(&query(b"\x00", 1, &two_opts, 2)),
            Err(ParseError::BadEdns(_))
        ));
        let bad_len = opt(1232, 0, &[0, 8, 0, 9, 0]);
        assert!(matches!(
            Query::parse(&query(b"\x00", 1, &bad_len, 1)),
            Err(ParseError::BadEdns(_))
        ));
    }

    #[test]
    fn parses_cookies_and_queries_without_a_question() {
        let client = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        let m = query(b"\x00", 6, &opt(1232, 0, &client), 1);
        let c = Query::parse(&m).unwrap().edns.unwrap().cookie.unwrap();
        assert_eq!(c.client, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(c.server, cookie::ServerCookie::Absent);
        // Of two COOKIE options the first counts.
        let mut two = client.to_vec();
        two.extend_from_slice(&[0, 10, 0, 7, 9, 9, 9, 9, 9, 9, 9]);
        let m = query(b"\x00", 6, &opt(1232, 0, &two), 1);
        assert_eq!(Query::parse(&m).unwrap().edns.unwrap().cookie, Some(c));
        // A malformed length alone is a FORMERR with OPT.
        let m = query(b"\x00", 6, &opt(1232, 0, &two[12..]), 1);
        assert!(matches!(Query::parse(&m), Err(ParseError::BadEdns(_))));

        // No question: the OPT record is still read.
        let mut bare = vec![0x12, 0x34, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 1];
        bare.extend(opt(1232, 0, &client));
        let Err(ParseError::NoQuestion(Some(edns))) = Query::parse(&bare) else {
            panic!("{:?}", Query::parse(&bare));
        };
        assert_eq!(edns.cookie, Some(c));
        assert_eq!(question(&bare), None, "no question made up from OPT");
        let header_only = &bare[..12];
        assert_eq!(
            Query::parse(&[&header_only[..11], &[0]].concat()).unwrap_err(),
            ParseError::NoQuestion(None)
        );
    }

    #[test]
    fn client_subnet_checks_follow_rfc7871() {
        let ok = parse_client_subnet(&[0, 1, 24, 0, 192, 0, 2]).unwrap();
        assert_eq!(ok.address, "192.0.2.0".parse::<IpAddr>().unwrap());
        assert_eq!(ok.source_prefix, 24);
        let v6 = parse_client_subnet(&[0, 2, 56, 0, 0x20, 1, 0xd, 0xb8, 0, 0, 0]).unwrap();
        assert_eq!(v6.address, "2001:db8::".parse::<IpAddr>().unwrap());
        assert!(
            parse_client_subnet(&[0, 1, 0, 0]).is_ok(),
            "prefix 0 has no address bytes"
        );
        for bad in [
            &[0, 1, 24, 0, 192, 0][..],    // address too short for /24
            &[0, 1, 24, 0, 192, 0, 2, 0],  // too long
            &[0, 1, 23, 0, 192, 0, 3],     // bit past the prefix set
            &[0, 1, 33, 0, 1, 2, 3, 4, 5], // prefix longer than IPv4
            &[0, 1, 24, 8, 192, 0, 2],     // scope set in a query
            &[0, 3, 8, 0, 1],              // unknown family
            &[0, 1, 8],                    // short
        ] {
            assert!(parse_client_subnet(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn writer_compresses_against_question() {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf, 512);
        let qname = b"\x03WWW\x07example\x03com\x00";
        w.start(7, flag::QR | flag::AA, Some((qname, 1, 1)))
            .unwrap();
        w.record(
            Section::Answer,
            b"\x03www\x07example\x03com\x00",
            1,
            60,
            &[192, 0, 2, 1],
        )
        .unwrap();
        w.record(
            Section::Answer,
            b"\x04mail\x07example\x03com\x00",
            5,
            60,
            b"\x03www\x07example\x03com\x00",
        )
        .unwrap();
        // The question's own slice as owner: known to be at offset 12.
        w.record(Section::Answer, qname, 1, 60, &[192, 0, 2, 2])
            .unwrap();
        let len = w.finish();
        let msg = &buf[..len];
        // Owner of the first answer is a pointer to the question name.
        assert_eq!(&msg[33..35], &[0xc0, 12]);
        // "mail" then a pointer to "example.com" inside the question.
        assert_eq!(&msg[49..56], b"\x04mail\xc0\x10");
        // CNAME RDATA is one pointer to the question name.
        assert_eq!(&msg[64..68], &[0, 2, 0xc0, 12]);
        // The third owner too, then type A.
        assert_eq!(&msg[68..72], &[0xc0, 12, 0, 1]);
        assert_eq!(&msg[msg.len() - 4..], &[192, 0, 2, 2]);
        assert_eq!(u16::from_be_bytes([msg[6], msg[7]]), 3);
    }

    #[test]
    fn opt_is_the_same_wherever_the_buffer_ends() {
        let cookie = [7u8; cookie::OPTION_LEN];
        let subnets = [
            ("198.51.100.0", 24, 20),
            ("2001:db8:ab00::", 40, 32),
            ("0.0.0.0", 0, 0),
        ];
        for (address, source_prefix, scope) in subnets {
            let subnet = ClientSubnet {
                address: address.parse().unwrap(),
                source_prefix,
            };
            let write = |room: usize| {
                let mut buf = vec![0xee; room];
                let mut w = Writer::new(&mut buf, room);
                w.start(1, flag::QR, None).unwrap();
                w.opt(
                    1232,
                    0,
                    true,
                    Some((subnet, scope)),
                    Some(&cookie),
                    Some(b"node"),
                )
                .unwrap();
                let len = w.finish();
                buf.truncate(len);
                buf
            };
            // Room for the message alone: the address is copied octet by
            // octet; with more, as a whole, past the end of the message.
            let exact = HEADER_LEN + Writer::opt_len(Some(&subnet), true, Some(b"node"));
            let msg = write(exact);
            assert_eq!(msg.len(), exact);
            for extra in 1..=20 {
                assert_eq!(write(exact + extra), msg, "{address}, {extra} more bytes");
            }
            let octets = usize::from(source_prefix).div_ceil(8);
            let ecs = &msg[msg.len() - 8 - octets..];
            let family = if address.contains(':') { 2 } else { 1 };
            assert_eq!(
                &ecs[..8],
                &[0, 8, 0, 4 + octets as u8, 0, family, source_prefix, scope]
            );
            let expected: Vec<u8> = match subnet.address {
                IpAddr::V4(a) => a.octets()[..octets].to_vec(),
                IpAddr::V6(a) => a.octets()[..octets].to_vec(),
            };
            assert_eq!(&ecs[8..], &expected[..]);
            // The cookie and NSID options come first, whole.
            let opt = &msg[HEADER_LEN..];
            assert_eq!(&opt[11..15], &[0, 10, 0, cookie::OPTION_LEN as u8]);
            assert_eq!(&opt[15..15 + cookie::OPTION_LEN], &cookie);
            assert_eq!(
                &opt[15 + cookie::OPTION_LEN..][..8],
                b"\x00\x03\x00\x04node"
            );
        }
    }

    #[test]
    fn address_records_are_the_records_record_writes() {
        let qname = b"\x03Svc\x07example\x03com\x00";
        let other = b"\x03svc\x07example\x03com\x00";
        let addresses: [IpAddr; 2] = ["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        let write = |room: usize, fast: bool| {
            let mut buf = [0u8; 512];
            let mut w = Writer::new(&mut buf, room);
            w.start(9, flag::QR, Some((qname, 1, 1))).unwrap();
            let mut written = Vec::new();
            // The question's own slice, then an equal name elsewhere.
            for owner in [&qname[..], &other[..]] {
                for address in addresses {
                    let before = (w.len(), w.count(Section::Answer));
                    let result = if fast {
                        w.address(owner, 300, address)
                    } else {
                        let (t, rdata) = match address {
                            IpAddr::V4(a) => (rtype::A, a.octets().to_vec()),
                            IpAddr::V6(a) => (rtype::AAAA, a.octets().to_vec()),
                        };
                        w.record(Section::Answer, owner, t, 300, &rdata)
                    };
                    if result.is_err() {
                        // A write that does not fit leaves no trace.
                        assert_eq!((w.len(), w.count(Section::Answer)), before);
                    }
                    written.push(result);
                }
            }
            let len = w.finish();
            (buf[..len].to_vec(), written)
        };
        for room in [512, 40, 50, 60, 80, 100] {
            assert_eq!(write(room, true), write(room, false), "room {room}");
        }
        let (msg, _) = write(512, true);
        // Owned by a pointer to the question, class IN, TTL 300.
        let first = HEADER_LEN + qname.len() + 4;
        assert_eq!(
            &msg[first..first + 16],
            &[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1]
        );
    }

    #[test]
    fn writer_refuses_writes_past_its_limit() {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf, 40);
        w.start(1, flag::QR, Some((b"\x01a\x00", 1, 1))).unwrap();
        w.record(Section::Answer, b"\x01a\x00", 1, 1, &[1, 2, 3, 4])
            .unwrap();
        let before = w.len();
        assert_eq!(
            w.record(Section::Answer, b"\x01b\x00", 16, 1, &[0; 30]),
            Err(Full)
        );
        assert_eq!(w.len(), before);
        assert_eq!(w.count(Section::Answer), 1);
    }
}
