//! Addon bundle files end to end, with real bundles from `just build-addons` and the real
//! sandbox: packing and signing, every refusal (failing fixture, bad signature, untrusted key,
//! tampered wasm, unsupported WIT world) with a message that says why, upgrades whose wider
//! capabilities need acceptance, one-step rollback, and the upload API.

use std::io::Read as _;
use std::path::Path;

use opsconductor::bundle::install::{InstallError, RollbackError, install, rollback};
use opsconductor::bundle::{
    self, BundleConfig, BundleError, Signer, TrustPolicy, key_id, public_key_base64,
};
use opsconductor::config::Config;
use opsconductor::server::Core;
use opsconductor_tests::{Db, TestRuntime, bundle as bundle_dir, fixture};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A copy of a built bundle directory, to change.
fn copy_bundle(id: &str) -> tempfile::TempDir {
    let from = bundle_dir(id);
    let dir = tempfile::tempdir().unwrap();
    for name in ["manifest.json", "addon.wasm"] {
        std::fs::copy(from.join(name), dir.path().join(name)).unwrap();
    }
    std::fs::create_dir(dir.path().join("fixtures")).unwrap();
    for entry in std::fs::read_dir(from.join("fixtures")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.path().join("fixtures").join(entry.file_name()),
        )
        .unwrap();
    }
    dir
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// Version 0.2.0 of alertmanager that may reach a new host and use twice the memory, with a
/// different wasm (a custom section appended: same code, another sha256).
fn wider_alertmanager() -> tempfile::TempDir {
    let dir = copy_bundle("alertmanager");
    edit_json(&dir.path().join("manifest.json"), |m| {
        m["version"] = json!("0.2.0");
        m["capabilities"]["memory_mb"] = json!(128);
        m["capabilities"]["hosts"] = json!(["api.example.com"]);
    });
    let wasm = dir.path().join("addon.wasm");
    let mut bytes = std::fs::read(&wasm).unwrap();
    bytes.extend_from_slice(&[0x00, 0x05, 0x04, b't', b'e', b's', b't']);
    std::fs::write(&wasm, bytes).unwrap();
    dir
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The files of a bundle file, in order.
fn unpack(bundle: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bundle));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

fn repack(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, name, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn file<'a>(files: &'a mut [(String, Vec<u8>)], name: &str) -> &'a mut Vec<u8> {
    &mut files.iter_mut().find(|(n, _)| n == name).unwrap().1
}

/// A store and sandbox on a fresh SQLite or PostgreSQL database, as the CLI opens them.
struct Cli {
    core: Core,
    _dir: tempfile::TempDir,
    pg: Option<opsconductor::testing::TestPostgres>,
}

impl Cli {
    async fn open(db: Db) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let pg = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(
                opsconductor::testing::TestPostgres::create()
                    .await
                    .unwrap_or_else(|e| panic!("{e:#}")),
            ),
        };
        let config = Config {
            database_url: match &pg {
                Some(pg) => pg.url.clone(),
                None => format!("sqlite://{}", dir.path().join("db.sqlite").display()),
            },
            data_dir: dir.path().to_owned(),
            secrets_key_file: Some(dir.path().join("secrets.key")),
            ..Config::default()
        };
        Cli {
            core: Core::open(&config).await.unwrap(),
            _dir: dir,
            pg,
        }
    }

    async fn install(
        &self,
        bundle: &bundle::Bundle,
        accept: bool,
    ) -> Result<bundle::install::BundleInstall, InstallError> {
        install(&self.core.store, &self.core.sandbox, bundle, accept).await
    }

    async fn close(self) {
        drop(self.core);
        if let Some(pg) = self.pg {
            pg.drop().await;
        }
    }
}

fn key(n: u8) -> bundle::SigningKey {
    bundle::SigningKey::from_bytes(&[n; 32])
}

fn trusting(keys: &[&bundle::SigningKey], require: bool) -> TrustPolicy {
    BundleConfig {
        trusted_keys: keys
            .iter()
            .map(|k| public_key_base64(&k.verifying_key()))
            .collect(),
        require_signatures: require,
    }
    .policy()
    .unwrap()
}

