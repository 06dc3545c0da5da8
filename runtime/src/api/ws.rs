//! The real-time WebSocket at `GET /ws`: dashboards follow alert, addon and node events live
//! from the [event bus](crate::events).
//!
//! Protocol (JSON text frames; every message has a `type`):
//!
//! - On connect the server says `{"type": "hello", "protocol": 1, "node", "stream",
//!   "cursor", "event_types", "heartbeat_ms", "client_queue", "reverify_ms", "auth"}`, where
//!   `stream` names this node's event stream (new at every start) and `cursor` is the last
//!   event published on it (see resuming below), and `auth` is
//!   `"authenticated"` when the upgrade request carried credentials (`principal` is then
//!   included) and `"required"` when it did not (an `auth` message is expected within
//!   `auth_timeout_ms`, also included). Nothing is delivered until the client subscribes.
//! - Authentication. A client authenticates with an access token (JWT) or an API key, the
//!   bearer values the REST API takes, in one of three ways:
//!   - `Authorization: Bearer <token>` on the upgrade request;
//!   - a `token` query parameter (`/ws?token=...`), for browsers, which cannot set headers on
//!     a WebSocket (proxies may log URLs: prefer the header or the message where possible);
//!   - the first message, `{"type": "auth", "token": "..."}`, when the upgrade carried none.
//!
//!   Credentials on the upgrade request are checked before upgrading: a bad one is refused
//!   with 401 (`{"error": {"code": "unauthorized", "message": <why>}}` and `WWW-Authenticate:
//!   Bearer`), a principal without the `read` permission with 403 (`forbidden`), a header and
//!   a query token together with 400 (`ambiguous_credentials`). Without credentials the
//!   upgrade is accepted and the client has `auth_timeout_ms` to send an `auth` message; until
//!   it does, every other message is answered with the error `auth_required` and nothing is
//!   delivered. An `auth` message is answered with `{"type": "authenticated", "principal":
//!   {"actor", "role"}}`, or, when refused, with `{"type": "error", "code": "unauthorized",
//!   "message": <why>}` followed by close code 4401 (code `forbidden` and close 4403 for a
//!   principal without `read`). No `auth` message in time: error `auth_timeout`, close 4401.
//!   Tokens are never echoed nor logged, and are held in memory only.
//! - While the connection lasts, its credentials are checked again every `reverify_ms`: once
//!   they are refused — the session revoked or expired, the user disabled, the API key revoked
//!   or expired, the access token expired — the client is sent `{"type": "error", "code":
//!   "unauthorized", "message": <why>}` and closed with 4401. A client keeps its connection
//!   past its access token's expiry by sending, before then, an `auth` message with a fresh
//!   token (from a refresh) of the same user or API key; a token of anyone else is refused
//!   with error `principal_changed` and close 4401 (a connection never changes hands: open a
//!   new one). When the credentials cannot be checked at all (the database does not answer)
//!   three times in a row, or when an `auth` message cannot be checked, the client is sent
//!   error `internal` and closed with 1011.
//! - `{"type": "subscribe", "events": ["alert_created", ...], "filter": {"severity": [...],
//!   "addon": [...], "device": [...]}}` sets (replaces) the filter of each named event type;
//!   each filter field is one value or a list (any of them matches), absent means any, and fields
//!   combine with "and". `severity` and `device` (IP or name, as in `GET /api/v1/alerts`) apply
//!   to alert events, `addon` to alert and addon events; a filter that cannot apply is refused.
//!   Alerts that opened or occurred while a silence suppressed them reach only subscriptions
//!   whose filter says `"include_suppressed": true` (alert events). Answered with `{"type":
//!   "subscribed", "subscriptions": {type: filter, ...}}`, the whole current state, after
//!   which every matching event is delivered. Subscribing to `system_status` also delivers this node's latest
//!   status at once.
//! - Resuming: every event carries `cursor`, its place in this node's stream. A client that
//!   reconnects adds `"resume": {"stream": <hello's stream>, "after": <the last cursor it
//!   saw>}` to its `subscribe`; the answer says `"resumed": true` (and `cursor`, the last
//!   event replayed) and the events it missed (those its new subscriptions match) follow at
//!   once, or `"resumed": false` when they cannot
//!   all be given (another node or a restart, events no longer held — `[websocket]
//!   resume_events` — or lost), and the client must re-read what it shows from the API.
//! - `{"type": "unsubscribe", "events": [...]}` (no `events`: all) stops them; answered with
//!   `{"type": "unsubscribed", "subscriptions": {...}}`.
//! - `{"type": "ping"}` is answered with `{"type": "pong"}`, for clients that cannot send
//!   WebSocket pings.
//! - A client message may carry an `id`, echoed in its answer (and in an error closing the
//!   connection because of it). A message that is not understood is answered with `{"type":
//!   "error", "code", "message"}` naming what is wrong; the connection stays open.
//! - Events: `{"type": "alert_created" | "alert_updated" | "alert_resolved" | "system_status" |
//!   "addon_status", "node", "seq", "cursor", "alert" | "status" | "addon": {...}}`; `alert` is
//!   the whole alert as `GET /api/v1/alerts/{id}` shows it, as stored when the event was
//!   published (so a later event always shows a later state).
//! - A client that falls more than `client_queue` events behind (it reads too slowly) is sent
//!   `{"type": "lagged", "missed": n}` if its socket still takes it, then closed with code 4001:
//!   it must re-read what it shows from the API and subscribe again. The same happens to every
//!   client (with `"missed": null`) when events were lost before reaching them (see
//!   [`crate::events`]). The bus never waits for a client.
//! - The server pings every `heartbeat_ms`; a client that has not answered the previous ping
//!   by then is closed with code 4002. On shutdown clients are closed with 1001.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::de::{self, IgnoredAny, IntoDeserializer};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tracing::{debug, warn};

