//! The fixture format, shared by the host's fixture runner (`opsconductor addon test`, bundle
//! installs) and the addon SDK's native runner (`testing::check_fixtures`), so that a fixture
//! passes natively exactly when it passes in the sandbox.
//!
//! Each `fixtures/<name>.input.json` (a webhook body, posted to the manifest's webhook path),
//! `fixtures/<name>.input.trap.json` (an SNMP trap, see [`trap_from_json`]) or
//! `fixtures/<name>.input.poll.json` (the result of a declarative poll, see
//! [`poll_from_json`]) must produce `fixtures/<name>.expected.json`; an addon may have every
//! kind.
//!
//! The expectation is what the engine decides, so it covers the addon's parsing and the
//! manifest's severity, category and clear rules together: a JSON array whose elements are
//! `{"action":"raise", alert_type, device_ip, device_name, severity, category, title, message,
//! fields, occurred_at}` or `{"action":"clear", alert_type, cleared_by}`, or instead of the
//! array `{"error": {"kind": "...", "message_contains": "..."}}`.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use crate::alert::{AlertAction, ReportedAlert};
use crate::engine::{AlertRules, evaluate};
use crate::event::{
    AddonTarget, Fetched, FetchedData, HttpResponse, PollResult, RawEvent, SnmpTrap, SnmpV1Header,
    SnmpValue, SnmpVersion, SshOutput, Varbind, WebhookRequest,
};
use crate::manifest::{Manifest, Method, PollMode, parse_oid};

/// The receipt time fixtures are evaluated at, so that expectations are stable: an alert
/// without `occurred-at` gets it, and the expectation then shows `null`.
pub fn fixture_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// The raw event a fixture input stands for, or why the host could never hand this addon
/// such an event: a webhook fixture needs the manifest's `webhook`, a trap fixture a trap OID
/// under its `snmp_trap.oid_prefixes`, a poll fixture its declarative `poll`. Errors name the
/// field at fault.
pub fn read_input(
    manifest: &Manifest,
    kind: InputKind,
    bytes: Vec<u8>,
) -> Result<RawEvent, String> {
    Ok(match kind {
        InputKind::Poll => {
            let poll = poll_from_json(&bytes)?;
            check_poll_fixture(manifest, &poll)?;
            RawEvent::Poll(poll)
        }
        InputKind::Trap => {
            let trap = trap_from_json(&bytes)?;
            // A fixture the registry would never route to this addon proves nothing.
            let claimed = manifest.snmp_trap.as_ref().is_some_and(|t| {
                let arcs = parse_oid(&trap.trap_oid).unwrap_or_default();
                t.oid_prefixes
                    .iter()
                    .any(|p| parse_oid(p).is_some_and(|p| arcs.starts_with(&p)))
            });
            if !claimed {
                return Err(format!(
                    "trap_oid: {} is not under the manifest's snmp_trap.oid_prefixes",
                    trap.trap_oid
                ));
            }
            RawEvent::SnmpTrap(trap)
        }
        InputKind::Webhook => {
            let Some(webhook) = &manifest.webhook else {
                return Err("a webhook fixture, but the manifest has no `webhook`".into());
            };
            RawEvent::Webhook(WebhookRequest {
                method: "POST".into(),
                path: webhook.path.clone(),
                headers: vec![("content-type".into(), "application/json".into())],
                query: Vec::new(),
                body: bytes,
                source: "127.0.0.1:40000".into(),
            })
        }
    })
}

/// What the engine makes of the alerts an addon reported, in the expectation's format: the
/// actions in order, or `{"engine_error": ...}` when the engine refuses one of them.
pub fn evaluate_reported(rules: &AlertRules, reported: Vec<ReportedAlert>) -> Value {
    let mut out = Vec::new();
    let mut engine_error = None;
    for alert in reported {
        match evaluate(rules, alert, fixture_time()) {
            Ok(actions) => out.extend(actions.iter().map(render_action)),
            Err(e) => engine_error = Some(e.to_string()),
        }
    }
    match engine_error {
        Some(e) => json!({ "engine_error": e }),
        None => Value::Array(out),
    }
}

/// An addon's error, in the expectation's format (`kind` as the WIT names it, `invalid-input`).
pub fn addon_error(kind: &str, message: &str) -> Value {
    json!({ "error": { "kind": kind, "message": message } })
}

