//! `opsconductor addon test`: every fixture of a bundle or an addon's source directory
//! through the real sandbox and the alert engine ([`crate::fixtures::run_fixtures`]), a line
//! diff per mismatch and, per fixture, wall time, guest time and peak linear memory; `update`
//! rewrites the expectations. `record` runs its new fixture through the same pieces.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, bail};
use serde_json::Value;

use super::build::build;
use super::copy_dir;
use crate::fixtures::{FixtureResult, FixtureSources, run_fixtures};
use crate::sandbox::{HostServices, Sandbox};
use crate::store::Store;

/// The newest modification time under `path` (a file or a directory tree).
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|e| newest(&e.ok()?.path()))
        .max()
}

/// What `addon test <path>` runs: a bundle as it is, or an addon's source directory with the
/// component of its bundle (built first when missing or older than the sources) and the
/// manifest and fixtures of the source directory, so that `--update` rewrites those.
pub(super) fn test_sources(path: &Path) -> anyhow::Result<(FixtureSources, Option<PathBuf>)> {
    // A rules addon (docs/rules.md) is its own bundle: a manifest and fixtures, nothing to build.
    // Read loosely, so that a faulty rules manifest reaches the fixture run, which says what is
    // wrong with it.
    let rules = std::fs::read(path.join("manifest.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|manifest| manifest["world"] == crate::manifest::WORLD_RULES);
    if rules || path.join("manifest.json").is_file() && path.join("addon.wasm").is_file() {
        return Ok((FixtureSources::bundle(path), None));
    }
    if !path.join("Cargo.toml").is_file() {
        bail!(
            "{} is neither a bundle (manifest.json + addon.wasm, or a rules addon's manifest.json) \
             nor an addon's source directory (Cargo.toml)",
            path.display()
        );
    }
    let bundle = path.join("target").join("bundle");
    let built = newest(&bundle.join("addon.wasm"));
    let sources = ["Cargo.toml", "Cargo.lock", "manifest.json", "src"]
        .iter()
        .filter_map(|p| newest(&path.join(p)))
        .max();
    if built.is_none() || sources > built {
        build(path, Some(&bundle))?;
    }
    Ok((
        FixtureSources {
            root: path.to_owned(),
            manifest: path.join("manifest.json"),
            wasm: bundle.join("addon.wasm"),
            fixtures: path.join("fixtures"),
        },
        Some(bundle),
    ))
}

/// A sandbox for fixture runs, with a throwaway database for the addons' state imports.
pub(super) async fn scratch_sandbox() -> anyhow::Result<(Arc<Sandbox>, Store, ScratchDir)> {
    let dir = ScratchDir::new()?;
    let url = format!("sqlite://{}", dir.0.join("fixtures.db").display());
    let store = Store::connect(&url, Arc::new(crate::secrets::SecretKeys::generate()))
        .await
        .with_context(|| format!("opening {url}"))?;
    let sandbox = Sandbox::new(
        None,
        HostServices {
            store: store.clone(),
        },
    )?;
    Ok((Arc::new(sandbox), store, dir))
}

/// A temporary directory, removed when dropped.
pub(super) struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> anyhow::Result<ScratchDir> {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "opsconductor-addon-test-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn millis(d: std::time::Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// One fixture's report line: outcome, name, wall time, guest time, peak memory.
pub(super) fn report_line(r: &FixtureResult, outcome: &str) -> String {
    format!(
        "{outcome:<7} {:<24} wall {:>9}  guest {:>9}  peak memory {:>9}",
        r.name,
        millis(r.wall),
        millis(r.measure.guest_time),
        mib(r.measure.peak_memory_bytes)
    )
}

/// Whether a fixture's output is a crash or an engine error rather than alerts or an addon
/// error.
fn crashed(actual: &Value) -> bool {
    actual.get("crash").is_some() || actual.get("engine_error").is_some()
}

/// Runs every fixture of a bundle or addon source directory and prints the results; with
/// `update`, mismatching expectations are rewritten with what the addon produced. Returns
/// whether every fixture passed (or was updated).
pub async fn test(path: &Path, update: bool) -> anyhow::Result<bool> {
    let (sources, bundle) = test_sources(path)?;
    let (sandbox, store, _scratch) = scratch_sandbox().await?;
    let results = run_fixtures(&sandbox, &sources).await;
    store.close().await;
    let results = results?;

    let (mut passed, mut failed, mut updated) = (0, 0, 0);
    for r in &results {
        match (&r.mismatch, update) {
            (None, _) => {
                passed += 1;
                println!("{}", report_line(r, "ok"));
            }
            // A crash (trap, CPU or memory limit, timeout) or an engine error is never written
            // as the expectation: it is reported like any failure.
            (Some(_), true) if !crashed(&r.actual) => {
                let text = serde_json::to_string_pretty(&r.updated_expectation())? + "\n";
                std::fs::write(&r.expected_path, text)
                    .with_context(|| format!("writing {}", r.expected_path.display()))?;
                updated += 1;
                println!("{}", report_line(r, "updated"));
            }
            (Some(diff), _) => {
                failed += 1;
                println!("{}", report_line(r, "FAIL"));
                let file = r
                    .expected_path
                    .strip_prefix(path)
                    .unwrap_or(&r.expected_path);
                println!("  {} differs (- expected, + actual):", file.display());
                for line in diff.lines() {
                    println!("    {line}");
                }
            }
        }
    }
    // Keep the bundle's copy of the fixtures in step with the source directory's.
    if let Some(bundle) = bundle
        && sources.fixtures.is_dir()
    {
        copy_dir(&sources.fixtures, &bundle.join("fixtures"))?;
    }
    println!(
        "{} fixtures: {passed} passed, {failed} failed{}",
        results.len(),
        if update {
            format!(", {updated} updated")
        } else {
            String::new()
        }
    );
    println!(
        "(guest time is the call's wall time minus host calls, what the CPU budget charges; \
         instructions are not counted: wasmtime fuel is not enabled)"
    );
    Ok(failed == 0)
}
