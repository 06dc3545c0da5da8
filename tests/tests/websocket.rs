//! The real-time WebSocket at `/ws` end to end, with real clients (tokio-tungstenite, and a raw
//! one that never answers pings) against real runtimes: filtered subscriptions receive exactly
//! the matching events in order, a client that does not read is dropped without holding up
//! ingest, silent clients are closed by the heartbeat, addon and node status arrive, and on
//! PostgreSQL the clients of two nodes both see every event.
//!
//! Authentication: credentials in the header, the query or the first message; bad ones refused
//! before the upgrade (401) or by closing with 4401; a client that never authenticates closed
//! after the timeout; a revoked session, a revoked API key and an expired access token end
//! their sockets, unless a fresh token of the same principal was sent in time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use opsconductor::api::ws::CLOSE_UNAUTHORIZED;
use opsconductor::auth::{AccessClaims, Actor, ClientInfo, KeyRing, Role, TokenPair};
use opsconductor::registry::set_enabled;
use opsconductor_tests::{Db, TestRuntime, both_databases, bundle, fixture};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::header::{AUTHORIZATION, HeaderValue};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Only a guard against a test hanging forever, never a measure of speed: every step is far
/// quicker than this even on a loaded two-core machine.
const PATIENCE: Duration = Duration::from_secs(120);

const ALERT_EVENTS: [&str; 3] = ["alert_created", "alert_updated", "alert_resolved"];

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    hello: Value,
}

fn ws_url(rt: &TestRuntime, query: &str) -> String {
    format!("ws://{}/ws{query}", rt.server.addr())
}

/// The upgrade request to `url`, with `Authorization: Bearer {bearer}` when given.
fn request(url: &str, bearer: Option<&str>) -> Request {
    let mut request = url.into_client_request().expect("a WebSocket URL");
    if let Some(bearer) = bearer {
        request.headers_mut().insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {bearer}")).unwrap(),
        );
    }
    request
}

/// Connects as the runtime's administrator (its API key in the `Authorization` header).
async fn connect(rt: &TestRuntime) -> Client {
    let client = connect_request(request(&ws_url(rt, ""), Some(&rt.admin_key))).await;
    assert_eq!(client.hello["auth"], "authenticated", "{}", client.hello);
    client
}

/// Connects without credentials: an `auth` message is expected.
async fn connect_anonymous(rt: &TestRuntime) -> Client {
    let client = connect_request(request(&ws_url(rt, ""), None)).await;
    assert_eq!(client.hello["auth"], "required", "{}", client.hello);
    client
}

async fn connect_request(request: Request) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket connects");
    let mut client = Client {
        ws,
        hello: Value::Null,
    };
    client.hello = client.next().await;
    assert_eq!(client.hello["type"], "hello", "{}", client.hello);
    client
}

/// An upgrade the server is expected to refuse: its HTTP status, `WWW-Authenticate` and JSON
/// body.
async fn refused_upgrade(request: Request) -> (u16, Option<String>, Value) {
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => {
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = response
                .body()
                .as_deref()
                .map(|b| serde_json::from_slice(b).expect("a JSON error body"))
                .unwrap_or(Value::Null);
            (response.status().as_u16(), challenge, body)
        }
        Err(other) => panic!("refused with {other}, not an HTTP answer"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

impl Client {
    async fn send(&mut self, message: Value) {
        self.ws
            .send(Message::text(message.to_string()))
            .await
            .expect("message sent");
    }

    /// The next JSON message; WebSocket pings are answered by the library and skipped.
    async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("a message arrives")
                .expect("the connection is open")
                .expect("the connection is readable");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Every JSON message until the server closes the connection, and the close code.
    async fn until_closed(&mut self) -> (Vec<Value>, Option<u16>) {
        let mut messages = Vec::new();
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("the server closes the connection");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    messages.push(serde_json::from_str(&text).expect("JSON"))
                }
                Some(Ok(Message::Close(frame))) => {
                    return (messages, frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return (messages, None),
            }
        }
    }

    async fn subscribe(&mut self, events: &[&str], filter: Value) -> Value {
        self.send(json!({"type": "subscribe", "events": events, "filter": filter}))
            .await;
        let answer = self.next().await;
        assert_eq!(answer["type"], "subscribed", "{answer}");
        answer
    }

    /// The next `n` events as (type, alert id).
    async fn alert_events(&mut self, n: usize) -> Vec<(String, i64)> {
        let mut got = Vec::new();
        for _ in 0..n {
            let event = self.next().await;
            got.push((
                event["type"].as_str().expect("type").to_owned(),
                event["alert"]["id"]
                    .as_i64()
                    .unwrap_or_else(|| panic!("not an alert event: {event}")),
            ));
        }
        got
    }
}

/// One Alertmanager alert entry; its labels identify it.
fn am_alert(name: &str, severity: &str, host: &str, status: &str) -> Value {
    json!({
        "status": status,
        "labels": {"alertname": name, "severity": severity, "instance": format!("{host}:9100"), "job": "node"},
        "annotations": {"summary": format!("{name} on {host}")},
        "startsAt": "2024-05-14T09:12:45.123Z",
        "endsAt": "0001-01-01T00:00:00Z",
    })
}

fn am_payload(alerts: &[Value]) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&fixture("alertmanager", "firing")).unwrap();
    body["alerts"] = Value::Array(alerts.to_vec());
    serde_json::to_vec(&body).unwrap()
}

fn with_status(alert: &Value, status: &str) -> Value {
    let mut alert = alert.clone();
    alert["status"] = status.into();
    alert
}

