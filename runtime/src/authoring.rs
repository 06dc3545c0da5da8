//! Writing addons: `opsconductor addon new | build | test | record`.
//!
//! - [`scaffold`] lays out a new addon's source directory from the templates in
//!   `runtime/templates/` (a Cargo project against the SDK, a manifest for the current WIT
//!   world, one fixture pair that passes, a README);
//! - [`build`] runs `cargo build --target wasm32-wasip2 --release` in it and lays out the bundle
//!   `opsconductor addon install` takes: `manifest.json`, `addon.wasm`, `fixtures/` (the layout
//!   of `scripts/build-addons.sh`);
//! - [`test`] runs every fixture through the real sandbox and the alert engine
//!   ([`crate::fixtures::run_fixtures`]), prints a line diff per mismatch and, per fixture, wall
//!   time, guest time and peak linear memory; `update` rewrites the expectations;
//! - [`record`] polls one configured target through the real poll path and writes what its
//!   fetches returned as a poll fixture, so a bug seen on a device reproduces offline.
//!
//! These are command-line tools for authors, so errors are `anyhow` with the file or command
//! they are about, like the rest of the CLI.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::config::Config;
use crate::fixtures::{FixtureResult, FixtureSources, run_fixtures};
use crate::manifest::{Manifest, PollMode, WORLD_V0_2};
use crate::poll::Pollers;
use crate::registry::{IngestCounters, LoadedAddon};
use crate::sandbox::{HostServices, Sandbox};
use crate::store::Store;
use crate::target::CredentialSecret;
use crate::webhook_auth::WebhookAuth;

/// The compilation target of addons.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// The SDK of the source tree this binary was built from: what `addon new` depends on unless
/// told `--sdk-path`.
pub const DEFAULT_SDK_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../addon-sdk");

/// What a new addon reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A JSON webhook (`POST /webhooks/<id>`).
    Webhook,
    /// SNMP traps under an enterprise OID prefix.
    Trap,
    /// A declarative poll of each configured target (an HTTP fetch).
    Poll,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Trap => "trap",
            Kind::Poll => "poll",
        }
    }
}

/// One file of a template: its path in the new addon and its text, placeholders unreplaced.
struct TemplateFile {
    path: &'static str,
    text: &'static str,
}

macro_rules! template {
    ($path:literal, $file:literal) => {
        TemplateFile {
            path: $path,
            text: include_str!(concat!("../templates/", $file)),
        }
    };
}

const COMMON: [TemplateFile; 3] = [
    template!("Cargo.toml", "addon-common/Cargo.toml.tmpl"),
    template!("README.md", "addon-common/README.md.tmpl"),
    template!(".gitignore", "addon-common/gitignore.tmpl"),
];

const WEBHOOK: [TemplateFile; 4] = [
    template!("src/lib.rs", "addon-webhook/lib.rs.tmpl"),
    template!("manifest.json", "addon-webhook/manifest.json.tmpl"),
    template!(
        "fixtures/example.input.json",
        "addon-webhook/fixtures/example.input.json"
    ),
    template!(
        "fixtures/example.expected.json",
        "addon-webhook/fixtures/example.expected.json"
    ),
];

const TRAP: [TemplateFile; 4] = [
    template!("src/lib.rs", "addon-trap/lib.rs.tmpl"),
    template!("manifest.json", "addon-trap/manifest.json.tmpl"),
    template!(
        "fixtures/example.input.trap.json",
        "addon-trap/fixtures/example.input.trap.json"
    ),
    template!(
        "fixtures/example.expected.json",
        "addon-trap/fixtures/example.expected.json"
    ),
];

const POLL: [TemplateFile; 4] = [
    template!("src/lib.rs", "addon-poll/lib.rs.tmpl"),
    template!("manifest.json", "addon-poll/manifest.json.tmpl"),
    template!(
        "fixtures/example.input.poll.json",
        "addon-poll/fixtures/example.input.poll.json"
    ),
    template!(
        "fixtures/example.expected.json",
        "addon-poll/fixtures/example.expected.json"
    ),
];

