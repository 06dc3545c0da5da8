//! The SNMP poller: GET, GETNEXT and GETBULK walks against one agent, over SNMPv2c or SNMPv3
//! with the User-based Security Model.
//!
//! Every call opens its own UDP socket on an ephemeral port and `connect()`s it to the agent:
//! the kernel then drops datagrams from anyone else, and an ICMP port unreachable comes back as
//! `ECONNREFUSED` on the next receive, so a closed port fails at once instead of after every
//! retry. Request-ids and msgIDs are random, and an answer whose id is not ours (a late answer
//! to an earlier attempt of another call cannot reach this socket, but a duplicate can) is
//! ignored rather than failing the call.
//!
//! SNMPv3 needs the agent's engine id, boots and time (RFC 3414 § 2.3, § 4). The poller learns
//! them by discovery on first contact and keeps them per address in a cache shared by all
//! clones, so a device costs one discovery round trip per runtime, not per poll. A rebooted
//! agent (a notInTimeWindow report) is resynchronised once per call; a replaced one (an unknown
//! engine id report) is rediscovered once per call.
//!
//! Message encoding and decoding is `crate::snmp::client`; this module owns the I/O.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rasn::types::ObjectIdentifier;
use tokio::net::UdpSocket;

use super::PollError;
use crate::egress::EgressPolicy;
use crate::event::{SnmpValue, Varbind};
use crate::snmp::client::{
    self, AgentEngine, Binding, Operation, ReportKind, Response, Sender, V3Body, V3Reply, V3Request,
};
use crate::snmp::usm::LocalizedKeys;
use crate::snmp::{MAX_DATAGRAM, SnmpError, UsmUser};

/// GETBULK max-repetitions of a walk: 25 rows per round trip keeps a response of ordinary
/// rows well under a 1500-byte MTU, where fragments would start to get lost.
const MAX_REPETITIONS: u32 = 25;

/// The most varbinds one walk returns. Real tables on the largest devices (routing tables
/// aside) stay far below; an agent that never ends a subtree is stopped here.
pub const MAX_WALK_VARBINDS: usize = 100_000;

/// Agents whose engine the cache remembers. When it is full it starts over, which costs each
/// device one discovery round trip.
const MAX_CACHED_ENGINES: usize = 65_536;

/// tooBig (RFC 3416 § 3).
const TOO_BIG: u32 = 1;

/// How the poller authenticates to an agent.
#[derive(Clone, PartialEq, Eq)]
pub enum SnmpAuth {
    /// SNMPv2c with this community.
    Community(String),
    /// SNMPv3 as `user` (its security level is the user's: keys present → auth, priv), in the
    /// context `context` (usually empty).
    Usm { user: UsmUser, context: String },
}

impl std::fmt::Debug for SnmpAuth {
    /// A community is a password and USM keys are secrets: Debug shows neither.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnmpAuth::Community(_) => f.write_str("Community(<redacted>)"),
            SnmpAuth::Usm { user, context } => f
                .debug_struct("Usm")
                .field("user", user)
                .field("context", context)
                .finish(),
        }
    }
}

/// One agent and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnmpEndpoint {
    pub addr: SocketAddr,
    pub auth: SnmpAuth,
    /// How long to wait for an answer, per attempt.
    pub timeout: Duration,
    /// Attempts after the first one that timed out.
    pub retries: u32,
}

/// The SNMP poller. Cheap to clone: clones share the cache of agent engines.
#[derive(Clone)]
pub struct SnmpPoller {
    shared: Arc<Shared>,
    /// Checked on every agent address before a socket is connected to it.
    egress: Arc<EgressPolicy>,
}

struct Shared {
    /// Agent address → its SNMPv3 engine id and clock.
    engines: Mutex<HashMap<SocketAddr, AgentEngine>>,
    /// Privacy salts: a counter seeded randomly, so that salts do not repeat across restarts
    /// for the same engine boots (RFC 3826 § 3.1.2.1).
    salt: AtomicU64,
}

impl Default for Shared {
    fn default() -> Shared {
        Shared {
            engines: Mutex::new(HashMap::new()),
            salt: AtomicU64::new(random_u64()),
        }
    }
}

