//! Response rate limiting (RRL) for UDP, in the style of BIND 9, NSD and
//! Knot.
//!
//! An authoritative server on UDP is a reflector: a query with a spoofed
//! source address makes us send a (larger) response to a victim. RRL
//! (described by Vixie and Schryver for BIND, and reimplemented by NSD and
//! Knot) counts identical responses sent to one network, and once they come
//! faster than a configured rate, stops sending most of them:
//!
//! - **Accounts.** A response is charged to an account made of the
//!   client's prefix (IPv4 /24 and IPv6 /56 by default, so a victim cannot
//!   escape by address and an attacker gains nothing by varying the low
//!   bits) and what the response says, read back from the response bytes
//!   ([`classify`]):
//!
//!   | class | when | account name | rate |
//!   |---|---|---|---|
//!   | [`Answer`](ResponseClass::Answer) | NOERROR with answers (or TC) | qname and qtype | `responses-per-second` |
//!   | [`NoData`](ResponseClass::NoData) | NOERROR, SOA in authority | qname and qtype | `responses-per-second` |
//!   | [`Referral`](ResponseClass::Referral) | NOERROR, not AA, NS in authority | the delegation (NS owner) | `responses-per-second` |
//!   | [`NxDomain`](ResponseClass::NxDomain) | NXDOMAIN | the zone (SOA owner) | `nxdomains-per-second` |
//!   | [`Error`](ResponseClass::Error) | any other rcode, or no records at all | none: the prefix alone | `errors-per-second` |
//!
//!   NXDOMAIN is counted per zone, as BIND and Knot do, because random
//!   names are free to invent; errors per prefix, because the question of
//!   a REFUSED or FORMERR response tells nothing worth telling apart.
//!
//! - **Balance.** Each account holds a balance of responses, as in BIND's
//!   `rrl.c`: it starts at `rate`, every response (sent or not) costs one,
//!   each second adds `rate` back up to `rate`, and it never sinks below
//!   `-rate × window`. A response is sent while the balance is not
//!   negative; so a client gets a burst of one second's worth, then `rate`
//!   a second, and a flooder that keeps on stays limited and must stay
//!   quiet for up to `window` seconds to be answered again. An account
//!   unused for `window` seconds starts afresh.
//!
//! - **Slip.** Of the limited responses, every `slip`-th one is not dropped
//!   but sent truncated ([`truncate`]: TC=1, the question, no records), a
//!   packet no larger than the query, so it amplifies nothing, while a real
//!   resolver behind the spoofed-upon prefix retries over TCP, which cannot
//!   be spoofed and is never limited (RFC 7766 §5; BIND's `slip`).
//!
//! # Cost
//!
//! The limiter sits on the UDP hot path, so it takes no lock and allocates
//! nothing: accounts live in one fixed table of `AtomicU64`, indexed by a
//! seeded hash of the account and shared by every UDP worker. Each entry
//! packs a valid bit, a coarse timestamp, a slip counter and the balance,
//! and is updated with one compare-and-swap. Two accounts that hash to the
//! same entry share its balance; with 2^18 entries that is rare, and errs
//! towards limiting, which slip makes harmless for real resolvers. Time is
//! passed in (whole seconds from any fixed start, read once per receive
//! batch by the caller), so this module reads no clock and its tests use a
//! fake one.
//!
//! Exempt prefixes (loopback by default, since no packet from 127.0.0.0/8
//! or ::1 can arrive from outside the host) are never limited.
//!
//! # Limits
//!
//! Reading the class from the response keeps the engine untouched, but a
//! response does not say that a wildcard produced it, so wildcard answers
//! are counted per query name, where BIND and Knot count them per wildcard.
//! The floods of invented names that matter most, NXDOMAIN and errors, are
//! aggregated per zone and per network.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{v4_mask, v6_mask, ClientPrefix, RrlConfig};
use crate::rr::rtype;
use crate::wire::{flag, rcode, Header, HEADER_LEN};

/// What to do with one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate (or not limited at all): send it.
    Send,
    /// Over the rate: send nothing.
    Drop,
    /// Over the rate, but this one goes out truncated ([`truncate`]) so a
    /// real client can retry over TCP.
    Slip,
}

/// The kind of a response, which picks its rate and account name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseClass {
    /// A positive answer: NOERROR with records in the answer section, or a
    /// truncated one.
    Answer,
    /// NOERROR without an answer: the name exists, the type does not.
    NoData,
    /// A delegation to a child zone.
    Referral,
    /// The name does not exist.
    NxDomain,
    /// REFUSED, FORMERR, NOTIMP, SERVFAIL, BADVERS, or anything unreadable.
    Error,
}

/// The account a response is charged to, apart from the client prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    /// What kind of response it is.
    pub class: ResponseClass,
    /// A hash of the account's name, case-folded (0 for errors).
    pub name: u64,
    /// The query type, for answers and NODATA (0 otherwise).
    pub qtype: u16,
}

/// The shared table of accounts and the limits. See the
/// [module documentation](self).
#[derive(Debug)]
pub struct RateLimiter {
    /// The accounts; a power-of-two length.
    table: Box<[AtomicU64]>,
    /// `table.len() - 1`.
    mask: usize,
    /// Keys the hash, so which clients share an entry differs per process.
    seed: u64,
    responses: u32,
    nxdomains: u32,
    errors: u32,
    slip: u64,
    window: u64,
    v4_mask: u32,
    v6_mask: u128,
    /// The exempt prefixes as (network, netmask) pairs, per family: every
    /// reply is checked against them, so each check is an AND and a compare.
    exempt_v4: Box<[(u32, u32)]>,
    exempt_v6: Box<[(u128, u128)]>,
}

