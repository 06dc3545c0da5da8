//! Alerts: applying the engine's raise/clear decisions in batches (the ingestion hot path),
//! operators' actions on alerts, each alert's history, and reading alerts back for the API.
//!
//! Every change of an alert's status, and every note, is recorded in `alert_events` in the
//! transaction that makes it, with who made it: `addon:<id>` for an alert its addon created or
//! brought back from suppression, `clear:<alert type>` for a clearing event, `silence:<id>` for a
//! silence that suppressed an open alert, and whatever actor the caller names for an operator's
//! action. Repeated occurrences are not recorded one by one: `occurrence_count`, `first_seen_at`
//! and `last_seen_at` on the alert summarise them.
//!
//! - `alerts/batch.rs`: applying the engine's decisions in batches (the ingestion hot path);
//! - `alerts/actions.rs`: operators' actions on alerts (acknowledge, resolve, notes);
//! - `alerts/read.rs`: lists and searches, single alerts, counts, and an alert's history;
//! - here: the rows of alerts and of their history, shared by all three.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::types::Json;

use super::StoreError;
use crate::alert::StoredAlert;

mod actions;
mod batch;
mod read;

pub use actions::{AlertChange, AlertOp, MAX_NOTE_LEN, check_note};
pub use read::{AlertSearch, HistoryPage};

/// Page size when the caller asks for none (`limit: 0`).
pub const LIST_LIMIT_DEFAULT: u32 = 50;

/// Largest page. A bigger one would hold a read connection and build a response of many
/// megabytes for one request; clients page with `before_id` instead.
pub const LIST_LIMIT_MAX: u32 = 1000;

/// The columns of [`AlertRow`], in one place for every query that reads whole alerts.
const ALERT_COLUMNS: &str = "id, addon_id, fingerprint, alert_type, device_ip, device_name, \
     severity, category, title, message, status, fields, occurrence_count, occurred_at, \
     first_seen_at, last_seen_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by";

/// An alert row as the database returns it, before its enums are parsed.
#[derive(sqlx::FromRow)]
struct AlertRow {
    id: i64,
    addon_id: String,
    fingerprint: String,
    alert_type: String,
    device_ip: Option<String>,
    device_name: Option<String>,
    severity: String,
    category: String,
    title: String,
    message: String,
    status: String,
    fields: Json<BTreeMap<String, String>>,
    occurrence_count: i64,
    occurred_at: DateTime<Utc>,
    first_seen_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    acknowledged_at: Option<DateTime<Utc>>,
    acknowledged_by: Option<String>,
    resolved_at: Option<DateTime<Utc>>,
    resolved_by: Option<String>,
}

impl TryFrom<AlertRow> for StoredAlert {
    type Error = StoreError;

    fn try_from(row: AlertRow) -> Result<StoredAlert, StoreError> {
        let corrupt =
            |e: crate::alert::UnknownVariant| StoreError::Corrupt(format!("alert {}: {e}", row.id));
        Ok(StoredAlert {
            severity: row.severity.parse().map_err(corrupt)?,
            status: row.status.parse().map_err(corrupt)?,
            id: row.id,
            addon_id: row.addon_id,
            fingerprint: row.fingerprint,
            alert_type: row.alert_type,
            device_ip: row.device_ip,
            device_name: row.device_name,
            category: row.category,
            title: row.title,
            message: row.message,
            fields: row.fields.0,
            occurrence_count: row.occurrence_count,
            occurred_at: row.occurred_at,
            first_seen_at: row.first_seen_at,
            last_seen_at: row.last_seen_at,
            acknowledged_at: row.acknowledged_at,
            acknowledged_by: row.acknowledged_by,
            resolved_at: row.resolved_at,
            resolved_by: row.resolved_by,
        })
    }
}

/// What happened to an alert, as its history lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertEventKind {
    /// Opened by its addon, `active` or (under a silence) `suppressed`.
    Created,
    Acknowledged,
    Unacknowledged,
    Resolved,
    /// A silence in force covered an occurrence of the open alert.
    Suppressed,
    /// An occurrence arrived with no silence covering it any more.
    Unsuppressed,
    Note,
}

impl AlertEventKind {
    pub const ALL: [AlertEventKind; 7] = [
        AlertEventKind::Created,
        AlertEventKind::Acknowledged,
        AlertEventKind::Unacknowledged,
        AlertEventKind::Resolved,
        AlertEventKind::Suppressed,
        AlertEventKind::Unsuppressed,
        AlertEventKind::Note,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertEventKind::Created => "created",
            AlertEventKind::Acknowledged => "acknowledged",
            AlertEventKind::Unacknowledged => "unacknowledged",
            AlertEventKind::Resolved => "resolved",
            AlertEventKind::Suppressed => "suppressed",
            AlertEventKind::Unsuppressed => "unsuppressed",
            AlertEventKind::Note => "note",
        }
    }
}

/// One entry of an alert's history.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AlertEvent {
    /// The entry's id, which orders the history. `None` for an entry derived from the alert
    /// itself rather than recorded: the creation of an alert older than the history table, and
    /// a resolution that the expiry job made (see [`Store::alert_history`]).
    pub id: Option<i64>,
    pub alert_id: i64,
    pub at: DateTime<Utc>,
    pub kind: AlertEventKind,
    /// Who: `addon:<id>`, `clear:<alert type>`, `silence:<id>`, `system:expiry`, or the
    /// operator's principal.
    pub actor: String,
    pub note: Option<String>,
    /// What the kind needs beyond actor and note: `status` and `silence_id` for `created`,
    /// `silence_id` for `suppressed`.
    pub details: Map<String, Value>,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    alert_id: i64,
    at: DateTime<Utc>,
    kind: String,
    actor: String,
    note: Option<String>,
    details: Json<Map<String, Value>>,
}

impl TryFrom<EventRow> for AlertEvent {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<AlertEvent, StoreError> {
        let kind = AlertEventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == row.kind)
            .ok_or_else(|| {
                StoreError::Corrupt(format!("alert event {}: kind `{}`", row.id, row.kind))
            })?;
        Ok(AlertEvent {
            id: Some(row.id),
            alert_id: row.alert_id,
            at: row.at,
            kind,
            actor: row.actor,
            note: row.note,
            details: row.details.0,
        })
    }
}
