//! The native fixture runner: every `fixtures/<name>.input*.json` of an addon, parsed by the
//! addon natively and judged against `fixtures/<name>.expected.json` by the host's own fixture
//! code (`opsconductor-model`'s `fixture` and `engine`), so `cargo test` covers the fixtures
//! without building WebAssembly, and a fixture passes here exactly when it passes in the sandbox.

use std::path::Path;

use opsconductor_model::engine::AlertRules;
use opsconductor_model::event::RawEvent;
use opsconductor_model::fixture::{self, InputKind};
use opsconductor_model::manifest::Manifest;
use serde_json::Value;

use super::model;
use crate::Addon;

/// Runs every fixture of the addon crate at `crate_dir` through `addon`, natively, and panics
/// with a report of each one that does not give its expectation. Call it from one test:
///
/// ```no_run
/// # use opsconductor_addon_sdk::prelude::*;
/// # #[derive(Default)] struct MyAddon;
/// # impl Addon for MyAddon {}
/// #[test]
/// fn fixtures() {
///     opsconductor_addon_sdk::testing::check_fixtures(&MyAddon, env!("CARGO_MANIFEST_DIR"));
/// }
/// ```
///
/// Inputs are `fixtures/<name>.input.json` (a webhook body, posted to the manifest's
/// `webhook.path`), `<name>.input.trap.json` ([`super::trap_json`]) and
/// `<name>.input.poll.json` ([`super::poll_json`]); an input the host could never hand this
/// addon (a trap OID outside the manifest's prefixes, a fetch the manifest does not list)
/// fails. The alerts are turned into actions by the host's engine with the manifest's `alerts`
/// rules, exactly as the expectation records them; an error expectation (`{"error": {"kind",
/// "message_contains"}}`) needs an addon error of that kind whose message contains the text.
/// `opsconductor addon test` runs the same fixtures in the real sandbox, which also checks
/// time and memory budgets.
pub fn check_fixtures<A: Addon + ?Sized>(addon: &A, crate_dir: &str) {
    let failures = run_fixtures(addon, Path::new(crate_dir));
    if !failures.is_empty() {
        panic!(
            "{} fixture(s) failed:\n\n{}",
            failures.len(),
            failures.join("\n\n")
        );
    }
}

/// The failures of every fixture, each a readable paragraph; empty when all pass.
fn run_fixtures<A: Addon + ?Sized>(addon: &A, dir: &Path) -> Vec<String> {
    let manifest_path = dir.join("manifest.json");
    let manifest = std::fs::read(&manifest_path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| Manifest::from_json(&bytes).map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display()));
    let rules = AlertRules::new(&manifest.id, &manifest.alerts);
    let fixtures = dir.join("fixtures");
    let mut inputs: Vec<(String, InputKind)> = std::fs::read_dir(&fixtures)
        .unwrap_or_else(|e| panic!("{}: {e}", fixtures.display()))
        .filter_map(|entry| {
            let file = entry.ok()?.file_name().into_string().ok()?;
            let (name, kind) = InputKind::of(&file)?;
            Some((name.to_owned(), kind))
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{} has no fixtures", fixtures.display());

    let mut failures = Vec::new();
    for (name, kind) in inputs {
        let input = format!("{name}{}", kind.suffix());
        let bytes = std::fs::read(fixtures.join(&input))
            .unwrap_or_else(|e| panic!("{}: {e}", fixtures.join(&input).display()));
        let event = match fixture::read_input(&manifest, kind, bytes) {
            Ok(event) => event,
            Err(e) => {
                failures.push(format!("{name}: fixtures/{input}: {e}"));
                continue;
            }
        };
        let parsed = match event {
            RawEvent::Webhook(request) => addon.parse_webhook(&model::webhook(request)),
            RawEvent::SnmpTrap(trap) => addon.parse_trap(&model::trap(trap)),
            RawEvent::Poll(poll) => addon.parse_poll(&model::poll(poll)),
        };
        let actual = match parsed {
            Ok(alerts) => fixture::evaluate_reported(
                &rules,
                alerts.into_iter().map(model::reported).collect(),
            ),
            Err(e) => fixture::addon_error(e.kind.as_str(), &e.message),
        };
        let expected_path = fixtures.join(format!("{name}.expected.json"));
        let expected: Value = match std::fs::read(&expected_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display())),
            Err(_) => {
                failures.push(format!("{name}: {} is missing", expected_path.display()));
                continue;
            }
        };
        if let Some(mismatch) = fixture::compare(&expected, &actual) {
            failures.push(format!("{name}: {mismatch}"));
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Alert, Result, WebhookRequest, ptr_str};

    #[derive(Default)]
    struct Echo;

    impl Addon for Echo {
        fn parse_webhook(&self, req: &WebhookRequest) -> Result<Vec<Alert>> {
            let body = req.json()?;
            let state = crate::req_str(&body, "/state")?;
            Ok(vec![
                Alert::new(state, ptr_str(&body, "/title").unwrap_or(""))
                    .device(ptr_str(&body, "/host").unwrap_or(""))
                    .severity(crate::SEVERITY_WORDS.get_opt(ptr_str(&body, "/severity")))
                    .identity("check", "disk")
                    .field("check", "ignored: identity wins")
                    .occurred_at_millis(ptr_str(&body, "/at").and_then(crate::rfc3339_millis)),
            ])
        }
    }

    #[test]
    fn fixtures_pass_and_fail_as_the_host_would() {
        let dir = std::env::temp_dir().join(format!("oc-sdk-fixtures-{}", std::process::id()));
        let fixtures = dir.join("fixtures");
        std::fs::create_dir_all(&fixtures).unwrap();
        std::fs::write(
            dir.join("manifest.json"),
            r#"{"id": "echo", "name": "Echo", "version": "0.1.0",
                "world": "opsconductor:addon/addon@0.2.0", "methods": ["webhook"],
                "webhook": {"path": "echo"}, "alerts": {"default_severity": "major"}}"#,
        )
        .unwrap();
        let write = |name: &str, text: &str| std::fs::write(fixtures.join(name), text).unwrap();
        write(
            "ok.input.json",
            r#"{"state": "down", "host": "db-1", "at": "2024-05-01T12:00:00Z"}"#,
        );
        write(
            "ok.expected.json",
            r#"[{"action": "raise", "alert_type": "down", "device_ip": null, "device_name": "db-1",
                "severity": "major", "category": "unknown", "title": "down", "message": "",
                "fields": {"check": "disk"}, "occurred_at": "2024-05-01T12:00:00.000Z"}]"#,
        );
        write("bad.input.json", r#"{"host": "db-1"}"#);
        write(
            "bad.expected.json",
            r#"{"error": {"kind": "invalid-input", "message_contains": "/state"}}"#,
        );
        assert_eq!(run_fixtures(&Echo, &dir), Vec::<String>::new());

        write(
            "wrong.input.json",
            r#"{"state": "down", "host": "db-1", "severity": "crit"}"#,
        );
        write("wrong.expected.json", "[]");
        write("nodevice.input.json", r#"{"state": "down"}"#);
        write("nodevice.expected.json", "[]");
        write("lonely.input.json", r#"{"state": "x"}"#);
        let failures = run_fixtures(&Echo, &dir);
        assert_eq!(failures.len(), 3, "{failures:#?}");
        assert!(failures[0].starts_with("lonely: "), "{}", failures[0]);
        assert!(failures[1].contains("neither device-ip"), "{}", failures[1]);
        assert!(failures[2].contains("\"critical\""), "{}", failures[2]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
