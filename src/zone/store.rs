//! How a zone sits in memory: every node, its name and its pre-encoded
//! record sets back to back in one byte array, found through an
//! open-addressing index of (fingerprint, offset) pairs.
//!
//! Answering a query touches one index slot and then one node, whose name
//! and records lie next to each other: two or three cache lines, where a
//! node vector, a name store, a vector of sets and a buffer per set were
//! five or six lines fetched one after another. Between two queries the
//! kernel's UDP path evicts most of them, so each was a miss. A name that
//! is not in the zone (NXDOMAIN, the first try of a wildcard) costs the
//! slot alone: the slot's 32-bit fingerprint must match before the name is
//! read.
//!
//! A node at offset `at`:
//!
//! ```text
//! name length (u8) | name (lowercase wire) | flags (u8, bit 0: zone cut,
//! bit 1: a name other than `*.name` is a child) | service (u32,
//! u32::MAX: none) | wildcard child (u32: the offset of
//! the node `*.name`, u32::MAX: none) | set count (u16) | types (u16, one
//! bit per common type present) | sets, ordered by type
//! ```
//!
//! and a set: `type (u16) | TTL (u32) | data length (u32, top bit: glue
//! attached) | records, each behind its 2-byte big-endian length | file
//! (u16) | line (u32)`. Integers in the headers are little-endian; they are
//! ours, not wire format. The file and line come last so that the records
//! of the next set follow closely.
//!
//! The wildcard child spares a query for a name the zone does not hold a
//! third lookup: after the name and its closest encloser, the wildcard is
//! one offset away (RFC 4592 §3.3.1). Where the wildcard is its parent's
//! only child (`*.tm` of a traffic-manager name), the lookup starts at the
//! parent, which every such query shares: one cached slot and node instead
//! of a slot per name, most often a miss.

use std::hash::Hasher;

use rustc_hash::{FxHashMap, FxHasher};

