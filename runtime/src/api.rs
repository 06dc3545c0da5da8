//! The HTTP surface: `app()` builds the router (REST API under `/api/v1`, webhooks under
//! `/webhooks`, `/health`, the event WebSocket `/ws`); `AppState` is what every handler shares.
//! One error type, [`ApiError`], shapes every failure as `{"error": {"code", "message"}}` and
//! never carries database or internal text to clients.
//!
//! Every route is declared once, in [`routes`], with who may call it ([`Access`]) and how it is
//! audited ([`Audit`]); [`guard`] enforces both as one layer, so handlers never check roles.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::Method;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use axum::{Json, Router};
use serde::Serialize;
use tracing::{error, warn};

use crate::auth::{Auth, Permission};
use crate::events::EventBus;
use crate::inbound::trap::{TrapListenerView, UnhandledTrap};
use crate::inbound::webhook::{self, WebhookCounters};
use crate::registry::{IngestStats, Registry};
use crate::sandbox::CallStats;
use crate::store::Store;
use crate::writer::AlertWriter;

pub mod addons;
pub mod alerts;
pub mod auth;
pub mod dashboard;
pub mod guard;
pub mod limits;
pub mod openapi;
pub mod silences;
pub mod system;
pub mod targets;
pub mod views;

pub use guard::{AuditDetail, Caller};

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
    /// The signatures an uploaded addon bundle needs (`[bundles]`).
    pub bundles: Arc<crate::bundle::TrustPolicy>,
}

/// Who may call a route. Every route has exactly one, in [`routes`], and the guard layer
/// ([`guard::authorize`]) enforces it before the handler runs: handlers never check roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health and readiness probes, login and refresh, the OpenAPI document.
    Public,
    /// Webhook senders, authenticated per addon by the token or HMAC signature its settings
    /// ask for (`inbound::webhook_auth`), never by user credentials.
    Webhook,
    /// The event WebSocket, which authenticates in its handler because a client may send its
    /// token in the first message rather than at the upgrade.
    Socket,
    /// Any authenticated caller, whatever the role (their own sessions, logout).
    Authenticated,
    /// A caller whose role has this permission.
    Requires(Permission),
}

/// How a route's calls reach the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audit {
    /// A read, or a webhook (counted, not audited).
    No,
    /// A mutation: the guard writes an entry with this action after the handler answers, with
    /// the handler's [`AuditDetail`] when it gives one.
    As(&'static str),
    /// The auth service audits these itself, in the transaction of the change.
    ByService,
}

/// One route: method, path, who may call it and how it is audited. The router and the OpenAPI
/// document are both built from [`routes`], so neither can miss one.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub audit: Audit,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
    endpoint: MethodRouter<AppState>,
}

impl Route {
    fn new<H, T>(
        method: Method,
        path: &'static str,
        access: Access,
        audit: Audit,
        summary: &'static str,
        handler: H,
    ) -> Route
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
        Route {
            method,
            path,
            access,
            audit,
            summary,
            endpoint: axum::routing::on(filter, handler),
        }
    }
}

impl Route {
    /// Raises (or lowers) the request body limit of this route from axum's default 2 MiB.
    fn body_limit(mut self, bytes: usize) -> Route {
        self.endpoint = self
            .endpoint
            .layer(axum::extract::DefaultBodyLimit::max(bytes));
        self
    }

    /// Compresses this route's answers (gzip) for clients that accept it: large ones that
    /// browsers fetch, the dashboard's assets and the open-alert list.
    fn compressed(mut self) -> Route {
        self.endpoint = self
            .endpoint
            .layer(tower_http::compression::CompressionLayer::new());
        self
    }
}

fn get<H: Handler<T, AppState>, T: 'static>(
    path: &'static str,
    access: Access,
    summary: &'static str,
    handler: H,
) -> Route {
    Route::new(Method::GET, path, access, Audit::No, summary, handler)
}

fn post<H: Handler<T, AppState>, T: 'static>(
    path: &'static str,
    access: Access,
    audit: Audit,
    summary: &'static str,
    handler: H,
) -> Route {
    Route::new(Method::POST, path, access, audit, summary, handler)
}

