//! Per-addon webhook authentication and client address allow list, configured in the addon's
//! settings (`PUT /api/v1/addons/{id}/settings`, `opsconductor addon webhook-auth`):
//!
//! ```json
//! {"webhook": {"auth": {"mode": "hmac", "secret": "…", "tolerance_seconds": 300},
//!              "allow_cidrs": ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]}}
//! ```
//!
//! - `none` (the default): anyone who can reach the path may post.
//! - `token`: `X-OpsConductor-Token: <secret>` or `Authorization: Bearer <secret>`, compared in
//!   constant time.
//! - `hmac`: `X-OpsConductor-Timestamp: <unix seconds>` and
//!   `X-OpsConductor-Signature: sha256=<hex>`, the HMAC-SHA256 with the secret of
//!   `"{timestamp}."` followed by the raw body. A timestamp further than `tolerance_seconds`
//!   from the server's clock is refused, and so is a signature already accepted within that
//!   window (a replay).
//! - `allow_cidrs` (empty = any address): the connecting address must be in one of them. The
//!   address is the TCP peer's; forwarding headers are not trusted.
//!
//! [`AddonSettings`] is the settings document: validated before the store keeps it, shown
//! through [`AddonSettings::public`] with the secret replaced by `"set"`. [`WebhookAuth`] is
//! its parsed form that the registry keeps on each loaded addon, so that checking a request
//! costs no database read. Settings the registry cannot parse turn into
//! [`WebhookAuth::unusable`], which refuses every request: a broken configuration fails closed,
//! never open.
//!
//! **Invariant:** the secret lives only in [`Secret`] (redacting `Debug`, no `Serialize`);
//! nothing here writes it into a message, and only [`AddonSettings::stored`] (what the store
//! keeps) contains it.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::Secret;
use crate::client_addr::ip_allowed;

/// The token header of `token` mode (`Authorization: Bearer` works too).
pub const TOKEN_HEADER: &str = "X-OpsConductor-Token";
/// When an `hmac` request was signed, in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-OpsConductor-Timestamp";
/// `sha256=` and the hex HMAC-SHA256 of `"{timestamp}."` + body.
pub const SIGNATURE_HEADER: &str = "X-OpsConductor-Signature";
const SIGNATURE_PREFIX: &str = "sha256=";

/// Shortest secret: 128 bits even when it is random bytes, more when it is text.
pub const MIN_SECRET_BYTES: usize = 16;
/// Longest secret; far more than any real one, small enough never to matter.
pub const MAX_SECRET_BYTES: usize = 1024;
/// How far a signature's timestamp may be from the server's clock when none is configured.
pub const DEFAULT_TOLERANCE_SECONDS: u32 = 300;
/// The widest window: replays are remembered for as long as the window, in memory.
pub const MAX_TOLERANCE_SECONDS: u32 = 3600;
/// Signatures remembered per addon for replay detection. At the default window this holds
/// 333 signed requests per second; see [`ReplayCache`] for what happens beyond.
pub const REPLAY_CAPACITY: usize = 100_000;
/// What the public view shows instead of a secret, and what a client may send back in its
/// place to keep the secret it does not know (no real secret is this short).
pub const SECRET_SET: &str = "set";

/// How a webhook authenticates its sender.
#[derive(
    schemars::JsonSchema, Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    #[default]
    None,
    Token,
    Hmac,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::Token => "token",
            AuthMode::Hmac => "hmac",
        }
    }
}

/// An addon's settings document. Unknown fields are refused, so a typo cannot silently leave a
/// webhook unauthenticated.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddonSettings {
    #[serde(default)]
    pub webhook: WebhookSettings,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    #[serde(default)]
    pub auth: AuthSettings,
    /// Client networks allowed to post; empty allows any.
    #[serde(default)]
    pub allow_cidrs: Vec<Cidr>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    #[serde(default)]
    pub mode: AuthMode,
    /// Required by `token` and `hmac`. In a request to change settings, omitted (or
    /// [`SECRET_SET`]) keeps the current secret.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// `hmac`: how far the timestamp may be from the server's clock, 1..=3600 (default 300).
    #[serde(default)]
    pub tolerance_seconds: Option<u32>,
}

