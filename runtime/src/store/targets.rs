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

use super::{Context, Store, StoreError, begin_write, now};
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
    ) -> Result<Target, StoreError> {
        const OP: &str = "creating a target";
        spec.validate().map_err(invalid)?;
        let schedule = resolve_schedule(spec, default_interval)?;
        let at = now();
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
    ) -> Result<Target, StoreError> {
        const OP: &str = "updating a target";
        spec.validate().map_err(invalid)?;
        let schedule = resolve_schedule(spec, default_interval)?;
        let at = now();
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
    pub async fn set_target_enabled(&self, id: i64, enabled: bool) -> Result<Target, StoreError> {
        const OP: &str = "enabling or disabling a target";
        let at = now();
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
            .bind(secret.to_stored())
            .bind(now())
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
        row.map(|(kind, bytes)| {
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

#[cfg(test)]
mod tests {
    //! Every case runs on SQLite and on a fresh PostgreSQL database.

    use std::future::Future;

    use chrono::Duration;
    use serde_json::json;

    use super::*;
    use crate::snmp::{AuthProtocol, PrivProtocol, UsmUser};
    use crate::store::AddonRecord;
    use crate::testing::{TestPostgres, sqlite_url};

    async fn on_sqlite<F, Fut>(case: F)
    where
        F: FnOnce(Store) -> Fut,
        Fut: Future<Output = ()>,
    {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&sqlite_url(dir.path()).await).await.unwrap();
        case(store.clone()).await;
        store.close().await;
    }

    async fn on_postgres<F, Fut>(case: F)
    where
        F: FnOnce(Store) -> Fut,
        Fut: Future<Output = ()>,
    {
        let pg = TestPostgres::create()
            .await
            .unwrap_or_else(|error| panic!("{error:#}"));
        let store = Store::connect(&pg.url).await.unwrap();
        case(store.clone()).await;
        store.close().await;
        pg.drop().await;
    }

    macro_rules! on_both {
        ($($case:ident),* $(,)?) => {$(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::on_sqlite(super::$case).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    super::on_postgres(super::$case).await
                }
            }
        )*};
    }

    on_both!(
        targets_create_read_list_delete,
        target_references_and_validation_are_checked,
        update_keeps_status_and_phase_unless_schedule_changes,
        enable_and_disable_move_the_due_time,
        credentials_roundtrip_without_showing_secrets,
        credential_in_use_cannot_be_deleted,
        concurrent_reference_and_delete_never_dangle,
    );

    const POLLER: &str = "poller";
    const WEBHOOK_ONLY: &str = "hooks";

    /// Installs a polling addon (default interval 120 s) and one that does not poll.
    async fn install_addons(store: &Store) {
        for (id, manifest) in [
            (
                POLLER,
                json!({
                    "id": POLLER, "name": "Poller", "version": "1.0.0",
                    "world": "opsconductor:addon/addon@0.2.0",
                    "methods": ["snmp_poll"],
                    "poll": { "default_interval_seconds": 120 },
                }),
            ),
            (
                WEBHOOK_ONLY,
                json!({
                    "id": WEBHOOK_ONLY, "name": "Hooks", "version": "1.0.0",
                    "world": "opsconductor:addon/addon@0.1.0",
                    "methods": ["webhook"],
                    "webhook": { "path": "hooks" },
                }),
            ),
        ] {
            store
                .upsert_addon(&AddonRecord {
                    id: id.to_owned(),
                    name: id.to_owned(),
                    version: "1.0.0".to_owned(),
                    methods: vec![],
                    manifest,
                    wasm: b"\0asm".to_vec(),
                    wasm_sha256: format!("sha-{id}"),
                    enabled: true,
                })
                .await
                .unwrap();
        }
    }

    fn spec(name: &str) -> TargetSpec {
        TargetSpec {
            name: name.to_owned(),
            address: "192.0.2.10:161".to_owned(),
            addon_id: POLLER.to_owned(),
            schedule: None,
            enabled: true,
            config: Map::new(),
            credentials: None,
        }
    }

    fn community(s: &str) -> CredentialSecret {
        CredentialSecret::SnmpCommunity {
            community: s.to_owned(),
        }
    }

    async fn default_interval(store: &Store) -> u32 {
        store
            .addon_poll_spec(POLLER)
            .await
            .unwrap()
            .default_interval_seconds
    }

    fn invalid_message(result: Result<Target, StoreError>) -> String {
        match result {
            Err(StoreError::Invalid(message)) => message,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    async fn targets_create_read_list_delete(store: Store) {
        install_addons(&store).await;
        let default = default_interval(&store).await;
        assert_eq!(default, 120);

        let before = now();
        let mut s = spec("sw-b");
        s.config = json!({ "ifindex": [1, 2], "label": "core" })
            .as_object()
            .unwrap()
            .clone();
        let b = store.create_target(&s, default).await.unwrap();
        assert_eq!(b.schedule, Schedule::IntervalSeconds(120));
        assert_eq!(b.config["ifindex"], json!([1, 2]));
        assert!(b.enabled);
        assert_eq!(b.status.polls_total, 0);
        assert_eq!(b.status.last_poll_status, None);
        // Spread over at most the first minute (see `first_due`).
        let due = b.status.next_due_at.expect("an enabled target is due");
        assert!(
            due >= before && due <= now() + Duration::seconds(60),
            "{due}"
        );

        let mut s = spec("sw-a");
        s.schedule = Some(Schedule::Cron("*/5 * * * *".into()));
        s.enabled = false;
        let a = store.create_target(&s, default).await.unwrap();
        assert_eq!(a.schedule, Schedule::Cron("*/5 * * * *".into()));
        assert_eq!(a.status.next_due_at, None, "a disabled target is not due");

        let mut s = spec("sw-c");
        s.schedule = Some(Schedule::IntervalSeconds(30));
        let c = store.create_target(&s, default).await.unwrap();
        assert_eq!(c.schedule, Schedule::IntervalSeconds(30));

        // Read back exactly what was returned, by id and by name.
        assert_eq!(store.target(b.id).await.unwrap().as_ref(), Some(&b));
        assert_eq!(
            store.target_by_name("sw-a").await.unwrap().as_ref(),
            Some(&a)
        );
        assert_eq!(store.target(999_999).await.unwrap(), None);
        assert_eq!(store.target_by_name("nope").await.unwrap(), None);

        let names = |ts: Vec<Target>| ts.into_iter().map(|t| t.name).collect::<Vec<_>>();
        let all = store.targets(&TargetFilter::default()).await.unwrap();
        assert_eq!(names(all), ["sw-a", "sw-b", "sw-c"]);
        let enabled = TargetFilter {
            enabled: Some(true),
            ..TargetFilter::default()
        };
        assert_eq!(
            names(store.targets(&enabled).await.unwrap()),
            ["sw-b", "sw-c"]
        );
        let disabled = TargetFilter {
            addon_id: Some(POLLER.into()),
            enabled: Some(false),
        };
        assert_eq!(names(store.targets(&disabled).await.unwrap()), ["sw-a"]);
        let other = TargetFilter {
            addon_id: Some(WEBHOOK_ONLY.into()),
            enabled: None,
        };
        assert!(store.targets(&other).await.unwrap().is_empty());

        // The name is unique.
        match store.create_target(&spec("sw-a"), default).await {
            Err(StoreError::Conflict(m)) => {
                assert_eq!(m, "a target named `sw-a` already exists")
            }
            other => panic!("{other:?}"),
        }

        store.delete_target(a.id).await.unwrap();
        assert!(matches!(
            store.delete_target(a.id).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(store.target(a.id).await.unwrap(), None);
        // A deleted name can be used again.
        store.create_target(&spec("sw-a"), default).await.unwrap();
    }

    async fn target_references_and_validation_are_checked(store: Store) {
        install_addons(&store).await;

        let mut s = spec("t1");
        s.addon_id = WEBHOOK_ONLY.into();
        let m = invalid_message(store.create_target(&s, 60).await);
        assert_eq!(m, "target field `addon_id`: addon `hooks` does not poll");
        assert!(matches!(
            store.addon_poll_spec(WEBHOOK_ONLY).await,
            Err(StoreError::Invalid(_))
        ));

        s.addon_id = "missing".into();
        let m = invalid_message(store.create_target(&s, 60).await);
        assert_eq!(
            m,
            "target field `addon_id`: no addon `missing` is installed"
        );

        let mut s = spec("t1");
        s.credentials = Some("lab".into());
        let m = invalid_message(store.create_target(&s, 60).await);
        assert_eq!(m, "target field `credentials`: no credential named `lab`");
        store
            .set_credential("lab", &community("c0mm"))
            .await
            .unwrap();
        let t = store.create_target(&s, 60).await.unwrap();
        assert_eq!(t.credentials.as_deref(), Some("lab"));

        // What TargetSpec::validate refuses, the store refuses, naming the field.
        let mut s = spec("bad name");
        assert!(invalid_message(store.create_target(&s, 60).await).contains("`name`"));
        s = spec("t2");
        s.address = "not an address".into();
        assert!(invalid_message(store.create_target(&s, 60).await).contains("`address`"));
        s = spec("t2");
        s.schedule = Some(Schedule::Cron("every day".into()));
        assert!(invalid_message(store.create_target(&s, 60).await).contains("`schedule`"));
        // A zero default interval is refused too, not turned into a busy loop.
        let m = invalid_message(store.create_target(&spec("t2"), 0).await);
        assert!(m.contains("`schedule`"), "{m}");

        // Updates check the same things, after finding the target.
        let mut s = spec("t1");
        s.addon_id = WEBHOOK_ONLY.into();
        assert!(invalid_message(store.update_target(t.id, &s, 60).await).contains("does not poll"));
        assert!(matches!(
            store.update_target(999_999, &spec("t1"), 60).await,
            Err(StoreError::NotFound)
        ));
        // Nothing half-written.
        assert_eq!(
            store.targets(&TargetFilter::default()).await.unwrap(),
            vec![t]
        );
    }

    /// Writes poll results directly, standing in for the scheduler.
    async fn record_polls(store: &Store, id: i64) {
        let at = now();
        with_pool!(store, write, |pool| {
            sqlx::query(
                "UPDATE targets SET last_poll_at = $2, last_poll_status = 'ok', \
                     last_poll_duration_ms = 12, last_success_at = $2, polls_total = 3, \
                     poll_failures = 1 WHERE id = $1",
            )
            .bind(id)
            .bind(at)
            .execute(pool)
            .await
            .unwrap();
        });
    }

    async fn update_keeps_status_and_phase_unless_schedule_changes(store: Store) {
        install_addons(&store).await;
        store
            .set_credential("lab", &community("c0mm"))
            .await
            .unwrap();
        let original = store.create_target(&spec("edge-1"), 120).await.unwrap();
        record_polls(&store, original.id).await;
        let polled = store.target(original.id).await.unwrap().unwrap();
        assert_eq!(polled.status.polls_total, 3);

        // Same schedule, other fields: due time and poll status stay.
        let mut s = spec("edge-1-renamed");
        s.address = "https://edge-1.example.net/api".into();
        s.config = json!({ "k": "v" }).as_object().unwrap().clone();
        s.credentials = Some("lab".into());
        let updated = store.update_target(original.id, &s, 120).await.unwrap();
        assert_eq!(updated.name, "edge-1-renamed");
        assert_eq!(updated.address, s.address);
        assert_eq!(updated.config, s.config);
        assert_eq!(updated.credentials.as_deref(), Some("lab"));
        assert_eq!(updated.status, polled.status);
        assert_eq!(updated.created_at, original.created_at);
        assert!(updated.updated_at >= original.updated_at);

        // A new schedule moves the due time; the status stays.
        s.schedule = Some(Schedule::Cron("0 3 * * *".into()));
        let cron = store.update_target(original.id, &s, 120).await.unwrap();
        assert_eq!(cron.schedule, Schedule::Cron("0 3 * * *".into()));
        let due = cron.status.next_due_at.unwrap();
        assert_eq!(
            due,
            Schedule::Cron("0 3 * * *".into()).next_after(due - Duration::days(1))
        );
        assert_eq!(cron.status.polls_total, 3);
        assert_eq!(cron.status.last_poll_status.as_deref(), Some("ok"));

        // PUT semantics: leaving the schedule out means the addon's default again.
        s.schedule = None;
        s.credentials = None;
        let back = store.update_target(original.id, &s, 120).await.unwrap();
        assert_eq!(back.schedule, Schedule::IntervalSeconds(120));
        assert_eq!(back.credentials, None);

        // Renaming onto another target's name is a conflict and changes nothing.
        let other = store.create_target(&spec("edge-2"), 120).await.unwrap();
        match store.update_target(other.id, &s, 120).await {
            Err(StoreError::Conflict(m)) => assert!(m.contains("`edge-1-renamed`"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.target(other.id).await.unwrap().unwrap(), other);
    }

    async fn enable_and_disable_move_the_due_time(store: Store) {
        install_addons(&store).await;
        let t = store.create_target(&spec("r1"), 120).await.unwrap();
        record_polls(&store, t.id).await;

        let off = store.set_target_enabled(t.id, false).await.unwrap();
        assert!(!off.enabled);
        assert_eq!(off.status.next_due_at, None);
        assert_eq!(off.status.polls_total, 3, "poll status survives");
        // Disabling again is harmless.
        assert_eq!(
            store.set_target_enabled(t.id, false).await.unwrap().status,
            off.status
        );

        let before = now();
        let on = store.set_target_enabled(t.id, true).await.unwrap();
        assert!(on.enabled);
        let due = on.status.next_due_at.unwrap();
        assert!(
            due >= before && due <= now() + Duration::seconds(60),
            "{due}"
        );
        // Enabling an enabled target keeps its phase.
        let again = store.set_target_enabled(t.id, true).await.unwrap();
        assert_eq!(again.status.next_due_at, Some(due));

        // Re-enabling through a full update schedules it as well.
        let mut s = spec("r1");
        s.enabled = false;
        assert_eq!(
            store
                .update_target(t.id, &s, 120)
                .await
                .unwrap()
                .status
                .next_due_at,
            None
        );
        s.enabled = true;
        assert!(
            store
                .update_target(t.id, &s, 120)
                .await
                .unwrap()
                .status
                .next_due_at
                .is_some()
        );

        assert!(matches!(
            store.set_target_enabled(999_999, true).await,
            Err(StoreError::NotFound)
        ));
    }

    /// One credential of each kind, with secrets that all contain `s3cret`.
    fn every_kind() -> Vec<(&'static str, CredentialSecret)> {
        let user = UsmUser::from_passwords(
            "poller",
            Some((AuthProtocol::Sha256, "s3cret-auth")),
            Some((PrivProtocol::Aes128, "s3cret-priv")),
        )
        .unwrap();
        vec![
            ("community", community("s3cret-community")),
            ("usm", CredentialSecret::SnmpUsm { user }),
            (
                "basic",
                CredentialSecret::HttpBasic {
                    username: "api".into(),
                    password: "s3cret-pw".into(),
                },
            ),
            (
                "bearer",
                CredentialSecret::HttpBearer {
                    token: "s3cret-token".into(),
                },
            ),
            (
                "header",
                CredentialSecret::HttpHeader {
                    name: "X-Api-Key".into(),
                    value: "s3cret-key".into(),
                },
            ),
            (
                "ssh-pw",
                CredentialSecret::SshPassword {
                    username: "ops".into(),
                    password: "s3cret-ssh".into(),
                },
            ),
            (
                "ssh-key",
                CredentialSecret::SshKey {
                    username: "ops".into(),
                    private_key: "-----BEGIN OPENSSH PRIVATE KEY----- s3cret".into(),
                    passphrase: Some("s3cret-phrase".into()),
                },
            ),
        ]
    }

    async fn credentials_roundtrip_without_showing_secrets(store: Store) {
        let kinds = every_kind();
        for (name, secret) in &kinds {
            let summary = store.set_credential(name, secret).await.unwrap();
            assert_eq!(summary.name, *name);
            assert_eq!(summary.kind, secret.kind());
            assert_eq!(summary.public, secret.public());
            assert_eq!(summary.created_at, summary.updated_at);
        }
        let listed = store.credentials().await.unwrap();
        let mut names: Vec<&str> = kinds.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        assert_eq!(
            listed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            names
        );
        let shown = format!("{listed:?} {}", serde_json::to_string(&listed).unwrap());
        assert!(!shown.contains("s3cret"), "{shown}");
        let usm = store.credential("usm").await.unwrap().unwrap();
        assert_eq!(
            usm.public,
            json!({ "user": "poller", "auth_protocol": "sha256", "priv_protocol": "aes128" })
        );

        for (name, secret) in &kinds {
            assert_eq!(
                store.credential_secret(name).await.unwrap().as_ref(),
                Some(secret)
            );
        }
        assert_eq!(store.credential("nope").await.unwrap(), None);
        assert_eq!(store.credential_secret("nope").await.unwrap(), None);

        // Replacing keeps created_at, moves updated_at, and may change the kind.
        let first = store.credential("community").await.unwrap().unwrap();
        let bearer = CredentialSecret::HttpBearer {
            token: "rotated".into(),
        };
        let replaced = store.set_credential("community", &bearer).await.unwrap();
        assert_eq!(replaced.kind, "http_bearer");
        assert_eq!(replaced.created_at, first.created_at);
        assert!(replaced.updated_at > first.updated_at);
        assert_eq!(
            store.credential_secret("community").await.unwrap(),
            Some(bearer)
        );

        match store.set_credential("has space", &community("x")).await {
            Err(StoreError::Invalid(m)) => assert!(m.starts_with("credential field `name`"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            store.delete_credential("nope").await,
            Err(StoreError::NotFound)
        ));
    }

    async fn credential_in_use_cannot_be_deleted(store: Store) {
        install_addons(&store).await;
        store
            .set_credential("shared", &community("c"))
            .await
            .unwrap();
        let mut ids = Vec::new();
        for i in 0..12 {
            let mut s = spec(&format!("dev-{i:02}"));
            s.credentials = Some("shared".into());
            ids.push(store.create_target(&s, 60).await.unwrap().id);
        }
        match store.delete_credential("shared").await {
            Err(StoreError::Conflict(m)) => assert_eq!(
                m,
                "credential `shared` is used by targets `dev-00`, `dev-01`, `dev-02`, `dev-03`, \
                 `dev-04`, `dev-05`, `dev-06`, `dev-07`, `dev-08`, `dev-09` and 2 more; point \
                 them at another credential or remove them first"
            ),
            other => panic!("{other:?}"),
        }
        assert!(
            store.credential("shared").await.unwrap().is_some(),
            "rolled back"
        );
        for id in &ids[1..] {
            store.delete_target(*id).await.unwrap();
        }
        match store.delete_credential("shared").await {
            Err(StoreError::Conflict(m)) => {
                assert_eq!(
                    m,
                    "credential `shared` is used by target `dev-00`; point it at another \
                     credential or remove it first"
                )
            }
            other => panic!("{other:?}"),
        }
        store.delete_target(ids[0]).await.unwrap();
        store.delete_credential("shared").await.unwrap();
        assert_eq!(store.credential("shared").await.unwrap(), None);
    }

    /// Creating targets that use a credential while deleting it, from several tasks: whatever
    /// order the database picks, no target ends up naming a credential that is gone.
    async fn concurrent_reference_and_delete_never_dangle(store: Store) {
        install_addons(&store).await;
        for round in 0..20 {
            let cred = format!("c{round}");
            store.set_credential(&cred, &community("x")).await.unwrap();
            let creates = (0..4).map(|i| {
                let store = store.clone();
                let mut s = spec(&format!("r{round}-t{i}"));
                s.credentials = Some(cred.clone());
                tokio::spawn(async move { store.create_target(&s, 60).await })
            });
            let delete = {
                let store = store.clone();
                let cred = cred.clone();
                tokio::spawn(async move { store.delete_credential(&cred).await })
            };
            let created: Vec<_> = futures_join(creates.collect()).await;
            let deleted = delete.await.unwrap();
            let made = created.iter().filter(|r| r.is_ok()).count();
            for r in &created {
                match r {
                    Ok(_) | Err(StoreError::Invalid(_)) => {}
                    Err(e) => panic!("round {round}: {e:?}"),
                }
            }
            match deleted {
                Ok(()) => assert_eq!(made, 0, "round {round}: deleted while in use"),
                Err(StoreError::Conflict(_)) => {
                    assert!(made > 0, "round {round}: refused with no users");
                    assert!(store.credential(&cred).await.unwrap().is_some());
                }
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
    }

    async fn futures_join<T: Send + 'static>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }
}
