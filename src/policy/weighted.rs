//! Weighted routing (Azure's "weighted", Route 53's "weighted"): endpoints
//! share clients by weight.
//!
//! The choice is **sticky per client network**: weighted rendezvous hashing
//! (highest random weight) scores each fit endpoint by a hash of the
//! client's network, the service and the endpoint, and the best score wins.
//! One network keeps its endpoint while health does not change; an endpoint
//! that goes down loses only its own clients, and they spread over the rest
//! by weight; nothing is rebuilt when health changes. The network is the
//! client address cut to `/24` (IPv4) or `/56` (IPv6) by default, never
//! past the ECS source prefix; that cut is the ECS scope of the answer.
//!
//! Weight 0 marks a backup, answered only when no weighted endpoint is fit
//! (as in Route 53). With `sticky = false` each query draws anew.
//!
//! With `ramp-up`, an endpoint that comes back is scaled from almost no
//! weight to its full weight over that time: its factor in the health
//! view (written once a second by `crate::ramp`) multiplies its weight.
//! Rendezvous hashing keeps this smooth: as the factor grows, clients move
//! to the returning endpoint only, never between the others.

use std::net::IpAddr;
use std::time::Duration;

use super::{fit, serves_family, Ask, Choice, Chosen, PolicyInput, Trace, WhenAllDown};
use crate::health::FULL_WEIGHT;
use crate::prefix::{to_key, width, Prefix};

/// A weighted service's settings.
#[derive(Debug, Clone)]
pub struct Weighted {
    /// Hash on the client network (`true`), or draw per query.
    pub sticky: bool,
    /// Bits of an IPv4 client address that make its network.
    pub v4_prefix: u8,
    /// Bits of an IPv6 client address that make its network.
    pub v6_prefix: u8,
    /// How long an endpoint that comes back takes to reach its full
    /// weight; `None`: at once.
    pub ramp_up: Option<Duration>,
}

impl Default for Weighted {
    fn default() -> Self {
        Weighted {
            sticky: true,
            v4_prefix: 24,
            v6_prefix: 56,
            ramp_up: None,
        }
    }
}

/// Which endpoints a round may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Weighted and fit.
    Weighted,
    /// Backups (weight 0) and fit.
    Backup,
    /// Fail open: every weighted endpoint as if fit, else every backup.
    FailOpenWeighted,
    FailOpenBackup,
}

impl Weighted {
    /// The client network hashed, and its length (the ECS scope).
    pub fn network(&self, input: &PolicyInput) -> (u128, u8) {
        let cut = match input.client {
            IpAddr::V4(_) => self.v4_prefix,
            IpAddr::V6(_) => self.v6_prefix,
        };
        let len = cut.min(input.source_prefix).min(width(input.client));
        let network = Prefix::around(input.client, len).network;
        (to_key(network), len)
    }

    pub(crate) fn decide<T: Trace>(&self, ask: &Ask<'_>, trace: &mut T) -> Choice {
        let Ask {
            services,
            rule,
            input,
            health,
            family,
        } = *ask;
        let (key, len) = if self.sticky {
            self.network(input)
        } else {
            (u128::from(input.entropy), 0)
        };
        let family_mark = u64::from(input.client.is_ipv6());
        let base = mix(
            rule.seed ^ family_mark,
            key as u64 ^ (key >> 64) as u64,
            len,
        );
        let rounds = [
            Round::Weighted,
            Round::Backup,
            Round::FailOpenWeighted,
            Round::FailOpenBackup,
        ];
        for round in rounds {
            let fail_open = matches!(round, Round::FailOpenWeighted | Round::FailOpenBackup);
            if fail_open && rule.when_all_down != WhenAllDown::All {
                let serving = rule
                    .endpoints
                    .iter()
                    .any(|e| serves_family(services, e, family, 0));
                if !serving {
                    return Choice::nothing();
                }
                return Choice {
                    pick: Chosen::AllDown,
                    scope: 0,
                };
            }
            let backup = matches!(round, Round::Backup | Round::FailOpenBackup);
            let mut best: Option<(f64, usize)> = None;
            let mut candidates = 0;
            for (i, e) in rule.endpoints.iter().enumerate() {
                if (e.weight == 0) != backup || !serves_family(services, e, family, 0) {
                    continue;
                }
                if !fail_open && !fit(services, e, health, family, 0) {
                    trace.endpoint(rule, i, || "unfit: skipped".into());
                    continue;
                }
                candidates += 1;
                // One relaxed load: the factor is full unless ramping.
                let weight = f64::from(e.weight.max(1))
                    * f64::from(health.weight_factor(e.slot).max(1))
                    / f64::from(FULL_WEIGHT);
                let score = score(base, e.seed, weight);
                trace.endpoint(rule, i, || {
                    let factor = health.weight_factor(e.slot);
                    let ramp = if factor < FULL_WEIGHT {
                        format!(
                            " (ramping up: {:.0} %)",
                            100.0 * weight / f64::from(e.weight.max(1))
                        )
                    } else {
                        String::new()
                    };
                    format!("weight {}{ramp}, score {score:.4}", e.weight)
                });
                if best.is_none_or(|(s, _)| score > s) {
                    best = Some((score, i));
                }
            }
            if let Some((_, i)) = best {
                trace.endpoint(rule, i, || {
                    let why = match round {
                        Round::Weighted => "highest score: chosen",
                        Round::Backup => "no weighted endpoint fit; backup chosen",
                        _ => "none fit; failing open",
                    };
                    why.into()
                });
                // With one candidate the client did not matter.
                let scope = if candidates > 1 { len } else { 0 };
                return Choice::one(i, fail_open, scope);
            }
        }
        Choice::nothing()
    }
}

