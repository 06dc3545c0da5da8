//! The one layer that authenticates, authorizes, rate-limits and audits every route, by the
//! route's [`Access`] and [`Audit`] in [`super::routes`].
//!
//! For a route that needs a caller it reads `Authorization: Bearer <access token | API key>`,
//! asks [`Auth::verify`](crate::auth::Auth::verify) who that is (401 when nobody), charges the
//! caller's rate limit (429 with `Retry-After`), checks the role against the route's permission
//! (403) and hands the handler a [`Caller`]. After a mutation it writes the audit entry.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::Value;
use tracing::error;

use super::{Access, ApiError, AppState, Audit};
use crate::api_error::{API_CHALLENGE, bearer_token, with_challenge};
use crate::auth::{AuthError, ClientInfo, Permission, Principal};
use crate::store::{AuditOutcome, AuditRecord};

/// What the guard of one route knows: the route's rules and the shared state.
#[derive(Clone)]
pub struct Guard {
    pub state: AppState,
    pub access: Access,
    pub audit: Audit,
}

/// The authenticated caller of a route, for handlers that act in someone's name.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub client: ClientInfo,
}

impl Caller {
    /// The caller as the audit log and alert history name them.
    pub fn actor(&self) -> crate::auth::Actor {
        self.principal.actor(self.client.ip)
    }

    /// For the few rules that depend on what a request carries (a target naming a credential):
    /// refuses like the guard does, with `doing` saying what needed `permission`. The guard's
    /// audit records the refusal as a denial.
    pub fn require(&self, permission: Permission, doing: &str) -> Result<(), ApiError> {
        if self.principal.can(permission) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "role `{}` may not {doing} (it needs permission `{}`)",
                self.principal.role,
                permission.as_str()
            ),
        ))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, ApiError> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| {
                ApiError::internal("a handler asked for its caller on a route that has none")
            })?;
        let client = parts
            .extensions
            .get::<ClientInfo>()
            .cloned()
            .unwrap_or_default();
        Ok(Caller { principal, client })
    }
}

/// Where a request came from, for any route (login records it on the session).
impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientInfo, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientInfo>()
            .cloned()
            .unwrap_or_else(|| client_info(&parts.headers, None)))
    }
}

/// What a mutating handler tells the audit log about its change, as a response extension:
/// what it acted on and, where it makes sense, the state before and after. Never a secret.
#[derive(Debug, Clone, Default)]
pub struct AuditDetail {
    pub target: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl AuditDetail {
    pub fn target(target: impl Into<String>) -> AuditDetail {
        AuditDetail {
            target: Some(target.into()),
            ..AuditDetail::default()
        }
    }

    pub fn before(mut self, before: impl serde::Serialize) -> AuditDetail {
        self.before = serde_json::to_value(before).ok();
        self
    }

    pub fn after(mut self, after: impl serde::Serialize) -> AuditDetail {
        self.after = serde_json::to_value(after).ok();
        self
    }
}

impl axum::response::IntoResponseParts for AuditDetail {
    type Error = std::convert::Infallible;

