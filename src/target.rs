//! What a drain or a maintenance window takes out of answers: this node,
//! one service, or one endpoint of a service, with names checked against
//! the configuration.
//!
//! A leaf module: the config (maintenance windows), the drain file and
//! the admin API all name targets, and none of them has to import another
//! for it.

use crate::name::Name;

/// A service or endpoint named that the configuration does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownTarget {
    /// No service by that name.
    #[error("no service named {0}")]
    UnknownService(String),
    /// The service has no endpoint by that name.
    #[error("service {service} has no endpoint {endpoint:?}")]
    UnknownEndpoint {
        /// The service (its key).
        service: String,
        /// The endpoint as given.
        endpoint: String,
    },
}

/// What one drain or undrain is about, with names checked against the
/// configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainTarget {
    /// The whole node.
    Node,
    /// One service, by its key (lowercase, ending in a dot).
    Service(String),
    /// One endpoint of a service.
    Endpoint {
        /// The service's key.
        service: String,
        /// The endpoint's name.
        endpoint: String,
    },
}

impl DrainTarget {
    /// The target `service` and `endpoint` name (neither: the node),
    /// checked against `services`: each configured service's name with
    /// its endpoints' names. The service name may omit its final dot and
    /// is compared without case.
    pub fn find<'a>(
        service: Option<&str>,
        endpoint: Option<&str>,
        services: impl IntoIterator<Item = (&'a Name, Vec<&'a str>)>,
    ) -> Result<DrainTarget, UnknownTarget> {
        let Some(given) = service else {
            return Ok(DrainTarget::Node);
        };
        let key = Name::from_absolute_text(given.trim_end_matches('.'))
            .map_err(|_| UnknownTarget::UnknownService(given.to_string()))?
            .to_lowercase()
            .to_string();
        let endpoints = services
            .into_iter()
            .find(|(name, _)| name.to_lowercase().to_string() == key)
            .map(|(_, endpoints)| endpoints)
            .ok_or_else(|| UnknownTarget::UnknownService(key.clone()))?;
        match endpoint {
            None => Ok(DrainTarget::Service(key)),
            Some(e) if endpoints.contains(&e) => Ok(DrainTarget::Endpoint {
                service: key,
                endpoint: e.to_string(),
            }),
            Some(e) => Err(UnknownTarget::UnknownEndpoint {
                service: key,
                endpoint: e.to_string(),
            }),
        }
    }
}

impl std::fmt::Display for DrainTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DrainTarget::Node => f.write_str("node"),
            DrainTarget::Service(s) => f.write_str(s),
            DrainTarget::Endpoint { service, endpoint } => {
                write!(f, "{service} endpoint {endpoint}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked_against_the_config() {
        let www = Name::from_absolute_text("www.example.com").unwrap();
        let services = || [(&www, vec!["a", "b"])];
        let find = |s, e| DrainTarget::find(s, e, services());
        assert_eq!(find(None, None).unwrap(), DrainTarget::Node);
        let service = find(Some("WWW.example.com"), None).unwrap();
        assert_eq!(service, DrainTarget::Service("www.example.com.".into()));
        let endpoint = find(Some("www.example.com."), Some("b")).unwrap();
        assert_eq!(endpoint.to_string(), "www.example.com. endpoint b");
        assert_eq!(
            find(Some("api.example.com"), None).unwrap_err().to_string(),
            "no service named api.example.com."
        );
        assert_eq!(
            find(Some("www.example.com"), Some("c"))
                .unwrap_err()
                .to_string(),
            "service www.example.com. has no endpoint \"c\""
        );
    }
}
