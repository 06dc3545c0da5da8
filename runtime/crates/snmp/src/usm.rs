//! The User-based Security Model's cryptography: password-to-key and key localisation
//! (RFC 3414 A.2), HMAC authentication (HMAC-96 for MD5 and SHA-1, RFC 3414; the SHA-2
//! truncations of RFC 7860) and privacy (DES-CBC, RFC 3414 § 8; AES-128-CFB, RFC 3826).
//!
//! Everything here is a pure function of keys and bytes; which message is checked with which
//! key, and the timeliness rules, live in the `v3` module.

use std::fmt;
use std::str::FromStr;

use aes::Aes128;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{AsyncStreamCipher, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use des::Des;
use hmac::digest::core_api::BlockSizeUser;
use hmac::digest::{Digest, FixedOutputReset};
use hmac::{Mac, SimpleHmac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Sha224, Sha256, Sha384, Sha512};

/// net-snmp refuses pass phrases shorter than this (`USM_LENGTH_P_MIN`), and RFC 3414 § 11.2
/// recommends at least eight characters; a shorter one would be refused by the senders anyway.
pub const MIN_PASSWORD_LEN: usize = 8;

/// RFC 3414 A.2: the pass phrase is repeated to fill one megabyte before hashing, so that
/// guessing pass phrases from a captured key is expensive.
const PASSWORD_EXPANSION: usize = 1 << 20;

/// Errors in configuring USM users: these come from operators, never from the network.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsmError {
    #[error(
        "unknown authentication protocol {0:?} (expected md5, sha, sha224, sha256, sha384 or sha512)"
    )]
    UnknownAuthProtocol(String),
    #[error("unknown privacy protocol {0:?} (expected des or aes)")]
    UnknownPrivProtocol(String),
    #[error("the {0} pass phrase is shorter than {MIN_PASSWORD_LEN} characters")]
    PasswordTooShort(&'static str),
    #[error("privacy requires authentication (USM has no noAuthPriv level)")]
    PrivacyWithoutAuth,
    #[error("user name must be 1 to 32 octets, got {0}")]
    UserName(usize),
}

/// HMAC authentication protocols (usmHMACMD5AuthProtocol, usmHMACSHAAuthProtocol and the
/// usmHMAC*SHA* protocols of RFC 7860).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthProtocol {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl AuthProtocol {
    /// The length of `msgAuthenticationParameters`: the HMAC truncated to 96 bits for MD5 and
    /// SHA-1 (RFC 3414 § 6.3.1, 7.3.1) and to 128/192/256/384 bits for SHA-2 (RFC 7860 § 4.2).
    pub fn mac_len(self) -> usize {
        match self {
            AuthProtocol::Md5 | AuthProtocol::Sha1 => 12,
            AuthProtocol::Sha224 => 16,
            AuthProtocol::Sha256 => 24,
            AuthProtocol::Sha384 => 32,
            AuthProtocol::Sha512 => 48,
        }
    }

    /// The canonical lower-case name, accepted back by `FromStr`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthProtocol::Md5 => "md5",
            AuthProtocol::Sha1 => "sha1",
            AuthProtocol::Sha224 => "sha224",
            AuthProtocol::Sha256 => "sha256",
            AuthProtocol::Sha384 => "sha384",
            AuthProtocol::Sha512 => "sha512",
        }
    }
}

impl fmt::Display for AuthProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthProtocol {
    type Err = UsmError;

    /// Case-insensitive, with or without a dash, so that net-snmp's spelling (`-a SHA-256`)
    /// works as well as ours.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('-', "").as_str() {
            "md5" => Ok(AuthProtocol::Md5),
            "sha" | "sha1" => Ok(AuthProtocol::Sha1),
            "sha224" => Ok(AuthProtocol::Sha224),
            "sha256" => Ok(AuthProtocol::Sha256),
            "sha384" => Ok(AuthProtocol::Sha384),
            "sha512" => Ok(AuthProtocol::Sha512),
            _ => Err(UsmError::UnknownAuthProtocol(s.to_owned())),
        }
    }
}

/// Privacy protocols: usmDESPrivProtocol (RFC 3414) and usmAesCfb128Protocol (RFC 3826).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrivProtocol {
    Des,
    Aes128,
}

