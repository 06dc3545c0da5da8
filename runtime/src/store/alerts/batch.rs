//! Applying the alert engine's decisions (raise, clear) in batches: the ingestion hot path,
//! one transaction for many events, with the history entries of what changed and retries on
//! transient conflicts.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Pool;
use sqlx::postgres::Postgres;
use sqlx::sqlite::Sqlite;
use sqlx::types::Json;

use super::AlertEventKind;
use crate::alert::{ActionOutcome, AlertAction, AlertStatus, ClearAlert, NewAlert};
use crate::store::{Context, Store, StoreError, begin_write, ts};

/// How many times a batch is tried when the database reports a transient conflict (see
/// [`StoreError::is_transient`]). Conflicts come from other processes or nodes writing the same
/// alerts; a few retries with a growing pause let them finish, and more would only hide a
/// database that is stuck.
const BATCH_ATTEMPTS: u32 = 5;

/// Pause before the first retry; doubled for each later one (20, 40, 80, 160 ms).
const BATCH_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Opens an alert, or counts one more occurrence of the open alert with the same fingerprint.
///
/// The conflict target is the partial unique index on open fingerprints, so the database
/// decides atomically between the two, whatever else writes concurrently. On a duplicate the
/// status is left alone (an acknowledged alert stays acknowledged), what the latest event said
/// (severity, title, message, fields) replaces the old text, and `last_seen_at` only moves
/// forward, in case batches from several nodes commit out of order. `first_seen_at`,
/// `occurred_at` and `created_at` keep the first occurrence's values. An inserted row has count
/// 1 and an updated one at least 2, which is how the caller tells the two apart.
///
/// A new alert opens in status `$13` (`active`, or `suppressed` when a silence covers it). An
/// existing one keeps its status here and returns it, so that the caller can tell whether a
/// silence starting or ending changes it (see [`Store::apply_batch_silenced`]).
const RAISE_SQL: &str = "INSERT INTO alerts (addon_id, fingerprint, alert_type, device_ip, \
         device_name, severity, category, title, message, status, fields, occurrence_count, \
         occurred_at, first_seen_at, last_seen_at, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $13, $10, 1, $11, $12, $12, $12, $12) \
     ON CONFLICT (fingerprint) WHERE status <> 'resolved' DO UPDATE SET \
         occurrence_count = alerts.occurrence_count + 1, \
         last_seen_at = CASE WHEN excluded.last_seen_at > alerts.last_seen_at \
                             THEN excluded.last_seen_at ELSE alerts.last_seen_at END, \
         severity = excluded.severity, \
         title = excluded.title, \
         message = excluded.message, \
         fields = excluded.fields, \
         updated_at = excluded.updated_at \
     RETURNING id, occurrence_count, status";

/// Resolves the open alert with a fingerprint, if there is one (the unique index guarantees at
/// most one). The addon must match too: an addon can never resolve another addon's alert.
const CLEAR_SQL: &str = "UPDATE alerts \
     SET status = 'resolved', resolved_at = $3, resolved_by = $4, updated_at = $3 \
     WHERE fingerprint = $1 AND addon_id = $2 AND status <> 'resolved' \
     RETURNING id";

/// Moves an open alert between `active` and `suppressed` when a silence starts or ends covering
/// it (`$2` the new status, `$3` the time).
const SILENCE_STATUS_SQL: &str = "UPDATE alerts SET status = $2, updated_at = $3 WHERE id = $1";

/// History entries of a batch: the alerts it created and resolved, and the ones a silence
/// moved in or out of suppression. They are inserted together in one statement at the end of
/// the batch's transaction rather than one statement each, because each statement is a round
/// trip (to PostgreSQL, or to sqlx's SQLite worker thread) and the batch path is the hot path.
#[derive(Serialize)]
struct BatchEvent {
    alert_id: i64,
    /// Formatted as sqlx writes timestamps to SQLite (RFC 3339, `+00:00`), which PostgreSQL
    /// parses too; see the note on timestamps in migrations/sqlite/0001_init.sql.
    at: String,
    kind: &'static str,
    actor: String,
    details: Map<String, Value>,
}

impl BatchEvent {
    fn new(
        alert_id: i64,
        at: DateTime<Utc>,
        kind: AlertEventKind,
        actor: String,
        details: Map<String, Value>,
    ) -> BatchEvent {
        BatchEvent {
            alert_id,
            at: ts(at).to_rfc3339_opts(SecondsFormat::AutoSi, false),
            kind: kind.as_str(),
            actor,
            details,
        }
    }
}

