//! The per-endpoint health state machine: rise and fall thresholds.
//!
//! [`ProbeState`] is pure, in the manner of `quinn-proto`: it reads no clock
//! and does no I/O. The runner feeds it each probe's result together with the
//! time the result arrived, and it answers whether the endpoint's health
//! changed. That makes the thresholds testable with a fake clock.
//!
//! # Semantics
//!
//! Only *consecutive* results that disagree with the current state count:
//!
//! - While [`Health::Up`], `tolerated_failures` consecutive failures are
//!   forgiven; the next one marks the endpoint down. With the default of 2,
//!   the 3rd consecutive failure does (Route 53's "failure threshold 3").
//! - While [`Health::Down`], `successes_before_up` consecutive successes mark
//!   it up again (default 2).
//! - A result that agrees with the current state resets the count, so an
//!   endpoint that alternates between success and failure never changes state
//!   once both thresholds are above one: flapping is absorbed, not propagated
//!   into DNS answers whose TTLs outlive the flap.
//!
//! A timeout is a failure like any other; the probe turns it into one.
//!
//! # Initial state
//!
//! The caller chooses it (see [`ProbeState::new`]); the runner takes it from
//! the [`HealthView`](super::HealthView) slot, whose builder defaults to
//! [`Health::Up`]. For DNS failover, starting up is the safer choice: starting
//! down would withdraw every answer at startup and after each reload until
//! every endpoint had passed `successes_before_up` probes, an outage caused by
//! the monitor itself. Starting up exposes a dead endpoint for at most
//! `tolerated_failures + 1` probe intervals, the same window as any failure
//! that happens later. (Azure Traffic Manager instead shows "checking" and
//! serves the endpoint meanwhile, which is the same behaviour for answers.)

use std::fmt;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use super::result::ProbeResult;

/// Whether an endpoint is fit to appear in answers, as far as probes know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// Probes pass (or have not failed enough to say otherwise).
    Up,
    /// Probes failed more often in a row than tolerated.
    Down,
}

impl Health {
    /// True for [`Health::Up`].
    pub fn is_up(self) -> bool {
        self == Health::Up
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Up => "up",
            Health::Down => "down",
        })
    }
}

/// How many consecutive results it takes to change state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive failures forgiven while up; one more marks the endpoint down.
    /// Zero means the first failure does.
    pub tolerated_failures: u32,
    /// Consecutive successes needed while down to mark the endpoint up again.
    pub successes_before_up: NonZeroU32,
}

/// Default `tolerated-failures`: the 3rd consecutive failure marks an endpoint
/// down, so one lost packet or slow response never moves traffic.
pub(crate) fn default_tolerated_failures() -> u32 {
    2
}

/// Default `successes-before-up`: one lucky probe does not bring a sick
/// endpoint back.
pub(crate) fn default_successes_before_up() -> NonZeroU32 {
    NonZeroU32::MIN.saturating_add(1)
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            tolerated_failures: default_tolerated_failures(),
            successes_before_up: default_successes_before_up(),
        }
    }
}

/// A change of health reported by [`ProbeState::on_result`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state left.
    pub from: Health,
    /// The state entered.
    pub to: Health,
    /// When the deciding result arrived.
    pub at: Instant,
    /// How long the endpoint had been in `from` (since the previous
    /// transition, or since the state machine was created).
    pub held: Duration,
    /// How many consecutive results it took.
    pub streak: u32,
}

/// The health of one endpoint, driven by probe results.
#[derive(Debug, Clone)]
pub struct ProbeState {
    thresholds: Thresholds,
    health: Health,
    since: Instant,
    /// Consecutive results that disagree with `health`: failures while up,
    /// successes while down.
    streak: u32,
}

impl ProbeState {
    /// A state machine starting in `initial` at time `now`.
    pub fn new(thresholds: Thresholds, initial: Health, now: Instant) -> ProbeState {
        ProbeState {
            thresholds,
            health: initial,
            since: now,
            streak: 0,
        }
    }

