//! What the event bus needs from the database: alerts rendered for events, and on PostgreSQL
//! the channel (`NOTIFY` / `LISTEN`) that carries events between the nodes sharing it. SQLite
//! serves one node, so there is nothing to carry.

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgListener, PgPoolOptions};

use super::{Backend, Context, Store, StoreError};
use crate::events::AlertSummary;

/// The PostgreSQL channel events travel on between nodes.
pub const EVENTS_CHANNEL: &str = "opsconductor_events";

/// Ids per summary query: far below both databases' limits on bound parameters (SQLite 32766,
/// PostgreSQL 65535), and a batch of the writer fits in one or two queries.
const SUMMARY_CHUNK: usize = 1_000;

/// The columns of [`SummaryRow`]: what an event shows of an alert.
const SUMMARY_COLUMNS: &str = "id, addon_id, alert_type, severity, status, category, device_ip, \
     device_name, title, occurrence_count, first_seen_at, last_seen_at, acknowledged_by, \
     resolved_at, resolved_by";

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: i64,
    addon_id: String,
    alert_type: String,
    severity: String,
    status: String,
    category: String,
    device_ip: Option<String>,
    device_name: Option<String>,
    title: String,
    occurrence_count: i64,
    first_seen_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    acknowledged_by: Option<String>,
    resolved_at: Option<DateTime<Utc>>,
    resolved_by: Option<String>,
}

impl TryFrom<SummaryRow> for AlertSummary {
    type Error = StoreError;

    fn try_from(row: SummaryRow) -> Result<AlertSummary, StoreError> {
        let corrupt =
            |e: crate::alert::UnknownVariant| StoreError::Corrupt(format!("alert {}: {e}", row.id));
        Ok(AlertSummary {
            severity: row.severity.parse().map_err(corrupt)?,
            status: row.status.parse().map_err(corrupt)?,
            id: row.id,
            addon_id: row.addon_id,
            alert_type: row.alert_type,
            category: row.category,
            device_ip: row.device_ip,
            device_name: row.device_name,
            title: row.title,
            occurrence_count: row.occurrence_count,
            first_seen_at: row.first_seen_at,
            last_seen_at: row.last_seen_at,
            acknowledged_by: row.acknowledged_by,
            resolved_at: row.resolved_at,
            resolved_by: row.resolved_by,
        })
    }
}

impl Store {
    /// The alerts with these ids as events show them, in no particular order; ids of alerts
    /// that do not exist (any more) are left out.
    pub async fn alert_summaries(&self, ids: &[i64]) -> Result<Vec<AlertSummary>, StoreError> {
        let mut summaries = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(SUMMARY_CHUNK) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM alerts WHERE id IN ({})",
                placeholders.join(", ")
            );
            let rows: Vec<SummaryRow> = with_pool!(self, read, |pool| {
                let mut query = sqlx::query_as(&sql);
                for id in chunk {
                    query = query.bind(id);
                }
                query
                    .fetch_all(pool)
                    .await
                    .context("reading alerts for events")?
            });
            for row in rows {
                summaries.push(AlertSummary::try_from(row)?);
            }
        }
        Ok(summaries)
    }

    /// Sends `payloads` to every node listening on [`EVENTS_CHANNEL`], in this order, in one
    /// statement (so one round trip and one transaction, whose notifications PostgreSQL
    /// delivers together and in order). Each must be shorter than 8000 bytes. Does nothing on
    /// SQLite, which has one node only.
    pub async fn notify_events(&self, payloads: &[String]) -> Result<(), StoreError> {
        let Backend::Postgres(pool) = &self.backend else {
            return Ok(());
        };
        if payloads.is_empty() {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS p(payload)")
            .bind(EVENTS_CHANNEL)
            .bind(payloads)
            .execute(pool)
            .await
            .context("sending events to other nodes")?;
        Ok(())
    }

    /// Starts listening on [`EVENTS_CHANNEL`] (PostgreSQL; `None` on SQLite). The listener has
    /// a connection of its own, outside the store's pool, so that it takes none of the
    /// connections queries need, and it reconnects by itself.
    pub async fn listen_events(&self) -> Result<Option<EventListener>, StoreError> {
        let Backend::Postgres(pool) = &self.backend else {
            return Ok(None);
        };
        let own = PgPoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with((*pool.connect_options()).clone());
        let mut listener = PgListener::connect_with(&own)
            .await
            .context("listening for other nodes' events")?;
        listener
            .listen(EVENTS_CHANNEL)
            .await
            .context("listening for other nodes' events")?;
        Ok(Some(EventListener { listener }))
    }
}

/// Notifications from other nodes (see [`Store::listen_events`]).
pub struct EventListener {
    listener: PgListener,
}

impl EventListener {
    /// The next payload. `Ok(None)` means the connection was lost and has been re-established:
    /// whatever was sent in between is lost. An error (the database is unreachable) may be
    /// followed by another call, which tries to reconnect.
    pub async fn recv(&mut self) -> Result<Option<String>, StoreError> {
        let notification = self
            .listener
            .try_recv()
            .await
            .context("receiving other nodes' events")?;
        Ok(notification.map(|n| n.payload().to_owned()))
    }
}
