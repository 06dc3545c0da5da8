//! The event sources that are not the writer: a node's `system_status`, reported periodically,
//! and `addon_status`, reported when the registry's set of loaded addons changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::api::webhook::{WebhookCounters, WebhookStats};
use crate::bus::{AddonState, AddonStatus, BusStats, EventBody, EventBus, EventType, stopped};
use crate::inbound::trap::{TrapListenerView, TrapStats};
use crate::registry::{LoadedAddon, Registry};
use crate::store::Store;
use crate::writer::{AlertWriter, WriterStats};

/// The body of a `system_status` event: one node's load and counters.
#[derive(Debug, Clone, Serialize)]
pub struct SystemStatus {
    /// Write requests waiting for the batching writer: near `writer_queue_capacity`, ingest is
    /// being slowed down by the store.
    pub writer_queue: usize,
    pub writer_queue_capacity: usize,
    pub writer: WriterStats,
    pub webhooks: WebhookStats,
    pub traps: TrapStats,
    pub addons_loaded: usize,
    pub events: BusStats,
}

/// What the status reporter reads.
#[derive(Clone)]
pub struct StatusSources {
    pub writer: AlertWriter,
    pub webhooks: Arc<WebhookCounters>,
    pub traps: TrapListenerView,
    pub registry: Arc<Registry>,
}

impl StatusSources {
    pub fn snapshot(&self, bus: &EventBus) -> SystemStatus {
        SystemStatus {
            writer_queue: self.writer.queue_depth(),
            writer_queue_capacity: self.writer.queue_capacity(),
            writer: self.writer.stats(),
            webhooks: self.webhooks.snapshot(),
            traps: self.traps.counters.snapshot(),
            addons_loaded: self.registry.enabled().len(),
            events: bus.stats(),
        }
    }
}

/// Publishes this node's `system_status` at once and then every `interval`, until shutdown.
pub fn spawn_status(
    bus: EventBus,
    sources: StatusSources,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stopped(&mut shutdown) => return,
            }
            let status = serde_json::to_value(sources.snapshot(&bus)).expect("status serialises");
            bus.emit(EventType::SystemStatus, EventBody::System(status));
        }
    })
}

/// Publishes `addon_status` whenever the set of addons loaded on this node changes, checking
/// every `interval`. It watches the registry's own view (in memory, no query) rather than the
/// database, so it reports what this node really runs: an addon enabled in the database that
/// failed to load here is `failed`, not `loaded`.
pub fn spawn_addon_watch(
    bus: EventBus,
    registry: Arc<Registry>,
    store: Store,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // What was loaded at start is no news.
        let mut seen = loaded(&registry);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stopped(&mut shutdown) => return,
            }
            let now = loaded(&registry);
            let changes = diff(&seen, &now);
            if changes.is_empty() {
                continue;
            }
            let gone: Vec<&str> = changes
                .iter()
                .filter(|(_, loaded)| loaded.is_none())
                .map(|(id, _)| id.as_str())
                .collect();
            // Why an addon left is in the database: read it only when one did.
            let installed = if gone.is_empty() {
                HashMap::new()
            } else {
                match store.list_addons().await {
                    Ok(rows) => rows.into_iter().map(|r| (r.id, r.enabled)).collect(),
                    Err(error) => {
                        warn!(%error, "cannot read addons to report why one stopped; reported as removed");
                        HashMap::new()
                    }
                }
            };
            for (id, loaded) in changes {
                let status = match (&loaded, installed.get(&id)) {
                    (Some(addon), _) => AddonStatus {
                        id,
                        status: AddonState::Loaded,
                        version: Some(addon.manifest.version.clone()),
                    },
                    (None, Some(true)) => AddonStatus {
                        id,
                        status: AddonState::Failed,
                        version: None,
                    },
                    (None, Some(false)) => AddonStatus {
                        id,
                        status: AddonState::Disabled,
                        version: None,
                    },
                    (None, None) => AddonStatus {
                        id,
                        status: AddonState::Removed,
                        version: None,
                    },
                };
                bus.emit(EventType::AddonStatus, EventBody::Addon(status));
            }
            seen = now;
        }
    })
}

type Loaded = HashMap<String, Arc<LoadedAddon>>;

fn loaded(registry: &Registry) -> Loaded {
    registry
        .enabled()
        .into_iter()
        .map(|a| (a.id().to_owned(), a))
        .collect()
}

/// Addons that appeared or were replaced (a reload with a new wasm or manifest makes a new
/// `LoadedAddon`), with the new one, and those that left, with none; sorted by id.
fn diff(before: &Loaded, after: &Loaded) -> Vec<(String, Option<Arc<LoadedAddon>>)> {
    let mut changes: Vec<_> = after
        .iter()
        .filter(|(id, addon)| before.get(*id).is_none_or(|old| !Arc::ptr_eq(old, addon)))
        .map(|(id, addon)| (id.clone(), Some(addon.clone())))
        .chain(
            before
                .keys()
                .filter(|id| !after.contains_key(*id))
                .map(|id| (id.clone(), None)),
        )
        .collect();
    changes.sort_by(|a, b| a.0.cmp(&b.0));
    changes
}
