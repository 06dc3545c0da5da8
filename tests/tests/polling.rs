//! Polling end to end: the scheduler polls targets through the real pollers against real peers
//! on loopback — an HTTP server in this test, net-snmp's `snmpd` and OpenSSH's `sshd` run as
//! child processes (tests/src/snmpd.rs, tests/src/sshd.rs) — hands the results to real addon
//! components and stores the alerts. Also: a scripted poll's capability checks, and the host's
//! own reachability and host-key alerts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opsconductor::target::CredentialSecret;
use opsconductor_tests::snmpd::{self, Snmpd};
use opsconductor_tests::sshd::{Sshd, TEST_USER};
use opsconductor_tests::{Db, TestRuntime, both_databases, bundle, test_bundle};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A small HTTP peer: `/health` answers the JSON in `health`; `/ok` answers `fine`;
/// `/away` redirects to `redirect_to`. Every request is counted by Host header.
#[derive(Clone, Default)]
struct Peer {
    health: Arc<Mutex<Value>>,
    redirect_to: Arc<Mutex<String>>,
    hits: Arc<Mutex<HashMap<String, u32>>>,
}

async fn peer_handler(State(peer): State<Peer>, headers: HeaderMap, req: Request) -> Response {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    *peer.hits.lock().unwrap().entry(host).or_default() += 1;
    match req.uri().path() {
        "/health" => axum::Json(peer.health.lock().unwrap().clone()).into_response(),
        "/ok" => "fine".into_response(),
        "/slow" => {
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            "slow but fine".into_response()
        }
        "/away" => (
            StatusCode::FOUND,
            [("location", peer.redirect_to.lock().unwrap().clone())],
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

impl Peer {
    /// Serves on `addr` (port 0 for a new one) until the returned handle is aborted.
    async fn serve(&self, addr: SocketAddr) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind(addr).await.expect("peer binds");
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .fallback(peer_handler)
            .with_state(self.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (addr, task)
    }

    fn hits(&self, host: &str) -> u32 {
        self.hits.lock().unwrap().get(host).copied().unwrap_or(0)
    }
}

async fn create_target(rt: &TestRuntime, spec: &Value) -> i64 {
    let (status, target) = rt.send_json("POST", "/api/v1/targets", spec).await;
    assert_eq!(status, 201, "{target}");
    target["id"].as_i64().expect("target id")
}

async fn target(rt: &TestRuntime, id: i64) -> Value {
    let (status, t) = rt.get_json(&format!("/api/v1/targets/{id}")).await;
    assert_eq!(status, 200, "{t}");
    t
}

/// Waits until the target has recorded a poll with `status`, and returns the target.
async fn wait_poll_status(rt: &TestRuntime, id: i64, status: &str, secs: u64) -> Value {
    rt.wait_for(
        &format!("target {id} to record a poll with status {status}"),
        secs,
        async |rt| {
            let t = target(rt, id).await;
            (t["status"]["last_poll_status"] == status).then_some(t)
        },
    )
    .await
}

fn field<'a>(alert: &'a Value, name: &str) -> &'a str {
    alert["fields"][name].as_str().unwrap_or_default()
}

/// A scripted poll reaches what its capabilities list and nothing else: another host, a
/// redirect to another host and an undeclared SSH command are refused (the addon sees
/// `denied`), counted, and never reach the network. Time spent waiting for I/O does not count
/// against the addon's CPU budget.
async fn scripted_poll_is_held_to_its_capabilities(db: Db) {
    let peer = Peer::default();
    let (addr, _task) = peer.serve("127.0.0.1:0".parse().unwrap()).await;
    let elsewhere = format!("127.0.0.2:{}", addr.port());
    *peer.redirect_to.lock().unwrap() = format!("http://{elsewhere}/ok");

    let rt = TestRuntime::start(db, &[test_bundle("prober")]).await;
    let id = create_target(
        &rt,
        &json!({
            "name": "probe-1",
            "address": format!("127.0.0.1:{}", addr.port()),
            "addon_id": "prober",
            "schedule": { "interval_seconds": 3600 },
            "config": { "steps": [
                { "http": "/ok" },
                { "http": format!("http://{elsewhere}/ok") },
                { "http": "/away" },
                { "ssh": "rm -rf /" },
                // Waiting 1.5 s for the peer is not guest CPU: the prober's budget is 200 ms.
                { "http": "/slow" },
            ] },
        }),
    )
    .await;
    // Hourly, so the first poll could be up to a minute away: ask for one now.
    let (status, answer) = rt
        .send_json("POST", &format!("/api/v1/targets/{id}/poll"), &json!({}))
        .await;
    assert_eq!(status, 202, "{answer}");
    wait_poll_status(&rt, id, "ok", 30).await;

    let alerts = rt.alerts("?addon=prober").await;
    let step = |i: usize| {
        alerts
            .iter()
            .find(|a| a["fields"]["step"].as_str() == Some(i.to_string().as_str()))
            .unwrap_or_else(|| panic!("no alert for step {i}: {alerts:?}"))
    };
    assert_eq!(field(step(0), "outcome"), "ok", "{:?}", step(0));
    assert_eq!(field(step(0), "detail"), "200 fine");
    for i in 1..=3 {
        assert_eq!(
            field(step(i), "outcome"),
            "denied",
            "step {i}: {:?}",
            step(i)
        );
    }
    assert!(
        field(step(3), "detail").contains("ssh_commands"),
        "{:?}",
        step(3)
    );
    assert_eq!(
        peer.hits(&elsewhere),
        0,
        "a refused request reached the other host"
    );
    assert_eq!(
        peer.hits(&addr.to_string()),
        3,
        "/ok, /away and /slow reach the target"
    );

    let addon = rt.addon("prober").await;
    assert_eq!(addon["ingest"]["io_denied"], 3, "{addon}");
    assert_eq!(addon["ingest"]["polls"], 1, "{addon}");
    rt.stop().await;
}
both_databases!(
    scripted_capabilities,
    scripted_poll_is_held_to_its_capabilities
);

/// http-json against a live endpoint: a bad status raises an alert; a dead endpoint raises
/// `targetUnreachable` once however many polls fail; the endpoint's return clears both.
async fn http_target_goes_bad_dark_and_comes_back(db: Db) {
    let peer = Peer::default();
    *peer.health.lock().unwrap() = json!({ "status": "ok" });
    let (addr, task) = peer.serve("127.0.0.1:0".parse().unwrap()).await;

    let rt = TestRuntime::start(db, &[bundle("http-json")]).await;
    let id = create_target(
        &rt,
        &json!({
            "name": "api-1",
            "address": format!("127.0.0.1:{}", addr.port()),
            "addon_id": "http-json",
            "schedule": { "interval_seconds": 1 },
            "config": { "path": "health" },
        }),
    )
    .await;
    wait_poll_status(&rt, id, "ok", 30).await;
    assert!(rt.alerts("?addon=http-json&status=active").await.is_empty());

    *peer.health.lock().unwrap() = json!({ "status": "degraded" });
    rt.wait_for("statusNotOk to be raised", 30, async |rt| {
        let alerts = rt.alerts("?addon=http-json&status=active").await;
        alerts
            .iter()
            .any(|a| a["alert_type"] == "statusNotOk")
            .then_some(())
    })
    .await;

    task.abort();
    let _ = task.await;
    let down = wait_poll_status(&rt, id, "unreachable", 30).await;
    let polls_when_down = down["status"]["polls_total"].as_i64().unwrap();
    // A few more failed polls: still one alert, its occurrence count growing.
    rt.wait_for("three more failed polls", 30, async |rt| {
        let t = target(rt, id).await;
        (t["status"]["polls_total"].as_i64().unwrap() >= polls_when_down + 3).then_some(())
    })
    .await;
    let unreachable: Vec<Value> = rt
        .alerts("?addon=http-json")
        .await
        .into_iter()
        .filter(|a| a["alert_type"] == "targetUnreachable")
        .collect();
    assert_eq!(unreachable.len(), 1, "{unreachable:?}");
    assert_eq!(unreachable[0]["status"], "active");
    assert!(unreachable[0]["occurrence_count"].as_i64().unwrap() >= 3);
    assert_eq!(unreachable[0]["device_ip"], "127.0.0.1");

    *peer.health.lock().unwrap() = json!({ "status": "ok" });
    let (_, _task) = peer.serve(addr).await;
    rt.wait_for("both alerts to clear", 30, async |rt| {
        rt.alerts("?addon=http-json&status=active")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let all = rt.alerts("?addon=http-json").await;
    assert!(all.iter().all(|a| a["status"] == "resolved"), "{all:?}");
    assert_eq!(
        all.iter()
            .filter(|a| a["alert_type"] == "targetUnreachable")
            .count(),
        1,
        "the unreachable alert is raised once and resolved once: {all:?}"
    );
    rt.stop().await;
}
both_databases!(http_reachability, http_target_goes_bad_dark_and_comes_back);

/// snmp-interface against real snmpd agents, one polled over SNMPv3 authPriv (SHA/AES) and
/// one over v2c: an interface the agent reports down raises `interfaceDown`; the agent
/// reporting it up again clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snmp_interface_down_and_up_over_v3_and_v2c() {
    // ifIndex 1 is the loopback interface, administratively up; `override` makes the agent
    // report it operationally down.
    let down = "override .1.3.6.1.2.1.2.2.1.8.1 integer 2";
    let mut agent_v3 = Snmpd::start_with(&[down]).await;
    let mut agent_v2c = Snmpd::start_with(&[down]).await;
    let rt = TestRuntime::start_with(Db::Sqlite, &[bundle("snmp-interface")], async |store| {
        let user = snmpd::SHA_AES.usm();
        store
            .set_credential(
                "lab-v3",
                &CredentialSecret::SnmpUsm { user },
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        store
            .set_credential(
                "lab-v2c",
                &CredentialSecret::SnmpCommunity {
                    community: snmpd::COMMUNITY.into(),
                },
                chrono::Utc::now(),
            )
            .await
            .unwrap();
    })
    .await;
    // Both agents are 127.0.0.1, so their interface alerts share a device and a fingerprint:
    // one alert, whose latest message names the target that last reported it. Each target is
    // therefore checked while it is the only one polling.
    let targets = [
        ("agent-v3", agent_v3.addr(), "lab-v3"),
        ("agent-v2c", agent_v2c.addr(), "lab-v2c"),
    ];
    for (name, addr, credentials) in targets {
        let id = create_target(
            &rt,
            &json!({
                "name": name,
                "address": addr.to_string(),
                "addon_id": "snmp-interface",
                "schedule": { "interval_seconds": 1 },
                "credentials": credentials,
            }),
        )
        .await;
        let alert = rt
            .wait_for(
                &format!("interfaceDown reported by {name}"),
                30,
                async |rt| {
                    rt.alerts("?addon=snmp-interface&status=active")
                        .await
                        .into_iter()
                        .find(|a| {
                            a["alert_type"] == "interfaceDown"
                                && a["message"].as_str().unwrap_or_default().contains(name)
                        })
                },
            )
            .await;
        assert_eq!(alert["fields"]["ifIndex"], "1", "{alert}");
        assert_eq!(alert["fields"]["operStatus"], "down", "{alert}");
        let t = target(&rt, id).await;
        assert_eq!(t["status"]["last_poll_status"], "ok", "{t}");
    }

    agent_v3.restart_with(&[]).await;
    agent_v2c.restart_with(&[]).await;
    rt.wait_for("interfaceDown to clear", 30, async |rt| {
        rt.alerts("?addon=snmp-interface&status=active")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    rt.stop().await;
}

/// linux-ssh against a real sshd with key authentication: alerts from `df -P` thresholds;
/// then the server's host key changes, the poll is refused before logging in and
/// `sshHostKeyChanged` is raised; once the operator forgets the old key, polling resumes and
/// the alert clears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linux_ssh_polls_and_refuses_a_changed_host_key() {
    let mut sshd = Sshd::start();
    let key = sshd.ed25519.clone();
    let rt = TestRuntime::start_with(Db::Sqlite, &[bundle("linux-ssh")], async |store| {
        store
            .set_credential(
                "ssh-key",
                &CredentialSecret::SshKey {
                    username: TEST_USER.into(),
                    private_key: key.pem.clone(),
                    passphrase: None,
                },
                chrono::Utc::now(),
            )
            .await
            .unwrap();
    })
    .await;
    let id = create_target(
        &rt,
        &json!({
            "name": "linux-1",
            "address": format!("127.0.0.1:{}", sshd.port()),
            "addon_id": "linux-ssh",
            "schedule": { "interval_seconds": 1 },
            "credentials": "ssh-key",
            // Every real filesystem is more than 0% used: one diskFull alert each.
            "config": { "disk_used_percent_max": 0 },
        }),
    )
    .await;
    wait_poll_status(&rt, id, "ok", 30).await;
    rt.wait_for("diskFull alerts", 30, async |rt| {
        let alerts = rt.alerts("?addon=linux-ssh&status=active").await;
        alerts
            .iter()
            .any(|a| a["alert_type"] == "diskFull")
            .then_some(())
    })
    .await;
    let endpoint = format!("127.0.0.1:{}", sshd.port());
    let (_, pinned) = rt.get_json("/api/v1/ssh-host-keys").await;
    assert_eq!(pinned[0]["endpoint"], endpoint.as_str(), "{pinned}");
    assert_eq!(
        pinned[0]["fingerprint"],
        sshd.host_key().fingerprint.as_str(),
        "pinned on first use: {pinned}"
    );

    sshd.restart_with_new_host_key();
    let refused = wait_poll_status(&rt, id, "host_key_mismatch", 30).await;
    assert!(
        refused["status"]["last_poll_error"]
            .as_str()
            .unwrap()
            .contains("changed"),
        "{refused}"
    );
    rt.wait_for("sshHostKeyChanged", 30, async |rt| {
        rt.alerts("?addon=linux-ssh&status=active")
            .await
            .into_iter()
            .find(|a| a["alert_type"] == "sshHostKeyChanged")
    })
    .await;

    // The operator confirms the new key by forgetting the old one.
    let forget = format!("/api/v1/ssh-host-keys/{endpoint}");
    let (status, answer) = rt.send_json("DELETE", &forget, &json!({})).await;
    assert_eq!(status, 204, "{answer}");
    wait_poll_status(&rt, id, "ok", 30).await;
    rt.wait_for("sshHostKeyChanged to clear", 30, async |rt| {
        let active = rt.alerts("?addon=linux-ssh&status=active").await;
        (!active
            .iter()
            .any(|a| a["alert_type"] == "sshHostKeyChanged"))
        .then_some(())
    })
    .await;
    rt.stop().await;
}