/// The Rust type name of an addon id: `acme-checks` → `AcmeChecks` (`A` first when the id
/// starts with a digit).
fn type_name(id: &str) -> String {
    let mut name: String = id
        .split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert(0, 'A');
    }
    name
}

/// Creates a new addon of `kind` in `dir` (which must not exist, or be empty), depending on
/// the SDK at `sdk_path`. Returns the files written, relative to `dir`.
pub fn scaffold(
    id: &str,
    kind: Kind,
    dir: &Path,
    sdk_path: &Path,
) -> anyhow::Result<Vec<&'static str>> {
    let sdk_path = std::fs::canonicalize(sdk_path)
        .ok()
        .filter(|p| p.join("Cargo.toml").is_file())
        .with_context(|| {
            format!(
                "no addon SDK at {} (pass --sdk-path with the path of opsconductor's addon-sdk)",
                sdk_path.display()
            )
        })?;
    if dir.exists() {
        let empty = dir.is_dir()
            && std::fs::read_dir(dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .next()
                .is_none();
        if !empty {
            bail!(
                "{} already exists and is not empty; choose another --dir",
                dir.display()
            );
        }
    }

    let (per_kind, summary, manifest_part, input_suffix, input_what) = match kind {
        Kind::Webhook => (
            &WEBHOOK,
            "It takes JSON posted to `/webhooks/{{id}}` and raises or clears one alert per host \
             and check.",
            "`webhook` (path, body limit)",
            "input.json",
            "a request body, posted to the webhook path",
        ),
        Kind::Trap => (
            &TRAP,
            "It turns SNMP traps under the example enterprise `1.3.6.1.4.1.99999.0` into alerts \
             (replace the OIDs in `src/lib.rs` and `manifest.json` with your vendor's).",
            "`snmp_trap` (the trap OID prefixes it claims)",
            "input.trap.json",
            "an SNMP trap as JSON (format in the SDK README, \"Testing\")",
        ),
        Kind::Poll => (
            &POLL,
            "It polls each configured target over HTTP (`GET /{path}`, `path` from the \
             target's config) and alerts while the answer is not 2xx. Record a real target's \
             answer as a fixture with `opsconductor addon record`.",
            "`poll` (what the host fetches from each target)",
            "input.poll.json",
            "a poll result as JSON: what the host's fetches returned (format in the SDK README)",
        ),
    };
    let sdk_toml = toml::Value::String(sdk_path.display().to_string()).to_string();
    let replace = |text: &str| {
        text.replace("{{summary}}", summary)
            .replace("{{manifest_part}}", manifest_part)
            .replace("{{input_suffix}}", input_suffix)
            .replace("{{input_what}}", input_what)
            .replace("{{kind}}", kind.name())
            .replace("{{id}}", id)
            .replace("{{type}}", &type_name(id))
            .replace("{{crate}}", &format!("opsconductor-addon-{id}"))
            .replace("{{sdk_path}}", &sdk_toml)
            .replace("{{world}}", WORLD_V0_2)
    };

    // The manifest is checked before anything is written: a bad id is refused with the
    // manifest's own message.
    let files: Vec<(&'static str, String)> = COMMON
        .iter()
        .chain(per_kind.iter())
        .map(|f| (f.path, replace(f.text)))
        .collect();
    let manifest = files
        .iter()
        .find(|(path, _)| *path == "manifest.json")
        .map(|(_, text)| text.as_bytes())
        .unwrap_or_default();
    Manifest::from_json(manifest).map_err(|e| anyhow::anyhow!("addon id `{id}`: {e}"))?;

    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    // The SDK's dependencies at the versions the bundled addons are built and tested with;
    // cargo drops what this addon does not use.
    let lock = include_str!("../../addons/Cargo.lock");
    std::fs::write(dir.join("Cargo.lock"), lock)
        .with_context(|| format!("writing {}", dir.join("Cargo.lock").display()))?;
    Ok(files.iter().map(|(path, _)| *path).collect())
}

/// Whether the standard library for [`WASM_TARGET`] is installed for the toolchain that
/// builds in `dir` (its `rust-toolchain.toml`, if any, picks it).
fn wasm_target_installed(dir: &Path) -> anyhow::Result<bool> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(dir)
        .output()
        .context("running `rustc --print sysroot` (is Rust installed? see https://rustup.rs)")?;
    if !out.status.success() {
        bail!(
            "`rustc --print sysroot` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    Ok(sysroot.join("lib/rustlib").join(WASM_TARGET).is_dir())
}

fn missing_target_message() -> String {
    format!("the {WASM_TARGET} target is not installed; run `rustup target add {WASM_TARGET}`")
}

/// The built component of the crate in `dir`: `<target dir>/wasm32-wasip2/release/<lib>.wasm`,
/// from `cargo metadata` (so `CARGO_TARGET_DIR` and `.cargo/config.toml` are respected).
fn built_wasm_path(dir: &Path) -> anyhow::Result<PathBuf> {
    let out = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .context("running `cargo metadata`")?;
    if !out.status.success() {
        bail!("`cargo metadata` failed in {}", dir.display());
    }
    let meta: Value = serde_json::from_slice(&out.stdout).context("reading cargo metadata")?;
    let target_dir = meta["target_directory"]
        .as_str()
        .context("cargo metadata has no target_directory")?;
    let manifest_path = dir.join("Cargo.toml");
    let manifest_path = std::fs::canonicalize(&manifest_path).unwrap_or(manifest_path);
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    let package = packages
        .iter()
        .find(|p| p["manifest_path"].as_str().map(Path::new) == Some(manifest_path.as_path()))
        .or(packages.first())
        .context("cargo metadata lists no package")?;
    let lib = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        })
        .and_then(|t| t["name"].as_str())
        .with_context(|| {
            format!(
                "{} has no cdylib target; add `[lib] crate-type = [\"cdylib\"]`",
                dir.join("Cargo.toml").display()
            )
        })?;
    Ok(Path::new(target_dir)
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", lib.replace('-', "_"))))
}

/// Builds the addon in `dir` and lays out its bundle in `out` (default `<dir>/target/bundle`).
/// Cargo's progress goes to stderr as it comes. Returns the bundle directory.
pub fn build(dir: &Path, out: Option<&Path>) -> anyhow::Result<PathBuf> {
    if !dir.join("Cargo.toml").is_file() {
        bail!(
            "{} has no Cargo.toml: not an addon's source directory",
            dir.display()
        );
    }
    let manifest_path = dir.join("manifest.json");
    let manifest_bytes = std::fs::read(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    Manifest::from_json(&manifest_bytes)
        .with_context(|| format!("{} is not a valid manifest", manifest_path.display()))?;
    if !wasm_target_installed(dir)? {
        bail!(missing_target_message());
    }

    eprintln!("building {} for {WASM_TARGET}", dir.display());
    let mut child = Command::new("cargo")
        .args(["build", "--target", WASM_TARGET, "--release"])
        .current_dir(dir)
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .spawn()
        .context("running cargo (is Rust installed? see https://rustup.rs)")?;
    // Forward cargo's progress line by line, watching for the signs of a missing target.
    let mut target_missing = false;
    if let Some(stderr) = child.stderr.take() {
        let mut ours = std::io::stderr();
        for line in BufReader::new(stderr).lines() {
            let line = line.context("reading cargo's output")?;
            target_missing |= line.contains("can't find crate for `core`")
                || line.contains("can't find crate for `std`")
                || line.contains("target may not be installed");
            let _ = writeln!(ours, "{line}");
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if target_missing {
        bail!(missing_target_message());
    }
    if !status.success() {
        bail!("cargo build failed ({status}); its errors are above");
    }

    let wasm_path = built_wasm_path(dir)?;
    let wasm =
        std::fs::read(&wasm_path).with_context(|| format!("reading {}", wasm_path.display()))?;
    // A component has version 0x0d, layer 1; a core module (an old toolchain, or a build for
    // wasm32-unknown-unknown) has version 1, layer 0.
    if !wasm.starts_with(&[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]) {
        bail!(
            "{} is not a WebAssembly component (is the toolchain older than Rust 1.82?)",
            wasm_path.display()
        );
    }

    let out = out.map_or_else(|| dir.join("target").join("bundle"), Path::to_owned);
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("manifest.json"), &manifest_bytes)
        .with_context(|| format!("writing {}", out.join("manifest.json").display()))?;
    std::fs::write(out.join("addon.wasm"), &wasm)
        .with_context(|| format!("writing {}", out.join("addon.wasm").display()))?;
    if dir.join("fixtures").is_dir() {
        copy_dir(&dir.join("fixtures"), &out.join("fixtures"))?;
    }
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&wasm));
    println!(
        "bundle {} ({} bytes, sha256 {})",
        out.display(),
        wasm.len(),
        &sha[..12]
    );
    Ok(out)
}

/// Copies the files of `from` (recursively) into `to`, replacing what is there.
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

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
fn test_sources(path: &Path) -> anyhow::Result<(FixtureSources, Option<PathBuf>)> {
    if path.join("manifest.json").is_file() && path.join("addon.wasm").is_file() {
        return Ok((FixtureSources::bundle(path), None));
    }
    if !path.join("Cargo.toml").is_file() {
        bail!(
            "{} is neither a bundle (manifest.json + addon.wasm) nor an addon's source directory \
             (Cargo.toml)",
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
async fn scratch_sandbox() -> anyhow::Result<(Arc<Sandbox>, Store, ScratchDir)> {
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
struct ScratchDir(PathBuf);

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
fn report_line(r: &FixtureResult, outcome: &str) -> String {
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

/// Polls the configured target `target` (name or id) once with the addon in `dir` (a bundle or
/// source directory) through the real poll path — the target's credential applied by the host,
/// SSH host keys pinned as a scheduled poll would — and writes what the host's fetches
/// returned as `fixtures/<fixture>.input.poll.json`, plus `<fixture>.expected.json` with what
/// the addon made of it. Declarative polls only: a scripted poll's I/O has no fixture format.
///
/// Credentials never reach the file: the poll result has none (the host applies them), and
/// [`redact`] also replaces, in every string, the text of the target's secret (a device may
/// echo it), URL user info (`https://user:pw@host` → `https://host`), and the values of
/// sensitive keys and headers (`authorization`, `cookie`, `set-cookie`, names containing
/// `token`, `secret`, `password`, ...) with `<redacted>`.
pub async fn record(
    config: &Config,
    dir: &Path,
    target: &str,
    fixture: &str,
) -> anyhow::Result<()> {
    let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if fixture.is_empty() || fixture.starts_with('.') || !fixture.chars().all(name_ok) {
        bail!("fixture name `{fixture}`: use letters, digits, `-`, `_` and `.`");
    }
    let (sources, bundle) = test_sources(dir)?;
    let input_path = sources.fixtures.join(format!("{fixture}.input.poll.json"));
    let expected_path = sources.fixtures.join(format!("{fixture}.expected.json"));
    if input_path.exists() || expected_path.exists() {
        bail!("{} exists; choose another --fixture", input_path.display());
    }
    let manifest_bytes = std::fs::read(&sources.manifest)
        .with_context(|| format!("reading {}", sources.manifest.display()))?;
    let manifest = Manifest::from_json(&manifest_bytes)?;
    match &manifest.poll {
        Some(p) if p.mode == PollMode::Declarative => {}
        Some(_) => bail!(
            "addon `{}` polls by script: `record` captures declarative fetches only (a scripted \
             poll's io calls have no fixture format yet)",
            manifest.id
        ),
        None => bail!(
            "addon `{}` does not poll (no `poll` in its manifest)",
            manifest.id
        ),
    }

    let store = crate::server::connect_store(config)
        .await
        .with_context(|| {
            format!(
                "opening the database {}",
                crate::server::redact_url(&config.database_url)
            )
        })?;
    let by_id = match target.parse::<i64>() {
        Ok(id) => store.target(id).await?,
        Err(_) => None,
    };
    let target = match by_id {
        Some(t) => t,
        None => store
            .target_by_name(target)
            .await?
            .with_context(|| format!("no target named `{target}`"))?,
    };
    if target.addon_id != manifest.id {
        eprintln!(
            "note: target `{}` is configured for addon `{}`; polling it with `{}`",
            target.name, target.addon_id, manifest.id
        );
    }
    let credential =
        match &target.credentials {
            None => None,
            Some(name) => Some(store.credential_secret(name).await?.with_context(|| {
                format!("target `{}`: no credential named `{name}`", target.name)
            })?),
        };
    let secrets = credential.as_ref().map(secret_texts).unwrap_or_default();

    let sandbox = Arc::new(Sandbox::new(
        Some(config.compiled_cache_dir()),
        HostServices {
            store: store.clone(),
        },
    )?);
    let wasm = std::fs::read(&sources.wasm)
        .with_context(|| format!("reading {}", sources.wasm.display()))?;
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&wasm));
    let component = sandbox.load(
        &manifest.id,
        &manifest.world,
        &wasm,
        &sha,
        &manifest.capabilities,
    )?;
    let addon = Arc::new(LoadedAddon {
        rules: crate::engine::AlertRules::new(&manifest.id, &manifest.alerts),
        wasm_sha256: sha,
        webhook_auth: arc_swap::ArcSwap::from_pointee(WebhookAuth::open()),
        manifest,
        component,
        counters: IngestCounters::default(),
    });
    eprintln!(
        "polling target `{}` ({})",
        target.name,
        redact_text(&target.address, &secrets)
    );
    let poll = crate::poll::fetch_once(
        addon,
        &target,
        credential,
        &Pollers::new(config.poll.clone()),
        &store,
    )
    .await
    .map_err(|e| anyhow::anyhow!("target `{}`: {e}", target.name))?;
    store.close().await;
    for f in &poll.fetched {
        match &f.outcome {
            Ok(_) => eprintln!("  fetch `{}`: answered", f.name),
            Err(e) => eprintln!("  fetch `{}`: {}", f.name, redact_text(e, &secrets)),
        }
    }

    let mut recorded = crate::fixtures::poll_to_json(&poll);
    redact(&mut recorded, &secrets);
    std::fs::create_dir_all(&sources.fixtures)
        .with_context(|| format!("creating {}", sources.fixtures.display()))?;
    std::fs::write(&input_path, serde_json::to_string_pretty(&recorded)? + "\n")
        .with_context(|| format!("writing {}", input_path.display()))?;
    // The expectation is what the addon makes of the recorded input, through the same runner
    // as `addon test`.
    std::fs::write(&expected_path, "[]\n")
        .with_context(|| format!("writing {}", expected_path.display()))?;
    let (sandbox, scratch_store, _scratch) = scratch_sandbox().await?;
    let results = run_fixtures(&sandbox, &sources).await;
    scratch_store.close().await;
    let result = results?
        .into_iter()
        .find(|r| r.name == fixture)
        .context("the recorded fixture did not run")?;
    std::fs::write(
        &expected_path,
        serde_json::to_string_pretty(&result.updated_expectation())? + "\n",
    )
    .with_context(|| format!("writing {}", expected_path.display()))?;
    if let Some(bundle) = bundle {
        copy_dir(&sources.fixtures, &bundle.join("fixtures"))?;
    }
    println!("recorded {}", input_path.display());
    println!(
        "expected {} (review it: it is what the addon does today)",
        expected_path.display()
    );
    println!("{}", report_line(&result, "ok"));
    Ok(())
}

/// The secret texts of a credential, to be replaced wherever they appear in a recording.
/// (SNMPv3 keys are bytes derived from passwords, which are not stored.)
fn secret_texts(credential: &CredentialSecret) -> Vec<String> {
    let texts = match credential {
        CredentialSecret::SnmpCommunity { community } => vec![community.clone()],
        CredentialSecret::SnmpUsm { .. } => Vec::new(),
        CredentialSecret::HttpBasic { password, .. } => vec![password.clone()],
        CredentialSecret::HttpBearer { token } => vec![token.clone()],
        CredentialSecret::HttpHeader { value, .. } => vec![value.clone()],
        CredentialSecret::SshPassword { password, .. } => vec![password.clone()],
        CredentialSecret::SshKey {
            private_key,
            passphrase,
            ..
        } => std::iter::once(private_key.clone())
            .chain(passphrase.clone())
            .collect(),
    };
    // Very short secrets would blank out ordinary words; they are still never in a poll result.
    texts.into_iter().filter(|t| t.trim().len() >= 4).collect()
}

const REDACTED: &str = "<redacted>";

/// Whether a JSON key or header name names a secret.
fn sensitive_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "password",
        "passwd",
        "secret",
        "token",
        "api-key",
        "api_key",
        "apikey",
        "private_key",
        "community",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// Redacts a recorded fixture in place (see [`record`]).
fn redact(value: &mut Value, secrets: &[String]) {
    match value {
        Value::String(s) => *s = redact_text(s, secrets),
        Value::Array(items) => items.iter_mut().for_each(|v| redact(v, secrets)),
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if sensitive_name(key) && v.is_string() {
                    *v = Value::from(REDACTED);
                } else {
                    redact(v, secrets);
                }
            }
        }
        _ => {}
    }
}

/// `text` with every secret replaced and the user info of URLs dropped.
fn redact_text(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for secret in secrets {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), REDACTED);
        }
    }
    strip_userinfo(&text)
}

