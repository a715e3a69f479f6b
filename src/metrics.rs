//! Prometheus metrics: what the server answered, limited, probed and
//! loaded, encoded in the Prometheus text format (version 0.0.4) for the
//! admin listener's `/metrics`.
//!
//! The UDP path counts without sharing: each worker owns a cache-padded
//! [`QueryCounters`] that only its thread writes (a relaxed load and store,
//! no locked read-modify-write, no cache line bouncing between cores), and
//! a scrape sums the workers. Nothing is allocated per query. TCP, probes
//! and reloads run on tokio, where a shared atomic per event costs nothing
//! that matters; they use `prometheus-client`'s own counters.
//!
//! What a scrape reads from the current snapshot instead of counting:
//! endpoint health, zone serials and the configuration's age.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::engine::{Report, ResponseClass, Transport};
use crate::health::{Health, ProbeObserver};
use crate::rr::rtype;
use crate::rrl::RrlCounters;
use crate::snapshot::Snapshot;
use crate::wire::rcode;

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Query types counted by name; every other type is counted as `other`.
const QTYPES: [(u16, &str); 12] = [
    (rtype::A, "A"),
    (rtype::NS, "NS"),
    (rtype::CNAME, "CNAME"),
    (rtype::SOA, "SOA"),
    (rtype::PTR, "PTR"),
    (rtype::MX, "MX"),
    (rtype::TXT, "TXT"),
    (rtype::AAAA, "AAAA"),
    (rtype::SRV, "SRV"),
    (rtype::DS, "DS"),
    (rtype::CAA, "CAA"),
    (rtype::ANY, "ANY"),
];

/// Response codes counted by name; any other is `other`.
const RCODES: [(u16, &str); 8] = [
    (rcode::NOERROR, "NOERROR"),
    (rcode::FORMERR, "FORMERR"),
    (rcode::SERVFAIL, "SERVFAIL"),
    (rcode::NXDOMAIN, "NXDOMAIN"),
    (rcode::NOTIMP, "NOTIMP"),
    (rcode::REFUSED, "REFUSED"),
    (rcode::BADVERS, "BADVERS"),
    (rcode::BADCOOKIE, "BADCOOKIE"),
];

/// Services counted apart, per worker; answers of services past this
/// index are counted under `other`.
pub const COUNTED_SERVICES: usize = 1024;

/// Endpoints counted apart, per worker, by their numbers in the snapshot
/// ([`Snapshot::endpoint_number`]); answers with endpoints past this
/// number are counted under `other`.
pub const COUNTED_ENDPOINTS: usize = 4096;

/// Rows of the type × rcode table: the named ones and `other`.
const TYPE_ROWS: usize = QTYPES.len() + 1;
const RCODE_COLUMNS: usize = RCODES.len() + 1;

/// The row of each type below 258 (CAA is 257), `other`'s for the rest:
/// every answer is counted, and one load is cheaper than a search.
const ROW_OF_TYPE: [u8; 258] = index_of_codes(&QTYPES);

/// The column of each rcode below 24 (BADCOOKIE is 23), as [`ROW_OF_TYPE`].
const COLUMN_OF_RCODE: [u8; 24] = index_of_codes(&RCODES);

/// A table from code to its position in `codes`, `codes.len()` for codes
/// not listed.
const fn index_of_codes<const N: usize, const K: usize>(codes: &[(u16, &str); K]) -> [u8; N] {
    let mut table = [K as u8; N];
    let mut i = 0;
    while i < K {
        table[codes[i].0 as usize] = i as u8;
        i += 1;
    }
    table
}

/// The table cell of `code`: its entry in `table`, or the `other` cell.
fn cell_of(table: &[u8], code: u16, other: usize) -> usize {
    table
        .get(usize::from(code))
        .map_or(other, |&i| usize::from(i))
}

/// One transport's query counts: by type and rcode, with EDNS Client
/// Subnet, and truncated. Padded to its own cache lines, so workers on
/// different cores never write the same line.
#[derive(Debug)]
#[repr(align(128))]
pub struct QueryCounters {
    by_type_rcode: [[AtomicU64; RCODE_COLUMNS]; TYPE_ROWS],
    ecs: AtomicU64,
    truncated: AtomicU64,
    /// Answers by the index of the service that gave them (the last slot:
    /// any index past the others). Indexes are the snapshot's; the scrape
    /// turns them into names (see [`ServiceTotals`]).
    services: Box<[AtomicU64]>,
    /// Answers by the number of each endpoint they held (the last slot:
    /// any number past the others), named at scrape like `services`.
    endpoints: Box<[AtomicU64]>,
}

