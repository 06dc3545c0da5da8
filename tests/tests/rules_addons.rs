//! Rules addons (docs/rules.md) end to end: bundles without `addon.wasm`, signed, uploaded
//! through the API (which runs their fixtures on the rules engine), enabled, and then fed a
//! real webhook, a real net-snmp trap and a poll of an HTTP peer on loopback. What runs them is
//! the rules engine component in the same sandbox as compiled addons.

use std::path::Path;
use std::process::Command;

use axum::Router;
use axum::routing::get;
use opsconductor::bundle::{self, public_key_base64};
use opsconductor_tests::{Db, TestRuntime, bundle as bundle_dir, fixture};
use serde_json::{Value, json};

fn key() -> bundle::SigningKey {
    bundle::SigningKey::from_bytes(&[42; 32])
}

/// A runtime that installs only bundles signed by [`key`].
async fn start() -> TestRuntime {
    let trusted = public_key_base64(&key().verifying_key());
    TestRuntime::start_configured(
        Db::Sqlite,
        &[],
        |config| {
            config.bundles.trusted_keys = vec![trusted];
            config.bundles.require_signatures = true;
        },
        async |store| {
            store
                .snmp_set_community("test", "public", chrono::Utc::now())
                .await
                .unwrap();
        },
    )
    .await
}

