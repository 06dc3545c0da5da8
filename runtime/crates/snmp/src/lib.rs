//! The SNMP message layer of the trap receiver: one datagram in, a decoded notification (and
//! the bytes to send back, if any) out. SNMPv1 Trap-PDUs, SNMPv2c Trap and InformRequest, and
//! SNMPv3 with the User-based Security Model (RFC 3414, 3826, 7860), mapped per RFC 3584.
//!
//! Pure: no sockets, no tokio, no database. The listener owns the socket and calls
//! [`Receiver::process`] for every datagram; the BER codec is `rasn-snmp`, the cryptography
//! RustCrypto.
//!
//! - `tlv` checks the raw framing and locates the HMAC field,
//! - `pdu` maps PDUs to and from the host's `SnmpTrap`,
//! - `usm` holds the keys and the cryptography,
//! - `v3` is the SNMPv3 message processing (discovery, timeliness, reports, responses).

pub mod client;
mod pdu;
pub mod replay;
mod tlv;
pub mod usm;
mod v3;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rasn_snmp::{v1, v2, v2c};

use opsconductor_model::event::{SnmpTrap, SnmpVersion, Varbind};
use usm::LocalizedKeys;

pub use usm::{AuthProtocol, PrivProtocol, UsmError, UsmUser};
pub use v3::V3Sender;

/// The largest UDP payload over IPv4 (65535 − 8 UDP − 20 IP). Anything longer did not come
/// off a socket, and it is also the msgMaxSize we announce.
pub const MAX_DATAGRAM: usize = 65507;

/// Varbinds per notification. Real traps carry a handful; a thousand is generous and bounds
/// what one datagram can make the addons and the store chew on.
pub const MAX_VARBINDS: usize = 1024;

/// Sub-identifiers per OID: RFC 2578 § 3.5 allows at most 128.
pub const MAX_OID_ARCS: usize = 128;

/// Distinct (user, engine) key localisations and remote engine clocks kept. Entries are only
/// added for authenticated messages, so the bound is about many real devices rather than an
/// attacker; when it is reached the table starts over, which costs one hash per device.
const MAX_CACHED_ENGINES: usize = 65_536;

/// Errors from processing one datagram. None of them is fatal to the receiver; each belongs
/// to one counter class ([`SnmpError::counter`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnmpError {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("message too big: {0}")]
    TooBig(String),
    #[error("unsupported SNMP version {0}")]
    UnsupportedVersion(i64),
    #[error("unsupported PDU type {0} (this port takes traps and informs)")]
    UnsupportedPdu(&'static str),
    /// The community is not configured. It is not echoed: communities are credentials.
    #[error("unknown community")]
    UnknownCommunity,
    /// An SNMPv3 message naming an authoritative engine we cannot use: empty on a message that
    /// asks for no report, or not ours on an InformRequest.
    #[error("unknown or unusable authoritative engine id")]
    UnknownEngineId,
    #[error("unknown USM user {0:?}")]
    UnknownUser(String),
    #[error("USM user {0:?} sent at a security level other than the one configured")]
    UnsupportedSecurityLevel(String),
    #[error("wrong digest for USM user {0:?}")]
    WrongDigest(String),
    #[error("cannot decrypt the message of USM user {0:?}")]
    DecryptFailed(String),
    #[error("message of USM user {0:?} is outside the time window")]
    NotInTimeWindow(String),
    /// An authenticated trap accepted once already (snmp/replay.rs), here or on another node.
    #[error("replayed SNMPv3 message from user {0}")]
    Replayed(String),
    /// Only from the encoders, when given values that have no wire form.
    #[error("cannot encode: {0}")]
    Encode(String),
}

