//! The answer engine: one query in, one response out, no I/O.
//!
//! [`respond`] is a pure function of the query bytes, where the query came
//! from (with the time and cookie keys the server passes in), and a
//! [`Snapshot`]: no sockets, no clock, no locks, no heap. It implements the
//! authoritative algorithm of RFC 1034 §4.3.2 with the refinements of
//! RFC 2308 (negative answers), RFC 4592 (wildcards), RFC 6604 (rcode after
//! CNAME chains), RFC 6891 (EDNS), RFC 7873 and RFC 9018 (DNS cookies),
//! RFC 8482 (ANY) and RFC 8906 (answering what we do not implement).
//!
//! It returns a [`Report`] of what it wrote: the class of response and the
//! name it is accounted to, which response rate limiting (`crate::rrl`)
//! charges without reading the response again.

use std::net::{IpAddr, SocketAddr};

use crate::cookie::{self, CookieKeys, CookieStatus};
use crate::name::{copy_lowercase, parent_wire, MAX_NAME_LEN};
use crate::ns_health;
use crate::policy::{self, EndpointSet, Family, Method, Pick, PolicyInput, Target};
use crate::rr::{rtype, CLASS_CH, CLASS_IN};
use crate::snapshot::Snapshot;
use crate::wire::{
    self, flag, rcode, ClientSubnet, Edns, Full, Header, ParseError, Query, Section, Writer,
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
    /// The time in Unix seconds (modulo 2^32), which server cookies carry
    /// (RFC 9018 §4.3); the engine reads no clock.
    pub now: u32,
    /// The keys server cookies are made and checked with.
    pub cookie_keys: CookieKeys,
}

/// Longest CNAME chain followed inside our zones; longer chains (and loops)
/// are answered as far as they got, as NSD and BIND do.
const MAX_CNAME_HOPS: usize = 8;

/// Most labels a name can have: 127 one-octet labels in 255 octets.
const MAX_LABELS: usize = 128;

/// Largest TCP message (RFC 1035 §4.2.2: two-octet length).
const MAX_TCP_MESSAGE: usize = 65_535;

/// What kind of response the engine wrote: what rate limiting tells apart
/// (see `crate::rrl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseClass {
    /// NOERROR with records in the answer section.
    Answer,
    /// NOERROR without an answer: the name exists, the type does not.
    NoData,
    /// A delegation to a child zone.
    Referral,
    /// The name does not exist.
    NxDomain,
    /// An answer too large for UDP, sent empty with TC=1.
    Truncated,
    /// REFUSED, FORMERR, NOTIMP, SERVFAIL, BADVERS, or a cookie-only reply.
    Error,
}

/// The owner a response is accounted to, kept as a digest of its
/// lowercase wire name: a [`Report`] is copied from the engine to the
/// worker loop for every query, and a name buffer would make it hundreds
/// of bytes. The engine makes accounts of lowercased names only, so
/// equal names in any case give equal accounts; two names that
/// share a digest (one pair in 2^64) would only share a rate-limit balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Account(u64);

impl Account {
    /// The account of errors, which are charged to none.
    pub const NONE: Account = Account(0);

    /// The account of `name` (uncompressed wire format, lowercase).
    pub fn of(name: &[u8]) -> Account {
        Account::digest_of(0x9e37_79b9_7f4a_7c15, name)
    }

    /// The account of the wildcard `*` under `parent` (lowercase wire
    /// format): all the names one wildcard answers share it, as BIND and
    /// Knot charge them.
    pub fn wildcard(parent: &[u8]) -> Account {
        Account::digest_of(0x2a2a_2a2a_2a2a_2a2a, parent)
    }

    /// FxHash over the lowered name, eight bytes at a time, finished by
    /// MurmurHash3's mixer: this runs once per query.
    fn digest_of(seed: u64, name: &[u8]) -> Account {
        let mix = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
        let mut h = mix(seed, name.len() as u64);
        let mut words = name.chunks_exact(8);
        for w in &mut words {
            let mut b = [0; 8];
            b.copy_from_slice(w);
            h = mix(h, u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0; 8];
            b[..rest.len()].copy_from_slice(rest);
            h = mix(h, u64::from_le_bytes(b));
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        // 0 is NONE's.
        Account(h.max(1))
    }

    /// The digest, for hashing into the rate limiter's table.
    pub fn digest(self) -> u64 {
        self.0
    }
}

/// What [`respond`] wrote, for rate limiting and the slip reply: a `Copy`
/// value, so reporting allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Length of the response in the output buffer.
    pub len: usize,
    /// The response code, extended (RFC 6891 §6.1.3) where it is.
    pub rcode: u16,
    /// What kind of response it is.
    pub class: ResponseClass,
    /// The query type for answers, truncated answers and NODATA, 0 for
    /// the rest: what rate limiting tells responses apart by.
    pub qtype: u16,
    /// The query type asked, whatever the response (0 without a question
    /// or when the query could not be read), for metrics.
    pub question_type: u16,
    /// The query carried an EDNS Client Subnet option (RFC 7871).
    pub client_subnet: bool,
    /// The ECS scope sent back, when the query carried ECS.
    pub scope: Option<u8>,
    /// The service (an index into the snapshot's) that answered, if any.
    pub service: Option<u32>,
    /// The endpoints whose records the answer holds, by their numbers in
    /// the snapshot ([`Snapshot::endpoint_number`], capped at `u16::MAX`),
    /// each once: what metrics count answers by endpoint with.
    pub endpoints: EndpointSet,
    /// The owner the response is accounted to, as BIND and Knot do: the
    /// query name for answers, the wildcard's owner (`*.…`) for answers a
    /// wildcard made, the zone apex for NXDOMAIN and NODATA, the zone cut
    /// for referrals, nothing for errors.
    pub account: Account,
    /// What the client's DNS cookie proved (RFC 7873).
    pub cookie: CookieStatus,
    /// Where the question ends: header and question, what a truncated
    /// reply keeps.
    pub question_end: usize,
    /// Where the OPT record starts, when there is one; it is the last record.
    pub opt_at: Option<usize>,
}

/// Writes the response to `query` into `out` and reports what it wrote, or
/// returns `None` when the message must be dropped (unreadable header, or
/// a response).
///
/// `out` must hold at least the configured UDP payload size for UDP and
/// 65,535 bytes for TCP; a smaller buffer only makes responses truncate sooner.
pub fn respond(
    query: &[u8],
    ctx: &QueryContext,
    snap: &Snapshot,
    out: &mut [u8],
) -> Option<Report> {
    respond_at(query, None, ctx, snap, out)
}

