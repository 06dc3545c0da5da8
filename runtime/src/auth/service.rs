//! [`Auth`]: logins, refresh, logout, bearer verification, users, API keys and signing keys,
//! over the store. No SQL here; no permission checks either (see the module above).

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use arc_swap::ArcSwap;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::json;

use super::{AuthConfig, AuthError, BOOTSTRAP_ADMIN, check_api_key_name, normalize_username};
use crate::directory::{DirectoryError, LdapConfig};
use crate::identity::{
    API_KEY_PREFIX, AccessClaims, Actor, CLOCK_LEEWAY, ClientInfo, ISSUER, KeyRing, Principal,
    REFRESH_TOKEN_PREFIX, Role, Secret, SigningKey, TokenRejection, action, check_policy,
    dummy_hash, generate_password, hash_password, random_bytes, random_token, sha256_hex,
    verify_dummy, verify_password,
};
use crate::store::{
    ApiKeyInfo, AuditOutcome, AuditRecord, DIRECTORY_SOURCE, NewApiKey, NewSession, RefreshOutcome,
    SessionAuth, SessionFilter, SessionInfo, Store, StoreError, User,
};

/// How often a node rereads the signing keys before it signs, so that a rotation made elsewhere
/// (the CLI, another node) is followed within a minute. Verification rereads at once when it
/// meets an unknown key id, so tokens signed by the new key are accepted everywhere from the
/// start.
const KEY_RELOAD_INTERVAL: StdDuration = StdDuration::from_secs(60);

/// An API key's last use is recorded at most this often.
const API_KEY_TOUCH_INTERVAL: Duration = Duration::minutes(1);

/// How long ended sessions stay listed before a login of their user deletes them.
const ENDED_SESSION_RETENTION: Duration = Duration::days(30);

/// Lengths of the characters of an API key shown in listings (`oc_` and 8 more).
const API_KEY_SHOWN_CHARS: usize = API_KEY_PREFIX.len() + 8;

/// Longest user agent recorded on a session.
const MAX_USER_AGENT_CHARS: usize = 256;

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

/// Why a session (or its user) no longer authenticates at `now`, if it does not.
fn session_rejection(session: &SessionAuth, now: DateTime<Utc>) -> Option<TokenRejection> {
    if session.revoked_at.is_some() {
        Some(TokenRejection::SessionRevoked)
    } else if session.user_disabled {
        Some(TokenRejection::UserDisabled)
    } else if session.expires_at <= now {
        Some(TokenRejection::SessionExpired)
    } else {
        None
    }
}

fn user_principal(session: &SessionAuth) -> Principal {
    Principal {
        actor: format!("user:{}", session.username),
        role: session.role,
        user_id: Some(session.user_id),
        api_key_id: None,
        session_id: Some(session.session_id.clone()),
    }
}

