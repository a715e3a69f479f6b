//! Geographic routing (Azure's "geographic", Route 53's "geolocation",
//! gdnsd's `geoip` maps): regions map to ordered endpoint lists.
//!
//! The client's location comes from a MaxMind database ([`crate::geo`]):
//! continent, country, first subdivision. The most specific configured
//! region containing the client wins; its list is tried in order, then the
//! lists of the less specific regions, then `*`, then `when-all-down`. All
//! of that is fixed per location, so at load time each location of the
//! database gets its whole fallback chain, and a query costs one table
//! lookup plus the health checks. The ECS scope is the database's network
//! for the client (merged with same-location neighbours).

use std::collections::HashMap;
use std::sync::Arc;

use super::{first_fit, Ask, Choice, PolicyInput, ServiceRule, Step, Trace};
use crate::geo::{GeoTable, Location, Region};
use crate::prefix::{Prefix, PrefixTable, PrefixTableBuilder};

/// Per-place fallback chains over a geo table; shared by geographic and
/// performance routing.
///
/// The service's own table maps client networks straight to chains:
/// neighbouring networks whose places give the same chain merge, so the
/// ECS scope is the widest block that gets this service's answer, not
/// merely the database's network (a resolver caches one answer for all of
/// Europe when the service treats Europe as one).
#[derive(Debug, Clone)]
pub struct GeoChains {
    geo: Arc<GeoTable>,
    /// Client network to chain index.
    table: PrefixTable<u32>,
    /// The distinct chains of endpoint indexes.
    chains: Box<[Box<[u16]>]>,
}

impl GeoChains {
    /// Builds a chain for every place of `geo` (and for unplaced clients,
    /// `None`) with `chain_for`, interning equal chains.
    pub fn new(geo: Arc<GeoTable>, chain_for: impl Fn(Option<&Location>) -> Vec<u16>) -> GeoChains {
        let mut chains: Vec<Box<[u16]>> = Vec::new();
        let mut index: HashMap<Vec<u16>, u32> = HashMap::new();
        let mut intern = |chain: Vec<u16>| -> u32 {
            *index.entry(chain.clone()).or_insert_with(|| {
                chains.push(chain.into());
                (chains.len() - 1) as u32
            })
        };
        // Each place's chain once, then the table maps runs through it.
        let of_place: Vec<u32> = geo
            .locations()
            .iter()
            .map(|l| intern(chain_for(Some(l))))
            .collect();
        let unplaced = intern(chain_for(None));
        let table = geo.map_locations(|id| of_place.get(id as usize).copied().unwrap_or(unplaced));
        GeoChains {
            geo,
            table,
            chains: chains.into(),
        }
    }

    /// The same chains with `overrides` laid over them: a client inside one
    /// of the prefixes (the most specific) tries its list first, then its
    /// place's chain. The table's runs split at the prefixes' edges, so
    /// scopes stay exact on both sides of them.
    pub fn with_prefix_overrides(self, overrides: &[(Prefix, Vec<u16>)]) -> GeoChains {
        if overrides.is_empty() {
            return self;
        }
        let mut by_prefix = PrefixTableBuilder::default();
        for (i, (prefix, _)) in overrides.iter().enumerate() {
            by_prefix.insert(*prefix, Some(i));
        }
        let by_prefix = by_prefix.build(None, |most_specific_first| *most_specific_first[0]);
        let mut chains: Vec<Box<[u16]>> = self.chains.into_vec();
        let mut interned: HashMap<Box<[u16]>, u32> = chains
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i as u32))
            .collect();
        let table = self.table.zip(&by_prefix, |&chain, over| {
            let Some(o) = *over else { return chain };
            let mut merged: Vec<u16> = overrides[o].1.clone();
            for &e in chains[chain as usize].iter() {
                if !merged.contains(&e) {
                    merged.push(e);
                }
            }
            let merged: Box<[u16]> = merged.into();
            *interned.entry(merged.clone()).or_insert_with(|| {
                chains.push(merged);
                (chains.len() - 1) as u32
            })
        });
        GeoChains {
            geo: self.geo,
            table,
            chains: chains.into(),
        }
    }

    /// The client's chain and the scope it holds for.
    #[inline]
    pub fn chain(&self, input: &PolicyInput) -> (&[u16], u8) {
        let (&chain, scope) = self
            .table
            .lookup_embedded(input.client, input.source_prefix);
        (&self.chains[chain as usize], scope)
    }

    /// The table, for explanations.
    pub fn geo(&self) -> &GeoTable {
        &self.geo
    }

    /// How many distinct chains the places share, and how many runs the
    /// service's table has (load statistics).
    pub fn sizes(&self) -> (usize, usize) {
        (self.chains.len(), self.table.runs())
    }

    /// The client's place, and a description of it for a trace.
    pub(crate) fn describe(&self, input: &PolicyInput, scope: u8) -> (Location, String) {
        let (id, _) = self.geo.lookup(input.client, input.source_prefix);
        let place = self.geo.location(id).copied();
        let text = match place {
            Some(l) => l.to_string(),
            None => "not in the database".into(),
        };
        let block = crate::prefix::Prefix::around(input.client, scope);
        let text = format!(
            "client {}/{}: {text}; this service answers all of {block} alike",
            input.client, input.source_prefix
        );
        (place.unwrap_or_default(), text)
    }
}

