//! `/api/v1/alerts`: the alert list (filters, keyset pages), every open alert at once and its
//! facet counts (what the console shows, filtered by [`crate::filter`]), one alert, operators'
//! actions (acknowledge, unacknowledge, resolve, notes, bulk by ids or by filter) and each
//! alert's history.
//!
//! Every action is recorded in the alert's history with who did it, which [`actor`] says.
//! Request bodies are read as bytes and parsed by [`parse_body`], so that a refusal has the
//! API's one error shape and names the field.

use std::collections::HashSet;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, MAX_PAGE, page_limit};
use crate::alert::{AlertFilter, AlertStatus, Severity, StoredAlert};
use crate::api_error::error_path;
use crate::filter::{Facets, Filter};
use crate::store::{AlertEvent, AlertOp, AlertSearch, HistoryPage, StoreError, check_note};

/// Most alerts one bulk request may name; also how many alerts one transaction of a bulk action
/// by filter changes.
pub const MAX_BULK_IDS: usize = 1000;

/// Failures listed in the answer of a bulk action by filter (which may act on every open
/// alert); the counts cover them all.
pub const MAX_BULK_FAILURES_LISTED: usize = 100;

/// Longest `q` (text search) of the alert list, in bytes.
pub const MAX_QUERY_TEXT_LEN: usize = 256;

/// Who is acting, as recorded in alert history and on silences: the caller the guard put in the
/// request's extensions (`user:alice`, `key:ci-bot`).
pub(crate) fn actor(extensions: &Extensions) -> String {
    super::auth::actor_name(extensions)
}

pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
}

/// Parses a JSON body: 400 when it is not JSON, 422 naming the field when it is JSON of the
/// wrong shape. `what` starts the message ("silence", "bulk action").
pub(crate) fn parse_body<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().clone();
        let inner = e.into_inner();
        (error_path(&path, &inner.to_string()), inner)
    });
    let parsed = parsed.and_then(|v| de.end().map(|()| v).map_err(|e| (".".to_owned(), e)));
    parsed.map_err(|(path, e)| {
        if e.is_data() {
            if path == "." {
                invalid(format!("{what}: {e}"))
            } else {
                invalid(format!("{what} field `{path}`: {e}"))
            }
        } else {
            ApiError::bad_request("bad_body", format!("{what} body is not valid JSON: {e}"))
        }
    })
}

fn bad_query(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("bad_query", message)
}

fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request("bad_id", format!("alert id `{id}` is not a number")))
}

fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            bad_query(format!(
                "query parameter `{name}`: `{value}` is not an RFC 3339 time ({e})"
            ))
        })
}

/// Maps the store's refusals of an action on alert `id` to their statuses.
fn refused(e: StoreError, id: i64) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(format!("no alert with id {id}")),
        StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
        StoreError::Invalid(m) => invalid(m),
        other => other.into(),
    }
}

/// Query of `GET /api/v1/alerts`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    // Read as text and parsed by the handler (for its error message); the schema says what
    // parses, which `query_values_are_their_serde_names` in `api::openapi` keeps true.
    #[schemars(with = "Option<AlertStatus>")]
    pub status: Option<String>,
    #[schemars(with = "Option<Severity>")]
    pub severity: Option<String>,
    pub addon: Option<String>,
    /// Device IP or name, exactly.
    pub device: Option<String>,
    /// Alerts last seen at or after this RFC 3339 time.
    #[schemars(with = "Option<DateTime<Utc>>")]
    pub since: Option<String>,
    /// Alerts last seen before this RFC 3339 time.
    #[schemars(with = "Option<DateTime<Utc>>")]
    pub until: Option<String>,
    /// Text in the title or message, ignoring the case of ASCII letters.
    #[schemars(length(max = MAX_QUERY_TEXT_LEN))]
    pub q: Option<String>,
    /// Page size, 1..=1000 (default 50).
    #[schemars(range(min = 1, max = MAX_PAGE))]
    pub limit: Option<u32>,
    /// Keyset cursor: the `next_before` of the previous page.
    pub before: Option<i64>,
}

/// One page of alerts, newest first.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AlertPage {
    pub items: Vec<StoredAlert>,
    /// Pass as `before` to get the next (older) page; `null` on the last page.
    pub next_before: Option<i64>,
}

