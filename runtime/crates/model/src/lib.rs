//! OpsConductor's model: what the runtime and addon authors agree on, and the rules that turn
//! what an addon reports into alerts. Pure — no I/O, no async runtime, no database, no WASM —
//! and Cargo holds it to that: this crate depends on none of them.
//!
//! - [`event`]: the raw inputs an addon parses (webhook requests, SNMP traps, poll results).
//! - [`alert`]: what an addon reports and what the store keeps.
//! - [`engine`]: an addon's alert rules applied to what it reported (severity, category,
//!   fingerprint, raise or clear).
//! - [`silence`]: maintenance windows, which raise matching alerts as `suppressed`.
//! - [`manifest`]: an addon's declarative manifest.
//! - [`legacy`]: the legacy system's addon manifests converted to rules addons.
//! - [`import`]: alerts, targets and settings from the legacy database or a JSON file, converted
//!   or refused with the reason.
//! - [`text`]: cutting text to a byte budget.
//! - [`fixture`]: an addon's fixtures (inputs and expected outcomes), read and judged the same
//!   way by the host's sandboxed runner and the SDK's native one.

pub mod alert;
pub mod engine;
pub mod event;
pub mod fixture;
pub mod import;
pub mod legacy;
pub mod manifest;
pub mod silence;
pub mod text;
