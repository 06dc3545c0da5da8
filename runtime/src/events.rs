//! The event bus: what changed, for whoever follows live (the WebSocket at `/ws`, see
//! [`crate::api::ws`]).
//!
//! Sources hand the bus *items*: the batching writer the alert changes of each committed batch
//! (kind and id only, so that it never does more than a `try_send`), [`sources`] a
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

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::alert::{ActionOutcome, StoredAlert, UnknownVariant};
use crate::store::{EventListener, Store, StoreError};

/// What a client can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// An alert was opened (not when it opened suppressed by a silence).
    AlertCreated,
    /// An open alert occurred again (or changed otherwise).
    AlertUpdated,
    AlertResolved,
    /// A node's counters, periodically.
    SystemStatus,
    /// An addon was loaded, disabled, failed to load or was removed on a node.
    AddonStatus,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::AlertCreated,
        EventType::AlertUpdated,
        EventType::AlertResolved,
        EventType::SystemStatus,
        EventType::AddonStatus,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::AlertCreated => "alert_created",
            EventType::AlertUpdated => "alert_updated",
            EventType::AlertResolved => "alert_resolved",
            EventType::SystemStatus => "system_status",
            EventType::AddonStatus => "addon_status",
        }
    }

    /// Position in [`EventType::ALL`], for per-type tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownVariant {
                what: "event type",
                value: s.to_owned(),
                expected: EventType::ALL.map(EventType::as_str).join(", "),
            })
    }
}

/// What the store did to an alert, as the writer (or an API action) reports it to the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertChangeKind {
    Created,
    Updated,
    Resolved,
}

impl AlertChangeKind {
    pub fn event_type(self) -> EventType {
        match self {
            AlertChangeKind::Created => EventType::AlertCreated,
            AlertChangeKind::Updated => EventType::AlertUpdated,
            AlertChangeKind::Resolved => EventType::AlertResolved,
        }
    }
}

/// One alert changed: which and how. The event shows the alert as the store has it when the
/// event is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChangedAlert {
    pub kind: AlertChangeKind,
    pub alert_id: i64,
}

impl ChangedAlert {
    /// The change a stored outcome stands for; none for a clear that matched nothing.
    pub fn from_outcome(outcome: &ActionOutcome) -> Option<ChangedAlert> {
        let (kind, alert_id) = match *outcome {
            ActionOutcome::Created { alert_id } => (AlertChangeKind::Created, alert_id),
            ActionOutcome::Updated { alert_id, .. } => (AlertChangeKind::Updated, alert_id),
            ActionOutcome::Resolved { alert_id } => (AlertChangeKind::Resolved, alert_id),
            ActionOutcome::ClearUnmatched => return None,
        };
        Some(ChangedAlert { kind, alert_id })
    }
}

/// What became of an addon on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddonState {
    /// Loaded (newly enabled, installed, or upgraded and reloaded) and taking events.
    Loaded,
    /// Disabled: no longer taking events.
    Disabled,
    /// Enabled, but this node could not load it (the node's log says why).
    Failed,
    /// No longer installed.
    Removed,
}

/// The body of an `addon_status` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonStatus {
    pub id: String,
    pub status: AddonState,
    /// The version now loaded (for `loaded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// What an event carries besides its type, node and number; its JSON key names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventBody {
    /// The alert as stored when the event was rendered. Boxed: by far the largest body, and
    /// events are moved around a lot.
    #[serde(rename = "alert")]
    Alert(Box<StoredAlert>),
    #[serde(rename = "addon")]
    Addon(AddonStatus),
    /// A node's counters ([`crate::server::sources::SystemStatus`]), kept as JSON because a node passes on
    /// other nodes' status without interpreting it.
    #[serde(rename = "status")]
    System(serde_json::Value),
}

/// One event as clients receive it:
/// `{"type": "alert_created", "node": "...", "seq": 17, "cursor": 1042, "alert": {...}}`.
/// Serialised once, when published, and shared by every client.
#[derive(Debug)]
pub struct Event {
    pub event_type: EventType,
    /// The node where it happened.
    pub node: Arc<str>,
    /// Numbered per node in the order things happened there. Gaps are normal for one client
    /// (events it did not subscribe to, alerts opened suppressed); `lagged` is what tells a client
    /// it missed something.
    pub seq: u64,
    /// Its position in the stream of the node publishing it to its clients (see
    /// [`EventBus::replay`]).
    pub cursor: u64,
    pub body: EventBody,
    text: Utf8Bytes,
}

