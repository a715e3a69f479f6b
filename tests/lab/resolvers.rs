//! The recursive resolvers the lab runs (which ones, and how, is the data
//! in `kinds`): started, asked, and their answers read.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use hickory_proto::rr::RecordType;

use super::{
    ask, fresh_name, poll, render, Lookup, Outcome, LOOKUP_ATTEMPTS, LOOKUP_RETRY_AFTER,
    SETTLE_TIMEOUT, ZONE,
};
use crate::common::{ServerProcess, TempDir};

pub use super::kinds::{ResolverKind, RESOLVERS};

/// A running recursive resolver.
#[derive(Debug)]
pub struct Resolver {
    kind: &'static ResolverKind,
    process: ServerProcess,
}

impl Resolver {
    /// Writes the resolver's config and starts it; call from a thread in
    /// the resolvers' namespace.
    pub fn spawn(kind: &'static ResolverKind, program: &Path, hints: &Path) -> Resolver {
        let dir = TempDir::new(&format!("lab-{}", kind.label));
        let folder = dir.path().display().to_string();
        let config = dir.write(
            kind.config_name,
            &render(
                kind.config_template,
                &[
                    ("address", &kind.address.to_string()),
                    ("dir", &folder),
                    ("hints", &hints.display().to_string()),
                ],
            ),
        );
        let mut command = Command::new(program);
        command.args((kind.args)(dir.path(), &config));
        let addr = SocketAddr::from((kind.address, 53));
        Resolver {
            kind,
            process: ServerProcess::spawn(kind.label, command, dir, addr),
        }
    }

    /// Waits until a lookup through the resolver returns an address: it
    /// runs, primed from the fake root, and reaches the nodes.
    pub fn wait_until_resolving(&self) {
        let result = poll(SETTLE_TIMEOUT, || {
            match self.ask(
                &fresh_name(&format!("ready-{}", self.kind.label)),
                RecordType::A,
            ) {
                Outcome::Addresses(a) if !a.is_empty() => Ok(()),
                outcome => Err(format!("it answers {outcome:?}")),
            }
        });
        if let Err(e) = result {
            panic!(
                "{} does not resolve within {SETTLE_TIMEOUT:?}: {e}\n{}",
                self.kind.label,
                self.process.logs()
            );
        }
    }

    /// Its label.
    pub fn label(&self) -> &'static str {
        self.kind.label
    }

    /// One recursive lookup.
    fn ask(&self, qname: &str, rtype: RecordType) -> Outcome {
        ask(
            self.process.addr(),
            qname,
            rtype,
            true,
            LOOKUP_RETRY_AFTER,
            LOOKUP_ATTEMPTS,
        )
    }

    /// One lookup of a fresh name per entry of `types`, one after the other.
    pub fn lookups(&self, scenario: &str, types: &[RecordType]) -> Vec<Lookup> {
        types
            .iter()
            .enumerate()
            .map(|(i, &rtype)| {
                let qname = format!("{scenario}-{}-{i}.{ZONE}", self.kind.label);
                let started = Instant::now();
                let outcome = self.ask(&qname, rtype);
                Lookup {
                    qname,
                    rtype,
                    outcome,
                    latency: started.elapsed(),
                }
            })
            .collect()
    }
}