use crate::alert::{AlertStatus, Severity};
use crate::api::AppState;
use crate::api_error::ApiError;
use crate::auth::{Auth, AuthError, Permission, Principal, Secret};
use crate::events::{BusItem, Event, EventBus, EventType, stopped};

/// The version of the protocol above, in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Close code: the client fell behind and was dropped.
pub const CLOSE_LAGGED: u16 = 4001;
/// Close code: the client did not answer a heartbeat ping.
pub const CLOSE_NO_PONG: u16 = 4002;
/// Close code: the client did not authenticate in time, its credentials were refused (at once
/// or when checked again), or it tried to change who it is.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// Close code: the client is authenticated but may not read events.
pub const CLOSE_FORBIDDEN: u16 = 4403;
/// The principal has `max_per_principal` sockets open already.
pub const CLOSE_TOO_MANY: u16 = 4429;

/// Largest message a client may send; subscriptions are small.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Values per filter field, and bytes per value: enough for any dashboard, bounded for the
/// matching done for every event.
const MAX_FILTER_VALUES: usize = 100;
const MAX_FILTER_VALUE_BYTES: usize = 256;
/// How long the goodbye (a `lagged` message, a close frame) may take; a client that is not
/// reading never takes it, and is then simply disconnected.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one check of a client's credentials may take (a database read) before it counts
/// as failed.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// Re-checks of a connection's credentials that may fail in a row (the database unreachable,
/// not the credentials refused) before the connection is closed with 1011.
const MAX_REVERIFY_FAILURES: u32 = 3;

/// The `[websocket]` section of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketConfig {
    /// How many events a client may fall behind before it is dropped (rounded up to a power of
    /// two). Larger than the writer's largest batch (`writer_max_batch`), whose events arrive
    /// all at once.
    pub client_queue: usize,
    /// How often clients are pinged; one that has not answered by the next ping is closed.
    pub heartbeat_ms: u64,
    /// How often each node publishes its `system_status`.
    pub status_interval_ms: u64,
    /// How long a client that connected without credentials has to send its `auth` message.
    pub auth_timeout_ms: u64,
    /// How often a connection's credentials are checked again, so that a revoked session or
    /// API key, or an expired access token, ends it.
    pub reverify_ms: u64,
    /// How many of the latest events each node keeps for clients that resume after a
    /// reconnect; and how many megabytes of them at most (alert events carry whole alerts).
    pub resume_events: usize,
    pub resume_megabytes: usize,
    /// How long after a node's last client disconnected it still keeps events for it to
    /// resume (rendering them costs a store read per batch while nobody watches).
    pub resume_grace_seconds: u64,
    /// Sockets one user or API key may have open at once (on this node): a leaked key or a
    /// runaway script cannot take every file descriptor.
    pub max_per_principal: usize,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            client_queue: 4_096,
            heartbeat_ms: 30_000,
            status_interval_ms: 30_000,
            auth_timeout_ms: 10_000,
            reverify_ms: 5_000,
            // A minute of a busy console's events; a client away longer re-reads the list.
            resume_events: 50_000,
            resume_megabytes: 64,
            resume_grace_seconds: 300,
            max_per_principal: 32,
        }
    }
}

impl WebSocketConfig {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms.max(10))
    }

    pub fn status_interval(&self) -> Duration {
        Duration::from_millis(self.status_interval_ms.max(100))
    }

    pub fn auth_timeout(&self) -> Duration {
        Duration::from_millis(self.auth_timeout_ms.max(100))
    }

    pub fn reverify(&self) -> Duration {
        Duration::from_millis(self.reverify_ms.max(50))
    }
}

/// Query of `GET /ws`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WsQuery {
    /// A bearer value (access token or API key), for clients that cannot set headers.
    token: Option<Secret>,
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
    let bearer = match (bearer_header(&headers), query.token) {
        (Err(refusal), _) => return Ok(unauthorized_response(refusal)),
        (Ok(Some(_)), Some(_)) => {
            return Err(ApiError::bad_request(
                "ambiguous_credentials",
                "credentials given twice: send either the Authorization header or the token \
                 query parameter",
            ));
        }
        (Ok(header), query) => header.or(query),
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
            Err(Verification::Refused(why)) => return Ok(unauthorized_response(why)),
            Err(Verification::Unavailable(detail)) => return Err(ApiError::internal(detail)),
        },
    };
    let client = ClientContext {
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
        .on_upgrade(move |socket| serve(socket, client, authenticated)))
}

/// The bearer value of an `Authorization` header, if there is one; a header that is not
/// `Bearer <value>` is refused (with the reason).
fn bearer_header(headers: &HeaderMap) -> Result<Option<Secret>, String> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("more than one Authorization header".to_owned());
    }
    let malformed = || "the Authorization header must be `Bearer <token>`".to_owned();
    let value = value.to_str().map_err(|_| malformed())?;
    match value.trim().split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(Secret::new(token.trim())))
        }
        _ => Err(malformed()),
    }
}

/// 401 with the API's error shape and `WWW-Authenticate: Bearer`.
fn unauthorized_response(message: String) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        // As the API's guard challenges (`api/guard.rs`).
        HeaderValue::from_static("Bearer realm=\"opsconductor\""),
    );
    response
}

fn not_allowed(principal: &Principal) -> String {
    format!(
        "{} (role {}) may not read events",
        principal.actor, principal.role
    )
}

/// A connection's verified credentials. The bearer stays in memory, to be checked again.
struct Credentials {
    bearer: Secret,
    principal: Principal,
    /// The connection's place among its principal's open sockets.
    _slot: crate::slots::Slot<String>,
}

/// Open sockets per principal (by actor), so that each has at most `max_per_principal`.
pub type OpenSockets = crate::slots::Slots<String>;

