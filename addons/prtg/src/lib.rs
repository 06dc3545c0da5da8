//! PRTG Network Monitor "Execute HTTP Action" notifications: one sensor state change per request.
//!
//! PRTG has no fixed webhook format: the operator writes the request body in the notification
//! template, with placeholders PRTG fills in (README.md has the template to paste). This addon
//! reads that body as a JSON object, or as form fields (`device=%device&status=%status&...`,
//! PRTG's default content type, which other integrations use), and maps it so:
//!
//! - **status** (`%status`) decides the event, see [`STATES`]: `Down`, `Warning`, `Unusual` and
//!   `Unknown` raise `sensorDown`/`sensorWarning`/`sensorUnusual`/`sensorUnknown`; `Up` raises
//!   `sensorUp`, which the manifest makes clear all four; `<state> ended (now: <state>)` clears
//!   the state that ended; `<state> (was: <state>)` is the first state; `Paused ...` reports
//!   nothing (the operator stopped monitoring on purpose);
//! - **identity** `sensorid` (`%sensorid`), else the sensor name, so one sensor is one alert;
//! - **device** `host` (`%host`): an IP address becomes device-ip (with `%device` as the name),
//!   a DNS name becomes device-name; without `host`, the PRTG device name;
//! - **title** `<sensor> on <device> is <status>`; **message** `%message`, else `%down`;
//! - **fields** the other placeholders the template sends. No occurred-at: `%datetime` is in the
//!   PRTG user's local time and format, with no zone, so the host's receipt time is more exact.

use opsconductor_addon_sdk::prelude::*;
use opsconductor_addon_sdk::serde_json;

#[derive(Default)]
struct Prtg;

register_addon!(Prtg);

/// What a PRTG sensor status means here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A problem: raise an alert of this type and severity.
    Problem(&'static str, Severity),
    /// The sensor is up: whatever was wrong with it is over.
    Up,
    /// Monitoring paused on purpose: not a problem, and not proof that one ended either.
    Paused,
}

/// PRTG's sensor states (as `%status` spells them) and what they raise. Acknowledged and
/// partial downs are still downs of the same sensor, so they share `sensorDown` and dedupe
/// into one alert; only the severity differs.
const STATES: Mapping<State> = Mapping::new(&[
    ("Up", State::Up),
    ("Down", State::Problem("sensorDown", Severity::Critical)),
    (
        "Down (Acknowledged)",
        State::Problem("sensorDown", Severity::Critical),
    ),
    (
        "Down (Partial)",
        State::Problem("sensorDown", Severity::Major),
    ),
    (
        "Warning",
        State::Problem("sensorWarning", Severity::Warning),
    ),
    ("Unusual", State::Problem("sensorUnusual", Severity::Minor)),
    ("Unknown", State::Problem("sensorUnknown", Severity::Minor)),
    ("Paused", State::Paused),
])
.ignore_case();