/// Posts a webhook and returns the ids of its outcomes that name an alert.
async fn post(rt: &TestRuntime, path: &str, body: Vec<u8>) -> Vec<i64> {
    let (status, answer) = rt.post_webhook(path, body).await;
    assert_eq!(status, 200, "{answer}");
    answer["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["alert_id"].as_i64())
        .collect()
}

fn ev(kind: &str, id: i64) -> (String, i64) {
    (kind.to_owned(), id)
}

async fn filtered_subscription_gets_exactly_its_events(db: Db) {
    let rt = TestRuntime::start(db, &[bundle("alertmanager"), bundle("grafana")]).await;
    let mut critical = connect(&rt).await;
    assert_eq!(critical.hello["protocol"], 1);
    assert_eq!(critical.hello["auth"], "authenticated");
    assert_eq!(critical.hello["principal"]["role"], "admin");
    let actor = critical.hello["principal"]["actor"].as_str().unwrap();
    assert!(actor.starts_with("key:test-admin"), "{actor}");
    assert!(
        !critical.hello.to_string().contains(&rt.admin_key),
        "{}",
        critical.hello
    );
    let answer = critical
        .subscribe(
            &ALERT_EVENTS,
            json!({"severity": "critical", "addon": ["alertmanager"]}),
        )
        .await;
    let filter = json!({"severity": ["critical"], "addon": ["alertmanager"]});
    assert_eq!(
        answer["subscriptions"],
        json!({"alert_created": filter, "alert_updated": filter, "alert_resolved": filter})
    );
    let mut everything = connect(&rt).await;
    everything.subscribe(&["alert_created"], json!({})).await;

    let disk = am_alert("DiskFull", "critical", "10.0.0.1", "firing");
    let cpu = am_alert("CpuHigh", "warning", "10.0.0.2", "firing");
    let down = am_alert("NodeDown", "critical", "10.0.0.3", "firing");
    let ids = post(
        &rt,
        "alertmanager",
        am_payload(&[disk.clone(), cpu.clone(), down.clone()]),
    )
    .await;
    let [disk_id, cpu_id, down_id] = ids[..] else {
        panic!("{ids:?}")
    };
    let first = critical.next().await;
    assert_eq!(first["type"], "alert_created");
    assert_eq!(first["node"], critical.hello["node"]);
    let alert = &first["alert"];
    assert_eq!(alert["id"], disk_id);
    assert_eq!(alert["addon_id"], "alertmanager");
    assert_eq!(alert["alert_type"], "DiskFull");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["status"], "active");
    assert_eq!(alert["device_ip"], "10.0.0.1");
    assert_eq!(alert["title"], "DiskFull on 10.0.0.1");
    assert_eq!(alert["occurrence_count"], 1);
    assert!(alert["last_seen_at"].is_string(), "{first}");
    // The whole alert, message and fields too: a console filters on them without asking.
    assert_eq!(
        alert["fields"]["annotations.summary"], "DiskFull on 10.0.0.1",
        "{first}"
    );
    assert!(alert["message"].is_string(), "{first}");
    assert_eq!(alert["fields"]["job"], "node", "{first}");
    assert!(first["cursor"].as_u64().is_some(), "{first}");
    let second = critical.next().await;
    assert_eq!(
        (&second["type"], &second["alert"]["id"]),
        (&json!("alert_created"), &json!(down_id))
    );
    assert!(
        second["seq"].as_u64() > first["seq"].as_u64(),
        "{first} {second}"
    );
    assert_eq!(
        everything.alert_events(3).await,
        [
            ev("alert_created", disk_id),
            ev("alert_created", cpu_id),
            ev("alert_created", down_id)
        ]
    );

    post(&rt, "alertmanager", am_payload(std::slice::from_ref(&disk))).await;
    let updated = critical.next().await;
    assert_eq!(updated["type"], "alert_updated");
    assert_eq!(updated["alert"]["id"], disk_id);
    assert_eq!(updated["alert"]["occurrence_count"], 2);

    // A critical alert of another addon, and a warning of this one: not for `critical`.
    let mut grafana: Value = serde_json::from_slice(&fixture("grafana", "firing")).unwrap();
    for alert in grafana["alerts"].as_array_mut().unwrap() {
        alert["labels"]["severity"] = "critical".into();
    }
    let grafana_ids = post(&rt, "grafana", serde_json::to_vec(&grafana).unwrap()).await;
    assert!(!grafana_ids.is_empty());
    post(
        &rt,
        "alertmanager",
        am_payload(&[with_status(&cpu, "resolved")]),
    )
    .await;
    post(
        &rt,
        "alertmanager",
        am_payload(&[with_status(&disk, "resolved")]),
    )
    .await;
    // Events arrive in order, so the next one being this proves the others were filtered out.
    let resolved = critical.next().await;
    assert_eq!(resolved["type"], "alert_resolved", "{resolved}");
    assert_eq!(resolved["alert"]["id"], disk_id);
    assert_eq!(resolved["alert"]["status"], "resolved");
    assert_eq!(resolved["alert"]["device_ip"], "10.0.0.1");
    assert_eq!(
        everything.alert_events(grafana_ids.len()).await,
        grafana_ids
            .iter()
            .map(|id| ev("alert_created", *id))
            .collect::<Vec<_>>()
    );

    // Unsubscribed types stop; the rest go on.
    critical
        .send(json!({"type": "unsubscribe", "events": ["alert_created", "alert_updated"], "id": "u1"}))
        .await;
    let answer = critical.next().await;
    assert_eq!(
        answer,
        json!({"type": "unsubscribed", "id": "u1", "subscriptions": {"alert_resolved": filter}})
    );
    let reopened = post(&rt, "alertmanager", am_payload(std::slice::from_ref(&disk))).await;
    post(&rt, "alertmanager", am_payload(std::slice::from_ref(&down))).await;
    post(
        &rt,
        "alertmanager",
        am_payload(&[with_status(&down, "resolved")]),
    )
    .await;
    assert_eq!(
        critical.alert_events(1).await,
        [ev("alert_resolved", down_id)]
    );
    assert_eq!(
        everything.alert_events(1).await,
        [ev("alert_created", reopened[0])]
    );
    assert_ne!(reopened[0], disk_id, "a recurrence is a new alert");
    rt.stop().await;
}
both_databases!(
    filtered_subscription_e2e,
    filtered_subscription_gets_exactly_its_events
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_are_named() {
    let rt = TestRuntime::start(Db::Sqlite, &[bundle("alertmanager")]).await;

    // Credentials in the query, as browsers send them.
    let mut client = connect_request(request(
        &ws_url(&rt, &format!("?token={}", rt.admin_key)),
        None,
    ))
    .await;
    assert_eq!(client.hello["auth"], "authenticated", "{}", client.hello);
    client
        .send(json!({"type": "subscribe", "events": ["alert_created"], "filter": {"severity": "hot"}}))
        .await;
    let answer = client.next().await;
    assert_eq!(answer["code"], "bad_message", "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("filter.severity") && message.contains("hot"),
        "{message}"
    );
    client
        .ws
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(client.next().await["code"], "bad_message");
    client.send(json!({"type": "ping", "id": "p"})).await;
    assert_eq!(client.next().await, json!({"type": "pong", "id": "p"}));

    // Not a WebSocket request, and an unknown query parameter: the API's error shape.
    let (status, body) = rt.get_json("/ws").await;
    assert!((400..500).contains(&status), "{status} {body}");
    assert_eq!(body["error"]["code"], "websocket_required", "{body}");
    let (status, body) = rt.get_json("/ws?severity=critical").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_query", "{body}");
    // Credentials given twice.
    let (status, _, body) = refused_upgrade(request(
        &ws_url(&rt, &format!("?token={}", rt.admin_key)),
        Some(&rt.admin_key),
    ))
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "ambiguous_credentials", "{body}");
    rt.stop().await;
}