fn too_many_sockets(actor: &str, max: usize) -> String {
    format!(
        "{actor} has {max} WebSockets open already (websocket.max_per_principal); close one first"
    )
}

/// Why credentials were not verified.
enum Verification {
    /// Refused, and why (safe to tell the client: never the token itself).
    Refused(String),
    /// Could not be checked (the database); the detail is for the log only.
    Unavailable(String),
}

async fn verify(auth: &Auth, bearer: &Secret) -> Result<Principal, Verification> {
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
fn same_principal(current: &Principal, next: &Principal) -> bool {
    match (current.user_id, current.api_key_id) {
        (Some(user), _) => next.user_id == Some(user),
        (None, Some(key)) => next.api_key_id == Some(key),
        (None, None) => false,
    }
}

fn principal_json(principal: &Principal) -> Value {
    json!({"actor": principal.actor, "role": principal.role})
}

/// What a connection needs besides its socket.
struct ClientContext {
    bus: EventBus,
    auth: Auth,
    auth_timeout: Duration,
    reverify: Duration,
    sockets: std::sync::Arc<OpenSockets>,
    max_per_principal: usize,
}

/// Which events one client wants, per event type.
#[derive(Debug, Default)]
struct Subscriptions {
    by_type: [Option<Filter>; EventType::ALL.len()],
    /// After a resumption: the bus items up to this cursor were replayed already.
    replayed_through: u64,
}

impl Subscriptions {
    fn wants(&self, event: &Event) -> bool {
        event.cursor > self.replayed_through
            && self.by_type[event.event_type.index()]
                .as_ref()
                .is_some_and(|filter| filter.matches(event))
    }

    fn describe(&self) -> Value {
        let map: serde_json::Map<String, Value> = EventType::ALL
            .iter()
            .zip(&self.by_type)
            .filter_map(|(t, f)| {
                f.as_ref().map(|f| {
                    (
                        t.as_str().to_owned(),
                        serde_json::to_value(f).expect("filters serialise"),
                    )
                })
            })
            .collect();
        Value::Object(map)
    }
}

/// What a subscription lets through; an empty field lets anything through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub severity: Vec<Severity>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub addon: Vec<String>,
    /// Device IP or name.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub device: Vec<String>,
    /// Also alerts that opened or occurred while a silence suppressed them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_suppressed: bool,
}

impl Filter {
    pub fn matches(&self, event: &Event) -> bool {
        let alert = event.alert();
        let suppressed = alert.is_some_and(|a| a.status == AlertStatus::Suppressed);
        (!suppressed || self.include_suppressed)
            && (self.severity.is_empty()
                || alert.is_some_and(|a| self.severity.contains(&a.severity)))
            && (self.addon.is_empty()
                || event
                    .addon_id()
                    .is_some_and(|id| self.addon.iter().any(|a| a == id)))
            && (self.device.is_empty()
                || alert.is_some_and(|a| {
                    self.device.iter().any(|d| {
                        a.device_ip.as_deref() == Some(d) || a.device_name.as_deref() == Some(d)
                    })
                }))
    }

    /// Why this filter cannot be used for `event_type`, if it cannot.
    fn check(&self, event_type: EventType) -> Result<(), String> {
        let alert_event = matches!(
            event_type,
            EventType::AlertCreated | EventType::AlertUpdated | EventType::AlertResolved
        );
        let addon_event = alert_event || event_type == EventType::AddonStatus;
        let fields: [(&str, usize, bool); 3] = [
            ("severity", self.severity.len(), alert_event),
            ("addon", self.addon.len(), addon_event),
            ("device", self.device.len(), alert_event),
        ];
        if self.include_suppressed && !alert_event {
            return Err(format!(
                "filter.include_suppressed does not apply to `{event_type}` events"
            ));
        }
        for (field, count, applies) in fields {
            if count > 0 && !applies {
                return Err(format!(
                    "filter.{field} does not apply to `{event_type}` events"
                ));
            }
            if count > MAX_FILTER_VALUES {
                return Err(format!(
                    "filter.{field} has {count} values; at most {MAX_FILTER_VALUES} are allowed"
                ));
            }
        }
        for (field, values) in [("addon", &self.addon), ("device", &self.device)] {
            if let Some(long) = values.iter().find(|v| v.len() > MAX_FILTER_VALUE_BYTES) {
                return Err(format!(
                    "filter.{field} value `{}…` is longer than {MAX_FILTER_VALUE_BYTES} bytes",
                    long.chars().take(32).collect::<String>()
                ));
            }
        }
        Ok(())
    }
}

/// A filter field: one value or a list of them.
fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Visitor<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> de::Visitor<'de> for Visitor<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or a list of strings")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<T>, E> {
            T::deserialize(v.into_deserializer()).map(|one| vec![one])
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut all = Vec::new();
            while let Some(one) = seq.next_element()? {
                all.push(one);
            }
            Ok(all)
        }
    }

    deserializer.deserialize_any(Visitor(std::marker::PhantomData))
}

/// `{"type": "subscribe", ...}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscribe {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    #[serde(default, rename = "id")]
    _id: Option<IgnoredAny>,
    events: Vec<EventType>,
    #[serde(default)]
    filter: Filter,
    #[serde(default)]
    resume: Option<Resume>,
}

/// Where a reconnecting client left off: the stream it followed and the last cursor it saw.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Resume {
    stream: String,
    after: u64,
}

/// `{"type": "unsubscribe", ...}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Unsubscribe {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    #[serde(default, rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(default)]
    events: Option<Vec<EventType>>,
}

/// `{"type": "ping"}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ping {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    #[serde(default, rename = "id")]
    _id: Option<IgnoredAny>,
}

/// `{"type": "auth", "token": ...}`: the token is never echoed nor logged.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthMessage {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    #[serde(default, rename = "id")]
    _id: Option<IgnoredAny>,
    token: Secret,
}

