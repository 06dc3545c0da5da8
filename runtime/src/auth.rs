//! Authentication and authorization: users with argon2id passwords, sessions holding rotating
//! refresh tokens, short-lived JWT access tokens, API keys, roles and their permissions, and the
//! audit trail of all of it.
//!
//! - [`Role`] and [`Permission`] (`auth/role.rs`): the one table of who may do what.
//! - `auth/password.rs`, `auth/token.rs`, `auth/secret.rs`: hashing, token signing and
//!   verification over a [`KeyRing`], secrets in memory. Pure: no database, no I/O.
//! - [`Auth`] (`auth/service.rs`): logins, refresh, logout, bearer verification, users, API
//!   keys and signing-key rotation over the [`Store`](crate::store::Store), which holds the
//!   state (and writes the audit entry of every change in the same transaction).
//!
//! Nothing here checks permissions on behalf of a caller: [`Principal::can`] answers, and the
//! HTTP layer asks it for every route.

use std::net::IpAddr;

use chrono::Duration;
use serde::Serialize;

use crate::store::StoreError;

mod password;
mod role;
mod secret;
mod service;
mod token;

pub use password::{
    MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, PasswordError, check_policy, generate_password,
    hash_password, verify_password,
};
pub use role::{Permission, Role};
pub use secret::Secret;
pub use service::{Auth, TokenPair};
pub use token::{
    AccessClaims, CLOCK_LEEWAY, ISSUER, KeyRing, MIN_SIGNING_KEY_BYTES, SigningKey, TokenRejection,
    token_kid,
};

/// What API keys start with, so that a bearer value is told apart from a JWT (which starts
/// with `eyJ`) without parsing, and so that secret scanners can spot leaked keys.
pub const API_KEY_PREFIX: &str = "oc_";

/// What refresh tokens start with.
pub const REFRESH_TOKEN_PREFIX: &str = "ocr_";

/// The username [`Auth::bootstrap_admin`] creates.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// The `action` of the audit entries this module writes. Other modules add their own, in the
/// same `noun.verb` form.
pub mod action {
    /// A password login; outcome `success` or `failure` (the reason is in `after`).
    pub const LOGIN: &str = "auth.login";
    /// A session ended by its own user.
    pub const LOGOUT: &str = "auth.logout";
    /// A refresh token presented a second time; the session is revoked.
    pub const REFRESH_REUSE: &str = "auth.refresh_reuse";
    /// A session revoked by someone (an administrator, or its user from another session).
    pub const SESSION_REVOKE: &str = "session.revoke";
    pub const USER_CREATE: &str = "user.create";
    pub const USER_DISABLE: &str = "user.disable";
    pub const USER_ENABLE: &str = "user.enable";
    pub const USER_SET_ROLE: &str = "user.set_role";
    pub const USER_SET_PASSWORD: &str = "user.set_password";
    pub const API_KEY_CREATE: &str = "api_key.create";
    pub const API_KEY_REVOKE: &str = "api_key.revoke";
    /// The first signing key, generated on first start.
    pub const SIGNING_KEY_CREATE: &str = "signing_key.create";
    pub const SIGNING_KEY_ROTATE: &str = "signing_key.rotate";
}

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

/// Where a request came from, as recorded on sessions and in the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// Who did something, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `user:alice`, `key:ci-bot`, `cli:root`, `system` or `anonymous`.
    pub name: String,
    pub role: Option<Role>,
    pub source_ip: Option<IpAddr>,
}

impl Actor {
    /// The runtime itself (first-start key generation, the bootstrap administrator).
    pub fn system() -> Actor {
        Actor {
            name: "system".to_owned(),
            role: None,
            source_ip: None,
        }
    }

    /// Someone at the command line, who has the database in hand and so every power; named by
    /// their login (`$USER`) when the environment says.
    pub fn cli() -> Actor {
        let name = match std::env::var("USER") {
            Ok(user) if !user.is_empty() => format!("cli:{user}"),
            _ => "cli".to_owned(),
        };
        Actor {
            name,
            role: None,
            source_ip: None,
        }
    }

    /// Someone not (yet) authenticated: a login attempt, a refresh token presented.
    pub fn anonymous(source_ip: Option<IpAddr>) -> Actor {
        Actor {
            name: "anonymous".to_owned(),
            role: None,
            source_ip,
        }
    }
}

/// An authenticated caller: a user through a session's access token, or an API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Principal {
    /// `user:<username>` or `key:<key name>`.
    pub actor: String,
    /// The role the store holds now (a changed role takes effect at the next request).
    pub role: Role,
    pub user_id: Option<i64>,
    pub api_key_id: Option<i64>,
    pub session_id: Option<String>,
}

impl Principal {
    /// Whether this caller may do `permission`.
    pub fn can(&self, permission: Permission) -> bool {
        self.role.allows(permission)
    }

    /// This caller as the audit log names it, for a request from `source_ip`.
    pub fn actor(&self, source_ip: Option<IpAddr>) -> Actor {
        Actor {
            name: self.actor.clone(),
            role: Some(self.role),
            source_ip,
        }
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

    #[test]
    fn principals_answer_with_their_role() {
        let viewer = Principal {
            actor: "user:vera".to_owned(),
            role: Role::Viewer,
            user_id: Some(3),
            api_key_id: None,
            session_id: Some("s".to_owned()),
        };
        assert!(viewer.can(Permission::Read));
        assert!(!viewer.can(Permission::ActOnAlerts));
        let actor = viewer.actor(Some("192.0.2.7".parse().unwrap()));
        assert_eq!(actor.name, "user:vera");
        assert_eq!(actor.role, Some(Role::Viewer));
    }
}
