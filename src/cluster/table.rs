//! What this node knows of the others: each peer's last accepted push,
//! and the decisions made from it (the health to answer with, fallback,
//! config digest agreement).
//!
//! Pure: no sockets and no clock. Time comes in as arguments: `wall_ms`
//! (the wall clock, milliseconds since the Unix epoch, compared with the
//! sender's timestamp) and `now` (a monotonic instant as a duration since
//! any fixed start, for ages), so expiry and replay are tested without
//! sleeping.

use std::collections::HashMap;
use std::time::Duration;

use super::message::{Push, Secret};
use super::rule::HealthRule;
use crate::health::Health;

/// Why a push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No signature, or not the shared secret's signature of the body.
    #[error("bad or missing signature")]
    BadSignature,
    /// Signed, but not a push.
    #[error("malformed push")]
    Malformed,
    /// Signed, but from a node not in `[cluster] nodes`, or from this node.
    #[error("sender is not another node of the cluster")]
    UnknownNode,
    /// The sender's clock and ours differ by more than `max-age`: an old
    /// push replayed, or a clock far off.
    #[error("timestamp further than max-age from this node's clock")]
    Stale,
    /// The sequence number is not above the last one seen from the sender.
    #[error("sequence number not above the last one seen from this node")]
    Replay,
}

impl Refusal {
    /// The metric label and log word.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::BadSignature => "signature",
            Refusal::Malformed => "malformed",
            Refusal::UnknownNode => "unknown-node",
            Refusal::Stale => "stale",
            Refusal::Replay => "replay",
        }
    }

    /// The HTTP status answered: 401 when the sender is not proven (no
    /// valid signature, or not a member), 409 when a proven sender's push
    /// conflicts with what was seen (stale, replayed), 400 for nonsense.
    pub fn status(self) -> u16 {
        match self {
            Refusal::BadSignature | Refusal::UnknownNode => 401,
            Refusal::Stale | Refusal::Replay => 409,
            Refusal::Malformed => 400,
        }
    }
}

/// A peer's last accepted push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReport {
    /// Its sequence number.
    pub seq: u64,
    /// When it arrived (monotonic).
    pub received: Duration,
    /// The peer's config digest.
    pub digest: Option<String>,
    /// The peer's verdicts by key, `true` for up.
    pub verdicts: HashMap<String, bool>,
    /// What the peer has drained, with when it is safe to stop there.
    pub drained: HashMap<String, u64>,
}

/// See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct PeerTable {
    nodes: Vec<String>,
    this: usize,
    max_age: Duration,
    peers: HashMap<String, PeerReport>,
}

impl PeerTable {
    /// A table for `nodes` (every node, this one at index `this`),
    /// ignoring pushes older than `max_age`.
    pub fn new(nodes: Vec<String>, this: usize, max_age: Duration) -> PeerTable {
        PeerTable {
            nodes,
            this,
            max_age,
            peers: HashMap::new(),
        }
    }

    /// This node's name.
    pub fn this_node(&self) -> &str {
        &self.nodes[self.this]
    }

    /// Every other node's name, in configuration order.
    pub fn others(&self) -> impl Iterator<Item = &str> {
        let this = self.this;
        self.nodes
            .iter()
            .enumerate()
            .filter(move |&(i, _)| i != this)
            .map(|(_, n)| n.as_str())
    }

    /// Checks a push's signature, then its sender, timestamp and sequence
    /// number, and keeps it as the sender's latest report.
    pub fn receive(
        &mut self,
        secret: &Secret,
        body: &[u8],
        signature: Option<&[u8]>,
        wall_ms: u64,
        now: Duration,
    ) -> Result<(), Refusal> {
        if !signature.is_some_and(|s| secret.verify(body, s)) {
            return Err(Refusal::BadSignature);
        }
        let push: Push = serde_json::from_slice(body).map_err(|_| Refusal::Malformed)?;
        let known = self.nodes.iter().position(|n| *n == push.node);
        if known.is_none_or(|i| i == self.this) {
            return Err(Refusal::UnknownNode);
        }
        let skew = Duration::from_millis(wall_ms.abs_diff(push.time_ms));
        if skew > self.max_age {
            return Err(Refusal::Stale);
        }
        if self
            .peers
            .get(&push.node)
            .is_some_and(|last| push.seq <= last.seq)
        {
            return Err(Refusal::Replay);
        }
        let report = PeerReport {
            seq: push.seq,
            received: now,
            digest: push.digest,
            verdicts: push.verdicts.into_iter().collect(),
            drained: push.drained.into_iter().collect(),
        };
        self.peers.insert(push.node, report);
        Ok(())
    }

