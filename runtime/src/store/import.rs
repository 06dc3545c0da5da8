//! Imports (`opsconductor import legacy` / `import json`): the legacy system's database read as
//! [`crate::import`]'s source records, and converted records written here in batches, each batch
//! one transaction together with its `legacy_imports` rows, so that a second run skips what the
//! first brought over and a failed batch leaves nothing of itself.
//!
//! The legacy database is PostgreSQL with the original design's schema
//! (`shared/seed/clean-core-architecture.md`): `addons`, `alerts` (UUID ids, `raw_data`),
//! `system_settings`, `targets`. It is only read.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::types::Json;

use super::{Context, Store, StoreError, begin_write, ts};
use crate::alert::AlertStatus;
use opsconductor_model::import::{ImportedAlert, ImportedTarget, SourceAlert, SourceTarget};

/// What one import record kind is called in `legacy_imports`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Alert,
    Target,
    Setting,
}

impl ImportKind {
    fn as_str(self) -> &'static str {
        match self {
            ImportKind::Alert => "alert",
            ImportKind::Target => "target",
            ImportKind::Setting => "setting",
        }
    }
}

/// What one batch wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchWritten {
    pub written: u64,
    /// Open alerts whose problem is already open here: imported resolved, so that the open one
    /// here stays the one that new events update.
    pub already_open: u64,
    /// Settings and targets whose key or name this system has already: kept as they are.
    pub kept_ours: u64,
}

const ALERT_SQL: &str = "INSERT INTO alerts (addon_id, fingerprint, alert_type, device_ip, \
         device_name, severity, category, title, message, status, fields, occurrence_count, \
         occurred_at, first_seen_at, last_seen_at, resolved_at, resolved_by, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $15, $16, $17, $17) \
     ON CONFLICT (fingerprint) WHERE status <> 'resolved' DO NOTHING \
     RETURNING id";

const RECORD_SQL: &str = "INSERT INTO legacy_imports (kind, source_id, imported_as, imported_at) \
     VALUES ($1, $2, $3, $4)";

/// Records, in the batch's transaction, that a source record was imported (a macro because the
/// transaction's type is each backend's).
macro_rules! record_import {
    ($tx:expr, $kind:expr, $source_id:expr, $imported_as:expr, $now:expr, $op:expr) => {
        sqlx::query(RECORD_SQL)
            .bind($kind.as_str())
            .bind($source_id)
            .bind($imported_as)
            .bind($now)
            .execute(&mut *$tx)
            .await
            .context($op)?
    };
}

impl Store {
    /// The source ids of one kind imported so far.
    pub async fn imported_ids(&self, kind: ImportKind) -> Result<HashSet<String>, StoreError> {
        let ids: Vec<String> = with_pool!(self, read, |pool| {
            sqlx::query_scalar("SELECT source_id FROM legacy_imports WHERE kind = $1")
                .bind(kind.as_str())
                .fetch_all(pool)
                .await
                .context("reading what was imported")
        })?;
        Ok(ids.into_iter().collect())
    }

    /// Writes one batch of alerts and their `legacy_imports` rows in one transaction.
    pub async fn import_alerts(
        &self,
        batch: &[ImportedAlert],
        now: DateTime<Utc>,
    ) -> Result<BatchWritten, StoreError> {
        const OP: &str = "importing a batch of alerts";
        let now = ts(now);
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let mut done = BatchWritten::default();
            for a in batch {
                let insert = |status: AlertStatus, resolved_at: Option<DateTime<Utc>>, by| {
                    sqlx::query_scalar::<_, i64>(ALERT_SQL)
                        .bind(&a.addon_id)
                        .bind(&a.fingerprint)
                        .bind(&a.alert_type)
                        .bind(&a.device_ip)
                        .bind(&a.device_name)
                        .bind(a.severity.as_str())
                        .bind(&a.category)
                        .bind(&a.title)
                        .bind(&a.message)
                        .bind(status.as_str())
                        .bind(Json(&a.fields))
                        .bind(a.occurrence_count)
                        .bind(ts(a.occurred_at))
                        .bind(ts(a.last_seen_at))
                        .bind(resolved_at.map(ts))
                        .bind(by)
                        .bind(now)
                };
                let mut id = insert(a.status, a.resolved_at, a.resolved_by.clone())
                    .fetch_optional(&mut *tx)
                    .await
                    .context(OP)?;
                if id.is_none() {
                    // The same problem is open here already: it stays the open one.
                    done.already_open += 1;
                    id = insert(
                        AlertStatus::Resolved,
                        Some(a.last_seen_at),
                        Some("import: open here already".to_owned()),
                    )
                    .fetch_optional(&mut *tx)
                    .await
                    .context(OP)?;
                }
                let id = id.ok_or(StoreError::Corrupt(
                    "a resolved alert was refused by the open-fingerprint index".into(),
                ))?;
                record_import!(tx, ImportKind::Alert, &a.source_id, id.to_string(), now, OP);
                done.written += 1;
            }
            tx.commit().await.context(OP)?;
            Ok(done)
        })
    }

    /// Writes targets (disabled, without credentials) and their `legacy_imports` rows in one
    /// transaction; a name this system has already keeps its target.
    pub async fn import_targets(
        &self,
        batch: &[ImportedTarget],
        now: DateTime<Utc>,
    ) -> Result<BatchWritten, StoreError> {
        const OP: &str = "importing targets";
        let now = ts(now);
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let mut done = BatchWritten::default();
            for t in batch {
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO targets (name, address, addon_id, poll_interval_seconds, enabled, \
                         config, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                     ON CONFLICT (name) DO NOTHING RETURNING id",
                )
                .bind(&t.name)
                .bind(&t.address)
                .bind(&t.addon_id)
                .bind(i64::from(t.interval_seconds))
                .bind(false)
                .bind(Json(&t.config))
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .context(OP)?;
                let imported_as = match id {
                    Some(id) => {
                        done.written += 1;
                        id.to_string()
                    }
                    None => {
                        done.kept_ours += 1;
                        format!("kept: {}", t.name)
                    }
                };
                record_import!(tx, ImportKind::Target, &t.source_id, imported_as, now, OP);
            }
            tx.commit().await.context(OP)?;
            Ok(done)
        })
    }

    /// Writes settings and their `legacy_imports` rows in one transaction; a key this system
    /// has already keeps its value.
    pub async fn import_settings(
        &self,
        settings: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<BatchWritten, StoreError> {
        const OP: &str = "importing settings";
        let now = ts(now);
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let mut done = BatchWritten::default();
            for (key, value) in settings {
                let written = sqlx::query(
                    "INSERT INTO system_settings (key, value, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(value)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context(OP)?
                .rows_affected();
                if written == 1 {
                    done.written += 1;
                } else {
                    done.kept_ours += 1;
                }
                let imported_as = if written == 1 {
                    "imported"
                } else {
                    "kept ours"
                };
                record_import!(tx, ImportKind::Setting, key, imported_as, now, OP);
            }
            tx.commit().await.context(OP)?;
            Ok(done)
        })
    }
}

