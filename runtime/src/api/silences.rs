//! `/api/v1/silences`: silences (maintenance windows). While one is in force, alerts it matches
//! are stored `suppressed` instead of `active`: still deduplicated and counted, but nobody is
//! called for them.
//!
//! Every change reloads this process's writer at once, so the next event is matched against
//! it; other nodes see it within [`crate::writer::SILENCE_POLL`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::alerts::{actor, created, invalid, parse_body};
use super::{ApiError, AppState, MAX_PAGE, page_limit};
use crate::alert::StoredAlert;
use crate::silence::{Silence, SilenceMatchers, SilenceSpec, SilenceState};
use crate::store::{SilenceFilter, StoreError};

/// A silence as the API shows it: as stored, plus where it is in its life now.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SilenceView {
    #[serde(flatten)]
    pub silence: Silence,
    /// `pending`, `active` (between `starts_at` and `ends_at`) or `expired`.
    pub state: SilenceState,
    /// Whether it suppresses alerts raised now: active and, for a recurring silence, inside
    /// one of its windows.
    pub in_force: bool,
}

impl From<Silence> for SilenceView {
    fn from(silence: Silence) -> SilenceView {
        let now = Utc::now();
        SilenceView {
            state: silence.state(now),
            in_force: silence.in_force(now),
            silence,
        }
    }
}

/// Query of `GET /api/v1/silences`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceQuery {
    /// `pending`, `active` or `expired`; all when absent.
    #[schemars(with = "Option<SilenceState>")]
    pub state: Option<String>,
    /// Page size, 1..=1000 (default 50).
    #[schemars(range(min = 1, max = MAX_PAGE))]
    pub limit: Option<u32>,
    /// Keyset cursor: the `next_before` of the previous page.
    pub before: Option<i64>,
}

/// One page of silences, newest first.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SilencePage {
    pub items: Vec<SilenceView>,
    /// Pass as `before` to get the next (older) page; `null` on the last page.
    pub next_before: Option<i64>,
}

fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request("bad_id", format!("silence id `{id}` is not a number")))
}

fn refused(e: StoreError, id: Option<i64>) -> ApiError {
    match (e, id) {
        (StoreError::NotFound, Some(id)) => ApiError::not_found(format!("no silence with id {id}")),
        (StoreError::Invalid(m), _) => invalid(m),
        (other, _) => other.into(),
    }
}

/// After a change: this process's writer matches against it from the next batch on.
async fn reload(state: &AppState) {
    state.writer.silences().reload_logged().await;
}

pub(super) async fn list_silences(
    State(state): State<AppState>,
    query: Result<Query<SilenceQuery>, QueryRejection>,
) -> Result<Json<SilencePage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let silence_state = q
        .state
        .map(|s| s.parse::<SilenceState>())
        .transpose()
        .map_err(|e| ApiError::bad_request("bad_query", format!("query parameter `state`: {e}")))?;
    let limit = page_limit(q.limit)?;
    let filter = SilenceFilter {
        state: silence_state,
        at: Utc::now(),
        before_id: q.before,
        limit,
    };
    let silences = state.store.list_silences(&filter).await?;
    let next_before = (silences.len() == limit as usize)
        .then(|| silences.last().map(|s| s.id))
        .flatten();
    Ok(Json(SilencePage {
        items: silences.into_iter().map(SilenceView::from).collect(),
        next_before,
    }))
}

/// `POST /api/v1/silences`: 201 with the silence and its `Location`.
pub(super) async fn create_silence(
    State(state): State<AppState>,
    extensions: Extensions,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec: SilenceSpec = parse_body("silence", &body)?;
    let silence = state
        .store
        .create_silence(spec, &actor(&extensions), Utc::now())
        .await
        .map_err(|e| refused(e, None))?;
    reload(&state).await;
    Ok(created(
        format!("/api/v1/silences/{}", silence.id),
        SilenceView::from(silence),
    ))
}

pub(super) async fn get_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SilenceView>, ApiError> {
    let id = parse_id(&id)?;
    state
        .store
        .silence(id)
        .await?
        .map(|s| Json(s.into()))
        .ok_or_else(|| ApiError::not_found(format!("no silence with id {id}")))
}

/// `PUT /api/v1/silences/{id}`: replaces matchers, times, recurrence and comment. Alerts
/// already suppressed stay so until their next occurrence, which the new version decides.
pub(super) async fn update_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<SilenceView>, ApiError> {
    let id = parse_id(&id)?;
    let spec: SilenceSpec = parse_body("silence", &body)?;
    let silence = state
        .store
        .update_silence(id, spec, Utc::now())
        .await
        .map_err(|e| refused(e, Some(id)))?;
    reload(&state).await;
    Ok(Json(silence.into()))
}

/// `DELETE /api/v1/silences/{id}`: 204. Alerts it suppressed become `active` at their next
/// occurrence (unless another silence covers them).
pub(super) async fn delete_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    state
        .store
        .delete_silence(id, Utc::now())
        .await
        .map_err(|e| refused(e, Some(id)))?;
    reload(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/v1/silences/preview`: a silence as for create or update, of which only
/// the matchers count (an editor sends its whole form, comment or not).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PreviewBody {
    matchers: SilenceMatchers,
}

/// Open alerts listed in a preview; the count covers them all.
pub const PREVIEW_SAMPLE: usize = 10;

/// The answer of `POST /api/v1/silences/preview`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SilencePreview {
    /// Open alerts the matchers match now.
    pub matching: usize,
    /// The newest of them, at most [`PREVIEW_SAMPLE`].
    pub alerts: Vec<StoredAlert>,
}

/// `POST /api/v1/silences/preview`: how many open alerts a silence with these matchers would
/// cover, by the engine's own matching, so that an operator sees what a silence takes away
/// before creating it.
pub(super) async fn preview_silence(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<SilencePreview>, ApiError> {
    let body: PreviewBody = parse_body("silence", &body)?;
    let matchers = body
        .matchers
        .normalise()
        .map_err(|e| invalid(e.to_string()))?;
    let open = state.store.open_alerts().await?;
    let mut matching = open.into_iter().filter(|a| {
        matchers.matches(
            &a.addon_id,
            &a.alert_type,
            a.device_ip.as_deref(),
            a.device_name.as_deref(),
            &a.fields,
        )
    });
    let alerts: Vec<StoredAlert> = matching.by_ref().take(PREVIEW_SAMPLE).collect();
    Ok(Json(SilencePreview {
        matching: alerts.len() + matching.count(),
        alerts,
    }))
}
