//! Secrets at rest: the key-encryption key that seals every secret the database holds (token
//! signing keys, poll credentials, SNMP communities and USM keys, webhook secrets), and the
//! sealed form the store writes in their columns.
//!
//! A sealed value is text, `enc:v1:<key id>:<base64 of nonce ‖ AES-256-GCM ciphertext>`, so it
//! fits a TEXT and a BLOB column alike. The associated data names the column it belongs to:
//! a sealed value copied into another column (a community into a signing key's place) does
//! not open. The key id (the first 8 hex digits of the key's SHA-256) lets a key file hold the
//! new key and the previous one while `opsconductor secrets rotate-key` re-seals.
//!
//! The key comes from `OPSCONDUCTOR_SECRETS_KEY` (standard base64 of 32 bytes) or from the key
//! file (by default beside the data directory, `data.key` for `data/`), which is generated,
//! mode 0600, on first start. It lives apart from the data directory so that a copy of the
//! database or of its backups alone yields nothing usable. This module owns the key file I/O;
//! the store calls [`SecretKeys::seal`] and [`SecretKeys::open`] and nothing else does.

use std::fmt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// What every sealed value starts with.
pub const SEALED_PREFIX: &str = "enc:v1:";
/// The environment variable that holds the key itself, instead of a key file.
pub const KEY_ENV: &str = "OPSCONDUCTOR_SECRETS_KEY";
/// How a key file's lines start: the format, then the key in standard base64.
const KEY_LINE_PREFIX: &str = "opsconductor-secrets-key-v1 ";
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read the secrets key file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the secrets key file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the secrets key {origin} is not usable: {reason}")]
    BadKey { origin: String, reason: String },
    #[error(
        "a secret in the database was sealed with key {kid}, which the secrets key does not \
         hold (keys held: {held}); restore the key file that was in use, or set {KEY_ENV}"
    )]
    UnknownKey { kid: String, held: String },
    #[error("a sealed secret is malformed or was altered ({0})")]
    Malformed(&'static str),
}

/// One 256-bit key and its id.
#[derive(Clone)]
struct Key {
    id: String,
    /// Kept for writing the key file during a rotation.
    raw: [u8; 32],
    cipher: Aes256Gcm,
}

impl Key {
    fn new(bytes: &[u8; 32]) -> Key {
        let digest = Sha256::digest(bytes);
        Key {
            id: hex::encode(&digest[..4]),
            raw: *bytes,
            cipher: Aes256Gcm::new(bytes.into()),
        }
    }

    fn parse(text: &str, origin: &str) -> Result<Key, SecretsError> {
        let bad = |reason: &str| SecretsError::BadKey {
            origin: origin.to_owned(),
            reason: reason.to_owned(),
        };
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| bad("not standard base64"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| bad("not 32 bytes once decoded"))?;
        Ok(Key::new(&bytes))
    }
}

/// The keys that seal and open secrets: the first seals, every one opens. Debug shows key ids
/// only.
#[derive(Clone)]
pub struct SecretKeys {
    keys: Vec<Key>,
}

impl fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKeys")
            .field("ids", &self.ids())
            .finish()
    }
}

/// Where a runtime's key comes from. Debug never shows a key.
#[derive(Clone)]
pub enum KeySource {
    /// `OPSCONDUCTOR_SECRETS_KEY`'s value: never written anywhere by the runtime.
    Env(String),
    /// A key file, generated when absent.
    File(PathBuf),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env(_) => f.write_str("Env(<redacted>)"),
            KeySource::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl KeySource {
    /// The key file beside a data directory: `data.key` for `data/`, `/var/lib/oc.key` for
    /// `/var/lib/oc`.
    pub fn default_file(data_dir: &Path) -> PathBuf {
        let name = data_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "data".to_owned());
        data_dir.with_file_name(format!("{name}.key"))
    }

    /// Loads the keys, generating the key file (0600) when it does not exist yet.
    pub fn load(&self) -> Result<SecretKeys, SecretsError> {
        match self {
            KeySource::Env(text) => Ok(SecretKeys {
                keys: vec![Key::parse(text, KEY_ENV)?],
            }),
            KeySource::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => SecretKeys::parse_file(&text, path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let keys = SecretKeys::generate();
                    write_key_file(path, &keys)?;
                    tracing::info!(path = %path.display(), "generated the secrets key file; back it up apart from the database");
                    Ok(keys)
                }
                Err(source) => Err(SecretsError::Read {
                    path: path.clone(),
                    source,
                }),
            },
        }
    }
}

