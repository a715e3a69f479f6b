//! The HTTP/1.1 part of http and https probes, on hyper's client connection
//! (RFC 9112): one `GET` with `Connection: close` on a connection the probe
//! opened itself, then the status and, when the monitor looks for text in
//! it, at most [`MAX_BODY`] bytes of body.
//!
//! hyper does the framing (chunked, `Content-Length`, close-delimited,
//! interim 1xx responses); this module caps what it may read, judges the
//! status and searches the body. Everything read comes from the probed
//! server, so sizes are capped and framing errors become
//! [`ProbeFailure::BadResponse`].
//!
//! The connection is driven inside the probe's own future rather than in a
//! spawned task, so when the probe ends (an answer, or the monitor's
//! timeout dropping it) the socket closes with it: nothing is left behind.

use std::error::Error as _;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, CONNECTION, HOST, USER_AGENT};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::monitor::{HttpCheck, MAX_BODY};
use super::result::{ProbeFailure, ProbeResult};

/// Largest response head (status line and header fields) hyper may buffer.
/// Also its read buffer, so body bytes arrive in pieces no larger than this.
const MAX_HEAD: usize = 16 * 1024;

/// Most header fields accepted in a response.
const MAX_HEADERS: usize = 100;

/// The request for one probe of `target`.
fn request(check: &HttpCheck, target: SocketAddr) -> Request<Empty<Bytes>> {
    let mut request = Request::new(Empty::new());
    *request.uri_mut() = check.target.clone();
    let headers = request.headers_mut();
    headers.insert(HOST, host(check, target));
    // The configured headers may replace these two, never the rest (see
    // `RESERVED_HEADERS` in the monitor).
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("steerdns-health/", env!("CARGO_PKG_VERSION"))),
    );
    headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
    for (name, value) in &check.header_map {
        headers.insert(name, value.clone());
    }
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    request
}

/// The `Host` field: the monitor's `host`, else the target's authority.
fn host(check: &HttpCheck, target: SocketAddr) -> HeaderValue {
    if let Some(host) = &check.host_value {
        return host.clone();
    }
    let default_port = if check.tls.is_some() { 443 } else { 80 };
    // RFC 9110 §7.2: the authority, with the port only when it is not the
    // scheme's default. SocketAddr's Display brackets IPv6.
    let authority = if target.port() == default_port {
        match target {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        }
    } else {
        target.to_string()
    };
    // An address printed as text is digits, hex letters, '.', ':', '[',
    // ']' and '%' (a scope id, which is a number here): all valid in a
    // header value, so this conversion cannot fail.
    HeaderValue::try_from(authority).expect("an address is a valid header value")
}

/// Sends the probe request for `target` on `stream` (TCP, or TLS over it)
/// and judges the response against `check`.
pub(crate) async fn exchange<S>(stream: S, check: &HttpCheck, target: SocketAddr) -> ProbeResult
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        // Header names go out as `Host`, `X-Probe`, ...: some payloads'
        // health handlers compare names case-sensitively.
        .title_case_headers(true)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| failure(&e))?;
    let judged = async {
        // The connection takes a request only once `drive` has polled it.
        sender.ready().await.map_err(|e| failure(&e))?;
        let response = sender
            .send_request(request(check, target))
            .await
            .map_err(|e| failure(&e))?;
        judge(response, check).await
    };
    drive(connection, judged).await
}

/// Runs `work` while polling `connection`, which moves the bytes `work`
/// waits for. The connection may finish first (the server closed after the
/// last byte), with body data still buffered for `work`, so `work` alone
/// decides the result; an error of the connection reaches `work` through
/// hyper's channels.
async fn drive<C, W>(connection: C, work: W) -> ProbeResult
where
    C: Future<Output = hyper::Result<()>>,
    W: Future<Output = ProbeResult>,
{
    let mut connection = pin!(connection);
    let mut work = pin!(work);
    let mut connected = true;
    loop {
        tokio::select! {
            result = &mut work => return result,
            _ = &mut connection, if connected => connected = false,
        }
    }
}