impl Default for QueryCounters {
    fn default() -> QueryCounters {
        QueryCounters {
            by_type_rcode: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            ecs: AtomicU64::new(0),
            truncated: AtomicU64::new(0),
            // 128 bytes of padding past the last slot: another worker's
            // array allocated next to this one shares no cache line with
            // a slot in use.
            services: padded_slots(COUNTED_SERVICES),
            endpoints: padded_slots(COUNTED_ENDPOINTS),
        }
    }
}

/// Counters `0..=last` and 128 bytes of padding past the last: another
/// worker's array allocated next to this one shares no cache line with a
/// slot in use.
fn padded_slots(last: usize) -> Box<[AtomicU64]> {
    (0..=last + 16).map(|_| AtomicU64::new(0)).collect()
}

impl QueryCounters {
    /// Counts one answered query. Only the owning worker thread may call
    /// it: a plain load and store is exact when one thread writes.
    pub fn count_owned(&self, report: &Report) {
        self.record(report, |c| {
            c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed)
        });
    }

    /// Counts one answered query from any thread (TCP, on tokio).
    pub fn count_shared(&self, report: &Report) {
        self.record(report, |c| {
            c.fetch_add(1, Ordering::Relaxed);
        });
    }

    fn record(&self, report: &Report, bump: impl Fn(&AtomicU64)) {
        let row = cell_of(&ROW_OF_TYPE, report.question_type, QTYPES.len());
        let column = cell_of(&COLUMN_OF_RCODE, report.rcode, RCODES.len());
        bump(&self.by_type_rcode[row][column]);
        if report.client_subnet {
            bump(&self.ecs);
        }
        if report.class == ResponseClass::Truncated {
            bump(&self.truncated);
        }
        if let Some(service) = report.service {
            let slot = (service as usize).min(COUNTED_SERVICES);
            bump(&self.services[slot]);
        }
        for number in report.endpoints.iter() {
            bump(&self.endpoints[number.min(COUNTED_ENDPOINTS)]);
        }
    }

    /// Adds `other`'s counts to this one (a scrape's sum over workers).
    fn add(&self, other: &QueryCounters) {
        let add = |to: &AtomicU64, from: &AtomicU64| {
            to.fetch_add(from.load(Ordering::Relaxed), Ordering::Relaxed);
        };
        for (to, from) in self.by_type_rcode.iter().zip(&other.by_type_rcode) {
            for (to, from) in to.iter().zip(from) {
                add(to, from);
            }
        }
        add(&self.ecs, &other.ecs);
        add(&self.truncated, &other.truncated);
        for (to, from) in self.services.iter().zip(other.services.iter()) {
            add(to, from);
        }
        for (to, from) in self.endpoints.iter().zip(other.endpoints.iter()) {
            add(to, from);
        }
    }
}

/// Answers per name across reloads, for services (named by the service)
/// and endpoints (by service and endpoint). The workers count by index
/// and never reset (only they write their counters); a reload may give an
/// index to another service or endpoint, so at each reload the counts so
/// far are credited to the names the old snapshot gave the indexes, and
/// the new names count from there.
#[derive(Debug, Default)]
struct NamedTotals<K> {
    /// Per index, the summed count already credited to a name.
    base: Vec<u64>,
    /// Credited answers per name (and `other`).
    by_name: BTreeMap<K, u64>,
}

/// Answers per service name.
type ServiceTotals = NamedTotals<String>;

/// Answers per (service name, endpoint name).
type EndpointTotals = NamedTotals<(String, String)>;

impl<K: Ord> NamedTotals<K> {
    /// Credits `counts` (summed over workers and transports, by index;
    /// the last index is the overflow) beyond the base to the names
    /// `names` gives the indexes, or to `other`, and moves the base up.
    fn credit(&mut self, counts: &[u64], names: &dyn Fn(usize) -> Option<K>, other: fn() -> K) {
        self.base.resize(counts.len(), 0);
        let overflow = counts.len().saturating_sub(1);
        for (i, (&count, base)) in counts.iter().zip(self.base.iter_mut()).enumerate() {
            if count > *base {
                let name = if i == overflow { None } else { names(i) };
                *self.by_name.entry(name.unwrap_or_else(other)).or_insert(0) += count - *base;
                *base = count;
            }
        }
    }
}

