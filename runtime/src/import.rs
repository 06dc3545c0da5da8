//! `opsconductor import legacy --from postgres://…` and `opsconductor import json FILE`: alerts
//! (open and history), targets and settings brought over from the legacy system's database, or
//! alerts from a JSON file. The source is read whole ([`crate::store::LegacySource`]), converted
//! ([`opsconductor_model::import`]: every record imported, with a note when a value had to change,
//! or refused with the reason), and written in batches ([`Store::import_alerts`]), each one
//! transaction with its record of what it imported. So a second run imports nothing twice, and
//! a failure leaves the batches before it imported and nothing of the failed one.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::Utc;
use opsconductor_model::import::{
    Note, SourceAlert, convert_alerts, convert_settings, convert_targets,
};
use serde::Serialize;

use crate::store::{BatchWritten, ImportKind, LegacySource, Store, StoreError};

/// Alerts per transaction, unless told otherwise.
pub const DEFAULT_BATCH: usize = 500;

/// How an import runs.
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    /// Read and convert, report, write nothing.
    pub dry_run: bool,
    /// Alerts per transaction.
    pub batch: usize,
}

/// Counts for one kind of record.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// In the source.
    pub read: u64,
    /// Imported by an earlier run: skipped.
    pub imported_before: u64,
    /// Refused, each with a note.
    pub refused: u64,
    /// Written now (or, in a dry run, that would be).
    pub imported: u64,
    /// Alerts: open in the source while the same problem is open here, imported resolved.
    /// Targets and settings: a name or key this system has, kept as it is.
    pub kept_ours: u64,
}

/// What an import did, or in a dry run would do.
#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    pub dry_run: bool,
    pub alerts: Counts,
    pub targets: Counts,
    pub settings: Counts,
    /// Committed alert batches.
    pub batches: u64,
    /// Addons the source's records name that are not installed here.
    pub missing_addons: BTreeSet<String>,
    pub notes: Vec<Note>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    /// A batch failed: the ones before it are imported, nothing of it is.
    #[error(
        "alert batch {batch} failed, and nothing of it was imported ({imported} alerts in {done} \
         earlier batches were); run the import again to continue: {source}"
    )]
    Batch {
        batch: u64,
        done: u64,
        imported: u64,
        #[source]
        source: StoreError,
    },
}

async fn installed_addons(store: &Store) -> Result<BTreeSet<String>, StoreError> {
    Ok(store
        .list_addons()
        .await?
        .into_iter()
        .map(|a| a.id)
        .collect())
}

/// Converts and writes `source` alerts, skipping those imported before.
async fn import_alerts(
    store: &Store,
    installed: &BTreeSet<String>,
    source: Vec<SourceAlert>,
    options: ImportOptions,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let before = store.imported_ids(ImportKind::Alert).await?;
    report.alerts.read = source.len() as u64;
    let fresh: Vec<SourceAlert> = source
        .into_iter()
        .filter(|a| !before.contains(&a.source_id))
        .collect();
    report.alerts.imported_before = report.alerts.read - fresh.len() as u64;
    for a in &fresh {
        if let Some(addon) = a.addon_id.as_deref().filter(|id| !installed.contains(*id)) {
            report.missing_addons.insert(addon.to_owned());
        }
    }
    let (alerts, notes) = convert_alerts(fresh, installed, Utc::now());
    report.alerts.refused = notes.iter().filter(|n| !n.imported).count() as u64;
    report.notes.extend(notes);
    if options.dry_run {
        report.alerts.imported = alerts.len() as u64;
        return Ok(());
    }
    for (i, batch) in alerts.chunks(options.batch.max(1)).enumerate() {
        let written = store
            .import_alerts(batch, Utc::now())
            .await
            .map_err(|source| ImportError::Batch {
                batch: i as u64 + 1,
                done: report.batches,
                imported: report.alerts.imported,
                source,
            })?;
        add(&mut report.alerts, written);
        report.batches += 1;
    }
    Ok(())
}

fn add(counts: &mut Counts, written: BatchWritten) {
    counts.imported += written.written;
    counts.kept_ours += written.already_open + written.kept_ours;
}

