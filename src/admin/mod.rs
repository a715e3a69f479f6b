//! The admin HTTP listener: a JSON API under `/api/v1/` and a status page
//! at `/`, for operators and their tools.
//!
//! Configured by `[admin]` (no table, no listener). It runs on the tokio
//! runtime that serves TCP and runs the probes, so it never shares a
//! thread with the UDP workers, and it never changes a snapshot in place:
//! drains go through the drain file (as `steerdns drain` does) and
//! reloads through the [`Reloader`](crate::reload::Reloader), the same as
//! SIGHUP.
//!
//! - [`AdminListener`]: the bound socket, opened at start with the DNS
//!   sockets (before privileges are dropped) and served by
//!   [`AdminListener::serve`].
//! - `auth`: bearer tokens, required for every request when
//!   `token-file` is set (which any non-loopback `listen` must set).
//! - `limits`: connections, timeouts, header and body sizes.
//! - `api`: the routes; [`status`]: the model they report; `page`: the
//!   HTML status page; `rates`: query rates per service from the metrics'
//!   counters; [`client`]: what `steerdns status` asks with.
//!
//! The routes are documented in `docs/openapi.yaml`.

mod api;
mod auth;
pub mod client;
mod limits;
mod page;
mod rates;
pub mod status;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::config::AdminConfig;
use crate::health::Journal;
use crate::reload::{Loaded, ReloadHandle};
use crate::snapshot::Snapshot;

pub use page::render_table;

/// Everything the API reads and acts on.
pub struct AdminState {
    /// What queries read: the live snapshot and its health view.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// The probes' last results and recent changes.
    pub journal: Arc<Journal>,
    /// What the reloader published: digests, last reload.
    pub loaded: watch::Receiver<Loaded>,
    /// Reloads as SIGHUP does, with the outcome.
    pub reload: ReloadHandle,
    /// The state folder holding the drain file, if configured.
    pub state_dir: Option<PathBuf>,
    /// When the server started.
    pub started: (Instant, SystemTime),
    /// The counters served at `/metrics`.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The cluster, when `[cluster]` is configured: it takes the pushes
    /// posted to `/api/v1/cluster/push`.
    pub cluster: Option<Arc<crate::cluster::ClusterNode>>,
}

/// The admin listener, bound. See the [module documentation](self).
#[derive(Debug)]
pub struct AdminListener {
    listener: std::net::TcpListener,
    config: AdminConfig,
}

impl AdminListener {
    /// Binds `config.listen`. Call it with the DNS sockets, before
    /// privileges are dropped (the port may be privileged).
    pub fn bind(config: &AdminConfig) -> io::Result<AdminListener> {
        let listener = std::net::TcpListener::bind(config.listen)?;
        listener.set_nonblocking(true)?;
        Ok(AdminListener {
            listener,
            config: config.clone(),
        })
    }

    /// The bound address (the port chosen, for a `listen` with port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves requests until the future is dropped. Call it inside the
    /// tokio runtime.
    pub async fn serve(self, state: AdminState) -> io::Result<()> {
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        // Readings for query rates, taken while the listener serves (the
        // guard stops the sampler when this future is dropped).
        let _sampler = state.metrics.clone().map(|metrics| {
            let rates = Arc::new(rates::ServiceRates::new());
            let sampler = tokio::spawn(sample_rates(metrics, rates.clone()));
            (rates, AbortOnDrop(sampler))
        });
        let rates = _sampler.as_ref().map(|(rates, _)| rates.clone());
        let api = Arc::new(api::Api::new(state, &self.config, rates));
        let gate = limits::Gate::new(self.config.max_connections);
        let http = limits::http1(&self.config);
        // A connection's whole life: its headers, then its request.
        let lifetime = self.config.header_timeout + self.config.request_timeout;
        tracing::info!(listen = %self.config.listen, token = self.config.token.is_some(), "admin API listening");
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some
                    // to be freed rather than spin.
                    tracing::warn!("admin accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(permit) = gate.admit() else {
                tracing::debug!(%peer, "admin connection refused: at max-connections");
                continue;
            };
            let api = api.clone();
            let connection = http.serve_connection(
                TokioIo::new(stream),
                service_fn(move |request| {
                    let api = api.clone();
                    async move { Ok::<_, std::convert::Infallible>(api.handle(request).await) }
                }),
            );
            tokio::spawn(async move {
                if let Ok(Err(e)) = tokio::time::timeout(lifetime, connection).await {
                    tracing::debug!(%peer, "admin connection: {e}");
                }
                drop(permit);
            });
        }
    }
}

/// Reads the per-service answer counters every [`rates::SAMPLE_EVERY`],
/// the first time at once.
async fn sample_rates(metrics: Arc<crate::metrics::Metrics>, rates: Arc<rates::ServiceRates>) {
    let mut every = tokio::time::interval(rates::SAMPLE_EVERY);
    loop {
        every.tick().await;
        rates.sample(Instant::now(), metrics.service_totals());
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