    fn into_response_parts(
        self,
        mut res: axum::response::ResponseParts,
    ) -> Result<axum::response::ResponseParts, Self::Error> {
        res.extensions_mut().insert(self);
        Ok(res)
    }
}

fn client_info(headers: &HeaderMap, ip: Option<IpAddr>) -> ClientInfo {
    ClientInfo {
        ip,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// 401, with the `WWW-Authenticate` challenge RFC 6750 asks for.
pub fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// A 401 with the API's challenge.
pub(crate) fn challenged(error: ApiError) -> Response {
    with_challenge(error.into_response(), API_CHALLENGE)
}

/// 429 with `Retry-After`.
pub fn too_many(message: impl Into<String>, retry: super::limits::RetryAfter) -> Response {
    let seconds = retry.seconds();
    let mut response =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// Maps a failed verification to its answer: the caller's fault is 401 with the reason, ours
/// is 500.
pub fn auth_failure(error: AuthError) -> ApiError {
    match error {
        AuthError::Rejected(rejection) => unauthorized(rejection.to_string()),
        AuthError::InvalidCredentials | AuthError::RefreshTokenReused => {
            unauthorized(error.to_string())
        }
        AuthError::Invalid(m) => super::alerts::invalid(m),
        AuthError::NotFound(m) => ApiError::not_found(m),
        AuthError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
        AuthError::KeyFromConfig => {
            ApiError::new(StatusCode::CONFLICT, "conflict", error.to_string())
        }
        AuthError::Unavailable(m) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
        }
        AuthError::Store(e) => ApiError::internal(e),
        AuthError::Config(m) | AuthError::Internal(m) => ApiError::internal(m),
    }
}

pub async fn authorize(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let client = client_info(request.headers(), ip);
    let state = &guard.state;
    if guard.access != Access::Webhook && !state.limits.api_allows(ip) {
        let shown = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the API does not answer clients at {shown} (see limits.api_allow)"),
        )
        .into_response();
    }
    request.extensions_mut().insert(client.clone());
    let permission = match guard.access {
        Access::Public | Access::Webhook | Access::Socket => return next.run(request).await,
        Access::Authenticated => None,
        Access::Requires(permission) => Some(permission),
    };

    let principal = match bearer_token(request.headers()) {
        Ok(Some(token)) => match state.auth.verify(token).await {
            Ok(principal) => principal,
            Err(e) => return challenged(auth_failure(e)),
        },
        Ok(None) => {
            return challenged(unauthorized(
                "authentication required: send `Authorization: Bearer <access token or API key>`",
            ));
        }
        Err(refusal) => return challenged(unauthorized(refusal)),
    };
    if let Err(retry) = state.limits.check_api(&principal.actor) {
        return too_many(
            format!("too many requests from {}; slow down", principal.actor),
            retry,
        );
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let caller = Caller { principal, client };
    if let Some(permission) = permission
        && !caller.principal.can(permission)
    {
        let refusal = ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "role `{}` may not do this (it needs permission `{}`)",
                caller.principal.role,
                permission.as_str()
            ),
        );
        // Every refusal is recorded, reads included: someone trying the users list or the
        // audit log without the permission is what an administrator reviews the log for.
        let action = match guard.audit {
            Audit::As(action) => action,
            _ => "access.denied",
        };
        let record = AuditRecord::new(
            &caller.actor(),
            action,
            Some(format!("{method} {path}")),
            AuditOutcome::Denied,
        );
        append(state, &record).await;
        return refusal.into_response();
    }
    request.extensions_mut().insert(caller.principal.clone());
    let response = next.run(request).await;

    if let Audit::As(action) = guard.audit {
        let detail = response.extensions().get::<AuditDetail>().cloned();
        let status = response.status();
        // A handler's own refusal of the caller (a rule finer than the route's permission,
        // answered with the guard's `forbidden`) is a denial too.
        let outcome = if status.is_success() {
            AuditOutcome::Success
        } else if response
            .extensions()
            .get::<super::LoggedError>()
            .is_some_and(|e| e.code == "forbidden")
        {
            AuditOutcome::Denied
        } else {
            AuditOutcome::Failure
        };
        let detail = detail.unwrap_or_default();
        let mut record = AuditRecord::new(
            &caller.actor(),
            action,
            Some(detail.target.unwrap_or_else(|| format!("{method} {path}"))),
            outcome,
        );
        record.before = detail.before;
        record.after = match (detail.after, outcome) {
            (after @ Some(_), _) => after,
            (None, AuditOutcome::Success) => None,
            (None, _) => Some(serde_json::json!({ "status": status.as_u16() })),
        };
        append(state, &record).await;
    }
    response
}

/// Appends an audit entry. The change it records has happened; a failure to record it is
/// logged loudly rather than turned into an error the caller would retry.
async fn append(state: &AppState, record: &AuditRecord) {
    if let Err(e) = state.store.append_audit(record, Utc::now()).await {
        error!(action = %record.action, actor = %record.actor, error = %e, "cannot write an audit entry");
    }
}
