//! When an answer last named each endpoint, and so when a drained one is
//! safe to stop.
//!
//! A resolver may keep serving a record until its TTL runs out (RFC 1035
//! §3.2.1, RFC 2181 §8), so an endpoint (or this node) taken out of
//! answers is still used by clients until the last answer naming it has
//! expired: the last moment such an answer was sent plus that answer's
//! TTL. This module keeps the first half and computes the sum.
//!
//! The answer path writes one relaxed atomic per endpoint it names, in a
//! row of its own (one per UDP worker thread, one shared by every other
//! thread), and only when the value changes: the time is the whole second
//! the worker read once for its batch, so a busy endpoint costs one store
//! per second per worker, not one per query. No lock, no allocation, no
//! clock read per query (design note §2). The control plane reads the
//! maximum over the rows when asked.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::health::HealthId;

/// Most rows of a table: one per UDP worker thread, up to this many less
/// one, and the last one for every other thread (TCP tasks, tests). More
/// workers share rows, which only costs cache-line traffic, never
/// correctness.
pub const MAX_ROWS: usize = 32;

/// The row every thread that did not claim one writes to (a table with
/// fewer rows maps it to its own last row).
const SHARED_ROW: usize = MAX_ROWS - 1;

/// Cells per cache line: rows are padded to whole lines so that two
/// workers never write the same line.
const LINE: usize = 16;

thread_local! {
    /// The row this thread writes to; see [`claim_row`].
    static ROW: Cell<usize> = const { Cell::new(SHARED_ROW) };
}

/// Makes the calling thread write to row `worker % (MAX_ROWS - 1)`:
/// called once by each UDP worker thread (numbered from 0) when it starts.
pub fn claim_row(worker: usize) {
    ROW.with(|row| row.set(worker % SHARED_ROW));
}

/// The last whole second (Unix time, modulo 2^32 as in
/// [`crate::engine::QueryContext::now`]) an answer named each slot of a
/// health view, one row per worker.
#[derive(Debug)]
pub struct LastSent {
    /// Rows: the UDP workers' and the shared one.
    rows: usize,
    /// Cells per row: the slot count rounded up to a whole cache line.
    width: usize,
    /// Slots covered.
    slots: usize,
    /// `rows * width` cells; 0 means "not since `since`".
    cells: Box<[AtomicU32]>,
    /// When the table started (Unix seconds): answers before it, by an
    /// earlier process or snapshot, are not known, so they count as sent
    /// at this moment (the conservative guess).
    since: u64,
}

impl LastSent {
    /// A table for `slots` health slots written by `workers` UDP worker
    /// threads (and others, sharing a row), starting at `since` (Unix
    /// seconds).
    pub fn new(slots: usize, workers: usize, since: u64) -> LastSent {
        let rows = (workers + 1).min(MAX_ROWS);
        let width = slots.div_ceil(LINE).max(1) * LINE;
        LastSent {
            rows,
            width,
            slots,
            cells: (0..rows * width).map(|_| AtomicU32::new(0)).collect(),
            since,
        }
    }

    /// Notes that an answer naming `slot` is being sent at `now` (Unix
    /// seconds modulo 2^32, the batch's clock). For the answer path: one
    /// relaxed load, and a store only when the second changed.
    #[inline]
    pub fn mark(&self, slot: HealthId, now: u32) {
        if slot.index() >= self.slots {
            return;
        }
        let row = ROW.with(Cell::get).min(self.rows - 1);
        if let Some(cell) = self.cells.get(row * self.width + slot.index()) {
            // Compare first: a store per query would bounce the line
            // between this core and the reader for nothing.
            if cell.load(Ordering::Relaxed) != now {
                cell.store(now, Ordering::Relaxed);
            }
        }
    }

    /// The last second (Unix time) an answer named `slot`, over every
    /// row, as of `now` (Unix seconds, used to undo the modulo): at least
    /// the table's start. `None` for a slot outside the table.
    pub fn last(&self, slot: HealthId, now: u64) -> Option<u64> {
        if slot.index() >= self.slots {
            return None;
        }
        let newest = (0..self.rows)
            .map(|row| self.cells[row * self.width + slot.index()].load(Ordering::Relaxed))
            .filter(|&t| t != 0)
            .map(|t| unwrap_seconds(t, now))
            .max();
        Some(newest.map_or(self.since, |t| t.max(self.since)))
    }

