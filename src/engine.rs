//! The answer engine: one query in, one response out, no I/O.
//!
//! [`respond`] is a pure function of the query bytes, where the query came
//! from, and a [`Snapshot`]: no sockets, no clock, no locks, no heap. It
//! implements the authoritative algorithm of RFC 1034 §4.3.2 with the
//! refinements of RFC 2308 (negative answers), RFC 4592 (wildcards),
//! RFC 6604 (rcode after CNAME chains), RFC 6891 (EDNS), RFC 8482 (ANY)
//! and RFC 8906 (answering what we do not implement).

use std::net::{IpAddr, SocketAddr};

use crate::name::{copy_lowercase, parent_wire, MAX_NAME_LEN};
use crate::policy::{Choice, ServiceRule};
use crate::rr::{rtype, CLASS_IN};
use crate::snapshot::Snapshot;
use crate::wire::{
    self, flag, rcode, ClientSubnet, Full, Header, ParseError, Query, Section, Writer,
};
use crate::zone::{Node, RRset, Zone};

/// The transport a query arrived on; it decides truncation (RFC 7766).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: responses are limited by the client's EDNS payload size.
    Udp,
    /// TCP: responses may use the whole 64 KiB message.
    Tcp,
}

/// Where a query came from and where it arrived.
#[derive(Debug, Clone, Copy)]
pub struct QueryContext {
    /// The client (for recursive traffic: the resolver) address and port.
    pub client: SocketAddr,
    /// The local address the query arrived on; `self` routing answers with it.
    pub local: IpAddr,
    /// UDP or TCP.
    pub transport: Transport,
}

/// Longest CNAME chain followed inside our zones; longer chains (and loops)
/// are answered as far as they got, as NSD and BIND do.
const MAX_CNAME_HOPS: usize = 8;

/// Most labels a name can have: 127 one-octet labels in 255 octets.
const MAX_LABELS: usize = 128;

/// Largest TCP message (RFC 1035 §4.2.2: two-octet length).
const MAX_TCP_MESSAGE: usize = 65_535;

/// Writes the response to `query` into `out` and returns its length, or
/// `None` when the message must be dropped (unreadable header, or a response).
///
/// `out` must hold at least the configured UDP payload size for UDP and
/// 65,535 bytes for TCP; a smaller buffer only makes responses truncate sooner.
pub fn respond(query: &[u8], ctx: &QueryContext, snap: &Snapshot, out: &mut [u8]) -> Option<usize> {
    let header = Header::parse(query)?;
    // Copied into every response: opcode, RD and CD (RFC 1035 §4.1.1,
    // RFC 4035 §3.1.6).
    let flags = flag::QR | (header.flags & (0x7800 | flag::RD | flag::CD));
    let parsed = Query::parse(query);
    if let Err(ParseError::Drop) = parsed {
        return None;
    }
    // Our own advertised size: what we accept, not what the client offered.
    let our_payload = snap.max_udp_payload;

    if header.opcode() != wire::OPCODE_QUERY {
        // RFC 8906 §3.1.5: NOTIMP, with the question when it can be read.
        // Under an unknown opcode the other header bits mean nothing, so
        // only QR and the opcode are set (as BIND and NSD do, and ISC's
        // EDNS compliance test checks); an EDNS query still gets an OPT
        // record back (RFC 6891 §7).
        let mut w = Writer::new(out, 512);
        let question = wire::question(query).filter(|_| header.qdcount == 1);
        w.start(header.id, flag::QR | (header.flags & 0x7800), question)
            .ok()?;
        w.set_rcode(rcode::NOTIMP);
        if let Ok(Query {
            edns: Some(edns), ..
        }) = parsed
        {
            let _ = w.opt(our_payload, 0, edns.dnssec_ok, None);
        }
        return Some(w.finish());
    }
    let q = match parsed {
        Ok(q) => q,
        Err(ParseError::Form(_)) | Err(ParseError::Drop) => {
            let mut w = Writer::new(out, 512);
            w.start(header.id, flags, None).ok()?;
            w.set_rcode(rcode::FORMERR);
            return Some(w.finish());
        }
        Err(ParseError::BadEdns(_)) => {
            // RFC 6891 §7: a problem with the OPT record itself is a FORMERR
            // that carries an OPT record.
            let mut w = Writer::new(out, 512);
            w.start(header.id, flags, wire::question(query)).ok()?;
            w.set_rcode(rcode::FORMERR);
            let _ = w.opt(our_payload, 0, false, None);
            return Some(w.finish());
        }
    };

    let limit = match (ctx.transport, q.edns) {
        (Transport::Tcp, _) => MAX_TCP_MESSAGE,
        (Transport::Udp, Some(edns)) => usize::from(edns.udp_payload.min(our_payload)),
        (Transport::Udp, None) => 512,
    };
    let mut w = Writer::new(out, limit);
    let question = Some((q.qname, q.qtype, q.qclass));
    w.start(header.id, flags, question).ok()?;

    let Some(edns) = q.edns else {
        let outcome = answer_or_truncate(&mut w, &q, ctx, snap, flags);
        w.set_rcode(outcome.rcode);
        return Some(w.finish());
    };
    // RFC 7871 §7.2.1: static answers do not depend on the client, so the
    // scope is 0. Routing policies will narrow it when they use the subnet.
    let ecs = edns.client_subnet.map(|s: ClientSubnet| (s, 0u8));
    let opt_len = Writer::opt_len(edns.client_subnet.as_ref());
    if edns.version > 0 {
        // RFC 6891 §6.1.3: BADVERS, answered with the version we do speak.
        let _ = w.opt(
            our_payload,
            (rcode::BADVERS >> 4) as u8,
            edns.dnssec_ok,
            None,
        );
        return Some(w.finish());
    }
    w.reserve(opt_len);
    let outcome = answer_or_truncate(&mut w, &q, ctx, snap, flags);
    w.unreserve(opt_len);
    w.set_rcode(outcome.rcode);
    // The reservation guarantees room, so this only fails for a limit below
    // a header plus question plus OPT, which the 512-byte floor excludes.
    let _ = w.opt(our_payload, (outcome.rcode >> 4) as u8, edns.dnssec_ok, ecs);
    Some(w.finish())
}

