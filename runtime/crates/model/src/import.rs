//! Records from elsewhere — the legacy system's database (`opsconductor import legacy`) or a JSON
//! file of alerts (`opsconductor import json`) — as this system's alerts, targets and settings.
//! Pure: the runtime reads the source and writes the store; here every record is either
//! converted (with a note for each value that had to change) or refused with the reason, so that
//! nothing is dropped without a line in the report.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alert::{AlertStatus, Severity};
use crate::engine::fingerprint;
use crate::text::cut_to_bytes;

/// The largest `legacy_raw_data` field kept: the engine's limit on one field value.
const MAX_RAW_BYTES: usize = 4096;

/// An alert as the source holds it; every column may be missing or null.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SourceAlert {
    /// The source's id (the legacy UUID, or a JSON file's `id`): what makes a re-run skip it.
    #[serde(alias = "id")]
    pub source_id: String,
    pub addon_id: Option<String>,
    pub fingerprint: Option<String>,
    pub device_ip: Option<String>,
    pub device_name: Option<String>,
    pub alert_type: Option<String>,
    pub severity: Option<String>,
    pub category: Option<String>,
    pub title: Option<String>,
    pub message: Option<String>,
    pub status: Option<String>,
    pub is_clear: Option<bool>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub received_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub occurrence_count: Option<i64>,
    pub raw_data: Option<Value>,
    /// Fields of a JSON file's alert (the legacy schema has none).
    pub fields: BTreeMap<String, String>,
}

/// An alert ready to store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportedAlert {
    pub source_id: String,
    pub addon_id: String,
    /// This system's fingerprint (addon, type, device, no identity), so that an event for the
    /// same problem dedupes against the imported alert; the source's is kept in the fields.
    pub fingerprint: String,
    pub alert_type: String,
    pub device_ip: Option<String>,
    pub device_name: Option<String>,
    pub severity: Severity,
    pub category: String,
    pub title: String,
    pub message: String,
    pub status: AlertStatus,
    pub fields: BTreeMap<String, String>,
    pub occurrence_count: i64,
    pub occurred_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
}

/// One line of the report: a record refused (not imported) or imported with a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// `alert 6f1c…`, `target 12`, `setting retention_days`.
    pub record: String,
    pub imported: bool,
    pub what: String,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.imported { "imported" } else { "refused" };
        write!(f, "{} ({verdict}): {}", self.record, self.what)
    }
}

fn clean(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}

/// What an alert's status becomes here, and a note when it had to be guessed.
fn status(a: &SourceAlert) -> (AlertStatus, Option<String>) {
    if a.is_clear == Some(true) {
        return (AlertStatus::Resolved, None);
    }
    match clean(a.status.as_deref())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => (
            AlertStatus::Active,
            Some("no status: imported as active".to_owned()),
        ),
        Some("active" | "open" | "firing" | "new") => (AlertStatus::Active, None),
        Some("acknowledged" | "acked") => (AlertStatus::Acknowledged, None),
        Some("suppressed") => (AlertStatus::Suppressed, None),
        Some("resolved" | "cleared" | "closed" | "clear") => (AlertStatus::Resolved, None),
        Some(other) => (
            AlertStatus::Active,
            Some(format!("status `{other}` is unknown: imported as active")),
        ),
    }
}

