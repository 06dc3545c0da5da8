//! The targets and credentials REST API over real HTTP, on SQLite and PostgreSQL: create, read,
//! list, replace, enable/disable and delete targets; refusals with the API's error shape and
//! the field they concern; and credentials of every kind going in with secrets that never come
//! back out in any answer.

use std::path::Path;
use std::process::Command;

use opsconductor::snmp::{AuthProtocol, PrivProtocol, UsmUser};
use opsconductor::target::CredentialSecret;
use opsconductor_tests::{Db, TestRuntime, both_databases, bundle, test_bundle};
use serde_json::{Value, json};

/// One answer: status, the body as sent (for leak checks) and parsed, and `Location`.
struct Answer {
    status: u16,
    text: String,
    json: Value,
    location: Option<String>,
}

impl Answer {
    /// The `{"error": {"code", "message"}}` of a refusal, after checking its status.
    fn error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.json["error"]["code"], code, "{}", self.text);
        self.json["error"]["message"].as_str().unwrap().to_owned()
    }
}

async fn send(rt: &TestRuntime, method: &str, path: &str, body: Option<&str>) -> Answer {
    let mut request = rt
        .http
        .request(method.parse().unwrap(), rt.url(path))
        .header("content-type", "application/json");
    if let Some(body) = body {
        request = request.body(body.to_owned());
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        text,
        json,
        location,
    }
}

