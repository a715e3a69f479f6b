//! The UDP worker loop: receive a batch, answer each query, send the batch.
//!
//! One worker thread owns one `SO_REUSEPORT` socket and its buffers, so
//! workers share nothing but the snapshot and the rate limiter's table
//! (lock-free atomics, see `crate::rrl`). After start-up the loop
//! allocates nothing: the batches are allocated once, the handler writes
//! into a batch buffer, the limiter only updates atomics, and nothing is
//! logged per query.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cookie::{CookieSecret, KeyCache};
use crate::engine::{BatchNames, QueryContext, Transport};
use crate::metrics::QueryCounters;

use super::querylog::Sampler;
use crate::rrl::{self, RateLimiter, Verdict, WorkerCounters};
use crate::sys::{self, RecvBatch, SendBatch};

use super::Handler;

/// Datagrams moved per system call. Replies go out together after the
/// batch, so the first query of a full batch waits for all the others: 16
/// (gdnsd's width too) had a lower p99 than 32 in 4 of 4 paired runs at
/// 50 kQPS, for the same CPU per query; 8 was no better than 16.
const BATCH: usize = 16;

// Every query of a batch is read ahead (`engine::Batch`).
const _: () = assert!(BATCH <= crate::engine::PREFETCH_BATCH);

/// Largest query read. Real queries are a few hundred bytes; a longer
/// datagram is dropped.
const QUERY_LEN: usize = 4096;

/// Reply buffer size: the config's ceiling on max-udp-payload, so any
/// value a reload brings fits (RFC 6891 §6.2.5).
pub(crate) const REPLY_LEN: usize = 4096;

/// How often a worker blocked in receive looks at its stop flag.
pub(crate) const STOP_POLL: Duration = Duration::from_millis(500);

/// Response rate limiting as one worker sees it: the table shared by all
/// workers, this worker's counters, and the clock's zero, also shared so
/// that all workers stamp the table with the same seconds.
pub(crate) struct Limiter<'a> {
    /// The shared accounts.
    pub rrl: &'a RateLimiter,
    /// This worker's dropped and slipped counts.
    pub counters: &'a WorkerCounters,
    /// Time zero of the table's timestamps, in [`sys::coarse_seconds`].
    pub epoch: u64,
}

/// What a worker tells about the queries it answers: its own metrics
/// counters and, when `[log] query-sample` is set, its query log sampler.
#[derive(Debug, Default)]
pub(crate) struct Observers<'a> {
    /// This worker's query counters.
    pub counters: Option<&'a QueryCounters>,
    /// This worker's sampler.
    pub sampler: Option<Sampler>,
}