/// Converts the source's alerts. `installed` are the addon ids of this system: an alert of an
/// addon not installed here is refused (install or convert the addon, then run again). Open
/// alerts that share a fingerprint here keep the newest open; the others are imported resolved,
/// with a note.
pub fn convert_alerts(
    source: Vec<SourceAlert>,
    installed: &BTreeSet<String>,
    now: DateTime<Utc>,
) -> (Vec<ImportedAlert>, Vec<Note>) {
    let mut notes = Vec::new();
    let mut out: Vec<ImportedAlert> = Vec::new();
    for a in source {
        let record = format!("alert {}", a.source_id);
        let mut note = |imported: bool, what: String| {
            notes.push(Note {
                record: record.clone(),
                imported,
                what,
            })
        };
        let Some(addon_id) = clean(a.addon_id.as_deref()).map(str::to_owned) else {
            note(false, "no addon".to_owned());
            continue;
        };
        if !installed.contains(&addon_id) {
            note(
                false,
                format!(
                    "addon `{addon_id}` is not installed here: install it (or convert its \
                     manifest with `addon convert-legacy`) and run the import again"
                ),
            );
            continue;
        }
        let Some(alert_type) = clean(a.alert_type.as_deref()).map(str::to_owned) else {
            note(false, "no alert type".to_owned());
            continue;
        };
        let mut device_name = clean(a.device_name.as_deref()).map(str::to_owned);
        let device_ip = match clean(a.device_ip.as_deref()) {
            None => None,
            Some(text) => match text.parse::<IpAddr>() {
                Ok(ip) => Some(ip.to_string()),
                Err(_) => {
                    note(
                        true,
                        format!("device_ip `{text}` is not an IP address: kept as the device name"),
                    );
                    if device_name.is_none() {
                        device_name = Some(text.to_owned());
                    }
                    None
                }
            },
        };
        let Some(device_key) = device_ip.clone().or_else(|| device_name.clone()) else {
            note(
                false,
                "no device: neither device_ip nor device_name".to_owned(),
            );
            continue;
        };
        let severity = match clean(a.severity.as_deref()) {
            Some(word) => match word.to_ascii_lowercase().parse::<Severity>() {
                Ok(s) => s,
                Err(_) => {
                    note(
                        true,
                        format!(
                            "severity `{word}` is not critical, major, minor, warning or info: imported as warning"
                        ),
                    );
                    Severity::Warning
                }
            },
            None => {
                note(true, "no severity: imported as warning".to_owned());
                Severity::Warning
            }
        };
        let (status, status_note) = status(&a);
        if let Some(what) = status_note {
            note(true, what);
        }
        let occurred_at = match a.occurred_at.or(a.received_at) {
            Some(t) => t,
            None => {
                note(true, "no time: imported as occurring now".to_owned());
                now
            }
        };
        let last_seen_at = a.received_at.unwrap_or(occurred_at).max(occurred_at);
        let resolved_at =
            (status == AlertStatus::Resolved).then(|| a.resolved_at.unwrap_or(last_seen_at));
        let title = match clean(a.title.as_deref()) {
            Some(t) => t.to_owned(),
            None => {
                note(true, "no title: the alert type is the title".to_owned());
                alert_type.clone()
            }
        };
        let mut fields = a.fields.clone();
        fields.insert("legacy_id".into(), a.source_id.clone());
        if let Some(f) = clean(a.fingerprint.as_deref()) {
            fields.insert("legacy_fingerprint".into(), f.to_owned());
        }
        if let Some(raw) = a.raw_data.as_ref().filter(|r| !r.is_null()) {
            let text = raw.to_string();
            if text.len() > MAX_RAW_BYTES {
                note(
                    true,
                    format!(
                        "raw_data is {} bytes: kept cut to {MAX_RAW_BYTES}",
                        text.len()
                    ),
                );
            }
            fields.insert("legacy_raw_data".into(), cut_to_bytes(&text, MAX_RAW_BYTES));
        }
        out.push(ImportedAlert {
            fingerprint: fingerprint(&addon_id, &alert_type, &device_key, &BTreeMap::new()),
            source_id: a.source_id.clone(),
            addon_id,
            alert_type,
            device_ip,
            device_name,
            severity,
            category: clean(a.category.as_deref())
                .map_or_else(|| "unknown".to_owned(), str::to_ascii_lowercase),
            title,
            message: a.message.clone().unwrap_or_default(),
            status,
            fields,
            occurrence_count: a.occurrence_count.filter(|n| *n >= 1).unwrap_or(1),
            occurred_at,
            last_seen_at,
            resolved_at,
            resolved_by: resolved_at.map(|_| "import".to_owned()),
        });
    }

    // At most one open alert per fingerprint (the store's unique index): the newest stays open.
    let mut newest_open: HashMap<String, usize> = HashMap::new();
    for (i, a) in out.iter().enumerate() {
        if a.status == AlertStatus::Resolved {
            continue;
        }
        let keep = newest_open.entry(a.fingerprint.clone()).or_insert(i);
        if out[*keep].last_seen_at < a.last_seen_at {
            *keep = i;
        }
    }
    for i in 0..out.len() {
        let keeper = newest_open.get(&out[i].fingerprint).copied();
        if out[i].status != AlertStatus::Resolved && keeper != Some(i) {
            let keeper_id = keeper.map(|k| out[k].source_id.clone()).unwrap_or_default();
            let a = &mut out[i];
            a.status = AlertStatus::Resolved;
            a.resolved_at = Some(a.last_seen_at);
            a.resolved_by = Some(format!("import: duplicate of {keeper_id}"));
            notes.push(Note {
                record: format!("alert {}", a.source_id),
                imported: true,
                what: format!(
                    "the same problem as the newer open alert {keeper_id}: imported resolved"
                ),
            });
        }
    }
    (out, notes)
}

