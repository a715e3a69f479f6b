//! Zones: master files loaded into lookup tables of pre-encoded RRsets.
//!
//! A [`Zone`] maps every owner name, and every empty non-terminal between an
//! owner and the apex (RFC 8020 §2), to a [`Node`]. Names are stored in
//! lowercase wire format, so the engine looks a query name up with one hash
//! of its bytes. Everything a response needs from a record set (the RDATA, and
//! the addresses for the additional section) is prepared here, at load time,
//! and laid out next to its name (see `store` for the layout and why).

mod lex;
pub mod parse;
pub mod rdata;
mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::name::{parent_wire, wildcard_parent_wire, Name};
use crate::rr::{rtype, type_to_string, Location, Record};

use store::{Glue, Index, Store};
pub use store::{Node, RRset, Records, SetOrigin};

/// Why a zone could not be loaded. Displays as `file:line: message`.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    /// The master file could not be read or parsed.
    #[error(transparent)]
    Parse(#[from] parse::MasterFileError),
    /// The records parse but do not form a valid zone.
    #[error("{location}: {message}")]
    Invalid {
        /// The record at fault.
        location: Location,
        /// What is wrong with it.
        message: String,
    },
    /// The zone as a whole lacks something (no record to point at).
    #[error("{file}: zone {origin}: {message}")]
    Incomplete {
        /// The zone's master file.
        file: std::path::PathBuf,
        /// The zone's apex.
        origin: Name,
        /// What is missing.
        message: String,
    },
}

/// One record as loaded, before the zone is laid out: its RDATA is in the
/// builder's byte store.
#[derive(Debug, Clone, Copy)]
struct Loaded {
    node: u32,
    rdata_at: u32,
    ttl: u32,
    line: u32,
    rdata_len: u16,
    rtype: u16,
    file: u16,
}

/// One owner name while loading.
#[derive(Debug, Clone, Copy)]
struct Owner {
    name_at: u32,
    name_len: u8,
    /// [`Owner::SOA`] and [`Owner::CNAME`]: the types a name may hold
    /// once; [`Owner::CHILDREN`]: a name other than its wildcard is
    /// directly below.
    seen: u8,
}

impl Owner {
    const SOA: u8 = 1;
    const CNAME: u8 = 2;
    const CHILDREN: u8 = 4;
}

/// Appends `rdata` behind its 2-byte length. The parser never makes RDATA
/// longer than that field allows; a longer slice would be cut short.
fn append_record(data: &mut Vec<u8>, rdata: &[u8]) {
    let len = u16::try_from(rdata.len()).unwrap_or(u16::MAX);
    data.extend_from_slice(&len.to_be_bytes());
    data.extend_from_slice(rdata.get(..usize::from(len)).unwrap_or(rdata));
}

/// One zone, ready to answer from.
#[derive(Debug)]
pub struct Zone {
    /// The apex in lowercase wire format.
    pub apex: Name,
    /// Every name in the zone with its records.
    store: Store,
    /// The apex SOA's RDATA, owned for negative answers.
    pub soa: Box<[u8]>,
    /// TTL of the SOA in negative answers: min(SOA TTL, SOA MINIMUM)
    /// (RFC 2308 §3).
    pub negative_ttl: u32,
    /// Whether any zone cut exists, so lookups can skip the search for one.
    pub has_cuts: bool,
    /// Whether a node may have its wildcard as its only child
    /// ([`Node::lone_wildcard`]), so lookups can skip looking at the
    /// parent first. It may stay set after a service adds a sibling.
    pub has_lone_wildcards: bool,
    /// The master file and the files it includes, for [`SetOrigin::file`].
    pub files: Box<[Arc<Path>]>,
    /// Index of the snapshot's `ns_health` rule filtering the apex NS
    /// RRset, when the zone has `ns-health` (see `crate::ns_health`).
    pub ns_health: Option<u32>,
}

impl Zone {
    /// Loads and validates a master file for the zone at `origin`. Records
    /// go into the zone as they are parsed, so loading holds no list of them.
    pub fn load(origin: &Name, file: &Path) -> Result<Zone, ZoneError> {
        let mut builder = Builder::new(origin, file);
        parse::parse_file_into(file, origin, &mut |r| builder.add(&r))?;
        builder.finish()
    }

    /// Builds a zone from parsed records, checking the rules a zone must obey.
    pub fn from_records(
        origin: &Name,
        file: &Path,
        records: Vec<Record>,
    ) -> Result<Zone, ZoneError> {
        let mut builder = Builder::new(origin, file);
        for r in &records {
            builder.add(r).map_err(|message| ZoneError::Invalid {
                location: r.origin.clone(),
                message,
            })?;
        }
        builder.finish()
    }

