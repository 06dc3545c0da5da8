//! The runtime itself: readiness, version, and the settings operators keep in the database
//! (`system_settings`).
//!
//! The runtime keeps its own bookkeeping in `system_settings` too (the SNMP engine id, change
//! generations). Those keys are neither shown nor writable here: a dashboard that overwrote the
//! engine id would silently break every SNMPv3 sender.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::alerts::{invalid, parse_body};
use super::{ApiError, AppState, AuditDetail};

/// `GET /ready`: 200 when this node can serve (its database answers), 503 otherwise, for load
/// balancers and orchestrators.
pub(super) async fn ready(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(Readiness {
            ready: true,
            reason: None,
        })
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Readiness {
                    ready: false,
                    reason: Some("database unreachable"),
                }),
            )
                .into_response()
        }
    }
}

/// The answer of `GET /ready`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Readiness {
    pub ready: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// The answer of `GET /api/v1/system/version`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Version {
    pub name: &'static str,
    pub version: &'static str,
    pub api: &'static str,
    /// The WIT worlds addons may be built for.
    pub wit_worlds: Vec<&'static str>,
    pub websocket_protocol: u32,
    /// `sqlite` or `postgres`.
    pub database: String,
}

/// The answer of `PUT /api/v1/system/settings/{key}`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SettingSet {
    pub key: String,
    pub value: Value,
}

/// `GET /api/v1/system/version`.
pub(super) async fn version(State(state): State<AppState>) -> Json<Version> {
    Json(Version {
        name: "opsconductor",
        version: env!("CARGO_PKG_VERSION"),
        api: "v1",
        wit_worlds: crate::manifest::SUPPORTED_WORLDS.to_vec(),
        websocket_protocol: crate::api::ws::PROTOCOL_VERSION,
        database: state.store.kind().to_string(),
    })
}

/// Key prefixes and suffixes the runtime keeps for itself.
const RESERVED_PREFIXES: &[&str] = &["snmp.", "addons.", "silences.", "auth.", "internal."];
const RESERVED_SUFFIX: &str = ".generation";

/// Longest setting key, in bytes, and longest value, as JSON text.
pub const MAX_KEY_LEN: usize = 128;
pub const MAX_VALUE_LEN: usize = 64 * 1024;

fn reserved(key: &str) -> bool {
    RESERVED_PREFIXES.iter().any(|p| key.starts_with(p)) || key.ends_with(RESERVED_SUFFIX)
}

/// A key operators may use: 1 to 128 of `a-z 0-9 . _ -`, starting with a letter, outside the
/// runtime's own namespaces.
fn check_key(key: &str) -> Result<(), ApiError> {
    let shape_ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if !shape_ok {
        return Err(invalid(format!(
            "setting key `{key}` must be 1 to {MAX_KEY_LEN} of a-z 0-9 . _ - starting with a letter"
        )));
    }
    if reserved(key) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "reserved",
            format!("setting `{key}` belongs to the runtime and cannot be changed through the API"),
        ));
    }
    Ok(())
}

/// One setting as the API shows it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SettingView {
    pub key: String,
    /// The JSON value as set (a value set outside the API that is not JSON is a string).
    pub value: Value,
    pub updated_at: DateTime<Utc>,
}

/// `GET /api/v1/system/settings`: every operator setting, by key.
pub(super) async fn list_settings(
    State(state): State<AppState>,
) -> Result<Json<Vec<SettingView>>, ApiError> {
    let settings = state.store.list_settings().await?;
    Ok(Json(
        settings
            .into_iter()
            .filter(|(key, _, _)| !reserved(key))
            .map(|(key, value, updated_at)| SettingView {
                value: serde_json::from_str(&value).unwrap_or(Value::String(value)),
                key,
                updated_at,
            })
            .collect(),
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingBody {
    value: Value,
}

/// `PUT /api/v1/system/settings/{key}`: `{"value": <any JSON>}`.
pub(super) async fn put_setting(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_key(&key)?;
    let body: SettingBody = parse_body("setting", &body)?;
    let text = body.value.to_string();
    if text.len() > MAX_VALUE_LEN {
        return Err(invalid(format!(
            "setting `{key}`: the value is longer than {MAX_VALUE_LEN} bytes as JSON"
        )));
    }
    let before = state
        .store
        .get_setting(&key)
        .await?
        .map(|v| serde_json::from_str(&v).unwrap_or(Value::String(v)));
    state.store.set_setting(&key, &text, Utc::now()).await?;
    let audit = AuditDetail::target(format!("setting:{key}"))
        .before(&before)
        .after(&body.value);
    Ok((
        audit,
        Json(SettingSet {
            key,
            value: body.value,
        }),
    )
        .into_response())
}

/// `DELETE /api/v1/system/settings/{key}`.
pub(super) async fn delete_setting(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    check_key(&key)?;
    let before = state.store.get_setting(&key).await?;
    if !state.store.delete_setting(&key).await? {
        return Err(ApiError::not_found(format!("no setting `{key}`")));
    }
    let audit = AuditDetail::target(format!("setting:{key}")).before(&before);
    Ok((audit, StatusCode::NO_CONTENT).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_keeps_its_own_keys() {
        for key in [
            "snmp.engine_id",
            "addons.generation",
            "silences.generation",
            "ui.generation",
        ] {
            let err = check_key(key).unwrap_err();
            assert_eq!(err.status, StatusCode::FORBIDDEN, "{key}");
        }
        for key in ["ui.title", "notify.default-channel", "a"] {
            assert!(check_key(key).is_ok(), "{key}");
        }
        for key in ["", "UI", "1x", "a b", &"a".repeat(MAX_KEY_LEN + 1)] {
            assert_eq!(
                check_key(key).unwrap_err().status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{key}"
            );
        }
    }
}
