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
pub mod openapi;
pub mod silences;
pub mod system;
pub mod targets;
pub mod views;
pub mod webhook;
pub mod ws;

pub use crate::api_error::ApiError;
pub(crate) use crate::api_error::LoggedError;
pub use guard::{AuditDetail, Caller, too_many};

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
    /// What the HTTP listener refused or cut short.
    pub http: Arc<crate::http_server::HttpCounters>,
    /// The listener is reachable beyond loopback: a webhook addon whose authentication was
    /// never set refuses posts instead of taking them from anyone.
    pub webhooks_need_settings: bool,
    /// Open WebSockets per principal (`[websocket] max_per_principal`).
    pub sockets: Arc<ws::OpenSockets>,
}

/// Who may call a route. Every route has exactly one, in [`routes`], and the guard layer
/// ([`guard::authorize`]) enforces it before the handler runs: handlers never check roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health and readiness probes, login and refresh, the OpenAPI document.
    Public,
    /// Webhook senders, authenticated per addon by the token or HMAC signature its settings
    /// ask for (`webhook_auth`), never by user credentials.
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

/// Makes the JSON Schema of a request or answer body, registering the types it names.
pub type SchemaFn = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

fn schema_of<T: schemars::JsonSchema>(
    generator: &mut schemars::SchemaGenerator,
) -> schemars::Schema {
    generator.subschema_for::<T>()
}

/// What a route takes as its request body, for the OpenAPI document.
#[derive(Clone, Copy)]
pub enum RequestBody {
    None,
    /// JSON of this schema; `required` false when an empty body is accepted too.
    Json {
        schema: SchemaFn,
        required: bool,
    },
    /// A file as the raw body (`application/octet-stream`).
    Binary,
}

/// What a route answers when it succeeds, for the OpenAPI document.
#[derive(Clone, Copy)]
pub enum ResponseBody {
    /// Not declared: the OpenAPI test refuses a route left so.
    Unspecified,
    Json(SchemaFn),
    /// No body (204).
    Empty,
    /// The console's page.
    Html,
    /// A file of the console (script, style sheet, image).
    Asset,
    /// The WebSocket upgrade (101).
    Upgrade,
}

