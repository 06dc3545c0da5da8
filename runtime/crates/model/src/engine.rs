//! The alert engine: pure rules that turn what an addon reported into actions on stored alerts,
//! and decide whether a silence suppresses an alert about to be raised.
//!
//! **Architecture Invariant:** nothing here awaits, touches the database or knows about WASM.
//! The engine decides (severity, category, fingerprint, raise or clear); the store carries the
//! decision out atomically, so dedupe holds however many writers race.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use chrono::{DateTime, TimeZone, Utc};
use sha2::{Digest, Sha256};

use crate::alert::{AlertAction, ClearAlert, NewAlert, ReportedAlert, Severity};
use crate::manifest::AlertSpec;
use crate::text::cut_to_bytes;

/// Limits on what one reported alert may carry. Text beyond them is truncated (an operator
/// would rather see a cut message than lose the alert); structure beyond them is refused.
pub const MAX_ALERT_TYPE_LEN: usize = 128;
pub const MAX_DEVICE_NAME_LEN: usize = 255;
pub const MAX_TITLE_LEN: usize = 256;
pub const MAX_MESSAGE_LEN: usize = 16 * 1024;
pub const MAX_FIELDS: usize = 128;
pub const MAX_FIELD_NAME_LEN: usize = 128;
pub const MAX_FIELD_VALUE_LEN: usize = 4 * 1024;

/// An addon's alert rules, prepared once when the addon is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRules {
    addon_id: String,
    default_severity: Severity,
    default_category: String,
    severity_map: HashMap<String, Severity>,
    category_map: HashMap<String, String>,
    clears: HashMap<String, Vec<String>>,
    fingerprint_fields: Vec<String>,
}

impl AlertRules {
    pub fn new(addon_id: &str, spec: &AlertSpec) -> AlertRules {
        AlertRules {
            addon_id: addon_id.to_owned(),
            default_severity: spec.default_severity,
            default_category: spec.default_category.clone(),
            severity_map: spec.severity_map.clone().into_iter().collect(),
            category_map: spec.category_map.clone().into_iter().collect(),
            clears: spec.clears.clone().into_iter().collect(),
            fingerprint_fields: spec.fingerprint_fields.clone(),
        }
    }

    pub fn addon_id(&self) -> &str {
        &self.addon_id
    }
}

/// Why a reported alert cannot be stored. The message is shown to the addon's author.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("alert-type must not be empty")]
    EmptyAlertType,
    #[error("alert-type is longer than {MAX_ALERT_TYPE_LEN} bytes")]
    AlertTypeTooLong,
    #[error("alert `{0}` has neither device-ip nor device-name")]
    NoDevice(String),
    #[error("alert `{alert_type}` has device-ip `{value}`, which is not an IP address")]
    BadDeviceIp { alert_type: String, value: String },
    #[error("alert `{0}` has more than {MAX_FIELDS} identity and extra fields")]
    TooManyFields(String),
    #[error("alert `{alert_type}` has an empty or over-long field name `{name}`")]
    BadFieldName { alert_type: String, name: String },
    #[error("alert `{alert_type}` has occurred-at {value}, which is not a valid time")]
    BadOccurredAt { alert_type: String, value: i64 },
}

