//! What a route is: its method and path, who may call it ([`Access`]), how it is audited
//! ([`Audit`]), and what it takes and answers — one declaration that builds the router, the
//! OpenAPI document and the route × credential test.

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter};

use super::AppState;
use crate::auth::Permission;

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
    /// Prometheus metrics in the OpenMetrics text format.
    Metrics,
    /// A redirect (302) for a browser to follow: the single sign-on's steps.
    Redirect,
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
    pub(super) endpoint: MethodRouter<AppState>,
}

impl Route {
    pub(super) fn new<H, T>(
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
    pub(super) fn body_limit(mut self, bytes: usize) -> Route {
        self.endpoint = self
            .endpoint
            .layer(axum::extract::DefaultBodyLimit::max(bytes));
        self
    }

    /// Answers 200 with JSON of `T`.
    pub(super) fn returns<T: schemars::JsonSchema>(mut self) -> Route {
        self.response = ResponseBody::Json(schema_of::<T>);
        self
    }

    /// Answers 201 with JSON of `T` (what was created).
    pub(super) fn created<T: schemars::JsonSchema>(mut self) -> Route {
        self.status = 201;
        self.returns::<T>()
    }

    /// Answers 202 with JSON of `T` (accepted, done later).
    pub(super) fn accepted<T: schemars::JsonSchema>(mut self) -> Route {
        self.response = ResponseBody::Json(schema_of::<T>);
        self.status = 202;
        self
    }

    /// Answers 204 without a body.
    pub(super) fn no_content(mut self) -> Route {
        self.status = 204;
        self.response = ResponseBody::Empty;
        self
    }

    /// Also answers `statuses` with the same body.
    pub(super) fn also(mut self, statuses: &'static [u16]) -> Route {
        self.also = statuses;
        self
    }

    pub(super) fn answers(mut self, status: u16, response: ResponseBody) -> Route {
        self.status = status;
        self.response = response;
        self
    }

    /// Takes a JSON body of `T`.
    pub(super) fn takes<T: schemars::JsonSchema>(mut self) -> Route {
        self.request = RequestBody::Json {
            schema: schema_of::<T>,
            required: true,
        };
        self
    }

    /// Takes a JSON body of `T`, or none.
    pub(super) fn takes_optional<T: schemars::JsonSchema>(mut self) -> Route {
        self.request = RequestBody::Json {
            schema: schema_of::<T>,
            required: false,
        };
        self
    }

    /// Takes a file as its raw body.
    pub(super) fn takes_file(mut self) -> Route {
        self.request = RequestBody::Binary;
        self
    }

    /// Reads the query parameters of `T`.
    pub(super) fn query<T: schemars::JsonSchema>(mut self) -> Route {
        self.query = Some(schema_of::<T>);
        self
    }

    /// Compresses this route's answers (gzip) for clients that accept it: large ones that
    /// browsers fetch, the dashboard's assets and the open-alert list. At the fastest level:
    /// the open-alert list of a busy site is tens of megabytes of JSON, where the default
    /// level would cost the server more time than it saves on a LAN.
    pub(super) fn compressed(mut self) -> Route {
        self.endpoint = self.endpoint.layer(
            tower_http::compression::CompressionLayer::new()
                .quality(tower_http::CompressionLevel::Fastest),
        );
        self
    }
}

pub(super) fn get<H: Handler<T, AppState>, T: 'static>(
    path: &'static str,
    access: Access,
    summary: &'static str,
    handler: H,
) -> Route {
    Route::new(Method::GET, path, access, Audit::No, summary, handler)
}

pub(super) fn post<H: Handler<T, AppState>, T: 'static>(
    path: &'static str,
    access: Access,
    audit: Audit,
    summary: &'static str,
    handler: H,
) -> Route {
    Route::new(Method::POST, path, access, audit, summary, handler)
}

pub(super) fn put<H: Handler<T, AppState>, T: 'static>(
    path: &'static str,
    access: Access,
    audit: Audit,
    summary: &'static str,
    handler: H,
) -> Route {
    Route::new(Method::PUT, path, access, audit, summary, handler)
}

pub(super) fn delete<H: Handler<T, AppState>, T: 'static>(
    path: &'static str,
    access: Access,
    audit: Audit,
    summary: &'static str,
    handler: H,
) -> Route {
    Route::new(Method::DELETE, path, access, audit, summary, handler)
}
