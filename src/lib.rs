//! steerdns: a global traffic manager that is just an authoritative DNS server.
#![warn(missing_docs)]

pub mod config;
pub mod engine;
pub mod name;
pub mod rr;
pub mod server;
pub mod snapshot;
pub mod wire;
pub mod zone;
