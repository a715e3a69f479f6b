//! Longest-prefix-match tables that also say how far an answer reaches.
//!
//! Subnet routing (and, later, geographic routing) maps client networks to
//! answers. Besides the answer, RFC 7871 §7.2.1 wants the *scope*: how many
//! leading bits of the client address the answer depended on. A scope too
//! long fragments resolver caches; one too short makes a resolver give one
//! network's answer to another.
//!
//! A [`PrefixTable`] is built at load time from CIDR prefixes, each with a
//! value. It flattens them into sorted, disjoint runs of addresses that
//! share one value (neighbouring runs with equal values merged), so a
//! lookup is one binary search. The scope for a client is then the shortest
//! prefix whose aligned block around the client stays inside its run: the
//! block must leave out the address just before the run and the one just
//! after it, which takes one more bit than each shares with the client.

use std::net::IpAddr;

/// An address family's table: run starts and their values, sorted.
#[derive(Debug, Clone)]
struct Runs<K, V> {
    /// First address of each run; `starts[0]` is 0, so every address is in
    /// exactly one run.
    starts: Box<[K]>,
    /// The value of each run.
    values: Box<[V]>,
    /// For large tables, the run holding the first address of each block
    /// of [`BUCKETS`] (the top 16 bits of an address); empty otherwise. A
    /// lookup then searches the few runs inside one block instead of all
    /// of them: a GeoLite2-City table has millions of IPv4 runs.
    index: Box<[u32]>,
}

/// Blocks of the first-level index: the top 16 bits of an address.
const BUCKET_BITS: u8 = 16;
/// Tables with more runs than this get an index; smaller ones are searched
/// whole, faster than touching a 256 KiB index.
const INDEX_ABOVE: usize = 4096;

/// The integer a run start is stored as: `u32` for IPv4 (a GeoLite2-City
/// table has millions of IPv4 runs; a quarter of the room of `u128`),
/// `u128` for IPv6.
pub trait RunKey: Copy + Ord + std::fmt::Debug + sealed::Sealed {
    /// The family's address width in bits.
    const BITS: u8;
    /// The key of an address integer of this family (from [`to_key`]).
    fn narrow(key: u128) -> Self;
    /// The address integer.
    fn wide(self) -> u128;
}

mod sealed {
    /// Only the two address widths are run keys.
    pub trait Sealed {}
    impl Sealed for u32 {}
    impl Sealed for u128 {}
}

impl RunKey for u32 {
    const BITS: u8 = 32;
    #[inline]
    fn narrow(key: u128) -> u32 {
        // Truncation is exact: IPv4 keys fit 32 bits (`to_key`).
        key as u32
    }
    #[inline]
    fn wide(self) -> u128 {
        u128::from(self)
    }
}

impl RunKey for u128 {
    const BITS: u8 = 128;
    #[inline]
    fn narrow(key: u128) -> u128 {
        key
    }
    #[inline]
    fn wide(self) -> u128 {
        self
    }
}

/// A CIDR prefix: network address and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    /// The network, host bits zero.
    pub network: IpAddr,
    /// Leading bits that count.
    pub len: u8,
}

/// Why a prefix could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// Not `ADDRESS/LENGTH`.
    #[error("{0:?} is not ADDRESS/LENGTH")]
    Syntax(String),
    /// Length past the family's width.
    #[error("prefix length {len} is longer than {max}")]
    TooLong {
        /// The length given.
        len: u8,
        /// 32 or 128.
        max: u8,
    },
    /// Bits set past the length, which usually means a typo.
    #[error("{0} has bits set past its prefix length (did you mean {1}?)")]
    HostBits(String, String),
}

impl std::str::FromStr for Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Prefix, PrefixError> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| PrefixError::Syntax(s.into()))?;
        let network: IpAddr = addr.parse().map_err(|_| PrefixError::Syntax(s.into()))?;
        let len: u8 = len.parse().map_err(|_| PrefixError::Syntax(s.into()))?;
        let max = width(network);
        if len > max {
            return Err(PrefixError::TooLong { len, max });
        }
        let prefix = Prefix { network, len };
        let masked = prefix.masked();
        if masked.network != network {
            return Err(PrefixError::HostBits(s.into(), masked.to_string()));
        }
        Ok(prefix)
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