/// A geographic service, compiled.
#[derive(Debug, Clone)]
pub struct Geographic {
    chains: GeoChains,
    /// The configured regions and their lists, for explanations.
    regions: Box<[(Region, Box<[u16]>)]>,
}

impl Geographic {
    /// Compiles `regions` (each with its endpoint indexes, in preference
    /// order) against the database.
    pub fn new(geo: Arc<GeoTable>, regions: Vec<(Region, Vec<u16>)>) -> Geographic {
        let map: HashMap<Region, Vec<u16>> = regions.iter().cloned().collect();
        let chains = GeoChains::new(geo, |location| {
            let default = Location::default();
            let mut chain: Vec<u16> = Vec::new();
            for region in location.unwrap_or(&default).regions() {
                for &e in map.get(&region).into_iter().flatten() {
                    if !chain.contains(&e) {
                        chain.push(e);
                    }
                }
            }
            chain
        });
        Geographic {
            chains,
            regions: regions.into_iter().map(|(r, l)| (r, l.into())).collect(),
        }
    }

    /// The compiled chains.
    pub fn chains(&self) -> &GeoChains {
        &self.chains
    }

    pub(crate) fn decide<T: Trace>(&self, ask: &Ask<'_>, trace: &mut T) -> Choice {
        let Ask {
            services: _,
            rule,
            input,
            health: _,
            family: _,
        } = *ask;
        let (chain, scope) = self.chains.chain(input);
        if trace.enabled() {
            let (location, text) = self.chains.describe(input, scope);
            trace.step(|| Step::note(0, text));
            for region in location.regions() {
                if let Some((_, list)) = self.regions.iter().find(|(r, _)| *r == region) {
                    let names = endpoint_names(rule, list);
                    trace.step(|| Step::note(0, format!("region {region} matches: [{names}]")));
                }
            }
        }
        first_fit(ask, chain.iter().map(|&i| usize::from(i)), scope, trace)
    }
}