impl PrivProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            PrivProtocol::Des => "des",
            PrivProtocol::Aes128 => "aes128",
        }
    }
}

impl fmt::Display for PrivProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PrivProtocol {
    type Err = UsmError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('-', "").as_str() {
            "des" => Ok(PrivProtocol::Des),
            "aes" | "aes128" => Ok(PrivProtocol::Aes128),
            _ => Err(UsmError::UnknownPrivProtocol(s.to_owned())),
        }
    }
}

/// A USM user as configured on this receiver.
///
/// The keys are Ku, the output of password-to-key, which does not depend on any engine: one
/// user serves every device that sends with that name and pass phrase, and the keys are
/// localised per sending engine when a message arrives. The privacy Ku is computed with the
/// authentication protocol's hash, as RFC 3414 § 2.6 prescribes.
#[derive(Clone, PartialEq, Eq)]
pub struct UsmUser {
    pub name: String,
    pub auth: Option<(AuthProtocol, Vec<u8>)>,
    pub privacy: Option<(PrivProtocol, Vec<u8>)>,
}

impl fmt::Debug for UsmUser {
    /// Keys are secrets: Debug shows the protocols only, so a logged user never leaks them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsmUser")
            .field("name", &self.name)
            .field("auth", &self.auth.as_ref().map(|(p, _)| p))
            .field("privacy", &self.privacy.as_ref().map(|(p, _)| p))
            .finish()
    }
}

impl UsmUser {
    /// Builds a user from pass phrases, running the one-megabyte password expansion once per
    /// key (a few milliseconds each): do it when credentials change, not per message.
    pub fn from_passwords(
        name: &str,
        auth: Option<(AuthProtocol, &str)>,
        privacy: Option<(PrivProtocol, &str)>,
    ) -> Result<UsmUser, UsmError> {
        if name.is_empty() || name.len() > 32 {
            return Err(UsmError::UserName(name.len()));
        }
        let auth_key = match auth {
            Some((protocol, password)) => {
                if password.len() < MIN_PASSWORD_LEN {
                    return Err(UsmError::PasswordTooShort("authentication"));
                }
                Some((protocol, password_to_key(protocol, password.as_bytes())))
            }
            None => None,
        };
        let priv_key = match (privacy, auth) {
            (None, _) => None,
            (Some(_), None) => return Err(UsmError::PrivacyWithoutAuth),
            (Some((protocol, password)), Some((auth_protocol, _))) => {
                if password.len() < MIN_PASSWORD_LEN {
                    return Err(UsmError::PasswordTooShort("privacy"));
                }
                Some((
                    protocol,
                    password_to_key(auth_protocol, password.as_bytes()),
                ))
            }
        };
        Ok(UsmUser {
            name: name.to_owned(),
            auth: auth_key,
            privacy: priv_key,
        })
    }

    pub fn level(&self) -> SecurityLevel {
        match (&self.auth, &self.privacy) {
            (None, _) => SecurityLevel::NoAuthNoPriv,
            (Some(_), None) => SecurityLevel::AuthNoPriv,
            (Some(_), Some(_)) => SecurityLevel::AuthPriv,
        }
    }
}

/// The three USM security levels (RFC 3411 § 3.4.3); noAuthPriv does not exist.
#[allow(clippy::enum_variant_names, reason = "the RFC's names for the levels")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecurityLevel {
    NoAuthNoPriv,
    AuthNoPriv,
    AuthPriv,
}

/// Runs `body!` with `$d` bound to the digest type of `$protocol`: the hash functions are
/// distinct types, and this keeps one generic implementation per operation.
macro_rules! with_digest {
    ($protocol:expr, $d:ident => $body:expr) => {
        match $protocol {
            AuthProtocol::Md5 => {
                type $d = Md5;
                $body
            }
            AuthProtocol::Sha1 => {
                type $d = Sha1;
                $body
            }
            AuthProtocol::Sha224 => {
                type $d = Sha224;
                $body
            }
            AuthProtocol::Sha256 => {
                type $d = Sha256;
                $body
            }
            AuthProtocol::Sha384 => {
                type $d = Sha384;
                $body
            }
            AuthProtocol::Sha512 => {
                type $d = Sha512;
                $body
            }
        }
    };
}

