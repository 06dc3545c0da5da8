//! Applying the alert engine's decisions (raise, clear) in batches: the ingestion hot path,
//! one transaction for many events, with the history entries of what changed and retries on
//! transient conflicts.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Pool;
use sqlx::postgres::Postgres;
use sqlx::query_builder::Separated;
use sqlx::sqlite::{Sqlite, SqliteRow};
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

/// What a raise does when it finds an open alert with its fingerprint, and what it returns;
/// shared by [`RAISE_SQL`] and the multi-row raise ([`RaiseMany`]). A macro, so that `concat!`
/// builds both statements at compile time.
macro_rules! raise_on_conflict {
    () => {
        "ON CONFLICT (fingerprint) WHERE status <> 'resolved' DO UPDATE SET \
             occurrence_count = alerts.occurrence_count + excluded.occurrence_count, \
             last_seen_at = CASE WHEN excluded.last_seen_at > alerts.last_seen_at \
                                 THEN excluded.last_seen_at ELSE alerts.last_seen_at END, \
             severity = excluded.severity, \
             title = excluded.title, \
             message = excluded.message, \
             fields = excluded.fields, \
             updated_at = excluded.updated_at \
         RETURNING id, occurrence_count, status, fingerprint"
    };
}

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
const RAISE_SQL: &str = concat!(
    "INSERT INTO alerts (addon_id, fingerprint, alert_type, device_ip, device_name, severity, \
         category, title, message, status, fields, occurrence_count, occurred_at, first_seen_at, \
         last_seen_at, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $13, $10, 1, $11, $12, $12, $12, $12) ",
    raise_on_conflict!()
);

/// Resolves the open alert with a fingerprint, if there is one (the unique index guarantees at
/// most one). The addon must match too: an addon can never resolve another addon's alert.
const CLEAR_SQL: &str = "UPDATE alerts \
     SET status = 'resolved', resolved_at = $3, resolved_by = $4, updated_at = $3 \
     WHERE fingerprint = $1 AND addon_id = $2 AND status <> 'resolved' \
     RETURNING id";

/// One row of the multi-row clear: the first clear of an alert in a run of clears (a repeat
/// finds it resolved already, as one at a time).
#[derive(Serialize)]
struct ClearRow<'a> {
    addon_id: &'a str,
    fingerprint: &'a str,
    resolved_at: String,
    resolved_by: String,
}

/// What a multi-row clear returns for each alert it resolved: id, addon and fingerprint.
type Cleared = (i64, String, String);

