//! The `[admin]` table: the HTTP listener of the admin API and status page.
//!
//! No table, no listener. A loopback address needs no token, since only
//! this host can reach it; any other address must name a `token-file`,
//! and the token is read here, while the config is loaded, so a missing
//! or empty file stops the start with `file:line` like any other mistake.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::value::{duration, positive, within, Invalid};

/// The validated `[admin]` table.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Where the admin HTTP listener listens.
    pub listen: SocketAddr,
    /// The token file, resolved against the config file's folder.
    pub token_file: Option<PathBuf>,
    /// The bearer token every request must carry, read from `token_file`.
    pub token: Option<String>,
    /// Connections served at once; more are closed at accept.
    pub max_connections: usize,
    /// Time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// Time from the end of a request's headers to the end of its response.
    pub request_timeout: Duration,
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
    /// Most header fields in one request.
    pub max_headers: usize,
    /// Largest request head (request line and header fields), in bytes.
    pub max_header_bytes: usize,
}

// Hand-written so that the token never reaches a log line.
impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .field("token_file", &self.token_file)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("max_connections", &self.max_connections)
            .field("header_timeout", &self.header_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_body", &self.max_body)
            .field("max_headers", &self.max_headers)
            .field("max_header_bytes", &self.max_header_bytes)
            .finish()
    }
}

/// The `[admin]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct AdminSpec {
    listen: Spanned<SocketAddr>,
    token_file: Option<Spanned<String>>,
    max_connections: Option<Spanned<usize>>,
    header_timeout: Option<Spanned<String>>,
    request_timeout: Option<Spanned<String>>,
    max_body: Option<Spanned<usize>>,
    max_headers: Option<Spanned<usize>>,
    max_header_bytes: Option<Spanned<usize>>,
}

/// A few operators and their scripts at once; a flood beyond it is closed
/// at accept instead of queueing.
fn default_max_connections() -> usize {
    32
}

/// A real client sends its headers at once; slow ones hold a connection.
fn default_header_timeout() -> Duration {
    Duration::from_secs(5)
}

/// A reload of a large zone takes seconds; everything else milliseconds.
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}

/// The largest body the API takes is a drain request of a few names.
fn default_max_body() -> usize {
    16 * 1024
}

/// A browser sends about a dozen header fields, curl three.
fn default_max_headers() -> usize {
    32
}

/// Enough for a browser's request with cookies of another local service.
fn default_max_header_bytes() -> usize {
    16 * 1024
}

/// The smallest head limit hyper accepts (its read buffer's minimum).
const MIN_HEADER_BYTES: usize = 8 * 1024;

/// Longest token read from the token file.
const MAX_TOKEN: usize = 4096;

impl AdminConfig {
    /// Validates the `[admin]` table, reading the token file (relative to
    /// `base`, the config file's folder).
    pub(super) fn from_spec(spec: AdminSpec, base: &Path) -> Result<AdminConfig, Invalid> {
        let listen = *spec.listen.get_ref();
        let (token_file, token) = match &spec.token_file {
            Some(f) => {
                let path = base.join(f.get_ref());
                (Some(path.clone()), Some(read_token(&path, f)?))
            }
            None if !listen.ip().is_loopback() => {
                return Err(Invalid::at(
                    &spec.listen,
                    format!(
                        "admin.listen: {listen} is reachable from other hosts: \
                         set admin.token-file, or listen on 127.0.0.1 or [::1]"
                    ),
                ));
            }
            None => (None, None),
        };
        let header_timeout = match &spec.header_timeout {
            Some(t) => duration(t, "admin.header-timeout", "5s")?,
            None => default_header_timeout(),
        };
        let request_timeout = match &spec.request_timeout {
            Some(t) => duration(t, "admin.request-timeout", "30s")?,
            None => default_request_timeout(),
        };
        Ok(AdminConfig {
            listen,
            token_file,
            token,
            max_connections: positive(
                spec.max_connections,
                "admin.max-connections",
                default_max_connections(),
            )?,
            header_timeout,
            request_timeout,
            max_body: within(
                &spec.max_body,
                "admin.max-body",
                1..=16 * 1024 * 1024,
                default_max_body(),
            )?,
            max_headers: within(
                &spec.max_headers,
                "admin.max-headers",
                1..=1000,
                default_max_headers(),
            )?,
            max_header_bytes: within(
                &spec.max_header_bytes,
                "admin.max-header-bytes",
                MIN_HEADER_BYTES..=1024 * 1024,
                default_max_header_bytes(),
            )?,
        })
    }
}

