//! The HTTP surface: `app()` builds the router (REST API under `/api/v1`, webhooks under
//! `/webhooks`, `/health`, the event WebSocket `/ws`); `AppState` is what every handler shares.
//! One error type, [`ApiError`], shapes every failure as `{"error": {"code", "message"}}` and
//! never carries database or internal text to clients.
//!
//! Every route is declared once, in [`routes`], with who may call it ([`Access`]) and how it is
//! audited ([`Audit`]); [`guard`] enforces both as one layer, so handlers never check roles.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use tracing::{error, warn};

use crate::auth::Auth;
use crate::bus::EventBus;
use crate::inbound::trap::{TrapListenerView, UnhandledTrap};
use crate::registry::{IngestStats, Registry};
use crate::sandbox::CallStats;
use crate::store::Store;
use crate::writer::AlertWriter;
use webhook::WebhookCounters;

pub mod addons;
pub mod alerts;
pub mod auth;
pub mod dashboard;
pub mod guard;
pub mod limits;
mod metrics;
pub mod openapi;
mod route;
mod routes;
pub mod silences;
pub mod sso;
pub mod system;
pub mod targets;
pub mod views;
pub mod webhook;
pub mod ws;

pub use crate::api_error::ApiError;
pub(crate) use crate::api_error::LoggedError;
pub use guard::{AuditDetail, Caller, too_many};
pub use route::{Access, Audit, RequestBody, ResponseBody, Route, SchemaFn};
pub use routes::routes;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub registry: Arc<Registry>,
    pub writer: AlertWriter,
    pub webhook_counters: Arc<WebhookCounters>,
    /// The trap listener's counters and unhandled traps (all zero when it is not running).
    pub traps: TrapListenerView,
    /// Live events for the WebSocket at `/ws`.
    pub events: EventBus,
    /// Who callers are: bearer verification, logins, sessions, API keys.
    pub auth: Auth,
    /// Login and request rate limits and the API's IP allowlist.
    pub limits: Arc<limits::Limits>,
    /// Optional directory login, tried when a password login finds no local user.
    pub ldap: Option<Arc<crate::directory::LdapConfig>>,
    /// Optional OpenID Connect sign-in.
    pub oidc: Option<Arc<crate::oidc::Oidc>>,
    /// The signatures an uploaded addon bundle needs (`[bundles]`).
    pub bundles: Arc<crate::bundle::TrustPolicy>,
    /// What the HTTP listener refused or cut short.
    pub http: Arc<crate::http_server::HttpCounters>,
    /// The listener is reachable beyond loopback: a webhook addon whose authentication was
    /// never set refuses posts instead of taking them from anyone.
    pub webhooks_need_settings: bool,
    /// Open WebSockets per principal (`[websocket] max_per_principal`).
    pub sockets: Arc<ws::OpenSockets>,
}

pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    for route in routes() {
        let guard = guard::Guard {
            state: state.clone(),
            access: route.access,
            audit: route.audit,
        };
        // `route_layer`: the guard runs only when this route matched, so an unknown path is a
        // plain 404 and a known one never reaches its handler unguarded.
        let endpoint = route
            .endpoint
            .route_layer(middleware::from_fn_with_state(guard, guard::authorize));
        router = router.route(route.path, endpoint);
    }
    router
        .layer(middleware::from_fn(log_errors))
        // The span names the path only: a query may carry a credential (`/ws?token=`), and
        // the span is attached to every event logged inside the request.
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(|request: &Request| {
                tracing::debug_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                )
            }),
        )
        .with_state(state)
}

async fn log_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if let Some(e) = response.extensions().get::<LoggedError>() {
        let status = response.status().as_u16();
        if response.status().is_server_error() {
            error!(%method, %path, status, code = e.code, message = %e.message, internal = e.internal.as_deref().unwrap_or(""), "request failed");
        } else {
            warn!(%method, %path, status, code = e.code, message = %e.message, "request refused");
        }
    }
    response
}

#[derive(Serialize, schemars::JsonSchema)]
struct Health {
    status: &'static str,
    database: &'static str,
    addons_loaded: usize,
}

async fn health(State(state): State<AppState>) -> Response {
    let addons_loaded = state.registry.enabled().len();
    match state.store.ping().await {
        Ok(()) => Json(Health {
            status: "ok",
            database: "ok",
            addons_loaded,
        })
        .into_response(),
        Err(e) => {
            warn!(error = %e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "degraded",
                    database: "unreachable",
                    addons_loaded,
                }),
            )
                .into_response()
        }
    }
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 1000;

/// The `limit` of a list query: [`DEFAULT_PAGE`] when absent, refused outside 1..=[`MAX_PAGE`].
/// Every paged list (alerts, silences, sessions, the audit log) checks it here.
pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("query parameter `limit`: must be between 1 and {MAX_PAGE}"),
        ));
    }
    Ok(limit)
}

/// One installed addon, as `GET /api/v1/addons` shows it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AddonView {
    pub id: String,
    pub name: String,
    pub version: String,
    /// The WIT world the component implements.
    pub world: Option<String>,
    pub enabled: bool,
    /// Enabled and running in this process (an enabled addon that failed to load is not).
    pub loaded: bool,
    pub methods: Vec<String>,
    pub webhook_path: Option<String>,
    pub trap_oid_prefixes: Vec<String>,
    pub wasm_sha256: String,
    pub installed_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub ingest: Option<IngestStats>,
    pub calls: Option<CallStats>,
    /// Whether this node calls the addon or has quarantined it after repeated faults.
    pub quarantine: Option<crate::quarantine::QuarantineStatus>,
}

async fn list_addons(State(state): State<AppState>) -> Result<Json<Vec<AddonView>>, ApiError> {
    let rows = state.store.list_addons().await?;
    Ok(Json(
        rows.iter().map(|row| addons::view(&state, row)).collect(),
    ))
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct Stats {
    webhooks: webhook::WebhookStats,
    traps: crate::inbound::trap::TrapStats,
    writer: crate::writer::WriterStats,
    /// The event bus and its WebSocket clients, on this node.
    events: crate::bus::BusStats,
    /// Connections the HTTP listener accepted, refused over its caps, or closed on a timeout.
    http: crate::http_server::HttpStats,
    alerts_by_status: std::collections::BTreeMap<&'static str, i64>,
}

async fn stats(State(state): State<AppState>) -> Result<Json<Stats>, ApiError> {
    let by_status = state.store.count_alerts_by_status().await?;
    Ok(Json(Stats {
        webhooks: state.webhook_counters.snapshot(),
        traps: state.traps.counters.snapshot(),
        writer: state.writer.stats(),
        events: state.events.stats(),
        http: state.http.snapshot(),
        alerts_by_status: by_status
            .into_iter()
            .map(|(s, n)| (s.as_str(), n))
            .collect(),
    }))
}

/// The most recent traps no enabled addon claims, newest first: what the operator is not
/// handling yet (enable `generic-trap` to turn them all into alerts).
async fn unhandled_traps(State(state): State<AppState>) -> Json<Vec<UnhandledTrap>> {
    Json(state.traps.unhandled.list())
}
