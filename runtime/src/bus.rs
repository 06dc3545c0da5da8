//! The event bus: what changed, for whoever follows live (the WebSocket at `/ws`, see
//! [`crate::api::ws`]).
//!
//! Sources hand the bus *items*: the batching writer the alert changes of each committed batch
//! (kind and id only, so that it never does more than a `try_send`), `server.rs` a
//! `system_status` every few seconds and an `addon_status` whenever the registry's set of loaded
//! addons changes. One task, the publisher, takes them in order, numbers them (`seq`, per node,
//! without holes), renders alert changes into the alerts as stored with one store read per
//! batch — and only while some client on this node listens — and broadcasts the events to the
//! local clients.
//!
//! Every event published on a node also takes the next number of that node's *stream* (its
//! `cursor`), whoever it came from, and the node keeps the latest ones (`[websocket]
//! resume_events`), so that a client that lost its connection can resume from the last cursor
//! it saw instead of re-reading every open alert ([`EventBus::replay`]).
//!
//! With PostgreSQL several nodes share a database, and a dashboard connected to any of them sees
//! every node's events: the publisher also sends each numbered item to the other nodes with
//! `NOTIFY` (alert changes as kind and id, so one payload carries hundreds of them and stays far
//! below PostgreSQL's 8000-byte limit, whatever the alerts' texts), and each node's listener
//! renders what the others sent for its own clients. A node ignores its own notifications: its
//! local bus already has them. Because sequence numbers have no holes, a receiver that sees one
//! skipped knows notifications were lost.
//!
//! **Nothing here waits for a client.** The local bus is a `tokio::sync::broadcast` ring: a
//! client that falls more than its capacity behind is told it lagged and is dropped. When the
//! publisher itself cannot keep up, the writer's hand-over fails instead of blocking; the loss is
//! counted and every client is told it missed events (a *gap*), since only a resynchronisation
//! (re-reading the alert list) can repair that.
//!
//! `event.rs` is what travels (event types, bodies, their JSON), `history.rs` the latest items
//! kept for resuming clients, `publisher.rs` the task that numbers and delivers, `cluster.rs`
//! the `NOTIFY` envelopes and the listener for other nodes.

mod cluster;
mod event;
mod history;
mod publisher;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

pub use cluster::MAX_NOTIFY_PAYLOAD;
use cluster::listen_loop;
/// A stored alert, for the tests of whatever carries alerts.
#[cfg(test)]
pub(crate) use event::tests::alert as test_alert;
pub use event::{
    AddonState, AddonStatus, AlertChangeKind, BusItem, ChangedAlert, Event, EventBody, EventType,
};
use history::History;
pub use history::Replay;
use publisher::publish_loop;

use crate::alert::ActionOutcome;
use crate::store::{Store, StoreError};

/// Settings of the bus.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// This node's name in events.
    pub node: String,
    /// How far (in events) a client may fall behind before it is dropped; rounded up to a power
    /// of two. It must exceed the largest batch the writer commits, or a client that keeps up
    /// would be dropped by a single large batch arriving at once.
    pub client_queue: usize,
    /// Batches waiting for the publisher before further ones are dropped (and reported as a
    /// gap).
    pub publisher_queue: usize,
    /// How often clients are pinged (a client policy like `client_queue`, kept here so that
    /// the WebSocket needs nothing but the bus).
    pub heartbeat: Duration,
    /// How many of the latest events are kept for clients that resume after a reconnect, and
    /// how many bytes of JSON they may take at most (alerts carry their fields and message).
    pub resume_events: usize,
    pub resume_bytes: usize,
    /// How long after the last client left events are still rendered and kept, so that it can
    /// resume.
    pub resume_grace: Duration,
}

/// Counters of the bus, cumulative except `clients`.
#[derive(
    schemars::JsonSchema, Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize,
)]
pub struct BusStats {
    /// WebSocket clients connected now.
    pub clients: usize,
    /// Events published to this node's clients (its own and other nodes').
    pub published: u64,
    /// Alert changes the writer could not hand over because the publisher was behind.
    pub dropped: u64,
    /// Times clients were told they missed events they did not fall behind on themselves.
    pub gaps: u64,
    /// Clients dropped because they fell more than their queue behind.
    pub clients_lagged: u64,
    /// Clients dropped because they did not answer a heartbeat.
    pub clients_timed_out: u64,
    /// Notifications received from other nodes.
    pub notifications_received: u64,
    /// Notifications that could not be sent to other nodes.
    pub notify_failures: u64,
}

