//! Monitors: how to probe an endpoint, as written in the config and as
//! validated.
//!
//! [`MonitorSpec`] mirrors a `[monitor.NAME]` table (serde, unknown keys
//! refused, kebab-case, every value spanned so errors can point at a line);
//! [`Monitor::from_spec`] checks it and applies defaults. A [`Monitor`]
//! cannot hold an invalid value: its fields are private and only
//! `from_spec` makes one.
//!
//! ```toml
//! [monitor.lb]
//! protocol = "https"              # tcp | http | https
//! port = 8443                     # default 80 for http, 443 for https; required for tcp
//! path = "/healthz"               # default "/"
//! host = "api.example.com"        # Host header and TLS name; default the target address
//! headers = { X-Probe = "steerdns" }
//! expected-status = ["200-299", 301, "4xx"] # default ["200-299"]
//! body-contains = "ok"
//! interval = "10s"
//! timeout = "3s"                  # must be shorter than interval
//! tolerated-failures = 2          # the 3rd consecutive failure marks it down
//! successes-before-up = 2
//! insecure = true                 # skip certificate verification (self-signed payloads)
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Uri};
use rustls::pki_types::ServerName;
use serde::Deserialize;
use toml::Spanned;

use super::state::{default_successes_before_up, default_tolerated_failures, Thresholds};
use super::status::StatusSet;
use super::tls;
use crate::duration::{fmt_duration, parse_positive};

/// The kind of probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// A TCP connect; success once the handshake completes.
    Tcp,
    /// An HTTP/1.1 `GET` over TCP.
    Http,
    /// An HTTP/1.1 `GET` over TLS.
    Https,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Http => "http",
            Protocol::Https => "https",
        })
    }
}

/// A `[monitor.NAME]` table as written. See the [module](self) docs for an
/// example; [`Monitor::from_spec`] validates it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MonitorSpec {
    /// `tcp`, `http` or `https`.
    pub protocol: Spanned<Protocol>,
    /// Port to probe; defaults to 80 for http and 443 for https.
    pub port: Option<Spanned<u16>>,
    /// Address to probe instead of the endpoint's own (e.g. `127.0.0.1`
    /// for a node's local payload).
    pub address: Option<Spanned<String>>,
    /// Request path (http/https); default `/`.
    pub path: Option<Spanned<String>>,
    /// `Host` header and TLS server name (http/https); default the target
    /// address.
    pub host: Option<Spanned<String>>,
    /// Extra request headers (http/https).
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    /// Accepted status codes: codes (`200`) and ranges (`"200-299"`,
    /// `"2xx"`); default `["200-299"]`.
    pub expected_status: Option<Spanned<Vec<Spanned<StatusSpec>>>>,
    /// Text the response body must contain (within its first 64 KiB).
    pub body_contains: Option<Spanned<String>>,
    /// Time between probe starts, e.g. `"10s"`; default 10s.
    pub interval: Option<Spanned<String>>,
    /// Time a probe may take in all, e.g. `"3s"`; default 3s.
    pub timeout: Option<Spanned<String>>,
    /// Consecutive failures forgiven before the endpoint is marked down;
    /// default 2.
    pub tolerated_failures: Option<Spanned<u32>>,
    /// Consecutive successes needed to mark a down endpoint up; default 2.
    pub successes_before_up: Option<Spanned<u32>>,
    /// Skip TLS certificate verification (https); default false.
    pub insecure: Option<Spanned<bool>>,
}

/// One entry of `expected-status` as written: a number or a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StatusSpec {
    /// A single code, e.g. `200`.
    Code(i64),
    /// A code, range or class, e.g. `"200"`, `"200-299"`, `"2xx"`.
    Text(String),
}

/// Why a monitor was refused. Displays as `field: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct MonitorError {
    /// The offending key, e.g. `expected-status` or `headers.X-Probe`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
    /// Byte range of the offending value in the TOML document the spec was
    /// read from, when known.
    pub span: Option<Range<usize>>,
}