impl Shared {
    fn engines(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, AgentEngine>> {
        // A poisoned lock still guards a valid cache: every update is a single insert.
        self.engines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn engine(&self, addr: SocketAddr) -> Option<AgentEngine> {
        self.engines().get(&addr).cloned()
    }

    fn remember(&self, addr: SocketAddr, engine: AgentEngine) {
        let mut engines = self.engines();
        if engines.len() >= MAX_CACHED_ENGINES && !engines.contains_key(&addr) {
            engines.clear();
        }
        engines.insert(addr, engine);
    }

    fn forget(&self, addr: SocketAddr) {
        self.engines().remove(&addr);
    }

    /// Moves the cached clock of `addr` forward with an authenticated answer and says whether
    /// the answer is timely. An engine no longer cached (another call rediscovered it) is
    /// cached again from the answer.
    fn observe(&self, addr: SocketAddr, reply: &V3Reply, now: Instant) -> bool {
        let mut engines = self.engines();
        match engines.get_mut(&addr) {
            Some(engine) if engine.engine_id() == reply.engine_id => {
                engine.observe(reply.boots, reply.time, now)
            }
            _ => {
                let engine =
                    AgentEngine::new(reply.engine_id.clone(), reply.boots, reply.time, now);
                drop(engines);
                self.remember(addr, engine);
                true
            }
        }
    }

    fn next_salt(&self) -> u64 {
        self.salt.fetch_add(1, Ordering::Relaxed)
    }
}

impl std::fmt::Debug for SnmpPoller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnmpPoller")
            .field("cached_engines", &self.shared.engines().len())
            .finish()
    }
}

impl SnmpPoller {
    /// A poller that talks only to agents `egress` allows.
    pub fn new(egress: Arc<EgressPolicy>) -> SnmpPoller {
        SnmpPoller {
            shared: Arc::default(),
            egress,
        }
    }

    /// GET; returns varbinds in request order (noSuchObject/noSuchInstance kept as values).
    pub async fn get(&self, ep: &SnmpEndpoint, oids: &[String]) -> Result<Vec<Varbind>, PollError> {
        self.get_each(ep, Operation::Get, oids).await
    }

    /// GETNEXT: the successor of each OID in MIB order, in request order (endOfMibView past
    /// the last object).
    pub async fn get_next(
        &self,
        ep: &SnmpEndpoint,
        oids: &[String],
    ) -> Result<Vec<Varbind>, PollError> {
        self.get_each(ep, Operation::GetNext, oids).await
    }

    async fn get_each(
        &self,
        ep: &SnmpEndpoint,
        op: Operation,
        oids: &[String],
    ) -> Result<Vec<Varbind>, PollError> {
        let oids = oids
            .iter()
            .map(|oid| parse_oid(oid))
            .collect::<Result<Vec<_>, _>>()?;
        if oids.is_empty() {
            return Ok(Vec::new());
        }
        let mut session = Session::open(self, ep).await?;
        let response = session.request(op, &oids).await?;
        if let Some(error) = response.error() {
            return Err(session.failed(error));
        }
        if response.varbinds.len() != oids.len() {
            return Err(session.failed(format!(
                "asked for {} varbinds, the agent answered {}",
                oids.len(),
                response.varbinds.len()
            )));
        }
        Ok(response
            .varbinds
            .into_iter()
            .map(Binding::into_varbind)
            .collect())
    }

    /// Every varbind strictly below `root` in MIB order: GETBULK (max-repetitions 25) for
    /// v2c/v3.
    pub async fn walk(&self, ep: &SnmpEndpoint, root: &str) -> Result<Vec<Varbind>, PollError> {
        let root = parse_oid(root)?;
        let mut session = Session::open(self, ep).await?;
        let mut walk = Walk::new(root);
        let mut max_repetitions = MAX_REPETITIONS;
        loop {
            let response = session
                .request(
                    Operation::GetBulk { max_repetitions },
                    std::slice::from_ref(&walk.last),
                )
                .await?;
            // RFC 3416 § 4.2.3 has agents drop trailing varbinds rather than answer tooBig,
            // but some answer tooBig anyway: ask for fewer rows.
            if response.error_status == TOO_BIG && max_repetitions > 1 {
                max_repetitions /= 2;
                continue;
            }
            if let Some(error) = response.error() {
                return Err(session.failed(error));
            }
            match walk.step(response.varbinds) {
                Ok(Step::More) => {}
                Ok(Step::Done) => return Ok(walk.found),
                Err(why) => return Err(session.failed(why)),
            }
        }
    }
}

