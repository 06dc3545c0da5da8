//! Attacks on a real runtime, each expected to fail (issue 12 and docs/security.md): an operator
//! sending an administrator's credential to an address of their choosing, and polls aimed at
//! the server's own neighbourhood (loopback, the cloud metadata service).

use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use opsconductor::egress::EgressPolicy;
use opsconductor_tests::{Db, TestRuntime, bundle, client_with_bearer};
use serde_json::{Value, json};

/// An API key with `role`, made by the test's administrator.
async fn key_with_role(rt: &TestRuntime, role: &str) -> reqwest::Client {
    let (status, key) = rt
        .send_json(
            "POST",
            "/api/v1/api-keys",
            &json!({"name": format!("{role}-key"), "role": role}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    client_with_bearer(key["key"].as_str())
}

async fn set_credential(rt: &TestRuntime, name: &str, body: Value) {
    let (status, answer) = rt
        .send_json("PUT", &format!("/api/v1/credentials/{name}"), &body)
        .await;
    assert!(status == 200 || status == 201, "{status} {answer}");
}

/// Nothing connected to `listener` (a connection is in its queue by the time the client's
/// connect returns, so this needs no waiting).
fn assert_no_connection(listener: &TcpListener, what: &str) {
    assert_eq!(
        listener.accept().map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock),
        "{what}: something connected"
    );
}

fn assert_no_datagram(socket: &UdpSocket, what: &str) {
    let mut buf = [0u8; 1500];
    assert_eq!(
        socket.recv(&mut buf).map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock),
        "{what}: a datagram arrived"
    );
}

/// Credentials are administrators' secrets, and a poll hands one to the target's address: an
/// operator may manage targets, but not choose where a credential goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_cannot_send_an_admin_credential_to_an_address_of_its_choosing() {
    let rt = TestRuntime::start(Db::Sqlite, &[bundle("linux-ssh"), bundle("http-json")]).await;
    set_credential(
        &rt,
        "core-ssh",
        json!({"kind": "ssh_password", "username": "root", "password": "core-ssh-secret"}),
    )
    .await;
    let operator = key_with_role(&rt, "operator").await;
    let attacker = TcpListener::bind("127.0.0.1:0").unwrap();
    attacker.set_nonblocking(true).unwrap();
    let attacker_addr = attacker.local_addr().unwrap().to_string();

    // The attack: a target at the operator's own host, polled every second with core-ssh.
    let (status, answer) = rt
        .send_json_as(
            &operator,
            "POST",
            "/api/v1/targets",
            Some(
                &json!({"name": "mine", "address": attacker_addr, "addon_id": "linux-ssh",
               "schedule": {"interval_seconds": 1}, "credentials": "core-ssh"}),
            ),
        )
        .await;
    assert_eq!(status, 403, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("manage_credentials"), "{message}");
    assert!(!message.contains("core-ssh-secret"), "{message}");
    let (_, targets) = rt.get_json("/api/v1/targets").await;
    assert_eq!(targets, json!([]), "the refused target was created");

    // Operators still manage targets without credentials.
    let (status, own) = rt.send_json_as(&operator, "POST", "/api/v1/targets", Some(&json!({"name": "status-page", "address": "http://192.0.2.20", "addon_id": "http-json",
               "enabled": false, "config": {"path": "health"}})))
    .await;
    assert_eq!(status, 201, "{own}");
    // ... but cannot add a credential to one.
    let (status, answer) = rt
        .send_json_as(
            &operator,
            "PUT",
            &format!("/api/v1/targets/{}", own["id"]),
            Some(
                &json!({"name": "status-page", "address": attacker_addr, "addon_id": "linux-ssh",
               "enabled": true, "credentials": "core-ssh"}),
            ),
        )
        .await;
    assert_eq!(status, 403, "{answer}");

    // A credentialed target the administrator made: the operator may change its schedule and
    // config, not its address or addon.
    let (status, core) = rt
        .send_json(
            "POST",
            "/api/v1/targets",
            &json!({"name": "core-1", "address": "192.0.2.10:22", "addon_id": "linux-ssh",
                    "enabled": false, "credentials": "core-ssh"}),
        )
        .await;
    assert_eq!(status, 201, "{core}");
    let path = format!("/api/v1/targets/{}", core["id"]);
    let spec = |address: &str, addon: &str| {
        json!({"name": "core-1", "address": address, "addon_id": addon, "enabled": false,
               "schedule": {"interval_seconds": 120}, "credentials": "core-ssh"})
    };
    let (status, answer) = rt
        .send_json_as(
            &operator,
            "PUT",
            &path,
            Some(&spec(&attacker_addr, "linux-ssh")),
        )
        .await;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = rt
        .send_json_as(
            &operator,
            "PUT",
            &path,
            Some(&spec("192.0.2.10:22", "http-json")),
        )
        .await;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = rt
        .send_json_as(
            &operator,
            "PUT",
            &path,
            Some(&spec("192.0.2.10:22", "linux-ssh")),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["schedule"]["interval_seconds"], 120, "{answer}");
    let (_, stored) = rt.get_json(&path).await;
    assert_eq!(stored["address"], "192.0.2.10:22");

    // Each refusal is in the audit log as a denial.
    let (status, audit) = rt.get_json("/api/v1/audit?outcome=denied").await;
    assert_eq!(status, 200, "{audit}");
    let denied = audit["items"].as_array().unwrap();
    assert_eq!(denied.len(), 4, "{audit}");
    assert!(
        denied
            .iter()
            .all(|e| e["actor"].as_str().unwrap().starts_with("key:operator-key")),
        "{audit}"
    );

    assert_no_connection(&attacker, "the operator's host");
    rt.stop().await;
}