/// What `--update` writes as a fixture's expectation: the actual output, with an addon error
/// in the `{"error": {"kind", "message_contains"}}` form.
pub fn updated_expectation(actual: &Value) -> Value {
    match actual.get("error") {
        Some(error) => json!({ "error": {
            "kind": error.get("kind").cloned().unwrap_or(Value::Null),
            "message_contains": error.get("message").cloned().unwrap_or(Value::Null),
        }}),
        None => actual.clone(),
    }
}

/// The kinds of fixture input, told apart by the file name's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InputKind {
    Poll,
    Trap,
    Webhook,
}

impl InputKind {
    const ALL: [InputKind; 3] = [InputKind::Poll, InputKind::Trap, InputKind::Webhook];

    /// The fixture name and kind of an input file's name, `None` for other files. The longer
    /// suffixes are tried first: `x.input.trap.json` is not a webhook fixture named `x.input`.
    pub fn of(file: &str) -> Option<(&str, InputKind)> {
        InputKind::ALL
            .into_iter()
            .find_map(|kind| Some((file.strip_suffix(kind.suffix())?, kind)))
    }

    pub fn suffix(self) -> &'static str {
        match self {
            InputKind::Poll => ".input.poll.json",
            InputKind::Trap => ".input.trap.json",
            InputKind::Webhook => ".input.json",
        }
    }
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
    let varbinds = varbinds_from_json(t.varbinds, "varbinds")?;
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

/// Varbinds in the fixture notation; errors name `<field>[i]`.
fn varbinds_from_json(
    list: Vec<serde_json::Map<String, Value>>,
    field: &str,
) -> Result<Vec<Varbind>, String> {
    let mut varbinds = Vec::with_capacity(list.len());
    for (i, mut vb) in list.into_iter().enumerate() {
        let at = |e: &dyn std::fmt::Display| format!("{field}[{i}]: {e}");
        let Some(Value::String(oid)) = vb.remove("oid") else {
            return Err(at(&"needs a text `oid`"));
        };
        let value: FixtureValue = serde_json::from_value(Value::Object(vb)).map_err(|e| at(&e))?;
        let value = value.into_snmp().map_err(|e| at(&e))?;
        varbinds.push(Varbind { oid, value });
    }
    Ok(varbinds)
}

