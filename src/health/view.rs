//! The health view: what the DNS answer path reads to skip dead endpoints.
//!
//! One byte per monitored thing (an endpoint address, or the node's local
//! payload), indexed by a [`HealthId`] handed out at load time. Probe runners
//! and the admin API write it; UDP workers read it with one relaxed atomic
//! load and no lock, so a probe never stalls an answer (design note §2).
//!
//! Three independent bits share the byte, so that no writer can undo
//! another: the probe's verdict, an operator's drain, and a scheduled
//! maintenance window (`crate::maintenance`). An endpoint is answered
//! with only while it is up, not drained *and* not in maintenance.
//!
//! Beside the byte, each slot has a weight factor that weighted routing
//! multiplies the endpoint's weight by: full, except while an endpoint
//! that came back ramps up (`crate::ramp`).
//!
//! A fourth bit, never read by the answer path, holds this node's own probe
//! verdict for endpoints whose health the cluster decides (a `health-rule`
//! other than `local`): their probe writes it through a
//! [`HealthView::local_slot`], and the cluster writes the combined verdict
//! into the probe bit ([`HealthView::set_answered`]). For every other slot
//! the two bits are written together.

use std::sync::atomic::{AtomicU16, AtomicU8, Ordering};
use std::sync::Arc;

use super::state::Health;

/// Set while the probe says the endpoint is down.
const PROBE_DOWN: u8 = 1;
/// Set while an operator has drained the endpoint.
const DRAINED: u8 = 2;
/// Set while a scheduled maintenance window drains the endpoint.
const MAINTENANCE: u8 = 4;
/// Set while this node's own probe says down, for a slot whose probe bit
/// the cluster writes.
const LOCAL_DOWN: u8 = 8;
/// The bits that keep an endpoint out of answers.
const UNFIT: u8 = PROBE_DOWN | DRAINED | MAINTENANCE;

/// The weight factor of an endpoint at full weight: factors run from 0 to
/// this, and weighted routing scales weights by `factor / FULL_WEIGHT`.
pub const FULL_WEIGHT: u16 = 1024;

/// Index of one monitored thing in a [`HealthView`], assigned at load time
/// by [`HealthViewBuilder::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HealthId(u32);

impl HealthId {
    /// The slot number, for tables kept beside the view (e.g. status pages).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Shared, lock-free health flags. Cloning is cheap and every clone sees the
/// same flags.
///
/// Every byte is written rarely (on a state change) and read on every
/// query, so the slots are not padded against false sharing: only writes
/// cause cache-line traffic, and those are rare.
#[derive(Debug, Clone)]
pub struct HealthView {
    slots: Arc<[AtomicU8]>,
    /// Weight factors, one per slot, written by the ramp-up ticker.
    weights: Arc<[AtomicU16]>,
}

/// Hands out [`HealthId`]s while a configuration is loaded, then freezes
/// them into a [`HealthView`].
#[derive(Debug, Default)]
pub struct HealthViewBuilder {
    slots: Vec<AtomicU8>,
}

/// What a view holds for one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotStatus {
    /// The probe's verdict.
    pub health: Health,
    /// Whether an operator has taken the endpoint out of answers.
    pub drained: bool,
    /// Whether a maintenance window has taken it out of answers.
    pub maintenance: bool,
    /// This node's own verdict, where the cluster decides `health`;
    /// equal to `health` for every other slot.
    pub local: Health,
}

impl SlotStatus {
    fn from_bits(bits: u8) -> SlotStatus {
        SlotStatus {
            health: if bits & PROBE_DOWN == 0 {
                Health::Up
            } else {
                Health::Down
            },
            drained: bits & DRAINED != 0,
            maintenance: bits & MAINTENANCE != 0,
            local: if bits & LOCAL_DOWN == 0 {
                Health::Up
            } else {
                Health::Down
            },
        }
    }

