//! Optional directory login: authenticates a user against LDAP or Active Directory and maps
//! the user's groups to a role.
//!
//! The usual search-then-bind: bind as the service account (or anonymously), find the user's
//! entry with `user_filter`, bind as that entry with the given password, then read the user's
//! groups — by searching `group_base` with `group_filter`, or from an attribute of the user
//! such as Active Directory's `memberOf` — and map them through `group_roles`; when several
//! groups map, the most privileged role wins. A user in no mapped group is refused.
//!
//! **Security:** the user name is escaped before it goes into a filter (RFC 4515), and an
//! empty password is refused before any bind: LDAP treats a simple bind with a DN and no
//! password as an *unauthenticated* bind that succeeds.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};
use serde::Deserialize;

/// Directory settings (`[ldap]` in the configuration file).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before sending any credential.
    #[serde(default)]
    pub starttls: bool,
    /// The account that searches; absent: anonymous search.
    #[serde(default)]
    pub bind_dn: Option<String>,
    #[serde(default)]
    pub bind_password: Option<String>,
    /// Where users live, e.g. `ou=people,dc=example,dc=org`.
    pub user_base: String,
    /// `{username}` is replaced by the escaped user name. Active Directory:
    /// `(&(objectClass=user)(sAMAccountName={username}))`.
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    /// Where groups live; with `group_filter`, groups are found by searching here.
    #[serde(default)]
    pub group_base: Option<String>,
    /// `{dn}` is replaced by the escaped DN of the user.
    #[serde(default = "default_group_filter")]
    pub group_filter: String,
    /// Read groups from this attribute of the user entry instead (e.g. `memberOf`).
    #[serde(default)]
    pub group_attribute: Option<String>,
    /// Group DN (compared case-insensitively) or group `cn` → role name.
    pub group_roles: BTreeMap<String, String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

impl fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapConfig")
            .field("url", &self.url)
            .field("starttls", &self.starttls)
            .field("bind_dn", &self.bind_dn)
            .field(
                "bind_password",
                &self.bind_password.as_ref().map(|_| "<redacted>"),
            )
            .field("user_base", &self.user_base)
            .field("user_filter", &self.user_filter)
            .field("group_base", &self.group_base)
            .field("group_filter", &self.group_filter)
            .field("group_attribute", &self.group_attribute)
            .field("group_roles", &self.group_roles)
            .finish()
    }
}

fn default_user_filter() -> String {
    "(&(objectClass=person)(uid={username}))".into()
}

fn default_group_filter() -> String {
    "(|(member={dn})(uniqueMember={dn}))".into()
}

fn default_timeout_ms() -> u64 {
    5_000
}

/// Roles a directory group may grant, least to most privileged.
pub const ROLE_RANKS: &[&str] = &["viewer", "service", "operator", "admin"];

/// The most privileged of `roles` by [`ROLE_RANKS`]; the directory and the OpenID Connect
/// provider both grant this one when several groups map.
pub fn most_privileged<'a>(roles: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    roles.max_by_key(|role| ROLE_RANKS.iter().position(|r| r == role))
}

/// A user the directory vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub dn: String,
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// Group DNs.
    pub groups: Vec<String>,
    /// The most privileged role the groups map to.
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// Unknown user or wrong password: deliberately one error, so a caller cannot tell which.
    #[error("invalid user name or password")]
    InvalidCredentials,
    #[error("user `{username}` is in no group that maps to a role (groups: {groups:?})")]
    NoRole {
        username: String,
        groups: Vec<String>,
    },
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    #[error("directory configuration: {0}")]
    Config(String),
}