/// What the lookup decided, beyond the records written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    rcode: u16,
}

/// Answers the question; when what must be sent does not fit, starts over
/// with an empty, truncated response so the client retries over TCP
/// (RFC 2181 §9, RFC 7766 §5).
fn answer_or_truncate<'a>(
    w: &mut Writer<'a>,
    q: &Query<'a>,
    ctx: &QueryContext,
    snap: &Snapshot,
    flags: u16,
) -> Outcome {
    match answer(w, q, ctx, snap) {
        Ok(outcome) => outcome,
        Err(Full) => {
            // Restarting cannot fail: the question fitted the first time.
            // AA stays: the data is ours even if it did not fit.
            let aa = w.flags() & flag::AA;
            let _ = w.start(q.header.id, flags, Some((q.qname, q.qtype, q.qclass)));
            w.set_flags(flag::TC | aa);
            Outcome {
                rcode: rcode::NOERROR,
            }
        }
    }
}

/// Fills the answer, authority and additional sections for a parsed query.
fn answer(
    w: &mut Writer<'_>,
    q: &Query<'_>,
    ctx: &QueryContext,
    snap: &Snapshot,
) -> Result<Outcome, Full> {
    let udp = ctx.transport == Transport::Udp;
    let refused = Ok(Outcome {
        rcode: rcode::REFUSED,
    });
    // Class ANY is answered from class IN, the only class we hold.
    if q.qclass != CLASS_IN && q.qclass != rtype::ANY {
        return refused;
    }
    match q.qtype {
        // Zone transfers are not offered (RFC 5936 §2.2.1 lets us refuse).
        rtype::AXFR | rtype::IXFR => return refused,
        rtype::MAILA | rtype::MAILB => {
            return Ok(Outcome {
                rcode: rcode::NOTIMP,
            })
        }
        rtype::OPT => {
            return Ok(Outcome {
                rcode: rcode::FORMERR,
            })
        }
        _ => {}
    }

    // Lookups use a lowercased copy of the current name (RFC 4343); records
    // are written with `owner`, which keeps the case the client or the zone
    // used, so pointers into the question preserve the client's case.
    let mut lower = [0u8; MAX_NAME_LEN];
    let mut len = lowercase_into(&mut lower, q.qname);
    let mut owner: &[u8] = q.qname;
    let Some(mut zone) = find_zone(snap, &lower[..len], q.qtype) else {
        return refused;
    };
    w.set_flags(flag::AA);

    for hop in 0..MAX_CNAME_HOPS {
        let name = &lower[..len];
        match lookup(zone, name, q.qtype) {
            Lookup::Referral { node, depth } => {
                // A referral is not authoritative (RFC 1034 §4.3.2 step 3b),
                // unless a CNAME of ours led here.
                if hop == 0 {
                    w.clear_flags(flag::AA);
                }
                let cut_owner = strip_labels(owner, depth);
                let ns = node.get(rtype::NS).ok_or(Full)?;
                write_set(w, Section::Authority, cut_owner, ns)?;
                // Glue is required: without it the referral may be useless
                // (RFC 9471 §3), so running out of room truncates.
                write_additional(w, ns, true)?;
                return Ok(Outcome {
                    rcode: rcode::NOERROR,
                });
            }
            Lookup::NxDomain => {
                write_soa(w, zone)?;
                return Ok(Outcome {
                    rcode: rcode::NXDOMAIN,
                });
            }
            Lookup::Found(node) => {
                let service = node.service().and_then(|i| snap.services.get(i as usize));
                if let Some(rule) =
                    service.filter(|_| matches!(q.qtype, rtype::A | rtype::AAAA | rtype::ANY))
                {
                    return write_service(w, owner, rule, snap, ctx.local, q.qtype, zone);
                }
                if let Some(cname) = node.get(rtype::CNAME).filter(|_| q.qtype != rtype::CNAME) {
                    write_set(w, Section::Answer, owner, cname)?;
                    if q.qtype == rtype::ANY {
                        return Ok(Outcome {
                            rcode: rcode::NOERROR,
                        });
                    }
                    let target: &[u8] = cname.first();
                    len = lowercase_into(&mut lower, target);
                    owner = target;
                    match find_zone(snap, &lower[..len], q.qtype) {
                        Some(z) => zone = z,
                        // The chain leaves our zones: the resolver goes on.
                        None => {
                            return Ok(Outcome {
                                rcode: rcode::NOERROR,
                            })
                        }
                    }
                    continue;
                }
                if q.qtype == rtype::ANY {
                    write_any(w, owner, node, udp)?;
                    if node.is_empty() {
                        write_soa(w, zone)?;
                    }
                    return Ok(Outcome {
                        rcode: rcode::NOERROR,
                    });
                }
                match node.get(q.qtype) {
                    Some(set) => {
                        write_set(w, Section::Answer, owner, set)?;
                        write_additional(w, set, false)?;
                    }
                    None => write_soa(w, zone)?,
                }
                return Ok(Outcome {
                    rcode: rcode::NOERROR,
                });
            }
        }
    }
    Ok(Outcome {
        rcode: rcode::NOERROR,
    })
}

