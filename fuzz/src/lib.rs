//! Support shared by the fuzz targets of steerdns.
//!
//! * [`check`]: a strict DNS message checker, stricter than a decoder that
//!   only needs to read a message: every reply of the engine must pass it.
//! * [`fixture`]: the zones and services the `engine` target answers from,
//!   loaded once per process.
//! * [`guard`]: input filters that keep a target away from the host (files
//!   outside its scratch folder).
//! * [`targets`]: the body of each fuzz target, a function of the input
//!   that panics on a finding.
#![warn(missing_docs)]

pub mod check;
pub mod fixture;
pub mod guard;
pub mod targets;
