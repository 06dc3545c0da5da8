//! The batching alert writer: one task owns the write path, gathers the actions of many
//! concurrent events and applies them in one transaction. Callers wait for the commit, so
//! "accepted" always means "durably stored".
//!
//! The writer also decides, per batch, which raises a silence covers ([`SilenceCache`]): from
//! the silences it holds in memory, refreshed when their generation in the store moves, so that
//! suppression costs no query per event.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::alert::{ActionOutcome, AlertAction};
use crate::bus::EventBus;
use crate::metrics::{Seconds, Sizes};
use crate::silence::{self, Silence};
use crate::store::{Store, StoreError};

/// Tuning for the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Actions per transaction. Larger batches amortise the commit (an fsync on SQLite) over
    /// more events; past a few thousand the gain is small and latency grows.
    pub max_batch_actions: usize,
    /// Jobs waiting for the writer. When full, callers wait (backpressure) rather than the
    /// queue growing without bound.
    pub queue_capacity: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_batch_actions: 2_000,
            queue_capacity: 10_000,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error("the alert store failed: {0}")]
    Store(String),
    #[error("the alert writer has stopped")]
    Stopped,
}

/// What the writer has done since it started.
#[derive(Debug, Default)]
struct WriterCounters {
    jobs: AtomicU64,
    actions: AtomicU64,
    transactions: AtomicU64,
    failed_jobs: AtomicU64,
    /// Alert actions per committed batch, and how long its transaction took.
    batch_actions: Sizes,
    commit_time: Seconds,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct WriterStats {
    /// Write requests (one per event) answered.
    pub jobs: u64,
    /// Alert actions committed.
    pub actions: u64,
    /// Transactions committed or attempted; `jobs / transactions` is the batching factor.
    pub transactions: u64,
    /// Write requests answered with an error.
    pub failed_jobs: u64,
}

struct WriteJob {
    actions: Vec<AlertAction>,
    reply: oneshot::Sender<Result<Vec<ActionOutcome>, WriteError>>,
}

/// A handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct AlertWriter {
    jobs: mpsc::Sender<WriteJob>,
    counters: Arc<WriterCounters>,
    silences: Arc<SilenceCache>,
}

impl AlertWriter {
    /// Starts the writer task. It ends once every handle is dropped and the queue is drained.
    pub fn spawn(store: Store, config: WriterConfig) -> (AlertWriter, tokio::task::JoinHandle<()>) {
        Self::start(store, config, None)
    }

    /// Like [`AlertWriter::spawn`], reporting what every committed batch did to `events`
    /// (without ever waiting for it).
    pub fn spawn_publishing(
        store: Store,
        config: WriterConfig,
        events: EventBus,
    ) -> (AlertWriter, tokio::task::JoinHandle<()>) {
        Self::start(store, config, Some(events))
    }

    fn start(
        store: Store,
        config: WriterConfig,
        events: Option<EventBus>,
    ) -> (AlertWriter, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let counters = Arc::new(WriterCounters::default());
        let counters_for_run = counters.clone();
        let silences = Arc::new(SilenceCache::new(store.clone()));
        // The watcher ends with the writer task: once every handle is dropped and the queue
        // is drained.
        let (drained, writer_done) = oneshot::channel::<()>();
        tokio::spawn(watch_silences(silences.clone(), async move {
            let _ = writer_done.await;
        }));
        let task = tokio::spawn({
            let silences = silences.clone();
            async move {
                run(store, rx, config, counters_for_run, silences, events).await;
                drop(drained);
            }
        });
        (
            AlertWriter {
                jobs: tx,
                counters,
                silences,
            },
            task,
        )
    }

    /// The silences this writer matches raises against. Whoever changes silences in this
    /// process reloads them here at once; changes made elsewhere arrive within
    /// [`SILENCE_POLL`].
    pub fn silences(&self) -> &SilenceCache {
        &self.silences
    }

    /// Write requests waiting for the writer task now.
    pub fn queue_depth(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
    }

    /// How many write requests may wait before callers are held up.
    pub fn queue_capacity(&self) -> usize {
        self.jobs.max_capacity()
    }