/// Decides what one reported alert does: raise (open or count again) or clear one or more open
/// alerts. A clearing event never opens an alert of its own.
pub fn evaluate(
    rules: &AlertRules,
    reported: ReportedAlert,
    received_at: DateTime<Utc>,
) -> Result<Vec<AlertAction>, EngineError> {
    let alert_type = reported.alert_type.trim().to_owned();
    if alert_type.is_empty() {
        return Err(EngineError::EmptyAlertType);
    }
    if alert_type.len() > MAX_ALERT_TYPE_LEN {
        return Err(EngineError::AlertTypeTooLong);
    }
    let device_ip = normalise_ip(&alert_type, reported.device_ip)?;
    let device_name = reported
        .device_name
        .map(|n| cut_to_bytes(n.trim(), MAX_DEVICE_NAME_LEN))
        .filter(|n| !n.is_empty());
    let device_key = match (&device_ip, &device_name) {
        (Some(ip), _) => ip.clone(),
        (None, Some(name)) => name.to_lowercase(),
        (None, None) => return Err(EngineError::NoDevice(alert_type)),
    };

    if reported.identity.len() + reported.fields.len() > MAX_FIELDS {
        return Err(EngineError::TooManyFields(alert_type));
    }
    let mut identity: BTreeMap<String, String> = BTreeMap::new();
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in reported.identity {
        check_field_name(&alert_type, &name)?;
        let value = cut_to_bytes(&value, MAX_FIELD_VALUE_LEN);
        fields.insert(name.clone(), value.clone());
        identity.insert(name, value);
    }
    for (name, value) in reported.fields {
        check_field_name(&alert_type, &name)?;
        // Identity wins over an extra field of the same name: the fingerprint must describe
        // what is shown.
        fields
            .entry(name)
            .or_insert_with(|| cut_to_bytes(&value, MAX_FIELD_VALUE_LEN));
    }
    for name in &rules.fingerprint_fields {
        let value = fields.get(name).cloned().unwrap_or_default();
        identity.insert(name.clone(), value);
    }

    let cleared_types: Vec<String> = match rules.clears.get(&alert_type) {
        Some(targets) => targets.clone(),
        None if reported.clears => vec![alert_type.clone()],
        None => Vec::new(),
    };
    if !cleared_types.is_empty() {
        return Ok(cleared_types
            .into_iter()
            .map(|target| {
                AlertAction::Clear(ClearAlert {
                    addon_id: rules.addon_id.clone(),
                    fingerprint: fingerprint(&rules.addon_id, &target, &device_key, &identity),
                    alert_type: target,
                    cleared_by: alert_type.clone(),
                    received_at,
                })
            })
            .collect());
    }

    let occurred_at = match reported.occurred_at {
        None => received_at,
        Some(ms) => Utc
            .timestamp_millis_opt(ms)
            .single()
            .ok_or(EngineError::BadOccurredAt {
                alert_type: alert_type.clone(),
                value: ms,
            })?,
    };
    let severity = rules
        .severity_map
        .get(&alert_type)
        .copied()
        .or(reported.severity)
        .unwrap_or(rules.default_severity);
    let category = rules
        .category_map
        .get(&alert_type)
        .cloned()
        .unwrap_or_else(|| rules.default_category.clone());
    let title = match reported.title.trim() {
        "" => alert_type.clone(),
        t => cut_to_bytes(t, MAX_TITLE_LEN),
    };

    Ok(vec![AlertAction::Raise(NewAlert {
        addon_id: rules.addon_id.clone(),
        fingerprint: fingerprint(&rules.addon_id, &alert_type, &device_key, &identity),
        alert_type,
        device_ip,
        device_name,
        severity,
        category,
        title,
        message: cut_to_bytes(&reported.message, MAX_MESSAGE_LEN),
        fields,
        occurred_at,
        received_at,
    })])
}

/// The identity of one problem: SHA-256 over addon id, alert type, device and the identity
/// fields (sorted by name), each length-prefixed so that no two different inputs collide by
/// concatenation. Hex, 64 characters.
pub fn fingerprint(
    addon_id: &str,
    alert_type: &str,
    device_key: &str,
    identity: &BTreeMap<String, String>,
) -> String {
    let mut hasher = Sha256::new();
    let mut part = |s: &str| {
        hasher.update((s.len() as u64).to_be_bytes());
        hasher.update(s.as_bytes());
    };
    part(addon_id);
    part(alert_type);
    part(device_key);
    for (name, value) in identity {
        part(name);
        part(value);
    }
    hex::encode(hasher.finalize())
}

fn normalise_ip(alert_type: &str, ip: Option<String>) -> Result<Option<String>, EngineError> {
    let Some(raw) = ip else { return Ok(None) };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    // Canonical text form, so that `::0001` and `::1` are one device.
    match trimmed.parse::<IpAddr>() {
        Ok(ip) => Ok(Some(ip.to_string())),
        Err(_) => Err(EngineError::BadDeviceIp {
            alert_type: alert_type.to_owned(),
            value: raw,
        }),
    }
}