/// The queries of one UDP batch, each with its question name read,
/// lowercased and located, and the loads its answer starts with already
/// under way.
///
/// The zone is usually not in the cache when a query comes: the kernel's
/// UDP path in between evicts it. Answered one by one, each query waits
/// for two memory loads in turn (index slot, then node); started for the
/// whole batch first, the loads overlap. Reading and lowercasing a query's
/// name, finding its zone and hashing the name for the index are done
/// once, here, and handed to its answer. A batch of one is left to its
/// answer: with no other query's loads to overlap, it would wait for the
/// same loads just as long, and reading it twice over costs more than
/// handing it on spares (callgrind: 70 instructions a query).
#[derive(Debug)]
pub struct Batch<'b, 's> {
    snap: &'s Snapshot,
    queries: &'b [&'b [u8]],
    names: &'b BatchNames,
    /// Each query's zone, name key and lowercased name's length (in
    /// `names`), when it was read and is in one of our zones, and whether
    /// its node was prefetched.
    at: [Option<(&'s Zone, u32, u8, bool)>; PREFETCH_BATCH],
}

/// Room for the lowercased question names of one [`Batch`]. A worker
/// keeps one for all its batches, so that a batch neither zeroes nor
/// copies four kilobytes of names.
#[derive(Debug)]
pub struct BatchNames([[u8; MAX_NAME_LEN]; PREFETCH_BATCH]);

impl BatchNames {
    /// Room for one batch's names, allocated once per worker.
    pub fn new() -> Box<BatchNames> {
        Box::new(BatchNames([[0; MAX_NAME_LEN]; PREFETCH_BATCH]))
    }
}

impl<'b, 's> Batch<'b, 's> {
    /// Takes the first [`PREFETCH_BATCH`] of `queries` and, when there
    /// are several, lowercases their question names into `names` and
    /// starts loading the index slot, then the node, of each. Inlined, so
    /// the batch is built where the caller keeps it, not copied there.
    #[inline]
    pub fn new(
        queries: &'b [&'b [u8]],
        names: &'b mut BatchNames,
        snap: &'s Snapshot,
    ) -> Batch<'b, 's> {
        let queries = &queries[..queries.len().min(PREFETCH_BATCH)];
        let mut at = [None; PREFETCH_BATCH];
        if queries.len() > 1 {
            for ((at, query), lower) in at.iter_mut().zip(queries).zip(names.0.iter_mut()) {
                // A query not read here is answered (or refused) there.
                let Some((qname, qtype, _)) = wire::question(query) else {
                    continue;
                };
                let len = lowercase_into(lower, qname);
                let name = &lower[..len];
                // `len` is at most MAX_NAME_LEN, 255. A name that a lone
                // wildcard answers is never looked up itself: loading its
                // slot would be a miss for nothing.
                *at = find_zone(snap, name, qtype).map(|zone| match zone.lone_wildcard_for(name) {
                    Some(_) => (zone, zone.key(name), len as u8, false),
                    None => (zone, zone.prefetch_slot(name), len as u8, true),
                });
            }
            // By now the first slots have arrived; each names its node.
            for (zone, key, ..) in at.iter().flatten().filter(|at| at.3) {
                zone.prefetch_node(*key);
            }
        }
        Batch {
            snap,
            queries,
            names,
            at,
        }
    }

    /// Answers query `i` of the batch as [`respond`] does; `None` also for
    /// an `i` past the queries taken.
    pub fn respond(&self, i: usize, ctx: &QueryContext, out: &mut [u8]) -> Option<Report> {
        let query = self.queries.get(i)?;
        let at = self.at[i].map(|(zone, key, len, _)| Located {
            name: &self.names.0[i][..usize::from(len)],
            zone,
            key,
        });
        respond_at(query, at, ctx, self.snap, out)
    }
}

/// Where a [`Batch`] found a query's name: the name lowercased, its zone
/// and its key in the zone's index.
#[derive(Debug, Clone, Copy)]
struct Located<'n, 's> {
    name: &'n [u8],
    zone: &'s Zone,
    key: u32,
}

/// [`respond`], with the question name located when the caller did it
/// (a [`Batch`]).
fn respond_at<'s>(
    query: &[u8],
    at: Option<Located<'_, 's>>,
    ctx: &QueryContext,
    snap: &'s Snapshot,
    out: &mut [u8],
) -> Option<Report> {
    let header = Header::parse(query)?;
    // Copied into every response: opcode, RD and CD (RFC 1035 §4.1.1,
    // RFC 4035 §3.1.6).
    let flags = flag::QR | (header.flags & (0x7800 | flag::RD | flag::CD));
    // A batch read the question already.
    let parsed = Query::parse_with(query, at.map(|at| at.name.len()));
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
        let question = wire::question(query);
        w.start(header.id, flag::QR | (header.flags & 0x7800), question)
            .ok()?;
        let edns = match parsed {
            Ok(q) => q.edns,
            Err(ParseError::NoQuestion(edns)) => edns,
            Err(_) => None,
        };
        return Some(error_reply(w, rcode::NOTIMP, snap, edns, ctx));
    }
    // The query and its EDNS record are read where they lie, never copied:
    // together they are about a hundred bytes.
    let q = match &parsed {
        Ok(q) => q,
        // RFC 7873 §5.4: a query without a question but with a COOKIE
        // asks for a server cookie. Without one it is malformed; an EDNS
        // one still gets OPT back (RFC 6891 §7).
        Err(ParseError::NoQuestion(edns)) => {
            let edns = *edns;
            let mut w = Writer::new(out, 512);
            w.start(header.id, flags, None).ok()?;
            let code = match edns {
                Some(e) if e.cookie.is_some() && e.version == 0 => rcode::NOERROR,
                _ => rcode::FORMERR,
            };
            return Some(error_reply(w, code, snap, edns, ctx));
        }
        Err(ParseError::Form(_)) | Err(ParseError::Drop) => {
            let mut w = Writer::new(out, 512);
            w.start(header.id, flags, None).ok()?;
            return Some(error_reply(w, rcode::FORMERR, snap, None, ctx));
        }
        Err(ParseError::BadEdns(_)) => {
            // RFC 6891 §7: a problem with the OPT record itself is a FORMERR
            // that carries an OPT record, without options: none was read.
            let mut w = Writer::new(out, 512);
            w.start(header.id, flags, wire::question(query)).ok()?;
            return Some(error_reply(w, rcode::FORMERR, snap, Some(BARE_EDNS), ctx));
        }
    };

    let limit = match (ctx.transport, &q.edns) {
        (Transport::Tcp, _) => MAX_TCP_MESSAGE,
        (Transport::Udp, Some(edns)) => usize::from(edns.udp_payload.min(our_payload)),
        (Transport::Udp, None) => 512,
    };
    let mut w = Writer::new(out, limit);
    let question = Some((q.qname, q.qtype, q.qclass));
    w.start(header.id, flags, question).ok()?;
    let mut trail = Trail::default();

    let input = policy_input(
        ctx,
        q.edns.as_ref().and_then(|e| e.client_subnet),
        header.id,
    );
    let Some(edns) = &q.edns else {
        let outcome = answer_or_truncate(&mut w, q, at, ctx, &input, snap, flags, &mut trail);
        w.set_rcode(outcome.rcode);
        return Some(report(
            w,
            q.qtype,
            outcome.rcode,
            &trail,
            CookieStatus::Absent,
            None,
        ));
    };
    if edns.version > 0 {
        // RFC 6891 §6.1.3: BADVERS, answered with the version we do speak.
        return Some(error_reply(w, rcode::BADVERS, snap, Some(*edns), ctx));
    }
    // RFC 7873 §5.2.4: a server cookie that is not valid (another secret,
    // another address, expired) counts as a client cookie alone, answered
    // normally with a fresh cookie (§5.2.3), as BIND 9.18 does. BADCOOKIE
    // is kept for what §5.2.3 leaves to policy: rate limiting, whose slip
    // sends it (`crate::rrl::truncate`).
    let (cookie, cookie_option) = answer_cookie(edns, ctx);
    let nsid = answer_nsid(edns, snap);

    let opt_len = Writer::opt_len(edns.client_subnet.as_ref(), cookie_option.is_some(), nsid);
    w.reserve(opt_len);
    let outcome = answer_or_truncate(&mut w, q, at, ctx, &input, snap, flags, &mut trail);
    w.unreserve(opt_len);
    w.set_rcode(outcome.rcode);
    // RFC 7871 §7.2.1: the scope is how much of the client's address the
    // answer depended on: 0 for static records, what the routing policy
    // reports for a service.
    let ecs = edns
        .client_subnet
        .map(|s: ClientSubnet| (s, outcome.scope.min(s.source_prefix)));
    // The reservation guarantees room, so this only fails for a limit below
    // a header plus question plus OPT, which the 512-byte floor excludes.
    let _ = w.opt(
        our_payload,
        (outcome.rcode >> 4) as u8,
        edns.dnssec_ok,
        ecs,
        cookie_option.as_ref(),
        nsid,
    );
    // The report is built where it is returned: a second struct around
    // it would be one more copy of it for every answer.
    let scope = ecs.map(|(_, scope)| scope);
    Some(report(w, q.qtype, outcome.rcode, &trail, cookie, scope))
}

