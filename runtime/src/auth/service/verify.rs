//! Who a bearer value stands for: an access token checked against its session, or an API key.

use chrono::Duration;

use super::sessions::{session_rejection, user_principal};
use super::{Auth, well_formed};
use crate::auth::AuthError;
use crate::identity::{API_KEY_PREFIX, Principal, TokenRejection, sha256_hex};

/// An API key's last use is recorded at most this often.
const API_KEY_TOUCH_INTERVAL: Duration = Duration::minutes(1);

impl Auth {
    /// Who a bearer value (`Authorization: Bearer …`) stands for: an access token (signed by a
    /// trusted key, not expired, its session live and its user enabled — the session is read
    /// from the store on every call, so a revocation takes effect at once) or an API key (not
    /// revoked or expired; its last use is recorded at most once a minute).
    pub async fn verify(&self, bearer: &str) -> Result<Principal, AuthError> {
        if bearer.starts_with(API_KEY_PREFIX) {
            return self.verify_api_key(bearer).await;
        }
        let now = self.now();
        let keys = self.inner.keys.load_full();
        let claims = match keys.ring.verify(bearer, now) {
            Err(TokenRejection::UnknownKey) if !self.inner.configured_key => {
                // Perhaps rotated elsewhere since we last looked.
                self.reload_after_miss(&keys)
                    .await?
                    .ring
                    .verify(bearer, now)?
            }
            other => other?,
        };
        let session = self
            .store()
            .session_auth(&claims.sid)
            .await?
            .ok_or(TokenRejection::UnknownSession)?;
        if session.user_id.to_string() != claims.sub {
            return Err(TokenRejection::Malformed.into());
        }
        if let Some(rejection) = session_rejection(&session, now) {
            return Err(rejection.into());
        }
        Ok(user_principal(&session))
    }

    async fn verify_api_key(&self, key: &str) -> Result<Principal, AuthError> {
        if !well_formed(key, API_KEY_PREFIX) {
            return Err(TokenRejection::UnknownApiKey.into());
        }
        let now = self.now();
        let info = self
            .store()
            .api_key_by_sha256(&sha256_hex(key))
            .await?
            .ok_or(TokenRejection::UnknownApiKey)?;
        if info.revoked_at.is_some() {
            return Err(TokenRejection::ApiKeyRevoked.into());
        }
        if info.expires_at.is_some_and(|at| at <= now) {
            return Err(TokenRejection::ApiKeyExpired.into());
        }
        let stale = now - API_KEY_TOUCH_INTERVAL;
        if info.last_used_at.is_none_or(|at| at <= stale) {
            // Bookkeeping only: a failed write must not refuse a valid key.
            if let Err(error) = self.store().touch_api_key(info.id, now, stale).await {
                tracing::warn!(key = %info.name, error = %error, "cannot record an API key's use");
            }
        }
        Ok(Principal {
            actor: format!("key:{}", info.name),
            role: info.role,
            user_id: None,
            api_key_id: Some(info.id),
            session_id: None,
        })
    }
}
