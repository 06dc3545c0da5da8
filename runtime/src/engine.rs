//! The alert engine: pure rules that turn what an addon reported into actions on stored alerts,
//! and decide whether a silence suppresses an alert about to be raised.
//!
//! **Architecture Invariant:** nothing here awaits, touches the database or knows about WASM.
//! The engine decides (severity, category, fingerprint, raise or clear); the store carries the
//! decision out atomically, so dedupe holds however many writers race.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc, Weekday};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::alert::{AlertAction, ClearAlert, NewAlert, ReportedAlert, Severity};
use crate::manifest::AlertSpec;

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
        .map(|n| truncate(n.trim(), MAX_DEVICE_NAME_LEN))
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
        let value = truncate(&value, MAX_FIELD_VALUE_LEN);
        fields.insert(name.clone(), value.clone());
        identity.insert(name, value);
    }
    for (name, value) in reported.fields {
        check_field_name(&alert_type, &name)?;
        // Identity wins over an extra field of the same name: the fingerprint must describe
        // what is shown.
        fields
            .entry(name)
            .or_insert_with(|| truncate(&value, MAX_FIELD_VALUE_LEN));
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
        t => truncate(t, MAX_TITLE_LEN),
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
        message: truncate(&reported.message, MAX_MESSAGE_LEN),
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
            name: truncate(name, MAX_FIELD_NAME_LEN),
        });
    }
    Ok(())
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut with `…`.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

// ---------------------------------------------------------------------------------------------
// Silences (maintenance windows): which alerts are raised `suppressed` instead of `active`.
//
// Matching is decided here, purely, from an alert about to be raised and the silences the
// writer holds in memory; the store only records the decision. A silence never hides an alert:
// a suppressed alert is stored, deduplicated and counted like any other, and only its status
// says that nobody needs to be woken for it.

/// Longest silence comment, in bytes.
pub const MAX_SILENCE_COMMENT_LEN: usize = 1024;

/// What a silence applies to. Every matcher given must match (an alert matches a silence
/// with `addon` and `device` only if both match); at least one is required, so that no
/// silence silences everything by accident.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceMatchers {
    /// The addon's id, exactly.
    #[serde(default)]
    pub addon: Option<String>,
    /// The device's IP address (any spelling of the same address) or its name (ignoring
    /// case), as the alert list's `device` filter reads it.
    #[serde(default)]
    pub device: Option<String>,
    /// The alert type, exactly.
    #[serde(default)]
    pub alert_type: Option<String>,
    /// Alert fields (identity or extra) that must have exactly these values.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// A day of the week, as recurrences name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    fn weekday(self) -> Weekday {
        match self {
            Day::Mon => Weekday::Mon,
            Day::Tue => Weekday::Tue,
            Day::Wed => Weekday::Wed,
            Day::Thu => Weekday::Thu,
            Day::Fri => Weekday::Fri,
            Day::Sat => Weekday::Sat,
            Day::Sun => Weekday::Sun,
        }
    }
}

/// A time of day in UTC, to the minute, written `HH:MM` (`00:00` to `23:59`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay {
    minute_of_day: u16,
}

impl schemars::JsonSchema for TimeOfDay {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TimeOfDay".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
            "description": "A time of day in UTC, `HH:MM`",
        })
    }
}

impl TimeOfDay {
    pub fn new(hour: u16, minute: u16) -> Option<TimeOfDay> {
        (hour < 24 && minute < 60).then_some(TimeOfDay {
            minute_of_day: hour * 60 + minute,
        })
    }

    fn of(at: DateTime<Utc>) -> TimeOfDay {
        // Both are in range by construction of a `DateTime`.
        TimeOfDay {
            minute_of_day: (at.hour() * 60 + at.minute()) as u16,
        }
    }
}

impl std::fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02}:{:02}",
            self.minute_of_day / 60,
            self.minute_of_day % 60
        )
    }
}

impl std::str::FromStr for TimeOfDay {
    type Err = String;

