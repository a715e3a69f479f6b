//! `steerdns explain`: how the answer to one question is chosen, and why.
//!
//! The explanation runs the real thing twice: the engine answers a query
//! built from the question (so the records shown are exactly what a client
//! would get), and the service's routing policy decides again with an
//! [`Explanation`] tracer, which records every endpoint considered and the
//! rule that decided. Both read the same snapshot and health view, so they
//! cannot disagree. Offline every endpoint is up unless `--down` names it;
//! a running server's admin API can explain against its live health.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use crate::engine::{self, QueryContext, Transport};
use crate::health::Health;
use crate::name::{fmt_wire, Name};
use crate::policy::{self, Explanation, Family, Pick, StepKind};
use crate::rr::{rtype, type_to_string, CLASS_IN};
use crate::snapshot::Snapshot;
use crate::wire::{self, ClientSubnet, Writer};

/// What to explain.
#[derive(Debug, Clone)]
pub struct Question {
    /// The name asked.
    pub name: Name,
    /// The type asked.
    pub qtype: u16,
    /// Where the client is: an address (taken as the query's source) or
    /// a network with its length (sent as EDNS Client Subnet).
    pub client: IpAddr,
    /// The ECS source prefix, when the client is given as a network.
    pub client_prefix: Option<u8>,
    /// The local address the query arrives on (what `self` answers).
    pub via: IpAddr,
}

/// Why a question could not be explained.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// `--down` named no endpoint of any service.
    #[error("--down {0:?}: no endpoint of that name (write ENDPOINT or SERVICE/ENDPOINT)")]
    UnknownEndpoint(String),
    /// The client network is malformed.
    #[error("--client: prefix /{len} is longer than the address ({max} bits)")]
    BadPrefix {
        /// The length given.
        len: u8,
        /// The family's width.
        max: u8,
    },
    /// The engine dropped the query (cannot happen for a query built here).
    #[error("the engine gave no answer")]
    NoAnswer,
    /// The question as written cannot be asked.
    #[error("{0}")]
    BadQuestion(String),
}

impl Question {
    /// The question `name TYPE` from `client` (an address, or ADDR/LEN
    /// for EDNS Client Subnet) arriving on `via`, as people write it.
    pub fn from_text(
        name: &str,
        qtype: &str,
        client: &str,
        via: IpAddr,
    ) -> Result<Question, ExplainError> {
        let bad = |what: String| ExplainError::BadQuestion(what);
        let (address, prefix) = match client.split_once('/') {
            Some((a, len)) => (
                a,
                Some(
                    len.parse::<u8>()
                        .map_err(|_| bad(format!("client: bad prefix length {len:?}")))?,
                ),
            ),
            None => (client, None),
        };
        Ok(Question {
            name: Name::from_absolute_text(name)
                .map_err(|e| bad(format!("bad name {name:?}: {e}")))?,
            qtype: crate::rr::type_from_str(qtype)
                .ok_or_else(|| bad(format!("unknown type {qtype:?}")))?,
            client: address
                .parse()
                .map_err(|_| bad(format!("client: {address:?} is not an address")))?,
            client_prefix: prefix,
            via,
        })
    }
}

/// One family's decision, step by step.
#[derive(Debug, Clone, Serialize)]
pub struct FamilyReport {
    /// `A` or `AAAA`.
    pub family: &'static str,
    /// Every step, in order.
    pub steps: Vec<StepReport>,
    /// What was decided, in words.
    pub decision: String,
    /// ECS scope of the decision.
    pub scope: u8,
    /// TTL of the records.
    pub ttl: u32,
}

/// One step of a decision.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// The service being decided.
    pub service: String,
    /// The endpoint, when the step is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Nesting depth.
    pub depth: u8,
    /// What happened.
    pub text: String,
}

