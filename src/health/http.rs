//! A minimal HTTP/1.1 client for probes (RFC 9112): one `GET` with
//! `Connection: close`, then the status line, the header fields, and at most
//! [`MAX_BODY`] bytes of body when the monitor looks for text in it.
//!
//! Everything read comes from the probed server, so nothing here trusts it:
//! sizes are capped, framing errors become [`ProbeFailure::BadResponse`],
//! and nothing panics on odd input.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::monitor::{HttpCheck, MAX_BODY};
use super::result::{ProbeFailure, ProbeResult};

/// Largest response head (status line and header fields) accepted.
pub(crate) const MAX_HEAD: usize = 16 * 1024;

/// Raw body bytes read at most, allowing for chunk framing around
/// [`MAX_BODY`] bytes of content.
const MAX_RAW_BODY: usize = 2 * MAX_BODY;

/// The request for one probe of `target`.
pub(crate) fn request(check: &HttpCheck, target: SocketAddr) -> Vec<u8> {
    let default_port = if check.tls.is_some() { 443 } else { 80 };
    let mut r = String::with_capacity(256);
    r.push_str("GET ");
    r.push_str(&check.path);
    r.push_str(" HTTP/1.1\r\nHost: ");
    match &check.host {
        Some(host) => r.push_str(host),
        // RFC 9110 §7.2: the authority, with the port only when it is not
        // the scheme's default. SocketAddr already brackets IPv6.
        None if target.port() == default_port => match target {
            SocketAddr::V4(v4) => r.push_str(&v4.ip().to_string()),
            SocketAddr::V6(v6) => {
                r.push('[');
                r.push_str(&v6.ip().to_string());
                r.push(']');
            }
        },
        None => r.push_str(&target.to_string()),
    }
    r.push_str("\r\n");
    let has = |name: &str| {
        check
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    if !has("user-agent") {
        r.push_str(concat!(
            "User-Agent: steerdns-health/",
            env!("CARGO_PKG_VERSION"),
            "\r\n"
        ));
    }
    if !has("accept") {
        r.push_str("Accept: */*\r\n");
    }
    for (name, value) in &check.headers {
        r.push_str(name);
        r.push_str(": ");
        r.push_str(value);
        r.push_str("\r\n");
    }
    r.push_str("Connection: close\r\n\r\n");
    r.into_bytes()
}

/// Sends `request` on `stream` and judges the response against `check`.
pub(crate) async fn exchange<S>(stream: &mut S, request: &[u8], check: &HttpCheck) -> ProbeResult
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream.write_all(request).await.map_err(io_failure)?;
    stream.flush().await.map_err(io_failure)?;

    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let head = loop {
        let end = loop {
            if let Some(end) = head_end(&buf) {
                break end;
            }
            if buf.len() > MAX_HEAD {
                return Err(ProbeFailure::BadResponse("response head over 16 KiB"));
            }
            if read_some(stream, &mut buf).await? == 0 {
                return Err(ProbeFailure::BadResponse(if buf.is_empty() {
                    "connection closed without a response"
                } else {
                    "connection closed inside the response head"
                }));
            }
        };
        let head = parse_head(buf.get(..end).unwrap_or_default())?;
        buf.drain(..end);
        // RFC 9112 §4 / RFC 9110 §15.2: interim 1xx responses precede the
        // final one; skip them (101 would switch protocols, which a GET
        // without Upgrade never asks for, so it is taken as final).
        if !(100..=199).contains(&head.status) || head.status == 101 {
            break head;
        }
    };

    if !check.expected_status.contains(head.status) {
        return Err(ProbeFailure::Status {
            code: head.status,
            expected: check.expected_status.clone(),
        });
    }
    let Some(needle) = check.body_contains.as_deref() else {
        return Ok(());
    };

    // `buf` now holds the first body bytes. Read until the text shows up,
    // the body ends, or the cap is reached.
    let mut decoded = Vec::new();
    let mut eof = false;
    loop {
        let (body, complete) = match head.framing {
            Framing::Empty => (&[][..], true),
            Framing::Length(n) => (buf.get(..n).unwrap_or(&buf), buf.len() >= n),
            Framing::UntilClose => (&buf[..], false),
            Framing::Chunked => {
                decoded.clear();
                let complete = dechunk(&buf, &mut decoded)?;
                (&decoded[..], complete)
            }
        };
        let body = body.get(..MAX_BODY).unwrap_or(body);
        if contains(body, needle.as_bytes()) {
            return Ok(());
        }
        if complete || eof || body.len() >= MAX_BODY || buf.len() >= MAX_RAW_BODY {
            return Err(ProbeFailure::BodyLacks(needle.to_string()));
        }
        eof = read_some(stream, &mut buf).await? == 0;
    }
}

