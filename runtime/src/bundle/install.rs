//! Installing an opened bundle file, and rolling an upgrade back: the checks the CLI
//! (`addon install <file>`, `addon rollback`) and the API (`POST /api/v1/addons`,
//! `POST /api/v1/addons/{id}/rollback`) share.
//!
//! In order: the WIT world is one this runtime supports → the manifest is valid → every fixture
//! of the bundle passes in the real sandbox → an upgrade that widens the addon's capabilities
//! was accepted → [`install_bundle`] (compile, link, record; the version replaced is kept). A
//! refusal changes nothing. Running servers load the result when the addon generation moves.

use std::sync::Arc;

use serde::Serialize;

use super::{Bundle, BundleError, CapabilityDiff, Signer};
use crate::manifest::{Manifest, ManifestError, SUPPORTED_WORLDS};
use crate::registry::{InstallReport, RegistryError, install_bundle};
use crate::sandbox::Sandbox;
use crate::store::{AddonRollback, AddonVersion, Store, StoreError};

/// What installing a bundle file did.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct BundleInstall {
    #[serde(flatten)]
    pub report: InstallReport,
    /// The version this one replaced, now kept for rollback (`None` on a first install, or when
    /// nothing changed).
    pub previous: Option<AddonVersion>,
    pub capability_diff: CapabilityDiff,
    /// How many fixtures ran, all passing.
    pub fixtures_passed: usize,
    pub signer: Signer,
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(
        "bundle {id} {version} targets WIT world `{world}`; this runtime supports: {supported}"
    )]
    UnsupportedWorld {
        id: String,
        version: String,
        world: String,
        supported: String,
    },
    #[error("bundle {id} {version}: {source}")]
    Manifest {
        id: String,
        version: String,
        source: ManifestError,
    },
    #[error("bundle {id} {version}: fixtures cannot run: {message}")]
    Fixtures {
        id: String,
        version: String,
        message: String,
    },
    #[error(
        "bundle {id} {version}: {failed} of {total} fixtures failed in the sandbox, so it was not activated:\n{details}"
    )]
    FixturesFailed {
        id: String,
        version: String,
        failed: usize,
        total: usize,
        details: String,
    },
    #[error(
        "upgrading {id} from {from} to {to} widens its capabilities, so nothing was changed; review the difference and install again with --accept-capabilities (API: ?accept_capabilities=true):\n{diff}"
    )]
    CapabilitiesNotAccepted {
        id: String,
        from: String,
        to: String,
        diff: CapabilityDiff,
    },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks and installs an opened bundle file (see the module documentation).
/// `accept_capabilities` is the operator's consent to a wider set of capabilities.
pub async fn install(
    store: &Store,
    sandbox: &Arc<Sandbox>,
    bundle: &Bundle,
    accept_capabilities: bool,
) -> Result<BundleInstall, InstallError> {
    let (id, version) = (bundle.id.clone(), bundle.version.clone());
    if !SUPPORTED_WORLDS.contains(&bundle.world.as_str()) {
        return Err(InstallError::UnsupportedWorld {
            id,
            version,
            world: bundle.world.clone(),
            supported: SUPPORTED_WORLDS.join(", "),
        });
    }
    let manifest = bundle.manifest().map_err(|source| InstallError::Manifest {
        id: id.clone(),
        version: version.clone(),
        source,
    })?;

    let fixtures_passed = run_fixtures(sandbox, bundle, &id, &version).await?;

    let installed = store.addon(&id).await?;
    let capability_diff = installed
        .as_ref()
        .and_then(|row| serde_json::from_value::<Manifest>(row.manifest.clone()).ok())
        .map(|old| CapabilityDiff::between(&old, &manifest))
        .unwrap_or_default();
    if let Some(row) = &installed
        && capability_diff.widens()
        && !accept_capabilities
    {
        return Err(InstallError::CapabilitiesNotAccepted {
            id,
            from: row.version.clone(),
            to: version,
            diff: capability_diff,
        });
    }

    let report = install_bundle(store, sandbox, bundle.dir()).await?;
    let previous = installed
        .filter(|_| report.changed)
        .map(|row| AddonVersion {
            version: row.version,
            wasm_sha256: row.wasm_sha256,
        });
    Ok(BundleInstall {
        report,
        previous,
        capability_diff,
        fixtures_passed,
        signer: bundle.signer.clone(),
    })
}

/// Runs the bundle's fixtures through the sandbox on a blocking thread (compiling a component
/// takes seconds and would stall the async workers); any failure refuses the bundle with the
/// difference.
async fn run_fixtures(
    sandbox: &Arc<Sandbox>,
    bundle: &Bundle,
    id: &str,
    version: &str,
) -> Result<usize, InstallError> {
    let sandbox = sandbox.clone();
    let dir = bundle.dir().to_owned();
    let runtime = tokio::runtime::Handle::current();
    let results = tokio::task::spawn_blocking(move || {
        runtime.block_on(crate::fixtures::run_bundle_fixtures(&sandbox, &dir))
    })
    .await
    .map_err(|e| RegistryError::Join(e.to_string()))?
    .map_err(|e| InstallError::Fixtures {
        id: id.to_owned(),
        version: version.to_owned(),
        // The error names the temporary directory; the message alone names the file.
        message: match e {
            crate::fixtures::FixtureError::Bundle { message, .. } => message,
        },
    })?;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| {
            let mismatch = r.mismatch.as_ref()?;
            Some(format!("fixture `{}`: {mismatch}", r.name))
        })
        .collect();
    if !failed.is_empty() {
        return Err(InstallError::FixturesFailed {
            id: id.to_owned(),
            version: version.to_owned(),
            failed: failed.len(),
            total: results.len(),
            details: failed.join("\n"),
        });
    }
    Ok(results.len())
}

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("no addon `{0}` is installed")]
    UnknownAddon(String),
    #[error(
        "addon `{0}` has no previous version to roll back to (only the version the last upgrade replaced is kept, and a rollback uses it up)"
    )]
    NoPreviousVersion(String),
    #[error(transparent)]
    Store(StoreError),
}

/// Puts back the version the addon's last upgrade replaced; running servers load it when the
/// addon generation moves.
pub async fn rollback(store: &Store, id: &str) -> Result<AddonRollback, RollbackError> {
    match store.rollback_addon(id, chrono::Utc::now()).await {
        Ok(Some(done)) => Ok(done),
        Ok(None) => Err(RollbackError::NoPreviousVersion(id.to_owned())),
        Err(StoreError::NotFound) => Err(RollbackError::UnknownAddon(id.to_owned())),
        Err(other) => Err(RollbackError::Store(other)),
    }
}
