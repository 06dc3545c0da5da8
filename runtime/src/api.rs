//! The HTTP surface: `app()` builds the router (REST API under `/api/v1`, webhooks under
//! `/webhooks`, `/health`, the event WebSocket `/ws`); `AppState` is what every handler shares.
//! One error type, [`ApiError`], shapes every failure as `{"error": {"code", "message"}}` and
//! never carries database or internal text to clients.
//!
//! Authentication arrives in a later issue as one layer over this router; handlers do not
//! check anything themselves, so it slots in without touching them.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Serialize;
use tracing::{error, warn};

use crate::auth::Auth;
use crate::events::EventBus;
use crate::inbound::trap::{TrapListenerView, UnhandledTrap};
use crate::inbound::webhook::{self, WebhookCounters};
use crate::registry::{IngestStats, Registry};
use crate::sandbox::CallStats;
use crate::store::Store;
use crate::writer::AlertWriter;

pub mod alerts;
pub mod silences;
pub mod targets;

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
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/api/v1/alerts", get(alerts::list_alerts))
        .route("/api/v1/alerts/bulk", post(alerts::bulk))
        .route("/api/v1/alerts/{id}", get(alerts::get_alert))
        .route("/api/v1/alerts/{id}/acknowledge", post(alerts::acknowledge))
        .route(
            "/api/v1/alerts/{id}/unacknowledge",
            post(alerts::unacknowledge),
        )
        .route("/api/v1/alerts/{id}/resolve", post(alerts::resolve))
        .route("/api/v1/alerts/{id}/notes", post(alerts::add_note))
        .route("/api/v1/alerts/{id}/history", get(alerts::history))
        .route(
            "/api/v1/silences",
            get(silences::list_silences).post(silences::create_silence),
        )
        .route(
            "/api/v1/silences/{id}",
            get(silences::get_silence)
                .put(silences::update_silence)
                .delete(silences::delete_silence),
        )
        .route("/api/v1/addons", get(list_addons))
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/traps/unhandled", get(unhandled_traps))
        .route(
            "/api/v1/targets",
            get(targets::list_targets).post(targets::create_target),
        )
        .route(
            "/api/v1/targets/{id}",
            get(targets::get_target)
                .put(targets::update_target)
                .delete(targets::delete_target),
        )
        .route("/api/v1/targets/{id}/enable", post(targets::enable_target))
        .route(
            "/api/v1/targets/{id}/disable",
            post(targets::disable_target),
        )
        .route("/api/v1/targets/{id}/poll", post(targets::poll_target_now))
        .route("/api/v1/ssh-host-keys", get(targets::list_ssh_host_keys))
        .route(
            "/api/v1/ssh-host-keys/{endpoint}",
            delete(targets::forget_ssh_host_key),
        )
        .route("/api/v1/credentials", get(targets::list_credentials))
        .route(
            "/api/v1/credentials/{name}",
            get(targets::get_credential)
                .put(targets::put_credential)
                .delete(targets::delete_credential),
        )
        .route("/webhooks/{*path}", post(webhook::receive))
        .route("/ws", get(crate::ws::handler))
        .layer(middleware::from_fn(log_errors))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// An error answer. `message` is written for the client; internal detail goes to the log only.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Logged by middleware, never sent.
    pub internal: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            internal: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// A failure of ours the client can do nothing about; the detail stays in the log.
    pub fn internal(detail: impl ToString) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "internal error; see the server log".into(),
            internal: Some(detail.to_string()),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        // sqlx's messages can name tables, columns and constraint internals: never send them.
        ApiError::internal(e)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

/// What `log_errors` finds on an error response.
#[derive(Clone)]
struct LoggedError {
    code: &'static str,
    message: String,
    internal: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        });
        let mut response = (self.status, body).into_response();
        response.extensions_mut().insert(LoggedError {
            code: self.code,
            message: self.message,
            internal: self.internal,
        });
        response
    }
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

#[derive(Serialize)]
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

/// One installed addon, as `GET /api/v1/addons` shows it.
#[derive(Debug, Serialize)]
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
}

async fn list_addons(State(state): State<AppState>) -> Result<Json<Vec<AddonView>>, ApiError> {
    let rows = state.store.list_addons().await?;
    let views = rows
        .into_iter()
        .map(|row| {
            let loaded = state.registry.get(&row.id);
            let str_at = |ptr: &str| {
                row.manifest
                    .pointer(ptr)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            AddonView {
                webhook_path: str_at("/webhook/path"),
                world: str_at("/world"),
                trap_oid_prefixes: row
                    .manifest
                    .pointer("/snmp_trap/oid_prefixes")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default(),
                loaded: loaded.is_some(),
                ingest: loaded.as_ref().map(|a| a.counters.snapshot()),
                calls: loaded.as_ref().map(|a| a.call_stats()),
                id: row.id,
                name: row.name,
                version: row.version,
                enabled: row.enabled,
                methods: row.methods,
                wasm_sha256: row.wasm_sha256,
                installed_at: row.installed_at,
                updated_at: row.updated_at,
            }
        })
        .collect();
    Ok(Json(views))
}

#[derive(Debug, Serialize)]
struct Stats {
    webhooks: webhook::WebhookStats,
    traps: crate::inbound::trap::TrapStats,
    writer: crate::writer::WriterStats,
    /// The event bus and its WebSocket clients, on this node.
    events: crate::events::BusStats,
    alerts_by_status: std::collections::BTreeMap<&'static str, i64>,
}

async fn stats(State(state): State<AppState>) -> Result<Json<Stats>, ApiError> {
    let by_status = state.store.count_alerts_by_status().await?;
    Ok(Json(Stats {
        webhooks: state.webhook_counters.snapshot(),
        traps: state.traps.counters.snapshot(),
        writer: state.writer.stats(),
        events: state.events.stats(),
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
