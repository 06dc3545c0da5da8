//! The event sources that are not the writer: a node's `system_status`, reported periodically,
//! and `addon_status`, reported when the registry's set of loaded addons changes or an addon's
//! quarantine does (which also raises and clears the host's `addonQuarantined` alert).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::alert::{ReportedAlert, Severity};
use crate::api::webhook::{WebhookCounters, WebhookStats};
use crate::bus::{AddonState, AddonStatus, BusStats, EventBody, EventBus, EventType, stopped};
use crate::inbound::trap::{TrapListenerView, TrapStats};
use crate::quarantine::{ADDON_QUARANTINED, QuarantineState, QuarantineStatus};
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

/// What the addon watch reads and where it reports.
pub struct AddonWatch {
    pub bus: EventBus,
    pub registry: Arc<Registry>,
    pub store: Store,
    pub writer: AlertWriter,
}

/// Publishes `addon_status` whenever the set of addons loaded on this node changes, checking
/// every `interval`. It watches the registry's own view (in memory, no query) rather than the
/// database, so it reports what this node really runs: an addon enabled in the database that
/// failed to load here is `failed`, not `loaded`. Quarantines are reported here too, at once
/// when a fault or a release changes one, and by the next tick when time does.
pub fn spawn_addon_watch(
    watch: AddonWatch,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let AddonWatch {
        bus,
        registry,
        store,
        writer,
    } = watch;
    tokio::spawn(async move {
        // What was loaded at start is no news.
        let mut seen = loaded(&registry);
        let mut quarantines = Quarantines::default();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let changes = registry.quarantine_changes().clone();
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = changes.notified() => {}
                _ = stopped(&mut shutdown) => return,
            }
            quarantines.report(&registry, &bus, &writer).await;
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
                        version: Some(addon.manifest.version.clone()),
                        ..AddonStatus::new(id, AddonState::Loaded)
                    },
                    (None, Some(true)) => AddonStatus::new(id, AddonState::Failed),
                    (None, Some(false)) => AddonStatus::new(id, AddonState::Disabled),
                    (None, None) => AddonStatus::new(id, AddonState::Removed),
                };
                bus.emit(EventType::AddonStatus, EventBody::Addon(status));
            }
            seen = now;
        }
    })
}

/// The quarantine state last reported per addon (absent: healthy).
#[derive(Default)]
struct Quarantines {
    reported: HashMap<String, (QuarantineState, Arc<LoadedAddon>)>,
}

impl Quarantines {
    /// Reports every addon whose quarantine state changed since the last look: an
    /// `addon_status` event, and the host's alert raised (quarantined) or cleared (healthy).
    async fn report(&mut self, registry: &Registry, bus: &EventBus, writer: &AlertWriter) {
        let now = std::time::Instant::now();
        let mut current: HashMap<String, (QuarantineState, Arc<LoadedAddon>)> = HashMap::new();
        for addon in registry.enabled() {
            let status = addon.quarantine.status(now);
            // A new version starts healthy: what its predecessor did is cleared below.
            let before = self
                .reported
                .get(addon.id())
                .filter(|(_, reported)| Arc::ptr_eq(reported, &addon))
                .map_or(QuarantineState::Healthy, |(state, _)| *state);
            if status.state != before {
                bus.emit(
                    EventType::AddonStatus,
                    EventBody::Addon(AddonStatus {
                        id: addon.id().to_owned(),
                        status: match status.state {
                            QuarantineState::Healthy => AddonState::Loaded,
                            QuarantineState::Quarantined => AddonState::Quarantined,
                            QuarantineState::Probation => AddonState::Probation,
                        },
                        version: Some(addon.manifest.version.clone()),
                        until: status.until,
                        last_fault: status.last_fault.clone(),
                    }),
                );
                self.alert(&addon, &status, bus.node(), writer).await;
            }
            if status.state != QuarantineState::Healthy {
                current.insert(addon.id().to_owned(), (status.state, addon.clone()));
            }
        }
        // An addon replaced by a new version, disabled or removed while quarantined: its
        // alert is cleared, through the instance that raised it.
        for (id, (_, old)) in &self.reported {
            if registry.get(id).is_none_or(|new| !Arc::ptr_eq(&new, old)) {
                self.alert(old, &QuarantineStatus::healthy(), bus.node(), writer)
                    .await;
            }
        }
        self.reported = current;
    }

    /// Raises (quarantined) or clears (healthy) the host's alert about `addon` on this node;
    /// probation changes nothing: the addon is not trusted yet.
    async fn alert(
        &self,
        addon: &LoadedAddon,
        status: &QuarantineStatus,
        node: &str,
        writer: &AlertWriter,
    ) {
        let clears = match status.state {
            QuarantineState::Quarantined => false,
            QuarantineState::Healthy => true,
            QuarantineState::Probation => return,
        };
        let alert = ReportedAlert {
            alert_type: ADDON_QUARANTINED.to_owned(),
            device_ip: None,
            device_name: Some(node.to_owned()),
            title: match clears {
                false => format!(
                    "addon {} quarantined on {node} after repeated faults",
                    addon.id()
                ),
                true => format!("addon {} runs again on {node}", addon.id()),
            },
            message: status.last_fault.clone().unwrap_or_default(),
            severity: Some(if clears {
                Severity::Info
            } else {
                Severity::Major
            }),
            clears,
            identity: vec![("node".into(), node.to_owned())],
            fields: status
                .until
                .map(|until| ("until".to_owned(), until.to_rfc3339()))
                .into_iter()
                .chain([("strikes".to_owned(), status.strikes.to_string())])
                .collect(),
            occurred_at: None,
        };
        if let Err(error) = crate::ingest::store_reported(addon, vec![alert], writer).await {
            warn!(addon = addon.id(), %error, "could not store the addon's quarantine alert");
        }
    }
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
