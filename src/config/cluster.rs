//! The `[cluster]` table: the nodes that share probe verdicts and config
//! digests, the shared secret that signs their pushes, and two timings.
//!
//! One identical table on every node: a node finds itself in `nodes` by
//! its own addresses at start (see [`ClusterConfig::this_node`]), so the
//! config file, and with it the config digest, stays the same everywhere.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::value::{duration, Invalid};
use crate::cluster::{Secret, MIN_SECRET};

/// The validated `[cluster]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Every node's admin listener (`address:port`), this node's too; a
    /// node is named by its entry.
    pub nodes: Vec<SocketAddr>,
    /// The secret file, resolved against the config file's folder.
    pub secret_file: PathBuf,
    /// The shared secret read from it.
    pub secret: Secret,
    /// Verdicts (and pushes) older than this are ignored.
    pub max_age: Duration,
    /// Time between two full pushes when nothing changes.
    pub push_interval: Duration,
}

/// The `[cluster]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct ClusterSpec {
    nodes: Spanned<Vec<SocketAddr>>,
    secret_file: Option<Spanned<String>>,
    max_age: Option<Spanned<String>>,
    push_interval: Option<Spanned<String>>,
}

/// Three missed pushes at the default interval before a peer stops
/// counting: one lost packet does not drop it.
fn default_max_age() -> Duration {
    Duration::from_secs(10)
}

/// A change travels at once; the full state every few seconds keeps
/// peers fresh and mends a lost push.
fn default_push_interval() -> Duration {
    Duration::from_secs(3)
}

/// Longest secret read.
const MAX_SECRET: usize = 4096;

impl ClusterSpec {
    /// Where the table's `nodes` list is written, for errors about the
    /// table as a whole.
    pub(super) fn span(&self) -> std::ops::Range<usize> {
        self.nodes.span()
    }
}

impl ClusterConfig {
    /// Validates the table and reads the secret file (relative to `base`).
    pub(super) fn from_spec(spec: ClusterSpec, base: &Path) -> Result<ClusterConfig, Invalid> {
        let nodes = spec.nodes.get_ref().clone();
        if nodes.is_empty() {
            return Err(Invalid::at(&spec.nodes, "cluster.nodes: list every node"));
        }
        for (i, n) in nodes.iter().enumerate() {
            if nodes[..i].contains(n) {
                return Err(Invalid::at(
                    &spec.nodes,
                    format!("cluster.nodes: {n} is listed twice"),
                ));
            }
        }
        let Some(file) = &spec.secret_file else {
            return Err(Invalid::at(
                &spec.nodes,
                "cluster.secret-file: required: pushes are signed with the shared secret",
            ));
        };
        let secret_file = base.join(file.get_ref());
        let secret = read_secret(&secret_file, file)?;
        let max_age = match &spec.max_age {
            Some(t) => duration(t, "cluster.max-age", "10s")?,
            None => default_max_age(),
        };
        let push_interval = match &spec.push_interval {
            Some(t) => duration(t, "cluster.push-interval", "3s")?,
            None => default_push_interval(),
        };
        if push_interval >= max_age {
            let span = spec.push_interval.as_ref().or(spec.max_age.as_ref());
            return Err(Invalid::new(
                span.map_or(spec.nodes.span(), |s| s.span()),
                "cluster.push-interval: must be shorter than cluster.max-age, \
                 or every peer's verdicts expire between two pushes",
            ));
        }
        Ok(ClusterConfig {
            nodes,
            secret_file,
            secret,
            max_age,
            push_interval,
        })
    }

    /// The index of this node in `nodes`: the entry equal to the admin
    /// listener's address, else the one entry whose address is one of
    /// `local` (this host's interface addresses). `Err` says why none or
    /// several match.
    pub fn this_node(&self, admin_listen: SocketAddr, local: &[IpAddr]) -> Result<usize, String> {
        if let Some(i) = self.nodes.iter().position(|n| *n == admin_listen) {
            return Ok(i);
        }
        let mine: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i].port() == admin_listen.port() && local.contains(&self.nodes[i].ip())
            })
            .collect();
        match mine[..] {
            [i] => Ok(i),
            [] => Err(format!(
                "[cluster] nodes: none is this node (no entry has the admin port {} \
                 and an address of this host)",
                admin_listen.port()
            )),
            _ => Err(
                "[cluster] nodes: several entries are this host's addresses; \
                      set [admin] listen to this node's entry"
                    .to_string(),
            ),
        }
    }
}

