//! The tokio side of the cluster: [`ClusterNode`] reads this node's own
//! verdicts from the health view, pushes them to every other node,
//! takes the peers' pushes from the admin listener, and writes the health
//! each rule gives into the view the answer path reads.
//!
//! One task ticks every [`TICK`]: it recomputes every shared slot (so a
//! peer's verdict that reaches `max-age` stops counting within a tick),
//! pushes when this node's verdicts changed or `push-interval` passed
//! since the last push, and logs entering and leaving fallback and a
//! config digest mismatch. Every push carries the full state: a lost push
//! is mended by the next, and a receiver never has to merge deltas.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use hyper::body::Bytes;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::message::{Push, PUSH_PATH, SIGNATURE_HEADER};
use super::table::{PeerTable, Refusal};
use crate::config::ClusterConfig;
use crate::drain::{DrainState, DrainTarget, Named};
use crate::maintenance::Phase;

use crate::reload::Loaded;
use crate::snapshot::Snapshot;

/// How often shared health is recomputed and the need to push checked.
pub const TICK: Duration = Duration::from_millis(200);

/// Longest wait for a peer to take a push.
const PUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// The cluster's metrics, registered with the server's others.
#[derive(Debug, Default)]
pub struct ClusterMetrics {
    received: Family<Vec<(&'static str, &'static str)>, Counter>,
    sent: Family<Vec<(&'static str, &'static str)>, Counter>,
    fallback: Gauge,
    digest_mismatch: Gauge,
    fresh_peers: Gauge,
}

impl ClusterMetrics {
    /// Registers every cluster metric in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "cluster_pushes_received",
            "Pushes from other nodes, accepted or by why they were refused",
            self.received.clone(),
        );
        registry.register(
            "cluster_pushes_sent",
            "Pushes to other nodes by outcome",
            self.sent.clone(),
        );
        registry.register(
            "cluster_fallback",
            "1 while this node hears from too few peers and answers with its own verdicts",
            self.fallback.clone(),
        );
        registry.register(
            "cluster_config_digest_mismatch",
            "1 while this node's config digest differs from the majority of reporting nodes",
            self.digest_mismatch.clone(),
        );
        registry.register(
            "cluster_peers_fresh",
            "Other nodes whose last push is within max-age",
            self.fresh_peers.clone(),
        );
    }
}

/// What the status page and `/api/v1/status` show of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// This node's name (its `[cluster] nodes` entry).
    pub node: String,
    /// Whether this node answers with its own verdicts alone because it
    /// hears from fewer than half of the other nodes.
    pub fallback: bool,
    /// This node's config digest.
    pub digest: Option<String>,
    /// Whether that digest differs from the majority of reporting nodes.
    pub digest_mismatch: bool,
    /// Every other node.
    pub peers: Vec<PeerStatus>,
    /// Pushes refused, by reason.
    pub refused: BTreeMap<String, u64>,
}

/// One other node, as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// Its name.
    pub node: String,
    /// Whether its last push is within `max-age` (so it counts).
    pub fresh: bool,
    /// Milliseconds since its last accepted push, `None` if none came.
    pub last_push_ms_ago: Option<u64>,
    /// Its config digest, from its last push.
    pub digest: Option<String>,
    /// Whether its digest equals this node's.
    pub same_digest: bool,
    /// Whether this node's last push to it was taken (`None`: none tried).
    pub reachable: Option<bool>,
}

/// See the [module documentation](self).
#[derive(Debug)]
pub struct ClusterNode {
    config: ClusterConfig,
    /// This node's index in `config.nodes`.
    this: usize,
    snapshot: Arc<ArcSwap<Snapshot>>,
    loaded: watch::Receiver<Loaded>,
    metrics: Arc<ClusterMetrics>,
    /// The origin of the monotonic clock handed to the table.
    start: Instant,
    /// The next push's sequence number.
    seq: AtomicU64,
    /// Where the drain file is (`[state] dir`), read for what to report
    /// as drained.
    state_dir: Option<PathBuf>,
    state: Mutex<State>,
}