/// An addon's settings as the API shows them: a secret appears only as `"set"`. (The JSON is
/// made by the same function as the stored form, with the secret replaced; this type gives it
/// a schema and a name.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PublicSettings {
    pub webhook: PublicWebhookSettings,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PublicWebhookSettings {
    pub auth: PublicAuthSettings,
    /// Client networks allowed to post; empty allows any.
    pub allow_cidrs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PublicAuthSettings {
    pub mode: AuthMode,
    /// `"set"` when a secret is set; never the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_seconds: Option<u32>,
}

/// A network, from `10.0.0.0/8` or a bare address (`192.0.2.7` = `192.0.2.7/32`). Host bits
/// are dropped: `10.1.2.3/8` is `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(pub IpNet);

impl schemars::JsonSchema for Cidr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Cidr".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An address or CIDR block: `10.0.0.0/8`, `192.0.2.7`, `::1/128`",
        })
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let net = if s.contains('/') {
            s.parse::<IpNet>().ok()
        } else {
            s.parse::<IpAddr>().ok().map(IpNet::from)
        };
        net.map(|n| Cidr(n.trunc())).ok_or_else(|| {
            format!("`{s}` is not an address or CIDR block (e.g. `10.0.0.0/8`, `::1/128`)")
        })
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A setting the runtime refuses; `field` is its path (`webhook.auth.secret`). The message
/// never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct SettingsError {
    pub field: String,
    pub message: String,
}

fn settings_error(field: &str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        field: field.to_owned(),
        message: message.into(),
    }
}