/// Most queries a [`Batch`] holds: a UDP batch.
pub const PREFETCH_BATCH: usize = 16;

/// The OPT record of a query whose OPT could not be read: answered with
/// version 0 and no options.
const BARE_EDNS: Edns = Edns {
    udp_payload: 512,
    version: 0,
    dnssec_ok: false,
    client_subnet: None,
    cookie: None,
    nsid: false,
};

/// Checks the query's cookie, if any, and makes the COOKIE option of the
/// response (RFC 7873 §5.2, RFC 9018).
fn answer_cookie(
    edns: &Edns,
    ctx: &QueryContext,
) -> (CookieStatus, Option<[u8; cookie::OPTION_LEN]>) {
    match &edns.cookie {
        None => (CookieStatus::Absent, None),
        Some(c) => {
            let (status, option) = cookie::answer(c, &ctx.cookie_keys, ctx.client.ip(), ctx.now);
            (status, Some(option))
        }
    }
}

/// The NSID option's payload when the query asked for it (RFC 5001 §2.1)
/// and this node does not hide its identity.
fn answer_nsid<'s>(edns: &Edns, snap: &'s Snapshot) -> Option<&'s [u8]> {
    snap.identity.nsid().filter(|_| edns.nsid)
}

/// Ends a response that answers nothing: sets `code`, and when the query
/// had EDNS, writes OPT with the extended bits of `code`, the cookie
/// answer and the NSID (RFC 6891 §7, RFC 7873 §5.2, RFC 5001 §2.2).
fn error_reply(
    mut w: Writer<'_>,
    code: u16,
    snap: &Snapshot,
    edns: Option<Edns>,
    ctx: &QueryContext,
) -> Report {
    w.set_rcode(code);
    let mut cookie = CookieStatus::Absent;
    if let Some(edns) = edns {
        let (status, option) = answer_cookie(&edns, ctx);
        cookie = status;
        let _ = w.opt(
            snap.max_udp_payload,
            (code >> 4) as u8,
            edns.dnssec_ok,
            None,
            option.as_ref(),
            answer_nsid(&edns, snap),
        );
    }
    let qtype = 0;
    report(w, qtype, code, &Trail::default(), cookie, None)
}

/// Finishes the response in `w` and reports it; the class follows from
/// what was written, the account name from `trail`. `scope` is the ECS
/// scope sent back, for a query that carried ECS.
fn report(
    w: Writer<'_>,
    qtype: u16,
    rcode: u16,
    trail: &Trail<'_>,
    cookie: CookieStatus,
    scope: Option<u8>,
) -> Report {
    let class = match rcode {
        rcode::NOERROR | rcode::NXDOMAIN if w.flags() & flag::TC != 0 => ResponseClass::Truncated,
        rcode::NXDOMAIN => ResponseClass::NxDomain,
        rcode::NOERROR if w.count(Section::Answer) > 0 => ResponseClass::Answer,
        rcode::NOERROR if trail.referral => ResponseClass::Referral,
        // The SOA of a negative answer.
        rcode::NOERROR if w.count(Section::Authority) > 0 => ResponseClass::NoData,
        _ => ResponseClass::Error,
    };
    let account = match (class, trail.zone) {
        (ResponseClass::NxDomain | ResponseClass::NoData, Some(zone)) => {
            Account::of(zone.apex.wire())
        }
        (ResponseClass::Answer | ResponseClass::Truncated | ResponseClass::Referral, _) => {
            trail.name
        }
        _ => Account::NONE,
    };
    let question_end = w.question_end();
    let opt_at = w.opt_at();
    Report {
        len: w.finish(),
        rcode,
        class,
        // The type tells answers and NODATA apart, not the others.
        qtype: match class {
            ResponseClass::Answer | ResponseClass::Truncated | ResponseClass::NoData => qtype,
            _ => 0,
        },
        question_type: qtype,
        client_subnet: scope.is_some(),
        scope,
        service: trail.service,
        endpoints: trail.endpoints,
        account,
        cookie,
        question_end,
        opt_at,
    }
}

/// What the lookup decided, beyond the records written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    rcode: u16,
    /// ECS scope: leading bits of the client address the answer used.
    scope: u8,
}

impl Outcome {
    /// An answer that did not depend on the client.
    const fn rcode(rcode: u16) -> Outcome {
        Outcome { rcode, scope: 0 }
    }
}

/// Where the client is, for routing policies: the ECS option's network
/// when the query carried one with a non-zero source prefix, else the
/// address the query came from (RFC 7871 §7.1.2: a source prefix of 0 asks
/// that the client's address not be used).
pub fn policy_input(ctx: &QueryContext, ecs: Option<ClientSubnet>, id: u16) -> PolicyInput {
    let (client, source_prefix) = match ecs {
        Some(s) if s.source_prefix > 0 => (s.address, s.source_prefix),
        Some(_) => (ctx.client.ip(), 0),
        None => (ctx.client.ip(), crate::prefix::width(ctx.client.ip())),
    };
    PolicyInput {
        client,
        source_prefix,
        local: ctx.local,
        entropy: u32::from(id) ^ (u32::from(ctx.client.port()) << 16),
    }
}

/// Where the lookup went, for the report: the zone of the last name looked
/// up and the account name (the query name, the wildcard that answered
/// it, or the zone cut of a referral).
struct Trail<'s> {
    zone: Option<&'s Zone>,
    name: Account,
    referral: bool,
    /// The first service that answered.
    service: Option<u32>,
    /// The endpoints answered with (see [`Report::endpoints`]).
    endpoints: EndpointSet,
}

impl Default for Trail<'_> {
    fn default() -> Self {
        Trail {
            zone: None,
            name: Account::NONE,
            referral: false,
            service: None,
            endpoints: EndpointSet::new(),
        }
    }
}