    fn from_str(s: &str) -> Result<TimeOfDay, String> {
        let bad = || format!("`{s}` is not a time of day (expected HH:MM, 00:00 to 23:59)");
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        let two_digits = |p: &str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(h) || !two_digits(m) {
            return Err(bad());
        }
        TimeOfDay::new(h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?).ok_or_else(bad)
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A silence that is in force only in a daily window on some days of the week, in UTC (e.g.
/// Saturdays and Sundays 22:00–02:00), within its `starts_at`..`ends_at`.
///
/// The window opens at `start` on each day listed and closes at the next `end`; an `end`
/// earlier than `start` closes it on the following day, so `sat` with 22:00–02:00 covers
/// Saturday 22:00 to Sunday 02:00 (and not Saturday 00:00–02:00).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recurrence {
    pub days: Vec<Day>,
    pub start: TimeOfDay,
    pub end: TimeOfDay,
}

impl Recurrence {
    /// Whether the window is open at `at`: from `start` included to `end` excluded.
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        let time = TimeOfDay::of(at);
        let opens_on = |day: Weekday| self.days.iter().any(|d| d.weekday() == day);
        if self.start < self.end {
            opens_on(at.weekday()) && self.start <= time && time < self.end
        } else {
            (opens_on(at.weekday()) && time >= self.start)
                || (opens_on(at.weekday().pred()) && time < self.end)
        }
    }
}

/// What a client sends to create or replace a silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceSpec {
    pub matchers: SilenceMatchers,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[serde(default)]
    pub recurrence: Option<Recurrence>,
    /// Why: required, because whoever finds alerts suppressed needs to know.
    pub comment: String,
}

/// A stored silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Silence {
    pub id: i64,
    pub matchers: SilenceMatchers,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub recurrence: Option<Recurrence>,
    pub comment: String,
    /// Who created it (the principal, once the API authenticates).
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where a silence is in its life at some instant. `Active` means between `starts_at` and
/// `ends_at`; a recurring silence is in force only inside its windows (see
/// [`Silence::in_force`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl SilenceState {
    pub const ALL: [SilenceState; 3] = [
        SilenceState::Pending,
        SilenceState::Active,
        SilenceState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl std::str::FromStr for SilenceState {
    type Err = String;

    fn from_str(s: &str) -> Result<SilenceState, String> {
        SilenceState::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!("unknown silence state `{s}` (expected one of: pending, active, expired)")
            })
    }
}

/// A silence that cannot be stored; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("silence field `{field}`: {message}")]
pub struct SilenceError {
    pub field: String,
    pub message: String,
}

fn silence_error(field: impl Into<String>, message: impl Into<String>) -> SilenceError {
    SilenceError {
        field: field.into(),
        message: message.into(),
    }
}

impl SilenceMatchers {
    /// Checks the matchers and returns them as they are stored and matched: trimmed, a device
    /// IP in canonical form. At least one is required: a silence of everything is refused.
    pub fn normalise(mut self) -> Result<SilenceMatchers, SilenceError> {
        let m = &mut self;
        for (name, value, max) in [
            ("addon", &mut m.addon, 64),
            ("device", &mut m.device, MAX_DEVICE_NAME_LEN),
            ("alert_type", &mut m.alert_type, MAX_ALERT_TYPE_LEN),
        ] {
            let field = format!("matchers.{name}");
            if let Some(v) = value {
                let trimmed = v.trim();
                if trimmed.is_empty() {
                    return Err(silence_error(
                        field,
                        "must not be empty (leave it out to match any)",
                    ));
                }
                if trimmed.len() > max {
                    return Err(silence_error(field, format!("is longer than {max} bytes")));
                }
                *v = trimmed.to_owned();
            }
        }
        if let Some(device) = &mut m.device
            && let Ok(ip) = device.parse::<IpAddr>()
        {
            *device = ip.to_string();
        }
        if m.fields.len() > MAX_FIELDS {
            return Err(silence_error(
                "matchers.fields",
                format!("has more than {MAX_FIELDS} fields"),
            ));
        }
        for (name, value) in &m.fields {
            if name.is_empty() || name.len() > MAX_FIELD_NAME_LEN {
                return Err(silence_error(
                    "matchers.fields",
                    format!("field names must be 1 to {MAX_FIELD_NAME_LEN} bytes"),
                ));
            }
            if value.len() > MAX_FIELD_VALUE_LEN {
                return Err(silence_error(
                    format!("matchers.fields.{name}"),
                    format!("is longer than {MAX_FIELD_VALUE_LEN} bytes"),
                ));
            }
        }
        if m.addon.is_none() && m.device.is_none() && m.alert_type.is_none() && m.fields.is_empty()
        {
            return Err(silence_error(
                "matchers",
                "needs at least one of `addon`, `device`, `alert_type` or `fields` \
                 (a silence of everything is refused)",
            ));
        }
        Ok(self)
    }
}