/// The zone that answers for `name`: the longest match, except that DS at
/// the apex of a child zone we also serve belongs to the parent
/// (RFC 4035 §3.1.4.1), like any DS at a zone cut.
fn find_zone<'s>(snap: &'s Snapshot, name: &[u8], qtype: u16) -> Option<&'s Zone> {
    let zone = snap.zones.find(name)?;
    if qtype == rtype::DS && zone.apex.wire() == name {
        if let Some(parent) = parent_wire(name).and_then(|p| snap.zones.find(p)) {
            return Some(parent);
        }
    }
    Some(zone)
}

/// Answers A, AAAA or ANY at a service's name from its routing policy.
/// The answer depends on the local address, not on the client, so the ECS
/// scope stays 0 (RFC 7871 §7.2.1).
fn write_service(
    w: &mut Writer<'_>,
    owner: &[u8],
    rule: &ServiceRule,
    snap: &Snapshot,
    local: IpAddr,
    qtype: u16,
    zone: &Zone,
) -> Result<Outcome, Full> {
    let families: &[bool] = match qtype {
        rtype::A => &[false],
        rtype::AAAA => &[true],
        _ => &[false, true],
    };
    let mut written = 0;
    for &v6 in families {
        match rule.choose(&snap.health, local, v6) {
            Choice::Local(address) => {
                write_address(w, owner, rule.ttl, address)?;
                written += 1;
            }
            Choice::Peers => {
                for address in rule.healthy_peers(&snap.health, v6) {
                    write_address(w, owner, rule.ttl, address)?;
                    written += 1;
                }
            }
            Choice::Refuse => {
                w.clear_flags(flag::AA);
                return Ok(Outcome {
                    rcode: rcode::REFUSED,
                });
            }
            Choice::Nothing => {}
        }
    }
    if written == 0 {
        write_soa(w, zone)?;
    }
    Ok(Outcome {
        rcode: rcode::NOERROR,
    })
}

