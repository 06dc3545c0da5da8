//! The HTTP(S) poller: one `reqwest` client (rustls) whose redirects we follow by hand, so that
//! every hop is put to the caller's allow-check before anything is sent to it, and credentials
//! only ever go to the origin they were configured for.
//!
//! Error mapping follows [`PollError`]: no answer at all (connection refused, DNS, timeout) is
//! `Unreachable`; an answer we cannot use (TLS or protocol error, oversized body, redirect loop)
//! is `Failed`; a URL the allow-check refuses is `Denied`; an address the egress policy refuses
//! (a literal, or what a name resolved to) is `Refused`, before any connection. Any HTTP status, 4xx and 5xx included,
//! is an answer and comes back as an [`HttpResponse`] — what it means is the caller's business.
//!
//! Error messages name the method and URL but never the query string (APIs put keys there) nor
//! any header value.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use tokio::time::Instant;

use super::PollError;
use crate::egress::{EgressDenied, EgressPolicy};
use crate::event::HttpResponse;

/// Default cap on a response body, for callers that have no better figure.
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// Redirects followed per request; the next one fails the call.
pub const MAX_REDIRECTS: usize = 5;

/// The `User-Agent` of every request unless the caller sets its own.
pub const USER_AGENT: &str = concat!("opsconductor/", env!("CARGO_PKG_VERSION"));

/// Headers that carry the caller's credentials: dropped once a redirect leaves the origin, so a
/// device (or whoever controls its redirects) cannot forward them to a third party. `Host` goes
/// too: it names the original server and would be wrong anywhere else.
const ORIGIN_BOUND_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    header::HOST,
];

/// Headers that describe a request body: dropped with the body when a redirect turns the request
/// into a GET.
const BODY_HEADERS: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::CONTENT_LOCATION,
    header::TRANSFER_ENCODING,
];

/// How to authenticate to a target's HTTP API. `Debug` shows no secret.
#[derive(Clone, PartialEq, Eq)]
pub enum HttpAuth {
    /// `Authorization: Basic base64(username:password)`.
    Basic { username: String, password: String },
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// Any single header, e.g. `X-Api-Key: <value>`.
    Header { name: String, value: String },
}

impl fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpAuth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            HttpAuth::Bearer(_) => f.debug_tuple("Bearer").field(&"<redacted>").finish(),
            HttpAuth::Header { name, .. } => f
                .debug_struct("Header")
                .field("name", name)
                .field("value", &"<redacted>")
                .finish(),
        }
    }
}

/// What an auth setting turned into, validated once per request rather than per hop.
enum AuthHeader {
    /// Left to reqwest, which does the base64.
    Basic {
        username: String,
        password: String,
    },
    Header(HeaderName, HeaderValue),
}

impl AuthHeader {
    fn new(auth: &HttpAuth) -> Result<AuthHeader, PollError> {
        match auth {
            HttpAuth::Basic { username, password } => Ok(AuthHeader::Basic {
                username: username.clone(),
                password: password.clone(),
            }),
            HttpAuth::Bearer(token) => {
                let value = sensitive_value(&format!("Bearer {token}")).ok_or_else(|| {
                    PollError::Failed(
                        "the bearer token contains characters not allowed in an HTTP header"
                            .to_owned(),
                    )
                })?;
                Ok(AuthHeader::Header(header::AUTHORIZATION, value))
            }
            HttpAuth::Header { name, value } => {
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    PollError::Failed(format!(
                        "auth header name `{name}` is not a valid header name"
                    ))
                })?;
                let value = sensitive_value(value).ok_or_else(|| {
                    PollError::Failed(format!(
                        "the value of auth header `{name}` contains characters not allowed in an HTTP header"
                    ))
                })?;
                Ok(AuthHeader::Header(name, value))
            }
        }
    }

    fn name(&self) -> &HeaderName {
        match self {
            AuthHeader::Basic { .. } => &header::AUTHORIZATION,
            AuthHeader::Header(name, _) => name,
        }
    }
}

