//! What travels on the bus: the event types a client subscribes to, the bodies, and the JSON
//! every client is sent.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};

use crate::alert::{ActionOutcome, StoredAlert, UnknownVariant};

/// What a client can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// An alert was opened (not when it opened suppressed by a silence).
    AlertCreated,
    /// An open alert occurred again (or changed otherwise).
    AlertUpdated,
    AlertResolved,
    /// A node's counters, periodically.
    SystemStatus,
    /// An addon was loaded, disabled, failed to load or was removed on a node.
    AddonStatus,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::AlertCreated,
        EventType::AlertUpdated,
        EventType::AlertResolved,
        EventType::SystemStatus,
        EventType::AddonStatus,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::AlertCreated => "alert_created",
            EventType::AlertUpdated => "alert_updated",
            EventType::AlertResolved => "alert_resolved",
            EventType::SystemStatus => "system_status",
            EventType::AddonStatus => "addon_status",
        }
    }

    /// Position in [`EventType::ALL`], for per-type tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownVariant {
                what: "event type",
                value: s.to_owned(),
                expected: EventType::ALL.map(EventType::as_str).join(", "),
            })
    }
}

/// What the store did to an alert, as the writer (or an API action) reports it to the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertChangeKind {
    Created,
    Updated,
    Resolved,
}

impl AlertChangeKind {
    pub fn event_type(self) -> EventType {
        match self {
            AlertChangeKind::Created => EventType::AlertCreated,
            AlertChangeKind::Updated => EventType::AlertUpdated,
            AlertChangeKind::Resolved => EventType::AlertResolved,
        }
    }
}

/// One alert changed: which and how. The event shows the alert as the store has it when the
/// event is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChangedAlert {
    pub kind: AlertChangeKind,
    pub alert_id: i64,
}

impl ChangedAlert {
    /// The change a stored outcome stands for; none for a clear that matched nothing.
    pub fn from_outcome(outcome: &ActionOutcome) -> Option<ChangedAlert> {
        let (kind, alert_id) = match *outcome {
            ActionOutcome::Created { alert_id } => (AlertChangeKind::Created, alert_id),
            ActionOutcome::Updated { alert_id, .. } => (AlertChangeKind::Updated, alert_id),
            ActionOutcome::Resolved { alert_id } => (AlertChangeKind::Resolved, alert_id),
            ActionOutcome::ClearUnmatched => return None,
        };
        Some(ChangedAlert { kind, alert_id })
    }
}

/// What became of an addon on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddonState {
    /// Loaded (newly enabled, installed, or upgraded and reloaded, or healthy again after a
    /// quarantine) and taking events.
    Loaded,
    /// Faulted too often: its events are refused until `until`.
    Quarantined,
    /// Taking events again after a quarantine; one more fault quarantines it for longer.
    Probation,
    /// Disabled: no longer taking events.
    Disabled,
    /// Enabled, but this node could not load it (the node's log says why).
    Failed,
    /// No longer installed.
    Removed,
}

/// The body of an `addon_status` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonStatus {
    pub id: String,
    pub status: AddonState,
    /// The version now loaded (for `loaded`, `quarantined` and `probation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When the quarantine ends (for `quarantined`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// The fault that last counted toward the quarantine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fault: Option<String>,
}

impl AddonStatus {
    pub fn new(id: String, status: AddonState) -> AddonStatus {
        AddonStatus {
            id,
            status,
            version: None,
            until: None,
            last_fault: None,
        }
    }
}

/// What an event carries besides its type, node and number; its JSON key names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventBody {
    /// The alert as stored when the event was rendered. Boxed: by far the largest body, and
    /// events are moved around a lot.
    #[serde(rename = "alert")]
    Alert(Box<StoredAlert>),
    #[serde(rename = "addon")]
    Addon(AddonStatus),
    /// A node's counters ([`crate::server::sources::SystemStatus`]), kept as JSON because a node passes on
    /// other nodes' status without interpreting it.
    #[serde(rename = "status")]
    System(serde_json::Value),
}

