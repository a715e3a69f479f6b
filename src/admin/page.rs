//! The status page (`GET /`) and its plain-text twin for `steerdns
//! status`: the same [`Status`], for a person to read at a glance.
//!
//! The page is rendered on the server, with its style inline and no
//! script or outside asset, so it reads the same in any browser, a
//! text browser included, and from a host without internet access. It
//! reloads itself every few seconds (`<meta http-equiv="refresh">`).

use std::fmt::Write as _;

use super::status::{ClusterSafe, EndpointStatus, ServiceStatus, Status};
use crate::cluster::ClusterStatus;

/// Seconds between the page's refreshes.
pub const REFRESH_SECONDS: u32 = 5;

/// Most recent changes shown on the page (the API has them all).
const CHANGES_SHOWN: usize = 20;

const STYLE: &str = "\
body{font:15px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}\
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.4em 0 .4em}\
.meta{color:#555;margin:0 0 1em}code{font-size:.92em}\
table{border-collapse:collapse;margin:.3em 0 1em;background:#fff}\
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f0f0f0}\
.badge{display:inline-block;padding:0 .5em;border-radius:.7em;font-weight:600;color:#fff}\
.up{background:#2e7d32}.down{background:#c62828}.degraded,.partial{background:#ef6c00}\
.drained{background:#5e35b1}.muted{color:#777}";