/// A poll target as the source holds it.
#[derive(Debug, Clone, Default)]
pub struct SourceTarget {
    pub source_id: String,
    pub name: Option<String>,
    pub ip_address: Option<String>,
    pub addon_id: Option<String>,
    pub poll_interval: Option<i64>,
    pub config: Option<Value>,
}

/// A target ready to store: always disabled, since the source keeps no credentials.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportedTarget {
    pub source_id: String,
    pub name: String,
    pub address: String,
    pub addon_id: String,
    pub interval_seconds: u32,
    pub config: Value,
}

/// Converts the source's targets; each imported one gets a note saying what it needs before it
/// can be enabled.
pub fn convert_targets(
    source: Vec<SourceTarget>,
    installed: &BTreeSet<String>,
) -> (Vec<ImportedTarget>, Vec<Note>) {
    let mut notes = Vec::new();
    let mut out = Vec::new();
    for t in source {
        let record = format!("target {}", t.source_id);
        let mut note = |imported: bool, what: String| {
            notes.push(Note {
                record: record.clone(),
                imported,
                what,
            })
        };
        let (Some(name), Some(address)) =
            (clean(t.name.as_deref()), clean(t.ip_address.as_deref()))
        else {
            note(false, "no name or no address".to_owned());
            continue;
        };
        let Some(addon_id) = clean(t.addon_id.as_deref()).filter(|a| installed.contains(*a)) else {
            note(
                false,
                format!(
                    "addon `{}` is not installed here: install it and run the import again",
                    t.addon_id.as_deref().unwrap_or("")
                ),
            );
            continue;
        };
        let interval = match t.poll_interval {
            Some(s) if s > 0 && s <= i64::from(u32::MAX) => s as u32,
            other => {
                note(
                    true,
                    format!("poll interval {other:?} is not a positive number of seconds: 300"),
                );
                300
            }
        };
        let config = match t.config {
            Some(Value::Object(map)) => Value::Object(map),
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(other) => {
                note(
                    true,
                    format!("config `{other}` is not an object: left empty"),
                );
                Value::Object(Default::default())
            }
        };
        note(
            true,
            format!(
                "imported disabled: the legacy database keeps no credentials; give it its \
                 credentials (`opsconductor target update {name} --credentials ...`) and enable it"
            ),
        );
        out.push(ImportedTarget {
            source_id: t.source_id.clone(),
            name: name.to_owned(),
            address: address.to_owned(),
            addon_id: addon_id.to_owned(),
            interval_seconds: interval,
            config,
        });
    }
    (out, notes)
}

/// Settings keys this system keeps for itself: never overwritten by an import.
const OWN_SETTINGS: [&str; 3] = ["addons.", "snmp.", "opsconductor."];