pub(super) async fn list_alerts(
    State(state): State<AppState>,
    query: Result<Query<AlertQuery>, QueryRejection>,
) -> Result<Json<AlertPage>, ApiError> {
    let Query(q) = query.map_err(|e| bad_query(e.body_text()))?;
    let status = q
        .status
        .map(|s| s.parse::<AlertStatus>())
        .transpose()
        .map_err(|e| bad_query(format!("query parameter `status`: {e}")))?;
    let severity = q
        .severity
        .map(|s| s.parse::<Severity>())
        .transpose()
        .map_err(|e| bad_query(format!("query parameter `severity`: {e}")))?;
    let limit = page_limit(q.limit)?;
    let since = q.since.map(|t| parse_time("since", &t)).transpose()?;
    let until = q.until.map(|t| parse_time("until", &t)).transpose()?;
    if let (Some(since), Some(until)) = (since, until)
        && until <= since
    {
        return Err(bad_query("query parameter `until`: must be after `since`"));
    }
    // An empty search (`q=`) searches for nothing in particular, as a blank search box does.
    let text = q.q.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    if text.as_ref().is_some_and(|t| t.len() > MAX_QUERY_TEXT_LEN) {
        return Err(bad_query(format!(
            "query parameter `q`: is longer than {MAX_QUERY_TEXT_LEN} bytes"
        )));
    }
    let search = AlertSearch {
        filter: AlertFilter {
            status,
            severity,
            addon_id: q.addon,
            device: q.device,
            before_id: q.before,
            limit,
        },
        since,
        until,
        text,
    };
    let items = state.store.search_alerts(&search).await?;
    let next_before = (items.len() == limit as usize)
        .then(|| items.last().map(|a| a.id))
        .flatten();
    Ok(Json(AlertPage { items, next_before }))
}

pub(super) async fn get_alert(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StoredAlert>, ApiError> {
    let id = parse_id(&id)?;
    state
        .store
        .get_alert(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no alert with id {id}")))
}

/// The answer of `GET /api/v1/alerts/open`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct OpenAlerts {
    /// Every open alert, newest first.
    pub alerts: Vec<StoredAlert>,
}

/// `GET /api/v1/alerts/open`: every open alert at once, as the console holds them (it then
/// follows changes over `/ws`). Compressed on the wire by the route's layer.
pub(super) async fn open_alerts(
    State(state): State<AppState>,
) -> Result<Json<OpenAlerts>, ApiError> {
    Ok(Json(OpenAlerts {
        alerts: state.store.open_alerts().await?,
    }))
}

/// Query of `GET /api/v1/alerts/facets`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FacetQuery {
    /// A filter in the console's language ([`crate::filter`]); all open alerts when absent.
    pub filter: Option<String>,
}

fn parse_filter(text: &str) -> Result<Filter, String> {
    Filter::parse(text).map_err(|e| e.to_string())
}

/// `GET /api/v1/alerts/facets?filter=`: how many open alerts the filter matches, and how many
/// of those have each severity, status, addon, device, category, alert type and
/// acknowledgement — from one read of the open alerts, whatever the number of facets.
pub(super) async fn facets(
    State(state): State<AppState>,
    query: Result<Query<FacetQuery>, QueryRejection>,
) -> Result<Json<Facets>, ApiError> {
    let Query(q) = query.map_err(|e| bad_query(e.body_text()))?;
    let filter = parse_filter(q.filter.as_deref().unwrap_or(""))
        .map_err(|e| bad_query(format!("query parameter `filter`: {e}")))?;
    let open = state.store.open_alerts().await?;
    Ok(Json(crate::filter::facets(&open, &filter)))
}

/// Body of `POST /api/v1/alerts/{id}/acknowledge|unacknowledge|resolve`; optional (an empty
/// body is no note).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    #[serde(default)]
    note: Option<String>,
}

/// A note from field `field` of a `what` body, checked.
fn note(what: &str, field: &str, text: Option<String>) -> Result<Option<String>, ApiError> {
    text.map(|t| check_note(&t).map_err(|m| invalid(format!("{what} field `{field}`: {m}"))))
        .transpose()
}

