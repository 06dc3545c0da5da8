//! Access tokens: HS256 JWTs signed by the active key of a [`KeyRing`] and verified against
//! any key of it that is still trusted, named by the token's `kid` header.
//!
//! A rotated-out key stays trusted for the lifetime of an access token (plus clock leeway), so
//! tokens issued just before a rotation keep working until they expire on their own; after
//! that, nothing signed with it is accepted.
//!
//! Expiry is checked here against a caller-given `now`, not by `jsonwebtoken` against the
//! system clock, so that the rules are testable without waiting and use the same clock as the
//! rest of [`crate::auth::Auth`].

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Role;
use super::secret::{Secret, random_bytes};

/// The `iss` of every token we sign, and the only one we accept: a token signed with a shared
/// secret for something else is not one of ours even if the secret matches.
pub const ISSUER: &str = "opsconductor";

/// How far apart the clocks of the nodes that sign and verify may be.
pub const CLOCK_LEEWAY: Duration = Duration::seconds(30);

/// Shortest signing secret accepted: HS256's own output size. Generated keys are this long.
pub const MIN_SIGNING_KEY_BYTES: usize = 32;

/// An HMAC key that signs access tokens. `retired_at` is set once a newer key replaced it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    secret: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn new(
        kid: String,
        secret: Vec<u8>,
        created_at: DateTime<Utc>,
        retired_at: Option<DateTime<Utc>>,
    ) -> SigningKey {
        SigningKey {
            kid,
            secret,
            created_at,
            retired_at,
        }
    }

    /// A fresh random key (256 bits) with a random key id.
    pub fn generate(now: DateTime<Utc>) -> SigningKey {
        SigningKey::new(
            hex::encode(random_bytes::<8>()),
            random_bytes::<32>().to_vec(),
            now,
            None,
        )
    }

    /// The key configured as `jwt_signing_key`: standard base64 of at least
    /// [`MIN_SIGNING_KEY_BYTES`] bytes. Its id is derived from the secret, so every node with
    /// the same configuration names it the same.
    pub fn from_base64(encoded: &Secret, now: DateTime<Utc>) -> Result<SigningKey, String> {
        let secret = STANDARD
            .decode(encoded.expose().trim())
            .map_err(|_| "jwt_signing_key is not valid base64".to_owned())?;
        if secret.len() < MIN_SIGNING_KEY_BYTES {
            return Err(format!(
                "jwt_signing_key decodes to {} bytes; it needs at least {MIN_SIGNING_KEY_BYTES} \
                 (e.g. `openssl rand -base64 32`)",
                secret.len()
            ));
        }
        let kid = format!("cfg-{}", hex::encode(&Sha256::digest(&secret)[..8]));
        Ok(SigningKey::new(kid, secret, now, None))
    }

    /// The secret, for the store to keep.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }
}

/// What an access token says. The role is the user's role when the token was issued, for
/// display; authorization uses the role the store holds now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The user's id.
    pub sub: String,
    /// The session the token belongs to; revoking it invalidates the token at once.
    pub sid: String,
    /// The user's name.
    pub name: String,
    pub role: Role,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
}

/// Why a bearer token or API key was refused. The messages name the reason for logs and for
/// the client (none of them tells anything about other users or keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is signed with an unknown key")]
    UnknownKey,
    #[error("the token is signed with a key retired too long ago")]
    RetiredKey,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the session does not exist")]
    UnknownSession,
    #[error("the session has been revoked")]
    SessionRevoked,
    #[error("the session has expired")]
    SessionExpired,
    #[error("the user is disabled")]
    UserDisabled,
    #[error("the API key is not valid")]
    UnknownApiKey,
    #[error("the API key has been revoked")]
    ApiKeyRevoked,
    #[error("the API key has expired")]
    ApiKeyExpired,
    #[error("the refresh token is not valid")]
    UnknownRefreshToken,
    #[error("the refresh token has expired")]
    RefreshTokenExpired,
}

/// The signing keys a node knows: exactly one active key, which signs, and retired keys, which
/// only verify and only within `grace` of their retirement.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
    grace: Duration,
}

impl KeyRing {
    /// A ring of `keys`, one of which must be active (not retired). `grace` is how long after
    /// its retirement a key still verifies: the access token lifetime plus [`CLOCK_LEEWAY`].
    pub fn new(keys: Vec<SigningKey>, grace: Duration) -> Result<KeyRing, String> {
        let active = keys.iter().filter(|k| k.retired_at.is_none()).count();
        if active != 1 {
            return Err(format!(
                "a key ring needs exactly one active signing key, not {active}"
            ));
        }
        Ok(KeyRing { keys, grace })
    }

