//! Performance routing (Azure's "performance", Route 53's "latency" and
//! "geoproximity"): the fit endpoint nearest the client.
//!
//! Each endpoint has a location; the client's coordinates come from a City
//! database. At load time every location of the database gets its
//! endpoints ordered by great-circle distance, so a query costs one table
//! lookup and the health checks of the nearest endpoints, with no
//! trigonometry. An operator's measured order for a region (`overrides`)
//! takes precedence over distance for clients in that region, and one for
//! a client prefix over both; clients the
//! database cannot place get the `default` endpoint first. The ECS scope is
//! the database's network for the client.

use std::collections::HashMap;
use std::sync::Arc;

use super::geographic::{endpoint_names, GeoChains};
use super::{first_fit, fit, serves_family, Ask, Choice, Chosen, EndpointSet, Step, Trace};
use crate::geo::{distance_km, GeoTable, Location, Region};
use crate::prefix::Prefix;

/// A performance service, compiled.
#[derive(Debug, Clone)]
pub struct Performance {
    chains: GeoChains,
    /// How many of the nearest fit endpoints answer.
    answers: u8,
    /// Endpoint coordinates, for explanations.
    locations: Box<[(f64, f64)]>,
    /// The operator's prefix overrides, for explanations.
    prefixes: Box<[(Prefix, Box<[u16]>)]>,
}

impl Performance {
    /// Orders the endpoints at `locations` (indexed like the service's
    /// endpoints) for every location of the database.
    pub fn new(
        geo: Arc<GeoTable>,
        locations: Vec<(f64, f64)>,
        overrides: Vec<(Region, Vec<u16>)>,
        prefixes: Vec<(Prefix, Vec<u16>)>,
        default: Option<u16>,
        answers: u8,
    ) -> Performance {
        let overrides: HashMap<Region, Vec<u16>> = overrides.into_iter().collect();
        let all: Vec<u16> = (0..locations.len() as u16).collect();
        let chains = GeoChains::new(geo, |location: Option<&Location>| {
            let place = location.and_then(|l| l.degrees());
            let mut chain: Vec<u16> = Vec::new();
            // The most specific override first; distance for the rest.
            if let Some(l) = location {
                if let Some(list) = l.regions().find_map(|r| overrides.get(&r)) {
                    chain.extend(list);
                }
            }
            match place {
                Some(p) => {
                    let mut by_distance = all.clone();
                    by_distance.sort_by(|&a, &b| {
                        let da = distance_km(p, locations[usize::from(a)]);
                        let db = distance_km(p, locations[usize::from(b)]);
                        da.total_cmp(&db).then(a.cmp(&b))
                    });
                    chain.extend(by_distance);
                }
                None => {
                    chain.extend(default);
                    chain.extend(&all);
                }
            }
            let mut seen = Vec::with_capacity(chain.len());
            chain.retain(|e| {
                let new = !seen.contains(e);
                seen.push(*e);
                new
            });
            chain
        })
        .with_prefix_overrides(&prefixes);
        Performance {
            chains,
            answers,
            locations: locations.into(),
            prefixes: prefixes.into_iter().map(|(p, l)| (p, l.into())).collect(),
        }
    }

    /// The compiled chains.
    pub fn chains(&self) -> &GeoChains {
        &self.chains
    }

