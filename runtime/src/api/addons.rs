//! `/api/v1/addons/{id}`: one installed addon with its manifest, enabling and disabling it, and
//! its settings (webhook authentication and allow list, see [`crate::webhook_auth`]).
//!
//! Settings come out only through [`AddonSettings::public`], which shows a secret as `"set"`:
//! no handler here can return one. A change is validated before the store keeps it, moves the
//! addon generation (so every node reloads the addon), and is loaded on this node before the
//! answer, so that the next webhook already meets it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::warn;

use super::alerts::{invalid, parse_body};
use super::{AddonView, ApiError, AppState, AuditDetail};
use crate::registry::{RegistryError, set_enabled};
use crate::store::{AddonRow, StoreError};
use crate::webhook_auth::AddonSettings;

/// One installed addon, as `GET /api/v1/addons/{id}` shows it: its entry in the list, and the
/// manifest it was installed with.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AddonDetail {
    #[serde(flatten)]
    pub addon: AddonView,
    pub manifest: Value,
}

/// An addon's entry in `GET /api/v1/addons`, with this node's counters when it is loaded here.
pub(crate) fn view(state: &AppState, row: &AddonRow) -> AddonView {
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
        quarantine: loaded
            .as_ref()
            .map(|a| a.quarantine.status(std::time::Instant::now())),
        id: row.id.clone(),
        name: row.name.clone(),
        version: row.version.clone(),
        enabled: row.enabled,
        methods: row.methods.clone(),
        wasm_sha256: row.wasm_sha256.clone(),
        installed_at: row.installed_at,
        updated_at: row.updated_at,
    }
}

fn no_addon(id: &str) -> ApiError {
    ApiError::not_found(format!("no addon `{id}` is installed"))
}

async fn installed(state: &AppState, id: &str) -> Result<AddonRow, ApiError> {
    state.store.addon(id).await?.ok_or_else(|| no_addon(id))
}

/// Loads what was just written on this node now, rather than at its next registry poll. A
/// failure here is not the request's: the write is committed and the watcher retries.
async fn reload(state: &AppState) {
    if let Err(error) = state.registry.reload().await {
        warn!(%error, "addon registry reload after a change failed; the watcher will retry");
    }
}

/// `GET /api/v1/addons/{id}`.
pub(super) async fn get_addon(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AddonDetail>, ApiError> {
    let row = installed(&state, &id).await?;
    Ok(Json(AddonDetail {
        addon: view(&state, &row),
        manifest: row.manifest,
    }))
}

async fn change_enabled(state: &AppState, id: &str, enabled: bool) -> Result<Response, ApiError> {
    let before = installed(state, id).await?;
    set_enabled(&state.store, id, enabled)
        .await
        .map_err(|e| match e {
            RegistryError::UnknownAddon(_) => no_addon(id),
            other => ApiError::internal(other),
        })?;
    reload(state).await;
    let row = installed(state, id).await?;
    let audit = AuditDetail::target(format!("addon:{id}"))
        .before(json!({ "enabled": before.enabled }))
        .after(json!({ "enabled": row.enabled }));
    let detail = AddonDetail {
        addon: view(state, &row),
        manifest: row.manifest,
    };
    Ok((audit, Json(detail)).into_response())
}

/// `POST /api/v1/addons/{id}/release`: calls a quarantined addon again at once, on this node
/// (each node keeps its own quarantine), with its faults and strikes forgotten.
pub(super) async fn release_addon(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let row = installed(&state, &id).await?;
    let Some(addon) = state.registry.get(&id) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "addon_not_loaded",
            format!("addon `{id}` is not loaded on this node: nothing to release"),
        ));
    };
    let before = addon.quarantine.status(std::time::Instant::now());
    addon.quarantine.release();
    let audit = AuditDetail::target(format!("addon:{id}"))
        .before(json!({ "quarantine": before.state }))
        .after(json!({ "quarantine": crate::quarantine::QuarantineState::Healthy }));
    let detail = AddonDetail {
        addon: view(&state, &row),
        manifest: row.manifest,
    };
    Ok((audit, Json(detail)).into_response())
}

