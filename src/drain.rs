//! Maintenance: taking this node, one service on it, or one endpoint of a
//! service out of answers.
//!
//! A drained node or `self` service behaves exactly as if its local payload
//! were down (see [`crate::policy::WhenDown`]); a drained endpoint is
//! skipped by its service's routing method as if its probe had failed. No
//! server is stopped. The state
//! lives in one small file in the state directory, so it survives restarts
//! and a `steerdns drain` command needs no connection to the server: the
//! server re-reads the file every second.
//!
//! [`Named`] says which health slots a target's answers name and their
//! longest TTL, from which the running server tells when a drained target
//! is safe to stop (`crate::last_sent`): the CLI's `--wait`, the admin
//! API and the status page all ask it. Scheduled windows
//! (`crate::maintenance`) drain the same targets through a bit of their
//! own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::health::HealthId;
use crate::last_sent::{safe_to_stop, SafeToStop};
use crate::policy::{ServiceRule, Target, MAX_NESTING};
use crate::snapshot::Snapshot;

pub use crate::target::{DrainTarget, UnknownTarget};

/// Name of the drain file inside the state directory.
const FILE: &str = "drain.toml";

/// How often a running server looks at the drain file.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What is drained.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DrainState {
    /// The whole node: every service on it.
    #[serde(default)]
    pub node: bool,
    /// Single services, by name (lowercase, ending in a dot).
    #[serde(default)]
    pub services: BTreeSet<String>,
    /// Single endpoints: service name to endpoint names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoints: BTreeMap<String, BTreeSet<String>>,
}

/// Why the drain state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// The file could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The drain file.
        path: PathBuf,
        /// The I/O error (shown in the message, so not a `source`).
        error: std::io::Error,
    },
    /// The file is not a drain state.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The drain file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A drain named a service or endpoint that is not configured.
    #[error(transparent)]
    Target(#[from] UnknownTarget),
}

impl DrainState {
    /// Reads the state from `dir`; a missing file means nothing is drained.
    pub fn load(dir: &Path) -> Result<DrainState, DrainError> {
        let path = dir.join(FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| DrainError::Invalid {
                path,
                message: e.message().to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DrainState::default()),
            Err(error) => Err(DrainError::Io { path, error }),
        }
    }

