//! The SNMP trap listener: UDP datagrams → `snmp::Receiver` (decode, USM, v1→v2 mapping) →
//! a bounded queue → workers that route each trap to the addon claiming its OID (longest
//! prefix) and ingest it.
//!
//! Nothing disappears silently: every datagram lands in exactly one counter — a decode or
//! security failure by class, a replayed SNMPv3 trap, a discovery report (sent, or not: rate limited per source),
//! dropped because the queue was full (by count or by bytes), or queued;
//! every queued trap ends as ingested, unhandled (no addon claims it), addon failure or store
//! failure. INFORMs are acknowledged only after their trap is stored (or counted as unhandled
//! or refused by its addon), so a sender whose inform was dropped or not stored retries it.

pub mod credentials;
pub mod local_engine;
pub mod replay;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::event::{RawEvent, SnmpTrap, SnmpVersion};
use crate::ingest::{IngestError, ingest};
use crate::registry::Registry;
use crate::sandbox::CallError;
use crate::snmp::{Received, Receiver};
use crate::writer::AlertWriter;

/// The largest UDP payload over IPv4; SNMP messages cannot be larger.
const MAX_DATAGRAM: usize = 65_507;

/// How many recent unhandled traps are kept for operators to see.
const UNHANDLED_KEPT: usize = 200;

/// Kernel receive buffer asked for. Bursts from thousands of devices arrive faster than any
/// one recv loop for a moment; the kernel buffer absorbs them instead of dropping. (Linux caps
/// this at `net.core.rmem_max` unless the process may force it.)
pub const RECEIVE_BUFFER_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct TrapConfig {
    /// Traps decoded but not yet ingested. When full, new traps are counted as dropped (and
    /// informs go unacknowledged, so their senders retry).
    pub queue: usize,
    /// What the queued traps may hold together, in bytes (each charged its datagram plus the
    /// decoded form's overhead): large traps fill memory long before `queue` of them do.
    /// Beyond it, new traps are dropped like on a full queue.
    pub queue_bytes: usize,
    /// Tasks ingesting traps concurrently. Each mostly waits for the batching writer, so many
    /// of them keep the writer's batches full; they are tasks, not threads.
    pub workers: usize,
}

impl Default for TrapConfig {
    fn default() -> Self {
        TrapConfig {
            queue: 65_536,
            queue_bytes: 64 * 1024 * 1024,
            workers: 256,
        }
    }
}

/// Counters of the trap listener. See the module comment for how they add up.
#[derive(Debug, Default)]
pub struct TrapCounters {
    received: AtomicU64,
    malformed: AtomicU64,
    unknown_community: AtomicU64,
    auth_failures: AtomicU64,
    replayed: AtomicU64,
    unsupported_pdu: AtomicU64,
    reports_sent: AtomicU64,
    reports_rate_limited: AtomicU64,
    decoded: AtomicU64,
    queued: AtomicU64,
    dropped_queue_full: AtomicU64,
    ingested: AtomicU64,
    unhandled: AtomicU64,
    addon_failed: AtomicU64,
    quarantined: AtomicU64,
    store_failed: AtomicU64,
    informs_acked: AtomicU64,
    send_errors: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct TrapStats {
    /// Datagrams read from the socket.
    pub received: u64,
    pub malformed: u64,
    pub unknown_community: u64,
    /// Unknown user, wrong digest, undecryptable, unsupported security level, out of the time
    /// window.
    pub auth_failures: u64,
    /// Authenticated SNMPv3 traps accepted once already (here, before a restart, or on another
    /// node) and sent again: a replay.
    pub replayed: u64,
    /// Well-formed SNMP that is not a notification (e.g. a get-request sent to the trap port).
    pub unsupported_pdu: u64,
    /// SNMPv3 discovery and time-window reports answered.
    pub reports_sent: u64,
    /// Reports not sent because their source asked for more than `REPORTS_PER_SOURCE_PER_SECOND`:
    /// a report answers a spoofable datagram, and must not make us a reflector.
    pub reports_rate_limited: u64,
    /// Traps and informs decoded and authenticated.
    pub decoded: u64,
    pub queued: u64,
    pub dropped_queue_full: u64,
    /// Handed to an addon and stored (or deduplicated, or cleared).
    pub ingested: u64,
    /// No enabled addon claims the trap OID.
    pub unhandled: u64,
    /// The addon refused, crashed or produced an invalid alert.
    pub addon_failed: u64,
    /// The addon is quarantined after repeated faults: not called, and an inform is not
    /// acknowledged, so its sender retries.
    pub quarantined: u64,
    pub store_failed: u64,
    pub informs_acked: u64,
    pub send_errors: u64,
}

impl TrapCounters {
    pub fn snapshot(&self) -> TrapStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TrapStats {
            received: g(&self.received),
            malformed: g(&self.malformed),
            unknown_community: g(&self.unknown_community),
            auth_failures: g(&self.auth_failures),
            replayed: g(&self.replayed),
            unsupported_pdu: g(&self.unsupported_pdu),
            reports_sent: g(&self.reports_sent),
            reports_rate_limited: g(&self.reports_rate_limited),
            decoded: g(&self.decoded),
            queued: g(&self.queued),
            dropped_queue_full: g(&self.dropped_queue_full),
            ingested: g(&self.ingested),
            unhandled: g(&self.unhandled),
            addon_failed: g(&self.addon_failed),
            quarantined: g(&self.quarantined),
            store_failed: g(&self.store_failed),
            informs_acked: g(&self.informs_acked),
            send_errors: g(&self.send_errors),
        }
    }

