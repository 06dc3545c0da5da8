//! The addon registry: installs bundles into the database, loads the enabled addons into the
//! sandbox, and answers "which addon handles this webhook path / trap OID". Reloads swap the
//! whole index atomically, so enabling, disabling or upgrading an addon needs no restart and
//! never pauses ingest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Serialize;
use tracing::{error, info, warn};

use crate::engine::AlertRules;
use crate::event::RawEvent;
use crate::manifest::{Manifest, ManifestError, Method, parse_oid};
use crate::metrics::Seconds;
use crate::quarantine::{Quarantine, QuarantineConfig};
use crate::sandbox::{AddonComponent, CallStats, Sandbox, SandboxError, code_sha256};
use crate::store::{AddonRecord, Store, StoreError};
use crate::webhook_auth::WebhookAuth;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("bundle {path}: cannot read {file}: {source}")]
    BundleFile {
        path: PathBuf,
        file: &'static str,
        source: std::io::Error,
    },
    #[error("bundle {path}: {source}")]
    Manifest {
        path: PathBuf,
        source: ManifestError,
    },
    #[error("addon `{addon}`: webhook path `{path}` is already used by addon `{other}`")]
    WebhookPathTaken {
        addon: String,
        path: String,
        other: String,
    },
    #[error("no addon `{0}` is installed")]
    UnknownAddon(String),
    #[error("addon `{addon}`: stored manifest is unusable: {source}")]
    StoredManifest {
        addon: String,
        source: ManifestError,
    },
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("loading addons was interrupted: {0}")]
    Join(String),
}

/// What happened to events an addon handled, cumulative since it was loaded.
#[derive(Debug, Default)]
pub struct IngestCounters {
    pub events: AtomicU64,
    pub alerts_created: AtomicU64,
    pub alerts_updated: AtomicU64,
    pub alerts_resolved: AtomicU64,
    pub clears_unmatched: AtomicU64,
    /// Events whose alerts the engine refused (e.g. no device); nothing was stored.
    pub rejected: AtomicU64,
    /// Events the addon failed on (error, crash, deadline).
    pub failed: AtomicU64,
    /// Events refused without calling the addon, because it is quarantined.
    pub quarantined: AtomicU64,
    /// Polls of the addon's targets run on this node, and how many found the target unreachable.
    pub polls: AtomicU64,
    pub polls_unreachable: AtomicU64,
    /// Scripted-poll I/O refused because the addon's capabilities do not allow it.
    pub io_denied: AtomicU64,
    /// When the last event arrived, in milliseconds since the Unix epoch (0: none yet).
    last_event_ms: std::sync::atomic::AtomicI64,
    /// From an event's arrival at the addon to its alerts committed, by source.
    pub ingest_time: IngestTimes,
    /// Each poll of a target, its I/O, parse and store included.
    pub poll_time: Seconds,
}

/// Ingest latency of one addon, one distribution per kind of event ([`RawEvent::kind`]).
#[derive(Debug, Default)]
pub struct IngestTimes {
    pub snmp_trap: Seconds,
    pub webhook: Seconds,
    pub poll: Seconds,
}

impl IngestTimes {
    pub fn of(&self, event: &RawEvent) -> &Seconds {
        match event {
            RawEvent::SnmpTrap(_) => &self.snmp_trap,
            RawEvent::Webhook(_) => &self.webhook,
            RawEvent::Poll(_) => &self.poll,
        }
    }
}