    /// Writes the state to `dir` atomically (temporary file, then rename),
    /// so a server never reads half a file.
    pub fn save(&self, dir: &Path) -> Result<(), DrainError> {
        let path = dir.join(FILE);
        let io = |error| DrainError::Io {
            path: path.clone(),
            error,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let text = toml::to_string(self).map_err(|e| DrainError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let tmp = dir.join(format!(".{FILE}.tmp"));
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// Drains (`true`) or undrains `target`.
    pub fn set(&mut self, target: &DrainTarget, drained: bool) {
        match target {
            DrainTarget::Node => self.node = drained,
            DrainTarget::Service(name) if drained => {
                self.services.insert(name.clone());
            }
            DrainTarget::Service(name) => {
                self.services.remove(name);
            }
            DrainTarget::Endpoint { service, endpoint } => {
                let set = self.endpoints.entry(service.clone()).or_default();
                if drained {
                    set.insert(endpoint.clone());
                } else {
                    set.remove(endpoint);
                    if set.is_empty() {
                        self.endpoints.remove(service);
                    }
                }
            }
        }
    }

    /// Reads the state in `dir`, drains or undrains `target`, and writes it
    /// back: what `steerdns drain` and the admin API do. A running server
    /// applies the file within [`POLL_INTERVAL`]. Returns the new state.
    pub fn update(
        dir: &Path,
        target: &DrainTarget,
        drained: bool,
    ) -> Result<DrainState, DrainError> {
        let mut state = DrainState::load(dir)?;
        state.set(target, drained);
        state.save(dir)?;
        Ok(state)
    }

    /// Every target the state drains: the node first, then services, then
    /// endpoints.
    pub fn targets(&self) -> Vec<DrainTarget> {
        let node = self.node.then_some(DrainTarget::Node);
        let services = self.services.iter().cloned().map(DrainTarget::Service);
        let endpoints = self.endpoints.iter().flat_map(|(service, set)| {
            set.iter().map(|endpoint| DrainTarget::Endpoint {
                service: service.clone(),
                endpoint: endpoint.clone(),
            })
        });
        node.into_iter().chain(services).chain(endpoints).collect()
    }

    /// Whether the service named `name` is drained.
    pub fn is_drained(&self, name: &str) -> bool {
        self.node || self.services.contains(name)
    }

    /// Whether endpoint `endpoint` of service `service` is drained.
    pub fn is_endpoint_drained(&self, service: &str, endpoint: &str) -> bool {
        self.endpoints
            .get(service)
            .is_some_and(|set| set.contains(endpoint))
    }

    /// Marks what is drained in the health view of `snapshot`: the local
    /// slot of each `self` service, and each endpoint's slot.
    pub fn apply(&self, snapshot: &Snapshot) {
        for rule in snapshot.services.iter() {
            let name = rule.name.to_string();
            if let Some(slot) = rule.local_slot() {
                snapshot.health.set_drained(slot, self.is_drained(&name));
            }
            for e in rule.endpoints.iter() {
                let drained = self.is_endpoint_drained(&name, &e.name);
                snapshot.health.set_drained(e.slot, drained);
            }
        }
    }

    /// What `snapshot`'s health view says is drained, for carrying drains
    /// over a reload when the drain file cannot be read. Node drains come
    /// back as drains of every `self` service, which is what they did.
    pub fn in_force(snapshot: &Snapshot) -> DrainState {
        let drained = |slot| snapshot.health.status(slot).is_some_and(|s| s.drained);
        let mut state = DrainState::default();
        for rule in snapshot.services.iter() {
            let name = rule.name.to_string();
            if rule.local_slot().is_some_and(drained) {
                state.services.insert(name.clone());
            }
            for e in rule.endpoints.iter().filter(|e| drained(e.slot)) {
                state
                    .endpoints
                    .entry(name.clone())
                    .or_default()
                    .insert(e.name.to_string());
            }
        }
        state
    }
}

/// What answers naming a target look like: the health slots they name
/// and the longest TTL they carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The slots whose drain takes the target out of answers.
    pub drained: Vec<HealthId>,
    /// The slots answers naming the target mark (`crate::last_sent`):
    /// `drained`, and for an endpoint that is a nested service, the
    /// child's endpoints, which the parent's answers carry.
    pub sent: Vec<HealthId>,
    /// The longest TTL of those answers.
    pub ttl: u32,
}

impl Named {
    /// What answers naming `target` look like in `snapshot`; `None` when
    /// the snapshot no longer has it (a reload removed it).
    pub fn find(snapshot: &Snapshot, target: &DrainTarget) -> Option<Named> {
        let rule_named = |key: &str| snapshot.services.iter().find(|r| r.name.to_string() == key);
        let mut named = Named {
            drained: Vec::new(),
            sent: Vec::new(),
            ttl: 0,
        };
        match target {
            // The node's answers are its `self` services' own address.
            DrainTarget::Node => {
                for rule in snapshot.services.iter() {
                    if let Some(slot) = rule.local_slot() {
                        named.drained.push(slot);
                        named.ttl = named.ttl.max(longest_ttl(rule));
                    }
                }
            }
            DrainTarget::Service(key) => {
                let rule = rule_named(key)?;
                named.ttl = longest_ttl(rule);
                named.drained.extend(rule.local_slot());
                // A drain of another method's service takes nothing out
                // (see `DrainState::apply`): its endpoints go on being
                // named, and the safe time says so.
                for e in rule.endpoints.iter() {
                    named.sent.push(e.slot);
                    nested_slots(snapshot, &e.target, 0, &mut named.sent);
                }
            }
            DrainTarget::Endpoint { service, endpoint } => {
                let rule = rule_named(service)?;
                let e = rule.endpoints.iter().find(|e| &*e.name == endpoint)?;
                named.ttl = longest_ttl(rule);
                named.drained.push(e.slot);
                nested_slots(snapshot, &e.target, 0, &mut named.sent);
            }
        }
        named.sent.extend_from_slice(&named.drained);
        Some(named)
    }

    /// Whether every slot of the target is out of answers (drained or in
    /// a maintenance window). False when there is none to take out.
    pub fn in_force(&self, snapshot: &Snapshot) -> bool {
        !self.drained.is_empty()
            && self.drained.iter().all(|&slot| {
                snapshot
                    .health
                    .status(slot)
                    .is_some_and(|s| s.drained || s.maintenance)
            })
    }

    /// When the target is safe to stop, as seen at `now` (Unix seconds):
    /// the last answer naming it plus the longest TTL (see
    /// [`safe_to_stop`]). Meaningful once it is [in force](Named::in_force).
    pub fn safe_to_stop(&self, snapshot: &Snapshot, now: u64) -> SafeToStop {
        let last = self
            .sent
            .iter()
            .filter_map(|&slot| snapshot.last_sent.last(slot, now))
            .max()
            .unwrap_or_else(|| snapshot.last_sent.since());
        safe_to_stop(last, self.ttl, now)
    }
}

/// The longest TTL a service answers with: its TTL or its degraded TTL.
fn longest_ttl(rule: &ServiceRule) -> u32 {
    rule.ttl.max(rule.degraded_ttl.unwrap_or(0))
}

/// The slots of the endpoints (and `self` payload) of the service `target`
/// nests, at any depth: what answers through it name.
fn nested_slots(snapshot: &Snapshot, target: &Target, depth: u8, out: &mut Vec<HealthId>) {
    let Target::Service { index, .. } = target else {
        return;
    };
    let Some(child) = snapshot.services.get(*index as usize) else {
        return;
    };
    if depth >= MAX_NESTING {
        return;
    }
    out.extend(child.local_slot());
    for e in child.endpoints.iter() {
        out.push(e.slot);
        nested_slots(snapshot, &e.target, depth + 1, out);
    }
}

/// Applies the drain file to the current snapshot every [`POLL_INTERVAL`],
/// logging each change. Runs until the task is dropped.
pub async fn watch(dir: PathBuf, snapshot: Arc<ArcSwap<Snapshot>>) {
    let mut last: Option<DrainState> = None;
    let mut interval = tokio::time::interval(POLL_INTERVAL);
    loop {
        interval.tick().await;
        let state = match DrainState::load(&dir) {
            Ok(state) => state,
            Err(e) => {
                // Keep the last good state: a broken file must not undrain.
                if last.is_some() {
                    tracing::warn!("drain state unreadable, keeping the last one: {e}");
                }
                continue;
            }
        };
        if last.as_ref() != Some(&state) {
            tracing::info!(node = state.node, services = ?state.services, "drain state applied");
        }
        // Applied every time, so a reloaded snapshot picks it up too.
        state.apply(&snapshot.load());
        last = Some(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_its_file() {
        let dir = std::env::temp_dir().join(format!("steerdns-drain-{}", std::process::id()));
        assert_eq!(DrainState::load(&dir).unwrap(), DrainState::default());
        let mut state = DrainState::default();
        state.services.insert("api.example.com.".into());
        state.save(&dir).unwrap();
        let back = DrainState::load(&dir).unwrap();
        assert!(back.is_drained("api.example.com.") && !back.is_drained("www.example.com."));
        std::fs::write(dir.join(FILE), "node = \"yes\"").unwrap();
        assert!(matches!(
            DrainState::load(&dir),
            Err(DrainError::Invalid { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn targets_are_set_and_cleared() {
        let endpoint = DrainTarget::Endpoint {
            service: "www.example.com.".into(),
            endpoint: "b".into(),
        };
        let service = DrainTarget::Service("www.example.com.".into());
        let mut state = DrainState::default();
        state.set(&endpoint, true);
        state.set(&service, true);
        assert!(state.is_endpoint_drained("www.example.com.", "b"));
        assert!(state.is_drained("www.example.com."));
        state.set(&endpoint, false);
        state.set(&service, false);
        assert_eq!(state, DrainState::default());
    }
}