/// Resolves many alerts at once from [`ClearRow`]s with no (addon, fingerprint) twice, as
/// [`CLEAR_SQL`] one at a time; returns what it resolved. Both plans look each row up in the
/// index of open fingerprints. Each database gets the rows as for [`RaiseMany`].
trait ClearMany: sqlx::Database {
    fn clear_many(
        pool: &Pool<Self>,
        conn: &mut Self::Connection,
        rows: &[ClearRow<'_>],
    ) -> impl Future<Output = Result<Vec<Cleared>, sqlx::Error>> + Send;
}

impl ClearMany for Sqlite {
    async fn clear_many(
        _: &Pool<Sqlite>,
        conn: &mut sqlx::SqliteConnection,
        rows: &[ClearRow<'_>],
    ) -> Result<Vec<Cleared>, sqlx::Error> {
        // A `VALUES` table's columns are column1, column2, … in SQLite.
        let head = "UPDATE alerts \
             SET status = 'resolved', resolved_at = c.column3, resolved_by = c.column4, \
                 updated_at = c.column3 \
             FROM (";
        let tail = ") AS c \
             WHERE alerts.fingerprint = c.column2 AND alerts.addon_id = c.column1 \
                 AND alerts.status <> 'resolved' \
             RETURNING alerts.id, alerts.addon_id, alerts.fingerprint";
        sqlite_multi_row(conn, rows, head, tail, |mut values, row| {
            values
                .push_bind(row.addon_id)
                .push_bind(row.fingerprint)
                .push_bind(row.resolved_at.as_str())
                .push_bind(row.resolved_by.as_str());
        })
        .await
    }
}

impl ClearMany for Postgres {
    async fn clear_many(
        _: &Pool<Postgres>,
        conn: &mut sqlx::PgConnection,
        rows: &[ClearRow<'_>],
    ) -> Result<Vec<Cleared>, sqlx::Error> {
        const CLEAR_MANY: &str = "UPDATE alerts \
             SET status = 'resolved', resolved_at = c.resolved_at, resolved_by = c.resolved_by, \
                 updated_at = c.resolved_at \
             FROM (SELECT e.v ->> 'addon_id' AS addon_id, e.v ->> 'fingerprint' AS fingerprint, \
                       CAST(e.v ->> 'resolved_at' AS TIMESTAMPTZ) AS resolved_at, \
                       e.v ->> 'resolved_by' AS resolved_by \
                   FROM jsonb_array_elements($1) AS e(v)) AS c \
             WHERE alerts.fingerprint = c.fingerprint AND alerts.addon_id = c.addon_id \
                 AND alerts.status <> 'resolved' \
             RETURNING alerts.id, alerts.addon_id, alerts.fingerprint";
        sqlx::query_as::<_, Cleared>(CLEAR_MANY)
            .bind(Json(rows))
            .fetch_all(conn)
            .await
    }
}

/// Where the run of clears starting at `start` ends: at the first raise.
fn clear_run_end(actions: &[AlertAction], start: usize) -> usize {
    actions[start..]
        .iter()
        .position(|action| matches!(action, AlertAction::Raise(_)))
        .map_or(actions.len(), |offset| start + offset)
}

/// The multi-row clear's rows for a run of clears: the first clear of each alert.
fn clear_rows<'a>(clears: impl Iterator<Item = &'a ClearAlert>) -> Vec<ClearRow<'a>> {
    let mut seen = std::collections::HashSet::new();
    clears
        .filter(|clear| seen.insert((&clear.addon_id, &clear.fingerprint)))
        .map(|clear| ClearRow {
            addon_id: &clear.addon_id,
            fingerprint: &clear.fingerprint,
            resolved_at: ts(clear.received_at).to_rfc3339_opts(SecondsFormat::AutoSi, false),
            resolved_by: format!("clear:{}", clear.cleared_by),
        })
        .collect()
}

/// Moves an open alert between `active` and `suppressed` when a silence starts or ends covering
/// it (`$2` the new status, `$3` the time).
const SILENCE_STATUS_SQL: &str = "UPDATE alerts SET status = $2, updated_at = $3 WHERE id = $1";

/// One row of the multi-row raise ([`RaiseMany`]): the raises of a run that share a
/// fingerprint, folded into what applying them one by one with [`RAISE_SQL`] leaves behind.
/// The first occurrence gives when the alert was first seen, the last one its text and
/// `updated_at`, and `occurrences` is added to the count. Timestamps are formatted as sqlx
/// writes them to SQLite (see [`BatchEvent`]).
#[derive(Serialize)]
struct RaiseRow<'a> {
    addon_id: &'a str,
    fingerprint: &'a str,
    alert_type: &'a str,
    device_ip: Option<&'a str>,
    device_name: Option<&'a str>,
    severity: &'static str,
    category: &'a str,
    title: &'a str,
    message: &'a str,
    status: &'static str,
    fields: &'a std::collections::BTreeMap<String, String>,
    occurrences: i64,
    occurred_at: String,
    first_seen_at: String,
    last_seen_at: String,
    updated_at: String,
}

/// What a multi-row raise returns for each row: id, count, status and fingerprint.
type Raised = (i64, i64, String, String);

/// Raises many alerts at once from [`RaiseRow`]s whose fingerprints are all different: each row
/// is then an independent upsert, and the rows returned are told apart by fingerprint (neither
/// database promises `RETURNING` in input order). A few statements instead of one per alert are
/// a few round trips instead of many — to sqlx's SQLite worker thread or to PostgreSQL — which
/// was most of the cost of a batch (docs/performance.md). Each database gets the rows the way
/// it unpacks them cheapest. `pool` only picks the implementation inside a `with_pool!` body,
/// as with this module's other per-database traits.
trait RaiseMany: sqlx::Database {
    fn raise_many(
        pool: &Pool<Self>,
        conn: &mut Self::Connection,
        rows: &[RaiseRow<'_>],
    ) -> impl Future<Output = Result<Vec<Raised>, sqlx::Error>> + Send;
}

/// The head of the multi-row raise on SQLite; the rows follow as bound `VALUES`.
const SQLITE_RAISE_HEAD: &str = "INSERT INTO alerts (addon_id, fingerprint, alert_type, \
     device_ip, device_name, severity, category, title, message, status, fields, \
     occurrence_count, occurred_at, first_seen_at, last_seen_at, created_at, updated_at) ";

/// Rows per statement on SQLite, at most: 256 rows of 17 values stay well under SQLite's limit
/// of 32,766 bound values, and a run of 2,000 rows is ten statements (7 × 256, 128, 64, 16).
const SQLITE_ROWS_PER_STATEMENT: usize = 256;

/// How a run of `n` rows is cut into statements on SQLite: full statements of
/// [`SQLITE_ROWS_PER_STATEMENT`], then the rest as powers of two. Each size is one statement
/// text, prepared once per connection and then reused from sqlx's statement cache, so that
/// nine texts serve every batch.
fn sqlite_statement_sizes(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if n == 0 {
            return None;
        }
        let size = if n >= SQLITE_ROWS_PER_STATEMENT {
            SQLITE_ROWS_PER_STATEMENT
        } else {
            1 << n.ilog2()
        };
        n -= size;
        Some(size)
    })
}

