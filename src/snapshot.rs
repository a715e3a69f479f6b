//! The immutable state every query reads.
//!
//! A [`Snapshot`] is built once from a [`Config`] and never changed; a reload
//! builds a new one and swaps it in atomically, so queries take no lock.

use crate::config::Config;
use crate::zone::ZoneSet;

/// Everything the answer engine needs, compiled at load time.
#[derive(Debug)]
pub struct Snapshot {
    /// The zones served, longest match first.
    pub zones: ZoneSet,
    /// Largest UDP response, from the config (RFC 6891 §6.2.5).
    pub max_udp_payload: u16,
}