impl EventBody {
    /// About how many heap bytes the body holds. `text` is the event's JSON, which stands in for
    /// the size of bodies kept as parsed JSON.
    fn heap_bytes(&self, text: &str) -> usize {
        match self {
            EventBody::Alert(alert) => {
                let strings = [
                    Some(&alert.addon_id),
                    Some(&alert.fingerprint),
                    Some(&alert.alert_type),
                    alert.device_ip.as_ref(),
                    alert.device_name.as_ref(),
                    Some(&alert.category),
                    Some(&alert.title),
                    Some(&alert.message),
                    alert.acknowledged_by.as_ref(),
                    alert.resolved_by.as_ref(),
                ];
                let fields: usize = alert
                    .fields
                    .iter()
                    .map(|(key, value)| {
                        BTREE_ENTRY_BYTES
                            + allocation(key.capacity())
                            + allocation(value.capacity())
                    })
                    .sum();
                allocation(size_of::<StoredAlert>())
                    + strings
                        .into_iter()
                        .flatten()
                        .map(|s| allocation(s.capacity()))
                        .sum::<usize>()
                    + fields
            }
            EventBody::Addon(addon) => [
                Some(&addon.id),
                addon.version.as_ref(),
                addon.last_fault.as_ref(),
            ]
            .into_iter()
            .flatten()
            .map(|s| allocation(s.capacity()))
            .sum(),
            // A parsed JSON document takes several times its text: a node and a map entry per value.
            EventBody::System(_) => 4 * text.len(),
        }
    }
}

/// What the allocator spends on a block of `len` bytes: its header, rounded up to 16 bytes.
fn allocation(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        (len + 8).next_multiple_of(16)
    }
}

/// What a `BTreeMap<String, String>` spends per entry beyond the strings' bytes: the two
/// `String` headers in a node of 11 slots, about two thirds full.
const BTREE_ENTRY_BYTES: usize = 2 * size_of::<String>() * 3 / 2;

/// One event as clients receive it:
/// `{"type": "alert_created", "node": "...", "seq": 17, "cursor": 1042, "alert": {...}}`.
/// Serialised once, when published, and shared by every client.
#[derive(Debug)]
pub struct Event {
    pub event_type: EventType,
    /// The node where it happened.
    pub node: Arc<str>,
    /// Numbered per node in the order things happened there. Gaps are normal for one client
    /// (events it did not subscribe to, alerts opened suppressed); `lagged` is what tells a client
    /// it missed something.
    pub seq: u64,
    /// Its position in the stream of the node publishing it to its clients (see
    /// [`EventBus::replay`]).
    pub cursor: u64,
    pub body: EventBody,
    pub(super) text: Utf8Bytes,
    /// About how much memory the event holds (see [`Event::held_bytes`]), counted once.
    held_bytes: usize,
}

#[derive(Serialize)]
struct EventJson<'a> {
    #[serde(rename = "type")]
    pub(super) event_type: EventType,
    pub(super) node: &'a str,
    pub(super) seq: u64,
    pub(super) cursor: u64,
    #[serde(flatten)]
    pub(super) body: &'a EventBody,
}

impl Event {
    pub fn new(
        event_type: EventType,
        node: Arc<str>,
        seq: u64,
        cursor: u64,
        body: EventBody,
    ) -> Event {
        let text = serde_json::to_string(&EventJson {
            event_type,
            node: &node,
            seq,
            cursor,
            body: &body,
        })
        .expect("events serialise");
        let held_bytes = size_of::<Event>() + allocation(text.len()) + body.heap_bytes(&text);
        Event {
            event_type,
            node,
            seq,
            cursor,
            body,
            text: text.into(),
            held_bytes,
        }
    }

    /// About how much memory the event holds: itself, its JSON text and its parsed body, which
    /// is kept beside the text because subscriptions filter on it. The resume history's byte
    /// limit counts this, so that the limit bounds the process's memory and not only the text.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// The JSON text clients receive (cheap to clone: shared).
    pub fn text(&self) -> Utf8Bytes {
        self.text.clone()
    }

    pub fn alert(&self) -> Option<&StoredAlert> {
        match &self.body {
            EventBody::Alert(alert) => Some(alert),
            _ => None,
        }
    }