/// Writes one A or AAAA record.
fn write_address(w: &mut Writer<'_>, owner: &[u8], ttl: u32, address: IpAddr) -> Result<(), Full> {
    match address {
        IpAddr::V4(a) => w.record(Section::Answer, owner, rtype::A, ttl, &a.octets()),
        IpAddr::V6(a) => w.record(Section::Answer, owner, rtype::AAAA, ttl, &a.octets()),
    }
}

/// Where a name led inside one zone.
enum Lookup<'z> {
    /// The name, or the wildcard that covers it, exists.
    Found(Node<'z>),
    /// The name is at or below a zone cut; `depth` counts the labels of the
    /// name above the cut's owner.
    Referral { node: Node<'z>, depth: usize },
    /// Neither the name nor a covering wildcard exists.
    NxDomain,
}

/// Looks `name` (lowercase wire format, inside `zone`) up.
fn lookup<'z>(zone: &'z Zone, name: &[u8], qtype: u16) -> Lookup<'z> {
    if zone.has_cuts {
        // Label starts of `name`: `starts[i]` is where the name with its
        // first `i` labels removed begins.
        let mut starts = [0u8; MAX_LABELS];
        let mut count = 0;
        let mut at = Some(name);
        while let Some(n) = at.filter(|n| n.len() > zone.apex.wire().len()) {
            starts[count] = (name.len() - n.len()) as u8;
            count += 1;
            at = parent_wire(n);
        }
        // From just below the apex downwards: the first cut wins. A missing
        // name means nothing deeper exists, so the search can stop there.
        for i in (0..count).rev() {
            let ancestor = &name[usize::from(starts[i])..];
            let Some(node) = zone.node(ancestor) else {
                break;
            };
            // The parent side answers for DS at the cut (RFC 4035 §3.1.4.1).
            if node.cut() && !(i == 0 && qtype == rtype::DS) {
                return Lookup::Referral { node, depth: i };
            }
        }
    }
    if let Some(node) = zone.node(name) {
        return Lookup::Found(node);
    }

    // RFC 4592 §3.3.1: the closest encloser is the deepest existing
    // ancestor; its wildcard child, if any, is the source of synthesis. Any
    // existing name between them (an empty non-terminal too) would itself be
    // the closest encloser, which is how such names block the wildcard.
    let mut encloser = parent_wire(name);
    while let Some(e) = encloser {
        if zone.node(e).is_some() {
            break;
        }
        encloser = parent_wire(e);
    }
    let Some(encloser) = encloser else {
        return Lookup::NxDomain;
    };
    let mut wildcard = [0u8; MAX_NAME_LEN + 2];
    let wlen = encloser.len() + 2;
    if wlen > MAX_NAME_LEN {
        return Lookup::NxDomain;
    }
    wildcard[..2].copy_from_slice(b"\x01*");
    wildcard[2..wlen].copy_from_slice(encloser);
    match zone.node(&wildcard[..wlen]) {
        Some(node) => Lookup::Found(node),
        None => Lookup::NxDomain,
    }
}

/// Writes every record of `set` with the given owner.
fn write_set(
    w: &mut Writer<'_>,
    section: Section,
    owner: &[u8],
    set: RRset<'_>,
) -> Result<(), Full> {
    for rdata in set.records() {
        w.record(section, owner, set.rtype, set.ttl, rdata)?;
    }
    Ok(())
}

