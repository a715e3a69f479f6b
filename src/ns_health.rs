//! Health-aware NS answers: the apex NS RRset of a zone lists only the
//! name servers seen alive.
//!
//! A zone with `ns-health = "SERVICE"` names a service whose endpoints (or,
//! for a `self` service, whose peers) are the nodes serving the zone. At
//! load, each record of the apex NS RRset is tied to the health slots of
//! the node addresses its target's in-zone glue carries; at answer time an
//! NS record is kept while any of those addresses is serving (probe up, not
//! drained), and its glue goes with it. When no record would be kept, every
//! record is (fail open, as `crate::health` does): an empty NS RRset is not
//! a valid apex (RFC 1034 §4.2.1), and "all down" more often means this
//! node's view is broken than that every node is.
//!
//! Only the child's copy changes. The parent's delegation NS RRset and glue
//! are not ours to filter; resolvers that rank the child's authoritative
//! NS RRset above the parent's referral data (RFC 2181 §5.4.1) use the
//! filtered set once they have fetched it, for as long as its TTL lets them
//! cache it: a short apex NS TTL makes them see a change sooner.
//!
//! The answer path reads one relaxed atomic per address and writes records
//! from the zone's pre-encoded bytes: no allocation, no lock.

use std::net::IpAddr;

use crate::health::{HealthId, HealthView};
use crate::name::Name;
use crate::policy::{Method, ServiceRule, Target};
use crate::rr::rtype;
use crate::zone::Zone;

/// Most NS records a filtered apex NS RRset may hold: one bit each in a
/// `u64` mask, so the answer path needs no buffer.
pub const MAX_RECORDS: usize = 64;

/// Every record kept: the mask of an unfiltered RRset.
pub const ALL: u64 = u64::MAX;

/// The compiled `ns-health` of one zone: for each record of its apex NS
/// RRset, in file order, the health slots of the node addresses its
/// target's glue holds.
#[derive(Debug, Clone)]
pub struct NsHealth {
    /// Per NS record, the node addresses its glue holds.
    records: Box<[Box<[AddressSlots]>]>,
}

/// The health slots of one node address: alive while both are serving.
#[derive(Debug, Clone, Copy)]
struct AddressSlots {
    /// The endpoint's own slot (its drain, or its whole-endpoint probe).
    node: HealthId,
    /// The address's probe; a `self` peer's one slot stands in both places.
    address: HealthId,
}

impl NsHealth {
    /// Ties the apex NS RRset of `zone` to the nodes of `rule`, the
    /// service `service` names. Refused, with what to fix, when the apex has
    /// more than [`MAX_RECORDS`] NS records, or an NS target has no glue in
    /// the zone, or none of its glue addresses is a node of the service:
    /// such a record could never be judged.
    pub fn compile(zone: &Zone, service: &Name, rule: &ServiceRule) -> Result<NsHealth, String> {
        let nodes = node_slots(rule);
        let ns = zone
            .node(zone.apex.wire())
            .and_then(|apex| apex.get(rtype::NS))
            .ok_or_else(|| format!("zone {} has no NS records at its apex", zone.apex))?;
        let count = ns.records().count();
        if count > MAX_RECORDS {
            return Err(format!(
                "the apex of {} has {count} NS records, more than the {MAX_RECORDS} ns-health can filter",
                zone.apex
            ));
        }
        let mut records = Vec::with_capacity(count);
        for target in ns.records() {
            let name = Name::from_wire_unchecked(target);
            let mut addresses = ns
                .additional()
                .filter(|(glue_of, _)| *glue_of == target)
                .flat_map(|(_, set)| set.records().filter_map(address_of))
                .peekable();
            if addresses.peek().is_none() {
                return Err(format!(
                    "NS {name} of {} has no address records in the zone (glue), so its health cannot be told",
                    zone.apex
                ));
            }
            let slots: Box<[AddressSlots]> = addresses
                .flat_map(|ip| nodes.iter().filter(move |(a, _)| *a == ip))
                .map(|&(_, slots)| slots)
                .collect();
            if slots.is_empty() {
                return Err(format!(
                    "no address of NS {name} is a node of service {service}"
                ));
            }
            records.push(slots);
        }
        Ok(NsHealth {
            records: records.into(),
        })
    }

    /// The records to answer, one bit per record in file order (bit 0 the
    /// first): those with a serving address, or [`ALL`] when none has one.
    #[inline]
    pub fn kept(&self, health: &HealthView) -> u64 {
        let mut mask = 0u64;
        for (i, slots) in self.records.iter().enumerate() {
            if slots
                .iter()
                .any(|s| health.is_serving(s.node) && health.is_serving(s.address))
            {
                mask |= 1 << i;
            }
        }
        if mask == 0 {
            ALL
        } else {
            mask
        }
    }
}

