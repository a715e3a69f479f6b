//! Priority routing (Azure's "priority", Route 53's "failover"): the fit
//! endpoint with the lowest priority answers; the others stand by. The
//! answer does not depend on the client, so the ECS scope is 0.

use super::{first_fit, Ask, Choice, Trace};

/// A priority service's compiled order.
#[derive(Debug, Clone)]
pub struct Priority {
    /// Endpoint indexes, lowest priority first (priorities are distinct,
    /// checked at load).
    pub order: Box<[u16]>,
}

impl Priority {
    /// Orders the endpoints of `rule` by their priority.
    pub fn new(endpoints: &[super::Endpoint]) -> Priority {
        let mut order: Vec<u16> = (0..endpoints.len() as u16).collect();
        order.sort_by_key(|&i| endpoints[usize::from(i)].priority);
        Priority {
            order: order.into(),
        }
    }

    pub(crate) fn decide<T: Trace>(&self, ask: &Ask<'_>, trace: &mut T) -> Choice {
        let order = self.order.iter().map(|&i| usize::from(i));
        first_fit(ask, order, 0, trace)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use crate::health::{Health, HealthViewBuilder};

    fn service(when: WhenAllDown) -> (Vec<ServiceRule>, HealthView) {
        let mut b = HealthViewBuilder::default();
        let eps = endpoints(
            &mut b,
            &[
                E {
                    name: "b",
                    addrs: &["192.0.2.2"],
                    weight: 1,
                    priority: 2,
                },
                E {
                    name: "a",
                    addrs: &["192.0.2.1", "2001:db8::1"],
                    weight: 1,
                    priority: 1,
                },
                E {
                    name: "c",
                    addrs: &["2001:db8::3"],
                    weight: 1,
                    priority: 3,
                },
            ],
        );
        let method = Method::Priority(Priority::new(&eps));
        let mut rule = rule("p.example.com.", method, eps);
        rule.when_all_down = when;
        rule.degraded_ttl = Some(5);
        (vec![rule], b.build())
    }

    fn ask(s: &[ServiceRule], h: &HealthView, family: Family) -> Decision {
        decide(s, 0, &input("198.51.100.7"), h, family, &mut ())
    }

    #[test]
    fn lowest_priority_fit_endpoint_answers_with_scope_zero() {
        let (s, h) = service(WhenAllDown::All);
        let d = ask(&s, &h, Family::V4);
        assert_eq!((names(&s, &d), d.scope, d.ttl), (vec!["a".into()], 0, 30));
        h.set_health(s[0].endpoints[1].slot, Health::Down);
        let d = ask(&s, &h, Family::V4);
        assert_eq!(
            (names(&s, &d), d.ttl),
            (vec!["b".into()], 5),
            "degraded TTL"
        );
        // Only endpoints with an address of the family count.
        assert_eq!(names(&s, &ask(&s, &h, Family::V6)), ["c"]);
        h.set_drained(s[0].endpoints[0].slot, true);
        assert_eq!(
            ask(&s, &h, Family::V4).pick,
            Pick::Endpoints {
                service: 0,
                set: EndpointSet::one(1),
                all: true,
                limit: u8::MAX
            },
            "all down: fail open with the first by priority"
        );
    }

    #[test]
    fn all_down_follows_the_service_setting() {
        for (when, want) in [
            (WhenAllDown::ServFail, Pick::ServFail),
            (WhenAllDown::NoData, Pick::Nothing),
        ] {
            let (s, h) = service(when);
            for e in s[0].endpoints.iter() {
                h.set_health(e.slot, Health::Down);
            }
            assert_eq!(ask(&s, &h, Family::V4).pick, want, "{when:?}");
        }
    }
}
