//! The immutable state every query reads.
//!
//! A [`Snapshot`] is built once from a [`Config`] and never changed; a reload
//! builds a new one and swaps it in atomically, so queries take no lock.

use crate::config::Config;
use crate::zone::{Zone, ZoneSet};

/// Everything the answer engine needs, compiled at load time.
#[derive(Debug)]
pub struct Snapshot {
    /// The zones served, longest match first.
    pub zones: ZoneSet,
    /// Largest UDP response, from the config (RFC 6891 §6.2.5).
    pub max_udp_payload: u16,
}

/// Why a configuration could not be turned into a snapshot: every zone that
/// failed, one error each.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct LoadError(pub Vec<crate::zone::ZoneError>);

impl Snapshot {
    /// Loads every zone of `config`. All zones are tried, so one run of
    /// `steerdns check` reports every broken file.
    pub fn load(config: &Config) -> Result<Snapshot, LoadError> {
        let mut zones = ZoneSet::default();
        let mut errors = Vec::new();
        for source in &config.zones {
            match Zone::load(&source.origin, &source.file) {
                Ok(zone) => zones.insert(zone),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(LoadError(errors));
        }
        Ok(Snapshot {
            zones,
            max_udp_payload: config.max_udp_payload,
        })
    }
}
