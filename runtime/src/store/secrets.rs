//! The secret columns, sealed with [`SecretKeys`](crate::secrets::SecretKeys): what each is
//! called (the associated data that binds a sealed value to its column), sealing on write,
//! opening on read, and [`Store::seal_secrets`], which seals rows still in clear and re-seals
//! rows sealed with an older key.
//!
//! A BLOB/BYTEA column holds the sealed text's bytes; the SNMP community (TEXT) holds the
//! text; an addon's settings (a JSON object column) hold `{"sealed": "<text>"}`.

use serde_json::Value;
use sqlx::types::Json;

use super::{Context, Store, StoreError, begin_write};
use crate::secrets::is_sealed;

pub(super) const CREDENTIAL_SECRET: &str = "credentials.secret";
pub(super) const SIGNING_KEY_SECRET: &str = "signing_keys.secret";
pub(super) const SNMP_COMMUNITY: &str = "snmp_communities.community";
pub(super) const SNMP_AUTH_KEY: &str = "snmp_users.auth_key";
pub(super) const SNMP_PRIV_KEY: &str = "snmp_users.priv_key";
pub(super) const ADDON_SETTINGS: &str = "addon_settings.settings";

/// An SNMPv3 user's name with its authentication and privacy keys as stored.
type UserKeys = (String, Option<Vec<u8>>, Option<Vec<u8>>);

/// The member of a sealed settings object.
const SEALED_MEMBER: &str = "sealed";

impl Store {
    /// `plaintext` sealed for `column`, as the bytes a BLOB column stores.
    pub(super) fn seal_bytes(&self, column: &str, plaintext: &[u8]) -> Vec<u8> {
        self.secrets.seal(column, plaintext).into_bytes()
    }

    /// `plaintext` sealed for `column`, as text.
    pub(super) fn seal_text(&self, column: &str, plaintext: &str) -> String {
        self.secrets.seal(column, plaintext.as_bytes())
    }

    /// What a secret column holds, opened. A value in clear (a row another, older node wrote
    /// after this one sealed the table) reads as it is; the next start seals it.
    pub(super) fn open_bytes(&self, column: &str, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
        match std::str::from_utf8(stored) {
            Ok(text) if is_sealed(text) => Ok(self.secrets.open(column, text)?),
            _ => Ok(stored.to_vec()),
        }
    }

    pub(super) fn open_text(&self, column: &str, stored: &str) -> Result<String, StoreError> {
        let bytes = self.open_bytes(column, stored.as_bytes())?;
        String::from_utf8(bytes).map_err(|_| StoreError::Corrupt(format!("{column} is not text")))
    }

    /// An addon's settings object as stored: the object sealed inside `{"sealed": …}`.
    pub(super) fn seal_settings(&self, settings: &Value) -> Value {
        let text = serde_json::to_string(settings).expect("a JSON value serializes");
        serde_json::json!({ SEALED_MEMBER: self.seal_text(ADDON_SETTINGS, &text) })
    }

    pub(super) fn open_settings(&self, stored: Value) -> Result<Value, StoreError> {
        match sealed_settings_text(&stored) {
            None => Ok(stored),
            Some(text) => {
                let text = self.open_text(ADDON_SETTINGS, text)?;
                serde_json::from_str(&text).map_err(|_| {
                    StoreError::Corrupt(format!("{ADDON_SETTINGS} is not a JSON object"))
                })
            }
        }
    }

