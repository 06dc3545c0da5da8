//! The OpsConductor addon SDK: implement [`Addon`], register it with [`register_addon!`], build
//! for `wasm32-wasip2`, and the host runs it as a sandboxed component.
//!
//! An addon turns one raw event (a webhook request, an SNMP trap, a poll result) into zero or
//! more [`Alert`]s. It does no I/O of its own: the host received the event, and the host
//! deduplicates, correlates clears and stores what the addon returns. The helpers here exist so
//! that the parsing itself stays a few lines:
//!
//! - [`WebhookRequest::json`], [`WebhookRequest::json_as`], [`WebhookRequest::form`]: the body,
//!   or an `invalid-input` error;
//! - [`mod@json`]: JSON-pointer look-ups whose errors name the pointer ([`ptr_str`], [`req_str`], ...),
//!   and [`Node`]/[`req_items`] to walk arrays of entries with paths relative to each;
//! - [`regex!`] and [`capture`]: regular expressions compiled once per instance; with the
//!   `grok` feature, `grok!` and `grok::Grok` for grok patterns (`%{IP:client}`);
//! - [`Mapping`]: small declarative lookup tables (vendor status → severity); for severity,
//!   [`SEVERITY_WORDS`], [`SeverityCodes`] (numeric codes: syslog, Zabbix, a vendor's own) and
//!   [`Thresholds`] (a measured value against limits);
//! - for traps, [`SnmpTrap::varbind`] and friends (varbinds by OID prefix, with the table
//!   index), [`SnmpTrap::enum_text`], [`SnmpValue::text`], [`OidTable`] (trap OID → meaning, exact or longest prefix),
//!   [`MibEnum`] and the standard ones in [`mib`];
//! - [`Alert`]'s builder methods, [`rfc3339_millis`] for timestamps, [`host_part`] for
//!   `host:port` and URLs, [`truncate`] to bound vendor text;
//! - [`host`]: log, clock and small persistent state, with native stand-ins so that parse logic
//!   is unit-testable with a plain `cargo test`; [`testing`] builds events, and
//!   [`testing::check_fixtures`] runs every fixture natively the way the host's runner does.
//!
//! See the README for a complete addon.

mod alert;
mod error;
#[cfg(feature = "grok")]
pub mod grok;
pub mod host;
pub mod io;
pub mod json;
mod mapping;
pub mod poll;
pub mod testing;
mod text;
mod trap;
mod webhook;

#[doc(hidden)]
pub mod bindings;

pub use alert::host_part;
pub use json::{
    Node, ptr_array, ptr_f64, ptr_object, ptr_pairs, ptr_str, ptr_text, req_array, req_items,
    req_str, req_text,
};
pub use mapping::{Mapping, SEVERITY_WORDS, SeverityCodes, Thresholds};
pub use text::{capture, rfc3339_millis, truncate};
pub use trap::{MibEnum, OidTable, mib, oid_suffix};

/// The records exchanged with the host, exactly as the WIT contract defines them; the SDK adds
/// builder and helper methods to them rather than wrapping them, so nothing is converted twice.
pub use bindings::opsconductor::addon::types::{
    AddonError, Alert, ErrorKind, Fetched, FetchedData, HttpResponse, PollResult, Severity,
    SnmpTrap, SnmpV1Header, SnmpValue, SnmpVersion, SshOutput, Target, Varbind, WebhookRequest,
};
pub use host::LogLevel;

/// Re-exported so that addons use the same `regex` and `serde` as the SDK's helpers,
/// without declaring (and version-matching) them in their own `Cargo.toml`.
pub use regex::{self, Regex};
pub use serde;
pub use serde_json::{self, Value, json};

/// `Result` with [`AddonError`] as its default error, the return type of every parse method.
pub type Result<T, E = AddonError> = std::result::Result<T, E>;

