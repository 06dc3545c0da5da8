//! The addon manifest (`manifest.json`): its schema, defaults and validation. Pure code.
//!
//! Validation errors name the offending field (`webhook.path`, `alerts.severity_map.linkDown`)
//! so an addon author can fix a manifest from the message alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alert::Severity;

/// The WIT worlds this runtime can run, newest first.
pub const SUPPORTED_WORLDS: &[&str] = &[WORLD_V0_2, WORLD_V0_1, WORLD_RULES];
/// The world of rules addons: no component of their own, their `parse` section runs on the
/// rules engine that ships with the runtime (docs/rules.md).
pub const WORLD_RULES: &str = "opsconductor:rules/engine@0.1.0";
/// The world with scripted polling (`io` imports, `poller` export).
pub const WORLD_V0_2: &str = "opsconductor:addon/addon@0.2.0";
/// The foundation's world: parse only.
pub const WORLD_V0_1: &str = "opsconductor:addon/addon@0.1.0";

/// In `capabilities.hosts`, the address of the target being polled.
pub const TARGET_HOST: &str = "{target}";

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
    /// Required when `methods` contains a poll method (`snmp_poll`, `api_poll`, `ssh_poll`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<PollSpec>,
    #[serde(default)]
    pub alerts: AlertSpec,
    #[serde(default)]
    pub capabilities: Capabilities,
    /// The rules of a rules addon (world [`WORLD_RULES`]), as written; checked by
    /// [`Manifest::validate`] and run by the rules engine (docs/rules.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse: Option<serde_json::Value>,
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

/// How the addon's targets are polled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollSpec {
    /// The interval of a target that names neither an interval nor a cron schedule.
    #[serde(default = "default_poll_interval")]
    pub default_interval_seconds: u32,
    /// Wall-clock budget of one whole poll: every fetch, or the addon's `poll` call with its I/O.
    #[serde(default = "default_poll_timeout")]
    pub timeout_ms: u32,
    #[serde(default)]
    pub mode: PollMode,
    /// What the host fetches in `declarative` mode, in order; empty in `scripted` mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fetch: Vec<FetchSpec>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PollMode {
    /// The host fetches what `fetch` lists and hands the result to `parse`.
    #[default]
    Declarative,
    /// The host calls the addon's `poll` export, which does its own I/O through the `io` imports
    /// (WIT 0.2.0 and later), limited by `capabilities.hosts` and `capabilities.ssh_commands`.
    Scripted,
}

/// One thing a declarative poll fetches from the target. `name` is how the addon finds it in the
/// poll result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FetchSpec {
    /// SNMP GET of these OIDs.
    SnmpGet { name: String, oids: Vec<String> },
    /// Every varbind below `oid` (GETBULK on v2c/v3).
    SnmpWalk { name: String, oid: String },
    /// One HTTP request to the target. `path` is resolved against the target's base URL; a
    /// `{key}` in it is replaced by the target config's string or number at `key`.
    Http {
        name: String,
        #[serde(default = "default_http_method")]
        method: String,
        path: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
    },
    /// One command run over SSH, verbatim.
    Ssh { name: String, command: String },
}

impl FetchSpec {
    pub fn name(&self) -> &str {
        match self {
            FetchSpec::SnmpGet { name, .. }
            | FetchSpec::SnmpWalk { name, .. }
            | FetchSpec::Http { name, .. }
            | FetchSpec::Ssh { name, .. } => name,
        }
    }

    /// The poll method a fetch of this kind belongs to.
    pub fn method(&self) -> Method {
        match self {
            FetchSpec::SnmpGet { .. } | FetchSpec::SnmpWalk { .. } => Method::SnmpPoll,
            FetchSpec::Http { .. } => Method::ApiPoll,
            FetchSpec::Ssh { .. } => Method::SshPoll,
        }
    }
}

impl Method {
    pub fn is_poll(self) -> bool {
        matches!(self, Method::SnmpPoll | Method::ApiPoll | Method::SshPoll)
    }
}

fn default_poll_interval() -> u32 {
    60
}

fn default_poll_timeout() -> u32 {
    10_000
}

fn default_http_method() -> String {
    "GET".to_owned()
}