impl RateLimiter {
    /// A limiter for `config` (whose values [`crate::config`] has
    /// validated), with a random hash seed.
    pub fn new(config: &RrlConfig) -> RateLimiter {
        RateLimiter::with_seed(config, RandomState::new().hash_one(0x5eed_u64))
    }

    /// A limiter with a chosen hash seed, for reproducible tests.
    pub fn with_seed(config: &RrlConfig, seed: u64) -> RateLimiter {
        let size = config.table_size.max(1).next_power_of_two();
        RateLimiter {
            table: (0..size).map(|_| AtomicU64::new(0)).collect(),
            mask: size - 1,
            seed,
            responses: config.responses_per_second,
            nxdomains: config.nxdomains_per_second,
            errors: config.errors_per_second,
            slip: u64::from(config.slip).min(SLIP_MASK),
            window: u64::from(config.window),
            v4_mask: v4_mask(config.ipv4_prefix),
            v6_mask: v6_mask(config.ipv6_prefix),
            exempt_v4: (config.exempt_clients.iter())
                .filter_map(ClientPrefix::v4_network)
                .collect(),
            exempt_v6: (config.exempt_clients.iter())
                .filter_map(ClientPrefix::v6_network)
                .collect(),
        }
    }

    /// Decides the fate of `response`, about to be sent to `client` at
    /// time `now` (whole seconds since any fixed start), and charges it to
    /// its account.
    pub fn check(&self, now: u32, client: IpAddr, response: &[u8]) -> Verdict {
        // An IPv4-mapped IPv6 client counts as its IPv4 address.
        let exempt = match client.to_canonical() {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.exempt_v4.iter().any(|&(net, mask)| a & mask == net)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.exempt_v6.iter().any(|&(net, mask)| a & mask == net)
            }
        };
        if exempt {
            return Verdict::Send;
        }
        let account = classify(response);
        let rate = match account.class {
            ResponseClass::Answer | ResponseClass::NoData | ResponseClass::Referral => {
                self.responses
            }
            ResponseClass::NxDomain => self.nxdomains,
            ResponseClass::Error => self.errors,
        };
        // Rate 0 means no limit for this class, as in BIND.
        if rate == 0 {
            return Verdict::Send;
        }
        let entry = &self.table[self.index(client, &account)];
        self.charge(entry, now, rate)
    }

    /// The table entry of `client`'s prefix and `account`.
    fn index(&self, client: IpAddr, account: &Account) -> usize {
        let (family, high, low) = match client.to_canonical() {
            IpAddr::V4(a) => (4u64, 0, u64::from(u32::from(a) & self.v4_mask)),
            IpAddr::V6(a) => {
                let net = u128::from(a) & self.v6_mask;
                (6, (net >> 64) as u64, net as u64)
            }
        };
        let mut h = self.seed;
        h = mix(h, high);
        h = mix(h, low);
        h = mix(
            h,
            (family << 24) | ((account.class as u64) << 16) | u64::from(account.qtype),
        );
        h = mix(h, account.name);
        (finish(h) as usize) & self.mask
    }

    /// Charges one response to `entry` and returns its verdict.
    fn charge(&self, entry: &AtomicU64, now: u32, rate: u32) -> Verdict {
        let now = u64::from(now) & TS_MASK;
        let rate = i64::from(rate);
        let floor = -rate * self.window as i64;
        let mut current = entry.load(Ordering::Relaxed);
        loop {
            let stamp = (current >> TS_SHIFT) & TS_MASK;
            let ahead = stamp.wrapping_sub(now) & TS_MASK;
            // Workers read the clock once per batch, so another may have
            // stamped the entry a second later than our `now`: that is "no
            // time passed". Anything else is the time since the stamp,
            // modulo 2^27 s: an entry left alone for years may look recent
            // and keep its old balance for at most `window` seconds.
            let (age, stamp) = if ahead != 0 && ahead <= MAX_SKEW {
                (0, stamp)
            } else {
                (now.wrapping_sub(stamp) & TS_MASK, now)
            };
            let (mut balance, mut slips) = if current & VALID == 0 || age > self.window {
                (rate, 0)
            } else {
                // Truncation intended: the low 32 bits hold an i32.
                let balance = i64::from(current as u32 as i32);
                (
                    (balance + age as i64 * rate).min(rate),
                    (current >> SLIP_SHIFT) & SLIP_MASK,
                )
            };
            balance -= 1;
            let verdict = if balance >= 0 {
                Verdict::Send
            } else {
                balance = balance.max(floor);
                slips += 1;
                if self.slip != 0 && slips >= self.slip {
                    slips = 0;
                    Verdict::Slip
                } else {
                    if self.slip == 0 {
                        slips = 0;
                    }
                    Verdict::Drop
                }
            };
            // The balance fits: it lies in [floor, rate], and config caps
            // rate × window far below 2^31.
            let new = VALID
                | (stamp << TS_SHIFT)
                | (slips << SLIP_SHIFT)
                | u64::from(balance as i32 as u32);
            match entry.compare_exchange_weak(current, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return verdict,
                Err(seen) => current = seen,
            }
        }
    }
}

/// Entry layout: bit 63 valid, bits 36..63 the time of the last update in
/// seconds (27 bits: wraps after four years, which the age arithmetic
/// tolerates), bits 32..36 the slip counter, bits 0..32 the balance (i32).
const VALID: u64 = 1 << 63;
/// How far apart two workers' clocks may be: each reads it once per batch,
/// and a batch takes far less than a second.
const MAX_SKEW: u64 = 2;
const TS_SHIFT: u32 = 36;
const TS_MASK: u64 = (1 << 27) - 1;
const SLIP_SHIFT: u32 = 32;
const SLIP_MASK: u64 = 0xf;

