//! Poll targets and the credentials they poll with: domain types and their validation. Pure
//! code; the store persists them and the scheduler runs them.
//!
//! **Architecture Invariant:** a secret (community, USM key, password, token, private key) lives
//! only in [`CredentialSecret`], which has a redacting `Debug` and no `Serialize`: nothing can
//! print it or return it through the API by accident. What may be shown is
//! [`CredentialSecret::public`].

mod input;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::snmp::{AuthProtocol, PrivProtocol, UsmUser};

pub use input::CredentialInput;

/// When a target is polled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Every so many seconds, with a per-target offset (jitter) so that targets created
    /// together do not all poll in the same second.
    IntervalSeconds(u32),
    /// A cron expression: five fields (minute hour day month weekday) or six with seconds
    /// first, evaluated in UTC.
    Cron(String),
}

pub const MAX_INTERVAL_SECONDS: u32 = 7 * 86_400;

impl Schedule {
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Schedule::IntervalSeconds(s) if *s == 0 || *s > MAX_INTERVAL_SECONDS => Err(format!(
                "interval must be between 1 and {MAX_INTERVAL_SECONDS} seconds"
            )),
            Schedule::IntervalSeconds(_) => Ok(()),
            Schedule::Cron(expr) => parse_cron(expr).map(drop),
        }
    }

    /// The first due time strictly after `after`, for a schedule whose previous due time was
    /// `after`. Intervals keep their phase, so polls do not drift by the time each one takes.
    pub fn next_after(&self, after: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Schedule::IntervalSeconds(s) => after + chrono::Duration::seconds(i64::from(*s)),
            Schedule::Cron(expr) => parse_cron(expr)
                .ok()
                .and_then(|c| c.after(&after).next())
                // A validated expression always has a next time; if one had none (a date
                // that never comes), poll daily rather than never or in a loop.
                .unwrap_or(after + chrono::Duration::days(1)),
        }
    }

    /// The period used for lease lengths and "polled late" checks: the interval, or for cron
    /// the gap between its next two fire times.
    pub fn period_seconds(&self, now: DateTime<Utc>) -> i64 {
        match self {
            Schedule::IntervalSeconds(s) => i64::from(*s),
            Schedule::Cron(_) => {
                let a = self.next_after(now);
                (self.next_after(a) - a).num_seconds().max(1)
            }
        }
    }
}

/// When a new (or re-scheduled, or re-enabled) target first polls. Intervals start after a
/// stable per-target offset within the first period (at most a minute), so that a thousand
/// targets created by one script spread out instead of polling in the same second; cron
/// schedules start at their next fire time.
pub fn first_due(schedule: &Schedule, target_name: &str, now: DateTime<Utc>) -> DateTime<Utc> {
    match schedule {
        Schedule::IntervalSeconds(s) => {
            let spread_ms = u64::from(*s).min(60) * 1000;
            let hash = target_name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
            now + chrono::Duration::milliseconds((hash % spread_ms.max(1)) as i64)
        }
        Schedule::Cron(_) => schedule.next_after(now),
    }
}

/// Parses a cron expression; five-field expressions get a `0` seconds field.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    let full = match fields {
        5 => format!("0 {expr}"),
        6 | 7 => expr.to_owned(),
        _ => {
            return Err(format!(
                "cron expression `{expr}` must have 5 fields (min hour dom month dow) or 6 with seconds first"
            ));
        }
    };
    cron::Schedule::from_str(&full).map_err(|e| format!("cron expression `{expr}`: {e}"))
}

/// A target as stored, with its last poll's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Target {
    pub id: i64,
    pub name: String,
    /// `host`, `host:port`, `[v6]:port`, or for HTTP targets a base URL.
    pub address: String,
    pub addon_id: String,
    pub schedule: Schedule,
    pub enabled: bool,
    /// Handed to the addon as JSON; never holds secrets (those are in `credentials`).
    pub config: Map<String, Value>,
    /// The name of the credential the target polls with.
    pub credentials: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub status: PollStatus,
}

/// What the scheduler recorded about a target's polls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PollStatus {
    pub next_due_at: Option<DateTime<Utc>>,
    pub last_poll_at: Option<DateTime<Utc>>,
    /// `ok`, `unreachable`, `failed` or `host_key_mismatch`.
    pub last_poll_status: Option<String>,
    pub last_poll_duration_ms: Option<i64>,
    pub last_poll_error: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub polls_total: i64,
    pub poll_failures: i64,
    /// The node holding the current lease, while a poll runs.
    pub lease_owner: Option<String>,
}