async fn send_json(rt: &TestRuntime, method: &str, path: &str, body: Value) -> Answer {
    send(rt, method, path, Some(&body.to_string())).await
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

async fn targets_crud(db: Db) {
    // prober polls (default interval 60 s); alertmanager only takes webhooks.
    let rt = TestRuntime::start(db, &[test_bundle("prober"), bundle("alertmanager")]).await;

    let a = send_json(
        &rt,
        "POST",
        "/api/v1/targets",
        json!({ "name": "sw-b", "address": "192.0.2.10", "addon_id": "prober" }),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let b = a.json;
    let b_id = b["id"].as_i64().unwrap();
    assert_eq!(
        a.location.as_deref(),
        Some(&*format!("/api/v1/targets/{b_id}"))
    );
    assert_eq!(b["schedule"], json!({ "interval_seconds": 60 }), "{b}");
    assert_eq!(b["enabled"], true);
    assert_eq!(b["config"], json!({}));
    assert_eq!(b["credentials"], Value::Null);
    assert!(b["status"]["next_due_at"].is_string(), "{b}");
    assert_eq!(b["status"]["polls_total"], 0);

    let a = send_json(
        &rt,
        "POST",
        "/api/v1/targets",
        json!({
            "name": "sw-a", "address": "sw-a.example.net:1161", "addon_id": "prober",
            "schedule": { "cron": "*/5 * * * *" }, "enabled": false,
            "config": { "steps": [], "label": "lab" },
        }),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let sw_a = a.json;
    let a_id = sw_a["id"].as_i64().unwrap();
    assert_eq!(sw_a["schedule"], json!({ "cron": "*/5 * * * *" }));
    assert_eq!(sw_a["config"]["label"], "lab");
    assert_eq!(
        sw_a["status"]["next_due_at"],
        Value::Null,
        "disabled: not due"
    );

    // Refusals: the API's error shape, the right status, the field named.
    let post = |body: Value| send_json(&rt, "POST", "/api/v1/targets", body);
    let m = post(json!({ "name": "sw-a", "address": "192.0.2.1", "addon_id": "prober" }))
        .await
        .error(409, "conflict");
    assert_eq!(m, "a target named `sw-a` already exists");
    let m = post(json!({ "name": "x", "address": "192.0.2.1", "addon_id": "alertmanager" }))
        .await
        .error(422, "invalid");
    assert_eq!(
        m,
        "target field `addon_id`: addon `alertmanager` does not poll"
    );
    let m = post(json!({ "name": "x", "address": "192.0.2.1", "addon_id": "nope" }))
        .await
        .error(422, "invalid");
    assert_eq!(m, "target field `addon_id`: no addon `nope` is installed");
    let m = post(json!({
        "name": "x", "address": "192.0.2.1", "addon_id": "prober", "credentials": "missing",
    }))
    .await
    .error(422, "invalid");
    assert_eq!(
        m,
        "target field `credentials`: no credential named `missing`"
    );
    let m = post(json!({ "name": "x y", "address": "192.0.2.1", "addon_id": "prober" }))
        .await
        .error(422, "invalid");
    assert!(m.starts_with("target field `name`:"), "{m}");
    let m = post(json!({ "name": "x", "address": "a b", "addon_id": "prober" }))
        .await
        .error(422, "invalid");
    assert!(m.starts_with("target field `address`:"), "{m}");
    let m = post(json!({
        "name": "x", "address": "192.0.2.1", "addon_id": "prober",
        "schedule": { "interval_seconds": 0 },
    }))
    .await
    .error(422, "invalid");
    assert!(m.starts_with("target field `schedule`:"), "{m}");
    let m = post(json!({
        "name": "x", "address": "192.0.2.1", "addon_id": "prober",
        "schedule": { "interval_seconds": "often" },
    }))
    .await
    .error(422, "invalid");
    assert!(
        m.starts_with("target field `schedule.interval_seconds`:"),
        "{m}"
    );
    let m = post(json!({ "name": "x", "address": "192.0.2.1", "addon_id": "prober", "port": 1 }))
        .await
        .error(422, "invalid");
    assert!(m.starts_with("target: unknown field `port`"), "{m}");
    let m = post(json!({ "name": "x", "address": "192.0.2.1" }))
        .await
        .error(422, "invalid");
    assert!(m.starts_with("target: missing field `addon_id`"), "{m}");
    let m = send(&rt, "POST", "/api/v1/targets", Some("{\"name\":"))
        .await
        .error(400, "bad_body");
    assert!(m.starts_with("target body is not valid JSON"), "{m}");

    // Reads and filters.
    let got = send(&rt, "GET", &format!("/api/v1/targets/{b_id}"), None).await;
    assert_eq!((got.status, &got.json), (200, &b));
    send(&rt, "GET", "/api/v1/targets/999999", None)
        .await
        .error(404, "not_found");
    send(&rt, "GET", "/api/v1/targets/abc", None)
        .await
        .error(400, "bad_id");
    let all = send(&rt, "GET", "/api/v1/targets", None).await;
    assert_eq!(names(&all.json), ["sw-a", "sw-b"]);
    let off = send(
        &rt,
        "GET",
        "/api/v1/targets?addon=prober&enabled=false",
        None,
    )
    .await;
    assert_eq!(names(&off.json), ["sw-a"]);
    let none = send(&rt, "GET", "/api/v1/targets?addon=alertmanager", None).await;
    assert_eq!(names(&none.json), Vec::<&str>::new());
    send(&rt, "GET", "/api/v1/targets?enabled=maybe", None)
        .await
        .error(400, "bad_query");

    // PUT replaces the whole definition; poll status and id stay.
    let put = send_json(
        &rt,
        "PUT",
        &format!("/api/v1/targets/{b_id}"),
        json!({
            "name": "sw-b2", "address": "https://sw-b.example.net/api", "addon_id": "prober",
            "schedule": { "interval_seconds": 300 }, "config": { "k": 1 },
        }),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json["id"], b_id);
    assert_eq!(put.json["name"], "sw-b2");
    assert_eq!(put.json["schedule"], json!({ "interval_seconds": 300 }));
    assert_eq!(put.json["created_at"], b["created_at"]);
    let m = send_json(
        &rt,
        "PUT",
        &format!("/api/v1/targets/{b_id}"),
        json!({ "name": "sw-a", "address": "192.0.2.1", "addon_id": "prober" }),
    )
    .await
    .error(409, "conflict");
    assert_eq!(m, "a target named `sw-a` already exists");
    send_json(
        &rt,
        "PUT",
        "/api/v1/targets/999999",
        json!({ "name": "zz", "address": "192.0.2.1", "addon_id": "prober" }),
    )
    .await
    .error(404, "not_found");

    // Enable and disable.
    let on = send(&rt, "POST", &format!("/api/v1/targets/{a_id}/enable"), None).await;
    assert_eq!(on.status, 200, "{}", on.text);
    assert_eq!(on.json["enabled"], true);
    assert!(on.json["status"]["next_due_at"].is_string());
    let off = send(
        &rt,
        "POST",
        &format!("/api/v1/targets/{a_id}/disable"),
        None,
    )
    .await;
    assert_eq!(off.json["enabled"], false);
    assert_eq!(off.json["status"]["next_due_at"], Value::Null);
    send(&rt, "POST", "/api/v1/targets/999999/enable", None)
        .await
        .error(404, "not_found");

    // Delete.
    let gone = send(&rt, "DELETE", &format!("/api/v1/targets/{a_id}"), None).await;
    assert_eq!(gone.status, 204, "{}", gone.text);
    send(&rt, "DELETE", &format!("/api/v1/targets/{a_id}"), None)
        .await
        .error(404, "not_found");
    let all = send(&rt, "GET", "/api/v1/targets", None).await;
    assert_eq!(names(&all.json), ["sw-b2"]);

    rt.stop().await;
}

both_databases!(targets_are_created_read_replaced_and_deleted, targets_crud);

/// An ed25519 key encrypted with `passphrase`, made by `ssh-keygen`.
fn ssh_key(dir: &Path, passphrase: &str) -> String {
    let path = dir.join("id_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-C", "test", "-N", passphrase, "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen runs (install openssh-client)");
    assert!(out.status.success(), "{out:?}");
    std::fs::read_to_string(path).unwrap()
}

async fn credentials_never_leak(db: Db) {
    let rt = TestRuntime::start(db, &[test_bundle("prober")]).await;
    let dir = tempfile::tempdir().unwrap();
    let key = ssh_key(dir.path(), "s3cret-phrase-7");
    // The key's base64 lines: none may come back either.
    let key_lines: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();

    let credentials = [
        (
            "community",
            json!({ "kind": "snmp_community", "community": "s3cret-community-1" }),
        ),
        (
            "usm",
            json!({
                "kind": "snmp_usm", "user": "poller",
                "auth_protocol": "sha1", "auth_password": "s3cret-auth-2",
                "priv_protocol": "aes128", "priv_password": "s3cret-priv-3",
            }),
        ),
        (
            "basic",
            json!({ "kind": "http_basic", "username": "api", "password": "s3cret-basic-4" }),
        ),
        (
            "bearer",
            json!({ "kind": "http_bearer", "token": "s3cret-token-5" }),
        ),
        (
            "header",
            json!({ "kind": "http_header", "name": "X-Api-Key", "value": "s3cret-header-6" }),
        ),
        (
            "ssh-pw",
            json!({ "kind": "ssh_password", "username": "ops", "password": "s3cret-ssh-8" }),
        ),
        (
            "ssh-key",
            json!({
                "kind": "ssh_key", "username": "ops", "private_key": key,
                "passphrase": "s3cret-phrase-7",
            }),
        ),
    ];
    let mut answers = Vec::new();
    for (name, body) in &credentials {
        let put = send_json(
            &rt,
            "PUT",
            &format!("/api/v1/credentials/{name}"),
            body.clone(),
        )
        .await;
        assert_eq!(put.status, 200, "{name}: {}", put.text);
        assert_eq!(put.json["name"], *name);
        assert_eq!(put.json["kind"], body["kind"]);
        answers.push(put);
    }
    let usm = send(&rt, "GET", "/api/v1/credentials/usm", None).await;
    assert_eq!(
        usm.json["public"],
        json!({ "user": "poller", "auth_protocol": "sha1", "priv_protocol": "aes128" })
    );
    let header = send(&rt, "GET", "/api/v1/credentials/header", None).await;
    assert_eq!(header.json["public"], json!({ "header": "X-Api-Key" }));
    let ssh = send(&rt, "GET", "/api/v1/credentials/ssh-key", None).await;
    assert_eq!(
        ssh.json["public"],
        json!({ "username": "ops", "key_encrypted": true })
    );
    answers.extend([usm, header, ssh]);
    let list = send(&rt, "GET", "/api/v1/credentials", None).await;
    assert_eq!(
        names(&list.json),
        [
            "basic",
            "bearer",
            "community",
            "header",
            "ssh-key",
            "ssh-pw",
            "usm"
        ]
    );
    answers.push(list);
    for (name, _) in &credentials {
        answers.push(send(&rt, "GET", &format!("/api/v1/credentials/{name}"), None).await);
    }

    // Refusals name the field and echo no value either.
    let put = async |name: &str, body: Value| {
        send_json(&rt, "PUT", &format!("/api/v1/credentials/{name}"), body).await
    };
    let refusals = [
        (
            put("x", json!({ "kind": "http_bearer", "token": "s3cret-token-5", "password": "s3cret-basic-4" })).await,
            "credential: unknown field `password`",
        ),
        (
            put("x", json!({ "kind": "snmp_usm", "user": "u", "auth_protocol": "sha1", "auth_password": "s3cret" })).await,
            "credential field `auth_password`: the authentication pass phrase is shorter than 8 characters",
        ),
        (
            put("x", json!({ "kind": "snmp_usm", "user": "u", "auth_password": "s3cret-auth-2" })).await,
            "credential field `auth_protocol`: is required with `auth_password`",
        ),
        (
            put("x", json!({ "kind": "snmp_usm", "user": "u", "auth_protocol": "sha9", "auth_password": "s3cret-auth-2" })).await,
            "credential field `auth_protocol`: unknown authentication protocol",
        ),
        (
            put("x", json!({ "kind": "ssh_key", "username": "ops", "private_key": key })).await,
            "credential field `passphrase`: is required: the private key is encrypted",
        ),
        (
            put("x", json!({ "kind": "ssh_key", "username": "ops", "private_key": key, "passphrase": "s3cret-wrong" })).await,
            "credential field `private_key`: cannot be decoded",
        ),
        (
            put("x", json!({ "kind": "http_header", "name": "X Bad", "value": "s3cret-header-6" })).await,
            "credential field `name`: `X Bad` is not an HTTP header name",
        ),
        (
            put("x", json!({ "kind": "telnet", "password": "s3cret-ssh-8" })).await,
            "credential field `kind`: unknown variant `telnet`",
        ),
        (
            put("bad name", json!({ "kind": "http_bearer", "token": "s3cret-token-5" })).await,
            "credential field `name`:",
        ),
    ];
    for (answer, expected) in refusals {
        let m = answer.error(422, "invalid");
        assert!(m.starts_with(expected), "{m}");
        answers.push(answer);
    }
    send(&rt, "GET", "/api/v1/credentials/x", None)
        .await
        .error(404, "not_found");

    let secrets = [
        "s3cret-community-1",
        "s3cret-auth-2",
        "s3cret-priv-3",
        "s3cret-basic-4",
        "s3cret-token-5",
        "s3cret-header-6",
        "s3cret-phrase-7",
        "s3cret-ssh-8",
    ];
    for answer in &answers {
        for secret in secrets.iter().chain(&key_lines) {
            assert!(
                !answer.text.contains(secret),
                "`{secret}` leaked in: {}",
                answer.text
            );
        }
    }

    // What was stored is what the poller needs: USM keys derived from the passwords, which are
    // themselves not kept.
    let store = opsconductor::server::connect_store(&rt.config)
        .await
        .unwrap();
    let expected = UsmUser::from_passwords(
        "poller",
        Some((AuthProtocol::Sha1, "s3cret-auth-2")),
        Some((PrivProtocol::Aes128, "s3cret-priv-3")),
    )
    .unwrap();
    let stored = store.credential_secret("usm").await.unwrap().unwrap();
    assert_eq!(stored, CredentialSecret::SnmpUsm { user: expected });
    let bytes = String::from_utf8(stored.to_stored()).unwrap();
    assert!(!bytes.contains("s3cret"), "{bytes}");
    assert_eq!(
        store.credential_secret("ssh-key").await.unwrap(),
        Some(CredentialSecret::SshKey {
            username: "ops".into(),
            private_key: key.clone(),
            passphrase: Some("s3cret-phrase-7".into()),
        })
    );

    // A credential in use cannot be deleted; the refusal names the target.
    let t = send_json(
        &rt,
        "POST",
        "/api/v1/targets",
        json!({ "name": "edge", "address": "192.0.2.7", "addon_id": "prober", "credentials": "usm" }),
    )
    .await;
    assert_eq!(t.status, 201, "{}", t.text);
    let m = send(&rt, "DELETE", "/api/v1/credentials/usm", None)
        .await
        .error(409, "conflict");
    assert_eq!(
        m,
        "credential `usm` is used by target `edge`; point it at another credential or remove it \
         first"
    );
    let id = t.json["id"].as_i64().unwrap();
    assert_eq!(
        send(&rt, "DELETE", &format!("/api/v1/targets/{id}"), None)
            .await
            .status,
        204
    );
    let gone = send(&rt, "DELETE", "/api/v1/credentials/usm", None).await;
    assert_eq!(gone.status, 204, "{}", gone.text);
    send(&rt, "DELETE", "/api/v1/credentials/usm", None)
        .await
        .error(404, "not_found");
    send(&rt, "GET", "/api/v1/credentials/usm", None)
        .await
        .error(404, "not_found");

    store.close().await;
    rt.stop().await;
}

both_databases!(credentials_of_every_kind_never_leak, credentials_never_leak);
