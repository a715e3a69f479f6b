//! The recursive resolvers the lab knows, as data: each one's program,
//! Debian package, listen address, config template and command line. Pure
//! data, so tests outside the lab (`tests/ns_health.rs`) run the same
//! resolvers the same way.
//!
//! Every template makes the resolver a plain iterator (no DNSSEC: the fake
//! root is unsigned) whose only root is the lab's (`{{hints}}`), listening
//! on `{{address}}` port 53 with its files in `{{dir}}`; the templates say
//! why each setting is there.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::Path;

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
    /// The config template, with the placeholders of the module header.
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