enum ClientMessage {
    /// `auth`, handled by the connection itself.
    Auth(Secret),
    /// Everything else, for [`Subscriptions::handle`] once the client is authenticated.
    Request(Request),
}

enum Request {
    Subscribe(Subscribe),
    Unsubscribe(Unsubscribe),
    Ping,
}

const CLIENT_TYPES: &str = "subscribe, unsubscribe, ping, auth";

/// A refusal of a client message, sent as `{"type": "error", ...}`.
struct Refusal {
    code: &'static str,
    message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

fn parse(value: Value) -> Result<ClientMessage, Refusal> {
    fn typed<T: for<'de> Deserialize<'de>>(value: Value) -> Result<T, Refusal> {
        // serde's messages name fields and types, never string values, so a token in a
        // malformed `auth` message is not echoed.
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                refuse("bad_message", inner.to_string())
            } else {
                refuse("bad_message", format!("{path}: {inner}"))
            }
        })
    }
    let Some(kind) = value.get("type") else {
        return Err(refuse(
            "bad_message",
            format!("missing `type` (one of: {CLIENT_TYPES})"),
        ));
    };
    match kind.as_str() {
        Some("subscribe") => typed(value).map(|s| ClientMessage::Request(Request::Subscribe(s))),
        Some("unsubscribe") => {
            typed(value).map(|u| ClientMessage::Request(Request::Unsubscribe(u)))
        }
        Some("ping") => typed::<Ping>(value).map(|_| ClientMessage::Request(Request::Ping)),
        Some("auth") => typed::<AuthMessage>(value).map(|m| ClientMessage::Auth(m.token)),
        _ => Err(refuse(
            "bad_message",
            format!("unknown message type {kind} (expected one of: {CLIENT_TYPES})"),
        )),
    }
}

/// A client's text message, parsed, with its `id`; or the error answer to send back.
fn read(message: &str) -> Result<(ClientMessage, Option<Value>), Message> {
    let value: Value = serde_json::from_str(message).map_err(|e| {
        error_message(
            refuse("bad_message", format!("not a JSON message: {e}")),
            &None,
        )
    })?;
    let id = value.get("id").cloned();
    match parse(value) {
        Ok(message) => Ok((message, id)),
        Err(refusal) => Err(error_message(refusal, &id)),
    }
}

fn text(value: Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

/// `value` with the client's request `id`, when it gave one.
fn answer(mut value: Value, id: &Option<Value>) -> Message {
    if let (Some(id), Value::Object(map)) = (id, &mut value) {
        map.insert("id".into(), id.clone());
    }
    text(value)
}

fn error_message(refusal: Refusal, id: &Option<Value>) -> Message {
    answer(
        json!({"type": "error", "code": refusal.code, "message": refusal.message}),
        id,
    )
}

impl Subscriptions {
    /// Handles one request of an authenticated client; returns what to send back.
    fn handle(&mut self, request: Request, id: &Option<Value>, bus: &EventBus) -> Vec<Message> {
        match request {
            Request::Subscribe(s) => {
                if s.events.is_empty() {
                    let all = EventType::ALL.map(EventType::as_str).join(", ");
                    return vec![error_message(
                        refuse(
                            "bad_subscription",
                            format!("events must name at least one event type (of: {all})"),
                        ),
                        id,
                    )];
                }
                if let Some(problem) = s.events.iter().find_map(|t| s.filter.check(*t).err()) {
                    return vec![error_message(refuse("bad_subscription", problem), id)];
                }
                let newly_status = self.by_type[EventType::SystemStatus.index()].is_none()
                    && s.events.contains(&EventType::SystemStatus);
                for t in &s.events {
                    self.by_type[t.index()] = Some(s.filter.clone());
                }
                let replay = s
                    .resume
                    .as_ref()
                    .filter(|r| r.stream == bus.stream())
                    .and_then(|r| bus.replay(r.after));
                let mut subscribed = json!({
                    "type": "subscribed",
                    "subscriptions": self.describe(),
                });
                if s.resume.is_some() {
                    subscribed["resumed"] = replay.is_some().into();
                    subscribed["cursor"] = replay
                        .as_ref()
                        .map_or_else(|| bus.cursor(), |r| r.through)
                        .into();
                }
                let mut out = vec![answer(subscribed, id)];
                if let Some(replay) = replay {
                    out.extend(
                        replay
                            .events
                            .iter()
                            .filter(|event| self.wants(event))
                            .map(|event| Message::Text(event.text())),
                    );
                    self.replayed_through = self.replayed_through.max(replay.through);
                }
                // A status dashboard has something to show at once instead of after the next
                // period.
                if newly_status && let Some(status) = bus.last_status() {
                    out.push(Message::Text(status.text()));
                }
                out
            }
            Request::Unsubscribe(u) => {
                match u.events.filter(|e| !e.is_empty()) {
                    Some(events) => {
                        for t in events {
                            self.by_type[t.index()] = None;
                        }
                    }
                    None => self.by_type = Default::default(),
                }
                vec![answer(
                    json!({"type": "unsubscribed", "subscriptions": self.describe()}),
                    id,
                )]
            }
            Request::Ping => vec![answer(json!({"type": "pong"}), id)],
        }
    }
}

/// Why a connection ends.
#[derive(Debug, PartialEq)]
enum End {
    Shutdown,
    /// The connection broke, or the client went away without a close frame.
    Gone,
    ClientClosed,
    NoPong,
    /// The client fell behind (`missed` events), or events were lost before reaching it
    /// (`missed` unknown).
    Lagged {
        missed: Option<u64>,
    },
    /// Closed over authentication: the client is told why (`error` with `code` and
    /// `message`, echoing `id`), then closed with `close`.
    Refused {
        code: &'static str,
        message: String,
        id: Option<Value>,
        close: u16,
        reason: &'static str,
    },
}

impl End {
    fn unauthorized(message: String, id: &Option<Value>) -> End {
        End::Refused {
            code: "unauthorized",
            message,
            id: id.clone(),
            close: CLOSE_UNAUTHORIZED,
            reason: "unauthorized",
        }
    }

    fn forbidden(principal: &Principal, id: &Option<Value>) -> End {
        End::Refused {
            code: "forbidden",
            message: not_allowed(principal),
            id: id.clone(),
            close: CLOSE_FORBIDDEN,
            reason: "forbidden",
        }
    }

    fn unavailable(id: &Option<Value>) -> End {
        End::Refused {
            code: "internal",
            message: "credentials cannot be checked now; reconnect later".to_owned(),
            id: id.clone(),
            close: axum::extract::ws::close_code::ERROR,
            reason: "cannot check credentials",
        }
    }
}

/// The heartbeat: a ping every period; a client that has not answered one by the next is done.
#[derive(Default)]
struct Heartbeat {
    unanswered: bool,
    /// A ping is to be sent as soon as the socket is free.
    due: bool,
}

impl Heartbeat {
    fn tick(&mut self) -> Result<(), End> {
        if self.unanswered {
            return Err(End::NoPong);
        }
        self.unanswered = true;
        self.due = true;
        Ok(())
    }
}

/// What a connection watches while its socket is busy.
struct Watch<'a> {
    rx: &'a broadcast::Receiver<BusItem>,
    publications: &'a mut watch::Receiver<u64>,
    ticker: &'a mut Interval,
    heartbeat: &'a mut Heartbeat,
    shutdown: &'a mut watch::Receiver<bool>,
    capacity: usize,
}

