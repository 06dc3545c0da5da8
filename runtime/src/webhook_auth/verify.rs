//! Checking a request against an addon's settings: the client address, the token or the
//! signature, and (with `replay.rs`) that a signature is not used twice.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::replay::ReplayCache;
use super::settings::{AddonSettings, AuthMode, SettingsError};
use super::{
    DEFAULT_TOLERANCE_SECONDS, REPLAY_CAPACITY, SIGNATURE_HEADER, SIGNATURE_PREFIX,
    TIMESTAMP_HEADER, TOKEN_HEADER,
};
use crate::api_error::bearer_token;
use crate::client_addr::ip_allowed;

/// Why a webhook request was refused before it reached its addon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    /// For the sender; names the header or check that failed, never a secret.
    pub message: String,
    /// For 401: the `WWW-Authenticate` challenge.
    pub challenge: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// 401: no or wrong credentials, a stale timestamp, a replay.
    Unauthorized,
    /// 403: the client address is not allowed.
    Forbidden,
    /// 503: the addon's settings cannot be used; nothing is accepted until they are fixed.
    Unavailable,
}

const TOKEN_CHALLENGE: &str = "Bearer realm=\"opsconductor-webhook\"";
const HMAC_CHALLENGE: &str = "OpsConductor-HMAC-SHA256 realm=\"opsconductor-webhook\", \
     headers=\"X-OpsConductor-Timestamp X-OpsConductor-Signature\"";

fn unauthorized(challenge: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        kind: RefusalKind::Unauthorized,
        message: message.into(),
        challenge: Some(challenge),
    }
}

/// An addon's webhook settings, ready to check requests with. Built by the registry when it
/// loads the addon (and again when the settings change), shared by every request.
pub struct WebhookAuth {
    /// The stored object this was built from, so that a reload can tell whether it changed.
    source: Option<Value>,
    state: State,
}

enum State {
    Ready { check: Check, allow: Vec<IpNet> },
    Unusable,
}

enum Check {
    Open,
    /// SHA-256 of the token: comparing digests in constant time also hides the token's length.
    Token {
        digest: [u8; 32],
    },
    Hmac {
        /// Keyed once; cloned per request. Boxed: it is most of the variant's size.
        mac: Box<Hmac<Sha256>>,
        /// SHA-256 of the secret, to tell whether a settings change kept it.
        key_digest: [u8; 32],
        tolerance: i64,
        /// Shared with the settings that replace these when the secret and window stay the
        /// same (a change of networks), so that a change does not reopen the window to
        /// replays.
        replays: Arc<Mutex<ReplayCache>>,
    },
}

impl fmt::Debug for WebhookAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            State::Unusable => f.write_str("WebhookAuth(unusable)"),
            State::Ready { check, allow } => {
                let mode = match check {
                    Check::Open => "none",
                    Check::Token { .. } => "token",
                    Check::Hmac { .. } => "hmac",
                };
                f.debug_struct("WebhookAuth")
                    .field("mode", &mode)
                    .field("allow", allow)
                    .finish_non_exhaustive()
            }
        }
    }
}

/// What the checks before the body found, for [`WebhookAuth::verify_body`].
#[derive(Debug)]
pub struct Pending {
    signed: Option<(i64, [u8; 32])>,
}

/// A signature accepted and remembered; [`WebhookAuth::forget`] it when the request fails
/// after all, so that the sender's retry of the same request is not taken for a replay.
#[derive(Debug)]
pub struct Admitted {
    signature: [u8; 32],
}

impl WebhookAuth {
    /// An addon without settings: any sender, any address.
    pub fn open() -> WebhookAuth {
        WebhookAuth {
            source: None,
            state: State::Ready {
                check: Check::Open,
                allow: Vec::new(),
            },
        }
    }

    /// Settings that could not be parsed: every request is refused until they are fixed.
    pub fn unusable(source: Option<Value>) -> WebhookAuth {
        WebhookAuth {
            source,
            state: State::Unusable,
        }
    }

    /// From the addon's stored settings object (none: [`WebhookAuth::open`]).
    pub fn from_stored(source: Option<&Value>) -> Result<WebhookAuth, SettingsError> {
        WebhookAuth::replacing(source, None)
    }

