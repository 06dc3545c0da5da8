//! Per-addon webhook authentication over real HTTP, on SQLite and PostgreSQL: settings through
//! the API (secrets never shown), HMAC signatures with a timestamp window and replay refusal,
//! tokens, the client address allow list, settings that fail closed, and the counters in which
//! every webhook request lands exactly once.
//!
//! Webhooks are posted with a client that carries no API key: senders authenticate by the
//! addon's settings alone. Signatures are computed here with `hmac` directly, from the
//! documented format, not with the runtime's own helper.

use hmac::{Hmac, Mac};
use opsconductor_tests::{Db, TestRuntime, both_databases, bundle, client_with_bearer, fixture};
use serde_json::{Value, json};
use sha2::Sha256;

const ADDON: &str = "alertmanager";
const SETTINGS: &str = "/api/v1/addons/alertmanager/settings";
const HMAC_SECRET: &str = "hmac-secret-for-the-webhook-tests";
const TOKEN: &str = "token-secret-for-the-webhook-tests";

fn unix_now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

/// `sha256=` + hex HMAC-SHA256(secret, "{timestamp}." + body), as the README documents.
fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A webhook's answer: status, JSON body, `WWW-Authenticate`.
struct Answer {
    status: u16,
    body: Value,
    challenge: Option<String>,
}

impl Answer {
    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }

    /// A refusal with this status, error code and a message containing `message`; 401s carry
    /// a challenge, nothing else does.
    #[track_caller]
    fn assert_refused(&self, status: u16, code: &str, message: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["error"]["code"], code, "{}", self.body);
        assert!(
            self.message().contains(message),
            "expected `{message}` in: {}",
            self.body
        );
        assert_eq!(
            self.challenge.is_some(),
            status == 401,
            "WWW-Authenticate: {:?}",
            self.challenge
        );
    }
}

async fn post(
    client: &reqwest::Client,
    rt: &TestRuntime,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut request = client
        .post(rt.url(&format!("/webhooks/{ADDON}")))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    Answer {
        status,
        body: response.json().await.unwrap_or(Value::Null),
        challenge,
    }
}

/// Posts `body` signed at `timestamp` with `secret`.
async fn post_signed(
    client: &reqwest::Client,
    rt: &TestRuntime,
    secret: &str,
    timestamp: i64,
    body: &[u8],
) -> Answer {
    let ts = timestamp.to_string();
    let sig = signature(secret, timestamp, body);
    post(
        client,
        rt,
        &[
            ("X-OpsConductor-Timestamp", &ts),
            ("X-OpsConductor-Signature", &sig),
        ],
        body,
    )
    .await
}

/// The webhook counters, checked for "every request in exactly one counter".
async fn webhook_stats(rt: &TestRuntime) -> Value {
    let (status, stats) = rt.get_json("/api/v1/stats").await;
    assert_eq!(status, 200, "{stats}");
    let w = stats["webhooks"].clone();
    let outcomes: u64 = w
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.as_str() != "received")
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    assert_eq!(Some(outcomes), w["received"].as_u64(), "{w}");
    w
}

