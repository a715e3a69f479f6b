//! The `[monitor.NAME]` tables. Their keys and checks belong to
//! [`crate::health::monitor`]; this file only places its errors in the
//! config file.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::value::Invalid;
use crate::health::{Monitor, MonitorSpec};

/// Validates every monitor, keyed by its name.
pub(super) fn monitors(
    specs: &BTreeMap<String, MonitorSpec>,
) -> Result<BTreeMap<String, Arc<Monitor>>, Invalid> {
    let mut monitors = BTreeMap::new();
    for (name, m) in specs {
        let monitor = Monitor::from_spec(m).map_err(|e| {
            Invalid::new(
                e.span.clone().unwrap_or(0..0),
                format!("monitor.{name}.{e}"),
            )
        })?;
        monitors.insert(name.clone(), Arc::new(monitor));
    }
    Ok(monitors)
}