/// Packs `dir` into a bundle file's bytes.
fn pack(dir: &Path, key: Option<&bundle::SigningKey>) -> Vec<u8> {
    bundle::pack_bytes(dir, key).unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_bundle_packs_verifies_and_installs() {
    let cli = Cli::open(Db::Sqlite).await;
    let k = key(1);
    let out = tempfile::tempdir().unwrap();
    let path = bundle::pack(&bundle_dir("alertmanager"), out.path(), Some(&k)).unwrap();
    assert!(path.ends_with("alertmanager-0.1.0.ocbundle"), "{path:?}");
    let opened = bundle::open(&path, &trusting(&[&k], true)).unwrap();
    assert_eq!(
        opened.signer,
        Signer::Trusted {
            key_id: key_id(&k.verifying_key())
        }
    );
    let done = cli.install(&opened, false).await.unwrap();
    assert!(done.report.changed && done.report.enabled, "{done:?}");
    assert_eq!(done.fixtures_passed, 4);
    assert_eq!(done.previous, None);
    let wasm = std::fs::read(bundle_dir("alertmanager").join("addon.wasm")).unwrap();
    let row = cli.core.store.addon("alertmanager").await.unwrap().unwrap();
    assert_eq!(
        (row.version.as_str(), row.wasm_sha256),
        ("0.1.0", sha256(&wasm))
    );
    // The same bundle again changes nothing.
    let again = cli.install(&opened, false).await.unwrap();
    assert!(!again.report.changed);
    cli.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_fixture_refuses_the_bundle_with_the_difference() {
    let cli = Cli::open(Db::Sqlite).await;
    let dir = copy_bundle("alertmanager");
    edit_json(&dir.path().join("fixtures/firing.expected.json"), |v| {
        v[0]["severity"] = json!("info");
    });
    let opened = bundle::open_bytes(&pack(dir.path(), None), &TrustPolicy::default()).unwrap();
    let err = cli.install(&opened, false).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            InstallError::FixturesFailed {
                failed: 1,
                total: 4,
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("1 of 4 fixtures failed"), "{msg}");
    assert!(msg.contains("fixture `firing`"), "{msg}");
    // The difference: what the fixture expects and what the addon produced.
    assert!(
        msg.contains("\"severity\": \"info\"") && msg.contains("\"severity\": \"critical\""),
        "{msg}"
    );
    assert!(
        cli.core
            .store
            .addon("alertmanager")
            .await
            .unwrap()
            .is_none(),
        "nothing installed"
    );
    cli.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_and_signatures_are_refused_by_name() {
    let (k, stranger) = (key(1), key(2));
    let signed = pack(&bundle_dir("alertmanager"), Some(&k));
    let wasm = std::fs::read(bundle_dir("alertmanager").join("addon.wasm")).unwrap();

    // A tampered wasm: named, with the digest SHA256SUMS lists and the one it has.
    let mut files = unpack(&signed);
    file(&mut files, "addon.wasm").push(0);
    let mut evil_wasm = wasm.clone();
    evil_wasm.push(0);
    let err = bundle::open_bytes(&repack(&files), &trusting(&[&k], false)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, BundleError::HashMismatch { .. }), "{msg}");
    assert!(msg.contains("`addon.wasm`"), "{msg}");
    assert!(
        msg.contains(&sha256(&wasm)) && msg.contains(&sha256(&evil_wasm)),
        "{msg}"
    );

    // The same, with SHA256SUMS re-hashed to match: the signature no longer verifies.
    let sums = String::from_utf8(file(&mut files, "SHA256SUMS").clone()).unwrap();
    *file(&mut files, "SHA256SUMS") = sums
        .replace(&sha256(&wasm), &sha256(&evil_wasm))
        .into_bytes();
    let err = bundle::open_bytes(&repack(&files), &trusting(&[&k], false)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, BundleError::BadSignature { .. }), "{msg}");
    assert!(msg.contains(&key_id(&k.verifying_key())), "{msg}");
    assert!(msg.contains("does not verify"), "{msg}");

    // Signed by a key the operator does not trust, signatures required.
    let by_stranger = pack(&bundle_dir("alertmanager"), Some(&stranger));
    let err = bundle::open_bytes(&by_stranger, &trusting(&[&k], true)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, BundleError::UntrustedKey { .. }), "{msg}");
    assert!(msg.contains(&key_id(&stranger.verifying_key())), "{msg}");
    assert!(msg.contains("not among the trusted keys"), "{msg}");

    // Unsigned, signatures required.
    let unsigned = pack(&bundle_dir("alertmanager"), None);
    let err = bundle::open_bytes(&unsigned, &trusting(&[&k], true)).unwrap_err();
    assert!(matches!(err, BundleError::Unsigned), "{err}");
    assert!(err.to_string().contains("not signed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_wit_world_is_refused_naming_the_supported_ones() {
    let cli = Cli::open(Db::Sqlite).await;
    let dir = copy_bundle("alertmanager");
    edit_json(&dir.path().join("manifest.json"), |m| {
        m["world"] = json!("opsconductor:addon/addon@9.0.0");
    });
    let opened = bundle::open_bytes(&pack(dir.path(), None), &TrustPolicy::default()).unwrap();
    let err = cli.install(&opened, false).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, InstallError::UnsupportedWorld { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("targets WIT world `opsconductor:addon/addon@9.0.0`"),
        "{msg}"
    );
    assert!(
        msg.contains(
            "this runtime supports: opsconductor:addon/addon@0.2.0, opsconductor:addon/addon@0.1.0"
        ),
        "{msg}"
    );
    cli.close().await;
}

/// Upgrade with wider capabilities: refused with the difference, accepted with consent, the
/// previous version kept, rolled back once (with its wasm), and a second rollback refused.
async fn upgrade_needs_acceptance_and_rolls_back(db: Db) {
    let cli = Cli::open(db).await;
    let store = &cli.core.store;
    let v1 = bundle::open_bytes(
        &pack(&bundle_dir("alertmanager"), None),
        &TrustPolicy::default(),
    )
    .unwrap();
    cli.install(&v1, false).await.unwrap();
    let v1_sha = store
        .addon("alertmanager")
        .await
        .unwrap()
        .unwrap()
        .wasm_sha256;
    let err = rollback(store, "alertmanager").await.unwrap_err();
    assert!(matches!(err, RollbackError::NoPreviousVersion(_)), "{err}");

    let wider = wider_alertmanager();
    let v2 = bundle::open_bytes(&pack(wider.path(), None), &TrustPolicy::default()).unwrap();
    let err = cli.install(&v2, false).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, InstallError::CapabilitiesNotAccepted { .. }),
        "{msg}"
    );
    for want in [
        "upgrading alertmanager from 0.1.0 to 0.2.0 widens its capabilities",
        "--accept-capabilities",
        "+ host `api.example.com`",
        "~ capabilities.memory_mb 64 -> 128 (more)",
    ] {
        assert!(msg.contains(want), "`{want}` in:\n{msg}");
    }
    let row = store.addon("alertmanager").await.unwrap().unwrap();
    assert_eq!(row.version, "0.1.0", "a refusal changes nothing");

    let done = cli.install(&v2, true).await.unwrap();
    assert!(done.report.changed);
    assert_eq!(
        done.previous.as_ref().map(|p| p.version.as_str()),
        Some("0.1.0")
    );
    assert_eq!(done.capability_diff.hosts_added, ["api.example.com"]);
    let v2_sha = sha256(&std::fs::read(wider.path().join("addon.wasm")).unwrap());
    let row = store.addon("alertmanager").await.unwrap().unwrap();
    assert_eq!(
        (row.version.as_str(), row.wasm_sha256.as_str()),
        ("0.2.0", v2_sha.as_str())
    );
    let kept = store
        .previous_addon_version("alertmanager")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (kept.version.as_str(), kept.wasm_sha256.as_str()),
        ("0.1.0", v1_sha.as_str())
    );

    let generation = store.addons_generation().await.unwrap();
    let back = rollback(store, "alertmanager").await.unwrap();
    assert_eq!(
        (back.from.version.as_str(), back.to.version.as_str()),
        ("0.2.0", "0.1.0")
    );
    let row = store.addon("alertmanager").await.unwrap().unwrap();
    assert_eq!(
        (row.version.as_str(), row.wasm_sha256.as_str()),
        ("0.1.0", v1_sha.as_str())
    );
    assert_eq!(row.manifest["capabilities"]["memory_mb"], 64);
    assert!(row.enabled);
    let wasm = store.addon_wasm("alertmanager").await.unwrap().unwrap();
    assert_eq!(sha256(&wasm), v1_sha, "the wasm itself is the old one");
    assert!(
        store.addons_generation().await.unwrap() > generation,
        "servers reload"
    );
    let err = rollback(store, "alertmanager").await.unwrap_err();
    assert!(err.to_string().contains("no previous version"), "{err}");
    let err = rollback(store, "nope").await.unwrap_err();
    assert!(matches!(err, RollbackError::UnknownAddon(_)), "{err}");
    cli.close().await;
}