    /// Makes `name` (lowercase, inside this zone) answer A and AAAA through
    /// service number `id`, creating the name if the zone file lacks it.
    /// Refused where the answer would be ambiguous or unreachable.
    pub fn attach_service(&mut self, name: &Name, id: u32) -> Result<(), String> {
        let wire = name.wire();
        let apex_len = self.apex.wire().len();
        let mut up = parent_wire(wire);
        while let Some(p) = up.filter(|p| p.len() > apex_len) {
            if self.node(p).is_some_and(|n| n.cut()) {
                return Err(format!(
                    "{name} is below the delegation at {}",
                    Name::from_wire_unchecked(p)
                ));
            }
            up = parent_wire(p);
        }
        let (at, lone) = self.store.get_or_insert(wire, apex_len)?;
        self.has_lone_wildcards |= lone;
        let node = self.node(wire).ok_or("the name could not be stored")?;
        if node.cut() {
            return Err(format!("{name} is a delegation point"));
        }
        if let Some(t) = [rtype::CNAME, rtype::A, rtype::AAAA]
            .into_iter()
            .find(|&t| node.get(t).is_some())
        {
            let t = type_to_string(t);
            return Err(format!(
                "{name} has {t} records in the zone file; the service answers for it"
            ));
        }
        self.store.set_service(at, id);
        Ok(())
    }

    /// The node at `name` (lowercase wire format), if the name exists.
    pub fn node(&self, name: &[u8]) -> Option<Node<'_>> {
        self.store.find(name)
    }

    /// The node at `name` (lowercase wire format), whose [`Zone::key`] the
    /// caller has: a name is hashed once per query, however often it is
    /// looked up.
    pub fn node_by_key(&self, name: &[u8], key: u32) -> Option<Node<'_>> {
        self.store.find_by_tag(name, key)
    }

    /// The key `name` (lowercase wire format) is looked up by in a zone's
    /// index.
    pub fn key(&self, name: &[u8]) -> u32 {
        store::fingerprint(name)
    }

    /// Starts loading the index slot where `name` (lowercase wire format)
    /// is looked up, and returns its [`Zone::key`], which
    /// [`Zone::prefetch_node`] and [`Zone::node_by_key`] take. Loads of
    /// several queries' slots overlap where lookups one after the other
    /// would each wait for memory.
    pub fn prefetch_slot(&self, name: &[u8]) -> u32 {
        let tag = self.key(name);
        self.store.prefetch_slot(tag);
        tag
    }

    /// Starts loading the node that a lookup of the name with this key
    /// finds, once its slot is in the cache.
    pub fn prefetch_node(&self, tag: u32) {
        self.store.prefetch_node(tag);
    }

    /// The wildcard that answers for `name` (lowercase wire format) and
    /// where its closest encloser starts in the name, when that wildcard
    /// is the only child of the name's parent ([`Node::lone_wildcard`])
    /// and `name` is not the wildcard itself. Such a name is not in the
    /// zone: looking at the parent, which all of them share, finds the
    /// answer without reading a slot of the name's own.
    pub fn lone_wildcard_for(&self, name: &[u8]) -> Option<(Node<'_>, usize)> {
        if !self.has_lone_wildcards || wildcard_parent_wire(name).is_some() {
            return None;
        }
        let parent = parent_wire(name)?;
        let node = self.node(parent)?.lone_wildcard()?;
        Some((node, name.len() - parent.len()))
    }

    /// Number of names, empty non-terminals included.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether the zone has no names (never true for a loaded zone).
    pub fn is_empty(&self) -> bool {
        self.store.len() == 0
    }

    /// `file:line` of a set's first record.
    pub fn location(&self, origin: SetOrigin) -> String {
        match self.files.get(usize::from(origin.file)) {
            Some(f) => format!("{}:{}", f.display(), origin.line),
            None => format!("?:{}", origin.line),
        }
    }
}

/// A zone being filled one record at a time, checked and laid out as a
/// whole at the end. It holds owner names back to back, a fixed-size entry
/// per record and the RDATA in one byte store: a few allocations for the
/// whole zone, so the load's peak memory stays near the result's.
struct Builder {
    apex: Name,
    file: PathBuf,
    files: Vec<Arc<Path>>,
    names: Vec<u8>,
    owners: Vec<Owner>,
    /// Fingerprint to owner number.
    index: Index,
    records: Vec<Loaded>,
    rdata: Vec<u8>,
}

impl Builder {
    fn new(origin: &Name, file: &Path) -> Builder {
        Builder {
            apex: origin.to_lowercase(),
            file: file.to_path_buf(),
            files: Vec::new(),
            names: Vec::new(),
            owners: Vec::new(),
            index: Index::default(),
            records: Vec::new(),
            rdata: Vec::new(),
        }
    }