impl Prefix {
    /// The prefix of `len` bits (at most the family's width) around `address`.
    pub fn around(address: IpAddr, len: u8) -> Prefix {
        Prefix {
            network: address,
            len: len.min(width(address)),
        }
        .masked()
    }

    /// The same prefix with its host bits cleared.
    pub fn masked(self) -> Prefix {
        let bits = width(self.network);
        let key = to_key(self.network) & mask(bits, self.len);
        Prefix {
            network: from_key(key, bits),
            len: self.len,
        }
    }

    /// Whether `address` lies inside this prefix.
    pub fn contains(&self, address: IpAddr) -> bool {
        let bits = width(self.network);
        width(address) == bits
            && (to_key(address) ^ to_key(self.network)) & mask(bits, self.len) == 0
    }
}

/// A longest-prefix-match table per address family, built once at load.
#[derive(Debug, Clone)]
pub struct PrefixTable<V> {
    v4: Runs<u32, V>,
    v6: Runs<u128, V>,
}

/// Builds a [`PrefixTable`].
#[derive(Debug)]
pub struct PrefixTableBuilder<V> {
    entries: Vec<(Prefix, V)>,
}

impl<V> Default for PrefixTableBuilder<V> {
    fn default() -> Self {
        PrefixTableBuilder {
            entries: Vec::new(),
        }
    }
}

impl<V: Clone + PartialEq> PrefixTableBuilder<V> {
    /// Adds a prefix; a longer prefix inside a shorter one wins over it.
    /// When the same prefix is added twice, the last one wins (callers that
    /// must refuse duplicates check before).
    pub fn insert(&mut self, prefix: Prefix, value: V) {
        self.entries.push((prefix.masked(), value));
    }

    /// Flattens the prefixes into runs; addresses no prefix covers get
    /// `default`. `merge` decides the value of an address covered by
    /// several prefixes from their values, most specific first (subnet
    /// routing keeps all of them as a fallback chain).
    pub fn build(self, default: V, merge: impl Fn(&[&V]) -> V) -> PrefixTable<V> {
        let (v4, v6): (Vec<_>, Vec<_>) = self
            .entries
            .into_iter()
            .partition(|(p, _)| p.network.is_ipv4());
        PrefixTable {
            v4: Runs::build(v4, &default, &merge),
            v6: Runs::build(v6, &default, &merge),
        }
    }
}

impl<K: RunKey, V: Clone + PartialEq> Runs<K, V> {
    fn build(
        mut entries: Vec<(Prefix, V)>,
        default: &V,
        merge: &impl Fn(&[&V]) -> V,
    ) -> Runs<K, V> {
        let bits = K::BITS;
        // Every prefix boundary splits the space; within two neighbouring
        // boundaries the set of covering prefixes is constant.
        let mut cuts: Vec<u128> = vec![0];
        for (p, _) in &entries {
            let (lo, hi) = span(to_key(p.network), bits, p.len);
            cuts.push(lo);
            if hi < max_key(bits) {
                cuts.push(hi + 1);
            }
        }
        cuts.sort_unstable();
        cuts.dedup();
        // Longest first, so the covering list of an interval comes out
        // most specific first; stable, so later duplicates stay later.
        entries.sort_by_key(|e| std::cmp::Reverse(e.0.len));
        let mut starts: Vec<K> = Vec::with_capacity(cuts.len());
        let mut values: Vec<V> = Vec::with_capacity(cuts.len());
        let mut covering: Vec<&V> = Vec::new();
        for &start in &cuts {
            covering.clear();
            covering.extend(
                entries
                    .iter()
                    .filter(|(p, _)| {
                        let (lo, hi) = span(to_key(p.network), bits, p.len);
                        (lo..=hi).contains(&start)
                    })
                    .map(|(_, v)| v),
            );
            let value = if covering.is_empty() {
                default.clone()
            } else {
                merge(&covering)
            };
            if values.last() != Some(&value) {
                starts.push(K::narrow(start));
                values.push(value);
            }
        }
        Runs::new(starts.into(), values.into())
    }
}