    fn by_name(&self, name: &str) -> &AtomicU64 {
        match name {
            "unknown_community" => &self.unknown_community,
            "auth_failures" => &self.auth_failures,
            "replayed" => &self.replayed,
            "unsupported_pdu" => &self.unsupported_pdu,
            _ => &self.malformed,
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A trap no addon claimed, kept so operators can see what they are not handling yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct UnhandledTrap {
    pub received_at: DateTime<Utc>,
    pub source: String,
    pub agent_address: String,
    pub version: &'static str,
    pub trap_oid: String,
    pub varbinds: usize,
}

/// The most recent unhandled traps, newest last.
#[derive(Debug, Default)]
pub struct UnhandledTraps {
    recent: Mutex<VecDeque<UnhandledTrap>>,
}

impl UnhandledTraps {
    fn push(&self, trap: &SnmpTrap) {
        let entry = UnhandledTrap {
            received_at: Utc::now(),
            source: trap.source.clone(),
            agent_address: trap.agent_address.clone(),
            version: match trap.version {
                SnmpVersion::V1 => "v1",
                SnmpVersion::V2c => "v2c",
                SnmpVersion::V3 => "v3",
            },
            trap_oid: trap.trap_oid.clone(),
            varbinds: trap.varbinds.len(),
        };
        let mut recent = self.recent.lock().expect("unhandled traps lock");
        if recent.len() == UNHANDLED_KEPT {
            recent.pop_front();
        }
        recent.push_back(entry);
    }

    /// Newest first.
    pub fn list(&self) -> Vec<UnhandledTrap> {
        let recent = self.recent.lock().expect("unhandled traps lock");
        recent.iter().rev().cloned().collect()
    }
}

/// What the API and tests see of a running listener.
#[derive(Debug, Clone, Default)]
pub struct TrapListenerView {
    pub counters: Arc<TrapCounters>,
    pub unhandled: Arc<UnhandledTraps>,
}

/// Binds a UDP socket for traps with a large receive buffer (best effort).
pub fn bind_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if let Err(error) = socket.set_recv_buffer_size(RECEIVE_BUFFER_BYTES) {
        warn!(%error, "cannot enlarge the trap socket's receive buffer");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Logs refused datagrams at warn level, at most once a second per class with the count of
/// those not logged: a flood of bad packets (a misconfigured device, a scan) must show in the
/// log without drowning it. The counters hold the exact numbers.
#[derive(Default)]
struct RefusalLog {
    last: std::collections::HashMap<&'static str, (std::time::Instant, u64)>,
}

impl RefusalLog {
    fn log(&mut self, class: &'static str, source: SocketAddr, error: &crate::snmp::SnmpError) {
        let now = std::time::Instant::now();
        match self.last.get_mut(class) {
            Some((at, suppressed))
                if now.duration_since(*at) < std::time::Duration::from_secs(1) =>
            {
                *suppressed += 1;
            }
            entry => {
                let suppressed = entry.map_or(0, |(_, n)| *n);
                warn!(class, %source, %error, suppressed, "trap datagram refused");
                self.last.insert(class, (now, 0));
            }
        }
    }
}

struct Job {
    trap: SnmpTrap,
    /// For an inform: the response to send once the trap is taken care of, and where.
    ack: Option<(Vec<u8>, SocketAddr)>,
    /// What the job is charged against `TrapConfig::queue_bytes`.
    cost: usize,
}

/// Discovery and time-window reports sent to one address per second, at most (the burst too).
const REPORTS_PER_SOURCE_PER_SECOND: std::num::NonZeroU32 = std::num::NonZeroU32::new(20).unwrap();

/// What a queued trap is charged beyond its datagram: the decoded trap's structures and the
/// queue slot. A decoded varbind holds its OID and value as text, about what the datagram
/// holds, so the datagram's length stands for those.
const JOB_OVERHEAD_BYTES: usize = 512;

/// Starts the listener on an already-bound socket. It runs until `shutdown` changes, then
/// drains its queue. Its replay state goes to `store` while it runs and once more at the end
/// (`replay`), from `replay_cursor` on (what [`replay::import`] returned at start).
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    socket: UdpSocket,
    receiver: Arc<Receiver>,
    store: crate::store::Store,
    replay_cursor: replay::Cursor,
    registry: Arc<Registry>,
    writer: AlertWriter,
    config: TrapConfig,
    view: TrapListenerView,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let (stop_replay, replay_stop) = watch::channel(false);
        let replay_sync = tokio::spawn(replay::sync(
            store,
            receiver.clone(),
            replay_cursor,
            replay_stop,
        ));
        let socket = Arc::new(socket);
        let (jobs, queue) = async_channel::bounded::<Job>(config.queue.max(1));
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..config.workers.max(1))
            .map(|_| {
                tokio::spawn(work(
                    queue.clone(),
                    Arc::clone(&queued_bytes),
                    socket.clone(),
                    registry.clone(),
                    writer.clone(),
                    view.clone(),
                ))
            })
            .collect();
        drop(queue);

        let counters = &view.counters;
        let mut refusals = RefusalLog::default();
        let report_limit: governor::DefaultKeyedRateLimiter<std::net::IpAddr> =
            governor::RateLimiter::keyed(governor::Quota::per_second(
                REPORTS_PER_SOURCE_PER_SECOND,
            ));
        let mut report_limit_swept = std::time::Instant::now();
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        loop {
            let (len, source) = tokio::select! {
                r = socket.recv_from(&mut buf) => match r {
                    Ok(r) => r,
                    Err(error) => {
                        // ICMP errors from earlier sends surface here on some systems; the
                        // socket itself is fine.
                        debug!(%error, "trap socket receive error");
                        continue;
                    }
                },
                _ = shutdown.changed() => break,
            };
            bump(&counters.received);
            if report_limit_swept.elapsed() > std::time::Duration::from_secs(60) {
                // Forget sources whose allowance is whole again: the map stays small.
                report_limit.retain_recent();
                report_limit_swept = std::time::Instant::now();
            }
            let job = match receiver.process(&buf[..len], source) {
                Err(error) => {
                    bump(counters.by_name(error.counter()));
                    refusals.log(error.counter(), source, &error);
                    continue;
                }
                Ok(Received::Report(report)) => {
                    if report_limit.check_key(&source.ip()).is_err() {
                        bump(&counters.reports_rate_limited);
                        continue;
                    }
                    bump(&counters.reports_sent);
                    if socket.send_to(&report, source).await.is_err() {
                        bump(&counters.send_errors);
                    }
                    continue;
                }
                Ok(Received::Trap(trap)) => Job {
                    trap,
                    ack: None,
                    cost: len + JOB_OVERHEAD_BYTES,
                },
                Ok(Received::Inform { trap, response }) => Job {
                    trap,
                    cost: len + response.len() + JOB_OVERHEAD_BYTES,
                    ack: Some((response, source)),
                },
            };
            bump(&counters.decoded);
            let cost = job.cost;
            if queued_bytes.fetch_add(cost, Ordering::Relaxed) + cost > config.queue_bytes {
                queued_bytes.fetch_sub(cost, Ordering::Relaxed);
                bump(&counters.dropped_queue_full);
                continue;
            }
            match jobs.try_send(job) {
                Ok(()) => bump(&counters.queued),
                Err(_) => {
                    queued_bytes.fetch_sub(cost, Ordering::Relaxed);
                    bump(&counters.dropped_queue_full);
                }
            }
        }
        jobs.close();
        for w in workers {
            let _ = w.await;
        }
        // Nothing is received any more: what the receiver accepted last is recorded now.
        let _ = stop_replay.send(true);
        let _ = replay_sync.await;
    })
}