/// Writes the addresses of the names `set` points at. Optional additions
/// that do not fit are left out without truncation (RFC 2181 §9).
fn write_additional(w: &mut Writer<'_>, set: RRset<'_>, required: bool) -> Result<(), Full> {
    for (target, addresses) in set.additional() {
        match write_set(w, Section::Additional, target, addresses) {
            Ok(()) => {}
            Err(Full) if required => return Err(Full),
            Err(Full) => return Ok(()),
        }
    }
    Ok(())
}

/// Answers ANY: every RRset over TCP, one over UDP (RFC 8482 §4.1), which
/// keeps ANY useless for amplification while still answering it.
fn write_any(w: &mut Writer<'_>, owner: &[u8], node: Node<'_>, udp: bool) -> Result<(), Full> {
    let take = if udp { 1 } else { usize::MAX };
    for set in node.sets().take(take) {
        write_set(w, Section::Answer, owner, set)?;
    }
    Ok(())
}

/// The SOA for a negative answer, its TTL lowered to the negative-caching
/// TTL (RFC 2308 §3).
fn write_soa(w: &mut Writer<'_>, zone: &Zone) -> Result<(), Full> {
    w.record(
        Section::Authority,
        zone.apex.wire(),
        rtype::SOA,
        zone.negative_ttl,
        &zone.soa,
    )
}

/// Copies `name` into `buf` with ASCII letters lowered; returns its length.
fn lowercase_into(buf: &mut [u8; MAX_NAME_LEN], name: &[u8]) -> usize {
    let len = name.len().min(MAX_NAME_LEN);
    copy_lowercase(&mut buf[..len], &name[..len]);
    len
}