    fn name_of<'a>(names: &'a [u8], owner: &Owner) -> &'a [u8] {
        let at = owner.name_at as usize;
        names
            .get(at..at + usize::from(owner.name_len))
            .unwrap_or_default()
    }

    fn find(&self, name: &[u8]) -> Option<u32> {
        self.index.find(store::fingerprint(name), |n| {
            Builder::name_of(&self.names, &self.owners[n as usize]) == name
        })
    }

    /// The number of the owner `name`, created with every missing ancestor
    /// down to the apex as an empty non-terminal (RFC 8020, RFC 4592
    /// §2.2.2).
    fn get_or_insert(&mut self, name: &[u8]) -> Result<u32, String> {
        if let Some(n) = self.find(name) {
            return Ok(n);
        }
        let n = self.insert(name)?;
        let apex_len = self.apex.wire().len();
        // Each name added is a child of the next one up, found or added in
        // turn; an ancestor that exists has all of its own already.
        let mut child = name;
        while let Some(p) = parent_wire(child).filter(|p| p.len() >= apex_len) {
            let found = self.find(p);
            let parent = match found {
                Some(parent) => parent,
                None => self.insert(p)?,
            };
            if wildcard_parent_wire(child).is_none() {
                self.owners[parent as usize].seen |= Owner::CHILDREN;
            }
            if found.is_some() {
                break;
            }
            child = p;
        }
        Ok(n)
    }

    fn insert(&mut self, name: &[u8]) -> Result<u32, String> {
        let too_many = || "the zone has too many names".to_string();
        let number = u32::try_from(self.owners.len())
            .ok()
            .filter(|&n| n != u32::MAX)
            .ok_or_else(too_many)?;
        let name_at = u32::try_from(self.names.len()).map_err(|_| too_many())?;
        self.names.extend_from_slice(name);
        self.owners.push(Owner {
            name_at,
            name_len: u8::try_from(name.len()).unwrap_or(u8::MAX),
            seen: 0,
        });
        self.index.insert(store::fingerprint(name), number);
        Ok(number)
    }

    /// Adds one record, refusing what may never be in a zone. The error is
    /// a message about this record.
    fn add(&mut self, record: &Record) -> Result<(), String> {
        let mut lower = [0u8; 255];
        let wire = record.owner.wire();
        let owner = lower.get_mut(..wire.len()).ok_or("owner name too long")?;
        owner.copy_from_slice(wire);
        // Label lengths are below 64, so lowercasing leaves them alone.
        owner.make_ascii_lowercase();
        let owner = &*owner;
        let apex = self.apex.wire();
        if !crate::name::wire_ends_with(owner, apex) {
            return Err(format!(
                "owner {} is outside zone {}",
                record.owner, self.apex
            ));
        }
        match record.rtype {
            rtype::DNAME => return Err("DNAME records are not supported by steerdns".into()),
            rtype::SOA if owner != apex => {
                return Err(format!(
                    "SOA record at {} is not at the zone apex",
                    record.owner
                ));
            }
            rtype::OPT | rtype::AXFR | rtype::IXFR | rtype::MAILA | rtype::MAILB | rtype::ANY => {
                let t = type_to_string(record.rtype);
                return Err(format!("{t} is a meta-type and cannot be stored in a zone"));
            }
            _ => {}
        }
        let file = match self
            .files
            .iter()
            .rposition(|f| Arc::ptr_eq(f, &record.origin.file))
        {
            Some(i) => i,
            None => {
                self.files.push(record.origin.file.clone());
                self.files.len() - 1
            }
        };
        let file = u16::try_from(file).map_err(|_| "more than 65,536 included files")?;
        let node = self.get_or_insert(owner)?;
        let once = match record.rtype {
            rtype::SOA => Owner::SOA,
            rtype::CNAME => Owner::CNAME,
            _ => 0,
        };
        if once != 0 {
            let seen = &mut self.owners[node as usize].seen;
            if *seen & once != 0 {
                let first = self
                    .records
                    .iter()
                    .find(|r| r.node == node && r.rtype == record.rtype)
                    .map_or(0, |r| r.line);
                let t = type_to_string(record.rtype);
                return Err(format!(
                    "second {t} record at {} (first at line {first})",
                    record.owner
                ));
            }
            *seen |= once;
        }
        let rdata_len = u16::try_from(record.rdata.len()).map_err(|_| "RDATA too long")?;
        let rdata_at = u32::try_from(self.rdata.len()).map_err(|_| store::TOO_LARGE)?;
        self.rdata.extend_from_slice(&record.rdata);
        self.records.push(Loaded {
            node,
            rdata_at,
            ttl: record.ttl,
            line: record.origin.line,
            rdata_len,
            rtype: record.rtype,
            file,
        });
        Ok(())
    }

    /// Lays the zone out in its store, checks it as a whole and prepares
    /// it for answering.
    fn finish(self) -> Result<Zone, ZoneError> {
        let Builder {
            apex,
            file,
            files,
            names,
            owners,
            mut index,
            mut records,
            rdata,
        } = self;
        let files: Box<[Arc<Path>]> = files.into();
        let incomplete = |message: &str| ZoneError::Incomplete {
            file: file.clone(),
            origin: apex.clone(),
            message: message.to_string(),
        };

        // A set is a run of one owner and type; the sort is stable, so
        // records stay in file order inside each set.
        records.sort_by_key(|r| (r.node, r.rtype));
        let mut bytes = Vec::with_capacity(Store::capacity_for(
            names.len(),
            owners.len(),
            records.len(),
            rdata.len(),
        ));
        let mut offsets = Vec::with_capacity(owners.len());
        let mut has_cuts = false;
        let mut set_data = Vec::new();
        let mut rest = &records[..];
        for (n, owner) in owners.iter().enumerate() {
            let name = Builder::name_of(&names, owner);
            let count = rest.iter().take_while(|r| r.node as usize == n).count();
            let (own, after) = rest.split_at(count);
            rest = after;
            let cut = name != apex.wire() && own.iter().any(|r| r.rtype == rtype::NS);
            has_cuts |= cut;
            let children = owner.seen & Owner::CHILDREN != 0;
            let at =
                Store::push_node(&mut bytes, name, cut, children).map_err(|m| incomplete(&m))?;
            offsets.push(at);
            for set in own.chunk_by(|a, b| a.rtype == b.rtype) {
                let rdata_of = |r: &Loaded| {
                    rdata
                        .get(r.rdata_at as usize..)
                        .and_then(|d| d.get(..usize::from(r.rdata_len)))
                        .unwrap_or_default()
                };
                // An RRset is a set (RFC 2181 §5), and a file may list a
                // record twice: the first of each is kept.
                set_data.clear();
                let mut seen: FxHashSet<&[u8]> = FxHashSet::default();
                for r in set {
                    if set.len() == 1 || seen.insert(rdata_of(r)) {
                        append_record(&mut set_data, rdata_of(r));
                    }
                }
                let ttl = set.iter().map(|r| r.ttl).min().unwrap_or(0);
                let origin = SetOrigin {
                    file: set[0].file,
                    line: set[0].line,
                };
                Store::push_set(&mut bytes, at, set[0].rtype, ttl, &set_data, origin)
                    .map_err(|m| incomplete(&m))?;
            }
        }
        drop((records, rdata, names));
        index.map_values(|n| offsets[n as usize]);
        let mut store = Store::new(bytes, index, owners.len());
        drop((offsets, owners));
        let wildcards: Vec<usize> = store
            .nodes()
            .filter(|n| wildcard_parent_wire(n.name()).is_some())
            .map(|n| n.at())
            .collect();
        let mut has_lone_wildcards = false;
        for at in wildcards {
            has_lone_wildcards |= store.link_wildcard(at);
        }

        let apex_node = store
            .find(apex.wire())
            .ok_or_else(|| incomplete("no SOA record at the apex"))?;
        // A second SOA is refused in `add`, so this set holds one record.
        let soa = apex_node
            .get(rtype::SOA)
            .ok_or_else(|| incomplete("no SOA record at the apex"))?;
        if apex_node.get(rtype::NS).is_none() {
            return Err(incomplete("no NS records at the apex"));
        }
        let soa_minimum = soa
            .first()
            .last_chunk::<4>()
            .map_or(0, |m| u32::from_be_bytes(*m));
        let negative_ttl = soa.ttl.min(soa_minimum);
        let soa = Box::from(soa.first());

        check_placement(&store, &apex, has_cuts).map_err(|(origin, message)| {
            ZoneError::Invalid {
                location: Location {
                    file: files
                        .get(usize::from(origin.file))
                        .cloned()
                        .unwrap_or_else(|| Arc::from(file.as_path())),
                    line: origin.line,
                },
                message,
            }
        })?;
        add_additional(&mut store, &apex);
        store.shrink();
        Ok(Zone {
            apex,
            store,
            soa,
            negative_ttl,
            has_cuts,
            has_lone_wildcards,
            files,
            ns_health: None,
        })
    }
}

