//! Alerts: applying the engine's raise/clear decisions in batches (the ingestion hot path),
//! operators' actions on alerts, each alert's history, and reading alerts back for the API.
//!
//! Every change of an alert's status, and every note, is recorded in `alert_events` in the
//! transaction that makes it, with who made it: `addon:<id>` for an alert its addon created or
//! brought back from suppression, `clear:<alert type>` for a clearing event, `silence:<id>` for a
//! silence that suppressed an open alert, and whatever actor the caller names for an operator's
//! action. Repeated occurrences are not recorded one by one: `occurrence_count`, `first_seen_at`
//! and `last_seen_at` on the alert summarise them.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::Pool;
use sqlx::postgres::Postgres;
use sqlx::sqlite::Sqlite;
use sqlx::types::Json;

use super::{Context, Store, StoreError, begin_write, now, ts};
use crate::alert::{
    ActionOutcome, AlertAction, AlertFilter, AlertStatus, ClearAlert, NewAlert, StoredAlert,
};

/// Page size when the caller asks for none (`limit: 0`).
pub const LIST_LIMIT_DEFAULT: u32 = 50;

/// Largest page. A bigger one would hold a read connection and build a response of many
/// megabytes for one request; clients page with `before_id` instead.
pub const LIST_LIMIT_MAX: u32 = 1000;

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

/// Records one entry of an alert's history.
const INSERT_EVENT_SQL: &str = "INSERT INTO alert_events \
         (alert_id, at, kind, actor, note, details) VALUES ($1, $2, $3, $4, $5, $6) \
     RETURNING id";

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

/// The columns of [`EventRow`].
const EVENT_COLUMNS: &str = "id, alert_id, at, kind, actor, note, details";

/// Records an entry of an alert's history in the transaction `$tx` and returns its id. A macro
/// because the body must compile once per backend, like `with_pool!`'s.
macro_rules! record_event {
    (
        $tx:ident, $op:expr, $alert_id:expr, $at:expr, $kind:expr, $actor:expr, $note:expr,
        $details:expr
    ) => {{
        let id: i64 = sqlx::query_scalar(INSERT_EVENT_SQL)
            .bind($alert_id)
            .bind(ts($at))
            .bind($kind.as_str())
            .bind($actor)
            .bind($note)
            .bind(Json($details))
            .fetch_one(&mut *$tx)
            .await
            .context($op)?;
        id
    }};
}

/// The columns of [`AlertRow`], in one place for every query that reads whole alerts.
const ALERT_COLUMNS: &str = "id, addon_id, fingerprint, alert_type, device_ip, device_name, \
     severity, category, title, message, status, fields, occurrence_count, occurred_at, \
     first_seen_at, last_seen_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by";

/// An alert row as the database returns it, before its enums are parsed.
#[derive(sqlx::FromRow)]
struct AlertRow {
    id: i64,
    addon_id: String,
    fingerprint: String,
    alert_type: String,
    device_ip: Option<String>,
    device_name: Option<String>,
    severity: String,
    category: String,
    title: String,
    message: String,
    status: String,
    fields: Json<BTreeMap<String, String>>,
    occurrence_count: i64,
    occurred_at: DateTime<Utc>,
    first_seen_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    acknowledged_at: Option<DateTime<Utc>>,
    acknowledged_by: Option<String>,
    resolved_at: Option<DateTime<Utc>>,
    resolved_by: Option<String>,
}

impl TryFrom<AlertRow> for StoredAlert {
    type Error = StoreError;

    fn try_from(row: AlertRow) -> Result<StoredAlert, StoreError> {
        let corrupt =
            |e: crate::alert::UnknownVariant| StoreError::Corrupt(format!("alert {}: {e}", row.id));
        Ok(StoredAlert {
            severity: row.severity.parse().map_err(corrupt)?,
            status: row.status.parse().map_err(corrupt)?,
            id: row.id,
            addon_id: row.addon_id,
            fingerprint: row.fingerprint,
            alert_type: row.alert_type,
            device_ip: row.device_ip,
            device_name: row.device_name,
            category: row.category,
            title: row.title,
            message: row.message,
            fields: row.fields.0,
            occurrence_count: row.occurrence_count,
            occurred_at: row.occurred_at,
            first_seen_at: row.first_seen_at,
            last_seen_at: row.last_seen_at,
            acknowledged_at: row.acknowledged_at,
            acknowledged_by: row.acknowledged_by,
            resolved_at: row.resolved_at,
            resolved_by: row.resolved_by,
        })
    }
}

