//! steerdns: a global traffic manager that is just an authoritative DNS server.
#![warn(missing_docs)]

pub mod config;
pub mod cookie;
pub mod drain;
pub mod engine;
pub mod health;
pub mod name;
pub mod policy;
pub mod reload;
pub mod rr;
pub mod rrl;
pub mod server;
pub mod snapshot;
mod sys;
pub mod wire;
pub mod zone;