#[derive(Default)]
struct Counters {
    clients: AtomicUsize,
    published: AtomicU64,
    dropped: AtomicU64,
    gaps: AtomicU64,
    clients_lagged: AtomicU64,
    clients_timed_out: AtomicU64,
    notifications_received: AtomicU64,
    notify_failures: AtomicU64,
}

/// An item on its way to the publisher.
enum Job {
    Changes(Vec<ChangedAlert>),
    Event(EventType, EventBody),
}

impl Job {
    fn len(&self) -> usize {
        match self {
            Job::Changes(changes) => changes.len(),
            Job::Event(..) => 1,
        }
    }
}

/// A numbered item as it travels between nodes: an alert change by id (rendered by whoever
/// has clients), or a whole event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Item {
    Change(AlertChangeKind, i64),
    Event {
        #[serde(rename = "type")]
        event_type: EventType,
        #[serde(flatten)]
        body: EventBody,
    },
}

/// Items rendered and published at a time: one store read covers this many alert changes.
/// Never more than a quarter of a client's queue, since a chunk reaches clients all at once.
const PUBLISH_CHUNK: usize = 1_000;

/// The shared handle on the bus; cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job>,
}

/// What the publisher, the listener and clients share. (The publisher holds this, not an
/// `EventBus`, so that it does not keep its own queue open.)
struct Shared {
    node: Arc<str>,
    instance: u64,
    /// Whether other nodes may exist (PostgreSQL): items are then sent to them even when no
    /// client listens here.
    cluster: bool,
    local: broadcast::Sender<BusItem>,
    client_queue: usize,
    heartbeat: Duration,
    /// Bumped after each publication, so that a client stuck sending can check how far behind
    /// it is without receiving.
    published: watch::Sender<u64>,
    /// Items the writer could not hand over since the publisher last looked.
    lost: AtomicU64,
    counters: Counters,
    /// This node's latest `system_status`, sent to a client as soon as it subscribes to them.
    last_status: Mutex<Option<Arc<Event>>>,
    /// This node's stream: the next cursor and the latest items, for resuming clients. Taken
    /// for each publication, so that cursors follow the order of the broadcast.
    history: Mutex<History>,
    /// The stream ends in a gap for items nobody here rendered (see [`Shared::unwatched`]).
    unwatched: std::sync::atomic::AtomicBool,
    /// When the last client left, in ms since `started` ([`NEVER`] before any did): events
    /// are still rendered for `resume_grace_ms` after it, so that a client whose connection
    /// broke can resume rather than re-read everything.
    last_client_left_ms: AtomicU64,
    started: std::time::Instant,
    resume_grace_ms: u64,
    shutdown: watch::Receiver<bool>,
}

