//! The real-time WebSocket at `GET /ws`: dashboards follow alert, addon and node events live
//! from the [event bus](crate::bus).
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
//!   [`crate::bus`]). The bus never waits for a client.
//! - The server pings every `heartbeat_ms`; a client that has not answered the previous ping
//!   by then is closed with code 4002. On shutdown clients are closed with 1001.
//!
//! `handshake.rs` checks the upgrade, `protocol.rs` reads and writes messages,
//! `subscriptions.rs` keeps what one client wants, `connection.rs` runs the socket.

mod connection;
mod handshake;
mod protocol;
mod subscriptions;

use std::time::Duration;

use serde::Deserialize;

pub use handshake::{OpenSockets, WsQuery, handler};
pub use protocol::Filter;

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
    /// reconnect; and how many megabytes of memory they may take at most (alert events carry
    /// whole alerts, held both as JSON and parsed).
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

#[cfg(test)]
mod tests {
    use super::*;

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