#[derive(Serialize)]
struct EventJson<'a> {
    #[serde(rename = "type")]
    event_type: EventType,
    node: &'a str,
    seq: u64,
    cursor: u64,
    #[serde(flatten)]
    body: &'a EventBody,
}

impl Event {
    pub fn new(
        event_type: EventType,
        node: Arc<str>,
        seq: u64,
        cursor: u64,
        body: EventBody,
    ) -> Event {
        let text = serde_json::to_string(&EventJson {
            event_type,
            node: &node,
            seq,
            cursor,
            body: &body,
        })
        .expect("events serialise");
        Event {
            event_type,
            node,
            seq,
            cursor,
            body,
            text: text.into(),
        }
    }

    /// The JSON text clients receive (cheap to clone: shared).
    pub fn text(&self) -> Utf8Bytes {
        self.text.clone()
    }

    pub fn alert(&self) -> Option<&StoredAlert> {
        match &self.body {
            EventBody::Alert(alert) => Some(alert),
            _ => None,
        }
    }

    /// The addon the event is about: the alert's or the addon's own.
    pub fn addon_id(&self) -> Option<&str> {
        match &self.body {
            EventBody::Alert(alert) => Some(&alert.addon_id),
            EventBody::Addon(addon) => Some(&addon.id),
            EventBody::System(_) => None,
        }
    }
}

/// What local clients receive from the bus.
#[derive(Debug, Clone)]
pub enum BusItem {
    Event(Arc<Event>),
    /// Events were lost before reaching the bus (the publisher fell behind, a store read failed,
    /// notifications from other nodes went missing): every client must resynchronise. It takes
    /// a place in the stream, so that no resumption reaches across it.
    Gap {
        cursor: u64,
    },
}

impl BusItem {
    /// Its position in this node's stream.
    pub fn cursor(&self) -> u64 {
        match self {
            BusItem::Event(event) => event.cursor,
            BusItem::Gap { cursor } => *cursor,
        }
    }
}

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

/// One `NOTIFY` payload: consecutive items of one node, the first numbered `seq`.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// Format version; a node ignores (and logs) envelopes of a version it does not know, so a
    /// cluster can be upgraded one node at a time.
    v: u32,
    /// The sending bus instance (random per start): how a node recognises its own.
    from: u64,
    node: String,
    seq: u64,
    items: Vec<Item>,
}

const ENVELOPE_VERSION: u32 = 1;

/// PostgreSQL refuses `NOTIFY` payloads of 8000 bytes or more; stay clear of it.
pub const MAX_NOTIFY_PAYLOAD: usize = 7_900;

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

/// The latest items of a node's stream.
struct History {
    /// The cursor of the next item; cursors start at 1.
    next: u64,
    items: std::collections::VecDeque<BusItem>,
    /// Bytes of event text held.
    bytes: usize,
    max_items: usize,
    max_bytes: usize,
}

