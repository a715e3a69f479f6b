//! Network I/O: UDP worker threads and a tokio TCP server around
//! [`engine::respond`].
//!
//! [`Server::bind`] opens every socket, so a busy port or a missing
//! permission is reported at start-up with its address. [`Server::run`]
//! then serves:
//!
//! - UDP: for each listen address, `workers` threads, each with its own
//!   `SO_REUSEPORT` socket. A worker receives a batch of datagrams with one
//!   system call, reads them all and starts loading the zone data they
//!   need ([`engine::Batch`]), answers each over the current snapshot,
//!   passes the reply through response rate limiting
//!   ([`crate::rrl`], one table shared by all workers), and sends the
//!   replies with one system call, each from the address its query was
//!   sent to (modules `udp` and `sys`).
//! - TCP: one tokio runtime accepting on every listen address, with the
//!   RFC 7766 limits of [`TcpLimits`]: connections overall and per client
//!   address, a short timeout for the first query, an idle timeout, and
//!   queries per connection (module `tcp`). TCP is never rate limited: it
//!   cannot be spoofed, and it is where slipped UDP clients go.
//!
//! Binding needs privileges (port 53); serving does not. Once bound,
//! [`Server::drop_privileges`] switches to an unprivileged account.
//!
//! The snapshot is read through an [`ArcSwap`] once per UDP batch and once
//! per TCP query, so a reload stored into it takes effect within
//! microseconds and no query waits for a lock.

mod querylog;
mod tcp;
mod udp;

use std::future::{self, Future};
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::thread;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, watch};

use crate::config::{Config, RunAs, TcpLimits};
use crate::cookie::CookieSecret;
use crate::engine::{self, QueryContext, Report};
use crate::metrics::Metrics;
use crate::rrl::{RateLimiter, RrlCounters};
use crate::snapshot::Snapshot;
use crate::sys;

use querylog::QueryLog;

/// The longest a shutdown waits for TCP connections to answer what they
/// have read; with the UDP workers' half-second poll, a server stops well
/// within systemd's stop timeout.
const TCP_DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Something that answers one query: writes the reply into the buffer and
/// reports it (its length, and what rate limiting needs), or returns
/// `None` to send nothing. In service this is [`engine::respond`] over the
/// current snapshot; tests use simpler ones.
pub(crate) trait Handler {
    /// Answers `query` into `out`.
    fn answer(&self, query: &[u8], ctx: &QueryContext, out: &mut [u8]) -> Option<Report>;

    /// Runs `serve` over one UDP batch of `queries`, giving it what answers
    /// them. The engine's handler reads the snapshot once for the whole
    /// batch, not once per query, and first reads every query and starts
    /// loading the zone data they need, so that those loads overlap (see
    /// [`engine::Batch`]); `names` is the worker's room for their names.
    fn batch<R>(
        &self,
        queries: &[&[u8]],
        _names: &mut engine::BatchNames,
        serve: impl FnOnce(&Answer<'_>) -> R,
    ) -> R {
        serve(&|i, ctx, out| self.answer(queries.get(i)?, ctx, out))
    }
}

/// What answers the queries of one batch: [`Handler::answer`] for the
/// batch's query number `i` (`None` past the end).
pub(crate) type Answer<'a> = dyn Fn(usize, &QueryContext, &mut [u8]) -> Option<Report> + 'a;

impl<F: Fn(&[u8], &QueryContext, &mut [u8]) -> Option<Report>> Handler for F {
    fn answer(&self, query: &[u8], ctx: &QueryContext, out: &mut [u8]) -> Option<Report> {
        self(query, ctx, out)
    }
}

/// The handler in service: [`engine::respond`] over the current snapshot.
struct Engine {
    snapshot: Arc<ArcSwap<Snapshot>>,
}

impl Handler for Engine {
    fn answer(&self, query: &[u8], ctx: &QueryContext, out: &mut [u8]) -> Option<Report> {
        // An arc-swap guard: no allocation, no lock, and the snapshot
        // stays alive for this query even if a reload swaps it out.
        let snap = self.snapshot.load();
        engine::respond(query, ctx, &snap, out)
    }

