//! The SSH poller: one connection per call (russh, `ring` backend), the server's host key checked
//! against a pinned fingerprint during the key exchange, then password or private-key
//! authentication and each command on a channel of its own, one after the other.
//!
//! Host-key pinning happens inside the handshake, in [`Handler::check_server_key`]: russh calls
//! it at the end of the key exchange, once the server has proven it holds the key and before the
//! client asks for the authentication service. A key other than the pinned one drops the
//! connection there, so a man in the middle never sees a user name, a password or a public-key
//! signature. `pinned = None` is trust on first use: the key is accepted and returned for the
//! caller to store.
//!
//! Error mapping follows [`PollError`]: nobody answering SSH (DNS, connection refused, timeout
//! or connection dropped before the handshake completed) is `Unreachable`; a server that
//! answered but that we could not use (protocol error, rejected authentication, a command it
//! refused to start, a session that outlived its budget once logged in) is `Failed`. A command
//! that runs and exits non-zero is not an error: its status is in the [`SshOutput`].
//!
//! Error messages name the user, host and port and never a password, key or passphrase.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, DisconnectReason, Handle, Handler};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect, MethodKind, Sig, SshId};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::PollError;
use crate::egress::EgressPolicy;
use crate::event::SshOutput;

/// Cap on what is kept of one command's stdout, and separately of its stderr. Output beyond it
/// is read and dropped (so the command still runs to its end and its exit status is real), and
/// a note at the end of stderr says so.
pub const MAX_OUTPUT: usize = 1024 * 1024;

/// How to authenticate to a target. `Debug` shows no secret.
#[derive(Clone, PartialEq, Eq)]
pub enum SshAuth {
    Password(String),
    /// A private key in OpenSSH format (`-----BEGIN OPENSSH PRIVATE KEY-----`; PKCS#1/PKCS#8
    /// PEM are read too), encrypted or not.
    PrivateKey {
        pem: String,
        passphrase: Option<String>,
    },
}

impl fmt::Debug for SshAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SshAuth::Password(_) => f.debug_tuple("Password").field(&"<redacted>").finish(),
            SshAuth::PrivateKey { passphrase, .. } => f
                .debug_struct("PrivateKey")
                .field("pem", &"<redacted>")
                .field("passphrase", &passphrase.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

/// Where and as whom to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshEndpoint {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub auth: SshAuth,
    /// Budget of the whole session: connection, handshake, authentication and every command.
    pub timeout: Duration,
}

impl SshEndpoint {
    /// `host:port`, with brackets around an IPv6 address: how the endpoint is named in errors.
    fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A server's host key, as presented in the handshake or as pinned by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// The key's algorithm, e.g. `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`.
    pub key_type: String,
    /// OpenSSH one-line form without comment, e.g. `ssh-ed25519 AAAAC3Nza…`.
    pub public_key: String,
    /// `SHA256:<base64>` as `ssh-keygen -l` prints it. Pinning compares this field only, so a
    /// pin can be made from a fingerprint an operator read off the device.
    pub fingerprint: String,
}

impl HostKey {
    fn from_public_key(key: &PublicKey) -> HostKey {
        // The key came out of the handshake, so it encodes: `to_openssh` only fails on keys
        // that cannot be represented, which the decoder would have rejected already.
        let mut key = key.clone();
        key.set_comment("");
        let public_key = key
            .to_openssh()
            .map(|line| line.trim_end().to_owned())
            .unwrap_or_default();
        HostKey {
            key_type: key.algorithm().as_str().to_owned(),
            public_key,
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        }
    }

    fn matches(&self, presented: &HostKey) -> bool {
        self.fingerprint.trim() == presented.fingerprint
    }
}

/// The SSH client. Holds only configuration; each [`SshPoller::exec`] opens its own connection.
#[derive(Clone)]
pub struct SshPoller {
    config: Arc<client::Config>,
    /// Checked on the resolved address before connecting to it.
    egress: Arc<EgressPolicy>,
}

