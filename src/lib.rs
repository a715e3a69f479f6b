//! steerdns: a global traffic manager that is just an authoritative DNS server.
#![warn(missing_docs)]
// Raw system calls live in `sys` alone, each with a SAFETY note; the rest
// of the crate is safe Rust.
#![deny(unsafe_code)]

pub mod admin;
pub mod cluster;
pub mod config;
pub mod cookie;
pub mod digest;
pub mod drain;
pub mod duration;
pub mod engine;
pub mod explain;
pub mod geo;
pub mod health;
pub mod identity;
pub mod last_sent;
pub mod maintenance;
pub mod metrics;
pub mod name;
pub mod ns_health;
pub mod policy;
pub mod prefix;
pub mod ramp;
pub mod reload;
pub mod rr;
pub mod rrl;
pub mod server;
pub mod snapshot;
#[allow(unsafe_code)]
mod sys;
pub mod target;
pub mod utc;
pub mod wire;
pub mod zone;