/// RFC 3414 A.2 password-to-key (and RFC 7860 § 9.3 for SHA-2, the same algorithm): hash the
/// pass phrase repeated to exactly one megabyte. The result, Ku, is engine independent.
pub fn password_to_key(protocol: AuthProtocol, password: &[u8]) -> Vec<u8> {
    with_digest!(protocol, D => expand::<D>(password))
}

fn expand<D: Digest>(password: &[u8]) -> Vec<u8> {
    let mut hasher = D::new();
    if password.is_empty() {
        // Unreachable through `from_passwords`; hashing nothing keeps this total.
        return hasher.finalize().to_vec();
    }
    // The pass phrase repeated past 64 bytes, so that any 64-byte window of the infinite
    // repetition is a slice of it starting within the first `len` bytes.
    let len = password.len();
    let repeated: Vec<u8> = password.iter().copied().cycle().take(64 + len).collect();
    let mut offset = 0;
    for _ in 0..PASSWORD_EXPANSION / 64 {
        hasher.update(&repeated[offset..offset + 64]);
        offset = (offset + 64) % len;
    }
    hasher.finalize().to_vec()
}

/// RFC 3414 § 2.6 key localisation: Kul = H(Ku ‖ snmpEngineID ‖ Ku).
pub fn localize(protocol: AuthProtocol, ku: &[u8], engine_id: &[u8]) -> Vec<u8> {
    with_digest!(protocol, D => {
        let mut hasher = D::new();
        hasher.update(ku);
        hasher.update(engine_id);
        hasher.update(ku);
        hasher.finalize().to_vec()
    })
}

fn hmac_full<D>(key: &[u8], message: &[u8]) -> Option<Vec<u8>>
where
    D: Digest + BlockSizeUser + FixedOutputReset,
{
    let mut mac = <SimpleHmac<D> as Mac>::new_from_slice(key).ok()?;
    mac.update(message);
    Some(mac.finalize().into_bytes().to_vec())
}

fn hmac_verify<D>(key: &[u8], message: &[u8], tag: &[u8]) -> bool
where
    D: Digest + BlockSizeUser + FixedOutputReset,
{
    let Ok(mut mac) = <SimpleHmac<D> as Mac>::new_from_slice(key) else {
        return false;
    };
    mac.update(message);
    // Constant time: `subtle` compares the leftmost `tag.len()` bytes of the full HMAC.
    mac.verify_truncated_left(tag).is_ok()
}

/// Localised keys of one user for one authoritative engine.
///
/// The privacy key is the localised privacy key cut to what the cipher takes: DES uses its
/// first 16 bytes (8 key bytes, then 8 pre-IV bytes; RFC 3414 § 8.1.1.1), AES-128 its first 16
/// (RFC 3826 § 3.1.2.1). Every supported hash yields at least 16 bytes, so no key extension
/// (the Blumenthal or Reeder drafts, needed only for AES-192/256 and 3DES) is involved.
#[derive(Clone)]
pub struct LocalizedKeys {
    pub auth: Option<(AuthProtocol, Vec<u8>)>,
    pub privacy: Option<(PrivProtocol, [u8; 16])>,
}

impl fmt::Debug for LocalizedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalizedKeys")
            .field("auth", &self.auth.as_ref().map(|(p, _)| p))
            .field("privacy", &self.privacy.as_ref().map(|(p, _)| p))
            .finish()
    }
}

impl LocalizedKeys {
    /// Localises `user`'s keys to `engine_id`. A user with privacy but no authentication (only
    /// constructible by hand) gets no privacy key, so it can never match an authPriv message.
    pub fn new(user: &UsmUser, engine_id: &[u8]) -> LocalizedKeys {
        let auth = user
            .auth
            .as_ref()
            .map(|(protocol, ku)| (*protocol, localize(*protocol, ku, engine_id)));
        let privacy = match (&user.auth, &user.privacy) {
            (Some((auth_protocol, _)), Some((protocol, ku))) => {
                let kul = localize(*auth_protocol, ku, engine_id);
                let mut key = [0u8; 16];
                // Every supported digest is at least 16 bytes long (MD5 is the shortest).
                key.copy_from_slice(&kul[..16]);
                Some((*protocol, key))
            }
            _ => None,
        };
        LocalizedKeys { auth, privacy }
    }

