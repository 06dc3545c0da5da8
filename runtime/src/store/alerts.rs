//! Alerts: applying the engine's raise/clear decisions in batches (the ingestion hot path), and
//! reading alerts back for the API.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::{Context, Store, StoreError, begin_write, now, ts};
use crate::alert::{
    ActionOutcome, AlertAction, AlertFilter, AlertStatus, ClearAlert, NewAlert, StoredAlert,
};

/// Page size when the caller asks for none (`limit: 0`).
pub const LIST_LIMIT_DEFAULT: u32 = 50;

/// Largest page. A bigger one would hold a read connection and build a response of many
/// megabytes for one request; clients page with `before_id` instead.
pub const LIST_LIMIT_MAX: u32 = 1000;

/// How many times a batch is tried when the database reports a transient conflict (see
/// [`StoreError::is_transient`]). Conflicts come from other processes or nodes writing the same
/// alerts; a few retries with a growing pause let them finish, and more would only hide a
/// database that is stuck.
const BATCH_ATTEMPTS: u32 = 5;

/// Pause before the first retry; doubled for each later one (20, 40, 80, 160 ms).
const BATCH_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Opens an alert, or counts one more occurrence of the open alert with the same fingerprint.
///
/// The conflict target is the partial unique index on open fingerprints, so the database
/// decides atomically between the two, whatever else writes concurrently. On a duplicate the
/// status is left alone (an acknowledged alert stays acknowledged), what the latest event said
/// (severity, title, message, fields) replaces the old text, and `last_seen_at` only moves
/// forward, in case batches from several nodes commit out of order. `first_seen_at`,
/// `occurred_at` and `created_at` keep the first occurrence's values. An inserted row has count
/// 1 and an updated one at least 2, which is how the caller tells the two apart.
const RAISE_SQL: &str = "INSERT INTO alerts (addon_id, fingerprint, alert_type, device_ip, \
         device_name, severity, category, title, message, status, fields, occurrence_count, \
         occurred_at, first_seen_at, last_seen_at, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10, 1, $11, $12, $12, $12, $12) \
     ON CONFLICT (fingerprint) WHERE status <> 'resolved' DO UPDATE SET \
         occurrence_count = alerts.occurrence_count + 1, \
         last_seen_at = CASE WHEN excluded.last_seen_at > alerts.last_seen_at \
                             THEN excluded.last_seen_at ELSE alerts.last_seen_at END, \
         severity = excluded.severity, \
         title = excluded.title, \
         message = excluded.message, \
         fields = excluded.fields, \
         updated_at = excluded.updated_at \
     RETURNING id, occurrence_count";

/// Resolves the open alert with a fingerprint, if there is one (the unique index guarantees at
/// most one). The addon must match too: an addon can never resolve another addon's alert.
const CLEAR_SQL: &str = "UPDATE alerts \
     SET status = 'resolved', resolved_at = $3, resolved_by = $4, updated_at = $3 \
     WHERE fingerprint = $1 AND addon_id = $2 AND status <> 'resolved' \
     RETURNING id";

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

/// A value bound to a dynamically built query.
enum Bind {
    Text(String),
    Int(i64),
}

/// Builds the list query with only the conditions the filter uses, rather than one static text
/// with `($1 IS NULL OR status = $1)` terms: each combination then gets its own (cached) plan
/// that can use the matching index, which a generic plan over optional terms cannot.
fn list_query(filter: &AlertFilter) -> (String, Vec<Bind>) {
    let mut conditions = Vec::new();
    let mut binds = Vec::new();
    let mut add = |binds: &mut Vec<Bind>, bind: Bind, condition: &dyn Fn(usize) -> String| {
        binds.push(bind);
        conditions.push(condition(binds.len()));
    };
    if let Some(status) = filter.status {
        add(&mut binds, Bind::Text(status.as_str().to_owned()), &|n| {
            format!("status = ${n}")
        });
    }
    if let Some(severity) = filter.severity {
        add(&mut binds, Bind::Text(severity.as_str().to_owned()), &|n| {
            format!("severity = ${n}")
        });
    }
    if let Some(addon_id) = &filter.addon_id {
        add(&mut binds, Bind::Text(addon_id.clone()), &|n| {
            format!("addon_id = ${n}")
        });
    }
    if let Some(device) = &filter.device {
        add(&mut binds, Bind::Text(device.clone()), &|n| {
            format!("(device_ip = ${n} OR device_name = ${n})")
        });
    }
    if let Some(before_id) = filter.before_id {
        add(&mut binds, Bind::Int(before_id), &|n| format!("id < ${n}"));
    }
    let limit = match filter.limit {
        0 => LIST_LIMIT_DEFAULT,
        n => n.min(LIST_LIMIT_MAX),
    };
    binds.push(Bind::Int(i64::from(limit)));
    let mut sql = format!("SELECT {ALERT_COLUMNS} FROM alerts");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", binds.len()));
    (sql, binds)
}

