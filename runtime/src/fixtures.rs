//! Runs an addon bundle's fixtures through the real sandbox and the alert engine. Each
//! `fixtures/<name>.input.json` (a webhook body, posted to the manifest's webhook path) or
//! `fixtures/<name>.input.trap.json` (an SNMP trap, see [`trap_from_json`]) must produce
//! `fixtures/<name>.expected.json`; a bundle may have both kinds.
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
use crate::event::{
    RawEvent, SnmpTrap, SnmpV1Header, SnmpValue, SnmpVersion, Varbind, WebhookRequest,
};
use crate::manifest::{Manifest, parse_oid};
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

    let fixtures_dir = dir.join("fixtures");
    let mut inputs: Vec<(String, bool)> = std::fs::read_dir(&fixtures_dir)
        .map_err(|e| bundle_err(dir, format!("fixtures/: {e}")))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|file| {
            let trap = file
                .strip_suffix(".input.trap.json")
                .map(|n| (n.to_owned(), true));
            trap.or_else(|| Some((file.strip_suffix(".input.json")?.to_owned(), false)))
        })
        .collect();
    inputs.sort();
    if inputs.is_empty() {
        return Err(bundle_err(
            dir,
            "has no fixtures/<name>.input.json or fixtures/<name>.input.trap.json",
        ));
    }

    let mut results = Vec::new();
    for (name, is_trap) in inputs {
        let input = fixtures_dir.join(if is_trap {
            format!("{name}.input.trap.json")
        } else {
            format!("{name}.input.json")
        });
        // Every problem with a fixture file names the file, relative to the bundle.
        let fixture_err = |path: &Path, message: String| {
            let path = path.strip_prefix(dir).unwrap_or(path);
            bundle_err(dir, format!("{}: {message}", path.display()))
        };
        let expected_path = fixtures_dir.join(format!("{name}.expected.json"));
        let expected: Value = std::fs::read(&expected_path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| fixture_err(&expected_path, e))?;
        let bytes = std::fs::read(&input).map_err(|e| fixture_err(&input, e.to_string()))?;
        let event = if is_trap {
            let trap = trap_from_json(&bytes).map_err(|e| fixture_err(&input, e))?;
            // A fixture the registry would never route to this addon proves nothing.
            let claimed = manifest.snmp_trap.as_ref().is_some_and(|t| {
                let arcs = parse_oid(&trap.trap_oid).unwrap_or_default();
                t.oid_prefixes
                    .iter()
                    .any(|p| parse_oid(p).is_some_and(|p| arcs.starts_with(&p)))
            });
            if !claimed {
                let message = format!(
                    "trap_oid: {} is not under the manifest's snmp_trap.oid_prefixes",
                    trap.trap_oid
                );
                return Err(fixture_err(&input, message));
            }
            RawEvent::SnmpTrap(trap)
        } else {
            let path = manifest.webhook.as_ref().map(|w| w.path.clone());
            let path = path.ok_or_else(|| {
                fixture_err(
                    &input,
                    "a webhook fixture, but the manifest has no `webhook`".into(),
                )
            })?;
            RawEvent::Webhook(WebhookRequest {
                method: "POST".into(),
                path,
                headers: vec![("content-type".into(), "application/json".into())],
                query: Vec::new(),
                body: bytes,
                source: "127.0.0.1:40000".into(),
            })
        };
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

/// A trap fixture: the [`SnmpTrap`] as JSON, field names as in the struct.
///
/// `version` (`v1`, `v2c`, `v3`), `source`, `agent_address`, `trap_oid` and `varbinds` are
/// required; `security_name` (null), `context_name` (""), `uptime` (0), `is_inform` (false) and
/// `v1` (null, or `{"enterprise", "agent_addr", "generic_trap", "specific_trap"}`) default. A
/// varbind is `{"oid", "type", "value"}`: `integer`, `counter32`, `gauge32`, `timeticks`,
/// `counter64` take a number; `object-id`, `ip-address` a text; `octet-string` a text or instead
/// `"hex": "00ff"`; `opaque` only `hex`; `null`, `no-such-object`, `no-such-instance`,
/// `end-of-mib-view` nothing. The SDK's `testing::trap_json` reads the same format for addons'
/// native tests. Errors name the field (`varbinds[2]: invalid value: integer
/// 2147483648, expected i32`).
pub fn trap_from_json(bytes: &[u8]) -> Result<SnmpTrap, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Trap {
        version: String,
        source: String,
        agent_address: String,
        #[serde(default)]
        security_name: Option<String>,
        #[serde(default)]
        context_name: String,
        trap_oid: String,
        #[serde(default)]
        uptime: u32,
        #[serde(default)]
        is_inform: bool,
        #[serde(default)]
        v1: Option<V1>,
        varbinds: Vec<serde_json::Map<String, Value>>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct V1 {
        enterprise: String,
        agent_addr: String,
        generic_trap: i32,
        specific_trap: i32,
    }

    let mut de = serde_json::Deserializer::from_slice(bytes);
    let t: Trap = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
    let version = match t.version.as_str() {
        "v1" => SnmpVersion::V1,
        "v2c" => SnmpVersion::V2c,
        "v3" => SnmpVersion::V3,
        other => return Err(format!("version: `{other}` is not v1, v2c or v3")),
    };
    if parse_oid(&t.trap_oid).is_none() {
        return Err(format!(
            "trap_oid: `{}` is not a dotted-decimal OID",
            t.trap_oid
        ));
    }
    let mut varbinds = Vec::with_capacity(t.varbinds.len());
    for (i, mut vb) in t.varbinds.into_iter().enumerate() {
        let at = |e: &dyn std::fmt::Display| format!("varbinds[{i}]: {e}");
        let Some(Value::String(oid)) = vb.remove("oid") else {
            return Err(at(&"needs a text `oid`"));
        };
        let value: FixtureValue = serde_json::from_value(Value::Object(vb)).map_err(|e| at(&e))?;
        let value = value.into_snmp().map_err(|e| at(&e))?;
        varbinds.push(Varbind { oid, value });
    }
    Ok(SnmpTrap {
        version,
        source: t.source,
        agent_address: t.agent_address,
        security_name: t.security_name,
        context_name: t.context_name,
        trap_oid: t.trap_oid,
        uptime: t.uptime,
        varbinds,
        is_inform: t.is_inform,
        v1: t.v1.map(|h| SnmpV1Header {
            enterprise: h.enterprise,
            agent_addr: h.agent_addr,
            generic_trap: h.generic_trap,
            specific_trap: h.specific_trap,
        }),
    })
}

/// A varbind value in a trap fixture: `"type"` names the variant, the rest are its fields. The
/// valueless types are empty struct variants so that a stray `value` on them is refused (serde
/// ignores extra fields on unit variants).
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
#[rustfmt::skip] // one line per SMI type reads as the table it is
enum FixtureValue {
    Integer { value: i32 },
    OctetString { value: Option<String>, hex: Option<String> },
    Null {},
    ObjectId { value: String },
    IpAddress { value: String },
    Counter32 { value: u32 },
    Gauge32 { value: u32 },
    Timeticks { value: u32 },
    Opaque { hex: String },
    Counter64 { value: u64 },
    NoSuchObject {},
    NoSuchInstance {},
    EndOfMibView {},
}

impl FixtureValue {
    fn into_snmp(self) -> Result<SnmpValue, String> {
        // `00ff`, `00:ff` and `00 ff` all read as two bytes.
        let hex = |h: String| {
            hex::decode(h.replace([':', ' '], "")).map_err(|e| format!("hex `{h}`: {e}"))
        };
        Ok(match self {
            FixtureValue::Integer { value } => SnmpValue::Integer(value),
            FixtureValue::OctetString {
                value: Some(text),
                hex: None,
            } => SnmpValue::OctetString(text.into_bytes()),
            FixtureValue::OctetString {
                value: None,
                hex: Some(h),
            } => SnmpValue::OctetString(hex(h)?),
            FixtureValue::OctetString { .. } => {
                return Err("octet-string needs either `value` or `hex`".into());
            }
            FixtureValue::Null {} => SnmpValue::Null,
            FixtureValue::ObjectId { value } => SnmpValue::ObjectId(value),
            FixtureValue::IpAddress { value } => SnmpValue::IpAddress(value),
            FixtureValue::Counter32 { value } => SnmpValue::Counter32(value),
            FixtureValue::Gauge32 { value } => SnmpValue::Gauge32(value),
            FixtureValue::Timeticks { value } => SnmpValue::TimeTicks(value),
            FixtureValue::Opaque { hex: h } => SnmpValue::Opaque(hex(h)?),
            FixtureValue::Counter64 { value } => SnmpValue::Counter64(value),
            FixtureValue::NoSuchObject {} => SnmpValue::NoSuchObject,
            FixtureValue::NoSuchInstance {} => SnmpValue::NoSuchInstance,
            FixtureValue::EndOfMibView {} => SnmpValue::EndOfMibView,
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const TRAP: &str = r#"{"version": "v1", "source": "192.0.2.10:50123", "agent_address": "192.0.2.10",
        "trap_oid": "1.3.6.1.6.3.1.1.5.3", "uptime": 5,
        "v1": {"enterprise": "1.3.6.1.4.1.9", "agent_addr": "192.0.2.10", "generic_trap": 2, "specific_trap": 0},
        "varbinds": [
            {"oid": "1.1", "type": "integer", "value": 3},
            {"oid": "1.2", "type": "octet-string", "value": "ge-0/0/3"},
            {"oid": "1.3", "type": "octet-string", "hex": "00:ff"},
            {"oid": "1.4", "type": "timeticks", "value": 9},
            {"oid": "1.5", "type": "counter64", "value": 18446744073709551615},
            {"oid": "1.6", "type": "end-of-mib-view"}
        ]}"#;

    #[test]
    fn trap_fixture_becomes_a_raw_trap() {
        let t = trap_from_json(TRAP.as_bytes()).unwrap();
        assert_eq!(
            (t.version, t.uptime, t.is_inform),
            (SnmpVersion::V1, 5, false)
        );
        assert_eq!((t.security_name, t.context_name.as_str()), (None, ""));
        assert_eq!(t.v1.map(|h| h.generic_trap), Some(2));
        let values: Vec<SnmpValue> = t.varbinds.into_iter().map(|v| v.value).collect();
        assert_eq!(
            values,
            [
                SnmpValue::Integer(3),
                SnmpValue::OctetString(b"ge-0/0/3".to_vec()),
                SnmpValue::OctetString(vec![0, 0xff]),
                SnmpValue::TimeTicks(9),
                SnmpValue::Counter64(u64::MAX),
                SnmpValue::EndOfMibView,
            ]
        );
    }

    #[test]
    fn bad_trap_fixtures_name_the_field() {
        let cases = [
            (TRAP.replace(r#""v1","#, r#""v4","#), "version: `v4` is not"),
            (
                TRAP.replace(r#""uptime": 5"#, r#""uptime": -1"#),
                "uptime: invalid value",
            ),
            (
                TRAP.replace(r#""trap_oid""#, r#""trapOid""#),
                "trapOid: unknown field `trapOid`",
            ),
            (
                TRAP.replace(r#""generic_trap": 2"#, r#""generic_trap": "2""#),
                "v1.generic_trap:",
            ),
            (
                TRAP.replace(r#""value": 3"#, r#""value": 2147483648"#),
                "varbinds[0]: invalid value",
            ),
            (
                TRAP.replace(r#""hex": "00:ff""#, r#""hex": "0""#),
                "varbinds[2]: hex `0`",
            ),
            (
                TRAP.replace(r#""type": "timeticks""#, r#""type": "bits""#),
                "varbinds[3]: unknown variant `bits`",
            ),
            (
                TRAP.replace(
                    r#""type": "end-of-mib-view""#,
                    r#""type": "null", "value": 1"#,
                ),
                "varbinds[5]: unknown field `value`",
            ),
            (
                TRAP.replace(r#"{"oid": "1.1", "#, "{"),
                "varbinds[0]: needs a text `oid`",
            ),
            (
                TRAP.replace("1.3.6.1.6.3.1.1.5.3", "linkDown"),
                "trap_oid: `linkDown` is not",
            ),
        ];
        for (json, want) in cases {
            let err = trap_from_json(json.as_bytes()).unwrap_err();
            assert!(err.starts_with(want), "want {want:?}, got {err:?}");
        }
    }
}
