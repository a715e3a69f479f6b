//! The `[server]` table: where to listen, how many UDP workers, the
//! largest UDP response, the account to run as, and what the server says
//! about itself (NSID and CHAOS TXT, see `crate::identity`).

use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;

use crate::cookie::CookieSecret;

use super::value::{positive, Invalid};

/// The account the server switches to after binding its sockets
/// (`[server] user` and `group`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// A user name from the user database, or a numeric uid.
    pub user: String,
    /// A group name or numeric gid; `None`: the user's primary group.
    pub group: Option<String>,
}

/// Largest value accepted for `max-udp-payload`; the UDP workers' buffers
/// are this big.
pub const MAX_UDP_PAYLOAD_LIMIT: u16 = 4096;

/// Default largest UDP response: the 2020 DNS flag day value, which avoids
/// IP fragmentation on common paths.
fn default_max_udp_payload() -> u16 {
    1232
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Default identity: the host name, as NSD and Knot report; hidden when
/// it cannot be read.
fn default_identity() -> String {
    crate::sys::host_name().unwrap_or_default()
}

/// Longest `identity` or `version`: one TXT character-string (RFC 1035
/// §3.3), so the CHAOS answer is a single string as other servers send.
pub const MAX_IDENTITY_LEN: usize = 255;

/// The `[server]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct ServerSpec {
    listen: Spanned<Vec<SocketAddr>>,
    workers: Option<Spanned<usize>>,
    max_udp_payload: Option<Spanned<u16>>,
    user: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
    cookie_secret: Option<Spanned<String>>,
    identity: Option<Spanned<String>>,
    version: Option<Spanned<String>>,
    count_queries: Option<bool>,
}

/// The validated `[server]` table; [`Config`](super::Config) holds its
/// fields.
pub(super) struct Server {
    pub(super) listen: Vec<SocketAddr>,
    pub(super) workers: usize,
    pub(super) max_udp_payload: u16,
    /// `cookie-secret`: a DNS cookie secret shared by anycast nodes
    /// (RFC 9018 §6).
    pub(super) cookie_secret: Option<CookieSecret>,
    /// `identity`: the NSID and `id.server` answer; empty hides it.
    pub(super) identity: String,
    /// `version`: the `version.server` answer; `None` hides it.
    pub(super) version: Option<String>,
    /// `count-queries`: whether UDP workers count queries for `/metrics`.
    pub(super) count_queries: bool,
    /// Checked by the loader after `[tcp]` and `[rrl]`, the order in which
    /// mistakes have always been reported.
    pub(super) run_as: RunAsSpec,
}

/// `user` and `group`, not yet checked.
pub(super) struct RunAsSpec {
    user: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
}

impl Server {
    /// Validates `listen`, `workers` and `max-udp-payload` and applies
    /// defaults.
    pub(super) fn from_spec(spec: ServerSpec) -> Result<Server, Invalid> {
        if spec.listen.get_ref().is_empty() {
            return Err(Invalid::at(
                &spec.listen,
                "server.listen: no address to listen on",
            ));
        }
        let workers = positive(spec.workers, "server.workers", default_workers())?;
        let max_udp_payload = match spec.max_udp_payload {
            Some(p) if !(512..=MAX_UDP_PAYLOAD_LIMIT).contains(p.get_ref()) => {
                return Err(Invalid::at(
                    &p,
                    format!(
                        "server.max-udp-payload: must be between 512 and {MAX_UDP_PAYLOAD_LIMIT}"
                    ),
                ));
            }
            Some(p) => p.into_inner(),
            None => default_max_udp_payload(),
        };
        let cookie_secret = match &spec.cookie_secret {
            None => None,
            Some(hex) => Some(CookieSecret::from_hex(hex.get_ref()).ok_or_else(|| {
                Invalid::at(
                    hex,
                    "server.cookie-secret: must be 32 hexadecimal digits (16 bytes)",
                )
            })?),
        };
        let short = |v: Spanned<String>, field: &str| {
            if v.get_ref().len() > MAX_IDENTITY_LEN {
                return Err(Invalid::at(
                    &v,
                    format!("server.{field}: longer than {MAX_IDENTITY_LEN} bytes"),
                ));
            }
            Ok(v.into_inner())
        };
        let identity = match spec.identity {
            Some(v) => short(v, "identity")?,
            None => default_identity(),
        };
        // An empty version is hidden too, as an empty identity is.
        let version = match spec.version {
            Some(v) => Some(short(v, "version")?).filter(|v| !v.is_empty()),
            None => None,
        };
        Ok(Server {
            listen: spec.listen.into_inner(),
            workers,
            max_udp_payload,
            cookie_secret,
            identity,
            version,
            count_queries: spec.count_queries.unwrap_or(true),
            run_as: RunAsSpec {
                user: spec.user,
                group: spec.group,
            },
        })
    }
}