fn user_actor(user: &User, client: &ClientInfo) -> Actor {
    Actor {
        name: format!("user:{}", user.username),
        role: Some(user.role),
        source_ip: client.ip,
    }
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
        let access_ttl = config.access_token_ttl;
        let refresh_ttl = config.refresh_token_ttl;
        if access_ttl < Duration::minutes(1) || access_ttl > Duration::days(1) {
            return Err(AuthError::Config(format!(
                "access_token_minutes is {}; it must be between 1 and 1440",
                access_ttl.num_minutes()
            )));
        }
        if refresh_ttl < Duration::days(1) || refresh_ttl > Duration::days(365) {
            return Err(AuthError::Config(format!(
                "refresh_token_days is {}; it must be between 1 and 365",
                refresh_ttl.num_days()
            )));
        }
        let session_lifetime = config.session_lifetime;
        if session_lifetime < Duration::days(1) || session_lifetime > Duration::days(365) {
            return Err(AuthError::Config(format!(
                "session_lifetime_days is {}; it must be between 1 and 365",
                session_lifetime.num_days()
            )));
        }
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

    // ---- sessions ----

    /// Signs a user in with a password: a new session, its access and refresh tokens. Every
    /// attempt is audited. A failure says only "invalid username or password", whatever the
    /// reason (unknown user, wrong password, disabled user, no local password), and costs one
    /// password verification in every case, so neither the answer nor its timing tells
    /// whether the user exists.
    pub async fn login_password(
        &self,
        username: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, AuthError> {
        let name = username.trim().to_lowercase();
        let found = match normalize_username(&name) {
            Ok(name) => self.store().user_credentials(&name).await?,
            Err(_) => None,
        };
        let password = password.to_owned();
        let (user, failure) = match found {
            Some(credentials) => match credentials.password_hash {
                Some(hash) => {
                    let matches = blocking(move || verify_password(&password, &hash)).await?;
                    // Disabled is checked after the password, so that it costs the same.
                    let failure = if !matches {
                        Some("wrong password")
                    } else if credentials.user.disabled {
                        Some("user disabled")
                    } else {
                        None
                    };
                    (Some(credentials.user), failure)
                }
                None => {
                    blocking(move || verify_dummy(&password)).await?;
                    (Some(credentials.user), Some("no local password"))
                }
            },
            None => {
                blocking(move || verify_dummy(&password)).await?;
                (None, Some("unknown user"))
            }
        };
        let now = self.now();
        let (Some(user), None) = (user, failure) else {
            // The name as typed, cut short: people sometimes type their password into the
            // username field, and the audit log should not keep more of that than it must.
            let attempted: String = name.chars().take(super::MAX_NAME_CHARS).collect();
            let record = AuditRecord::new(
                &Actor::anonymous(client.ip),
                action::LOGIN,
                Some(format!("user:{attempted}")),
                AuditOutcome::Failure,
            )
            .after(json!({ "reason": failure }));
            self.store().append_audit(&record, now).await?;
            return Err(AuthError::InvalidCredentials);
        };

        self.start_session(user, client, now).await
    }

    /// A new session for `user`, who has just proved who they are, with its tokens.
    async fn start_session(
        &self,
        user: User,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<TokenPair, AuthError> {
        let session_id = hex::encode(random_bytes::<16>());
        let refresh = random_token(REFRESH_TOKEN_PREFIX);
        let refresh_expires_at = now + self.inner.refresh_ttl.min(self.inner.session_lifetime);
        let user_agent = client
            .user_agent
            .as_deref()
            .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect::<String>());
        self.store()
            .create_session(
                &NewSession {
                    id: &session_id,
                    user_id: user.id,
                    username: &user.username,
                    refresh_token_sha256: &sha256_hex(refresh.expose()),
                    expires_at: refresh_expires_at,
                    client_ip: client.ip.map(|ip| ip.to_string()),
                    user_agent: user_agent.as_deref(),
                },
                &user_actor(&user, client),
                now,
                now - ENDED_SESSION_RETENTION,
            )
            .await?;
        let session = SessionAuth {
            session_id,
            user_id: user.id,
            username: user.username,
            role: user.role,
            user_disabled: false,
            expires_at: refresh_expires_at,
            revoked_at: None,
        };
        self.issue(&session, refresh, now).await
    }

    /// Signs a user in: through the directory when one is configured and the name is not a
    /// local user's (a user the directory created earlier is not local), else with the local
    /// password ([`Auth::login_password`]).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: &ClientInfo,
        directory: Option<&LdapConfig>,
    ) -> Result<TokenPair, AuthError> {
        if let Some(config) = directory {
            let local = match normalize_username(username.trim()) {
                Ok(name) => self.store().user(&name).await?,
                Err(_) => None,
            };
            if local.is_none_or(|user| user.source == DIRECTORY_SOURCE) {
                return self
                    .login_directory(config, username, password, client)
                    .await;
            }
        }
        self.login_password(username, password, client).await
    }

    /// Signs a user in through the directory: it checks the password and says which groups the
    /// user is in; the most privileged role those map to becomes the user's role (recorded,
    /// so that it shows in listings and takes effect on their sessions). Every attempt is
    /// audited like a password login.
    async fn login_directory(
        &self,
        config: &LdapConfig,
        username: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, AuthError> {
        let name = username.trim().to_lowercase();
        let attempted: String = name.chars().take(super::MAX_NAME_CHARS).collect();
        let failed = |reason: String| {
            AuditRecord::new(
                &Actor::anonymous(client.ip),
                action::LOGIN,
                Some(format!("user:{attempted}")),
                AuditOutcome::Failure,
            )
            .after(json!({ "reason": reason, "via": "ldap" }))
        };
        let now = self.now();
        let outcome = match normalize_username(&name) {
            Ok(_) => crate::directory::authenticate(config, &name, password).await,
            Err(_) => Err(DirectoryError::InvalidCredentials),
        };
        let found = match outcome {
            Ok(found) => found,
            Err(DirectoryError::Unavailable(why)) => {
                tracing::error!(error = %why, "directory login: directory unavailable");
                self.store()
                    .append_audit(&failed("directory unavailable".to_owned()), now)
                    .await?;
                return Err(AuthError::Unavailable(
                    "the directory is unavailable; try again later".to_owned(),
                ));
            }
            Err(e) => {
                let reason = match &e {
                    DirectoryError::NoRole { .. } => "in no group that maps to a role",
                    DirectoryError::Config(_) => "directory misconfigured",
                    _ => "wrong password or unknown user",
                };
                if let DirectoryError::Config(why) = &e {
                    tracing::error!(error = %why, "directory login: configuration");
                }
                self.store()
                    .append_audit(&failed(reason.to_owned()), now)
                    .await?;
                return Err(AuthError::InvalidCredentials);
            }
        };
        let role: Role = found
            .role
            .parse()
            .map_err(|e| AuthError::Config(format!("ldap group_roles: {e}")))?;
        let user = match self
            .store()
            .sync_directory_user(&name, role, &Actor::system(), now)
            .await
        {
            Ok(user) => user,
            Err(StoreError::Conflict(_)) => {
                self.store()
                    .append_audit(&failed("a local user has this name".to_owned()), now)
                    .await?;
                return Err(AuthError::InvalidCredentials);
            }
            Err(e) => return Err(e.into()),
        };
        if user.disabled {
            self.store()
                .append_audit(&failed("user disabled".to_owned()), now)
                .await?;
            return Err(AuthError::InvalidCredentials);
        }
        self.start_session(user, client, now).await
    }

    /// Trades a refresh token for a new pair. The token presented is used up; presenting it
    /// again later revokes the whole session ([`AuthError::RefreshTokenReused`]), because only
    /// a copy of it can be presented twice.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, AuthError> {
        if !well_formed(refresh_token, REFRESH_TOKEN_PREFIX) {
            return Err(TokenRejection::UnknownRefreshToken.into());
        }
        let now = self.now();
        let presented = sha256_hex(refresh_token);
        // Looked up on a reader first: a flood of well-formed made-up tokens must not queue
        // write transactions on the database that alert ingest writes to.
        if !self.store().refresh_token_known(&presented).await? {
            return Err(TokenRejection::UnknownRefreshToken.into());
        }
        let next = random_token(REFRESH_TOKEN_PREFIX);
        let outcome = self
            .store()
            .rotate_refresh_token(
                &presented,
                &sha256_hex(next.expose()),
                now + self.inner.refresh_ttl,
                self.inner.session_lifetime,
                &Actor::anonymous(client.ip),
                now,
            )
            .await?;
        match outcome {
            RefreshOutcome::Rotated(session) => self.issue(&session, next, now).await,
            RefreshOutcome::Reused(session) => {
                tracing::warn!(
                    session = %session.session_id,
                    user = %session.username,
                    "refresh token reused; session revoked"
                );
                Err(AuthError::RefreshTokenReused)
            }
            RefreshOutcome::Unknown => Err(TokenRejection::UnknownRefreshToken.into()),
            RefreshOutcome::Expired => Err(TokenRejection::RefreshTokenExpired.into()),
            RefreshOutcome::Inactive(session) => Err(session_rejection(&session, now)
                .unwrap_or(TokenRejection::SessionExpired)
                .into()),
        }
    }

    /// The access token for `session` plus `refresh`, as handed out.
    async fn issue(
        &self,
        session: &SessionAuth,
        refresh: Secret,
        now: DateTime<Utc>,
    ) -> Result<TokenPair, AuthError> {
        let access_expires_at = now + self.inner.access_ttl;
        let claims = AccessClaims {
            iss: ISSUER.to_owned(),
            sub: session.user_id.to_string(),
            sid: session.session_id.clone(),
            name: session.username.clone(),
            role: session.role,
            iat: now.timestamp(),
            exp: access_expires_at.timestamp(),
        };
        let keys = self.keys_for_signing().await?;
        Ok(TokenPair {
            access_token: keys.ring.sign(&claims),
            access_expires_at,
            refresh_token: refresh,
            refresh_expires_at: session.expires_at,
            principal: user_principal(session),
        })
    }

    /// Ends the caller's own session (the access token and every refresh token of it stop
    /// working at once). API keys have no session: revoke the key instead.
    pub async fn logout(
        &self,
        principal: &Principal,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let Some(session_id) = &principal.session_id else {
            return Err(AuthError::Invalid(
                "an API key has no session to log out of; revoke the key instead".to_owned(),
            ));
        };
        self.store()
            .revoke_session(
                session_id,
                "logout",
                action::LOGOUT,
                &principal.actor(client.ip),
                self.now(),
            )
            .await
            .map_err(|e| match e {
                StoreError::NotFound => AuthError::NotFound(format!("no session `{session_id}`")),
                other => other.into(),
            })?;
        Ok(())
    }

    /// Sessions matching `filter`, newest first. Whether the caller may see other users'
    /// sessions is the caller's check.
    pub async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionInfo>, AuthError> {
        Ok(self.store().sessions(filter).await?)
    }

    /// One session, e.g. to check whose it is before revoking it.
    pub async fn session(&self, session_id: &str) -> Result<Option<SessionInfo>, AuthError> {
        Ok(self.store().session(session_id).await?)
    }

    /// Revokes a session on behalf of `by`. Returns false when it was already revoked.
    pub async fn revoke_session(&self, session_id: &str, by: &Actor) -> Result<bool, AuthError> {
        self.store()
            .revoke_session(
                session_id,
                &format!("revoked by {}", by.name),
                action::SESSION_REVOKE,
                by,
                self.now(),
            )
            .await
            .map_err(|e| match e {
                StoreError::NotFound => AuthError::NotFound(format!("no session `{session_id}`")),
                other => other.into(),
            })
    }

    // ---- verification ----

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

    // ---- signing keys ----

    async fn keys_for_signing(&self) -> Result<Arc<LoadedKeys>, AuthError> {
        let keys = self.inner.keys.load_full();
        if self.inner.configured_key || keys.loaded_at.elapsed() < KEY_RELOAD_INTERVAL {
            return Ok(keys);
        }
        self.reload_after_miss(&keys).await
    }

    /// Rereads the keys unless someone else did since `seen` was loaded (single flight).
    async fn reload_after_miss(
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

    // ---- users ----

    /// Creates a local user. Without a password, one is generated and returned (to be shown
    /// once); a given password must meet the policy.
    pub async fn create_user(
        &self,
        username: &str,
        role: Role,
        password: Option<&Secret>,
        by: &Actor,
    ) -> Result<(User, Option<Secret>), AuthError> {
        let username = normalize_username(username)?;
        let (password, generated) = self.password_or_generated(password)?;
        let hash = hash(&password).await?;
        let user = self
            .store()
            .create_user(&username, role, Some(&hash), by, self.now())
            .await?;
        Ok((user, generated.then_some(password)))
    }

    fn password_or_generated(
        &self,
        password: Option<&Secret>,
    ) -> Result<(Secret, bool), AuthError> {
        match password {
            Some(password) => {
                check_policy(password.expose())?;
                Ok((password.clone(), false))
            }
            None => Ok((generate_password(), true)),
        }
    }

    /// Creates user `admin` (an administrator) with a generated password, returned to be shown
    /// once, if and only if there is no user at all. `None` otherwise, also when another node
    /// did it at the same time.
    pub async fn bootstrap_admin(&self) -> Result<Option<Secret>, AuthError> {
        if self.store().count_users().await? > 0 {
            return Ok(None);
        }
        let password = generate_password();
        let hash = hash(&password).await?;
        let created = self
            .store()
            .bootstrap_user(BOOTSTRAP_ADMIN, &hash, &Actor::system(), self.now())
            .await?;
        Ok(created.map(|_| password))
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>, AuthError> {
        Ok(self.store().users().await?)
    }

    /// One user by name (any case).
    pub async fn user(&self, username: &str) -> Result<Option<User>, AuthError> {
        Ok(self.store().user(&username.to_lowercase()).await?)
    }

    /// Sets a user's password (generated and returned when `None`) and signs them out
    /// everywhere.
    pub async fn set_password(
        &self,
        username: &str,
        password: Option<&Secret>,
        by: &Actor,
    ) -> Result<Option<Secret>, AuthError> {
        let username = username.to_lowercase();
        let (password, generated) = self.password_or_generated(password)?;
        let hash = hash(&password).await?;
        self.store()
            .set_user_password(&username, &hash, by, self.now())
            .await
            .map_err(|e| no_user(e, &username))?;
        Ok(generated.then_some(password))
    }

    /// Changes role, disabled and password together, all or nothing (see
    /// [`Store::change_user`]). `password`: `Some(None)` generates one, returned once.
    pub async fn update_user(
        &self,
        username: &str,
        role: Option<Role>,
        disabled: Option<bool>,
        password: Option<Option<&Secret>>,
        by: &Actor,
    ) -> Result<(User, Option<Secret>), AuthError> {
        let username = username.to_lowercase();
        let mut generated = None;
        let mut hashed = None;
        if let Some(given) = password {
            let (password, was_generated) = self.password_or_generated(given)?;
            hashed = Some(hash(&password).await?);
            generated = was_generated.then_some(password);
        }
        let mut changes = Vec::new();
        changes.extend(role.map(crate::store::UserChange::Role));
        changes.extend(disabled.map(crate::store::UserChange::Disabled));
        changes.extend(
            hashed
                .as_deref()
                .map(crate::store::UserChange::PasswordHash),
        );
        let user = self
            .store()
            .change_user(&username, &changes, by, self.now())
            .await
            .map_err(|e| no_user(e, &username))?;
        Ok((user, generated))
    }

    /// Disables a user (their sessions are revoked) or enables them again. Refused for the last
    /// enabled administrator.
    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        by: &Actor,
    ) -> Result<User, AuthError> {
        let username = username.to_lowercase();
        self.store()
            .set_user_disabled(&username, disabled, by, self.now())
            .await
            .map_err(|e| no_user(e, &username))
    }

    /// Changes a user's role, effective at their next request. Refused for the last enabled
    /// administrator.
    pub async fn set_user_role(
        &self,
        username: &str,
        role: Role,
        by: &Actor,
    ) -> Result<User, AuthError> {
        let username = username.to_lowercase();
        self.store()
            .set_user_role(&username, role, by, self.now())
            .await
            .map_err(|e| no_user(e, &username))
    }

    // ---- API keys ----

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

fn no_user(e: StoreError, username: &str) -> AuthError {
    match e {
        StoreError::NotFound => AuthError::NotFound(format!("no user named `{username}`")),
        other => other.into(),
    }
}

async fn load_ring(store: &Store, grace: Duration) -> Result<KeyRing, AuthError> {
    KeyRing::new(store.signing_keys().await?, grace)
        .map_err(|e| AuthError::Config(format!("stored signing keys: {e}")))
}
