//! One client's subscriptions: which events it wants, and the answers to its requests.

use axum::extract::ws::Message;
use serde_json::{Value, json};

use super::protocol::{Filter, Request, answer, error_message, refuse};
use crate::bus::{Event, EventBus, EventType};

/// Which events one client wants, per event type.
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    pub(super) by_type: [Option<Filter>; EventType::ALL.len()],
    /// After a resumption: the bus items up to this cursor were replayed already.
    pub(super) replayed_through: u64,
}

impl Subscriptions {
    pub(super) fn wants(&self, event: &Event) -> bool {
        event.cursor > self.replayed_through
            && self.by_type[event.event_type.index()]
                .as_ref()
                .is_some_and(|filter| filter.matches(event))
    }

    pub(super) fn describe(&self) -> Value {
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

impl Subscriptions {
    /// Handles one request of an authenticated client; returns what to send back.
    pub(super) fn handle(
        &mut self,
        request: Request,
        id: &Option<Value>,
        bus: &EventBus,
    ) -> Vec<Message> {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use tokio::sync::watch;

    use super::*;
    use crate::alert::Severity;
    use crate::api::ws::protocol::tests::{alert_event, json_of};
    use crate::api::ws::protocol::{ClientMessage, read};

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
            crate::bus::BusConfig {
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
}