/// `rows` cut by [`sqlite_statement_sizes`].
fn sqlite_statements<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    sqlite_statement_sizes(rows.len()).map(move |size| {
        let (head, tail) = rest.split_at(size);
        rest = tail;
        head
    })
}

/// Writes `rows` on SQLite as `head VALUES (…), (…) tail`, one statement per cut of
/// [`sqlite_statements`], `bind` giving each row's values; returns what the statements'
/// `RETURNING` clauses give (nothing without one). Bound values, not a JSON array: SQLite's
/// `json_each` hands each element back as text that every `json_extract` parses again, which
/// cost more than the writes themselves (docs/performance.md, step 3).
async fn sqlite_multi_row<'a, T: Sync, R>(
    conn: &mut sqlx::SqliteConnection,
    rows: &'a [T],
    head: &str,
    tail: &str,
    mut bind: impl FnMut(Separated<'_, 'a, Sqlite, &'static str>, &'a T) + Send,
) -> Result<Vec<R>, sqlx::Error>
where
    R: for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin,
{
    let mut returned = Vec::new();
    for statement in sqlite_statements(rows) {
        let mut query = sqlx::QueryBuilder::<Sqlite>::new(head);
        query.push_values(statement, &mut bind);
        query.push(tail);
        returned.extend(query.build_query_as::<R>().fetch_all(&mut *conn).await?);
    }
    Ok(returned)
}

