//! Scheduling state: leasing due polls and maintenance jobs to a node, recording their
//! outcome, pinned SSH host keys, and the maintenance jobs' own SQL (expiry, retention).
//!
//! A claim is one statement that leases rows whose time has come and whose previous lease (if
//! any) has expired. The lease, not the due time, is what keeps two nodes from running the same
//! poll: `next_due_at` moves on only when the poll finishes, so a node that dies mid-poll leaves
//! the target due, and once its lease runs out another node polls it.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Context, Store, StoreError, begin_write, claim_targets_sql, ts};

macro_rules! claim_targets_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE targets SET lease_owner = $1, lease_until = $2 \
             WHERE id IN (SELECT id FROM targets \
                          WHERE enabled AND next_due_at <= $3 \
                            AND (lease_until IS NULL OR lease_until < $3) \
                          ORDER BY next_due_at LIMIT $4",
            $lock,
            ") RETURNING id, next_due_at"
        )
    };
}

pub(super) const CLAIM_TARGETS_SQLITE: &str = claim_targets_sql!("");
pub(super) const CLAIM_TARGETS_POSTGRES: &str = claim_targets_sql!(" FOR UPDATE SKIP LOCKED");

/// A poll leased to this node: the target's id and the due time it was claimed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimedPoll {
    pub target_id: i64,
    pub due_at: DateTime<Utc>,
}

/// How a poll ended, as recorded on its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollRecord {
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    /// `ok`, `unreachable`, `failed` or `host_key_mismatch`.
    pub status: &'static str,
    pub error: Option<String>,
    pub next_due_at: DateTime<Utc>,
}

impl PollRecord {
    pub fn succeeded(&self) -> bool {
        self.status == "ok"
    }
}

/// An SSH host key pinned on first use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct PinnedHostKey {
    /// `host:port`.
    pub endpoint: String,
    pub key_type: String,
    /// OpenSSH one-line form.
    pub public_key: String,
    /// `SHA256:…`.
    pub fingerprint: String,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    ts(now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::hours(1)))
}

