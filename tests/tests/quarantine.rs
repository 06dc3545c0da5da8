//! Addon quarantine end to end, with the `chaos` guest crashing on request: after repeated
//! faults its webhooks are refused (503, `Retry-After`) without running it, the console hears
//! of it over `/ws`, the runtime raises an alert about itself, other addons keep serving, and
//! the addon comes back through probation or an operator's release.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use opsconductor_tests::{Db, TestRuntime, bundle, fixture, test_bundle};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

fn chaos(action: &str) -> Vec<u8> {
    json!({ "do": action }).to_string().into_bytes()
}

/// An `addon_status` subscriber on `/ws`, as the console is.
struct StatusEvents(
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
);

impl StatusEvents {
    async fn connect(rt: &TestRuntime) -> StatusEvents {
        let mut request = format!("ws://{}/ws", rt.server.addr())
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {}", rt.admin_key)).unwrap(),
        );
        let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let mut events = StatusEvents(ws);
        assert_eq!(events.next().await["type"], "hello");
        let subscribe =
            json!({"type": "subscribe", "events": ["addon_status"], "filter": {"addon": "chaos"}});
        events
            .0
            .send(Message::text(subscribe.to_string()))
            .await
            .unwrap();
        assert_eq!(events.next().await["type"], "subscribed");
        events
    }

    async fn next(&mut self) -> Value {
        loop {
            // A guard against hanging forever, not a measure.
            let message = tokio::time::timeout(Duration::from_secs(60), self.0.next())
                .await
                .expect("an event arrives")
                .unwrap()
                .unwrap();
            if let Message::Text(text) = message {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    /// The next `addon_status` event's `addon` body.
    async fn status(&mut self) -> Value {
        let event = self.next().await;
        assert_eq!(event["type"], "addon_status", "{event}");
        event["addon"].clone()
    }
}

/// Posts a webhook the addon would accept, expects the quarantine's refusal, and returns its
/// `Retry-After` in seconds.
async fn refused(rt: &TestRuntime) -> u64 {
    let response = rt
        .http
        .post(rt.url("/webhooks/chaos"))
        .header("content-type", "application/json")
        .body(chaos("ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let retry = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "addon_quarantined", "{answer}");
    retry
}

async fn quarantine_alert(rt: &TestRuntime) -> Option<Value> {
    rt.alerts("?addon=chaos&limit=50")
        .await
        .into_iter()
        .find(|a| a["alert_type"] == "addonQuarantined")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulting_addon_is_quarantined_alone_and_comes_back() {
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[bundle("alertmanager"), test_bundle("chaos")],
        |config| {
            config.quarantine.faults = 3;
            config.quarantine.window_seconds = 60;
            config.quarantine.first_seconds = 3;
            config.quarantine.longest_seconds = 600;
        },
        async |_| {},
    )
    .await;
    let mut events = StatusEvents::connect(&rt).await;

    // Two faults and an addon error: not yet.
    for action in ["panic", "error", "panic"] {
        let (status, answer) = rt.post_webhook("chaos", chaos(action)).await;
        assert_ne!(status, 503, "{action}: {answer}");
    }
    let (status, _) = rt.post_webhook("chaos", chaos("ok")).await;
    assert_eq!(
        status, 200,
        "an addon error is the addon's job, not a fault"
    );

    // The third fault quarantines it.
    let (status, answer) = rt.post_webhook("chaos", chaos("panic")).await;
    assert_eq!(status, 500, "{answer}");
    let calls_before = rt.addon("chaos").await["calls"]["calls"].clone();
    let retry = refused(&rt).await;
    assert!((2..=3).contains(&retry), "first_seconds: {retry}");

    let addon = rt.addon("chaos").await;
    assert_eq!(addon["calls"]["calls"], calls_before, "not called: {addon}");
    assert_eq!(addon["ingest"]["quarantined"], 1, "{addon}");
    assert_eq!(addon["quarantine"]["state"], "quarantined", "{addon}");
    assert_eq!(addon["quarantine"]["strikes"], 1, "{addon}");
    assert!(
        addon["quarantine"]["last_fault"]
            .as_str()
            .unwrap()
            .contains("deliberate panic"),
        "{addon}"
    );
    let (_, stats) = rt.get_json("/api/v1/stats").await;
    assert_eq!(stats["webhooks"]["quarantined"], 1, "{stats}");

    let status = events.status().await;
    assert_eq!(status["status"], "quarantined", "{status}");
    assert!(status["until"].is_string(), "{status}");

    // Everyone else keeps being served.
    let (status, answer) = rt
        .post_webhook("alertmanager", fixture("alertmanager", "firing"))
        .await;
    assert_eq!(status, 200, "{answer}");

    // The runtime's own alert, on this node.
    let alert = rt
        .wait_for("the addonQuarantined alert", 30, async |rt| {
            quarantine_alert(rt).await
        })
        .await;
    assert_eq!(alert["status"], "active", "{alert}");
    assert_eq!(alert["severity"], "major", "{alert}");
    let node = events_node(&rt).await;
    assert_eq!(alert["device_name"], node, "{alert}");

    // Three seconds later: probation, and it is called again.
    assert_eq!(events.status().await["status"], "probation");
    let (status, answer) = rt.post_webhook("chaos", chaos("ok")).await;
    assert_eq!(status, 200, "on probation: {answer}");
    // One fault on probation is enough, and the next quarantine is twice as long.
    let (status, _) = rt.post_webhook("chaos", chaos("spin")).await;
    assert_eq!(status, 500);
    let retry = refused(&rt).await;
    assert!((5..=6).contains(&retry), "twice first_seconds: {retry}");
    let status = events.status().await;
    assert_eq!(status["status"], "quarantined", "{status}");
    assert!(
        status["last_fault"].as_str().unwrap().contains("CPU"),
        "{status}"
    );
    assert_eq!(rt.addon("chaos").await["quarantine"]["strikes"], 2);

    // An operator releases it: called at once, and the runtime's alert clears.
    let (status, answer) = rt
        .send_json_as(&rt.http, "POST", "/api/v1/addons/chaos/release", None)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["quarantine"]["state"], "healthy", "{answer}");
    assert_eq!(answer["quarantine"]["strikes"], 0, "{answer}");
    let (status, answer) = rt.post_webhook("chaos", chaos("ok")).await;
    assert_eq!(status, 200, "released: {answer}");
    // (Probation may have come first, on a slow machine.)
    let mut status = events.status().await;
    while status["status"] == "probation" {
        status = events.status().await;
    }
    assert_eq!(status["status"], "loaded", "{status}");
    rt.wait_for("the addonQuarantined alert to clear", 30, async |rt| {
        quarantine_alert(rt)
            .await
            .filter(|a| a["status"] == "resolved")
    })
    .await;
    let (_, audit) = rt.get_json("/api/v1/audit?action=addon.release").await;
    assert_eq!(audit["items"][0]["action"], "addon.release", "{audit}");

    // Releasing an addon that is not loaded says so.
    let (status, answer) = rt
        .send_json_as(&rt.http, "POST", "/api/v1/addons/nonesuch/release", None)
        .await;
    assert_eq!(status, 404, "{answer}");
    rt.stop().await;
}

/// This node's name, as the host's alerts name it.
async fn events_node(rt: &TestRuntime) -> Value {
    json!(rt.server.state().events.node())
}