impl Addon for Prtg {
    fn parse_webhook(&self, req: &WebhookRequest) -> Result<Vec<Alert>> {
        let n = notification(req)?;
        let status = get(&n, &["status"])
            .ok_or_else(|| AddonError::invalid_input("missing string at /status"))?;

        let (id_name, id_value) = match (get(&n, &["sensorid", "id"]), get(&n, &["sensor", "name"]))
        {
            (Some(id), _) => ("sensorid", id),
            (None, Some(name)) => ("sensor", name),
            (None, None) => {
                return Err(AddonError::invalid_input(
                    "missing string at /sensorid (and no /sensor name to fall back on)",
                ));
            }
        };
        let device = get(&n, &["device", "server"]);
        let host = get(&n, &["host"]);
        let Some(device_label) = device.as_deref().or(host.as_deref()) else {
            return Err(AddonError::invalid_input(
                "missing string at /host (and no /device name to fall back on)",
            ));
        };
        let sensor_label = get(&n, &["sensor", "name"]).unwrap_or_else(|| id_value.clone());

        let alert = |alert_type: &str| {
            let mut a = Alert::new(
                alert_type,
                format!("{sensor_label} on {device_label} is {status}"),
            )
            .device(host.as_deref().unwrap_or(""));
            if a.device_name.is_none() {
                a = a.device_name(device_label);
            }
            a.message(
                get(&n, &["message", "lastmessage"])
                    .or(get(&n, &["down"]))
                    .unwrap_or_default(),
            )
            .identity(id_name, id_value.as_str())
            .field_opt("device", device.as_deref())
            .field_opt("sensor", get(&n, &["sensor", "name"]))
            .field_opt("group", get(&n, &["group"]))
            .field_opt("probe", get(&n, &["probe"]))
            .field("status", status.as_str())
            .field_opt("down", get(&n, &["down"]))
            .field_opt("lastvalue", get(&n, &["lastvalue"]))
            .field_opt("priority", get(&n, &["priority", "prio"]))
            .field_opt("datetime", get(&n, &["datetime"]))
            .field_opt("linksensor", get(&n, &["linksensor"]))
            .field_opt("linkdevice", get(&n, &["linkdevice"]))
        };

        // "Down ended (now: Up)": the state named first is over, so clear exactly that. The new
        // state gets a notification of its own if a trigger in PRTG asks for one.
        let ended = regex!(r"(?i)^(?P<was>.+?)\s+ended\s*\(now:\s*(?P<now>.+)\)$");
        if let Some(State::Problem(alert_type, _)) = capture(ended, &status, "was").and_then(state)
        {
            return Ok(vec![alert(alert_type).clears(true)]);
        }
        // "Up (was: Down)", or the "now" of an ending that cleared nothing: the current state.
        let current = capture(ended, &status, "now")
            .or(capture(
                regex!(r"(?i)^(?P<now>.+?)\s*\(was:.*\)$"),
                &status,
                "now",
            ))
            .unwrap_or(&status);
        match state(current) {
            Some(State::Problem(alert_type, severity)) => {
                Ok(vec![alert(alert_type).severity(severity)])
            }
            Some(State::Up) => Ok(vec![alert("sensorUp").clears(true)]),
            Some(State::Paused) => Ok(Vec::new()),
            None => Err(AddonError::unsupported(format!(
                "unknown PRTG sensor status `{status}`"
            ))),
        }
    }
}

/// The state a status word names. Paused comes with a reason PRTG words many ways
/// (`Paused (paused by user)`, `Paused (paused by schedule)`, ...), so any `Paused...` is paused.
fn state(word: &str) -> Option<State> {
    STATES.get(word).or_else(|| {
        let w = word.trim();
        w.get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("paused"))
            .then_some(State::Paused)
    })
}

/// The request body as a JSON object: parsed JSON, or form fields turned into one.
fn notification(req: &WebhookRequest) -> Result<Value> {
    let text = req.body_text()?;
    if !text.trim_start().starts_with('{') {
        let fields = req.form()?.into_iter().map(|(k, v)| (k, Value::String(v)));
        return Ok(Value::Object(fields.collect()));
    }
    // PRTG substitutes placeholders without JSON escaping, and Windows disk sensors are named
    // `Disk Free: C:\ ...`: retry with stray backslashes escaped before giving up. Valid JSON
    // never reaches the retry, so it is never altered.
    serde_json::from_str(text)
        .or_else(|e| serde_json::from_str(&escape_stray_backslashes(text)).map_err(|_| e))
        .map_err(|e| AddonError::invalid_input(format!("body is not valid JSON: {e}")))
}

/// Doubles every backslash that does not start a JSON escape sequence.
fn escape_stray_backslashes(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '\\' {
            match chars.peek() {
                Some('"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't' | 'u') => {
                    out.extend(chars.next());
                }
                _ => out.push('\\'),
            }
        }
    }
    out
}

/// The first of `keys` with a real value. Numbers count (`"sensorid": %sensorid` without
/// quotes); a placeholder PRTG left unreplaced (`%sensorid` on a version without it) does not.
fn get(n: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .filter_map(|k| ptr_text(n, &format!("/{k}")))
        .find(|v| !is_placeholder(v))
}