/// One step of the FxHash mixer: fast, and good enough once finished by
/// [`finish`]. The seed keeps the layout unpredictable; collisions only
/// ever make two accounts share a balance.
fn mix(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95)
}

/// MurmurHash3's finaliser, so every input bit reaches the low bits that
/// index the table.
fn finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// Mixes `bytes`, eight at a time, with ASCII letters lowered (RFC 4343:
/// names compare case-insensitively, and a flood must not escape its
/// account by changing case, as DNS 0x20 resolvers do on purpose).
fn mix_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let word = |chunk: &[u8]| {
        let mut w = [0; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        lowercase_word(u64::from_le_bytes(w))
    };
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        h = mix(h, word(chunk));
    }
    let rest = chunks.remainder().len();
    if rest > 0 {
        // The last eight bytes, overlapping the previous chunk, spare a
        // variable-length copy; short strings take the slow way.
        let tail = match bytes.len().checked_sub(8) {
            Some(start) => word(&bytes[start..]),
            None => word(bytes),
        };
        h = mix(h, tail ^ rest as u64);
    }
    h
}

/// Lowers the ASCII capitals among eight bytes at once (SWAR).
fn lowercase_word(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low7 = x & !HIGH;
    // The high bit of each byte of `at_least_a` is set where the byte's
    // low seven bits are >= 'A', and of `above_z` where they are > 'Z';
    // bytes with the high bit set are not ASCII and stay as they are.
    let at_least_a = low7 + ONES * (0x80 - u64::from(b'A'));
    let above_z = low7 + ONES * (0x80 - u64::from(b'Z') - 1);
    let upper = at_least_a & !above_z & !x & HIGH;
    x | (upper >> 2)
}

/// Hashes the name at `pos` (following compression pointers, RFC 1035
/// §4.1.4) and returns the hash and the offset just past the name as
/// stored at `pos`. `None` for a malformed name.
///
/// The hash covers the name's labels, length octets included, as one
/// byte string, eight bytes a step: a name hashes alike however it is
/// compressed. The question's name, the one hashed for every response, is
/// never compressed and is hashed in place.
fn hash_name(msg: &[u8], pos: usize) -> Option<(u64, usize)> {
    let mut at = pos;
    loop {
        let label = *msg.get(at)?;
        match label {
            0 => return Some((mix_bytes(0, msg.get(pos..=at)?), at + 1)),
            1..=63 => {
                at += 1 + usize::from(label);
                if at - pos >= crate::name::MAX_NAME_LEN {
                    return None;
                }
            }
            0xc0..=0xff => return hash_compressed(msg, pos),
            _ => return None,
        }
    }
}

/// [`hash_name`] for a name with compression pointers: its runs of labels
/// are gathered on the stack, then hashed as one.
fn hash_compressed(msg: &[u8], mut pos: usize) -> Option<(u64, usize)> {
    const MAX: usize = crate::name::MAX_NAME_LEN;
    let mut name = [0u8; MAX];
    let mut len = 0;
    let mut end = None;
    let mut run = pos;
    // Each step is a label or a pointer, and pointers must go backwards,
    // so the walk ends; the bound is belt and braces.
    for _ in 0..MAX {
        let label = *msg.get(pos)?;
        let (next, jump) = match label {
            0 => (pos + 1, None),
            1..=63 => (pos + 1 + usize::from(label), Some(None)),
            0xc0..=0xff => {
                let target = (usize::from(label & 0x3f) << 8) | usize::from(*msg.get(pos + 1)?);
                if target >= pos {
                    return None;
                }
                end.get_or_insert(pos + 2);
                (pos, Some(Some(target)))
            }
            // 0x40 and 0x80: extended label types, never in our responses.
            _ => return None,
        };
        match jump {
            // Another label of this run.
            Some(None) => pos = next,
            // A pointer or the root ends the run: gather it.
            Some(Some(_)) | None => {
                let bytes = msg.get(run..next)?;
                name.get_mut(len..len + bytes.len())?.copy_from_slice(bytes);
                len += bytes.len();
                match jump {
                    Some(Some(target)) => {
                        pos = target;
                        run = target;
                    }
                    _ => return Some((mix_bytes(0, &name[..len]), end.unwrap_or(next))),
                }
            }
        }
    }
    None
}

/// The offset just past the name at `pos`.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            1..=63 => pos += 1 + usize::from(len),
            0xc0..=0xff => return (pos + 2 <= msg.len()).then_some(pos + 2),
            _ => return None,
        }
    }
}

/// A record's position: where it starts, its type and where it ends.
struct RecordAt {
    start: usize,
    rtype: u16,
    end: usize,
}

/// Reads the record header at `pos`.
fn record_at(msg: &[u8], pos: usize) -> Option<RecordAt> {
    let fixed = skip_name(msg, pos)?;
    let field = |at: usize| Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]));
    let rtype = field(fixed)?;
    let rdlen = usize::from(field(fixed + 8)?);
    let end = fixed + 10 + rdlen;
    (end <= msg.len()).then_some(RecordAt {
        start: pos,
        rtype,
        end,
    })
}

/// The offset of the first record after `skip` records from `pos`.
fn skip_records(msg: &[u8], mut pos: usize, skip: u16) -> Option<usize> {
    for _ in 0..skip {
        pos = record_at(msg, pos)?.end;
    }
    Some(pos)
}

