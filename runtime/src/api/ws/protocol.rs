//! The messages: what a client may send, parsed and refused with a reason, and how answers
//! are written. No I/O.

use axum::extract::ws::{Message, Utf8Bytes};
use serde::de::{self, IgnoredAny, IntoDeserializer};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use super::{MAX_FILTER_VALUE_BYTES, MAX_FILTER_VALUES};
use crate::alert::{AlertStatus, Severity};
use crate::auth::Secret;
use crate::bus::{Event, EventType};

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
    pub(super) fn check(&self, event_type: EventType) -> Result<(), String> {
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
pub(super) fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
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
pub(super) struct Subscribe {
    #[serde(rename = "type")]
    pub(super) _type: IgnoredAny,
    #[serde(default, rename = "id")]
    pub(super) _id: Option<IgnoredAny>,
    pub(super) events: Vec<EventType>,
    #[serde(default)]
    pub(super) filter: Filter,
    #[serde(default)]
    pub(super) resume: Option<Resume>,
}

/// Where a reconnecting client left off: the stream it followed and the last cursor it saw.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Resume {
    pub(super) stream: String,
    pub(super) after: u64,
}

/// `{"type": "unsubscribe", ...}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Unsubscribe {
    #[serde(rename = "type")]
    pub(super) _type: IgnoredAny,
    #[serde(default, rename = "id")]
    pub(super) _id: Option<IgnoredAny>,
    #[serde(default)]
    pub(super) events: Option<Vec<EventType>>,
}

/// `{"type": "ping"}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Ping {
    #[serde(rename = "type")]
    pub(super) _type: IgnoredAny,
    #[serde(default, rename = "id")]
    pub(super) _id: Option<IgnoredAny>,
}

/// `{"type": "auth", "token": ...}`: the token is never echoed nor logged.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuthMessage {
    #[serde(rename = "type")]
    pub(super) _type: IgnoredAny,
    #[serde(default, rename = "id")]
    pub(super) _id: Option<IgnoredAny>,
    pub(super) token: Secret,
}

pub(super) enum ClientMessage {
    /// `auth`, handled by the connection itself.
    Auth(Secret),
    /// Everything else, for [`Subscriptions::handle`] once the client is authenticated.
    Request(Request),
}

pub(super) enum Request {
    Subscribe(Subscribe),
    Unsubscribe(Unsubscribe),
    Ping,
}

pub(super) const CLIENT_TYPES: &str = "subscribe, unsubscribe, ping, auth";

/// A refusal of a client message, sent as `{"type": "error", ...}`.
pub(super) struct Refusal {
    pub(super) code: &'static str,
    pub(super) message: String,
}

pub(super) fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

pub(super) fn parse(value: Value) -> Result<ClientMessage, Refusal> {
    pub(super) fn typed<T: for<'de> Deserialize<'de>>(value: Value) -> Result<T, Refusal> {
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
pub(super) fn read(message: &str) -> Result<(ClientMessage, Option<Value>), Message> {
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

pub(super) fn text(value: Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

/// `value` with the client's request `id`, when it gave one.
pub(super) fn answer(mut value: Value, id: &Option<Value>) -> Message {
    if let (Some(id), Value::Object(map)) = (id, &mut value) {
        map.insert("id".into(), id.clone());
    }
    text(value)
}

pub(super) fn error_message(refusal: Refusal, id: &Option<Value>) -> Message {
    answer(
        json!({"type": "error", "code": refusal.code, "message": refusal.message}),
        id,
    )
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::alert::StoredAlert;
    use crate::bus::test_alert as alert;
    use crate::bus::{AddonState, AddonStatus, EventBody};

    pub(in crate::api::ws) fn alert_event(
        event_type: EventType,
        severity: Severity,
        addon: &str,
        ip: &str,
    ) -> Event {
        Event::new(
            event_type,
            Arc::from("n"),
            1,
            1,
            EventBody::Alert(Box::new(StoredAlert {
                addon_id: addon.into(),
                device_ip: Some(ip.into()),
                device_name: Some("core-sw-1".into()),
                severity,
                status: AlertStatus::Active,
                ..alert(1)
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
            EventBody::Addon(AddonStatus::new("grafana".into(), AddonState::Loaded)),
        );
        assert!(filter(json!({"addon": "grafana"})).matches(&addon));
        assert!(!filter(json!({"addon": "prtg"})).matches(&addon));
    }

    pub(in crate::api::ws) fn json_of(message: &Message) -> Value {
        match message {
            Message::Text(t) => serde_json::from_str(t).unwrap(),
            other => panic!("{other:?}"),
        }
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
}
