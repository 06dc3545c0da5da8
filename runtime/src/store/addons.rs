//! Installed addons (manifest, wasm component, enabled flag), the operator's settings of each
//! (webhook authentication), the generation counter that tells running registries to reload,
//! and each addon's key/value state with its quotas.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use super::{BUMP_GENERATION_SQL, Context, Store, StoreError, begin_write, lock_addon_sql, ts};

/// Longest state key, in bytes. Keys name things ("last-poll-cursor", an interface index);
/// 256 bytes is plenty for that and keeps the primary-key index small.
pub const STATE_MAX_KEY_BYTES: usize = 256;

/// Largest state value, in bytes. State is for cursors, counters and small caches; 64 KiB holds
/// any of those, and bounds what one guest call can make the host write and keep.
pub const STATE_MAX_VALUE_BYTES: usize = 64 * 1024;

/// Most keys one addon may hold. With the value limit this caps an addon's state at 64 MiB, so a
/// buggy addon that writes a new key per event fills its quota, not the disk.
pub const STATE_MAX_KEYS: i64 = 1024;

/// The setting that counts addon changes; see [`Store::addons_generation`].
const GENERATION_KEY: &str = "addons.generation";

/// An addon as installed: everything the registry needs to load it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonRecord {
    pub id: String,
    pub name: String,
    pub version: String,
    pub methods: Vec<String>,
    pub manifest: serde_json::Value,
    pub wasm: Vec<u8>,
    pub wasm_sha256: String,
    pub enabled: bool,
}

/// An installed addon without its wasm bytes, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AddonRow {
    pub id: String,
    pub name: String,
    pub version: String,
    #[sqlx(json)]
    pub methods: Vec<String>,
    #[sqlx(json)]
    pub manifest: serde_json::Value,
    pub wasm_sha256: String,
    pub enabled: bool,
    pub installed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A version of an addon: what rollback reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, schemars::JsonSchema)]
pub struct AddonVersion {
    pub version: String,
    pub wasm_sha256: String,
}

/// What a rollback did: from the installed version back to the kept one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddonRollback {
    pub from: AddonVersion,
    pub to: AddonVersion,
}

