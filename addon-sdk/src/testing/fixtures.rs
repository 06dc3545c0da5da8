//! The native fixture runner: every `fixtures/<name>.input*.json` of an addon, parsed by the
//! addon natively and judged against `fixtures/<name>.expected.json` the way the host's runner
//! judges it, so `cargo test` covers the fixtures without building WebAssembly.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::{Addon, Alert, WebhookRequest};

/// The receipt time the host evaluates fixtures at (2026-01-01T00:00:00Z): an alert without
/// `occurred-at` gets it, and the expectation then shows `null`.
const FIXTURE_TIME_MILLIS: i64 = 1_767_225_600_000;

// The host engine's limits (runtime/crates/model/src/engine.rs); text is cut, structure refused.
const MAX_ALERT_TYPE_LEN: usize = 128;
const MAX_DEVICE_NAME_LEN: usize = 255;
const MAX_TITLE_LEN: usize = 256;
const MAX_MESSAGE_LEN: usize = 16 * 1024;
const MAX_FIELDS: usize = 128;
const MAX_FIELD_NAME_LEN: usize = 128;
const MAX_FIELD_VALUE_LEN: usize = 4 * 1024;

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
/// `<name>.input.poll.json` ([`super::poll_json`]). The alerts are turned into the host's
/// actions with the manifest's `alerts` rules (severity and category maps, defaults, `clears`)
/// and the host's limits, exactly as the expectation records them; an error expectation
/// (`{"error": {"kind", "message_contains"}}`) needs an addon error of that kind whose message
/// contains the text. `opsconductor addon test` runs the same fixtures in the real sandbox,
/// which also checks time and memory budgets and the trap OID routing.
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
    let manifest: Value = read_json(&dir.join("manifest.json"));
    let rules = Rules::of(&manifest);
    let fixtures = dir.join("fixtures");
    let mut names: Vec<(String, String)> = std::fs::read_dir(&fixtures)
        .unwrap_or_else(|e| panic!("{}: {e}", fixtures.display()))
        .filter_map(|entry| {
            let file = entry.ok()?.file_name().into_string().ok()?;
            let (name, kind) = file.split_once(".input")?;
            Some((name.to_owned(), kind.to_owned()))
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "{} has no fixtures", fixtures.display());

    let mut failures = Vec::new();
    for (name, kind) in names {
        let input = fixtures.join(format!("{name}.input{kind}"));
        let text =
            std::fs::read_to_string(&input).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        let parsed = match kind.as_str() {
            ".json" => {
                let path = manifest.pointer("/webhook/path").and_then(Value::as_str);
                let path = path.unwrap_or_else(|| {
                    panic!("{name}: a webhook fixture, but the manifest has no `webhook`")
                });
                addon.parse_webhook(&WebhookRequest {
                    method: "POST".into(),
                    path: path.to_owned(),
                    headers: vec![("content-type".into(), "application/json".into())],
                    query: Vec::new(),
                    body: text.into_bytes(),
                    source: "127.0.0.1:40000".into(),
                })
            }
            ".trap.json" => addon.parse_trap(&super::trap_json(&text)),
            ".poll.json" => addon.parse_poll(&super::poll_json(&text)),
            other => panic!("{name}: unknown fixture kind `.input{other}`"),
        };
        let actual = match parsed {
            Ok(alerts) => {
                let actions: Result<Vec<Vec<Value>>, String> =
                    alerts.into_iter().map(|a| rules.evaluate(a)).collect();
                match actions {
                    Ok(actions) => Value::Array(actions.into_iter().flatten().collect()),
                    Err(e) => json!({ "engine_error": e }),
                }
            }
            Err(e) => json!({ "error": { "kind": e.kind.as_str(), "message": e.message } }),
        };
        let expected_path = fixtures.join(format!("{name}.expected.json"));
        if !expected_path.exists() {
            failures.push(format!("{name}: {} is missing", expected_path.display()));
            continue;
        }
        let expected = read_json(&expected_path);
        if let Some(mismatch) = compare(&expected, &actual) {
            failures.push(format!("{name}: {mismatch}"));
        }
    }
    failures
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The manifest's `alerts` section, with the host's defaults.
struct Rules {
    default_severity: String,
    default_category: String,
    severity_map: Map<String, Value>,
    category_map: Map<String, Value>,
    clears: BTreeMap<String, Vec<String>>,
}

impl Rules {
    fn of(manifest: &Value) -> Rules {
        let text = |p: &str, default: &str| {
            let v = manifest.pointer(p).and_then(Value::as_str);
            v.unwrap_or(default).to_owned()
        };
        let map = |p: &str| manifest.pointer(p).and_then(Value::as_object).cloned();
        let clears = map("/alerts/clears").unwrap_or_default().into_iter();
        Rules {
            default_severity: text("/alerts/default_severity", "warning"),
            default_category: text("/alerts/default_category", "unknown"),
            severity_map: map("/alerts/severity_map").unwrap_or_default(),
            category_map: map("/alerts/category_map").unwrap_or_default(),
            clears: clears
                .map(|(k, v)| (k, serde_json::from_value(v).unwrap_or_default()))
                .collect(),
        }
    }

    /// What the host's engine makes of one alert, rendered as the host's fixture runner does.
    fn evaluate(&self, a: Alert) -> Result<Vec<Value>, String> {
        let alert_type = a.alert_type.trim().to_owned();
        if alert_type.is_empty() {
            return Err("alert-type must not be empty".into());
        }
        if alert_type.len() > MAX_ALERT_TYPE_LEN {
            return Err(format!(
                "alert-type is longer than {MAX_ALERT_TYPE_LEN} bytes"
            ));
        }
        let device_ip = match a.device_ip.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(ip) => Some(ip.parse::<IpAddr>().map(|ip| ip.to_string()).map_err(|_| {
                format!("alert `{alert_type}` has device-ip `{ip}`, which is not an IP address")
            })?),
        };
        let device_name = a
            .device_name
            .map(|n| cut(n.trim(), MAX_DEVICE_NAME_LEN))
            .filter(|n| !n.is_empty());
        if device_ip.is_none() && device_name.is_none() {
            return Err(format!(
                "alert `{alert_type}` has neither device-ip nor device-name"
            ));
        }
        if a.identity.len() + a.fields.len() > MAX_FIELDS {
            return Err(format!(
                "alert `{alert_type}` has more than {MAX_FIELDS} identity and extra fields"
            ));
        }
        let mut fields = Map::new();
        for (name, value) in a.identity.into_iter().chain(a.fields) {
            if name.is_empty() || name.len() > MAX_FIELD_NAME_LEN {
                return Err(format!(
                    "alert `{alert_type}` has an empty or over-long field name `{}`",
                    cut(&name, MAX_FIELD_NAME_LEN)
                ));
            }
            // Identity comes first and wins over an extra field of the same name.
            fields
                .entry(name)
                .or_insert_with(|| Value::String(cut(&value, MAX_FIELD_VALUE_LEN)));
        }

        let cleared = match self.clears.get(&alert_type) {
            Some(targets) => targets.clone(),
            None if a.clears => vec![alert_type.clone()],
            None => Vec::new(),
        };
        if !cleared.is_empty() {
            return Ok(cleared
                .into_iter()
                .map(|t| json!({"action": "clear", "alert_type": t, "cleared_by": alert_type}))
                .collect());
        }
        let severity = match (self.severity_map.get(&alert_type), a.severity) {
            (Some(mapped), _) => mapped.clone(),
            (None, Some(s)) => Value::from(s.as_str()),
            (None, None) => Value::from(self.default_severity.as_str()),
        };
        let category = self.category_map.get(&alert_type).cloned();
        let title = match a.title.trim() {
            "" => alert_type.clone(),
            t => cut(t, MAX_TITLE_LEN),
        };
        Ok(vec![json!({
            "action": "raise",
            "alert_type": alert_type,
            "device_ip": device_ip,
            "device_name": device_name,
            "severity": severity,
            "category": category.unwrap_or_else(|| Value::from(self.default_category.as_str())),
            "title": title,
            "message": cut(&a.message, MAX_MESSAGE_LEN),
            "fields": fields,
            "occurred_at": a.occurred_at.filter(|t| *t != FIXTURE_TIME_MILLIS),
        })])
    }
}