/// Serves queries on `socket` (bound to `bound`) until `stop` is set,
/// making server cookies with `cookies`, telling `observers` of each
/// answer and passing each reply through `limiter` when there is one.
///
/// Returns an error only for a failure that will not pass: the socket
/// itself is unusable. Passing errors are logged, at most once a second.
pub(crate) fn serve<H: Handler>(
    socket: &UdpSocket,
    bound: SocketAddr,
    stop: &AtomicBool,
    handler: &H,
    cookies: &CookieSecret,
    limiter: Option<&Limiter<'_>>,
    mut observers: Observers<'_>,
) -> io::Result<()> {
    // The read timeout only bounds how long the stop flag goes unread.
    socket.set_read_timeout(Some(STOP_POLL))?;
    let mut queries = RecvBatch::new(BATCH, QUERY_LEN);
    let mut replies = SendBatch::new(BATCH, REPLY_LEN);
    let mut names = BatchNames::new();
    let mut log = ErrorLog::new(bound);
    let mut cookie_keys = KeyCache::new(*cookies);

    while !stop.load(Ordering::Relaxed) {
        let received = match queries.recv(socket) {
            Ok(n) => n,
            Err(e) if is_fatal(&e) => return Err(e),
            Err(e) => {
                if !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) {
                    log.report("receive", &e);
                }
                continue;
            }
        };
        // One clock read per batch: whole seconds are all RRL needs, and a
        // batch takes microseconds. Truncation is fine: the limiter uses
        // the low bits only (wraps after 136 years anyway).
        let now = limiter.map_or(0, |l| sys::coarse_seconds().wrapping_sub(l.epoch) as u32);
        // Cookies carry wall-clock time (RFC 9018 §4.3), also read once.
        let unix_now = super::unix_seconds();
        let cookie_keys = cookie_keys.keys(unix_now);
        let mut batch: [&[u8]; BATCH] = [&[]; BATCH];
        for (i, data) in batch.iter_mut().enumerate().take(received) {
            *data = queries.payload(i).unwrap_or_default();
        }
        // The handler reads its snapshot once for the batch, reads every
        // query and starts loading what they need (see `engine::Batch`)
        // before they are answered one by one. A panic there costs this
        // batch, never the worker.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| {
            handler.batch(&batch[..received.min(BATCH)], &mut names, |answer| {
                // What the batch's queries share is set once; each sets
                // where it came from and arrived.
                let bound_ip = bound.ip();
                let wildcard = bound_ip.is_unspecified();
                let mut ctx = QueryContext {
                    client: bound,
                    local: bound_ip,
                    transport: Transport::Udp,
                    now: unix_now,
                    cookie_keys,
                };
                for i in 0..received {
                    let Some(query) = queries.get(i) else {
                        continue;
                    };
                    ctx.client = query.source;
                    // Wildcard sockets get the packet info. A socket bound to
                    // one address has none and needs none: the context holds
                    // that address already, and leaving it there spares
                    // rebuilding it for every query.
                    if let Some(dest) = query.dest {
                        ctx.local = dest.ip;
                    } else if wildcard {
                        ctx.local = bound_ip;
                    }
                    // A bug in the engine must cost one query, not the worker
                    // and with it this socket's share of all traffic. Catching
                    // costs nothing unless something panics.
                    let out = replies.buffer();
                    // The report is written where it is read, not returned
                    // through the catch: it is a hundred bytes.
                    let mut report = None;
                    let caught =
                        panic::catch_unwind(AssertUnwindSafe(|| report = answer(i, &ctx, out)));
                    let (Ok(()), Some(report)) = (caught, &report) else {
                        continue;
                    };
                    let len = report.len;
                    if len > REPLY_LEN {
                        continue;
                    }
                    if let Some(counters) = observers.counters {
                        counters.count_owned(report);
                    }
                    if let Some(sampler) = observers.sampler.as_mut() {
                        sampler.offer(query.data, query.source, report);
                    }
                    // Rate limiting judges the reply by the engine's report of it
                    // (see `crate::rrl`). TCP never comes here: it cannot be
                    // spoofed.
                    let len = match limiter {
                        None => len,
                        Some(l) => {
                            let verdict = l.rrl.check(now, query.source.ip(), report);
                            l.counters.count(verdict);
                            match verdict {
                                Verdict::Send => len,
                                Verdict::Drop => continue,
                                Verdict::Slip => match rrl::truncate(out, report) {
                                    Some(short) => short,
                                    None => continue,
                                },
                            }
                        }
                    };
                    // Reply from the address the query was sent to.
                    replies.push(len, query.source, query.dest);
                }
            })
        }));
        if replies.len() > 0 {
            if let Some(e) = replies.send(socket).last_error {
                log.report("send", &e);
            }
        }
    }
    Ok(())
}

/// Errors meaning the socket is unusable, as opposed to a passing shortage
/// (`ENOMEM`, `ENOBUFS`) or a stray ICMP report (`ECONNREFUSED`).
fn is_fatal(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EBADF | libc::ENOTSOCK | libc::EFAULT | libc::EINVAL)
    )
}

/// Rate-limits error logs: one line a second per worker, with a count of
/// the errors not shown.
struct ErrorLog {
    bound: SocketAddr,
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn new(bound: SocketAddr) -> ErrorLog {
        ErrorLog {
            bound,
            last: None,
            suppressed: 0,
        }
    }