/// The whole explanation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The question, as `name TYPE`.
    pub question: String,
    /// The client, as given.
    pub client: String,
    /// Whether the client went as ECS.
    pub ecs: bool,
    /// The local address.
    pub via: String,
    /// The zone that answers, if any.
    pub zone: Option<String>,
    /// The service at the name, if any.
    pub service: Option<String>,
    /// The service's routing method.
    pub method: Option<&'static str>,
    /// The database record matched, for geographic and performance
    /// routing: its network and location as the file has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_record: Option<String>,
    /// The decisions, per family asked.
    pub decisions: Vec<FamilyReport>,
    /// The response code.
    pub rcode: String,
    /// The ECS scope sent back, when ECS was sent.
    pub scope: Option<u8>,
    /// Every record of the response, one line each as `dig` shows them.
    pub records: Vec<String>,
}

/// Marks endpoints down for a what-if: `ENDPOINT` (in every service that
/// has one of that name) or `SERVICE/ENDPOINT`.
pub fn mark_down(snap: &Snapshot, spec: &str) -> Result<(), ExplainError> {
    let (service, endpoint) = match spec.rsplit_once('/') {
        Some((s, e)) => {
            let name = Name::from_absolute_text(s)
                .map_err(|_| ExplainError::UnknownEndpoint(spec.to_string()))?;
            (Some(name.to_lowercase()), e)
        }
        None => (None, spec),
    };
    let mut found = false;
    for rule in snap.services.iter() {
        if service.as_ref().is_some_and(|s| *s != rule.name) {
            continue;
        }
        for e in rule.endpoints.iter().filter(|e| &*e.name == endpoint) {
            found = true;
            snap.health.set_health(e.slot, Health::Down);
            if let policy::Target::Addresses(list) = &e.target {
                for a in list.iter() {
                    snap.health.set_health(a.slot, Health::Down);
                }
            }
        }
    }
    found
        .then_some(())
        .ok_or_else(|| ExplainError::UnknownEndpoint(spec.to_string()))
}

/// Explains the answer to `q` from `snap`.
pub fn explain(snap: &Snapshot, q: &Question) -> Result<Report, ExplainError> {
    let ecs = match q.client_prefix {
        Some(len) => {
            let max = crate::prefix::width(q.client);
            if len > max {
                return Err(ExplainError::BadPrefix { len, max });
            }
            Some(ClientSubnet {
                address: crate::prefix::Prefix::around(q.client, len).network,
                source_prefix: len,
            })
        }
        None => None,
    };
    let ctx = QueryContext {
        client: SocketAddr::new(q.client, 53000),
        local: q.via,
        transport: Transport::Tcp,
        now: 0,
        cookie_keys: crate::cookie::CookieSecret::Shared([0; 16]).keys(0),
    };
    let mut query = [0u8; 512];
    let mut w = Writer::new(&mut query, 512);
    // Fits: a name is at most 255 octets.
    let _ = w.start(0x5eed, 0, Some((q.name.wire(), q.qtype, CLASS_IN)));
    let _ = w.opt(1232, 0, false, ecs.map(|s| (s, 0)), None, None);
    let len = w.finish();
    let mut out = vec![0u8; 65_535];
    let n = engine::respond(&query[..len], &ctx, snap, &mut out)
        .ok_or(ExplainError::NoAnswer)?
        .len;
    let response = &out[..n];

    let lower = q.name.to_lowercase();
    let zone = snap.zones.find(lower.wire()).map(|z| z.apex.to_string());
    let mut report = Report {
        question: format!("{} {}", q.name, type_to_string(q.qtype)),
        client: match q.client_prefix {
            Some(len) => format!("{}/{len}", q.client),
            None => q.client.to_string(),
        },
        ecs: ecs.is_some(),
        via: q.via.to_string(),
        zone,
        service: None,
        method: None,
        database_record: None,
        decisions: Vec::new(),
        rcode: String::new(),
        scope: None,
        records: Vec::new(),
    };
    if let Some(index) = engine::service_at(snap, lower.wire()) {
        let rule = &snap.services[index as usize];
        report.service = Some(rule.name.to_string());
        report.method = Some(rule.method.name());
        let geo = match &rule.method {
            policy::Method::Geographic(g) => Some(g.chains().geo()),
            policy::Method::Performance(p) => Some(p.chains().geo()),
            _ => None,
        };
        if let Some(geo) = geo {
            let client = ecs.map_or(q.client, |s| s.address);
            report.database_record = Some(match crate::geo::record_of(&geo.path, client) {
                Ok((network, location)) => format!("{network}: {location}"),
                Err(e) => format!("unreadable now: {e}"),
            });
        }
        let input = engine::policy_input(&ctx, ecs, 0);
        let families: &[Family] = match q.qtype {
            rtype::A => &[Family::V4],
            rtype::AAAA => &[Family::V6],
            rtype::ANY => &[Family::V4, Family::V6],
            _ => &[],
        };
        for &family in families {
            let mut trace = Explanation::default();
            let d = policy::decide(
                &snap.services,
                index,
                &input,
                &snap.health,
                family,
                &mut trace,
            );
            report.decisions.push(FamilyReport {
                family: if family == Family::V4 { "A" } else { "AAAA" },
                steps: trace
                    .steps
                    .iter()
                    .map(|s| StepReport {
                        service: snap.services[s.service as usize].name.to_string(),
                        endpoint: match &s.kind {
                            StepKind::Endpoint(e) => Some(e.to_string()),
                            _ => None,
                        },
                        depth: s.depth,
                        text: s.text.clone(),
                    })
                    .collect(),
                decision: describe(snap, &d.pick),
                scope: d.scope,
                ttl: d.ttl,
            });
        }
    }
    decode(response, &mut report);
    Ok(report)
}