/// Answers the question; when what must be sent does not fit, starts over
/// with an empty, truncated response so the client retries over TCP
/// (RFC 2181 §9, RFC 7766 §5).
#[allow(clippy::too_many_arguments)]
fn answer_or_truncate<'a, 's>(
    w: &mut Writer<'a>,
    q: &Query<'a>,
    at: Option<Located<'_, 's>>,
    ctx: &QueryContext,
    input: &PolicyInput,
    snap: &'s Snapshot,
    flags: u16,
    trail: &mut Trail<'s>,
) -> Outcome {
    let mut scope = 0;
    match answer(w, q, at, ctx, input, snap, trail, &mut scope) {
        Ok(rcode) => Outcome { rcode, scope },
        Err(Full) => {
            // Restarting cannot fail: the question fitted the first time.
            // AA stays: the data is ours even if it did not fit.
            let aa = w.flags() & flag::AA;
            let _ = w.start(q.header.id, flags, Some((q.qname, q.qtype, q.qclass)));
            w.set_flags(flag::TC | aa);
            Outcome::rcode(rcode::NOERROR)
        }
    }
}

/// Fills the answer, authority and additional sections for a parsed query.
///
/// Returns the rcode; `scope` is raised to the ECS scope of every routing
/// decision the answer used. `at` is the question name's zone and index
/// key when a [`Batch`] found them.
#[allow(clippy::too_many_arguments)]
fn answer<'s>(
    w: &mut Writer<'_>,
    q: &Query<'_>,
    at: Option<Located<'_, 's>>,
    ctx: &QueryContext,
    input: &PolicyInput,
    snap: &'s Snapshot,
    trail: &mut Trail<'s>,
    scope: &mut u8,
) -> Result<u16, Full> {
    let udp = ctx.transport == Transport::Udp;
    let refused = Ok(rcode::REFUSED);
    if q.qclass == CLASS_CH {
        return answer_chaos(w, q, snap, trail);
    }
    // Class ANY is answered from class IN, the only class we hold.
    if q.qclass != CLASS_IN && q.qclass != rtype::ANY {
        return refused;
    }
    match q.qtype {
        // Zone transfers are not offered (RFC 5936 §2.2.1 lets us refuse).
        rtype::AXFR | rtype::IXFR => return refused,
        rtype::MAILA | rtype::MAILB => return Ok(rcode::NOTIMP),
        rtype::OPT => return Ok(rcode::FORMERR),
        _ => {}
    }

    // Lookups use a lowercased copy of the current name (RFC 4343); records
    // are written with `owner`, which keeps the case the client or the zone
    // used, so pointers into the question preserve the client's case. A
    // batch lowercased the question name already; the room for a copy is
    // made (zeroed) only when there is none, or a CNAME chain goes on.
    let mut lower: Option<[u8; MAX_NAME_LEN]> = None;
    let mut owner: &[u8] = q.qname;
    let (mut name, mut zone, mut key) = match at {
        Some(at) => (at.name, at.zone, at.key),
        None => {
            let lower = lower.insert([0; MAX_NAME_LEN]);
            let len = lowercase_into(lower, q.qname);
            let name = &lower[..len];
            let Some(zone) = find_zone(snap, name, q.qtype) else {
                return refused;
            };
            (name, zone, zone.key(name))
        }
    };
    trail.zone = Some(zone);
    w.set_flags(flag::AA);

    for hop in 0..MAX_CNAME_HOPS {
        match lookup(zone, name, key, q.qtype) {
            Lookup::Referral { node, depth } => {
                // A referral is not authoritative (RFC 1034 §4.3.2 step 3b),
                // unless a CNAME of ours led here.
                if hop == 0 {
                    w.clear_flags(flag::AA);
                }
                let cut_owner = strip_labels(owner, depth);
                trail.name = Account::of(strip_labels(name, depth));
                trail.referral = true;
                let ns = node.get(rtype::NS).ok_or(Full)?;
                write_set(w, Section::Authority, cut_owner, ns)?;
                // Glue is required: without it the referral may be useless
                // (RFC 9471 §3), so running out of room truncates.
                write_additional(w, ns, true)?;
                return Ok(rcode::NOERROR);
            }
            Lookup::NxDomain => {
                write_soa(w, zone)?;
                return Ok(rcode::NXDOMAIN);
            }
            Lookup::Found { node, wildcard } => {
                // RRL counts a wildcard's answers to the wildcard, as BIND
                // and Knot do, so that invented names do not each get a
                // fresh account.
                if hop == 0 {
                    match wildcard {
                        Some(at) => trail.name = Account::wildcard(&name[at..]),
                        None => trail.name = Account::of(name),
                    }
                }
                let service = node
                    .service()
                    .filter(|_| matches!(q.qtype, rtype::A | rtype::AAAA | rtype::ANY));
                if let Some(index) = service {
                    trail.service.get_or_insert(index);
                    // ANY over TCP: every RRset at the name (a service name
                    // holds no static addresses), then the service's; over
                    // UDP the addresses alone (RFC 8482 §4.1).
                    if q.qtype == rtype::ANY && !udp {
                        let kept = kept_records(snap, zone, node, rtype::NS);
                        write_any(w, owner, node, udp, kept)?;
                    }
                    let answered = &mut trail.endpoints;
                    match write_service(
                        w, owner, index, snap, input, q.qtype, ctx.now, zone, scope, answered,
                    )? {
                        Served::Done(rcode) => return Ok(rcode),
                        Served::Cname(target) => {
                            owner = target;
                            let Some(next) = follow(snap, target, q.qtype, &mut lower) else {
                                return Ok(rcode::NOERROR);
                            };
                            (name, zone, key) = next;
                            trail.zone = Some(zone);
                            continue;
                        }
                    }
                }
                if let Some(cname) = node.get(rtype::CNAME).filter(|_| q.qtype != rtype::CNAME) {
                    write_set(w, Section::Answer, owner, cname)?;
                    if q.qtype == rtype::ANY {
                        return Ok(rcode::NOERROR);
                    }
                    let target: &[u8] = cname.first();
                    owner = target;
                    // The chain leaves our zones: the resolver goes on.
                    let Some(next) = follow(snap, target, q.qtype, &mut lower) else {
                        return Ok(rcode::NOERROR);
                    };
                    (name, zone, key) = next;
                    trail.zone = Some(zone);
                    continue;
                }
                if q.qtype == rtype::ANY {
                    write_any(
                        w,
                        owner,
                        node,
                        udp,
                        kept_records(snap, zone, node, rtype::NS),
                    )?;
                    if node.is_empty() {
                        write_soa(w, zone)?;
                    }
                    return Ok(rcode::NOERROR);
                }
                match node.get(q.qtype) {
                    Some(set) => {
                        let kept = kept_records(snap, zone, node, set.rtype);
                        write_kept(w, Section::Answer, owner, set, kept)?;
                        write_additional_kept(w, set, false, kept)?;
                    }
                    None => write_soa(w, zone)?,
                }
                return Ok(rcode::NOERROR);
            }
        }
    }
    Ok(rcode::NOERROR)
}

