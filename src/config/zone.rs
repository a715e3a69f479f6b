//! The `[[zone]]` tables: which zones to serve and where their master
//! files are.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::value::Invalid;
use crate::name::Name;

/// One zone: its apex and the master file holding it.
#[derive(Debug, Clone)]
pub struct ZoneSource {
    /// The zone's apex, also the initial `$ORIGIN` of its file.
    pub origin: Name,
    /// The master file, resolved against the config file's folder.
    pub file: PathBuf,
}

/// One `[[zone]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct ZoneSpec {
    origin: Spanned<String>,
    file: Spanned<String>,
}

/// Validates the `[[zone]]` tables: at least one, no apex twice; files are
/// resolved against `base`, the config file's folder.
pub(super) fn zones(specs: Vec<ZoneSpec>, base: &Path) -> Result<Vec<ZoneSource>, Invalid> {
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
        zones.push(ZoneSource {
            origin,
            file: base.join(z.file.get_ref()),
        });
    }
    if zones.is_empty() {
        return Err(Invalid::new(0..0, "no [[zone]] to serve"));
    }
    Ok(zones)
}