impl MonitorError {
    fn new(field: impl Into<String>, span: Option<Range<usize>>, message: String) -> MonitorError {
        MonitorError {
            field: field.into(),
            message,
            span,
        }
    }

    fn at<T>(field: impl Into<String>, value: &Spanned<T>, message: String) -> MonitorError {
        MonitorError::new(field, Some(value.span()), message)
    }
}

/// Default accepted codes: any 2xx.
fn default_expected_status() -> StatusSet {
    StatusSet::new(vec![200..=299])
}

/// Default time between probes: a dead endpoint leaves answers within
/// about (tolerated failures + 1) × 10s, plus the record's TTL.
fn default_interval() -> Duration {
    Duration::from_secs(10)
}

/// Default probe timeout: well above a healthy payload's latency, well
/// below the interval.
fn default_timeout() -> Duration {
    Duration::from_secs(3)
}

/// Default request path.
fn default_path() -> String {
    "/".to_string()
}

/// Default port for a protocol; TCP has none, it must be given.
fn default_port(protocol: Protocol) -> Option<u16> {
    match protocol {
        Protocol::Tcp => None,
        Protocol::Http => Some(80),
        Protocol::Https => Some(443),
    }
}

/// Request headers the probe writes itself; a config may not set them.
const RESERVED_HEADERS: [(&str, &str); 4] = [
    ("host", "set it with the host key"),
    ("connection", "the probe always sends \"Connection: close\""),
    ("content-length", "the probe sends no body"),
    ("transfer-encoding", "the probe sends no body"),
];

/// A validated monitor: how to probe one kind of endpoint.
///
/// Two monitors are equal when they probe alike (a reload compares them to
/// decide whether a probe's health carries over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitor {
    protocol: Protocol,
    port: u16,
    address: Option<IpAddr>,
    interval: Duration,
    timeout: Duration,
    thresholds: Thresholds,
    /// Present for http and https.
    http: Option<HttpCheck>,
}

/// The HTTP part of a monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpCheck {
    pub(crate) path: String,
    /// `path` as hyper's request target, parsed once at load.
    pub(crate) target: Uri,
    pub(crate) host: Option<String>,
    /// `host` as a header value, converted once at load.
    pub(crate) host_value: Option<HeaderValue>,
    pub(crate) headers: Vec<(String, String)>,
    /// `headers` as the probe sends them, converted once at load so a probe
    /// cannot fail on a header the config check let through.
    pub(crate) header_map: HeaderMap,
    pub(crate) expected_status: StatusSet,
    pub(crate) body_contains: Option<String>,
    /// Present for https.
    pub(crate) tls: Option<TlsCheck>,
}

/// Body bytes a probe searches for `body-contains`; a health page needing
/// more is not a health page.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The TLS part of an https monitor.
#[derive(Debug, Clone)]
pub(crate) struct TlsCheck {
    pub(crate) config: Arc<rustls::ClientConfig>,
    /// The name to send (SNI) and verify, from `host`; `None` means the
    /// target's IP address.
    pub(crate) server_name: Option<ServerName<'static>>,
    pub(crate) insecure: bool,
}

// By hand because rustls' `ClientConfig` has no `PartialEq`: it is built
// from `insecure` alone (`tls::client_config`), so comparing `insecure`
// compares it too.
impl PartialEq for TlsCheck {
    fn eq(&self, other: &TlsCheck) -> bool {
        self.server_name == other.server_name && self.insecure == other.insecure
    }
}

impl Eq for TlsCheck {}

