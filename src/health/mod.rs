//! Health checking: whether an endpoint (or this node's own payload) is fit
//! to appear in DNS answers.
//!
//! The parts, in the order data flows through them:
//!
//! - [`monitor`]: a `[monitor.NAME]` table ([`MonitorSpec`]) validated into
//!   a [`Monitor`]: TCP connect, or an HTTP(S) `GET` with expected status
//!   codes and body text.
//! - [`probe`]: [`probe_once`] checks one target under a hard timeout and
//!   says why it failed; [`spawn_probe`] repeats that on a timer.
//! - [`result`]: what a probe found ([`ProbeResult`], [`ProbeFailure`]);
//!   [`status`]: the accepted HTTP codes ([`StatusSet`]). Leaves, so the
//!   probes and the state machine share them without importing each other.
//! - [`state`]: [`ProbeState`], the rise/fall state machine. Pure (no clock,
//!   no I/O, no import of the probes), so thresholds are tested with a fake
//!   clock.
//! - [`view`]: [`HealthView`], one atomic byte per monitored thing. Runners
//!   write it on a state change; the answer path reads it with one relaxed
//!   load and never waits on a probe.
//! - [`journal`]: [`Journal`], each probe's last result and recent health
//!   changes, for the admin API; never read on the answer path.
//!
//! In gdnsd's terms this module is the monitor plugins and the resolver
//! plugins (our `policy`) only read the view.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use steerdns::health::*;
//! # async fn demo(spec: MonitorSpec) -> Result<(), MonitorError> {
//! let monitor = Arc::new(Monitor::from_spec(&spec)?);
//! let mut builder = HealthView::builder();
//! let id = builder.add(Health::Up).expect("fewer than 2^32 endpoints");
//! let view = builder.build();
//! let target = monitor.target_for("192.0.2.10".parse().unwrap());
//! let slot = view.slot(id).expect("id from this view");
//! let task = spawn_probe(target, monitor, slot);
//! // On the answer path:
//! let serve = view.is_serving(id);
//! # let _ = (task, serve); Ok(()) }
//! ```

mod http;
pub mod journal;
pub mod monitor;
pub mod probe;
pub mod result;
pub mod state;
pub mod status;
mod tls;
pub mod view;

pub use journal::{HealthChange, Journal, LastProbe, Recorder};
pub use monitor::{Monitor, MonitorError, MonitorSpec, Protocol, StatusSpec};
pub use probe::{probe_once, spawn_probe, spawn_watched_probe, ProbeObserver};
pub use result::{ProbeFailure, ProbeResult};
pub use state::{Health, ProbeState, Thresholds, Transition};
pub use status::StatusSet;
pub use view::{HealthId, HealthSlot, HealthView, HealthViewBuilder, SlotStatus, FULL_WEIGHT};
