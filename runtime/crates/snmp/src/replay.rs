//! What stops a captured SNMPv3 trap from being accepted twice: the last clock of every
//! remote authoritative engine (RFC 3414 § 3.2 step 7b — a message more than 150 s older than
//! that clock is refused) and the digests of the authenticated messages accepted within that
//! window (USM itself accepts a message replayed within the window; this does not).
//!
//! Pure: the receiver calls [`ReplayGuard::check`] per message; the trap listener's replay
//! module persists [`ReplayGuard::take_changes`] to the database and feeds what other nodes
//! (or this node before a restart) recorded back through [`ReplayGuard::import`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::{RemoteClock, TIME_WINDOW};

/// How long an accepted message's digest is remembered: the time window, plus the slack a
/// sender's clock may gain on ours before its messages count as old.
pub const DIGEST_TTL: Duration = Duration::from_secs(2 * TIME_WINDOW.as_secs());

/// Remote engines whose clocks are kept; beyond, the table starts again (a sender forgotten
/// this way is resynchronised by its next authenticated message, as after a restart).
const MAX_ENGINES: usize = 65_536;

/// Digests kept. At the cap the oldest go first, still unexpired: the cap bounds memory
/// against a flood of (authenticated, so credentialed) traps; 1,000 a second for the whole
/// window fit.
const MAX_DIGESTS: usize = 500_000;

/// The identity of one message: SHA-256 of its authoritative engine id and its HMAC, the first
/// 16 bytes. The HMAC covers the whole message, so two messages share it only if they are the
/// same message.
pub type MessageDigest = [u8; 16];

pub fn message_digest(engine_id: &[u8], auth_params: &[u8]) -> MessageDigest {
    let mut hash = Sha256::new();
    hash.update((engine_id.len() as u32).to_be_bytes());
    hash.update(engine_id);
    hash.update(auth_params);
    hash.finalize()[..16].try_into().expect("16 of 32 bytes")
}

/// Why [`ReplayGuard::check`] refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// From before the engine's last reboot, or more than 150 s older than its clock.
    NotInTimeWindow,
    /// Accepted once already.
    Replayed,
}

/// A remote engine's clock as exchanged with the database: its boots and time at the moment
/// of the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineClock {
    pub engine_id: Vec<u8>,
    pub boots: u32,
    pub time: u32,
}

/// A remembered digest as exchanged with the database: how long it is still remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenDigest {
    pub digest: MessageDigest,
    pub remaining: Duration,
}

/// What changed since the last [`ReplayGuard::take_changes`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayChanges {
    pub clocks: Vec<EngineClock>,
    pub digests: Vec<SeenDigest>,
}

impl ReplayChanges {
    pub fn is_empty(&self) -> bool {
        self.clocks.is_empty() && self.digests.is_empty()
    }
}

#[derive(Default)]
pub struct ReplayGuard {
    clocks: HashMap<Vec<u8>, RemoteClock>,
    /// Digest → when it may be forgotten.
    seen: HashMap<MessageDigest, Instant>,
    /// The same digests in the order they expire (each is remembered for the same time, so
    /// insertion order is expiry order, imports aside — which only makes pruning late).
    expiry: VecDeque<(Instant, MessageDigest)>,
    changed_clocks: HashSet<Vec<u8>>,
    new_digests: Vec<MessageDigest>,
}

impl ReplayGuard {
    /// Checks an authenticated message from the remote authoritative engine `engine_id` (a
    /// trap: informs name our engine, whose boots move at every start, so a captured inform is
    /// out of the window after a restart) and remembers it when accepted.
    pub fn check(
        &mut self,
        engine_id: &[u8],
        boots: u32,
        time: u32,
        digest: MessageDigest,
        now: Instant,
    ) -> Result<(), Refusal> {
        if !self.observe_clock(engine_id, boots, time, now) {
            return Err(Refusal::NotInTimeWindow);
        }
        self.prune(now);
        if self.seen.contains_key(&digest) {
            return Err(Refusal::Replayed);
        }
        self.remember(digest, now + DIGEST_TTL);
        self.new_digests.push(digest);
        Ok(())
    }

    fn observe_clock(&mut self, engine_id: &[u8], boots: u32, time: u32, now: Instant) -> bool {
        match self.clocks.get_mut(engine_id) {
            Some(clock) => {
                let before = (clock.boots, clock.latest_received_time);
                let timely = clock.observe(boots, time, now);
                if (clock.boots, clock.latest_received_time) != before {
                    self.changed_clocks.insert(engine_id.to_vec());
                }
                timely
            }
            None => {
                if self.clocks.len() >= MAX_ENGINES {
                    self.clocks.clear();
                }
                self.clocks
                    .insert(engine_id.to_vec(), RemoteClock::new(boots, time, now));
                self.changed_clocks.insert(engine_id.to_vec());
                true
            }
        }
    }