    pub(crate) fn decide<T: Trace>(&self, ask: &Ask<'_>, trace: &mut T) -> Choice {
        let Ask {
            services,
            rule,
            input,
            health,
            family,
        } = *ask;
        let (chain, scope) = self.chains.chain(input);
        if trace.enabled() {
            let (location, text) = self.chains.describe(input, scope);
            trace.step(|| Step::note(0, text));
            let over = self
                .prefixes
                .iter()
                .filter(|(p, _)| p.contains(input.client))
                .max_by_key(|(p, _)| p.len);
            if let Some((prefix, list)) = over {
                let names = endpoint_names(rule, list);
                trace.step(|| Step::note(0, format!("override {prefix} matches: [{names}] first")));
            }
            let place = location.degrees();
            for &i in chain {
                let i = usize::from(i);
                let km = place.map(|p| distance_km(p, self.locations[i]));
                trace.step(|| {
                    let text = match km {
                        Some(km) => format!("{}: {km:.0} km away", rule.endpoints[i].name),
                        None => format!("{}: (client not placed)", rule.endpoints[i].name),
                    };
                    Step::note(0, text)
                });
            }
        }
        let candidates = chain.iter().map(|&i| usize::from(i));
        if self.answers <= 1 {
            return first_fit(ask, candidates, scope, trace);
        }
        // The nearest `answers` fit endpoints, in order of distance.
        let mut set = EndpointSet::new();
        for i in candidates.clone() {
            let e = &rule.endpoints[i];
            if set.len() < usize::from(self.answers)
                && serves_family(services, e, family, 0)
                && fit(services, e, health, family, 0)
            {
                set.push(i);
            }
        }
        if set.is_empty() {
            return first_fit(ask, candidates, scope, trace);
        }
        Choice {
            pick: Chosen::Endpoints {
                set,
                all: false,
                limit: u8::MAX,
            },
            scope,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::geographic::tests::world;
    use super::super::testing::*;
    use super::super::*;
    use crate::geo::Region;
    use crate::health::{Health, HealthViewBuilder};

    fn service(overrides: &[(&str, &[u16])], answers: u8) -> (Vec<ServiceRule>, HealthView) {
        with_prefixes(overrides, &[], answers)
    }

    fn with_prefixes(
        overrides: &[(&str, &[u16])],
        prefixes: &[(&str, &[u16])],
        answers: u8,
    ) -> (Vec<ServiceRule>, HealthView) {
        let mut b = HealthViewBuilder::default();
        let eps = endpoints(
            &mut b,
            &[
                E {
                    name: "lon",
                    addrs: &["192.0.2.1"],
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
                    addrs: &["192.0.2.3"],
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
        let at = vec![(51.5, -0.1), (50.1, 8.7), (37.8, -122.4), (38.9, -77.0)];
        let overrides = overrides
            .iter()
            .map(|(r, l)| (r.parse::<Region>().unwrap(), l.to_vec()))
            .collect();
        let prefixes = prefixes
            .iter()
            .map(|(p, l)| (p.parse().unwrap(), l.to_vec()))
            .collect();
        let method = Method::Performance(Performance::new(
            world(),
            at,
            overrides,
            prefixes,
            Some(3),
            answers,
        ));
        (vec![rule("near.example.com.", method, eps)], b.build())
    }

    fn ask(s: &[ServiceRule], h: &HealthView, client: &str) -> (Vec<String>, u8) {
        let d = decide(s, 0, &input(client), h, Family::V4, &mut ());
        (names(s, &d), d.scope)
    }

    #[test]
    fn the_nearest_fit_endpoint_answers() {
        let (s, h) = service(&[], 1);
        assert_eq!(ask(&s, &h, "81.2.69.9"), (vec!["lon".into()], 24));
        assert_eq!(ask(&s, &h, "2.125.170.1"), (vec!["fra".into()], 19));
        assert_eq!(
            ask(&s, &h, "216.160.84.1").0,
            ["iad"],
            "New York: Washington"
        );
        assert_eq!(ask(&s, &h, "1.130.0.1").0, ["sfo"], "Sydney: San Francisco");
        h.set_health(s[0].endpoints[0].slot, Health::Down);
        assert_eq!(ask(&s, &h, "81.2.69.9").0, ["fra"], "next nearest");
        // Unplaced clients get the default first.
        assert_eq!(ask(&s, &h, "192.0.2.9").0, ["iad"]);
    }

    #[test]
    fn prefix_overrides_win_and_keep_scopes_exact() {
        // 81.2.69.0/24 is London in the test world (scope 24 above); the
        // operator measured that 81.2.69.128/25 is better served by iad.
        let (s, h) = with_prefixes(&[("GB", &[2])], &[("81.2.69.128/25", &[3, 1])], 1);
        assert_eq!(ask(&s, &h, "81.2.69.200"), (vec!["iad".into()], 25));
        // The other half keeps its region override, with a scope that
        // leaves the prefix out.
        assert_eq!(ask(&s, &h, "81.2.69.9"), (vec!["sfo".into()], 25));
        // The prefix's list first, then the client's own chain.
        h.set_health(s[0].endpoints[3].slot, Health::Down);
        assert_eq!(ask(&s, &h, "81.2.69.200").0, ["fra"]);
        h.set_health(s[0].endpoints[1].slot, Health::Down);
        assert_eq!(ask(&s, &h, "81.2.69.200").0, ["sfo"], "GB's override next");
        // An override for clients the database cannot place.
        let (s, h) = with_prefixes(&[], &[("192.0.2.0/24", &[1])], 1);
        assert_eq!(ask(&s, &h, "192.0.2.9").0, ["fra"]);
    }

    #[test]
    fn overrides_and_nearest_n() {
        let (s, h) = service(&[("GB", &[2])], 1);
        assert_eq!(ask(&s, &h, "81.2.69.9").0, ["sfo"], "measured order wins");
        assert_eq!(ask(&s, &h, "2.125.170.1").0, ["fra"], "others by distance");
        let (s, h) = service(&[], 2);
        assert_eq!(ask(&s, &h, "81.2.69.9").0, ["lon", "fra"]);
        h.set_health(s[0].endpoints[1].slot, Health::Down);
        assert_eq!(ask(&s, &h, "81.2.69.9").0, ["lon", "iad"]);
    }
}