impl fmt::Debug for SshPoller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshPoller").finish_non_exhaustive()
    }
}

/// What the session is doing, so that running out of time can say where it happened and
/// whether the target answered at all.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Connecting,
    Handshake,
    Authenticating,
    Running(usize),
}

impl SshPoller {
    /// A client that connects only where `egress` allows.
    pub fn new(egress: Arc<EgressPolicy>) -> SshPoller {
        let config = client::Config {
            client_id: SshId::Standard(
                concat!("SSH-2.0-opsconductor_", env!("CARGO_PKG_VERSION")).into(),
            ),
            // Small request/response exchanges: Nagle would only add latency to each of them.
            nodelay: true,
            ..client::Config::default()
        };
        SshPoller {
            config: Arc::new(config),
            egress,
        }
    }

    /// Connects, checks the server's host key against `pinned` (`None` = first use: accept
    /// and return it), authenticates, runs each command on its own channel (sequentially, one
    /// connection) and returns the key the server presented plus one output per command.
    ///
    /// A command that exits non-zero is an `Ok` output with that exit status; a command killed
    /// by a signal gets exit status -1 and the signal name in stderr, as does one the server
    /// reports no status for. Each command's stdin is closed at once, so a command that reads
    /// it sees end-of-file instead of hanging. `ep.timeout` bounds the whole call.
    pub async fn exec(
        &self,
        ep: &SshEndpoint,
        pinned: Option<&HostKey>,
        commands: &[String],
    ) -> Result<(HostKey, Vec<SshOutput>), PollError> {
        let address = ep.address();
        // A key we cannot read is the caller's problem, not the target's: say so without
        // touching the network.
        let credential = Credential::prepare(&ep.auth, &ep.username, &address)?;
        let deadline = Instant::now() + ep.timeout;
        let shared = Arc::new(Mutex::new(Shared::default()));

        let mut phase = Phase::Connecting;
        let connected = timeout_at(
            deadline,
            self.connect(ep, &address, pinned, &shared, &mut phase),
        )
        .await;
        let mut handle = match connected {
            Ok(result) => result?,
            Err(_) => return Err(timed_out(ep, &address, commands, phase)),
        };
        let presented = lock(&shared).presented.clone();
        let Some(host_key) = presented else {
            // russh skips the check when a key exchange yields no host key. None of its key
            // exchanges does, but should one, refuse rather than log in unverified.
            return Err(PollError::Failed(format!(
                "SSH to {address}: the server presented no host key"
            )));
        };

        phase = Phase::Authenticating;
        let session = timeout_at(
            deadline,
            run_session(
                &mut handle,
                ep,
                &address,
                &credential,
                commands,
                &shared,
                &mut phase,
            ),
        )
        .await;
        let result = match session {
            Ok(result) => result,
            Err(_) => Err(timed_out(ep, &address, commands, phase)),
        };

        // Say goodbye and let the session task flush it, still within the budget: the outputs
        // are in hand by now, so a server slow to hang up costs nothing but this wait.
        // `timeout_at` polls its future before looking at the clock, so the disconnect
        // message is queued even when the deadline has already passed.
        let _ = timeout_at(deadline, async {
            if handle
                .disconnect(Disconnect::ByApplication, "", "en")
                .await
                .is_ok()
            {
                let _ = (&mut handle).await;
            }
        })
        .await;

        result.map(|outputs| (host_key, outputs))
    }

