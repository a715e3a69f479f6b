//! Hot reload: a new configuration swapped in while queries keep flowing.
//!
//! `kill -HUP` (systemd: `ExecReload=/bin/kill -HUP $MAINPID`) makes a
//! running server re-read its config file and every zone file. The
//! [`Reloader`] owns the probe tasks and does, in order:
//!
//! 1. parse the config and build a new [`Snapshot`] on tokio's blocking
//!    pool, so a million-record zone never occupies a runtime thread; UDP
//!    workers and TCP keep answering from the old snapshot meanwhile;
//! 2. on any error, log it (`file:line: message`) and change nothing: old
//!    snapshot, old probes;
//! 3. warn about settings that only take effect at start (sockets, threads,
//!    the account, TCP limits, rate limiting, the state folder: see
//!    [`restart_needed`]) and keep the running ones;
//! 4. stop the old probes, copy each probe's current health into the new
//!    view where kind, target and monitor match (so a dead payload does not
//!    come back "up" for some probe intervals after every reload), apply
//!    the drain state, start the new probes, then swap;
//! 5. free the old snapshot on the blocking pool once no query holds it
//!    (see [`retire`]), never on a query thread.
//!
//! Reloads never overlap: one task runs them one after the other, and
//! signals that arrive during a reload coalesce into one more. The admin
//! API asks for the same reload through a [`ReloadHandle`] and gets its
//! outcome back (the errors, `file:line: message`, when refused); the
//! reloader publishes what is loaded ([`Loaded`]: file digests, the last
//! attempt) and keeps the probes' [`Journal`] across reloads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError};
use crate::digest::ConfigDigest;
use crate::drain::DrainState;
use crate::health::{self, HealthId, Journal, Monitor, Recorder};
use crate::metrics::{Metrics, ProbeMetrics};
use crate::name::Name;
use crate::snapshot::{LoadError, ProbeKind, Snapshot};

/// How long the reloader waits for in-flight queries to let go of an old
/// snapshot before dropping its own reference anyway. Queries hold it for
/// microseconds; TCP connections load it per query too.
pub const RETIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the reloader looks whether an old snapshot is unused.
const RETIRE_POLL: Duration = Duration::from_millis(2);

/// Why a reload was refused; the old configuration stays in force.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The config file is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A zone file or a service is broken.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The loading thread panicked or was cancelled.
    #[error("loading the new configuration failed: {0}")]
    Task(String),
}

/// What a successful reload loaded, for its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadStats {
    /// Zones served now.
    pub zones: usize,
    /// Owner names in those zones.
    pub names: usize,
    /// Services now.
    pub services: usize,
    /// Probes carried over with their health.
    pub kept_health: usize,
    /// From the signal to the swap.
    pub took: Duration,
}

/// Makes SIGHUP harmless until [`Reloader::run`] listens for it: call it
/// before the server starts answering, so an early reload request is
/// ignored rather than fatal.
pub fn ignore_hangups_until_ready() -> std::io::Result<()> {
    crate::sys::ignore_hangup()
}

/// What was loaded and when, as the reloader publishes it (for the admin
/// API and status page).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Digests of the files in force, taken when they were loaded;
    /// `None` while those of the first load are being computed (on the
    /// blocking pool, so they never delay the first answer).
    pub digest: Option<Arc<ConfigDigest>>,
    /// When the configuration in force was loaded.
    pub at: SystemTime,
    /// The last reload attempt: when, and why it was refused (`None`: it
    /// succeeded). `None` before the first reload.
    pub last_attempt: Option<(SystemTime, Option<String>)>,
}

/// A reload asked for through a [`ReloadHandle`], with where its outcome
/// goes.
type ReloadRequest = oneshot::Sender<Result<ReloadStats, ReloadError>>;

/// Asks a running [`Reloader`] to reload, as SIGHUP does, and waits for
/// the outcome. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReloadHandle {
    requests: mpsc::Sender<ReloadRequest>,
}