opsconductor_tests::both_databases!(
    upgrade_and_rollback,
    upgrade_needs_acceptance_and_rolls_back
);

async fn upload(rt: &TestRuntime, query: &str, body: Vec<u8>) -> (u16, Value) {
    let response = rt
        .http
        .post(rt.url(&format!("/api/v1/addons{query}")))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_api_installs_refuses_upgrades_and_rolls_back() {
    let k = key(7);
    let trusted = public_key_base64(&k.verifying_key());
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[],
        |config| {
            config.bundles.trusted_keys = vec![trusted];
            config.bundles.require_signatures = true;
        },
        async |_| {},
    )
    .await;

    // Refused: unsigned, and not a bundle at all.
    let (status, body) = upload(&rt, "", pack(&bundle_dir("alertmanager"), None)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "bundle_rejected", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not signed"),
        "{body}"
    );
    let (status, body) = upload(&rt, "", b"{}".to_vec()).await;
    assert_eq!(status, 422, "{body}");

    // Installed, signed, and live without a restart.
    let (status, body) = upload(&rt, "", pack(&bundle_dir("alertmanager"), Some(&k))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], "alertmanager");
    assert_eq!(body["version"], "0.1.0");
    assert_eq!(body["signer"]["status"], "trusted", "{body}");
    assert_eq!(body["fixtures_passed"], 4, "{body}");
    let (status, answer) = rt
        .post_webhook("alertmanager", fixture("alertmanager", "firing"))
        .await;
    assert_eq!(status, 200, "{answer}");

    // Larger than axum's default 2 MiB body limit: the route allows bundles up to 64 MiB.
    let padded = copy_bundle("alertmanager");
    let mut noise = Vec::with_capacity(3 << 20);
    let mut block = Sha256::digest(b"incompressible");
    while noise.len() < 3 << 20 {
        block = Sha256::digest(block);
        noise.extend_from_slice(&block);
    }
    std::fs::write(padded.path().join("fixtures/padding.bin"), noise).unwrap();
    let big = pack(padded.path(), Some(&k));
    assert!(big.len() > 3 << 20);
    let (status, body) = upload(&rt, "", big).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], false, "the same addon: {body}");

    // A failing fixture, through the API: 422 with the difference.
    let broken = copy_bundle("alertmanager");
    edit_json(
        &broken.path().join("fixtures/resolved.expected.json"),
        |v| {
            *v = json!([]);
        },
    );
    let (status, body) = upload(&rt, "", pack(broken.path(), Some(&k))).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "fixtures_failed", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fixture `resolved`"),
        "{body}"
    );

    // Wider capabilities: 409 with the difference, then accepted.
    let wider = wider_alertmanager();
    let (status, body) = upload(&rt, "", pack(wider.path(), Some(&k))).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "capabilities_not_accepted", "{body}");
    assert_eq!(
        body["error"]["capability_diff"]["hosts_added"],
        json!(["api.example.com"])
    );
    assert_eq!(rt.addon("alertmanager").await["version"], "0.1.0");
    let (status, body) = upload(
        &rt,
        "?accept_capabilities=true",
        pack(wider.path(), Some(&k)),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["previous"]["version"], "0.1.0", "{body}");
    let addon = rt.addon("alertmanager").await;
    assert_eq!(
        (addon["version"].as_str(), addon["loaded"].as_bool()),
        (Some("0.2.0"), Some(true))
    );

    // Rollback, once.
    let (status, body) = rt
        .send_json("POST", "/api/v1/addons/alertmanager/rollback", &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["addon"]["version"], "0.1.0", "{body}");
    assert_eq!(body["rolled_back_from"]["version"], "0.2.0", "{body}");
    let (status, body) = rt
        .send_json("POST", "/api/v1/addons/alertmanager/rollback", &json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "no_previous_version", "{body}");
    let (status, answer) = rt
        .post_webhook("alertmanager", fixture("alertmanager", "firing"))
        .await;
    assert_eq!(status, 200, "{answer}");

    // Audited with the versions.
    let (_, audit) = rt
        .get_json("/api/v1/audit?action=addon.install&limit=20")
        .await;
    let entries = audit["items"].as_array().unwrap();
    let accepted = entries
        .iter()
        .find(|e| e["after"]["version"] == "0.2.0" && e["outcome"] == "success")
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(accepted["target"], "addon:alertmanager");
    assert_eq!(accepted["before"]["version"], "0.1.0");
    let (_, audit) = rt
        .get_json("/api/v1/audit?action=addon.rollback&outcome=success")
        .await;
    let entry = &audit["items"][0];
    assert_eq!(
        (
            entry["before"]["version"].as_str(),
            entry["after"]["version"].as_str()
        ),
        (Some("0.2.0"), Some("0.1.0")),
        "{audit}"
    );
    rt.stop().await;
}

