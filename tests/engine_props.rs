//! Random and mutated packets against the answer engine: it must never
//! panic, and everything it sends must be a well-formed DNS response.
//! Each packet is also answered inside an `engine::Batch`, as in a UDP
//! worker, which must take anything too and answer exactly as `respond`.

use std::path::Path;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use proptest::prelude::*;

use steerdns::config::Config;
use steerdns::cookie::CookieSecret;
use steerdns::engine::{respond, Batch, BatchNames, QueryContext, Transport, PREFETCH_BATCH};
use steerdns::snapshot::Snapshot;

fn snapshot() -> &'static Snapshot {
    static SNAP: std::sync::OnceLock<Snapshot> = std::sync::OnceLock::new();
    SNAP.get_or_init(|| {
        let config = Config::from_file(Path::new("examples/basic/steerdns.toml")).unwrap();
        Snapshot::load(&config).unwrap()
    })
}

/// Valid queries to mutate: a spread of names and types, with and without EDNS.
fn seeds() -> Vec<Vec<u8>> {
    let names = [
        "www.example.com.",
        "x.apps.example.com.",
        "a.lab.example.com.",
        "nope.example.com.",
        "example.org.",
    ];
    let types = [
        RecordType::A,
        RecordType::ANY,
        RecordType::MX,
        RecordType::TXT,
        RecordType::NS,
    ];
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        for (j, t) in types.iter().enumerate() {
            let mut m = Message::new();
            m.set_id((i * 10 + j) as u16).set_recursion_desired(true);
            m.add_query(Query::query(Name::from_ascii(name).unwrap(), *t));
            if (i + j) % 2 == 0 {
                m.set_edns(Edns::new());
            }
            out.push(m.to_vec().unwrap());
        }
    }
    out
}

/// A client of the example config's server, over `transport`.
fn context(transport: Transport) -> QueryContext {
    QueryContext {
        client: "198.51.100.7:40000".parse().unwrap(),
        local: "127.0.0.1".parse().unwrap(),
        transport,
        now: 1_700_000_000,
        cookie_keys: CookieSecret::Shared([9; 16]).keys(0),
    }
}

/// Checks one exchange: no panic, and a decodable response that matches.
/// Returns the response, or `None` when the engine sent nothing (as it may
/// for a packet that is no query).
fn check(query: &[u8], transport: Transport) -> Option<Message> {
    let ctx = context(transport);
    let mut out = vec![0u8; 65535];
    // A batch reads its queries' names ahead, and a batch of two also
    // starts their loads: both must answer as `respond` does.
    let (mut alone, mut batched) = (vec![0u8; 65535], vec![0u8; 65535]);
    let mut names = BatchNames::new();
    let from_one = Batch::new(&[query], &mut names, snapshot()).respond(0, &ctx, &mut alone);
    let pair = [query, query];
    let from_pair = Batch::new(&pair, &mut names, snapshot()).respond(1, &ctx, &mut batched);
    let report = respond(query, &ctx, snapshot(), &mut out);
    assert_eq!(from_one, report, "a batch of one reports otherwise");
    assert_eq!(from_pair, report, "a batch reports otherwise");
    let len = report?.len;
    let reply = &out[..len];
    assert_eq!(&alone[..len], reply, "a batch of one answers otherwise");
    assert_eq!(&batched[..len], reply, "a batch answers otherwise");
    if transport == Transport::Udp {
        assert!(
            len <= 1232,
            "UDP reply of {len} bytes is over the configured maximum"
        );
    }
    let message =
        Message::from_vec(reply).unwrap_or_else(|e| panic!("malformed reply {reply:02x?}: {e}"));
    assert_eq!(message.id(), u16::from_be_bytes([query[0], query[1]]));
    assert_eq!(
        message.message_type(),
        hickory_proto::op::MessageType::Response
    );
    Some(message)
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
}

fn mutate(mut q: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        match *m {
            Mutation::Flip(at, bits) if !q.is_empty() => {
                let at = at % q.len();
                q[at] ^= bits;
            }
            Mutation::Truncate(at) => q.truncate(at % (q.len() + 1)),
            Mutation::Insert(at, byte) => q.insert(at % (q.len() + 1), byte),
            _ => {}
        }
    }
    q
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..).prop_map(|(a, b)| Mutation::Flip(a, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::Insert(a, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_break_the_engine(bytes in proptest::collection::vec(any::<u8>(), 0..600), tcp in any::<bool>()) {
        let _ = check(&bytes, if tcp { Transport::Tcp } else { Transport::Udp });
    }

    #[test]
    fn mutated_queries_never_break_the_engine(
        seed in 0usize..25,
        mutations in proptest::collection::vec(mutation(), 1..6),
        tcp in any::<bool>(),
    ) {
        let q = mutate(seeds()[seed].clone(), &mutations);
        let _ = check(&q, if tcp { Transport::Tcp } else { Transport::Udp });
    }
}

/// The seeds are well-formed queries: each gets a reply, over UDP and TCP,
/// that echoes its question and is no FORMERR. (Were every seed dropped,
/// the properties above would test only the engine's silence.)
#[test]
fn seeds_are_answered() {
    for (i, q) in seeds().iter().enumerate() {
        let sent = Message::from_vec(q).unwrap();
        for transport in [Transport::Udp, Transport::Tcp] {
            let reply = check(q, transport)
                .unwrap_or_else(|| panic!("seed {i} ({:?}) got no reply", sent.queries()));
            assert_eq!(reply.queries(), sent.queries(), "seed {i}");
            assert_ne!(
                reply.response_code(),
                hickory_proto::op::ResponseCode::FormErr,
                "seed {i} ({:?})",
                sent.queries()
            );
        }
    }
}

/// A batch longer than a `Batch` holds, mixing the seeds with broken
/// packets (empty, header only, a name running off the end): it takes the
/// first PREFETCH_BATCH, answers each as `respond` does, and nothing past
/// them.
#[test]
fn batches_take_any_queries() {
    let seeds = seeds();
    let mut batch: Vec<&[u8]> = Vec::new();
    let broken: [&[u8]; 3] = [
        b"",
        &[0; 12],
        &[0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, b'a'],
    ];
    for (i, seed) in seeds.iter().enumerate() {
        batch.push(seed);
        batch.push(broken[i % broken.len()]);
    }
    assert!(batch.len() > PREFETCH_BATCH);
    let ctx = context(Transport::Udp);
    let (mut a, mut b) = (vec![0u8; 65535], vec![0u8; 65535]);
    let mut names = BatchNames::new();
    let taken = Batch::new(&batch, &mut names, snapshot());
    let mut answered = 0;
    for (i, q) in batch.iter().enumerate() {
        let from_batch = taken.respond(i, &ctx, &mut a);
        if i >= PREFETCH_BATCH {
            assert_eq!(from_batch, None, "query {i} is past the batch");
            continue;
        }
        let report = respond(q, &ctx, snapshot(), &mut b);
        assert_eq!(from_batch, report, "query {i}");
        if let Some(r) = report {
            assert_eq!(a[..r.len], b[..r.len], "query {i}");
            answered += 1;
        }
    }
    // The seeds among them, and the header-only packet (FORMERR).
    assert!(answered >= PREFETCH_BATCH / 2, "{answered} answered");
    for (i, q) in seeds.iter().enumerate() {
        assert!(check(q, Transport::Udp).is_some(), "seed {i} got no reply");
    }
}