    /// The key that signs.
    pub fn active(&self) -> &SigningKey {
        self.keys
            .iter()
            .find(|k| k.retired_at.is_none())
            .expect("KeyRing::new checked that one key is active")
    }

    /// Whether the ring holds a key with this id (trusted or not).
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid == kid)
    }

    /// Signs `claims` with the active key.
    pub fn sign(&self, claims: &AccessClaims) -> Secret {
        let key = self.active();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&key.secret))
            // Only a claims type that cannot serialize, or a key of the wrong family, fails:
            // neither can happen with these fixed types.
            .expect("HS256 signs any AccessClaims");
        Secret::new(token)
    }

    /// The claims of `token` if a trusted key of this ring signed it, it is ours (`iss`), and
    /// it has not expired at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenRejection> {
        let kid = token_kid(token).ok_or(TokenRejection::Malformed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(TokenRejection::UnknownKey)?;
        if let Some(retired) = key.retired_at
            && now > retired + self.grace
        {
            return Err(TokenRejection::RetiredKey);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is ours to check, against `now` (see the module comment).
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.set_issuer(&[ISSUER]);
        let data = jsonwebtoken::decode::<AccessClaims>(
            token,
            &DecodingKey::from_secret(&key.secret),
            &validation,
        )
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => TokenRejection::BadSignature,
            _ => TokenRejection::Malformed,
        })?;
        if now.timestamp() > data.claims.exp + CLOCK_LEEWAY.num_seconds() {
            return Err(TokenRejection::Expired);
        }
        Ok(data.claims)
    }
}

