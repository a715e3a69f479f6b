//! The recursive resolvers the lab runs, as data: each one's program,
//! Debian package, listen address, config template and command line.
//!
//! Every template makes the resolver a plain iterator (no DNSSEC: the fake
//! root is unsigned) whose only root is the lab's, listening on its own
//! address in the resolvers' namespace; the templates say why each
//! setting is there.

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use hickory_proto::rr::RecordType;

use super::{
    ask, fresh_name, poll, render, Lookup, Outcome, LOOKUP_ATTEMPTS, LOOKUP_RETRY_AFTER,
    SETTLE_TIMEOUT, ZONE,
};
use crate::common::{ServerProcess, TempDir};

/// One kind of recursive resolver.
#[derive(Debug)]
pub struct ResolverKind {
    /// Short name, used in query names and the results table.
    pub label: &'static str,
    /// The program to run.
    pub program: &'static str,
    /// The Debian package that ships it.
    pub package: &'static str,
    /// Whether the lab is pointless without it (otherwise a local run
    /// without the package leaves this resolver out).
    pub required: bool,
    /// Its listen address in the resolvers' namespace.
    pub address: Ipv4Addr,
    /// The config file's name in the resolver's scratch folder.
    pub config_name: &'static str,
    /// The config template (see [`super::render`] for its placeholders).
    pub config_template: &'static str,
    /// The arguments after the program, given the scratch folder and the
    /// config file in it; the resolver stays in the foreground.
    pub args: fn(dir: &Path, config: &Path) -> Vec<OsString>,
}

/// Every resolver the lab knows.
pub const RESOLVERS: [ResolverKind; 4] = [
    ResolverKind {
        label: "unbound",
        program: "unbound",
        package: "unbound",
        required: true,
        address: Ipv4Addr::new(192, 0, 2, 53),
        config_name: "unbound.conf",
        config_template: include_str!("unbound.conf"),
        args: |_, config| vec!["-d".into(), "-c".into(), config.into()],
    },
    ResolverKind {
        label: "kresd",
        program: "kresd",
        package: "knot-resolver",
        required: false,
        address: Ipv4Addr::new(192, 0, 2, 54),
        config_name: "kresd.conf",
        config_template: include_str!("kresd.conf"),
        // -n: not interactive; the last argument is its run folder.
        args: |dir, config| vec!["-n".into(), "-c".into(), config.into(), dir.into()],
    },
    ResolverKind {
        label: "pdns",
        program: "pdns_recursor",
        package: "pdns-recursor",
        required: false,
        address: Ipv4Addr::new(192, 0, 2, 55),
        // pdns_recursor reads `recursor.conf` in its config folder.
        config_name: "recursor.conf",
        config_template: include_str!("recursor.conf"),
        args: |dir, _| {
            let mut arg = OsString::from("--config-dir=");
            arg.push(dir);
            vec![arg]
        },
    },
    ResolverKind {
        label: "bind",
        program: "named",
        package: "bind9",
        required: false,
        address: Ipv4Addr::new(192, 0, 2, 56),
        config_name: "named.conf",
        config_template: include_str!("named.conf"),
        // -g: foreground, log to stderr; -n 1: one worker thread.
        args: |_, config| {
            vec![
                "-g".into(),
                "-n".into(),
                "1".into(),
                "-c".into(),
                config.into(),
            ]
        },
    },
];

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
