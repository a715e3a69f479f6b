//! Probes: one check of one endpoint ([`probe_once`]), and the task that
//! repeats it and publishes the verdict ([`spawn_probe`]).
//!
//! Probes run on tokio, never on the DNS answer path: the only thing the
//! two share is the [`HealthView`](super::HealthView) byte a runner writes
//! on a state change.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::http;
use super::journal::Recorder;
use super::monitor::Monitor;
use super::result::{ProbeFailure, ProbeResult};
use super::state::{Health, ProbeState};
use super::view::HealthSlot;
use crate::duration::fmt_duration;

/// Probes `target` once as `monitor` says, giving up after the monitor's
/// timeout. Connect, TLS handshake, request and response all count against
/// that one deadline.
pub async fn probe_once(target: SocketAddr, monitor: &Monitor) -> ProbeResult {
    match tokio::time::timeout(monitor.timeout(), attempt(target, monitor)).await {
        Ok(result) => result,
        Err(_) => Err(ProbeFailure::Timeout(monitor.timeout())),
    }
}

async fn attempt(target: SocketAddr, monitor: &Monitor) -> ProbeResult {
    let tcp = TcpStream::connect(target)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::ConnectionRefused => ProbeFailure::Refused,
            kind => ProbeFailure::Connect(kind),
        })?;
    let Some(check) = monitor.http() else {
        // A TCP monitor passes once the handshake completes.
        return Ok(());
    };
    // The request fits in one segment; do not let Nagle hold it back.
    let _ = tcp.set_nodelay(true);
    match &check.tls {
        None => http::exchange(tcp, check, target).await,
        Some(tls) => {
            let name = tls
                .server_name
                .clone()
                .unwrap_or_else(|| ServerName::IpAddress(target.ip().into()));
            let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(|e| ProbeFailure::Tls(e.to_string()))?;
            http::exchange(stream, check, target).await
        }
    }
}

/// Starts a task that probes `target` every `monitor.interval()` (the first
/// probe at once), feeds each result to a [`ProbeState`] and publishes every
/// change of health to `slot`.
///
/// The state machine starts from the health the slot already holds, so the
/// loader chooses the initial state (see [`super::state`]) and a runner
/// restarted on reload carries on from the published verdict.
///
/// State changes are logged at info level, failures at debug, successes not
/// at all. The task runs in the caller's current tracing span, so a caller
/// can name the endpoint with a span around this call. It runs until the
/// handle is aborted (e.g. on reload); aborting mid-probe just closes the
/// probe's connection.
pub fn spawn_probe(target: SocketAddr, monitor: Arc<Monitor>, slot: HealthSlot) -> JoinHandle<()> {
    tokio::spawn(run(target, monitor, slot, None, None).in_current_span())
}

/// Hears what probes find, for metrics (`crate::metrics` implements it;
/// health knows nothing of metrics).
pub trait ProbeObserver: Send + Sync {
    /// One probe of `target` for `of` (what is probed) finished, `ok` or
    /// not, after `took`.
    fn observe(&self, of: &str, target: SocketAddr, ok: bool, took: Duration);
    /// The verdict on `target` for `of` changed to `to`.
    fn changed(&self, of: &str, target: SocketAddr, to: Health);
}

/// [`spawn_probe`], also writing every result, its latency and each change
/// of health to `recorder`'s [`Journal`](super::Journal) (the admin API)
/// and telling `observer` (metrics), whose label names what is probed.
pub fn spawn_watched_probe(
    target: SocketAddr,
    monitor: Arc<Monitor>,
    slot: HealthSlot,
    recorder: Option<Recorder>,
    observer: Option<(String, Arc<dyn ProbeObserver>)>,
) -> JoinHandle<()> {
    tokio::spawn(run(target, monitor, slot, recorder, observer).in_current_span())
}

async fn run(
    target: SocketAddr,
    monitor: Arc<Monitor>,
    slot: HealthSlot,
    recorder: Option<Recorder>,
    observer: Option<(String, Arc<dyn ProbeObserver>)>,
) {
    let now = || tokio::time::Instant::now().into_std();
    let mut state = ProbeState::new(monitor.thresholds(), slot.health(), now());
    tracing::debug!(%target, protocol = %monitor.protocol(), initial = %state.health(), "probe started");
    let mut jitter = Jitter::new(monitor.interval());
    loop {
        let started = tokio::time::Instant::now();
        let result = probe_once(target, &monitor).await;
        if let Err(failure) = &result {
            tracing::debug!(%target, %failure, "probe failed");
        }
        let transition = state.on_result(&result, now());
        if let Some(r) = &recorder {
            r.journal.record(
                &r.label,
                target,
                std::time::SystemTime::now(),
                &result,
                started.elapsed(),
                state.health(),
            );
        }
        if let Some((label, metrics)) = &observer {
            metrics.observe(label, target, result.is_ok(), started.elapsed());
        }
        if let Some(t) = transition {
            slot.set_health(t.to);
            if let Some((label, metrics)) = &observer {
                metrics.changed(label, target, t.to);
            }
            let held = fmt_duration(Duration::from_secs(t.held.as_secs()));
            match (t.to, &result) {
                (Health::Down, Err(failure)) => tracing::info!(
                    %target, health = %t.to, failures = t.streak, was_up_for = %held,
                    reason = %failure, "endpoint marked down"
                ),
                _ => tracing::info!(
                    %target, health = %t.to, successes = t.streak, was_down_for = %held,
                    "endpoint marked up"
                ),
            }
        }
        tokio::time::sleep_until(started + jitter.next_interval()).await;
    }
}

/// Spreads probe starts by ±5% of the interval, so endpoints loaded together
/// do not stay in lockstep and a payload behind many of them is not hit by
/// every probe in the same instant.
struct Jitter {
    interval: Duration,
    /// Width of the spread in nanoseconds (10% of the interval).
    spread: u64,
    /// std's `RandomState` is randomly keyed per process and per instance:
    /// hashing a counter with it gives unpredictable offsets without a
    /// random-number dependency.
    random: RandomState,
    counter: u64,
}

impl Jitter {
    fn new(interval: Duration) -> Jitter {
        Jitter {
            interval,
            spread: u64::try_from(interval.as_nanos() / 10).unwrap_or(u64::MAX),
            random: RandomState::new(),
            counter: 0,
        }
    }

    /// The time from one probe start to the next.
    fn next_interval(&mut self) -> Duration {
        if self.spread == 0 {
            return self.interval;
        }
        self.counter = self.counter.wrapping_add(1);
        let offset = self.random.hash_one(self.counter) % self.spread;
        (self.interval + Duration::from_nanos(offset))
            .saturating_sub(Duration::from_nanos(self.spread / 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_five_percent() {
        let mut j = Jitter::new(Duration::from_secs(10));
        let mut distinct = std::collections::HashSet::new();
        for _ in 0..1000 {
            let d = j.next_interval();
            distinct.insert(d);
            assert!(
                d >= Duration::from_millis(9500) && d < Duration::from_millis(10500),
                "{d:?}"
            );
        }
        assert!(distinct.len() > 900, "{}", distinct.len());
        assert_eq!(
            Jitter::new(Duration::from_nanos(5)).next_interval(),
            Duration::from_nanos(5)
        );
    }
}
