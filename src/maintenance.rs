//! Scheduled maintenance windows (`[[maintenance]]` in the config): the
//! node, a service or an endpoint drained from `start` to `end` (UTC),
//! applied and lifted on time by the server itself.
//!
//! A window sets the health view's maintenance bit, not the operator's
//! drain bit, so the two never undo each other: a window ending does not
//! undrain what an operator drained, and an operator's undrain does not
//! end a window early. The schedule is pure ([`Phase`], [`apply`] take
//! the time as an argument); [`watch`] is the thin driver that reads the
//! clock once a second.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::config::MaintenanceWindow;
use crate::drain::Named;
use crate::health::HealthId;
use crate::last_sent::unix_now;
use crate::snapshot::Snapshot;

/// How often the schedule is looked at: windows start and end within
/// this of their time.
pub const TICK: Duration = Duration::from_secs(1);

/// Where a window stands at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// It starts later.
    Upcoming,
    /// It drains its target now: `start <= now < end`.
    Active,
    /// It has ended.
    Over,
}

impl Phase {
    /// The phase of `window` at `now` (Unix seconds).
    pub fn of(window: &MaintenanceWindow, now: u64) -> Phase {
        if now < window.start {
            Phase::Upcoming
        } else if now < window.end {
            Phase::Active
        } else {
            Phase::Over
        }
    }

    /// The word the API and the status page use.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Upcoming => "upcoming",
            Phase::Active => "active",
            Phase::Over => "over",
        }
    }
}

/// Sets the maintenance bit of every slot an active window of `snapshot`
/// drains at `now` (Unix seconds) and clears it everywhere else; returns
/// the indexes of the active windows. Idempotent, so it is applied every
/// tick and a reloaded snapshot catches up at once.
pub fn apply(snapshot: &Snapshot, now: u64) -> Vec<usize> {
    let mut active = Vec::new();
    let mut drained: HashSet<HealthId> = HashSet::new();
    for (i, window) in snapshot.maintenance.iter().enumerate() {
        if Phase::of(window, now) != Phase::Active {
            continue;
        }
        active.push(i);
        if let Some(named) = Named::find(snapshot, &window.target) {
            drained.extend(named.drained);
        }
    }
    for rule in snapshot.services.iter() {
        let slots = rule
            .local_slot()
            .into_iter()
            .chain(rule.endpoints.iter().map(|e| e.slot));
        for slot in slots {
            snapshot
                .health
                .set_maintenance(slot, drained.contains(&slot));
        }
    }
    active
}

/// Applies the windows of the current snapshot every [`TICK`], logging
/// each window that starts or ends. Runs until the task is dropped.
pub async fn watch(snapshot: Arc<ArcSwap<Snapshot>>) {
    let mut interval = tokio::time::interval(TICK);
    let mut last: Vec<String> = Vec::new();
    loop {
        interval.tick().await;
        let snap = snapshot.load();
        let now_active: Vec<String> = apply(&snap, unix_now())
            .into_iter()
            .map(|i| describe(&snap.maintenance[i]))
            .collect();
        for w in now_active.iter().filter(|w| !last.contains(w)) {
            tracing::info!(window = %w, "maintenance window started");
        }
        for w in last.iter().filter(|w| !now_active.contains(w)) {
            tracing::info!(window = %w, "maintenance window ended");
        }
        last = now_active;
    }
}

/// A window in words, for logs: `www.example.com. endpoint a (line 12)`.
fn describe(window: &MaintenanceWindow) -> String {
    format!("{} (line {})", window.target, window.line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::test_snapshot;

    /// A snapshot of a `self` service and a weighted service with
    /// endpoints a and b, and the windows in `windows` (TOML tables).
    fn snapshot(tag: &str, windows: &str) -> Snapshot {
        test_snapshot(
            &format!("maint-{tag}"),
            &format!(
                "[[service]]\nname = \"lb.z.test.\"\nrouting = \"self\"\npeers = [\"192.0.2.10\"]\n\
                 [[service]]\nname = \"www.z.test.\"\nrouting = \"weighted\"\n\
                 endpoints = [{{ name = \"a\", addresses = [\"192.0.2.20\"] }}, {{ name = \"b\", addresses = [\"192.0.2.30\"] }}]\n{windows}"
            ),
        )
    }

    /// Serving flags of: lb's local payload, endpoint a, endpoint b.
    fn serving(snap: &Snapshot) -> [bool; 3] {
        let s = &snap.services;
        let local = s[0].local_slot().unwrap();
        [local, s[1].endpoints[0].slot, s[1].endpoints[1].slot].map(|id| snap.health.is_serving(id))
    }

    // 2026-12-01T02:00:00Z = 1_796_090_400.
    const T0: u64 = 1_796_090_400;

    #[test]
    fn windows_apply_and_lift_on_time() {
        let snap = snapshot(
            "time",
            "[[maintenance]]\nstart = \"2026-12-01T02:00:00Z\"\nend = \"2026-12-01T03:00:00Z\"\nservice = \"www.z.test\"\nendpoint = \"a\"\n\
             [[maintenance]]\nstart = \"2026-12-01T02:30:00Z\"\nend = \"2026-12-01T04:00:00Z\"\nnode = true\n",
        );
        // A fake clock walked across both windows.
        let at = |t: u64| (apply(&snap, t), serving(&snap));
        assert_eq!(at(T0 - 1), (vec![], [true, true, true]));
        assert_eq!(at(T0), (vec![0], [true, false, true]));
        assert_eq!(at(T0 + 1800), (vec![0, 1], [false, false, true]));
        assert_eq!(at(T0 + 3599), (vec![0, 1], [false, false, true]));
        // The end is exclusive.
        assert_eq!(at(T0 + 3600), (vec![1], [false, true, true]));
        assert_eq!(at(T0 + 7200), (vec![], [true, true, true]));
        // A clock stepped back re-applies the window.
        assert_eq!(at(T0 + 10), (vec![0], [true, false, true]));
        let w = &snap.maintenance[1];
        let phases = [T0, T0 + 1800, T0 + 7200].map(|t| Phase::of(w, t).as_str());
        assert_eq!(phases, ["upcoming", "active", "over"]);
    }

    #[test]
    fn windows_and_operator_drains_do_not_undo_each_other() {
        let snap = snapshot(
            "drain",
            "[[maintenance]]\nstart = \"2026-12-01T02:00:00Z\"\nend = \"2026-12-01T03:00:00Z\"\nservice = \"www.z.test\"\nendpoint = \"a\"\n",
        );
        let a = snap.services[1].endpoints[0].slot;
        apply(&snap, T0);
        // The operator drains a during the window, then the window ends.
        snap.health.set_drained(a, true);
        apply(&snap, T0 + 3600);
        assert!(!snap.health.is_serving(a), "the window's end undrained a");
        // The operator undrains while a new run of the window is active.
        apply(&snap, T0 + 5);
        snap.health.set_drained(a, false);
        assert!(!snap.health.is_serving(a), "an undrain ended the window");
        apply(&snap, T0 + 3600);
        assert!(snap.health.is_serving(a));
    }
}
