//! Two real `opsconductor serve` processes on one PostgreSQL database share the polling of 50
//! targets: every target is polled once per period across the cluster — never twice, never
//! skipped — and when one process is killed (SIGKILL, mid-work) the other takes its targets
//! over once their leases run out.
//!
//! The targets are http-json targets whose endpoint is an HTTP server in this test, which
//! records when each target was polled: the evidence comes from the wire, not from the
//! runtime's own bookkeeping.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use opsconductor::config::Config;
use opsconductor::registry::{install_bundle, set_enabled};
use opsconductor::server::Core;
use opsconductor::target::{Schedule, TargetSpec};
use opsconductor::testing::TestPostgres;

use common::{Serving, bundle};

const TARGETS: usize = 50;
const PERIOD: Duration = Duration::from_secs(3);
const LEASE_SECONDS: u64 = 5;
/// The longest each phase (both nodes, then node-b alone) may take to reach its condition.
const PHASE: Duration = Duration::from_secs(60);
/// Polls of every target each phase waits for: enough gaps per target to judge them.
const ROUNDS: usize = 4;

type Polls = Arc<Mutex<HashMap<String, Vec<Instant>>>>;

/// One node of the cluster: its `serve` process, killed when dropped (so also when an
/// assertion fails).
struct Node {
    name: &'static str,
    serve: Serving,
}

impl Node {
    /// Starts a node on `database_url` with a data directory of its own under `dir` and the
    /// cluster's secrets key; returns once it printed the address it bound.
    async fn start(name: &'static str, database_url: &str, dir: &Path) -> Node {
        let data = dir.join(name);
        std::fs::create_dir_all(&data).unwrap();
        let mut command = common::command(&data);
        command
            .arg("serve")
            // The cluster's PostgreSQL database instead of a SQLite file in `data`.
            .env("DATABASE_URL", database_url)
            .env("OPSCONDUCTOR_LISTEN", "127.0.0.1:0")
            .env("OPSCONDUCTOR_TRAP_LISTEN", "off")
            // The nodes of a cluster share one secrets key.
            .env("OPSCONDUCTOR_SECRETS_KEY_FILE", dir.join("secrets.key"))
            .env("OPSCONDUCTOR_NODE_ID", name)
            .env("OPSCONDUCTOR_POLL_LEASE_SECONDS", LEASE_SECONDS.to_string())
            .env("OPSCONDUCTOR_SCHEDULER_TICK_MS", "100")
            .env("OPSCONDUCTOR_LOG", "warn");
        let log = dir.join(format!("{name}.log"));
        // Waiting for the printed address blocks: on a thread of its own, so that this test's
        // runtime goes on serving the peer (and the other node starts at the same time).
        let serve = tokio::task::spawn_blocking(move || Serving::start(command, &log))
            .await
            .expect("the node starts");
        Node { name, serve }
    }

    /// Polls of http-json this node ran, from its API.
    async fn polls(&self, http: &reqwest::Client) -> u64 {
        let addons: serde_json::Value = http
            .get(format!("http://{}/api/v1/addons", self.serve.addr))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} API: {e}\n{}", self.name, self.log_text()))
            .json()
            .await
            .unwrap();
        addons
            .as_array()
            .and_then(|a| a.iter().find(|x| x["id"] == "http-json"))
            .and_then(|a| a["ingest"]["polls"].as_u64())
            .unwrap_or_else(|| panic!("{} lists no http-json polls: {addons}", self.name))
    }

    fn log_text(&self) -> String {
        self.serve.log()
    }

    async fn wait_ready(&self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let url = format!("http://{}/health", self.serve.addr);
            if http
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} did not come up:\n{}", self.name, self.log_text());
    }
}

