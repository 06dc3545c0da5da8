//! Runs an addon bundle's fixtures through the real sandbox and the alert engine: each input
//! in a fresh instance, measured. What a fixture is — its files, the input formats, the
//! expectation and how it is compared — is the model's [`fixture`] module, which the addon
//! SDK's native runner uses too.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::engine::AlertRules;
use crate::manifest::Manifest;
use crate::sandbox::{CallError, CallMeasure, Sandbox, code_sha256};
use opsconductor_model::fixture::{self, InputKind};

pub use opsconductor_model::fixture::poll_to_json;

#[derive(Debug)]
pub struct FixtureResult {
    pub name: String,
    /// `None` when the output matched; otherwise what differed: a line diff of the pretty
    /// JSON, `-` expected and `+` actual.
    pub mismatch: Option<String>,
    /// The `.expected.json` file this fixture was compared with.
    pub expected_path: PathBuf,
    /// What the addon and the engine made of the input, in the expectation's format.
    pub actual: Value,
    /// Wall time of the fixture: a fresh instance, the call and the engine.
    pub wall: Duration,
    /// What the call cost the guest (guest time, peak linear memory).
    pub measure: CallMeasure,
}

impl FixtureResult {
    /// What `--update` writes to [`FixtureResult::expected_path`]: the actual output, with an
    /// addon error in the `{"error": {"kind", "message_contains"}}` form.
    pub fn updated_expectation(&self) -> Value {
        fixture::updated_expectation(&self.actual)
    }
}

/// Where one run's pieces are: the manifest, the component and the fixtures. A bundle has them
/// side by side ([`run_bundle_fixtures`]); an addon's source directory has the manifest and
/// the fixtures, and the component in its built bundle.
#[derive(Debug, Clone)]
pub struct FixtureSources {
    /// What error messages name files relative to.
    pub root: PathBuf,
    pub manifest: PathBuf,
    pub wasm: PathBuf,
    pub fixtures: PathBuf,
}

impl FixtureSources {
    pub fn bundle(dir: &Path) -> FixtureSources {
        FixtureSources {
            root: dir.to_owned(),
            manifest: dir.join("manifest.json"),
            wasm: dir.join("addon.wasm"),
            fixtures: dir.join("fixtures"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("bundle {path}: {message}")]
    Bundle { path: PathBuf, message: String },
}

fn bundle_err(path: &Path, message: impl Into<String>) -> FixtureError {
    FixtureError::Bundle {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Runs every fixture of the bundle in `dir`. The bundle must have at least one.
pub async fn run_bundle_fixtures(
    sandbox: &Arc<Sandbox>,
    dir: &Path,
) -> Result<Vec<FixtureResult>, FixtureError> {
    run_fixtures(sandbox, &FixtureSources::bundle(dir)).await
}

/// Runs every fixture in `sources.fixtures`, each in a fresh instance. There must be at least
/// one.
pub async fn run_fixtures(
    sandbox: &Arc<Sandbox>,
    sources: &FixtureSources,
) -> Result<Vec<FixtureResult>, FixtureError> {
    let dir = sources.root.as_path();
    let relative = |p: &Path| p.strip_prefix(dir).unwrap_or(p).display().to_string();
    let manifest_bytes = std::fs::read(&sources.manifest)
        .map_err(|e| bundle_err(dir, format!("{}: {e}", relative(&sources.manifest))))?;
    let manifest =
        Manifest::from_json(&manifest_bytes).map_err(|e| bundle_err(dir, e.to_string()))?;
    // A rules addon has no component of its own: the rules engine runs its `parse` section.
    let wasm = if manifest.is_rules() {
        Vec::new()
    } else {
        std::fs::read(&sources.wasm)
            .map_err(|e| bundle_err(dir, format!("{}: {e}", relative(&sources.wasm))))?
    };
    let component = sandbox
        .load_addon(&manifest, &wasm, &code_sha256(&manifest, &wasm))
        .map_err(|e| bundle_err(dir, e.to_string()))?;
    let rules = AlertRules::new(&manifest.id, &manifest.alerts);

    let fixtures_dir = sources.fixtures.as_path();
    let mut inputs: Vec<(String, InputKind)> = std::fs::read_dir(fixtures_dir)
        .map_err(|e| bundle_err(dir, format!("{}/: {e}", relative(fixtures_dir))))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|file| {
            let (name, kind) = InputKind::of(&file)?;
            Some((name.to_owned(), kind))
        })
        .collect();
    inputs.sort();
    if inputs.is_empty() {
        return Err(bundle_err(
            dir,
            "has no fixtures/<name>.input.json, fixtures/<name>.input.trap.json or \
             fixtures/<name>.input.poll.json",
        ));
    }

    let mut results = Vec::new();
    for (name, kind) in inputs {
        let input = fixtures_dir.join(format!("{name}{}", kind.suffix()));
        // Every problem with a fixture file names the file, relative to the bundle.
        let fixture_err = |path: &Path, message: String| {
            let path = path.strip_prefix(dir).unwrap_or(path);
            bundle_err(dir, format!("{}: {message}", path.display()))
        };
        let expected_path = fixtures_dir.join(format!("{name}.expected.json"));
        let expected: Value = std::fs::read(&expected_path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| fixture_err(&expected_path, e))?;
        let bytes = std::fs::read(&input).map_err(|e| fixture_err(&input, e.to_string()))?;
        let event =
            fixture::read_input(&manifest, kind, bytes).map_err(|e| fixture_err(&input, e))?;
        let started = Instant::now();
        let (parsed, measure) = component.parse_measured(event).await;
        let actual = match parsed {
            Ok(reported) => fixture::evaluate_reported(&rules, reported),
            Err(CallError::Addon { kind, message }) => fixture::addon_error(kind, &message),
            Err(other) => json!({ "crash": other.to_string() }),
        };
        let wall = started.elapsed();
        results.push(FixtureResult {
            mismatch: fixture::compare(&expected, &actual),
            name,
            expected_path,
            actual,
            wall,
            measure,
        });
    }
    Ok(results)
}