/// The default egress policy: a poll of loopback or link-local (the cloud metadata service) is
/// refused before a packet leaves, for each poller, whether the address is a literal or a name
/// that resolves to one; the refusal is the poll's recorded error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_of_the_servers_neighbourhood_are_refused_before_a_packet_leaves() {
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[
            bundle("http-json"),
            bundle("snmp-interface"),
            bundle("linux-ssh"),
        ],
        |c| c.poll = EgressPolicy::default(),
        async |_| {},
    )
    .await;
    set_credential(
        &rt,
        "community",
        json!({"kind": "snmp_community", "community": "public"}),
    )
    .await;
    set_credential(
        &rt,
        "ssh",
        json!({"kind": "ssh_password", "username": "root", "password": "ssh-secret"}),
    )
    .await;
    let http_peer = TcpListener::bind("127.0.0.2:0").unwrap();
    let named_peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let ssh_peer = TcpListener::bind("127.0.0.2:0").unwrap();
    let snmp_peer = UdpSocket::bind("127.0.0.2:0").unwrap();
    for l in [&http_peer, &named_peer, &ssh_peer] {
        l.set_nonblocking(true).unwrap();
    }
    snmp_peer.set_nonblocking(true).unwrap();
    let port = |l: &TcpListener| l.local_addr().unwrap().port();

    let targets = [
        (
            "http-loopback",
            json!({"address": format!("http://127.0.0.2:{}", port(&http_peer)), "addon_id": "http-json", "config": {"path": "health"}}),
            "refuses 127.0.0.2 (loopback address)",
        ),
        (
            "http-named",
            json!({"address": format!("http://localhost:{}", port(&named_peer)), "addon_id": "http-json", "config": {"path": "health"}}),
            "(loopback address)",
        ),
        (
            "http-metadata",
            json!({"address": "http://169.254.169.254", "addon_id": "http-json", "config": {"path": "latest/meta-data/iam/security-credentials/", "status_pointer": "/Token"}}),
            "refuses 169.254.169.254 (link-local address)",
        ),
        (
            "http-mapped",
            json!({"address": "http://[::ffff:169.254.169.254]", "addon_id": "http-json", "config": {"path": "latest"}}),
            "(link-local address)",
        ),
        (
            "snmp-loopback",
            json!({"address": snmp_peer.local_addr().unwrap().to_string(), "addon_id": "snmp-interface", "credentials": "community"}),
            "refuses 127.0.0.2 (loopback address)",
        ),
        (
            "ssh-loopback",
            json!({"address": format!("127.0.0.2:{}", port(&ssh_peer)), "addon_id": "linux-ssh", "credentials": "ssh"}),
            "refuses 127.0.0.2 (loopback address)",
        ),
    ];
    let mut ids = Vec::new();
    for (name, spec, _) in &targets {
        let mut spec = spec.clone();
        spec["name"] = json!(name);
        spec["schedule"] = json!({"interval_seconds": 3600});
        let (status, target) = rt.send_json("POST", "/api/v1/targets", &spec).await;
        assert_eq!(status, 201, "{target}");
        let id = target["id"].as_i64().unwrap();
        let (status, answer) = rt
            .send_json("POST", &format!("/api/v1/targets/{id}/poll"), &json!({}))
            .await;
        assert_eq!(status, 202, "{answer}");
        ids.push(id);
    }
    for ((name, _, expected), id) in targets.iter().zip(&ids) {
        let target = rt
            .wait_for(&format!("a recorded poll of {name}"), 30, async |rt| {
                let (_, t) = rt.get_json(&format!("/api/v1/targets/{id}")).await;
                t["status"]["last_poll_status"].is_string().then_some(t)
            })
            .await;
        assert_eq!(
            target["status"]["last_poll_status"], "failed",
            "{name}: {target}"
        );
        let error = target["status"]["last_poll_error"].as_str().unwrap();
        assert!(error.contains("egress policy"), "{name}: {error}");
        assert!(error.contains(expected), "{name}: {error}");
        assert!(error.contains("[poll] allow"), "{name}: {error}");
    }
    assert_no_connection(&http_peer, "HTTP on 127.0.0.2");
    assert_no_connection(&named_peer, "HTTP to localhost");
    assert_no_connection(&ssh_peer, "SSH on 127.0.0.2");
    assert_no_datagram(&snmp_peer, "SNMP on 127.0.0.2");
    // Nothing was tried, so nothing is "unreachable".
    let alerts = rt.alerts("").await;
    assert!(
        alerts
            .iter()
            .all(|a| a["alert_type"] != "targetUnreachable"),
        "{alerts:?}"
    );
    rt.stop().await;
}