impl<K: RunKey, V> Runs<K, V> {
    /// Runs from their starts (the first 0) and values, indexed when large.
    fn new(starts: Box<[K]>, values: Box<[V]>) -> Runs<K, V> {
        let index = if starts.len() > INDEX_ABOVE {
            let shift = K::BITS - BUCKET_BITS;
            (0..=1u128 << BUCKET_BITS)
                .map(|b| {
                    // The entry past the last block stands for the space's
                    // last address.
                    let first = match b < 1 << BUCKET_BITS {
                        true => K::narrow(b << shift),
                        false => K::narrow(max_key(K::BITS)),
                    };
                    // Fits: a table never has 2^32 runs.
                    (starts.partition_point(|&s| s <= first) - 1) as u32
                })
                .collect()
        } else {
            Box::default()
        };
        Runs {
            starts,
            values,
            index,
        }
    }

    #[inline]
    fn lookup(&self, key: u128, source_prefix: u8) -> (&V, u8) {
        let narrow = K::narrow(key);
        // The run holding `key` lies between the runs holding its block's
        // first address and the next block's (the last entry covers the
        // end of the space).
        let (lo, hi) = match self.index.is_empty() {
            true => (0, self.starts.len()),
            false => {
                let b = (key >> (K::BITS - BUCKET_BITS)) as usize;
                (self.index[b] as usize, self.index[b + 1] as usize + 1)
            }
        };
        // `starts[lo]` is at most the key, so the partition point is at
        // least 1.
        let i = lo + self.starts[lo..hi].partition_point(|&s| s <= narrow) - 1;
        let lo = self.starts[i].wide();
        let hi = self.starts.get(i + 1).map(|&s| s.wide() - 1);
        let mut scope = 0;
        if lo > 0 {
            scope = scope.max(common_bits(key, lo - 1, K::BITS) + 1);
        }
        if let Some(hi) = hi {
            scope = scope.max(common_bits(key, hi + 1, K::BITS) + 1);
        }
        (&self.values[i], scope.min(source_prefix))
    }
}

impl<K: RunKey, V> Runs<K, V> {
    fn map<W: PartialEq>(&self, f: &impl Fn(&V) -> W) -> Runs<K, W> {
        let mut starts: Vec<K> = Vec::new();
        let mut values: Vec<W> = Vec::new();
        for (&start, value) in self.starts.iter().zip(self.values.iter()) {
            let value = f(value);
            if values.last() != Some(&value) {
                starts.push(start);
                values.push(value);
            }
        }
        Runs::new(starts.into(), values.into())
    }
}

impl<K: RunKey, V> Runs<K, V> {
    /// Both tables walked together: a run for every stretch where neither
    /// changes, valued `f(self's value, other's value)`, equal neighbours
    /// merged. Linear in the runs of the two.
    fn zip<W, X: PartialEq>(
        &self,
        other: &Runs<K, W>,
        f: &mut impl FnMut(&V, &W) -> X,
    ) -> Runs<K, X> {
        let mut starts: Vec<K> = Vec::new();
        let mut values: Vec<X> = Vec::new();
        let (mut i, mut j) = (0, 0);
        // Both start at address 0; each step moves to the nearer next start.
        loop {
            let start = self.starts[i].max(other.starts[j]);
            let value = f(&self.values[i], &other.values[j]);
            if values.last() != Some(&value) {
                starts.push(start);
                values.push(value);
            }
            match (self.starts.get(i + 1), other.starts.get(j + 1)) {
                (None, None) => break,
                (Some(a), Some(b)) if a == b => (i, j) = (i + 1, j + 1),
                (Some(a), Some(b)) if a < b => i += 1,
                (Some(_), None) => i += 1,
                _ => j += 1,
            }
        }
        Runs::new(starts.into(), values.into())
    }
}

