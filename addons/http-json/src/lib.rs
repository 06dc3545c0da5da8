//! A JSON health or status endpoint, polled over HTTP: the answer's status code, a status field
//! and numeric thresholds become alerts that clear themselves when the next poll is fine.
//!
//! The manifest fetches `GET /{path}` from the target (the target config's `path`, with or
//! without its leading `/`: the host does not let `//` turn a path into a host). Each poll reports, for the target as device:
//!
//! - `httpStatus` (major) when the status code is not 2xx, field `status`; cleared by a 2xx;
//! - `invalidResponse` (warning) when a 2xx body is not JSON or has no status field, field
//!   `reason`; cleared by a 2xx body that has one. Only 2xx answers are judged: an error page
//!   need not be JSON;
//! - `statusNotOk` (major) when the status field is not one of `ok_values`, field `value` (its
//!   first 64 characters: the value is never put in the title or message); cleared when it is;
//! - `thresholdExceeded` per threshold (identity `threshold`, severity from the threshold),
//!   fields `value`, `limit`, `pointer`; cleared when the value is back within its limits.
//!
//! The status field and thresholds are read from any JSON body that has the status field, a
//! non-2xx one included (Spring Boot answers `503 {"status": "DOWN"}`), so the reason shows
//! beside `httpStatus`. A threshold whose value is missing or not a number is left as it is
//! (and logged). A failed fetch (no answer) reports nothing: the host raises "target
//! unreachable" itself.
//!
//! Target config: `path` (required), `status_pointer` (JSON pointer, default `/status`),
//! `ok_values` (default `["ok", "up", "healthy", "pass"]`, compared case-insensitively with the
//! field's text, so numbers and booleans work too), `thresholds`: `[{"name", "pointer", "max",
//! "min", "severity"}]` (`max` and/or `min`; severity words as in `SEVERITY_WORDS`, default
//! `warning`). A bad config is `invalid-input` naming the key.

use opsconductor_addon_sdk::prelude::*;
use opsconductor_addon_sdk::serde::Deserialize;

#[derive(Default)]
struct HttpJson;

register_addon!(HttpJson);

const DEFAULT_OK: [&str; 4] = ["ok", "up", "healthy", "pass"];

/// How much of the status value an alert keeps: enough for any status word.
const MAX_VALUE_CHARS: usize = 64;