    /// Up, not drained and not in maintenance: the endpoint may appear in
    /// answers.
    pub fn is_serving(self) -> bool {
        self.health.is_up() && !self.drained && !self.maintenance
    }
}

impl HealthViewBuilder {
    /// Adds a slot whose probe starts in `initial` (see the
    /// [`state`](super::state) module for why [`Health::Up`] is the usual
    /// choice) and returns its id.
    ///
    /// Returns `None` after `u32::MAX` slots, which no configuration reaches.
    pub fn add(&mut self, initial: Health) -> Option<HealthId> {
        let id = u32::try_from(self.slots.len()).ok()?;
        let bits = match initial {
            Health::Up => 0,
            Health::Down => PROBE_DOWN | LOCAL_DOWN,
        };
        self.slots.push(AtomicU8::new(bits));
        Some(HealthId(id))
    }

    /// Freezes the slots into a view.
    pub fn build(self) -> HealthView {
        let weights = self
            .slots
            .iter()
            .map(|_| AtomicU16::new(FULL_WEIGHT))
            .collect();
        HealthView {
            slots: self.slots.into(),
            weights,
        }
    }
}

// Relaxed ordering throughout: a slot is a lone flag that publishes no other
// memory, so readers need no happens-before edge with the writer; they only
// need to see the new value soon, which every ordering guarantees.
impl HealthView {
    /// A builder for a new view.
    pub fn builder() -> HealthViewBuilder {
        HealthViewBuilder::default()
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True if the view has no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether the endpoint may appear in answers: probe up and not
    /// drained. One relaxed atomic load; for the answer path.
    ///
    /// An id from another view that falls outside this one reads as
    /// serving: answering with an endpoint is the lesser harm than
    /// withdrawing it over a bookkeeping mistake.
    #[inline]
    pub fn is_serving(&self, id: HealthId) -> bool {
        self.slots
            .get(id.index())
            .is_none_or(|slot| slot.load(Ordering::Relaxed) & UNFIT == 0)
    }

    /// Both bits of a slot, or `None` for an id outside this view.
    pub fn status(&self, id: HealthId) -> Option<SlotStatus> {
        let slot = self.slots.get(id.index())?;
        Some(SlotStatus::from_bits(slot.load(Ordering::Relaxed)))
    }

    /// Records the probe's verdict, both the one answered with and this
    /// node's own, leaving the drain bit alone. Does nothing for an id
    /// outside this view.
    pub fn set_health(&self, id: HealthId, health: Health) {
        self.set_bits(id, PROBE_DOWN | LOCAL_DOWN, health);
    }

    /// Records the verdict answered with alone, leaving this node's own
    /// and the drain bit alone: what the cluster writes for a slot whose
    /// health it decides. Does nothing for an id outside this view.
    pub fn set_answered(&self, id: HealthId, health: Health) {
        self.set_bits(id, PROBE_DOWN, health);
    }

    /// Sets `bits` when `health` is down, clears them when up.
    fn set_bits(&self, id: HealthId, bits: u8, health: Health) {
        if let Some(slot) = self.slots.get(id.index()) {
            match health {
                Health::Up => slot.fetch_and(!bits, Ordering::Relaxed),
                Health::Down => slot.fetch_or(bits, Ordering::Relaxed),
            };
        }
    }

    /// Records this node's own verdict in the local bit, leaving the
    /// answered verdict (the probe bit) alone. Does nothing for an id
    /// outside this view.
    pub fn set_local(&self, id: HealthId, health: Health) {
        self.set_bits(id, LOCAL_DOWN, health);
    }

    /// Drains (`true`) or undrains an endpoint, leaving the probe's verdict
    /// alone. Does nothing for an id outside this view.
    pub fn set_drained(&self, id: HealthId, drained: bool) {
        if let Some(slot) = self.slots.get(id.index()) {
            if drained {
                slot.fetch_or(DRAINED, Ordering::Relaxed);
            } else {
                slot.fetch_and(!DRAINED, Ordering::Relaxed);
            }
        }
    }

    /// Puts an endpoint in (`true`) or out of a maintenance window,
    /// leaving the probe's verdict and the operator's drain alone. Does
    /// nothing for an id outside this view.
    pub fn set_maintenance(&self, id: HealthId, on: bool) {
        if let Some(slot) = self.slots.get(id.index()) {
            // Applied every second: read first, so an unchanged window
            // writes nothing the answer path would have to re-fetch.
            if (slot.load(Ordering::Relaxed) & MAINTENANCE != 0) == on {
                return;
            }
            if on {
                slot.fetch_or(MAINTENANCE, Ordering::Relaxed);
            } else {
                slot.fetch_and(!MAINTENANCE, Ordering::Relaxed);
            }
        }
    }

    /// The weight factor of a slot, from 0 to [`FULL_WEIGHT`]: one relaxed
    /// load, for the answer path. Full for an id outside this view.
    #[inline]
    pub fn weight_factor(&self, id: HealthId) -> u16 {
        self.weights
            .get(id.index())
            .map_or(FULL_WEIGHT, |w| w.load(Ordering::Relaxed))
    }

    /// Sets the weight factor of a slot (capped at [`FULL_WEIGHT`]),
    /// storing only when it changes. Does nothing for an id outside this
    /// view.
    pub fn set_weight_factor(&self, id: HealthId, factor: u16) {
        if let Some(w) = self.weights.get(id.index()) {
            let factor = factor.min(FULL_WEIGHT);
            if w.load(Ordering::Relaxed) != factor {
                w.store(factor, Ordering::Relaxed);
            }
        }
    }

    /// A handle on one slot for its probe runner, or `None` for an id
    /// outside this view. The runner's verdicts are answered with as they
    /// are; they also go to the local bit, so it always holds this node's
    /// own view.
    pub fn slot(&self, id: HealthId) -> Option<HealthSlot> {
        (id.index() < self.slots.len()).then(|| HealthSlot {
            view: self.clone(),
            id,
            shared: false,
        })
    }

    /// A handle for the probe runner of a slot whose answered verdict the
    /// cluster decides: the runner writes the local bit only.
    pub fn local_slot(&self, id: HealthId) -> Option<HealthSlot> {
        (id.index() < self.slots.len()).then(|| HealthSlot {
            view: self.clone(),
            id,
            shared: true,
        })
    }
}

/// One slot of a [`HealthView`], as handed to the probe runner that owns its
/// health bit. Created by [`HealthView::slot`], so the id is always in range.
#[derive(Debug, Clone)]
pub struct HealthSlot {
    view: HealthView,
    id: HealthId,
    /// The cluster decides the answered verdict: write the local bit only.
    shared: bool,
}

impl HealthSlot {
    /// The slot's id.
    pub fn id(&self) -> HealthId {
        self.id
    }