/// What happened to an alert, as its history lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertEventKind {
    /// Opened by its addon, `active` or (under a silence) `suppressed`.
    Created,
    Acknowledged,
    Unacknowledged,
    Resolved,
    /// A silence in force covered an occurrence of the open alert.
    Suppressed,
    /// An occurrence arrived with no silence covering it any more.
    Unsuppressed,
    Note,
}

impl AlertEventKind {
    pub const ALL: [AlertEventKind; 7] = [
        AlertEventKind::Created,
        AlertEventKind::Acknowledged,
        AlertEventKind::Unacknowledged,
        AlertEventKind::Resolved,
        AlertEventKind::Suppressed,
        AlertEventKind::Unsuppressed,
        AlertEventKind::Note,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertEventKind::Created => "created",
            AlertEventKind::Acknowledged => "acknowledged",
            AlertEventKind::Unacknowledged => "unacknowledged",
            AlertEventKind::Resolved => "resolved",
            AlertEventKind::Suppressed => "suppressed",
            AlertEventKind::Unsuppressed => "unsuppressed",
            AlertEventKind::Note => "note",
        }
    }
}

/// One entry of an alert's history.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AlertEvent {
    /// The entry's id, which orders the history. `None` for an entry derived from the alert
    /// itself rather than recorded: the creation of an alert older than the history table, and
    /// a resolution that the expiry job made (see [`Store::alert_history`]).
    pub id: Option<i64>,
    pub alert_id: i64,
    pub at: DateTime<Utc>,
    pub kind: AlertEventKind,
    /// Who: `addon:<id>`, `clear:<alert type>`, `silence:<id>`, `system:expiry`, or the
    /// operator's principal.
    pub actor: String,
    pub note: Option<String>,
    /// What the kind needs beyond actor and note: `status` and `silence_id` for `created`,
    /// `silence_id` for `suppressed`.
    pub details: Map<String, Value>,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    alert_id: i64,
    at: DateTime<Utc>,
    kind: String,
    actor: String,
    note: Option<String>,
    details: Json<Map<String, Value>>,
}

impl TryFrom<EventRow> for AlertEvent {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<AlertEvent, StoreError> {
        let kind = AlertEventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == row.kind)
            .ok_or_else(|| {
                StoreError::Corrupt(format!("alert event {}: kind `{}`", row.id, row.kind))
            })?;
        Ok(AlertEvent {
            id: Some(row.id),
            alert_id: row.alert_id,
            at: row.at,
            kind,
            actor: row.actor,
            note: row.note,
            details: row.details.0,
        })
    }
}

/// What an operator does to an alert (or to many at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertOp {
    /// `active` or `suppressed` → `acknowledged`.
    Acknowledge,
    /// `acknowledged` → `active`.
    Unacknowledge,
    /// Any open status → `resolved`.
    Resolve,
    /// Adds a note, in any status (resolved alerts included); the status does not change.
    Note,
}

impl AlertOp {
    fn event_kind(self) -> AlertEventKind {
        match self {
            AlertOp::Acknowledge => AlertEventKind::Acknowledged,
            AlertOp::Unacknowledge => AlertEventKind::Unacknowledged,
            AlertOp::Resolve => AlertEventKind::Resolved,
            AlertOp::Note => AlertEventKind::Note,
        }
    }

    /// The statement that carries the operation out on alert `$1` if its status allows, and
    /// returns the alert as changed (no row when it does not exist or its status forbids
    /// this), with whether it takes `$2` (the time) and `$3` (the actor). PostgreSQL cannot
    /// type a parameter the text never uses, so only the used ones are bound.
    fn sql(self) -> (String, bool, bool) {
        let (set, from, actor) = match self {
            AlertOp::Acknowledge => (
                "status = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3, \
                 updated_at = $2",
                "status IN ('active', 'suppressed')",
                true,
            ),
            AlertOp::Unacknowledge => (
                "status = 'active', acknowledged_at = NULL, acknowledged_by = NULL, \
                 updated_at = $2",
                "status = 'acknowledged'",
                false,
            ),
            AlertOp::Resolve => (
                "status = 'resolved', resolved_at = $2, resolved_by = $3, updated_at = $2",
                "status <> 'resolved'",
                true,
            ),
            AlertOp::Note => {
                return (
                    format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"),
                    false,
                    false,
                );
            }
        };
        let sql =
            format!("UPDATE alerts SET {set} WHERE id = $1 AND {from} RETURNING {ALERT_COLUMNS}");
        (sql, true, actor)
    }

