//! The operator console: the built dashboard (`dashboard/dist`, a Vite build of
//! `dashboard/`) embedded in the binary and served at `/`, its page paths and `/assets/`.
//!
//! Every answer carries a strict Content-Security-Policy (scripts, styles and connections
//! from this origin only, no inline script, no framing) and `nosniff`. Assets have content
//! hashes in their names, so they are cached for a year; the page itself is revalidated every
//! time, so a new binary's assets are picked up at the next load.
//!
//! A build without the dashboard (`cargo build` before `npm run build`) still serves `/`: a
//! page that says how to build it.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

/// The dashboard's build output. Release builds embed it; debug builds read it from disk at
/// run time (rust-embed's default), so `npm run build` needs no rebuild of the runtime there.
#[derive(Embed)]
#[folder = "../dashboard/dist/"]
#[allow_missing = true]
struct Assets;

/// The console's own paths, which all answer its page (the client routes them): a reload or a
/// bookmark of any of them works. Kept in step with `dashboard/src/router.ts`.
pub const PAGES: &[&str] = &[
    "/",
    "/login",
    "/alerts/{id}",
    "/silences",
    "/silences/{*rest}",
    "/addons",
    "/addons/{*rest}",
    "/targets",
    "/targets/{*rest}",
    "/admin",
    "/admin/{*rest}",
    "/system",
];

/// `connect-src 'self'` covers the WebSocket to this origin; `img-src data:` the inline icons.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Shown when the binary was built without the dashboard.
const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>OpsConductor</title></head><body><h1>OpsConductor</h1>\
<p>This binary was built without its dashboard. Build it with <code>just build-dashboard</code> \
(or <code>cd dashboard &amp;&amp; npm ci &amp;&amp; npm run build</code>), then rebuild the runtime \
(<code>just run</code> does both). The REST API is at <code>/api/v1</code> \
(<a href=\"/api/v1/openapi.json\">OpenAPI document</a>).</p></body></html>";

fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// Whether the dashboard is in this build.
pub fn built() -> bool {
    Assets::get("index.html").is_some()
}

/// `GET /` and every path of [`PAGES`]: the console's page.
pub(super) async fn page() -> Response {
    let (status, body) = match Assets::get("index.html") {
        Some(file) => (StatusCode::OK, file.data.into_owned()),
        None => (StatusCode::OK, NOT_BUILT.as_bytes().to_vec()),
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    secure(headers);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /assets/{*file}`: one built asset, cached for a year (its name changes with its
/// content), or 404.
pub(super) async fn asset(Path(file): Path<String>, request_headers: HeaderMap) -> Response {
    let Some(asset) = Assets::get(&format!("assets/{file}")) else {
        let mut response = StatusCode::NOT_FOUND.into_response();
        secure(response.headers_mut());
        return response;
    };
    let etag = format!("\"{}\"", hex::encode(asset.metadata.sha256_hash()));
    let not_modified = request_headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, asset.data.into_owned()).into_response()
    };
    let headers = response.headers_mut();
    secure(headers);
    if let Ok(mime) = HeaderValue::from_str(asset.metadata.mimetype()) {
        headers.insert(header::CONTENT_TYPE, mime);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    response
}