/// A poll fixture: the [`PollResult`] of a declarative poll as JSON.
///
/// ```json
/// {"target": {"id": "7", "name": "core-sw-1", "address": "192.0.2.10", "config": {"exclude": "^Null"}},
///  "started_at": "2026-01-02T03:04:05Z",
///  "fetched": [
///    {"name": "ifOperStatus", "snmp": [{"oid": "1.3.6.1.2.1.2.2.1.8.1", "type": "integer", "value": 1}]},
///    {"name": "status", "http": {"status": 200, "headers": {"content-type": "application/json"}, "json": {"status": "ok"}}},
///    {"name": "df", "ssh": {"command": "df -P", "exit_status": 0, "stdout": "...", "stderr": ""}},
///    {"name": "loadavg", "error": "unreachable: timed out"}]}
/// ```
///
/// `target` needs `id`, `name` and `address`; `config` is an object (default `{}`), handed to
/// the addon as its JSON text. `started_at` is RFC 3339 text or milliseconds since the epoch.
/// Each entry of `fetched` has the fetch's `name` and exactly one of: `snmp`, varbinds as in
/// [`trap_from_json`]; `http`, `{status, headers, json | body}` where `headers` is an object
/// (default none) and the body is `json` (any JSON value, sent as its text) or `body` (text),
/// empty without either; `ssh`, `{command, exit_status, stdout, stderr}` with `exit_status` 0
/// and the outputs "" by default; `error`, the text of a fetch the host could not complete.
/// The SDK's `testing::poll_json` reads the same format. Errors name the field
/// (`fetched[0].snmp[2]: invalid type: string "1", expected i32`).
pub fn poll_from_json(bytes: &[u8]) -> Result<PollResult, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Poll {
        target: PollTarget,
        started_at: Value,
        fetched: Vec<PollFetched>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct PollTarget {
        id: String,
        name: String,
        address: String,
        #[serde(default)]
        config: serde_json::Map<String, Value>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct PollFetched {
        name: String,
        snmp: Option<Vec<serde_json::Map<String, Value>>>,
        http: Option<Http>,
        ssh: Option<Ssh>,
        error: Option<String>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Http {
        status: u16,
        #[serde(default)]
        headers: std::collections::BTreeMap<String, String>,
        json: Option<Value>,
        body: Option<String>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Ssh {
        command: String,
        #[serde(default)]
        exit_status: i32,
        #[serde(default)]
        stdout: String,
        #[serde(default)]
        stderr: String,
    }

    let mut de = serde_json::Deserializer::from_slice(bytes);
    let p: Poll = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
    let started_at = match &p.started_at {
        Value::Number(n) if n.is_i64() => n.as_i64().unwrap_or_default(),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map_err(|e| format!("started_at: `{s}` is not an RFC 3339 time: {e}"))?
            .timestamp_millis(),
        other => {
            return Err(format!(
                "started_at: {other} is neither RFC 3339 text nor milliseconds since the epoch"
            ));
        }
    };
    let mut fetched = Vec::with_capacity(p.fetched.len());
    for (i, f) in p.fetched.into_iter().enumerate() {
        let at = |e: &dyn std::fmt::Display| format!("fetched[{i}]: {e}");
        let outcome = match (f.snmp, f.http, f.ssh, f.error) {
            (Some(list), None, None, None) => Ok(FetchedData::Snmp(varbinds_from_json(
                list,
                &format!("fetched[{i}].snmp"),
            )?)),
            (None, Some(h), None, None) => Ok(FetchedData::Http(HttpResponse {
                status: h.status,
                headers: h.headers.into_iter().collect(),
                body: match (h.json, h.body) {
                    (Some(json), None) => json.to_string().into_bytes(),
                    (None, body) => body.unwrap_or_default().into_bytes(),
                    (Some(_), Some(_)) => return Err(at(&"http: has both `json` and `body`")),
                },
            })),
            (None, None, Some(s), None) => Ok(FetchedData::Ssh(SshOutput {
                command: s.command,
                exit_status: s.exit_status,
                stdout: s.stdout.into_bytes(),
                stderr: s.stderr.into_bytes(),
            })),
            (None, None, None, Some(error)) => Err(error),
            _ => return Err(at(&"needs exactly one of `snmp`, `http`, `ssh` or `error`")),
        };
        fetched.push(Fetched {
            name: f.name,
            outcome,
        });
    }
    Ok(PollResult {
        target: AddonTarget {
            id: p.target.id,
            name: p.target.name,
            address: p.target.address,
            config: Value::Object(p.target.config).to_string(),
        },
        started_at,
        fetched,
    })
}

/// A poll fixture must be one the host could produce for this addon: the manifest polls
/// declaratively, and each fetch is one it lists, with data of the kind it names. A fetch the
/// manifest lists may be left out, to show how the addon copes (the host never does that).
fn check_poll_fixture(manifest: &Manifest, poll: &PollResult) -> Result<(), String> {
    let spec = manifest
        .poll
        .as_ref()
        .filter(|p| p.mode == PollMode::Declarative);
    let Some(spec) = spec else {
        return Err("a poll fixture, but the manifest has no declarative `poll`".into());
    };
    for (i, f) in poll.fetched.iter().enumerate() {
        let Some(fetch) = spec.fetch.iter().find(|s| s.name() == f.name) else {
            return Err(format!(
                "fetched[{i}].name: `{}` is not in the manifest's poll.fetch",
                f.name
            ));
        };
        if poll.fetched[..i].iter().any(|g| g.name == f.name) {
            return Err(format!("fetched[{i}].name: `{}` is listed twice", f.name));
        }
        let kind = |method| match method {
            Method::SnmpPoll => "snmp",
            Method::ApiPoll => "http",
            _ => "ssh",
        };
        let given = match &f.outcome {
            Err(_) => continue,
            Ok(FetchedData::Snmp(_)) => Method::SnmpPoll,
            Ok(FetchedData::Http(_)) => Method::ApiPoll,
            Ok(FetchedData::Ssh(_)) => Method::SshPoll,
        };
        if given != fetch.method() {
            return Err(format!(
                "fetched[{i}].{}: the manifest's fetch `{}` gives {} data",
                kind(given),
                f.name,
                kind(fetch.method())
            ));
        }
    }
    Ok(())
}

/// The poll fixture of a [`PollResult`]: the inverse of [`poll_from_json`] (what
/// `opsconductor addon record` writes). An HTTP body that is JSON is kept as `json`, other
/// bodies as text `body` (bytes that are not UTF-8 are replaced); octet strings that are
/// printable UTF-8 as text `value`, others as `hex`.
pub fn poll_to_json(poll: &PollResult) -> Value {
    let config: Value = serde_json::from_str(&poll.target.config)
        .unwrap_or_else(|_| Value::Object(Default::default()));
    let started_at = Utc
        .timestamp_millis_opt(poll.started_at)
        .single()
        .map_or(Value::from(poll.started_at), |t| {
            Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        });
    let fetched: Vec<Value> = poll
        .fetched
        .iter()
        .map(|f| match &f.outcome {
            Err(error) => json!({ "name": f.name, "error": error }),
            Ok(FetchedData::Snmp(varbinds)) => {
                json!({ "name": f.name, "snmp": varbinds.iter().map(varbind_to_json).collect::<Vec<_>>() })
            }
            Ok(FetchedData::Http(h)) => {
                let headers: serde_json::Map<String, Value> = h
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                    .collect();
                let mut http = json!({ "status": h.status, "headers": headers });
                match serde_json::from_slice::<Value>(&h.body) {
                    Ok(body) if !h.body.is_empty() => http["json"] = body,
                    _ => http["body"] = Value::from(String::from_utf8_lossy(&h.body)),
                }
                json!({ "name": f.name, "http": http })
            }
            Ok(FetchedData::Ssh(s)) => json!({ "name": f.name, "ssh": {
                "command": s.command,
                "exit_status": s.exit_status,
                "stdout": String::from_utf8_lossy(&s.stdout),
                "stderr": String::from_utf8_lossy(&s.stderr),
            }}),
        })
        .collect();
    json!({
        "target": {
            "id": poll.target.id,
            "name": poll.target.name,
            "address": poll.target.address,
            "config": config,
        },
        "started_at": started_at,
        "fetched": fetched,
    })
}

/// A varbind in the fixture notation of [`trap_from_json`].
fn varbind_to_json(vb: &Varbind) -> Value {
    fn printable(b: &[u8]) -> Option<&str> {
        let text = std::str::from_utf8(b).ok()?;
        let control = |c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t');
        (!text.chars().any(control)).then_some(text)
    }
    let (kind, field, value) = match &vb.value {
        SnmpValue::Integer(v) => ("integer", "value", Value::from(*v)),
        SnmpValue::OctetString(b) => match printable(b) {
            Some(text) => ("octet-string", "value", Value::from(text)),
            None => ("octet-string", "hex", Value::from(hex::encode(b))),
        },
        SnmpValue::Null => ("null", "", Value::Null),
        SnmpValue::ObjectId(v) => ("object-id", "value", Value::from(v.clone())),
        SnmpValue::IpAddress(v) => ("ip-address", "value", Value::from(v.clone())),
        SnmpValue::Counter32(v) => ("counter32", "value", Value::from(*v)),
        SnmpValue::Gauge32(v) => ("gauge32", "value", Value::from(*v)),
        SnmpValue::TimeTicks(v) => ("timeticks", "value", Value::from(*v)),
        SnmpValue::Opaque(b) => ("opaque", "hex", Value::from(hex::encode(b))),
        SnmpValue::Counter64(v) => ("counter64", "value", Value::from(*v)),
        SnmpValue::NoSuchObject => ("no-such-object", "", Value::Null),
        SnmpValue::NoSuchInstance => ("no-such-instance", "", Value::Null),
        SnmpValue::EndOfMibView => ("end-of-mib-view", "", Value::Null),
    };
    let mut out = json!({ "oid": vb.oid, "type": kind });
    if !field.is_empty() {
        out[field] = value;
    }
    out
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

/// `None` when `actual` meets `expected`, else what differs: for an expected addon error, the
/// error that came instead; otherwise a line diff (see [`json_diff`]).
pub fn compare(expected: &Value, actual: &Value) -> Option<String> {
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
    Some(json_diff(expected, actual))
}

/// A unified line diff of two values' pretty JSON: `-` lines are only in `expected`, `+`
/// lines only in `actual`, with three lines of context.
pub fn json_diff(expected: &Value, actual: &Value) -> String {
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
    let (old, new) = (pretty(expected), pretty(actual));
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
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

    const POLL: &str = r#"{"target": {"id": "7", "name": "core-sw-1", "address": "192.0.2.10",
            "config": {"path": "/health"}},
        "started_at": "2026-01-02T03:04:05Z",
        "fetched": [
            {"name": "oper", "snmp": [
                {"oid": "1.3.6.1.2.1.2.2.1.8.1", "type": "integer", "value": 1},
                {"oid": "1.3.6.1.2.1.2.2.1.2.1", "type": "octet-string", "value": "eth0"}
            ]},
            {"name": "status", "http": {"status": 503, "headers": {"content-type": "application/json"},
                                        "json": {"status": "down"}}},
            {"name": "text", "http": {"status": 200, "body": "ok"}},
            {"name": "df", "ssh": {"command": "df -P", "exit_status": 1, "stderr": "df: /x"}},
            {"name": "gone", "error": "unreachable: timed out"}
        ]}"#;

    #[test]
    fn poll_fixture_becomes_a_raw_poll_result() {
        let p = poll_from_json(POLL.as_bytes()).unwrap();
        assert_eq!(
            p.target,
            AddonTarget {
                id: "7".into(),
                name: "core-sw-1".into(),
                address: "192.0.2.10".into(),
                config: r#"{"path":"/health"}"#.into(),
            }
        );
        assert_eq!(p.started_at, 1_767_323_045_000);
        let outcomes: Vec<_> = p.fetched.into_iter().map(|f| (f.name, f.outcome)).collect();
        assert_eq!(
            outcomes,
            [
                (
                    "oper".to_owned(),
                    Ok(FetchedData::Snmp(vec![
                        Varbind {
                            oid: "1.3.6.1.2.1.2.2.1.8.1".into(),
                            value: SnmpValue::Integer(1)
                        },
                        Varbind {
                            oid: "1.3.6.1.2.1.2.2.1.2.1".into(),
                            value: SnmpValue::OctetString(b"eth0".to_vec())
                        },
                    ]))
                ),
                (
                    "status".to_owned(),
                    Ok(FetchedData::Http(HttpResponse {
                        status: 503,
                        headers: vec![("content-type".into(), "application/json".into())],
                        body: br#"{"status":"down"}"#.to_vec(),
                    }))
                ),
                (
                    "text".to_owned(),
                    Ok(FetchedData::Http(HttpResponse {
                        status: 200,
                        headers: vec![],
                        body: b"ok".to_vec(),
                    }))
                ),
                (
                    "df".to_owned(),
                    Ok(FetchedData::Ssh(SshOutput {
                        command: "df -P".into(),
                        exit_status: 1,
                        stdout: vec![],
                        stderr: b"df: /x".to_vec(),
                    }))
                ),
                ("gone".to_owned(), Err("unreachable: timed out".to_owned())),
            ]
        );
        // Millis, and the defaults.
        let p = poll_from_json(
            br#"{"target": {"id": "1", "name": "", "address": "a"}, "started_at": 5, "fetched": []}"#,
        )
        .unwrap();
        assert_eq!((p.started_at, p.target.config.as_str()), (5, "{}"));
    }

    #[test]
    fn poll_fixtures_round_trip() {
        let p = poll_from_json(POLL.as_bytes()).unwrap();
        let written = poll_to_json(&p);
        let again = poll_from_json(written.to_string().as_bytes()).unwrap();
        assert_eq!(again, p, "{written:#}");
        let mut binary = p.clone();
        binary.fetched[0].outcome = Ok(FetchedData::Snmp(vec![Varbind {
            oid: "1.2".into(),
            value: SnmpValue::OctetString(vec![0, 0xff]),
        }]));
        let written = poll_to_json(&binary);
        assert_eq!(written["fetched"][0]["snmp"][0]["hex"], "00ff");
        assert_eq!(
            poll_from_json(written.to_string().as_bytes()).unwrap(),
            binary
        );
    }

    #[test]
    fn bad_poll_fixtures_name_the_field() {
        let cases = [
            (
                POLL.replace(r#""value": 1}"#, r#""value": "1"}"#),
                "fetched[0].snmp[0]: invalid type: string \"1\"",
            ),
            (
                POLL.replace(r#""value": "eth0""#, r#""hex": "0""#),
                "fetched[0].snmp[1]: hex `0`",
            ),
            (
                POLL.replace(r#""status": 503"#, r#""status": 70000"#),
                "fetched[1].http.status: invalid value",
            ),
            (
                POLL.replace(r#""body": "ok""#, r#""body": "ok", "json": 1"#),
                "fetched[2]: http: has both `json` and `body`",
            ),
            (
                POLL.replace(r#""exit_status": 1"#, r#""exit": 1"#),
                "fetched[3].ssh.exit: unknown field `exit`",
            ),
            (
                POLL.replace(
                    r#""error": "unreachable: timed out""#,
                    r#""error": "x", "ssh": {"command": "c"}"#,
                ),
                "fetched[4]: needs exactly one of",
            ),
            (
                POLL.replace(
                    r#"{"name": "gone", "error": "unreachable: timed out"}"#,
                    r#"{"name": "gone"}"#,
                ),
                "fetched[4]: needs exactly one of",
            ),
            (
                POLL.replace("2026-01-02T03:04:05Z", "yesterday"),
                "started_at: `yesterday` is not an RFC 3339 time",
            ),
            (
                POLL.replace(r#""2026-01-02T03:04:05Z""#, "1.5"),
                "started_at: 1.5 is neither",
            ),
            (
                POLL.replace(r#""config": {"path": "/health"}"#, r#""config": "{}""#),
                "target.config: invalid type: string",
            ),
            (
                POLL.replace(r#""address": "192.0.2.10","#, ""),
                "target: missing field `address`",
            ),
        ];
        for (json, want) in cases {
            let err = poll_from_json(json.as_bytes()).unwrap_err();
            assert!(err.starts_with(want), "want {want:?}, got {err:?}");
        }
    }

    #[test]
    fn poll_fixtures_must_fit_the_manifest() {
        let manifest = |methods: Value, fetch: Value| {
            let m = json!({
                "id": "x", "name": "x", "version": "0.1.0",
                "world": "opsconductor:addon/addon@0.2.0",
                "methods": methods,
                "poll": { "fetch": fetch },
            });
            Manifest::from_json(m.to_string().as_bytes()).unwrap()
        };
        let all = manifest(
            json!(["snmp_poll", "api_poll", "ssh_poll"]),
            json!([
                { "name": "oper", "kind": "snmp_walk", "oid": "1.3.6.1.2.1.2.2.1.8" },
                { "name": "status", "kind": "http", "path": "/{path}" },
                { "name": "text", "kind": "http", "path": "/" },
                { "name": "df", "kind": "ssh", "command": "df -P" },
                { "name": "gone", "kind": "snmp_get", "oids": ["1.3.6.1.2.1.1.3.0"] },
            ]),
        );
        let poll = poll_from_json(POLL.as_bytes()).unwrap();
        check_poll_fixture(&all, &poll).unwrap();

        let mut swapped = poll.clone();
        swapped.fetched.swap(0, 1);
        swapped.fetched[0].name = "oper".into();
        swapped.fetched[1].name = "status".into();
        let mut twice = poll.clone();
        twice.fetched[2].name = "status".into();
        let cases = [
            (
                manifest(
                    json!(["snmp_poll"]),
                    json!([{ "name": "oper", "kind": "snmp_walk", "oid": "1.3.6" }]),
                ),
                poll.clone(),
                "fetched[1].name: `status` is not in the manifest's poll.fetch",
            ),
            (
                all.clone(),
                swapped,
                "fetched[0].http: the manifest's fetch `oper` gives snmp data",
            ),
            (
                all.clone(),
                twice,
                "fetched[2].name: `status` is listed twice",
            ),
        ];
        for (manifest, poll, want) in cases {
            let err = check_poll_fixture(&manifest, &poll).unwrap_err();
            assert_eq!(err, want);
        }
        let mut webhook_only = all;
        webhook_only.poll = None;
        let err = check_poll_fixture(&webhook_only, &poll).unwrap_err();
        assert!(err.contains("no declarative `poll`"), "{err}");
    }

    #[test]
    fn input_kinds_by_longest_suffix() {
        let cases = [
            ("a.input.poll.json", Some(("a", InputKind::Poll))),
            ("a.input.trap.json", Some(("a", InputKind::Trap))),
            ("a.input.json", Some(("a", InputKind::Webhook))),
            ("a.expected.json", None),
        ];
        for (file, want) in cases {
            assert_eq!(InputKind::of(file), want, "{file}");
        }
    }
}
