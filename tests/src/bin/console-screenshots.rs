//! Screenshots of every screen of the console, in the light and the dark theme, for
//! docs/dashboard.md: a runtime in this process with a small realistic data set (alerts from
//! webhooks and a trap, a silence, a poll target, users, an API key), driven in chromium.
//!
//! `just screenshots` runs it; the pictures go to docs/dashboard/ (`--out DIR` elsewhere).

use std::path::PathBuf;
use std::time::Duration;

use opsconductor::auth::{Actor, Role, Secret};
use opsconductor_tests::browser::{Browser, Driver};
use opsconductor_tests::{Db, TestRuntime, bundle, fixture};
use serde_json::{Value, json};

const PASSWORD: &str = "screenshot-password";

fn am(name: &str, severity: &str, host: &str, extra: Value) -> Value {
    let mut labels = json!({"alertname": name, "severity": severity, "instance": format!("{host}:9100"), "job": "node"});
    for (k, v) in extra.as_object().unwrap() {
        labels[k] = v.clone();
    }
    json!({
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": format!("{name} on {host}"), "description": format!("{name} has been firing on {host} for 5 minutes.")},
        "startsAt": "2026-12-03T21:40:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
    })
}

async fn post(rt: &TestRuntime, alerts: Vec<Value>) -> Vec<i64> {
    let mut body: Value = serde_json::from_slice(&fixture("alertmanager", "firing")).unwrap();
    body["alerts"] = Value::Array(alerts);
    let (status, answer) = rt
        .post_webhook("alertmanager", serde_json::to_vec(&body).unwrap())
        .await;
    assert_eq!(status, 200, "{answer}");
    answer["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["alert_id"].as_i64())
        .collect()
}

async fn shoot(browser: &Browser, out: &std::path::Path, name: &str, theme: &str) {
    // Let highlights fade and relative times settle.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let png = browser.client.screenshot().await.unwrap();
    std::fs::write(out.join(format!("{name}-{theme}.png")), png).unwrap();
}

#[tokio::main]
async fn main() {
    let mut out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--out" => out = PathBuf::from(args.next().expect("--out DIR")),
            other => panic!("unknown flag {other}"),
        }
    }
    std::fs::create_dir_all(&out).unwrap();
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[
            bundle("alertmanager"),
            bundle("if-mib"),
            bundle("http-json"),
            bundle("grafana"),
        ],
        |config| config.log = "warn".into(),
        async |_| {},
    )
    .await;
    let auth = &rt.server.state().auth;
    for (name, role) in [
        ("ada", Role::Admin),
        ("olive", Role::Operator),
        ("vic", Role::Viewer),
    ] {
        auth.create_user(name, role, Some(&Secret::new(PASSWORD)), &Actor::system())
            .await
            .unwrap();
    }
    auth.create_api_key("grafana-sync", Role::Service, None, &Actor::system())
        .await
        .unwrap();

    let mut alerts = Vec::new();
    for (i, (name, severity, host, site)) in [
        ("NodeDown", "critical", "10.20.0.11", "paris"),
        ("NodeDown", "critical", "10.20.0.12", "paris"),
        ("DiskFull", "major", "10.20.1.4", "paris"),
        ("HighLatency", "major", "10.30.0.7", "london"),
        ("CpuHigh", "minor", "10.30.0.8", "london"),
        ("CpuHigh", "minor", "10.30.0.9", "london"),
        ("MemoryHigh", "warning", "10.40.2.1", "frankfurt"),
        ("CertExpiring", "warning", "10.40.2.2", "frankfurt"),
        ("BackupFailed", "info", "10.40.2.3", "frankfurt"),
        ("QueueBacklog", "major", "10.20.3.3", "paris"),
    ]
    .into_iter()
    .enumerate()
    {
        let team = ["core", "edge", "platform"][i % 3];
        alerts.push(am(
            name,
            severity,
            host,
            json!({"site": site, "team": team}),
        ));
    }
    let ids = post(&rt, alerts).await;
    // Repeats, an acknowledgement and a note.
    post(
        &rt,
        vec![am(
            "CpuHigh",
            "minor",
            "10.30.0.8",
            json!({"site": "london", "team": "core"}),
        )],
    )
    .await;
    rt.send_json(
        "POST",
        &format!("/api/v1/alerts/{}/acknowledge", ids[2]),
        &json!({"note": "replacing the disk tonight"}),
    )
    .await;
    rt.send_json(
        "POST",
        &format!("/api/v1/alerts/{}/notes", ids[2]),
        &json!({"text": "vendor case 81723 opened"}),
    )
    .await;
    let now = chrono::Utc::now();
    rt.send_json(
        "POST",
        "/api/v1/silences",
        &json!({"matchers": {"alert_type": "BackupFailed"}, "starts_at": (now - chrono::Duration::minutes(5)).to_rfc3339(),
                "ends_at": (now + chrono::Duration::hours(8)).to_rfc3339(), "comment": "backup window, see change 2211"}),
    )
    .await;
    post(
        &rt,
        vec![am(
            "BackupFailed",
            "info",
            "10.40.2.5",
            json!({"site": "frankfurt"}),
        )],
    )
    .await;
    rt.send_json(
        "POST",
        "/api/v1/targets",
        &json!({"name": "core-api", "address": "127.0.0.1:9", "addon_id": "http-json", "schedule": {"interval_seconds": 300}, "config": {"path": "health"}}),
    )
    .await;
    rt.send_json("POST", "/api/v1/targets/1/poll", &json!({}))
        .await;
    rt.wait_for("the target's first poll", 60, async |rt| {
        let (_, t) = rt.get_json("/api/v1/targets/1").await;
        t["status"]["last_poll_status"].as_str().map(|_| ())
    })
    .await;

    let driver = Driver::start().await;
    let browser = driver.browser(&rt.url(""), 1280, 800).await;
    browser.open("/login").await;
    browser.el("login-username").await;
    for theme in ["light", "dark"] {
        browser
            .eval(
                "localStorage.setItem('oc.theme', arguments[0]); return true;",
                vec![json!(theme)],
            )
            .await;
        browser.open("/login").await;
        browser.el("login-username").await;
        shoot(&browser, &out, "sign-in", theme).await;
    }
    browser.sign_in("ada", PASSWORD).await;
    let screens: [(&str, &str, &str); 12] = [
        ("console", "/", "alert-row"),
        (
            "console-grouped",
            "/?group=device&q=site%3Dparis",
            "alert-row",
        ),
        (
            "console-detail",
            &format!("/?alert={}", ids[2]),
            "alert-detail",
        ),
        ("silences", "/silences", "silence-row"),
        (
            "silence-editor",
            &format!("/silences/new?alert={}", ids[0]),
            "silence-preview-count",
        ),
        ("addons", "/addons", "addon-row"),
        ("addon", "/addons/alertmanager", "live-indicator"),
        ("targets", "/targets", "target-row"),
        ("admin-users", "/admin/users", "live-indicator"),
        ("admin-audit", "/admin/audit", "live-indicator"),
        ("system", "/system", "live-indicator"),
        ("shortcuts", "/", "alert-row"),
    ];
    for theme in ["light", "dark"] {
        browser
            .eval(
                "localStorage.setItem('oc.theme', arguments[0]); return true;",
                vec![json!(theme)],
            )
            .await;
        for (name, path, wait) in &screens {
            browser.open(path).await;
            browser.el(wait).await;
            if *name == "shortcuts" {
                browser.css("body").await.send_keys("?").await.unwrap();
                browser.css("dialog[open]").await;
            }
            shoot(&browser, &out, name, theme).await;
        }
    }
    browser.close().await;
    let phone = driver.browser(&rt.url(""), 390, 844).await;
    phone.sign_in("olive", PASSWORD).await;
    for theme in ["light", "dark"] {
        phone
            .eval(
                "localStorage.setItem('oc.theme', arguments[0]); return true;",
                vec![json!(theme)],
            )
            .await;
        phone.open("/").await;
        phone.el("alert-row").await;
        shoot(&phone, &out, "phone-console", theme).await;
        phone.open(&format!("/?alert={}", ids[0])).await;
        phone.el("alert-detail").await;
        shoot(&phone, &out, "phone-detail", theme).await;
    }
    phone.close().await;
    drop(driver);
    rt.stop().await;
    println!("screenshots in {}", out.display());
}
