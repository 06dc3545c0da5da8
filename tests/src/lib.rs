//! Helpers for the end-to-end tests: a real runtime on a loopback port, on SQLite or on a
//! fresh PostgreSQL database, with real addon bundles built by `just build-addons`.

pub mod bench_args;
pub mod browser;
pub mod oidc_provider;
pub mod procstat;
pub mod prometheus;
pub mod served;
pub mod slapd;
pub mod snmpd;
pub mod sshd;
pub mod traps;

/// The runtime's, so that the store's tests and these declare their per-database tests alike:
/// `both_databases!(name, body)` makes `name::sqlite` and `name::postgres`, each calling
/// `body(Db)`.
pub use opsconductor::{both_databases, testing::Db};

use std::path::{Path, PathBuf};

use opsconductor::config::Config;
use opsconductor::registry::install_bundle;
use opsconductor::server::{Core, Server};
use opsconductor::testing::TestPostgres;
use serde_json::Value;

/// The egress policy of the tests' runtimes and pollers: the default plus loopback, where every
/// peer (net-snmp, OpenSSH, HTTP servers) listens.
pub fn loopback_egress() -> std::sync::Arc<opsconductor::egress::EgressPolicy> {
    std::sync::Arc::new(opsconductor::egress::EgressPolicy::allowing_loopback())
}

/// The bundled addons, as `just build-addons` assembles them.
pub fn bundles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bundles")
}

/// Addons built only for tests (misbehaving guests), as `just build-addons` assembles them.
pub fn test_bundles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-bundles")
}

/// The bundle directory of a bundled addon, or a panic that says how to build it.
pub fn bundle(id: &str) -> PathBuf {
    find_bundle(&bundles_dir(), id)
}

pub fn test_bundle(id: &str) -> PathBuf {
    find_bundle(&test_bundles_dir(), id)
}

fn find_bundle(dir: &Path, id: &str) -> PathBuf {
    let path = dir.join(id);
    // A rules addon's bundle has no addon.wasm; every bundle has its manifest.
    assert!(
        path.join("manifest.json").exists(),
        "addon bundle {} is missing: run `just build-addons` (or `just test`, which builds it)",
        path.display()
    );
    path
}

/// A running runtime with its own database, stopped and cleaned up by [`TestRuntime::stop`].
pub struct TestRuntime {
    pub server: Server,
    pub config: Config,
    /// Sends every request with [`TestRuntime::admin_key`]; build another client to test
    /// other credentials (or none).
    pub http: reqwest::Client,
    /// An administrator's API key (`test-admin`), made for the test at start.
    pub admin_key: String,
    /// How the audit log and alert history name that key: `key:test-admin-<n>`.
    pub admin_actor: String,
    _dir: tempfile::TempDir,
    postgres: Option<TestPostgres>,
}

impl TestRuntime {
    /// Starts a runtime with the given bundles installed (and enabled).
    pub async fn start(db: Db, bundles: &[PathBuf]) -> TestRuntime {
        Self::start_with(db, bundles, async |_| {}).await
    }

    /// Like [`TestRuntime::start`], running `prepare` against the store before the server
    /// starts (e.g. to add SNMP credentials).
    pub async fn start_with(
        db: Db,
        bundles: &[PathBuf],
        prepare: impl AsyncFnOnce(&opsconductor::store::Store),
    ) -> TestRuntime {
        Self::start_configured(db, bundles, |_| {}, prepare).await
    }