impl Store {
    /// Carries out the engine's decisions, in order, in one transaction, and says what each one
    /// did (outcomes in the same order as `actions`). Either every action is applied or, on
    /// error, none is.
    ///
    /// This is the ingestion hot path: the batching writer calls it with many events at once, so
    /// that many alerts share one commit (and one fsync). Each action is one prepared statement,
    /// cached per connection by sqlx. Transient conflicts with other writers are retried here
    /// (the failed attempt was rolled back, so nothing is applied twice).
    pub async fn apply_batch(
        &self,
        actions: &[AlertAction],
    ) -> Result<Vec<ActionOutcome>, StoreError> {
        if actions.is_empty() {
            return Ok(Vec::new());
        }
        let mut attempt = 1;
        loop {
            match self.apply_batch_once(actions).await {
                Err(error) if error.is_transient() && attempt < BATCH_ATTEMPTS => {
                    let pause = BATCH_RETRY_PAUSE * 2u32.pow(attempt - 1);
                    tracing::warn!(
                        attempt,
                        actions = actions.len(),
                        error = %ErrorChain(&error),
                        "alert batch hit a transient database conflict; retrying"
                    );
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn apply_batch_once(
        &self,
        actions: &[AlertAction],
    ) -> Result<Vec<ActionOutcome>, StoreError> {
        const OP: &str = "applying an alert batch";
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let mut outcomes = Vec::with_capacity(actions.len());
            for action in actions {
                let outcome = match action {
                    AlertAction::Raise(alert) => {
                        let NewAlert {
                            addon_id,
                            fingerprint,
                            alert_type,
                            device_ip,
                            device_name,
                            severity,
                            category,
                            title,
                            message,
                            fields,
                            occurred_at,
                            received_at,
                        } = alert;
                        let (alert_id, occurrence_count): (i64, i64) = sqlx::query_as(RAISE_SQL)
                            .bind(addon_id)
                            .bind(fingerprint)
                            .bind(alert_type)
                            .bind(device_ip)
                            .bind(device_name)
                            .bind(severity.as_str())
                            .bind(category)
                            .bind(title)
                            .bind(message)
                            .bind(Json(fields))
                            .bind(ts(*occurred_at))
                            .bind(ts(*received_at))
                            .fetch_one(&mut *tx)
                            .await
                            .context(OP)?;
                        if occurrence_count == 1 {
                            ActionOutcome::Created { alert_id }
                        } else {
                            ActionOutcome::Updated {
                                alert_id,
                                occurrence_count,
                            }
                        }
                    }
                    AlertAction::Clear(clear) => {
                        let ClearAlert {
                            addon_id,
                            fingerprint,
                            cleared_by,
                            received_at,
                            alert_type: _,
                        } = clear;
                        let resolved: Option<i64> = sqlx::query_scalar(CLEAR_SQL)
                            .bind(fingerprint)
                            .bind(addon_id)
                            .bind(ts(*received_at))
                            .bind(format!("clear:{cleared_by}"))
                            .fetch_optional(&mut *tx)
                            .await
                            .context(OP)?;
                        match resolved {
                            Some(alert_id) => ActionOutcome::Resolved { alert_id },
                            None => ActionOutcome::ClearUnmatched,
                        }
                    }
                };
                outcomes.push(outcome);
            }
            tx.commit().await.context(OP)?;
            Ok(outcomes)
        })
    }

    /// Alerts matching `filter`, newest first; see [`AlertFilter`] for paging. The limit is
    /// clamped to 1..=[`LIST_LIMIT_MAX`], and 0 means [`LIST_LIMIT_DEFAULT`].
    pub async fn list_alerts(&self, filter: &AlertFilter) -> Result<Vec<StoredAlert>, StoreError> {
        let (sql, binds) = list_query(filter);
        let rows: Vec<AlertRow> = with_pool!(self, read, |pool| {
            let mut query = sqlx::query_as(&sql);
            for bind in binds {
                query = match bind {
                    Bind::Text(text) => query.bind(text),
                    Bind::Int(int) => query.bind(int),
                };
            }
            query.fetch_all(pool).await.context("listing alerts")?
        });
        rows.into_iter().map(StoredAlert::try_from).collect()
    }

    /// One alert by id.
    pub async fn get_alert(&self, id: i64) -> Result<Option<StoredAlert>, StoreError> {
        let row: Option<AlertRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
                .context("reading an alert")?
        });
        row.map(StoredAlert::try_from).transpose()
    }