pub const MAX_POLL_TIMEOUT_MS: u32 = 300_000;
pub const MAX_FETCHES: usize = 64;

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
    /// Hosts a scripted poll may reach: exact host names or IP addresses, `*.example.com` for
    /// any subdomain, or `{target}` for the address of the target being polled. SNMP and SSH
    /// imports only ever reach the polled target, so they need `{target}`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Commands a scripted poll may run over SSH, each matched verbatim.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ssh_commands: Vec<String>,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            memory_mb: 64,
            cpu_ms: 1_000,
            timeout_ms: 5_000,
            instances: 2,
            hosts: Vec::new(),
            ssh_commands: Vec::new(),
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

        let polls = self.methods.iter().any(|m| m.is_poll());
        match (&self.poll, polls) {
            (None, true) => {
                return Err(invalid(
                    "poll",
                    "is required because `methods` contains a poll method",
                ));
            }
            (Some(_), false) => {
                return Err(invalid(
                    "poll",
                    "is set but `methods` contains no poll method (snmp_poll, api_poll, ssh_poll)",
                ));
            }
            (Some(p), true) => p.validate(self)?,
            (None, false) => {}
        }

        self.alerts.validate()?;
        self.capabilities.validate()?;
        match (&self.parse, self.is_rules()) {
            (Some(parse), true) => {
                opsconductor_rules::Rules::compile(parse)
                    .map_err(|e| invalid(e.path, e.message))?;
            }
            (None, true) => {
                return Err(invalid(
                    "parse",
                    format!("is required for the world {WORLD_RULES}: the rules to run"),
                ));
            }
            (Some(_), false) => {
                return Err(invalid(
                    "parse",
                    format!(
                        "is only for rules addons (world {WORLD_RULES}); this addon's component parses"
                    ),
                ));
            }
            (None, false) => {}
        }
        Ok(())
    }

    /// Whether the component implements the `poller` export (WIT 0.2.0 and later, not the rules
    /// engine: rules read what a declarative poll fetched).
    pub fn has_poller_export(&self) -> bool {
        self.world != WORLD_V0_1 && !self.is_rules()
    }

    /// Whether this is a rules addon: no component of its own, its `parse` section runs on the
    /// rules engine.
    pub fn is_rules(&self) -> bool {
        self.world == WORLD_RULES
    }
}

impl PollSpec {
    fn validate(&self, manifest: &Manifest) -> Result<(), ManifestError> {
        if self.default_interval_seconds == 0 || self.default_interval_seconds > 86_400 * 7 {
            return Err(invalid(
                "poll.default_interval_seconds",
                "must be between 1 and 604800 (a week)",
            ));
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_POLL_TIMEOUT_MS {
            return Err(invalid(
                "poll.timeout_ms",
                format!("must be between 1 and {MAX_POLL_TIMEOUT_MS}"),
            ));
        }
        match self.mode {
            PollMode::Scripted => {
                if !manifest.has_poller_export() {
                    return Err(invalid(
                        "poll.mode",
                        format!("`scripted` needs the world {WORLD_V0_2} or later"),
                    ));
                }
                if !self.fetch.is_empty() {
                    return Err(invalid(
                        "poll.fetch",
                        "must be empty in `scripted` mode: the addon fetches for itself",
                    ));
                }
            }
            PollMode::Declarative => {
                if self.fetch.is_empty() {
                    return Err(invalid(
                        "poll.fetch",
                        "must list at least one fetch in `declarative` mode",
                    ));
                }
                if self.fetch.len() > MAX_FETCHES {
                    return Err(invalid(
                        "poll.fetch",
                        format!("lists more than {MAX_FETCHES} fetches"),
                    ));
                }
            }
        }
        for (i, fetch) in self.fetch.iter().enumerate() {
            let field = format!("poll.fetch[{i}]");
            validate_name(format!("{field}.name"), fetch.name())?;
            if self.fetch[..i].iter().any(|f| f.name() == fetch.name()) {
                return Err(invalid(
                    format!("{field}.name"),
                    format!("`{}` is used twice", fetch.name()),
                ));
            }
            if !manifest.methods.contains(&fetch.method()) {
                let method = serde_json::to_value(fetch.method()).unwrap_or_default();
                return Err(invalid(
                    format!("{field}.kind"),
                    format!("needs `{}` in `methods`", method.as_str().unwrap_or("?")),
                ));
            }
            match fetch {
                FetchSpec::SnmpGet { oids, .. } => {
                    if oids.is_empty() || oids.len() > 128 {
                        return Err(invalid(format!("{field}.oids"), "must list 1-128 OIDs"));
                    }
                    for (j, oid) in oids.iter().enumerate() {
                        if parse_oid(oid).is_none_or(|a| a.len() < 2) {
                            return Err(invalid(
                                format!("{field}.oids[{j}]"),
                                format!("`{oid}` is not a dotted-decimal OID"),
                            ));
                        }
                    }
                }
                FetchSpec::SnmpWalk { oid, .. } => {
                    if parse_oid(oid).is_none_or(|a| a.len() < 2) {
                        return Err(invalid(
                            format!("{field}.oid"),
                            format!("`{oid}` is not a dotted-decimal OID"),
                        ));
                    }
                }
                FetchSpec::Http { method, path, .. } => {
                    if !matches!(
                        method.as_str(),
                        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD"
                    ) {
                        return Err(invalid(
                            format!("{field}.method"),
                            format!("`{method}` is not an HTTP method this runtime sends"),
                        ));
                    }
                    if !path.starts_with('/') {
                        return Err(invalid(
                            format!("{field}.path"),
                            "must start with `/`: it is resolved against the target's base URL",
                        ));
                    }
                }
                FetchSpec::Ssh { command, .. } => {
                    if command.trim().is_empty() || command.len() > 1024 {
                        return Err(invalid(
                            format!("{field}.command"),
                            "must be 1-1024 characters",
                        ));
                    }
                }
            }
        }
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
        for (i, host) in self.hosts.iter().enumerate() {
            if !valid_host_pattern(host) {
                return Err(invalid(
                    format!("capabilities.hosts[{i}]"),
                    format!(
                        "`{host}` must be `{TARGET_HOST}`, a host name, an IP address or `*.domain`"
                    ),
                ));
            }
        }
        for (i, command) in self.ssh_commands.iter().enumerate() {
            if command.trim().is_empty() || command.len() > 1024 {
                return Err(invalid(
                    format!("capabilities.ssh_commands[{i}]"),
                    "must be 1-1024 characters",
                ));
            }
        }
        Ok(())
    }
}

fn valid_host_pattern(pattern: &str) -> bool {
    if pattern == TARGET_HOST || pattern.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok)
}

