//! Helpers for addon unit tests: build raw events, read what the native host stand-ins saw, and
//! run every fixture natively ([`check_fixtures`]).
//!
//! Addon tests call their parse methods directly, natively, with `cargo test`:
//!
//! ```
//! use opsconductor_addon_sdk::{SnmpValue, testing};
//! let req = testing::webhook("alertmanager", r#"{"alerts": []}"#);
//! assert_eq!(req.json().unwrap()["alerts"].as_array().map(Vec::len), Some(0));
//!
//! let trap = testing::trap("1.3.6.1.6.3.1.1.5.3", [("1.3.6.1.2.1.2.2.1.1.3", SnmpValue::Integer(3))]);
//! assert_eq!(trap.int("1.3.6.1.2.1.2.2.1.1"), Some(3));
//! ```

use crate::{SnmpTrap, SnmpValue, SnmpVersion, Varbind, WebhookRequest};

#[cfg(not(target_arch = "wasm32"))]
mod fixtures;
#[cfg(not(target_arch = "wasm32"))]
mod model;
#[cfg(not(target_arch = "wasm32"))]
pub use fixtures::check_fixtures;

/// A `POST` webhook request with a JSON content type, as the host would hand it over.
pub fn webhook(path: &str, body: impl Into<Vec<u8>>) -> WebhookRequest {
    WebhookRequest {
        method: "POST".to_owned(),
        path: path.to_owned(),
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        query: Vec::new(),
        body: body.into(),
        // TEST-NET-1 (RFC 5737): never a real sender.
        source: "192.0.2.10:40000".to_owned(),
    }
}

/// An SNMPv2c trap from `192.0.2.10` (TEST-NET-1) with the given snmpTrapOID and varbinds;
/// set other fields on the result (`trap.v1 = Some(..)`) where a test needs them.
pub fn trap<'a>(
    trap_oid: &str,
    varbinds: impl IntoIterator<Item = (&'a str, SnmpValue)>,
) -> SnmpTrap {
    SnmpTrap {
        version: SnmpVersion::V2c,
        source: "192.0.2.10:50123".to_owned(),
        agent_address: "192.0.2.10".to_owned(),
        security_name: None,
        context_name: String::new(),
        trap_oid: trap_oid.to_owned(),
        uptime: 12_345,
        varbinds: varbinds
            .into_iter()
            .map(|(oid, value)| Varbind {
                oid: oid.to_owned(),
                value,
            })
            .collect(),
        is_inform: false,
        v1: None,
    }
}

/// An octet-string value holding `text`.
pub fn octets(text: &str) -> SnmpValue {
    SnmpValue::OctetString(text.as_bytes().to_vec())
}

/// The trap in a fixture file (`fixtures/<name>.input.trap.json`), the format the host's
/// fixture runner reads, so native tests and fixtures share their inputs:
/// `testing::trap_json(include_str!("../fixtures/link-down.input.trap.json"))`.
///
/// `version` (`v1`, `v2c`, `v3`), `source` (`ip:port`), `agent_address`, `trap_oid` and
/// `varbinds` are required; `security_name` (null), `context_name` (""), `uptime` (0),
/// `is_inform` (false) and `v1` (null, else `{"enterprise", "agent_addr", "generic_trap",
/// "specific_trap"}`) are optional. A varbind is `{"oid", "type", "value"}`: `integer`,
/// `counter32`, `gauge32`, `timeticks`, `counter64` take a number; `octet-string` a text
/// `value` or `"hex": "00ff"` instead; `opaque` a `hex`; `object-id`, `ip-address` a text
/// `value`; `null`, `no-such-object`, `no-such-instance`, `end-of-mib-view` nothing.
///
/// Panics with the field at fault when the JSON does not fit: it is meant for tests. The host's
/// fixture runner reads it with the same code (`opsconductor-model`), natively only.
#[cfg(not(target_arch = "wasm32"))]
pub fn trap_json(json: &str) -> SnmpTrap {
    let trap = opsconductor_model::fixture::trap_from_json(json.as_bytes())
        .unwrap_or_else(|e| panic!("trap fixture: {e}"));
    model::trap(trap)
}

