//! Poll targets and the credentials they poll with.
//!
//! A target names its addon (which must poll) and, optionally, a credential by name. Both
//! references are checked when a target is written; the credential reference has no foreign key
//! (credentials came later than targets), so [`Store::delete_credential`] refuses to remove a
//! credential that targets still use, and the two sides lock the credential row so that the
//! check cannot race on PostgreSQL.
//!
//! Credential secrets are written with [`CredentialSecret::to_stored`] and read back only by
//! [`Store::credential_secret`], which only the poller calls; everything else sees a
//! [`CredentialSummary`].

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::Pool;
use sqlx::postgres::Postgres;
use sqlx::sqlite::Sqlite;
use sqlx::types::Json;

use super::{Context, Store, StoreError, begin_write, ts};
use crate::manifest::{Manifest, PollSpec};
use crate::target::{
    CredentialSecret, CredentialSummary, PollStatus, Schedule, Target, TargetError, TargetSpec,
    first_due, validate_credential_name,
};

/// What [`Store::targets`] lists; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetFilter {
    pub addon_id: Option<String>,
    pub enabled: Option<bool>,
}

/// How many target names a refused credential deletion lists before "and N more".
const USERS_SHOWN: usize = 10;

/// The columns of [`TargetRow`], in one place for every query that reads whole targets (a macro
/// rather than a const so that it can be `concat!`ed into the dialect constants below).
macro_rules! target_columns {
    () => {
        "id, name, address, addon_id, poll_interval_seconds, cron, enabled, config, \
         credentials_ref, created_at, updated_at, next_due_at, last_poll_at, last_poll_status, \
         last_poll_duration_ms, last_poll_error, last_success_at, polls_total, poll_failures, \
         lease_owner"
    };
}

/// The row locks this module needs, which only PostgreSQL has to ask for: SQLite's write
/// transactions (`BEGIN IMMEDIATE`) already exclude every other writer.
trait TargetLocks: sqlx::Database {
    /// Reads one target (`$1` = id) and holds it until the end of the transaction, so that a
    /// read-compare-write of its schedule is not interleaved with another update.
    const LOCK_TARGET: &'static str;
    /// Returns `$1` if that credential exists and keeps it from being deleted until the end of
    /// the transaction. `KEY SHARE` blocks `DELETE` (which must see the new reference and
    /// refuse) but not a concurrent rotation of the secret.
    const LOCK_CREDENTIAL: &'static str;
}

impl TargetLocks for Sqlite {
    const LOCK_TARGET: &'static str =
        concat!("SELECT ", target_columns!(), " FROM targets WHERE id = $1");
    const LOCK_CREDENTIAL: &'static str = "SELECT name FROM credentials WHERE name = $1";
}

impl TargetLocks for Postgres {
    // The scheduler claims with FOR UPDATE SKIP LOCKED, so it passes over a target while it is
    // being edited instead of waiting.
    const LOCK_TARGET: &'static str = concat!(
        "SELECT ",
        target_columns!(),
        " FROM targets WHERE id = $1 FOR UPDATE"
    );
    const LOCK_CREDENTIAL: &'static str =
        "SELECT name FROM credentials WHERE name = $1 FOR KEY SHARE";
}

fn lock_target_sql<DB: TargetLocks>(_: &Pool<DB>) -> &'static str {
    DB::LOCK_TARGET
}

fn lock_credential_sql<DB: TargetLocks>(_: &Pool<DB>) -> &'static str {
    DB::LOCK_CREDENTIAL
}

/// A target row as the database returns it (`SELECT target_columns!()`). `pub(super)` so that
/// other store modules reading whole targets share this one mapping.
#[derive(sqlx::FromRow)]
pub(super) struct TargetRow {
    id: i64,
    name: String,
    address: String,
    addon_id: String,
    poll_interval_seconds: i64,
    cron: Option<String>,
    enabled: bool,
    config: Json<Map<String, Value>>,
    credentials_ref: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    next_due_at: Option<DateTime<Utc>>,
    last_poll_at: Option<DateTime<Utc>>,
    last_poll_status: Option<String>,
    last_poll_duration_ms: Option<i64>,
    last_poll_error: Option<String>,
    last_success_at: Option<DateTime<Utc>>,
    polls_total: i64,
    poll_failures: i64,
    lease_owner: Option<String>,
}