/// Labels of a probe's metrics: what it watches and where it connects.
type ProbeLabels = Vec<(&'static str, String)>;

/// What the health probes report: one result and one latency per probe,
/// and the verdicts that changed. Shared by every probe task.
#[derive(Debug)]
pub struct ProbeMetrics {
    results: Family<ProbeLabels, Counter>,
    latency: Family<ProbeLabels, Histogram>,
    changes: Family<ProbeLabels, Counter>,
}

impl ProbeMetrics {
    fn new() -> ProbeMetrics {
        ProbeMetrics {
            results: Family::default(),
            // 1 ms to about 16 s: loopback payloads to a timeout.
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 15))
            }),
            changes: Family::default(),
        }
    }
}

impl ProbeObserver for ProbeMetrics {
    fn observe(&self, of: &str, target: SocketAddr, ok: bool, took: Duration) {
        let labels = probe_labels(of, target);
        self.latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        let mut with_result = labels;
        with_result.push(("result", if ok { "ok" } else { "failed" }.into()));
        self.results.get_or_create(&with_result).inc();
    }

    fn changed(&self, of: &str, target: SocketAddr, to: Health) {
        let mut labels = probe_labels(of, target);
        labels.push(("to", to.to_string()));
        self.changes.get_or_create(&labels).inc();
    }
}

fn probe_labels(of: &str, target: SocketAddr) -> ProbeLabels {
    vec![("probe", of.to_string()), ("target", target.to_string())]
}

/// Every metric of one server, and the registry that encodes them. Made
/// by [`crate::server::Server::bind`] (which knows the UDP workers) and
/// reached through [`crate::server::Server::metrics`].
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    scraped: Arc<Scraped>,
    tcp_connections: Counter,
    tcp_refused: Family<Vec<(&'static str, &'static str)>, Counter>,
    reloads: Family<Vec<(&'static str, &'static str)>, Counter>,
    probes: Arc<ProbeMetrics>,
    cluster: Arc<crate::cluster::node::ClusterMetrics>,
}

/// What a scrape sums or reads rather than what is counted as it happens.
#[derive(Debug)]
struct Scraped {
    udp: Box<[QueryCounters]>,
    tcp: QueryCounters,
    rrl: Arc<RrlCounters>,
    snapshot: OnceLock<Arc<ArcSwap<Snapshot>>>,
    /// Unix seconds of the last successful load; 0 before the first.
    loaded_at: AtomicU64,
    /// Answers per service name up to the last reload (or scrape).
    services: Mutex<ServiceTotals>,
    /// Answers per endpoint up to the last reload (or scrape).
    endpoints: Mutex<EndpointTotals>,
}

impl Metrics {
    /// Metrics for `udp_workers` UDP workers, reading rate limiting's
    /// counts from `rrl`.
    pub fn new(udp_workers: usize, rrl: Arc<RrlCounters>) -> Metrics {
        let scraped = Arc::new(Scraped {
            udp: (0..udp_workers).map(|_| QueryCounters::default()).collect(),
            tcp: QueryCounters::default(),
            rrl,
            snapshot: OnceLock::new(),
            loaded_at: AtomicU64::new(0),
            services: Mutex::new(ServiceTotals::default()),
            endpoints: Mutex::new(EndpointTotals::default()),
        });
        let mut registry = Registry::with_prefix("steerdns");
        registry.register_collector(Box::new(scraped.clone()));
        let tcp_connections = Counter::default();
        registry.register(
            "tcp_connections",
            "TCP connections accepted",
            tcp_connections.clone(),
        );
        let tcp_refused = Family::default();
        registry.register(
            "tcp_refused",
            "TCP connections reset at a connection limit",
            tcp_refused.clone(),
        );
        let reloads = Family::default();
        registry.register(
            "reloads",
            "Configuration reloads by result",
            reloads.clone(),
        );
        let probes = Arc::new(ProbeMetrics::new());
        registry.register("probes", "Health probes by result", probes.results.clone());
        registry.register(
            "probe_duration_seconds",
            "How long health probes took",
            probes.latency.clone(),
        );
        registry.register(
            "probe_changes",
            "Health verdicts that changed",
            probes.changes.clone(),
        );
        let cluster = Arc::new(crate::cluster::node::ClusterMetrics::default());
        cluster.register(&mut registry);
        Metrics {
            registry,
            scraped,
            tcp_connections,
            tcp_refused,
            reloads,
            probes,
            cluster,
        }
    }