/// A new target, or the full replacement of one.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub name: String,
    pub address: String,
    pub addon_id: String,
    /// `None`: the addon manifest's `poll.default_interval_seconds`.
    #[serde(default)]
    pub schedule: Option<Schedule>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default)]
    pub config: Map<String, Value>,
    #[serde(default)]
    pub credentials: Option<String>,
}

fn default_true() -> bool {
    true
}

impl TargetSpec {
    /// Checks what does not need the database; the store checks that the addon and the
    /// credential exist.
    pub fn validate(&self) -> Result<(), TargetError> {
        let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if self.name.is_empty() || self.name.len() > 128 || !self.name.chars().all(name_ok) {
            return Err(TargetError::invalid(
                "name",
                "must be 1-128 characters of A-Z, a-z, 0-9, `-`, `_` or `.`",
            ));
        }
        validate_address(&self.address).map_err(|m| TargetError::invalid("address", m))?;
        if let Some(s) = &self.schedule {
            s.validate()
                .map_err(|m| TargetError::invalid("schedule", m))?;
        }
        if serde_json::to_vec(&self.config).map_or(0, |v| v.len()) > 64 * 1024 {
            return Err(TargetError::invalid(
                "config",
                "must be at most 64 KiB of JSON",
            ));
        }
        Ok(())
    }
}

/// A target address: a host (name or IP), optionally with a port, or an http(s) base URL.
pub fn validate_address(address: &str) -> Result<(), String> {
    if address.starts_with("http://") || address.starts_with("https://") {
        return reqwest::Url::parse(address)
            .map_err(|e| format!("`{address}` is not a valid URL: {e}"))
            .and_then(|u| {
                if u.host_str().is_some() {
                    Ok(())
                } else {
                    Err(format!("`{address}` has no host"))
                }
            });
    }
    split_host_port(address).map(drop)
}