impl RaiseMany for Sqlite {
    async fn raise_many(
        _: &Pool<Sqlite>,
        conn: &mut sqlx::SqliteConnection,
        rows: &[RaiseRow<'_>],
    ) -> Result<Vec<Raised>, sqlx::Error> {
        let tail = concat!(" ", raise_on_conflict!());
        sqlite_multi_row(conn, rows, SQLITE_RAISE_HEAD, tail, |mut values, row| {
            values
                .push_bind(row.addon_id)
                .push_bind(row.fingerprint)
                .push_bind(row.alert_type)
                .push_bind(row.device_ip)
                .push_bind(row.device_name)
                .push_bind(row.severity)
                .push_bind(row.category)
                .push_bind(row.title)
                .push_bind(row.message)
                .push_bind(row.status)
                .push_bind(Json(row.fields))
                .push_bind(row.occurrences)
                .push_bind(row.occurred_at.as_str())
                .push_bind(row.first_seen_at.as_str())
                .push_bind(row.last_seen_at.as_str())
                .push_bind(row.first_seen_at.as_str())
                .push_bind(row.updated_at.as_str());
        })
        .await
    }
}

impl RaiseMany for Postgres {
    /// One statement from a JSON array: PostgreSQL unpacks `jsonb` without parsing it again
    /// per field, and one statement text serves every batch size.
    async fn raise_many(
        _: &Pool<Postgres>,
        conn: &mut sqlx::PgConnection,
        rows: &[RaiseRow<'_>],
    ) -> Result<Vec<Raised>, sqlx::Error> {
        const RAISE_MANY: &str = concat!(
            "INSERT INTO alerts (addon_id, fingerprint, alert_type, device_ip, device_name, \
                 severity, category, title, message, status, fields, occurrence_count, \
                 occurred_at, first_seen_at, last_seen_at, created_at, updated_at) \
             SELECT e.v ->> 'addon_id', e.v ->> 'fingerprint', e.v ->> 'alert_type', \
                 e.v ->> 'device_ip', e.v ->> 'device_name', e.v ->> 'severity', \
                 e.v ->> 'category', e.v ->> 'title', e.v ->> 'message', e.v ->> 'status', \
                 e.v -> 'fields', CAST(e.v ->> 'occurrences' AS BIGINT), \
                 CAST(e.v ->> 'occurred_at' AS TIMESTAMPTZ), \
                 CAST(e.v ->> 'first_seen_at' AS TIMESTAMPTZ), \
                 CAST(e.v ->> 'last_seen_at' AS TIMESTAMPTZ), \
                 CAST(e.v ->> 'first_seen_at' AS TIMESTAMPTZ), \
                 CAST(e.v ->> 'updated_at' AS TIMESTAMPTZ) \
             FROM jsonb_array_elements($1) WITH ORDINALITY AS e(v, n) ORDER BY e.n ",
            raise_on_conflict!()
        );
        sqlx::query_as::<_, Raised>(RAISE_MANY)
            .bind(Json(rows))
            .fetch_all(conn)
            .await
    }
}

/// The raises of one fingerprint in a run, by their index in the batch.
#[derive(Debug, PartialEq)]
struct RaiseGroup {
    first: usize,
    last: usize,
    occurrences: i64,
    /// The latest receipt time among them (`last_seen_at` only moves forward).
    last_seen: DateTime<Utc>,
}

/// A run of raises written in one statement: consecutive raises of the batch, folded into one
/// row per fingerprint. Repeated occurrences of a fingerprint in a burst (a flapping port, a
/// storm of the same trap) are then one row with `count + n` rather than a statement each.
#[derive(Debug, PartialEq)]
struct RaiseRun {
    /// One past the run's last action in the batch.
    end: usize,
    /// In order of first occurrence.
    groups: Vec<RaiseGroup>,
    /// For each action of the run, its group and which occurrence of the group it is (from 1).
    members: Vec<(usize, i64)>,
}

impl RaiseRun {
    /// The run starting at `start` (a raise). It ends at the first clear, which must see the
    /// raises before it, or at a raise of a fingerprint the run already has under a different
    /// silence decision, whose status the earlier occurrence decides first.
    fn plan(actions: &[AlertAction], silence: impl Fn(usize) -> Option<i64>, start: usize) -> Self {
        let mut by_fingerprint = std::collections::HashMap::new();
        let mut run = RaiseRun {
            end: actions.len(),
            groups: Vec::new(),
            members: Vec::new(),
        };
        for (at, action) in actions.iter().enumerate().skip(start) {
            let AlertAction::Raise(alert) = action else {
                run.end = at;
                break;
            };
            match by_fingerprint.get(alert.fingerprint.as_str()) {
                Some(&g) => {
                    let group: &mut RaiseGroup = &mut run.groups[g];
                    if silence(group.first) != silence(at) {
                        run.end = at;
                        break;
                    }
                    group.last = at;
                    group.occurrences += 1;
                    group.last_seen = group.last_seen.max(alert.received_at);
                    run.members.push((g, group.occurrences));
                }
                None => {
                    by_fingerprint.insert(alert.fingerprint.as_str(), run.groups.len());
                    run.members.push((run.groups.len(), 1));
                    run.groups.push(RaiseGroup {
                        first: at,
                        last: at,
                        occurrences: 1,
                        last_seen: alert.received_at,
                    });
                }
            }
        }
        run
    }

    /// Whether the run is a single raise, written with [`RAISE_SQL`].
    fn is_single(&self) -> bool {
        self.members.len() == 1
    }
}

/// The status a new alert opens in: `suppressed` when a silence covers it.
fn opening_status(silence: Option<i64>) -> AlertStatus {
    match silence {
        Some(_) => AlertStatus::Suppressed,
        None => AlertStatus::Active,
    }
}

/// The multi-row upsert's row for `group`, whose raises share `silence`.
fn raise_row<'a>(
    actions: &'a [AlertAction],
    group: &RaiseGroup,
    silence: Option<i64>,
) -> RaiseRow<'a> {
    let (AlertAction::Raise(first), AlertAction::Raise(last)) =
        (&actions[group.first], &actions[group.last])
    else {
        unreachable!("a raise group holds raises only")
    };
    let text = |t: DateTime<Utc>| ts(t).to_rfc3339_opts(SecondsFormat::AutoSi, false);
    RaiseRow {
        addon_id: &first.addon_id,
        fingerprint: &first.fingerprint,
        alert_type: &first.alert_type,
        device_ip: first.device_ip.as_deref(),
        device_name: first.device_name.as_deref(),
        severity: last.severity.as_str(),
        category: &first.category,
        title: &last.title,
        message: &last.message,
        status: opening_status(silence).as_str(),
        fields: &last.fields,
        occurrences: group.occurrences,
        occurred_at: text(first.occurred_at),
        first_seen_at: text(first.received_at),
        last_seen_at: text(group.last_seen),
        updated_at: text(last.received_at),
    }
}

