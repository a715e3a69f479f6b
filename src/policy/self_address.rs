//! `self` routing: each node answers with the address the query arrived on.
//!
//! The poor man's global traffic manager: a name is delegated by NS to
//! several nodes, each answering with itself, so a resolver that cannot
//! reach one node asks the next NS and gets that node. While this node's
//! payload is down or drained it answers with its healthy peers, or REFUSED
//! so the resolver moves on. The answer depends on the local address, never
//! on the client, so the ECS scope is 0.

use std::net::IpAddr;

use super::{Chosen, Family, Pick, PolicyInput, Step, Trace};
use crate::health::{HealthId, HealthView};

/// What a `self` service does while this node's payload is down or drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenDown {
    /// Answer with the peers this node's probes see healthy. Resolvers get
    /// a working address from any node they reach, even a node whose own
    /// payload failed; the cost is probe traffic between nodes.
    Peers,
    /// Answer REFUSED, so the resolver tries the next NS (RFC 1034 §5.3.3
    /// lets resolvers move on). No cross-node probing needed, but every
    /// lookup that hits this node pays a retry.
    Refuse,
}

impl std::str::FromStr for WhenDown {
    type Err = String;

    fn from_str(s: &str) -> Result<WhenDown, String> {
        match s {
            "peers" => Ok(WhenDown::Peers),
            "refuse" => Ok(WhenDown::Refuse),
            other => Err(format!(
                "unknown value {other:?} (known: \"peers\", \"refuse\")"
            )),
        }
    }
}

/// Another node of the same service, as this node sees it.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The peer's address, answered when this node cannot serve.
    pub address: IpAddr,
    /// This node's probe of the peer's payload.
    pub health: HealthId,
}

/// A `self` service's state, compiled.
#[derive(Debug, Clone)]
pub struct SelfAddress {
    /// This node's payload for the service: its probe verdict and drain.
    pub local: HealthId,
    /// The other nodes (never this node's own addresses).
    pub peers: Box<[Peer]>,
    /// This node's own addresses among the configured peers, so an A query
    /// that arrived over IPv6 (or AAAA over IPv4) can still name this node.
    pub own: Box<[IpAddr]>,
    /// Behaviour while the local payload is down or drained.
    pub when_down: WhenDown,
}

/// What a `self` service answers for one address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfChoice {
    /// This node: one address.
    Local(IpAddr),
    /// The healthy peers of the family asked for
    /// ([`SelfAddress::healthy_peers`]).
    Peers,
    /// REFUSED, so the resolver asks another node.
    Refuse,
    /// No address of that family: NODATA.
    Nothing,
}

impl SelfAddress {
    /// Decides for the policy interface: [`SelfAddress::choose`], traced.
    pub(crate) fn decide<T: Trace>(
        &self,
        index: u32,
        input: &PolicyInput,
        health: &HealthView,
        family: Family,
        trace: &mut T,
    ) -> super::Choice {
        let choice = self.choose(health, input.local, family == Family::V6);
        trace.step(|| {
            let why = if health.is_serving(self.local) {
                "local payload up and not drained"
            } else {
                "local payload down or drained"
            };
            Step::note(index, format!("{why}: {choice:?}"))
        });
        let pick = match choice {
            SelfChoice::Local(address) => Pick::Local {
                address,
                slot: self.local,
            },
            SelfChoice::Peers => Pick::Peers { service: index },
            SelfChoice::Refuse => Pick::Refuse,
            SelfChoice::Nothing => Pick::Nothing,
        };
        super::Choice {
            pick: Chosen::Other(pick),
            scope: 0,
        }
    }