/// A walk in progress: what was found, and the OID to continue from.
struct Walk {
    root: ObjectIdentifier,
    last: ObjectIdentifier,
    found: Vec<Varbind>,
}

#[derive(Debug, PartialEq, Eq)]
enum Step {
    More,
    Done,
}

impl Walk {
    fn new(root: ObjectIdentifier) -> Walk {
        Walk {
            last: root.clone(),
            root,
            found: Vec::new(),
        }
    }

    /// Takes one GETBULK answer: done at endOfMibView or the first OID outside the subtree;
    /// an error for an OID not after the previous one (an agent loop: walking on would never
    /// end), for an empty answer (asking again would get the same), and past
    /// [`MAX_WALK_VARBINDS`].
    fn step(&mut self, varbinds: Vec<Binding>) -> Result<Step, String> {
        if varbinds.is_empty() {
            return Err(format!(
                "the agent answered GETBULK after {} with no varbinds",
                client::oid_string(&self.last)
            ));
        }
        for binding in varbinds {
            // endOfMibView carries the requested name, not a successor: check it first.
            if binding.value == SnmpValue::EndOfMibView {
                return Ok(Step::Done);
            }
            if **binding.oid <= **self.last {
                return Err(format!(
                    "the agent answered {} after {}: OIDs not increasing (an agent loop), walk \
                     of {} stopped",
                    client::oid_string(&binding.oid),
                    client::oid_string(&self.last),
                    client::oid_string(&self.root)
                ));
            }
            if !binding.oid.starts_with(&self.root) {
                return Ok(Step::Done);
            }
            if self.found.len() >= MAX_WALK_VARBINDS {
                return Err(format!(
                    "walk of {} exceeds {MAX_WALK_VARBINDS} varbinds",
                    client::oid_string(&self.root)
                ));
            }
            self.last = binding.oid.clone();
            self.found.push(binding.into_varbind());
        }
        Ok(Step::More)
    }
}

fn parse_oid(text: &str) -> Result<ObjectIdentifier, PollError> {
    client::parse_oid(text).map_err(|_| {
        PollError::Failed(format!(
            "invalid OID {text:?} (expected dotted decimal, such as 1.3.6.1.2.1.1.3.0)"
        ))
    })
}

/// One call's conversation with one agent, on its own connected socket.
struct Session<'a> {
    shared: &'a Shared,
    ep: &'a SnmpEndpoint,
    socket: UdpSocket,
    buf: Vec<u8>,
    /// The agent answered engine discovery in this call: it is up, so its silence after that
    /// is about what we sent.
    discovered: bool,
}

impl<'a> Session<'a> {
    async fn open(poller: &'a SnmpPoller, ep: &'a SnmpEndpoint) -> Result<Session<'a>, PollError> {
        if ep.addr.ip().is_unspecified() || ep.addr.port() == 0 {
            return Err(PollError::Unreachable(format!(
                "{} is not an address an agent can have",
                ep.addr
            )));
        }
        poller
            .egress
            .check(ep.addr.ip())
            .map_err(|e| PollError::Refused(format!("SNMP to {}: {e}", ep.addr)))?;
        let local: SocketAddr = match ep.addr {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        // Failing to get a socket is our problem, not the agent's: Failed, so that the target
        // is not marked unreachable for it.
        let socket = UdpSocket::bind(local)
            .await
            .map_err(|e| PollError::Failed(format!("cannot open a UDP socket: {e}")))?;
        socket
            .connect(ep.addr)
            .await
            .map_err(|e| PollError::Unreachable(format!("{}: {e}", ep.addr)))?;
        Ok(Session {
            shared: &poller.shared,
            ep,
            socket,
            // One byte more than an SNMP message may have, so that a longer datagram shows as
            // too big instead of being cut to a valid-looking length.
            buf: vec![0; MAX_DATAGRAM + 1],
            discovered: false,
        })
    }

    fn failed(&self, why: impl std::fmt::Display) -> PollError {
        PollError::Failed(format!("SNMP agent {}: {why}", self.ep.addr))
    }

    /// A decoding or security failure of an answer, worded for the operator.
    fn answer_failed(&self, error: SnmpError) -> PollError {
        match error {
            SnmpError::WrongDigest(user) => self.failed(format!(
                "the response failed authentication (wrong digest for user {user:?}): check \
                 the SNMPv3 auth password and protocol"
            )),
            SnmpError::DecryptFailed(user) => self.failed(format!(
                "cannot decrypt the response for user {user:?}: check the SNMPv3 privacy \
                 password and protocol"
            )),
            other => self.failed(format!("bad answer: {other}")),
        }
    }