/// The 32-bit fingerprint of a lowercase wire name. Its top bits choose the
/// index slot, the rest tells names in neighbouring slots apart. Fx is not
/// randomised, which is safe here: only the zone's own names go into the
/// index, so no query can make them collide.
pub(super) fn fingerprint(name: &[u8]) -> u32 {
    let mut h = FxHasher::default();
    h.write(name);
    let h = h.finish();
    // One more multiply spreads every bit of the hash into the top half.
    ((h ^ (h >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32
}

/// One index slot: a name's fingerprint beside the value it maps to, so
/// that a probe reads a single cache line of slots.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Slot {
    tag: u32,
    value: u32,
}

/// The value of an empty slot.
const EMPTY: u32 = u32::MAX;

/// Fewest slots an index has.
const MIN_SLOTS: usize = 16;

/// An open-addressing hash index (linear probing, at most half full, so
/// probes are short and always end at an empty slot) from fingerprints to
/// `u32` values: node numbers while a zone is built, node offsets after.
/// The slot follows from the fingerprint alone, so growing needs no name.
#[derive(Debug, Clone)]
pub(super) struct Index {
    slots: Box<[Slot]>,
    len: usize,
    /// log2 of the slot count.
    bits: u32,
}

impl Default for Index {
    fn default() -> Index {
        Index::with_slots(MIN_SLOTS)
    }
}

impl Index {
    fn with_slots(slots: usize) -> Index {
        Index {
            slots: vec![
                Slot {
                    tag: 0,
                    value: EMPTY
                };
                slots
            ]
            .into_boxed_slice(),
            len: 0,
            bits: slots.trailing_zeros(),
        }
    }

    fn home(&self, tag: u32) -> usize {
        (tag >> (32 - self.bits)) as usize
    }

    /// The value stored under `tag` for which `eq` holds.
    pub(super) fn find(&self, tag: u32, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        self.find_map(tag, |v| eq(v).then_some(v))
    }

    /// The first `Some` that `f` makes of a value stored under `tag`.
    pub(super) fn find_map<T>(&self, tag: u32, mut f: impl FnMut(u32) -> Option<T>) -> Option<T> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(tag);
        loop {
            let slot = self.slots[i];
            if slot.value == EMPTY {
                return None;
            }
            if slot.tag == tag {
                if let Some(found) = f(slot.value) {
                    return Some(found);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Starts loading the slot where a search for `tag` begins.
    pub(super) fn prefetch(&self, tag: u32) {
        if let Some(slot) = self.slots.get(self.home(tag)) {
            crate::sys::prefetch(slot);
        }
    }

    /// Adds a value the caller knows is not present yet; `value` must not
    /// be `u32::MAX`.
    pub(super) fn insert(&mut self, tag: u32, value: u32) {
        if (self.len + 1) * 2 > self.slots.len() {
            let old = std::mem::replace(self, Index::with_slots(self.slots.len() * 2));
            for slot in old.slots.iter().filter(|s| s.value != EMPTY) {
                self.place(*slot);
            }
            self.len = old.len;
        }
        self.place(Slot { tag, value });
        self.len += 1;
    }

    fn place(&mut self, slot: Slot) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(slot.tag);
        while self.slots[i].value != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    /// Replaces every value by `f(value)`.
    pub(super) fn map_values(&mut self, mut f: impl FnMut(u32) -> u32) {
        for slot in self.slots.iter_mut().filter(|s| s.value != EMPTY) {
            slot.value = f(slot.value);
        }
    }

    /// Bytes held.
    fn heap_size(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot>()
    }
}

/// Node header bytes after the name: flags, service, wildcard child, set
/// count, types.
const NODE_HEAD: usize = 13;
/// Where each field of the node header starts.
const HEAD_SERVICE: usize = 1;
const HEAD_WILDCARD: usize = 5;
const HEAD_COUNT: usize = 9;
const HEAD_TYPES: usize = 11;
/// Set header bytes before the records: type, TTL, data length.
const SET_HEAD: usize = 10;
/// Set trailer bytes after the records: file, line.
const SET_TAIL: usize = 6;
/// Flag bit of a zone cut.
const CUT: u8 = 1;
/// Flag bit of a node with a name other than its wildcard directly below.
const CHILDREN: u8 = 2;
/// Top bit of a set's data length: glue is attached.
const GLUE: u32 = 1 << 31;
/// "No service" in a node header.
const NO_SERVICE: u32 = u32::MAX;

/// The bit of a node's type summary for `rtype`: types 1 to 15 (A, NS,
/// CNAME, SOA, MX, ...) and AAAA, the ones asked for most, or 0 for a type
/// without one. The engine asks every node found for a CNAME first, and a
/// name without the type asked for answers NODATA; the summary answers
/// both without walking the sets.
fn type_bit(rtype: u16) -> u16 {
    match rtype {
        1..=15 => 1 << rtype,
        crate::rr::rtype::AAAA => 1,
        _ => 0,
    }
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    bytes
        .get(at..)
        .and_then(<[u8]>::first_chunk::<2>)
        .map_or(0, |b| u16::from_le_bytes(*b))
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..)
        .and_then(<[u8]>::first_chunk::<4>)
        .map_or(0, |b| u32::from_le_bytes(*b))
}

fn write_u32(bytes: &mut [u8], at: usize, value: u32) {
    if let Some(b) = bytes.get_mut(at..).and_then(<[u8]>::first_chunk_mut::<4>) {
        *b = value.to_le_bytes();
    }
}

/// The file (an index into the zone's files) and line of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetOrigin {
    /// Index into [`super::Zone::files`].
    pub file: u16,
    /// 1-based line number.
    pub line: u32,
}

/// An address set copied into the additional section after a set that
/// points at its owner: the target name as the pointing record spells it,
/// and where the address set is.
#[derive(Debug, Clone)]
pub(super) struct Glue {
    pub(super) target: Box<[u8]>,
    pub(super) set_at: u32,
}

/// Every node of a zone (see the module header for the layout).
#[derive(Default)]
pub(super) struct Store {
    bytes: Vec<u8>,
    index: Index,
    nodes: usize,
    /// The glue of each set whose flag says it has some, by set offset.
    glue: FxHashMap<u32, Box<[Glue]>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("nodes", &self.nodes)
            .field("bytes", &self.bytes.len())
            .field("index_bytes", &self.index.heap_size())
            .finish()
    }
}

/// Why a node or set could not be stored.
pub(super) const TOO_LARGE: &str = "the zone is too large (more than 4 GiB of names and records)";

impl Store {
    /// A store of `bytes` and an index whose values are already the nodes'
    /// offsets in it.
    pub(super) fn new(bytes: Vec<u8>, index: Index, nodes: usize) -> Store {
        Store {
            bytes,
            index,
            nodes,
            glue: FxHashMap::default(),
        }
    }

    /// An upper bound of the bytes a zone of these parts takes: names,
    /// headers, and every record in a set of its own.
    pub(super) fn capacity_for(
        name_bytes: usize,
        nodes: usize,
        records: usize,
        rdata: usize,
    ) -> usize {
        name_bytes + nodes * (1 + NODE_HEAD) + records * (SET_HEAD + SET_TAIL + 2) + rdata
    }

    /// Number of nodes.
    pub(super) fn len(&self) -> usize {
        self.nodes
    }

    /// The node at `name` (lowercase wire format).
    #[inline]
    pub(super) fn find(&self, name: &[u8]) -> Option<Node<'_>> {
        self.find_by_tag(name, fingerprint(name))
    }

    /// The node at `name`, whose fingerprint `tag` the caller has.
    #[inline]
    pub(super) fn find_by_tag(&self, name: &[u8], tag: u32) -> Option<Node<'_>> {
        self.index.find_map(tag, |at| {
            Node::read(self, at as usize).filter(|n| n.name == name)
        })
    }

    /// Starts loading the index slot where the node with fingerprint `tag`
    /// is looked up; see [`Store::prefetch_node`].
    pub(super) fn prefetch_slot(&self, tag: u32) {
        self.index.prefetch(tag);
    }

    /// Starts loading the first two cache lines of the node the index holds
    /// under `tag` (the first one, if two names share it): the name and
    /// the first sets, all that a typical answer reads. Reads the slot, so
    /// it pays off once [`Store::prefetch_slot`] had time to bring it in.
    pub(super) fn prefetch_node(&self, tag: u32) {
        if let Some(at) = self.index.find(tag, |_| true) {
            let at = at as usize;
            for line in [at, at + 64] {
                if let Some(byte) = self.bytes.get(line) {
                    crate::sys::prefetch(byte);
                }
            }
        }
    }

    /// Every node, in the order they were stored.
    pub(super) fn nodes(&self) -> impl Iterator<Item = Node<'_>> {
        let mut at = 0;
        std::iter::from_fn(move || {
            if at >= self.bytes.len() {
                return None;
            }
            let node = Node::read(self, at)?;
            at = node.end();
            Some(node)
        })
    }

    /// Appends a node without sets; returns its offset. The caller adds it
    /// to an index. `children`: a name other than `*.name` is directly
    /// below it.
    pub(super) fn push_node(
        bytes: &mut Vec<u8>,
        name: &[u8],
        cut: bool,
        children: bool,
    ) -> Result<u32, String> {
        let at = u32::try_from(bytes.len())
            .ok()
            .filter(|&at| at != EMPTY)
            .ok_or(TOO_LARGE)?;
        bytes.push(name.len() as u8);
        bytes.extend_from_slice(name);
        let mut flags = if cut { CUT } else { 0 };
        if children {
            flags |= CHILDREN;
        }
        bytes.push(flags);
        bytes.extend_from_slice(&NO_SERVICE.to_le_bytes());
        bytes.extend_from_slice(&EMPTY.to_le_bytes()); // wildcard child
        bytes.extend_from_slice(&0u16.to_le_bytes()); // sets
        bytes.extend_from_slice(&0u16.to_le_bytes()); // types
        Ok(at)
    }

    /// Appends a set to the node at `node` (the last one in `bytes`),
    /// with `records` already in their length-prefixed form.
    pub(super) fn push_set(
        bytes: &mut Vec<u8>,
        node: u32,
        rtype: u16,
        ttl: u32,
        records: &[u8],
        origin: SetOrigin,
    ) -> Result<(), String> {
        let len = u32::try_from(records.len())
            .ok()
            .filter(|l| l & GLUE == 0)
            .ok_or(TOO_LARGE)?;
        bytes.extend_from_slice(&rtype.to_le_bytes());
        bytes.extend_from_slice(&ttl.to_le_bytes());
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(records);
        bytes.extend_from_slice(&origin.file.to_le_bytes());
        bytes.extend_from_slice(&origin.line.to_le_bytes());
        let node = node as usize;
        let count_at = node + 1 + usize::from(bytes[node]) + HEAD_COUNT;
        let count = read_u16(bytes, count_at).checked_add(1).ok_or(TOO_LARGE)?;
        bytes[count_at..count_at + 2].copy_from_slice(&count.to_le_bytes());
        let types = read_u16(bytes, count_at + 2) | type_bit(rtype);
        bytes[count_at + 2..count_at + 4].copy_from_slice(&types.to_le_bytes());
        Ok(())
    }

    /// The offset of the node at `name`, created with every missing
    /// ancestor down to `apex_len` bytes as an empty non-terminal
    /// (RFC 8020, RFC 4592 §2.2.2), and whether it was created as the lone
    /// wildcard of its parent ([`Node::lone_wildcard`]).
    pub(super) fn get_or_insert(
        &mut self,
        name: &[u8],
        apex_len: usize,
    ) -> Result<(usize, bool), String> {
        if let Some(node) = self.find(name) {
            return Ok((node.at, false));
        }
        let at = self.insert(name)?;
        // Each name added is a child of the next one up, found or added in
        // turn; an ancestor that exists has all of its own already.
        let mut child = name;
        while let Some(p) = crate::name::parent_wire(child).filter(|p| p.len() >= apex_len) {
            let found = self.find(p).map(|n| n.at);
            let parent = match found {
                Some(parent) => parent,
                None => self.insert(p)?,
            };
            if crate::name::wildcard_parent_wire(child).is_none() {
                let flags = self.head_at(parent);
                self.bytes[flags] |= CHILDREN;
            }
            if found.is_some() {
                break;
            }
            child = p;
        }
        Ok((at, self.link_wildcard(at)))
    }

    /// When the node at `at` is a wildcard, `*.parent`, records it in its
    /// parent's header, where a lookup below the parent finds it; says
    /// whether it is the parent's only child. The parent exists: every
    /// name is stored with all its ancestors.
    pub(super) fn link_wildcard(&mut self, at: usize) -> bool {
        let Some(node) = Node::read(self, at) else {
            return false;
        };
        let Some(parent) = crate::name::wildcard_parent_wire(node.name) else {
            return false;
        };
        let Some(parent) = self.find(parent) else {
            return false;
        };
        let lone = parent.head[0] & CHILDREN == 0;
        let field = self.head_at(parent.at) + HEAD_WILDCARD;
        write_u32(&mut self.bytes, field, at as u32);
        lone
    }

    /// Where the header of the node at offset `at` starts, behind its name.
    fn head_at(&self, at: usize) -> usize {
        at + 1 + self.bytes.get(at).map_or(0, |&l| usize::from(l))
    }

    fn insert(&mut self, name: &[u8]) -> Result<usize, String> {
        let at = Store::push_node(&mut self.bytes, name, false, false)?;
        self.index.insert(fingerprint(name), at);
        self.nodes += 1;
        Ok(at as usize)
    }

    /// Makes the node at offset `at` answer A and AAAA through service `id`.
    pub(super) fn set_service(&mut self, at: usize, id: u32) {
        let field = self.head_at(at) + HEAD_SERVICE;
        write_u32(&mut self.bytes, field, id);
    }

    /// Attaches glue to the set at offset `at`.
    pub(super) fn set_glue(&mut self, at: u32, glue: Box<[Glue]>) {
        let len_at = at as usize + 6;
        let len = read_u32(&self.bytes, len_at);
        write_u32(&mut self.bytes, len_at, len | GLUE);
        self.glue.insert(at, glue);
    }

    /// Gives back the room left over from growing.
    pub(super) fn shrink(&mut self) {
        self.bytes.shrink_to_fit();
        self.glue.shrink_to_fit();
    }
}