impl Store {
    /// Leases up to `limit` due targets to `node` until `now + lease`, oldest due first.
    pub async fn claim_due_targets(
        &self,
        node: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<ClaimedPoll>, StoreError> {
        const OP: &str = "claiming due polls";
        let now = ts(now);
        let until = lease_end(now, lease);
        let rows: Vec<(i64, DateTime<Utc>)> = with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let rows = sqlx::query_as(claim_targets_sql(pool))
                .bind(node)
                .bind(until)
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await
                .context(OP)?;
            tx.commit().await.context(OP)?;
            rows
        });
        let mut claimed: Vec<ClaimedPoll> = rows
            .into_iter()
            .map(|(target_id, due_at)| ClaimedPoll { target_id, due_at })
            .collect();
        claimed.sort_by_key(|c| c.due_at);
        Ok(claimed)
    }

    /// Records a finished poll and releases its lease, if `node` still holds it. Returns false
    /// when the lease was lost (it expired and another node took the poll over): then nothing
    /// is recorded, because the other node's outcome is the one that counts.
    pub async fn finish_poll(
        &self,
        target_id: i64,
        node: &str,
        record: &PollRecord,
    ) -> Result<bool, StoreError> {
        const OP: &str = "recording a poll";
        let ok = record.succeeded();
        let updated = with_pool!(self, write, |pool| {
            sqlx::query(
                "UPDATE targets SET lease_owner = NULL, lease_until = NULL, next_due_at = $3, \
                     last_poll_at = $4, last_poll_status = $5, last_poll_duration_ms = $6, \
                     last_poll_error = $7, \
                     last_success_at = CASE WHEN $8 THEN $4 ELSE last_success_at END, \
                     polls_total = polls_total + 1, \
                     poll_failures = poll_failures + CASE WHEN $8 THEN 0 ELSE 1 END \
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(target_id)
            .bind(node)
            .bind(ts(record.next_due_at))
            .bind(ts(record.started_at))
            .bind(record.status)
            .bind(record.duration_ms)
            .bind(record.error.as_deref())
            .bind(ok)
            .execute(pool)
            .await
            .context(OP)?
            .rows_affected()
        });
        Ok(updated == 1)
    }

    /// Extends every poll lease `node` holds to `now + lease`: one statement however many
    /// polls run, so renewing costs the same for one target or a thousand.
    pub async fn renew_poll_leases(
        &self,
        node: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<u64, StoreError> {
        const OP: &str = "renewing poll leases";
        let until = lease_end(ts(now), lease);
        let n = with_pool!(self, write, |pool| {
            sqlx::query("UPDATE targets SET lease_until = $2 WHERE lease_owner = $1")
                .bind(node)
                .bind(until)
                .execute(pool)
                .await
                .context(OP)?
                .rows_affected()
        });
        Ok(n)
    }

    /// Makes an enabled target due now, so the next scheduler tick of any node polls it
    /// ("poll now"); its schedule resumes from there. [`StoreError::NotFound`] if there is no
    /// such target, [`StoreError::Invalid`] if it is disabled.
    pub async fn poll_target_now(
        &self,
        target_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "scheduling a poll now";
        let enabled: Option<bool> = with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let enabled: Option<bool> =
                sqlx::query_scalar("SELECT enabled FROM targets WHERE id = $1")
                    .bind(target_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .context(OP)?;
            if enabled == Some(true) {
                sqlx::query("UPDATE targets SET next_due_at = $2 WHERE id = $1")
                    .bind(target_id)
                    .bind(super::ts(now))
                    .execute(&mut *tx)
                    .await
                    .context(OP)?;
            }
            tx.commit().await.context(OP)?;
            enabled
        });
        match enabled {
            None => Err(StoreError::NotFound),
            Some(false) => Err(StoreError::Invalid(
                "the target is disabled: enable it to poll it".into(),
            )),
            Some(true) => Ok(()),
        }
    }

    /// Gives a lease back without recording a poll (the node is shutting down, or the
    /// target's addon is not loaded here): the target stays due for whoever claims next.
    pub async fn release_poll(&self, target_id: i64, node: &str) -> Result<(), StoreError> {
        const OP: &str = "releasing a poll lease";
        with_pool!(self, write, |pool| {
            sqlx::query(
                "UPDATE targets SET lease_owner = NULL, lease_until = NULL \
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(target_id)
            .bind(node)
            .execute(pool)
            .await
            .context(OP)?;
        });
        Ok(())
    }

    /// Gives back every poll lease `node` holds (it is stopping and cut its polls short);
    /// returns how many.
    pub async fn release_poll_leases(&self, node: &str) -> Result<u64, StoreError> {
        const OP: &str = "releasing a node's poll leases";
        let released = with_pool!(self, write, |pool| {
            sqlx::query(
                "UPDATE targets SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
            )
            .bind(node)
            .execute(pool)
            .await
            .context(OP)?
            .rows_affected()
        });
        Ok(released)
    }

    /// The last recorded poll status of each target, by id, for the given ids (the
    /// reachability alert is cleared only after a poll that followed an unreachable one).
    pub async fn last_poll_statuses(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, Option<String>>, StoreError> {
        const OP: &str = "reading poll statuses";
        let mut out = HashMap::with_capacity(ids.len());
        for &id in ids {
            let status: Option<Option<String>> = with_pool!(self, read, |pool| {
                sqlx::query_scalar("SELECT last_poll_status FROM targets WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await
                    .context(OP)?
            });
            if let Some(status) = status {
                out.insert(id, status);
            }
        }
        Ok(out)
    }

    /// Leases the maintenance job `name` if it is due, creating its row (due at
    /// `first_due`) the first time any node asks. Returns the due time it was claimed for.
    pub async fn claim_job(
        &self,
        name: &str,
        node: &str,
        now: DateTime<Utc>,
        lease: Duration,
        first_due: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        const OP: &str = "claiming a maintenance job";
        let now = ts(now);
        let until = lease_end(now, lease);
        let due = with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            sqlx::query(
                "INSERT INTO scheduled_jobs (name, next_due_at) VALUES ($1, $2) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(ts(first_due))
            .execute(&mut *tx)
            .await
            .context(OP)?;
            // A single-row UPDATE with its WHERE re-checked under the row lock: of two nodes
            // racing, the second sees the first's lease and updates nothing.
            let due: Option<DateTime<Utc>> = sqlx::query_scalar(
                "UPDATE scheduled_jobs SET lease_owner = $2, lease_until = $3 \
                 WHERE name = $1 AND next_due_at <= $4 \
                   AND (lease_until IS NULL OR lease_until < $4) \
                 RETURNING next_due_at",
            )
            .bind(name)
            .bind(node)
            .bind(until)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .context(OP)?;
            tx.commit().await.context(OP)?;
            due
        });
        Ok(due)
    }

    /// Records a maintenance job's run and releases its lease.
    pub async fn finish_job(
        &self,
        name: &str,
        node: &str,
        started_at: DateTime<Utc>,
        duration_ms: i64,
        status: &str,
        next_due_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "recording a maintenance job";
        with_pool!(self, write, |pool| {
            sqlx::query(
                "UPDATE scheduled_jobs SET lease_owner = NULL, lease_until = NULL, \
                     next_due_at = $3, last_run_at = $4, last_duration_ms = $5, last_status = $6 \
                 WHERE name = $1 AND lease_owner = $2",
            )
            .bind(name)
            .bind(node)
            .bind(ts(next_due_at))
            .bind(ts(started_at))
            .bind(duration_ms)
            .bind(status)
            .execute(pool)
            .await
            .context(OP)?;
        });
        Ok(())
    }

    /// Resolves the open alerts of `addon_id` last seen before `not_seen_since` (the
    /// manifest's `expire_after_seconds`), recording `system:expiry` as who resolved them.
    pub async fn expire_alerts(
        &self,
        addon_id: &str,
        not_seen_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        const OP: &str = "expiring stale alerts";
        let n = with_pool!(self, write, |pool| {
            sqlx::query(EXPIRE_ALERTS)
                .bind(addon_id)
                .bind(ts(not_seen_since))
                .bind(ts(now))
                .execute(pool)
                .await
                .context(OP)?
                .rows_affected()
        });
        Ok(n)
    }

    /// Deletes resolved alerts resolved before `before` (retention). Open alerts are never
    /// deleted, however old.
    pub async fn delete_resolved_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        const OP: &str = "deleting old resolved alerts";
        let n = with_pool!(self, write, |pool| {
            sqlx::query("DELETE FROM alerts WHERE status = 'resolved' AND resolved_at < $1")
                .bind(ts(before))
                .execute(pool)
                .await
                .context(OP)?
                .rows_affected()
        });
        Ok(n)
    }

    /// The host key pinned for `endpoint` (`host:port`), if any.
    pub async fn ssh_host_key(&self, endpoint: &str) -> Result<Option<PinnedHostKey>, StoreError> {
        const OP: &str = "reading a pinned SSH host key";
        let row: Option<HostKeyRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(
                "SELECT endpoint, key_type, public_key, fingerprint, first_seen_at, \
                         last_seen_at FROM ssh_host_keys WHERE endpoint = $1",
            )
            .bind(endpoint)
            .fetch_optional(pool)
            .await
            .context(OP)?
        });
        Ok(row.map(pinned_from_row))
    }

    pub async fn ssh_host_keys(&self) -> Result<Vec<PinnedHostKey>, StoreError> {
        const OP: &str = "listing pinned SSH host keys";
        let rows: Vec<HostKeyRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(
                "SELECT endpoint, key_type, public_key, fingerprint, first_seen_at, \
                         last_seen_at FROM ssh_host_keys ORDER BY endpoint",
            )
            .fetch_all(pool)
            .await
            .context(OP)?
        });
        Ok(rows.into_iter().map(pinned_from_row).collect())
    }

    /// Pins a key on first use, or notes that the pinned key was seen again. Returns the key
    /// pinned after the call: when two nodes race to pin different keys for one endpoint, the
    /// first wins and the second learns of it here.
    pub async fn pin_ssh_host_key(
        &self,
        endpoint: &str,
        key_type: &str,
        public_key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<PinnedHostKey, StoreError> {
        const OP: &str = "pinning an SSH host key";
        let now = super::ts(now);
        with_pool!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO ssh_host_keys (endpoint, key_type, public_key, fingerprint, \
                     first_seen_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $5) \
                 ON CONFLICT (endpoint) DO UPDATE SET last_seen_at = excluded.last_seen_at \
                 WHERE ssh_host_keys.fingerprint = excluded.fingerprint",
            )
            .bind(endpoint)
            .bind(key_type)
            .bind(public_key)
            .bind(fingerprint)
            .bind(now)
            .execute(pool)
            .await
            .context(OP)?;
        });
        self.ssh_host_key(endpoint)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("pinned key for {endpoint} vanished")))
    }

    /// Forgets the key pinned for `endpoint` (after an intended key change); the next
    /// connection pins whatever the server presents. Returns whether one was pinned.
    pub async fn forget_ssh_host_key(&self, endpoint: &str) -> Result<bool, StoreError> {
        const OP: &str = "forgetting an SSH host key";
        let n = with_pool!(self, write, |pool| {
            sqlx::query("DELETE FROM ssh_host_keys WHERE endpoint = $1")
                .bind(endpoint)
                .execute(pool)
                .await
                .context(OP)?
                .rows_affected()
        });
        Ok(n > 0)
    }
}

/// endpoint, key_type, public_key, fingerprint, first_seen_at, last_seen_at
type HostKeyRow = (String, String, String, String, DateTime<Utc>, DateTime<Utc>);

fn pinned_from_row(
    (endpoint, key_type, public_key, fingerprint, first_seen_at, last_seen_at): HostKeyRow,
) -> PinnedHostKey {
    PinnedHostKey {
        endpoint,
        key_type,
        public_key,
        fingerprint,
        first_seen_at,
        last_seen_at,
    }
}

/// The expiry job's statement: it finds an addon's open alerts through the partial index
/// `alerts_open_addon_last_seen` (migration 0012), never its resolved history.
pub(in crate::store) const EXPIRE_ALERTS: &str = "UPDATE alerts SET status = 'resolved', resolved_at = $3, \
     resolved_by = 'system:expiry', updated_at = $3 \
     WHERE addon_id = $1 AND status <> 'resolved' AND last_seen_at < $2";
