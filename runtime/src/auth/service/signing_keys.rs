//! The signing keys in memory: reread when they may have changed elsewhere, and rotated.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;

use super::{Auth, LoadedKeys};
use crate::auth::AuthError;
use crate::identity::{Actor, CLOCK_LEEWAY, KeyRing, SigningKey};
use crate::store::Store;

/// How often a node rereads the signing keys before it signs, so that a rotation made elsewhere
/// (the CLI, another node) is followed within a minute. Verification rereads at once when it
/// meets an unknown key id, so tokens signed by the new key are accepted everywhere from the
/// start.
const KEY_RELOAD_INTERVAL: StdDuration = StdDuration::from_secs(60);

impl Auth {
    /// The keys to sign with, reread first when they were loaded longer ago than
    /// [`KEY_RELOAD_INTERVAL`].
    pub(super) async fn keys_for_signing(&self) -> Result<Arc<LoadedKeys>, AuthError> {
        let keys = self.inner.keys.load_full();
        if self.inner.configured_key || keys.loaded_at.elapsed() < KEY_RELOAD_INTERVAL {
            return Ok(keys);
        }
        self.reload_after_miss(&keys).await
    }

    /// Rereads the keys unless someone else did since `seen` was loaded (single flight).
    pub(super) async fn reload_after_miss(
        &self,
        seen: &Arc<LoadedKeys>,
    ) -> Result<Arc<LoadedKeys>, AuthError> {
        let _reloading = self.inner.reload.lock().await;
        let current = self.inner.keys.load_full();
        if !Arc::ptr_eq(&current, seen) {
            return Ok(current);
        }
        self.reload_keys().await
    }

    async fn reload_keys(&self) -> Result<Arc<LoadedKeys>, AuthError> {
        let ring = load_ring(self.store(), self.inner.access_ttl + CLOCK_LEEWAY).await?;
        let loaded = Arc::new(LoadedKeys {
            ring,
            loaded_at: Instant::now(),
        });
        self.inner.keys.store(loaded.clone());
        Ok(loaded)
    }

    /// Makes a new signing key the active one. Tokens signed by the previous key stay valid
    /// until they expire; keys retired longer ago than that are deleted. Returns the new key's
    /// id. Refused when the key comes from the configuration.
    pub async fn rotate_signing_key(&self, by: &Actor) -> Result<String, AuthError> {
        if self.inner.configured_key {
            return Err(AuthError::KeyFromConfig);
        }
        let now = self.now();
        let key = SigningKey::generate(now);
        let grace = self.inner.access_ttl + CLOCK_LEEWAY;
        self.store()
            .rotate_signing_key(&key, now - grace, by, now)
            .await?;
        let _reloading = self.inner.reload.lock().await;
        self.reload_keys().await?;
        Ok(key.kid)
    }
}

/// The stored signing keys as a ring, trusting retired ones for `grace`.
pub(super) async fn load_ring(store: &Store, grace: Duration) -> Result<KeyRing, AuthError> {
    KeyRing::new(store.signing_keys().await?, grace)
        .map_err(|e| AuthError::Config(format!("stored signing keys: {e}")))
}