/// A pick in words.
fn describe(snap: &Snapshot, pick: &Pick) -> String {
    match *pick {
        Pick::Endpoints {
            service, set, all, ..
        } => {
            let rule = &snap.services[service as usize];
            let names: Vec<&str> = set.iter().map(|i| &*rule.endpoints[i].name).collect();
            let open = if all { " (failing open: none fit)" } else { "" };
            format!("{} endpoint(s) [{}]{open}", rule.name, names.join(", "))
        }
        Pick::Local { address: a, .. } => format!("this node's address {a}"),
        Pick::Peers { .. } => "the healthy peers".into(),
        Pick::Refuse => "REFUSED".into(),
        Pick::ServFail => "SERVFAIL".into(),
        Pick::Nothing => "nothing of this family (NODATA)".into(),
    }
}

/// Reads the response's rcode, ECS scope and records into `report`.
fn decode(msg: &[u8], report: &mut Report) {
    let Some(header) = wire::Header::parse(msg) else {
        return;
    };
    let mut rcode = header.flags & 0x000f;
    let counts = [6, 8, 10].map(|at| usize::from(u16::from_be_bytes([msg[at], msg[at + 1]])));
    let mut pos = 12;
    // Skip the question.
    if let Some(end) = skip_name(msg, pos) {
        pos = end + 4;
    }
    for (section, &count) in ["answer", "authority", "additional"].iter().zip(&counts) {
        for _ in 0..count {
            let Some(name_end) = skip_name(msg, pos) else {
                return;
            };
            let Some(fixed) = msg.get(name_end..name_end + 10) else {
                return;
            };
            let rt = u16::from_be_bytes([fixed[0], fixed[1]]);
            let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
            let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
            let rdata_at = name_end + 10;
            let Some(rdata) = msg.get(rdata_at..rdata_at + rdlen) else {
                return;
            };
            if rt == rtype::OPT {
                rcode |= (ttl >> 20) as u16 & 0x0ff0;
                report.scope = ecs_scope(rdata);
            } else {
                let owner = read_name(msg, pos);
                let data = rdata_text(msg, rt, rdata_at, rdata);
                report.records.push(format!(
                    "{owner}\t{ttl}\tIN\t{}\t{data}\t; {section}",
                    type_to_string(rt)
                ));
            }
            pos = rdata_at + rdlen;
        }
    }
    report.rcode = match rcode {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        other => format!("RCODE{other}"),
    };
}

/// The scope of the ECS option in an OPT record's data.
fn ecs_scope(mut rdata: &[u8]) -> Option<u8> {
    while let [c0, c1, l0, l1, rest @ ..] = rdata {
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let data = rest.get(..len)?;
        if u16::from_be_bytes([*c0, *c1]) == 8 {
            return data.get(3).copied();
        }
        rdata = &rest[len..];
    }
    None
}