/// Checks the status, then looks for the monitor's text in the body.
async fn judge(response: Response<Incoming>, check: &HttpCheck) -> ProbeResult {
    let code = response.status().as_u16();
    if !check.expected_status.contains(code) {
        return Err(ProbeFailure::Status {
            code,
            expected: check.expected_status.clone(),
        });
    }
    let Some(needle) = check.body_contains.as_deref() else {
        return Ok(());
    };
    let needle = needle.as_bytes();
    let mut body = response.into_body();
    let mut seen: Vec<u8> = Vec::new();
    while seen.len() < MAX_BODY {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame.map_err(|e| failure(&e))?;
        let Ok(data) = frame.into_data() else {
            // Trailers: the body has ended.
            break;
        };
        // Only the new bytes and the needle's length before them can hold
        // a match that was not there already.
        let from = seen.len().saturating_sub(needle.len().saturating_sub(1));
        let room = MAX_BODY - seen.len();
        seen.extend_from_slice(data.get(..room).unwrap_or(&data));
        if seen
            .get(from..)
            .is_some_and(|tail| tail.windows(needle.len()).any(|w| w == needle))
        {
            return Ok(());
        }
    }
    Err(ProbeFailure::BodyLacks(
        String::from_utf8_lossy(needle).into_owned(),
    ))
}

/// Why hyper gave up, as a probe failure. I/O errors (and the TLS alerts
/// tokio-rustls wraps in them) are found in the error's sources.
fn failure(e: &hyper::Error) -> ProbeFailure {
    if e.is_parse_too_large() {
        return ProbeFailure::BadResponse("response head over 16 KiB or 100 fields");
    }
    if e.is_parse_status() {
        return ProbeFailure::BadResponse("malformed status line");
    }
    if e.is_parse() {
        return ProbeFailure::BadResponse("malformed response head");
    }
    let mut source = e.source();
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<io::Error>() {
            return io_failure(io);
        }
        source = inner.source();
    }
    if e.is_incomplete_message() {
        return ProbeFailure::BadResponse("connection closed before the response ended");
    }
    ProbeFailure::BadResponse("the HTTP exchange failed")
}