    /// The probe's verdict currently published (this node's own).
    pub fn health(&self) -> Health {
        self.view
            .status(self.id)
            .map_or(Health::Up, |status| status.local)
    }

    /// Publishes the probe's verdict.
    pub fn set_health(&self, health: Health) {
        if self.shared {
            self.view.set_local(self.id, health);
        } else {
            self.view.set_health(self.id, health);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_initial_health_is_kept() {
        let mut b = HealthView::builder();
        let a = b.add(Health::Up).unwrap();
        let c = b.add(Health::Down).unwrap();
        assert_eq!((a.index(), c.index()), (0, 1));
        let view = b.build();
        assert_eq!(view.len(), 2);
        assert!(view.is_serving(a));
        assert!(!view.is_serving(c));
        assert_eq!(view.status(c).unwrap().health, Health::Down);
    }

    #[test]
    fn drain_and_probe_bits_are_independent() {
        let mut b = HealthView::builder();
        let id = b.add(Health::Up).unwrap();
        let view = b.build();
        let slot = view.slot(id).unwrap();

        view.set_drained(id, true);
        assert!(!view.is_serving(id));
        // The probe coming up again must not undo the drain.
        slot.set_health(Health::Down);
        slot.set_health(Health::Up);
        assert!(!view.is_serving(id));
        assert_eq!(
            view.status(id),
            Some(SlotStatus {
                health: Health::Up,
                drained: true,
                maintenance: false,
                local: Health::Up,
            })
        );
        // Undraining must not hide a probe failure.
        slot.set_health(Health::Down);
        view.set_drained(id, false);
        assert!(!view.is_serving(id));
        assert_eq!(slot.health(), Health::Down);
        slot.set_health(Health::Up);
        assert!(view.is_serving(id));
    }

    #[test]
    fn maintenance_is_a_reason_of_its_own() {
        let mut b = HealthView::builder();
        let id = b.add(Health::Up).unwrap();
        let view = b.build();
        view.set_maintenance(id, true);
        view.set_drained(id, true);
        assert!(!view.is_serving(id));
        // The window ends: the operator's drain stays.
        view.set_maintenance(id, false);
        assert!(!view.is_serving(id));
        assert!(view.status(id).unwrap().drained);
        // The operator undrains inside a window: the window stays.
        view.set_maintenance(id, true);
        view.set_drained(id, false);
        assert!(!view.is_serving(id));
        assert!(view.status(id).unwrap().maintenance);
        view.set_maintenance(id, false);
        assert!(view.is_serving(id));
    }

    #[test]
    fn weight_factors_start_full_and_are_capped() {
        let mut b = HealthView::builder();
        let id = b.add(Health::Up).unwrap();
        let view = b.build();
        assert_eq!(view.weight_factor(id), FULL_WEIGHT);
        view.set_weight_factor(id, 3);
        assert_eq!(view.weight_factor(id), 3);
        view.set_weight_factor(id, u16::MAX);
        assert_eq!(view.weight_factor(id), FULL_WEIGHT);
        let far = HealthId(7);
        assert_eq!(view.weight_factor(far), FULL_WEIGHT);
        view.set_weight_factor(far, 0);
    }

    #[test]
    fn a_shared_slot_keeps_the_local_verdict_out_of_answers() {
        let mut b = HealthView::builder();
        let id = b.add(Health::Up).unwrap();
        let view = b.build();
        let probe = view.local_slot(id).unwrap();
        probe.set_health(Health::Down);
        // Only the cluster's verdict is answered with.
        assert!(view.is_serving(id));
        assert_eq!(probe.health(), Health::Down);
        let status = view.status(id).unwrap();
        assert_eq!((status.health, status.local), (Health::Up, Health::Down));
        view.set_answered(id, Health::Down);
        assert!(!view.is_serving(id));
        probe.set_health(Health::Up);
        assert!(!view.is_serving(id));
        view.set_answered(id, Health::Up);
        assert!(view.is_serving(id));
        assert_eq!(view.status(id).unwrap().local, Health::Up);
        // A plain slot's runner writes both.
        let plain = view.slot(id).unwrap();
        plain.set_health(Health::Down);
        assert_eq!(view.status(id).unwrap().local, Health::Down);
        assert!(!view.is_serving(id));
    }

    #[test]
    fn clones_share_the_flags() {
        let mut b = HealthView::builder();
        let id = b.add(Health::Up).unwrap();
        let view = b.build();
        let reader = view.clone();
        view.set_health(id, Health::Down);
        assert!(!reader.is_serving(id));
    }

    #[test]
    fn foreign_ids_fail_open_and_are_ignored() {
        let mut big = HealthView::builder();
        big.add(Health::Up);
        let far = big.add(Health::Down).unwrap();
        let small = HealthView::builder().build();
        assert!(small.is_empty());
        assert!(small.is_serving(far));
        assert_eq!(small.status(far), None);
        assert!(small.slot(far).is_none());
        small.set_health(far, Health::Down);
        small.set_drained(far, true);
    }
}