impl Monitor {
    /// Validates a spec and applies defaults.
    pub fn from_spec(spec: &MonitorSpec) -> Result<Monitor, MonitorError> {
        let protocol = *spec.protocol.get_ref();
        let is_http = protocol != Protocol::Tcp;

        // Keys that only make sense for HTTP are refused for TCP rather than
        // ignored, so a typo'd protocol does not silently weaken a check.
        if !is_http {
            let http_only: [(&str, Option<Range<usize>>); 6] = [
                ("path", spec.path.as_ref().map(Spanned::span)),
                ("host", spec.host.as_ref().map(Spanned::span)),
                ("headers", spec.headers.values().next().map(Spanned::span)),
                (
                    "expected-status",
                    spec.expected_status.as_ref().map(Spanned::span),
                ),
                (
                    "body-contains",
                    spec.body_contains.as_ref().map(Spanned::span),
                ),
                ("insecure", spec.insecure.as_ref().map(Spanned::span)),
            ];
            for (field, span) in http_only {
                if let Some(span) = span {
                    return Err(MonitorError::new(
                        field,
                        Some(span),
                        "only for http and https monitors".into(),
                    ));
                }
            }
        }
        if let (Protocol::Http, Some(insecure)) = (protocol, &spec.insecure) {
            return Err(MonitorError::at(
                "insecure",
                insecure,
                "only for https monitors".into(),
            ));
        }

        let port = match (&spec.port, default_port(protocol)) {
            (Some(p), _) if *p.get_ref() == 0 => {
                return Err(MonitorError::at("port", p, "must be 1-65535".into()));
            }
            (Some(p), _) => *p.get_ref(),
            (None, Some(p)) => p,
            (None, None) => {
                return Err(MonitorError::at(
                    "port",
                    &spec.protocol,
                    format!("required for {protocol} monitors"),
                ));
            }
        };

        let address = match &spec.address {
            Some(a) => Some(a.get_ref().trim().parse::<IpAddr>().map_err(|_| {
                MonitorError::at(
                    "address",
                    a,
                    format!("{:?} is not an IP address", a.get_ref()),
                )
            })?),
            None => None,
        };

        let duration = |field: &'static str, value: &Option<Spanned<String>>, default| {
            let Some(v) = value else {
                return Ok(default);
            };
            parse_positive(v.get_ref(), "10s")
                .map_err(|e| MonitorError::at(field, v, e.to_string()))
        };
        let interval = duration("interval", &spec.interval, default_interval())?;
        let timeout = duration("timeout", &spec.timeout, default_timeout())?;
        // A probe must end before the next one starts, so probes of one
        // endpoint never pile up on a slow payload.
        if timeout >= interval {
            let span = spec
                .timeout
                .as_ref()
                .or(spec.interval.as_ref())
                .map(Spanned::span);
            return Err(MonitorError::new(
                "timeout",
                span,
                format!(
                    "{} must be shorter than interval {}",
                    fmt_duration(timeout),
                    fmt_duration(interval)
                ),
            ));
        }

        let successes_before_up = match &spec.successes_before_up {
            Some(s) => NonZeroU32::new(*s.get_ref()).ok_or_else(|| {
                MonitorError::at("successes-before-up", s, "must be at least 1".into())
            })?,
            None => default_successes_before_up(),
        };
        let thresholds = Thresholds {
            tolerated_failures: spec
                .tolerated_failures
                .as_ref()
                .map_or_else(default_tolerated_failures, |t| *t.get_ref()),
            successes_before_up,
        };

        let http = if is_http {
            Some(http_check(spec, protocol)?)
        } else {
            None
        };