    /// Decides the answer for a query of one family (`v6` for AAAA) that
    /// arrived on `local`.
    pub fn choose(&self, health: &HealthView, local: IpAddr, v6: bool) -> SelfChoice {
        if health.is_serving(self.local) {
            return self
                .own_address(local, v6)
                .map_or(SelfChoice::Nothing, SelfChoice::Local);
        }
        let any_healthy_peer = self.peers.iter().any(|p| health.is_serving(p.health));
        match self.when_down {
            // Fail open: with every node down, answering beats silence, and
            // this node is as good a guess as any.
            _ if !any_healthy_peer => self
                .own_address(local, v6)
                .map_or(SelfChoice::Nothing, SelfChoice::Local),
            WhenDown::Refuse => SelfChoice::Refuse,
            WhenDown::Peers if self.healthy_peers(health, v6).next().is_some() => SelfChoice::Peers,
            // Healthy peers exist, but none of this family: NODATA sends the
            // resolver to the other family rather than to this dead node.
            WhenDown::Peers => SelfChoice::Nothing,
        }
    }

    /// The healthy peers of one family, in configured order.
    pub fn healthy_peers<'a>(
        &'a self,
        health: &'a HealthView,
        v6: bool,
    ) -> impl Iterator<Item = IpAddr> + 'a {
        self.peers
            .iter()
            .filter(move |p| p.address.is_ipv6() == v6 && health.is_serving(p.health))
            .map(|p| p.address)
    }

    /// This node's address of the family asked for: the one the query came
    /// to when the family matches, else this node's configured address of
    /// the other family.
    fn own_address(&self, local: IpAddr, v6: bool) -> Option<IpAddr> {
        if local.is_ipv6() == v6 && !local.is_unspecified() {
            return Some(local);
        }
        self.own.iter().copied().find(|a| a.is_ipv6() == v6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{Health, HealthViewBuilder};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A node 198.51.100.10 / 2001:db8:1::10 with one peer per family.
    fn rule(when_down: WhenDown) -> (SelfAddress, HealthView) {
        let mut b = HealthViewBuilder::default();
        let local = b.add(Health::Up).unwrap();
        let p4 = b.add(Health::Up).unwrap();
        let p6 = b.add(Health::Up).unwrap();
        let rule = SelfAddress {
            local,
            peers: vec![
                Peer {
                    address: ip("203.0.113.20"),
                    health: p4,
                },
                Peer {
                    address: ip("2001:db8:2::20"),
                    health: p6,
                },
            ]
            .into(),
            own: vec![ip("198.51.100.10"), ip("2001:db8:1::10")].into(),
            when_down,
        };
        (rule, b.build())
    }

    #[test]
    fn healthy_node_answers_with_its_own_address() {
        let (rule, view) = rule(WhenDown::Peers);
        assert_eq!(
            rule.choose(&view, ip("198.51.100.10"), false),
            SelfChoice::Local(ip("198.51.100.10"))
        );
        // AAAA asked over IPv4: this node's configured IPv6 address.
        assert_eq!(
            rule.choose(&view, ip("198.51.100.10"), true),
            SelfChoice::Local(ip("2001:db8:1::10"))
        );
    }

    #[test]
    fn payload_down_sends_resolvers_to_healthy_peers() {
        let (rule, view) = rule(WhenDown::Peers);
        view.set_health(rule.local, Health::Down);
        assert_eq!(
            rule.choose(&view, ip("198.51.100.10"), false),
            SelfChoice::Peers
        );
        assert_eq!(
            rule.healthy_peers(&view, false).collect::<Vec<_>>(),
            [ip("203.0.113.20")]
        );
        // The IPv4 peer dies too: only an IPv6 peer is left, so A is NODATA.
        view.set_health(rule.peers[0].health, Health::Down);
        assert_eq!(
            rule.choose(&view, ip("198.51.100.10"), false),
            SelfChoice::Nothing
        );
        // Everything down: fail open with our own address.
        view.set_health(rule.peers[1].health, Health::Down);
        assert_eq!(
            rule.choose(&view, ip("198.51.100.10"), false),
            SelfChoice::Local(ip("198.51.100.10"))
        );
    }

    #[test]
    fn drain_behaves_like_payload_down() {
        let (rule, view) = rule(WhenDown::Refuse);
        view.set_drained(rule.local, true);
        assert_eq!(
            rule.choose(&view, ip("198.51.100.10"), false),
            SelfChoice::Refuse
        );
        view.set_drained(rule.local, false);
        assert_eq!(
            rule.choose(&view, ip("198.51.100.10"), false),
            SelfChoice::Local(ip("198.51.100.10"))
        );
    }
}
