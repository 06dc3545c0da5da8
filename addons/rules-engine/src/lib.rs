//! The rules engine: the component that runs addons written as rules instead of code
//! (docs/rules.md). The host instantiates it for every rules addon, in the same sandbox and
//! with the same limits as compiled addons, and hands it the addon's rules through the one
//! import that compiled addons do not have (`opsconductor:rules/rules.parse-section`).
//!
//! What happens here is translation only: the raw event becomes the JSON document the rules
//! read ([`event::document`]), `opsconductor-rules` evaluates them, and what it reports becomes
//! the WIT alerts. The rules are compiled once per instance.

mod event;

use std::cell::OnceCell;

use opsconductor_addon_sdk::{AddonError, Alert, SEVERITY_WORDS};
use opsconductor_rules::{EventErrorKind, RuleAlert, Rules};

wit_bindgen::generate!({
    path: ["../../wit/v0.2.0", "../../wit/rules-v0.1.0"],
    world: "opsconductor:rules/engine",
    // The addon types and host functions are the SDK's: one set of types, its helpers included.
    with: {
        "opsconductor:addon/types@0.2.0": opsconductor_addon_sdk::bindings::opsconductor::addon::types,
        "opsconductor:addon/host@0.2.0": opsconductor_addon_sdk::bindings::opsconductor::addon::host,
    },
});

use exports::opsconductor::addon::handler::{Guest, RawEvent};

thread_local! {
    // An instance is single-threaded; the host reuses it for many events of one addon.
    static RULES: OnceCell<Result<Rules, String>> = const { OnceCell::new() };
}

struct Engine;

impl Guest for Engine {
    fn parse(event: RawEvent) -> Result<Vec<Alert>, AddonError> {
        RULES.with(|cell| {
            let rules = cell.get_or_init(compile).as_ref().map_err(|message| {
                // The host checks the rules at install; this is for rules it did not check.
                AddonError::internal(format!("the addon's rules do not compile: {message}"))
            })?;
            let document = event::document(&event);
            match rules.evaluate(&document) {
                Ok(alerts) => Ok(alerts.into_iter().map(alert).collect()),
                Err(e) => Err(match e.kind {
                    EventErrorKind::InvalidInput => AddonError::invalid_input(e.message),
                    EventErrorKind::Unsupported => AddonError::unsupported(e.message),
                }),
            }
        })
    }
}

export!(Engine);

fn compile() -> Result<Rules, String> {
    let text = opsconductor::rules::rules::parse_section();
    let section = opsconductor_addon_sdk::serde_json::from_str(&text)
        .map_err(|e| format!("parse section is not JSON: {e}"))?;
    Rules::compile(&section).map_err(|e| e.to_string())
}

fn alert(a: RuleAlert) -> Alert {
    Alert {
        alert_type: a.alert_type,
        device_ip: a.device_ip,
        device_name: a.device_name,
        title: a.title,
        message: a.message,
        // A word the table does not know leaves the severity to the manifest, as in code.
        severity: a.severity.as_deref().and_then(|s| SEVERITY_WORDS.get(s)),
        clears: a.clears,
        identity: a.identity,
        fields: a.fields,
        occurred_at: a.occurred_at,
    }
}