async fn work(
    queue: async_channel::Receiver<Job>,
    queued_bytes: Arc<AtomicUsize>,
    socket: Arc<UdpSocket>,
    registry: Arc<Registry>,
    writer: AlertWriter,
    view: TrapListenerView,
) {
    let counters = &view.counters;
    while let Ok(Job { trap, ack, cost }) = queue.recv().await {
        queued_bytes.fetch_sub(cost, Ordering::Relaxed);
        let acknowledge = match registry.find_by_oid(&trap.trap_oid) {
            None => {
                bump(&counters.unhandled);
                view.unhandled.push(&trap);
                true
            }
            Some(addon) => match ingest(&addon, RawEvent::SnmpTrap(trap), &writer).await {
                Ok(_) => {
                    bump(&counters.ingested);
                    true
                }
                Err(IngestError::Write(error)) => {
                    bump(&counters.store_failed);
                    warn!(addon = addon.id(), %error, "trap not stored");
                    // Not acknowledged: the sender of an inform retries later.
                    false
                }
                Err(IngestError::Addon(CallError::Quarantined { .. })) => {
                    bump(&counters.quarantined);
                    false
                }
                Err(error) => {
                    bump(&counters.addon_failed);
                    debug!(addon = addon.id(), %error, "addon refused a trap");
                    true
                }
            },
        };
        if let (true, Some((response, to))) = (acknowledge, ack) {
            match socket.send_to(&response, to).await {
                Ok(_) => bump(&counters.informs_acked),
                Err(_) => bump(&counters.send_errors),
            }
        }
    }
}