    /// The current health.
    pub fn health(&self) -> Health {
        self.health
    }

    /// When the current health was entered.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// Consecutive results so far that disagree with the current health
    /// (for a status page: "1 of 3 failures").
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// The thresholds in force.
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// Feeds one probe result that arrived at `now`; returns the transition
    /// if this result changed the health.
    pub fn on_result(&mut self, result: &ProbeResult, now: Instant) -> Option<Transition> {
        if result.is_ok() == self.health.is_up() {
            self.streak = 0;
            return None;
        }
        self.streak = self.streak.saturating_add(1);
        let needed = match self.health {
            Health::Up => self.thresholds.tolerated_failures.saturating_add(1),
            Health::Down => self.thresholds.successes_before_up.get(),
        };
        if self.streak < needed {
            return None;
        }
        let to = match self.health {
            Health::Up => Health::Down,
            Health::Down => Health::Up,
        };
        let transition = Transition {
            from: self.health,
            to,
            at: now,
            held: now.saturating_duration_since(self.since),
            streak: self.streak,
        };
        self.health = to;
        self.since = now;
        self.streak = 0;
        Some(transition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::result::ProbeFailure;

    /// A fake clock: a fixed origin plus whole seconds, so tests never wait.
    struct Clock(Instant);

    impl Clock {
        fn at(&self, secs: u64) -> Instant {
            self.0 + Duration::from_secs(secs)
        }
    }

    fn ok() -> ProbeResult {
        Ok(())
    }

    fn refused() -> ProbeResult {
        Err(ProbeFailure::Refused)
    }

    fn timeout() -> ProbeResult {
        Err(ProbeFailure::Timeout(Duration::from_secs(3)))
    }

    fn thresholds(tolerated_failures: u32, successes_before_up: u32) -> Thresholds {
        Thresholds {
            tolerated_failures,
            successes_before_up: NonZeroU32::new(successes_before_up).unwrap(),
        }
    }

    #[test]
    fn defaults_tolerate_two_failures_and_need_two_successes() {
        let t = Thresholds::default();
        assert_eq!(t.tolerated_failures, 2);
        assert_eq!(t.successes_before_up.get(), 2);
    }

    #[test]
    fn third_consecutive_failure_marks_down() {
        let clock = Clock(Instant::now());
        let mut s = ProbeState::new(Thresholds::default(), Health::Up, clock.at(0));
        assert_eq!(s.on_result(&refused(), clock.at(10)), None);
        assert_eq!(s.on_result(&refused(), clock.at(20)), None);
        assert_eq!(s.streak(), 2);
        assert_eq!(s.health(), Health::Up);
        let t = s.on_result(&refused(), clock.at(30)).unwrap();
        assert_eq!(t.from, Health::Up);
        assert_eq!(t.to, Health::Down);
        assert_eq!(t.at, clock.at(30));
        assert_eq!(t.held, Duration::from_secs(30));
        assert_eq!(t.streak, 3);
        assert_eq!(s.health(), Health::Down);
        assert_eq!(s.since(), clock.at(30));
        assert_eq!(s.streak(), 0);
        // Further failures change nothing.
        assert_eq!(s.on_result(&refused(), clock.at(40)), None);
    }

    #[test]
    fn timeouts_count_as_failures() {
        let clock = Clock(Instant::now());
        let mut s = ProbeState::new(Thresholds::default(), Health::Up, clock.at(0));
        assert_eq!(s.on_result(&timeout(), clock.at(1)), None);
        assert_eq!(s.on_result(&refused(), clock.at(2)), None);
        let t = s.on_result(&timeout(), clock.at(3)).unwrap();
        assert_eq!(t.to, Health::Down);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let clock = Clock(Instant::now());
        let mut s = ProbeState::new(Thresholds::default(), Health::Up, clock.at(0));
        s.on_result(&refused(), clock.at(1));
        s.on_result(&refused(), clock.at(2));
        assert_eq!(s.on_result(&ok(), clock.at(3)), None);
        assert_eq!(s.streak(), 0);
        s.on_result(&refused(), clock.at(4));
        assert_eq!(s.on_result(&refused(), clock.at(5)), None);
        assert_eq!(s.health(), Health::Up);
    }

    #[test]
    fn recovers_after_successes_before_up() {
        let clock = Clock(Instant::now());
        let mut s = ProbeState::new(thresholds(0, 3), Health::Up, clock.at(0));
        let down = s.on_result(&refused(), clock.at(5)).unwrap();
        assert_eq!((down.to, down.streak), (Health::Down, 1));
        assert_eq!(s.on_result(&ok(), clock.at(10)), None);
        assert_eq!(s.on_result(&ok(), clock.at(15)), None);
        let up = s.on_result(&ok(), clock.at(20)).unwrap();
        assert_eq!(up.from, Health::Down);
        assert_eq!(up.to, Health::Up);
        assert_eq!(up.held, Duration::from_secs(15));
        assert_eq!(up.streak, 3);
    }

    #[test]
    fn a_failure_while_down_restarts_the_climb() {
        let clock = Clock(Instant::now());
        let mut s = ProbeState::new(Thresholds::default(), Health::Down, clock.at(0));
        s.on_result(&ok(), clock.at(1));
        assert_eq!(s.on_result(&refused(), clock.at(2)), None);
        assert_eq!(s.on_result(&ok(), clock.at(3)), None);
        assert_eq!(s.health(), Health::Down);
        assert!(s.on_result(&ok(), clock.at(4)).is_some());
        assert_eq!(s.health(), Health::Up);
    }

    #[test]
    fn flapping_never_flips_either_way() {
        let clock = Clock(Instant::now());
        for initial in [Health::Up, Health::Down] {
            // The smallest thresholds that still absorb flapping.
            for t in [Thresholds::default(), thresholds(1, 2)] {
                let mut s = ProbeState::new(t, initial, clock.at(0));
                for i in 0..100 {
                    let result = if i % 2 == 0 { refused() } else { ok() };
                    assert_eq!(s.on_result(&result, clock.at(i)), None, "{t:?} step {i}");
                }
                assert_eq!(s.health(), initial);
                assert_eq!(s.since(), clock.at(0));
            }
        }
    }

    #[test]
    fn thresholds_of_one_follow_every_result() {
        let clock = Clock(Instant::now());
        let mut s = ProbeState::new(thresholds(0, 1), Health::Up, clock.at(0));
        assert_eq!(
            s.on_result(&refused(), clock.at(1)).unwrap().to,
            Health::Down
        );
        assert_eq!(s.on_result(&ok(), clock.at(2)).unwrap().to, Health::Up);
        assert_eq!(
            s.on_result(&timeout(), clock.at(3)).unwrap().to,
            Health::Down
        );
    }

    #[test]
    fn starting_down_needs_successes_to_come_up() {
        let clock = Clock(Instant::now());
        let mut s = ProbeState::new(Thresholds::default(), Health::Down, clock.at(0));
        assert_eq!(s.on_result(&ok(), clock.at(1)), None);
        let t = s.on_result(&ok(), clock.at(2)).unwrap();
        assert_eq!(
            (t.from, t.to, t.held),
            (Health::Down, Health::Up, Duration::from_secs(2))
        );
    }

    #[test]
    fn huge_thresholds_do_not_overflow() {
        let clock = Clock(Instant::now());
        let mut s = ProbeState::new(thresholds(u32::MAX, 1), Health::Up, clock.at(0));
        for i in 0..10 {
            assert_eq!(s.on_result(&refused(), clock.at(i)), None);
        }
        // A result that arrives "before" the last transition (a clock that
        // went backwards) does not panic either.
        let mut s = ProbeState::new(thresholds(0, 1), Health::Up, clock.at(10));
        assert_eq!(
            s.on_result(&refused(), clock.at(5)).unwrap().held,
            Duration::ZERO
        );
    }
}