/// Classifies a response produced by the engine, from its bytes alone:
/// header rcode, AA and TC flags, section counts and, for NXDOMAIN and
/// referrals, the owner of the first authority record.
pub fn classify(response: &[u8]) -> Account {
    let error = Account {
        class: ResponseClass::Error,
        name: 0,
        qtype: 0,
    };
    let Some(header) = Header::parse(response) else {
        return error;
    };
    if header.qdcount != 1 {
        return error;
    }
    let Some((qname, qname_end)) = hash_name(response, HEADER_LEN) else {
        return error;
    };
    let Some(qtype) = response
        .get(qname_end..qname_end + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
    else {
        return error;
    };
    let question_end = qname_end + 4;
    let by_qname = |class| Account {
        class,
        name: qname,
        qtype,
    };
    // The owner of the first authority record, with its type.
    let authority = || {
        let pos = skip_records(response, question_end, header.ancount)?;
        let record = record_at(response, pos)?;
        let (owner, _) = hash_name(response, record.start)?;
        Some((owner, record.rtype))
    };
    match header.flags & 0xf {
        rcode::NOERROR if header.ancount > 0 || header.flags & flag::TC != 0 => {
            by_qname(ResponseClass::Answer)
        }
        // Nothing at all, not truncated: BADVERS (its rcode lives in the
        // OPT record) or some other empty error.
        rcode::NOERROR if header.nscount == 0 => error,
        rcode::NOERROR => match authority() {
            Some((owner, rtype::NS)) if header.flags & flag::AA == 0 => Account {
                class: ResponseClass::Referral,
                name: owner,
                qtype: 0,
            },
            _ => by_qname(ResponseClass::NoData),
        },
        rcode::NXDOMAIN => Account {
            class: ResponseClass::NxDomain,
            // The SOA owner is the zone (RFC 2308 §3); without one, the
            // client's prefix alone.
            name: match authority() {
                Some((zone, rtype::SOA)) => zone,
                _ => 0,
            },
            qtype: 0,
        },
        _ => error,
    }
}

/// Rewrites the response in the first `len` bytes of `buf` into the
/// truncated reply sent when a limited response slips: the header with
/// TC=1 and no records, the question, and the OPT record if there was one
/// (RFC 6891 §7: a response to an EDNS query carries OPT). The rcode
/// becomes NOERROR, except that NXDOMAIN stays, as in BIND. Returns the new
/// length, or `None` when the response has no single question a client
/// could retry over TCP (then the response is dropped instead).
pub fn truncate(buf: &mut [u8], len: usize) -> Option<usize> {
    let msg = buf.get(..len)?;
    let header = Header::parse(msg)?;
    if header.qdcount != 1 {
        return None;
    }
    let question_end = skip_name(msg, HEADER_LEN)? + 4;
    if question_end > len {
        return None;
    }
    // The OPT record is in the additional section, usually last.
    let before_additional = u32::from(header.ancount) + u32::from(header.nscount);
    let records = before_additional + u32::from(header.arcount);
    let mut opt = None;
    let mut pos = question_end;
    for i in 0..records {
        let Some(record) = record_at(msg, pos) else {
            break;
        };
        // RFC 6891 §6.1.2: OPT's owner is the root, one byte.
        if i >= before_additional && record.rtype == rtype::OPT && msg[record.start] == 0 {
            opt = Some(record.start..record.end);
            break;
        }
        pos = record.end;
    }
    let rcode = if header.flags & 0xf == rcode::NXDOMAIN {
        rcode::NXDOMAIN
    } else {
        rcode::NOERROR
    };
    let flags = (header.flags & !0xf) | flag::TC | rcode;
    buf[2..4].copy_from_slice(&flags.to_be_bytes());
    buf[6..12].fill(0);
    let Some(opt) = opt else {
        return Some(question_end);
    };
    let opt_len = opt.len();
    buf.copy_within(opt, question_end);
    // The extended rcode (high byte of the TTL) goes with the rcode.
    buf[question_end + 5] = 0;
    buf[10..12].copy_from_slice(&1u16.to_be_bytes());
    Some(question_end + opt_len)
}

/// Limited responses counted by one UDP worker, on a cache line of its own
/// so that workers never write to a shared line. Summed when scraped
/// ([`RrlCounters::totals`]).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerCounters {
    dropped: AtomicU64,
    slipped: AtomicU64,
}

impl WorkerCounters {
    /// Counts a verdict. Only the owning worker writes, so a plain load
    /// and store (no locked read-modify-write) is exact.
    pub fn count(&self, verdict: Verdict) {
        let counter = match verdict {
            Verdict::Send => return,
            Verdict::Drop => &self.dropped,
            Verdict::Slip => &self.slipped,
        };
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

/// The counters of every UDP worker.
#[derive(Debug)]
pub struct RrlCounters {
    workers: Box<[WorkerCounters]>,
}

/// Limited responses since start, summed over the workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RrlTotals {
    /// Responses over the rate: dropped or slipped.
    pub limited: u64,
    /// Limited responses sent truncated.
    pub slipped: u64,
}

impl RrlCounters {
    /// Zeroed counters for `workers` workers.
    pub fn new(workers: usize) -> RrlCounters {
        RrlCounters {
            workers: (0..workers).map(|_| WorkerCounters::default()).collect(),
        }
    }

    /// The counters of worker `i`, if there is such a worker.
    pub fn worker(&self, i: usize) -> Option<&WorkerCounters> {
        self.workers.get(i)
    }