    /// Like [`WebhookAuth::from_stored`], for settings that replace `previous` on a loaded
    /// addon: when both sign with the same secret and window, the signatures `previous`
    /// accepted are still remembered.
    pub fn replacing(
        source: Option<&Value>,
        previous: Option<&WebhookAuth>,
    ) -> Result<WebhookAuth, SettingsError> {
        let Some(value) = source else {
            return Ok(WebhookAuth::open());
        };
        let settings = AddonSettings::from_stored(value)?;
        let mut next = WebhookAuth::new(&settings, Some(value.clone()));
        if let (
            State::Ready {
                check:
                    Check::Hmac {
                        key_digest,
                        tolerance,
                        replays,
                        ..
                    },
                ..
            },
            Some(WebhookAuth {
                state:
                    State::Ready {
                        check:
                            Check::Hmac {
                                key_digest: old_key,
                                tolerance: old_tolerance,
                                replays: old_replays,
                                ..
                            },
                        ..
                    },
                ..
            }),
        ) = (&mut next.state, previous)
            && key_digest == old_key
            && tolerance == old_tolerance
        {
            *replays = old_replays.clone();
        }
        Ok(next)
    }

    fn new(settings: &AddonSettings, source: Option<Value>) -> WebhookAuth {
        let auth = &settings.webhook.auth;
        let secret = || {
            auth.secret
                .as_ref()
                .expect("validated settings of this mode have a secret")
                .expose()
                .as_bytes()
        };
        let check = match auth.mode {
            AuthMode::None => Check::Open,
            AuthMode::Token => Check::Token {
                digest: Sha256::digest(secret()).into(),
            },
            AuthMode::Hmac => Check::Hmac {
                mac: Box::new(
                    Hmac::new_from_slice(secret()).expect("HMAC takes keys of any length"),
                ),
                key_digest: Sha256::digest(secret()).into(),
                tolerance: i64::from(auth.tolerance_seconds.unwrap_or(DEFAULT_TOLERANCE_SECONDS)),
                replays: Arc::new(Mutex::new(ReplayCache::new(REPLAY_CAPACITY))),
            },
        };
        WebhookAuth {
            source,
            state: State::Ready {
                check,
                allow: settings.webhook.allow_cidrs.iter().map(|c| c.0).collect(),
            },
        }
    }

    /// The stored settings object this was built from.
    pub fn source(&self) -> Option<&Value> {
        self.source.as_ref()
    }

    /// The checks that need no body: usable settings, the client address, the token, the
    /// presence and freshness of the signature headers. `now` is Unix seconds.
    pub fn check_request(
        &self,
        client: Option<IpAddr>,
        headers: &HeaderMap,
        now: i64,
    ) -> Result<Pending, Refusal> {
        let (check, allow) = match &self.state {
            State::Unusable => {
                return Err(Refusal {
                    kind: RefusalKind::Unavailable,
                    message: "this webhook's settings cannot be used; every request is refused \
                              until an operator fixes them"
                        .to_owned(),
                    challenge: None,
                });
            }
            State::Ready { check, allow } => (check, allow),
        };
        if !allow.is_empty() {
            let allowed = client.is_some_and(|ip| ip_allowed(allow, ip));
            if !allowed {
                return Err(Refusal {
                    kind: RefusalKind::Forbidden,
                    message: match client {
                        Some(ip) => format!("client address {ip} is not allowed to post here"),
                        None => "the client address is unknown, and this webhook allows only \
                                 listed networks"
                            .to_owned(),
                    },
                    challenge: None,
                });
            }
        }
        match check {
            Check::Open => Ok(Pending { signed: None }),
            Check::Token { digest } => {
                let given = token(headers).ok_or_else(|| {
                    unauthorized(
                        TOKEN_CHALLENGE,
                        format!("missing {TOKEN_HEADER} header (or Authorization: Bearer)"),
                    )
                })?;
                let given: [u8; 32] = Sha256::digest(given).into();
                if bool::from(given.ct_eq(digest)) {
                    Ok(Pending { signed: None })
                } else {
                    Err(unauthorized(TOKEN_CHALLENGE, "token does not match"))
                }
            }
            Check::Hmac { tolerance, .. } => {
                let timestamp = header(headers, TIMESTAMP_HEADER)?;
                let signature = header(headers, SIGNATURE_HEADER)?;
                let timestamp: i64 = timestamp.parse().map_err(|_| {
                    unauthorized(
                        HMAC_CHALLENGE,
                        format!(
                            "{TIMESTAMP_HEADER} `{}` is not a Unix time in seconds",
                            shorten(timestamp)
                        ),
                    )
                })?;
                // `abs_diff`: a timestamp near i64::MIN must not overflow the subtraction.
                if now.abs_diff(timestamp) > tolerance.unsigned_abs() {
                    return Err(unauthorized(
                        HMAC_CHALLENGE,
                        format!(
                            "timestamp {timestamp} is outside the {tolerance} s window \
                             (server time {now})"
                        ),
                    ));
                }
                let signature = parse_signature(signature).ok_or_else(|| {
                    unauthorized(
                        HMAC_CHALLENGE,
                        format!(
                            "{SIGNATURE_HEADER} must be `{SIGNATURE_PREFIX}` followed by 64 hex \
                             digits"
                        ),
                    )
                })?;
                Ok(Pending {
                    signed: Some((timestamp, signature)),
                })
            }
        }
    }