    /// TCP connection and SSH handshake, the host key checked on the way.
    async fn connect(
        &self,
        ep: &SshEndpoint,
        address: &str,
        pinned: Option<&HostKey>,
        shared: &Arc<Mutex<Shared>>,
        phase: &mut Phase,
    ) -> Result<Handle<KeyCheck>, PollError> {
        // Resolved once, here: the addresses the policy allows are the ones dialled.
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((ep.host.as_str(), ep.port))
            .await
            .map_err(|e| PollError::Unreachable(format!("SSH to {address}: {e}")))?
            .collect();
        let allowed =
            self.egress
                .filter(resolved, |a| a.ip())
                .map_err(|refused| match refused {
                    Some(e) => PollError::Refused(format!("SSH to {address}: {e}")),
                    None => {
                        PollError::Unreachable(format!("SSH to {address}: resolves to no address"))
                    }
                })?;
        let stream = TcpStream::connect(&allowed[..])
            .await
            .map_err(|e| PollError::Unreachable(format!("SSH to {address}: {e}")))?;
        if let Err(e) = stream.set_nodelay(self.config.nodelay) {
            tracing::debug!(%address, error = %e, "could not set TCP_NODELAY");
        }

        *phase = Phase::Handshake;
        let handler = KeyCheck {
            pinned: pinned.cloned(),
            shared: Arc::clone(shared),
        };
        match client::connect_stream(Arc::clone(&self.config), stream, handler).await {
            Ok(handle) => Ok(handle),
            Err(HandlerError::HostKeyMismatch { presented }) => Err(PollError::HostKeyMismatch {
                endpoint: address.to_owned(),
                pinned: pinned.map(|p| p.fingerprint.clone()).unwrap_or_default(),
                presented: presented.fingerprint,
            }),
            Err(HandlerError::Ssh(e)) => Err(handshake_error(address, e)),
        }
    }
}

/// Authentication and the commands, on an established connection.
async fn run_session(
    handle: &mut Handle<KeyCheck>,
    ep: &SshEndpoint,
    address: &str,
    credential: &Credential,
    commands: &[String],
    shared: &Arc<Mutex<Shared>>,
    phase: &mut Phase,
) -> Result<Vec<SshOutput>, PollError> {
    authenticate(handle, ep, address, credential, shared).await?;
    let mut outputs = Vec::with_capacity(commands.len());
    for (i, command) in commands.iter().enumerate() {
        *phase = Phase::Running(i);
        outputs.push(run_command(handle, address, command, shared).await?);
    }
    Ok(outputs)
}

