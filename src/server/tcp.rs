//! DNS over TCP (RFC 7766): accept loop and per-connection framing.
//!
//! Every message travels behind a two-byte big-endian length (RFC 1035
//! §4.2.2). A client may pipeline several queries; they are answered one
//! at a time, in order, which RFC 7766 §6.2.1.1 permits.
//!
//! TCP costs the server a socket, buffers and a task per client, so it is
//! where a flood from a few addresses, or clients that connect and then
//! send nothing (slowloris), would exhaust the server. RFC 7766 §6.2.2
//! lets a server limit connections and close idle ones; we do:
//!
//! - at most `max-connections` connections overall and
//!   `max-connections-per-client` from one address ([`Gate`]); a
//!   connection over either cap is accepted and reset at once, so the
//!   client learns at once and the kernel's backlog never fills;
//! - a new connection must complete its first query within
//!   `initial-timeout`, later ones within `idle-timeout`; the timer covers
//!   the whole message, so trickling one byte at a time does not help;
//! - at most `max-queries-per-connection` queries per connection.
//!
//! All of it runs on the tokio runtime's threads; the UDP workers never
//! wait for TCP.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::timeout;

use crate::config::TcpLimits;
use crate::cookie::CookieSecret;
use crate::engine::{QueryContext, Transport};
use crate::metrics::Metrics;

use super::Handler;

/// The largest DNS message: the two-byte length prefix's limit.
const MAX_MESSAGE: usize = u16::MAX as usize;

/// Typical query size; the query buffer grows past it only when needed.
const QUERY_CAPACITY: usize = 512;

/// How long a closing connection may take to flush its last reply.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// At shutdown, how long a connection waits for the rest of a query on
/// its way: pipelined queries a client sent before the shutdown are in
/// the socket buffer already, so this only has to cover a slow network.
pub(crate) const DRAIN_WAIT: Duration = Duration::from_millis(200);

/// Admission control shared by every listener: counts open connections,
/// overall and per client address.
///
/// A mutex guards the counts: it is taken twice per connection (accept and
/// close), never on the UDP path and never across an await, so it costs
/// nothing that matters. The map holds only addresses with open
/// connections, so it never outgrows `max-connections`.
#[derive(Debug)]
pub(crate) struct Gate {
    max_total: usize,
    max_per_client: usize,
    open: Mutex<OpenConnections>,
}

#[derive(Debug, Default)]
struct OpenConnections {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `max-connections` are open.
    Full,
    /// `max-connections-per-client` are open from this address.
    ClientFull,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct Admission {
    gate: Arc<Gate>,
    client: IpAddr,
}

impl Gate {
    /// A gate for `limits`' caps.
    pub(crate) fn new(limits: &TcpLimits) -> Gate {
        Gate {
            max_total: limits.max_connections,
            max_per_client: limits.max_connections_per_client,
            open: Mutex::new(OpenConnections::default()),
        }
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.lock().total
    }

    /// Admits one more connection from `client`, if both caps allow.
    pub(crate) fn admit(self: &Arc<Gate>, client: IpAddr) -> Result<Admission, Refused> {
        // An IPv4-mapped address is the IPv4 client it maps.
        let client = client.to_canonical();
        let mut open = self.lock();
        if open.total >= self.max_total {
            return Err(Refused::Full);
        }
        let from_client = open.per_client.entry(client).or_insert(0);
        if *from_client >= self.max_per_client {
            return Err(Refused::ClientFull);
        }
        *from_client += 1;
        open.total += 1;
        Ok(Admission {
            gate: self.clone(),
            client,
        })
    }

    /// The counts; a panic elsewhere while holding the lock cannot leave
    /// them inconsistent (each update is complete before unlocking), so a
    /// poisoned lock is used as is.
    fn lock(&self) -> std::sync::MutexGuard<'_, OpenConnections> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut open = self.gate.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.per_client.remove(&self.client);
            }
        }
    }
}

