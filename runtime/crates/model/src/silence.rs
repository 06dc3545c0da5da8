//! Silences (maintenance windows): which alerts are raised `suppressed` instead of `active`.
//!
//! Matching is decided here, purely, from an alert about to be raised and the silences the
//! writer holds in memory; the store only records the decision. A silence never hides an alert:
//! a suppressed alert is stored, deduplicated and counted like any other, and only its status
//! says that nobody needs to be woken for it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::alert::NewAlert;
use crate::engine::{
    MAX_ALERT_TYPE_LEN, MAX_DEVICE_NAME_LEN, MAX_FIELD_NAME_LEN, MAX_FIELD_VALUE_LEN, MAX_FIELDS,
};

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
    use crate::alert::Severity;
    use chrono::TimeZone;

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
