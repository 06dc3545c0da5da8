//! What an operator gives to set a credential — through `PUT /api/v1/credentials/{name}` or
//! `opsconductor credential set` — checked field by field and turned into the secret to store.

use axum::http::{HeaderValue, header};
use serde::Deserialize;

use super::CredentialSecret;
use crate::snmp::{AuthProtocol, PrivProtocol, UsmError, UsmUser};

/// The body of `PUT /api/v1/credentials/{name}`: the kind and its fields, secrets included.
/// Also what `opsconductor credential set` builds from its flags, so that both check the same
/// things. No `Debug`: it holds passwords.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialInput {
    SnmpCommunity {
        community: String,
    },
    /// Passwords are turned into keys (RFC 3414 password-to-key) and not stored. No
    /// `auth_protocol` means noAuthNoPriv.
    SnmpUsm {
        user: String,
        #[serde(default)]
        auth_protocol: Option<String>,
        #[serde(default)]
        auth_password: Option<String>,
        #[serde(default)]
        priv_protocol: Option<String>,
        #[serde(default)]
        priv_password: Option<String>,
    },
    HttpBasic {
        username: String,
        password: String,
    },
    HttpBearer {
        token: String,
    },
    /// A header sent with every request, e.g. `X-Api-Key`.
    HttpHeader {
        name: String,
        value: String,
    },
    SshPassword {
        username: String,
        password: String,
    },
    /// An OpenSSH (or PEM) private key, decoded here once so that a wrong file or passphrase is
    /// refused now rather than at the first poll.
    SshKey {
        username: String,
        private_key: String,
        #[serde(default)]
        passphrase: Option<String>,
    },
}

/// A refusal naming the credential field. Messages never contain a secret value.
fn field(name: &str, message: impl std::fmt::Display) -> String {
    format!("credential field `{name}`: {message}")
}

fn required(name: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(field(name, "must not be empty"));
    }
    Ok(())
}

/// A protocol and its password, both or neither.
fn pair(
    protocol_field: &str,
    protocol: Option<String>,
    password_field: &str,
    password: Option<String>,
) -> Result<Option<(String, String)>, String> {
    match (protocol, password) {
        (Some(p), Some(pw)) => Ok(Some((p, pw))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(field(
            password_field,
            format!("is required with `{protocol_field}`"),
        )),
        (None, Some(_)) => Err(field(
            protocol_field,
            format!("is required with `{password_field}`"),
        )),
    }
}

impl CredentialInput {
    /// Checks the fields and builds the secret to store. Decoding an SSH key with a passphrase
    /// runs its KDF, which takes a moment: async callers run this on a blocking thread.
    pub fn into_secret(self) -> Result<CredentialSecret, String> {
        Ok(match self {
            CredentialInput::SnmpCommunity { community } => {
                required("community", &community)?;
                CredentialSecret::SnmpCommunity { community }
            }
            CredentialInput::SnmpUsm {
                user,
                auth_protocol,
                auth_password,
                priv_protocol,
                priv_password,
            } => {
                let auth = pair(
                    "auth_protocol",
                    auth_protocol,
                    "auth_password",
                    auth_password,
                )?
                .map(|(p, pw)| {
                    p.parse::<AuthProtocol>()
                        .map(|p| (p, pw))
                        .map_err(|e| field("auth_protocol", e))
                })
                .transpose()?;
                let privacy = pair(
                    "priv_protocol",
                    priv_protocol,
                    "priv_password",
                    priv_password,
                )?
                .map(|(p, pw)| {
                    p.parse::<PrivProtocol>()
                        .map(|p| (p, pw))
                        .map_err(|e| field("priv_protocol", e))
                })
                .transpose()?;
                let user = UsmUser::from_passwords(
                    &user,
                    auth.as_ref().map(|(p, pw)| (*p, pw.as_str())),
                    privacy.as_ref().map(|(p, pw)| (*p, pw.as_str())),
                )
                .map_err(|e| {
                    let name = match &e {
                        UsmError::UserName(_) => "user",
                        UsmError::PasswordTooShort("privacy") => "priv_password",
                        UsmError::PasswordTooShort(_) => "auth_password",
                        UsmError::PrivacyWithoutAuth => "auth_protocol",
                        UsmError::UnknownAuthProtocol(_) => "auth_protocol",
                        UsmError::UnknownPrivProtocol(_) => "priv_protocol",
                    };
                    field(name, e)
                })?;
                CredentialSecret::SnmpUsm { user }
            }
            CredentialInput::HttpBasic { username, password } => {
                required("username", &username)?;
                // RFC 7617: the user-id cannot contain a colon, which separates it from the
                // password.
                if username.contains(':') {
                    return Err(field("username", "must not contain `:`"));
                }
                required("password", &password)?;
                CredentialSecret::HttpBasic { username, password }
            }
            CredentialInput::HttpBearer { token } => {
                required("token", &token)?;
                if HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
                    return Err(field(
                        "token",
                        "must be visible ASCII (no control characters)",
                    ));
                }
                CredentialSecret::HttpBearer { token }
            }
            CredentialInput::HttpHeader { name, value } => {
                if header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(field(
                        "name",
                        format!("`{name}` is not an HTTP header name"),
                    ));
                }
                required("value", &value)?;
                if HeaderValue::from_str(&value).is_err() {
                    return Err(field(
                        "value",
                        "must be visible ASCII (no control characters)",
                    ));
                }
                CredentialSecret::HttpHeader { name, value }
            }
            CredentialInput::SshPassword { username, password } => {
                required("username", &username)?;
                required("password", &password)?;
                CredentialSecret::SshPassword { username, password }
            }
            CredentialInput::SshKey {
                username,
                private_key,
                passphrase,
            } => {
                required("username", &username)?;
                required("private_key", &private_key)?;
                let passphrase = passphrase.filter(|p| !p.is_empty());
                if let Err(e) = russh::keys::decode_secret_key(&private_key, passphrase.as_deref())
                {
                    return Err(match (&e, &passphrase) {
                        (russh::keys::Error::KeyIsEncrypted, _) => {
                            field("passphrase", "is required: the private key is encrypted")
                        }
                        // A wrong passphrase and a damaged key fail the same check.
                        (russh::keys::Error::SshKey(_), Some(_)) => field(
                            "private_key",
                            format!("cannot be decoded: {e} (wrong passphrase?)"),
                        ),
                        _ => field("private_key", format!("cannot be decoded: {e}")),
                    });
                }
                CredentialSecret::SshKey {
                    username,
                    private_key,
                    passphrase,
                }
            }
        })
    }
}