/// Imports from the legacy database: alerts, then targets, then settings.
pub async fn import_legacy(
    store: &Store,
    source: &LegacySource,
    options: ImportOptions,
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport {
        dry_run: options.dry_run,
        ..ImportReport::default()
    };
    // Read whole, so that duplicates across the history are judged together (the newest open
    // one stays open); the legacy system's tables are the size one server kept.
    let mut alerts = Vec::new();
    let page = options.batch.clamp(100, 10_000) as i64;
    loop {
        let after = alerts
            .last()
            .map_or(String::new(), |a: &SourceAlert| a.source_id.clone());
        let next = source.alerts_after(&after, page).await?;
        if next.is_empty() {
            break;
        }
        alerts.extend(next);
    }
    let installed = installed_addons(store).await?;
    import_alerts(store, &installed, alerts, options, &mut report).await?;

    let targets = source.targets().await?;
    let before = store.imported_ids(ImportKind::Target).await?;
    report.targets.read = targets.len() as u64;
    let fresh: Vec<_> = targets
        .into_iter()
        .filter(|t| !before.contains(&t.source_id))
        .collect();
    report.targets.imported_before = report.targets.read - fresh.len() as u64;
    for t in &fresh {
        if let Some(addon) = t.addon_id.as_deref().filter(|id| !installed.contains(*id)) {
            report.missing_addons.insert(addon.to_owned());
        }
    }
    let (targets, notes) = convert_targets(fresh, &installed);
    report.targets.refused = notes.iter().filter(|n| !n.imported).count() as u64;
    report.notes.extend(notes);

    let settings = source.settings().await?;
    let before = store.imported_ids(ImportKind::Setting).await?;
    report.settings.read = settings.len() as u64;
    let fresh: Vec<_> = settings
        .into_iter()
        .filter(|(key, _)| !before.contains(key))
        .collect();
    report.settings.imported_before = report.settings.read - fresh.len() as u64;
    let (settings, notes) = convert_settings(fresh);
    report.settings.refused = notes.iter().filter(|n| !n.imported).count() as u64;
    report.notes.extend(notes);

    if options.dry_run {
        report.targets.imported = targets.len() as u64;
        report.settings.imported = settings.len() as u64;
    } else {
        add(
            &mut report.targets,
            store.import_targets(&targets, Utc::now()).await?,
        );
        add(
            &mut report.settings,
            store.import_settings(&settings, Utc::now()).await?,
        );
    }
    Ok(report)
}

/// Imports alerts from a JSON file: an array of alerts, or `{"alerts": [...]}`, each with the
/// legacy columns as keys (`addon_id`, `alert_type`, `device_ip`, `severity`, `status`,
/// `occurred_at`, ... and `fields`). An alert's `id` makes a re-run skip it; one without is
/// known by the digest of its text.
pub async fn import_json(
    store: &Store,
    path: &Path,
    options: ImportOptions,
) -> Result<ImportReport, ImportError> {
    let file_err = |message: String| ImportError::File {
        path: path.display().to_string(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| file_err(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| file_err(format!("not JSON: {e}")))?;
    let list = match value {
        serde_json::Value::Array(list) => list,
        serde_json::Value::Object(mut o) => match o.remove("alerts") {
            Some(serde_json::Value::Array(list)) => list,
            _ => {
                return Err(file_err(
                    "expected an array of alerts, or {\"alerts\": [...]}".into(),
                ));
            }
        },
        _ => {
            return Err(file_err(
                "expected an array of alerts, or {\"alerts\": [...]}".into(),
            ));
        }
    };
    let mut report = ImportReport {
        dry_run: options.dry_run,
        ..ImportReport::default()
    };
    let mut alerts = Vec::with_capacity(list.len());
    let mut unreadable = 0;
    for (i, item) in list.into_iter().enumerate() {
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(item.to_string()));
        match serde_json::from_value::<SourceAlert>(item) {
            Ok(mut a) => {
                let id = if a.source_id.is_empty() {
                    digest
                } else {
                    a.source_id
                };
                a.source_id = format!("json:{id}");
                alerts.push(a);
            }
            Err(e) => {
                unreadable += 1;
                report.notes.push(Note {
                    record: format!("alert [{i}]"),
                    imported: false,
                    what: format!("not an alert: {e}"),
                });
            }
        }
    }
    let installed = installed_addons(store).await?;
    import_alerts(store, &installed, alerts, options, &mut report).await?;
    report.alerts.read += unreadable;
    report.alerts.refused += unreadable;
    Ok(report)
}
