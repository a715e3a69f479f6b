//! Health probes against real servers on 127.0.0.1: a scriptable HTTP
//! server (plain and TLS with a self-signed certificate), a bare TCP
//! listener, a closed port, and a server that never answers. Then the probe
//! runner, watched through the health view as the answer path would see it.
//!
//! Every wait is bounded; every server is local and stops with the test.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use steerdns::health::{
    probe_once, spawn_probe, Health, HealthId, HealthView, Monitor, MonitorSpec, ProbeFailure,
};

/// Longest any test waits for something that should happen: far more than
/// it takes, so that a loaded machine does not fail the test.
const PATIENCE: Duration = Duration::from_secs(10);

const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// What the test server answers. `statuses` is cycled through, one entry
/// per request, so `[200, 503]` alternates.
#[derive(Debug, Clone)]
struct Script {
    statuses: Vec<u16>,
    body: String,
    /// Send the body with `Transfer-Encoding: chunked`, 3 bytes a chunk.
    chunked: bool,
    /// Accept and read the request, then never answer.
    silent: bool,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            statuses: vec![200],
            body: "all good".into(),
            chunked: false,
            silent: false,
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    /// The request head, CRLFs and all.
    head: String,
    /// The TLS server name the client sent (https only).
    sni: Option<String>,
    /// The status it was answered with.
    status: u16,
    /// Whether the observed endpoint was serving when the request came
    /// in (see [`TestServer::observe`]).
    serving: Option<bool>,
}

#[derive(Debug, Default)]
struct Shared {
    script: Script,
    seen: Vec<Seen>,
    /// The health view entry of the endpoint this server plays.
    observed: Option<(HealthView, HealthId)>,
    /// Silent connections the client closed.
    hung_up: usize,
}

/// A tiny HTTP/1.1 server whose answers a test changes while it runs.
struct TestServer {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    accept: JoinHandle<()>,
}

impl TestServer {
    async fn http(script: Script) -> TestServer {
        TestServer::start(script, None).await
    }