    /// The sums over all workers.
    pub fn totals(&self) -> RrlTotals {
        let mut totals = RrlTotals::default();
        for w in self.workers.iter() {
            let dropped = w.dropped.load(Ordering::Relaxed);
            let slipped = w.slipped.load(Ordering::Relaxed);
            totals.limited += dropped + slipped;
            totals.slipped += slipped;
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use hickory_proto::op::{Message, ResponseCode};

    use super::*;
    use crate::config::Config;
    use crate::engine::{respond, QueryContext, Transport};
    use crate::name::Name;
    use crate::snapshot::Snapshot;
    use crate::wire::{Section, Writer};

    fn config() -> RrlConfig {
        RrlConfig {
            responses_per_second: 5,
            nxdomains_per_second: 3,
            errors_per_second: 2,
            slip: 2,
            window: 4,
            table_size: 1 << 12,
            exempt_clients: Vec::new(),
            ..RrlConfig::default()
        }
    }

    fn wire(name: &str) -> Vec<u8> {
        Name::from_text(name, None).unwrap().wire().to_vec()
    }

    /// A response built with the real writer (so with its compression):
    /// question `qname`/`qtype`, then the given records, all with rdata
    /// `rdata`.
    fn response(
        qname: &str,
        qtype: u16,
        code: u16,
        flags: u16,
        answer: &[(&str, u16)],
        authority: &[(&str, u16)],
    ) -> Vec<u8> {
        let mut buf = vec![0; 1232];
        let question = wire(qname);
        let mut w = Writer::new(&mut buf, 1232);
        w.start(7, flag::QR | flags, Some((&question, qtype, 1)))
            .unwrap();
        for (section, records) in [(Section::Answer, answer), (Section::Authority, authority)] {
            for &(owner, t) in records {
                let rdata: Vec<u8> = match t {
                    rtype::NS => wire("ns.example.net."),
                    rtype::SOA => [wire("ns."), wire("host."), vec![0; 20]].concat(),
                    _ => vec![192, 0, 2, 1],
                };
                w.record(section, &wire(owner), t, 300, &rdata).unwrap();
            }
        }
        w.set_rcode(code);
        w.opt(1232, 0, false, None).unwrap();
        let len = w.finish();
        buf.truncate(len);
        buf
    }

    fn answer(qname: &str) -> Vec<u8> {
        response(
            qname,
            rtype::A,
            rcode::NOERROR,
            flag::AA,
            &[(qname, rtype::A)],
            &[],
        )
    }

    fn nxdomain(qname: &str, zone: &str) -> Vec<u8> {
        response(
            qname,
            rtype::A,
            rcode::NXDOMAIN,
            flag::AA,
            &[],
            &[(zone, rtype::SOA)],
        )
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// Sends `n` copies at `now`; counts (sent, dropped, slipped).
    fn burst(
        rrl: &RateLimiter,
        now: u32,
        client: &str,
        msg: &[u8],
        n: usize,
    ) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for _ in 0..n {
            match rrl.check(now, ip(client), msg) {
                Verdict::Send => counts.0 += 1,
                Verdict::Drop => counts.1 += 1,
                Verdict::Slip => counts.2 += 1,
            }
        }
        counts
    }

    #[test]
    fn lowercase_word_lowers_ascii_capitals_only() {
        let all: Vec<u8> = (0..=255).collect();
        for chunk in all.chunks(8) {
            let word = u64::from_le_bytes(chunk.try_into().unwrap());
            let lowered = lowercase_word(word).to_le_bytes();
            let want: Vec<u8> = chunk.iter().map(u8::to_ascii_lowercase).collect();
            assert_eq!(lowered.to_vec(), want);
        }
    }

    #[test]
    fn a_name_hashes_alike_however_compressed() {
        // "com." at 0, "example" + pointer to it at 5, "example.com." at 15,
        // a pointer to the second at 28.
        let mut msg = b"\x03com\x00\x07example\xc0\x00\x07EXAMPLE\x03com\x00\xc0\x05".to_vec();
        let split = hash_name(&msg, 5).unwrap();
        let whole = hash_name(&msg, 15).unwrap();
        let pointer = hash_name(&msg, 28).unwrap();
        assert_eq!((split.0, split.1), (whole.0, 15));
        assert_eq!((pointer.0, pointer.1), (whole.0, 30));
        assert_ne!(hash_name(&msg, 0).unwrap().0, whole.0);
        // A pointer forwards (or to itself) is refused: it could loop.
        msg[14] = 28;
        assert_eq!(hash_name(&msg, 5), None);
        assert_eq!(hash_name(b"\xc0\x00", 0), None);
        // Too long: 128 one-octet labels are 256 octets.
        assert_eq!(hash_name(&[1, b'a'].repeat(128), 0), None);
    }

    #[test]
    fn classifies_responses_by_kind_and_name() {
        let a = classify(&answer("www.example.com."));
        assert_eq!((a.class, a.qtype), (ResponseClass::Answer, rtype::A));
        // Case does not make another account.
        assert_eq!(classify(&answer("WWW.Example.COM.")), a);
        assert_ne!(classify(&answer("mail.example.com.")).name, a.name);

        // NXDOMAIN: per zone, whatever the name.
        let nx = classify(&nxdomain("a.example.com.", "example.com."));
        assert_eq!(nx.class, ResponseClass::NxDomain);
        assert_eq!(classify(&nxdomain("b.c.example.com.", "example.com.")), nx);
        assert_ne!(classify(&nxdomain("a.example.net.", "example.net.")), nx);
        // ... also after a CNAME that led nowhere (RFC 6604).
        let chained = response(
            "alias.example.com.",
            rtype::A,
            rcode::NXDOMAIN,
            flag::AA,
            &[("alias.example.com.", rtype::CNAME)],
            &[("example.com.", rtype::SOA)],
        );
        assert_eq!(classify(&chained), nx);

        // NODATA: per name and type.
        let nodata = response(
            "www.example.com.",
            rtype::AAAA,
            rcode::NOERROR,
            flag::AA,
            &[],
            &[("example.com.", rtype::SOA)],
        );
        let nd = classify(&nodata);
        assert_eq!((nd.class, nd.qtype), (ResponseClass::NoData, rtype::AAAA));
        assert_eq!(nd.name, a.name);

        // Referral: per delegation, whatever the name below it.
        let referral = |qname| {
            response(
                qname,
                rtype::A,
                rcode::NOERROR,
                0,
                &[],
                &[("sub.example.com.", rtype::NS)],
            )
        };
        let r = classify(&referral("x.sub.example.com."));
        assert_eq!(r.class, ResponseClass::Referral);
        assert_eq!(classify(&referral("y.z.sub.example.com.")), r);

        // Errors: one account per prefix.
        for code in [
            rcode::REFUSED,
            rcode::FORMERR,
            rcode::NOTIMP,
            rcode::SERVFAIL,
        ] {
            let e = classify(&response("x.example.org.", rtype::A, code, 0, &[], &[]));
            assert_eq!(
                e,
                Account {
                    class: ResponseClass::Error,
                    name: 0,
                    qtype: 0
                }
            );
        }
        // BADVERS: NOERROR in the header, nothing in the sections.
        let badvers = response("www.example.com.", rtype::A, rcode::NOERROR, 0, &[], &[]);
        assert_eq!(classify(&badvers).class, ResponseClass::Error);
        // Truncated answers are answers.
        let tc = response(
            "big.example.com.",
            rtype::TXT,
            0,
            flag::AA | flag::TC,
            &[],
            &[],
        );
        assert_eq!(classify(&tc).class, ResponseClass::Answer);
        // Garbage never panics and counts as an error.
        for junk in [&[][..], &[0; 11], &[0xff; 40]] {
            assert_eq!(classify(junk).class, ResponseClass::Error);
        }
    }

    #[test]
    fn classifies_what_the_engine_answers() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/basic/steerdns.toml");
        let config = Config::from_file(&path).unwrap();
        let snap = Snapshot::load(&config).unwrap();
        let ctx = QueryContext {
            client: "192.0.2.1:5300".parse().unwrap(),
            local: "127.0.0.1".parse().unwrap(),
            transport: Transport::Udp,
        };
        let ask = |name: &str, qtype: u16| {
            let mut q = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            q.extend(wire(name));
            q.extend(qtype.to_be_bytes());
            q.extend(1u16.to_be_bytes());
            let mut out = vec![0; 4096];
            let len = respond(&q, &ctx, &snap, &mut out).unwrap();
            out.truncate(len);
            classify(&out).class
        };
        assert_eq!(ask("www.example.com.", rtype::A), ResponseClass::Answer);
        assert_eq!(ask("x.apps.example.com.", rtype::A), ResponseClass::Answer);
        assert_eq!(ask("api.example.com.", rtype::A), ResponseClass::Answer);
        assert_eq!(ask("www.example.com.", rtype::MX), ResponseClass::NoData);
        assert_eq!(ask("nope.example.com.", rtype::A), ResponseClass::NxDomain);
        assert_eq!(
            ask("host.lab.example.com.", rtype::A),
            ResponseClass::Referral
        );
        assert_eq!(ask("example.org.", rtype::A), ResponseClass::Error);
        assert_eq!(ask("example.com.", rtype::AXFR), ResponseClass::Error);
    }

    #[test]
    fn limits_to_the_rate_after_a_one_second_burst() {
        let rrl = RateLimiter::with_seed(&config(), 1);
        let msg = answer("www.example.com.");
        // Rate 5: five sent, then half of the rest slip (slip = 2).
        assert_eq!(burst(&rrl, 100, "192.0.2.1", &msg, 25), (5, 10, 10));
        // A flooder that keeps on stays limited: its debt (down to -5 × 4)
        // outweighs each second's credit.
        assert_eq!(burst(&rrl, 101, "192.0.2.1", &msg, 20), (0, 10, 10));
        assert_eq!(burst(&rrl, 102, "192.0.2.1", &msg, 1).0, 0);
    }

    #[test]
    fn refills_at_the_rate_and_forgets_after_the_window() {
        let rrl = RateLimiter::with_seed(&config(), 2);
        let msg = answer("www.example.com.");
        // A client at the rate is never limited.
        for t in 0..10 {
            assert_eq!(burst(&rrl, 1000 + t, "192.0.2.1", &msg, 5), (5, 0, 0));
        }
        // Debt is paid back at the rate, and every response costs one,
        // sent or not: after a flood down to the floor (-20), four quiet
        // seconds bring the balance back to 0, not enough for one more...
        burst(&rrl, 2000, "192.0.2.1", &msg, 100);
        assert_eq!(burst(&rrl, 2004, "192.0.2.1", &msg, 1).0, 0);
        // ... and the next second's credit leaves -1 + 5: four sent.
        assert_eq!(burst(&rrl, 2005, "192.0.2.1", &msg, 5).0, 4);
        // An account idle for longer than the window starts afresh.
        burst(&rrl, 3000, "192.0.2.1", &msg, 100);
        assert_eq!(burst(&rrl, 3005, "192.0.2.1", &msg, 6).0, 5);
    }

    #[test]
    fn a_stale_clock_is_no_time_not_a_wrap() {
        let rrl = RateLimiter::with_seed(&config(), 3);
        let msg = answer("www.example.com.");
        burst(&rrl, 50, "192.0.2.1", &msg, 30);
        // Another worker still at second 49 must not reset the account.
        assert_eq!(burst(&rrl, 49, "192.0.2.1", &msg, 4).0, 0);
        // Time is taken modulo 2^27 seconds; across the wrap it still works.
        let wrap = (1u32 << 27) - 1;
        burst(&rrl, wrap, "192.0.2.9", &msg, 30);
        assert_eq!(burst(&rrl, wrap + 1, "192.0.2.9", &msg, 1).0, 0);
        // After years of uptime a new account starts with a full balance,
        // and its debt is paid back like any other.
        let late = (1u32 << 26) + 12_345;
        assert_eq!(burst(&rrl, late, "198.51.100.1", &msg, 25).0, 5);
        assert_eq!(burst(&rrl, late + 5, "198.51.100.1", &msg, 1).0, 1);
        // An account left alone for years (its stamp now looks like the
        // future, or like the recent past) starts afresh.
        for years in [1, 3] {
            let client = format!("203.0.113.{years}");
            burst(&rrl, 1000, &client, &msg, 30);
            let later = 1000 + years * 365 * 86_400;
            assert_eq!(burst(&rrl, later, &client, &msg, 6).0, 5, "{years} years");
        }
    }

    #[test]
    fn prefixes_group_clients() {
        let rrl = RateLimiter::with_seed(&config(), 4);
        let msg = answer("www.example.com.");
        burst(&rrl, 10, "198.51.100.1", &msg, 50);
        // Same /24: the same account.
        assert_eq!(burst(&rrl, 10, "198.51.100.254", &msg, 1).0, 0);
        assert_eq!(burst(&rrl, 10, "::ffff:198.51.100.7", &msg, 1).0, 0);
        // Another /24 has its own.
        assert_eq!(burst(&rrl, 10, "198.51.101.1", &msg, 5).0, 5);
        // IPv6: /56.
        burst(&rrl, 10, "2001:db8:0:1100::1", &msg, 50);
        assert_eq!(burst(&rrl, 10, "2001:db8:0:11ff:ffff::1", &msg, 1).0, 0);
        assert_eq!(burst(&rrl, 10, "2001:db8:0:1200::1", &msg, 5).0, 5);
        // Configurable lengths.
        let narrow = RateLimiter::with_seed(
            &RrlConfig {
                ipv4_prefix: 32,
                ipv6_prefix: 64,
                ..config()
            },
            4,
        );
        burst(&narrow, 10, "198.51.100.1", &msg, 50);
        assert_eq!(burst(&narrow, 10, "198.51.100.2", &msg, 5).0, 5);
        burst(&narrow, 10, "2001:db8::1", &msg, 50);
        assert_eq!(burst(&narrow, 10, "2001:db8:0:1::1", &msg, 5).0, 5);
    }

    #[test]
    fn classes_have_their_own_accounts_and_rates() {
        let rrl = RateLimiter::with_seed(&config(), 5);
        let c = "203.0.113.5";
        // Different names: different accounts.
        assert_eq!(burst(&rrl, 7, c, &answer("a.example.com."), 6).0, 5);
        assert_eq!(burst(&rrl, 7, c, &answer("b.example.com."), 6).0, 5);
        // NXDOMAIN for ever new names in one zone: one account, rate 3.
        let sent: usize = (0..10)
            .map(|i| {
                burst(
                    &rrl,
                    7,
                    c,
                    &nxdomain(&format!("n{i}.example.com."), "example.com."),
                    1,
                )
                .0
            })
            .sum();
        assert_eq!(sent, 3);
        // Another zone has its own.
        assert_eq!(
            burst(&rrl, 7, c, &nxdomain("n.example.net.", "example.net."), 5).0,
            3
        );
        // Errors: one account per prefix, rate 2, whatever the question.
        let sent: usize = (0..10)
            .map(|i| {
                let refused = response(
                    &format!("q{i}.example.org."),
                    rtype::A,
                    rcode::REFUSED,
                    0,
                    &[],
                    &[],
                );
                burst(&rrl, 7, c, &refused, 1).0
            })
            .sum();
        assert_eq!(sent, 2);
        // The answers' accounts were not touched by all that.
        assert_eq!(burst(&rrl, 7, c, &answer("c.example.com."), 5).0, 5);
    }

    #[test]
    fn slip_zero_one_and_three() {
        let msg = answer("www.example.com.");
        for (slip, want) in [(0, (5, 20, 0)), (1, (5, 0, 20)), (3, (5, 14, 6))] {
            let rrl = RateLimiter::with_seed(&RrlConfig { slip, ..config() }, 6);
            assert_eq!(burst(&rrl, 1, "192.0.2.1", &msg, 25), want, "slip {slip}");
        }
    }

    #[test]
    fn zero_rate_means_unlimited_and_exempt_clients_pass() {
        let rrl = RateLimiter::with_seed(
            &RrlConfig {
                responses_per_second: 0,
                exempt_clients: vec![ClientPrefix::parse("192.0.2.0/25").unwrap()],
                ..config()
            },
            7,
        );
        assert_eq!(
            burst(&rrl, 1, "198.51.100.1", &answer("a.example."), 100).0,
            100
        );
        let nx = nxdomain("x.example.com.", "example.com.");
        assert_eq!(burst(&rrl, 1, "192.0.2.100", &nx, 100).0, 100);
        assert_eq!(burst(&rrl, 1, "192.0.2.200", &nx, 100).0, 3);
    }

    #[test]
    fn workers_share_the_table_without_losing_updates() {
        let rrl = RateLimiter::with_seed(
            &RrlConfig {
                window: 1,
                ..config()
            },
            8,
        );
        let msg = answer("www.example.com.");
        let sent: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| burst(&rrl, 9, "192.0.2.1", &msg, 10_000).0))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(sent, 5, "exactly one second's worth, however interleaved");
    }