fn put<H: Handler<T, AppState>, T: 'static>(
    path: &'static str,
    access: Access,
    audit: Audit,
    summary: &'static str,
    handler: H,
) -> Route {
    Route::new(Method::PUT, path, access, audit, summary, handler)
}

fn delete<H: Handler<T, AppState>, T: 'static>(
    path: &'static str,
    access: Access,
    audit: Audit,
    summary: &'static str,
    handler: H,
) -> Route {
    Route::new(Method::DELETE, path, access, audit, summary, handler)
}

/// Every route the runtime serves. Adding one here is the only way to serve it, and the test
/// `tests/tests/route_access.rs` fails until it has an entry for it too.
pub fn routes() -> Vec<Route> {
    use Access::*;
    use Audit::{As, ByService};
    use Permission::*;
    let mut routes = vec![
        // ---- probes and the API's own description ----
        get(
            "/health",
            Public,
            "Liveness: the process answers, and whether its database does",
            health,
        ),
        get(
            "/ready",
            Public,
            "Readiness: 200 only when the database answers",
            system::ready,
        ),
        get(
            "/api/v1/openapi.json",
            Public,
            "This API, as an OpenAPI 3 document",
            openapi::document,
        ),
        // ---- authentication ----
        post(
            "/api/v1/auth/login",
            Public,
            ByService,
            "Sign in with a username and password",
            auth::login,
        ),
        post(
            "/api/v1/auth/refresh",
            Public,
            ByService,
            "Trade a refresh token for new tokens",
            auth::refresh,
        ),
        post(
            "/api/v1/auth/logout",
            Authenticated,
            ByService,
            "End the caller's session",
            auth::logout,
        ),
        get(
            "/api/v1/auth/me",
            Authenticated,
            "Who the caller is",
            auth::me,
        ),
        get(
            "/api/v1/auth/sessions",
            Authenticated,
            "The caller's own sessions",
            auth::own_sessions,
        ),
        delete(
            "/api/v1/auth/sessions/{id}",
            Authenticated,
            ByService,
            "End one of the caller's own sessions",
            auth::revoke_own_session,
        ),
        get(
            "/api/v1/sessions",
            Requires(ManageSessions),
            "Everyone's sessions",
            auth::all_sessions,
        ),
        delete(
            "/api/v1/sessions/{id}",
            Requires(ManageSessions),
            ByService,
            "Revoke anyone's session",
            auth::revoke_any_session,
        ),
        get(
            "/api/v1/users",
            Requires(ManageUsers),
            "Users",
            auth::list_users,
        ),
        post(
            "/api/v1/users",
            Requires(ManageUsers),
            ByService,
            "Create a user",
            auth::create_user,
        ),
        get(
            "/api/v1/users/{name}",
            Requires(ManageUsers),
            "One user",
            auth::get_user,
        ),
        put(
            "/api/v1/users/{name}",
            Requires(ManageUsers),
            ByService,
            "Change a user's role, state or password",
            auth::update_user,
        ),
        get(
            "/api/v1/api-keys",
            Requires(ManageApiKeys),
            "API keys (never the keys themselves)",
            auth::list_api_keys,
        ),
        post(
            "/api/v1/api-keys",
            Requires(ManageApiKeys),
            ByService,
            "Create an API key, shown once",
            auth::create_api_key,
        ),
        delete(
            "/api/v1/api-keys/{id}",
            Requires(ManageApiKeys),
            ByService,
            "Revoke an API key",
            auth::revoke_api_key,
        ),
        post(
            "/api/v1/auth/signing-keys/rotate",
            Requires(ManageSystem),
            ByService,
            "Rotate the token signing key",
            auth::rotate_signing_key,
        ),
        get(
            "/api/v1/audit",
            Requires(ReadAudit),
            "The audit log, newest first",
            auth::audit_log,
        ),
        // ---- alerts ----
        get(
            "/api/v1/alerts",
            Requires(Read),
            "Alerts, filtered and paginated",
            alerts::list_alerts,
        ),
        get(
            "/api/v1/alerts/open",
            Requires(Read),
            "Every open alert at once, newest first (what the console holds)",
            alerts::open_alerts,
        )
        .compressed(),
        get(
            "/api/v1/alerts/facets",
            Requires(Read),
            "How many open alerts a filter matches, by severity, status, addon, device, category, type and acknowledgement",
            alerts::facets,
        ),
        post(
            "/api/v1/alerts/bulk",
            Requires(ActOnAlerts),
            As("alert.bulk"),
            "One action on many alerts",
            alerts::bulk,
        ),
        get(
            "/api/v1/alerts/{id}",
            Requires(Read),
            "One alert",
            alerts::get_alert,
        ),
        post(
            "/api/v1/alerts/{id}/acknowledge",
            Requires(ActOnAlerts),
            As("alert.acknowledge"),
            "Acknowledge an alert",
            alerts::acknowledge,
        ),
        post(
            "/api/v1/alerts/{id}/unacknowledge",
            Requires(ActOnAlerts),
            As("alert.unacknowledge"),
            "Take back an acknowledgement",
            alerts::unacknowledge,
        ),
        post(
            "/api/v1/alerts/{id}/resolve",
            Requires(ActOnAlerts),
            As("alert.resolve"),
            "Resolve an alert by hand",
            alerts::resolve,
        ),
        post(
            "/api/v1/alerts/{id}/notes",
            Requires(ActOnAlerts),
            As("alert.note"),
            "Add a note to an alert",
            alerts::add_note,
        ),
        get(
            "/api/v1/alerts/{id}/history",
            Requires(Read),
            "An alert's occurrences, state changes and notes",
            alerts::history,
        ),
        // ---- silences ----
        get(
            "/api/v1/silences",
            Requires(Read),
            "Silences (maintenance windows)",
            silences::list_silences,
        ),
        post(
            "/api/v1/silences",
            Requires(ActOnAlerts),
            As("silence.create"),
            "Create a silence",
            silences::create_silence,
        ),
        get(
            "/api/v1/silences/{id}",
            Requires(Read),
            "One silence",
            silences::get_silence,
        ),
        post(
            "/api/v1/silences/preview",
            Requires(Read),
            Audit::No,
            "How many open alerts a silence's matchers match (nothing is stored)",
            silences::preview_silence,
        ),
        put(
            "/api/v1/silences/{id}",
            Requires(ActOnAlerts),
            As("silence.update"),
            "Change a silence",
            silences::update_silence,
        ),
        delete(
            "/api/v1/silences/{id}",
            Requires(ActOnAlerts),
            As("silence.delete"),
            "Delete a silence",
            silences::delete_silence,
        ),
        // ---- the console's saved views ----
        get(
            "/api/v1/views",
            Authenticated,
            "The caller's saved console views and everyone's shared ones",
            views::list_views,
        ),
        post(
            "/api/v1/views",
            Authenticated,
            As("view.create"),
            "Save a console view",
            views::create_view,
        ),
        delete(
            "/api/v1/views/{id}",
            Authenticated,
            As("view.delete"),
            "Delete one of the caller's saved views",
            views::delete_view,
        ),
        // ---- addons ----
        get(
            "/api/v1/addons",
            Requires(Read),
            "Installed addons with their counters",
            list_addons,
        ),
        post(
            "/api/v1/addons",
            Requires(ManageSystem),
            As("addon.install"),
            "Install or upgrade an addon from a bundle file (the raw body); ?accept_capabilities=true to accept wider capabilities",
            addons::install_addon,
        )
        .body_limit(crate::bundle::MAX_BUNDLE_BYTES),
        get(
            "/api/v1/addons/{id}",
            Requires(Read),
            "One installed addon with its manifest",
            addons::get_addon,
        ),
        post(
            "/api/v1/addons/{id}/rollback",
            Requires(ManageSystem),
            As("addon.rollback"),
            "Put back the version the addon's last upgrade replaced",
            addons::rollback_addon,
        ),
        post(
            "/api/v1/addons/{id}/enable",
            Requires(ConfigureAddons),
            As("addon.enable"),
            "Enable an addon on every node",
            addons::enable_addon,
        ),
        post(
            "/api/v1/addons/{id}/disable",
            Requires(ConfigureAddons),
            As("addon.disable"),
            "Disable an addon on every node",
            addons::disable_addon,
        ),
        get(
            "/api/v1/addons/{id}/settings",
            Requires(Read),
            "An addon's settings (webhook authentication, allowed networks), secrets shown as \"set\"",
            addons::get_addon_settings,
        ),
        put(
            "/api/v1/addons/{id}/settings",
            Requires(ConfigureAddons),
            As("addon.settings"),
            "Replace an addon's settings",
            addons::put_addon_settings,
        ),
        // ---- targets, credentials, host keys ----
        get(
            "/api/v1/targets",
            Requires(Read),
            "Poll targets",
            targets::list_targets,
        ),
        post(
            "/api/v1/targets",
            Requires(ManageTargets),
            As("target.create"),
            "Create a poll target",
            targets::create_target,
        ),
        get(
            "/api/v1/targets/{id}",
            Requires(Read),
            "One poll target",
            targets::get_target,
        ),
        put(
            "/api/v1/targets/{id}",
            Requires(ManageTargets),
            As("target.update"),
            "Change a poll target",
            targets::update_target,
        ),
        delete(
            "/api/v1/targets/{id}",
            Requires(ManageTargets),
            As("target.delete"),
            "Delete a poll target",
            targets::delete_target,
        ),
        post(
            "/api/v1/targets/{id}/enable",
            Requires(ManageTargets),
            As("target.enable"),
            "Enable a poll target",
            targets::enable_target,
        ),
        post(
            "/api/v1/targets/{id}/disable",
            Requires(ManageTargets),
            As("target.disable"),
            "Disable a poll target",
            targets::disable_target,
        ),
        post(
            "/api/v1/targets/{id}/poll",
            Requires(ManageTargets),
            As("target.poll"),
            "Poll a target now",
            targets::poll_target_now,
        ),
        get(
            "/api/v1/ssh-host-keys",
            Requires(Read),
            "Pinned SSH host keys",
            targets::list_ssh_host_keys,
        ),
        delete(
            "/api/v1/ssh-host-keys/{endpoint}",
            Requires(ManageTargets),
            As("ssh_host_key.forget"),
            "Forget a pinned SSH host key",
            targets::forget_ssh_host_key,
        ),
        get(
            "/api/v1/credentials",
            Requires(Read),
            "Poll credentials (public fields only)",
            targets::list_credentials,
        ),
        get(
            "/api/v1/credentials/{name}",
            Requires(Read),
            "One poll credential (public fields only)",
            targets::get_credential,
        ),
        put(
            "/api/v1/credentials/{name}",
            Requires(ManageCredentials),
            As("credential.set"),
            "Create or replace a poll credential",
            targets::put_credential,
        ),
        delete(
            "/api/v1/credentials/{name}",
            Requires(ManageCredentials),
            As("credential.delete"),
            "Delete a poll credential",
            targets::delete_credential,
        ),
        // ---- the system ----
        get(
            "/api/v1/stats",
            Requires(Read),
            "Counters of ingest, writer, events and alerts",
            stats,
        ),
        get(
            "/api/v1/traps/unhandled",
            Requires(Read),
            "Recent traps no addon claims",
            unhandled_traps,
        ),
        get(
            "/api/v1/system/version",
            Requires(Read),
            "Version, WIT versions and database kind",
            system::version,
        ),
        get(
            "/api/v1/system/settings",
            Requires(Read),
            "Runtime settings kept in the database",
            system::list_settings,
        ),
        put(
            "/api/v1/system/settings/{key}",
            Requires(ManageSystem),
            As("setting.set"),
            "Set a runtime setting",
            system::put_setting,
        ),
        delete(
            "/api/v1/system/settings/{key}",
            Requires(ManageSystem),
            As("setting.delete"),
            "Remove a runtime setting",
            system::delete_setting,
        ),
        // ---- event sources ----
        post(
            "/webhooks/{*path}",
            Webhook,
            Audit::No,
            "Deliver an event to the addon that claims the path",
            webhook::receive,
        ),
        get(
            "/ws",
            Socket,
            "The real-time event WebSocket",
            crate::ws::handler,
        ),
    ];
    // ---- the console: its page at each of its paths, and its assets ----
    for path in dashboard::PAGES {
        routes.push(get(path, Public, "The operator console (HTML)", dashboard::page).compressed());
    }
    routes.push(
        get(
            "/assets/{*file}",
            Public,
            "The operator console's scripts, styles and images",
            dashboard::asset,
        )
        .compressed(),
    );
    routes
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
    Ok(Json(
        rows.iter().map(|row| addons::view(&state, row)).collect(),
    ))
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
