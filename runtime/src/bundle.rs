//! Addon bundle files, `<id>-<version>.ocbundle`: one gzip'd tar holding `manifest.json`,
//! `addon.wasm` (none for a rules addon: the runtime's rules engine runs its manifest's rules),
//! `fixtures/*`, `SHA256SUMS` (the sha256 of every other file, in `sha256sum`
//! format) and, when signed, `SIGNATURE`: `ed25519 <key id> <base64 signature>` over the exact
//! bytes of `SHA256SUMS`. A key id is the hex of the first 8 bytes of the sha256 of the public
//! key.
//!
//! [`pack`] writes one from a bundle directory; [`open`] / [`open_bytes`] check the signature
//! against the operator's [`TrustPolicy`] and every file against `SHA256SUMS`, then unpack it
//! into a temporary directory for the install checks ([`install`]), which work on bundle
//! directories. [`CapabilityDiff`] is what an upgrade adds to or removes from what the addon may
//! use. Everything here but [`install`] is synchronous: no store, no sandbox.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, Verifier as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::manifest::{Manifest, WORLD_RULES};

pub mod install;

pub use ed25519_dalek::{SigningKey, VerifyingKey};

pub const EXTENSION: &str = "ocbundle";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const WASM_FILE: &str = "addon.wasm";
pub const SUMS_FILE: &str = "SHA256SUMS";
pub const SIGNATURE_FILE: &str = "SIGNATURE";
/// Largest bundle file accepted (also the upload limit of `POST /api/v1/addons`).
pub const MAX_BUNDLE_BYTES: usize = 64 * 1024 * 1024;
/// Largest total of the unpacked files: a small gzip must not unpack into a full disk.
pub const MAX_UNPACKED_BYTES: u64 = 256 * 1024 * 1024;
const MAX_FILES: usize = 1024;

/// `[bundles]` in the configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BundleConfig {
    /// Public keys (standard base64 of 32 bytes, as `addon keygen` prints them) whose
    /// signatures are trusted.
    pub trusted_keys: Vec<String>,
    /// Refuse bundle files that are not signed by a trusted key.
    pub require_signatures: bool,
}

impl BundleConfig {
    /// The policy this configuration describes; an error names a key that is not one.
    pub fn policy(&self) -> Result<TrustPolicy, BundleError> {
        let keys = self
            .trusted_keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                parse_public_key(k)
                    .map_err(|e| BundleError::Key(format!("bundles.trusted_keys[{i}]: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustPolicy::new(keys, self.require_signatures))
    }
}

/// Which signatures a bundle file needs.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    keys: Vec<(String, VerifyingKey)>,
    require_signatures: bool,
}

impl TrustPolicy {
    pub fn new(keys: Vec<VerifyingKey>, require_signatures: bool) -> TrustPolicy {
        TrustPolicy {
            keys: keys.into_iter().map(|k| (key_id(&k), k)).collect(),
            require_signatures,
        }
    }

    pub fn requires_signatures(&self) -> bool {
        self.require_signatures
    }

    fn key(&self, id: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|(k, _)| k == id).map(|(_, k)| k)
    }
}

/// Who signed an opened bundle, as far as the policy could tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Signer {
    Unsigned,
    /// Signed by this trusted key, and the signature verified.
    Trusted {
        key_id: String,
    },
    /// Signed by a key that is not trusted, accepted because signatures are not required; the
    /// signature proves nothing and was not checked.
    Unverified {
        key_id: String,
    },
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signer::Unsigned => f.write_str("unsigned"),
            Signer::Trusted { key_id } => write!(f, "signed by trusted key {key_id}"),
            Signer::Unverified { key_id } => {
                write!(f, "signed by untrusted key {key_id} (not verified)")
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not a valid bundle file: {0}")]
    Format(String),
    #[error("bundle has no `{0}`")]
    MissingFile(String),
    #[error(
        "bundle file `{file}` does not match SHA256SUMS: listed sha256 {listed}, actual sha256 {actual} (the file was altered after packing)"
    )]
    HashMismatch {
        file: String,
        listed: String,
        actual: String,
    },
    #[error("bundle file `{0}` is not listed in SHA256SUMS")]
    Unlisted(String),
    #[error("SHA256SUMS lists `{0}`, which the bundle does not hold")]
    MissingListed(String),
    #[error(
        "bundle is not signed, and this runtime requires signatures from a trusted key (bundles.require_signatures)"
    )]
    Unsigned,
    #[error(
        "bundle is signed by key {key_id}, which is not among the trusted keys (bundles.trusted_keys)"
    )]
    UntrustedKey { key_id: String },
    #[error(
        "bundle signature by trusted key {key_id} does not verify over SHA256SUMS: the bundle was altered after signing, or the signature is corrupt"
    )]
    BadSignature { key_id: String },
    #[error("{0}")]
    Key(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_owned(),
        source,
    }
}