/// Asserts that nothing the API shows about the addon or its changes contains a secret.
async fn assert_no_secret_shown(rt: &TestRuntime) {
    for path in [
        SETTINGS,
        "/api/v1/addons/alertmanager",
        "/api/v1/addons",
        "/api/v1/audit",
    ] {
        let (status, body) = rt.get_json(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let text = body.to_string();
        for secret in [HMAC_SECRET, TOKEN] {
            assert!(!text.contains(secret), "{path} shows a secret: {text}");
        }
    }
}

async fn hmac_signed_webhooks(db: Db) {
    let rt = TestRuntime::start(db, &[bundle(ADDON)]).await;
    let sender = client_with_bearer(None);

    // No settings: no authentication, any address.
    let (status, settings) = rt.get_json(SETTINGS).await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(
        settings,
        json!({"webhook": {"auth": {"mode": "none"}, "allow_cidrs": []}})
    );

    let (status, settings) = rt
        .send_json(
            "PUT",
            SETTINGS,
            &json!({"webhook": {"auth": {"mode": "hmac", "secret": HMAC_SECRET, "tolerance_seconds": 300}}}),
        )
        .await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(
        settings,
        json!({"webhook": {"auth": {"mode": "hmac", "secret": "set", "tolerance_seconds": 300},
            "allow_cidrs": []}})
    );
    assert_eq!(rt.get_json(SETTINGS).await.1, settings);

    let body = fixture(ADDON, "firing");
    let n_alerts = serde_json::from_slice::<Value>(&body).unwrap()["alerts"]
        .as_array()
        .unwrap()
        .len();

    // Unsigned: refused before the body reaches the addon, naming the missing header.
    post(&sender, &rt, &[], &body).await.assert_refused(
        401,
        "unauthorized",
        "missing X-OpsConductor-Timestamp header",
    );
    let ts = unix_now().to_string();
    post(&sender, &rt, &[("X-OpsConductor-Timestamp", &ts)], &body)
        .await
        .assert_refused(
            401,
            "unauthorized",
            "missing X-OpsConductor-Signature header",
        );
    // The API key of an administrator is no webhook credential.
    post(&rt.http, &rt, &[], &body).await.assert_refused(
        401,
        "unauthorized",
        "missing X-OpsConductor-Timestamp header",
    );

    // Signed right: accepted and stored.
    let signed_at = unix_now();
    let accepted = post_signed(&sender, &rt, HMAC_SECRET, signed_at, &body).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(accepted.body["alerts"], n_alerts, "{}", accepted.body);
    let stored = rt.alerts("?addon=alertmanager").await;
    assert_eq!(stored.len(), n_alerts, "{stored:?}");

    // The very same request again: a replay.
    let replay = post_signed(&sender, &rt, HMAC_SECRET, signed_at, &body).await;
    replay.assert_refused(401, "unauthorized", "replayed");
    let challenge = replay.challenge.unwrap();
    assert!(
        challenge.contains("X-OpsConductor-Signature"),
        "{challenge}"
    );

    // Wrong secret, a body other than the one signed, a signature for another timestamp.
    let now = unix_now();
    post_signed(&sender, &rt, "another-secret-of-enough-length", now, &body)
        .await
        .assert_refused(401, "unauthorized", "signature does not match the body");
    let other_ts = now.to_string();
    let other_sig = signature(HMAC_SECRET, now, b"{}");
    post(
        &sender,
        &rt,
        &[
            ("X-OpsConductor-Timestamp", &other_ts),
            ("X-OpsConductor-Signature", &other_sig),
        ],
        &body,
    )
    .await
    .assert_refused(401, "unauthorized", "signature does not match the body");
    let early_sig = signature(HMAC_SECRET, now - 1, &body);
    post(
        &sender,
        &rt,
        &[
            ("X-OpsConductor-Timestamp", &other_ts),
            ("X-OpsConductor-Signature", &early_sig),
        ],
        &body,
    )
    .await
    .assert_refused(401, "unauthorized", "signature does not match the body");
    post(
        &sender,
        &rt,
        &[
            ("X-OpsConductor-Timestamp", &other_ts),
            ("X-OpsConductor-Signature", "md5=abc"),
        ],
        &body,
    )
    .await
    .assert_refused(
        401,
        "unauthorized",
        "must be `sha256=` followed by 64 hex digits",
    );

    // Correctly signed, but too old or too far ahead.
    let stale = unix_now() - 301;
    post_signed(&sender, &rt, HMAC_SECRET, stale, &body)
        .await
        .assert_refused(
            401,
            "unauthorized",
            &format!("timestamp {stale} is outside the 300 s window"),
        );
    post_signed(&sender, &rt, HMAC_SECRET, unix_now() + 400, &body)
        .await
        .assert_refused(401, "unauthorized", "outside the 300 s window");

    // None of the refusals reached the addon: the alerts occurred once.
    for alert in rt.alerts("?addon=alertmanager").await {
        assert_eq!(alert["occurrence_count"], 1, "{alert}");
    }
    // A new signature of the same body (a retry the sender signs again) is accepted.
    let again = post_signed(&sender, &rt, HMAC_SECRET, unix_now() + 1, &body).await;
    assert_eq!(again.status, 200, "{}", again.body);

    let w = webhook_stats(&rt).await;
    assert_eq!(w["received"], 12, "{w}");
    assert_eq!(w["accepted"], 2, "{w}");
    assert_eq!(w["unauthorized"], 10, "{w}");
    assert_eq!(w["forbidden"], 0, "{w}");

    let (status, addon) = rt.get_json("/api/v1/addons/alertmanager").await;
    assert_eq!(status, 200, "{addon}");
    assert_eq!(addon["webhook_path"], "alertmanager", "{addon}");
    assert_eq!(addon["manifest"]["id"], ADDON, "{addon}");
    assert_eq!(addon["ingest"]["events"], 2, "{addon}");
    assert_no_secret_shown(&rt).await;
    // The change is audited with the public views before and after.
    let (_, audit) = rt.get_json("/api/v1/audit").await;
    let entry = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "addon.settings")
        .unwrap_or_else(|| panic!("no addon.settings entry: {audit}"));
    assert_eq!(entry["target"], "addon:alertmanager", "{entry}");
    assert_eq!(
        entry["before"]["webhook"]["auth"]["mode"], "none",
        "{entry}"
    );
    assert_eq!(entry["after"], settings, "{entry}");
    rt.stop().await;
}
both_databases!(hmac_signed_webhooks_e2e, hmac_signed_webhooks);