// ---- authentication ----

/// A user with `role` signed in with a password: their session's tokens.
async fn sign_in(rt: &TestRuntime, username: &str, role: Role) -> TokenPair {
    let auth = &rt.server.state().auth;
    let (_, password) = auth
        .create_user(username, role, None, &Actor::system())
        .await
        .expect("user created");
    let password = password.expect("a generated password");
    auth.login_password(username, password.expose(), &ClientInfo::default())
        .await
        .expect("signed in")
}

/// An access token for `tokens`' session, signed by the runtime's own key, that expires
/// `expires_in_secs` from now (negative: expired that long ago).
async fn access_token(rt: &TestRuntime, tokens: &TokenPair, expires_in_secs: i64) -> String {
    let keys = rt.server.state().store.signing_keys().await.unwrap();
    let ring = KeyRing::new(keys, opsconductor::auth::CLOCK_LEEWAY).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let principal = &tokens.principal;
    let claims = AccessClaims {
        iss: opsconductor::auth::ISSUER.to_owned(),
        sub: principal.user_id.unwrap().to_string(),
        sid: principal.session_id.clone().unwrap(),
        name: principal.actor.trim_start_matches("user:").to_owned(),
        role: principal.role,
        iat: now - 60,
        exp: now + expires_in_secs,
    };
    ring.sign(&claims).expose().to_owned()
}