impl ReloadHandle {
    /// Reloads now (after a reload in progress, if any) and returns its
    /// outcome: the errors, `file:line: message`, when it was refused.
    pub async fn reload(&self) -> Result<ReloadStats, ReloadError> {
        let (reply, outcome) = oneshot::channel();
        let stopped = || ReloadError::Task("the reloader is not running".into());
        self.requests.send(reply).await.map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

/// Reload requests that may wait while one runs; more wait to be queued.
const PENDING_REQUESTS: usize = 4;

/// Owns the probes of the snapshot in force and replaces both on reload.
#[derive(Debug)]
pub struct Reloader {
    /// The config file, re-read on each reload.
    path: PathBuf,
    /// The configuration in force: start-only settings as started, the
    /// rest as last reloaded.
    config: Config,
    /// What queries read.
    snapshot: Arc<ArcSwap<Snapshot>>,
    /// The probes feeding the current snapshot's health view.
    probes: Vec<JoinHandle<()>>,
    /// Every probe's last result and recent changes, across reloads.
    journal: Arc<Journal>,
    /// Published after every load and reload attempt.
    loaded: watch::Sender<Loaded>,
    /// Reloads asked for by the admin API.
    requests: mpsc::Receiver<ReloadRequest>,
    /// Kept so [`handle`](Self::handle) can hand out senders.
    sender: mpsc::Sender<ReloadRequest>,
    /// Where reloads and probe results are counted.
    metrics: Arc<Metrics>,
}

impl Reloader {
    /// Takes charge of `snapshot`, loaded from `config` (read from
    /// `path`), and starts its probes, counting reloads and probe results
    /// in `metrics`. Call it inside a tokio runtime.
    pub fn start(
        path: PathBuf,
        config: Config,
        snapshot: Arc<ArcSwap<Snapshot>>,
        metrics: Arc<Metrics>,
    ) -> Reloader {
        let journal = Arc::new(Journal::new());
        let probes = start_probes(&snapshot.load(), &journal, Some(metrics.probes()));
        let (loaded, _) = watch::channel(Loaded {
            digest: None,
            at: SystemTime::now(),
            last_attempt: None,
        });
        // Reading a large zone again takes a while: off the runtime.
        let publish = loaded.clone();
        let first = config.clone();
        tokio::task::spawn_blocking(move || {
            let digest = Arc::new(ConfigDigest::of(&first));
            // A reload that finished meanwhile has the newer digest.
            publish.send_if_modified(|l| {
                let fresh = l.digest.is_none();
                if fresh {
                    l.digest = Some(digest);
                }
                fresh
            });
        });
        let (sender, requests) = mpsc::channel(PENDING_REQUESTS);
        Reloader {
            path,
            config,
            snapshot,
            probes,
            journal,
            loaded,
            requests,
            sender,
            metrics,
        }
    }

    /// A handle that reloads as SIGHUP does and returns the outcome.
    pub fn handle(&self) -> ReloadHandle {
        ReloadHandle {
            requests: self.sender.clone(),
        }
    }

    /// The probes' journal (last results, recent changes).
    pub fn journal(&self) -> Arc<Journal> {
        self.journal.clone()
    }

    /// What is loaded, updated after every reload attempt.
    pub fn loaded(&self) -> watch::Receiver<Loaded> {
        self.loaded.subscribe()
    }

    /// Reloads on every SIGHUP and every [`ReloadHandle::reload`] until
    /// the future is dropped. SIGHUPs that arrive during a reload are
    /// coalesced into one more reload (tokio keeps one pending
    /// notification per signal); handle requests are served in turn.
    pub async fn run(&mut self) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!("cannot listen for SIGHUP, reload by signal disabled: {e}");
                None
            }
        };
        loop {
            let hangup = async {
                match hangups.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                signal = hangup => {
                    if signal.is_none() {
                        return;
                    }
                    // systemd shows the unit as reloading until READY=1
                    // again (Type=notify; notify-reload also wants the
                    // clock). Without NOTIFY_SOCKET these do nothing.
                    let mut reloading = vec![sd_notify::NotifyState::Reloading];
                    reloading.extend(sd_notify::NotifyState::monotonic_usec_now().ok());
                    let _ = sd_notify::notify(&reloading);
                    // The outcome is logged by `reload`.
                    let _ = self.reload().await;
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
                }
                Some(reply) = self.requests.recv() => {
                    let outcome = self.reload().await;
                    // The asker may have gone (request timeout): nothing to tell.
                    let _ = reply.send(outcome);
                }
            }
        }
    }

    /// Re-reads the config file and swaps in what it describes, or keeps
    /// everything as it is if anything is wrong. Logs the start, the
    /// outcome and every setting that needs a restart.
    pub async fn reload(&mut self) -> Result<ReloadStats, ReloadError> {
        let started = Instant::now();
        tracing::info!(config = %self.path.display(), "reload started");
        let outcome = self.try_reload(started).await;
        self.metrics.reloaded(outcome.is_ok());
        let error = outcome.as_ref().err().map(|e| e.to_string());
        self.loaded
            .send_modify(|l| l.last_attempt = Some((SystemTime::now(), error)));
        match outcome {
            Ok(stats) => {
                tracing::info!(
                    zones = stats.zones,
                    names = stats.names,
                    services = stats.services,
                    kept_health = stats.kept_health,
                    ms = stats.took.as_millis() as u64,
                    "reload done"
                );
                Ok(stats)
            }
            Err(e) => {
                // Config and zone errors read `file:line: message`, one per line.
                tracing::error!("reload failed, still serving the previous configuration: {e}");
                Err(e)
            }
        }
    }

    async fn try_reload(&mut self, started: Instant) -> Result<ReloadStats, ReloadError> {
        let path = self.path.clone();
        let (mut config, mut next, digest) = tokio::task::spawn_blocking(move || {
            // Digested right after loading, so it describes what is served.
            load(&path).map(|(config, next)| {
                let digest = ConfigDigest::of(&config);
                (config, next, digest)
            })
        })
        .await
        .map_err(|e| ReloadError::Task(e.to_string()))??;

        for setting in restart_needed(&self.config, &config) {
            tracing::warn!(setting, "changed in the config file, but needs a restart to apply; keeping the running value");
        }
        keep_start_only_settings(&self.config, &mut config);

        // Stopped (and waited for) before their health is read, so no old
        // probe writes a verdict after it was copied.
        for probe in &self.probes {
            probe.abort();
        }
        for probe in self.probes.drain(..) {
            let _ = probe.await;
        }
        let old = self.snapshot.load_full();
        // The new table knows every answer the old one saw (copied below).
        next.last_sent.start_at(old.last_sent.since());
        let kept_health = carry_health(&old, &next);
        apply_drain(config.state_dir.as_deref(), &old, &next);
        crate::maintenance::apply(&next, crate::last_sent::unix_now());
        drop(old);
        self.probes = start_probes(&next, &self.journal, Some(self.metrics.probes()));
        self.journal.retain(|label, target| {
            next.probes
                .iter()
                .any(|p| p.target == target && &*p.label == label)
        });

        let stats = ReloadStats {
            zones: next.zones.iter().count(),
            names: next.zones.iter().map(|z| z.len()).sum(),
            services: next.services.len(),
            kept_health,
            took: Duration::ZERO,
        };
        // Answers so far go to the services the old snapshot names.
        self.metrics.services_replaced(&self.snapshot.load());
        let old = self.snapshot.swap(Arc::new(next));
        // After the swap, so answers the old snapshot gave until now count.
        carry_last_sent(&old, &self.snapshot.load());
        let took = started.elapsed();
        self.config = config;
        self.loaded.send_modify(|l| {
            l.digest = Some(Arc::new(digest));
            l.at = SystemTime::now();
        });
        tokio::task::spawn_blocking(move || retire(old, RETIRE_TIMEOUT));
        Ok(ReloadStats { took, ..stats })
    }

    /// Stops the probes (at shutdown).
    pub fn stop(&mut self) {
        for probe in self.probes.drain(..) {
            probe.abort();
        }
    }
}

