//! The publisher: takes items in order, numbers them, renders alert changes with one store
//! read per chunk while someone listens, and broadcasts them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use super::cluster::envelopes;
use super::{
    BusItem, Event, EventBody, EventType, Item, Job, NEVER, PUBLISH_CHUNK, Shared, stopped,
};
use crate::alert::StoredAlert;
use crate::store::Store;

impl Shared {
    /// Whether events must be rendered: a client listens here, or one left recently enough
    /// that it may come back and resume (`resume_grace`).
    pub(super) fn watched(&self) -> bool {
        if self.local.receiver_count() > 0 {
            return true;
        }
        let left = self.last_client_left_ms.load(Ordering::Relaxed);
        left != NEVER
            && (self.started.elapsed().as_millis() as u64).saturating_sub(left)
                < self.resume_grace_ms
    }

    /// Numbers the event in this node's stream, keeps it for resuming clients and broadcasts
    /// it, all under the history's lock so that cursors follow the broadcast's order (the
    /// publisher and the listener for other nodes both publish).
    pub(super) fn publish(
        &self,
        event_type: EventType,
        node: &Arc<str>,
        seq: u64,
        body: EventBody,
    ) {
        let mut history = self.history.lock().expect("history lock");
        let event = Arc::new(Event::new(
            event_type,
            node.clone(),
            seq,
            history.next,
            body,
        ));
        if event.event_type == EventType::SystemStatus && *event.node == *self.node {
            *self.last_status.lock().expect("status lock") = Some(event.clone());
        }
        self.counters.published.fetch_add(1, Ordering::Relaxed);
        self.unwatched.store(false, Ordering::Relaxed);
        history.push(BusItem::Event(event.clone()));
        // An error only means that no client listens right now.
        let _ = self.local.send(BusItem::Event(event));
    }

    pub(super) fn publish_gap(&self) {
        self.counters.gaps.fetch_add(1, Ordering::Relaxed);
        {
            let mut history = self.history.lock().expect("history lock");
            let gap = BusItem::Gap {
                cursor: history.next,
            };
            history.push(gap.clone());
            let _ = self.local.send(gap);
        }
        self.wake_clients();
    }

    /// Items went by unrendered because no client listened here: they never enter this node's
    /// stream, so it gets a gap (once, however many items pass), which no resumption crosses.
    /// Sent to the bus too, for a client that connected just now.
    pub(super) fn unwatched(&self) {
        if self.unwatched.swap(true, Ordering::Relaxed) {
            return;
        }
        let mut history = self.history.lock().expect("history lock");
        let gap = BusItem::Gap {
            cursor: history.next,
        };
        history.push(gap.clone());
        let _ = self.local.send(gap);
    }

    pub(super) fn wake_clients(&self) {
        self.published.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Renders `items` (numbered from `first_seq`, from `node`) and publishes them to local
    /// clients, in order. Alert changes become the alert as the store has it now; one whose
    /// alert no longer exists (deleted by retention since) is skipped. An alert that opened or
    /// occurred while suppressed (by a silence) is published too, but reaches only clients that
    /// ask for suppressed alerts (see [`crate::api::ws`]).
    pub(super) async fn deliver(
        &self,
        store: &Store,
        node: &Arc<str>,
        first_seq: u64,
        items: Vec<Item>,
    ) {
        let mut seq = first_seq;
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let chunk: Vec<Item> = items
                .by_ref()
                .take(PUBLISH_CHUNK.min(self.client_queue / 4))
                .collect();
            let ids: Vec<i64> = chunk
                .iter()
                .filter_map(|item| match item {
                    Item::Change(_, id) => Some(*id),
                    Item::Event { .. } => None,
                })
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let alerts: HashMap<i64, StoredAlert> = if ids.is_empty() {
                HashMap::new()
            } else {
                match store.alerts_for_events(&ids).await {
                    Ok(alerts) => alerts.into_iter().map(|a| (a.id, a)).collect(),
                    Err(error) => {
                        warn!(%error, alerts = ids.len(), "cannot read alerts for their events; clients are told they missed events");
                        self.publish_gap();
                        return;
                    }
                }
            };
            for item in chunk {
                let this = seq;
                seq += 1;
                let (event_type, body) = match item {
                    Item::Change(kind, id) => {
                        let Some(alert) = alerts.get(&id) else {
                            debug!(alert = id, "alert gone before its event was rendered");
                            continue;
                        };
                        (kind.event_type(), EventBody::Alert(Box::new(alert.clone())))
                    }
                    Item::Event { event_type, body } => (event_type, body),
                };
                self.publish(event_type, node, this, body);
            }
            self.wake_clients();
        }
    }
}

pub(super) async fn publish_loop(
    shared: Arc<Shared>,
    store: Store,
    mut jobs: mpsc::Receiver<Job>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut seq: u64 = 0;
    loop {
        let first = tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => job,
                None => return,
            },
            _ = stopped(&mut shutdown) => return,
        };
        // Whatever else is waiting goes out in the same store read and the same NOTIFY.
        let mut size = first.len();
        let mut batch = vec![first];
        while size < PUBLISH_CHUNK {
            match jobs.try_recv() {
                Ok(job) => {
                    size += job.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let lost = shared.lost.swap(0, Ordering::Relaxed);
        if lost > 0 {
            warn!(
                lost,
                "the event publisher fell behind; clients are told they missed events"
            );
            // The numbers of what was lost are skipped, so other nodes see the gap too.
            seq += lost;
            shared.publish_gap();
        }
        let items: Vec<Item> = batch
            .into_iter()
            .flat_map(|job| match job {
                Job::Changes(changes) => changes
                    .into_iter()
                    .map(|c| Item::Change(c.kind, c.alert_id))
                    .collect::<Vec<_>>(),
                Job::Event(event_type, body) => vec![Item::Event { event_type, body }],
            })
            .collect();
        let first_seq = seq + 1;
        seq += items.len() as u64;
        if shared.cluster {
            let payloads = envelopes(shared.instance, &shared.node, first_seq, &items);
            if let Err(error) = store.notify_events(&payloads).await {
                shared
                    .counters
                    .notify_failures
                    .fetch_add(1, Ordering::Relaxed);
                warn!(%error, "cannot send events to other nodes; their clients will be told they missed some");
            }
        }
        if shared.watched() {
            shared
                .deliver(&store, &shared.node.clone(), first_seq, items)
                .await;
        } else {
            shared.unwatched();
        }
    }
}