async fn authenticate(
    handle: &mut Handle<KeyCheck>,
    ep: &SshEndpoint,
    address: &str,
    credential: &Credential,
    shared: &Arc<Mutex<Shared>>,
) -> Result<(), PollError> {
    let who = format!("{}@{address}", ep.username);
    let (method, result) = match credential {
        Credential::Password(password) => (
            "password",
            handle
                .authenticate_password(ep.username.as_str(), password.as_str())
                .await,
        ),
        Credential::Key(key) => {
            // RSA signs with a hash the server must accept: ask it (RFC 8308 server-sig-algs);
            // a server that does not say only knows SHA-1 `ssh-rsa`.
            let hash = if key.algorithm().is_rsa() {
                handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(|e| session_error(&who, "SSH authentication", e, shared))?
                    .flatten()
            } else {
                None
            };
            let key = PrivateKeyWithHashAlg::new(Arc::clone(key), hash);
            (
                "public key",
                handle
                    .authenticate_publickey(ep.username.as_str(), key)
                    .await,
            )
        }
    };
    match result {
        Ok(client::AuthResult::Success) => Ok(()),
        Ok(client::AuthResult::Failure {
            remaining_methods, ..
        }) => {
            let accepted: Vec<&str> = remaining_methods.iter().map(<&'static str>::from).collect();
            let hint = if accepted.is_empty() {
                String::new()
            } else if remaining_methods.contains(&match credential {
                Credential::Password(_) => MethodKind::Password,
                Credential::Key(_) => MethodKind::PublicKey,
            }) {
                format!(
                    " (wrong credentials? the server accepts: {})",
                    accepted.join(", ")
                )
            } else {
                format!(" (the server accepts only: {})", accepted.join(", "))
            };
            Err(PollError::Failed(format!(
                "SSH authentication of {who} by {method} rejected{hint}"
            )))
        }
        Err(e) => Err(session_error(&who, "SSH authentication", e, shared)),
    }
}

/// One command on a channel of its own: its output, capped, and how it ended.
async fn run_command(
    handle: &Handle<KeyCheck>,
    address: &str,
    command: &str,
    shared: &Arc<Mutex<Shared>>,
) -> Result<SshOutput, PollError> {
    let what = format!("SSH command `{command}` on {address}");
    let mut channel = handle
        .channel_open_session()
        .await
        .map_err(|e| session_error(&what, "opening a channel", e, shared))?;
    channel
        .exec(true, command)
        .await
        .map_err(|e| session_error(&what, "starting", e, shared))?;

    let mut stdout = Capped::default();
    let mut stderr = Capped::default();
    let mut started = false;
    let mut exit_status = None;
    let mut signal = None;
    let mut closed = false;
    while let Some(message) = channel.wait().await {
        match message {
            ChannelMsg::Success => {
                started = true;
                // Like `ssh host command < /dev/null`: a command that reads stdin must not
                // wait for input that never comes.
                channel
                    .eof()
                    .await
                    .map_err(|e| session_error(&what, "closing stdin", e, shared))?;
            }
            ChannelMsg::Failure => {
                return Err(PollError::Failed(format!(
                    "{what}: the server refused to start it"
                )));
            }
            ChannelMsg::Data { data } => stdout.push(&data),
            // Extended data type 1 is stderr (RFC 4254 §5.2), the only type defined.
            ChannelMsg::ExtendedData { data, ext: 1 } => stderr.push(&data),
            ChannelMsg::ExitStatus { exit_status: s } => {
                // Exit statuses are 0..=255 on Unix; anything else is a server's invention.
                exit_status = Some(i32::try_from(s).unwrap_or(i32::MAX));
            }
            ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                error_message,
                ..
            } => signal = Some((signal_name, core_dumped, error_message)),
            ChannelMsg::Close => {
                closed = true;
                break;
            }
            _ => {}
        }
    }

    if !closed && exit_status.is_none() && signal.is_none() {
        // The channel went away without a close: the connection did.
        return Err(PollError::Failed(format!(
            "{what}: connection lost while it ran{}",
            lost_reason(shared)
        )));
    }
    if !started && exit_status.is_none() && signal.is_none() {
        return Err(PollError::Failed(format!(
            "{what}: the server closed the channel without starting it"
        )));
    }

    let mut stderr_bytes = stderr.bytes;
    let mut notes = Vec::new();
    if stdout.dropped > 0 {
        notes.push(format!(
            "stdout truncated to {MAX_OUTPUT} bytes ({} more dropped)",
            stdout.dropped
        ));
    }
    if stderr.dropped > 0 {
        notes.push(format!(
            "stderr truncated to {MAX_OUTPUT} bytes ({} more dropped)",
            stderr.dropped
        ));
    }
    let exit_status = match (exit_status, signal) {
        (_, Some((sig, core_dumped, message))) => {
            let mut note = format!("killed by signal {}", signal_name(&sig));
            if core_dumped {
                note.push_str(" (core dumped)");
            }
            if !message.is_empty() {
                note.push_str(": ");
                note.push_str(&message);
            }
            notes.push(note);
            -1
        }
        (Some(status), None) => status,
        (None, None) => {
            // Some network devices never send one; the output is still worth having.
            notes.push("the server reported no exit status".to_owned());
            -1
        }
    };
    for note in notes {
        if !stderr_bytes.is_empty() && !stderr_bytes.ends_with(b"\n") {
            stderr_bytes.push(b'\n');
        }
        stderr_bytes.extend_from_slice(format!("[opsconductor: {note}]\n").as_bytes());
    }

    Ok(SshOutput {
        command: command.to_owned(),
        exit_status,
        stdout: stdout.bytes,
        stderr: stderr_bytes,
    })
}

/// A stream's output up to [`MAX_OUTPUT`], and how much more there was.
#[derive(Default)]
struct Capped {
    bytes: Vec<u8>,
    dropped: usize,
}