/// Sends `request` on a fresh connection and reads until the server closes it.
async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection");
    String::from_utf8_lossy(&answer).into_owned()
}

async fn http_stats(rt: &TestRuntime) -> Value {
    let (status, stats) = rt.get_json("/api/v1/stats").await;
    assert_eq!(status, 200, "{stats}");
    stats["http"].clone()
}

/// Slowloris: connections that send half a request line, or a head and then too little body,
/// are closed by the header-read and request timeouts, while the server keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_by_the_timeouts() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[],
        |c| {
            c.http.header_read_timeout_seconds = 1;
            c.http.request_timeout_seconds = 1;
            c.http.max_connections_per_ip = 2_000;
        },
        async |_| {},
    )
    .await;
    let addr = rt.server.addr();
    let mut slow = Vec::new();
    for _ in 0..500 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /api/v1/stat").await.unwrap();
        slow.push(stream);
    }
    // Held open, they do not keep anyone else out.
    let (status, health) = rt.get_json("/health").await;
    assert_eq!(status, 200, "{health}");
    for (i, stream) in slow.iter_mut().enumerate() {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("connection {i} is still open after 30 s"));
        // Closed (EOF or reset), without an answer to the half request.
        assert!(matches!(read, Ok(0) | Err(_)), "connection {i}: {read:?}");
    }
    // A head, then a body that never completes: 408 in the API's error shape.
    let answer = raw_exchange(
        addr,
        b"POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"username\"",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");

    let stats = http_stats(&rt).await;
    assert!(stats["header_timeouts"].as_u64().unwrap() >= 500, "{stats}");
    assert_eq!(stats["request_timeouts"], 1, "{stats}");
    rt.stop().await;
}

