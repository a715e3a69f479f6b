//! Zones: master files loaded into lookup tables of pre-encoded RRsets.
//!
//! A [`Zone`] maps every owner name, and every empty non-terminal between an
//! owner and the apex (RFC 8020 §2), to a [`Node`]. Names are stored in
//! lowercase wire format, so the engine looks a query name up with one hash
//! of its bytes. Everything a response needs from a record set (the RDATA, and
//! the addresses for the additional section) is prepared here, at load time.

pub mod parse;
pub mod rdata;

use std::path::Path;

use rustc_hash::FxHashMap;

use crate::name::{parent_wire, Name};
use crate::rr::{rtype, type_to_string, Location, Record};

/// Why a zone could not be loaded. Displays as `file:line: message`.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    /// The master file could not be read or parsed.
    #[error(transparent)]
    Parse(#[from] parse::ZoneError),
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

/// A set of records sharing owner, class and type (RFC 2181 §5).
#[derive(Debug, Clone)]
pub struct RRset {
    /// The record type.
    pub rtype: u16,
    /// One TTL for the set: the lowest in the file (RFC 2181 §5.2).
    pub ttl: u32,
    /// Each record's RDATA in uncompressed wire format, in file order.
    pub rdata: Box<[Box<[u8]>]>,
    /// Address records for names this set points at (NS, MX and SRV
    /// targets inside the zone), for the additional section (RFC 1035 §3.3.*).
    pub additional: Box<[(Name, RRset)]>,
}

/// Everything stored at one owner name.
#[derive(Debug, Default)]
pub struct Node {
    /// The RRsets, ordered by type. Empty for an empty non-terminal.
    pub rrsets: Box<[RRset]>,
    /// Whether this node is a zone cut: NS records below the apex.
    pub cut: bool,
    /// The service answering A and AAAA here, an index into the snapshot's
    /// services.
    pub service: Option<u32>,
}

impl Node {
    /// The RRset of `rtype`, if any.
    pub fn get(&self, rtype: u16) -> Option<&RRset> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }
}

/// One zone, ready to answer from.
#[derive(Debug)]
pub struct Zone {
    /// The apex in lowercase wire format.
    pub apex: Name,
    /// Every name in the zone, lowercase wire format.
    nodes: FxHashMap<Box<[u8]>, Node>,
    /// The apex SOA record set, owned for negative answers.
    pub soa: RRset,
    /// TTL of the SOA in negative answers: min(SOA TTL, SOA MINIMUM)
    /// (RFC 2308 §3).
    pub negative_ttl: u32,
    /// Whether any zone cut exists, so lookups can skip the search for one.
    pub has_cuts: bool,
}

impl Zone {
    /// Loads and validates a master file for the zone at `origin`.
    pub fn load(origin: &Name, file: &Path) -> Result<Zone, ZoneError> {
        let records = parse::parse_file(file, origin)?;
        Zone::from_records(origin, file, records)
    }