/// Header value marked sensitive, so hyper never logs it and HPACK never indexes it.
fn sensitive_value(value: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(value).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// One HTTP request to make.
#[derive(Clone)]
pub struct HttpCall {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE` or `HEAD` (exactly, upper case).
    pub method: String,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    /// Sent only if not empty.
    pub body: Vec<u8>,
}

impl fmt::Debug for HttpCall {
    /// Header names only, since an addon may pass its own credentials in them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCall")
            .field("method", &self.method)
            .field("url", &shown(&self.url))
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The HTTP client for polls. Clones share one connection pool.
#[derive(Debug, Clone)]
pub struct HttpPoller {
    client: reqwest::Client,
    egress: Arc<EgressPolicy>,
}

impl HttpPoller {
    /// A client that connects only where `egress` allows: host names go through
    /// [`PolicyResolver`], so the address checked is the address dialled; literal addresses
    /// (which reqwest dials without resolving) are checked in [`HttpPoller::request`].
    pub fn new(egress: Arc<EgressPolicy>) -> HttpPoller {
        let client = reqwest::Client::builder()
            // Redirects are followed in `request`, where each hop is allow-checked first.
            .redirect(reqwest::redirect::Policy::none())
            // Polled devices are reached directly: an `HTTP(S)_PROXY` set for internet egress
            // must not reroute management traffic, nor turn "device down" into a proxy's 502.
            .no_proxy()
            .dns_resolver(Arc::new(PolicyResolver {
                egress: Arc::clone(&egress),
            }))
            .user_agent(USER_AGENT)
            .build()
            // Only fails if the TLS backend cannot initialise, which is a build defect, not
            // something a caller could handle.
            .expect("the HTTP client (rustls) failed to initialise");
        HttpPoller { client, egress }
    }

    /// Refuses a URL whose host is a literal address the egress policy does not allow.
    fn check_literal(&self, url: &Url) -> Result<(), PollError> {
        // The URL parser has normalised literals (`2130706433`, `0x7f.1`) to dotted form.
        let host = url.host_str().unwrap_or_default();
        let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        else {
            return Ok(());
        };
        self.egress
            .check(ip)
            .map_err(|e| PollError::Refused(format!("{}: {e}", shown(url))))
    }

    /// Sends `call`, following redirects by hand (at most 5; 301/302/303 → GET without body,
    /// except that HEAD stays HEAD; 307/308 keep method and body). Every URL — the first and each
    /// redirect target — is passed to `allow` first; if it returns Err(reason) the call ends with
    /// `PollError::Denied(reason)` and the request is NOT sent.
    ///
    /// `auth` is applied only to URLs with the same origin (scheme, host, port) as `auth_origin`,
    /// never to another origin (so a redirect cannot leak credentials); it replaces a caller
    /// header of the same name. Caller-provided `Authorization`, `Proxy-Authorization`, `Cookie`
    /// and `Host` headers are dropped for good once a redirect changes origin. The body is
    /// capped at `max_body` bytes (`Failed` beyond it); `timeout` bounds the whole exchange
    /// including redirects and reading the body (`Unreachable` when it runs out).
    pub async fn request(
        &self,
        call: HttpCall,
        auth: Option<&HttpAuth>,
        auth_origin: &Url,
        allow: &(dyn Fn(&Url) -> Result<(), String> + Send + Sync),
        timeout: Duration,
        max_body: usize,
    ) -> Result<HttpResponse, PollError> {
        let started = Instant::now();
        // A timeout too large to add is as good as none.
        let deadline = started
            .checked_add(timeout)
            .unwrap_or_else(|| started + Duration::from_secs(365 * 24 * 3600));
        let timed_out = |method: &Method, url: &Url| {
            PollError::Unreachable(format!(
                "{}: no complete answer within {timeout:?}",
                target(method, url)
            ))
        };

        let mut method = parse_method(&call.method)?;
        check_http_url(&call.url)
            .map_err(|e| PollError::Failed(format!("{}: {e}", target(&method, &call.url))))?;
        let mut headers = caller_headers(&call.headers)?;
        let auth = auth.map(AuthHeader::new).transpose()?;
        let auth_origin = auth_origin.origin();
        let mut url = call.url;
        let mut body = Bytes::from(call.body);
        let mut redirects = 0;

        loop {
            allow(&url).map_err(PollError::Denied)?;
            self.check_literal(&url)?;

            let mut hop_headers = headers.clone();
            let mut basic = None;
            if let Some(auth) = &auth
                && url.origin() == auth_origin
            {
                hop_headers.remove(auth.name());
                match auth {
                    AuthHeader::Basic { username, password } => basic = Some((username, password)),
                    AuthHeader::Header(name, value) => {
                        hop_headers.insert(name.clone(), value.clone());
                    }
                }
            }
            let mut builder = self
                .client
                .request(method.clone(), url.clone())
                .headers(hop_headers);
            if let Some((username, password)) = basic {
                builder = builder.basic_auth(username, Some(password));
            }
            if !body.is_empty() {
                builder = builder.body(body.clone());
            }

            let response = tokio::time::timeout_at(deadline, builder.send())
                .await
                .map_err(|_| timed_out(&method, &url))?
                .map_err(|e| classify(e, &target(&method, &url)))?;

            let Some(next) = redirect_target(&response, &method, &url)? else {
                return read_response(response, deadline, max_body, &method, &url)
                    .await
                    .map_err(|e| match e {
                        BodyError::TimedOut => timed_out(&method, &url),
                        BodyError::Poll(e) => e,
                    });
            };

            if redirects == MAX_REDIRECTS {
                return Err(PollError::Failed(format!(
                    "{}: too many redirects (followed {MAX_REDIRECTS}, the next one points to {})",
                    target(&method, &url),
                    shown(&next)
                )));
            }
            redirects += 1;

            let status = response.status();
            // The response to a redirect is not read: dropping it closes that connection, which
            // is cheaper than draining a body of unknown size.
            drop(response);
            if matches!(
                status,
                StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::SEE_OTHER
            ) && method != Method::HEAD
            {
                method = Method::GET;
                body = Bytes::new();
                for name in &BODY_HEADERS {
                    headers.remove(name);
                }
            }
            if next.origin() != url.origin() {
                for name in &ORIGIN_BOUND_HEADERS {
                    headers.remove(name);
                }
            }
            url = next;
        }
    }
}

/// The base URL of a target: its address as given if it is an `http://` or `https://` URL, else
/// `http://<address>/` (address is `host`, `host:port`, `[v6]:port`, or a bare IPv6 address).
/// Err with a readable message if invalid.
pub fn target_base_url(address: &str) -> Result<Url, String> {
    let address = address.trim();
    if address.is_empty() {
        return Err("the target address is empty".to_owned());
    }
    if let Some((scheme, _)) = address.split_once("://") {
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(format!(
                "`{address}`: scheme `{scheme}` is not supported; a target address is a host, \
                 host:port, or an http:// or https:// URL"
            ));
        }
        let url =
            Url::parse(address).map_err(|e| format!("`{address}` is not a valid URL: {e}"))?;
        check_http_url(&url).map_err(|e| format!("`{address}`: {e}"))?;
        return Ok(url);
    }

    // A bare IPv6 address gets brackets, or its last group would be read as a port.
    let authority = if address.parse::<Ipv6Addr>().is_ok() {
        format!("[{address}]")
    } else {
        address.to_owned()
    };
    // These would make `http://<address>/` a URL with a path, query, fragment or user, i.e.
    // something else than the host the operator meant.
    if let Some(c) = authority
        .chars()
        .find(|&c| matches!(c, '/' | '\\' | '?' | '#' | '@') || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "`{address}` is not a host, host:port or http(s):// URL (it contains {c:?})"
        ));
    }
    Url::parse(&format!("http://{authority}/"))
        .map_err(|e| format!("`{address}` is not a valid host or host:port: {e}"))
}

