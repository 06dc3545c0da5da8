//! Authentication over HTTP: login, refresh with rotation and reuse detection, logout and
//! sessions; login rate limits; the API's IP allowlist; and the audit entries of mutations.

use opsconductor_tests::{
    Db, TestRuntime, both_databases, bundle, client_with_bearer, fixture, test_bundle,
};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

async fn send(
    client: &reqwest::Client,
    rt: &TestRuntime,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client.request(method, rt.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        headers,
    )
}

async fn login(rt: &TestRuntime, username: &str, password: &str) -> (u16, Value) {
    let anonymous = client_with_bearer(None);
    let (status, body, _) = send(
        &anonymous,
        rt,
        "POST",
        "/api/v1/auth/login",
        Some(json!({"username": username, "password": password})),
    )
    .await;
    (status, body)
}

async fn audit(rt: &TestRuntime, query: &str) -> Vec<Value> {
    let (status, page) = rt.get_json(&format!("/api/v1/audit?{query}")).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().cloned().unwrap_or_default()
}

both_databases!(
    login_refresh_reuse_and_logout,
    login_refresh_reuse_and_logout_on
);

async fn login_refresh_reuse_and_logout_on(db: Db) {
    let rt = TestRuntime::start(db, &[]).await;
    let (status, created) = rt
        .send_json(
            "POST",
            "/api/v1/users",
            &json!({"username": "Olga", "role": "operator", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["user"]["username"], "olga");
    assert!(created.get("generated_password").is_none(), "{created}");

    // A wrong password and an unknown user get the same answer.
    let (status, wrong) = login(&rt, "olga", "not her password").await;
    assert_eq!(status, 401, "{wrong}");
    let (status, unknown) = login(&rt, "nobody", PASSWORD).await;
    assert_eq!((status, &unknown), (401, &wrong));

    let (status, tokens) = login(&rt, "OLGA", PASSWORD).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["principal"]["role"], "operator");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let olga = client_with_bearer(Some(&access));
    let (status, me, _) = send(&olga, &rt, "GET", "/api/v1/auth/me", None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["actor"], "user:olga");
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("act_on_alerts"))
    );

    // Refresh: a new pair; the old refresh token is used up.
    let anonymous = client_with_bearer(None);
    let (status, second, _) = send(
        &anonymous,
        &rt,
        "POST",
        "/api/v1/auth/refresh",
        Some(json!({"refresh_token": first_refresh})),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first_refresh.as_str());
    let second_access = second["access_token"].as_str().unwrap().to_owned();
    let (status, _, _) = send(
        &client_with_bearer(Some(&second_access)),
        &rt,
        "GET",
        "/api/v1/alerts",
        None,
    )
    .await;
    assert_eq!(status, 200);

    // The first refresh token again: someone has a copy, so the whole session is revoked.
    let (status, reused, _) = send(
        &anonymous,
        &rt,
        "POST",
        "/api/v1/auth/refresh",
        Some(json!({"refresh_token": first_refresh})),
    )
    .await;
    assert_eq!(status, 401, "{reused}");
    assert!(
        reused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{reused}"
    );
    for token in [&access, &second_access] {
        let (status, body, headers) = send(
            &client_with_bearer(Some(token)),
            &rt,
            "GET",
            "/api/v1/alerts",
            None,
        )
        .await;
        assert_eq!(status, 401, "{body}");
        assert!(headers.contains_key("www-authenticate"));
        assert_eq!(body["error"]["message"], "the session has been revoked");
    }
    let (status, _, _) = send(
        &anonymous,
        &rt,
        "POST",
        "/api/v1/auth/refresh",
        Some(json!({"refresh_token": second["refresh_token"]})),
    )
    .await;
    assert_eq!(status, 401, "the newer refresh token dies with its session");
    let reuse = audit(&rt, "action=auth.refresh_reuse").await;
    assert_eq!(reuse.len(), 1, "{reuse:?}");

    // Logout ends the session; sessions are listed for their user and for admins.
    let (_, tokens) = login(&rt, "olga", PASSWORD).await;
    let olga = client_with_bearer(tokens["access_token"].as_str());
    let (status, own, _) = send(&olga, &rt, "GET", "/api/v1/auth/sessions", None).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(
        own.as_array().unwrap().len(),
        1,
        "only live sessions: {own}"
    );
    let (status, all) = rt.get_json("/api/v1/sessions?user=olga&active=false").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    let (status, _, _) = send(&olga, &rt, "POST", "/api/v1/auth/logout", None).await;
    assert_eq!(status, 204);
    let (status, _, _) = send(&olga, &rt, "GET", "/api/v1/auth/me", None).await;
    assert_eq!(status, 401);

    let logins = audit(&rt, "action=auth.login").await;
    let outcomes: Vec<&str> = logins
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["success", "success", "failure", "failure"],
        "newest first: {logins:?}"
    );
    assert!(
        logins
            .iter()
            .all(|e| e["source_ip"] == "127.0.0.1" || e["outcome"] == "success"),
        "{logins:?}"
    );
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_rate_limited_per_user() {
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[],
        |config| {
            config.limits.login_per_user_per_minute = 3;
            config.limits.login_per_ip_per_minute = 100;
        },
        async |_| {},
    )
    .await;
    for _ in 0..3 {
        let (status, _) = login(&rt, "admin", "guess").await;
        assert_eq!(status, 401);
    }
    let anonymous = client_with_bearer(None);
    let (status, body, headers) = send(
        &anonymous,
        &rt,
        "POST",
        "/api/v1/auth/login",
        Some(json!({"username": "Admin", "password": "guess"})),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another user is not limited by admin's attempts.
    let (status, _) = login(&rt, "someone-else", "guess").await;
    assert_eq!(status, 401);
    // Three failures were checked (and audited); the refused fourth never reached a password.
    assert_eq!(
        audit(&rt, "action=auth.login&outcome=failure").await.len(),
        4
    );
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_requests_are_rate_limited_per_caller() {
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[],
        |config| {
            config.limits.api_per_second = 1;
            config.limits.api_burst = 5;
        },
        async |_| {},
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(rt.get_json("/api/v1/stats").await.0);
    }
    assert!(statuses[..5].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ip_allowlist_blocks_the_api_but_not_webhooks() {
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[bundle("alertmanager")],
        |config| config.limits.api_allow = vec!["10.0.0.0/8".parse().unwrap()],
        async |_| {},
    )
    .await;
    for path in ["/api/v1/alerts", "/health", "/api/v1/openapi.json"] {
        let (status, body) = rt.get_json(path).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("127.0.0.1"),
            "{body}"
        );
    }
    let (status, body) = rt
        .post_webhook("alertmanager", fixture("alertmanager", "firing"))
        .await;
    assert_eq!(status, 200, "webhooks have allowlists of their own: {body}");
    rt.stop().await;

    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[],
        |config| {
            config.limits.api_allow = vec![
                "10.0.0.0/8".parse().unwrap(),
                "127.0.0.1/32".parse().unwrap(),
            ]
        },
        async |_| {},
    )
    .await;
    assert_eq!(rt.get_json("/api/v1/alerts").await.0, 200);
    rt.stop().await;
}

