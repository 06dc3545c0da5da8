//! The console in a real browser: Debian's chromium, headless, over WebDriver, against a real
//! runtime serving the built dashboard. Alerts come from real webhooks and real `snmptrap`s and
//! reach the page live; what one operator does shows in another's browser live; a viewer sees
//! no controls to act with; an administrator uploads a bundle whose failing fixture shows its
//! difference, and polls a target now. Every step saves a screenshot in
//! target/browser-screenshots/.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opsconductor::auth::{Actor, Role, Secret};
use opsconductor_tests::browser::{Browser, Driver, testid};
use opsconductor_tests::{Db, TestRuntime, bundle, fixture};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
const LINK_DOWN: &str = "1.3.6.1.6.3.1.1.5.3";

async fn user(rt: &TestRuntime, name: &str, role: Role) {
    rt.server
        .state()
        .auth
        .create_user(name, role, Some(&Secret::new(PASSWORD)), &Actor::system())
        .await
        .unwrap();
}

fn am_alert(name: &str, severity: &str, host: &str, status: &str) -> Value {
    json!({
        "status": status,
        "labels": {"alertname": name, "severity": severity, "instance": format!("{host}:9100"), "job": "node"},
        "annotations": {"summary": format!("{name} on {host}")},
        "startsAt": "2026-12-01T09:12:45.123Z",
        "endsAt": "0001-01-01T00:00:00Z",
    })
}