impl TargetRow {
    /// `cron` set means a cron schedule (`poll_interval_seconds` then only records its period);
    /// otherwise the interval.
    fn schedule(&self) -> Result<Schedule, StoreError> {
        match &self.cron {
            Some(expr) => Ok(Schedule::Cron(expr.clone())),
            None => u32::try_from(self.poll_interval_seconds)
                .map(Schedule::IntervalSeconds)
                .map_err(|_| {
                    StoreError::Corrupt(format!(
                        "target `{}` has poll_interval_seconds {}",
                        self.name, self.poll_interval_seconds
                    ))
                }),
        }
    }

    pub(super) fn into_target(self) -> Result<Target, StoreError> {
        Ok(Target {
            schedule: self.schedule()?,
            id: self.id,
            name: self.name,
            address: self.address,
            addon_id: self.addon_id,
            enabled: self.enabled,
            config: self.config.0,
            credentials: self.credentials_ref,
            created_at: self.created_at,
            updated_at: self.updated_at,
            status: PollStatus {
                next_due_at: self.next_due_at,
                last_poll_at: self.last_poll_at,
                last_poll_status: self.last_poll_status,
                last_poll_duration_ms: self.last_poll_duration_ms,
                last_poll_error: self.last_poll_error,
                last_success_at: self.last_success_at,
                polls_total: self.polls_total,
                poll_failures: self.poll_failures,
                lease_owner: self.lease_owner,
            },
        })
    }
}