/// Builds one family's runs from disjoint networks given in address order
/// (as an mmdb tree walk yields them), in time linear in their number:
/// the gaps between them get the default, and neighbours with equal values
/// merge. A GeoLite2-City database has millions of networks, too many for
/// [`PrefixTableBuilder`]'s general (overlapping) construction.
#[derive(Debug)]
pub struct SortedRuns<K, V> {
    starts: Vec<K>,
    values: Vec<V>,
    /// First address not covered yet.
    next: u128,
    default: V,
    /// Set once the last address is covered (`next` cannot say it).
    full: bool,
}

/// Why [`SortedRuns::push`] refused a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("network {0} overlaps or precedes the one before")]
pub struct OutOfOrder(pub Prefix);

impl<K: RunKey, V: Clone + PartialEq> SortedRuns<K, V> {
    /// An empty builder for the family of `K` (`u32`: IPv4, `u128`: IPv6).
    pub fn new(default: V) -> SortedRuns<K, V> {
        SortedRuns {
            starts: Vec::new(),
            values: Vec::new(),
            next: 0,
            default,
            full: false,
        }
    }

    /// Adds the next network, which must start at or after the end of the
    /// one before.
    pub fn push(&mut self, network: Prefix, value: V) -> Result<(), OutOfOrder> {
        let (lo, hi) = span(to_key(network.network), K::BITS, network.len);
        if self.full || lo < self.next || width(network.network) != K::BITS {
            return Err(OutOfOrder(network));
        }
        if lo > self.next {
            let default = self.default.clone();
            self.run(self.next, default);
        }
        self.run(lo, value);
        match hi.checked_add(1).filter(|&n| n <= max_key(K::BITS)) {
            Some(n) => self.next = n,
            None => self.full = true,
        }
        Ok(())
    }

    fn run(&mut self, start: u128, value: V) {
        if self.values.last() != Some(&value) {
            self.starts.push(K::narrow(start));
            self.values.push(value);
        }
    }

    fn finish(mut self) -> Runs<K, V> {
        if !self.full {
            let default = self.default.clone();
            self.run(self.next, default);
        }
        Runs::new(self.starts.into(), self.values.into())
    }
}

impl<V: Clone + PartialEq> PrefixTable<V> {
    /// A table from the runs of each family.
    pub fn from_sorted(v4: SortedRuns<u32, V>, v6: SortedRuns<u128, V>) -> PrefixTable<V> {
        PrefixTable {
            v4: v4.finish(),
            v6: v6.finish(),
        }
    }
}