/// Reads the secret: the file's bytes without surrounding white space,
/// at least [`MIN_SECRET`] of them.
fn read_secret(path: &Path, spec: &Spanned<String>) -> Result<Secret, Invalid> {
    let refuse = |why: String| {
        Invalid::at(
            spec,
            format!("cluster.secret-file: {}: {why}", path.display()),
        )
    };
    let bytes = std::fs::read(path).map_err(|e| refuse(e.to_string()))?;
    let secret = bytes.trim_ascii();
    if secret.len() < MIN_SECRET || secret.len() > MAX_SECRET {
        return Err(refuse(format!(
            "the secret must be {MIN_SECRET} to {MAX_SECRET} bytes"
        )));
    }
    Ok(Secret::new(secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::HealthRule;
    use crate::config::Config;

    fn parse(dir: &Path, extra: &str) -> Result<Config, String> {
        let text = format!(
            "{}[admin]\nlisten = \"0.0.0.0:8053\"\ntoken-file = \"secret\"\n{extra}",
            crate::config::tests::MINIMAL
        );
        Config::from_str(&text, &dir.join("steerdns.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_table_is_checked_with_file_and_line() {
        let dir = std::env::temp_dir().join(format!("steerdns-cluster-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("secret"), "0123456789abcdef0123\n").unwrap();
        let nodes = "nodes = [\"192.0.2.1:8053\", \"192.0.2.2:8053\"]\n";
        let c = parse(
            &dir,
            &format!("[cluster]\n{nodes}secret-file = \"secret\"\n"),
        )
        .unwrap();
        let cl = c.cluster.unwrap();
        assert_eq!(cl.nodes.len(), 2);
        assert_eq!(cl.secret, Secret::new(*b"0123456789abcdef0123"));
        assert_eq!(
            (cl.max_age, cl.push_interval),
            (default_max_age(), default_push_interval())
        );

        for (extra, want) in [
            (nodes.to_string(), ":10: cluster.secret-file: required"),
            (
                format!("{nodes}secret-file = \"nope\""),
                ":11: cluster.secret-file: ",
            ),
            (
                "nodes = [\"192.0.2.1:8053\", \"192.0.2.1:8053\"]\nsecret-file = \"secret\"".into(),
                ":10: cluster.nodes: 192.0.2.1:8053 is listed twice",
            ),
            (
                format!("{nodes}secret-file = \"secret\"\nmax-age = \"2s\""),
                ":12: cluster.push-interval: must be shorter",
            ),
            (
                format!("{nodes}secret-file = \"secret\"\npush-interval = \"0s\""),
                ":12: cluster.push-interval: bad duration",
            ),
            (format!("{nodes}colour = 1"), ":11: unknown field `colour`"),
        ] {
            let e = parse(&dir, &format!("[cluster]\n{extra}\n")).unwrap_err();
            assert!(e.contains(want), "{extra}: {e}");
        }
        // A rule other than local needs the cluster, and a routed service.
        let service = "[[service]]\nname = \"www.example.com.\"\nrouting = \"priority\"\n\
                       health-rule = \"quorum\"\n\
                       endpoints = [{ name = \"a\", addresses = [\"192.0.2.1\"], priority = 1 }]\n";
        let e = parse(&dir, service).unwrap_err();
        assert!(
            e.contains(":12: service.health-rule: only \"local\" without a [cluster]"),
            "{e}"
        );
        let with = format!("[cluster]\n{nodes}secret-file = \"secret\"\n{service}");
        let c = parse(&dir, &with).unwrap();
        assert_eq!(c.services[0].health_rule, HealthRule::Quorum);
        // An endpoint's own rule overrides the service's, and needs the
        // cluster as much.
        let own = service
            .replace("health-rule = \"quorum\"\n", "")
            .replace("priority = 1 }", "priority = 1, health-rule = \"all\" }");
        let e = parse(&dir, &own).unwrap_err();
        assert!(e.contains(":12: service.health-rule: only"), "{e}");
        let c = parse(
            &dir,
            &format!("[cluster]\n{nodes}secret-file = \"secret\"\n{own}"),
        )
        .unwrap();
        assert_eq!(c.services[0].health_rule, HealthRule::Local);
        assert_eq!(
            c.services[0].endpoints[0].health_rule,
            Some(HealthRule::All)
        );
        let e = parse(&dir, &with.replace("quorum", "most")).unwrap_err();
        assert!(
            e.contains(":15: service.health-rule: unknown rule \"most\""),
            "{e}"
        );
        let self_service = format!(
            "[cluster]\n{nodes}secret-file = \"secret\"\n[[service]]\nname = \"www.example.com.\"\n\
             routing = \"self\"\npeers = [\"192.0.2.1\"]\nhealth-rule = \"any\"\n"
        );
        let e = parse(&dir, &self_service).unwrap_err();
        assert!(
            e.contains("service.health-rule: not used by routing = \"self\""),
            "{e}"
        );

        std::fs::write(dir.join("short"), "short\n").unwrap();
        let e = parse(
            &dir,
            &format!("[cluster]\n{nodes}secret-file = \"short\"\n"),
        )
        .unwrap_err();
        assert!(e.contains("the secret must be 16 to 4096 bytes"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn this_node_is_found_by_listen_address_or_interface() {
        let c = ClusterConfig {
            nodes: ["192.0.2.1:8053", "192.0.2.2:8053", "127.0.0.1:8054"]
                .map(|n| n.parse().unwrap())
                .to_vec(),
            secret_file: PathBuf::new(),
            secret: Secret::new(*b"0123456789abcdef"),
            max_age: default_max_age(),
            push_interval: default_push_interval(),
        };
        let any: SocketAddr = "0.0.0.0:8053".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(c.this_node(any, &[ip("127.0.0.1"), ip("192.0.2.2")]), Ok(1));
        assert_eq!(c.this_node("127.0.0.1:8054".parse().unwrap(), &[]), Ok(2));
        assert!(c.this_node(any, &[ip("192.0.2.9")]).is_err());
        assert!(c
            .this_node(any, &[ip("192.0.2.1"), ip("192.0.2.2")])
            .unwrap_err()
            .contains("several"));
    }
}