fn check_field_name(alert_type: &str, name: &str) -> Result<(), EngineError> {
    if name.is_empty() || name.len() > MAX_FIELD_NAME_LEN {
        return Err(EngineError::BadFieldName {
            alert_type: alert_type.to_owned(),
            name: cut_to_bytes(name, MAX_FIELD_NAME_LEN),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> AlertRules {
        let spec: AlertSpec = serde_json::from_value(serde_json::json!({
            "default_severity": "minor",
            "default_category": "network",
            "severity_map": { "linkDown": "major" },
            "category_map": { "HighCpu": "performance" },
            "clears": { "linkUp": ["linkDown"], "powerRestored": ["powerLost", "onBattery"] },
            "fingerprint_fields": ["ifIndex"]
        }))
        .unwrap();
        AlertRules::new("ifmib", &spec)
    }

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(ms).unwrap()
    }

    fn reported(alert_type: &str) -> ReportedAlert {
        ReportedAlert {
            alert_type: alert_type.into(),
            device_ip: Some("192.0.2.1".into()),
            title: format!("{alert_type} on device"),
            fields: vec![("ifIndex".into(), "3".into())],
            ..ReportedAlert::default()
        }
    }

    fn raise(actions: Vec<AlertAction>) -> NewAlert {
        match actions.as_slice() {
            [AlertAction::Raise(a)] => a.clone(),
            other => panic!("expected one raise, got {other:?}"),
        }
    }

    fn clears(actions: Vec<AlertAction>) -> Vec<ClearAlert> {
        actions
            .into_iter()
            .map(|a| match a {
                AlertAction::Clear(c) => c,
                other => panic!("expected clears only, got {other:?}"),
            })
            .collect()
    }

    #[test]
    fn severity_precedence_is_manifest_then_addon_then_default() {
        // (alert type, severity the addon reports, expected)
        let cases = [
            ("linkDown", Some(Severity::Info), Severity::Major),
            ("linkDown", None, Severity::Major),
            ("HighCpu", Some(Severity::Critical), Severity::Critical),
            ("HighCpu", None, Severity::Minor),
        ];
        for (alert_type, reported_severity, expected) in cases {
            let mut r = reported(alert_type);
            r.severity = reported_severity;
            let a = raise(evaluate(&rules(), r, at(0)).unwrap());
            assert_eq!(a.severity, expected, "{alert_type} {reported_severity:?}");
        }
    }

    #[test]
    fn category_comes_from_map_or_default() {
        let cases = [("HighCpu", "performance"), ("linkDown", "network")];
        for (alert_type, expected) in cases {
            let a = raise(evaluate(&rules(), reported(alert_type), at(0)).unwrap());
            assert_eq!(a.category, expected);
        }
    }

    #[test]
    fn fingerprint_depends_on_exactly_addon_type_device_and_identity() {
        let base = raise(evaluate(&rules(), reported("linkDown"), at(0)).unwrap()).fingerprint;
        type Edit = fn(&mut ReportedAlert);
        // (what changes, whether the fingerprint must change)
        let cases: &[(&str, Edit, bool)] = &[
            ("title", |r| r.title = "other".into(), false),
            ("message", |r| r.message = "other".into(), false),
            ("severity", |r| r.severity = Some(Severity::Critical), false),
            (
                "extra field",
                |r| r.fields.push(("speed".into(), "1G".into())),
                false,
            ),
            ("occurred-at", |r| r.occurred_at = Some(5), false),
            (
                "ip written differently",
                |r| r.device_ip = Some(" 192.0.2.1 ".into()),
                false,
            ),
            ("device", |r| r.device_ip = Some("192.0.2.2".into()), true),
            ("alert type", |r| r.alert_type = "linkFlap".into(), true),
            (
                "manifest fingerprint field",
                |r| r.fields[0].1 = "4".into(),
                true,
            ),
            (
                "identity",
                |r| r.identity.push(("vlan".into(), "7".into())),
                true,
            ),
        ];
        for (what, edit, changes) in cases {
            let mut r = reported("linkDown");
            edit(&mut r);
            let fp = raise(evaluate(&rules(), r, at(0)).unwrap()).fingerprint;
            assert_eq!(fp != base, *changes, "changing {what}");
        }
        let other_addon = AlertRules::new("other", &AlertSpec::default());
        let mut r = reported("linkDown");
        r.identity.push(("ifIndex".into(), "3".into()));
        let fp_other = raise(evaluate(&other_addon, r, at(0)).unwrap()).fingerprint;
        assert_ne!(fp_other, base, "another addon");
    }

    #[test]
    fn length_prefixing_keeps_concatenations_apart() {
        let id = BTreeMap::new();
        assert_ne!(
            fingerprint("ab", "c", "d", &id),
            fingerprint("a", "bc", "d", &id)
        );
    }

    #[test]
    fn manifest_clear_rule_targets_the_cleared_types_fingerprint() {
        let down = raise(evaluate(&rules(), reported("linkDown"), at(0)).unwrap());
        let up = clears(evaluate(&rules(), reported("linkUp"), at(1)).unwrap());
        assert_eq!(up.len(), 1);
        assert_eq!(up[0].fingerprint, down.fingerprint);
        assert_eq!(up[0].alert_type, "linkDown");
        assert_eq!(up[0].cleared_by, "linkUp");

        let mut other_port = reported("linkUp");
        other_port.fields[0].1 = "9".into();
        let up9 = clears(evaluate(&rules(), other_port, at(1)).unwrap());
        assert_ne!(up9[0].fingerprint, down.fingerprint);
    }

    #[test]
    fn one_clear_can_resolve_several_types() {
        let c = clears(evaluate(&rules(), reported("powerRestored"), at(0)).unwrap());
        let types: Vec<_> = c.iter().map(|c| c.alert_type.as_str()).collect();
        assert_eq!(types, ["powerLost", "onBattery"]);
    }

    #[test]
    fn self_clear_uses_its_own_type() {
        let firing = raise(evaluate(&rules(), reported("HighCpu"), at(0)).unwrap());
        let mut r = reported("HighCpu");
        r.clears = true;
        let c = clears(evaluate(&rules(), r, at(1)).unwrap());
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].fingerprint, firing.fingerprint);
    }

    #[test]
    fn device_name_alone_identifies_case_insensitively() {
        let mk = |name: &str| ReportedAlert {
            device_ip: None,
            device_name: Some(name.into()),
            ..reported("linkDown")
        };
        let a = raise(evaluate(&rules(), mk("Core-1"), at(0)).unwrap());
        let b = raise(evaluate(&rules(), mk("core-1"), at(0)).unwrap());
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.device_name.as_deref(), Some("Core-1"));
    }

    #[test]
    fn bad_alerts_are_refused_with_reasons() {
        type Edit = fn(&mut ReportedAlert);
        let cases: &[(Edit, &str)] = &[
            (
                |r| r.alert_type = "  ".into(),
                "alert-type must not be empty",
            ),
            (|r| r.alert_type = "x".repeat(200), "longer than"),
            (
                |r| {
                    r.device_ip = None;
                    r.device_name = Some(" ".into());
                },
                "neither device-ip nor device-name",
            ),
            (
                |r| r.device_ip = Some("not-an-ip".into()),
                "not an IP address",
            ),
            (
                |r| r.fields = (0..200).map(|i| (format!("f{i}"), String::new())).collect(),
                "more than",
            ),
            (|r| r.fields.push((String::new(), "v".into())), "field name"),
            (|r| r.occurred_at = Some(i64::MAX), "not a valid time"),
        ];
        for (edit, expected) in cases {
            let mut r = reported("linkDown");
            edit(&mut r);
            let err = evaluate(&rules(), r, at(0)).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn text_is_truncated_not_refused() {
        let mut r = reported("linkDown");
        r.title = "é".repeat(1000);
        r.message = "m".repeat(MAX_MESSAGE_LEN * 2);
        let a = raise(evaluate(&rules(), r, at(0)).unwrap());
        assert!(a.title.len() <= MAX_TITLE_LEN && a.title.ends_with('…'));
        assert!(a.message.len() <= MAX_MESSAGE_LEN);
    }

    #[test]
    fn empty_title_falls_back_to_alert_type_and_times_default_to_receipt() {
        let mut r = reported("linkDown");
        r.title = String::new();
        let a = raise(evaluate(&rules(), r, at(42)).unwrap());
        assert_eq!(a.title, "linkDown");
        assert_eq!(a.occurred_at, at(42));
        let mut r = reported("linkDown");
        r.occurred_at = Some(7);
        assert_eq!(
            raise(evaluate(&rules(), r, at(42)).unwrap()).occurred_at,
            at(7)
        );
    }

    #[test]
    fn identity_overrides_same_named_extra_field() {
        let mut r = reported("linkDown");
        r.identity.push(("ifIndex".into(), "5".into()));
        let a = raise(evaluate(&rules(), r, at(0)).unwrap());
        assert_eq!(a.fields["ifIndex"], "5");
    }
}
