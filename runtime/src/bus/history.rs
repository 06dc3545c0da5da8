//! The latest items of a node's stream, held for clients that resume after a reconnect.

use std::sync::Arc;

use super::{BusItem, Event};

/// The latest items of a node's stream.
pub(super) struct History {
    /// The cursor of the next item; cursors start at 1.
    pub(super) next: u64,
    pub(super) items: std::collections::VecDeque<BusItem>,
    /// About how much memory the held events take ([`Event::held_bytes`]).
    pub(super) bytes: usize,
    pub(super) max_items: usize,
    pub(super) max_bytes: usize,
}

impl History {
    pub(super) fn push(&mut self, item: BusItem) {
        self.next += 1;
        self.bytes += item_bytes(&item);
        self.items.push_back(item);
        while self.items.len() > self.max_items || self.bytes > self.max_bytes {
            let Some(old) = self.items.pop_front() else {
                break;
            };
            self.bytes -= item_bytes(&old);
        }
    }
}

impl History {
    pub(super) fn replay(&self, after: u64) -> Option<Replay> {
        let through = self.next - 1;
        if after > through {
            return None;
        }
        let oldest = self.items.front().map_or(self.next, BusItem::cursor);
        if after + 1 < oldest {
            return None;
        }
        let mut events = Vec::with_capacity((through - after) as usize);
        for item in self.items.iter().filter(|item| item.cursor() > after) {
            match item {
                BusItem::Event(event) => events.push(event.clone()),
                BusItem::Gap { .. } => return None,
            }
        }
        Some(Replay { events, through })
    }
}

pub(super) fn item_bytes(item: &BusItem) -> usize {
    let held = match item {
        BusItem::Event(event) => event.held_bytes(),
        BusItem::Gap { .. } => 0,
    };
    // Plus the queue's slot for it.
    held + size_of::<BusItem>()
}

/// What [`EventBus::replay`] gives a resuming client.
#[derive(Debug)]
pub struct Replay {
    /// The events after the client's cursor, in order.
    pub events: Vec<Arc<Event>>,
    /// The cursor of the last item published so far: the live feed continues after it.
    pub through: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::event::tests::alert;
    use crate::bus::{EventBody, EventType};

    fn history(max_items: usize, max_bytes: usize) -> History {
        History {
            next: 1,
            items: std::collections::VecDeque::new(),
            bytes: 0,
            max_items,
            max_bytes,
        }
    }

    fn push_event(history: &mut History, id: i64) {
        let event = Event::new(
            EventType::AlertUpdated,
            "n1".into(),
            history.next,
            history.next,
            EventBody::Alert(Box::new(alert(id))),
        );
        history.push(BusItem::Event(Arc::new(event)));
    }

    fn cursors(replay: &Replay) -> Vec<u64> {
        replay.events.iter().map(|e| e.cursor).collect()
    }

    #[test]
    fn a_resuming_client_gets_what_it_missed_while_it_is_held() {
        let mut h = history(4, usize::MAX);
        assert_eq!(h.replay(0).map(|r| r.through), Some(0), "nothing yet");
        for id in 1..=3 {
            push_event(&mut h, id);
        }
        let r = h.replay(1).unwrap();
        assert_eq!((cursors(&r), r.through), (vec![2, 3], 3));
        let r = h.replay(3).unwrap();
        assert_eq!((cursors(&r), r.through), (vec![], 3), "up to date");
        assert!(
            h.replay(4).is_none(),
            "a cursor from the future is another stream's"
        );
        for id in 4..=6 {
            push_event(&mut h, id);
        }
        // Four held: 3..=6. Resuming after 2 needs 3 onwards: still fine; after 1 needs 2.
        assert_eq!(cursors(&h.replay(2).unwrap()), vec![3, 4, 5, 6]);
        assert!(h.replay(1).is_none(), "event 2 is no longer held");
    }

    #[test]
    fn no_resumption_crosses_a_gap() {
        let mut h = history(100, usize::MAX);
        push_event(&mut h, 1);
        let cursor = h.next;
        h.push(BusItem::Gap { cursor });
        push_event(&mut h, 2);
        assert!(h.replay(1).is_none(), "the gap lies after cursor 1");
        assert_eq!(
            cursors(&h.replay(2).unwrap()),
            vec![3],
            "after the gap is fine"
        );
    }

    #[test]
    fn history_holds_at_most_its_bytes() {
        let event = Event::new(
            EventType::AlertUpdated,
            "n1".into(),
            1,
            1,
            EventBody::Alert(Box::new(alert(1))),
        );
        // The parsed alert is held beside its text, and counts (it once did not, and a full
        // history held several times its limit).
        assert!(
            event.held_bytes() > 2 * event.text().len(),
            "{} bytes held for {} of text",
            event.held_bytes(),
            event.text().len()
        );
        let one = item_bytes(&BusItem::Event(Arc::new(event)));
        let mut h = history(100, one * 3);
        for id in 1..=10 {
            push_event(&mut h, id);
        }
        assert!(
            h.items.len() <= 3 && h.bytes <= one * 3,
            "{} held",
            h.items.len()
        );
        assert_eq!(h.next, 11);
    }
}