impl Store {
    /// Installs an addon or replaces an installed one (name, version, methods, manifest, wasm and
    /// the enabled flag as given). `installed_at` keeps the first install's time; `updated_at`
    /// moves. The version replaced is kept (see [`Store::rollback_addon`]).
    pub async fn upsert_addon(
        &self,
        addon: &AddonRecord,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "installing an addon";
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let at = ts(now);
            // The version this replaces (if any) is kept for one-step rollback.
            sqlx::query(
                "INSERT INTO addon_versions (addon_id, name, version, methods, manifest, wasm, \
                                             wasm_sha256, replaced_at) \
                 SELECT id, name, version, methods, manifest, wasm, wasm_sha256, $2 \
                 FROM addons WHERE id = $1 \
                 ON CONFLICT (addon_id) DO UPDATE SET \
                     name = excluded.name, version = excluded.version, \
                     methods = excluded.methods, manifest = excluded.manifest, \
                     wasm = excluded.wasm, wasm_sha256 = excluded.wasm_sha256, \
                     replaced_at = excluded.replaced_at",
            )
            .bind(&addon.id)
            .bind(at)
            .execute(&mut *tx)
            .await
            .context(OP)?;
            sqlx::query(
                "INSERT INTO addons (id, name, version, methods, manifest, wasm, wasm_sha256, \
                                     enabled, installed_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
                 ON CONFLICT (id) DO UPDATE SET \
                     name = excluded.name, version = excluded.version, \
                     methods = excluded.methods, manifest = excluded.manifest, \
                     wasm = excluded.wasm, wasm_sha256 = excluded.wasm_sha256, \
                     enabled = excluded.enabled, updated_at = excluded.updated_at",
            )
            .bind(&addon.id)
            .bind(&addon.name)
            .bind(&addon.version)
            .bind(Json(&addon.methods))
            .bind(Json(&addon.manifest))
            .bind(&addon.wasm)
            .bind(&addon.wasm_sha256)
            .bind(addon.enabled)
            .bind(at)
            .execute(&mut *tx)
            .await
            .context(OP)?;
            sqlx::query(BUMP_GENERATION_SQL)
                .bind(GENERATION_KEY)
                .bind(at)
                .execute(&mut *tx)
                .await
                .context(OP)?;
            tx.commit().await.context(OP)?;
        });
        Ok(())
    }

    /// The version of an addon that its last upgrade replaced, if one is kept.
    pub async fn previous_addon_version(
        &self,
        id: &str,
    ) -> Result<Option<AddonVersion>, StoreError> {
        with_pool!(self, read, |pool| {
            sqlx::query_as("SELECT version, wasm_sha256 FROM addon_versions WHERE addon_id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
                .context("reading an addon's previous version")
        })
    }

    /// Puts back the version of an addon that its last upgrade replaced (manifest, wasm, name,
    /// version, methods; the enabled flag and settings stay) and forgets it, so rollback is one
    /// step. `Ok(None)` when no previous version is kept; [`StoreError::NotFound`] when the addon
    /// is not installed.
    pub async fn rollback_addon(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AddonRollback>, StoreError> {
        const OP: &str = "rolling an addon back";
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            // Under the addon's row lock, so that an install cannot slip in between.
            sqlx::query_scalar::<_, String>(lock_addon_sql(pool))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .context(OP)?;
            let current: Option<AddonVersion> =
                sqlx::query_as("SELECT version, wasm_sha256 FROM addons WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .context(OP)?;
            let Some(current) = current else {
                return Err(StoreError::NotFound);
            };
            let previous: Option<AddonVersion> = sqlx::query_as(
                "SELECT version, wasm_sha256 FROM addon_versions WHERE addon_id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .context(OP)?;
            let Some(previous) = previous else {
                return Ok(None);
            };
            let at = ts(now);
            sqlx::query(
                "UPDATE addons SET name = v.name, version = v.version, methods = v.methods, \
                     manifest = v.manifest, wasm = v.wasm, wasm_sha256 = v.wasm_sha256, \
                     updated_at = $2 \
                 FROM addon_versions AS v WHERE v.addon_id = addons.id AND addons.id = $1",
            )
            .bind(id)
            .bind(at)
            .execute(&mut *tx)
            .await
            .context(OP)?;
            sqlx::query("DELETE FROM addon_versions WHERE addon_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .context(OP)?;
            sqlx::query(BUMP_GENERATION_SQL)
                .bind(GENERATION_KEY)
                .bind(at)
                .execute(&mut *tx)
                .await
                .context(OP)?;
            tx.commit().await.context(OP)?;
            Ok(Some(AddonRollback {
                from: current,
                to: previous,
            }))
        })
    }

    /// Every installed addon, enabled or not, by id.
    pub async fn list_addons(&self) -> Result<Vec<AddonRow>, StoreError> {
        with_pool!(self, read, |pool| {
            sqlx::query_as(
                "SELECT id, name, version, methods, manifest, wasm_sha256, enabled, \
                        installed_at, updated_at \
                 FROM addons ORDER BY id",
            )
            .fetch_all(pool)
            .await
            .context("listing addons")
        })
    }

    /// An addon's wasm component, if the addon is installed.
    pub async fn addon_wasm(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        with_pool!(self, read, |pool| {
            sqlx::query_scalar("SELECT wasm FROM addons WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
                .context("reading an addon's wasm")
        })
    }

    /// Enables or disables an installed addon; [`StoreError::NotFound`] if there is none.
    pub async fn set_addon_enabled(
        &self,
        id: &str,
        enabled: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "enabling or disabling an addon";
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let at = ts(now);
            let changed =
                sqlx::query("UPDATE addons SET enabled = $2, updated_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(enabled)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .context(OP)?
                    .rows_affected();
            if changed == 0 {
                // Dropping the transaction rolls it back; nothing was written anyway.
                return Err(StoreError::NotFound);
            }
            sqlx::query(BUMP_GENERATION_SQL)
                .bind(GENERATION_KEY)
                .bind(at)
                .execute(&mut *tx)
                .await
                .context(OP)?;
            tx.commit().await.context(OP)?;
        });
        Ok(())
    }

    /// One installed addon without its wasm bytes, if it is installed.
    pub async fn addon(&self, id: &str) -> Result<Option<AddonRow>, StoreError> {
        with_pool!(self, read, |pool| {
            sqlx::query_as(
                "SELECT id, name, version, methods, manifest, wasm_sha256, enabled, \
                        installed_at, updated_at \
                 FROM addons WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
            .context("reading an addon")
        })
    }

    /// The settings object the operator stored for an addon, if any. The store keeps it as
    /// given; `webhook_auth` validates it before it is written and parses it when the
    /// registry loads the addon.
    pub async fn addon_settings(&self, id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        with_pool!(self, read, |pool| {
            let settings: Option<Json<serde_json::Value>> =
                sqlx::query_scalar("SELECT settings FROM addon_settings WHERE addon_id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await
                    .context("reading an addon's settings")?;
            settings.map(|Json(v)| self.open_settings(v)).transpose()
        })
    }

    /// Every addon's settings object, by addon id: what a registry reload reads, in one query
    /// rather than one per addon.
    pub async fn all_addon_settings(
        &self,
    ) -> Result<HashMap<String, serde_json::Value>, StoreError> {
        with_pool!(self, read, |pool| {
            let rows: Vec<(String, Json<serde_json::Value>)> =
                sqlx::query_as("SELECT addon_id, settings FROM addon_settings")
                    .fetch_all(pool)
                    .await
                    .context("reading addon settings")?;
            rows.into_iter()
                .map(|(id, Json(v))| Ok((id, self.open_settings(v)?)))
                .collect()
        })
    }

    /// Replaces an addon's settings object and moves the addon generation in the same
    /// transaction, so that every node's registry reloads the addon with them.
    /// [`StoreError::NotFound`] if the addon is not installed; [`StoreError::Invalid`] if
    /// `settings` is not a JSON object.
    pub async fn set_addon_settings(
        &self,
        id: &str,
        settings: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "writing an addon's settings";
        if !settings.is_object() {
            return Err(StoreError::Invalid(
                "addon settings must be a JSON object".to_owned(),
            ));
        }
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            // Under the addon's row lock, so that an uninstall cannot slip in between the check
            // and the write; an unknown addon is a plain NotFound, not a foreign-key error.
            let locked: Option<String> = sqlx::query_scalar(lock_addon_sql(pool))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .context(OP)?;
            if locked.is_none() {
                return Err(StoreError::NotFound);
            }
            let at = ts(now);
            sqlx::query(
                "INSERT INTO addon_settings (addon_id, settings, updated_at) \
                 VALUES ($1, $2, $3) \
                 ON CONFLICT (addon_id) DO UPDATE \
                 SET settings = excluded.settings, updated_at = excluded.updated_at",
            )
            .bind(id)
            .bind(Json(self.seal_settings(settings)))
            .bind(at)
            .execute(&mut *tx)
            .await
            .context(OP)?;
            sqlx::query(BUMP_GENERATION_SQL)
                .bind(GENERATION_KEY)
                .bind(at)
                .execute(&mut *tx)
                .await
                .context(OP)?;
            tx.commit().await.context(OP)?;
        });
        Ok(())
    }

    /// A number that grows with every addon install, update, enable and disable (0 before the
    /// first). Running servers poll it, which is cheap, and reload their registry when it
    /// changes, so an addon installed through any node takes effect on all of them without a
    /// restart.
    pub async fn addons_generation(&self) -> Result<i64, StoreError> {
        self.generation(GENERATION_KEY).await
    }

    /// The value an addon stored under `key`, if any.
    pub async fn state_get(
        &self,
        addon_id: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        with_pool!(self, read, |pool| {
            sqlx::query_scalar("SELECT value FROM addon_state WHERE addon_id = $1 AND key = $2")
                .bind(addon_id)
                .bind(key)
                .fetch_optional(pool)
                .await
                .context("reading addon state")
        })
    }

    /// Stores `value` under `key` for an addon, replacing any previous value. Refused with
    /// [`StoreError::Quota`] when the key or value is too large or the addon already holds
    /// [`STATE_MAX_KEYS`] other keys; [`StoreError::NotFound`] if the addon is not installed.
    pub async fn state_set(
        &self,
        addon_id: &str,
        key: &str,
        value: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "writing addon state";
        if key.len() > STATE_MAX_KEY_BYTES {
            return Err(StoreError::Quota(format!(
                "addon `{addon_id}` state key is {} bytes; the limit is {STATE_MAX_KEY_BYTES}",
                key.len()
            )));
        }
        if value.len() > STATE_MAX_VALUE_BYTES {
            return Err(StoreError::Quota(format!(
                "addon `{addon_id}` state value for key `{key}` is {} bytes; the limit is \
                 {STATE_MAX_VALUE_BYTES}",
                value.len()
            )));
        }
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let at = ts(now);
            // Overwriting an existing key, the common case, cannot change the key count: one
            // statement, no lock on the addon.
            let updated = sqlx::query(
                "UPDATE addon_state SET value = $3, updated_at = $4 \
                 WHERE addon_id = $1 AND key = $2",
            )
            .bind(addon_id)
            .bind(key)
            .bind(value)
            .bind(at)
            .execute(&mut *tx)
            .await
            .context(OP)?
            .rows_affected();
            if updated == 0 {
                // A new key: count under the addon's row lock, so that two writers adding keys
                // at once cannot both see room for one more and overshoot the quota.
                let locked: Option<String> = sqlx::query_scalar(lock_addon_sql(pool))
                    .bind(addon_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .context(OP)?;
                if locked.is_none() {
                    return Err(StoreError::NotFound);
                }
                // Another writer may have inserted this very key since the UPDATE above; it does
                // not count against the room this write needs.
                let others: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM addon_state WHERE addon_id = $1 AND key <> $2",
                )
                .bind(addon_id)
                .bind(key)
                .fetch_one(&mut *tx)
                .await
                .context(OP)?;
                if others >= STATE_MAX_KEYS {
                    return Err(StoreError::Quota(format!(
                        "addon `{addon_id}` already holds {others} state keys; the limit is \
                         {STATE_MAX_KEYS} (delete keys it no longer needs)"
                    )));
                }
                sqlx::query(
                    "INSERT INTO addon_state (addon_id, key, value, updated_at) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (addon_id, key) DO UPDATE \
                     SET value = excluded.value, updated_at = excluded.updated_at",
                )
                .bind(addon_id)
                .bind(key)
                .bind(value)
                .bind(at)
                .execute(&mut *tx)
                .await
                .context(OP)?;
            }
            tx.commit().await.context(OP)?;
        });
        Ok(())
    }

    /// Removes a key of an addon's state; removing a key that does not exist is not an error.
    pub async fn state_delete(&self, addon_id: &str, key: &str) -> Result<(), StoreError> {
        with_pool!(self, write, |pool| {
            sqlx::query("DELETE FROM addon_state WHERE addon_id = $1 AND key = $2")
                .bind(addon_id)
                .bind(key)
                .execute(pool)
                .await
                .context("deleting addon state")?;
        });
        Ok(())
    }
}
