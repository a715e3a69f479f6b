//! The `[[maintenance]]` tables: windows, planned in UTC, during which the
//! node, a service or an endpoint is drained, as `steerdns drain` would,
//! but applied and lifted on time by the server (`crate::maintenance`).

use serde::Deserialize;
use toml::Spanned;

use super::value::Invalid;
use super::ServiceConfig;
use crate::target::{DrainTarget, UnknownTarget};
use crate::utc::parse_utc;

/// One scheduled window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    /// When it starts (Unix seconds, inclusive).
    pub start: u64,
    /// When it ends (Unix seconds, exclusive).
    pub end: u64,
    /// What it drains.
    pub target: DrainTarget,
    /// Why, for the status page.
    pub note: Option<String>,
    /// Line of its `start`, for logs.
    pub line: usize,
}

/// One `[[maintenance]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct MaintenanceSpec {
    start: Spanned<String>,
    end: Spanned<String>,
    node: Option<Spanned<bool>>,
    service: Option<Spanned<String>>,
    endpoint: Option<Spanned<String>>,
    note: Option<String>,
}

/// Validates the windows against the configured services: times in UTC,
/// `end` after `start`, and exactly one target that exists.
pub(super) fn windows(
    specs: Vec<MaintenanceSpec>,
    services: &[ServiceConfig],
    line_of: impl Fn(usize) -> usize,
) -> Result<Vec<MaintenanceWindow>, Invalid> {
    let time = |v: &Spanned<String>, field: &str| {
        parse_utc(v.get_ref()).ok_or_else(|| {
            Invalid::at(
                v,
                format!(
                    "maintenance.{field}: {:?} is not an RFC 3339 time in UTC (e.g. \"2026-12-01T02:00:00Z\")",
                    v.get_ref()
                ),
            )
        })
    };
    specs
        .into_iter()
        .map(|spec| {
            let start = time(&spec.start, "start")?;
            let end = time(&spec.end, "end")?;
            if end <= start {
                return Err(Invalid::at(
                    &spec.end,
                    format!(
                        "maintenance.end: {} is not after start {}",
                        spec.end.get_ref(),
                        spec.start.get_ref()
                    ),
                ));
            }
            let node = spec.node.as_ref().is_some_and(|n| *n.get_ref());
            let target = match (&spec.node, &spec.service, &spec.endpoint) {
                (Some(n), Some(_), _) => {
                    return Err(Invalid::at(
                        n,
                        "maintenance.node: give either node = true or service, not both",
                    ))
                }
                (_, None, Some(e)) => {
                    return Err(Invalid::at(e, "maintenance.endpoint: needs service"))
                }
                (_, None, None) if !node => {
                    return Err(Invalid::at(
                        &spec.start,
                        "maintenance: says nothing to drain (node = true, service, or service and endpoint)",
                    ))
                }
                (_, None, None) => DrainTarget::Node,
                (_, Some(service), endpoint) => find(service, endpoint.as_ref(), services)?,
            };
            Ok(MaintenanceWindow {
                start,
                end,
                target,
                note: spec.note,
                line: line_of(spec.start.span().start),
            })
        })
        .collect()
}

/// The target `service` (and `endpoint`) names, refused at the key that
/// names something unknown.
fn find(
    service: &Spanned<String>,
    endpoint: Option<&Spanned<String>>,
    services: &[ServiceConfig],
) -> Result<DrainTarget, Invalid> {
    let names = services.iter().map(|s| {
        (
            &s.name,
            s.endpoints.iter().map(|e| e.name.as_str()).collect(),
        )
    });
    DrainTarget::find(
        Some(service.get_ref()),
        endpoint.map(|e| e.get_ref().as_str()),
        names,
    )
    .map_err(|e| match (&e, endpoint) {
        (UnknownTarget::UnknownEndpoint { .. }, Some(at)) => {
            Invalid::at(at, format!("maintenance.endpoint: {e}"))
        }
        _ => Invalid::at(service, format!("maintenance.service: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse_with;
    use crate::target::DrainTarget;

    const SERVICE: &str = "[[service]]\nname = \"www.example.com\"\nrouting = \"weighted\"\nendpoints = [{ name = \"a\", addresses = [\"192.0.2.1\"] }]\n";

    #[test]
    fn windows_are_read_in_utc() {
        let c = parse_with(&format!(
            "{SERVICE}[[maintenance]]\nstart = \"2026-12-01T02:00:00Z\"\nend = \"2026-12-01T03:30:00Z\"\nservice = \"WWW.example.com\"\nendpoint = \"a\"\nnote = \"kernel update\"\n[[maintenance]]\nstart = \"2026-12-02T00:00:00Z\"\nend = \"2026-12-02T00:00:01Z\"\nnode = true\n"
        ))
        .unwrap();
        assert_eq!(c.maintenance.len(), 2);
        let w = &c.maintenance[0];
        assert_eq!((w.start, w.end - w.start), (1_796_090_400, 5400));
        assert_eq!(
            w.target,
            DrainTarget::Endpoint {
                service: "www.example.com.".into(),
                endpoint: "a".into()
            }
        );
        assert_eq!(w.note.as_deref(), Some("kernel update"));
        assert_eq!(w.line, 11);
        assert_eq!(c.maintenance[1].target, DrainTarget::Node);
    }

    #[test]
    fn mistakes_name_file_line_and_field() {
        // MINIMAL is five lines and SERVICE four: the window starts on 10.
        let window =
            |body: &str| parse_with(&format!("{SERVICE}[[maintenance]]\n{body}")).unwrap_err();
        let times = "start = \"2026-12-01T02:00:00Z\"\nend = \"2026-12-01T03:00:00Z\"\n";
        let cases = [
            (
                "start = \"2026-12-01T02:00:00Z\"\nend = \"2026-12-01T01:00:00Z\"\nnode = true\n",
                ":12: maintenance.end: 2026-12-01T01:00:00Z is not after start",
            ),
            (
                "start = \"2026-12-01T02:00:00+01:00\"\nend = \"2026-12-01T03:00:00Z\"\nnode = true\n",
                ":11: maintenance.start: \"2026-12-01T02:00:00+01:00\" is not an RFC 3339 time in UTC",
            ),
            (
                &format!("{times}service = \"api.example.com\"\n"),
                ":13: maintenance.service: no service named api.example.com.",
            ),
            (
                &format!("{times}service = \"www.example.com\"\nendpoint = \"b\"\n"),
                ":14: maintenance.endpoint: service www.example.com. has no endpoint \"b\"",
            ),
            (
                &format!("{times}endpoint = \"a\"\n"),
                ":13: maintenance.endpoint: needs service",
            ),
            (
                &format!("{times}node = true\nservice = \"www.example.com\"\n"),
                ":13: maintenance.node: give either",
            ),
            (times, ":11: maintenance: says nothing to drain"),
            (
                &format!("{times}node = true\ncolour = \"red\"\n"),
                ":14: unknown field `colour`",
            ),
        ];
        for (body, want) in cases {
            let e = window(body);
            assert!(
                e.starts_with("conf/steerdns.toml:") && e.contains(want),
                "{e} should contain {want}"
            );
        }
    }
}