/// Resolves what an addon or manifest asked for: an absolute http(s) URL as is, or a path (must
/// start with `/`) resolved against `base` as a URL reference (so `/x` replaces base's path and
/// keeps its scheme, host and port). Any other scheme is refused, and so is a "path" that would
/// resolve to another origin (`//host/...`, `/\host`).
pub fn resolve(base: &Url, url_or_path: &str) -> Result<Url, String> {
    if url_or_path.starts_with('/') {
        let url = base
            .join(url_or_path)
            .map_err(|e| format!("path `{url_or_path}` is not valid: {e}"))?;
        // `//evil.example/x` is a network-path reference, and for http(s) `\` counts as `/`:
        // such "paths" name another host.
        if url.origin() != base.origin() {
            return Err(format!(
                "path `{url_or_path}` would leave the target's origin ({}); \
                 a path looks like `/status`",
                base.origin().ascii_serialization()
            ));
        }
        check_http_url(&url)?;
        return Ok(url);
    }
    let url = Url::parse(url_or_path).map_err(|e| {
        if url_or_path.contains("://") {
            format!("`{url_or_path}` is not a valid URL: {e}")
        } else {
            format!(
                "`{url_or_path}` is neither an absolute http(s) URL nor a path starting with `/`"
            )
        }
    })?;
    check_http_url(&url).map_err(|e| format!("`{}`: {e}", shown(&url)))?;
    Ok(url)
}

/// An http(s) URL with a host and no credentials in it. Credentials go through [`HttpAuth`],
/// which is origin-bound and redacted; in a URL they would be neither.
fn check_http_url(url: &Url) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme `{}` is not supported: only http and https",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in a URL (`user:password@`) are not supported".to_owned());
    }
    Ok(())
}

fn parse_method(method: &str) -> Result<Method, PollError> {
    Ok(match method {
        "GET" => Method::GET,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "PATCH" => Method::PATCH,
        "DELETE" => Method::DELETE,
        "HEAD" => Method::HEAD,
        _ => {
            return Err(PollError::Failed(format!(
                "HTTP method `{method}` is not supported: use GET, POST, PUT, PATCH, DELETE or HEAD"
            )));
        }
    })
}

fn caller_headers(headers: &[(String, String)]) -> Result<HeaderMap, PollError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            PollError::Failed(format!(
                "request header name `{name}` is not a valid header name"
            ))
        })?;
        // The value is not echoed: it may be a credential.
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            PollError::Failed(format!(
                "the value of request header `{name}` contains characters not allowed in an HTTP header"
            ))
        })?;
        if ORIGIN_BOUND_HEADERS.contains(&name) {
            value.set_sensitive(true);
        }
        map.append(name, value);
    }
    Ok(map)
}

/// Where a response redirects to, if it is a redirect we follow: 301, 302, 303, 307 or 308 with
/// a `Location`. Any other response (a 3xx without `Location` included) is the answer.
fn redirect_target(
    response: &reqwest::Response,
    method: &Method,
    url: &Url,
) -> Result<Option<Url>, PollError> {
    if !matches!(
        response.status(),
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    ) {
        return Ok(None);
    }
    let Some(location) = response.headers().get(header::LOCATION) else {
        return Ok(None);
    };
    let failed = |what: String| {
        PollError::Failed(format!(
            "{}: answered {} with {what}",
            target(method, url),
            response.status().as_u16()
        ))
    };
    let location = std::str::from_utf8(location.as_bytes())
        .map_err(|_| failed("a Location header that is not UTF-8".to_owned()))?;
    let next = url
        .join(location)
        .map_err(|e| failed(format!("an invalid Location `{location}` ({e})")))?;
    check_http_url(&next).map_err(|e| failed(format!("a redirect to `{}`: {e}", shown(&next))))?;
    Ok(Some(next))
}

enum BodyError {
    TimedOut,
    Poll(PollError),
}