/// `name` without its first `depth` labels.
fn strip_labels(mut name: &[u8], depth: usize) -> &[u8] {
    for _ in 0..depth {
        name = parent_wire(name).unwrap_or(name);
    }
    name
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
    use hickory_proto::rr::{DNSClass, Name as HName, RData, RecordType};

    use super::*;
    use crate::name::Name;
    use crate::zone::{parse, Zone, ZoneSet};

    const EXAMPLE: &str = r#"
$TTL 3600
@        IN SOA ns1 hostmaster 1 7200 900 1209600 300
@           NS  ns1
@           NS  ns2.example.net.
@           MX  10 mail
ns1         A   192.0.2.53
mail        A   192.0.2.25
mail        AAAA 2001:db8::25
www     60  A   192.0.2.80
www         A   192.0.2.81
alias       CNAME www
chain1      CNAME chain2
chain2      CNAME alias
loop1       CNAME loop2
loop2       CNAME loop1
dangling    CNAME nothing
away        CNAME www.example.net.
elsewhere   CNAME host.example.org.
*.wild      A   192.0.2.99
*.wild      TXT "wild"
real.wild   A   192.0.2.98
a.b.ent.wild A  192.0.2.97
*.cwild     CNAME www
sub         NS  ns.sub
ns.sub      A   192.0.2.54
big         TXT "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big         TXT "1123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big         TXT "2123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big         TXT "3123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big         TXT "4123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big         TXT "5123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
"#;

    const EXAMPLE_NET: &str = r#"
$TTL 300
@   SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 60
@   NS  ns1.example.com.
www A   198.51.100.1
"#;

    fn zone(origin: &str, text: &str) -> Zone {
        let origin = Name::from_text(origin, None).unwrap();
        let file = Path::new("test.zone");
        let records = parse::parse_str(text, file, &origin).unwrap();
        Zone::from_records(&origin, file, records).unwrap()
    }

    fn snapshot() -> Snapshot {
        let mut zones = ZoneSet::default();
        zones.insert(zone("example.com.", EXAMPLE));
        zones.insert(zone("example.net.", EXAMPLE_NET));
        Snapshot {
            zones,
            max_udp_payload: 1232,
            services: Box::new([]),
            health: crate::health::HealthViewBuilder::default().build(),
            probes: Vec::new(),
        }
    }

    fn query_bytes(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(4242).set_recursion_desired(true);
        m.add_query(hickory_proto::op::Query::query(
            HName::from_ascii(name).unwrap(),
            qtype,
        ));
        if let Some(size) = edns {
            let mut e = hickory_proto::op::Edns::new();
            e.set_max_payload(size);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    fn ask_bytes(snap: &Snapshot, query: &[u8], transport: Transport) -> Option<Message> {
        let ctx = QueryContext {
            client: "192.0.2.1:5300".parse().unwrap(),
            local: "127.0.0.1".parse().unwrap(),
            transport,
        };
        let mut out = vec![0u8; 65535];
        let len = respond(query, &ctx, snap, &mut out)?;
        Some(Message::from_vec(&out[..len]).expect("response must decode"))
    }

    fn ask(snap: &Snapshot, name: &str, qtype: RecordType) -> Message {
        ask_bytes(snap, &query_bytes(name, qtype, Some(1232)), Transport::Udp).unwrap()
    }

    fn answers(m: &Message) -> Vec<String> {
        let mut v: Vec<String> = m
            .answers()
            .iter()
            .map(|r| format!("{} {} {}", r.name(), r.record_type(), r.data()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn positive_answer_is_authoritative_and_keeps_query_case() {
        let snap = snapshot();
        let m = ask(&snap, "WwW.Example.COM.", RecordType::A);
        assert_eq!(m.message_type(), MessageType::Response);
        assert_eq!(m.id(), 4242);
        assert!(m.authoritative() && m.recursion_desired() && !m.recursion_available());
        assert_eq!(m.queries()[0].name().to_string(), "WwW.Example.COM.");
        assert_eq!(
            answers(&m),
            [
                "WwW.Example.COM. A 192.0.2.80",
                "WwW.Example.COM. A 192.0.2.81"
            ]
        );
        assert_eq!(
            m.answers()[0].ttl(),
            60,
            "lowest TTL of the set (RFC 2181 §5.2)"
        );
        assert!(m.extensions().is_some(), "OPT echoed");
    }

    #[test]
    fn negative_answers_carry_soa_with_negative_ttl() {
        let snap = snapshot();
        let nx = ask(&snap, "nope.example.com.", RecordType::A);
        assert_eq!(nx.response_code(), ResponseCode::NXDomain);
        assert!(nx.answers().is_empty());
        assert_eq!(nx.name_servers().len(), 1);
        assert_eq!(nx.name_servers()[0].record_type(), RecordType::SOA);
        assert_eq!(nx.name_servers()[0].ttl(), 300, "min(SOA TTL, MINIMUM)");

        let nodata = ask(&snap, "www.example.com.", RecordType::AAAA);
        assert_eq!(nodata.response_code(), ResponseCode::NoError);
        assert!(nodata.answers().is_empty() && nodata.authoritative());
        assert_eq!(nodata.name_servers()[0].record_type(), RecordType::SOA);

        // An empty non-terminal exists: NODATA, not NXDOMAIN (RFC 8020).
        let ent = ask(&snap, "b.ent.wild.example.com.", RecordType::A);
        assert_eq!(ent.response_code(), ResponseCode::NoError);
        assert!(ent.answers().is_empty());
    }

    #[test]
    fn wildcards_follow_rfc4592() {
        let snap = snapshot();
        let m = ask(&snap, "Any.Thing.wild.example.com.", RecordType::A);
        assert_eq!(answers(&m), ["Any.Thing.wild.example.com. A 192.0.2.99"]);
        assert!(m.authoritative());
        // An existing name is not covered by the wildcard.
        let m = ask(&snap, "real.wild.example.com.", RecordType::A);
        assert_eq!(answers(&m), ["real.wild.example.com. A 192.0.2.98"]);
        let m = ask(&snap, "real.wild.example.com.", RecordType::TXT);
        assert!(m.answers().is_empty(), "existing name blocks the wildcard");
        // Below an empty non-terminal the wildcard does not apply.
        let m = ask(&snap, "x.ent.wild.example.com.", RecordType::A);
        assert_eq!(m.response_code(), ResponseCode::NXDomain);
        // Wildcard NODATA.
        let m = ask(&snap, "z.wild.example.com.", RecordType::MX);
        assert_eq!(m.response_code(), ResponseCode::NoError);
        assert!(m.answers().is_empty());
        // A wildcard CNAME is followed with the query name as owner.
        let m = ask(&snap, "q.cwild.example.com.", RecordType::A);
        assert_eq!(
            answers(&m),
            [
                "q.cwild.example.com. CNAME www.example.com.",
                "www.example.com. A 192.0.2.80",
                "www.example.com. A 192.0.2.81"
            ]
        );
    }

    #[test]
    fn cname_chains_are_followed_inside_our_zones() {
        let snap = snapshot();
        let m = ask(&snap, "chain1.example.com.", RecordType::A);
        assert_eq!(m.answers().len(), 5);
        assert_eq!(m.answers()[4].record_type(), RecordType::A);
        let m = ask(&snap, "away.example.com.", RecordType::A);
        assert_eq!(
            answers(&m),
            [
                "away.example.com. CNAME www.example.net.",
                "www.example.net. A 198.51.100.1"
            ]
        );
        let m = ask(&snap, "elsewhere.example.com.", RecordType::A);
        assert_eq!(
            answers(&m),
            ["elsewhere.example.com. CNAME host.example.org."]
        );
        assert_eq!(m.response_code(), ResponseCode::NoError);
        // RFC 6604: the rcode is that of the last name in the chain.
        let m = ask(&snap, "dangling.example.com.", RecordType::A);
        assert_eq!(m.response_code(), ResponseCode::NXDomain);
        assert_eq!(m.answers().len(), 1);
        // A loop ends after a bounded number of hops.
        let m = ask(&snap, "loop1.example.com.", RecordType::A);
        assert_eq!(m.answers().len(), MAX_CNAME_HOPS);
        // Asking for the CNAME itself does not follow it.
        let m = ask(&snap, "alias.example.com.", RecordType::CNAME);
        assert_eq!(answers(&m), ["alias.example.com. CNAME www.example.com."]);
    }

    #[test]
    fn delegations_give_referrals_with_glue() {
        let snap = snapshot();
        for name in [
            "sub.example.com.",
            "deep.below.sub.example.com.",
            "ns.sub.example.com.",
        ] {
            let m = ask(&snap, name, RecordType::A);
            assert!(!m.authoritative(), "{name}: referral is not authoritative");
            assert!(m.answers().is_empty());
            assert_eq!(m.name_servers().len(), 1);
            assert_eq!(m.name_servers()[0].name().to_string(), "sub.example.com.");
            assert_eq!(
                m.additionals()[0].data(),
                &RData::A("192.0.2.54".parse().unwrap())
            );
        }
        // DS belongs to the parent side of the cut.
        let m = ask(&snap, "sub.example.com.", RecordType::DS);
        assert!(m.authoritative());
        assert_eq!(m.name_servers()[0].record_type(), RecordType::SOA);
    }

    #[test]
    fn additional_section_has_addresses_of_targets() {
        let snap = snapshot();
        let m = ask(&snap, "example.com.", RecordType::MX);
        let mut extra: Vec<String> = m
            .additionals()
            .iter()
            .map(|r| format!("{} {}", r.name(), r.record_type()))
            .collect();
        extra.sort();
        assert_eq!(extra, ["mail.example.com. A", "mail.example.com. AAAA"]);
        let m = ask(&snap, "example.com.", RecordType::NS);
        assert_eq!(m.answers().len(), 2);
        assert_eq!(m.additionals().len(), 1, "only in-zone targets: ns1");
    }

    #[test]
    fn names_outside_our_zones_are_refused() {
        let snap = snapshot();
        let m = ask(&snap, "example.org.", RecordType::A);
        assert_eq!(m.response_code(), ResponseCode::Refused);
        assert!(!m.authoritative());
        let m = ask(&snap, "com.", RecordType::NS);
        assert_eq!(m.response_code(), ResponseCode::Refused);
    }

    #[test]
    fn large_answers_truncate_over_udp_only() {
        let snap = snapshot();
        let plain = query_bytes("big.example.com.", RecordType::TXT, None);
        let m = ask_bytes(&snap, &plain, Transport::Udp).unwrap();
        assert!(m.truncated());
        assert!(m.answers().is_empty());
        assert_eq!(m.queries().len(), 1);
        let m = ask_bytes(&snap, &plain, Transport::Tcp).unwrap();
        assert!(!m.truncated());
        assert_eq!(m.answers().len(), 6);
        let edns = query_bytes("big.example.com.", RecordType::TXT, Some(1232));
        let m = ask_bytes(&snap, &edns, Transport::Udp).unwrap();
        assert!(!m.truncated());
        assert_eq!(m.answers().len(), 6);
    }

    #[test]
    fn any_is_minimal_over_udp() {
        let snap = snapshot();
        let m = ask(&snap, "mail.example.com.", RecordType::ANY);
        assert_eq!(m.answers().len(), 1, "RFC 8482: one RRset over UDP");
        let q = query_bytes("mail.example.com.", RecordType::ANY, None);
        let m = ask_bytes(&snap, &q, Transport::Tcp).unwrap();
        assert_eq!(m.answers().len(), 2, "everything over TCP");
    }

    #[test]
    fn protocol_errors_get_rfc_answers() {
        let snap = snapshot();
        // Unknown EDNS version: BADVERS.
        let mut q = query_bytes("www.example.com.", RecordType::A, Some(1232));
        let opt = q.len() - 11;
        q[opt + 6] = 1;
        let raw = ask_raw(&snap, &q);
        let m = Message::from_vec(&raw).unwrap();
        // Extended rcode 16 (hickory names it BADSIG, which shares the value).
        assert_eq!(u16::from(m.response_code()), rcode::BADVERS);
        assert!(m.answers().is_empty());
        // Unknown opcode: NOTIMP.
        let mut q = query_bytes("www.example.com.", RecordType::A, None);
        q[2] |= 5 << 3;
        let m = ask_bytes(&snap, &q, Transport::Udp).unwrap();
        assert_eq!(m.response_code(), ResponseCode::NotImp);
        assert_eq!(m.op_code(), OpCode::from_u8(5));
        // Two questions: FORMERR.
        let mut q = query_bytes("www.example.com.", RecordType::A, None);
        q[5] = 2;
        let m = ask_bytes(&snap, &q, Transport::Udp).unwrap();
        assert_eq!(m.response_code(), ResponseCode::FormErr);
        // A response, or a stub of a header: dropped.
        let mut q = query_bytes("www.example.com.", RecordType::A, None);
        q[2] |= 0x80;
        assert!(ask_bytes(&snap, &q, Transport::Udp).is_none());
        assert!(ask_bytes(&snap, &q[..11], Transport::Udp).is_none());
        // Class CHAOS is not ours.
        let mut q = query_bytes("www.example.com.", RecordType::A, None);
        let class = q.len() - 1;
        q[class] = 3;
        assert_eq!(
            ask_bytes(&snap, &q, Transport::Udp)
                .unwrap()
                .response_code(),
            ResponseCode::Refused
        );
    }

    fn ask_raw(snap: &Snapshot, query: &[u8]) -> Vec<u8> {
        let ctx = QueryContext {
            client: "192.0.2.1:5300".parse().unwrap(),
            local: "127.0.0.1".parse().unwrap(),
            transport: Transport::Udp,
        };
        let mut out = vec![0u8; 4096];
        let len = respond(query, &ctx, snap, &mut out).unwrap();
        out.truncate(len);
        out
    }

    #[test]
    fn client_subnet_is_echoed_with_scope_zero() {
        let snap = snapshot();
        let mut q = query_bytes("www.example.com.", RecordType::A, Some(1232));
        // Append an ECS option for 192.0.2.0/24 to the OPT record.
        let ecs = [0u8, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2];
        let rdlen_at = q.len() - 2;
        q[rdlen_at..].copy_from_slice(&(ecs.len() as u16).to_be_bytes());
        q.extend_from_slice(&ecs);
        let raw = ask_raw(&snap, &q);
        assert_eq!(
            &raw[raw.len() - 11..],
            &[0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2]
        );
        // Malformed ECS (scope set in a query): FORMERR with an OPT record.
        let last = q.len() - 4;
        q[last] = 24;
        let m = Message::from_vec(&ask_raw(&snap, &q)).unwrap();
        assert_eq!(m.response_code(), ResponseCode::FormErr);
        assert!(m.extensions().is_some());
    }

    #[test]
    fn class_any_is_answered_from_in() {
        let snap = snapshot();
        let mut q = query_bytes("www.example.com.", RecordType::A, None);
        let class = q.len() - 1;
        q[class] = 255;
        let m = ask_bytes(&snap, &q, Transport::Udp).unwrap();
        assert_eq!(m.answers().len(), 2);
        assert_eq!(m.answers()[0].dns_class(), DNSClass::IN);
    }
}