/// The end of the (possibly compressed) name at `pos`.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    wire::skip_name(msg, &mut pos).ok().map(|()| pos)
}

/// The name at `pos` in presentation format, pointers followed (bounded).
fn read_name(msg: &[u8], mut pos: usize) -> String {
    let mut wire = Vec::new();
    for _ in 0..128 {
        let Some(&len) = msg.get(pos) else { break };
        if len & 0xc0 == 0xc0 {
            let Some(&low) = msg.get(pos + 1) else { break };
            pos = usize::from(len & 0x3f) << 8 | usize::from(low);
            continue;
        }
        let Some(label) = msg.get(pos..=pos + usize::from(len)) else {
            break;
        };
        wire.extend_from_slice(label);
        if len == 0 {
            break;
        }
        pos += 1 + usize::from(len);
    }
    let mut text = String::new();
    let _ = fmt_wire(&wire, &mut text);
    text
}

/// RDATA in presentation format for the types an answer here carries;
/// others in RFC 3597's generic form.
fn rdata_text(msg: &[u8], rt: u16, at: usize, rdata: &[u8]) -> String {
    match (rt, rdata.len()) {
        (rtype::A, 4) => IpAddr::from(<[u8; 4]>::try_from(rdata).expect("length 4")).to_string(),
        (rtype::AAAA, 16) => {
            IpAddr::from(<[u8; 16]>::try_from(rdata).expect("length 16")).to_string()
        }
        (rtype::CNAME | rtype::NS | rtype::PTR, _) => read_name(msg, at),
        (rtype::MX, 3..) => format!(
            "{} {}",
            u16::from_be_bytes([rdata[0], rdata[1]]),
            read_name(msg, at + 2)
        ),
        (rtype::SOA, _) => {
            let mname_end = skip_name(msg, at).unwrap_or(at);
            let rname_end = skip_name(msg, mname_end).unwrap_or(mname_end);
            let nums: Vec<String> = msg
                .get(rname_end..rname_end + 20)
                .unwrap_or(&[])
                .chunks(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]).to_string())
                .collect();
            format!(
                "{} {} {}",
                read_name(msg, at),
                read_name(msg, mname_end),
                nums.join(" ")
            )
        }
        _ => {
            let mut hex = String::new();
            for b in rdata {
                let _ = write!(hex, "{b:02x}");
            }
            format!("\\# {} {hex}", rdata.len())
        }
    }
}

impl Report {
    /// The explanation for people.
    pub fn to_text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "question  {}", self.question);
        let via = if self.ecs {
            "EDNS Client Subnet"
        } else {
            "source address"
        };
        let _ = writeln!(
            t,
            "client    {} ({via}), arriving on {}",
            self.client, self.via
        );
        let _ = writeln!(
            t,
            "zone      {}",
            self.zone.as_deref().unwrap_or("none (REFUSED)")
        );
        match (&self.service, self.method) {
            (Some(s), Some(m)) => {
                let _ = writeln!(t, "service   {s} ({m} routing)");
            }
            _ => {
                let _ = writeln!(t, "service   none: static records");
            }
        }
        if let Some(record) = &self.database_record {
            let _ = writeln!(t, "database  {record}");
        }
        for d in &self.decisions {
            let _ = writeln!(t, "\n{} decision:", d.family);
            for s in &d.steps {
                let indent = "  ".repeat(usize::from(s.depth) + 1);
                match &s.endpoint {
                    Some(e) => {
                        let _ = writeln!(t, "{indent}  endpoint {e}: {}", s.text);
                    }
                    None => {
                        let _ = writeln!(t, "{indent}{}", s.text);
                    }
                }
            }
            let _ = writeln!(
                t,
                "  => {}; ECS scope /{}, TTL {}",
                d.decision, d.scope, d.ttl
            );
        }
        let _ = writeln!(t, "\nresponse  {}", self.rcode);
        if let Some(scope) = self.scope {
            let _ = writeln!(t, "ECS scope /{scope}");
        }
        for r in &self.records {
            let _ = writeln!(t, "{r}");
        }
        t
    }
}
