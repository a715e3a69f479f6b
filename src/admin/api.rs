//! The routes of the admin listener. Each answers JSON (the page, HTML);
//! errors are `{"error": "..."}` with a fitting status code.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/` | the status page |
//! | GET | `/api/v1/status` | everything below in one answer |
//! | GET | `/api/v1/version` | version, uptime, config digest |
//! | GET | `/api/v1/services` | services, endpoints, health, probes, drains |
//! | GET | `/api/v1/health/changes` | recent health changes, newest first |
//! | GET | `/api/v1/drain` | the drain file's state |
//! | POST | `/api/v1/drain`, `/api/v1/undrain` | drain or undrain node, service or endpoint |
//! | POST | `/api/v1/reload` | reload as SIGHUP does; the errors when refused |
//! | GET | `/api/v1/explain` | `steerdns explain` against the live health |
//! | POST | `/api/v1/cluster/push` | another node's verdicts; HMAC-signed, no bearer token |

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::auth::Token;
use super::limits::{read_body, BodyError};
use super::rates::ServiceRates;
use super::status::{
    drain_status, drains_of, ClusterSafe, DrainStatus, QueryRates, Sources, Status,
};
use super::AdminState;
use crate::config::AdminConfig;
use crate::drain::{DrainError, DrainState, DrainTarget};
use crate::explain::{self, Question};
use crate::last_sent::unix_now;

/// Every path served, with the methods it allows (for `Allow` on 405).
/// `docs/openapi.yaml` documents each; a test checks that it does.
const ROUTES: &[(&str, &str)] = &[
    ("/", "GET"),
    ("/api/v1/status", "GET"),
    ("/api/v1/version", "GET"),
    ("/api/v1/services", "GET"),
    ("/api/v1/health/changes", "GET"),
    ("/api/v1/explain", "GET"),
    ("/api/v1/drain", "GET, POST"),
    ("/api/v1/undrain", "POST"),
    ("/api/v1/reload", "POST"),
    ("/metrics", "GET"),
    (crate::cluster::PUSH_PATH, "POST"),
];

/// A response with its whole body.
pub type Reply = Response<Full<Bytes>>;

/// The routes and what they need.
pub struct Api {
    state: AdminState,
    token: Option<Token>,
    max_body: usize,
    request_timeout: Duration,
    /// Drains are read-modify-write of one file: one at a time.
    drain_lock: tokio::sync::Mutex<()>,
    /// Readings of the per-service answer counters, when there are
    /// metrics.
    rates: Option<Arc<ServiceRates>>,
}

/// The body of a drain or undrain request: neither key drains the node.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainRequest {
    service: Option<String>,
    endpoint: Option<String>,
}

/// The answer to a drain or undrain.
#[derive(Debug, Serialize)]
struct DrainReply<'a> {
    /// What was drained or undrained, in words.
    target: String,
    drained: bool,
    /// The whole drain state now in the file.
    state: &'a DrainState,
    /// For a drain: when the target is safe to stop.
    safe: Option<DrainStatus>,
}

/// The answer to `GET /api/v1/drain`: the file's keys, and `safe`.
#[derive(Debug, Serialize)]
struct DrainStateReply<'a> {
    #[serde(flatten)]
    state: &'a DrainState,
    /// Each drained thing with when it is safe to stop.
    safe: &'a [DrainStatus],
}

impl Api {
    /// The routes over `state`, with `config`'s token and limits.
    pub fn new(state: AdminState, config: &AdminConfig, rates: Option<Arc<ServiceRates>>) -> Api {
        Api {
            state,
            token: config.token.as_deref().map(Token::new),
            max_body: config.max_body,
            request_timeout: config.request_timeout,
            drain_lock: tokio::sync::Mutex::new(()),
            rates,
        }
    }