    /// The last report of `node`, fresh or not.
    pub fn report(&self, node: &str) -> Option<&PeerReport> {
        self.peers.get(node)
    }

    /// When `target` is safe to stop on every node: `Ok` with the latest
    /// of `own` (this node's time) and every other node's, once each has
    /// reported it drained within `max-age`; else `Err` with the nodes
    /// that have not (they may still answer with it).
    pub fn safe_everywhere(
        &self,
        target: &str,
        own: u64,
        now: Duration,
    ) -> Result<u64, Vec<String>> {
        let mut latest = own;
        let mut waiting = Vec::new();
        for node in self.others() {
            let reported = self
                .peers
                .get(node)
                .filter(|r| self.is_fresh(r.received, now))
                .and_then(|r| r.drained.get(target));
            match reported {
                Some(&at) => latest = latest.max(at),
                None => waiting.push(node.to_string()),
            }
        }
        if waiting.is_empty() {
            Ok(latest)
        } else {
            Err(waiting)
        }
    }

    /// Whether a report that arrived at `received` still counts at `now`.
    pub fn is_fresh(&self, received: Duration, now: Duration) -> bool {
        now.saturating_sub(received) <= self.max_age
    }

    /// The reports that arrived within `max-age` of `now`.
    pub fn fresh(&self, now: Duration) -> impl Iterator<Item = (&str, &PeerReport)> {
        self.peers
            .iter()
            .filter(move |(_, r)| self.is_fresh(r.received, now))
            .map(|(n, r)| (n.as_str(), r))
    }

    /// Whether this node hears from too few peers to trust their verdicts:
    /// fewer than half of the other nodes pushed within `max-age`. Then
    /// every rule answers with the local verdict.
    pub fn in_fallback(&self, now: Duration) -> bool {
        let others = self.nodes.len() - 1;
        self.fresh(now).count() * 2 < others
    }

    /// The health to answer with for `key` under `rule`, given this node's
    /// own verdict `local`: the rule over the fresh peers' verdicts, or
    /// `local` alone in fallback.
    pub fn health(&self, key: &str, rule: HealthRule, local: Health, now: Duration) -> Health {
        if rule == HealthRule::Local || self.in_fallback(now) {
            return local;
        }
        let peers = self
            .fresh(now)
            .filter_map(|(_, r)| r.verdicts.get(key))
            .map(|&up| if up { Health::Up } else { Health::Down });
        rule.combine(local, peers)
    }