    fn remember(&mut self, digest: MessageDigest, until: Instant) {
        if self.seen.len() >= MAX_DIGESTS
            && let Some((_, oldest)) = self.expiry.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(digest, until);
        self.expiry.push_back((until, digest));
    }

    fn prune(&mut self, now: Instant) {
        while let Some(&(until, digest)) = self.expiry.front() {
            if until > now {
                break;
            }
            self.expiry.pop_front();
            if self.seen.get(&digest) == Some(&until) {
                self.seen.remove(&digest);
            }
        }
    }

    /// The clocks that moved and the digests accepted since the last call, for the database.
    pub fn take_changes(&mut self, now: Instant) -> ReplayChanges {
        let clocks = self
            .changed_clocks
            .drain()
            .filter_map(|engine_id| {
                let clock = self.clocks.get(&engine_id)?;
                Some(EngineClock {
                    boots: clock.boots,
                    time: u32::try_from(clock.time_at(now)).unwrap_or(u32::MAX),
                    engine_id,
                })
            })
            .collect();
        let digests = self
            .new_digests
            .drain(..)
            .filter_map(|digest| {
                let until = *self.seen.get(&digest)?;
                Some(SeenDigest {
                    digest,
                    remaining: until.saturating_duration_since(now),
                })
            })
            .collect();
        ReplayChanges { clocks, digests }
    }

    /// Takes in what the database holds (recorded by this node before a restart, or by other
    /// nodes): clocks only move forward, digests are remembered for what remains of their time.
    pub fn import(&mut self, state: ReplayChanges, now: Instant) {
        for clock in state.clocks {
            match self.clocks.get_mut(&clock.engine_id) {
                Some(known)
                    if (known.boots, known.time_at(now))
                        >= (clock.boots, u64::from(clock.time)) => {}
                _ => {
                    if self.clocks.len() >= MAX_ENGINES {
                        self.clocks.clear();
                    }
                    self.clocks.insert(
                        clock.engine_id,
                        RemoteClock::new(clock.boots, clock.time, now),
                    );
                }
            }
        }
        for seen in state.digests {
            if seen.remaining.is_zero() || self.seen.contains_key(&seen.digest) {
                continue;
            }
            self.remember(seen.digest, now + seen.remaining);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENGINE: &[u8] = b"\x80\x00\x1f\x88\x04remote";

    #[test]
    fn a_message_is_accepted_once() {
        let mut guard = ReplayGuard::default();
        let now = Instant::now();
        let digest = message_digest(ENGINE, b"hmac-of-one-message");
        assert_eq!(guard.check(ENGINE, 3, 1000, digest, now), Ok(()));
        assert_eq!(
            guard.check(ENGINE, 3, 1000, digest, now + Duration::from_secs(10)),
            Err(Refusal::Replayed)
        );
        // Another message of the same moment is fine.
        let other = message_digest(ENGINE, b"hmac-of-another");
        assert_eq!(guard.check(ENGINE, 3, 1000, other, now), Ok(()));
    }

    #[test]
    fn what_one_guard_recorded_protects_the_next() {
        let start = Instant::now();
        let mut before = ReplayGuard::default();
        let digest = message_digest(ENGINE, b"captured");
        before.check(ENGINE, 3, 1000, digest, start).unwrap();
        let later = start + Duration::from_secs(20);
        let saved = before.take_changes(later);
        assert_eq!(saved.clocks.len(), 1);
        assert_eq!(saved.clocks[0].time, 1020);
        assert_eq!(saved.digests.len(), 1);
        assert!(
            before.take_changes(later).is_empty(),
            "changes are taken once"
        );

        // A restart 20 s later: the replay inside the window is caught by its digest …
        let mut after = ReplayGuard::default();
        after.import(saved.clone(), later);
        assert_eq!(
            after.check(ENGINE, 3, 1000, digest, later),
            Err(Refusal::Replayed)
        );
        // … and a message captured long before the clock that was saved is too old, digest or
        // not: the clock came back with the database.
        let mut after = ReplayGuard::default();
        after.import(
            ReplayChanges {
                clocks: vec![EngineClock {
                    engine_id: ENGINE.to_vec(),
                    boots: 3,
                    time: 5000,
                }],
                digests: vec![],
            },
            later,
        );
        let old = message_digest(ENGINE, b"captured an hour ago");
        assert_eq!(
            after.check(ENGINE, 3, 1000, old, later),
            Err(Refusal::NotInTimeWindow)
        );
        assert_eq!(
            after.check(ENGINE, 2, 4990, old, later),
            Err(Refusal::NotInTimeWindow),
            "from before the last reboot"
        );
    }

    #[test]
    fn digests_are_forgotten_after_their_time() {
        let mut guard = ReplayGuard::default();
        let now = Instant::now();
        let digest = message_digest(ENGINE, b"m");
        guard.check(ENGINE, 1, 10, digest, now).unwrap();
        let much_later = now + DIGEST_TTL + Duration::from_secs(1);
        guard.prune(much_later);
        assert!(guard.seen.is_empty() && guard.expiry.is_empty());
    }
}