/// Reads the config file and builds its snapshot (blocking: file I/O and
/// zone parsing). What `serve` and `check` load at start too.
pub fn load(path: &Path) -> Result<(Config, Snapshot), ReloadError> {
    let config = Config::from_file(path)?;
    let snapshot = Snapshot::load(&config)?;
    Ok((config, snapshot))
}

/// Starts one probe task per plan of `snapshot`, each in a span naming
/// what it probes, writing to `journal` and telling `observer`, if any,
/// what it finds. Call it inside a tokio runtime.
pub fn start_probes(
    snapshot: &Snapshot,
    journal: &Arc<Journal>,
    observer: Option<Arc<ProbeMetrics>>,
) -> Vec<JoinHandle<()>> {
    snapshot
        .probes
        .iter()
        .filter_map(|p| {
            let span = tracing::info_span!("probe", of = %p.label);
            let _enter = span.enter();
            // Plans name slots of their own view, so this always succeeds.
            // A shared verdict goes to the local bit; the cluster writes
            // the one answered with.
            let slot = match p.shared {
                Some(_) => snapshot.health.local_slot(p.slot)?,
                None => snapshot.health.slot(p.slot)?,
            };
            let recorder = Recorder {
                journal: journal.clone(),
                label: Arc::from(p.label.as_str()),
            };
            let observer = observer
                .clone()
                .map(|o| (p.label.clone(), o as Arc<dyn health::ProbeObserver>));
            Some(health::spawn_watched_probe(
                p.target,
                p.monitor.clone(),
                slot,
                Some(recorder),
                observer,
            ))
        })
        .collect()
}