/// Signs the bundle directory, uploads it, checks that its fixtures ran, and enables it.
async fn install_signed(rt: &TestRuntime, dir: &Path, fixtures: u64) {
    let (_, bytes) = bundle::pack_bytes(dir, Some(&key())).unwrap();
    let response = rt
        .http
        .post(rt.url("/api/v1/addons"))
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["signer"]["status"], "trusted", "{body}");
    assert_eq!(body["fixtures_passed"], fixtures, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = rt
        .send_json("POST", &format!("/api/v1/addons/{id}/enable"), &json!({}))
        .await;
    assert!(status < 300, "{status} {body}");
    rt.wait_for(&format!("{id} to load"), 30, async |rt| {
        (rt.addon(&id).await["loaded"] == true).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_rules_bundle_raises_alerts_from_a_webhook() {
    let rt = start().await;
    install_signed(&rt, &bundle_dir("alertmanager-rules"), 4).await;

    let (status, answer) = rt
        .post_webhook("alertmanager-rules", fixture("alertmanager", "firing"))
        .await;
    assert_eq!(status, 200, "{answer}");
    let alerts = rt.alerts("?addon=alertmanager-rules&status=active").await;
    assert!(!alerts.is_empty(), "{answer}");
    assert!(
        alerts
            .iter()
            .all(|a| a["addon_id"] == "alertmanager-rules" && a["alert_type"].is_string()),
        "{alerts:?}"
    );

    // A payload the rules refuse is answered as the compiled addon answers it.
    let (status, answer) = rt
        .post_webhook(
            "alertmanager-rules",
            &br#"{"alerts": {"not": "a list"}}"#[..],
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer.to_string().contains("expected array at /alerts"),
        "{answer}"
    );
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_rules_bundle_raises_alerts_from_a_net_snmp_trap() {
    let rt = start().await;
    install_signed(&rt, &bundle_dir("if-mib-rules"), 6).await;

    let target = format!("udp:{}", rt.trap_addr());
    let mut args: Vec<String> = [
        "-v",
        "2c",
        "-c",
        "public",
        &target,
        "",
        "1.3.6.1.6.3.1.1.5.3",
    ]
    .map(str::to_owned)
    .to_vec();
    for (oid, value) in [
        ("1.3.6.1.2.1.2.2.1.1.7", "7"),
        ("1.3.6.1.2.1.2.2.1.7.7", "1"),
        ("1.3.6.1.2.1.2.2.1.8.7", "2"),
    ] {
        args.extend([oid.to_owned(), "i".to_owned(), value.to_owned()]);
    }
    let output = Command::new("snmptrap")
        .args(&args)
        .env("MIBS", "")
        .output()
        .expect("snmptrap runs (apt-get install snmp)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let alert = rt
        .wait_for("the linkDown from the rules addon", 30, async |rt| {
            rt.alerts("?addon=if-mib-rules&status=active")
                .await
                .into_iter()
                .next()
        })
        .await;
    assert_eq!(alert["alert_type"], "linkDown", "{alert}");
    assert_eq!(alert["device_ip"], "127.0.0.1", "{alert}");
    assert_eq!(alert["fields"]["ifIndex"], "7", "{alert}");
    assert_eq!(alert["severity"], "major", "{alert}");
    rt.stop().await;
}

/// A rules addon that polls: the manifest fetches `/health` from the target and the rules read
/// the answer. Written here, fixtures and all, as an operator would write one.
fn health_rules_bundle() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let manifest = json!({
        "id": "health-rules",
        "name": "Health endpoint (rules)",
        "version": "1.0.0",
        "world": opsconductor::manifest::WORLD_RULES,
        "methods": ["api_poll"],
        "poll": {
            "default_interval_seconds": 60,
            "timeout_ms": 5000,
            "mode": "declarative",
            "fetch": [{"name": "health", "kind": "http", "method": "GET", "path": "/health"}]
        },
        "parse": {"rules": [{
            "name": "the status field",
            "when": {"path": "fetched.health.ok", "equals": true},
            "let": {"status": "{fetched.health.body.status | lower}"},
            "alert": {
                "type": "statusNotOk",
                "title": "{target.name}: status {@status | default:'missing'}",
                "severity": "major",
                "clears": {"path": "@status", "equals": "ok"},
                "fields": {"status": "{@status}"}
            }
        }]},
        "alerts": {"default_severity": "warning", "default_category": "application"},
        "capabilities": {"memory_mb": 64, "cpu_ms": 1000, "timeout_ms": 5000, "instances": 1}
    });
    std::fs::write(
        dir.path().join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    let fixtures = dir.path().join("fixtures");
    std::fs::create_dir(&fixtures).unwrap();
    let input = json!({
        "target": {"id": "1", "name": "api", "address": "198.51.100.7:8080", "config": {}},
        "started_at": "2026-01-02T03:04:05Z",
        "fetched": [{"name": "health", "http": {"status": 200, "headers": {}, "json": {"status": "DOWN"}}}]
    });
    std::fs::write(fixtures.join("down.input.poll.json"), input.to_string()).unwrap();
    let expected = json!([{
        "action": "raise", "alert_type": "statusNotOk", "category": "application",
        "device_ip": "198.51.100.7", "device_name": "api",
        "fields": {"status": "down"}, "message": "", "occurred_at": null,
        "severity": "major", "title": "api: status down"
    }]);
    std::fs::write(fixtures.join("down.expected.json"), expected.to_string()).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_rules_bundle_raises_and_clears_alerts_from_polls() {
    let health = std::sync::Arc::new(std::sync::Mutex::new(json!({"status": "ok"})));
    let served = health.clone();
    let app = Router::new().route(
        "/health",
        get(async move || axum::Json(served.lock().unwrap().clone())),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let rt = start().await;
    let bundle = health_rules_bundle();
    install_signed(&rt, bundle.path(), 1).await;
    let (status, target) = rt
        .send_json(
            "POST",
            "/api/v1/targets",
            &json!({
                "name": "api-1",
                "address": format!("127.0.0.1:{}", addr.port()),
                "addon_id": "health-rules",
                "schedule": {"interval_seconds": 1},
                "config": {}
            }),
        )
        .await;
    assert_eq!(status, 201, "{target}");

    *health.lock().unwrap() = json!({"status": "DEGRADED"});
    let alert = rt
        .wait_for("statusNotOk from the rules addon", 30, async |rt| {
            rt.alerts("?addon=health-rules&status=active")
                .await
                .into_iter()
                .find(|a| a["alert_type"] == "statusNotOk")
        })
        .await;
    assert_eq!(alert["title"], "api-1: status degraded", "{alert}");
    assert_eq!(alert["device_ip"], "127.0.0.1", "{alert}");

    *health.lock().unwrap() = json!({"status": "ok"});
    rt.wait_for("the alert to clear", 30, async |rt| {
        rt.alerts("?addon=health-rules&status=active")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    rt.stop().await;
    peer.abort();
}

/// Rules are held to the manifest's limits like code: a rules addon given 5 ms of CPU and a
/// payload whose rules take far longer is stopped by the sandbox's CPU deadline, answered 500
/// with the reason, counted, and the addon (and the runtime) answer the next event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_held_to_the_sandboxs_limits() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("greedy-rules");
    std::fs::create_dir_all(bundle.join("fixtures")).unwrap();
    let manifest = json!({
        "id": "greedy-rules", "name": "Greedy", "version": "1.0.0",
        "world": opsconductor::manifest::WORLD_RULES,
        "methods": ["webhook"],
        "webhook": {"path": "greedy-rules", "max_body_bytes": 2_097_152, "format": "json"},
        "parse": {"rules": [{
            "for_each": "body.items",
            "when": {"path": "name", "matches": "^(item|node)-[0-9]+(-[a-z]+)*$"},
            "alert": {"type": "seen", "device": "{name}", "title": "{name | upper}"}
        }]},
        "alerts": {"default_severity": "info", "default_category": "test"},
        "capabilities": {"memory_mb": 256, "cpu_ms": 5, "timeout_ms": 5000, "instances": 1}
    });
    std::fs::write(bundle.join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::write(
        bundle.join("fixtures/one.input.json"),
        r#"{"items": [{"name": "item-1"}]}"#,
    )
    .unwrap();
    std::fs::write(
        bundle.join("fixtures/one.expected.json"),
        json!([{"action": "raise", "alert_type": "seen", "category": "test",
                "device_ip": null, "device_name": "item-1", "fields": {}, "message": "",
                "occurred_at": null, "severity": "info", "title": "ITEM-1"}])
        .to_string(),
    )
    .unwrap();
    let rt = TestRuntime::start(Db::Sqlite, &[bundle]).await;

    let items: Vec<Value> = (0..40_000)
        .map(|i| json!({"name": format!("item-{i}-abc-def")}))
        .collect();
    let (status, answer) = rt
        .post_webhook("greedy-rules", json!({ "items": items }).to_string())
        .await;
    assert_eq!(status, 500, "{answer}");
    assert_eq!(answer["error"]["code"], "addon_cpu_deadline", "{answer}");

    let (status, answer) = rt
        .post_webhook("greedy-rules", &br#"{"items": [{"name": "item-2"}]}"#[..])
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(rt.addon("greedy-rules").await["calls"]["cpu_deadlines"], 1);
    rt.stop().await;
}