    /// Seals every secret still in clear and re-seals every secret sealed with a key other
    /// than the sealing one; returns how many values it wrote. [`Store::connect`] calls it, so
    /// an upgraded database is sealed on its first start and `opsconductor secrets rotate-key`
    /// only has to connect with the new key first and the old one second. Reads first on a
    /// reader and opens a write transaction only when something needs sealing. On SQLite,
    /// sealing values that were in clear is followed by a VACUUM, which leaves no copy of
    /// them in the file's free pages.
    pub async fn seal_secrets(&self) -> Result<u64, StoreError> {
        if !self.secrets_need_sealing().await? {
            return Ok(0);
        }
        const OP: &str = "sealing secrets";
        let keys = self.secrets.clone();
        let needs = |stored: &[u8]| match std::str::from_utf8(stored) {
            Ok(text) => keys.needs_sealing(text),
            Err(_) => true,
        };
        let mut written = 0u64;
        let mut had_clear = false;
        let in_clear = |stored: &[u8]| !std::str::from_utf8(stored).is_ok_and(is_sealed);
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;

            // The two BLOB columns keyed by one text column: read, re-seal what needs it.
            for (select, update, column) in [
                (
                    "SELECT name, secret FROM credentials",
                    "UPDATE credentials SET secret = $2 WHERE name = $1",
                    CREDENTIAL_SECRET,
                ),
                (
                    "SELECT kid, secret FROM signing_keys",
                    "UPDATE signing_keys SET secret = $2 WHERE kid = $1",
                    SIGNING_KEY_SECRET,
                ),
            ] {
                let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(select)
                    .fetch_all(&mut *tx)
                    .await
                    .context(OP)?;
                for (key, stored) in rows.into_iter().filter(|(_, s)| needs(s)) {
                    had_clear |= in_clear(&stored);
                    let sealed = self.seal_bytes(column, &self.open_bytes(column, &stored)?);
                    sqlx::query(update)
                        .bind(key)
                        .bind(sealed)
                        .execute(&mut *tx)
                        .await
                        .context(OP)?;
                    written += 1;
                }
            }

            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT label, community FROM snmp_communities")
                    .fetch_all(&mut *tx)
                    .await
                    .context(OP)?;
            for (label, stored) in rows.into_iter().filter(|(_, s)| needs(s.as_bytes())) {
                had_clear |= in_clear(stored.as_bytes());
                let sealed =
                    self.seal_text(SNMP_COMMUNITY, &self.open_text(SNMP_COMMUNITY, &stored)?);
                sqlx::query("UPDATE snmp_communities SET community = $2 WHERE label = $1")
                    .bind(label)
                    .bind(sealed)
                    .execute(&mut *tx)
                    .await
                    .context(OP)?;
                written += 1;
            }

            let rows: Vec<UserKeys> =
                sqlx::query_as("SELECT name, auth_key, priv_key FROM snmp_users")
                    .fetch_all(&mut *tx)
                    .await
                    .context(OP)?;
            for (name, auth, privacy) in rows {
                let stale = |k: &Option<Vec<u8>>| k.as_deref().is_some_and(needs);
                if !stale(&auth) && !stale(&privacy) {
                    continue;
                }
                for key in auth.iter().chain(privacy.iter()) {
                    had_clear |= in_clear(key);
                }
                let auth = auth
                    .map(|k| {
                        Ok::<_, StoreError>(
                            self.seal_bytes(SNMP_AUTH_KEY, &self.open_bytes(SNMP_AUTH_KEY, &k)?),
                        )
                    })
                    .transpose()?;
                let privacy = privacy
                    .map(|k| {
                        Ok::<_, StoreError>(
                            self.seal_bytes(SNMP_PRIV_KEY, &self.open_bytes(SNMP_PRIV_KEY, &k)?),
                        )
                    })
                    .transpose()?;
                sqlx::query("UPDATE snmp_users SET auth_key = $2, priv_key = $3 WHERE name = $1")
                    .bind(name)
                    .bind(auth)
                    .bind(privacy)
                    .execute(&mut *tx)
                    .await
                    .context(OP)?;
                written += 1;
            }

            let rows: Vec<(String, Json<Value>)> =
                sqlx::query_as("SELECT addon_id, settings FROM addon_settings")
                    .fetch_all(&mut *tx)
                    .await
                    .context(OP)?;
            for (addon, Json(stored)) in rows {
                match sealed_settings_text(&stored) {
                    Some(text) if !keys.needs_sealing(text) => continue,
                    Some(_) => {}
                    None => had_clear = true,
                }
                let sealed = self.seal_settings(&self.open_settings(stored)?);
                sqlx::query("UPDATE addon_settings SET settings = $2 WHERE addon_id = $1")
                    .bind(addon)
                    .bind(Json(sealed))
                    .execute(&mut *tx)
                    .await
                    .context(OP)?;
                written += 1;
            }

            tx.commit().await.context(OP)?;
        });
        if had_clear && let super::Backend::Sqlite(pools) = &self.backend {
            // The rows' old versions, in clear, sit in free pages and the WAL until they are
            // overwritten: rewrite the file and truncate the WAL so that no copy is left.
            for sql in [
                "PRAGMA wal_checkpoint(TRUNCATE)",
                "VACUUM",
                "PRAGMA wal_checkpoint(TRUNCATE)",
            ] {
                sqlx::query(sql)
                    .execute(&pools.writer)
                    .await
                    .context("compacting the database after sealing secrets")?;
            }
        }
        tracing::info!(
            written,
            key = self.secrets.current_id(),
            "sealed the database's secrets with the secrets key"
        );
        Ok(written)
    }

    /// Whether any secret is in clear or sealed with another key: the reader's cheap check
    /// before [`Store::seal_secrets`] takes the write lock.
    async fn secrets_need_sealing(&self) -> Result<bool, StoreError> {
        const OP: &str = "checking that secrets are sealed";
        let stored: Vec<Vec<u8>> = with_pool!(self, read, |pool| {
            sqlx::query_scalar(
                "SELECT secret FROM credentials \
                 UNION ALL SELECT secret FROM signing_keys \
                 UNION ALL SELECT auth_key FROM snmp_users WHERE auth_key IS NOT NULL \
                 UNION ALL SELECT priv_key FROM snmp_users WHERE priv_key IS NOT NULL",
            )
            .fetch_all(pool)
            .await
            .context(OP)?
        });
        let communities: Vec<String> = with_pool!(self, read, |pool| {
            sqlx::query_scalar("SELECT community FROM snmp_communities")
                .fetch_all(pool)
                .await
                .context(OP)?
        });
        let settings: Vec<Json<Value>> = with_pool!(self, read, |pool| {
            sqlx::query_scalar("SELECT settings FROM addon_settings")
                .fetch_all(pool)
                .await
                .context(OP)?
        });
        let stale = |text: &str| self.secrets.needs_sealing(text);
        Ok(stored
            .iter()
            .any(|s| std::str::from_utf8(s).map_or(true, stale))
            || communities.iter().any(|c| stale(c))
            || settings
                .iter()
                .any(|Json(v)| sealed_settings_text(v).is_none_or(stale)))
    }
}

/// The sealed text inside a stored settings object, `None` for settings in clear.
fn sealed_settings_text(stored: &Value) -> Option<&str> {
    match stored.as_object() {
        Some(object) if object.len() == 1 => object.get(SEALED_MEMBER)?.as_str(),
        _ => None,
    }
}