    /// The addon the event is about: the alert's or the addon's own.
    pub fn addon_id(&self) -> Option<&str> {
        match &self.body {
            EventBody::Alert(alert) => Some(&alert.addon_id),
            EventBody::Addon(addon) => Some(&addon.id),
            EventBody::System(_) => None,
        }
    }
}

/// What local clients receive from the bus.
#[derive(Debug, Clone)]
pub enum BusItem {
    Event(Arc<Event>),
    /// Events were lost before reaching the bus (the publisher fell behind, a store read failed,
    /// notifications from other nodes went missing): every client must resynchronise. It takes
    /// a place in the stream, so that no resumption reaches across it.
    Gap {
        cursor: u64,
    },
}

impl BusItem {
    /// Its position in this node's stream.
    pub fn cursor(&self) -> u64 {
        match self {
            BusItem::Event(event) => event.cursor,
            BusItem::Gap { cursor } => *cursor,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::DateTime;

    use super::*;

    pub(crate) fn alert(id: i64) -> StoredAlert {
        StoredAlert {
            id,
            addon_id: "alertmanager".into(),
            fingerprint: "fp".into(),
            alert_type: "NodeDown".into(),
            device_ip: Some("10.0.0.1".into()),
            device_name: None,
            severity: crate::alert::Severity::Critical,
            category: "application".into(),
            title: "node down".into(),
            message: "node-exporter is down".into(),
            status: crate::alert::AlertStatus::Active,
            fields: [("job".to_owned(), "node".to_owned())].into(),
            occurrence_count: 1,
            occurred_at: DateTime::UNIX_EPOCH,
            first_seen_at: DateTime::UNIX_EPOCH,
            last_seen_at: DateTime::UNIX_EPOCH,
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolved_by: None,
        }
    }

    #[test]
    fn event_json_has_type_node_seq_and_body() {
        let event = Event::new(
            EventType::AlertCreated,
            "n1".into(),
            7,
            70,
            EventBody::Alert(Box::new(alert(42))),
        );
        let json: serde_json::Value = serde_json::from_str(&event.text()).unwrap();
        assert_eq!(json["type"], "alert_created");
        assert_eq!(json["node"], "n1");
        assert_eq!(json["seq"], 7);
        assert_eq!(json["alert"]["id"], 42);
        assert_eq!(json["alert"]["severity"], "critical");
        assert_eq!(json["alert"]["status"], "active");
        assert_eq!(json["alert"]["device_ip"], "10.0.0.1");
        assert_eq!(json["cursor"], 70);
        // The whole alert: a console filters on its message and fields too.
        assert_eq!(json["alert"]["message"], "node-exporter is down");
        assert_eq!(json["alert"]["fields"]["job"], "node");

        let event = Event::new(
            EventType::AddonStatus,
            "n1".into(),
            8,
            71,
            EventBody::Addon(AddonStatus::new("grafana".into(), AddonState::Disabled)),
        );
        let json: serde_json::Value = serde_json::from_str(&event.text()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "addon_status", "node": "n1", "seq": 8, "cursor": 71,
                "addon": {"id": "grafana", "status": "disabled"}})
        );
    }

    #[test]
    fn event_types_parse_and_name_the_unknown() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
            assert_eq!(EventType::ALL[t.index()], t);
        }
        let error = "alert_deleted"
            .parse::<EventType>()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("alert_deleted") && error.contains("alert_created"),
            "{error}"
        );
    }

    #[test]
    fn outcomes_become_changes() {
        let outcomes = [
            ActionOutcome::Created { alert_id: 1 },
            ActionOutcome::Updated {
                alert_id: 2,
                occurrence_count: 3,
            },
            ActionOutcome::Resolved { alert_id: 3 },
            ActionOutcome::ClearUnmatched,
        ];
        let changes: Vec<_> = outcomes
            .iter()
            .filter_map(ChangedAlert::from_outcome)
            .collect();
        assert_eq!(
            changes,
            [
                ChangedAlert {
                    kind: AlertChangeKind::Created,
                    alert_id: 1
                },
                ChangedAlert {
                    kind: AlertChangeKind::Updated,
                    alert_id: 2
                },
                ChangedAlert {
                    kind: AlertChangeKind::Resolved,
                    alert_id: 3
                },
            ]
        );
    }
}