    fn report(&mut self, op: &str, error: &io::Error) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            listen = %self.bound,
            suppressed = self.suppressed,
            "UDP {op} failed: {error}"
        );
        self.last = Some(now);
        self.suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::thread;

    use crate::engine::Report;
    use crate::server::test_report;
    use crate::sys::bind_udp;

    /// Answers with the query's bytes, then the local address the query
    /// arrived on; drops queries starting with `d`; panics on `p`.
    fn echo(query: &[u8], ctx: &QueryContext, out: &mut [u8]) -> Option<Report> {
        assert_eq!(ctx.transport, Transport::Udp);
        match query.first() {
            Some(b'd') => return None,
            Some(b'p') => panic!("handler bug"),
            _ => {}
        }
        let local = ctx.local.to_string();
        let len = query.len() + 1 + local.len();
        out[..query.len()].copy_from_slice(query);
        out[query.len()] = b' ';
        out[query.len() + 1..len].copy_from_slice(local.as_bytes());
        Some(test_report(len))
    }

    /// Runs a worker on `bind_ip` port 0; returns its port, stop flag and
    /// thread.
    fn start(bind_ip: IpAddr) -> (u16, Arc<AtomicBool>, thread::JoinHandle<io::Result<()>>) {
        start_with(bind_ip, echo)
    }

    /// Runs a worker with `handler` on `bind_ip` port 0.
    fn start_with<H: Handler + Send + 'static>(
        bind_ip: IpAddr,
        handler: H,
    ) -> (u16, Arc<AtomicBool>, thread::JoinHandle<io::Result<()>>) {
        let socket = bind_udp(SocketAddr::new(bind_ip, 0)).unwrap();
        let bound = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let secret = CookieSecret::Shared([0; 16]);
        let worker = thread::spawn(move || {
            serve(
                &socket,
                bound,
                &flag,
                &handler,
                &secret,
                None,
                Observers::default(),
            )
        });
        (bound.port(), stop, worker)
    }

    #[test]
    fn answers_each_query_from_its_destination() {
        let (port, stop, worker) = start("0.0.0.0".parse().unwrap());
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0; 512];
        for dest in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
            let server = SocketAddr::new(dest.parse().unwrap(), port);
            // Dropped and panicking queries get no answer and do not stop
            // the worker; the next query is still answered.
            client.send_to(b"drop me", server).unwrap();
            client.send_to(b"panic", server).unwrap();
            client.send_to(b"hello", server).unwrap();
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(from, server);
            assert_eq!(&buf[..n], format!("hello {dest}").as_bytes());
        }
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap().unwrap();
    }

    /// Sends `count` queries ("q0", "q1", ...) at once to the worker on
    /// `ip`:`port` from a fresh socket, which it returns with the worker's
    /// address for reading the answers.
    fn send_burst(ip: IpAddr, port: u16, count: usize) -> (UdpSocket, SocketAddr) {
        let client = UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let server = SocketAddr::new(ip, port);
        for i in 0..count {
            client.send_to(format!("q{i}").as_bytes(), server).unwrap();
        }
        (client, server)
    }

    #[test]
    fn answers_a_burst_larger_than_a_batch() {
        let ip: IpAddr = "::1".parse().unwrap();
        let (port, stop, worker) = start(ip);
        let count = BATCH * 3 + 5;
        let (client, server) = send_burst(ip, port, count);
        let mut answers = Vec::new();
        let mut buf = [0; 512];
        for _ in 0..count {
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(from, server);
            answers.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
        answers.sort();
        let mut want: Vec<String> = (0..count).map(|i| format!("q{i} ::1")).collect();
        want.sort();
        assert_eq!(answers, want);
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap().unwrap();
    }

    /// Echoes like `echo`, and through its own `batch` counts the batches
    /// and the queries they held.
    struct Batches {
        batches: Arc<AtomicUsize>,
        queries: Arc<AtomicUsize>,
    }

    impl Handler for Batches {
        fn answer(&self, query: &[u8], ctx: &QueryContext, out: &mut [u8]) -> Option<Report> {
            echo(query, ctx, out)
        }

        fn batch<R>(
            &self,
            queries: &[&[u8]],
            _names: &mut BatchNames,
            serve: impl FnOnce(&crate::server::Answer<'_>) -> R,
        ) -> R {
            assert!(!queries.is_empty() && queries.len() <= BATCH);
            self.batches.fetch_add(1, Ordering::Relaxed);
            self.queries.fetch_add(queries.len(), Ordering::Relaxed);
            serve(&|i, ctx, out| self.answer(queries.get(i)?, ctx, out))
        }
    }

    #[test]
    fn every_query_goes_through_its_batch() {
        let batches = Arc::new(AtomicUsize::new(0));
        let queries = Arc::new(AtomicUsize::new(0));
        let handler = Batches {
            batches: batches.clone(),
            queries: queries.clone(),
        };
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (port, stop, worker) = start_with(ip, handler);
        let count = BATCH * 4 + 3;
        let (client, _) = send_burst(ip, port, count);
        let mut buf = [0; 512];
        for _ in 0..count {
            client.recv_from(&mut buf).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap().unwrap();
        // Each query was handed to `batch` once, in batches of at most
        // BATCH: at least count / BATCH of them.
        assert_eq!(queries.load(Ordering::Relaxed), count);
        let batches = batches.load(Ordering::Relaxed);
        assert!(
            (count.div_ceil(BATCH)..=count).contains(&batches),
            "{batches} batches"
        );
    }
}
