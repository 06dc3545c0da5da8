//! The real-time WebSocket at `GET /ws`: dashboards follow alert, addon and node events live
//! from the [event bus](crate::events).
//!
//! Protocol (JSON text frames; every message has a `type`):
//!
//! - On connect the server says `{"type": "hello", "protocol": 1, "node", "event_types",
//!   "heartbeat_ms", "client_queue", "auth": "disabled"}`. Nothing is delivered until the client
//!   subscribes.
//! - `{"type": "subscribe", "events": ["alert_created", ...], "filter": {"severity": [...],
//!   "addon": [...], "device": [...]}}` sets (replaces) the filter of each named event type;
//!   each filter field is one value or a list (any of them matches), absent means any, and fields
//!   combine with "and". `severity` and `device` (IP or name, as in `GET /api/v1/alerts`) apply
//!   to alert events, `addon` to alert and addon events; a filter that cannot apply is refused.
//!   Answered with `{"type": "subscribed", "subscriptions": {type: filter, ...}}`, the whole
//!   current state, after which every matching event is delivered. Subscribing to
//!   `system_status` also delivers this node's latest status at once.
//! - `{"type": "unsubscribe", "events": [...]}` (no `events`: all) stops them; answered with
//!   `{"type": "unsubscribed", "subscriptions": {...}}`.
//! - `{"type": "ping"}` is answered with `{"type": "pong"}`, for clients that cannot send
//!   WebSocket pings.
//! - `{"type": "auth", "token": "..."}` (and a `token` query parameter) are reserved for
//!   authentication, which is not enabled yet: answered with an error, `auth_not_enabled`.
//! - A client message may carry an `id`, echoed in its answer. A message that is not understood
//!   is answered with `{"type": "error", "code", "message"}` naming what is wrong; the
//!   connection stays open.
//! - Events: `{"type": "alert_created" | "alert_updated" | "alert_resolved" | "system_status" |
//!   "addon_status", "node", "seq", "alert" | "status" | "addon": {...}}`.
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

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::de::{self, IgnoredAny, IntoDeserializer};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tracing::debug;

use crate::alert::Severity;
use crate::api::{ApiError, AppState};
use crate::events::{BusItem, Event, EventBus, EventType, stopped};

/// The version of the protocol above, in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Close code: the client fell behind and was dropped.
pub const CLOSE_LAGGED: u16 = 4001;
/// Close code: the client did not answer a heartbeat ping.
pub const CLOSE_NO_PONG: u16 = 4002;

/// Largest message a client may send; subscriptions are small.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Values per filter field, and bytes per value: enough for any dashboard, bounded for the
/// matching done for every event.
const MAX_FILTER_VALUES: usize = 100;
const MAX_FILTER_VALUE_BYTES: usize = 256;
/// How long the goodbye (a `lagged` message, a close frame) may take; a client that is not
/// reading never takes it, and is then simply disconnected.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(2);

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
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            client_queue: 4_096,
            heartbeat_ms: 30_000,
            status_interval_ms: 30_000,
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
}

/// Query of `GET /ws`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsQuery {
    /// Reserved for authentication; its value is never kept.
    token: Option<IgnoredAny>,
}

/// `GET /ws`: upgrades to the event WebSocket.
pub async fn handler(
    State(state): State<AppState>,
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
    let bus = state.events.clone();
    let token_given = query.token.is_some();
    Ok(upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| serve(socket, bus, token_given)))
}

/// Which events one client wants, per event type.
#[derive(Debug, Default)]
struct Subscriptions {
    by_type: [Option<Filter>; EventType::ALL.len()],
}

