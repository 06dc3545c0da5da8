//! Silences (maintenance windows) and the generation counter that tells every node's writer to
//! reload the silences it matches alerts against.
//!
//! The store keeps silences; it does not match them. Matching is the engine's
//! ([`crate::silence::silencing`]), against the copy the writer holds in memory, so that ingest
//! costs no query per event.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use super::filter_query::{Bind, bind_all, build_query, clamp_limit};
use super::{BUMP_GENERATION_SQL, Context, Store, StoreError, begin_write, ts};
use crate::silence::{Recurrence, Silence, SilenceMatchers, SilenceSpec, SilenceState};

/// The setting that counts silence changes, like `addons.generation` for addons.
const GENERATION_KEY: &str = "silences.generation";

/// The columns of [`SilenceRow`].
const SILENCE_COLUMNS: &str = "id, match_addon, match_device, match_alert_type, match_fields, \
     starts_at, ends_at, recurrence, comment, created_by, created_at, updated_at";

/// What [`Store::list_silences`] lists: newest first (by id), `before_id` the keyset cursor as
/// for alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceFilter {
    /// Only silences in this state at `at`.
    pub state: Option<SilenceState>,
    /// The instant `state` is judged at (the caller's now).
    pub at: DateTime<Utc>,
    pub before_id: Option<i64>,
    /// Clamped like alert pages: 0 means the default, at most the maximum.
    pub limit: u32,
}

