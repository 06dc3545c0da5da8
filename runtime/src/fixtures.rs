//! Runs an addon bundle's fixtures through the real sandbox and the alert engine:
//! `fixtures/<name>.input.json` (a webhook body) must produce `fixtures/<name>.expected.json`.
//!
//! The expectation is what the engine decides, so it covers the addon's parsing and the
//! manifest's severity, category and clear rules together: a JSON array whose elements are
//! `{"action":"raise", alert_type, device_ip, device_name, severity, category, title, message,
//! fields, occurred_at}` or `{"action":"clear", alert_type, cleared_by}`, or instead of the
//! array `{"error": {"kind": "...", "message_contains": "..."}}`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use crate::alert::AlertAction;
use crate::engine::{AlertRules, evaluate};
use crate::event::{RawEvent, WebhookRequest};
use crate::manifest::Manifest;
use crate::sandbox::{CallError, Sandbox};

/// The receipt time fixtures are evaluated at, so that expectations are stable.
pub fn fixture_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

#[derive(Debug)]
pub struct FixtureResult {
    pub name: String,
    /// `None` when the output matched; otherwise what differed.
    pub mismatch: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("bundle {path}: {message}")]
    Bundle { path: PathBuf, message: String },
}

fn bundle_err(path: &Path, message: impl Into<String>) -> FixtureError {
    FixtureError::Bundle {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Runs every fixture of the bundle in `dir`. The bundle must have at least one.
pub async fn run_bundle_fixtures(
    sandbox: &Arc<Sandbox>,
    dir: &Path,
) -> Result<Vec<FixtureResult>, FixtureError> {
    let manifest_bytes = std::fs::read(dir.join("manifest.json"))
        .map_err(|e| bundle_err(dir, format!("manifest.json: {e}")))?;
    let manifest =
        Manifest::from_json(&manifest_bytes).map_err(|e| bundle_err(dir, e.to_string()))?;
    let wasm = std::fs::read(dir.join("addon.wasm"))
        .map_err(|e| bundle_err(dir, format!("addon.wasm: {e}")))?;
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&wasm));
    let component = sandbox
        .load(&manifest.id, &wasm, &sha, &manifest.capabilities)
        .map_err(|e| bundle_err(dir, e.to_string()))?;
    let rules = AlertRules::new(&manifest.id, &manifest.alerts);
    let webhook_path = manifest
        .webhook
        .as_ref()
        .map(|w| w.path.clone())
        .ok_or_else(|| bundle_err(dir, "only webhook fixtures are supported so far"))?;

    let fixtures_dir = dir.join("fixtures");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&fixtures_dir)
        .map_err(|e| bundle_err(dir, format!("fixtures/: {e}")))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".input.json"))
        .collect();
    inputs.sort();
    if inputs.is_empty() {
        return Err(bundle_err(dir, "has no fixtures/<name>.input.json"));
    }

    let mut results = Vec::new();
    for input in inputs {
        let file = input.file_name().unwrap_or_default().to_string_lossy();
        let name = file.trim_end_matches(".input.json").to_owned();
        let expected_path = fixtures_dir.join(format!("{name}.expected.json"));
        let expected: Value = std::fs::read(&expected_path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| bundle_err(dir, format!("{}: {e}", expected_path.display())))?;
        let body = std::fs::read(&input).map_err(|e| bundle_err(dir, e.to_string()))?;
        let event = RawEvent::Webhook(WebhookRequest {
            method: "POST".into(),
            path: webhook_path.clone(),
            headers: vec![("content-type".into(), "application/json".into())],
            query: Vec::new(),
            body,
            source: "127.0.0.1:40000".into(),
        });
        let actual = match component.parse(event).await {
            Ok(reported) => {
                let mut out = Vec::new();
                let mut engine_error = None;
                for alert in reported {
                    match evaluate(&rules, alert, fixture_time()) {
                        Ok(actions) => out.extend(actions.iter().map(render_action)),
                        Err(e) => engine_error = Some(e.to_string()),
                    }
                }
                match engine_error {
                    Some(e) => json!({ "engine_error": e }),
                    None => Value::Array(out),
                }
            }
            Err(CallError::Addon { kind, message }) => {
                json!({ "error": { "kind": kind, "message": message } })
            }
            Err(other) => json!({ "crash": other.to_string() }),
        };
        results.push(FixtureResult {
            mismatch: compare(&expected, &actual),
            name,
        });
    }
    Ok(results)
}

fn render_action(action: &AlertAction) -> Value {
    match action {
        AlertAction::Raise(a) => json!({
            "action": "raise",
            "alert_type": a.alert_type,
            "device_ip": a.device_ip,
            "device_name": a.device_name,
            "severity": a.severity,
            "category": a.category,
            "title": a.title,
            "message": a.message,
            "fields": a.fields,
            "occurred_at": (a.occurred_at != fixture_time())
                .then(|| a.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        }),
        AlertAction::Clear(c) => json!({
            "action": "clear",
            "alert_type": c.alert_type,
            "cleared_by": c.cleared_by,
        }),
    }
}

fn compare(expected: &Value, actual: &Value) -> Option<String> {
    if let Some(want) = expected.get("error") {
        let kind_ok = actual.pointer("/error/kind") == want.get("kind");
        let message = actual
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let contains = want
            .get("message_contains")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind_ok && message.contains(contains) {
            return None;
        }
        return Some(format!(
            "expected error {want}\n   got {}",
            serde_json::to_string_pretty(actual).unwrap_or_default()
        ));
    }
    if normalise_times(expected) == normalise_times(actual) {
        return None;
    }
    Some(format!(
        "expected:\n{}\ngot:\n{}",
        serde_json::to_string_pretty(expected).unwrap_or_default(),
        serde_json::to_string_pretty(actual).unwrap_or_default()
    ))
}

/// Compares `occurred_at` as instants, so `…00Z` and `…00+00:00` agree.
fn normalise_times(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(normalise_times).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v.as_str()) {
                        ("occurred_at", Some(s)) => DateTime::parse_from_rfc3339(s)
                            .map(|t| Value::from(t.timestamp_millis()))
                            .unwrap_or_else(|_| v.clone()),
                        _ => normalise_times(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}