fn format_err(message: impl Into<String>) -> BundleError {
    BundleError::Format(message.into())
}

// ---- keys ----

/// The id a key is known by: hex of the first 8 bytes of the sha256 of the public key.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

pub fn public_key_base64(key: &VerifyingKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
}

pub fn parse_public_key(text: &str) -> Result<VerifyingKey, BundleError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| BundleError::Key(format!("public key is not base64: {e}")))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        BundleError::Key(format!(
            "an ed25519 public key is 32 bytes, this is {}",
            b.len()
        ))
    })?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|e| BundleError::Key(format!("not an ed25519 public key: {e}")))
}

/// A new signing key from the operating system's randomness.
pub fn generate_key() -> Result<SigningKey, BundleError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| BundleError::Key(format!("no randomness: {e}")))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Writes a signing key as base64 of its 32-byte seed, readable by its owner only; refuses to
/// overwrite an existing file.
pub fn write_signing_key(path: &Path, key: &SigningKey) -> Result<(), BundleError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io_err(path))?;
    let text = base64::engine::general_purpose::STANDARD.encode(key.to_bytes());
    writeln!(file, "{text}").map_err(io_err(path))
}

pub fn read_signing_key(path: &Path) -> Result<SigningKey, BundleError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| BundleError::Key(format!("{}: not base64: {e}", path.display())))?;
    let seed: [u8; 32] = bytes.try_into().map_err(|_| {
        BundleError::Key(format!(
            "{}: not an ed25519 signing key (32 bytes)",
            path.display()
        ))
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

// ---- packing ----

/// A file name this format allows: the fixed names, or `fixtures/<name>` of `[A-Za-z0-9._-]`.
fn allowed_path(path: &str) -> bool {
    match path.strip_prefix("fixtures/") {
        Some(name) => {
            !name.is_empty()
                && !name.starts_with('.')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        }
        None => [MANIFEST_FILE, WASM_FILE, SUMS_FILE, SIGNATURE_FILE].contains(&path),
    }
}

/// A manifest's `id`, `version` and `world`, read without validating the rest, so that a bundle
/// for a world this runtime does not know still opens and is refused by name.
#[derive(Debug, Clone, Deserialize)]
struct Header {
    id: String,
    version: String,
    world: String,
}

fn header(manifest: &[u8]) -> Result<Header, BundleError> {
    let header: Header = serde_json::from_slice(manifest).map_err(|e| {
        format_err(format!(
            "manifest.json needs text `id`, `version`, `world`: {e}"
        ))
    })?;
    let safe = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
    };
    if !safe(&header.id) || !safe(&header.version) {
        return Err(format_err(format!(
            "manifest.json: id `{}` and version `{}` must be letters, digits, `.`, `_`, `+`, `-`",
            header.id, header.version
        )));
    }
    Ok(header)
}

/// Whether a bundle of this manifest carries `addon.wasm`: every addon but a rules addon, which
/// must not (the component that runs it is the runtime's, so a wasm in it would be signed,
/// shipped and never run).
fn check_wasm_presence(header: &Header, has_wasm: bool) -> Result<(), BundleError> {
    match (header.world == WORLD_RULES, has_wasm) {
        (false, false) => Err(BundleError::MissingFile(WASM_FILE.to_owned())),
        (true, true) => Err(format_err(format!(
            "a rules addon (world {WORLD_RULES}) has no {WASM_FILE}: the runtime's rules engine runs its `parse` section"
        ))),
        _ => Ok(()),
    }
}

/// The files of the bundle directory `dir` that go into a bundle, by bundle path.
fn read_bundle_dir(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    let mut files = BTreeMap::new();
    let manifest_path = dir.join(MANIFEST_FILE);
    if !manifest_path.is_file() {
        return Err(BundleError::MissingFile(format!(
            "{MANIFEST_FILE} (in {})",
            dir.display()
        )));
    }
    let manifest = std::fs::read(&manifest_path).map_err(io_err(&manifest_path))?;
    let wasm_path = dir.join(WASM_FILE);
    check_wasm_presence(&header(&manifest)?, wasm_path.is_file()).map_err(|e| match e {
        BundleError::MissingFile(name) => {
            BundleError::MissingFile(format!("{name} (in {})", dir.display()))
        }
        other => other,
    })?;
    files.insert(MANIFEST_FILE.to_owned(), manifest);
    if wasm_path.is_file() {
        files.insert(
            WASM_FILE.to_owned(),
            std::fs::read(&wasm_path).map_err(io_err(&wasm_path))?,
        );
    }
    let fixtures = dir.join("fixtures");
    if fixtures.is_dir() {
        for entry in std::fs::read_dir(&fixtures).map_err(io_err(&fixtures))? {
            let entry = entry.map_err(io_err(&fixtures))?;
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let name = format!("fixtures/{}", entry.file_name().to_string_lossy());
            if !allowed_path(&name) {
                return Err(format_err(format!(
                    "{}: fixture file names are letters, digits, `.`, `_` and `-`",
                    path.display()
                )));
            }
            files.insert(name, std::fs::read(&path).map_err(io_err(&path))?);
        }
    }
    Ok(files)
}

fn sums_text(files: &BTreeMap<String, Vec<u8>>) -> String {
    files
        .iter()
        .map(|(name, bytes)| format!("{}  {name}\n", hex::encode(Sha256::digest(bytes))))
        .collect()
}

fn signature_text(key: &SigningKey, sums: &[u8]) -> String {
    let signature = key.sign(sums);
    format!(
        "ed25519 {} {}\n",
        key_id(&key.verifying_key()),
        base64::engine::general_purpose::STANDARD.encode(signature.to_bytes())
    )
}

/// The bundle file of the bundle directory `dir`: its file name (`<id>-<version>.ocbundle`) and
/// bytes. Deterministic: the same directory and key give the same bytes.
pub fn pack_bytes(dir: &Path, key: Option<&SigningKey>) -> Result<(String, Vec<u8>), BundleError> {
    let files = read_bundle_dir(dir)?;
    let header = header(&files[MANIFEST_FILE])?;
    let sums = sums_text(&files);
    let mut all: Vec<(String, Vec<u8>)> = files.into_iter().collect();
    if let Some(key) = key {
        all.push((
            SIGNATURE_FILE.to_owned(),
            signature_text(key, sums.as_bytes()).into_bytes(),
        ));
    }
    all.push((SUMS_FILE.to_owned(), sums.into_bytes()));
    let bytes = write_archive(&all).map_err(|e| format_err(format!("cannot write: {e}")))?;
    Ok((
        format!("{}-{}.{EXTENSION}", header.id, header.version),
        bytes,
    ))
}

/// Packs the bundle directory `dir` into `out_dir/<id>-<version>.ocbundle`, signed with `key`
/// when given, and returns the file's path.
pub fn pack(dir: &Path, out_dir: &Path, key: Option<&SigningKey>) -> Result<PathBuf, BundleError> {
    let (name, bytes) = pack_bytes(dir, key)?;
    let path = out_dir.join(name);
    std::fs::write(&path, bytes).map_err(io_err(&path))?;
    Ok(path)
}

fn write_archive(files: &[(String, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        tar.append_data(&mut header, name, bytes.as_slice())?;
    }
    tar.into_inner()?.finish()
}

// ---- opening ----

/// A bundle file whose hashes (and signature, as the policy asks) checked out, unpacked.
#[derive(Debug)]
pub struct Bundle {
    dir: tempfile::TempDir,
    pub id: String,
    pub version: String,
    /// The WIT world the manifest names (not yet checked against the supported ones).
    pub world: String,
    pub signer: Signer,
    /// Every file but SHA256SUMS and SIGNATURE, with its sha256.
    pub files: Vec<(String, String)>,
}

impl Bundle {
    /// The unpacked bundle directory (`manifest.json`, `addon.wasm`, `fixtures/`), removed when
    /// the bundle is dropped.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The manifest, parsed and validated.
    pub fn manifest(&self) -> Result<Manifest, crate::manifest::ManifestError> {
        let bytes = std::fs::read(self.dir().join(MANIFEST_FILE)).unwrap_or_default();
        Manifest::from_json(&bytes)
    }
}

/// Opens the bundle file at `path`; see [`open_bytes`].
pub fn open(path: &Path, policy: &TrustPolicy) -> Result<Bundle, BundleError> {
    let len = std::fs::metadata(path).map_err(io_err(path))?.len();
    if len > MAX_BUNDLE_BYTES as u64 {
        return Err(format_err(format!(
            "{} is {len} bytes; the limit is {MAX_BUNDLE_BYTES}",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    open_bytes(&bytes, policy)
}

/// Checks a bundle file and unpacks it: the signature as `policy` asks (over SHA256SUMS), then
/// every file against SHA256SUMS — a file not listed, listed but absent, or with another digest
/// is refused, naming it. Takes a gzip'd or plain tar.
pub fn open_bytes(bytes: &[u8], policy: &TrustPolicy) -> Result<Bundle, BundleError> {
    let mut files = read_archive(bytes)?;
    let sums = files
        .remove(SUMS_FILE)
        .ok_or_else(|| BundleError::MissingFile(SUMS_FILE.to_owned()))?;
    let signature = files.remove(SIGNATURE_FILE);
    let signer = check_signature(signature.as_deref(), &sums, policy)?;

    let listed = parse_sums(&sums)?;
    for (name, bytes) in &files {
        let actual = hex::encode(Sha256::digest(bytes));
        match listed.get(name) {
            None => return Err(BundleError::Unlisted(name.clone())),
            Some(want) if *want != actual => {
                return Err(BundleError::HashMismatch {
                    file: name.clone(),
                    listed: want.clone(),
                    actual,
                });
            }
            Some(_) => {}
        }
    }
    if let Some(name) = listed.keys().find(|name| !files.contains_key(*name)) {
        return Err(BundleError::MissingListed(name.clone()));
    }
    let manifest = files
        .get(MANIFEST_FILE)
        .ok_or_else(|| BundleError::MissingFile(MANIFEST_FILE.to_owned()))?;
    let header = header(manifest)?;
    check_wasm_presence(&header, files.contains_key(WASM_FILE))?;

    let dir = tempfile::Builder::new()
        .prefix("opsconductor-bundle-")
        .tempdir()
        .map_err(io_err(&std::env::temp_dir()))?;
    std::fs::create_dir(dir.path().join("fixtures")).map_err(io_err(dir.path()))?;
    for (name, bytes) in &files {
        // `allowed_path` admitted only fixed names and `fixtures/<plain name>`.
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).map_err(io_err(&path))?;
    }
    Ok(Bundle {
        dir,
        id: header.id,
        version: header.version,
        world: header.world,
        signer,
        files: listed.into_iter().collect(),
    })
}

fn read_archive(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    let reader: Box<dyn Read + '_> = if bytes.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let mut archive = tar::Archive::new(reader);
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| format_err(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format_err(format!("not a tar archive: {e}")))?;
        let kind = entry.header().entry_type();
        let name = entry
            .path()
            .map_err(|e| format_err(format!("a file name is not valid: {e}")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(format_err(format!(
                "`{name}` is not a regular file (links and devices are not allowed)"
            )));
        }
        if !allowed_path(&name) {
            return Err(format_err(format!(
                "unexpected file `{name}` (a bundle holds manifest.json, addon.wasm, fixtures/*, \
                 SHA256SUMS and SIGNATURE)"
            )));
        }
        if files.len() >= MAX_FILES {
            return Err(format_err(format!("more than {MAX_FILES} files")));
        }
        let mut data = Vec::new();
        let room = MAX_UNPACKED_BYTES - total;
        (&mut entry)
            .take(room + 1)
            .read_to_end(&mut data)
            .map_err(|e| format_err(format!("`{name}`: {e}")))?;
        total += data.len() as u64;
        if total > MAX_UNPACKED_BYTES {
            return Err(format_err(format!(
                "unpacks to more than {MAX_UNPACKED_BYTES} bytes"
            )));
        }
        if files.insert(name.clone(), data).is_some() {
            return Err(format_err(format!("`{name}` is in the archive twice")));
        }
    }
    Ok(files)
}

fn parse_sums(sums: &[u8]) -> Result<BTreeMap<String, String>, BundleError> {
    let text = std::str::from_utf8(sums).map_err(|_| format_err("SHA256SUMS is not UTF-8 text"))?;
    let mut listed = BTreeMap::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = || {
            format_err(format!(
                "SHA256SUMS line {}: expected `<sha256>  <file>`",
                i + 1
            ))
        };
        let (digest, name) = line.split_once("  ").ok_or_else(bad)?;
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        if listed
            .insert(name.to_owned(), digest.to_ascii_lowercase())
            .is_some()
        {
            return Err(format_err(format!("SHA256SUMS lists `{name}` twice")));
        }
    }
    Ok(listed)
}

fn check_signature(
    signature: Option<&[u8]>,
    sums: &[u8],
    policy: &TrustPolicy,
) -> Result<Signer, BundleError> {
    let Some(signature) = signature else {
        return if policy.require_signatures {
            Err(BundleError::Unsigned)
        } else {
            Ok(Signer::Unsigned)
        };
    };
    let text =
        std::str::from_utf8(signature).map_err(|_| format_err("SIGNATURE is not UTF-8 text"))?;
    let mut parts = text.split_whitespace();
    let (Some("ed25519"), Some(key_id), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format_err(
            "SIGNATURE must be `ed25519 <key id> <base64 signature>`",
        ));
    };
    let key_id = key_id.to_owned();
    let Some(key) = policy.key(&key_id) else {
        return if policy.require_signatures {
            Err(BundleError::UntrustedKey { key_id })
        } else {
            Ok(Signer::Unverified { key_id })
        };
    };
    let bad = || BundleError::BadSignature {
        key_id: key_id.clone(),
    };
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig)
        .map_err(|_| bad())?;
    let sig = Signature::from_slice(&sig).map_err(|_| bad())?;
    key.verify(sums, &sig).map_err(|_| bad())?;
    Ok(Signer::Trusted { key_id })
}

// ---- capability differences ----

/// A numeric limit that changed between two versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct LimitChange {
    /// The manifest field, e.g. `capabilities.memory_mb`.
    pub field: &'static str,
    pub from: u64,
    pub to: u64,
}

/// What an upgrade changes in what the addon may use: hosts and SSH commands its scripted
/// polls may reach, its methods (a new way in), and the memory, CPU and time budgets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CapabilityDiff {
    pub hosts_added: Vec<String>,
    pub hosts_removed: Vec<String>,
    pub ssh_commands_added: Vec<String>,
    pub ssh_commands_removed: Vec<String>,
    pub methods_added: Vec<String>,
    pub methods_removed: Vec<String>,
    pub limits: Vec<LimitChange>,
}