/// Splits `host`, `host:port` or `[v6]:port` (a bare IPv6 address is a host too).
pub fn split_host_port(address: &str) -> Result<(String, Option<u16>), String> {
    let bad = || format!("`{address}` must be a host, host:port, [ipv6]:port or an http(s) URL");
    if address.is_empty() || address.len() > 255 || address.contains(char::is_whitespace) {
        return Err(bad());
    }
    if let Ok(ip) = address.parse::<std::net::IpAddr>() {
        return Ok((ip.to_string(), None));
    }
    if let Some(rest) = address.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').ok_or_else(bad)?;
        host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        let port = match tail {
            "" => None,
            t => Some(
                t.strip_prefix(':')
                    .ok_or_else(bad)?
                    .parse()
                    .map_err(|_| bad())?,
            ),
        };
        return Ok((host.to_owned(), port));
    }
    let (host, port) = match address.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| bad())?)),
        None => (address, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !host.split('.').all(label_ok) {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("target field `{field}`: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl TargetError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> TargetError {
        TargetError::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// A credential's secret part, by kind. See the module's invariant.
#[derive(Clone, PartialEq, Eq)]
pub enum CredentialSecret {
    SnmpCommunity {
        community: String,
    },
    /// Keys are Ku (password-to-key output), localised to each agent's engine when polling.
    SnmpUsm {
        user: UsmUser,
    },
    HttpBasic {
        username: String,
        password: String,
    },
    HttpBearer {
        token: String,
    },
    HttpHeader {
        name: String,
        value: String,
    },
    SshPassword {
        username: String,
        password: String,
    },
    SshKey {
        username: String,
        /// OpenSSH PEM.
        private_key: String,
        passphrase: Option<String>,
    },
}

impl fmt::Debug for CredentialSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CredentialSecret({} {})", self.kind(), self.public())
    }
}

/// The kinds, as stored and as the API and CLI name them.
pub const CREDENTIAL_KINDS: &[&str] = &[
    "snmp_community",
    "snmp_usm",
    "http_basic",
    "http_bearer",
    "http_header",
    "ssh_password",
    "ssh_key",
];

impl CredentialSecret {
    pub fn kind(&self) -> &'static str {
        match self {
            CredentialSecret::SnmpCommunity { .. } => "snmp_community",
            CredentialSecret::SnmpUsm { .. } => "snmp_usm",
            CredentialSecret::HttpBasic { .. } => "http_basic",
            CredentialSecret::HttpBearer { .. } => "http_bearer",
            CredentialSecret::HttpHeader { .. } => "http_header",
            CredentialSecret::SshPassword { .. } => "ssh_password",
            CredentialSecret::SshKey { .. } => "ssh_key",
        }
    }

    /// What may be shown: user names, protocols, header names. Never a secret.
    pub fn public(&self) -> Value {
        match self {
            CredentialSecret::SnmpCommunity { .. } | CredentialSecret::HttpBearer { .. } => {
                json!({})
            }
            CredentialSecret::SnmpUsm { user } => json!({
                "user": user.name,
                "auth_protocol": user.auth.as_ref().map(|(p, _)| p.as_str()),
                "priv_protocol": user.privacy.as_ref().map(|(p, _)| p.as_str()),
            }),
            CredentialSecret::HttpBasic { username, .. }
            | CredentialSecret::SshPassword { username, .. } => json!({ "username": username }),
            CredentialSecret::HttpHeader { name, .. } => json!({ "header": name }),
            CredentialSecret::SshKey {
                username,
                passphrase,
                ..
            } => json!({ "username": username, "key_encrypted": passphrase.is_some() }),
        }
    }

    /// The secret fields as stored (JSON bytes). Only the store calls this.
    pub fn to_stored(&self) -> Vec<u8> {
        let v = match self {
            CredentialSecret::SnmpCommunity { community } => json!({ "community": community }),
            CredentialSecret::SnmpUsm { user } => json!({
                "user": user.name,
                "auth_protocol": user.auth.as_ref().map(|(p, _)| p.as_str()),
                "auth_key": user.auth.as_ref().map(|(_, k)| hex::encode(k)),
                "priv_protocol": user.privacy.as_ref().map(|(p, _)| p.as_str()),
                "priv_key": user.privacy.as_ref().map(|(_, k)| hex::encode(k)),
            }),
            CredentialSecret::HttpBasic { username, password } => {
                json!({ "username": username, "password": password })
            }
            CredentialSecret::HttpBearer { token } => json!({ "token": token }),
            CredentialSecret::HttpHeader { name, value } => json!({ "name": name, "value": value }),
            CredentialSecret::SshPassword { username, password } => {
                json!({ "username": username, "password": password })
            }
            CredentialSecret::SshKey {
                username,
                private_key,
                passphrase,
            } => {
                json!({ "username": username, "private_key": private_key, "passphrase": passphrase })
            }
        };
        serde_json::to_vec(&v).expect("JSON values serialise")
    }

    /// Reads what [`Self::to_stored`] wrote.
    pub fn from_stored(kind: &str, bytes: &[u8]) -> Result<CredentialSecret, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("stored secret: {e}"))?;
        let s = |key: &str| -> Result<String, String> {
            v[key]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("stored {kind} secret lacks `{key}`"))
        };
        let opt = |key: &str| v[key].as_str().map(str::to_owned);
        Ok(match kind {
            "snmp_community" => CredentialSecret::SnmpCommunity {
                community: s("community")?,
            },
            "snmp_usm" => {
                let key = |proto: &str, key: &str| -> Result<Option<(String, Vec<u8>)>, String> {
                    match (opt(proto), opt(key)) {
                        (Some(p), Some(k)) => Ok(Some((
                            p,
                            hex::decode(k).map_err(|e| format!("stored {key}: {e}"))?,
                        ))),
                        _ => Ok(None),
                    }
                };
                let auth = match key("auth_protocol", "auth_key")? {
                    Some((p, k)) => {
                        Some((AuthProtocol::from_str(&p).map_err(|e| e.to_string())?, k))
                    }
                    None => None,
                };
                let privacy = match key("priv_protocol", "priv_key")? {
                    Some((p, k)) => {
                        Some((PrivProtocol::from_str(&p).map_err(|e| e.to_string())?, k))
                    }
                    None => None,
                };
                CredentialSecret::SnmpUsm {
                    user: UsmUser {
                        name: s("user")?,
                        auth,
                        privacy,
                    },
                }
            }
            "http_basic" => CredentialSecret::HttpBasic {
                username: s("username")?,
                password: s("password")?,
            },
            "http_bearer" => CredentialSecret::HttpBearer { token: s("token")? },
            "http_header" => CredentialSecret::HttpHeader {
                name: s("name")?,
                value: s("value")?,
            },
            "ssh_password" => CredentialSecret::SshPassword {
                username: s("username")?,
                password: s("password")?,
            },
            "ssh_key" => CredentialSecret::SshKey {
                username: s("username")?,
                private_key: s("private_key")?,
                passphrase: opt("passphrase"),
            },
            other => return Err(format!("unknown credential kind `{other}`")),
        })
    }
}

