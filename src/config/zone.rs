//! The `[[zone]]` tables: which zones to serve and where their master
//! files are.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::value::Invalid;
use super::{EndpointTarget, Lines, ServiceConfig};
use crate::name::Name;

/// One zone: its apex and the master file holding it.
#[derive(Debug, Clone)]
pub struct ZoneSource {
    /// The zone's apex, also the initial `$ORIGIN` of its file.
    pub origin: Name,
    /// The master file, resolved against the config file's folder.
    pub file: PathBuf,
    /// `ns-health`: the service whose endpoints are the nodes serving the
    /// zone, whose health filters the apex NS RRset (see `crate::ns_health`).
    pub ns_health: Option<NsHealthSource>,
}

/// A zone's `ns-health` key: the service named and where it was written.
#[derive(Debug, Clone)]
pub struct NsHealthSource {
    /// The service whose endpoints (or peers) are the zone's name servers.
    pub service: Name,
    /// Line of the key in the config file, for errors found at load.
    pub line: usize,
}

/// One `[[zone]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct ZoneSpec {
    origin: Spanned<String>,
    file: Spanned<String>,
    ns_health: Option<Spanned<String>>,
}

/// Validates the `[[zone]]` tables: at least one, no apex twice; files are
/// resolved against `base`, the config file's folder; an `ns-health`
/// names one of `services`.
pub(super) fn zones(
    specs: Vec<ZoneSpec>,
    base: &Path,
    services: &[ServiceConfig],
    lines: &Lines,
) -> Result<Vec<ZoneSource>, Invalid> {
    let mut zones: Vec<ZoneSource> = Vec::new();
    for z in specs {
        let origin = Name::from_absolute_text(z.origin.get_ref()).map_err(|e| {
            Invalid::at(
                &z.origin,
                format!("zone.origin: {:?}: {e}", z.origin.get_ref()),
            )
        })?;
        if zones
            .iter()
            .any(|known| known.origin.eq_ignore_case(&origin))
        {
            return Err(Invalid::at(
                &z.origin,
                format!("zone.origin: {origin} is listed twice"),
            ));
        }
        let ns_health = match &z.ns_health {
            None => None,
            Some(text) => Some(ns_health(text, services, lines)?),
        };
        zones.push(ZoneSource {
            origin,
            file: base.join(z.file.get_ref()),
            ns_health,
        });
    }
    if zones.is_empty() {
        return Err(Invalid::new(0..0, "no [[zone]] to serve"));
    }
    Ok(zones)
}

/// Reads an `ns-health` key: the name of a service of the config with
/// nodes, a `self` service (its peers) or one whose endpoints have
/// addresses.
fn ns_health(
    text: &Spanned<String>,
    services: &[ServiceConfig],
    lines: &Lines,
) -> Result<NsHealthSource, Invalid> {
    let at = |message: String| Invalid::at(text, format!("zone.ns-health: {message}"));
    let name = Name::from_absolute_text(text.get_ref())
        .map_err(|e| at(format!("{:?}: {e}", text.get_ref())))?;
    let Some(service) = services.iter().find(|s| s.name.eq_ignore_case(&name)) else {
        return Err(at(format!("no [[service]] is named {name}")));
    };
    let has_nodes = !service.peers.is_empty()
        || service
            .endpoints
            .iter()
            .any(|e| matches!(e.target, EndpointTarget::Addresses(_)));
    if !has_nodes {
        return Err(at(format!(
            "service {name} has neither peers nor endpoints with addresses"
        )));
    }
    Ok(NsHealthSource {
        service: service.name.clone(),
        line: lines.line_of(text.span().start),
    })
}