impl LdapConfig {
    /// Checks what can be checked without a server.
    pub fn validate(&self) -> Result<(), DirectoryError> {
        let bad = |m: String| Err(DirectoryError::Config(m));
        if !(self.url.starts_with("ldap://") || self.url.starts_with("ldaps://")) {
            return bad(format!(
                "url `{}` must start with ldap:// or ldaps://",
                self.url
            ));
        }
        if self.bind_dn.is_some() != self.bind_password.is_some() {
            return bad("bind_dn and bind_password go together".into());
        }
        if !self.user_filter.contains("{username}") {
            return bad("user_filter must contain {username}".into());
        }
        if self.group_attribute.is_none() && self.group_base.is_none() {
            return bad("set group_base (group search) or group_attribute (e.g. memberOf)".into());
        }
        if self.group_attribute.is_none() && !self.group_filter.contains("{dn}") {
            return bad("group_filter must contain {dn}".into());
        }
        for (group, role) in &self.group_roles {
            if !ROLE_RANKS.contains(&role.as_str()) {
                return bad(format!(
                    "group_roles.{group}: `{role}` is not one of {}",
                    ROLE_RANKS.join(", ")
                ));
            }
        }
        if self.group_roles.is_empty() {
            return bad("group_roles maps no group to a role".into());
        }
        Ok(())
    }

    /// The most privileged role that `groups` map to.
    pub fn role_for(&self, groups: &[String]) -> Option<String> {
        let cn = |dn: &str| {
            dn.split(',')
                .next()
                .and_then(|rdn| rdn.split_once('='))
                .filter(|(attr, _)| attr.trim().eq_ignore_ascii_case("cn"))
                .map(|(_, v)| v.trim().to_owned())
        };
        most_privileged(groups.iter().filter_map(|g| {
            self.group_roles.iter().find_map(|(key, role)| {
                let matches = key.eq_ignore_ascii_case(g)
                    || cn(g).is_some_and(|c| c.eq_ignore_ascii_case(key));
                matches.then_some(role)
            })
        }))
        .cloned()
    }
}

fn unavailable(e: impl fmt::Display) -> DirectoryError {
    DirectoryError::Unavailable(e.to_string())
}

