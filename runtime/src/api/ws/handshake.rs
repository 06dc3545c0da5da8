//! The upgrade: credentials on the request are checked before the socket exists, and the
//! checks a connection repeats (verify, same principal) live here too.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::connection;
use super::{MAX_MESSAGE_BYTES, VERIFY_TIMEOUT, WebSocketConfig};
use crate::api::AppState;
use crate::api::guard::{challenged, unauthorized};
use crate::api_error::{ApiError, bearer_token};
use crate::auth::{Auth, AuthError, Permission, Principal, Secret};

/// Query of `GET /ws`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WsQuery {
    /// A bearer value (access token or API key), for clients that cannot set headers.
    pub(super) token: Option<Secret>,
}

/// `GET /ws`: authenticates the credentials the request carries, if any, and upgrades to the
/// event WebSocket.
///
/// The WebSocket's settings (`auth_timeout_ms`, `reverify_ms`) come from an
/// `Extension<WebSocketConfig>` on the router; without one, the defaults apply.
pub async fn handler(
    State(state): State<AppState>,
    config: Option<Extension<WebSocketConfig>>,
    client_info: crate::auth::ClientInfo,
    headers: HeaderMap,
    query: Result<Query<WsQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let upgrade = upgrade.map_err(|e| {
        ApiError::new(
            e.status(),
            "websocket_required",
            format!("/ws is a WebSocket endpoint: {}", e.body_text()),
        )
    })?;
    let config = config.map(|Extension(c)| c).unwrap_or_default();
    if let Err(retry) = state.limits.check_websocket(client_info.ip) {
        return Ok(crate::api::too_many(
            "too many WebSocket connections opened from your address; wait before reconnecting",
            retry,
        ));
    }
    let bearer = match (bearer_token(&headers), query.token) {
        (Err(refusal), _) => return Ok(challenged(unauthorized(refusal))),
        (Ok(Some(_)), Some(_)) => {
            return Err(ApiError::bad_request(
                "ambiguous_credentials",
                "credentials given twice: send either the Authorization header or the token \
                 query parameter",
            ));
        }
        (Ok(header), query) => header.map(Secret::new).or(query),
    };
    let authenticated = match bearer {
        None => None,
        Some(bearer) => match verify(&state.auth, &bearer).await {
            Ok(principal) if !principal.can(Permission::Read) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    not_allowed(&principal),
                ));
            }
            Ok(principal) => {
                let Some(slot) = state
                    .sockets
                    .take(principal.actor.clone(), config.max_per_principal)
                else {
                    return Err(ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too_many_sockets",
                        too_many_sockets(&principal.actor, config.max_per_principal),
                    ));
                };
                Some(Credentials {
                    bearer,
                    principal,
                    _slot: slot,
                })
            }
            Err(Verification::Refused(why)) => return Ok(challenged(unauthorized(why))),
            Err(Verification::Unavailable(detail)) => return Err(ApiError::internal(detail)),
        },
    };
    let client = connection::ClientContext {
        bus: state.events.clone(),
        auth: state.auth.clone(),
        auth_timeout: config.auth_timeout(),
        reverify: config.reverify(),
        sockets: std::sync::Arc::clone(&state.sockets),
        max_per_principal: config.max_per_principal,
    };
    Ok(upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| connection::serve(socket, client, authenticated)))
}

pub(super) fn not_allowed(principal: &Principal) -> String {
    format!(
        "{} (role {}) may not read events",
        principal.actor, principal.role
    )
}

/// A connection's verified credentials. The bearer stays in memory, to be checked again.
pub(super) struct Credentials {
    pub(super) bearer: Secret,
    pub(super) principal: Principal,
    /// The connection's place among its principal's open sockets.
    pub(super) _slot: crate::slots::Slot<String>,
}

/// Open sockets per principal (by actor), so that each has at most `max_per_principal`.
pub type OpenSockets = crate::slots::Slots<String>;

pub(super) fn too_many_sockets(actor: &str, max: usize) -> String {
    format!(
        "{actor} has {max} WebSockets open already (websocket.max_per_principal); close one first"
    )
}

/// Why credentials were not verified.
pub(super) enum Verification {
    /// Refused, and why (safe to tell the client: never the token itself).
    Refused(String),
    /// Could not be checked (the database); the detail is for the log only.
    Unavailable(String),
}

pub(super) async fn verify(auth: &Auth, bearer: &Secret) -> Result<Principal, Verification> {
    match tokio::time::timeout(VERIFY_TIMEOUT, auth.verify(bearer.expose())).await {
        Ok(Ok(principal)) => Ok(principal),
        Ok(Err(AuthError::Rejected(why))) => Err(Verification::Refused(why.to_string())),
        Ok(Err(other)) => Err(Verification::Unavailable(other.to_string())),
        Err(_) => Err(Verification::Unavailable(format!(
            "verifying credentials took longer than {VERIFY_TIMEOUT:?}"
        ))),
    }
}

/// Whether `next` is who `current` is: the same user (perhaps through another session) or the
/// same API key.
pub(super) fn same_principal(current: &Principal, next: &Principal) -> bool {
    match (current.user_id, current.api_key_id) {
        (Some(user), _) => next.user_id == Some(user),
        (None, Some(key)) => next.api_key_id == Some(key),
        (None, None) => false,
    }
}

pub(super) fn principal_json(principal: &Principal) -> Value {
    json!({"actor": principal.actor, "role": principal.role})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_principal_is_the_same_user_or_key() {
        let user = |id, session: &str| Principal {
            actor: format!("user:u{id}"),
            role: crate::auth::Role::Viewer,
            user_id: Some(id),
            api_key_id: None,
            session_id: Some(session.to_owned()),
        };
        let key = |id| Principal {
            actor: format!("key:k{id}"),
            role: crate::auth::Role::Service,
            user_id: None,
            api_key_id: Some(id),
            session_id: None,
        };
        assert!(
            same_principal(&user(1, "a"), &user(1, "b")),
            "another session of the user"
        );
        assert!(!same_principal(&user(1, "a"), &user(2, "a")));
        assert!(same_principal(&key(1), &key(1)));
        assert!(!same_principal(&key(1), &key(2)));
        assert!(!same_principal(&key(1), &user(1, "a")));
        assert!(!same_principal(&user(1, "a"), &key(1)));
    }
}