/// Posts Alertmanager alerts through the real webhook; the ids of the alerts they touched.
async fn post(rt: &TestRuntime, alerts: &[Value]) -> Vec<i64> {
    let mut body: Value = serde_json::from_slice(&fixture("alertmanager", "firing")).unwrap();
    body["alerts"] = Value::Array(alerts.to_vec());
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

fn row(id: i64) -> String {
    format!("{}[data-alert-id=\"{id}\"]", testid("alert-row"))
}

/// Waits until the row of alert `id` shows `status`.
async fn until_row_status(browser: &Browser, id: i64, status: &str) {
    browser
        .until(
            &format!("alert {id} to show {status}"),
            "const r = document.querySelector(arguments[0]); \
             return r !== null && r.dataset.status === arguments[1];",
            vec![json!(row(id)), json!(status)],
        )
        .await;
}

/// Marks the page, so that a later check can tell it was never reloaded.
async fn mark_page(browser: &Browser) {
    browser
        .eval("window.__notReloaded = true; return true;", vec![])
        .await;
}

async fn assert_not_reloaded(browser: &Browser) {
    assert_eq!(
        browser
            .eval("return window.__notReloaded === true;", vec![])
            .await,
        json!(true),
        "the page was reloaded"
    );
}

async fn alert(rt: &TestRuntime, id: i64) -> Value {
    let (status, alert) = rt.get_json(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(status, 200, "{alert}");
    alert
}

/// Sends a v2c linkDown for interface `index` with net-snmp's `snmptrap`.
fn snmptrap(rt: &TestRuntime, index: u32) {
    let target = rt.trap_addr().to_string();
    let mut args: Vec<String> = [
        "-v", "2c", "-c", "public", "-r", "0", "-t", "5", &target, "", LINK_DOWN,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for (oid, value) in [
        (format!("1.3.6.1.2.1.2.2.1.1.{index}"), index),
        (format!("1.3.6.1.2.1.2.2.1.7.{index}"), 1),
        (format!("1.3.6.1.2.1.2.2.1.8.{index}"), 2),
    ] {
        args.extend([oid, "i".to_owned(), value.to_string()]);
    }
    let output = Command::new("snmptrap")
        .args(&args)
        .env("MIBS", "")
        .output()
        .unwrap_or_else(|e| panic!("cannot run snmptrap ({e}): apt-get install snmp"));
    assert!(
        output.status.success(),
        "snmptrap failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Sign-in; a webhook's alert and a trap's alert appear without a reload; an acknowledgement
/// in one browser shows in another live; a bulk resolution; a silence made from an alert
/// suppresses its next occurrence; the filter in the URL survives a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_work_alerts_live() {
    let rt = TestRuntime::start_with(
        Db::Sqlite,
        &[bundle("alertmanager"), bundle("if-mib")],
        async |store| {
            store
                .snmp_set_community("test", "public", chrono::Utc::now())
                .await
                .unwrap()
        },
    )
    .await;
    user(&rt, "olive", Role::Operator).await;
    user(&rt, "ada", Role::Admin).await;
    let driver = Driver::start().await;
    let a = driver.browser(&rt.url(""), 1400, 900).await;

    // Sign in; a wrong password is refused with the API's message.
    a.open("/").await;
    a.el("login-username").await;
    a.screenshot("01-sign-in").await;
    a.fill("login-username", "olive").await;
    a.fill("login-password", "wrong").await;
    a.click("sign-in").await;
    a.el("login-error").await;
    a.sign_in("olive", PASSWORD).await;
    a.screenshot("02-console-empty").await;
    mark_page(&a).await;

    // A webhook's alert, live.
    let disk = post(
        &rt,
        &[am_alert("DiskFull", "critical", "10.20.0.1", "firing")],
    )
    .await[0];
    a.css(&row(disk)).await;
    a.until_text("count-critical", "1").await;
    // A trap's alert, live.
    snmptrap(&rt, 7);
    let trap = rt
        .wait_for("the trap's alert", 30, async |rt| {
            rt.alerts("?addon=if-mib")
                .await
                .first()
                .map(|a| a["id"].as_i64().unwrap())
        })
        .await;
    a.css(&row(trap)).await;
    assert_not_reloaded(&a).await;
    a.screenshot("03-webhook-and-trap-alerts-live").await;

    // A second operator (the administrator, in a browser of her own) sees the same; the
    // first acknowledges, and the second sees it without a reload.
    let b = driver.browser(&rt.url(""), 1400, 900).await;
    b.sign_in("ada", PASSWORD).await;
    mark_page(&b).await;
    until_row_status(&b, disk, "active").await;
    a.css(&row(disk)).await.click().await.unwrap();
    a.el("alert-detail").await;
    a.click("action-acknowledge").await;
    until_row_status(&b, disk, "acknowledged").await;
    assert_not_reloaded(&b).await;
    assert_eq!(alert(&rt, disk).await["acknowledged_by"], "user:olive");
    a.until_text("alert-status", "acknowledged").await;
    a.screenshot("04-acknowledged-detail").await;
    b.screenshot("05-acknowledgement-seen-live").await;

    // Bulk: tick three alerts, resolve them together; both browsers lose them.
    let cpu = post(
        &rt,
        &[
            am_alert("CpuHigh", "warning", "10.30.0.1", "firing"),
            am_alert("CpuHigh", "warning", "10.30.0.2", "firing"),
            am_alert("CpuHigh", "warning", "10.30.0.3", "firing"),
        ],
    )
    .await;
    a.open("/").await;
    for id in &cpu {
        let checkbox = a
            .css(&format!("{} {}", row(*id), testid("row-select")))
            .await;
        checkbox.click().await.unwrap();
    }
    a.screenshot("06-three-selected").await;
    a.click("bulk-resolve").await;
    a.click("confirm-ok").await;
    for id in &cpu {
        a.until_gone("a resolved alert to leave", &row(*id)).await;
        b.until_gone("a resolved alert to leave the other browser", &row(*id))
            .await;
        assert_eq!(alert(&rt, *id).await["status"], "resolved");
    }
    a.screenshot("07-bulk-resolved").await;

    // "Silence alerts like this": the editor comes filled in from the alert, its preview
    // counts the alert; once saved, the problem's next occurrence opens suppressed.
    let flap = post(&rt, &[am_alert("Flapping", "major", "10.40.0.1", "firing")]).await[0];
    a.css(&row(flap)).await.click().await.unwrap();
    a.click("action-silence-like-this").await;
    a.until(
        "the preview to count the alert",
        "const e = document.querySelector(arguments[0]); \
         return e !== null && parseInt(e.textContent, 10) >= 1;",
        vec![json!(testid("silence-preview-count"))],
    )
    .await;
    a.fill("silence-comment", "flapping link, carrier ticket 4711")
        .await;
    a.screenshot("08-silence-from-alert").await;
    a.click("silence-save").await;
    rt.wait_for("the silence to be stored", 30, async |rt| {
        let (_, silences) = rt.get_json("/api/v1/silences").await;
        (silences["items"].as_array().map_or(0, Vec::len) == 1).then_some(())
    })
    .await;
    post(
        &rt,
        &[am_alert("Flapping", "major", "10.40.0.1", "resolved")],
    )
    .await;
    let again = post(&rt, &[am_alert("Flapping", "major", "10.40.0.1", "firing")]).await[0];
    assert_ne!(again, flap, "a recurrence opens a new alert");
    assert_eq!(alert(&rt, again).await["status"], "suppressed");
    a.open("/").await;
    until_row_status(&a, again, "suppressed").await;
    a.screenshot("09-next-occurrence-suppressed").await;

    // "Silence alerts like this" opened straight from its address (a reload, a shared link)
    // reads the alert itself.
    a.open(&format!("/silences/new?alert={disk}")).await;
    a.until(
        "the editor to be filled in from the alert",
        "const e = document.querySelector(arguments[0]); \
         return e !== null && parseInt(e.textContent, 10) >= 1;",
        vec![json!(testid("silence-preview-count"))],
    )
    .await;

    // The filter lives in the URL and survives a reload.
    a.open("/").await;
    let filter = r#"severity=critical device=~"10.20.*""#;
    a.fill("filter-input", &format!("{filter}\u{E007}")).await;
    a.until_text("alert-total", "1").await;
    let url = a.client.current_url().await.unwrap();
    assert!(url.query().is_some_and(|q| q.contains("q=")), "{url}");
    a.client.refresh().await.unwrap();
    a.until_text("alert-total", "1").await;
    let value = a
        .eval(
            "return document.querySelector(arguments[0]).value;",
            vec![json!(testid("filter-input"))],
        )
        .await;
    assert_eq!(value, filter, "the filter is back after the reload");
    a.css(&row(disk)).await;
    assert_eq!(a.count(&testid("alert-row")).await, 1);
    a.screenshot("10-filter-after-reload").await;
    // Everything ran under the strict Content-Security-Policy, with nothing refused.
    assert_eq!(a.csp_violations().await, Vec::<String>::new());
    assert_eq!(b.csp_violations().await, Vec::<String>::new());

    a.close().await;
    b.close().await;
    drop(driver);
    rt.stop().await;
}

/// A viewer reads everything and finds nothing to act with: no action buttons, no bulk bar, no
/// row selection, no silence editor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_action_controls() {
    let rt = TestRuntime::start(Db::Sqlite, &[bundle("alertmanager")]).await;
    user(&rt, "vic", Role::Viewer).await;
    let id = post(
        &rt,
        &[am_alert("DiskFull", "critical", "10.20.0.1", "firing")],
    )
    .await[0];
    let driver = Driver::start().await;
    let browser = driver.browser(&rt.url(""), 1400, 900).await;
    browser.sign_in("vic", PASSWORD).await;
    browser.css(&row(id)).await.click().await.unwrap();
    browser.el("alert-detail").await;
    browser.el("alert-status").await;
    browser.screenshot("11-viewer-detail").await;
    let controls = [
        "action-acknowledge",
        "action-unacknowledge",
        "action-resolve",
        "action-silence-like-this",
        "note-add",
        "row-select",
        "select-all-matching",
        "bulk-acknowledge",
        "bulk-resolve",
        "bulk-silence",
    ];
    for control in controls {
        assert_eq!(
            browser.count(&testid(control)).await,
            0,
            "a viewer is shown `{control}`"
        );
    }
    browser.open("/silences").await;
    browser.el("live-indicator").await;
    assert_eq!(browser.count(&testid("silence-save")).await, 0);
    browser.screenshot("12-viewer-silences").await;
    // An injected inline script (what a stored XSS would be) does not run: the policy refuses
    // it, and the page records the refusal.
    let ran = browser
        .eval(
            "const s = document.createElement('script'); s.textContent = 'window.__injected = true'; \
             document.body.appendChild(s); return window.__injected === true;",
            vec![],
        )
        .await;
    assert_eq!(ran, json!(false), "an inline script ran");
    browser
        .until(
            "the refusal to be recorded",
            "return ((window.__ocPerf || {}).cspViolations || []).some(v => v.startsWith('script-src'));",
            vec![],
        )
        .await;
    browser.close().await;
    drop(driver);
    rt.stop().await;
}

/// A poll target's HTTP endpoint: answers `{"status": "degraded"}` and counts its requests.
async fn endpoint() -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(move || {
            let hits = counted.clone();
            async move {
                hits.fetch_add(1, Ordering::Relaxed);
                axum::Json(json!({"status": "degraded"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

/// An administrator uploads a bundle whose fixture fails and sees the difference; then polls
/// a target now and sees the poll's outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_uploads_a_bundle_and_polls_a_target() {
    let rt = TestRuntime::start(Db::Sqlite, &[bundle("alertmanager"), bundle("http-json")]).await;
    user(&rt, "ada", Role::Admin).await;
    let driver = Driver::start().await;
    let browser = driver.browser(&rt.url(""), 1400, 900).await;
    browser.sign_in("ada", PASSWORD).await;

    // The bundled alertmanager with one expectation broken, packed as `addon pack` does.
    let broken = tempfile::tempdir().unwrap();
    copy_dir(&bundle("alertmanager"), broken.path());
    std::fs::write(
        broken.path().join("fixtures/resolved.expected.json"),
        "[]\n",
    )
    .unwrap();
    let (name, bytes) = opsconductor::bundle::pack_bytes(broken.path(), None).unwrap();
    let file = broken.path().join(name);
    std::fs::write(&file, bytes).unwrap();
    browser.open("/addons").await;
    browser
        .el("bundle-file")
        .await
        .send_keys(&file.display().to_string())
        .await
        .unwrap();
    browser.click("bundle-upload").await;
    let diff = browser.el("fixture-diff").await;
    let text = diff.text().await.unwrap();
    assert!(text.contains("resolved"), "{text}");
    browser.screenshot("13-bundle-fixture-diff").await;
    assert_eq!(rt.addon("alertmanager").await["version"], "0.1.0");

    // A target polled once a year, polled now from the console.
    let (addr, hits) = endpoint().await;
    let (status, target) = rt
        .send_json(
            "POST",
            "/api/v1/targets",
            &json!({"name": "api-1", "address": addr.to_string(), "addon_id": "http-json",
                    "schedule": {"cron": "0 0 1 1 *"}, "config": {"path": "health"}}),
        )
        .await;
    assert_eq!(status, 201, "{target}");
    browser.open("/targets").await;
    let target_row = format!("{}[data-target-name=\"api-1\"]", testid("target-row"));
    browser.css(&target_row).await;
    browser.screenshot("14-targets").await;
    assert_eq!(hits.load(Ordering::Relaxed), 0, "not polled before asked");
    browser
        .css(&format!("{target_row} {}", testid("target-poll-now")))
        .await
        .click()
        .await
        .unwrap();
    browser
        .until(
            "the poll's outcome on the target's row",
            "const e = document.querySelector(arguments[0]); \
             return e !== null && /\\bok\\b/.test(e.textContent);",
            vec![json!(format!(
                "{target_row} {}",
                testid("target-last-poll")
            ))],
        )
        .await;
    assert!(hits.load(Ordering::Relaxed) >= 1);
    // Its alert reaches the console live.
    browser.open("/").await;
    let statusnotok = rt
        .wait_for("the poll's alert", 30, async |rt| {
            rt.alerts("?addon=http-json")
                .await
                .first()
                .map(|a| a["id"].as_i64().unwrap())
        })
        .await;
    browser.css(&row(statusnotok)).await;
    browser.screenshot("15-polled-now").await;
    browser.close().await;
    drop(driver);
    rt.stop().await;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