/// Authenticates `username` with `password` and returns who they are and their role.
pub async fn authenticate(
    config: &LdapConfig,
    username: &str,
    password: &str,
) -> Result<DirectoryUser, DirectoryError> {
    if username.is_empty() || password.is_empty() || username.len() > 256 {
        return Err(DirectoryError::InvalidCredentials);
    }
    config.validate()?;
    let timeout = Duration::from_millis(config.timeout_ms);
    let settings = LdapConnSettings::new()
        .set_conn_timeout(timeout)
        .set_starttls(config.starttls);
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &config.url)
        .await
        .map_err(unavailable)?;
    ldap3::drive!(conn);
    ldap.with_timeout(timeout);

    // 1. Find the user as the service account (or anonymously).
    if let (Some(dn), Some(pw)) = (&config.bind_dn, &config.bind_password) {
        ldap.simple_bind(dn, pw)
            .await
            .map_err(unavailable)?
            .success()
            .map_err(|e| DirectoryError::Config(format!("service bind as `{dn}` failed: {e}")))?;
    }
    let filter = config
        .user_filter
        .replace("{username}", &ldap_escape(username));
    let mut attrs = vec!["cn", "displayName", "mail"];
    if let Some(a) = &config.group_attribute {
        attrs.push(a.as_str());
    }
    let (entries, _) = ldap
        .search(&config.user_base, Scope::Subtree, &filter, attrs)
        .await
        .map_err(unavailable)?
        .success()
        .map_err(unavailable)?;
    // No entry or several: the same answer as a wrong password.
    let [entry] = entries.as_slice() else {
        let _ = ldap.unbind().await;
        return Err(DirectoryError::InvalidCredentials);
    };
    let user = SearchEntry::construct(entry.clone());
    let first = |attr: &str| user.attrs.get(attr).and_then(|v| v.first()).cloned();

    // 2. Bind as the user: the directory checks the password.
    let bound = ldap
        .simple_bind(&user.dn, password)
        .await
        .map_err(unavailable)?;
    if bound.rc != 0 {
        let _ = ldap.unbind().await;
        // 49 = invalidCredentials; anything else is the directory's problem, not the user's.
        return Err(if bound.rc == 49 {
            DirectoryError::InvalidCredentials
        } else {
            unavailable(format!("bind as the user failed: {bound}"))
        });
    }

    // 3. Groups, read as the service account again when there is one (a user may not be
    // allowed to read group entries).
    let groups = match &config.group_attribute {
        Some(attr) => user.attrs.get(attr).cloned().unwrap_or_default(),
        None => {
            if let (Some(dn), Some(pw)) = (&config.bind_dn, &config.bind_password) {
                ldap.simple_bind(dn, pw)
                    .await
                    .map_err(unavailable)?
                    .success()
                    .map_err(unavailable)?;
            }
            let base = config.group_base.as_deref().unwrap_or_default();
            let filter = config.group_filter.replace("{dn}", &ldap_escape(&user.dn));
            let (entries, _) = ldap
                .search(base, Scope::Subtree, &filter, vec!["cn"])
                .await
                .map_err(unavailable)?
                .success()
                .map_err(unavailable)?;
            entries
                .into_iter()
                .map(|e| SearchEntry::construct(e).dn)
                .collect()
        }
    };
    let _ = ldap.unbind().await;

    let role = config
        .role_for(&groups)
        .ok_or_else(|| DirectoryError::NoRole {
            username: username.to_owned(),
            groups: groups.clone(),
        })?;
    Ok(DirectoryUser {
        dn: user.dn.clone(),
        username: username.to_owned(),
        display_name: first("displayName").or_else(|| first("cn")),
        email: first("mail"),
        groups,
        role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LdapConfig {
        LdapConfig {
            url: "ldap://127.0.0.1:389".into(),
            starttls: false,
            bind_dn: None,
            bind_password: None,
            user_base: "ou=people,dc=example,dc=org".into(),
            user_filter: default_user_filter(),
            group_base: Some("ou=groups,dc=example,dc=org".into()),
            group_filter: default_group_filter(),
            group_attribute: None,
            group_roles: BTreeMap::from([
                ("noc-viewers".into(), "viewer".into()),
                (
                    "cn=NOC-Admins,ou=groups,dc=example,dc=org".into(),
                    "admin".into(),
                ),
                ("noc-operators".into(), "operator".into()),
            ]),
            timeout_ms: 1000,
        }
    }

    #[test]
    fn the_most_privileged_mapped_group_wins() {
        let c = config();
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            c.role_for(&g(&[
                "cn=noc-viewers,ou=groups,dc=example,dc=org",
                "cn=noc-operators,ou=groups,dc=example,dc=org"
            ])),
            Some("operator".into())
        );
        assert_eq!(
            c.role_for(&g(&["cn=noc-admins,ou=groups,dc=example,dc=org"])),
            Some("admin".into()),
            "DNs compare case-insensitively"
        );
        assert_eq!(
            c.role_for(&g(&["cn=interns,ou=groups,dc=example,dc=org"])),
            None
        );
    }

    type Edit = fn(&mut LdapConfig);

    #[test]
    fn bad_configurations_are_named() {
        let cases: Vec<(&str, Edit)> = vec![
            ("url", |c| c.url = "http://x".into()),
            ("bind_dn", |c| c.bind_dn = Some("cn=x".into())),
            ("user_filter", |c| c.user_filter = "(uid=alice)".into()),
            ("group_base", |c| c.group_base = None),
            ("group_roles.noc-viewers", |c| {
                c.group_roles.insert("noc-viewers".into(), "root".into());
            }),
        ];
        for (what, edit) in cases {
            let mut c = config();
            edit(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(what), "{what}: {err}");
        }
        let shown = format!(
            "{:?}",
            LdapConfig {
                bind_password: Some("s3cret".into()),
                ..config()
            }
        );
        assert!(!shown.contains("s3cret"));
    }

    #[tokio::test]
    async fn empty_passwords_never_reach_the_directory() {
        // No server on this port: refusing before connecting is the only way to pass.
        let c = LdapConfig {
            url: "ldap://127.0.0.1:9".into(),
            ..config()
        };
        assert_eq!(
            authenticate(&c, "alice", "").await,
            Err(DirectoryError::InvalidCredentials)
        );
    }
}
