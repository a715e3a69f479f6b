//! Domain names (RFC 1034 §3.1, RFC 1035 §3.1).
//!
//! A [`Name`] is an absolute name held in uncompressed wire format: a sequence
//! of length-prefixed labels ending with the root label. Keeping the wire form
//! means a zone lookup compares bytes with the query as it arrived, and writing
//! a name into a response is a copy.

use std::fmt;

/// Longest name in wire format, root label included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Why a text name could not be turned into a [`Name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A label is longer than 63 octets.
    #[error("label longer than 63 octets")]
    LongLabel,
    /// The whole name is longer than 255 octets.
    #[error("name longer than 255 octets")]
    LongName,
    /// Two dots in a row, or a dot at the start of a non-root name.
    #[error("empty label")]
    EmptyLabel,
    /// A backslash escape that is not `\X` or `\DDD` with DDD <= 255.
    #[error("bad escape sequence")]
    BadEscape,
    /// A relative name where no origin is known.
    #[error("relative name without an origin")]
    NoOrigin,
}

/// An absolute domain name in uncompressed wire format, case preserved.
///
/// Equality and hashing are by bytes, so callers that need DNS's
/// case-insensitive comparison use [`Name::to_lowercase`] first, or
/// [`Name::eq_ignore_case`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Box<[u8]>);

impl Name {
    /// The root name `.`.
    pub fn root() -> Name {
        Name(Box::new([0]))
    }

    /// Wraps wire bytes that the caller has already checked are one
    /// well-formed uncompressed absolute name.
    pub fn from_wire_unchecked(wire: &[u8]) -> Name {
        Name(wire.into())
    }

    /// Parses a name in presentation format (RFC 1035 §5.1): `\X` and `\DDD`
    /// escapes, `@` for the origin, and relative names completed by `origin`.
    pub fn from_text(text: &str, origin: Option<&Name>) -> Result<Name, NameError> {
        if text == "@" {
            return origin.cloned().ok_or(NameError::NoOrigin);
        }
        if text == "." {
            return Ok(Name::root());
        }
        let bytes = text.as_bytes();
        let mut wire = Vec::with_capacity(bytes.len() + 2);
        let mut label_start = 0;
        wire.push(0);
        let mut i = 0;
        let mut absolute = false;
        while i < bytes.len() {
            let c = bytes[i];
            match c {
                b'.' => {
                    close_label(&mut wire, label_start)?;
                    if i + 1 == bytes.len() {
                        absolute = true;
                    }
                    label_start = wire.len();
                    wire.push(0);
                    i += 1;
                    continue;
                }
                b'\\' => {
                    let (byte, used) = unescape(&bytes[i + 1..])?;
                    wire.push(byte);
                    i += 1 + used;
                }
                _ => {
                    wire.push(c);
                    i += 1;
                }
            }
            if wire.len() - label_start - 1 > MAX_LABEL_LEN {
                return Err(NameError::LongLabel);
            }
        }
        if absolute {
            // The loop left an open empty label after the final dot: it is the root.
            wire.truncate(label_start);
            wire.push(0);
        } else {
            close_label(&mut wire, label_start)?;
            let origin = origin.ok_or(NameError::NoOrigin)?;
            wire.extend_from_slice(origin.wire());
        }
        if wire.len() > MAX_NAME_LEN {
            return Err(NameError::LongName);
        }
        Ok(Name(wire.into_boxed_slice()))
    }

    /// Parses an absolute name whose final dot may be left out, as the
    /// config file and the command line write names: `example.com` means
    /// `example.com.`. There is no origin, so `@` is an ordinary label.
    pub fn from_absolute_text(text: &str) -> Result<Name, NameError> {
        if text.ends_with('.') {
            Name::from_text(text, None)
        } else {
            Name::from_text(&format!("{text}."), None)
        }
    }

    /// The name in uncompressed wire format.
    pub fn wire(&self) -> &[u8] {
        &self.0
    }

    /// A copy with ASCII letters lowered, the canonical form for lookups
    /// (RFC 4343).
    pub fn to_lowercase(&self) -> Name {
        Name(self.0.to_ascii_lowercase().into_boxed_slice())
    }

