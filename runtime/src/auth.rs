//! Authentication: logins with argon2id passwords (or through the directory), sessions holding
//! rotating refresh tokens, short-lived JWT access tokens, API keys and signing-key rotation,
//! with the audit trail of all of it.
//!
//! - [`Auth`] (`auth/service.rs` and `auth/service/`): logins, refresh, logout, bearer
//!   verification, users, API keys and signing-key rotation over the
//!   [`Store`](crate::store::Store), which holds the state (and writes the audit entry of every
//!   change in the same transaction).
//! - The pure parts — roles and permissions, password hashing, tokens over a key ring, secrets,
//!   actors and principals, the audit actions — live in [`crate::identity`], below the store
//!   that records them, and are re-exported here under the names callers have always used.
//!
//! Nothing here checks permissions on behalf of a caller: [`Principal::can`] answers, and the
//! HTTP layer asks it for every route.

use chrono::Duration;

pub use crate::identity::{
    API_KEY_PREFIX, AccessClaims, Actor, CLOCK_LEEWAY, ClientInfo, ISSUER, KeyRing,
    MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, MIN_SIGNING_KEY_BYTES, PasswordError, Permission,
    Principal, REFRESH_TOKEN_PREFIX, Role, Secret, SigningKey, TokenRejection, action,
    check_policy, generate_password, hash_password, token_kid, verify_password,
};
use crate::store::StoreError;

mod service;

pub use service::{Auth, ProviderAnswer, TokenPair};

/// The username [`Auth::bootstrap_admin`] creates.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// Token lifetimes and where the signing key comes from (see [`crate::config::Config::auth`]).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `jwt_signing_key`: standard base64 of at least [`MIN_SIGNING_KEY_BYTES`] bytes. When
    /// absent, a key is generated and stored in the database on first start (and can be
    /// rotated); when present, it is the only key, and rotation means changing it here.
    pub signing_key: Option<Secret>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// How long a session lasts from sign-in, however often it is refreshed.
    pub session_lifetime: Duration,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            signing_key: None,
            access_token_ttl: Duration::minutes(15),
            refresh_token_ttl: Duration::days(30),
            session_lifetime: Duration::days(90),
        }
    }
}

impl AuthConfig {
    /// The lifetimes within their ranges and the configured signing key usable: what can be
    /// checked without a database (at start, and by `opsconductor config check`).
    pub fn check(&self) -> Result<(), AuthError> {
        let access = self.access_token_ttl;
        if access < Duration::minutes(1) || access > Duration::days(1) {
            return Err(AuthError::Config(format!(
                "access_token_minutes is {}; it must be between 1 and 1440",
                access.num_minutes()
            )));
        }
        let refresh = self.refresh_token_ttl;
        if refresh < Duration::days(1) || refresh > Duration::days(365) {
            return Err(AuthError::Config(format!(
                "refresh_token_days is {}; it must be between 1 and 365",
                refresh.num_days()
            )));
        }
        let session = self.session_lifetime;
        if session < Duration::days(1) || session > Duration::days(365) {
            return Err(AuthError::Config(format!(
                "session_lifetime_days is {}; it must be between 1 and 365",
                session.num_days()
            )));
        }
        if let Some(encoded) = &self.signing_key {
            SigningKey::from_base64(encoded, chrono::Utc::now()).map_err(AuthError::Config)?;
        }
        Ok(())
    }
}

/// Why an authentication operation failed. Messages are safe to show to the caller: a failed
/// login never says whether the user exists.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("{0}")]
    Rejected(#[from] TokenRejection),
    #[error("the refresh token was already used, so its session has been revoked; sign in again")]
    RefreshTokenReused,
    /// Bad input (a username, password or name that breaks a rule); the message names it.
    #[error("{0}")]
    Invalid(String),
    /// The user, key or session named does not exist; the message names it.
    #[error("{0}")]
    NotFound(String),
    /// The change would break a rule (a name taken, the last administrator disabled).
    #[error("{0}")]
    Conflict(String),
    #[error(
        "the signing key comes from the configuration (jwt_signing_key); rotate it by changing \
         it there"
    )]
    KeyFromConfig,
    #[error("invalid auth configuration: {0}")]
    Config(String),
    /// A service the operation needs (the directory) does not answer; the message says which.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> AuthError {
        match e {
            StoreError::Conflict(m) => AuthError::Conflict(m),
            StoreError::Invalid(m) => AuthError::Invalid(m),
            other => AuthError::Store(other),
        }
    }
}

impl From<PasswordError> for AuthError {
    fn from(e: PasswordError) -> AuthError {
        match e {
            PasswordError::Hash(_) => AuthError::Internal(e.to_string()),
            _ => AuthError::Invalid(e.to_string()),
        }
    }
}

/// Longest username and API key name.
pub const MAX_NAME_CHARS: usize = 64;

/// A username as stored: lowercased (so `Alice` and `alice` are one user), 1 to 64 of
/// `a-z 0-9 . _ @ -`, starting with a letter or digit.
pub fn normalize_username(username: &str) -> Result<String, AuthError> {
    let name = username.to_lowercase();
    check_name(&name, "username", |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '@' | '-')
    })?;
    Ok(name)
}

/// An API key name: 1 to 64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit (it
/// appears as `key:<name>` in the audit log).
pub fn check_api_key_name(name: &str) -> Result<(), AuthError> {
    check_name(name, "API key name", |c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
    })
}

fn check_name(name: &str, what: &str, allowed: impl Fn(char) -> bool) -> Result<(), AuthError> {
    let invalid = |why: &str| Err(AuthError::Invalid(format!("{what} `{name}` {why}")));
    if name.is_empty() {
        return Err(AuthError::Invalid(format!("{what} must not be empty")));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return invalid(&format!("is longer than {MAX_NAME_CHARS} characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return invalid("must start with a letter or digit");
    }
    if let Some(c) = name.chars().find(|&c| !allowed(c)) {
        return invalid(&format!("contains `{c}`, which is not allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_checked() {
        assert_eq!(normalize_username("Alice").unwrap(), "alice");
        assert_eq!(
            normalize_username("ops.bot-1@example.com").unwrap(),
            "ops.bot-1@example.com"
        );
        for (bad, why) in [
            ("", "must not be empty"),
            ("-x", "must start with a letter or digit"),
            ("a b", "contains ` `"),
            ("a:b", "contains `:`"),
        ] {
            let err = normalize_username(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let long = "a".repeat(MAX_NAME_CHARS + 1);
        assert!(normalize_username(&long).is_err());
        assert!(normalize_username(&long[1..]).is_ok());
    }

    #[test]
    fn api_key_names_are_checked() {
        assert!(check_api_key_name("CI-bot_2.prod").is_ok());
        let err = check_api_key_name("ci bot").unwrap_err().to_string();
        assert_eq!(
            err,
            "API key name `ci bot` contains ` `, which is not allowed"
        );
    }
}