    async fn https(script: Script, tls: Arc<rustls::ServerConfig>) -> TestServer {
        TestServer::start(script, Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn start(script: Script, tls: Option<tokio_rustls::TlsAcceptor>) -> TestServer {
        let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Shared {
            script,
            seen: Vec::new(),
            observed: None,
            hung_up: 0,
        }));
        let for_task = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let shared = for_task.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve(tcp, None, &shared).await,
                        Some(acceptor) => {
                            // A client that rejects our certificate ends here.
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let sni = stream.get_ref().1.server_name().map(str::to_string);
                                serve(stream, sni, &shared).await;
                            }
                        }
                    }
                });
            }
        });
        TestServer {
            addr,
            shared,
            accept,
        }
    }

    /// Records, with every request from now on, whether `id` is serving
    /// in `view` as the request arrives. A probe runner applies each
    /// result before it sleeps and sends the next request, so this is the
    /// verdict on every earlier probe, read in logical order rather than
    /// by the clock.
    fn observe(&self, view: &HealthView, id: HealthId) {
        self.shared.lock().unwrap().observed = Some((view.clone(), id));
    }

    fn set(&self, change: impl FnOnce(&mut Script)) {
        change(&mut self.shared.lock().unwrap().script);
    }

    fn seen(&self) -> Vec<Seen> {
        self.shared.lock().unwrap().seen.clone()
    }

    fn requests(&self) -> usize {
        self.shared.lock().unwrap().seen.len()
    }

    /// Stops listening: new connections are refused from now on.
    async fn stop(&self) {
        self.accept.abort();
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(self.addr).await.is_ok() {
            assert!(Instant::now() < deadline, "server did not stop");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Answers one request on `stream` as the script says.
async fn serve<S>(mut stream: S, sni: Option<String>, shared: &Mutex<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let script = {
        let mut shared = shared.lock().unwrap();
        let index = shared.seen.len();
        let mut script = shared.script.clone();
        let status = script.statuses[index % script.statuses.len()];
        script.statuses = vec![status];
        let serving = shared
            .observed
            .as_ref()
            .map(|(view, id)| view.is_serving(*id));
        shared.seen.push(Seen {
            head: String::from_utf8_lossy(&head).into_owned(),
            sni,
            status,
            serving,
        });
        script
    };
    if script.silent {
        // Hold the connection open without a word until the client leaves.
        let _ = stream.read(&mut chunk).await;
        shared.lock().unwrap().hung_up += 1;
        return;
    }
    let status = script.statuses[0];
    let mut response = format!("HTTP/1.1 {status} Whatever\r\nConnection: close\r\n");
    if script.chunked {
        response.push_str("Transfer-Encoding: chunked\r\n\r\n");
        for piece in script.body.as_bytes().chunks(3) {
            response.push_str(&format!("{:x}\r\n", piece.len()));
            response.push_str(std::str::from_utf8(piece).unwrap());
            response.push_str("\r\n");
        }
        response.push_str("0\r\n\r\n");
    } else {
        response.push_str(&format!("Content-Length: {}\r\n\r\n", script.body.len()));
        response.push_str(&script.body);
    }
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A TLS server configuration with a fresh self-signed certificate for
/// `localhost` and 127.0.0.1.
fn self_signed_tls() -> Arc<rustls::ServerConfig> {
    let key =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = CertificateDer::from(key.cert.der().to_vec());
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], private)
        .unwrap();
    Arc::new(config)
}

/// A monitor from TOML text.
fn monitor(text: &str) -> Monitor {
    let spec: MonitorSpec = toml::from_str(text).unwrap();
    Monitor::from_spec(&spec).unwrap()
}

/// An HTTP monitor for `server`, with extra keys.
fn http_monitor(server: &TestServer, extra: &str) -> Monitor {
    monitor(&format!(
        "protocol = \"http\"\nport = {}\ntimeout = \"2s\"\n{extra}",
        server.addr.port()
    ))
}

/// A local address nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn tcp_probe_passes_on_a_listener_and_fails_on_a_closed_port() {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accept = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            drop(tcp);
        }
    });
    let m = monitor(&format!(
        "protocol = \"tcp\"\nport = {port}\ntimeout = \"1s\""
    ));
    let target = m.target_for(LOCALHOST.into());
    assert_eq!(target.port(), port);
    assert_eq!(probe_once(target, &m).await, Ok(()));

    let closed = closed_port().await;
    let result = probe_once(closed, &m).await;
    assert_eq!(result, Err(ProbeFailure::Refused));
    assert_eq!(result.unwrap_err().to_string(), "connect refused");
    accept.abort();
}

#[tokio::test]
async fn http_probe_sends_host_and_custom_headers() {
    let server = TestServer::http(Script::default()).await;
    let m = http_monitor(
        &server,
        "path = \"/healthz?deep=1\"\nhost = \"api.example.com\"\nheaders = { X-Probe = \"steerdns\", Authorization = \"Bearer abc\" }",
    );
    assert_eq!(probe_once(server.addr, &m).await, Ok(()));

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let head = &seen[0].head;
    assert!(
        head.starts_with("GET /healthz?deep=1 HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nHost: api.example.com\r\n"), "{head}");
    assert!(head.contains("\r\nX-Probe: steerdns\r\n"), "{head}");
    assert!(head.contains("\r\nAuthorization: Bearer abc\r\n"), "{head}");
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    assert_eq!(head.matches("Host:").count(), 1, "{head}");
}

#[tokio::test]
async fn http_probe_defaults_host_to_the_target() {
    let server = TestServer::http(Script::default()).await;
    let m = http_monitor(&server, "");
    assert_eq!(probe_once(server.addr, &m).await, Ok(()));
    let head = &server.seen()[0].head;
    assert!(head.starts_with("GET / HTTP/1.1\r\n"), "{head}");
    // Not the default port, so it is part of the authority.
    let host = format!("\r\nHost: 127.0.0.1:{}\r\n", server.addr.port());
    assert!(head.contains(&host), "{head}");
}