/// Drops `user:password@` from every `scheme://user:password@host` in `text`.
fn strip_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        out.push_str(
            authority
                .rfind('@')
                .map_or(authority, |at| &authority[at + 1..]),
        );
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_are_redacted() {
        let secrets = secret_texts(&CredentialSecret::HttpBearer {
            token: "s3cret-token".into(),
        });
        let mut v = serde_json::json!({
            "target": {"address": "https://ops:hunter22@198.51.100.7:8443/api"},
            "fetched": [{"name": "status", "http": {"status": 200,
                "headers": {"set-cookie": "sid=1", "content-type": "application/json",
                            "X-Auth-Token": "abc"},
                "json": {"echo": "Bearer s3cret-token", "api_key": "k", "count": 3,
                         "next": "see http://u:p@host/x and ftp://host/y"}}}]
        });
        redact(&mut v, &secrets);
        assert_eq!(v["target"]["address"], "https://198.51.100.7:8443/api");
        let http = &v["fetched"][0]["http"];
        assert_eq!(http["headers"]["set-cookie"], REDACTED);
        assert_eq!(http["headers"]["X-Auth-Token"], REDACTED);
        assert_eq!(http["headers"]["content-type"], "application/json");
        assert_eq!(http["json"]["echo"], "Bearer <redacted>");
        assert_eq!(http["json"]["api_key"], REDACTED);
        assert_eq!(http["json"]["count"], 3);
        assert_eq!(http["json"]["next"], "see http://host/x and ftp://host/y");
        assert!(!v.to_string().contains("s3cret") && !v.to_string().contains("hunter22"));
    }

    #[test]
    fn type_names_of_ids() {
        for (id, want) in [
            ("acme-checks", "AcmeChecks"),
            ("x", "X"),
            ("snmp_fans-2", "SnmpFans2"),
            ("3par", "A3par"),
        ] {
            assert_eq!(type_name(id), want, "{id}");
        }
    }

    #[test]
    fn scaffold_refuses_bad_ids_and_non_empty_dirs() {
        let tmp = std::env::temp_dir().join(format!("oc-scaffold-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let sdk = Path::new(DEFAULT_SDK_PATH);
        let err = scaffold("Bad Id", Kind::Webhook, &tmp.join("a"), sdk).unwrap_err();
        assert!(err.to_string().contains("must be 1-64 characters"), "{err}");
        assert!(!tmp.join("a").exists(), "nothing written for a bad id");

        let files = scaffold("ok-1", Kind::Poll, &tmp.join("b"), sdk).unwrap();
        assert!(
            files.contains(&"fixtures/example.input.poll.json"),
            "{files:?}"
        );
        let manifest = std::fs::read(tmp.join("b/manifest.json")).unwrap();
        assert_eq!(Manifest::from_json(&manifest).unwrap().world, WORLD_V0_2);
        let cargo = std::fs::read_to_string(tmp.join("b/Cargo.toml")).unwrap();
        assert!(
            cargo.contains("name = \"opsconductor-addon-ok-1\""),
            "{cargo}"
        );
        assert!(!cargo.contains("{{"), "{cargo}");
        let err = scaffold("ok-1", Kind::Poll, &tmp.join("b"), sdk).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