/// What a push said: the verdicts, the drains, and when it went out.
type Pushed = (BTreeMap<String, bool>, BTreeMap<String, u64>, Instant);

#[derive(Debug)]
struct State {
    table: PeerTable,
    fallback: bool,
    digest_mismatch: bool,
    refused: BTreeMap<String, u64>,
    /// What the last push said, and when it was sent.
    pushed: Option<Pushed>,
    /// The operator's drains, from the drain file.
    drains: Vec<DrainTarget>,
    /// Whether each peer took the last push, by node index.
    reachable: BTreeMap<usize, bool>,
}

impl ClusterNode {
    /// The cluster of `config`, this node being `nodes[this]`, deciding
    /// the shared slots of whatever snapshot `snapshot` holds and telling
    /// peers the digest `loaded` publishes and what the drain file in
    /// `state_dir` drains.
    pub fn new(
        config: ClusterConfig,
        this: usize,
        snapshot: Arc<ArcSwap<Snapshot>>,
        loaded: watch::Receiver<Loaded>,
        metrics: Arc<ClusterMetrics>,
        state_dir: Option<PathBuf>,
    ) -> ClusterNode {
        let names = config.nodes.iter().map(|n| n.to_string()).collect();
        let table = PeerTable::new(names, this, config.max_age);
        // Microseconds since the epoch at start: a restarted node goes on
        // above its last sequence number without keeping any state.
        let seq = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        ClusterNode {
            config,
            this,
            snapshot,
            loaded,
            metrics,
            start: Instant::now(),
            seq: AtomicU64::new(seq),
            state_dir,
            state: Mutex::new(State {
                // Nothing heard yet: the node starts in fallback.
                fallback: table.in_fallback(Duration::ZERO) && table.others().next().is_some(),
                table,
                digest_mismatch: false,
                refused: BTreeMap::new(),
                pushed: None,
                drains: Vec::new(),
                reachable: BTreeMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain data: still fit to read after a panic elsewhere.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Takes a push posted to [`PUSH_PATH`]: `body` as received, with the
    /// signature header's value. Counted in the metrics either way.
    pub fn receive(&self, body: &[u8], signature: Option<&[u8]>) -> Result<(), Refusal> {
        let wall_ms = unix_ms(SystemTime::now());
        let now = self.now();
        let mut state = self.lock();
        let outcome = state
            .table
            .receive(&self.config.secret, body, signature, wall_ms, now);
        let reason = match outcome {
            Ok(()) => "accepted",
            Err(refusal) => {
                *state.refused.entry(refusal.reason().into()).or_default() += 1;
                // Anyone can send an unsigned request: only the metric
                // counts those, not a warning per request. A signed push
                // that is refused means a peer's clock or a replay.
                if refusal == Refusal::BadSignature {
                    tracing::debug!(reason = refusal.reason(), "cluster push refused: {refusal}");
                } else {
                    tracing::warn!(reason = refusal.reason(), "cluster push refused: {refusal}");
                }
                refusal.reason()
            }
        };
        self.metrics
            .received
            .get_or_create(&vec![("result", reason)])
            .inc();
        outcome
    }

    /// Recomputes, pushes and logs every [`TICK`] until dropped.
    pub async fn run(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        {
            let state = self.lock();
            tracing::info!(
                node = %state.table.this_node(),
                nodes = self.config.nodes.len(),
                fallback = state.fallback,
                "cluster health sharing started"
            );
            if state.fallback {
                tracing::info!(
                    "answering with this node's own verdicts until enough peers are heard"
                );
            }
        }
        let mut round: u32 = 0;
        loop {
            ticks.tick().await;
            // The drain file, once a second (the server applies it at the
            // same pace): a read on the blocking pool, as every file is.
            if round % DRAIN_READ_EVERY == 0 {
                if let Some(dir) = self.state_dir.clone() {
                    let read = tokio::task::spawn_blocking(move || DrainState::load(&dir)).await;
                    if let Ok(Ok(drains)) = read {
                        self.lock().drains = drains.targets();
                    }
                }
            }
            round = round.wrapping_add(1);
            if let Some(push) = self.tick() {
                self.clone().send(push);
            }
        }
    }

    /// One round: the shared slots' health, fallback and digest signals,
    /// and the push to send, if one is due.
    fn tick(&self) -> Option<Push> {
        let now = self.now();
        let snapshot = self.snapshot.load();
        let digest = self.digest();
        let mut state = self.lock();
        let mut verdicts = BTreeMap::new();
        for plan in &snapshot.probes {
            let Some(shared) = &plan.shared else {
                continue;
            };
            let Some(status) = snapshot.health.status(plan.slot) else {
                continue;
            };
            verdicts.insert(shared.key.to_string(), status.local.is_up());
            let health = state
                .table
                .health(&shared.key, shared.rule, status.local, now);
            if health != status.health {
                snapshot.health.set_answered(plan.slot, health);
                tracing::info!(
                    endpoint = %shared.key, rule = %shared.rule, local = %status.local,
                    %health, "cluster health changed"
                );
            }
        }
        let fallback = state.table.others().next().is_some() && state.table.in_fallback(now);
        if fallback != state.fallback {
            state.fallback = fallback;
            if fallback {
                tracing::warn!(
                    "cluster fallback: hearing from fewer than half of the other nodes, \
                     answering with this node's own verdicts"
                );
            } else {
                tracing::info!("cluster fallback over: enough peers heard again");
            }
        }
        let mismatch = state.table.digest_differs(digest.as_deref(), now);
        if mismatch != state.digest_mismatch {
            state.digest_mismatch = mismatch;
            if mismatch {
                tracing::warn!(
                    digest = digest.as_deref().unwrap_or(""),
                    "config digest differs from the majority of the cluster's nodes"
                );
            } else {
                tracing::info!("config digest agrees with the cluster's majority again");
            }
        }
        self.metrics.fallback.set(i64::from(fallback));
        self.metrics.digest_mismatch.set(i64::from(mismatch));
        self.metrics
            .fresh_peers
            .set(state.table.fresh(now).count() as i64);

        let drained = drained_here(&snapshot, &state.drains, unix_ms(SystemTime::now()) / 1000);
        let due = match &state.pushed {
            None => true,
            Some((last, last_drained, at)) => {
                *last != verdicts
                    || *last_drained != drained
                    || at.elapsed() >= self.config.push_interval
            }
        };
        if !due {
            return None;
        }
        state.pushed = Some((verdicts.clone(), drained.clone(), Instant::now()));
        Some(Push {
            node: state.table.this_node().to_string(),
            time_ms: unix_ms(SystemTime::now()),
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            digest,
            verdicts,
            drained,
        })
    }

    /// When `target` (a drain target's text) is safe to stop on every
    /// node, this one's time being `own`: see [`PeerTable::safe_everywhere`].
    pub fn safe_everywhere(&self, target: &str, own: u64) -> Result<u64, Vec<String>> {
        let now = self.now();
        self.lock().table.safe_everywhere(target, own, now)
    }

    /// This node's config digest, once computed.
    fn digest(&self) -> Option<String> {
        self.loaded
            .borrow()
            .digest
            .as_ref()
            .map(|d| d.sha256.clone())
    }

    /// Posts `push`, signed, to every other node, each in its own task so
    /// a dead peer delays no other.
    fn send(self: Arc<Self>, push: Push) {
        let body = match serde_json::to_vec(&push) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::error!("cluster push not encoded: {e}");
                return;
            }
        };
        if body.len() > super::MAX_PUSH {
            tracing::error!(
                bytes = body.len(),
                "cluster push larger than peers take ({} bytes): not sent",
                super::MAX_PUSH
            );
            return;
        }
        let signature = self.config.secret.sign(&body);
        for (i, &peer) in self.config.nodes.iter().enumerate() {
            if i == self.this {
                continue;
            }
            let node = self.clone();
            let (body, signature) = (body.clone(), signature.clone());
            tokio::spawn(async move {
                let ok = node.post(peer, body, &signature).await;
                node.metrics
                    .sent
                    .get_or_create(&vec![("result", if ok { "ok" } else { "error" })])
                    .inc();
                let mut state = node.lock();
                if state.reachable.insert(i, ok) != Some(ok) {
                    if ok {
                        tracing::info!(%peer, "cluster peer takes pushes");
                    } else {
                        tracing::warn!(%peer, "cluster push failed");
                    }
                }
            });
        }
    }

    /// One push to `peer`; whether it was taken.
    async fn post(&self, peer: SocketAddr, body: Bytes, signature: &str) -> bool {
        let headers = [
            (SIGNATURE_HEADER, signature),
            ("content-type", "application/json"),
        ];
        match crate::admin::client::post(peer, PUSH_PATH, &headers, body, PUSH_TIMEOUT).await {
            Ok((status, _)) if status.is_success() => true,
            Ok((status, reply)) => {
                tracing::debug!(%peer, %status, reply = %String::from_utf8_lossy(&reply), "cluster push refused");
                false
            }
            Err(e) => {
                tracing::debug!(%peer, "cluster push: {e}");
                false
            }
        }
    }

    /// What the status page shows.
    pub fn status(&self) -> ClusterStatus {
        let now = self.now();
        let digest = self.digest();
        let state = self.lock();
        let table = &state.table;
        let peers = self
            .config
            .nodes
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != self.this)
            .map(|(i, n)| (i, n.to_string()))
            .map(|(i, node)| {
                let report = table.report(&node);
                PeerStatus {
                    fresh: report.is_some_and(|r| table.is_fresh(r.received, now)),
                    last_push_ms_ago: report
                        .map(|r| now.saturating_sub(r.received).as_millis() as u64),
                    digest: report.and_then(|r| r.digest.clone()),
                    same_digest: report.is_some_and(|r| r.digest.is_some() && r.digest == digest),
                    reachable: state.reachable.get(&i).copied(),
                    node,
                }
            })
            .collect();
        ClusterStatus {
            node: table.this_node().to_string(),
            fallback: state.fallback,
            digest,
            digest_mismatch: state.digest_mismatch,
            peers,
            refused: state.refused.clone(),
        }
    }
}

/// How many ticks apart the drain file is read: once a second.
const DRAIN_READ_EVERY: u32 = 5;

/// What this node has drained (the operator's `drains` and the active
/// maintenance windows, services and endpoints only: a node drain is
/// about this node alone) and no longer answers with, each with the Unix
/// second from which it is safe to stop here.
fn drained_here(snapshot: &Snapshot, drains: &[DrainTarget], now: u64) -> BTreeMap<String, u64> {
    let windows = snapshot
        .maintenance
        .iter()
        .filter(|w| Phase::of(w, now) == Phase::Active)
        .map(|w| &w.target);
    drains
        .iter()
        .chain(windows)
        .filter(|t| !matches!(t, DrainTarget::Node))
        .filter_map(|t| {
            let named = Named::find(snapshot, t)?;
            named
                .in_force(snapshot)
                .then(|| (t.to_string(), named.safe_to_stop(snapshot, now).safe_at))
        })
        .collect()
}

/// The index of this node in `config.nodes`: the entry equal to
/// `admin_listen`, else the one whose address is on one of this host's
/// interfaces (see [`ClusterConfig::this_node`]).
pub fn find_self(config: &ClusterConfig, admin_listen: SocketAddr) -> Result<usize, String> {
    let local = crate::sys::local_addresses()
        .map_err(|e| format!("cannot list this host's addresses: {e}"))?;
    config.this_node(admin_listen, &local)
}

/// Milliseconds since the Unix epoch (0 before it).
fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::cluster::{HealthRule, Secret};
    use crate::config::Config;
    use crate::health::Health;