    /// Answers one request: checks the token, then routes it, within the
    /// request timeout.
    pub async fn handle(&self, request: Request<Incoming>) -> Reply {
        // A push's signature is its authentication: peers hold the
        // cluster secret, not the operators' bearer token.
        let push = request.uri().path() == crate::cluster::PUSH_PATH;
        if let (Some(token), false) = (&self.token, push) {
            if !token.admits(request.headers()) {
                let mut reply = error(StatusCode::UNAUTHORIZED, "a bearer token is required");
                reply
                    .headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return reply;
            }
        }
        match tokio::time::timeout(self.request_timeout, self.route(request)).await {
            Ok(reply) => reply,
            Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "request timed out"),
        }
    }

    async fn route(&self, request: Request<Incoming>) -> Reply {
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or("").to_string();
        let method = request.method().clone();
        let Some(&(_, allowed)) = ROUTES.iter().find(|(p, _)| *p == path) else {
            return error(StatusCode::NOT_FOUND, &format!("no route {path}"));
        };
        let get = method == Method::GET || method == Method::HEAD;
        match (path.as_str(), get, method == Method::POST) {
            ("/", true, _) => html(super::page::render(&self.status().await)),
            ("/api/v1/status", true, _) => json(StatusCode::OK, &self.status().await),
            ("/api/v1/version", true, _) => {
                let s = self.status().await;
                json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "version": s.version,
                        "started": s.started,
                        "uptime_seconds": s.uptime_seconds,
                        "config_sha256": s.config.sha256,
                    }),
                )
            }
            ("/api/v1/services", true, _) => json(StatusCode::OK, &self.status().await.services),
            ("/api/v1/health/changes", true, _) => {
                json(StatusCode::OK, &self.status().await.changes)
            }
            ("/api/v1/explain", true, _) => self.explain(&query),
            ("/api/v1/drain", true, _) => self.drain_state().await,
            ("/api/v1/drain", _, true) => self.drain(request, true).await,
            ("/api/v1/undrain", _, true) => self.drain(request, false).await,
            ("/api/v1/reload", _, true) => self.reload().await,
            (crate::cluster::PUSH_PATH, _, true) => self.cluster_push(request).await,
            ("/metrics", true, _) => match &self.state.metrics {
                Some(m) => reply(
                    StatusCode::OK,
                    crate::metrics::CONTENT_TYPE,
                    m.encode().into_bytes(),
                ),
                None => error(StatusCode::NOT_FOUND, "no metrics in this process"),
            },
            _ => {
                let mut reply = error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &format!("{method} is not allowed on {path}"),
                );
                reply
                    .headers_mut()
                    .insert(ALLOW, HeaderValue::from_static(allowed));
                reply
            }
        }
    }

    /// The status, built now.
    async fn status(&self) -> Status {
        // A drain file that cannot be read says nothing about the node;
        // the services' own drains come from the health view. Read on the
        // blocking pool, as every file is here.
        let drain = self.read_drain_state().await.unwrap_or_default();
        let snapshot = self.state.snapshot.load();
        let loaded = self.state.loaded.borrow().clone();
        let per_second = match (&self.rates, &self.state.metrics) {
            (Some(rates), Some(metrics)) => {
                rates.per_second(Instant::now(), &metrics.service_totals())
            }
            _ => None,
        };
        // Known rates: a service without answers answers at 0 per second.
        let rates = per_second.map(|r| move |name: &str| Some(r.get(name).copied().unwrap_or(0.0)));
        let now = unix_now();
        let mut status = Status::build(&Sources {
            snapshot: &snapshot,
            journal: &self.state.journal,
            loaded: &loaded,
            node_drained: drain.node,
            started: self.state.started.1,
            uptime: self.state.started.0.elapsed(),
            rates: rates.as_ref().map(|r| r as &QueryRates),
            drains: &drain.targets(),
            now,
            cluster: self.state.cluster.as_ref().map(|c| c.status()),
        });
        self.cluster_safe(&mut status.drains, now);
        status
    }

    /// With `[cluster]`, adds to each drained service and endpoint that is
    /// in force here when it is safe to stop on every node.
    fn cluster_safe(&self, drains: &mut [DrainStatus], now: u64) {
        let Some(cluster) = &self.state.cluster else {
            return;
        };
        for d in drains
            .iter_mut()
            .filter(|d| d.service.is_some() && d.in_force)
        {
            let everywhere = cluster.safe_everywhere(&d.target, d.safe_at_unix);
            d.cluster = Some(ClusterSafe::new(everywhere, now));
        }
    }

    /// The drain file's state, read on the blocking pool as every file is
    /// here; nothing drained without a state folder.
    async fn read_drain_state(&self) -> Result<DrainState, String> {
        let Some(dir) = self.state.state_dir.clone() else {
            return Ok(DrainState::default());
        };
        match tokio::task::spawn_blocking(move || DrainState::load(&dir)).await {
            Ok(Ok(state)) => Ok(state),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// `POST /api/v1/cluster/push`: another node's verdicts, taken only
    /// with a valid signature (see [`crate::cluster::message`]).
    async fn cluster_push(&self, request: Request<Incoming>) -> Reply {
        let Some(cluster) = &self.state.cluster else {
            return error(StatusCode::NOT_FOUND, "this node has no [cluster]");
        };
        let signature = request
            .headers()
            .get(crate::cluster::SIGNATURE_HEADER)
            .map(|v| v.as_bytes().to_vec());
        // A push carries all of its sender's verdicts: more than the
        // operator routes' bodies.
        let limit = self.max_body.max(crate::cluster::MAX_PUSH);
        let body = match read_body(request.into_body(), limit).await {
            Ok(body) => body,
            Err(e @ BodyError::TooLarge(_)) => {
                return error(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string())
            }
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        match cluster.receive(&body, signature.as_deref()) {
            Ok(()) => json(StatusCode::OK, &serde_json::json!({"accepted": true})),
            Err(refusal) => error(
                StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::UNAUTHORIZED),
                &refusal.to_string(),
            ),
        }
    }

    /// `GET /api/v1/explain?name=&type=&client=&via=`.
    fn explain(&self, query: &str) -> Reply {
        let mut name = None;
        let mut qtype = "A".to_string();
        let mut client = None;
        let mut via = std::net::IpAddr::from([127, 0, 0, 1]);
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "name" => name = Some(value.into_owned()),
                "type" => qtype = value.into_owned(),
                "client" => client = Some(value.into_owned()),
                "via" => match value.parse() {
                    Ok(a) => via = a,
                    Err(_) => return error(StatusCode::BAD_REQUEST, "via: not an address"),
                },
                other => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("unknown parameter {other:?} (name, type, client, via)"),
                    )
                }
            }
        }
        let (Some(name), Some(client)) = (name, client) else {
            return error(StatusCode::BAD_REQUEST, "name and client are required");
        };
        let question = match Question::from_text(&name, &qtype, &client, via) {
            Ok(q) => q,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        // The live snapshot, so its live health view: what a query now gets.
        match explain::explain(&self.state.snapshot.load(), &question) {
            Ok(report) => json(StatusCode::OK, &report),
            Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
        }
    }

    /// `GET /api/v1/drain`: the drain file, and when each drained thing
    /// (active maintenance windows too) is safe to stop.
    async fn drain_state(&self) -> Reply {
        match self.read_drain_state().await {
            Ok(state) => {
                let snapshot = self.state.snapshot.load();
                let now = unix_now();
                let mut safe = drains_of(&snapshot, &state.targets(), now);
                self.cluster_safe(&mut safe, now);
                json(
                    StatusCode::OK,
                    &DrainStateReply {
                        state: &state,
                        safe: &safe,
                    },
                )
            }
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        }
    }

    /// `POST /api/v1/drain` and `/api/v1/undrain`.
    async fn drain(&self, request: Request<Incoming>, drained: bool) -> Reply {
        let Some(dir) = self.state.state_dir.clone() else {
            return error(
                StatusCode::CONFLICT,
                "drain needs a [state] dir to keep its state in",
            );
        };
        let body = match read_body(request.into_body(), self.max_body).await {
            Ok(body) => body,
            Err(e @ BodyError::TooLarge(_)) => {
                return error(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string())
            }
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let asked: DrainRequest = if body.iter().all(u8::is_ascii_whitespace) {
            DrainRequest::default()
        } else {
            match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad body: {e}")),
            }
        };
        if asked.endpoint.is_some() && asked.service.is_none() {
            return error(StatusCode::BAD_REQUEST, "endpoint needs service");
        }
        let target = {
            let snap = self.state.snapshot.load();
            DrainTarget::find(
                asked.service.as_deref(),
                asked.endpoint.as_deref(),
                snap.services
                    .iter()
                    .map(|r| (&r.name, r.endpoints.iter().map(|e| &*e.name).collect())),
            )
        };
        let target = match target {
            Ok(t) => t,
            Err(e) => return error(StatusCode::NOT_FOUND, &e.to_string()),
        };
        let _one_at_a_time = self.drain_lock.lock().await;
        let written = {
            let (dir, target) = (dir.clone(), target.clone());
            tokio::task::spawn_blocking(move || DrainState::update(&dir, &target, drained)).await
        };
        let state = match written {
            Ok(Ok(state)) => state,
            Ok(Err(e @ DrainError::Io { .. })) | Ok(Err(e @ DrainError::Invalid { .. })) => {
                return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
            }
            Ok(Err(e)) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
        // Applied now rather than at the watcher's next look (within a
        // second): the file is the truth, and the watcher applies the same.
        let snapshot = self.state.snapshot.load();
        state.apply(&snapshot);
        tracing::info!(%target, drained, "drain changed through the admin API");
        let safe = drained
            .then(|| drain_status(&snapshot, &target, "drain", unix_now()))
            .flatten();
        json(
            StatusCode::OK,
            &DrainReply {
                target: target.to_string(),
                drained,
                state: &state,
                safe,
            },
        )
    }

    /// `POST /api/v1/reload`.
    async fn reload(&self) -> Reply {
        match self.state.reload.reload().await {
            Ok(stats) => json(
                StatusCode::OK,
                &serde_json::json!({
                    "reloaded": true,
                    "zones": stats.zones,
                    "names": stats.names,
                    "services": stats.services,
                    "kept_health": stats.kept_health,
                    "took_ms": stats.took.as_secs_f64() * 1000.0,
                }),
            ),
            Err(e) => {
                let text = e.to_string();
                json(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &serde_json::json!({
                        "reloaded": false,
                        "error": "reload refused; the previous configuration stays in force",
                        "errors": text.lines().collect::<Vec<_>>(),
                    }),
                )
            }
        }
    }
}