/// A legacy database, opened read-only in spirit: only `SELECT`s are sent.
pub struct LegacySource {
    pool: PgPool,
}

/// One legacy alert, each column as text or JSON so that a wrong type in one row is that row's
/// problem (a NULL or garbage value reaches the conversion, which says what it did with it).
#[derive(sqlx::FromRow)]
struct LegacyAlertRow {
    id: String,
    addon_id: Option<String>,
    fingerprint: Option<String>,
    device_ip: Option<String>,
    device_name: Option<String>,
    alert_type: Option<String>,
    severity: Option<String>,
    category: Option<String>,
    title: Option<String>,
    message: Option<String>,
    status: Option<String>,
    is_clear: Option<bool>,
    occurred_at: Option<DateTime<Utc>>,
    received_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    occurrence_count: Option<i64>,
    raw_data: Option<Value>,
}

/// One legacy target.
#[derive(sqlx::FromRow)]
struct LegacyTargetRow {
    id: i64,
    name: Option<String>,
    ip_address: Option<String>,
    addon_id: Option<String>,
    poll_interval: Option<i64>,
    config: Option<Value>,
}

const LEGACY_ALERTS_SQL: &str = "SELECT id::text AS id, addon_id, fingerprint, device_ip, \
     device_name, alert_type, severity, category, title, message, status, is_clear, occurred_at, \
     received_at, resolved_at, occurrence_count::bigint AS occurrence_count, \
     raw_data::jsonb AS raw_data \
     FROM alerts WHERE id::text > $1 ORDER BY id::text LIMIT $2";

impl LegacySource {
    /// Connects to the legacy PostgreSQL database at `url`. The error never carries the URL's
    /// password.
    pub async fn connect(url: &str) -> Result<LegacySource, StoreError> {
        if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(StoreError::UnsupportedUrl);
        }
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await
            .map_err(|source| StoreError::Connect {
                kind: super::DatabaseKind::Postgres,
                source,
            })?;
        Ok(LegacySource { pool })
    }

    /// Up to `limit` alerts whose id (as text) sorts after `after`, in that order.
    pub async fn alerts_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<SourceAlert>, StoreError> {
        let rows: Vec<LegacyAlertRow> = sqlx::query_as(LEGACY_ALERTS_SQL)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .context("reading the legacy alerts")?;
        Ok(rows
            .into_iter()
            .map(|r| SourceAlert {
                source_id: r.id,
                addon_id: r.addon_id,
                fingerprint: r.fingerprint,
                device_ip: r.device_ip,
                device_name: r.device_name,
                alert_type: r.alert_type,
                severity: r.severity,
                category: r.category,
                title: r.title,
                message: r.message,
                status: r.status,
                is_clear: r.is_clear,
                occurred_at: r.occurred_at,
                received_at: r.received_at,
                resolved_at: r.resolved_at,
                occurrence_count: r.occurrence_count,
                raw_data: r.raw_data,
                fields: Default::default(),
            })
            .collect())
    }

    /// Every legacy target.
    pub async fn targets(&self) -> Result<Vec<SourceTarget>, StoreError> {
        let rows: Vec<LegacyTargetRow> = sqlx::query_as(
            "SELECT id::bigint AS id, name, ip_address, addon_id, \
                 poll_interval::bigint AS poll_interval, config::jsonb AS config \
             FROM targets ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .context("reading the legacy targets")?;
        Ok(rows
            .into_iter()
            .map(|t| SourceTarget {
                source_id: t.id.to_string(),
                name: t.name,
                ip_address: t.ip_address,
                addon_id: t.addon_id,
                poll_interval: t.poll_interval,
                config: t.config,
            })
            .collect())
    }

    /// Every legacy setting.
    pub async fn settings(&self) -> Result<Vec<(String, Option<String>)>, StoreError> {
        sqlx::query_as("SELECT key, value FROM system_settings ORDER BY key")
            .fetch_all(&self.pool)
            .await
            .context("reading the legacy settings")
    }
}