    /// Builds a zone from parsed records, checking the rules a zone must obey.
    pub fn from_records(
        origin: &Name,
        file: &Path,
        records: Vec<Record>,
    ) -> Result<Zone, ZoneError> {
        let apex = origin.to_lowercase();
        let invalid = |r: &Record, message: String| ZoneError::Invalid {
            location: r.origin.clone(),
            message,
        };
        let incomplete = |message: &str| ZoneError::Incomplete {
            file: file.to_path_buf(),
            origin: apex.clone(),
            message: message.to_string(),
        };

        // Group records by (owner, type), keeping the first location of each.
        let mut sets: FxHashMap<(Box<[u8]>, u16), PendingSet> = FxHashMap::default();
        let mut order: Vec<(Box<[u8]>, u16)> = Vec::new();
        for record in records {
            let owner = record.owner.to_lowercase();
            if !owner.ends_with(&apex) {
                return Err(invalid(
                    &record,
                    format!("owner {} is outside zone {apex}", record.owner),
                ));
            }
            match record.rtype {
                rtype::DNAME => {
                    return Err(invalid(
                        &record,
                        "DNAME records are not supported by steerdns".into(),
                    ));
                }
                rtype::SOA if owner != apex => {
                    return Err(invalid(
                        &record,
                        format!("SOA record at {} is not at the zone apex", record.owner),
                    ));
                }
                rtype::OPT
                | rtype::AXFR
                | rtype::IXFR
                | rtype::MAILA
                | rtype::MAILB
                | rtype::ANY => {
                    let t = type_to_string(record.rtype);
                    return Err(invalid(
                        &record,
                        format!("{t} is a meta-type and cannot be stored in a zone"),
                    ));
                }
                _ => {}
            }
            let key = (Box::<[u8]>::from(owner.wire()), record.rtype);
            match sets.get_mut(&key) {
                Some(PendingSet { rdata, ttl, first }) => {
                    if record.rtype == rtype::SOA || record.rtype == rtype::CNAME {
                        let t = type_to_string(record.rtype);
                        return Err(invalid(
                            &record,
                            format!(
                                "second {t} record at {} (first at line {})",
                                record.owner, first.origin.line
                            ),
                        ));
                    }
                    *ttl = (*ttl).min(record.ttl);
                    // An RRset is a set (RFC 2181 §5): repeated records collapse.
                    if !rdata.contains(&record.rdata) {
                        rdata.push(record.rdata.clone());
                    }
                }
                None => {
                    order.push(key.clone());
                    let pending = PendingSet {
                        rdata: vec![record.rdata.clone()],
                        ttl: record.ttl,
                        first: record,
                    };
                    sets.insert(key, pending);
                }
            }
        }

        let soa = sets
            .get(&(Box::from(apex.wire()), rtype::SOA))
            .ok_or_else(|| incomplete("no SOA record at the apex"))?;
        if !sets.contains_key(&(Box::from(apex.wire()), rtype::NS)) {
            return Err(incomplete("no NS records at the apex"));
        }
        let soa_minimum = soa.rdata[0]
            .get(soa.rdata[0].len().saturating_sub(4)..)
            .map_or(0, |m| u32::from_be_bytes(m.try_into().unwrap_or_default()));
        let negative_ttl = soa.ttl.min(soa_minimum);

        // Zone cuts, and the rules that depend on them.
        let cuts: rustc_hash::FxHashSet<&[u8]> = order
            .iter()
            .filter(|(owner, t)| *t == rtype::NS && **owner != *apex.wire())
            .map(|(owner, _)| &owner[..])
            .collect();
        let below_cut = |owner: &[u8]| {
            let mut up = parent_wire(owner);
            while let Some(p) = up.filter(|p| p.len() > apex.wire().len()) {
                if cuts.contains(p) {
                    return true;
                }
                up = parent_wire(p);
            }
            false
        };
        let mut types_at: FxHashMap<&[u8], usize> = FxHashMap::default();
        for (owner, _) in &order {
            *types_at.entry(&owner[..]).or_default() += 1;
        }
        for key in &order {
            let first = &sets[key].first;
            let (owner, t) = (&key.0[..], key.1);
            if t == rtype::CNAME && types_at[owner] > 1 {
                // RFC 1034 §3.6.2, RFC 2181 §10.1: a CNAME stands alone.
                return Err(invalid(
                    first,
                    format!("{} has a CNAME and other records", first.owner),
                ));
            }
            // Below a cut only glue may exist; at a cut only NS, DS and glue.
            if below_cut(owner) && t != rtype::A && t != rtype::AAAA {
                let t = type_to_string(t);
                return Err(invalid(
                    first,
                    format!("{t} record at {} is below a delegation", first.owner),
                ));
            }
            if cuts.contains(owner) && !matches!(t, rtype::NS | rtype::A | rtype::AAAA | rtype::DS)
            {
                let t = type_to_string(t);
                return Err(invalid(
                    first,
                    format!("{t} record at {} is at a delegation point", first.owner),
                ));
            }
        }

        // Address sets, for the additional section of NS, MX and SRV.
        let address_set = |owner: &[u8], t: u16| -> Option<RRset> {
            let PendingSet { rdata, ttl, .. } = sets.get(&(Box::from(owner), t))?;
            Some(RRset {
                rtype: t,
                ttl: *ttl,
                rdata: rdata.clone().into(),
                additional: Box::new([]),
            })
        };
        let mut nodes: FxHashMap<Box<[u8]>, Node> = FxHashMap::default();
        let mut grouped: FxHashMap<Box<[u8]>, Vec<RRset>> = FxHashMap::default();
        for key in &order {
            let PendingSet { rdata, ttl, .. } = &sets[key];
            let mut additional = Vec::new();
            for target in rdata.iter().filter_map(|r| additional_target(key.1, r)) {
                let lower = target.to_ascii_lowercase();
                if !crate::name::wire_ends_with(&lower, apex.wire()) {
                    continue;
                }
                for t in [rtype::A, rtype::AAAA] {
                    if let Some(set) = address_set(&lower, t) {
                        if !additional
                            .iter()
                            .any(|(n, s): &(Name, RRset)| n.wire() == target && s.rtype == t)
                        {
                            additional.push((Name::from_wire_unchecked(target), set));
                        }
                    }
                }
            }
            let set = RRset {
                rtype: key.1,
                ttl: *ttl,
                rdata: rdata.clone().into(),
                additional: additional.into(),
            };
            grouped.entry(key.0.clone()).or_default().push(set);
        }
        for (owner, mut rrsets) in grouped {
            rrsets.sort_by_key(|s| s.rtype);
            // Every ancestor up to the apex exists, as an empty non-terminal
            // if nothing else (RFC 8020, RFC 4592 §2.2.2).
            let mut up = parent_wire(&owner);
            while let Some(p) = up.filter(|p| p.len() >= apex.wire().len()) {
                nodes.entry(Box::from(p)).or_default();
                up = parent_wire(p);
            }
            let cut = cuts.contains(&owner[..]);
            nodes.insert(
                owner,
                Node {
                    rrsets: rrsets.into(),
                    cut,
                    service: None,
                },
            );
        }
        let soa = nodes[apex.wire()]
            .get(rtype::SOA)
            .cloned()
            .ok_or_else(|| incomplete("no SOA"))?;
        Ok(Zone {
            apex,
            nodes,
            soa,
            negative_ttl,
            has_cuts: !cuts.is_empty(),
        })
    }