#[derive(sqlx::FromRow)]
struct CredentialRow {
    name: String,
    kind: String,
    public: Json<Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<CredentialRow> for CredentialSummary {
    fn from(row: CredentialRow) -> CredentialSummary {
        CredentialSummary {
            name: row.name,
            kind: row.kind,
            public: row.public.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The columns of [`CredentialRow`]: never `secret`.
macro_rules! credential_columns {
    () => {
        "name, kind, public, created_at, updated_at"
    };
}

fn invalid(e: TargetError) -> StoreError {
    StoreError::Invalid(e.to_string())
}

/// The schedule a spec stands for: its own, or the addon's default interval. The default is
/// validated too, so a manifest's (or caller's) zero cannot become a busy loop.
fn resolve_schedule(spec: &TargetSpec, default_interval: u32) -> Result<Schedule, StoreError> {
    let schedule = spec
        .schedule
        .clone()
        .unwrap_or(Schedule::IntervalSeconds(default_interval));
    schedule
        .validate()
        .map_err(|m| invalid(TargetError::invalid("schedule", m)))?;
    Ok(schedule)
}

/// `poll_interval_seconds` and `cron` for a schedule. The interval column is NOT NULL, so a
/// cron target records its current period there, for whoever reads the table by hand; the
/// code never reads it back for cron targets.
fn schedule_columns(schedule: &Schedule, at: DateTime<Utc>) -> (i64, Option<&str>) {
    match schedule {
        Schedule::IntervalSeconds(s) => (i64::from(*s), None),
        Schedule::Cron(expr) => (schedule.period_seconds(at).max(1), Some(expr)),
    }
}

/// The addon's poll section, from its stored manifest (`None` = not installed).
fn poll_spec_of(addon_id: &str, manifest: Option<Json<Value>>) -> Result<PollSpec, StoreError> {
    let Some(Json(manifest)) = manifest else {
        return Err(invalid(TargetError::invalid(
            "addon_id",
            format!("no addon `{addon_id}` is installed"),
        )));
    };
    let manifest: Manifest = serde_json::from_value(manifest).map_err(|e| {
        StoreError::Corrupt(format!(
            "addon `{addon_id}`: stored manifest is unusable: {e}"
        ))
    })?;
    manifest.poll.ok_or_else(|| {
        invalid(TargetError::invalid(
            "addon_id",
            format!("addon `{addon_id}` does not poll"),
        ))
    })
}

fn credential_missing(name: &str) -> StoreError {
    invalid(TargetError::invalid(
        "credentials",
        format!("no credential named `{name}`"),
    ))
}

const ADDON_MANIFEST_SQL: &str = "SELECT manifest FROM addons WHERE id = $1";

/// Checks, inside the write transaction `$tx` on `$pool`, that the spec's addon polls and that
/// its credential exists, locking the credential until commit (see [`TargetLocks`]). A macro
/// because the body must compile once per backend, like `with_pool!`'s.
macro_rules! check_references {
    ($tx:ident, $pool:ident, $spec:expr, $op:expr) => {{
        let manifest: Option<Json<Value>> = sqlx::query_scalar(ADDON_MANIFEST_SQL)
            .bind(&$spec.addon_id)
            .fetch_optional(&mut *$tx)
            .await
            .context($op)?;
        poll_spec_of(&$spec.addon_id, manifest)?;
        if let Some(credential) = &$spec.credentials {
            let found: Option<String> = sqlx::query_scalar(lock_credential_sql($pool))
                .bind(credential)
                .fetch_optional(&mut *$tx)
                .await
                .context($op)?;
            if found.is_none() {
                return Err(credential_missing(credential));
            }
        }
    }};
}

impl Store {
    /// The poll section of an installed addon's manifest: what callers take
    /// `default_interval` from. [`StoreError::Invalid`] names the `addon_id` field when the
    /// addon is not installed or does not poll.
    pub async fn addon_poll_spec(&self, addon_id: &str) -> Result<PollSpec, StoreError> {
        let manifest: Option<Json<Value>> = with_pool!(self, read, |pool| {
            sqlx::query_scalar(ADDON_MANIFEST_SQL)
                .bind(addon_id)
                .fetch_optional(pool)
                .await
                .context("reading an addon's manifest")?
        });
        poll_spec_of(addon_id, manifest)
    }

    /// Creates a target. Validates the spec, checks that the addon is installed and polls (has
    /// a `poll` section) and that the credential exists. `default_interval` (the addon
    /// manifest's `poll.default_interval_seconds`, see [`Store::addon_poll_spec`]) is the
    /// schedule when the spec names none. The first poll is due at [`first_due`]; a disabled
    /// target has no due time.
    ///
    /// [`StoreError::Invalid`] for a bad spec or reference, [`StoreError::Conflict`] when the
    /// name is taken.
    pub async fn create_target(
        &self,
        spec: &TargetSpec,
        default_interval: u32,
        now: DateTime<Utc>,
    ) -> Result<Target, StoreError> {
        const OP: &str = "creating a target";
        spec.validate().map_err(invalid)?;
        let schedule = resolve_schedule(spec, default_interval)?;
        let at = ts(now);
        let (interval, cron) = schedule_columns(&schedule, at);
        let next_due = spec
            .enabled
            .then(|| super::ts(first_due(&schedule, &spec.name, at)));
        let row: Option<TargetRow> = with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            check_references!(tx, pool, spec, OP);
            // DO NOTHING rather than catching the unique violation: the loser of two concurrent
            // creates waits for the winner and then simply gets no row.
            let row = sqlx::query_as(concat!(
                "INSERT INTO targets (name, address, addon_id, poll_interval_seconds, cron, \
                     enabled, config, credentials_ref, next_due_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                 ON CONFLICT (name) DO NOTHING RETURNING ",
                target_columns!()
            ))
            .bind(&spec.name)
            .bind(&spec.address)
            .bind(&spec.addon_id)
            .bind(interval)
            .bind(cron)
            .bind(spec.enabled)
            .bind(Json(&spec.config))
            .bind(&spec.credentials)
            .bind(next_due)
            .bind(at)
            .fetch_optional(&mut *tx)
            .await
            .context(OP)?;
            if row.is_some() {
                tx.commit().await.context(OP)?;
            }
            row
        });
        row.ok_or_else(|| name_taken(&spec.name))?.into_target()
    }

    /// Replaces a target's definition (PUT semantics: a field the spec leaves out takes its
    /// default, and no schedule means the addon's default interval). The poll status is kept;
    /// the next due time is recomputed only when the schedule changed or the target was
    /// enabled, so editing the address does not reset a target's phase.
    ///
    /// [`StoreError::NotFound`] if there is no such target; otherwise as
    /// [`Store::create_target`].
    pub async fn update_target(
        &self,
        id: i64,
        spec: &TargetSpec,
        default_interval: u32,
        now: DateTime<Utc>,
    ) -> Result<Target, StoreError> {
        const OP: &str = "updating a target";
        spec.validate().map_err(invalid)?;
        let schedule = resolve_schedule(spec, default_interval)?;
        let at = ts(now);
        let (interval, cron) = schedule_columns(&schedule, at);
        let row: TargetRow = with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let current: TargetRow = sqlx::query_as(lock_target_sql(pool))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .context(OP)?
                .ok_or(StoreError::NotFound)?;
            check_references!(tx, pool, spec, OP);
            let next_due =
                next_due_after_change(&current, &spec.name, &schedule, spec.enabled, at)?;
            let updated = sqlx::query_as(concat!(
                "UPDATE targets SET name = $2, address = $3, addon_id = $4, \
                     poll_interval_seconds = $5, cron = $6, enabled = $7, config = $8, \
                     credentials_ref = $9, next_due_at = $10, updated_at = $11 \
                 WHERE id = $1 RETURNING ",
                target_columns!()
            ))
            .bind(id)
            .bind(&spec.name)
            .bind(&spec.address)
            .bind(&spec.addon_id)
            .bind(interval)
            .bind(cron)
            .bind(spec.enabled)
            .bind(Json(&spec.config))
            .bind(&spec.credentials)
            .bind(next_due)
            .bind(at)
            .fetch_one(&mut *tx)
            .await;
            let row = match updated {
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    return Err(name_taken(&spec.name));
                }
                other => other.context(OP)?,
            };
            tx.commit().await.context(OP)?;
            row
        });
        row.into_target()
    }

    /// Enables or disables a target. Enabling schedules its next poll at [`first_due`];
    /// disabling clears the due time (a poll in flight finishes). Setting the state it already
    /// has changes nothing but `updated_at`. [`StoreError::NotFound`] if there is no such target.
    pub async fn set_target_enabled(
        &self,
        id: i64,
        enabled: bool,
        now: DateTime<Utc>,
    ) -> Result<Target, StoreError> {
        const OP: &str = "enabling or disabling a target";
        let at = ts(now);
        let row: TargetRow = with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let current: TargetRow = sqlx::query_as(lock_target_sql(pool))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .context(OP)?
                .ok_or(StoreError::NotFound)?;
            let schedule = current.schedule()?;
            let next_due = next_due_after_change(&current, &current.name, &schedule, enabled, at)?;
            let row = sqlx::query_as(concat!(
                "UPDATE targets SET enabled = $2, next_due_at = $3, updated_at = $4 \
                 WHERE id = $1 RETURNING ",
                target_columns!()
            ))
            .bind(id)
            .bind(enabled)
            .bind(next_due)
            .bind(at)
            .fetch_one(&mut *tx)
            .await
            .context(OP)?;
            tx.commit().await.context(OP)?;
            row
        });
        row.into_target()
    }

    /// Deletes a target; [`StoreError::NotFound`] if there is none.
    pub async fn delete_target(&self, id: i64) -> Result<(), StoreError> {
        let deleted = with_pool!(self, write, |pool| {
            sqlx::query("DELETE FROM targets WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .context("deleting a target")?
                .rows_affected()
        });
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn target(&self, id: i64) -> Result<Option<Target>, StoreError> {
        let row: Option<TargetRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                target_columns!(),
                " FROM targets WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await
            .context("reading a target")?
        });
        row.map(TargetRow::into_target).transpose()
    }

    pub async fn target_by_name(&self, name: &str) -> Result<Option<Target>, StoreError> {
        let row: Option<TargetRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                target_columns!(),
                " FROM targets WHERE name = $1"
            ))
            .bind(name)
            .fetch_optional(pool)
            .await
            .context("reading a target")?
        });
        row.map(TargetRow::into_target).transpose()
    }

    /// The targets matching `filter`, by name.
    pub async fn targets(&self, filter: &TargetFilter) -> Result<Vec<Target>, StoreError> {
        // One static text with optional terms (unlike the alert list's built queries): targets
        // number in the thousands, not millions, and listing them is an operator's action, so
        // a plan per filter combination would buy nothing.
        let rows: Vec<TargetRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                target_columns!(),
                " FROM targets \
                 WHERE ($1 IS NULL OR addon_id = $1) AND ($2 IS NULL OR enabled = $2) \
                 ORDER BY name"
            ))
            .bind(&filter.addon_id)
            .bind(filter.enabled)
            .fetch_all(pool)
            .await
            .context("listing targets")?
        });
        rows.into_iter().map(TargetRow::into_target).collect()
    }

    /// Creates a credential or replaces the one with this name (kind and secret both; targets
    /// using it poll with the new secret from their next poll). [`StoreError::Invalid`] for a
    /// bad name.
    pub async fn set_credential(
        &self,
        name: &str,
        secret: &CredentialSecret,
        now: DateTime<Utc>,
    ) -> Result<CredentialSummary, StoreError> {
        const OP: &str = "writing a credential";
        validate_credential_name(name).map_err(credential_invalid)?;
        let row: CredentialRow = with_pool!(self, write, |pool| {
            sqlx::query_as(concat!(
                "INSERT INTO credentials (name, kind, public, secret, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) \
                 ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, \
                     public = excluded.public, secret = excluded.secret, \
                     updated_at = excluded.updated_at \
                 RETURNING ",
                credential_columns!()
            ))
            .bind(name)
            .bind(secret.kind())
            .bind(Json(secret.public()))
            .bind(self.seal_bytes(super::secrets::CREDENTIAL_SECRET, &secret.to_stored()))
            .bind(ts(now))
            .fetch_one(pool)
            .await
            .context(OP)?
        });
        Ok(row.into())
    }

    /// Every credential's summary (never a secret), by name.
    pub async fn credentials(&self) -> Result<Vec<CredentialSummary>, StoreError> {
        let rows: Vec<CredentialRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                credential_columns!(),
                " FROM credentials ORDER BY name"
            ))
            .fetch_all(pool)
            .await
            .context("listing credentials")?
        });
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn credential(&self, name: &str) -> Result<Option<CredentialSummary>, StoreError> {
        let row: Option<CredentialRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                credential_columns!(),
                " FROM credentials WHERE name = $1"
            ))
            .bind(name)
            .fetch_optional(pool)
            .await
            .context("reading a credential")?
        });
        Ok(row.map(Into::into))
    }

    /// A credential's secret. Only the poller calls this; nothing it returns may reach a log or
    /// a response.
    pub async fn credential_secret(
        &self,
        name: &str,
    ) -> Result<Option<CredentialSecret>, StoreError> {
        let row: Option<(String, Vec<u8>)> = with_pool!(self, read, |pool| {
            sqlx::query_as("SELECT kind, secret FROM credentials WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await
                .context("reading a credential's secret")?
        });
        row.map(|(kind, stored)| {
            let bytes = self.open_bytes(super::secrets::CREDENTIAL_SECRET, &stored)?;
            CredentialSecret::from_stored(&kind, &bytes)
                .map_err(|e| StoreError::Corrupt(format!("credential `{name}`: {e}")))
        })
        .transpose()
    }

    /// Deletes a credential. [`StoreError::Conflict`] naming the targets that still use it;
    /// [`StoreError::NotFound`] if there is none.
    pub async fn delete_credential(&self, name: &str) -> Result<(), StoreError> {
        const OP: &str = "deleting a credential";
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            // Delete first, then look for users: on PostgreSQL the DELETE waits for any
            // transaction that locked the row to add a reference (see `TargetLocks`), and the
            // SELECT after it, a new snapshot, sees that reference once committed.
            let deleted = sqlx::query("DELETE FROM credentials WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await
                .context(OP)?
                .rows_affected();
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            let users: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM targets WHERE credentials_ref = $1 ORDER BY name",
            )
            .bind(name)
            .fetch_all(&mut *tx)
            .await
            .context(OP)?;
            if !users.is_empty() {
                // Dropping the transaction rolls the deletion back.
                return Err(StoreError::Conflict(in_use_message(name, &users)));
            }
            tx.commit().await.context(OP)?;
        });
        Ok(())
    }
}

/// When a target whose row is `current` next polls, once it is called `name` and has
/// `schedule` and `enabled`.
fn next_due_after_change(
    current: &TargetRow,
    name: &str,
    schedule: &Schedule,
    enabled: bool,
    at: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(if !enabled {
        None
    } else if current.enabled && current.schedule()? == *schedule {
        current.next_due_at
    } else {
        Some(super::ts(first_due(schedule, name, at)))
    })
}

fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!("a target named `{name}` already exists"))
}

fn credential_invalid(e: TargetError) -> StoreError {
    let TargetError::Invalid { field, message } = e;
    StoreError::Invalid(format!("credential field `{field}`: {message}"))
}

fn in_use_message(name: &str, users: &[String]) -> String {
    let shown = users[..users.len().min(USERS_SHOWN)]
        .iter()
        .map(|u| format!("`{u}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let more = match users.len().saturating_sub(USERS_SHOWN) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    let (targets, them) = if users.len() == 1 {
        ("target", "it")
    } else {
        ("targets", "them")
    };
    format!(
        "credential `{name}` is used by {targets} {shown}{more}; point {them} at another \
         credential or remove {them} first"
    )
}