    /// Why the operation did not apply to alert `id`, which is in `status` (acknowledged by
    /// `by`), or does not exist.
    fn refusal(self, id: i64, current: Option<(String, Option<String>)>) -> StoreError {
        let Some((status, by)) = current else {
            return StoreError::NotFound;
        };
        StoreError::Conflict(match (self, status.as_str()) {
            (AlertOp::Resolve, _) => format!("alert {id} is resolved already"),
            (_, "resolved") => format!("alert {id} is resolved"),
            (AlertOp::Acknowledge, _) => format!(
                "alert {id} is already acknowledged by {}",
                by.as_deref().unwrap_or("someone")
            ),
            (_, status) => format!("alert {id} is not acknowledged (it is {status})"),
        })
    }
}

/// What an operator's action did to one alert: the alert as it is now, and the history entry
/// that records the action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertChange {
    pub alert: StoredAlert,
    pub event: AlertEvent,
}

/// Longest note, in bytes.
pub const MAX_NOTE_LEN: usize = 4096;

/// A note as it is stored (trimmed), or why it cannot be.
pub fn check_note(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.len() > MAX_NOTE_LEN {
        return Err(format!("is longer than {MAX_NOTE_LEN} bytes"));
    }
    Ok(text.to_owned())
}

/// One page of an alert's history, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct HistoryPage {
    /// The alert as it is now; its `occurrence_count`, `first_seen_at` and `last_seen_at` are
    /// the occurrences, which are not entries of their own.
    pub alert: StoredAlert,
    pub items: Vec<AlertEvent>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next_after: Option<i64>,
}

/// [`AlertFilter`] and the filters the REST API adds to it. Results are newest first by id,
/// paged with `filter.before_id`, like [`Store::list_alerts`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertSearch {
    pub filter: AlertFilter,
    /// Only alerts last seen at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only alerts last seen before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Only alerts whose title or message contains this text, ignoring the case of ASCII
    /// letters. This is a scan of the rows the other filters leave (no index serves it).
    pub text: Option<String>,
}

/// A value bound to a dynamically built query.
enum Bind {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
}

/// `text` as a LIKE pattern matching it anywhere, with LIKE's wildcards (and the escape
/// character) escaped so that they match themselves.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Builds the list query with only the conditions the filter uses, rather than one static text
/// with `($1 IS NULL OR status = $1)` terms: each combination then gets its own (cached) plan
/// that can use the matching index, which a generic plan over optional terms cannot.
fn list_query(search: &AlertSearch) -> (String, Vec<Bind>) {
    let filter = &search.filter;
    let mut conditions = Vec::new();
    let mut binds = Vec::new();
    let mut add = |binds: &mut Vec<Bind>, bind: Bind, condition: &dyn Fn(usize) -> String| {
        binds.push(bind);
        conditions.push(condition(binds.len()));
    };
    if let Some(status) = filter.status {
        add(&mut binds, Bind::Text(status.as_str().to_owned()), &|n| {
            format!("status = ${n}")
        });
    }
    if let Some(severity) = filter.severity {
        add(&mut binds, Bind::Text(severity.as_str().to_owned()), &|n| {
            format!("severity = ${n}")
        });
    }
    if let Some(addon_id) = &filter.addon_id {
        add(&mut binds, Bind::Text(addon_id.clone()), &|n| {
            format!("addon_id = ${n}")
        });
    }
    if let Some(device) = &filter.device {
        add(&mut binds, Bind::Text(device.clone()), &|n| {
            format!("(device_ip = ${n} OR device_name = ${n})")
        });
    }
    if let Some(since) = search.since {
        add(&mut binds, Bind::Time(ts(since)), &|n| {
            format!("last_seen_at >= ${n}")
        });
    }
    if let Some(until) = search.until {
        add(&mut binds, Bind::Time(ts(until)), &|n| {
            format!("last_seen_at < ${n}")
        });
    }
    if let Some(text) = &search.text {
        // LOWER on both sides rather than ILIKE (PostgreSQL only) or SQLite's LIKE (which
        // already ignores ASCII case, unlike PostgreSQL's), so that both databases agree.
        add(&mut binds, Bind::Text(contains_pattern(text)), &|n| {
            format!("(LOWER(title) LIKE ${n} ESCAPE '\\' OR LOWER(message) LIKE ${n} ESCAPE '\\')")
        });
    }
    if let Some(before_id) = filter.before_id {
        add(&mut binds, Bind::Int(before_id), &|n| format!("id < ${n}"));
    }
    binds.push(Bind::Int(i64::from(clamp_limit(filter.limit))));
    let mut sql = format!("SELECT {ALERT_COLUMNS} FROM alerts");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", binds.len()));
    (sql, binds)
}