/// Maps an I/O error after connect to a failure, keeping TLS alerts and
/// hyper's body decoding errors (a bad chunk size) apart.
fn io_failure(e: &io::Error) -> ProbeFailure {
    if e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
    {
        return ProbeFailure::Tls(e.to_string());
    }
    match e.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            ProbeFailure::BadResponse("malformed body framing")
        }
        kind => ProbeFailure::Io(kind),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::health::{Monitor, MonitorSpec};

    fn check(extra: &str) -> HttpCheck {
        let spec: MonitorSpec = toml::from_str(&format!("protocol = \"http\"\n{extra}")).unwrap();
        Monitor::from_spec(&spec).unwrap().http().unwrap().clone()
    }

    fn target() -> SocketAddr {
        "192.0.2.1:80".parse().unwrap()
    }

    /// Runs one exchange against canned response bytes; returns the result
    /// and the request the client sent.
    async fn run(check: &HttpCheck, response: &[u8]) -> (ProbeResult, String) {
        run_to(check, target(), response).await
    }

    async fn run_to(
        check: &HttpCheck,
        target: SocketAddr,
        response: &[u8],
    ) -> (ProbeResult, String) {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        // A server answers once it has the request head: hyper takes
        // bytes that come before its request as an error.
        let response = response.to_vec();
        let server = tokio::spawn(async move {
            let mut sent = Vec::new();
            let mut chunk = [0u8; 1024];
            while !sent.windows(4).any(|w| w == b"\r\n\r\n") {
                match server.read(&mut chunk).await.unwrap() {
                    0 => break,
                    n => sent.extend_from_slice(&chunk[..n]),
                }
            }
            server.write_all(&response).await.unwrap();
            server.shutdown().await.unwrap();
            server.read_to_end(&mut sent).await.unwrap();
            sent
        });
        let result = exchange(client, check, target).await;
        let sent = server.await.unwrap();
        (result, String::from_utf8(sent).unwrap())
    }

    #[tokio::test]
    async fn request_carries_host_headers_and_close() {
        let c = check("path = \"/hz?a=1\"\nheaders = { X-Probe = \"yes\", User-Agent = \"ua\" }");
        let (r, sent) = run(&c, b"HTTP/1.1 200 OK\r\n\r\n").await;
        assert_eq!(r, Ok(()));
        assert!(sent.starts_with("GET /hz?a=1 HTTP/1.1\r\n"), "{sent}");
        for line in [
            "\r\nHost: 192.0.2.1\r\n",
            "\r\nAccept: */*\r\n",
            "\r\nUser-Agent: ua\r\n",
            "\r\nX-Probe: yes\r\n",
            "\r\nConnection: close\r\n",
        ] {
            assert!(sent.contains(line), "{line:?} in {sent}");
        }
        assert_eq!(sent.matches("User-Agent").count(), 1, "{sent}");
        assert!(sent.ends_with("\r\n\r\n"), "{sent}");

        let (_, sent) = run_to(
            &check(""),
            "[2001:db8::1]:8080".parse().unwrap(),
            b"HTTP/1.1 200 OK\r\n\r\n",
        )
        .await;
        assert!(sent.contains("\r\nHost: [2001:db8::1]:8080\r\n"), "{sent}");
        assert!(sent.contains("\r\nUser-Agent: steerdns-health/"), "{sent}");
        let (_, sent) = run_to(
            &check(""),
            "[2001:db8::1]:80".parse().unwrap(),
            b"HTTP/1.1 200 OK\r\n\r\n",
        )
        .await;
        assert!(sent.contains("\r\nHost: [2001:db8::1]\r\n"), "{sent}");
        let (_, sent) = run(&check("host = \"a.example\""), b"HTTP/1.1 200 OK\r\n\r\n").await;
        assert!(sent.contains("\r\nHost: a.example\r\n"), "{sent}");
    }

    #[tokio::test]
    async fn statuses_and_framing_errors() {
        let plain = check("");
        let (r, _) = run(&plain, b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(r.unwrap_err().to_string(), "status 503 not in 200-299");

        // Interim responses are skipped; the final one counts.
        let (r, _) = run(
            &plain,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        )
        .await;
        assert_eq!(r, Ok(()));
        let (r, _) = run(
            &plain,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Oops\r\n\r\n",
        )
        .await;
        assert_eq!(r.unwrap_err().to_string(), "status 500 not in 200-299");

        let (r, _) = run(&plain, b"").await;
        assert_eq!(
            r,
            Err(ProbeFailure::BadResponse(
                "connection closed before the response ended"
            ))
        );
        let (r, _) = run(&plain, b"HTTP/1.1 200 OK\r\n").await;
        assert_eq!(
            r,
            Err(ProbeFailure::BadResponse(
                "connection closed before the response ended"
            ))
        );
        let (r, _) = run(&plain, b"HTTP/1.1 2000 OK\r\n\r\n").await;
        assert_eq!(r, Err(ProbeFailure::BadResponse("malformed status line")));
        let (r, _) = run(&plain, b"ICY 200 OK\r\n\r\n").await;
        assert_eq!(r, Err(ProbeFailure::BadResponse("malformed response head")));
        let (r, _) = run(
            &plain,
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        )
        .await;
        assert_eq!(r, Err(ProbeFailure::BadResponse("malformed response head")));

        let mut long = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_HEAD + 5000));
        long.extend_from_slice(b"\r\n\r\n");
        let (r, _) = run(&plain, &long).await;
        assert_eq!(
            r,
            Err(ProbeFailure::BadResponse(
                "response head over 16 KiB or 100 fields"
            ))
        );
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let (r, _) = run(&plain, &many).await;
        assert_eq!(
            r,
            Err(ProbeFailure::BadResponse(
                "response head over 16 KiB or 100 fields"
            ))
        );
    }

    #[tokio::test]
    async fn body_search_across_framings_and_the_cap() {
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
        // Close-delimited.
        let (r, _) = run(&body, b"HTTP/1.0 200 OK\r\n\r\nstill all good").await;
        assert_eq!(r, Ok(()));
        // Chunked, the text split across chunks.
        let (r, _) = run(&body, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nall \r\n2;ext=1\r\ngo\r\n2\r\nod\r\n0\r\n\r\n").await;
        assert_eq!(r, Ok(()));
        let (r, _) = run(
            &body,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        )
        .await;
        assert_eq!(r, Err(ProbeFailure::BadResponse("malformed body framing")));
        // A 204 has no body, whatever follows.
        let (r, _) = run(&body, b"HTTP/1.1 204 No Content\r\n\r\nall good").await;
        assert_eq!(r, Err(ProbeFailure::BodyLacks("all good".into())));

        // The text just inside the first 64 KiB is found (in pieces no
        // larger than hyper's buffer); just past them it is not looked at.
        for (dots, found) in [(MAX_BODY - 8, true), (MAX_BODY - 7, false)] {
            let mut late = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
            late.extend(std::iter::repeat_n(b'.', dots));
            late.extend_from_slice(b"all good");
            let (r, _) = run(&body, &late).await;
            assert_eq!(r.is_ok(), found, "{dots}: {r:?}");
        }
        // A body far longer than the cap ends the probe at the cap rather
        // than reading on.
        let mut huge = b"HTTP/1.1 200 OK\r\nContent-Length: 900000\r\n\r\n".to_vec();
        huge.extend(std::iter::repeat_n(b'.', 900_000 - 8));
        huge.extend_from_slice(b"all good");
        let (r, _) = run(&body, &huge).await;
        assert_eq!(r, Err(ProbeFailure::BodyLacks("all good".into())));
    }
}