async fn act(
    state: AppState,
    extensions: Extensions,
    id: String,
    body: Bytes,
    op: AlertOp,
) -> Result<Json<StoredAlert>, ApiError> {
    let id = parse_id(&id)?;
    let body: ActionBody = if body.iter().all(u8::is_ascii_whitespace) {
        ActionBody::default()
    } else {
        parse_body("action", &body)?
    };
    let note = note("action", "note", body.note)?;
    let change = state
        .store
        .act_on_alert(id, op, &actor(&extensions), note.as_deref(), Utc::now())
        .await
        .map_err(|e| refused(e, id))?;
    publish(&state, op, &[id]);
    Ok(Json(change.alert))
}

/// Tells WebSocket clients about alerts an operator changed: `alert_resolved` for a
/// resolution, `alert_updated` for an acknowledgement or its withdrawal. A note changes only
/// the alert's history, which is not an event.
fn publish(state: &AppState, op: AlertOp, ids: &[i64]) {
    use crate::bus::{AlertChangeKind, ChangedAlert};
    let kind = match op {
        AlertOp::Resolve => AlertChangeKind::Resolved,
        AlertOp::Acknowledge | AlertOp::Unacknowledge => AlertChangeKind::Updated,
        AlertOp::Note => return,
    };
    state.events.changed(
        ids.iter()
            .map(|&alert_id| ChangedAlert { kind, alert_id })
            .collect(),
    );
}

/// `POST /api/v1/alerts/{id}/acknowledge`: an `active` or `suppressed` alert becomes
/// `acknowledged`; 409 if it is acknowledged or resolved already.
pub(super) async fn acknowledge(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<StoredAlert>, ApiError> {
    act(state, extensions, id, body, AlertOp::Acknowledge).await
}

/// `POST /api/v1/alerts/{id}/unacknowledge`: an `acknowledged` alert becomes `active` again;
/// 409 if it is not acknowledged.
pub(super) async fn unacknowledge(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<StoredAlert>, ApiError> {
    act(state, extensions, id, body, AlertOp::Unacknowledge).await
}

/// `POST /api/v1/alerts/{id}/resolve`: an open alert becomes `resolved`; 409 if it is already.
/// The next occurrence of the problem opens a new alert.
pub(super) async fn resolve(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<StoredAlert>, ApiError> {
    act(state, extensions, id, body, AlertOp::Resolve).await
}

/// Body of `POST /api/v1/alerts/{id}/notes`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    text: String,
}

/// `POST /api/v1/alerts/{id}/notes`: adds a note to the alert's history (in any status);
/// answers 201 with the history entry.
pub(super) async fn add_note(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<AlertEvent>), ApiError> {
    let id = parse_id(&id)?;
    let body: NoteBody = parse_body("note", &body)?;
    let text = note("note", "text", Some(body.text))?;
    state
        .store
        .act_on_alert(
            id,
            AlertOp::Note,
            &actor(&extensions),
            text.as_deref(),
            Utc::now(),
        )
        .await
        .map(|change| (StatusCode::CREATED, Json(change.event)))
        .map_err(|e| refused(e, id))
}

/// Query of `GET /api/v1/alerts/{id}/history`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Page size, 1..=1000 (default 50).
    #[schemars(range(min = 1, max = MAX_PAGE))]
    pub limit: Option<u32>,
    /// Keyset cursor: the `next_after` of the previous page.
    pub after: Option<i64>,
}

/// `GET /api/v1/alerts/{id}/history`: the alert and its history, oldest first, in pages.
pub(super) async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<HistoryPage>, ApiError> {
    let id = parse_id(&id)?;
    let Query(q) = query.map_err(|e| bad_query(e.body_text()))?;
    let limit = page_limit(q.limit)?;
    state
        .store
        .alert_history(id, q.after, limit)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no alert with id {id}")))
}

/// Body of `POST /api/v1/alerts/bulk`: the alerts named by `ids`, or every open alert that
/// `filter` matches.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    #[serde(default)]
    ids: Option<Vec<i64>>,
    #[serde(default)]
    filter: Option<String>,
    action: AlertOp,
    #[serde(default)]
    note: Option<String>,
}

/// What a bulk action did to one alert: the alert as changed, or the error a single action
/// would have answered.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct BulkResult {
    pub id: i64,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<StoredAlert>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<BulkError>,
}

/// Why a bulk action did not apply to one alert: the `code` and `message` of the error the
/// single action would have answered.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct BulkError {
    pub code: &'static str,
    pub message: String,
}