/// `POST /api/v1/addons/{id}/enable`: every node loads the addon within its registry poll,
/// this one before answering (`loaded` says whether it could).
pub(super) async fn enable_addon(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    change_enabled(&state, &id, true).await
}

/// `POST /api/v1/addons/{id}/disable`.
pub(super) async fn disable_addon(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    change_enabled(&state, &id, false).await
}

/// The addon's stored settings, parsed; `Ok(None)` when it has none.
async fn current_settings(
    state: &AppState,
    id: &str,
) -> Result<Option<Result<AddonSettings, String>>, ApiError> {
    Ok(state.store.addon_settings(id).await?.map(|stored| {
        AddonSettings::from_stored(&stored).map_err(|e| {
            // The field only: a hand-edited value could be a secret in the wrong place.
            format!(
                "addon `{id}` has stored settings that cannot be used (field `{}`), so its \
                 webhooks are refused; replace them with PUT",
                e.field
            )
        })
    }))
}

/// `GET /api/v1/addons/{id}/settings`: the addon's settings with any secret shown as `"set"`;
/// the defaults (no authentication, any address) when none were ever set.
pub(super) async fn get_addon_settings(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<crate::webhook_auth::PublicSettings>, ApiError> {
    installed(&state, &id).await?;
    match current_settings(&state, &id).await? {
        None => Ok(Json(AddonSettings::default().public_view())),
        Some(Ok(settings)) => Ok(Json(settings.public_view())),
        Some(Err(message)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "settings_unusable",
            message,
        )),
    }
}

/// `PUT /api/v1/addons/{id}/settings`: replaces the addon's settings. A secret left out (or
/// sent back as `"set"`) while the mode is still `token` or `hmac` keeps the current secret, so
/// a client can change the networks without knowing it. Answers with the public view.
pub(super) async fn put_addon_settings(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut settings: AddonSettings = parse_body("addon settings", &body)?;
    installed(&state, &id).await?;
    let current = current_settings(&state, &id).await?;
    settings.keep_secret_from(current.as_ref().and_then(|c| c.as_ref().ok()));
    settings
        .validate()
        .map_err(|e| invalid(format!("addon settings {e}")))?;
    state
        .store
        .set_addon_settings(&id, &settings.stored(), chrono::Utc::now())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => no_addon(&id),
            other => other.into(),
        })?;
    reload(&state).await;
    let after = settings.public_view();
    let before = match &current {
        None => AddonSettings::default().public(),
        Some(Ok(c)) => c.public(),
        Some(Err(_)) => json!("unusable"),
    };
    let audit = AuditDetail::target(format!("addon:{id}"))
        .before(before)
        .after(&after);
    Ok((audit, Json(after)).into_response())
}

/// Query of `POST /api/v1/addons`.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallQuery {
    /// The caller's consent to an upgrade that widens the addon's capabilities.
    #[serde(default)]
    accept_capabilities: bool,
}

