//! The signatures an `hmac` webhook accepted, remembered for its window to refuse replays.

use std::collections::{HashMap, VecDeque};

/// Why [`ReplayCache::admit`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Replay {
    /// The same signature was accepted within the window.
    Seen,
    /// The cache was full and forgot signatures this old: it might be a replay of one of them.
    BeyondMemory,
}

impl Replay {
    pub(super) fn message(self, timestamp: i64) -> String {
        match self {
            Replay::Seen => "replayed: a request with this signature was already accepted".into(),
            Replay::BeyondMemory => format!(
                "replayed or too old: timestamp {timestamp} is older than this webhook \
                 remembers signatures right now (too many requests within the window); sign \
                 the request again with the current time"
            ),
        }
    }
}

/// The signatures an `hmac` webhook accepted within its window, for refusing replays. A
/// signature needs remembering only until its timestamp leaves the window (after that, the
/// window check refuses it), so entries expire then.
///
/// Bounded: when `capacity` signatures are remembered, the oldest is forgotten and its
/// timestamp becomes `floor`; from then on a signature with a timestamp at or before `floor` is
/// refused, because it might be a replay of a forgotten one. Under a flood the effective
/// window shrinks, rather than replays getting through or memory growing without bound.
pub(super) struct ReplayCache {
    /// Signature → the sequence number of its live entry in `order`.
    seen: HashMap<[u8; 32], u64>,
    /// (signature, timestamp, sequence) in the order admitted. An entry whose sequence no
    /// longer matches `seen` was forgotten; it only waits for its turn to be dropped.
    order: VecDeque<([u8; 32], i64, u64)>,
    floor: i64,
    next: u64,
    capacity: usize,
}

impl ReplayCache {
    pub(super) fn new(capacity: usize) -> ReplayCache {
        ReplayCache {
            seen: HashMap::new(),
            order: VecDeque::new(),
            floor: i64::MIN,
            next: 0,
            capacity: capacity.max(1),
        }
    }

    pub(super) fn admit(
        &mut self,
        signature: [u8; 32],
        timestamp: i64,
        now: i64,
        tolerance: i64,
    ) -> Result<(), Replay> {
        // Admission order is nearly timestamp order, so expiring from the front finds almost
        // everything expired; a straggler behind a newer entry lingers a little longer.
        while let Some(&(_, t, _)) = self.order.front()
            && t.saturating_add(tolerance) < now
        {
            self.pop_front();
        }
        if self.seen.contains_key(&signature) {
            return Err(Replay::Seen);
        }
        if timestamp <= self.floor {
            return Err(Replay::BeyondMemory);
        }
        while self.order.len() >= self.capacity {
            if let Some((t, true)) = self.pop_front() {
                self.floor = self.floor.max(t);
            }
        }
        let seq = self.next;
        self.next += 1;
        self.seen.insert(signature, seq);
        self.order.push_back((signature, timestamp, seq));
        Ok(())
    }

    pub(super) fn forget(&mut self, signature: &[u8; 32]) {
        self.seen.remove(signature);
    }

    /// Drops the oldest entry: its timestamp, and whether it was still remembered.
    fn pop_front(&mut self) -> Option<(i64, bool)> {
        let (signature, t, seq) = self.order.pop_front()?;
        let live = self.seen.get(&signature) == Some(&seq);
        if live {
            self.seen.remove(&signature);
        }
        Some((t, live))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn replay_cache_expires_and_stays_bounded() {
        let sig = |n: u8| [n; 32];
        let mut cache = ReplayCache::new(3);
        for n in 0..3 {
            cache.admit(sig(n), NOW + i64::from(n), NOW, 10).unwrap();
        }
        assert_eq!(cache.admit(sig(1), NOW + 1, NOW, 10), Err(Replay::Seen));
        // Full: the oldest is forgotten and its timestamp becomes the floor.
        cache.admit(sig(3), NOW + 3, NOW, 10).unwrap();
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.admit(sig(0), NOW, NOW, 10), Err(Replay::BeyondMemory));
        assert_eq!(cache.admit(sig(9), NOW, NOW, 10), Err(Replay::BeyondMemory));
        // Once their window has passed, entries expire and make room without a floor.
        cache.admit(sig(4), NOW + 20, NOW + 20, 10).unwrap();
        assert_eq!(cache.len(), 1);
        // A forgotten entry is not a replay, and its stale queue slot is harmless.
        cache.forget(&sig(4));
        cache.admit(sig(4), NOW + 20, NOW + 20, 10).unwrap();
        assert_eq!(
            cache.admit(sig(4), NOW + 20, NOW + 20, 10),
            Err(Replay::Seen)
        );
        cache.admit(sig(5), NOW + 21, NOW + 21, 10).unwrap();
        cache.admit(sig(6), NOW + 21, NOW + 21, 10).unwrap();
        assert_eq!(
            cache.admit(sig(4), NOW + 20, NOW + 21, 10),
            Err(Replay::Seen)
        );
    }
}
