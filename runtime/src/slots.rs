//! Places per key, each held while something lasts and given back when it ends: connections
//! per client address (`http_server`), WebSockets per principal (`ws`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// How many places each key holds now.
#[derive(Debug)]
pub struct Slots<K: Hash + Eq> {
    held: Mutex<HashMap<K, usize>>,
}

impl<K: Hash + Eq> Default for Slots<K> {
    fn default() -> Self {
        Slots {
            held: Mutex::new(HashMap::new()),
        }
    }
}

/// One place of `key`, given back on drop.
#[derive(Debug)]
pub struct Slot<K: Hash + Eq + Clone> {
    slots: Arc<Slots<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Slots<K> {
    /// A place for `key`, unless it holds `max` (at least 1) already.
    pub fn take(self: &Arc<Self>, key: K, max: usize) -> Option<Slot<K>> {
        let mut held = self.held.lock().expect("slots lock");
        let n = held.entry(key.clone()).or_insert(0);
        if *n >= max.max(1) {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: Arc::clone(self),
            key,
        })
    }
}

impl<K: Hash + Eq + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().expect("slots lock");
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_share_and_gets_it_back() {
        let slots = Arc::new(Slots::default());
        let a = slots.take("a", 2).unwrap();
        let _b = slots.take("a", 2).unwrap();
        assert!(slots.take("a", 2).is_none());
        assert!(slots.take("b", 2).is_some());
        drop(a);
        assert!(slots.take("a", 2).is_some());
        assert!(slots.take("c", 0).is_some(), "at least one");
    }
}
