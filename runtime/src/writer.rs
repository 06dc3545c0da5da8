//! The batching alert writer: one task owns the write path, gathers the actions of many
//! concurrent events and applies them in one transaction. Callers wait for the commit, so
//! "accepted" always means "durably stored".

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::alert::{ActionOutcome, AlertAction};
use crate::store::Store;

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

struct WriteJob {
    actions: Vec<AlertAction>,
    reply: oneshot::Sender<Result<Vec<ActionOutcome>, WriteError>>,
}

/// A handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct AlertWriter {
    jobs: mpsc::Sender<WriteJob>,
}

impl AlertWriter {
    /// Starts the writer task. It ends once every handle is dropped and the queue is drained.
    pub fn spawn(store: Store, config: WriterConfig) -> (AlertWriter, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let task = tokio::spawn(run(store, rx, config));
        (AlertWriter { jobs: tx }, task)
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

async fn run(store: Store, mut rx: mpsc::Receiver<WriteJob>, config: WriterConfig) {
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
        write_batch(&store, &mut batch).await;
    }
}

async fn write_batch(store: &Store, batch: &mut Vec<WriteJob>) {
    let all: Vec<AlertAction> = batch
        .iter()
        .flat_map(|j| j.actions.iter().cloned())
        .collect();
    let started = std::time::Instant::now();
    match apply_with_retry(store, &all).await {
        Ok(outcomes) => {
            debug!(jobs = batch.len(), actions = all.len(), elapsed = ?started.elapsed(), "batch committed");
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
                let result = apply_with_retry(store, &job.actions).await;
                let _ = job.reply.send(result);
            }
        }
        Err(error) => {
            warn!(%error, "alert write failed");
            for job in batch.drain(..) {
                let _ = job.reply.send(Err(error.clone()));
            }
        }
    }
}

/// Transient failures (a busy SQLite file, a dropped PostgreSQL connection) are retried a few
/// times with a short backoff before the callers are told.
async fn apply_with_retry(
    store: &Store,
    actions: &[AlertAction],
) -> Result<Vec<ActionOutcome>, WriteError> {
    const ATTEMPTS: u32 = 3;
    let mut attempt = 1;
    loop {
        match store.apply_batch(actions).await {
            Ok(outcomes) => return Ok(outcomes),
            Err(error) if attempt < ATTEMPTS => {
                warn!(%error, attempt, "alert batch failed; retrying");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(error) => return Err(WriteError::Store(error.to_string())),
        }
    }
}