/// The poll result in a fixture file (`fixtures/<name>.input.poll.json`), the format the host's
/// fixture runner reads, so native tests and fixtures share their inputs:
/// `testing::poll_json(include_str!("../fixtures/down.input.poll.json"))`.
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
/// `target` needs `id`, `name` and `address`; its `config` is an object (default `{}`) and
/// reaches the addon as JSON text. `started_at` is RFC 3339 text or milliseconds since the
/// epoch. Each fetch has its `name` and exactly one of `snmp` (varbinds as in [`trap_json`]),
/// `http` (`status`; `headers` an object, default none; a body as `json`, any JSON value sent
/// as its text, or `body`, text; default empty), `ssh` (`command`; `exit_status` 0, `stdout`
/// and `stderr` "" by default) or `error` (why the host could not fetch it).
///
/// Panics with the field at fault when the JSON does not fit: it is meant for tests. The host's
/// fixture runner reads it with the same code (`opsconductor-model`), natively only.
#[cfg(not(target_arch = "wasm32"))]
pub fn poll_json(json: &str) -> crate::PollResult {
    let poll = opsconductor_model::fixture::poll_from_json(json.as_bytes())
        .unwrap_or_else(|e| panic!("poll fixture: {e}"));
    model::poll(poll)
}

/// Everything logged on this thread since the last call, oldest first (native builds only).
#[cfg(not(target_arch = "wasm32"))]
pub fn take_logs() -> Vec<(crate::LogLevel, String)> {
    crate::host::imp::LOGS.with(|logs| std::mem::take(&mut *logs.borrow_mut()))
}