/// A page size as the store serves it: 0 means [`LIST_LIMIT_DEFAULT`], and at most
/// [`LIST_LIMIT_MAX`].
fn clamp_limit(limit: u32) -> u32 {
    match limit {
        0 => LIST_LIMIT_DEFAULT,
        n => n.min(LIST_LIMIT_MAX),
    }
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

/// The history entries an alert's row implies but that were not recorded: its creation, when
/// it predates the history table, and its resolution by the expiry job (which resolves in bulk
/// without recording entries).
fn derived_created(alert: &StoredAlert) -> AlertEvent {
    AlertEvent {
        id: None,
        alert_id: alert.id,
        at: alert.first_seen_at,
        kind: AlertEventKind::Created,
        actor: format!("addon:{}", alert.addon_id),
        note: None,
        details: Map::new(),
    }
}

fn derived_resolved(alert: &StoredAlert) -> Option<AlertEvent> {
    (alert.status == AlertStatus::Resolved).then(|| AlertEvent {
        id: None,
        alert_id: alert.id,
        at: alert.resolved_at.unwrap_or(alert.last_seen_at),
        kind: AlertEventKind::Resolved,
        actor: alert
            .resolved_by
            .clone()
            .unwrap_or_else(|| "unknown".to_owned()),
        note: None,
        details: Map::new(),
    })
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

    /// Alerts matching `filter`, newest first; see [`AlertFilter`] for paging. The limit is
    /// clamped to 1..=[`LIST_LIMIT_MAX`], and 0 means [`LIST_LIMIT_DEFAULT`].
    pub async fn list_alerts(&self, filter: &AlertFilter) -> Result<Vec<StoredAlert>, StoreError> {
        self.search_alerts(&AlertSearch {
            filter: filter.clone(),
            ..AlertSearch::default()
        })
        .await
    }

    /// Alerts matching `search`, newest first, paged like [`Store::list_alerts`].
    pub async fn search_alerts(
        &self,
        search: &AlertSearch,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        let (sql, binds) = list_query(search);
        let rows: Vec<AlertRow> = with_pool!(self, read, |pool| {
            let mut query = sqlx::query_as(&sql);
            for bind in binds {
                query = match bind {
                    Bind::Text(text) => query.bind(text),
                    Bind::Int(int) => query.bind(int),
                    Bind::Time(time) => query.bind(time),
                };
            }
            query.fetch_all(pool).await.context("listing alerts")?
        });
        rows.into_iter().map(StoredAlert::try_from).collect()
    }

    /// One alert by id.
    pub async fn get_alert(&self, id: i64) -> Result<Option<StoredAlert>, StoreError> {
        let row: Option<AlertRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
                .context("reading an alert")?
        });
        row.map(StoredAlert::try_from).transpose()
    }

    /// The alerts with these ids, in no particular order; ids of alerts that do not exist are
    /// left out. One query: callers keep `ids` to a few thousand.
    pub(super) async fn alerts_by_ids(&self, ids: &[i64]) -> Result<Vec<StoredAlert>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE id IN ({})",
            placeholders.join(", ")
        );
        let rows: Vec<AlertRow> = with_pool!(self, read, |pool| {
            let mut query = sqlx::query_as(&sql);
            for id in ids {
                query = query.bind(id);
            }
            query
                .fetch_all(pool)
                .await
                .context("reading alerts by id")?
        });
        rows.into_iter().map(StoredAlert::try_from).collect()
    }

    /// Every open (not resolved) alert, newest first: what the console shows, read in one
    /// query through the `(status, id)` index.
    pub async fn open_alerts(&self) -> Result<Vec<StoredAlert>, StoreError> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts \
             WHERE status IN ('active', 'acknowledged', 'suppressed') ORDER BY id DESC"
        );
        let rows: Vec<AlertRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(&sql)
                .fetch_all(pool)
                .await
                .context("reading open alerts")?
        });
        rows.into_iter().map(StoredAlert::try_from).collect()
    }

    /// How many alerts are in each status, every status listed (zero included), in the order of
    /// [`AlertStatus::ALL`]. Reads only the status index.
    pub async fn count_alerts_by_status(&self) -> Result<Vec<(AlertStatus, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, read, |pool| {
            sqlx::query_as("SELECT status, COUNT(*) FROM alerts GROUP BY status")
                .fetch_all(pool)
                .await
                .context("counting alerts")?
        });
        let mut counts = AlertStatus::ALL.map(|status| (status, 0));
        for (status, count) in rows {
            let status: AlertStatus = status
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("alert status count: {e}")))?;
            if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
                slot.1 = count;
            }
        }
        Ok(counts.to_vec())
    }

    /// Moves an open alert to `status` on behalf of `actor`, records that in its history, and
    /// returns it as changed. A low-level setter without the checks of [`Store::act_on_alert`]
    /// (which is what the API uses): any open status may go to any other.
    ///
    /// - `Acknowledged` records `actor` and the time in `acknowledged_*`;
    /// - `Active` (un-acknowledge) clears them;
    /// - `Suppressed` changes the status only;
    /// - `Resolved` records `actor` (by convention `user:<name>`) and the time in `resolved_*`.
    ///
    /// [`StoreError::NotFound`] if no open alert has this id: a resolved alert is history and is
    /// never reopened (a recurrence opens a new alert instead, and reopening could collide with
    /// it on the open-fingerprint index).
    pub async fn set_alert_status(
        &self,
        id: i64,
        status: AlertStatus,
        actor: &str,
    ) -> Result<StoredAlert, StoreError> {
        const OP: &str = "changing an alert's status";
        // `$3` (the actor) appears only where it is recorded: PostgreSQL cannot type a
        // parameter that the text never uses, so it is bound only then.
        let (set, records_actor, kind) = match status {
            AlertStatus::Active => (
                "status = 'active', acknowledged_at = NULL, acknowledged_by = NULL, \
                 updated_at = $2",
                false,
                AlertEventKind::Unacknowledged,
            ),
            AlertStatus::Acknowledged => (
                "status = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3, \
                 updated_at = $2",
                true,
                AlertEventKind::Acknowledged,
            ),
            AlertStatus::Suppressed => (
                "status = 'suppressed', updated_at = $2",
                false,
                AlertEventKind::Suppressed,
            ),
            AlertStatus::Resolved => (
                "status = 'resolved', resolved_at = $2, resolved_by = $3, updated_at = $2",
                true,
                AlertEventKind::Resolved,
            ),
        };
        let sql = format!(
            "UPDATE alerts SET {set} WHERE id = $1 AND status <> 'resolved' \
             RETURNING {ALERT_COLUMNS}"
        );
        let at = now();
        let row: Option<AlertRow> = with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let mut query = sqlx::query_as(&sql).bind(id).bind(at);
            if records_actor {
                query = query.bind(actor);
            }
            let row: Option<AlertRow> = query.fetch_optional(&mut *tx).await.context(OP)?;
            if row.is_some() {
                record_event!(tx, OP, id, at, kind, actor, None::<String>, Map::new());
                tx.commit().await.context(OP)?;
            }
            row
        });
        row.map(StoredAlert::try_from)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    /// Carries out an operator's `op` on alert `id` on behalf of `actor`, with an optional
    /// `note` (required for [`AlertOp::Note`]), and records it in the alert's history, in one
    /// transaction.
    ///
    /// [`StoreError::NotFound`] when there is no such alert; [`StoreError::Conflict`] when its
    /// status does not allow `op` (acknowledging an alert that is acknowledged or resolved,
    /// un-acknowledging one that is not acknowledged, resolving a resolved one), naming the
    /// status; [`StoreError::Invalid`] for a bad note.
    pub async fn act_on_alert(
        &self,
        id: i64,
        op: AlertOp,
        actor: &str,
        note: Option<&str>,
    ) -> Result<AlertChange, StoreError> {
        let mut results = self.act_on_alerts(&[id], op, actor, note).await?;
        results.pop().expect("one result per id")
    }

    /// [`Store::act_on_alert`] for each of `ids`, in order, in one transaction: one result per
    /// id, so that an alert that is missing or in the wrong status is refused alone while the
    /// others change. The outer error is a failure of the whole transaction (nothing changed).
    pub async fn act_on_alerts(
        &self,
        ids: &[i64],
        op: AlertOp,
        actor: &str,
        note: Option<&str>,
    ) -> Result<Vec<Result<AlertChange, StoreError>>, StoreError> {
        const OP: &str = "acting on alerts";
        let note = note
            .map(check_note)
            .transpose()
            .map_err(|m| StoreError::Invalid(format!("note: {m}")))?;
        if op == AlertOp::Note && note.is_none() {
            return Err(StoreError::Invalid(
                "note: is required to add a note".into(),
            ));
        }
        let (sql, binds_at, binds_actor) = op.sql();
        let at = now();
        let mut rows: Vec<Result<(AlertRow, EventRow), StoreError>> = Vec::with_capacity(ids.len());
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            for &id in ids {
                let mut query = sqlx::query_as(&sql).bind(id);
                if binds_at {
                    query = query.bind(at);
                }
                if binds_actor {
                    query = query.bind(actor);
                }
                let row: Option<AlertRow> = query.fetch_optional(&mut *tx).await.context(OP)?;
                let Some(row) = row else {
                    let current: Option<(String, Option<String>)> =
                        sqlx::query_as("SELECT status, acknowledged_by FROM alerts WHERE id = $1")
                            .bind(id)
                            .fetch_optional(&mut *tx)
                            .await
                            .context(OP)?;
                    rows.push(Err(op.refusal(id, current)));
                    continue;
                };
                let event_id = record_event!(
                    tx,
                    OP,
                    id,
                    at,
                    op.event_kind(),
                    actor,
                    note.as_deref(),
                    Map::new()
                );
                let event = EventRow {
                    id: event_id,
                    alert_id: id,
                    at: ts(at),
                    kind: op.event_kind().as_str().to_owned(),
                    actor: actor.to_owned(),
                    note: note.clone(),
                    details: Json(Map::new()),
                };
                rows.push(Ok((row, event)));
            }
            tx.commit().await.context(OP)?;
        });
        // Rows are decoded after the commit: a corrupt stored value must not undo the others.
        Ok(rows
            .into_iter()
            .map(|r| {
                r.and_then(|(alert, event)| {
                    Ok(AlertChange {
                        alert: alert.try_into()?,
                        event: event.try_into()?,
                    })
                })
            })
            .collect())
    }

    /// One page of alert `id`'s history, oldest first: recorded entries after `after` (an
    /// entry id; `None` for the first page), at most `limit` (clamped like list pages). `None`
    /// when there is no such alert.
    ///
    /// Entries the alert's row implies but that were never recorded are included, with no id:
    /// its creation first (on the first page) when it predates the history table, and its
    /// resolution last when the expiry job resolved it. When such a creation entry fills the
    /// first page alone, `next_after` is 0.
    pub async fn alert_history(
        &self,
        id: i64,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Option<HistoryPage>, StoreError> {
        const OP: &str = "reading an alert's history";
        let limit = clamp_limit(limit) as usize;
        // The alert first: entries recorded after this read can only add to what it shows.
        let Some(alert) = self.get_alert(id).await? else {
            return Ok(None);
        };
        let (rows, recorded): (Vec<EventRow>, Vec<String>) = with_pool!(self, read, |pool| {
            let rows = sqlx::query_as(&format!(
                "SELECT {EVENT_COLUMNS} FROM alert_events \
                 WHERE alert_id = $1 AND id > $2 ORDER BY id LIMIT $3"
            ))
            .bind(id)
            .bind(after.unwrap_or(0))
            .bind(limit as i64 + 1)
            .fetch_all(pool)
            .await
            .context(OP)?;
            let recorded = sqlx::query_scalar(
                "SELECT DISTINCT kind FROM alert_events \
                 WHERE alert_id = $1 AND kind IN ('created', 'resolved')",
            )
            .bind(id)
            .fetch_all(pool)
            .await
            .context(OP)?;
            (rows, recorded)
        });
        let was_recorded = |kind: AlertEventKind| recorded.iter().any(|k| k == kind.as_str());

        let mut items = Vec::with_capacity(limit);
        if after.is_none() && !was_recorded(AlertEventKind::Created) {
            items.push(derived_created(&alert));
        }
        let room = limit - items.len();
        let more = rows.len() > room;
        for row in rows.into_iter().take(room) {
            items.push(AlertEvent::try_from(row)?);
        }
        let last_id = || items.iter().rev().find_map(|e| e.id).or(after).unwrap_or(0);
        let next_after = if more {
            Some(last_id())
        } else if let Some(resolved) =
            derived_resolved(&alert).filter(|_| !was_recorded(AlertEventKind::Resolved))
        {
            if items.len() < limit {
                items.push(resolved);
                None
            } else {
                Some(last_id())
            }
        } else {
            None
        };
        Ok(Some(HistoryPage {
            alert,
            items,
            next_after,
        }))
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