    /// Whether this node's config digest `own` is not shared by a majority
    /// of the nodes that reported a digest within `max-age` (this node
    /// counted). Alone, or before any digest is known, nothing differs;
    /// two nodes that disagree are both flagged, since neither has a
    /// majority.
    pub fn digest_differs(&self, own: Option<&str>, now: Duration) -> bool {
        let Some(own) = own else {
            return false;
        };
        let digests = self.fresh(now).filter_map(|(_, r)| r.digest.as_deref());
        let (mut same, mut total) = (1usize, 1usize);
        for d in digests {
            total += 1;
            same += usize::from(d == own);
        }
        total > 1 && same * 2 <= total
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const MAX_AGE: Duration = Duration::from_secs(10);
    const T0: u64 = 1_700_000_000_000;

    fn table(this: usize) -> PeerTable {
        let nodes = ["a", "b", "c"].map(String::from).to_vec();
        PeerTable::new(nodes, this, MAX_AGE)
    }

    fn secret() -> Secret {
        Secret::new(*b"a shared secret!")
    }

    /// A signed push from `node`: (body, signature).
    fn push(node: &str, seq: u64, time_ms: u64, up: bool, digest: &str) -> (Vec<u8>, String) {
        let push = Push {
            node: node.into(),
            time_ms,
            seq,
            digest: Some(digest.into()),
            verdicts: BTreeMap::from([("www./e/192.0.2.1:80".to_string(), up)]),
            drained: BTreeMap::new(),
        };
        let body = serde_json::to_vec(&push).unwrap();
        let sig = secret().sign(&body);
        (body, sig)
    }

    fn deliver(t: &mut PeerTable, p: &(Vec<u8>, String), now: Duration) -> Result<(), Refusal> {
        t.receive(&secret(), &p.0, Some(p.1.as_bytes()), T0, now)
    }

    const KEY: &str = "www./e/192.0.2.1:80";

    #[test]
    fn a_drain_is_safe_everywhere_once_every_node_reports_it() {
        let mut t = table(0);
        let s = Duration::from_secs;
        let target = "www. endpoint e";
        let drained = |node: &str, seq: u64, at: Option<u64>| {
            let push = Push {
                node: node.into(),
                time_ms: T0,
                seq,
                digest: None,
                verdicts: BTreeMap::new(),
                drained: at.map(|at| (target.to_string(), at)).into_iter().collect(),
            };
            let body = serde_json::to_vec(&push).unwrap();
            let sig = secret().sign(&body);
            (body, sig)
        };
        // Nobody heard: both others may still answer with it.
        assert_eq!(
            t.safe_everywhere(target, 100, s(1)),
            Err(vec!["b".into(), "c".into()])
        );
        deliver(&mut t, &drained("b", 1, Some(130)), s(1)).unwrap();
        deliver(&mut t, &drained("c", 1, None), s(1)).unwrap();
        assert_eq!(t.safe_everywhere(target, 100, s(2)), Err(vec!["c".into()]));
        // All three: the latest time, whichever node has it.
        deliver(&mut t, &drained("c", 2, Some(120)), s(2)).unwrap();
        assert_eq!(t.safe_everywhere(target, 100, s(3)), Ok(130));
        assert_eq!(t.safe_everywhere(target, 200, s(3)), Ok(200));
        // A report past max-age no longer counts: that node is unknown.
        deliver(&mut t, &drained("c", 3, Some(120)), s(3) + MAX_AGE).unwrap();
        assert_eq!(
            t.safe_everywhere(target, 100, s(2) + MAX_AGE + s(1)),
            Err(vec!["b".into()])
        );
        // Another target is nobody's drain.
        assert!(t.safe_everywhere("www. endpoint f", 100, s(3)).is_err());
    }

    #[test]
    fn forged_stale_replayed_and_foreign_pushes_are_refused() {
        let mut t = table(0);
        let s = Duration::from_secs;
        let good = push("b", 5, T0, true, "d");
        // Unsigned, or signed with another secret, or a body changed after
        // signing.
        assert_eq!(
            t.receive(&secret(), &good.0, None, T0, s(1)),
            Err(Refusal::BadSignature)
        );
        let forged = Secret::new(*b"not the secret!!").sign(&good.0);
        assert_eq!(
            t.receive(&secret(), &good.0, Some(forged.as_bytes()), T0, s(1)),
            Err(Refusal::BadSignature)
        );
        let mut tampered = good.0.clone();
        let at = tampered.len() - 5;
        tampered[at] = b'f';
        assert_eq!(
            t.receive(&secret(), &tampered, Some(good.1.as_bytes()), T0, s(1)),
            Err(Refusal::BadSignature)
        );
        // Signed but from this node, or from a stranger.
        assert_eq!(
            deliver(&mut t, &push("a", 9, T0, true, "d"), s(1)),
            Err(Refusal::UnknownNode)
        );
        assert_eq!(
            deliver(&mut t, &push("z", 9, T0, true, "d"), s(1)),
            Err(Refusal::UnknownNode)
        );
        // Timestamps just within and just beyond max-age, either way.
        let limit = MAX_AGE.as_millis() as u64;
        assert_eq!(
            deliver(&mut t, &push("b", 1, T0 - limit - 1, true, "d"), s(1)),
            Err(Refusal::Stale)
        );
        assert_eq!(
            deliver(&mut t, &push("b", 1, T0 + limit + 1, true, "d"), s(1)),
            Err(Refusal::Stale)
        );
        assert_eq!(
            deliver(&mut t, &push("b", 1, T0 - limit, true, "d"), s(1)),
            Ok(())
        );
        assert_eq!(deliver(&mut t, &good, s(1)), Ok(()));
        // The same push again, and an older one: replays.
        assert_eq!(deliver(&mut t, &good, s(2)), Err(Refusal::Replay));
        assert_eq!(
            deliver(&mut t, &push("b", 4, T0, true, "d"), s(2)),
            Err(Refusal::Replay)
        );
        assert_eq!(t.report("b").unwrap().seq, 5);
        assert_eq!(t.report("b").unwrap().received, s(1));
        assert_eq!(deliver(&mut t, &push("b", 6, T0, true, "d"), s(2)), Ok(()));
        assert_eq!(
            (Refusal::BadSignature.status(), Refusal::Replay.status()),
            (401, 409)
        );
    }

    #[test]
    fn verdicts_count_until_max_age_then_fallback() {
        use Health::{Down, Up};
        use HealthRule::{All, Any, Local, Quorum};
        let mut t = table(0);
        let s = Duration::from_secs;
        // Nothing heard yet: fallback, the local verdict rules.
        assert!(t.in_fallback(s(0)));
        assert_eq!(t.health(KEY, Quorum, Down, s(0)), Down);

        deliver(&mut t, &push("b", 1, T0, true, "d"), s(100)).unwrap();
        // One of two others is half: enough.
        assert!(!t.in_fallback(s(100)));
        // Local down, b up: 1 of 2 is no quorum; any says up.
        assert_eq!(t.health(KEY, Quorum, Down, s(100)), Down);
        assert_eq!(t.health(KEY, Any, Down, s(100)), Up);
        assert_eq!(t.health(KEY, Local, Down, s(100)), Down);
        deliver(&mut t, &push("c", 1, T0, true, "d"), s(105)).unwrap();
        assert_eq!(t.health(KEY, Quorum, Down, s(105)), Up);
        assert_eq!(t.health(KEY, All, Down, s(105)), Down);
        // A key a peer did not report: only the reporters count.
        assert_eq!(t.health("other", All, Up, s(105)), Up);

        // b's push expires at exactly max-age after it arrived.
        assert_eq!(t.fresh(s(110)).count(), 2);
        assert_eq!(t.fresh(s(111)).count(), 1);
        // Only c counts now: this node down and c up is 1 of 2, no quorum.
        assert_eq!(t.health(KEY, Quorum, Down, s(111)), Down);
        assert!(!t.in_fallback(s(115)));
        // Both expired: fallback to local, whatever the rule.
        assert!(t.in_fallback(s(116)));
        assert_eq!(t.health(KEY, Any, Down, s(116)), Down);
        assert_eq!(t.health(KEY, All, Up, s(116)), Up);
    }

    #[test]
    fn fallback_threshold_is_half_of_the_other_nodes() {
        let s = Duration::from_secs;
        let nodes: Vec<String> = (0..5).map(|i| format!("n{i}")).collect();
        let mut t = PeerTable::new(nodes, 0, MAX_AGE);
        deliver(&mut t, &push("n1", 1, T0, true, "d"), s(1)).unwrap();
        // 1 of 4 others: fewer than half.
        assert!(t.in_fallback(s(1)));
        deliver(&mut t, &push("n2", 1, T0, true, "d"), s(1)).unwrap();
        assert!(!t.in_fallback(s(1)));
        // A single node is never in fallback.
        assert!(!PeerTable::new(vec!["solo".into()], 0, MAX_AGE).in_fallback(s(1)));
    }

    #[test]
    fn digest_disagreement_is_flagged_against_the_majority() {
        let s = Duration::from_secs;
        let mut t = table(0);
        assert!(!t.digest_differs(Some("x"), s(1)));
        deliver(&mut t, &push("b", 1, T0, true, "y"), s(1)).unwrap();
        // Two nodes disagree: neither has a majority.
        assert!(t.digest_differs(Some("x"), s(1)));
        assert!(!t.digest_differs(Some("y"), s(1)));
        deliver(&mut t, &push("c", 1, T0, true, "x"), s(1)).unwrap();
        assert!(!t.digest_differs(Some("x"), s(1)));
        deliver(&mut t, &push("c", 2, T0, true, "y"), s(2)).unwrap();
        assert!(t.digest_differs(Some("x"), s(2)));
        assert!(!t.digest_differs(None, s(2)));
        // Expired digests do not count.
        assert!(!t.digest_differs(Some("x"), s(20)));
    }
}