/// The names of `list`'s endpoints of `rule`, comma-separated, for traces.
pub(crate) fn endpoint_names(rule: &ServiceRule, list: &[u16]) -> String {
    list.iter()
        .map(|&i| &*rule.endpoints[usize::from(i)].name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::super::testing::*;
    use super::super::*;
    use crate::geo::{GeoTable, Region};
    use crate::health::{Health, HealthViewBuilder};

    /// The test world of `tests/common/geodb.rs`, compiled.
    pub(crate) fn world() -> Arc<GeoTable> {
        let dir = std::env::temp_dir().join(format!(
            "steerdns-world-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("world.mmdb");
        crate::geo::geodb::world("GB").write(&path);
        let table = Arc::new(GeoTable::load(&path).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        table
    }

    fn service(regions: &[(&str, &[u16])]) -> (Vec<ServiceRule>, HealthView) {
        let mut b = HealthViewBuilder::default();
        let eps = endpoints(
            &mut b,
            &[
                E {
                    name: "lon",
                    addrs: &["192.0.2.1", "2001:db8::1"],
                    weight: 1,
                    priority: 0,
                },
                E {
                    name: "fra",
                    addrs: &["192.0.2.2"],
                    weight: 1,
                    priority: 0,
                },
                E {
                    name: "sfo",
                    addrs: &["192.0.2.3", "2001:db8::3"],
                    weight: 1,
                    priority: 0,
                },
                E {
                    name: "iad",
                    addrs: &["192.0.2.4"],
                    weight: 1,
                    priority: 0,
                },
            ],
        );
        let regions = regions
            .iter()
            .map(|(r, l)| (r.parse::<Region>().unwrap(), l.to_vec()))
            .collect();
        let method = Method::Geographic(Geographic::new(world(), regions));
        (vec![rule("geo.example.com.", method, eps)], b.build())
    }

    fn ask(s: &[ServiceRule], h: &HealthView, client: &str, len: u8) -> (Vec<String>, u8) {
        let mut i = input(client);
        i.source_prefix = len;
        let d = decide(s, 0, &i, h, Family::of(i.client), &mut ());
        (names(s, &d), d.scope)
    }

    #[test]
    fn the_most_specific_region_wins_with_the_widest_block_answered_alike_as_scope() {
        let (s, h) = service(&[
            ("EU", &[1, 0]),
            ("GB", &[0]),
            ("US-CA", &[2]),
            ("NA", &[3]),
            ("*", &[3]),
        ]);
        assert_eq!(
            ask(&s, &h, "81.2.69.0", 24),
            (vec!["lon".into()], 24),
            "country over continent"
        );
        assert_eq!(
            ask(&s, &h, "2.125.170.0", 24),
            (vec!["fra".into()], 19),
            "continent"
        );
        assert_eq!(
            ask(&s, &h, "216.160.83.0", 24),
            (vec!["sfo".into()], 24),
            "subdivision"
        );
        assert_eq!(
            ask(&s, &h, "216.160.84.0", 24),
            (vec!["iad".into()], 22),
            "continent NA; 216.160.84/22 gets iad throughout (the rest is `*`)"
        );
        assert_eq!(
            ask(&s, &h, "1.130.0.0", 16),
            (vec!["iad".into()], 7),
            "* for Oceania, like all of 0/7 (the next different answer is 2.125.160/19)"
        );
        assert_eq!(
            ask(&s, &h, "2001:db8:aa:1::", 56),
            (vec!["sfo".into()], 48),
            "IPv6"
        );
        // Not in the database: `*`, with a scope no known network splits.
        let (who, scope) = ask(&s, &h, "192.0.2.0", 24);
        assert_eq!(who, ["iad"]);
        assert!(scope < 24 && scope > 0, "{scope}");
        // Never longer than the source prefix.
        assert_eq!(ask(&s, &h, "81.2.0.0", 16).1, 16);
    }

    #[test]
    fn unfit_endpoints_fall_back_through_less_specific_regions() {
        let (s, h) = service(&[("GB", &[0]), ("EU", &[1]), ("*", &[3])]);
        h.set_health(s[0].endpoints[0].slot, Health::Down);
        assert_eq!(
            ask(&s, &h, "81.2.69.0", 24).0,
            ["fra"],
            "GB's list, then EU's"
        );
        h.set_health(s[0].endpoints[1].slot, Health::Down);
        assert_eq!(ask(&s, &h, "81.2.69.0", 24).0, ["iad"], "then *");
        h.set_health(s[0].endpoints[3].slot, Health::Down);
        let d = decide(&s, 0, &input("81.2.69.7"), &h, Family::V4, &mut ());
        assert!(
            matches!(d.pick, Pick::Endpoints { all: true, .. }),
            "fail open: {d:?}"
        );
        assert_eq!(names(&s, &d), ["lon"], "fail open with the most specific");
        // Without `*`, a client in no region gets NODATA.
        let (s, h) = service(&[("GB", &[0])]);
        assert_eq!(ask(&s, &h, "216.160.83.0", 24).0, ["Nothing"]);
    }
}
