//! The one error answer of every HTTP handler — the API's, the webhooks', the WebSocket
//! upgrade's and the listener's own: `{"error": {"code", "message"}}` with a status, the
//! internal detail kept for the log. Below `api` so that whatever serves HTTP can answer with
//! it without depending on the router.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The API's `WWW-Authenticate` challenge (RFC 6750), sent with every 401 of the guard and of
/// the WebSocket upgrade.
pub const API_CHALLENGE: &str = "Bearer realm=\"opsconductor\"";

/// The bearer value of the one `Authorization` header, if there is one: `Bearer <value>`, the
/// scheme in any case, the value trimmed. A header that is there but is not that (another
/// scheme, no value, not ASCII, or given twice) is refused with the reason — which never
/// repeats the header's value, as it may be a credential.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, &'static str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("more than one Authorization header");
    }
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header is not ASCII")?;
    match value.trim().split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err("the Authorization header must be `Bearer <token>`"),
    }
}

/// Where a JSON document is wrong, as the API's refusals name it: the field's path (`.` for
/// the document itself). The path of an unknown field ends in that field, which serde's
/// message names already, so it is reported at its parent (`matchers`: unknown field `host`).
pub fn error_path(path: &serde_path_to_error::Path, message: &str) -> String {
    let mut path = path.to_string();
    if message.starts_with("unknown field") {
        path = path
            .rsplit_once('.')
            .map_or("", |(parent, _)| parent)
            .to_owned();
    }
    if path.is_empty() || path == "?" {
        path = ".".to_owned();
    }
    path
}

/// `response` with the `WWW-Authenticate` challenge a 401 must carry.
pub fn with_challenge(mut response: Response, challenge: &'static str) -> Response {
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_headers_are_parsed_and_malformed_ones_refused() {
        let headers = |values: &[&str]| {
            let mut map = HeaderMap::new();
            for v in values {
                map.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            }
            map
        };
        let bearer = |values: &[&str]| bearer_token(&headers(values)).map(|b| b.map(str::to_owned));
        assert_eq!(bearer(&[]), Ok(None));
        assert_eq!(bearer(&["Bearer oc_abc"]), Ok(Some("oc_abc".to_owned())));
        assert_eq!(
            bearer(&["bearer  eyJ.x.y "]),
            Ok(Some("eyJ.x.y".to_owned()))
        );
        for bad in [
            &["Basic dXNlcjpwYXNz"][..],
            &["Bearer"],
            &["Bearer "],
            &["Bearer a", "Bearer b"],
        ] {
            let refusal = bearer(bad).unwrap_err();
            assert!(!refusal.contains("dXNlcjpwYXNz"), "{refusal}");
        }
        let mut not_ascii = HeaderMap::new();
        not_ascii.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        );
        assert_eq!(
            bearer_token(&not_ascii),
            Err("the Authorization header is not ASCII")
        );
    }
}
