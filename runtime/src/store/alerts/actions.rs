//! Operators' actions on alerts — acknowledge, un-acknowledge, resolve, add a note — one or
//! many at once, each recorded in the alert's history in the transaction that makes it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Map;
use sqlx::types::Json;

use super::{ALERT_COLUMNS, AlertEvent, AlertEventKind, AlertRow, EventRow};
use crate::alert::{AlertStatus, StoredAlert};
use crate::store::{Context, Store, StoreError, begin_write, ts};

/// Records one entry of an alert's history.
const INSERT_EVENT_SQL: &str = "INSERT INTO alert_events \
         (alert_id, at, kind, actor, note, details) VALUES ($1, $2, $3, $4, $5, $6) \
     RETURNING id";

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

impl Store {
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
        now: DateTime<Utc>,
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
        let at = ts(now);
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
        now: DateTime<Utc>,
    ) -> Result<AlertChange, StoreError> {
        let mut results = self.act_on_alerts(&[id], op, actor, note, now).await?;
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
        now: DateTime<Utc>,
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
        let at = ts(now);
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
}