/// Everything stored at one owner name: a view into the zone's store.
#[derive(Debug, Clone, Copy)]
pub struct Node<'z> {
    store: &'z Store,
    /// Offset of the node (its name length byte).
    at: usize,
    name: &'z [u8],
    head: &'z [u8; NODE_HEAD],
}

impl<'z> Node<'z> {
    /// The node at offset `at` of `store`, read once: its name, and the
    /// header behind it.
    fn read(store: &'z Store, at: usize) -> Option<Node<'z>> {
        let (len, rest) = store.bytes.get(at..)?.split_first()?;
        let (name, rest) = rest.split_at_checked(usize::from(*len))?;
        let (head, _) = rest.split_first_chunk::<NODE_HEAD>()?;
        Some(Node {
            store,
            at,
            name,
            head,
        })
    }

    /// Where the node starts in its zone's store.
    pub(super) fn at(&self) -> usize {
        self.at
    }

    /// The owner name in lowercase wire format.
    pub fn name(&self) -> &'z [u8] {
        self.name
    }

    /// Whether this node is a zone cut: NS records below the apex.
    pub fn cut(&self) -> bool {
        self.head[0] & CUT != 0
    }

    /// The service answering A and AAAA here, an index into the snapshot's
    /// services.
    pub fn service(&self) -> Option<u32> {
        Some(self.head_u32(HEAD_SERVICE)).filter(|&s| s != NO_SERVICE)
    }

