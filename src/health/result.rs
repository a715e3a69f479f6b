//! What one probe found: passed, or why not.
//!
//! A leaf of `health`: the state machine ([`super::state`]) consumes these
//! results and the probes ([`super::probe`] and its HTTP client) produce them,
//! so neither side imports the other.

use std::io;
use std::time::Duration;

use super::status::StatusSet;
use crate::duration::fmt_duration;

/// The outcome of one probe: `Ok(())` or why it failed.
pub type ProbeResult = Result<(), ProbeFailure>;

/// Why a probe failed. Displays as a short reason for logs and status pages,
/// e.g. `connect refused`, `timeout after 3s`, `status 503 not in 200-299`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeFailure {
    /// Nothing listens on the port (TCP RST).
    #[error("connect refused")]
    Refused,
    /// The TCP connect failed otherwise (unreachable, reset, ...).
    #[error("connect failed: {0}")]
    Connect(io::ErrorKind),
    /// The whole probe took longer than the monitor's timeout.
    #[error("timeout after {}", fmt_duration(*.0))]
    Timeout(Duration),
    /// The TLS handshake failed, e.g. an untrusted certificate.
    #[error("tls: {0}")]
    Tls(String),
    /// Sending the request or reading the response failed.
    #[error("connection failed: {0}")]
    Io(io::ErrorKind),
    /// The response is not HTTP/1.x as RFC 9112 frames it.
    #[error("bad response: {0}")]
    BadResponse(&'static str),
    /// The status code is not one the monitor accepts.
    #[error("status {code} not in {expected}")]
    Status {
        /// The code received.
        code: u16,
        /// The codes accepted.
        expected: StatusSet,
    },
    /// The body (its first 64 KiB) lacks the monitor's text.
    #[error("body lacks {0:?}")]
    BodyLacks(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_well() {
        assert_eq!(ProbeFailure::Refused.to_string(), "connect refused");
        assert_eq!(
            ProbeFailure::Timeout(Duration::from_secs(3)).to_string(),
            "timeout after 3s"
        );
        assert_eq!(
            ProbeFailure::BodyLacks("ok".into()).to_string(),
            "body lacks \"ok\""
        );
        assert_eq!(
            ProbeFailure::Connect(io::ErrorKind::HostUnreachable).to_string(),
            "connect failed: host unreachable"
        );
    }
}