/// What an addon implements. Each method handles one kind of raw event; an addon overrides only
/// the ones it declares in its manifest's `methods`. The defaults answer `not-implemented`, so a
/// misrouted event (say, a trap sent to a webhook-only addon) is reported as such instead of
/// being silently dropped.
///
/// Methods take `&self`: the host may reuse one instance for many calls but never calls it
/// concurrently, so per-instance caches can live in a `Cell`/`RefCell`. Anything that must
/// survive an instance being recycled belongs in [`host::state_set`].
pub trait Addon {
    /// Parses an HTTP request received on the addon's webhook path.
    fn parse_webhook(&self, req: &WebhookRequest) -> Result<Vec<Alert>> {
        let _ = req;
        Err(AddonError::not_implemented(
            "this addon does not handle webhooks",
        ))
    }

    /// Parses an SNMP trap or inform routed to the addon by its trap OID prefixes.
    fn parse_trap(&self, trap: &SnmpTrap) -> Result<Vec<Alert>> {
        let _ = trap;
        Err(AddonError::not_implemented(
            "this addon does not handle SNMP traps",
        ))
    }

    /// Parses what the host fetched for one declarative poll of a target.
    fn parse_poll(&self, poll: &PollResult) -> Result<Vec<Alert>> {
        let _ = poll;
        Err(AddonError::not_implemented(
            "this addon does not handle poll results",
        ))
    }

    /// Polls `target` by script (manifest `poll.mode: "scripted"`): fetch with the [`io`]
    /// functions, which reach only what the manifest's capabilities allow, and report alerts.
    fn poll(&self, target: &Target) -> Result<Vec<Alert>> {
        let _ = target;
        Err(AddonError::not_implemented(
            "this addon does not poll by script",
        ))
    }
}

/// Everything an addon usually needs, for `use opsconductor_addon_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::host;
    pub use crate::poll::{Column, TargetConfig};
    pub use crate::{
        Addon, AddonError, Alert, ErrorKind, Mapping, MibEnum, Node, OidTable, PollResult, Result,
        SEVERITY_WORDS, Severity, SeverityCodes, SnmpTrap, SnmpValue, Thresholds, Value,
        WebhookRequest, capture, host_part, mib, oid_suffix, ptr_array, ptr_f64, ptr_object,
        ptr_pairs, ptr_str, ptr_text, regex, register_addon, req_array, req_items, req_str,
        req_text, rfc3339_millis, truncate,
    };
    #[cfg(feature = "grok")]
    pub use crate::{grok, grok::Grok};
}

/// Exports a type implementing [`Addon`] as the component's `handler` interface.
///
/// `register_addon!(MyAddon)` builds the instance with `MyAddon::default()`;
/// `register_addon!(MyAddon, MyAddon::new(...))` with the given expression. Either runs once
/// per component instance, on its first call. Use the macro once, in the addon's `lib.rs`.
///
/// Before the first call reaches the addon the macro installs a panic hook that sends the panic
/// message to the host log at error level: a panic traps the instance, and the host reports the
/// last error logged during a trapped call, so the author sees `addon panicked: ...` instead of a
/// bare `wasm trap: unreachable`.
#[macro_export]
macro_rules! register_addon {
    ($addon:ty $(,)?) => {
        $crate::register_addon!($addon, <$addon as ::core::default::Default>::default());
    };
    ($addon:ty, $init:expr $(,)?) => {
        const _: () = {
            // Never constructed: the generated exports only name it as a type.
            #[allow(dead_code)]
            struct __OpsConductorAddonExport;

            ::std::thread_local! {
                // A thread-local rather than a `static OnceLock`: a component instance is
                // single-threaded, and this way the addon type need not be `Sync`.
                static __OPSCONDUCTOR_ADDON: $addon = {
                    // The hook goes in before the instance is built, so that a panic in the
                    // constructor is reported as readably as one in a parse method.
                    $crate::__private::install_panic_hook();
                    $init
                };
            }

            impl $crate::__private::PollerGuest for __OpsConductorAddonExport {
                fn poll(
                    target: $crate::Target,
                ) -> ::core::result::Result<::std::vec::Vec<$crate::Alert>, $crate::AddonError>
                {
                    $crate::__private::install_panic_hook();
                    __OPSCONDUCTOR_ADDON.with(|addon| $crate::Addon::poll(addon, &target))
                }
            }

            impl $crate::__private::Guest for __OpsConductorAddonExport {
                fn parse(
                    event: $crate::__private::RawEvent,
                ) -> ::core::result::Result<::std::vec::Vec<$crate::Alert>, $crate::AddonError>
                {
                    $crate::__private::install_panic_hook();
                    __OPSCONDUCTOR_ADDON.with(|addon| $crate::__private::dispatch(addon, event))
                }
            }

            // Exported on wasm only. Natively the `impl` above is still type-checked, but the
            // export symbols (`opsconductor:addon/handler@0.2.0#parse`) are not valid in the
            // linker version script of a native cdylib, and nothing native would call them.
            #[cfg(target_arch = "wasm32")]
            $crate::__private::export!(
                __OpsConductorAddonExport with_types_in $crate::__private::bindings
            );
            // ...so natively this reference is what keeps the addon from being dead code.
            #[cfg(not(target_arch = "wasm32"))]
            const _: fn(
                $crate::__private::RawEvent,
            ) -> ::core::result::Result<
                ::std::vec::Vec<$crate::Alert>,
                $crate::AddonError,
            > = <__OpsConductorAddonExport as $crate::__private::Guest>::parse;
            #[cfg(not(target_arch = "wasm32"))]
            const _: fn(
                $crate::Target,
            ) -> ::core::result::Result<
                ::std::vec::Vec<$crate::Alert>,
                $crate::AddonError,
            > = <__OpsConductorAddonExport as $crate::__private::PollerGuest>::poll;
        };
    };
}