    /// How many alerts are in each status, every status listed (zero included), in the order of
    /// [`AlertStatus::ALL`]. Reads only the status index.
    pub async fn count_alerts_by_status(&self) -> Result<Vec<(AlertStatus, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, read, |pool| {
            sqlx::query_as("SELECT status, COUNT(*) FROM alerts GROUP BY status")
                .fetch_all(pool)
                .await
                .context("counting alerts")?
        });
        let mut counts = AlertStatus::ALL.map(|status| (status, 0));
        for (status, count) in rows {
            let status: AlertStatus = status
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("alert status count: {e}")))?;
            if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
                slot.1 = count;
            }
        }
        Ok(counts.to_vec())
    }

    /// Moves an open alert to `status` on behalf of `actor` and returns it as changed.
    ///
    /// - `Acknowledged` records `actor` and the time in `acknowledged_*`;
    /// - `Active` (un-acknowledge) clears them;
    /// - `Suppressed` changes the status only;
    /// - `Resolved` records `actor` (by convention `user:<name>`) and the time in `resolved_*`.
    ///
    /// [`StoreError::NotFound`] if no open alert has this id: a resolved alert is history and is
    /// never reopened (a recurrence opens a new alert instead, and reopening could collide with
    /// it on the open-fingerprint index).
    pub async fn set_alert_status(
        &self,
        id: i64,
        status: AlertStatus,
        actor: &str,
    ) -> Result<StoredAlert, StoreError> {
        // `$3` (the actor) appears only where it is recorded: PostgreSQL cannot type a
        // parameter that the text never uses, so it is bound only then.
        let (set, records_actor) = match status {
            AlertStatus::Active => (
                "status = 'active', acknowledged_at = NULL, acknowledged_by = NULL, \
                 updated_at = $2",
                false,
            ),
            AlertStatus::Acknowledged => (
                "status = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3, \
                 updated_at = $2",
                true,
            ),
            AlertStatus::Suppressed => ("status = 'suppressed', updated_at = $2", false),
            AlertStatus::Resolved => (
                "status = 'resolved', resolved_at = $2, resolved_by = $3, updated_at = $2",
                true,
            ),
        };
        let sql = format!(
            "UPDATE alerts SET {set} WHERE id = $1 AND status <> 'resolved' \
             RETURNING {ALERT_COLUMNS}"
        );
        let row: Option<AlertRow> = with_pool!(self, write, |pool| {
            let mut query = sqlx::query_as(&sql).bind(id).bind(now());
            if records_actor {
                query = query.bind(actor);
            }
            query
                .fetch_optional(pool)
                .await
                .context("changing an alert's status")?
        });
        row.map(StoredAlert::try_from)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }
}

/// Formats an error with its sources, for logs (the `Display` of [`StoreError`] alone says only
/// what the store was doing).
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}