impl SnmpError {
    /// A stable counter name per class of failure, for the listener's statistics.
    pub fn counter(&self) -> &'static str {
        match self {
            SnmpError::Malformed(_)
            | SnmpError::TooBig(_)
            | SnmpError::UnsupportedVersion(_)
            | SnmpError::Encode(_) => "malformed",
            SnmpError::UnsupportedPdu(_) => "unsupported_pdu",
            SnmpError::UnknownCommunity => "unknown_community",
            SnmpError::UnknownEngineId
            | SnmpError::UnknownUser(_)
            | SnmpError::UnsupportedSecurityLevel(_)
            | SnmpError::WrongDigest(_)
            | SnmpError::DecryptFailed(_)
            | SnmpError::NotInTimeWindow(_) => "auth_failures",
            SnmpError::Replayed(_) => "replayed",
        }
    }
}

/// What a datagram amounted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A notification; nothing goes back.
    Trap(SnmpTrap),
    /// An acknowledged notification: send `response` (a Response-PDU at the request's version
    /// and security level) back to the source, then ingest `trap`.
    Inform { trap: SnmpTrap, response: Vec<u8> },
    /// An SNMPv3 Report for the source (engine discovery, or a clock out of our time window);
    /// nothing to ingest.
    Report(Vec<u8>),
}

/// Our own SNMP engine, authoritative for the informs sent to us (RFC 3414 § 2.3).
#[derive(Debug, Clone)]
pub struct LocalEngine {
    /// snmpEngineID, 5 to 32 octets (RFC 3411 § 5). The listener generates it once and
    /// persists it: senders localise keys to it.
    pub engine_id: Vec<u8>,
    /// snmpEngineBoots: incremented and persisted by the listener at every start.
    pub boots: u32,
    started: Instant,
}

/// RFC 3414 § 2.2.1: snmpEngineBoots and snmpEngineTime are 0..2147483647.
const ENGINE_MAX: u32 = i32::MAX as u32;

impl LocalEngine {
    /// An engine whose clock starts now. `engine_id` should be 5 to 32 octets (RFC 3411 § 5;
    /// the configuration checks that); `boots` is capped at the RFC's latched maximum.
    pub fn new(engine_id: Vec<u8>, boots: u32) -> LocalEngine {
        Self::started_at(engine_id, boots, Instant::now())
    }

    /// An engine whose clock started at `started`: lets tests put the engine in the past.
    pub fn started_at(engine_id: Vec<u8>, boots: u32, started: Instant) -> LocalEngine {
        LocalEngine {
            engine_id,
            boots: boots.min(ENGINE_MAX),
            started,
        }
    }

    /// snmpEngineTime: whole seconds since the engine started.
    pub fn engine_time(&self) -> u32 {
        self.engine_time_at(Instant::now())
    }

    pub fn engine_time_at(&self, now: Instant) -> u32 {
        let secs = now.saturating_duration_since(self.started).as_secs();
        u32::try_from(secs).unwrap_or(ENGINE_MAX).min(ENGINE_MAX)
    }
}

/// Who may send: v1/v2c communities and v3 users.
#[derive(Clone, Default)]
pub struct Credentials {
    pub communities: Vec<String>,
    pub users: Vec<UsmUser>,
}

impl std::fmt::Debug for Credentials {
    /// Communities are passwords: Debug counts them and never shows them (users show their
    /// names and protocols only, see `UsmUser`'s Debug).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("communities", &self.communities.len())
            .field("users", &self.users)
            .finish()
    }
}

/// Credentials indexed for lookup, with the key localisations derived from them. Replacing
/// the credentials replaces this whole value, so a localisation of an old pass phrase can
/// never be used after the user was changed.
struct CredentialState {
    communities: HashSet<Vec<u8>>,
    users: HashMap<Vec<u8>, UsmUser>,
    /// (user name, authoritative engine id) → localised keys. A `Mutex` rather than an
    /// `RwLock`: it is held only for a map lookup or insert, never while hashing.
    keys: Mutex<KeyCache>,
}

/// (user name, authoritative engine id) → that user's keys localised to that engine.
type KeyCache = HashMap<(Vec<u8>, Vec<u8>), Arc<LocalizedKeys>>;

