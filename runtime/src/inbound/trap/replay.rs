//! Keeps the receiver's replay state (snmp/replay.rs) in the database: this module owns that
//! I/O. At start the listener imports every remote engine's clock and every unexpired digest;
//! then, every [`SYNC_INTERVAL`], it records what changed here and, on PostgreSQL, imports what
//! other nodes recorded; at shutdown it records the rest.
//!
//! What this leaves open, by choice: a trap replayed to another node within about a second of
//! the original (before the two nodes have synchronised) is accepted there, and a crash loses
//! the digests of the last second — a replay of those right after the crash is accepted once.
//! Checking the database for every v3 trap would close both at the price of a write per trap.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tracing::warn;

use crate::snmp::Receiver;
use crate::store::{Store, StoreError};

/// How often a node records its changes and reads the others'.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// How often expired digests are deleted.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Clocks observed this long before the last read are read again: commits of other nodes may
/// carry a timestamp slightly before the moment of the read that missed them.
const CLOCK_READ_OVERLAP: chrono::Duration = chrono::Duration::seconds(10);

/// Where a node is in reading what the others record.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cursor {
    clocks_since: Option<DateTime<Utc>>,
    after_digest: i64,
}

/// Reads what the database holds into `receiver`.
pub async fn import(
    store: &Store,
    receiver: &Receiver,
    cursor: Cursor,
) -> Result<Cursor, StoreError> {
    let started = Utc::now();
    let read = store
        .snmp_replay_state(cursor.clocks_since, cursor.after_digest, Utc::now())
        .await?;
    receiver.import_replay_state(read.state);
    Ok(Cursor {
        clocks_since: Some(started - CLOCK_READ_OVERLAP),
        after_digest: read.last_digest_id,
    })
}

/// Records what changed in `receiver` since the last call. Changes that fail to be recorded
/// are not retried: the receiver still refuses those replays itself; only another node, or
/// this one after a restart, misses them.
pub async fn record(store: &Store, receiver: &Receiver) -> Result<(), StoreError> {
    store
        .snmp_record_replay(&receiver.take_replay_changes(), Utc::now())
        .await
}

/// Records and imports every [`SYNC_INTERVAL`] until `stop` changes, then records once more.
pub async fn sync(
    store: Store,
    receiver: Arc<Receiver>,
    mut cursor: Cursor,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(SYNC_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune = tokio::time::Instant::now();
    // Only a shared database has other nodes whose records to read; on SQLite, the one node
    // read its own at start.
    let shared = store.kind() == crate::store::DatabaseKind::Postgres;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        if let Err(error) = record(&store, &receiver).await {
            warn!(%error, "SNMPv3 replay state not recorded");
        }
        if shared {
            match import(&store, &receiver, cursor).await {
                Ok(next) => cursor = next,
                Err(error) => warn!(%error, "SNMPv3 replay state of other nodes not read"),
            }
        }
        if last_prune.elapsed() >= PRUNE_INTERVAL {
            last_prune = tokio::time::Instant::now();
            if let Err(error) = store.snmp_prune_replay(Utc::now()).await {
                warn!(%error, "expired SNMPv3 digests not deleted");
            }
        }
    }
    if let Err(error) = record(&store, &receiver).await {
        warn!(%error, "SNMPv3 replay state not recorded at shutdown");
    }
}