    /// The wildcard child, `*.` this name, if the zone has it.
    pub fn wildcard(&self) -> Option<Node<'z>> {
        match self.head_u32(HEAD_WILDCARD) {
            EMPTY => None,
            at => Node::read(self.store, at as usize),
        }
    }

    /// The wildcard child when it is the only name directly below this
    /// one. Then every name below, apart from the wildcard and the names
    /// under it, does not exist and has this node as its closest encloser
    /// (RFC 4592 §3.3.1): a lookup can stop here.
    pub fn lone_wildcard(&self) -> Option<Node<'z>> {
        if self.head[0] & CHILDREN != 0 {
            return None;
        }
        self.wildcard()
    }

    fn head_u32(&self, at: usize) -> u32 {
        let field = [0, 1, 2, 3].map(|i| self.head[at + i]);
        u32::from_le_bytes(field)
    }

    /// Whether the node has no sets: an empty non-terminal, or a service
    /// name the zone file does not list.
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    fn count(&self) -> u16 {
        u16::from_le_bytes([self.head[HEAD_COUNT], self.head[HEAD_COUNT + 1]])
    }

    /// Offset of the first set.
    fn sets_at(&self) -> usize {
        self.at + 1 + self.name.len() + NODE_HEAD
    }

    /// The RRsets, ordered by type.
    pub fn sets(&self) -> impl Iterator<Item = RRset<'z>> + use<'z> {
        let store = self.store;
        let mut at = self.sets_at();
        (0..self.count()).map_while(move |_| {
            let set = RRset::read(store, at)?;
            at = set.end();
            Some(set)
        })
    }

    /// The RRset of `rtype`, if any. Sets are ordered by type, so the walk
    /// reads each set's type and length only, and stops at the first type
    /// past `rtype`.
    #[inline]
    pub fn get(&self, rtype: u16) -> Option<RRset<'z>> {
        let bit = type_bit(rtype);
        let types = u16::from_le_bytes([self.head[HEAD_TYPES], self.head[HEAD_TYPES + 1]]);
        if bit != 0 && types & bit == 0 {
            return None; // a common type that is not here: no walk
        }
        let mut at = self.sets_at();
        let mut rest = self.store.bytes.get(at..)?;
        for _ in 0..self.count() {
            let (head, _) = rest.split_first_chunk::<SET_HEAD>()?;
            let t = u16::from_le_bytes([head[0], head[1]]);
            if t >= rtype {
                return (t == rtype).then(|| RRset::read(self.store, at)).flatten();
            }
            let len = u32::from_le_bytes([head[6], head[7], head[8], head[9]]) & !GLUE;
            let size = SET_HEAD + len as usize + SET_TAIL;
            rest = rest.get(size..)?;
            at += size;
        }
        None
    }

    /// Offset just past the node's last set.
    fn end(&self) -> usize {
        self.sets().last().map_or(self.sets_at(), |s| s.end())
    }
}

