//! Authentication routes: login, refresh, logout and sessions; users, API keys, the signing
//! key and the audit log for administrators. Who may call each is in the route table; these
//! handlers only scope what they show to the caller (their own sessions).
//!
//! Tokens and keys appear in an answer once, when issued, and never again; the auth service
//! writes the audit entry of each change in the change's own transaction.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::alerts::{invalid, parse_body};
use super::guard::{auth_failure, too_many};
use super::{ApiError, AppState, Caller, MAX_PAGE};
use crate::auth::{Actor, ClientInfo, Principal, Role, Secret, TokenPair};
use crate::store::{AuditFilter, AuditOutcome, SessionFilter, SessionInfo};

/// What a login or a refresh answers.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TokenAnswer {
    pub access_token: String,
    #[schemars(extend("const" = "Bearer"))]
    pub token_type: &'static str,
    /// Seconds the access token lasts.
    pub expires_in: i64,
    pub expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub principal: Principal,
}

impl From<TokenPair> for TokenAnswer {
    fn from(pair: TokenPair) -> TokenAnswer {
        TokenAnswer {
            expires_in: (pair.access_expires_at - Utc::now()).num_seconds().max(0),
            access_token: pair.access_token.expose().to_owned(),
            token_type: "Bearer",
            expires_at: pair.access_expires_at,
            refresh_token: pair.refresh_token.expose().to_owned(),
            refresh_expires_at: pair.refresh_expires_at,
            principal: pair.principal,
        }
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: Secret,
}

/// `POST /api/v1/auth/login`: `{"username", "password"}` → tokens. Local users first; when a
/// directory is configured and no local user has that name, the directory decides. Every
/// attempt is audited; attempts are rate limited per client address and per username.
pub(super) async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: LoginBody = parse_body("login", &body)?;
    let valid_name = crate::auth::normalize_username(body.username.trim()).is_ok();
    if let Err(retry) = state
        .limits
        .check_login(client.ip, &body.username, valid_name)
    {
        tracing::warn!(ip = ?client.ip, "login attempts rate limited");
        return Ok(too_many(
            "too many login attempts; wait before trying again",
            retry,
        ));
    }
    let pair = state
        .auth
        .login(
            &body.username,
            body.password.expose(),
            &client,
            state.ldap.as_deref(),
        )
        .await
        .map_err(auth_failure)?;
    Ok(Json(TokenAnswer::from(pair)).into_response())
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: Secret,
}

/// `POST /api/v1/auth/refresh`: `{"refresh_token"}` → new tokens. The token presented is used
/// up; presenting it again revokes the session.
pub(super) async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Err(retry) = state.limits.check_refresh(client.ip) {
        tracing::warn!(ip = ?client.ip, "token refreshes rate limited");
        return Ok(too_many(
            "too many token refreshes from your address; wait before trying again",
            retry,
        ));
    }
    let body: RefreshBody = parse_body("refresh", &body)?;
    let pair = state
        .auth
        .refresh(body.refresh_token.expose(), &client)
        .await
        .map_err(auth_failure)?;
    Ok(Json(TokenAnswer::from(pair)).into_response())
}

