//! Who is who and what they may do, as plain values: roles and their permissions, password
//! hashing, access tokens signed over a [`KeyRing`], secrets in memory, and how callers and
//! their actions are named in the audit log.
//!
//! - [`Role`] and [`Permission`] (`identity/role.rs`): the one table of who may do what.
//! - `identity/password.rs`, `identity/token.rs`, `identity/secret.rs`: hashing, token signing
//!   and verification over a [`KeyRing`], secrets in memory.
//! - [`Actor`], [`Principal`], [`ClientInfo`] and the audit [`action`]s (here).
//!
//! **Architecture Invariant:** pure — no database, no I/O — and below both users of it: the
//! store records these values (users' roles, signing keys, audit entries) and the `Auth`
//! service in `auth` works with them over the store. So this module imports neither, which is
//! what keeps `auth` and `store` out of an import cycle.

use std::net::IpAddr;

use serde::Serialize;

mod password;
mod role;
mod secret;
mod token;

pub use password::{
    MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, PasswordError, check_policy, generate_password,
    hash_password, verify_password,
};
pub(crate) use password::{dummy_hash, verify_dummy};
pub use role::{Permission, Role};
pub use secret::Secret;
pub(crate) use secret::{random_bytes, random_token, sha256_hex};
pub use token::{
    AccessClaims, CLOCK_LEEWAY, ISSUER, KeyRing, MIN_SIGNING_KEY_BYTES, SigningKey, TokenRejection,
    token_kid,
};

/// What API keys start with, so that a bearer value is told apart from a JWT (which starts
/// with `eyJ`) without parsing, and so that secret scanners can spot leaked keys.
pub const API_KEY_PREFIX: &str = "oc_";

/// What refresh tokens start with.
pub const REFRESH_TOKEN_PREFIX: &str = "ocr_";

/// The `action` of the audit entries of authentication: logins, sessions, users, API keys and
/// signing keys. Other modules add their own, in the same `noun.verb` form.
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

#[cfg(test)]
mod tests {
    use super::*;

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