/// Clears this thread's logs and state, for a test that needs a clean host (native builds only).
#[cfg(not(target_arch = "wasm32"))]
pub fn reset() {
    crate::host::imp::LOGS.with(|logs| logs.borrow_mut().clear());
    crate::host::imp::STATE.with(|state| state.borrow_mut().clear());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FetchedData, HttpResponse, SshOutput};

    const FULL: &str = r#"{"version": "v1", "source": "192.0.2.10:50123", "agent_address": "192.0.2.10",
        "security_name": null, "context_name": "", "trap_oid": "1.3.6.1.6.3.1.1.5.3", "uptime": 7,
        "is_inform": false,
        "v1": {"enterprise": "1.3.6.1.4.1.9", "agent_addr": "192.0.2.10", "generic_trap": 2, "specific_trap": 0},
        "varbinds": [
            {"oid": "1.1", "type": "integer", "value": -3},
            {"oid": "1.2", "type": "octet-string", "value": "ge-0/0/3"},
            {"oid": "1.3", "type": "octet-string", "hex": "00:1A ff"},
            {"oid": "1.4", "type": "null"},
            {"oid": "1.5", "type": "object-id", "value": "1.3.6"},
            {"oid": "1.6", "type": "ip-address", "value": "192.0.2.1"},
            {"oid": "1.7", "type": "counter32", "value": 4294967295},
            {"oid": "1.8", "type": "gauge32", "value": 8},
            {"oid": "1.9", "type": "timeticks", "value": 9},
            {"oid": "1.10", "type": "opaque", "hex": "9f78"},
            {"oid": "1.11", "type": "counter64", "value": 18446744073709551615},
            {"oid": "1.12", "type": "no-such-object"},
            {"oid": "1.13", "type": "no-such-instance"},
            {"oid": "1.14", "type": "end-of-mib-view"}
        ]}"#;

    #[test]
    fn trap_json_reads_every_type() {
        let t = trap_json(FULL);
        assert_eq!(t.version, SnmpVersion::V1);
        assert_eq!(t.uptime, 7);
        assert_eq!(t.v1.as_ref().map(|h| h.generic_trap), Some(2));
        let values: Vec<SnmpValue> = t.varbinds.into_iter().map(|vb| vb.value).collect();
        assert_eq!(
            values,
            vec![
                SnmpValue::Integer(-3),
                octets("ge-0/0/3"),
                SnmpValue::OctetString(vec![0, 0x1a, 0xff]),
                SnmpValue::Null,
                SnmpValue::ObjectId("1.3.6".into()),
                SnmpValue::IpAddress("192.0.2.1".into()),
                SnmpValue::Counter32(u32::MAX),
                SnmpValue::Gauge32(8),
                SnmpValue::Timeticks(9),
                SnmpValue::Opaque(vec![0x9f, 0x78]),
                SnmpValue::Counter64(u64::MAX),
                SnmpValue::NoSuchObject,
                SnmpValue::NoSuchInstance,
                SnmpValue::EndOfMibView,
            ]
        );
        // Optional fields default.
        let t = trap_json(
            r#"{"version": "v2c", "source": "s", "agent_address": "a", "trap_oid": "1.3", "varbinds": []}"#,
        );
        assert_eq!(
            (t.uptime, t.is_inform, t.v1, t.security_name),
            (0, false, None, None)
        );
    }

    const POLL: &str = r#"{"target": {"id": "7", "name": "core-sw-1", "address": "192.0.2.10",
            "config": {"path": "/health"}},
        "started_at": "2026-01-02T03:04:05Z",
        "fetched": [
            {"name": "oper", "snmp": [{"oid": "1.3.6.1.2.1.2.2.1.8.1", "type": "integer", "value": 1}]},
            {"name": "status", "http": {"status": 503, "headers": {"content-type": "application/json"},
                                        "json": {"status": "down"}}},
            {"name": "text", "http": {"status": 200, "body": "ok"}},
            {"name": "df", "ssh": {"command": "df -P", "exit_status": 1, "stderr": "df: /x"}},
            {"name": "gone", "error": "unreachable: timed out"}
        ]}"#;

    #[test]
    fn poll_json_reads_every_kind_of_fetch() {
        let p = poll_json(POLL);
        assert_eq!(
            (
                p.target.id.as_str(),
                p.target.name.as_str(),
                p.target.address.as_str()
            ),
            ("7", "core-sw-1", "192.0.2.10")
        );
        assert_eq!(p.target.config, r#"{"path":"/health"}"#);
        assert_eq!(p.started_at, 1_767_323_045_000);
        let outcomes: Vec<_> = p.fetched.into_iter().map(|f| (f.name, f.outcome)).collect();
        assert_eq!(
            outcomes,
            vec![
                (
                    "oper".to_owned(),
                    Ok(FetchedData::Snmp(vec![Varbind {
                        oid: "1.3.6.1.2.1.2.2.1.8.1".into(),
                        value: SnmpValue::Integer(1)
                    }]))
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
        let p = poll_json(
            r#"{"target": {"id": "1", "name": "", "address": "a"}, "started_at": 5, "fetched": []}"#,
        );
        assert_eq!((p.started_at, p.target.config.as_str()), (5, "{}"));
    }

    /// The format's errors are the host's (opsconductor-model's tests cover each); here only
    /// that they reach the test's panic, naming the field.
    #[test]
    fn bad_fixture_json_says_what_is_wrong() {
        let cases = [
            (
                POLL.replace(r#""value": 1}"#, r#""value": "1"}"#),
                "poll fixture: fetched[0].snmp[0]: invalid type",
            ),
            (
                POLL.replace("2026-01-02T03:04:05Z", "yesterday"),
                "poll fixture: started_at: `yesterday`",
            ),
        ];
        for (json, want) in cases {
            let err = std::panic::catch_unwind(|| poll_json(&json)).unwrap_err();
            let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(message.starts_with(want), "want {want:?}, got {message:?}");
        }
        let trap = FULL.replace(r#""value": -3"#, r#""value": 2147483648"#);
        let err = std::panic::catch_unwind(|| trap_json(&trap)).unwrap_err();
        let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            message.starts_with("trap fixture: varbinds[0]: invalid value"),
            "{message}"
        );
    }
}