/// `POST /api/v1/auth/logout`: ends the caller's session.
pub(super) async fn logout(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .logout(&caller.principal, &caller.client)
        .await
        .map_err(auth_failure)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/auth/me`: the caller and what their role allows.
pub(super) async fn me(caller: Caller) -> Json<Me> {
    let permissions: Vec<&str> = crate::auth::Permission::ALL
        .into_iter()
        .filter(|p| caller.principal.can(*p))
        .map(crate::auth::Permission::as_str)
        .collect();
    Json(Me {
        actor: caller.principal.actor,
        role: caller.principal.role,
        session_id: caller.principal.session_id,
        api_key_id: caller.principal.api_key_id,
        permissions,
    })
}

/// The answer of `GET /api/v1/auth/me`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Me {
    pub actor: String,
    pub role: Role,
    pub session_id: Option<String>,
    pub api_key_id: Option<i64>,
    /// What the role allows, by permission name.
    pub permissions: Vec<&'static str>,
}

/// The answer of `POST /api/v1/api-keys`: the key itself, shown this once.
#[derive(Serialize, schemars::JsonSchema)]
pub struct NewApiKey {
    pub key: String,
    pub api_key: crate::store::ApiKeyInfo,
}

/// The answer of `POST /api/v1/auth/signing-keys/rotate`.
#[derive(Serialize, schemars::JsonSchema)]
pub struct RotatedKey {
    /// The id of the key now signing.
    pub active_kid: String,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionQuery {
    /// Only sessions neither revoked nor expired (default true).
    pub active: Option<bool>,
    /// Administrators: only this user's sessions.
    pub user: Option<String>,
}

fn session_filter(query: &SessionQuery, user_id: Option<i64>) -> SessionFilter {
    SessionFilter {
        user_id,
        active_at: query.active.unwrap_or(true).then(Utc::now),
    }
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request("bad_query", e.body_text()))
}

/// `GET /api/v1/auth/sessions`: the caller's own sessions (an API key has none).
pub(super) async fn own_sessions(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<SessionQuery>, QueryRejection>,
) -> Result<Json<Vec<SessionInfo>>, ApiError> {
    let q = query(q)?;
    if q.user.is_some() {
        return Err(invalid(
            "`user` is for GET /api/v1/sessions; these are your own sessions",
        ));
    }
    let Some(user_id) = caller.principal.user_id else {
        return Ok(Json(Vec::new()));
    };
    let sessions = state
        .auth
        .sessions(&session_filter(&q, Some(user_id)))
        .await
        .map_err(auth_failure)?;
    Ok(Json(sessions))
}

/// `DELETE /api/v1/auth/sessions/{id}`: ends one of the caller's own sessions; someone else's
/// is "not found", whether or not it exists.
pub(super) async fn revoke_own_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::not_found(format!("you have no session `{id}`"));
    let session = state.auth.session(&id).await.map_err(auth_failure)?;
    match (session, caller.principal.user_id) {
        (Some(session), Some(user_id)) if session.user_id == user_id => {}
        _ => return Err(not_found()),
    }
    state
        .auth
        .revoke_session(&id, &caller.actor())
        .await
        .map_err(auth_failure)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/sessions`: everyone's sessions, or one user's with `?user=`.
pub(super) async fn all_sessions(
    State(state): State<AppState>,
    q: Result<Query<SessionQuery>, QueryRejection>,
) -> Result<Json<Vec<SessionInfo>>, ApiError> {
    let q = query(q)?;
    let user_id = match &q.user {
        None => None,
        Some(name) => Some(
            state
                .auth
                .user(name)
                .await
                .map_err(auth_failure)?
                .ok_or_else(|| ApiError::not_found(format!("no user named `{name}`")))?
                .id,
        ),
    };
    let sessions = state
        .auth
        .sessions(&session_filter(&q, user_id))
        .await
        .map_err(auth_failure)?;
    Ok(Json(sessions))
}

/// `DELETE /api/v1/sessions/{id}`: revokes anyone's session; its sockets close too.
pub(super) async fn revoke_any_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .revoke_session(&id, &caller.actor())
        .await
        .map_err(auth_failure)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- users ----

pub(super) async fn list_users(
    State(state): State<AppState>,
) -> Result<Json<Vec<crate::store::User>>, ApiError> {
    Ok(Json(state.auth.users().await.map_err(auth_failure)?))
}

pub(super) async fn get_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<crate::store::User>, ApiError> {
    state
        .auth
        .user(&name)
        .await
        .map_err(auth_failure)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no user named `{name}`")))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    username: String,
    role: Role,
    /// Absent: one is generated and returned once.
    password: Option<Secret>,
}

/// A user, with the generated password when there is one (shown this once).
#[derive(Serialize, schemars::JsonSchema)]
pub struct UserWithPassword {
    user: crate::store::User,
    #[serde(skip_serializing_if = "Option::is_none")]
    generated_password: Option<String>,
}

/// `POST /api/v1/users`: `{"username", "role", "password"?}`.
pub(super) async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<UserWithPassword>), ApiError> {
    let body: NewUserBody = parse_body("user", &body)?;
    let (user, generated) = state
        .auth
        .create_user(
            &body.username,
            body.role,
            body.password.as_ref(),
            &caller.actor(),
        )
        .await
        .map_err(auth_failure)?;
    let answer = UserWithPassword {
        user,
        generated_password: generated.map(|p| p.expose().to_owned()),
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    role: Option<Role>,
    disabled: Option<bool>,
    /// A new password; `"generate"` for a generated one, returned once.
    password: Option<Secret>,
}

/// `PUT /api/v1/users/{name}`: `{"role"?, "disabled"?, "password"?}`. A new password signs the
/// user out everywhere; so does disabling them.
pub(super) async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<UserWithPassword>, ApiError> {
    let change: UserChange = parse_body("user change", &body)?;
    if change.role.is_none() && change.disabled.is_none() && change.password.is_none() {
        return Err(invalid(
            "user change: give at least one of `role`, `disabled`, `password`",
        ));
    }
    let actor = caller.actor();
    // One transaction: a refused part (demoting the last administrator) changes nothing.
    let password = change
        .password
        .as_ref()
        .map(|p| (p.expose() != "generate").then_some(p));
    let (user, generated) = state
        .auth
        .update_user(&name, change.role, change.disabled, password, &actor)
        .await
        .map_err(auth_failure)?;
    Ok(Json(UserWithPassword {
        user,
        generated_password: generated.map(|p| p.expose().to_owned()),
    }))
}

// ---- API keys ----

pub(super) async fn list_api_keys(
    State(state): State<AppState>,
) -> Result<Json<Vec<crate::store::ApiKeyInfo>>, ApiError> {
    Ok(Json(state.auth.api_keys().await.map_err(auth_failure)?))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKeyBody {
    name: String,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
}

/// `POST /api/v1/api-keys`: `{"name", "role", "expires_at"?}` → the key, shown this once.
pub(super) async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<NewApiKey>), ApiError> {
    let body: NewApiKeyBody = parse_body("API key", &body)?;
    let (info, key) = state
        .auth
        .create_api_key(&body.name, body.role, body.expires_at, &caller.actor())
        .await
        .map_err(auth_failure)?;
    Ok((
        StatusCode::CREATED,
        Json(NewApiKey {
            key: key.expose().to_owned(),
            api_key: info,
        }),
    ))
}

/// `DELETE /api/v1/api-keys/{id}`.
pub(super) async fn revoke_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::store::ApiKeyInfo>, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("no API key with id `{id}`")))?;
    let info = state
        .auth
        .revoke_api_key(id, &caller.actor())
        .await
        .map_err(auth_failure)?;
    Ok(Json(info))
}