impl Watch<'_> {
    /// Waits for `sending` to finish, but gives up when the client falls too far behind, stops
    /// answering pings, or the server stops: a client that does not read must not hold its
    /// connection (and its place in the bus) forever.
    async fn send(
        &mut self,
        sending: impl Future<Output = Result<(), axum::Error>>,
    ) -> Result<(), End> {
        tokio::pin!(sending);
        loop {
            tokio::select! {
                biased;
                sent = &mut sending => return sent.map_err(|_| End::Gone),
                _ = stopped(self.shutdown) => return Err(End::Shutdown),
                changed = self.publications.changed() => {
                    if changed.is_err() {
                        return Err(End::Shutdown);
                    }
                    let behind = self.rx.len();
                    if behind > self.capacity {
                        return Err(End::Lagged { missed: Some((behind - self.capacity) as u64) });
                    }
                }
                _ = self.ticker.tick() => self.heartbeat.tick()?,
            }
        }
    }
}

impl ClientContext {
    /// Handles an `auth` message: authenticates the connection, or re-authenticates it as the
    /// same principal with a new token. Returns the answer, or how the connection ends.
    async fn authenticate(
        &self,
        credentials: &mut Option<Credentials>,
        bearer: Secret,
        id: &Option<Value>,
    ) -> Result<Message, End> {
        let principal = match verify(&self.auth, &bearer).await {
            Ok(principal) => principal,
            Err(Verification::Refused(why)) => return Err(End::unauthorized(why, id)),
            Err(Verification::Unavailable(detail)) => {
                warn!(error = %detail, "cannot verify a websocket client's credentials");
                return Err(End::unavailable(id));
            }
        };
        if let Some(current) = credentials.as_ref()
            && !same_principal(&current.principal, &principal)
        {
            return Err(End::Refused {
                code: "principal_changed",
                message: format!(
                    "this connection is {}'s and the token is {}'s; open a new connection to \
                     change who is signed in",
                    current.principal.actor, principal.actor
                ),
                id: id.clone(),
                close: CLOSE_UNAUTHORIZED,
                reason: "principal changed",
            });
        }
        if !principal.can(Permission::Read) {
            return Err(End::forbidden(&principal, id));
        }
        debug!(actor = %principal.actor, "websocket client authenticated");
        let answer = answer(
            json!({"type": "authenticated", "principal": principal_json(&principal)}),
            id,
        );
        // Re-authentication keeps the connection's place; a first one takes one.
        let slot = match credentials.take() {
            Some(current) => current._slot,
            None => self
                .sockets
                .take(principal.actor.clone(), self.max_per_principal)
                .ok_or_else(|| End::Refused {
                    code: "too_many_sockets",
                    message: too_many_sockets(&principal.actor, self.max_per_principal),
                    id: id.clone(),
                    close: CLOSE_TOO_MANY,
                    reason: "too many sockets",
                })?,
        };
        *credentials = Some(Credentials {
            bearer,
            principal,
            _slot: slot,
        });
        Ok(answer)
    }

    /// Checks a connection's credentials again. A refusal ends the connection; so do
    /// [`MAX_REVERIFY_FAILURES`] checks in a row that could not be made.
    async fn reverify(&self, credentials: &mut Credentials, failures: &mut u32) -> Result<(), End> {
        match verify(&self.auth, &credentials.bearer).await {
            Ok(principal) => {
                *failures = 0;
                if !principal.can(Permission::Read) {
                    return Err(End::forbidden(&principal, &None));
                }
                // The same bearer, so the same principal; its role may have changed.
                credentials.principal = principal;
                Ok(())
            }
            Err(Verification::Refused(why)) => {
                debug!(actor = %credentials.principal.actor, reason = %why, "websocket client's credentials refused");
                Err(End::unauthorized(why, &None))
            }
            Err(Verification::Unavailable(detail)) => {
                *failures += 1;
                warn!(
                    actor = %credentials.principal.actor,
                    failures = *failures,
                    error = %detail,
                    "cannot re-verify a websocket client's credentials"
                );
                if *failures >= MAX_REVERIFY_FAILURES {
                    Err(End::unavailable(&None))
                } else {
                    Ok(())
                }
            }
        }
    }
}