/// A set of records sharing owner, class and type (RFC 2181 §5): a view
/// into the zone's store.
#[derive(Debug, Clone, Copy)]
pub struct RRset<'z> {
    store: &'z Store,
    at: usize,
    /// The record type.
    pub rtype: u16,
    /// One TTL for the set: the lowest in the file (RFC 2181 §5.2).
    pub ttl: u32,
    /// Each record's RDATA in uncompressed wire format, in file order, each
    /// behind its 2-byte length.
    data: &'z [u8],
    has_glue: bool,
}

impl<'z> RRset<'z> {
    /// The set at offset `at` of `store`.
    #[inline]
    fn read(store: &'z Store, at: usize) -> Option<RRset<'z>> {
        let (head, rest) = store.bytes.get(at..)?.split_first_chunk::<SET_HEAD>()?;
        let len = u32::from_le_bytes([head[6], head[7], head[8], head[9]]);
        Some(RRset {
            store,
            at,
            rtype: u16::from_le_bytes([head[0], head[1]]),
            ttl: u32::from_le_bytes([head[2], head[3], head[4], head[5]]),
            data: rest.get(..(len & !GLUE) as usize)?,
            has_glue: len & GLUE != 0,
        })
    }

    /// Each record's RDATA, in file order.
    pub fn records(&self) -> Records<'z> {
        Records { rest: self.data }
    }