    const SECRET: &[u8] = b"0123456789abcdef0123";

    /// A config whose services `any.z.test.` (rule any) and `loc.z.test.`
    /// (rule local) watch the same target with the same monitor, in a
    /// scratch folder removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        /// Loads the config with `any.z.test.`'s rule replaced by `rule`.
        fn snapshot_with(&self, rule: &str) -> Snapshot {
            self.snapshot_replacing(
                "health-rule = \"any\"",
                &format!("health-rule = \"{rule}\""),
            )
        }

        /// Loads the config with `from` replaced by `to`.
        fn snapshot_replacing(&self, from: &str, to: &str) -> Snapshot {
            let text = std::fs::read_to_string(self.0.join("steerdns.toml")).unwrap();
            assert!(text.contains(from), "{from}");
            let other = self.0.join("changed.toml");
            std::fs::write(&other, text.replace(from, to)).unwrap();
            Snapshot::load_with(&Config::from_file(&other).unwrap(), &[]).unwrap()
        }

        fn new() -> Scratch {
            let dir = std::env::temp_dir().join(format!(
                "steerdns-cluster-node-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let zone = "$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n";
            std::fs::write(dir.join("z.zone"), zone).unwrap();
            std::fs::write(dir.join("secret"), SECRET).unwrap();
            let service = |name: &str, rule: &str| {
                format!(
                    "[[service]]\nname = \"{name}.z.test.\"\nrouting = \"multivalue\"\n\
                     health-rule = \"{rule}\"\nendpoints = [{{ name = \"e\", \
                     addresses = [\"192.0.2.80\"], monitor = \"m\" }}]\n"
                )
            };
            let text = format!(
                "[server]\nlisten = [\"127.0.0.1:5353\"]\n\
                 [[zone]]\norigin = \"z.test.\"\nfile = \"z.zone\"\n\
                 [admin]\nlisten = \"127.0.0.1:8053\"\n\
                 [cluster]\nnodes = [\"127.0.0.1:8053\", \"127.0.0.2:8053\", \"127.0.0.3:8053\"]\n\
                 secret-file = \"secret\"\n\
                 [monitor.m]\nprotocol = \"tcp\"\nport = 80\n{}{}",
                service("any", "any"),
                service("loc", "local")
            );
            std::fs::write(dir.join("steerdns.toml"), text).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn signed_push(node: &str, seq: u64, up: bool) -> (Vec<u8>, String) {
        let push = Push {
            node: node.into(),
            time_ms: unix_ms(SystemTime::now()),
            seq,
            digest: None,
            verdicts: BTreeMap::from([("any.z.test./e/192.0.2.80:80".to_string(), up)]),
            drained: BTreeMap::new(),
        };
        let body = serde_json::to_vec(&push).unwrap();
        let sig = Secret::new(SECRET).sign(&body);
        (body, sig)
    }

    #[test]
    fn a_reload_to_local_answers_with_the_own_verdict_at_once() {
        let dir = Scratch::new();
        let old = dir.snapshot_with("any");
        let slot = old.probes[0].slot;
        // The cluster says up, this node's probe says down.
        old.health
            .local_slot(slot)
            .unwrap()
            .set_health(Health::Down);
        assert!(old.health.is_serving(slot));

        let shared = dir.snapshot_with("quorum");
        crate::reload::carry_health(&old, &shared);
        assert!(shared.health.is_serving(shared.probes[0].slot));
        assert_eq!(
            shared.health.status(shared.probes[0].slot).unwrap().local,
            Health::Down
        );

        let local = dir.snapshot_with("local");
        assert_eq!(local.probes[0].shared, None);
        crate::reload::carry_health(&old, &local);
        assert!(!local.health.is_serving(local.probes[0].slot));
    }

    #[test]
    fn an_endpoint_rule_overrides_the_service_rule() {
        let dir = Scratch::new();
        // `loc.z.test.` is local, its endpoint says all.
        let snap = dir.snapshot_replacing(
            "health-rule = \"local\"\nendpoints = [{ name = \"e\", addresses = [\"192.0.2.80\"], monitor = \"m\" }]",
            "health-rule = \"local\"\nendpoints = [{ name = \"e\", addresses = [\"192.0.2.80\"], monitor = \"m\", health-rule = \"all\" }]",
        );
        let rules: Vec<_> = snap
            .probes
            .iter()
            .map(|p| p.shared.as_ref().map(|s| (s.key.to_string(), s.rule)))
            .collect();
        assert_eq!(
            rules,
            [
                Some(("any.z.test./e/192.0.2.80:80".to_string(), HealthRule::Any)),
                Some(("loc.z.test./e/192.0.2.80:80".to_string(), HealthRule::All)),
            ]
        );
    }

    #[test]
    fn shared_slots_follow_the_rule_and_local_slots_the_probe() {
        let dir = Scratch::new();
        let config = Config::from_file(&dir.0.join("steerdns.toml")).unwrap();
        let snapshot = Snapshot::load_with(&config, &[]).unwrap();
        // One probe per service: a rule keeps a slot from being shared.
        let plans: Vec<_> = snapshot
            .probes
            .iter()
            .map(|p| (p.slot, p.shared.clone()))
            .collect();
        assert_eq!(plans.len(), 2);
        assert_ne!(plans[0].0, plans[1].0);
        let shared = plans[0].1.clone().unwrap();
        assert_eq!(
            (&*shared.key, shared.rule),
            ("any.z.test./e/192.0.2.80:80", HealthRule::Any)
        );
        assert_eq!(plans[1].1, None);
        let (any, loc) = (plans[0].0, plans[1].0);

        let snapshot = Arc::new(ArcSwap::from_pointee(snapshot));
        let (_loaded, watch) = watch::channel(Loaded {
            digest: None,
            at: SystemTime::now(),
            last_attempt: None,
        });
        let node = ClusterNode::new(
            config.cluster.clone().unwrap(),
            0,
            snapshot.clone(),
            watch,
            Arc::new(ClusterMetrics::default()),
            None,
        );
        let view = snapshot.load().health.clone();
        // This node's probes both say down (as a runner would write them).
        view.local_slot(any).unwrap().set_health(Health::Down);
        view.slot(loc).unwrap().set_health(Health::Down);

        // No peer heard: fallback, the local verdict.
        let push = node.tick().expect("the first tick pushes");
        assert_eq!(
            push.verdicts,
            BTreeMap::from([("any.z.test./e/192.0.2.80:80".to_string(), false)])
        );
        assert!(!view.is_serving(any));
        assert!(node.status().fallback);
        // Nothing changed and push-interval has not passed: no push.
        assert!(node.tick().is_none());

        // B says up: out of fallback (1 of 2 others), and `any` is up.
        let (body, sig) = signed_push("127.0.0.2:8053", 7, true);
        node.receive(&body, Some(sig.as_bytes())).unwrap();
        assert_eq!(
            node.receive(&body, Some(sig.as_bytes())),
            Err(Refusal::Replay)
        );
        node.tick();
        assert!(view.is_serving(any));
        assert!(!view.is_serving(loc));
        let status = node.status();
        assert!(!status.fallback);
        assert_eq!(status.refused.get("replay"), Some(&1));
        assert!(status.peers[0].fresh && !status.peers[1].fresh);

        // This node's probe comes back up: a changed verdict pushes at once.
        view.local_slot(any).unwrap().set_health(Health::Up);
        let push = node.tick().expect("a change pushes");
        assert_eq!(push.verdicts.values().collect::<Vec<_>>(), [&true]);
        assert!(view.is_serving(any));
    }
}
