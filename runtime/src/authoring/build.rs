//! `opsconductor addon build`: `cargo build --target wasm32-wasip2 --release` in an addon's
//! source directory, then the bundle `opsconductor addon install` takes: `manifest.json`,
//! `addon.wasm`, `fixtures/` (the layout of `scripts/build-addons.sh`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde_json::Value;

use super::copy_dir;
use crate::manifest::Manifest;

/// The compilation target of addons.
pub const WASM_TARGET: &str = "wasm32-wasip2";

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
            "{} has no Cargo.toml: not an addon's source directory (a rules addon needs no \
             build: `addon test`, `addon pack` and `addon install` take its folder as it is)",
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
