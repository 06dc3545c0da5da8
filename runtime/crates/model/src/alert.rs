//! The alert domain types shared by the engine, the store and the API: severities, statuses,
//! what an addon reports, what the engine decides, and what the store answers.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How bad a problem is, most severe first. Ordering follows that: `Critical < Info`.
#[derive(
    schemars::JsonSchema,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    Major,
    Minor,
    Warning,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::Major,
        Severity::Minor,
        Severity::Warning,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Major => "major",
            Severity::Minor => "minor",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// Where an alert is in its life. Every status but `Resolved` is "open": at most one open alert
/// exists per fingerprint, which the database enforces with a partial unique index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Active,
    Acknowledged,
    Suppressed,
    Resolved,
}

impl AlertStatus {
    pub const ALL: [AlertStatus; 4] = [
        AlertStatus::Active,
        AlertStatus::Acknowledged,
        AlertStatus::Suppressed,
        AlertStatus::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Active => "active",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Suppressed => "suppressed",
            AlertStatus::Resolved => "resolved",
        }
    }

    pub fn is_open(self) -> bool {
        self != AlertStatus::Resolved
    }
}

/// A string that names no known variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}` (expected one of: {expected})")]
pub struct UnknownVariant {
    pub what: &'static str,
    pub value: String,
    pub expected: String,
}

macro_rules! str_enum {
    ($ty:ty, $what:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownVariant;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$ty>::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownVariant {
                        what: $what,
                        value: s.to_owned(),
                        expected: <$ty>::ALL.map(|v| v.as_str()).join(", "),
                    })
            }
        }
    };
}

str_enum!(Severity, "severity");
str_enum!(AlertStatus, "status");

/// One alert as an addon reported it: the host-side mirror of the WIT `alert` record, kept free
/// of generated binding types so that the engine does not depend on the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportedAlert {
    pub alert_type: String,
    pub device_ip: Option<String>,
    pub device_name: Option<String>,
    pub title: String,
    pub message: String,
    pub severity: Option<Severity>,
    pub clears: bool,
    pub identity: Vec<(String, String)>,
    pub fields: Vec<(String, String)>,
    /// Milliseconds since the Unix epoch.
    pub occurred_at: Option<i64>,
}

/// What the engine decided for one reported alert; the store carries it out atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertAction {
    /// Open a new alert, or count one more occurrence of the open alert with this fingerprint.
    Raise(NewAlert),
    /// Resolve the open alert with this fingerprint, if there is one.
    Clear(ClearAlert),
}

/// A fully normalised alert, ready to insert or to merge into the open alert it duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    pub addon_id: String,
    pub fingerprint: String,
    pub alert_type: String,
    pub device_ip: Option<String>,
    pub device_name: Option<String>,
    pub severity: Severity,
    pub category: String,
    pub title: String,
    pub message: String,
    /// Identity and extra fields together, as shown to operators.
    pub fields: BTreeMap<String, String>,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
}

/// A request to resolve the open alert with `fingerprint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearAlert {
    pub addon_id: String,
    pub fingerprint: String,
    /// The alert type being resolved.
    pub alert_type: String,
    /// The alert type of the event that resolved it (equal to `alert_type` for a self-clear).
    pub cleared_by: String,
    pub received_at: DateTime<Utc>,
}

/// What the store did with one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ActionOutcome {
    /// A new alert was opened.
    Created { alert_id: i64 },
    /// The open alert with the same fingerprint counted one more occurrence.
    Updated {
        alert_id: i64,
        occurrence_count: i64,
    },
    /// The open alert was resolved.
    Resolved { alert_id: i64 },
    /// A clear arrived but no alert with that fingerprint was open.
    ClearUnmatched,
}

/// An alert as stored, as the API and events show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StoredAlert {
    pub id: i64,
    pub addon_id: String,
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
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// `clear:<alert type>` when a clearing event resolved it; later `user:<name>`.
    pub resolved_by: Option<String>,
}

/// Filters and page for listing alerts. Results are newest first (by id); `before_id` is the
/// keyset cursor: only alerts with a smaller id are returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    pub status: Option<AlertStatus>,
    pub severity: Option<Severity>,
    pub addon_id: Option<String>,
    /// Matches device IP or device name exactly.
    pub device: Option<String>,
    pub before_id: Option<i64>,
    pub limit: u32,
}