    /// For `hmac`: checks the signature over the body and that it was not accepted before,
    /// and remembers it. `None` when the mode signs nothing.
    pub fn verify_body(
        &self,
        pending: Pending,
        body: &[u8],
        now: i64,
    ) -> Result<Option<Admitted>, Refusal> {
        let (
            Some((timestamp, signature)),
            State::Ready {
                check:
                    Check::Hmac {
                        mac,
                        tolerance,
                        replays,
                        ..
                    },
                ..
            },
        ) = (pending.signed, &self.state)
        else {
            return Ok(None);
        };
        let mut mac = Hmac::clone(mac);
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&signature)
            .map_err(|_| unauthorized(HMAC_CHALLENGE, "signature does not match the body"))?;
        replays
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .admit(signature, timestamp, now, *tolerance)
            .map_err(|replay| unauthorized(HMAC_CHALLENGE, replay.message(timestamp)))?;
        Ok(Some(Admitted { signature }))
    }

    /// Forgets a signature accepted by [`WebhookAuth::verify_body`] whose request then failed.
    pub fn forget(&self, admitted: Admitted) {
        if let State::Ready {
            check: Check::Hmac { replays, .. },
            ..
        } = &self.state
        {
            replays
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .forget(&admitted.signature);
        }
    }
}

/// The token of a request: `X-OpsConductor-Token`, else the API's bearer parsing of
/// `Authorization` (a malformed one counts as missing).
fn token(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get(TOKEN_HEADER) {
        return Some(v.as_bytes());
    }
    bearer_token(headers).ok().flatten().map(str::as_bytes)
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, Refusal> {
    let value = headers
        .get(name)
        .ok_or_else(|| unauthorized(HMAC_CHALLENGE, format!("missing {name} header")))?;
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| unauthorized(HMAC_CHALLENGE, format!("{name} is not ASCII")))
}

fn parse_signature(value: &str) -> Option<[u8; 32]> {
    let hex_digits = value.strip_prefix(SIGNATURE_PREFIX)?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut out).ok()?;
    Some(out)
}

/// A header value quoted back in an error message, cut short.
fn shorten(s: &str) -> String {
    if s.chars().count() <= 24 {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(24).collect::<String>())
    }
}