/// Closes a connection we will not serve with a reset rather than a FIN:
/// the client learns at once, and no TIME_WAIT state is left on our side
/// for a flood to pile up (a zero linger does not block).
fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Accepts connections on `listener` forever, admitting them through
/// `gate` (shared by all listeners). A connection over a cap is reset at
/// once rather than left waiting, so the client can retry elsewhere.
pub(crate) async fn serve<H: Handler + Send + Sync + 'static>(
    listener: TcpListener,
    gate: Arc<Gate>,
    limits: TcpLimits,
    handler: Arc<H>,
    cookies: CookieSecret,
    metrics: Arc<Metrics>,
    mut closing: watch::Receiver<bool>,
) {
    let listen = listener
        .local_addr()
        .map_or_else(|e| e.to_string(), |addr| addr.to_string());
    loop {
        // At shutdown the listener closes first: new connections are
        // refused while open ones finish (see `connection`).
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = closing.wait_for(|&closing| closing) => return,
        };
        let (stream, client) = match accepted {
            Ok(accepted) => accepted,
            // The client gave up before we accepted; nothing to do.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of descriptors or memory: pause rather than spin,
                // and let existing connections finish.
                tracing::warn!(%listen, "TCP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let admission = match gate.admit(client.ip()) {
            Ok(admission) => admission,
            Err(refused) => {
                metrics.tcp_limit_hit(match refused {
                    Refused::Full => "total",
                    Refused::ClientFull => "client",
                });
                reset(stream);
                continue;
            }
        };
        metrics.tcp_accepted();
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        // Replies go out in one write each; Nagle's algorithm would hold a
        // pipelined reply back until the previous one is acknowledged.
        let _ = stream.set_nodelay(true);
        // Time and keys are refreshed for every query (see `connection`).
        let now = super::unix_seconds();
        let ctx = QueryContext {
            client,
            local: local.ip(),
            transport: Transport::Tcp,
            now,
            cookie_keys: cookies.keys(now),
        };
        let limits = limits.clone();
        let handler = handler.clone();
        let metrics = metrics.clone();
        let closing = closing.clone();
        tokio::spawn(async move {
            // A connection's errors concern that client alone: not logged.
            let counted = |query: &[u8], ctx: &QueryContext, out: &mut [u8]| {
                let report = handler.answer(query, ctx, out)?;
                metrics.tcp().count_shared(&report);
                Some(report)
            };
            let _ = connection(stream, &ctx, &limits, &counted, &cookies, closing).await;
            drop(admission);
        });
    }
}

/// Errors that end one connection attempt, not the listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || error.raw_os_error() == Some(libc::EPROTO)
}

