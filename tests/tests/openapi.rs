//! The OpenAPI document tells the truth: a real runtime is given one of everything, then every
//! GET route and the main changes are called, and each answer is validated against the schema
//! the document gives for that route and status (and each request body against the request
//! schema). The dashboard's TypeScript types are generated from this document, so a schema that
//! lied would make them lie too.

use opsconductor::auth::{Actor, Role, Secret};
use opsconductor_tests::{Db, TestRuntime, bundle, fixture};
use serde_json::{Value, json};

/// Validates `instance` against `schema` (which may `$ref` the document's components).
fn check(doc: &Value, schema: &Value, instance: &Value, what: &str) -> Vec<String> {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::validator_for(&root)
        .unwrap_or_else(|e| panic!("{what}: the schema does not compile: {e}"));
    validator
        .iter_errors(instance)
        .map(|e| format!("{what}: {e} at {} in {instance}", e.instance_path))
        .collect()
}

/// The document's operation for `method path` (as the route table writes the path).
fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let op = &doc["paths"][path.replace("{*", "{")][method.to_lowercase()];
    assert!(op.is_object(), "{method} {path} is not in the document");
    op
}

struct Checker {
    doc: Value,
    failures: Vec<String>,
    checked: usize,
}

impl Checker {
    /// Sends `method` to `concrete` (the route `path` with its parameters filled in), checks
    /// the body sent and the answer against the document, and returns the answer.
    async fn call(
        &mut self,
        rt: &TestRuntime,
        method: &str,
        path: &str,
        concrete: &str,
        body: Option<Value>,
    ) -> Value {
        let op = operation(&self.doc, method, path).clone();
        if let Some(body) = &body {
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            assert!(
                schema.is_object() || schema.is_boolean(),
                "{method} {path} takes no JSON body"
            );
            let found = check(
                &self.doc,
                schema,
                body,
                &format!("request of {method} {path}"),
            );
            self.failures.extend(found);
        }
        let method_ = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = rt.http.request(method_, rt.url(concrete));
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let answer: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        let described = &op["responses"][status.to_string()];
        if !described.is_object() {
            self.failures.push(format!(
                "{method} {concrete}: status {status} is not documented: {answer}"
            ));
            return answer;
        }
        if !(200..300).contains(&status) {
            self.failures.push(format!(
                "{method} {concrete}: failed with {status}: {answer}"
            ));
            return answer;
        }
        match described["content"]["application/json"]["schema"].clone() {
            Value::Null => {
                if !answer.is_null() {
                    self.failures.push(format!(
                        "{method} {concrete}: documented without a body, answered {answer}"
                    ));
                }
            }
            schema => {
                let found = check(
                    &self.doc,
                    &schema,
                    &answer,
                    &format!("answer of {method} {concrete}"),
                );
                self.failures.extend(found);
            }
        }
        self.checked += 1;
        answer
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_its_documented_schema() {
    let rt = TestRuntime::start(Db::Sqlite, &[bundle("alertmanager"), bundle("http-json")]).await;
    let (_, doc) = rt.get_json("/api/v1/openapi.json").await;
    let mut c = Checker {
        doc,
        failures: Vec::new(),
        checked: 0,
    };
    rt.server
        .state()
        .auth
        .create_user(
            "olive",
            Role::Operator,
            Some(&Secret::new("correct horse battery staple")),
            &Actor::system(),
        )
        .await
        .unwrap();

    // One of everything.
    let webhook: Value = serde_json::from_slice(&fixture("alertmanager", "firing")).unwrap();
    let accepted = c
        .call(
            &rt,
            "POST",
            "/webhooks/{*path}",
            "/webhooks/alertmanager",
            Some(webhook),
        )
        .await;
    let alert = accepted["outcomes"][0]["alert_id"]
        .as_i64()
        .expect("an alert");
    c.call(
        &rt,
        "POST",
        "/api/v1/alerts/{id}/notes",
        &format!("/api/v1/alerts/{alert}/notes"),
        Some(json!({"text": "looking"})),
    )
    .await;
    c.call(
        &rt,
        "POST",
        "/api/v1/alerts/{id}/acknowledge",
        &format!("/api/v1/alerts/{alert}/acknowledge"),
        Some(json!({"note": "mine"})),
    )
    .await;
    c.call(
        &rt,
        "POST",
        "/api/v1/alerts/{id}/unacknowledge",
        &format!("/api/v1/alerts/{alert}/unacknowledge"),
        Some(json!({})),
    )
    .await;
    c.call(
        &rt,
        "POST",
        "/api/v1/alerts/bulk",
        "/api/v1/alerts/bulk",
        Some(json!({"ids": [alert, 999_999], "action": "acknowledge"})),
    )
    .await;
    c.call(
        &rt,
        "POST",
        "/api/v1/alerts/bulk",
        "/api/v1/alerts/bulk",
        Some(json!({"filter": "severity>=info", "action": "note", "note": "all of them"})),
    )
    .await;
    let now = chrono::Utc::now();
    let spec = json!({"matchers": {"addon": "alertmanager", "fields": {"job": "node"}},
                      "starts_at": now.to_rfc3339(), "ends_at": (now + chrono::Duration::hours(2)).to_rfc3339(),
                      "recurrence": {"days": ["sat", "sun"], "start": "22:00", "end": "06:00"}, "comment": "weekends"});
    let silence = c
        .call(
            &rt,
            "POST",
            "/api/v1/silences",
            "/api/v1/silences",
            Some(spec.clone()),
        )
        .await;
    let silence = silence["id"].as_i64().unwrap();
    c.call(
        &rt,
        "PUT",
        "/api/v1/silences/{id}",
        &format!("/api/v1/silences/{silence}"),
        Some(spec.clone()),
    )
    .await;
    c.call(
        &rt,
        "POST",
        "/api/v1/silences/preview",
        "/api/v1/silences/preview",
        Some(json!({"matchers": {"addon": "alertmanager"}})),
    )
    .await;
    c.call(
        &rt,
        "POST",
        "/api/v1/views",
        "/api/v1/views",
        Some(json!({"name": "critical", "query": "q=severity%3Dcritical", "shared": true})),
    )
    .await;
    c.call(
        &rt,
        "PUT",
        "/api/v1/credentials/{name}",
        "/api/v1/credentials/api-basic",
        Some(json!({"kind": "http_basic", "username": "poller", "password": "s3cret"})),
    )
    .await;
    let target = c
        .call(&rt, "POST", "/api/v1/targets", "/api/v1/targets",
            Some(json!({"name": "api-1", "address": "127.0.0.1:9", "addon_id": "http-json", "schedule": {"cron": "0 0 1 1 *"}, "config": {"path": "health"}, "credentials": "api-basic"})))
        .await;
    let target = target["id"].as_i64().unwrap();
    c.call(&rt, "PUT", "/api/v1/targets/{id}", &format!("/api/v1/targets/{target}"),
        Some(json!({"name": "api-1", "address": "127.0.0.1:9", "addon_id": "http-json", "schedule": {"interval_seconds": 3600}, "enabled": false}))).await;
    c.call(
        &rt,
        "POST",
        "/api/v1/targets/{id}/enable",
        &format!("/api/v1/targets/{target}/enable"),
        None,
    )
    .await;
    c.call(
        &rt,
        "POST",
        "/api/v1/targets/{id}/poll",
        &format!("/api/v1/targets/{target}/poll"),
        None,
    )
    .await;
    c.call(
        &rt,
        "POST",
        "/api/v1/users",
        "/api/v1/users",
        Some(json!({"username": "vic", "role": "viewer"})),
    )
    .await;
    c.call(
        &rt,
        "PUT",
        "/api/v1/users/{name}",
        "/api/v1/users/vic",
        Some(json!({"role": "operator", "password": "generate"})),
    )
    .await;
    let key = c
        .call(
            &rt,
            "POST",
            "/api/v1/api-keys",
            "/api/v1/api-keys",
            Some(json!({"name": "ci", "role": "service"})),
        )
        .await;
    c.call(&rt, "PUT", "/api/v1/addons/{id}/settings", "/api/v1/addons/alertmanager/settings",
        Some(json!({"webhook": {"auth": {"mode": "hmac", "secret": "abcdefghijklmnopqrstuvwxyz012345"}, "allow_cidrs": ["127.0.0.0/8"]}}))).await;
    c.call(
        &rt,
        "POST",
        "/api/v1/addons/{id}/disable",
        "/api/v1/addons/http-json/disable",
        None,
    )
    .await;
    c.call(
        &rt,
        "POST",
        "/api/v1/addons/{id}/enable",
        "/api/v1/addons/http-json/enable",
        None,
    )
    .await;
    c.call(
        &rt,
        "PUT",
        "/api/v1/system/settings/{key}",
        "/api/v1/system/settings/ui.banner",
        Some(json!({"value": {"text": "maintenance at 22:00"}})),
    )
    .await;
    let login = json!({"username": "olive", "password": "correct horse battery staple"});
    let tokens = c
        .call(
            &rt,
            "POST",
            "/api/v1/auth/login",
            "/api/v1/auth/login",
            Some(login),
        )
        .await;
    c.call(
        &rt,
        "POST",
        "/api/v1/auth/refresh",
        "/api/v1/auth/refresh",
        Some(json!({"refresh_token": tokens["refresh_token"]})),
    )
    .await;

    // Everything there is to read.
    for (path, concrete) in [
        ("/health", "/health".to_owned()),
        ("/ready", "/ready".to_owned()),
        ("/api/v1/auth/me", "/api/v1/auth/me".to_owned()),
        ("/api/v1/auth/sessions", "/api/v1/auth/sessions".to_owned()),
        (
            "/api/v1/sessions",
            "/api/v1/sessions?active=false".to_owned(),
        ),
        ("/api/v1/users", "/api/v1/users".to_owned()),
        ("/api/v1/users/{name}", "/api/v1/users/olive".to_owned()),
        ("/api/v1/api-keys", "/api/v1/api-keys".to_owned()),
        ("/api/v1/audit", "/api/v1/audit?limit=200".to_owned()),
        ("/api/v1/alerts", "/api/v1/alerts?limit=10".to_owned()),
        ("/api/v1/alerts/open", "/api/v1/alerts/open".to_owned()),
        (
            "/api/v1/alerts/facets",
            "/api/v1/alerts/facets?filter=severity%3E%3Dinfo".to_owned(),
        ),
        ("/api/v1/alerts/{id}", format!("/api/v1/alerts/{alert}")),
        (
            "/api/v1/alerts/{id}/history",
            format!("/api/v1/alerts/{alert}/history"),
        ),
        ("/api/v1/silences", "/api/v1/silences".to_owned()),
        (
            "/api/v1/silences/{id}",
            format!("/api/v1/silences/{silence}"),
        ),
        ("/api/v1/views", "/api/v1/views".to_owned()),
        ("/api/v1/addons", "/api/v1/addons".to_owned()),
        (
            "/api/v1/addons/{id}",
            "/api/v1/addons/alertmanager".to_owned(),
        ),
        (
            "/api/v1/addons/{id}/settings",
            "/api/v1/addons/alertmanager/settings".to_owned(),
        ),
        ("/api/v1/targets", "/api/v1/targets".to_owned()),
        ("/api/v1/targets/{id}", format!("/api/v1/targets/{target}")),
        ("/api/v1/ssh-host-keys", "/api/v1/ssh-host-keys".to_owned()),
        ("/api/v1/credentials", "/api/v1/credentials".to_owned()),
        (
            "/api/v1/credentials/{name}",
            "/api/v1/credentials/api-basic".to_owned(),
        ),
        ("/api/v1/stats", "/api/v1/stats".to_owned()),
        (
            "/api/v1/traps/unhandled",
            "/api/v1/traps/unhandled".to_owned(),
        ),
        (
            "/api/v1/system/version",
            "/api/v1/system/version".to_owned(),
        ),
        (
            "/api/v1/system/settings",
            "/api/v1/system/settings".to_owned(),
        ),
    ] {
        c.call(&rt, "GET", path, &concrete, None).await;
    }

    // And the removals.
    c.call(
        &rt,
        "DELETE",
        "/api/v1/api-keys/{id}",
        &format!("/api/v1/api-keys/{}", key["api_key"]["id"]),
        None,
    )
    .await;
    c.call(
        &rt,
        "DELETE",
        "/api/v1/system/settings/{key}",
        "/api/v1/system/settings/ui.banner",
        None,
    )
    .await;
    c.call(
        &rt,
        "POST",
        "/api/v1/alerts/{id}/resolve",
        &format!("/api/v1/alerts/{alert}/resolve"),
        Some(json!({})),
    )
    .await;
    c.call(
        &rt,
        "DELETE",
        "/api/v1/silences/{id}",
        &format!("/api/v1/silences/{silence}"),
        None,
    )
    .await;
    c.call(
        &rt,
        "DELETE",
        "/api/v1/targets/{id}",
        &format!("/api/v1/targets/{target}"),
        None,
    )
    .await;
    c.call(
        &rt,
        "DELETE",
        "/api/v1/credentials/{name}",
        "/api/v1/credentials/api-basic",
        None,
    )
    .await;

    assert!(
        c.failures.is_empty(),
        "{} of the answers and bodies do not match the document:\n{}",
        c.failures.len(),
        c.failures.join("\n")
    );
    assert!(c.checked >= 50, "only {} calls checked", c.checked);
    // The checker itself fails on what does not match: an alert with a text id, an unknown
    // severity and no title.
    let wrong = json!({"id": "seven", "severity": "catastrophic"});
    let errors = check(
        &c.doc,
        &json!({"$ref": "#/components/schemas/StoredAlert"}),
        &wrong,
        "a wrong alert",
    );
    assert!(errors.len() >= 3, "{errors:?}");
    rt.stop().await;
}