    /// The first record's RDATA (the only one of a SOA or CNAME set).
    pub fn first(&self) -> &'z [u8] {
        self.records().next().unwrap_or_default()
    }

    /// Address sets for names this set points at (NS, MX and SRV targets
    /// inside the zone), for the additional section (RFC 1035 §3.3.*):
    /// each target as the record spells it, with one of its address sets.
    pub fn additional(&self) -> impl Iterator<Item = (&'z [u8], RRset<'z>)> + use<'z> {
        let store = self.store;
        let glue: &'z [Glue] = match self.has_glue {
            true => store
                .glue
                .get(&(self.at as u32))
                .map_or(&[][..], |g| &g[..]),
            false => &[],
        };
        glue.iter()
            .filter_map(move |g| Some((&g.target[..], RRset::read(store, g.set_at as usize)?)))
    }

    /// Where the set's first record was written.
    pub fn origin(&self) -> SetOrigin {
        let bytes = &self.store.bytes;
        let at = self.at + SET_HEAD + self.data.len();
        SetOrigin {
            file: read_u16(bytes, at),
            line: read_u32(bytes, at + 2),
        }
    }

    /// Offset of the set in the store.
    pub(super) fn offset(&self) -> u32 {
        self.at as u32
    }

    fn end(&self) -> usize {
        self.at + SET_HEAD + self.data.len() + SET_TAIL
    }
}

/// The records of an [`RRset`], as RDATA slices.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        let (rdata, rest) = rest.split_at_checked(len)?;
        self.rest = rest;
        Some(rdata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Growing keeps every value findable, and a fingerprint match alone
    /// is not enough: `eq` decides.
    #[test]
    fn index_finds_after_growing_and_asks_eq() {
        let mut index = Index::default();
        let names: Vec<Vec<u8>> = (0..1000u32)
            .map(|i| format!("\x04n{i:03}\0").into_bytes())
            .collect();
        for (i, n) in names.iter().enumerate() {
            index.insert(fingerprint(n), i as u32);
        }
        assert_eq!(index.slots.len(), 2048, "at most half full");
        for (i, n) in names.iter().enumerate() {
            let found = index.find(fingerprint(n), |v| names[v as usize] == *n);
            assert_eq!(found, Some(i as u32));
        }
        let n = &names[7];
        assert_eq!(index.find(fingerprint(n), |_| false), None);
        assert_eq!(index.find(fingerprint(b"\x01x\0"), |_| true), None);
    }
}