    pub fn stats(&self) -> WriterStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let c = &self.counters;
        WriterStats {
            jobs: g(&c.jobs),
            actions: g(&c.actions),
            transactions: g(&c.transactions),
            failed_jobs: g(&c.failed_jobs),
        }
    }

    /// Alert actions per committed batch (the batching factor, as a distribution).
    pub fn batch_sizes(&self) -> &Sizes {
        &self.counters.batch_actions
    }

    /// How long each committed batch's transaction took.
    pub fn commit_times(&self) -> &Seconds {
        &self.counters.commit_time
    }

    /// Applies `actions` atomically (all or none) and returns their outcomes in order, once
    /// committed.
    pub async fn write(&self, actions: Vec<AlertAction>) -> Result<Vec<ActionOutcome>, WriteError> {
        if actions.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(WriteJob { actions, reply })
            .await
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }
}

async fn run(
    store: Store,
    mut rx: mpsc::Receiver<WriteJob>,
    config: WriterConfig,
    counters: Arc<WriterCounters>,
    silences: Arc<SilenceCache>,
    events: Option<EventBus>,
) {
    // Before the first batch, so that no alert raised under a silence slips through at start.
    silences.reload_logged().await;
    let mut batch: Vec<WriteJob> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut size = first.actions.len();
        batch.push(first);
        // Take whatever else is already waiting, up to the batch size: under load the batch
        // fills by itself, and a lone event is written at once without waiting for company.
        while size < config.max_batch_actions {
            match rx.try_recv() {
                Ok(job) => {
                    size += job.actions.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        write_batch(&store, &mut batch, &counters, &silences, events.as_ref()).await;
    }
}

async fn write_batch(
    store: &Store,
    batch: &mut Vec<WriteJob>,
    counters: &WriterCounters,
    silences: &SilenceCache,
    events: Option<&EventBus>,
) {
    let all: Vec<AlertAction> = batch
        .iter()
        .flat_map(|j| j.actions.iter().cloned())
        .collect();
    // Which silence, if any, covers each raise; decided from memory, once per batch.
    let silenced = silences.silencing(&all);
    let started = std::time::Instant::now();
    counters.transactions.fetch_add(1, Ordering::Relaxed);
    // The store retries transient failures (a busy SQLite file, a PostgreSQL deadlock) itself;
    // what reaches here is a real failure of this batch.
    match store.apply_batch_silenced(&all, &silenced).await {
        Ok(outcomes) => {
            let elapsed = started.elapsed();
            counters.commit_time.observe(elapsed);
            counters.batch_actions.observe(all.len());
            debug!(
                jobs = batch.len(),
                actions = all.len(),
                ?elapsed,
                "batch committed"
            );
            if let Some(events) = events {
                events.alerts_changed(&outcomes);
            }
            counters
                .jobs
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            counters
                .actions
                .fetch_add(all.len() as u64, Ordering::Relaxed);
            let mut rest = outcomes.into_iter();
            for job in batch.drain(..) {
                let mine: Vec<_> = rest.by_ref().take(job.actions.len()).collect();
                let _ = job.reply.send(Ok(mine));
            }
        }
        Err(error) if batch.len() > 1 => {
            // One job's bad data must not fail its neighbours: retry each on its own.
            warn!(%error, jobs = batch.len(), "batch failed; retrying its jobs one by one");
            for job in batch.drain(..) {
                counters.transactions.fetch_add(1, Ordering::Relaxed);
                counters.jobs.fetch_add(1, Ordering::Relaxed);
                let silenced = silences.silencing(&job.actions);
                let result = store.apply_batch_silenced(&job.actions, &silenced).await;
                match &result {
                    Ok(_) => counters
                        .actions
                        .fetch_add(job.actions.len() as u64, Ordering::Relaxed),
                    Err(error) => {
                        warn!(%error, "alert write failed");
                        counters.failed_jobs.fetch_add(1, Ordering::Relaxed)
                    }
                };
                if let (Some(events), Ok(outcomes)) = (events, &result) {
                    events.alerts_changed(outcomes);
                }
                let _ = job
                    .reply
                    .send(result.map_err(|e| WriteError::Store(e.to_string())));
            }
        }
        Err(error) => {
            warn!(%error, "alert write failed");
            counters.jobs.fetch_add(1, Ordering::Relaxed);
            counters.failed_jobs.fetch_add(1, Ordering::Relaxed);
            for job in batch.drain(..) {
                let _ = job.reply.send(Err(WriteError::Store(error.to_string())));
            }
        }
    }
}

/// How often the writer checks whether silences changed elsewhere (another node, the CLI).
/// Changes made through this process's API take effect at once (they reload the cache), so this
/// only bounds how late another node's change is seen; the check reads one setting.
pub const SILENCE_POLL: Duration = Duration::from_secs(1);

/// The silences not yet ended, as of the last reload, with the store generation they reflect.
#[derive(Default)]
struct LoadedSilences {
    generation: i64,
    silences: Vec<Silence>,
}

/// The silences the writer matches raises against, held in memory and swapped whole on reload,
/// so that matching never waits for a query or a lock. A silence that ends simply stops being
/// in force (the engine compares times); only creations, changes and deletions need a reload.
pub struct SilenceCache {
    store: Store,
    current: ArcSwap<LoadedSilences>,
    /// Serialises reloads, so that an older read never replaces a newer one.
    reload_lock: tokio::sync::Mutex<()>,
}

impl SilenceCache {
    fn new(store: Store) -> SilenceCache {
        SilenceCache {
            store,
            current: ArcSwap::from_pointee(LoadedSilences {
                generation: -1,
                silences: Vec::new(),
            }),
            reload_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Reads the silences not yet ended from the store and swaps them in.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let _guard = self.reload_lock.lock().await;
        // The generation first: a change committed between the two reads is then in the list
        // and also moves the generation past what is recorded, which costs one extra reload
        // rather than a missed change.
        let generation = self.store.silences_generation().await?;
        let silences = self.store.silences_ending_after(chrono::Utc::now()).await?;
        let changed = self.current.load().generation != generation;
        if changed {
            info!(generation, silences = silences.len(), "silences loaded");
        }
        self.current.store(Arc::new(LoadedSilences {
            generation,
            silences,
        }));
        Ok(())
    }

    /// [`SilenceCache::reload`], logging a failure: the previous silences stay in use and the
    /// next check retries.
    pub async fn reload_logged(&self) {
        if let Err(error) = self.reload().await {
            warn!(%error, "silences not reloaded; matching against the previous ones");
        }
    }

    /// The silences held now, oldest first.
    pub fn current(&self) -> Vec<Silence> {
        self.current.load().silences.clone()
    }

    /// For each action, the silence that covers it: a raise at its receipt time, by the engine's
    /// rules; never a clear.
    pub fn silencing(&self, actions: &[AlertAction]) -> Vec<Option<i64>> {
        let loaded = self.current.load();
        actions
            .iter()
            .map(|action| match action {
                AlertAction::Raise(alert) if !loaded.silences.is_empty() => {
                    silence::silencing(alert, &loaded.silences, alert.received_at)
                }
                _ => None,
            })
            .collect()
    }
}

/// Reloads the writer's silences whenever their generation moves, until `stop` completes.
async fn watch_silences(silences: Arc<SilenceCache>, stop: impl Future<Output = ()>) {
    crate::generation::follow(
        "silences",
        SILENCE_POLL,
        stop,
        || silences.current.load().generation,
        || silences.store.silences_generation(),
        |_| silences.reload(),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Utc;

    use super::*;
    use crate::alert::{NewAlert, Severity};

    fn raise(addon: &str, fingerprint: &str) -> AlertAction {
        let now = Utc::now();
        AlertAction::Raise(NewAlert {
            addon_id: addon.into(),
            fingerprint: fingerprint.into(),
            alert_type: "t".into(),
            device_ip: Some("192.0.2.1".into()),
            device_name: None,
            severity: Severity::Minor,
            category: "test".into(),
            title: "t".into(),
            message: String::new(),
            fields: BTreeMap::new(),
            occurred_at: now,
            received_at: now,
        })
    }

    async fn store_with_addon() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(
            &crate::testing::sqlite_url(dir.path()).await,
            crate::testing::secret_keys(),
        )
        .await
        .unwrap();
        crate::testing::record_bare_addon(&store, "a").await;
        (dir, store)
    }

    /// Queues jobs before the writer runs, so that what it finds waiting is deterministic.
    async fn run_queued(
        store: &Store,
        jobs: Vec<Vec<AlertAction>>,
        max_batch_actions: usize,
    ) -> (Vec<Result<Vec<ActionOutcome>, WriteError>>, WriterStats) {
        let (tx, rx) = mpsc::channel(jobs.len());
        let mut answers = Vec::new();
        for actions in jobs {
            let (reply, answer) = oneshot::channel();
            tx.send(WriteJob { actions, reply }).await.unwrap();
            answers.push(answer);
        }
        drop(tx);
        let counters = Arc::new(WriterCounters::default());
        let config = WriterConfig {
            max_batch_actions,
            queue_capacity: 1,
        };
        let silences = Arc::new(SilenceCache::new(store.clone()));
        run(
            store.clone(),
            rx,
            config,
            counters.clone(),
            silences.clone(),
            None,
        )
        .await;
        let writer = AlertWriter {
            jobs: mpsc::channel(1).0,
            counters,
            silences,
        };
        let mut results = Vec::new();
        for a in answers {
            results.push(a.await.unwrap());
        }
        (results, writer.stats())
    }

    #[tokio::test]
    async fn waiting_jobs_share_one_transaction_up_to_the_batch_size() {
        let (_dir, store) = store_with_addon().await;
        let jobs: Vec<_> = (0..100)
            .map(|i| vec![raise("a", &format!("fp{i}"))])
            .collect();
        let (results, stats) = run_queued(&store, jobs, 40).await;
        assert!(
            results
                .iter()
                .all(|r| matches!(r.as_deref(), Ok([ActionOutcome::Created { .. }])))
        );
        assert_eq!(
            stats,
            WriterStats {
                jobs: 100,
                actions: 100,
                transactions: 3,
                failed_jobs: 0
            }
        );
    }

    #[tokio::test]
    async fn a_bad_job_fails_alone() {
        let (_dir, store) = store_with_addon().await;
        // An alert of an addon that is not installed breaks the foreign key.
        let jobs = vec![
            vec![raise("a", "x"), raise("a", "x")],
            vec![raise("ghost", "y")],
            vec![raise("a", "z")],
        ];
        let (results, stats) = run_queued(&store, jobs, 100).await;
        assert!(matches!(
            results[0].as_deref(),
            Ok([
                ActionOutcome::Created { .. },
                ActionOutcome::Updated {
                    occurrence_count: 2,
                    ..
                }
            ])
        ));
        assert!(matches!(results[1], Err(WriteError::Store(_))));
        assert!(matches!(
            results[2].as_deref(),
            Ok([ActionOutcome::Created { .. }])
        ));
        assert_eq!((stats.jobs, stats.failed_jobs, stats.actions), (3, 1, 3));
        assert_eq!(stats.transactions, 4, "one failed batch, then one per job");
    }

    #[tokio::test]
    async fn raises_under_a_silence_are_written_suppressed_in_batches_and_retries() {
        use crate::alert::AlertStatus;
        use crate::silence::{SilenceMatchers, SilenceSpec};

        let (_dir, store) = store_with_addon().await;
        let now = Utc::now();
        let silence = store
            .create_silence(
                SilenceSpec {
                    matchers: SilenceMatchers {
                        addon: Some("a".into()),
                        ..SilenceMatchers::default()
                    },
                    starts_at: now - chrono::Duration::minutes(1),
                    ends_at: now + chrono::Duration::hours(1),
                    recurrence: None,
                    comment: "test".into(),
                },
                "test",
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        let status = async |outcome: &ActionOutcome| {
            let ActionOutcome::Created { alert_id } = outcome else {
                panic!("expected a created alert, got {outcome:?}");
            };
            store.get_alert(*alert_id).await.unwrap().unwrap().status
        };
        // One batch that commits, then one that fails and is retried job by job: both paths
        // match against the silences the writer loaded when it started.
        let (results, _) = run_queued(&store, vec![vec![raise("a", "x")]], 100).await;
        assert_eq!(
            status(&results[0].as_ref().unwrap()[0]).await,
            AlertStatus::Suppressed
        );
        let jobs = vec![vec![raise("a", "y")], vec![raise("ghost", "z")]];
        let (results, stats) = run_queued(&store, jobs, 100).await;
        assert_eq!(stats.transactions, 3, "one failed batch, then one per job");
        assert_eq!(
            status(&results[0].as_ref().unwrap()[0]).await,
            AlertStatus::Suppressed
        );

        store
            .delete_silence(silence.id, chrono::Utc::now())
            .await
            .unwrap();
        let (results, _) = run_queued(&store, vec![vec![raise("a", "w")]], 100).await;
        assert_eq!(
            status(&results[0].as_ref().unwrap()[0]).await,
            AlertStatus::Active
        );
    }
}
