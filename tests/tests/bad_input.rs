//! Bad input gets its documented error and is counted; nothing is stored from it.

use opsconductor_tests::{Db, TestRuntime, bundle, fixture};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_request_gets_its_documented_error() {
    let rt = TestRuntime::start(Db::Sqlite, &[bundle("alertmanager")]).await;
    let limit = 1024 * 1024; // the alertmanager manifest's max_body_bytes
    let mut oversized = fixture("alertmanager", "firing");
    oversized.resize(limit + 1, b' ');

    struct Case {
        what: &'static str,
        path: &'static str,
        body: Vec<u8>,
        status: u16,
        code: &'static str,
        /// Text the error message must contain.
        text: &'static str,
    }
    let case = |what, path, body: Vec<u8>, status, code, text| Case {
        what,
        path,
        body,
        status,
        code,
        text,
    };
    let cases = [
        case(
            "oversized body",
            "alertmanager",
            oversized,
            413,
            "body_too_large",
            "limit of 1048576 bytes",
        ),
        case(
            "invalid JSON",
            "alertmanager",
            b"{\"alerts\": [".to_vec(),
            400,
            "bad_body",
            "not valid JSON",
        ),
        case(
            "invalid UTF-8",
            "alertmanager",
            vec![b'{', 0xff, 0xfe, b'}'],
            400,
            "bad_body",
            "not valid UTF-8",
        ),
        case(
            "unknown path",
            "nobody-home",
            b"{}".to_vec(),
            404,
            "not_found",
            "nobody-home",
        ),
        case(
            "addon refuses",
            "alertmanager",
            b"{\"version\": \"4\"}".to_vec(),
            422,
            "addon_error",
            "invalid-input",
        ),
    ];
    for c in cases {
        let (got, answer) = rt.post_webhook(c.path, c.body).await;
        let what = c.what;
        assert_eq!(got, c.status, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], c.code, "{what}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(c.text),
            "{what}: {message:?} should contain {:?}",
            c.text
        );
    }

    let (_, stats) = rt.get_json("/api/v1/stats").await;
    let w = &stats["webhooks"];
    assert_eq!(w["received"], 5, "{stats}");
    assert_eq!(w["too_large"], 1, "{stats}");
    assert_eq!(w["bad_body"], 2, "{stats}");
    assert_eq!(w["unknown_path"], 1, "{stats}");
    assert_eq!(w["addon_failed"], 1, "{stats}");
    assert_eq!(w["accepted"], 0, "{stats}");
    assert!(rt.alerts("").await.is_empty());
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_queries_are_checked() {
    let rt = TestRuntime::start(Db::Sqlite, &[]).await;
    let cases = [
        ("/api/v1/alerts?status=sleeping", 400, "expected one of"),
        ("/api/v1/alerts?limit=0", 400, "limit"),
        ("/api/v1/alerts?colour=red", 400, "colour"),
        ("/api/v1/alerts/abc", 400, "not a number"),
        ("/api/v1/alerts/999", 404, "no alert"),
    ];
    for (path, status, text) in cases {
        let (got, answer) = rt.get_json(path).await;
        assert_eq!(got, status, "{path}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(text), "{path}: {message}");
    }
    let (status, health) = rt.get_json("/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["database"], "ok");
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_with_a_missing_field_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let source = bundle("alertmanager");
    std::fs::copy(source.join("addon.wasm"), dir.path().join("addon.wasm")).unwrap();
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(source.join("manifest.json")).unwrap()).unwrap();
    manifest.as_object_mut().unwrap().remove("world");
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();

    let data = tempfile::tempdir().unwrap();
    let config = opsconductor::config::Config {
        database_url: format!("sqlite://{}", data.path().join("db.sqlite").display()),
        data_dir: data.path().to_owned(),
        secrets_key_file: Some(data.path().join("secrets.key")),
        ..Default::default()
    };
    let core = opsconductor::server::Core::open(&config).await.unwrap();
    let err = opsconductor::registry::install_bundle(&core.store, &core.sandbox, dir.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing field `world`"), "{err}");
    assert!(core.store.list_addons().await.unwrap().is_empty());
}
