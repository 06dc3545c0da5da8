//! Every bundled addon's fixtures, run through the real sandbox and alert engine. An addon
//! without fixtures fails this test.

use std::sync::Arc;

use opsconductor::fixtures::run_bundle_fixtures;
use opsconductor::sandbox::{HostServices, Sandbox};
use opsconductor::store::Store;
use opsconductor_tests::bundles_dir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bundled_addon_passes_its_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(
        &format!("sqlite://{}", dir.path().join("f.db").display()),
        opsconductor::testing::secret_keys(),
    )
    .await
    .unwrap();
    let sandbox = Arc::new(Sandbox::new(None, HostServices { store }).unwrap());

    let mut addons: Vec<_> = std::fs::read_dir(bundles_dir())
        .unwrap_or_else(|e| panic!("{}: {e}; run `just build-addons`", bundles_dir().display()))
        .map(|e| e.unwrap().path())
        .collect();
    addons.sort();
    assert!(
        addons.len() >= 6,
        "expected the bundled addons in {addons:?}"
    );

    let mut failures = Vec::new();
    let mut ran = 0;
    for addon in &addons {
        let results = run_bundle_fixtures(&sandbox, addon)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for r in results {
            ran += 1;
            if let Some(m) = r.mismatch {
                failures.push(format!("{} / {}:\n{m}", addon.display(), r.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} fixtures failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(ran >= 52, "only {ran} fixtures ran");
}

/// The addons converted from code to rules (`addons/<id>-rules`) are held to the compiled
/// addon's own expectations: their fixtures are the compiled addon's (a link, not a copy), and
/// their bundles are among those the test above runs on the rules engine.
#[test]
fn converted_rules_addons_share_the_compiled_addons_fixtures() {
    let addons = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../addons");
    let mut converted = Vec::new();
    for entry in std::fs::read_dir(&addons).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Some(compiled) = name.strip_suffix("-rules") else {
            continue;
        };
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(
            manifest["world"],
            opsconductor::manifest::WORLD_RULES,
            "{name}"
        );
        assert_eq!(
            std::fs::canonicalize(dir.join("fixtures")).unwrap(),
            std::fs::canonicalize(addons.join(compiled).join("fixtures")).unwrap(),
            "{name}/fixtures must be a link to {compiled}/fixtures"
        );
        assert!(
            std::fs::symlink_metadata(dir.join("fixtures"))
                .unwrap()
                .is_symlink(),
            "{name}/fixtures must be a link, not a copy that could drift"
        );
        assert!(
            opsconductor_tests::bundle(&name)
                .join("manifest.json")
                .is_file(),
            "{name} has no bundle: run `just build-addons`"
        );
        converted.push(name);
    }
    converted.sort();
    assert!(converted.len() >= 3, "converted addons: {converted:?}");
}

/// The runner really compares: a bundle whose expectation is wrong is reported, with both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_expectation_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(
        &format!("sqlite://{}", dir.path().join("f.db").display()),
        opsconductor::testing::secret_keys(),
    )
    .await
    .unwrap();
    let sandbox = Arc::new(Sandbox::new(None, HostServices { store }).unwrap());

    let bundle = dir.path().join("alertmanager");
    let source = opsconductor_tests::bundle("alertmanager");
    std::fs::create_dir_all(bundle.join("fixtures")).unwrap();
    for file in ["manifest.json", "addon.wasm"] {
        std::fs::copy(source.join(file), bundle.join(file)).unwrap();
    }
    std::fs::copy(
        source.join("fixtures/firing.input.json"),
        bundle.join("fixtures/firing.input.json"),
    )
    .unwrap();
    let expected = std::fs::read_to_string(source.join("fixtures/firing.expected.json")).unwrap();
    assert!(
        expected.contains("\"critical\""),
        "fixture changed: {expected}"
    );
    std::fs::write(
        bundle.join("fixtures/firing.expected.json"),
        expected.replacen("\"critical\"", "\"info\"", 1),
    )
    .unwrap();

    let results = run_bundle_fixtures(&sandbox, &bundle).await.unwrap();
    assert_eq!(results.len(), 1);
    let mismatch = results[0].mismatch.as_deref().expect("mismatch reported");
    assert!(
        mismatch.contains("\"info\"") && mismatch.contains("\"critical\""),
        "{mismatch}"
    );
}

/// A trap fixture that does not fit the format, or that the registry would never route to the
/// addon, fails the bundle with the file and the field named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_trap_fixture_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(
        &format!("sqlite://{}", dir.path().join("f.db").display()),
        opsconductor::testing::secret_keys(),
    )
    .await
    .unwrap();
    let sandbox = Arc::new(Sandbox::new(None, HostServices { store }).unwrap());

    let bundle = dir.path().join("if-mib");
    let source = opsconductor_tests::bundle("if-mib");
    std::fs::create_dir_all(bundle.join("fixtures")).unwrap();
    for file in ["manifest.json", "addon.wasm"] {
        std::fs::copy(source.join(file), bundle.join(file)).unwrap();
    }
    let input = std::fs::read_to_string(source.join("fixtures/link-down.input.trap.json")).unwrap();
    std::fs::write(bundle.join("fixtures/x.expected.json"), "[]").unwrap();
    let cases = [
        (
            input.replacen(r#""value": 516"#, r#""value": "516""#, 1),
            "fixtures/x.input.trap.json: varbinds[0]: invalid type: string \"516\"",
        ),
        (
            input.replace("1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.1"),
            "fixtures/x.input.trap.json: trap_oid: 1.3.6.1.6.3.1.1.5.1 is not under the \
             manifest's snmp_trap.oid_prefixes",
        ),
    ];
    for (fixture, want) in cases {
        std::fs::write(bundle.join("fixtures/x.input.trap.json"), fixture).unwrap();
        let err = run_bundle_fixtures(&sandbox, &bundle).await.unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
    }
}