async fn record(
    State(polls): State<Polls>,
    UrlPath(name): UrlPath<String>,
) -> axum::Json<serde_json::Value> {
    polls
        .lock()
        .unwrap()
        .entry(name)
        .or_default()
        .push(Instant::now());
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Whether every target has been polled `rounds` times since `since`.
fn every_target_polled(polls: &Polls, rounds: usize, since: Instant) -> bool {
    let polls = polls.lock().unwrap();
    (0..TARGETS).all(|i| {
        polls
            .get(&format!("t{i:02}"))
            .is_some_and(|times| times.iter().filter(|t| **t >= since).count() >= rounds)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_polls_and_survive_a_kill() {
    let pg = TestPostgres::create()
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tempfile::tempdir().unwrap();

    let polls: Polls = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/t/{name}", axum::routing::get(record))
        .with_state(polls.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let api_key;
    {
        let config = Config {
            database_url: pg.url.clone(),
            data_dir: dir.path().join("setup"),
            secrets_key_file: Some(dir.path().join("secrets.key")),
            ..Config::default()
        };
        let core = Core::open(&config).await.expect("store opens");
        install_bundle(&core.store, &core.sandbox, &bundle("http-json"))
            .await
            .expect("http-json installs");
        set_enabled(&core.store, "http-json", true).await.unwrap();
        for i in 0..TARGETS {
            let name = format!("t{i:02}");
            let spec = TargetSpec {
                name: name.clone(),
                address: peer.to_string(),
                addon_id: "http-json".into(),
                schedule: Some(Schedule::IntervalSeconds(PERIOD.as_secs() as u32)),
                enabled: true,
                config: serde_json::json!({ "path": format!("t/{name}") })
                    .as_object()
                    .cloned()
                    .unwrap(),
                credentials: None,
            };
            core.store
                .create_target(&spec, 60, chrono::Utc::now())
                .await
                .expect("target created");
        }
        let auth = opsconductor::auth::Auth::new(core.store.clone(), Default::default())
            .await
            .expect("auth starts");
        let (_, key) = auth
            .create_api_key(
                "cluster-test",
                opsconductor::auth::Role::Viewer,
                None,
                &opsconductor::auth::Actor::system(),
            )
            .await
            .expect("API key created");
        api_key = key.expose().to_owned();
        core.store.close().await;
    }

    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {api_key}").parse().unwrap(),
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .default_headers(headers)
        .build()
        .unwrap();
    let (mut a, b) = tokio::join!(
        Node::start("node-a", &pg.url, dir.path()),
        Node::start("node-b", &pg.url, dir.path())
    );
    a.wait_ready(&http).await;
    b.wait_ready(&http).await;
    let started = Instant::now();

    // Before the kill: both nodes poll, and every target has been polled a few times.
    let deadline = Instant::now() + PHASE;
    let (polls_a, polls_b) = loop {
        let (polls_a, polls_b) = (a.polls(&http).await, b.polls(&http).await);
        if polls_a > 0 && polls_b > 0 && every_target_polled(&polls, ROUNDS, started) {
            break (polls_a, polls_b);
        }
        assert!(
            Instant::now() < deadline,
            "both nodes should poll every target before the kill: node-a {polls_a}, node-b {polls_b}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    a.serve.kill();
    let killed = Instant::now();
    // After it: node-b alone polls every target a few times, node-a's once their leases ran out.
    let deadline = Instant::now() + PHASE;
    while !every_target_polled(&polls, ROUNDS, killed + Duration::from_secs(LEASE_SECONDS)) {
        assert!(
            Instant::now() < deadline,
            "node-b did not take over every target within {PHASE:?} of the kill"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let polls_b_end = b.polls(&http).await;
    let log_b = b.log_text();
    drop(b);
    let ended = Instant::now();

    assert!(
        polls_a > 0 && polls_b > 0,
        "both nodes should poll before the kill: node-a {polls_a}, node-b {polls_b}"
    );
    assert!(polls_b_end > polls_b, "node-b kept polling after the kill");

    // Per target: at most one poll per period (a poll closer than half a period to the
    // previous one is a duplicate), and no gap longer than two periods — except across the
    // kill, where a target node-a held waits out its lease: one period plus the lease.
    let polls = polls.lock().unwrap().clone();
    let slack = Duration::from_millis(1500);
    let mut problems = Vec::new();
    for i in 0..TARGETS {
        let name = format!("t{i:02}");
        let times = polls.get(&name).cloned().unwrap_or_default();
        let expected = ((ended - started).as_secs_f64() / PERIOD.as_secs_f64()) as usize;
        if times.len() + 4 < expected {
            problems.push(format!(
                "{name}: {} polls, expected about {expected}",
                times.len()
            ));
        }
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            let spans_kill = pair[0] <= killed + slack && pair[1] >= killed;
            let max_gap = if spans_kill {
                PERIOD + Duration::from_secs(LEASE_SECONDS) + slack
            } else {
                PERIOD * 2
            };
            if gap < PERIOD / 2 {
                problems.push(format!("{name}: polled twice within {gap:?}"));
            }
            if gap > max_gap {
                problems.push(format!(
                    "{name}: gap of {gap:?} (allowed {max_gap:?}, spans kill: {spans_kill}), {:?} after start",
                    pair[0] - started
                ));
            }
        }
    }
    let total: usize = polls.values().map(Vec::len).sum();
    eprintln!(
        "cluster: {total} polls of {TARGETS} targets in {:?}; before the kill node-a {polls_a}, node-b {polls_b}; node-b alone afterwards {}",
        ended - started,
        polls_b_end - polls_b
    );
    assert!(
        problems.is_empty(),
        "{}\nnode-b log:\n{log_b}",
        problems.join("\n")
    );
    pg.drop().await;
}