    fn batch<R>(
        &self,
        queries: &[&[u8]],
        names: &mut engine::BatchNames,
        serve: impl FnOnce(&Answer<'_>) -> R,
    ) -> R {
        // One guard for the batch: a reload that lands meanwhile is seen
        // by the next batch, microseconds later.
        let snap = self.snapshot.load();
        let batch = engine::Batch::new(queries, names, &snap);
        serve(&|i, ctx, out| batch.respond(i, ctx, out))
    }
}

/// The wall-clock time in Unix seconds, modulo 2^32 as server cookies
/// carry it (RFC 9018 §4.3); read once per UDP batch or TCP query, from
/// the coarse clock, whose last tick is all whole seconds need.
fn unix_seconds() -> u32 {
    crate::sys::coarse_unix_seconds() as u32
}

/// A report of `len` bytes that says nothing else, for handlers in tests.
#[cfg(test)]
pub(crate) fn test_report(len: usize) -> Report {
    Report {
        len,
        rcode: 0,
        class: engine::ResponseClass::Answer,
        qtype: 0,
        question_type: 0,
        client_subnet: false,
        scope: None,
        service: None,
        endpoints: crate::policy::EndpointSet::new(),
        account: engine::Account::NONE,
        cookie: crate::cookie::CookieStatus::Absent,
        question_end: 0,
        opt_at: None,
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listen address could not be bound (in use, not local, no
    /// permission for a port below 1024, ...).
    #[error("cannot bind {protocol} {addr}")]
    Bind {
        /// `"UDP"` or `"TCP"`.
        protocol: &'static str,
        /// The address as configured.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A thread or the TCP runtime could not be started.
    #[error("cannot start {what}")]
    Start {
        /// What was being started.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// `[server] user` or `group` names no account.
    #[error("unknown {kind} {name:?}: not in the system's {kind} database")]
    UnknownAccount {
        /// `"user"` or `"group"`.
        kind: &'static str,
        /// The name as configured.
        name: String,
    },
    /// The user or group database could not be read.
    #[error("cannot look up {kind} {name:?}")]
    AccountLookup {
        /// `"user"` or `"group"`.
        kind: &'static str,
        /// The name as configured.
        name: String,
        /// The error the lookup reported.
        #[source]
        source: io::Error,
    },
    /// The switch to the configured account failed (not running as root,
    /// or the system refused).
    #[error("cannot switch to user {user:?} (uid {uid}, gid {gid})")]
    DropPrivileges {
        /// The user as configured.
        user: String,
        /// Its user id.
        uid: u32,
        /// The group id switched to.
        gid: u32,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A UDP socket failed for good, so its share of queries would go
    /// unanswered.
    #[error("UDP service on {addr} failed")]
    Udp {
        /// The socket's address.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// How often [`Server::bind`] lets the kernel pick a port for a listen
/// address with port 0 before giving up on finding one free for TCP too.
const PORT_ZERO_ATTEMPTS: usize = 16;

/// Bound sockets, ready to serve. See the [module documentation](self).
#[derive(Debug)]
pub struct Server {
    /// Every UDP socket with its bound address: `workers` per listen address.
    udp: Vec<(SocketAddr, UdpSocket)>,
    /// One TCP listener per listen address.
    tcp: Vec<(SocketAddr, TcpListener)>,
    /// UDP sockets per listen address; also the TCP runtime's threads.
    workers: usize,
    /// Limits on TCP clients.
    limits: TcpLimits,
    /// Response rate limiting for UDP, unless disabled.
    rrl: Option<Arc<RateLimiter>>,
    /// What rate limiting did, one slot per UDP socket.
    rrl_counters: Arc<RrlCounters>,
    /// The DNS cookie secret: configured, or drawn at bind.
    cookies: CookieSecret,
    /// What was answered, one set of UDP counters per socket.
    metrics: Arc<Metrics>,
    /// `[log] query-sample`: 1 in how many UDP queries is logged, 0 none.
    query_sample: u32,
    /// `[server] count-queries`: UDP workers update their counters.
    count_queries: bool,
}

impl Server {
    /// Binds every listen address of `config`: `config.workers` UDP sockets
    /// (at least one) and one TCP listener each. The error names the
    /// address and protocol that failed.
    ///
    /// A listen address with port 0 gets a port chosen by the kernel, the
    /// same for UDP and TCP; [`local_addrs`](Self::local_addrs) tells which.
    pub fn bind(config: &Config) -> Result<Server, ServerError> {
        let workers = config.workers.max(1);
        let mut udp = Vec::with_capacity(config.listen.len() * workers);
        let mut tcp = Vec::with_capacity(config.listen.len());
        for &addr in &config.listen {
            let bind_error = |protocol, source| ServerError::Bind {
                protocol,
                addr,
                source,
            };
            // Bind the first socket, then the others to its actual address,
            // so that port 0 means one port for all of them. The kernel
            // picks a port free for UDP only: when another process holds it
            // for TCP, pick again (a fixed port's error is reported as is).
            let mut attempts = 0;
            let (sockets, actual, listener) = loop {
                attempts += 1;
                let first = sys::bind_udp(addr).map_err(|e| bind_error("UDP", e))?;
                let actual = first.local_addr().map_err(|e| bind_error("UDP", e))?;
                let mut sockets = vec![(actual, first)];
                for _ in 1..workers {
                    let socket = sys::bind_udp(actual).map_err(|e| bind_error("UDP", e))?;
                    sockets.push((actual, socket));
                }
                match sys::bind_tcp(actual) {
                    Ok(listener) => break (sockets, actual, listener),
                    Err(e)
                        if addr.port() == 0
                            && e.kind() == io::ErrorKind::AddrInUse
                            && attempts < PORT_ZERO_ATTEMPTS => {}
                    Err(e) => return Err(bind_error("TCP", e)),
                }
            };
            udp.extend(sockets);
            tcp.push((actual, listener));
        }
        let rrl_counters = Arc::new(RrlCounters::new(udp.len()));
        let metrics = Arc::new(Metrics::new(udp.len(), rrl_counters.clone()));
        let cookies = match config.cookie_secret {
            Some(shared) => shared,
            None => CookieSecret::random().map_err(|source| ServerError::Start {
                what: "the DNS cookie secret",
                source,
            })?,
        };
        Ok(Server {
            udp,
            tcp,
            workers,
            limits: config.tcp.clone(),
            rrl: config
                .rrl
                .enabled
                .then(|| Arc::new(RateLimiter::new(&config.rrl))),
            rrl_counters,
            cookies,
            metrics,
            query_sample: config.query_sample,
            count_queries: config.count_queries,
        })
    }

    /// Switches the process to `run_as` (`[server] user` and `group`):
    /// supplementary groups cleared, then group, then user. Call it after
    /// [`bind`](Self::bind), which may need root for port 53, and before
    /// [`run`](Self::run), so that no query is ever answered as root.
    ///
    /// Without `run_as` this does nothing but warn when running as root.
    /// Returns the uid and gid now in force.
    pub fn drop_privileges(&self, run_as: Option<&RunAs>) -> Result<(u32, u32), ServerError> {
        let Some(run_as) = run_as else {
            let ids = sys::current_ids();
            if ids.0 == 0 {
                tracing::warn!(
                    "running as root: set [server] user, or run as an unprivileged user \
                     with CAP_NET_BIND_SERVICE"
                );
            }
            return Ok(ids);
        };
        let unknown = |kind, name: &str| ServerError::UnknownAccount {
            kind,
            name: name.to_string(),
        };
        let lookup_failed = |kind, name: &str| {
            let name = name.to_string();
            move |source| ServerError::AccountLookup { kind, name, source }
        };
        let user = sys::lookup_user(&run_as.user)
            .map_err(lookup_failed("user", &run_as.user))?
            .ok_or_else(|| unknown("user", &run_as.user))?;
        let gid = match &run_as.group {
            Some(group) => sys::lookup_group(group)
                .map_err(lookup_failed("group", group))?
                .ok_or_else(|| unknown("group", group))?,
            None => user.gid,
        };
        sys::switch_ids(user.uid, gid).map_err(|source| ServerError::DropPrivileges {
            user: run_as.user.clone(),
            uid: user.uid,
            gid,
            source,
        })?;
        tracing::info!(user = %run_as.user, uid = user.uid, gid, "dropped privileges");
        Ok((user.uid, gid))
    }

    /// Counts of rate-limited UDP responses, for metrics: read at any time,
    /// also while serving.
    pub fn rrl_counters(&self) -> Arc<RrlCounters> {
        self.rrl_counters.clone()
    }

    /// The server's metrics, for the admin listener's `/metrics`: read at
    /// any time, also while serving.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The bound addresses, one per listen address, in configuration order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.tcp.iter().map(|(addr, _)| *addr).collect()
    }

    /// Serves queries, answering from whatever snapshot `snapshot` holds at
    /// each query, until a UDP socket fails for good. In practice: until
    /// the process exits.
    ///
    /// Blocks the calling thread, which drives the TCP runtime; call it
    /// outside any tokio runtime.
    pub fn run(self, snapshot: Arc<ArcSwap<Snapshot>>) -> Result<(), ServerError> {
        self.run_until(snapshot, future::pending())
    }

    /// Like [`run`](Self::run), but stops when `shutdown` completes (it is
    /// polled on the TCP runtime, so it may use tokio, e.g.
    /// `tokio::signal::ctrl_c`): the UDP workers answer the batch they
    /// read and exit; TCP listeners close, and open connections answer
    /// the queries that have arrived and close, all within about two and
    /// a half seconds.
    /// It is polled once before the first query is answered, so what it
    /// sets up on its first poll is in place by then.
    pub fn run_until<F: Future<Output = ()>>(
        self,
        snapshot: Arc<ArcSwap<Snapshot>>,
        shutdown: F,
    ) -> Result<(), ServerError> {
        self.metrics.watch(snapshot.clone());
        let log = QueryLog::start(self.query_sample, snapshot.clone()).map_err(|source| {
            ServerError::Start {
                what: "the query log",
                source,
            }
        })?;
        self.serve(Arc::new(Engine { snapshot }), log, shutdown)
    }

    /// Runs the UDP workers and the TCP runtime with `handler`.
    fn serve<H, F>(
        self,
        handler: Arc<H>,
        log: Option<QueryLog>,
        shutdown: F,
    ) -> Result<(), ServerError>
    where
        H: Handler + Send + Sync + 'static,
        F: Future<Output = ()>,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.workers)
            .thread_name("tcp")
            .enable_all()
            .build()
            .map_err(|source| ServerError::Start {
                what: "the TCP runtime",
                source,
            })?;

        for (addr, _) in &self.tcp {
            tracing::info!(listen = %addr, workers = self.workers, "serving UDP and TCP");
        }

        // One poll of `shutdown` before any query is answered: what it sets
        // up on its first poll (the reloader's SIGHUP listener) is then in
        // place before a client can see the server running.
        let mut shutdown = pin!(shutdown);
        let done = runtime.block_on(future::poll_fn(|cx| {
            Poll::Ready(shutdown.as_mut().poll(cx).is_ready())
        }));
        if done {
            return Ok(());
        }

        // Workers report a fatal socket error here; `run` returns it.
        let (failed, mut failures) = mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::with_capacity(self.udp.len());
        // One time zero for every worker, so they stamp the shared rate
        // limiting table alike.
        let epoch = sys::coarse_seconds();
        let cookies = self.cookies;
        let count_queries = self.count_queries;
        for (i, (addr, socket)) in self.udp.into_iter().enumerate() {
            let handler = handler.clone();
            let worker_stop = stop.clone();
            let failed = failed.clone();
            let rrl = self.rrl.clone();
            let counters = self.rrl_counters.clone();
            let metrics = self.metrics.clone();
            let sampler = log.as_ref().map(|log| log.sampler(i));
            let worker = thread::Builder::new()
                .name(format!("udp{i}"))
                .spawn(move || {
                    // Its own row of last-sent times: no line shared with
                    // another worker on the answer path.
                    crate::last_sent::claim_row(i);
                    let limiter = rrl.as_deref().and_then(|rrl| {
                        Some(udp::Limiter {
                            rrl,
                            counters: counters.worker(i)?,
                            epoch,
                        })
                    });
                    let result = udp::serve(
                        &socket,
                        addr,
                        &worker_stop,
                        &*handler,
                        &cookies,
                        limiter.as_ref(),
                        udp::Observers {
                            counters: metrics.udp_worker(i).filter(|_| count_queries),
                            sampler,
                        },
                    );
                    if let Err(e) = result {
                        tracing::error!(listen = %addr, "UDP worker stopped: {e}");
                        let _ = failed.send((addr, e));
                    }
                });
            match worker {
                Ok(worker) => workers.push(worker),
                Err(source) => {
                    stop.store(true, Ordering::Relaxed);
                    return Err(ServerError::Start {
                        what: "a UDP worker thread",
                        source,
                    });
                }
            }
        }
        drop(failed);
        // The writer stops once the workers' samplers are gone.
        drop(log);

        // Turns true at shutdown: listeners close, connections answer what
        // has arrived and close (see `tcp::connection`).
        let (closing, closed) = watch::channel(false);
        let gate = Arc::new(tcp::Gate::new(&self.limits));
        let result = runtime.block_on(async {
            for (addr, listener) in self.tcp {
                let listener = tokio::net::TcpListener::from_std(listener).map_err(|source| {
                    ServerError::Bind {
                        protocol: "TCP",
                        addr,
                        source,
                    }
                })?;
                tokio::spawn(tcp::serve(
                    listener,
                    gate.clone(),
                    self.limits.clone(),
                    handler.clone(),
                    cookies,
                    self.metrics.clone(),
                    closed.clone(),
                ));
            }
            tokio::select! {
                () = &mut shutdown => Ok(()),
                Some((addr, source)) = failures.recv() => Err(ServerError::Udp { addr, source }),
            }
        });

        // UDP workers answer the batch they hold and stop; TCP stops
        // accepting, and open connections answer the queries that have
        // arrived, for at most `TCP_DRAIN_LIMIT`.
        stop.store(true, Ordering::Relaxed);
        let _ = closing.send(true);
        runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + TCP_DRAIN_LIMIT;
            while gate.open() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        });
        // Cancels whatever is left.
        runtime.shutdown_timeout(udp::STOP_POLL);
        for worker in workers {
            // A worker that panicked has nothing more to report.
            let _ = worker.join();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn config(listen: &[&str]) -> Config {
        Config {
            listen: listen.iter().map(|a| a.parse().unwrap()).collect(),
            workers: 2,
            max_udp_payload: 1232,
            tcp: TcpLimits {
                max_connections: 4,
                idle_timeout: Duration::from_secs(5),
                max_queries_per_connection: 0,
                max_connections_per_client: 4,
                initial_timeout: Duration::from_secs(5),
            },
            rrl: Default::default(),
            run_as: None,
            cookie_secret: None,
            identity: String::new(),
            version: None,
            zones: Vec::new(),
            geoip: None,
            cluster: None,
            query_sample: 0,
            count_queries: true,
            state_dir: None,
            monitors: Default::default(),
            services: Vec::new(),
            admin: None,
            maintenance: Vec::new(),
            file: "test.toml".into(),
        }
    }

    /// Answers with the query reversed.
    fn reverse(query: &[u8], _: &QueryContext, out: &mut [u8]) -> Option<Report> {
        for (o, q) in out.iter_mut().zip(query.iter().rev()) {
            *o = *q;
        }
        Some(test_report(query.len()))
    }

    #[test]
    fn bind_error_names_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = Server::bind(&config(&[&addr.to_string()])).unwrap_err();
        assert!(matches!(
            err,
            ServerError::Bind {
                protocol: "TCP",
                ..
            }
        ));
        assert_eq!(err.to_string(), format!("cannot bind TCP {addr}"));
    }

    #[test]
    fn serves_udp_and_tcp_until_shutdown() {
        let server = Server::bind(&config(&["127.0.0.1:0", "[::1]:0"])).unwrap();
        let addrs = server.local_addrs();
        assert_eq!(addrs.len(), 2);
        assert_eq!(server.udp.len(), 4);
        let (done, finished) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = thread::spawn(move || {
            let result = server.serve(Arc::new(reverse), None, async {
                let _ = stopped.await;
            });
            done.send(()).unwrap();
            result
        });

        for &addr in &addrs {
            let client = UdpSocket::bind(SocketAddr::new(addr.ip(), 0)).unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            client.send_to(b"abc", addr).unwrap();
            let mut buf = [0; 16];
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&b"cba"[..], addr));

            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                stream.write_all(&[0, 3, b'x', b'y', b'z']).await.unwrap();
                let mut reply = [0; 5];
                stream.read_exact(&mut reply).await.unwrap();
                assert_eq!(reply, [0, 3, b'z', b'y', b'x']);
            });
        }

        stop.send(()).unwrap();
        finished.recv_timeout(Duration::from_secs(5)).unwrap();
        running.join().unwrap().unwrap();
    }
}
