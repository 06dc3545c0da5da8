//! Secrets in memory and the random values they are made of.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// A password, token or key. `Debug` prints `<redacted>` and there is no `Serialize`, so a
/// secret reaches a log line or an API answer only through an explicit [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

/// A secret is a string in a request body (a password to sign in with, a credential to store);
/// it never appears in an answer.
impl schemars::JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "writeOnly": true})
    }
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself: for hashing, signing, or showing it once to whoever it was made for.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// `n` bytes from the operating system's CSPRNG. Failure means the OS cannot give randomness at
/// all, which no caller can work around, so it panics rather than returning an error that
/// every login path would have to carry.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    bytes
}

/// `prefix` followed by 32 random bytes in unpadded base64url (43 characters): 256 bits, so
/// that a token can be looked up by a fast hash instead of a password hash.
pub(crate) fn random_token(prefix: &str) -> Secret {
    Secret(format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    ))
}

/// The lowercase hex SHA-256 of a token: what the store keeps instead of the token.
pub(crate) fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = Secret::new("hunter2-hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret(<redacted>))");
    }

    #[test]
    fn tokens_are_prefixed_random_and_url_safe() {
        let a = random_token("oc_");
        let b = random_token("oc_");
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 3 + 43);
        assert!(a.expose().starts_with("oc_"));
        assert!(
            a.expose()[3..]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{}",
            a.expose()
        );
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