    /// The truncated HMAC of `message` (whose authentication parameters must be zeros), or
    /// `None` without an authentication key.
    pub fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        let (protocol, key) = self.auth.as_ref()?;
        let mut mac = with_digest!(protocol, D => hmac_full::<D>(key, message))?;
        mac.truncate(protocol.mac_len());
        Some(mac)
    }

    /// Checks `tag` against the HMAC of `message` in constant time. The tag must have exactly
    /// the protocol's length: a shorter prefix would be easier to forge.
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        let Some((protocol, key)) = self.auth.as_ref() else {
            return false;
        };
        if tag.len() != protocol.mac_len() {
            return false;
        }
        with_digest!(protocol, D => hmac_verify::<D>(key, message, tag))
    }

    /// Encrypts a serialised scopedPDU; `salt` must be fresh for every message under this key.
    /// Returns the ciphertext and msgPrivacyParameters, or `None` without a privacy key.
    pub fn encrypt(
        &self,
        boots: u32,
        time: u32,
        salt: u64,
        plaintext: &[u8],
    ) -> Option<(Vec<u8>, [u8; 8])> {
        let (protocol, key) = self.privacy.as_ref()?;
        match protocol {
            PrivProtocol::Des => {
                // RFC 3414 § 8.1.1.1: the salt is snmpEngineBoots followed by a local 32-bit
                // counter, and IV = pre-IV XOR salt.
                let mut salt_bytes = [0u8; 8];
                salt_bytes[..4].copy_from_slice(&boots.to_be_bytes());
                salt_bytes[4..].copy_from_slice(&(salt as u32).to_be_bytes());
                let iv = des_iv(key, &salt_bytes);
                // Pad to the DES block size; RFC 3414 § 8.1.1.2 leaves the pad bytes open and
                // the receiver ignores them after the scopedPDU's own length.
                let mut buf = plaintext.to_vec();
                buf.resize(plaintext.len().div_ceil(8) * 8, 0);
                let len = buf.len();
                let cipher = cbc::Encryptor::<Des>::new_from_slices(&key[..8], &iv).ok()?;
                cipher.encrypt_padded_mut::<NoPadding>(&mut buf, len).ok()?;
                Some((buf, salt_bytes))
            }
            PrivProtocol::Aes128 => {
                let salt_bytes = salt.to_be_bytes();
                let iv = aes_iv(boots, time, &salt_bytes);
                let mut buf = plaintext.to_vec();
                cfb_mode::Encryptor::<Aes128>::new_from_slices(key, &iv)
                    .ok()?
                    .encrypt(&mut buf);
                Some((buf, salt_bytes))
            }
        }
    }

    /// Decrypts an encryptedPDU. `None` when there is no privacy key or the parameters are
    /// unusable (msgPrivacyParameters not 8 bytes, DES ciphertext not whole blocks: RFC 3414
    /// § 8.3.2 step 1 and 2); a wrong key is only noticed when the plaintext fails to decode.
    pub fn decrypt(
        &self,
        boots: u32,
        time: u32,
        priv_params: &[u8],
        ciphertext: &[u8],
    ) -> Option<Vec<u8>> {
        let (protocol, key) = self.privacy.as_ref()?;
        let salt: [u8; 8] = priv_params.try_into().ok()?;
        let mut buf = ciphertext.to_vec();
        match protocol {
            PrivProtocol::Des => {
                if !buf.len().is_multiple_of(8) {
                    return None;
                }
                let iv = des_iv(key, &salt);
                cbc::Decryptor::<Des>::new_from_slices(&key[..8], &iv)
                    .ok()?
                    .decrypt_padded_mut::<NoPadding>(&mut buf)
                    .ok()?;
            }
            PrivProtocol::Aes128 => {
                let iv = aes_iv(boots, time, &salt);
                cfb_mode::Decryptor::<Aes128>::new_from_slices(key, &iv)
                    .ok()?
                    .decrypt(&mut buf);
            }
        }
        Some(buf)
    }
}

fn des_iv(key: &[u8; 16], salt: &[u8; 8]) -> [u8; 8] {
    let mut iv = [0u8; 8];
    for (i, byte) in iv.iter_mut().enumerate() {
        *byte = key[8 + i] ^ salt[i];
    }
    iv
}

