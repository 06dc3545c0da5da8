//! What the console needs from the API, end to end over HTTP: every open alert at once, facet
//! counts for a filter, acting on everything a filter matches, a silence's preview, saved views
//! scoped to whoever saved them, and the console's own page and assets with their security and
//! cache headers.

use opsconductor::auth::{Actor, Role};
use opsconductor_tests::{Db, TestRuntime, both_databases, bundle, client_with_bearer, fixture};
use serde_json::{Value, json};

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

async fn post_alerts(rt: &TestRuntime, alerts: &[Value]) -> Vec<i64> {
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

/// An API key of `role`, for a caller other than the test's administrator.
async fn key(rt: &TestRuntime, name: &str, role: Role) -> String {
    let (_, key) = rt
        .server
        .state()
        .auth
        .create_api_key(name, role, None, &Actor::system())
        .await
        .unwrap();
    key.expose().to_owned()
}

fn ids_of(alerts: &Value) -> Vec<i64> {
    alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect()
}

async fn open_alerts_facets_and_acting_on_a_filter(db: Db) {
    let rt = TestRuntime::start(db, &[bundle("alertmanager")]).await;
    let core = post_alerts(
        &rt,
        &[
            am_alert("DiskFull", "critical", "10.20.0.1", "firing"),
            am_alert("DiskFull", "critical", "10.20.0.2", "firing"),
            am_alert("NodeDown", "critical", "10.20.0.3", "firing"),
        ],
    )
    .await;
    let edge = post_alerts(
        &rt,
        &[
            am_alert("CpuHigh", "warning", "10.30.0.1", "firing"),
            am_alert("CpuHigh", "warning", "10.30.0.2", "firing"),
        ],
    )
    .await;
    let gone = post_alerts(&rt, &[am_alert("Flap", "minor", "10.40.0.1", "firing")]).await;
    post_alerts(&rt, &[am_alert("Flap", "minor", "10.40.0.1", "resolved")]).await;

    // Every open alert, newest first, whole; the resolved one is not open.
    let (status, open) = rt.get_json("/api/v1/alerts/open").await;
    assert_eq!(status, 200, "{open}");
    let mut expected: Vec<i64> = core.iter().chain(&edge).copied().collect();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids_of(&open["alerts"]), expected);
    assert!(!ids_of(&open["alerts"]).contains(&gone[0]));
    assert_eq!(open["alerts"][0]["fields"]["job"], "node", "{open}");
    // Large to a browser: compressed when it says it can take it.
    let response = rt
        .http
        .get(rt.url("/api/v1/alerts/open"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");

    let (status, facets) = rt
        .get_json("/api/v1/alerts/facets?filter=severity%3Dcritical")
        .await;
    assert_eq!(status, 200, "{facets}");
    assert_eq!(facets["total"], 3);
    assert_eq!(
        facets["facets"]["severity"]["values"],
        json!({"critical": 3})
    );
    assert_eq!(
        facets["facets"]["alert_type"]["values"],
        json!({"DiskFull": 2, "NodeDown": 1})
    );
    assert_eq!(
        facets["facets"]["acknowledged"]["values"],
        json!({"false": 3})
    );
    assert_eq!(facets["facets"]["device"]["other"], 0);
    let (_, all) = rt.get_json("/api/v1/alerts/facets").await;
    assert_eq!(all["total"], 5, "{all}");
    let (status, refused) = rt
        .get_json("/api/v1/alerts/facets?filter=severity%3Dcrit")
        .await;
    assert_eq!(status, 400, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("unknown severity `crit`"), "{message}");

    // Acknowledge everything on 10.20.*: the three core alerts, and nothing else.
    let by_filter = |filter: &str, action: &str| json!({"filter": filter, "action": action});
    let (status, answer) = rt
        .send_json(
            "POST",
            "/api/v1/alerts/bulk",
            &by_filter("device=~\"10.20.*\"", "acknowledge"),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (&answer["matched"], &answer["succeeded"], &answer["failed"]),
        (&json!(3), &json!(3), &json!(0)),
        "{answer}"
    );
    assert_eq!(
        answer["results"],
        json!([]),
        "successes are counted, not listed"
    );
    // Again: they match still (acknowledged alerts are open), and each refusal is listed.
    let (_, again) = rt
        .send_json(
            "POST",
            "/api/v1/alerts/bulk",
            &by_filter("device=~\"10.20.*\"", "acknowledge"),
        )
        .await;
    assert_eq!(
        (&again["matched"], &again["failed"]),
        (&json!(3), &json!(3)),
        "{again}"
    );
    assert!(
        again["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["ok"] == false && r["error"]["code"] == "conflict"),
        "{again}"
    );
    let (_, open) = rt.get_json("/api/v1/alerts/open").await;
    for alert in open["alerts"].as_array().unwrap() {
        let acknowledged = core.contains(&alert["id"].as_i64().unwrap());
        assert_eq!(
            alert["status"],
            if acknowledged {
                "acknowledged"
            } else {
                "active"
            },
            "{alert}"
        );
        if acknowledged {
            assert_eq!(alert["acknowledged_by"], rt.admin_actor.as_str());
        }
    }
    let (_, resolved) = rt
        .send_json(
            "POST",
            "/api/v1/alerts/bulk",
            &by_filter("acknowledged=true", "resolve"),
        )
        .await;
    assert_eq!(resolved["succeeded"], 3, "{resolved}");
    let (_, open) = rt.get_json("/api/v1/alerts/open").await;
    let mut edge_newest_first = edge.clone();
    edge_newest_first.reverse();
    assert_eq!(ids_of(&open["alerts"]), edge_newest_first);

    // Either ids or a filter, and a filter that parses.
    for (body, says) in [
        (
            json!({"ids": [edge[0]], "filter": "", "action": "resolve"}),
            "exactly one",
        ),
        (json!({"action": "resolve"}), "exactly one"),
        (by_filter("severity=", "resolve"), "field `filter`"),
    ] {
        let (status, refused) = rt.send_json("POST", "/api/v1/alerts/bulk", &body).await;
        assert_eq!(status, 422, "{body}: {refused}");
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    // A viewer may look but not act, by filter as by ids.
    let viewer = client_with_bearer(Some(&key(&rt, "viewer", Role::Viewer).await));
    let (status, _) = rt
        .send_json_as(&viewer, "GET", "/api/v1/alerts/facets", None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = rt
        .send_json_as(
            &viewer,
            "POST",
            "/api/v1/alerts/bulk",
            Some(&by_filter("", "resolve")),
        )
        .await;
    assert_eq!(status, 403);
    let (_, open) = rt.get_json("/api/v1/alerts/open").await;
    assert_eq!(open["alerts"].as_array().unwrap().len(), 2);
    rt.stop().await;
}

both_databases!(
    console_alerts_e2e,
    open_alerts_facets_and_acting_on_a_filter
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_preview_counts_what_its_matchers_would_cover() {
    let rt = TestRuntime::start(Db::Sqlite, &[bundle("alertmanager")]).await;
    post_alerts(
        &rt,
        &[
            am_alert("CpuHigh", "warning", "10.30.0.1", "firing"),
            am_alert("CpuHigh", "warning", "10.30.0.2", "firing"),
            am_alert("DiskFull", "critical", "10.30.0.1", "firing"),
        ],
    )
    .await;
    let preview = async |matchers: Value| {
        // What an editor sends: the whole form, its comment still empty.
        rt.send_json(
            "POST",
            "/api/v1/silences/preview",
            &json!({"matchers": matchers, "starts_at": "2024-01-01T00:00:00Z",
                    "ends_at": "2024-01-01T01:00:00Z", "comment": ""}),
        )
        .await
    };
    let (status, answer) = preview(json!({"alert_type": "CpuHigh"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["matching"], 2);
    assert_eq!(answer["alerts"].as_array().unwrap().len(), 2);
    let (_, answer) = preview(json!({"device": "10.30.0.1"})).await;
    assert_eq!(answer["matching"], 2, "{answer}");
    let (_, answer) = preview(json!({"device": "10.30.0.1", "fields": {"job": "node"}})).await;
    assert_eq!(answer["matching"], 2, "{answer}");
    let (_, answer) = preview(json!({"device": "10.30.0.1", "alert_type": "DiskFull"})).await;
    assert_eq!(answer["matching"], 1, "{answer}");
    let (_, answer) = preview(json!({"fields": {"job": "other"}})).await;
    assert_eq!(answer["matching"], 0, "{answer}");
    let (status, refused) = preview(json!({})).await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at least one"),
        "{refused}"
    );
    // Nothing was stored.
    let (_, silences) = rt.get_json("/api/v1/silences").await;
    assert_eq!(silences["items"], json!([]));
    rt.stop().await;
}

/// Views are their owner's: listed to them (and to everyone when shared), deletable by them
/// only; names are unique per owner.
async fn saved_views_belong_to_whoever_saved_them(db: Db) {
    let rt = TestRuntime::start(db, &[]).await;
    let admin = rt.http.clone();
    let viewer = client_with_bearer(Some(&key(&rt, "night-shift", Role::Viewer).await));
    let view = |name: &str, query: &str, shared: bool| json!({"name": name, "query": query, "shared": shared});

    let (status, private) = rt
        .send_json_as(
            &admin,
            "POST",
            "/api/v1/views",
            Some(&view("Critical", "q=severity%3Dcritical", false)),
        )
        .await;
    assert_eq!(status, 201, "{private}");
    assert_eq!(private["owner"], rt.admin_actor.as_str());
    let (status, shared) = rt
        .send_json_as(
            &viewer,
            "POST",
            "/api/v1/views",
            Some(&view("Core", "q=device%3D~core.*&group=device", true)),
        )
        .await;
    assert_eq!(status, 201, "{shared}");
    assert_eq!(shared["owner"], "key:night-shift");
    let (status, taken) = rt
        .send_json_as(
            &admin,
            "POST",
            "/api/v1/views",
            Some(&view("Critical", "q=", true)),
        )
        .await;
    assert_eq!(status, 409, "{taken}");
    // Another owner may use the same name.
    let (status, _) = rt
        .send_json_as(
            &viewer,
            "POST",
            "/api/v1/views",
            Some(&view("Critical", "q=", false)),
        )
        .await;
    assert_eq!(status, 201);
    let (status, bad) = rt
        .send_json_as(
            &viewer,
            "POST",
            "/api/v1/views",
            Some(&view(" ", "q=", false)),
        )
        .await;
    assert_eq!(status, 422, "{bad}");

    let names = async |client: &reqwest::Client| {
        let (status, list) = rt.send_json_as(client, "GET", "/api/v1/views", None).await;
        assert_eq!(status, 200, "{list}");
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                format!(
                    "{}/{}",
                    v["owner"].as_str().unwrap(),
                    v["name"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    let admin_actor = rt.admin_actor.clone();
    assert_eq!(
        names(&admin).await,
        [
            "key:night-shift/Core".to_owned(),
            format!("{admin_actor}/Critical")
        ]
    );
    assert_eq!(
        names(&viewer).await,
        ["key:night-shift/Core", "key:night-shift/Critical"]
    );

    // The administrator cannot delete the viewer's view, shared or not; the viewer can.
    let path = format!("/api/v1/views/{}", shared["id"]);
    let (status, _) = rt.send_json_as(&admin, "DELETE", &path, None).await;
    assert_eq!(status, 404);
    let (status, _) = rt.send_json_as(&viewer, "DELETE", &path, None).await;
    assert_eq!(status, 204);
    assert_eq!(names(&admin).await, [format!("{admin_actor}/Critical")]);
    rt.stop().await;
}

both_databases!(saved_views_e2e, saved_views_belong_to_whoever_saved_them);

/// The console's page at `/` and at each of its own paths, with a strict Content-Security-
/// Policy and no caching; its assets cached for good, compressed, revalidated by ETag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_with_its_security_and_cache_headers() {
    assert!(
        opsconductor::api::dashboard::built(),
        "the dashboard is not built: run `just build-dashboard` (or `just test`, which builds it)"
    );
    let rt = TestRuntime::start(Db::Sqlite, &[]).await;
    let anonymous = client_with_bearer(None);
    let page = anonymous.get(rt.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    // No inline script: everything the page runs comes from /assets/.
    assert!(
        !html.contains("<script>") && !html.contains("<script type=\"module\">"),
        "{html}"
    );
    for path in [
        "/login",
        "/alerts/42",
        "/silences",
        "/silences/new",
        "/addons/prtg",
        "/targets",
        "/admin/users",
        "/system",
    ] {
        let response = anonymous.get(rt.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.text().await.unwrap(),
            html,
            "{path} answers the console's page"
        );
    }

    let script = html
        .split('"')
        .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
        .unwrap_or_else(|| panic!("no script in {html}"));
    let response = anonymous
        .get(rt.url(script))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{script}");
    assert_eq!(response.headers()["content-type"], "text/javascript");
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let etag = response.headers()["etag"].clone();
    let revalidated = anonymous
        .get(rt.url(script))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    let missing = anonymous
        .get(rt.url("/assets/nothing-here.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    // Not a way out of the assets folder.
    let traversal = anonymous
        .get(rt.url("/assets/..%2F..%2FCargo.toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(traversal.status(), 404);
    rt.stop().await;
}
