//! Reading alerts back: lists and searches (with only the conditions in use in the query),
//! single alerts, counts by status, and an alert's history page by page.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Map;

use super::{ALERT_COLUMNS, AlertEvent, AlertEventKind, AlertRow, EventRow};
use crate::alert::{AlertFilter, AlertStatus, Severity, StoredAlert};
use crate::store::filter_query::{Bind, bind_all, build_query, clamp_limit};
use crate::store::{Context, Store, StoreError, ts};

/// The columns of [`EventRow`].
const EVENT_COLUMNS: &str = "id, alert_id, at, kind, actor, note, details";

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

/// Builds the list query with only the conditions the filter uses (see [`build_query`]).
fn list_query(search: &AlertSearch) -> (String, Vec<Bind>) {
    let filter = &search.filter;
    let mut conditions = Vec::new();
    if let Some(status) = filter.status {
        conditions.push(("status = ?", Bind::Text(status.as_str().to_owned())));
    }
    if let Some(severity) = filter.severity {
        conditions.push(("severity = ?", Bind::Text(severity.as_str().to_owned())));
    }
    if let Some(addon_id) = &filter.addon_id {
        conditions.push(("addon_id = ?", Bind::Text(addon_id.clone())));
    }
    if let Some(device) = &filter.device {
        conditions.push((
            "(device_ip = ? OR device_name = ?)",
            Bind::Text(device.clone()),
        ));
    }
    if let Some(since) = search.since {
        conditions.push(("last_seen_at >= ?", Bind::Time(ts(since))));
    }
    if let Some(until) = search.until {
        conditions.push(("last_seen_at < ?", Bind::Time(ts(until))));
    }
    if let Some(text) = &search.text {
        // LOWER on both sides rather than ILIKE (PostgreSQL only) or SQLite's LIKE (which
        // already ignores ASCII case, unlike PostgreSQL's), so that both databases agree.
        conditions.push((
            "(LOWER(title) LIKE ? ESCAPE '\\' OR LOWER(message) LIKE ? ESCAPE '\\')",
            Bind::Text(contains_pattern(text)),
        ));
    }
    if let Some(before_id) = filter.before_id {
        conditions.push(("id < ?", Bind::Int(before_id)));
    }
    build_query(
        &format!("SELECT {ALERT_COLUMNS} FROM alerts"),
        conditions,
        "ORDER BY id DESC LIMIT ?",
        vec![Bind::Int(i64::from(clamp_limit(filter.limit)))],
    )
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
    /// Alerts matching `filter`, newest first; see [`AlertFilter`] for paging. The limit is
    /// clamped to 1..=[`LIST_LIMIT_MAX`](super::LIST_LIMIT_MAX), and 0 means
    /// [`LIST_LIMIT_DEFAULT`](super::LIST_LIMIT_DEFAULT).
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
            bind_all!(sqlx::query_as(&sql), binds)
                .fetch_all(pool)
                .await
                .context("listing alerts")?
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
    pub(in crate::store) async fn alerts_by_ids(
        &self,
        ids: &[i64],
    ) -> Result<Vec<StoredAlert>, StoreError> {
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
        every_counted(AlertStatus::ALL, rows, "alert status count")
    }

    /// Open alerts (not resolved) per severity, every severity listed, most severe first.
    pub async fn count_open_alerts_by_severity(&self) -> Result<Vec<(Severity, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, read, |pool| {
            sqlx::query_as(
                "SELECT severity, COUNT(*) FROM alerts WHERE status <> 'resolved' GROUP BY severity",
            )
            .fetch_all(pool)
            .await
            .context("counting open alerts")?
        });
        every_counted(Severity::ALL, rows, "open alert count")
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

/// `(value, count)` for each of `all`, in its order, with the counts a `GROUP BY` query read
/// (0 for a value it did not find); a value the enum does not know is corruption.
fn every_counted<T, const N: usize>(
    all: [T; N],
    rows: Vec<(String, i64)>,
    what: &str,
) -> Result<Vec<(T, i64)>, StoreError>
where
    T: Copy + PartialEq + std::str::FromStr<Err: std::fmt::Display>,
{
    let mut counts = all.map(|value| (value, 0));
    for (value, count) in rows {
        let value: T = value
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
        if let Some(slot) = counts.iter_mut().find(|(v, _)| *v == value) {
            slot.1 = count;
        }
    }
    Ok(counts.to_vec())
}
