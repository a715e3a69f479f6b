//! Gradual return (`ramp-up` on a weighted service): an endpoint that
//! comes back is not handed its full share of clients at once, but a share
//! that grows linearly from almost nothing to its full weight over the
//! ramp time, so a cold cache or a just-restarted backend is not flooded.
//!
//! "Comes back" means it turns fit again after being unfit: its probe
//! verdict goes from down to up, or an operator's drain or a maintenance
//! window ends. An endpoint fit when first seen (at start, or new in a
//! reload) starts at full weight.
//!
//! The answer path reads no clock for this: once a second, [`watch`] works
//! out each ramping endpoint's factor and writes it into the health view
//! (a relaxed atomic per slot, written only when it changes), and weighted
//! routing multiplies the weight by it. The arithmetic ([`factor`]) and the
//! bookkeeping ([`Ramps::tick`]) take the time as an argument.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::health::FULL_WEIGHT;
use crate::policy::{Family, Method};
use crate::snapshot::Snapshot;

/// How often factors are recomputed: a ramp moves in steps of this.
pub const TICK: Duration = Duration::from_secs(1);

/// The weight factor `elapsed` into a ramp of `ramp`: linear from 1 (not
/// 0, so the endpoint still takes part, with a tiny share) to
/// [`FULL_WEIGHT`].
pub fn factor(elapsed: Duration, ramp: Duration) -> u16 {
    if ramp.is_zero() || elapsed >= ramp {
        return FULL_WEIGHT;
    }
    let fraction = elapsed.as_secs_f64() / ramp.as_secs_f64();
    // In 1..FULL_WEIGHT: the cast cannot overflow.
    (fraction * f64::from(FULL_WEIGHT)).max(1.0) as u16
}

/// What the ticker remembers of each endpoint of a ramping service, by
/// service and endpoint name, so a reload (new slots) keeps ramps going.
#[derive(Debug, Default)]
pub struct Ramps {
    endpoints: HashMap<(String, String), Seen>,
}

/// One endpoint as last seen.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// Whether it was fit.
    fit: bool,
    /// When it came back, while its ramp runs.
    back_at: Option<Duration>,
}

impl Ramps {
    /// Looks at every endpoint of every weighted service with a ramp in
    /// `snapshot` at `now` (any monotonic clock, as a duration since its
    /// zero) and writes each one's weight factor into the health view.
    pub fn tick(&mut self, snapshot: &Snapshot, now: Duration) {
        let mut present = Vec::new();
        for rule in snapshot.services.iter() {
            let Method::Weighted(w) = &rule.method else {
                continue;
            };
            let Some(ramp) = w.ramp_up else {
                continue;
            };
            let service = rule.name.to_string();
            for e in rule.endpoints.iter() {
                let fit = [Family::V4, Family::V6]
                    .into_iter()
                    .any(|f| rule.fit(&snapshot.services, e, &snapshot.health, f));
                let key = (service.clone(), e.name.to_string());
                let seen = self
                    .endpoints
                    .entry(key.clone())
                    .or_insert(Seen { fit, back_at: None });
                if fit && !seen.fit {
                    seen.back_at = Some(now);
                }
                seen.fit = fit;
                let f = match seen.back_at {
                    Some(at) => factor(now.saturating_sub(at), ramp),
                    None => FULL_WEIGHT,
                };
                if f == FULL_WEIGHT {
                    seen.back_at = None;
                }
                snapshot.health.set_weight_factor(e.slot, f);
                present.push(key);
            }
        }
        // Forget endpoints a reload removed.
        if present.len() != self.endpoints.len() {
            self.endpoints.retain(|k, _| present.contains(k));
        }
    }
}

