//! A strict checker for DNS responses.
//!
//! Stricter than a decoder that only wants the data: every count in the
//! header is matched by a record, nothing follows the last record, names
//! obey RFC 1035 §3.1 and §4.1.4 (labels of at most 63 octets, names of at
//! most 255, compression pointers that only point backwards, below
//! everything the name already used), names inside RDATA are compressed
//! only in the RFC 1035 types (RFC 3597 §4), the RDATA of the types steerdns
//! serves has exactly the shape its RFC gives it, and the OPT record is
//! well formed and where RFC 6891 §6.1.1 puts it.

use std::fmt;

/// Size of the fixed header (RFC 1035 §4.1.1).
const HEADER_LEN: usize = 12;
/// Longest name in wire format (RFC 1035 §3.1).
const MAX_NAME_LEN: usize = 255;

/// Record types with a checked RDATA shape.
mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const MD: u16 = 3;
    pub const MF: u16 = 4;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const MB: u16 = 7;
    pub const MG: u16 = 8;
    pub const MR: u16 = 9;
    pub const PTR: u16 = 12;
    pub const HINFO: u16 = 13;
    pub const MINFO: u16 = 14;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const NAPTR: u16 = 35;
    pub const OPT: u16 = 41;
    pub const CAA: u16 = 257;
}

/// Class IN, the only class steerdns serves.
const CLASS_IN: u16 = 1;

/// Why a message was refused: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// Offset in the message where the problem was found.
    pub at: usize,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at offset {}: {}", self.at, self.what)
    }
}

impl std::error::Error for Malformed {}

/// The OPT record of a response (RFC 6891 §6.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    /// The responder's UDP payload size (the CLASS field).
    pub udp_payload: u16,
    /// The upper 8 bits of the 12-bit rcode.
    pub ext_rcode: u8,
    /// EDNS version.
    pub version: u8,
    /// The DO bit.
    pub dnssec_ok: bool,
    /// The options, in order: code and data.
    pub options: Vec<(u16, Vec<u8>)>,
}

/// What a message that passed the checks holds, for further checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Message ID.
    pub id: u16,
    /// The flags word (QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode).
    pub flags: u16,
    /// Records per section: question, answer, authority, additional.
    pub counts: [u16; 4],
    /// The first question: name (expanded wire format, case kept), type
    /// and class.
    pub question: Option<(Vec<u8>, u16, u16)>,
    /// The OPT record, if any.
    pub opt: Option<Opt>,
}

impl Summary {
    /// The full response code: the header's 4 bits and the OPT's upper 8.
    pub fn rcode(&self) -> u16 {
        let ext = self.opt.as_ref().map_or(0, |o| u16::from(o.ext_rcode));
        (ext << 4) | (self.flags & 0xf)
    }

    /// The 4-bit opcode.
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }
}

/// Checks `msg` as a DNS response and summarises it.
pub fn check_response(msg: &[u8]) -> Result<Summary, Malformed> {
    let mut r = Reader { msg, pos: 0 };
    if msg.len() > usize::from(u16::MAX) {
        return r.fail("longer than 65,535 octets");
    }
    let id = r.u16()?;
    let flags = r.u16()?;
    let mut counts = [0u16; 4];
    for count in &mut counts {
        *count = r.u16()?;
    }
    if flags & 0x0040 != 0 {
        return r.fail("the Z header bit is set (RFC 1035 §4.1.1: must be zero)");
    }

    let mut question = None;
    for _ in 0..counts[0] {
        let name = r.name(msg.len())?;
        let qtype = r.u16()?;
        let qclass = r.u16()?;
        question.get_or_insert((name, qtype, qclass));
    }

    let mut opt = None;
    for (section, &count) in counts[1..].iter().enumerate() {
        for _ in 0..count {
            let start = r.pos;
            let owner = r.name(msg.len())?;
            let rr_type = r.u16()?;
            let class = r.u16()?;
            let ttl = r.u32()?;
            let rdlen = usize::from(r.u16()?);
            let rdata_at = r.pos;
            if msg.len() - rdata_at < rdlen {
                return r.fail(format!("RDATA of {rdlen} octets runs past the message"));
            }
            if rr_type == rtype::OPT {
                if section != 2 {
                    return r.fail("OPT outside the additional section");
                }
                if opt.is_some() {
                    return r.fail("more than one OPT record");
                }
                if owner != [0] || msg[start] != 0 {
                    return r.fail("OPT owner is not the root, written as one zero octet");
                }
                opt = Some(r.opt(class, ttl, rdata_at + rdlen)?);
            } else {
                if class != CLASS_IN {
                    return r.fail(format!("class {class} instead of IN"));
                }
                if ttl > 0x7fff_ffff {
                    return r.fail("TTL with the top bit set (RFC 2181 §8)");
                }
                r.rdata(rr_type, rdata_at + rdlen)?;
            }
            if r.pos != rdata_at + rdlen {
                return r.fail(format!("RDATA of type {rr_type} does not fill RDLENGTH"));
            }
        }
    }
    if r.pos != msg.len() {
        return r.fail(format!(
            "{} octets after the last record",
            msg.len() - r.pos
        ));
    }
    Ok(Summary {
        id,
        flags,
        counts,
        question,
        opt,
    })
}