/// The `error` message and close code a connection ends with.
async fn refusal(client: &mut Client) -> (Value, Option<u16>) {
    let (messages, code) = client.until_closed().await;
    let error = messages
        .iter()
        .find(|m| m["type"] == "error")
        .cloned()
        .unwrap_or_else(|| panic!("no error before the close: {messages:?}"));
    (error, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_at_the_upgrade_are_refused_with_401() {
    let rt = TestRuntime::start(Db::Sqlite, &[]).await;
    let vera = sign_in(&rt, "vera", Role::Viewer).await;
    let expired = access_token(&rt, &vera, -3600).await;
    let (_, revoked_key) = rt
        .server
        .state()
        .auth
        .create_api_key("dash", Role::Viewer, None, &Actor::system())
        .await
        .unwrap();
    let revoked_key = revoked_key.expose().to_owned();
    rt.server
        .state()
        .auth
        .revoke_api_key_named("dash", &Actor::system())
        .await
        .unwrap();
    let garbage_jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2VjcmV0LXNpZ25hdHVyZQ";
    let unknown_key = format!("oc_{}", "A".repeat(43));

    let cases: Vec<(Request, &str, &str)> = vec![
        (
            request(&ws_url(&rt, &format!("?token={unknown_key}")), None),
            unknown_key.as_str(),
            "the API key is not valid",
        ),
        (
            request(&ws_url(&rt, "?token=nonsense"), None),
            "nonsense",
            "malformed",
        ),
        (
            request(&ws_url(&rt, ""), Some(garbage_jwt)),
            garbage_jwt,
            "the token",
        ),
        (
            request(&ws_url(&rt, ""), Some(&expired)),
            expired.as_str(),
            "the token has expired",
        ),
        (
            request(&ws_url(&rt, &format!("?token={expired}")), None),
            expired.as_str(),
            "the token has expired",
        ),
        (
            request(&ws_url(&rt, ""), Some(&revoked_key)),
            revoked_key.as_str(),
            "the API key has been revoked",
        ),
    ];
    for (request, token, why) in cases {
        let uri = request.uri().to_string();
        let (status, challenge, body) = refused_upgrade(request).await;
        assert_eq!(status, 401, "{uri}: {body}");
        assert!(
            challenge
                .as_deref()
                .is_some_and(|c| c.starts_with("Bearer")),
            "{uri}: {challenge:?}"
        );
        assert_eq!(body["error"]["code"], "unauthorized", "{uri}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{uri}: {message}");
        assert!(
            !body.to_string().contains(token),
            "{uri}: the token echoed: {body}"
        );
    }

    // Not a bearer credential at all.
    let mut basic = request(&ws_url(&rt, ""), None);
    basic.headers_mut().insert(
        AUTHORIZATION,
        HeaderValue::from_static("Basic dmVyYTpodW50ZXIy"),
    );
    let (status, challenge, body) = refused_upgrade(basic).await;
    assert_eq!(status, 401, "{body}");
    assert!(challenge.is_some());
    assert!(!body.to_string().contains("dmVyYTpodW50ZXIy"), "{body}");

    // The user's real access token is accepted, as the user.
    let client = connect_request(request(&ws_url(&rt, ""), Some(vera.access_token.expose()))).await;
    assert_eq!(
        client.hello["principal"],
        json!({"actor": "user:vera", "role": "viewer"})
    );
    assert_eq!(
        rt.server.state().events.stats().clients,
        1,
        "refused upgrades never connected"
    );
    rt.stop().await;
}

async fn auth_message_authenticates_then_events_flow(db: Db) {
    let rt = TestRuntime::start(db, &[bundle("alertmanager")]).await;
    let mut client = connect_anonymous(&rt).await;
    assert!(
        client.hello["auth_timeout_ms"].as_u64() > Some(0),
        "{}",
        client.hello
    );
    assert!(client.hello.get("principal").is_none(), "{}", client.hello);

    // Nothing but `auth` is served before it.
    client
        .send(json!({"type": "subscribe", "events": ["alert_created"], "id": 1}))
        .await;
    let answer = client.next().await;
    assert_eq!(answer["code"], "auth_required", "{answer}");
    assert_eq!(answer["id"], 1);
    client.send(json!({"type": "ping"})).await;
    assert_eq!(client.next().await["code"], "auth_required");
    let before = post(
        &rt,
        "alertmanager",
        am_payload(&[am_alert("Before", "critical", "10.3.0.1", "firing")]),
    )
    .await;

    client
        .send(json!({"type": "auth", "token": rt.admin_key, "id": "a"}))
        .await;
    let answer = client.next().await;
    assert_eq!(answer["type"], "authenticated", "{answer}");
    assert_eq!(answer["id"], "a");
    assert_eq!(answer["principal"]["role"], "admin");
    assert!(
        answer["principal"]["actor"]
            .as_str()
            .unwrap()
            .starts_with("key:test-admin"),
        "{answer}"
    );
    assert!(!answer.to_string().contains(&rt.admin_key), "{answer}");

    client.subscribe(&["alert_created"], json!({})).await;
    let ids = post(
        &rt,
        "alertmanager",
        am_payload(&[am_alert("After", "critical", "10.3.0.2", "firing")]),
    )
    .await;
    // The webhook answers once its alert is committed; the bus publishes it a moment later
    // (through the database with PostgreSQL). So the earlier alert may still be published
    // after the subscription: it may arrive first, and nothing else may.
    let mut got = client.alert_events(1).await;
    if got[0] == ev("alert_created", before[0]) {
        got = client.alert_events(1).await;
    }
    assert_eq!(
        got,
        [ev("alert_created", ids[0])],
        "events flow once authenticated"
    );
    rt.stop().await;
}
both_databases!(
    auth_message_e2e,
    auth_message_authenticates_then_events_flow
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_auth_message_is_closed_with_4401_after_the_timeout() {
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[],
        |config| config.websocket.auth_timeout_ms = 300,
        async |_| {},
    )
    .await;
    let started = Instant::now();
    let mut client = connect_anonymous(&rt).await;
    let timeout = Duration::from_millis(client.hello["auth_timeout_ms"].as_u64().unwrap());
    let (error, code) = refusal(&mut client).await;
    assert!(
        started.elapsed() >= timeout,
        "closed early: {:?}",
        started.elapsed()
    );
    assert_eq!(code, Some(CLOSE_UNAUTHORIZED));
    assert_eq!(error["code"], "auth_timeout", "{error}");
    // The close frame is sent before the server drops the client's registration.
    rt.wait_for("the server to forget the closed client", 60, async |rt| {
        (rt.server.state().events.stats().clients == 0).then_some(())
    })
    .await;
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_auth_messages_are_refused_and_closed_with_4401() {
    let rt = TestRuntime::start(Db::Sqlite, &[]).await;
    let vera = sign_in(&rt, "vera", Role::Viewer).await;
    let expired = access_token(&rt, &vera, -3600).await;
    let unknown_key = format!("oc_{}", "B".repeat(43));
    for (token, why) in [
        (unknown_key.as_str(), "the API key is not valid"),
        ("eyJhbGciOiJIUzI1NiJ9.garbage.garbage", "the token"),
        (expired.as_str(), "the token has expired"),
        ("", "malformed"),
    ] {
        let mut client = connect_anonymous(&rt).await;
        client
            .send(json!({"type": "auth", "token": token, "id": 9}))
            .await;
        let (error, code) = refusal(&mut client).await;
        assert_eq!(code, Some(CLOSE_UNAUTHORIZED), "{token}: {error}");
        assert_eq!(error["code"], "unauthorized", "{error}");
        assert_eq!(error["id"], 9, "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(why), "{token}: {message}");
        if !token.is_empty() {
            assert!(
                !error.to_string().contains(token),
                "the token echoed: {error}"
            );
        }
    }
    rt.stop().await;
}

async fn revoked_credentials_close_their_sockets(db: Db) {
    let rt = TestRuntime::start_configured(
        db,
        &[],
        |config| config.websocket.reverify_ms = 200,
        async |_| {},
    )
    .await;
    let auth = rt.server.state().auth.clone();
    let vera = sign_in(&rt, "vera", Role::Viewer).await;
    let (_, key) = auth
        .create_api_key("wallboard", Role::Viewer, None, &Actor::system())
        .await
        .unwrap();
    let mut user = connect_request(request(
        &ws_url(&rt, &format!("?token={}", vera.access_token.expose())),
        None,
    ))
    .await;
    assert_eq!(user.hello["principal"]["actor"], "user:vera");
    user.subscribe(&["alert_created"], json!({})).await;
    let mut wallboard = connect_anonymous(&rt).await;
    wallboard
        .send(json!({"type": "auth", "token": key.expose()}))
        .await;
    assert_eq!(wallboard.next().await["type"], "authenticated");
    let mut admin = connect(&rt).await;
    let period = Duration::from_millis(user.hello["reverify_ms"].as_u64().unwrap());

    // The session is revoked: its socket is closed within a few periods.
    let session = vera.principal.session_id.clone().unwrap();
    assert!(
        auth.revoke_session(&session, &Actor::system())
            .await
            .unwrap()
    );
    let revoked_at = Instant::now();
    let (error, code) = refusal(&mut user).await;
    let took = revoked_at.elapsed();
    assert_eq!(code, Some(CLOSE_UNAUTHORIZED), "{error}");
    assert_eq!(
        error,
        json!({"type": "error", "code": "unauthorized", "message": "the session has been revoked"})
    );
    assert!(
        took < 3 * period + Duration::from_secs(5),
        "closed after {took:?}"
    );
    eprintln!("{db:?}: a revoked session's socket closed after {took:?} (period {period:?})");

    // So is a revoked API key's.
    auth.revoke_api_key_named("wallboard", &Actor::system())
        .await
        .unwrap();
    let (error, code) = refusal(&mut wallboard).await;
    assert_eq!(code, Some(CLOSE_UNAUTHORIZED), "{error}");
    assert_eq!(error["message"], "the API key has been revoked");

    // Others are untouched.
    admin.send(json!({"type": "ping"})).await;
    assert_eq!(admin.next().await, json!({"type": "pong"}));
    // The close frames are sent before the server drops those clients' registrations.
    rt.wait_for("the server to forget the closed clients", 60, async |rt| {
        (rt.server.state().events.stats().clients == 1).then_some(())
    })
    .await;
    rt.stop().await;
}
both_databases!(revocation_e2e, revoked_credentials_close_their_sockets);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_token_ends_its_socket_unless_renewed_for_the_same_user() {
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[],
        |config| config.websocket.reverify_ms = 200,
        async |_| {},
    )
    .await;
    let vera = sign_in(&rt, "vera", Role::Viewer).await;
    let otto = sign_in(&rt, "otto", Role::Operator).await;
    // Valid for another 3 to 4 seconds, clock leeway included.
    let leeway = opsconductor::auth::CLOCK_LEEWAY.num_seconds();
    let expiring = access_token(&rt, &vera, 3 - leeway).await;

    let mut kept = connect_request(request(&ws_url(&rt, ""), Some(&expiring))).await;
    let mut lapsed = connect_request(request(&ws_url(&rt, ""), Some(&expiring))).await;
    let mut switched = connect_request(request(&ws_url(&rt, ""), Some(&expiring))).await;

    // A fresh token of the same user, as a refresh gets it, renews the connection.
    let fresh = rt
        .server
        .state()
        .auth
        .refresh(vera.refresh_token.expose(), &ClientInfo::default())
        .await
        .unwrap();
    kept.send(json!({"type": "auth", "token": fresh.access_token.expose(), "id": "renew"}))
        .await;
    let answer = kept.next().await;
    assert_eq!(
        answer,
        json!({"type": "authenticated", "id": "renew",
               "principal": {"actor": "user:vera", "role": "viewer"}})
    );
    // Someone else's token does not: a connection does not change hands.
    switched
        .send(json!({"type": "auth", "token": otto.access_token.expose()}))
        .await;
    let (error, code) = refusal(&mut switched).await;
    assert_eq!(code, Some(CLOSE_UNAUTHORIZED), "{error}");
    assert_eq!(error["code"], "principal_changed", "{error}");
    assert!(!error.to_string().contains(otto.access_token.expose()));
    // Nor an administrator's API key.
    let mut switched = connect_request(request(&ws_url(&rt, ""), Some(&expiring))).await;
    switched
        .send(json!({"type": "auth", "token": rt.admin_key}))
        .await;
    let (error, code) = refusal(&mut switched).await;
    assert_eq!(code, Some(CLOSE_UNAUTHORIZED), "{error}");
    assert_eq!(error["code"], "principal_changed", "{error}");

    // The token that was not renewed expires, and its socket ends.
    let (error, code) = refusal(&mut lapsed).await;
    assert_eq!(code, Some(CLOSE_UNAUTHORIZED), "{error}");
    assert_eq!(error["message"], "the token has expired", "{error}");
    // The renewed one lives on past the expiry …
    kept.send(json!({"type": "ping"})).await;
    assert_eq!(kept.next().await, json!({"type": "pong"}));
    // … re-verified with its fresh token: revoking that token's session closes it, with the
    // revocation as the reason (had it been re-verified with the old token it would have
    // closed as expired already; had it not been re-verified, it would not close at all).
    let session = fresh.principal.session_id.clone().unwrap();
    let auth = rt.server.state().auth.clone();
    assert!(
        auth.revoke_session(&session, &Actor::system())
            .await
            .unwrap()
    );
    let (error, code) = refusal(&mut kept).await;
    assert_eq!(code, Some(CLOSE_UNAUTHORIZED), "{error}");
    assert_eq!(error["message"], "the session has been revoked", "{error}");
    rt.stop().await;
}

/// Opens a WebSocket over a socket with a tiny receive buffer, so that a client that never
/// reads fills up quickly, as a stuck dashboard on a slow link would.
async fn connect_stuck(rt: &TestRuntime) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(rt.server.addr()).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(
        request(&ws_url(rt, ""), Some(&rt.admin_key)),
        MaybeTlsStream::Plain(stream),
    )
    .await
    .expect("websocket connects");
    let mut client = Client {
        ws,
        hello: Value::Null,
    };
    client.hello = client.next().await;
    client
}

/// Posts `count` distinct firing alerts (10 per webhook, 16 senders at once) numbered from
/// `first`.
async fn ingest(rt: &std::sync::Arc<TestRuntime>, first: usize, count: usize) {
    let per_request = 10;
    let requests: Vec<usize> = (first..first + count).step_by(per_request).collect();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(requests));
    let mut senders = Vec::new();
    for _ in 0..16 {
        let (rt, queue) = (rt.clone(), queue.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let Some(start) = queue.lock().unwrap().pop() else {
                    return;
                };
                let alerts: Vec<Value> = (start..start + per_request)
                    .map(|i| am_alert(&format!("Load{i}"), "major", "10.1.0.1", "firing"))
                    .collect();
                let ids = post(&rt, "alertmanager", am_payload(&alerts)).await;
                assert_eq!(ids.len(), per_request);
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
}

/// Reads alert events until it has `n`, checking that they come in order; returns their ids.
async fn read_alert_events(client: &mut Client, n: usize, last_seq: &mut u64) -> Vec<i64> {
    let mut ids = Vec::with_capacity(n);
    while ids.len() < n {
        let event = client.next().await;
        assert_eq!(event["type"], "alert_created", "{event}");
        let seq = event["seq"].as_u64().unwrap();
        assert!(seq > *last_seq, "out of order: {seq} after {last_seq}");
        *last_seq = seq;
        ids.push(event["alert"]["id"].as_i64().unwrap());
    }
    ids
}

async fn stuck_client_is_dropped_and_ingest_goes_on(db: Db) {
    const ROUND: usize = 10_000;
    let rt = std::sync::Arc::new(
        TestRuntime::start_configured(
            db,
            &[bundle("alertmanager")],
            |config| config.websocket.client_queue = 1_024,
            async |_| {},
        )
        .await,
    );
    let bus = rt.server.state().events.clone();
    let mut good = connect(&rt).await;
    good.subscribe(&["alert_created"], json!({})).await;
    let mut last_seq = 0;

    // For comparison, a round with only the good client.
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let ids = read_alert_events(&mut good, ROUND, &mut last_seq).await;
        (good, ids, last_seq)
    });
    ingest(&rt, 0, ROUND).await;
    let alone = started.elapsed();
    let (mut good, ids, mut last_seq) = reader.await.unwrap();
    assert_eq!(ids.len(), ROUND);

    let mut stuck = connect_stuck(&rt).await;
    stuck.subscribe(&["alert_created"], json!({})).await;
    // From here on the stuck client never reads until it has been dropped. Ingest goes on in
    // rounds until the server has dropped it: how many events the kernel's socket buffers
    // absorb first is up to the kernel.
    let mut sent = ROUND;
    let mut timings = Vec::new();
    while bus.stats().clients_lagged == 0 {
        assert!(
            sent < 20 * ROUND,
            "a client that never reads was not dropped after {sent} events"
        );
        let started = Instant::now();
        let reader = tokio::spawn(async move {
            let ids = read_alert_events(&mut good, ROUND, &mut last_seq).await;
            (good, ids, last_seq)
        });
        ingest(&rt, sent, ROUND).await;
        timings.push(started.elapsed());
        let (client, ids, seq) = reader.await.unwrap();
        (good, last_seq) = (client, seq);
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ROUND, "the good client got every event once");
        sent += ROUND;
    }
    eprintln!(
        "{db:?}: {ROUND} events with one reading client: {alone:?}; with a stuck client too: {timings:?}"
    );
    assert_eq!(bus.stats().clients_lagged, 1);

    // The stuck client finds what its buffers held, then `lagged` or a close: never everything.
    let mut events = 0;
    let mut ending = None;
    while ending.is_none() {
        match tokio::time::timeout(PATIENCE, stuck.ws.next())
            .await
            .expect("the dropped client's stream ends")
        {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                match message["type"].as_str() {
                    Some("alert_created") => events += 1,
                    Some("lagged") => {
                        assert!(message["missed"].as_u64() > Some(0), "{message}");
                        ending = Some(format!("lagged: {message}"));
                    }
                    _ => panic!("unexpected {message}"),
                }
            }
            Some(Ok(Message::Close(frame))) => ending = Some(format!("close: {frame:?}")),
            Some(Ok(_)) => {}
            Some(Err(error)) => ending = Some(format!("error: {error}")),
            None => ending = Some("end of stream".into()),
        }
    }
    assert!(events < sent - ROUND, "{events} of {sent} events");
    eprintln!(
        "the stuck client read {events} events, then {}",
        ending.unwrap()
    );

    // The good client is still served.
    let ids = post(
        &rt,
        "alertmanager",
        am_payload(&[am_alert("After", "major", "10.1.0.9", "firing")]),
    )
    .await;
    assert_eq!(read_alert_events(&mut good, 1, &mut last_seq).await, ids);
    let rt = std::sync::Arc::into_inner(rt).expect("senders done");
    rt.stop().await;
}
both_databases!(stuck_client_e2e, stuck_client_is_dropped_and_ingest_goes_on);

