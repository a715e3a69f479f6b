//! Network I/O.
