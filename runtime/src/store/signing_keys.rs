//! Token signing keys: the active one and those retired recently enough that tokens they
//! signed may still be valid. The only secrets the store keeps rather than hashes (a key must
//! sign), sealed at rest like every secret column (see `store/secrets.rs`).

use chrono::{DateTime, Utc};
use serde_json::json;

use super::audit::insert_audit;
use super::{AuditOutcome, AuditRecord, Context, Store, StoreError, begin_write, ts};
use crate::identity::{Actor, SigningKey, action};

#[derive(sqlx::FromRow)]
struct SigningKeyRow {
    kid: String,
    secret: Vec<u8>,
    created_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Every stored signing key, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        let rows: Vec<SigningKeyRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(
                "SELECT kid, secret, created_at, retired_at FROM signing_keys \
                 ORDER BY created_at DESC, kid",
            )
            .fetch_all(pool)
            .await
            .context("reading signing keys")?
        });
        rows.into_iter()
            .map(|row| {
                let secret = self.open_bytes(super::secrets::SIGNING_KEY_SECRET, &row.secret)?;
                Ok(SigningKey::new(
                    row.kid,
                    secret,
                    row.created_at,
                    row.retired_at,
                ))
            })
            .collect()
    }

    /// Stores `key` as the active signing key unless there already is one (another node may
    /// have just created it); returns whether it was stored.
    pub async fn create_first_signing_key(
        &self,
        key: &SigningKey,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const OP: &str = "creating the first signing key";
        let at = ts(now);
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            // The conflict is with the one-active-key index.
            let inserted: Option<String> = sqlx::query_scalar(
                "INSERT INTO signing_keys (kid, secret, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING RETURNING kid",
            )
            .bind(&key.kid)
            .bind(self.seal_bytes(super::secrets::SIGNING_KEY_SECRET, key.secret()))
            .bind(at)
            .fetch_optional(&mut *tx)
            .await
            .context(OP)?;
            if inserted.is_none() {
                return Ok(false);
            }
            let record = AuditRecord::new(
                actor,
                action::SIGNING_KEY_CREATE,
                Some(format!("signing_key:{}", key.kid)),
                AuditOutcome::Success,
            );
            insert_audit!(&mut *tx, &record, at, OP);
            tx.commit().await.context(OP)?;
            Ok(true)
        })
    }

    /// Retires the active signing key, makes `key` the active one, and deletes keys retired
    /// before `forget_retired_before` (no token they signed can still be valid). Returns the id
    /// of the key retired now, if there was one. [`StoreError::Conflict`] when another
    /// rotation committed in between.
    pub async fn rotate_signing_key(
        &self,
        key: &SigningKey,
        forget_retired_before: DateTime<Utc>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        const OP: &str = "rotating the signing key";
        let at = ts(now);
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let retired: Option<String> = sqlx::query_scalar(
                "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL RETURNING kid",
            )
            .bind(at)
            .fetch_optional(&mut *tx)
            .await
            .context(OP)?;
            let inserted: Option<String> = sqlx::query_scalar(
                "INSERT INTO signing_keys (kid, secret, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING RETURNING kid",
            )
            .bind(&key.kid)
            .bind(self.seal_bytes(super::secrets::SIGNING_KEY_SECRET, key.secret()))
            .bind(at)
            .fetch_optional(&mut *tx)
            .await
            .context(OP)?;
            if inserted.is_none() {
                return Err(StoreError::Conflict(
                    "another signing key rotation happened at the same time; try again".to_owned(),
                ));
            }
            let forgotten = sqlx::query("DELETE FROM signing_keys WHERE retired_at < $1")
                .bind(ts(forget_retired_before))
                .execute(&mut *tx)
                .await
                .context(OP)?
                .rows_affected();
            let record = AuditRecord::new(
                actor,
                action::SIGNING_KEY_ROTATE,
                Some(format!("signing_key:{}", key.kid)),
                AuditOutcome::Success,
            )
            .before(json!({ "active": retired }))
            .after(json!({ "active": key.kid, "deleted_retired_keys": forgotten }));
            insert_audit!(&mut *tx, &record, at, OP);
            tx.commit().await.context(OP)?;
            Ok(retired)
        })
    }
}