impl Capped {
    fn push(&mut self, data: &[u8]) {
        let room = MAX_OUTPUT.saturating_sub(self.bytes.len());
        let (kept, rest) = data.split_at(room.min(data.len()));
        self.bytes.extend_from_slice(kept);
        self.dropped = self.dropped.saturating_add(rest.len());
    }
}

fn signal_name(sig: &Sig) -> &str {
    match sig {
        Sig::ABRT => "ABRT",
        Sig::ALRM => "ALRM",
        Sig::FPE => "FPE",
        Sig::HUP => "HUP",
        Sig::ILL => "ILL",
        Sig::INT => "INT",
        Sig::KILL => "KILL",
        Sig::PIPE => "PIPE",
        Sig::QUIT => "QUIT",
        Sig::SEGV => "SEGV",
        Sig::TERM => "TERM",
        Sig::USR1 => "USR1",
        Sig::Custom(name) => name,
    }
}

/// The credential, decoded before connecting.
enum Credential {
    Password(String),
    Key(Arc<russh::keys::PrivateKey>),
}

impl Credential {
    fn prepare(auth: &SshAuth, username: &str, address: &str) -> Result<Credential, PollError> {
        match auth {
            SshAuth::Password(password) => Ok(Credential::Password(password.clone())),
            SshAuth::PrivateKey { pem, passphrase } => {
                russh::keys::decode_secret_key(pem, passphrase.as_deref())
                    .map(|key| Credential::Key(Arc::new(key)))
                    .map_err(|e| {
                        let why = match (&e, passphrase) {
                            (russh::keys::Error::KeyIsEncrypted, _) => {
                                "it is encrypted and no passphrase was given".to_owned()
                            }
                            // ssh-key cannot tell a wrong passphrase from a damaged key:
                            // the decrypted bytes just fail their consistency check.
                            (russh::keys::Error::SshKey(_), Some(_)) => {
                                format!("{e} (wrong passphrase?)")
                            }
                            _ => e.to_string(),
                        };
                        PollError::Failed(format!(
                            "SSH private key for {username}@{address} cannot be used: {why}"
                        ))
                    })
            }
        }
    }
}

/// What the handler learns that the caller needs after the fact.
#[derive(Default)]
struct Shared {
    /// The host key the server presented (and we accepted).
    presented: Option<HostKey>,
    /// Why the connection ended, if it ended on its own.
    lost: Option<String>,
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    // Only plain assignments happen under this lock; a poisoned one holds consistent data.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lost_reason(shared: &Mutex<Shared>) -> String {
    match &lock(shared).lost {
        Some(reason) => format!(": {reason}"),
        None => String::new(),
    }
}

/// The russh handler: checks the host key, remembers it and why the connection ended.
struct KeyCheck {
    /// `None` on first use: any key is accepted (and returned to the caller to pin).
    pinned: Option<HostKey>,
    shared: Arc<Mutex<Shared>>,
}

#[derive(Debug)]
enum HandlerError {
    HostKeyMismatch { presented: HostKey },
    Ssh(russh::Error),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Ssh(e)
    }
}

impl Handler for KeyCheck {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // russh asks once, at the end of the initial key exchange: after the server has proven
        // it holds this key, before the client asks for the authentication service. A re-key
        // does not come back here; OpenSSH never switches host keys within a connection.
        // A host certificate is checked by the key it certifies: we pin keys, not CAs.
        let presented = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => HostKey::from_public_key(key),
            PublicKeyOrCertificate::Certificate(cert) => {
                HostKey::from_public_key(&PublicKey::new(cert.public_key().clone(), ""))
            }
        };
        if let Some(pinned) = &self.pinned
            && !pinned.matches(&presented)
        {
            // An error rather than `Ok(false)`, so that the caller learns which key it was.
            return Err(HandlerError::HostKeyMismatch { presented });
        }
        lock(&self.shared).presented = Some(presented);
        Ok(true)
    }

    async fn disconnected(
        &mut self,
        reason: DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        let (text, result) = match reason {
            DisconnectReason::ReceivedDisconnect(info) => (
                format!(
                    "the server disconnected ({:?}: {})",
                    info.reason_code, info.message
                ),
                Ok(()),
            ),
            DisconnectReason::Error(e) => (
                match &e {
                    HandlerError::HostKeyMismatch { presented } => {
                        format!("host key {} refused", presented.fingerprint)
                    }
                    HandlerError::Ssh(e) => e.to_string(),
                },
                Err(e),
            ),
        };
        lock(&self.shared).lost.get_or_insert(text);
        result
    }
}

