//! The sandbox contains misbehaving addons: a panic, an endless loop and unbounded allocation
//! each fail that one request with a clear error, in time, while other addons — and the same
//! addon's next call — keep working. Instances are reused, not created per event.

use std::time::{Duration, Instant};

use opsconductor_tests::{Db, TestRuntime, bundle, fixture, test_bundle};
use serde_json::json;

fn chaos(action: &str) -> Vec<u8> {
    json!({ "do": action }).to_string().into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_addons_fail_alone_and_in_time() {
    let rt = TestRuntime::start(Db::Sqlite, &[bundle("alertmanager"), test_bundle("chaos")]).await;

    // Warm up: sequential events reuse one instance.
    for _ in 0..20 {
        let (status, answer) = rt.post_webhook("chaos", chaos("ok")).await;
        assert_eq!(status, 200, "{answer}");
    }
    assert_eq!(
        rt.addon("chaos").await["calls"]["instantiations"],
        1,
        "no instantiation per event"
    );

    // The chaos manifest allows 200 ms of CPU and 2 s of wall time per call, and 32 MiB.
    // (action, status, error code, message text)
    let cases = [
        ("panic", 500, "addon_trap", "deliberate panic"),
        ("spin", 500, "addon_cpu_deadline", "CPU budget of 200 ms"),
        ("alloc", 500, "addon_memory_limit", "memory limit of 32 MiB"),
        ("error", 422, "addon_error", "deliberate error"),
        ("sleep", 504, "addon_timeout", "within 2000 ms"),
    ];
    for (action, status, code, text) in cases {
        let started = Instant::now();
        let (got, answer) = rt.post_webhook("chaos", chaos(action)).await;
        let took = started.elapsed();
        assert_eq!(got, status, "{action}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{action}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(text), "{action}: {message}");
        // Generous: the limits themselves are 200 ms and 2 s; this only catches a call that
        // outlived every limit.
        assert!(took < Duration::from_secs(10), "{action} took {took:?}");

        // The same addon answers its next call, on a fresh instance after a crash...
        let (got, answer) = rt.post_webhook("chaos", chaos("ok")).await;
        assert_eq!(got, 200, "after {action}: {answer}");
        // ...and the other addon was never disturbed.
        let (got, answer) = rt
            .post_webhook("alertmanager", fixture("alertmanager", "firing"))
            .await;
        assert_eq!(got, 200, "alertmanager after chaos {action}: {answer}");
    }

    let calls = &rt.addon("chaos").await["calls"];
    assert_eq!(calls["traps"], 1, "{calls}");
    assert_eq!(calls["cpu_deadlines"], 1, "{calls}");
    assert_eq!(calls["memory_limits"], 1, "{calls}");
    assert_eq!(calls["addon_errors"], 1, "{calls}");
    assert_eq!(calls["timeouts"], 1, "{calls}");
    // One warm instance plus one replacement after each of the three crashes and the timeout.
    assert_eq!(calls["instantiations"], 5, "{calls}");
    assert_eq!(rt.addon("alertmanager").await["calls"]["instantiations"], 1);
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_state_persists_across_calls_and_logs_are_harmless() {
    let rt = TestRuntime::start(Db::Sqlite, &[test_bundle("chaos")]).await;
    for expected in 1..=3 {
        let (status, answer) = rt.post_webhook("chaos", chaos("state")).await;
        assert_eq!(status, 200, "{answer}");
        let alerts = rt.alerts("?addon=chaos").await;
        assert_eq!(
            alerts[0]["fields"]["count"],
            expected.to_string(),
            "{alerts:?}"
        );
    }
    let (status, answer) = rt.post_webhook("chaos", chaos("log")).await;
    assert_eq!(status, 200, "{answer}");
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addons_have_no_ambient_authority() {
    let rt = TestRuntime::start(Db::Sqlite, &[test_bundle("chaos")]).await;
    // The runtime's own port is certainly listening: the guest still cannot reach it.
    let port = rt.server.addr().port().to_string();
    let body = json!({ "do": "escape", "port": port }).to_string();
    let (status, answer) = rt.post_webhook("chaos", body).await;
    assert_eq!(status, 200, "{answer}");
    let alerts = rt.alerts("?addon=chaos").await;
    let fields = &alerts[0]["fields"];
    for (what, expected) in [
        ("file_read", "false"),
        ("dir_listed", "false"),
        ("env_vars", "0"),
        ("args", "0"),
        ("tcp_connect", "false"),
    ] {
        assert_eq!(fields[what], expected, "{what}: {fields}");
    }
    rt.stop().await;
}

/// Install compiles once and caches the artifact; a later start (a new engine, as after a
/// restart) loads it instead of compiling again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_are_compiled_once_and_cached() {
    use opsconductor::config::Config;
    use opsconductor::registry::{Registry, install_bundle};
    use opsconductor::server::Core;

    let data = tempfile::tempdir().unwrap();
    let config = Config {
        database_url: format!("sqlite://{}", data.path().join("db.sqlite").display()),
        data_dir: data.path().to_owned(),
        secrets_key_file: Some(data.path().join("secrets.key")),
        ..Config::default()
    };
    let core = Core::open(&config).await.unwrap();
    install_bundle(&core.store, &core.sandbox, &bundle("alertmanager"))
        .await
        .unwrap();
    let stats = core.sandbox.compile_stats();
    assert_eq!((stats.compiled, stats.loaded_from_cache), (1, 0));
    let cached: Vec<_> = std::fs::read_dir(config.compiled_cache_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].contains("wasmtime48.0.8"), "{cached:?}");

    let restarted = Core::open(&config).await.unwrap();
    let registry = Registry::new(
        restarted.store.clone(),
        restarted.sandbox.clone(),
        Default::default(),
    );
    registry.reload().await.unwrap();
    assert!(registry.find_by_webhook("alertmanager").is_some());
    let stats = restarted.sandbox.compile_stats();
    assert_eq!((stats.compiled, stats.loaded_from_cache), (0, 1));
}

/// The chaos guest with room to spin for seconds: `cpu_ms` and `timeout_ms` raised in a copy
/// of its bundle.
fn slow_chaos_bundle() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("chaos");
    std::fs::create_dir_all(to.join("fixtures")).unwrap();
    let from = test_bundle("chaos");
    std::fs::copy(from.join("addon.wasm"), to.join("addon.wasm")).unwrap();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(from.join("manifest.json")).unwrap()).unwrap();
    manifest["capabilities"]["cpu_ms"] = 4_000.into();
    manifest["capabilities"]["timeout_ms"] = 8_000.into();
    std::fs::write(to.join("manifest.json"), manifest.to_string()).unwrap();
    for entry in std::fs::read_dir(from.join("fixtures"))
        .into_iter()
        .flatten()
    {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join("fixtures").join(entry.file_name())).unwrap();
    }
    dir
}