/// More connections than the caps allow, from one address: the ones over are answered 503 and
/// closed at once, and a slot given back is taken again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_caps_are_refused_at_once() {
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[],
        |c| {
            c.http.max_connections_per_ip = 20;
            c.http.header_read_timeout_seconds = 120;
        },
        async |_| {},
    )
    .await;
    let addr = rt.server.addr();
    // The test's own client keeps a pooled connection or two; fill the rest.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let health = b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let refused = raw_exchange(addr, health).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.contains("too many connections open from your address"),
        "{refused}"
    );
    idle.clear();
    // The server notices the closed connections shortly: a new one is served then.
    let mut answer = String::new();
    for _ in 0..100 {
        answer = raw_exchange(addr, health).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let stats = http_stats(&rt).await;
    assert!(stats["refused_per_ip"].as_u64().unwrap() >= 1, "{stats}");
    rt.stop().await;
}

/// Refused calls are audited, reads of administration included, and the service role (API
/// keys of integrations) may act on alerts but not silence them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_audited_and_integrations_cannot_silence() {
    let rt = TestRuntime::start(Db::Sqlite, &[]).await;
    let viewer = key_with_role(&rt, "viewer").await;
    let service = key_with_role(&rt, "service").await;
    let (status, _) = rt
        .send_json_as(&viewer, "GET", "/api/v1/users", Some(&Value::Null))
        .await;
    assert_eq!(status, 403);
    let (status, answer) = rt.send_json_as(&service, "POST", "/api/v1/silences", Some(&json!({"matchers": {"severity": ["critical"]}, "ends_at": "2099-01-01T00:00:00Z", "comment": "hide it all"})))
    .await;
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("manage_silences"),
        "{answer}"
    );
    let (_, audit) = rt.get_json("/api/v1/audit?outcome=denied").await;
    let entries = audit["items"].as_array().unwrap();
    let found = |action: &str, target: &str| {
        entries
            .iter()
            .any(|e| e["action"] == action && e["target"] == target)
    };
    assert!(found("access.denied", "GET /api/v1/users"), "{audit}");
    assert!(found("silence.create", "POST /api/v1/silences"), "{audit}");
    rt.stop().await;
}

/// A flood of well-formed, made-up refresh tokens is answered from a read: it never waits for
/// the database's write lock (held here by another connection for the whole flood), which
/// alert ingest shares. Beyond `refresh_per_ip_per_minute` (60) the address is told to slow
/// down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_refresh_tokens_never_wait_for_the_writer() {
    use sqlx::Connection;
    let rt = TestRuntime::start(Db::Sqlite, &[]).await;
    let db = rt.config.database_url.clone();
    let mut locker = sqlx::SqliteConnection::connect(&db).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();

    let anonymous = client_with_bearer(None);
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..70 {
        let token = format!("ocr_{:0>43}", i);
        let (status, answer) = rt
            .send_json_as(
                &anonymous,
                "POST",
                "/api/v1/auth/refresh",
                Some(&json!({"refresh_token": token})),
            )
            .await;
        if status == 401 {
            assert!(
                answer["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("refresh token"),
                "{answer}"
            );
        }
        *statuses.entry(status).or_insert(0) += 1;
    }
    // All answered while the write lock was still held.
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    assert_eq!(
        statuses,
        [(401, 60), (429, 10)].into_iter().collect(),
        "{statuses:?}"
    );
    rt.stop().await;
}

/// Someone guessing `admin`'s password from one address is slowed down there, and only
/// there: `admin` still signs in from elsewhere. The first start's password went to a file
/// only its owner may read, since the test's standard error is not a terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_can_lock_admin_out_from_elsewhere() {
    use std::os::unix::fs::PermissionsExt;
    let rt = TestRuntime::start(Db::Sqlite, &[]).await;
    let file = rt.config.data_dir.join("initial-admin-password");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", file.display());
    let password = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    let data_mode = std::fs::metadata(&rt.config.data_dir)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(data_mode, 0o700);

    let attacker = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    let login = |password: &str| json!({"username": "admin", "password": password});
    for _ in 0..10 {
        let (status, _) = rt
            .send_json_as(
                &attacker,
                "POST",
                "/api/v1/auth/login",
                Some(&login("guess")),
            )
            .await;
        assert_eq!(status, 401);
    }
    let (status, answer) = rt
        .send_json_as(
            &attacker,
            "POST",
            "/api/v1/auth/login",
            Some(&login(&password)),
        )
        .await;
    assert_eq!(status, 429, "{answer}");
    let (status, answer) = rt
        .send_json_as(
            &client_with_bearer(None),
            "POST",
            "/api/v1/auth/login",
            Some(&login(&password)),
        )
        .await;
    assert_eq!(status, 200, "admin is locked out: {answer}");

    // A login body is small; a large one is not read.
    let huge = json!({"username": "admin", "password": "x".repeat(10_000)});
    let (status, _) = rt
        .send_json_as(
            &client_with_bearer(None),
            "POST",
            "/api/v1/auth/login",
            Some(&huge),
        )
        .await;
    assert_eq!(status, 413);
    rt.stop().await;
}

