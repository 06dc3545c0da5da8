//! API keys: creating (the key shown once), listing and revoking them.

use chrono::{DateTime, Utc};

use super::Auth;
use crate::auth::{AuthError, check_api_key_name};
use crate::identity::{API_KEY_PREFIX, Actor, Role, Secret, random_token, sha256_hex};
use crate::store::{ApiKeyInfo, NewApiKey, StoreError};

/// Lengths of the characters of an API key shown in listings (`oc_` and 8 more).
const API_KEY_SHOWN_CHARS: usize = API_KEY_PREFIX.len() + 8;

impl Auth {
    /// Creates an API key with `role`, valid until `expires_at` (or until revoked). Returns it
    /// with the key itself, which is shown once and never stored.
    pub async fn create_api_key(
        &self,
        name: &str,
        role: Role,
        expires_at: Option<DateTime<Utc>>,
        created_by: &Actor,
    ) -> Result<(ApiKeyInfo, Secret), AuthError> {
        check_api_key_name(name)?;
        let now = self.now();
        if let Some(at) = expires_at
            && at <= now
        {
            return Err(AuthError::Invalid(format!(
                "API key `{name}` would expire at {at}, which has passed"
            )));
        }
        let key = random_token(API_KEY_PREFIX);
        let info = self
            .store()
            .create_api_key(
                &NewApiKey {
                    name,
                    prefix: &key.expose()[..API_KEY_SHOWN_CHARS],
                    key_sha256: &sha256_hex(key.expose()),
                    role,
                    expires_at,
                },
                created_by,
                now,
            )
            .await?;
        Ok((info, key))
    }

    /// Every API key, revoked ones included.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>, AuthError> {
        Ok(self.store().api_keys().await?)
    }

    /// Revokes an API key by id; requests with it are refused from now on.
    pub async fn revoke_api_key(&self, id: i64, by: &Actor) -> Result<ApiKeyInfo, AuthError> {
        self.store()
            .revoke_api_key(id, by, self.now())
            .await
            .map_err(|e| match e {
                StoreError::NotFound => AuthError::NotFound(format!("no API key with id {id}")),
                other => other.into(),
            })
    }

    /// Revokes the API key named `name` that is not revoked yet.
    pub async fn revoke_api_key_named(
        &self,
        name: &str,
        by: &Actor,
    ) -> Result<ApiKeyInfo, AuthError> {
        let info =
            self.store().live_api_key(name).await?.ok_or_else(|| {
                AuthError::NotFound(format!("no API key named `{name}` to revoke"))
            })?;
        self.revoke_api_key(info.id, by).await
    }
}