async fn read_response(
    mut response: reqwest::Response,
    deadline: Instant,
    max_body: usize,
    method: &Method,
    url: &Url,
) -> Result<HttpResponse, BodyError> {
    let too_large = || {
        BodyError::Poll(PollError::Failed(format!(
            "{}: the response body is larger than the limit of {max_body} bytes",
            target(method, url)
        )))
    };
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        // `HeaderName` is lower case already.
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();

    // Refuse early when the server announces the size; else count while streaming, since the
    // announcement may be absent (chunked) or a lie.
    let announced = response.content_length().unwrap_or(0);
    if announced > max_body as u64 {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(announced as usize);
    loop {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .map_err(|_| BodyError::TimedOut)?
            .map_err(|e| {
                BodyError::Poll(classify(
                    e,
                    &format!("{}: reading the response body", target(method, url)),
                ))
            })?;
        let Some(chunk) = chunk else { break };
        if chunk.len() > max_body - body.len() {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Resolves host names for the client, keeping only the addresses the egress policy allows:
/// reqwest dials what this returns, so a name that resolves to the metadata service (or is made
/// to, between two lookups) never reaches it.
struct PolicyResolver {
    egress: Arc<EgressPolicy>,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let egress = Arc::clone(&self.egress);
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            match egress.filter(resolved, |a| a.ip()) {
                Ok(allowed) => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
                Err(Some(denied)) => Err(Box::new(denied) as Box<_>),
                Err(None) => Err(format!("{} resolves to no address", name.as_str()).into()),
            }
        })
    }
}

/// Maps a reqwest error to the poll error it means, with the innermost cause as the message
/// (reqwest's own text is a generic "error sending request").
fn classify(err: reqwest::Error, context: &str) -> PollError {
    if let Some(denied) = causes(&err).find_map(|c| c.downcast_ref::<EgressDenied>()) {
        return PollError::Refused(format!("{context}: {denied}"));
    }
    // The TLS handshake runs inside the connector, so its failures are "connect" errors too. But
    // a handshake that failed means the peer answered (with the wrong certificate, or not TLS at
    // all), and rustls reports those as `InvalidData` I/O errors.
    let tls = err.is_connect() && has_io_error(&err, std::io::ErrorKind::InvalidData);
    let timeout = err.is_timeout();
    let connect = err.is_connect();
    let detail = innermost_cause(err);
    if tls {
        PollError::Failed(format!("{context}: TLS handshake failed: {detail}"))
    } else if timeout {
        PollError::Unreachable(format!("{context}: timed out: {detail}"))
    } else if connect {
        PollError::Unreachable(format!("{context}: cannot connect: {detail}"))
    } else {
        PollError::Failed(format!("{context}: {detail}"))
    }
}

fn innermost_cause(err: reqwest::Error) -> String {
    match causes(&err).last() {
        Some(cause) => cause.to_string(),
        // No cause: reqwest's own text, without its URL (ours, minus the query, is in the
        // context).
        None => err.without_url().to_string(),
    }
}

fn has_io_error(err: &reqwest::Error, kind: std::io::ErrorKind) -> bool {
    causes(err).any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == kind)
    })
}

