//! What one client may cost the admin listener: connections at once,
//! time for the headers and for the whole request, header count and size,
//! body size.
//!
//! The admin API shares its runtime with TCP and the probes, never a
//! thread with the UDP workers; these limits keep a flood of API requests
//! (or one slow client) from taking more than a bounded share of that
//! runtime, and keep memory per connection bounded.

use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::AdminConfig;

/// Admission of connections: at most `max-connections` served at once.
#[derive(Debug, Clone)]
pub struct Gate {
    slots: Arc<Semaphore>,
}

impl Gate {
    /// A gate for `max` connections.
    pub fn new(max: usize) -> Gate {
        Gate {
            slots: Arc::new(Semaphore::new(max)),
        }
    }

    /// A place for one connection, or `None` when all are taken: the
    /// caller closes the connection at once rather than queueing it, so a
    /// flood costs an accept and a close per connection, nothing more.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }
}

/// The HTTP/1.1 connection settings for `config`'s limits.
///
/// One request per connection (no keep-alive): a connection never sits
/// idle holding a place, and each request gets the full header timeout.
pub fn http1(config: &AdminConfig) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_headers(config.max_headers)
        .max_header_size(config.max_header_bytes)
        // The read buffer holds the head; hyper's minimum is 8 KiB.
        .max_buf_size(config.max_header_bytes.max(8192))
        .keep_alive(false);
    b
}

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Longer than `max-body`.
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// The connection failed mid-body.
    #[error("cannot read the request body: {0}")]
    Read(String),
}

/// Reads a whole request body of at most `max` bytes; a longer one is
/// refused as soon as it passes the limit, never buffered whole.
pub async fn read_body(body: Incoming, max: usize) -> Result<Bytes, BodyError> {
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(max)),
        Err(e) => Err(BodyError::Read(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_admits_up_to_its_size() {
        let gate = Gate::new(2);
        let a = gate.admit().unwrap();
        let _b = gate.admit().unwrap();
        assert!(gate.admit().is_none());
        drop(a);
        assert!(gate.admit().is_some());
    }
}