/// The same through the command line's code: `addon keygen`, `pack`, `install <file>`
/// (refused — an error, so a non-zero exit — then accepted), `rollback` twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_packs_installs_with_acceptance_and_rolls_back() {
    use opsconductor::cli::{AddonCommand, Cli as Command, Command as Top, run};
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        database_url: format!("sqlite://{}", dir.path().join("db.sqlite").display()),
        data_dir: dir.path().to_owned(),
        secrets_key_file: Some(dir.path().join("secrets.key")),
        ..Config::default()
    };
    let cli = |command: AddonCommand| Command {
        config: None,
        database_url: None,
        command: Top::Addon(command),
    };
    let key = dir.path().join("ops");
    run(
        cli(AddonCommand::Keygen {
            name: key.display().to_string(),
        }),
        config.clone(),
    )
    .await
    .unwrap();
    let key = dir.path().join("ops.key");
    let wider = wider_alertmanager();
    for source in [bundle_dir("alertmanager"), wider.path().to_owned()] {
        run(
            cli(AddonCommand::Pack {
                dir: source,
                key: Some(key.clone()),
                out: dir.path().to_owned(),
            }),
            config.clone(),
        )
        .await
        .unwrap();
    }
    let install = |file: &str, accept: bool| {
        cli(AddonCommand::Install {
            bundles: vec![dir.path().join(file)],
            accept_capabilities: accept,
        })
    };
    run(
        install("alertmanager-0.1.0.ocbundle", false),
        config.clone(),
    )
    .await
    .unwrap();
    let err = run(
        install("alertmanager-0.2.0.ocbundle", false),
        config.clone(),
    )
    .await
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("+ host `api.example.com`"), "{msg}");
    run(install("alertmanager-0.2.0.ocbundle", true), config.clone())
        .await
        .unwrap();
    let rollback = || {
        cli(AddonCommand::Rollback {
            id: "alertmanager".into(),
        })
    };
    run(rollback(), config.clone()).await.unwrap();
    let err = run(rollback(), config.clone()).await.unwrap_err();
    assert!(err.to_string().contains("no previous version"), "{err}");
    let core = Core::open(&config).await.unwrap();
    let row = core.store.addon("alertmanager").await.unwrap().unwrap();
    assert_eq!(row.version, "0.1.0");
}