fn is_placeholder(v: &str) -> bool {
    v.len() > 1 && v.starts_with('%') && v[1..].chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsconductor_addon_sdk::{ErrorKind, testing};

    fn parse(body: &str) -> Result<Vec<Alert>> {
        Prtg.parse_webhook(&testing::webhook("prtg", body))
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// (alert type, clears, severity) of one alert, for compact assertions.
    type Kind<'a> = (&'a str, bool, Option<Severity>);

    fn kinds(alerts: &[Alert]) -> Vec<Kind<'_>> {
        alerts
            .iter()
            .map(|a| (a.alert_type.as_str(), a.clears, a.severity))
            .collect()
    }

    #[test]
    fn fixture_down() {
        let alerts = parse(include_str!("../fixtures/down.input.json")).unwrap();
        assert_eq!(
            alerts,
            vec![Alert {
                alert_type: "sensorDown".into(),
                device_ip: Some("10.1.1.1".into()),
                device_name: Some("core-sw-01".into()),
                title: "Ping on core-sw-01 is Down".into(),
                message: "Request timed out (ICMP error # 11010)".into(),
                severity: Some(Severity::Critical),
                clears: false,
                identity: pairs(&[("sensorid", "2045")]),
                fields: pairs(&[
                    ("device", "core-sw-01"),
                    ("sensor", "Ping"),
                    ("group", "Core Network"),
                    ("probe", "Local Probe"),
                    ("status", "Down"),
                    ("down", "Down since 14.05.2024 11:31:07"),
                    ("lastvalue", "No data"),
                    ("priority", "*****"),
                    ("datetime", "14.05.2024 11:32:07"),
                    ("linksensor", "https://prtg.example.net/sensor.htm?id=2045"),
                    ("linkdevice", "https://prtg.example.net/device.htm?id=2044"),
                ]),
                occurred_at: None,
            }]
        );
    }

    #[test]
    fn fixture_down_ended_clears_the_down_alert_of_the_same_sensor() {
        let down = parse(include_str!("../fixtures/down.input.json")).unwrap();
        let ended = parse(include_str!("../fixtures/down-ended.input.json")).unwrap();
        assert_eq!(kinds(&ended), vec![("sensorDown", true, None)]);
        assert_eq!(ended[0].identity, down[0].identity);
        assert_eq!(ended[0].device_ip, down[0].device_ip);
    }

    #[test]
    fn fixture_up_is_one_sensor_up_event() {
        let alerts = parse(include_str!("../fixtures/up.input.json")).unwrap();
        assert_eq!(kinds(&alerts), vec![("sensorUp", true, None)]);
        assert_eq!(alerts[0].identity, pairs(&[("sensorid", "2045")]));
    }

    #[test]
    fn fixture_warning_on_a_dns_host_with_a_numeric_sensor_id() {
        let alerts = parse(include_str!("../fixtures/warning-dns-host.input.json")).unwrap();
        assert_eq!(
            kinds(&alerts),
            vec![("sensorWarning", false, Some(Severity::Warning))]
        );
        let a = &alerts[0];
        assert_eq!(a.device_ip, None);
        assert_eq!(
            a.device_name.as_deref(),
            Some("fileserver01.corp.example.com")
        );
        assert_eq!(a.identity, pairs(&[("sensorid", "3120")]));
        assert_eq!(
            a.title,
            r"Disk Free: C:\ Label: Serial Number 2c4b1a7e on FILESERVER01 is Warning"
        );
    }

    #[test]
    fn fixture_paused_reports_nothing() {
        assert_eq!(
            parse(include_str!("../fixtures/paused.input.json")).unwrap(),
            vec![]
        );
    }

    #[test]
    fn fixture_missing_status_is_invalid_input() {
        let err = parse(include_str!("../fixtures/missing-status.input.json")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert_eq!(err.message, "missing string at /status");
    }

    #[test]
    fn every_fixture_passes_natively() {
        // The host's fixture runner, natively: parse, manifest rules, expectation.
        testing::check_fixtures(&Prtg, env!("CARGO_MANIFEST_DIR"));
    }

    #[test]
    fn status_words() {
        let body = |status: &str| {
            format!(r#"{{"sensorid":"1","sensor":"Ping","host":"192.0.2.1","status":"{status}"}}"#)
        };
        let critical = Some(Severity::Critical);
        let cases: &[(&str, Vec<Kind>)] = &[
            ("Down", vec![("sensorDown", false, critical)]),
            ("down (acknowledged)", vec![("sensorDown", false, critical)]),
            (
                "Down (Partial)",
                vec![("sensorDown", false, Some(Severity::Major))],
            ),
            (
                "Unusual",
                vec![("sensorUnusual", false, Some(Severity::Minor))],
            ),
            (
                "Unknown",
                vec![("sensorUnknown", false, Some(Severity::Minor))],
            ),
            ("Up", vec![("sensorUp", true, None)]),
            ("Up (was: Down)", vec![("sensorUp", true, None)]),
            (
                "Warning (was: Up)",
                vec![("sensorWarning", false, Some(Severity::Warning))],
            ),
            (
                "Warning ended (now: Up)",
                vec![("sensorWarning", true, None)],
            ),
            (
                "Down (Partial) ended (now: Down)",
                vec![("sensorDown", true, None)],
            ),
            // Nothing of the sensor was open while paused: what matters is the state now.
            (
                "Paused ended (now: Down)",
                vec![("sensorDown", false, critical)],
            ),
            ("Paused (paused by schedule)", vec![]),
        ];
        for (status, want) in cases {
            let alerts = parse(&body(status)).unwrap();
            assert_eq!(&kinds(&alerts), want, "status {status:?}");
        }
        let err = parse(&body("Collecting")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unsupported);
        assert_eq!(err.message, "unknown PRTG sensor status `Collecting`");
    }

    #[test]
    fn form_bodies_work_like_json_ones() {
        // The shape of the widely used `name=%placeholder&...` payloads, with PRTG's aliases.
        let alerts = parse(
            "device=core-sw-01&host=10.1.1.1&name=Ping&id=2045&status=Down\
             &lastmessage=Request+timed+out&sitename=PRTG",
        )
        .unwrap();
        assert_eq!(
            kinds(&alerts),
            vec![("sensorDown", false, Some(Severity::Critical))]
        );
        assert_eq!(alerts[0].identity, pairs(&[("sensorid", "2045")]));
        assert_eq!(alerts[0].message, "Request timed out");
        assert_eq!(alerts[0].device_ip.as_deref(), Some("10.1.1.1"));
    }

    #[test]
    fn unescaped_windows_paths_are_repaired() {
        let alerts = parse(
            r#"{"sensorid":"7","sensor":"Disk Free: C:\ Label:","host":"192.0.2.9","status":"Down"}"#,
        )
        .unwrap();
        assert_eq!(
            alerts[0].fields[0],
            ("sensor".to_owned(), r"Disk Free: C:\ Label:".to_owned())
        );
        // Broken beyond repair: the error is the original one, pointing where parsing stopped.
        let err = parse(r#"{"status":"Down" "#).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(
            err.message.starts_with("body is not valid JSON"),
            "{}",
            err.message
        );
    }

    #[test]
    fn unreplaced_placeholders_count_as_missing() {
        let alerts = parse(
            r#"{"sensorid":"%sensorid","sensor":"Ping","device":"sw-2","host":"%host","status":"Warning"}"#,
        )
        .unwrap();
        assert_eq!(alerts[0].identity, pairs(&[("sensor", "Ping")]));
        assert_eq!(alerts[0].device_ip, None);
        assert_eq!(alerts[0].device_name.as_deref(), Some("sw-2"));

        let err = parse(r#"{"sensor":"Ping","status":"Down"}"#).unwrap_err();
        assert!(
            err.message.starts_with("missing string at /host"),
            "{}",
            err.message
        );
    }
}
