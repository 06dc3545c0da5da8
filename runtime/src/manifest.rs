//! The addon manifest (`manifest.json`): its schema, defaults and validation. Pure code.
//!
//! Validation errors name the offending field (`webhook.path`, `alerts.severity_map.linkDown`)
//! so an addon author can fix a manifest from the message alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alert::Severity;

/// The WIT worlds this runtime can run, newest first.
pub const SUPPORTED_WORLDS: &[&str] = &["opsconductor:addon/addon@0.1.0"];

/// Upper bounds an addon may ask for. They protect the host, not the addon: a manifest asking
/// for more is refused at install rather than silently clamped.
pub const MAX_MEMORY_MB: u32 = 1024;
pub const MAX_CPU_MS: u32 = 60_000;
pub const MAX_TIMEOUT_MS: u32 = 120_000;
pub const MAX_INSTANCES: u32 = 64;
pub const MAX_WEBHOOK_BODY_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Lowercase letters, digits, `-` and `_`; starts with a letter or digit; at most 64 bytes.
    pub id: String,
    pub name: String,
    /// Semantic version `MAJOR.MINOR.PATCH` (a pre-release suffix is allowed).
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// The WIT world the component implements, e.g. `opsconductor:addon/addon@0.1.0`.
    pub world: String,
    /// How the addon receives data; at least one.
    pub methods: Vec<Method>,
    /// Required when `methods` contains `webhook`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSpec>,
    /// Required when `methods` contains `snmp_trap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmp_trap: Option<TrapSpec>,
    #[serde(default)]
    pub alerts: AlertSpec,
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Whether `addon install` enables the addon; catch-all addons ship disabled.
    #[serde(default = "default_true")]
    pub enabled_by_default: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Webhook,
    SnmpTrap,
    SnmpPoll,
    ApiPoll,
    SshPoll,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// The path below `/webhooks/`: segments of `[A-Za-z0-9._-]` separated by `/`.
    pub path: String,
    /// Larger bodies are answered with 413 before the addon sees them.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// What the host checks before handing the body to the addon.
    #[serde(default)]
    pub format: BodyFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// UTF-8 JSON; anything else is answered with 400.
    #[default]
    Json,
    /// UTF-8 text.
    Text,
    /// Any bytes.
    Binary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrapSpec {
    /// Trap OIDs (dotted decimal) this addon claims; the longest matching prefix wins.
    pub oid_prefixes: Vec<String>,
}

/// How reported alerts become stored alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSpec {
    pub default_severity: Severity,
    pub default_category: String,
    /// Alert type → severity; overrides the severity the addon reports.
    pub severity_map: BTreeMap<String, Severity>,
    /// Alert type → category.
    pub category_map: BTreeMap<String, String>,
    /// Clearing alert type → the alert types it resolves (e.g. `linkUp` → `[linkDown]`).
    pub clears: BTreeMap<String, Vec<String>>,
    /// Names of `fields` that join the addon's identity in the fingerprint.
    pub fingerprint_fields: Vec<String>,
    /// Resolve an open alert not seen for this long (enforced by the maintenance scheduler).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_after_seconds: Option<u64>,
}

impl Default for AlertSpec {
    fn default() -> Self {
        AlertSpec {
            default_severity: Severity::Warning,
            default_category: "unknown".to_owned(),
            severity_map: BTreeMap::new(),
            category_map: BTreeMap::new(),
            clears: BTreeMap::new(),
            fingerprint_fields: Vec::new(),
            expire_after_seconds: None,
        }
    }
}

/// What the addon may use. The sandbox enforces each of these on every call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Capabilities {
    /// Linear memory cap of one instance.
    pub memory_mb: u32,
    /// Guest CPU time per call before it is interrupted.
    pub cpu_ms: u32,
    /// Wall-clock time per call, host calls included.
    pub timeout_ms: u32,
    /// Instances kept warm to serve calls concurrently.
    pub instances: u32,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            memory_mb: 64,
            cpu_ms: 1_000,
            timeout_ms: 5_000,
            instances: 2,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_max_body_bytes() -> usize {
    1024 * 1024
}