/// The rules on where a set may stand: a CNAME stands alone; at a cut only
/// NS, DS and glue; below a cut only glue. The error names the offending
/// set's first record; of several at one name, the one written first.
fn check_placement(store: &Store, apex: &Name, has_cuts: bool) -> Result<(), (SetOrigin, String)> {
    let below_cut = |owner: &[u8]| {
        let mut up = parent_wire(owner);
        while let Some(p) = up.filter(|p| p.len() > apex.wire().len()) {
            if store.find(p).is_some_and(|n| n.cut()) {
                return true;
            }
            up = parent_wire(p);
        }
        false
    };
    for node in store.nodes() {
        let owner = node.name();
        let shown = || Name::from_wire_unchecked(owner);
        let alone = node.sets().nth(1).is_none();
        let mut first: Option<(SetOrigin, String)> = None;
        for set in node.sets() {
            let t = set.rtype;
            let problem = if t == rtype::CNAME && !alone {
                // RFC 1034 §3.6.2, RFC 2181 §10.1.
                format!("{} has a CNAME and other records", shown())
            } else if has_cuts && t != rtype::A && t != rtype::AAAA && below_cut(owner) {
                let t = type_to_string(t);
                format!("{t} record at {} is below a delegation", shown())
            } else if node.cut() && !matches!(t, rtype::NS | rtype::A | rtype::AAAA | rtype::DS) {
                let t = type_to_string(t);
                format!("{t} record at {} is at a delegation point", shown())
            } else {
                continue;
            };
            let origin = set.origin();
            let earlier = |o: &SetOrigin| (origin.file, origin.line) < (o.file, o.line);
            if first.as_ref().is_none_or(|(o, _)| earlier(o)) {
                first = Some((origin, problem));
            }
        }
        if let Some(problem) = first {
            return Err(problem);
        }
    }
    Ok(())
}

