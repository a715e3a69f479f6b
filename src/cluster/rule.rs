//! Health rules: how the verdicts of several nodes on one endpoint become
//! the health this node answers with.
//!
//! Route 53 judges an endpoint from many checkers; a self-hosted server
//! judges from one place, so one node's network blip withdraws an endpoint
//! for every client of that node. A rule other than `local` lets the
//! verdicts the other nodes pushed (see [`super::PeerTable`]) count too.
//! "Reporting nodes" are this node and every peer whose last push arrived
//! within `max-age` and carried a verdict for the endpoint.

use std::fmt;
use std::str::FromStr;

use crate::health::Health;

/// The rule of a service (`health-rule` in its `[[service]]` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HealthRule {
    /// This node's own probe alone (what a node without a cluster does).
    #[default]
    Local,
    /// Up if any reporting node says up.
    Any,
    /// Up only if every reporting node says up.
    All,
    /// Up if more than half of the reporting nodes say up.
    Quorum,
}

impl HealthRule {
    /// The name in the config file.
    pub fn name(self) -> &'static str {
        match self {
            HealthRule::Local => "local",
            HealthRule::Any => "any",
            HealthRule::All => "all",
            HealthRule::Quorum => "quorum",
        }
    }

    /// The health to answer with: `local` is this node's verdict, `peers`
    /// the fresh verdicts of the other reporting nodes. Pure, so the rules
    /// are tested without a network.
    pub fn combine(self, local: Health, peers: impl IntoIterator<Item = Health>) -> Health {
        let (mut up, mut reporting) = (usize::from(local.is_up()), 1usize);
        if self != HealthRule::Local {
            for verdict in peers {
                reporting += 1;
                up += usize::from(verdict.is_up());
            }
        }
        let is_up = match self {
            HealthRule::Local => local.is_up(),
            HealthRule::Any => up > 0,
            HealthRule::All => up == reporting,
            // "More than half": one of two is not enough.
            HealthRule::Quorum => up * 2 > reporting,
        };
        if is_up {
            Health::Up
        } else {
            Health::Down
        }
    }
}

impl fmt::Display for HealthRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `health-rule` that is none of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule {0:?} (local, any, all, quorum)")]
pub struct UnknownRule(pub String);

impl FromStr for HealthRule {
    type Err = UnknownRule;

    fn from_str(s: &str) -> Result<HealthRule, UnknownRule> {
        match s {
            "local" => Ok(HealthRule::Local),
            "any" => Ok(HealthRule::Any),
            "all" => Ok(HealthRule::All),
            "quorum" => Ok(HealthRule::Quorum),
            other => Err(UnknownRule(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Health::{Down, Up};

    #[test]
    fn each_rule_combines_as_documented() {
        use HealthRule::*;
        // (local, peers) -> [local, any, all, quorum]
        let cases: &[(Health, &[Health], [Health; 4])] = &[
            (Up, &[], [Up, Up, Up, Up]),
            (Down, &[], [Down, Down, Down, Down]),
            (Down, &[Up, Up], [Down, Up, Down, Up]),
            (Up, &[Down, Down], [Up, Up, Down, Down]),
            (Up, &[Up, Down], [Up, Up, Down, Up]),
            // Two of four is not more than half.
            (Up, &[Up, Down, Down], [Up, Up, Down, Down]),
            // One of two neither.
            (Up, &[Down], [Up, Up, Down, Down]),
            (Down, &[Down, Down], [Down, Down, Down, Down]),
        ];
        for (local, peers, want) in cases {
            let got: Vec<Health> = [Local, Any, All, Quorum]
                .iter()
                .map(|r| r.combine(*local, peers.iter().copied()))
                .collect();
            assert_eq!(got, want, "local {local:?}, peers {peers:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for r in [
            HealthRule::Local,
            HealthRule::Any,
            HealthRule::All,
            HealthRule::Quorum,
        ] {
            assert_eq!(r.name().parse::<HealthRule>(), Ok(r));
        }
        assert!("majority".parse::<HealthRule>().is_err());
    }
}