/// A WebSocket client written by hand on a plain socket: it never answers pings (nor reads
/// until told to), and returns the frames the server sent as (opcode, payload).
struct RawClient {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl RawClient {
    async fn connect(rt: &TestRuntime) -> RawClient {
        let mut stream = TcpStream::connect(rt.server.addr()).await.unwrap();
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Authorization: Bearer {}\r\n\r\n",
            rt.server.addr(),
            rt.admin_key
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buffer = Vec::new();
        let end = loop {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed during the handshake");
            buffer.extend_from_slice(&chunk[..n]);
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        RawClient {
            stream,
            buffer: buffer[end..].to_vec(),
        }
    }

    /// Everything the server sends until it closes the connection.
    async fn frames_until_closed(mut self) -> Vec<(u8, Vec<u8>)> {
        tokio::time::timeout(PATIENCE, self.stream.read_to_end(&mut self.buffer))
            .await
            .expect("the server closes the connection")
            .ok();
        let (mut frames, mut at, b) = (Vec::new(), 0, &self.buffer);
        while at + 2 <= b.len() {
            let opcode = b[at] & 0x0f;
            let (len, header) = match b[at + 1] & 0x7f {
                126 => (u16::from_be_bytes([b[at + 2], b[at + 3]]) as usize, 4),
                127 => (
                    u64::from_be_bytes(b[at + 2..at + 10].try_into().unwrap()) as usize,
                    10,
                ),
                n => (n as usize, 2),
            };
            let start = at + header;
            if start + len > b.len() {
                break;
            }
            frames.push((opcode, b[start..start + len].to_vec()));
            at = start + len;
        }
        frames
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_keeps_answering_clients_and_closes_silent_ones() {
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[bundle("alertmanager")],
        // Long enough that a client that answers is never late on a loaded machine.
        |config| config.websocket.heartbeat_ms = 1_000,
        async |_| {},
    )
    .await;
    let silent = RawClient::connect(&rt).await;
    let mut answering = connect(&rt).await;
    assert_eq!(answering.hello["heartbeat_ms"], 1_000);
    // The library answers pings while the client reads; keep it reading meanwhile.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let keeper = tokio::spawn(async move {
        let mut pings = 0;
        loop {
            tokio::select! {
                _ = &mut stopped => return (answering, pings),
                frame = answering.ws.next() => match frame {
                    Some(Ok(Message::Ping(_))) => pings += 1,
                    other => panic!("unexpected {other:?}"),
                },
            }
        }
    });

