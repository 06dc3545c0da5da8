//! The webhook receiver: `POST /webhooks/{path}` → the addon that claims `path` → the addon's
//! own authentication and allow list ([`webhook_auth`](super::webhook_auth)) → ingest.
//! It answers 2xx only after the event's alerts are committed, so a sender that sees success
//! can forget the event, and a sender that sees an error can retry it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;

use crate::alert::ActionOutcome;
use crate::api::AppState;
use crate::api_error::{ApiError, with_challenge};
use crate::event::{RawEvent, WebhookRequest};
use crate::ingest::{IngestError, ingest};
use crate::manifest::BodyFormat;
use crate::sandbox::CallError;
use crate::webhook_auth::{Refusal, RefusalKind};

/// Headers that carry credentials for the runtime itself; addons never see them.
const STRIPPED_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "proxy-authorization",
    "x-opsconductor-token",
    "x-opsconductor-signature",
];

/// Counters of every webhook request, whatever became of it. Every request lands in exactly
/// one of `accepted` or a rejection counter.
#[derive(Debug, Default)]
pub struct WebhookCounters {
    received: AtomicU64,
    accepted: AtomicU64,
    unknown_path: AtomicU64,
    /// 401: missing or wrong token or signature, stale timestamp, replay.
    unauthorized: AtomicU64,
    /// 403: client address not in the addon's allow list.
    forbidden: AtomicU64,
    /// 503: the addon's settings cannot be used, so its webhooks are refused.
    misconfigured: AtomicU64,
    /// 429: over the addon's rate (`[limits] webhook_per_addon_per_second`).
    rate_limited: AtomicU64,
    too_large: AtomicU64,
    bad_body: AtomicU64,
    addon_failed: AtomicU64,
    /// 503: the addon is quarantined after repeated faults.
    quarantined: AtomicU64,
    store_failed: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct WebhookStats {
    pub received: u64,
    pub accepted: u64,
    pub unknown_path: u64,
    pub unauthorized: u64,
    pub forbidden: u64,
    pub misconfigured: u64,
    pub rate_limited: u64,
    pub too_large: u64,
    pub bad_body: u64,
    pub addon_failed: u64,
    /// 503: the addon is quarantined after repeated faults (`Retry-After` says until when).
    pub quarantined: u64,
    pub store_failed: u64,
}

impl WebhookCounters {
    pub fn snapshot(&self) -> WebhookStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WebhookStats {
            received: g(&self.received),
            accepted: g(&self.accepted),
            unknown_path: g(&self.unknown_path),
            unauthorized: g(&self.unauthorized),
            forbidden: g(&self.forbidden),
            misconfigured: g(&self.misconfigured),
            rate_limited: g(&self.rate_limited),
            too_large: g(&self.too_large),
            bad_body: g(&self.bad_body),
            addon_failed: g(&self.addon_failed),
            quarantined: g(&self.quarantined),
            store_failed: g(&self.store_failed),
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The answer to an accepted webhook.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Accepted {
    pub addon: String,
    /// Alerts the addon reported.
    pub alerts: usize,
    pub outcomes: Vec<ActionOutcome>,
}

/// A refused webhook: the API's one error shape, with a `WWW-Authenticate` challenge on 401.
#[derive(Debug)]
pub struct WebhookError {
    error: ApiError,
    challenge: Option<&'static str>,
    /// For 429: the seconds of `Retry-After`.
    retry_after: Option<u64>,
}

impl From<ApiError> for WebhookError {
    fn from(error: ApiError) -> WebhookError {
        WebhookError {
            error,
            challenge: None,
            retry_after: None,
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let mut response = self.error.into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        match self.challenge {
            Some(challenge) => with_challenge(response, challenge),
            None => response,
        }
    }
}

/// Counts a refusal of the addon's webhook settings and turns it into the answer.
fn refused(counters: &WebhookCounters, refusal: Refusal) -> WebhookError {
    let (counter, status, code) = match refusal.kind {
        RefusalKind::Unauthorized => (
            &counters.unauthorized,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        RefusalKind::Forbidden => (&counters.forbidden, StatusCode::FORBIDDEN, "forbidden"),
        RefusalKind::Unavailable => (
            &counters.misconfigured,
            StatusCode::SERVICE_UNAVAILABLE,
            "webhook_misconfigured",
        ),
    };
    bump(counter);
    WebhookError {
        error: ApiError::new(status, code, refusal.message),
        challenge: refusal.challenge,
        retry_after: None,
    }
}

/// Reads the body itself (not through an extractor) so that each addon's own `max_body_bytes`
/// applies, checked while streaming rather than after buffering. The addon's authentication
/// and allow list are checked as early as each can be: the address, token and signature
/// headers before the body is read, the signature over the body right after.
pub async fn receive(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Accepted>, WebhookError> {
    let counters = &state.webhook_counters;
    bump(&counters.received);
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path()
        .strip_prefix("/webhooks/")
        .unwrap_or_default()
        .to_owned();

    let Some(addon) = state.registry.find_by_webhook(&path) else {
        bump(&counters.unknown_path);
        return Err(
            ApiError::not_found(format!("no enabled addon handles webhook path `{path}`")).into(),
        );
    };
    let spec = addon
        .manifest
        .webhook
        .as_ref()
        .expect("the registry indexes only addons with a webhook spec");

    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    let auth = addon.webhook_auth.load_full();
    if state.webhooks_need_settings && auth.source().is_none() {
        // Fail closed: on a listener others can reach, "nobody chose" must not mean "anyone".
        return Err(refused(
            counters,
            Refusal {
                kind: RefusalKind::Unavailable,
                message: format!(
                    "addon `{id}` has no webhook authentication set, and this runtime listens beyond loopback: set it (`opsconductor addon webhook-auth {id} --mode token` or hmac, or PUT /api/v1/addons/{id}/settings), or accept anonymous posts explicitly with mode `none`",
                    id = addon.id()
                ),
                challenge: None,
            },
        ));
    }
    let now = chrono::Utc::now().timestamp();
    let pending = auth
        .check_request(peer.map(|a| a.ip()), &parts.headers, now)
        .map_err(|r| refused(counters, r))?;

    let body = read_limited(body, spec.max_body_bytes)
        .await
        .inspect_err(|e| {
            if e.status == StatusCode::PAYLOAD_TOO_LARGE {
                bump(&counters.too_large);
            } else {
                bump(&counters.bad_body);
            }
        })?;
    let admitted = auth
        .verify_body(pending, &body, now)
        .map_err(|r| refused(counters, r))?;
    // After authentication, so that nobody without the addon's credentials spends its rate.
    if let Err(retry) = state.limits.check_webhook(addon.id()) {
        bump(&counters.rate_limited);
        if let Some(admitted) = admitted {
            auth.forget(admitted);
        }
        return Err(WebhookError {
            error: ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "addon `{}` receives more webhooks than its rate allows on this node; retry later",
                    addon.id()
                ),
            ),
            challenge: None,
            retry_after: Some(retry.seconds()),
        });
    }

    let result = deliver(&state, &addon, parts, path, body, peer).await;
    if result.is_err()
        && let Some(admitted) = admitted
    {
        // Not accepted after all: the sender may retry this very request.
        auth.forget(admitted);
    }
    result
}

/// The rest of a request the addon's settings let through: format check, then ingest.
async fn deliver(
    state: &AppState,
    addon: &crate::registry::LoadedAddon,
    parts: axum::http::request::Parts,
    path: String,
    body: bytes::Bytes,
    peer: Option<SocketAddr>,
) -> Result<Json<Accepted>, WebhookError> {
    let counters = &state.webhook_counters;
    let spec = addon
        .manifest
        .webhook
        .as_ref()
        .expect("the registry indexes only addons with a webhook spec");
    check_format(&body, spec.format).inspect_err(|_| bump(&counters.bad_body))?;

    let source = peer.map(|addr| addr.to_string()).unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| !STRIPPED_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let query = parts
        .uri
        .query()
        .map(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default())
        .unwrap_or_default();
    let event = RawEvent::Webhook(WebhookRequest {
        method: parts.method.to_string(),
        path,
        headers,
        query,
        body: body.to_vec(),
        source,
    });

    match ingest(addon, event, &state.writer).await {
        Ok(report) => {
            bump(&counters.accepted);
            Ok(Json(Accepted {
                addon: addon.id().to_owned(),
                alerts: report.alerts,
                outcomes: report.outcomes,
            }))
        }
        Err(e) => {
            match &e {
                IngestError::Write(_) => bump(&counters.store_failed),
                IngestError::Addon(CallError::Quarantined { .. }) => bump(&counters.quarantined),
                _ => bump(&counters.addon_failed),
            }
            Err(ingest_error(addon.id(), e))
        }
    }
}

async fn read_limited(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("body exceeds this webhook's limit of {limit} bytes"),
        )),
        Err(e) => Err(ApiError::bad_request(
            "bad_body",
            format!("could not read the request body: {e}"),
        )),
    }
}

fn check_format(body: &[u8], format: BodyFormat) -> Result<(), ApiError> {
    if format == BodyFormat::Binary {
        return Ok(());
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request(
            "bad_body",
            format!(
                "body is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    if format == BodyFormat::Json {
        serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| {
            ApiError::bad_request("bad_body", format!("body is not valid JSON: {e}"))
        })?;
    }
    Ok(())
}

fn ingest_error(addon: &str, e: IngestError) -> WebhookError {
    if let IngestError::Addon(CallError::Quarantined {
        retry_after_seconds,
    }) = e
    {
        return WebhookError {
            error: ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "addon_quarantined",
                format!("addon `{addon}`: {e}"),
            ),
            challenge: None,
            retry_after: Some(retry_after_seconds),
        };
    }
    let error = match e {
        IngestError::Addon(CallError::Addon { kind, message }) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "addon_error",
            format!("addon `{addon}` refused the event ({kind}): {message}"),
        ),
        IngestError::TooManyAlerts { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_alerts",
            format!("addon `{addon}`: {e}"),
        ),
        IngestError::InvalidAlert { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_alert",
            format!("addon `{addon}`: {e}"),
        ),
        IngestError::Addon(CallError::Timeout(_)) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "addon_timeout",
            format!("addon `{addon}`: {e}"),
        ),
        IngestError::Addon(call) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            call.code(),
            format!("addon `{addon}`: {call}"),
        ),
        IngestError::Write(w) => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "store_unavailable",
            message: "alerts could not be stored; retry later".into(),
            internal: Some(w.to_string()),
        },
    };
    error.into()
}