/// Every node address of a service with the slots that tell whether it is
/// alive: an endpoint's addresses (endpoint slot and address slot), or a
/// `self` service's peers and, for this node's own addresses, its local
/// payload slot.
fn node_slots(rule: &ServiceRule) -> Vec<(IpAddr, AddressSlots)> {
    match &rule.method {
        Method::SelfAddress(s) => s
            .peers
            .iter()
            .map(|p| (p.address, AddressSlots::one(p.health)))
            .chain(s.own.iter().map(|&a| (a, AddressSlots::one(s.local))))
            .collect(),
        _ => rule
            .endpoints
            .iter()
            .flat_map(|e| match &e.target {
                Target::Addresses(list) => list
                    .iter()
                    .map(|a| {
                        let slots = AddressSlots {
                            node: e.slot,
                            address: a.slot,
                        };
                        (a.ip, slots)
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect(),
    }
}

impl AddressSlots {
    /// An address judged by one slot alone.
    fn one(slot: HealthId) -> AddressSlots {
        AddressSlots {
            node: slot,
            address: slot,
        }
    }
}

/// The address an A or AAAA RDATA holds.
fn address_of(rdata: &[u8]) -> Option<IpAddr> {
    match rdata.len() {
        4 => <[u8; 4]>::try_from(rdata).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(rdata).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use hickory_proto::op::Message;
    use hickory_proto::rr::{Name as HName, RecordType};

    use super::*;
    use crate::config::Config;
    use crate::cookie::CookieKeys;
    use crate::engine::{respond, QueryContext, Transport};
    use crate::health::Health;
    use crate::snapshot::Snapshot;

    /// Three name servers, each with in-zone glue; ns2 has both families.
    const ZONE: &str = "$TTL 300\n\
        @ 60 SOA ns1 hostmaster 1 7200 900 1209600 60\n\
        @ 30 NS ns1\n@ 30 NS ns2\n@ 30 NS ns3\n@ TXT \"apex\"\n\
        ns1 A 192.0.2.1\nns2 A 192.0.2.2\nns2 AAAA 2001:db8::2\nns3 A 192.0.2.3\n";

    /// The nodes as an endpoint service, the zone filtered by it.
    const CONFIG: &str = "[server]\nlisten = [\"127.0.0.1:5353\"]\n\
        [[zone]]\norigin = \"ex.test.\"\nfile = \"ex.zone\"\nns-health = \"nodes.ex.test.\"\n\
        [[service]]\nname = \"nodes.ex.test.\"\nrouting = \"multivalue\"\nttl = 30\n\
        endpoints = [\n\
          { name = \"one\", addresses = [\"192.0.2.1\"] },\n\
          { name = \"two\", addresses = [\"192.0.2.2\", \"2001:db8::2\"] },\n\
          { name = \"three\", addresses = [\"192.0.2.3\"] },\n\
        ]\n";

    /// Loads `config` beside `zone`; the error text when it fails.
    fn load(config: &str, zone: &str) -> Result<Snapshot, String> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("steerdns-ns-health-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ex.zone"), zone).unwrap();
        let path = dir.join("steerdns.toml");
        let loaded = Config::from_str(config, &path)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                let local: [IpAddr; 1] = ["192.0.2.1".parse().unwrap()];
                Snapshot::load_with(&c, &local).map_err(|e| e.to_string())
            });
        std::fs::remove_dir_all(&dir).unwrap();
        loaded.map_err(|e| e.replace(&dir.display().to_string(), "DIR"))
    }

    fn ask(snap: &Snapshot, qtype: RecordType, transport: Transport) -> Message {
        let mut m = Message::new();
        m.set_id(7);
        m.add_query(hickory_proto::op::Query::query(
            HName::from_ascii("ex.test.").unwrap(),
            qtype,
        ));
        let query = m.to_vec().unwrap();
        let ctx = QueryContext {
            client: "192.0.2.9:5300".parse::<SocketAddr>().unwrap(),
            local: "192.0.2.1".parse().unwrap(),
            transport,
            now: 0,
            cookie_keys: CookieKeys {
                current: [1; 16],
                previous: [2; 16],
            },
        };
        let mut out = vec![0u8; 65535];
        let report = respond(&query, &ctx, snap, &mut out).unwrap();
        Message::from_vec(&out[..report.len]).unwrap()
    }

    /// The NS targets answered, and the owners of the glue beside them.
    fn ns_and_glue(m: &Message) -> (Vec<String>, Vec<String>) {
        let ns = m
            .answers()
            .iter()
            .filter(|r| r.record_type() == RecordType::NS)
            .map(|r| r.data().to_string())
            .collect();
        let glue = m
            .additionals()
            .iter()
            .map(|r| format!("{} {}", r.name(), r.record_type()))
            .collect();
        (ns, glue)
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The health slot of endpoint `i` of the first service (no monitor:
    /// the endpoint and its addresses share it).
    fn endpoint_slot(snap: &Snapshot, i: usize) -> HealthId {
        snap.services[0].endpoints[i].slot
    }

    #[test]
    fn ns_answers_follow_node_health_and_fail_open() {
        let snap = load(CONFIG, ZONE).unwrap();
        let all = (
            strings(&["ns1.ex.test.", "ns2.ex.test.", "ns3.ex.test."]),
            strings(&[
                "ns1.ex.test. A",
                "ns2.ex.test. A",
                "ns2.ex.test. AAAA",
                "ns3.ex.test. A",
            ]),
        );
        let m = ask(&snap, RecordType::NS, Transport::Udp);
        assert_eq!(ns_and_glue(&m), all, "all up: the full set");
        assert!(m.authoritative());
        assert!(m.answers().iter().all(|r| r.ttl() == 30), "the zone's TTL");

        // ns2 down: its NS record and both its glue records go.
        snap.health
            .set_health(endpoint_slot(&snap, 1), Health::Down);
        let without_two = (
            strings(&["ns1.ex.test.", "ns3.ex.test."]),
            strings(&["ns1.ex.test. A", "ns3.ex.test. A"]),
        );
        for transport in [Transport::Udp, Transport::Tcp] {
            let m = ask(&snap, RecordType::NS, transport);
            assert_eq!(ns_and_glue(&m), without_two, "{transport:?}");
        }
        // ANY over TCP holds the same NS records, and the other sets whole.
        let any = ask(&snap, RecordType::ANY, Transport::Tcp);
        let types: Vec<String> = any
            .answers()
            .iter()
            .map(|r| format!("{} {}", r.record_type(), r.data()))
            .collect();
        assert_eq!(
            types,
            [
                "NS ns1.ex.test.",
                "NS ns3.ex.test.",
                "SOA ns1.ex.test. hostmaster.ex.test. 1 7200 900 1209600 60",
                "TXT apex"
            ]
        );

        // A drained node counts as down too; ns1 alone is left.
        snap.health.set_drained(endpoint_slot(&snap, 2), true);
        let m = ask(&snap, RecordType::NS, Transport::Udp);
        assert_eq!(
            ns_and_glue(&m),
            (strings(&["ns1.ex.test."]), strings(&["ns1.ex.test. A"]))
        );

        // Every node down: the full set, never an empty one.
        snap.health
            .set_health(endpoint_slot(&snap, 0), Health::Down);
        let m = ask(&snap, RecordType::NS, Transport::Udp);
        assert_eq!(ns_and_glue(&m), all, "all down: fail open");

        // Back up: the full set again.
        for i in 0..3 {
            snap.health.set_health(endpoint_slot(&snap, i), Health::Up);
        }
        snap.health.set_drained(endpoint_slot(&snap, 2), false);
        assert_eq!(
            ns_and_glue(&ask(&snap, RecordType::NS, Transport::Udp)),
            all
        );
    }

    #[test]
    fn ns_answers_follow_the_health_a_cluster_decides() {
        // With `[cluster]` and `health-rule = "quorum"` on the nodes'
        // service, the cluster writes the verdict answered with and this
        // node's probe only its own: the NS set follows the former.
        let snap = load(CONFIG, ZONE).unwrap();
        let two = endpoint_slot(&snap, 1);
        snap.health.set_answered(two, Health::Down);
        assert_eq!(snap.health.status(two).unwrap().local, Health::Up);
        let (ns, _) = ns_and_glue(&ask(&snap, RecordType::NS, Transport::Udp));
        assert_eq!(ns, strings(&["ns1.ex.test.", "ns3.ex.test."]));
        snap.health.set_answered(two, Health::Up);
        let (ns, _) = ns_and_glue(&ask(&snap, RecordType::NS, Transport::Udp));
        assert_eq!(ns.len(), 3);
    }

    #[test]
    fn a_node_with_two_addresses_is_alive_while_either_is() {
        // One probe per address: ns2 keeps its NS record while its IPv6
        // address answers, and loses it once both are down.
        let config = CONFIG.replace(
            "[[service]]",
            "[monitor.dns]\nprotocol = \"tcp\"\nport = 53\n[[service]]",
        );
        let config = config.replace("{ name = \"two\",", "{ name = \"two\", monitor = \"dns\",");
        let snap = load(&config, ZONE).unwrap();
        let two = &snap.services[0].endpoints[1];
        let Target::Addresses(list) = &two.target else {
            panic!("addresses")
        };
        assert_ne!(list[0].slot, list[1].slot, "one probe per address");
        snap.health.set_health(list[0].slot, Health::Down);
        let (ns, _) = ns_and_glue(&ask(&snap, RecordType::NS, Transport::Udp));
        assert!(ns.contains(&"ns2.ex.test.".to_string()), "{ns:?}");
        snap.health.set_health(list[1].slot, Health::Down);
        let (ns, _) = ns_and_glue(&ask(&snap, RecordType::NS, Transport::Udp));
        assert_eq!(ns, ["ns1.ex.test.", "ns3.ex.test."]);
    }

    #[test]
    fn a_self_service_judges_by_its_peers_and_local_payload() {
        let config = "[server]\nlisten = [\"127.0.0.1:5353\"]\n\
            [[zone]]\norigin = \"ex.test.\"\nfile = \"ex.zone\"\nns-health = \"*.ex.test.\"\n\
            [[service]]\nname = \"*.ex.test.\"\nrouting = \"self\"\nttl = 30\n\
            peers = [\"192.0.2.1\", \"192.0.2.2\", \"2001:db8::2\", \"192.0.2.3\"]\n";
        let snap = load(config, ZONE).unwrap();
        let Method::SelfAddress(rule) = &snap.services[0].method else {
            panic!("a self service")
        };
        // This node (192.0.2.1) judges itself by its local payload.
        snap.health.set_health(rule.local, Health::Down);
        snap.health.set_health(rule.peers[2].health, Health::Down);
        let (ns, _) = ns_and_glue(&ask(&snap, RecordType::NS, Transport::Udp));
        assert_eq!(ns, ["ns2.ex.test."]);
    }

    #[test]
    fn zones_without_ns_health_are_not_filtered() {
        let config = CONFIG.replace("ns-health = \"nodes.ex.test.\"\n", "");
        let snap = load(&config, ZONE).unwrap();
        for i in 0..3 {
            snap.health
                .set_health(endpoint_slot(&snap, i), Health::Down);
        }
        snap.health.set_health(endpoint_slot(&snap, 0), Health::Up);
        let (ns, _) = ns_and_glue(&ask(&snap, RecordType::NS, Transport::Udp));
        assert_eq!(ns.len(), 3);
    }

    #[test]
    fn config_mistakes_name_file_line_and_field() {
        let unknown = CONFIG.replace(
            "ns-health = \"nodes.ex.test.\"",
            "ns-health = \"no.ex.test.\"",
        );
        assert_eq!(
            load(&unknown, ZONE).unwrap_err(),
            "DIR/steerdns.toml:6: zone.ns-health: no [[service]] is named no.ex.test."
        );
        // An NS target outside the zone has no glue to judge it by.
        let outside = ZONE.replace("@ 30 NS ns3", "@ 30 NS ns.example.net.");
        assert_eq!(
            load(CONFIG, &outside).unwrap_err(),
            "DIR/steerdns.toml:6: zone.ns-health: NS ns.example.net. of ex.test. has no \
             address records in the zone (glue), so its health cannot be told"
        );
        // Glue that is no node of the service.
        let stranger = ZONE.replace("ns3 A 192.0.2.3", "ns3 A 192.0.2.99");
        assert_eq!(
            load(CONFIG, &stranger).unwrap_err(),
            "DIR/steerdns.toml:6: zone.ns-health: no address of NS ns3.ex.test. is a node \
             of service nodes.ex.test."
        );
        // A service without nodes.
        let at = CONFIG.find("routing").unwrap();
        let cname_only = format!(
            "{}routing = \"priority\"\nttl = 30\n\
             endpoints = [ {{ name = \"c\", priority = 1, cname = \"x.example.net.\" }} ]\n",
            &CONFIG[..at]
        );
        assert_eq!(
            load(&cname_only, ZONE).unwrap_err(),
            "DIR/steerdns.toml:6: zone.ns-health: service nodes.ex.test. has neither peers \
             nor endpoints with addresses"
        );
    }
}
