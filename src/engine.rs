//! The answer engine: one query in, one response out, no I/O.

use std::net::{IpAddr, SocketAddr};

use crate::snapshot::Snapshot;

/// The transport a query arrived on; it decides truncation (RFC 7766).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: responses are limited by the client's EDNS payload size.
    Udp,
    /// TCP: responses may use the whole 64 KiB message.
    Tcp,
}

/// Where a query came from and where it arrived.
#[derive(Debug, Clone, Copy)]
pub struct QueryContext {
    /// The client (for recursive traffic: the resolver) address and port.
    pub client: SocketAddr,
    /// The local address the query arrived on; `self` routing answers with it.
    pub local: IpAddr,
    /// UDP or TCP.
    pub transport: Transport,
}

/// Writes the response to `query` into `out` and returns its length, or
/// `None` when the message must be dropped (unreadable header, or a response).
///
/// `out` must hold at least the configured UDP payload size for UDP and
/// 65,535 bytes for TCP.
pub fn respond(query: &[u8], ctx: &QueryContext, snap: &Snapshot, out: &mut [u8]) -> Option<usize> {
    let _ = (query, ctx, snap, out);
    todo!()
}