impl CapabilityDiff {
    pub fn between(old: &Manifest, new: &Manifest) -> CapabilityDiff {
        fn added(from: &[String], to: &[String]) -> Vec<String> {
            to.iter().filter(|x| !from.contains(x)).cloned().collect()
        }
        let methods = |m: &Manifest| -> Vec<String> {
            m.methods
                .iter()
                .map(|m| {
                    serde_json::to_value(m)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .collect()
        };
        let (oc, nc) = (&old.capabilities, &new.capabilities);
        let poll_timeout = |m: &Manifest| m.poll.as_ref().map_or(0, |p| u64::from(p.timeout_ms));
        let limits = [
            ("capabilities.memory_mb", oc.memory_mb, nc.memory_mb),
            ("capabilities.cpu_ms", oc.cpu_ms, nc.cpu_ms),
            ("capabilities.timeout_ms", oc.timeout_ms, nc.timeout_ms),
            ("capabilities.instances", oc.instances, nc.instances),
        ]
        .into_iter()
        .map(|(field, from, to)| (field, u64::from(from), u64::from(to)))
        .chain([("poll.timeout_ms", poll_timeout(old), poll_timeout(new))])
        .filter(|(_, from, to)| from != to)
        .map(|(field, from, to)| LimitChange { field, from, to })
        .collect();
        let (om, nm) = (methods(old), methods(new));
        CapabilityDiff {
            hosts_added: added(&oc.hosts, &nc.hosts),
            hosts_removed: added(&nc.hosts, &oc.hosts),
            ssh_commands_added: added(&oc.ssh_commands, &nc.ssh_commands),
            ssh_commands_removed: added(&nc.ssh_commands, &oc.ssh_commands),
            methods_added: added(&om, &nm),
            methods_removed: added(&nm, &om),
            limits,
        }
    }

    /// Whether the new version may do anything the old one could not.
    pub fn widens(&self) -> bool {
        !self.hosts_added.is_empty()
            || !self.ssh_commands_added.is_empty()
            || !self.methods_added.is_empty()
            || self.limits.iter().any(|l| l.to > l.from)
    }

    pub fn is_empty(&self) -> bool {
        *self == CapabilityDiff::default()
    }
}

/// One line per change: `+ host api.example.com`, `- ssh command `uptime``,
/// `~ capabilities.memory_mb 64 -> 128 (more)`.
impl fmt::Display for CapabilityDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("  (no capability changes)");
        }
        let mut lines = Vec::new();
        for (sign, what, list) in [
            ('+', "host", &self.hosts_added),
            ('-', "host", &self.hosts_removed),
            ('+', "ssh command", &self.ssh_commands_added),
            ('-', "ssh command", &self.ssh_commands_removed),
            ('+', "method", &self.methods_added),
            ('-', "method", &self.methods_removed),
        ] {
            lines.extend(list.iter().map(|x| format!("  {sign} {what} `{x}`")));
        }
        for l in &self.limits {
            let how = if l.to > l.from { "more" } else { "less" };
            lines.push(format!("  ~ {} {} -> {} ({how})", l.field, l.from, l.to));
        }
        f.write_str(&lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            r#"{"id": "demo", "version": "1.2.3", "world": "opsconductor:addon/addon@0.2.0"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join(WASM_FILE), b"\0asm not really").unwrap();
        std::fs::create_dir(dir.path().join("fixtures")).unwrap();
        std::fs::write(dir.path().join("fixtures/a.input.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("fixtures/a.expected.json"), b"[]").unwrap();
        dir
    }

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn trusting(keys: &[&SigningKey], require: bool) -> TrustPolicy {
        TrustPolicy::new(keys.iter().map(|k| k.verifying_key()).collect(), require)
    }

    /// Rewrites one file of a bundle file (as an attacker would, keeping the rest).
    fn replace(bundle: &[u8], file: &str, with: &[u8]) -> Vec<u8> {
        let mut files: Vec<(String, Vec<u8>)> = read_archive(bundle).unwrap().into_iter().collect();
        files.iter_mut().find(|(n, _)| n == file).unwrap().1 = with.to_vec();
        write_archive(&files).unwrap()
    }

    #[test]
    fn packs_and_opens_signed_and_unsigned() {
        let dir = bundle_dir();
        let k = key(1);
        let (name, signed) = pack_bytes(dir.path(), Some(&k)).unwrap();
        assert_eq!(name, "demo-1.2.3.ocbundle");
        // Deterministic.
        assert_eq!(pack_bytes(dir.path(), Some(&k)).unwrap().1, signed);
        let b = open_bytes(&signed, &trusting(&[&k], true)).unwrap();
        assert_eq!((b.id.as_str(), b.version.as_str()), ("demo", "1.2.3"));
        assert_eq!(
            b.signer,
            Signer::Trusted {
                key_id: key_id(&k.verifying_key())
            }
        );
        assert_eq!(
            std::fs::read(b.dir().join("fixtures/a.input.json")).unwrap(),
            b"{}"
        );
        assert_eq!(b.files.len(), 4);
        let (_, unsigned) = pack_bytes(dir.path(), None).unwrap();
        let b = open_bytes(&unsigned, &TrustPolicy::default()).unwrap();
        assert_eq!(b.signer, Signer::Unsigned);
        // An untrusted signature is no signature when none is required.
        let b = open_bytes(&signed, &TrustPolicy::default()).unwrap();
        assert!(
            matches!(b.signer, Signer::Unverified { .. }),
            "{:?}",
            b.signer
        );
        // The file on disk.
        let out = tempfile::tempdir().unwrap();
        let path = pack(dir.path(), out.path(), Some(&k)).unwrap();
        assert!(path.ends_with("demo-1.2.3.ocbundle"));
        open(&path, &trusting(&[&k], true)).unwrap();
    }

    /// A rules addon's bundle has no `addon.wasm`; one that carries a wasm anyway is refused
    /// when packed and when opened (the runtime would sign and ship it and never run it), and
    /// any other bundle still needs its wasm.
    #[test]
    fn a_rules_bundle_has_no_wasm_and_every_other_bundle_has_one() {
        let rules = format!(r#"{{"id": "demo", "version": "1.2.3", "world": "{WORLD_RULES}"}}"#);
        let dir = bundle_dir();
        std::fs::write(dir.path().join(MANIFEST_FILE), &rules).unwrap();
        let err = pack_bytes(dir.path(), None).unwrap_err().to_string();
        assert!(
            err.contains("a rules addon") && err.contains(WASM_FILE),
            "{err}"
        );

        std::fs::remove_file(dir.path().join(WASM_FILE)).unwrap();
        let (_, packed) = pack_bytes(dir.path(), None).unwrap();
        let opened = open_bytes(&packed, &TrustPolicy::default()).unwrap();
        assert!(!opened.dir().join(WASM_FILE).exists());
        assert!(opened.files.iter().all(|(name, _)| name != WASM_FILE));

        // A wasm slipped into a rules bundle, listed in SHA256SUMS so the hashes agree.
        let mut files = BTreeMap::new();
        files.insert(MANIFEST_FILE.to_owned(), rules.into_bytes());
        files.insert(WASM_FILE.to_owned(), b"\0asm unused".to_vec());
        let sums = sums_text(&files);
        let mut all: Vec<(String, Vec<u8>)> = files.into_iter().collect();
        all.push((SUMS_FILE.to_owned(), sums.into_bytes()));
        let err = open_bytes(&write_archive(&all).unwrap(), &TrustPolicy::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("a rules addon"), "{err}");

        let compiled = bundle_dir();
        std::fs::remove_file(compiled.path().join(WASM_FILE)).unwrap();
        let err = pack_bytes(compiled.path(), None).unwrap_err();
        assert!(
            matches!(&err, BundleError::MissingFile(f) if f.starts_with(WASM_FILE)),
            "{err}"
        );
    }

    #[test]
    fn refusals_say_why() {
        let dir = bundle_dir();
        let (k, other) = (key(1), key(2));
        let (_, signed) = pack_bytes(dir.path(), Some(&k)).unwrap();
        let (_, unsigned) = pack_bytes(dir.path(), None).unwrap();

        let err = open_bytes(&unsigned, &trusting(&[&k], true)).unwrap_err();
        assert!(matches!(err, BundleError::Unsigned), "{err}");
        let err = open_bytes(&signed, &trusting(&[&other], true)).unwrap_err();
        let id = key_id(&k.verifying_key());
        assert!(
            matches!(&err, BundleError::UntrustedKey { key_id } if *key_id == id),
            "{err}"
        );
        assert!(err.to_string().contains(&id), "{err}");

        // A tampered wasm, SHA256SUMS left alone: named, with both digests.
        let tampered = replace(&signed, WASM_FILE, b"\0asm evil");
        let err = open_bytes(&tampered, &trusting(&[&k], true)).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, BundleError::HashMismatch { .. }), "{msg}");
        assert!(msg.contains("addon.wasm"), "{msg}");
        assert!(
            msg.contains(&hex::encode(Sha256::digest(b"\0asm evil"))),
            "{msg}"
        );
        assert!(
            msg.contains(&hex::encode(Sha256::digest(b"\0asm not really"))),
            "{msg}"
        );

        // Tampered wasm and re-hashed SHA256SUMS: the signature no longer verifies.
        let mut files = read_bundle_dir(dir.path()).unwrap();
        files.insert(WASM_FILE.into(), b"\0asm evil".to_vec());
        let rehashed = replace(&tampered, SUMS_FILE, sums_text(&files).as_bytes());
        let err = open_bytes(&rehashed, &trusting(&[&k], false)).unwrap_err();
        assert!(matches!(err, BundleError::BadSignature { .. }), "{err}");
        // A garbled signature.
        let garbled = replace(
            &signed,
            SIGNATURE_FILE,
            format!("ed25519 {id} AAAA\n").as_bytes(),
        );
        let err = open_bytes(&garbled, &trusting(&[&k], false)).unwrap_err();
        assert!(matches!(err, BundleError::BadSignature { .. }), "{err}");

        // Files not listed, listed but missing, and names outside the format.
        let mut extra: Vec<(String, Vec<u8>)> =
            read_archive(&unsigned).unwrap().into_iter().collect();
        extra.push(("fixtures/b.input.json".into(), b"{}".to_vec()));
        let err = open_bytes(&write_archive(&extra).unwrap(), &TrustPolicy::default()).unwrap_err();
        assert!(
            matches!(&err, BundleError::Unlisted(f) if f == "fixtures/b.input.json"),
            "{err}"
        );
        extra.retain(|(n, _)| n != "fixtures/b.input.json" && n != "fixtures/a.input.json");
        let err = open_bytes(&write_archive(&extra).unwrap(), &TrustPolicy::default()).unwrap_err();
        assert!(
            matches!(&err, BundleError::MissingListed(f) if f == "fixtures/a.input.json"),
            "{err}"
        );
        // The tar crate refuses to write `..`; an attacker's tool does not.
        let evil = {
            let mut header = tar::Header::new_old();
            header.as_old_mut().name[..13].copy_from_slice(b"../etc/passwd");
            header.set_size(1);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            let mut tar = tar::Builder::new(Vec::new());
            tar.append(&header, &b"x"[..]).unwrap();
            tar.into_inner().unwrap()
        };
        let err = open_bytes(&evil, &TrustPolicy::default()).unwrap_err();
        assert!(
            err.to_string().contains("unexpected file `../etc/passwd`"),
            "{err}"
        );
        let err = open_bytes(b"not a bundle at all", &TrustPolicy::default()).unwrap_err();
        assert!(
            matches!(err, BundleError::Format(_) | BundleError::MissingFile(_)),
            "{err}"
        );
    }

    #[test]
    fn keys_round_trip_and_config_names_a_bad_key() {
        let dir = tempfile::tempdir().unwrap();
        let k = generate_key().unwrap();
        let path = dir.path().join("ops.key");
        write_signing_key(&path, &k).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            write_signing_key(&path, &k).is_err(),
            "never overwrites a key"
        );
        assert_eq!(read_signing_key(&path).unwrap().to_bytes(), k.to_bytes());
        let public = public_key_base64(&k.verifying_key());
        let config = BundleConfig {
            trusted_keys: vec![public.clone()],
            require_signatures: true,
        };
        let policy = config.policy().unwrap();
        assert!(policy.key(&key_id(&k.verifying_key())).is_some());
        let err = BundleConfig {
            trusted_keys: vec![public, "bm9wZQ==".into()],
            require_signatures: false,
        }
        .policy()
        .unwrap_err();
        assert!(err.to_string().contains("bundles.trusted_keys[1]"), "{err}");
    }