/// Answers a CHAOS-class question about this server (`crate::identity`):
/// TXT (or ANY) at `id.server`, `version.bind` and their siblings, with
/// TTL 0 and AA as NSD does; REFUSED for the rest.
fn answer_chaos(
    w: &mut Writer<'_>,
    q: &Query<'_>,
    snap: &Snapshot,
    trail: &mut Trail<'_>,
) -> Result<u16, Full> {
    let mut lower = [0u8; MAX_NAME_LEN];
    let len = lowercase_into(&mut lower, q.qname);
    let rdata = match q.qtype {
        rtype::TXT | rtype::ANY => snap.identity.chaos_txt(&lower[..len]),
        _ => None,
    };
    let Some(rdata) = rdata else {
        return Ok(rcode::REFUSED);
    };
    trail.name = Account::of(&lower[..len]);
    w.set_flags(flag::AA);
    w.record_in(Section::Answer, q.qname, CLASS_CH, rtype::TXT, 0, rdata)?;
    Ok(rcode::NOERROR)
}

/// The service answering at `name` (lowercase wire format), found as an
/// answer finds it: the longest zone, cuts, wildcards. For `explain`.
pub fn service_at(snap: &Snapshot, name: &[u8]) -> Option<u32> {
    let zone = find_zone(snap, name, rtype::A)?;
    match lookup(zone, name, zone.key(name), rtype::A) {
        Lookup::Found { node, .. } => node.service(),
        _ => None,
    }
}

/// Moves a lookup to a CNAME's `target` (from a zone or a CNAME
/// endpoint): writes its lowercased form into `lower` (made on the first
/// hop) and returns it, the zone that answers for it and its key there,
/// or `None` when the target lies outside our zones.
fn follow<'n, 's>(
    snap: &'s Snapshot,
    target: &[u8],
    qtype: u16,
    lower: &'n mut Option<[u8; MAX_NAME_LEN]>,
) -> Option<(&'n [u8], &'s Zone, u32)> {
    let lower = lower.get_or_insert([0; MAX_NAME_LEN]);
    let len = lowercase_into(lower, target);
    let name = &lower[..len];
    find_zone(snap, name, qtype).map(|zone| (name, zone, zone.key(name)))
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

/// What answering at a service's name left to do.
enum Served<'s> {
    /// The answer is written; this is its rcode.
    Done(u16),
    /// A CNAME endpoint was written; the chain goes on at this target.
    Cname(&'s [u8]),
}

/// Answers A, AAAA or ANY at a service's name: its routing policy decides
/// per family (ANY asks both), and the engine writes what was picked,
/// noting at `now` (the query's Unix second) each endpoint it names.
#[allow(clippy::too_many_arguments)]
fn write_service<'s>(
    w: &mut Writer<'_>,
    owner: &[u8],
    index: u32,
    snap: &'s Snapshot,
    input: &PolicyInput,
    qtype: u16,
    now: u32,
    zone: &Zone,
    scope: &mut u8,
    answered: &mut EndpointSet,
) -> Result<Served<'s>, Full> {
    let families: &[Family] = match qtype {
        rtype::A => &[Family::V4],
        rtype::AAAA => &[Family::V6],
        _ => &[Family::V4, Family::V6],
    };
    let mut written = 0;
    for &family in families {
        let d = policy::decide(&snap.services, index, input, &snap.health, family, &mut ());
        *scope = (*scope).max(d.scope);
        match d.pick {
            Pick::Endpoints {
                service,
                set,
                all,
                limit,
            } => {
                let rule = &snap.services[service as usize];
                let mut n = 0;
                for (i, e) in set.iter().map(|i| (i, &rule.endpoints[i])) {
                    let number = snap.endpoint_number(service, i);
                    // Before writing: an answer cut short still may have
                    // named it, and an early mark only errs late.
                    snap.last_sent.mark(e.slot, now);
                    match &e.target {
                        Target::Addresses(list) => {
                            let usable = list.iter().filter(|a| {
                                family.has(a.ip) && (all || snap.health.is_serving(a.slot))
                            });
                            for a in usable {
                                if n == limit {
                                    break;
                                }
                                w.address(owner, d.ttl, a.ip)?;
                                n += 1;
                                answered.insert(number);
                            }
                        }
                        // A CNAME is alone at its name (RFC 1034 §3.6.2), so
                        // it answers every family; ANY gets it once.
                        Target::Cname(target) if written == 0 => {
                            w.record(Section::Answer, owner, rtype::CNAME, d.ttl, target.wire())?;
                            answered.insert(number);
                            return Ok(match qtype {
                                rtype::ANY => Served::Done(rcode::NOERROR),
                                _ => Served::Cname(target.wire()),
                            });
                        }
                        // Nesting is resolved by the policy.
                        Target::Cname(_) | Target::Service { .. } => {}
                    }
                }
                written += usize::from(n);
            }
            Pick::Local { address, slot } => {
                snap.last_sent.mark(slot, now);
                w.address(owner, d.ttl, address)?;
                written += 1;
            }
            Pick::Peers { service } => {
                if let Method::SelfAddress(rule) = &snap.services[service as usize].method {
                    for address in rule.healthy_peers(&snap.health, family == Family::V6) {
                        w.address(owner, d.ttl, address)?;
                        written += 1;
                    }
                }
            }
            Pick::Refuse => {
                w.clear_flags(flag::AA);
                return Ok(Served::Done(rcode::REFUSED));
            }
            Pick::ServFail => {
                w.clear_flags(flag::AA);
                return Ok(Served::Done(rcode::SERVFAIL));
            }
            Pick::Nothing => {}
        }
    }
    // NODATA only when nothing at all answers (ANY may have written
    // static RRsets first).
    if written == 0 && w.count(Section::Answer) == 0 {
        write_soa(w, zone)?;
    }
    Ok(Served::Done(rcode::NOERROR))
}

/// Where a name led inside one zone.
enum Lookup<'z> {
    /// The name, or the wildcard that covers it, exists; for a wildcard,
    /// `wildcard` is where its closest encloser starts in the name.
    Found {
        node: Node<'z>,
        wildcard: Option<usize>,
    },
    /// The name is at or below a zone cut; `depth` counts the labels of the
    /// name above the cut's owner.
    Referral { node: Node<'z>, depth: usize },
    /// Neither the name nor a covering wildcard exists.
    NxDomain,
}

/// Looks `name` (lowercase wire format, inside `zone`, whose index key is
/// `key`) up.
fn lookup<'z>(zone: &'z Zone, name: &[u8], key: u32, qtype: u16) -> Lookup<'z> {
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
    // Where the parent's only child is its wildcard, the name is not in
    // the zone unless it is that wildcard, and the wildcard answers.
    if let Some((node, encloser)) = zone.lone_wildcard_for(name) {
        return Lookup::Found {
            node,
            wildcard: Some(encloser),
        };
    }
    if let Some(node) = zone.node_by_key(name, key) {
        return Lookup::Found {
            node,
            wildcard: None,
        };
    }

    // RFC 4592 §3.3.1: the closest encloser is the deepest existing
    // ancestor; its wildcard child, if any, is the source of synthesis. Any
    // existing name between them (an empty non-terminal too) would itself be
    // the closest encloser, which is how such names block the wildcard.
    let mut encloser = parent_wire(name);
    while let Some(e) = encloser {
        if let Some(node) = zone.node(e) {
            return match node.wildcard() {
                Some(node) => Lookup::Found {
                    node,
                    wildcard: Some(name.len() - e.len()),
                },
                None => Lookup::NxDomain,
            };
        }
        encloser = parent_wire(e);
    }
    Lookup::NxDomain
}

