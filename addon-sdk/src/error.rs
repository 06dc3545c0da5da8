//! Constructors for [`AddonError`], one per [`ErrorKind`].
//!
//! The host shows the message to the addon's author and the operator, so it should say what was
//! wrong with the input and where (`missing string at /alerts/0/labels/alertname`), lowercase,
//! without a trailing period.

use crate::{AddonError, ErrorKind};

impl AddonError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> AddonError {
        AddonError {
            kind,
            message: message.into(),
        }
    }

    /// The addon does not handle this kind of event (e.g. a webhook-only addon got a trap).
    pub fn not_implemented(message: impl Into<String>) -> AddonError {
        AddonError::new(ErrorKind::NotImplemented, message)
    }

    /// The input is malformed or lacks something the addon needs.
    pub fn invalid_input(message: impl Into<String>) -> AddonError {
        AddonError::new(ErrorKind::InvalidInput, message)
    }

    /// The input is well-formed but of a kind this addon does not know.
    pub fn unsupported(message: impl Into<String>) -> AddonError {
        AddonError::new(ErrorKind::Unsupported, message)
    }

    /// Anything else that went wrong inside the addon.
    pub fn internal(message: impl Into<String>) -> AddonError {
        AddonError::new(ErrorKind::Internal, message)
    }

    /// A target's config value at `key` that the addon cannot use: `invalid-input` with the
    /// message ``target config `load_max`: must be a number from 0``, the form
    /// [`crate::poll::TargetConfig`]'s own errors take.
    pub fn bad_config(key: &str, message: impl std::fmt::Display) -> AddonError {
        AddonError::invalid_input(format!("target config `{key}`: {message}"))
    }
}

impl ErrorKind {
    /// The WIT name of the kind (`invalid-input`), as the host reports it and fixtures spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotImplemented => "not-implemented",
            ErrorKind::InvalidInput => "invalid-input",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Internal => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_set_the_kind() {
        let cases = [
            (AddonError::not_implemented("m"), ErrorKind::NotImplemented),
            (AddonError::invalid_input("m"), ErrorKind::InvalidInput),
            (AddonError::unsupported("m"), ErrorKind::Unsupported),
            (AddonError::internal("m"), ErrorKind::Internal),
        ];
        for (err, kind) in cases {
            assert_eq!(err.kind, kind);
            assert_eq!(err.message, "m");
        }
        let err = AddonError::bad_config("load_max", "must be a number from 0");
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert_eq!(
            err.message,
            "target config `load_max`: must be a number from 0"
        );
        // The WIT kind names, as the host reports them.
        assert_eq!(ErrorKind::InvalidInput.as_str(), "invalid-input");
    }
}
