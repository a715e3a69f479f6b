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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::name::Name;
use crate::snapshot::Snapshot;

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
    /// A drain named a service that is not configured.
    #[error("no service named {0}")]
    UnknownService(String),
    /// A drain named an endpoint its service does not have.
    #[error("service {service} has no endpoint {endpoint:?}")]
    UnknownEndpoint {
        /// The service (its key).
        service: String,
        /// The endpoint as given.
        endpoint: String,
    },
}

/// What one drain or undrain is about, with names checked against the
/// configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainTarget {
    /// The whole node.
    Node,
    /// One service, by its key (lowercase, ending in a dot).
    Service(String),
    /// One endpoint of a service.
    Endpoint {
        /// The service's key.
        service: String,
        /// The endpoint's name.
        endpoint: String,
    },
}

impl DrainTarget {
    /// The target `service` and `endpoint` name (neither: the node),
    /// checked against `services`: each configured service's name with
    /// its endpoints' names. The service name may omit its final dot and
    /// is compared without case.
    pub fn find<'a>(
        service: Option<&str>,
        endpoint: Option<&str>,
        services: impl IntoIterator<Item = (&'a Name, Vec<&'a str>)>,
    ) -> Result<DrainTarget, DrainError> {
        let Some(given) = service else {
            return Ok(DrainTarget::Node);
        };
        let key = Name::from_absolute_text(given.trim_end_matches('.'))
            .map_err(|_| DrainError::UnknownService(given.to_string()))?
            .to_lowercase()
            .to_string();
        let endpoints = services
            .into_iter()
            .find(|(name, _)| name.to_lowercase().to_string() == key)
            .map(|(_, endpoints)| endpoints)
            .ok_or_else(|| DrainError::UnknownService(key.clone()))?;
        match endpoint {
            None => Ok(DrainTarget::Service(key)),
            Some(e) if endpoints.contains(&e) => Ok(DrainTarget::Endpoint {
                service: key,
                endpoint: e.to_string(),
            }),
            Some(e) => Err(DrainError::UnknownEndpoint {
                service: key,
                endpoint: e.to_string(),
            }),
        }
    }
}

impl std::fmt::Display for DrainTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DrainTarget::Node => f.write_str("node"),
            DrainTarget::Service(s) => f.write_str(s),
            DrainTarget::Endpoint { service, endpoint } => {
                write!(f, "{service} endpoint {endpoint}")
            }
        }
    }
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
    fn targets_are_checked_and_set() {
        let www = Name::from_absolute_text("www.example.com").unwrap();
        let services = || [(&www, vec!["a", "b"])];
        let find = |s, e| DrainTarget::find(s, e, services());
        assert_eq!(find(None, None).unwrap(), DrainTarget::Node);
        let service = find(Some("WWW.example.com"), None).unwrap();
        assert_eq!(service, DrainTarget::Service("www.example.com.".into()));
        let endpoint = find(Some("www.example.com."), Some("b")).unwrap();
        assert_eq!(endpoint.to_string(), "www.example.com. endpoint b");
        assert_eq!(
            find(Some("api.example.com"), None).unwrap_err().to_string(),
            "no service named api.example.com."
        );
        assert_eq!(
            find(Some("www.example.com"), Some("c"))
                .unwrap_err()
                .to_string(),
            "service www.example.com. has no endpoint \"c\""
        );

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
