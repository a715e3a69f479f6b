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
//!   bits) and what the response says, as the engine reports it
//!   ([`Report`]: its class and account name):
//!
//!   | class | when | account name | rate |
//!   |---|---|---|---|
//!   | [`Answer`](ResponseClass::Answer) | NOERROR with answers | qname and qtype; for a wildcard answer, the wildcard (`*.example.com`) and qtype | `responses-per-second` |
//!   | [`Truncated`](ResponseClass::Truncated) | too large for UDP, TC=1 | qname and qtype | `responses-per-second` |
//!   | [`NoData`](ResponseClass::NoData) | NOERROR, SOA in authority | the zone apex and qtype | `responses-per-second` |
//!   | [`Referral`](ResponseClass::Referral) | a delegation | the zone cut | `responses-per-second` |
//!   | [`NxDomain`](ResponseClass::NxDomain) | NXDOMAIN | the zone apex | `nxdomains-per-second` |
//!   | [`Error`](ResponseClass::Error) | any other rcode | none: the prefix alone | `errors-per-second` |
//!
//!   NXDOMAIN and NODATA are counted per zone, and wildcard answers per
//!   wildcard, as BIND and Knot do, because names are free to invent;
//!   errors per prefix, because the question of a REFUSED or FORMERR
//!   response tells nothing worth telling apart.
//!
//! - **Cookies.** A query with a valid server cookie (RFC 7873,
//!   `crate::cookie`) comes from the address it claims, so its response is
//!   never limited, as in BIND and Knot.
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
//!   be spoofed and is never limited (RFC 7766 §5; BIND's `slip`). A client
//!   that sent a DNS cookie gets BADCOOKIE with a server cookie instead,
//!   and its retry with that cookie goes through (BIND does the same).
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
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{v4_mask, v6_mask, ClientPrefix, RrlConfig};
use crate::cookie::CookieStatus;
use crate::engine::{Report, ResponseClass};
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
    pub fn check(&self, now: u32, client: IpAddr, report: &Report) -> Verdict {
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
        // A valid server cookie proves the address is the client's own
        // (RFC 7873 §1): nothing to reflect, as BIND and Knot agree.
        if exempt || report.cookie == CookieStatus::Valid {
            return Verdict::Send;
        }
        let rate = match report.class {
            ResponseClass::Answer
            | ResponseClass::NoData
            | ResponseClass::Referral
            | ResponseClass::Truncated => self.responses,
            ResponseClass::NxDomain => self.nxdomains,
            ResponseClass::Error => self.errors,
        };
        // Rate 0 means no limit for this class, as in BIND.
        if rate == 0 {
            return Verdict::Send;
        }
        let entry = &self.table[self.index(client, report)];
        self.charge(entry, now, rate)
    }

    /// The table entry of `client`'s prefix and the response's account.
    fn index(&self, client: IpAddr, report: &Report) -> usize {
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
            (family << 24) | ((report.class as u64) << 16) | u64::from(report.qtype),
        );
        h = mix(h, report.account.digest());
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