/// A handshake that failed without a host-key mismatch. Nothing that speaks SSH answered when
/// the connection dropped before the handshake finished; anything else is a protocol problem
/// of a server that did answer.
fn handshake_error(address: &str, e: russh::Error) -> PollError {
    match e {
        russh::Error::IO(_)
        | russh::Error::HUP
        | russh::Error::Disconnect
        | russh::Error::ConnectionTimeout => PollError::Unreachable(format!(
            "SSH to {address}: connection closed during the handshake: {e}"
        )),
        russh::Error::Version => PollError::Failed(format!(
            "SSH to {address}: the server did not identify as SSH-2.0"
        )),
        e => PollError::Failed(format!("SSH handshake with {address} failed: {e}")),
    }
}

/// A russh error after the handshake: the server answered, so it is `Failed`, with the reason
/// the connection ended if russh only reports that it did.
fn session_error(what: &str, step: &str, e: russh::Error, shared: &Mutex<Shared>) -> PollError {
    match lock(shared).lost.clone() {
        Some(reason) => PollError::Failed(format!("{what}: {step} failed: {reason}")),
        None => PollError::Failed(format!("{what}: {step} failed: {e}")),
    }
}

fn timed_out(ep: &SshEndpoint, address: &str, commands: &[String], phase: Phase) -> PollError {
    let budget = format!("within the {:?} session timeout", ep.timeout);
    match phase {
        Phase::Connecting => {
            PollError::Unreachable(format!("SSH to {address}: no connection {budget}"))
        }
        Phase::Handshake => {
            PollError::Unreachable(format!("SSH to {address}: no SSH handshake {budget}"))
        }
        Phase::Authenticating => PollError::Failed(format!(
            "SSH authentication of {}@{address} did not complete {budget}",
            ep.username
        )),
        Phase::Running(i) => PollError::Failed(format!(
            "SSH command `{}` on {address} did not finish {budget}",
            commands[i]
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let ep = SshEndpoint {
            host: "db1".into(),
            port: 22,
            username: "monitor".into(),
            auth: SshAuth::Password("hunter2".into()),
            timeout: Duration::from_secs(5),
        };
        let shown = format!("{ep:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("monitor"), "{shown}");

        let key = SshAuth::PrivateKey {
            pem: "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-bits".into(),
            passphrase: Some("open sesame".into()),
        };
        let shown = format!("{key:?}");
        assert!(!shown.contains("secret-bits"), "{shown}");
        assert!(!shown.contains("open sesame"), "{shown}");
    }

    #[test]
    fn output_is_capped_and_the_excess_counted() {
        let mut out = Capped::default();
        out.push(&vec![b'a'; MAX_OUTPUT - 1]);
        out.push(b"bcd");
        out.push(b"efg");
        assert_eq!(out.bytes.len(), MAX_OUTPUT);
        assert_eq!(out.bytes.last(), Some(&b'b'));
        assert_eq!(out.dropped, 5);
    }

    #[test]
    fn unreadable_keys_fail_before_connecting() {
        let err = Credential::prepare(
            &SshAuth::PrivateKey {
                pem: "not a key".into(),
                passphrase: None,
            },
            "monitor",
            "db1:22",
        )
        .err()
        .expect("garbage is not a key");
        assert!(
            matches!(&err, PollError::Failed(m) if m.contains("monitor@db1:22")),
            "{err}"
        );
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        let ep = SshEndpoint {
            host: "::1".into(),
            port: 2222,
            username: "u".into(),
            auth: SshAuth::Password(String::new()),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(ep.address(), "[::1]:2222");
    }
}
