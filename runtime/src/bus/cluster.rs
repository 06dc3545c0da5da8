//! Between nodes: the `NOTIFY` envelopes that carry numbered items, and the listener that
//! delivers other nodes' items to this node's clients. This module owns the bus's database
//! I/O besides the publisher's store read.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::warn;

use super::{Item, Shared, stopped};
use crate::store::{EventListener, Store};

/// One `NOTIFY` payload: consecutive items of one node, the first numbered `seq`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Envelope {
    /// Format version; a node ignores (and logs) envelopes of a version it does not know, so a
    /// cluster can be upgraded one node at a time.
    pub(super) v: u32,
    /// The sending bus instance (random per start): how a node recognises its own.
    pub(super) from: u64,
    pub(super) node: String,
    pub(super) seq: u64,
    pub(super) items: Vec<Item>,
}

pub(super) const ENVELOPE_VERSION: u32 = 1;

/// PostgreSQL refuses `NOTIFY` payloads of 8000 bytes or more; stay clear of it.
pub const MAX_NOTIFY_PAYLOAD: usize = 7_900;

/// Packs items numbered from `first_seq` into `NOTIFY` payloads of at most
/// [`MAX_NOTIFY_PAYLOAD`] bytes. An item that cannot fit even alone (none of ours comes close)
/// is left out with a warning; receivers see the hole in the numbering as a gap.
pub(super) fn envelopes(from: u64, node: &str, first_seq: u64, items: &[Item]) -> Vec<String> {
    let head = |seq: u64| {
        let empty = Envelope {
            v: ENVELOPE_VERSION,
            from,
            node: node.to_owned(),
            seq,
            items: Vec::new(),
        };
        let mut text = serde_json::to_string(&empty).expect("envelopes serialise");
        // Reopen the empty item list: `...,"items":[]}` → `...,"items":[`.
        text.truncate(text.len() - 2);
        text
    };
    let mut payloads = Vec::new();
    let mut current: Option<String> = None;
    let mut current_empty = true;
    for (i, item) in items.iter().enumerate() {
        let seq = first_seq + i as u64;
        let json = serde_json::to_string(item).expect("items serialise");
        let fits = |p: &String, empty: bool| {
            p.len() + json.len() + usize::from(!empty) + 2 <= MAX_NOTIFY_PAYLOAD
        };
        if let Some(p) = &current
            && !fits(p, current_empty)
        {
            let mut done = current.take().expect("checked");
            done.push_str("]}");
            payloads.push(done);
        }
        let p = current.get_or_insert_with(|| {
            current_empty = true;
            head(seq)
        });
        if !fits(p, current_empty) {
            warn!(
                seq,
                bytes = json.len(),
                "event too large to send to other nodes; left out"
            );
            // Numbering must stay consecutive within an envelope: start the next one after it.
            current = None;
            continue;
        }
        if !current_empty {
            p.push(',');
        }
        p.push_str(&json);
        current_empty = false;
    }
    if let Some(mut p) = current
        && !current_empty
    {
        p.push_str("]}");
        payloads.push(p);
    }
    payloads
}

