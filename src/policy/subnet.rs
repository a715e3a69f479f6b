//! Subnet routing (Azure's "subnet", Route 53's "IP-based"): client
//! networks (CIDR, IPv4 and IPv6) map to endpoints; the longest matching
//! range wins; an endpoint without ranges answers everyone else.
//!
//! When the endpoint of the longest range is unfit, the next shorter range
//! that contains the client answers, then the default endpoint, then the
//! service's `when-all-down`. The table stores, per run of addresses, that
//! whole fallback chain, so two neighbouring networks share a run (and an
//! ECS scope wide enough to cover both) only when every step of their
//! fallback agrees: the scope stays right whatever health does.

use super::{first_fit, Ask, Choice, PolicyInput, Trace};
use crate::prefix::{Prefix, PrefixTable, PrefixTableBuilder};

/// A subnet service's compiled table.
#[derive(Debug, Clone)]
pub struct Subnet {
    /// Each run's fallback chain of endpoint indexes, most specific range
    /// first, the default endpoint last.
    table: PrefixTable<Box<[u16]>>,
}

impl Subnet {
    /// Builds the table from each endpoint's ranges; `default` answers
    /// clients no range covers. Identical ranges on two endpoints must be
    /// refused before (the caller has their config lines).
    pub fn new(ranges: &[(Prefix, u16)], default: Option<u16>) -> Subnet {
        let mut builder = PrefixTableBuilder::default();
        for &(prefix, endpoint) in ranges {
            builder.insert(prefix, Box::from([endpoint]));
        }
        let tail: Box<[u16]> = default.into_iter().collect();
        // The table's values are boxed chains, so the merge sees `&Box`.
        #[allow(clippy::borrowed_box)]
        let table = builder.build(tail.clone(), |covering: &[&Box<[u16]>]| -> Box<[u16]> {
            covering
                .iter()
                .flat_map(|chain| chain.iter().copied())
                .chain(tail.iter().copied())
                .collect()
        });
        Subnet { table }
    }

    /// The fallback chain for a client and the scope it holds for.
    pub fn chain(&self, input: &PolicyInput) -> (&[u16], u8) {
        let (chain, scope) = self.table.lookup(input.client, input.source_prefix);
        (chain, scope)
    }

    pub(crate) fn decide<T: Trace>(&self, ask: &Ask<'_>, trace: &mut T) -> Choice {
        let Ask {
            services: _,
            rule,
            input,
            health: _,
            family: _,
        } = *ask;
        let (chain, scope) = self.chain(input);
        trace.step(|| {
            super::Step::note(
                0,
                format!(
                    "client {}/{}: fallback chain [{}], holds for /{scope}",
                    input.client,
                    input.source_prefix,
                    chain
                        .iter()
                        .map(|&i| &*rule.endpoints[usize::from(i)].name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        });
        let candidates = chain.iter().map(|&i| usize::from(i));
        first_fit(ask, candidates, scope, trace)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use crate::health::{Health, HealthViewBuilder};

    fn service(default: bool) -> (Vec<ServiceRule>, HealthView) {
        let mut b = HealthViewBuilder::default();
        let eps = endpoints(
            &mut b,
            &[
                E {
                    name: "wide",
                    addrs: &["192.0.2.1", "2001:db8::1"],
                    weight: 1,
                    priority: 0,
                },
                E {
                    name: "narrow",
                    addrs: &["192.0.2.2", "2001:db8::2"],
                    weight: 1,
                    priority: 0,
                },
                E {
                    name: "rest",
                    addrs: &["192.0.2.3", "2001:db8::3"],
                    weight: 1,
                    priority: 0,
                },
            ],
        );
        let ranges = [
            ("10.0.0.0/8".parse().unwrap(), 0),
            ("10.1.0.0/16".parse().unwrap(), 1),
            ("2001:db8:aa00::/40".parse().unwrap(), 1),
        ];
        let method = Method::Subnet(Subnet::new(&ranges, default.then_some(2)));
        (vec![rule("s.example.com.", method, eps)], b.build())
    }

    fn ask(s: &[ServiceRule], h: &HealthView, client: &str, source: u8) -> (Vec<String>, u8) {
        let mut i = input(client);
        i.source_prefix = source;
        let d = decide(s, 0, &i, h, Family::of(i.client), &mut ());
        (names(s, &d), d.scope)
    }

    #[test]
    fn longest_range_wins_with_its_length_as_scope() {
        let (s, h) = service(true);
        assert_eq!(ask(&s, &h, "10.1.2.0", 24), (vec!["narrow".into()], 16));
        // 10.2.0.0/15 is the widest block around it that leaves 10.1/16 out.
        assert_eq!(ask(&s, &h, "10.2.0.0", 24), (vec!["wide".into()], 15));
        assert_eq!(ask(&s, &h, "10.200.0.0", 24), (vec!["wide".into()], 9));
        assert_eq!(
            ask(&s, &h, "2001:db8:aa01::", 56),
            (vec!["narrow".into()], 40)
        );
        // Never longer than the source prefix.
        assert_eq!(ask(&s, &h, "10.1.0.0", 12), (vec!["narrow".into()], 12));
    }

    #[test]
    fn default_gets_a_scope_no_range_splits() {
        let (s, h) = service(true);
        // 11/8 sits beside 10/8: /8 is the widest block that leaves it out.
        assert_eq!(ask(&s, &h, "11.0.0.0", 24), (vec!["rest".into()], 8));
        assert_eq!(ask(&s, &h, "192.0.2.0", 24), (vec!["rest".into()], 1));
        assert_eq!(ask(&s, &h, "2001:db9::", 56), (vec!["rest".into()], 32));
        // Without a default, unmatched clients get NODATA.
        let (s, h) = service(false);
        assert_eq!(ask(&s, &h, "192.0.2.0", 24).0, ["Nothing"]);
    }

    #[test]
    fn unfit_endpoint_falls_back_to_the_shorter_range_then_default() {
        let (s, h) = service(true);
        h.set_health(s[0].endpoints[1].slot, Health::Down);
        assert_eq!(ask(&s, &h, "10.1.2.0", 24), (vec!["wide".into()], 16));
        h.set_health(s[0].endpoints[0].slot, Health::Down);
        assert_eq!(ask(&s, &h, "10.1.2.0", 24), (vec!["rest".into()], 16));
    }
}