    /// Compares two names as DNS does: ASCII case-insensitively (RFC 4343).
    pub fn eq_ignore_case(&self, other: &Name) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }

    /// Whether this is the root name.
    pub fn is_root(&self) -> bool {
        self.0.len() == 1
    }

    /// Number of labels, not counting the root label.
    pub fn label_count(&self) -> usize {
        labels(&self.0).count()
    }

    /// The name with its first label removed, or `None` for the root.
    pub fn parent(&self) -> Option<Name> {
        parent_wire(&self.0).map(Name::from_wire_unchecked)
    }

    /// Whether `self` equals `ancestor` or lies below it (case-insensitive).
    pub fn ends_with(&self, ancestor: &Name) -> bool {
        wire_ends_with(&self.0, &ancestor.0)
    }

    /// Whether the first label is `*` (RFC 4592 §2.1.1).
    pub fn is_wildcard(&self) -> bool {
        wildcard_parent_wire(&self.0).is_some()
    }
}

/// For a wildcard's wire form, `*.parent`, the parent's; `None` for any
/// other name (RFC 4592 §2.1.1).
pub fn wildcard_parent_wire(wire: &[u8]) -> Option<&[u8]> {
    wire.strip_prefix(b"\x01*")
}

/// The wire form without its first label, or `None` for the root.
pub fn parent_wire(wire: &[u8]) -> Option<&[u8]> {
    let len = *wire.first()? as usize;
    if len == 0 {
        None
    } else {
        wire.get(1 + len..)
    }
}

/// Whether `wire` equals `suffix` or lies below it, comparing whole labels
/// ASCII case-insensitively.
pub fn wire_ends_with(wire: &[u8], suffix: &[u8]) -> bool {
    let mut rest = wire;
    loop {
        if rest.len() == suffix.len() {
            return rest.eq_ignore_ascii_case(suffix);
        }
        if rest.len() < suffix.len() {
            return false;
        }
        match parent_wire(rest) {
            Some(p) => rest = p,
            None => return false,
        }
    }
}

/// Copies `src` into `dst` (of the same length) with ASCII letters
/// lowered (RFC 4343), eight bytes at a time: every query name is lowered
/// before lookup, and a byte loop costs about four instructions a byte.
/// A name of eight bytes or more whose length is not a multiple of eight
/// ends with its last eight, which overlap the words before: lowering a
/// byte twice leaves it as once.
#[inline]
pub fn copy_lowercase(dst: &mut [u8], src: &[u8]) {
    assert_eq!(dst.len(), src.len(), "copy_lowercase needs equal lengths");
    let lower = |s: &[u8]| {
        let mut x = [0; 8];
        x.copy_from_slice(s);
        lowercase_word(u64::from_ne_bytes(x)).to_ne_bytes()
    };
    let len = src.len();
    if len < 8 {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = s.to_ascii_lowercase();
        }
        return;
    }
    for (d, s) in dst.chunks_exact_mut(8).zip(src.chunks_exact(8)) {
        d.copy_from_slice(&lower(s));
    }
    if len % 8 != 0 {
        dst[len - 8..].copy_from_slice(&lower(&src[len - 8..]));
    }
}

/// [`copy_lowercase`] of eight bytes in a word. Each sum stays below 256 per
/// byte, so no carry crosses into the next byte; a byte's top bit then
/// says whether it was at least `A`, or above `Z`.
pub(crate) fn lowercase_word(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOP: u64 = ONES * 0x80;
    let low = x & !TOP;
    let at_least_a = low + ONES * (0x80 - u64::from(b'A'));
    let above_z = low + ONES * (0x80 - u64::from(b'Z') - 1);
    // Letters: ASCII (top bit clear), at least A, not above Z.
    let upper = at_least_a & !above_z & !x & TOP;
    // 0x80 >> 2 is 0x20, the bit that lowers a letter.
    x | (upper >> 2)
}

/// The labels of an uncompressed wire name, root label excluded.
pub fn labels(wire: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = wire;
    std::iter::from_fn(move || {
        let len = *rest.first()? as usize;
        if len == 0 {
            return None;
        }
        let label = rest.get(1..1 + len)?;
        rest = &rest[1 + len..];
        Some(label)
    })
}

fn close_label(wire: &mut [u8], label_start: usize) -> Result<(), NameError> {
    let len = wire.len() - label_start - 1;
    if len == 0 {
        return Err(NameError::EmptyLabel);
    }
    wire[label_start] = len as u8;
    Ok(())
}