/// The answer of `POST /api/v1/alerts/bulk`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct BulkAnswer {
    /// By ids: one per id, in the order of the request. By filter: the failures only, at most
    /// [`MAX_BULK_FAILURES_LISTED`].
    pub results: Vec<BulkResult>,
    /// By filter: how many open alerts the filter matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<usize>,
    pub succeeded: usize,
    pub failed: usize,
}

/// `POST /api/v1/alerts/bulk` `{"ids": [...], "action": "acknowledge" | "unacknowledge" |
/// "resolve" | "note", "note"?}`: the action on every alert named, in one transaction, with an
/// outcome per id; an alert that is missing or in the wrong status is refused alone (its
/// outcome says why, as the single action would have). 200 whatever the outcomes.
///
/// With `"filter": "..."` instead of `ids`: the action on every open alert the filter
/// ([`crate::filter`]) matches now — what a console shows for it — in transactions of
/// [`MAX_BULK_IDS`] alerts; the answer counts them and lists the failures.
pub(super) async fn bulk(
    State(state): State<AppState>,
    extensions: Extensions,
    body: Bytes,
) -> Result<Json<BulkAnswer>, ApiError> {
    let body: BulkBody = parse_body("bulk action", &body)?;
    let note = note("bulk action", "note", body.note)?;
    if body.action == AlertOp::Note && note.is_none() {
        return Err(invalid(
            "bulk action field `note`: is required when `action` is `note`",
        ));
    }
    let actor = actor(&extensions);
    let (ids, matched) = match (body.ids, body.filter) {
        (Some(ids), None) => {
            if ids.is_empty() || ids.len() > MAX_BULK_IDS {
                return Err(invalid(format!(
                    "bulk action field `ids`: must name 1 to {MAX_BULK_IDS} alerts"
                )));
            }
            let mut seen = HashSet::with_capacity(ids.len());
            if let Some(id) = ids.iter().find(|id| !seen.insert(**id)) {
                return Err(invalid(format!(
                    "bulk action field `ids`: alert {id} is named twice"
                )));
            }
            (ids, None)
        }
        (None, Some(filter)) => {
            let filter = parse_filter(&filter)
                .map_err(|e| invalid(format!("bulk action field `filter`: {e}")))?;
            let open = state.store.open_alerts().await?;
            let ids: Vec<i64> = open
                .iter()
                .filter(|a| filter.matches(a))
                .map(|a| a.id)
                .collect();
            let matched = ids.len();
            (ids, Some(matched))
        }
        _ => {
            return Err(invalid(
                "bulk action: give either `ids` or `filter` (exactly one of them)",
            ));
        }
    };
    let mut results = Vec::with_capacity(if matched.is_some() { 0 } else { ids.len() });
    let (mut succeeded, mut failed) = (0, 0);
    for chunk in ids.chunks(MAX_BULK_IDS) {
        let outcomes = state
            .store
            .act_on_alerts(chunk, body.action, &actor, note.as_deref(), Utc::now())
            .await
            .map_err(|e| match e {
                StoreError::Invalid(m) => invalid(m),
                other => other.into(),
            })?;
        let changed: Vec<i64> = chunk
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| outcome.is_ok())
            .map(|(&id, _)| id)
            .collect();
        publish(&state, body.action, &changed);
        for (&id, outcome) in chunk.iter().zip(outcomes) {
            let result = match outcome {
                Ok(change) => {
                    succeeded += 1;
                    if matched.is_some() {
                        continue;
                    }
                    BulkResult {
                        id,
                        ok: true,
                        alert: Some(change.alert),
                        error: None,
                    }
                }
                Err(e) => {
                    failed += 1;
                    if matched.is_some() && results.len() >= MAX_BULK_FAILURES_LISTED {
                        continue;
                    }
                    let e = refused(e, id);
                    BulkResult {
                        id,
                        ok: false,
                        alert: None,
                        error: Some(BulkError {
                            code: e.code,
                            // Internal failures keep their detail out of the answer, as
                            // `ApiError` does for a single request.
                            message: e.message,
                        }),
                    }
                }
            };
            results.push(result);
        }
    }
    Ok(Json(BulkAnswer {
        results,
        matched,
        succeeded,
        failed,
    }))
}

/// Converts a result to a response; used by handlers that answer 201 with a `Location`.
pub(super) fn created<T: Serialize>(location: String, body: T) -> Response {
    (
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location)],
        Json(body),
    )
        .into_response()
}