impl CredentialState {
    fn new(credentials: Credentials) -> CredentialState {
        CredentialState {
            communities: credentials
                .communities
                .into_iter()
                .map(String::into_bytes)
                .collect(),
            users: credentials
                .users
                .into_iter()
                .map(|user| (user.name.clone().into_bytes(), user))
                .collect(),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The user's keys localised to `engine_id`, and whether they were computed now (then the
    /// caller remembers them once the message authenticated).
    fn keys(&self, user: &UsmUser, engine_id: &[u8]) -> (Arc<LocalizedKeys>, bool) {
        let key = (user.name.as_bytes().to_vec(), engine_id.to_vec());
        if let Some(keys) = lock(&self.keys).get(&key) {
            return (Arc::clone(keys), false);
        }
        (Arc::new(LocalizedKeys::new(user, engine_id)), true)
    }

    fn remember(&self, user: &UsmUser, engine_id: &[u8], keys: Arc<LocalizedKeys>) {
        let mut cache = lock(&self.keys);
        if cache.len() >= MAX_CACHED_ENGINES {
            cache.clear();
        }
        cache.insert((user.name.as_bytes().to_vec(), engine_id.to_vec()), keys);
    }
}

/// Locks a mutex even if a thread panicked while holding it: the maps behind these locks are
/// caches, valid after any interrupted insert.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a remote authoritative engine (a v3 trap sender) last told us about its clock
/// (RFC 3414 § 2.3: snmpEngineBoots, snmpEngineTime, latestReceivedEngineTime).
#[derive(Debug, Clone, Copy)]
struct RemoteClock {
    boots: u32,
    time: u32,
    latest_received_time: u32,
    at: Instant,
}

impl RemoteClock {
    fn new(boots: u32, time: u32, now: Instant) -> RemoteClock {
        RemoteClock {
            boots,
            time,
            latest_received_time: time,
            at: now,
        }
    }

    /// Our estimate of the remote engine's snmpEngineTime now: the time it sent plus the
    /// seconds since we learnt it.
    fn time_at(&self, now: Instant) -> u64 {
        u64::from(self.time) + now.saturating_duration_since(self.at).as_secs()
    }

    /// RFC 3414 § 3.2 step 7b for an authenticated message from this engine (a v3 trap to the
    /// receiver, a Response to the poller): move the clock forward with it, and say whether
    /// it is timely — not from before the last reboot, nor more than 150 s older than the
    /// clock.
    fn observe(&mut self, boots: u32, time: u32, now: Instant) -> bool {
        if boots > self.boots || (boots == self.boots && time > self.latest_received_time) {
            *self = RemoteClock::new(boots, time, now);
        }
        let outside = self.boots == ENGINE_MAX
            || boots < self.boots
            || (boots == self.boots && u64::from(time) + TIME_WINDOW.as_secs() < self.time_at(now));
        !outside
    }
}

/// Processes datagrams. Cheap `&self` calls from many workers: the credentials are swapped
/// atomically, and the two small tables take a mutex only around a map operation.
pub struct Receiver {
    engine: LocalEngine,
    credentials: ArcSwap<CredentialState>,
    /// Remote engines' clocks and the digests of accepted traps (snmp/replay.rs).
    replay: Mutex<replay::ReplayGuard>,
    /// Source of privacy salts for what we send: a counter seeded randomly, so that salts do
    /// not repeat across restarts under the same boots value (RFC 3826 § 3.1.2.1).
    salt: AtomicU64,
    /// usmStatsUnknownEngineIDs and usmStatsNotInTimeWindows, whose values our Reports carry.
    unknown_engine_ids: AtomicU32,
    not_in_time_windows: AtomicU32,
}

impl Receiver {
    pub fn new(engine: LocalEngine, credentials: Credentials) -> Receiver {
        let seed = getrandom::u64().unwrap_or_else(|_| {
            // No OS randomness: the clock still makes a repeat across restarts unlikely.
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        Receiver {
            engine,
            credentials: ArcSwap::from_pointee(CredentialState::new(credentials)),
            replay: Mutex::new(replay::ReplayGuard::default()),
            salt: AtomicU64::new(seed),
            unknown_engine_ids: AtomicU32::new(0),
            not_in_time_windows: AtomicU32::new(0),
        }
    }

    pub fn engine(&self) -> &LocalEngine {
        &self.engine
    }

    /// Replaces communities and users; messages already being processed finish with the old
    /// ones.
    pub fn set_credentials(&self, credentials: Credentials) {
        self.credentials
            .store(Arc::new(CredentialState::new(credentials)));
    }

    /// Processes one datagram from `source`.
    pub fn process(&self, datagram: &[u8], source: SocketAddr) -> Result<Received, SnmpError> {
        self.process_at(datagram, source, Instant::now())
    }

    /// [`Receiver::process`] at a given instant, so that tests can move time.
    pub fn process_at(
        &self,
        datagram: &[u8],
        source: SocketAddr,
        now: Instant,
    ) -> Result<Received, SnmpError> {
        if datagram.len() > MAX_DATAGRAM {
            return Err(SnmpError::TooBig(format!(
                "datagram of {} bytes (at most {MAX_DATAGRAM})",
                datagram.len()
            )));
        }
        // Checked before `rasn` sees the bytes: bounded nesting, definite lengths that fit,
        // no trailing garbage.
        tlv::validate_exact(datagram).map_err(SnmpError::Malformed)?;
        match tlv::message_version(datagram).map_err(SnmpError::Malformed)? {
            0 => self.process_v1(datagram, source),
            1 => self.process_v2c(datagram, source),
            3 => v3::process(self, datagram, source, now),
            other => Err(SnmpError::UnsupportedVersion(other)),
        }
    }

    fn check_community(&self, community: &[u8]) -> Result<(), SnmpError> {
        if self.credentials.load().communities.contains(community) {
            Ok(())
        } else {
            Err(SnmpError::UnknownCommunity)
        }
    }

    fn process_v1(&self, datagram: &[u8], source: SocketAddr) -> Result<Received, SnmpError> {
        let message: v1::Message<v1::Pdus> = decode(datagram)?;
        self.check_community(&message.community)?;
        match &message.data {
            v1::Pdus::Trap(trap) => Ok(Received::Trap(pdu::trap_from_v1(trap, source)?)),
            other => Err(SnmpError::UnsupportedPdu(pdu::v1_pdu_name(other))),
        }
    }

    fn process_v2c(&self, datagram: &[u8], source: SocketAddr) -> Result<Received, SnmpError> {
        let message: v2c::Message<v2::Pdus> = decode(datagram)?;
        self.check_community(&message.community)?;
        match message.data {
            v2::Pdus::Trap(v2::Trap(pdu)) => Ok(Received::Trap(pdu::trap_from_v2(
                SnmpVersion::V2c,
                &pdu,
                source,
                false,
            )?)),
            v2::Pdus::InformRequest(v2::InformRequest(pdu)) => {
                let trap = pdu::trap_from_v2(SnmpVersion::V2c, &pdu, source, true)?;
                // RFC 3416 § 4.2.7: same request-id and varbinds, error-status noError.
                let response = encode(&v2c::Message {
                    version: 1.into(),
                    community: message.community,
                    data: v2::Pdus::Response(v2::Response(response_pdu(pdu))),
                })?;
                Ok(Received::Inform { trap, response })
            }
            other => Err(SnmpError::UnsupportedPdu(pdu::pdu_name(&other))),
        }
    }

    fn next_salt(&self) -> u64 {
        self.salt.fetch_add(1, Ordering::Relaxed)
    }

    /// RFC 3414 § 3.2 step 7b for an authenticated message from a remote authoritative engine
    /// (a v3 trap): learn its clock from the first message, move it forward with later ones,
    /// refuse messages from before its last reboot or more than 150 s older than the clock —
    /// and refuse a message accepted once already.
    fn check_replay(
        &self,
        engine_id: &[u8],
        boots: u32,
        time: u32,
        digest: replay::MessageDigest,
        now: Instant,
        user: impl FnOnce() -> String,
    ) -> Result<(), SnmpError> {
        lock(&self.replay)
            .check(engine_id, boots, time, digest, now)
            .map_err(|refusal| match refusal {
                replay::Refusal::NotInTimeWindow => SnmpError::NotInTimeWindow(user()),
                replay::Refusal::Replayed => SnmpError::Replayed(user()),
            })
    }

    /// The remote clocks that moved and the traps accepted since the last call, to record.
    pub fn take_replay_changes(&self) -> replay::ReplayChanges {
        lock(&self.replay).take_changes(Instant::now())
    }

    /// Takes in remote clocks and accepted traps recorded earlier or by other nodes.
    pub fn import_replay_state(&self, state: replay::ReplayChanges) {
        lock(&self.replay).import(state, Instant::now());
    }
}

/// RFC 3414 § 2.2.3: messages up to 150 seconds old are timely.
const TIME_WINDOW: Duration = Duration::from_secs(150);

/// Decoder messages end up in logs for every bad datagram: keep them to a line.
const MAX_REASON_LEN: usize = 200;

fn decode<T: rasn::Decode>(bytes: &[u8]) -> Result<T, SnmpError> {
    rasn::ber::decode(bytes).map_err(|e| {
        let mut reason = format!("ber: {e}");
        if reason.len() > MAX_REASON_LEN {
            let mut end = MAX_REASON_LEN;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
            reason.push('…');
        }
        SnmpError::Malformed(reason)
    })
}

fn encode<T: rasn::Encode>(value: &T) -> Result<Vec<u8>, SnmpError> {
    rasn::ber::encode(value).map_err(|e| SnmpError::Encode(e.to_string()))
}

/// The Response-PDU that acknowledges an InformRequest.
fn response_pdu(request: v2::Pdu) -> v2::Pdu {
    v2::Pdu {
        request_id: request.request_id,
        error_status: v2::Pdu::ERROR_STATUS_NO_ERROR,
        error_index: 0,
        variable_bindings: request.variable_bindings,
    }
}

/// An SNMPv2c Trap as a device sends it, for tests and the load generator: sysUpTime.0 and
/// snmpTrapOID.0, then `varbinds`.
pub fn encode_v2c_trap(
    community: &str,
    request_id: i32,
    uptime: u32,
    trap_oid: &str,
    varbinds: &[Varbind],
) -> Result<Vec<u8>, SnmpError> {
    let pdu = notification_pdu(request_id, uptime, trap_oid, varbinds)?;
    encode(&v2c::Message {
        version: 1.into(),
        community: community.as_bytes().to_vec().into(),
        data: v2::Pdus::Trap(v2::Trap(pdu)),
    })
}

/// An SNMPv2c InformRequest, laid out like [`encode_v2c_trap`].
pub fn encode_v2c_inform(
    community: &str,
    request_id: i32,
    uptime: u32,
    trap_oid: &str,
    varbinds: &[Varbind],
) -> Result<Vec<u8>, SnmpError> {
    let pdu = notification_pdu(request_id, uptime, trap_oid, varbinds)?;
    encode(&v2c::Message {
        version: 1.into(),
        community: community.as_bytes().to_vec().into(),
        data: v2::Pdus::InformRequest(v2::InformRequest(pdu)),
    })
}

/// A notification PDU: sysUpTime.0 and snmpTrapOID.0, then `varbinds`. Shared by the v2c
/// encoders here and the v3 sender.
fn notification_pdu(
    request_id: i32,
    uptime: u32,
    trap_oid: &str,
    varbinds: &[Varbind],
) -> Result<v2::Pdu, SnmpError> {
    Ok(v2::Pdu {
        request_id,
        error_status: v2::Pdu::ERROR_STATUS_NO_ERROR,
        error_index: 0,
        variable_bindings: pdu::notification_varbinds(uptime, trap_oid, varbinds)?,
    })
}