impl SilenceSpec {
    /// Checks the spec and returns it in the form it is stored and matched in: matchers
    /// trimmed, a device IP in canonical form (as the engine writes `device_ip`), recurrence
    /// days sorted. Every refusal names its field.
    pub fn normalise(mut self) -> Result<SilenceSpec, SilenceError> {
        self.matchers = self.matchers.normalise()?;
        if self.ends_at <= self.starts_at {
            return Err(silence_error("ends_at", "must be after `starts_at`"));
        }
        if let Some(r) = &mut self.recurrence {
            if r.days.is_empty() {
                return Err(silence_error(
                    "recurrence.days",
                    "must name at least one day (mon, tue, wed, thu, fri, sat, sun)",
                ));
            }
            r.days.sort_by_key(|d| d.weekday().num_days_from_monday());
            if let Some(pair) = r.days.windows(2).find(|pair| pair[0] == pair[1]) {
                return Err(silence_error(
                    "recurrence.days",
                    format!(
                        "names `{}` twice",
                        pair[0].weekday().to_string().to_lowercase()
                    ),
                ));
            }
            if r.start == r.end {
                return Err(silence_error(
                    "recurrence.end",
                    "must differ from `start` (for a silence in force all day, leave \
                     `recurrence` out)",
                ));
            }
        }
        self.comment = self.comment.trim().to_owned();
        if self.comment.is_empty() {
            return Err(silence_error(
                "comment",
                "must say why (it must not be empty)",
            ));
        }
        if self.comment.len() > MAX_SILENCE_COMMENT_LEN {
            return Err(silence_error(
                "comment",
                format!("is longer than {MAX_SILENCE_COMMENT_LEN} bytes"),
            ));
        }
        Ok(self)
    }
}

impl Silence {
    /// Whether the silence suppresses alerts raised at `at`: inside `starts_at`..`ends_at`
    /// (start included, end excluded) and, for a recurring one, inside one of its windows.
    pub fn in_force(&self, at: DateTime<Utc>) -> bool {
        self.starts_at <= at
            && at < self.ends_at
            && self.recurrence.as_ref().is_none_or(|r| r.covers(at))
    }

