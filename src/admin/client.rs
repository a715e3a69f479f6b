//! A small client for the admin API, for `steerdns status`: one request
//! per connection over HTTP/1.1 (hyper's client connection), with a
//! timeout over the whole exchange.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
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
    tokio::time::timeout(timeout, exchange(addr, path, token))
        .await
        .map_err(|_| ClientError::Timeout(addr, timeout))?
        .map_err(|message| ClientError::Unreachable { addr, message })
}

async fn exchange(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> Result<(StatusCode, Bytes), String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let mut request = Request::get(path).header(HOST, addr.to_string());
    if let Some(t) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    let request = request
        .body(Empty::<Bytes>::new())
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