    /// One request, answered (error-status not yet checked).
    async fn request(
        &mut self,
        op: Operation,
        oids: &[ObjectIdentifier],
    ) -> Result<Response, PollError> {
        let request_id = random_id();
        match &self.ep.auth {
            SnmpAuth::Community(community) => {
                let datagram =
                    client::encode_v2c(community, client::request_pdu(op, request_id, oids))
                        .map_err(|e| self.failed(e))?;
                // The same request-id on every attempt: a late answer to the first attempt
                // is as good as one to the last.
                self.transact(
                    || Ok((datagram.clone(), request_id)),
                    |datagram, _| {
                        let response = client::decode_v2c(datagram)?;
                        Ok((response.request_id == request_id).then_some(response))
                    },
                )
                .await
            }
            SnmpAuth::Usm { user, context } => {
                self.v3_request(user, context, op, request_id, oids).await
            }
        }
    }

    /// An SNMPv3 request: discovery if the agent's engine is not known yet, then the request
    /// at the user's level, with one resynchronisation (notInTimeWindow) and one rediscovery
    /// (unknownEngineIDs) allowed.
    async fn v3_request(
        &mut self,
        user: &UsmUser,
        context: &str,
        op: Operation,
        request_id: i32,
        oids: &[ObjectIdentifier],
    ) -> Result<Response, PollError> {
        let addr = self.ep.addr;
        let mut resynced = false;
        let mut rediscovered = false;
        loop {
            let engine = match self.shared.engine(addr) {
                Some(engine) => engine,
                None => self.discover(user, context).await?,
            };
            // Localising is one hash over a few dozen bytes: not worth caching, and never
            // stale when the user's password changes.
            let keys = LocalizedKeys::new(user, engine.engine_id());
            let sender = Sender {
                user,
                keys: &keys,
                engine_id: engine.engine_id(),
            };
            let shared = self.shared;
            let reply = self
                .transact(
                    || {
                        let msg_id = random_id();
                        let datagram = V3Request {
                            msg_id,
                            user,
                            keys: &keys,
                            engine: &engine,
                            now: Instant::now(),
                            context,
                            salt: shared.next_salt(),
                            pdu: client::request_pdu(op, request_id, oids),
                        }
                        .encode()?;
                        Ok((datagram, msg_id))
                    },
                    |datagram, msg_ids| {
                        let reply = client::decode_v3(datagram, msg_ids, Some(sender))?;
                        // Reports may carry request-id 0 (the agent could not read ours);
                        // a Response must carry ours.
                        Ok(reply.filter(|reply| match &reply.body {
                            V3Body::Response(response) => response.request_id == request_id,
                            V3Body::Report(_) => true,
                        }))
                    },
                )
                .await?;
            // RFC 3414 § 3.2 step 7b: an authenticated Response moves our copy of the agent's
            // clock forward, and one from before it is refused as a replay. (An
            // unauthenticated one, from a noAuthNoPriv user, proves nothing about the clock.)
            if let V3Body::Response(_) = reply.body
                && reply.authenticated
                && !self.shared.observe(addr, &reply, Instant::now())
            {
                return Err(self.failed(
                    "the response is outside the SNMPv3 time window (a replayed or delayed \
                     message)",
                ));
            }
            match reply.body {
                V3Body::Response(response) => return Ok(response),
                V3Body::Report(ReportKind::NotInTimeWindow) if !resynced => {
                    // The agent rebooted or our estimate of its clock drifted: take its clock
                    // as the report gives it and try once more.
                    resynced = true;
                    tracing::debug!(
                        agent = %addr,
                        boots = reply.boots,
                        time = reply.time,
                        "SNMPv3 agent reports our request outside its time window: resynchronised"
                    );
                    self.shared.remember(
                        addr,
                        AgentEngine::new(reply.engine_id, reply.boots, reply.time, Instant::now()),
                    );
                }
                V3Body::Report(ReportKind::UnknownEngineId) if !rediscovered => {
                    // Another device (or a reconfigured one) answers at this address now.
                    rediscovered = true;
                    tracing::debug!(
                        agent = %addr,
                        "SNMPv3 agent does not know the engine id we cached: rediscovering"
                    );
                    self.shared.forget(addr);
                }
                V3Body::Report(kind) => return Err(self.failed(kind.explain(user, context))),
            }
        }
    }