impl AddonSettings {
    /// Parses and validates a stored settings object, naming the field that is wrong.
    pub fn from_stored(value: &Value) -> Result<AddonSettings, SettingsError> {
        let settings: AddonSettings = serde_path_to_error::deserialize(value).map_err(|e| {
            let mut path = e.path().to_string();
            let inner = e.into_inner().to_string();
            // An unknown field's path ends in that field, which the message names already:
            // report it at its parent, as the API's body parser does.
            if inner.starts_with("unknown field") {
                path = path
                    .rsplit_once('.')
                    .map_or("", |(parent, _)| parent)
                    .to_owned();
            }
            if path.is_empty() || path == "?" {
                path = ".".to_owned();
            }
            settings_error(&path, inner)
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// For a change: a secret left out (or sent back as [`SECRET_SET`]) while the mode still
    /// needs one keeps the secret of `current`, so that a client can change the networks
    /// without knowing the secret. With mode `none` the placeholder is dropped.
    pub fn keep_secret_from(&mut self, current: Option<&AddonSettings>) {
        let auth = &mut self.webhook.auth;
        let placeholder = auth
            .secret
            .as_ref()
            .is_none_or(|s| s.expose() == SECRET_SET);
        if !placeholder {
            return;
        }
        auth.secret = match auth.mode {
            AuthMode::None => None,
            AuthMode::Token | AuthMode::Hmac => current
                .and_then(|c| c.webhook.auth.secret.clone())
                .or(auth.secret.take()),
        };
    }

    /// Checks what the types cannot: the secret that token and hmac need (and its length),
    /// the window's range.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let auth = &self.webhook.auth;
        const SECRET: &str = "webhook.auth.secret";
        match (auth.mode, &auth.secret) {
            (AuthMode::None, None) => {}
            (AuthMode::None, Some(_)) => {
                return Err(settings_error(
                    SECRET,
                    "a secret is only used with mode `token` or `hmac`",
                ));
            }
            (mode, None) => {
                return Err(settings_error(
                    SECRET,
                    format!("mode `{}` needs a secret", mode.as_str()),
                ));
            }
            (mode, Some(secret)) => {
                let secret = secret.expose();
                if secret == SECRET_SET {
                    return Err(settings_error(
                        SECRET,
                        "no secret is set yet to keep; give the secret itself",
                    ));
                }
                if secret.len() < MIN_SECRET_BYTES || secret.len() > MAX_SECRET_BYTES {
                    return Err(settings_error(
                        SECRET,
                        format!(
                            "must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes long \
                             (it is {})",
                            secret.len()
                        ),
                    ));
                }
                // A token travels in a header, where only visible ASCII survives every proxy.
                if mode == AuthMode::Token && !secret.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(settings_error(
                        SECRET,
                        "a token must be visible ASCII characters only (no spaces), since it \
                         is sent in a header",
                    ));
                }
            }
        }
        if let Some(t) = auth.tolerance_seconds
            && !(1..=MAX_TOLERANCE_SECONDS).contains(&t)
        {
            return Err(settings_error(
                "webhook.auth.tolerance_seconds",
                format!("must be 1 to {MAX_TOLERANCE_SECONDS} seconds (it is {t})"),
            ));
        }
        Ok(())
    }

    /// What the store keeps, the secret included.
    pub fn stored(&self) -> Value {
        self.to_json(|s| Value::String(s.expose().to_owned()))
    }

    /// What the API and the CLI show: the secret as `"set"`, never itself.
    pub fn public(&self) -> Value {
        self.to_json(|_| Value::String(SECRET_SET.to_owned()))
    }

    /// [`AddonSettings::public`] as its type, as the API answers it.
    pub fn public_view(&self) -> PublicSettings {
        serde_json::from_value(self.public())
            .expect("the public form of settings reads back as PublicSettings")
    }

    fn to_json(&self, secret: impl Fn(&Secret) -> Value) -> Value {
        let auth = &self.webhook.auth;
        let mut auth_json = json!({ "mode": auth.mode });
        if let Some(s) = &auth.secret {
            auth_json["secret"] = secret(s);
        }
        let tolerance = match auth.mode {
            AuthMode::Hmac => Some(auth.tolerance_seconds.unwrap_or(DEFAULT_TOLERANCE_SECONDS)),
            _ => auth.tolerance_seconds,
        };
        if let Some(t) = tolerance {
            auth_json["tolerance_seconds"] = t.into();
        }
        let cidrs: Vec<String> = self
            .webhook
            .allow_cidrs
            .iter()
            .map(|c| c.0.to_string())
            .collect();
        json!({ "webhook": { "auth": auth_json, "allow_cidrs": cidrs } })
    }
}

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

/// The token of a request: `X-OpsConductor-Token`, else `Authorization: Bearer`.
fn token(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get(TOKEN_HEADER) {
        return Some(v.as_bytes());
    }
    let auth = headers.get(axum::http::header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = auth.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
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

/// Why [`ReplayCache::admit`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// The same signature was accepted within the window.
    Seen,
    /// The cache was full and forgot signatures this old: it might be a replay of one of them.
    BeyondMemory,
}

impl Replay {
    fn message(self, timestamp: i64) -> String {
        match self {
            Replay::Seen => "replayed: a request with this signature was already accepted".into(),
            Replay::BeyondMemory => format!(
                "replayed or too old: timestamp {timestamp} is older than this webhook \
                 remembers signatures right now (too many requests within the window); sign \
                 the request again with the current time"
            ),
        }
    }
}

/// The signatures an `hmac` webhook accepted within its window, for refusing replays. A
/// signature needs remembering only until its timestamp leaves the window (after that, the
/// window check refuses it), so entries expire then.
///
/// Bounded: when `capacity` signatures are remembered, the oldest is forgotten and its
/// timestamp becomes `floor`; from then on a signature with a timestamp at or before `floor` is
/// refused, because it might be a replay of a forgotten one. Under a flood the effective
/// window shrinks, rather than replays getting through or memory growing without bound.
struct ReplayCache {
    /// Signature → the sequence number of its live entry in `order`.
    seen: HashMap<[u8; 32], u64>,
    /// (signature, timestamp, sequence) in the order admitted. An entry whose sequence no
    /// longer matches `seen` was forgotten; it only waits for its turn to be dropped.
    order: VecDeque<([u8; 32], i64, u64)>,
    floor: i64,
    next: u64,
    capacity: usize,
}

impl ReplayCache {
    fn new(capacity: usize) -> ReplayCache {
        ReplayCache {
            seen: HashMap::new(),
            order: VecDeque::new(),
            floor: i64::MIN,
            next: 0,
            capacity: capacity.max(1),
        }
    }

    fn admit(
        &mut self,
        signature: [u8; 32],
        timestamp: i64,
        now: i64,
        tolerance: i64,
    ) -> Result<(), Replay> {
        // Admission order is nearly timestamp order, so expiring from the front finds almost
        // everything expired; a straggler behind a newer entry lingers a little longer.
        while let Some(&(_, t, _)) = self.order.front()
            && t.saturating_add(tolerance) < now
        {
            self.pop_front();
        }
        if self.seen.contains_key(&signature) {
            return Err(Replay::Seen);
        }
        if timestamp <= self.floor {
            return Err(Replay::BeyondMemory);
        }
        while self.order.len() >= self.capacity {
            if let Some((t, true)) = self.pop_front() {
                self.floor = self.floor.max(t);
            }
        }
        let seq = self.next;
        self.next += 1;
        self.seen.insert(signature, seq);
        self.order.push_back((signature, timestamp, seq));
        Ok(())
    }

    fn forget(&mut self, signature: &[u8; 32]) {
        self.seen.remove(signature);
    }

    /// Drops the oldest entry: its timestamp, and whether it was still remembered.
    fn pop_front(&mut self) -> Option<(i64, bool)> {
        let (signature, t, seq) = self.order.pop_front()?;
        let live = self.seen.get(&signature) == Some(&seq);
        if live {
            self.seen.remove(&signature);
        }
        Some((t, live))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
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
    use super::*;

    const SECRET: &str = "0123456789abcdef-secret";
    const NOW: i64 = 1_700_000_000;

    fn parse(v: Value) -> Result<AddonSettings, SettingsError> {
        AddonSettings::from_stored(&v)
    }

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
    fn settings_parse_validate_and_name_the_field() {
        let ok = parse(
            json!({"webhook": {"auth": {"mode": "hmac", "secret": SECRET,
            "tolerance_seconds": 60}, "allow_cidrs": ["10.1.2.3/8", "192.0.2.7", "::1/128"]}}),
        )
        .unwrap();
        assert_eq!(
            ok.public(),
            json!({"webhook": {"auth": {"mode": "hmac", "secret": "set", "tolerance_seconds": 60},
                "allow_cidrs": ["10.0.0.0/8", "192.0.2.7/32", "::1/128"]}})
        );
        assert_eq!(ok.stored()["webhook"]["auth"]["secret"], SECRET);
        assert!(!format!("{ok:?}").contains(SECRET));
        // Empty is "no authentication, any address"; hmac shows its default window.
        assert_eq!(
            parse(json!({})).unwrap().public(),
            json!({"webhook": {"auth": {"mode": "none"}, "allow_cidrs": []}})
        );
        assert_eq!(
            parse(json!({"webhook": {"auth": {"mode": "hmac", "secret": SECRET}}}))
                .unwrap()
                .public()["webhook"]["auth"]["tolerance_seconds"],
            300
        );

        let cases = [
            (
                json!({"webhook": {"auth": {"mode": "hmac"}}}),
                "webhook.auth.secret",
                "needs a secret",
            ),
            (
                json!({"webhook": {"auth": {"mode": "token", "secret": "short"}}}),
                "webhook.auth.secret",
                "(it is 5)",
            ),
            (
                json!({"webhook": {"auth": {"mode": "token", "secret": "has a space in it!!"}}}),
                "webhook.auth.secret",
                "visible ASCII",
            ),
            (
                json!({"webhook": {"auth": {"mode": "none", "secret": SECRET}}}),
                "webhook.auth.secret",
                "only used with",
            ),
            (
                json!({"webhook": {"auth": {"mode": "token", "secret": "set"}}}),
                "webhook.auth.secret",
                "no secret is set yet",
            ),
            (
                json!({"webhook": {"auth": {"mode": "hmac", "secret": SECRET, "tolerance_seconds": 0}}}),
                "webhook.auth.tolerance_seconds",
                "1 to 3600",
            ),
            (
                json!({"webhook": {"auth": {"mode": "hmac", "secret": SECRET, "tolerance_seconds": 3601}}}),
                "webhook.auth.tolerance_seconds",
                "1 to 3600",
            ),
            (
                json!({"webhook": {"auth": {"mode": "basic"}}}),
                "webhook.auth.mode",
                "unknown variant `basic`",
            ),
            (
                json!({"webhook": {"allow_cidrs": ["10.0.0.0/33"]}}),
                "webhook.allow_cidrs[0]",
                "`10.0.0.0/33` is not",
            ),
            (
                json!({"webhook": {"allow_cidrs": "10.0.0.0/8"}}),
                "webhook.allow_cidrs",
                "expected a sequence",
            ),
            (
                json!({"webhook": {"auth": {"mode": "none"}, "allow": []}}),
                "webhook",
                "unknown field `allow`",
            ),
            (json!({"webhooks": {}}), ".", "unknown field `webhooks`"),
        ];
        for (input, field, message) in cases {
            let e = parse(input.clone()).expect_err(&input.to_string());
            assert!(
                e.field == field || e.field.starts_with(&format!("{field}.")),
                "{input}: {e}"
            );
            assert!(e.message.contains(message), "{input}: {e}");
            assert!(!e.to_string().contains(SECRET), "{e}");
        }
    }

    #[test]
    fn a_change_without_the_secret_keeps_the_current_one() {
        let current =
            parse(json!({"webhook": {"auth": {"mode": "hmac", "secret": SECRET}}})).unwrap();
        for input in [
            json!({"webhook": {"auth": {"mode": "hmac"}, "allow_cidrs": ["10.0.0.0/8"]}}),
            json!({"webhook": {"auth": {"mode": "token", "secret": "set"}}}),
        ] {
            let mut change: AddonSettings = serde_json::from_value(input.clone()).unwrap();
            change.keep_secret_from(Some(&current));
            change.validate().unwrap();
            assert_eq!(
                change.stored()["webhook"]["auth"]["secret"],
                SECRET,
                "{input}"
            );
        }
        // Switching authentication off drops the placeholder; a new secret replaces the old.
        let mut off: AddonSettings =
            serde_json::from_value(json!({"webhook": {"auth": {"mode": "none", "secret": "set"}}}))
                .unwrap();
        off.keep_secret_from(Some(&current));
        off.validate().unwrap();
        assert!(off.webhook.auth.secret.is_none());
        let mut new: AddonSettings = serde_json::from_value(
            json!({"webhook": {"auth": {"mode": "hmac", "secret": "a-brand-new-secret-value"}}}),
        )
        .unwrap();
        new.keep_secret_from(Some(&current));
        assert_eq!(
            new.stored()["webhook"]["auth"]["secret"],
            "a-brand-new-secret-value"
        );
        // Nothing to keep: the secret is required.
        let mut first: AddonSettings =
            serde_json::from_value(json!({"webhook": {"auth": {"mode": "hmac"}}})).unwrap();
        first.keep_secret_from(None);
        assert_eq!(first.validate().unwrap_err().field, "webhook.auth.secret");
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

    #[test]
    fn replay_cache_expires_and_stays_bounded() {
        let sig = |n: u8| [n; 32];
        let mut cache = ReplayCache::new(3);
        for n in 0..3 {
            cache.admit(sig(n), NOW + i64::from(n), NOW, 10).unwrap();
        }
        assert_eq!(cache.admit(sig(1), NOW + 1, NOW, 10), Err(Replay::Seen));
        // Full: the oldest is forgotten and its timestamp becomes the floor.
        cache.admit(sig(3), NOW + 3, NOW, 10).unwrap();
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.admit(sig(0), NOW, NOW, 10), Err(Replay::BeyondMemory));
        assert_eq!(cache.admit(sig(9), NOW, NOW, 10), Err(Replay::BeyondMemory));
        // Once their window has passed, entries expire and make room without a floor.
        cache.admit(sig(4), NOW + 20, NOW + 20, 10).unwrap();
        assert_eq!(cache.len(), 1);
        // A forgotten entry is not a replay, and its stale queue slot is harmless.
        cache.forget(&sig(4));
        cache.admit(sig(4), NOW + 20, NOW + 20, 10).unwrap();
        assert_eq!(
            cache.admit(sig(4), NOW + 20, NOW + 20, 10),
            Err(Replay::Seen)
        );
        cache.admit(sig(5), NOW + 21, NOW + 21, 10).unwrap();
        cache.admit(sig(6), NOW + 21, NOW + 21, 10).unwrap();
        assert_eq!(
            cache.admit(sig(4), NOW + 20, NOW + 21, 10),
            Err(Replay::Seen)
        );
    }
}