/// Receives other nodes' items and delivers them to this node's clients.
pub(super) async fn listen_loop(
    shared: Arc<Shared>,
    store: Store,
    mut listener: EventListener,
    mut shutdown: watch::Receiver<bool>,
) {
    // The next number expected from each other bus instance: a different one means lost
    // notifications.
    let mut expected: HashMap<u64, u64> = HashMap::new();
    let mut nodes: HashMap<String, Arc<str>> = HashMap::new();
    // While the database is unreachable: clients are told once when it starts, and once more
    // when it ends (those who connected meanwhile missed other nodes' events too).
    let mut failing = false;
    loop {
        let received = tokio::select! {
            r = listener.recv() => r,
            _ = stopped(&mut shutdown) => return,
        };
        let payload = match received {
            Ok(Some(payload)) => {
                if failing {
                    failing = false;
                    shared.publish_gap();
                }
                payload
            }
            Ok(None) => {
                warn!(
                    "lost the connection that listens for other nodes' events (reconnected); clients are told they missed events"
                );
                shared.publish_gap();
                // Reported: numbering is checked afresh from here.
                expected.clear();
                continue;
            }
            Err(error) => {
                warn!(%error, "cannot listen for other nodes' events; retrying in a second");
                if !failing {
                    failing = true;
                    shared.publish_gap();
                }
                expected.clear();
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    _ = stopped(&mut shutdown) => return,
                }
                continue;
            }
        };
        shared
            .counters
            .notifications_received
            .fetch_add(1, Ordering::Relaxed);
        let envelope: Envelope = match serde_json::from_str(&payload) {
            Ok(e) => e,
            Err(error) => {
                warn!(%error, bytes = payload.len(), "ignoring an event notification that is not understood");
                continue;
            }
        };
        if envelope.v != ENVELOPE_VERSION {
            warn!(
                version = envelope.v,
                node = %envelope.node,
                "ignoring events of another format version"
            );
            continue;
        }
        if envelope.from == shared.instance {
            continue;
        }
        let next = envelope.seq + envelope.items.len() as u64;
        if let Some(want) = expected.insert(envelope.from, next)
            && want != envelope.seq
        {
            warn!(node = %envelope.node, expected = want, got = envelope.seq, "events from another node went missing; clients are told they missed events");
            shared.publish_gap();
        }
        // Forget instances that stopped long ago rather than grow forever with restarts.
        if expected.len() > 1_000 {
            expected.clear();
            expected.insert(envelope.from, next);
        }
        if !shared.watched() {
            shared.unwatched();
            continue;
        }
        let node = nodes
            .entry(envelope.node.clone())
            .or_insert_with(|| envelope.node.as_str().into())
            .clone();
        shared
            .deliver(&store, &node, envelope.seq, envelope.items)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{AlertChangeKind, EventBody, EventType};

    fn decode(payloads: &[String]) -> Vec<(u64, Item)> {
        let mut all = Vec::new();
        for p in payloads {
            assert!(p.len() <= MAX_NOTIFY_PAYLOAD, "{} bytes", p.len());
            let e: Envelope = serde_json::from_str(p).unwrap_or_else(|e| panic!("{e}: {p}"));
            assert_eq!(
                (e.v, e.from, e.node.as_str()),
                (ENVELOPE_VERSION, 9, "node-a")
            );
            for (i, item) in e.items.into_iter().enumerate() {
                all.push((e.seq + i as u64, item));
            }
        }
        all
    }

    #[test]
    fn envelopes_stay_under_the_notify_limit_and_keep_numbering() {
        let mut items: Vec<Item> = (0..5_000)
            .map(|i| {
                let kind = [
                    AlertChangeKind::Created,
                    AlertChangeKind::Updated,
                    AlertChangeKind::Resolved,
                ][i % 3];
                Item::Change(kind, 1_000_000_000 + i as i64)
            })
            .collect();
        items.insert(
            2_500,
            Item::Event {
                event_type: EventType::SystemStatus,
                body: EventBody::System(
                    serde_json::json!({"writer_queue": 3, "text": "x".repeat(3000)}),
                ),
            },
        );
        let payloads = envelopes(9, "node-a", 101, &items);
        assert!(payloads.len() > 10, "{} payloads", payloads.len());
        let decoded = decode(&payloads);
        assert_eq!(decoded.len(), items.len());
        for (i, (seq, item)) in decoded.into_iter().enumerate() {
            assert_eq!(seq, 101 + i as u64);
            assert_eq!(item, items[i]);
        }
        assert!(envelopes(9, "node-a", 1, &[]).is_empty());
    }

    #[test]
    fn an_item_too_large_to_send_leaves_a_hole_not_a_renumbering() {
        let items = vec![
            Item::Change(AlertChangeKind::Created, 1),
            Item::Event {
                event_type: EventType::SystemStatus,
                body: EventBody::System(serde_json::json!({"big": "x".repeat(MAX_NOTIFY_PAYLOAD)})),
            },
            Item::Change(AlertChangeKind::Resolved, 1),
        ];
        let decoded = decode(&envelopes(9, "node-a", 10, &items));
        assert_eq!(
            decoded,
            vec![
                (10, Item::Change(AlertChangeKind::Created, 1)),
                (12, Item::Change(AlertChangeKind::Resolved, 1)),
            ]
        );
    }
}