    /// RFC 3414 § 4 engine discovery; remembers and returns the agent's engine.
    async fn discover(&mut self, user: &UsmUser, context: &str) -> Result<AgentEngine, PollError> {
        let request_id = random_id();
        let reply = self
            .transact(
                || {
                    let msg_id = random_id();
                    Ok((client::encode_discovery(msg_id, request_id)?, msg_id))
                },
                |datagram, msg_ids| client::decode_v3(datagram, msg_ids, None),
            )
            .await?;
        match &reply.body {
            // A Response would be unusual, but its security parameters name the engine too.
            V3Body::Report(ReportKind::UnknownEngineId) | V3Body::Response(_) => {}
            V3Body::Report(kind) => {
                return Err(self.failed(format!(
                    "engine discovery failed: {}",
                    kind.explain(user, context)
                )));
            }
        }
        if reply.engine_id.is_empty() {
            return Err(self.failed("engine discovery: the agent's report names no engine id"));
        }
        // net-snmp reports its boots and time here; an agent that sends zeros gets
        // resynchronised by the notInTimeWindow report to the first real request.
        tracing::debug!(
            agent = %self.ep.addr,
            engine_id = %hex::encode(&reply.engine_id),
            boots = reply.boots,
            "discovered the SNMPv3 engine of an agent"
        );
        let engine = AgentEngine::new(reply.engine_id, reply.boots, reply.time, Instant::now());
        self.shared.remember(self.ep.addr, engine.clone());
        self.discovered = true;
        Ok(engine)
    }

    /// Sends what `build` makes (a datagram and the id that answers must carry; rebuilt for
    /// every attempt, so that SNMPv3 messages get a fresh msgID, salt and clock) until
    /// `accept` takes an answer, with `ep.retries` retries after timeouts. `accept` gets the
    /// ids of every attempt so far and returns `None` for a datagram that is not an answer to
    /// any of them.
    async fn transact<T>(
        &mut self,
        mut build: impl FnMut() -> Result<(Vec<u8>, i32), SnmpError>,
        mut accept: impl FnMut(&[u8], &[i32]) -> Result<Option<T>, SnmpError>,
    ) -> Result<T, PollError> {
        let attempts = self.ep.retries.saturating_add(1);
        let mut ids = Vec::new();
        for _ in 0..attempts {
            let (datagram, id) = build().map_err(|e| self.failed(e))?;
            if datagram.len() > MAX_DATAGRAM {
                return Err(self.failed(format!(
                    "the request of {} bytes does not fit in a datagram; ask for fewer OIDs",
                    datagram.len()
                )));
            }
            ids.push(id);
            self.socket
                .send(&datagram)
                .await
                .map_err(|e| self.io_error(e))?;
            let deadline = tokio::time::Instant::now() + self.ep.timeout;
            loop {
                let received =
                    tokio::time::timeout_at(deadline, self.socket.recv(&mut self.buf)).await;
                let len = match received {
                    Err(_elapsed) => break,
                    Ok(Err(e)) => return Err(self.io_error(e)),
                    Ok(Ok(len)) => len,
                };
                // Only the agent can reach a connected socket, so an answer that does not
                // decode is the agent's, and Failed rather than skipped.
                match accept(&self.buf[..len], &ids) {
                    Ok(Some(answer)) => return Ok(answer),
                    Ok(None) => {}
                    Err(e) => return Err(self.answer_failed(e)),
                }
            }
        }
        // Agents drop a request with a wrong community, and an SNMPv3 request they cannot
        // decrypt or whose context they do not have, without a word: from here that is a
        // silent agent, but the operator gets the likely causes.
        let hint = match (&self.ep.auth, self.discovered) {
            (SnmpAuth::Community(_), _) => " (or the community is wrong)",
            (SnmpAuth::Usm { .. }, true) => {
                "; it did answer engine discovery, so check the SNMPv3 privacy password and \
                 protocol, and the context"
            }
            (SnmpAuth::Usm { .. }, false) => "",
        };
        Err(PollError::Unreachable(format!(
            "no answer from SNMP agent {} within {:?}, {attempts} attempt(s){hint}",
            self.ep.addr, self.ep.timeout
        )))
    }

