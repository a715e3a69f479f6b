//! Zones: master files loaded into lookup trees of pre-encoded RRsets.

pub mod parse;

/// The set of zones served.
#[derive(Debug, Default)]
pub struct ZoneSet {}