/// Inserts a batch's history entries from `$1`, a JSON array of [`BatchEvent`], in array order
/// (so that ids follow the order of the changes). Each database unpacks JSON its own way.
trait BatchEvents: sqlx::Database {
    const INSERT_EVENTS: &'static str;
}

impl BatchEvents for Sqlite {
    const INSERT_EVENTS: &'static str = "INSERT INTO alert_events \
             (alert_id, at, kind, actor, note, details) \
         SELECT json_extract(e.value, '$.alert_id'), json_extract(e.value, '$.at'), \
             json_extract(e.value, '$.kind'), json_extract(e.value, '$.actor'), NULL, \
             json_extract(e.value, '$.details') \
         FROM json_each($1) AS e ORDER BY e.key";
}

impl BatchEvents for Postgres {
    const INSERT_EVENTS: &'static str = "INSERT INTO alert_events \
             (alert_id, at, kind, actor, note, details) \
         SELECT CAST(e.v ->> 'alert_id' AS BIGINT), CAST(e.v ->> 'at' AS TIMESTAMPTZ), \
             e.v ->> 'kind', e.v ->> 'actor', NULL, e.v -> 'details' \
         FROM jsonb_array_elements($1) WITH ORDINALITY AS e(v, n) ORDER BY e.n";
}

fn insert_events_sql<DB: BatchEvents>(_: &Pool<DB>) -> &'static str {
    DB::INSERT_EVENTS
}

/// `{"status": ..., "silence_id": ...}` for a `created` entry.
fn created_details(status: AlertStatus, silence: Option<i64>) -> Map<String, Value> {
    let mut details = Map::new();
    details.insert("status".into(), status.as_str().into());
    if let Some(id) = silence {
        details.insert("silence_id".into(), id.into());
    }
    details
}

impl Store {
    /// Carries out the engine's decisions, in order, in one transaction, and says what each one
    /// did (outcomes in the same order as `actions`). Either every action is applied or, on
    /// error, none is.
    ///
    /// Silences are not consulted: new alerts open `active`, and open alerts keep their status.
    /// The writer uses [`Store::apply_batch_silenced`].
    pub async fn apply_batch(
        &self,
        actions: &[AlertAction],
    ) -> Result<Vec<ActionOutcome>, StoreError> {
        self.apply_batch_retrying(actions, None).await
    }

    /// [`Store::apply_batch`] with what the silences in force decided: `silenced[i]` is the id
    /// of the silence covering `actions[i]` (for a raise; ignored for a clear), and must have
    /// one entry per action.
    ///
    /// - a raise covered by a silence opens its alert `suppressed`, and moves an open `active`
    ///   alert with its fingerprint to `suppressed`;
    /// - a raise covered by none opens its alert `active`, and moves an open `suppressed` one
    ///   back to `active`: this is how alerts come back once their silence has ended (nothing
    ///   changes at the moment it ends; the next occurrence decides);
    /// - an `acknowledged` alert stays acknowledged either way: an operator has it.
    ///
    /// This is the ingestion hot path: the batching writer calls it with many events at once, so
    /// that many alerts share one commit (and one fsync). Each action is one prepared statement,
    /// cached per connection by sqlx, and the history entries of the alerts created, resolved or
    /// moved in or out of suppression are one more for the whole batch. Transient conflicts with
    /// other writers are retried here (the failed attempt was rolled back, so nothing is applied
    /// twice).
    pub async fn apply_batch_silenced(
        &self,
        actions: &[AlertAction],
        silenced: &[Option<i64>],
    ) -> Result<Vec<ActionOutcome>, StoreError> {
        if silenced.len() != actions.len() {
            return Err(StoreError::Invalid(format!(
                "{} silence decisions for {} alert actions",
                silenced.len(),
                actions.len()
            )));
        }
        self.apply_batch_retrying(actions, Some(silenced)).await
    }

