//! The path every raw event takes once an addon is chosen: addon `parse` in the sandbox, the
//! alert engine, then the batching writer. Webhooks, traps and polls all come through here.

use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::Utc;
use serde::Serialize;

use crate::alert::{ActionOutcome, AlertAction, ReportedAlert};
use crate::engine::{self, EngineError};
use crate::event::RawEvent;
use crate::registry::LoadedAddon;
use crate::sandbox::CallError;
use crate::writer::{AlertWriter, WriteError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Addon(#[from] CallError),
    /// The addon returned an alert the engine cannot store; nothing of the event was stored.
    #[error("alert {index} from the addon is invalid: {source}")]
    InvalidAlert { index: usize, source: EngineError },
    /// The addon reported more alerts for one event than [`MAX_ALERTS_PER_EVENT`]; nothing
    /// of the event was stored.
    #[error(
        "the addon reported {count} alerts for one event, more than the {MAX_ALERTS_PER_EVENT} allowed"
    )]
    TooManyAlerts { count: usize },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// The most alerts one event may produce. An event is stored in one transaction: a guest
/// returning a flood (a bug, or a crafted payload amplified by it) would hold the writer for
/// everyone. A poll of a large device stays far below it.
pub const MAX_ALERTS_PER_EVENT: usize = 5_000;

/// What became of one event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestReport {
    /// Alerts the addon reported.
    pub alerts: usize,
    pub outcomes: Vec<ActionOutcome>,
}

/// Runs one event through `addon` and stores the result. All of an event's alerts are stored
/// in one transaction, or none.
pub async fn ingest(
    addon: &LoadedAddon,
    event: RawEvent,
    writer: &AlertWriter,
) -> Result<IngestReport, IngestError> {
    let counters = &addon.counters;
    counters.event();
    let started = Instant::now();
    let latency = counters.ingest_time.of(&event);
    let reported = match addon.quarantine.guard(addon.component.parse(event)).await {
        Ok(reported) => reported,
        Err(e) => {
            counters.call_failed(&e);
            return Err(e.into());
        }
    };
    let report = store_reported(addon, reported, writer).await?;
    latency.observe(started.elapsed());
    Ok(report)
}

/// Runs alerts an addon (or the host on its behalf, e.g. "target unreachable") reported through
/// the alert engine with the addon's rules and stores them, all in one transaction or none.
pub async fn store_reported(
    addon: &LoadedAddon,
    reported: Vec<ReportedAlert>,
    writer: &AlertWriter,
) -> Result<IngestReport, IngestError> {
    let counters = &addon.counters;
    let received_at = Utc::now();
    let alerts = reported.len();
    if alerts > MAX_ALERTS_PER_EVENT {
        counters.rejected.fetch_add(1, Ordering::Relaxed);
        return Err(IngestError::TooManyAlerts { count: alerts });
    }
    let mut actions: Vec<AlertAction> = Vec::with_capacity(alerts);
    for (index, alert) in reported.into_iter().enumerate() {
        match engine::evaluate(&addon.rules, alert, received_at) {
            Ok(a) => actions.extend(a),
            Err(source) => {
                counters.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(IngestError::InvalidAlert { index, source });
            }
        }
    }
    let outcomes = writer.write(actions).await.inspect_err(|_| {
        counters.failed.fetch_add(1, Ordering::Relaxed);
    })?;
    for outcome in &outcomes {
        let counter = match outcome {
            ActionOutcome::Created { .. } => &counters.alerts_created,
            ActionOutcome::Updated { .. } => &counters.alerts_updated,
            ActionOutcome::Resolved { .. } => &counters.alerts_resolved,
            ActionOutcome::ClearUnmatched => &counters.clears_unmatched,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    Ok(IngestReport { alerts, outcomes })
}