/// Runs [`Ramps::tick`] on the current snapshot every [`TICK`] until the
/// task is dropped.
pub async fn watch(snapshot: Arc<ArcSwap<Snapshot>>) {
    let zero = Instant::now();
    let mut ramps = Ramps::default();
    let mut interval = tokio::time::interval(TICK);
    loop {
        interval.tick().await;
        ramps.tick(&snapshot.load(), zero.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Health;
    use crate::snapshot::test_snapshot;

    #[test]
    fn the_factor_grows_linearly_to_full() {
        let ramp = Duration::from_secs(300);
        let at = |s: u64| factor(Duration::from_secs(s), ramp);
        assert_eq!(at(0), 1);
        assert_eq!(at(150), FULL_WEIGHT / 2);
        assert_eq!(at(75), FULL_WEIGHT / 4);
        assert_eq!(at(300), FULL_WEIGHT);
        assert_eq!(at(9999), FULL_WEIGHT);
        assert_eq!(factor(Duration::ZERO, Duration::ZERO), FULL_WEIGHT);
    }

    fn snapshot(tag: &str) -> Snapshot {
        test_snapshot(
            &format!("ramp-{tag}"),
            "[[service]]\nname = \"www.z.test.\"\nrouting = \"weighted\"\nramp-up = \"100s\"\n\
             endpoints = [{ name = \"a\", addresses = [\"192.0.2.20\"] }, { name = \"b\", addresses = [\"192.0.2.30\"] }]\n\
             [[service]]\nname = \"api.z.test.\"\nrouting = \"weighted\"\n\
             endpoints = [{ name = \"a\", addresses = [\"192.0.2.40\"] }]\n",
        )
    }

    #[test]
    fn ramp_up_is_a_weighted_duration() {
        use crate::config::tests::parse_with;
        let service = |routing: &str, ramp: &str| {
            parse_with(&format!(
                "[[service]]\nname = \"www.example.com\"\nrouting = \"{routing}\"\nramp-up = \"{ramp}\"\n\
                 endpoints = [{{ name = \"a\", addresses = [\"192.0.2.1\"] }}]\n"
            ))
        };
        let c = service("weighted", "5m").unwrap();
        assert_eq!(
            c.services[0].weighted.ramp_up,
            Some(Duration::from_secs(300))
        );
        let e = service("priority", "5m").unwrap_err();
        assert!(e.contains(":9: service.ramp-up"), "{e}");
        let e = service("weighted", "soon").unwrap_err();
        assert!(e.contains(":9: service.ramp-up: bad duration"), "{e}");
    }

    #[test]
    fn an_endpoint_that_comes_back_ramps_and_one_fit_from_the_start_does_not() {
        let snap = snapshot("back");
        let [a, b] = [0, 1].map(|i| snap.services[0].endpoints[i].slot);
        let other = snap.services[1].endpoints[0].slot;
        let mut ramps = Ramps::default();
        let s = Duration::from_secs;
        ramps.tick(&snap, s(0));
        assert_eq!(snap.health.weight_factor(a), FULL_WEIGHT);
        // a goes down, then comes back at 10 s (a fake clock).
        snap.health.set_health(a, Health::Down);
        ramps.tick(&snap, s(5));
        snap.health.set_health(a, Health::Up);
        snap.health.set_health(other, Health::Down);
        ramps.tick(&snap, s(10));
        assert_eq!(snap.health.weight_factor(a), 1);
        ramps.tick(&snap, s(60));
        assert_eq!(snap.health.weight_factor(a), FULL_WEIGHT / 2);
        // A drain ending is a return too: b ramps from its undrain.
        snap.health.set_drained(b, true);
        ramps.tick(&snap, s(70));
        snap.health.set_drained(b, false);
        ramps.tick(&snap, s(80));
        assert_eq!(snap.health.weight_factor(b), 1);
        ramps.tick(&snap, s(110));
        assert_eq!(snap.health.weight_factor(a), FULL_WEIGHT);
        assert_eq!(snap.health.weight_factor(b), FULL_WEIGHT * 3 / 10);
        // A service without ramp-up is left at full weight.
        snap.health.set_health(other, Health::Up);
        ramps.tick(&snap, s(111));
        assert_eq!(snap.health.weight_factor(other), FULL_WEIGHT);
    }
}