/// A manifest that cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON for the schema at `{field}`: {message}")]
    Schema { field: String, message: String },
    #[error("manifest field `{field}`: {message}")]
    Invalid { field: String, message: String },
}

impl ManifestError {
    /// The dotted path of the field at fault (`.` for the document itself).
    pub fn field(&self) -> &str {
        match self {
            ManifestError::Schema { field, .. } | ManifestError::Invalid { field, .. } => field,
        }
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

impl Manifest {
    /// Parses and validates a manifest.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let manifest: Manifest =
            serde_path_to_error::deserialize(&mut de).map_err(|e| ManifestError::Schema {
                field: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks everything serde cannot: formats, cross-field rules and limits.
    pub fn validate(&self) -> Result<(), ManifestError> {
        validate_id(&self.id)?;
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        validate_version(&self.version)?;
        if !SUPPORTED_WORLDS.contains(&self.world.as_str()) {
            return Err(invalid(
                "world",
                format!(
                    "`{}` is not supported by this runtime (supported: {})",
                    self.world,
                    SUPPORTED_WORLDS.join(", ")
                ),
            ));
        }
        if self.methods.is_empty() {
            return Err(invalid("methods", "must name at least one method"));
        }
        for (i, m) in self.methods.iter().enumerate() {
            if self.methods[..i].contains(m) {
                return Err(invalid(format!("methods[{i}]"), "is listed twice"));
            }
        }

        let has_webhook = self.methods.contains(&Method::Webhook);
        match (&self.webhook, has_webhook) {
            (None, true) => {
                return Err(invalid(
                    "webhook",
                    "is required because `methods` contains `webhook`",
                ));
            }
            (Some(_), false) => {
                return Err(invalid(
                    "webhook",
                    "is set but `methods` does not contain `webhook`",
                ));
            }
            (Some(w), true) => w.validate()?,
            (None, false) => {}
        }

        let has_trap = self.methods.contains(&Method::SnmpTrap);
        match (&self.snmp_trap, has_trap) {
            (None, true) => {
                return Err(invalid(
                    "snmp_trap",
                    "is required because `methods` contains `snmp_trap`",
                ));
            }
            (Some(_), false) => {
                return Err(invalid(
                    "snmp_trap",
                    "is set but `methods` does not contain `snmp_trap`",
                ));
            }
            (Some(t), true) => t.validate()?,
            (None, false) => {}
        }

        self.alerts.validate()?;
        self.capabilities.validate()?;
        Ok(())
    }
}

fn validate_id(id: &str) -> Result<(), ManifestError> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    let first_ok = id
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if id.is_empty() || id.len() > 64 || !first_ok || !id.chars().all(ok_char) {
        return Err(invalid(
            "id",
            format!(
                "`{id}` must be 1-64 characters of a-z, 0-9, `-` or `_`, starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

fn validate_version(version: &str) -> Result<(), ManifestError> {
    let core = version.split_once('-').map_or(version, |(core, _)| core);
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    if parts.len() != 3 || !parts.iter().all(numeric) {
        return Err(invalid(
            "version",
            format!("`{version}` is not a semantic version like 1.2.3"),
        ));
    }
    Ok(())
}

impl WebhookSpec {
    fn validate(&self) -> Result<(), ManifestError> {
        let seg_ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        if self.path.len() > 200 || !self.path.split('/').all(seg_ok) {
            return Err(invalid(
                "webhook.path",
                format!(
                    "`{}` must be segments of A-Z, a-z, 0-9, `.`, `_` or `-` separated by `/`, without a leading slash",
                    self.path
                ),
            ));
        }
        if self.max_body_bytes == 0 || self.max_body_bytes > MAX_WEBHOOK_BODY_BYTES {
            return Err(invalid(
                "webhook.max_body_bytes",
                format!("must be between 1 and {MAX_WEBHOOK_BODY_BYTES}"),
            ));
        }
        Ok(())
    }
}

/// Parses a dotted-decimal OID (an optional leading dot is accepted) into its arcs.
pub fn parse_oid(oid: &str) -> Option<Vec<u32>> {
    let oid = oid.strip_prefix('.').unwrap_or(oid);
    if oid.is_empty() {
        return None;
    }
    oid.split('.').map(|arc| arc.parse::<u32>().ok()).collect()
}

impl TrapSpec {
    fn validate(&self) -> Result<(), ManifestError> {
        if self.oid_prefixes.is_empty() {
            return Err(invalid(
                "snmp_trap.oid_prefixes",
                "must list at least one OID",
            ));
        }
        for (i, oid) in self.oid_prefixes.iter().enumerate() {
            if parse_oid(oid).is_none_or(|arcs| arcs.len() < 2) {
                return Err(invalid(
                    format!("snmp_trap.oid_prefixes[{i}]"),
                    format!("`{oid}` is not a dotted-decimal OID with at least two arcs"),
                ));
            }
        }
        Ok(())
    }
}

fn validate_name(field: String, value: &str) -> Result<(), ManifestError> {
    if value.trim().is_empty() || value.len() > 128 {
        return Err(invalid(field, "must be 1-128 characters"));
    }
    Ok(())
}

fn validate_category(field: String, value: &str) -> Result<(), ManifestError> {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    if value.is_empty() || value.len() > 64 || !value.chars().all(ok) {
        return Err(invalid(
            field,
            format!("category `{value}` must be 1-64 characters of a-z, 0-9, `_` or `-`"),
        ));
    }
    Ok(())
}

impl AlertSpec {
    fn validate(&self) -> Result<(), ManifestError> {
        validate_category("alerts.default_category".into(), &self.default_category)?;
        for alert_type in self.severity_map.keys() {
            validate_name(format!("alerts.severity_map.{alert_type}"), alert_type)?;
        }
        for (alert_type, category) in &self.category_map {
            validate_name(format!("alerts.category_map.{alert_type}"), alert_type)?;
            validate_category(format!("alerts.category_map.{alert_type}"), category)?;
        }
        for (clearing, cleared) in &self.clears {
            let field = format!("alerts.clears.{clearing}");
            validate_name(field.clone(), clearing)?;
            if cleared.is_empty() {
                return Err(invalid(
                    field,
                    "must name at least one alert type it clears",
                ));
            }
            for (i, t) in cleared.iter().enumerate() {
                validate_name(format!("{field}[{i}]"), t)?;
            }
        }
        for (i, f) in self.fingerprint_fields.iter().enumerate() {
            validate_name(format!("alerts.fingerprint_fields[{i}]"), f)?;
        }
        if self.expire_after_seconds == Some(0) {
            return Err(invalid(
                "alerts.expire_after_seconds",
                "must be positive when set",
            ));
        }
        Ok(())
    }
}

impl Capabilities {
    fn validate(&self) -> Result<(), ManifestError> {
        let check = |field: &str, value: u32, min: u32, max: u32| {
            if value < min || value > max {
                Err(invalid(
                    format!("capabilities.{field}"),
                    format!("{value} is outside {min}..={max}"),
                ))
            } else {
                Ok(())
            }
        };
        check("memory_mb", self.memory_mb, 1, MAX_MEMORY_MB)?;
        check("cpu_ms", self.cpu_ms, 1, MAX_CPU_MS)?;
        check("timeout_ms", self.timeout_ms, 1, MAX_TIMEOUT_MS)?;
        check("instances", self.instances, 1, MAX_INSTANCES)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "id": "alertmanager",
            "name": "Prometheus Alertmanager",
            "version": "0.1.0",
            "world": "opsconductor:addon/addon@0.1.0",
            "methods": ["webhook"],
            "webhook": { "path": "alertmanager" }
        })
    }

    fn check(edit: impl FnOnce(&mut serde_json::Value)) -> Result<Manifest, ManifestError> {
        let mut v = base();
        edit(&mut v);
        Manifest::from_json(serde_json::to_vec(&v).unwrap().as_slice())
    }

    #[test]
    fn minimal_manifest_gets_defaults() {
        let m = check(|_| {}).unwrap();
        let w = m.webhook.unwrap();
        assert_eq!(w.max_body_bytes, 1024 * 1024);
        assert_eq!(w.format, BodyFormat::Json);
        assert_eq!(m.alerts.default_severity, Severity::Warning);
        assert_eq!(m.capabilities, Capabilities::default());
        assert!(m.enabled_by_default);
    }

    #[test]
    fn each_bad_manifest_names_its_field() {
        type Edit = fn(&mut serde_json::Value);
        let cases: &[(&str, Edit)] = &[
            ("id", |v| {
                v.as_object_mut().unwrap().remove("id");
            }),
            ("id", |v| v["id"] = "Bad Id".into()),
            ("name", |v| v["name"] = " ".into()),
            ("version", |v| v["version"] = "1.2".into()),
            ("world", |v| {
                v["world"] = "opsconductor:addon/addon@9.0.0".into()
            }),
            ("methods", |v| v["methods"] = serde_json::json!([])),
            ("methods[0]", |v| {
                v["methods"] = serde_json::json!(["carrier_pigeon"])
            }),
            ("methods[1]", |v| {
                v["methods"] = serde_json::json!(["webhook", "webhook"])
            }),
            ("webhook", |v| {
                v.as_object_mut().unwrap().remove("webhook");
            }),
            ("webhook.path", |v| v["webhook"]["path"] = "/lead".into()),
            ("webhook.path", |v| v["webhook"]["path"] = "a/../b".into()),
            ("webhook.max_body_bytes", |v| {
                v["webhook"]["max_body_bytes"] = 0.into()
            }),
            ("webhook.format", |v| v["webhook"]["format"] = "xml".into()),
            ("snmp_trap", |v| {
                v["methods"] = serde_json::json!(["webhook", "snmp_trap"])
            }),
            ("snmp_trap.oid_prefixes[0]", |v| {
                v["methods"] = serde_json::json!(["webhook", "snmp_trap"]);
                v["snmp_trap"] = serde_json::json!({ "oid_prefixes": ["1.3.x"] });
            }),
            ("alerts.default_severity", |v| {
                v["alerts"] = serde_json::json!({ "default_severity": "apocalyptic" })
            }),
            (
                "alerts.category_map.HighCpu",
                |v| {
                    v["alerts"] = serde_json::json!({ "category_map": { "HighCpu": "Not A Slug" } })
                },
            ),
            ("alerts.clears.linkUp", |v| {
                v["alerts"] = serde_json::json!({ "clears": { "linkUp": [] } })
            }),
            ("capabilities.memory_mb", |v| {
                v["capabilities"] = serde_json::json!({ "memory_mb": 999999 })
            }),
            ("surprise", |v| v["surprise"] = true.into()),
        ];
        for (field, edit) in cases {
            let err = check(*edit).expect_err(field);
            let shown = err.to_string();
            assert!(
                shown.contains(field),
                "error for `{field}` should name it, got: {shown}"
            );
        }
    }

    #[test]
    fn oids_parse_with_or_without_leading_dot() {
        assert_eq!(parse_oid(".1.3.6"), Some(vec![1, 3, 6]));
        assert_eq!(parse_oid("1.3.6"), Some(vec![1, 3, 6]));
        assert_eq!(parse_oid(""), None);
        assert_eq!(parse_oid("1..3"), None);
        assert_eq!(parse_oid("1.3.x"), None);
    }
}