#[tokio::test]
async fn expected_status_codes_and_ranges() {
    let server = TestServer::http(Script {
        statuses: vec![503],
        ..Script::default()
    })
    .await;

    let default = http_monitor(&server, "");
    let result = probe_once(server.addr, &default).await;
    assert_eq!(result.unwrap_err().to_string(), "status 503 not in 200-299");

    let accepting = http_monitor(&server, "expected-status = [\"200-299\", 503]");
    assert_eq!(probe_once(server.addr, &accepting).await, Ok(()));
    let class = http_monitor(&server, "expected-status = [\"5xx\"]");
    assert_eq!(probe_once(server.addr, &class).await, Ok(()));

    server.set(|s| s.statuses = vec![301]);
    let r = probe_once(server.addr, &accepting).await;
    assert_eq!(r.unwrap_err().to_string(), "status 301 not in 200-299,503");
    let redirects = http_monitor(&server, "expected-status = [\"300-399\"]");
    assert_eq!(probe_once(server.addr, &redirects).await, Ok(()));
}

#[tokio::test]
async fn body_substring_is_found_across_framings() {
    let server = TestServer::http(Script {
        body: "{\"status\": \"ok\", \"load\": 0.3}".into(),
        ..Script::default()
    })
    .await;
    let wants_ok = http_monitor(&server, "body-contains = \"\\\"status\\\": \\\"ok\\\"\"");
    assert_eq!(probe_once(server.addr, &wants_ok).await, Ok(()));

    // 3-byte chunks split the text across chunk boundaries.
    server.set(|s| s.chunked = true);
    assert_eq!(probe_once(server.addr, &wants_ok).await, Ok(()));

    server.set(|s| s.body = "{\"status\": \"degraded\"}".into());
    let r = probe_once(server.addr, &wants_ok).await;
    assert_eq!(
        r.unwrap_err().to_string(),
        "body lacks \"\\\"status\\\": \\\"ok\\\"\""
    );

    server.set(|s| s.chunked = false);
    let wants_word = http_monitor(&server, "body-contains = \"ok\"");
    assert_eq!(
        probe_once(server.addr, &wants_word).await,
        Err(ProbeFailure::BodyLacks("ok".into()))
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = TestServer::http(Script {
        silent: true,
        ..Script::default()
    })
    .await;
    let m = monitor(&format!(
        "protocol = \"http\"\nport = {}\ntimeout = \"200ms\"\ninterval = \"1s\"",
        server.addr.port()
    ));
    let started = Instant::now();
    let result = probe_once(server.addr, &m).await;
    let took = started.elapsed();
    assert_eq!(
        result,
        Err(ProbeFailure::Timeout(Duration::from_millis(200)))
    );
    assert_eq!(result.unwrap_err().to_string(), "timeout after 200ms");
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // The request did reach the server: the timeout covers the response too.
    assert_eq!(server.requests(), 1);
    // The probe closed its connection when it gave up: nothing keeps the
    // socket open behind it.
    let deadline = Instant::now() + PATIENCE;
    while server.shared.lock().unwrap().hung_up == 0 {
        assert!(
            Instant::now() < deadline,
            "the probe left its connection open"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn garbage_is_a_bad_response() {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = tcp.read(&mut buf).await;
            let _ = tcp.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await;
        }
    });
    let m = monitor(&format!("protocol = \"http\"\nport = {}", addr.port()));
    let r = probe_once(addr, &m).await;
    // Not "HTTP/1.x": hyper's parser refuses the head.
    assert_eq!(r, Err(ProbeFailure::BadResponse("malformed response head")));
    task.abort();
}

#[tokio::test]
async fn https_insecure_accepts_a_self_signed_certificate() {
    let server = TestServer::https(Script::default(), self_signed_tls()).await;
    let m = monitor(&format!(
        "protocol = \"https\"\nport = {}\ninsecure = true\nhost = \"localhost\"\nbody-contains = \"good\"",
        server.addr.port()
    ));
    assert!(m.insecure());
    assert_eq!(probe_once(server.addr, &m).await, Ok(()));
    let seen = server.seen();
    assert_eq!(seen[0].sni.as_deref(), Some("localhost"));
    assert!(
        seen[0].head.contains("\r\nHost: localhost\r\n"),
        "{}",
        seen[0].head
    );

    // Status checks apply over TLS as well.
    server.set(|s| s.statuses = vec![500]);
    let r = probe_once(server.addr, &m).await;
    assert_eq!(r.unwrap_err().to_string(), "status 500 not in 200-299");
}

#[tokio::test]
async fn https_verification_rejects_a_self_signed_certificate() {
    let server = TestServer::https(Script::default(), self_signed_tls()).await;
    for host in ["", "host = \"localhost\""] {
        let m = monitor(&format!(
            "protocol = \"https\"\nport = {}\n{host}",
            server.addr.port()
        ));
        assert!(!m.insecure());
        match probe_once(server.addr, &m).await {
            Err(ProbeFailure::Tls(reason)) => {
                assert!(reason.contains("certificate"), "{host}: {reason}");
            }
            other => panic!("{host}: expected a TLS failure, got {other:?}"),
        }
    }
    // The handshake failed before any request was sent.
    assert_eq!(server.requests(), 0);
}

/// Records every change of `id`'s serving flag, polling far faster than
/// probes run, until the test's runtime ends (or a bounded while).
fn watch(view: HealthView, id: HealthId) -> Arc<Mutex<Vec<bool>>> {
    let seen = Arc::new(Mutex::new(vec![view.is_serving(id)]));
    let record = seen.clone();
    tokio::spawn(async move {
        let deadline = Instant::now() + 4 * PATIENCE;
        while Instant::now() < deadline {
            let now = view.is_serving(id);
            {
                let mut seen = record.lock().unwrap();
                if seen.last() != Some(&now) {
                    seen.push(now);
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    seen
}

/// Waits until the view says `serving` for `id`, at most PATIENCE.
async fn wait_for(view: &HealthView, id: HealthId, serving: bool) {
    let deadline = Instant::now() + PATIENCE;
    while view.is_serving(id) != serving {
        assert!(
            Instant::now() < deadline,
            "endpoint never became {}",
            if serving { "up" } else { "down" }
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits until the server has seen `count` requests, at most PATIENCE.
async fn wait_for_requests(server: &TestServer, count: usize) {
    let deadline = Instant::now() + PATIENCE;
    while server.requests() < count {
        assert!(Instant::now() < deadline, "runner does not probe");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The runner tests' monitor: one failure forgiven, two successes to come
/// back. Probes run 300 ms apart; the timeout (250 ms) is far above what a
/// local request takes even on a loaded machine, and the tests read the
/// verdicts in the order of the probes ([`TestServer::observe`]), not by
/// the clock.
const TOLERATED_FAILURES: usize = 1;
const SUCCESSES_BEFORE_UP: usize = 2;

fn runner_monitor(server: &TestServer) -> Arc<Monitor> {
    Arc::new(monitor(&format!(
        "protocol = \"http\"\nport = {}\ninterval = \"300ms\"\ntimeout = \"250ms\"\n\
         tolerated-failures = {TOLERATED_FAILURES}\nsuccesses-before-up = {SUCCESSES_BEFORE_UP}",
        server.addr.port()
    )))
}

/// Replays the statuses the server answered through the rise/fall rule
/// (down after more than `TOLERATED_FAILURES` failures in a row, up after
/// `SUCCESSES_BEFORE_UP` successes in a row), starting from `up`, and
/// checks that each request found the endpoint in the state the earlier
/// answers call for. Returns the expected state after the last answer.
fn replay(seen: &[Seen], mut up: bool) -> bool {
    let (mut failures, mut successes) = (0, 0);
    for (i, request) in seen.iter().enumerate() {
        assert_eq!(
            request.serving,
            Some(up),
            "request {i} found the endpoint {}; answers so far: {:?}",
            if up { "down, not up" } else { "up, not down" },
            seen[..=i].iter().map(|r| r.status).collect::<Vec<_>>()
        );
        if (200..300).contains(&request.status) {
            failures = 0;
            successes += 1;
            if successes >= SUCCESSES_BEFORE_UP {
                up = true;
            }
        } else {
            successes = 0;
            failures += 1;
            if failures > TOLERATED_FAILURES {
                up = false;
            }
        }
    }
    up
}

#[tokio::test]
async fn runner_marks_down_after_tolerated_failures_and_recovers() {
    let server = TestServer::http(Script::default()).await;
    let m = runner_monitor(&server);
    let mut builder = HealthView::builder();
    let id = builder.add(Health::Up).unwrap();
    let view = builder.build();
    server.observe(&view, id);
    let changes = watch(view.clone(), id);
    let task = spawn_probe(server.addr, m, view.slot(id).unwrap());

    // The first probe runs at once; a few passing probes keep it up.
    wait_for_requests(&server, 3).await;
    server.set(|s| s.statuses = vec![503]);
    wait_for(&view, id, false).await;
    server.set(|s| s.statuses = vec![200]);
    wait_for(&view, id, true).await;
    // One more probe, so the request log holds the verdict on the last
    // success too.
    let probes = server.requests();
    wait_for_requests(&server, probes + 1).await;

    // Every request found the state its predecessors' answers call for:
    // the second failure in a row (not the first) marked it down, the
    // second success up again.
    let seen = server.seen();
    assert!(replay(&seen, true));
    let statuses: Vec<u16> = seen.iter().map(|r| r.status).collect();
    assert!(statuses.contains(&503), "{statuses:?}");

    // A dead payload (connection refused) counts as failing too.
    server.stop().await;
    wait_for(&view, id, false).await;

    task.abort();
    // Let the watcher, which polls every 2ms, see the last change too.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(*changes.lock().unwrap(), vec![true, false, true, false]);
}

#[tokio::test]
async fn runner_absorbs_flapping() {
    // Every other response fails: with one failure forgiven and two
    // successes needed, the state never changes.
    let server = TestServer::http(Script {
        statuses: vec![200, 503],
        ..Script::default()
    })
    .await;
    let mut builder = HealthView::builder();
    let id = builder.add(Health::Up).unwrap();
    let view = builder.build();
    server.observe(&view, id);
    let changes = watch(view.clone(), id);
    let task = spawn_probe(server.addr, runner_monitor(&server), view.slot(id).unwrap());

    wait_for_requests(&server, 10).await;
    task.abort();
    let seen = server.seen();
    assert!(replay(&seen, true));
    assert!(seen.iter().all(|r| r.serving == Some(true)), "{seen:?}");
    assert_eq!(*changes.lock().unwrap(), vec![true]);
}

#[tokio::test]
async fn runner_starts_from_the_published_state_and_keeps_the_drain() {
    let server = TestServer::http(Script::default()).await;
    let mut builder = HealthView::builder();
    let id = builder.add(Health::Down).unwrap();
    let view = builder.build();
    assert!(!view.is_serving(id));
    server.observe(&view, id);

    let task = spawn_probe(server.addr, runner_monitor(&server), view.slot(id).unwrap());
    wait_for(&view, id, true).await;
    // Down to start with: the first two requests found it down.
    let seen = server.seen();
    assert!(seen.len() >= 2, "up before two passing probes");
    assert!(replay(&seen, false));

    // An operator's drain survives the probe's verdicts.
    view.set_drained(id, true);
    assert!(!view.is_serving(id));
    server.set(|s| s.statuses = vec![503]);
    let deadline = Instant::now() + PATIENCE;
    while view.status(id).unwrap().health != Health::Down {
        assert!(Instant::now() < deadline, "never marked down");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.set(|s| s.statuses = vec![200]);
    let deadline = Instant::now() + PATIENCE;
    while view.status(id).unwrap().health != Health::Up {
        assert!(Instant::now() < deadline, "never marked up again");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(!view.is_serving(id), "probe undid the drain");
    view.set_drained(id, false);
    assert!(view.is_serving(id));
    task.abort();
}
