//! Writing addons: `opsconductor addon new | build | test | record | convert-legacy`.
//!
//! - [`scaffold()`] lays out a new addon's source directory from the templates in
//!   `runtime/templates/` (a Cargo project against the SDK, a manifest for the current WIT
//!   world, one fixture pair that passes, a README);
//! - [`build()`] runs `cargo build --target wasm32-wasip2 --release` in it and lays out the bundle
//!   `opsconductor addon install` takes: `manifest.json`, `addon.wasm`, `fixtures/` (the layout
//!   of `scripts/build-addons.sh`);
//! - [`test()`] runs every fixture through the real sandbox and the alert engine
//!   ([`crate::fixtures::run_fixtures`]), prints a line diff per mismatch and, per fixture, wall
//!   time, guest time and peak linear memory; `update` rewrites the expectations;
//! - [`record()`] polls one configured target through the real poll path and writes what its
//!   fetches returned as a poll fixture, so a bug seen on a device reproduces offline.
//!
//! - [`convert_legacy()`] turns a legacy system's addon manifest into a rules addon's folder.
//!
//! One file each: `authoring/scaffold.rs`, `build.rs`, `test.rs`, `record.rs`, `convert.rs`; this file
//! re-exports their entry points and holds what several share.
//!
//! These are command-line tools for authors, so errors are `anyhow` with the file or command
//! they are about, like the rest of the CLI.

use std::path::Path;

use anyhow::Context;

mod build;
mod convert;
mod record;
mod scaffold;
mod test;

pub use build::{WASM_TARGET, build};
pub use convert::{Converted, convert_legacy};
pub use record::record;
pub use scaffold::{DEFAULT_SDK_PATH, Kind, scaffold};
pub use test::test;

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
