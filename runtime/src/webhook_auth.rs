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
//!
//! `settings.rs` is the document, `verify.rs` the checks of a request, `replay.rs` the memory
//! of accepted signatures.

mod replay;
mod settings;
mod verify;

pub use settings::{
    AddonSettings, AuthMode, AuthSettings, Cidr, PublicAuthSettings, PublicSettings,
    PublicWebhookSettings, SettingsError, WebhookSettings,
};
pub use verify::{Admitted, Pending, Refusal, RefusalKind, WebhookAuth, sign};

/// The token header of `token` mode (`Authorization: Bearer` works too).
pub const TOKEN_HEADER: &str = "X-OpsConductor-Token";
/// When an `hmac` request was signed, in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-OpsConductor-Timestamp";
/// `sha256=` and the hex HMAC-SHA256 of `"{timestamp}."` + body.
pub const SIGNATURE_HEADER: &str = "X-OpsConductor-Signature";
pub(crate) const SIGNATURE_PREFIX: &str = "sha256=";

/// Shortest secret: 128 bits even when it is random bytes, more when it is text.
pub const MIN_SECRET_BYTES: usize = 16;
/// Longest secret; far more than any real one, small enough never to matter.
pub const MAX_SECRET_BYTES: usize = 1024;
/// How far a signature's timestamp may be from the server's clock when none is configured.
pub const DEFAULT_TOLERANCE_SECONDS: u32 = 300;
/// The widest window: replays are remembered for as long as the window, in memory.
pub const MAX_TOLERANCE_SECONDS: u32 = 3600;
/// Signatures remembered per addon for replay detection. At the default window this holds
/// 333 signed requests per second; see `replay.rs` for what happens beyond.
pub const REPLAY_CAPACITY: usize = 100_000;
/// What the public view shows instead of a secret, and what a client may send back in its
/// place to keep the secret it does not know (no real secret is this short).
pub const SECRET_SET: &str = "set";
