//! Sampled query logging (`[log] query-sample = N`): each UDP worker logs
//! one query in N (client, question, rcode, ECS scope, service) without
//! ever waiting for the log.
//!
//! A worker counts down to its next sample itself (no shared counter, no
//! random numbers), copies what it logs into a fixed-size [`Sample`] and
//! offers it to a bounded channel with `try_send`: when the channel is
//! full the sample is dropped and counted, never waited for. The channel
//! is std's bounded (array) channel, whose slots are allocated when it is
//! made, so offering allocates nothing; and because the writer thread
//! polls it instead of sleeping in `recv`, a send never has a sleeping
//! receiver to wake, which is the one path in that channel that takes a
//! lock. The writer formats and logs on its own thread.
//!
//! With sampling off (the default) workers hold no sampler and do nothing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::engine::Report;
use crate::name::{copy_lowercase, MAX_NAME_LEN};
use crate::snapshot::Snapshot;
use crate::wire;

/// Samples waiting for the writer; more are dropped.
const QUEUE: usize = 4096;

/// How often the writer looks for samples.
const POLL: Duration = Duration::from_millis(50);

/// One logged query, copied out of the worker's buffers: `Copy`, no heap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    client: SocketAddr,
    /// The question name as asked (lowercased), empty without a question.
    qname: QName,
    qtype: u16,
    rcode: u16,
    scope: Option<u8>,
    service: Option<u32>,
}

/// A sampled question name, lowercase wire format, in a fixed buffer so
/// that a sample is `Copy` and sampling allocates nothing.
#[derive(Debug, Clone, Copy)]
struct QName {
    len: u8,
    bytes: [u8; MAX_NAME_LEN],
}

impl QName {
    /// No question.
    const EMPTY: QName = QName {
        len: 0,
        bytes: [0; MAX_NAME_LEN],
    };

    /// `name` (uncompressed wire format) lowered (RFC 4343).
    fn lowered(name: &[u8]) -> QName {
        let mut q = QName::EMPTY;
        let len = name.len().min(MAX_NAME_LEN);
        copy_lowercase(&mut q.bytes[..len], &name[..len]);
        q.len = len as u8;
        q
    }

    /// The name in wire format.
    fn wire(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A worker's side of the query log: its countdown and the channel.
#[derive(Debug)]
pub(crate) struct Sampler {
    every: u32,
    countdown: u32,
    queue: SyncSender<Sample>,
    dropped: Arc<AtomicU64>,
}

impl Sampler {
    /// Offers the query `query` from `client`, answered as `report` says,
    /// if it is this worker's one in N. Never blocks, never allocates.
    pub(crate) fn offer(&mut self, query: &[u8], client: SocketAddr, report: &Report) {
        self.countdown -= 1;
        if self.countdown > 0 {
            return;
        }
        self.countdown = self.every;
        let (qname, qtype) = match wire::question(query) {
            Some((name, qtype, _)) => (QName::lowered(name), qtype),
            None => (QName::EMPTY, 0),
        };
        let sample = Sample {
            client,
            qname,
            qtype,
            rcode: report.rcode,
            scope: report.scope,
            service: report.service,
        };
        if let Err(TrySendError::Full(_)) = self.queue.try_send(sample) {
            // Written by workers only when the log is overrun; the writer
            // reports and resets it.
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The query log: hands out one [`Sampler`] per worker and writes what
/// they offer on its own thread until every sampler is gone.
#[derive(Debug)]
pub(crate) struct QueryLog {
    every: u32,
    queue: SyncSender<Sample>,
    dropped: Arc<AtomicU64>,
}

impl QueryLog {
    /// Starts the writer for 1 in `every` queries (at least 1), naming
    /// services from `snapshot`; `None` when `every` is 0 (off).
    pub(crate) fn start(
        every: u32,
        snapshot: Arc<ArcSwap<Snapshot>>,
    ) -> std::io::Result<Option<QueryLog>> {
        if every == 0 {
            return Ok(None);
        }
        let (queue, samples) = mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        thread::Builder::new()
            .name("querylog".into())
            .spawn(move || write(samples, &snapshot, &counted))?;
        Ok(Some(QueryLog {
            every,
            queue,
            dropped,
        }))
    }

    /// A sampler for one worker. Workers start at different points of the
    /// count, so that N workers do not all log their first query.
    pub(crate) fn sampler(&self, worker: usize) -> Sampler {
        Sampler {
            every: self.every,
            countdown: (worker as u32 % self.every) + 1,
            queue: self.queue.clone(),
            dropped: self.dropped.clone(),
        }
    }
}

/// The writer thread: logs samples as they come, until the channel is
/// closed and empty.
fn write(samples: Receiver<Sample>, snapshot: &ArcSwap<Snapshot>, dropped: &AtomicU64) {
    let mut name = String::new();
    loop {
        match samples.try_recv() {
            Ok(sample) => {
                name.clear();
                let _ = crate::name::fmt_wire(sample.qname.wire(), &mut name);
                let snap = snapshot.load();
                // Indexes name the services of the snapshot that answered;
                // a reload in between may name another one, rarely.
                let service = sample
                    .service
                    .and_then(|i| snap.services.get(i as usize))
                    .map(|s| tracing::field::display(&s.name));
                tracing::info!(
                    target: "steerdns::query",
                    client = %sample.client,
                    qname = %name,
                    qtype = sample.qtype,
                    rcode = sample.rcode,
                    scope = sample.scope,
                    service,
                    "query"
                );
            }
            Err(TryRecvError::Empty) => {
                let lost = dropped.swap(0, Ordering::Relaxed);
                if lost > 0 {
                    tracing::warn!(lost, "query log overrun: samples dropped");
                }
                thread::sleep(POLL);
            }
            Err(TryRecvError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::test_report;

    fn sampler(every: u32, queue: usize) -> (Sampler, Receiver<Sample>) {
        let (tx, rx) = mpsc::sync_channel(queue);
        let sampler = Sampler {
            every,
            countdown: every,
            queue: tx,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        (sampler, rx)
    }

    #[test]
    fn one_in_n_is_offered_and_a_full_queue_drops() {
        let (mut s, rx) = sampler(3, 2);
        let client: SocketAddr = "192.0.2.1:5300".parse().unwrap();
        // A query for www.example.com A with id 7.
        let mut q = vec![0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x03www\x07Example\x03com\x00\x00\x01\x00\x01");
        for _ in 0..9 {
            s.offer(&q, client, &test_report(12));
        }
        // Samples 3 and 6 fit the queue of two; sample 9 is dropped.
        let got: Vec<Sample> = rx.try_iter().collect();
        assert_eq!(got.len(), 2);
        assert_eq!(s.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(got[0].client, client);
        assert_eq!(got[0].qname.wire(), b"\x03www\x07example\x03com\x00");
        assert_eq!(got[0].qtype, 1);
    }
}