    // The silent client is closed with 4002 after pings it never answered.
    let frames = silent.frames_until_closed().await;
    let opcodes: Vec<u8> = frames.iter().map(|(op, _)| *op).collect();
    assert_eq!(opcodes.first(), Some(&0x1), "hello first: {opcodes:?}");
    assert!(opcodes.contains(&0x9), "pinged: {opcodes:?}");
    let close = frames
        .iter()
        .find(|(op, _)| *op == 0x8)
        .unwrap_or_else(|| panic!("no close frame: {opcodes:?}"));
    assert_eq!(
        u16::from_be_bytes([close.1[0], close.1[1]]),
        opsconductor::api::ws::CLOSE_NO_PONG
    );
    assert_eq!(rt.server.state().events.stats().clients_timed_out, 1);

    // The client that answered outlived it, and is still served.
    stop.send(()).unwrap();
    let (mut answering, pings) = keeper.await.unwrap();
    assert!(pings >= 1, "{pings} pings");
    answering.send(json!({"type": "ping"})).await;
    assert_eq!(answering.next().await, json!({"type": "pong"}));
    // The silent client's close frame is sent before the server drops its registration.
    rt.wait_for("the server to forget the silent client", 60, async |rt| {
        (rt.server.state().events.stats().clients == 1).then_some(())
    })
    .await;
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addon_and_node_status_arrive() {
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[bundle("alertmanager"), bundle("grafana")],
        |config| config.websocket.status_interval_ms = 200,
        async |_| {},
    )
    .await;
    let store = rt.server.state().store.clone();
    let mut client = connect(&rt).await;
    client
        .subscribe(&["addon_status"], json!({"addon": "grafana"}))
        .await;

    set_enabled(&store, "alertmanager", false).await.unwrap();
    set_enabled(&store, "grafana", false).await.unwrap();
    let event = client.next().await;
    assert_eq!(event["type"], "addon_status");
    assert_eq!(
        event["addon"],
        json!({"id": "grafana", "status": "disabled"})
    );
    set_enabled(&store, "grafana", true).await.unwrap();
    let event = client.next().await;
    assert_eq!(event["addon"]["id"], "grafana");
    assert_eq!(event["addon"]["status"], "loaded");
    assert!(event["addon"]["version"].is_string(), "{event}");