    #[test]
    fn truncate_keeps_the_question_and_opt() {
        let mut msg = response(
            "www.example.com.",
            rtype::A,
            rcode::NOERROR,
            flag::AA,
            &[
                ("www.example.com.", rtype::A),
                ("www.example.com.", rtype::A),
            ],
            &[("example.com.", rtype::NS)],
        );
        let len = msg.len();
        let short = truncate(&mut msg, len).unwrap();
        let m = Message::from_vec(&msg[..short]).unwrap();
        assert!(m.truncated());
        assert_eq!(m.id(), 7);
        assert_eq!(m.queries()[0].name().to_string(), "www.example.com.");
        assert!(m.answers().is_empty() && m.name_servers().is_empty());
        assert!(m.additionals().is_empty());
        assert_eq!(m.extensions().as_ref().unwrap().max_payload(), 1232);
        assert_eq!(m.response_code(), ResponseCode::NoError);

        let mut nx = nxdomain("x.example.com.", "example.com.");
        let len = nx.len();
        let short = truncate(&mut nx, len).unwrap();
        let m = Message::from_vec(&nx[..short]).unwrap();
        assert_eq!(
            (m.response_code(), m.truncated()),
            (ResponseCode::NXDomain, true)
        );

        let mut refused = response("x.example.org.", rtype::A, rcode::REFUSED, 0, &[], &[]);
        let len = refused.len();
        let short = truncate(&mut refused, len).unwrap();
        let m = Message::from_vec(&refused[..short]).unwrap();
        assert_eq!(m.response_code(), ResponseCode::NoError);

        // No question: nothing to retry, so no truncated reply.
        let mut bare = vec![0, 1, 0x81, 0x01, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(truncate(&mut bare, 12), None);
        // Junk never panics.
        let mut junk = vec![0xff; 64];
        junk[4..6].copy_from_slice(&[0, 1]);
        assert!(truncate(&mut junk, 64).is_none_or(|len| len <= 64));
        junk[12] = 0x3f;
        assert_eq!(truncate(&mut junk, 64), None);
        assert_eq!(truncate(&mut [0; 4], 4), None);
    }

    #[test]
    fn junk_and_mutated_responses_never_panic() {
        let mut seeds = vec![
            answer("www.example.com."),
            nxdomain("x.example.com.", "example.com."),
            response(
                "a.sub.example.com.",
                rtype::A,
                0,
                0,
                &[],
                &[("sub.example.com.", rtype::NS)],
            ),
        ];
        seeds.push(vec![0; 12]);
        let rrl = RateLimiter::with_seed(&config(), 9);
        // xorshift: reproducible without a dependency.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let mut msg = seeds[round % seeds.len()].clone();
            for _ in 0..(next() % 4) {
                let at = next() as usize % msg.len();
                msg[at] = next() as u8;
            }
            msg.truncate(next() as usize % (msg.len() + 1));
            let _ = classify(&msg);
            let _ = rrl.check(round as u32, ip("192.0.2.1"), &msg);
            let len = msg.len();
            if let Some(short) = truncate(&mut msg, len) {
                assert!(short <= len);
            }
        }
    }