/// The status page.
pub fn render(s: &Status) -> String {
    let sha256 = s.config.sha256.as_deref().unwrap_or("(computing)");
    let mut h = String::with_capacity(8 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>steerdns status</title><style>{STYLE}</style></head><body>\n"
    );
    let _ = write!(
        h,
        "<h1>steerdns {}</h1><p class=\"meta\">up {} (since {}) &middot; config <code>{}</code> \
         sha256 <code title=\"{}\">{}</code> loaded {}",
        esc(&s.version),
        uptime(s.uptime_seconds),
        esc(&s.started),
        esc(&s.config.file),
        esc(sha256),
        esc(sha256.get(..16).unwrap_or(sha256)),
        esc(&s.config.loaded),
    );
    if let Some(r) = &s.config.last_reload {
        match &r.error {
            None => {
                let _ = write!(h, " &middot; last reload {} ok", esc(&r.at));
            }
            Some(e) => {
                let _ = write!(
                    h,
                    " &middot; <span class=\"badge down\">last reload {} refused</span> <code>{}</code>",
                    esc(&r.at),
                    esc(e)
                );
            }
        }
    }
    if s.node_drained {
        h.push_str(" &middot; <span class=\"badge drained\">node drained</span>");
    }
    h.push_str("</p>\n");
    if let Some(c) = &s.cluster {
        cluster(&mut h, c);
    }

    h.push_str("<h2>Services</h2>\n");
    if s.services.is_empty() {
        h.push_str("<p class=\"muted\">No services configured: static zones only.</p>\n");
    }
    // The hook for query rates: a column once metrics fill any of them.
    let rates = s
        .services
        .iter()
        .any(|svc| svc.queries_per_second.is_some());
    if !s.services.is_empty() {
        overview(&mut h, &s.services, rates);
    }
    for svc in &s.services {
        service(&mut h, svc, rates);
    }

    drains(&mut h, s);
    windows(&mut h, s);

    h.push_str("<h2>Recent health changes</h2>\n");
    if s.changes.is_empty() {
        h.push_str("<p class=\"muted\">None since the start.</p>\n");
    } else {
        h.push_str("<table><tr><th>when</th><th>probe</th><th>to</th><th>reason</th></tr>\n");
        for c in s.changes.iter().take(CHANGES_SHOWN) {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.at),
                esc(&c.probe),
                badge(&c.to),
                esc(c.reason.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</table>\n");
    }

    h.push_str("<h2>Files</h2>\n<table><tr><th>file</th><th>path</th><th>sha256</th></tr>\n");
    for f in &s.config.files {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            esc(&f.role),
            esc(&f.path),
            esc(f.sha256.as_deref().unwrap_or("unreadable"))
        );
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

/// What is drained and when it is safe to stop; nothing when nothing is.
fn drains(h: &mut String, s: &Status) {
    if s.drains.is_empty() {
        return;
    }
    h.push_str(
        "<h2>Drains</h2>\n<table><tr><th>drained</th><th>by</th><th>in force</th>\
         <th>last answer</th><th>TTL</th><th>safe to stop</th></tr>\n",
    );
    for d in &s.drains {
        let mut safe = if d.safe_in_seconds == 0 {
            "<span class=\"badge up\">safe now</span>".to_string()
        } else {
            format!("at {} (in {} s)", esc(&d.safe_at), d.safe_in_seconds)
        };
        if let Some(c) = &d.cluster {
            safe.push_str(&format!("; every node: {}", esc(&everywhere(c))));
        }
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{safe}</td></tr>",
            esc(&d.target),
            esc(&d.reason),
            if d.in_force { "yes" } else { "not yet" },
            esc(&d.last_sent),
            d.ttl,
        );
    }
    h.push_str("</table>\n");
}

/// When a drain is safe to stop on every node, in words.
fn everywhere(c: &ClusterSafe) -> String {
    match (c.safe_in_seconds, &c.safe_at) {
        _ if !c.waiting_for.is_empty() => format!("waiting for {}", c.waiting_for.join(", ")),
        (Some(0), _) => "safe now".into(),
        (Some(n), Some(at)) => format!("at {at} (in {n} s)"),
        _ => "unknown".into(),
    }
}

/// Scheduled maintenance windows: active and upcoming first, then past.
fn windows(h: &mut String, s: &Status) {
    if s.maintenance.is_empty() {
        return;
    }
    h.push_str(
        "<h2>Maintenance windows</h2>\n<table><tr><th>drains</th><th>start (UTC)</th>\
         <th>end (UTC)</th><th>state</th><th>note</th></tr>\n",
    );
    let order = |phase: &str| match phase {
        "active" => 0,
        "upcoming" => 1,
        _ => 2,
    };
    let mut list: Vec<_> = s.maintenance.iter().collect();
    list.sort_by_key(|w| (order(&w.phase), w.start.clone()));
    for w in list {
        let state = match w.phase.as_str() {
            "upcoming" => format!("upcoming, in {}", uptime(w.starts_in_seconds)),
            "active" => "<span class=\"badge drained\">active</span>".to_string(),
            other => esc(other),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{state}</td><td>{}</td></tr>",
            esc(&w.target),
            esc(&w.start),
            esc(&w.end),
            esc(w.note.as_deref().unwrap_or("")),
        );
    }
    h.push_str("</table>\n");
}

/// One line per service: the glance.
fn overview(h: &mut String, services: &[ServiceStatus], rates: bool) {
    h.push_str("<table><tr><th>service</th><th>method</th><th>health</th><th>serving</th>");
    if rates {
        h.push_str("<th>queries/s</th>");
    }
    h.push_str("</tr>\n");
    for svc in services {
        let serving = svc.endpoints.iter().filter(|e| e.serving).count();
        let mut state = badge(&svc.health);
        if svc.drained {
            state.push_str(" <span class=\"badge drained\">drained</span>");
        }
        if svc.maintenance {
            state.push_str(" <span class=\"badge drained\">maintenance</span>");
        }
        let drained = svc.endpoints.iter().filter(|e| e.drained).count();
        let _ = write!(
            h,
            "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{state}</td><td>{serving} of {}{}</td>",
            esc(&svc.name),
            esc(&svc.name),
            esc(&svc.method),
            svc.endpoints.len(),
            if drained > 0 {
                format!(", {drained} drained")
            } else {
                String::new()
            }
        );
        if rates {
            match svc.queries_per_second {
                Some(q) => {
                    let _ = write!(h, "<td>{q:.1}</td>");
                }
                None => h.push_str("<td></td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

fn service(h: &mut String, svc: &ServiceStatus, rates: bool) {
    let _ = write!(
        h,
        "<h3 id=\"{}\">{} {}",
        esc(&svc.name),
        esc(&svc.name),
        badge(&svc.health)
    );
    if svc.drained {
        h.push_str(" <span class=\"badge drained\">drained</span>");
    }
    if svc.maintenance {
        h.push_str(" <span class=\"badge drained\">maintenance</span>");
    }
    let _ = write!(
        h,
        " <span class=\"muted\">{} routing, TTL {}",
        esc(&svc.method),
        svc.ttl
    );
    if rates {
        match svc.queries_per_second {
            Some(q) => {
                let _ = write!(h, ", {q:.1} queries/s");
            }
            None => h.push_str(", queries/s unknown"),
        }
    }
    h.push_str(
        "</span></h3>\n<table><tr><th>endpoint</th><th>answers</th><th>health</th>\
                <th>since</th><th>last probe</th></tr>\n",
    );
    for e in &svc.endpoints {
        endpoint(h, e);
    }
    h.push_str("</table>\n");
}

fn endpoint(h: &mut String, e: &EndpointStatus) {
    let mut state = badge(&e.health);
    if e.drained {
        state.push_str(" <span class=\"badge drained\">drained</span>");
    }
    if e.maintenance {
        state.push_str(" <span class=\"badge drained\">maintenance</span>");
    }
    let mut name = esc(&e.name);
    if let Some(w) = e.weight {
        let _ = write!(name, " <span class=\"muted\">weight {w}</span>");
    }
    if let Some(p) = e.priority {
        let _ = write!(name, " <span class=\"muted\">priority {p}</span>");
    }
    let since: Vec<String> = e
        .probes
        .iter()
        .filter_map(|p| p.since.as_deref())
        .map(esc)
        .collect();
    let mut last = String::new();
    for p in &e.probes {
        let _ = write!(
            last,
            "{} <code>{}</code>: ",
            esc(&p.protocol),
            esc(&p.target)
        );
        match &p.last {
            Some(run) => {
                let _ = write!(last, "{} in {:.1} ms", esc(&run.status), run.latency_ms);
                if let Some(err) = &run.error {
                    let _ = write!(last, " ({})", esc(err));
                }
            }
            None => last.push_str("not run yet"),
        }
        last.push_str("<br>");
    }
    if e.probes.is_empty() {
        last.push_str("<span class=\"muted\">not probed</span>");
    }
    let since = if e.probes.is_empty() {
        vec!["<span class=\"muted\">load</span>".to_string()]
    } else {
        since
    };
    let _ = writeln!(
        h,
        "<tr><td>{name}</td><td>{}</td><td>{state}</td><td>{}</td><td>{last}</td></tr>",
        esc(&e.target),
        since.join("<br>")
    );
}

/// A coloured word: up, down, degraded, partial.
fn badge(word: &str) -> String {
    let class = match word {
        "up" | "down" | "degraded" | "partial" => word,
        _ => "muted",
    };
    format!("<span class=\"badge {class}\">{}</span>", esc(word))
}

/// `1d 2h 3m 4s`, leading zero units left out.
fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// Text made safe for HTML element content and quoted attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The cluster section: this node, fallback and digest badges, and a row
/// per peer.
fn cluster(h: &mut String, c: &ClusterStatus) {
    let _ = write!(
        h,
        "<h2>Cluster</h2>\n<p>this node <code>{}</code>",
        esc(&c.node)
    );
    if c.fallback {
        h.push_str(
            " &middot; <span class=\"badge down\">fallback</span> hearing from fewer than \
             half of the other nodes: answering with this node's own verdicts",
        );
    }
    if c.digest_mismatch {
        h.push_str(
            " &middot; <span class=\"badge down\">config digest differs</span> \
             from the majority of the nodes",
        );
    }
    for (reason, count) in &c.refused {
        let _ = write!(h, " &middot; refused ({}): {count}", esc(reason));
    }
    h.push_str(
        "</p>\n<table><tr><th>peer</th><th>heard</th><th>last push</th>\
                <th>config digest</th><th>takes our pushes</th></tr>\n",
    );
    for p in &c.peers {
        let heard = if p.fresh {
            "<span class=\"badge up\">fresh</span>"
        } else {
            "<span class=\"badge down\">stale</span>"
        };
        let ago = p.last_push_ms_ago.map_or("never".to_string(), |ms| {
            format!("{:.1} s ago", ms as f64 / 1000.0)
        });
        let digest = match (&p.digest, p.same_digest) {
            (None, _) => "unknown".to_string(),
            (Some(d), true) => format!("<code>{}</code> same", esc(d.get(..16).unwrap_or(d))),
            (Some(d), false) => format!(
                "<code>{}</code> <span class=\"badge down\">differs</span>",
                esc(d.get(..16).unwrap_or(d))
            ),
        };
        let reach = match p.reachable {
            None => "not tried",
            Some(true) => "yes",
            Some(false) => "no",
        };
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td>{heard}</td><td>{ago}</td><td>{digest}</td><td>{reach}</td></tr>",
            esc(&p.node)
        );
    }
    h.push_str("</table>\n");
}

/// The status as a plain-text table, for `steerdns status`.
pub fn render_table(s: &Status) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "steerdns {}, up {} (since {})",
        s.version,
        uptime(s.uptime_seconds),
        s.started
    );
    let _ = writeln!(t, "config    {} loaded {}", s.config.file, s.config.loaded);
    let _ = writeln!(
        t,
        "sha256    {}",
        s.config.sha256.as_deref().unwrap_or("(computing)")
    );
    if let Some(r) = &s.config.last_reload {
        let outcome = r
            .error
            .as_deref()
            .map_or("ok".to_string(), |e| format!("refused: {e}"));
        let _ = writeln!(t, "reload    {} {outcome}", r.at);
    }
    if s.node_drained {
        let _ = writeln!(t, "node      DRAINED");
    }
    for d in &s.drains {
        let mut safe = match d.safe_in_seconds {
            0 => "safe to stop now".to_string(),
            n => format!("safe to stop at {} (in {n} s)", d.safe_at),
        };
        if let Some(c) = &d.cluster {
            safe.push_str(&format!("; every node: {}", everywhere(c)));
        }
        let pending = if d.in_force { "" } else { ", not yet in force" };
        let _ = writeln!(t, "drained   {} ({}{pending}): {safe}", d.target, d.reason);
    }
    for w in s.maintenance.iter().filter(|w| w.phase != "over") {
        let _ = writeln!(
            t,
            "window    {} {} .. {} ({})",
            w.target, w.start, w.end, w.phase
        );
    }
    if let Some(c) = &s.cluster {
        let fresh = c.peers.iter().filter(|p| p.fresh).count();
        let _ = writeln!(
            t,
            "cluster   {} hears {fresh} of {} peers{}{}",
            c.node,
            c.peers.len(),
            if c.fallback {
                ", FALLBACK: own verdicts only"
            } else {
                ""
            },
            if c.digest_mismatch {
                ", CONFIG DIGEST DIFFERS"
            } else {
                ""
            },
        );
    }
    let mut rows = vec![[
        "SERVICE".to_string(),
        "METHOD".into(),
        "ENDPOINT".into(),
        "ANSWERS".into(),
        "HEALTH".into(),
        "DRAIN".into(),
        "SINCE".into(),
        "LAST PROBE".into(),
    ]];
    for svc in &s.services {
        let mut state = svc.health.clone();
        if svc.drained {
            state.push_str(" drained");
        }
        if svc.maintenance {
            state.push_str(" maintenance");
        }
        // The service's rate goes where its endpoints' targets go.
        let rate = svc
            .queries_per_second
            .map_or(String::new(), |r| format!("{r:.1} queries/s"));
        rows.push([
            svc.name.clone(),
            svc.method.clone(),
            String::new(),
            rate,
            state,
            String::new(),
            String::new(),
            String::new(),
        ]);
        for e in &svc.endpoints {
            let last = e
                .probes
                .iter()
                .map(|p| match &p.last {
                    Some(run) => match &run.error {
                        Some(err) => format!("{} {:.1}ms {err}", run.status, run.latency_ms),
                        None => format!("{} {:.1}ms", run.status, run.latency_ms),
                    },
                    None => "not run yet".into(),
                })
                .collect::<Vec<_>>()
                .join("; ");
            let since = e
                .probes
                .iter()
                .filter_map(|p| p.since.clone())
                .min()
                .unwrap_or_default();
            rows.push([
                String::new(),
                String::new(),
                e.name.clone(),
                e.target.clone(),
                e.health.clone(),
                if e.drained { "drained" } else { "-" }.into(),
                since,
                last,
            ]);
        }
    }
    let mut widths = [0usize; 8];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    t.push('\n');
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        let _ = writeln!(t, "{}", line.trim_end());
    }
    if !s.changes.is_empty() {
        let _ = writeln!(t, "\nrecent health changes:");
        for c in s.changes.iter().take(CHANGES_SHOWN) {
            let reason = c
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            let _ = writeln!(t, "  {} {} -> {}{reason}", c.at, c.probe, c.to);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_section_shows_fallback_digest_and_peers() {
        let status: Status = serde_json::from_value(serde_json::json!({
            "version": "0", "started": "s", "uptime_seconds": 1, "node_drained": false,
            "config": {"file": "f", "sha256": null, "files": [], "loaded": "l", "last_reload": null},
            "services": [], "changes": [],
            "cluster": {
                "node": "198.51.100.1:8053", "fallback": true, "digest": "aaaa",
                "digest_mismatch": true, "refused": {"replay": 2},
                "peers": [
                    {"node": "<b>", "fresh": false, "last_push_ms_ago": 12500,
                     "digest": "bbbb", "same_digest": false, "reachable": false},
                    {"node": "198.51.100.3:8053", "fresh": true, "last_push_ms_ago": null,
                     "digest": null, "same_digest": false, "reachable": null}
                ]
            }
        }))
        .unwrap();
        let page = render(&status);
        assert!(page.contains("<span class=\"badge down\">fallback</span>"));
        assert!(page.contains("<span class=\"badge down\">config digest differs</span>"));
        assert!(page.contains("refused (replay): 2"));
        assert!(page.contains("<td><code>&lt;b&gt;</code></td><td><span class=\"badge down\">stale</span></td><td>12.5 s ago</td>"));
        assert!(page.contains("<td>never</td><td>unknown</td><td>not tried</td>"));
        let table = render_table(&status);
        assert!(
            table.contains("cluster   198.51.100.1:8053 hears 1 of 2 peers, FALLBACK: own verdicts only, CONFIG DIGEST DIFFERS"),
            "{table}"
        );

        let mut calm = status.clone();
        let cluster = calm.cluster.as_mut().unwrap();
        (cluster.fallback, cluster.digest_mismatch) = (false, false);
        assert!(!render(&calm).contains("badge down\">fallback"));
        assert!(!render_table(&calm).contains("FALLBACK"));
        calm.cluster = None;
        assert!(!render(&calm).contains("<h2>Cluster</h2>"));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn uptimes_read_short() {
        assert_eq!(uptime(5), "5s");
        assert_eq!(uptime(65), "1m 5s");
        assert_eq!(uptime(3 * 3600 + 120), "3h 2m");
        assert_eq!(uptime(2 * 86_400 + 3600), "2d 1h");
    }
}