/// Attaches to every NS, MX and SRV set the address sets of its targets
/// inside the zone, for the additional section (RFC 1035 §3.3.*).
fn add_additional(store: &mut Store, apex: &Name) {
    let mut found_all = Vec::new();
    for node in store.nodes() {
        for set in node.sets() {
            let mut found: Vec<Glue> = Vec::new();
            for target in set
                .records()
                .filter_map(|r| additional_target(set.rtype, r))
            {
                let lower = target.to_ascii_lowercase();
                if !crate::name::wire_ends_with(&lower, apex.wire()) {
                    continue;
                }
                let Some(at) = store.find(&lower) else {
                    continue;
                };
                for t in [rtype::A, rtype::AAAA] {
                    let Some(addresses) = at.get(t) else { continue };
                    let set_at = addresses.offset();
                    if !found
                        .iter()
                        .any(|g| &*g.target == target && g.set_at == set_at)
                    {
                        found.push(Glue {
                            target: target.into(),
                            set_at,
                        });
                    }
                }
            }
            if !found.is_empty() {
                found_all.push((set.offset(), found.into_boxed_slice()));
            }
        }
    }
    for (at, glue) in found_all {
        store.set_glue(at, glue);
    }
}

/// The name in `rdata` whose addresses belong in the additional section.
fn additional_target(rr_type: u16, rdata: &[u8]) -> Option<&[u8]> {
    match rr_type {
        rtype::NS => Some(rdata),
        rtype::MX => rdata.get(2..),
        rtype::SRV => rdata.get(6..),
        _ => None,
    }
}

/// Up to this many zones, [`ZoneSet::find`] compares apexes instead of
/// hashing.
const FEW_ZONES: usize = 8;

/// The zones served, found by longest match of the query name.
#[derive(Debug, Default)]
pub struct ZoneSet {
    zones: Vec<Zone>,
    by_apex: FxHashMap<Box<[u8]>, usize>,
    /// Bit `n` is set when some apex is `n` bytes long in wire format. A
    /// query name's suffixes are hashed only at those lengths: with one
    /// zone, one hash per query instead of one per label.
    apex_lens: [u64; 4],
}

impl ZoneSet {
    /// Adds a zone; the caller ensures apexes are unique.
    pub fn insert(&mut self, zone: Zone) {
        let len = zone.apex.wire().len();
        self.apex_lens[len / 64] |= 1 << (len % 64);
        self.by_apex
            .insert(Box::from(zone.apex.wire()), self.zones.len());
        self.zones.push(zone);
    }

    /// Whether a zone with this apex is already present.
    pub fn contains(&self, apex: &Name) -> bool {
        self.by_apex.contains_key(apex.to_lowercase().wire())
    }

    /// The zone with the longest apex that `name` (lowercase wire format)
    /// lies at or below.
    pub fn find(&self, name: &[u8]) -> Option<&Zone> {
        self.zones.get(self.index_of(name)?)
    }

    /// Like [`ZoneSet::find`], for changes made while loading.
    pub fn find_mut(&mut self, name: &[u8]) -> Option<&mut Zone> {
        let i = self.index_of(name)?;
        self.zones.get_mut(i)
    }

    fn index_of(&self, name: &[u8]) -> Option<usize> {
        let mut at = Some(name);
        while let Some(n) = at {
            // Wire names are at most 255 bytes, so the index is below 4.
            let len = n.len();
            if self.apex_lens[len / 64 % 4] & (1 << (len % 64)) != 0 {
                // A few apexes are compared faster than one name is hashed.
                let found = if self.zones.len() <= FEW_ZONES {
                    self.zones.iter().position(|z| z.apex.wire() == n)
                } else {
                    self.by_apex.get(n).copied()
                };
                if found.is_some() {
                    return found;
                }
            }
            at = parent_wire(n);
        }
        None
    }

