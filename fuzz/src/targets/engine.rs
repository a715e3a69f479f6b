//! Any bytes as a query, answered by `engine::respond` over UDP and over
//! TCP from the fixture snapshot ([`crate::fixture`]), and inside an
//! `engine::Batch`, as the UDP workers answer, which must give the same
//! reply byte for byte.
//!
//! Beyond "no panic", every exchange must hold what RFC 1035, RFC 6891 and
//! RFC 8906 promise a client:
//!
//! * no reply exactly when the message has no header or QR is set;
//! * a reply passes the strict checker and hickory-proto's decoder;
//! * same ID, QR set, same opcode; the question, when echoed, byte for byte
//!   the query's, and at most one;
//! * over UDP, no longer than 512 octets, or the client's EDNS size capped
//!   by the configured maximum; TC only over UDP;
//! * an unknown opcode gets NOTIMP, no records and no header bits but QR
//!   and the opcode;
//! * for a readable query: an OPT record exactly when the query had one,
//!   version 0, and for a standard EDNS 0 query its Client Subnet echoed
//!   with scope 0.

use std::cell::RefCell;

use crate::check::{self, Summary};
use crate::fixture;
use steerdns::engine::{respond, Batch, BatchNames, QueryContext, Transport};
use steerdns::wire::{ParseError, Query, OPTION_ECS};

thread_local! {
    /// The response buffer, as big as a TCP message; reused across inputs.
    static OUT: RefCell<Vec<u8>> = RefCell::new(vec![0; 65_535]);
    /// The same, for the answer given inside a batch.
    static BATCHED: RefCell<Vec<u8>> = RefCell::new(vec![0; 65_535]);
}

/// Runs one input; panics on a finding.
pub fn run(query: &[u8]) {
    let snap = fixture::snapshot();
    // Read ahead as a UDP worker's batch does (a batch of two also starts
    // the loads its answers need).
    let pair = [query, query];
    let mut names = BatchNames::new();
    let batch = Batch::new(&pair, &mut names, snap);
    OUT.with_borrow_mut(|out| {
        BATCHED.with_borrow_mut(|batched| {
            for ctx in fixture::contexts() {
                let report = respond(query, &ctx, snap, out);
                let from_batch = batch.respond(1, &ctx, batched);
                assert_eq!(from_batch, report, "a batch reports otherwise");
                let len = report.map(|r| r.len);
                if let Some(n) = len {
                    assert_eq!(batched[..n], out[..n], "a batch answers otherwise");
                }
                check_exchange(query, &ctx, len.map(|n| &out[..n]));
            }
        })
    });
}

/// NOTIMP (RFC 1035 §4.1.1).
const NOTIMP: u16 = 4;

/// Checks one reply (or its absence) against the query it answers.
fn check_exchange(query: &[u8], ctx: &QueryContext, reply: Option<&[u8]>) {
    let must_drop = query.len() < 12 || query[2] & 0x80 != 0;
    let reply = match (reply, must_drop) {
        (None, true) => return,
        (None, false) => panic!("no reply to a message with a header and QR clear"),
        (Some(r), true) => panic!("a reply ({r:02x?}) to a message that must be dropped"),
        (Some(r), false) => r,
    };
    let s = check::check_response(reply)
        .unwrap_or_else(|e| panic!("malformed reply, {e}: {reply:02x?}"));
    if let Err(e) = hickory_proto::op::Message::from_vec(reply) {
        panic!("hickory-proto cannot decode the reply ({e}): {reply:02x?}");
    }

    assert_eq!(s.id, u16::from_be_bytes([query[0], query[1]]), "reply ID");
    assert!(s.flags & 0x8000 != 0, "QR is clear in the reply");
    assert_eq!(s.opcode(), (query[2] >> 3) & 0xf, "opcode not echoed");
    check_question(query, &s);

    let parsed = Query::parse(query).ok();
    if ctx.transport == Transport::Udp {
        let limit = parsed
            .and_then(|q| q.edns)
            .map_or(512, |e| e.udp_payload.min(fixture::MAX_UDP_PAYLOAD));
        assert!(
            reply.len() <= usize::from(limit),
            "UDP reply of {} octets over the limit of {limit}",
            reply.len()
        );
    } else {
        assert!(s.flags & 0x0200 == 0, "TC set over TCP");
    }

    if s.opcode() != 0 {
        // RFC 8906 §3.1.5, as ISC's compliance test checks it: NOTIMP, no
        // records, and no header bit but QR and the opcode.
        assert_eq!(s.rcode(), NOTIMP, "rcode for an unknown opcode");
        assert_eq!(s.counts[1..3], [0, 0], "records in a NOTIMP reply");
        assert_eq!(s.flags & 0x07f0, 0, "header bits set in a NOTIMP reply");
    }
    let Some(q) = parsed else {
        // No question but an OPT record: still OPT back (RFC 6891 §7).
        if let Err(ParseError::NoQuestion(Some(_))) = Query::parse(query) {
            assert!(s.opt.is_some(), "no OPT in the reply to an EDNS query");
        }
        return;
    };
    assert_eq!(
        q.edns.is_some(),
        s.opt.is_some(),
        "OPT in the reply differs from OPT in the query (RFC 6891 §6.1.1)"
    );
    let (Some(edns), Some(opt)) = (q.edns, &s.opt) else {
        return;
    };
    assert_eq!(opt.version, 0, "reply OPT version");
    if edns.version != 0 || s.opcode() != 0 {
        return;
    }
    let echoed: Vec<&Vec<u8>> = opt
        .options
        .iter()
        .filter(|(code, _)| *code == OPTION_ECS)
        .map(|(_, data)| data)
        .collect();
    match edns.client_subnet {
        None => assert!(echoed.is_empty(), "ECS in the reply, none in the query"),
        Some(subnet) => {
            let octets = usize::from(subnet.source_prefix).div_ceil(8);
            let (family, address) = match subnet.address {
                std::net::IpAddr::V4(a) => (1u8, a.octets().to_vec()),
                std::net::IpAddr::V6(a) => (2u8, a.octets().to_vec()),
            };
            let mut want = vec![0, family, subnet.source_prefix, 0];
            want.extend_from_slice(&address[..octets]);
            assert_eq!(echoed, [&want], "ECS not echoed with scope 0");
        }
    }
}

/// The reply has at most one question, and if it has one, it is the
/// query's, octet for octet (case included).
fn check_question(query: &[u8], s: &Summary) {
    assert!(s.counts[0] <= 1, "{} questions in the reply", s.counts[0]);
    let Some((name, qtype, qclass)) = &s.question else {
        return;
    };
    let mut sent = query.get(12..).unwrap_or_default();
    let echoed_name = sent.get(..name.len());
    assert_eq!(
        echoed_name,
        Some(&name[..]),
        "question name not the query's"
    );
    sent = &sent[name.len()..];
    let fixed = [qtype.to_be_bytes(), qclass.to_be_bytes()].concat();
    assert_eq!(sent.get(..4), Some(&fixed[..]), "question type or class");
}