/// Two guests spinning at their CPU limit, on a runtime with two worker threads, do not stall
/// it: guests yield at every epoch tick. While both spin, `/health`, another addon's webhook and
/// an SNMP trap are answered — each before either spin has ended (the order is the assertion;
/// the latencies are printed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinning_guests_do_not_stall_the_host() {
    let chaos_dir = slow_chaos_bundle();
    let rt = TestRuntime::start_with(
        Db::Sqlite,
        &[
            bundle("alertmanager"),
            bundle("if-mib"),
            chaos_dir.path().join("chaos"),
        ],
        async |store| {
            store
                .snmp_set_community("test", "public", chrono::Utc::now())
                .await
                .unwrap()
        },
    )
    .await;
    let chaos_addon = rt.server.state().registry.get("chaos").unwrap();
    let spins: Vec<_> = (0..2)
        .map(|_| {
            let client = rt.http.clone();
            let url = rt.url("/webhooks/chaos");
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(chaos("spin"))
                    .send()
                    .await
                    .unwrap();
                response.status().as_u16()
            })
        })
        .collect();
    // Both calls are inside the guest.
    while chaos_addon.component.stats().calls < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let started = Instant::now();
    let (status, health) = rt.get_json("/health").await;
    let health_took = started.elapsed();
    assert_eq!(status, 200, "{health}");
    let started = Instant::now();
    let (status, answer) = rt
        .post_webhook("alertmanager", fixture("alertmanager", "firing"))
        .await;
    let webhook_took = started.elapsed();
    assert_eq!(status, 200, "{answer}");
    let started = Instant::now();
    let trap = &opsconductor_tests::traps::encoded_traps(1)[0];
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(trap, rt.trap_addr()).unwrap();
    rt.wait_for("the trap's alert", 8, async |rt| {
        let alerts = rt.alerts("?addon=if-mib").await;
        (!alerts.is_empty()).then_some(())
    })
    .await;
    let trap_took = started.elapsed();
    assert!(
        spins.iter().all(|s| !s.is_finished()),
        "an answer came only after a spinning guest was stopped"
    );
    assert_eq!(chaos_addon.component.stats().cpu_deadlines, 0);
    println!(
        "while two guests spin: /health {health_took:?}, webhook {webhook_took:?}, trap to alert {trap_took:?}"
    );
    for spin in spins {
        assert_eq!(spin.await.unwrap(), 500);
    }
    assert_eq!(chaos_addon.component.stats().cpu_deadlines, 2);
    rt.stop().await;
}

