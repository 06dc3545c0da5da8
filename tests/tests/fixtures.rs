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
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("f.db").display()))
        .await
        .unwrap();
    let sandbox = Arc::new(Sandbox::new(None, HostServices { store }).unwrap());

    let mut addons: Vec<_> = std::fs::read_dir(bundles_dir())
        .unwrap_or_else(|e| panic!("{}: {e}; run `just build-addons`", bundles_dir().display()))
        .map(|e| e.unwrap().path())
        .collect();
    addons.sort();
    assert!(
        addons.len() >= 3,
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
    assert!(ran >= 9, "only {ran} fixtures ran");
}

/// The runner really compares: a bundle whose expectation is wrong is reported, with both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_expectation_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("f.db").display()))
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