    /// The zones, in load order.
    pub fn iter(&self) -> impl Iterator<Item = &Zone> {
        self.zones.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "$TTL 300\n@ SOA ns1 host 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.53\n";

    fn origin() -> Name {
        Name::from_text("example.com.", None).unwrap()
    }

    fn zone(body: &str) -> Result<Zone, String> {
        let text = format!("{HEAD}{body}");
        let file = Path::new("example.com.zone");
        let records = parse::parse_str(&text, file, &origin()).map_err(|e| e.to_string())?;
        Zone::from_records(&origin(), file, records).map_err(|e| e.to_string())
    }

    fn wire(name: &str) -> Vec<u8> {
        Name::from_text(name, None).unwrap().wire().to_vec()
    }

    /// A zone with just the head records at `apex`.
    fn zone_at(apex: &str) -> Zone {
        let origin = Name::from_text(apex, None).unwrap();
        let file = Path::new("test.zone");
        let records = parse::parse_str(HEAD, file, &origin).unwrap();
        Zone::from_records(&origin, file, records).unwrap()
    }

    /// `ZoneSet::find` compares apexes for a few zones and hashes for many:
    /// both must give the longest match, and nothing outside every zone.
    #[test]
    fn zone_set_finds_the_longest_apex_with_few_and_many_zones() {
        for extra in [0, FEW_ZONES] {
            let mut set = ZoneSet::default();
            for apex in ["example.com.", "sub.example.com.", "other.net."] {
                set.insert(zone_at(apex));
            }
            // Fillers: as long as example.com. in wire format, other names.
            for i in 0..extra {
                set.insert(zone_at(&format!("x{i}ample.com.")));
            }
            let found = |name: &str| set.find(&wire(name)).map(|z| z.apex.to_string());
            let apex = |a: &str| Some(a.to_string());
            assert_eq!(
                found("a.b.sub.example.com."),
                apex("sub.example.com."),
                "{extra}"
            );
            assert_eq!(
                found("sub.example.com."),
                apex("sub.example.com."),
                "{extra}"
            );
            assert_eq!(found("xsub.example.com."), apex("example.com."), "{extra}");
            assert_eq!(found("example.com."), apex("example.com."), "{extra}");
            assert_eq!(found("www.other.net."), apex("other.net."), "{extra}");
            let filler = (extra > 7).then(|| "x7ample.com.".to_string());
            assert_eq!(found("www.x7ample.com."), filler, "{extra}");
            assert_eq!(found("com."), None, "{extra}");
            assert_eq!(found("other.org."), None, "{extra}");
            assert_eq!(found("."), None, "{extra}");
        }
    }

    /// A node knows whether its wildcard is its only child, as the zone
    /// file and then services made it, in either order.
    #[test]
    fn nodes_know_a_lone_wildcard() {
        let mut z = zone("*.w A 192.0.2.1\nx.*.w A 192.0.2.1\n*.v A 192.0.2.1\nb.v A 192.0.2.2\n*.e.u TXT \"x\"\n").unwrap();
        let lone =
            |z: &Zone, name: &str| z.node(&wire(name)).expect(name).lone_wildcard().is_some();
        assert!(z.has_lone_wildcards);
        assert!(lone(&z, "w.example.com."), "x.*.w is below the wildcard");
        assert!(!lone(&z, "v.example.com."), "b.v is its sibling");
        assert!(lone(&z, "e.u.example.com."));
        assert!(!lone(&z, "u.example.com."), "no wildcard of its own");
        let service = |text: &str| Name::from_text(text, None).unwrap();
        // A service's wildcard under a new name is lone, until a sibling
        // comes; one under an existing leaf is lone too.
        z.attach_service(&service("*.tm.example.com."), 0).unwrap();
        assert!(lone(&z, "tm.example.com."));
        z.attach_service(&service("api.tm.example.com."), 1)
            .unwrap();
        assert!(!lone(&z, "tm.example.com."));
        z.attach_service(&service("a.x.*.w.example.com."), 2)
            .unwrap();
        assert!(lone(&z, "w.example.com."), "names below the wildcard");
        z.attach_service(&service("www.e.u.example.com."), 3)
            .unwrap();
        assert!(!lone(&z, "e.u.example.com."));
        z.attach_service(&service("*.b.v.example.com."), 4).unwrap();
        assert!(lone(&z, "b.v.example.com."));
        // A sibling first, then the wildcard.
        let mut z = zone("ns2 A 192.0.2.3\n").unwrap();
        assert!(!z.has_lone_wildcards);
        z.attach_service(&service("api.gtm.example.com."), 0)
            .unwrap();
        z.attach_service(&service("*.gtm.example.com."), 1).unwrap();
        assert!(!lone(&z, "gtm.example.com."));
        assert!(!z.has_lone_wildcards);
    }

    /// Every node knows its wildcard child, whether the zone file wrote
    /// it (under a name that exists, or under an empty non-terminal) or a
    /// service added it after loading.
    #[test]
    fn nodes_know_their_wildcard_child() {
        let mut z = zone("*.w A 192.0.2.1\n*.a.b TXT \"x\"\nb2 A 192.0.2.2\n").unwrap();
        let child = |z: &Zone, name: &str| {
            z.node(&wire(name))
                .expect(name)
                .wildcard()
                .map(|n| Name::from_wire_unchecked(n.name()).to_string())
        };
        assert_eq!(child(&z, "w.example.com."), Some("*.w.example.com.".into()));
        assert_eq!(
            child(&z, "a.b.example.com."),
            Some("*.a.b.example.com.".into())
        );
        assert_eq!(child(&z, "b.example.com."), None);
        assert_eq!(child(&z, "example.com."), None);
        assert_eq!(child(&z, "b2.example.com."), None);
        let svc = Name::from_text("*.tm.example.com.", None).unwrap();
        z.attach_service(&svc, 0).unwrap();
        assert_eq!(
            child(&z, "tm.example.com."),
            Some("*.tm.example.com.".into())
        );
        let apex = Name::from_text("*.example.com.", None).unwrap();
        z.attach_service(&apex, 1).unwrap();
        assert_eq!(child(&z, "example.com."), Some("*.example.com.".into()));
        // The nodes met along the way did not move.
        assert_eq!(child(&z, "w.example.com."), Some("*.w.example.com.".into()));
    }

    fn rdatas(z: &Zone, name: &str, t: u16) -> Vec<Vec<u8>> {
        let node = z.node(&wire(name)).expect(name);
        node.get(t)
            .map_or(vec![], |s| s.records().map(<[u8]>::to_vec).collect())
    }

    #[test]
    fn sets_group_dedup_and_keep_file_order() {
        let z =
            zone("www A 192.0.2.2\nWWW A 192.0.2.1\nwww 60 A 192.0.2.2\nwww AAAA 2001:db8::1\n")
                .unwrap();
        assert_eq!(
            rdatas(&z, "www.example.com.", rtype::A),
            vec![vec![192, 0, 2, 2], vec![192, 0, 2, 1]],
            "case-insensitive owner, duplicate dropped, file order"
        );
        let node = z.node(&wire("www.example.com.")).unwrap();
        assert_eq!(node.get(rtype::A).unwrap().ttl, 60, "lowest TTL of the set");
        let types: Vec<u16> = node.sets().map(|s| s.rtype).collect();
        assert_eq!(types, [rtype::A, rtype::AAAA], "ordered by type");
        assert_eq!(
            z.location(node.get(rtype::A).unwrap().origin()),
            "example.com.zone:5"
        );
    }

    /// Every set is found by type, whether the node's type summary covers
    /// the type (A, MX, AAAA) or not (TXT, SRV, private types), and the
    /// summary never hides one that is there.
    #[test]
    fn sets_are_found_by_type_with_and_without_the_summary() {
        let z = zone(
            "x TYPE65280 \\# 1 01\nx SRV 0 0 53 ns1\nx AAAA 2001:db8::1\nx TXT hi\nx MX 5 ns1\nx A 192.0.2.1\n",
        )
        .unwrap();
        let node = z.node(&wire("x.example.com.")).unwrap();
        let types: Vec<u16> = node.sets().map(|s| s.rtype).collect();
        assert_eq!(types, [1, 15, 16, 28, 33, 65280]);
        for t in types {
            assert_eq!(node.get(t).map(|s| s.rtype), Some(t), "type {t}");
        }
        for t in [2, 5, 6, 12, 17, 29, 65281] {
            assert!(node.get(t).is_none(), "type {t} is not there");
        }
        let mx = node.get(rtype::MX).unwrap();
        assert_eq!(mx.first(), b"\x00\x05\x03ns1\x07example\x03com\x00");
        assert_eq!(mx.additional().count(), 1, "ns1's A as glue");
    }

    #[test]
    fn empty_non_terminals_exist() {
        let z = zone("a.b.c A 192.0.2.1\n").unwrap();
        for name in ["b.c.example.com.", "c.example.com."] {
            let node = z.node(&wire(name)).expect(name);
            assert!(node.is_empty(), "{name} is an empty non-terminal");
        }
        assert!(z.node(&wire("x.example.com.")).is_none());
        // apex, ns1, a.b.c, b.c, c
        assert_eq!(z.len(), 5);
    }

    #[test]
    fn additional_addresses_for_in_zone_targets() {
        let z = zone(
            "@ MX 10 mail\nmail A 192.0.2.25\nmail AAAA 2001:db8::25\n@ MX 20 mx.example.net.\n",
        )
        .unwrap();
        let apex = z.node(&wire("example.com.")).unwrap();
        let mx = apex.get(rtype::MX).unwrap();
        let found: Vec<(String, u16)> = mx
            .additional()
            .map(|(n, s)| (Name::from_wire_unchecked(n).to_string(), s.rtype))
            .collect();
        assert_eq!(
            found,
            [
                ("mail.example.com.".to_string(), rtype::A),
                ("mail.example.com.".to_string(), rtype::AAAA)
            ]
        );
        let ns = apex.get(rtype::NS).unwrap();
        assert_eq!(ns.additional().count(), 1, "ns1 has an A only");
    }

    #[test]
    fn placement_errors_name_file_and_line() {
        let cases = [
            (
                "www CNAME x\nwww A 192.0.2.1\n",
                "example.com.zone:5: www.example.com. has a CNAME and other records",
            ),
            (
                "sub NS ns.sub\nns.sub A 192.0.2.9\nx.sub TXT hi\n",
                "example.com.zone:7: TXT record at x.sub.example.com. is below a delegation",
            ),
            (
                "sub NS ns.other.\nsub MX 1 mail\n",
                "example.com.zone:6: MX record at sub.example.com. is at a delegation point",
            ),
            (
                "www CNAME x\nwww CNAME y\n",
                "example.com.zone:6: second CNAME record at www.example.com. (first at line 5)",
            ),
            (
                "www.example.net. A 192.0.2.1\n",
                "example.com.zone:5: owner www.example.net. is outside zone example.com.",
            ),
            (
                "www SOA a b 1 2 3 4 5\n",
                "example.com.zone:5: SOA record at www.example.com. is not at the zone apex",
            ),
            (
                "d DNAME x\n",
                "example.com.zone:5: DNAME records are not supported",
            ),
        ];
        for (body, want) in cases {
            let e = zone(body).unwrap_err();
            assert!(e.starts_with(want), "{body:?}: got {e:?}, want {want:?}");
        }
        // Glue and DS are fine at and below a cut.
        zone("sub NS ns.sub\nsub TYPE43 \\# 6 0001 0802 AABB\nns.sub A 192.0.2.9\nns.sub AAAA 2001:db8::9\n")
            .unwrap();
    }

    #[test]
    fn apex_must_have_soa_and_ns() {
        let file = Path::new("z");
        let records = parse::parse_str("$TTL 1\n@ NS ns1\n", file, &origin()).unwrap();
        let e = Zone::from_records(&origin(), file, records).unwrap_err();
        assert_eq!(
            e.to_string(),
            "z: zone example.com.: no SOA record at the apex"
        );
        let records = parse::parse_str("$TTL 1\n@ SOA a b 1 2 3 4 5\n", file, &origin()).unwrap();
        let e = Zone::from_records(&origin(), file, records).unwrap_err();
        assert_eq!(
            e.to_string(),
            "z: zone example.com.: no NS records at the apex"
        );
    }

    #[test]
    fn load_streams_includes_with_their_own_locations() {
        let dir = std::env::temp_dir().join(format!("steerdns-zone-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("main.zone"), format!("{HEAD}$INCLUDE part.zone\n")).unwrap();
        std::fs::write(dir.join("part.zone"), "www A 192.0.2.1\nwww CNAME x\n").unwrap();
        let e = Zone::load(&origin(), &dir.join("main.zone"))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("part.zone:2: www.example.com. has a CNAME and other records"),
            "{e}"
        );
        std::fs::write(dir.join("part.zone"), "www A 192.0.2.1\n").unwrap();
        let z = Zone::load(&origin(), &dir.join("main.zone")).unwrap();
        let set = z
            .node(&wire("www.example.com."))
            .unwrap()
            .get(rtype::A)
            .unwrap();
        assert!(
            z.location(set.origin()).ends_with("part.zone:1"),
            "{}",
            z.location(set.origin())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn services_attach_with_their_ancestors() {
        let mut z = zone("sub NS ns.other.\nwww A 192.0.2.1\n").unwrap();
        let name = |s: &str| Name::from_text(s, None).unwrap();
        z.attach_service(&name("api.eu.example.com."), 3).unwrap();
        assert_eq!(
            z.node(&wire("api.eu.example.com.")).unwrap().service(),
            Some(3)
        );
        assert!(
            z.node(&wire("eu.example.com.")).is_some(),
            "ancestor created"
        );
        let e = z.attach_service(&name("www.example.com."), 4).unwrap_err();
        assert!(e.contains("has A records"), "{e}");
        let e = z
            .attach_service(&name("x.sub.example.com."), 5)
            .unwrap_err();
        assert!(
            e.contains("below the delegation at sub.example.com."),
            "{e}"
        );
    }
}