/// Rewrites the response `report` describes, in `buf`, into the reply
/// sent when a limited response slips: the header with no records, the
/// question, and the OPT record if there was one (RFC 6891 §7: a response
/// to an EDNS query carries OPT). To a client that sent a DNS cookie it is
/// BADCOOKIE with our server cookie, which it returns at once and is then
/// let through, as BIND does (RFC 7873 §5.2.3); to others it is TC=1, with
/// NOERROR, or NXDOMAIN kept as in BIND, so they retry over TCP. Returns
/// the new length, or `None` when the response has no question a client
/// could retry (then the response is dropped instead).
pub fn truncate(buf: &mut [u8], report: &Report) -> Option<usize> {
    let question_end = report.question_end;
    if question_end <= HEADER_LEN || report.len > buf.len() {
        return None;
    }
    let header = Header::parse(buf)?;
    let cookie_client = matches!(
        report.cookie,
        CookieStatus::ClientOnly | CookieStatus::Invalid
    );
    let badcookie = report.opt_at.is_some() && cookie_client;
    let (code, flags) = if badcookie {
        // BADCOOKIE answers nothing, so it claims no authority (as BIND).
        (rcode::BADCOOKIE, header.flags & !(0xf | flag::AA))
    } else if header.flags & 0xf == rcode::NXDOMAIN {
        (rcode::NXDOMAIN, header.flags | flag::TC)
    } else {
        (rcode::NOERROR, (header.flags & !0xf) | flag::TC)
    };
    let flags = flags | (code & 0xf);
    buf[2..4].copy_from_slice(&flags.to_be_bytes());
    buf[6..12].fill(0);
    let Some(opt_at) = report
        .opt_at
        .filter(|&at| at >= question_end && at < report.len)
    else {
        return Some(question_end);
    };
    let opt_len = report.len - opt_at;
    buf.copy_within(opt_at..report.len, question_end);
    // The extended rcode (high byte of the TTL) goes with the rcode.
    buf[question_end + 5] = (code >> 4) as u8;
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
    use crate::cookie::CookieSecret;
    use crate::engine::{respond, Account, QueryContext, Transport};
    use crate::name::Name;
    use crate::rr::rtype;
    use crate::snapshot::Snapshot;

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

    /// A report of a response of `class` accounted to `name`.
    fn report(class: ResponseClass, name: &str, qtype: u16) -> Report {
        Report {
            len: 0,
            rcode: rcode::NOERROR,
            class,
            qtype,
            question_type: qtype,
            client_subnet: false,
            scope: None,
            service: None,
            endpoints: crate::policy::EndpointSet::new(),
            account: Account::of(&wire(name)),
            cookie: CookieStatus::Absent,
            question_end: 0,
            opt_at: None,
        }
    }

    fn answer(qname: &str) -> Report {
        report(ResponseClass::Answer, qname, rtype::A)
    }

    fn nxdomain(zone: &str) -> Report {
        report(ResponseClass::NxDomain, zone, 0)
    }

    fn error() -> Report {
        Report {
            account: Account::NONE,
            ..report(ResponseClass::Error, ".", 0)
        }
    }

    /// The example snapshot and a query context from `client` with a
    /// fixed cookie secret.
    fn example() -> (Snapshot, QueryContext) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/basic/steerdns.toml");
        let snap = Snapshot::load(&Config::from_file(&path).unwrap()).unwrap();
        let ctx = QueryContext {
            client: "192.0.2.1:5300".parse().unwrap(),
            local: "127.0.0.1".parse().unwrap(),
            transport: Transport::Udp,
            now: 1_700_000_000,
            cookie_keys: CookieSecret::Shared([7; 16]).keys(0),
        };
        (snap, ctx)
    }

    /// A query for `name`/`qtype`, with an OPT record carrying `options`
    /// when given.
    fn query(name: &str, qtype: u16, options: Option<&[u8]>) -> Vec<u8> {
        let arcount = u8::from(options.is_some());
        let mut q = vec![0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, arcount];
        q.extend(wire(name));
        q.extend(qtype.to_be_bytes());
        q.extend(1u16.to_be_bytes());
        if let Some(options) = options {
            q.extend([0, 0, 41, 4, 0xd0, 0, 0, 0, 0]);
            q.extend((options.len() as u16).to_be_bytes());
            q.extend(options);
        }
        q
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// Sends `n` copies at `now`; counts (sent, dropped, slipped).
    fn burst(
        rrl: &RateLimiter,
        now: u32,
        client: &str,
        msg: &Report,
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
    fn accounts_follow_the_engine_report() {
        let (snap, ctx) = example();
        let ask = |name: &str, qtype: u16| {
            let mut out = vec![0; 4096];
            respond(&query(name, qtype, None), &ctx, &snap, &mut out).unwrap()
        };
        let account = |r: Report| (r.class, r.account, r.qtype);
        let of = |name: &str| Account::of(&wire(name));
        let answer = (ResponseClass::Answer, of("www.example.com."), rtype::A);
        assert_eq!(account(ask("www.example.com.", rtype::A)), answer);
        // Case does not make another account; another name does.
        assert_eq!(account(ask("WWW.Example.COM.", rtype::A)), answer);
        assert_ne!(of("www.example.com."), of("www.example.org."));
        assert_ne!(of("www.example.com."), Account::NONE);
        // A CNAME chain is counted to the name asked.
        assert_eq!(
            account(ask("api.example.com.", rtype::A)).1,
            of("api.example.com.")
        );
        // Every name a wildcard answers shares the wildcard's account.
        let wild = (
            ResponseClass::Answer,
            Account::wildcard(&wire("apps.example.com.")),
            rtype::A,
        );
        assert_ne!(wild.1, of("apps.example.com."));
        assert_eq!(account(ask("x.apps.example.com.", rtype::A)), wild);
        assert_eq!(account(ask("Y.Z.apps.example.com.", rtype::A)), wild);
        // NODATA and NXDOMAIN: the zone.
        assert_eq!(
            account(ask("www.example.com.", rtype::MX)),
            (ResponseClass::NoData, of("example.com."), rtype::MX)
        );
        assert_eq!(
            account(ask("x.apps.example.com.", rtype::MX)).1,
            of("example.com.")
        );
        assert_eq!(
            account(ask("nope.example.com.", rtype::A)),
            (ResponseClass::NxDomain, of("example.com."), 0)
        );
        // Referrals: the delegation, whatever the name below it.
        let referral = (ResponseClass::Referral, of("lab.example.com."), 0);
        assert_eq!(account(ask("host.lab.example.com.", rtype::A)), referral);
        assert_eq!(account(ask("a.b.lab.example.com.", rtype::A)), referral);
        // Errors: no name.
        let refused = (ResponseClass::Error, Account::NONE, 0);
        assert_eq!(account(ask("example.org.", rtype::A)), refused);
        assert_eq!(account(ask("example.com.", rtype::AXFR)), refused);
    }

    #[test]
    fn wildcard_answers_share_one_balance() {
        let (snap, ctx) = example();
        let rrl = RateLimiter::with_seed(&config(), 10);
        let mut out = vec![0; 4096];
        // Rate 5: invented names under one wildcard are one account.
        let sent = (0..10)
            .filter(|i| {
                let q = query(&format!("n{i}.apps.example.com."), rtype::A, None);
                let r = respond(&q, &ctx, &snap, &mut out).unwrap();
                rrl.check(1, ip("198.51.100.1"), &r) == Verdict::Send
            })
            .count();
        assert_eq!(sent, 5);
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
        // NXDOMAIN: one account per zone (the engine names the zone),
        // rate 3.
        assert_eq!(burst(&rrl, 7, c, &nxdomain("example.com."), 10).0, 3);
        // Another zone has its own.
        assert_eq!(burst(&rrl, 7, c, &nxdomain("example.net."), 5).0, 3);
        // NODATA at the same name as an answer is another account.
        let nodata = report(ResponseClass::NoData, "a.example.com.", rtype::A);
        assert_eq!(burst(&rrl, 7, c, &nodata, 6).0, 5);
        // Errors: one account per prefix, rate 2.
        assert_eq!(burst(&rrl, 7, c, &error(), 10).0, 2);
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
        let nx = nxdomain("example.com.");
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

    /// Answers `q` from the example, then rewrites it as a slipped reply.
    fn slipped(q: &[u8], ctx: &QueryContext, snap: &Snapshot) -> (Report, Option<Message>) {
        let mut out = vec![0; 4096];
        let r = respond(q, ctx, snap, &mut out).unwrap();
        let short = truncate(&mut out, &r);
        if let Some(len) = short {
            assert!(
                len <= r.len && len <= q.len() + 28,
                "no larger than the query"
            );
        }
        (r, short.map(|len| Message::from_vec(&out[..len]).unwrap()))
    }

    #[test]
    fn truncate_keeps_the_question_and_opt() {
        let (snap, ctx) = example();
        let (r, m) = slipped(&query("Www.example.com.", rtype::A, Some(&[])), &ctx, &snap);
        let m = m.unwrap();
        assert!(r.opt_at.is_some());
        assert!(m.truncated() && m.authoritative());
        assert_eq!(m.id(), 7);
        assert_eq!(m.queries()[0].name().to_string(), "Www.example.com.");
        assert!(m.answers().is_empty() && m.name_servers().is_empty());
        assert!(m.additionals().is_empty());
        assert_eq!(m.extensions().as_ref().unwrap().max_payload(), 1232);
        assert_eq!(m.response_code(), ResponseCode::NoError);

        let (_, m) = slipped(&query("x.example.com.", rtype::A, None), &ctx, &snap);
        let m = m.unwrap();
        assert_eq!(
            (m.response_code(), m.truncated()),
            (ResponseCode::NXDomain, true)
        );
        assert!(m.extensions().is_none());

        let (_, m) = slipped(&query("x.example.org.", rtype::A, Some(&[])), &ctx, &snap);
        assert_eq!(m.unwrap().response_code(), ResponseCode::NoError);

        // No question: nothing to retry, so no truncated reply.
        let mut no_question = query("x.example.org.", rtype::A, None);
        no_question[5] = 0;
        assert!(slipped(&no_question, &ctx, &snap).1.is_none());
        // A report that does not fit the buffer never panics.
        let mut short = [0; 12];
        let r = respond(
            &query("www.example.com.", rtype::A, None),
            &ctx,
            &snap,
            &mut [0; 512],
        );
        assert_eq!(truncate(&mut short, &r.unwrap()), None);
    }

    #[test]
    fn cookie_clients_slip_to_badcookie_and_valid_cookies_pass() {
        let (snap, ctx) = example();
        let rrl = RateLimiter::with_seed(
            &RrlConfig {
                slip: 1,
                ..config()
            },
            11,
        );
        // A client cookie alone: answered with a server cookie.
        let client_only = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        let q = query("www.example.com.", rtype::A, Some(&client_only));
        let mut out = vec![0; 4096];
        let r = respond(&q, &ctx, &snap, &mut out).unwrap();
        assert_eq!(r.cookie, CookieStatus::ClientOnly);
        let opt = r.opt_at.unwrap();
        // OPT: root, type, class, TTL, RDLENGTH 28, then the option.
        assert_eq!(&out[opt + 9..opt + 15], &[0, 28, 0, 10, 0, 24]);
        let option = out[opt + 11..opt + 39].to_vec();
        // Over the rate, a slipped reply is BADCOOKIE with the cookie.
        assert_eq!(burst(&rrl, 1, "198.51.100.1", &r, 5), (5, 0, 0));
        assert_eq!(rrl.check(1, ip("198.51.100.1"), &r), Verdict::Slip);
        let (_, m) = slipped(&q, &ctx, &snap);
        let m = m.unwrap();
        assert_eq!(u16::from(m.response_code()), rcode::BADCOOKIE);
        assert!(!m.truncated() && !m.authoritative() && m.answers().is_empty());
        let mut slip = vec![0; 4096];
        let r2 = respond(&q, &ctx, &snap, &mut slip).unwrap();
        let len = truncate(&mut slip, &r2).unwrap();
        assert_eq!(&slip[len - 28..len], &option[..], "the cookie option kept");

        // Presenting the server cookie: never limited.
        let mut with_server = option.clone();
        with_server[2..4].copy_from_slice(&24u16.to_be_bytes());
        let q = query("www.example.com.", rtype::A, Some(&with_server));
        let r = respond(&q, &ctx, &snap, &mut out).unwrap();
        assert_eq!(r.cookie, CookieStatus::Valid);
        assert_eq!(burst(&rrl, 1, "198.51.100.1", &r, 50), (50, 0, 0));
        // From another address the same cookie is worth nothing.
        let elsewhere = QueryContext {
            client: "203.0.113.9:53".parse().unwrap(),
            ..ctx
        };
        // It is answered as a client cookie alone, limited like one, and
        // what slips is BADCOOKIE.
        let r = respond(&q, &elsewhere, &snap, &mut out).unwrap();
        assert_eq!(r.cookie, CookieStatus::Invalid);
        assert_eq!((r.rcode, r.class), (rcode::NOERROR, ResponseClass::Answer));
        assert_eq!(burst(&rrl, 1, "203.0.113.9", &r, 8), (5, 0, 3));
        let len = truncate(&mut out, &r).unwrap();
        let m = Message::from_vec(&out[..len]).unwrap();
        assert_eq!(u16::from(m.response_code()), rcode::BADCOOKIE);
    }

    #[test]
    fn mutated_responses_never_panic_truncate() {
        let (snap, ctx) = example();
        let seeds: Vec<(Vec<u8>, Report)> = [
            query("www.example.com.", rtype::A, Some(&[])),
            query("x.example.com.", rtype::A, None),
            query(
                "a.lab.example.com.",
                rtype::A,
                Some(&[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]),
            ),
        ]
        .iter()
        .map(|q| {
            let mut out = vec![0; 4096];
            let r = respond(q, &ctx, &snap, &mut out).unwrap();
            out.truncate(r.len);
            (out, r)
        })
        .collect();
        // xorshift: reproducible without a dependency.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let (msg, report) = &seeds[round % seeds.len()];
            let mut msg = msg.clone();
            for _ in 0..(next() % 4) {
                let at = next() as usize % msg.len();
                msg[at] = next() as u8;
            }
            msg.truncate(next() as usize % (msg.len() + 1));
            let len = msg.len();
            if let Some(short) = truncate(&mut msg, report) {
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

        let (snap, ctx) = example();
        let q = query("www.example.com.", rtype::A, None);
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
        let reply = respond(&q, &ctx, &snap, &mut out).unwrap();
        // Many clients, so the table is touched all over as in service.
        let check = time(&mut |i| {
            let client = IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, 0]);
            black_box(rrl.check(i >> 20, client, black_box(&reply)));
        });
        let one_client = time(&mut |i| {
            black_box(rrl.check(i >> 20, ip("192.0.2.1"), black_box(&reply)));
        });
        eprintln!(
            "engine {engine:.0} ns/query; \
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