    /// Copies what `old` knows of `from` into `to` of this table (a reload
    /// gives the same endpoint a new slot), keeping the later time.
    pub fn carry(&self, old: &LastSent, from: HealthId, to: HealthId) {
        if from.index() >= old.slots || to.index() >= self.slots {
            return;
        }
        for row in 0..self.rows.min(old.rows) {
            let t = old.cells[row * old.width + from.index()].load(Ordering::Relaxed);
            if t != 0 {
                self.cells[row * self.width + to.index()].fetch_max(t, Ordering::Relaxed);
            }
        }
    }

    /// When the table started (Unix seconds).
    pub fn since(&self) -> u64 {
        self.since
    }

    /// Moves the table's start to `since` if that is earlier: a reload's
    /// table inherits the running one's start, since it knows every
    /// answer since then.
    pub fn start_at(&mut self, since: u64) {
        self.since = self.since.min(since);
    }
}

/// The wall-clock time in whole Unix seconds (0 before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The full Unix time of `t` (Unix seconds modulo 2^32), the latest such
/// time not after `now`.
fn unwrap_seconds(t: u32, now: u64) -> u64 {
    let high = now & !0xffff_ffff;
    let full = high | u64::from(t);
    if full > now && high > 0 {
        full - (1 << 32)
    } else {
        full.min(now)
    }
}

/// When something taken out of answers is safe to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SafeToStop {
    /// The last second an answer naming it was sent (Unix seconds).
    pub last_sent: u64,
    /// The longest TTL such an answer carried.
    pub ttl: u32,
    /// From when no resolver holds an answer naming it (Unix seconds).
    pub safe_at: u64,
    /// Seconds from `now` until `safe_at`; 0 once it passed.
    pub safe_in: u64,
}

/// When it is safe to stop something last named by an answer in second
/// `last_sent` with a TTL of at most `ttl`, as seen at `now` (all Unix
/// seconds).
///
/// The last answer left at some moment within second `last_sent` (the
/// answer path knows whole seconds), so the bound is the end of that
/// second plus the TTL: never early, at most a second late.
pub fn safe_to_stop(last_sent: u64, ttl: u32, now: u64) -> SafeToStop {
    let safe_at = last_sent + 1 + u64::from(ttl);
    SafeToStop {
        last_sent,
        ttl,
        safe_at,
        safe_in: safe_at.saturating_sub(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{Health, HealthView};

    fn ids(n: usize) -> Vec<HealthId> {
        let mut b = HealthView::builder();
        (0..n).map(|_| b.add(Health::Up).unwrap()).collect()
    }

    #[test]
    fn the_safe_time_is_the_end_of_the_last_second_plus_the_ttl() {
        // A fake clock: the answer went out during second 1000, TTL 30.
        let s = safe_to_stop(1000, 30, 1000);
        assert_eq!((s.safe_at, s.safe_in), (1031, 31));
        assert_eq!(safe_to_stop(1000, 30, 1030).safe_in, 1);
        assert_eq!(safe_to_stop(1000, 30, 1031).safe_in, 0);
        assert_eq!(safe_to_stop(1000, 30, 5000).safe_in, 0);
        assert_eq!(safe_to_stop(1000, 0, 1000).safe_at, 1001);
    }

    #[test]
    fn rows_are_merged_and_the_start_is_the_floor() {
        let id = ids(40);
        let table = LastSent::new(40, 8, 500);
        // Nothing sent since the start: the start counts.
        assert_eq!(table.last(id[3], 900), Some(500));
        table.mark(id[3], 700);
        std::thread::scope(|s| {
            s.spawn(|| {
                claim_row(4);
                table.mark(id[3], 800);
                table.mark(id[39], 650);
            });
        });
        table.mark(id[3], 750);
        assert_eq!(table.last(id[3], 900), Some(800));
        assert_eq!(table.last(id[39], 900), Some(650));
        assert_eq!(table.last(id[0], 900), Some(500));

        let far = ids(41)[40];
        assert_eq!(table.last(far, 900), None);
        table.mark(far, 900);

        let next = LastSent::new(2, 8, 890);
        next.carry(&table, id[3], id[1]);
        assert_eq!(next.last(id[1], 900), Some(890));
        let mut next = next;
        next.start_at(table.since());
        assert_eq!(next.last(id[1], 900), Some(800));
        assert_eq!(next.last(id[0], 900), Some(500));
    }

    #[test]
    fn seconds_modulo_2_32_unwrap_next_to_now() {
        let now = (1u64 << 32) + 100;
        assert_eq!(unwrap_seconds(90, now), (1 << 32) + 90);
        assert_eq!(unwrap_seconds(u32::MAX, now), (1 << 32) - 1);
        assert_eq!(unwrap_seconds(1_700_000_000, 1_700_000_005), 1_700_000_000);
    }
}
