//! What the event bus needs from the database: alerts rendered for events, and on PostgreSQL
//! the channel (`NOTIFY` / `LISTEN`) that carries events between the nodes sharing it. SQLite
//! serves one node, so there is nothing to carry.

use sqlx::postgres::{PgListener, PgPoolOptions};

use super::{Backend, Context, Store, StoreError};
use crate::alert::StoredAlert;

/// The PostgreSQL channel events travel on between nodes.
pub const EVENTS_CHANNEL: &str = "opsconductor_events";

/// Ids per query of [`Store::alerts_for_events`]: far below both databases' limits on bound
/// parameters (SQLite 32766, PostgreSQL 65535), and a batch of the writer fits in one or two
/// queries.
const EVENT_ALERTS_CHUNK: usize = 1_000;

impl Store {
    /// The alerts with these ids, whole, as events show them, in no particular order; ids of
    /// alerts that do not exist (any more) are left out.
    pub async fn alerts_for_events(&self, ids: &[i64]) -> Result<Vec<StoredAlert>, StoreError> {
        let mut alerts = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(EVENT_ALERTS_CHUNK) {
            alerts.extend(self.alerts_by_ids(chunk).await?);
        }
        Ok(alerts)
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