/// The causes of `err`, outermost first. An `io::Error` wrapping another error reports that
/// error's *source* as its own, skipping the wrapped error itself — which is where rustls's
/// `InvalidData` sits (inside hyper-util's `Other`) — so wrapped errors are stepped into instead.
fn causes(err: &reqwest::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(std::error::Error::source(err), |&cause| match cause
        .downcast_ref::<std::io::Error>()
    {
        Some(io) => io
            .get_ref()
            .map(|inner| inner as &(dyn std::error::Error + 'static)),
        None => cause.source(),
    })
}

/// `METHOD url` for messages.
fn target(method: &Method, url: &Url) -> String {
    format!("{method} {}", shown(url))
}

/// A URL for messages and logs: the query string is elided, since APIs carry keys in it.
fn shown(url: &Url) -> String {
    let mut bare = url.clone();
    bare.set_query(None);
    bare.set_fragment(None);
    let mut text = bare.to_string();
    if url.query().is_some() {
        text.push_str("?…");
    }
    text
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Body;
    use axum::extract::{Path, Request};
    use axum::http::{HeaderMap as AxumHeaders, StatusCode as AxumStatus};
    use axum::middleware::{self, Next};
    use axum::response::{IntoResponse, Redirect, Response};
    use axum::routing::{any, get, post};

    use super::*;

    const SECOND: Duration = Duration::from_secs(10);

    /// A request as the test server saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        headers: AxumHeaders,
        body: Vec<u8>,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).map(|v| v.to_str().unwrap())
        }
    }

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<Seen>>>);

    impl Log {
        fn all(&self) -> Vec<Seen> {
            self.0.lock().unwrap().clone()
        }
    }

    /// Serves `router` on 127.0.0.1 with an ephemeral port, recording every request it gets.
    async fn serve(router: Router) -> (SocketAddr, Log) {
        let log = Log::default();
        let recorder = log.clone();
        let router = router.layer(middleware::from_fn(move |request: Request, next: Next| {
            let log = recorder.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                log.0.lock().unwrap().push(Seen {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    headers: parts.headers.clone(),
                    body: body.to_vec(),
                });
                next.run(Request::from_parts(parts, Body::from(body))).await
            }
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (addr, log)
    }

    fn url(addr: SocketAddr, path: &str) -> Url {
        Url::parse(&format!("http://{addr}{path}")).unwrap()
    }

    fn call(method: &str, url: Url) -> HttpCall {
        HttpCall {
            method: method.to_owned(),
            url,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn loopback() -> Arc<EgressPolicy> {
        Arc::new(EgressPolicy::allowing_loopback())
    }

    fn allow_all(_: &Url) -> Result<(), String> {
        Ok(())
    }

    async fn send(call: HttpCall, auth: Option<&HttpAuth>) -> Result<HttpResponse, PollError> {
        let origin = call.url.clone();
        HttpPoller::new(loopback())
            .request(call, auth, &origin, &allow_all, SECOND, DEFAULT_MAX_BODY)
            .await
    }

    fn found(location: String) -> Response {
        (AxumStatus::FOUND, [(header::LOCATION, location)]).into_response()
    }

    #[tokio::test]
    async fn returns_status_lowercase_headers_and_json_body() {
        let router = Router::new().route(
            "/status",
            get(|| async {
                (
                    AxumStatus::OK,
                    [("X-Device-State", "Degraded")],
                    axum::Json(serde_json::json!({"ok": true, "temp": 41})),
                )
            }),
        );
        let (addr, log) = serve(router).await;

        let response = send(call("GET", url(addr, "/status")), None).await.unwrap();

        assert_eq!(response.status, 200);
        let header = |name: &str| {
            response
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("x-device-state"), Some("Degraded"));
        assert_eq!(header("content-type"), Some("application/json"));
        assert!(response.headers.iter().all(|(n, _)| *n == n.to_lowercase()));
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body, serde_json::json!({"ok": true, "temp": 41}));
        let seen = log.all();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].header("user-agent"), Some(USER_AGENT));
    }

    #[tokio::test]
    async fn error_statuses_are_answers() {
        let router = Router::new().route(
            "/broken",
            get(|| async { (AxumStatus::SERVICE_UNAVAILABLE, "maintenance") }),
        );
        let (addr, _) = serve(router).await;

        let response = send(call("GET", url(addr, "/broken")), None).await.unwrap();

        assert_eq!(response.status, 503);
        assert_eq!(response.body, b"maintenance");
    }

    #[tokio::test]
    async fn each_kind_of_auth_arrives() {
        let (addr, log) = serve(Router::new().route("/api", get(|| async { "ok" }))).await;
        let auths = [
            HttpAuth::Basic {
                username: "user".into(),
                password: "pass".into(),
            },
            HttpAuth::Bearer("t0ken".into()),
            HttpAuth::Header {
                name: "X-Api-Key".into(),
                value: "k3y".into(),
            },
        ];
        for auth in &auths {
            let mut call = call("GET", url(addr, "/api"));
            // The configured auth wins over what an addon put in the same header.
            call.headers = vec![
                ("Authorization".into(), "Bearer forged".into()),
                ("X-Api-Key".into(), "forged".into()),
            ];
            send(call, Some(auth)).await.unwrap();
        }

        let seen = log.all();
        assert_eq!(seen.len(), 3);
        // base64("user:pass")
        assert_eq!(seen[0].header("authorization"), Some("Basic dXNlcjpwYXNz"));
        assert_eq!(seen[1].header("authorization"), Some("Bearer t0ken"));
        assert_eq!(seen[2].header("x-api-key"), Some("k3y"));
        for s in &seen {
            assert_eq!(s.headers.get_all("authorization").iter().count(), 1);
            assert_eq!(s.headers.get_all("x-api-key").iter().count(), 1);
        }
    }

    #[tokio::test]
    async fn auth_goes_only_to_the_auth_origin() {
        let (addr, log) = serve(Router::new().route("/api", get(|| async { "ok" }))).await;
        let elsewhere = Url::parse("https://device.example/").unwrap();
        let auth = HttpAuth::Bearer("t0ken".into());

        HttpPoller::new(loopback())
            .request(
                call("GET", url(addr, "/api")),
                Some(&auth),
                &elsewhere,
                &allow_all,
                SECOND,
                DEFAULT_MAX_BODY,
            )
            .await
            .unwrap();

        assert_eq!(log.all()[0].header("authorization"), None);
    }

    #[tokio::test]
    async fn follows_redirects_within_the_origin_keeping_auth() {
        let router = Router::new()
            .route(
                "/a",
                get(|| async { (AxumStatus::MOVED_PERMANENTLY, [(header::LOCATION, "/b")]) }),
            )
            .route("/b", get(|| async { found("c".into()) }))
            .route("/c", get(|| async { Redirect::temporary("/d") }))
            .route("/d", get(|| async { Redirect::permanent("/e?page=2") }))
            .route("/e", get(|| async { "arrived" }));
        let (addr, log) = serve(router).await;
        let auth = HttpAuth::Basic {
            username: "user".into(),
            password: "pass".into(),
        };

        let response = send(call("GET", url(addr, "/a")), Some(&auth))
            .await
            .unwrap();

        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"arrived");
        let seen = log.all();
        let paths: Vec<_> = seen.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["/a", "/b", "/c", "/d", "/e"]);
        for s in &seen {
            assert_eq!(
                s.header("authorization"),
                Some("Basic dXNlcjpwYXNz"),
                "{}",
                s.path
            );
        }
    }

    #[tokio::test]
    async fn redirect_to_a_refused_origin_is_denied_and_not_sent() {
        let (other, other_log) = serve(Router::new().route("/x", get(|| async { "ok" }))).await;
        let router = Router::new().route(
            "/go",
            get(move || async move { found(format!("http://{other}/x")) }),
        );
        let (addr, log) = serve(router).await;
        let home = url(addr, "/").origin();
        let allow = move |u: &Url| {
            if u.origin() == home {
                Ok(())
            } else {
                Err(format!(
                    "{} is not in the addon's hosts",
                    u.origin().ascii_serialization()
                ))
            }
        };

        let err = HttpPoller::new(loopback())
            .request(
                call("GET", url(addr, "/go")),
                None,
                &url(addr, "/"),
                &allow,
                SECOND,
                DEFAULT_MAX_BODY,
            )
            .await
            .unwrap_err();

        assert_eq!(
            err,
            PollError::Denied(format!("http://{other} is not in the addon's hosts"))
        );
        assert_eq!(log.all().len(), 1);
        assert!(other_log.all().is_empty());
    }

    #[tokio::test]
    async fn a_refused_first_url_is_not_sent() {
        let (addr, log) = serve(Router::new().route("/x", get(|| async { "ok" }))).await;
        let refuse = |_: &Url| Err("no hosts allowed".to_owned());

        let err = HttpPoller::new(loopback())
            .request(
                call("GET", url(addr, "/x")),
                None,
                &url(addr, "/"),
                &refuse,
                SECOND,
                DEFAULT_MAX_BODY,
            )
            .await
            .unwrap_err();

        assert_eq!(err, PollError::Denied("no hosts allowed".into()));
        assert!(log.all().is_empty());
    }

    #[tokio::test]
    async fn redirect_to_an_allowed_origin_drops_credentials() {
        let (other, other_log) =
            serve(Router::new().route("/x", any(|| async { "elsewhere" }))).await;
        let router = Router::new().route(
            "/go",
            get(move || async move { Redirect::temporary(&format!("http://{other}/x")) }),
        );
        let (addr, log) = serve(router).await;
        let mut call = call("GET", url(addr, "/go"));
        call.headers = vec![
            ("Cookie".into(), "session=abc".into()),
            ("Proxy-Authorization".into(), "Basic eDp5".into()),
            ("X-Trace".into(), "42".into()),
        ];
        let auth = HttpAuth::Bearer("t0ken".into());

        let response = send(call, Some(&auth)).await.unwrap();

        assert_eq!(response.body, b"elsewhere");
        let first = &log.all()[0];
        assert_eq!(first.header("authorization"), Some("Bearer t0ken"));
        assert_eq!(first.header("cookie"), Some("session=abc"));
        let second = &other_log.all()[0];
        assert_eq!(second.header("authorization"), None);
        assert_eq!(second.header("cookie"), None);
        assert_eq!(second.header("proxy-authorization"), None);
        assert_eq!(second.header("x-trace"), Some("42"));
    }

    /// `/hop/{n}` redirects to `/hop/{n-1}`; `/hop/0` answers.
    fn hops() -> Router {
        Router::new().route(
            "/hop/{n}",
            get(|Path(n): Path<u32>| async move {
                if n == 0 {
                    "landed".into_response()
                } else {
                    found(format!("/hop/{}", n - 1))
                }
            }),
        )
    }

    #[tokio::test]
    async fn five_redirects_are_followed() {
        let (addr, log) = serve(hops()).await;

        let response = send(call("GET", url(addr, "/hop/5")), None).await.unwrap();

        assert_eq!(response.body, b"landed");
        assert_eq!(log.all().len(), 6);
    }

    #[tokio::test]
    async fn a_sixth_redirect_fails() {
        let (addr, log) = serve(hops()).await;

        let err = send(call("GET", url(addr, "/hop/6")), None)
            .await
            .unwrap_err();

        let PollError::Failed(message) = err else {
            panic!("expected Failed, got {err:?}")
        };
        assert!(message.contains("too many redirects"), "{message}");
        assert!(message.contains("/hop/0"), "{message}");
        // The request that would have been the sixth redirect's target was never sent.
        assert_eq!(log.all().len(), 6);
    }

    #[tokio::test]
    async fn see_other_after_post_becomes_a_get_without_body() {
        let router = Router::new()
            .route("/submit", post(|| async { Redirect::to("/result") }))
            .route("/result", get(|| async { "done" }));
        let (addr, log) = serve(router).await;
        let mut call = call("POST", url(addr, "/submit"));
        call.headers = vec![("Content-Type".into(), "application/json".into())];
        call.body = br#"{"ack":true}"#.to_vec();

        let response = send(call, None).await.unwrap();

        assert_eq!(response.status, 200);
        let seen = log.all();
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].body, br#"{"ack":true}"#);
        assert_eq!(seen[1].method, "GET");
        assert_eq!(seen[1].path, "/result");
        assert!(seen[1].body.is_empty());
        assert_eq!(seen[1].header("content-type"), None);
    }

    #[tokio::test]
    async fn temporary_redirect_keeps_method_and_body() {
        let router = Router::new()
            .route(
                "/submit",
                post(|| async { Redirect::temporary("/v2/submit") }),
            )
            .route("/v2/submit", post(|| async { "stored" }));
        let (addr, log) = serve(router).await;
        let mut call = call("POST", url(addr, "/submit"));
        call.body = b"payload".to_vec();

        let response = send(call, None).await.unwrap();

        assert_eq!(response.body, b"stored");
        let seen = log.all();
        assert_eq!(seen[1].method, "POST");
        assert_eq!(seen[1].body, b"payload");
    }

    #[tokio::test]
    async fn head_stays_head_across_a_found() {
        let router = Router::new()
            .route("/old", any(|| async { found("/new".into()) }))
            .route("/new", any(|| async { "x" }));
        let (addr, log) = serve(router).await;

        let response = send(call("HEAD", url(addr, "/old")), None).await.unwrap();

        assert_eq!(response.status, 200);
        assert!(response.body.is_empty());
        assert_eq!(log.all()[1].method, "HEAD");
    }

    /// `/sized` announces its length; `/chunked` sends the same bytes without one (chunked
    /// transfer encoding), so only counting while reading can catch it.
    fn thousand_bytes() -> Router {
        Router::new()
            .route("/sized", get(|| async { vec![b'x'; 1000] }))
            .route(
                "/chunked",
                get(|| async {
                    // An identity `map_frame` hides the exact size hint, so hyper must chunk.
                    let body = http_body_util::Full::new(Bytes::from(vec![b'x'; 1000]));
                    Body::new(http_body_util::BodyExt::map_frame(body, |frame| frame))
                }),
            )
    }

    #[tokio::test]
    async fn body_over_the_cap_fails() {
        let (addr, _) = serve(thousand_bytes()).await;
        let poller = HttpPoller::new(loopback());
        for path in ["/sized", "/chunked"] {
            let fetch = |max_body| {
                let u = url(addr, path);
                let poller = poller.clone();
                async move {
                    poller
                        .request(
                            call("GET", u.clone()),
                            None,
                            &u,
                            &allow_all,
                            SECOND,
                            max_body,
                        )
                        .await
                }
            };

            let err = fetch(999).await.unwrap_err();
            let PollError::Failed(message) = err else {
                panic!("{path}: expected Failed, got {err:?}")
            };
            assert!(message.contains("limit of 999 bytes"), "{message}");
            let response = fetch(1000).await.unwrap();
            assert_eq!(response.body.len(), 1000, "{path}");
            let announced = response.headers.iter().any(|(n, _)| n == "content-length");
            assert_eq!(
                announced,
                path == "/sized",
                "{path}: {:?}",
                response.headers
            );
        }
    }

    #[tokio::test]
    async fn connection_refused_is_unreachable() {
        // A port that was free a moment ago and has no listener now.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);

        let err = send(call("GET", url(addr, "/")), None).await.unwrap_err();

        assert!(err.is_unreachable(), "{err:?}");
        assert!(err.to_string().contains("cannot connect"), "{err}");
    }

    /// The egress policy is applied to what is dialled: a literal address, a literal in another
    /// spelling, and a name that resolves to loopback are all refused before a connection is
    /// made (a connect would sit in the listener's queue by the time the call returns).
    #[tokio::test]
    async fn the_egress_policy_refuses_before_connecting() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let strict = HttpPoller::new(Arc::new(EgressPolicy::default()));
        for address in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://2130706433:{port}/"),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
            format!("http://localhost:{port}/"),
        ] {
            let u = Url::parse(&address).unwrap();
            let err = strict
                .request(
                    call("GET", u.clone()),
                    None,
                    &u,
                    &allow_all,
                    SECOND,
                    DEFAULT_MAX_BODY,
                )
                .await
                .unwrap_err();
            assert!(matches!(err, PollError::Refused(_)), "{address}: {err:?}");
            assert!(err.to_string().contains("egress policy refuses"), "{err}");
            assert_eq!(
                listener.accept().map_err(|e| e.kind()).err(),
                Some(std::io::ErrorKind::WouldBlock),
                "{address} was connected to"
            );
        }
        // A redirect to a refused address is refused at that hop.
        let router = Router::new().route(
            "/",
            get(move || async move { found(format!("http://127.0.0.2:{port}/")) }),
        );
        let (addr, _) = serve(router).await;
        let u = url(addr, "/");
        let policy = EgressPolicy::allowing(["127.0.0.1/32".parse().unwrap()]);
        let err = HttpPoller::new(Arc::new(policy))
            .request(
                call("GET", u.clone()),
                None,
                &u,
                &allow_all,
                SECOND,
                DEFAULT_MAX_BODY,
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("refuses 127.0.0.2"), "{err}");
    }

    #[tokio::test]
    async fn an_answer_slower_than_the_timeout_is_unreachable() {
        let router = Router::new().route(
            "/slow",
            get(|| async {
                std::future::pending::<()>().await;
                "never"
            }),
        );
        let (addr, _) = serve(router).await;
        let u = url(addr, "/slow");

        let err = HttpPoller::new(loopback())
            .request(
                call("GET", u.clone()),
                None,
                &u,
                &allow_all,
                Duration::from_millis(200),
                DEFAULT_MAX_BODY,
            )
            .await
            .unwrap_err();

        assert!(err.is_unreachable(), "{err:?}");
        assert!(err.to_string().contains("within 200ms"), "{err}");
    }

    #[tokio::test]
    async fn tls_to_a_plain_http_server_fails() {
        let (addr, _) = serve(Router::new().route("/", get(|| async { "plain" }))).await;
        let u = Url::parse(&format!("https://{addr}/")).unwrap();

        let err = send(call("GET", u), None).await.unwrap_err();

        let PollError::Failed(message) = err else {
            panic!("expected Failed, got {err:?}")
        };
        assert!(message.contains("TLS"), "{message}");
    }

    #[tokio::test]
    async fn bad_calls_fail_without_sending() {
        let (addr, log) = serve(Router::new().fallback(|| async { "ok" })).await;
        let mut bad_header = call("GET", url(addr, "/"));
        bad_header.headers = vec![("X-Bad".into(), "line\nbreak".into())];
        let cases = [
            call("TRACE", url(addr, "/")),
            call("get", url(addr, "/")),
            call("GET", Url::parse("ftp://127.0.0.1/file").unwrap()),
            call(
                "GET",
                Url::parse(&format!("http://user:pw@{addr}/")).unwrap(),
            ),
            bad_header,
        ];
        for case in cases {
            let shown = format!("{case:?}");
            let err = send(case, None).await.unwrap_err();
            assert!(matches!(err, PollError::Failed(_)), "{shown}: {err:?}");
        }
        let bad_auth = HttpAuth::Header {
            name: "X Key".into(),
            value: "v".into(),
        };
        let err = send(call("GET", url(addr, "/")), Some(&bad_auth))
            .await
            .unwrap_err();
        assert!(matches!(err, PollError::Failed(_)), "{err:?}");
        assert!(log.all().is_empty());
    }

    #[tokio::test]
    async fn query_strings_stay_out_of_messages() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);

        let err = send(call("GET", url(addr, "/x?api_key=s3cret")), None)
            .await
            .unwrap_err();

        let message = err.to_string();
        assert!(!message.contains("s3cret"), "{message}");
        assert!(
            message.contains(&format!("GET http://{addr}/x?…")),
            "{message}"
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let auths = [
            HttpAuth::Basic {
                username: "admin".into(),
                password: "hunter2".into(),
            },
            HttpAuth::Bearer("hunter2".into()),
            HttpAuth::Header {
                name: "X-Api-Key".into(),
                value: "hunter2".into(),
            },
        ];
        for auth in auths {
            let text = format!("{auth:?}");
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
        }
        let mut call = call("GET", Url::parse("http://h/x?key=hunter2").unwrap());
        call.headers = vec![("Authorization".into(), "Bearer hunter2".into())];
        let text = format!("{call:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn target_base_urls() {
        let ok = [
            ("10.0.0.5", "http://10.0.0.5/"),
            ("10.0.0.5:8080", "http://10.0.0.5:8080/"),
            ("Switch-1.Example.net", "http://switch-1.example.net/"),
            ("switch:80", "http://switch/"),
            ("[2001:db8::1]:8443", "http://[2001:db8::1]:8443/"),
            ("[::1]", "http://[::1]/"),
            ("2001:db8::1", "http://[2001:db8::1]/"),
            ("  10.0.0.5  ", "http://10.0.0.5/"),
            ("https://nas.example:5001/", "https://nas.example:5001/"),
            ("HTTPS://nas.example/webapi/", "https://nas.example/webapi/"),
            ("http://10.0.0.5", "http://10.0.0.5/"),
        ];
        for (address, expected) in ok {
            assert_eq!(
                target_base_url(address).map(String::from),
                Ok(expected.to_owned()),
                "{address}"
            );
        }
        let bad = [
            ("", "empty"),
            ("file:///etc/passwd", "scheme `file`"),
            ("ftp://host/", "scheme `ftp`"),
            ("host/path", "contains '/'"),
            ("user@host", "contains '@'"),
            ("host name", "contains ' '"),
            ("host:99999", "invalid port"),
            ("host:port", "invalid port"),
            ("[2001:db8::1", "not a valid host"),
            ("https://user:pw@host/", "credentials"),
            ("http://", "not a valid URL"),
        ];
        for (address, why) in bad {
            let err = target_base_url(address).unwrap_err();
            assert!(err.contains(why), "{address}: {err}");
        }
    }

    #[test]
    fn resolving_urls_and_paths() {
        let base = Url::parse("https://[2001:db8::1]:8443/api/").unwrap();
        let ok = [
            ("/status", "https://[2001:db8::1]:8443/status"),
            (
                "/v1/alarms?since=5",
                "https://[2001:db8::1]:8443/v1/alarms?since=5",
            ),
            ("/a/../b", "https://[2001:db8::1]:8443/b"),
            ("http://10.0.0.9:81/x", "http://10.0.0.9:81/x"),
            ("HTTPS://Other.Example/", "https://other.example/"),
        ];
        for (input, expected) in ok {
            assert_eq!(
                resolve(&base, input).map(String::from),
                Ok(expected.to_owned()),
                "{input}"
            );
        }
        let bad = [
            ("file:///etc/passwd", "scheme `file`"),
            ("javascript:alert(1)", "scheme `javascript`"),
            ("gopher://h/", "scheme `gopher`"),
            ("status", "neither"),
            ("", "neither"),
            ("//evil.example/x", "leave the target"),
            ("/\\evil.example/x", "leave the target"),
            ("https://user:pw@h/", "credentials"),
            ("http://[::1/", "not a valid URL"),
        ];
        for (input, why) in bad {
            let err = resolve(&base, input).unwrap_err();
            assert!(err.contains(why), "{input}: {err}");
        }
    }
}