#[derive(sqlx::FromRow)]
struct SilenceRow {
    id: i64,
    match_addon: Option<String>,
    match_device: Option<String>,
    match_alert_type: Option<String>,
    match_fields: Json<std::collections::BTreeMap<String, String>>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    recurrence: Option<Json<Value>>,
    comment: String,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<SilenceRow> for Silence {
    type Error = StoreError;

    fn try_from(row: SilenceRow) -> Result<Silence, StoreError> {
        let recurrence = row
            .recurrence
            .map(|Json(r)| serde_json::from_value::<Recurrence>(r))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("silence {}: recurrence: {e}", row.id)))?;
        Ok(Silence {
            id: row.id,
            matchers: SilenceMatchers {
                addon: row.match_addon,
                device: row.match_device,
                alert_type: row.match_alert_type,
                fields: row.match_fields.0,
            },
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            recurrence,
            comment: row.comment,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Checks a spec (see [`SilenceSpec::normalise`]) and puts its times in the form the store
/// keeps.
fn prepare(spec: SilenceSpec) -> Result<SilenceSpec, StoreError> {
    let mut spec = spec
        .normalise()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    spec.starts_at = ts(spec.starts_at);
    spec.ends_at = ts(spec.ends_at);
    // Truncation can only make the two equal if they were less than a microsecond apart.
    if spec.ends_at <= spec.starts_at {
        return Err(StoreError::Invalid(
            "silence field `ends_at`: must be after `starts_at`".into(),
        ));
    }
    Ok(spec)
}

fn recurrence_json(spec: &SilenceSpec) -> Option<Json<Value>> {
    spec.recurrence
        .as_ref()
        .map(|r| Json(serde_json::to_value(r).expect("a recurrence serialises")))
}

/// Checks, inside the write transaction `$tx`, that the addon a spec matches on is installed:
/// a typo would otherwise make a silence that silently matches nothing.
macro_rules! check_addon {
    ($tx:ident, $spec:expr, $op:expr) => {{
        if let Some(addon) = &$spec.matchers.addon {
            let found: Option<String> = sqlx::query_scalar("SELECT id FROM addons WHERE id = $1")
                .bind(addon)
                .fetch_optional(&mut *$tx)
                .await
                .context($op)?;
            if found.is_none() {
                return Err(StoreError::Invalid(format!(
                    "silence field `matchers.addon`: no addon `{addon}` is installed"
                )));
            }
        }
    }};
}

impl Store {
    /// How many times silences have changed (0 before the first); moves in the transaction of
    /// every change, so a reader that sees a new number also sees the change.
    pub async fn silences_generation(&self) -> Result<i64, StoreError> {
        self.generation(GENERATION_KEY).await
    }

    /// Creates a silence on behalf of `actor`. [`StoreError::Invalid`] names the field of a bad
    /// spec, including an addon that is not installed.
    pub async fn create_silence(
        &self,
        spec: SilenceSpec,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Silence, StoreError> {
        const OP: &str = "creating a silence";
        let spec = prepare(spec)?;
        let at = ts(now);
        let row: SilenceRow = with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            check_addon!(tx, spec, OP);
            let row = sqlx::query_as(&format!(
                "INSERT INTO silences (match_addon, match_device, match_alert_type, \
                     match_fields, starts_at, ends_at, recurrence, comment, created_by, \
                     created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                 RETURNING {SILENCE_COLUMNS}"
            ))
            .bind(&spec.matchers.addon)
            .bind(&spec.matchers.device)
            .bind(&spec.matchers.alert_type)
            .bind(Json(&spec.matchers.fields))
            .bind(spec.starts_at)
            .bind(spec.ends_at)
            .bind(recurrence_json(&spec))
            .bind(&spec.comment)
            .bind(actor)
            .bind(at)
            .fetch_one(&mut *tx)
            .await
            .context(OP)?;
            sqlx::query(BUMP_GENERATION_SQL)
                .bind(GENERATION_KEY)
                .bind(at)
                .execute(&mut *tx)
                .await
                .context(OP)?;
            tx.commit().await.context(OP)?;
            row
        });
        row.try_into()
    }

    /// Replaces silence `id`'s matchers, times, recurrence and comment (who created it and
    /// when stay). [`StoreError::NotFound`] if there is none; [`StoreError::Invalid`] as for
    /// [`Store::create_silence`].
    pub async fn update_silence(
        &self,
        id: i64,
        spec: SilenceSpec,
        now: DateTime<Utc>,
    ) -> Result<Silence, StoreError> {
        const OP: &str = "updating a silence";
        let spec = prepare(spec)?;
        let at = ts(now);
        let row: Option<SilenceRow> = with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            check_addon!(tx, spec, OP);
            let row = sqlx::query_as(&format!(
                "UPDATE silences SET match_addon = $2, match_device = $3, \
                     match_alert_type = $4, match_fields = $5, starts_at = $6, ends_at = $7, \
                     recurrence = $8, comment = $9, updated_at = $10 \
                 WHERE id = $1 RETURNING {SILENCE_COLUMNS}"
            ))
            .bind(id)
            .bind(&spec.matchers.addon)
            .bind(&spec.matchers.device)
            .bind(&spec.matchers.alert_type)
            .bind(Json(&spec.matchers.fields))
            .bind(spec.starts_at)
            .bind(spec.ends_at)
            .bind(recurrence_json(&spec))
            .bind(&spec.comment)
            .bind(at)
            .fetch_optional(&mut *tx)
            .await
            .context(OP)?;
            if row.is_some() {
                sqlx::query(BUMP_GENERATION_SQL)
                    .bind(GENERATION_KEY)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .context(OP)?;
                tx.commit().await.context(OP)?;
            }
            row
        });
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Deletes silence `id`. Alerts it suppressed stay suppressed until their next occurrence
    /// (see [`Store::apply_batch_silenced`]). [`StoreError::NotFound`] if there is none.
    pub async fn delete_silence(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        const OP: &str = "deleting a silence";
        let at = ts(now);
        with_pool!(self, write, |pool| {
            let mut tx = begin_write(pool).await.context(OP)?;
            let deleted = sqlx::query("DELETE FROM silences WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .context(OP)?
                .rows_affected();
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(BUMP_GENERATION_SQL)
                .bind(GENERATION_KEY)
                .bind(at)
                .execute(&mut *tx)
                .await
                .context(OP)?;
            tx.commit().await.context(OP)?;
        });
        Ok(())
    }

    /// One silence by id.
    pub async fn silence(&self, id: i64) -> Result<Option<Silence>, StoreError> {
        let row: Option<SilenceRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(&format!(
                "SELECT {SILENCE_COLUMNS} FROM silences WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await
            .context("reading a silence")?
        });
        row.map(Silence::try_from).transpose()
    }

    /// Silences matching `filter`, newest first.
    pub async fn list_silences(&self, filter: &SilenceFilter) -> Result<Vec<Silence>, StoreError> {
        let state = match filter.state {
            None => None,
            Some(SilenceState::Pending) => Some("starts_at > ?"),
            Some(SilenceState::Active) => Some("starts_at <= ? AND ends_at > ?"),
            Some(SilenceState::Expired) => Some("ends_at <= ?"),
        };
        let mut conditions: Vec<_> = state
            .map(|condition| (condition, Bind::Time(ts(filter.at))))
            .into_iter()
            .collect();
        if let Some(before) = filter.before_id {
            conditions.push(("id < ?", Bind::Int(before)));
        }
        let (sql, binds) = build_query(
            &format!("SELECT {SILENCE_COLUMNS} FROM silences"),
            conditions,
            "ORDER BY id DESC LIMIT ?",
            vec![Bind::Int(i64::from(clamp_limit(filter.limit)))],
        );
        let rows: Vec<SilenceRow> = with_pool!(self, read, |pool| {
            bind_all!(sqlx::query_as(&sql), binds)
                .fetch_all(pool)
                .await
                .context("listing silences")?
        });
        rows.into_iter().map(Silence::try_from).collect()
    }

    /// Every silence not yet ended at `at` (in force, or to come), oldest first: what the
    /// writer holds in memory and matches alerts against.
    pub async fn silences_ending_after(
        &self,
        at: DateTime<Utc>,
    ) -> Result<Vec<Silence>, StoreError> {
        let rows: Vec<SilenceRow> = with_pool!(self, read, |pool| {
            sqlx::query_as(&format!(
                "SELECT {SILENCE_COLUMNS} FROM silences WHERE ends_at > $1 ORDER BY id"
            ))
            .bind(ts(at))
            .fetch_all(pool)
            .await
            .context("loading silences")?
        });
        rows.into_iter().map(Silence::try_from).collect()
    }
}
