//! Password hashing (argon2id, stored as PHC strings), the password policy, and generated
//! passwords.
//!
//! Hashing and verifying take tens of milliseconds of CPU on purpose; async callers run them
//! with `spawn_blocking`.

use std::sync::OnceLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::secret::{Secret, random_bytes};

/// Shortest password accepted, in characters. Generated passwords are much longer.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Longest password accepted, in bytes. Argon2 prehashes, so length costs little, but a
/// megabyte "password" is a mistake or an attack, never a password.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The argon2id cost: 19 MiB of memory, two passes, one lane — OWASP's baseline for argon2id.
/// Written out rather than taken from the crate's defaults so that an upgrade cannot silently
/// change it. Existing hashes carry their own parameters, so raising these later still verifies
/// old passwords.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("fixed argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a password is refused; the message is for the person choosing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {MIN_PASSWORD_CHARS} characters long")]
    TooShort,
    #[error("password must be at most {MAX_PASSWORD_BYTES} bytes long")]
    TooLong,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Checks a password someone chose against the policy (length only: composition rules make
/// passwords harder to remember, not to guess).
pub fn check_policy(password: &str) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    Ok(())
}

/// The argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of `password`, with a
/// fresh random salt. Blocking.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`. An unparsable hash matches nothing.
/// Blocking.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    hasher()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Spends the time of one [`verify_password`] without a real hash, for logins naming a user
/// that does not exist (or has no password), so that the answer's timing does not tell which
/// usernames exist. Blocking.
pub fn verify_dummy(password: &str) {
    let _ = verify_password(password, dummy_hash());
}

/// A hash of a random password, made once per process with the current parameters so that
/// verifying against it costs what verifying a real hash costs. [`crate::auth::Auth::new`]
/// makes it before the first login, so that no login pays for it.
pub(crate) fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password(generate_password().expose()).expect("hashing a generated password")
    })
}

/// A random password for a new account or a reset, shown once: 20 random bytes in base64url,
/// 27 characters and 160 bits.
pub fn generate_password() -> Secret {
    Secret::new(URL_SAFE_NO_PAD.encode(random_bytes::<20>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password(
            "correct horse battery",
            "not a phc string"
        ));
        // A fresh salt every time.
        assert_ne!(hash, hash_password("correct horse battery").unwrap());
    }

    #[test]
    fn policy_counts_characters_and_caps_bytes() {
        assert_eq!(check_policy("short"), Err(PasswordError::TooShort));
        assert_eq!(check_policy("ünïcödé-ünï"), Err(PasswordError::TooShort));
        assert_eq!(check_policy("ünïcödé-ünïc"), Ok(()));
        assert_eq!(
            check_policy(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(PasswordError::TooLong)
        );
        let generated = generate_password();
        assert_eq!(generated.expose().len(), 27);
        assert_eq!(check_policy(generated.expose()), Ok(()));
        assert_ne!(generated, generate_password());
    }

    #[test]
    fn dummy_hash_has_the_real_cost() {
        assert!(dummy_hash().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        verify_dummy("anything at all");
    }
}