    fn io_error(&self, error: std::io::Error) -> PollError {
        if error.kind() == std::io::ErrorKind::ConnectionRefused {
            PollError::Unreachable(format!(
                "{}: connection refused (ICMP port unreachable: no SNMP agent listens there)",
                self.ep.addr
            ))
        } else {
            PollError::Unreachable(format!("{}: {error}", self.ep.addr))
        }
    }
}

/// Random request-ids and msgIDs, in 0..2^31 (msgID must be non-negative, RFC 3412 § 6.2).
fn random_id() -> i32 {
    (random_u64() & 0x7fff_ffff) as i32
}

fn random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        // No OS randomness: the clock and a counter still make ids differ between calls.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos
            ^ COUNTER
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(text: &str) -> ObjectIdentifier {
        client::parse_oid(text).unwrap()
    }

    fn binding(text: &str, value: SnmpValue) -> Binding {
        Binding {
            oid: oid(text),
            value,
        }
    }

    const IF_DESCR: &str = "1.3.6.1.2.1.2.2.1.2";

    #[test]
    fn walk_stops_at_the_end_of_the_subtree() {
        let mut walk = Walk::new(oid(IF_DESCR));
        let page = vec![
            binding(
                "1.3.6.1.2.1.2.2.1.2.1",
                SnmpValue::OctetString(b"lo".to_vec()),
            ),
            binding(
                "1.3.6.1.2.1.2.2.1.2.2",
                SnmpValue::OctetString(b"eth0".to_vec()),
            ),
        ];
        assert_eq!(walk.step(page), Ok(Step::More));
        assert_eq!(oid_text(&walk.last), "1.3.6.1.2.1.2.2.1.2.2");
        let page = vec![
            binding(
                "1.3.6.1.2.1.2.2.1.2.3",
                SnmpValue::OctetString(b"eth1".to_vec()),
            ),
            binding("1.3.6.1.2.1.2.2.1.3.1", SnmpValue::Integer(24)),
        ];
        assert_eq!(walk.step(page), Ok(Step::Done));
        let names: Vec<&str> = walk.found.iter().map(|v| v.oid.as_str()).collect();
        assert_eq!(
            names,
            [
                "1.3.6.1.2.1.2.2.1.2.1",
                "1.3.6.1.2.1.2.2.1.2.2",
                "1.3.6.1.2.1.2.2.1.2.3"
            ]
        );
    }

    fn oid_text(oid: &ObjectIdentifier) -> String {
        client::oid_string(oid)
    }

    #[test]
    fn walk_stops_at_end_of_mib_view() {
        let mut walk = Walk::new(oid("1.3.6.1.6.3"));
        let page = vec![
            binding("1.3.6.1.6.3.1.1.6.1.0", SnmpValue::Integer(5)),
            // endOfMibView names the requested OID, which is not after the last one.
            binding("1.3.6.1.6.3.1.1.6.1.0", SnmpValue::EndOfMibView),
        ];
        assert_eq!(walk.step(page), Ok(Step::Done));
        assert_eq!(walk.found.len(), 1);
    }

    #[test]
    fn a_leaf_root_has_nothing_below_it() {
        let mut walk = Walk::new(oid("1.3.6.1.2.1.1.3.0"));
        let page = vec![binding("1.3.6.1.2.1.1.4.0", SnmpValue::OctetString(vec![]))];
        assert_eq!(walk.step(page), Ok(Step::Done));
        assert!(walk.found.is_empty());
    }

    #[test]
    fn an_agent_loop_is_refused() {
        let mut walk = Walk::new(oid(IF_DESCR));
        let page = vec![
            binding("1.3.6.1.2.1.2.2.1.2.5", SnmpValue::Null),
            binding("1.3.6.1.2.1.2.2.1.2.5", SnmpValue::Null),
        ];
        let err = walk.step(page).unwrap_err();
        assert!(err.contains("not increasing"), "{err}");

        // Going backwards across pages, and below the root.
        let mut walk = Walk::new(oid(IF_DESCR));
        walk.step(vec![binding("1.3.6.1.2.1.2.2.1.2.5", SnmpValue::Null)])
            .unwrap();
        let err = walk
            .step(vec![binding("1.3.6.1.2.1.2.2.1.2.4", SnmpValue::Null)])
            .unwrap_err();
        assert!(
            err.contains("1.3.6.1.2.1.2.2.1.2.4 after 1.3.6.1.2.1.2.2.1.2.5"),
            "{err}"
        );
        let mut walk = Walk::new(oid(IF_DESCR));
        let err = walk
            .step(vec![binding("1.3.6.1.2.1.1.1.0", SnmpValue::Null)])
            .unwrap_err();
        assert!(err.contains("not increasing"), "{err}");
    }

    #[test]
    fn an_empty_answer_is_refused() {
        let mut walk = Walk::new(oid(IF_DESCR));
        assert!(walk.step(Vec::new()).unwrap_err().contains("no varbinds"));
    }

    #[test]
    fn a_walk_is_capped() {
        let mut walk = Walk::new(oid("1.3.6.1.4.1.9999"));
        let mut next = 1u32;
        let mut page = || {
            let rows: Vec<Binding> = (0..1000)
                .map(|_| {
                    next += 1;
                    binding(&format!("1.3.6.1.4.1.9999.1.{next}"), SnmpValue::Integer(0))
                })
                .collect();
            rows
        };
        for _ in 0..MAX_WALK_VARBINDS / 1000 {
            assert_eq!(walk.step(page()), Ok(Step::More));
        }
        let err = walk.step(page()).unwrap_err();
        assert!(err.contains("exceeds 100000 varbinds"), "{err}");
    }

    #[test]
    fn oids_are_checked_before_any_io() {
        assert_eq!(
            oid_text(&parse_oid(".1.3.6.1.2.1.1.1.0").unwrap()),
            "1.3.6.1.2.1.1.1.0"
        );
        for bad in ["", "1.3.x", "iso.3.6", "1..3"] {
            let err = parse_oid(bad).unwrap_err();
            assert!(
                matches!(err, PollError::Failed(ref m) if m.contains("invalid OID")),
                "{err}"
            );
        }
    }

    #[test]
    fn debug_shows_no_secrets() {
        let ep = SnmpEndpoint {
            addr: "192.0.2.1:161".parse().unwrap(),
            auth: SnmpAuth::Community("s3cret-community".into()),
            timeout: Duration::from_secs(1),
            retries: 1,
        };
        let text = format!("{ep:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("redacted"), "{text}");
        let user = UsmUser::from_passwords(
            "ops",
            Some((crate::snmp::AuthProtocol::Sha1, "authpassword")),
            Some((crate::snmp::PrivProtocol::Aes128, "privpassword")),
        )
        .unwrap();
        let auth = SnmpAuth::Usm {
            user: user.clone(),
            context: String::new(),
        };
        let text = format!("{auth:?}");
        let (_, key) = user.auth.as_ref().unwrap();
        assert!(!text.contains(&format!("{key:?}")), "{text}");
        assert!(!text.contains("password"), "{text}");
        assert!(text.contains("ops") && text.contains("Sha1"), "{text}");
        assert!(
            format!("{:?}", SnmpPoller::new(Arc::new(EgressPolicy::default())))
                .contains("cached_engines")
        );
    }

    #[tokio::test]
    async fn the_egress_policy_refuses_before_sending() {
        let agent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        agent.set_nonblocking(true).unwrap();
        let ep = SnmpEndpoint {
            addr: agent.local_addr().unwrap(),
            auth: SnmpAuth::Community("public".into()),
            timeout: Duration::from_secs(30),
            retries: 0,
        };
        let err = SnmpPoller::new(Arc::new(EgressPolicy::default()))
            .get(&ep, &["1.3.6.1.2.1.1.3.0".into()])
            .await
            .unwrap_err();
        assert!(matches!(err, PollError::Refused(_)), "{err:?}");
        assert!(err.to_string().contains("(loopback address)"), "{err}");
        let mut buf = [0u8; 64];
        assert_eq!(
            agent.recv(&mut buf).map_err(|e| e.kind()).err(),
            Some(std::io::ErrorKind::WouldBlock),
            "a datagram reached the agent"
        );
    }

    #[tokio::test]
    async fn unusable_addresses_are_unreachable_without_io() {
        for addr in ["0.0.0.0:161", "192.0.2.1:0"] {
            let ep = SnmpEndpoint {
                addr: addr.parse().unwrap(),
                auth: SnmpAuth::Community("public".into()),
                timeout: Duration::from_secs(30),
                retries: 0,
            };
            let err = SnmpPoller::new(Arc::new(EgressPolicy::default()))
                .get(&ep, &["1.3.6.1.2.1.1.3.0".into()])
                .await
                .unwrap_err();
            assert!(err.is_unreachable(), "{err}");
        }
    }
}