    async fn apply_batch_retrying(
        &self,
        actions: &[AlertAction],
        silenced: Option<&[Option<i64>]>,
    ) -> Result<Vec<ActionOutcome>, StoreError> {
        if actions.is_empty() {
            return Ok(Vec::new());
        }
        let mut attempt = 1;
        loop {
            match self.apply_batch_once(actions, silenced).await {
                Err(error) if error.is_transient() && attempt < BATCH_ATTEMPTS => {
                    let pause = BATCH_RETRY_PAUSE * 2u32.pow(attempt - 1);
                    tracing::warn!(
                        attempt,
                        actions = actions.len(),
                        error = %ErrorChain(&error),
                        "alert batch hit a transient database conflict; retrying"
                    );
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn apply_batch_once(
        &self,
        actions: &[AlertAction],
        silenced: Option<&[Option<i64>]>,
    ) -> Result<Vec<ActionOutcome>, StoreError> {
        const OP: &str = "applying an alert batch";
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let mut outcomes = Vec::with_capacity(actions.len());
            let mut events: Vec<BatchEvent> = Vec::new();
            for (index, action) in actions.iter().enumerate() {
                let outcome = match action {
                    AlertAction::Raise(alert) => {
                        let NewAlert {
                            addon_id,
                            fingerprint,
                            alert_type,
                            device_ip,
                            device_name,
                            severity,
                            category,
                            title,
                            message,
                            fields,
                            occurred_at,
                            received_at,
                        } = alert;
                        let silence = silenced.and_then(|s| s[index]);
                        let status = match silence {
                            Some(_) => AlertStatus::Suppressed,
                            None => AlertStatus::Active,
                        };
                        let (alert_id, occurrence_count, current): (i64, i64, String) =
                            sqlx::query_as(RAISE_SQL)
                                .bind(addon_id)
                                .bind(fingerprint)
                                .bind(alert_type)
                                .bind(device_ip)
                                .bind(device_name)
                                .bind(severity.as_str())
                                .bind(category)
                                .bind(title)
                                .bind(message)
                                .bind(Json(fields))
                                .bind(ts(*occurred_at))
                                .bind(ts(*received_at))
                                .bind(status.as_str())
                                .fetch_one(&mut *tx)
                                .await
                                .context(OP)?;
                        if occurrence_count == 1 {
                            events.push(BatchEvent::new(
                                alert_id,
                                *received_at,
                                AlertEventKind::Created,
                                format!("addon:{addon_id}"),
                                created_details(status, silence),
                            ));
                            ActionOutcome::Created { alert_id }
                        } else {
                            // Only a writer that consulted the silences may move an alert in or
                            // out of suppression.
                            let change = match (silenced.is_some(), current.as_str(), silence) {
                                (true, "active", Some(silence_id)) => Some((
                                    AlertStatus::Suppressed,
                                    AlertEventKind::Suppressed,
                                    format!("silence:{silence_id}"),
                                    Map::from_iter([("silence_id".into(), silence_id.into())]),
                                )),
                                (true, "suppressed", None) => Some((
                                    AlertStatus::Active,
                                    AlertEventKind::Unsuppressed,
                                    format!("addon:{addon_id}"),
                                    Map::new(),
                                )),
                                _ => None,
                            };
                            if let Some((status, kind, actor, details)) = change {
                                sqlx::query(SILENCE_STATUS_SQL)
                                    .bind(alert_id)
                                    .bind(status.as_str())
                                    .bind(ts(*received_at))
                                    .execute(&mut *tx)
                                    .await
                                    .context(OP)?;
                                events.push(BatchEvent::new(
                                    alert_id,
                                    *received_at,
                                    kind,
                                    actor,
                                    details,
                                ));
                            }
                            ActionOutcome::Updated {
                                alert_id,
                                occurrence_count,
                            }
                        }
                    }
                    AlertAction::Clear(clear) => {
                        let ClearAlert {
                            addon_id,
                            fingerprint,
                            cleared_by,
                            received_at,
                            alert_type: _,
                        } = clear;
                        let resolved_by = format!("clear:{cleared_by}");
                        let resolved: Option<i64> = sqlx::query_scalar(CLEAR_SQL)
                            .bind(fingerprint)
                            .bind(addon_id)
                            .bind(ts(*received_at))
                            .bind(&resolved_by)
                            .fetch_optional(&mut *tx)
                            .await
                            .context(OP)?;
                        match resolved {
                            Some(alert_id) => {
                                events.push(BatchEvent::new(
                                    alert_id,
                                    *received_at,
                                    AlertEventKind::Resolved,
                                    resolved_by,
                                    Map::new(),
                                ));
                                ActionOutcome::Resolved { alert_id }
                            }
                            None => ActionOutcome::ClearUnmatched,
                        }
                    }
                };
                outcomes.push(outcome);
            }
            if !events.is_empty() {
                sqlx::query(insert_events_sql(pool))
                    .bind(Json(&events))
                    .execute(&mut *tx)
                    .await
                    .context(OP)?;
            }
            tx.commit().await.context(OP)?;
            Ok(outcomes)
        })
    }
}

/// Formats an error with its sources, for logs (the `Display` of [`StoreError`] alone says only
/// what the store was doing).
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}
