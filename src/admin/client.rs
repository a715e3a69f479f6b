//! A small client for the admin API, for `steerdns status` and the
//! cluster's pushes to other nodes: one request per connection over HTTP/1.1 (hyper's client connection), with a
//! timeout over the whole exchange.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;

/// Why a request to the admin API failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection, or it broke.
    #[error("cannot reach the admin API at {addr}: {message}")]
    Unreachable {
        /// Where it was asked.
        addr: SocketAddr,
        /// What went wrong.
        message: String,
    },
    /// No answer within the timeout.
    #[error("the admin API at {0} did not answer within {1:?}")]
    Timeout(SocketAddr, Duration),
}

/// `GET path` from the admin API at `addr`, with `token` as the bearer
/// token when given. Returns the status and the body.
pub async fn get(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), ClientError> {
    let mut request = Request::get(path);
    if let Some(t) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    send(addr, request, Bytes::new(), timeout).await
}

/// `POST path` of `body` to the admin API at `addr`, with the extra
/// `headers`. Returns the status and the body.
pub async fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), ClientError> {
    let mut request = Request::post(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(addr, request, body, timeout).await
}

async fn send(
    addr: SocketAddr,
    request: hyper::http::request::Builder,
    body: Bytes,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), ClientError> {
    tokio::time::timeout(timeout, exchange(addr, request, body))
        .await
        .map_err(|_| ClientError::Timeout(addr, timeout))?
        .map_err(|message| ClientError::Unreachable { addr, message })
}

async fn exchange(
    addr: SocketAddr,
    request: hyper::http::request::Builder,
    body: Bytes,
) -> Result<(StatusCode, Bytes), String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let request = request
        .header(HOST, addr.to_string())
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    driver.abort();
    Ok((status, body))
}
