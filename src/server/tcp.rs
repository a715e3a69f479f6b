//! DNS over TCP (RFC 7766): accept loop and per-connection framing.
//!
//! Every message travels behind a two-byte big-endian length (RFC 1035
//! §4.2.2). A client may pipeline several queries; they are answered one
//! at a time, in order, which RFC 7766 §6.2.1.1 permits.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::timeout;

use crate::config::TcpLimits;
use crate::engine::{QueryContext, Transport};

use super::Handler;

/// The largest DNS message: the two-byte length prefix's limit.
const MAX_MESSAGE: usize = u16::MAX as usize;

/// Typical query size; the query buffer grows past it only when needed.
const QUERY_CAPACITY: usize = 512;

/// How long a closing connection may take to flush its last reply.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Accepts connections on `listener` forever.
///
/// `slots` holds one permit per connection allowed at once, shared by all
/// listeners, as servers may limit concurrent connections (RFC 7766
/// §6.2.2). When none is free the new connection is closed at once rather
/// than left waiting, so the client learns at once and can retry
/// elsewhere.
pub(crate) async fn serve<H: Handler + Send + Sync + 'static>(
    listener: TcpListener,
    slots: Arc<Semaphore>,
    limits: TcpLimits,
    handler: Arc<H>,
) {
    let listen = listener
        .local_addr()
        .map_or_else(|e| e.to_string(), |addr| addr.to_string());
    loop {
        let (stream, client) = match listener.accept().await {
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
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        // Replies go out in one write each; Nagle's algorithm would hold a
        // pipelined reply back until the previous one is acknowledged.
        let _ = stream.set_nodelay(true);
        let ctx = QueryContext {
            client,
            local: local.ip(),
            transport: Transport::Tcp,
        };
        let limits = limits.clone();
        let handler = handler.clone();
        tokio::spawn(async move {
            // A connection's errors concern that client alone: not logged.
            let _ = connection(stream, &ctx, &limits, &*handler).await;
            drop(permit);
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

/// Answers the queries on one connection until the client closes it, it
/// idles past `limits.idle_timeout`, it has had
/// `limits.max_queries_per_connection` queries (0: no limit), or it sends
/// something unusable.
async fn connection<S, H>(
    stream: S,
    ctx: &QueryContext,
    limits: &TcpLimits,
    handler: &H,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Handler,
{
    // Reads are buffered, so pipelined queries cost one read between them;
    // writes pass straight through BufReader.
    let mut stream = BufReader::new(stream);
    let mut query = Vec::with_capacity(QUERY_CAPACITY);
    // Prefix and message, so each reply is one write.
    let mut reply = vec![0; 2 + MAX_MESSAGE];
    let mut answered: u32 = 0;
    loop {
        if limits.max_queries_per_connection != 0 && answered >= limits.max_queries_per_connection {
            break;
        }
        // RFC 7766 §6.2.3: close a connection idle too long. The timer
        // covers the whole query, so a slow trickle is idle too.
        match timeout(limits.idle_timeout, read_message(&mut stream, &mut query)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::ErrorKind::TimedOut.into()),
        }
        answered = answered.saturating_add(1);
        // None: the engine drops the message (unreadable header, or a
        // response), as it would over UDP; the connection stays.
        let Some(len) = handler(&query, ctx, &mut reply[2..]) else {
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

/// Reads one length-prefixed message into `buf`. A zero length is an
/// error: no DNS message is empty.
async fn read_message<R: AsyncRead + Unpin>(stream: &mut R, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut prefix = [0; 2];
    stream.read_exact(&mut prefix).await?;
    let len = usize::from(u16::from_be_bytes(prefix));
    if len == 0 {
        return Err(io::ErrorKind::InvalidData.into());
    }
    buf.resize(len, 0);
    stream.read_exact(buf).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::net::TcpStream;

    /// Answers with the query's bytes reversed; drops queries starting
    /// with `d`.
    fn reverse(query: &[u8], ctx: &QueryContext, out: &mut [u8]) -> Option<usize> {
        assert_eq!(ctx.transport, Transport::Tcp);
        assert!(ctx.local.is_loopback());
        if query.first() == Some(&b'd') {
            return None;
        }
        for (o, q) in out.iter_mut().zip(query.iter().rev()) {
            *o = *q;
        }
        Some(query.len())
    }

    fn limits() -> TcpLimits {
        TcpLimits {
            max_connections: 10,
            idle_timeout: Duration::from_millis(300),
            max_queries_per_connection: 0,
        }
    }

    /// Serves `reverse` on a loopback port; returns the address.
    async fn start(limits: TcpLimits) -> SocketAddr {
        let listener =
            TcpListener::from_std(crate::sys::bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap())
                .unwrap();
        let addr = listener.local_addr().unwrap();
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        tokio::spawn(serve(listener, slots, limits, Arc::new(reverse)));
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
        // The timer restarts with each query.
        let mut busy = TcpStream::connect(addr).await.unwrap();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            busy.write_all(&frame(b"ab")).await.unwrap();
            assert_eq!(read_frame(&mut busy).await, b"ba");
        }
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