/// The `kid` header of a token, without verifying anything.
pub fn token_kid(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok()?.kid
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 8, 0, 0).unwrap()
    }

    const TTL: Duration = Duration::minutes(15);

    fn claims(iat: DateTime<Utc>, ttl: Duration) -> AccessClaims {
        AccessClaims {
            iss: ISSUER.to_owned(),
            sub: "7".to_owned(),
            sid: "session-1".to_owned(),
            name: "alice".to_owned(),
            role: Role::Operator,
            iat: iat.timestamp(),
            exp: (iat + ttl).timestamp(),
        }
    }

    fn ring(keys: Vec<SigningKey>) -> KeyRing {
        KeyRing::new(keys, TTL + CLOCK_LEEWAY).unwrap()
    }

    fn retired(key: &SigningKey, at: DateTime<Utc>) -> SigningKey {
        SigningKey {
            retired_at: Some(at),
            ..key.clone()
        }
    }

    #[test]
    fn sign_then_verify() {
        let ring = ring(vec![SigningKey::generate(t0())]);
        let token = ring.sign(&claims(t0(), TTL));
        assert_eq!(
            token_kid(token.expose()).as_deref(),
            Some(ring.active().kid.as_str())
        );
        let verified = ring.verify(token.expose(), t0() + Duration::minutes(5));
        assert_eq!(verified, Ok(claims(t0(), TTL)));
    }

    #[test]
    fn expired_tokens_are_refused_after_the_leeway() {
        let ring = ring(vec![SigningKey::generate(t0())]);
        let token = ring.sign(&claims(t0(), TTL));
        let exp = t0() + TTL;
        assert!(ring.verify(token.expose(), exp + CLOCK_LEEWAY).is_ok());
        assert_eq!(
            ring.verify(token.expose(), exp + CLOCK_LEEWAY + Duration::seconds(1)),
            Err(TokenRejection::Expired)
        );
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let ring = ring(vec![SigningKey::generate(t0())]);
        let token = ring.sign(&claims(t0(), TTL)).expose().to_owned();
        let now = t0() + Duration::minutes(1);
        let [header, payload, signature]: [&str; 3] =
            token.split('.').collect::<Vec<_>>().try_into().unwrap();

        // Another signature.
        let mut bad = signature.as_bytes().to_vec();
        bad[0] = if bad[0] == b'A' { b'B' } else { b'A' };
        let resigned = format!("{header}.{payload}.{}", String::from_utf8(bad).unwrap());
        assert_eq!(
            ring.verify(&resigned, now),
            Err(TokenRejection::BadSignature)
        );

        // A payload promoting the user to admin, under the original signature.
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut forged = claims(t0(), TTL);
        forged.role = Role::Admin;
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let forged = format!("{header}.{forged_payload}.{signature}");
        assert_eq!(ring.verify(&forged, now), Err(TokenRejection::BadSignature));

        // The same claims signed by a key of the same id that is not ours.
        let mut impostor_key = SigningKey::generate(t0());
        impostor_key.kid = ring.active().kid.clone();
        let impostor = self::ring(vec![impostor_key]).sign(&claims(t0(), TTL));
        assert_eq!(
            ring.verify(impostor.expose(), now),
            Err(TokenRejection::BadSignature)
        );

        // Not a JWT at all; `alg: none`.
        assert_eq!(
            ring.verify("not.a.jwt", now),
            Err(TokenRejection::Malformed)
        );
        let none_header = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#,
            ring.active().kid
        ));
        assert_eq!(
            ring.verify(&format!("{none_header}.{payload}."), now),
            Err(TokenRejection::Malformed)
        );
    }

    #[test]
    fn tokens_from_another_issuer_are_refused() {
        let ring = ring(vec![SigningKey::generate(t0())]);
        let mut foreign = claims(t0(), TTL);
        foreign.iss = "someone-else".to_owned();
        let token = ring.sign(&foreign);
        assert_eq!(
            ring.verify(token.expose(), t0()),
            Err(TokenRejection::Malformed)
        );
    }

    #[test]
    fn unknown_kid_is_refused() {
        let signer = ring(vec![SigningKey::generate(t0())]);
        let verifier = ring(vec![SigningKey::generate(t0())]);
        let token = signer.sign(&claims(t0(), TTL));
        assert_eq!(
            verifier.verify(token.expose(), t0()),
            Err(TokenRejection::UnknownKey)
        );
        assert!(!verifier.contains(&signer.active().kid));
    }

    #[test]
    fn rotation_keeps_recent_tokens_valid_and_drops_old_keys() {
        let old = SigningKey::generate(t0());
        let before_rotation = ring(vec![old.clone()]);
        let rotated_at = t0() + Duration::hours(2);
        // Issued one minute before the rotation.
        let recent = before_rotation.sign(&claims(rotated_at - Duration::minutes(1), TTL));

        let new = SigningKey::generate(rotated_at);
        let after = ring(vec![new.clone(), retired(&old, rotated_at)]);
        assert_eq!(after.active().kid, new.kid);
        assert!(
            after
                .verify(recent.expose(), rotated_at + Duration::minutes(5))
                .is_ok(),
            "a token signed just before the rotation stays valid"
        );
        let fresh = after.sign(&claims(rotated_at, TTL));
        assert_eq!(token_kid(fresh.expose()), Some(new.kid.clone()));
        assert!(after.verify(fresh.expose(), rotated_at).is_ok());

        // A token signed by the old key that claims a long life (a stolen key would sign such
        // a thing) is refused once the grace has passed, whatever its `exp` says.
        let long_lived = before_rotation.sign(&claims(rotated_at, Duration::days(365)));
        let grace_end = rotated_at + TTL + CLOCK_LEEWAY;
        assert!(after.verify(long_lived.expose(), grace_end).is_ok());
        assert_eq!(
            after.verify(long_lived.expose(), grace_end + Duration::seconds(1)),
            Err(TokenRejection::RetiredKey)
        );
    }

    #[test]
    fn a_ring_has_exactly_one_active_key() {
        let a = SigningKey::generate(t0());
        let b = SigningKey::generate(t0());
        // The refusal says what is wrong, not just that something is.
        let refused = |keys: Vec<SigningKey>| KeyRing::new(keys, TTL).err().unwrap_or_default();
        let needs = |n: usize| format!("a key ring needs exactly one active signing key, not {n}");
        assert_eq!(refused(vec![]), needs(0));
        assert_eq!(refused(vec![a.clone(), b]), needs(2));
        assert_eq!(refused(vec![retired(&a, t0())]), needs(0));
        assert!(KeyRing::new(vec![a], TTL).is_ok());
    }

    #[test]
    fn configured_keys_are_checked_and_named_by_their_secret() {
        let key = Secret::new(STANDARD.encode([7u8; 32]));
        let a = SigningKey::from_base64(&key, t0()).unwrap();
        let b = SigningKey::from_base64(&key, t0() + Duration::days(1)).unwrap();
        assert_eq!(a.kid, b.kid);
        assert!(a.kid.starts_with("cfg-"), "{}", a.kid);
        assert_eq!(a.secret(), &[7u8; 32]);

        let short = SigningKey::from_base64(&Secret::new(STANDARD.encode([7u8; 16])), t0());
        assert!(short.unwrap_err().contains("16 bytes"));
        let garbage = SigningKey::from_base64(&Secret::new("***"), t0());
        assert!(garbage.unwrap_err().contains("base64"));
        // Debug never shows the secret.
        assert!(!format!("{a:?}").contains("7, 7"), "{a:?}");
    }
}