/// Answers the queries on one connection until the client closes it, its
/// first query takes longer than `limits.initial_timeout` or a later one
/// longer than `limits.idle_timeout`, it has had
/// `limits.max_queries_per_connection` queries (0: no limit), it sends
/// something unusable, or the server shuts down (`closing` turns true):
/// then the queries that have arrived are answered, and the connection
/// closes once none follows within [`DRAIN_WAIT`].
async fn connection<S, H>(
    stream: S,
    ctx: &QueryContext,
    limits: &TcpLimits,
    handler: &H,
    cookies: &CookieSecret,
    mut closing: watch::Receiver<bool>,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Handler,
{
    // Reads are buffered, so pipelined queries cost one read between them;
    // writes pass straight through BufReader.
    let mut stream = BufReader::new(stream);
    // The length prefix and the message as they arrive.
    let mut frame = Vec::with_capacity(2 + QUERY_CAPACITY);
    // Prefix and message, so each reply is one write.
    let mut reply = vec![0; 2 + MAX_MESSAGE];
    let mut answered: u32 = 0;
    let mut shutting_down = *closing.borrow();
    loop {
        if limits.max_queries_per_connection != 0 && answered >= limits.max_queries_per_connection {
            break;
        }
        // RFC 7766 §6.2.3: close a connection idle too long. The timer
        // covers the whole query, so a slow trickle is idle too. A real
        // client sends its first query right after connecting, so the
        // first one gets a shorter leash; at shutdown, only what is
        // already on its way is waited for.
        let wait = if shutting_down {
            DRAIN_WAIT
        } else if answered == 0 {
            limits.initial_timeout
        } else {
            limits.idle_timeout
        };
        let read = timeout(wait, read_message(&mut stream, &mut frame));
        let read = if shutting_down {
            read.await
        } else {
            tokio::select! {
                read = read => read,
                // `read_message` keeps what it read in `frame`, so the
                // read resumes with the shorter wait. A dropped sender
                // means shutdown too.
                _ = closing.wait_for(|&closing| closing) => {
                    shutting_down = true;
                    continue;
                }
            }
        };
        match read {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            // Nothing more arrived: close in order.
            Err(_) if shutting_down => break,
            Err(_) => return Err(io::ErrorKind::TimedOut.into()),
        }
        answered = answered.saturating_add(1);
        // None: the engine drops the message (unreadable header, or a
        // response), as it would over UDP; the connection stays.
        // The clock is read per query: a connection may live for hours.
        let now = super::unix_seconds();
        let ctx = QueryContext {
            now,
            cookie_keys: cookies.keys(now),
            ..*ctx
        };
        let answer = handler
            .answer(&frame[2..], &ctx, &mut reply[2..])
            .map(|r| r.len);
        frame.clear();
        let Some(len) = answer else {
            continue;
        };
        let Ok(prefix) = u16::try_from(len) else {
            continue;
        };
        reply[..2].copy_from_slice(&prefix.to_be_bytes());
        // A client that stops reading must not pin the connection either.
        match timeout(limits.idle_timeout, stream.write_all(&reply[..2 + len])).await {
            Ok(result) => result?,
            Err(_) => return Err(io::ErrorKind::TimedOut.into()),
        }
    }
    // Close our side in order so the last reply is not cut off.
    let _ = timeout(CLOSE_TIMEOUT, stream.shutdown()).await;
    Ok(())
}

/// Reads until `frame` holds one whole message with its two-byte length
/// prefix. A zero length is an error: no DNS message is empty.
///
/// Cancel-safe: every byte taken from the stream is in `frame` (BufReader's
/// `fill_buf` loses nothing when dropped), so a read interrupted by
/// shutdown can be resumed. The caller clears `frame` after each message.
async fn read_message<R: AsyncBufRead + Unpin>(
    stream: &mut R,
    frame: &mut Vec<u8>,
) -> io::Result<()> {
    loop {
        let need = match frame.as_slice() {
            [hi, lo, ..] => match usize::from(u16::from_be_bytes([*hi, *lo])) {
                0 => return Err(io::ErrorKind::InvalidData.into()),
                len => 2 + len,
            },
            _ => 2,
        };
        if frame.len() == need {
            return Ok(());
        }
        let available = stream.fill_buf().await?;
        if available.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let take = available.len().min(need - frame.len());
        frame.extend_from_slice(&available[..take]);
        stream.consume(take);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;

    use crate::engine::Report;
    use crate::server::test_report;

    /// Answers with the query's bytes reversed; drops queries starting
    /// with `d`.
    fn reverse(query: &[u8], ctx: &QueryContext, out: &mut [u8]) -> Option<Report> {
        assert_eq!(ctx.transport, Transport::Tcp);
        assert!(ctx.local.is_loopback());
        if query.first() == Some(&b'd') {
            return None;
        }
        for (o, q) in out.iter_mut().zip(query.iter().rev()) {
            *o = *q;
        }
        Some(test_report(query.len()))
    }

    fn limits() -> TcpLimits {
        TcpLimits {
            max_connections: 10,
            idle_timeout: Duration::from_millis(300),
            max_queries_per_connection: 0,
            max_connections_per_client: 10,
            initial_timeout: Duration::from_millis(300),
        }
    }

    /// Serves `reverse` on a loopback port; returns the address.
    async fn start(limits: TcpLimits) -> SocketAddr {
        let listener =
            TcpListener::from_std(crate::sys::bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap())
                .unwrap();
        let addr = listener.local_addr().unwrap();
        let gate = Arc::new(Gate::new(&limits));
        let secret = CookieSecret::Shared([0; 16]);
        let metrics = Arc::new(Metrics::new(0, Arc::new(crate::rrl::RrlCounters::new(0))));
        // Never shut down: the sender lives as long as the test process.
        let (closing, closed) = watch::channel(false);
        Box::leak(Box::new(closing));
        tokio::spawn(serve(
            listener,
            gate,
            limits,
            Arc::new(reverse),
            secret,
            metrics,
            closed,
        ));
        addr
    }

    fn frame(message: &[u8]) -> Vec<u8> {
        let mut framed = (message.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(message);
        framed
    }

    async fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
        let mut prefix = [0; 2];
        stream.read_exact(&mut prefix).await.unwrap();
        let mut message = vec![0; usize::from(u16::from_be_bytes(prefix))];
        stream.read_exact(&mut message).await.unwrap();
        message
    }

    /// Asserts the server closes the connection within `within`.
    async fn assert_closed(stream: &mut TcpStream, within: Duration) {
        let mut buf = [0; 16];
        match timeout(within, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => panic!("unexpected {n} bytes"),
            Err(_) => panic!("connection still open"),
        }
    }

    #[tokio::test]
    async fn pipelined_queries_answered_in_order() {
        let addr = start(limits()).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // Three queries in one write, one of them dropped by the handler.
        let mut queries = frame(b"first");
        queries.extend(frame(b"drop"));
        queries.extend(frame(b"second"));
        stream.write_all(&queries).await.unwrap();
        assert_eq!(read_frame(&mut stream).await, b"tsrif");
        assert_eq!(read_frame(&mut stream).await, b"dnoces");
        // A query split across writes is reassembled.
        let framed = frame(b"third");
        stream.write_all(&framed[..3]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        stream.write_all(&framed[3..]).await.unwrap();
        assert_eq!(read_frame(&mut stream).await, b"driht");
        // Largest possible message.
        let big = vec![b'x'; MAX_MESSAGE];
        stream.write_all(&frame(&big)).await.unwrap();
        assert_eq!(read_frame(&mut stream).await, big);
    }

    #[tokio::test]
    async fn idle_connection_closed() {
        let addr = start(limits()).await;
        let mut idle = TcpStream::connect(addr).await.unwrap();
        assert_closed(&mut idle, Duration::from_secs(2)).await;
        // A query that never completes does not keep it open either.
        let mut trickle = TcpStream::connect(addr).await.unwrap();
        trickle.write_all(&frame(b"query")[..4]).await.unwrap();
        assert_closed(&mut trickle, Duration::from_secs(2)).await;
        // The timer restarts with each query: three pauses of 600 ms add up
        // to more than the 1.5 s timeout, and each leaves 900 ms of slack
        // for a loaded machine.
        let addr = start(TcpLimits {
            idle_timeout: Duration::from_millis(1500),
            initial_timeout: Duration::from_millis(1500),
            ..limits()
        })
        .await;
        let mut busy = TcpStream::connect(addr).await.unwrap();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(600)).await;
            busy.write_all(&frame(b"ab")).await.unwrap();
            assert_eq!(read_frame(&mut busy).await, b"ba");
        }
    }

    #[tokio::test]
    async fn first_query_has_a_shorter_leash() {
        let addr = start(TcpLimits {
            initial_timeout: Duration::from_millis(200),
            idle_timeout: Duration::from_secs(3),
            ..limits()
        })
        .await;
        let started = tokio::time::Instant::now();
        let mut silent = TcpStream::connect(addr).await.unwrap();
        assert_closed(&mut silent, Duration::from_secs(1)).await;
        assert!(started.elapsed() >= Duration::from_millis(150));
        // After a first query, the idle timeout applies.
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(&frame(b"ab")).await.unwrap();
        assert_eq!(read_frame(&mut client).await, b"ba");
        tokio::time::sleep(Duration::from_millis(500)).await;
        client.write_all(&frame(b"cd")).await.unwrap();
        assert_eq!(read_frame(&mut client).await, b"dc");
    }

    #[test]
    fn gate_counts_per_client_and_overall() {
        let gate = Arc::new(Gate::new(&TcpLimits {
            max_connections: 3,
            max_connections_per_client: 2,
            ..limits()
        }));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let first = gate.admit(a).unwrap();
        let _second = gate.admit("::ffff:192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(gate.admit(a).unwrap_err(), Refused::ClientFull);
        let third = gate.admit(b).unwrap();
        assert_eq!(gate.admit(b).unwrap_err(), Refused::Full);
        drop(first);
        let _again = gate.admit(a).unwrap();
        assert_eq!(gate.lock().per_client.len(), 2);
        drop(third);
        assert_eq!(gate.lock().per_client.len(), 1, "no entry left for b");
    }

    #[tokio::test]
    async fn zero_length_closes() {
        let addr = start(limits()).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&[0, 0]).await.unwrap();
        assert_closed(&mut stream, Duration::from_millis(200)).await;
    }

    #[tokio::test]
    async fn query_limit_closes_after_last_answer() {
        let addr = start(TcpLimits {
            max_queries_per_connection: 2,
            ..limits()
        })
        .await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut queries = frame(b"ab");
        queries.extend(frame(b"cd"));
        stream.write_all(&queries).await.unwrap();
        assert_eq!(read_frame(&mut stream).await, b"ba");
        assert_eq!(read_frame(&mut stream).await, b"dc");
        assert_closed(&mut stream, Duration::from_millis(200)).await;
    }

    #[tokio::test]
    async fn connection_limit_closes_new_connections() {
        let addr = start(TcpLimits {
            max_connections: 1,
            ..limits()
        })
        .await;
        let mut first = TcpStream::connect(addr).await.unwrap();
        first.write_all(&frame(b"ab")).await.unwrap();
        assert_eq!(read_frame(&mut first).await, b"ba");
        let mut second = TcpStream::connect(addr).await.unwrap();
        assert_closed(&mut second, Duration::from_millis(200)).await;
        // Once the first is gone, its slot is free again.
        drop(first);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut third = TcpStream::connect(addr).await.unwrap();
        third.write_all(&frame(b"ab")).await.unwrap();
        assert_eq!(read_frame(&mut third).await, b"ba");
    }
}