/// `POST /api/v1/addons`: installs or upgrades an addon from a bundle file
/// (`opsconductor addon pack`) sent as the raw body. The bundle's hashes and signature, its WIT
/// world and its fixtures (in the sandbox) are checked first: `422` names what failed. An
/// upgrade that widens the addon's capabilities is `409` with the difference unless
/// `?accept_capabilities=true`. Active on this node before the answer, on the others within
/// their registry poll.
pub(super) async fn install_addon(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    use crate::bundle::install::install;
    let query: InstallQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request("bad_query", format!("query: {e}")))?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "bad_bundle",
            "the request body must be an addon bundle file (opsconductor addon pack)",
        ));
    }
    let policy = state.bundles.clone();
    let bundle = tokio::task::spawn_blocking(move || crate::bundle::open_bytes(&body, &policy))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bundle_rejected",
                format!("{e}"),
            )
        })?;
    let id = bundle.id.clone();
    let audit = AuditDetail::target(format!("addon:{id}"));
    let before = state
        .store
        .addon(&id)
        .await?
        .map(|row| json!({ "version": row.version, "wasm_sha256": row.wasm_sha256 }));
    let audit = match &before {
        Some(b) => audit.before(b),
        None => audit,
    };
    let sandbox = state.registry.sandbox().clone();
    let done = match install(&state.store, &sandbox, &bundle, query.accept_capabilities).await {
        Ok(done) => done,
        Err(e) => return install_refused(audit, e),
    };
    reload(&state).await;
    let audit = audit.after(json!({
        "version": done.report.version,
        "wasm_sha256": done.report.wasm_sha256,
        "signer": done.signer,
    }));
    let status = if done.report.changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((audit, (status, Json(done))).into_response())
}

/// The answer to a refused install, audited as a failure with the addon as its target: `409`
/// with the difference for capabilities not accepted, `409` for a webhook path taken, `422`
/// naming what is wrong with the bundle; failures of ours stay `500`.
fn install_refused(
    audit: AuditDetail,
    error: crate::bundle::install::InstallError,
) -> Result<Response, ApiError> {
    use crate::bundle::install::InstallError;
    let message = error.to_string();
    let refusal = match error {
        InstallError::CapabilitiesNotAccepted { from, to, diff, .. } => {
            let body = json!({ "error": {
                "code": "capabilities_not_accepted",
                "message": message,
                "from_version": from,
                "to_version": to,
                "capability_diff": diff,
            }});
            let audit =
                audit.after(json!({ "refused": "capabilities_not_accepted", "version": to }));
            return Ok((audit, (StatusCode::CONFLICT, Json(body))).into_response());
        }
        InstallError::Store(e) => return Err(e.into()),
        InstallError::Registry(RegistryError::WebhookPathTaken { .. }) => {
            ApiError::new(StatusCode::CONFLICT, "conflict", message)
        }
        InstallError::Registry(
            e @ (RegistryError::Store(_) | RegistryError::Join(_) | RegistryError::UnknownAddon(_)),
        ) => return Err(ApiError::internal(e)),
        InstallError::FixturesFailed { .. } | InstallError::Fixtures { .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "fixtures_failed", message)
        }
        InstallError::UnsupportedWorld { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_world",
            message,
        ),
        InstallError::Bundle(_) | InstallError::Manifest { .. } | InstallError::Registry(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bundle_rejected", message)
        }
    };
    Ok((audit, refusal).into_response())
}

/// The answer of `POST /api/v1/addons/{id}/rollback`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RolledBack {
    /// The version that was active before.
    pub rolled_back_from: crate::store::AddonVersion,
    pub addon: AddonDetail,
}

/// `POST /api/v1/addons/{id}/rollback`: puts back the version the addon's last upgrade
/// replaced (`409` when none is kept); loaded on this node before the answer.
pub(super) async fn rollback_addon(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    use crate::bundle::install::{RollbackError, rollback};
    let done = rollback(&state.store, &id).await.map_err(|e| match e {
        RollbackError::UnknownAddon(_) => no_addon(&id),
        e @ RollbackError::NoPreviousVersion(_) => {
            ApiError::new(StatusCode::CONFLICT, "no_previous_version", e.to_string())
        }
        RollbackError::Store(e) => e.into(),
    })?;
    reload(&state).await;
    let row = installed(&state, &id).await?;
    let audit = AuditDetail::target(format!("addon:{id}"))
        .before(&done.from)
        .after(&done.to);
    let detail = RolledBack {
        rolled_back_from: done.from,
        addon: AddonDetail {
            addon: view(&state, &row),
            manifest: row.manifest,
        },
    };
    Ok((audit, Json(detail)).into_response())
}