impl RunAsSpec {
    /// Validates `user` and `group`: a group needs a user, neither may be
    /// blank.
    pub(super) fn validate(self) -> Result<Option<RunAs>, Invalid> {
        let nonempty = |v: &Spanned<String>, field: &str| {
            if v.get_ref().trim().is_empty() {
                Err(Invalid::at(v, format!("{field}: must not be empty")))
            } else {
                Ok(v.get_ref().clone())
            }
        };
        match (&self.user, &self.group) {
            (None, None) => Ok(None),
            (None, Some(g)) => Err(Invalid::at(g, "server.group: needs server.user")),
            (Some(u), group) => Ok(Some(RunAs {
                user: nonempty(u, "server.user")?,
                group: group
                    .as_ref()
                    .map(|g| nonempty(g, "server.group"))
                    .transpose()?,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::tests::{parse_with, MINIMAL};
    use crate::config::Config;

    #[test]
    fn defaults() {
        let c = parse_with("").unwrap();
        assert_eq!(c.max_udp_payload, 1232);
        assert!(c.workers >= 1);
        assert_eq!(c.run_as, None);
    }

    #[test]
    fn user_and_group() {
        let text = MINIMAL.replace(
            "[[zone]]",
            "user = \"nobody\"\ngroup = \"nogroup\"\n[[zone]]",
        );
        let with_user = Config::from_str(&text, Path::new("x.toml")).unwrap();
        assert_eq!(
            with_user.run_as,
            Some(RunAs {
                user: "nobody".into(),
                group: Some("nogroup".into())
            })
        );

        let text = MINIMAL.replace("[[zone]]", "group = \"nogroup\"\n[[zone]]");
        let e = Config::from_str(&text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(":3: server.group: needs server.user"), "{e}");
        let text = MINIMAL.replace("[[zone]]", "user = \" \"\n[[zone]]");
        let e = Config::from_str(&text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(":3: server.user: must not be empty"), "{e}");
    }

    #[test]
    fn identity_defaults_to_the_host_name_and_version_to_hidden() {
        let c = parse_with("").unwrap();
        assert_eq!(Some(c.identity), crate::sys::host_name());
        assert_eq!(c.version, None);
        let text = MINIMAL.replace(
            "[[zone]]",
            "identity = \"ns1.fra\"\nversion = \"steerdns 1\"\n[[zone]]",
        );
        let c = Config::from_str(&text, Path::new("x.toml")).unwrap();
        assert_eq!(
            (c.identity.as_str(), c.version.as_deref()),
            ("ns1.fra", Some("steerdns 1"))
        );
        let long = "x".repeat(256);
        let text = MINIMAL.replace("[[zone]]", &format!("identity = \"{long}\"\n[[zone]]"));
        let e = Config::from_str(&text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":3: server.identity: longer than 255 bytes"),
            "{e}"
        );
    }

    #[test]
    fn cookie_secret_is_32_hex_digits() {
        assert_eq!(parse_with("").unwrap().cookie_secret, None);
        let secret = |value: &str| {
            let line = format!("cookie-secret = \"{value}\"\n[[zone]]");
            Config::from_str(&MINIMAL.replace("[[zone]]", &line), Path::new("x.toml"))
                .map(|c| c.cookie_secret)
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            secret("E5E973E5A6B2A43F48E7DC849E37BFCF"),
            Ok(CookieSecret::from_hex("e5e973e5a6b2a43f48e7dc849e37bfcf"))
        );
        let e = secret("e5e973e5").unwrap_err();
        assert!(e.contains(":3: server.cookie-secret: must be 32"), "{e}");
    }
}