impl<V> PrefixTable<V> {
    /// The value for `address`, and the scope: the fewest leading bits of
    /// `address` that decide it, never more than `source_prefix` (the bits
    /// the resolver disclosed, RFC 7871 §7.2.1).
    pub fn lookup(&self, address: IpAddr, source_prefix: u8) -> (&V, u8) {
        match address {
            IpAddr::V4(a) => self.v4.lookup(u128::from(u32::from(a)), source_prefix),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a), source_prefix),
        }
    }

    /// [`lookup`](Self::lookup), with IPv4 clients written in IPv6 (see
    /// [`embedded_ipv4`]) looked up as the IPv4 clients they are; the scope
    /// is then in IPv6 terms again. Location databases keep these blocks
    /// only as aliases of their IPv4 tree, so without this such clients
    /// would all land in one unplaced block.
    #[inline]
    pub fn lookup_embedded(&self, address: IpAddr, source_prefix: u8) -> (&V, u8) {
        match embedded_ipv4(address, source_prefix) {
            Some((v4, v4_source, above)) => {
                let (value, scope) = self.lookup(v4, v4_source);
                (value, scope + above)
            }
            None => self.lookup(address, source_prefix),
        }
    }

    /// The same table with every value mapped through `f`, neighbouring
    /// runs that map to equal values merged. Scopes then widen to what the
    /// new values tell apart: a geo table of locations mapped to one
    /// service's answers gives that service's scopes (RFC 7871 §7.2.1:
    /// the bits the answer, not the location, depended on).
    pub fn map<W: PartialEq>(&self, f: impl Fn(&V) -> W) -> PrefixTable<W> {
        PrefixTable {
            v4: self.v4.map(&f),
            v6: self.v6.map(&f),
        }
    }

    /// This table laid over `other`: every address gets `f(its value here,
    /// its value there)`. Scopes stay exact, since a run ends wherever
    /// either table's does (e.g. an operator's prefix overrides laid over
    /// a geo table's networks).
    pub fn zip<W, X: PartialEq>(
        &self,
        other: &PrefixTable<W>,
        mut f: impl FnMut(&V, &W) -> X,
    ) -> PrefixTable<X> {
        PrefixTable {
            v4: self.v4.zip(&other.v4, &mut f),
            v6: self.v6.zip(&other.v6, &mut f),
        }
    }

    /// How many runs the two families hold (load-time statistics).
    pub fn runs(&self) -> usize {
        self.v4.starts.len() + self.v6.starts.len()
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:0:0/96`, RFC 4291
/// §2.5.5.2) or 6to4 (`2002::/16`, RFC 3056) IPv6 address, with the bits of
/// it the source prefix discloses and the bits above it. `None` for other
/// addresses, and when the prefix stops before the IPv4 part starts.
pub fn embedded_ipv4(address: IpAddr, source_prefix: u8) -> Option<(IpAddr, u8, u8)> {
    let IpAddr::V6(v6) = address else {
        return None;
    };
    let bits = u128::from(v6);
    let (v4, above) = if bits >> 32 == 0xffff {
        (bits as u32, 96)
    } else if bits >> 112 == 0x2002 {
        ((bits >> 80) as u32, 16)
    } else {
        return None;
    };
    let disclosed = source_prefix.checked_sub(above)?.min(32);
    Some((IpAddr::V4(v4.into()), disclosed, above))
}

/// Address width of the family.
pub fn width(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The address as an integer in the low `width` bits.
pub fn to_key(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_key(key: u128, bits: u8) -> IpAddr {
    if bits == 32 {
        IpAddr::V4((key as u32).into())
    } else {
        IpAddr::V6(key.into())
    }
}

fn max_key(bits: u8) -> u128 {
    u128::MAX >> (128 - u32::from(bits))
}

/// The mask of the first `len` of `bits` bits.
fn mask(bits: u8, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        // `checked_shr`: a full-length prefix (/32, /128) keeps every bit.
        max_key(bits) & !max_key(bits).checked_shr(u32::from(len)).unwrap_or(0)
    }
}

/// First and last address of a prefix.
fn span(key: u128, bits: u8, len: u8) -> (u128, u128) {
    let m = mask(bits, len);
    (key & m, (key & m) | (max_key(bits) & !m))
}

/// How many leading bits two addresses of `bits` width share.
fn common_bits(a: u128, b: u128, bits: u8) -> u8 {
    ((a ^ b).leading_zeros() - (128 - u32::from(bits))).min(u32::from(bits)) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table(entries: &[(&str, u32)]) -> PrefixTable<u32> {
        let mut b = PrefixTableBuilder::default();
        for &(prefix, v) in entries {
            b.insert(p(prefix), v);
        }
        b.build(0, |vs| *vs[0])
    }

    /// The brute-force scope: the shortest prefix around the address whose
    /// every address gets the same value (checked at the block's ends and at
    /// every configured boundary inside it).
    fn brute_scope(t: &PrefixTable<u32>, entries: &[(&str, u32)], a: IpAddr) -> u8 {
        let want = *t.lookup(a, 128).0;
        (0..=width(a))
            .find(|&len| {
                let block = Prefix::around(a, len);
                let (lo, hi) = span(to_key(block.network), width(a), len);
                let bits = width(a);
                let mut probes = vec![lo, hi];
                for &(e, _) in entries {
                    let e = p(e);
                    if e.network.is_ipv4() == a.is_ipv4() {
                        let (elo, ehi) = span(to_key(e.network), bits, e.len);
                        for k in [elo, ehi, elo.wrapping_sub(1), ehi.wrapping_add(1)] {
                            if (lo..=hi).contains(&k) {
                                probes.push(k);
                            }
                        }
                    }
                }
                probes
                    .iter()
                    .all(|&k| *t.lookup(from_key(k, bits), 128).0 == want)
            })
            .unwrap()
    }

    #[test]
    fn longest_prefix_wins_and_scope_is_the_matched_range() {
        let entries = [("10.0.0.0/8", 1), ("10.1.0.0/16", 2)];
        let t = table(&entries);
        assert_eq!(t.lookup(ip("10.1.2.3"), 32), (&2, 16));
        // 10.2.0.0/15 is the widest block around it that leaves 10.1/16 out.
        assert_eq!(t.lookup(ip("10.2.2.3"), 32), (&1, 15));
        assert_eq!(t.lookup(ip("10.128.0.1"), 32), (&1, 9));
        assert_eq!(t.lookup(ip("11.0.0.1"), 32), (&0, 8));
        assert_eq!(t.lookup(ip("192.0.2.1"), 32), (&0, 1));
        // Never longer than what the resolver disclosed.
        assert_eq!(t.lookup(ip("10.1.0.0"), 12), (&2, 12));
        // No IPv6 prefix: every IPv6 client shares one answer.
        assert_eq!(t.lookup(ip("2001:db8::1"), 56), (&0, 0));
    }

    #[test]
    fn sorted_networks_build_the_same_table() {
        let nets = [
            ("10.0.0.0/9", 1),
            ("10.128.0.0/9", 1),
            ("11.0.0.0/16", 2),
            ("255.0.0.0/8", 3),
        ];
        let mut v4 = SortedRuns::<u32, _>::new(0);
        for &(n, v) in &nets {
            v4.push(p(n), v).unwrap();
        }
        assert_eq!(
            v4.push(p("11.0.0.0/24"), 9),
            Err(OutOfOrder(p("11.0.0.0/24")))
        );
        let sorted = PrefixTable::from_sorted(v4, SortedRuns::new(0));
        let general = table(&nets);
        for a in [
            "10.1.2.3",
            "10.200.0.1",
            "11.0.1.1",
            "11.1.0.0",
            "9.9.9.9",
            "255.1.1.1",
            "254.0.0.1",
        ] {
            assert_eq!(sorted.lookup(ip(a), 32), general.lookup(ip(a), 32), "{a}");
        }
        assert_eq!(sorted.runs(), general.runs());
    }

    #[test]
    fn mapping_values_merges_runs_and_widens_scopes() {
        let t = table(&[("10.0.0.0/9", 1), ("10.128.0.0/9", 2), ("2001:db8::/32", 3)]);
        assert_eq!(t.lookup(ip("10.1.0.0"), 32), (&1, 9));
        // 1 and 2 become one answer: one /8 run.
        let m = t.map(|&v| v != 0);
        assert_eq!(m.lookup(ip("10.1.0.0"), 32), (&true, 8));
        assert_eq!(m.lookup(ip("10.200.0.0"), 32), (&true, 8));
        assert_eq!(m.lookup(ip("11.0.0.1"), 32), (&false, 8));
        assert_eq!(m.lookup(ip("2001:db8::1"), 64), (&true, 32));
        assert_eq!(m.runs(), t.runs() - 1);
        // Everything one value: nothing to tell apart.
        let all = t.map(|_| ());
        assert_eq!(all.lookup(ip("10.1.0.0"), 32), (&(), 0));
        assert_eq!(all.runs(), 2);
    }

    #[test]
    fn zipped_tables_answer_and_scope_as_one_table() {
        // A "geo" table and operator overrides inside and across its runs;
        // laid over it, every address answers as the table built from all
        // the prefixes at once (overrides most specific), scopes included.
        let base = [("10.0.0.0/8", 1), ("10.1.0.0/16", 2), ("2001:db8::/32", 3)];
        let over = [
            ("10.1.2.0/24", 10),
            ("10.0.0.0/9", 11),
            ("11.0.0.0/8", 12),
            ("2001:db8:1::/48", 13),
        ];
        let zipped = table(&base).zip(&table(&over), |&b, &o| if o != 0 { o } else { b });
        let mut all = PrefixTableBuilder::default();
        for &(prefix, v) in base.iter().chain(&over) {
            all.insert(p(prefix), v);
        }
        // Overrides win over base prefixes of any length.
        let oracle = all.build(0, |vs| **vs.iter().find(|v| ***v >= 10).unwrap_or(&vs[0]));
        for a in [
            "10.1.2.3",
            "10.1.3.1",
            "10.0.0.1",
            "10.127.255.255",
            "10.128.0.1",
            "10.200.0.1",
            "11.1.1.1",
            "12.0.0.1",
            "9.255.255.255",
            "0.0.0.0",
            "255.255.255.255",
            "2001:db8:1::1",
            "2001:db8:2::1",
            "2001:db9::1",
            "::",
        ] {
            assert_eq!(zipped.lookup(ip(a), 128), oracle.lookup(ip(a), 128), "{a}");
        }
        assert_eq!(zipped.lookup(ip("10.1.2.3"), 32), (&10, 24));
        assert_eq!(zipped.runs(), oracle.runs());
    }

    #[test]
    fn ipv4_written_in_ipv6_is_looked_up_as_ipv4() {
        let entries = [("10.1.0.0/16", 2), ("2002::/16", 9)];
        let t = table(&entries);
        // Mapped: the IPv4 answer, scope 96 + the IPv4 scope, capped by
        // the source prefix.
        assert_eq!(t.lookup_embedded(ip("::ffff:10.1.2.3"), 128), (&2, 112));
        assert_eq!(t.lookup_embedded(ip("::ffff:10.1.2.0"), 104), (&2, 104));
        assert_eq!(t.lookup_embedded(ip("::ffff:192.0.2.1"), 120), (&0, 97));
        // 6to4: the IPv4 address is bits 16..48.
        assert_eq!(t.lookup_embedded(ip("2002:a01:203::1"), 56), (&2, 32));
        // A prefix that ends before the IPv4 part: an IPv6 lookup.
        assert_eq!(
            t.lookup_embedded(ip("2002::1"), 8),
            t.lookup(ip("2002::1"), 8)
        );
        assert_eq!(
            t.lookup_embedded(ip("::ffff:10.1.2.3"), 64),
            t.lookup(ip("::ffff:10.1.2.3"), 64)
        );
        // Other IPv6 addresses and IPv4 as before.
        assert_eq!(
            t.lookup_embedded(ip("2001:db8::1"), 56),
            t.lookup(ip("2001:db8::1"), 56)
        );
        assert_eq!(t.lookup_embedded(ip("10.1.2.3"), 24), (&2, 16));
    }

    #[test]
    fn indexed_lookups_match_a_whole_search() {
        // Tables past INDEX_ABOVE runs, both families, runs spread
        // unevenly (dense low blocks, sparse high ones, one run across
        // many blocks): every lookup agrees with a search of all runs.
        fn check<K: RunKey>(starts: Vec<K>) {
            let values: Vec<u32> = (0..starts.len() as u32).collect();
            let indexed = Runs::new(starts.clone().into(), values.clone().into());
            assert!(!indexed.index.is_empty());
            let whole = Runs {
                starts: starts.clone().into(),
                values: values.into(),
                index: Box::default(),
            };
            let mut probes: Vec<u128> = vec![0, max_key(K::BITS)];
            for s in &starts {
                let s = s.wide();
                probes.extend([
                    s,
                    s.saturating_sub(1),
                    s.saturating_add(1).min(max_key(K::BITS)),
                ]);
            }
            for shift in 0..K::BITS {
                probes.push((1u128 << shift) - 1);
                probes.push(1u128 << shift);
            }
            for k in probes {
                for source in [K::BITS, K::BITS / 2, 8] {
                    assert_eq!(indexed.lookup(k, source), whole.lookup(k, source), "{k:#x}");
                }
            }
        }
        let v4: Vec<u32> = std::iter::once(0)
            .chain((1..6000u32).map(|i| i * 97))
            .chain((0..200u32).map(|i| 0x8000_0000 + i * 0x0040_0000))
            .chain([0xffff_fff0, 0xffff_ffff])
            .collect();
        check(v4);
        let v6: Vec<u128> = std::iter::once(0)
            .chain((1..5000u128).map(|i| (0x2001_0db8u128 << 96) + (i << 80)))
            .chain((0..100u128).map(|i| (0xfc00u128 << 112) + (i << 100)))
            .chain([u128::MAX])
            .collect();
        check(v6);
    }

    #[test]
    fn host_routes_match_exactly() {
        let t = table(&[("::1/128", 1), ("192.0.2.7/32", 2), ("::/0", 3)]);
        assert_eq!(t.lookup(ip("::1"), 128), (&1, 128));
        assert_eq!(t.lookup(ip("::2"), 128), (&3, 127));
        assert_eq!(t.lookup(ip("192.0.2.7"), 32), (&2, 32));
        assert_eq!(t.lookup(ip("192.0.2.6"), 32), (&0, 32));
        assert!(p("::1/128").contains(ip("::1")) && !p("::1/128").contains(ip("::2")));
    }

    #[test]
    fn neighbouring_ranges_with_one_answer_merge() {
        let t = table(&[("10.0.0.0/9", 1), ("10.128.0.0/9", 1)]);
        assert_eq!(t.lookup(ip("10.200.0.1"), 32), (&1, 8));
        assert_eq!(t.runs(), 3 + 1);
    }

    #[test]
    fn scope_matches_brute_force() {
        let entries = [
            ("10.0.0.0/8", 1),
            ("10.1.0.0/16", 2),
            ("10.1.128.0/17", 3),
            ("10.3.0.0/16", 2),
            ("192.0.2.0/24", 4),
            ("2001:db8::/32", 5),
            ("2001:db8:ff00::/40", 6),
        ];
        let t = table(&entries);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Cluster near the configured prefixes, where scopes are long.
            let a = match x % 4 {
                0 => IpAddr::V4(((10u32 << 24) | (x as u32 >> 14)).into()),
                1 => IpAddr::V4((x as u32).into()),
                2 => IpAddr::V6(((0x2001_0db8u128 << 96) | u128::from(x) << 56).into()),
                _ => IpAddr::V6((u128::from(x) << 64).into()),
            };
            let (_, scope) = t.lookup(a, width(a));
            assert_eq!(scope, brute_scope(&t, &entries, a), "{a}");
        }
    }

    #[test]
    fn prefixes_are_read_strictly() {
        assert_eq!(p("192.0.2.0/24").to_string(), "192.0.2.0/24");
        assert!(matches!(
            "192.0.2.1/24".parse::<Prefix>(),
            Err(PrefixError::HostBits(..))
        ));
        assert!(matches!(
            "192.0.2.0/33".parse::<Prefix>(),
            Err(PrefixError::TooLong { .. })
        ));
        assert!("192.0.2.0".parse::<Prefix>().is_err());
        assert!(p("::/0").contains(ip("2001:db8::1")));
        assert!(!p("::/0").contains(ip("192.0.2.1")));
        assert_eq!(Prefix::around(ip("192.0.2.77"), 24), p("192.0.2.0/24"));
    }
}
