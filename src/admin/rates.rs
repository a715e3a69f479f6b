//! Query rates per service for the status page and `/api/v1/status`:
//! answers per second over the last minute or so, from the per-service
//! answer counters that `/metrics` serves.
//!
//! Counters only grow, so a rate needs an earlier reading. A tokio task
//! ([`AdminListener::serve`](super::AdminListener::serve) starts it) takes
//! one every [`SAMPLE_EVERY`] and keeps the last [`SAMPLES_KEPT`]; a request
//! reads the counters once more and divides what they gained since the
//! oldest kept reading by the time between them. The UDP workers are not
//! involved: the counters are theirs, the readings are the admin side's.
//!
//! Time is passed in, so the arithmetic is tested without sleeping.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the sampler reads the counters.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Readings kept: with [`SAMPLE_EVERY`], a rate spans up to a minute.
pub const SAMPLES_KEPT: usize = 12;

/// Shortest span a rate is divided by: a reading taken a moment ago (just
/// after the start) would otherwise turn a few queries into thousands per
/// second.
const SHORTEST_SPAN: Duration = Duration::from_secs(1);

/// Answers per service name, as the metrics module credits them.
pub type Totals = BTreeMap<String, u64>;

/// The kept readings. See the [module documentation](self).
#[derive(Debug, Default)]
pub struct ServiceRates {
    samples: Mutex<VecDeque<(Instant, Totals)>>,
}

impl ServiceRates {
    /// No readings yet: every rate is unknown.
    pub fn new() -> ServiceRates {
        ServiceRates::default()
    }

    /// Keeps the reading `totals`, taken at `at`, dropping the oldest past
    /// [`SAMPLES_KEPT`].
    pub fn sample(&self, at: Instant, totals: Totals) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == SAMPLES_KEPT {
            samples.pop_front();
        }
        samples.push_back((at, totals));
    }

    /// Answers per second for each service, from the oldest kept reading
    /// to `now` (when the counters read `totals`). A service `totals` does
    /// not name, or that gained nothing, answers at 0 per second. `None`
    /// before the first reading: nothing to measure from.
    pub fn per_second(&self, now: Instant, totals: &Totals) -> Option<BTreeMap<String, f64>> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let (then, before) = samples.front()?;
        let span = now.saturating_duration_since(*then).max(SHORTEST_SPAN);
        Some(
            totals
                .iter()
                .map(|(name, &count)| {
                    // A count below the reading cannot happen (counters
                    // only grow and names keep their counts); 0 if it did.
                    let gained = count.saturating_sub(before.get(name).copied().unwrap_or(0));
                    (name.clone(), gained as f64 / span.as_secs_f64())
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(of: &[(&str, u64)]) -> Totals {
        of.iter().map(|&(n, c)| (n.to_string(), c)).collect()
    }

    #[test]
    fn rates_span_from_the_oldest_kept_reading() {
        let rates = ServiceRates::new();
        let t0 = Instant::now();
        assert_eq!(rates.per_second(t0, &totals(&[("a.", 5)])), None);

        rates.sample(t0, totals(&[("a.", 10)]));
        rates.sample(t0 + SAMPLE_EVERY, totals(&[("a.", 50)]));
        let now = t0 + Duration::from_secs(10);
        let got = rates
            .per_second(now, &totals(&[("a.", 110), ("b.", 30)]))
            .unwrap();
        // 100 answers in 10 s; b had no count at the oldest reading.
        assert_eq!(got.get("a."), Some(&10.0));
        assert_eq!(got.get("b."), Some(&3.0));

        // Past SAMPLES_KEPT readings the oldest go.
        for i in 2..=SAMPLES_KEPT as u32 {
            rates.sample(t0 + SAMPLE_EVERY * i, totals(&[("a.", 110)]));
        }
        let later = t0 + SAMPLE_EVERY * (SAMPLES_KEPT as u32 + 1);
        let got = rates.per_second(later, &totals(&[("a.", 110)])).unwrap();
        // The oldest kept reading (a. = 50) is SAMPLES_KEPT intervals ago.
        let span = (SAMPLE_EVERY * SAMPLES_KEPT as u32).as_secs_f64();
        assert_eq!(got.get("a."), Some(&(60.0 / span)));
    }

    #[test]
    fn a_fresh_reading_divides_by_at_least_a_second() {
        let rates = ServiceRates::new();
        let t0 = Instant::now();
        rates.sample(t0, Totals::new());
        let got = rates
            .per_second(t0 + Duration::from_millis(10), &totals(&[("a.", 4)]))
            .unwrap();
        assert_eq!(got.get("a."), Some(&4.0));
    }
}