        Ok(Monitor {
            protocol,
            port,
            address,
            interval,
            timeout,
            thresholds,
            http,
        })
    }

    /// The kind of probe.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The port probed.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address probed instead of the endpoint's own, if any.
    pub fn address(&self) -> Option<IpAddr> {
        self.address
    }

    /// Where to probe an endpoint at `endpoint`: the monitor's address
    /// override if it has one, and the monitor's port.
    pub fn target_for(&self, endpoint: IpAddr) -> SocketAddr {
        SocketAddr::new(self.address.unwrap_or(endpoint), self.port)
    }

    /// Time between probe starts.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Time one probe may take in all: connect, TLS, request and response.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Rise and fall thresholds.
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// Request path (http/https).
    pub fn path(&self) -> Option<&str> {
        self.http.as_ref().map(|h| h.path.as_str())
    }

    /// Configured `Host` header (http/https); `None` means the target
    /// address is sent.
    pub fn host(&self) -> Option<&str> {
        self.http.as_ref().and_then(|h| h.host.as_deref())
    }

    /// Extra request headers (http/https), names as written.
    pub fn headers(&self) -> &[(String, String)] {
        self.http.as_ref().map_or(&[], |h| h.headers.as_slice())
    }

    /// Accepted status codes (http/https).
    pub fn expected_status(&self) -> Option<&StatusSet> {
        self.http.as_ref().map(|h| &h.expected_status)
    }

    /// Text the body must contain (http/https), if any.
    pub fn body_contains(&self) -> Option<&str> {
        self.http.as_ref().and_then(|h| h.body_contains.as_deref())
    }

    /// True if an https monitor skips certificate verification.
    pub fn insecure(&self) -> bool {
        self.http
            .as_ref()
            .and_then(|h| h.tls.as_ref())
            .is_some_and(|t| t.insecure)
    }

    pub(crate) fn http(&self) -> Option<&HttpCheck> {
        self.http.as_ref()
    }
}