    /// The metrics in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// Worker `i`'s UDP query counters.
    pub fn udp_worker(&self, i: usize) -> Option<&QueryCounters> {
        self.scraped.udp.get(i)
    }

    /// The TCP query counters.
    pub fn tcp(&self) -> &QueryCounters {
        &self.scraped.tcp
    }

    /// Counts an accepted TCP connection.
    pub fn tcp_accepted(&self) {
        self.tcp_connections.inc();
    }

    /// Counts a TCP connection reset at a limit: `"total"` or `"client"`.
    pub fn tcp_limit_hit(&self, limit: &'static str) {
        self.tcp_refused
            .get_or_create(&vec![("limit", limit)])
            .inc();
    }

    /// Counts a reload and, when it succeeded, dates the configuration.
    pub fn reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads.get_or_create(&vec![("result", result)]).inc();
        if ok {
            self.loaded_now();
        }
    }

    /// Credits the answers counted so far to the services and endpoints
    /// `old` names, before a reload swaps in a snapshot whose indexes may
    /// name others.
    pub fn services_replaced(&self, old: &Snapshot) {
        self.scraped.credit_services(old);
    }

    /// Answers so far per service name (as `service_answers` reports
    /// them), for rates on the status page. Empty until
    /// [`Metrics::watch`] names the services.
    pub fn service_totals(&self) -> BTreeMap<String, u64> {
        let Some(snapshot) = self.scraped.snapshot.get() else {
            return BTreeMap::new();
        };
        self.scraped.credit_services(&snapshot.load());
        self.scraped
            .services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_name
            .clone()
    }

    /// Dates the configuration now (the first load at start).
    pub fn loaded_now(&self) {
        self.scraped.loaded_at.store(unix_now(), Ordering::Relaxed);
    }

    /// Reads endpoint health and zone serials from `snapshot` at each
    /// scrape; only the first call counts.
    pub fn watch(&self, snapshot: Arc<ArcSwap<Snapshot>>) {
        let _ = self.scraped.snapshot.set(snapshot);
    }

    /// Where the cluster counts pushes and shows fallback.
    pub fn cluster(&self) -> Arc<crate::cluster::node::ClusterMetrics> {
        self.cluster.clone()
    }

    /// The handle probe tasks report to.
    pub fn probes(&self) -> Arc<ProbeMetrics> {
        self.probes.clone()
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Scraped {
    /// Answers per index so far of the counters `of` picks (services or
    /// endpoints, `0..=last`), over every worker and TCP.
    fn counts(&self, last: usize, of: fn(&QueryCounters) -> &[AtomicU64]) -> Vec<u64> {
        (0..=last)
            .map(|i| {
                self.udp
                    .iter()
                    .chain([&self.tcp])
                    .map(|c| of(c)[i].load(Ordering::Relaxed))
                    .sum()
            })
            .collect()
    }

    /// Credits the service and endpoint counts so far to the names `snap`
    /// gives the indexes.
    fn credit_services(&self, snap: &Snapshot) {
        let counts = self.counts(COUNTED_SERVICES, |c| &c.services);
        let names = |i: usize| snap.services.get(i).map(|s| s.name.to_string());
        self.services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .credit(&counts, &names, || "other".to_string());

        let counts = self.counts(COUNTED_ENDPOINTS, |c| &c.endpoints);
        let names = |i: usize| {
            let (rule, endpoint) = snap.endpoint_at(u32::try_from(i).ok()?)?;
            Some((rule.name.to_string(), endpoint.name.to_string()))
        };
        self.endpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .credit(&counts, &names, || {
                ("other".to_string(), "other".to_string())
            });
    }
}

impl Collector for Scraped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let udp = QueryCounters::default();
        for worker in self.udp.iter() {
            udp.add(worker);
        }
        let transports = [(Transport::Udp, &udp), (Transport::Tcp, &self.tcp)];
        let name = |t: Transport| match t {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        };

        let counter = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "queries",
            "Queries answered, by transport, query type and response code",
            None,
            counter.metric_type(),
        )?;
        for (transport, counts) in transports {
            for (row, cells) in counts.by_type_rcode.iter().enumerate() {
                let qtype = QTYPES.get(row).map_or("other", |t| t.1);
                for (column, cell) in cells.iter().enumerate() {
                    let n = cell.load(Ordering::Relaxed);
                    if n == 0 {
                        continue;
                    }
                    let code = RCODES.get(column).map_or("other", |r| r.1);
                    let labels = [
                        ("transport", name(transport)),
                        ("type", qtype),
                        ("rcode", code),
                    ];
                    ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let per_transport = |encoder: &mut DescriptorEncoder,
                             metric: &str,
                             help: &str,
                             read: fn(&QueryCounters) -> u64|
         -> Result<(), std::fmt::Error> {
            let mut family =
                encoder.encode_descriptor(metric, help, None, counter.metric_type())?;
            for (transport, counts) in transports {
                let labels = [("transport", name(transport))];
                ConstCounter::new(read(counts)).encode(family.encode_family(&labels)?)?;
            }
            Ok(())
        };
        per_transport(
            &mut encoder,
            "ecs_queries",
            "Queries with an EDNS Client Subnet option",
            |c| c.ecs.load(Ordering::Relaxed),
        )?;
        per_transport(
            &mut encoder,
            "truncated",
            "Answers sent empty with TC=1 because they did not fit",
            |c| c.truncated.load(Ordering::Relaxed),
        )?;

        let rrl = self.rrl.totals();
        let mut family = encoder.encode_descriptor(
            "rrl_limited",
            "UDP responses over the rate limit, by what was done",
            None,
            counter.metric_type(),
        )?;
        for (action, n) in [
            ("dropped", rrl.limited - rrl.slipped),
            ("slipped", rrl.slipped),
        ] {
            ConstCounter::new(n).encode(family.encode_family(&[("action", action)])?)?;
        }

        let loaded_at = self.loaded_at.load(Ordering::Relaxed);
        if loaded_at > 0 {
            let age = ConstGauge::new(unix_now().saturating_sub(loaded_at) as i64);
            age.encode(encoder.encode_descriptor(
                "config_age_seconds",
                "Seconds since the configuration in use was loaded",
                None,
                age.metric_type(),
            )?)?;
        }
        if let Some(snapshot) = self.snapshot.get() {
            let snap = snapshot.load();
            self.credit_services(&snap);
            let totals = self.services.lock().unwrap_or_else(|e| e.into_inner());
            let mut family = encoder.encode_descriptor(
                "service_answers",
                "Queries answered at a service's name, by service",
                None,
                counter.metric_type(),
            )?;
            for (name, &n) in &totals.by_name {
                ConstCounter::new(n)
                    .encode(family.encode_family(&[("service", name.as_str())])?)?;
            }
            drop(totals);
            let totals = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
            let mut family = encoder.encode_descriptor(
                "endpoint_answers",
                "Answers that held an endpoint's records, by service and endpoint",
                None,
                counter.metric_type(),
            )?;
            for ((service, endpoint), &n) in &totals.by_name {
                let labels = [
                    ("service", service.as_str()),
                    ("endpoint", endpoint.as_str()),
                ];
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
            drop(totals);
            encode_snapshot(&mut encoder, &snap)?;
        }
        Ok(())
    }
}

/// Endpoint health and zone serials, as the snapshot holds them now.
fn encode_snapshot(
    encoder: &mut DescriptorEncoder,
    snap: &Snapshot,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(0i64);
    let mut family = encoder.encode_descriptor(
        "endpoint_up",
        "1 while a probe finds its target up and it is not drained, else 0",
        None,
        gauge.metric_type(),
    )?;
    let mut target = String::new();
    for plan in &snap.probes {
        let Some(status) = snap.health.status(plan.slot) else {
            continue;
        };
        target.clear();
        let _ = write!(target, "{}", plan.target);
        let labels = [("probe", plan.label.as_str()), ("target", target.as_str())];
        ConstGauge::new(i64::from(status.is_serving())).encode(family.encode_family(&labels)?)?;
    }
    let mut family = encoder.encode_descriptor(
        "zone_serial",
        "SOA serial of each zone served",
        None,
        gauge.metric_type(),
    )?;
    let mut apex = String::new();
    for zone in snap.zones.iter() {
        // SOA RDATA ends with five 32-bit fields, the serial first.
        let rdata: &[u8] = &zone.soa;
        let Some(serial) = rdata
            .len()
            .checked_sub(20)
            .and_then(|at| rdata.get(at..at + 4))
        else {
            continue;
        };
        let serial = u32::from_be_bytes([serial[0], serial[1], serial[2], serial[3]]);
        apex.clear();
        let _ = write!(apex, "{}", zone.apex);
        ConstGauge::new(i64::from(serial))
            .encode(family.encode_family(&[("zone", apex.as_str())])?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Account;
    use crate::rrl::Verdict;

    fn report(question_type: u16, rcode: u16, class: ResponseClass, ecs: bool) -> Report {
        Report {
            len: 12,
            rcode,
            class,
            qtype: question_type,
            question_type,
            client_subnet: ecs,
            scope: None,
            service: None,
            endpoints: crate::policy::EndpointSet::new(),
            account: Account::NONE,
            cookie: crate::cookie::CookieStatus::Absent,
            question_end: 12,
            opt_at: None,
        }
    }

    #[test]
    fn a_scrape_sums_the_workers() {
        let rrl = Arc::new(RrlCounters::new(2));
        let metrics = Metrics::new(2, rrl.clone());
        let answer = report(rtype::A, rcode::NOERROR, ResponseClass::Answer, false);
        metrics.udp_worker(0).unwrap().count_owned(&answer);
        metrics.udp_worker(1).unwrap().count_owned(&answer);
        metrics.udp_worker(1).unwrap().count_owned(&report(
            rtype::AAAA,
            rcode::NOERROR,
            ResponseClass::Truncated,
            true,
        ));
        metrics.udp_worker(0).unwrap().count_owned(&report(
            4242,
            rcode::REFUSED,
            ResponseClass::Error,
            true,
        ));
        metrics.tcp().count_shared(&answer);
        assert!(metrics.udp_worker(2).is_none());
        rrl.worker(0).unwrap().count(Verdict::Drop);
        rrl.worker(1).unwrap().count(Verdict::Slip);
        rrl.worker(1).unwrap().count(Verdict::Drop);
        metrics.tcp_limit_hit("client");
        metrics.reloaded(false);

        let text = metrics.encode();
        for line in [
            "steerdns_queries_total{transport=\"udp\",type=\"A\",rcode=\"NOERROR\"} 2",
            "steerdns_queries_total{transport=\"udp\",type=\"AAAA\",rcode=\"NOERROR\"} 1",
            "steerdns_queries_total{transport=\"udp\",type=\"other\",rcode=\"REFUSED\"} 1",
            "steerdns_queries_total{transport=\"tcp\",type=\"A\",rcode=\"NOERROR\"} 1",
            "steerdns_ecs_queries_total{transport=\"udp\"} 2",
            "steerdns_ecs_queries_total{transport=\"tcp\"} 0",
            "steerdns_truncated_total{transport=\"udp\"} 1",
            "steerdns_rrl_limited_total{action=\"dropped\"} 2",
            "steerdns_rrl_limited_total{action=\"slipped\"} 1",
            "steerdns_tcp_refused_total{limit=\"client\"} 1",
            "steerdns_reloads_total{result=\"failed\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        assert!(!text.contains("config_age_seconds"), "not loaded yet");
    }

    #[test]
    fn every_named_code_has_its_cell_and_the_rest_share_other() {
        for (table, codes) in [(&ROW_OF_TYPE[..], &QTYPES[..]), (&COLUMN_OF_RCODE, &RCODES)] {
            for (i, &(code, _)) in codes.iter().enumerate() {
                assert_eq!(cell_of(table, code, codes.len()), i, "code {code}");
            }
            for code in (0..=u16::MAX).filter(|c| codes.iter().all(|&(n, _)| n != *c)) {
                assert_eq!(
                    cell_of(table, code, codes.len()),
                    codes.len(),
                    "code {code}"
                );
            }
        }
    }

    #[test]
    fn service_answers_follow_names_across_reloads() {
        let mut totals = ServiceTotals::default();
        let before = |i: usize| ["a.test.", "b.test."].get(i).map(|n| n.to_string());
        let after = |i: usize| ["b.test.", "c.test."].get(i).map(|n| n.to_string());
        let mut counts = vec![0; COUNTED_SERVICES + 1];
        (counts[0], counts[1], counts[COUNTED_SERVICES]) = (5, 2, 1);
        totals.credit(&counts, &before, || "other".to_string());
        // After the reload index 0 is b and index 1 is c.
        (counts[0], counts[1]) = (8, 6);
        totals.credit(&counts, &after, || "other".to_string());
        let got: Vec<(&str, u64)> = totals
            .by_name
            .iter()
            .map(|(k, &v)| (k.as_str(), v))
            .collect();
        assert_eq!(
            got,
            [
                ("a.test.", 5),
                ("b.test.", 2 + 3),
                ("c.test.", 4),
                ("other", 1)
            ]
        );
    }
}