    pub fn state(&self, at: DateTime<Utc>) -> SilenceState {
        if at < self.starts_at {
            SilenceState::Pending
        } else if at < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    /// Whether every matcher of the silence matches `alert`.
    pub fn matches(&self, alert: &NewAlert) -> bool {
        self.matchers.matches(
            &alert.addon_id,
            &alert.alert_type,
            alert.device_ip.as_deref(),
            alert.device_name.as_deref(),
            &alert.fields,
        )
    }
}

impl SilenceMatchers {
    /// Whether every matcher matches an alert with these attributes (a new alert's, or a
    /// stored one's when previewing a silence).
    pub fn matches(
        &self,
        addon_id: &str,
        alert_type: &str,
        device_ip: Option<&str>,
        device_name: Option<&str>,
        fields: &BTreeMap<String, String>,
    ) -> bool {
        let m = self;
        m.addon.as_ref().is_none_or(|a| a == addon_id)
            && m.alert_type.as_ref().is_none_or(|t| t == alert_type)
            && m.device.as_ref().is_none_or(|d| {
                // Matchers are normalised (canonical IP); the engine writes `device_ip`
                // canonically and keeps names as reported, which fingerprints compare
                // ignoring case.
                device_ip == Some(d.as_str())
                    || device_name.is_some_and(|n| n.to_lowercase() == d.to_lowercase())
            })
            && m.fields
                .iter()
                .all(|(name, value)| fields.get(name) == Some(value))
    }
}

/// The silence that suppresses `alert` raised at `now`, if any: the first in `silences` (the
/// store lists them oldest first) that is in force and matches.
pub fn silencing(alert: &NewAlert, silences: &[Silence], now: DateTime<Utc>) -> Option<i64> {
    silences
        .iter()
        .find(|s| s.in_force(now) && s.matches(alert))
        .map(|s| s.id)
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

#[cfg(test)]
mod silence_tests {
    use super::*;

    /// 2025-03-01 was a Saturday.
    fn sat(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, h, m, 0).unwrap()
    }

    fn alert() -> NewAlert {
        NewAlert {
            addon_id: "ifmib".into(),
            fingerprint: "fp".into(),
            alert_type: "linkDown".into(),
            device_ip: Some("2001:db8::1".into()),
            device_name: Some("Core-SW-1".into()),
            severity: Severity::Major,
            category: "network".into(),
            title: "link down".into(),
            message: String::new(),
            fields: BTreeMap::from([
                ("ifIndex".to_owned(), "3".to_owned()),
                ("ifName".to_owned(), "ge-0/0/3".to_owned()),
            ]),
            occurred_at: sat(12, 0),
            received_at: sat(12, 0),
        }
    }

    fn silence(matchers: SilenceMatchers) -> Silence {
        Silence {
            id: 7,
            matchers,
            starts_at: sat(10, 0),
            ends_at: sat(14, 0),
            recurrence: None,
            comment: "maintenance".into(),
            created_by: "api".into(),
            created_at: sat(9, 0),
            updated_at: sat(9, 0),
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_matcher_given_must_match() {
        let m =
            |addon: Option<&str>, device: Option<&str>, alert_type: Option<&str>| SilenceMatchers {
                addon: addon.map(Into::into),
                device: device.map(Into::into),
                alert_type: alert_type.map(Into::into),
                fields: BTreeMap::new(),
            };
        // (what, matchers, matches)
        let cases = [
            ("addon", m(Some("ifmib"), None, None), true),
            ("other addon", m(Some("siklu"), None, None), false),
            ("ip", m(None, Some("2001:db8::1"), None), true),
            (
                "device name, other case",
                m(None, Some("core-sw-1"), None),
                true,
            ),
            ("other device", m(None, Some("core-sw-2"), None), false),
            ("alert type", m(None, None, Some("linkDown")), true),
            (
                "alert type, other case",
                m(None, None, Some("linkdown")),
                false,
            ),
            (
                "all three",
                m(Some("ifmib"), Some("core-sw-1"), Some("linkDown")),
                true,
            ),
            (
                "one of three wrong",
                m(Some("ifmib"), Some("core-sw-1"), Some("linkUp")),
                false,
            ),
            (
                "field",
                SilenceMatchers {
                    fields: fields(&[("ifIndex", "3")]),
                    ..SilenceMatchers::default()
                },
                true,
            ),
            (
                "two fields",
                SilenceMatchers {
                    fields: fields(&[("ifIndex", "3"), ("ifName", "ge-0/0/3")]),
                    ..SilenceMatchers::default()
                },
                true,
            ),
            (
                "field with another value",
                SilenceMatchers {
                    fields: fields(&[("ifIndex", "4")]),
                    ..SilenceMatchers::default()
                },
                false,
            ),
            (
                "field the alert lacks",
                SilenceMatchers {
                    fields: fields(&[("vlan", "3")]),
                    ..SilenceMatchers::default()
                },
                false,
            ),
        ];
        for (what, matchers, expected) in cases {
            let s = silence(matchers);
            assert_eq!(s.matches(&alert()), expected, "{what}");
            assert_eq!(
                silencing(&alert(), &[s], sat(12, 0)),
                expected.then_some(7),
                "{what}"
            );
        }
    }

    #[test]
    fn device_ip_matchers_are_normalised_to_the_engines_spelling() {
        let spec = SilenceSpec {
            matchers: SilenceMatchers {
                device: Some(" 2001:DB8:0::1 ".into()),
                ..SilenceMatchers::default()
            },
            starts_at: sat(10, 0),
            ends_at: sat(14, 0),
            recurrence: None,
            comment: " why ".into(),
        }
        .normalise()
        .unwrap();
        assert_eq!(spec.matchers.device.as_deref(), Some("2001:db8::1"));
        assert_eq!(spec.comment, "why");
        let s = silence(spec.matchers);
        assert!(s.matches(&alert()));
    }

    #[test]
    fn in_force_from_start_included_to_end_excluded() {
        let s = silence(SilenceMatchers {
            addon: Some("ifmib".into()),
            ..SilenceMatchers::default()
        });
        // (at, in force, state)
        let cases = [
            (sat(9, 59), false, SilenceState::Pending),
            (sat(10, 0), true, SilenceState::Active),
            (sat(13, 59), true, SilenceState::Active),
            (sat(14, 0), false, SilenceState::Expired),
        ];
        for (at, in_force, state) in cases {
            assert_eq!(s.in_force(at), in_force, "{at}");
            assert_eq!(s.state(at), state, "{at}");
            assert_eq!(
                silencing(&alert(), std::slice::from_ref(&s), at).is_some(),
                in_force
            );
        }
    }

    #[test]
    fn recurrence_windows_by_day_and_time_across_midnight() {
        let window = |days: &[Day], start: &str, end: &str| Recurrence {
            days: days.to_vec(),
            start: start.parse().unwrap(),
            end: end.parse().unwrap(),
        };
        let at = |day: u32, h: u32, m: u32| Utc.with_ymd_and_hms(2025, 3, day, h, m, 0).unwrap();
        // 2025-03-01 Saturday, 03-02 Sunday, 03-03 Monday, 03-07 Friday.
        let cases = [
            // Same-day window: start included, end excluded, only on the days listed.
            (window(&[Day::Sat], "10:00", "12:00"), at(1, 9, 59), false),
            (window(&[Day::Sat], "10:00", "12:00"), at(1, 10, 0), true),
            (window(&[Day::Sat], "10:00", "12:00"), at(1, 11, 59), true),
            (window(&[Day::Sat], "10:00", "12:00"), at(1, 12, 0), false),
            (window(&[Day::Sat], "10:00", "12:00"), at(2, 11, 0), false),
            (
                window(&[Day::Sat, Day::Sun], "10:00", "12:00"),
                at(2, 11, 0),
                true,
            ),
            // Across midnight: opens on the day listed, closes on the next.
            (window(&[Day::Sat], "22:00", "02:00"), at(1, 21, 59), false),
            (window(&[Day::Sat], "22:00", "02:00"), at(1, 22, 0), true),
            (window(&[Day::Sat], "22:00", "02:00"), at(1, 23, 59), true),
            (window(&[Day::Sat], "22:00", "02:00"), at(2, 0, 0), true),
            (window(&[Day::Sat], "22:00", "02:00"), at(2, 1, 59), true),
            (window(&[Day::Sat], "22:00", "02:00"), at(2, 2, 0), false),
            // Saturday early morning belongs to Friday's window, which is not listed.
            (window(&[Day::Sat], "22:00", "02:00"), at(1, 1, 0), false),
            (window(&[Day::Fri], "22:00", "02:00"), at(1, 1, 0), true),
            // Sunday's window runs into Monday (the week wraps).
            (window(&[Day::Sun], "23:00", "01:00"), at(3, 0, 30), true),
            (window(&[Day::Sun], "23:00", "01:00"), at(3, 23, 30), false),
            // Every weekday.
            (
                window(
                    &[Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri],
                    "00:00",
                    "23:59",
                ),
                at(7, 12, 0),
                true,
            ),
            (
                window(
                    &[Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri],
                    "00:00",
                    "23:59",
                ),
                at(1, 12, 0),
                false,
            ),
        ];
        for (recurrence, at, expected) in cases {
            assert_eq!(recurrence.covers(at), expected, "{recurrence:?} at {at}");
        }
    }

    #[test]
    fn a_recurring_silence_needs_its_window_and_its_period() {
        let mut s = silence(SilenceMatchers {
            addon: Some("ifmib".into()),
            ..SilenceMatchers::default()
        });
        s.starts_at = sat(0, 0);
        s.ends_at = sat(0, 0) + chrono::Duration::days(14);
        s.recurrence = Some(Recurrence {
            days: vec![Day::Sat],
            start: "11:00".parse().unwrap(),
            end: "13:00".parse().unwrap(),
        });
        let week = chrono::Duration::days(7);
        // (at, in force)
        let cases = [
            (sat(12, 0), true),
            (sat(13, 0), false),
            (sat(12, 0) + week, true),
            (sat(12, 0) + week + chrono::Duration::days(1), false),
            // The window opens again, but the silence has ended.
            (sat(12, 0) + week + week, false),
            (sat(12, 0) - week, false),
        ];
        for (at, expected) in cases {
            assert_eq!(s.in_force(at), expected, "{at}");
            assert_eq!(
                silencing(&alert(), std::slice::from_ref(&s), at).is_some(),
                expected
            );
        }
    }

    #[test]
    fn the_first_matching_silence_in_force_wins() {
        let mut later = silence(SilenceMatchers {
            device: Some("core-sw-1".into()),
            ..SilenceMatchers::default()
        });
        later.id = 9;
        let mut not_yet = later.clone();
        not_yet.id = 3;
        not_yet.starts_at = sat(13, 0);
        let mut other = later.clone();
        other.id = 4;
        other.matchers.device = Some("edge-1".into());
        let silences = [not_yet, other, later];
        assert_eq!(silencing(&alert(), &silences, sat(12, 0)), Some(9));
        assert_eq!(silencing(&alert(), &silences, sat(13, 0)), Some(3));
        assert_eq!(silencing(&alert(), &[], sat(12, 0)), None);
    }

    #[test]
    fn times_of_day_parse_and_print_as_hh_mm() {
        for (text, ok) in [
            ("00:00", true),
            ("23:59", true),
            ("07:05", true),
            ("24:00", false),
            ("12:60", false),
            ("7:05", false),
            ("07:5", false),
            ("0705", false),
            ("+1:00", false),
            ("", false),
        ] {
            let parsed = text.parse::<TimeOfDay>();
            assert_eq!(parsed.is_ok(), ok, "{text}");
            if let Ok(t) = parsed {
                assert_eq!(t.to_string(), text);
            }
        }
    }

    #[test]
    fn bad_silences_are_refused_naming_the_field() {
        let good = || SilenceSpec {
            matchers: SilenceMatchers {
                addon: Some("ifmib".into()),
                ..SilenceMatchers::default()
            },
            starts_at: sat(10, 0),
            ends_at: sat(14, 0),
            recurrence: Some(Recurrence {
                days: vec![Day::Sun, Day::Sat],
                start: "22:00".parse().unwrap(),
                end: "02:00".parse().unwrap(),
            }),
            comment: "core upgrade".into(),
        };
        let normalised = good().normalise().unwrap();
        assert_eq!(
            normalised.recurrence.unwrap().days,
            [Day::Sat, Day::Sun],
            "days sorted"
        );

        type Edit = fn(&mut SilenceSpec);
        // (edit, field named)
        let cases: &[(Edit, &str)] = &[
            (|s| s.matchers.addon = None, "matchers"),
            (|s| s.matchers.addon = Some(" ".into()), "matchers.addon"),
            (
                |s| s.matchers.device = Some(String::new()),
                "matchers.device",
            ),
            (
                |s| s.matchers.alert_type = Some("x".repeat(200)),
                "matchers.alert_type",
            ),
            (
                |s| {
                    s.matchers.fields.insert(String::new(), "v".into());
                },
                "matchers.fields",
            ),
            (
                |s| {
                    s.matchers.fields.insert("f".into(), "v".repeat(5000));
                },
                "matchers.fields.f",
            ),
            (|s| s.ends_at = s.starts_at, "ends_at"),
            (
                |s| s.recurrence.as_mut().unwrap().days.clear(),
                "recurrence.days",
            ),
            (
                |s| s.recurrence.as_mut().unwrap().days.push(Day::Sat),
                "recurrence.days",
            ),
            (
                |s| {
                    let r = s.recurrence.as_mut().unwrap();
                    r.end = r.start;
                },
                "recurrence.end",
            ),
            (|s| s.comment = "  ".into(), "comment"),
            (|s| s.comment = "c".repeat(2000), "comment"),
        ];
        for (edit, field) in cases {
            let mut spec = good();
            edit(&mut spec);
            let error = spec.normalise().unwrap_err();
            assert_eq!(error.field, *field, "{error}");
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("silence field `{field}`: ")),
                "{error}"
            );
        }
    }
}