/// A JSON reply.
fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Reply {
    match serde_json::to_vec_pretty(value) {
        Ok(mut body) => {
            body.push(b'\n');
            reply(status, "application/json", body)
        }
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            e.to_string().into_bytes(),
        ),
    }
}

/// An HTML reply.
fn html(page: String) -> Reply {
    reply(
        StatusCode::OK,
        "text/html; charset=utf-8",
        page.into_bytes(),
    )
}

/// `{"error": message}` with `status`.
fn error(status: StatusCode, message: &str) -> Reply {
    json(status, &serde_json::json!({ "error": message }))
}

fn reply(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    let headers = reply.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Live state: a cached copy would be a lie.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_in_the_openapi_file() {
        let doc = include_str!("../../docs/openapi.yaml");
        let paths = &doc[doc.find("\npaths:\n").unwrap()..doc.find("\ncomponents:\n").unwrap()];
        for (path, methods) in ROUTES {
            let at = paths
                .find(&format!("\n  {path}:\n"))
                .unwrap_or_else(|| panic!("{path} is not in docs/openapi.yaml"));
            // The operations of this path: up to the next path.
            let body = &paths[at + 1..];
            let end = body[1..].find("\n  /").map_or(body.len(), |e| e + 1);
            for m in methods.split(", ") {
                let op = format!("\n    {}:", m.to_lowercase());
                assert!(body[..end].contains(&op), "{m} {path} is not documented");
            }
        }
    }
}