/// The rendezvous score of one endpoint: `u^(1/w)` for a uniform `u` from
/// the hash, compared as `ln(u) / w` (larger wins), which picks each
/// endpoint with probability proportional to its weight.
fn score(base: u64, seed: u64, weight: f64) -> f64 {
    let h = mix(base, seed, 0);
    // 53 random bits, shifted off 0 so the logarithm is finite.
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    u.ln() / weight
}

/// A 64-bit mix of three values (the finaliser of SplitMix64 over a
/// combination): cheap, and good enough that neighbouring networks score
/// independently.
fn mix(a: u64, b: u64, c: u8) -> u64 {
    let mut z = a
        .wrapping_add(b.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(u64::from(c).wrapping_mul(0xd6e8_feb8_6659_fd93));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::super::testing::*;
    use super::super::*;
    use crate::health::{Health, HealthViewBuilder};

    fn service(weights: &[u32]) -> (Vec<ServiceRule>, HealthView) {
        let mut b = HealthViewBuilder::default();
        let names = ["fra", "iad", "sin", "spare", "spare2"];
        let specs: Vec<E<'_>> = weights
            .iter()
            .zip(names)
            .map(|(&weight, name)| E {
                name,
                addrs: &["192.0.2.1", "2001:db8::1"],
                weight,
                priority: 0,
            })
            .collect();
        let eps = endpoints(&mut b, &specs);
        let rule = rule("w.example.com.", Method::Weighted(Weighted::default()), eps);
        (vec![rule], b.build())
    }

    /// A random /24 network (xorshift, fixed seed).
    fn networks(n: usize) -> impl Iterator<Item = PolicyInput> {
        let mut x: u32 = 0x1234_5678;
        (0..n).map(move |_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let mut i = input(&Ipv4Addr::from(x & 0xffff_ff00).to_string());
            i.source_prefix = 24;
            i
        })
    }

    fn chosen(s: &[ServiceRule], h: &HealthView, i: &PolicyInput) -> usize {
        match decide(s, 0, i, h, Family::V4, &mut ()).pick {
            Pick::Endpoints { set, .. } => set.iter().next().unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shares_follow_weights_sticky_and_minimal_movement() {
        let weights = [3, 1, 2, 0];
        let (s, h) = service(&weights);
        let inputs: Vec<PolicyInput> = networks(100_000).collect();
        let before: Vec<usize> = inputs.iter().map(|i| chosen(&s, &h, i)).collect();
        let mut counts = [0usize; 4];
        for &c in &before {
            counts[c] += 1;
        }
        for (i, &w) in weights.iter().enumerate() {
            let share = counts[i] as f64 / inputs.len() as f64;
            let want = f64::from(w) / 6.0;
            assert!(
                (share - want).abs() < 0.02,
                "endpoint {i}: {share} against {want}"
            );
        }
        // The same network always gets the same endpoint.
        for (i, input) in inputs.iter().enumerate().take(1000) {
            assert_eq!(chosen(&s, &h, input), before[i]);
        }
        // Endpoint 0 goes down: only its clients move, and they spread.
        h.set_health(s[0].endpoints[0].slot, Health::Down);
        let mut moved_to = [0usize; 4];
        for (i, input) in inputs.iter().enumerate() {
            let now = chosen(&s, &h, input);
            if before[i] == 0 {
                moved_to[now] += 1;
            } else {
                assert_eq!(now, before[i], "a client of a healthy endpoint moved");
            }
        }
        assert_eq!(
            moved_to[0] + moved_to[3],
            0,
            "backup untouched while others are fit"
        );
        let ratio = moved_to[2] as f64 / moved_to[1] as f64;
        assert!(
            (ratio - 2.0).abs() < 0.15,
            "moved clients split by weight: {ratio}"
        );
    }

    #[test]
    fn scope_is_the_hash_prefix_and_backup_only_when_all_weighted_are_down() {
        let (s, h) = service(&[1, 1, 0]);
        let mut i = input("198.51.100.77");
        let d = decide(&s, 0, &i, &h, Family::V4, &mut ());
        assert_eq!(d.scope, 24);
        i.source_prefix = 20;
        assert_eq!(
            decide(&s, 0, &i, &h, Family::V4, &mut ()).scope,
            20,
            "never past the source"
        );
        let mut i6 = input("2001:db8:1234:5678::1");
        i6.source_prefix = 64;
        assert_eq!(decide(&s, 0, &i6, &h, Family::V6, &mut ()).scope, 56);
        // One candidate left: the client did not matter.
        h.set_health(s[0].endpoints[0].slot, Health::Down);
        let d = decide(&s, 0, &i, &h, Family::V4, &mut ());
        assert_eq!((names(&s, &d), d.scope), (vec!["iad".into()], 0));
        h.set_health(s[0].endpoints[1].slot, Health::Down);
        assert_eq!(
            names(&s, &decide(&s, 0, &i, &h, Family::V4, &mut ())),
            ["sin"]
        );
        h.set_health(s[0].endpoints[2].slot, Health::Down);
        let d = decide(&s, 0, &i, &h, Family::V4, &mut ());
        assert!(
            matches!(d.pick, Pick::Endpoints { all: true, .. }),
            "fail open"
        );
        assert_ne!(
            names(&s, &d),
            ["sin"],
            "fail open prefers weighted endpoints"
        );
    }

    #[test]
    fn a_ramping_endpoint_gets_its_share_of_the_factor() {
        let (s, h) = service(&[1, 1, 2]);
        let inputs: Vec<PolicyInput> = networks(50_000).collect();
        let full: Vec<usize> = inputs.iter().map(|i| chosen(&s, &h, i)).collect();
        let fra = s[0].endpoints[0].slot;
        // Weights 1, 1, 2 with fra's scaled by the ramp's fraction f:
        // fra's share is f / (f + 3), at 0 %, 50 % and 100 % of the ramp.
        let ramp = Duration::from_secs(300);
        for (elapsed, want) in [(0, 0.0), (150, 0.5 / 3.5), (300, 0.25)] {
            let factor = crate::ramp::factor(Duration::from_secs(elapsed), ramp);
            h.set_weight_factor(fra, factor);
            let mut on_fra = 0;
            for (input, &before) in inputs.iter().zip(&full) {
                let now = chosen(&s, &h, input);
                on_fra += u32::from(now == 0);
                // Only fra's clients move (to the others and back as it
                // ramps), never another endpoint's.
                if before != 0 {
                    assert_eq!(now, before, "a client of another endpoint moved");
                }
            }
            let share = f64::from(on_fra) / inputs.len() as f64;
            assert!(
                (share - want).abs() < 0.01,
                "{elapsed} s into the ramp: share {share} against {want}"
            );
            // `explain` says the endpoint is ramping, and how far.
            let mut trace = Explanation::default();
            decide(&s, 0, &inputs[0], &h, Family::V4, &mut trace);
            let fra_step = &trace.steps[1].text;
            match elapsed {
                150 => assert!(fra_step.contains("ramping up: 50 %"), "{fra_step}"),
                300 => assert!(!fra_step.contains("ramping"), "{fra_step}"),
                _ => {}
            }
        }
    }

    #[test]
    fn non_sticky_draws_per_query() {
        let (mut s, h) = service(&[1, 1]);
        s[0].method = Method::Weighted(Weighted {
            sticky: false,
            ..Weighted::default()
        });
        let mut seen = [0; 2];
        for entropy in 0..200 {
            let mut i = input("198.51.100.77");
            i.entropy = entropy;
            let d = decide(&s, 0, &i, &h, Family::V4, &mut ());
            assert_eq!(d.scope, 0);
            seen[chosen(&s, &h, &i)] += 1;
        }
        assert!(seen[0] > 50 && seen[1] > 50, "{seen:?}");
    }
}
