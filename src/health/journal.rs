//! The probes' journal: each probe's last result, and a bounded ring of
//! recent health changes, for the admin API and the status page.
//!
//! Written by probe tasks (one short mutex hold per probe run, at most a
//! few per second per probe) and read by admin requests. The DNS answer
//! path never touches it: it reads the [`HealthView`](super::HealthView)
//! alone. One journal lives as long as the process, across reloads, so
//! history and "since when" survive them; probes are known by their label
//! and target, which a reload keeps for an unchanged probe.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::result::ProbeResult;
use super::state::Health;

/// Most changes kept; older ones are forgotten.
pub const MAX_CHANGES: usize = 256;

/// What a probe last found, and since when its verdict holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastProbe {
    /// When the probe finished.
    pub at: SystemTime,
    /// How long it took.
    pub latency: Duration,
    /// Why it failed, or `None` when it passed.
    pub error: Option<String>,
    /// The verdict after it (rise/fall applied).
    pub health: Health,
    /// When the verdict last changed, or the first result arrived.
    pub since: SystemTime,
}

/// One change of a probe's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChange {
    /// When it changed.
    pub at: SystemTime,
    /// What is probed (e.g. `www.example.com. endpoint a at 192.0.2.1:80`).
    pub probe: Arc<str>,
    /// The address probed.
    pub target: SocketAddr,
    /// The new verdict.
    pub to: Health,
    /// The failure that took it down; `None` for a change to up.
    pub reason: Option<String>,
}

/// Last results and recent changes of every probe. See the [module
/// documentation](self).
#[derive(Debug, Default)]
pub struct Journal {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    last: HashMap<(Arc<str>, SocketAddr), LastProbe>,
    changes: VecDeque<HealthChange>,
}

/// A probe task's pen: the journal and the probe's name in it.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// The journal written.
    pub journal: Arc<Journal>,
    /// The probe's label (its plan's label).
    pub label: Arc<str>,
}

impl Journal {
    /// An empty journal.
    pub fn new() -> Journal {
        Journal::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind, still
        // fit to read.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one probe run of `label` at `target` finished at `at`:
    /// its result and latency, and the verdict now in force; a changed
    /// verdict also goes to the ring of changes.
    pub fn record(
        &self,
        label: &Arc<str>,
        target: SocketAddr,
        at: SystemTime,
        result: &ProbeResult,
        latency: Duration,
        health: Health,
    ) {
        let error = result.as_ref().err().map(|f| f.to_string());
        let mut inner = self.lock();
        let key = (label.clone(), target);
        let changed = inner.last.get(&key).is_some_and(|l| l.health != health);
        let since = match inner.last.get(&key) {
            Some(l) if !changed => l.since,
            _ => at,
        };
        if changed {
            if inner.changes.len() == MAX_CHANGES {
                inner.changes.pop_front();
            }
            inner.changes.push_back(HealthChange {
                at,
                probe: label.clone(),
                target,
                to: health,
                reason: if health.is_up() { None } else { error.clone() },
            });
        }
        inner.last.insert(
            key,
            LastProbe {
                at,
                latency,
                error,
                health,
                since,
            },
        );
    }

    /// The last run of `label` at `target`, if it ran yet.
    pub fn last(&self, label: &str, target: SocketAddr) -> Option<LastProbe> {
        let inner = self.lock();
        // Keyed by Arc<str>; a lookup by &str needs the pair built.
        inner.last.get(&(Arc::from(label), target)).cloned()
    }

    /// Recent changes, newest first.
    pub fn changes(&self) -> Vec<HealthChange> {
        self.lock().changes.iter().rev().cloned().collect()
    }

    /// Forgets the last results of probes for which `keep` is false (after
    /// a reload removed them); the ring of changes stays.
    pub fn retain(&self, mut keep: impl FnMut(&str, SocketAddr) -> bool) {
        self.lock()
            .last
            .retain(|(label, target), _| keep(label, *target));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::ProbeFailure;

    #[test]
    fn last_results_and_changes() {
        let j = Journal::new();
        let label: Arc<str> = Arc::from("www endpoint a at 192.0.2.1:80");
        let target: SocketAddr = "192.0.2.1:80".parse().unwrap();
        let t = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let ms = Duration::from_millis(3);
        j.record(&label, target, t(10), &Ok(()), ms, Health::Up);
        // A failure tolerated: still up, since the first result.
        j.record(
            &label,
            target,
            t(20),
            &Err(ProbeFailure::Refused),
            ms,
            Health::Up,
        );
        let last = j.last(&label, target).unwrap();
        assert_eq!(last.error.as_deref(), Some("connect refused"));
        assert_eq!((last.health, last.since), (Health::Up, t(10)));
        assert!(j.changes().is_empty());

        j.record(
            &label,
            target,
            t(30),
            &Err(ProbeFailure::Refused),
            ms,
            Health::Down,
        );
        j.record(&label, target, t(40), &Ok(()), ms, Health::Down);
        let last = j.last(&label, target).unwrap();
        assert_eq!(
            (last.health, last.since, last.error),
            (Health::Down, t(30), None)
        );
        j.record(&label, target, t(50), &Ok(()), ms, Health::Up);
        let changes = j.changes();
        assert_eq!(changes.len(), 2);
        assert_eq!((changes[0].to, changes[0].at), (Health::Up, t(50)));
        assert_eq!(changes[1].reason.as_deref(), Some("connect refused"));
        assert_eq!(j.last(&label, "192.0.2.1:81".parse().unwrap()), None);

        j.retain(|_, _| false);
        assert_eq!(j.last(&label, target), None);
        assert_eq!(j.changes().len(), 2);
    }

    #[test]
    fn the_ring_is_bounded() {
        let j = Journal::new();
        let label: Arc<str> = Arc::from("p");
        let target: SocketAddr = "192.0.2.1:80".parse().unwrap();
        for i in 0..(MAX_CHANGES as u64 * 2 + 1) {
            let health = if i % 2 == 0 { Health::Up } else { Health::Down };
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(i);
            j.record(&label, target, at, &Ok(()), Duration::ZERO, health);
        }
        let changes = j.changes();
        assert_eq!(changes.len(), MAX_CHANGES);
        assert_eq!(
            changes[0].at,
            SystemTime::UNIX_EPOCH + Duration::from_secs(MAX_CHANGES as u64 * 2)
        );
    }
}