/// What a raise did, from what its upsert returned: its outcome, its history entry, and the
/// status a silence starting or ending moves it to (only a writer that consulted the silences,
/// `silences_known`, may move an alert in or out of suppression).
fn raised(
    alert: &NewAlert,
    silence: Option<i64>,
    silences_known: bool,
    (alert_id, occurrence_count, current): (i64, i64, &str),
) -> (ActionOutcome, Option<BatchEvent>, Option<AlertStatus>) {
    let addon_id = &alert.addon_id;
    if occurrence_count == 1 {
        let status = opening_status(silence);
        let event = BatchEvent::new(
            alert_id,
            alert.received_at,
            AlertEventKind::Created,
            format!("addon:{addon_id}"),
            created_details(status, silence),
        );
        return (ActionOutcome::Created { alert_id }, Some(event), None);
    }
    let change = match (silences_known, current, silence) {
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
    let outcome = ActionOutcome::Updated {
        alert_id,
        occurrence_count,
    };
    match change {
        Some((status, kind, actor, details)) => (
            outcome,
            Some(BatchEvent::new(
                alert_id,
                alert.received_at,
                kind,
                actor,
                details,
            )),
            Some(status),
        ),
        None => (outcome, None, None),
    }
}

/// History entries of a batch: the alerts it created and resolved, and the ones a silence
/// moved in or out of suppression. They are inserted together at the end of the batch's
/// transaction ([`BatchEvents`]) rather than one statement each, because each statement is a round
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

/// Inserts a batch's history entries in order (so that ids follow the order of the changes).
/// Each database gets them the way it unpacks them cheapest, as for [`RaiseMany`].
trait BatchEvents: sqlx::Database {
    fn insert_events(
        pool: &Pool<Self>,
        conn: &mut Self::Connection,
        events: &[BatchEvent],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

impl BatchEvents for Sqlite {
    async fn insert_events(
        _: &Pool<Sqlite>,
        conn: &mut sqlx::SqliteConnection,
        events: &[BatchEvent],
    ) -> Result<(), sqlx::Error> {
        let head = "INSERT INTO alert_events (alert_id, at, kind, actor, note, details) ";
        // No `RETURNING`: no rows come back, whatever type they are read as.
        sqlite_multi_row::<_, (i64,)>(conn, events, head, "", |mut values, event| {
            values
                .push_bind(event.alert_id)
                .push_bind(event.at.as_str())
                .push_bind(event.kind)
                .push_bind(event.actor.as_str())
                .push("NULL")
                .push_bind(Json(&event.details));
        })
        .await
        .map(drop)
    }
}

impl BatchEvents for Postgres {
    async fn insert_events(
        _: &Pool<Postgres>,
        conn: &mut sqlx::PgConnection,
        events: &[BatchEvent],
    ) -> Result<(), sqlx::Error> {
        const INSERT_EVENTS: &str = "INSERT INTO alert_events \
                 (alert_id, at, kind, actor, note, details) \
             SELECT CAST(e.v ->> 'alert_id' AS BIGINT), CAST(e.v ->> 'at' AS TIMESTAMPTZ), \
                 e.v ->> 'kind', e.v ->> 'actor', NULL, e.v -> 'details' \
             FROM jsonb_array_elements($1) WITH ORDINALITY AS e(v, n) ORDER BY e.n";
        sqlx::query(INSERT_EVENTS)
            .bind(Json(events))
            .execute(conn)
            .await
            .map(drop)
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
    /// that many alerts share one commit (and one fsync). Each run of raises is one statement
    /// ([`RaiseMany`]), with the raises of one fingerprint folded into one row ([`RaiseRun`]);
    /// each run of clears is one statement ([`ClearMany`]); a lone raise or clear and a silence
    /// move are one prepared statement each (cached per connection by sqlx); the history entries
    /// of the alerts created, resolved or moved in or out of suppression are one more for the
    /// whole batch. Transient conflicts with other writers are retried here (the failed attempt
    /// was rolled back, so nothing is applied twice).
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
            let silence = |at: usize| silenced.and_then(|s| s[at]);
            let mut index = 0;
            while index < actions.len() {
                if let AlertAction::Clear(_) = &actions[index] {
                    let end = clear_run_end(actions, index);
                    let clears = actions[index..end].iter().map(|action| match action {
                        AlertAction::Clear(clear) => clear,
                        AlertAction::Raise(_) => unreachable!("a clear run holds clears only"),
                    });
                    // Which clear resolved which alert: (addon, fingerprint) → alert id.
                    let mut resolved: std::collections::HashMap<(String, String), i64> =
                        if end == index + 1 {
                            let clear = clears.clone().next().expect("a run has a clear");
                            sqlx::query_scalar(CLEAR_SQL)
                                .bind(&clear.fingerprint)
                                .bind(&clear.addon_id)
                                .bind(ts(clear.received_at))
                                .bind(format!("clear:{}", clear.cleared_by))
                                .fetch_optional(&mut *tx)
                                .await
                                .context(OP)?
                                .map(|id| ((clear.addon_id.clone(), clear.fingerprint.clone()), id))
                                .into_iter()
                                .collect()
                        } else {
                            let rows = clear_rows(clears.clone());
                            ClearMany::clear_many(pool, &mut *tx, &rows)
                                .await
                                .context(OP)?
                                .into_iter()
                                .map(|(id, addon_id, fingerprint)| ((addon_id, fingerprint), id))
                                .collect()
                        };
                    for clear in clears {
                        // The first clear of an alert resolves it; a repeat finds it resolved.
                        let key = (clear.addon_id.clone(), clear.fingerprint.clone());
                        outcomes.push(match resolved.remove(&key) {
                            Some(alert_id) => {
                                events.push(BatchEvent::new(
                                    alert_id,
                                    clear.received_at,
                                    AlertEventKind::Resolved,
                                    format!("clear:{}", clear.cleared_by),
                                    Map::new(),
                                ));
                                ActionOutcome::Resolved { alert_id }
                            }
                            None => ActionOutcome::ClearUnmatched,
                        });
                    }
                    index = end;
                    continue;
                }
                let run = RaiseRun::plan(actions, silence, index);
                // What each group's upsert returned: (id, count, status).
                let returned: Vec<(i64, i64, String)> = if run.is_single() {
                    let AlertAction::Raise(alert) = &actions[index] else {
                        unreachable!()
                    };
                    let (id, count, status, _fingerprint) =
                        sqlx::query_as::<_, (i64, i64, String, String)>(RAISE_SQL)
                            .bind(&alert.addon_id)
                            .bind(&alert.fingerprint)
                            .bind(&alert.alert_type)
                            .bind(&alert.device_ip)
                            .bind(&alert.device_name)
                            .bind(alert.severity.as_str())
                            .bind(&alert.category)
                            .bind(&alert.title)
                            .bind(&alert.message)
                            .bind(Json(&alert.fields))
                            .bind(ts(alert.occurred_at))
                            .bind(ts(alert.received_at))
                            .bind(opening_status(silence(index)).as_str())
                            .fetch_one(&mut *tx)
                            .await
                            .context(OP)?;
                    vec![(id, count, status)]
                } else {
                    let rows: Vec<RaiseRow> = run
                        .groups
                        .iter()
                        .map(|group| raise_row(actions, group, silence(group.first)))
                        .collect();
                    let mut by_fingerprint: std::collections::HashMap<String, (i64, i64, String)> =
                        RaiseMany::raise_many(pool, &mut *tx, &rows)
                            .await
                            .context(OP)?
                            .into_iter()
                            .map(|(id, count, status, fingerprint)| {
                                (fingerprint, (id, count, status))
                            })
                            .collect();
                    rows.iter()
                        .map(|row| {
                            by_fingerprint.remove(row.fingerprint).ok_or_else(|| {
                                StoreError::Corrupt(format!(
                                    "while {OP}: the multi-row raise returned no row for a \
                                         fingerprint it was given"
                                ))
                            })
                        })
                        .collect::<Result<_, _>>()?
                };
                for (offset, &(g, occurrence)) in run.members.iter().enumerate() {
                    let at = index + offset;
                    let AlertAction::Raise(alert) = &actions[at] else {
                        unreachable!("a raise run holds raises only")
                    };
                    let (alert_id, count, current) = &returned[g];
                    // The count this occurrence reached: the group added all its occurrences at
                    // once.
                    let occurrence_count = count - run.groups[g].occurrences + occurrence;
                    if occurrence > 1 {
                        // A later occurrence of the group changes no status: the first did.
                        outcomes.push(ActionOutcome::Updated {
                            alert_id: *alert_id,
                            occurrence_count,
                        });
                        continue;
                    }
                    let (outcome, event, moved_to) = raised(
                        alert,
                        silence(at),
                        silenced.is_some(),
                        (*alert_id, occurrence_count, current),
                    );
                    if let Some(status) = moved_to {
                        let AlertAction::Raise(last) = &actions[run.groups[g].last] else {
                            unreachable!("a raise group holds raises only")
                        };
                        sqlx::query(SILENCE_STATUS_SQL)
                            .bind(alert_id)
                            .bind(status.as_str())
                            .bind(ts(last.received_at))
                            .execute(&mut *tx)
                            .await
                            .context(OP)?;
                    }
                    events.extend(event);
                    outcomes.push(outcome);
                }
                index = run.end;
            }
            if !events.is_empty() {
                BatchEvents::insert_events(pool, &mut *tx, &events)
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn raise(fingerprint: &str, second: u32) -> AlertAction {
        let at = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, second).unwrap();
        AlertAction::Raise(NewAlert {
            addon_id: "a".into(),
            fingerprint: fingerprint.into(),
            alert_type: "t".into(),
            device_ip: None,
            device_name: None,
            severity: crate::alert::Severity::Minor,
            category: "c".into(),
            title: "t".into(),
            message: String::new(),
            fields: Default::default(),
            occurred_at: at,
            received_at: at,
        })
    }

    fn clear(fingerprint: &str) -> AlertAction {
        AlertAction::Clear(ClearAlert {
            addon_id: "a".into(),
            fingerprint: fingerprint.into(),
            alert_type: "t".into(),
            cleared_by: "up".into(),
            received_at: Utc::now(),
        })
    }

    #[test]
    fn sqlite_statements_are_full_ones_then_powers_of_two() {
        let sizes = |n| sqlite_statement_sizes(n).collect::<Vec<_>>();
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(7), [4, 2, 1]);
        assert_eq!(sizes(256), [256]);
        assert_eq!(sizes(600), [256, 256, 64, 16, 8]);
        for n in 0..2_100 {
            assert_eq!(sizes(n).iter().sum::<usize>(), n, "{n}");
            assert!(sizes(n).iter().all(|s| s.is_power_of_two() && *s <= 256));
        }
        let rows: Vec<usize> = (0..600).collect();
        let cut: Vec<&[usize]> = sqlite_statements(&rows).collect();
        assert_eq!(cut.concat(), rows, "in order, each row once");
    }

    #[test]
    fn a_run_folds_repeats_and_ends_at_a_clear_or_a_changed_silence() {
        let actions = [
            raise("x", 1),
            raise("y", 2),
            raise("x", 5),
            raise("x", 3),
            raise("y", 4),
            clear("x"),
            raise("z", 6),
        ];
        let run = RaiseRun::plan(&actions, |_| None, 0);
        assert_eq!(run.end, 5, "the clear ends the run");
        assert_eq!(run.members, [(0, 1), (1, 1), (0, 2), (0, 3), (1, 2)]);
        let at = |s| Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, s).unwrap();
        assert_eq!(
            run.groups,
            [
                RaiseGroup {
                    first: 0,
                    last: 3,
                    occurrences: 3,
                    last_seen: at(5),
                },
                RaiseGroup {
                    first: 1,
                    last: 4,
                    occurrences: 2,
                    last_seen: at(4),
                },
            ]
        );
        assert!(RaiseRun::plan(&actions, |_| None, 6).is_single());

        // "x" again, but now under a silence: the earlier occurrence must decide its status
        // first, so the run stops there.
        let silenced = |at: usize| (at == 2).then_some(7);
        let run = RaiseRun::plan(&actions, silenced, 0);
        assert_eq!((run.end, run.groups.len()), (2, 2));
    }
}
