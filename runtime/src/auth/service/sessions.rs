//! Signing in (a local password or the directory), trading a refresh token for new tokens,
//! signing out, and listing and revoking sessions.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::{Auth, TokenPair, blocking, well_formed};
use crate::auth::{AuthError, MAX_NAME_CHARS, normalize_username};
use crate::directory::{DirectoryError, LdapConfig};
use crate::identity::{
    AccessClaims, Actor, ClientInfo, ISSUER, Principal, REFRESH_TOKEN_PREFIX, Role, Secret,
    TokenRejection, action, random_bytes, random_token, sha256_hex, verify_dummy, verify_password,
};
use crate::store::{
    AuditOutcome, AuditRecord, DIRECTORY_SOURCE, NewSession, RefreshOutcome, SessionAuth,
    SessionFilter, SessionInfo, StoreError, User,
};

/// How long ended sessions stay listed before a login of their user deletes them.
const ENDED_SESSION_RETENTION: Duration = Duration::days(30);

/// Longest user agent recorded on a session.
const MAX_USER_AGENT_CHARS: usize = 256;

impl Auth {
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
            let attempted: String = name.chars().take(MAX_NAME_CHARS).collect();
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
    pub(super) async fn start_session(
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
        let attempted: String = name.chars().take(MAX_NAME_CHARS).collect();
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
            .sync_external_user(&name, DIRECTORY_SOURCE, role, &Actor::system(), now)
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
}

/// Why a session (or its user) no longer authenticates at `now`, if it does not.
pub(super) fn session_rejection(
    session: &SessionAuth,
    now: DateTime<Utc>,
) -> Option<TokenRejection> {
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

/// Who a session's access token stands for.
pub(super) fn user_principal(session: &SessionAuth) -> Principal {
    Principal {
        actor: format!("user:{}", session.username),
        role: session.role,
        user_id: Some(session.user_id),
        api_key_id: None,
        session_id: Some(session.session_id.clone()),
    }
}

/// A user who has just proved who they are, as the audit entry of their login names them.
pub(super) fn user_actor(user: &User, client: &ClientInfo) -> Actor {
    Actor {
        name: format!("user:{}", user.username),
        role: Some(user.role),
        source_ip: client.ip,
    }
}