/// How the response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// 1xx, 204 and 304 responses have no body.
    Empty,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Content-Length`.
    Length(usize),
    /// Neither: the body ends when the server closes.
    UntilClose,
}

/// The parts of a response head a probe needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    status: u16,
    framing: Framing,
}

/// Index just past the blank line ending the head, if `buf` holds it.
/// A bare LF is accepted as a line end (RFC 9112 §2.2).
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = find(buf, b"\n\r\n").map(|i| i + 3);
    let lf = find(buf, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Parses a status line and header fields.
fn parse_head(head: &[u8]) -> Result<Head, ProbeFailure> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let status_line = lines.next().unwrap_or_default();
    let status =
        parse_status_line(status_line).ok_or(ProbeFailure::BadResponse("malformed status line"))?;

    let mut chunked = false;
    let mut length: Option<usize> = None;
    for line in lines {
        // Lines without a colon (and obsolete folding) are ignored: a probe
        // needs only two fields and should not fail a payload over a third.
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = trim(value.get(1..).unwrap_or_default());
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // RFC 9112 §6.3: chunked, if present, is the final coding.
            let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = trim(last).eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_decimal(value).ok_or(ProbeFailure::BadResponse("bad content-length"))?;
            // RFC 9112 §6.3: differing lengths make the framing unknowable.
            if length.is_some_and(|known| known != n) {
                return Err(ProbeFailure::BadResponse("conflicting content-length"));
            }
            length = Some(n);
        }
    }
    let framing = if (100..=199).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    Ok(Head { status, framing })
}

/// `HTTP/1.x SSS reason` → `SSS` (RFC 9112 §4).
fn parse_status_line(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (&minor, rest) = rest.split_first()?;
    if !minor.is_ascii_digit() {
        return None;
    }
    let rest = rest.strip_prefix(b" ")?;
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if !matches!(rest.get(3), None | Some(b' ')) {
        return None;
    }
    Some(code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0')))
}

/// Appends what `raw` holds of a chunked body (RFC 9112 §7.1) to `out`;
/// true once the last chunk was seen. Trailer fields are ignored.
fn dechunk(raw: &[u8], out: &mut Vec<u8>) -> Result<bool, ProbeFailure> {
    let mut rest = raw;
    loop {
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Ok(false);
        };
        let (line, after) = rest.split_at(nl);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let size_text = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = parse_hex(trim(size_text)).ok_or(ProbeFailure::BadResponse("bad chunk size"))?;
        rest = after.get(1..).unwrap_or_default();
        if size == 0 {
            return Ok(true);
        }
        let Some(data) = rest.get(..size) else {
            out.extend_from_slice(rest);
            return Ok(false);
        };
        out.extend_from_slice(data);
        rest = rest.get(size..).unwrap_or_default();
        if let Some(next) = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
        {
            rest = next;
        } else if rest.is_empty() || rest == b"\r" {
            return Ok(false);
        } else {
            return Err(ProbeFailure::BadResponse("chunk not followed by CRLF"));
        }
    }
}

/// Reads what the stream has into `buf`; 0 at end of stream.
async fn read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<usize, ProbeFailure> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk).await {
        Ok(n) => {
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            Ok(n)
        }
        // A TLS peer that closes without close_notify: with
        // `Connection: close` that is just the end of the response.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
        Err(e) => Err(io_failure(e)),
    }
}

/// Maps an I/O error after connect to a failure, keeping TLS alerts apart.
fn io_failure(e: io::Error) -> ProbeFailure {
    if e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
    {
        ProbeFailure::Tls(e.to_string())
    } else {
        ProbeFailure::Io(e.kind())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

/// Strips spaces and tabs (RFC 9110 §5.5 OWS).
fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or_default()
}

fn parse_decimal(s: &[u8]) -> Option<usize> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0usize, |n, &b| {
        b.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(usize::from(b - b'0')))
            .flatten()
    })
}

fn parse_hex(s: &[u8]) -> Option<usize> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0usize, |n, &b| {
        let digit = char::from(b).to_digit(16)?;
        n.checked_mul(16)?.checked_add(digit as usize)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{Monitor, MonitorSpec};

    fn check(extra: &str) -> HttpCheck {
        let spec: MonitorSpec = toml::from_str(&format!("protocol = \"http\"\n{extra}")).unwrap();
        Monitor::from_spec(&spec).unwrap().http().unwrap().clone()
    }

    /// Runs one exchange against canned response bytes.
    async fn run(check: &HttpCheck, response: &[u8]) -> (ProbeResult, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        server.write_all(response).await.unwrap();
        server.shutdown().await.unwrap();
        let result = exchange(&mut client, b"GET / HTTP/1.1\r\n\r\n", check).await;
        let mut sent = Vec::new();
        drop(client);
        server.read_to_end(&mut sent).await.unwrap();
        (result, sent)
    }

    #[test]
    fn request_carries_host_headers_and_close() {
        let c = check("path = \"/hz\"\nheaders = { X-Probe = \"yes\", User-Agent = \"ua\" }");
        let r = String::from_utf8(request(&c, "192.0.2.1:80".parse().unwrap())).unwrap();
        assert_eq!(
            r,
            "GET /hz HTTP/1.1\r\nHost: 192.0.2.1\r\nAccept: */*\r\nUser-Agent: ua\r\nX-Probe: yes\r\nConnection: close\r\n\r\n"
        );
        let r =
            String::from_utf8(request(&check(""), "[2001:db8::1]:8080".parse().unwrap())).unwrap();
        assert!(r.contains("\r\nHost: [2001:db8::1]:8080\r\n"), "{r}");
        assert!(r.contains("\r\nUser-Agent: steerdns-health/"), "{r}");
        let r = String::from_utf8(request(
            &check("host = \"a.example\""),
            "[2001:db8::1]:80".parse().unwrap(),
        ))
        .unwrap();
        assert!(r.contains("\r\nHost: a.example\r\n"), "{r}");
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 503"), Some(503));
        assert_eq!(parse_status_line(b"HTTP/1.1 204 "), Some(204));
        for bad in [
            &b"HTTP/2 200 OK"[..],
            b"HTTP/1.1 20 OK",
            b"HTTP/1.1 2000",
            b"ICY 200 OK",
            b"",
            b"HTTP/1.1  200",
        ] {
            assert_eq!(
                parse_status_line(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn heads() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX: y\r\n\r\n").unwrap();
        assert_eq!(
            h,
            Head {
                status: 200,
                framing: Framing::Length(12)
            }
        );
        let h =
            parse_head(b"HTTP/1.1 200 OK\nTransfer-Encoding: gzip, Chunked\nContent-Length: 3\n\n")
                .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let h = parse_head(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Empty);
        let h = parse_head(b"HTTP/1.0 200 OK\r\nno colon here\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::UntilClose);
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
            Err(ProbeFailure::BadResponse("bad content-length"))
        );
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            Err(ProbeFailure::BadResponse("bad content-length"))
        );
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(ProbeFailure::BadResponse("conflicting content-length"))
        );
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n\r\nbody"), Some(19));
        assert_eq!(head_end(b"HTTP/1.1 200 OK\n\nbody"), Some(17));
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n"), None);
    }

    #[test]
    fn chunked_bodies() {
        let mut out = Vec::new();
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n", &mut out),
            Ok(true)
        );
        assert_eq!(out, b"abcde");
        out.clear();
        assert_eq!(dechunk(b"3\r\nabc\r\n5\r\nde", &mut out), Ok(false));
        assert_eq!(out, b"abcde");
        out.clear();
        assert_eq!(dechunk(b"3\r\nabc\r", &mut out), Ok(false));
        out.clear();
        assert_eq!(
            dechunk(b"zz\r\n", &mut out),
            Err(ProbeFailure::BadResponse("bad chunk size"))
        );
        assert_eq!(
            dechunk(b"ffffffffffffffffffff\r\n", &mut out),
            Err(ProbeFailure::BadResponse("bad chunk size"))
        );
        assert_eq!(
            dechunk(b"1\r\nabc", &mut out),
            Err(ProbeFailure::BadResponse("chunk not followed by CRLF"))
        );
    }

    #[tokio::test]
    async fn exchanges() {
        let plain = check("");
        let (r, sent) = run(&plain, b"HTTP/1.1 200 OK\r\n\r\n").await;
        assert_eq!(r, Ok(()));
        assert_eq!(sent, b"GET / HTTP/1.1\r\n\r\n");

        let (r, _) = run(&plain, b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(r.unwrap_err().to_string(), "status 503 not in 200-299");

        let (r, _) = run(
            &plain,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        )
        .await;
        assert_eq!(r, Ok(()));

        let (r, _) = run(&plain, b"").await;
        assert_eq!(
            r,
            Err(ProbeFailure::BadResponse(
                "connection closed without a response"
            ))
        );
        let (r, _) = run(&plain, b"HTTP/1.1 200 OK\r\n").await;
        assert_eq!(
            r,
            Err(ProbeFailure::BadResponse(
                "connection closed inside the response head"
            ))
        );
        let (r, _) = run(&plain, &vec![b'a'; MAX_HEAD + 5000]).await;
        assert_eq!(
            r,
            Err(ProbeFailure::BadResponse("response head over 16 KiB"))
        );

        let body = check("body-contains = \"all good\"");
        let (r, _) = run(
            &body,
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nis all good!",
        )
        .await;
        assert_eq!(r, Ok(()));
        // Text past Content-Length is not part of the body.
        let (r, _) = run(
            &body,
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nis all good",
        )
        .await;
        assert_eq!(r.unwrap_err().to_string(), "body lacks \"all good\"");
        let (r, _) = run(&body, b"HTTP/1.0 200 OK\r\n\r\nstill all good").await;
        assert_eq!(r, Ok(()));
        let (r, _) = run(&body, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nall \r\n4\r\ngood\r\n0\r\n\r\n").await;
        assert_eq!(r, Ok(()));
        // The text after the first 64 KiB is not looked at.
        let mut late = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        late.extend(std::iter::repeat_n(b'.', MAX_BODY));
        late.extend_from_slice(b"all good");
        let (r, _) = run(&body, &late).await;
        assert_eq!(r, Err(ProbeFailure::BodyLacks("all good".into())));
    }
}