/// The settings of `running` that differ in `new` and are only read when
/// the server starts (so a reload cannot apply them), by their config key.
///
/// Everything else is part of the [`Snapshot`] and reloads: zones,
/// services, monitors and `max-udp-payload` (read per query; the UDP
/// buffers are sized for its largest allowed value).
pub fn restart_needed(running: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |differs: bool, key| {
        if differs {
            changed.push(key);
        }
    };
    // Sockets are bound, worker threads started and the TCP limits and
    // rate limiter handed to them once, in `Server::bind`.
    check(running.listen != new.listen, "[server] listen");
    check(running.workers != new.workers, "[server] workers");
    let user = |c: &Config| c.run_as.as_ref().map(|r| r.user.clone());
    let group = |c: &Config| c.run_as.as_ref().and_then(|r| r.group.clone());
    // Privileges are dropped for good at start.
    check(user(running) != user(new), "[server] user");
    check(group(running) != group(new), "[server] group");
    check(running.tcp != new.tcp, "[tcp]");
    check(running.rrl != new.rrl, "[rrl]");
    // The cookie secret is handed to the workers at start too.
    check(
        running.cookie_secret != new.cookie_secret,
        "[server] cookie-secret",
    );
    // The drain watcher watches the folder it was started with.
    check(running.state_dir != new.state_dir, "[state] dir");
    // The admin listener is bound at start, before privileges are dropped.
    check(running.admin != new.admin, "[admin]");
    // The cluster task is started with its nodes, secret and timings.
    check(running.cluster != new.cluster, "[cluster]");
    // The workers' samplers and the log writer are made at start.
    check(
        running.query_sample != new.query_sample,
        "[log] query-sample",
    );
    changed
}

/// Puts `running`'s start-only settings (see [`restart_needed`]) into
/// `new`, so it describes what is in force.
fn keep_start_only_settings(running: &Config, new: &mut Config) {
    new.listen = running.listen.clone();
    new.workers = running.workers;
    new.run_as = running.run_as.clone();
    new.tcp = running.tcp.clone();
    new.rrl = running.rrl.clone();
    new.cookie_secret = running.cookie_secret;
    new.state_dir = running.state_dir.clone();
    new.admin = running.admin.clone();
    new.cluster = running.cluster.clone();
    new.query_sample = running.query_sample;
}