/// Validates the HTTP keys of an http or https spec.
fn http_check(spec: &MonitorSpec, protocol: Protocol) -> Result<HttpCheck, MonitorError> {
    let path = match &spec.path {
        // The path is written into the request line verbatim: anything but
        // visible ASCII could split the request or smuggle a header.
        Some(p) if !p.get_ref().starts_with('/') || !is_visible_ascii(p.get_ref()) => {
            return Err(MonitorError::at(
                "path",
                p,
                format!(
                    "{:?} must start with '/' and be visible ASCII (percent-encode the rest)",
                    p.get_ref()
                ),
            ));
        }
        Some(p) => p.get_ref().clone(),
        None => default_path(),
    };
    // hyper takes the request target as a `Uri`; a '#' (a fragment is no
    // part of a request target) or a byte `Uri` refuses ends up here.
    let target = path
        .parse::<Uri>()
        .ok()
        .filter(|uri| uri.path_and_query().map(|p| p.as_str()) == Some(path.as_str()));
    let Some(target) = target else {
        return Err(match &spec.path {
            Some(p) => MonitorError::at(
                "path",
                p,
                format!("{path:?} is not a request target (percent-encode it)"),
            ),
            None => MonitorError::at(
                "protocol",
                &spec.protocol,
                "the default path is not a request target".into(),
            ),
        });
    };

    let host = match &spec.host {
        Some(h) if h.get_ref().is_empty() || !is_visible_ascii(h.get_ref()) => {
            return Err(MonitorError::at(
                "host",
                h,
                format!("{:?} is not a host name", h.get_ref()),
            ));
        }
        Some(h) => Some(h.get_ref().clone()),
        None => None,
    };
    let host_value =
        match (&spec.host, &host) {
            (Some(spanned), Some(h)) => Some(HeaderValue::from_str(h).map_err(|_| {
                MonitorError::at("host", spanned, format!("{h:?} is not a host name"))
            })?),
            _ => None,
        };

    let mut header_map = HeaderMap::with_capacity(spec.headers.len());
    let mut headers: Vec<(String, String)> = Vec::with_capacity(spec.headers.len());
    for (name, value) in &spec.headers {
        let field = format!("headers.{name}");
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(MonitorError::at(
                field,
                value,
                format!("{name:?} is not a header name"),
            ));
        }
        if let Some((_, why)) = RESERVED_HEADERS
            .iter()
            .find(|(reserved, _)| name.eq_ignore_ascii_case(reserved))
        {
            return Err(MonitorError::at(
                field,
                value,
                format!("not allowed: {why}"),
            ));
        }
        if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(MonitorError::at(field, value, "listed twice".into()));
        }
        // RFC 9110 §5.5: field values are visible characters, spaces and
        // tabs; CR and LF would end the header early.
        if value
            .get_ref()
            .bytes()
            .any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            return Err(MonitorError::at(
                field,
                value,
                "value holds a control character".into(),
            ));
        }
        let trimmed = value.get_ref().trim();
        let (Ok(header), Ok(header_value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(trimmed),
        ) else {
            return Err(MonitorError::at(
                field,
                value,
                "is not a valid header field".into(),
            ));
        };
        header_map.insert(header, header_value);
        headers.push((name.clone(), trimmed.to_string()));
    }

    let expected_status = match &spec.expected_status {
        Some(list) if list.get_ref().is_empty() => {
            return Err(MonitorError::at(
                "expected-status",
                list,
                "lists no status".into(),
            ));
        }
        Some(list) => {
            let mut ranges = Vec::with_capacity(list.get_ref().len());
            for item in list.get_ref() {
                let range = match item.get_ref() {
                    StatusSpec::Code(c) => u16::try_from(*c)
                        .ok()
                        .filter(|c| (100..=599).contains(c))
                        .map(|c| c..=c)
                        .ok_or_else(|| {
                            MonitorError::at(
                                "expected-status",
                                item,
                                format!("{c} is not a status code (100-599)"),
                            )
                        })?,
                    StatusSpec::Text(t) => StatusSet::parse_text(t).ok_or_else(|| {
                        MonitorError::at(
                            "expected-status",
                            item,
                            format!(
                                "{t:?} is not a status code or range (e.g. 200, \"200-299\", \"2xx\")"
                            ),
                        )
                    })?,
                };
                ranges.push(range);
            }
            StatusSet::new(ranges)
        }
        None => default_expected_status(),
    };

    let body_contains = match &spec.body_contains {
        Some(b) if b.get_ref().is_empty() => {
            return Err(MonitorError::at(
                "body-contains",
                b,
                "is empty (leave it out to skip the body check)".into(),
            ));
        }
        Some(b) if b.get_ref().len() > MAX_BODY => {
            return Err(MonitorError::at(
                "body-contains",
                b,
                format!("longer than the {} bytes of body a probe reads", MAX_BODY),
            ));
        }
        Some(b) => Some(b.get_ref().clone()),
        None => None,
    };

    let tls = if protocol == Protocol::Https {
        let insecure = spec.insecure.as_ref().is_some_and(|i| *i.get_ref());
        let server_name = match (&spec.host, &host) {
            (Some(spanned), Some(h)) => {
                let name =
                    ServerName::try_from(host_without_port(h).to_string()).map_err(|_| {
                        MonitorError::at(
                            "host",
                            spanned,
                            format!("{h:?} is not a valid TLS server name"),
                        )
                    })?;
                Some(name)
            }
            _ => None,
        };
        let config = tls::client_config(insecure).map_err(|e| {
            MonitorError::at(
                "protocol",
                &spec.protocol,
                format!("cannot set up TLS: {e}"),
            )
        })?;
        Some(TlsCheck {
            config,
            server_name,
            insecure,
        })
    } else {
        None
    };

    Ok(HttpCheck {
        path,
        target,
        host,
        host_value,
        headers,
        header_map,
        expected_status,
        body_contains,
        tls,
    })
}