/// RFC 3826 § 3.1.2.1: IV = snmpEngineBoots ‖ snmpEngineTime ‖ 64-bit salt, big-endian.
fn aes_iv(boots: u32, time: u32, salt: &[u8; 8]) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..4].copy_from_slice(&boots.to_be_bytes());
    iv[4..8].copy_from_slice(&time.to_be_bytes());
    iv[8..].copy_from_slice(salt);
    iv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    const ENGINE: &str = "000000000000000000000002";

    /// RFC 3414 A.3.1: MD5, "maplesyrup", engine 00…02.
    #[test]
    fn rfc3414_a31_md5_key_localisation() {
        let ku = password_to_key(AuthProtocol::Md5, b"maplesyrup");
        assert_eq!(ku, hex("9f af 32 83 88 4e 92 83 4e bc 98 47 d8 ed d9 63"));
        let kul = localize(AuthProtocol::Md5, &ku, &hex(ENGINE));
        assert_eq!(kul, hex("52 6f 5e ed 9f cc e2 6f 89 64 c2 93 07 87 d8 2b"));
    }

    /// RFC 3414 A.3.2: SHA-1, same pass phrase and engine.
    #[test]
    fn rfc3414_a32_sha1_key_localisation() {
        let ku = password_to_key(AuthProtocol::Sha1, b"maplesyrup");
        assert_eq!(
            ku,
            hex("9f b5 cc 03 81 49 7b 37 93 52 89 39 ff 78 8d 5d 79 14 52 11")
        );
        let kul = localize(AuthProtocol::Sha1, &ku, &hex(ENGINE));
        assert_eq!(
            kul,
            hex("66 95 fe bc 92 88 e3 62 82 23 5f c7 15 1f 12 84 97 b3 8f 3f")
        );
    }

    /// RFC 7860 publishes no key vectors. The SHA-2 algorithms are checked end to end instead:
    /// the SHA-224/256/384/512 traps and informs captured from net-snmp in `testdata/`
    /// authenticate (receiver tests). Here: the keys are as long as the digest.
    #[test]
    fn sha2_keys_have_the_digest_length() {
        for (protocol, len) in [
            (AuthProtocol::Sha224, 28),
            (AuthProtocol::Sha256, 32),
            (AuthProtocol::Sha384, 48),
            (AuthProtocol::Sha512, 64),
        ] {
            let ku = password_to_key(protocol, b"maplesyrup");
            assert_eq!(ku.len(), len);
            assert_eq!(localize(protocol, &ku, &hex(ENGINE)).len(), len);
        }
    }

    #[test]
    fn protocol_names_parse_case_insensitively() {
        for (name, protocol) in [
            ("md5", AuthProtocol::Md5),
            ("MD5", AuthProtocol::Md5),
            ("sha", AuthProtocol::Sha1),
            ("SHA1", AuthProtocol::Sha1),
            ("sha224", AuthProtocol::Sha224),
            ("SHA-256", AuthProtocol::Sha256),
            ("sha384", AuthProtocol::Sha384),
            ("sha-512", AuthProtocol::Sha512),
        ] {
            assert_eq!(name.parse::<AuthProtocol>().unwrap(), protocol, "{name}");
            assert_eq!(protocol.as_str().parse::<AuthProtocol>().unwrap(), protocol);
        }
        for (name, protocol) in [
            ("des", PrivProtocol::Des),
            ("DES", PrivProtocol::Des),
            ("aes", PrivProtocol::Aes128),
            ("AES-128", PrivProtocol::Aes128),
        ] {
            assert_eq!(name.parse::<PrivProtocol>().unwrap(), protocol, "{name}");
            assert_eq!(protocol.as_str().parse::<PrivProtocol>().unwrap(), protocol);
        }
        assert!("sha3".parse::<AuthProtocol>().is_err());
        assert!("3des".parse::<PrivProtocol>().is_err());
    }

    #[test]
    fn from_passwords_refuses_what_net_snmp_refuses() {
        assert_eq!(
            UsmUser::from_passwords("u", Some((AuthProtocol::Sha1, "short")), None),
            Err(UsmError::PasswordTooShort("authentication"))
        );
        assert_eq!(
            UsmUser::from_passwords(
                "u",
                Some((AuthProtocol::Sha1, "longenough")),
                Some((PrivProtocol::Aes128, "short"))
            ),
            Err(UsmError::PasswordTooShort("privacy"))
        );
        assert_eq!(
            UsmUser::from_passwords("u", None, Some((PrivProtocol::Aes128, "longenough"))),
            Err(UsmError::PrivacyWithoutAuth)
        );
        assert_eq!(
            UsmUser::from_passwords("", None, None),
            Err(UsmError::UserName(0))
        );
        let user = UsmUser::from_passwords("u", None, None).unwrap();
        assert_eq!(user.level(), SecurityLevel::NoAuthNoPriv);
    }

    #[test]
    fn debug_never_shows_keys() {
        let user = UsmUser::from_passwords(
            "alice",
            Some((AuthProtocol::Sha1, "maplesyrup")),
            Some((PrivProtocol::Aes128, "maplesyrup")),
        )
        .unwrap();
        let shown = format!("{user:?}");
        assert!(shown.contains("alice") && shown.contains("Sha1"));
        let key = &user.auth.as_ref().unwrap().1;
        assert!(!shown.contains(&hex::encode(key)[..8]));
        // Nor as the byte list a derived Debug would print.
        assert!(!shown.contains(&format!("{}, {}", key[0], key[1])));
    }

    fn keys(privacy: PrivProtocol) -> LocalizedKeys {
        let user = UsmUser::from_passwords(
            "alice",
            Some((AuthProtocol::Sha1, "maplesyrup")),
            Some((privacy, "privpassword")),
        )
        .unwrap();
        LocalizedKeys::new(&user, &hex(ENGINE))
    }

    #[test]
    fn des_roundtrip_pads_to_blocks() {
        let keys = keys(PrivProtocol::Des);
        let plaintext = b"a scoped pdu of some odd length".to_vec();
        let (ciphertext, params) = keys.encrypt(7, 99, 0x1234, &plaintext).unwrap();
        assert_eq!(ciphertext.len() % 8, 0);
        assert_eq!(&params[..4], &7u32.to_be_bytes());
        let decrypted = keys.decrypt(7, 99, &params, &ciphertext).unwrap();
        assert_eq!(&decrypted[..plaintext.len()], &plaintext[..]);
        // A ciphertext that is not whole blocks is refused, not decrypted.
        assert!(keys.decrypt(7, 99, &params, &ciphertext[1..]).is_none());
        assert!(keys.decrypt(7, 99, &params[1..], &ciphertext).is_none());
    }

    #[test]
    fn aes_roundtrip_keeps_the_length_and_uses_boots_and_time() {
        let keys = keys(PrivProtocol::Aes128);
        let plaintext = b"a scoped pdu of some odd length".to_vec();
        let (ciphertext, params) = keys.encrypt(7, 99, 42, &plaintext).unwrap();
        assert_eq!(ciphertext.len(), plaintext.len());
        assert_eq!(params, 42u64.to_be_bytes());
        assert_eq!(
            keys.decrypt(7, 99, &params, &ciphertext).unwrap(),
            plaintext
        );
        // boots and time are part of the IV: a different time decrypts to something else.
        assert_ne!(
            keys.decrypt(7, 100, &params, &ciphertext).unwrap(),
            plaintext
        );
    }

    #[test]
    fn hmac_verifies_only_the_exact_truncation() {
        for protocol in [
            AuthProtocol::Md5,
            AuthProtocol::Sha1,
            AuthProtocol::Sha224,
            AuthProtocol::Sha256,
            AuthProtocol::Sha384,
            AuthProtocol::Sha512,
        ] {
            let user = UsmUser::from_passwords("u", Some((protocol, "maplesyrup")), None).unwrap();
            let keys = LocalizedKeys::new(&user, &hex(ENGINE));
            let mac = keys.sign(b"message").unwrap();
            assert_eq!(mac.len(), protocol.mac_len());
            assert!(keys.verify(b"message", &mac));
            assert!(!keys.verify(b"messagE", &mac));
            assert!(!keys.verify(b"message", &mac[..mac.len() - 1]));
            let mut wrong = mac.clone();
            wrong[0] ^= 1;
            assert!(!keys.verify(b"message", &wrong));
        }
    }
}