/// Converts the source's settings (`key`, `value`): a key of this system's own is refused.
pub fn convert_settings(
    source: Vec<(String, Option<String>)>,
) -> (Vec<(String, String)>, Vec<Note>) {
    let mut notes = Vec::new();
    let mut out = Vec::new();
    for (key, value) in source {
        let record = format!("setting {key}");
        if OWN_SETTINGS.iter().any(|p| key.starts_with(p)) {
            notes.push(Note {
                record,
                imported: false,
                what: "a key this system keeps for itself".to_owned(),
            });
            continue;
        }
        out.push((key, value.unwrap_or_default()));
    }
    (out, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn alert(id: &str) -> SourceAlert {
        SourceAlert {
            source_id: id.into(),
            addon_id: Some("siklu".into()),
            fingerprint: Some("abc".into()),
            device_ip: Some("10.0.0.1".into()),
            alert_type: Some("linkDown".into()),
            severity: Some("major".into()),
            category: Some("Network".into()),
            title: Some("link down".into()),
            status: Some("active".into()),
            occurred_at: Some(at("2024-01-01T00:00:00Z")),
            received_at: Some(at("2024-01-01T00:00:01Z")),
            ..SourceAlert::default()
        }
    }

    #[test]
    fn a_good_alert_keeps_its_values_and_gets_this_systems_fingerprint() {
        let installed = BTreeSet::from(["siklu".to_owned()]);
        let (out, notes) = convert_alerts(vec![alert("u1")], &installed, Utc::now());
        assert!(notes.is_empty(), "{notes:?}");
        let a = &out[0];
        assert_eq!(
            a.fingerprint,
            fingerprint("siklu", "linkDown", "10.0.0.1", &BTreeMap::new())
        );
        assert_eq!(a.fields["legacy_fingerprint"], "abc");
        assert_eq!(a.fields["legacy_id"], "u1");
        assert_eq!(
            (a.category.as_str(), a.status),
            ("network", AlertStatus::Active)
        );
    }

    #[test]
    fn bad_values_are_refused_or_noted_never_dropped() {
        let installed = BTreeSet::from(["siklu".to_owned()]);
        let mut unknown = alert("u2");
        unknown.addon_id = Some("gone".into());
        let mut bad_ip = alert("u3");
        bad_ip.device_ip = Some("n/a".into());
        let mut nothing = alert("u4");
        nothing.severity = None;
        nothing.status = None;
        nothing.title = None;
        nothing.occurred_at = None;
        nothing.received_at = None;
        let mut no_device = alert("u5");
        no_device.device_ip = None;
        let (out, notes) = convert_alerts(
            vec![unknown, bad_ip, nothing, no_device],
            &installed,
            Utc::now(),
        );
        let said = |id: &str| -> Vec<String> {
            notes
                .iter()
                .filter(|n| n.record == format!("alert {id}"))
                .map(|n| n.to_string())
                .collect()
        };
        assert!(
            said("u2")[0].contains("refused): addon `gone` is not installed"),
            "{notes:?}"
        );
        assert!(
            said("u3")[0].contains("kept as the device name"),
            "{notes:?}"
        );
        assert_eq!(
            out.iter()
                .find(|a| a.source_id == "u3")
                .unwrap()
                .device_name
                .as_deref(),
            Some("n/a")
        );
        assert_eq!(said("u4").len(), 4, "{notes:?}");
        assert!(said("u5")[0].contains("no device"), "{notes:?}");
        assert_eq!(out.len(), 2);
        // Every source record is either imported or has a refusal.
        let refused = notes.iter().filter(|n| !n.imported).count();
        assert_eq!(out.len() + refused, 4);
    }

    #[test]
    fn duplicates_keep_the_newest_open() {
        let installed = BTreeSet::from(["siklu".to_owned()]);
        let mut newer = alert("new");
        newer.received_at = Some(at("2024-02-01T00:00:00Z"));
        let (out, notes) = convert_alerts(vec![alert("old"), newer], &installed, Utc::now());
        let old = out.iter().find(|a| a.source_id == "old").unwrap();
        assert_eq!(old.status, AlertStatus::Resolved);
        assert_eq!(old.resolved_by.as_deref(), Some("import: duplicate of new"));
        assert_eq!(
            out.iter().find(|a| a.source_id == "new").unwrap().status,
            AlertStatus::Active
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
    }

    #[test]
    fn targets_come_in_disabled_and_settings_keep_ours() {
        let installed = BTreeSet::from(["siklu".to_owned()]);
        let (out, notes) = convert_targets(
            vec![
                SourceTarget {
                    source_id: "1".into(),
                    name: Some("radio-1".into()),
                    ip_address: Some("10.0.0.9".into()),
                    addon_id: Some("siklu".into()),
                    poll_interval: Some(0),
                    config: Some(serde_json::json!({"community": "public"})),
                },
                SourceTarget {
                    source_id: "2".into(),
                    name: Some("x".into()),
                    ip_address: Some("10.0.0.8".into()),
                    addon_id: None,
                    ..SourceTarget::default()
                },
            ],
            &installed,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].interval_seconds, 300);
        assert_eq!(notes.len(), 3, "{notes:?}");
        let (settings, notes) = convert_settings(vec![
            ("retention_days".into(), Some("30".into())),
            ("addons.generation".into(), Some("9".into())),
        ]);
        assert_eq!(settings, [("retention_days".to_owned(), "30".to_owned())]);
        assert!(!notes[0].imported);
    }
}
