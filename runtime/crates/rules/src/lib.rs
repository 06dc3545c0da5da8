//! The rules language of rules addons (docs/rules.md): a manifest's `parse` section compiled
//! once into [`Rules`], then evaluated against one event at a time, given as the JSON document
//! the rules engine makes of it.
//!
//! The crate is pure: no I/O, no clock, no threads. It runs inside the rules engine, a
//! WebAssembly component (`addons/rules-engine`), and in the runtime when a manifest is
//! checked, so it builds for `wasm32-wasip2` as well. Time and memory are the sandbox's to
//! bound; what compiling can bound is bounded here (the constants below).
//!
//! ```
//! use serde_json::json;
//! let rules = opsconductor_rules::Rules::compile(&json!({
//!     "rules": [{"alert": {"type": "{body.event}", "device": "{body.host}"}}]
//! })).unwrap();
//! let event = json!({"kind": "webhook", "body": {"event": "diskFull", "host": "10.0.0.5"}});
//! let alerts = rules.evaluate(&event).unwrap();
//! assert_eq!(alerts[0].alert_type, "diskFull");
//! assert_eq!(alerts[0].device_ip.as_deref(), Some("10.0.0.5"));
//! ```

mod alert;
mod compile;
mod condition;
mod eval;
mod pattern;
mod template;
mod text;
mod value;

use std::fmt;

/// The most rules one section may hold. Real sections have a handful; the bound keeps a
/// manifest from making the engine compile (and hold) an unbounded program at install.
pub const MAX_RULES: usize = 1_000;

/// How deeply conditions and choices may nest (`all` in `any` in a choice's `when` ...).
/// Compiling and evaluating recurse once per level, and the engine's WebAssembly stack is
/// small: the bound keeps a hostile manifest from overflowing it, far above what rules need.
pub const MAX_DEPTH: usize = 32;

/// The most memory one compiled regular expression may take (1 MiB). The `regex` crate's
/// default is 10 MiB, which the engine would hold per regex for the life of an instance
/// whose whole memory limit may be 32 MiB; patterns that rules need compile to a few KiB.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A compiled `parse` section: immutable, and shareable between threads.
#[derive(Debug)]
pub struct Rules {
    compiled: compile::Compiled,
}

impl Rules {
    /// Compiles a manifest's `parse` section (the JSON value of the key `"parse"`), checking
    /// everything up front: keys, types, templates, filters, maps, variables, regexes and grok
    /// patterns.
    pub fn compile(parse: &serde_json::Value) -> Result<Rules, RulesError> {
        compile::compile(parse).map(|compiled| Rules { compiled })
    }

    /// Evaluates every rule against one event document (shape: docs/rules.md, "The event").
    /// An error refuses the whole event: a rule's `error`, a `required` value or array that is
    /// missing, or an alert with no type or no device.
    pub fn evaluate(&self, event: &serde_json::Value) -> Result<Vec<RuleAlert>, EventError> {
        eval::evaluate(&self.compiled, event)
    }
}

/// A mistake in the rules, named by its place: `parse.rules[2].when.matches`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RulesError {
    pub path: String,
    pub message: String,
}

/// The event is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct EventError {
    pub kind: EventErrorKind,
    pub message: String,
}

/// The addon error kinds a rule may refuse an event with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventErrorKind {
    InvalidInput,
    Unsupported,
}

impl fmt::Display for EventErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventErrorKind::InvalidInput => "invalid-input",
            EventErrorKind::Unsupported => "unsupported",
        })
    }
}

/// One alert a rule reported, before the host's alert engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleAlert {
    pub alert_type: String,
    pub device_ip: Option<String>,
    pub device_name: Option<String>,
    pub title: String,
    pub message: String,
    /// The severity text as the rules produced it, trimmed; the caller maps words to a
    /// severity (and leaves one it does not know to the manifest).
    pub severity: Option<String>,
    pub clears: bool,
    pub identity: Vec<(String, String)>,
    pub fields: Vec<(String, String)>,
    /// Unix milliseconds.
    pub occurred_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<Rules>();
    }
}
