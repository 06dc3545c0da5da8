//! `/api/v1/targets` and `/api/v1/credentials`: poll targets and the credentials they poll
//! with.
//!
//! Credentials go in with their secrets and come out only as [`CredentialSummary`] (name, kind,
//! public fields): no handler here can return a secret, because the store hands out secrets
//! only as [`CredentialSecret`], which does not implement `Serialize`.
//!
//! Request bodies are read as bytes and parsed here, not by axum's `Json` extractor, so that a
//! refusal has the API's one error shape and names the field (`target field
//! `schedule.interval_seconds`: …`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::alerts::{invalid, parse_body};
use super::{ApiError, AppState, Caller};
use crate::auth::Permission;
use crate::store::{StoreError, TargetFilter};
use crate::target::{CredentialInput, CredentialSummary, Target, TargetSpec};

/// Query of `GET /api/v1/targets`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetQuery {
    pub addon: Option<String>,
    pub enabled: Option<bool>,
}

/// Maps the store's refusals to their statuses; `not_found` says what was missing.
fn refused(e: StoreError, not_found: impl FnOnce() -> String) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(not_found()),
        StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
        StoreError::Invalid(m) => invalid(m),
        other => other.into(),
    }
}

fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request("bad_id", format!("target id `{id}` is not a number")))
}

fn no_target(id: i64) -> impl FnOnce() -> String {
    move || format!("no target with id {id}")
}

/// The interval of a target that names no schedule: its addon's default.
async fn default_interval(state: &AppState, spec: &TargetSpec) -> Result<u32, ApiError> {
    // Field errors first, so that a request with several problems hears about them in the
    // same order whichever handler reads it.
    spec.validate().map_err(|e| invalid(e.to_string()))?;
    let poll = state
        .store
        .addon_poll_spec(&spec.addon_id)
        .await
        .map_err(|e| refused(e, String::new))?;
    Ok(poll.default_interval_seconds)
}

pub(super) async fn list_targets(
    State(state): State<AppState>,
    query: Result<Query<TargetQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Target>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let filter = TargetFilter {
        addon_id: q.addon,
        enabled: q.enabled,
    };
    Ok(Json(state.store.targets(&filter).await?))
}

/// Which (credential, address) pairs a caller may decide. A credential is a secret only
/// administrators may read, and a poll hands it to the target's address: whoever points a
/// credentialed target somewhere receives the secret there (an SSH password, an HTTP token).
/// So naming a credential on a new target, or changing the credential, address or addon of a
/// target that has one, needs `manage_credentials`; operators manage everything else about
/// targets, and may still change the schedule, config and enabled state of credentialed ones.
fn check_credential_use(
    caller: &Caller,
    spec: &TargetSpec,
    current: Option<&Target>,
) -> Result<(), ApiError> {
    let Some(credential) = &spec.credentials else {
        return Ok(());
    };
    let unchanged = current.is_some_and(|t| {
        t.credentials.as_ref() == Some(credential)
            && t.address == spec.address
            && t.addon_id == spec.addon_id
    });
    if unchanged {
        return Ok(());
    }
    caller.require(
        Permission::ManageCredentials,
        &format!(
            "send credential `{credential}` to an address of its choosing: naming a credential on a target, or changing the address or addon of a target that has one, is for those who manage credentials"
        ),
    )
}

pub(super) async fn create_target(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec: TargetSpec = parse_body("target", &body)?;
    check_credential_use(&caller, &spec, None)?;
    let interval = default_interval(&state, &spec).await?;
    let target = state
        .store
        .create_target(&spec, interval, chrono::Utc::now())
        .await
        .map_err(|e| refused(e, String::new))?;
    let location = format!("/api/v1/targets/{}", target.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(target),
    )
        .into_response())
}

pub(super) async fn get_target(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Target>, ApiError> {
    let id = parse_id(&id)?;
    state
        .store
        .target(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(no_target(id)()))
}

pub(super) async fn update_target(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Target>, ApiError> {
    let id = parse_id(&id)?;
    let spec: TargetSpec = parse_body("target", &body)?;
    if spec.credentials.is_some() {
        let current = state.store.target(id).await?;
        check_credential_use(&caller, &spec, current.as_ref())?;
    }
    let interval = default_interval(&state, &spec).await?;
    state
        .store
        .update_target(id, &spec, interval, chrono::Utc::now())
        .await
        .map(Json)
        .map_err(|e| refused(e, no_target(id)))
}

pub(super) async fn delete_target(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    state
        .store
        .delete_target(id)
        .await
        .map_err(|e| refused(e, no_target(id)))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_enabled(state: &AppState, id: &str, enabled: bool) -> Result<Json<Target>, ApiError> {
    let id = parse_id(id)?;
    state
        .store
        .set_target_enabled(id, enabled, chrono::Utc::now())
        .await
        .map(Json)
        .map_err(|e| refused(e, no_target(id)))
}

pub(super) async fn enable_target(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Target>, ApiError> {
    set_enabled(&state, &id, true).await
}

pub(super) async fn disable_target(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Target>, ApiError> {
    set_enabled(&state, &id, false).await
}

pub(super) async fn list_credentials(
    State(state): State<AppState>,
) -> Result<Json<Vec<CredentialSummary>>, ApiError> {
    Ok(Json(state.store.credentials().await?))
}

fn no_credential(name: &str) -> impl FnOnce() -> String {
    move || format!("no credential named `{name}`")
}

pub(super) async fn get_credential(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<CredentialSummary>, ApiError> {
    state
        .store
        .credential(&name)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(no_credential(&name)()))
}

/// Creates or replaces a credential; answers with its summary, never the secret.
pub(super) async fn put_credential(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<CredentialSummary>, ApiError> {
    let input: CredentialInput = parse_body("credential", &body)?;
    let secret = tokio::task::spawn_blocking(move || input.into_secret())
        .await
        .map_err(ApiError::internal)?
        .map_err(invalid)?;
    state
        .store
        .set_credential(&name, &secret, chrono::Utc::now())
        .await
        .map(Json)
        .map_err(|e| refused(e, no_credential(&name)))
}

pub(super) async fn delete_credential(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_credential(&name)
        .await
        .map_err(|e| refused(e, no_credential(&name)))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/targets/{id}/poll`: polls the target at the next scheduler tick (of whichever
/// node claims it first) instead of waiting for its schedule. 202: the poll is not awaited.
pub(super) async fn poll_target_now(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Target>), ApiError> {
    let id = parse_id(&id)?;
    state
        .store
        .poll_target_now(id, chrono::Utc::now())
        .await
        .map_err(|e| refused(e, no_target(id)))?;
    let target = state
        .store
        .target(id)
        .await?
        .ok_or_else(|| ApiError::not_found(no_target(id)()))?;
    Ok((StatusCode::ACCEPTED, Json(target)))
}

/// `GET /api/v1/ssh-host-keys`: the SSH host keys pinned on first use.
pub(super) async fn list_ssh_host_keys(
    State(state): State<AppState>,
) -> Result<Json<Vec<crate::store::PinnedHostKey>>, ApiError> {
    Ok(Json(state.store.ssh_host_keys().await?))
}

/// `DELETE /api/v1/ssh-host-keys/{endpoint}` (`host:port`): forgets a pinned key after an
/// intended key change; the next poll pins whatever the server presents.
pub(super) async fn forget_ssh_host_key(
    State(state): State<AppState>,
    Path(endpoint): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.store.forget_ssh_host_key(&endpoint).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no SSH host key is pinned for `{endpoint}`"
        )))
    }
}
