//! `/api/v1/views`: named console views (a filter, grouping and sort, as the console's URL
//! query), saved per caller and optionally shared with everyone. Scoped to the caller: any
//! signed-in caller lists their own and the shared ones, and deletes only their own.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Extensions, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::alerts::{actor, created, invalid, parse_body};
use super::{ApiError, AppState};
use crate::store::{NewView, SavedView, StoreError};

/// The answer of `GET /api/v1/views`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ViewList {
    /// The caller's views and everyone's shared ones, by name.
    pub items: Vec<SavedView>,
}

/// Body of `POST /api/v1/views`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewBody {
    name: String,
    query: String,
    #[serde(default)]
    shared: bool,
}

pub(super) async fn list_views(
    State(state): State<AppState>,
    extensions: Extensions,
) -> Result<Json<ViewList>, ApiError> {
    Ok(Json(ViewList {
        items: state.store.list_views(&actor(&extensions)).await?,
    }))
}

/// `POST /api/v1/views`: 201 with the view; 409 when the caller has one of that name.
pub(super) async fn create_view(
    State(state): State<AppState>,
    extensions: Extensions,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: ViewBody = parse_body("view", &body)?;
    let view = state
        .store
        .create_view(
            &actor(&extensions),
            NewView {
                name: body.name,
                query: body.query,
                shared: body.shared,
            },
            chrono::Utc::now(),
        )
        .await
        .map_err(|e| match e {
            StoreError::Invalid(m) => invalid(m),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            other => other.into(),
        })?;
    Ok(created(format!("/api/v1/views/{}", view.id), view))
}

/// `DELETE /api/v1/views/{id}`: 204; 404 unless the caller saved it.
pub(super) async fn delete_view(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::not_found(format!("you have no view with id {id}"));
    let parsed: i64 = id.parse().map_err(|_| not_found())?;
    match state.store.delete_view(&actor(&extensions), parsed).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}