/// A cursor over the message being checked.
struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn fail<T>(&self, what: impl Into<String>) -> Result<T, Malformed> {
        Err(Malformed {
            at: self.pos,
            what: what.into(),
        })
    }

    fn take(&mut self, n: usize, end: usize) -> Result<&[u8], Malformed> {
        if end.min(self.msg.len()).saturating_sub(self.pos) < n {
            return self.fail(format!("{n} octets needed, fewer left"));
        }
        let bytes = &self.msg[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn u8(&mut self, end: usize) -> Result<u8, Malformed> {
        Ok(self.take(1, end)?[0])
    }

    fn u16(&mut self) -> Result<u16, Malformed> {
        let b = self.take(2, usize::MAX)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4, usize::MAX)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a possibly compressed name whose own octets end by `end`;
    /// returns it expanded.
    fn name(&mut self, end: usize) -> Result<Vec<u8>, Malformed> {
        self.read_name(end, true)
    }

    /// Reads a name that must not be compressed.
    fn plain_name(&mut self, end: usize) -> Result<Vec<u8>, Malformed> {
        self.read_name(end, false)
    }

    fn read_name(&mut self, end: usize, compressed: bool) -> Result<Vec<u8>, Malformed> {
        let mut out = Vec::new();
        // Every pointer must point below everything this name used so far,
        // which also rules out loops.
        let mut floor = self.pos;
        let mut at = self.pos;
        let mut limit = end;
        let mut resume = None;
        loop {
            let fail = |what: String| {
                Err(Malformed {
                    at,
                    what: format!("name: {what}"),
                })
            };
            let Some(&len) = self.msg[..limit.min(self.msg.len())].get(at) else {
                return fail("runs past its end".into());
            };
            match len {
                0 => {
                    out.push(0);
                    if out.len() > MAX_NAME_LEN {
                        return fail(format!("{} octets, over {MAX_NAME_LEN}", out.len()));
                    }
                    self.pos = resume.unwrap_or(at + 1);
                    return Ok(out);
                }
                1..=63 => {
                    let label_end = at + 1 + usize::from(len);
                    if label_end > limit.min(self.msg.len()) {
                        return fail("label runs past its end".into());
                    }
                    out.extend_from_slice(&self.msg[at..label_end]);
                    if out.len() + 1 > MAX_NAME_LEN {
                        return fail(format!("over {MAX_NAME_LEN} octets"));
                    }
                    at = label_end;
                }
                0xc0..=0xff => {
                    if !compressed {
                        return fail("compressed where RFC 3597 §4 forbids it".into());
                    }
                    let Some(&low) = self.msg[..limit.min(self.msg.len())].get(at + 1) else {
                        return fail("pointer cut short".into());
                    };
                    let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                    if target < HEADER_LEN || target >= floor {
                        return fail(format!("pointer to {target}, not below {floor}"));
                    }
                    resume.get_or_insert(at + 2);
                    floor = target;
                    at = target;
                    // Pointed-to names lie in earlier parts of the message.
                    limit = self.msg.len();
                }
                _ => return fail(format!("label type {len:#04x} (RFC 6891 §5: deprecated)")),
            }
        }
    }

    /// Reads a <character-string> (RFC 1035 §3.3) within `end`.
    fn char_string(&mut self, end: usize) -> Result<(), Malformed> {
        let len = usize::from(self.u8(end)?);
        self.take(len, end).map(|_| ())
    }

    /// Checks the RDATA of one record, `end` being where it stops.
    fn rdata(&mut self, rr_type: u16, end: usize) -> Result<(), Malformed> {
        let size = end - self.pos;
        match rr_type {
            rtype::A if size != 4 => self.fail(format!("A RDATA of {size} octets")),
            rtype::AAAA if size != 16 => self.fail(format!("AAAA RDATA of {size} octets")),
            rtype::A | rtype::AAAA => self.take(size, end).map(|_| ()),
            rtype::NS
            | rtype::MD
            | rtype::MF
            | rtype::CNAME
            | rtype::MB
            | rtype::MG
            | rtype::MR
            | rtype::PTR => self.name(end).map(|_| ()),
            rtype::MINFO => {
                self.name(end)?;
                self.name(end).map(|_| ())
            }
            rtype::MX => {
                self.take(2, end)?;
                self.name(end).map(|_| ())
            }
            rtype::SOA => {
                self.name(end)?;
                self.name(end)?;
                self.take(20, end).map(|_| ())
            }
            rtype::SRV => {
                self.take(6, end)?;
                self.plain_name(end).map(|_| ())
            }
            rtype::TXT => {
                if size == 0 {
                    return self.fail("TXT without a string");
                }
                while self.pos < end {
                    self.char_string(end)?;
                }
                Ok(())
            }
            rtype::HINFO => {
                self.char_string(end)?;
                self.char_string(end)
            }
            rtype::NAPTR => {
                self.take(4, end)?;
                for _ in 0..3 {
                    self.char_string(end)?;
                }
                self.plain_name(end).map(|_| ())
            }
            rtype::CAA => {
                self.u8(end)?;
                let tag_len = usize::from(self.u8(end)?);
                if tag_len == 0 {
                    return self.fail("CAA with an empty tag (RFC 8659 §4.1)");
                }
                self.take(tag_len, end)?;
                self.take(end - self.pos, end).map(|_| ())
            }
            // Opaque to us (RFC 3597): any octets.
            _ => self.take(size, end).map(|_| ()),
        }
    }

    /// Reads the RDATA of an OPT record with its CLASS and TTL fields.
    fn opt(&mut self, class: u16, ttl: u32, end: usize) -> Result<Opt, Malformed> {
        if ttl & 0x7fff != 0 {
            return self.fail("OPT flags other than DO are set (RFC 6891 §6.1.4: must be zero)");
        }
        let mut options = Vec::new();
        while self.pos < end {
            let code = self.u16()?;
            let len = usize::from(self.u16()?);
            if self.pos > end {
                return self.fail("EDNS option header runs past the OPT");
            }
            let data = self.take(len, end)?.to_vec();
            options.push((code, data));
        }
        Ok(Opt {
            udp_payload: class,
            ext_rcode: (ttl >> 24) as u8,
            version: (ttl >> 16) as u8,
            dnssec_ok: ttl & 0x8000 != 0,
            options,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response header with `counts`, QR and AA set.
    fn header(counts: [u16; 4]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x84, 0x00];
        for c in counts {
            m.extend_from_slice(&c.to_be_bytes());
        }
        m
    }

    const QNAME: &[u8] = b"\x03www\x07example\x00";

    fn with_question(counts: [u16; 4]) -> Vec<u8> {
        let mut m = header(counts);
        m.extend_from_slice(QNAME);
        m.extend_from_slice(&[0, 1, 0, 1]);
        m
    }

    #[test]
    fn accepts_a_compressed_answer_and_an_opt() {
        let mut m = with_question([1, 1, 0, 1]);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        m.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0x80, 0, 0, 0]);
        let s = check_response(&m).unwrap();
        assert_eq!(s.question, Some((QNAME.to_vec(), 1, 1)));
        assert_eq!(s.opt.unwrap().udp_payload, 1232);
    }

    #[test]
    fn refuses_what_a_lenient_decoder_reads() {
        // Trailing octet.
        let mut m = with_question([1, 0, 0, 0]);
        m.push(0);
        assert!(check_response(&m).is_err());
        // Pointer to itself.
        let mut m = header([1, 0, 0, 0]);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert!(check_response(&m).is_err());
        // Pointer loop through an earlier label.
        let mut m = with_question([1, 1, 0, 0]);
        let at = m.len();
        m.extend_from_slice(&[1, b'a', 0xc0, at as u8, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert!(check_response(&m).is_err());
        // A with 3 octets.
        let mut m = with_question([1, 1, 0, 0]);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 3, 1, 2, 3]);
        assert!(check_response(&m).is_err());
        // Compressed SRV target.
        let mut m = with_question([1, 1, 0, 0]);
        m.extend_from_slice(&[0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, 8, 0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(&[0xc0, 12]);
        assert!(check_response(&m).is_err());
        // OPT in the answer section.
        let mut m = with_question([1, 1, 0, 0]);
        m.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
        assert!(check_response(&m).is_err());
        // Two OPT records.
        let mut m = with_question([1, 0, 0, 2]);
        for _ in 0..2 {
            m.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
        }
        assert!(check_response(&m).is_err());
        // EDNS option overrunning its OPT.
        let mut m = with_question([1, 0, 0, 1]);
        m.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 4, 0, 8, 0, 9]);
        assert!(check_response(&m).is_err());
        // A 256-octet name.
        let mut m = header([1, 0, 0, 0]);
        for _ in 0..4 {
            m.push(63);
            m.extend_from_slice(&[b'a'; 63]);
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert!(check_response(&m).is_err());
    }
}
