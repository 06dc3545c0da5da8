//! API keys: stored as their SHA-256 with a role, an optional expiry and a short prefix to
//! recognise them by; created, listed, touched when used, revoked.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::audit::insert_audit;
use super::{AuditOutcome, AuditRecord, Context, Store, StoreError, begin_write, parse_role, ts};
use crate::identity::{Actor, Role, action};

const API_KEY_COLUMNS: &str =
    "id, name, prefix, role, created_by, created_at, expires_at, revoked_at, last_used_at";

/// An API key as listings show it: never the key or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ApiKeyInfo {
    pub id: i64,
    pub name: String,
    /// The key's first characters, to recognise it by.
    pub prefix: String,
    pub role: Role,
    /// The actor who created it.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Updated at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: i64,
    name: String,
    prefix: String,
    role: String,
    created_by: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

impl TryFrom<ApiKeyRow> for ApiKeyInfo {
    type Error = StoreError;

    fn try_from(row: ApiKeyRow) -> Result<ApiKeyInfo, StoreError> {
        Ok(ApiKeyInfo {
            role: parse_role(&row.role, format_args!("API key `{}`", row.name))?,
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            created_by: row.created_by,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            last_used_at: row.last_used_at,
        })
    }
}

/// An API key to store: its SHA-256, never the key.
#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    pub name: &'a str,
    pub prefix: &'a str,
    pub key_sha256: &'a str,
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Stores a new API key. [`StoreError::Conflict`] when a key that is not revoked has the
    /// same name.
    pub async fn create_api_key(
        &self,
        key: &NewApiKey<'_>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyInfo, StoreError> {
        const OP: &str = "creating an API key";
        let at = ts(now);
        let expires_at = key.expires_at.map(ts);
        let row: ApiKeyRow = with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let row: Option<ApiKeyRow> = sqlx::query_as(&format!(
                "INSERT INTO api_keys (name, prefix, key_sha256, role, created_by, created_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT DO NOTHING RETURNING {API_KEY_COLUMNS}"
            ))
            .bind(key.name)
            .bind(key.prefix)
            .bind(key.key_sha256)
            .bind(key.role.as_str())
            .bind(&actor.name)
            .bind(at)
            .bind(expires_at)
            .fetch_optional(&mut *tx)
            .await
            .context(OP)?;
            let Some(row) = row else {
                return Err(StoreError::Conflict(format!(
                    "an API key named `{}` already exists (revoke it first)",
                    key.name
                )));
            };
            let record = AuditRecord::new(
                actor,
                action::API_KEY_CREATE,
                Some(format!("key:{}", key.name)),
                AuditOutcome::Success,
            )
            .after(json!({
                "id": row.id,
                "role": key.role,
                "prefix": key.prefix,
                "expires_at": expires_at,
            }));
            insert_audit!(&mut *tx, &record, at, OP);
            tx.commit().await.context(OP)?;
            row
        });
        row.try_into()
    }

    /// The API key whose SHA-256 is `key_sha256`, revoked and expired ones included.
    pub async fn api_key_by_sha256(
        &self,
        key_sha256: &str,
    ) -> Result<Option<ApiKeyInfo>, StoreError> {
        self.one_api_key("key_sha256 = $1", key_sha256).await
    }

    /// The API key named `name` that is not revoked, if any.
    pub async fn live_api_key(&self, name: &str) -> Result<Option<ApiKeyInfo>, StoreError> {
        self.one_api_key("name = $1 AND revoked_at IS NULL", name)
            .await
    }

    async fn one_api_key(
        &self,
        condition: &str,
        value: &str,
    ) -> Result<Option<ApiKeyInfo>, StoreError> {
        let row: Option<ApiKeyRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(&format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE {condition}"
            ))
            .bind(value)
            .fetch_optional(pool)
            .await
            .context("reading an API key")?
        });
        row.map(ApiKeyInfo::try_from).transpose()
    }

    /// Every API key (revoked ones included), oldest first.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>, StoreError> {
        let rows: Vec<ApiKeyRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(&format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY id"
            ))
            .fetch_all(pool)
            .await
            .context("listing API keys")?
        });
        rows.into_iter().map(ApiKeyInfo::try_from).collect()
    }

    /// Records that an API key was used at `now`, unless that was already recorded at or
    /// after `unless_used_since` (which keeps this to one write per key per interval, even
    /// with several nodes).
    pub async fn touch_api_key(
        &self,
        id: i64,
        now: DateTime<Utc>,
        unless_used_since: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, write, |pool| {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $2 \
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(id)
            .bind(ts(now))
            .bind(ts(unless_used_since))
            .execute(pool)
            .await
            .context("recording an API key's use")?;
        });
        Ok(())
    }

    /// Revokes an API key (at once: the next request with it is refused). Returns it unchanged,
    /// and writes no audit entry, when it was already revoked; [`StoreError::NotFound`] if there
    /// is no such key.
    pub async fn revoke_api_key(
        &self,
        id: i64,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyInfo, StoreError> {
        const OP: &str = "revoking an API key";
        let at = ts(now);
        let row: ApiKeyRow = with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let revoked: Option<ApiKeyRow> = sqlx::query_as(&format!(
                "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL \
                 RETURNING {API_KEY_COLUMNS}"
            ))
            .bind(id)
            .bind(at)
            .fetch_optional(&mut *tx)
            .await
            .context(OP)?;
            let Some(row) = revoked else {
                let existing: Option<ApiKeyRow> = sqlx::query_as(&format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .context(OP)?;
                return existing
                    .ok_or(StoreError::NotFound)
                    .and_then(ApiKeyInfo::try_from);
            };
            let record = AuditRecord::new(
                actor,
                action::API_KEY_REVOKE,
                Some(format!("key:{}", row.name)),
                AuditOutcome::Success,
            )
            .after(json!({ "id": row.id, "prefix": row.prefix }));
            insert_audit!(&mut *tx, &record, at, OP);
            tx.commit().await.context(OP)?;
            row
        });
        row.try_into()
    }
}
