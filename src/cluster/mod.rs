//! Cluster health: nodes share their probe verdicts and config digests,
//! and a per-service rule turns the verdicts into the health answered
//! with. State sharing, not consensus: each node decides alone from what
//! it heard within `max-age`. `docs/cluster.md` explains it with a worked
//! network partition.
//!
//! - [`rule`]: [`HealthRule`] (`local`, `any`, `all`, `quorum`) and how it
//!   combines verdicts.
//! - [`message`]: the [`Push`] a node posts to the others and its
//!   HMAC-SHA256 signature ([`Secret`]).
//! - [`table`]: [`PeerTable`], the peers' last pushes and every decision
//!   taken from them (health, fallback, digest agreement); pure, with
//!   time passed in.
//! - [`node`]: [`ClusterNode`], the tokio side: it reads this node's own
//!   verdicts from the health view, pushes them, receives the peers'
//!   pushes from the admin listener and writes the combined health back.
//!
//! The answer path is untouched: it reads the health view's byte as
//! before; only which verdict lands in that byte changes.

pub mod message;
pub mod node;
pub mod rule;
pub mod table;

pub use message::{Push, Secret, MAX_PUSH, MIN_SECRET, PUSH_PATH, SIGNATURE_HEADER};
pub use node::{ClusterNode, ClusterStatus, PeerStatus};
pub use rule::{HealthRule, UnknownRule};
pub use table::{PeerReport, PeerTable, Refusal};