/// The `X-OpsConductor-Signature` value for `body` signed at `timestamp`: what a sender
/// computes (and what tests and the CLI's documentation use).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "{SIGNATURE_PREFIX}{}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SECRET: &str = "0123456789abcdef-secret";
    const NOW: i64 = 1_700_000_000;

    fn auth(v: Value) -> WebhookAuth {
        WebhookAuth::from_stored(Some(&v)).unwrap()
    }

    fn hmac_auth() -> WebhookAuth {
        auth(json!({"webhook": {"auth": {"mode": "hmac", "secret": SECRET}}}))
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn signed(timestamp: i64, body: &[u8]) -> HeaderMap {
        headers(&[
            (TIMESTAMP_HEADER, &timestamp.to_string()),
            (SIGNATURE_HEADER, &sign(SECRET, timestamp, body)),
        ])
    }

    fn refusal(r: Result<impl fmt::Debug, Refusal>) -> (RefusalKind, String) {
        let e = r.expect_err("refused");
        assert_eq!(
            e.challenge.is_some(),
            e.kind == RefusalKind::Unauthorized,
            "{e:?}"
        );
        assert!(!e.message.contains(SECRET), "{e:?}");
        (e.kind, e.message)
    }

    #[test]
    fn hmac_accepts_a_fresh_signature_once() {
        let auth = hmac_auth();
        let body = br#"{"alerts": []}"#;
        let pending = auth
            .check_request(None, &signed(NOW - 10, body), NOW)
            .unwrap();
        assert!(auth.verify_body(pending, body, NOW).unwrap().is_some());

        // The same request again: a replay.
        let pending = auth
            .check_request(None, &signed(NOW - 10, body), NOW)
            .unwrap();
        let (kind, message) = refusal(auth.verify_body(pending, body, NOW));
        assert_eq!(kind, RefusalKind::Unauthorized);
        assert!(message.starts_with("replayed"), "{message}");

        // A request that failed after admission is forgotten, so its retry is accepted.
        let pending = auth.check_request(None, &signed(NOW, body), NOW).unwrap();
        let admitted = auth.verify_body(pending, body, NOW).unwrap().unwrap();
        auth.forget(admitted);
        let pending = auth.check_request(None, &signed(NOW, body), NOW).unwrap();
        assert!(auth.verify_body(pending, body, NOW).unwrap().is_some());

        // New networks, same secret and window: what was accepted is still remembered.
        let moved = json!({"webhook": {"auth": {"mode": "hmac", "secret": SECRET},
            "allow_cidrs": ["0.0.0.0/0"]}});
        let moved = WebhookAuth::replacing(Some(&moved), Some(&auth)).unwrap();
        let pending = moved
            .check_request(Some([127, 0, 0, 1].into()), &signed(NOW, body), NOW)
            .unwrap();
        assert!(
            refusal(moved.verify_body(pending, body, NOW))
                .1
                .starts_with("replayed")
        );
        // Another window is other settings: a fresh memory.
        let wider = json!({"webhook": {"auth": {"mode": "hmac", "secret": SECRET,
            "tolerance_seconds": 600}}});
        let wider = WebhookAuth::replacing(Some(&wider), Some(&auth)).unwrap();
        let pending = wider.check_request(None, &signed(NOW, body), NOW).unwrap();
        assert!(wider.verify_body(pending, body, NOW).unwrap().is_some());
    }

    #[test]
    fn hmac_refusals_say_what_was_wrong() {
        let auth = hmac_auth();
        let body = b"{}";
        let ts = NOW.to_string();
        let good = sign(SECRET, NOW, body);
        let cases: [(HeaderMap, &str); 7] = [
            (
                headers(&[(SIGNATURE_HEADER, &good)]),
                "missing X-OpsConductor-Timestamp header",
            ),
            (
                headers(&[(TIMESTAMP_HEADER, &ts)]),
                "missing X-OpsConductor-Signature header",
            ),
            (
                signed(NOW - 301, body),
                "timestamp 1699999699 is outside the 300 s window (server time 1700000000)",
            ),
            (signed(NOW + 301, body), "outside the 300 s window"),
            // Would overflow `now - timestamp`.
            (signed(i64::MIN, body), "outside the 300 s window"),
            (
                headers(&[(TIMESTAMP_HEADER, "yesterday"), (SIGNATURE_HEADER, &good)]),
                "`yesterday` is not a Unix time",
            ),
            (
                headers(&[(TIMESTAMP_HEADER, &ts), (SIGNATURE_HEADER, &good[7..])]),
                "must be `sha256=` followed by 64 hex digits",
            ),
        ];
        for (h, expected) in cases {
            let (kind, message) = refusal(auth.check_request(None, &h, NOW));
            assert_eq!(kind, RefusalKind::Unauthorized);
            assert!(message.contains(expected), "{message}");
        }
        // At the edge of the window is still inside it.
        auth.check_request(None, &signed(NOW - 300, body), NOW)
            .unwrap();

        // Well-formed but wrong: another body, another timestamp, another secret.
        let forged = [
            (headers(&[
                (TIMESTAMP_HEADER, &ts),
                (SIGNATURE_HEADER, &sign(SECRET, NOW, b"[]")),
            ])),
            (headers(&[
                (TIMESTAMP_HEADER, &ts),
                (SIGNATURE_HEADER, &sign(SECRET, NOW - 1, body)),
            ])),
            (headers(&[
                (TIMESTAMP_HEADER, &ts),
                (
                    SIGNATURE_HEADER,
                    &sign("another-secret-entirely", NOW, body),
                ),
            ])),
        ];
        for h in forged {
            let pending = auth.check_request(None, &h, NOW).unwrap();
            let (kind, message) = refusal(auth.verify_body(pending, body, NOW));
            assert_eq!(kind, RefusalKind::Unauthorized);
            assert_eq!(message, "signature does not match the body");
        }
    }

    #[test]
    fn token_in_either_header_compared_whole() {
        let auth = auth(json!({"webhook": {"auth": {"mode": "token", "secret": SECRET}}}));
        let bearer = format!("Bearer {SECRET}");
        let lower = format!("bearer {SECRET}");
        for h in [
            headers(&[(TOKEN_HEADER, SECRET)]),
            headers(&[("authorization", &bearer)]),
            headers(&[("authorization", &lower)]),
        ] {
            let pending = auth.check_request(None, &h, NOW).unwrap();
            assert!(auth.verify_body(pending, b"{}", NOW).unwrap().is_none());
        }
        let prefix = &SECRET[..SECRET.len() - 1];
        let longer = format!("{SECRET}x");
        for (h, expected) in [
            (
                headers(&[]),
                "missing X-OpsConductor-Token header (or Authorization: Bearer)",
            ),
            (
                headers(&[("authorization", &format!("Basic {SECRET}"))]),
                "missing X-OpsConductor-Token header (or Authorization: Bearer)",
            ),
            (headers(&[(TOKEN_HEADER, prefix)]), "token does not match"),
            (headers(&[(TOKEN_HEADER, &longer)]), "token does not match"),
            // The dedicated header wins over a right bearer token.
            (
                headers(&[(TOKEN_HEADER, "wrong"), ("authorization", &bearer)]),
                "token does not match",
            ),
        ] {
            let (kind, message) = refusal(auth.check_request(None, &h, NOW));
            assert_eq!(kind, RefusalKind::Unauthorized);
            assert_eq!(message, expected);
        }
    }

    #[test]
    fn allow_list_checks_the_client_address() {
        let auth = auth(json!({"webhook": {"allow_cidrs": ["10.0.0.0/8", "2001:db8::/32"]}}));
        let none = HeaderMap::new();
        for ok in ["10.1.2.3", "2001:db8::1", "::ffff:10.9.9.9"] {
            auth.check_request(Some(ok.parse().unwrap()), &none, NOW)
                .unwrap();
        }
        let (kind, message) =
            refusal(auth.check_request(Some("127.0.0.1".parse().unwrap()), &none, NOW));
        assert_eq!(kind, RefusalKind::Forbidden);
        assert_eq!(
            message,
            "client address 127.0.0.1 is not allowed to post here"
        );
        assert_eq!(
            refusal(auth.check_request(None, &none, NOW)).0,
            RefusalKind::Forbidden
        );
        // No list: any address, known or not.
        WebhookAuth::open().check_request(None, &none, NOW).unwrap();
    }

    #[test]
    fn unusable_settings_refuse_everything() {
        let broken = json!({"webhook": {"auth": {"mode": "hmac"}}});
        let e = WebhookAuth::from_stored(Some(&broken)).unwrap_err();
        assert_eq!(e.field, "webhook.auth.secret");
        let auth = WebhookAuth::unusable(Some(broken.clone()));
        assert_eq!(auth.source(), Some(&broken));
        let (kind, _) =
            refusal(auth.check_request(Some("127.0.0.1".parse().unwrap()), &HeaderMap::new(), NOW));
        assert_eq!(kind, RefusalKind::Unavailable);
    }
}