/// Copies the current health of every probe of `old` into the slot of the
/// probe of `next` with the same kind, target and monitor, and returns how
/// many were copied. Other probes of `next` keep their initial health.
pub fn carry_health(old: &Snapshot, next: &Snapshot) -> usize {
    // Hashed by kind and target; monitors are compared in the bucket, which
    // holds one entry unless services probe one target differently.
    let mut known: HashMap<(ProbeKind, SocketAddr), Vec<(&Monitor, HealthId)>> = HashMap::new();
    for plan in &old.probes {
        known
            .entry((plan.kind, plan.target))
            .or_default()
            .push((&plan.monitor, plan.slot));
    }
    let mut carried = 0;
    for plan in &next.probes {
        let found = known.get(&(plan.kind, plan.target)).and_then(|bucket| {
            bucket
                .iter()
                .find(|(monitor, _)| **monitor == *plan.monitor)
        });
        if let Some(status) = found.and_then(|&(_, slot)| old.health.status(slot)) {
            // A slot the cluster decides keeps the combined verdict until
            // the cluster's next tick; any other answers with this node's
            // own verdict, also where the old rule was a cluster one (its
            // probe writes again only on a change of verdict).
            next.health.set_health(plan.slot, status.local);
            if plan.shared.is_some() {
                next.health.set_answered(plan.slot, status.health);
            }
            carried += 1;
        }
    }
    carried
}

/// Copies when answers last named each endpoint (by service and endpoint
/// name) and each `self` service's local payload (by service name) from
/// `old` into `next`, so a reload does not make a drained endpoint look
/// safe to stop early.
pub fn carry_last_sent(old: &Snapshot, next: &Snapshot) {
    let mut slots: HashMap<(&Name, Option<&str>), HealthId> = HashMap::new();
    for rule in old.services.iter() {
        if let Some(slot) = rule.local_slot() {
            slots.insert((&rule.name, None), slot);
        }
        for e in rule.endpoints.iter() {
            slots.insert((&rule.name, Some(&*e.name)), e.slot);
        }
    }
    for rule in next.services.iter() {
        let wanted = rule
            .local_slot()
            .map(|slot| (None, slot))
            .into_iter()
            .chain(rule.endpoints.iter().map(|e| (Some(&*e.name), e.slot)));
        for (endpoint, to) in wanted {
            if let Some(&from) = slots.get(&(&rule.name, endpoint)) {
                next.last_sent.carry(&old.last_sent, from, to);
            }
        }
    }
}

/// Marks the drained services of `next`: from the drain file in
/// `state_dir`, or, if it cannot be read, as they were in `old` (by
/// service name), since a broken file must not undrain anything.
fn apply_drain(state_dir: Option<&Path>, old: &Snapshot, next: &Snapshot) {
    let Some(dir) = state_dir else {
        return;
    };
    match DrainState::load(dir) {
        Ok(state) => state.apply(next),
        Err(e) => {
            tracing::warn!("drain state unreadable, keeping the drains in force: {e}");
            DrainState::in_force(old).apply(next);
        }
    }
}