/// A webhook addon whose authentication nobody set takes posts on loopback (as after `just
/// run`), but on a runtime others can reach it refuses them, saying how to set it; an explicit
/// `mode: none` is an operator's choice and is honoured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unset_webhook_authentication_fails_closed_beyond_loopback() {
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[bundle("alertmanager")],
        |c| c.listen = "0.0.0.0:0".parse().unwrap(),
        async |_| {},
    )
    .await;
    let firing = opsconductor_tests::fixture("alertmanager", "firing");
    let (status, answer) = rt.post_webhook("alertmanager", firing.clone()).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "webhook_misconfigured", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("webhook-auth alertmanager"), "{message}");
    assert!(rt.alerts("").await.is_empty());

    let (status, answer) = rt
        .send_json(
            "PUT",
            "/api/v1/addons/alertmanager/settings",
            &json!({"webhook": {"auth": {"mode": "none"}}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    rt.wait_for("the explicit opt-out to apply", 10, async |rt| {
        let (status, _) = rt.post_webhook("alertmanager", firing.clone()).await;
        (status == 200).then_some(())
    })
    .await;
    let (_, stats) = rt.get_json("/api/v1/stats").await;
    assert!(
        stats["webhooks"]["misconfigured"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    rt.stop().await;
}

/// A discovery report answers a datagram whose source may be forged: at most 20 a second go to
/// one address, and the rest are counted, not sent, so the trap port is no amplifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_reports_are_rate_limited_per_source() {
    let rt = TestRuntime::start(Db::Sqlite, &[]).await;
    let prober = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..100 {
        let probe = opsconductor::snmp::client::encode_discovery(i, i).unwrap();
        prober.send_to(&probe, rt.trap_addr()).unwrap();
    }
    let stats = rt
        .wait_for("all 100 probes counted", 10, async |rt| {
            let (_, stats) = rt.get_json("/api/v1/stats").await;
            let traps = stats["traps"].clone();
            (traps["received"] == 100).then_some(traps)
        })
        .await;
    let sent = stats["reports_sent"].as_u64().unwrap();
    let limited = stats["reports_rate_limited"].as_u64().unwrap();
    assert_eq!(sent + limited, 100, "{stats}");
    // 20 at once, then 20 a second: far fewer than asked for however slow the test machine.
    assert!((20..=50).contains(&sent), "{stats}");
    rt.stop().await;
}

/// One principal may hold `[websocket] max_per_principal` sockets, whether it authenticates in
/// the upgrade or in its first message; one address may open `websocket_per_ip_per_minute`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_connections_are_capped_per_principal_and_rate_limited_per_address() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::{Error as WsError, Message};
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[],
        |c| {
            c.websocket.max_per_principal = 3;
            c.limits.websocket_per_ip_per_minute = 8;
        },
        async |_| {},
    )
    .await;
    let url = format!("ws://{}/ws", rt.server.addr());
    let with_key = || {
        let mut request = url.as_str().into_client_request().unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", rt.admin_key).parse().unwrap(),
        );
        request
    };
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            tokio_tungstenite::connect_async(with_key())
                .await
                .unwrap()
                .0,
        );
    }
    // The fourth, authenticated in the upgrade: refused before it is a socket.
    match tokio_tungstenite::connect_async(with_key()).await {
        Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), 429),
        other => panic!("a fourth socket was let in: {other:?}"),
    }
    // The fourth, authenticated by its first message: closed with 4429.
    let (mut anonymous, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    anonymous
        .send(Message::text(
            json!({"type": "auth", "token": rt.admin_key}).to_string(),
        ))
        .await
        .unwrap();
    let mut closed_with = None;
    while let Some(message) = anonymous.next().await {
        if let Ok(Message::Close(Some(frame))) = message {
            closed_with = Some(u16::from(frame.code));
            break;
        }
    }
    assert_eq!(closed_with, Some(4429));
    // Closing one lets the next in.
    open.pop().unwrap().close(None).await.unwrap();
    let mut admitted = false;
    for _ in 0..50 {
        if let Ok((socket, _)) = tokio_tungstenite::connect_async(with_key()).await {
            open.push(socket);
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted, "a freed place was not given back");
    // Eight upgrades a minute from this address have been used: the next is told to wait.
    for _ in 0..10 {
        if let Err(WsError::Http(response)) = tokio_tungstenite::connect_async(url.as_str()).await
            && response.status().as_u16() == 429
            && response.headers().contains_key("retry-after")
        {
            rt.stop().await;
            return;
        }
    }
    panic!("upgrades from one address are not rate limited");
}

/// What a stolen database holds: the test's secrets written through the API and the CLI's
/// store calls, then every byte of the SQLite files (free pages and WAL included) or every
/// row of every PostgreSQL table, searched for each of them.
async fn no_secret_is_stored_in_clear(db: Db) {
    const COMMUNITY: &str = "community-in-clear-5b1d";
    const SSH_PASSWORD: &str = "ssh-password-in-clear-77e3";
    const HMAC_SECRET: &str = "webhook-secret-in-clear-0c94a1f2e3";
    let usm = opsconductor::inbound::trap::credentials::user_record(
        "usm-in-clear",
        Some(("sha".parse().unwrap(), "usm-auth-password-1")),
        Some(("aes".parse().unwrap(), "usm-priv-password-2")),
    )
    .unwrap();
    let ku: Vec<Vec<u8>> = vec![usm.auth_key.clone().unwrap(), usm.priv_key.clone().unwrap()];
    let rt = TestRuntime::start_with(db, &[bundle("alertmanager")], async |store| {
        store
            .snmp_set_community("lab", COMMUNITY, chrono::Utc::now())
            .await
            .unwrap();
        store.snmp_set_user(&usm, chrono::Utc::now()).await.unwrap();
    })
    .await;
    set_credential(
        &rt,
        "core-ssh",
        json!({"kind": "ssh_password", "username": "root", "password": SSH_PASSWORD}),
    )
    .await;
    let (status, answer) = rt
        .send_json(
            "PUT",
            "/api/v1/addons/alertmanager/settings",
            &json!({"webhook": {"auth": {"mode": "hmac", "secret": HMAC_SECRET}}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");

    // Through the store, with the key, every secret reads back as written.
    let store = opsconductor::server::connect_store(&rt.config)
        .await
        .unwrap();
    let signing_keys: Vec<Vec<u8>> = store
        .signing_keys()
        .await
        .unwrap()
        .iter()
        .map(|k| k.secret().to_vec())
        .collect();
    assert!(!signing_keys.is_empty(), "the runtime made a signing key");
    assert_eq!(
        store.snmp_communities().await.unwrap()[0].community,
        COMMUNITY
    );
    assert_eq!(store.snmp_users().await.unwrap()[0].auth_key, usm.auth_key);
    let settings = store.addon_settings("alertmanager").await.unwrap().unwrap();
    assert_eq!(settings["webhook"]["auth"]["secret"], HMAC_SECRET);

    // The needles: each secret as bytes, and the binary ones in hex too (PostgreSQL shows
    // bytea as hex text).
    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("community".into(), COMMUNITY.into()),
        ("ssh password".into(), SSH_PASSWORD.into()),
        ("webhook secret".into(), HMAC_SECRET.into()),
    ];
    for (what, bytes) in ku
        .iter()
        .map(|k| ("USM Ku", k))
        .chain(signing_keys.iter().map(|k| ("signing key", k)))
    {
        needles.push((what.into(), bytes.clone()));
        needles.push((format!("{what} (hex)"), hex::encode(bytes).into_bytes()));
    }

    let haystack: Vec<u8> = match db {
        Db::Postgres => {
            let mut all = Vec::new();
            let tables: Vec<String> = store_rows(
                &rt,
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public'",
            )
            .await;
            assert!(tables.len() > 10, "{tables:?}");
            for table in tables {
                let rows = store_rows(&rt, &format!("SELECT t::text FROM \"{table}\" t")).await;
                for row in rows {
                    all.extend_from_slice(row.as_bytes());
                }
            }
            all
        }
        Db::Sqlite => {
            // Read while the runtime runs: the WAL still holds the latest writes.
            store.close().await;
            let data = rt.config.data_dir.clone();
            let mut all = Vec::new();
            for entry in std::fs::read_dir(&data).unwrap() {
                let path = entry.unwrap().path();
                if path.to_string_lossy().contains("opsconductor.db") {
                    all.extend(std::fs::read(&path).unwrap());
                }
            }
            rt.stop().await;
            assert!(all.len() > 100_000, "read the database files");
            for (what, needle) in &needles {
                assert!(
                    !contains(&all, needle),
                    "the SQLite files hold the {what} in clear"
                );
            }
            return;
        }
    };
    for (what, needle) in &needles {
        assert!(
            !contains(&haystack, needle),
            "the PostgreSQL tables hold the {what} in clear"
        );
    }
    store.close().await;
    rt.stop().await;
}
opsconductor_tests::both_databases!(
    no_secret_is_stored_in_clear_e2e,
    no_secret_is_stored_in_clear
);

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every row `sql` returns, as its one text column, read straight from the PostgreSQL
/// database (no store, no key).
async fn store_rows(rt: &TestRuntime, sql: &str) -> Vec<String> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&rt.config.database_url)
        .await
        .unwrap();
    let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap();
    rows.into_iter().map(|(r,)| r).collect()
}

/// One addon's event may not become a flood in the writer: a guest returning more alerts than
/// the cap stores none of them and the sender learns why; under the cap all are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_cannot_flood_the_store_with_alerts() {
    let rt = TestRuntime::start(Db::Sqlite, &[opsconductor_tests::test_bundle("chaos")]).await;
    let over = opsconductor::ingest::MAX_ALERTS_PER_EVENT + 1;
    let (status, answer) = rt
        .post_webhook(
            "chaos",
            json!({"do": "flood", "n": over}).to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "too_many_alerts", "{answer}");
    assert!(rt.alerts("?addon=chaos").await.is_empty());
    assert_eq!(rt.addon("chaos").await["ingest"]["rejected"], 1);

    let (status, answer) = rt
        .post_webhook(
            "chaos",
            json!({"do": "flood", "n": 25}).to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["alerts"], 25, "{answer}");
    rt.stop().await;
}