/// Writes every record of `set` with the given owner.
fn write_set(
    w: &mut Writer<'_>,
    section: Section,
    owner: &[u8],
    set: RRset<'_>,
) -> Result<(), Full> {
    write_kept(w, section, owner, set, ns_health::ALL)
}

/// Writes the records of `set` whose bit is set in `kept` (bit 0 the
/// first record), with the given owner.
fn write_kept(
    w: &mut Writer<'_>,
    section: Section,
    owner: &[u8],
    set: RRset<'_>,
    kept: u64,
) -> Result<(), Full> {
    for (i, rdata) in set.records().enumerate() {
        if is_kept(kept, i) {
            w.record(section, owner, set.rtype, set.ttl, rdata)?;
        }
    }
    Ok(())
}

/// Whether bit `i` of `kept` is set; [`ns_health::ALL`] keeps every
/// record, also past the 64th.
fn is_kept(kept: u64, i: usize) -> bool {
    kept == ns_health::ALL || (i < 64 && kept & (1 << i) != 0)
}

/// Which records of `node`'s RRset of type `rtype` to write: for the apex
/// NS RRset of a zone with `ns-health`, those of the nodes seen alive
/// (`crate::ns_health`); every record otherwise.
fn kept_records(snap: &Snapshot, zone: &Zone, node: Node<'_>, rtype: u16) -> u64 {
    match zone.ns_health {
        Some(i) if rtype == rtype::NS && node.name() == zone.apex.wire() => snap
            .ns_health
            .get(i as usize)
            .map_or(ns_health::ALL, |rule| rule.kept(&snap.health)),
        _ => ns_health::ALL,
    }
}

/// Writes the addresses of the names `set` points at. Optional additions
/// that do not fit are left out without truncation (RFC 2181 §9).
fn write_additional(w: &mut Writer<'_>, set: RRset<'_>, required: bool) -> Result<(), Full> {
    write_additional_kept(w, set, required, ns_health::ALL)
}

/// [`write_additional`] for the records of `set` kept by `kept` alone: the
/// glue of a name server left out of the answer goes with it.
fn write_additional_kept(
    w: &mut Writer<'_>,
    set: RRset<'_>,
    required: bool,
    kept: u64,
) -> Result<(), Full> {
    for (target, addresses) in set.additional() {
        // Glue targets are spelt as the records that point at them.
        if kept != ns_health::ALL
            && !set
                .records()
                .enumerate()
                .any(|(i, rdata)| rdata == target && is_kept(kept, i))
        {
            continue;
        }
        match write_set(w, Section::Additional, target, addresses) {
            Ok(()) => {}
            Err(Full) if required => return Err(Full),
            Err(Full) => return Ok(()),
        }
    }
    Ok(())
}