/// `POST /api/v1/auth/signing-keys/rotate`: a new signing key; tokens signed by the old one
/// stay valid until they expire.
pub(super) async fn rotate_signing_key(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<RotatedKey>, ApiError> {
    let kid = state
        .auth
        .rotate_signing_key(&caller.actor())
        .await
        .map_err(auth_failure)?;
    Ok(Json(RotatedKey { active_kid: kid }))
}

// ---- audit ----

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    #[schemars(with = "Option<AuditOutcome>")]
    pub outcome: Option<String>,
    /// Keyset cursor: the `next_before` of the previous page.
    pub before: Option<i64>,
    /// Page size, 1..=1000 (default 50).
    #[schemars(range(min = 1, max = MAX_PAGE))]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AuditPage {
    pub items: Vec<crate::store::AuditEntry>,
    /// Pass as `before` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

/// `GET /api/v1/audit`: newest first, filtered by actor, action, target and outcome.
pub(super) async fn audit_log(
    State(state): State<AppState>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let q = query(q)?;
    let limit = super::page_limit(q.limit)?;
    let outcome = q
        .outcome
        .as_deref()
        .map(str::parse::<AuditOutcome>)
        .transpose()
        .map_err(|e| ApiError::bad_request("bad_query", e.to_string()))?;
    let items = state
        .store
        .audit_log(&AuditFilter {
            actor: q.actor,
            action: q.action,
            target: q.target,
            outcome,
            before_id: q.before,
            limit,
        })
        .await?;
    let next_before = (items.len() == limit as usize)
        .then(|| items.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditPage { items, next_before }))
}

/// The actor of a request for code paths that only have the request's extensions (alert
/// actions record it in the alert's history).
pub fn actor_name(extensions: &axum::http::Extensions) -> String {
    extensions
        .get::<Principal>()
        .map_or_else(|| Actor::system().name, |p| p.actor.clone())
}