/// `text` cut to `max` characters, with `…` when it was longer.
fn capped(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[derive(Deserialize)]
#[serde(crate = "opsconductor_addon_sdk::serde", deny_unknown_fields)]
struct Threshold {
    name: String,
    pointer: String,
    max: Option<f64>,
    min: Option<f64>,
    severity: Option<String>,
}

struct Config {
    path: String,
    status_pointer: String,
    ok_values: Vec<String>,
    thresholds: Vec<(Threshold, Severity)>,
}

impl Addon for HttpJson {
    fn parse_poll(&self, poll: &PollResult) -> Result<Vec<Alert>> {
        let config = config(&poll.config()?)?;
        let Some(response) = poll.http("status")? else {
            return Ok(Vec::new());
        };
        let new = |alert_type: &str, title: String, clears: bool| {
            Alert::new(alert_type, title)
                .target(&poll.target)
                .clears(clears)
                .occurred_at_millis(poll.started_at)
        };
        let (name, path) = (poll.target.label(), &config.path);
        let mut alerts = vec![
            new(
                "httpStatus",
                format!("{name}: HTTP {} from /{path}", response.status),
                response.is_success(),
            )
            .severity((!response.is_success()).then_some(Severity::Major))
            .message(format!("GET /{path} answered HTTP {}", response.status))
            .field("status", response.status.to_string()),
        ];

        let body = response.json();
        let status = body
            .as_ref()
            .ok()
            .and_then(|b| ptr_text(b, &config.status_pointer));
        if response.is_success() {
            let reason = match (&body, &status) {
                (Err(e), _) => Some(e.message.clone()),
                (Ok(_), None) => Some(format!("no status at {}", config.status_pointer)),
                (Ok(_), Some(_)) => None,
            };
            let title = match &reason {
                Some(_) => format!("{name}: invalid response from /{path}"),
                None => format!("{name}: valid response from /{path}"),
            };
            alerts.push(
                new("invalidResponse", title, reason.is_none())
                    .severity(reason.is_some().then_some(Severity::Warning))
                    .message(reason.clone().unwrap_or_default())
                    .field_opt("reason", reason),
            );
        }
        let (Ok(body), Some(status)) = (body, status) else {
            return Ok(alerts);
        };

        let ok = config
            .ok_values
            .iter()
            .any(|v| v.eq_ignore_ascii_case(&status));
        // The value is whatever the endpoint put at the pointer, which the person who set up the
        // target chose: it goes into a field, cut short, and never into the title or message
        // that every viewer reads in lists and notifications.
        let title = if ok {
            format!("{name}: status ok")
        } else {
            format!("{name}: status not ok")
        };
        alerts.push(
            new("statusNotOk", title, ok)
                .severity((!ok).then_some(Severity::Major))
                .message(format!(
                    "{} is not one of: {} (see field `value`)",
                    config.status_pointer,
                    config.ok_values.join(", ")
                ))
                .field("value", capped(&status, MAX_VALUE_CHARS)),
        );
        for (t, severity) in &config.thresholds {
            let Some(value) = ptr_f64(&body, &t.pointer) else {
                host::warn(&format!(
                    "threshold `{}`: no number at {}",
                    t.name, t.pointer
                ));
                continue;
            };
            let broken = match (t.max, t.min) {
                (Some(max), _) if value > max => Some(("above", max)),
                (_, Some(min)) if value < min => Some(("below", min)),
                _ => None,
            };
            let (title, limit) = match broken {
                Some((side, limit)) => {
                    (format!("{name}: {} {value} {side} {limit}", t.name), limit)
                }
                None => (
                    format!("{name}: {} {value} within limits", t.name),
                    t.max.or(t.min).unwrap_or_default(),
                ),
            };
            let limits = [("min", t.min), ("max", t.max)]
                .iter()
                .filter_map(|(k, v)| Some(format!("{k} {}", (*v)?)))
                .collect::<Vec<_>>()
                .join(", ");
            alerts.push(
                new("thresholdExceeded", title, broken.is_none())
                    .message(format!("{} at {} is {value} ({limits})", t.name, t.pointer))
                    .identity("threshold", &t.name)
                    .severity(broken.map(|_| *severity))
                    .field("value", value.to_string())
                    .field("limit", limit.to_string())
                    .field("pointer", &t.pointer),
            );
        }
        Ok(alerts)
    }
}

/// The target config, checked; errors name the key.
fn config(c: &TargetConfig) -> Result<Config> {
    let bad = |key: &str, message: &str| AddonError::bad_config(key, message);
    // Kept without its leading `/`, as `{path}` in the manifest's `/{path}`: the host drops
    // the doubled slash of a value that has one, so both spellings fetch the same path.
    let path: String = c.req("path")?;
    let path = path.trim().trim_start_matches('/').to_owned();
    let status_pointer = c.get_or("status_pointer", "/status".to_owned())?;
    if !(status_pointer.is_empty() || status_pointer.starts_with('/')) {
        return Err(bad(
            "status_pointer",
            "must be a JSON pointer such as `/status`",
        ));
    }
    let ok_values = c.get_or("ok_values", DEFAULT_OK.map(str::to_owned).to_vec())?;
    let mut thresholds = Vec::new();
    for (i, t) in c
        .get_or::<Vec<Threshold>>("thresholds", Vec::new())?
        .into_iter()
        .enumerate()
    {
        let key = |field: &str| format!("thresholds[{i}].{field}");
        if t.name.trim().is_empty() {
            return Err(bad(&key("name"), "must not be blank"));
        }
        if !t.pointer.starts_with('/') {
            return Err(bad(
                &key("pointer"),
                "must be a JSON pointer such as `/queue/depth`",
            ));
        }
        if t.max.is_none() && t.min.is_none() {
            return Err(bad(&key("max"), "a threshold needs `max`, `min` or both"));
        }
        let severity = match t.severity.as_deref() {
            None => Severity::Warning,
            Some(word) => SEVERITY_WORDS
                .get(word)
                .ok_or_else(|| bad(&key("severity"), &format!("`{word}` is not a severity")))?,
        };
        thresholds.push((t, severity));
    }
    Ok(Config {
        path,
        status_pointer,
        ok_values,
        thresholds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsconductor_addon_sdk::{ErrorKind, json, testing};

    fn parse(json: &str) -> Result<Vec<Alert>> {
        HttpJson.parse_poll(&testing::poll_json(json))
    }

    /// (alert type, identity value, clears, first field) of each alert.
    fn summary(alerts: &[Alert]) -> Vec<(&str, &str, bool, &str)> {
        alerts
            .iter()
            .map(|a| {
                let id = a.identity.first().map_or("", |(_, v)| v.as_str());
                let field = a.fields.first().map_or("", |(_, v)| v.as_str());
                (a.alert_type.as_str(), id, a.clears, field)
            })
            .collect()
    }

    #[test]
    fn fixture_healthy_clears_everything() {
        let alerts = parse(include_str!("../fixtures/healthy.input.poll.json")).unwrap();
        assert_eq!(
            summary(&alerts),
            [
                ("httpStatus", "", true, "200"),
                ("invalidResponse", "", true, ""),
                ("statusNotOk", "", true, "UP"),
                ("thresholdExceeded", "queueDepth", true, "12"),
                ("thresholdExceeded", "freeWorkers", true, "6"),
            ]
        );
        assert_eq!(alerts[0].device_name.as_deref(), Some("billing-api"));
        assert_eq!(alerts[0].device_ip.as_deref(), Some("198.51.100.30"));
    }

    #[test]
    fn fixture_degraded_raises_status_and_thresholds() {
        let alerts = parse(include_str!("../fixtures/degraded.input.poll.json")).unwrap();
        assert_eq!(
            summary(&alerts),
            [
                ("httpStatus", "", true, "200"),
                ("invalidResponse", "", true, ""),
                ("statusNotOk", "", false, "degraded"),
                ("thresholdExceeded", "queueDepth", false, "250"),
                ("thresholdExceeded", "freeWorkers", false, "0"),
            ]
        );
        assert_eq!(alerts[2].severity, Some(Severity::Major));
        let queue = &alerts[3];
        assert_eq!(queue.title, "billing-api: queueDepth 250 above 100");
        assert_eq!(queue.message, "queueDepth at /queue/depth is 250 (max 100)");
        assert_eq!(queue.severity, Some(Severity::Critical));
        assert_eq!(queue.fields[1], ("limit".into(), "100".into()));
        assert_eq!(alerts[4].title, "billing-api: freeWorkers 0 below 1");
        assert_eq!(alerts[4].severity, Some(Severity::Warning));
    }

    /// Whoever configures a target chooses the pointer, so the value may be anything the
    /// endpoint holds (a token from a metadata service): it stays out of title and message and
    /// is cut short in its field.
    #[test]
    fn the_status_value_never_reaches_title_or_message() {
        let secret = "AKIA-".to_owned() + &"s".repeat(200);
        let input = json!({
            "target": {"id": "1", "name": "meta", "address": "http://198.51.100.1", "config": {"path": "latest", "status_pointer": "/Token"}},
            "started_at": "2026-01-02T03:04:05Z",
            "fetched": [{"name": "status", "http": {"status": 200, "headers": {}, "json": {"Token": secret}}}]
        });
        let alerts = parse(&input.to_string()).unwrap();
        let status = alerts
            .iter()
            .find(|a| a.alert_type == "statusNotOk")
            .unwrap();
        assert_eq!(status.title, "meta: status not ok");
        assert!(!status.message.contains("AKIA"), "{}", status.message);
        let value = &status.fields[0].1;
        assert_eq!(value.chars().count(), MAX_VALUE_CHARS + 1, "{value}");
        assert!(value.ends_with('…'), "{value}");
    }

    #[test]
    fn fixture_http_error_reads_the_status_it_can() {
        let alerts = parse(include_str!("../fixtures/http-503.input.poll.json")).unwrap();
        assert_eq!(
            summary(&alerts),
            [
                ("httpStatus", "", false, "503"),
                ("statusNotOk", "", false, "DOWN"),
            ]
        );
        assert_eq!(
            alerts[0].title,
            "billing-api: HTTP 503 from /actuator/health"
        );
        let alerts = parse(include_str!("../fixtures/http-502-html.input.poll.json")).unwrap();
        assert_eq!(summary(&alerts), [("httpStatus", "", false, "502")]);
    }

    #[test]
    fn fixture_not_json_is_an_invalid_response() {
        let alerts = parse(include_str!("../fixtures/not-json.input.poll.json")).unwrap();
        assert_eq!(alerts.len(), 2);
        let a = &alerts[1];
        assert_eq!(
            (a.alert_type.as_str(), a.clears),
            ("invalidResponse", false)
        );
        assert!(
            a.fields[0].1.starts_with("body is not valid JSON"),
            "{:?}",
            a.fields
        );
    }

    #[test]
    fn fixture_missing_status_is_an_invalid_response() {
        let alerts = parse(include_str!("../fixtures/no-status.input.poll.json")).unwrap();
        assert_eq!(
            summary(&alerts),
            [
                ("httpStatus", "", true, "200"),
                ("invalidResponse", "", false, "no status at /health/state"),
            ]
        );
    }

    #[test]
    fn fixture_unreachable_reports_nothing() {
        let alerts = parse(include_str!("../fixtures/unreachable.input.poll.json")).unwrap();
        assert!(alerts.is_empty());
    }

    #[test]
    fn fixture_bad_config_names_the_key() {
        let err = parse(include_str!("../fixtures/bad-threshold.input.poll.json")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert_eq!(
            err.message,
            "target config `thresholds[1].severity`: `loud` is not a severity"
        );
    }

    #[test]
    fn every_bad_config_names_its_key() {
        let cases = [
            (r#"{}"#, "target config `path` is required"),
            (
                r#"{"path": 3}"#,
                "target config `path`: invalid type: integer `3`",
            ),
            (
                r#"{"path": "h", "status_pointer": "status"}"#,
                "target config `status_pointer`: must be",
            ),
            (
                r#"{"path": "h", "ok_values": "ok"}"#,
                "target config `ok_values`: invalid type",
            ),
            (
                r#"{"path": "h", "thresholds": {}}"#,
                "target config `thresholds`: invalid type",
            ),
            (
                r#"{"path": "h", "thresholds": [{"name": "q", "pointer": "/q"}]}"#,
                "target config `thresholds[0].max`: a threshold needs",
            ),
            (
                r#"{"path": "h", "thresholds": [{"name": "q", "pointer": "q", "max": 1}]}"#,
                "target config `thresholds[0].pointer`: must be",
            ),
            (
                r#"{"path": "h", "thresholds": [{"name": "q", "pointer": "/q", "max": 1, "limit": 2}]}"#,
                "target config `thresholds`: unknown field `limit`",
            ),
        ];
        for (config, want) in cases {
            let err = config_of(config)
                .err()
                .map(|e| e.message)
                .unwrap_or_default();
            assert!(err.starts_with(want), "{config}: {err}");
        }
    }

    fn config_of(json: &str) -> Result<Config> {
        config(&TargetConfig::parse(json)?)
    }

    #[test]
    fn path_with_or_without_its_slash() {
        for path in ["health", "/health", " /health "] {
            let c = config_of(&format!(r#"{{"path": "{path}"}}"#)).unwrap();
            assert_eq!(c.path, "health");
        }
    }

    #[test]
    fn ok_values_and_numbers() {
        let c = config_of(r#"{"path": "h", "ok_values": ["true", 1]}"#);
        assert!(c.is_err(), "ok_values must be strings");
        let body = json!({"a": 3, "b": " 4.5 ", "c": "x", "d": null});
        let found: Vec<_> = ["/a", "/b", "/c", "/d", "/e"]
            .iter()
            .map(|p| ptr_f64(&body, p))
            .collect();
        assert_eq!(found, [Some(3.0), Some(4.5), None, None, None]);
    }

    #[test]
    fn every_fixture_passes_natively() {
        // The host's fixture runner, natively: parse, manifest rules, expectation.
        testing::check_fixtures(&HttpJson, env!("CARGO_MANIFEST_DIR"));
    }
}