impl IngestCounters {
    /// Counts an event whose addon call gave no answer: refused by the quarantine, or failed.
    pub fn call_failed(&self, error: &crate::sandbox::CallError) {
        let counter = match error {
            crate::sandbox::CallError::Quarantined { .. } => &self.quarantined,
            _ => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an event arriving now.
    pub fn event(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
        self.last_event_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct IngestStats {
    pub events: u64,
    pub alerts_created: u64,
    pub alerts_updated: u64,
    pub alerts_resolved: u64,
    pub clears_unmatched: u64,
    pub rejected: u64,
    pub failed: u64,
    /// Events refused without calling the addon, because it is quarantined.
    pub quarantined: u64,
    pub polls: u64,
    pub polls_unreachable: u64,
    pub io_denied: u64,
    /// When the last event arrived on this node.
    pub last_event_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl IngestCounters {
    pub fn snapshot(&self) -> IngestStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        IngestStats {
            events: g(&self.events),
            alerts_created: g(&self.alerts_created),
            alerts_updated: g(&self.alerts_updated),
            alerts_resolved: g(&self.alerts_resolved),
            clears_unmatched: g(&self.clears_unmatched),
            rejected: g(&self.rejected),
            failed: g(&self.failed),
            quarantined: g(&self.quarantined),
            polls: g(&self.polls),
            polls_unreachable: g(&self.polls_unreachable),
            io_denied: g(&self.io_denied),
            last_event_at: match self.last_event_ms.load(Ordering::Relaxed) {
                0 => None,
                ms => chrono::DateTime::from_timestamp_millis(ms),
            },
        }
    }
}

/// An enabled addon, ready to take events.
pub struct LoadedAddon {
    pub manifest: Manifest,
    pub wasm_sha256: String,
    pub rules: AlertRules,
    pub component: AddonComponent,
    pub counters: IngestCounters,
    /// Whether the addon may be called on this node: kept, like the counters, across reloads
    /// that do not change it, and fresh for a new version.
    pub quarantine: Quarantine,
    /// The webhook authentication and allow list of the addon's settings, parsed at load so
    /// that a request costs no database read. Swapped in place when only the settings change,
    /// so the addon keeps its warm instances and counters.
    pub webhook_auth: ArcSwap<WebhookAuth>,
}

impl LoadedAddon {
    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    /// Takes the addon's stored settings (`None`: it has none) if they changed since the last
    /// load.
    fn refresh_webhook_auth(&self, stored: Option<&serde_json::Value>) {
        let current = self.webhook_auth.load();
        if current.source() != stored {
            self.webhook_auth
                .store(Arc::new(webhook_auth(self.id(), stored, Some(&current))));
        }
    }

    pub fn call_stats(&self) -> CallStats {
        self.component.stats()
    }
}

/// An addon's webhook settings as the registry keeps them. Settings that cannot be used (only
/// a hand-edited database has them: the API and the CLI validate before they write) are logged
/// and refuse every request, rather than leave the webhook open.
fn webhook_auth(
    id: &str,
    stored: Option<&serde_json::Value>,
    previous: Option<&WebhookAuth>,
) -> WebhookAuth {
    WebhookAuth::replacing(stored, previous).unwrap_or_else(|error| {
        error!(addon = %id, %error, "addon settings are unusable; its webhooks are refused (503) until they are fixed");
        WebhookAuth::unusable(stored.cloned())
    })
}

/// One immutable view of the enabled addons and their lookup indexes.
#[derive(Default)]
struct Index {
    generation: i64,
    by_id: HashMap<String, Arc<LoadedAddon>>,
    by_webhook: HashMap<String, Arc<LoadedAddon>>,
    /// Trap OID prefixes as arcs, longest first, so the first match is the longest prefix.
    trap_prefixes: Vec<(Vec<u32>, Arc<LoadedAddon>)>,
}

pub struct Registry {
    store: Store,
    sandbox: Arc<Sandbox>,
    index: ArcSwap<Index>,
    /// Serialises reloads so two of them never compile the same addon twice.
    reload_lock: tokio::sync::Mutex<()>,
    quarantine: QuarantineConfig,
    /// Woken when an addon's quarantine changes (see [`Registry::quarantine_changes`]).
    quarantine_changed: Arc<tokio::sync::Notify>,
}

impl Registry {
    pub fn new(store: Store, sandbox: Arc<Sandbox>, quarantine: QuarantineConfig) -> Registry {
        Registry {
            quarantine,
            quarantine_changed: Arc::default(),
            store,
            sandbox,
            index: ArcSwap::from_pointee(Index {
                generation: -1,
                ..Index::default()
            }),
            reload_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Notified when a fault quarantines an addon or an operator releases one; a quarantine
    /// that ends with time is seen by whoever looks next.
    pub fn quarantine_changes(&self) -> &Arc<tokio::sync::Notify> {
        &self.quarantine_changed
    }

    /// The sandbox addons are loaded into (installs compile and run fixtures in it).
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    pub fn find_by_webhook(&self, path: &str) -> Option<Arc<LoadedAddon>> {
        self.index.load().by_webhook.get(path).cloned()
    }

    /// The addon whose trap OID prefix is the longest prefix of `trap_oid` (arc-wise, so
    /// `1.3.6.1.4.1.9` does not match `1.3.6.1.4.1.99.1`).
    pub fn find_by_oid(&self, trap_oid: &str) -> Option<Arc<LoadedAddon>> {
        let arcs = parse_oid(trap_oid)?;
        self.index
            .load()
            .trap_prefixes
            .iter()
            .find(|(prefix, _)| arcs.starts_with(prefix))
            .map(|(_, addon)| addon.clone())
    }

    pub fn get(&self, id: &str) -> Option<Arc<LoadedAddon>> {
        self.index.load().by_id.get(id).cloned()
    }

    /// The enabled addons, by id.
    pub fn enabled(&self) -> Vec<Arc<LoadedAddon>> {
        let mut all: Vec<_> = self.index.load().by_id.values().cloned().collect();
        all.sort_by(|a, b| a.id().cmp(b.id()));
        all
    }

    /// Loads the enabled addons, with their settings, from the database and swaps the index.
    /// Addons whose wasm and manifest did not change keep their warm instances and counters
    /// (and take their settings if those changed). An addon that fails to load is logged and
    /// left out; the others still load.
    pub async fn reload(&self) -> Result<(), RegistryError> {
        let _guard = self.reload_lock.lock().await;
        let generation = self.store.addons_generation().await?;
        let current = self.index.load_full();
        let mut next = Index {
            generation,
            ..Index::default()
        };

        let mut settings = self.store.all_addon_settings().await?;
        for row in self.store.list_addons().await? {
            if !row.enabled {
                continue;
            }
            let stored = settings.remove(&row.id);
            let manifest: Manifest = match serde_json::from_value(row.manifest.clone())
                .map_err(|e| ManifestError::Schema {
                    field: ".".into(),
                    message: e.to_string(),
                })
                .and_then(|m: Manifest| m.validate().map(|()| m))
            {
                Ok(m) => m,
                Err(source) => {
                    error!(addon = %row.id, %source, "stored manifest is unusable; addon not loaded");
                    continue;
                }
            };
            let reusable = current
                .by_id
                .get(&row.id)
                .filter(|a| a.wasm_sha256 == row.wasm_sha256 && a.manifest == manifest)
                .cloned();
            let addon = match reusable {
                Some(addon) => {
                    addon.refresh_webhook_auth(stored.as_ref());
                    addon
                }
                None => match self.load_one(manifest, &row.wasm_sha256, stored).await {
                    Ok(addon) => Arc::new(addon),
                    Err(error) => {
                        error!(addon = %row.id, %error, "addon failed to load; left disabled in this process");
                        continue;
                    }
                },
            };
            next.insert(addon);
        }
        next.trap_prefixes
            .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        let ids: Vec<&str> = next.by_id.keys().map(String::as_str).collect();
        info!(generation, addons = ?ids, "addon registry loaded");
        self.index.store(Arc::new(next));
        Ok(())
    }

    async fn load_one(
        &self,
        manifest: Manifest,
        wasm_sha256: &str,
        settings: Option<serde_json::Value>,
    ) -> Result<LoadedAddon, RegistryError> {
        let wasm = self
            .store
            .addon_wasm(&manifest.id)
            .await?
            .ok_or_else(|| RegistryError::UnknownAddon(manifest.id.clone()))?;
        let sandbox = self.sandbox.clone();
        let sha = wasm_sha256.to_owned();
        let loading = manifest.clone();
        // Compilation is CPU-bound (seconds on a cache miss): keep it off the async workers.
        let component =
            tokio::task::spawn_blocking(move || sandbox.load_addon(&loading, &wasm, &sha))
                .await
                .map_err(|e| RegistryError::Join(e.to_string()))??;
        Ok(LoadedAddon {
            rules: AlertRules::new(&manifest.id, &manifest.alerts),
            wasm_sha256: wasm_sha256.to_owned(),
            webhook_auth: ArcSwap::from_pointee(webhook_auth(
                &manifest.id,
                settings.as_ref(),
                None,
            )),
            manifest,
            component,
            counters: IngestCounters::default(),
            quarantine: Quarantine::new(self.quarantine, self.quarantine_changed.clone()),
        })
    }

    /// Reloads whenever the database's addon generation moves (an install, enable, disable or
    /// settings change from the CLI or another node), checking every `interval`.
    pub async fn watch(
        self: Arc<Self>,
        interval: Duration,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        crate::generation::follow(
            "addon registry",
            interval,
            crate::generation::on_shutdown(shutdown),
            || self.index.load().generation,
            || self.store.addons_generation(),
            |_| self.reload(),
        )
        .await;
    }
}

impl Index {
    fn insert(&mut self, addon: Arc<LoadedAddon>) {
        if let Some(w) = &addon.manifest.webhook
            && addon.manifest.methods.contains(&Method::Webhook)
        {
            if let Some(other) = self.by_webhook.get(&w.path) {
                warn!(addon = addon.id(), other = other.id(), path = %w.path, "webhook path claimed twice; keeping the first");
            } else {
                self.by_webhook.insert(w.path.clone(), addon.clone());
            }
        }
        if let Some(t) = &addon.manifest.snmp_trap {
            for oid in &t.oid_prefixes {
                if let Some(arcs) = parse_oid(oid) {
                    self.trap_prefixes.push((arcs, addon.clone()));
                }
            }
        }
        self.by_id.insert(addon.id().to_owned(), addon);
    }
}

/// What `install_bundle` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct InstallReport {
    pub id: String,
    pub version: String,
    pub wasm_sha256: String,
    pub enabled: bool,
    /// False when the same wasm and manifest were already installed.
    pub changed: bool,
}

/// Installs the bundle in `dir` (`manifest.json` + `addon.wasm`): validates the manifest,
/// compiles and links the component (so a broken bundle never reaches the database), checks
/// that its webhook path is free, and records it. A re-install keeps the enabled flag.
pub async fn install_bundle(
    store: &Store,
    sandbox: &Arc<Sandbox>,
    dir: &Path,
) -> Result<InstallReport, RegistryError> {
    let read = |file: &'static str| {
        std::fs::read(dir.join(file)).map_err(|source| RegistryError::BundleFile {
            path: dir.to_owned(),
            file,
            source,
        })
    };
    let manifest_bytes = read("manifest.json")?;
    let manifest =
        Manifest::from_json(&manifest_bytes).map_err(|source| RegistryError::Manifest {
            path: dir.to_owned(),
            source,
        })?;
    // A rules addon has no component: it is stored with none, and runs on the rules engine.
    let wasm = if manifest.is_rules() {
        Vec::new()
    } else {
        read("addon.wasm")?
    };
    let wasm_sha256 = code_sha256(&manifest, &wasm);

    let existing = store.list_addons().await?;
    if let Some(path) = manifest.webhook.as_ref().map(|w| &w.path)
        && let Some(other) = existing.iter().find(|row| {
            row.id != manifest.id
                && row
                    .manifest
                    .pointer("/webhook/path")
                    .and_then(|p| p.as_str())
                    == Some(path.as_str())
        })
    {
        return Err(RegistryError::WebhookPathTaken {
            addon: manifest.id.clone(),
            path: path.clone(),
            other: other.id.clone(),
        });
    }

    {
        let sandbox = sandbox.clone();
        let (loading, wasm, sha) = (manifest.clone(), wasm.clone(), wasm_sha256.clone());
        tokio::task::spawn_blocking(move || sandbox.load_addon(&loading, &wasm, &sha).map(drop))
            .await
            .map_err(|e| RegistryError::Join(e.to_string()))??;
    }

    let manifest_json = serde_json::to_value(&manifest).expect("manifest serialises");
    let previous = existing.iter().find(|row| row.id == manifest.id);
    let enabled = previous.map_or(manifest.enabled_by_default, |row| row.enabled);
    let changed =
        previous.is_none_or(|row| row.wasm_sha256 != wasm_sha256 || row.manifest != manifest_json);
    if changed {
        store
            .upsert_addon(
                &AddonRecord {
                    id: manifest.id.clone(),
                    name: manifest.name.clone(),
                    version: manifest.version.clone(),
                    methods: manifest
                        .methods
                        .iter()
                        .map(|m| {
                            serde_json::to_value(m)
                                .expect("method serialises")
                                .as_str()
                                .unwrap_or_default()
                                .to_owned()
                        })
                        .collect(),
                    manifest: manifest_json,
                    wasm,
                    wasm_sha256: wasm_sha256.clone(),
                    enabled,
                },
                chrono::Utc::now(),
            )
            .await?;
    }
    Ok(InstallReport {
        id: manifest.id,
        version: manifest.version,
        wasm_sha256,
        enabled,
        changed,
    })
}

/// Enables or disables an installed addon; running servers pick it up on their next poll.
pub async fn set_enabled(store: &Store, id: &str, enabled: bool) -> Result<(), RegistryError> {
    store
        .set_addon_enabled(id, enabled, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => RegistryError::UnknownAddon(id.to_owned()),
            other => RegistryError::Store(other),
        })
}