impl SecretKeys {
    /// One fresh random key.
    pub fn generate() -> SecretKeys {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
        SecretKeys {
            keys: vec![Key::new(&bytes)],
        }
    }

    fn parse_file(text: &str, path: &Path) -> Result<SecretKeys, SecretsError> {
        let origin = format!("file {}", path.display());
        let keys = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| match line.strip_prefix(KEY_LINE_PREFIX) {
                Some(key) => Key::parse(key, &origin),
                None => Err(SecretsError::BadKey {
                    origin: origin.clone(),
                    reason: format!("a line does not start with `{}`", KEY_LINE_PREFIX.trim()),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(SecretsError::BadKey {
                origin,
                reason: "it holds no key".to_owned(),
            });
        }
        Ok(SecretKeys { keys })
    }

    /// The ids of the keys held, the sealing one first.
    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.id.clone()).collect()
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> &str {
        &self.keys[0].id
    }

    /// These keys with `newer` sealing from now on, the old ones still opening: what a
    /// rotation holds while it re-seals.
    pub fn rotated_to(self, newer: SecretKeys) -> SecretKeys {
        let mut keys = newer.keys;
        keys.extend(self.keys);
        SecretKeys { keys }
    }

    /// Only the sealing key, the others dropped: what a rotation keeps once every secret is
    /// re-sealed.
    pub fn current_only(mut self) -> SecretKeys {
        self.keys.truncate(1);
        self
    }

    /// Seals `plaintext` for `column` (e.g. `credentials.secret`) with the current key.
    pub fn seal(&self, column: &str, plaintext: &[u8]) -> String {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system provides random bytes");
        let ciphertext = key
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: column.as_bytes(),
                },
            )
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        let mut body = nonce.to_vec();
        body.extend_from_slice(&ciphertext);
        format!("{SEALED_PREFIX}{}:{}", key.id, STANDARD.encode(body))
    }

    /// Opens a value [`seal`](Self::seal)ed for `column`.
    pub fn open(&self, column: &str, sealed: &str) -> Result<Vec<u8>, SecretsError> {
        let rest = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(SecretsError::Malformed("not sealed"))?;
        let (kid, body) = rest
            .split_once(':')
            .ok_or(SecretsError::Malformed("no key id"))?;
        let key =
            self.keys
                .iter()
                .find(|k| k.id == kid)
                .ok_or_else(|| SecretsError::UnknownKey {
                    kid: kid.to_owned(),
                    held: self.ids().join(", "),
                })?;
        let body = STANDARD
            .decode(body)
            .map_err(|_| SecretsError::Malformed("not base64"))?;
        if body.len() < NONCE_LEN {
            return Err(SecretsError::Malformed("too short"));
        }
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at NONCE_LEN");
        key.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: column.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::Malformed("authentication failed"))
    }

    /// Whether `stored` must be (re-)sealed: it is plaintext, or sealed with a key other than
    /// the current one.
    pub fn needs_sealing(&self, stored: &str) -> bool {
        match stored.strip_prefix(SEALED_PREFIX) {
            None => true,
            Some(rest) => !rest.starts_with(&format!("{}:", self.current_id())),
        }
    }
}

/// Whether a stored value is in sealed form (as opposed to a row written before sealing).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

/// Writes `keys` to `path`, mode 0600, replacing it atomically (write beside, then rename).
pub fn write_key_file(path: &Path, keys: &SecretKeys) -> Result<(), SecretsError> {
    let werr = |source| SecretsError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(werr)?;
    }
    let mut text = String::from(
        "# OpsConductor secrets key: seals the secrets in the database. Keep it apart from the\n\
         # database and its backups; without it those secrets cannot be read. The first key\n\
         # seals, every key opens.\n",
    );
    for key in &keys.keys {
        text.push_str(KEY_LINE_PREFIX);
        text.push_str(&STANDARD.encode(key.raw));
        text.push('\n');
    }
    let tmp = path.with_extension("key.tmp");
    let _ = std::fs::remove_file(&tmp);
    {
        use std::io::Write as _;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(werr)?;
        file.write_all(text.as_bytes()).map_err(werr)?;
        file.sync_all().map_err(werr)?;
    }
    std::fs::rename(&tmp, path).map_err(werr)
}