/// The host's cut: at most `max` bytes on a character boundary, `…` included.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// `None` when `actual` meets `expected`, else what differs.
fn compare(expected: &Value, actual: &Value) -> Option<String> {
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    if let Some(want) = expected.get("error") {
        let kind_ok = actual.pointer("/error/kind") == want.get("kind");
        let message = actual.pointer("/error/message").and_then(Value::as_str);
        let contains = want.get("message_contains").and_then(Value::as_str);
        if kind_ok
            && message
                .unwrap_or_default()
                .contains(contains.unwrap_or_default())
        {
            return None;
        }
        return Some(format!("expected error {want}\ngot {}", pretty(actual)));
    }
    if millis_times(expected) == millis_times(actual) {
        return None;
    }
    Some(format!(
        "expected\n{}\ngot\n{}",
        pretty(expected),
        pretty(actual)
    ))
}

/// The value with every `occurred_at` RFC 3339 string replaced by its milliseconds.
fn millis_times(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(millis_times).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v.as_str()) {
                        ("occurred_at", Some(s)) => {
                            crate::rfc3339_millis(s).map_or_else(|| v.clone(), Value::from)
                        }
                        _ => millis_times(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Result, Severity, ptr_str};

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

    fn rules() -> Rules {
        Rules::of(&json!({"alerts": {
            "default_severity": "minor", "default_category": "app",
            "severity_map": {"down": "critical"}, "category_map": {"down": "network"},
            "clears": {"up": ["down", "degraded"]}}}))
    }

    #[test]
    fn evaluate_follows_the_host_engine() {
        let r = rules();
        let a = |t: &str| Alert::new(t, "").device("[2001:0db8::1]:80");
        let raised = r.evaluate(a("down").severity(Severity::Info)).unwrap();
        assert_eq!(
            raised,
            vec![
                json!({"action": "raise", "alert_type": "down", "device_ip": "2001:db8::1",
                "device_name": null, "severity": "critical", "category": "network",
                "title": "down", "message": "", "fields": {}, "occurred_at": null})
            ]
        );
        let other = r.evaluate(a("slow").occurred_at_millis(5)).unwrap();
        assert_eq!(other[0]["severity"], "minor");
        assert_eq!(other[0]["category"], "app");
        assert_eq!(other[0]["occurred_at"], 5);
        let cleared = r.evaluate(a("up")).unwrap();
        assert_eq!(cleared.len(), 2);
        assert_eq!(
            cleared[1],
            json!({"action": "clear", "alert_type": "degraded", "cleared_by": "up"})
        );
        assert_eq!(
            r.evaluate(a("x").clears(true)).unwrap(),
            vec![json!({"action": "clear", "alert_type": "x", "cleared_by": "x"})]
        );
        assert!(
            r.evaluate(Alert::new("x", ""))
                .unwrap_err()
                .contains("neither device-ip")
        );
        assert!(r.evaluate(Alert::new(" ", "").device("h")).is_err());
        let long = r
            .evaluate(a("t").message("é".repeat(MAX_MESSAGE_LEN)))
            .unwrap();
        let message = long[0]["message"].as_str().unwrap();
        assert!(message.len() <= MAX_MESSAGE_LEN && message.ends_with('…'));
    }

    #[test]
    fn fixtures_pass_and_fail_as_the_host_would() {
        let dir = std::env::temp_dir().join(format!("oc-sdk-fixtures-{}", std::process::id()));
        let fixtures = dir.join("fixtures");
        std::fs::create_dir_all(&fixtures).unwrap();
        std::fs::write(
            dir.join("manifest.json"),
            r#"{"webhook": {"path": "echo"}, "alerts": {"default_severity": "major"}}"#,
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