/// Drops a swapped-out snapshot once nothing else holds it, waiting at
/// most `timeout`; returns whether it was the last reference. Blocking:
/// run it on the blocking pool.
///
/// Why wait: a query's `ArcSwap::load` guard may keep the old snapshot
/// alive after the swap, and whoever drops the last reference frees it,
/// which for a large zone takes milliseconds. Waiting until this is the
/// only reference makes the reloader that one, not a UDP worker. arc-swap
/// guards usually hold no reference count of their own (a "debt" in a
/// thread-local slot), but `swap` pays every outstanding debt on the old
/// pointer before it returns, so from then on `strong_count` counts every
/// guard still alive.
pub fn retire(old: Arc<Snapshot>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Arc::strong_count(&old) > 1 && Instant::now() < deadline {
        std::thread::sleep(RETIRE_POLL);
    }
    let last = Arc::strong_count(&old) == 1;
    if !last {
        tracing::warn!(
            holders = Arc::strong_count(&old) - 1,
            "old snapshot still in use after {timeout:?}; the last holder frees it"
        );
    }
    let started = Instant::now();
    drop(old);
    if last {
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "old snapshot freed"
        );
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::{IpAddr, Ipv4Addr};

    use crate::health::{Health, SlotStatus};

    const ZONE: &str =
        "$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n@ NS ns1\nns1 A 192.0.2.1\n";

    /// A scratch folder with a zone file, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!(
                "steerdns-reload-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("z.zone"), ZONE).unwrap();
            Scratch(dir)
        }

        fn config(&self, text: &str) -> Config {
            let path = self.0.join("steerdns.toml");
            std::fs::write(&path, text).unwrap();
            Config::from_file(&path).unwrap()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A config with one `self` service probed by `monitor` (a TOML table
    /// body) with peers 192.0.2.10 and .11, neither of them this node.
    fn with_service(monitor: &str) -> String {
        format!(
            "[server]\nlisten = [\"127.0.0.1:5353\"]\nworkers = 1\n\
             [[zone]]\norigin = \"z.test.\"\nfile = \"z.zone\"\n\
             [monitor.m]\n{monitor}\n\
             [[service]]\nname = \"www.z.test.\"\nrouting = \"self\"\nmonitor = \"m\"\n\
             peers = [\"192.0.2.10\", \"192.0.2.11\"]\n"
        )
    }

    fn snapshot(config: &Config) -> Snapshot {
        Snapshot::load_with(config, &[]).unwrap()
    }

    fn health(snap: &Snapshot) -> Vec<Health> {
        snap.probes
            .iter()
            .map(|p| snap.health.status(p.slot).unwrap().health)
            .collect()
    }

    #[test]
    fn health_carries_over_to_probes_of_the_same_target_and_monitor() {
        let dir = Scratch::new("carry");
        let tcp = "protocol = \"tcp\"\nport = 80\n";
        let old = snapshot(&dir.config(&with_service(tcp)));
        // Local payload, peer .10, peer .11.
        assert_eq!(old.probes.len(), 3);
        for plan in &old.probes {
            old.health.set_health(plan.slot, Health::Down);
        }

        let same = snapshot(&dir.config(&with_service(tcp)));
        assert_eq!(carry_health(&old, &same), 3);
        assert_eq!(health(&same), [Health::Down; 3]);

        // Another monitor setting: a different probe, which starts up.
        let slower = snapshot(&dir.config(&with_service(&format!("{tcp}interval = \"20s\"\n"))));
        assert_eq!(carry_health(&old, &slower), 0);
        assert_eq!(health(&slower), [Health::Up; 3]);

        // Another port: another target.
        let other = snapshot(&dir.config(&with_service("protocol = \"tcp\"\nport = 81\n")));
        assert_eq!(carry_health(&old, &other), 0);
    }

    #[test]
    fn last_sent_times_follow_endpoints_by_name_across_a_reload() {
        let dir = Scratch::new("sent");
        let text = |order: &str| {
            format!(
                "{}[[service]]\nname = \"api.z.test.\"\nrouting = \"weighted\"\nendpoints = [{order}]\n",
                with_service("protocol = \"tcp\"\nport = 80\n")
            )
        };
        let a = "{ name = \"a\", addresses = [\"192.0.2.20\"] }";
        let b = "{ name = \"b\", addresses = [\"192.0.2.30\"] }";
        let old = snapshot(&dir.config(&text(&format!("{a}, {b}"))));
        let since = old.last_sent.since();
        let (old_a, local) = (
            old.services[1].endpoints[0].slot,
            old.services[0].local_slot().unwrap(),
        );
        old.last_sent.mark(old_a, (since + 50) as u32);
        old.last_sent.mark(local, (since + 60) as u32);
        // The reload lists b first: a's slot changes.
        let mut next = snapshot(&dir.config(&text(&format!("{b}, {a}"))));
        next.last_sent.start_at(since);
        carry_last_sent(&old, &next);
        let now = since + 100;
        let new_a = next.services[1].endpoints[1].slot;
        assert_ne!(new_a, old_a);
        assert_eq!(next.last_sent.last(new_a, now), Some(since + 50));
        let new_b = next.services[1].endpoints[0].slot;
        assert_eq!(next.last_sent.last(new_b, now), Some(since));
        let new_local = next.services[0].local_slot().unwrap();
        assert_eq!(next.last_sent.last(new_local, now), Some(since + 60));
    }

    #[test]
    fn health_is_carried_only_to_the_same_kind_of_slot() {
        let dir = Scratch::new("kind");
        // The monitor's address makes the local payload's target
        // 192.0.2.10:80, the same as the peer's.
        let config = dir.config(&with_service(
            "protocol = \"tcp\"\nport = 80\naddress = \"192.0.2.10\"\n",
        ));
        let old = snapshot(&config);
        let local = &old.probes[0];
        assert_eq!(local.kind, ProbeKind::LocalPayload);
        old.health.set_health(local.slot, Health::Down);
        let next = snapshot(&config);
        carry_health(&old, &next);
        let kinds: Vec<_> = next
            .probes
            .iter()
            .map(|p| (p.kind, p.target, next.health.status(p.slot).unwrap().health))
            .collect();
        let at = |ip: [u8; 4]| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), 80);
        assert_eq!(
            kinds,
            [
                (ProbeKind::LocalPayload, at([192, 0, 2, 10]), Health::Down),
                (ProbeKind::Peer, at([192, 0, 2, 10]), Health::Up),
                (ProbeKind::Peer, at([192, 0, 2, 11]), Health::Up),
            ]
        );
    }

    #[test]
    fn start_only_settings_are_named_and_kept() {
        let dir = Scratch::new("restart");
        let base = with_service("protocol = \"tcp\"\nport = 80\n");
        let running = dir.config(&base);
        assert!(restart_needed(&running, &dir.config(&base)).is_empty());

        let changed = base.replace("127.0.0.1:5353", "127.0.0.1:5354").replace(
            "workers = 1",
            "workers = 2\nmax-udp-payload = 4096\nuser = \"nobody\"\n\
             cookie-secret = \"000102030405060708090a0b0c0d0e0f\"",
        )
            + "[tcp]\nidle-timeout = \"3s\"\n[rrl]\nenabled = false\n[state]\ndir = \"st\"\n";
        let mut new = dir.config(&changed);
        assert_eq!(
            restart_needed(&running, &new),
            [
                "[server] listen",
                "[server] workers",
                "[server] user",
                "[tcp]",
                "[rrl]",
                "[server] cookie-secret",
                "[state] dir"
            ]
        );
        keep_start_only_settings(&running, &mut new);
        assert!(restart_needed(&running, &new).is_empty());
        // Not start-only: read per query from the snapshot.
        assert_eq!(new.max_udp_payload, 4096);
    }

    #[test]
    fn drain_comes_from_the_file_or_else_from_the_old_snapshot() {
        let dir = Scratch::new("drain");
        let config = dir.config(&with_service("protocol = \"tcp\"\nport = 80\n"));
        let state = dir.0.join("state");
        let old = snapshot(&config);
        let rule = &old.services[0];
        old.health.set_drained(rule.local_slot().unwrap(), true);

        // No file: nothing drained.
        let next = snapshot(&config);
        apply_drain(Some(&state), &old, &next);
        assert!(next
            .health
            .is_serving(next.services[0].local_slot().unwrap()));

        // A broken file: the old snapshot's drains stay.
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("drain.toml"), "node = 3").unwrap();
        let next = snapshot(&config);
        apply_drain(Some(&state), &old, &next);
        assert_eq!(
            next.health.status(next.services[0].local_slot().unwrap()),
            Some(SlotStatus {
                health: Health::Up,
                drained: true,
                maintenance: false,
                local: Health::Up,
            })
        );
    }

    #[test]
    fn retire_waits_for_the_last_reader() {
        let dir = Scratch::new("retire");
        let config = dir.config(&with_service("protocol = \"tcp\"\nport = 80\n"));
        let swap = Arc::new(ArcSwap::from_pointee(snapshot(&config)));
        // A query in flight: its guard outlives the swap.
        let guard = swap.load();
        let old = swap.swap(Arc::new(snapshot(&config)));
        // The swap paid the guard's debt: it counts.
        assert_eq!(Arc::strong_count(&old), 2);
        let started = Instant::now();
        let retiring = std::thread::spawn(move || retire(old, Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(50));
        drop(guard);
        assert!(retiring.join().unwrap());
        assert!(started.elapsed() >= Duration::from_millis(50));

        // A reader that never lets go: retire gives up after the timeout.
        let held = swap.load_full();
        let old = swap.swap(Arc::new(snapshot(&config)));
        assert!(!retire(old, Duration::from_millis(20)));
        drop(held);
    }
}
