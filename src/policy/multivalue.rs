//! Multivalue routing (Route 53's "multivalue answer"): the addresses of
//! every fit endpoint, at most `max-answers`, in an order rotated per query
//! so that clients that take the first address spread over all of them.
//! The answer does not depend on the client, so the ECS scope is 0.

use super::{fit, serves_family, Ask, Choice, Chosen, EndpointSet, Trace, WhenAllDown, MAX_PICK};

/// A multivalue service's settings.
#[derive(Debug, Clone)]
pub struct Multivalue {
    /// Most address records in one answer (1 to [`MAX_PICK`]).
    pub max_answers: u8,
}

impl Multivalue {
    pub(crate) fn decide<T: Trace>(&self, ask: &Ask<'_>, trace: &mut T) -> Choice {
        let Ask {
            services,
            rule,
            input,
            health,
            family,
        } = *ask;
        let serving = |i: &usize| serves_family(services, &rule.endpoints[*i], family, 0);
        let fit_now = |i: &usize| fit(services, &rule.endpoints[*i], health, family, 0);
        let all = 0..rule.endpoints.len();
        let fit_count = all.clone().filter(serving).filter(fit_now).count();
        let (count, fail_open) = match fit_count {
            0 => (all.clone().filter(serving).count(), true),
            n => (n, false),
        };
        if count == 0 {
            return Choice::nothing();
        }
        if fail_open && rule.when_all_down != WhenAllDown::All {
            trace.step(|| super::Step::note(0, "no endpoint fit".into()));
            return Choice {
                pick: Chosen::AllDown,
                scope: 0,
            };
        }
        // Start at a per-query offset among the candidates, wrapping round.
        let start = input.entropy as usize % count;
        let candidates = || {
            all.clone()
                .filter(serving)
                .filter(|i| fail_open || fit_now(i))
        };
        let mut set = EndpointSet::new();
        let take = count.min(usize::from(self.max_answers)).min(MAX_PICK);
        for i in candidates().skip(start).chain(candidates()).take(take) {
            set.push(i);
        }
        if trace.enabled() {
            for i in 0..rule.endpoints.len() {
                let chosen = set.iter().any(|c| c == i);
                let fit = fit_now(&i);
                trace.endpoint(rule, i, || {
                    let fit = if fit { "fit" } else { "unfit" };
                    let chosen = if chosen { "answered" } else { "not answered" };
                    format!("{fit}, {chosen}")
                });
            }
        }
        Choice {
            pick: Chosen::Endpoints {
                set,
                all: fail_open,
                limit: self.max_answers,
            },
            scope: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use crate::health::{Health, HealthViewBuilder};

    #[test]
    fn every_fit_endpoint_up_to_the_limit_rotated_per_query() {
        let mut b = HealthViewBuilder::default();
        let specs: Vec<E<'_>> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| E {
                name: n,
                addrs: &["192.0.2.1"],
                weight: 1,
                priority: 0,
            })
            .collect();
        let eps = endpoints(&mut b, &specs);
        let s = vec![rule(
            "m.example.com.",
            Method::Multivalue(Multivalue { max_answers: 3 }),
            eps,
        )];
        let h = b.build();
        let mut firsts = std::collections::BTreeSet::new();
        for entropy in 0..8 {
            let mut i = input("198.51.100.7");
            i.entropy = entropy;
            let d = decide(&s, 0, &i, &h, Family::V4, &mut ());
            let got = names(&s, &d);
            assert_eq!((got.len(), d.scope), (3, 0));
            firsts.insert(got[0].clone());
        }
        assert_eq!(firsts.len(), 4, "every endpoint comes first for some query");
        h.set_health(s[0].endpoints[1].slot, Health::Down);
        h.set_health(s[0].endpoints[2].slot, Health::Down);
        let d = decide(&s, 0, &input("198.51.100.7"), &h, Family::V4, &mut ());
        let mut got = names(&s, &d);
        got.sort();
        assert_eq!(got, ["a", "d"]);
        assert_eq!(
            decide(&s, 0, &input("198.51.100.7"), &h, Family::V6, &mut ()).pick,
            Pick::Nothing
        );
    }
}
