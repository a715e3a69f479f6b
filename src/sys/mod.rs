//! The kernel interfaces std lacks; all of the crate's `unsafe` code lives
//! here (the crate root denies it everywhere else).
//!
//! - `socket`: binding UDP and TCP sockets with the options a DNS server
//!   needs, and `recvmmsg`/`sendmmsg` batches with packet-info control
//!   messages, so a wildcard socket answers from the address it was asked
//!   on.
//! - `host`: facts about the machine and process: the coarse monotonic
//!   clock, ignoring SIGHUP, the interfaces' addresses, the host name.
//! - `account`: user and group lookups and dropping root.
//! - `cpu`: the cache prefetch hint that lets a UDP batch load its
//!   queries' zone data in parallel.

#[cfg(not(target_os = "linux"))]
compile_error!("the UDP path uses Linux's recvmmsg, sendmmsg and IP_PKTINFO");

mod account;
mod cpu;
mod host;
mod socket;

pub(crate) use account::{current_ids, lookup_group, lookup_user, switch_ids};
pub(crate) use cpu::prefetch;
pub(crate) use host::{
    coarse_seconds, coarse_unix_seconds, host_name, ignore_hangup, local_addresses,
};
pub(crate) use socket::{bind_tcp, bind_udp, RecvBatch, SendBatch};
