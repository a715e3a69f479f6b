//! The `[tcp]` table: limits on TCP clients (RFC 7766 §6.2).

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::value::{duration, positive, Invalid};

/// Limits on TCP service (RFC 7766 §6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpLimits {
    /// Connections open at once; further ones are closed at accept.
    pub max_connections: usize,
    /// A connection with no complete query for this long is closed.
    pub idle_timeout: Duration,
    /// Queries answered on one connection before it is closed.
    pub max_queries_per_connection: u32,
    /// Connections open at once from one client address.
    pub max_connections_per_client: usize,
    /// A new connection whose first query is not complete within this
    /// long is closed: a shorter leash than `idle_timeout` for clients that
    /// connect and then send nothing, or one byte at a time.
    pub initial_timeout: Duration,
}

/// The `[tcp]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct TcpSpec {
    max_connections: Option<Spanned<usize>>,
    idle_timeout: Option<Spanned<String>>,
    max_queries_per_connection: Option<Spanned<u32>>,
    max_connections_per_client: Option<Spanned<usize>>,
    initial_timeout: Option<Spanned<String>>,
}

fn default_tcp_max_connections() -> usize {
    1024
}

/// RFC 7766 §6.2.3 suggests a few seconds for idle TCP connections.
fn default_tcp_idle_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_tcp_max_queries() -> u32 {
    10_000
}

/// Default connections per client address: a resolver needs a few
/// (RFC 7766 §6.2.2 asks clients to reuse one); a flood from one address
/// cannot take more than a sliver of `max-connections`.
fn default_tcp_max_per_client() -> usize {
    16
}

/// Default time for the first query of a connection, when shorter than
/// `idle-timeout`: a real client sends its query right after the
/// handshake, so five seconds is generous, and a slowloris client holds a
/// slot half as long as under the idle timeout.
fn default_tcp_initial_timeout() -> Duration {
    Duration::from_secs(5)
}

impl TcpLimits {
    /// Validates the `[tcp]` table and applies defaults.
    pub(super) fn from_spec(spec: TcpSpec) -> Result<TcpLimits, Invalid> {
        let max_connections = positive(
            spec.max_connections,
            "tcp.max-connections",
            default_tcp_max_connections(),
        )?;
        let idle_timeout = match &spec.idle_timeout {
            Some(t) => duration(t, "tcp.idle-timeout", "10s")?,
            None => default_tcp_idle_timeout(),
        };
        let max_queries_per_connection = positive(
            spec.max_queries_per_connection,
            "tcp.max-queries-per-connection",
            default_tcp_max_queries(),
        )?;
        let max_connections_per_client = positive(
            spec.max_connections_per_client,
            "tcp.max-connections-per-client",
            default_tcp_max_per_client(),
        )?;
        let initial_timeout = match &spec.initial_timeout {
            Some(t) => {
                let d = duration(t, "tcp.initial-timeout", "5s")?;
                if d > idle_timeout {
                    return Err(Invalid::at(
                        t,
                        "tcp.initial-timeout: must not exceed tcp.idle-timeout",
                    ));
                }
                d
            }
            None => default_tcp_initial_timeout().min(idle_timeout),
        };
        Ok(TcpLimits {
            max_connections,
            idle_timeout,
            max_queries_per_connection,
            max_connections_per_client,
            initial_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse_with;

    #[test]
    fn defaults() {
        let c = parse_with("").unwrap();
        assert_eq!(c.tcp.idle_timeout, Duration::from_secs(10));
        assert_eq!(c.tcp.max_connections_per_client, 16);
        assert_eq!(c.tcp.initial_timeout, Duration::from_secs(5));
        // A short idle timeout shortens the default initial one.
        let c = parse_with("[tcp]\nidle-timeout = \"2s\"\n").unwrap();
        assert_eq!(c.tcp.initial_timeout, Duration::from_secs(2));
    }

    #[test]
    fn every_key() {
        let c = parse_with("[tcp]\nmax-connections-per-client = 3\ninitial-timeout = \"500ms\"\n")
            .unwrap();
        assert_eq!(c.tcp.max_connections_per_client, 3);
        assert_eq!(c.tcp.initial_timeout, Duration::from_millis(500));
    }

    #[test]
    fn bad_values_name_line_and_key() {
        for (extra, want) in [
            (
                "[tcp]\nmax-connections-per-client = 0\n",
                ":7: tcp.max-connections-per-client",
            ),
            (
                "[tcp]\ninitial-timeout = \"11s\"\n",
                ":7: tcp.initial-timeout: must not exceed",
            ),
            (
                "[tcp]\ninitial-timeout = \"0s\"\n",
                ":7: tcp.initial-timeout: bad duration \"0s\" (e.g. \"5s\", \"500ms\")",
            ),
            (
                "[tcp]\nidle-timeout = \"soon\"\n",
                ":7: tcp.idle-timeout: bad duration \"soon\" (e.g. \"10s\", \"500ms\")",
            ),
        ] {
            let e = parse_with(extra).unwrap_err();
            assert!(e.contains(want), "{extra:?}: {e}");
        }
    }
}
