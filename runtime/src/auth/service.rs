//! [`Auth`]: the authentication service over the store — its state (the store, the token
//! lifetimes, the signing keys in memory, the clock) and its start; what it does is in one file
//! per job under `service/`: logins, refresh and sessions (`sessions.rs`), bearer verification
//! (`verify.rs`), signing keys (`signing_keys.rs`), users (`users.rs`) and API keys
//! (`api_keys.rs`). No SQL here; no permission checks either (see the module above).

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use chrono::{DateTime, Duration, SubsecRound, Utc};

use super::{AuthConfig, AuthError};
use crate::identity::{
    Actor, CLOCK_LEEWAY, KeyRing, Principal, Secret, SigningKey, dummy_hash, hash_password,
};
use crate::store::Store;

mod api_keys;
mod sessions;
mod signing_keys;
mod sso;
mod users;
mod verify;

use signing_keys::load_ring;
pub use sso::ProviderAnswer;

/// Where [`Auth`] gets the time when not from the system. Tests substitute a clock they move by
/// hand, so that expiry is tested without waiting.
pub(crate) type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What a login or a refresh hands the client: a short-lived access token for every request and
/// the refresh token that gets the next one (used once).
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: Secret,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: Secret,
    pub refresh_expires_at: DateTime<Utc>,
    /// Who the tokens stand for.
    pub principal: Principal,
}

/// The authentication service. Cheap to clone; every clone shares the signing keys.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    access_ttl: Duration,
    refresh_ttl: Duration,
    session_lifetime: Duration,
    /// The key came from the configuration: the ring never changes and is never reloaded.
    configured_key: bool,
    keys: ArcSwap<LoadedKeys>,
    /// Held while rereading the keys, so that a burst of tokens with an unknown key id costs one
    /// read, not one each.
    reload: tokio::sync::Mutex<()>,
    /// `None`: the system clock.
    clock: Option<Clock>,
}

struct LoadedKeys {
    ring: KeyRing,
    loaded_at: Instant,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("active_kid", &self.inner.keys.load().ring.active().kid)
            .field("access_ttl", &self.inner.access_ttl)
            .field("refresh_ttl", &self.inner.refresh_ttl)
            .finish_non_exhaustive()
    }
}

/// Runs password hashing off the async threads (it takes tens of milliseconds of CPU).
/// Password hashes computed at once: argon2id takes about 19 MiB and tens of milliseconds of
/// a core each, so a flood of logins would otherwise take as many blocking threads and as much
/// memory as it liked. One per core; the rest wait their turn.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    })
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AuthError> {
    let _slot = hashing_slots()
        .acquire()
        .await
        .map_err(|e| AuthError::Internal(format!("password hashing slots: {e}")))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AuthError::Internal(format!("password hashing task failed: {e}")))
}

async fn hash(password: &Secret) -> Result<String, AuthError> {
    let password = password.clone();
    Ok(blocking(move || hash_password(password.expose())).await??)
}

/// A string that looks like one of our tokens with `prefix` (43 base64url characters after
/// it), checked before any database read.
fn well_formed(token: &str, prefix: &str) -> bool {
    token.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    })
}

impl Auth {
    /// Starts the service: checks the configuration and loads the signing keys, generating and
    /// storing the first one when the configuration gives none and the database has none.
    pub async fn new(store: Store, config: AuthConfig) -> Result<Auth, AuthError> {
        Auth::start(store, config, None).await
    }

    /// [`Auth::new`] with a clock of the test's own.
    #[cfg(test)]
    pub(crate) async fn with_clock(
        store: Store,
        config: AuthConfig,
        clock: Clock,
    ) -> Result<Auth, AuthError> {
        Auth::start(store, config, Some(clock)).await
    }

    async fn start(
        store: Store,
        config: AuthConfig,
        clock: Option<Clock>,
    ) -> Result<Auth, AuthError> {
        config.check()?;
        let access_ttl = config.access_token_ttl;
        let refresh_ttl = config.refresh_token_ttl;
        let session_lifetime = config.session_lifetime;
        let grace = access_ttl + CLOCK_LEEWAY;
        let now = clock
            .as_ref()
            .map_or_else(Utc::now, |c| c())
            .trunc_subsecs(6);

        let (ring, configured_key) = match &config.signing_key {
            Some(encoded) => {
                let key = SigningKey::from_base64(encoded, now).map_err(AuthError::Config)?;
                (
                    KeyRing::new(vec![key], grace).map_err(AuthError::Config)?,
                    true,
                )
            }
            None => {
                store
                    .create_first_signing_key(&SigningKey::generate(now), &Actor::system(), now)
                    .await?;
                (load_ring(&store, grace).await?, false)
            }
        };
        // Made now, off the async threads, so that the first failed login does not pay for it
        // (which would tell that its user does not exist).
        blocking(|| {
            dummy_hash();
        })
        .await?;
        Ok(Auth {
            inner: Arc::new(Inner {
                store,
                access_ttl,
                refresh_ttl,
                session_lifetime,
                configured_key,
                keys: ArcSwap::from_pointee(LoadedKeys {
                    ring,
                    loaded_at: Instant::now(),
                }),
                reload: tokio::sync::Mutex::new(()),
                clock,
            }),
        })
    }

    fn now(&self) -> DateTime<Utc> {
        let now = match &self.inner.clock {
            Some(clock) => clock(),
            None => Utc::now(),
        };
        now.trunc_subsecs(6)
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    /// How long an access token lives.
    pub fn access_token_ttl(&self) -> Duration {
        self.inner.access_ttl
    }

    /// The id of the key that signs new access tokens.
    pub fn active_kid(&self) -> String {
        self.inner.keys.load().ring.active().kid.clone()
    }
}
