//! The answer path allocates nothing: a counting global allocator watches
//! the engine answer a mix of queries.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};

use steerdns::config::Config;
use steerdns::engine::{respond, QueryContext, Transport};
use steerdns::snapshot::Snapshot;

/// Counts every allocation in the process.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator; counting has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn query(name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(7).set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if edns {
        m.set_edns(Edns::new());
    }
    m.to_vec().unwrap()
}

#[test]
fn engine_answers_without_allocating() {
    let config = Config::from_file(Path::new("examples/basic/steerdns.toml")).unwrap();
    let snap = Snapshot::load(&config).unwrap();
    let mut queries = Vec::new();
    for edns in [false, true] {
        for (name, t) in [
            ("www.example.com.", RecordType::A),
            ("API.example.com.", RecordType::AAAA),
            ("x.y.apps.example.com.", RecordType::A),
            ("nope.example.com.", RecordType::A),
            ("www.example.com.", RecordType::MX),
            ("host.lab.example.com.", RecordType::A),
            ("example.com.", RecordType::ANY),
            ("example.com.", RecordType::MX),
            ("example.org.", RecordType::A),
        ] {
            queries.push(query(name, t, edns));
        }
    }
    let mut bad_version = query("www.example.com.", RecordType::A, true);
    let at = bad_version.len() - 5;
    bad_version[at] = 1;
    queries.push(bad_version);
    queries.push(vec![0; 12]);

    let ctx = QueryContext {
        client: "192.0.2.1:5300".parse().unwrap(),
        local: "127.0.0.1".parse().unwrap(),
        transport: Transport::Udp,
    };
    let mut out = vec![0u8; 4096];
    let mut answered = 0;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        for q in &queries {
            answered += respond(q, &ctx, &snap, &mut out).is_some() as usize;
        }
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(answered, 1000 * queries.len());
    assert_eq!(
        allocations, 0,
        "the engine allocated {allocations} times for {answered} queries"
    );
}