/// `host` without a trailing `:port`; brackets are removed from an IPv6
/// literal so it parses as an address.
fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        // Exactly one colon: name:port. More would be a bare IPv6 literal.
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// Printable ASCII without spaces.
fn is_visible_ascii(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> MonitorSpec {
        toml::from_str(text).unwrap()
    }

    fn monitor(text: &str) -> Result<Monitor, MonitorError> {
        Monitor::from_spec(&spec(text))
    }

    fn error(text: &str) -> String {
        monitor(text).unwrap_err().to_string()
    }

    #[test]
    fn http_defaults() {
        let m = monitor("protocol = \"http\"").unwrap();
        assert_eq!(m.protocol(), Protocol::Http);
        assert_eq!(m.port(), 80);
        assert_eq!(m.path(), Some("/"));
        assert_eq!(m.host(), None);
        assert!(m.headers().is_empty());
        assert_eq!(m.expected_status().unwrap().to_string(), "200-299");
        assert_eq!(m.body_contains(), None);
        assert_eq!(m.interval(), Duration::from_secs(10));
        assert_eq!(m.timeout(), Duration::from_secs(3));
        assert_eq!(m.thresholds(), Thresholds::default());
        assert!(!m.insecure());
        let ip: IpAddr = "192.0.2.10".parse().unwrap();
        assert_eq!(m.target_for(ip), SocketAddr::new(ip, 80));
    }

    #[test]
    fn full_https_spec() {
        let m = monitor(
            r#"
            protocol = "https"
            port = 8443
            address = "127.0.0.1"
            path = "/healthz?deep=1"
            host = "api.example.com:8443"
            headers = { X-Probe = "steerdns", Authorization = "Bearer t" }
            expected-status = ["200-204", 301, "4xx"]
            body-contains = "ok"
            interval = "5s"
            timeout = "500ms"
            tolerated-failures = 0
            successes-before-up = 3
            insecure = true
            "#,
        )
        .unwrap();
        assert_eq!(m.port(), 8443);
        let endpoint: IpAddr = "192.0.2.10".parse().unwrap();
        assert_eq!(m.target_for(endpoint), "127.0.0.1:8443".parse().unwrap());
        assert_eq!(m.host(), Some("api.example.com:8443"));
        assert_eq!(m.headers().len(), 2);
        let s = m.expected_status().unwrap();
        assert_eq!(s.to_string(), "200-204,301,400-499");
        assert!(s.contains(204) && s.contains(301) && s.contains(404));
        assert!(!s.contains(205) && !s.contains(302));
        assert_eq!(m.timeout(), Duration::from_millis(500));
        assert_eq!(m.thresholds().tolerated_failures, 0);
        assert_eq!(m.thresholds().successes_before_up.get(), 3);
        assert!(m.insecure());
        let tls = m.http().unwrap().tls.as_ref().unwrap();
        assert_eq!(
            tls.server_name,
            Some(ServerName::try_from("api.example.com").unwrap())
        );
    }

    #[test]
    fn tcp_needs_a_port_and_refuses_http_keys() {
        let m = monitor("protocol = \"tcp\"\nport = 5432").unwrap();
        assert_eq!(m.protocol(), Protocol::Tcp);
        assert_eq!(m.path(), None);
        assert_eq!(
            error("protocol = \"tcp\""),
            "port: required for tcp monitors"
        );
        assert_eq!(
            error("protocol = \"tcp\"\nport = 22\npath = \"/\""),
            "path: only for http and https monitors"
        );
        assert_eq!(
            error("protocol = \"tcp\"\nport = 22\nheaders = { A = \"b\" }"),
            "headers: only for http and https monitors"
        );
        assert_eq!(
            error("protocol = \"http\"\ninsecure = true"),
            "insecure: only for https monitors"
        );
    }

    #[test]
    fn status_errors_name_the_field() {
        assert_eq!(
            error("protocol = \"http\"\nexpected-status = [\"2x0\"]"),
            "expected-status: \"2x0\" is not a status code or range (e.g. 200, \"200-299\", \"2xx\")"
        );
        assert_eq!(
            error("protocol = \"http\"\nexpected-status = [700]"),
            "expected-status: 700 is not a status code (100-599)"
        );
        assert!(
            error("protocol = \"http\"\nexpected-status = [\"299-200\"]")
                .starts_with("expected-status: \"299-200\"")
        );
        assert!(error("protocol = \"http\"\nexpected-status = [\"6xx\"]")
            .starts_with("expected-status: \"6xx\""));
        assert_eq!(
            error("protocol = \"http\"\nexpected-status = []"),
            "expected-status: lists no status"
        );
    }

    #[test]
    fn timing_errors() {
        assert_eq!(
            error("protocol = \"http\"\ntimeout = \"10s\""),
            "timeout: 10s must be shorter than interval 10s"
        );
        assert_eq!(
            error("protocol = \"http\"\ninterval = \"2s\""),
            "timeout: 3s must be shorter than interval 2s"
        );
        assert_eq!(
            error("protocol = \"http\"\ninterval = \"soon\""),
            "interval: bad duration \"soon\" (e.g. \"10s\", \"500ms\")"
        );
        assert!(error("protocol = \"http\"\ntimeout = \"0s\"").starts_with("timeout: bad duration"));
        assert_eq!(
            error("protocol = \"http\"\nsuccesses-before-up = 0"),
            "successes-before-up: must be at least 1"
        );
    }

    #[test]
    fn request_injection_is_refused() {
        assert!(error("protocol = \"http\"\npath = \"/a b\"").starts_with("path:"));
        assert!(error("protocol = \"http\"\npath = \"healthz\"").starts_with("path:"));
        // A fragment is no part of a request target (RFC 9112 §3.2).
        assert_eq!(
            error("protocol = \"http\"\npath = \"/a#b\""),
            "path: \"/a#b\" is not a request target (percent-encode it)"
        );
        assert!(error("protocol = \"http\"\nhost = \"a\\r\\nX: y\"").starts_with("host:"));
        assert_eq!(
            error("protocol = \"http\"\nheaders = { X-A = \"1\\r\\nX-B: 2\" }"),
            "headers.X-A: value holds a control character"
        );
        assert_eq!(
            error("protocol = \"http\"\nheaders = { \"X A\" = \"1\" }"),
            "headers.X A: \"X A\" is not a header name"
        );
        assert_eq!(
            error("protocol = \"http\"\nheaders = { Host = \"x\" }"),
            "headers.Host: not allowed: set it with the host key"
        );
        assert_eq!(
            error("protocol = \"http\"\nheaders = { X-A = \"1\", x-a = \"2\" }"),
            "headers.x-a: listed twice"
        );
    }

    #[test]
    fn other_field_errors() {
        assert_eq!(
            error("protocol = \"http\"\nport = 0"),
            "port: must be 1-65535"
        );
        assert_eq!(
            error("protocol = \"http\"\naddress = \"localhost\""),
            "address: \"localhost\" is not an IP address"
        );
        assert!(error("protocol = \"http\"\nbody-contains = \"\"").starts_with("body-contains:"));
        assert!(error("protocol = \"https\"\nhost = \"bad_name!\"")
            .starts_with("host: \"bad_name!\" is not a valid TLS server name"));
        assert!(toml::from_str::<MonitorSpec>("protocol = \"http\"\ncolour = 1").is_err());
        assert!(toml::from_str::<MonitorSpec>("protocol = \"ftp\"").is_err());
    }

    #[test]
    fn errors_carry_the_value_span() {
        let text = "protocol = \"http\"\nexpected-status = [200, \"2x0\"]\n";
        let e = monitor(text).unwrap_err();
        assert_eq!(&text[e.span.unwrap()], "\"2x0\"");
    }

    #[test]
    fn host_port_stripping() {
        assert_eq!(host_without_port("a.example"), "a.example");
        assert_eq!(host_without_port("a.example:8443"), "a.example");
        assert_eq!(host_without_port("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(host_without_port("2001:db8::1"), "2001:db8::1");
    }
}