/// A sender hammering one addon's webhook is answered 429 with `Retry-After` beyond the
/// addon's rate, and every request is counted once; another addon's webhook is not charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loud_sender_is_rate_limited_per_addon() {
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[
            bundle("alertmanager"),
            opsconductor_tests::test_bundle("chaos"),
        ],
        |config| config.limits.webhook_per_addon_per_second = 1,
        async |_| {},
    )
    .await;
    let body = opsconductor_tests::fixture("alertmanager", "firing");
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let response = rt
            .http
            .post(rt.url("/webhooks/alertmanager"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            let retry: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&retry), "Retry-After {retry}");
        }
        statuses.push(response.status().as_u16());
    }
    let limited = statuses.iter().filter(|s| **s == 429).count() as u64;
    assert!(limited >= 5, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );

    // The other addon still has its whole allowance.
    let (status, answer) = rt
        .post_webhook("chaos", json!({"do": "ok"}).to_string().into_bytes())
        .await;
    assert_eq!(status, 200, "{answer}");

    let (_, stats) = rt.get_json("/api/v1/stats").await;
    let w = &stats["webhooks"];
    assert_eq!(w["rate_limited"], limited, "{w}");
    assert_eq!(w["accepted"], 11 - limited, "{w}");
    assert_eq!(w["received"], 11, "{w}");
    rt.stop().await;
}
