//! The configuration file: one TOML document.
//!
//! Three layers, as in NLnet Labs' daemons: [`Spec`] mirrors the file
//! (serde, unknown keys refused), [`Config`] is the validated form with
//! defaults applied and paths resolved, and the run-time form is the
//! [`Snapshot`](crate::snapshot::Snapshot) compiled from it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::name::Name;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to answer on, UDP and TCP alike.
    pub listen: Vec<SocketAddr>,
    /// Number of UDP worker threads per listen address.
    pub workers: usize,
    /// Largest UDP response we send, whatever the client offers (RFC 6891 §6.2.5).
    pub max_udp_payload: u16,
    /// Limits on TCP clients.
    pub tcp: TcpLimits,
    /// Zones to serve.
    pub zones: Vec<ZoneSource>,
}

/// Limits on TCP service (RFC 7766 §6.2).
#[derive(Debug, Clone)]
pub struct TcpLimits {
    /// Connections open at once; further ones are closed at accept.
    pub max_connections: usize,
    /// A connection with no complete query for this long is closed.
    pub idle_timeout: Duration,
    /// Queries answered on one connection before it is closed.
    pub max_queries_per_connection: u32,
}

/// One zone: its apex and the master file holding it.
#[derive(Debug, Clone)]
pub struct ZoneSource {
    /// The zone's apex, also the initial `$ORIGIN` of its file.
    pub origin: Name,
    /// The master file, resolved against the config file's folder.
    pub file: PathBuf,
}
