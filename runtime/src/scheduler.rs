//! The scheduler: in-process replacement for Celery + Beat. Each node runs one; PostgreSQL is
//! what makes several nodes one cluster.
//!
//! - **Polls.** Every tick the node leases as many due targets as it has free poll slots
//!   (`claim_due_targets`: `FOR UPDATE SKIP LOCKED` on PostgreSQL), runs each, and records the
//!   outcome with the next due time, which keeps the schedule's phase (intervals) or follows
//!   the cron expression. Leases are renewed every third of their length while polls run, so a
//!   long poll is never taken over, and a node that dies stops renewing: its targets become
//!   claimable once the lease runs out.
//! - **Maintenance jobs**, on cron schedules and leased the same way: `expiry` resolves open
//!   alerts not seen for their addon's `alerts.expire_after_seconds`; `retention` deletes
//!   resolved alerts older than `retention_days`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::poll::{self, PollJob, Pollers};
use crate::registry::Registry;
use crate::store::{PollRecord, Store, StoreError};
use crate::target::{Schedule, parse_cron};
use crate::writer::AlertWriter;

/// How this node schedules.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// This node's name in leases.
    pub node_id: String,
    /// Polls running at once on this node.
    pub concurrency: usize,
    /// Lease length; renewed every third of it while a poll runs.
    pub lease: Duration,
    /// How often due work is looked for.
    pub tick: Duration,
    /// Resolved alerts older than this many days are deleted; 0 keeps them.
    pub retention_days: u32,
    /// Where polls may connect.
    pub egress: crate::egress::EgressPolicy,
    /// When stopping, how long running polls may take to finish before they are cut short and
    /// their leases given back.
    pub stop_grace: Duration,
}

/// A maintenance job: its name (the lease key) and cron schedule.
struct Job {
    name: &'static str,
    cron: &'static str,
}

const JOBS: &[Job] = &[
    // Every minute: expiry periods are minutes to days, so a minute's lateness is noise.
    Job {
        name: "expiry",
        cron: "0 * * * * *",
    },
    // Daily at 03:17 UTC, off the hour so that clusters sharing a database server do not all
    // delete at once.
    Job {
        name: "retention",
        cron: "0 17 3 * * *",
    },
];

/// What the scheduler needs from the rest of the runtime.
#[derive(Clone)]
pub struct Scheduler {
    config: SchedulerConfig,
    store: Store,
    registry: Arc<Registry>,
    writer: AlertWriter,
    pollers: Pollers,
}

impl Scheduler {
    pub fn new(
        config: SchedulerConfig,
        store: Store,
        registry: Arc<Registry>,
        writer: AlertWriter,
    ) -> Scheduler {
        Scheduler {
            pollers: Pollers::new(config.egress.clone()),
            config,
            store,
            registry,
            writer,
        }
    }

