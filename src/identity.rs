//! Which node answered: the Name Server Identifier option (NSID, RFC 5001)
//! and the CHAOS-class TXT questions `id.server` and `hostname.bind`
//! (RFC 4892 §2.1), `version.server` and `version.bind`, answered as NSD
//! and Knot answer them.
//!
//! Behind an anycast address or a load balancer every node looks the same;
//! these let an operator ask one which it is (`dig +nsid`,
//! `dig CH TXT id.server`). The bytes are built once per snapshot, so
//! answering copies them and allocates nothing.
//!
//! - NSID: a query carrying an empty NSID option gets the identity back
//!   in its response's OPT record (RFC 5001 §2.2); an empty identity
//!   hides it and the option is left out, as §2.1 allows.
//! - CHAOS: `id.server`/`hostname.bind` TXT answer the identity and
//!   `version.server`/`version.bind` the version, with TTL 0 and AA, as
//!   NSD does; a hidden one, any other name, and any other type are
//!   REFUSED, as every CHAOS question was before.

/// What a node says about itself, built from `[server] identity` and
/// `version` when a snapshot is loaded.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The NSID payload; empty when hidden.
    nsid: Box<[u8]>,
    /// The TXT RDATA of `id.server`; `None` when hidden.
    id_txt: Option<Box<[u8]>>,
    /// The TXT RDATA of `version.server`; `None` when hidden.
    version_txt: Option<Box<[u8]>>,
}

/// The names CHAOS questions about a server are asked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChaosName {
    /// `id.server` (RFC 4892) or its older form `hostname.bind`.
    Id,
    /// `version.server` or `version.bind`.
    Version,
}

impl Identity {
    /// The identity `identity` (empty: hidden) and version `version`
    /// (`None` or empty: hidden). Each must fit one TXT character-string
    /// (255 bytes, [`crate::config::MAX_IDENTITY_LEN`]); longer ones are cut.
    pub fn new(identity: &str, version: Option<&str>) -> Identity {
        let visible = |text: &str| Some(txt(text.as_bytes())).filter(|_| !text.is_empty());
        Identity {
            nsid: identity.as_bytes().into(),
            id_txt: visible(identity),
            version_txt: version.and_then(visible),
        }
    }

    /// The payload of the NSID option to answer with, `None` when hidden.
    pub fn nsid(&self) -> Option<&[u8]> {
        Some(&self.nsid[..]).filter(|n| !n.is_empty())
    }

    /// The TXT RDATA answering a CHAOS question at `name` (lowercase wire
    /// format), or `None`: REFUSED.
    pub fn chaos_txt(&self, name: &[u8]) -> Option<&[u8]> {
        match chaos_name(name)? {
            ChaosName::Id => self.id_txt.as_deref(),
            ChaosName::Version => self.version_txt.as_deref(),
        }
    }
}

/// Which server question `name` (lowercase wire format) asks, if any.
fn chaos_name(name: &[u8]) -> Option<ChaosName> {
    match name {
        b"\x02id\x06server\x00" | b"\x08hostname\x04bind\x00" => Some(ChaosName::Id),
        b"\x07version\x06server\x00" | b"\x07version\x04bind\x00" => Some(ChaosName::Version),
        _ => None,
    }
}

/// `text` as the RDATA of a TXT record: one character-string (RFC 1035
/// §3.3.14), cut at 255 bytes.
fn txt(text: &[u8]) -> Box<[u8]> {
    let text = &text[..text.len().min(255)];
    let mut rdata = Vec::with_capacity(1 + text.len());
    rdata.push(text.len() as u8);
    rdata.extend_from_slice(text);
    rdata.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_the_four_names_and_hides_what_is_empty() {
        let id = Identity::new("ns1.fra", Some("steerdns 0.1"));
        assert_eq!(id.nsid(), Some(&b"ns1.fra"[..]));
        assert_eq!(
            id.chaos_txt(b"\x02id\x06server\x00"),
            Some(&b"\x07ns1.fra"[..])
        );
        assert_eq!(
            id.chaos_txt(b"\x08hostname\x04bind\x00"),
            Some(&b"\x07ns1.fra"[..])
        );
        assert_eq!(
            id.chaos_txt(b"\x07version\x04bind\x00"),
            Some(&b"\x0csteerdns 0.1"[..])
        );
        assert_eq!(
            id.chaos_txt(b"\x07version\x06server\x00"),
            id.chaos_txt(b"\x07version\x04bind\x00")
        );
        assert_eq!(id.chaos_txt(b"\x07authors\x04bind\x00"), None);
        assert_eq!(id.chaos_txt(b"\x06server\x00"), None);

        let hidden = Identity::new("", None);
        assert_eq!(hidden.nsid(), None);
        assert_eq!(hidden.chaos_txt(b"\x02id\x06server\x00"), None);
        assert_eq!(hidden.chaos_txt(b"\x07version\x04bind\x00"), None);
        assert_eq!(
            Identity::new("a", Some("")).chaos_txt(b"\x07version\x04bind\x00"),
            None
        );
    }

    #[test]
    fn a_txt_string_is_cut_at_255_bytes() {
        let long = "x".repeat(300);
        let id = Identity::new(&long, None);
        let rdata = id.chaos_txt(b"\x02id\x06server\x00").unwrap();
        assert_eq!((rdata[0], rdata.len()), (255, 256));
    }
}