/// One route: method, path, who may call it and how it is audited, and what it takes and
/// answers. The router and the OpenAPI document are both built from [`routes`], so neither can
/// miss one.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub audit: Audit,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
    /// The success status and what comes with it; `also` lists other success statuses with the
    /// same body (an install answers 201, or 200 when nothing changed).
    pub status: u16,
    pub also: &'static [u16],
    pub response: ResponseBody,
    pub request: RequestBody,
    /// The query parameters, as the properties of one struct's schema.
    pub query: Option<SchemaFn>,
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
            status: 200,
            also: &[],
            response: ResponseBody::Unspecified,
            request: RequestBody::None,
            query: None,
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

    /// Answers 200 with JSON of `T`.
    fn returns<T: schemars::JsonSchema>(mut self) -> Route {
        self.response = ResponseBody::Json(schema_of::<T>);
        self
    }

    /// Answers 201 with JSON of `T` (what was created).
    fn created<T: schemars::JsonSchema>(mut self) -> Route {
        self.status = 201;
        self.returns::<T>()
    }

    /// Answers 202 with JSON of `T` (accepted, done later).
    fn accepted<T: schemars::JsonSchema>(mut self) -> Route {
        self.response = ResponseBody::Json(schema_of::<T>);
        self.status = 202;
        self
    }

    /// Answers 204 without a body.
    fn no_content(mut self) -> Route {
        self.status = 204;
        self.response = ResponseBody::Empty;
        self
    }

    /// Also answers `statuses` with the same body.
    fn also(mut self, statuses: &'static [u16]) -> Route {
        self.also = statuses;
        self
    }

    fn answers(mut self, status: u16, response: ResponseBody) -> Route {
        self.status = status;
        self.response = response;
        self
    }

    /// Takes a JSON body of `T`.
    fn takes<T: schemars::JsonSchema>(mut self) -> Route {
        self.request = RequestBody::Json {
            schema: schema_of::<T>,
            required: true,
        };
        self
    }

    /// Takes a JSON body of `T`, or none.
    fn takes_optional<T: schemars::JsonSchema>(mut self) -> Route {
        self.request = RequestBody::Json {
            schema: schema_of::<T>,
            required: false,
        };
        self
    }

    /// Takes a file as its raw body.
    fn takes_file(mut self) -> Route {
        self.request = RequestBody::Binary;
        self
    }

    /// Reads the query parameters of `T`.
    fn query<T: schemars::JsonSchema>(mut self) -> Route {
        self.query = Some(schema_of::<T>);
        self
    }

    /// Compresses this route's answers (gzip) for clients that accept it: large ones that
    /// browsers fetch, the dashboard's assets and the open-alert list. At the fastest level:
    /// the open-alert list of a busy site is tens of megabytes of JSON, where the default
    /// level would cost the server more time than it saves on a LAN.
    fn compressed(mut self) -> Route {
        self.endpoint = self.endpoint.layer(
            tower_http::compression::CompressionLayer::new()
                .quality(tower_http::CompressionLevel::Fastest),
        );
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
/// Login and refresh bodies: a name, a password or a token, all far smaller. Public routes, so
/// a body is not read further than this.
const AUTH_BODY_LIMIT: usize = 4 * 1024;

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
        )
        .returns::<Health>().also(&[503]),
        get(
            "/ready",
            Public,
            "Readiness: 200 only when the database answers",
            system::ready,
        )
        .returns::<system::Readiness>().also(&[503]),
        get(
            "/api/v1/openapi.json",
            Public,
            "This API, as an OpenAPI 3 document",
            openapi::document,
        )
        .returns::<serde_json::Value>(),
        // ---- authentication ----
        post(
            "/api/v1/auth/login",
            Public,
            ByService,
            "Sign in with a username and password",
            auth::login,
        )
        .takes::<auth::LoginBody>().returns::<auth::TokenAnswer>()
        .body_limit(AUTH_BODY_LIMIT),
        post(
            "/api/v1/auth/refresh",
            Public,
            ByService,
            "Trade a refresh token for new tokens",
            auth::refresh,
        )
        .takes::<auth::RefreshBody>().returns::<auth::TokenAnswer>()
        .body_limit(AUTH_BODY_LIMIT),
        post(
            "/api/v1/auth/logout",
            Authenticated,
            ByService,
            "End the caller's session",
            auth::logout,
        )
        .no_content(),
        get(
            "/api/v1/auth/me",
            Authenticated,
            "Who the caller is",
            auth::me,
        )
        .returns::<auth::Me>(),
        get(
            "/api/v1/auth/sessions",
            Authenticated,
            "The caller's own sessions",
            auth::own_sessions,
        )
        .query::<auth::SessionQuery>().returns::<Vec<crate::store::SessionInfo>>(),
        delete(
            "/api/v1/auth/sessions/{id}",
            Authenticated,
            ByService,
            "End one of the caller's own sessions",
            auth::revoke_own_session,
        )
        .no_content(),
        get(
            "/api/v1/sessions",
            Requires(ManageSessions),
            "Everyone's sessions",
            auth::all_sessions,
        )
        .query::<auth::SessionQuery>().returns::<Vec<crate::store::SessionInfo>>(),
        delete(
            "/api/v1/sessions/{id}",
            Requires(ManageSessions),
            ByService,
            "Revoke anyone's session",
            auth::revoke_any_session,
        )
        .no_content(),
        get(
            "/api/v1/users",
            Requires(ManageUsers),
            "Users",
            auth::list_users,
        )
        .returns::<Vec<crate::store::User>>(),
        post(
            "/api/v1/users",
            Requires(ManageUsers),
            ByService,
            "Create a user",
            auth::create_user,
        )
        .takes::<auth::NewUserBody>().created::<auth::UserWithPassword>(),
        get(
            "/api/v1/users/{name}",
            Requires(ManageUsers),
            "One user",
            auth::get_user,
        )
        .returns::<crate::store::User>(),
        put(
            "/api/v1/users/{name}",
            Requires(ManageUsers),
            ByService,
            "Change a user's role, state or password",
            auth::update_user,
        )
        .takes::<auth::UserChange>().returns::<auth::UserWithPassword>(),
        get(
            "/api/v1/api-keys",
            Requires(ManageApiKeys),
            "API keys (never the keys themselves)",
            auth::list_api_keys,
        )
        .returns::<Vec<crate::store::ApiKeyInfo>>(),
        post(
            "/api/v1/api-keys",
            Requires(ManageApiKeys),
            ByService,
            "Create an API key, shown once",
            auth::create_api_key,
        )
        .takes::<auth::NewApiKeyBody>().created::<auth::NewApiKey>(),
        delete(
            "/api/v1/api-keys/{id}",
            Requires(ManageApiKeys),
            ByService,
            "Revoke an API key",
            auth::revoke_api_key,
        )
        .returns::<crate::store::ApiKeyInfo>(),
        post(
            "/api/v1/auth/signing-keys/rotate",
            Requires(ManageSystem),
            ByService,
            "Rotate the token signing key",
            auth::rotate_signing_key,
        )
        .returns::<auth::RotatedKey>(),
        get(
            "/api/v1/audit",
            Requires(ReadAudit),
            "The audit log, newest first",
            auth::audit_log,
        )
        .query::<auth::AuditQuery>().returns::<auth::AuditPage>(),
        // ---- alerts ----
        get(
            "/api/v1/alerts",
            Requires(Read),
            "Alerts, filtered and paginated",
            alerts::list_alerts,
        )
        .query::<alerts::AlertQuery>().returns::<alerts::AlertPage>(),
        get(
            "/api/v1/alerts/open",
            Requires(Read),
            "Every open alert at once, newest first (what the console holds)",
            alerts::open_alerts,
        )
        .returns::<alerts::OpenAlerts>()
        .compressed(),
        get(
            "/api/v1/alerts/facets",
            Requires(Read),
            "How many open alerts a filter matches, by severity, status, addon, device, category, type and acknowledgement",
            alerts::facets,
        )
        .query::<alerts::FacetQuery>().returns::<crate::filter::Facets>(),
        post(
            "/api/v1/alerts/bulk",
            Requires(ActOnAlerts),
            As("alert.bulk"),
            "One action on many alerts",
            alerts::bulk,
        )
        .takes::<alerts::BulkBody>().returns::<alerts::BulkAnswer>(),
        get(
            "/api/v1/alerts/{id}",
            Requires(Read),
            "One alert",
            alerts::get_alert,
        )
        .returns::<crate::alert::StoredAlert>(),
        post(
            "/api/v1/alerts/{id}/acknowledge",
            Requires(ActOnAlerts),
            As("alert.acknowledge"),
            "Acknowledge an alert",
            alerts::acknowledge,
        )
        .takes_optional::<alerts::ActionBody>().returns::<crate::alert::StoredAlert>(),
        post(
            "/api/v1/alerts/{id}/unacknowledge",
            Requires(ActOnAlerts),
            As("alert.unacknowledge"),
            "Take back an acknowledgement",
            alerts::unacknowledge,
        )
        .takes_optional::<alerts::ActionBody>().returns::<crate::alert::StoredAlert>(),
        post(
            "/api/v1/alerts/{id}/resolve",
            Requires(ActOnAlerts),
            As("alert.resolve"),
            "Resolve an alert by hand",
            alerts::resolve,
        )
        .takes_optional::<alerts::ActionBody>().returns::<crate::alert::StoredAlert>(),
        post(
            "/api/v1/alerts/{id}/notes",
            Requires(ActOnAlerts),
            As("alert.note"),
            "Add a note to an alert",
            alerts::add_note,
        )
        .takes::<alerts::NoteBody>().created::<crate::store::AlertEvent>(),
        get(
            "/api/v1/alerts/{id}/history",
            Requires(Read),
            "An alert's occurrences, state changes and notes",
            alerts::history,
        )
        .query::<alerts::HistoryQuery>().returns::<crate::store::HistoryPage>(),
        // ---- silences ----
        get(
            "/api/v1/silences",
            Requires(Read),
            "Silences (maintenance windows)",
            silences::list_silences,
        )
        .query::<silences::SilenceQuery>().returns::<silences::SilencePage>(),
        post(
            "/api/v1/silences",
            Requires(ManageSilences),
            As("silence.create"),
            "Create a silence",
            silences::create_silence,
        )
        .takes::<crate::silence::SilenceSpec>().created::<silences::SilenceView>(),
        get(
            "/api/v1/silences/{id}",
            Requires(Read),
            "One silence",
            silences::get_silence,
        )
        .returns::<silences::SilenceView>(),
        post(
            "/api/v1/silences/preview",
            Requires(Read),
            Audit::No,
            "How many open alerts a silence's matchers match (nothing is stored)",
            silences::preview_silence,
        )
        .takes::<silences::PreviewBody>().returns::<silences::SilencePreview>(),
        put(
            "/api/v1/silences/{id}",
            Requires(ManageSilences),
            As("silence.update"),
            "Change a silence",
            silences::update_silence,
        )
        .takes::<crate::silence::SilenceSpec>().returns::<silences::SilenceView>(),
        delete(
            "/api/v1/silences/{id}",
            Requires(ManageSilences),
            As("silence.delete"),
            "Delete a silence",
            silences::delete_silence,
        )
        .no_content(),
        // ---- the console's saved views ----
        get(
            "/api/v1/views",
            Authenticated,
            "The caller's saved console views and everyone's shared ones",
            views::list_views,
        )
        .returns::<views::ViewList>(),
        post(
            "/api/v1/views",
            Authenticated,
            As("view.create"),
            "Save a console view",
            views::create_view,
        )
        .takes::<views::ViewBody>().created::<crate::store::SavedView>(),
        delete(
            "/api/v1/views/{id}",
            Authenticated,
            As("view.delete"),
            "Delete one of the caller's saved views",
            views::delete_view,
        )
        .no_content(),
        // ---- addons ----
        get(
            "/api/v1/addons",
            Requires(Read),
            "Installed addons with their counters",
            list_addons,
        )
        .returns::<Vec<AddonView>>(),
        post(
            "/api/v1/addons",
            Requires(ManageSystem),
            As("addon.install"),
            "Install or upgrade an addon from a bundle file (the raw body); ?accept_capabilities=true to accept wider capabilities",
            addons::install_addon,
        )
        .takes_file().query::<addons::InstallQuery>().created::<crate::bundle::install::BundleInstall>().also(&[200])
        .body_limit(crate::bundle::MAX_BUNDLE_BYTES),
        get(
            "/api/v1/addons/{id}",
            Requires(Read),
            "One installed addon with its manifest",
            addons::get_addon,
        )
        .returns::<addons::AddonDetail>(),
        post(
            "/api/v1/addons/{id}/rollback",
            Requires(ManageSystem),
            As("addon.rollback"),
            "Put back the version the addon's last upgrade replaced",
            addons::rollback_addon,
        )
        .returns::<addons::RolledBack>(),
        post(
            "/api/v1/addons/{id}/enable",
            Requires(ConfigureAddons),
            As("addon.enable"),
            "Enable an addon on every node",
            addons::enable_addon,
        )
        .returns::<addons::AddonDetail>(),
        post(
            "/api/v1/addons/{id}/disable",
            Requires(ConfigureAddons),
            As("addon.disable"),
            "Disable an addon on every node",
            addons::disable_addon,
        )
        .returns::<addons::AddonDetail>(),
        get(
            "/api/v1/addons/{id}/settings",
            Requires(Read),
            "An addon's settings (webhook authentication, allowed networks), secrets shown as \"set\"",
            addons::get_addon_settings,
        )
        .returns::<crate::webhook_auth::PublicSettings>(),
        put(
            "/api/v1/addons/{id}/settings",
            Requires(ConfigureAddons),
            As("addon.settings"),
            "Replace an addon's settings",
            addons::put_addon_settings,
        )
        .takes::<crate::webhook_auth::AddonSettings>().returns::<crate::webhook_auth::PublicSettings>(),
        // ---- targets, credentials, host keys ----
        get(
            "/api/v1/targets",
            Requires(Read),
            "Poll targets",
            targets::list_targets,
        )
        .query::<targets::TargetQuery>().returns::<Vec<crate::target::Target>>(),
        post(
            "/api/v1/targets",
            Requires(ManageTargets),
            As("target.create"),
            "Create a poll target",
            targets::create_target,
        )
        .takes::<crate::target::TargetSpec>().created::<crate::target::Target>(),
        get(
            "/api/v1/targets/{id}",
            Requires(Read),
            "One poll target",
            targets::get_target,
        )
        .returns::<crate::target::Target>(),
        put(
            "/api/v1/targets/{id}",
            Requires(ManageTargets),
            As("target.update"),
            "Change a poll target",
            targets::update_target,
        )
        .takes::<crate::target::TargetSpec>().returns::<crate::target::Target>(),
        delete(
            "/api/v1/targets/{id}",
            Requires(ManageTargets),
            As("target.delete"),
            "Delete a poll target",
            targets::delete_target,
        )
        .no_content(),
        post(
            "/api/v1/targets/{id}/enable",
            Requires(ManageTargets),
            As("target.enable"),
            "Enable a poll target",
            targets::enable_target,
        )
        .returns::<crate::target::Target>(),
        post(
            "/api/v1/targets/{id}/disable",
            Requires(ManageTargets),
            As("target.disable"),
            "Disable a poll target",
            targets::disable_target,
        )
        .returns::<crate::target::Target>(),
        post(
            "/api/v1/targets/{id}/poll",
            Requires(ManageTargets),
            As("target.poll"),
            "Poll a target now",
            targets::poll_target_now,
        )
        .accepted::<crate::target::Target>(),
        get(
            "/api/v1/ssh-host-keys",
            Requires(Read),
            "Pinned SSH host keys",
            targets::list_ssh_host_keys,
        )
        .returns::<Vec<crate::store::PinnedHostKey>>(),
        delete(
            "/api/v1/ssh-host-keys/{endpoint}",
            Requires(ManageTargets),
            As("ssh_host_key.forget"),
            "Forget a pinned SSH host key",
            targets::forget_ssh_host_key,
        )
        .no_content(),
        get(
            "/api/v1/credentials",
            Requires(Read),
            "Poll credentials (public fields only)",
            targets::list_credentials,
        )
        .returns::<Vec<crate::target::CredentialSummary>>(),
        get(
            "/api/v1/credentials/{name}",
            Requires(Read),
            "One poll credential (public fields only)",
            targets::get_credential,
        )
        .returns::<crate::target::CredentialSummary>(),
        put(
            "/api/v1/credentials/{name}",
            Requires(ManageCredentials),
            As("credential.set"),
            "Create or replace a poll credential",
            targets::put_credential,
        )
        .takes::<targets::CredentialInput>().returns::<crate::target::CredentialSummary>(),
        delete(
            "/api/v1/credentials/{name}",
            Requires(ManageCredentials),
            As("credential.delete"),
            "Delete a poll credential",
            targets::delete_credential,
        )
        .no_content(),
        // ---- the system ----
        get(
            "/api/v1/stats",
            Requires(Read),
            "Counters of ingest, writer, events and alerts",
            stats,
        )
        .returns::<Stats>(),
        get(
            "/api/v1/traps/unhandled",
            Requires(Read),
            "Recent traps no addon claims",
            unhandled_traps,
        )
        .returns::<Vec<UnhandledTrap>>(),
        get(
            "/api/v1/system/version",
            Requires(Read),
            "Version, WIT versions and database kind",
            system::version,
        )
        .returns::<system::Version>(),
        get(
            "/api/v1/system/settings",
            Requires(Read),
            "Runtime settings kept in the database",
            system::list_settings,
        )
        .returns::<Vec<system::SettingView>>(),
        put(
            "/api/v1/system/settings/{key}",
            Requires(ManageSystem),
            As("setting.set"),
            "Set a runtime setting",
            system::put_setting,
        )
        .takes::<system::SettingBody>().returns::<system::SettingSet>(),
        delete(
            "/api/v1/system/settings/{key}",
            Requires(ManageSystem),
            As("setting.delete"),
            "Remove a runtime setting",
            system::delete_setting,
        )
        .no_content(),
        // ---- event sources ----
        post(
            "/webhooks/{*path}",
            Webhook,
            Audit::No,
            "Deliver an event to the addon that claims the path",
            webhook::receive,
        )
        .takes::<serde_json::Value>().returns::<webhook::Accepted>(),
        get(
            "/ws",
            Socket,
            "The real-time event WebSocket",
            ws::handler,
        )
        .query::<ws::WsQuery>()
        .answers(101, ResponseBody::Upgrade),
    ];
    // ---- the console: its page at each of its paths, and its assets ----
    for path in dashboard::PAGES {
        routes.push(
            get(path, Public, "The operator console (HTML)", dashboard::page)
                .answers(200, ResponseBody::Html)
                .compressed(),
        );
    }
    routes.push(
        get(
            "/assets/{*file}",
            Public,
            "The operator console's scripts, styles and images",
            dashboard::asset,
        )
        .answers(200, ResponseBody::Asset)
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
    events: crate::events::BusStats,
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