async fn serve(socket: WebSocket, client: ClientContext, mut credentials: Option<Credentials>) {
    let bus = &client.bus;
    let counted = bus.client_connected();
    let (mut sink, mut stream) = socket.split();
    // Subscribed to the bus from the start: nothing published after `subscribed` is answered
    // can be missed.
    let mut rx = bus.subscribe();
    let mut publications = bus.publications();
    let mut shutdown = bus.shutdown();
    let heartbeat_every = bus.heartbeat();
    let mut ticker = tokio::time::interval_at(Instant::now() + heartbeat_every, heartbeat_every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heartbeat = Heartbeat::default();
    let mut subscriptions = Subscriptions::default();
    let mut reverify = tokio::time::interval_at(Instant::now() + client.reverify, client.reverify);
    reverify.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut reverify_failures = 0;
    // Only watched until the client is authenticated.
    let auth_deadline = tokio::time::sleep(client.auth_timeout);
    tokio::pin!(auth_deadline);

    let mut hello = json!({
        "type": "hello",
        "protocol": PROTOCOL_VERSION,
        "node": bus.node(),
        "stream": bus.stream(),
        "cursor": bus.cursor(),
        "event_types": EventType::ALL.map(EventType::as_str),
        "heartbeat_ms": heartbeat_every.as_millis() as u64,
        "client_queue": bus.client_queue(),
        "reverify_ms": client.reverify.as_millis() as u64,
    });
    match &credentials {
        Some(credentials) => {
            hello["auth"] = "authenticated".into();
            hello["principal"] = principal_json(&credentials.principal);
        }
        None => {
            hello["auth"] = "required".into();
            hello["auth_timeout_ms"] = (client.auth_timeout.as_millis() as u64).into();
        }
    }
    let mut outbox: VecDeque<Message> = VecDeque::new();
    outbox.push_back(text(hello));

    let end = 'connection: loop {
        if heartbeat.due {
            heartbeat.due = false;
            outbox.push_back(Message::Ping(Default::default()));
        }
        while let Some(message) = outbox.pop_front() {
            let mut watch = Watch {
                rx: &rx,
                publications: &mut publications,
                ticker: &mut ticker,
                heartbeat: &mut heartbeat,
                shutdown: &mut shutdown,
                capacity: bus.client_queue(),
            };
            if let Err(end) = watch.send(sink.send(message)).await {
                break 'connection end;
            }
        }
        if heartbeat.due {
            continue;
        }
        tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break End::Shutdown,
            _ = ticker.tick() => {
                if let Err(end) = heartbeat.tick() {
                    break end;
                }
            }
            _ = &mut auth_deadline, if credentials.is_none() => break End::Refused {
                code: "auth_timeout",
                message: format!(
                    "no `auth` message within {} ms of connecting",
                    client.auth_timeout.as_millis()
                ),
                id: None,
                close: CLOSE_UNAUTHORIZED,
                reason: "authentication timed out",
            },
            _ = reverify.tick(), if credentials.is_some() => {
                if let Some(credentials) = credentials.as_mut()
                    && let Err(end) = client.reverify(credentials, &mut reverify_failures).await
                {
                    break end;
                }
            }
            frame = stream.next() => match frame {
                None | Some(Err(_)) => break End::Gone,
                Some(Ok(Message::Close(_))) => break End::ClientClosed,
                Some(Ok(Message::Pong(_))) => heartbeat.unanswered = false,
                // The socket answers pings itself.
                Some(Ok(Message::Ping(_))) => {}
                Some(Ok(Message::Text(t))) => match read(&t) {
                    Err(refusal) => outbox.push_back(refusal),
                    Ok((ClientMessage::Auth(bearer), id)) => {
                        match client.authenticate(&mut credentials, bearer, &id).await {
                            Ok(answer) => {
                                outbox.push_back(answer);
                                // Just verified: the next check is a period from now.
                                reverify.reset();
                                reverify_failures = 0;
                            }
                            Err(end) => break end,
                        }
                    }
                    Ok((ClientMessage::Request(_), id)) if credentials.is_none() => {
                        outbox.push_back(error_message(
                            refuse(
                                "auth_required",
                                "authenticate first: send {\"type\": \"auth\", \"token\": ...}",
                            ),
                            &id,
                        ));
                    }
                    Ok((ClientMessage::Request(request), id)) => {
                        outbox.extend(subscriptions.handle(request, &id, bus));
                    }
                },
                Some(Ok(Message::Binary(_))) => outbox.push_back(error_message(
                    refuse("bad_message", "binary messages are not understood; send JSON text"),
                    &None,
                )),
            },
            item = rx.recv() => match item {
                Ok(BusItem::Event(event)) => {
                    if subscriptions.wants(&event) {
                        outbox.push_back(Message::Text(event.text()));
                    }
                }
                Ok(BusItem::Gap { cursor }) => {
                    // A gap already behind a resumption's replay was checked by it.
                    if cursor > subscriptions.replayed_through {
                        break End::Lagged { missed: None };
                    }
                }
                Err(RecvError::Lagged(missed)) => break End::Lagged { missed: Some(missed) },
                Err(RecvError::Closed) => break End::Shutdown,
            },
        }
    };

    let goodbye: Vec<Message> = match &end {
        End::Lagged { missed } => {
            if missed.is_some() {
                bus.client_lagged();
            }
            vec![
                text(json!({"type": "lagged", "missed": missed})),
                close(CLOSE_LAGGED, "lagged: missed events"),
            ]
        }
        End::NoPong => {
            bus.client_timed_out();
            vec![close(CLOSE_NO_PONG, "no pong")]
        }
        End::Shutdown => vec![close(
            axum::extract::ws::close_code::AWAY,
            "server stopping",
        )],
        End::Refused {
            code,
            message,
            id,
            close: code_,
            reason,
        } => vec![
            error_message(refuse(code, message.clone()), id),
            close(*code_, reason),
        ],
        End::ClientClosed | End::Gone => Vec::new(),
    };
    let actor = credentials.as_ref().map(|c| c.principal.actor.as_str());
    debug!(?end, actor, "websocket client done");
    let farewell = async {
        for message in goodbye {
            sink.send(message).await?;
        }
        // Also flushes the answer to a client's close frame.
        sink.close().await
    };
    let _ = tokio::time::timeout(FAREWELL_TIMEOUT, farewell).await;
    // Uncounted before the socket closes (when `sink` and `stream` drop), so that whoever sees
    // the connection end also sees it gone from the statistics.
    drop(counted);
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::DateTime;

    use super::*;
    use crate::alert::StoredAlert;
    use crate::events::{AddonState, AddonStatus, EventBody};

    fn alert_event(event_type: EventType, severity: Severity, addon: &str, ip: &str) -> Event {
        Event::new(
            event_type,
            Arc::from("n"),
            1,
            1,
            EventBody::Alert(Box::new(StoredAlert {
                id: 1,
                addon_id: addon.into(),
                fingerprint: "fp".into(),
                alert_type: "t".into(),
                device_ip: Some(ip.into()),
                device_name: Some("core-sw-1".into()),
                severity,
                category: "c".into(),
                title: "t".into(),
                message: String::new(),
                status: AlertStatus::Active,
                fields: Default::default(),
                occurrence_count: 1,
                occurred_at: DateTime::UNIX_EPOCH,
                first_seen_at: DateTime::UNIX_EPOCH,
                last_seen_at: DateTime::UNIX_EPOCH,
                acknowledged_at: None,
                acknowledged_by: None,
                resolved_at: None,
                resolved_by: None,
            })),
        )
    }

    fn filter(json: Value) -> Filter {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn filters_match_any_value_of_each_field_and_all_fields() {
        use EventType::AlertCreated as C;
        use Severity::*;
        let cases = [
            (json!({}), alert_event(C, Info, "a", "10.0.0.1"), true),
            (
                json!({"severity": "critical"}),
                alert_event(C, Critical, "a", "10.0.0.1"),
                true,
            ),
            (
                json!({"severity": "critical"}),
                alert_event(C, Major, "a", "10.0.0.1"),
                false,
            ),
            (
                json!({"severity": ["critical", "major"]}),
                alert_event(C, Major, "a", "10.0.0.1"),
                true,
            ),
            (
                json!({"severity": "critical", "addon": "a"}),
                alert_event(C, Critical, "a", "10.0.0.1"),
                true,
            ),
            (
                json!({"severity": "critical", "addon": "b"}),
                alert_event(C, Critical, "a", "10.0.0.1"),
                false,
            ),
            (
                json!({"device": "10.0.0.1"}),
                alert_event(C, Critical, "a", "10.0.0.1"),
                true,
            ),
            (
                json!({"device": "core-sw-1"}),
                alert_event(C, Critical, "a", "10.0.0.2"),
                true,
            ),
            (
                json!({"device": ["x", "y"]}),
                alert_event(C, Critical, "a", "10.0.0.2"),
                false,
            ),
        ];
        for (f, event, expected) in cases {
            assert_eq!(
                filter(f.clone()).matches(&event),
                expected,
                "{f} on {}",
                event.text()
            );
        }
        let addon = Event::new(
            EventType::AddonStatus,
            Arc::from("n"),
            2,
            2,
            EventBody::Addon(AddonStatus {
                id: "grafana".into(),
                status: AddonState::Loaded,
                version: None,
            }),
        );
        assert!(filter(json!({"addon": "grafana"})).matches(&addon));
        assert!(!filter(json!({"addon": "prtg"})).matches(&addon));
    }

    fn json_of(message: &Message) -> Value {
        match message {
            Message::Text(t) => serde_json::from_str(t).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    /// What an authenticated client is answered.
    fn handle(subs: &mut Subscriptions, bus: &EventBus, message: Value) -> Value {
        let out = match read(&message.to_string()) {
            Ok((ClientMessage::Request(request), id)) => subs.handle(request, &id, bus),
            Ok((ClientMessage::Auth(_), _)) => panic!("auth is the connection's: {message}"),
            Err(refusal) => vec![refusal],
        };
        assert_eq!(out.len(), 1, "{out:?}");
        json_of(&out[0])
    }

    async fn bus() -> (tempfile::TempDir, EventBus, watch::Sender<bool>) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::connect(
            &crate::testing::sqlite_url(dir.path()).await,
            crate::testing::secret_keys(),
        )
        .await
        .unwrap();
        let (stop, shutdown) = watch::channel(false);
        let (bus, _tasks) = EventBus::start(
            store,
            crate::events::BusConfig {
                node: "n".into(),
                client_queue: 16,
                publisher_queue: 16,
                heartbeat: Duration::from_secs(30),
                resume_events: 100,
                resume_bytes: 1 << 20,
                resume_grace: Duration::from_secs(1),
            },
            shutdown,
        )
        .await
        .unwrap();
        (dir, bus, stop)
    }

    #[tokio::test]
    async fn subscribe_unsubscribe_and_refusals_name_what_is_wrong() {
        let (_dir, bus, _stop) = bus().await;
        let mut subs = Subscriptions::default();
        let answer = handle(
            &mut subs,
            &bus,
            json!({"type": "subscribe", "id": 7, "events": ["alert_created", "alert_resolved"],
                   "filter": {"severity": "critical", "addon": ["alertmanager"]}}),
        );
        assert_eq!(
            answer,
            json!({"type": "subscribed", "id": 7, "subscriptions": {
                "alert_created": {"severity": ["critical"], "addon": ["alertmanager"]},
                "alert_resolved": {"severity": ["critical"], "addon": ["alertmanager"]}}})
        );
        let created = alert_event(
            EventType::AlertCreated,
            Severity::Critical,
            "alertmanager",
            "x",
        );
        let updated = alert_event(
            EventType::AlertUpdated,
            Severity::Critical,
            "alertmanager",
            "x",
        );
        assert!(subs.wants(&created));
        assert!(!subs.wants(&updated));

        let answer = handle(
            &mut subs,
            &bus,
            json!({"type": "unsubscribe", "events": ["alert_created"]}),
        );
        assert_eq!(
            answer["subscriptions"],
            json!({"alert_resolved": {"severity": ["critical"], "addon": ["alertmanager"]}})
        );
        assert!(!subs.wants(&created));
        let answer = handle(&mut subs, &bus, json!({"type": "unsubscribe"}));
        assert_eq!(answer["subscriptions"], json!({}));

        let refusals = [
            (
                json!({"type": "subscribe", "events": ["alert_deleted"]}),
                "bad_message",
                "events[0]",
            ),
            (
                json!({"type": "subscribe", "events": ["alert_created"], "filter": {"severity": "criticl"}}),
                "bad_message",
                "filter.severity",
            ),
            (
                json!({"type": "subscribe", "events": ["alert_created"], "filter": {"severity": ["major", "hot"]}}),
                "bad_message",
                "filter.severity[1]",
            ),
            (
                json!({"type": "subscribe", "events": ["alert_created"], "filter": {"color": "red"}}),
                "bad_message",
                "color",
            ),
            (
                json!({"type": "subscribe", "events": []}),
                "bad_subscription",
                "at least one",
            ),
            (
                json!({"type": "subscribe", "events": ["system_status"], "filter": {"addon": "a"}}),
                "bad_subscription",
                "filter.addon does not apply to `system_status`",
            ),
            (
                json!({"type": "subscribe", "events": ["addon_status"], "filter": {"severity": "major"}}),
                "bad_subscription",
                "filter.severity does not apply to `addon_status`",
            ),
            (
                json!({"type": "subscribe", "events": ["alert_created"], "extra": 1}),
                "bad_message",
                "extra",
            ),
            (json!({"type": "subscrib"}), "bad_message", "subscrib"),
            (json!({"events": []}), "bad_message", "missing `type`"),
        ];
        for (message, code, needle) in refusals {
            let answer = handle(&mut subs, &bus, message.clone());
            assert_eq!(answer["type"], "error", "{message}: {answer}");
            assert_eq!(answer["code"], code, "{message}: {answer}");
            let text = answer["message"].as_str().unwrap();
            assert!(text.contains(needle), "{message}: {text}");
        }
        assert_eq!(
            subs.describe(),
            json!({}),
            "a refused subscription changes nothing"
        );

        assert_eq!(
            handle(&mut subs, &bus, json!({"type": "ping"})),
            json!({"type": "pong"})
        );
        let answer = read("{not json").err().map(|m| json_of(&m)).unwrap();
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("not a JSON message")
        );
    }

    #[test]
    fn auth_messages_carry_their_token_and_refusals_never_echo_it() {
        match read(r#"{"type": "auth", "token": "oc_secret-token", "id": "a1"}"#) {
            Ok((ClientMessage::Auth(token), id)) => {
                assert_eq!(token.expose(), "oc_secret-token");
                assert_eq!(id, Some(json!("a1")));
            }
            _ => panic!("not an auth message"),
        }
        for bad in [
            json!({"type": "auth"}),
            json!({"type": "auth", "token": 5}),
            json!({"type": "auth", "token": "oc_secret-token", "tokn": "oc_secret-token"}),
            json!({"type": "auth", "token": ["oc_secret-token"]}),
        ] {
            let answer = json_of(&read(&bad.to_string()).err().unwrap());
            assert_eq!(answer["code"], "bad_message", "{bad}: {answer}");
            assert!(!answer.to_string().contains("secret"), "{bad}: {answer}");
        }
        let answer = json_of(
            &read(r#"{"type": "auth", "token": "oc_secret-token""#)
                .err()
                .unwrap(),
        );
        assert!(!answer.to_string().contains("secret"), "{answer}");
    }

    #[test]
    fn bearer_headers_are_parsed_and_malformed_ones_refused() {
        let headers = |values: &[&str]| {
            let mut map = HeaderMap::new();
            for v in values {
                map.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            }
            map
        };
        let bearer = |values: &[&str]| {
            bearer_header(&headers(values)).map(|b| b.map(|s| s.expose().to_owned()))
        };
        assert_eq!(bearer(&[]), Ok(None));
        assert_eq!(bearer(&["Bearer oc_abc"]), Ok(Some("oc_abc".to_owned())));
        assert_eq!(
            bearer(&["bearer  eyJ.x.y "]),
            Ok(Some("eyJ.x.y".to_owned()))
        );
        for bad in [
            &["Basic dXNlcjpwYXNz"][..],
            &["Bearer"],
            &["Bearer "],
            &["Bearer a", "Bearer b"],
        ] {
            let refusal = bearer(bad).unwrap_err();
            assert!(!refusal.contains("dXNlcjpwYXNz"), "{refusal}");
        }
    }

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

    #[test]
    fn config_defaults_and_floors() {
        let config = WebSocketConfig::default();
        assert_eq!(config.auth_timeout(), Duration::from_secs(10));
        assert_eq!(config.reverify(), Duration::from_secs(5));
        let config: WebSocketConfig =
            toml::from_str("auth_timeout_ms = 0\nreverify_ms = 1").unwrap();
        assert_eq!(config.auth_timeout(), Duration::from_millis(100));
        assert_eq!(config.reverify(), Duration::from_millis(50));
        assert_eq!(config.client_queue, 4_096);
    }
}