    /// Runs until `shutdown` turns true, then gives running polls `stop_grace` to finish and
    /// record their outcomes; those still running are cut short and their leases given back.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        info!(node = %self.config.node_id, concurrency = self.config.concurrency, "scheduler started");
        // Separate loops, so that a long maintenance job never delays lease renewal.
        tokio::join!(
            self.clone().poll_loop(shutdown.clone()),
            self.clone().jobs_loop(shutdown)
        );
        info!(node = %self.config.node_id, "scheduler stopped");
    }

    async fn jobs_loop(self, mut shutdown: watch::Receiver<bool>) {
        let mut every = tokio::time::interval(Duration::from_secs(10).min(self.config.tick * 10));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => self.run_due_jobs().await,
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn poll_loop(self, mut shutdown: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.config.concurrency));
        let mut polls: JoinSet<()> = JoinSet::new();
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let renew_every = self.config.lease / 3;
        let mut last_renewal = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => break,
            }
            while polls.try_join_next().is_some() {}

            if !polls.is_empty() && last_renewal.elapsed() >= renew_every {
                last_renewal = Instant::now();
                if let Err(e) = self
                    .store
                    .renew_poll_leases(&self.config.node_id, Utc::now(), self.config.lease)
                    .await
                {
                    warn!(error = %e, "could not renew poll leases");
                }
            }

            let free = slots.available_permits();
            if free > 0 {
                match self
                    .store
                    .claim_due_targets(
                        &self.config.node_id,
                        Utc::now(),
                        self.config.lease,
                        free as i64,
                    )
                    .await
                {
                    Ok(claimed) => {
                        for claim in claimed {
                            let permit = slots
                                .clone()
                                .acquire_owned()
                                .await
                                .expect("semaphore is never closed");
                            let this = self.clone();
                            polls.spawn(async move {
                                this.poll_one(claim.target_id, claim.due_at).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(e) => warn!(error = %e, "could not claim due polls"),
                }
            }
        }
        self.stop_polls(polls).await;
    }

    /// Claims nothing more; what is running gets the grace period, then is cut short, and
    /// every lease this node still holds is given back: the targets stay due, so another node
    /// (or this one, restarted) polls them at its next tick instead of after the lease. A poll
    /// cut while storing is safe: the writer commits or drops its batch whole either way.
    async fn stop_polls(&self, mut polls: JoinSet<()>) {
        let running = polls.len();
        let finished = tokio::time::timeout(self.config.stop_grace, async {
            while polls.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        if finished {
            return;
        }
        let cut = polls.len();
        polls.abort_all();
        while polls.join_next().await.is_some() {}
        match self.store.release_poll_leases(&self.config.node_id).await {
            Ok(released) => info!(
                running,
                cut,
                released,
                "stopping: polls still running after the grace period were cut short and their leases given back"
            ),
            Err(error) => warn!(
                cut,
                %error,
                "stopping: could not give back poll leases; other nodes take them when they expire"
            ),
        }
    }

    async fn poll_one(&self, target_id: i64, due_at: DateTime<Utc>) {
        let node = &self.config.node_id;
        let target = match self.store.target(target_id).await {
            Ok(Some(t)) => t,
            Ok(None) => return, // deleted since the claim
            Err(e) => {
                warn!(target_id, error = %e, "could not read a claimed target");
                let _ = self.store.release_poll(target_id, node).await;
                return;
            }
        };
        let started = Instant::now();
        let started_at = Utc::now();
        let next_due_at = next_due(&target.schedule, due_at, started_at);
        let outcome = match self.registry.get(&target.addon_id) {
            None => poll::PollOutcome {
                status: "failed",
                error: Some(format!(
                    "addon `{}` is not enabled on this node",
                    target.addon_id
                )),
            },
            Some(addon) => {
                let credential = match &target.credentials {
                    None => Ok(None),
                    Some(name) => self.store.credential_secret(name).await,
                };
                match credential {
                    Err(e) => poll::PollOutcome {
                        status: "failed",
                        error: Some(format!("reading the target's credential: {e}")),
                    },
                    Ok(credential) => {
                        let previous_status = target.status.last_poll_status.clone();
                        poll::run(PollJob {
                            addon,
                            target: target.clone(),
                            credential,
                            previous_status,
                            pollers: &self.pollers,
                            store: &self.store,
                            writer: &self.writer,
                        })
                        .await
                    }
                }
            }
        };
        let record = PollRecord {
            started_at,
            duration_ms: started.elapsed().as_millis() as i64,
            status: outcome.status,
            error: outcome.error.clone(),
            next_due_at,
        };
        debug!(target = %target.name, status = outcome.status, ms = record.duration_ms, "polled");
        if outcome.status != "ok" {
            debug!(target = %target.name, status = outcome.status, error = ?outcome.error, "poll did not succeed");
        }
        match self.store.finish_poll(target_id, node, &record).await {
            Ok(true) => {}
            Ok(false) => warn!(
                target = %target.name,
                "poll finished after its lease was taken over by another node; its outcome is not recorded"
            ),
            Err(e) => warn!(target = %target.name, error = %e, "could not record a poll"),
        }
    }

    async fn run_due_jobs(&self) {
        for job in JOBS {
            let now = Utc::now();
            let schedule = Schedule::Cron(job.cron.to_owned());
            let first_due = schedule.next_after(now);
            let claimed = self
                .store
                .claim_job(
                    job.name,
                    &self.config.node_id,
                    now,
                    self.config.lease,
                    first_due,
                )
                .await;
            let due = match claimed {
                Ok(Some(due)) => due,
                Ok(None) => continue,
                Err(e) => {
                    warn!(job = job.name, error = %e, "could not claim a maintenance job");
                    continue;
                }
            };
            let started = Instant::now();
            let status = match self.run_job(job.name, now).await {
                Ok(summary) => {
                    info!(job = job.name, %summary, "maintenance job ran");
                    format!("ok: {summary}")
                }
                Err(e) => {
                    warn!(job = job.name, error = %e, "maintenance job failed");
                    format!("failed: {e}")
                }
            };
            let next = next_due(&schedule, due, now);
            if let Err(e) = self
                .store
                .finish_job(
                    job.name,
                    &self.config.node_id,
                    now,
                    started.elapsed().as_millis() as i64,
                    &status,
                    next,
                )
                .await
            {
                warn!(job = job.name, error = %e, "could not record a maintenance job");
            }
        }
    }

    /// Runs one maintenance job now and says what it did.
    pub async fn run_job(&self, name: &str, now: DateTime<Utc>) -> Result<String, StoreError> {
        match name {
            "expiry" => {
                let mut total = 0;
                for addon in self.registry.enabled() {
                    if let Some(secs) = addon.manifest.alerts.expire_after_seconds {
                        let since = now - chrono::Duration::seconds(secs as i64);
                        total += self.store.expire_alerts(addon.id(), since, now).await?;
                    }
                }
                Ok(format!("{total} alerts expired"))
            }
            "retention" => {
                if self.config.retention_days == 0 {
                    return Ok("retention disabled".into());
                }
                let before = now - chrono::Duration::days(i64::from(self.config.retention_days));
                let n = self.store.delete_resolved_before(before).await?;
                Ok(format!("{n} resolved alerts deleted"))
            }
            other => Ok(format!("unknown job `{other}`")),
        }
    }
}

/// The next due time after a poll claimed for `due_at` and started at `now`: one period on,
/// keeping the schedule's phase; if the node fell more than a period behind, the missed runs
/// are skipped rather than fired back to back.
pub fn next_due(schedule: &Schedule, due_at: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    let next = schedule.next_after(due_at);
    if next > now {
        return next;
    }
    match schedule {
        Schedule::IntervalSeconds(s) => {
            let period = i64::from(*s).max(1) * 1000;
            let behind = (now - due_at).num_milliseconds();
            let periods = behind / period + 1;
            due_at + chrono::Duration::milliseconds(periods * period)
        }
        Schedule::Cron(_) => schedule.next_after(now),
    }
}

/// Checks the job table's cron expressions (a unit test calls it).
pub fn validate_jobs() -> Result<(), String> {
    for job in JOBS {
        parse_cron(job.cron)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_schedules_parse() {
        validate_jobs().unwrap();
    }

    #[test]
    fn next_due_keeps_phase_and_skips_missed_periods() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let every_10 = Schedule::IntervalSeconds(10);
        // On time: one period on from the due time, not from when the poll ran.
        assert_eq!(
            next_due(
                &every_10,
                t("2026-01-01T00:00:00Z"),
                t("2026-01-01T00:00:01.5Z")
            ),
            t("2026-01-01T00:00:10Z")
        );
        // 35 s late: the next slot in phase after now.
        assert_eq!(
            next_due(
                &every_10,
                t("2026-01-01T00:00:00Z"),
                t("2026-01-01T00:00:35Z")
            ),
            t("2026-01-01T00:00:40Z")
        );
        let cron = Schedule::Cron("*/5 * * * *".into());
        assert_eq!(
            next_due(&cron, t("2026-01-01T00:05:00Z"), t("2026-01-01T00:20:01Z")),
            t("2026-01-01T00:25:00Z")
        );
    }
}