both_databases!(mutations_are_audited, mutations_are_audited_on);

async fn mutations_are_audited_on(db: Db) {
    let rt = TestRuntime::start(db, &[bundle("alertmanager"), test_bundle("prober")]).await;
    let (status, _) = rt
        .post_webhook("alertmanager", fixture("alertmanager", "firing"))
        .await;
    assert_eq!(status, 200);
    let alert = rt.alerts("?addon=alertmanager").await[0].clone();
    let id = alert["id"].as_i64().unwrap();
    let ok = |(status, body): (u16, Value), expected: u16| {
        assert_eq!(status, expected, "{body}");
        body
    };
    ok(
        rt.send_json(
            "POST",
            &format!("/api/v1/alerts/{id}/acknowledge"),
            &json!({"note": "mine"}),
        )
        .await,
        200,
    );
    ok(
        rt.send_json(
            "POST",
            &format!("/api/v1/alerts/{id}/notes"),
            &json!({"text": "ticket 1"}),
        )
        .await,
        201,
    );
    ok(
        rt.send_json(
            "POST",
            "/api/v1/alerts/bulk",
            &json!({"ids": [id], "action": "resolve"}),
        )
        .await,
        200,
    );
    let silence = ok(
        rt.send_json(
            "POST",
            "/api/v1/silences",
            &json!({"matchers": {"addon": "alertmanager"}, "starts_at": "2000-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z", "comment": "maintenance"}),
        )
        .await,
        201,
    );
    ok(
        rt.send_json(
            "DELETE",
            &format!("/api/v1/silences/{}", silence["id"]),
            &json!(null),
        )
        .await,
        204,
    );
    let target = ok(
        rt.send_json(
            "POST",
            "/api/v1/targets",
            &json!({"name": "sw-1", "address": "192.0.2.10", "addon_id": "prober"}),
        )
        .await,
        201,
    );
    ok(
        rt.send_json(
            "DELETE",
            &format!("/api/v1/targets/{}", target["id"]),
            &json!(null),
        )
        .await,
        204,
    );
    ok(
        rt.send_json(
            "PUT",
            "/api/v1/system/settings/ui.title",
            &json!({"value": "NOC"}),
        )
        .await,
        200,
    );
    ok(
        rt.send_json(
            "PUT",
            "/api/v1/system/settings/ui.title",
            &json!({"value": "Network Operations"}),
        )
        .await,
        200,
    );
    let reserved = rt
        .send_json(
            "PUT",
            "/api/v1/system/settings/snmp.engine_id",
            &json!({"value": "0x80"}),
        )
        .await;
    assert_eq!(reserved.0, 403, "{}", reserved.1);
    let key = ok(
        rt.send_json(
            "POST",
            "/api/v1/api-keys",
            &json!({"name": "ci", "role": "service"}),
        )
        .await,
        201,
    );
    assert!(key["key"].as_str().unwrap().starts_with("oc_"));
    ok(
        rt.send_json(
            "POST",
            "/api/v1/users",
            &json!({"username": "vera", "role": "viewer"}),
        )
        .await,
        201,
    );
    ok(
        rt.send_json("PUT", "/api/v1/users/vera", &json!({"disabled": true}))
            .await,
        200,
    );
    ok(
        rt.send_json("POST", "/api/v1/addons/prober/disable", &json!(null))
            .await,
        200,
    );

    let entries = audit(&rt, "limit=100").await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "alert.acknowledge",
        "alert.note",
        "alert.bulk",
        "silence.create",
        "silence.delete",
        "target.create",
        "target.delete",
        "setting.set",
        "api_key.create",
        "user.create",
        "user.disable",
        "addon.disable",
    ] {
        let entry = entries
            .iter()
            .find(|e| e["action"] == expected && e["outcome"] == "success")
            .unwrap_or_else(|| panic!("no successful `{expected}` entry in {actions:?}"));
        assert_eq!(entry["actor"], rt.admin_actor.as_str(), "{entry}");
        assert_eq!(entry["role"], "admin", "{entry}");
        assert_eq!(entry["source_ip"], "127.0.0.1", "{entry}");
    }
    // The refused attempt on a reserved key is there too, as a failure with its status.
    let refused = entries
        .iter()
        .find(|e| e["target"] == "PUT /api/v1/system/settings/snmp.engine_id")
        .expect("the refused setting change is audited");
    assert_eq!(
        (&refused["outcome"], &refused["after"]),
        (&json!("failure"), &json!({"status": 403}))
    );
    // Before and after where they make sense: the setting's change.
    let setting = entries
        .iter()
        .find(|e| e["action"] == "setting.set" && e["outcome"] == "success")
        .unwrap();
    assert_eq!(setting["target"], "setting:ui.title");
    assert_eq!(setting["before"], "NOC");
    assert_eq!(setting["after"], "Network Operations");
    // No secret in any entry.
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.contains(key["key"].as_str().unwrap()));
    assert!(!text.contains(&rt.admin_key));
    let (status, settings) = rt.get_json("/api/v1/system/settings").await;
    assert_eq!(status, 200);
    assert_eq!(
        settings,
        json!([{"key": "ui.title", "value": "Network Operations", "updated_at": settings[0]["updated_at"]}]),
        "the runtime's own keys are not listed"
    );
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route() {
    let rt = TestRuntime::start(Db::Sqlite, &[]).await;
    let (status, doc, _) = send(
        &client_with_bearer(None),
        &rt,
        "GET",
        "/api/v1/openapi.json",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for route in opsconductor::api::routes() {
        let path = route.path.replace("{*", "{");
        assert!(
            doc["paths"][&path][route.method.as_str().to_lowercase()].is_object(),
            "{} {} is not in the document",
            route.method,
            route.path
        );
    }
    let (status, version) = rt.get_json("/api/v1/system/version").await;
    assert_eq!(status, 200);
    assert_eq!(version["database"], "sqlite");
    let (status, ready, _) = send(&client_with_bearer(None), &rt, "GET", "/ready", None).await;
    assert_eq!((status, &ready["ready"]), (200, &json!(true)));
    rt.stop().await;
}