    /// Like [`TestRuntime::start_with`], with `configure` adjusting the test configuration
    /// (benchmarks raise limits and quieten the log).
    pub async fn start_configured(
        db: Db,
        bundles: &[PathBuf],
        configure: impl FnOnce(&mut Config),
        prepare: impl AsyncFnOnce(&opsconductor::store::Store),
    ) -> TestRuntime {
        let dir = tempfile::tempdir().expect("temp dir");
        let postgres = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(
                TestPostgres::create()
                    .await
                    .unwrap_or_else(|e| panic!("{e:#}")),
            ),
        };
        let mut config = Config {
            database_url: match &postgres {
                Some(pg) => pg.url.clone(),
                None => format!("sqlite://{}", dir.path().join("opsconductor.db").display()),
            },
            listen: ([127, 0, 0, 1], 0).into(),
            data_dir: dir.path().to_owned(),
            secrets_key_file: Some(dir.path().join("secrets.key")),
            registry_poll_ms: 100,
            // Polls on 1-second intervals start within a tenth of a second of being due.
            scheduler_tick_ms: 100,
            // The tests' peers listen on loopback.
            poll: opsconductor::egress::EgressPolicy::allowing_loopback(),
            ..Config::default()
        };
        configure(&mut config);
        let core = Core::open(&config).await.expect("store and sandbox open");
        for bundle in bundles {
            install_bundle(&core.store, &core.sandbox, bundle)
                .await
                .unwrap_or_else(|e| panic!("installing {}: {e}", bundle.display()));
            let id = bundle.file_name().unwrap().to_string_lossy().into_owned();
            opsconductor::registry::set_enabled(&core.store, &id, true)
                .await
                .unwrap();
        }
        prepare(&core.store).await;
        drop(core);
        Self::serve(config, dir, postgres).await
    }

    /// Starts another runtime on this one's database — with PostgreSQL, a second node of the
    /// same cluster — with a data directory and a node name of its own; `configure` adjusts its
    /// configuration (a copy of this one's). Stop it before this one, which owns the database.
    pub async fn start_peer(&self, configure: impl FnOnce(&mut Config)) -> TestRuntime {
        static PEERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let n = PEERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            node_id: Some(format!("peer-{n}")),
            ..self.config.clone()
        };
        configure(&mut config);
        Self::serve(config, dir, None).await
    }

    async fn serve(
        config: Config,
        dir: tempfile::TempDir,
        postgres: Option<TestPostgres>,
    ) -> TestRuntime {
        // The configured address: loopback on a free port unless a test says otherwise (one
        // whose redirect URL must name the port beforehand).
        let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
        let traps = opsconductor::inbound::trap::bind_socket("127.0.0.1:0".parse().unwrap())
            .expect("trap socket binds");
        let server = Server::start(&config, listener, Some(traps))
            .await
            .expect("server starts");
        static KEYS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let n = KEYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (_, key) = server
            .state()
            .auth
            .create_api_key(
                &format!("test-admin-{n}"),
                opsconductor::auth::Role::Admin,
                None,
                &opsconductor::auth::Actor::system(),
            )
            .await
            .expect("the test's admin API key is created");
        let admin_key = key.expose().to_owned();
        let admin_actor = format!("key:test-admin-{n}");
        TestRuntime {
            server,
            config,
            http: client_with_bearer(Some(&admin_key)),
            admin_key,
            admin_actor,
            _dir: dir,
            postgres,
        }
    }

    /// Where the runtime listens for SNMP traps.
    pub fn trap_addr(&self) -> std::net::SocketAddr {
        self.server
            .trap_addr()
            .expect("the test runtime listens for traps")
    }

    /// `path` on the runtime, reached over loopback whatever address it listens on.
    pub fn url(&self, path: &str) -> String {
        let mut addr = self.server.addr();
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}{path}")
    }

    /// POSTs `body` to `/webhooks/{path}` and returns status and JSON answer.
    pub async fn post_webhook(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(&format!("/webhooks/{path}")))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let json = response.json().await.unwrap_or(Value::Null);
        (status, json)
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The alerts matching `query` (e.g. `?addon=alertmanager`), newest first.
    pub async fn alerts(&self, query: &str) -> Vec<Value> {
        let (status, page) = self.get_json(&format!("/api/v1/alerts{query}")).await;
        assert_eq!(status, 200, "{page}");
        page["items"].as_array().cloned().unwrap_or_default()
    }

    /// The `calls` counters the API shows for a loaded addon.
    pub async fn addon(&self, id: &str) -> Value {
        let (_, addons) = self.get_json("/api/v1/addons").await;
        addons
            .as_array()
            .and_then(|a| a.iter().find(|x| x["id"] == id).cloned())
            .unwrap_or_else(|| panic!("addon {id} not listed: {addons}"))
    }

    /// Sends a JSON request as the test's administrator and returns status and JSON answer.
    pub async fn send_json(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        self.send_json_as(&self.http, method, path, Some(body))
            .await
    }

    /// Like [`TestRuntime::send_json`], with the credential of `client` (see
    /// [`client_with_bearer`]) and, when `body` is `None`, no body at all.
    pub async fn send_json_as(
        &self,
        client: &reqwest::Client,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls `check` every 100 ms until it returns `Some`, or panics after `secs` seconds
    /// naming `what` (and the last thing `check` saw, via `describe`).
    pub async fn wait_for<T>(
        &self,
        what: &str,
        secs: u64,
        mut check: impl AsyncFnMut(&TestRuntime) -> Option<T>,
    ) -> T {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(v) = check(self).await {
                return v;
            }
            if std::time::Instant::now() > deadline {
                let (_, alerts) = self.get_json("/api/v1/alerts?limit=50").await;
                let (_, targets) = self.get_json("/api/v1/targets").await;
                panic!(
                    "timed out after {secs} s waiting for {what}\nalerts: {alerts}\ntargets: {targets}"
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Stops the server and starts it again on the same database, data directory and
    /// configuration: a restart.
    pub async fn restart(self) -> TestRuntime {
        self.server.stop().await.expect("server stops cleanly");
        Self::serve(self.config, self._dir, self.postgres).await
    }

    pub async fn stop(self) {
        self.server.stop().await.expect("server stops cleanly");
        if let Some(pg) = self.postgres {
            pg.drop().await;
        }
    }
}

/// An HTTP client that sends `Authorization: Bearer {bearer}` with every request (none when
/// `None`). Bounded, so that a request the runtime never answers fails the test instead of
/// hanging it.
pub fn client_with_bearer(bearer: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(bearer) = bearer {
        let mut value: reqwest::header::HeaderValue =
            format!("Bearer {bearer}").parse().expect("bearer header");
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Reads a bundled addon's fixture input, for tests that post real payloads.
pub fn fixture(addon: &str, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../addons")
        .join(addon)
        .join("fixtures")
        .join(format!("{name}.input.json"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