/// Compiles a regular expression literal once per instance and returns a `&'static Regex`.
///
/// ```
/// use opsconductor_addon_sdk::{capture, regex};
/// let re = regex!(r"^(?P<state>\w+) ended \(now: (?P<now>\w+)\)$");
/// assert_eq!(capture(re, "Down ended (now: Up)", "now"), Some("Up"));
/// ```
///
/// An invalid pattern panics on first use (a bug in the addon, caught by its first test), which
/// the panic hook turns into a readable error.
#[macro_export]
macro_rules! regex {
    ($re:literal $(,)?) => {{
        static RE: ::std::sync::OnceLock<$crate::Regex> = ::std::sync::OnceLock::new();
        RE.get_or_init(|| $crate::Regex::new($re).expect(concat!("invalid regex ", $re)))
    }};
}

/// Plumbing for [`register_addon!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    use std::sync::Once;

    pub use crate::bindings;
    pub use crate::bindings::export;
    pub use crate::bindings::exports::opsconductor::addon::handler::Guest;
    pub use crate::bindings::exports::opsconductor::addon::poller::Guest as PollerGuest;
    pub use crate::bindings::opsconductor::addon::types::RawEvent;

    use crate::{Addon, AddonError, Alert};

    /// Routes one raw event to the matching trait method.
    pub fn dispatch<A: Addon + ?Sized>(
        addon: &A,
        event: RawEvent,
    ) -> Result<Vec<Alert>, AddonError> {
        match event {
            RawEvent::Webhook(req) => addon.parse_webhook(&req),
            RawEvent::SnmpTrap(trap) => addon.parse_trap(&trap),
            RawEvent::Poll(poll) => addon.parse_poll(&poll),
        }
    }

    /// Sends panic messages to the host log at error level, once per instance.
    ///
    /// The previous hook still runs afterwards: it writes to WASI stderr, which costs nothing
    /// when the host discards it and helps when an author runs the component elsewhere.
    pub fn install_panic_hook() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let payload = info
                    .payload_as_str()
                    .unwrap_or("panic payload is not a string");
                let message = match info.location() {
                    Some(at) => format!("addon panicked at {}:{}: {payload}", at.file(), at.line()),
                    None => format!("addon panicked: {payload}"),
                };
                crate::host::error(&message);
                previous(info);
            }));
        });
    }
}

/// Compiles the README's Rust examples as doctests, so the addon authors copy first still builds.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
