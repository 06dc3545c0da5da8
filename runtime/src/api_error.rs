//! The one error answer of every HTTP handler — the API's, the webhooks', the WebSocket
//! upgrade's and the listener's own: `{"error": {"code", "message"}}` with a status, the
//! internal detail kept for the log. Below `api` so that whatever serves HTTP can answer with
//! it without depending on the router.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answer. `message` is written for the client; internal detail goes to the log only.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Logged by middleware, never sent.
    pub internal: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            internal: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// A failure of ours the client can do nothing about; the detail stays in the log.
    pub fn internal(detail: impl ToString) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "internal error; see the server log".into(),
            internal: Some(detail.to_string()),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        // sqlx's messages can name tables, columns and constraint internals: never send them.
        ApiError::internal(e)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

/// What `log_errors` (and the guard's audit) finds on an error response.
#[derive(Clone)]
pub(crate) struct LoggedError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) internal: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        });
        let mut response = (self.status, body).into_response();
        response.extensions_mut().insert(LoggedError {
            code: self.code,
            message: self.message,
            internal: self.internal,
        });
        response
    }
}