    // A node's status: the latest at once on subscribing, then periodically, with what the
    // node's writer has done.
    post(&rt, "grafana", fixture("grafana", "firing")).await;
    client.subscribe(&["system_status"], json!({})).await;
    let mut status = client.next().await;
    while status["status"]["writer"]["actions"] == 0 {
        status = client.next().await;
        assert_eq!(status["type"], "system_status", "{status}");
    }
    let body = &status["status"];
    assert_eq!(status["node"], client.hello["node"]);
    for field in [
        "writer_queue",
        "writer_queue_capacity",
        "webhooks",
        "traps",
        "addons_loaded",
    ] {
        assert!(body.get(field).is_some(), "{field} missing: {status}");
    }
    assert_eq!(body["events"]["clients"], 1, "{status}");
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_deliver_every_event_to_clients_of_both() {
    let first = TestRuntime::start(Db::Postgres, &[bundle("alertmanager")]).await;
    let second = first.start_peer(|_| {}).await;
    let mut on_first = connect(&first).await;
    let mut on_second = connect(&second).await;
    assert_ne!(on_first.hello["node"], on_second.hello["node"]);
    for client in [&mut on_first, &mut on_second] {
        client
            .subscribe(
                &["alert_created", "alert_resolved"],
                json!({"severity": "critical"}),
            )
            .await;
    }

    // Alerts raised and resolved through either node, alternately; warnings filtered out.
    let mut expected = Vec::new();
    for i in 0..20 {
        let (rt, other) = if i % 2 == 0 {
            (&first, &second)
        } else {
            (&second, &first)
        };
        let alert = am_alert(&format!("Node{i}"), "critical", "10.2.0.1", "firing");
        let noise = am_alert(&format!("Noise{i}"), "warning", "10.2.0.1", "firing");
        let ids = post(rt, "alertmanager", am_payload(&[alert.clone(), noise])).await;
        expected.push((
            ev("alert_created", ids[0]),
            rt.server.state().events.node().to_owned(),
        ));
        let ids = post(
            other,
            "alertmanager",
            am_payload(&[with_status(&alert, "resolved")]),
        )
        .await;
        expected.push((
            ev("alert_resolved", ids[0]),
            other.server.state().events.node().to_owned(),
        ));
    }

    for client in [&mut on_first, &mut on_second] {
        let mut got = Vec::new();
        let mut last_seq: BTreeMap<String, u64> = BTreeMap::new();
        for _ in 0..expected.len() {
            let event = client.next().await;
            let node = event["node"].as_str().unwrap().to_owned();
            let seq = event["seq"].as_u64().unwrap();
            // Each node's events arrive in the order they happened there.
            let last = last_seq.insert(node.clone(), seq).unwrap_or(0);
            assert!(seq > last, "{node}: {seq} after {last}");
            got.push((
                ev(
                    event["type"].as_str().unwrap(),
                    event["alert"]["id"].as_i64().unwrap(),
                ),
                node,
            ));
        }
        // Across nodes the interleaving may differ; the events themselves may not.
        let (mut got_sorted, mut want_sorted) = (got.clone(), expected.clone());
        got_sorted.sort();
        want_sorted.sort();
        assert_eq!(
            got_sorted, want_sorted,
            "client of {}",
            client.hello["node"]
        );
    }
    // Nothing twice (a node ignores its own notifications): a last event is the next one.
    let ids = post(
        &first,
        "alertmanager",
        am_payload(&[am_alert("Last", "critical", "10.2.0.2", "firing")]),
    )
    .await;
    for client in [&mut on_first, &mut on_second] {
        assert_eq!(client.alert_events(1).await, [ev("alert_created", ids[0])]);
    }
    let stats = second.server.state().events.stats();
    assert!(stats.notifications_received > 0, "{stats:?}");
    assert_eq!(stats.gaps, 0, "{stats:?}");
    second.stop().await;
    first.stop().await;
}

/// Operators' changes through the API reach dashboards like ingest does: an acknowledgement is
/// `alert_updated`, a resolution (single or bulk) `alert_resolved`; a note is not an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_actions_are_published() {
    let rt = TestRuntime::start(Db::Sqlite, &[bundle("alertmanager")]).await;
    let mut client = connect(&rt).await;
    client
        .subscribe(&["alert_updated", "alert_resolved"], json!({}))
        .await;
    let ids = post(
        &rt,
        "alertmanager",
        am_payload(&[
            am_alert("DiskFull", "critical", "10.0.0.1", "firing"),
            am_alert("CpuHigh", "warning", "10.0.0.2", "firing"),
        ]),
    )
    .await;
    let [disk, cpu] = ids[..] else {
        panic!("{ids:?}")
    };
    let act = async |path: String, body: Value| {
        let (status, answer) = rt.send_json("POST", &path, &body).await;
        assert!(status == 200 || status == 201, "{path}: {answer}");
    };
    act(format!("/api/v1/alerts/{disk}/acknowledge"), json!({})).await;
    act(
        format!("/api/v1/alerts/{disk}/notes"),
        json!({"text": "on it"}),
    )
    .await;
    act(format!("/api/v1/alerts/{disk}/resolve"), json!({})).await;
    act(
        "/api/v1/alerts/bulk".to_owned(),
        json!({"ids": [cpu, disk], "action": "resolve"}),
    )
    .await;
    let events = client.alert_events(3).await;
    assert_eq!(
        events,
        [
            ev("alert_updated", disk),
            ev("alert_resolved", disk),
            ev("alert_resolved", cpu),
        ],
        "the bulk refusal of the resolved disk alert is not an event"
    );
    rt.stop().await;
}

/// Waits until this node has published `n` events in all.
async fn published(rt: &TestRuntime, n: u64) {
    rt.wait_for("events to be published", 60, async |rt| {
        (rt.server.state().events.stats().published >= n).then_some(())
    })
    .await;
}

/// Subscribes to alert events with `resume`, returning the answer.
async fn resume(client: &mut Client, stream: &Value, after: u64) -> Value {
    client
        .send(
            json!({"type": "subscribe", "events": ALERT_EVENTS, "filter": {},
                     "resume": {"stream": stream, "after": after}}),
        )
        .await;
    let answer = client.next().await;
    assert_eq!(answer["type"], "subscribed", "{answer}");
    answer
}

/// A client whose connection broke comes back with the last cursor it saw: what it missed is
/// replayed at once, in order, then live events follow, none twice. A cursor of another stream
/// (another node, or this one before a restart) or from the future cannot be resumed.
async fn a_reconnecting_client_resumes_where_it_left_off(db: Db) {
    let rt = TestRuntime::start(db, &[bundle("alertmanager")]).await;
    let mut first = connect(&rt).await;
    let stream = first.hello["stream"].clone();
    assert!(
        stream.as_str().is_some_and(|s| !s.is_empty()),
        "{}",
        first.hello
    );
    first.subscribe(&ALERT_EVENTS, json!({})).await;
    let a = post(
        &rt,
        "alertmanager",
        am_payload(&[am_alert("A", "critical", "10.0.1.1", "firing")]),
    )
    .await[0];
    let seen = first.next().await;
    assert_eq!(seen["alert"]["id"], a, "{seen}");
    let cursor = seen["cursor"].as_u64().expect("events carry their cursor");
    drop(first);
    rt.wait_for("the server to see the client go", 60, async |rt| {
        (rt.server.state().events.stats().clients == 0).then_some(())
    })
    .await;

    // While it is away: two alerts open and the first is acknowledged.
    let missed = post(
        &rt,
        "alertmanager",
        am_payload(&[
            am_alert("B", "major", "10.0.1.2", "firing"),
            am_alert("C", "minor", "10.0.1.3", "firing"),
        ]),
    )
    .await;
    let (status, answer) = rt
        .send_json(
            "POST",
            &format!("/api/v1/alerts/{a}/acknowledge"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    published(&rt, 4).await;

    let mut again = connect(&rt).await;
    let answer = resume(&mut again, &stream, cursor).await;
    assert_eq!(answer["resumed"], true, "{answer}");
    assert_eq!(answer["cursor"], cursor + 3, "{answer}");
    let mut cursors = Vec::new();
    let mut replayed = Vec::new();
    for _ in 0..3 {
        let event = again.next().await;
        cursors.push(event["cursor"].as_u64().unwrap());
        replayed.push((
            event["type"].as_str().unwrap().to_owned(),
            event["alert"]["id"].as_i64().unwrap(),
            event["alert"]["status"].clone(),
        ));
    }
    assert_eq!(
        replayed,
        [
            ("alert_created".to_owned(), missed[0], json!("active")),
            ("alert_created".to_owned(), missed[1], json!("active")),
            ("alert_updated".to_owned(), a, json!("acknowledged")),
        ]
    );
    assert_eq!(cursors, [cursor + 1, cursor + 2, cursor + 3]);
    // Live again, and nothing twice: the next event is the next alert.
    let d = post(
        &rt,
        "alertmanager",
        am_payload(&[am_alert("D", "info", "10.0.1.4", "firing")]),
    )
    .await[0];
    let live = again.next().await;
    assert_eq!(
        (live["type"].clone(), live["alert"]["id"].clone()),
        (json!("alert_created"), json!(d)),
        "{live}"
    );
    assert_eq!(live["cursor"], cursor + 4);

    // Not resumable: another stream's cursor, or one this stream has not reached.
    let mut other = connect(&rt).await;
    let answer = resume(&mut other, &json!("0000000000000000"), cursor).await;
    assert_eq!(answer["resumed"], false, "{answer}");
    let mut future = connect(&rt).await;
    let answer = resume(&mut future, &stream, cursor + 1000).await;
    assert_eq!(answer["resumed"], false, "{answer}");
    rt.stop().await;
}

both_databases!(resume_e2e, a_reconnecting_client_resumes_where_it_left_off);

/// Events are rendered only while someone may need them: once the last client has been gone
/// longer than `resume_grace_seconds`, what happens next never enters the stream, so a client
/// coming back after that is told to re-read rather than resumed with a hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_longer_than_the_grace_cannot_resume() {
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[bundle("alertmanager")],
        |config| config.websocket.resume_grace_seconds = 0,
        async |_| {},
    )
    .await;
    let mut first = connect(&rt).await;
    let stream = first.hello["stream"].clone();
    first.subscribe(&ALERT_EVENTS, json!({})).await;
    post(
        &rt,
        "alertmanager",
        am_payload(&[am_alert("A", "critical", "10.0.2.1", "firing")]),
    )
    .await;
    let cursor = first.next().await["cursor"].as_u64().unwrap();
    drop(first);
    rt.wait_for("the server to see the client go", 60, async |rt| {
        (rt.server.state().events.stats().clients == 0).then_some(())
    })
    .await;
    post(
        &rt,
        "alertmanager",
        am_payload(&[am_alert("B", "critical", "10.0.2.2", "firing")]),
    )
    .await;
    let mut again = connect(&rt).await;
    let answer = resume(&mut again, &stream, cursor).await;
    assert_eq!(answer["resumed"], false, "{answer}");
    rt.stop().await;
}

/// Alerts opened under a silence reach a subscription only when its filter asks for them
/// (`include_suppressed`), as a console that shows them muted does; others see what they
/// always saw.
async fn suppressed_alerts_reach_only_subscriptions_that_ask(db: Db) {
    let rt = TestRuntime::start(db, &[bundle("alertmanager")]).await;
    let now = chrono::Utc::now();
    let (status, silence) = rt
        .send_json(
            "POST",
            "/api/v1/silences",
            &json!({"matchers": {"alert_type": "Quiet"},
                    "starts_at": (now - chrono::Duration::minutes(1)).to_rfc3339(),
                    "ends_at": (now + chrono::Duration::hours(1)).to_rfc3339(),
                    "comment": "maintenance"}),
        )
        .await;
    assert_eq!(status, 201, "{silence}");
    let mut console = connect(&rt).await;
    let answer = console
        .subscribe(&ALERT_EVENTS, json!({"include_suppressed": true}))
        .await;
    assert_eq!(
        answer["subscriptions"]["alert_created"]["include_suppressed"],
        true
    );
    let mut plain = connect(&rt).await;
    plain.subscribe(&ALERT_EVENTS, json!({})).await;

    let quiet = post(
        &rt,
        "alertmanager",
        am_payload(&[am_alert("Quiet", "critical", "10.0.3.1", "firing")]),
    )
    .await[0];
    let loud = post(
        &rt,
        "alertmanager",
        am_payload(&[am_alert("Loud", "critical", "10.0.3.2", "firing")]),
    )
    .await[0];
    let event = console.next().await;
    assert_eq!(
        (
            event["alert"]["id"].clone(),
            event["alert"]["status"].clone()
        ),
        (json!(quiet), json!("suppressed")),
        "{event}"
    );
    assert_eq!(console.alert_events(1).await, [ev("alert_created", loud)]);
    // Events arrive in order: the first the plain subscription gets being the loud one proves
    // the quiet one was held back.
    assert_eq!(plain.alert_events(1).await, [ev("alert_created", loud)]);

    console
        .send(json!({"type": "subscribe", "events": ["system_status"], "filter": {"include_suppressed": true}}))
        .await;
    let refusal = console.next().await;
    assert_eq!(refusal["code"], "bad_subscription", "{refusal}");
    rt.stop().await;
}

both_databases!(
    suppressed_e2e,
    suppressed_alerts_reach_only_subscriptions_that_ask
);