/// A digest in the database is not trusted to name a cache file: a row whose `wasm_sha256` was
/// changed to a path (or to another addon's digest) makes that addon fail to load, and nothing is
/// written outside the cache directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_digest_names_no_cache_file() {
    use opsconductor::config::Config;
    use opsconductor::registry::{Registry, install_bundle};
    use opsconductor::server::Core;

    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("db.sqlite");
    let config = Config {
        database_url: format!("sqlite://{}", db.display()),
        data_dir: data.path().to_owned(),
        secrets_key_file: Some(data.path().join("secrets.key")),
        ..Config::default()
    };
    let core = Core::open(&config).await.unwrap();
    install_bundle(&core.store, &core.sandbox, &bundle("alertmanager"))
        .await
        .unwrap();
    opsconductor::registry::set_enabled(&core.store, "alertmanager", true)
        .await
        .unwrap();
    core.store.close().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE addons SET wasm_sha256 = '../../escaped' WHERE id = 'alertmanager'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    std::fs::remove_dir_all(config.compiled_cache_dir()).unwrap();

    let restarted = Core::open(&config).await.unwrap();
    let registry = Registry::new(
        restarted.store.clone(),
        restarted.sandbox.clone(),
        Default::default(),
    );
    registry.reload().await.unwrap();
    assert!(
        registry.find_by_webhook("alertmanager").is_none(),
        "an addon whose recorded digest is not its own was loaded"
    );
    assert_eq!(restarted.sandbox.compile_stats().compiled, 0);
    let escaped = data.path().parent().unwrap().join("escaped");
    assert!(!escaped.exists());
    let cached: Vec<_> = std::fs::read_dir(config.compiled_cache_dir())
        .unwrap()
        .collect();
    assert!(cached.is_empty(), "{cached:?}");
}

/// The runtime supports the previous WIT version beside the current one: a component built
/// against `opsconductor:addon@0.1.0` (without the SDK, which has moved on to 0.2.0) installs,
/// is instantiated with the 0.1.0 bindings and runs, next to 0.2.0 addons. A manifest that
/// claims the wrong world for its component is refused at install with a message saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_built_for_the_previous_wit_still_run() {
    let rt = TestRuntime::start(
        Db::Sqlite,
        &[test_bundle("legacy-v01"), bundle("alertmanager")],
    )
    .await;
    let (status, answer) = rt.post_webhook("legacy", "hello").await;
    assert_eq!(status, 200, "{answer}");
    let alerts = rt.alerts("?addon=legacy-v01").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["alert_type"], "legacyPing");
    assert_eq!(alerts[0]["fields"]["key"], "hello");
    assert_eq!(
        rt.addon("legacy-v01").await["world"],
        "opsconductor:addon/addon@0.1.0"
    );
    let (status, _) = rt
        .post_webhook("alertmanager", fixture("alertmanager", "firing"))
        .await;
    assert_eq!(status, 200);
    rt.stop().await;

    // The 0.1.0 component under a manifest that claims 0.2.0: the link step says why.
    let dir = tempfile::tempdir().unwrap();
    let bundle_dir = dir.path().join("legacy-v01");
    std::fs::create_dir_all(&bundle_dir).unwrap();
    std::fs::copy(
        test_bundle("legacy-v01").join("addon.wasm"),
        bundle_dir.join("addon.wasm"),
    )
    .unwrap();
    let manifest = std::fs::read_to_string(test_bundle("legacy-v01").join("manifest.json"))
        .unwrap()
        .replace("addon@0.1.0", "addon@0.2.0");
    std::fs::write(bundle_dir.join("manifest.json"), manifest).unwrap();
    let config = opsconductor::config::Config {
        database_url: format!("sqlite://{}", dir.path().join("x.db").display()),
        data_dir: dir.path().to_owned(),
        secrets_key_file: Some(dir.path().join("secrets.key")),
        ..Default::default()
    };
    let core = opsconductor::server::Core::open(&config).await.unwrap();
    let err = opsconductor::registry::install_bundle(&core.store, &core.sandbox, &bundle_dir)
        .await
        .expect_err("a world mismatch is refused");
    let message = err.to_string();
    assert!(
        message.contains("opsconductor:addon/addon@0.2.0") && message.contains("built for it"),
        "{message}"
    );
}