/// A credential as listed: name, kind and public fields.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CredentialSummary {
    pub name: String,
    pub kind: String,
    #[schemars(schema_with = "credential_public_schema")]
    pub public: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Credential names follow target names' rules.
pub fn validate_credential_name(name: &str) -> Result<(), TargetError> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok) {
        return Err(TargetError::invalid(
            "name",
            "must be 1-64 characters of A-Z, a-z, 0-9, `-`, `_` or `.`",
        ));
    }
    Ok(())
}

/// The schema of [`CredentialSummary::public`], which [`CredentialSecret::public`] builds as
/// JSON: the fields a kind shows, never a secret. Unknown fields are refused, so that a field
/// added there without being described here fails `tests/tests/openapi.rs`.
fn credential_public_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "The credential's public fields: `user`, `auth_protocol` and `priv_protocol` (`snmp_usm`); `username` (`http_basic`, `ssh_password`, `ssh_key`); `key_encrypted` (`ssh_key`); `header` (`http_header`); none for `snmp_community` and `http_bearer`.",
        "properties": {
            "user": {"type": "string"},
            "auth_protocol": {"type": ["string", "null"]},
            "priv_protocol": {"type": ["string", "null"]},
            "username": {"type": "string"},
            "key_encrypted": {"type": "boolean"},
            "header": {"type": "string"},
        },
        "additionalProperties": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(
            split_host_port("192.0.2.1").unwrap(),
            ("192.0.2.1".into(), None)
        );
        assert_eq!(
            split_host_port("sw1.example.net:1161").unwrap(),
            ("sw1.example.net".into(), Some(1161))
        );
        assert_eq!(
            split_host_port("[2001:db8::1]:22").unwrap(),
            ("2001:db8::1".into(), Some(22))
        );
        assert_eq!(
            split_host_port("2001:db8::1").unwrap(),
            ("2001:db8::1".into(), None)
        );
        for bad in ["", "a b", "host:99999", "[::1", "ho$t", "host:"] {
            assert!(split_host_port(bad).is_err(), "{bad}");
        }
        assert!(validate_address("https://api.example.com/v1").is_ok());
        assert!(validate_address("http://").is_err());
    }

    #[test]
    fn schedules_validate_and_advance() {
        let t0: DateTime<Utc> = "2026-01-01T00:00:07Z".parse().unwrap();
        let every = Schedule::IntervalSeconds(30);
        assert_eq!(
            every.next_after(t0),
            "2026-01-01T00:00:37Z".parse::<DateTime<Utc>>().unwrap()
        );
        let cron = Schedule::Cron("*/5 * * * *".into());
        cron.validate().unwrap();
        assert_eq!(
            cron.next_after(t0),
            "2026-01-01T00:05:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(cron.period_seconds(t0), 300);
        assert!(Schedule::Cron("every tuesday".into()).validate().is_err());
        assert!(Schedule::IntervalSeconds(0).validate().is_err());
    }

    #[test]
    fn secrets_round_trip_and_never_show() {
        let user = UsmUser::from_passwords(
            "poller",
            Some((AuthProtocol::Sha1, "authpass123")),
            Some((PrivProtocol::Aes128, "privpass123")),
        )
        .unwrap();
        let cases = vec![
            CredentialSecret::SnmpCommunity {
                community: "s3cret-community".into(),
            },
            CredentialSecret::SnmpUsm { user },
            CredentialSecret::HttpBasic {
                username: "u".into(),
                password: "s3cret-pw".into(),
            },
            CredentialSecret::HttpBearer {
                token: "s3cret-token".into(),
            },
            CredentialSecret::HttpHeader {
                name: "X-Api-Key".into(),
                value: "s3cret-key".into(),
            },
            CredentialSecret::SshPassword {
                username: "u".into(),
                password: "s3cret-pw".into(),
            },
            CredentialSecret::SshKey {
                username: "u".into(),
                private_key: "-----BEGIN s3cret".into(),
                passphrase: Some("s3cret-pass".into()),
            },
        ];
        for secret in cases {
            let back = CredentialSecret::from_stored(secret.kind(), &secret.to_stored()).unwrap();
            assert_eq!(back, secret);
            let shown = format!("{secret:?} {}", secret.public());
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(CREDENTIAL_KINDS.contains(&secret.kind()));
        }
    }
}
