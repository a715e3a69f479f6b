//! RDATA in presentation format to uncompressed wire format.
//!
//! One encoder per type the server knows by name (RFC 1035 §3.3 and §5.1 and
//! each type's own RFC), plus the RFC 3597 §5 generic form
//! `\# <length> <hex>` for any type. Generic RDATA of a known type is checked
//! against that type's wire layout, because the answer path trusts it (it
//! compresses the names inside NS, MX, SOA and friends, RFC 3597 §4).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::lex::{quote, Fail, Token};
use crate::name::{Name, MAX_NAME_LEN};
use crate::rr::{rtype, type_to_string};

/// Longest RDATA: its length travels in the 16-bit RDLENGTH (RFC 1035 §3.2.1).
const MAX_RDATA_LEN: usize = 65535;
/// Longest `<character-string>`: one length octet (RFC 1035 §3.3).
const MAX_STRING_LEN: usize = 255;

/// Encodes the RDATA fields `toks` of a record of type `rt`; relative names
/// are completed with `origin`. `line` is where the type was written, for
/// errors about fields that are missing.
pub(super) fn encode(
    rt: u16,
    toks: &[Token<'_>],
    origin: &Name,
    line: u32,
) -> Result<Vec<u8>, Fail> {
    let ty = type_to_string(rt);
    let mut f = Fields {
        toks,
        pos: 0,
        line,
        ty: &ty,
    };
    let mut out = Vec::new();
    // `\#` is only the generic marker when unquoted (RFC 3597 §5).
    if matches!(toks.first(), Some(t) if !t.quoted && t.text == r"\#") {
        f.pos = 1;
        generic(&mut f, &mut out)?;
        check_wire(rt, &out)
            .map_err(|m| Fail::new(line, format!("bad {ty} RDATA in \\# form: {m}")))?;
    } else {
        match rt {
            rtype::A => {
                let tok = f.next("IPv4 address")?;
                let addr: Ipv4Addr = tok.text.parse().map_err(|_| {
                    Fail::new(tok.line, format!("bad IPv4 address {}", quote(tok.text)))
                })?;
                out.extend_from_slice(&addr.octets());
            }
            rtype::AAAA => {
                let tok = f.next("IPv6 address")?;
                let addr: Ipv6Addr = tok.text.parse().map_err(|_| {
                    Fail::new(tok.line, format!("bad IPv6 address {}", quote(tok.text)))
                })?;
                out.extend_from_slice(&addr.octets());
            }
            rtype::NS | rtype::CNAME | rtype::PTR | rtype::DNAME => {
                f.name("target name", origin, &mut out)?;
            }
            rtype::SOA => {
                // RFC 1035 §3.3.13. The timers take BIND's units (1h, 2d);
                // the serial is a plain number (RFC 1982 arithmetic on it).
                f.name("MNAME", origin, &mut out)?;
                f.name("RNAME", origin, &mut out)?;
                f.u32("serial", &mut out)?;
                for what in ["refresh", "retry", "expire", "minimum"] {
                    let tok = f.next(what)?;
                    let v = duration(tok.text).ok_or_else(|| {
                        Fail::new(tok.line, format!("bad SOA {what} {}", quote(tok.text)))
                    })?;
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
            rtype::MX => {
                // RFC 1035 §3.3.9.
                f.u16("preference", &mut out)?;
                f.name("exchange", origin, &mut out)?;
            }
            rtype::TXT => {
                // RFC 1035 §3.3.14: one or more <character-string>s; each
                // token, quoted or not, is one of them.
                f.string("string", &mut out)?;
                while !f.at_end() {
                    f.string("string", &mut out)?;
                }
            }
            rtype::HINFO => {
                // RFC 1035 §3.3.2.
                f.string("CPU", &mut out)?;
                f.string("OS", &mut out)?;
            }
            rtype::SRV => {
                // RFC 2782: priority weight port target.
                f.u16("priority", &mut out)?;
                f.u16("weight", &mut out)?;
                f.u16("port", &mut out)?;
                f.name("target", origin, &mut out)?;
            }
            rtype::NAPTR => {
                // RFC 3403 §4.1: order preference flags services regexp replacement.
                f.u16("order", &mut out)?;
                f.u16("preference", &mut out)?;
                let start = out.len();
                f.string("flags", &mut out)?;
                // Flags are single characters from A-Z and 0-9 (RFC 3403 §4.1).
                let flags = out.get(start + 1..).unwrap_or_default();
                if !flags.iter().all(u8::is_ascii_alphanumeric) {
                    return Err(Fail::new(f.line, "NAPTR flags must be letters and digits"));
                }
                f.string("services", &mut out)?;
                f.string("regexp", &mut out)?;
                f.name("replacement", origin, &mut out)?;
            }
            rtype::CAA => {
                // RFC 8659 §4.1.1: flags tag value. The value has no length
                // octet and is not limited to 255 bytes (RFC 6844 erratum 4062).
                f.u8("flags", &mut out)?;
                let tok = f.next("tag")?;
                let tag = tok.text.as_bytes();
                check_caa_tag(tag).map_err(|m| {
                    Fail::new(tok.line, format!("bad CAA tag {}: {m}", quote(tok.text)))
                })?;
                // check_caa_tag has bounded the length to 255.
                out.push(u8::try_from(tag.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(tag);
                let tok = f.next("value")?;
                let value = unescape(tok.text, MAX_RDATA_LEN)
                    .map_err(|m| Fail::new(tok.line, format!("bad CAA value: {m}")))?;
                out.extend_from_slice(&value);
            }
            _ => {
                return Err(Fail::new(
                    line,
                    format!(
                        "type {ty} has no text form here; use the RFC 3597 form \\# <length> <hex>"
                    ),
                ));
            }
        }
    }
    f.finish()?;
    if out.len() > MAX_RDATA_LEN {
        return Err(Fail::new(
            line,
            format!("{ty} RDATA longer than 65535 bytes"),
        ));
    }
    Ok(out)
}

/// RFC 3597 §5: `\# <length> <hex words>`; the hex may be split across
/// tokens (even inside a byte) and must decode to exactly `length` bytes.
fn generic(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> Result<(), Fail> {
    let len = f.number("RDATA length", 65535)?;
    let mut nibbles = Vec::new();
    while let Some(tok) = f.toks.get(f.pos) {
        f.pos += 1;
        f.line = tok.line;
        for c in tok.text.chars() {
            let d = c
                .to_digit(16)
                .ok_or_else(|| Fail::new(tok.line, format!("bad hex data {}", quote(tok.text))))?;
            nibbles.push(d as u8); // a hex digit is below 16
        }
    }
    if nibbles.len() % 2 != 0 {
        return Err(Fail::new(f.line, "odd number of hex digits in \\# data"));
    }
    out.extend(nibbles.chunks_exact(2).map(|p| p[0] << 4 | p[1]));
    if u32::try_from(out.len()).ok() != Some(len) {
        return Err(Fail::new(
            f.line,
            format!(
                "\\# length {len} does not match {} bytes of hex data",
                out.len()
            ),
        ));
    }
    Ok(())
}

/// A CAA tag: one or more ASCII letters and digits (RFC 8659 §4.1.1).
fn check_caa_tag(tag: &[u8]) -> Result<(), &'static str> {
    if tag.is_empty() || tag.len() > 255 {
        Err("must be 1 to 255 characters")
    } else if !tag.iter().all(u8::is_ascii_alphanumeric) {
        Err("must be letters and digits")
    } else {
        Ok(())
    }
}

/// Reads a TTL or SOA timer: plain seconds (`3600`) or BIND-style units
/// `w d h m s` in any case (`1h30m`, `1W`). A bare number may not follow
/// units, as in BIND. `None` if malformed or above `u32::MAX`.
pub(super) fn duration(text: &str) -> Option<u32> {
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let mut total: u32 = 0;
    let mut num: Option<u32> = None;
    for b in text.bytes() {
        if b.is_ascii_digit() {
            let n = num.unwrap_or(0).checked_mul(10)?;
            num = Some(n.checked_add(u32::from(b - b'0'))?);
            continue;
        }
        let unit = match b.to_ascii_lowercase() {
            b's' => 1,
            b'm' => 60,
            b'h' => 3600,
            b'd' => 86_400,
            b'w' => 604_800,
            _ => return None,
        };
        total = total.checked_add(num.take()?.checked_mul(unit)?)?;
    }
    match num {
        Some(_) => None,
        None => Some(total),
    }
}

/// Decodes a `<character-string>` body (RFC 1035 §5.1): `\X` is X and
/// `\DDD` is the byte with decimal value DDD. At most `max` bytes.
pub(super) fn unescape(text: &str, max: usize) -> Result<Vec<u8>, String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len().min(max));
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c != b'\\' {
            out.push(c);
            i += 1;
        } else {
            match (b.get(i + 1..i + 4), b.get(i + 1)) {
                (Some(&[x, y, z]), _)
                    if x.is_ascii_digit() && y.is_ascii_digit() && z.is_ascii_digit() =>
                {
                    let v =
                        u32::from(x - b'0') * 100 + u32::from(y - b'0') * 10 + u32::from(z - b'0');
                    let v = u8::try_from(v).map_err(|_| format!("bad escape \\{v} (above 255)"))?;
                    out.push(v);
                    i += 4;
                }
                (_, Some(&x)) if !x.is_ascii_digit() => {
                    out.push(x);
                    i += 2;
                }
                _ => {
                    return Err(
                        "bad escape (\\ must be followed by a character or three digits)".into(),
                    )
                }
            }
        }
        if out.len() > max {
            return Err(format!("longer than {max} bytes"));
        }
    }
    Ok(out)
}

/// A cursor over the RDATA tokens of one record.
struct Fields<'t, 'a> {
    toks: &'t [Token<'a>],
    pos: usize,
    /// Line of the last token taken, where a missing field is reported.
    line: u32,
    ty: &'t str,
}

impl<'t, 'a> Fields<'t, 'a> {
    fn next(&mut self, what: &str) -> Result<&'t Token<'a>, Fail> {
        let tok = self
            .toks
            .get(self.pos)
            .ok_or_else(|| Fail::new(self.line, format!("missing {} {what}", self.ty)))?;
        self.pos += 1;
        self.line = tok.line;
        Ok(tok)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    fn finish(&self) -> Result<(), Fail> {
        match self.toks.get(self.pos) {
            Some(t) => Err(Fail::new(
                t.line,
                format!("unexpected {} after {} RDATA", quote(t.text), self.ty),
            )),
            None => Ok(()),
        }
    }

    /// A plain decimal integer no larger than `max`.
    fn number(&mut self, what: &str, max: u32) -> Result<u32, Fail> {
        let tok = self.next(what)?;
        let digits = !tok.text.is_empty() && tok.text.bytes().all(|b| b.is_ascii_digit());
        match tok.text.parse::<u32>() {
            Ok(v) if digits && v <= max => Ok(v),
            _ => Err(Fail::new(
                tok.line,
                format!(
                    "bad {} {what} {} (expected an integer 0-{max})",
                    self.ty,
                    quote(tok.text)
                ),
            )),
        }
    }

    fn u8(&mut self, what: &str, out: &mut Vec<u8>) -> Result<(), Fail> {
        let v = self.number(what, u8::MAX.into())?;
        out.push(v as u8); // number() checked the range
        Ok(())
    }

    fn u16(&mut self, what: &str, out: &mut Vec<u8>) -> Result<(), Fail> {
        let v = self.number(what, u16::MAX.into())?;
        out.extend_from_slice(&(v as u16).to_be_bytes()); // number() checked the range
        Ok(())
    }

    fn u32(&mut self, what: &str, out: &mut Vec<u8>) -> Result<(), Fail> {
        let v = self.number(what, u32::MAX)?;
        out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }

    /// A domain name, written uncompressed with its case kept.
    fn name(&mut self, what: &str, origin: &Name, out: &mut Vec<u8>) -> Result<(), Fail> {
        let tok = self.next(what)?;
        let name = Name::from_text(tok.text, Some(origin)).map_err(|e| {
            Fail::new(
                tok.line,
                format!("bad {} {what} {}: {e}", self.ty, quote(tok.text)),
            )
        })?;
        out.extend_from_slice(name.wire());
        Ok(())
    }

    /// A `<character-string>`: length octet then bytes.
    fn string(&mut self, what: &str, out: &mut Vec<u8>) -> Result<(), Fail> {
        let tok = self.next(what)?;
        let bytes = unescape(tok.text, MAX_STRING_LEN).map_err(|m| {
            Fail::new(
                tok.line,
                format!("bad {} {what} {}: {m}", self.ty, quote(tok.text)),
            )
        })?;
        // unescape bounded the length to 255.
        let len = u8::try_from(bytes.len()).unwrap_or(u8::MAX);
        out.push(len);
        out.extend_from_slice(&bytes);
        Ok(())
    }
}

/// Checks wire RDATA of a known type against that type's layout; RDATA of
/// other types is opaque (RFC 3597 §4) and always accepted.
fn check_wire(rt: u16, data: &[u8]) -> Result<(), String> {
    let mut r = Reader { data, pos: 0 };
    match rt {
        rtype::A => r.skip(4)?,
        rtype::AAAA => r.skip(16)?,
        rtype::NS | rtype::CNAME | rtype::PTR | rtype::DNAME => r.name()?,
        rtype::SOA => {
            r.name()?;
            r.name()?;
            r.skip(20)?;
        }
        rtype::MX => {
            r.skip(2)?;
            r.name()?;
        }
        rtype::TXT => {
            r.string()?;
            while r.pos < data.len() {
                r.string()?;
            }
        }
        rtype::HINFO => {
            r.string()?;
            r.string()?;
        }
        rtype::SRV => {
            r.skip(6)?;
            r.name()?;
        }
        rtype::NAPTR => {
            r.skip(4)?;
            r.string()?;
            r.string()?;
            r.string()?;
            r.name()?;
        }
        rtype::CAA => {
            r.skip(1)?;
            let tag = r.string()?;
            check_caa_tag(tag).map_err(|m| format!("CAA tag {m}"))?;
            r.pos = data.len();
        }
        _ => r.pos = data.len(),
    }
    if r.pos == data.len() {
        Ok(())
    } else {
        Err("trailing bytes".into())
    }
}

/// A cursor over wire RDATA for [`check_wire`].
struct Reader<'d> {
    data: &'d [u8],
    pos: usize,
}

impl<'d> Reader<'d> {
    fn take(&mut self, n: usize) -> Result<&'d [u8], String> {
        let end = self.pos.checked_add(n).ok_or("too short")?;
        let bytes = self.data.get(self.pos..end).ok_or("too short")?;
        self.pos = end;
        Ok(bytes)
    }

    fn skip(&mut self, n: usize) -> Result<(), String> {
        self.take(n).map(|_| ())
    }

    fn string(&mut self) -> Result<&'d [u8], String> {
        let len = self.take(1)?.first().copied().unwrap_or(0);
        self.take(len.into())
    }

    /// An uncompressed name: labels of 0-63 octets, 255 octets in all.
    fn name(&mut self) -> Result<(), String> {
        let start = self.pos;
        loop {
            let len = self.take(1)?.first().copied().unwrap_or(0);
            if len & 0xC0 != 0 {
                return Err("compressed or extended label in a name".into());
            }
            self.skip(len.into())?;
            if self.pos - start > MAX_NAME_LEN {
                return Err("name longer than 255 octets".into());
            }
            if len == 0 {
                return Ok(());
            }
        }
    }
}