    /// Rough cost of the limiter next to the engine's own; run with
    /// `cargo test --release --lib rrl::tests::cost -- --ignored --nocapture`,
    /// or under `valgrind --tool=callgrind` with `STEERDNS_COST_ROUNDS`
    /// set to a few thousand for instruction counts.
    #[test]
    #[ignore = "a measurement, not a test"]
    fn cost() {
        use std::hint::black_box;
        use std::time::Instant;

        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/basic/steerdns.toml");
        let snap = Snapshot::load(&Config::from_file(&path).unwrap()).unwrap();
        let ctx = QueryContext {
            client: "192.0.2.1:5300".parse().unwrap(),
            local: "127.0.0.1".parse().unwrap(),
            transport: Transport::Udp,
        };
        let mut q = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend(wire("www.example.com."));
        q.extend([0, 1, 0, 1]);
        let mut out = vec![0; 4096];
        let rrl = RateLimiter::new(&RrlConfig {
            exempt_clients: Vec::new(),
            ..RrlConfig::default()
        });
        // Fewer rounds when run under callgrind, which counts instructions.
        let n: u32 = std::env::var("STEERDNS_COST_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2_000_000);
        let time = |f: &mut dyn FnMut(u32)| {
            let start = Instant::now();
            for i in 0..n {
                f(i);
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        };
        let engine = time(&mut |_| {
            black_box(respond(black_box(&q), &ctx, &snap, &mut out));
        });
        let len = respond(&q, &ctx, &snap, &mut out).unwrap();
        let reply = out[..len].to_vec();
        let classify_ns = time(&mut |_| {
            black_box(classify(black_box(&reply)));
        });
        // Many clients, so the table is touched all over as in service.
        let check = time(&mut |i| {
            let client = IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, 0]);
            black_box(rrl.check(i >> 20, client, black_box(&reply)));
        });
        let one_client = time(&mut |i| {
            black_box(rrl.check(i >> 20, ip("192.0.2.1"), black_box(&reply)));
        });
        eprintln!(
            "engine {engine:.0} ns/query; classify {classify_ns:.0} ns; \
             check {check:.0} ns (65k prefixes), {one_client:.0} ns (one prefix)"
        );
    }

    #[test]
    fn counters_sum_over_workers() {
        let counters = RrlCounters::new(2);
        counters.worker(0).unwrap().count(Verdict::Drop);
        counters.worker(1).unwrap().count(Verdict::Slip);
        counters.worker(1).unwrap().count(Verdict::Send);
        counters.worker(1).unwrap().count(Verdict::Drop);
        assert!(counters.worker(2).is_none());
        assert_eq!(
            counters.totals(),
            RrlTotals {
                limited: 3,
                slipped: 1
            }
        );
    }
}