impl Subscriptions {
    fn wants(&self, event: &Event) -> bool {
        self.by_type[event.event_type.index()]
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
}

impl Filter {
    pub fn matches(&self, event: &Event) -> bool {
        let alert = event.alert();
        (self.severity.is_empty() || alert.is_some_and(|a| self.severity.contains(&a.severity)))
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

/// `{"type": "auth", "token": ...}`: the token is never kept (nor logged).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Auth {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    #[serde(default, rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(rename = "token")]
    _token: IgnoredAny,
}

enum ClientMessage {
    Subscribe(Subscribe),
    Unsubscribe(Unsubscribe),
    Ping,
    Auth,
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
        Some("subscribe") => typed(value).map(ClientMessage::Subscribe),
        Some("unsubscribe") => typed(value).map(ClientMessage::Unsubscribe),
        Some("ping") => typed::<Ping>(value).map(|_| ClientMessage::Ping),
        Some("auth") => typed::<Auth>(value).map(|_| ClientMessage::Auth),
        _ => Err(refuse(
            "bad_message",
            format!("unknown message type {kind} (expected one of: {CLIENT_TYPES})"),
        )),
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

fn auth_not_enabled(id: &Option<Value>) -> Message {
    error_message(
        refuse("auth_not_enabled", "authentication is not enabled yet"),
        id,
    )
}

impl Subscriptions {
    /// Handles one text message from the client; returns what to send back.
    fn handle(&mut self, message: &str, bus: &EventBus) -> Vec<Message> {
        let value: Value = match serde_json::from_str(message) {
            Ok(v) => v,
            Err(e) => {
                return vec![error_message(
                    refuse("bad_message", format!("not a JSON message: {e}")),
                    &None,
                )];
            }
        };
        let id = value.get("id").cloned();
        let message = match parse(value) {
            Ok(m) => m,
            Err(refusal) => return vec![error_message(refusal, &id)],
        };
        match message {
            ClientMessage::Subscribe(s) => {
                if s.events.is_empty() {
                    let all = EventType::ALL.map(EventType::as_str).join(", ");
                    return vec![error_message(
                        refuse(
                            "bad_subscription",
                            format!("events must name at least one event type (of: {all})"),
                        ),
                        &id,
                    )];
                }
                if let Some(problem) = s.events.iter().find_map(|t| s.filter.check(*t).err()) {
                    return vec![error_message(refuse("bad_subscription", problem), &id)];
                }
                let newly_status = self.by_type[EventType::SystemStatus.index()].is_none()
                    && s.events.contains(&EventType::SystemStatus);
                for t in &s.events {
                    self.by_type[t.index()] = Some(s.filter.clone());
                }
                let mut out = vec![answer(
                    json!({"type": "subscribed", "subscriptions": self.describe()}),
                    &id,
                )];
                // A status dashboard has something to show at once instead of after the next
                // period.
                if newly_status && let Some(status) = bus.last_status() {
                    out.push(Message::Text(status.text()));
                }
                out
            }
            ClientMessage::Unsubscribe(u) => {
                match u.events.filter(|e| !e.is_empty()) {
                    Some(events) => {
                        for t in events {
                            self.by_type[t.index()] = None;
                        }
                    }
                    None => *self = Subscriptions::default(),
                }
                vec![answer(
                    json!({"type": "unsubscribed", "subscriptions": self.describe()}),
                    &id,
                )]
            }
            ClientMessage::Ping => vec![answer(json!({"type": "pong"}), &id)],
            ClientMessage::Auth => vec![auth_not_enabled(&id)],
        }
    }
}

/// Why a connection ends.
#[derive(Debug, PartialEq, Eq)]
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

async fn serve(socket: WebSocket, bus: EventBus, token_given: bool) {
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

    let mut outbox: VecDeque<Message> = VecDeque::new();
    outbox.push_back(text(json!({
        "type": "hello",
        "protocol": PROTOCOL_VERSION,
        "node": bus.node(),
        "event_types": EventType::ALL.map(EventType::as_str),
        "heartbeat_ms": heartbeat_every.as_millis() as u64,
        "client_queue": bus.client_queue(),
        "auth": "disabled",
    })));
    if token_given {
        outbox.push_back(auth_not_enabled(&None));
    }

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
            frame = stream.next() => match frame {
                None | Some(Err(_)) => break End::Gone,
                Some(Ok(Message::Close(_))) => break End::ClientClosed,
                Some(Ok(Message::Pong(_))) => heartbeat.unanswered = false,
                // The socket answers pings itself.
                Some(Ok(Message::Ping(_))) => {}
                Some(Ok(Message::Text(t))) => outbox.extend(subscriptions.handle(&t, &bus)),
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
                Ok(BusItem::Gap) => break End::Lagged { missed: None },
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
        End::ClientClosed | End::Gone => Vec::new(),
    };
    debug!(?end, "websocket client done");
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
    use crate::alert::AlertStatus;
    use crate::events::{AddonState, AddonStatus, AlertSummary, EventBody};

    fn alert_event(event_type: EventType, severity: Severity, addon: &str, ip: &str) -> Event {
        Event::new(
            event_type,
            Arc::from("n"),
            1,
            EventBody::Alert(Box::new(AlertSummary {
                id: 1,
                addon_id: addon.into(),
                alert_type: "t".into(),
                severity,
                status: AlertStatus::Active,
                category: "c".into(),
                device_ip: Some(ip.into()),
                device_name: Some("core-sw-1".into()),
                title: "t".into(),
                occurrence_count: 1,
                first_seen_at: DateTime::UNIX_EPOCH,
                last_seen_at: DateTime::UNIX_EPOCH,
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
            EventBody::Addon(AddonStatus {
                id: "grafana".into(),
                status: AddonState::Loaded,
                version: None,
            }),
        );
        assert!(filter(json!({"addon": "grafana"})).matches(&addon));
        assert!(!filter(json!({"addon": "prtg"})).matches(&addon));
    }

    fn handle(subs: &mut Subscriptions, bus: &EventBus, message: Value) -> Value {
        let out = subs.handle(&message.to_string(), bus);
        assert_eq!(out.len(), 1, "{out:?}");
        match &out[0] {
            Message::Text(t) => serde_json::from_str(t).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    async fn bus() -> (tempfile::TempDir, EventBus, watch::Sender<bool>) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::connect(&crate::testing::sqlite_url(dir.path()).await)
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

        let answer = handle(
            &mut subs,
            &bus,
            json!({"type": "auth", "token": "secret-token", "id": "a1"}),
        );
        assert_eq!(
            answer,
            json!({"type": "error", "id": "a1", "code": "auth_not_enabled",
                   "message": "authentication is not enabled yet"})
        );
        assert!(!answer.to_string().contains("secret-token"));
        assert_eq!(
            handle(&mut subs, &bus, json!({"type": "ping"})),
            json!({"type": "pong"})
        );
        let answer = subs.handle("{not json", &bus);
        assert!(matches!(&answer[..], [Message::Text(t)] if t.contains("not a JSON message")));
    }
}