async fn tokens_allow_lists_and_validation(db: Db) {
    let rt = TestRuntime::start(db, &[bundle(ADDON)]).await;
    let sender = client_with_bearer(None);
    let body = fixture(ADDON, "firing");

    let (status, answer) = rt
        .send_json(
            "PUT",
            SETTINGS,
            &json!({"webhook": {"auth": {"mode": "token", "secret": TOKEN}}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["webhook"]["auth"]["secret"], "set", "{answer}");

    let bearer = format!("Bearer {TOKEN}");
    for headers in [
        [("X-OpsConductor-Token", TOKEN)],
        [("Authorization", bearer.as_str())],
    ] {
        let ok = post(&sender, &rt, &headers, &body).await;
        assert_eq!(ok.status, 200, "{headers:?}: {}", ok.body);
    }
    let wrong = post(
        &sender,
        &rt,
        &[("X-OpsConductor-Token", "not-the-token")],
        &body,
    )
    .await;
    wrong.assert_refused(401, "unauthorized", "token does not match");
    assert!(wrong.challenge.unwrap().starts_with("Bearer"));
    post(&sender, &rt, &[], &body).await.assert_refused(
        401,
        "unauthorized",
        "missing X-OpsConductor-Token header",
    );
    // The administrator's API key as bearer is not the token.
    post(&rt.http, &rt, &[], &body).await.assert_refused(
        401,
        "unauthorized",
        "token does not match",
    );

    // Networks that exclude the test's loopback address; no secret given keeps the token.
    let (status, answer) = rt
        .send_json(
            "PUT",
            SETTINGS,
            &json!({"webhook": {"auth": {"mode": "token"}, "allow_cidrs": ["10.0.0.0/8"]}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"webhook": {"auth": {"mode": "token", "secret": "set"}, "allow_cidrs": ["10.0.0.0/8"]}})
    );
    post(&sender, &rt, &[("X-OpsConductor-Token", TOKEN)], &body)
        .await
        .assert_refused(403, "forbidden", "client address 127.0.0.1 is not allowed");

    // Sending back what GET showed ("set") keeps the token too; loopback allowed again.
    let mut shown = rt.get_json(SETTINGS).await.1;
    shown["webhook"]["allow_cidrs"] = json!(["127.0.0.1/32", "::1/128"]);
    let (status, answer) = rt.send_json("PUT", SETTINGS, &shown).await;
    assert_eq!(status, 200, "{answer}");
    let ok = post(&sender, &rt, &[("X-OpsConductor-Token", TOKEN)], &body).await;
    assert_eq!(ok.status, 200, "the token was kept: {}", ok.body);

    // Refused changes name the field (and never echo a secret); nothing changes.
    let refusals = [
        (
            json!({"webhook": {"auth": {"mode": "hmac", "secret": "too-short"}}}),
            422,
            "field `webhook.auth.secret`",
        ),
        (
            json!({"webhook": {"auth": {"mode": "token", "secret": TOKEN}, "allow_cidrs": ["10.0.0.0/33"]}}),
            422,
            "field `webhook.allow_cidrs[0]`",
        ),
        (
            json!({"webhook": {"auth": {"mode": "hmac", "secret": HMAC_SECRET, "tolerance_seconds": 0}}}),
            422,
            "field `webhook.auth.tolerance_seconds`",
        ),
        (
            json!({"webhook": {"auth": {"mode": "sha1"}}}),
            422,
            "field `webhook.auth.mode`",
        ),
        (
            json!({"webhook": {"auth": {"mode": "none"}, "allowed": []}}),
            422,
            "unknown field `allowed`",
        ),
        (
            json!({"webhook": {"auth": {"mode": "none", "secret": TOKEN}}}),
            422,
            "field `webhook.auth.secret`",
        ),
    ];
    for (input, status, message) in refusals {
        let (got, answer) = rt.send_json("PUT", SETTINGS, &input).await;
        assert_eq!(got, status, "{input}: {answer}");
        let text = answer["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{input}: {answer}");
        assert!(
            !text.contains(TOKEN) && !text.contains(HMAC_SECRET),
            "{answer}"
        );
    }
    let (status, answer) = rt
        .send_json("PUT", "/api/v1/addons/nope/settings", &json!({}))
        .await;
    assert_eq!(status, 404, "{answer}");
    let response = rt
        .http
        .put(rt.url(SETTINGS))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(rt.get_json(SETTINGS).await.1, shown);

    // Authentication off again: anyone may post.
    let (status, answer) = rt
        .send_json(
            "PUT",
            SETTINGS,
            &json!({"webhook": {"auth": {"mode": "none"}}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let open = post(&sender, &rt, &[], &body).await;
    assert_eq!(open.status, 200, "{}", open.body);

    let w = webhook_stats(&rt).await;
    assert_eq!(w["accepted"], 4, "{w}");
    assert_eq!(w["unauthorized"], 3, "{w}");
    assert_eq!(w["forbidden"], 1, "{w}");
    assert_no_secret_shown(&rt).await;
    rt.stop().await;
}
both_databases!(
    tokens_allow_lists_and_validation_e2e,
    tokens_allow_lists_and_validation
);

/// Settings the runtime cannot use (written behind the API's back) refuse every webhook with
/// 503 instead of leaving it open; the watcher picks up changes made outside this node's API.
async fn unusable_settings_fail_closed(db: Db) {
    let rt = TestRuntime::start(db, &[bundle(ADDON)]).await;
    let sender = client_with_bearer(None);
    let body = fixture(ADDON, "firing");
    rt.server
        .state()
        .store
        .set_addon_settings(
            ADDON,
            &json!({"webhook": {"auth": {"mode": "hmac"}}}),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let refused = rt
        .wait_for("the registry to load the broken settings", 10, async |rt| {
            let answer = post(&sender, rt, &[], &body).await;
            (answer.status != 200).then_some(answer)
        })
        .await;
    refused.assert_refused(503, "webhook_misconfigured", "settings cannot be used");
    let (status, answer) = rt.get_json(SETTINGS).await;
    assert_eq!(status, 500, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("field `webhook.auth.secret`"),
        "{answer}"
    );
    // A secret cannot be kept from unusable settings: the change must give one.
    let (status, answer) = rt
        .send_json(
            "PUT",
            SETTINGS,
            &json!({"webhook": {"auth": {"mode": "hmac"}}}),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    let (status, answer) = rt
        .send_json(
            "PUT",
            SETTINGS,
            &json!({"webhook": {"auth": {"mode": "hmac", "secret": HMAC_SECRET}}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let ok = post_signed(&sender, &rt, HMAC_SECRET, unix_now(), &body).await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    let w = webhook_stats(&rt).await;
    // Posts accepted while the registry had not yet seen the broken settings count as such.
    assert_eq!(w["misconfigured"], 1, "{w}");
    assert_eq!(w["unauthorized"], 0, "{w}");
    rt.stop().await;
}
both_databases!(
    unusable_settings_fail_closed_e2e,
    unusable_settings_fail_closed
);

/// Enabling and disabling through the API takes effect on this node before the answer.
async fn enable_and_disable(db: Db) {
    let rt = TestRuntime::start(db, &[bundle(ADDON)]).await;
    let sender = client_with_bearer(None);
    let body = fixture(ADDON, "firing");

    let (status, addon) = rt
        .send_json("POST", "/api/v1/addons/alertmanager/disable", &json!({}))
        .await;
    assert_eq!(status, 200, "{addon}");
    assert_eq!(
        (addon["enabled"].clone(), addon["loaded"].clone()),
        (json!(false), json!(false)),
        "{addon}"
    );
    post(&sender, &rt, &[], &body).await.assert_refused(
        404,
        "not_found",
        "no enabled addon handles webhook path",
    );

    let (status, addon) = rt
        .send_json("POST", "/api/v1/addons/alertmanager/enable", &json!({}))
        .await;
    assert_eq!(status, 200, "{addon}");
    assert_eq!(
        (addon["enabled"].clone(), addon["loaded"].clone()),
        (json!(true), json!(true)),
        "{addon}"
    );
    assert_eq!(post(&sender, &rt, &[], &body).await.status, 200);

    for path in ["/api/v1/addons/nope", "/api/v1/addons/nope/settings"] {
        assert_eq!(rt.get_json(path).await.0, 404, "{path}");
    }
    let (status, _) = rt
        .send_json("POST", "/api/v1/addons/nope/enable", &json!({}))
        .await;
    assert_eq!(status, 404);
    rt.stop().await;
}
both_databases!(enable_and_disable_e2e, enable_and_disable);
