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
//! for the client, merged with neighbours that get the same chain.

use std::collections::HashMap;
use std::sync::Arc;

use super::{first_fit, Choice, Family, PolicyInput, ServiceRule, Services, Step, Trace};
use crate::geo::{GeoTable, Location, LocationId, Region};
use crate::health::HealthView;
use crate::prefix::PrefixTable;

/// Per-location fallback chains over a geo table; shared by geographic and
/// performance routing.
#[derive(Debug, Clone)]
pub struct GeoChains {
    geo: Arc<GeoTable>,
    /// Client network to chain index: the database's table with each
    /// location replaced by its chain, neighbours with one chain merged, so
    /// that the scope is the block that gets this service's answer, not
    /// only the client's location (RFC 7871 §7.2.1; gdnsd merges the same
    /// way per map).
    table: PrefixTable<u32>,
    /// The distinct chains of endpoint indexes.
    chains: Box<[Box<[u16]>]>,
}

impl GeoChains {
    /// Builds a chain for every location of `geo` (and for unknown
    /// clients, `None`) with `chain_for`, interning equal chains.
    pub fn new(geo: Arc<GeoTable>, chain_for: impl Fn(Option<&Location>) -> Vec<u16>) -> GeoChains {
        let mut chains: Vec<Box<[u16]>> = Vec::new();
        let mut index: HashMap<Vec<u16>, u32> = HashMap::new();
        let mut intern = |chain: Vec<u16>| -> u32 {
            *index.entry(chain.clone()).or_insert_with(|| {
                chains.push(chain.into());
                (chains.len() - 1) as u32
            })
        };
        let chain_of: Vec<u32> = geo
            .locations()
            .iter()
            .map(|l| intern(chain_for(Some(l))))
            .collect();
        let unknown = intern(chain_for(None));
        let table = geo.map_locations(|id| match chain_of.get(id as usize) {
            Some(&chain) => chain,
            None => unknown,
        });
        GeoChains {
            geo,
            table,
            chains: chains.into(),
        }
    }

    /// The client's chain, and the scope it holds for.
    #[inline]
    pub fn chain(&self, input: &PolicyInput) -> (&[u16], u8) {
        let (&chain, scope) = self.table.lookup(input.client, input.source_prefix);
        (&self.chains[chain as usize], scope)
    }

    /// The client's location, for explanations (the answer path needs only
    /// [`GeoChains::chain`]).
    pub fn location(&self, input: &PolicyInput) -> LocationId {
        self.geo.lookup(input.client, input.source_prefix).0
    }

    /// The table, for explanations.
    pub fn geo(&self) -> &GeoTable {
        &self.geo
    }

    /// How many distinct chains the locations share (load statistics).
    pub fn distinct(&self) -> usize {
        self.chains.len()
    }

    /// Describes the client's place for a trace.
    pub(crate) fn describe(&self, input: &PolicyInput, id: LocationId, scope: u8) -> String {
        let place = match self.geo.location(id) {
            Some(l) => l.to_string(),
            None => "not in the database".into(),
        };
        let block = crate::prefix::Prefix::around(input.client, scope);
        format!(
            "client {}/{}: {place} (database network, merged with neighbours that get the same answers: {block})",
            input.client, input.source_prefix
        )
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

    pub(crate) fn decide<T: Trace>(
        &self,
        services: &Services,
        rule: &ServiceRule,
        input: &PolicyInput,
        health: &HealthView,
        family: Family,
        trace: &mut T,
    ) -> Choice {
        let (chain, scope) = self.chains.chain(input);
        if trace.enabled() {
            let id = self.chains.location(input);
            trace.step(|| Step::note(0, self.chains.describe(input, id, scope)));
            let location = self.chains.geo().location(id).copied().unwrap_or_default();
            for region in location.regions() {
                if let Some((_, list)) = self.regions.iter().find(|(r, _)| *r == region) {
                    let names: Vec<&str> = list
                        .iter()
                        .map(|&i| &*rule.endpoints[usize::from(i)].name)
                        .collect();
                    trace.step(|| {
                        Step::note(
                            0,
                            format!("region {region} matches: [{}]", names.join(", ")),
                        )
                    });
                }
            }
        }
        let mut choice = first_fit(
            services,
            rule,
            chain.iter().map(|&i| usize::from(i)),
            health,
            family,
            scope,
            trace,
        );
        // No region matches and there is no `*`: NODATA for this client's
        // whole block.
        if chain.is_empty() {
            choice.scope = scope;
        }
        choice
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::super::testing::*;
    use super::super::*;
    use crate::geo::geodb::{GeoDb, Place};
    use crate::geo::{GeoTable, Region};
    use crate::health::{Health, HealthViewBuilder};

    /// A database: London (EU/GB/ENG), Frankfurt (EU/DE/HE), San Francisco
    /// (NA/US/CA), New York (NA/US/NY), Sydney (OC/AU, no subdivision),
    /// and 2001:db8:aa::/48 in California.
    pub(crate) fn world() -> Arc<GeoTable> {
        let dir = std::env::temp_dir().join(format!(
            "steerdns-world-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("world.mmdb");
        GeoDb::default()
            .add(
                "81.2.69.0/24",
                Place::new("EU", "GB", Some("ENG"), Some((51.51, -0.13))),
            )
            .add(
                "2.125.160.0/19",
                Place::new("EU", "DE", Some("HE"), Some((50.11, 8.68))),
            )
            .add(
                "216.160.83.0/24",
                Place::new("NA", "US", Some("CA"), Some((37.77, -122.42))),
            )
            .add(
                "216.160.84.0/24",
                Place::new("NA", "US", Some("NY"), Some((40.71, -74.0))),
            )
            .add(
                "1.128.0.0/11",
                Place::new("OC", "AU", None, Some((-33.87, 151.21))),
            )
            .add(
                "2001:db8:aa::/48",
                Place::new("NA", "US", Some("CA"), Some((37.77, -122.42))),
            )
            .write(&path);
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
    fn the_most_specific_region_wins_with_the_database_network_as_scope() {
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
        // New York gets NA's list, which is also `*`'s: its network
        // merges with the unknown space around it, up to the block that
        // leaves out San Francisco's 216.160.83.0/24.
        assert_eq!(
            ask(&s, &h, "216.160.84.0", 24),
            (vec!["iad".into()], 22),
            "continent NA"
        );
        // Sydney's /11 answers as everything outside the database does:
        // the scope reaches to 0.0.0.0/7, short of Frankfurt's 2.125/19.
        assert_eq!(
            ask(&s, &h, "1.130.0.0", 16),
            (vec!["iad".into()], 7),
            "* for Oceania"
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