    /// Makes `name` (lowercase, inside this zone) answer A and AAAA through
    /// service number `id`, creating the name if the zone file lacks it.
    /// Refused where the answer would be ambiguous or unreachable.
    pub fn attach_service(&mut self, name: &Name, id: u32) -> Result<(), String> {
        let wire = name.wire();
        let mut up = parent_wire(wire);
        while let Some(p) = up.filter(|p| p.len() > self.apex.wire().len()) {
            if self.nodes.get(p).is_some_and(|n| n.cut) {
                return Err(format!(
                    "{name} is below the delegation at {}",
                    Name::from_wire_unchecked(p)
                ));
            }
            up = parent_wire(p);
        }
        let node = self.nodes.entry(Box::from(wire)).or_default();
        if node.cut {
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
        node.service = Some(id);
        let mut up = parent_wire(wire);
        while let Some(p) = up.filter(|p| p.len() >= self.apex.wire().len()) {
            self.nodes.entry(Box::from(p)).or_default();
            up = parent_wire(p);
        }
        Ok(())
    }

    /// The node at `name` (lowercase wire format), if the name exists.
    pub fn node(&self, name: &[u8]) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// Number of names, empty non-terminals included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the zone has no names (never true for a loaded zone).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// An RRset being collected from the file, with its first record for errors.
struct PendingSet {
    rdata: Vec<Box<[u8]>>,
    ttl: u32,
    first: Record,
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

/// The zones served, found by longest match of the query name.
#[derive(Debug, Default)]
pub struct ZoneSet {
    zones: Vec<Zone>,
    by_apex: FxHashMap<Box<[u8]>, usize>,
}

impl ZoneSet {
    /// Adds a zone; the caller ensures apexes are unique.
    pub fn insert(&mut self, zone: Zone) {
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
            if let Some(&i) = self.by_apex.get(n) {
                return Some(i);
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