/// Decodes the part of an escape after the backslash; returns the byte and how
/// many input bytes it used.
fn unescape(rest: &[u8]) -> Result<(u8, usize), NameError> {
    match rest {
        [a, b, c, ..] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            let v = u32::from(a - b'0') * 100 + u32::from(b - b'0') * 10 + u32::from(c - b'0');
            u8::try_from(v)
                .map(|v| (v, 3))
                .map_err(|_| NameError::BadEscape)
        }
        [a, ..] if !a.is_ascii_digit() => Ok((*a, 1)),
        _ => Err(NameError::BadEscape),
    }
}

/// Writes one label in presentation format, escaping what RFC 1035 §5.1
/// and RFC 4343 §2.1 say must be escaped.
pub fn fmt_label(label: &[u8], f: &mut impl fmt::Write) -> fmt::Result {
    for &b in label {
        match b {
            b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                f.write_char('\\')?;
                f.write_char(b as char)?;
            }
            0x21..=0x7e => f.write_char(b as char)?,
            _ => write!(f, "\\{b:03}")?,
        }
    }
    Ok(())
}

/// Formats an uncompressed wire name in presentation format, ending in a dot.
pub fn fmt_wire(wire: &[u8], f: &mut impl fmt::Write) -> fmt::Result {
    let mut any = false;
    for label in labels(wire) {
        fmt_label(label, f)?;
        f.write_char('.')?;
        any = true;
    }
    if !any {
        f.write_char('.')?;
    }
    Ok(())
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_wire(&self.0, f)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::from_text(s, None).unwrap()
    }

    #[test]
    fn parses_absolute_and_relative() {
        assert_eq!(
            n("www.Example.com.").wire(),
            b"\x03www\x07Example\x03com\x00"
        );
        let origin = n("example.com.");
        let rel = Name::from_text("a.b", Some(&origin)).unwrap();
        assert_eq!(rel.to_string(), "a.b.example.com.");
        assert_eq!(Name::from_text("@", Some(&origin)).unwrap(), origin);
        assert_eq!(n(".").wire(), b"\x00");
    }

    #[test]
    fn final_dot_is_optional_for_absolute_names() {
        let want = n("Example.com.");
        assert_eq!(Name::from_absolute_text("Example.com"), Ok(want.clone()));
        assert_eq!(Name::from_absolute_text("Example.com."), Ok(want));
        assert_eq!(Name::from_absolute_text(""), Ok(Name::root()));
        assert_eq!(Name::from_absolute_text("a..b"), Err(NameError::EmptyLabel));
    }

    #[test]
    fn escapes_round_trip() {
        let name = n("a\\.b\\032c.example.");
        assert_eq!(name.wire(), b"\x05a.b c\x07example\x00");
        assert_eq!(name.to_string(), "a\\.b\\032c.example.");
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(Name::from_text("a..b.", None), Err(NameError::EmptyLabel));
        assert_eq!(Name::from_text("a", None), Err(NameError::NoOrigin));
        let long = "a".repeat(64) + ".";
        assert_eq!(Name::from_text(&long, None), Err(NameError::LongLabel));
        let many = "abcdefghi.".repeat(26);
        assert_eq!(Name::from_text(&many, None), Err(NameError::LongName));
        assert_eq!(Name::from_text("a\\256.", None), Err(NameError::BadEscape));
    }

    #[test]
    fn ancestry() {
        assert!(n("a.B.example.").ends_with(&n("b.example.")));
        assert!(!n("ab.example.").ends_with(&n("b.example.")));
        assert!(n("x.").ends_with(&Name::root()));
        assert_eq!(n("a.b.").parent(), Some(n("b.")));
        assert!(n("*.a.").is_wildcard());
    }

    #[test]
    fn copy_lowercase_matches_the_byte_by_byte_rule() {
        // Every byte value at every position of a word and of the tail.
        for len in [1, 7, 8, 9, 15, 16, 19] {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes: Vec<u8> = (0..len).map(|i| b'@' + (i as u8 * 7) % 60).collect();
                    bytes[at] = b;
                    let mut lowered = vec![0; len];
                    copy_lowercase(&mut lowered, &bytes);
                    assert_eq!(
                        lowered,
                        bytes.to_ascii_lowercase(),
                        "byte {b:#x} at {at} of {len}"
                    );
                }
            }
        }
    }
}