/// Answers ANY: every RRset over TCP, one over UDP (RFC 8482 §4.1), which
/// keeps ANY useless for amplification while still answering it. `ns_kept`
/// filters the NS RRset (see [`kept_records`]).
fn write_any(
    w: &mut Writer<'_>,
    owner: &[u8],
    node: Node<'_>,
    udp: bool,
    ns_kept: u64,
) -> Result<(), Full> {
    let take = if udp { 1 } else { usize::MAX };
    for set in node.sets().take(take) {
        let kept = if set.rtype == rtype::NS {
            ns_kept
        } else {
            ns_health::ALL
        };
        write_kept(w, Section::Answer, owner, set, kept)?;
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
    use crate::config::Config;
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

    /// The test clock and cookie keys.
    const NOW: u32 = 1_700_000_000;
    const KEYS: CookieKeys = CookieKeys {
        current: [1; 16],
        previous: [2; 16],
    };

    fn zone(origin: &str, text: &str) -> Zone {
        let origin = Name::from_text(origin, None).unwrap();
        let file = Path::new("test.zone");
        let records = parse::parse_str(text, file, &origin).unwrap();
        Zone::from_records(&origin, file, records).unwrap()
    }

    fn snapshot() -> Snapshot {
        snapshot_with(zone("example.com.", EXAMPLE))
    }

    /// The test snapshot with `example` as its zone example.com.
    fn snapshot_with(example: Zone) -> Snapshot {
        let mut zones = ZoneSet::default();
        zones.insert(example);
        zones.insert(zone("example.net.", EXAMPLE_NET));
        Snapshot {
            zones,
            max_udp_payload: 1232,
            services: Box::new([]),
            health: crate::health::HealthViewBuilder::default().build(),
            probes: Vec::new(),
            identity: crate::identity::Identity::new("ns1.test", Some("steerdns test")),
            first_endpoint: Box::new([]),
            ns_health: Box::new([]),
            last_sent: crate::last_sent::LastSent::new(0, 0, 0),
            maintenance: Box::new([]),
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

    /// A query from 192.0.2.1 to 127.0.0.1 at the test clock.
    fn context(transport: Transport) -> QueryContext {
        QueryContext {
            client: "192.0.2.1:5300".parse().unwrap(),
            local: "127.0.0.1".parse().unwrap(),
            transport,
            now: NOW,
            cookie_keys: KEYS,
        }
    }

    fn ask_bytes(snap: &Snapshot, query: &[u8], transport: Transport) -> Option<Message> {
        let ctx = context(transport);
        let mut out = vec![0u8; 65535];
        let len = respond(query, &ctx, snap, &mut out)?.len;
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

    /// Looking at the parent of a lone wildcard first is a shortcut: each
    /// answer is the one the full lookup gives, byte for byte.
    #[test]
    fn lone_wildcards_answer_as_the_full_lookup_does() {
        let text = format!(
            "{EXAMPLE}*.lone A 192.0.2.60\nx.*.lone TXT \"x\"\n*.in.deep MX 10 mail\nsub.deep A 192.0.2.61\n"
        );
        let snap = snapshot_with(zone("example.com.", &text));
        let mut z = zone("example.com.", &text);
        assert!(z.has_lone_wildcards, "*.lone, *.cwild and *.in.deep are");
        z.has_lone_wildcards = false;
        let full = snapshot_with(z);
        let names = [
            "a.lone",
            "A.LoNe",
            "b.a.lone",
            "*.lone",
            "x.*.lone",
            "y.*.lone",
            "lone",
            "q.cwild",
            "cwild",
            "a.b.cwild",
            "any.thing.wild",
            "real.wild",
            "x.ent.wild",
            "x.in.deep",
            "in.deep",
            "deep",
            "x.deep",
            "sub.deep",
            "www",
            "nope",
            "sub",
            "deep.below.sub",
            "@",
        ];
        let types = [
            RecordType::A,
            RecordType::AAAA,
            RecordType::TXT,
            RecordType::MX,
            RecordType::CNAME,
            RecordType::DS,
            RecordType::ANY,
        ];
        for name in names {
            let name = match name {
                "@" => "example.com.".to_string(),
                n => format!("{n}.example.com."),
            };
            for qtype in types {
                let query = query_bytes(&name, qtype, Some(1232));
                let shortcut = ask_bytes(&snap, &query, Transport::Udp).unwrap();
                let reference = ask_bytes(&full, &query, Transport::Udp).unwrap();
                let reference = reference.to_vec().unwrap();
                assert_eq!(shortcut.to_vec().unwrap(), reference, "{name} {qtype}");
                // A batch, which skips the name's own slot, too.
                let mut out = vec![0u8; 65535];
                let pair = [&query[..], &query[..]];
                let len = Batch::new(&pair, &mut BatchNames::new(), &snap)
                    .respond(1, &context(Transport::Udp), &mut out)
                    .unwrap()
                    .len;
                assert_eq!(out[..len], reference, "{name} {qtype} in a batch");
            }
        }
        let m = ask(&snap, "b.a.lone.example.com.", RecordType::A);
        assert_eq!(answers(&m), ["b.a.lone.example.com. A 192.0.2.60"]);
        let m = ask(&snap, "y.*.lone.example.com.", RecordType::A);
        assert_eq!(m.response_code(), ResponseCode::NXDomain);
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

    /// A snapshot whose apex `svc.test.` is a `self` service, with SOA, NS
    /// and TXT in its zone file.
    fn service_snapshot() -> Snapshot {
        let dir = std::env::temp_dir().join(format!("steerdns-engine-any-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("svc.zone"),
            "$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n@ NS ns1\n\
             @ TXT \"apex\"\nns1 A 192.0.2.53\n",
        )
        .unwrap();
        let config = Config::from_str(
            "[server]\nlisten = [\"127.0.0.1:5353\"]\n\
             [[zone]]\norigin = \"svc.test.\"\nfile = \"svc.zone\"\n\
             [[service]]\nname = \"svc.test.\"\nrouting = \"self\"\nttl = 30\n\
             peers = [\"127.0.0.1\", \"::1\"]\n",
            &dir.join("steerdns.toml"),
        )
        .unwrap();
        let local: [IpAddr; 2] = ["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        let snap = Snapshot::load_with(&config, &local).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        snap
    }

    #[test]
    fn any_at_a_service_has_every_rrset_over_tcp() {
        let snap = service_snapshot();
        let types = |m: &Message| {
            let mut t: Vec<String> = m
                .answers()
                .iter()
                .map(|r| r.record_type().to_string())
                .collect();
            t.sort();
            t
        };
        let q = query_bytes("svc.test.", RecordType::ANY, None);
        let tcp = ask_bytes(&snap, &q, Transport::Tcp).unwrap();
        assert_eq!(types(&tcp), ["A", "AAAA", "NS", "SOA", "TXT"]);
        assert!(
            tcp.name_servers().is_empty(),
            "no NODATA SOA beside answers"
        );
        assert!(tcp.authoritative());
        // RFC 8482 over UDP: the service's addresses alone.
        let udp = ask_bytes(&snap, &q, Transport::Udp).unwrap();
        assert_eq!(types(&udp), ["A", "AAAA"]);
        // A and AAAA still come from the service alone.
        let a = ask_bytes(
            &snap,
            &query_bytes("svc.test.", RecordType::A, None),
            Transport::Tcp,
        );
        assert_eq!(answers(&a.unwrap()), ["svc.test. A 127.0.0.1"]);
    }

    #[test]
    fn a_query_without_question_gets_opt_back() {
        let snap = snapshot();
        // QDCOUNT 0 with an OPT record: FORMERR, with OPT (RFC 6891 §7).
        let mut q = query_bytes("www.example.com.", RecordType::A, Some(1232));
        let question = "www.example.com.".len() + 1 + 4;
        q.drain(12..12 + question);
        q[5] = 0;
        let raw = ask_raw(&snap, &q);
        let m = Message::from_vec(&raw).unwrap();
        assert_eq!(m.response_code(), ResponseCode::FormErr);
        assert!(m.queries().is_empty());
        assert!(m.extensions().is_some(), "OPT in the reply");
        // Without OPT: FORMERR without.
        let plain = [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let m = Message::from_vec(&ask_raw(&snap, &plain)).unwrap();
        assert_eq!(m.response_code(), ResponseCode::FormErr);
        assert!(m.extensions().is_none());
        // A bad OPT without a question: FORMERR with OPT, no question
        // made up from the OPT record's bytes.
        let mut two = q.clone();
        two.extend_from_slice(&q[12..]);
        two[11] = 2;
        let m = Message::from_vec(&ask_raw(&snap, &two)).unwrap();
        assert_eq!(m.response_code(), ResponseCode::FormErr);
        assert!(m.queries().is_empty() && m.extensions().is_some());
    }

    /// `q` (with an empty OPT record last) with a COOKIE option added.
    fn with_cookie(q: Vec<u8>, cookie: &[u8]) -> Vec<u8> {
        with_option(q, wire::OPTION_COOKIE, cookie)
    }

    /// `q` (with an OPT record without options last) with option `code`
    /// added.
    fn with_option(mut q: Vec<u8>, code: u16, data: &[u8]) -> Vec<u8> {
        let rdlen = q.len() - 2;
        q[rdlen..].copy_from_slice(&(4 + data.len() as u16).to_be_bytes());
        q.extend_from_slice(&code.to_be_bytes());
        q.extend_from_slice(&(data.len() as u16).to_be_bytes());
        q.extend_from_slice(data);
        q
    }

    /// The COOKIE option of a reply, if any.
    fn cookie_of(report: &Report, reply: &[u8]) -> Option<Vec<u8>> {
        option_of(report, reply, wire::OPTION_COOKIE)
    }

    /// Option `code` of a reply, if any, read from the OPT record where
    /// the report says it is.
    fn option_of(report: &Report, reply: &[u8], code: u16) -> Option<Vec<u8>> {
        let mut options = &reply[report.opt_at? + 11..];
        while let [c0, c1, l0, l1, rest @ ..] = options {
            let len = usize::from(u16::from_be_bytes([*l0, *l1]));
            if u16::from_be_bytes([*c0, *c1]) == code {
                return Some(rest[..len].to_vec());
            }
            options = &rest[len..];
        }
        None
    }

    fn ask_in(snap: &Snapshot, query: &[u8], transport: Transport) -> (Report, Vec<u8>) {
        let ctx = context(transport);
        let mut out = vec![0u8; 65535];
        let report = respond(query, &ctx, snap, &mut out).unwrap();
        out.truncate(report.len);
        (report, out)
    }

    #[test]
    fn cookies_follow_rfc7873() {
        let snap = snapshot();
        let base = query_bytes("www.example.com.", RecordType::A, Some(1232));
        let client = [1, 2, 3, 4, 5, 6, 7, 8];
        // A client cookie alone: a normal answer and a server cookie.
        let (r, reply) = ask_in(&snap, &with_cookie(base.clone(), &client), Transport::Udp);
        assert_eq!(r.cookie, CookieStatus::ClientOnly);
        let m = Message::from_vec(&reply).unwrap();
        assert_eq!(m.answers().len(), 2);
        let cookie = cookie_of(&r, &reply).expect("a COOKIE in the reply");
        assert_eq!(cookie.len(), 24);
        assert_eq!(&cookie[..8], &client);
        assert_eq!(cookie[8], 1, "RFC 9018 version");
        assert_eq!(&cookie[12..16], &NOW.to_be_bytes(), "timestamp");
        // Presented back: valid, echoed unchanged, the answer as before.
        let (r, reply) = ask_in(&snap, &with_cookie(base.clone(), &cookie), Transport::Udp);
        assert_eq!(r.cookie, CookieStatus::Valid);
        assert_eq!(cookie_of(&r, &reply).unwrap(), cookie);
        assert_eq!(Message::from_vec(&reply).unwrap().answers().len(), 2);
        // A server cookie that is not ours counts as a client cookie
        // alone (RFC 7873 §5.2.4): a normal answer and a fresh cookie,
        // over UDP and TCP alike.
        let mut forged = cookie.clone();
        forged[20] ^= 1;
        let q = with_cookie(base.clone(), &forged);
        for transport in [Transport::Udp, Transport::Tcp] {
            let (r, reply) = ask_in(&snap, &q, transport);
            assert_eq!((r.cookie, r.rcode), (CookieStatus::Invalid, rcode::NOERROR));
            let m = Message::from_vec(&reply).unwrap();
            assert_eq!(m.answers().len(), 2);
            assert_eq!(cookie_of(&r, &reply).unwrap(), cookie, "the fresh cookie");
        }
        // Malformed lengths: FORMERR with OPT (RFC 7873 §5.2.2).
        for len in [7, 9, 15, 41] {
            let (r, reply) = ask_in(
                &snap,
                &with_cookie(base.clone(), &vec![1; len]),
                Transport::Udp,
            );
            assert_eq!(r.rcode, rcode::FORMERR, "{len} bytes");
            assert!(Message::from_vec(&reply).unwrap().extensions().is_some());
        }
        // Only a cookie, no question: NOERROR with a server cookie
        // (RFC 7873 §5.4).
        let mut bare = with_cookie(base.clone(), &client);
        let question = "www.example.com.".len() + 1 + 4;
        bare.drain(12..12 + question);
        bare[5] = 0;
        let (r, reply) = ask_in(&snap, &bare, Transport::Udp);
        assert_eq!(r.rcode, rcode::NOERROR);
        assert_eq!(cookie_of(&r, &reply).unwrap(), cookie);
        // BADVERS and NOTIMP carry the cookie too.
        let mut v1 = with_cookie(base.clone(), &client);
        let version_at = 12 + question + 1 + 2 + 2 + 1;
        v1[version_at] = 1;
        let (r, reply) = ask_in(&snap, &v1, Transport::Udp);
        assert_eq!(r.rcode, rcode::BADVERS);
        assert_eq!(cookie_of(&r, &reply).unwrap(), cookie);
        // No cookie, no COOKIE.
        let (r, reply) = ask_in(&snap, &base, Transport::Udp);
        assert_eq!(r.cookie, CookieStatus::Absent);
        assert_eq!(cookie_of(&r, &reply), None);
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
        ask_in(snap, query, Transport::Udp).1
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

    #[test]
    fn nsid_is_answered_when_asked_with_an_empty_option() {
        let snap = snapshot();
        let base = query_bytes("www.example.com.", RecordType::A, Some(1232));
        let (r, reply) = ask_in(&snap, &with_option(base.clone(), 3, &[]), Transport::Udp);
        assert_eq!(option_of(&r, &reply, 3).as_deref(), Some(&b"ns1.test"[..]));
        let m = Message::from_vec(&reply).unwrap();
        assert_eq!(m.answers().len(), 2, "the answer is unchanged");
        // Not asked, or asked with data (not a request, RFC 5001 §2.1): none.
        let (r, reply) = ask_in(&snap, &base, Transport::Udp);
        assert_eq!(option_of(&r, &reply, 3), None);
        let (r, reply) = ask_in(&snap, &with_option(base.clone(), 3, b"x"), Transport::Udp);
        assert_eq!(option_of(&r, &reply, 3), None);
        // Error replies carry it too, as NSD's do.
        let outside = query_bytes("www.example.org.", RecordType::A, Some(1232));
        let (r, reply) = ask_in(&snap, &with_option(outside, 3, &[]), Transport::Udp);
        assert_eq!(r.rcode, rcode::REFUSED);
        assert_eq!(option_of(&r, &reply, 3).as_deref(), Some(&b"ns1.test"[..]));
        // A hidden identity sends no NSID.
        let hidden = Snapshot {
            identity: crate::identity::Identity::new("", None),
            ..snapshot()
        };
        let (r, reply) = ask_in(&hidden, &with_option(base, 3, &[]), Transport::Udp);
        assert_eq!(option_of(&r, &reply, 3), None);
    }

    /// `name` `qtype` in class CH.
    fn chaos_query(name: &str, qtype: RecordType) -> Vec<u8> {
        let mut q = query_bytes(name, qtype, None);
        let class = q.len() - 1;
        q[class] = 3;
        q
    }

    #[test]
    fn chaos_txt_names_the_server() {
        let snap = snapshot();
        let txt = |name: &str, qtype: RecordType| {
            let m = ask_bytes(&snap, &chaos_query(name, qtype), Transport::Udp).unwrap();
            let texts: Vec<String> = m
                .answers()
                .iter()
                .map(|r| {
                    format!(
                        "{} {} {} {}",
                        r.dns_class(),
                        r.ttl(),
                        r.record_type(),
                        r.data()
                    )
                })
                .collect();
            (m.response_code(), m.authoritative(), texts)
        };
        let id = (
            ResponseCode::NoError,
            true,
            vec!["CH 0 TXT ns1.test".to_string()],
        );
        assert_eq!(txt("id.server.", RecordType::TXT), id);
        assert_eq!(txt("ID.Server.", RecordType::TXT).2[0], "CH 0 TXT ns1.test");
        assert_eq!(txt("hostname.bind.", RecordType::TXT), id);
        assert_eq!(txt("id.server.", RecordType::ANY), id);
        assert_eq!(
            txt("version.bind.", RecordType::TXT).2,
            ["CH 0 TXT steerdns test"]
        );
        assert_eq!(
            txt("version.server.", RecordType::TXT).2,
            ["CH 0 TXT steerdns test"]
        );
        let refused = (ResponseCode::Refused, false, vec![]);
        assert_eq!(txt("id.server.", RecordType::A), refused);
        assert_eq!(txt("authors.bind.", RecordType::TXT), refused);
        assert_eq!(txt("www.example.com.", RecordType::A), refused);
        // The report accounts the answer to the name, for RRL.
        let (r, _) = ask_in(
            &snap,
            &chaos_query("id.server.", RecordType::TXT),
            Transport::Udp,
        );
        assert_eq!(
            (r.class, r.account),
            (ResponseClass::Answer, Account::of(b"\x02id\x06server\x00"))
        );

        let hidden = Snapshot {
            identity: crate::identity::Identity::new("", None),
            ..snapshot()
        };
        for name in ["id.server.", "version.bind."] {
            let q = chaos_query(name, RecordType::TXT);
            let m = ask_bytes(&hidden, &q, Transport::Udp).unwrap();
            assert_eq!(m.response_code(), ResponseCode::Refused, "{name}");
        }
    }
}
