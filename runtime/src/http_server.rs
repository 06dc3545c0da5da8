//! The HTTP listener: accepts connections and serves the API's router on each with hyper's
//! HTTP/1.1 server, under the limits a server facing untrusted clients needs and `axum::serve`
//! does not apply (it runs hyper without a timer, so a client that sends half a request line
//! holds its connection for ever):
//!
//! - a **header-read timeout**: a request's head must arrive within it, and since hyper starts
//!   the timer whenever it waits for a head, an idle keep-alive connection is closed after it
//!   too;
//! - a **request timeout**: reading the body and producing the answer, else 408;
//! - a **connection cap**, overall and per client address (IPv6 clients by /64, which one
//!   host usually holds whole): a connection over either is answered 503 and closed at once.
//!
//! This module owns the accept loop and the per-connection tasks; what a request means is the
//! router's business.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::Service;
use tracing::{debug, warn};

use crate::api_error::ApiError;
use crate::client_addr::client_key;
use crate::slots::Slots;

/// `[http]` in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// A request's line and headers must arrive within this many seconds of the server
    /// waiting for them; an idle keep-alive connection is closed after as long.
    pub header_read_timeout_seconds: u64,
    /// Reading a request's body and answering it may take this long, else 408.
    pub request_timeout_seconds: u64,
    /// Connections open at once, from everyone.
    pub max_connections: usize,
    /// Connections open at once from one client address (one /64 for IPv6). Behind a reverse
    /// proxy every client has the proxy's address: raise it there.
    pub max_connections_per_ip: usize,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            header_read_timeout_seconds: 10,
            request_timeout_seconds: 60,
            max_connections: 4_096,
            max_connections_per_ip: 256,
        }
    }
}

/// What the listener has refused or cut short, for `/api/v1/stats`.
#[derive(Debug, Default)]
pub struct HttpCounters {
    pub connections_accepted: AtomicU64,
    pub connections_open: AtomicU64,
    /// Refused because `max_connections` were open.
    pub refused_server_full: AtomicU64,
    /// Refused because `max_connections_per_ip` were open from the client's address.
    pub refused_per_ip: AtomicU64,
    /// Closed because a request's head did not arrive in time (or the connection sat idle).
    pub header_timeouts: AtomicU64,
    /// Answered 408 because the request took longer than `request_timeout_seconds`.
    pub request_timeouts: AtomicU64,
}

/// The counters as `/api/v1/stats` shows them.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct HttpStats {
    pub connections_accepted: u64,
    pub connections_open: u64,
    pub refused_server_full: u64,
    pub refused_per_ip: u64,
    pub header_timeouts: u64,
    pub request_timeouts: u64,
}

impl HttpCounters {
    pub fn snapshot(&self) -> HttpStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        HttpStats {
            connections_accepted: get(&self.connections_accepted),
            connections_open: get(&self.connections_open),
            refused_server_full: get(&self.refused_server_full),
            refused_per_ip: get(&self.refused_per_ip),
            header_timeouts: get(&self.header_timeouts),
            request_timeouts: get(&self.request_timeouts),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` turns true; then stops accepting, lets each
/// connection finish the request it is serving, and returns when all have closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: HttpConfig,
    counters: Arc<HttpCounters>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let request_timeout = Duration::from_secs(config.request_timeout_seconds.max(1));
    let timeouts = Arc::clone(&counters);
    let router = router.layer(axum::middleware::from_fn(move |request, next| {
        time_limited(request, next, request_timeout, Arc::clone(&timeouts))
    }));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(
            config.header_read_timeout_seconds.max(1),
        ))
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let clients: Arc<Slots<IpAddr>> = Arc::default();

    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, mostly: a pause lets connections close.
                    warn!(error = %e, "cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        counters
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            counters.refused_server_full.fetch_add(1, Ordering::Relaxed);
            refuse(
                stream,
                "the server has as many connections open as it takes",
            );
            continue;
        };
        let Some(client) = clients.take(client_key(remote.ip()), config.max_connections_per_ip)
        else {
            counters.refused_per_ip.fetch_add(1, Ordering::Relaxed);
            refuse(stream, "too many connections open from your address");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(remote));
            let mut router = router.clone();
            async move { router.call(request.map(axum::body::Body::new)).await }
        });
        let connection = http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let counters = Arc::clone(&counters);
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let _held = (slot, client);
            counters.connections_open.fetch_add(1, Ordering::Relaxed);
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            counters.connections_open.fetch_sub(1, Ordering::Relaxed);
            if let Err(e) = result {
                if e.is_timeout() {
                    counters.header_timeouts.fetch_add(1, Ordering::Relaxed);
                }
                debug!(%remote, error = %e, "HTTP connection ended with an error");
            }
        });
    }
    // Every connection holds a slot until it ends: all slots back means all closed.
    let _all = slots
        .acquire_many(u32::try_from(config.max_connections.max(1)).unwrap_or(u32::MAX))
        .await;
    Ok(())
}

/// Answers 503 on a connection over a cap, without waiting for the client to read it, and
/// closes it.
fn refuse(stream: TcpStream, why: &str) {
    let body =
        serde_json::json!({"error": {"code": "too_many_connections", "message": why}}).to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    // Best effort: a fresh socket's send buffer takes this without blocking.
    let _ = stream.try_write(response.as_bytes());
}

/// The request timeout: the handler's answer (body read included) within `limit`, else 408.
async fn time_limited(
    request: Request,
    next: Next,
    limit: Duration,
    counters: Arc<HttpCounters>,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            counters.request_timeouts.fetch_add(1, Ordering::Relaxed);
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request was not complete and answered within {} s",
                    limit.as_secs()
                ),
            )
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_share_by_address_and_ipv6_by_64() {
        let clients: Arc<Slots<IpAddr>> = Arc::default();
        let take = |ip: &str| clients.take(client_key(ip.parse().unwrap()), 2);
        let _a = take("2001:db8::1").unwrap();
        let _b = take("2001:db8::2").unwrap();
        assert!(take("2001:db8::3").is_none(), "the /64 is full");
        assert!(take("192.0.2.1").is_some());
    }
}