impl EventBus {
    /// Starts the publisher and, on PostgreSQL, the listener for other nodes' events. Both end
    /// when `shutdown` turns true.
    pub async fn start(
        store: Store,
        config: BusConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(EventBus, Vec<JoinHandle<()>>), StoreError> {
        let listener = store.listen_events().await?;
        let (jobs, job_rx) = mpsc::channel(config.publisher_queue.max(1));
        let client_queue = config.client_queue.clamp(16, 1 << 20).next_power_of_two();
        let (local, _) = broadcast::channel(client_queue);
        let shared = Arc::new(Shared {
            node: config.node.into(),
            instance: random_instance(),
            cluster: listener.is_some(),
            local,
            client_queue,
            heartbeat: config.heartbeat,
            published: watch::Sender::new(0),
            lost: AtomicU64::new(0),
            counters: Counters::default(),
            last_status: Mutex::new(None),
            history: Mutex::new(History {
                next: 1,
                items: std::collections::VecDeque::new(),
                bytes: 0,
                max_items: config.resume_events,
                max_bytes: config.resume_bytes,
            }),
            unwatched: std::sync::atomic::AtomicBool::new(false),
            last_client_left_ms: AtomicU64::new(NEVER),
            started: std::time::Instant::now(),
            resume_grace_ms: config.resume_grace.as_millis() as u64,
            shutdown: shutdown.clone(),
        });
        let mut tasks = vec![tokio::spawn(publish_loop(
            shared.clone(),
            store.clone(),
            job_rx,
            shutdown.clone(),
        ))];
        if let Some(listener) = listener {
            tasks.push(tokio::spawn(listen_loop(
                shared.clone(),
                store,
                listener,
                shutdown,
            )));
        }
        Ok((EventBus { shared, jobs }, tasks))
    }

    pub fn node(&self) -> &str {
        &self.shared.node
    }

    /// The name of this node's event stream, different at every start: a cursor means something
    /// only in the stream it came from.
    pub fn stream(&self) -> String {
        format!("{:016x}", self.shared.instance)
    }

    /// The cursor of the last item published on this node so far (0 before the first).
    pub fn cursor(&self) -> u64 {
        self.shared.history.lock().expect("history lock").next - 1
    }

    /// The events published after cursor `after`, for a client that resumes: `None` when they
    /// cannot all be given — some are no longer held, events were lost among them (a gap), or
    /// `after` is not a cursor of this stream — and the client must re-read what it shows.
    pub fn replay(&self, after: u64) -> Option<Replay> {
        self.shared
            .history
            .lock()
            .expect("history lock")
            .replay(after)
    }

    /// How far a client may fall behind (events) before it is dropped.
    pub fn client_queue(&self) -> usize {
        self.shared.client_queue
    }

    /// How often clients are pinged.
    pub fn heartbeat(&self) -> Duration {
        self.shared.heartbeat
    }

    /// Reports what a committed batch did. Never waits: when the publisher is behind, the
    /// changes are dropped, counted, and reported to clients as a gap.
    pub fn alerts_changed(&self, outcomes: &[ActionOutcome]) {
        // Without clients here or nodes elsewhere nobody would see the events: skip even the
        // allocation, which matters on the ingest path.
        if !self.shared.cluster && !self.shared.watched() {
            self.shared.unwatched();
            return;
        }
        let changes: Vec<ChangedAlert> = outcomes
            .iter()
            .filter_map(ChangedAlert::from_outcome)
            .collect();
        self.submit(Job::Changes(changes));
    }

    /// Reports alert changes made outside the writer (e.g. an operator acknowledging an
    /// alert through the API).
    pub fn changed(&self, changes: Vec<ChangedAlert>) {
        self.submit(Job::Changes(changes));
    }

    /// Publishes an event that is not about an alert (`system_status`, `addon_status`).
    pub fn emit(&self, event_type: EventType, body: EventBody) {
        self.submit(Job::Event(event_type, body));
    }

    fn submit(&self, job: Job) {
        let n = job.len() as u64;
        if n == 0 {
            return;
        }
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.lost.fetch_add(n, Ordering::Relaxed);
                self.shared.counters.dropped.fetch_add(n, Ordering::Relaxed);
            }
            // The publisher has stopped: the server is shutting down, and clients with it.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// A receiver of everything published from now on, for one client.
    pub fn subscribe(&self) -> broadcast::Receiver<BusItem> {
        self.shared.local.subscribe()
    }

    /// Changes after every publication (see [`Shared::published`]).
    pub fn publications(&self) -> watch::Receiver<u64> {
        self.shared.published.subscribe()
    }

    /// Turns true when the server stops.
    pub fn shutdown(&self) -> watch::Receiver<bool> {
        self.shared.shutdown.clone()
    }

    /// This node's latest `system_status` event, if one was published yet.
    pub fn last_status(&self) -> Option<Arc<Event>> {
        self.shared.last_status.lock().expect("status lock").clone()
    }

    /// Counts a connected client until the guard drops.
    pub fn client_connected(&self) -> ClientGuard {
        self.shared.counters.clients.fetch_add(1, Ordering::Relaxed);
        ClientGuard(self.shared.clone())
    }

    /// Counts a client dropped for falling behind.
    pub(crate) fn client_lagged(&self) {
        let c = &self.shared.counters;
        c.clients_lagged.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a client dropped for not answering a heartbeat.
    pub(crate) fn client_timed_out(&self) {
        let c = &self.shared.counters;
        c.clients_timed_out.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> BusStats {
        let c = &self.shared.counters;
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BusStats {
            clients: c.clients.load(Ordering::Relaxed),
            published: g(&c.published),
            dropped: g(&c.dropped),
            gaps: g(&c.gaps),
            clients_lagged: g(&c.clients_lagged),
            clients_timed_out: g(&c.clients_timed_out),
            notifications_received: g(&c.notifications_received),
            notify_failures: g(&c.notify_failures),
        }
    }
}

/// Keeps a client counted in [`BusStats::clients`] while it lives.
pub struct ClientGuard(Arc<Shared>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.counters.clients.fetch_sub(1, Ordering::Relaxed);
        let now = self.0.started.elapsed().as_millis() as u64;
        self.0.last_client_left_ms.store(now, Ordering::Relaxed);
    }
}

/// [`Shared::last_client_left_ms`] before any client left.
const NEVER: u64 = u64::MAX;

fn random_instance() -> u64 {
    let mut bytes = [0u8; 8];
    // Only needs to differ between the nodes of one cluster; if the OS has no randomness to give,
    // the time still does that.
    if getrandom::fill(&mut bytes).is_err() {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
    }
    u64::from_le_bytes(bytes)
}

/// Resolves once `shutdown` is true (at once if it already is), or its sender is gone.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
