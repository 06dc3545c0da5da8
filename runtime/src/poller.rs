//! Outbound I/O to polled devices: SNMP (`snmp`), HTTP (`http`) and SSH (`ssh`) clients, each with
//! a timeout on every call. The scheduler uses them for declarative polls, and the sandbox's `io`
//! imports for scripted ones, after checking the addon's capabilities.
//!
//! **Architecture Invariant:** pollers know nothing of addons, targets or the database. They take
//! an endpoint with its credentials and return data or a [`PollError`]; pinning SSH host keys,
//! choosing credentials and checking capabilities happen in the caller.

pub mod http;
pub mod snmp;
pub mod ssh;

/// Why one outbound call failed. The variant decides whether the target counts as unreachable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PollError {
    /// The peer did not answer: timeout, connection refused, no route, name not resolved.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The peer answered but not usefully: an error status, failed authentication, a protocol
    /// or TLS error, an oversized answer.
    #[error("{0}")]
    Failed(String),
    /// The SSH server presented a host key other than the one pinned for it.
    #[error(
        "SSH host key of {endpoint} changed: pinned {pinned}, presented {presented}; refusing to connect"
    )]
    HostKeyMismatch {
        endpoint: String,
        pinned: String,
        presented: String,
    },
    /// The addon's capabilities do not allow the call.
    #[error("denied: {0}")]
    Denied(String),
    /// The egress policy ([`crate::egress`]) does not allow the address the call resolved to:
    /// nothing was sent. Not the addon's doing, unlike [`PollError::Denied`].
    #[error("refused: {0}")]
    Refused(String),
}

impl PollError {
    /// Whether this failure means "the target did not answer".
    pub fn is_unreachable(&self) -> bool {
        matches!(self, PollError::Unreachable(_))
    }
}