impl Capabilities {
    /// Whether a scripted poll of a target at `target_host` may reach `host`. Names compare
    /// case-insensitively; `*.example.com` matches subdomains, not `example.com` itself.
    pub fn allows_host(&self, host: &str, target_host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.hosts.iter().any(|pattern| {
            if pattern == TARGET_HOST {
                return host.eq_ignore_ascii_case(target_host);
            }
            match pattern.strip_prefix("*.") {
                Some(domain) => {
                    host.len() > domain.len() + 1
                        && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
                        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
                }
                None => host.eq_ignore_ascii_case(pattern),
            }
        })
    }

    /// Whether a scripted poll may run `command` over SSH (verbatim match).
    pub fn allows_ssh_command(&self, command: &str) -> bool {
        self.ssh_commands.iter().any(|c| c == command)
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

    fn poller() -> serde_json::Value {
        serde_json::json!({
            "id": "snmp-interface",
            "name": "Interfaces",
            "version": "0.1.0",
            "world": "opsconductor:addon/addon@0.2.0",
            "methods": ["snmp_poll"],
            "poll": {
                "fetch": [
                    { "name": "oper", "kind": "snmp_walk", "oid": "1.3.6.1.2.1.2.2.1.8" },
                    { "name": "uptime", "kind": "snmp_get", "oids": ["1.3.6.1.2.1.1.3.0"] }
                ]
            }
        })
    }

    #[test]
    fn poll_manifests_validate_and_name_their_field() {
        let ok = Manifest::from_json(poller().to_string().as_bytes()).unwrap();
        let poll = ok.poll.unwrap();
        assert_eq!(poll.mode, PollMode::Declarative);
        assert_eq!(poll.default_interval_seconds, 60);
        assert_eq!(poll.fetch[0].name(), "oper");

        type Edit = fn(&mut serde_json::Value);
        let cases: &[(&str, Edit)] = &[
            ("poll", |v| {
                v.as_object_mut().unwrap().remove("poll");
            }),
            ("poll.fetch", |v| v["poll"]["fetch"] = serde_json::json!([])),
            ("poll.fetch[1].name", |v| {
                v["poll"]["fetch"][1]["name"] = "oper".into()
            }),
            ("poll.fetch[0].oid", |v| {
                v["poll"]["fetch"][0]["oid"] = "ifTable".into()
            }),
            ("poll.fetch[2].kind", |v| {
                v["poll"]["fetch"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({ "name": "df", "kind": "ssh", "command": "df -P" }))
            }),
            ("poll.mode", |v| {
                v["world"] = "opsconductor:addon/addon@0.1.0".into();
                v["poll"] = serde_json::json!({ "mode": "scripted" });
            }),
            ("poll.fetch", |v| v["poll"]["mode"] = "scripted".into()),
            ("poll.timeout_ms", |v| v["poll"]["timeout_ms"] = 0.into()),
            ("capabilities.hosts[0]", |v| {
                v["capabilities"] = serde_json::json!({ "hosts": ["http://x/"] })
            }),
        ];
        for (field, edit) in cases {
            let mut v = poller();
            edit(&mut v);
            let err = Manifest::from_json(v.to_string().as_bytes()).expect_err(field);
            assert!(
                err.to_string().contains(field),
                "error for `{field}` should name it, got: {err}"
            );
        }
    }

    #[test]
    fn host_capabilities_match_exactly_or_by_subdomain() {
        let caps = Capabilities {
            hosts: vec![
                TARGET_HOST.into(),
                "api.example.com".into(),
                "*.corp.test".into(),
            ],
            ..Capabilities::default()
        };
        assert!(caps.allows_host("192.0.2.7", "192.0.2.7"));
        assert!(!caps.allows_host("192.0.2.8", "192.0.2.7"));
        assert!(caps.allows_host("API.example.com", "192.0.2.7"));
        assert!(!caps.allows_host("evil-api.example.com", "192.0.2.7"));
        assert!(caps.allows_host("a.b.corp.test", "x"));
        assert!(!caps.allows_host("corp.test", "x"));
        assert!(!caps.allows_host("xcorp.test", "x"));
        assert!(!Capabilities::default().allows_host("192.0.2.7", "192.0.2.7"));
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
