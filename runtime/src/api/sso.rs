//! OpenID Connect sign-in for the console: which sign-in methods there are, the redirect to the
//! identity provider, and the callback it sends the browser back to.
//!
//! The console holds its tokens in the page, not in cookies, so the callback hands it the new
//! session's refresh token in the URL's fragment (`/login#sso=…`), which browsers never send to
//! a server or put in a `Referer`; the console trades it at once for a fresh pair (refresh
//! tokens are used once), so the one left in the history is already spent. The sign-in's state
//! is also set in a cookie scoped to these routes, so that a code obtained by someone else
//! cannot be finished in a victim's browser (login CSRF).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::guard::{auth_failure, too_many};
use super::{ApiError, AppState};
use crate::auth::{AuthError, ClientInfo, ProviderAnswer};

/// The cookie that binds a sign-in to the browser that started it.
const STATE_COOKIE: &str = "oc_oidc_state";
/// The cookie's path: sent to the callback only.
const COOKIE_PATH: &str = "/api/v1/auth/oidc";
/// Where the console's sign-in page is.
const LOGIN_PAGE: &str = "/login";

/// The answer of `GET /api/v1/auth/methods`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AuthMethods {
    /// A user name and password (local users, and the directory when `[ldap]` is set).
    pub password: bool,
    /// Single sign-on through an OpenID Connect provider, when `[oidc]` is set.
    pub oidc: Option<OidcMethod>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct OidcMethod {
    /// The button says "Sign in with {display_name}".
    pub display_name: String,
    /// Where the button goes: a page of this server that redirects to the provider.
    pub start_url: &'static str,
}

/// `GET /api/v1/auth/methods`: how one may sign in here, for the sign-in page.
pub(super) async fn methods(State(state): State<AppState>) -> Json<AuthMethods> {
    Json(AuthMethods {
        password: true,
        oidc: state.oidc.as_ref().map(|oidc| OidcMethod {
            display_name: oidc.config().display_name.clone(),
            start_url: "/api/v1/auth/oidc/start",
        }),
    })
}

fn not_configured() -> ApiError {
    ApiError::not_found("single sign-on is not configured ([oidc])")
}

/// `GET /api/v1/auth/oidc/start`: a new sign-in; redirects the browser to the provider.
/// Rate limited like password logins: each one is a row in the store until it ends or expires.
pub(super) async fn start(
    State(state): State<AppState>,
    client: ClientInfo,
) -> Result<Response, ApiError> {
    let oidc = state.oidc.as_ref().ok_or_else(not_configured)?;
    if let Err(retry) = state.limits.check_login(client.ip, "", false) {
        return Ok(too_many(
            "too many sign-in attempts; wait before trying again",
            retry,
        ));
    }
    let (authorize_url, sign_in_state) = match state.auth.begin_oidc(oidc).await {
        Ok(begun) => begun,
        // A person at a browser: tell them on the sign-in page, not with a JSON error.
        Err(AuthError::Unavailable(message)) => {
            let to = format!("{LOGIN_PAGE}#sso_error={}", urlencoding(&message));
            return redirect(&to, None);
        }
        Err(other) => return Err(auth_failure(other)),
    };
    let secure = oidc.config().redirect_url.starts_with("https://");
    let cookie = format!(
        "{STATE_COOKIE}={sign_in_state}; Path={COOKIE_PATH}; Max-Age=600; HttpOnly; \
         SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    );
    redirect(&authorize_url, Some(cookie))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CallbackQuery {
    pub state: Option<String>,
    pub code: Option<String>,
    /// The provider's refusal (`access_denied`, …) instead of a code.
    pub error: Option<String>,
    pub error_description: Option<String>,
    // Other parameters (`iss`, `session_state`) are ignored: the ID token's issuer is checked.
}

/// `GET /api/v1/auth/oidc/callback`: where the provider sends the browser back. Signs the
/// person in and redirects to the console with the session's refresh token, or to the sign-in
/// page with what went wrong.
pub(super) async fn callback(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    q: Result<Query<CallbackQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let oidc = state.oidc.as_ref().ok_or_else(not_configured)?;
    let clear = format!("{STATE_COOKIE}=; Path={COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Lax");
    let fail = |message: &str| {
        let to = format!("{LOGIN_PAGE}#sso_error={}", urlencoding(message));
        redirect(&to, Some(clear.clone()))
    };
    let Ok(Query(q)) = q else {
        return fail("the identity provider's answer is malformed");
    };
    if let Err(retry) = state.limits.check_login(client.ip, "", false) {
        return Ok(too_many(
            "too many sign-in attempts; wait before trying again",
            retry,
        ));
    }
    let browser_state = cookie(&headers, STATE_COOKIE);
    let answer = ProviderAnswer {
        state: q.state.as_deref().unwrap_or_default(),
        browser_state: browser_state.as_deref(),
        code: q.code.as_deref(),
        provider_error: q.error.as_deref(),
    };
    match state.auth.login_oidc(oidc, &answer, &client).await {
        Ok(pair) => {
            let to = format!("{LOGIN_PAGE}#sso={}", pair.refresh_token.expose());
            redirect(&to, Some(clear))
        }
        Err(AuthError::InvalidCredentials) => {
            let message = match (&q.error, &q.error_description) {
                (Some(_), Some(description)) => {
                    format!("the identity provider refused: {description}")
                }
                (Some(error), None) => format!("the identity provider refused: {error}"),
                _ => "single sign-on failed: you may not sign in here, or the sign-in expired; \
                      try again"
                    .to_owned(),
            };
            fail(&message)
        }
        Err(AuthError::Unavailable(message)) => fail(&message),
        Err(other) => Err(auth_failure(other)),
    }
}

/// A `302 Found` to `location`, setting `cookie`.
fn redirect(location: &str, cookie: Option<String>) -> Result<Response, ApiError> {
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(location)
            .map_err(|_| ApiError::internal("a redirect to an invalid location"))?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = cookie {
        headers.insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).map_err(|_| ApiError::internal("an invalid cookie"))?,
        );
    }
    Ok(response)
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// `text` percent-encoded for a URL fragment.
fn urlencoding(text: &str) -> String {
    openidconnect::url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; oc_oidc_state=abc"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, STATE_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "oc_oidc"), None);
    }
}