/// Reads the token: the file's text without surrounding white space,
/// refused when unreadable, empty or not a visible ASCII string (it goes
/// in an `Authorization` header).
fn read_token(path: &Path, spec: &Spanned<String>) -> Result<String, Invalid> {
    let refuse =
        |why: String| Invalid::at(spec, format!("admin.token-file: {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| refuse(e.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(refuse("is empty".into()));
    }
    if token.len() > MAX_TOKEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(refuse(format!(
            "the token must be at most {MAX_TOKEN} visible ASCII characters"
        )));
    }
    Ok(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse_with;

    #[test]
    fn no_table_no_listener_and_defaults() {
        assert_eq!(parse_with("").unwrap().admin, None);
        let c = parse_with("[admin]\nlisten = \"127.0.0.1:8053\"\n").unwrap();
        let a = c.admin.unwrap();
        assert_eq!(a.listen, "127.0.0.1:8053".parse().unwrap());
        assert_eq!(a.token, None);
        assert_eq!(a.max_connections, 32);
        assert_eq!(a.header_timeout, Duration::from_secs(5));
        assert_eq!(a.max_header_bytes, 16 * 1024);
        assert!(parse_with("[admin]\nlisten = \"[::1]:8053\"\n").is_ok());
    }

    #[test]
    fn other_hosts_need_a_token_file() {
        let e = parse_with("[admin]\nlisten = \"0.0.0.0:8053\"\n").unwrap_err();
        assert!(
            e.starts_with("conf/steerdns.toml:7: admin.listen: 0.0.0.0:8053 is reachable"),
            "{e}"
        );
        let e = parse_with("[admin]\nlisten = \"[::]:8053\"\ntoken-file = \"no-such-token\"\n")
            .unwrap_err();
        assert!(
            e.starts_with("conf/steerdns.toml:8: admin.token-file: conf/no-such-token: "),
            "{e}"
        );
    }

    #[test]
    fn the_token_is_read_trimmed_and_never_printed() {
        let dir = std::env::temp_dir().join(format!("steerdns-admin-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("steerdns.toml");
        std::fs::write(dir.join("token"), "s3cret-token\n").unwrap();
        let text = format!(
            "{}[admin]\nlisten = \"0.0.0.0:8053\"\ntoken-file = \"token\"\n",
            crate::config::tests::MINIMAL
        );
        let c = crate::config::Config::from_str(&text, &path).unwrap();
        let a = c.admin.unwrap();
        assert_eq!(a.token.as_deref(), Some("s3cret-token"));
        assert!(!format!("{a:?}").contains("s3cret"));

        std::fs::write(dir.join("token"), " \n").unwrap();
        let e = crate::config::Config::from_str(&text, &path)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":8: admin.token-file: ") && e.ends_with("/token: is empty"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn limits_are_checked() {
        for (extra, want) in [
            (
                "max-connections = 0",
                ":8: admin.max-connections: must be at least 1",
            ),
            (
                "header-timeout = \"0s\"",
                ":8: admin.header-timeout: bad duration",
            ),
            (
                "max-header-bytes = 100",
                ":8: admin.max-header-bytes: must be between 8192",
            ),
            ("max-body = 0", ":8: admin.max-body: must be between 1"),
            ("colour = 1", ":8: unknown field `colour`"),
        ] {
            let e =
                parse_with(&format!("[admin]\nlisten = \"127.0.0.1:1\"\n{extra}\n")).unwrap_err();
            assert!(e.contains(want), "{extra}: {e}");
        }
    }
}