impl History {
    fn push(&mut self, item: BusItem) {
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
    fn replay(&self, after: u64) -> Option<Replay> {
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

fn item_bytes(item: &BusItem) -> usize {
    match item {
        BusItem::Event(event) => event.text.len(),
        BusItem::Gap { .. } => 0,
    }
}

/// What [`EventBus::replay`] gives a resuming client.
#[derive(Debug)]
pub struct Replay {
    /// The events after the client's cursor, in order.
    pub events: Vec<Arc<Event>>,
    /// The cursor of the last item published so far: the live feed continues after it.
    pub through: u64,
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

impl Shared {
    /// Whether events must be rendered: a client listens here, or one left recently enough
    /// that it may come back and resume (`resume_grace`).
    fn watched(&self) -> bool {
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
    fn publish(&self, event_type: EventType, node: &Arc<str>, seq: u64, body: EventBody) {
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

    fn publish_gap(&self) {
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
    fn unwatched(&self) {
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

    fn wake_clients(&self) {
        self.published.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Renders `items` (numbered from `first_seq`, from `node`) and publishes them to local
    /// clients, in order. Alert changes become the alert as the store has it now; one whose
    /// alert no longer exists (deleted by retention since) is skipped. An alert that opened or
    /// occurred while suppressed (by a silence) is published too, but reaches only clients that
    /// ask for suppressed alerts (see [`crate::api::ws`]).
    async fn deliver(&self, store: &Store, node: &Arc<str>, first_seq: u64, items: Vec<Item>) {
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

/// Packs items numbered from `first_seq` into `NOTIFY` payloads of at most
/// [`MAX_NOTIFY_PAYLOAD`] bytes. An item that cannot fit even alone (none of ours comes close)
/// is left out with a warning; receivers see the hole in the numbering as a gap.
fn envelopes(from: u64, node: &str, first_seq: u64, items: &[Item]) -> Vec<String> {
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

async fn publish_loop(
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

/// Receives other nodes' items and delivers them to this node's clients.
async fn listen_loop(
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

/// Resolves once `shutdown` is true (at once if it already is), or its sender is gone.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    fn alert(id: i64) -> StoredAlert {
        StoredAlert {
            id,
            addon_id: "alertmanager".into(),
            fingerprint: "fp".into(),
            alert_type: "NodeDown".into(),
            device_ip: Some("10.0.0.1".into()),
            device_name: None,
            severity: crate::alert::Severity::Critical,
            category: "application".into(),
            title: "node down".into(),
            message: "node-exporter is down".into(),
            status: crate::alert::AlertStatus::Active,
            fields: [("job".to_owned(), "node".to_owned())].into(),
            occurrence_count: 1,
            occurred_at: DateTime::UNIX_EPOCH,
            first_seen_at: DateTime::UNIX_EPOCH,
            last_seen_at: DateTime::UNIX_EPOCH,
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolved_by: None,
        }
    }

    #[test]
    fn event_json_has_type_node_seq_and_body() {
        let event = Event::new(
            EventType::AlertCreated,
            "n1".into(),
            7,
            70,
            EventBody::Alert(Box::new(alert(42))),
        );
        let json: serde_json::Value = serde_json::from_str(&event.text()).unwrap();
        assert_eq!(json["type"], "alert_created");
        assert_eq!(json["node"], "n1");
        assert_eq!(json["seq"], 7);
        assert_eq!(json["alert"]["id"], 42);
        assert_eq!(json["alert"]["severity"], "critical");
        assert_eq!(json["alert"]["status"], "active");
        assert_eq!(json["alert"]["device_ip"], "10.0.0.1");
        assert_eq!(json["cursor"], 70);
        // The whole alert: a console filters on its message and fields too.
        assert_eq!(json["alert"]["message"], "node-exporter is down");
        assert_eq!(json["alert"]["fields"]["job"], "node");

        let event = Event::new(
            EventType::AddonStatus,
            "n1".into(),
            8,
            71,
            EventBody::Addon(AddonStatus {
                id: "grafana".into(),
                status: AddonState::Disabled,
                version: None,
            }),
        );
        let json: serde_json::Value = serde_json::from_str(&event.text()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "addon_status", "node": "n1", "seq": 8, "cursor": 71,
                "addon": {"id": "grafana", "status": "disabled"}})
        );
    }

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
        let one = Event::new(
            EventType::AlertUpdated,
            "n1".into(),
            1,
            1,
            EventBody::Alert(Box::new(alert(1))),
        )
        .text()
        .len();
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

    #[test]
    fn event_types_parse_and_name_the_unknown() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
            assert_eq!(EventType::ALL[t.index()], t);
        }
        let error = "alert_deleted"
            .parse::<EventType>()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("alert_deleted") && error.contains("alert_created"),
            "{error}"
        );
    }

    #[test]
    fn outcomes_become_changes() {
        let outcomes = [
            ActionOutcome::Created { alert_id: 1 },
            ActionOutcome::Updated {
                alert_id: 2,
                occurrence_count: 3,
            },
            ActionOutcome::Resolved { alert_id: 3 },
            ActionOutcome::ClearUnmatched,
        ];
        let changes: Vec<_> = outcomes
            .iter()
            .filter_map(ChangedAlert::from_outcome)
            .collect();
        assert_eq!(
            changes,
            [
                ChangedAlert {
                    kind: AlertChangeKind::Created,
                    alert_id: 1
                },
                ChangedAlert {
                    kind: AlertChangeKind::Updated,
                    alert_id: 2
                },
                ChangedAlert {
                    kind: AlertChangeKind::Resolved,
                    alert_id: 3
                },
            ]
        );
    }

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
