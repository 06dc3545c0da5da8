//! `opsconductor addon pack | keygen | install <file.ocbundle> | rollback`: bundle files, their
//! signing keys, and installing and rolling back through the checks of
//! [`crate::bundle::install`].

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::bundle::{self, install::BundleInstall};
use crate::config::Config;
use crate::registry::install_bundle;
use crate::server::Core;

/// `addon pack <dir> [--key FILE] [--out DIR]`.
pub fn pack_command(dir: &Path, key: Option<&Path>, out: &Path) -> anyhow::Result<()> {
    let key = key.map(bundle::read_signing_key).transpose()?;
    let path = bundle::pack(dir, out, key.as_ref())
        .with_context(|| format!("cannot pack {}", dir.display()))?;
    match &key {
        Some(k) => println!(
            "packed {} (signed by key {})",
            path.display(),
            bundle::key_id(&k.verifying_key())
        ),
        None => println!("packed {} (unsigned)", path.display()),
    }
    Ok(())
}

/// `addon keygen <name>`: writes `<name>.key` (0600) and prints what goes in
/// `[bundles] trusted_keys`.
pub fn keygen_command(name: &str) -> anyhow::Result<()> {
    let path = PathBuf::from(format!("{name}.key"));
    let key = bundle::generate_key()?;
    bundle::write_signing_key(&path, &key)
        .with_context(|| format!("cannot write the signing key {}", path.display()))?;
    let public = key.verifying_key();
    println!(
        "signing key written to {} (keep it private)",
        path.display()
    );
    println!("key id:     {}", bundle::key_id(&public));
    println!("public key: {}", bundle::public_key_base64(&public));
    println!(
        "trust it with:\n  [bundles]\n  trusted_keys = [\"{}\"]",
        bundle::public_key_base64(&public)
    );
    Ok(())
}

/// `addon install <path>... [--accept-capabilities]`: a bundle file goes through every check of
/// [`crate::bundle::install`]; a bundle directory is installed as before (validated, compiled,
/// recorded).
pub async fn install_command(
    core: &Core,
    config: &Config,
    paths: Vec<PathBuf>,
    accept_capabilities: bool,
) -> anyhow::Result<()> {
    let policy = config.bundles.policy()?;
    for path in paths {
        if path.is_dir() {
            let r = install_bundle(&core.store, &core.sandbox, &path).await?;
            println!(
                "{} {} {} ({}; sha256 {})",
                if r.changed { "installed" } else { "unchanged" },
                r.id,
                r.version,
                if r.enabled { "enabled" } else { "disabled" },
                &r.wasm_sha256[..12]
            );
            continue;
        }
        let opened =
            bundle::open(&path, &policy).with_context(|| format!("{} refused", path.display()))?;
        let done =
            bundle::install::install(&core.store, &core.sandbox, &opened, accept_capabilities)
                .await
                .with_context(|| format!("{} refused", path.display()))?;
        print_install(&done);
    }
    Ok(())
}

fn print_install(done: &BundleInstall) {
    let r = &done.report;
    let what = match (&done.previous, r.changed) {
        (_, false) => "unchanged".to_owned(),
        (Some(p), true) => format!("upgraded from {}", p.version),
        (None, true) => "installed".to_owned(),
    };
    println!(
        "{what}: {} {} ({}; sha256 {}; {}; {} fixtures passed)",
        r.id,
        r.version,
        if r.enabled { "enabled" } else { "disabled" },
        &r.wasm_sha256[..12],
        done.signer,
        done.fixtures_passed
    );
    if !done.capability_diff.is_empty() {
        println!("capability changes (accepted):\n{}", done.capability_diff);
    }
    if let Some(p) = &done.previous {
        println!(
            "kept {} for `opsconductor addon rollback {}`",
            p.version, r.id
        );
    }
}

/// `addon rollback <id>`.
pub async fn rollback_command(core: &Core, id: &str) -> anyhow::Result<()> {
    let done = bundle::install::rollback(&core.store, id).await?;
    println!(
        "rolled {id} back from {} (sha256 {}) to {} (sha256 {}); running servers load it within registry_poll_ms",
        done.from.version,
        &done.from.wasm_sha256[..12.min(done.from.wasm_sha256.len())],
        done.to.version,
        &done.to.wasm_sha256[..12.min(done.to.wasm_sha256.len())],
    );
    Ok(())
}