    #[test]
    fn capability_diff_lists_what_widens() {
        let old: Manifest = serde_json::from_value(serde_json::json!({
            "id": "x", "name": "X", "version": "1.0.0", "world": crate::manifest::WORLD_V0_2,
            "methods": ["api_poll"], "poll": {"mode": "scripted"},
            "capabilities": {"hosts": ["{target}", "old.example.com"], "memory_mb": 64}
        }))
        .unwrap();
        let mut new = old.clone();
        assert!(CapabilityDiff::between(&old, &new).is_empty());
        new.capabilities.hosts = vec!["{target}".into(), "api.example.com".into()];
        new.capabilities.ssh_commands = vec!["uptime".into()];
        new.capabilities.memory_mb = 128;
        new.capabilities.cpu_ms = 500;
        let diff = CapabilityDiff::between(&old, &new);
        assert!(diff.widens());
        assert_eq!(diff.hosts_added, ["api.example.com"]);
        assert_eq!(diff.hosts_removed, ["old.example.com"]);
        let text = diff.to_string();
        for want in [
            "+ host `api.example.com`",
            "- host `old.example.com`",
            "+ ssh command `uptime`",
            "~ capabilities.memory_mb 64 -> 128 (more)",
            "~ capabilities.cpu_ms 1000 -> 500 (less)",
        ] {
            assert!(text.contains(want), "{want} in\n{text}");
        }
        // Narrowing only is no widening.
        let narrower = {
            let mut m = old.clone();
            m.capabilities.hosts.pop();
            m.capabilities.memory_mb = 32;
            m
        };
        assert!(!CapabilityDiff::between(&old, &narrower).widens());
    }
}
